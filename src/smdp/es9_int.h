/*
 * es9_int.h: what the ES9+ files of the SM-DP+ share (SGP.22 5.6): the
 * request context, the session row, the common status codes, and the
 * helpers of es9.c (dispatch), es9_session.c (sessions), es9_auth.c
 * (initiateAuthentication, authenticateClient), es9_bpp.c
 * (getBoundProfilePackage) and es9_notify.c (handleNotification,
 * cancelSession).
 */
#ifndef ESIM_SMDP_ES9_INT_H
#define ESIM_SMDP_ES9_INT_H

#include "esim/rsp_es9.h"
#include "smdp_int.h"

#define ES9_MAX_BODY  (256 * 1024)
#define ES9_MAX_DEPTH 8

#define ST_STARTED	 "started"
#define ST_AUTHENTICATED "authenticated"
#define ST_DOWNLOADED	 "downloaded"

#define ES9_MISSING    SMDP_FAIL("1.3.1", "2.2", "mandatory element missing")
#define ES9_BADFIELD   SMDP_FAIL("1.3.1", "2.1", "element invalid")
#define ES9_UNKNOWN_TX SMDP_FAIL("8.10.1", "3.9", "transactionId unknown")
#define ES9_EUICC_SIG  SMDP_FAIL("8.1", "6.1", "eUICC signature invalid")
#define ES9_BUSY       SMDP_FAIL("8.8", "4.2", "too many sessions pending authentication; retry later")

/* One ES9+ request. */
struct es9 {
	smdp *d;
	json_t *req;
	json_t *resp; /* fields added on success */
	/* the success answer as the rsp_es9 codec encoded it (smdp_es9_answer;
	 * NULL: the header alone) */
	char *answer;
	struct smdp_status st;
	bool no_content; /* 204 */
	bool busy;	 /* 503 with st: the session cap is reached */
	/* X-Request-Id of the request (checked; NULL: none): in its log lines
	 * and on the ES2+ callbacks it queues (smdp_outbox_queue_rid) */
	const char *request_id;
};

/* A session row (es9_session.c). euicc_cert: owned, freed by
 * smdp_es9_session_clear. */
struct session {
	char txid_hex[2 * RSP_TXID_MAX + 1];
	rsp_txid txid;
	char state[24];
	int ident;
	uint8_t euicc_challenge[16], server_challenge[16];
	uint8_t ci_pkid[CRYPTO_KEY_ID_MAX];
	size_t ci_pkid_len;
	char eid[RSP_EID_DIGITS + 1];
	int64_t order_id;
	int64_t profile_id; /* the order's (0: no order yet) */
	uint8_t *euicc_cert;
	size_t euicc_cert_len;
	uint8_t sig1[64], sig2[64];
	bool cc_required;
	/* read with the order (false: no order yet): its operator has a
	 * callback URL; it has an SM-DS event (smds_address, eid and
	 * matching_id set) */
	bool op_callback, smds_event;
};

/*
 * The download's transactions run at READ COMMITTED on PostgreSQL
 * (store_transaction_opts): each write that depends on a read either locks
 * the rows it read (the order row, smdp_es9_order_lock; a profile's state,
 * smdp_db_transition's FOR UPDATE) or carries its own condition (a session
 * becomes authenticated only WHERE state = 'started'; a notification goes
 * in with ON CONFLICT DO NOTHING against UNIQUE (eid, seq)). So two
 * downloads never abort each other for touching the same pages, as they did
 * under SERIALIZABLE (docs/PERFORMANCE.md, "PostgreSQL cost per download").
 */
#define ES9_TX (STORE_TX_LAZY | STORE_TX_READ_COMMITTED)

/* es9.c */
/* Encode a handler's success answer r (its spans are only read) with the
 * rsp_es9 codec into x->answer, the body the dispatcher sends. */
esim_err smdp_es9_answer(struct es9 *x, const struct rsp_es9_response *r);
/* The request of fn read with the rsp_es9 codec into *rq (cleared by the
 * caller, also after a failure); false with x->st set: a member missing is
 * "mandatory element missing", one malformed (not base64, not the one
 * complete TLV of its tag, over its size) "element invalid". */
bool smdp_es9_decode(struct es9 *x, enum rsp_es9_fn fn, struct rsp_es9_request *rq);
/* A string member of o, NULL when absent or not a string (borrowed). */
const char *smdp_es9_opt_str(const json_t *o, const char *k);
/* The row lock clause for an order joined as alias o ("" on SQLite). */
const char *smdp_es9_order_lock(store *s);
/* The order failed for good: the profile to Error, the order closed, and
 * the operator told (point), inside the caller's transaction. */
esim_err smdp_es9_fail_order(smdp *d, store *s, int64_t order_id, int64_t profile_id, time_t now,
			     int point, const struct smdp_status *st);

/* es9_session.c */
void smdp_es9_session_clear(struct session *s);
/* DELETE the session in the caller's transaction (sent with its COMMIT). */
esim_err smdp_es9_delete_session(store *s, const char *txid_hex);
/* The same in a transaction of its own. */
esim_err smdp_es9_end_session(store *s, const char *txid_hex);
/* Load a live session; *found false when unknown or expired (then deleted:
 * in the open transaction when in_tx, else in one of its own). The caller
 * clears *out with smdp_es9_session_clear. */
esim_err smdp_es9_load_session_in(smdp *d, store *s, const char *txid_hex, struct session *out,
				  bool *found, bool in_tx);
esim_err smdp_es9_load_session(smdp *d, store *s, const char *txid_hex, struct session *out,
			       bool *found);
/* Room for one more session not yet authenticated (the cap). */
esim_err smdp_es9_pending_room(smdp *d, store *s, bool *room);

/* es9_auth.c */
/* PK.EUICC.SIG of the session's CERT.EUICC (cached by SPKI); caller frees. */
esim_err smdp_es9_euicc_pub_of(smdp *d, const struct session *ss, EVP_PKEY **key);
/* What a profile type adds to the StoreMetadata besides class and PPRs
 * (inventory.c, add-type): read with the order, as the three columns
 * "t.icon_type, t.icon, t.notif" from column col on. */
#define SMDP_ES9_META_COLS "t.icon_type, t.icon, t.notif"
struct smdp_es9_meta_extra {
	int icon_type; /* -1: no icon */
	uint8_t icon[RSP_ICON_MAX];
	size_t icon_len;
	bool has_notif;
	char notif[SMDP_NOTIF_SPEC_MAX + 1];
};
void smdp_es9_meta_extra_read(store_stmt *st, int col, struct smdp_es9_meta_extra *mx);
/* The StoreMetadataRequest (BF25) of a profile; *out: caller frees. */
esim_err smdp_es9_build_metadata(smdp *d, const char *iccid, const char *spn, const char *name,
				 int pclass, uint32_t ppr, const struct smdp_es9_meta_extra *mx,
				 uint8_t **out, size_t *out_len);

/* The handlers: fill x->resp, or x->st on a refusal; an error return is
 * a server fault (HTTP 500). */
esim_err smdp_es9_initiate_authentication(struct es9 *x, store *s);
esim_err smdp_es9_authenticate_client(struct es9 *x, store *s);
esim_err smdp_es9_get_bound_profile_package(struct es9 *x, store *s); /* es9_bpp.c */
esim_err smdp_es9_handle_notification(struct es9 *x, store *s);	      /* es9_notify.c */
esim_err smdp_es9_cancel_session(struct es9 *x, store *s);	      /* es9_notify.c */

#endif
