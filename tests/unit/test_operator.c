/*
 * esim-operator's rules, in process through op_http (no sockets): login,
 * sessions, CSRF, login limits, ownership, staff roles, the termination
 * workflow (open invoices block approval, needs_info, reminders), the
 * ES2+ HandleDownloadProgressInfo callback with a real eUICC-signed delete
 * notification (SGP.22 digest 8.4) and forged ones, the signed record and
 * its verifier, and the hash-chained audit log. On SQLite, and again on
 * PostgreSQL when it is installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <openssl/evp.h>

#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/operator.h"
#include "esim/rsp.h"
#include "esim/store.h"
#include "pg_helper.h"
#include "testutil.h"

#define EID	    "89049032123451234512345678901235"
#define SOFIE_ICCID "8932000000000000017"

struct fx {
	char *dir;
	char db[512];
	char pki[600];
	op *o;
	time_t clock;
	char cookie[128];
	char csrf[80];
};

static struct pg_env pg;
static int pg_rc = -1;
static char *pki_dir; /* one test PKI for the whole run (esim-pki init) */

static time_t fake_now(void *arg)
{
	return ((struct fx *)arg)->clock;
}

static char *p_(struct fx *f, const char *rel)
{
	static char b[4][700];
	static int i;
	i = (i + 1) % 4;
	snprintf(b[i], sizeof b[i], "%s/%s", f->pki, rel);
	return b[i];
}

static void open_op(struct fx *f)
{
	char dk[600], mail[600];
	snprintf(dk, sizeof dk, "%s/data.key", f->dir);
	snprintf(mail, sizeof mail, "%s/mail", f->dir);
	struct op_config cfg = {.db = f->db,
				.web_dir = f->dir,
				.maildir = mail,
				.key_file = p_(f, "operator.key.pem"),
				.cert_file = p_(f, "operator.pem"),
				.ci_file = p_(f, "ci.pem"),
				.data_key_file = dk,
				.fast_hash = true,
				.now = fake_now,
				.now_arg = f};
	assert_esim(ESIM_OK, op_open(&cfg, &f->o));
}

static int setup_common(void **state, bool postgres)
{
	struct fx *f = calloc(1, sizeof *f);
	f->dir = test_mkdtemp();
	f->clock = 1790000000;
	snprintf(f->pki, sizeof f->pki, "%s/pki/nist", pki_dir);
	if (postgres) {
		if (pg_rc < 0 && (pg_rc = pg_start(&pg)) < 0)
			pg_rc = 1; /* failed: not tried again */
		if (pg_rc != 0 && pg_rc != TEST_SKIP_CODE)
			fail_msg("PostgreSQL is installed but did not start");
		if (pg_rc != 0) {
			/* not installed: this case skips, main() reports the skip */
			test_rm_rf(f->dir);
			free(f->dir);
			free(f);
			*state = NULL;
			return 0;
		}
		assert_int_equal(0, pg_create_db(&pg, f->db, sizeof f->db));
	} else {
		snprintf(f->db, sizeof f->db, "%s/op.db", f->dir);
	}
	open_op(f);
	assert_esim(ESIM_OK, op_seed_demo(f->o));
	/* a file for the static route */
	char idx[700];
	snprintf(idx, sizeof idx, "%s/index.html", f->dir);
	FILE *fp = fopen(idx, "w");
	fputs("<!DOCTYPE html><title>portal</title>", fp);
	fclose(fp);
	*state = f;
	return 0;
}

static int setup_sqlite(void **state)
{
	return setup_common(state, false);
}

static int setup_pg(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	op_close(f->o);
	test_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

#define SKIP_IF_NO_PG(f)                                                                           \
	do {                                                                                       \
		if (!(f)) {                                                                        \
			print_message("PostgreSQL not available: skipped\n");                      \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* One request; *out the parsed JSON (or NULL); returns the status. */
static int call_as(struct fx *f, const char *method, const char *path, const char *query,
		   const char *body, const char *cookie, const char *csrf, json_t **out)
{
	struct net_header h[3];
	size_t nh = 0;
	if (cookie && *cookie)
		h[nh++] = (struct net_header){"Cookie", cookie};
	if (csrf && *csrf)
		h[nh++] = (struct net_header){"X-CSRF-Token", csrf};
	net_request req = {.method = method,
			   .path = path,
			   .query = query,
			   .headers = h,
			   .n_headers = nh,
			   .body = (const uint8_t *)body,
			   .body_len = body ? strlen(body) : 0,
			   .peer_addr = "192.0.2.7"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, f->o));
	int st = resp.status;
	if (out) {
		*out = NULL;
		if (resp.body.len)
			*out = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	}
	if (!strcmp(path, "/api/login") || !strcmp(path, "/api/staff/login")) {
		for (size_t i = 0; i < resp.n_headers; i++)
			if (!strcmp(resp.headers[i].name, "Set-Cookie")) {
				size_t n = strcspn(resp.headers[i].value, ";");
				snprintf(f->cookie, sizeof f->cookie, "%.*s", (int)n,
					 resp.headers[i].value);
			}
	}
	net_response_clear(&resp);
	return st;
}

static int call(struct fx *f, const char *method, const char *path, const char *query,
		const char *body, json_t **out)
{
	return call_as(f, method, path, query, body, f->cookie, f->csrf, out);
}

static void login(struct fx *f, bool staff, const char *user, const char *pw)
{
	char b[256];
	snprintf(b, sizeof b, "{\"login\":\"%s\",\"password\":\"%s\"}", user, pw);
	json_t *j;
	f->cookie[0] = f->csrf[0] = '\0';
	assert_int_equal(200,
			 call(f, "POST", staff ? "/api/staff/login" : "/api/login", NULL, b, &j));
	snprintf(f->csrf, sizeof f->csrf, "%s", json_string_value(json_object_get(j, "csrf")));
	json_decref(j);
	assert_int_equal(64, strlen(f->csrf));
}

#define SUBMIT_FMT                                                                                 \
	"{\"line_id\":%lld,\"reason\":\"moving abroad\",\"document_type\":\"id_card\","            \
	"\"document_number\":\"592-1234567-89\",\"document_copy\":"                                \
	"\"iVBORw0KGgppZGVudGl0eSBjYXJkIHNjYW4=\","                                                \
	"\"document_mime\":\"image/png\"}"

static int64_t first_line(struct fx *f)
{
	json_t *j;
	assert_int_equal(200, call(f, "GET", "/api/account", NULL, NULL, &j));
	int64_t id = json_integer_value(
	    json_object_get(json_array_get(json_object_get(j, "lines"), 0), "id"));
	json_decref(j);
	return id;
}

static int64_t submit(struct fx *f, int64_t line, int expect)
{
	char b[600];
	snprintf(b, sizeof b, SUBMIT_FMT, (long long)line);
	json_t *j;
	assert_int_equal(expect, call(f, "POST", "/api/cases", NULL, b, &j));
	int64_t id = json_integer_value(json_object_get(json_object_get(j, "case"), "id"));
	json_decref(j);
	return id;
}

static char *case_state(struct fx *f, int64_t id, bool staff)
{
	static char s[32];
	char q[32];
	snprintf(q, sizeof q, "id=%lld", (long long)id);
	json_t *j;
	assert_int_equal(200, call(f, "GET", staff ? "/api/staff/case" : "/api/case", q, NULL, &j));
	snprintf(s, sizeof s, "%s",
		 json_string_value(json_object_get(json_object_get(j, "case"), "state")));
	json_decref(j);
	return s;
}

static int staff_act(struct fx *f, const char *act, int64_t id, const char *extra)
{
	char path[96], b[256];
	snprintf(path, sizeof path, "/api/staff/case/%s", act);
	snprintf(b, sizeof b, "{\"case_id\":%lld%s}", (long long)id, extra ? extra : "");
	return call(f, "POST", path, NULL, b, NULL);
}

/* ---- sessions, CSRF, roles, limits ------------------------------------------ */

static void test_session_and_csrf(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	const char *pay = "{\"invoice_id\":1}";
	json_t *j;
	assert_int_equal(401, call_as(f, "GET", "/api/account", NULL, NULL, NULL, NULL, NULL));
	assert_int_equal(401, call_as(f, "POST", "/api/invoices/pay", NULL, pay, NULL, NULL, NULL));
	assert_int_equal(
	    401,
	    call_as(f, "POST", "/api/invoices/pay", NULL, pay,
		    "esim_session=0000000000000000000000000000000000000000000000000000000000000000",
		    NULL, NULL));
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	/* the session without the CSRF token, or with another, is refused */
	assert_int_equal(403,
			 call_as(f, "POST", "/api/invoices/pay", NULL, pay, f->cookie, NULL, &j));
	assert_string_equal("csrf", json_string_value(json_object_get(j, "error")));
	json_decref(j);
	char wrong[80];
	snprintf(wrong, sizeof wrong, "%s", f->csrf);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	assert_int_equal(
	    403, call_as(f, "POST", "/api/invoices/pay", NULL, pay, f->cookie, wrong, NULL));
	/* nothing was paid by the refused requests */
	assert_int_equal(200, call(f, "GET", "/api/account", NULL, NULL, &j));
	assert_int_equal(4250, json_integer_value(json_object_get(json_object_get(j, "account"),
								  "balance_cents")));
	json_decref(j);
	assert_int_equal(200, call(f, "POST", "/api/invoices/pay", NULL, pay, &j));
	assert_string_equal(
	    "paid", json_string_value(json_object_get(json_object_get(j, "invoice"), "status")));
	json_decref(j);
	assert_int_equal(409, call(f, "POST", "/api/invoices/pay", NULL, pay, NULL));
	/* sessions expire after 30 idle minutes */
	f->clock += 31 * 60;
	assert_int_equal(401, call(f, "GET", "/api/account", NULL, NULL, NULL));
	/* logout ends the session */
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	assert_int_equal(200, call(f, "POST", "/api/logout", NULL, "{}", NULL));
	assert_int_equal(401, call(f, "GET", "/api/me", NULL, NULL, NULL));
	/* static files */
	assert_int_equal(200, call(f, "GET", "/", NULL, NULL, NULL));
	assert_int_equal(404, call(f, "GET", "/static/..%2Fop.db", NULL, NULL, NULL));
	assert_int_equal(404, call(f, "GET", "/static/.hidden", NULL, NULL, NULL));
}

static void test_login_limits(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	const char *bad = "{\"login\":\"jan.peeters@example.be\",\"password\":\"guess\"}";
	const char *good = "{\"login\":\"jan.peeters@example.be\",\"password\":\"jan-demo-2026\"}";
	for (int i = 0; i < 5; i++)
		assert_int_equal(401,
				 call_as(f, "POST", "/api/login", NULL, bad, NULL, NULL, NULL));
	/* locked: even the right password is refused for a minute */
	assert_int_equal(429, call_as(f, "POST", "/api/login", NULL, good, NULL, NULL, NULL));
	f->clock += 30;
	assert_int_equal(429, call_as(f, "POST", "/api/login", NULL, good, NULL, NULL, NULL));
	f->clock += 31;
	/* one more failure after the lock locks again, for twice as long */
	assert_int_equal(401, call_as(f, "POST", "/api/login", NULL, bad, NULL, NULL, NULL));
	f->clock += 61;
	assert_int_equal(429, call_as(f, "POST", "/api/login", NULL, good, NULL, NULL, NULL));
	f->clock += 60;
	assert_int_equal(200, call_as(f, "POST", "/api/login", NULL, good, NULL, NULL, NULL));
	/* other accounts from the same address are not locked by Jan's */
	assert_int_equal(200, call_as(f, "POST", "/api/staff/login", NULL,
				      "{\"login\":\"reviewer\",\"password\":\"review-demo-2026\"}",
				      NULL, NULL, NULL));
	/* a customer's password does not open the staff login */
	assert_int_equal(401, call_as(f, "POST", "/api/staff/login", NULL, good, NULL, NULL, NULL));
}

static void test_ownership_and_roles(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	int64_t jan_line = first_line(f);
	int64_t jan_case = submit(f, jan_line, 201);
	login(f, false, "sofie.janssens@example.be", "sofie-demo-2026");
	char q[32], b[256];
	snprintf(q, sizeof q, "id=%lld", (long long)jan_case);
	assert_int_equal(404, call(f, "GET", "/api/case", q, NULL, NULL));
	assert_int_equal(404, call(f, "GET", "/api/case/record", q, NULL, NULL));
	snprintf(q, sizeof q, "id=%lld", (long long)jan_line);
	assert_int_equal(404, call(f, "GET", "/api/lines/precheck", q, NULL, NULL));
	assert_int_equal(404,
			 call(f, "POST", "/api/invoices/pay", NULL, "{\"invoice_id\":1}", NULL));
	submit(f, jan_line, 404);
	snprintf(b, sizeof b, "{\"case_id\":%lld,\"message\":\"x\"}", (long long)jan_case);
	assert_int_equal(404, call(f, "POST", "/api/case/respond", NULL, b, NULL));
	json_t *j;
	assert_int_equal(200, call(f, "GET", "/api/cases", NULL, NULL, &j));
	assert_int_equal(0, json_array_size(json_object_get(j, "cases")));
	json_decref(j);
	/* customers cannot use the staff API */
	assert_int_equal(403, call(f, "GET", "/api/staff/queue", NULL, NULL, NULL));
	assert_int_equal(403, staff_act(f, "approve", jan_case, NULL));
	/* staff cannot use the customer API; a reviewer is not an admin */
	login(f, true, "reviewer", "review-demo-2026");
	assert_int_equal(403, call(f, "GET", "/api/account", NULL, NULL, NULL));
	assert_int_equal(403, call(f, "POST", "/api/staff/settings", NULL,
				   "{\"final_invoice_policy\":true}", NULL));
	assert_int_equal(200, call(f, "GET", "/api/staff/queue", NULL, NULL, &j));
	json_t *c0 = json_array_get(json_object_get(j, "cases"), 0);
	assert_int_equal(jan_case, json_integer_value(json_object_get(c0, "id")));
	assert_string_equal("Jan Peeters", json_string_value(json_object_get(
					       json_object_get(c0, "customer"), "name")));
	assert_false(json_is_true(json_object_get(json_object_get(c0, "checks"), "can_approve")));
	json_decref(j);
	snprintf(q, sizeof q, "id=%lld", (long long)jan_case);
	assert_int_equal(200, call(f, "GET", "/api/staff/document", q, NULL, NULL));
	login(f, true, "admin", "admin-demo-2026");
	assert_int_equal(200, call(f, "POST", "/api/staff/settings", NULL,
				   "{\"final_invoice_policy\":true}", NULL));
}

/* ---- workflow ------------------------------------------------------------------- */

static uint8_t *delete_notification(struct fx *f, const char *iccid, uint64_t seq, bool corrupt,
				    size_t *len)
{
	struct rsp_notif_metadata m = {.seq = seq, .event = RSP_EVENT_DELETE, .has_iccid = true};
	m.address = strdup("smdp.example");
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, m.iccid));
	EVP_PKEY *k;
	assert_esim(ESIM_OK, crypto_key_load_private_file(p_(f, "euicc.key.pem"), &k));
	size_t el, ml;
	uint8_t *e = test_read(p_(f, "euicc.der"), &el), *u = test_read(p_(f, "eum.der"), &ml);
	uint8_t *out;
	assert_esim(ESIM_OK, rsp_other_notif_build(&m, k, e, el, u, ml, &out, len));
	if (corrupt)
		out[20] ^= 1; /* inside the signed metadata */
	free(m.address);
	free(e);
	free(u);
	EVP_PKEY_free(k);
	return out;
}

/* HandleDownloadProgressInfo point 5 as the SM-DP+ sends it, to the
 * callback handler (callback.c) as its mutual-TLS listener would pass it:
 * with the pinned client certificate (here the PKI's DPtls). */
static int callback(struct fx *f, const char *iccid, const uint8_t *n, size_t len)
{
	static unsigned calls;
	char *b64;
	assert_esim(ESIM_OK, esim_base64_encode(n, len, &b64));
	size_t bl = strlen(b64) + 512;
	char *body = malloc(bl);
	snprintf(body, bl,
		 "{\"header\":{\"functionRequesterIdentifier\":\"smdp.example\","
		 "\"functionCallIdentifier\":\"x%u\"},\"eid\":\"%s\",\"iccid\":\"%s\","
		 "\"profileType\":\"STD\",\"timestamp\":\"2026-11-26T09:00:00Z\","
		 "\"notificationPointId\":5,\"notificationPointStatus\":{\"status\":"
		 "\"Executed-Success\"},\"resultData\":\"%s\"}",
		 calls++, EID, iccid, b64);
	struct op_callback_config cc = {.smdp_id = "smdp.example",
					.smdp_client_cert_file = p_(f, "dptls.pem")};
	op_callback *cb;
	assert_esim(ESIM_OK, op_callback_new(f->o, &cc, &cb));
	net_request req = {.method = "POST",
			   .path = "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
			   .body = (const uint8_t *)body,
			   .body_len = strlen(body),
			   .peer_addr = "127.0.0.1",
			   .tls = true,
			   .has_client_cert = true};
	memcpy(req.client_cert_sha256, op_callback_pin(cb), 32);
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_callback_http(&req, &resp, cb));
	int st = resp.status;
	net_response_clear(&resp);
	op_callback_free(cb);
	free(body);
	free(b64);
	return st;
}

static char *fetch_record(struct fx *f, int64_t id, size_t *len)
{
	struct net_header h[2] = {{"Cookie", f->cookie}};
	char q[32];
	snprintf(q, sizeof q, "id=%lld", (long long)id);
	net_request req = {.method = "GET",
			   .path = "/api/case/record",
			   .query = q,
			   .headers = h,
			   .n_headers = 1,
			   .peer_addr = "192.0.2.7"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, f->o));
	assert_int_equal(200, resp.status);
	char *r = malloc(resp.body.len + 1);
	memcpy(r, resp.body.data, resp.body.len);
	r[resp.body.len] = '\0';
	*len = resp.body.len;
	net_response_clear(&resp);
	return r;
}

/* Re-sign a changed record with the operator key: isolates the proof checks. */
static char *resign(struct fx *f, json_t *doc)
{
	json_t *rec = json_object_get(doc, "record");
	char *canon = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	EVP_PKEY *k;
	assert_esim(ESIM_OK, crypto_key_load_private_file(p_(f, "operator.key.pem"), &k));
	uint8_t sig[CRYPTO_DER_SIG_MAX];
	size_t sl;
	assert_esim(ESIM_OK, crypto_ecdsa_sign_der(k, (uint8_t *)canon, strlen(canon), sig, &sl));
	net_json_set_base64(json_object_get(doc, "signature"), "value", sig, sl);
	EVP_PKEY_free(k);
	free(canon);
	return json_dumps(doc, 0);
}

static void test_workflow(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	json_t *j;
	/* Sofie: a downloaded line; Jan: an open invoice */
	login(f, false, "sofie.janssens@example.be", "sofie-demo-2026");
	int64_t line = first_line(f);
	char q[32];
	snprintf(q, sizeof q, "id=%lld", (long long)line);
	assert_int_equal(200, call(f, "GET", "/api/lines/precheck", q, NULL, &j));
	assert_true(json_is_true(json_object_get(j, "can_submit")));
	assert_int_equal(30, json_integer_value(json_object_get(j, "notice_period_days")));
	assert_int_equal(1, json_array_size(json_object_get(j, "leased_equipment")));
	json_decref(j);
	/* the identity copy is required */
	char nb[256];
	snprintf(nb, sizeof nb,
		 "{\"line_id\":%lld,\"reason\":\"r\",\"document_type\":\"passport\","
		 "\"document_number\":\"EH123\"}",
		 (long long)line);
	assert_int_equal(400, call(f, "POST", "/api/cases", NULL, nb, NULL));
	int64_t cs = submit(f, line, 201);
	submit(f, line, 409);
	assert_string_equal("submitted", case_state(f, cs, false));
	/* staff: ask for information, the customer answers */
	login(f, true, "reviewer", "review-demo-2026");
	assert_int_equal(400, staff_act(f, "request-info", cs, NULL));
	assert_int_equal(200,
			 staff_act(f, "request-info", cs, ",\"message\":\"photo unreadable\""));
	assert_string_equal("needs_info", case_state(f, cs, true));
	assert_int_equal(409, staff_act(f, "approve", cs, NULL));
	login(f, false, "sofie.janssens@example.be", "sofie-demo-2026");
	char rb[200];
	snprintf(
	    rb, sizeof rb,
	    "{\"case_id\":%lld,\"message\":\"new scan\",\"document_copy\":\"/9j/4G5ldyBzY2Fu\"}",
	    (long long)cs);
	assert_int_equal(200, call(f, "POST", "/api/case/respond", NULL, rb, NULL));
	assert_string_equal("in_review", case_state(f, cs, false));
	/* approve: the line is downloaded, so the service stops and we wait */
	login(f, true, "reviewer", "review-demo-2026");
	assert_int_equal(200, staff_act(f, "approve", cs, ",\"note\":\"identity checked\""));
	assert_string_equal("awaiting_deletion", case_state(f, cs, true));
	/* no deletion yet: a reminder only once the time has passed */
	size_t n = 9;
	assert_esim(ESIM_OK, op_tick(f->o, &n));
	assert_int_equal(0, n);
	f->clock += 8 * 86400;
	assert_esim(ESIM_OK, op_tick(f->o, &n));
	assert_int_equal(1, n);
	assert_esim(ESIM_OK, op_tick(f->o, &n));
	assert_int_equal(0, n);
	login(f, true, "reviewer", "review-demo-2026");
	/* forged proofs change nothing: bad signature, other ICCID */
	size_t nl;
	uint8_t *bad = delete_notification(f, SOFIE_ICCID, 7, true, &nl);
	assert_int_equal(422, callback(f, SOFIE_ICCID, bad, nl));
	free(bad);
	uint8_t *other = delete_notification(f, "8932000000000000025", 8, false, &nl);
	assert_int_equal(422, callback(f, SOFIE_ICCID, other, nl));
	free(other);
	assert_string_equal("awaiting_deletion", case_state(f, cs, true));
	/* the real one closes the case and erases the identity copy */
	uint8_t *good = delete_notification(f, SOFIE_ICCID, 9, false, &nl);
	assert_int_equal(204, callback(f, SOFIE_ICCID, good, nl));
	free(good);
	assert_string_equal("closed", case_state(f, cs, true));
	snprintf(q, sizeof q, "id=%lld", (long long)cs);
	assert_int_equal(404, call(f, "GET", "/api/staff/document", q, NULL, NULL));
	/* the customer's view: every event with a reference that checks out */
	login(f, false, "sofie.janssens@example.be", "sofie-demo-2026");
	assert_int_equal(200, call(f, "GET", "/api/case", q, NULL, &j));
	json_t *ev = json_object_get(j, "events");
	assert_true(json_array_size(ev) >= 8);
	const char *states[] = {"submitted",	    "needs_info",      "in_review",
				"approved",	    "service_stopped", "awaiting_deletion",
				"awaiting_deletion"};
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(
		    states[i], json_string_value(json_object_get(json_array_get(ev, i), "state")));
	assert_string_equal("closed", json_string_value(json_object_get(
					  json_array_get(ev, json_array_size(ev) - 1), "state")));
	char ref[64], body[128];
	snprintf(ref, sizeof ref, "%s",
		 json_string_value(json_object_get(json_array_get(ev, 0), "reference")));
	json_decref(j);
	for (char *p = ref; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	snprintf(body, sizeof body, "{\"reference\":\"%s\"}", ref);
	assert_int_equal(200,
			 call_as(f, "POST", "/api/reference/check", NULL, body, NULL, NULL, &j));
	assert_true(json_is_true(json_object_get(j, "genuine")));
	json_decref(j);
	assert_int_equal(200, call_as(f, "POST", "/api/reference/check", NULL,
				      "{\"reference\":\"OP-AAAA-BBBB\"}", NULL, NULL, &j));
	assert_false(json_is_true(json_object_get(j, "genuine")));
	json_decref(j);
	/* the signed record and its verifier */
	size_t rl;
	char *rec = fetch_record(f, cs, &rl);
	char why[160];
	char ci[700];
	snprintf(ci, sizeof ci, "%s", p_(f, "ci.pem"));
	assert_esim(ESIM_OK, op_record_verify((uint8_t *)rec, rl, ci, NULL, why, sizeof why));
	assert_esim(ESIM_OK, op_record_verify((uint8_t *)rec, rl, ci, p_(f, "operator.pem"), why,
					      sizeof why));
	/* pinned to another certificate (the SM-DP+'s): refused */
	assert_true(op_record_verify((uint8_t *)rec, rl, ci, p_(f, "dpauth.pem"), why,
				     sizeof why) != ESIM_OK);
	/* no CI: the proof cannot be checked */
	assert_true(op_record_verify((uint8_t *)rec, rl, NULL, NULL, why, sizeof why) != ESIM_OK);
	char *t = strstr(rec, "identity checked");
	assert_non_null(t);
	t[0] = 'I';
	assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
		    op_record_verify((uint8_t *)rec, rl, ci, NULL, why, sizeof why));
	t[0] = 'i';
	json_t *doc = json_loads(rec, 0, NULL);
	/* wrong ICCID, re-signed by the operator: the proof does not match */
	json_object_set_new(json_object_get(json_object_get(doc, "record"), "line"), "iccid",
			    json_string("8932000000000000025"));
	char *r2 = resign(f, doc);
	assert_esim(ESIM_E_OP_RECORD,
		    op_record_verify((uint8_t *)r2, strlen(r2), ci, NULL, why, sizeof why));
	assert_string_equal("deletion proof is for another ICCID", why);
	free(r2);
	json_object_set_new(json_object_get(json_object_get(doc, "record"), "line"), "iccid",
			    json_string(SOFIE_ICCID));
	r2 = resign(f, doc);
	assert_esim(ESIM_OK,
		    op_record_verify((uint8_t *)r2, strlen(r2), ci, NULL, why, sizeof why));
	free(r2);
	/* tampered deletion proof, re-signed: the eUICC signature fails */
	uint8_t *forged = delete_notification(f, SOFIE_ICCID, 9, true, &nl);
	net_json_set_base64(json_object_get(json_object_get(doc, "record"), "deletion_proof"),
			    "notification", forged, nl);
	free(forged);
	r2 = resign(f, doc);
	assert_true(op_record_verify((uint8_t *)r2, strlen(r2), ci, NULL, why, sizeof why) !=
		    ESIM_OK);
	assert_string_equal("deletion proof: eUICC chain or signature invalid", why);
	free(r2);
	json_decref(doc);
	free(rec);
	/* maildir got the notices */
	char md[700];
	snprintf(md, sizeof md, "ls %s/mail/new | grep -q esim-operator", f->dir);
	assert_int_equal(0, system(md));
}

static void test_open_invoice_rule(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	int64_t cs = submit(f, first_line(f), 201);
	login(f, true, "reviewer", "review-demo-2026");
	json_t *j;
	assert_int_equal(200, staff_act(f, "take", cs, NULL));
	assert_int_equal(409,
			 call(f, "POST", "/api/staff/case/approve", NULL, "{\"case_id\":1}", &j));
	assert_string_equal("open_invoices", json_string_value(json_object_get(j, "message")));
	json_decref(j);
	assert_string_equal("in_review", case_state(f, cs, true));
	/* rejection needs a reason and ends the case */
	assert_int_equal(400, staff_act(f, "reject", cs, NULL));
	assert_int_equal(200, staff_act(f, "reject", cs, ",\"reason\":\"document expired\""));
	assert_string_equal("rejected", case_state(f, cs, true));
	assert_int_equal(409, staff_act(f, "approve", cs, NULL));
	/* a new case; with the final-invoice policy approval goes through and a
	 * line whose profile was never ordered closes at once */
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	int64_t c2 = submit(f, first_line(f), 201);
	assert_esim(ESIM_OK, op_set_setting(f->o, "final_invoice_policy", 1));
	login(f, true, "reviewer", "review-demo-2026");
	assert_int_equal(200, staff_act(f, "approve", c2, NULL));
	assert_string_equal("closed", case_state(f, c2, true));
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	size_t rl;
	char *rec = fetch_record(f, c2, &rl);
	char why[160];
	assert_esim(ESIM_OK, op_record_verify((uint8_t *)rec, rl, NULL, NULL, why, sizeof why));
	free(rec);
}

/* ---- audit ---------------------------------------------------------------------- */

static void sql(struct fx *f, const char *q)
{
	store *s;
	assert_esim(ESIM_OK, store_open(f->db, &s));
	assert_esim(ESIM_OK, store_exec(s, q));
	store_close(s);
}

static void test_audit(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	login(f, false, "jan.peeters@example.be", "jan-demo-2026");
	assert_int_equal(200,
			 call(f, "POST", "/api/invoices/pay", NULL, "{\"invoice_id\":1}", NULL));
	int64_t n = 0, bad = 0;
	assert_esim(ESIM_OK, op_audit_verify(f->o, &n, &bad));
	assert_true(n >= 9);
	/* edit one stored event: detected at that entry */
	sql(f, "UPDATE op_audit SET data = '{\"invoice\":1,\"cents\":1}' WHERE action = "
	       "'invoice.pay'");
	assert_esim(ESIM_E_OP_AUDIT, op_audit_verify(f->o, &n, &bad));
	assert_true(bad > 0);
	op_close(f->o); /* a fresh handle sees the same */
	open_op(f);
	assert_esim(ESIM_E_OP_AUDIT, op_audit_verify(f->o, &n, &bad));
	/* an edited actor or time, too */
	sql(f, "UPDATE op_audit SET data = (SELECT data FROM op_audit WHERE id = 1) WHERE id = 1");
	assert_esim(ESIM_E_OP_AUDIT, op_audit_verify(f->o, &n, &bad));
}

static void test_audit_removal(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	int64_t n = 0, bad = 0;
	assert_esim(ESIM_OK, op_audit_verify(f->o, &n, &bad));
	int64_t total = n;
	/* remove the last entry: the signed head's count no longer matches */
	sql(f, "DELETE FROM op_audit WHERE id = (SELECT MAX(id) FROM op_audit)");
	assert_esim(ESIM_E_OP_AUDIT, op_audit_verify(f->o, &n, &bad));
	assert_int_equal(total - 1, n);
	assert_int_equal(0, bad);
	/* and one in the middle: the chain breaks there */
	sql(f, "DELETE FROM op_audit WHERE id = 3");
	assert_esim(ESIM_E_OP_AUDIT, op_audit_verify(f->o, &n, &bad));
	assert_int_equal(4, bad);
	/* rewriting the head without the key is detected too */
	sql(f, "UPDATE op_audit_head SET count = count - 1");
	assert_esim(ESIM_E_OP_AUDIT, op_audit_verify(f->o, &n, &bad));
}

static void test_audit_actor_edit(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_PG(f);
	int64_t n = 0, bad = 0;
	sql(f, "UPDATE op_audit SET actor = 'someone' WHERE id = 2");
	assert_esim(ESIM_E_OP_AUDIT, op_audit_verify(f->o, &n, &bad));
	assert_int_equal(2, bad);
}

#define BOTH(t)                                                                                    \
	cmocka_unit_test_setup_teardown(t, setup_sqlite, teardown),                                \
	    cmocka_unit_test_setup_teardown(t, setup_pg, teardown)

int main(void)
{
	pki_dir = test_mkdtemp();
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "%s/esim-pki init %s/pki --eid %s >/dev/null", test_bin_dir(),
		 pki_dir, EID);
	if (system(cmd) != 0) {
		fprintf(stderr, "esim-pki init failed\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    BOTH(test_session_and_csrf),    BOTH(test_login_limits),
	    BOTH(test_ownership_and_roles), BOTH(test_workflow),
	    BOTH(test_open_invoice_rule),   BOTH(test_audit),
	    BOTH(test_audit_removal),	    BOTH(test_audit_actor_edit),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (pg_rc == 0)
		pg_stop(&pg);
	/* the SQLite cases ran; without their PostgreSQL half the run is a skip
	 * (or a failure under CI=true), never a pass */
	if (rc == 0 && pg_rc == TEST_SKIP_CODE)
		rc = test_component_missing_status("PostgreSQL", pg.why);
	test_rm_rf(pki_dir);
	free(pki_dir);
	return rc;
}
