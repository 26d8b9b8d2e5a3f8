/*
 * esim-operator against a real esim-smdp on loopback: ES2+ over mutual TLS
 * (SGP.22 5.3: DownloadOrder + ConfirmOrder give the activation code;
 * CancelOrder when a case is approved before the profile was downloaded),
 * and an operator certificate the SM-DP+ has not pinned is refused. The
 * SM-DP+'s HandleDownloadProgressInfo callbacks, on the operator's own
 * mutual-TLS listener, are test_operator_callback (with a download by the
 * virtual eUICC); the full journey with esim and esim-euicc is the `demo`
 * test (scripts/demo.sh).
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

#include "esim/operator.h"
#include "esim/rsp_saip.h"
#include "testutil.h"

extern char **environ;

#define EID "89049032123451234512345678901235"

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

static char *capture(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char out[512];
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

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

static void test_es2_loopback(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	const char *bin = test_bin_dir();
	char pki[600], conf[700], smdp_db[700], op_db[700], dk[700];
	snprintf(pki, sizeof pki, "%s/pki/nist", dir);
	run("%s/esim-pki init %s/pki --eid %s >/dev/null", bin, dir, EID);
	uint16_t es9 = free_port(), es2 = free_port();
	while (es2 == es9)
		es2 = free_port();

	/* the operator's portal (the API calls below go to op_http directly;
	 * no callback listener here: the operator is registered without a
	 * callback URL) */
	snprintf(op_db, sizeof op_db, "%s/op.db", dir);
	snprintf(dk, sizeof dk, "%s/data.key", dir);
	char key[700], cert[700], ci[700], url[128];
	snprintf(key, sizeof key, "%s/operator.key.pem", pki);
	snprintf(cert, sizeof cert, "%s/operator.pem", pki);
	snprintf(ci, sizeof ci, "%s/ci.pem", pki);
	snprintf(url, sizeof url, "https://127.0.0.1:%u", es2);
	struct op_config cfg = {.db = op_db,
				.key_file = key,
				.cert_file = cert,
				.ci_file = ci,
				.data_key_file = dk,
				.smdp_url = url,
				.smdp_ca = ci,
				.name = "ACME",
				.profile_type = "STD",
				.fast_hash = true};
	op *o;
	assert_esim(ESIM_OK, op_open(&cfg, &o));
	assert_esim(ESIM_OK, op_seed_demo(o));
	net_server *srv;
	assert_esim(ESIM_OK, net_server_new(NULL, &srv));
	struct net_listener_config lc = {.address = "127.0.0.1"};
	int lid;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &lid));
	assert_esim(ESIM_OK, op_add_routes(o, srv, lid));
	assert_esim(ESIM_OK, net_server_start(srv));

	/* the SM-DP+ */
	snprintf(conf, sizeof conf, "%s/smdp.conf", dir);
	snprintf(smdp_db, sizeof smdp_db, "%s/smdp.db", dir);
	FILE *f = fopen(conf, "w");
	fprintf(f,
		"db = sqlite:%s\nfqdn = 127.0.0.1:%u\ndpauth-cert-nist = %s/dpauth.pem\n"
		"dpauth-key-nist = %s/dpauth.key.pem\ndppb-cert-nist = %s/dppb.pem\n"
		"dppb-key-nist = %s/dppb.key.pem\nci = %s/ci.pem\nlisten-nist = 127.0.0.1:%u\n"
		"tls-cert-nist = %s/dptls.pem\ntls-key-nist = %s/dptls.key.pem\n"
		"listen-es2 = 127.0.0.1:%u\nes2-cert = %s/dptls.pem\nes2-key = %s/dptls.key.pem\n"
		"operator-ca = %s/ci.pem\n",
		smdp_db, es9, pki, pki, pki, pki, pki, es9, pki, pki, es2, pki, pki, pki);
	fclose(f);
	uint8_t *upp;
	size_t upp_len;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("8932000000000000009", &upp, &upp_len));
	char tpl[700];
	snprintf(tpl, sizeof tpl, "%s/tpl.der", dir);
	f = fopen(tpl, "wb");
	fwrite(upp, 1, upp_len, f);
	fclose(f);
	free(upp);
	run("%s/esim-smdp add-operator --config %s ACME %s >/dev/null", bin, conf, cert);
	run("%s/esim-smdp add-type --config %s STD ACME %s ACME 'ACME 5G' >/dev/null", bin, conf,
	    tpl);
	run("printf '8932000000000000105,206010000000108\\n8932000000000000113,206010000000116\\n'"
	    " > %s/batch.csv && %s/esim-smdp import --config %s STD %s/batch.csv >/dev/null",
	    dir, bin, conf, dir);
	char smdp_bin[600], logp[700];
	snprintf(smdp_bin, sizeof smdp_bin, "%s/esim-smdp", bin);
	snprintf(logp, sizeof logp, "%s/smdp.log", dir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	char *argv[] = {smdp_bin, "serve", "--config", conf, NULL};
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

	/* an operator certificate the SM-DP+ has not pinned: refused */
	char dkey[700], dcert[700], db2[700];
	snprintf(dkey, sizeof dkey, "%s/dpauth.key.pem", pki);
	snprintf(dcert, sizeof dcert, "%s/dpauth.pem", pki);
	snprintf(db2, sizeof db2, "%s/op2.db", dir);
	struct op_config cfg2 = cfg;
	cfg2.db = db2;
	cfg2.key_file = dkey;
	cfg2.cert_file = dcert;
	op *o2;
	assert_esim(ESIM_OK, op_open(&cfg2, &o2));
	assert_esim(ESIM_OK, op_seed_demo(o2));
	char ac[512];
	assert_true(op_order_esim(o2, "jan.peeters@example.be", ac, sizeof ac) != ESIM_OK);
	op_close(o2);

	/* DownloadOrder + ConfirmOrder: the activation code names the SM-DP+ */
	assert_esim(ESIM_OK, op_order_esim(o, "jan.peeters@example.be", ac, sizeof ac));
	char prefix[64];
	snprintf(prefix, sizeof prefix, "LPA:1$127.0.0.1:%u$", es9);
	assert_memory_equal(prefix, ac, strlen(prefix));
	assert_true(strlen(ac) > strlen(prefix));
	/* no second order for a line that has one */
	assert_esim(ESIM_E_NOT_FOUND, op_order_esim(o, "jan.peeters@example.be", ac, sizeof ac));
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "%s/esim-smdp state 8932000000000000105 --config %s", bin, conf);
	assert_non_null(strstr(capture(cmd), "Released"));

	/* Jan pays, asks to terminate; approval before any download cancels
	 * the order on the SM-DP+ and closes the case at once */
	char cookie[128], csrf[80];
	assert_int_equal(
	    200, call(o, "POST", "/api/login",
		      "{\"login\":\"jan.peeters@example.be\",\"password\":\"jan-demo-2026\"}", NULL,
		      NULL, cookie, csrf));
	assert_int_equal(200, call(o, "POST", "/api/invoices/pay", "{\"invoice_id\":1}", cookie,
				   csrf, NULL, NULL));
	assert_int_equal(201,
			 call(o, "POST", "/api/cases",
			      "{\"line_id\":1,\"reason\":\"changed my mind\",\"document_type\":"
			      "\"passport\",\"document_number\":\"EH123456\",\"document_copy\":"
			      "\"JVBERi0xLjQgcGFzc3BvcnQ=\"}",
			      cookie, csrf, NULL, NULL));
	assert_int_equal(200, call(o, "POST", "/api/staff/login",
				   "{\"login\":\"reviewer\",\"password\":\"review-demo-2026\"}",
				   NULL, NULL, cookie, csrf));
	assert_int_equal(200, call(o, "POST", "/api/staff/case/approve", "{\"case_id\":1}", cookie,
				   csrf, NULL, NULL));
	assert_non_null(strstr(capture(cmd), "Unavailable"));
	int64_t n, bad;
	assert_esim(ESIM_OK, op_audit_verify(o, &n, &bad));

	kill(pid, SIGTERM);
	int status;
	waitpid(pid, &status, 0);
	net_server_free(srv);
	op_close(o);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_es2_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
