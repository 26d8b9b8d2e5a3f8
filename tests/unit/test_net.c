/*
 * net_server and net_client against each other on loopback, with a test
 * PKI issued in process (esim/pki.h): CIs and DPtls certificates on P-256
 * and brainpoolP256r1 (SGP.22 allows both), operator client certificates
 * for ES2+ mutual TLS, and OpenSSL's and curl's command-line clients as
 * independent peers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "testutil.h"

#include "esim/net.h"
#include "esim/pki.h"

enum {
	L_P256,	     /* DPtls P-256 under ci_p256 */
	L_BRP,	     /* DPtls brainpoolP256r1 under ci_brp */
	L_MTLS_PIN,  /* P-256, client certificate pinned (op1) */
	L_PLAIN,     /* plain HTTP */
	L_WRONGHOST, /* DPtls for another host name, under ci_p256 */
	L_OTHERCI,   /* DPtls under an untrusted CI */
	L_MTLS_CA,   /* P-256, client certificates from op_ca */
	L_COUNT
};

#define MAX_BODY 4096

struct pem_id {
	struct crypto_issued iss;
	char cert[512];
	char key[512];
};

struct fixture {
	char *dir;
	struct pem_id ci_p256, ci_brp, ci_other, op_ca, op_ca2;
	struct pem_id tls_p256, tls_brp, tls_wronghost, tls_otherci;
	struct pem_id op1, op2, op3;
	char bundle[512]; /* ci_p256 + ci_brp */
	net_server *srv;
	uint16_t port[L_COUNT];
	atomic_int handled;
	atomic_int echoed;
};

static struct fixture F;

/* ---- PKI ---------------------------------------------------------------- */

static void write_file(const char *path, const esim_buf *b)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
	fclose(f);
}

static void issue(struct pem_id *id, const char *name, crypto_issue_kind kind, crypto_curve curve,
		  const struct pem_id *issuer, const char *dns)
{
	time_t now = time(NULL);
	struct crypto_issue_params p = {
	    .kind = kind,
	    .curve = curve,
	    .not_before = now - 3600,
	    .not_after = now + 86400,
	};
	const char *names[1] = {dns};
	if (dns != NULL) {
		p.dns_names = names;
		p.n_dns_names = 1;
	}
	if (issuer != NULL) {
		p.issuer_der = issuer->iss.der;
		p.issuer_der_len = issuer->iss.der_len;
		p.issuer_key = issuer->iss.key;
	}
	assert_esim(ESIM_OK, crypto_issue(&p, &id->iss));
	esim_buf c = ESIM_BUF_INIT, k = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_pki_cert_pem(id->iss.der, id->iss.der_len, &c));
	assert_esim(ESIM_OK, crypto_pki_key_pem(id->iss.key, &k));
	test_path(id->cert, sizeof(id->cert), "%s/%s.pem", F.dir, name);
	test_path(id->key, sizeof(id->key), "%s/%s.key", F.dir, name);
	write_file(id->cert, &c);
	write_file(id->key, &k);
	esim_buf_free(&c);
	esim_buf_wipe_free(&k);
}

static void sha256_of(const struct pem_id *id, uint8_t out[NET_SHA256_LEN])
{
	assert_int_equal(EVP_Digest(id->iss.der, id->iss.der_len, out, NULL, EVP_sha256(), NULL),
			 1);
}

/* ---- handlers ----------------------------------------------------------- */

static esim_err echo_handler(const net_request *req, net_response *resp, void *arg)
{
	struct fixture *f = arg;
	atomic_fetch_add(&f->handled, 1);
	atomic_fetch_add(&f->echoed, 1);
	esim_err e = net_response_set(resp, 200, "application/octet-stream");
	if (e == ESIM_OK)
		e = net_response_add_header(resp, "X-Admin-Protocol", NET_ADMIN_PROTOCOL);
	if (e == ESIM_OK)
		e = net_response_append(resp, req->body, req->body_len);
	return e;
}

/* Transport facts as text, so that tests can see what the server saw. */
static esim_err info_handler(const net_request *req, net_response *resp, void *arg)
{
	struct fixture *f = arg;
	atomic_fetch_add(&f->handled, 1);
	char fp[2 * NET_SHA256_LEN + 1] = "";
	if (req->has_client_cert) {
		for (size_t i = 0; i < NET_SHA256_LEN; i++)
			snprintf(fp + 2 * i, 3, "%02x", req->client_cert_sha256[i]);
	}
	char text[512];
	int n = snprintf(
	    text, sizeof(text),
	    "tls=%d resumed=%d version=%s nodelay=%d cert=%s listener=%d peer=%s "
	    "ua=%s",
	    req->tls, req->tls_resumed, req->tls_version ? req->tls_version : "-", req->tcp_nodelay,
	    fp[0] ? fp : "-", req->listener, req->peer_addr,
	    net_request_header(req, "User-Agent") ? net_request_header(req, "User-Agent") : "-");
	esim_err e = net_response_set(resp, 200, "text/plain");
	if (e == ESIM_OK)
		e = net_response_append(resp, text, (size_t)n);
	return e;
}

static esim_err slow_handler(const net_request *req, net_response *resp, void *arg)
{
	struct fixture *f = arg;
	atomic_fetch_add(&f->handled, 1);
	unsigned ms = 1500;
	if (req->query != NULL)
		sscanf(req->query, "ms=%u", &ms);
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	esim_err e = net_response_set(resp, 200, "text/plain");
	if (e == ESIM_OK)
		e = net_response_append(resp, "slow", 4);
	return e;
}

static esim_err big_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	uint8_t buf[1000];
	memset(buf, 'b', sizeof(buf));
	esim_err e = net_response_set(resp, 200, "text/plain");
	if (e == ESIM_OK)
		e = net_response_append(resp, buf, sizeof(buf));
	return e;
}

/* 8 MiB of a byte pattern: many TLS records, more than the socket
 * buffers hold, so the server's writes block and are retried. */
#define HUGE_LEN (8u << 20)
static uint8_t huge_byte(size_t i)
{
	return (uint8_t)(i * 7 + i / 4096 + 3);
}

static esim_err huge_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	uint8_t *buf = malloc(HUGE_LEN);
	if (buf == NULL)
		return ESIM_E_NOMEM;
	for (size_t i = 0; i < HUGE_LEN; i++)
		buf[i] = huge_byte(i);
	esim_err e = net_response_set(resp, 200, "application/octet-stream");
	if (e == ESIM_OK)
		e = net_response_append(resp, buf, HUGE_LEN);
	free(buf);
	return e;
}

static esim_err nocontent_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	return net_response_set(resp, 204, NULL);
}

static esim_err failing_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)resp;
	(void)arg;
	return ESIM_E_INTERNAL;
}

static void add_routes(net_server *s, struct fixture *f)
{
	assert_esim(ESIM_OK, net_server_add_route(s, -1, "POST", "/echo", echo_handler, f));
	assert_esim(ESIM_OK, net_server_add_route(s, -1, "GET", "/info", info_handler, f));
	assert_esim(ESIM_OK, net_server_add_route(s, -1, "POST", "/info", info_handler, f));
	assert_esim(ESIM_OK, net_server_add_route(s, -1, "GET", "/slow", slow_handler, f));
	assert_esim(ESIM_OK, net_server_add_route(s, -1, "GET", "/big", big_handler, f));
	assert_esim(ESIM_OK, net_server_add_route(s, -1, "GET", "/huge", huge_handler, f));
	assert_esim(ESIM_OK,
		    net_server_add_route(s, -1, "POST", "/gsma/rsp2/es9plus/handleNotification",
					 nocontent_handler, f));
	assert_esim(ESIM_OK, net_server_add_route(s, -1, "GET", "/fail", failing_handler, f));
	/* Only on the mutual-TLS listener. */
	assert_esim(ESIM_OK,
		    net_server_add_route(s, L_MTLS_PIN, "POST", "/gsma/rsp2/es2plus/downloadOrder",
					 info_handler, f));
}

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	F.dir = test_mkdtemp();
	issue(&F.ci_p256, "ci_p256", CRYPTO_ISSUE_CI, CRYPTO_CURVE_P256, NULL, NULL);
	issue(&F.ci_brp, "ci_brp", CRYPTO_ISSUE_CI, CRYPTO_CURVE_BRAINPOOLP256R1, NULL, NULL);
	issue(&F.ci_other, "ci_other", CRYPTO_ISSUE_CI, CRYPTO_CURVE_P256, NULL, NULL);
	issue(&F.op_ca, "op_ca", CRYPTO_ISSUE_CI, CRYPTO_CURVE_P256, NULL, NULL);
	issue(&F.op_ca2, "op_ca2", CRYPTO_ISSUE_CI, CRYPTO_CURVE_P256, NULL, NULL);
	issue(&F.tls_p256, "tls_p256", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_P256, &F.ci_p256, NULL);
	issue(&F.tls_brp, "tls_brp", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_BRAINPOOLP256R1, &F.ci_brp,
	      NULL);
	issue(&F.tls_wronghost, "tls_wronghost", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_P256, &F.ci_p256,
	      "smdp.other.example");
	issue(&F.tls_otherci, "tls_otherci", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_P256, &F.ci_other,
	      NULL);
	issue(&F.op1, "op1", CRYPTO_ISSUE_OPERATOR, CRYPTO_CURVE_P256, &F.op_ca, NULL);
	issue(&F.op2, "op2", CRYPTO_ISSUE_OPERATOR, CRYPTO_CURVE_P256, &F.op_ca, NULL);
	issue(&F.op3, "op3", CRYPTO_ISSUE_OPERATOR, CRYPTO_CURVE_BRAINPOOLP256R1, &F.op_ca2, NULL);

	test_path(F.bundle, sizeof(F.bundle), "%s/bundle.pem", F.dir);
	size_t l1, l2;
	uint8_t *a = test_read(F.ci_p256.cert, &l1), *b = test_read(F.ci_brp.cert, &l2);
	esim_buf bb = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, esim_buf_append(&bb, a, l1));
	assert_esim(ESIM_OK, esim_buf_append(&bb, b, l2));
	write_file(F.bundle, &bb);
	esim_buf_free(&bb);
	free(a);
	free(b);

	struct net_server_config sc = {.threads = 2, .max_body = MAX_BODY, .timeout_ms = 10000};
	assert_esim(ESIM_OK, net_server_new(&sc, &F.srv));
	uint8_t pin[1][NET_SHA256_LEN];
	sha256_of(&F.op1, pin[0]);
	const struct {
		const struct pem_id *id;
		net_client_auth auth;
		bool pinned;
		bool ca;
	} ls[L_COUNT] = {
	    [L_P256] = {&F.tls_p256, NET_CLIENT_AUTH_NONE, false, false},
	    [L_BRP] = {&F.tls_brp, NET_CLIENT_AUTH_NONE, false, false},
	    [L_MTLS_PIN] = {&F.tls_p256, NET_CLIENT_AUTH_REQUIRE, true, false},
	    [L_PLAIN] = {NULL, NET_CLIENT_AUTH_NONE, false, false},
	    [L_WRONGHOST] = {&F.tls_wronghost, NET_CLIENT_AUTH_NONE, false, false},
	    [L_OTHERCI] = {&F.tls_otherci, NET_CLIENT_AUTH_NONE, false, false},
	    [L_MTLS_CA] = {&F.tls_p256, NET_CLIENT_AUTH_REQUIRE, false, true},
	};
	for (int i = 0; i < L_COUNT; i++) {
		struct net_listener_config lc = {
		    .address = "127.0.0.1",
		    .port = 0,
		    .tls = ls[i].id != NULL,
		    .cert_chain_file = ls[i].id ? ls[i].id->cert : NULL,
		    .key_file = ls[i].id ? ls[i].id->key : NULL,
		    .client_auth = ls[i].auth,
		    .client_pins = ls[i].pinned ? (const uint8_t(*)[NET_SHA256_LEN])pin : NULL,
		    .n_client_pins = ls[i].pinned ? 1 : 0,
		    .client_ca_file = ls[i].ca ? F.op_ca.cert : NULL,
		};
		int id = -1;
		assert_esim(ESIM_OK, net_server_add_listener(F.srv, &lc, &id));
		assert_int_equal(id, i);
		F.port[i] = net_server_port(F.srv, id);
		assert_true(F.port[i] != 0);
	}
	add_routes(F.srv, &F);
	assert_esim(ESIM_OK, net_server_start(F.srv));
	assert_esim(ESIM_E_NET_STATE,
		    net_server_add_route(F.srv, -1, "GET", "/late", echo_handler, &F));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	net_server_free(F.srv);
	struct pem_id *ids[] = {&F.ci_p256,	&F.ci_brp,   &F.ci_other, &F.op_ca,
				&F.op_ca2,	&F.tls_p256, &F.tls_brp,  &F.tls_wronghost,
				&F.tls_otherci, &F.op1,	     &F.op2,	  &F.op3};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		crypto_issued_clear(&ids[i]->iss);
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- helpers ------------------------------------------------------------ */

static char *url(char *buf, size_t n, bool tls, int listener, const char *path)
{
	return test_path(buf, n, "%s://127.0.0.1:%u%s", tls ? "https" : "http",
			 (unsigned)F.port[listener], path);
}

static net_client *client_with(const char *ca, const char *cert, const char *key)
{
	struct net_client_config cc = {
	    .ca_file = ca,
	    .client_cert_file = cert,
	    .client_key_file = key,
	    .connect_timeout_ms = 5000,
	    .timeout_ms = 10000,
	};
	net_client *c = NULL;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	return c;
}

static void body_is(const struct net_client_response *r, const char *text)
{
	assert_int_equal(r->body.len, strlen(text));
	assert_memory_equal(r->body.data, text, strlen(text));
}

/* The body as a NUL-terminated string (static buffer of the caller). */
static const char *body_str(const struct net_client_response *r, char *buf, size_t n)
{
	size_t k = r->body.len < n - 1 ? r->body.len : n - 1;
	memcpy(buf, r->body.data, k);
	buf[k] = '\0';
	return buf;
}

/* ---- tests: chains and curves ------------------------------------------ */

static void test_https_p256(void **state)
{
	(void)state;
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256], b[512];
	struct net_client_response r;
	const char *json = "{\"euiccChallenge\":\"AAAA\"}";
	assert_esim(ESIM_OK, net_client_post_json(c, url(u, sizeof(u), true, L_P256, "/echo"), json,
						  strlen(json), &r));
	assert_int_equal(r.status, 200);
	body_is(&r, json);
	assert_string_equal(r.content_type, "application/octet-stream");
	assert_string_equal(r.admin_protocol, NET_ADMIN_PROTOCOL);
	net_client_response_clear(&r);
	assert_esim(ESIM_OK, net_client_request(c, "GET", url(u, sizeof(u), true, L_P256, "/info"),
						NULL, 0, NULL, 0, &r));
	body_str(&r, b, sizeof(b));
	assert_non_null(strstr(b, "tls=1 "));
	assert_non_null(strstr(b, "nodelay=1 "));
	assert_non_null(strstr(b, "cert=- "));
	assert_non_null(strstr(b, "peer=127.0.0.1 "));
	assert_non_null(strstr(b, "ua=" NET_USER_AGENT_LPA));
	net_client_response_clear(&r);
	net_client_free(c);
}

static void test_https_brainpool(void **state)
{
	(void)state;
	/* A bundle of both CIs: the LPA trusts several. */
	net_client *c = client_with(F.bundle, NULL, NULL);
	char u[256], b[512];
	struct net_client_response r;
	assert_esim(ESIM_OK, net_client_request(c, "GET", url(u, sizeof(u), true, L_BRP, "/info"),
						NULL, 0, NULL, 0, &r));
	assert_int_equal(r.status, 200);
	body_str(&r, b, sizeof(b));
	assert_non_null(strstr(b, "tls=1 "));
	assert_non_null(strstr(b, "version=TLSv1."));
	net_client_response_clear(&r);
	/* and the P-256 listener with the same bundle */
	assert_esim(ESIM_OK,
		    net_client_post_json(c, url(u, sizeof(u), true, L_P256, "/echo"), "{}", 2, &r));
	body_is(&r, "{}");
	net_client_response_clear(&r);
	net_client_free(c);
}

static void test_ca_pem_in_memory(void **state)
{
	(void)state;
	size_t n;
	uint8_t *pem = test_read(F.ci_brp.cert, &n);
	char *text = malloc(n + 1);
	assert_non_null(text);
	memcpy(text, pem, n);
	text[n] = '\0';
	struct net_client_config cc = {.ca_pem = text};
	net_client *c;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	free(text);
	free(pem);
	char u[256];
	struct net_client_response r;
	assert_esim(ESIM_OK,
		    net_client_post_json(c, url(u, sizeof(u), true, L_BRP, "/echo"), "x", 1, &r));
	body_is(&r, "x");
	net_client_response_clear(&r);
	/* The P-256 CI is not in this client's trust. */
	assert_esim(ESIM_E_NET_UNTRUSTED_SERVER,
		    net_client_post_json(c, url(u, sizeof(u), true, L_P256, "/echo"), "x", 1, &r));
	net_client_free(c);
	/* Exactly one trust source. */
	struct net_client_config both = {.ca_pem = "x", .ca_file = "y"}, none = {0};
	assert_esim(ESIM_E_ARG, net_client_new(&both, &c));
	assert_esim(ESIM_E_ARG, net_client_new(&none, &c));
}

static void test_untrusted_ci_refused(void **state)
{
	(void)state;
	net_client *c = client_with(F.bundle, NULL, NULL);
	char u[256];
	struct net_client_response r;
	int before = atomic_load(&F.handled);
	assert_esim(
	    ESIM_E_NET_UNTRUSTED_SERVER,
	    net_client_post_json(c, url(u, sizeof(u), true, L_OTHERCI, "/echo"), "{}", 2, &r));
	assert_true(strlen(net_client_errmsg(c)) > 0);
	assert_int_equal(r.body.len, 0);
	assert_int_equal(atomic_load(&F.handled), before);
	net_client_free(c);
}

static void test_hostname_mismatch_refused(void **state)
{
	(void)state;
	/* The chain is good (ci_p256 is trusted) but the name is not 127.0.0.1. */
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256];
	struct net_client_response r;
	int before = atomic_load(&F.handled);
	esim_err e =
	    net_client_post_json(c, url(u, sizeof(u), true, L_WRONGHOST, "/echo"), "{}", 2, &r);
	if (e != ESIM_E_NET_HOSTNAME)
		fail_msg("got %s: %s", esim_errname(e), net_client_errmsg(c));
	assert_int_equal(atomic_load(&F.handled), before);
	net_client_free(c);
}

/* ---- tests: mutual TLS (ES2+) -------------------------------------------- */

static void test_mtls_pinned_accepted(void **state)
{
	(void)state;
	net_client *c = client_with(F.ci_p256.cert, F.op1.cert, F.op1.key);
	char u[256], b[512], want[2 * NET_SHA256_LEN + 16];
	uint8_t fp[NET_SHA256_LEN];
	sha256_of(&F.op1, fp);
	strcpy(want, "cert=");
	for (size_t i = 0; i < NET_SHA256_LEN; i++)
		snprintf(want + 5 + 2 * i, 3, "%02x", fp[i]);
	struct net_client_response r;
	assert_esim(ESIM_OK,
		    net_client_post_json(
			c, url(u, sizeof(u), true, L_MTLS_PIN, "/gsma/rsp2/es2plus/downloadOrder"),
			"{}", 2, &r));
	body_str(&r, b, sizeof(b));
	assert_non_null(strstr(b, want));
	net_client_response_clear(&r);
	/* That route exists only on the mutual-TLS listener. */
	net_client *c2 = client_with(F.ci_p256.cert, NULL, NULL);
	assert_esim(ESIM_E_NET_HTTP_STATUS,
		    net_client_post_json(
			c2, url(u, sizeof(u), true, L_P256, "/gsma/rsp2/es2plus/downloadOrder"),
			"{}", 2, &r));
	assert_int_equal(r.status, 404);
	net_client_response_clear(&r);
	net_client_free(c2);
	net_client_free(c);
}

static void expect_refused(const char *cert, const char *key, int listener)
{
	net_client *c = client_with(F.ci_p256.cert, cert, key);
	char u[256];
	struct net_client_response r;
	int before = atomic_load(&F.handled);
	esim_err e =
	    net_client_post_json(c, url(u, sizeof(u), true, listener, "/info"), "{}", 2, &r);
	/* TLS 1.3 clients learn of the refusal when they read (the server's
	 * alert follows its Finished), TLS 1.2 clients in the handshake. */
	if (e != ESIM_E_NET_TLS && e != ESIM_E_NET_IO)
		fail_msg("expected a TLS refusal, got %s (%s)", esim_errname(e),
			 net_client_errmsg(c));
	assert_int_equal(r.status, 0);
	assert_int_equal(atomic_load(&F.handled), before);
	net_client_free(c);
}

static void test_mtls_unknown_cert_refused(void **state)
{
	(void)state;
	expect_refused(F.op2.cert, F.op2.key, L_MTLS_PIN); /* same CA, not pinned */
	expect_refused(F.op3.cert, F.op3.key, L_MTLS_PIN);
}

static void test_mtls_no_cert_refused(void **state)
{
	(void)state;
	expect_refused(NULL, NULL, L_MTLS_PIN);
	expect_refused(NULL, NULL, L_MTLS_CA);
}

static void test_mtls_ca_mode(void **state)
{
	(void)state;
	char u[256], b[512];
	struct net_client_response r;
	/* op1 and op2 are both issued by op_ca: both accepted. */
	const struct pem_id *ok[] = {&F.op1, &F.op2};
	for (size_t i = 0; i < 2; i++) {
		net_client *c = client_with(F.ci_p256.cert, ok[i]->cert, ok[i]->key);
		assert_esim(ESIM_OK,
			    net_client_post_json(c, url(u, sizeof(u), true, L_MTLS_CA, "/info"),
						 "{}", 2, &r));
		body_str(&r, b, sizeof(b));
		assert_non_null(strstr(b, "cert="));
		assert_null(strstr(b, "cert=- "));
		net_client_response_clear(&r);
		net_client_free(c);
	}
	expect_refused(F.op3.cert, F.op3.key, L_MTLS_CA); /* another CA */
}

/* ---- tests: HTTP behaviour ------------------------------------------------ */

static void test_body_cap(void **state)
{
	(void)state;
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256];
	struct net_client_response r;
	uint8_t *big = malloc(MAX_BODY * 4);
	assert_non_null(big);
	memset(big, 'A', MAX_BODY * 4);
	int before = atomic_load(&F.handled);
	assert_esim(ESIM_E_NET_HTTP_STATUS,
		    net_client_post_json(c, url(u, sizeof(u), true, L_P256, "/echo"),
					 (const char *)big, MAX_BODY * 4, &r));
	assert_int_equal(r.status, 413);
	assert_int_equal(atomic_load(&F.handled), before);
	net_client_response_clear(&r);
	/* at the cap: accepted */
	assert_esim(ESIM_OK, net_client_post_json(c, url(u, sizeof(u), true, L_P256, "/echo"),
						  (const char *)big, MAX_BODY, &r));
	assert_int_equal(r.body.len, MAX_BODY);
	net_client_response_clear(&r);
	free(big);
	net_client_free(c);
}

static void test_routes_status(void **state)
{
	(void)state;
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256];
	struct net_client_response r;
	assert_esim(ESIM_E_NET_HTTP_STATUS,
		    net_client_request(c, "GET", url(u, sizeof(u), false, L_PLAIN, "/nowhere"),
				       NULL, 0, NULL, 0, &r));
	assert_int_equal(r.status, 404);
	net_client_response_clear(&r);
	assert_esim(ESIM_E_NET_HTTP_STATUS,
		    net_client_request(c, "GET", url(u, sizeof(u), false, L_PLAIN, "/echo"), NULL,
				       0, NULL, 0, &r));
	assert_int_equal(r.status, 405);
	net_client_response_clear(&r);
	assert_esim(ESIM_E_NET_HTTP_STATUS,
		    net_client_request(c, "GET", url(u, sizeof(u), false, L_PLAIN, "/fail"), NULL,
				       0, NULL, 0, &r));
	assert_int_equal(r.status, 500);
	net_client_response_clear(&r);
	/* ES9+ handleNotification answers 204 with no body. */
	assert_esim(ESIM_OK, net_client_post_json(c,
						  url(u, sizeof(u), false, L_PLAIN,
						      "/gsma/rsp2/es9plus/handleNotification"),
						  "{}", 2, &r));
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body.len, 0);
	net_client_response_clear(&r);
	/* plain listener: no TLS */
	char b[512];
	assert_esim(ESIM_OK,
		    net_client_request(c, "GET", url(u, sizeof(u), false, L_PLAIN, "/info"), NULL,
				       0, NULL, 0, &r));
	body_str(&r, b, sizeof(b));
	assert_non_null(strstr(b, "tls=0 "));
	assert_non_null(strstr(b, "nodelay=1 "));
	net_client_response_clear(&r);
	net_client_free(c);
}

static void test_keepalive_one_connection(void **state)
{
	(void)state;
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256];
	struct net_client_response r;
	struct net_server_stats s0, s1;
	net_server_get_stats(F.srv, &s0);
	for (int i = 0; i < 5; i++) {
		assert_esim(ESIM_OK, net_client_post_json(
					 c, url(u, sizeof(u), true, L_P256, "/echo"), "{}", 2, &r));
		net_client_response_clear(&r);
	}
	net_server_get_stats(F.srv, &s1);
	assert_int_equal(net_client_connections(c), 1);
	assert_int_equal(s1.connections - s0.connections, 1);
	assert_int_equal(s1.tls_handshakes - s0.tls_handshakes, 1);
	assert_int_equal(s1.handled - s0.handled, 5);
	net_client_free(c);
}

/* Counts the TLS records of application data the client receives. Under
 * TLS 1.3 every protected record's header says application data; the
 * inner content type tells the session tickets apart. */
static void count_app_records(int write_p, int version, int content_type, const void *buf,
			      size_t len, SSL *ssl, void *arg)
{
	(void)version;
	(void)ssl;
	const uint8_t *b = buf;
	if (write_p || len < 1)
		return;
	if (content_type == SSL3_RT_HEADER && b[0] == SSL3_RT_APPLICATION_DATA)
		(*(int *)arg)++;
	else if (content_type == SSL3_RT_INNER_CONTENT_TYPE && b[0] != SSL3_RT_APPLICATION_DATA)
		(*(int *)arg)--;
}

/* A plain OpenSSL client on the P-256 listener (no net_client between the
 * test and the records); rcvbuf > 0 sets its socket's receive buffer. */
static SSL *raw_tls_connect(SSL_CTX **ctx_out, int *fd_out, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (rcvbuf > 0)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(F.port[L_P256])};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, F.ci_p256.cert, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL *ssl = SSL_new(ctx);
	assert_non_null(ssl);
	assert_int_equal(SSL_set_tlsext_host_name(ssl, "localhost"), 1);
	assert_int_equal(SSL_set_fd(ssl, fd), 1);
	assert_int_equal(SSL_connect(ssl), 1);
	*ctx_out = ctx;
	*fd_out = fd;
	return ssl;
}

/* One response is one TLS record: status line, headers and body are not
 * split into records (and so write(2)s and client wake-ups) of their own. */
static void test_response_one_record(void **state)
{
	(void)state;
	SSL_CTX *ctx;
	int fd;
	SSL *ssl = raw_tls_connect(&ctx, &fd, 0);
	int records = 0;
	SSL_set_msg_callback(ssl, count_app_records);
	SSL_set_msg_callback_arg(ssl, &records);

	static const char req[] = "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n";
	for (int i = 0; i < 2; i++) { /* and again on the kept-alive connection */
		records = 0;
		assert_int_equal(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
		char resp[4096];
		size_t got = 0, want = 0;
		while (want == 0 || got < want) {
			int n = SSL_read(ssl, resp + got, (int)(sizeof(resp) - 1 - got));
			assert_true(n > 0);
			got += (size_t)n;
			resp[got] = '\0';
			const char *end = strstr(resp, "\r\n\r\n");
			if (want == 0 && end != NULL)
				want = (size_t)(end + 4 - resp) + 1000; /* big_handler's body */
		}
		assert_int_equal(got, want);
		assert_non_null(strstr(resp, "HTTP/1.1 200"));
		assert_int_equal(records, 1);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

/* A large body to a client that reads late and slowly: the server's
 * writes block and resume (with the first 16 KiB of the response pulled
 * into one chain by the server) and every byte arrives in order. */
static void test_large_response_slow_reader(void **state)
{
	(void)state;
	SSL_CTX *ctx;
	int fd;
	/* a small receive window keeps the server's send buffer small too */
	SSL *ssl = raw_tls_connect(&ctx, &fd, 4096);
	static const char req[] = "GET /huge HTTP/1.1\r\nHost: localhost\r\n\r\n";
	assert_int_equal(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
	sleep_ms(200); /* the socket buffers fill up meanwhile */
	size_t cap = HUGE_LEN + 1024, got = 0, head = 0;
	uint8_t *buf = malloc(cap + 1);
	assert_non_null(buf);
	for (unsigned reads = 0; head == 0 || got < head + HUGE_LEN; reads++) {
		int n = SSL_read(ssl, buf + got, (int)(cap - got));
		assert_true(n > 0);
		got += (size_t)n;
		buf[got] = '\0';
		if (head == 0) {
			const char *end = strstr((const char *)buf, "\r\n\r\n");
			if (end != NULL)
				head = (size_t)(end + 4 - (const char *)buf);
		}
		if (reads % 8 == 0)
			sleep_ms(1);
	}
	assert_int_equal(got, head + HUGE_LEN);
	assert_non_null(strstr((const char *)buf, "HTTP/1.1 200"));
	for (size_t i = 0; i < HUGE_LEN; i++)
		if (buf[head + i] != huge_byte(i))
			fail_msg("body byte %zu is %02x, want %02x", i, buf[head + i],
				 huge_byte(i));
	free(buf);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

static void check_resumption(int listener, const char *ca)
{
	net_client *c = client_with(ca, NULL, NULL);
	char u[256], b[512];
	struct net_client_response r;
	struct net_server_stats s0, s1;
	net_server_get_stats(F.srv, &s0);
	assert_esim(ESIM_OK,
		    net_client_request(c, "GET", url(u, sizeof(u), true, listener, "/info"), NULL,
				       0, NULL, 0, &r));
	body_str(&r, b, sizeof(b));
	assert_non_null(strstr(b, "resumed=0"));
	assert_false(net_client_last_resumed(c));
	net_client_response_clear(&r);
	net_client_fresh_connect(c);
	assert_esim(ESIM_OK,
		    net_client_request(c, "GET", url(u, sizeof(u), true, listener, "/info"), NULL,
				       0, NULL, 0, &r));
	body_str(&r, b, sizeof(b));
	if (strstr(b, "resumed=1") == NULL)
		fail_msg("second connection not resumed: %s", b);
	assert_true(net_client_last_resumed(c));
	net_client_response_clear(&r);
	net_server_get_stats(F.srv, &s1);
	assert_int_equal(net_client_connections(c), 2);
	assert_int_equal(s1.connections - s0.connections, 2);
	assert_int_equal(s1.tls_resumed - s0.tls_resumed, 1);
	net_client_free(c);
}

static void test_session_resumption(void **state)
{
	(void)state;
	check_resumption(L_P256, F.ci_p256.cert);
	check_resumption(L_BRP, F.ci_brp.cert);
}

static void test_response_cap_and_timeout(void **state)
{
	(void)state;
	struct net_client_config cc = {
	    .ca_file = F.ci_p256.cert, .max_response = 100, .timeout_ms = 300};
	net_client *c;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char u[256];
	struct net_client_response r;
	assert_esim(ESIM_E_NET_BODY_TOO_LARGE,
		    net_client_request(c, "GET", url(u, sizeof(u), true, L_P256, "/big"), NULL, 0,
				       NULL, 0, &r));
	assert_int_equal(r.body.len, 0);
	assert_esim(ESIM_E_NET_TIMEOUT,
		    net_client_request(c, "GET", url(u, sizeof(u), true, L_P256, "/slow?ms=800"),
				       NULL, 0, NULL, 0, &r));
	net_client_free(c);
	sleep_ms(700); /* let the abandoned handler finish before the next test */
}

static uint16_t closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_retry_policy(void **state)
{
	(void)state;
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256];
	test_path(u, sizeof(u), "https://127.0.0.1:%u/echo", (unsigned)closed_port());
	struct net_client_response r;
	unsigned attempts = 0;
	struct net_retry unsafe = {.safe_to_repeat = false, .max_attempts = 5};
	assert_esim(ESIM_E_NET_CONNECT,
		    net_client_post_json_retry(c, u, "{}", 2, &unsafe, &r, &attempts));
	assert_int_equal(attempts, 1);
	struct net_retry safe = {.safe_to_repeat = true,
				 .max_attempts = 3,
				 .initial_backoff_ms = 10,
				 .max_backoff_ms = 20};
	assert_esim(ESIM_E_NET_CONNECT,
		    net_client_post_json_retry(c, u, "{}", 2, &safe, &r, &attempts));
	assert_int_equal(attempts, 3);
	/* A certificate failure is not transient: one attempt even when safe. */
	assert_esim(ESIM_E_NET_UNTRUSTED_SERVER,
		    net_client_post_json_retry(c, url(u, sizeof(u), true, L_OTHERCI, "/echo"), "{}",
					       2, &safe, &r, &attempts));
	assert_int_equal(attempts, 1);
	/* Success on the first try. */
	assert_esim(ESIM_OK, net_client_post_json_retry(c, url(u, sizeof(u), true, L_P256, "/echo"),
							"{}", 2, &safe, &r, &attempts));
	assert_int_equal(attempts, 1);
	net_client_response_clear(&r);
	assert_true(net_error_is_transient(ESIM_E_NET_HTTP_STATUS, 503));
	assert_false(net_error_is_transient(ESIM_E_NET_HTTP_STATUS, 413));
	assert_false(net_error_is_transient(ESIM_E_NET_HOSTNAME, 0));
	net_client_free(c);
}

/* ---- tests: other clients ------------------------------------------------ */

static void run_capture(const char *cmd, char *out, size_t n)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t k = fread(out, 1, n - 1, p);
	out[k] = '\0';
	pclose(p);
}

static void test_openssl_s_client_brainpool(void **state)
{
	(void)state;
	char cmd[1024], out[8192];
	snprintf(cmd, sizeof(cmd),
		 "openssl s_client -connect 127.0.0.1:%u -servername localhost "
		 "-tls1_2 -groups brainpoolP256r1 -CAfile %s -verify_return_error -brief "
		 "</dev/null 2>&1",
		 (unsigned)F.port[L_BRP], F.ci_brp.cert);
	run_capture(cmd, out, sizeof(out));
	if (strstr(out, "Verification: OK") == NULL)
		fail_msg("s_client did not verify:\n%s", out);
	const char *tk = strstr(out, "Server Temp Key:");
	if (tk == NULL)
		tk = strstr(out, "Negotiated TLS1.3 group:");
	if (tk == NULL)
		fail_msg("no key exchange group in s_client output:\n%s", out);
	const char *eol = strchr(tk, '\n');
	size_t len = eol ? (size_t)(eol - tk) : strlen(tk);
	char line[256];
	snprintf(line, sizeof(line), "%.*s", (int)len, tk);
	if (strstr(line, "brainpoolP256r1") == NULL)
		fail_msg("key exchange not on brainpoolP256r1: %s", line);
	/* The P-256 CI does not verify the brainpool server. */
	snprintf(
	    cmd, sizeof(cmd),
	    "openssl s_client -connect 127.0.0.1:%u -tls1_2 -groups brainpoolP256r1 -CAfile %s "
	    "-verify_return_error -brief </dev/null 2>&1",
	    (unsigned)F.port[L_BRP], F.ci_p256.cert);
	run_capture(cmd, out, sizeof(out));
	assert_null(strstr(out, "Verification: OK"));
}

static void test_curl_cli(void **state)
{
	(void)state;
	char cmd[1024], out[1024];
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --max-time 10 --cacert %s -d p256-hello https://127.0.0.1:%u/echo 2>&1",
		 F.ci_p256.cert, (unsigned)F.port[L_P256]);
	run_capture(cmd, out, sizeof(out));
	assert_string_equal(out, "p256-hello");
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --max-time 10 --tls-max 1.2 --curves brainpoolP256r1 --cacert %s "
		 "-d brp-hello "
		 "https://127.0.0.1:%u/echo 2>&1",
		 F.ci_brp.cert, (unsigned)F.port[L_BRP]);
	run_capture(cmd, out, sizeof(out));
	assert_string_equal(out, "brp-hello");
	/* untrusted chain: curl refuses too */
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --max-time 10 --cacert %s -d x https://127.0.0.1:%u/echo 2>&1",
		 F.ci_p256.cert, (unsigned)F.port[L_OTHERCI]);
	run_capture(cmd, out, sizeof(out));
	assert_non_null(strstr(out, "certificate"));
}

/* ---- tests: concurrency -------------------------------------------------- */

#define CONC_THREADS 8
#define CONC_EACH    25

struct conc_arg {
	int idx;
	int ok;
};

static void *conc_main(void *p)
{
	struct conc_arg *a = p;
	struct net_client_config cc = {.ca_file = F.ci_p256.cert, .timeout_ms = 20000};
	net_client *c;
	if (net_client_new(&cc, &c) != ESIM_OK)
		return NULL;
	char u[256], body[64];
	test_path(u, sizeof(u), "https://127.0.0.1:%u/echo", (unsigned)F.port[L_P256]);
	for (int i = 0; i < CONC_EACH; i++) {
		int n = snprintf(body, sizeof(body), "{\"t\":%d,\"i\":%d}", a->idx, i);
		struct net_client_response r;
		if (i % 5 == 0)
			net_client_fresh_connect(c);
		if (net_client_post_json(c, u, body, (size_t)n, &r) == ESIM_OK && r.status == 200 &&
		    r.body.len == (size_t)n && memcmp(r.body.data, body, (size_t)n) == 0)
			a->ok++;
		net_client_response_clear(&r);
	}
	net_client_free(c);
	return NULL;
}

static void test_concurrent_requests(void **state)
{
	(void)state;
	pthread_t th[CONC_THREADS];
	struct conc_arg args[CONC_THREADS];
	int e0 = atomic_load(&F.echoed);
	for (int i = 0; i < CONC_THREADS; i++) {
		args[i] = (struct conc_arg){.idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, conc_main, &args[i]), 0);
	}
	int total = 0;
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(th[i], NULL);
		total += args[i].ok;
	}
	assert_int_equal(total, CONC_THREADS * CONC_EACH);
	assert_int_equal(atomic_load(&F.echoed) - e0, CONC_THREADS * CONC_EACH);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

struct slow_arg {
	uint16_t port;
	esim_err err;
	long status;
	double done_at;
};

static void *slow_main(void *p)
{
	struct slow_arg *a = p;
	struct net_client_config cc = {.ca_file = F.ci_p256.cert, .timeout_ms = 20000};
	net_client *c;
	if ((a->err = net_client_new(&cc, &c)) != ESIM_OK)
		return NULL;
	char u[256];
	test_path(u, sizeof(u), "https://127.0.0.1:%u/slow?ms=1500", (unsigned)a->port);
	struct net_client_response r;
	a->err = net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r);
	a->status = r.status;
	a->done_at = now_ms();
	net_client_response_clear(&r);
	net_client_free(c);
	return NULL;
}

static void test_slow_handler_does_not_block_others(void **state)
{
	(void)state;
	struct slow_arg a = {.port = F.port[L_P256]};
	pthread_t th;
	double t0 = now_ms();
	assert_int_equal(pthread_create(&th, NULL, slow_main, &a), 0);
	sleep_ms(300); /* the slow request is inside its handler by now */
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256];
	struct net_client_response r;
	double t1 = now_ms();
	assert_esim(ESIM_OK,
		    net_client_post_json(c, url(u, sizeof(u), true, L_P256, "/echo"), "{}", 2, &r));
	double fast = now_ms() - t1;
	net_client_response_clear(&r);
	net_client_free(c);
	pthread_join(th, NULL);
	assert_esim(ESIM_OK, a.err);
	assert_int_equal(a.status, 200);
	if (fast > 800)
		fail_msg("fast request took %.0f ms behind a slow handler", fast);
	assert_true(a.done_at - t0 >= 1500);
}

/* A separate server: stop while a handler runs. The reply in flight is
 * delivered, then new connections are refused. */
static void test_graceful_shutdown(void **state)
{
	(void)state;
	net_server *s;
	struct net_server_config sc = {.threads = 2, .shutdown_grace_ms = 5000};
	assert_esim(ESIM_OK, net_server_new(&sc, &s));
	struct net_listener_config lc = {.address = "127.0.0.1",
					 .tls = true,
					 .cert_chain_file = F.tls_p256.cert,
					 .key_file = F.tls_p256.key};
	int id;
	assert_esim(ESIM_OK, net_server_add_listener(s, &lc, &id));
	assert_esim(ESIM_OK, net_server_add_route(s, id, "GET", "/slow", slow_handler, &F));
	assert_esim(ESIM_OK, net_server_start(s));
	uint16_t port = net_server_port(s, id);
	struct slow_arg a = {.port = port};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, slow_main, &a), 0);
	sleep_ms(300);
	net_server_stop(s);
	pthread_join(th, NULL);
	assert_esim(ESIM_OK, a.err);
	assert_int_equal(a.status, 200);
	net_client *c = client_with(F.ci_p256.cert, NULL, NULL);
	char u[256];
	test_path(u, sizeof(u), "https://127.0.0.1:%u/slow?ms=1", (unsigned)port);
	struct net_client_response r;
	assert_esim(ESIM_E_NET_CONNECT, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	net_client_free(c);
	net_server_stop(s); /* idempotent */
	net_server_free(s);
}

static void test_listener_config_errors(void **state)
{
	(void)state;
	net_server *s;
	assert_esim(ESIM_OK, net_server_new(NULL, &s));
	/* key of another certificate */
	struct net_listener_config lc = {.address = "127.0.0.1",
					 .tls = true,
					 .cert_chain_file = F.tls_p256.cert,
					 .key_file = F.tls_brp.key};
	assert_esim(ESIM_E_NET_TLS_CONFIG, net_server_add_listener(s, &lc, NULL));
	lc.key_file = "/nonexistent/key.pem";
	assert_esim(ESIM_E_NET_TLS_CONFIG, net_server_add_listener(s, &lc, NULL));
	/* mutual TLS without pins or CA */
	lc.key_file = F.tls_p256.key;
	lc.client_auth = NET_CLIENT_AUTH_REQUIRE;
	assert_esim(ESIM_E_ARG, net_server_add_listener(s, &lc, NULL));
	/* port in use */
	struct net_listener_config busy = {.address = "127.0.0.1", .port = F.port[L_PLAIN]};
	assert_esim(ESIM_E_NET_BIND, net_server_add_listener(s, &busy, NULL));
	struct net_listener_config badaddr = {.address = "not-an-ip"};
	assert_esim(ESIM_E_NET_BIND, net_server_add_listener(s, &badaddr, NULL));
	assert_esim(ESIM_E_ARG, net_server_add_route(s, 0, "GET", "/x", echo_handler, NULL));
	assert_esim(ESIM_E_NET_STATE, net_server_start(s)); /* no listener */
	net_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_https_p256),
	    cmocka_unit_test(test_https_brainpool),
	    cmocka_unit_test(test_ca_pem_in_memory),
	    cmocka_unit_test(test_untrusted_ci_refused),
	    cmocka_unit_test(test_hostname_mismatch_refused),
	    cmocka_unit_test(test_mtls_pinned_accepted),
	    cmocka_unit_test(test_mtls_unknown_cert_refused),
	    cmocka_unit_test(test_mtls_no_cert_refused),
	    cmocka_unit_test(test_mtls_ca_mode),
	    cmocka_unit_test(test_body_cap),
	    cmocka_unit_test(test_routes_status),
	    cmocka_unit_test(test_keepalive_one_connection),
	    cmocka_unit_test(test_session_resumption),
	    cmocka_unit_test(test_response_cap_and_timeout),
	    cmocka_unit_test(test_retry_policy),
	    cmocka_unit_test(test_response_one_record),
	    cmocka_unit_test(test_large_response_slow_reader),
	    cmocka_unit_test(test_openssl_s_client_brainpool),
	    cmocka_unit_test(test_curl_cli),
	    cmocka_unit_test(test_concurrent_requests),
	    cmocka_unit_test(test_slow_handler_does_not_block_others),
	    cmocka_unit_test(test_graceful_shutdown),
	    cmocka_unit_test(test_listener_config_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
