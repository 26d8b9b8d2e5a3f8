/*
 * euicc_int.h: what the files of the virtual eUICC share: the card object,
 * the RAM-only RSP session, the database helpers (euicc_db.c) and the ES10
 * handlers of each interface (es10a.c, es10b.c, es10b_bpp.c, es10c.c).
 */
#ifndef ESIM_EUICC_INT_H
#define ESIM_EUICC_INT_H

#include "euicc.h"

#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/der.h"
#include "esim/store.h"

#define EUICC_TXID_MAX	   16
#define EUICC_ADDR_MAX	   255
#define EUICC_OID_TEXT_MAX 128
#define EUICC_ICCID_LEN	   10
#define EUICC_AID_LEN	   16
#define EUICC_UPP_MAX	   (1024u * 1024u) /* one profile package, whatever the capacity */
#define EUICC_METADATA_MAX (8u * 1024u)	   /* BF25 with a 1 KiB icon fits easily */

/* Notification events (NotificationEvent bit numbers, digest 8.1). */
enum euicc_pmo {
	EUICC_PMO_INSTALL = 0,
	EUICC_PMO_ENABLE = 1,
	EUICC_PMO_DISABLE = 2,
	EUICC_PMO_DELETE = 3,
};

struct euicc_ident {
	crypto_cert *cert;
	crypto_cert *eum;
	EVP_PKEY *key;
	uint8_t ci_pkid[CRYPTO_KEY_ID_MAX];
	size_t ci_pkid_len;
};

enum euicc_sess_state {
	SESS_NONE = 0,
	SESS_CHALLENGE,	    /* GetEUICCChallenge done */
	SESS_AUTHENTICATED, /* AuthenticateServer done */
	SESS_PREPARED,	    /* PrepareDownload done: otSK.EUICC held; PrepareDownload
			       may come again (confirmation code retry) */
	SESS_BPP,	    /* LoadBoundProfilePackage in progress */
	SESS_BPP_DONE,	    /* PIR sent: remaining pieces are dropped */
};

struct euicc_bpp; /* es10b_bpp.c */

struct euicc_session {
	enum euicc_sess_state state;
	uint8_t challenge[16];
	uint8_t txid[EUICC_TXID_MAX];
	size_t txid_len;
	char server_address[EUICC_ADDR_MAX + 1];
	size_t ident;		   /* index of the identity chosen by euiccCiPKIdToBeUsed */
	const crypto_cert *dpauth; /* CERT.DPauth of this session (borrowed from certs) */
	const crypto_cert *ci;	   /* the CI it chains to (borrowed from trust) */
	char smdp_oid[EUICC_OID_TEXT_MAX];
	uint8_t euicc_sig1[CRYPTO_RAW_SIG_LEN];
	const crypto_cert *dppb; /* CERT.DPpb, after PrepareDownload (borrowed from certs) */
	EVP_PKEY *otsk;		 /* otSK.EUICC.ECKA, after PrepareDownload */
	struct euicc_bpp *bpp;	 /* while loading */
};

/* A parsed SM-DP+ certificate and the roles its chain was verified for
 * (cert_cache.c). */
#define EUICC_CERT_CACHE 8
struct euicc_cert_slot {
	crypto_cert *cert;     /* owned; NULL: free slot */
	uint32_t verified;     /* bit (1 << crypto_rsp_role): chain verified for it */
	const crypto_cert *ci; /* the CI it chains to (borrowed from trust) */
	uint64_t used;	       /* LRU clock */
};

struct euicc {
	store *db;
	struct euicc_ident ids[EUICC_MAX_IDENTITIES];
	size_t n_ids;
	crypto_trust *trust;
	uint8_t eid[EUICC_EID_LEN];
	char eid_text[CRYPTO_EID_DIGITS + 1];
	uint64_t capacity;
	uint32_t forbidden_ppr; /* PprIds refused (euicc_config) */
	size_t max_notifs;
	char root_ds[EUICC_ADDR_MAX + 1];
	struct euicc_session sess;
	/* otSK.EUICC of the last session whose BPP did not install, kept for
	 * a bppEuiccOtpk retry (digest 6.4 step 6, 15.2). */
	EVP_PKEY *retry_otsk;
	struct euicc_cert_slot certs[EUICC_CERT_CACHE];
	uint64_t cert_clock;
};

/* ---- identity.c ---- */
esim_err euicc_identity_load(euicc *e, const struct euicc_config *cfg);
void euicc_identity_free(euicc *e);
/* The identity whose CI has this PKID, or -1. */
int euicc_identity_for_ci(const euicc *e, const uint8_t *pkid, size_t len);

/* ---- cert_cache.c ---- */
/* The certificate with exactly these DER bytes, parsed once and kept:
 * *out is borrowed, valid while the session references it or until the
 * next euicc_cert_get. */
esim_err euicc_cert_get(euicc *e, const uint8_t *der, size_t len, const crypto_cert **out);
/* crypto_chain_verify(e->trust, cert, no intermediates, role, no time
 * check), once per cached certificate and role; *ci borrowed from trust. */
esim_err euicc_cert_chain(euicc *e, const crypto_cert *cert, crypto_rsp_role role,
			  const crypto_cert **ci);
void euicc_cert_cache_free(euicc *e);

/* ---- euicc.c ---- */
void euicc_session_clear(euicc *e);

/* ---- euicc_db.c ---- */
struct euicc_profile {
	int64_t id;
	uint8_t iccid[EUICC_ICCID_LEN]; /* as in tag 5A (nibble-swapped BCD) */
	uint8_t aid[EUICC_AID_LEN];
	int state;	       /* 0 disabled, 1 enabled */
	int profile_class;     /* 0 test, 1 provisioning, 2 operational */
	uint64_t ppr;	       /* PprIds mask (bit n = named bit n) */
	char nickname[65 * 4]; /* UTF-8, up to 64 characters */
	uint8_t *metadata;     /* the BF25 TLV as received (malloc'd) */
	size_t metadata_len;
	uint8_t *dp_prop; /* B8 TLV from ConfigureISDP or NULL */
	size_t dp_prop_len;
	size_t upp_len;
	uint8_t ci_pkid[CRYPTO_KEY_ID_MAX]; /* CI of the identity it was installed under */
	size_t ci_pkid_len;
};

esim_err euicc_db_open(const char *url, store **out);
void euicc_profile_clear(struct euicc_profile *p);
void euicc_profiles_free(struct euicc_profile *v, size_t n);
/* All profiles in installation order (UPP not loaded). */
esim_err euicc_db_profiles(store *db, struct euicc_profile **out, size_t *n);
/* Find one by ICCID (10 bytes) or AID (16 bytes): ESIM_E_NOT_FOUND. */
esim_err euicc_db_profile_by_iccid(store *db, const uint8_t *iccid, struct euicc_profile *out);
esim_err euicc_db_profile_by_aid(store *db, const uint8_t *aid, size_t len,
				 struct euicc_profile *out);
esim_err euicc_db_profile_insert(store *db, const struct euicc_profile *p, const uint8_t *upp,
				 size_t upp_len);
esim_err euicc_db_profile_upp(store *db, int64_t id, uint8_t **out, size_t *len);
esim_err euicc_db_profile_set_state(store *db, int64_t id, int state);
esim_err euicc_db_profile_set_nickname(store *db, int64_t id, const char *nick, size_t len);
esim_err euicc_db_profile_delete(store *db, int64_t id);
/* Bytes used by stored profiles (UPP + metadata). */
esim_err euicc_db_used_bytes(store *db, uint64_t *out);
/* Allocate the next ISD-P AID (persistent counter; call inside a
 * transaction so that it commits with the profile). */
esim_err euicc_db_next_aid(store *db, uint8_t out[EUICC_AID_LEN]);
/* The next notification seqNumber (call inside a transaction). */
esim_err euicc_db_next_seq(store *db, int64_t *out);
esim_err euicc_db_counter(store *db, const char *name, int64_t *out);

/* Text settings (default SM-DP+ address): *out malloc'd or NULL. */
esim_err euicc_db_get_setting(store *db, const char *key, char **out);
esim_err euicc_db_set_setting(store *db, const char *key, const char *value);

struct euicc_notif {
	int64_t seq;
	int pmo;
	uint8_t *meta; /* BF2F TLV */
	size_t meta_len;
	uint8_t *data; /* whole PendingNotification: BF37 or 30 TLV */
	size_t data_len;
};
void euicc_notifs_free(struct euicc_notif *v, size_t n);
esim_err euicc_db_notif_insert(store *db, const struct euicc_notif *n);
/* All notifications in seqNumber order; with_data loads the signed ones. */
esim_err euicc_db_notifs(store *db, bool with_data, struct euicc_notif **out, size_t *n);
esim_err euicc_db_notif_count(store *db, size_t *out);
/* ESIM_E_NOT_FOUND when no such seqNumber. */
esim_err euicc_db_notif_remove(store *db, int64_t seq);

/* ---- notifications (es10b_notif.c) ---- */
/* Queue an OtherSignedNotification for profile p and event pmo when its
 * notificationConfigurationInfo lists that event (inside the caller's
 * transaction). */
esim_err euicc_notify_other(euicc *e, const struct euicc_profile *p, enum euicc_pmo pmo);
/* Room for another notification in the bounded queue? */
esim_err euicc_notif_room(euicc *e, size_t needed, bool *ok);

/* ---- rsp glue (euicc_rsp.c): what the eUICC signs and parses, through
 * the rsp layer so that the SM-DP+ and the LPA decode the same bytes ---- */
struct euicc_pir {
	const uint8_t *txid;
	size_t txid_len;
	const char *smdp_oid; /* dotted */
	const char *address;  /* SM-DP+ address of the session */
	const uint8_t *iccid; /* 10 bytes (5A form) or NULL when not yet known */
	int64_t seq;
	bool success;
	uint8_t aid[EUICC_AID_LEN]; /* success */
	int bpp_command_id;	    /* error */
	int error_reason;	    /* error */
};
/* ProfileInstallationResult (BF37) signed with id's key; *meta is its
 * BF2F NotificationMetadata. Both malloc'd (caller frees). */
esim_err euicc_build_pir(const struct euicc_ident *id, const struct euicc_pir *pir, uint8_t **meta,
			 size_t *meta_len, uint8_t **data, size_t *data_len);
/* OtherSignedNotification (30) for one event, signed with id's key. */
esim_err euicc_build_other_notification(const struct euicc_ident *id, int64_t seq,
					enum euicc_pmo pmo, der_span address,
					const uint8_t iccid[EUICC_ICCID_LEN], uint8_t **meta,
					size_t *meta_len, uint8_t **data, size_t *data_len);
/* What the eUICC needs from StoreMetadataRequest (BF25 TLV). */
struct euicc_meta_info {
	uint8_t iccid[EUICC_ICCID_LEN];
	int profile_class; /* 2 operational when absent */
	uint64_t ppr;
};
esim_err euicc_parse_metadata(const uint8_t *bf25, size_t len, struct euicc_meta_info *out);
/* Check the unprotected profile package (SAIP: header first, end last) and
 * give its header ICCID in the 5A (nibble-swapped) form. */
esim_err euicc_check_upp(const uint8_t *upp, size_t len, uint8_t iccid[EUICC_ICCID_LEN]);

/* ---- handlers: req is a cursor over the command's value, b receives the
 * whole response TLV. ESIM_E_EUICC_BAD_COMMAND for malformed requests. ---- */
esim_err es10a_get_configured_addresses(euicc *e, der_cursor *req, der_builder *b);
esim_err es10a_set_default_dp_address(euicc *e, der_cursor *req, der_builder *b);

esim_err es10b_get_challenge(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_get_info1(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_get_info2(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_authenticate_server(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_prepare_download(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_cancel_session(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_list_notification(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_retrieve_notifications(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_remove_notification(euicc *e, der_cursor *req, der_builder *b);
esim_err es10b_get_rat(euicc *e, der_cursor *req, der_builder *b);
/* EUICCInfo2 content (for BF22 and euiccSigned1). */
esim_err es10b_add_info2(euicc *e, der_builder *b);

/* LoadBoundProfilePackage pieces (es10b_bpp.c): cmd is the whole piece. */
bool es10b_bpp_is_piece(const euicc *e, const uint8_t *cmd, size_t len);
esim_err es10b_bpp_piece(euicc *e, const uint8_t *cmd, size_t len, esim_buf *resp);
void es10b_bpp_free(struct euicc_bpp *bpp);

esim_err es10c_get_profiles_info(euicc *e, der_cursor *req, der_builder *b);
esim_err es10c_enable(euicc *e, der_cursor *req, der_builder *b);
esim_err es10c_disable(euicc *e, der_cursor *req, der_builder *b);
esim_err es10c_delete(euicc *e, der_cursor *req, der_builder *b);
esim_err es10c_memory_reset(euicc *e, der_cursor *req, der_builder *b);
esim_err es10c_get_eid(euicc *e, der_cursor *req, der_builder *b);
esim_err es10c_set_nickname(euicc *e, der_cursor *req, der_builder *b);

/* A simple "TAG { 80 result }" response. */
esim_err euicc_result(der_builder *b, uint32_t tag, int64_t code);
/* Map a der reader error to ESIM_E_EUICC_BAD_COMMAND (others pass). */
esim_err euicc_bad(esim_err err);

#endif
