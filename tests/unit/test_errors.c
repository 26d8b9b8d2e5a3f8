/*
 * Errors that say what is wrong (issue 17.4): each failure of esim,
 * esim-euicc, esim-smdp and esim-operator named in the issue is provoked
 * for real (a socket nobody listens on, a port another socket holds, a
 * file that is not there, a key that is not a key, a config line without
 * '=') and the program must exit non-zero with a message that names the
 * thing that failed (path, address, reader, setting, file:line) and the
 * system's reason. The programs run as subprocesses, as a user runs them.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcscd_helper.h"
#include "testutil.h"

#define EID "89049032123451234512345678901235"

static char *dir;     /* scratch directory of the run */
static char pki[600]; /* an esim-pki init PKI (nist) in dir */

/* Run argv (argv[0] a program name in the build directory) with stdout
 * and stderr into out; the exit status, or -1 when it had to be killed
 * (it hung for 30 s). */
static int run(char *out, size_t cap, const char *const *argv)
{
	int fds[2];
	assert_int_equal(0, pipe(fds));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", test_bin_dir(), argv[0]);
		setenv("LANG", "C", 1);
		unsetenv("ESIM_CI");
		unsetenv("ESIM_DEVICE");
		unsetenv("ESIM_TRANSPORT");
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	size_t n = 0;
	time_t until = time(NULL) + 30;
	for (;;) {
		struct pollfd pf = {.fd = fds[0], .events = POLLIN};
		int r = poll(&pf, 1, 1000);
		if (r > 0) {
			ssize_t k = read(fds[0], out + n, cap - 1 - n);
			if (k <= 0)
				break;
			n += (size_t)k;
			if (n == cap - 1)
				break;
		} else if (time(NULL) > until) {
			kill(pid, SIGKILL);
			break;
		}
	}
	out[n] = '\0';
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	print_message("$ %s ... -> %d\n%s", argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The command failed and its output names every needle. */
static void expect_fail_naming(const char *out, int rc, ...)
{
	assert_true(rc > 0);
	va_list ap;
	va_start(ap, rc);
	const char *needle;
	while ((needle = va_arg(ap, const char *)) != NULL) {
		if (strstr(out, needle) == NULL)
			print_error("the message does not name '%s'\n", needle);
		assert_non_null(strstr(out, needle));
	}
	va_end(ap);
}

/* A loopback TCP socket listening on a free port (held: binding it again
 * fails with EADDRINUSE; connecting is accepted by the kernel). */
static int hold_port(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(0, bind(s, (struct sockaddr *)&a, sizeof a));
	assert_int_equal(0, listen(s, 1));
	socklen_t l = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &l);
	*port = ntohs(a.sin_port);
	return s;
}

/* A free port nobody listens on (connect: refused). */
static uint16_t closed_port(void)
{
	uint16_t p;
	close(hold_port(&p));
	return p;
}

static int setup(void **state)
{
	(void)state;
	dir = test_mkdtemp();
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "%s/esim-pki init %s/pki --eid %s --curve nist >/dev/null 2>&1",
		 test_bin_dir(), dir, EID);
	assert_int_equal(0, system(cmd));
	snprintf(pki, sizeof pki, "%s/pki/nist", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_rm_rf(dir);
	free(dir);
	return 0;
}

/* ---- esim ------------------------------------------------------------------- */

/* "no matching smart card reader or card" was all it said. */
static void test_esim_no_euicc_unix(void **state)
{
	(void)state;
	char spec[700], out[8192];
	snprintf(spec, sizeof spec, "unix:%s/nobody.sock", dir);
	const char *argv[] = {"esim", "chip", "info", "--socket", spec, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, spec, "No such file or directory", "esim-euicc", NULL);
}

static void test_esim_no_euicc_tcp(void **state)
{
	(void)state;
	char spec[64], addr[64], out[8192];
	uint16_t port = closed_port();
	snprintf(spec, sizeof spec, "tcp:127.0.0.1:%u", port);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	const char *argv[] = {"esim", "chip", "info", "--socket", spec, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, addr, "Connection refused", "esim-euicc", NULL);
}

/* "file or socket I/O failed" without the reason. */
static void test_esim_ci_missing(void **state)
{
	(void)state;
	char ci[700], sock[700], out[8192];
	snprintf(ci, sizeof ci, "%s/no-such-ci.pem", dir);
	snprintf(sock, sizeof sock, "unix:%s/nobody.sock", dir);
	const char *argv[] = {"esim",  "profile", "download", "LPA:1$127.0.0.1:1$MID",
			      "--ci",  ci,	  "--socket", sock,
			      "--yes", NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, ci, "No such file or directory", NULL);
}

/* The reader asked for, and why there is none: pcscd, or the readers
 * there are. */
static void test_esim_reader_missing(void **state)
{
	(void)state;
	char out[8192];
	const char *argv[] = {"esim", "chip", "info", "--reader", "NoSuchReader-4711", NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, "NoSuchReader-4711", NULL);
	/* why: no pcscd, no reader at all, or the readers there are */
	assert_true(strstr(out, "pcscd") != NULL || strstr(out, "readers:") != NULL ||
		    strstr(out, "no PC/SC reader is connected") != NULL);
}

/* With pcscd running: the readers there are, by index and name. */
static int pcsc_missing_status; /* 77 (or 1 under CI=true) when PC/SC cannot run */

static void test_esim_reader_list(void **state)
{
	(void)state;
	struct pcscd_env env;
	int r = pcscd_start(&env);
	if (r == TEST_SKIP_CODE) {
		pcsc_missing_status = test_component_missing_status("pcscd", env.why);
		return;
	}
	if (r != 0)
		pcscd_stop(&env);
	assert_int_equal(0, r);
	char out[8192];
	const char *argv[] = {"esim", "chip", "info", "--reader", "NoSuchReader-4711", NULL};
	int rc = run(out, sizeof out, argv);
	char listed[80];
	snprintf(listed, sizeof listed, "'%.40s", env.reader); /* '0: 'esimkit vpcd 00 00' */
	pcscd_stop(&env);
	expect_fail_naming(out, rc, "NoSuchReader-4711", "readers:", listed, NULL);
}

static void test_esim_modem_missing(void **state)
{
	(void)state;
	char dev[700], out[8192];
	snprintf(dev, sizeof dev, "%s/ttyUSB-none", dir);
	const char *argv[] = {"esim", "chip", "info", "--transport", "at", "--device", dev, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, dev, "No such file or directory", NULL);
}

/* An SM-DP+ address that refuses, or that does not speak TLS: the
 * host:port, what failed and what to check. A card is needed first (the
 * download asks it for its challenge before calling the server). */
static void *plain_server(void *arg)
{
	int s = *(int *)arg;
	for (int i = 0; i < 4; i++) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			break;
		static const char junk[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
		if (write(c, junk, sizeof junk - 1) < 0) {
			/* the client went: nothing to do */
		}
		close(c);
	}
	return NULL;
}

static void test_esim_smdp_unreachable(void **state)
{
	(void)state;
	char db[700], pkidir[700], sock[720], sockpath[700], ci[700], bin[700];
	snprintf(db, sizeof db, "%s/e3.db", dir);
	snprintf(pkidir, sizeof pkidir, "%s/pki", dir);
	snprintf(sockpath, sizeof sockpath, "%s/card3.sock", dir);
	snprintf(sock, sizeof sock, "unix:%s", sockpath);
	snprintf(ci, sizeof ci, "%s/ci.pem", pki);
	snprintf(bin, sizeof bin, "%s/esim-euicc", test_bin_dir());
	pid_t card = fork();
	assert_true(card >= 0);
	if (card == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl(bin, bin, "--db", db, "--pki", pkidir, "--listen", sock, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && access(sockpath, F_OK) != 0; i++)
		usleep(50000);

	char ac[128], addr[64], out[8192];
	uint16_t port = closed_port();
	snprintf(ac, sizeof ac, "LPA:1$127.0.0.1:%u$MATCHING-ID-1", port);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	const char *argv[] = {"esim", "profile", "download", ac,   "--yes",
			      "--ci", ci,	 "--socket", sock, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, addr, "refused", "check the SM-DP+ address", NULL);

	int held = hold_port(&port);
	pthread_t t;
	assert_int_equal(0, pthread_create(&t, NULL, plain_server, &held));
	snprintf(ac, sizeof ac, "LPA:1$127.0.0.1:%u$MATCHING-ID-1", port);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	rc = run(out, sizeof out, argv);
	shutdown(held, SHUT_RDWR);
	close(held);
	pthread_join(t, NULL);
	kill(card, SIGTERM);
	int st;
	waitpid(card, &st, 0);
	expect_fail_naming(out, rc, addr, "TLS", "HTTPS (TLS) port", NULL);
}

/* ---- esim-euicc ---------------------------------------------------------------- */

/* "cannot open the eUICC: file or socket I/O failed" without the path. */
static void test_euicc_cert_missing(void **state)
{
	(void)state;
	char db[700], cert[700], key[700], eum[700], ci[700], out[8192];
	snprintf(db, sizeof db, "%s/e1.db", dir);
	snprintf(cert, sizeof cert, "%s/no-such-euicc.der", dir);
	snprintf(key, sizeof key, "%s/euicc.key.pem", pki);
	snprintf(eum, sizeof eum, "%s/eum.der", pki);
	snprintf(ci, sizeof ci, "%s/ci.der", pki);
	const char *argv[] = {
	    "esim-euicc", "--db", db,	  "--cert", cert,	"--key",	   key,
	    "--eum",	  eum,	  "--ci", ci,	    "--listen", "tcp:127.0.0.1:1", NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, cert, "No such file or directory", "--cert", NULL);
}

/* "cannot listen on SPEC: file or socket I/O failed" without the reason. */
static void test_euicc_listen_in_use(void **state)
{
	(void)state;
	uint16_t port;
	int held = hold_port(&port);
	char db[700], pkidir[700], spec[64], addr[64], out[8192];
	snprintf(db, sizeof db, "%s/e2.db", dir);
	snprintf(pkidir, sizeof pkidir, "%s/pki", dir);
	snprintf(spec, sizeof spec, "tcp:127.0.0.1:%u", port);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	const char *argv[] = {"esim-euicc", "--db", db, "--pki", pkidir, "--listen", spec, NULL};
	int rc = run(out, sizeof out, argv);
	close(held);
	expect_fail_naming(out, rc, addr, "Address already in use", NULL);
}

/* "bad or repeated option '--capacity'" and the whole usage: which value,
 * and what the option takes? */
static void test_euicc_option_value(void **state)
{
	(void)state;
	char db[700], out[8192];
	snprintf(db, sizeof db, "%s/e4.db", dir);
	const char *argv[] = {"esim-euicc", "--db", db, "--max-block", "70000", NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, "--max-block '70000'", "1 to 65535", NULL);
	const char *argv2[] = {"esim-euicc", "--db", db, "--capcity", "5", NULL};
	rc = run(out, sizeof out, argv2);
	expect_fail_naming(out, rc, "unknown option '--capcity'", NULL);
}

/* ---- esim-smdp ------------------------------------------------------------------ */

static void smdp_conf(const char *path, const char *extra, uint16_t es9)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"db = sqlite:%s/smdp.db\nfqdn = 127.0.0.1:%u\n"
		"dpauth-cert-nist = %s/dpauth.pem\ndpauth-key-nist = %s/dpauth.key.pem\n"
		"dppb-cert-nist = %s/dppb.pem\ndppb-key-nist = %s/dppb.key.pem\n"
		"ci = %s/ci.pem\nlisten-nist = 127.0.0.1:%u\nadmin-listen = off\n%s",
		dir, es9, pki, pki, pki, pki, pki, es9, extra);
	fclose(f);
}

/* "cannot open the SM-DP+: file or socket I/O failed": which file? */
static void test_smdp_file_missing(void **state)
{
	(void)state;
	char conf[700], extra[1400], missing[700], out[8192];
	snprintf(conf, sizeof conf, "%s/smdp-missing.conf", dir);
	snprintf(missing, sizeof missing, "%s/no-such-dptls.pem", dir);
	snprintf(extra, sizeof extra, "tls-cert-nist = %s\ntls-key-nist = %s/dptls.key.pem\n",
		 missing, pki);
	smdp_conf(conf, extra, closed_port());
	const char *argv[] = {"esim-smdp", "serve", "--config", conf, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, "tls-cert-nist", missing, "No such file or directory", NULL);
}

/* "listener ADDR: could not listen on the address and port": why? */
static void test_smdp_listen_in_use(void **state)
{
	(void)state;
	uint16_t port;
	int held = hold_port(&port);
	char conf[700], extra[1400], addr[64], out[8192];
	snprintf(conf, sizeof conf, "%s/smdp-busy.conf", dir);
	snprintf(extra, sizeof extra,
		 "tls-cert-nist = %s/dptls.pem\ntls-key-nist = %s/dptls.key.pem\n", pki, pki);
	smdp_conf(conf, extra, port);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	const char *argv[] = {"esim-smdp", "serve", "--config", conf, NULL};
	int rc = run(out, sizeof out, argv);
	close(held);
	expect_fail_naming(out, rc, addr, "Address already in use", NULL);
}

/* "TLS certificate chain or key unusable": which one? */
static void test_smdp_tls_key_unusable(void **state)
{
	(void)state;
	char conf[700], extra[1400], notkey[700], out[8192];
	snprintf(conf, sizeof conf, "%s/smdp-badkey.conf", dir);
	snprintf(notkey, sizeof notkey, "%s/ci.pem", pki); /* a certificate, not a key */
	snprintf(extra, sizeof extra, "tls-cert-nist = %s/dptls.pem\ntls-key-nist = %s\n", pki,
		 notkey);
	smdp_conf(conf, extra, closed_port());
	const char *argv[] = {"esim-smdp", "serve", "--config", conf, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, notkey, "TLS key", NULL);
}

/* Start a server (argv as for run), wait until its output holds needle
 * (at most 20 s), stop it; its output in out. */
static void serve_until(char *out, size_t cap, const char *const *argv, const char *needle)
{
	char log[700], path[1024];
	snprintf(log, sizeof log, "%s/serve-%ld.log", dir, (long)time(NULL));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		snprintf(path, sizeof path, "%s/%s", test_bin_dir(), argv[0]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	out[0] = '\0';
	for (int i = 0; i < 200 && strstr(out, needle) == NULL; i++) {
		usleep(100000);
		FILE *f = fopen(log, "r");
		if (f) {
			size_t n = fread(out, 1, cap - 1, f);
			out[n] = '\0';
			fclose(f);
		}
	}
	kill(pid, SIGTERM);
	int st;
	waitpid(pid, &st, 0);
	print_message("$ %s ...\n%s", argv[0], out);
}

/* A setting no code reads (a typo) was ignored without a word. */
static void test_smdp_unknown_setting(void **state)
{
	(void)state;
	char conf[700], extra[1400], where[720], out[8192];
	snprintf(conf, sizeof conf, "%s/smdp-typo.conf", dir);
	snprintf(extra, sizeof extra,
		 "tls-cert-nist = %s/dptls.pem\ntls-key-nist = %s/dptls.key.pem\n"
		 "max-conections = 5\n",
		 pki, pki);
	smdp_conf(conf, extra, closed_port());
	snprintf(where, sizeof where, "%s:12", conf); /* the typo's line */
	const char *argv[] = {"esim-smdp", "serve", "--config", conf, "--treads", "2", NULL};
	serve_until(out, sizeof out, argv, "ready");
	assert_non_null(strstr(out, "ready"));
	assert_non_null(strstr(out, where));
	assert_non_null(strstr(out, "'max-conections' is not a setting"));
	assert_non_null(strstr(out, "the command line: 'treads' is not a setting"));
}

/* A value out of range: the setting, its value and where it was set. */
static void test_smdp_bad_value(void **state)
{
	(void)state;
	char conf[700], extra[1400], where[720], out[8192];
	snprintf(conf, sizeof conf, "%s/smdp-value.conf", dir);
	snprintf(extra, sizeof extra,
		 "tls-cert-nist = %s/dptls.pem\ntls-key-nist = %s/dptls.key.pem\n"
		 "max-connections = lots\n",
		 pki, pki);
	smdp_conf(conf, extra, closed_port());
	snprintf(where, sizeof where, "%s:12: max-connections", conf);
	const char *argv[] = {"esim-smdp", "serve", "--config", conf, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, where, "'lots'", NULL);
}

/* ---- esim-operator ---------------------------------------------------------------- */

/* A line without '=' was skipped without a word. */
static void test_operator_config_line(void **state)
{
	(void)state;
	char conf[700], where[720], out[8192];
	snprintf(conf, sizeof conf, "%s/operator.conf", dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "# the operator\ndb %s/op.db\nlisten = 127.0.0.1:1\n", dir);
	fclose(f);
	snprintf(where, sizeof where, "%s:2", conf);
	const char *argv[] = {"esim-operator", "serve", "--config", conf, NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, where, "key = value", NULL);
}

/* "serve: could not listen on the address and port": which, and why? */
static void test_operator_listen_in_use(void **state)
{
	(void)state;
	uint16_t port;
	int held = hold_port(&port);
	char db[700], listen[64], key[700], cert[700], ci[700], dk[700], out[8192];
	snprintf(db, sizeof db, "%s/op-busy.db", dir);
	snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
	snprintf(key, sizeof key, "%s/operator.key.pem", pki);
	snprintf(cert, sizeof cert, "%s/operator.pem", pki);
	snprintf(ci, sizeof ci, "%s/ci.pem", pki);
	snprintf(dk, sizeof dk, "%s/op-data.key", dir);
	const char *argv[] = {
	    "esim-operator", "serve", "--db", db,	"--listen", listen, "--insecure-http",
	    "yes",	     "--key", key,    "--cert", cert,	    "--ci", ci,
	    "--data-key",    dk,      NULL};
	int rc = run(out, sizeof out, argv);
	close(held);
	expect_fail_naming(out, rc, listen, "Address already in use", NULL);
}

/* "open: file or socket I/O failed": which file? And a TLS chain that is
 * not there: "(system lib)" was OpenSSL's whole reason. */
static void test_operator_file_missing(void **state)
{
	(void)state;
	char db[700], key[700], cert[700], ci[700], dk[700], out[8192];
	snprintf(db, sizeof db, "%s/op-files.db", dir);
	snprintf(key, sizeof key, "%s/no-such-operator.key.pem", dir);
	snprintf(cert, sizeof cert, "%s/operator.pem", pki);
	snprintf(ci, sizeof ci, "%s/ci.pem", pki);
	snprintf(dk, sizeof dk, "%s/op-files-data.key", dir);
	const char *argv[] = {"esim-operator",
			      "serve",
			      "--db",
			      db,
			      "--listen",
			      "127.0.0.1:0",
			      "--insecure-http",
			      "yes",
			      "--key",
			      key,
			      "--cert",
			      cert,
			      "--ci",
			      ci,
			      "--data-key",
			      dk,
			      NULL};
	int rc = run(out, sizeof out, argv);
	expect_fail_naming(out, rc, "setting key", key, "No such file or directory", NULL);

	char okkey[700], tls[700];
	snprintf(okkey, sizeof okkey, "%s/operator.key.pem", pki);
	snprintf(tls, sizeof tls, "%s/no-such-portal.pem", dir);
	const char *argv2[] = {
	    "esim-operator", "serve", "--db",  db,    "--listen", "127.0.0.1:0", "--tls-cert", tls,
	    "--tls-key",     okkey,   "--key", okkey, "--cert",	  cert,		 "--ci",       ci,
	    "--data-key",    dk,      NULL};
	rc = run(out, sizeof out, argv2);
	expect_fail_naming(out, rc, tls, "No such file or directory", NULL);
}

static void test_operator_unknown_setting(void **state)
{
	(void)state;
	char conf[700], where[720], out[8192];
	snprintf(conf, sizeof conf, "%s/operator-typo.conf", dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = %s/op-typo.db\nlisten = 127.0.0.1:%u\ninsecure-http = yes\n"
		"key = %s/operator.key.pem\ncert = %s/operator.pem\nci = %s/ci.pem\n"
		"data-key = %s/op-typo-data.key\ntick-secs = 5\n",
		dir, closed_port(), pki, pki, pki, dir);
	fclose(f);
	snprintf(where, sizeof where, "%s:8", conf);
	const char *argv[] = {"esim-operator", "serve", "--config", conf, NULL};
	serve_until(out, sizeof out, argv, "is not a setting");
	assert_non_null(strstr(out, where));
	assert_non_null(strstr(out, "'tick-secs' is not a setting"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_esim_no_euicc_unix),
	    cmocka_unit_test(test_esim_no_euicc_tcp),
	    cmocka_unit_test(test_esim_ci_missing),
	    cmocka_unit_test(test_esim_reader_missing),
	    cmocka_unit_test(test_esim_reader_list),
	    cmocka_unit_test(test_esim_modem_missing),
	    cmocka_unit_test(test_esim_smdp_unreachable),
	    cmocka_unit_test(test_euicc_cert_missing),
	    cmocka_unit_test(test_euicc_listen_in_use),
	    cmocka_unit_test(test_euicc_option_value),
	    cmocka_unit_test(test_smdp_file_missing),
	    cmocka_unit_test(test_smdp_listen_in_use),
	    cmocka_unit_test(test_smdp_tls_key_unusable),
	    cmocka_unit_test(test_smdp_unknown_setting),
	    cmocka_unit_test(test_smdp_bad_value),
	    cmocka_unit_test(test_operator_config_line),
	    cmocka_unit_test(test_operator_listen_in_use),
	    cmocka_unit_test(test_operator_file_missing),
	    cmocka_unit_test(test_operator_unknown_setting),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	return rc != 0 ? rc : pcsc_missing_status;
}
