/*
 * net_server_reload_tls: a listener's certificate chain and key read again
 * from the same paths (what esim-smdp and esim-operator do on SIGHUP, issue
 * 17), against net_client on loopback with a test PKI issued in process.
 * Checks that new connections get the new identity, that a failed reload
 * changes nothing and names the listener, that a kept-alive connection
 * made before the reload is still served, and that the client CA of a
 * mutual-TLS listener survives the reload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "esim/net.h"
#include "esim/pki.h"

struct pem_id {
	struct crypto_issued iss;
	char cert[512];
	char key[512];
};

static char *dir;
static struct pem_id ci_a, ci_b, tls_a, tls_b, op_ca, op1;
static char live_cert[512], live_key[512];

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
	size_t n = 0;
	uint8_t *p = test_read(from, &n);
	assert_non_null(p);
	write_bytes(to, p, n);
	free(p);
}

static void issue(struct pem_id *id, const char *name, crypto_issue_kind kind,
		  const struct pem_id *issuer)
{
	time_t now = time(NULL);
	struct crypto_issue_params p = {.kind = kind,
					.curve = CRYPTO_CURVE_P256,
					.not_before = now - 3600,
					.not_after = now + 86400};
	if (issuer != NULL) {
		p.issuer_der = issuer->iss.der;
		p.issuer_der_len = issuer->iss.der_len;
		p.issuer_key = issuer->iss.key;
	}
	assert_esim(ESIM_OK, crypto_issue(&p, &id->iss));
	esim_buf c = ESIM_BUF_INIT, k = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_pki_cert_pem(id->iss.der, id->iss.der_len, &c));
	assert_esim(ESIM_OK, crypto_pki_key_pem(id->iss.key, &k));
	test_path(id->cert, sizeof(id->cert), "%s/%s.pem", dir, name);
	test_path(id->key, sizeof(id->key), "%s/%s.key", dir, name);
	write_bytes(id->cert, c.data, c.len);
	write_bytes(id->key, k.data, k.len);
	esim_buf_free(&c);
	esim_buf_wipe_free(&k);
}

static esim_err hello(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	esim_err e = net_response_set(resp, 200, "text/plain");
	if (e == ESIM_OK)
		e = net_response_append(resp, "hello", 5);
	return e;
}

static int setup(void **state)
{
	(void)state;
	dir = test_mkdtemp();
	issue(&ci_a, "ci_a", CRYPTO_ISSUE_CI, NULL);
	issue(&ci_b, "ci_b", CRYPTO_ISSUE_CI, NULL);
	issue(&tls_a, "tls_a", CRYPTO_ISSUE_DP_TLS, &ci_a);
	issue(&tls_b, "tls_b", CRYPTO_ISSUE_DP_TLS, &ci_b);
	issue(&op_ca, "op_ca", CRYPTO_ISSUE_CI, NULL);
	issue(&op1, "op1", CRYPTO_ISSUE_OPERATOR, &op_ca);
	test_path(live_cert, sizeof live_cert, "%s/live.pem", dir);
	test_path(live_key, sizeof live_key, "%s/live.key", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	struct pem_id *ids[] = {&ci_a, &ci_b, &tls_a, &tls_b, &op_ca, &op1};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		crypto_issued_clear(&ids[i]->iss);
	test_rm_rf(dir);
	free(dir);
	return 0;
}

/* One GET /hello on a new client that trusts only ca (client certificate
 * when cert is set): the transport's result. */
static esim_err get_with(uint16_t port, const char *ca, const char *cert, const char *key)
{
	struct net_client_config cc = {.ca_file = ca,
				       .client_cert_file = cert,
				       .client_key_file = key,
				       .connect_timeout_ms = 5000,
				       .timeout_ms = 10000};
	net_client *c = NULL;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char u[128];
	test_path(u, sizeof u, "https://127.0.0.1:%u/hello", (unsigned)port);
	struct net_client_response r;
	esim_err err = net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r);
	if (err == ESIM_OK) {
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body.len, 5);
		assert_memory_equal(r.body.data, "hello", 5);
	}
	net_client_response_clear(&r);
	net_client_free(c);
	return err;
}

static net_server *start_on_live(bool mtls, int *id, uint16_t *port)
{
	net_server *s = NULL;
	struct net_server_config sc = {.threads = 2};
	assert_esim(ESIM_OK, net_server_new(&sc, &s));
	struct net_listener_config lc = {.address = "127.0.0.1",
					 .tls = true,
					 .cert_chain_file = live_cert,
					 .key_file = live_key,
					 .client_auth =
					     mtls ? NET_CLIENT_AUTH_REQUIRE : NET_CLIENT_AUTH_NONE,
					 .client_ca_file = mtls ? op_ca.cert : NULL};
	assert_esim(ESIM_OK, net_server_add_listener(s, &lc, id));
	assert_esim(ESIM_OK, net_server_add_route(s, *id, "GET", "/hello", hello, NULL));
	assert_esim(ESIM_OK, net_server_start(s));
	*port = net_server_port(s, *id);
	return s;
}

/* The renewed certificate is served to new connections after the reload,
 * and only after it. */
static void test_reload_serves_new_certificate(void **state)
{
	(void)state;
	copy_file(tls_a.cert, live_cert);
	copy_file(tls_a.key, live_key);
	int id = -1;
	uint16_t port = 0;
	net_server *s = start_on_live(false, &id, &port);
	assert_esim(ESIM_OK, get_with(port, ci_a.cert, NULL, NULL));
	assert_esim(ESIM_E_NET_UNTRUSTED_SERVER, get_with(port, ci_b.cert, NULL, NULL));

	/* the files change: nothing happens until the reload */
	copy_file(tls_b.cert, live_cert);
	copy_file(tls_b.key, live_key);
	assert_esim(ESIM_OK, get_with(port, ci_a.cert, NULL, NULL));

	int bad = 7;
	assert_esim(ESIM_OK, net_server_reload_tls(s, &bad));
	assert_int_equal(bad, -1);
	assert_esim(ESIM_OK, get_with(port, ci_b.cert, NULL, NULL));
	assert_esim(ESIM_E_NET_UNTRUSTED_SERVER, get_with(port, ci_a.cert, NULL, NULL));
	net_server_free(s);
}

/* A reload that cannot load (a key that does not match, a broken file)
 * is refused as a whole, names the listener, and the identity in use
 * stays. */
static void test_failed_reload_keeps_identity(void **state)
{
	(void)state;
	copy_file(tls_a.cert, live_cert);
	copy_file(tls_a.key, live_key);
	int id = -1;
	uint16_t port = 0;
	net_server *s = start_on_live(false, &id, &port);

	copy_file(tls_b.cert, live_cert); /* B's chain with A's key */
	int bad = -1;
	assert_esim(ESIM_E_NET_TLS_CONFIG, net_server_reload_tls(s, &bad));
	assert_int_equal(bad, id);
	assert_esim(ESIM_OK, get_with(port, ci_a.cert, NULL, NULL));

	write_bytes(live_key, "not a key\n", 10);
	copy_file(tls_a.cert, live_cert);
	assert_esim(ESIM_E_NET_TLS_CONFIG, net_server_reload_tls(s, &bad));
	assert_int_equal(bad, id);
	assert_esim(ESIM_OK, get_with(port, ci_a.cert, NULL, NULL));
	net_server_free(s);
}

/* A connection kept alive from before the reload is still answered (it
 * keeps the identity it was set up with); the reloaded context keeps
 * requiring and checking client certificates against the client CA. */
static void test_reload_keeps_connections_and_client_auth(void **state)
{
	(void)state;
	copy_file(tls_a.cert, live_cert);
	copy_file(tls_a.key, live_key);
	int id = -1;
	uint16_t port = 0;
	net_server *s = start_on_live(true, &id, &port);
	struct net_client_config cc = {.ca_file = ci_a.cert,
				       .client_cert_file = op1.cert,
				       .client_key_file = op1.key,
				       .connect_timeout_ms = 5000,
				       .timeout_ms = 10000};
	net_client *c = NULL;
	assert_esim(ESIM_OK, net_client_new(&cc, &c));
	char u[128];
	test_path(u, sizeof u, "https://127.0.0.1:%u/hello", (unsigned)port);
	struct net_client_response r;
	assert_esim(ESIM_OK, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	net_client_response_clear(&r);

	copy_file(tls_b.cert, live_cert);
	copy_file(tls_b.key, live_key);
	assert_esim(ESIM_OK, net_server_reload_tls(s, NULL));
	/* same kept-alive connection, old identity: still served */
	assert_esim(ESIM_OK, net_client_request(c, "GET", u, NULL, 0, NULL, 0, &r));
	assert_int_equal(r.status, 200);
	net_client_response_clear(&r);
	net_client_free(c);

	assert_esim(ESIM_OK, get_with(port, ci_b.cert, op1.cert, op1.key));
	assert_int_not_equal(get_with(port, ci_b.cert, NULL, NULL), ESIM_OK);
	net_server_free(s);
}

/* A plain-HTTP listener has nothing to reload; a server without TLS
 * listeners reloads as a no-op. */
static void test_reload_without_tls(void **state)
{
	(void)state;
	net_server *s = NULL;
	assert_esim(ESIM_OK, net_server_new(NULL, &s));
	struct net_listener_config lc = {.address = "127.0.0.1"};
	int id = -1;
	assert_esim(ESIM_OK, net_server_add_listener(s, &lc, &id));
	assert_esim(ESIM_OK, net_server_reload_tls(s, NULL));
	net_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reload_serves_new_certificate),
	    cmocka_unit_test(test_failed_reload_keeps_identity),
	    cmocka_unit_test(test_reload_keeps_connections_and_client_auth),
	    cmocka_unit_test(test_reload_without_tls),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
