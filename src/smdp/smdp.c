/*
 * The SM-DP+ handle: configuration, its SGP.22 identities (CERT.DPauth and
 * CERT.DPpb per curve, digest 10.3), the trusted CIs for eUICC chains, a
 * pool of store connections shared by the server's worker threads, the
 * key-encryption key of Ki / OPc at rest (kek.c), the ES2+/ES9+ response
 * header (digest 5.2), logs and metrics.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "smdp_int.h"

time_t smdp_now(const smdp *d)
{
	return d->clock ? d->clock(d->clock_arg) : time(NULL);
}

const char *smdp_oid(const smdp *d)
{
	return d->oid;
}

void smdp_sha_hex(const uint8_t sha[32], char out[65])
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = hx[sha[i] >> 4];
		out[2 * i + 1] = hx[sha[i] & 15];
	}
	out[64] = '\0';
}

static void logv(const smdp *d, const char *rid, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void logv(const smdp *d, const char *rid, const char *event, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof line, fmt, ap);
	const struct esim_log_kv kv[] = {ESIM_LOG_S("detail", line)};
	esim_log_emit(&d->logger, ESIM_LOG_INFO, rid, event, kv, 1);
}

void smdp_logf(const smdp *d, const char *event, const char *fmt, ...)
{
	if (!d->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	logv(d, NULL, event, fmt, ap);
	va_end(ap);
}

void smdp_logf_rid(const smdp *d, const char *request_id, const char *event, const char *fmt, ...)
{
	if (!d->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	logv(d, request_id, event, fmt, ap);
	va_end(ap);
}

static esim_err load_identity(const struct smdp_identity_cfg *c, struct smdp_identity *id)
{
	esim_err err;
	if (!c->dpauth_cert || !c->dpauth_key || !c->dppb_cert || !c->dppb_key)
		return ESIM_E_SMDP_CONFIG;
	if ((err = crypto_cert_load_file(c->dpauth_cert, &id->dpauth)) != ESIM_OK ||
	    (err = crypto_cert_load_file(c->dppb_cert, &id->dppb)) != ESIM_OK ||
	    (err = crypto_key_load_private_file(c->dpauth_key, &id->dpauth_key)) != ESIM_OK ||
	    (err = crypto_key_load_private_file(c->dppb_key, &id->dppb_key)) != ESIM_OK)
		return err;
	crypto_rsp_role r1, r2;
	if (crypto_cert_role(id->dpauth, &r1) != ESIM_OK || r1 != CRYPTO_ROLE_DP_AUTH ||
	    crypto_cert_role(id->dppb, &r2) != ESIM_OK || r2 != CRYPTO_ROLE_DP_PB)
		return ESIM_E_SMDP_CONFIG;
	/* each key must belong to its certificate */
	if (EVP_PKEY_eq(id->dpauth_key, crypto_cert_pubkey(id->dpauth)) != 1 ||
	    EVP_PKEY_eq(id->dppb_key, crypto_cert_pubkey(id->dppb)) != 1)
		return ESIM_E_SMDP_CONFIG;
	if ((err = crypto_cert_curve(id->dpauth, &id->curve)) != ESIM_OK)
		return err;
	uint8_t aki2[CRYPTO_KEY_ID_MAX];
	size_t aki2_len;
	if ((err = crypto_cert_aki(id->dpauth, id->ci_pkid, &id->ci_pkid_len)) != ESIM_OK ||
	    (err = crypto_cert_aki(id->dppb, aki2, &aki2_len)) != ESIM_OK)
		return err;
	if (aki2_len != id->ci_pkid_len || memcmp(aki2, id->ci_pkid, aki2_len) != 0)
		return ESIM_E_SMDP_CONFIG;
	return ESIM_OK;
}

static void identity_clear(struct smdp_identity *id)
{
	crypto_cert_free(id->dpauth);
	crypto_cert_free(id->dppb);
	EVP_PKEY_free(id->dpauth_key);
	EVP_PKEY_free(id->dppb_key);
	memset(id, 0, sizeof *id);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

esim_err smdp_open(const struct smdp_config *cfg, smdp **out)
{
	if (!cfg || !out || !cfg->db_url || !cfg->fqdn || cfg->n_ids == 0 ||
	    cfg->n_ids > SMDP_MAX_IDENTITIES || cfg->n_ci > SMDP_MAX_CI)
		return ESIM_E_ARG;
	smdp *d = calloc(1, sizeof *d);
	if (!d)
		return ESIM_E_NOMEM;
	pthread_mutex_init(&d->pool_lock, NULL);
	pthread_cond_init(&d->pool_cond, NULL);
	pthread_mutex_init(&d->metric_lock, NULL);
	pthread_mutex_init(&d->eum_lock, NULL);
	pthread_mutex_init(&d->key_lock, NULL);
	d->pool_max = cfg->max_db_connections ? cfg->max_db_connections : 16;
	if (d->pool_max > SMDP_POOL_MAX)
		d->pool_max = SMDP_POOL_MAX;
	esim_err err = ESIM_OK;
	d->db_url = dup_or_null(cfg->db_url);
	d->fqdn = dup_or_null(cfg->fqdn);
	if (!d->db_url || !d->fqdn) {
		err = ESIM_E_NOMEM;
		goto fail;
	}
	d->session_ttl_s = cfg->session_ttl_s ? cfg->session_ttl_s : 600;
	d->cc_max = cfg->cc_max_attempts ? cfg->cc_max_attempts : 3;
	d->max_attempts = cfg->max_download_attempts ? cfg->max_download_attempts : 10;
	d->order_ttl_s = cfg->order_ttl_s ? cfg->order_ttl_s : 30u * 86400u;
	d->max_pending = cfg->max_pending_sessions ? cfg->max_pending_sessions : 10000;
	d->refuse_rebind = cfg->refuse_rebind;
	d->check_time = !cfg->no_cert_time_check;
	d->log = cfg->log;
	esim_log_init(&d->logger, "esim-smdp", cfg->log_format);
	d->clock = cfg->clock;
	d->clock_arg = cfg->clock_arg;
	if (cfg->kek_file && (err = smdp_kek_load(cfg->kek_file, &d->kek)) != ESIM_OK)
		goto fail;
	for (size_t i = 0; i < cfg->n_ids; i++) {
		if ((err = load_identity(&cfg->ids[i], &d->ids[i])) != ESIM_OK)
			goto fail;
		d->n_ids++;
	}
	if ((err = crypto_trust_new(&d->trust)) != ESIM_OK)
		goto fail;
	for (size_t i = 0; i < cfg->n_ci; i++)
		if ((err = crypto_trust_add_ci_file(d->trust, cfg->ci_paths[i])) != ESIM_OK)
			goto fail;
	if (cfg->oid) {
		d->oid = strdup(cfg->oid);
	} else {
		char buf[RSP_OID_TEXT_MAX];
		if ((err = crypto_cert_registered_id(d->ids[0].dpauth, buf, sizeof buf)) !=
		    ESIM_OK) {
			err = ESIM_E_SMDP_CONFIG;
			goto fail;
		}
		d->oid = strdup(buf);
	}
	if (!d->oid) {
		err = ESIM_E_NOMEM;
		goto fail;
	}
	/* open and migrate one connection now, so that a bad URL fails here */
	store *s;
	if ((err = smdp_store_get(d, &s)) != ESIM_OK)
		goto fail;
	smdp_store_put(d, s);
	/* Ki / OPc of profiles from before schema 5 are sealed now, or the
	 * database is refused */
	if ((err = smdp_seal_legacy(d)) != ESIM_OK)
		goto fail;
	*out = d;
	return ESIM_OK;
fail:
	smdp_close(d);
	return err;
}

void smdp_close(smdp *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_pool; i++)
		store_close(d->pool[i]);
	for (size_t i = 0; i < SMDP_MAX_IDENTITIES; i++)
		identity_clear(&d->ids[i]);
	for (size_t i = 0; i < d->n_eum; i++)
		crypto_cert_free(d->eum[i].cert);
	for (size_t i = 0; i < SMDP_KEY_CACHE; i++)
		EVP_PKEY_free(d->keys[i].key);
	crypto_trust_free(d->trust);
	smdp_smds_free(d->smds);
	smdp_kek_clear(&d->kek);
	free(d->db_url);
	free(d->fqdn);
	free(d->oid);
	pthread_mutex_destroy(&d->pool_lock);
	pthread_cond_destroy(&d->pool_cond);
	pthread_mutex_destroy(&d->metric_lock);
	pthread_mutex_destroy(&d->eum_lock);
	pthread_mutex_destroy(&d->key_lock);
	free(d);
}

esim_err smdp_store_get(smdp *d, store **out)
{
	/* at most pool_max connections: a caller beyond that waits for one */
	pthread_mutex_lock(&d->pool_lock);
	while (d->n_pool == 0 && d->n_open >= d->pool_max)
		pthread_cond_wait(&d->pool_cond, &d->pool_lock);
	if (d->n_pool > 0) {
		*out = d->pool[--d->n_pool];
		pthread_mutex_unlock(&d->pool_lock);
		return ESIM_OK;
	}
	d->n_open++;
	pthread_mutex_unlock(&d->pool_lock);
	store *s = NULL;
	esim_err err = store_open(d->db_url, &s);
	if (err == ESIM_OK)
		err = smdp_schema_migrate(s);
	if (err != ESIM_OK) {
		store_close(s);
		pthread_mutex_lock(&d->pool_lock);
		d->n_open--;
		pthread_cond_signal(&d->pool_cond);
		pthread_mutex_unlock(&d->pool_lock);
		return err;
	}
	*out = s;
	return ESIM_OK;
}

void smdp_store_put(smdp *d, store *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&d->pool_lock);
	d->pool[d->n_pool++] = s; /* n_pool <= n_open <= pool_max <= SMDP_POOL_MAX */
	pthread_cond_signal(&d->pool_cond);
	pthread_mutex_unlock(&d->pool_lock);
}

/* ---- response header (digest 5.2) ------------------------------------------ */

json_t *smdp_json_header(const struct smdp_status *st)
{
	json_t *fes = json_object();
	if (!st->subject) {
		json_object_set_new(fes, "status", json_string("Executed-Success"));
	} else {
		json_object_set_new(fes, "status", json_string("Failed"));
		json_t *scd = json_object();
		json_object_set_new(scd, "subjectCode", json_string(st->subject));
		json_object_set_new(scd, "reasonCode", json_string(st->reason));
		if (st->message)
			json_object_set_new(scd, "message", json_string(st->message));
		json_object_set_new(fes, "statusCodeData", scd);
	}
	json_t *hdr = json_object();
	json_object_set_new(hdr, "functionExecutionStatus", fes);
	json_t *obj = json_object();
	json_object_set_new(obj, "header", hdr);
	return obj;
}

void smdp_metric_failure(smdp *d, const char *subject)
{
	pthread_mutex_lock(&d->metric_lock);
	for (size_t i = 0; i < SMDP_METRIC_SUBJECTS; i++) {
		if (d->fail_subject[i][0] == '\0')
			snprintf(d->fail_subject[i], sizeof d->fail_subject[i], "%s", subject);
		if (strcmp(d->fail_subject[i], subject) == 0) {
			d->fail_count[i]++;
			break;
		}
	}
	pthread_mutex_unlock(&d->metric_lock);
}

esim_err smdp_json_finish(smdp *d, json_t *obj, const struct smdp_status *st, char **out)
{
	if (!obj)
		return ESIM_E_NOMEM;
	if (st->subject)
		smdp_metric_failure(d, st->subject);
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!text)
		return ESIM_E_NOMEM;
	*out = text;
	return ESIM_OK;
}

esim_err smdp_health(smdp *d)
{
	if (!d)
		return ESIM_E_ARG;
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	if ((err = store_prepare(s, "SELECT 1", &st)) == ESIM_OK) {
		bool row = false;
		err = store_step(st, &row);
		if (err == ESIM_OK && (!row || store_col_int64(st, 0) != 1))
			err = ESIM_E_STORE_CORRUPT;
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_metrics(smdp *d, char **out)
{
	esim_buf b = ESIM_BUF_INIT;
	char line[256];
	int n;
#define METRIC(name, help, val)                                                                    \
	do {                                                                                       \
		n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s counter\n%s %lu\n", name, \
			     help, name, name, (unsigned long)(val));                              \
		esim_buf_append(&b, line, (size_t)n);                                              \
	} while (0)
	METRIC("smdp_es9_requests_total", "ES9+ requests", atomic_load(&d->req_es9));
	METRIC("smdp_es9_failures_total", "ES9+ requests answered Failed",
	       atomic_load(&d->fail_es9));
	METRIC("smdp_es2_requests_total", "ES2+ requests", atomic_load(&d->req_es2));
	METRIC("smdp_es2_failures_total", "ES2+ requests answered Failed",
	       atomic_load(&d->fail_es2));
	METRIC("smdp_downloads_total", "bound profile packages delivered",
	       atomic_load(&d->downloads));
	METRIC("smdp_installs_total", "verified successful installations",
	       atomic_load(&d->installs));
	METRIC("smdp_notifications_total", "notifications received",
	       atomic_load(&d->notifications));
	METRIC("smdp_request_latency_microseconds_total", "handler time, summed",
	       atomic_load(&d->latency_us));
	METRIC("smdp_outbox_delivered_total", "operator callbacks delivered (2xx)",
	       atomic_load(&d->outbox_delivered));
	METRIC("smdp_outbox_retried_total",
	       "operator callback attempts to retry (no answer, 5xx, 408, 429)",
	       atomic_load(&d->outbox_retried));
	METRIC("smdp_outbox_failed_total",
	       "operator callbacks refused for good (other 4xx), not sent again",
	       atomic_load(&d->outbox_refused));
	METRIC("smdp_es12_refused_total",
	       "SM-DS event registrations from the outbox refused for good (Failed or 4xx)",
	       atomic_load(&d->es12_refused));
#undef METRIC
	n = snprintf(line, sizeof line,
		     "# HELP smdp_failures_by_subject_total Failed responses by subject code\n"
		     "# TYPE smdp_failures_by_subject_total counter\n");
	esim_buf_append(&b, line, (size_t)n);
	pthread_mutex_lock(&d->metric_lock);
	for (size_t i = 0; i < SMDP_METRIC_SUBJECTS && d->fail_subject[i][0]; i++) {
		n = snprintf(line, sizeof line,
			     "smdp_failures_by_subject_total{subject=\"%s\"} %lu\n",
			     d->fail_subject[i], d->fail_count[i]);
		esim_buf_append(&b, line, (size_t)n);
	}
	pthread_mutex_unlock(&d->metric_lock);
	if (esim_buf_append_byte(&b, 0) != ESIM_OK) {
		esim_buf_free(&b);
		return ESIM_E_NOMEM;
	}
	*out = (char *)b.data;
	return ESIM_OK;
}
