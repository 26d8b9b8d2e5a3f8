/*
 * The termination workflow's steps that reach outside the portal: case
 * transitions with their notices, ES2+ towards the SM-DP+ (SGP.22 5.3.1-3:
 * DownloadOrder, ConfirmOrder, CancelOrder) and the signed termination
 * record, whose deletion proof (an eUICC-signed OtherSignedNotification,
 * digest 8.4) is checked again against the CI by op_record_verify. The
 * HandleDownloadProgressInfo callback (5.3.5) that brings it is callback.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "esim/crypto.h"
#include "esim/rsp.h"
#include "op_int.h"

static bool in_list(const char *state, const char *list)
{
	size_t n = strlen(state);
	for (const char *p = list; p && *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l == n && strncmp(p, state, n) == 0)
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

/* The notice's first line for a case now in state to, in lang; the English
 * defaults are en.json's (tests/i18n/check_catalogues.py). */
static const char *state_text(const op *o, const char *lang, const char *to)
{
	static const char *const t[][3] = {
	    {"submitted", "notice.state.submitted", "We received your request to end this line."},
	    {"in_review", "notice.state.in_review",
	     "A member of our staff is reviewing your request."},
	    {"needs_info", "notice.state.needs_info",
	     "We need more information to handle your request; please answer in the portal."},
	    {"approved", "notice.state.approved", "Your request was approved."},
	    {"rejected", "notice.state.rejected",
	     "Your request was rejected; the reason is shown in the portal."},
	    {"service_stopped", "notice.state.service_stopped",
	     "The service on this line is stopped."},
	    {"awaiting_deletion", "notice.state.awaiting_deletion",
	     "Please delete the eSIM profile from your device; we close the case when the device "
	     "reports the deletion."},
	    {"closed", "notice.state.closed",
	     "Your case is closed. The signed termination record is available in the portal."},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(to, t[i][0]))
			return op_tr(o, lang, t[i][1], t[i][2]);
	return op_tr(o, lang, "notice.state.other", "Your case changed.");
}

/* The state's name as the portal shows it ("Approved"), in lang. */
static const char *state_label(const op *o, const char *lang, const char *to)
{
	static const char *const t[][3] = {
	    {"submitted", "state.submitted", "Submitted"},
	    {"in_review", "state.in_review", "In review"},
	    {"needs_info", "state.needs_info", "More information needed"},
	    {"approved", "state.approved", "Approved"},
	    {"rejected", "state.rejected", "Rejected"},
	    {"service_stopped", "state.service_stopped", "Service stopped"},
	    {"awaiting_deletion", "state.awaiting_deletion", "Waiting for profile deletion"},
	    {"closed", "state.closed", "Closed"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(to, t[i][0]))
			return op_tr(o, lang, t[i][1], t[i][2]);
	return to;
}

esim_err op_case_move(op *o, int64_t case_id, const char *from, const char *to, const char *actor,
		      const char *note)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT state, customer_id FROM op_cases WHERE id = ?1 {{FOR_UPDATE}}", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, case_id);
	bool row;
	err = store_step(st, &row);
	char state[32] = "";
	int64_t cust = 0;
	if (err == ESIM_OK && row) {
		snprintf(state, sizeof state, "%s", store_col_text(st, 0));
		cust = store_col_int64(st, 1);
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (!row)
		return ESIM_E_NOT_FOUND;
	if (!in_list(state, from))
		return ESIM_E_OP_STATE;
	time_t now = op_now(o);
	if ((err = store_prepare(
		 o->s,
		 "UPDATE op_cases SET state = ?1, updated = ?2,"
		 " closed = CASE WHEN ?1 IN ('closed', 'rejected') THEN ?2 ELSE closed END"
		 " WHERE id = ?3",
		 &st)) != ESIM_OK)
		return err;
	store_bind_text(st, 1, to);
	store_bind_int64(st, 2, (int64_t)now);
	store_bind_int64(st, 3, case_id);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	/* the notice in the language the customer reads; the purpose stays
	 * English (it is the contact's record, the portal words it) */
	char ref[OP_REF_LEN], purpose[96], subject[256], text[1024], line2[700], lang[4], idt[24];
	if ((err = op_customer_lang(o, cust, lang)) != ESIM_OK)
		return err;
	snprintf(idt, sizeof idt, "%lld", (long long)case_id);
	snprintf(purpose, sizeof purpose, "termination case %lld: %s", (long long)case_id, to);
	op_fill(subject, sizeof subject,
		op_tr(o, lang, "notice.subject.case", "Your termination case {id}: {state}"), "id",
		idt, "state", state_label(o, lang, to), NULL);
	line2[0] = '\0';
	if (note && *note)
		op_fill(line2, sizeof line2, op_tr(o, lang, "notice.note", "Note: {note}"), "note",
			note, NULL);
	snprintf(text, sizeof text, "%s%s%s", state_text(o, lang, to), line2[0] ? "\n" : "", line2);
	if ((err = op_notify(o, cust, purpose, subject, text, ref)) != ESIM_OK)
		return err;
	if ((err = store_prepare(
		 o->s,
		 "INSERT INTO op_case_events (case_id, at, state, actor, note, reference)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
		 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, case_id);
	store_bind_int64(st, 2, (int64_t)now);
	store_bind_text(st, 3, to);
	store_bind_text(st, 4, actor);
	store_bind_text(st, 5, note);
	store_bind_text(st, 6, ref);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s?}", "case", (json_int_t)case_id, "from", state,
			      "to", to, "reference", ref, "note", note);
	char *d = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	err = d ? op_audit(o, actor, "case.state", d) : ESIM_E_NOMEM;
	free(d);
	json_decref(j);
	/* the close brings the final invoice, per the line's contract
	 * (charging.c), in the same transaction */
	if (err == ESIM_OK && !strcmp(to, "closed"))
		err = op_final_invoice(o, case_id, actor);
	return err;
}

/* ---- ES2+ client ------------------------------------------------------------ */

esim_err op_es2_call(op *o, const char *function, json_t *body, json_t **resp_json)
{
	*resp_json = NULL;
	if (!o->smdp_url)
		return ESIM_E_OP_CONFIG;
	uint8_t r[8];
	randombytes_buf(r, sizeof r);
	char callid[40], hex[17];
	sodium_bin2hex(hex, sizeof hex, r, sizeof r);
	snprintf(callid, sizeof callid, "op-%s", hex);
	json_object_set_new(body, "header",
			    json_pack("{s:s,s:s}", "functionRequesterIdentifier", o->name,
				      "functionCallIdentifier", callid));
	char *text = json_dumps(body, JSON_COMPACT);
	if (!text)
		return ESIM_E_NOMEM;
	char url[512];
	snprintf(url, sizeof url, "%s/gsma/rsp2/es2plus/%s", o->smdp_url, function);
	struct net_client_config cc = {.ca_file = o->smdp_ca,
				       .client_cert_file = o->cert_file,
				       .client_key_file = o->key_file,
				       .timeout_ms = 20000,
				       .user_agent = "esim-operator"};
	net_client *c = NULL;
	esim_err err = net_client_new(&cc, &c);
	struct net_client_response resp;
	memset(&resp, 0, sizeof resp);
	if (err == ESIM_OK) {
		err = net_client_post_json(c, url, text, strlen(text), &resp);
		if (err == ESIM_OK || err == ESIM_E_NET_HTTP_STATUS) {
			json_t *j = NULL;
			if (net_json_parse(resp.body.data, resp.body.len, 1 << 20, 16, &j, NULL) ==
			    ESIM_OK)
				*resp_json = j;
			if (err == ESIM_OK && !j)
				err = ESIM_E_NET_JSON;
		}
		net_client_response_clear(&resp);
	}
	net_client_free(c);
	free(text);
	if (err == ESIM_OK) {
		const char *s = json_string_value(
		    json_object_get(json_object_get(json_object_get(*resp_json, "header"),
						    "functionExecutionStatus"),
				    "status"));
		if (!s || strncmp(s, "Executed-", 9) != 0)
			err = ESIM_E_OP_STATE;
	}
	return err;
}

static esim_err line_of_case(op *o, int64_t case_id, int64_t *line, char *iccid, size_t n,
			     bool *downloaded, char *mid, size_t mn)
{
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s,
			  "SELECT l.id, l.iccid, l.downloaded, l.matching_id FROM op_cases c"
			  " JOIN op_lines l ON l.id = c.line_id WHERE c.id = ?1",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, case_id);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK) {
		*line = store_col_int64(st, 0);
		snprintf(iccid, n, "%s", store_col_text(st, 1) ? store_col_text(st, 1) : "");
		*downloaded = store_col_int64(st, 2) != 0;
		snprintf(mid, mn, "%s", store_col_text(st, 3) ? store_col_text(st, 3) : "");
	}
	store_finalize(st);
	return err;
}

static esim_err set_line_state(op *o, int64_t line, const char *state)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s, "UPDATE op_lines SET state = ?1 WHERE id = ?2", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, state);
	store_bind_int64(st, 2, line);
	err = store_run(st);
	store_finalize(st);
	return err;
}

/* At close the identity copy goes for good: its case key and ciphertext
 * are deleted here, the WAL is checkpointed after the commit (document.c). */
static esim_err erase_document(op *o, int64_t case_id)
{
	return op_doc_erase(o, case_id);
}

esim_err op_after_approval(op *o, int64_t case_id, const char *actor)
{
	int64_t line;
	char iccid[32], mid[80];
	bool downloaded;
	esim_err err =
	    line_of_case(o, case_id, &line, iccid, sizeof iccid, &downloaded, mid, sizeof mid);
	if (err != ESIM_OK)
		return err;
	if (!downloaded && iccid[0] && o->smdp_url) {
		/* never downloaded: the order is cancelled and the profile goes
		 * back to the SM-DP+'s pool; there is nothing to delete */
		json_t *b = json_pack("{s:s,s:s}", "iccid", iccid, "finalProfileStatusIndicator",
				      "Unavailable");
		if (mid[0])
			json_object_set_new(b, "matchingId", json_string(mid));
		json_t *r = NULL;
		esim_err e = op_es2_call(o, "cancelOrder", b, &r);
		json_decref(b);
		json_decref(r);
		if (e == ESIM_OK) {
			err = set_line_state(o, line, "terminated");
			if (err == ESIM_OK)
				err = erase_document(o, case_id);
			if (err == ESIM_OK)
				err = op_case_move(
				    o, case_id, "approved", "closed", actor,
				    "ES2+ CancelOrder: the profile was never downloaded");
			return err;
		}
		/* refused (e.g. downloaded after all) or unreachable: stop the
		 * service and wait for the deletion like any downloaded profile */
	} else if (!iccid[0]) {
		err = set_line_state(o, line, "terminated");
		if (err == ESIM_OK)
			err = erase_document(o, case_id);
		if (err == ESIM_OK)
			err = op_case_move(o, case_id, "approved", "closed", actor,
					   "the line never had an eSIM profile (never ordered)");
		return err;
	}
	err = set_line_state(o, line, "stopped");
	if (err == ESIM_OK)
		err = op_case_move(o, case_id, "approved", "service_stopped", actor,
				   "voice, SMS and data stopped on the line");
	if (err == ESIM_OK)
		err = op_case_move(o, case_id, "service_stopped", "awaiting_deletion", actor,
				   "waiting for the device to report the profile's deletion");
	if (err == ESIM_OK) {
		store_stmt *st;
		err =
		    store_prepare(o->s, "UPDATE op_cases SET deletion_due = ?1 WHERE id = ?2", &st);
		if (err == ESIM_OK) {
			store_bind_int64(st, 1,
					 (int64_t)op_now(o) +
					     op_setting(o, "deletion_reminder_seconds", 7 * 86400));
			store_bind_int64(st, 2, case_id);
			err = store_run(st);
			store_finalize(st);
		}
	}
	return err;
}

/* ---- the termination record ------------------------------------------------- */

static json_t *iso(int64_t t)
{
	char b[32];
	op_iso_time((time_t)t, b);
	return json_string(b);
}

static json_t *text_or_null(store_stmt *st, int col)
{
	const char *s = store_col_text(st, col);
	return s ? json_string(s) : json_null();
}

esim_err op_record_build(op *o, int64_t case_id, char **out)
{
	*out = NULL;
	if (!o->key)
		return ESIM_E_OP_CONFIG;
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s,
	    "SELECT c.state, c.reason, c.created, c.closed, c.decision_note, c.doc_type,"
	    " c.doc_sha256, c.proof, c.proof_eid, cu.name, cu.account, l.msisdn, l.iccid, l.plan,"
	    " c.customer_id FROM op_cases c JOIN op_customers cu ON cu.id = c.customer_id"
	    " JOIN op_lines l ON l.id = c.line_id WHERE c.id = ?1",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, case_id);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK && strcmp(store_col_text(st, 0), "closed") != 0)
		err = ESIM_E_OP_STATE;
	if (err != ESIM_OK) {
		store_finalize(st);
		return err;
	}
	json_t *rec = json_object();
	json_object_set_new(rec, "type", json_string("esim-termination-record/v1"));
	json_object_set_new(rec, "operator", json_string(o->name));
	json_object_set_new(rec, "issued", iso((int64_t)op_now(o)));
	json_t *c = json_object();
	json_object_set_new(c, "id", json_integer(case_id));
	json_object_set_new(c, "state", json_string(store_col_text(st, 0)));
	json_object_set_new(c, "reason", json_string(store_col_text(st, 1)));
	json_object_set_new(c, "created", iso(store_col_int64(st, 2)));
	json_object_set_new(c, "closed", iso(store_col_int64(st, 3)));
	json_object_set_new(c, "decision_note", text_or_null(st, 4));
	json_object_set_new(c, "document_type", json_string(store_col_text(st, 5)));
	json_object_set_new(c, "document_sha256", json_string(store_col_text(st, 6)));
	json_object_set_new(c, "document_copy", json_string("erased"));
	json_object_set_new(rec, "case", c);
	json_object_set_new(rec, "customer",
			    json_pack("{s:s,s:s}", "name", store_col_text(st, 9), "account",
				      store_col_text(st, 10)));
	json_object_set_new(rec, "line",
			    json_pack("{s:s,s:o,s:s}", "msisdn", store_col_text(st, 11), "iccid",
				      text_or_null(st, 12), "plan", store_col_text(st, 13)));
	size_t pl = 0;
	const uint8_t *proof = store_col_blob(st, 7, &pl);
	if (proof) {
		json_t *dp = json_object();
		net_json_set_base64(dp, "notification", proof, pl);
		json_object_set_new(dp, "eid", text_or_null(st, 8));
		json_object_set_new(dp, "iccid", text_or_null(st, 12));
		json_object_set_new(rec, "deletion_proof", dp);
	} else {
		json_object_set_new(rec, "deletion_proof", json_null());
	}
	int64_t cust = store_col_int64(st, 14);
	store_finalize(st);
	json_t *ev = json_array();
	err = store_prepare(o->s,
			    "SELECT at, state, actor, note, reference FROM op_case_events"
			    " WHERE case_id = ?1 ORDER BY id",
			    &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, case_id);
		while ((err = store_step(st, &row)) == ESIM_OK && row)
			json_array_append_new(
			    ev, json_pack(
				    "{s:o,s:s,s:s,s:o,s:o}", "at", iso(store_col_int64(st, 0)),
				    "state", store_col_text(st, 1), "actor", store_col_text(st, 2),
				    "note", text_or_null(st, 3), "reference", text_or_null(st, 4)));
		store_finalize(st);
	}
	json_object_set_new(rec, "events", ev);
	json_t *inv = json_array();
	if (err == ESIM_OK)
		err = store_prepare(
		    o->s,
		    "SELECT number, period, amount_cents, status, paid_at FROM op_invoices"
		    " WHERE customer_id = ?1 ORDER BY id",
		    &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, cust);
		while ((err = store_step(st, &row)) == ESIM_OK && row)
			json_array_append_new(
			    inv,
			    json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "number", store_col_text(st, 0),
				      "period", store_col_text(st, 1), "amount_cents",
				      (json_int_t)store_col_int64(st, 2), "currency", "EUR",
				      "status", store_col_text(st, 3), "paid_at",
				      store_col_is_null(st, 4) ? json_null()
							       : iso(store_col_int64(st, 4))));
		store_finalize(st);
	}
	json_object_set_new(rec, "final_invoices", inv);
	char *canon = err == ESIM_OK
			  ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
			  : NULL;
	if (err == ESIM_OK && !canon)
		err = ESIM_E_NOMEM;
	uint8_t sig[CRYPTO_DER_SIG_MAX];
	size_t sl = 0;
	if (err == ESIM_OK)
		err =
		    crypto_ecdsa_sign_der(o->key, (const uint8_t *)canon, strlen(canon), sig, &sl);
	free(canon);
	json_t *doc = json_object();
	json_object_set_new(doc, "record", rec);
	if (err == ESIM_OK) {
		json_t *s =
		    json_pack("{s:s,s:s}", "alg", "ES256", "canon", "jansson-compact-sorted-ascii");
		net_json_set_base64(s, "value", sig, sl);
		json_object_set_new(doc, "signature", s);
		if (o->cert) {
			size_t dl = 0;
			const uint8_t *der = crypto_cert_der(o->cert, &dl);
			net_json_set_base64(doc, "certificate", der, dl);
		}
		*out = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (!*out)
			err = ESIM_E_NOMEM;
	}
	json_decref(doc);
	return err;
}

static esim_err fail(char *why, size_t n, const char *text, esim_err err)
{
	if (why && n)
		snprintf(why, n, "%s", text);
	return err;
}

esim_err op_record_verify(const uint8_t *text, size_t len, const char *ci_file,
			  const char *operator_cert_file, char *why, size_t why_len)
{
	json_t *doc = NULL;
	if (net_json_parse(text, len, 8u << 20, 16, &doc, NULL) != ESIM_OK)
		return fail(why, why_len, "not JSON", ESIM_E_OP_RECORD);
	esim_err err = ESIM_OK;
	crypto_cert *cert = NULL;
	crypto_trust *trust = NULL;
	uint8_t *sig = NULL, *der = NULL, *proof = NULL;
	size_t sl = 0, dl = 0, pl = 0;
	char *canon = NULL;
	json_t *rec = json_object_get(doc, "record");
	json_t *s = json_object_get(doc, "signature");
	if (!json_is_object(rec) || !json_is_object(s) ||
	    net_json_get_base64(s, "value", 512, &sig, &sl, NULL) != ESIM_OK) {
		err = fail(why, why_len, "record or signature missing", ESIM_E_OP_RECORD);
		goto out;
	}
	if (operator_cert_file)
		err = crypto_cert_load_file(operator_cert_file, &cert);
	else if (net_json_get_base64(doc, "certificate", 8192, &der, &dl, NULL) == ESIM_OK)
		err = crypto_cert_load(der, dl, &cert);
	else
		err = ESIM_E_OP_RECORD;
	if (err != ESIM_OK) {
		err = fail(why, why_len, "operator certificate missing or unreadable", err);
		goto out;
	}
	canon = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	if (!canon || crypto_ecdsa_verify_der(crypto_cert_pubkey(cert), (const uint8_t *)canon,
					      strlen(canon), sig, sl) != ESIM_OK) {
		err = fail(why, why_len, "operator signature does not verify",
			   ESIM_E_CRYPTO_SIGNATURE_INVALID);
		goto out;
	}
	const char *line_iccid =
	    json_string_value(json_object_get(json_object_get(rec, "line"), "iccid"));
	json_t *dp = json_object_get(rec, "deletion_proof");
	if (!json_is_object(dp)) {
		/* only a line whose profile never reached a device closes
		 * without a proof: the events say so */
		const char *last = NULL;
		json_t *ev = json_object_get(rec, "events");
		size_t n = json_array_size(ev);
		if (n)
			last =
			    json_string_value(json_object_get(json_array_get(ev, n - 1), "note"));
		if (!last || (!strstr(last, "never downloaded") && !strstr(last, "never ordered")))
			err = fail(why, why_len, "no deletion proof", ESIM_E_OP_RECORD);
		goto out;
	}
	if (!ci_file) {
		err = fail(why, why_len, "a CI certificate is needed to check the deletion proof",
			   ESIM_E_OP_CONFIG);
		goto out;
	}
	if ((err = crypto_trust_new(&trust)) != ESIM_OK ||
	    (err = crypto_trust_add_ci_file(trust, ci_file)) != ESIM_OK) {
		fail(why, why_len, "CI certificate unreadable", err);
		goto out;
	}
	if (net_json_get_base64(dp, "notification", 64 * 1024, &proof, &pl, NULL) != ESIM_OK) {
		err = fail(why, why_len, "deletion proof not base64", ESIM_E_OP_RECORD);
		goto out;
	}
	struct rsp_notif_metadata meta;
	char eid[RSP_EID_DIGITS + 1];
	struct crypto_chain_opts co = {.check_time = false};
	if ((err = rsp_other_notif_verify(proof, pl, trust, &co, &meta, eid)) != ESIM_OK) {
		fail(why, why_len, "deletion proof: eUICC chain or signature invalid", err);
		goto out;
	}
	char iccid[RSP_ICCID_TEXT_MAX] = "";
	if (meta.has_iccid)
		rsp_iccid_from_bcd(meta.iccid, RSP_ICCID_LEN, iccid);
	bool del = meta.event == RSP_EVENT_DELETE;
	rsp_notif_metadata_free(&meta);
	const char *peid = json_string_value(json_object_get(dp, "eid"));
	if (!del)
		err = fail(why, why_len, "deletion proof is not a delete notification",
			   ESIM_E_OP_RECORD);
	else if (!line_iccid || strcmp(iccid, line_iccid) != 0)
		err = fail(why, why_len, "deletion proof is for another ICCID", ESIM_E_OP_RECORD);
	else if (!peid || strcmp(peid, eid) != 0)
		err = fail(why, why_len, "deletion proof is from another EID", ESIM_E_OP_RECORD);
out:
	free(canon);
	free(sig);
	free(der);
	free(proof);
	crypto_cert_free(cert);
	crypto_trust_free(trust);
	json_decref(doc);
	if (err == ESIM_OK)
		fail(why, why_len, "ok", ESIM_OK);
	return err;
}

/* ---- ordering an eSIM ------------------------------------------------------- */

esim_err op_order_esim(op *o, const char *login, char *ac, size_t n)
{
	pthread_mutex_lock(&o->lock);
	store_stmt *st;
	int64_t line = 0, cust = 0;
	esim_err err = store_prepare(o->s,
				     "SELECT l.id, c.id FROM op_lines l JOIN op_customers c ON"
				     " c.id = l.customer_id WHERE c.login = ?1 AND l.iccid IS NULL"
				     " ORDER BY l.id",
				     &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, login);
		bool row;
		err = store_step(st, &row);
		if (err == ESIM_OK && !row)
			err = ESIM_E_NOT_FOUND;
		line = store_col_int64(st, 0);
		cust = store_col_int64(st, 1);
		store_finalize(st);
	}
	json_t *r = NULL;
	char iccid[32] = "", mid[80] = "", addr[256] = "";
	if (err == ESIM_OK) {
		json_t *b = json_pack("{s:s}", "profileType", o->ptype);
		err = op_es2_call(o, "downloadOrder", b, &r);
		json_decref(b);
		const char *i = json_string_value(json_object_get(r, "iccid"));
		if (err == ESIM_OK && !i)
			err = ESIM_E_NET_JSON_FIELD;
		if (err == ESIM_OK)
			snprintf(iccid, sizeof iccid, "%s", i);
		json_decref(r);
		r = NULL;
	}
	if (err == ESIM_OK) {
		json_t *b = json_pack("{s:s,s:b}", "iccid", iccid, "releaseFlag", 1);
		err = op_es2_call(o, "confirmOrder", b, &r);
		json_decref(b);
		const char *m = json_string_value(json_object_get(r, "matchingId"));
		const char *a = json_string_value(json_object_get(r, "smdpAddress"));
		if (err == ESIM_OK && (!m || !a))
			err = ESIM_E_NET_JSON_FIELD;
		if (err == ESIM_OK) {
			snprintf(mid, sizeof mid, "%s", m);
			snprintf(addr, sizeof addr, "%s", a);
		}
		json_decref(r);
	}
	if (err == ESIM_OK && (err = store_begin(o->s)) == ESIM_OK) {
		err = store_prepare(
		    o->s, "UPDATE op_lines SET iccid = ?1, matching_id = ?2 WHERE id = ?3", &st);
		if (err == ESIM_OK) {
			store_bind_text(st, 1, iccid);
			store_bind_text(st, 2, mid);
			store_bind_int64(st, 3, line);
			err = store_run(st);
			store_finalize(st);
		}
		char d[200];
		snprintf(d, sizeof d, "{\"customer\":%lld,\"line\":%lld,\"iccid\":\"%s\"}",
			 (long long)cust, (long long)line, iccid);
		if (err == ESIM_OK)
			err = op_audit(o, "admin-cli", "esim.order", d);
		if (err == ESIM_OK)
			err = store_commit(o->s);
		else
			store_rollback(o->s);
	}
	pthread_mutex_unlock(&o->lock);
	if (err == ESIM_OK)
		snprintf(ac, n, "LPA:1$%s$%s", addr, mid);
	return err;
}
