/*
 * Internals of the SM-DS shared by its files: the handle, the status codes
 * (SGP.22 5.2 / 5.8 / 5.9; digest 5.4) and small helpers.
 */
#ifndef ESIM_SMDS_INT_H
#define ESIM_SMDS_INT_H

#include <pthread.h>

#include <jansson.h>
#include <openssl/types.h>

#include "esim/cert.h"
#include "esim/rsp.h"
#include "esim/smds.h"
#include "esim/store.h"

/* One SM-DS identity, loaded: CERT.DSauth and its key. */
struct smds_identity {
	crypto_cert *dsauth;
	EVP_PKEY *dsauth_key; /* secret: freed (and so cleansed) by smds_close */
	crypto_curve curve;
	uint8_t ci_pkid[CRYPTO_KEY_ID_MAX]; /* AKI of DSauth = SKI of its CI */
	size_t ci_pkid_len;
};

struct smds_smdp {
	char *address;
	uint8_t sha[32];
};

struct smds {
	char *fqdn;
	struct smds_identity ids[SMDS_MAX_IDENTITIES];
	size_t n_ids;
	crypto_trust *trust;
	struct smds_smdp smdps[SMDS_MAX_SMDP];
	size_t n_smdps;
	unsigned session_ttl_s;
	bool check_time, log;
	esim_log logger; /* one JSON object per line (include/esim/log.h) */
	time_t (*clock)(void *arg);
	void *clock_arg;
	pthread_mutex_t lock; /* guards db: one statement sequence at a time */
	store *db;
};

/* A function execution status. subject NULL: success. */
struct smds_status {
	const char *subject, *reason, *message;
};
#define SMDS_OK		   ((struct smds_status){NULL, NULL, NULL})
#define SMDS_FAIL(s, r, m) ((struct smds_status){(s), (r), (m)})

time_t smds_now(const smds *d);
void smds_logf(const smds *d, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The response document: header (from st) plus fields (stolen, may be
 * NULL; dropped on failure), serialised into *out. */
esim_err smds_json_finish(const struct smds_status *st, json_t *fields, char **out);
/* A string member, or NULL when absent or not a string. */
const char *smds_opt_str(const json_t *o, const char *k);
/* Schema (schema.c). */
esim_err smds_schema_migrate(store *s);

#endif
