/*
 * The SM-DP+ over HTTPS (digest 5.1, 9.2): ES9+ on a NIST and a brainpool
 * listener, each with its DPtls identity, driven by the test LPA through
 * net_client; ES2+ with mutual TLS pinned to the operator's certificate
 * (an unknown certificate is refused in the handshake); /metrics on the
 * admin listener (test_smdp_abuse.c: on no other); and the
 * HandleDownloadProgressInfo outbox delivered to an operator endpoint;
 * pinned operator certificates outside their validity refused for ES2+.
 */
#include <stdatomic.h>

#include <openssl/evp.h>

#include "esim/cert.h"
#include "test_smdp_fixture.h"

static struct sfx F;
static atomic_int callbacks;

static esim_err cb_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)arg;
	json_t *j = json_loadb((const char *)req->body, req->body_len, 0, NULL);
	if (j && json_integer_value(json_object_get(j, "notificationPointId")) > 0 &&
	    json_object_get(j, "iccid"))
		atomic_fetch_add(&callbacks, 1);
	json_decref(j);
	return net_response_set(resp, 204, NULL);
}

static void file_sha(const char *path, uint8_t sha[32])
{
	crypto_cert *c;
	assert_esim(ESIM_OK, crypto_cert_load_file(path, &c));
	size_t len;
	const uint8_t *der = crypto_cert_der(c, &len);
	unsigned hl;
	assert_int_equal(EVP_Digest(der, len, sha, &hl, EVP_sha256(), NULL), 1);
	crypto_cert_free(c);
}

static void test_https(void **state)
{
	(void)state;
	char p[12][700];
	snprintf(p[0], 700, "%s/nist/dptls.pem", F.pki);
	snprintf(p[1], 700, "%s/nist/dptls.key.pem", F.pki);
	snprintf(p[2], 700, "%s/brp/dptls.pem", F.pki);
	snprintf(p[3], 700, "%s/brp/dptls.key.pem", F.pki);
	snprintf(p[4], 700, "%s/nist/ci.pem", F.pki);
	snprintf(p[5], 700, "%s/brp/ci.pem", F.pki);
	snprintf(p[6], 700, "%s/nist/operator.pem", F.pki);
	snprintf(p[7], 700, "%s/nist/operator.key.pem", F.pki);
	snprintf(p[8], 700, "%s/brp/operator.pem", F.pki);
	snprintf(p[9], 700, "%s/brp/operator.key.pem", F.pki);

	F.cfg.log = getenv("SMDP_LOG") != NULL;
	sfx_open_smdp(&F, NULL, 4);
	uint8_t op_sha[32];
	file_sha(p[6], op_sha);
	assert_esim(ESIM_OK, smdp_add_operator(F.d, "ACME", op_sha, NULL));

	net_server *srv;
	struct net_server_config sc = {.threads = 2};
	assert_esim(ESIM_OK, net_server_new(&sc, &srv));
	int l_nist, l_brp, l_es2, l_cb, l_admin;
	struct net_listener_config lc = {.address = "127.0.0.1", .tls = true};
	lc.cert_chain_file = p[0];
	lc.key_file = p[1];
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_nist));
	lc.cert_chain_file = p[2];
	lc.key_file = p[3];
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_brp));
	uint8_t pins[1][32];
	memcpy(pins[0], op_sha, 32);
	lc.cert_chain_file = p[0];
	lc.key_file = p[1];
	lc.client_auth = NET_CLIENT_AUTH_REQUIRE;
	lc.client_pins = (const uint8_t(*)[32])pins;
	lc.n_client_pins = 1;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_es2));
	struct net_listener_config cl = {
	    .address = "127.0.0.1", .tls = true, .cert_chain_file = p[0], .key_file = p[1]};
	assert_esim(ESIM_OK, net_server_add_listener(srv, &cl, &l_cb));
	assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l_nist, l_es2));
	assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l_brp, l_es2));
	struct net_listener_config al = {.address = "127.0.0.1"};
	assert_esim(ESIM_OK, net_server_add_listener(srv, &al, &l_admin));
	assert_esim(ESIM_OK, smdp_add_admin_routes(F.d, srv, l_admin));
	assert_esim(ESIM_OK, net_server_add_route(srv, l_cb, "POST",
						  "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
						  cb_handler, NULL));
	assert_esim(ESIM_OK, net_server_start(srv));

	/* the callback URL of OP1 points at our operator endpoint */
	char cb_url[128];
	snprintf(cb_url, sizeof cb_url,
		 "https://127.0.0.1:%u/gsma/rsp2/es2plus/handleDownloadProgressInfo",
		 net_server_port(srv, l_cb));
	assert_esim(ESIM_OK, smdp_add_operator(F.d, "OP3", NULL, cb_url));

	/* ES2+ over mutual TLS as ACME: orders need a type ACME owns */
	uint8_t *upp;
	size_t upp_len;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	struct smdp_profile_type t = {.name = "ACMETYPE",
				      .operator_name = "ACME",
				      .upp = upp,
				      .upp_len = upp_len,
				      .spn = "ACME",
				      .profile_name = "p",
				      .profile_class = 2};
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	free(upp);
	assert_esim(ESIM_OK, smdp_import_profile(F.d, "ACMETYPE", "89000123459999999991", NULL));

	struct net_client_config ccfg = {
	    .ca_file = p[4], .client_cert_file = p[6], .client_key_file = p[7]};
	net_client *op;
	assert_esim(ESIM_OK, net_client_new(&ccfg, &op));
	char url[256];
	snprintf(url, sizeof url, "https://localhost:%u/gsma/rsp2/es2plus/downloadOrder",
		 net_server_port(srv, l_es2));
	const char *body = "{\"header\":{\"functionRequesterIdentifier\":\"ACME\","
			   "\"functionCallIdentifier\":\"h1\"},\"profileType\":\"ACMETYPE\"}";
	struct net_client_response r;
	assert_esim(ESIM_OK, net_client_post_json(op, url, body, strlen(body), &r));
	assert_int_equal(r.status, 200);
	assert_non_null(strstr((const char *)r.body.data, "\"iccid\":\"89000123459999999991\""));
	assert_string_equal(r.admin_protocol, NET_ADMIN_PROTOCOL);
	net_client_response_clear(&r);
	/* with a bearer token configured, the Authorization header is needed
	 * too: without it 1.1.1 / 1.2; with it the call gets past the caller
	 * checks (and finds no profile left: 8.2.5 / 3.7) */
	assert_esim(ESIM_OK, smdp_set_operator_token(F.d, "ACME", "tok-123"));
	const char *body2 = "{\"header\":{\"functionRequesterIdentifier\":\"ACME\","
			    "\"functionCallIdentifier\":\"h2\"},\"profileType\":\"ACMETYPE\"}";
	assert_esim(ESIM_OK, net_client_post_json(op, url, body2, strlen(body2), &r));
	assert_non_null(strstr((const char *)r.body.data, "\"subjectCode\":\"1.1.1\""));
	net_client_response_clear(&r);
	const struct net_header bh[2] = {{"Content-Type", "application/json"},
					 {"Authorization", "Bearer tok-123"}};
	assert_esim(ESIM_OK, net_client_request(op, "POST", url, bh, 2, (const uint8_t *)body2,
						strlen(body2), &r));
	assert_non_null(strstr((const char *)r.body.data, "\"subjectCode\":\"8.2.5\""));
	assert_non_null(strstr((const char *)r.body.data, "\"reasonCode\":\"3.7\""));
	net_client_response_clear(&r);
	net_client_free(op);
	/* an unknown client certificate never reaches the handler */
	ccfg.client_cert_file = p[8];
	ccfg.client_key_file = p[9];
	assert_esim(ESIM_OK, net_client_new(&ccfg, &op));
	assert_int_not_equal(net_client_post_json(op, url, body, strlen(body), &r), ESIM_OK);
	net_client_response_clear(&r);
	net_client_free(op);

	/* ES9+ over HTTPS on both curves */
	for (int c = 0; c < 2; c++) {
		char base[128], mid[64];
		snprintf(base, sizeof base, "https://localhost:%u",
			 net_server_port(srv, c == 0 ? l_nist : l_brp));
		struct net_client_config lcfg = {.ca_file = p[4 + c]};
		net_client *cli;
		assert_esim(ESIM_OK, net_client_new(&lcfg, &cli));
		struct lpa_http h = {cli, base};
		char prefix[31], eid[33];
		snprintf(prefix, sizeof prefix, "89049032000000000000000000100%d", c);
		assert_esim(ESIM_OK, crypto_pki_eid_complete(prefix, eid));
		euicc *e = sfx_euicc_eid(&F, c == 0 ? "nist" : "brp", eid);
		struct lpa_driver drv = {sfx_es10, e, lpa_es9_http, &h, SFX_FQDN};
		sfx_order(&F, (size_t)c + 1, NULL, NULL, NULL, true, mid);
		struct lpa_session s;
		lpa_session_init(&s, &drv);
		assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
		lpa_session_clear(&s);
		assert_int_equal(sfx_state(&F, (size_t)c + 1), SMDP_INSTALLED);
		/* kept alive: one connection for the whole download */
		assert_int_equal(net_client_connections(cli), 1);
		/* a wrong content type is refused with the generic code */
		snprintf(url, sizeof url, "%s/gsma/rsp2/es9plus/initiateAuthentication", base);
		struct net_header hd = {"Content-Type", "text/plain"};
		assert_esim(ESIM_OK, net_client_request(cli, "POST", url, &hd, 1,
							(const uint8_t *)"{}", 2, &r));
		assert_non_null(strstr((const char *)r.body.data, "\"subjectCode\":\"1.2.1\""));
		net_client_response_clear(&r);
		if (c == 0) {
			snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics",
				 net_server_port(srv, l_admin));
			assert_esim(ESIM_OK,
				    net_client_request(cli, "GET", url, NULL, 0, NULL, 0, &r));
			assert_non_null(strstr((const char *)r.body.data, "smdp_installs_total 1"));
			net_client_response_clear(&r);
		}
		euicc_close(e);
		net_client_free(cli);
	}

	/* the outbox: points 3 and 4 of both downloads, to OP1's URL (which
	 * does not resolve: retried later) ... */
	size_t pending = 0, delivered = 0;
	assert_esim(ESIM_OK, smdp_outbox_pending(F.d, &pending));
	assert_int_equal(pending, 4);
	struct net_client_config ocfg = {
	    .ca_file = p[4], .connect_timeout_ms = 2000, .timeout_ms = 4000};
	assert_esim(ESIM_OK, smdp_outbox_run(F.d, &ocfg, &delivered));
	assert_int_equal(delivered, 0);
	assert_esim(ESIM_OK, smdp_outbox_pending(F.d, &pending));
	assert_int_equal(pending, 4);
	/* ... and an order of OP3, whose callbacks reach its endpoint */
	const uint8_t op3_sha[32] = {3, 3, 3};
	assert_esim(ESIM_OK, smdp_add_operator(F.d, "OP3b", op3_sha, cb_url));
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	t.name = "OP3TYPE";
	t.operator_name = "OP3b";
	t.upp = upp;
	t.upp_len = upp_len;
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	free(upp);
	assert_esim(ESIM_OK, smdp_import_profile(F.d, "OP3TYPE", "89000123459999999992", NULL));
	char iccid[64], mid[64];
	assert_esim(ESIM_OK,
		    smdp_admin_order(F.d, "OP3b", "OP3TYPE", NULL, NULL, NULL, iccid, mid));
	assert_string_equal(iccid, "89000123459999999992");
	euicc *e = sfx_euicc(&F, "nist", NULL);
	struct lpa_driver drv = {sfx_es10, e, sfx_es9, F.d, SFX_FQDN};
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	euicc_close(e);
	assert_esim(ESIM_OK, smdp_outbox_run(F.d, &ocfg, &delivered));
	assert_int_equal(delivered, 2);
	assert_int_equal(atomic_load(&callbacks), 2);
	assert_esim(ESIM_OK, smdp_outbox_pending(F.d, &pending));
	assert_int_equal(pending, 4);
	net_server_stop(srv);
	net_server_free(srv);
	sfx_close(&F);
}

/* Write an issued certificate and its key as PEM files. */
static void write_pem(const struct crypto_issued *it, const char *cert_path, const char *key_path)
{
	esim_buf c = ESIM_BUF_INIT, k = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_pki_cert_pem(it->der, it->der_len, &c));
	assert_esim(ESIM_OK, crypto_pki_key_pem(it->key, &k));
	FILE *f = fopen(cert_path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(c.data, 1, c.len, f), c.len);
	fclose(f);
	f = fopen(key_path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(k.data, 1, k.len, f), k.len);
	fclose(f);
	esim_buf_free(&c);
	esim_buf_wipe_free(&k);
}

/* A pinned operator certificate that has expired (or is not yet valid)
 * passes the TLS handshake (pins ignore validity) but ES2+ refuses the
 * caller with 1.1.1 / 6.3 (6.1), and nothing is ordered. */
static void test_es2_expired_pin(void **state)
{
	(void)state;
	char p[8][700];
	snprintf(p[0], 700, "%s/nist/dptls.pem", F.pki);
	snprintf(p[1], 700, "%s/nist/dptls.key.pem", F.pki);
	snprintf(p[2], 700, "%s/nist/ci.pem", F.pki);
	snprintf(p[3], 700, "%s/nist/ci.der", F.pki);
	snprintf(p[4], 700, "%s/nist/ci.key.pem", F.pki);
	snprintf(p[5], 700, "%s/oldop.pem", F.dir);
	snprintf(p[6], 700, "%s/oldop.key.pem", F.dir);
	snprintf(p[7], 700, "%s/newop.pem", F.dir);
	char newkey[700];
	snprintf(newkey, sizeof newkey, "%s/newop.key.pem", F.dir);
	sfx_open_smdp(&F, NULL, 2);
	size_t ci_len;
	uint8_t *ci = test_read(p[3], &ci_len);
	EVP_PKEY *ci_key = NULL;
	assert_esim(ESIM_OK, crypto_key_load_private_file(p[4], &ci_key));
	time_t now = time(NULL);
	struct crypto_issue_params ip = {
	    .kind = CRYPTO_ISSUE_OPERATOR,
	    .curve = CRYPTO_CURVE_P256,
	    .common_name = "old.operator.test",
	    .issuer_der = ci,
	    .issuer_der_len = ci_len,
	    .issuer_key = ci_key,
	    .not_before = now - 3 * 86400,
	    .not_after = now - 86400,
	};
	struct crypto_issued old, fut;
	assert_esim(ESIM_OK, crypto_issue(&ip, &old));
	ip.common_name = "future.operator.test";
	ip.not_before = now + 86400;
	ip.not_after = now + 3 * 86400;
	assert_esim(ESIM_OK, crypto_issue(&ip, &fut));
	write_pem(&old, p[5], p[6]);
	write_pem(&fut, p[7], newkey);
	uint8_t pins[2][32];
	unsigned hl;
	assert_int_equal(EVP_Digest(old.der, old.der_len, pins[0], &hl, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_Digest(fut.der, fut.der_len, pins[1], &hl, EVP_sha256(), NULL), 1);
	/* both pinned to OP1's profiles' owner names */
	assert_esim(ESIM_OK, smdp_add_operator(F.d, "OLD", pins[0], NULL));
	assert_esim(ESIM_OK, smdp_add_operator(F.d, "FUT", pins[1], NULL));

	net_server *srv;
	struct net_server_config sc = {.threads = 1};
	assert_esim(ESIM_OK, net_server_new(&sc, &srv));
	struct net_listener_config lc = {.address = "127.0.0.1",
					 .tls = true,
					 .cert_chain_file = p[0],
					 .key_file = p[1],
					 .client_auth = NET_CLIENT_AUTH_REQUIRE,
					 .client_pins = (const uint8_t(*)[32])pins,
					 .n_client_pins = 2};
	int l_es2;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_es2));
	assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l_es2, l_es2));
	assert_esim(ESIM_OK, net_server_start(srv));
	char url[256];
	snprintf(url, sizeof url, "https://localhost:%u/gsma/rsp2/es2plus/downloadOrder",
		 net_server_port(srv, l_es2));
	const char *names[2] = {"OLD", "FUT"};
	const char *reasons[2] = {"6.3", "6.1"};
	for (int i = 0; i < 2; i++) {
		struct net_client_config ccfg = {.ca_file = p[2],
						 .client_cert_file = i == 0 ? p[5] : p[7],
						 .client_key_file = i == 0 ? p[6] : newkey};
		net_client *op;
		assert_esim(ESIM_OK, net_client_new(&ccfg, &op));
		char body[256];
		snprintf(body, sizeof body,
			 "{\"header\":{\"functionRequesterIdentifier\":\"%s\","
			 "\"functionCallIdentifier\":\"x%d\"},\"profileType\":\"STD\"}",
			 names[i], i);
		struct net_client_response r;
		assert_esim(ESIM_OK, net_client_post_json(op, url, body, strlen(body), &r));
		assert_int_equal(r.status, 200);
		json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		assert_non_null(j);
		sfx_assert_fail(j, "1.1.1", reasons[i]);
		json_decref(j);
		net_client_response_clear(&r);
		net_client_free(op);
	}
	/* nothing was handed out */
	size_t n = 0;
	assert_esim(ESIM_OK, smdp_count_state(F.d, SFX_TYPE, SMDP_AVAILABLE, &n));
	assert_int_equal(n, 2);
	net_server_stop(srv);
	net_server_free(srv);
	crypto_issued_clear(&old);
	crypto_issued_clear(&fut);
	EVP_PKEY_free(ci_key);
	free(ci);
	sfx_close(&F);
}

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_https),
	    cmocka_unit_test(test_es2_expired_pin),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
