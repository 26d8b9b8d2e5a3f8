/*
 * What the `esim` integration tests share: a private RSP PKI from
 * esim-pki, a real esim-euicc on a unix socket, a real esim-smdp on
 * loopback (its inventory filled through its admin commands), and a way
 * to run the `esim` program as a subprocess and read its --json document
 * and exit code. Header-only so that each test program stays one file.
 */
#ifndef ESIM_TEST_LPA_FIXTURE_H
#define ESIM_TEST_LPA_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>

#include "euicc_harness.h"

#include "esim/rsp_saip.h"
#include "lpa/cli.h" /* the exit codes */

#define L_N_ICCIDS 16

struct lenv {
	char *dir;
	char pki[600];
	char sock[600];
	char conf[600];
	char ci[640];
	char addr[64];
	uint16_t port;
	pid_t euicc, smdp;
	/* the last esim run */
	int exit_code;
	json_t *doc;
	char err[4096];
};

static inline uint16_t l_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t l = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static inline bool l_port_open(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/* Run a shell command, stdout into *out (malloc'd, NUL-terminated);
 * returns the exit status. */
static inline int l_sh(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	esim_buf b = ESIM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		assert_esim(ESIM_OK, esim_buf_append(&b, chunk, n));
	assert_esim(ESIM_OK, esim_buf_append_byte(&b, 0));
	int st = pclose(p);
	if (out != NULL)
		*out = (char *)b.data;
	else
		esim_buf_free(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* esim-smdp <args> --config conf; stdout into *out (may be NULL). */
static inline int l_smdp_cmd(struct lenv *e, const char *args, char **out)
{
	char cmd[5000];
	snprintf(cmd, sizeof cmd, "'%s/esim-smdp' %s --config '%s' 2>>'%s/smdp-admin.log'",
		 test_bin_dir(), args, e->conf, e->dir);
	return l_sh(cmd, out);
}

static inline void l_start_smdp(struct lenv *e)
{
	char prog[700], log[700];
	snprintf(prog, sizeof prog, "%s/esim-smdp", test_bin_dir());
	snprintf(log, sizeof log, "%s/smdp.log", e->dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(prog, prog, "serve", "--config", e->conf, (char *)NULL);
		_exit(127);
	}
	e->smdp = pid;
	for (int i = 0; i < 2000 && !l_port_open(e->port); i++)
		usleep(10000);
	assert_true(l_port_open(e->port));
}

static inline void l_stop_smdp(struct lenv *e)
{
	if (e->smdp <= 0)
		return;
	kill(e->smdp, SIGTERM);
	waitpid(e->smdp, NULL, 0);
	e->smdp = 0;
}

/* The whole environment: PKI, card, SM-DP+ with one operator, one
 * profile type and L_N_ICCIDS profiles. */
static inline struct lenv *l_setup(void)
{
	struct lenv *e = calloc(1, sizeof *e);
	e->dir = test_mkdtemp();
	assert_true(strlen(e->dir) < 400);
	snprintf(e->pki, sizeof e->pki, "%s/pki", e->dir);
	h_pki_init(e->pki, H_EID);
	snprintf(e->ci, sizeof e->ci, "%s/nist/ci.pem", e->pki);
	snprintf(e->sock, sizeof e->sock, "%s/card.sock", e->dir);
	char db[700], log[700], listen[700];
	snprintf(db, sizeof db, "%s/card.db", e->dir);
	snprintf(log, sizeof log, "%s/euicc.log", e->dir);
	snprintf(listen, sizeof listen, "unix:%s", e->sock);
	const char *args[] = {"--db", db, "--pki", e->pki, "--listen", listen, NULL};
	e->euicc = h_spawn_euicc(args, log);
	apdu_session *s = h_connect_retry(e->sock, 20000);
	apdu_session_close(s);

	e->port = l_free_port();
	snprintf(e->addr, sizeof e->addr, "127.0.0.1:%u", e->port);
	snprintf(e->conf, sizeof e->conf, "%s/smdp.conf", e->dir);
	FILE *f = fopen(e->conf, "w");
	assert_non_null(f);
	const char *p = e->pki;
	fprintf(
	    f,
	    "db = sqlite:%s/smdp.db\nfqdn = %s\n"
	    "dpauth-cert-nist = %s/nist/dpauth.der\ndpauth-key-nist = %s/nist/dpauth.key.pem\n"
	    "dppb-cert-nist = %s/nist/dppb.der\ndppb-key-nist = %s/nist/dppb.key.pem\n"
	    "ci = %s/nist/ci.der\nlisten-nist = %s\n"
	    "tls-cert-nist = %s/nist/dptls.pem\ntls-key-nist = %s/nist/dptls.key.pem\nlog = 1\n",
	    e->dir, e->addr, p, p, p, p, p, e->addr, p, p);
	fclose(f);

	/* inventory: a SAIP template, an operator, a type, the profiles */
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("89000123456789000010", &upp, &upp_len));
	char path[700], cmd[1500];
	snprintf(path, sizeof path, "%s/upp.der", e->dir);
	f = fopen(path, "wb");
	assert_int_equal(fwrite(upp, 1, upp_len, f), upp_len);
	fclose(f);
	free(upp);
	snprintf(cmd, sizeof cmd, "add-operator OP '%s/nist/operator.der'", p);
	assert_int_equal(l_smdp_cmd(e, cmd, NULL), 0);
	snprintf(cmd, sizeof cmd, "add-type T1 OP '%s' 'Test SPN' 'Test Profile'", path);
	assert_int_equal(l_smdp_cmd(e, cmd, NULL), 0);
	snprintf(path, sizeof path, "%s/profiles.csv", e->dir);
	f = fopen(path, "w");
	for (int i = 0; i < L_N_ICCIDS; i++) {
		char body[32];
		snprintf(body, sizeof body, "89000123456789000%02d", i);
		fprintf(f, "%s%d,0010101234567%02d\n", body, rsp_iccid_luhn_digit(body, 19), i);
	}
	fclose(f);
	snprintf(cmd, sizeof cmd, "import T1 '%s'", path);
	assert_int_equal(l_smdp_cmd(e, cmd, NULL), 0);
	l_start_smdp(e);
	return e;
}

static inline void l_teardown(struct lenv *e)
{
	l_stop_smdp(e);
	kill(e->euicc, SIGTERM);
	waitpid(e->euicc, NULL, 0);
	json_decref(e->doc);
	test_rm_rf(e->dir);
	free(e->dir);
	free(e);
}

/* A released order (optionally bound to the EID with a confirmation code):
 * its ICCID and activation code. */
static inline void l_order(struct lenv *e, const char *cc, char iccid[32], char ac[256])
{
	char args[256], *out = NULL;
	if (cc != NULL)
		snprintf(args, sizeof args, "order OP T1 %s %s", H_EID, cc);
	else
		snprintf(args, sizeof args, "order OP T1");
	assert_int_equal(l_smdp_cmd(e, args, &out), 0);
	char *i = strstr(out, "iccid "), *a = strstr(out, "activation code ");
	assert_non_null(i);
	assert_non_null(a);
	assert_int_equal(sscanf(i, "iccid %31s", iccid), 1);
	assert_int_equal(sscanf(a, "activation code %255s", ac), 1);
	free(out);
}

/* Run `esim ARGS --socket ... --ci ... --json`; the document in e->doc,
 * stderr in e->err; returns the exit code. */
static inline int l_esim(struct lenv *e, const char *args)
{
	char cmd[4096], errf[700];
	snprintf(errf, sizeof errf, "%s/esim.err", e->dir);
	snprintf(cmd, sizeof cmd, "'%s/esim' %s --socket 'unix:%s' --ci '%s' --json 2>'%s'",
		 test_bin_dir(), args, e->sock, e->ci, errf);
	char *out = NULL;
	e->exit_code = l_sh(cmd, &out);
	json_decref(e->doc);
	json_error_t je;
	e->doc = json_loads(out, 0, &je);
	if (e->doc == NULL)
		fail_msg("esim %s: output is not JSON: %s", args, out);
	free(out);
	FILE *f = fopen(errf, "r");
	size_t n = f ? fread(e->err, 1, sizeof e->err - 1, f) : 0;
	e->err[n] = '\0';
	if (f)
		fclose(f);
	/* the document always agrees with the exit code */
	assert_int_equal(json_integer_value(json_object_get(e->doc, "exit_code")), e->exit_code);
	assert_int_equal(json_is_true(json_object_get(e->doc, "ok")), e->exit_code == 0);
	return e->exit_code;
}

static inline json_t *l_result(struct lenv *e)
{
	return json_object_get(e->doc, "result");
}

static inline const char *l_error_str(struct lenv *e, const char *key)
{
	return json_string_value(json_object_get(json_object_get(e->doc, "error"), key));
}

/* The profile with iccid in `profile list`, or NULL. */
static inline json_t *l_find_profile(struct lenv *e, const char *iccid)
{
	assert_int_equal(l_esim(e, "profile list"), 0);
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(l_result(e), "profiles"), i,
			   p) if (strcmp(json_string_value(json_object_get(p, "iccid")), iccid) ==
				  0) return p;
	return NULL;
}

/* Pending notifications of iccid (count) with event (NULL: any). */
static inline size_t l_pending(struct lenv *e, const char *iccid, const char *event)
{
	assert_int_equal(l_esim(e, "notification list"), 0);
	size_t i, n = 0;
	json_t *p;
	json_array_foreach(json_object_get(l_result(e), "notifications"), i, p)
	{
		const char *ic = json_string_value(json_object_get(p, "iccid"));
		const char *ev = json_string_value(json_object_get(p, "event"));
		if (ic && strcmp(ic, iccid) == 0 && (event == NULL || strcmp(ev, event) == 0))
			n++;
	}
	return n;
}

/* The SM-DP+'s history of iccid contains text. */
static inline bool l_history_has(struct lenv *e, const char *iccid, const char *text)
{
	char args[128], *out = NULL;
	snprintf(args, sizeof args, "history %s", iccid);
	assert_int_equal(l_smdp_cmd(e, args, &out), 0);
	bool has = strstr(out, text) != NULL;
	free(out);
	return has;
}

/* Download the next order; returns its ICCID in iccid. */
static inline void l_download(struct lenv *e, char iccid[32])
{
	char ac[256], args[400];
	l_order(e, NULL, iccid, ac);
	snprintf(args, sizeof args, "profile download '%s'", ac);
	if (l_esim(e, args) != 0)
		fail_msg("download failed: %s", e->err);
}

#endif
