/*
 * net_client (src/net/client.c, the HTTPS client on OpenSSL) beyond what
 * test_net.c covers: response framing (chunked, close-delimited, interim
 * 1xx, malformed answers), keep-alive against a server that closes idle
 * connections, the one safe re-send on a dead kept-alive connection,
 * certificate refusals by host name and by CA (and which of the two an
 * expired certificate for another host is), a brainpoolP256r1 server by
 * name, mutual TLS with and without a client certificate, the response cap,
 * a bounded connect to a black-hole address, the errors' texts, and that
 * the esim program loads only the libraries it uses (no libcurl tree).
 *
 * TLS peers are the real net_server; framing cases the net_server never
 * produces (chunked, 1xx, garbage) come from a small scripted HTTP peer on
 * a loopback socket in a thread of this test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "testutil.h"

#include "esim/net.h"
#include "esim/pki.h"

struct pem_id {
	struct crypto_issued iss;
	char cert[512];
	char key[512];
};

enum {
	L_P256,	     /* DPtls P-256 under ci_p256, names localhost and 127.0.0.1 */
	L_BRP,	     /* DPtls brainpoolP256r1 under ci_brp */
	L_OTHERHOST, /* under ci_p256, for smdp.other.example only */
	L_OTHERCI,   /* under ci_other */
	L_EXPIRED,   /* under ci_p256, expired, for smdp.other.example */
	L_MTLS,	     /* P-256, client certificate op1 pinned */
	L_COUNT
};

static struct {
	char *dir;
	struct pem_id ci_p256, ci_brp, ci_other, op_ca;
	struct pem_id tls_p256, tls_brp, tls_otherhost, tls_otherci, tls_expired, op1;
	net_server *srv;
	uint16_t port[L_COUNT];
	atomic_int handled;
} F;

/* ---- PKI ---------------------------------------------------------------- */

static void write_buf(const char *path, const esim_buf *b)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
	fclose(f);
}

static void issue(struct pem_id *id, const char *name, crypto_issue_kind kind, crypto_curve curve,
		  const struct pem_id *issuer, const char *dns, bool expired)
{
	time_t now = time(NULL);
	struct crypto_issue_params p = {
	    .kind = kind,
	    .curve = curve,
	    .not_before = expired ? now - 10 * 86400 : now - 3600,
	    .not_after = expired ? now - 86400 : now + 86400,
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
	write_buf(id->cert, &c);
	write_buf(id->key, &k);
	esim_buf_free(&c);
	esim_buf_wipe_free(&k);
}

/* ---- handlers ------------------------------------------------------------- */

static esim_err info_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)arg;
	atomic_fetch_add(&F.handled, 1);
	char fp[2 * NET_SHA256_LEN + 1] = "-";
	if (req->has_client_cert)
		for (size_t i = 0; i < NET_SHA256_LEN; i++)
			snprintf(fp + 2 * i, 3, "%02x", req->client_cert_sha256[i]);
	char text[256];
	int n = snprintf(text, sizeof(text), "tls=%d resumed=%d version=%s cert=%s body=%zu",
			 req->tls, req->tls_resumed, req->tls_version ? req->tls_version : "-", fp,
			 req->body_len);
	esim_err e = net_response_set(resp, 200, "text/plain");
	if (e == ESIM_OK)
		e = net_response_append(resp, text, (size_t)n);
	return e;
}

static esim_err big_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	static uint8_t buf[1 << 20];
	memset(buf, 'z', sizeof(buf));
	esim_err e = net_response_set(resp, 200, "application/octet-stream");
	if (e == ESIM_OK)
		e = net_response_append(resp, buf, sizeof(buf));
	return e;
}

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	F.dir = test_mkdtemp();
	issue(&F.ci_p256, "ci_p256", CRYPTO_ISSUE_CI, CRYPTO_CURVE_P256, NULL, NULL, false);
	issue(&F.ci_brp, "ci_brp", CRYPTO_ISSUE_CI, CRYPTO_CURVE_BRAINPOOLP256R1, NULL, NULL,
	      false);
	issue(&F.ci_other, "ci_other", CRYPTO_ISSUE_CI, CRYPTO_CURVE_P256, NULL, NULL, false);
	issue(&F.op_ca, "op_ca", CRYPTO_ISSUE_CI, CRYPTO_CURVE_P256, NULL, NULL, false);
	issue(&F.tls_p256, "tls_p256", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_P256, &F.ci_p256, NULL,
	      false);
	issue(&F.tls_brp, "tls_brp", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_BRAINPOOLP256R1, &F.ci_brp,
	      NULL, false);
	issue(&F.tls_otherhost, "tls_otherhost", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_P256, &F.ci_p256,
	      "smdp.other.example", false);
	issue(&F.tls_otherci, "tls_otherci", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_P256, &F.ci_other,
	      NULL, false);
	issue(&F.tls_expired, "tls_expired", CRYPTO_ISSUE_DP_TLS, CRYPTO_CURVE_P256, &F.ci_p256,
	      "smdp.other.example", true);
	issue(&F.op1, "op1", CRYPTO_ISSUE_OPERATOR, CRYPTO_CURVE_P256, &F.op_ca, NULL, false);

	/* a short idle timeout: kept-alive connections are closed by the server */
	struct net_server_config sc = {.threads = 2, .timeout_ms = 300};
	assert_esim(ESIM_OK, net_server_new(&sc, &F.srv));
	uint8_t pin[1][NET_SHA256_LEN];
	assert_int_equal(
	    EVP_Digest(F.op1.iss.der, F.op1.iss.der_len, pin[0], NULL, EVP_sha256(), NULL), 1);
	const struct pem_id *ids[L_COUNT] = {
	    [L_P256] = &F.tls_p256,	      [L_BRP] = &F.tls_brp,
	    [L_OTHERHOST] = &F.tls_otherhost, [L_OTHERCI] = &F.tls_otherci,
	    [L_EXPIRED] = &F.tls_expired,     [L_MTLS] = &F.tls_p256,
	};
	for (int i = 0; i < L_COUNT; i++) {
		struct net_listener_config lc = {
		    .address = "127.0.0.1",
		    .tls = true,
		    .cert_chain_file = ids[i]->cert,
		    .key_file = ids[i]->key,
		};
		if (i == L_MTLS) {
			lc.client_auth = NET_CLIENT_AUTH_REQUIRE;
			lc.client_pins = (const uint8_t(*)[NET_SHA256_LEN])pin;
			lc.n_client_pins = 1;
		}
		int id = -1;
		assert_esim(ESIM_OK, net_server_add_listener(F.srv, &lc, &id));
		assert_int_equal(id, i);
		F.port[i] = net_server_port(F.srv, id);
	}
	assert_esim(ESIM_OK, net_server_add_route(F.srv, -1, "GET", "/info", info_handler, NULL));
	assert_esim(ESIM_OK, net_server_add_route(F.srv, -1, "POST", "/info", info_handler, NULL));
	assert_esim(ESIM_OK, net_server_add_route(F.srv, -1, "GET", "/big", big_handler, NULL));
	assert_esim(ESIM_OK, net_server_start(F.srv));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	net_server_free(F.srv);
	struct pem_id *ids[] = {&F.ci_p256,	&F.ci_brp,  &F.ci_other,      &F.op_ca,
				&F.tls_p256,	&F.tls_brp, &F.tls_otherhost, &F.tls_otherci,
				&F.tls_expired, &F.op1};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		crypto_issued_clear(&ids[i]->iss);
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static net_client *client_cfg(const char *ca, const char *cert, const char *key, size_t cap)
{
	struct net_client_config cc = {.ca_file = ca,
				       .client_cert_file = cert,
				       .client_key_file = key,
				       .connect_timeout_ms = 3000,
				       .timeout_ms = 5000,
				       .max_response = cap};
	net_client *c = NULL;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	return c;
}

static net_client *client(const char *ca)
{
	return client_cfg(ca, NULL, NULL, 0);
}

static const char *body_str(const struct net_client_response *r, char *buf, size_t n)
{
	size_t k = r->body.len < n - 1 ? r->body.len : n - 1;
	if (k > 0)
		memcpy(buf, r->body.data, k);
	buf[k] = '\0';
	return buf;
}

static void msg_has(const net_client *c, const char *want)
{
	if (strstr(net_client_errmsg(c), want) == NULL)
		fail_msg("error message \"%s\" lacks \"%s\"", net_client_errmsg(c), want);
}

/* ---- a scripted HTTP peer on loopback ------------------------------------------ */

/* Each accepted connection goes to serve(fd, n) (n counts connections from
 * 0); the connection is closed when serve returns. */
struct raw_server {
	int lfd;
	uint16_t port;
	pthread_t th;
	atomic_bool stop;
	void (*serve)(struct raw_server *rs, int fd, int n);
	atomic_int requests; /* requests read, over all connections */
	char last_request[4096];
};

static void *raw_main(void *p)
{
	struct raw_server *rs = p;
	for (int n = 0; !atomic_load(&rs->stop);) {
		struct pollfd pfd = {.fd = rs->lfd, .events = POLLIN};
		if (poll(&pfd, 1, 50) != 1)
			continue;
		int fd = accept(rs->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		rs->serve(rs, fd, n++);
		close(fd);
	}
	return NULL;
}

static void raw_start(struct raw_server *rs, void (*serve)(struct raw_server *, int, int))
{
	memset(rs, 0, sizeof(*rs));
	rs->serve = serve;
	rs->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(rs->lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(rs->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(rs->lfd, 8), 0);
	socklen_t l = sizeof(a);
	assert_int_equal(getsockname(rs->lfd, (struct sockaddr *)&a, &l), 0);
	rs->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&rs->th, NULL, raw_main, rs), 0);
}

static void raw_stop(struct raw_server *rs)
{
	atomic_store(&rs->stop, true);
	pthread_join(rs->th, NULL);
	close(rs->lfd);
}

/* Read one request (head and a Content-Length body): false at EOF. */
static bool raw_read_request(struct raw_server *rs, int fd)
{
	char buf[4096];
	size_t got = 0;
	const char *end = NULL;
	while (end == NULL) {
		if (got == sizeof(buf) - 1)
			return false;
		ssize_t k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (k <= 0)
			return false;
		got += (size_t)k;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	size_t head = (size_t)(end + 4 - buf), len = 0;
	const char *cl = strstr(buf, "Content-Length: ");
	if (cl != NULL && cl < end)
		len = strtoul(cl + 16, NULL, 10);
	while (got < head + len) {
		ssize_t k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (k <= 0)
			return false;
		got += (size_t)k;
	}
	buf[got] = '\0';
	snprintf(rs->last_request, sizeof(rs->last_request), "%s", buf);
	atomic_fetch_add(&rs->requests, 1);
	return true;
}

static void raw_send(int fd, const char *text)
{
	size_t n = strlen(text);
	assert_int_equal(send(fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

static char *raw_url(char *buf, size_t n, const struct raw_server *rs, const char *path)
{
	return test_path(buf, n, "http://127.0.0.1:%u%s", (unsigned)rs->port, path);
}

/* ---- tests: framing ------------------------------------------------------------- */

/* Every request answered chunked (extensions, a trailer), kept alive. */
static void serve_chunked(struct raw_server *rs, int fd, int n)
{
	(void)n;
	while (raw_read_request(rs, fd))
		raw_send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			     "X-Admin-Protocol: gsma/rsp/v2.2.2\r\n"
			     "Transfer-Encoding: chunked\r\n\r\n"
			     "5\r\n{\"a\":\r\n"
			     "A;ext=1\r\n\"chunked!\"\r\n"
			     "1\r\n}\r\n"
			     "0\r\nX-Trailer: t\r\n\r\n");
}

static void test_chunked_body(void **state)
{
	(void)state;
	struct raw_server rs;
	raw_start(&rs, serve_chunked);
	net_client *c = client(F.ci_p256.cert);
	char u[256], b[256];
	struct net_client_response r;
	for (int i = 0; i < 3; i++) { /* and again on the same connection */
		assert_esim(ESIM_OK,
			    net_client_post_json(c, raw_url(u, sizeof(u), &rs, "/x"), "{}", 2, &r));
		assert_int_equal(r.status, 200);
		assert_string_equal(body_str(&r, b, sizeof(b)), "{\"a\":\"chunked!\"}");
		assert_string_equal(r.content_type, "application/json");
		assert_string_equal(r.admin_protocol, NET_ADMIN_PROTOCOL);
		net_client_response_clear(&r);
	}
	assert_int_equal(net_client_connections(c), 1);
	assert_int_equal(atomic_load(&rs.requests), 3);
	/* what went out: one request line, our headers, the body */
	assert_non_null(strstr(rs.last_request, "POST /x HTTP/1.1\r\n"));
	assert_non_null(strstr(rs.last_request, "\r\nHost: 127.0.0.1:"));
	assert_non_null(strstr(rs.last_request, "\r\nContent-Length: 2\r\n"));
	assert_non_null(strstr(rs.last_request, "\r\nUser-Agent: " NET_USER_AGENT_LPA "\r\n"));
	net_client_free(c);
	/* over the cap in the second chunk */
	c = client_cfg(F.ci_p256.cert, NULL, NULL, 10);
	assert_esim(ESIM_E_NET_BODY_TOO_LARGE,
		    net_client_post_json(c, raw_url(u, sizeof(u), &rs, "/x"), "{}", 2, &r));
	assert_int_equal(r.body.len, 0);
	msg_has(c, "body over 10 bytes");
	net_client_free(c);
	raw_stop(&rs);
}

/* 100 Continue first, then an HTTP/1.0 answer that ends when the server
 * closes. */
static void serve_interim_then_close(struct raw_server *rs, int fd, int n)
{
	(void)n;
	if (raw_read_request(rs, fd))
		raw_send(fd, "HTTP/1.1 100 Continue\r\n\r\n"
			     "HTTP/1.0 201 Created\r\nContent-Type: text/plain\r\n\r\n"
			     "until the end");
}

static void test_interim_and_close_delimited(void **state)
{
	(void)state;
	struct raw_server rs;
	raw_start(&rs, serve_interim_then_close);
	net_client *c = client(F.ci_p256.cert);
	char u[256], b[256];
	struct net_client_response r;
	for (int i = 0; i < 2; i++) {
		assert_esim(ESIM_OK, net_client_request(c, "GET", raw_url(u, sizeof(u), &rs, "/"),
							NULL, 0, NULL, 0, &r));
		assert_int_equal(r.status, 201);
		assert_string_equal(body_str(&r, b, sizeof(b)), "until the end");
		net_client_response_clear(&r);
	}
	/* an answer ended by close cannot share its connection */
	assert_int_equal(net_client_connections(c), 2);
	net_client_free(c);
	raw_stop(&rs);
}

static void serve_garbage(struct raw_server *rs, int fd, int n)
{
	(void)n;
	if (raw_read_request(rs, fd))
		raw_send(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
}

static void test_malformed_answer_named(void **state)
{
	(void)state;
	struct raw_server rs;
	raw_start(&rs, serve_garbage);
	net_client *c = client(F.ci_p256.cert);
	char u[256];
	struct net_client_response r;
	assert_esim(ESIM_E_NET_IO, net_client_request(c, "GET", raw_url(u, sizeof(u), &rs, "/"),
						      NULL, 0, NULL, 0, &r));
	assert_int_equal(r.status, 0);
	msg_has(c, "malformed HTTP response");
	msg_has(c, "bad status line");
	net_client_free(c);
	raw_stop(&rs);
}

/* ---- tests: keep-alive ---------------------------------------------------------- */

/* The server closes an idle kept-alive connection (its timeout_ms, 300
 * ms): the next request goes on a new connection, resumes the TLS session,
 * and succeeds. */
static void test_server_closed_keepalive(void **state)
{
	(void)state;
	net_client *c = client(F.ci_p256.cert);
	char u[256], b[256];
	test_path(u, sizeof(u), "https://localhost:%u/info", (unsigned)F.port[L_P256]);
	struct net_client_response r;
	struct net_server_stats s0, s1;
	net_server_get_stats(F.srv, &s0);
	assert_esim(ESIM_OK, net_client_post_json(c, u, "{}", 2, &r));
	net_client_response_clear(&r);
	assert_esim(ESIM_OK, net_client_post_json(c, u, "{}", 2, &r)); /* kept alive */
	net_client_response_clear(&r);
	assert_int_equal(net_client_connections(c), 1);
	sleep_ms(900); /* the server gives up on the idle connection */
	assert_esim(ESIM_OK, net_client_post_json(c, u, "{\"again\":1}", 11, &r));
	assert_int_equal(r.status, 200);
	body_str(&r, b, sizeof(b));
	assert_non_null(strstr(b, "body=11"));
	assert_non_null(strstr(b, "resumed=1"));
	assert_true(net_client_last_resumed(c));
	net_client_response_clear(&r);
	assert_int_equal(net_client_connections(c), 2);
	net_server_get_stats(F.srv, &s1);
	assert_int_equal(s1.connections - s0.connections, 2);
	assert_int_equal(s1.handled - s0.handled, 3);
	net_client_free(c);
}

/* Answers the first request, then reads the second and closes without a
 * word (as a server does that gives up a connection just as a request
 * arrives); later connections are answered. */
static void serve_drop_second(struct raw_server *rs, int fd, int n)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	if (!raw_read_request(rs, fd))
		return;
	raw_send(fd, ok);
	if (n == 0)
		(void)raw_read_request(rs, fd); /* and close */
}

/* A request that died with its kept-alive connection is sent again on a
 * new one only when repeating it is harmless: a GET, yes; a POST the
 * server may have read, no (the caller's retry policy decides). */
static void test_dead_keepalive_resend_only_when_safe(void **state)
{
	(void)state;
	char u[256], b[64];
	struct net_client_response r;

	struct raw_server rs;
	raw_start(&rs, serve_drop_second);
	net_client *c = client(F.ci_p256.cert);
	assert_esim(ESIM_OK, net_client_request(c, "GET", raw_url(u, sizeof(u), &rs, "/a"), NULL, 0,
						NULL, 0, &r));
	net_client_response_clear(&r);
	assert_esim(ESIM_OK, net_client_request(c, "GET", raw_url(u, sizeof(u), &rs, "/b"), NULL, 0,
						NULL, 0, &r));
	assert_string_equal(body_str(&r, b, sizeof(b)), "ok");
	net_client_response_clear(&r);
	assert_int_equal(net_client_connections(c), 2);
	assert_int_equal(atomic_load(&rs.requests), 3); /* /a, /b dropped, /b again */
	net_client_free(c);
	raw_stop(&rs);

	raw_start(&rs, serve_drop_second);
	c = client(F.ci_p256.cert);
	assert_esim(ESIM_OK,
		    net_client_post_json(c, raw_url(u, sizeof(u), &rs, "/a"), "{}", 2, &r));
	net_client_response_clear(&r);
	assert_esim(ESIM_E_NET_IO,
		    net_client_post_json(c, raw_url(u, sizeof(u), &rs, "/b"), "{}", 2, &r));
	msg_has(c, "before it answered");
	sleep_ms(100);
	assert_int_equal(atomic_load(&rs.requests), 2); /* the POST went out once */
	assert_int_equal(net_client_connections(c), 1);
	assert_true(net_error_is_transient(ESIM_E_NET_IO, 0));
	net_client_free(c);
	raw_stop(&rs);
}

/* ---- tests: server certificates ---------------------------------------------------- */

static void expect_cert_refused(const char *ca, int listener, const char *host, esim_err want,
				const char *text)
{
	net_client *c = client(ca);
	char u[256];
	test_path(u, sizeof(u), "https://%s:%u/info", host, (unsigned)F.port[listener]);
	struct net_client_response r;
	int before = atomic_load(&F.handled);
	esim_err e = net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r);
	if (e != want)
		fail_msg("%s: got %s (%s)", u, esim_errname(e), net_client_errmsg(c));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.body.len, 0);
	msg_has(c, "TLS verify failed: ");
	msg_has(c, text);
	assert_int_equal(atomic_load(&F.handled), before);
	assert_false(net_error_is_transient(e, 0));
	net_client_free(c);
}

static void test_wrong_host_refused(void **state)
{
	(void)state;
	/* a good chain for smdp.other.example, asked for by name and by IP */
	expect_cert_refused(F.ci_p256.cert, L_OTHERHOST, "localhost", ESIM_E_NET_HOSTNAME,
			    "not for localhost");
	expect_cert_refused(F.ci_p256.cert, L_OTHERHOST, "127.0.0.1", ESIM_E_NET_HOSTNAME,
			    "not for 127.0.0.1");
}

static void test_cert_not_under_ca_refused(void **state)
{
	(void)state;
	expect_cert_refused(F.ci_p256.cert, L_OTHERCI, "localhost", ESIM_E_NET_UNTRUSTED_SERVER,
			    "unable to get local issuer certificate");
	/* the brainpool CI does not vouch for the P-256 server either */
	expect_cert_refused(F.ci_brp.cert, L_P256, "localhost", ESIM_E_NET_UNTRUSTED_SERVER,
			    "issuer");
	/* expired and for another host: untrusted, whatever its name (the
	 * name is only looked at on a chain that is otherwise good) */
	expect_cert_refused(F.ci_p256.cert, L_EXPIRED, "localhost", ESIM_E_NET_UNTRUSTED_SERVER,
			    "certificate has expired");
}

static void test_brainpool_server_accepted(void **state)
{
	(void)state;
	net_client *c = client(F.ci_brp.cert);
	char u[256], b[256];
	test_path(u, sizeof(u), "https://localhost:%u/info", (unsigned)F.port[L_BRP]);
	struct net_client_response r;
	assert_esim(ESIM_OK, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	body_str(&r, b, sizeof(b));
	assert_non_null(strstr(b, "tls=1 "));
	/* OpenSSL 3.0 has brainpool only in TLS 1.2; the server caps it there */
	assert_non_null(strstr(b, "version=TLSv1."));
	net_client_response_clear(&r);
	/* a new connection resumes the brainpool session */
	net_client_fresh_connect(c);
	assert_esim(ESIM_OK, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	assert_true(net_client_last_resumed(c));
	net_client_response_clear(&r);
	net_client_free(c);
}

/* ---- tests: mutual TLS -------------------------------------------------------------- */

static void test_mtls_with_and_without_cert(void **state)
{
	(void)state;
	char u[256], b[256], want[2 * NET_SHA256_LEN + 8];
	test_path(u, sizeof(u), "https://localhost:%u/info", (unsigned)F.port[L_MTLS]);
	uint8_t fp[NET_SHA256_LEN];
	assert_int_equal(EVP_Digest(F.op1.iss.der, F.op1.iss.der_len, fp, NULL, EVP_sha256(), NULL),
			 1);
	strcpy(want, "cert=");
	for (size_t i = 0; i < NET_SHA256_LEN; i++)
		snprintf(want + 5 + 2 * i, 3, "%02x", fp[i]);
	struct net_client_response r;

	net_client *c = client_cfg(F.ci_p256.cert, F.op1.cert, F.op1.key, 0);
	assert_esim(ESIM_OK, net_client_post_json(c, u, "{}", 2, &r));
	assert_non_null(strstr(body_str(&r, b, sizeof(b)), want));
	net_client_response_clear(&r);
	net_client_free(c);

	c = client(F.ci_p256.cert);
	int before = atomic_load(&F.handled);
	esim_err e = net_client_post_json(c, u, "{}", 2, &r);
	if (e != ESIM_E_NET_TLS)
		fail_msg("without a certificate: %s (%s)", esim_errname(e), net_client_errmsg(c));
	assert_int_equal(atomic_load(&F.handled), before);
	msg_has(c, "localhost:");
	net_client_free(c);

	/* a key of another certificate: named before anything is sent */
	c = client_cfg(F.ci_p256.cert, F.op1.cert, F.tls_p256.key, 0);
	assert_esim(ESIM_E_NET_CLIENT_CERT, net_client_post_json(c, u, "{}", 2, &r));
	msg_has(c, "does not match");
	net_client_free(c);
	c = client_cfg(F.ci_p256.cert, "/nonexistent/op.pem", F.op1.key, 0);
	assert_esim(ESIM_E_NET_CLIENT_CERT, net_client_post_json(c, u, "{}", 2, &r));
	msg_has(c, "/nonexistent/op.pem");
	net_client_free(c);
	assert_int_equal(atomic_load(&F.handled), before);
}

/* ---- tests: caps and time ----------------------------------------------------------- */

static void test_response_over_cap_refused(void **state)
{
	(void)state;
	net_client *c = client_cfg(F.ci_p256.cert, NULL, NULL, 1000);
	char u[256];
	test_path(u, sizeof(u), "https://localhost:%u/big", (unsigned)F.port[L_P256]);
	struct net_client_response r;
	assert_esim(ESIM_E_NET_BODY_TOO_LARGE,
		    net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.body.len, 0);
	msg_has(c, "body over 1000 bytes");
	/* the connection carrying the rest of that body is not reused */
	test_path(u, sizeof(u), "https://localhost:%u/info", (unsigned)F.port[L_P256]);
	assert_esim(ESIM_OK, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	assert_int_equal(r.status, 200);
	net_client_response_clear(&r);
	assert_int_equal(net_client_connections(c), 2);
	net_client_free(c);
}

/* A listening socket whose accept queue is full and never drained: Linux
 * drops further SYNs, so a connect to it hangs like one to a black-hole
 * address (and needs no route to the outside). */
static int black_hole(uint16_t *port, int *fillers, size_t n_fillers)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	socklen_t l = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	size_t i = 0;
	for (; i < n_fillers; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(fillers[i] >= 0);
		int r = connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
		if (r != 0 && errno == EINPROGRESS) {
			struct pollfd p = {.fd = fillers[i], .events = POLLOUT};
			if (poll(&p, 1, 200) == 0) { /* this one hangs: the queue is full */
				i++;
				break;
			}
		}
	}
	for (; i < n_fillers; i++)
		fillers[i] = -1;
	return lfd;
}

static void test_connect_timeout_bounded(void **state)
{
	(void)state;
	int fillers[8];
	uint16_t port;
	int lfd = black_hole(&port, fillers, 8);
	struct net_client_config cc = {
	    .ca_file = F.ci_p256.cert, .connect_timeout_ms = 300, .timeout_ms = 20000};
	net_client *c;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char u[256];
	test_path(u, sizeof(u), "https://127.0.0.1:%u/info", (unsigned)port);
	struct net_client_response r;
	double t0 = now_ms();
	assert_esim(ESIM_E_NET_TIMEOUT, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	double took = now_ms() - t0;
	if (took < 250 || took > 2000)
		fail_msg("connect gave up after %.0f ms, want ~300", took);
	msg_has(c, "timed out");
	char where[64];
	snprintf(where, sizeof(where), "connect to 127.0.0.1:%u", (unsigned)port);
	msg_has(c, where);
	assert_true(net_error_is_transient(ESIM_E_NET_TIMEOUT, 0));
	net_client_free(c);
	for (size_t i = 0; i < 8; i++)
		if (fillers[i] >= 0)
			close(fillers[i]);
	close(lfd);
}

/* ---- tests: what the errors say ------------------------------------------------------- */

static void test_errors_name_what_failed(void **state)
{
	(void)state;
	net_client *c = client(F.ci_p256.cert);
	char u[256], want[64];
	struct net_client_response r;
	/* a port nobody listens on */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	test_path(u, sizeof(u), "https://127.0.0.1:%u/x", (unsigned)ntohs(a.sin_port));
	assert_esim(ESIM_E_NET_CONNECT, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	snprintf(want, sizeof(want), "connect to 127.0.0.1:%u refused",
		 (unsigned)ntohs(a.sin_port));
	msg_has(c, want);
	/* an HTTP status */
	test_path(u, sizeof(u), "https://localhost:%u/nowhere", (unsigned)F.port[L_P256]);
	assert_esim(ESIM_E_NET_HTTP_STATUS, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	assert_int_equal(r.status, 404);
	assert_string_equal(net_client_errmsg(c), "HTTP status 404");
	net_client_response_clear(&r);
	/* success clears the message */
	test_path(u, sizeof(u), "https://localhost:%u/info", (unsigned)F.port[L_P256]);
	assert_esim(ESIM_OK, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	assert_string_equal(net_client_errmsg(c), "");
	net_client_response_clear(&r);
	/* what is refused before anything is sent */
	assert_esim(ESIM_E_NET_BAD_REQUEST,
		    net_client_request(c, "GET", "ftp://localhost/x", NULL, 0, NULL, 0, &r));
	msg_has(c, "not http:// or https://");
	assert_esim(ESIM_E_NET_BAD_REQUEST,
		    net_client_request(c, "GET", "https://user@localhost/x", NULL, 0, NULL, 0, &r));
	assert_esim(
	    ESIM_E_NET_BAD_REQUEST,
	    net_client_request(c, "GET", "https://localhost:99999/x", NULL, 0, NULL, 0, &r));
	msg_has(c, "bad port");
	assert_esim(ESIM_E_NET_BAD_REQUEST,
		    net_client_request(c, "GET", "https://localhost/a b", NULL, 0, NULL, 0, &r));
	const struct net_header inject[] = {{"X-A", "1\r\nX-Injected: 1"}};
	assert_esim(ESIM_E_NET_BAD_REQUEST,
		    net_client_request(c, "GET", u, inject, 1, NULL, 0, &r));
	msg_has(c, "control character");
	const struct net_header framing[] = {{"Content-Length", "5"}};
	assert_esim(ESIM_E_NET_BAD_REQUEST,
		    net_client_request(c, "GET", u, framing, 1, NULL, 0, &r));
	/* a CA file without a certificate */
	char empty[600];
	test_path(empty, sizeof(empty), "%s/empty.pem", F.dir);
	FILE *f = fopen(empty, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	net_client *bad = client(empty);
	assert_esim(ESIM_E_ARG, net_client_request(bad, "GET", u, NULL, 0, NULL, 0, &r));
	msg_has(bad, empty);
	net_client_free(bad);
	net_client_free(c);
}

/* ---- esim's start-up: only the libraries it uses -------------------------------------- */

static void test_esim_loads_only_what_it_uses(void **state)
{
	(void)state;
	char esim[600], cmd[800], line[512];
	test_path(esim, sizeof(esim), "%s/esim", test_bin_dir());
	if (access(esim, X_OK) != 0)
		fail_msg("%s is not built (build all targets before the tests)", esim);
	/* what ldd prints: the dynamic loader lists every object it would load */
	snprintf(cmd, sizeof(cmd), "LD_TRACE_LOADED_OBJECTS=1 %s 2>&1", esim);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	int n = 0;
	char all[4096] = "";
	/* a sanitizer build adds its runtime and what that needs */
	static const char *const runtime[] = {"libasan",  "libubsan", "libstdc++",
					      "libgcc_s", "libm.so",  "libclang_rt"};
	while (fgets(line, sizeof(line), p) != NULL) {
		bool rt = false;
		for (size_t i = 0; i < sizeof(runtime) / sizeof(runtime[0]); i++)
			rt = rt || strstr(line, runtime[i]) != NULL;
		n += !rt;
		if (strlen(all) + strlen(line) < sizeof(all))
			strcat(all, line);
		static const char *const unwanted[] = {"libcurl",  "libpq",	"libsqlite3",
						       "libevent", "libgnutls", "libssh",
						       "libkrb5",  "libldap",	"libnghttp2"};
		for (size_t i = 0; i < sizeof(unwanted) / sizeof(unwanted[0]); i++)
			if (strstr(line, unwanted[i]) != NULL)
				fail_msg("esim loads %s:\n%s", unwanted[i], line);
	}
	assert_int_equal(pclose(p), 0);
	/* libssl, libcrypto, libjansson, libpcsclite, libc, the loader, vdso */
	if (n > 8)
		fail_msg("esim loads %d objects:\n%s", n, all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chunked_body),
	    cmocka_unit_test(test_interim_and_close_delimited),
	    cmocka_unit_test(test_malformed_answer_named),
	    cmocka_unit_test(test_server_closed_keepalive),
	    cmocka_unit_test(test_dead_keepalive_resend_only_when_safe),
	    cmocka_unit_test(test_wrong_host_refused),
	    cmocka_unit_test(test_cert_not_under_ca_refused),
	    cmocka_unit_test(test_brainpool_server_accepted),
	    cmocka_unit_test(test_mtls_with_and_without_cert),
	    cmocka_unit_test(test_response_over_cap_refused),
	    cmocka_unit_test(test_connect_timeout_bounded),
	    cmocka_unit_test(test_errors_name_what_failed),
	    cmocka_unit_test(test_esim_loads_only_what_it_uses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
