/*
 * Assisted intake: a termination opened by staff for a customer who phones
 * or walks in. Ending a line is what an impostor wants (the number, then
 * the accounts behind it), so staff may only open such a case after a
 * call-back verification that nothing lets them skip:
 *
 *  1. start: the system makes a one-time code and sends it to the contact
 *     details on file (the notice outbox: e-mail and SMS text, with its
 *     own verification reference), never to staff; only its SHA-256 is
 *     kept, and the stored notices lose it ("****-****") once the e-mail
 *     is delivered (op_intake_scrub, from mail.c for the SMTP outbox);
 *  2. verify: staff type what the customer reads back; 3 wrong tries or
 *     10 minutes end the verification for good;
 *  3. the case (http.c, POST /api/staff/intake/case): only with a verified
 *     call-back of this staff member, within 30 minutes of its start, used
 *     once, for a line of that same customer.
 *
 * Every step, refusals included, is in the audit log. This is the
 * operator's side of a termination; the profile's deletion itself is
 * SGP.22's (workflow.c, callback.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "op_int.h"

#define INTAKE_TTL	  (10 * 60) /* to read the code back */
#define INTAKE_USE_TTL	  (30 * 60) /* to open the case after the start */
#define INTAKE_ATTEMPTS	  3
#define INTAKE_CODE_CHARS 8

static esim_err refuse(struct op_answer *a, int status, const char *code, const char *msg)
{
	a->status = status;
	a->json = json_pack("{s:s,s:s}", "error", code, "message", msg);
	return a->json ? ESIM_OK : ESIM_E_NOMEM;
}

static esim_err audit_json(op *o, const char *actor, const char *action, json_t *d)
{
	char *t = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	esim_err err = t ? op_audit(o, actor, action, t) : ESIM_E_NOMEM;
	free(t);
	json_decref(d);
	return err;
}

/* Upper case, without spaces and dashes: "abcd-2345" == "ABCD2345". */
static void normalize(const char *in, char *out, size_t n)
{
	size_t k = 0;
	for (const char *p = in; p && *p && k + 1 < n; p++) {
		if (*p == ' ' || *p == '-')
			continue;
		out[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	}
	out[k] = '\0';
}

static void code_hash(int64_t intake, const char *norm, char out[65])
{
	/* bound to the intake: a code is worth nothing on another one */
	char m[64];
	snprintf(m, sizeof m, "esim-intake-v1|%lld|%s", (long long)intake, norm);
	uint8_t md[32];
	crypto_hash_sha256(md, (const uint8_t *)m, strlen(m));
	sodium_bin2hex(out, 65, md, sizeof md);
	sodium_memzero(m, sizeof m);
}

/* The call-back code's letters: no 0/O, 1/I to misread on the phone. */
static const char code_alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

static bool code_char(char ch)
{
	return ch != '\0' && strchr(code_alpha, ch) != NULL;
}

/*
 * body with the call-back code of intake (whose hash is hash) masked as
 * "****-****": every "XXXX-XXXX" in it whose hash is the code's (so a
 * verification reference, OP-XXXX-XXXX, stays). Whether one was found.
 */
static bool mask_code(char *body, int64_t intake, const char *hash)
{
	bool found = false;
	size_t n = strlen(body);
	for (size_t i = 0; i + 9 <= n; i++) {
		bool shape = body[i + 4] == '-';
		for (size_t k = 0; shape && k < 9; k++)
			shape = k == 4 || code_char(body[i + k]);
		if (!shape)
			continue;
		char norm[9], h[65];
		memcpy(norm, body + i, 4);
		memcpy(norm + 4, body + i + 5, 4);
		norm[8] = '\0';
		code_hash(intake, norm, h);
		sodium_memzero(norm, sizeof norm);
		if (sodium_memcmp(h, hash, 64) == 0) {
			memcpy(body + i, "****-****", 9);
			found = true;
		}
	}
	return found;
}

esim_err op_intake_scrub(op *o, const char *reference)
{
	/* the intake whose notice this is, if any */
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s, "SELECT id, code_hash FROM op_intake WHERE notice_ref = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, reference);
	bool row = false;
	int64_t intake = 0;
	char hash[65] = "";
	if ((err = store_step(st, &row)) == ESIM_OK && row) {
		intake = store_col_int64(st, 0);
		snprintf(hash, sizeof hash, "%s", store_col_text(st, 1));
	}
	store_finalize(st);
	if (err != ESIM_OK || !row || strlen(hash) != 64)
		return err;
	/* the delivered e-mail, and the SMS copy at once: nothing in
	 * esim-operator sends or shows an SMS row's body (it records the text
	 * message); an e-mail waiting in the SMTP outbox keeps it until sent */
	struct copy {
		int64_t id;
		char *body;
	} c[4] = {{0}};
	size_t nc = 0;
	err = store_prepare(o->s,
			    "SELECT id, body FROM op_notices WHERE reference = ?1 AND"
			    " (sent = 1 OR channel = 'sms') ORDER BY id",
			    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, reference);
	while (nc < 4 && (err = store_step(st, &row)) == ESIM_OK && row) {
		c[nc].id = store_col_int64(st, 0);
		c[nc].body = strdup(store_col_text(st, 1));
		if (!c[nc++].body)
			err = ESIM_E_NOMEM;
	}
	store_finalize(st);
	for (size_t i = 0; err == ESIM_OK && i < nc; i++) {
		if (!mask_code(c[i].body, intake, hash))
			continue;
		if ((err = store_prepare(o->s, "UPDATE op_notices SET body = ?1 WHERE id = ?2",
					 &st)) != ESIM_OK)
			break;
		store_bind_text(st, 1, c[i].body);
		store_bind_int64(st, 2, c[i].id);
		err = store_run(st);
		store_finalize(st);
	}
	for (size_t i = 0; i < nc; i++) {
		if (c[i].body)
			sodium_memzero(c[i].body, strlen(c[i].body));
		free(c[i].body);
	}
	return err;
}

esim_err op_intake_start(op *o, const struct op_caller *c, const json_t *body, struct op_answer *a)
{
	json_t *cv = json_object_get(body, "customer_id");
	if (!json_is_integer(cv))
		return refuse(a, 400, "bad_request", "customer_id is required");
	int64_t cust = (int64_t)json_integer_value(cv);
	if (op_query_int(o, "SELECT COUNT(*) FROM op_customers WHERE id = ?1", cust, 0) == 0)
		return refuse(a, 404, "not_found", "no such customer");
	int64_t now = (int64_t)op_now(o);
	store_stmt *st;
	int64_t id = 0;
	esim_err err =
	    store_prepare(o->s,
			  "INSERT INTO op_intake (customer_id, staff, channel, code_hash,"
			  " created, expires, state) VALUES (?1, ?2, 'email+sms', '', ?3,"
			  " ?4, 'pending') RETURNING id",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, cust);
	store_bind_text(st, 2, c->actor);
	store_bind_int64(st, 3, now);
	store_bind_int64(st, 4, now + INTAKE_TTL);
	err = store_run_id(st, &id);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	char code[INTAKE_CODE_CHARS + 1], shown[INTAKE_CODE_CHARS + 2], h[65];
	for (int i = 0; i < INTAKE_CODE_CHARS; i++)
		code[i] = code_alpha[randombytes_uniform(sizeof code_alpha - 1)];
	code[INTAKE_CODE_CHARS] = '\0';
	snprintf(shown, sizeof shown, "%.4s-%.4s", code, code + 4);
	code_hash(id, code, h);
	char text[900], subject[200], ref[OP_REF_LEN], lang[4];
	if ((err = op_customer_lang(o, cust, lang)) != ESIM_OK)
		return err;
	op_fill(subject, sizeof subject,
		op_tr(o, lang, "notice.callback.subject", "Your call-back code"), NULL);
	op_fill(text, sizeof text,
		op_tr(o, lang, "notice.callback.text",
		      "Someone on the phone or at our desk asked us to act on your account. If it "
		      "is you, read this call-back code to our staff member: {code} (valid 10 "
		      "minutes). If you did not contact us, do not share it with anyone and call "
		      "us on the number printed on your invoice."),
		"code", shown, NULL);
	err = op_notify(o, cust, "assisted intake: call-back code", subject, text, ref);
	sodium_memzero(code, sizeof code);
	sodium_memzero(shown, sizeof shown);
	sodium_memzero(text, sizeof text);
	if (err == ESIM_OK &&
	    (err = store_prepare(
		 o->s, "UPDATE op_intake SET code_hash = ?1, notice_ref = ?2 WHERE id = ?3",
		 &st)) == ESIM_OK) {
		store_bind_text(st, 1, h);
		store_bind_text(st, 2, ref);
		store_bind_int64(st, 3, id);
		err = store_run(st);
		store_finalize(st);
	}
	/* delivered already (the maildir): the stored copies lose the code
	 * now; an e-mail in the SMTP outbox, once sent (mail.c) */
	if (err == ESIM_OK)
		err = op_intake_scrub(o, ref);
	if (err == ESIM_OK)
		err = audit_json(o, c->actor, "intake.start",
				 json_pack("{s:I,s:I,s:s}", "intake", (json_int_t)id, "customer",
					   (json_int_t)cust, "notice", ref));
	if (err != ESIM_OK)
		return err;
	char exp[32];
	op_iso_time((time_t)(now + INTAKE_TTL), exp);
	a->status = 201;
	a->json =
	    json_pack("{s:I,s:I,s:s,s:s,s:s}", "intake_id", (json_int_t)id, "customer_id",
		      (json_int_t)cust, "sent_to", "email+sms", "expires", exp, "state", "pending");
	return a->json ? ESIM_OK : ESIM_E_NOMEM;
}

struct intake {
	int64_t id, cust, created, expires, attempts, case_id;
	char staff[80], state[16], hash[65];
};

static esim_err intake_read(op *o, int64_t id, struct intake *in, bool *found)
{
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s,
			  "SELECT id, customer_id, created, expires, attempts, staff,"
			  " state, code_hash FROM op_intake WHERE id = ?1 {{FOR_UPDATE}}",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	err = store_step(st, found);
	if (err == ESIM_OK && *found) {
		in->id = store_col_int64(st, 0);
		in->cust = store_col_int64(st, 1);
		in->created = store_col_int64(st, 2);
		in->expires = store_col_int64(st, 3);
		in->attempts = store_col_int64(st, 4);
		snprintf(in->staff, sizeof in->staff, "%s", store_col_text(st, 5));
		snprintf(in->state, sizeof in->state, "%s", store_col_text(st, 6));
		snprintf(in->hash, sizeof in->hash, "%s", store_col_text(st, 7));
	}
	store_finalize(st);
	return err;
}

static esim_err intake_set(op *o, int64_t id, const char *state, int64_t attempts)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "UPDATE op_intake SET state = ?1, attempts = ?2 WHERE id = ?3", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, state);
	store_bind_int64(st, 2, attempts);
	store_bind_int64(st, 3, id);
	err = store_run(st);
	store_finalize(st);
	return err;
}

/* A refusal written to the audit log too (its transaction commits). */
static esim_err refuse_audited(op *o, const struct op_caller *c, int64_t id, const char *why,
			       struct op_answer *a, int status, const char *msg)
{
	esim_err err = audit_json(o, c->actor, "intake.refused",
				  json_pack("{s:I,s:s}", "intake", (json_int_t)id, "why", why));
	return err == ESIM_OK ? refuse(a, status, why, msg) : err;
}

esim_err op_intake_verify(op *o, const struct op_caller *c, const json_t *body, struct op_answer *a)
{
	json_t *iv = json_object_get(body, "intake_id");
	const char *code = json_string_value(json_object_get(body, "code"));
	if (!json_is_integer(iv) || !code || !*code || strlen(code) > 32)
		return refuse(a, 400, "bad_request",
			      "intake_id and code (what the customer reads back) are required");
	struct intake in;
	bool found;
	int64_t id = (int64_t)json_integer_value(iv);
	esim_err err = intake_read(o, id, &in, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		return refuse_audited(o, c, id, "no_such_intake", a, 404, "no such call-back");
	if (strcmp(in.staff, c->actor) != 0)
		return refuse_audited(o, c, id, "other_staff", a, 403,
				      "this call-back was started by another staff member");
	int64_t now = (int64_t)op_now(o);
	if (!strcmp(in.state, "pending") && now > in.expires) {
		if ((err = intake_set(o, id, "expired", in.attempts)) != ESIM_OK)
			return err;
		snprintf(in.state, sizeof in.state, "expired");
	}
	if (strcmp(in.state, "pending") != 0)
		return refuse_audited(o, c, id, in.state, a, 409,
				      !strcmp(in.state, "expired")
					  ? "the call-back code expired; start a new call-back"
				      : !strcmp(in.state, "failed")
					  ? "too many wrong codes; start a new call-back"
					  : "this call-back is not waiting for a code");
	char norm[40], h[65];
	normalize(code, norm, sizeof norm);
	code_hash(id, norm, h);
	sodium_memzero(norm, sizeof norm);
	bool match = sodium_memcmp(h, in.hash, 64) == 0;
	int64_t tries = in.attempts + 1;
	const char *state = match ? "verified" : tries >= INTAKE_ATTEMPTS ? "failed" : "pending";
	if ((err = intake_set(o, id, state, tries)) != ESIM_OK)
		return err;
	if ((err = audit_json(o, c->actor, match ? "intake.verified" : "intake.mismatch",
			      json_pack("{s:I,s:I,s:I,s:s}", "intake", (json_int_t)id, "customer",
					(json_int_t)in.cust, "attempt", (json_int_t)tries, "state",
					state))) != ESIM_OK)
		return err;
	if (!match) {
		a->status = 403;
		a->json = json_pack("{s:s,s:s,s:I}", "error", "code_mismatch", "message",
				    tries >= INTAKE_ATTEMPTS
					? "wrong code; no tries left, start a new call-back"
					: "wrong code; ask the customer to read it again",
				    "attempts_left", (json_int_t)(INTAKE_ATTEMPTS - tries));
		return a->json ? ESIM_OK : ESIM_E_NOMEM;
	}
	a->status = 200;
	a->json = json_pack("{s:I,s:I,s:s}", "intake_id", (json_int_t)id, "customer_id",
			    (json_int_t)in.cust, "state", "verified");
	return a->json ? ESIM_OK : ESIM_E_NOMEM;
}

esim_err op_intake_check(op *o, const struct op_caller *c, int64_t id, int64_t line, int64_t *cust,
			 struct op_answer *a)
{
	*cust = -1;
	if (id < 0)
		return refuse_audited(o, c, id, "no_callback", a, 403,
				      "an assisted case needs a verified call-back (intake_id)");
	struct intake in;
	bool found;
	esim_err err = intake_read(o, id, &in, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		return refuse_audited(o, c, id, "no_such_intake", a, 403, "no such call-back");
	if (strcmp(in.staff, c->actor) != 0)
		return refuse_audited(o, c, id, "other_staff", a, 403,
				      "this call-back was verified by another staff member");
	if (!strcmp(in.state, "used"))
		return refuse_audited(o, c, id, "already_used", a, 409,
				      "this call-back opened a case already; start a new one");
	if (strcmp(in.state, "verified") != 0)
		return refuse_audited(o, c, id, "not_verified", a, 403,
				      "the customer has not read the call-back code back yet");
	if ((int64_t)op_now(o) > in.created + INTAKE_USE_TTL)
		return refuse_audited(o, c, id, "expired", a, 409,
				      "the call-back is too old; start a new one");
	int64_t owner = op_query_int(o, "SELECT customer_id FROM op_lines WHERE id = ?1", line, -1);
	if (owner != in.cust)
		return refuse_audited(o, c, id, "other_customer", a, 403,
				      "the line is not the verified customer's");
	*cust = in.cust;
	return ESIM_OK;
}

esim_err op_intake_used(op *o, const struct op_caller *c, int64_t id, int64_t case_id)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "UPDATE op_intake SET state = 'used', case_id = ?1 WHERE id = ?2", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, case_id);
	store_bind_int64(st, 2, id);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		err = audit_json(
		    o, c->actor, "intake.case",
		    json_pack("{s:I,s:I}", "intake", (json_int_t)id, "case", (json_int_t)case_id));
	return err;
}

/* ---- leased equipment ---------------------------------------------------------- */

esim_err op_equipment_received(op *o, const struct op_caller *c, const json_t *body,
			       struct op_answer *a)
{
	json_t *iv = json_object_get(body, "equipment_id");
	const char *ref = json_string_value(json_object_get(body, "return_ref"));
	if (!json_is_integer(iv))
		return refuse(a, 400, "bad_request", "equipment_id is required");
	int64_t id = (int64_t)json_integer_value(iv);
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT return_ref, received FROM op_equipment WHERE id = ?1 {{FOR_UPDATE}}",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	bool row;
	err = store_step(st, &row);
	char want[80] = "";
	bool already = false;
	if (err == ESIM_OK && row) {
		snprintf(want, sizeof want, "%s",
			 store_col_text(st, 0) ? store_col_text(st, 0) : "");
		already = store_col_int64(st, 1) != 0;
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (!row)
		return refuse(a, 404, "not_found", "no such equipment");
	if (already)
		return refuse(a, 409, "conflict", "already_received");
	/* the parcel's reference, when given, must be the one issued */
	if (ref && want[0] && strcmp(ref, want) != 0)
		return refuse(a, 409, "return_ref_mismatch",
			      "the return reference does not match this item's");
	if ((err = store_prepare(o->s,
				 "UPDATE op_equipment SET received = 1, received_at = ?1 WHERE"
				 " id = ?2",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)op_now(o));
	store_bind_int64(st, 2, id);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		err = audit_json(
		    o, c->actor, "equipment.received",
		    json_pack("{s:I,s:s}", "equipment", (json_int_t)id, "return_ref", want));
	if (err != ESIM_OK)
		return err;
	a->status = 200;
	a->json = json_pack("{s:I,s:s,s:b}", "equipment_id", (json_int_t)id, "return_ref", want,
			    "received", 1);
	return a->json ? ESIM_OK : ESIM_E_NOMEM;
}
