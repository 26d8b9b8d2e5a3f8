/*
 * The operator's HTTP surface on net_server: the portal's JSON API
 * (docs/operator-api.md) with sessions, CSRF tokens and login limits, the
 * static portal files (the SM-DP+'s ES2+ callbacks are not served here
 * but on their own mutual-TLS listener: callback.c). Every request runs
 * under the handle's lock in one store transaction, so a step and its
 * audit entry commit together.
 *
 * Every answer, whatever its route or status, carries the same security
 * headers (a strict Content-Security-Policy without inline script or style,
 * frame-ancestors 'none', nosniff, ...). The customer's identity copy is
 * only ever served back as a download (Content-Disposition: attachment,
 * its checked type, nosniff) or, for a JPEG or PNG, through a view route
 * whose own policy (default-src 'none'; sandbox) lets nothing run.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "op_int.h"

#define LOGIN_LIMIT_NAME 5
#define LOGIN_LIMIT_ADDR 20
#define LOGIN_WINDOW	 (15 * 60)

struct ctx {
	op *o;
	const net_request *req;
	net_response *resp;
	json_t *body; /* POST body, or NULL */
	bool has_session;
	char kind[16]; /* "customer" | "staff" */
	int64_t who;
	char role[16];
	char csrf[65];
	char actor[80];
};

static esim_err reply(struct ctx *c, int status, json_t *j)
{
	esim_err err = net_response_json(c->resp, status, j);
	json_decref(j);
	if (err == ESIM_OK)
		err = net_response_add_header(c->resp, "Cache-Control", "no-store");
	return err;
}

static esim_err error(struct ctx *c, int status, const char *code, const char *msg)
{
	return reply(c, status, json_pack("{s:s,s:s}", "error", code, "message", msg));
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[32];
	crypto_hash_sha256(md, p, n);
	sodium_bin2hex(out, 65, md, 32);
}

static void random_hex(char out[65])
{
	uint8_t r[32];
	randombytes_buf(r, sizeof r);
	sodium_bin2hex(out, 65, r, sizeof r);
}

static json_t *iso(int64_t t)
{
	char b[32];
	op_iso_time((time_t)t, b);
	return json_string(b);
}

static json_t *col_text(store_stmt *st, int i)
{
	const char *s = store_col_text(st, i);
	return s ? json_string(s) : json_null();
}

static int64_t get_int(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static const char *get_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int64_t query_id(const net_request *req)
{
	const char *q = req->query;
	if (!q)
		return -1;
	for (const char *p = q; p && *p;) {
		if (!strncmp(p, "id=", 3)) {
			char *e;
			long long v = strtoll(p + 3, &e, 10);
			return (e != p + 3 && (*e == '\0' || *e == '&')) ? v : -1;
		}
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return -1;
}

/* The query's lang=, when it is one of the four languages (else ""). */
static void query_lang(const net_request *req, char out[4])
{
	out[0] = '\0';
	for (const char *p = req->query; p && *p;) {
		if (!strncmp(p, "lang=", 5)) {
			size_t n = strcspn(p + 5, "&");
			char v[8];
			snprintf(v, sizeof v, "%.*s", (int)(n < 7 ? n : 7), p + 5);
			if (op_lang_valid(v))
				memcpy(out, v, 3); /* two letters and the NUL */
			return;
		}
		p = strchr(p, '&');
		if (p)
			p++;
	}
}

/* ---- sessions ---------------------------------------------------------------- */

static bool cookie_token(const net_request *req, char out[65])
{
	const char *h = net_request_header(req, "Cookie");
	if (!h)
		return false;
	const char *p = strstr(h, "esim_session=");
	while (p && p != h && p[-1] != ' ' && p[-1] != ';')
		p = strstr(p + 1, "esim_session=");
	if (!p)
		return false;
	p += strlen("esim_session=");
	size_t n = strcspn(p, "; ");
	if (n != 64)
		return false;
	memcpy(out, p, 64);
	out[64] = '\0';
	return true;
}

static esim_err load_session(struct ctx *c)
{
	char tok[65], th[65];
	if (!cookie_token(c->req, tok))
		return ESIM_OK;
	sha256_hex(tok, 64, th);
	esim_wipe(tok, sizeof tok);
	store_stmt *st;
	esim_err err = store_prepare(c->o->s,
				     "SELECT kind, principal, role, csrf, expires FROM op_sessions"
				     " WHERE token_hash = ?1",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, th);
	bool row;
	err = store_step(st, &row);
	time_t now = op_now(c->o);
	if (err == ESIM_OK && row && store_col_int64(st, 4) > (int64_t)now) {
		c->has_session = true;
		snprintf(c->kind, sizeof c->kind, "%s", store_col_text(st, 0));
		c->who = store_col_int64(st, 1);
		snprintf(c->role, sizeof c->role, "%s", store_col_text(st, 2));
		snprintf(c->csrf, sizeof c->csrf, "%s", store_col_text(st, 3));
	}
	store_finalize(st);
	if (err != ESIM_OK || !c->has_session)
		return err;
	snprintf(c->actor, sizeof c->actor, "%s:%lld", c->kind, (long long)c->who);
	if (!strcmp(c->kind, "staff") &&
	    store_prepare(c->o->s, "SELECT login FROM op_staff WHERE id = ?1", &st) == ESIM_OK) {
		store_bind_int64(st, 1, c->who);
		if (store_step(st, &row) == ESIM_OK && row)
			snprintf(c->actor, sizeof c->actor, "staff:%s", store_col_text(st, 0));
		store_finalize(st);
	}
	if ((err =
		 store_prepare(c->o->s, "UPDATE op_sessions SET expires = ?1 WHERE token_hash = ?2",
			       &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)now + OP_SESSION_TTL);
	store_bind_text(st, 2, th);
	err = store_run(st);
	store_finalize(st);
	return err;
}

/* ---- login limits --------------------------------------------------------------- */

static int64_t locked_until(op *o, const char *k)
{
	store_stmt *st;
	if (store_prepare(o->s, "SELECT locked_until FROM op_login_fail WHERE k = ?1", &st) !=
	    ESIM_OK)
		return 0;
	store_bind_text(st, 1, k);
	bool row = false;
	int64_t v = 0;
	if (store_step(st, &row) == ESIM_OK && row)
		v = store_col_int64(st, 0);
	store_finalize(st);
	return v;
}

static esim_err fail_bump(op *o, const char *k, int64_t limit)
{
	int64_t now = (int64_t)op_now(o);
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT count, first_at, lockouts FROM op_login_fail WHERE k = ?1 {{FOR_UPDATE}}",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, k);
	bool row;
	err = store_step(st, &row);
	int64_t count = 0, first = now, lockouts = 0, until = 0;
	if (err == ESIM_OK && row) {
		count = store_col_int64(st, 0);
		first = store_col_int64(st, 1);
		lockouts = store_col_int64(st, 2);
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (now - first > LOGIN_WINDOW && lockouts == 0) {
		count = 0;
		first = now;
	}
	count++;
	if (count >= limit) {
		/* locked: a minute, doubled by each further failure, at most an hour */
		lockouts++;
		int64_t d = lockouts > 7 ? 3600 : 60LL << (lockouts - 1);
		until = now + (d > 3600 ? 3600 : d);
		count = limit - 1;
	}
	if (row)
		err =
		    store_prepare(o->s,
				  "UPDATE op_login_fail SET count = ?2, first_at = ?3,"
				  " locked_until = CASE WHEN ?4 > 0 THEN ?4 ELSE locked_until END,"
				  " lockouts = ?5 WHERE k = ?1",
				  &st);
	else
		err = store_prepare(o->s,
				    "INSERT INTO op_login_fail (k, count, first_at, locked_until,"
				    " lockouts) VALUES (?1, ?2, ?3, ?4, ?5)",
				    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, k);
	store_bind_int64(st, 2, count);
	store_bind_int64(st, 3, first);
	store_bind_int64(st, 4, until);
	store_bind_int64(st, 5, lockouts);
	err = store_run(st);
	store_finalize(st);
	return err;
}

static esim_err h_login(struct ctx *c, bool staff)
{
	const char *login = get_str(c->body, "login"), *pw = get_str(c->body, "password");
	if (!login || !pw || strlen(login) > 200 || strlen(pw) > 1024)
		return error(c, 400, "bad_request", "login and password are required");
	op *o = c->o;
	char kname[256], kaddr[96];
	snprintf(kname, sizeof kname, "login:%s:%s", staff ? "staff" : "customer", login);
	snprintf(kaddr, sizeof kaddr, "addr:%s", c->req->peer_addr ? c->req->peer_addr : "?");
	int64_t now = (int64_t)op_now(o);
	int64_t lu = locked_until(o, kname), la = locked_until(o, kaddr);
	int64_t until = lu > la ? lu : la;
	if (until > now) {
		char ra[24];
		snprintf(ra, sizeof ra, "%lld", (long long)(until - now));
		esim_err err = error(c, 429, "locked", "too many failed logins; try again later");
		if (err == ESIM_OK)
			err = net_response_add_header(c->resp, "Retry-After", ra);
		return err;
	}
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s,
			  staff ? "SELECT id, pwhash, role, login FROM op_staff WHERE login = ?1"
				: "SELECT id, pwhash, 'customer', name FROM op_customers"
				  " WHERE login = ?1",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, login);
	bool row;
	err = store_step(st, &row);
	bool ok = false;
	int64_t id = 0;
	char role[16] = "", name[200] = "";
	if (err == ESIM_OK && row) {
		ok = crypto_pwhash_str_verify(store_col_text(st, 1), pw, strlen(pw)) == 0;
		id = store_col_int64(st, 0);
		snprintf(role, sizeof role, "%s", store_col_text(st, 2));
		snprintf(name, sizeof name, "%s", store_col_text(st, 3));
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	char d[400];
	json_t *aj = json_pack("{s:s,s:s,s:b}", "login", login, "addr",
			       c->req->peer_addr ? c->req->peer_addr : "?", "ok", ok);
	char *ad = json_dumps(aj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(aj);
	snprintf(d, sizeof d, "%s", ad ? ad : "{}");
	free(ad);
	err = op_audit(o, staff ? "staff-login" : "customer-login", ok ? "login.ok" : "login.fail",
		       d);
	if (err != ESIM_OK)
		return err;
	if (!ok) {
		if ((err = fail_bump(o, kname, LOGIN_LIMIT_NAME)) == ESIM_OK)
			err = fail_bump(o, kaddr, LOGIN_LIMIT_ADDR);
		return err != ESIM_OK ? err
				      : error(c, 401, "bad_credentials", "wrong login or password");
	}
	if ((err = store_prepare(o->s, "DELETE FROM op_login_fail WHERE k = ?1", &st)) != ESIM_OK)
		return err;
	store_bind_text(st, 1, kname);
	err = store_run(st);
	store_finalize(st);
	char tok[65], th[65], csrf[65];
	random_hex(tok);
	random_hex(csrf);
	sha256_hex(tok, 64, th);
	if (err == ESIM_OK)
		err = store_prepare(
		    o->s,
		    "INSERT INTO op_sessions (token_hash, kind, principal, role, csrf,"
		    " expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
		    &st);
	if (err == ESIM_OK) {
		store_bind_text(st, 1, th);
		store_bind_text(st, 2, staff ? "staff" : "customer");
		store_bind_int64(st, 3, id);
		store_bind_text(st, 4, role);
		store_bind_text(st, 5, csrf);
		store_bind_int64(st, 6, now + OP_SESSION_TTL);
		err = store_run(st);
		store_finalize(st);
	}
	if (err == ESIM_OK)
		err = reply(c, 200,
			    json_pack("{s:s,s:s,s:s}", "role", role, "name", name, "csrf", csrf));
	char cookie[160];
	snprintf(cookie, sizeof cookie, "esim_session=%s; Path=/; HttpOnly; SameSite=Strict%s", tok,
		 c->req->tls ? "; Secure" : "");
	if (err == ESIM_OK)
		err = net_response_add_header(c->resp, "Set-Cookie", cookie);
	esim_wipe(tok, sizeof tok);
	esim_wipe(cookie, sizeof cookie);
	return err;
}

static esim_err h_logout(struct ctx *c)
{
	char tok[65], th[65];
	if (cookie_token(c->req, tok)) {
		sha256_hex(tok, 64, th);
		store_stmt *st;
		esim_err err =
		    store_prepare(c->o->s, "DELETE FROM op_sessions WHERE token_hash = ?1", &st);
		if (err != ESIM_OK)
			return err;
		store_bind_text(st, 1, th);
		err = store_run(st);
		store_finalize(st);
		if (err != ESIM_OK)
			return err;
	}
	esim_err err = reply(c, 200, json_pack("{s:b}", "ok", 1));
	if (err == ESIM_OK)
		err = net_response_add_header(
		    c->resp, "Set-Cookie",
		    "esim_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
	return err;
}

/* GET /api/i18n[?lang=xx]: a language's catalogue for the pages, the one
 * asked for or else the best for the browser's Accept-Language. Public:
 * the catalogues are the page texts, nothing private. */
static esim_err h_i18n(struct ctx *c)
{
	char lang[4];
	query_lang(c->req, lang);
	if (!lang[0] && c->req->query && strstr(c->req->query, "lang="))
		return error(c, 400, "bad_request", "lang must be one of en, nl, fr, zh");
	if (!lang[0])
		snprintf(lang, sizeof lang, "%s",
			 op_lang_negotiate(net_request_header(c->req, "Accept-Language")));
	int i = !strcmp(lang, "en") ? 0 : !strcmp(lang, "nl") ? 1 : !strcmp(lang, "fr") ? 2 : 3;
	if (!c->o->cat[i])
		return error(c, 404, "not_found",
			     "no catalogue for this language in the web folder");
	return reply(c, 200, json_pack("{s:s,s:O}", "lang", lang, "messages", c->o->cat[i]));
}

/* POST /api/me/lang {"lang": "nl"}: the customer's language, for the portal
 * on any device and for that customer's notices. */
static esim_err h_set_lang(struct ctx *c)
{
	const char *l = get_str(c->body, "lang");
	if (!op_lang_valid(l))
		return error(c, 400, "bad_request", "lang must be one of en, nl, fr, zh");
	store_stmt *st;
	esim_err err =
	    store_prepare(c->o->s, "UPDATE op_customers SET lang = ?1 WHERE id = ?2", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, l);
	store_bind_int64(st, 2, c->who);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	return reply(c, 200, json_pack("{s:s}", "lang", l));
}

static esim_err h_me(struct ctx *c)
{
	store_stmt *st;
	bool staff = !strcmp(c->kind, "staff");
	esim_err err =
	    store_prepare(c->o->s,
			  staff ? "SELECT login, login, NULL FROM op_staff WHERE id = ?1"
				: "SELECT name, login, lang FROM op_customers WHERE id = ?1",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, c->who);
	bool row;
	err = store_step(st, &row);
	json_t *j = NULL;
	if (err == ESIM_OK && row)
		j = json_pack("{s:s,s:o,s:o,s:s,s:o}", "role", c->role, "name", col_text(st, 0),
			      "login", col_text(st, 1), "csrf", c->csrf, "lang", col_text(st, 2));
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	return j ? reply(c, 200, j) : error(c, 401, "unauthenticated", "no such user");
}

/* ---- customer: account ----------------------------------------------------------- */

static json_t *invoice_json(store_stmt *st, int b)
{
	/* id, number, period, amount_cents, due, status, paid_at */
	return json_pack(
	    "{s:I,s:o,s:o,s:I,s:s,s:o,s:o,s:o}", "id", (json_int_t)store_col_int64(st, b), "number",
	    col_text(st, b + 1), "period", col_text(st, b + 2), "amount_cents",
	    (json_int_t)store_col_int64(st, b + 3), "currency", "EUR", "due", col_text(st, b + 4),
	    "status", col_text(st, b + 5), "paid_at",
	    store_col_is_null(st, b + 6) ? json_null() : iso(store_col_int64(st, b + 6)));
}

#define INVOICE_COLS "id, number, period, amount_cents, due, status, paid_at"

static esim_err list_json(op *o, const char *sql, int64_t arg, json_t *(*row_fn)(store_stmt *, int),
			  json_t **out)
{
	*out = json_array();
	store_stmt *st;
	esim_err err = store_prepare(o->s, sql, &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, arg);
	bool row;
	while ((err = store_step(st, &row)) == ESIM_OK && row)
		json_array_append_new(*out, row_fn(st, 0));
	store_finalize(st);
	return err;
}

static json_t *line_json(store_stmt *st, int b)
{
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:I}", "id", (json_int_t)store_col_int64(st, b),
			 "msisdn", col_text(st, b + 1), "iccid", col_text(st, b + 2), "plan",
			 col_text(st, b + 3), "state", col_text(st, b + 4), "monthly_cents",
			 (json_int_t)store_col_int64(st, b + 5));
}

#define LINE_COLS "id, msisdn, iccid, plan, state, monthly_cents"

static json_t *usage_json(store_stmt *st, int b)
{
	return json_pack("{s:I,s:o,s:I,s:o,s:o}", "line_id", (json_int_t)store_col_int64(st, b),
			 "kind", col_text(st, b + 1), "amount",
			 (json_int_t)store_col_int64(st, b + 2), "unit", col_text(st, b + 3), "at",
			 iso(store_col_int64(st, b + 4)));
}

static json_t *equip_json(store_stmt *st, int b)
{
	return json_pack("{s:I,s:o,s:o,s:I,s:o,s:b}", "line_id", (json_int_t)store_col_int64(st, b),
			 "item", col_text(st, b + 1), "return_by", col_text(st, b + 2), "id",
			 (json_int_t)store_col_int64(st, b + 3), "return_ref", col_text(st, b + 4),
			 "received", store_col_int64(st, b + 5) != 0);
}

#define EQUIP_COLS "e.line_id, e.item, e.return_by, e.id, e.return_ref, e.received"

static json_t *letter_json(store_stmt *st, int b)
{
	return json_pack("{s:I,s:o,s:o,s:o}", "id", (json_int_t)store_col_int64(st, b), "subject",
			 col_text(st, b + 1), "reference", col_text(st, b + 2), "at",
			 iso(store_col_int64(st, b + 3)));
}

/* usage: the seeded rows and the charging system's records (charging.c) */
static json_t *usage_rec_json(store_stmt *st, int b)
{
	json_t *j = usage_json(st, b);
	json_object_set_new(j, "record_id", col_text(st, b + 5));
	json_object_set_new(j, "roaming", json_boolean(store_col_int64(st, b + 6) != 0));
	json_object_set_new(j, "cents", json_integer(store_col_int64(st, b + 7)));
	json_object_set_new(j, "status", col_text(st, b + 8));
	json_object_set_new(j, "reason", col_text(st, b + 9));
	return j;
}

static esim_err h_account(struct ctx *c)
{
	op *o = c->o;
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s,
			  "SELECT account, name, address, (SELECT COALESCE(SUM(amount_cents), 0)"
			  " FROM op_invoices WHERE customer_id = ?1 AND status = 'open')"
			  " FROM op_customers WHERE id = ?1",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, c->who);
	bool row;
	err = store_step(st, &row);
	json_t *acc = NULL;
	if (err == ESIM_OK && row)
		acc = json_pack("{s:o,s:o,s:o,s:I,s:s}", "number", col_text(st, 0), "name",
				col_text(st, 1), "address", col_text(st, 2), "balance_cents",
				(json_int_t)store_col_int64(st, 3), "currency", "EUR");
	store_finalize(st);
	if (err != ESIM_OK || !acc)
		return err != ESIM_OK ? err : error(c, 404, "not_found", "no account");
	json_t *lines, *inv, *use, *eq;
	err = list_json(o, "SELECT " LINE_COLS " FROM op_lines WHERE customer_id = ?1 ORDER BY id",
			c->who, line_json, &lines);
	esim_err e2 = list_json(o,
				"SELECT " INVOICE_COLS " FROM op_invoices WHERE customer_id = ?1"
				" ORDER BY id",
				c->who, invoice_json, &inv);
	if (err == ESIM_OK)
		err = e2;
	list_json(o,
		  "SELECT u.line_id, u.kind, u.amount, u.unit, u.at, u.record_id, u.roaming,"
		  " u.cents, u.status, u.reason FROM op_usage u JOIN op_lines l"
		  " ON l.id = u.line_id WHERE l.customer_id = ?1 ORDER BY u.id",
		  c->who, usage_rec_json, &use);
	list_json(o,
		  "SELECT " EQUIP_COLS " FROM op_equipment e JOIN op_lines l"
		  " ON l.id = e.line_id WHERE l.customer_id = ?1 ORDER BY e.id",
		  c->who, equip_json, &eq);
	/* each line's caps, stop switch and this month's spend */
	for (size_t i = 0; err == ESIM_OK && i < json_array_size(lines); i++) {
		json_t *l = json_array_get(lines, i);
		err = op_charging_line_info(o, json_integer_value(json_object_get(l, "id")), l);
	}
	json_t *letters;
	list_json(o,
		  "SELECT id, subject, reference, at FROM op_notices WHERE customer_id = ?1 AND"
		  " channel = 'letter' ORDER BY id",
		  c->who, letter_json, &letters);
	json_t *j = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "account", acc, "lines", lines,
			      "invoices", inv, "usage", use, "equipment", eq, "letters", letters);
	return err == ESIM_OK ? reply(c, 200, j) : (json_decref(j), err);
}

static esim_err h_pay(struct ctx *c)
{
	int64_t id = get_int(c->body, "invoice_id");
	op *o = c->o;
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s,
			  "SELECT status, amount_cents FROM op_invoices WHERE id = ?1 AND"
			  " customer_id = ?2 {{FOR_UPDATE}}",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_int64(st, 2, c->who);
	bool row;
	err = store_step(st, &row);
	char status[16] = "";
	int64_t amount = 0;
	if (err == ESIM_OK && row) {
		snprintf(status, sizeof status, "%s", store_col_text(st, 0));
		amount = store_col_int64(st, 1);
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (!row)
		return error(c, 404, "not_found", "no such invoice");
	if (strcmp(status, "open") != 0)
		return error(c, 409, "conflict", "already_paid");
	int64_t now = (int64_t)op_now(o);
	char ref[40], r[17];
	uint8_t rb[8];
	randombytes_buf(rb, sizeof rb);
	sodium_bin2hex(r, sizeof r, rb, sizeof rb);
	snprintf(ref, sizeof ref, "PAY-%s", r);
	if ((err = store_prepare(
		 o->s, "UPDATE op_invoices SET status = 'paid', paid_at = ?1 WHERE id = ?2",
		 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, now);
	store_bind_int64(st, 2, id);
	err = store_run(st);
	store_finalize(st);
	int64_t pid = 0;
	if (err == ESIM_OK &&
	    (err = store_prepare(o->s,
				 "INSERT INTO op_payments (invoice_id, amount_cents, reference, at)"
				 " VALUES (?1, ?2, ?3, ?4) RETURNING id",
				 &st)) == ESIM_OK) {
		store_bind_int64(st, 1, id);
		store_bind_int64(st, 2, amount);
		store_bind_text(st, 3, ref);
		store_bind_int64(st, 4, now);
		err = store_run_id(st, &pid);
		store_finalize(st);
	}
	char d[160];
	snprintf(d, sizeof d, "{\"invoice\":%lld,\"cents\":%lld,\"reference\":\"%s\"}",
		 (long long)id, (long long)amount, ref);
	if (err == ESIM_OK)
		err = op_audit(o, c->actor, "invoice.pay", d);
	json_t *inv = NULL;
	if (err == ESIM_OK &&
	    (err = store_prepare(o->s, "SELECT " INVOICE_COLS " FROM op_invoices WHERE id = ?1",
				 &st)) == ESIM_OK) {
		store_bind_int64(st, 1, id);
		if ((err = store_step(st, &row)) == ESIM_OK && row)
			inv = invoice_json(st, 0);
		store_finalize(st);
	}
	if (err != ESIM_OK) {
		json_decref(inv);
		return err;
	}
	return reply(c, 200,
		     json_pack("{s:o,s:{s:I,s:s,s:I,s:o}}", "invoice", inv, "payment", "id",
			       (json_int_t)pid, "reference", ref, "amount_cents",
			       (json_int_t)amount, "at", iso(now)));
}

/* Open invoices: count and total. */
static void open_invoices(op *o, int64_t cust, int64_t *n, int64_t *total)
{
	store_stmt *st;
	*n = *total = 0;
	if (store_prepare(o->s,
			  "SELECT COUNT(*), COALESCE(SUM(amount_cents), 0) FROM op_invoices"
			  " WHERE customer_id = ?1 AND status = 'open'",
			  &st) != ESIM_OK)
		return;
	store_bind_int64(st, 1, cust);
	bool row;
	if (store_step(st, &row) == ESIM_OK && row) {
		*n = store_col_int64(st, 0);
		*total = store_col_int64(st, 1);
	}
	store_finalize(st);
}

static esim_err h_precheck(struct ctx *c)
{
	op *o = c->o;
	int64_t id = query_id(c->req);
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT " LINE_COLS " FROM op_lines WHERE id = ?1 AND customer_id = ?2", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_int64(st, 2, c->who);
	bool row;
	err = store_step(st, &row);
	json_t *line = err == ESIM_OK && row ? line_json(st, 0) : NULL;
	store_finalize(st);
	if (err != ESIM_OK || !line)
		return err != ESIM_OK ? err : error(c, 404, "not_found", "no such line");
	json_t *inv, *eq;
	list_json(o,
		  "SELECT " INVOICE_COLS
		  " FROM op_invoices WHERE customer_id = ?1 AND status = 'open'"
		  " ORDER BY id",
		  c->who, invoice_json, &inv);
	list_json(o, "SELECT " EQUIP_COLS " FROM op_equipment e WHERE e.line_id = ?1", id,
		  equip_json, &eq);
	int64_t n, total;
	open_invoices(o, c->who, &n, &total);
	json_t *oc = json_null();
	if (store_prepare(o->s,
			  "SELECT id, state FROM op_cases WHERE line_id = ?1 AND state NOT IN"
			  " ('closed', 'rejected') ORDER BY id DESC",
			  &st) == ESIM_OK) {
		store_bind_int64(st, 1, id);
		if (store_step(st, &row) == ESIM_OK && row)
			oc = json_pack("{s:I,s:o}", "id", (json_int_t)store_col_int64(st, 0),
				       "state", col_text(st, 1));
		store_finalize(st);
	}
	/* the contract's notice period (op_lines.notice_days) */
	int days = (int)op_query_int(o, "SELECT notice_days FROM op_lines WHERE id = ?1", id, 30);
	time_t end = op_now(o) + (time_t)days * 86400;
	char eb[32];
	op_iso_time(end, eb);
	eb[10] = '\0';
	const char *ls = json_string_value(json_object_get(line, "state"));
	bool can = json_is_null(oc) && ls && strcmp(ls, "terminated") != 0;
	return reply(c, 200,
		     json_pack("{s:o,s:o,s:I,s:o,s:i,s:s,s:o,s:b}", "line", line, "open_invoices",
			       inv, "open_total_cents", (json_int_t)total, "leased_equipment", eq,
			       "notice_period_days", days, "earliest_end", eb, "open_case", oc,
			       "can_submit", can));
}

/* ---- cases ------------------------------------------------------------------------ */

#define CASE_COLS                                                                                  \
	"c.id, c.line_id, l.msisdn, l.iccid, c.state, c.reason, c.doc_type, c.doc_number,"         \
	" c.doc_sha256, c.doc_cipher IS NOT NULL, c.info_request, c.decision_note, c.created,"     \
	" c.updated, c.closed, c.proof IS NOT NULL, c.customer_id, c.doc_mime"

static json_t *case_json(store_stmt *st, int b)
{
	(void)b;
	return json_pack(
	    "{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:b,s:o}", "id",
	    (json_int_t)store_col_int64(st, 0), "line_id", (json_int_t)store_col_int64(st, 1),
	    "msisdn", col_text(st, 2), "iccid", col_text(st, 3), "state", col_text(st, 4), "reason",
	    col_text(st, 5), "document_type", col_text(st, 6), "document_number", col_text(st, 7),
	    "document_sha256", col_text(st, 8), "document_present", store_col_int64(st, 9) != 0,
	    "info_request", col_text(st, 10), "decision_note", col_text(st, 11), "created",
	    iso(store_col_int64(st, 12)), "updated", iso(store_col_int64(st, 13)), "closed",
	    store_col_is_null(st, 14) ? json_null() : iso(store_col_int64(st, 14)),
	    "deletion_proof", store_col_int64(st, 15) != 0, "document_mime",
	    store_col_int64(st, 9) ? col_text(st, 17) : json_null());
}

/* The case, only when the customer owns it (cust < 0: staff, any case). */
static esim_err load_case(op *o, int64_t id, int64_t cust, json_t **out, int64_t *owner)
{
	*out = NULL;
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s,
			  "SELECT " CASE_COLS " FROM op_cases c JOIN op_lines l ON l.id ="
			  " c.line_id WHERE c.id = ?1 AND (?2 < 0 OR c.customer_id = ?2)",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_int64(st, 2, cust);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && row) {
		*out = case_json(st, 0);
		if (owner)
			*owner = store_col_int64(st, 16);
	}
	store_finalize(st);
	return err;
}

static json_t *event_json(store_stmt *st, int b)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o}", "at", iso(store_col_int64(st, b)), "state",
			 col_text(st, b + 1), "actor", col_text(st, b + 2), "note",
			 col_text(st, b + 3), "reference", col_text(st, b + 4));
}

static esim_err events_json(op *o, int64_t id, json_t **out)
{
	return list_json(
	    o,
	    "SELECT at, state, actor, note, reference FROM op_case_events WHERE case_id"
	    " = ?1 ORDER BY id",
	    id, event_json, out);
}

/* The identity copy in the body, decoded and checked (JPEG, PNG or PDF by
 * its content; document_mime, when given, must agree). On a problem the
 * 400 answer naming it is written and *refused set; nothing is stored.
 * *doc (caller wipes and frees) is NULL when the copy is absent and not
 * required. */
static esim_err take_document(struct ctx *c, bool required, uint8_t **doc, size_t *dl,
			      const char **mime, bool *refused)
{
	*doc = NULL;
	*dl = 0;
	*mime = NULL;
	*refused = false;
	json_t *v = json_object_get(c->body, "document_copy");
	if (!v) {
		*refused = required;
		return required ? error(c, 400, "bad_request", "document_copy is required")
				: ESIM_OK;
	}
	json_t *dm = json_object_get(c->body, "document_mime");
	if (dm && !json_is_string(dm)) {
		*refused = true;
		return error(c, 400, "bad_document", "document_mime must be a string");
	}
	uint8_t *p = NULL;
	size_t n = 0;
	if (net_json_get_base64(c->body, "document_copy", OP_DOC_MAX, &p, &n, NULL) != ESIM_OK) {
		free(p);
		*refused = true;
		return error(c, 400, "bad_document",
			     "document_copy must be base64 text of at most 4 MiB");
	}
	char why[200];
	const char *type = op_doc_check(p, n, json_string_value(dm), why, sizeof why);
	if (!type) {
		esim_wipe(p, n);
		free(p);
		*refused = true;
		return error(c, 400, "bad_document", why);
	}
	*doc = p;
	*dl = n;
	*mime = type;
	return ESIM_OK;
}

static void drop_document(uint8_t *doc, size_t n)
{
	if (doc)
		esim_wipe(doc, n);
	free(doc);
}

static bool valid_doc_type(const char *t)
{
	return t && (!strcmp(t, "id_card") || !strcmp(t, "passport") ||
		     !strcmp(t, "driving_licence") || !strcmp(t, "residence_permit"));
}

static esim_err submit_case(struct ctx *c, int64_t cust, int64_t line, const char *reason,
			    const char *dt, const char *dn, const uint8_t *doc, size_t dl,
			    const char *mime);

static esim_err h_submit(struct ctx *c)
{
	int64_t line = get_int(c->body, "line_id");
	const char *reason = get_str(c->body, "reason"), *dt = get_str(c->body, "document_type"),
		   *dn = get_str(c->body, "document_number");
	if (!reason || !*reason || strlen(reason) > 2000 || !valid_doc_type(dt) || !dn || !*dn ||
	    strlen(dn) > 64)
		return error(
		    c, 400, "bad_request",
		    "reason, document_type, document_number and document_copy are required");
	uint8_t *doc;
	size_t dl;
	const char *mime;
	bool refused;
	esim_err err = take_document(c, true, &doc, &dl, &mime, &refused);
	if (err != ESIM_OK || refused)
		return err;
	err = submit_case(c, c->who, line, reason, dt, dn, doc, dl, mime);
	drop_document(doc, dl);
	return err;
}

/* A case for customer cust's line: the customer's own request, or staff's
 * assisted intake after the call-back (then doc may be NULL: seen at the
 * desk, or none on the phone). */
static esim_err submit_case(struct ctx *c, int64_t cust, int64_t line, const char *reason,
			    const char *dt, const char *dn, const uint8_t *doc, size_t dl,
			    const char *mime)
{
	op *o = c->o;
	store_stmt *st;
	esim_err err = store_prepare(
	    o->s, "SELECT state FROM op_lines WHERE id = ?1 AND customer_id = ?2 {{FOR_UPDATE}}",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, line);
	store_bind_int64(st, 2, cust);
	bool row;
	err = store_step(st, &row);
	bool terminated = row && !strcmp(store_col_text(st, 0), "terminated");
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (!row)
		return error(c, 404, "not_found", "no such line");
	if (terminated)
		return error(c, 409, "conflict", "line_terminated");
	if (op_query_int(o,
			 "SELECT COUNT(*) FROM op_cases WHERE line_id = ?1 AND state NOT IN"
			 " ('closed', 'rejected')",
			 line, 0) > 0)
		return error(c, 409, "conflict", "case_open");
	int64_t now = (int64_t)op_now(o), id = 0;
	if ((err = store_prepare(
		 o->s,
		 "INSERT INTO op_cases (customer_id, line_id, state, reason, doc_type,"
		 " doc_number, doc_sha256, created, updated) VALUES (?1, ?2, 'new', ?3,"
		 " ?4, ?5, '', ?6, ?6) RETURNING id",
		 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, cust);
	store_bind_int64(st, 2, line);
	store_bind_text(st, 3, reason);
	store_bind_text(st, 4, dt);
	store_bind_text(st, 5, dn);
	store_bind_int64(st, 6, now);
	err = store_run_id(st, &id);
	store_finalize(st);
	if (err == ESIM_OK && doc)
		err = op_doc_seal(o, id, doc, dl, mime);
	if (err != ESIM_OK)
		return err;
	if ((err = store_prepare(o->s,
				 "INSERT INTO op_identity_checks (case_id, doc_type, doc_number,"
				 " doc_sha256, actor, result, at) SELECT id, doc_type, doc_number,"
				 " doc_sha256, ?2, 'submitted', ?3 FROM op_cases WHERE id = ?1",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_text(st, 2, c->actor);
	store_bind_int64(st, 3, now);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		err = op_case_move(o, id, "new", "submitted", c->actor, reason);
	json_t *cj = NULL;
	if (err == ESIM_OK)
		err = load_case(o, id, cust, &cj, NULL);
	if (err != ESIM_OK || !cj)
		return err != ESIM_OK ? err : ESIM_E_INTERNAL;
	return reply(c, 201, json_pack("{s:o}", "case", cj));
}

static esim_err h_cases(struct ctx *c)
{
	json_t *a = json_array();
	store_stmt *st;
	esim_err err =
	    store_prepare(c->o->s,
			  "SELECT " CASE_COLS " FROM op_cases c JOIN op_lines l ON l.id ="
			  " c.line_id WHERE c.customer_id = ?1 ORDER BY c.id DESC",
			  &st);
	if (err == ESIM_OK) {
		store_bind_int64(st, 1, c->who);
		bool row;
		while ((err = store_step(st, &row)) == ESIM_OK && row)
			json_array_append_new(a, case_json(st, 0));
		store_finalize(st);
	}
	if (err != ESIM_OK) {
		json_decref(a);
		return err;
	}
	return reply(c, 200, json_pack("{s:o}", "cases", a));
}

static esim_err h_case(struct ctx *c, int64_t id, int64_t cust)
{
	json_t *cj = NULL, *ev = NULL;
	esim_err err = load_case(c->o, id, cust, &cj, NULL);
	if (err != ESIM_OK || !cj)
		return err != ESIM_OK ? err : error(c, 404, "not_found", "no such case");
	err = events_json(c->o, id, &ev);
	return reply(c, 200, json_pack("{s:o,s:o}", "case", cj, "events", ev));
}

static esim_err case_state(op *o, int64_t id, int64_t cust, char *state, size_t n, bool *found)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s,
				     "SELECT state FROM op_cases WHERE id = ?1 AND (?2 < 0 OR"
				     " customer_id = ?2)",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_int64(st, 2, cust);
	err = store_step(st, found);
	if (err == ESIM_OK && *found)
		snprintf(state, n, "%s", store_col_text(st, 0));
	store_finalize(st);
	return err;
}

static esim_err answer_case(struct ctx *c, int64_t id, int64_t cust)
{
	json_t *cj = NULL;
	esim_err err = load_case(c->o, id, cust, &cj, NULL);
	if (err != ESIM_OK || !cj)
		return err != ESIM_OK ? err : ESIM_E_INTERNAL;
	return reply(c, 200, json_pack("{s:o}", "case", cj));
}

static esim_err h_respond(struct ctx *c)
{
	int64_t id = get_int(c->body, "case_id");
	const char *msg = get_str(c->body, "message");
	char state[32];
	bool found;
	esim_err err = case_state(c->o, id, c->who, state, sizeof state, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		return error(c, 404, "not_found", "no such case");
	if (!msg || !*msg)
		return error(c, 400, "bad_request", "message is required");
	if (strcmp(state, "needs_info") != 0)
		return error(c, 409, "conflict", "bad_state");
	uint8_t *doc;
	size_t dl;
	const char *mime;
	bool refused;
	if ((err = take_document(c, false, &doc, &dl, &mime, &refused)) != ESIM_OK || refused)
		return err;
	if (doc)
		err = op_doc_seal(c->o, id, doc, dl, mime);
	drop_document(doc, dl);
	if (err != ESIM_OK)
		return err;
	if ((err = op_case_move(c->o, id, "needs_info", "in_review", c->actor, msg)) != ESIM_OK)
		return err;
	return answer_case(c, id, c->who);
}

static esim_err h_record(struct ctx *c, bool html)
{
	int64_t id = query_id(c->req);
	char state[32];
	bool found;
	esim_err err = case_state(c->o, id, c->who, state, sizeof state, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		return error(c, 404, "not_found", "no such case");
	if (strcmp(state, "closed") != 0)
		return error(c, 409, "conflict", "case not closed yet");
	char *rec = NULL;
	if ((err = op_record_build(c->o, id, &rec)) != ESIM_OK)
		return err;
	if (!html) {
		char cd[96];
		snprintf(cd, sizeof cd, "attachment; filename=\"termination-%lld.json\"",
			 (long long)id);
		err = net_response_set(c->resp, 200, "application/json");
		if (err == ESIM_OK)
			err = net_response_add_header(c->resp, "Content-Disposition", cd);
		if (err == ESIM_OK)
			err = net_response_append(c->resp, rec, strlen(rec));
		free(rec);
		return err;
	}
	/* printable view: the JSON itself, escaped, under a short summary in
	 * the page's language (?lang=), else the customer's */
	char lang[4], idt[24], title[256];
	query_lang(c->req, lang);
	if (!lang[0] && (err = op_customer_lang(c->o, c->who, lang)) != ESIM_OK) {
		free(rec);
		return err;
	}
	snprintf(idt, sizeof idt, "%lld", (long long)id);
	op_fill(title, sizeof title,
		op_tr(c->o, lang, "record.print.title", "Termination record, case {id}"), "id", idt,
		NULL);
	esim_buf b = ESIM_BUF_INIT;
	char head[1024];
	snprintf(head, sizeof head,
		 "<!DOCTYPE html><html lang=\"%s\"><head><meta charset=\"utf-8\"><meta "
		 "name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>%s"
		 "</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body "
		 "class=\"record\"><main><h1>%s</h1><p>%s <code>esim-operator verify-record"
		 "</code>.</p><pre>",
		 !strcmp(lang, "zh") ? "zh-CN" : lang, title, title,
		 op_tr(c->o, lang, "record.print.signed",
		       "Signed by the operator (ECDSA P-256). Check it with"));
	err = esim_buf_append(&b, head, strlen(head));
	for (const char *p = rec; err == ESIM_OK && *p; p++) {
		const char *e = *p == '<'   ? "&lt;"
				: *p == '>' ? "&gt;"
				: *p == '&' ? "&amp;"
					    : NULL;
		err = e ? esim_buf_append(&b, e, strlen(e)) : esim_buf_append_byte(&b, (uint8_t)*p);
	}
	if (err == ESIM_OK)
		err = esim_buf_append(&b, "</pre></main></body></html>\n", 28);
	free(rec);
	if (err == ESIM_OK)
		err = net_response_set(c->resp, 200, "text/html; charset=utf-8");
	if (err == ESIM_OK)
		err = net_response_append(c->resp, b.data, b.len);
	esim_buf_free(&b);
	return err;
}

static esim_err h_reference(struct ctx *c)
{
	const char *in = get_str(c->body, "reference");
	if (!in)
		return error(c, 400, "bad_request", "reference is required");
	char k[96];
	snprintf(k, sizeof k, "ref:%s", c->req->peer_addr ? c->req->peer_addr : "?");
	int64_t now = (int64_t)op_now(c->o);
	if (locked_until(c->o, k) > now)
		return error(c, 429, "locked", "too many checks; try again later");
	char norm[16];
	size_t n = 0;
	for (const char *p = in; *p && n < 11; p++) {
		if (*p == ' ' || *p == '-')
			continue;
		norm[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	}
	norm[n] = '\0';
	char ref[OP_REF_LEN] = "";
	if (n == 10 && norm[0] == 'O' && norm[1] == 'P')
		snprintf(ref, sizeof ref, "OP-%.4s-%.4s", norm + 2, norm + 6);
	store_stmt *st;
	esim_err err = store_prepare(
	    c->o->s, "SELECT channel, at, purpose FROM op_contacts WHERE reference = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, ref);
	bool row;
	err = store_step(st, &row);
	json_t *j = NULL;
	if (err == ESIM_OK && row)
		j = json_pack("{s:b,s:o,s:o,s:o}", "genuine", 1, "channel", col_text(st, 0), "at",
			      iso(store_col_int64(st, 1)), "purpose", col_text(st, 2));
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (!j) {
		if ((err = fail_bump(c->o, k, LOGIN_LIMIT_ADDR)) != ESIM_OK)
			return err;
		j = json_pack("{s:b}", "genuine", 0);
	}
	char d[120];
	snprintf(d, sizeof d, "{\"reference\":\"%s\",\"genuine\":%s}", ref[0] ? ref : "-",
		 row ? "true" : "false");
	if ((err = op_audit(c->o, "public", "reference.check", d)) != ESIM_OK) {
		json_decref(j);
		return err;
	}
	return reply(c, 200, j);
}

/* ---- staff ---------------------------------------------------------------------------- */

/* Leased items on the case's line not received back yet. */
static int64_t equipment_due(op *o, int64_t case_id)
{
	return op_query_int(o,
			    "SELECT COUNT(*) FROM op_equipment e JOIN op_cases c ON"
			    " c.line_id = e.line_id WHERE c.id = ?1 AND e.received = 0",
			    case_id, 0);
}

static esim_err review_json(op *o, int64_t id, json_t **out)
{
	int64_t owner = 0;
	esim_err err = load_case(o, id, -1, out, &owner);
	if (err != ESIM_OK || !*out)
		return err;
	store_stmt *st;
	if ((err = store_prepare(o->s,
				 "SELECT id, name, address, login, account FROM op_customers WHERE"
				 " id = ?1",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, owner);
	bool row;
	if ((err = store_step(st, &row)) == ESIM_OK && row)
		json_object_set_new(*out, "customer",
				    json_pack("{s:I,s:o,s:o,s:o,s:o}", "id",
					      (json_int_t)store_col_int64(st, 0), "name",
					      col_text(st, 1), "address", col_text(st, 2), "login",
					      col_text(st, 3), "account", col_text(st, 4)));
	store_finalize(st);
	int64_t n, total;
	open_invoices(o, owner, &n, &total);
	int64_t eq = op_query_int(o,
				  "SELECT COUNT(*) FROM op_equipment e JOIN op_cases c ON"
				  " c.line_id = e.line_id WHERE c.id = ?1",
				  id, 0);
	int64_t due = equipment_due(o, id);
	int64_t days = op_query_int(o,
				    "SELECT l.notice_days FROM op_cases c JOIN op_lines l ON"
				    " l.id = c.line_id WHERE c.id = ?1",
				    id, 30);
	bool policy = op_setting(o, "final_invoice_policy", 0) != 0;
	json_t *blocking = json_array(), *items = NULL;
	if (n > 0 && !policy)
		json_array_append_new(blocking, json_string("open_invoices"));
	/* leased equipment not yet received back: never ready to approve */
	if (due > 0)
		json_array_append_new(blocking, json_string("equipment_due"));
	list_json(o,
		  "SELECT " EQUIP_COLS " FROM op_equipment e JOIN op_cases c ON"
		  " c.line_id = e.line_id WHERE c.id = ?1 ORDER BY e.id",
		  id, equip_json, &items);
	json_object_set_new(*out, "equipment", items);
	/* the customer's letters, for staff to print and post */
	json_t *letters = NULL;
	list_json(o,
		  "SELECT id, subject, reference, at FROM op_notices WHERE customer_id = ?1 AND"
		  " channel = 'letter' ORDER BY id",
		  owner, letter_json, &letters);
	json_object_set_new(*out, "letters", letters);
	json_object_set_new(*out, "checks",
			    json_pack("{s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:o}", "open_invoices",
				      (json_int_t)n, "open_total_cents", (json_int_t)total,
				      "leased_equipment", (json_int_t)eq, "equipment_due",
				      (json_int_t)due, "notice_period_days", (json_int_t)days,
				      "final_invoice_policy", policy, "can_approve",
				      json_array_size(blocking) == 0, "blocking", blocking));
	return err;
}

static esim_err h_queue(struct ctx *c)
{
	int64_t ids[256];
	size_t n = 0;
	store_stmt *st;
	esim_err err =
	    store_prepare(c->o->s,
			  "SELECT id FROM op_cases WHERE state IN ('submitted', 'in_review',"
			  " 'needs_info') ORDER BY id",
			  &st);
	if (err != ESIM_OK)
		return err;
	bool row;
	while (n < 256 && (err = store_step(st, &row)) == ESIM_OK && row)
		ids[n++] = store_col_int64(st, 0);
	store_finalize(st);
	json_t *a = json_array();
	for (size_t i = 0; err == ESIM_OK && i < n; i++) {
		json_t *r = NULL;
		err = review_json(c->o, ids[i], &r);
		if (r)
			json_array_append_new(a, r);
	}
	if (err != ESIM_OK) {
		json_decref(a);
		return err;
	}
	return reply(c, 200, json_pack("{s:o}", "cases", a));
}

static esim_err h_staff_case(struct ctx *c)
{
	int64_t id = query_id(c->req);
	json_t *r = NULL, *ev = NULL;
	esim_err err = review_json(c->o, id, &r);
	if (err != ESIM_OK || !r) {
		json_decref(r);
		return err != ESIM_OK ? err : error(c, 404, "not_found", "no such case");
	}
	events_json(c->o, id, &ev);
	char d[64];
	snprintf(d, sizeof d, "{\"case\":%lld}", (long long)id);
	if ((err = op_audit(c->o, c->actor, "case.view", d)) != ESIM_OK) {
		json_decref(r);
		json_decref(ev);
		return err;
	}
	return reply(c, 200, json_pack("{s:o,s:o}", "case", r, "events", ev));
}

static const char *doc_ext(const char *type)
{
	return !type				  ? "bin"
	       : !strcmp(type, "image/jpeg")	  ? "jpg"
	       : !strcmp(type, "image/png")	  ? "png"
	       : !strcmp(type, "application/pdf") ? "pdf"
						  : "bin";
}

/* The decrypted copy of case id, audited as viewed; NULL (answered 404)
 * once erased. The type is judged again from the plaintext, never taken
 * from the row: a copy stored before the checks existed is served as
 * application/octet-stream. */
static esim_err load_document(struct ctx *c, int64_t id, const char *how, uint8_t **plain,
			      size_t *pl, const char **type)
{
	esim_err err = op_doc_open(c->o, id, plain, pl);
	if (err == ESIM_E_NOT_FOUND)
		return error(c, 404, "not_found", "no document copy (erased or never given)");
	if (err != ESIM_OK)
		return err;
	*type = op_doc_type(*plain, *pl);
	char d[96];
	snprintf(d, sizeof d, "{\"case\":%lld,\"how\":\"%s\"}", (long long)id, how);
	return op_audit(c->o, c->actor, "case.document.view", d);
}

/* Send a decrypted identity copy: as a download (attachment) or, for an
 * image only, inline under a policy that lets nothing in it run. Never
 * cached; the plaintext is wiped whatever happens. */
static esim_err send_document(struct ctx *c, bool inline_image)
{
	int64_t id = query_id(c->req);
	uint8_t *plain = NULL;
	size_t pl = 0;
	const char *type = NULL;
	esim_err err =
	    load_document(c, id, inline_image ? "image" : "download", &plain, &pl, &type);
	if (err != ESIM_OK || !plain) {
		drop_document(plain, pl);
		return err;
	}
	if (inline_image &&
	    (!type || (strcmp(type, "image/jpeg") != 0 && strcmp(type, "image/png") != 0))) {
		drop_document(plain, pl);
		return error(c, 415, "not_an_image",
			     "this copy is not a JPEG or PNG image; download it instead");
	}
	char cd[96];
	snprintf(cd, sizeof cd, "%s; filename=\"case-%lld-identity.%s\"",
		 inline_image ? "inline" : "attachment", (long long)id, doc_ext(type));
	err = net_response_set(c->resp, 200, type ? type : "application/octet-stream");
	if (err == ESIM_OK && inline_image)
		err =
		    net_response_add_header(c->resp, "Content-Security-Policy",
					    "default-src 'none'; sandbox; frame-ancestors 'none'");
	if (err == ESIM_OK)
		err = net_response_add_header(c->resp, "Content-Disposition", cd);
	if (err == ESIM_OK)
		err = net_response_add_header(c->resp, "Cache-Control", "no-store");
	if (err == ESIM_OK)
		err = net_response_append(c->resp, plain, pl);
	drop_document(plain, pl);
	return err;
}

/* GET /api/staff/document: always a download, never rendered in the page. */
static esim_err h_document(struct ctx *c)
{
	return send_document(c, false);
}

/* GET /api/staff/document/view: a JPEG or PNG copy for an <img> in the
 * staff page, under a policy that lets nothing in it run (default-src
 * 'none'; sandbox). A PDF (or anything else) is only a download. */
static esim_err h_document_view(struct ctx *c)
{
	return send_document(c, true);
}

static esim_err identity_check(struct ctx *c, int64_t id, const char *result)
{
	store_stmt *st;
	esim_err err =
	    store_prepare(c->o->s,
			  "INSERT INTO op_identity_checks (case_id, doc_type, doc_number,"
			  " doc_sha256, actor, result, at) SELECT id, doc_type, doc_number,"
			  " doc_sha256, ?2, ?3, ?4 FROM op_cases WHERE id = ?1",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_text(st, 2, c->actor);
	store_bind_text(st, 3, result);
	store_bind_int64(st, 4, (int64_t)op_now(c->o));
	err = store_run(st);
	store_finalize(st);
	return err;
}

static esim_err set_case_text(op *o, int64_t id, const char *col_sql, const char *v)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s, col_sql, &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, v);
	store_bind_int64(st, 2, id);
	err = store_run(st);
	store_finalize(st);
	return err;
}

static esim_err h_staff_action(struct ctx *c, const char *action)
{
	op *o = c->o;
	int64_t id = get_int(c->body, "case_id");
	char state[32];
	bool found;
	esim_err err = case_state(o, id, -1, state, sizeof state, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		return error(c, 404, "not_found", "no such case");
	if (!strcmp(action, "take")) {
		if (strcmp(state, "submitted") != 0)
			return error(c, 409, "conflict", "bad_state");
		err = op_case_move(o, id, "submitted", "in_review", c->actor, NULL);
	} else if (!strcmp(action, "approve")) {
		if (strcmp(state, "submitted") != 0 && strcmp(state, "in_review") != 0)
			return error(c, 409, "conflict", "bad_state");
		int64_t owner =
		    op_query_int(o, "SELECT customer_id FROM op_cases WHERE id = ?1", id, 0);
		int64_t n, total;
		open_invoices(o, owner, &n, &total);
		if (n > 0 && !op_setting(o, "final_invoice_policy", 0))
			return error(c, 409, "conflict", "open_invoices");
		if (equipment_due(o, id) > 0)
			return error(c, 409, "conflict", "equipment_due");
		const char *note = get_str(c->body, "note");
		if (!strcmp(state, "submitted"))
			err = op_case_move(o, id, "submitted", "in_review", c->actor, NULL);
		if (err == ESIM_OK)
			err = identity_check(c, id, "accepted");
		if (err == ESIM_OK && note)
			err = set_case_text(
			    o, id, "UPDATE op_cases SET decision_note = ?1 WHERE id = ?2", note);
		if (err == ESIM_OK)
			err = op_case_move(o, id, "in_review", "approved", c->actor, note);
		if (err == ESIM_OK)
			err = op_after_approval(o, id, c->actor);
	} else if (!strcmp(action, "reject")) {
		const char *reason = get_str(c->body, "reason");
		if (!reason || !*reason)
			return error(c, 400, "bad_request", "reason is required");
		if (strcmp(state, "submitted") && strcmp(state, "in_review") &&
		    strcmp(state, "needs_info"))
			return error(c, 409, "conflict", "bad_state");
		err = identity_check(c, id, "rejected");
		if (err == ESIM_OK)
			err = set_case_text(
			    o, id, "UPDATE op_cases SET decision_note = ?1 WHERE id = ?2", reason);
		if (err == ESIM_OK)
			err = set_case_text(
			    o, id,
			    "UPDATE op_cases SET info_request = COALESCE(info_request, ?1)"
			    " WHERE id = ?2",
			    "");
		if (err == ESIM_OK) /* a rejected case ends: its copy goes for good */
			err = op_doc_erase(o, id);
		if (err == ESIM_OK)
			err = op_case_move(o, id, "submitted,in_review,needs_info", "rejected",
					   c->actor, reason);
	} else { /* request-info */
		const char *msg = get_str(c->body, "message");
		if (!msg || !*msg)
			return error(c, 400, "bad_request", "message is required");
		if (strcmp(state, "submitted") && strcmp(state, "in_review"))
			return error(c, 409, "conflict", "bad_state");
		err = set_case_text(o, id, "UPDATE op_cases SET info_request = ?1 WHERE id = ?2",
				    msg);
		if (err == ESIM_OK)
			err =
			    op_case_move(o, id, "submitted,in_review", "needs_info", c->actor, msg);
	}
	if (err != ESIM_OK)
		return err;
	return answer_case(c, id, -1);
}

static esim_err h_settings(struct ctx *c, bool post)
{
	op *o = c->o;
	if (post) {
		if (strcmp(c->role, "admin") != 0)
			return error(c, 403, "forbidden", "admin role required");
		json_t *p = json_object_get(c->body, "final_invoice_policy");
		json_t *r = json_object_get(c->body, "deletion_reminder_seconds");
		store_stmt *st;
		for (int i = 0; i < 2; i++) {
			json_t *v = i ? r : p;
			const char *k = i ? "deletion_reminder_seconds" : "final_invoice_policy";
			if (!v)
				continue;
			if (!(i ? json_is_integer(v) : json_is_boolean(v)))
				return error(c, 400, "bad_request", k);
			int64_t val = i ? (int64_t)json_integer_value(v) : json_is_true(v);
			esim_err err =
			    store_prepare(o->s, "DELETE FROM op_settings WHERE k = ?1", &st);
			if (err != ESIM_OK)
				return err;
			store_bind_text(st, 1, k);
			err = store_run(st);
			store_finalize(st);
			if (err == ESIM_OK)
				err = store_prepare(
				    o->s, "INSERT INTO op_settings (k, v) VALUES (?1, ?2)", &st);
			if (err != ESIM_OK)
				return err;
			store_bind_text(st, 1, k);
			store_bind_int64(st, 2, val);
			err = store_run(st);
			store_finalize(st);
			char d[128];
			snprintf(d, sizeof d, "{\"key\":\"%s\",\"value\":%lld}", k, (long long)val);
			if (err == ESIM_OK)
				err = op_audit(o, c->actor, "setting", d);
			if (err != ESIM_OK)
				return err;
		}
	}
	return reply(c, 200,
		     json_pack("{s:b,s:I}", "final_invoice_policy",
			       op_setting(o, "final_invoice_policy", 0) != 0,
			       "deletion_reminder_seconds",
			       (json_int_t)op_setting(o, "deletion_reminder_seconds", 7 * 86400)));
}

/* ---- caps, stop switch, assisted intake, equipment, letters ---------------------------- */

/* The answer of a step written in charging.c or intake.c. */
static esim_err api_answer(struct ctx *c, esim_err err, struct op_answer *a)
{
	if (err != ESIM_OK || !a->json) {
		json_decref(a->json);
		return err != ESIM_OK ? err : ESIM_E_INTERNAL;
	}
	return reply(c, a->status, a->json);
}

typedef esim_err (*api_step)(op *o, const struct op_caller *c, const json_t *body,
			     struct op_answer *a);

static esim_err api_run(struct ctx *c, api_step fn)
{
	struct op_caller k = {.who = c->who, .actor = c->actor};
	struct op_answer a = {0, NULL};
	return api_answer(c, fn(c->o, &k, c->body, &a), &a);
}

static esim_err h_caps(struct ctx *c)
{
	return api_run(c, op_charging_set_caps);
}
static esim_err h_stop(struct ctx *c)
{
	return api_run(c, op_charging_set_stop);
}
static esim_err h_intake_start(struct ctx *c)
{
	return api_run(c, op_intake_start);
}
static esim_err h_intake_verify(struct ctx *c)
{
	return api_run(c, op_intake_verify);
}
static esim_err h_equipment_received(struct ctx *c)
{
	return api_run(c, op_equipment_received);
}

/* POST /api/staff/intake/case: a case opened by staff for the customer a
 * verified call-back (intake.c) identified, on that customer's line only.
 * The identity copy is optional here (seen at the desk, or a phone call). */
static esim_err h_intake_case(struct ctx *c)
{
	int64_t intake = get_int(c->body, "intake_id"), line = get_int(c->body, "line_id");
	const char *reason = get_str(c->body, "reason"), *dt = get_str(c->body, "document_type"),
		   *dn = get_str(c->body, "document_number");
	if (line < 0 || !reason || !*reason || strlen(reason) > 2000 || !valid_doc_type(dt) ||
	    !dn || !*dn || strlen(dn) > 64)
		return error(c, 400, "bad_request",
			     "line_id, reason, document_type and document_number are required");
	struct op_caller k = {.who = c->who, .actor = c->actor};
	struct op_answer a = {0, NULL};
	int64_t cust = -1;
	esim_err err = op_intake_check(c->o, &k, intake, line, &cust, &a);
	if (err != ESIM_OK || cust < 0)
		return api_answer(c, err, &a);
	uint8_t *doc;
	size_t dl;
	const char *mime;
	bool refused;
	if ((err = take_document(c, false, &doc, &dl, &mime, &refused)) != ESIM_OK || refused)
		return err;
	char why[160];
	snprintf(why, sizeof why, "%s (assisted intake %lld, call-back verified by %s)", reason,
		 (long long)intake, c->actor);
	err = submit_case(c, cust, line, why, dt, dn, doc, dl, mime);
	drop_document(doc, dl);
	if (err == ESIM_OK && c->resp->status == 201)
		err = op_intake_used(
		    c->o, &k, intake,
		    op_query_int(c->o, "SELECT MAX(id) FROM op_cases WHERE line_id = ?1", line, 0));
	return err;
}

static esim_err send_letter(struct ctx *c, int64_t cust)
{
	int64_t id = query_id(c->req);
	char *html = NULL;
	esim_err err = op_letter_html(c->o, id, cust, &html);
	if (err != ESIM_OK || !html)
		return err != ESIM_OK ? err : error(c, 404, "not_found", "no such letter");
	char d[64];
	snprintf(d, sizeof d, "{\"letter\":%lld}", (long long)id);
	err = op_audit(c->o, c->actor, "letter.view", d);
	if (err == ESIM_OK)
		err = net_response_set(c->resp, 200, "text/html; charset=utf-8");
	if (err == ESIM_OK)
		err = net_response_add_header(c->resp, "Cache-Control", "no-store");
	if (err == ESIM_OK)
		err = net_response_append(c->resp, html, strlen(html));
	free(html);
	return err;
}

/* GET /api/letter?id=N: one of the customer's letters, printable. */
static esim_err h_letter(struct ctx *c)
{
	return send_letter(c, c->who);
}
/* GET /api/staff/letter?id=N: any letter, to print and post (audited). */
static esim_err h_staff_letter(struct ctx *c)
{
	return send_letter(c, -1);
}

/* ---- static files ---------------------------------------------------------------------- */

static bool safe_name(const char *n)
{
	if (!*n || *n == '.')
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			return false;
	return strlen(n) < 128;
}

static const char *mime_of(const char *n)
{
	const char *e = strrchr(n, '.');
	static const char *const map[][2] = {{".html", "text/html; charset=utf-8"},
					     {".js", "text/javascript; charset=utf-8"},
					     {".css", "text/css; charset=utf-8"},
					     {".png", "image/png"},
					     {".svg", "image/svg+xml"},
					     {".json", "application/json"},
					     {".ico", "image/x-icon"},
					     {".txt", "text/plain; charset=utf-8"}};
	for (size_t i = 0; e && i < sizeof map / sizeof map[0]; i++)
		if (!strcasecmp(e, map[i][0]))
			return map[i][1];
	return "application/octet-stream";
}

static esim_err serve_static(op *o, const char *name, net_response *resp)
{
	if (!safe_name(name))
		return net_response_set(resp, 404, NULL);
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", o->web_dir, name);
	uint8_t *p = NULL;
	size_t n = 0;
	if (esim_read_file(path, 16u << 20, &p, &n) != ESIM_OK)
		return net_response_set(resp, 404, "text/plain");
	esim_err err = net_response_set(resp, 200, mime_of(name));
	if (err == ESIM_OK)
		err = net_response_add_header(resp, "Cache-Control", "no-store");
	if (err == ESIM_OK)
		err = net_response_append(resp, p, n);
	free(p);
	return err;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

enum need { PUBLIC, CUSTOMER, STAFF };

/* What a route asks of the request besides its role. */
enum {
	R_SESSION = 1 << 0, /* a session even though the role is PUBLIC */
	R_NO_CSRF = 1 << 1, /* no X-CSRF-Token: there is no session yet, or the
			       caller is not a browser (the SM-DP+'s callback) */
	R_RAW = 1 << 2,	    /* the body is not a JSON object to parse here */
};

/* Handlers whose arguments differ per route. */
static esim_err w_login(struct ctx *c)
{
	return h_login(c, false);
}
static esim_err w_staff_login(struct ctx *c)
{
	return h_login(c, true);
}
static esim_err w_case(struct ctx *c)
{
	return h_case(c, query_id(c->req), c->who);
}
static esim_err w_record(struct ctx *c)
{
	return h_record(c, false);
}
static esim_err w_record_html(struct ctx *c)
{
	return h_record(c, true);
}
static esim_err w_take(struct ctx *c)
{
	return h_staff_action(c, "take");
}
static esim_err w_approve(struct ctx *c)
{
	return h_staff_action(c, "approve");
}
static esim_err w_reject(struct ctx *c)
{
	return h_staff_action(c, "reject");
}
static esim_err w_request_info(struct ctx *c)
{
	return h_staff_action(c, "request-info");
}
static esim_err w_settings(struct ctx *c)
{
	return h_settings(c, false);
}
static esim_err w_settings_set(struct ctx *c)
{
	return h_settings(c, true);
}

struct route {
	const char *method, *path;
	enum need need;
	unsigned flags;
	esim_err (*fn)(struct ctx *c);
};

static const struct route routes[] = {
    {"POST", "/api/login", PUBLIC, R_NO_CSRF, w_login},
    {"POST", "/api/staff/login", PUBLIC, R_NO_CSRF, w_staff_login},
    {"POST", "/api/logout", PUBLIC, R_SESSION | R_RAW, h_logout},
    {"GET", "/api/me", PUBLIC, R_SESSION, h_me},
    {"POST", "/api/me/lang", CUSTOMER, 0, h_set_lang},
    {"GET", "/api/i18n", PUBLIC, 0, h_i18n},
    {"GET", "/api/account", CUSTOMER, 0, h_account},
    {"POST", "/api/invoices/pay", CUSTOMER, 0, h_pay},
    {"POST", "/api/lines/caps", CUSTOMER, 0, h_caps},
    {"POST", "/api/lines/stop", CUSTOMER, 0, h_stop},
    {"GET", "/api/letter", CUSTOMER, 0, h_letter},
    {"GET", "/api/lines/precheck", CUSTOMER, 0, h_precheck},
    {"POST", "/api/cases", CUSTOMER, 0, h_submit},
    {"GET", "/api/cases", CUSTOMER, 0, h_cases},
    {"GET", "/api/case", CUSTOMER, 0, w_case},
    {"POST", "/api/case/respond", CUSTOMER, 0, h_respond},
    {"GET", "/api/case/record", CUSTOMER, 0, w_record},
    {"GET", "/api/case/record.html", CUSTOMER, 0, w_record_html},
    {"POST", "/api/reference/check", PUBLIC, R_NO_CSRF, h_reference},
    {"GET", "/api/staff/queue", STAFF, 0, h_queue},
    {"GET", "/api/staff/case", STAFF, 0, h_staff_case},
    {"GET", "/api/staff/document", STAFF, 0, h_document},
    {"GET", "/api/staff/document/view", STAFF, 0, h_document_view},
    {"POST", "/api/staff/case/take", STAFF, 0, w_take},
    {"POST", "/api/staff/case/approve", STAFF, 0, w_approve},
    {"POST", "/api/staff/case/reject", STAFF, 0, w_reject},
    {"POST", "/api/staff/case/request-info", STAFF, 0, w_request_info},
    {"POST", "/api/staff/intake/start", STAFF, 0, h_intake_start},
    {"POST", "/api/staff/intake/verify", STAFF, 0, h_intake_verify},
    {"POST", "/api/staff/intake/case", STAFF, 0, h_intake_case},
    {"POST", "/api/staff/equipment/received", STAFF, 0, h_equipment_received},
    {"GET", "/api/staff/letter", STAFF, 0, h_staff_letter},
    {"GET", "/api/staff/settings", STAFF, 0, w_settings},
    {"POST", "/api/staff/settings", STAFF, 0, w_settings_set},
};

static esim_err run_route(struct ctx *c, const struct route *r)
{
	bool post = !strcmp(r->method, "POST");
	/* sessions first: a missing session is 401 before the CSRF check */
	esim_err err = load_session(c);
	if (err != ESIM_OK)
		return err;
	if ((r->need != PUBLIC || (r->flags & R_SESSION)) && !c->has_session)
		return error(c, 401, "unauthenticated", "log in first");
	if (r->need != PUBLIC && (r->need == STAFF) != (strcmp(c->kind, "staff") == 0))
		return error(c, 403, "forbidden", "this role may not call this");
	if (post && c->has_session && !(r->flags & R_NO_CSRF)) {
		const char *t = net_request_header(c->req, "X-CSRF-Token");
		if (!t || strlen(t) != 64 || !esim_ct_equal(t, c->csrf, 64))
			return error(c, 403, "csrf", "missing or wrong X-CSRF-Token");
	}
	if (post && !(r->flags & R_RAW)) {
		if (net_json_parse(c->req->body, c->req->body_len, 8u << 20, 16, &c->body, NULL) !=
			ESIM_OK ||
		    !json_is_object(c->body))
			return error(c, 400, "bad_request", "body must be a JSON object");
	}
	return r->fn(c);
}

/* The policy of every page and answer: scripts, styles, images and
 * fetches from this origin only, no inline script or style (attributes
 * included), no plugins, no framing, forms only to this origin. */
#define PAGE_CSP                                                                                   \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"                 \
	" connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"             \
	" frame-ancestors 'none'"

static bool has_header(const net_response *resp, const char *name)
{
	for (size_t i = 0; i < resp->n_headers; i++)
		if (!strcasecmp(resp->headers[i].name, name))
			return true;
	return false;
}

/* The portal's security headers, one list for both ways they reach an
 * answer: security_headers on op_http's, and the portal listener's
 * default headers (op_add_portal) on the server's own (404, 405, 400,
 * 413, ...). */
static const struct net_header portal_headers[] = {
    {"Content-Security-Policy", PAGE_CSP},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=(),"
			   " interest-cohort=()"},
};

const struct net_header *op_security_headers(size_t *n)
{
	*n = sizeof portal_headers / sizeof portal_headers[0];
	return portal_headers;
}

/* On every answer; a header the handler set itself (the image view's
 * stricter policy) is kept. */
static esim_err security_headers(net_response *resp)
{
	esim_err err = ESIM_OK;
	for (size_t i = 0; err == ESIM_OK && i < sizeof portal_headers / sizeof portal_headers[0];
	     i++)
		if (!has_header(resp, portal_headers[i].name))
			err = net_response_add_header(resp, portal_headers[i].name,
						      portal_headers[i].value);
	return err;
}

static esim_err route_request(op *o, const net_request *req, net_response *resp);

esim_err op_http(const net_request *req, net_response *resp, void *arg)
{
	op *o = arg;
	esim_err err = route_request(o, req, resp);
	if (err != ESIM_OK) {
		/* answered here rather than by the server's bare 500, so that it
		 * too carries the headers; the SM-DP+ retries a 500 all the same */
		net_response_clear(resp);
		net_response_init(resp);
		json_t *j = json_pack("{s:s,s:s}", "error", "internal", "message",
				      "the server could not complete the request");
		err = net_response_json(resp, 500, j);
		json_decref(j);
		if (err == ESIM_OK)
			err = net_response_add_header(resp, "Cache-Control", "no-store");
	}
	if (err == ESIM_OK)
		err = security_headers(resp);
	return err;
}

static esim_err route_request(op *o, const net_request *req, net_response *resp)
{
	if (!strcmp(req->method, "GET")) {
		if (!strcmp(req->path, "/"))
			return serve_static(o, "index.html", resp);
		if (!strcmp(req->path, "/staff"))
			return serve_static(o, "staff.html", resp);
		if (!strncmp(req->path, "/static/", 8))
			return serve_static(o, req->path + 8, resp);
	}
	const struct route *r = NULL;
	bool path_known = false;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (!strcmp(routes[i].path, req->path)) {
			path_known = true;
			if (!strcmp(routes[i].method, req->method))
				r = &routes[i];
		}
	struct ctx c = {.o = o, .req = req, .resp = resp};
	if (!r)
		return error(&c, path_known ? 405 : 404, "not_found", "no such endpoint");
	pthread_mutex_lock(&o->lock);
	esim_err err;
	for (int attempt = 0;; attempt++) {
		err = store_begin(o->s);
		if (err == ESIM_OK) {
			err = run_route(&c, r);
			if (err == ESIM_OK)
				err = store_commit(o->s);
			else
				store_rollback(o->s);
		}
		if (err != ESIM_E_STORE_BUSY || attempt >= 20)
			break;
		json_decref(c.body);
		net_response_clear(resp);
		net_response_init(resp);
		c = (struct ctx){.o = o, .req = req, .resp = resp};
	}
	if (err == ESIM_OK)
		op_doc_flush(o); /* an erased copy leaves the WAL now (busy: next commit) */
	pthread_mutex_unlock(&o->lock);
	json_decref(c.body);
	return err;
}

esim_err op_add_routes(op *o, net_server *srv, int listener)
{
	esim_err err = ESIM_OK;
	for (size_t i = 0; err == ESIM_OK && i < sizeof routes / sizeof routes[0]; i++)
		err = net_server_add_route(srv, listener, routes[i].method, routes[i].path, op_http,
					   o);
	if (err == ESIM_OK)
		err = net_server_add_route(srv, listener, "GET", "/", op_http, o);
	if (err == ESIM_OK)
		err = net_server_add_route(srv, listener, "GET", "/staff", op_http, o);
	DIR *d = opendir(o->web_dir);
	if (!d)
		return err;
	struct dirent *e;
	while (err == ESIM_OK && (e = readdir(d)) != NULL) {
		if (!safe_name(e->d_name))
			continue;
		char p[300];
		snprintf(p, sizeof p, "/static/%s", e->d_name);
		err = net_server_add_route(srv, listener, "GET", p, op_http, o);
	}
	closedir(d);
	return err;
}

esim_err op_add_portal(op *o, net_server *srv, const struct net_listener_config *lc, int *id)
{
	struct net_listener_config pl = *lc;
	pl.default_headers = op_security_headers(&pl.n_default_headers);
	int lid = -1;
	esim_err err = net_server_add_listener(srv, &pl, &lid);
	if (err == ESIM_OK)
		err = op_add_routes(o, srv, lid);
	if (id != NULL)
		*id = lid;
	return err;
}
