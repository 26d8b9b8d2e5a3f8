/*
 * Logs an operator can use (issue 17.5), through the real programs: a
 * profile download by esim (with --request-id) from esim-smdp onto
 * esim-euicc, ordered by esim-operator, whose ES2+ callback listener gets
 * the SM-DP+'s HandleDownloadProgressInfo (SGP.22 5.3.5) from the outbox.
 * Then:
 *  - the request id esim sent is in esim-smdp's log line of its ES9+
 *    requests and in esim-operator's log line of the callback those
 *    requests caused (X-Request-Id carried through the outbox);
 *  - every line either server wrote on stderr is one JSON object with ts,
 *    level, prog and msg (jansson parses it);
 *  - no secret of the run is in any log: the profile's Ki and OPc, the
 *    SM-DP+'s key-encryption key, the matching ID of the activation code,
 *    and a line of each private key's PEM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>

#include "esim/der.h"
#include "esim/log.h"
#include "esim/rsp_saip.h"
#include "testutil.h"

extern char **environ;

#define EID "89049032123451234512345678901235"
#define RID "test-logs.4711_rid"
#define KI  "2B7E151628AED2A6ABF7158809CF4F3C"
#define OPC "CD63CB71954A9F4E48A5994E37A02BAF"
#define KEK "9D3E0A5C7B2F48E1A6C0D9B3E7F1A2C45B8D0E6F1A3C5E7092B4D6F8A1C3E5F7"

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		print_error("command failed (%d): %s\n", rc, cmd);
	assert_int_equal(0, rc);
}

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

/* prog argv... with stdout to out_path and stderr to err_path. */
static pid_t spawn(const char *out_path, const char *err_path, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	assert_int_equal(0, posix_spawn(&pid, argv[0], &fa, NULL, argv, environ));
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static char *slurp(const char *path)
{
	size_t len = 0;
	uint8_t *p = test_read(path, &len);
	if (p == NULL)
		return strdup("");
	char *s = malloc(len + 1);
	memcpy(s, p, len);
	s[len] = '\0';
	free(p);
	return s;
}

/* A template with an akaParameter element (Ki / OPc slots), so that the
 * batch can carry a Ki and OPc for the test to look for. */
static void write_usim_template(const char *path)
{
	uint8_t *base = NULL, *upp = NULL;
	size_t base_len = 0, len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("8932000000000000009", &base, &base_len));
	der_builder b;
	der_builder_init(&b);
	der_cursor c;
	der_cursor_init(&c, base, base_len);
	der_element e;
	esim_err err;
	static const uint8_t zero[16] = {0};
	while (der_next_child(&c, &e, &err)) {
		if (e.tag == 0xAA) { /* before the end element */
			der_builder_open(&b, 0xA4);
			der_builder_open(&b, 0xA0);
			der_add_int64(&b, 0x81, 51);
			der_builder_close(&b);
			der_builder_open(&b, 0xA1);
			der_builder_open(&b, 0xA1);
			der_add_int64(&b, 0x80, 1);
			der_add_octet_string(&b, 0x81, "\x00", 1);
			der_add_octet_string(&b, 0x82, zero, 16);
			der_add_octet_string(&b, 0x83, zero, 16);
			der_builder_close(&b);
			der_builder_close(&b);
			der_builder_close(&b);
		}
		der_add_raw(&b, e.tlv.p, e.tlv.len);
	}
	assert_esim(ESIM_OK, der_builder_finish(&b, &upp, &len));
	free(base);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(len, fwrite(upp, 1, len, f));
	fclose(f);
	free(upp);
}

/* Every line of text is a JSON object with ts, level, prog and msg; the
 * lines of msg with request_id == RID are counted into *with_rid, and
 * those whose msg is want_msg into *want. */
static void check_json_lines(const char *name, const char *text, const char *want_msg,
			     int *with_rid, int *want)
{
	*with_rid = *want = 0;
	int n = 0;
	for (const char *l = text; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		if (len > 0) {
			json_error_t je;
			json_t *j = json_loadb(l, len, 0, &je);
			if (!json_is_object(j))
				print_error("%s: not a JSON object: %.*s\n", name, (int)len, l);
			assert_true(json_is_object(j));
			assert_true(json_is_string(json_object_get(j, "ts")));
			assert_true(json_is_string(json_object_get(j, "level")));
			assert_true(json_is_string(json_object_get(j, "prog")));
			assert_true(json_is_string(json_object_get(j, "msg")));
			const char *rid = json_string_value(json_object_get(j, "request_id"));
			const char *msg = json_string_value(json_object_get(j, "msg"));
			if (rid && strcmp(rid, RID) == 0) {
				(*with_rid)++;
				if (strcmp(msg, want_msg) == 0)
					(*want)++;
			}
			json_decref(j);
			n++;
		}
		l += len + (e ? 1 : 0);
	}
	print_message("%s: %d JSON lines, %d with the request id\n", name, n, *with_rid);
	assert_true(n > 0);
}

/* needle (case-insensitive) is in none of the logs. */
static void assert_absent(const char *what, const char *needle, char *const *logs)
{
	for (size_t i = 0; logs[i]; i++)
		if (strcasestr(logs[i], needle) != NULL) {
			print_error("log %zu contains the %s (%s)\n", i, what, needle);
			fail();
		}
}

/* The second line of a PEM file (key material), without its newline. */
static void pem_line(const char *path, char *out, size_t cap)
{
	char *t = slurp(path);
	const char *l = strchr(t, '\n');
	assert_non_null(l);
	l++;
	size_t n = strcspn(l, "\n");
	assert_true(n > 40 && n < cap);
	memcpy(out, l, n);
	out[n] = '\0';
	free(t);
}

static void test_request_id_through(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	const char *bin = test_bin_dir();
	char pki[600];
	snprintf(pki, sizeof pki, "%s/pki/nist", dir);
	uint16_t es9 = free_port(), es2 = free_port(), op = free_port(), cb = free_port();

	/* 1. the PKI; the operator's callback listener identity, and the
	 * client certificate the SM-DP+ shows it */
	run("%s/esim-pki init %s/pki --eid %s --curve nist >/dev/null 2>&1", bin, dir, EID);
	run("%s/esim-pki issue dptls --out %s/cb-tls --issuer-cert %s/ci.pem --issuer-key "
	    "%s/ci.key.pem --host 127.0.0.1 --cn 'ES2+ callbacks' >/dev/null 2>&1",
	    bin, dir, pki, pki);
	run("%s/esim-pki issue operator --out %s/smdp-client --issuer-cert %s/ci.pem "
	    "--issuer-key %s/ci.key.pem --cn 'SM-DP+ callbacks' >/dev/null 2>&1",
	    bin, dir, pki, pki);

	/* 2. the SM-DP+, logging, with a KEK and profiles that carry Ki/OPc */
	char kek[700], conf[700];
	snprintf(kek, sizeof kek, "%s/kek.hex", dir);
	FILE *f = fopen(kek, "w");
	fprintf(f, "%s\n", KEK);
	fclose(f);
	chmod(kek, 0600);
	snprintf(conf, sizeof conf, "%s/smdp.conf", dir);
	f = fopen(conf, "w");
	fprintf(f,
		"db = sqlite:%s/smdp.db\nfqdn = 127.0.0.1:%u\n"
		"dpauth-cert-nist = %s/dpauth.pem\ndpauth-key-nist = %s/dpauth.key.pem\n"
		"dppb-cert-nist = %s/dppb.pem\ndppb-key-nist = %s/dppb.key.pem\nci = %s/ci.pem\n"
		"listen-nist = 127.0.0.1:%u\ntls-cert-nist = %s/dptls.pem\n"
		"tls-key-nist = %s/dptls.key.pem\nlisten-es2 = 127.0.0.1:%u\n"
		"es2-cert = %s/dptls.pem\nes2-key = %s/dptls.key.pem\noperator-ca = %s/ci.pem\n"
		"callback-client-cert = %s/smdp-client.pem\n"
		"callback-client-key = %s/smdp-client.key.pem\nkek-file = %s\n"
		"admin-listen = off\nlog = 1\nlog-format = json\noutbox-idle-ms = 50\n",
		dir, es9, pki, pki, pki, pki, pki, es9, pki, pki, es2, pki, pki, pki, dir, dir,
		kek);
	fclose(f);
	char tpl[700];
	snprintf(tpl, sizeof tpl, "%s/usim.der", dir);
	write_usim_template(tpl);
	run("%s/esim-smdp add-operator --config %s ACME %s/operator.pem "
	    "https://127.0.0.1:%u/gsma/rsp2/es2plus/handleDownloadProgressInfo >/dev/null",
	    bin, conf, pki, cb);
	run("%s/esim-smdp add-type --config %s STD ACME %s ACME 'ACME 5G' >/dev/null", bin, conf,
	    tpl);
	run("printf '8932000000000000105,206010000000108,%s,%s\\n' > %s/batch.csv && "
	    "%s/esim-smdp import --config %s STD %s/batch.csv >/dev/null",
	    KI, OPC, dir, bin, conf, dir);
	char smdp_bin[600], smdp_out[700], smdp_err[700];
	snprintf(smdp_bin, sizeof smdp_bin, "%s/esim-smdp", bin);
	snprintf(smdp_out, sizeof smdp_out, "%s/smdp.out", dir);
	snprintf(smdp_err, sizeof smdp_err, "%s/smdp.log", dir);
	char *sargv[] = {smdp_bin, "serve", "--config", conf, NULL};
	pid_t smdp_pid = spawn(smdp_out, smdp_err, sargv);

	/* 3. the operator: the portal, and the callbacks on their own listener */
	char opargs[4096];
	snprintf(opargs, sizeof opargs,
		 "--db %s/op.db --key %s/operator.key.pem --cert %s/operator.pem --ci %s/ci.pem "
		 "--data-key %s/op-data.key --maildir %s/mail --smdp-url https://127.0.0.1:%u "
		 "--smdp-ca %s/ci.pem --name ACME --profile-type STD",
		 dir, pki, pki, pki, dir, dir, es2, pki);
	run("%s/esim-operator init-demo %s >/dev/null 2>&1", bin, opargs);
	char op_bin[600], op_out[700], op_err[700], cmd[8192];
	snprintf(op_bin, sizeof op_bin, "%s/esim-operator", bin);
	snprintf(op_out, sizeof op_out, "%s/operator.out", dir);
	snprintf(op_err, sizeof op_err, "%s/operator.log", dir);
	snprintf(cmd, sizeof cmd,
		 "exec %s serve %s --listen 127.0.0.1:%u --insecure-http yes --es2-listen "
		 "127.0.0.1:%u --es2-tls-cert %s/cb-tls.pem --es2-tls-key %s/cb-tls.key.pem "
		 "--smdp-client-cert %s/smdp-client.pem --smdp-id 127.0.0.1:%u --log-format json",
		 op_bin, opargs, op, cb, dir, dir, dir, es9);
	char *oargv[] = {"/bin/sh", "-c", cmd, NULL};
	pid_t op_pid = spawn(op_out, op_err, oargv);

	/* 4. the card */
	char euicc_bin[600], e_out[700], e_err[700], db[700], pkidir[700], sock[700];
	snprintf(euicc_bin, sizeof euicc_bin, "%s/esim-euicc", bin);
	snprintf(e_out, sizeof e_out, "%s/euicc.out", dir);
	snprintf(e_err, sizeof e_err, "%s/euicc.log", dir);
	snprintf(db, sizeof db, "%s/euicc.db", dir);
	snprintf(pkidir, sizeof pkidir, "%s/pki", dir);
	snprintf(sock, sizeof sock, "unix:%s/card.sock", dir);
	char *eargv[] = {euicc_bin, "--db", db, "--pki", pkidir, "--listen", sock, NULL};
	pid_t e_pid = spawn(e_out, e_err, eargv);

	bool up = false;
	char sockpath[700];
	snprintf(sockpath, sizeof sockpath, "%s/card.sock", dir);
	for (int i = 0; i < 300 && !up; i++) {
		struct stat st;
		up = port_open(es9) && port_open(es2) && port_open(cb) && port_open(op) &&
		     stat(sockpath, &st) == 0;
		if (!up)
			usleep(100000);
	}
	assert_true(up);

	/* 5. the order (ES2+ DownloadOrder + ConfirmOrder), then the download
	 * with a request id of our own */
	snprintf(cmd, sizeof cmd, "%s/esim-operator order-esim jan.peeters@example.be %s 2>&1", bin,
		 opargs);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[1024], code[512] = "";
	while (fgets(line, sizeof line, p))
		if (strncmp(line, "activation code: ", 17) == 0)
			snprintf(code, sizeof code, "%.*s", (int)strcspn(line + 17, "\r\n"),
				 line + 17);
	pclose(p);
	assert_true(strncmp(code, "LPA:1$", 6) == 0);
	const char *mid = strrchr(code, '$') + 1; /* the matching ID, a secret */
	assert_true(strlen(mid) >= 8);
	run("%s/esim profile download '%s' --yes --socket %s --ci %s/ci.pem --request-id %s "
	    ">%s/esim.out 2>&1",
	    bin, code, sock, pki, RID, dir);

	/* 6. the PIR's callback reaches the operator through the outbox */
	bool called = false;
	for (int i = 0; i < 300 && !called; i++) {
		char *t = slurp(op_err);
		called =
		    strstr(t, "\"es2 callback\"") && strstr(t, RID) && strstr(t, "\"point\":4");
		free(t);
		if (!called)
			usleep(100000);
	}
	kill(smdp_pid, SIGTERM);
	kill(op_pid, SIGTERM);
	kill(e_pid, SIGTERM);
	int st;
	waitpid(smdp_pid, &st, 0);
	waitpid(op_pid, &st, 0);
	waitpid(e_pid, &st, 0);
	char *smdp_log = slurp(smdp_err), *op_log = slurp(op_err);
	if (!called)
		print_error("no callback with the request id; operator log:\n%s\nSM-DP+ log:\n%s\n",
			    op_log, smdp_log);
	assert_true(called);

	/* the same id in the SM-DP+'s ES9+ lines and the operator's callback */
	int rid_lines, want;
	check_json_lines("esim-smdp", smdp_log, "es9", &rid_lines, &want);
	assert_true(want >= 4); /* initiate, authenticate, getBPP, handleNotification */
	check_json_lines("esim-operator", op_log, "es2 callback", &rid_lines, &want);
	assert_true(want >= 1);

	/* never a secret */
	char *logs[] = {smdp_log, op_log, NULL};
	assert_absent("Ki", KI, logs);
	assert_absent("OPc", OPC, logs);
	assert_absent("KEK", KEK, logs);
	assert_absent("KEK (half)", KEK + 32, logs);
	assert_absent("matching ID", mid, logs);
	static const char *const keys[] = {"dpauth.key.pem", "dppb.key.pem", "dptls.key.pem",
					   "operator.key.pem"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char path[800], pl[200];
		snprintf(path, sizeof path, "%s/%s", pki, keys[i]);
		pem_line(path, pl, sizeof pl);
		assert_absent(keys[i], pl, logs);
	}
	free(smdp_log);
	free(op_log);
	test_rm_rf(dir);
	free(dir);
}

/* A value from the network cannot break a line or forge a field: quotes,
 * backslashes, newlines and control characters are escaped, the line is
 * one JSON object, and a line too long for the buffer is cut at a field
 * and still closed. */
static void test_line_escaping(void **state)
{
	(void)state;
	esim_log lg;
	esim_log_init(&lg, "test", ESIM_LOG_JSON);
	const char *evil = "x\",\"level\":\"error\"}\n{\"msg\":\"forged\\\x01\x7f";
	const struct esim_log_kv kv[] = {ESIM_LOG_S("function", evil), ESIM_LOG_I("status", 204),
					 ESIM_LOG_S("none", NULL)};
	char line[512];
	size_t n = esim_log_render(&lg, ESIM_LOG_INFO, "rid-1", evil, kv, 3, line, sizeof line);
	assert_true(n > 0 && line[n - 1] == '\n');
	assert_null(memchr(line, '\n', n - 1)); /* one line */
	json_t *j = json_loadb(line, n, 0, NULL);
	assert_true(json_is_object(j));
	assert_string_equal(evil, json_string_value(json_object_get(j, "msg")));
	assert_string_equal(evil, json_string_value(json_object_get(j, "function")));
	assert_string_equal("info", json_string_value(json_object_get(j, "level")));
	assert_string_equal("rid-1", json_string_value(json_object_get(j, "request_id")));
	assert_int_equal(204, json_integer_value(json_object_get(j, "status")));
	assert_true(json_is_null(json_object_get(j, "none")));
	json_decref(j);

	/* bytes that are not UTF-8 become U+FFFD; UTF-8 stays as it is */
	const struct esim_log_kv kv3[] = {ESIM_LOG_S("bad", "a\xff\xc0\xaf"
							    "b\xed\xa0\x80"),
					  ESIM_LOG_S("good", "Ma\xc3\xafs \xe2\x82\xac")};
	n = esim_log_render(&lg, ESIM_LOG_INFO, NULL, "utf8", kv3, 2, line, sizeof line);
	j = json_loadb(line, n, 0, NULL);
	assert_true(json_is_object(j));
	assert_string_equal("a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			    "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
			    json_string_value(json_object_get(j, "bad")));
	assert_string_equal("Ma\xc3\xafs \xe2\x82\xac",
			    json_string_value(json_object_get(j, "good")));
	json_decref(j);

	/* too long: cut at a field, still one valid object */
	char big[600];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	const struct esim_log_kv kv2[] = {ESIM_LOG_I("first", 1), ESIM_LOG_S("big", big)};
	n = esim_log_render(&lg, ESIM_LOG_WARN, NULL, "m", kv2, 2, line, 256);
	assert_true(n > 0 && n < 256);
	j = json_loadb(line, n, 0, NULL);
	assert_true(json_is_object(j));
	assert_int_equal(1, json_integer_value(json_object_get(j, "first")));
	assert_null(json_object_get(j, "big"));
	assert_null(json_object_get(j, "request_id"));
	json_decref(j);

	/* text: a value with spaces or quotes is quoted */
	lg.format = ESIM_LOG_TEXT;
	n = esim_log_render(&lg, ESIM_LOG_INFO, "rid-1", "es9", kv, 2, line, sizeof line);
	assert_null(memchr(line, '\n', n - 1));
	assert_non_null(strstr(line, " info test: msg=es9 request_id=rid-1 function=\"x\\\""));
	enum esim_log_format f;
	assert_esim(ESIM_OK, esim_log_format_parse("text", &f));
	assert_esim(ESIM_E_ARG, esim_log_format_parse("JSON ", &f));
}

/* Request ids: what a header may carry, and what replaces the rest. */
static void test_request_id_rules(void **state)
{
	(void)state;
	char long65[66];
	memset(long65, 'a', 65);
	long65[65] = '\0';
	assert_true(esim_request_id_valid("9c6c831c61ab5879"));
	assert_true(esim_request_id_valid("A-z_0.9"));
	assert_true(esim_request_id_valid(long65 + 1)); /* 64 */
	assert_false(esim_request_id_valid(long65));	/* 65 */
	assert_false(esim_request_id_valid(""));
	assert_false(esim_request_id_valid(NULL));
	assert_false(esim_request_id_valid("a b"));
	assert_false(esim_request_id_valid("a\"b"));
	assert_false(esim_request_id_valid("<script>"));
	assert_false(esim_request_id_valid("a\r\nX-Evil: 1"));
	char a[ESIM_REQUEST_ID_MAX + 1], b[ESIM_REQUEST_ID_MAX + 1];
	assert_string_equal("keep-me", esim_request_id_pick("keep-me", a));
	esim_request_id_pick("bad id", a);
	esim_request_id_pick(NULL, b);
	assert_int_equal(16, strlen(a));
	assert_true(esim_request_id_valid(a) && esim_request_id_valid(b));
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_escaping),
	    cmocka_unit_test(test_request_id_rules),
	    cmocka_unit_test(test_request_id_through),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
