/*
 * The SM-DP+ under abuse (issue 13, point 6): what an anonymous caller or
 * another operator can make it do.
 *
 * - /metrics and /healthz answer on the admin listener only, never on the
 *   public ES9+ or ES2+ ones.
 * - initiateAuthentication needs no credential: expired sessions are swept
 *   (smdp_purge_sessions, live ones kept) and those not yet authenticated
 *   are capped (beyond the cap: HTTP 503, no row).
 * - ES2+ idempotency is keyed on (operator, function,
 *   functionCallIdentifier) with the request's hash: another function
 *   under a used identifier runs, another request under it is refused
 *   (1.3.1 / 3.3), an exact resend gets the first answer.
 * - EIDs with wrong SGP.29 check digits are refused wherever they enter:
 *   ES2+ DownloadOrder / ConfirmOrder, `esim-smdp order`, and the eUICC
 *   certificate in authenticateClient.
 * - another operator's ICCID, or profileType, is answered exactly like an
 *   unknown one.
 * - a verified notification that cannot be recorded is answered 503, so
 *   that the LPA keeps it and sends it again.
 */
#include <sys/wait.h>

#include "esim/cert.h"
#include "esim/store.h"
#include "test_smdp_fixture.h"

static struct sfx F;

/* An EID with wrong check digits (the SGP.26 one ends in 35). */
#define BAD_EID "89049032123451234512345678901234"

static int group_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	sfx_pki(&F);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 8);
	sfx_open_euiccs(&F);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sfx_close(&F);
	return 0;
}

/* ---- admin listener ------------------------------------------------------- */

static void http_get(net_client *c, const char *url, long *status, char *body, size_t n)
{
	struct net_client_response r;
	esim_err err = net_client_request(c, "GET", url, NULL, 0, NULL, 0, &r);
	if (err != ESIM_E_NET_HTTP_STATUS)
		assert_esim(ESIM_OK, err);
	*status = (long)r.status;
	size_t k = r.body.len < n - 1 ? r.body.len : n - 1;
	if (k)
		memcpy(body, r.body.data, k);
	body[k] = '\0';
	net_client_response_clear(&r);
}

static void test_admin_listener_only(void **state)
{
	(void)state;
	char p[6][700];
	snprintf(p[0], 700, "%s/nist/dptls.pem", F.pki);
	snprintf(p[1], 700, "%s/nist/dptls.key.pem", F.pki);
	snprintf(p[2], 700, "%s/nist/ci.pem", F.pki);
	snprintf(p[3], 700, "%s/nist/operator.pem", F.pki);
	snprintf(p[4], 700, "%s/nist/operator.key.pem", F.pki);
	crypto_cert *oc;
	assert_esim(ESIM_OK, crypto_cert_load_file(p[3], &oc));
	size_t der_len;
	const uint8_t *der = crypto_cert_der(oc, &der_len);
	uint8_t pins[1][32];
	unsigned hl;
	assert_int_equal(EVP_Digest(der, der_len, pins[0], &hl, EVP_sha256(), NULL), 1);
	crypto_cert_free(oc);

	net_server *srv;
	struct net_server_config sc = {.threads = 1};
	assert_esim(ESIM_OK, net_server_new(&sc, &srv));
	int l_es9, l_es2, l_admin;
	struct net_listener_config lc = {
	    .address = "127.0.0.1", .tls = true, .cert_chain_file = p[0], .key_file = p[1]};
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_es9));
	lc.client_auth = NET_CLIENT_AUTH_REQUIRE;
	lc.client_pins = (const uint8_t(*)[32])pins;
	lc.n_client_pins = 1;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_es2));
	struct net_listener_config al = {.address = "127.0.0.1"};
	assert_esim(ESIM_OK, net_server_add_listener(srv, &al, &l_admin));
	assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l_es9, l_es2));
	/* "every listener" is not an admin listener */
	assert_esim(ESIM_E_ARG, smdp_add_admin_routes(F.d, srv, -1));
	assert_esim(ESIM_OK, smdp_add_admin_routes(F.d, srv, l_admin));
	assert_esim(ESIM_OK, net_server_start(srv));

	struct net_client_config ccfg = {
	    .ca_file = p[2], .client_cert_file = p[3], .client_key_file = p[4]};
	net_client *cli;
	assert_esim(ESIM_OK, net_client_new(&ccfg, &cli));
	char url[256], body[4096];
	long status;
	static const char *const paths[] = {"/metrics", "/healthz"};
	for (size_t i = 0; i < 2; i++) {
		/* the public listeners: ES9+ (anyone) and ES2+ (operators) */
		snprintf(url, sizeof url, "https://localhost:%u%s", net_server_port(srv, l_es9),
			 paths[i]);
		http_get(cli, url, &status, body, sizeof body);
		assert_int_equal(status, 404);
		assert_null(strstr(body, "smdp_"));
		snprintf(url, sizeof url, "https://localhost:%u%s", net_server_port(srv, l_es2),
			 paths[i]);
		http_get(cli, url, &status, body, sizeof body);
		assert_int_equal(status, 404);
		assert_null(strstr(body, "smdp_"));
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", net_server_port(srv, l_admin));
	http_get(cli, url, &status, body, sizeof body);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body, "smdp_es9_requests_total"));
	snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", net_server_port(srv, l_admin));
	http_get(cli, url, &status, body, sizeof body);
	assert_int_equal(status, 200);
	assert_string_equal(body, "ok\n");
	/* and the admin listener serves nothing of ES9+ */
	struct net_client_response r;
	snprintf(url, sizeof url, "http://127.0.0.1:%u/gsma/rsp2/es9plus/initiateAuthentication",
		 net_server_port(srv, l_admin));
	assert_esim(ESIM_E_NET_HTTP_STATUS, net_client_post_json(cli, url, "{}", 2, &r));
	assert_int_equal(r.status, 404);
	net_client_response_clear(&r);
	net_client_free(cli);
	net_server_stop(srv);
	net_server_free(srv);
	assert_esim(ESIM_OK, smdp_health(F.d));
}

/* ---- a notification is acknowledged only once it is recorded ------------- */

static void exec_own(const char *sql)
{
	store *s;
	assert_esim(ESIM_OK, store_open(F.db, &s));
	assert_esim(ESIM_OK, store_exec(s, sql));
	store_close(s);
}

/* A verified PIR that the SM-DP+ cannot record is answered 503, not 204:
 * the LPA keeps it on the eUICC and sends it again, and the second time
 * the profile becomes Installed. (At 529f5d7 storage trouble was logged
 * and answered 204, so the LPA removed a PIR nobody had recorded.) */
static void test_pir_not_acknowledged_unless_recorded(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 2, NULL, NULL, NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_esim(ESIM_OK, lpa_dl_load(&s));
	assert_true(s.pir_success);
	/* the notification table is out of reach: the PIR cannot be recorded */
	exec_own("ALTER TABLE smdp_notifications RENAME TO smdp_notifications_away");
	assert_int_not_equal(lpa_dl_notify(&s), ESIM_OK);
	assert_int_equal(s.http_status, 503);
	assert_int_equal(sfx_state(&F, 2), SMDP_DOWNLOADED);
	exec_own("ALTER TABLE smdp_notifications_away RENAME TO smdp_notifications");
	/* the same PIR, sent again, is recorded and acknowledged */
	assert_esim(ESIM_OK, lpa_dl_notify(&s));
	assert_int_equal(s.http_status, 204);
	assert_int_equal(sfx_state(&F, 2), SMDP_INSTALLED);
	lpa_session_clear(&s);
}

/* ---- sessions: purge and cap ------------------------------------------------ */

/* Rows of smdp_sessions, read through a connection of our own. */
static size_t session_rows(void)
{
	store *s;
	assert_esim(ESIM_OK, store_open(F.db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT COUNT(*) FROM smdp_sessions", &st));
	bool row;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	size_t n = (size_t)store_col_int64(st, 0);
	store_finalize(st);
	store_close(s);
	return n;
}

/* One initiateAuthentication from eUICC i; the HTTP status. */
static int initiate(struct lpa_session *s, int i)
{
	lpa_session_init(s, &F.drv[i]);
	esim_err err = lpa_dl_initiate(s);
	if (s->http_status == 200)
		assert_esim(ESIM_OK, err);
	return s->http_status;
}

static void test_session_purge(void **state)
{
	(void)state;
	smdp_close(F.d);
	F.d = NULL;
	memset(&F.cfg, 0, sizeof F.cfg);
	F.cfg.session_ttl_s = 60;
	sfx_open_smdp(&F, NULL, 8);
	for (int i = 0; i < 2; i++)
		F.drv[i].es9_ctx = F.d;
	struct lpa_session s[6];
	/* t=0: three sessions nobody comes back to */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(initiate(&s[i], i % 2), 200);
		lpa_session_clear(&s[i]);
	}
	/* t=40: one more, idle for less than the TTL when the purge runs
	 * (the clock is real time plus an offset: margins of seconds) */
	F.offset = 40;
	assert_int_equal(initiate(&s[3], 0), 200);
	lpa_session_clear(&s[3]);
	/* t=90: the first three are past the TTL; a live session with an
	 * order behind it starts now */
	F.offset = 90;
	char mid[64];
	sfx_order(&F, 1, NULL, NULL, NULL, true, mid);
	assert_int_equal(initiate(&s[4], 0), 200);
	assert_int_equal(session_rows(), 5);
	size_t deleted = 99;
	assert_esim(ESIM_OK, smdp_purge_sessions(F.d, &deleted));
	assert_int_equal(deleted, 3);
	assert_int_equal(session_rows(), 2);
	/* the live session was not touched: the download goes on */
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s[4], mid));
	assert_false(s[4].failed);
	assert_esim(ESIM_OK, lpa_dl_prepare(&s[4], NULL));
	assert_false(s[4].failed);
	lpa_session_clear(&s[4]);
	/* nothing more to purge until the one of t=40 expires */
	assert_esim(ESIM_OK, smdp_purge_sessions(F.d, &deleted));
	assert_int_equal(deleted, 0);
	F.offset = 105;
	assert_esim(ESIM_OK, smdp_purge_sessions(F.d, &deleted));
	assert_int_equal(deleted, 1);
	size_t all = 0, pending = 9;
	assert_esim(ESIM_OK, smdp_session_count(F.d, &all, &pending));
	assert_int_equal(all, 1); /* the download in progress, authenticated */
	assert_int_equal(pending, 0);
}

static void test_session_cap(void **state)
{
	(void)state;
	smdp_close(F.d);
	F.d = NULL;
	memset(&F.cfg, 0, sizeof F.cfg);
	F.cfg.session_ttl_s = 60;
	F.cfg.max_pending_sessions = 4;
	sfx_open_smdp(&F, NULL, 8);
	for (int i = 0; i < 2; i++)
		F.drv[i].es9_ctx = F.d;
	struct lpa_session s;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(initiate(&s, i % 2), 200);
		lpa_session_clear(&s);
	}
	/* the fifth is refused for now, with no row written */
	for (int i = 0; i < 3; i++) {
		int status = 0;
		char *out = NULL;
		const char *req = "{\"smdpAddress\":\"x\"}";
		assert_int_equal(initiate(&s, 0), 503);
		assert_true(s.failed);
		assert_string_equal(s.subject, "8.8");
		assert_string_equal(s.reason, "4.2");
		lpa_session_clear(&s);
		/* a malformed call is still answered as such (no cap needed) */
		assert_esim(ESIM_OK, smdp_es9(F.d, "initiateAuthentication", (const uint8_t *)req,
					      strlen(req), &status, &out));
		assert_int_equal(status, 200);
		free(out);
	}
	assert_int_equal(session_rows(), 4);
	/* once those expire there is room again, purged or not */
	F.offset = 61;
	assert_int_equal(initiate(&s, 1), 200);
	lpa_session_clear(&s);
	size_t deleted = 0;
	assert_esim(ESIM_OK, smdp_purge_sessions(F.d, &deleted));
	assert_int_equal(deleted, 4);
	assert_int_equal(session_rows(), 1);
	/* an authenticated session is no longer pending: it frees its place */
	char mid[64];
	sfx_order(&F, 1, NULL, NULL, NULL, true, mid);
	struct lpa_session a;
	assert_int_equal(initiate(&a, 0), 200);
	assert_esim(ESIM_OK, lpa_dl_authenticate(&a, mid));
	assert_false(a.failed);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(initiate(&s, 1), 200);
		lpa_session_clear(&s);
	}
	F.offset = 62; /* the next second: the table is counted again */
	assert_int_equal(initiate(&s, 1), 503);
	lpa_session_clear(&s);
	lpa_session_clear(&a);
}

/* ---- ES2+ idempotency ---------------------------------------------------------- */

/* One ES2+ call with a given functionCallIdentifier; the raw answer
 * (caller frees). */
static char *es2_raw(const uint8_t *sha, const char *fri, const char *fn, const char *call_id,
		     const char *fields)
{
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"header\":{\"functionRequesterIdentifier\":\"%s\","
		 "\"functionCallIdentifier\":\"%s\"},%s}",
		 fri, call_id, fields);
	int status = 0;
	char *out = NULL;
	assert_esim(ESIM_OK,
		    smdp_es2(F.d, fn, sha, (const uint8_t *)body, strlen(body), &status, &out));
	assert_int_equal(status, 200);
	assert_non_null(out);
	return out;
}

static json_t *es2_call(const uint8_t *sha, const char *fri, const char *fn, const char *call_id,
			const char *fields)
{
	char *out = es2_raw(sha, fri, fn, call_id, fields);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	free(out);
	return j;
}

static void test_es2_call_id_per_function(void **state)
{
	(void)state;
	char iccid[RSP_ICCID_TEXT_MAX], fields[256];
	sfx_iccid(1, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\"", iccid);
	json_t *j = es2_call(SFX_OP1_SHA, "OP1", "downloadOrder", "ID-1", fields);
	sfx_assert_ok(j);
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_ALLOCATED);
	/* cancelOrder under the same identifier is a call of its own: it runs */
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"finalProfileStatusIndicator\":\"Available\"", iccid);
	j = es2_call(SFX_OP1_SHA, "OP1", "cancelOrder", "ID-1", fields);
	sfx_assert_ok(j);
	assert_null(json_object_get(j, "iccid")); /* not downloadOrder's answer */
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_AVAILABLE);
}

static void test_es2_call_id_other_request(void **state)
{
	(void)state;
	char iccid[2][RSP_ICCID_TEXT_MAX], fields[2][256];
	for (int i = 0; i < 2; i++) {
		sfx_iccid((size_t)i + 2, iccid[i]);
		snprintf(fields[i], sizeof fields[i], "\"iccid\":\"%s\"", iccid[i]);
	}
	char *first = es2_raw(SFX_OP1_SHA, "OP1", "downloadOrder", "ID-2", fields[0]);
	assert_non_null(strstr(first, "Executed-Success"));
	/* the same identifier and function with another ICCID: refused, not
	 * answered with the first call's result, and nothing done */
	json_t *j = es2_call(SFX_OP1_SHA, "OP1", "downloadOrder", "ID-2", fields[1]);
	sfx_assert_fail(j, "1.3.1", "3.3");
	json_decref(j);
	assert_int_equal(sfx_state(&F, 3), SMDP_AVAILABLE);
	/* an exact resend, laid out differently, gets the first answer */
	char body[512];
	snprintf(body, sizeof body,
		 "{ \"iccid\" : \"%s\", \"header\": {\"functionCallIdentifier\":\"ID-2\","
		 "\"functionRequesterIdentifier\":\"OP1\"} }",
		 iccid[0]);
	int status;
	char *again = NULL;
	assert_esim(ESIM_OK, smdp_es2(F.d, "downloadOrder", SFX_OP1_SHA, (const uint8_t *)body,
				      strlen(body), &status, &again));
	assert_string_equal(again, first);
	free(again);
	free(first);
	assert_int_equal(sfx_state(&F, 2), SMDP_ALLOCATED);
	/* another operator's identifier space is its own */
	assert_esim(ESIM_OK, smdp_import_profile(F.d, "OTHER", "89000123459999999992", NULL));
	j = es2_call(SFX_OP2_SHA, "OP2", "downloadOrder", "ID-2", "\"profileType\":\"OTHER\"");
	sfx_assert_ok(j);
	assert_string_equal(json_string_value(json_object_get(j, "iccid")), "89000123459999999992");
	json_decref(j);
}

/* ---- EID check digits ------------------------------------------------------------- */

static void test_es2_eid_check_digits(void **state)
{
	(void)state;
	assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS, rsp_eid_check(BAD_EID));
	char iccid[RSP_ICCID_TEXT_MAX], fields[256];
	sfx_iccid(1, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"eid\":\"%s\"", iccid, BAD_EID);
	json_t *j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", fields);
	sfx_assert_fail(j, "8.1.1", "2.1");
	const char *msg = sfx_status(j, "message");
	assert_non_null(strstr(msg, BAD_EID));
	assert_non_null(strstr(msg, "mod 97"));
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_AVAILABLE);
	/* ConfirmOrder: an order without EID, confirmed with a bad one */
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\"", iccid);
	json_decref(sfx_es2_ok(&F, "downloadOrder", fields));
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"releaseFlag\":true,\"eid\":\"%s\"",
		 iccid, BAD_EID);
	j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", fields);
	sfx_assert_fail(j, "8.1.1", "2.1");
	assert_non_null(strstr(sfx_status(j, "message"), BAD_EID));
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_ALLOCATED);
	/* the valid SGP.26 EID goes through */
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"releaseFlag\":true,\"eid\":\"%s\"",
		 iccid, SFX_EID);
	json_decref(sfx_es2_ok(&F, "confirmOrder", fields));
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
}

/* `esim-smdp order` on the fixture's database; its exit status, stderr
 * into err. */
static int run_order(const char *eid_args, char *err, size_t n)
{
	char conf[800], log[800], cmd[4096];
	snprintf(conf, sizeof conf, "%s/order.conf", F.dir);
	snprintf(log, sizeof log, "%s/order.err", F.dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = %s\nfqdn = %s\ndpauth-cert-nist = %s\ndpauth-key-nist = %s\n"
		"dppb-cert-nist = %s\ndppb-key-nist = %s\nci = %s\n",
		F.cfg.db_url, SFX_FQDN, F.cfg.ids[0].dpauth_cert, F.cfg.ids[0].dpauth_key,
		F.cfg.ids[0].dppb_cert, F.cfg.ids[0].dppb_key, F.cfg.ci_paths[0]);
	fclose(f);
	snprintf(cmd, sizeof cmd, "'%s/esim-smdp' order --config '%s' OP1 %s %s >/dev/null 2>'%s'",
		 test_bin_dir(), conf, SFX_TYPE, eid_args, log);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	size_t len = 0;
	uint8_t *text = test_read(log, &len);
	size_t k = len < n - 1 ? len : n - 1;
	memcpy(err, text, k);
	err[k] = '\0';
	free(text);
	return WEXITSTATUS(st);
}

static void test_order_eid_check_digits(void **state)
{
	(void)state;
	char err[2048];
	size_t avail = 0;
	assert_esim(ESIM_OK, smdp_count_state(F.d, SFX_TYPE, SMDP_AVAILABLE, &avail));
	assert_int_equal(run_order(BAD_EID, err, sizeof err), 1);
	assert_non_null(strstr(err, BAD_EID));
	assert_non_null(strstr(err, "check digits"));
	assert_int_equal(run_order("--eid " BAD_EID, err, sizeof err), 1);
	assert_non_null(strstr(err, "check digits"));
	size_t now = 0;
	assert_esim(ESIM_OK, smdp_count_state(F.d, SFX_TYPE, SMDP_AVAILABLE, &now));
	assert_int_equal(now, avail); /* nothing claimed */
	/* the same command with a valid EID orders */
	assert_int_equal(run_order("--eid " SFX_EID, err, sizeof err), 0);
	assert_esim(ESIM_OK, smdp_count_state(F.d, SFX_TYPE, SMDP_AVAILABLE, &now));
	assert_int_equal(now, avail - 1);
}

/* An eUICC whose certificate (issued by the PKI's EUM) carries eid
 * unchecked, so that wrong check digits get through issuance. */
static euicc *euicc_unchecked_eid(const char *eid)
{
	char p[3][700];
	snprintf(p[0], 700, "%s/nist/eum.der", F.pki);
	snprintf(p[1], 700, "%s/nist/eum.key.pem", F.pki);
	snprintf(p[2], 700, "%s/nist/ci.der", F.pki);
	size_t eum_len;
	uint8_t *eum = test_read(p[0], &eum_len);
	EVP_PKEY *eum_key = NULL;
	assert_esim(ESIM_OK, crypto_key_load_private_file(p[1], &eum_key));
	struct crypto_issue_params ip = {
	    .kind = CRYPTO_ISSUE_EUICC,
	    .curve = CRYPTO_CURVE_P256,
	    .eid = eid,
	    .unchecked_eid = true,
	    .issuer_der = eum,
	    .issuer_der_len = eum_len,
	    .issuer_key = eum_key,
	    .not_before = time(NULL) - 3600,
	    .not_after = CRYPTO_PKI_NOT_AFTER_NEVER,
	};
	struct crypto_issued out;
	assert_esim(ESIM_OK, crypto_issue(&ip, &out));
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = ":memory:";
	ec.identities[0].cert.p = out.der;
	ec.identities[0].cert.len = out.der_len;
	ec.identities[0].key = out.key;
	ec.identities[0].eum.p = eum;
	ec.identities[0].eum.len = eum_len;
	ec.n_identities = 1;
	ec.ci_paths[0] = p[2];
	ec.n_ci_paths = 1;
	euicc *e = NULL;
	assert_esim(ESIM_OK, euicc_open(&ec, &e));
	crypto_issued_clear(&out);
	EVP_PKEY_free(eum_key);
	free(eum);
	return e;
}

static void test_authenticate_client_eid_check_digits(void **state)
{
	(void)state;
	euicc *e = euicc_unchecked_eid(BAD_EID);
	char mid[64];
	/* an order for no EID in particular: only the certificate's EID is wrong */
	sfx_order(&F, 1, NULL, NULL, NULL, true, mid);
	struct lpa_driver drv = {sfx_es10, e, sfx_es9, F.d, SFX_FQDN};
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	sfx_assert_lpa_fail(&s, "8.1.1", "2.1");
	lpa_session_clear(&s);
	euicc_close(e);
	/* the order is untouched: the SGP.26 eUICC downloads it */
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
}

/* ---- inventory probing --------------------------------------------------------------- */

static const char *status_code_data(const char *raw, char *out, size_t n)
{
	json_t *j = json_loads(raw, 0, NULL);
	assert_non_null(j);
	json_t *scd = json_object_get(
	    json_object_get(json_object_get(j, "header"), "functionExecutionStatus"),
	    "statusCodeData");
	assert_non_null(scd);
	char *t = json_dumps(scd, JSON_COMPACT | JSON_SORT_KEYS);
	snprintf(out, n, "%s", t);
	free(t);
	json_decref(j);
	return out;
}

static void test_other_operators_iccid_is_unknown(void **state)
{
	(void)state;
	/* OP1 owns ICCID 1; 89000000000000000004 exists for nobody */
	char iccid[RSP_ICCID_TEXT_MAX], mine[256], unknown[256];
	sfx_iccid(1, iccid);
	snprintf(mine, sizeof mine, "\"iccid\":\"%s\"", iccid);
	snprintf(unknown, sizeof unknown, "\"iccid\":\"89000000000000000004\"");
	char confirm[2][320], cancel[2][320];
	snprintf(confirm[0], 320, "%s,\"releaseFlag\":true", mine);
	snprintf(confirm[1], 320, "%s,\"releaseFlag\":true", unknown);
	snprintf(cancel[0], 320, "%s,\"finalProfileStatusIndicator\":\"Available\"", mine);
	snprintf(cancel[1], 320, "%s,\"finalProfileStatusIndicator\":\"Available\"", unknown);
	struct {
		const char *fn, *other, *none;
	} calls[] = {
	    {"downloadOrder", mine, unknown},
	    {"confirmOrder", confirm[0], confirm[1]},
	    {"cancelOrder", cancel[0], cancel[1]},
	    {"releaseProfile", mine, unknown},
	};
	for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
		char id[2][32], a[256], b[256];
		snprintf(id[0], 32, "probe-%zu-a", i);
		snprintf(id[1], 32, "probe-%zu-b", i);
		char *ra = es2_raw(SFX_OP2_SHA, "OP2", calls[i].fn, id[0], calls[i].other);
		char *rb = es2_raw(SFX_OP2_SHA, "OP2", calls[i].fn, id[1], calls[i].none);
		status_code_data(ra, a, sizeof a);
		status_code_data(rb, b, sizeof b);
		if (strcmp(a, b) != 0)
			fprintf(stderr, "%s: another's ICCID %s, unknown ICCID %s\n", calls[i].fn,
				a, b);
		assert_string_equal(a, b);
		assert_non_null(strstr(a, "\"reasonCode\":\"3.9\""));
		free(ra);
		free(rb);
	}
	assert_int_equal(sfx_state(&F, 1), SMDP_AVAILABLE);
}

/* Another operator's profileType is answered exactly like an unknown one
 * (8.2.5 / 3.9), in every way ES2+ takes a profileType: DownloadOrder by
 * type alone, and with an ICCID of the caller's. (At 529f5d7 another
 * operator's type got 8.2.5 / 1.2, an unknown one 3.9: any operator could
 * tell which type names the others use.) */
static void test_other_operators_profile_type_is_unknown(void **state)
{
	(void)state;
	/* OP1 owns type STD and ICCID 1; OP2 owns type OTHER */
	char iccid[RSP_ICCID_TEXT_MAX], with[2][256];
	sfx_iccid(1, iccid);
	snprintf(with[0], 256, "\"iccid\":\"%s\",\"profileType\":\"OTHER\"", iccid);
	snprintf(with[1], 256, "\"iccid\":\"%s\",\"profileType\":\"NOSUCH\"", iccid);
	struct {
		const uint8_t *sha;
		const char *fri, *other, *none, *reason;
	} calls[] = {
	    {SFX_OP2_SHA, "OP2", "\"profileType\":\"STD\"", "\"profileType\":\"NOSUCH\"", "3.9"},
	    {SFX_OP1_SHA, "OP1", "\"profileType\":\"OTHER\"", "\"profileType\":\"NOSUCH\"", "3.9"},
	    {SFX_OP1_SHA, "OP1", with[0], with[1], "3.8"},
	};
	for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
		char id[2][32], a[256], b[256];
		snprintf(id[0], 32, "ptype-%zu-a", i);
		snprintf(id[1], 32, "ptype-%zu-b", i);
		char *ra =
		    es2_raw(calls[i].sha, calls[i].fri, "downloadOrder", id[0], calls[i].other);
		char *rb =
		    es2_raw(calls[i].sha, calls[i].fri, "downloadOrder", id[1], calls[i].none);
		status_code_data(ra, a, sizeof a);
		status_code_data(rb, b, sizeof b);
		if (strcmp(a, b) != 0)
			fprintf(stderr, "case %zu: another's type %s, unknown type %s\n", i, a, b);
		assert_string_equal(a, b);
		assert_non_null(strstr(a, "\"subjectCode\":\"8.2.5\""));
		char want[32];
		snprintf(want, sizeof want, "\"reasonCode\":\"%s\"", calls[i].reason);
		assert_non_null(strstr(a, want));
		free(ra);
		free(rb);
	}
	/* nothing was claimed */
	for (size_t i = 1; i <= 8; i++)
		assert_int_equal(sfx_state(&F, i), SMDP_AVAILABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_admin_listener_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_es2_call_id_per_function, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_es2_call_id_other_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_es2_eid_check_digits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_order_eid_check_digits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_authenticate_client_eid_check_digits, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_other_operators_iccid_is_unknown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_operators_profile_type_is_unknown, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pir_not_acknowledged_unless_recorded, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
