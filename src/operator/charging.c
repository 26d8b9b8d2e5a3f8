/*
 * Charging: how usage reaches the operator and what stops a surprise bill.
 * SGP.22 leaves charging to the operator's network (the profile only
 * carries the subscription); this is the operator's side of it.
 *
 * The network's charging system reports usage records and asks for
 * authorisation before chargeable usage, on a listener of its own with
 * mutual TLS pinned to its client certificate (the model is callback.c):
 *
 *  - POST /charging/authorize {line, kind, roaming, units}: the units
 *    granted, rated against the line's plan (op_rates: price per unit by
 *    kind, home or roaming; 0 is included in the plan fee), or refused with
 *    a reason: services_stopped (the customer's stop switch, or the line
 *    stopped for a termination), line_closed, cap_reached,
 *    roaming_cap_reached;
 *  - POST /charging/usage {record_id, line, kind, roaming, units, at}:
 *    rated and recorded once per record_id. The same record sent again
 *    gets the same answer; the same record_id with another body is refused
 *    (409). A record the rating refuses (services stopped, line closed,
 *    over a cap) is kept with its reason and shown to the customer, never
 *    charged.
 *
 * The customer's caps (monthly, and roaming apart; roaming usage counts
 * towards both) are per line and per calendar month (UTC). At 80% and at
 * 100% of a cap a notice goes out, once per line, month, cap and
 * threshold (op_usage_alerts); the 100% notice also when an authorisation
 * is refused because what is left is less than one unit. At a case's close
 * the final invoice follows the line's contract (op_final_invoice).
 *
 * Every request runs under the handle's lock in one store transaction
 * with its audit entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "op_int.h"

#define CH_BODY_MAX  (64 * 1024)
#define CH_UNITS_MAX 1000000000LL
#define CH_ID_MAX    128

struct op_charging {
	op *o;
	uint8_t pin[32];
	char actor[40]; /* "charging:" + 16 hex digits of the pinned certificate's SHA-256 */
};

esim_err op_charging_new(op *o, const struct op_charging_config *cfg, op_charging **out)
{
	*out = NULL;
	if (!o || !cfg || !cfg->client_cert_file)
		return ESIM_E_OP_CONFIG;
	crypto_cert *c = NULL;
	esim_err err = crypto_cert_load_file(cfg->client_cert_file, &c);
	if (err != ESIM_OK)
		return err;
	op_charging *ch = calloc(1, sizeof *ch);
	if (!ch) {
		crypto_cert_free(c);
		return ESIM_E_NOMEM;
	}
	size_t len;
	const uint8_t *der = crypto_cert_der(c, &len);
	crypto_hash_sha256(ch->pin, der, len);
	crypto_cert_free(c);
	char hex[65];
	sodium_bin2hex(hex, sizeof hex, ch->pin, sizeof ch->pin);
	snprintf(ch->actor, sizeof ch->actor, "charging:%.16s", hex);
	ch->o = o;
	*out = ch;
	return ESIM_OK;
}

void op_charging_free(op_charging *ch)
{
	free(ch);
}

const uint8_t *op_charging_pin(const op_charging *ch)
{
	return ch->pin;
}

const char *op_charging_actor(const op_charging *ch)
{
	return ch->actor;
}

/* ---- the line, its plan and its month --------------------------------------- */

struct line {
	int64_t id, cust, monthly_cents;
	char msisdn[32], plan[64], state[24], policy[16];
	int64_t cap, roaming_cap; /* -1: none */
	bool stopped;
};

#define LINE_SQL                                                                                   \
	"SELECT id, customer_id, msisdn, plan, state, cap_cents, roaming_cap_cents,"               \
	" services_stopped, monthly_cents, final_policy FROM op_lines "

static esim_err line_read(op *o, const char *sql, const char *msisdn, int64_t id, struct line *l,
			  bool *found)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s, sql, &st);
	if (err != ESIM_OK)
		return err;
	if (msisdn)
		store_bind_text(st, 1, msisdn);
	else
		store_bind_int64(st, 1, id);
	err = store_step(st, found);
	if (err == ESIM_OK && *found) {
		l->id = store_col_int64(st, 0);
		l->cust = store_col_int64(st, 1);
		snprintf(l->msisdn, sizeof l->msisdn, "%s", store_col_text(st, 2));
		snprintf(l->plan, sizeof l->plan, "%s", store_col_text(st, 3));
		snprintf(l->state, sizeof l->state, "%s", store_col_text(st, 4));
		l->cap = store_col_is_null(st, 5) ? -1 : store_col_int64(st, 5);
		l->roaming_cap = store_col_is_null(st, 6) ? -1 : store_col_int64(st, 6);
		l->stopped = store_col_int64(st, 7) != 0;
		l->monthly_cents = store_col_int64(st, 8);
		snprintf(l->policy, sizeof l->policy, "%s", store_col_text(st, 9));
	}
	store_finalize(st);
	return err;
}

static esim_err line_by_msisdn(op *o, const char *msisdn, struct line *l, bool *found)
{
	/* a number given to a new line after an old one ended: the live line */
	return line_read(o,
			 LINE_SQL "WHERE msisdn = ?1 ORDER BY state = 'terminated', id DESC LIMIT 1"
				  " {{FOR_UPDATE}}",
			 msisdn, 0, l, found);
}

static esim_err line_by_id(op *o, int64_t id, struct line *l, bool *found)
{
	return line_read(o, LINE_SQL "WHERE id = ?1 {{FOR_UPDATE}}", NULL, id, l, found);
}

/* The price per unit: the plan's own row, else the '*' row. */
static esim_err rate_of(op *o, const char *plan, const char *kind, bool roaming, int64_t *cents,
			char *unit, size_t un)
{
	store_stmt *st;
	esim_err err = store_prepare(o->s,
				     "SELECT cents_per_unit, unit FROM op_rates WHERE plan IN (?1,"
				     " '*') AND kind = ?2 AND roaming = ?3 ORDER BY plan = '*'",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, plan);
	store_bind_text(st, 2, kind);
	store_bind_int64(st, 3, roaming ? 1 : 0);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && !row)
		err = ESIM_E_NOT_FOUND;
	if (err == ESIM_OK) {
		*cents = store_col_int64(st, 0);
		snprintf(unit, un, "%s", store_col_text(st, 1));
	}
	store_finalize(st);
	return err;
}

/* The calendar month (UTC) of t: its text and its bounds. */
static void month_of(time_t t, char m[16], int64_t *from, int64_t *to)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(m, 16, "%04d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100);
	struct tm a = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = 1};
	struct tm b = {.tm_year = tm.tm_year + (tm.tm_mon == 11),
		       .tm_mon = (tm.tm_mon + 1) % 12,
		       .tm_mday = 1};
	*from = (int64_t)timegm(&a);
	*to = (int64_t)timegm(&b);
}

/* Cents rated on the line in [from, to), all or roaming only. */
static int64_t spent(op *o, int64_t line, int64_t from, int64_t to, bool roaming_only)
{
	store_stmt *st;
	if (store_prepare(o->s,
			  "SELECT COALESCE(SUM(cents), 0) FROM op_usage WHERE line_id = ?1 AND"
			  " status = 'rated' AND at >= ?2 AND at < ?3 AND (?4 = 0 OR roaming = 1)",
			  &st) != ESIM_OK)
		return 0;
	store_bind_int64(st, 1, line);
	store_bind_int64(st, 2, from);
	store_bind_int64(st, 3, to);
	store_bind_int64(st, 4, roaming_only ? 1 : 0);
	bool row;
	int64_t v = 0;
	if (store_step(st, &row) == ESIM_OK && row)
		v = store_col_int64(st, 0);
	store_finalize(st);
	return v;
}

static void euros(int64_t cents, char *out, size_t n)
{
	snprintf(out, n, "EUR %lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
}

/* The notice at pct% of a cap, once per line, month, cap and threshold. */
static esim_err cap_alert(op *o, const struct line *l, const char *cap_name, int64_t cap, int pct,
			  const char *month)
{
	store_stmt *st;
	esim_err err =
	    store_prepare(o->s,
			  "SELECT 1 FROM op_usage_alerts WHERE line_id = ?1 AND month = ?2"
			  " AND cap = ?3 AND pct = ?4",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, l->id);
	store_bind_text(st, 2, month);
	store_bind_text(st, 3, cap_name);
	store_bind_int64(st, 4, pct);
	bool row;
	err = store_step(st, &row);
	store_finalize(st);
	if (err != ESIM_OK || row)
		return err;
	char e[32], text[800], subject[200], purpose[120], ref[OP_REF_LEN], lang[4], pcts[8];
	bool roaming = !strcmp(cap_name, "roaming");
	if ((err = op_customer_lang(o, l->cust, lang)) != ESIM_OK)
		return err;
	euros(cap, e, sizeof e);
	snprintf(pcts, sizeof pcts, "%d", pct);
	op_fill(subject, sizeof subject,
		roaming ? op_tr(o, lang, "notice.cap.roaming.subject",
				"Line {msisdn}: {pct}% of your roaming spending cap")
			: op_tr(o, lang, "notice.cap.monthly.subject",
				"Line {msisdn}: {pct}% of your monthly spending cap"),
		"msisdn", l->msisdn, "pct", pcts, NULL);
	const char *tpl;
	if (pct >= 100)
		tpl =
		    roaming
			? op_tr(o, lang, "notice.cap.roaming.reached",
				"Line {msisdn} has reached its roaming spending cap of {amount} "
				"for {month}. Chargeable roaming usage is now refused until the "
				"month ends or you raise the cap in the portal; usage included in "
				"your plan goes on.")
			: op_tr(o, lang, "notice.cap.monthly.reached",
				"Line {msisdn} has reached its monthly spending cap of {amount} "
				"for {month}. Chargeable usage is now refused until the month ends "
				"or you raise the cap in the portal; usage included in your plan "
				"goes on.");
	else
		tpl = roaming
			  ? op_tr(o, lang, "notice.cap.roaming.warn",
				  "Line {msisdn} has used {pct}% of its roaming spending cap of "
				  "{amount} for {month}. At the cap, chargeable roaming usage is "
				  "refused. You can change the cap or stop all chargeable services "
				  "in the portal.")
			  : op_tr(o, lang, "notice.cap.monthly.warn",
				  "Line {msisdn} has used {pct}% of its monthly spending cap of "
				  "{amount} for {month}. At the cap, chargeable usage is refused. "
				  "You can change the cap or stop all chargeable services in the "
				  "portal.");
	op_fill(text, sizeof text, tpl, "msisdn", l->msisdn, "pct", pcts, "amount", e, "month",
		month, NULL);
	snprintf(purpose, sizeof purpose, "line %lld: %s cap %d%% (%s)", (long long)l->id, cap_name,
		 pct, month);
	if ((err = op_notify(o, l->cust, purpose, subject, text, ref)) != ESIM_OK)
		return err;
	if ((err = store_prepare(o->s,
				 "INSERT INTO op_usage_alerts (line_id, month, cap, pct, at,"
				 " reference) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, l->id);
	store_bind_text(st, 2, month);
	store_bind_text(st, 3, cap_name);
	store_bind_int64(st, 4, pct);
	store_bind_int64(st, 5, (int64_t)op_now(o));
	store_bind_text(st, 6, ref);
	err = store_run(st);
	store_finalize(st);
	char d[200];
	snprintf(d, sizeof d, "{\"line\":%lld,\"cap\":\"%s\",\"pct\":%d,\"month\":\"%s\"}",
		 (long long)l->id, cap_name, pct, month);
	if (err == ESIM_OK)
		err = op_audit(o, "system", "usage.alert", d);
	return err;
}

/* After rated usage: the notices its spend has reached. */
static esim_err alerts_after(op *o, const struct line *l, bool roaming, const char *month,
			     int64_t from, int64_t to)
{
	esim_err err = ESIM_OK;
	for (int k = 0; err == ESIM_OK && k < 2; k++) {
		int64_t cap = k ? l->roaming_cap : l->cap;
		if ((k && !roaming) || cap <= 0)
			continue;
		int64_t s = spent(o, l->id, from, to, k == 1);
		for (int pct = 80; err == ESIM_OK && pct <= 100; pct += 20)
			if (s * 100 >= cap * pct)
				err = cap_alert(o, l, k ? "roaming" : "monthly", cap, pct, month);
	}
	return err;
}

/* Why the line takes no chargeable usage now, or NULL. */
static const char *line_refusal(const struct line *l)
{
	if (!strcmp(l->state, "terminated"))
		return "line_closed";
	if (l->stopped || !strcmp(l->state, "stopped"))
		return "services_stopped";
	return NULL;
}

/* How many of units fit under the caps at cents each (units when the
 * usage is not chargeable); *why the cap that stops it when none fits. */
static int64_t fits(op *o, const struct line *l, bool roaming, int64_t cents, int64_t units,
		    int64_t from, int64_t to, const char **why)
{
	*why = NULL;
	if (cents <= 0)
		return units;
	int64_t n = units;
	for (int k = 0; k < 2; k++) {
		int64_t cap = k ? l->roaming_cap : l->cap;
		if ((k && !roaming) || cap < 0)
			continue;
		int64_t left = cap - spent(o, l->id, from, to, k == 1);
		int64_t m = left > 0 ? left / cents : 0;
		if (m < n) {
			n = m;
			if (n == 0)
				*why = k ? "roaming_cap_reached" : "cap_reached";
		}
	}
	return n;
}

/* ---- requests ----------------------------------------------------------------- */

struct chreq {
	op_charging *ch;
	op *o;
	json_t *j;
	int status;
	json_t *answer;
};

static esim_err bad(struct chreq *r, int status, const char *code, const char *msg)
{
	r->status = status;
	r->answer = json_pack("{s:s,s:s}", "error", code, "message", msg);
	return r->answer ? ESIM_OK : ESIM_E_NOMEM;
}

/* The fields both requests share: line (MSISDN), kind, roaming, units. */
static esim_err common_fields(struct chreq *r, const char **msisdn, const char **kind,
			      bool *roaming, int64_t *units, bool *ok)
{
	*ok = false;
	json_t *rv = json_object_get(r->j, "roaming"), *uv = json_object_get(r->j, "units");
	*msisdn = json_string_value(json_object_get(r->j, "line"));
	*kind = json_string_value(json_object_get(r->j, "kind"));
	if (!*msisdn || !**msisdn || strlen(*msisdn) > 31)
		return bad(r, 400, "bad_request", "line (the MSISDN) is required");
	if (!*kind || (strcmp(*kind, "data") && strcmp(*kind, "voice") && strcmp(*kind, "sms")))
		return bad(r, 400, "bad_request", "kind must be data, voice or sms");
	if (!json_is_boolean(rv))
		return bad(r, 400, "bad_request", "roaming must be true or false");
	if (!json_is_integer(uv) || json_integer_value(uv) < 1 ||
	    json_integer_value(uv) > CH_UNITS_MAX)
		return bad(r, 400, "bad_request",
			   "units must be a whole number from 1 to 1000000000 (MB, minutes or "
			   "messages)");
	*roaming = json_is_true(rv);
	*units = (int64_t)json_integer_value(uv);
	*ok = true;
	return ESIM_OK;
}

static esim_err authorize(struct chreq *r)
{
	const char *msisdn, *kind;
	bool roaming, ok;
	int64_t units;
	esim_err err = common_fields(r, &msisdn, &kind, &roaming, &units, &ok);
	if (err != ESIM_OK || !ok)
		return err;
	struct line l;
	bool found;
	if ((err = line_by_msisdn(r->o, msisdn, &l, &found)) != ESIM_OK)
		return err;
	if (!found)
		return bad(r, 404, "unknown_line", "no line of ours has this MSISDN");
	int64_t cents;
	char unit[16];
	if ((err = rate_of(r->o, l.plan, kind, roaming, &cents, unit, sizeof unit)) != ESIM_OK)
		return err;
	const char *why = line_refusal(&l);
	int64_t from, to, n = 0;
	char month[16];
	month_of(op_now(r->o), month, &from, &to);
	if (!why)
		n = fits(r->o, &l, roaming, cents, units, from, to, &why);
	if (why && cents > 0 && !strcmp(why, "cap_reached") && l.cap > 0)
		err = cap_alert(r->o, &l, "monthly", l.cap, 100, month);
	else if (why && cents > 0 && !strcmp(why, "roaming_cap_reached") && l.roaming_cap > 0)
		err = cap_alert(r->o, &l, "roaming", l.roaming_cap, 100, month);
	if (err != ESIM_OK)
		return err;
	r->status = 200;
	if (why)
		r->answer = json_pack("{s:b,s:s,s:I}", "granted", 0, "reason", why, "units", 0);
	else
		r->answer =
		    json_pack("{s:b,s:I,s:s,s:I,s:b}", "granted", 1, "units", (json_int_t)n, "unit",
			      unit, "cents_per_unit", (json_int_t)cents, "chargeable", cents > 0);
	return r->answer ? ESIM_OK : ESIM_E_NOMEM;
}

/* "2026-12-08T10:00:00Z" (UTC only) */
static bool parse_at(const char *s, int64_t *t)
{
	int y, mo, d, h, mi, se, n = 0;
	if (!s || strlen(s) != 20 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 ||
	    n != 20 || y < 2000 || y > 2999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || se > 60 || h < 0 || mi < 0 || se < 0)
		return false;
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = se};
	*t = (int64_t)timegm(&tm);
	struct tm back;
	time_t tt = (time_t)*t;
	gmtime_r(&tt, &back);
	return back.tm_mday == d; /* 2026-02-30 is no date */
}

static json_t *usage_answer(const char *record_id, bool accepted, int64_t cents, const char *reason)
{
	return json_pack("{s:s,s:b,s:I,s:s?}", "record_id", record_id, "accepted", accepted,
			 "cents", (json_int_t)cents, "reason", reason);
}

static esim_err usage(struct chreq *r, const char *actor)
{
	const char *rid = json_string_value(json_object_get(r->j, "record_id"));
	const char *at_text = json_string_value(json_object_get(r->j, "at"));
	if (!rid || !*rid || strlen(rid) > CH_ID_MAX)
		return bad(r, 400, "bad_request", "record_id is required (at most 128 characters)");
	const char *msisdn, *kind;
	bool roaming, ok;
	int64_t units, at;
	esim_err err = common_fields(r, &msisdn, &kind, &roaming, &units, &ok);
	if (err != ESIM_OK || !ok)
		return err;
	if (!parse_at(at_text, &at))
		return bad(r, 400, "bad_request",
			   "at must be a UTC time like 2026-12-08T10:00:00Z");
	/* the record's identity: its fields, not the bytes of the JSON */
	char canon[256], sha[65];
	uint8_t md[32];
	snprintf(canon, sizeof canon, "%s|%s|%d|%lld|%lld", msisdn, kind, roaming ? 1 : 0,
		 (long long)units, (long long)at);
	crypto_hash_sha256(md, (const uint8_t *)canon, strlen(canon));
	sodium_bin2hex(sha, sizeof sha, md, sizeof md);
	store_stmt *st;
	if ((err = store_prepare(r->o->s,
				 "SELECT body_sha256, status, cents, reason FROM op_usage WHERE"
				 " record_id = ?1",
				 &st)) != ESIM_OK)
		return err;
	store_bind_text(st, 1, rid);
	bool row;
	err = store_step(st, &row);
	if (err == ESIM_OK && row) {
		bool same = store_col_text(st, 0) && !strcmp(store_col_text(st, 0), sha);
		if (same) {
			r->status = 200;
			r->answer = usage_answer(rid, !strcmp(store_col_text(st, 1), "rated"),
						 store_col_int64(st, 2), store_col_text(st, 3));
		}
		store_finalize(st);
		if (!same)
			return bad(r, 409, "record_reused",
				   "this record_id was reported before with a different body");
		return r->answer ? ESIM_OK : ESIM_E_NOMEM;
	}
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	struct line l;
	bool found;
	if ((err = line_by_msisdn(r->o, msisdn, &l, &found)) != ESIM_OK)
		return err;
	if (!found)
		return bad(r, 404, "unknown_line", "no line of ours has this MSISDN");
	int64_t rate;
	char unit[16];
	if ((err = rate_of(r->o, l.plan, kind, roaming, &rate, unit, sizeof unit)) != ESIM_OK)
		return err;
	int64_t from, to;
	char month[16];
	month_of((time_t)at, month, &from, &to);
	const char *why = line_refusal(&l);
	int64_t cents = units * rate;
	if (!why && rate > 0) {
		if (l.cap >= 0 && spent(r->o, l.id, from, to, false) + cents > l.cap)
			why = "cap_reached";
		else if (roaming && l.roaming_cap >= 0 &&
			 spent(r->o, l.id, from, to, true) + cents > l.roaming_cap)
			why = "roaming_cap_reached";
	}
	/* usage past a cap is refused; the customer hears of the cap once */
	if (why && !strcmp(why, "cap_reached") && l.cap > 0)
		err = cap_alert(r->o, &l, "monthly", l.cap, 100, month);
	else if (why && !strcmp(why, "roaming_cap_reached") && l.roaming_cap > 0)
		err = cap_alert(r->o, &l, "roaming", l.roaming_cap, 100, month);
	if (err != ESIM_OK)
		return err;
	if ((err = store_prepare(r->o->s,
				 "INSERT INTO op_usage (line_id, kind, amount, unit, at, record_id,"
				 " roaming, cents, status, reason, body_sha256) VALUES (?1, ?2, ?3,"
				 " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, l.id);
	store_bind_text(st, 2, kind);
	store_bind_int64(st, 3, units);
	store_bind_text(st, 4, unit);
	store_bind_int64(st, 5, at);
	store_bind_text(st, 6, rid);
	store_bind_int64(st, 7, roaming ? 1 : 0);
	store_bind_int64(st, 8, why ? 0 : cents);
	store_bind_text(st, 9, why ? "refused" : "rated");
	store_bind_text(st, 10, why);
	store_bind_text(st, 11, sha);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK && !why && cents > 0)
		err = alerts_after(r->o, &l, roaming, month, from, to);
	if (err == ESIM_OK) {
		json_t *d = json_pack("{s:s,s:I,s:s,s:b,s:I,s:I,s:s?}", "record_id", rid, "line",
				      (json_int_t)l.id, "kind", kind, "roaming", roaming, "units",
				      (json_int_t)units, "cents", (json_int_t)(why ? 0 : cents),
				      "refused", why);
		char *t = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		err = t ? op_audit(r->o, actor, why ? "usage.refused" : "usage.rated", t)
			: ESIM_E_NOMEM;
		free(t);
		json_decref(d);
	}
	if (err != ESIM_OK)
		return err;
	r->status = 200;
	r->answer = usage_answer(rid, !why, why ? 0 : cents, why);
	return r->answer ? ESIM_OK : ESIM_E_NOMEM;
}

static esim_err answer(net_response *resp, int status, json_t *j)
{
	esim_err err = net_response_json(resp, status, j);
	json_decref(j);
	if (err == ESIM_OK)
		err = net_response_add_header(resp, "Cache-Control", "no-store");
	return err;
}

esim_err op_charging_http(const net_request *req, net_response *resp, void *arg)
{
	op_charging *ch = arg;
	op *o = ch->o;
	/* the listener pins the certificate already; a route added to a
	 * listener without the pin still refuses everyone else */
	if (!req->has_client_cert || !esim_ct_equal(req->client_cert_sha256, ch->pin, 32))
		return answer(resp, 403,
			      json_pack("{s:s,s:s}", "error", "forbidden", "message",
					"the charging system's pinned client certificate is "
					"required"));
	bool auth = !strcmp(req->path, "/charging/authorize");
	if (strcmp(req->method, "POST") != 0 || (!auth && strcmp(req->path, "/charging/usage")))
		return answer(resp, 404,
			      json_pack("{s:s,s:s}", "error", "not_found", "message",
					"POST /charging/authorize or /charging/usage"));
	struct chreq r = {.ch = ch, .o = o};
	if (net_json_parse(req->body, req->body_len, CH_BODY_MAX, 4, &r.j, NULL) != ESIM_OK ||
	    !json_is_object(r.j)) {
		json_decref(r.j);
		return answer(resp, 400,
			      json_pack("{s:s,s:s}", "error", "bad_request", "message",
					"body must be a JSON object"));
	}
	pthread_mutex_lock(&o->lock);
	esim_err err;
	for (int attempt = 0;; attempt++) {
		r.status = 0;
		r.answer = NULL;
		err = store_begin(o->s);
		if (err == ESIM_OK) {
			err = auth ? authorize(&r) : usage(&r, ch->actor);
			if (err == ESIM_OK)
				err = store_commit(o->s);
			else
				store_rollback(o->s);
		}
		if (err == ESIM_OK || err != ESIM_E_STORE_BUSY || attempt >= 20)
			break;
		json_decref(r.answer);
	}
	pthread_mutex_unlock(&o->lock);
	json_decref(r.j);
	if (err != ESIM_OK) {
		json_decref(r.answer);
		return answer(resp, 500,
			      json_pack("{s:s,s:s}", "error", "internal", "message",
					"the operator could not complete the request; send it "
					"again"));
	}
	return answer(resp, r.status, r.answer);
}

esim_err op_charging_add_routes(op_charging *ch, net_server *srv, int listener)
{
	esim_err err = net_server_add_route(srv, listener, "POST", "/charging/authorize",
					    op_charging_http, ch);
	if (err == ESIM_OK)
		err = net_server_add_route(srv, listener, "POST", "/charging/usage",
					   op_charging_http, ch);
	return err;
}

/* ---- the customer's side (portal) -------------------------------------------- */

static esim_err refuse(struct op_answer *a, int status, const char *code, const char *msg)
{
	a->status = status;
	a->json = json_pack("{s:s,s:s}", "error", code, "message", msg);
	return a->json ? ESIM_OK : ESIM_E_NOMEM;
}

/* The customer's own line from body's line_id, or a refusal. */
static esim_err own_line(op *o, const struct op_caller *c, const json_t *body, struct line *l,
			 struct op_answer *a, bool *ok)
{
	*ok = false;
	json_t *v = json_object_get(body, "line_id");
	bool found = false;
	esim_err err = ESIM_OK;
	if (json_is_integer(v))
		err = line_by_id(o, (int64_t)json_integer_value(v), l, &found);
	if (err != ESIM_OK)
		return err;
	if (!found || l->cust != c->who)
		return refuse(a, 404, "not_found", "no such line");
	*ok = true;
	return ESIM_OK;
}

esim_err op_charging_line_info(op *o, int64_t line, json_t *into)
{
	struct line l;
	bool found;
	esim_err err = line_read(o, LINE_SQL "WHERE id = ?1", NULL, line, &l, &found);
	if (err != ESIM_OK || !found)
		return err;
	int64_t from, to;
	char month[16];
	month_of(op_now(o), month, &from, &to);
	json_object_set_new(into, "cap_cents", l.cap < 0 ? json_null() : json_integer(l.cap));
	json_object_set_new(into, "roaming_cap_cents",
			    l.roaming_cap < 0 ? json_null() : json_integer(l.roaming_cap));
	json_object_set_new(into, "services_stopped", json_boolean(l.stopped));
	json_object_set_new(into, "month", json_string(month));
	json_object_set_new(into, "month_spent_cents",
			    json_integer(spent(o, l.id, from, to, false)));
	json_object_set_new(into, "month_roaming_spent_cents",
			    json_integer(spent(o, l.id, from, to, true)));
	json_object_set_new(into, "final_policy", json_string(l.policy));
	return ESIM_OK;
}

static esim_err line_answer(op *o, const struct line *l, struct op_answer *a)
{
	json_t *j = json_pack("{s:I,s:s}", "id", (json_int_t)l->id, "msisdn", l->msisdn);
	esim_err err = j ? op_charging_line_info(o, l->id, j) : ESIM_E_NOMEM;
	if (err != ESIM_OK) {
		json_decref(j);
		return err;
	}
	a->status = 200;
	a->json = json_pack("{s:o}", "line", j);
	return a->json ? ESIM_OK : ESIM_E_NOMEM;
}

/* A cap in the body: absent (unchanged), null (none) or 0..10^8 cents. */
static bool cap_value(const json_t *body, const char *k, bool *set, int64_t *v)
{
	json_t *x = json_object_get(body, k);
	*set = x != NULL;
	*v = -1;
	if (!x || json_is_null(x))
		return true;
	if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 100000000)
		return false;
	*v = (int64_t)json_integer_value(x);
	return true;
}

esim_err op_charging_set_caps(op *o, const struct op_caller *c, const json_t *body,
			      struct op_answer *a)
{
	struct line l;
	bool ok, sm, sr;
	esim_err err = own_line(o, c, body, &l, a, &ok);
	if (err != ESIM_OK || !ok)
		return err;
	int64_t m, rm;
	if (!cap_value(body, "cap_cents", &sm, &m) ||
	    !cap_value(body, "roaming_cap_cents", &sr, &rm))
		return refuse(a, 400, "bad_request",
			      "cap_cents and roaming_cap_cents must be null (no cap) or a whole "
			      "number of cents from 0 to 100000000");
	if (!sm && !sr)
		return refuse(a, 400, "bad_request", "give cap_cents, roaming_cap_cents or both");
	store_stmt *st;
	for (int k = 0; k < 2; k++) {
		if (!(k ? sr : sm))
			continue;
		err = store_prepare(o->s,
				    k ? "UPDATE op_lines SET roaming_cap_cents = ?1 WHERE id = ?2"
				      : "UPDATE op_lines SET cap_cents = ?1 WHERE id = ?2",
				    &st);
		if (err != ESIM_OK)
			return err;
		int64_t v = k ? rm : m;
		if (v < 0)
			store_bind_null(st, 1);
		else
			store_bind_int64(st, 1, v);
		store_bind_int64(st, 2, l.id);
		err = store_run(st);
		store_finalize(st);
		if (err != ESIM_OK)
			return err;
	}
	json_t *d = json_pack("{s:I,s:o,s:o}", "line", (json_int_t)l.id, "cap_cents",
			      !sm     ? json_string("unchanged")
			      : m < 0 ? json_null()
				      : json_integer(m),
			      "roaming_cap_cents",
			      !sr      ? json_string("unchanged")
			      : rm < 0 ? json_null()
				       : json_integer(rm));
	char *t = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	err = t ? op_audit(o, c->actor, "line.caps", t) : ESIM_E_NOMEM;
	free(t);
	json_decref(d);
	return err == ESIM_OK ? line_answer(o, &l, a) : err;
}

esim_err op_charging_set_stop(op *o, const struct op_caller *c, const json_t *body,
			      struct op_answer *a)
{
	struct line l;
	bool ok;
	esim_err err = own_line(o, c, body, &l, a, &ok);
	if (err != ESIM_OK || !ok)
		return err;
	json_t *v = json_object_get(body, "stopped");
	if (!json_is_boolean(v))
		return refuse(a, 400, "bad_request", "stopped must be true or false");
	if (!strcmp(l.state, "terminated"))
		return refuse(a, 409, "conflict", "line_terminated");
	store_stmt *st;
	if ((err = store_prepare(o->s, "UPDATE op_lines SET services_stopped = ?1 WHERE id = ?2",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, json_is_true(v) ? 1 : 0);
	store_bind_int64(st, 2, l.id);
	err = store_run(st);
	store_finalize(st);
	char d[120];
	snprintf(d, sizeof d, "{\"line\":%lld,\"stopped\":%s}", (long long)l.id,
		 json_is_true(v) ? "true" : "false");
	if (err == ESIM_OK)
		err = op_audit(o, c->actor, json_is_true(v) ? "line.stop" : "line.resume", d);
	if (err == ESIM_OK && json_is_true(v) != l.stopped) {
		char text[600], subject[200], ref[OP_REF_LEN], lang[4];
		bool stop = json_is_true(v);
		err = op_customer_lang(o, l.cust, lang);
		op_fill(
		    subject, sizeof subject,
		    stop ? op_tr(o, lang, "notice.stop.subject", "Chargeable services stopped")
			 : op_tr(o, lang, "notice.resume.subject", "Chargeable services on again"),
		    NULL);
		op_fill(text, sizeof text,
			stop ? op_tr(o, lang, "notice.stop.text",
				     "All chargeable services on line {msisdn} are stopped at your "
				     "request. Usage included in your plan goes on; you can turn "
				     "chargeable services back on in the portal.")
			     : op_tr(o, lang, "notice.resume.text",
				     "Chargeable services on line {msisdn} are on again at your "
				     "request."),
			"msisdn", l.msisdn, NULL);
		if (err == ESIM_OK)
			err = op_notify(o, l.cust,
					stop ? "chargeable services stopped"
					     : "chargeable services resumed",
					subject, text, ref);
	}
	if (err != ESIM_OK)
		return err;
	l.stopped = json_is_true(v);
	return line_answer(o, &l, a);
}

/* ---- the final invoice -------------------------------------------------------- */

esim_err op_final_invoice(op *o, int64_t case_id, const char *actor)
{
	int64_t line_id = op_query_int(o, "SELECT line_id FROM op_cases WHERE id = ?1", case_id, 0);
	struct line l;
	bool found;
	esim_err err = line_read(o, LINE_SQL "WHERE id = ?1", NULL, line_id, &l, &found);
	if (err != ESIM_OK || !found)
		return err != ESIM_OK ? err : ESIM_E_NOT_FOUND;
	time_t now = op_now(o);
	int64_t from, to;
	char month[16];
	month_of(now, month, &from, &to);
	int64_t days = (to - from) / 86400, used = ((int64_t)now - from) / 86400 + 1;
	/* prorated: the days of the closing month up to and including the
	 * day of the close, rounded to the nearest cent */
	int64_t fee = !strcmp(l.policy, "full_month")
			  ? l.monthly_cents
			  : (l.monthly_cents * used * 2 + days) / (days * 2);
	int64_t use = spent(o, l.id, from, (int64_t)now + 1, false);
	int64_t total = fee + use;
	char period[40], due[32];
	snprintf(period, sizeof period, "%s final", month);
	op_iso_time(now + 14 * 86400, due);
	due[10] = '\0';
	store_stmt *st;
	int64_t iid = 0;
	if ((err = store_prepare(o->s,
				 "INSERT INTO op_invoices (customer_id, number, period,"
				 " amount_cents, due, status) VALUES (?1, '', ?2, ?3, ?4, ?5)"
				 " RETURNING id",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, l.cust);
	store_bind_text(st, 2, period);
	store_bind_int64(st, 3, total);
	store_bind_text(st, 4, due);
	store_bind_text(st, 5, total > 0 ? "open" : "paid");
	err = store_run_id(st, &iid);
	store_finalize(st);
	char num[32];
	snprintf(num, sizeof num, "INV-2026-%04lld", (long long)iid);
	if (err == ESIM_OK &&
	    (err = store_prepare(o->s, "UPDATE op_invoices SET number = ?1 WHERE id = ?2", &st)) ==
		ESIM_OK) {
		store_bind_text(st, 1, num);
		store_bind_int64(st, 2, iid);
		err = store_run(st);
		store_finalize(st);
	}
	char d[300];
	snprintf(d, sizeof d,
		 "{\"case\":%lld,\"line\":%lld,\"invoice\":%lld,\"policy\":\"%s\","
		 "\"fee_cents\":%lld,\"usage_cents\":%lld,\"days\":%lld,\"of\":%lld}",
		 (long long)case_id, (long long)l.id, (long long)iid, l.policy, (long long)fee,
		 (long long)use, (long long)used, (long long)days);
	if (err == ESIM_OK)
		err = op_audit(o, actor, "invoice.final", d);
	if (err == ESIM_OK) {
		char fe[32], ue[32], te[32], text[1000], subject[200], purpose[120], lang[4];
		euros(fee, fe, sizeof fe);
		euros(use, ue, sizeof ue);
		euros(total, te, sizeof te);
		if ((err = op_customer_lang(o, l.cust, lang)) != ESIM_OK)
			return err;
		op_fill(subject, sizeof subject,
			op_tr(o, lang, "notice.final.subject",
			      "Final invoice {number} for line {msisdn}"),
			"number", num, "msisdn", l.msisdn, NULL);
		op_fill(
		    text, sizeof text,
		    op_tr(o, lang, "notice.final.text",
			  "Line {msisdn} is closed. Final invoice {number} ({period}):\n"
			  " - plan fee, {basis}: {fee}\n"
			  " - rated usage in {month} up to the close: {usage}\n"
			  "Total: {total}, due {due}."),
		    "msisdn", l.msisdn, "number", num, "period", period, "basis",
		    !strcmp(l.policy, "full_month")
			? op_tr(o, lang, "notice.final.basis.full_month",
				"the whole month (your contract)")
			: op_tr(o, lang, "notice.final.basis.prorated", "the days used this month"),
		    "fee", fe, "month", month, "usage", ue, "total", te, "due", due, NULL);
		snprintf(purpose, sizeof purpose, "termination case %lld: final invoice",
			 (long long)case_id);
		err = op_notify_letter(o, l.cust, purpose, subject, text, NULL);
	}
	return err;
}
