/*
 * No surprise charges (charging.c): the charging system's usage records
 * and authorisation requests, rated against the line's plan (home voice
 * 2 cents a minute, home SMS 5, roaming voice 30, roaming SMS 15, home
 * data included), against the customer's monthly and roaming caps, with
 * the 80% and 100% notices once per month, the stop switch (also while a
 * termination is under review), usage after the service stopped refused
 * and shown, a resent record counted once and a reused record id with
 * another body refused, and the final invoice at close by the contract's
 * policy. Each rule on SQLite and again on PostgreSQL.
 */
#include <time.h>

#include "op_portal_fixture.h"

static char at_now[32];

static const char *now_iso(struct fx *f)
{
	struct tm tm;
	gmtime_r(&f->clock, &tm);
	strftime(at_now, sizeof at_now, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return at_now;
}

/* POST /charging/usage; the status, *out the answer. */
static int usage(struct fx *f, const char *rid, const char *msisdn, const char *kind, bool roaming,
		 long units, json_t **out)
{
	char b[512];
	snprintf(b, sizeof b,
		 "{\"record_id\":\"%s\",\"line\":\"%s\",\"kind\":\"%s\",\"roaming\":%s,"
		 "\"units\":%ld,\"at\":\"%s\"}",
		 rid, msisdn, kind, roaming ? "true" : "false", units, now_iso(f));
	return charge(f, "/charging/usage", b, out);
}

/* POST /charging/authorize: the units granted, -1 when refused (reason in
 * why). */
static long authorize(struct fx *f, const char *msisdn, const char *kind, bool roaming, long units,
		      char *why, size_t wn)
{
	char b[256];
	snprintf(b, sizeof b, "{\"line\":\"%s\",\"kind\":\"%s\",\"roaming\":%s,\"units\":%ld}",
		 msisdn, kind, roaming ? "true" : "false", units);
	json_t *j;
	assert_int_equal(200, charge(f, "/charging/authorize", b, &j));
	long n = json_is_true(json_object_get(j, "granted")) ? (long)jint(j, "units") : -1;
	if (why)
		snprintf(why, wn, "%s", jstr(j, "reason") ? jstr(j, "reason") : "");
	json_decref(j);
	return n;
}

static bool accepted(struct fx *f, const char *rid, const char *msisdn, const char *kind,
		     bool roaming, long units)
{
	json_t *j;
	assert_int_equal(200, usage(f, rid, msisdn, kind, roaming, units, &j));
	bool a = json_is_true(json_object_get(j, "accepted"));
	json_decref(j);
	return a;
}

static int64_t alerts(struct fx *f, const char *cap, int pct)
{
	char q[200];
	snprintf(
	    q, sizeof q,
	    "SELECT COUNT(*) FROM op_usage_alerts WHERE line_id = 2 AND cap = '%s' AND pct = %d",
	    cap, pct);
	return qint(f, q);
}

static int64_t cap_notices(struct fx *f)
{
	return qint(f, "SELECT COUNT(*) FROM op_notices WHERE channel = 'email' AND subject LIKE"
		       " '%spending cap%'");
}

static int set_caps(struct fx *f, const char *caps)
{
	char b[200];
	snprintf(b, sizeof b, "{\"line_id\":2,%s}", caps);
	return call(f, "POST", "/api/lines/caps", NULL, b, NULL);
}

/* Monthly cap: 80% and 100% notices once each, refusal at the cap by the
 * authorisation and by the rating of a record, included usage still on. */
static void test_monthly_cap(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_sofie(f);
	assert_int_equal(400, set_caps(f, "\"cap_cents\":-5"));
	assert_int_equal(200, set_caps(f, "\"cap_cents\":1000"));
	/* 400 minutes at 2 cents: 800 = 80% */
	assert_true(accepted(f, "r-1", SOFIE_MSISDN, "voice", false, 400));
	assert_int_equal(1, alerts(f, "monthly", 80));
	assert_int_equal(0, alerts(f, "monthly", 100));
	assert_int_equal(1, cap_notices(f));
	/* the same record again: the same answer, counted once, no new notice */
	json_t *a, *b;
	assert_int_equal(200, usage(f, "r-1", SOFIE_MSISDN, "voice", false, 400, &a));
	assert_int_equal(800, jint(a, "cents"));
	assert_int_equal(800, qint(f, "SELECT SUM(cents) FROM op_usage WHERE line_id = 2"));
	assert_int_equal(1, cap_notices(f));
	json_decref(a);
	assert_true(accepted(f, "r-2", SOFIE_MSISDN, "voice", false, 50));
	assert_int_equal(1, alerts(f, "monthly", 80)); /* 900: still the one 80% notice */
	/* 100 cents left: 50 of 100 minutes granted */
	assert_int_equal(50, authorize(f, SOFIE_MSISDN, "voice", false, 100, NULL, 0));
	assert_true(accepted(f, "r-3", SOFIE_MSISDN, "voice", false, 50));
	assert_int_equal(1, alerts(f, "monthly", 100));
	assert_int_equal(2, cap_notices(f));
	/* at the cap: chargeable usage refused by authorisation and by rating */
	char why[40];
	assert_int_equal(-1, authorize(f, SOFIE_MSISDN, "voice", false, 1, why, sizeof why));
	assert_string_equal("cap_reached", why);
	assert_int_equal(-1, authorize(f, SOFIE_MSISDN, "sms", false, 1, why, sizeof why));
	assert_int_equal(200, usage(f, "r-4", SOFIE_MSISDN, "sms", false, 1, &b));
	assert_false(json_is_true(json_object_get(b, "accepted")));
	assert_string_equal("cap_reached", jstr(b, "reason"));
	assert_int_equal(0, jint(b, "cents"));
	json_decref(b);
	assert_int_equal(1000, qint(f, "SELECT SUM(cents) FROM op_usage WHERE line_id = 2"));
	assert_int_equal(2, cap_notices(f)); /* 100% told once */
	/* data at home is in the plan: not chargeable, still granted */
	assert_int_equal(500, authorize(f, SOFIE_MSISDN, "data", false, 500, NULL, 0));
	/* the customer sees the refused record, the spend and the cap */
	json_t *acc;
	assert_int_equal(200, call(f, "GET", "/api/account", NULL, NULL, &acc));
	json_t *line = json_array_get(json_object_get(acc, "lines"), 0);
	assert_int_equal(1000, jint(line, "cap_cents"));
	assert_int_equal(1000, jint(line, "month_spent_cents"));
	json_t *use = json_object_get(acc, "usage");
	json_t *last = json_array_get(use, json_array_size(use) - 1);
	assert_string_equal("r-4", jstr(last, "record_id"));
	assert_string_equal("refused", jstr(last, "status"));
	assert_string_equal("cap_reached", jstr(last, "reason"));
	json_decref(acc);
	/* next month: the spend starts again, so do the notices */
	f->clock += 20 * 86400;
	assert_true(authorize(f, SOFIE_MSISDN, "voice", false, 10, NULL, 0) == 10);
	assert_true(accepted(f, "r-5", SOFIE_MSISDN, "voice", false, 400));
	assert_int_equal(2, alerts(f, "monthly", 80));
}

/* Roaming cap apart from the monthly one; roaming counts in both. */
static void test_roaming_cap(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_sofie(f);
	assert_int_equal(200, set_caps(f, "\"cap_cents\":null,\"roaming_cap_cents\":300"));
	/* 16 SMS abroad at 15 cents: 240 = 80% of the roaming cap */
	assert_true(accepted(f, "m-1", SOFIE_MSISDN, "sms", true, 16));
	assert_int_equal(1, alerts(f, "roaming", 80));
	assert_int_equal(0, alerts(f, "monthly", 80));
	assert_int_equal(4, authorize(f, SOFIE_MSISDN, "sms", true, 10, NULL, 0));
	assert_true(accepted(f, "m-2", SOFIE_MSISDN, "sms", true, 4));
	assert_int_equal(1, alerts(f, "roaming", 100));
	char why[40];
	assert_int_equal(-1, authorize(f, SOFIE_MSISDN, "voice", true, 1, why, sizeof why));
	assert_string_equal("roaming_cap_reached", why);
	/* a roaming record past the cap is refused by the rating */
	json_t *j;
	assert_int_equal(200, usage(f, "m-3", SOFIE_MSISDN, "voice", true, 1, &j));
	assert_string_equal("roaming_cap_reached", jstr(j, "reason"));
	json_decref(j);
	/* at home nothing is capped: granted in full */
	assert_int_equal(100, authorize(f, SOFIE_MSISDN, "voice", false, 100, NULL, 0));
	/* the monthly cap counts roaming too: 300 spent abroad, cap 400 leaves
	 * 100 cents, 50 minutes at home */
	assert_int_equal(200, set_caps(f, "\"cap_cents\":400"));
	assert_int_equal(50, authorize(f, SOFIE_MSISDN, "voice", false, 100, NULL, 0));
}

/* A resent record is counted once; a reused id with another body is
 * refused; malformed records are refused with the field named; only the
 * pinned charging system is heard. */
static void test_records(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	json_t *a, *b, *e;
	assert_int_equal(200, usage(f, "x-1", SOFIE_MSISDN, "voice", true, 10, &a));
	assert_int_equal(300, jint(a, "cents"));
	assert_int_equal(200, usage(f, "x-1", SOFIE_MSISDN, "voice", true, 10, &b));
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	assert_int_equal(409, usage(f, "x-1", SOFIE_MSISDN, "voice", true, 11, &e));
	assert_string_equal("record_reused", jstr(e, "error"));
	json_decref(e);
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_usage WHERE record_id = 'x-1'"));
	assert_int_equal(300, qint(f, "SELECT SUM(cents) FROM op_usage WHERE line_id = 2"));
	assert_int_equal(404, usage(f, "x-2", "+32000000000", "voice", false, 1, NULL));
	assert_int_equal(400, usage(f, "x-3", SOFIE_MSISDN, "fax", false, 1, NULL));
	assert_int_equal(400, usage(f, "x-4", SOFIE_MSISDN, "sms", false, 0, NULL));
	assert_int_equal(400,
			 charge(f, "/charging/usage",
				"{\"line\":\"" SOFIE_MSISDN "\",\"kind\":\"sms\","
				"\"roaming\":false,\"units\":1,\"at\":\"2026-09-21T10:00:00Z\"}",
				NULL));
	assert_int_equal(400, charge(f, "/charging/usage",
				     "{\"record_id\":\"x-5\",\"line\":\"" SOFIE_MSISDN
				     "\",\"kind\":\"sms\",\"roaming\":false,\"units\":1,"
				     "\"at\":\"2026-02-30T10:00:00Z\"}",
				     NULL));
	assert_int_equal(400, charge(f, "/charging/authorize", "[1]", NULL));
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_usage WHERE record_id IS NOT NULL"));
	/* another client certificate: refused, nothing recorded */
	assert_int_equal(403, charge_as(f, false, "/charging/usage",
					"{\"record_id\":\"x-6\",\"line\":\"" SOFIE_MSISDN
					"\",\"kind\":\"sms\",\"roaming\":false,\"units\":1,"
					"\"at\":\"2026-09-21T10:00:00Z\"}",
					NULL));
	assert_int_equal(0, qint(f, "SELECT COUNT(*) FROM op_usage WHERE record_id = 'x-6'"));
	/* and the portal does not serve the charging paths */
	assert_int_equal(404, call(f, "POST", "/charging/usage", NULL, "{}", NULL));
}

/* The stop switch: at once, also while a termination is under review;
 * usage after it refused and visible; off again, on again. */
static void test_stop_switch(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login_sofie(f);
	/* a termination under review */
	assert_int_equal(201,
			 call(f, "POST", "/api/cases", NULL,
			      "{\"line_id\":2,\"reason\":\"moving\",\"document_type\":\"id_card\","
			      "\"document_number\":\"592\",\"document_copy\":"
			      "\"JVBERi0xLjQKJWlkZW50aXR5IGNvcHkKJSVFT0YK\"}",
			      NULL));
	char cookie[128], csrf[80];
	snprintf(cookie, sizeof cookie, "%s", f->cookie);
	snprintf(csrf, sizeof csrf, "%s", f->csrf);
	login_reviewer(f);
	assert_int_equal(200,
			 call(f, "POST", "/api/staff/case/take", NULL, "{\"case_id\":1}", NULL));
	snprintf(f->cookie, sizeof f->cookie, "%s", cookie);
	snprintf(f->csrf, sizeof f->csrf, "%s", csrf);
	assert_int_equal(10, authorize(f, SOFIE_MSISDN, "voice", true, 10, NULL, 0));
	/* Sofie reads Dutch: the notice is in Dutch */
	assert_int_equal(200, call(f, "POST", "/api/me/lang", NULL, "{\"lang\":\"nl\"}", NULL));
	json_t *j;
	assert_int_equal(400, call(f, "POST", "/api/lines/stop", NULL, "{\"line_id\":2}", NULL));
	assert_int_equal(
	    200, call(f, "POST", "/api/lines/stop", NULL, "{\"line_id\":2,\"stopped\":true}", &j));
	assert_true(json_is_true(json_object_get(json_object_get(j, "line"), "services_stopped")));
	json_decref(j);
	char why[40];
	assert_int_equal(-1, authorize(f, SOFIE_MSISDN, "voice", true, 10, why, sizeof why));
	assert_string_equal("services_stopped", why);
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_notices WHERE channel = 'email' AND"
				    " subject = 'Betalende diensten stopgezet'"));
	assert_int_equal(-1, authorize(f, SOFIE_MSISDN, "data", false, 10, why, sizeof why));
	assert_false(accepted(f, "s-1", SOFIE_MSISDN, "sms", false, 3));
	assert_int_equal(0, qint(f, "SELECT SUM(cents) FROM op_usage WHERE line_id = 2"));
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_usage WHERE record_id = 's-1' AND"
				    " status = 'refused' AND reason = 'services_stopped'"));
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_audit WHERE action = 'line.stop'"));
	assert_int_equal(200, call(f, "POST", "/api/lines/stop", NULL,
				   "{\"line_id\":2,\"stopped\":false}", NULL));
	assert_int_equal(3, authorize(f, SOFIE_MSISDN, "sms", false, 3, NULL, 0));
	login_jan(f);
	assert_int_equal(404, call(f, "POST", "/api/lines/stop", NULL,
				   "{\"line_id\":2,\"stopped\":true}", NULL));
	assert_int_equal(404, set_caps(f, "\"cap_cents\":1"));
}

/* The final invoice at close, by the contract's policy; usage after the
 * close refused and visible. Jan's line never had a profile: approval
 * closes the case at once. */
static void close_jan(struct fx *f, const char *policy, long expect_fee)
{
	assert_esim(ESIM_OK, op_set_contract(f->o, 1, 30, policy));
	assert_true(accepted(f, "j-1", JAN_MSISDN, "voice", false, 100)); /* 200 cents */
	login_jan(f);
	assert_int_equal(200,
			 call(f, "POST", "/api/invoices/pay", NULL, "{\"invoice_id\":1}", NULL));
	assert_int_equal(201,
			 call(f, "POST", "/api/cases", NULL,
			      "{\"line_id\":1,\"reason\":\"moving\",\"document_type\":\"id_card\","
			      "\"document_number\":\"592\",\"document_copy\":"
			      "\"JVBERi0xLjQKJWlkZW50aXR5IGNvcHkKJSVFT0YK\"}",
			      NULL));
	login_reviewer(f);
	assert_int_equal(200,
			 call(f, "POST", "/api/staff/case/approve", NULL, "{\"case_id\":1}", NULL));
	assert_int_equal(
	    expect_fee + 200,
	    qint(f, "SELECT amount_cents FROM op_invoices WHERE period = '2026-09 final'"));
	assert_int_equal(1,
			 qint(f, "SELECT COUNT(*) FROM op_audit WHERE action = 'invoice.final'"));
	/* the final invoice goes out as a letter too, with its reference */
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_notices n JOIN op_contacts c ON"
				    " c.reference = n.reference WHERE n.channel = 'letter' AND"
				    " c.channel = 'letter'"));
	char why[40];
	assert_int_equal(-1, authorize(f, JAN_MSISDN, "data", false, 1, why, sizeof why));
	assert_string_equal("line_closed", why);
	json_t *j;
	assert_int_equal(200, usage(f, "j-2", JAN_MSISDN, "voice", false, 5, &j));
	assert_false(json_is_true(json_object_get(j, "accepted")));
	assert_string_equal("line_closed", jstr(j, "reason"));
	json_decref(j);
	login_jan(f);
	json_t *acc;
	assert_int_equal(200, call(f, "GET", "/api/account", NULL, NULL, &acc));
	json_t *use = json_object_get(acc, "usage");
	json_t *last = json_array_get(use, json_array_size(use) - 1);
	assert_string_equal("j-2", jstr(last, "record_id"));
	/* the number goes to a new line later: its usage is the new line's */
	int64_t nl = 0;
	assert_esim(ESIM_OK, op_add_line(f->o, 2, JAN_MSISDN, NULL, "Mobile 5 GB", false, &nl));
	assert_true(accepted(f, "j-3", JAN_MSISDN, "sms", false, 1));
	char q[120];
	snprintf(q, sizeof q, "SELECT line_id FROM op_usage WHERE record_id = 'j-3'");
	assert_int_equal(nl, qint(f, q));
	assert_string_equal("refused", jstr(last, "status"));
	json_t *letters = json_object_get(acc, "letters");
	assert_int_equal(1, json_array_size(letters));
	json_decref(acc);
}

static void test_final_invoice_prorated(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	/* closed on 21 September: 21 of 30 days of the 20.00 fee = 14.00 */
	close_jan(f, "prorated", 1400);
}

static void test_final_invoice_full_month(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	close_jan(f, "full_month", 2000);
}

/* The charging listener as esim-operator serve makes it (charging-listen):
 * TLS, a client certificate required and pinned. The pinned charging
 * system is heard; another certificate under the same CI, or none, never
 * reaches the handler; the portal's routes are not there. */
static int post_tls(struct fx *f, net_server *srv, int lid, const char *cert, const char *key,
		    const char *path, const char *body)
{
	char ca[700];
	snprintf(ca, sizeof ca, "%s/ci.pem", f->pki);
	struct net_client_config cc = {
	    .ca_file = ca, .client_cert_file = cert, .client_key_file = key, .timeout_ms = 10000};
	net_client *c;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char url[160];
	snprintf(url, sizeof url, "https://127.0.0.1:%u%s", net_server_port(srv, lid), path);
	struct net_client_response r;
	memset(&r, 0, sizeof r);
	esim_err err = net_client_post_json(c, url, body, strlen(body), &r);
	int st = (err == ESIM_OK || err == ESIM_E_NET_HTTP_STATUS) ? r.status : -1;
	net_client_response_clear(&r);
	net_client_free(c);
	return st;
}

static void test_listener(void **state)
{
	struct fx *f = *state;
	char cmd[2000], cert[700], key[700], other[700], okey[700], tls[700], tlskey[700];
	snprintf(cmd, sizeof cmd,
		 "%s/esim-pki issue operator --out %s/other --issuer-cert %s/ci.pem --issuer-key "
		 "%s/ci.key.pem --cn 'Not the charging system' >/dev/null 2>&1",
		 test_bin_dir(), f->dir, f->pki, f->pki);
	assert_int_equal(0, system(cmd));
	snprintf(cert, sizeof cert, "%s/operator.pem", f->pki); /* pinned by the fixture */
	snprintf(key, sizeof key, "%s/operator.key.pem", f->pki);
	snprintf(other, sizeof other, "%s/other.pem", f->dir);
	snprintf(okey, sizeof okey, "%s/other.key.pem", f->dir);
	snprintf(tls, sizeof tls, "%s/dptls.pem", f->pki);
	snprintf(tlskey, sizeof tlskey, "%s/dptls.key.pem", f->pki);
	net_server *srv;
	assert_esim(ESIM_OK, net_server_new(NULL, &srv));
	uint8_t pin[1][32];
	memcpy(pin[0], op_charging_pin(f->ch), 32);
	struct net_listener_config lc = {.address = "127.0.0.1",
					 .tls = true,
					 .cert_chain_file = tls,
					 .key_file = tlskey,
					 .client_auth = NET_CLIENT_AUTH_REQUIRE,
					 .client_pins = (const uint8_t(*)[32])pin,
					 .n_client_pins = 1};
	int lid;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &lid));
	assert_esim(ESIM_OK, op_charging_add_routes(f->ch, srv, lid));
	assert_esim(ESIM_OK, net_server_start(srv));
	const char *auth = "{\"line\":\"" SOFIE_MSISDN "\",\"kind\":\"voice\",\"roaming\":false,"
			   "\"units\":5}";
	const char *rec = "{\"record_id\":\"t-1\",\"line\":\"" SOFIE_MSISDN "\",\"kind\":"
			  "\"sms\",\"roaming\":false,\"units\":2,\"at\":\"2026-09-21T10:00:00Z\"}";
	assert_int_equal(200, post_tls(f, srv, lid, cert, key, "/charging/authorize", auth));
	assert_int_equal(200, post_tls(f, srv, lid, cert, key, "/charging/usage", rec));
	assert_int_equal(-1, post_tls(f, srv, lid, other, okey, "/charging/usage", rec));
	assert_int_equal(-1, post_tls(f, srv, lid, NULL, NULL, "/charging/authorize", auth));
	assert_int_equal(404, post_tls(f, srv, lid, cert, key, "/api/login", "{}"));
	net_server_free(srv);
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_usage WHERE record_id = 't-1'"));
	assert_int_equal(1, qint(f, "SELECT COUNT(*) FROM op_audit WHERE action = 'usage.rated' AND"
				    " actor LIKE 'charging:%'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_monthly_cap),
	    BOTH(test_roaming_cap),
	    BOTH(test_records),
	    BOTH(test_stop_switch),
	    BOTH(test_final_invoice_prorated),
	    BOTH(test_final_invoice_full_month),
	    cmocka_unit_test_setup_teardown(test_listener, setup_sqlite, teardown),
	};
	return fixture_main(tests, sizeof tests / sizeof tests[0]);
}
