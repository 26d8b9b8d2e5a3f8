/*
 * Internals of the SM-DP+ shared by its files: the handle, the store pool,
 * the status codes of digest 5.4 and small helpers.
 */
#ifndef ESIM_SMDP_INT_H
#define ESIM_SMDP_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>
#include <openssl/types.h>

#include "esim/cert.h"
#include "esim/rsp.h"
#include "esim/smdp.h"
#include "esim/store.h"

/* One SM-DP+ identity, loaded. */
struct smdp_identity {
	crypto_cert *dpauth, *dppb;
	EVP_PKEY *dpauth_key, *dppb_key;
	crypto_curve curve;
	uint8_t ci_pkid[CRYPTO_KEY_ID_MAX]; /* AKI of DPauth = SKI of its CI */
	size_t ci_pkid_len;
};

#define SMDP_POOL_MAX 64
/* Distinct EUM certificates kept verified: a handful exist per CI. */
#define SMDP_EUM_CACHE 32
/* eUICC public keys kept by SubjectPublicKeyInfo (es9_auth.c): slots, and the
 * largest SPKI kept (an EC P-256 or brainpoolP256r1 one is ~92 bytes). */
#define SMDP_KEY_CACHE	  256
#define SMDP_KEY_SPKI_MAX 128

/* Failure counters by subject code, for /metrics. */
#define SMDP_METRIC_SUBJECTS 24

/* The key-encryption key of Ki / OPc at rest (kek.c). */
#define SMDP_KEK_LEN	 32
#define SMDP_KEK_ID_LEN	 16 /* hex digits */
#define SMDP_KEYS_PT_LEN 33 /* which (SMDP_PERS_KI | SMDP_PERS_OPC), Ki, OPc */
#define SMDP_SEALED_LEN	 (24 + SMDP_KEYS_PT_LEN + 16) /* nonce, ciphertext, tag */
struct smdp_kek {
	uint8_t key[SMDP_KEK_LEN]; /* secret */
	char id[SMDP_KEK_ID_LEN + 1];
	bool loaded;
};

struct smdp {
	char *db_url, *fqdn, *oid;
	struct smdp_kek kek;	/* loaded from kek_file; wiped by smdp_close */
	struct smdp_smds *smds; /* SM-DSs for ES12 (es12.c: smdp_set_smds); NULL: none */
	struct smdp_identity ids[SMDP_MAX_IDENTITIES];
	size_t n_ids;
	crypto_trust *trust;
	unsigned session_ttl_s, cc_max, max_attempts, order_ttl_s;
	unsigned max_pending;	      /* unauthenticated sessions at most (es9_session.c) */
	atomic_ulong pending;	      /* about that many now: exact after a count */
	atomic_llong pending_full_at; /* the second a count found no room */
	bool refuse_rebind, check_time, log;
	esim_log logger; /* "esim-smdp" lines (when log), JSON or text */
	time_t (*clock)(void *arg);
	void *clock_arg;

	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	store *pool[SMDP_POOL_MAX]; /* idle connections */
	size_t n_pool;
	size_t n_open, pool_max; /* connections open (idle or lent) and the cap */

	/* EUM certificates already verified against a trusted CI (es9_auth.c):
	 * filled, never evicted, and only with certificates that verified, so
	 * an entry is immutable once n_eum counts it. Each is also written
	 * once to smdp_eum_certs, which outlives the process. */
	pthread_mutex_t eum_lock;
	struct smdp_eum {
		crypto_cert *cert; /* CA, EUM role, signed by the CI its AKI names */
	} eum[SMDP_EUM_CACHE];
	size_t n_eum;

	/* PK.EUICC.SIG of recent sessions, by the SPKI bytes of CERT.EUICC:
	 * a download needs the key in authenticateClient, then again in
	 * getBoundProfilePackage and handleNotification. Direct-mapped; each
	 * slot holds its own reference, so replacing one never frees a key
	 * that a caller is using. */
	pthread_mutex_t key_lock;
	struct smdp_key {
		uint8_t spki[SMDP_KEY_SPKI_MAX];
		size_t len;
		EVP_PKEY *key;
	} keys[SMDP_KEY_CACHE];

	/* metrics */
	atomic_ulong req_es9, req_es2, ok_es9, fail_es9, fail_es2, downloads, installs,
	    notifications, latency_us;
	/* outbox attempts by outcome (es2.c): delivered, to be retried, and
	 * refused for good by the operator (a 4xx other than 408 / 429) */
	atomic_ulong outbox_delivered, outbox_retried, outbox_refused;
	/* RegisterEvents an SM-DS refused for good from the outbox (es2.c) */
	atomic_ulong es12_refused;
	pthread_mutex_t metric_lock;
	char fail_subject[SMDP_METRIC_SUBJECTS][16];
	unsigned long fail_count[SMDP_METRIC_SUBJECTS];
};

/* A function execution status (digest 5.2 / 5.4). subject NULL: success. */
struct smdp_status {
	const char *subject;
	const char *reason;
	const char *message;
};

#define SMDP_OK_STATUS	   ((struct smdp_status){NULL, NULL, NULL})
#define SMDP_FAIL(s, r, m) ((struct smdp_status){(s), (r), (m)})

/* Current time through the configured clock. */
time_t smdp_now(const smdp *d);

/* Borrow a store connection from the pool (opened on demand) / give it back. */
esim_err smdp_store_get(smdp *d, store **out);
void smdp_store_put(smdp *d, store *s);

/* Schema (schema.c). */
esim_err smdp_schema_migrate(store *s);
/* The first n migrations only (tests of the later ones' upgrades). */
esim_err smdp_schema_migrate_upto(store *s, size_t n);

/* Log one structured line (when d->log): msg event, the k=v text as
 * detail (no secrets); d->logger's format (include/esim/log.h). */
void smdp_logf(const smdp *d, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for one request: request_id (NULL: none) goes with the line. */
void smdp_logf_rid(const smdp *d, const char *request_id, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A response object with the header filled in (status.c); caller decrefs. */
json_t *smdp_json_header(const struct smdp_status *st);
/* Serialise obj (stolen) into *out; counts the failure for metrics. */
esim_err smdp_json_finish(smdp *d, json_t *obj, const struct smdp_status *st, char **out);
void smdp_metric_failure(smdp *d, const char *subject);

/* States by name, for SQL (inventory.c). */
const char *smdp_state_sql(enum smdp_state s);
/* Move profile id from one of the states in from_mask (bit = state) to to,
 * inside the caller's transaction, and record the history line.
 * ESIM_E_SMDP_TRANSITION when it was in another state. */
esim_err smdp_db_transition(store *s, int64_t profile_id, unsigned from_mask, enum smdp_state to,
			    time_t now, const char *why);
/* The same, in one UPDATE when the profile is in state expect (the state
 * the caller last saw), else as smdp_db_transition; also sets eid and
 * lifecycle when not NULL (the profile installed on an eUICC). */
esim_err smdp_db_transition_expect(store *s, int64_t profile_id, enum smdp_state expect,
				   unsigned from_mask, enum smdp_state to, time_t now,
				   const char *why, const char *eid, const char *lifecycle);
#define SMDP_BIT(st) (1u << (st))
/* Append a history line for a profile id. It marks the transaction durable
 * (store_make_durable): history and state are lasting. */
esim_err smdp_db_history(store *s, int64_t profile_id, time_t now, const char *event,
			 const char *detail);
/* Queue a HandleDownloadProgressInfo for the order's operator (es2.c);
 * no-op when the operator has no callback URL. status may be success. */
esim_err smdp_outbox_queue(smdp *d, store *s, int64_t order_id, int point,
			   const struct smdp_status *st, const uint8_t *result, size_t result_len);
/* Point 4 with the ProfileInstallationResult, and CERT.EUICC of the session
 * it ends with its EUM (from the cache or smdp_eum_certs) for the operator
 * to verify it. */
esim_err smdp_outbox_queue_pir(smdp *d, store *s, int64_t order_id, const struct smdp_status *st,
			       const uint8_t *pir, size_t pir_len, const uint8_t *euicc_cert,
			       size_t euicc_cert_len);
/* The same two for a callback caused by the ES9+ request request_id (NULL:
 * none), which the callback carries as X-Request-Id. */
esim_err smdp_outbox_queue_rid(smdp *d, store *s, const char *request_id, int64_t order_id,
			       int point, const struct smdp_status *st, const uint8_t *result,
			       size_t result_len);
esim_err smdp_outbox_queue_pir_rid(smdp *d, store *s, const char *request_id, int64_t order_id,
				   const struct smdp_status *st, const uint8_t *pir, size_t pir_len,
				   const uint8_t *euicc_cert, size_t euicc_cert_len);
/* smdp_outbox_queue_pir_rid for a caller that read the order earlier in
 * the same transaction: smds false (the order has no SM-DS event) skips the
 * DeleteEvent's read, callback false (its operator has no callback URL) the
 * callback's; true reads and decides as smdp_outbox_queue_pir_rid does. */
esim_err smdp_outbox_queue_pir_known(smdp *d, store *s, const char *request_id, int64_t order_id,
				     const struct smdp_status *st, const uint8_t *pir,
				     size_t pir_len, const uint8_t *euicc_cert,
				     size_t euicc_cert_len, bool smds, bool callback);

/* Load a KEK file (kek.c): a regular file of this user, mode 0600 or
 * stricter, with 32 bytes raw or in hex. ESIM_E_SMDP_KEK, with a line on
 * stderr naming the file and the fix, otherwise. */
esim_err smdp_kek_load(const char *path, struct smdp_kek *out);
void smdp_kek_clear(struct smdp_kek *k);
/* Seal Ki and / or OPc (either may be NULL, not both) of the profile iccid
 * under k into out. */
esim_err smdp_keys_seal(const struct smdp_kek *k, const char *iccid, const uint8_t *ki,
			const uint8_t *opc, uint8_t out[SMDP_SEALED_LEN]);
/* Open a sealed blob of iccid: *which says which of ki / opc it held (the
 * caller wipes both). ESIM_E_SMDP_KEK for another KEK or another row. */
esim_err smdp_keys_open(const struct smdp_kek *k, const char *iccid, const uint8_t *sealed,
			size_t len, uint8_t ki[16], uint8_t opc[16], unsigned *which);
/* Open the sealed Ki / OPc of a profile (sealed NULL: none, nothing to do)
 * and write them into its package upp, in memory. */
esim_err smdp_keys_apply(const smdp *d, const char *iccid, const uint8_t *sealed, size_t len,
			 const char *kek_id, uint8_t *upp, size_t upp_len);
/* Profiles imported before schema 5 with their Ki / OPc in clear inside
 * the package: sealed here when a KEK is loaded, refused otherwise
 * (inventory.c, called by smdp_open). */
esim_err smdp_seal_legacy(smdp *d);

/* Copy the first Ki / OPc of upp's akaParameter elements into ki / opc
 * (*found: SMDP_PERS_KI / SMDP_PERS_OPC) and zero every such slot
 * (personalise.c). */
esim_err smdp_upp_take_keys(uint8_t *upp, size_t len, uint8_t ki[16], uint8_t opc[16],
			    unsigned *found);

/* Free what smdp_set_smds copied (es12.c; NULL is fine). */
void smdp_smds_free(struct smdp_smds *m);
/* An SM-DS this SM-DP+ is configured with (es12.c). */
bool smdp_smds_known(const smdp *d, const char *address);
/* ConfirmOrder's RegisterEvent in three steps (es12.c), so that no
 * transaction waits on the SM-DS: reserve (in the order's transaction),
 * send (no transaction), settle (a second short transaction). */
struct smdp_es12_pending {
	int64_t row_id;	  /* the held outbox row (kind 1); 0: nothing pending */
	int64_t order_id; /* the order it registers */
	char *smds, *event_id, *body;
};
enum smdp_es12_outcome {
	SMDP_ES12_REGISTERED,
	SMDP_ES12_REFUSED,	/* Failed, or an HTTP 4xx: 8.9 / 4.2 */
	SMDP_ES12_INACCESSIBLE, /* TLS refused either way: 8.9 / 5.1 */
	SMDP_ES12_UNREACHABLE,	/* connect, timeout, 5xx: left to the outbox */
};
/* Step 1: *st 8.9 / 5.1 (nothing stored) for an SM-DS not configured;
 * else the RegisterEvent queued held, *p filled (clear it with
 * smdp_es12_pending_clear). */
esim_err smdp_es12_reserve(smdp *d, store *s, int64_t operator_id, int64_t order_id,
			   const char *smds, const char *eid, const char *event_id,
			   struct smdp_es12_pending *p, struct smdp_status *st);
/* Step 2: the call, outside any transaction. */
enum smdp_es12_outcome smdp_es12_send(smdp *d, const struct smdp_es12_pending *p);
/* Step 3, inside a transaction: the held row dropped (registered, refused,
 * inaccessible) or made due (unreachable). *row_gone: the order was ended
 * meanwhile (its DeleteEvent queued and the row dropped with it); a
 * registration that landed then gets another DeleteEvent queued. */
esim_err smdp_es12_settle(smdp *d, store *s, const struct smdp_es12_pending *p,
			  enum smdp_es12_outcome o, bool *row_gone);
void smdp_es12_pending_clear(struct smdp_es12_pending *p);
/* How the outbox judges an answer to a kind-1 row (es12.c): by its
 * functionExecutionStatus when the HTTP status is 2xx. why gets
 * "subject/reason" of a Failed answer. */
enum smdp_es12_verdict {
	SMDP_ES12_NOT_JUDGED, /* not 2xx: judged by the HTTP status alone */
	SMDP_ES12_DONE,
	SMDP_ES12_RETRY,
	SMDP_ES12_REFUSED_FOR_GOOD,
};
enum smdp_es12_verdict smdp_es12_answer(const char *url, long http, const uint8_t *body, size_t len,
					char *why, size_t why_len);
/* Queue the DeleteEvent of order_id's SM-DS event, if it has one, and drop
 * a RegisterEvent of it not yet sent. */
esim_err smdp_es12_queue_delete(smdp *d, store *s, int64_t order_id);

/* Lower-case SHA-256 hex of 32 bytes into out (65 bytes). */
void smdp_sha_hex(const uint8_t sha[32], char out[65]);

#endif
