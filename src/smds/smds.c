/*
 * The SM-DS handle (SGP.22 3.3; docs/smds.md): its identities (CERT.DSauth
 * and key per curve, SGP.22 4.5.2.1 role ds-auth), the CIs trusted for
 * eUICC chains, the SM-DP+s allowed on ES12 (address and the SHA-256 of
 * their TLS client certificate) and one store connection behind a lock.
 * Also the JSON header of every answer (SGP.22 6.5.1.4) and the log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/crypto.h"
#include "smds_int.h"

time_t smds_now(const smds *d)
{
	return d->clock ? d->clock(d->clock_arg) : time(NULL);
}

void smds_logf(const smds *d, const char *event, const char *fmt, ...)
{
	if (!d->log)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	const struct esim_log_kv kv[] = {ESIM_LOG_S("detail", line)};
	esim_log_emit(&d->logger, ESIM_LOG_INFO, NULL, event, kv, 1);
}

void smds_log(const smds *d, enum esim_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (d->logger.format == ESIM_LOG_TEXT)
		fprintf(stderr, "esim-smds: %s\n", msg);
	else
		esim_log_emit(&d->logger, level, NULL, msg, NULL, 0);
}

const char *smds_opt_str(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

esim_err smds_json_finish(const struct smds_status *st, json_t *fields, char **out)
{
	*out = NULL;
	json_t *fes = json_object();
	json_t *hdr = json_object();
	json_t *obj = json_object();
	if (!fes || !hdr || !obj) {
		json_decref(fes);
		json_decref(hdr);
		json_decref(obj);
		json_decref(fields);
		return ESIM_E_NOMEM;
	}
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
	json_object_set_new(hdr, "functionExecutionStatus", fes);
	json_object_set_new(obj, "header", hdr);
	if (fields && !st->subject)
		json_object_update(obj, fields);
	json_decref(fields);
	*out = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return *out ? ESIM_OK : ESIM_E_NOMEM;
}

static esim_err load_identity(const struct smds_identity_cfg *c, struct smds_identity *id)
{
	if (!c->dsauth_cert || !c->dsauth_key)
		return ESIM_E_ARG;
	esim_err err;
	if ((err = crypto_cert_load_file(c->dsauth_cert, &id->dsauth)) != ESIM_OK ||
	    (err = crypto_key_load_private_file(c->dsauth_key, &id->dsauth_key)) != ESIM_OK)
		return err;
	crypto_rsp_role role;
	if ((err = crypto_cert_role(id->dsauth, &role)) != ESIM_OK)
		return err;
	if (role != CRYPTO_ROLE_DS_AUTH) {
		fprintf(stderr, "smds: %s is not a CERT.DSauth (role ds-auth)\n", c->dsauth_cert);
		return ESIM_E_CERT_WRONG_ROLE;
	}
	if ((err = crypto_cert_curve(id->dsauth, &id->curve)) != ESIM_OK)
		return err;
	return crypto_cert_aki(id->dsauth, id->ci_pkid, &id->ci_pkid_len);
}

esim_err smds_open(const struct smds_config *cfg, smds **out)
{
	*out = NULL;
	if (!cfg || !cfg->db_url || !cfg->fqdn || cfg->n_ids == 0 ||
	    cfg->n_ids > SMDS_MAX_IDENTITIES || cfg->n_ci > SMDS_MAX_CI ||
	    cfg->n_smdps > SMDS_MAX_SMDP)
		return ESIM_E_ARG;
	smds *d = calloc(1, sizeof *d);
	if (!d)
		return ESIM_E_NOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->fqdn = strdup(cfg->fqdn);
	d->session_ttl_s = cfg->session_ttl_s ? cfg->session_ttl_s : 300;
	d->check_time = !cfg->no_cert_time_check;
	d->log = cfg->log;
	esim_log_init(&d->logger, "esim-smds", cfg->log_format);
	d->clock = cfg->clock;
	d->clock_arg = cfg->clock_arg;
	esim_err err = d->fqdn ? crypto_trust_new(&d->trust) : ESIM_E_NOMEM;
	for (size_t i = 0; err == ESIM_OK && i < cfg->n_ids; i++) {
		err = load_identity(&cfg->ids[i], &d->ids[i]);
		d->n_ids = i + 1;
	}
	for (size_t i = 0; err == ESIM_OK && i < cfg->n_ci; i++)
		err = crypto_trust_add_ci_file(d->trust, cfg->ci_paths[i]);
	for (size_t i = 0; err == ESIM_OK && i < cfg->n_smdps; i++) {
		if (!cfg->smdps[i].address) {
			err = ESIM_E_ARG;
			break;
		}
		d->smdps[i].address = strdup(cfg->smdps[i].address);
		memcpy(d->smdps[i].sha, cfg->smdps[i].cert_sha256, 32);
		d->n_smdps = i + 1;
		if (!d->smdps[i].address)
			err = ESIM_E_NOMEM;
	}
	if (err == ESIM_OK)
		err = store_open(cfg->db_url, &d->db);
	if (err == ESIM_OK)
		err = smds_schema_migrate(d->db);
	if (err != ESIM_OK) {
		smds_close(d);
		return err;
	}
	*out = d;
	return ESIM_OK;
}

void smds_close(smds *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_ids; i++) {
		crypto_cert_free(d->ids[i].dsauth);
		EVP_PKEY_free(d->ids[i].dsauth_key); /* OpenSSL cleanses the scalar */
	}
	for (size_t i = 0; i < d->n_smdps; i++)
		free(d->smdps[i].address);
	crypto_trust_free(d->trust);
	store_close(d->db);
	pthread_mutex_destroy(&d->lock);
	free(d->fqdn);
	free(d);
}

esim_err smds_smdp_pins(const smds *d, uint8_t (**pins)[32], size_t *n)
{
	*pins = NULL;
	*n = 0;
	if (d->n_smdps == 0)
		return ESIM_OK;
	*pins = calloc(d->n_smdps, sizeof **pins);
	if (!*pins)
		return ESIM_E_NOMEM;
	for (size_t i = 0; i < d->n_smdps; i++)
		memcpy((*pins)[i], d->smdps[i].sha, 32);
	*n = d->n_smdps;
	return ESIM_OK;
}

esim_err smds_health(smds *d)
{
	pthread_mutex_lock(&d->lock);
	store_stmt *st;
	esim_err err = store_prepare(d->db, "SELECT 1", &st);
	if (err == ESIM_OK) {
		bool row;
		err = store_step(st, &row);
		store_finalize(st);
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}

esim_err smds_event_count(smds *d, const char *eid, size_t *out)
{
	*out = 0;
	pthread_mutex_lock(&d->lock);
	store_stmt *st;
	esim_err err = store_prepare(d->db,
				     eid ? "SELECT COUNT(*) FROM smds_events WHERE eid = ?1"
					 : "SELECT COUNT(*) FROM smds_events",
				     &st);
	if (err == ESIM_OK) {
		if (eid)
			store_bind_text(st, 1, eid);
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK && row)
			*out = (size_t)store_col_int64(st, 0);
		store_finalize(st);
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}

esim_err smds_purge_sessions(smds *d, size_t *deleted)
{
	if (deleted)
		*deleted = 0;
	pthread_mutex_lock(&d->lock);
	store_stmt *st;
	esim_err err = store_prepare(d->db, "DELETE FROM smds_sessions WHERE created < ?1", &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, (int64_t)smds_now(d) - (int64_t)d->session_ttl_s);
		err = store_run(st);
		if (err == ESIM_OK && deleted)
			*deleted = (size_t)store_changes(d->db);
		store_finalize(st);
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}
