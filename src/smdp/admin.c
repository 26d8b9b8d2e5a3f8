/*
 * Administration helpers of the SM-DP+ program: the operators' pinned
 * ES2+ client certificates (digest 9.2: agreed bilaterally, pinned), and
 * orders created by an administrator, which go through the very same
 * ES2+ DownloadOrder / ConfirmOrder code as an operator's call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "smdp_int.h"

esim_err smdp_operator_pins(smdp *d, uint8_t (**pins)[32], size_t *n)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	*pins = NULL;
	*n = 0;
	store_stmt *st;
	err = store_prepare(
	    s, "SELECT cert_sha256 FROM smdp_operators WHERE cert_sha256 IS NOT NULL", &st);
	bool row;
	while (err == ESIM_OK && (err = store_step(st, &row)) == ESIM_OK && row) {
		uint8_t(*np)[32] = realloc(*pins, (*n + 1) * sizeof **pins);
		if (!np) {
			err = ESIM_E_NOMEM;
			break;
		}
		*pins = np;
		if (esim_hex_decode_fixed(store_col_text(st, 0), (*pins)[*n], 32) == ESIM_OK)
			(*n)++;
	}
	store_finalize(st);
	smdp_store_put(d, s);
	if (err != ESIM_OK) {
		free(*pins);
		*pins = NULL;
		*n = 0;
	}
	return err;
}

static esim_err operator_sha(smdp *d, const char *name, uint8_t sha[32])
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(s, "SELECT cert_sha256 FROM smdp_operators WHERE name = ?1", &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, name);
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK && (!row || store_col_is_null(st, 0)))
			err = ESIM_E_SMDP_UNKNOWN;
		if (err == ESIM_OK)
			err = esim_hex_decode_fixed(store_col_text(st, 0), sha, 32);
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

/* One ES2+ call as the operator; on a failure its codes go to *st, or to
 * stderr when st is NULL. */
static esim_err call_st(smdp *d, const uint8_t sha[32], const char *op, const char *fn,
			json_t *fields, json_t **out, struct smdp_admin_status *st);

static esim_err call(smdp *d, const uint8_t sha[32], const char *op, const char *fn, json_t *fields,
		     json_t **out)
{
	return call_st(d, sha, op, fn, fields, out, NULL);
}

static esim_err call_st(smdp *d, const uint8_t sha[32], const char *op, const char *fn,
			json_t *fields, json_t **out, struct smdp_admin_status *sts)
{
	uint8_t r[8];
	char cid[40];
	RAND_bytes(r, sizeof r);
	snprintf(cid, sizeof cid, "admin-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
		 r[4], r[5], r[6], r[7]);
	json_t *h = json_object();
	json_object_set_new(h, "functionRequesterIdentifier", json_string(op));
	json_object_set_new(h, "functionCallIdentifier", json_string(cid));
	json_object_set_new(fields, "header", h);
	char *body = json_dumps(fields, JSON_COMPACT);
	json_decref(fields);
	if (!body)
		return ESIM_E_NOMEM;
	int status;
	char *resp = NULL;
	esim_err err = smdp_es2(d, fn, sha, (const uint8_t *)body, strlen(body), &status, &resp);
	free(body);
	if (err != ESIM_OK)
		return err;
	*out = json_loads(resp, 0, NULL);
	free(resp);
	if (!*out)
		return ESIM_E_NET_JSON;
	json_t *fes = json_object_get(json_object_get(*out, "header"), "functionExecutionStatus");
	const char *st = json_string_value(json_object_get(fes, "status"));
	if (!st || strcmp(st, "Executed-Success") != 0) {
		json_t *scd = json_object_get(fes, "statusCodeData");
		const char *sc = json_string_value(json_object_get(scd, "subjectCode"));
		const char *rc = json_string_value(json_object_get(scd, "reasonCode"));
		const char *msg = json_string_value(json_object_get(scd, "message"));
		if (sts) {
			snprintf(sts->subject, sizeof sts->subject, "%s", sc ? sc : "");
			snprintf(sts->reason, sizeof sts->reason, "%s", rc ? rc : "");
			snprintf(sts->message, sizeof sts->message, "%s: %s", fn, msg ? msg : "");
		} else {
			fprintf(stderr, "esim-smdp: %s failed: %s / %s (%s)\n", fn, sc, rc, msg);
		}
		json_decref(*out);
		*out = NULL;
		return ESIM_E_SMDP_UNKNOWN;
	}
	return ESIM_OK;
}

esim_err smdp_admin_order(smdp *d, const char *operator_name, const char *type,
			  const char *iccid_in, const char *eid, const char *cc, char *iccid,
			  char *matching_id)
{
	uint8_t sha[32];
	esim_err err = operator_sha(d, operator_name, sha);
	if (err != ESIM_OK)
		return err;
	json_t *f = json_object(), *out = NULL;
	if (iccid_in)
		json_object_set_new(f, "iccid", json_string(iccid_in));
	else
		json_object_set_new(f, "profileType", json_string(type));
	if (eid)
		json_object_set_new(f, "eid", json_string(eid));
	if ((err = call(d, sha, operator_name, "downloadOrder", f, &out)) != ESIM_OK)
		return err;
	snprintf(iccid, 64, "%s", json_string_value(json_object_get(out, "iccid")));
	json_decref(out);
	f = json_object();
	json_object_set_new(f, "iccid", json_string(iccid));
	json_object_set_new(f, "releaseFlag", json_true());
	if (cc)
		json_object_set_new(f, "confirmationCode", json_string(cc));
	if ((err = call(d, sha, operator_name, "confirmOrder", f, &out)) != ESIM_OK)
		return err;
	snprintf(matching_id, 64, "%s", json_string_value(json_object_get(out, "matchingId")));
	json_decref(out);
	return ESIM_OK;
}

/* An operator's matchingId goes into the activation code as is: nothing
 * that would break it or a QR code's alphanumeric mode ("" is the default
 * SM-DP+ case of ES2+ and left to ConfirmOrder). */
static bool matching_id_ok(const char *m)
{
	size_t n = strlen(m);
	if (n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = m[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

/* The order's own expiry, instead of the SM-DP+'s default (order_ttl_s). */
static esim_err set_expiry(smdp *d, const char *iccid, time_t expires)
{
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	err = store_prepare(s,
			    "UPDATE smdp_orders SET expires = ?1 WHERE open = 1 AND profile_id ="
			    " (SELECT id FROM smdp_profiles WHERE iccid = ?2)",
			    &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, (int64_t)expires);
		store_bind_text(st, 2, iccid);
		err = store_run(st);
		if (err == ESIM_OK && store_changes(s) != 1)
			err = ESIM_E_NOT_FOUND;
		store_finalize(st);
	}
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_admin_order_opts(smdp *d, const char *operator_name, const struct smdp_order_opts *o,
			       char *iccid, char *matching_id, struct smdp_admin_status *sts)
{
	if (sts)
		memset(sts, 0, sizeof *sts);
	if (!d || !operator_name || !o || (!o->type && !o->iccid) || !iccid || !matching_id)
		return ESIM_E_ARG;
	if (o->matching_id && !matching_id_ok(o->matching_id)) {
		if (sts)
			snprintf(
			    sts->message, sizeof sts->message,
			    "matchingId '%.64s': 1 to 64 letters, digits, '-', '.' or '_' (it is "
			    "a field of the activation code, which is split on '$')",
			    o->matching_id);
		return ESIM_E_ARG;
	}
	if (o->expires && o->expires <= smdp_now(d)) {
		if (sts)
			snprintf(sts->message, sizeof sts->message,
				 "the order's expiry must be in the future");
		return ESIM_E_ARG;
	}
	uint8_t sha[32];
	esim_err err = operator_sha(d, operator_name, sha);
	if (err != ESIM_OK) {
		if (sts)
			snprintf(sts->message, sizeof sts->message,
				 "operator '%s' unknown or without a pinned certificate",
				 operator_name);
		return err;
	}
	json_t *f = json_object(), *out = NULL;
	if (o->iccid)
		json_object_set_new(f, "iccid", json_string(o->iccid));
	else
		json_object_set_new(f, "profileType", json_string(o->type));
	if (o->eid)
		json_object_set_new(f, "eid", json_string(o->eid));
	if ((err = call_st(d, sha, operator_name, "downloadOrder", f, &out, sts)) != ESIM_OK)
		return err;
	snprintf(iccid, 64, "%s", json_string_value(json_object_get(out, "iccid")));
	json_decref(out);
	if (o->expires && (err = set_expiry(d, iccid, o->expires)) != ESIM_OK)
		return err;
	f = json_object();
	json_object_set_new(f, "iccid", json_string(iccid));
	json_object_set_new(f, "releaseFlag", o->hold ? json_false() : json_true());
	if (o->eid)
		json_object_set_new(f, "eid", json_string(o->eid));
	if (o->matching_id)
		json_object_set_new(f, "matchingId", json_string(o->matching_id));
	if (o->cc)
		json_object_set_new(f, "confirmationCode", json_string(o->cc));
	if (o->smds_address)
		json_object_set_new(f, "smdsAddress", json_string(o->smds_address));
	if ((err = call_st(d, sha, operator_name, "confirmOrder", f, &out, sts)) != ESIM_OK) {
		/* no half-made order left behind: the profile goes back to
		 * Available (its history keeps both calls) */
		struct smdp_admin_status ignored;
		json_t *c = json_object(), *cout = NULL;
		json_object_set_new(c, "iccid", json_string(iccid));
		json_object_set_new(c, "finalProfileStatusIndicator", json_string("Available"));
		if (o->eid) /* an order linked to an EID is cancelled with it */
			json_object_set_new(c, "eid", json_string(o->eid));
		call_st(d, sha, operator_name, "cancelOrder", c, &cout, &ignored);
		json_decref(cout);
		return err;
	}
	snprintf(matching_id, 64, "%s", json_string_value(json_object_get(out, "matchingId")));
	json_decref(out);
	return ESIM_OK;
}

esim_err smdp_admin_release(smdp *d, const char *operator_name, const char *iccid,
			    struct smdp_admin_status *sts)
{
	if (sts)
		memset(sts, 0, sizeof *sts);
	if (!d || !operator_name || !iccid)
		return ESIM_E_ARG;
	uint8_t sha[32];
	esim_err err = operator_sha(d, operator_name, sha);
	if (err != ESIM_OK) {
		if (sts)
			snprintf(sts->message, sizeof sts->message,
				 "operator '%s' unknown or without a pinned certificate",
				 operator_name);
		return err;
	}
	json_t *f = json_object(), *out = NULL;
	json_object_set_new(f, "iccid", json_string(iccid));
	err = call_st(d, sha, operator_name, "releaseProfile", f, &out, sts);
	json_decref(out);
	return err;
}
