/*
 * ES2+ callbacks from the SM-DP+: SGP.22 5.3.5 HandleDownloadProgressInfo.
 *
 * The callback changes lines and closes termination cases, so it is served
 * apart from the customers' portal: on a listener of its own with mutual
 * TLS, where the only client certificate accepted is the SM-DP+'s, pinned
 * by the SHA-256 of its DER (net_server refuses any other in the
 * handshake; the handler checks the pin again). Then, in one store
 * transaction with its audit entries:
 *
 *  - the header's functionRequesterIdentifier must be the configured
 *    SM-DP+ identity, and its functionCallIdentifier is remembered with the
 *    SHA-256 of the body: the same call resent gets the same answer and is
 *    not applied again, the same identifier with another body is refused;
 *  - the ICCID must be one of this operator's ordered lines, and an EID
 *    must not differ from the EID already bound to the line;
 *  - nothing that changes a line rests on the SM-DP+'s word alone: the
 *    activation (point 4) needs the eUICC-signed ProfileInstallationResult
 *    (digest 8.2) for that ICCID, verified with CERT.EUICC whose chain
 *    (EUM, CI) the SM-DP+ forwards along with it; closing a case (point 5)
 *    needs the eUICC-signed delete notification (OtherSignedNotification,
 *    digest 8.4), verified to the CI. A notification's (EID, seqNumber) is
 *    applied once;
 *  - the audit actor is the authenticated certificate ("smdp:" and the
 *    first 16 hex digits of its SHA-256), not a name the body gives.
 *
 * Answers: 204 done (or nothing to do), 400 malformed, 403 wrong caller,
 * 404 not our ICCID, 409 a state or EID conflict or a reused call
 * identifier, 422 a proof that does not verify; storage trouble is a 500,
 * which the SM-DP+'s outbox retries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/rsp.h"
#include "op_int.h"

#define CB_PATH	      "/gsma/rsp2/es2plus/handleDownloadProgressInfo"
#define CB_BODY_MAX   (256 * 1024)
#define CB_CALLID_MAX 128

struct op_callback {
	op *o;
	esim_log log; /* one line per callback, with its request id */
	char *smdp_id;
	uint8_t pin[32];
	char actor[40]; /* "smdp:" + 16 hex digits of the pinned certificate's SHA-256 */
};

/* Its tables, op_es2_calls and op_es2_notifications, are in op.c's
 * migrations (3); op_tick prunes old call identifiers. */

esim_err op_callback_new(op *o, const struct op_callback_config *cfg, op_callback **out)
{
	*out = NULL;
	if (!o || !cfg || !cfg->smdp_id || !*cfg->smdp_id || !cfg->smdp_client_cert_file)
		return ESIM_E_OP_CONFIG;
	if (!o->trust)
		return ESIM_E_OP_CONFIG; /* proofs cannot be verified without a CI */
	crypto_cert *c = NULL;
	esim_err err = crypto_cert_load_file(cfg->smdp_client_cert_file, &c);
	if (err != ESIM_OK)
		return err;
	op_callback *cb = calloc(1, sizeof *cb);
	if (!cb) {
		crypto_cert_free(c);
		return ESIM_E_NOMEM;
	}
	size_t len;
	const uint8_t *der = crypto_cert_der(c, &len);
	crypto_hash_sha256(cb->pin, der, len);
	crypto_cert_free(c);
	char hex[65];
	sodium_bin2hex(hex, sizeof hex, cb->pin, sizeof cb->pin);
	snprintf(cb->actor, sizeof cb->actor, "smdp:%.16s", hex);
	cb->o = o;
	if (cfg->log != NULL)
		cb->log = *cfg->log;
	else
		esim_log_init(&cb->log, "esim-operator", ESIM_LOG_JSON);
	cb->smdp_id = strdup(cfg->smdp_id);
	if (!cb->smdp_id) {
		op_callback_free(cb);
		return ESIM_E_NOMEM;
	}
	*out = cb;
	return ESIM_OK;
}

void op_callback_free(op_callback *cb)
{
	if (!cb)
		return;
	free(cb->smdp_id);
	free(cb);
}

const uint8_t *op_callback_pin(const op_callback *cb)
{
	return cb->pin;
}

const char *op_callback_actor(const op_callback *cb)
{
	return cb->actor;
}

/* ---- one request ------------------------------------------------------------ */

struct cbreq {
	op_callback *cb;
	op *o;
	const char *actor;
	json_t *j;
	const char *iccid;
	int point;
	bool success;
	int status;
	char why[160];
};

/* Refuse: the status, the reason for the answer and one audit entry. */
static esim_err refuse(struct cbreq *r, int status, const char *action, const char *why)
{
	r->status = status;
	snprintf(r->why, sizeof r->why, "%s", why);
	json_t *d = json_pack("{s:s?,s:i,s:s}", "iccid", r->iccid, "point", r->point, "why", why);
	char *t = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	esim_err err = t ? op_audit(r->o, r->actor, action, t) : ESIM_E_NOMEM;
	free(t);
	return err;
}

static esim_err audit_fmt(struct cbreq *r, const char *action, json_t *d)
{
	char *t = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	esim_err err = t ? op_audit(r->o, r->actor, action, t) : ESIM_E_NOMEM;
	free(t);
	return err;
}

struct line {
	int64_t id;
	char state[32];
	char eid[40]; /* "" when none bound yet */
};

static esim_err find_line(op *o, const char *iccid, struct line *l, bool *found)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT id, state, eid FROM op_lines WHERE iccid = ?1 {{FOR_UPDATE}}", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, iccid);
	err = store_step(st, found);
	if (err == ESIM_OK && *found) {
		l->id = store_col_int64(st, 0);
		snprintf(l->state, sizeof l->state, "%s", store_col_text(st, 1));
		const char *e = store_col_text(st, 2);
		snprintf(l->eid, sizeof l->eid, "%s", e ? e : "");
	}
	store_finalize(st);
	return err;
}

/* (eid, seq) of an eUICC notification: applied once. *seen out. */
static esim_err notif_seen(op *o, const char *eid, uint64_t seq, bool *seen)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT 1 FROM op_es2_notifications WHERE eid = ?1 AND seq = ?2", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, eid);
	store_bind_int64(st, 2, (int64_t)seq);
	err = store_step(st, seen);
	store_finalize(st);
	return err;
}

static esim_err notif_record(struct cbreq *r, const char *eid, uint64_t seq)
{
	store_stmt *st;
	esim_err err = store_prepare(r->o->s,
				     "INSERT INTO op_es2_notifications (eid, seq, point, iccid, at)"
				     " VALUES (?1, ?2, ?3, ?4, ?5)",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, eid);
	store_bind_int64(st, 2, (int64_t)seq);
	store_bind_int64(st, 3, r->point);
	store_bind_text(st, 4, r->iccid);
	store_bind_int64(st, 5, (int64_t)op_now(r->o));
	err = store_run(st);
	store_finalize(st);
	return err;
}

/* sql: ?1 the line's id, ?2 text (not bound when NULL) */
static esim_err set_line(op *o, int64_t line, const char *sql, const char *text)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s, sql, &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, line);
	if (text)
		store_bind_text(st, 2, text);
	err = store_run(st);
	store_finalize(st);
	return err;
}

/* ---- point 4: the ProfileInstallationResult ---------------------------------- */

/* Verify CERT.EUICC (with its EUM) to the CI and the PIR's signature with
 * it; on success eid gets CERT.EUICC's EID and *pir the verified PIR
 * (release with rsp_pir_free). why names what failed. */
static esim_err verify_pir(struct cbreq *r, struct rsp_pir *pir, char eid[CRYPTO_EID_DIGITS + 1],
			   char *why, size_t wn)
{
	uint8_t *p = NULL, *ec = NULL, *mc = NULL;
	size_t pl = 0, el = 0, ml = 0;
	crypto_cert *euicc = NULL, *eum = NULL;
	esim_err err;
	memset(pir, 0, sizeof *pir);
	if (net_json_get_base64(r->j, "resultData", 64 * 1024, &p, &pl, NULL) != ESIM_OK) {
		snprintf(why, wn,
			 "resultData (the ProfileInstallationResult) missing or not base64");
		err = ESIM_E_OP_RECORD;
		goto out;
	}
	enum rsp_pending_kind kind;
	if (rsp_pending_kind(p, pl, &kind) != ESIM_OK || kind != RSP_PENDING_PIR) {
		snprintf(why, wn, "resultData is not a ProfileInstallationResult");
		err = ESIM_E_OP_RECORD;
		goto out;
	}
	if (net_json_get_base64(r->j, "euiccCertificate", 8192, &ec, &el, NULL) != ESIM_OK ||
	    net_json_get_base64(r->j, "eumCertificate", 8192, &mc, &ml, NULL) != ESIM_OK) {
		snprintf(why, wn, "euiccCertificate / eumCertificate missing or not base64");
		err = ESIM_E_OP_RECORD;
		goto out;
	}
	if ((err = crypto_cert_load(ec, el, &euicc)) != ESIM_OK ||
	    (err = crypto_cert_load(mc, ml, &eum)) != ESIM_OK) {
		snprintf(why, wn, "eUICC or EUM certificate unreadable");
		goto out;
	}
	const crypto_cert *inter[1] = {eum};
	struct crypto_chain_opts co = {.check_time = false}; /* eUICC certificates never expire */
	if ((err = crypto_chain_verify(r->o->trust, euicc, inter, 1, CRYPTO_ROLE_EUICC, &co,
				       NULL)) != ESIM_OK) {
		snprintf(why, wn, "eUICC certificate chain does not verify to a trusted CI");
		goto out;
	}
	if ((err = crypto_cert_eid(euicc, eid)) != ESIM_OK) {
		snprintf(why, wn, "eUICC certificate has no EID");
		goto out;
	}
	EVP_PKEY *pub = crypto_cert_pubkey(euicc);
	if (!pub || (err = rsp_pir_verify(p, pl, pub, NULL, pir)) != ESIM_OK) {
		snprintf(why, wn, "ProfileInstallationResult signature does not verify");
		err = pub ? err : ESIM_E_OP_RECORD;
		goto out;
	}
out:
	free(p);
	free(ec);
	free(mc);
	crypto_cert_free(euicc);
	crypto_cert_free(eum);
	return err;
}

static esim_err installed(struct cbreq *r, const struct line *l, const char *body_eid)
{
	struct rsp_pir pir;
	char eid[CRYPTO_EID_DIGITS + 1] = "", why[128] = "";
	esim_err e = verify_pir(r, &pir, eid, why, sizeof why);
	if (e != ESIM_OK) {
		rsp_pir_free(&pir);
		return refuse(r, 422, "download.rejected", why);
	}
	char iccid[RSP_ICCID_TEXT_MAX] = "";
	if (pir.meta.has_iccid)
		rsp_iccid_from_bcd(pir.meta.iccid, RSP_ICCID_LEN, iccid);
	bool ok = pir.success;
	uint64_t seq = pir.meta.seq;
	rsp_pir_free(&pir);
	if (!ok)
		return refuse(r, 422, "download.rejected",
			      "the ProfileInstallationResult reports a failed installation");
	if (strcmp(iccid, r->iccid) != 0)
		return refuse(r, 422, "download.rejected",
			      "the ProfileInstallationResult is for another ICCID");
	if (body_eid && strcmp(body_eid, eid) != 0)
		return refuse(r, 422, "download.rejected",
			      "the eid field differs from the signing eUICC's EID");
	if (l->eid[0] && strcmp(l->eid, eid) != 0)
		return refuse(r, 409, "download.refused", "the line is bound to another EID");
	bool seen;
	esim_err err = notif_seen(r->o, eid, seq, &seen);
	if (err != ESIM_OK)
		return err;
	if (seen) {
		r->status = 204;
		return audit_fmt(r, "notification.replayed",
				 json_pack("{s:s,s:s,s:I}", "iccid", r->iccid, "eid", eid, "seq",
					   (json_int_t)seq));
	}
	if ((err = notif_record(r, eid, seq)) != ESIM_OK)
		return err;
	if (strcmp(l->state, "ordered") != 0) {
		/* verified, but nothing to activate (e.g. already active) */
		r->status = 204;
		return audit_fmt(
		    r, "download.noop",
		    json_pack("{s:s,s:s,s:s}", "iccid", r->iccid, "eid", eid, "state", l->state));
	}
	err = set_line(r->o, l->id,
		       "UPDATE op_lines SET downloaded = 1, eid = ?2, state = 'active'"
		       " WHERE id = ?1",
		       eid);
	if (err == ESIM_OK)
		err = audit_fmt(r, "download.installed",
				json_pack("{s:s,s:s,s:I,s:I}", "iccid", r->iccid, "eid", eid, "seq",
					  (json_int_t)seq, "line", (json_int_t)l->id));
	r->status = 204;
	return err;
}

/* ---- point 5: the delete notification ---------------------------------------- */

static esim_err deletion_proof(struct cbreq *r, const struct line *l, const char *body_eid)
{
	uint8_t *p = NULL;
	size_t len = 0;
	if (net_json_get_base64(r->j, "resultData", 64 * 1024, &p, &len, NULL) != ESIM_OK)
		return refuse(r, 400, "deletion.rejected",
			      "resultData (the delete notification) missing or not base64");
	enum rsp_pending_kind kind;
	struct rsp_notif_metadata meta;
	char eid[RSP_EID_DIGITS + 1] = "";
	struct crypto_chain_opts co = {.check_time = false};
	esim_err e = rsp_pending_kind(p, len, &kind);
	if (e == ESIM_OK && kind != RSP_PENDING_OTHER)
		e = ESIM_E_OP_RECORD;
	if (e == ESIM_OK)
		e = rsp_other_notif_verify(p, len, r->o->trust, &co, &meta, eid);
	if (e != ESIM_OK) {
		free(p);
		char why[96];
		snprintf(why, sizeof why, "eUICC signature or chain: %s", esim_errname(e));
		return refuse(r, 422, "deletion.rejected", why);
	}
	char iccid[RSP_ICCID_TEXT_MAX] = "";
	if (meta.has_iccid)
		rsp_iccid_from_bcd(meta.iccid, RSP_ICCID_LEN, iccid);
	bool is_delete = meta.event == RSP_EVENT_DELETE;
	uint64_t seq = meta.seq;
	rsp_notif_metadata_free(&meta);
	esim_err err = ESIM_OK;
	if (!is_delete || strcmp(iccid, r->iccid) != 0) {
		err =
		    refuse(r, 422, "deletion.rejected", "not a delete notification of this ICCID");
		goto out;
	}
	if (body_eid && strcmp(body_eid, eid) != 0) {
		err = refuse(r, 422, "deletion.rejected",
			     "the eid field differs from the signing eUICC's EID");
		goto out;
	}
	if (l->eid[0] && strcmp(l->eid, eid) != 0) {
		err = refuse(r, 409, "deletion.refused", "the line is bound to another EID");
		goto out;
	}
	bool seen;
	if ((err = notif_seen(r->o, eid, seq, &seen)) != ESIM_OK)
		goto out;
	r->status = 204;
	if (seen) {
		err = audit_fmt(r, "notification.replayed",
				json_pack("{s:s,s:s,s:I}", "iccid", r->iccid, "eid", eid, "seq",
					  (json_int_t)seq));
		goto out;
	}
	if ((err = notif_record(r, eid, seq)) != ESIM_OK)
		goto out;
	store_stmt *st;
	if ((err = store_prepare(r->o->s,
				 "SELECT id, state FROM op_cases WHERE line_id = ?1 AND state IN"
				 " ('approved', 'service_stopped', 'awaiting_deletion')"
				 " ORDER BY id DESC",
				 &st)) != ESIM_OK)
		goto out;
	store_bind_int64(st, 1, l->id);
	bool row;
	err = store_step(st, &row);
	int64_t case_id = 0;
	char state[32] = "";
	if (err == ESIM_OK && row) {
		case_id = store_col_int64(st, 0);
		snprintf(state, sizeof state, "%s", store_col_text(st, 1));
	}
	store_finalize(st);
	if (err != ESIM_OK)
		goto out;
	if ((err = audit_fmt(r, "deletion.verified",
			     json_pack("{s:I,s:s,s:s,s:I}", "case", (json_int_t)case_id, "eid", eid,
				       "iccid", iccid, "seq", (json_int_t)seq))) != ESIM_OK ||
	    !row)
		goto out; /* deleted without a termination case: recorded only */
	if ((err = store_prepare(r->o->s,
				 "UPDATE op_cases SET proof = ?1, proof_eid = ?2 WHERE id = ?3",
				 &st)) != ESIM_OK)
		goto out;
	store_bind_blob(st, 1, p, len);
	store_bind_text(st, 2, eid);
	store_bind_int64(st, 3, case_id);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK && !strcmp(state, "approved"))
		err = op_case_move(r->o, case_id, "approved", "service_stopped", r->actor,
				   "service stopped");
	if (err == ESIM_OK && strcmp(state, "awaiting_deletion") != 0)
		err = op_case_move(r->o, case_id, "service_stopped", "awaiting_deletion", r->actor,
				   NULL);
	if (err == ESIM_OK)
		err = set_line(r->o, l->id, "UPDATE op_lines SET state = ?2 WHERE id = ?1",
			       "terminated");
	if (err == ESIM_OK)
		err = op_doc_erase(r->o, case_id); /* the identity copy goes for good */
	if (err == ESIM_OK)
		err = op_case_move(r->o, case_id, "awaiting_deletion", "closed", r->actor,
				   "the eUICC-signed deletion notification was verified");
out:
	free(p);
	return err;
}

/* ---- dispatch by notification point ------------------------------------------- */

static bool eid_text_ok(const char *e)
{
	if (strlen(e) != CRYPTO_EID_DIGITS)
		return false;
	for (const char *c = e; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	return true;
}

/* The body is parsed, the caller authenticated, the call new. */
static esim_err progress(struct cbreq *r)
{
	r->iccid = json_string_value(json_object_get(r->j, "iccid"));
	json_t *pt = json_object_get(r->j, "notificationPointId");
	const char *st_s = json_string_value(
	    json_object_get(json_object_get(r->j, "notificationPointStatus"), "status"));
	json_t *ej = json_object_get(r->j, "eid");
	const char *body_eid = json_string_value(ej);
	if (!r->iccid || strlen(r->iccid) < 18 || strlen(r->iccid) > 20 || !json_is_integer(pt) ||
	    json_integer_value(pt) < 1 || json_integer_value(pt) > 6 || !st_s) {
		r->status = 400;
		snprintf(r->why, sizeof r->why,
			 "iccid, notificationPointId (1..6) and notificationPointStatus needed");
		return ESIM_OK;
	}
	if ((ej && !body_eid) || (body_eid && !eid_text_ok(body_eid))) {
		r->status = 400;
		snprintf(r->why, sizeof r->why, "eid must be 32 digits");
		return ESIM_OK;
	}
	r->point = (int)json_integer_value(pt);
	r->success = !strcmp(st_s, "Executed-Success");
	struct line l;
	bool found;
	esim_err err = find_line(r->o, r->iccid, &l, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		return refuse(r, 404, "callback.refused",
			      "no line of this operator has this ICCID");
	if (body_eid && l.eid[0] && strcmp(body_eid, l.eid) != 0)
		return refuse(r, 409, "callback.refused", "the line is bound to another EID");
	if (r->point == 5)
		return deletion_proof(r, &l, body_eid);
	/* points 1-4 (and 6): a download of an ordered line */
	bool expected = !strcmp(l.state, "ordered") || !strcmp(l.state, "active");
	if (!expected)
		return refuse(r, 409, "callback.refused",
			      "no download is expected on this line in its state");
	if (r->point == 4 && r->success)
		return installed(r, &l, body_eid);
	if (r->point == 3 && r->success && !strcmp(l.state, "ordered")) {
		/* the package left the SM-DP+: a CancelOrder is no longer the way
		 * out; the line stays ordered until a verified PIR */
		err =
		    set_line(r->o, l.id, "UPDATE op_lines SET downloaded = 1 WHERE id = ?1", NULL);
		if (err != ESIM_OK)
			return err;
	}
	r->status = 204;
	return audit_fmt(
	    r, "download.progress",
	    json_pack("{s:s,s:i,s:s}", "iccid", r->iccid, "point", r->point, "status", st_s));
}

/* ---- the call identifier ------------------------------------------------------- */

/* *known: the identifier was seen; *status then its first answer, or 409
 * when the body differs. */
static esim_err call_lookup(op *o, const char *callid, const char *sha, bool *known, int *status)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT body_sha256, status FROM op_es2_calls WHERE call_id = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, callid);
	err = store_step(st, known);
	if (err == ESIM_OK && *known)
		*status =
		    strcmp(store_col_text(st, 0), sha) == 0 ? (int)store_col_int64(st, 1) : 409;
	store_finalize(st);
	return err;
}

static esim_err call_record(op *o, const char *callid, const char *sha, int status)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s,
				     "INSERT INTO op_es2_calls (call_id, body_sha256, status, at)"
				     " VALUES (?1, ?2, ?3, ?4)",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, callid);
	store_bind_text(st, 2, sha);
	store_bind_int64(st, 3, status);
	store_bind_int64(st, 4, (int64_t)op_now(o));
	err = store_run(st);
	store_finalize(st);
	return err;
}

static esim_err answer(net_response *resp, int status, const char *why)
{
	if (status == 204 || !why || !*why)
		return net_response_set(resp, status, NULL);
	json_t *j = json_pack("{s:s}", "error", why);
	esim_err err = j ? net_response_json(resp, status, j) : ESIM_E_NOMEM;
	json_decref(j);
	return err;
}

/* One transaction: the call identifier, the change and its audit entries. */
static esim_err run_call(struct cbreq *r, const char *callid, const char *sha)
{
	bool known = false;
	int prev = 0;
	esim_err err = call_lookup(r->o, callid, sha, &known, &prev);
	if (err != ESIM_OK)
		return err;
	if (known) {
		r->status = prev;
		if (prev == 409)
			return refuse(r, 409, "callback.replay_refused",
				      "functionCallIdentifier already used with another body");
		snprintf(r->why, sizeof r->why, "%s",
			 prev == 204 ? "" : "the same call was answered before");
		return ESIM_OK; /* the same call resent: the same answer, applied once */
	}
	if ((err = progress(r)) != ESIM_OK)
		return err;
	return call_record(r->o, callid, sha, r->status);
}

/* What a callback came to, for its log line (never the body). */
struct cb_outcome {
	char callid[CB_CALLID_MAX + 1];
	long long point; /* notificationPointId; 0: not read */
};

static esim_err callback_run(const net_request *req, net_response *resp, op_callback *cb,
			     struct cb_outcome *oc);

/* The route: the request id (the SM-DP+'s X-Request-Id when valid, else a
 * new one) goes with the callback's log line and back in the answer. */
esim_err op_callback_http(const net_request *req, net_response *resp, void *arg)
{
	op_callback *cb = arg;
	char ridbuf[ESIM_REQUEST_ID_MAX + 1];
	const char *rid =
	    esim_request_id_pick(net_request_header(req, ESIM_REQUEST_ID_HEADER), ridbuf);
	struct cb_outcome oc = {.point = 0};
	esim_err err = callback_run(req, resp, cb, &oc);
	int status = err == ESIM_OK ? resp->status : 500;
	const struct esim_log_kv kv[] = {
	    ESIM_LOG_S("function", "handleDownloadProgressInfo"),
	    ESIM_LOG_I("status", status),
	    ESIM_LOG_S("call_id", oc.callid[0] ? oc.callid : NULL),
	    ESIM_LOG_I("point", oc.point),
	};
	esim_log_emit(&cb->log, status >= 500 ? ESIM_LOG_ERROR : ESIM_LOG_INFO, rid, "es2 callback",
		      kv, sizeof kv / sizeof kv[0]);
	if (err == ESIM_OK)
		err = net_response_add_header(resp, ESIM_REQUEST_ID_HEADER, rid);
	return err;
}

static esim_err callback_run(const net_request *req, net_response *resp, op_callback *cb,
			     struct cb_outcome *oc)
{
	op *o = cb->o;
	if (strcmp(req->method, "POST") != 0 || strcmp(req->path, CB_PATH) != 0)
		return answer(resp, 404, "no such endpoint");
	/* the listener pins the certificate already; a route added to a
	 * listener without mutual TLS still refuses */
	if (!req->has_client_cert || !esim_ct_equal(req->client_cert_sha256, cb->pin, 32))
		return answer(resp, 403, "the SM-DP+'s pinned client certificate is required");
	json_t *j = NULL;
	if (net_json_parse(req->body, req->body_len, CB_BODY_MAX, 8, &j, NULL) != ESIM_OK ||
	    !json_is_object(j)) {
		json_decref(j);
		return answer(resp, 400, "body must be a JSON object");
	}
	json_t *h = json_object_get(j, "header");
	const char *fri = json_string_value(json_object_get(h, "functionRequesterIdentifier"));
	const char *callid = json_string_value(json_object_get(h, "functionCallIdentifier"));
	struct cbreq r = {.cb = cb, .o = o, .actor = cb->actor, .j = j, .status = 500};
	esim_err err = ESIM_OK;
	if (!fri || !callid || !*callid || strlen(callid) > CB_CALLID_MAX) {
		json_decref(j);
		return answer(resp, 400,
			      "header.functionRequesterIdentifier and functionCallIdentifier "
			      "needed");
	}
	snprintf(oc->callid, sizeof oc->callid, "%s", callid);
	json_t *pt = json_object_get(j, "notificationPointId");
	if (json_is_integer(pt))
		oc->point = (long long)json_integer_value(pt);
	uint8_t md[32];
	char sha[65];
	crypto_hash_sha256(md, req->body, req->body_len);
	sodium_bin2hex(sha, sizeof sha, md, sizeof md);
	pthread_mutex_lock(&o->lock);
	for (int attempt = 0;; attempt++) {
		r = (struct cbreq){.cb = cb, .o = o, .actor = cb->actor, .j = j, .status = 500};
		err = store_begin(o->s);
		if (err == ESIM_OK) {
			if (strcmp(fri, cb->smdp_id) != 0) {
				r.iccid = json_string_value(json_object_get(j, "iccid"));
				err = refuse(&r, 403, "callback.refused",
					     "functionRequesterIdentifier is not the SM-DP+'s");
			} else {
				err = run_call(&r, callid, sha);
			}
			if (err == ESIM_OK)
				err = store_commit(o->s);
			else
				store_rollback(o->s);
		}
		if (err != ESIM_E_STORE_BUSY || attempt >= 20)
			break;
	}
	if (err == ESIM_OK)
		op_doc_flush(o); /* after a close erased the identity copy */
	pthread_mutex_unlock(&o->lock);
	json_decref(j);
	if (err != ESIM_OK)
		return err; /* 500: the SM-DP+ retries */
	return answer(resp, r.status, r.why);
}

esim_err op_callback_add_routes(op_callback *cb, net_server *srv, int listener)
{
	return net_server_add_route(srv, listener, "POST", CB_PATH, op_callback_http, cb);
}
