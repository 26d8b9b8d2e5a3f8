/*
 * The SM-DP+'s ES2+ HandleDownloadProgressInfo callbacks (SGP.22 5.3.5)
 * reach the operator only on their own listener, over mutual TLS pinned to
 * the SM-DP+'s client certificate, and change nothing on the SM-DP+'s word
 * alone: the activation needs the eUICC-signed ProfileInstallationResult,
 * the close the eUICC-signed delete notification. Everything runs on the
 * real net_server over TLS on loopback, with certificates made by the real
 * `esim-pki`; the last test drives a real esim-smdp whose outbox delivers
 * the callbacks after a download by the virtual eUICC.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/operator.h"
#include "esim/rsp.h"
#include "esim/rsp_es10.h"
#include "esim/store.h"
#include "euicc/euicc.h"
#include "lpa_driver.h"
#include "testutil.h"

extern char **environ;

#define EID    "89049032123451234512345678901235"
#define ICCID  "8932000000000000105"
#define SMDPID "smdp.test.example"
#define CBPATH "/gsma/rsp2/es2plus/handleDownloadProgressInfo"
/* "%PDF-1.4\n%identity copy\n%%EOF\n": an identity copy the portal accepts */
#define DOC "JVBERi0xLjQKJWlkZW50aXR5IGNvcHkKJSVFT0YK"

struct fx {
	char *dir;
	char pki[600];
	char f[12][700]; /* see F_* */
	op *o;
	op_callback *cb;
	net_server *srv;
	int lportal, lcb;
	unsigned calls;
};
enum {
	F_CI,
	F_CBTLS,
	F_CBKEY,
	F_SMDP,
	F_SMDPKEY,
	F_OTHER,
	F_OTHERKEY,
	F_EUICC,
	F_EUICCKEY,
	F_EUM,
	F_DB,
	F_DPAUTHKEY
};

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		print_error("command failed (%d): %s\n", rc, cmd);
	assert_int_equal(0, rc);
}

/* The PKI: esim-pki init, the operator's callback TLS identity (a
 * certificate naming 127.0.0.1 under the CI) and the SM-DP+'s callback
 * client certificate (pinned by the operator). */
static void make_pki(struct fx *x)
{
	x->dir = test_mkdtemp();
	const char *bin = test_bin_dir();
	snprintf(x->pki, sizeof x->pki, "%s/pki/nist", x->dir);
	run("%s/esim-pki init %s/pki --eid %s --curve nist >/dev/null", bin, x->dir, EID);
	run("%s/esim-pki issue dptls --out %s/opcb --issuer-cert %s/ci.pem --issuer-key "
	    "%s/ci.key.pem --host 127.0.0.1 --cn 'ACME ES2+ callbacks' >/dev/null 2>&1",
	    bin, x->dir, x->pki, x->pki);
	run("%s/esim-pki issue operator --out %s/smdpcb --issuer-cert %s/ci.pem --issuer-key "
	    "%s/ci.key.pem --cn 'SM-DP+ callbacks' >/dev/null 2>&1",
	    bin, x->dir, x->pki, x->pki);
	snprintf(x->f[F_CI], 700, "%s/ci.pem", x->pki);
	snprintf(x->f[F_CBTLS], 700, "%s/opcb.pem", x->dir);
	snprintf(x->f[F_CBKEY], 700, "%s/opcb.key.pem", x->dir);
	snprintf(x->f[F_SMDP], 700, "%s/smdpcb.pem", x->dir);
	snprintf(x->f[F_SMDPKEY], 700, "%s/smdpcb.key.pem", x->dir);
	/* valid under the same CI, but not the pinned one */
	snprintf(x->f[F_OTHER], 700, "%s/operator.pem", x->pki);
	snprintf(x->f[F_OTHERKEY], 700, "%s/operator.key.pem", x->pki);
	snprintf(x->f[F_EUICC], 700, "%s/euicc.der", x->pki);
	snprintf(x->f[F_EUICCKEY], 700, "%s/euicc.key.pem", x->pki);
	snprintf(x->f[F_EUM], 700, "%s/eum.der", x->pki);
	snprintf(x->f[F_DB], 700, "%s/op.db", x->dir);
	snprintf(x->f[F_DPAUTHKEY], 700, "%s/dpauth.key.pem", x->pki);
}

static void open_op(struct fx *x, const char *smdp_url, const char *smdp_id)
{
	char dk[700], key[700], cert[700];
	snprintf(dk, sizeof dk, "%s/data.key", x->dir);
	snprintf(key, sizeof key, "%s/operator.key.pem", x->pki);
	snprintf(cert, sizeof cert, "%s/operator.pem", x->pki);
	struct op_config cfg = {.db = x->f[F_DB],
				.key_file = key,
				.cert_file = cert,
				.ci_file = x->f[F_CI],
				.data_key_file = dk,
				.smdp_url = smdp_url,
				.smdp_ca = x->f[F_CI],
				.name = "ACME",
				.profile_type = "STD",
				.fast_hash = true};
	assert_esim(ESIM_OK, op_open(&cfg, &x->o));
	assert_esim(ESIM_OK, op_seed_demo(x->o));
	struct op_callback_config cc = {.smdp_id = smdp_id, .smdp_client_cert_file = x->f[F_SMDP]};
	assert_esim(ESIM_OK, op_callback_new(x->o, &cc, &x->cb));
	assert_esim(ESIM_OK, net_server_new(NULL, &x->srv));
	struct net_listener_config lp = {.address = "127.0.0.1"};
	assert_esim(ESIM_OK, net_server_add_listener(x->srv, &lp, &x->lportal));
	assert_esim(ESIM_OK, op_add_routes(x->o, x->srv, x->lportal));
	uint8_t pin[1][32];
	memcpy(pin[0], op_callback_pin(x->cb), 32);
	struct net_listener_config lc = {.address = "127.0.0.1",
					 .tls = true,
					 .cert_chain_file = x->f[F_CBTLS],
					 .key_file = x->f[F_CBKEY],
					 .client_auth = NET_CLIENT_AUTH_REQUIRE,
					 .client_pins = (const uint8_t(*)[32])pin,
					 .n_client_pins = 1};
	assert_esim(ESIM_OK, net_server_add_listener(x->srv, &lc, &x->lcb));
	assert_esim(ESIM_OK, op_callback_add_routes(x->cb, x->srv, x->lcb));
	assert_esim(ESIM_OK, net_server_start(x->srv));
}

static void close_fx(struct fx *x)
{
	net_server_free(x->srv);
	op_callback_free(x->cb);
	op_close(x->o);
	test_rm_rf(x->dir);
	free(x->dir);
}

/* ---- the database, read beside the service ----------------------------------- */

static void sql_text(struct fx *x, const char *sql, const char *arg, char *out, size_t n)
{
	store *s;
	assert_esim(ESIM_OK, store_open(x->f[F_DB], &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	if (arg)
		store_bind_text(st, 1, arg);
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	const char *t = row ? store_col_text(st, 0) : NULL;
	snprintf(out, n, "%s", t ? t : "(null)");
	store_finalize(st);
	store_close(s);
}

static void sql_exec(struct fx *x, const char *sql)
{
	store *s;
	assert_esim(ESIM_OK, store_open(x->f[F_DB], &s));
	assert_esim(ESIM_OK, store_exec(s, sql));
	store_close(s);
}

static const char *line_state(struct fx *x)
{
	static char b[64];
	sql_text(x, "SELECT state || '/' || COALESCE(eid, '-') FROM op_lines WHERE id = 1", NULL, b,
		 sizeof b);
	return b;
}

static int audit_count(struct fx *x, const char *action)
{
	char b[32];
	sql_text(x, "SELECT CAST(COUNT(*) AS TEXT) FROM op_audit WHERE action = ?1", action, b,
		 sizeof b);
	return atoi(b);
}

/* ---- building callbacks ---------------------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *n)
{
	uint8_t *p = NULL;
	assert_esim(ESIM_OK, esim_read_file(path, 1 << 16, &p, n));
	return p;
}

/* A PIR (success) for iccid, seqNumber seq, signed with key_file. */
static void make_pir(const char *iccid, uint64_t seq, const char *key_file, uint8_t **out,
		     size_t *len)
{
	EVP_PKEY *k;
	assert_esim(ESIM_OK, crypto_key_load_private_file(key_file, &k));
	struct rsp_pir pir;
	memset(&pir, 0, sizeof pir);
	pir.txid.len = 16;
	memset(pir.txid.b, 0x5a, 16);
	pir.meta.seq = seq;
	pir.meta.event = RSP_EVENT_INSTALL;
	pir.meta.address = (char *)SMDPID;
	pir.meta.has_iccid = true;
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, pir.meta.iccid));
	pir.success = true;
	pir.aid_len = 16;
	memset(pir.aid, 0xa0, 16);
	assert_esim(ESIM_OK, rsp_pir_build(&pir, k, out, len));
	EVP_PKEY_free(k);
}

/* A delete notification (OtherSignedNotification) for iccid, signed with
 * key_file, carrying the PKI's CERT.EUICC and CERT.EUM. */
static void make_delete(struct fx *x, const char *iccid, uint64_t seq, const char *key_file,
			uint8_t **out, size_t *len)
{
	EVP_PKEY *k;
	assert_esim(ESIM_OK, crypto_key_load_private_file(key_file, &k));
	struct rsp_notif_metadata m = {
	    .seq = seq, .event = RSP_EVENT_DELETE, .address = (char *)SMDPID, .has_iccid = true};
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, m.iccid));
	size_t el, ml;
	uint8_t *e = read_all(x->f[F_EUICC], &el), *u = read_all(x->f[F_EUM], &ml);
	assert_esim(ESIM_OK, rsp_other_notif_build(&m, k, e, el, u, ml, out, len));
	free(e);
	free(u);
	EVP_PKEY_free(k);
}

/* The JSON body of one callback (malloc'd). result may be NULL; chain:
 * add the PKI's eUICC and EUM certificates. */
static char *cb_body(struct fx *x, const char *fri, const char *callid, const char *iccid,
		     const char *eid, int point, const char *status, const uint8_t *result,
		     size_t rl, bool chain)
{
	char cid[32];
	if (!callid) {
		snprintf(cid, sizeof cid, "call-%u", x->calls++);
		callid = cid;
	}
	json_t *j =
	    json_pack("{s:{s:s,s:s},s:s,s:s,s:s,s:i,s:{s:s}}", "header",
		      "functionRequesterIdentifier", fri, "functionCallIdentifier", callid, "iccid",
		      iccid, "profileType", "STD", "timestamp", "2026-01-01T00:00:00Z",
		      "notificationPointId", point, "notificationPointStatus", "status", status);
	assert_non_null(j);
	if (eid)
		json_object_set_new(j, "eid", json_string(eid));
	if (result)
		net_json_set_base64(j, "resultData", result, rl);
	if (chain) {
		size_t el, ml;
		uint8_t *e = read_all(x->f[F_EUICC], &el), *u = read_all(x->f[F_EUM], &ml);
		net_json_set_base64(j, "euiccCertificate", e, el);
		net_json_set_base64(j, "eumCertificate", u, ml);
		free(e);
		free(u);
	}
	char *t = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return t;
}

/* POST body to the callback listener with the client certificate cert
 * (NULL: none); the HTTP status, or -1 when no HTTP exchange took place. */
static int post_cb(struct fx *x, const char *cert, const char *key, const char *body)
{
	struct net_client_config cc = {.ca_file = x->f[F_CI],
				       .client_cert_file = cert,
				       .client_key_file = key,
				       .timeout_ms = 10000};
	net_client *c;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char url[128];
	snprintf(url, sizeof url, "https://127.0.0.1:%u%s", net_server_port(x->srv, x->lcb),
		 CBPATH);
	struct net_client_response r;
	esim_err err = net_client_post_json(c, url, body, strlen(body), &r);
	int st = (err == ESIM_OK || err == ESIM_E_NET_HTTP_STATUS) ? r.status : -1;
	net_client_response_clear(&r);
	net_client_free(c);
	return st;
}

static int post(struct fx *x, const char *body)
{
	return post_cb(x, x->f[F_SMDP], x->f[F_SMDPKEY], body);
}

/* ---- the portal, as a customer and a reviewer (op_http in-process) ---------------- */

static int call(op *o, const char *method, const char *path, const char *body, const char *cookie,
		const char *csrf, char *cookie_out, char *csrf_out)
{
	struct net_header h[2];
	size_t nh = 0;
	if (cookie)
		h[nh++] = (struct net_header){"Cookie", cookie};
	if (csrf)
		h[nh++] = (struct net_header){"X-CSRF-Token", csrf};
	net_request req = {.method = method,
			   .path = path,
			   .headers = h,
			   .n_headers = nh,
			   .body = (const uint8_t *)body,
			   .body_len = body ? strlen(body) : 0,
			   .peer_addr = "127.0.0.1"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, o));
	for (size_t i = 0; cookie_out && i < resp.n_headers; i++)
		if (!strcmp(resp.headers[i].name, "Set-Cookie"))
			snprintf(cookie_out, 128, "%.*s", (int)strcspn(resp.headers[i].value, ";"),
				 resp.headers[i].value);
	if (csrf_out) {
		json_t *j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
		snprintf(csrf_out, 80, "%s", json_string_value(json_object_get(j, "csrf")));
		json_decref(j);
	}
	int st = resp.status;
	net_response_clear(&resp);
	return st;
}

/* Jan pays, asks to end line 1, a reviewer approves: the case waits for
 * the deletion (case 1). */
static void terminate_line(op *o)
{
	char cookie[128], csrf[80];
	assert_int_equal(
	    200, call(o, "POST", "/api/login",
		      "{\"login\":\"jan.peeters@example.be\",\"password\":\"jan-demo-2026\"}", NULL,
		      NULL, cookie, csrf));
	assert_int_equal(200, call(o, "POST", "/api/invoices/pay", "{\"invoice_id\":1}", cookie,
				   csrf, NULL, NULL));
	assert_int_equal(201,
			 call(o, "POST", "/api/cases",
			      "{\"line_id\":1,\"reason\":\"moving abroad\",\"document_type\":"
			      "\"passport\",\"document_number\":\"EH123456\",\"document_copy\":"
			      "\"" DOC "\",\"document_mime\":\"application/pdf\"}",
			      cookie, csrf, NULL, NULL));
	assert_int_equal(200, call(o, "POST", "/api/staff/login",
				   "{\"login\":\"reviewer\",\"password\":\"review-demo-2026\"}",
				   NULL, NULL, cookie, csrf));
	assert_int_equal(200, call(o, "POST", "/api/staff/case/approve", "{\"case_id\":1}", cookie,
				   csrf, NULL, NULL));
}

/* The signed termination record of case 1, as Jan downloads it. */
static char *get_record(op *o)
{
	char cookie[128], csrf[80];
	assert_int_equal(
	    200, call(o, "POST", "/api/login",
		      "{\"login\":\"jan.peeters@example.be\",\"password\":\"jan-demo-2026\"}", NULL,
		      NULL, cookie, csrf));
	struct net_header h = {"Cookie", cookie};
	net_request req = {.method = "GET",
			   .path = "/api/case/record",
			   .query = "id=1",
			   .headers = &h,
			   .n_headers = 1,
			   .peer_addr = "127.0.0.1"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, o));
	assert_int_equal(resp.status, 200);
	char *t = strndup((const char *)resp.body.data, resp.body.len);
	net_response_clear(&resp);
	return t;
}

static const char *case_state(struct fx *x)
{
	static char b[64];
	sql_text(x, "SELECT state FROM op_cases WHERE id = 1", NULL, b, sizeof b);
	return b;
}

/* ---- tests -------------------------------------------------------------------------- */

/* Jan's line 1 ordered with ICCID, as after op_order_esim. */
static void fx_ordered(struct fx *x)
{
	make_pki(x);
	open_op(x, NULL, SMDPID);
	sql_exec(x, "UPDATE op_lines SET iccid = '" ICCID "', matching_id = 'MID-1' WHERE id = 1");
	assert_string_equal(line_state(x), "ordered/-");
}

static void test_not_on_portal(void **state)
{
	(void)state;
	struct fx x = {0};
	fx_ordered(&x);
	/* the callback path is no route of the portal's listener: 404 and
	 * nothing changes, the body being a perfect activation */
	uint8_t *pir;
	size_t pl;
	make_pir(ICCID, 1, x.f[F_EUICCKEY], &pir, &pl);
	char *b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	struct net_client_config cc = {.ca_file = x.f[F_CI], .timeout_ms = 10000};
	net_client *c;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", net_server_port(x.srv, x.lportal),
		 CBPATH);
	struct net_client_response r;
	net_client_post_json(c, url, b, strlen(b), &r);
	assert_int_equal(r.status, 404);
	net_client_response_clear(&r);
	net_client_free(c);
	/* and op_http (the portal's handler) does not know it either */
	net_request req = {.method = "POST",
			   .path = CBPATH,
			   .body = (const uint8_t *)b,
			   .body_len = strlen(b),
			   .peer_addr = "127.0.0.1"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, x.o));
	assert_int_equal(resp.status, 404);
	net_response_clear(&resp);
	assert_string_equal(line_state(&x), "ordered/-");
	free(b);
	free(pir);
	close_fx(&x);
}

static void test_caller_authenticated(void **state)
{
	(void)state;
	struct fx x = {0};
	fx_ordered(&x);
	uint8_t *pir;
	size_t pl;
	make_pir(ICCID, 1, x.f[F_EUICCKEY], &pir, &pl);
	char *b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	/* no client certificate: the handshake fails */
	assert_int_equal(post_cb(&x, NULL, NULL, b), -1);
	/* a certificate valid under the same CI but not the pinned one */
	int st = post_cb(&x, x.f[F_OTHER], x.f[F_OTHERKEY], b);
	assert_true(st == -1 || st == 403);
	assert_string_equal(line_state(&x), "ordered/-");
	free(b);
	/* the pinned certificate, but another functionRequesterIdentifier */
	b = cb_body(&x, "evil.example", NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 403);
	assert_string_equal(line_state(&x), "ordered/-");
	assert_int_equal(audit_count(&x, "download.installed"), 0);
	free(b);
	/* the handler itself refuses a request without the pinned
	 * certificate, whatever listener it is routed on */
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	net_request req = {.method = "POST",
			   .path = CBPATH,
			   .body = (const uint8_t *)b,
			   .body_len = strlen(b),
			   .peer_addr = "127.0.0.1"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_callback_http(&req, &resp, x.cb));
	assert_int_equal(resp.status, 403);
	net_response_clear(&resp);
	assert_string_equal(line_state(&x), "ordered/-");
	/* and with it, the activation goes through */
	assert_int_equal(post(&x, b), 204);
	assert_string_equal(line_state(&x), "active/" EID);
	free(b);
	free(pir);
	close_fx(&x);
}

static void test_lines_matched(void **state)
{
	(void)state;
	struct fx x = {0};
	fx_ordered(&x);
	char other_iccid[] = "8932000000000000999";
	uint8_t *pir;
	size_t pl;
	/* an ICCID no line of ours has: 404, nothing changes (Sofie's line,
	 * another ICCID, stays as it was) */
	char before[64];
	sql_text(&x, "SELECT state || COALESCE(eid, '-') FROM op_lines WHERE id = 2", NULL, before,
		 sizeof before);
	make_pir(other_iccid, 1, x.f[F_EUICCKEY], &pir, &pl);
	char *b = cb_body(&x, SMDPID, NULL, other_iccid, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 404);
	free(b);
	free(pir);
	char after[64];
	sql_text(&x, "SELECT state || COALESCE(eid, '-') FROM op_lines WHERE id = 2", NULL, after,
		 sizeof after);
	assert_string_equal(before, after);
	assert_string_equal(line_state(&x), "ordered/-");
	/* a line of ours that is not waiting for a download (Sofie's,
	 * active, ICCID 8932000000000000017): 409 */
	b = cb_body(&x, SMDPID, NULL, "8932000000000000017", EID, 3, "Executed-Success", NULL, 0,
		    false);
	sql_exec(&x, "UPDATE op_lines SET state = 'terminated' WHERE id = 2");
	assert_int_equal(post(&x, b), 409);
	free(b);
	/* point 3 "success" alone, or a point 4 "success" without a PIR:
	 * the line is not activated */
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 3, "Executed-Success", NULL, 0, false);
	assert_int_equal(post(&x, b), 204);
	free(b);
	assert_string_equal(line_state(&x), "ordered/-");
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", NULL, 0, false);
	assert_int_equal(post(&x, b), 422);
	free(b);
	assert_string_equal(line_state(&x), "ordered/-");
	/* a PIR without the certificates to check it, and one signed by
	 * another key than CERT.EUICC's: not activated */
	make_pir(ICCID, 2, x.f[F_EUICCKEY], &pir, &pl);
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, false);
	assert_int_equal(post(&x, b), 422);
	free(b);
	free(pir);
	make_pir(ICCID, 3, x.f[F_DPAUTHKEY], &pir, &pl);
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 422);
	free(b);
	free(pir);
	/* a valid PIR of another ICCID sent for ours */
	make_pir(other_iccid, 4, x.f[F_EUICCKEY], &pir, &pl);
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 422);
	free(b);
	free(pir);
	assert_string_equal(line_state(&x), "ordered/-");
	assert_int_equal(audit_count(&x, "download.installed"), 0);
	/* the line bound to another EID: an EID that differs is refused */
	sql_exec(&x, "UPDATE op_lines SET eid = '89049032123451234512345678999999' WHERE id = 1");
	make_pir(ICCID, 5, x.f[F_EUICCKEY], &pir, &pl);
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 409);
	free(b);
	/* ... also when the body names no EID (the PIR's signer is another) */
	b = cb_body(&x, SMDPID, NULL, ICCID, NULL, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 409);
	free(b);
	assert_string_equal(line_state(&x), "ordered/89049032123451234512345678999999");
	sql_exec(&x, "UPDATE op_lines SET eid = NULL WHERE id = 1");
	/* and the genuine PIR activates it, binding the signer's EID; the
	 * audit names the authenticated certificate, not "smdp" */
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 204);
	free(b);
	free(pir);
	assert_string_equal(line_state(&x), "active/" EID);
	char actor[80];
	sql_text(&x, "SELECT actor FROM op_audit WHERE action = 'download.installed'", NULL, actor,
		 sizeof actor);
	assert_string_equal(actor, op_callback_actor(x.cb));
	/* the SHA-256 of the pinned certificate's DER, its first 16 digits */
	crypto_cert *c;
	assert_esim(ESIM_OK, crypto_cert_load_file(x.f[F_SMDP], &c));
	size_t dl;
	const uint8_t *der = crypto_cert_der(c, &dl);
	uint8_t md[32];
	unsigned ml;
	EVP_Digest(der, dl, md, &ml, EVP_sha256(), NULL);
	crypto_cert_free(c);
	char want[40];
	snprintf(want, sizeof want, "smdp:%02x%02x%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2],
		 md[3], md[4], md[5], md[6], md[7]);
	assert_string_equal(actor, want);
	sql_text(&x, "SELECT CAST(COUNT(*) AS TEXT) FROM op_audit WHERE actor = 'smdp'", NULL,
		 actor, sizeof actor);
	assert_string_equal(actor, "0");
	close_fx(&x);
}

static void test_replays_and_deletion(void **state)
{
	(void)state;
	struct fx x = {0};
	fx_ordered(&x);
	uint8_t *pir;
	size_t pl;
	make_pir(ICCID, 7, x.f[F_EUICCKEY], &pir, &pl);
	char *b = cb_body(&x, SMDPID, "hdpi-1", ICCID, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 204);
	/* the same call resent: the same answer, applied once */
	assert_int_equal(post(&x, b), 204);
	assert_int_equal(audit_count(&x, "download.installed"), 1);
	free(b);
	/* the same identifier with another body: refused */
	b = cb_body(&x, SMDPID, "hdpi-1", ICCID, EID, 3, "Executed-Success", NULL, 0, false);
	assert_int_equal(post(&x, b), 409);
	free(b);
	/* the same PIR (seqNumber 7) under a new identifier: not applied again */
	sql_exec(&x, "UPDATE op_lines SET state = 'ordered' WHERE id = 1");
	b = cb_body(&x, SMDPID, "hdpi-2", ICCID, EID, 4, "Executed-Success", pir, pl, true);
	assert_int_equal(post(&x, b), 204);
	free(b);
	free(pir);
	assert_string_equal(line_state(&x), "ordered/" EID);
	assert_int_equal(audit_count(&x, "download.installed"), 1);
	assert_int_equal(audit_count(&x, "notification.replayed"), 1);
	sql_exec(&x, "UPDATE op_lines SET state = 'active' WHERE id = 1");

	/* the termination: the case waits for the deletion */
	terminate_line(x.o);
	assert_string_equal(case_state(&x), "awaiting_deletion");
	/* a delete notification with a bad eUICC signature: refused, the case
	 * and the line stay */
	uint8_t *del;
	size_t dlen;
	make_delete(&x, ICCID, 8, x.f[F_DPAUTHKEY], &del, &dlen);
	b = cb_body(&x, SMDPID, NULL, ICCID, EID, 5, "Executed-Success", del, dlen, false);
	assert_int_equal(post(&x, b), 422);
	free(b);
	free(del);
	assert_string_equal(case_state(&x), "awaiting_deletion");
	assert_string_equal(line_state(&x), "stopped/" EID);
	/* a genuine one closes the case, once: resent, and again under a new
	 * identifier, it changes nothing */
	make_delete(&x, ICCID, 9, x.f[F_EUICCKEY], &del, &dlen);
	b = cb_body(&x, SMDPID, "hdpi-del", ICCID, EID, 5, "Executed-Success", del, dlen, false);
	assert_int_equal(post(&x, b), 204);
	assert_string_equal(case_state(&x), "closed");
	assert_string_equal(line_state(&x), "terminated/" EID);
	assert_int_equal(post(&x, b), 204);
	free(b);
	b = cb_body(&x, SMDPID, "hdpi-del2", ICCID, EID, 5, "Executed-Success", del, dlen, false);
	assert_int_equal(post(&x, b), 204);
	free(b);
	free(del);
	char n[16];
	sql_text(&x, "SELECT CAST(COUNT(*) AS TEXT) FROM op_case_events WHERE state = 'closed'",
		 NULL, n, sizeof n);
	assert_string_equal(n, "1");
	assert_int_equal(audit_count(&x, "deletion.verified"), 1);
	char actor[80];
	sql_text(&x, "SELECT actor FROM op_case_events WHERE state = 'closed'", NULL, actor,
		 sizeof actor);
	assert_string_equal(actor, op_callback_actor(x.cb));
	int64_t cnt, bad;
	assert_esim(ESIM_OK, op_audit_verify(x.o, &cnt, &bad));
	close_fx(&x);
}

/* ---- the real SM-DP+ ------------------------------------------------------------- */

static uint16_t free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(0, bind(s, (struct sockaddr *)&a, sizeof a));
	socklen_t l = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &l);
	close(s);
	return ntohs(a.sin_port);
}

static bool port_open(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
	close(s);
	return ok;
}

static esim_err es10(void *ctx, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	return euicc_es10(ctx, cmd, len, resp);
}

static bool wait_for(struct fx *x, const char *(*what)(struct fx *), const char *want)
{
	for (int i = 0; i < 300; i++) {
		if (!strcmp(what(x), want))
			return true;
		usleep(100000);
	}
	print_error("waited for %s, have %s\n", want, what(x));
	return false;
}

/* The outbox of a real esim-smdp delivers to the mutual-TLS listener: a
 * download by the virtual eUICC activates the line (its PIR verified), the
 * forwarded delete notification closes the case. */
static void test_real_smdp(void **state)
{
	(void)state;
	struct fx x = {0};
	make_pki(&x);
	const char *bin = test_bin_dir();
	uint16_t es9 = free_port(), es2 = free_port();
	while (es2 == es9)
		es2 = free_port();
	char url[128], fqdn[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%u", es2);
	snprintf(fqdn, sizeof fqdn, "127.0.0.1:%u", es9);
	open_op(&x, url, fqdn);
	const char *p = x.pki;
	char conf[700], tpl[700];
	snprintf(conf, sizeof conf, "%s/smdp.conf", x.dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = sqlite:%s/smdp.db\nfqdn = %s\ndpauth-cert-nist = %s/dpauth.pem\n"
		"dpauth-key-nist = %s/dpauth.key.pem\ndppb-cert-nist = %s/dppb.pem\n"
		"dppb-key-nist = %s/dppb.key.pem\nci = %s/ci.pem\nlisten-nist = 127.0.0.1:%u\n"
		"tls-cert-nist = %s/dptls.pem\ntls-key-nist = %s/dptls.key.pem\n"
		"listen-es2 = 127.0.0.1:%u\nes2-cert = %s/dptls.pem\nes2-key = %s/dptls.key.pem\n"
		"operator-ca = %s/ci.pem\ncallback-client-cert = %s\ncallback-client-key = %s\n",
		x.dir, fqdn, p, p, p, p, p, es9, p, p, es2, p, p, p, x.f[F_SMDP], x.f[F_SMDPKEY]);
	fclose(f);
	snprintf(tpl, sizeof tpl, "%s/tpl.der", x.dir);
	run("%s/esim-operator demo-template %s", bin, tpl);
	run("%s/esim-smdp add-operator --config %s ACME %s/operator.pem "
	    "https://127.0.0.1:%u%s >/dev/null",
	    bin, conf, p, net_server_port(x.srv, x.lcb), CBPATH);
	run("%s/esim-smdp add-type --config %s STD ACME %s ACME 'ACME 5G' >/dev/null", bin, conf,
	    tpl);
	run("printf '" ICCID ",206010000000105\\n' > %s/batch.csv && %s/esim-smdp import --config "
	    "%s STD %s/batch.csv >/dev/null",
	    x.dir, bin, conf, x.dir);
	char smdp_bin[600], logp[700];
	snprintf(smdp_bin, sizeof smdp_bin, "%s/esim-smdp", bin);
	snprintf(logp, sizeof logp, "%s/smdp.log", x.dir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	char *argv[] = {smdp_bin, "serve", "--config", conf, "--log", "1", NULL};
	pid_t pid;
	assert_int_equal(0, posix_spawn(&pid, smdp_bin, &fa, NULL, argv, environ));
	posix_spawn_file_actions_destroy(&fa);
	bool up = false;
	for (int i = 0; i < 300 && !up; i++) {
		up = port_open(es2) && port_open(es9);
		if (!up)
			usleep(100000);
	}
	assert_true(up);

	/* ES2+ order, then the download by the virtual eUICC over ES9+ */
	char ac[512];
	assert_esim(ESIM_OK, op_order_esim(x.o, "jan.peeters@example.be", ac, sizeof ac));
	const char *mid = strrchr(ac, '$') + 1;
	char p2[3][700];
	snprintf(p2[0], 700, "%s/ci.der", p);
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = ":memory:";
	ec.identities[0].cert_path = x.f[F_EUICC];
	ec.identities[0].key_path = x.f[F_EUICCKEY];
	ec.identities[0].eum_path = x.f[F_EUM];
	ec.n_identities = 1;
	ec.ci_paths[0] = p2[0];
	ec.n_ci_paths = 1;
	euicc *e;
	assert_esim(ESIM_OK, euicc_open(&ec, &e));
	struct net_client_config lcfg = {.ca_file = x.f[F_CI]};
	net_client *cli;
	assert_esim(ESIM_OK, net_client_new(&lcfg, &cli));
	char base[96];
	snprintf(base, sizeof base, "https://%s", fqdn);
	struct lpa_http h = {cli, base};
	struct lpa_driver drv = {es10, e, lpa_es9_http, &h, fqdn};
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	/* the outbox brings points 3 and 4 with the PIR and CERT.EUICC */
	assert_true(wait_for(&x, line_state, "active/" EID));
	assert_int_equal(audit_count(&x, "download.installed"), 1);

	/* the termination, then the profile's deletion on the eUICC, whose
	 * notification the LPA sends to the SM-DP+, which forwards it */
	terminate_line(x.o);
	assert_string_equal(case_state(&x), "awaiting_deletion");
	struct rsp_profile_ref ref = {0};
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(ICCID, ref.iccid));
	uint8_t *cmd;
	size_t cl;
	assert_esim(ESIM_OK, rsp_delete_profile_req(&ref, &cmd, &cl));
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, euicc_es10(e, cmd, cl, &resp));
	free(cmd);
	esim_buf_free(&resp);
	size_t sent = 0;
	assert_esim(ESIM_OK, lpa_send_notifications(&drv, &sent));
	assert_true(sent >= 1);
	assert_true(wait_for(&x, case_state, "closed"));
	assert_string_equal(line_state(&x), "terminated/" EID);
	char *rec = get_record(x.o);
	char why[160];
	char opcert[700];
	snprintf(opcert, sizeof opcert, "%s/operator.pem", p);
	assert_esim(ESIM_OK, op_record_verify((const uint8_t *)rec, strlen(rec), x.f[F_CI], opcert,
					      why, sizeof why));
	free(rec);
	net_client_free(cli);
	euicc_close(e);
	kill(pid, SIGTERM);
	int status;
	waitpid(pid, &status, 0);
	close_fx(&x);
}

/* The callback tables are the operator's schema (migration 3), there as
 * soon as the handle is open, before any callback listener; op_tick forgets
 * call identifiers older than the retention (30 days) and keeps the others
 * (and every applied notification, so a replay stays refused). */
static void test_calls_migrated_and_pruned(void **state)
{
	(void)state;
	struct fx x = {0};
	make_pki(&x);
	char dk[700];
	snprintf(dk, sizeof dk, "%s/data.key", x.dir);
	struct op_config plain = {.db = x.f[F_DB], .data_key_file = dk, .fast_hash = true};
	op *o;
	assert_esim(ESIM_OK, op_open(&plain, &o));
	op_close(o);
	char b[64];
	sql_text(&x, "SELECT CAST(COUNT(*) AS TEXT) FROM op_es2_calls", NULL, b, sizeof b);
	assert_string_equal(b, "0");
	sql_text(&x, "SELECT CAST(COUNT(*) AS TEXT) FROM op_es2_notifications", NULL, b, sizeof b);
	assert_string_equal(b, "0");

	open_op(&x, NULL, SMDPID);
	sql_exec(&x, "UPDATE op_lines SET iccid = '" ICCID "', matching_id = 'MID-1' WHERE id = 1");
	const char *ids[] = {"old-1", "recent-1", "new-1"};
	for (size_t i = 0; i < 3; i++) {
		char *body =
		    cb_body(&x, SMDPID, ids[i], ICCID, EID, 3, "Executed-Success", NULL, 0, false);
		assert_int_equal(post(&x, body), 204);
		free(body);
	}
	sql_exec(&x, "UPDATE op_es2_calls SET at = at - 31 * 86400 WHERE call_id = 'old-1'");
	sql_exec(&x, "UPDATE op_es2_calls SET at = at - 29 * 86400 WHERE call_id = 'recent-1'");
	size_t reminders = 0;
	assert_esim(ESIM_OK, op_tick(x.o, &reminders));
	sql_text(&x,
		 "SELECT group_concat(call_id, ',') FROM (SELECT call_id FROM op_es2_calls"
		 " ORDER BY call_id)",
		 NULL, b, sizeof b);
	assert_string_equal(b, "new-1,recent-1");
	close_fx(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_not_on_portal), cmocka_unit_test(test_caller_authenticated),
	    cmocka_unit_test(test_lines_matched), cmocka_unit_test(test_replays_and_deletion),
	    cmocka_unit_test(test_real_smdp),	  cmocka_unit_test(test_calls_migrated_and_pruned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
