/*
 * Real mail (mail.c): the notices' outbox delivered over SMTP to a real
 * server on loopback, aiosmtpd (Debian's python3-aiosmtpd, driven by
 * smtp_server.py), which requires STARTTLS before anything and AUTH after
 * it. Delivered with STARTTLS and AUTH PLAIN (and LOGIN), a line of only "." in the
 * text intact (dot-stuffing); the server down:
 * the notice stays in the outbox with the error and a later try, then is
 * delivered once when the server is back (and never twice); a wrong
 * password, a server without STARTTLS and an untrusted certificate:
 * nothing sent, the reason kept. On SQLite and PostgreSQL; on PostgreSQL
 * two instances delivering at once send each notice once (the claim).
 * Without python3-aiosmtpd the test skips (77), or fails under CI=true.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "op_portal_fixture.h"

extern char **environ;

#define PY "/usr/bin/python3"

struct smtp_srv {
	pid_t pid;
	char out[700];
};

/* servers still running when a test fails half-way: stopped by its
 * teardown, so none outlives the test (and holds ctest's pipe) */
static pid_t live[4];

static void live_set(pid_t pid, bool on)
{
	for (size_t i = 0; i < 4; i++)
		if (on ? live[i] == 0 : live[i] == pid) {
			live[i] = on ? pid : 0;
			return;
		}
}

static int teardown_smtp(void **state)
{
	for (size_t i = 0; i < 4; i++)
		if (live[i] > 0) {
			kill(live[i], SIGTERM);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	return teardown(state);
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

static bool have_aiosmtpd(char *why, size_t n)
{
	if (access(PY, X_OK) != 0) {
		snprintf(why, n, "%s is missing", PY);
		return false;
	}
	if (system(PY " -c 'import aiosmtpd' 2>/dev/null") != 0) {
		snprintf(why, n, "python3-aiosmtpd is not installed (scripts/deps.sh)");
		return false;
	}
	return true;
}

/* Start smtp_server.py on port; extra: "--no-tls" or NULL. */
static void smtp_start(struct fx *f, struct smtp_srv *s, uint16_t port, const char *extra)
{
	char script[700], ps[16], ready[700], cert[700], key[700];
	snprintf(script, sizeof script, "%s/tests/unit/smtp_server.py", test_source_dir());
	snprintf(ps, sizeof ps, "%u", port);
	snprintf(s->out, sizeof s->out, "%s/inbox", f->dir);
	mkdir(s->out, 0700);
	snprintf(ready, sizeof ready, "%s/smtp.ready", f->dir);
	unlink(ready);
	snprintf(cert, sizeof cert, "%s/dptls.pem", f->pki);
	snprintf(key, sizeof key, "%s/dptls.key.pem", f->pki);
	char *argv[] = {PY,	   script,	 "--port",     ps,	    "--out",	   s->out,
			"--ready", ready,	 "--cert",     cert,	    "--key",	   key,
			"--user",  "care-relay", "--password", "s3cret pw", (char *)extra, NULL};
	assert_int_equal(0, posix_spawn(&s->pid, PY, NULL, NULL, argv, environ));
	live_set(s->pid, true);
	for (int i = 0; i < 200 && access(ready, F_OK) != 0; i++) {
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid)
			fail_msg("smtp_server.py exited (%d)", WEXITSTATUS(st));
		usleep(50000);
	}
	assert_int_equal(0, access(ready, F_OK));
}

static void smtp_stop(struct smtp_srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		live_set(s->pid, false);
		s->pid = 0;
	}
}

static int inbox_count(struct smtp_srv *s)
{
	DIR *d = opendir(s->out);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strstr(e->d_name, ".eml") != NULL && e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static char *inbox_read(struct smtp_srv *s, int n)
{
	char p[800];
	snprintf(p, sizeof p, "%s/%d.eml", s->out, n);
	size_t len = 0;
	uint8_t *b = test_read(p, &len);
	assert_non_null(b);
	char *t = strndup((const char *)b, len);
	free(b);
	return t;
}

/* The handle again, now with SMTP settings (password from a 0600 file). */
static void reopen_smtp(struct fx *f, uint16_t port, const char *password, const char *ca)
{
	op_charging_free(f->ch);
	f->ch = NULL;
	op_close(f->o);
	char pwf[700], dk[700], key[700], cert[700], cafile[700];
	snprintf(pwf, sizeof pwf, "%s/smtp.pw", f->dir);
	unlink(pwf);
	FILE *fp = fopen(pwf, "w");
	fprintf(fp, "%s\n", password);
	fclose(fp);
	chmod(pwf, 0600);
	snprintf(dk, sizeof dk, "%s/data.key", f->dir);
	snprintf(key, sizeof key, "%s/operator.key.pem", f->pki);
	snprintf(cert, sizeof cert, "%s/operator.pem", f->pki);
	snprintf(cafile, sizeof cafile, "%s/%s", f->pki, ca);
	struct op_config cfg = {.db = f->db,
				.web_dir = f->dir,
				.key_file = key,
				.cert_file = cert,
				.data_key_file = dk,
				.smtp_host = "127.0.0.1",
				.smtp_port = port,
				.smtp_user = "care-relay",
				.smtp_password_file = pwf,
				.smtp_from = "care@operator.example",
				.smtp_ca = cafile,
				.fast_hash = true,
				.now = fake_now,
				.now_arg = f};
	assert_esim(ESIM_OK, op_open(&cfg, &f->o));
	struct op_charging_config cc = {.client_cert_file = cert};
	assert_esim(ESIM_OK, op_charging_new(f->o, &cc, &f->ch));
}

static int64_t outbox(struct fx *f)
{
	return qint(f, "SELECT COUNT(*) FROM op_notices WHERE channel = 'email' AND sent = 0");
}

static void deliver(struct fx *f, size_t want_sent, size_t want_failed)
{
	size_t sent = 9, failed = 9;
	assert_esim(ESIM_OK, op_mail_deliver(f->o, &sent, &failed));
	assert_int_equal(want_sent, sent);
	assert_int_equal(want_failed, failed);
}

/* Sofie stops chargeable services: one e-mail notice (and an SMS row). */
static void one_notice(struct fx *f, bool stop)
{
	login_sofie(f);
	char b[64];
	snprintf(b, sizeof b, "{\"line_id\":2,\"stopped\":%s}", stop ? "true" : "false");
	assert_int_equal(200, call(f, "POST", "/api/lines/stop", NULL, b, NULL));
}

static char skip_why[200];

#define SKIP_IF_NO_SMTP(f)                                                                         \
	do {                                                                                       \
		SKIP_IF_NO_PG(f);                                                                  \
		if (!have_aiosmtpd(skip_why, sizeof skip_why)) {                                   \
			print_message("%s: skipped\n", skip_why);                                  \
			missing_smtp = true;                                                       \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static bool missing_smtp;

static void test_delivered(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_SMTP(f);
	struct smtp_srv s = {0};
	uint16_t port = free_port();
	smtp_start(f, &s, port, NULL);
	reopen_smtp(f, port, "s3cret pw", "ci.pem");
	/* the old notices of the seed went to nobody; start from none */
	assert_int_equal(0, qint(f, "SELECT COUNT(*) FROM op_notices WHERE sent = 1"));
	int64_t before = outbox(f);
	one_notice(f, true);
	assert_int_equal(before + 1, outbox(f));
	deliver(f, (size_t)before + 1, 0);
	assert_int_equal(0, outbox(f));
	assert_int_equal(before + 1, inbox_count(&s));
	char *m = inbox_read(&s, (int)before + 1);
	assert_non_null(strstr(m, "X-Authenticated: yes"));
	assert_non_null(strstr(m, "X-Envelope-To: sofie.janssens@example.be"));
	assert_non_null(strstr(m, "Subject: Chargeable services stopped"));
	assert_non_null(strstr(m, "Verification reference: OP-"));
	free(m);
	/* a staff question whose text has a line of only ".": dot-stuffed on
	 * the wire, intact at the other end (without it the DATA would end
	 * there and the rest be taken for commands) */
	login_sofie(f);
	assert_int_equal(201,
			 call(f, "POST", "/api/cases", NULL,
			      "{\"line_id\":2,\"reason\":\"moving\",\"document_type\":\"id_card\","
			      "\"document_number\":\"592\",\"document_copy\":"
			      "\"JVBERi0xLjQKJWlkZW50aXR5IGNvcHkKJSVFT0YK\"}",
			      NULL));
	login_reviewer(f);
	assert_int_equal(200,
			 call(f, "POST", "/api/staff/case/request-info", NULL,
			      "{\"case_id\":1,\"message\":\"Please send:\\n.\\n..both sides of "
			      "the card\\nQUIT\"}",
			      NULL));
	size_t sent = 0, failed = 0;
	assert_esim(ESIM_OK, op_mail_deliver(f->o, &sent, &failed));
	assert_int_equal(2, sent); /* submitted, needs_info */
	assert_int_equal(0, failed);
	int n = inbox_count(&s);
	m = inbox_read(&s, n);
	assert_non_null(strstr(m, "Please send:\r\n.\r\n..both sides of the card\r\nQUIT\r\n"));
	free(m);
	assert_int_equal((int64_t)n,
			 qint(f,
			      "SELECT COUNT(*) FROM op_notices WHERE channel = 'email' AND sent = 1"
			      " AND sent_at IS NOT NULL"));
	smtp_stop(&s);
	/* a relay that offers only AUTH LOGIN */
	smtp_start(f, &s, port, "--login-only");
	int before_login = inbox_count(&s);
	login_sofie(f);
	assert_int_equal(200, call(f, "POST", "/api/lines/stop", NULL,
				   "{\"line_id\":2,\"stopped\":false}", NULL));
	deliver(f, 1, 0);
	assert_int_equal(before_login + 1, inbox_count(&s));
	m = inbox_read(&s, before_login + 1);
	assert_non_null(strstr(m, "X-Authenticated: yes"));
	free(m);
	smtp_stop(&s);
}

static void test_server_down_then_up(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_SMTP(f);
	uint16_t port = free_port(); /* nothing listens there yet */
	reopen_smtp(f, port, "s3cret pw", "ci.pem");
	/* the seeded notices and the new one: all wait */
	int64_t n = outbox(f) + 1;
	one_notice(f, true);
	/* what serve logs of a failed try: one JSON line per notice */
	FILE *logf = tmpfile();
	assert_non_null(logf);
	esim_log lg;
	esim_log_init(&lg, "esim-operator", ESIM_LOG_JSON);
	lg.out = logf;
	op_set_log(f->o, &lg);
	deliver(f, 0, (size_t)n);
	op_set_log(f->o, NULL);
	rewind(logf);
	char line[2048];
	int lines = 0;
	while (fgets(line, sizeof line, logf)) {
		json_t *o = json_loads(line, 0, NULL);
		if (!json_is_object(o))
			fail_msg("not a JSON line: %s", line);
		assert_string_equal(json_string_value(json_object_get(o, "msg")),
				    "notice not sent");
		assert_non_null(strstr(json_string_value(json_object_get(o, "why")), "connect"));
		json_decref(o);
		lines++;
	}
	fclose(logf);
	assert_int_equal(lines, n);
	assert_int_equal(n, outbox(f));
	assert_int_equal(n, qint(f, "SELECT COUNT(*) FROM op_notices WHERE attempts = 1 AND"
				    " last_error LIKE '%cannot connect%'"));
	/* not due again before its back-off (30 s) */
	deliver(f, 0, 0);
	f->clock += 31;
	deliver(f, 0, (size_t)n); /* still down: the next try in 60 s */
	assert_int_equal(n, qint(f, "SELECT COUNT(*) FROM op_notices WHERE attempts = 2"));
	struct smtp_srv s = {0};
	smtp_start(f, &s, port, NULL);
	f->clock += 30;
	deliver(f, 0, 0); /* 30 s is not 60 */
	f->clock += 31;
	deliver(f, (size_t)n, 0);
	assert_int_equal(0, outbox(f));
	assert_int_equal((int)n, inbox_count(&s));
	f->clock += 3600;
	deliver(f, 0, 0); /* delivered once, never again */
	assert_int_equal((int)n, inbox_count(&s));
	assert_int_equal(n, qint(f, "SELECT COUNT(*) FROM op_audit WHERE action = 'mail.sent'"));
	smtp_stop(&s);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_SMTP(f);
	struct smtp_srv s = {0};
	uint16_t port = free_port();
	smtp_start(f, &s, port, NULL);
	/* a wrong password: refused by the server, nothing delivered */
	reopen_smtp(f, port, "wrong", "ci.pem");
	int64_t n = outbox(f) + 1;
	one_notice(f, true);
	deliver(f, 0, (size_t)n);
	assert_int_equal(n, qint(f, "SELECT COUNT(*) FROM op_notices WHERE last_error LIKE"
				    " 'SMTP AUTH PLAIN refused: 535%'"));
	/* a server certificate the operator does not trust (the only trust
	 * given is the EUM certificate, not the relay certificate's issuer) */
	reopen_smtp(f, port, "s3cret pw", "eum.pem");
	f->clock += 3600;
	deliver(f, 0, (size_t)n);
	assert_int_equal(n, qint(f, "SELECT COUNT(*) FROM op_notices WHERE last_error LIKE"
				    " '%certificate not accepted%'"));
	assert_int_equal(0, inbox_count(&s));
	smtp_stop(&s);
	/* a server that offers no STARTTLS: nothing sent in the clear */
	smtp_start(f, &s, port, "--no-tls");
	reopen_smtp(f, port, "s3cret pw", "ci.pem");
	f->clock += 3600;
	deliver(f, 0, (size_t)n);
	assert_int_equal(n, qint(f, "SELECT COUNT(*) FROM op_notices WHERE last_error LIKE"
				    " '%no STARTTLS%'"));
	assert_int_equal(0, inbox_count(&s));
	smtp_stop(&s);
}

struct deliverer {
	op *o;
	size_t sent;
	esim_err err;
};

static void *deliver_thread(void *arg)
{
	struct deliverer *d = arg;
	size_t failed = 0;
	d->err = op_mail_deliver(d->o, &d->sent, &failed);
	return NULL;
}

/* Two instances on one PostgreSQL deliver the outbox at the same moment:
 * each notice claimed by one of them (SKIP LOCKED), sent once. */
static void test_two_instances(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NO_SMTP(f);
	struct smtp_srv s = {0};
	uint16_t port = free_port();
	smtp_start(f, &s, port, NULL);
	reopen_smtp(f, port, "s3cret pw", "ci.pem");
	for (int i = 0; i < 6; i++)
		one_notice(f, i % 2 == 0);
	int64_t n = outbox(f);
	assert_true(n >= 6);
	op *b = NULL;
	char pwf[700], cafile[700];
	snprintf(pwf, sizeof pwf, "%s/smtp.pw", f->dir);
	snprintf(cafile, sizeof cafile, "%s/ci.pem", f->pki);
	struct op_config cfg = {.db = f->db,
				.web_dir = f->dir,
				.smtp_host = "127.0.0.1",
				.smtp_port = port,
				.smtp_user = "care-relay",
				.smtp_password_file = pwf,
				.smtp_ca = cafile,
				.fast_hash = true,
				.now = fake_now,
				.now_arg = f};
	assert_esim(ESIM_OK, op_open(&cfg, &b));
	struct deliverer da = {.o = f->o}, db = {.o = b};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, deliver_thread, &da);
	pthread_create(&tb, NULL, deliver_thread, &db);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_esim(ESIM_OK, da.err);
	assert_esim(ESIM_OK, db.err);
	op_close(b);
	assert_int_equal(n, (int64_t)(da.sent + db.sent));
	assert_int_equal(0, outbox(f));
	assert_int_equal((int)n, inbox_count(&s));
	assert_int_equal(n, qint(f, "SELECT COUNT(*) FROM op_audit WHERE action = 'mail.sent'"));
	smtp_stop(&s);
}

int main(void)
{
#define BOTH_SMTP(t)                                                                               \
	cmocka_unit_test_setup_teardown(t, setup_sqlite, teardown_smtp),                           \
	    cmocka_unit_test_setup_teardown(t, setup_pg, teardown_smtp)
	const struct CMUnitTest tests[] = {
	    BOTH_SMTP(test_delivered),
	    BOTH_SMTP(test_server_down_then_up),
	    BOTH_SMTP(test_refusals),
	    cmocka_unit_test_setup_teardown(test_two_instances, setup_pg, teardown_smtp),
	};
	int rc = fixture_main(tests, sizeof tests / sizeof tests[0]);
	if (rc == 0 && missing_smtp)
		rc = test_component_missing_status("python3-aiosmtpd", skip_why);
	return rc;
}
