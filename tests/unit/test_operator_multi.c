/*
 * Two esim-operator instances on one PostgreSQL (issue 18, scale-out): two
 * op handles, each with its own store connection, as two processes behind
 * a load balancer would be. A session cookie and CSRF token made by a
 * login on instance A work on instance B (they live in the database, not
 * in a process), a logout on one ends the session on both; a termination
 * step taken on A is what B shows; and the periodic work (op_tick's
 * deletion reminders, the notices it sends) is done once although both
 * instances tick at the same time: the due cases are claimed with
 * SELECT ... FOR UPDATE SKIP LOCKED, so an instance passes over a case the
 * other is working on. PostgreSQL only (SQLite is one process's file):
 * skipped without it, a failure under CI=true.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esim/operator.h"
#include "esim/store.h"
#include "pg_helper.h"
#include "testutil.h"

#define EID "89049032123451234512345678901235"

static struct pg_env pg;
static char *dir, db[512], pki[600], dk[700], mail[700];
static time_t clock_now = 1790000000;

static time_t fake_now(void *arg)
{
	(void)arg;
	return __atomic_load_n(&clock_now, __ATOMIC_SEQ_CST);
}

static op *open_instance(void)
{
	char key[700], cert[700], ci[700];
	snprintf(key, sizeof key, "%s/operator.key.pem", pki);
	snprintf(cert, sizeof cert, "%s/operator.pem", pki);
	snprintf(ci, sizeof ci, "%s/ci.pem", pki);
	struct op_config cfg = {.db = db,
				.web_dir = dir,
				.maildir = mail,
				.key_file = key,
				.cert_file = cert,
				.ci_file = ci,
				.data_key_file = dk,
				.fast_hash = true,
				.now = fake_now};
	op *o = NULL;
	assert_esim(ESIM_OK, op_open(&cfg, &o));
	return o;
}

struct who {
	char cookie[128], csrf[80];
};

/* One request to instance o; *out the parsed JSON (may be NULL). */
static int call(op *o, const char *method, const char *path, const char *query, const char *body,
		const struct who *w, const char *csrf, json_t **out)
{
	struct net_header h[2];
	size_t nh = 0;
	if (w && w->cookie[0])
		h[nh++] = (struct net_header){"Cookie", w->cookie};
	if (csrf && *csrf)
		h[nh++] = (struct net_header){"X-CSRF-Token", csrf};
	net_request req = {.method = method,
			   .path = path,
			   .query = query,
			   .headers = h,
			   .n_headers = nh,
			   .body = (const uint8_t *)body,
			   .body_len = body ? strlen(body) : 0,
			   .peer_addr = "192.0.2.7"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, o));
	int st = resp.status;
	if (out)
		*out = resp.body.len
			   ? json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL)
			   : NULL;
	net_response_clear(&resp);
	return st;
}

static void login(op *o, const char *path, const char *user, const char *pw, struct who *w)
{
	char b[256];
	snprintf(b, sizeof b, "{\"login\":\"%s\",\"password\":\"%s\"}", user, pw);
	net_request req = {.method = "POST",
			   .path = path,
			   .body = (const uint8_t *)b,
			   .body_len = strlen(b),
			   .peer_addr = "192.0.2.7"};
	net_response resp;
	net_response_init(&resp);
	assert_esim(ESIM_OK, op_http(&req, &resp, o));
	assert_int_equal(200, resp.status);
	memset(w, 0, sizeof *w);
	for (size_t i = 0; i < resp.n_headers; i++)
		if (!strcmp(resp.headers[i].name, "Set-Cookie"))
			snprintf(w->cookie, sizeof w->cookie, "%.*s",
				 (int)strcspn(resp.headers[i].value, ";"), resp.headers[i].value);
	json_t *j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	snprintf(w->csrf, sizeof w->csrf, "%s", json_string_value(json_object_get(j, "csrf")));
	json_decref(j);
	net_response_clear(&resp);
	assert_int_equal(64, strlen(w->csrf));
	assert_true(w->cookie[0] != '\0');
}

static char *case_state(op *o, const char *path, int64_t id, const struct who *w)
{
	static char s[32];
	char q[32];
	snprintf(q, sizeof q, "id=%lld", (long long)id);
	json_t *j;
	assert_int_equal(200, call(o, "GET", path, q, NULL, w, NULL, &j));
	snprintf(s, sizeof s, "%s",
		 json_string_value(json_object_get(json_object_get(j, "case"), "state")));
	json_decref(j);
	return s;
}

struct tick {
	op *o;
	size_t n;
	esim_err err;
};

static void *tick_main(void *arg)
{
	struct tick *t = arg;
	t->err = op_tick(t->o, &t->n);
	return NULL;
}

/* op_tick on both instances at once; the reminders they sent in all. */
static size_t tick_both(op *a, op *b, void (*meanwhile)(void *), void *arg)
{
	struct tick ta = {a, 0, ESIM_OK}, tb = {b, 0, ESIM_OK};
	pthread_t pa, pb;
	assert_int_equal(0, pthread_create(&pa, NULL, tick_main, &ta));
	assert_int_equal(0, pthread_create(&pb, NULL, tick_main, &tb));
	if (meanwhile)
		meanwhile(arg);
	pthread_join(pa, NULL);
	pthread_join(pb, NULL);
	/* a tick may lose a serialization conflict (SERIALIZABLE): it rolls
	 * back and the next tick does the work, as esim-operator serve's loop
	 * does; what it must never do is send before it has the case */
	if (ta.err != ESIM_OK)
		assert_esim(ESIM_E_STORE_BUSY, ta.err);
	if (tb.err != ESIM_OK)
		assert_esim(ESIM_E_STORE_BUSY, tb.err);
	return (ta.err == ESIM_OK ? ta.n : 0) + (tb.err == ESIM_OK ? tb.n : 0);
}

/* Holds the case's row for a second (as a tick of a third instance would
 * while it sends the reminder), then lets go. */
static void hold_then_release(void *arg)
{
	store *s = arg;
	usleep(1000000);
	assert_esim(ESIM_OK, store_commit(s));
}

static int64_t count(store *s, const char *sql)
{
	store_stmt *st;
	bool row = false;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	int64_t n = store_col_int64(st, 0);
	store_finalize(st);
	return n;
}

static size_t mails_with(const char *subject)
{
	char d[800], path[1200], line[512];
	snprintf(d, sizeof d, "%s/new", mail);
	DIR *dh = opendir(d);
	size_t n = 0;
	for (struct dirent *e = dh ? readdir(dh) : NULL; e; e = readdir(dh)) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", d, e->d_name);
		FILE *f = fopen(path, "r");
		while (f && fgets(line, sizeof line, f))
			if (!strncmp(line, "Subject: ", 9) && strstr(line, subject))
				n++;
		if (f)
			fclose(f);
	}
	if (dh)
		closedir(dh);
	return n;
}

static void test_two_instances(void **state)
{
	(void)state;
	op *a = open_instance();
	assert_esim(ESIM_OK, op_seed_demo(a));
	op *b = open_instance();

	/* Sofie logs in on A; her cookie and CSRF token work on B */
	struct who sofie, staff;
	login(a, "/api/login", "sofie.janssens@example.be", "sofie-demo-2026", &sofie);
	json_t *j;
	assert_int_equal(200, call(b, "GET", "/api/account", NULL, NULL, &sofie, NULL, &j));
	json_t *line = json_array_get(json_object_get(j, "lines"), 0);
	int64_t line_id = json_integer_value(json_object_get(line, "id"));
	json_decref(j);
	assert_true(line_id > 0);
	char body[600];
	snprintf(body, sizeof body,
		 "{\"line_id\":%lld,\"reason\":\"moving abroad\",\"document_type\":\"id_card\","
		 "\"document_number\":\"592-1234567-89\",\"document_copy\":"
		 "\"iVBORw0KGgppZGVudGl0eSBjYXJkIHNjYW4=\",\"document_mime\":\"image/png\"}",
		 (long long)line_id);
	/* B checks the token A issued: none, or a wrong one, is refused */
	assert_int_equal(403, call(b, "POST", "/api/cases", NULL, body, &sofie, NULL, NULL));
	char wrong[80];
	snprintf(wrong, sizeof wrong, "%s", sofie.csrf);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	assert_int_equal(403, call(b, "POST", "/api/cases", NULL, body, &sofie, wrong, NULL));
	assert_int_equal(201, call(b, "POST", "/api/cases", NULL, body, &sofie, sofie.csrf, &j));
	int64_t cs = json_integer_value(json_object_get(json_object_get(j, "case"), "id"));
	json_decref(j);
	assert_string_equal("submitted", case_state(a, "/api/case", cs, &sofie));

	/* the reviewer approves on A; B shows the step at once */
	login(b, "/api/staff/login", "reviewer", "review-demo-2026", &staff);
	char ab[96];
	snprintf(ab, sizeof ab, "{\"case_id\":%lld,\"note\":\"identity checked\"}", (long long)cs);
	assert_int_equal(
	    200, call(a, "POST", "/api/staff/case/approve", NULL, ab, &staff, staff.csrf, NULL));
	assert_string_equal("awaiting_deletion", case_state(b, "/api/staff/case", cs, &staff));
	assert_string_equal("awaiting_deletion", case_state(b, "/api/case", cs, &sofie));

	/* the deletion reminder is due: both instances tick at once while a
	 * third holds the case's row, then again once it lets go. One
	 * reminder in all: one pair of notices (e-mail, SMS), one e-mail. */
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(db, &s));
	__atomic_add_fetch(&clock_now, 8 * 86400, __ATOMIC_SEQ_CST);
	char lock[128];
	snprintf(lock, sizeof lock, "SELECT id FROM op_cases WHERE id = %lld FOR UPDATE",
		 (long long)cs);
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, store_exec(s, lock));
	size_t sent = tick_both(a, b, hold_then_release, s);
	sent += tick_both(a, b, NULL, NULL);
	sent += tick_both(a, b, NULL, NULL);
	assert_int_equal(1, mails_with("Please delete the eSIM profile"));
	assert_int_equal(1, sent);
	assert_int_equal(2, count(s, "SELECT count(*) FROM op_notices WHERE subject ="
				     " 'Please delete the eSIM profile'"));
	assert_int_equal(1, count(s, "SELECT count(*) FROM op_cases WHERE reminded = 1"));
	store_close(s);

	/* a logout on B ends the session on A too (a new login: the eight
	 * days above outlived the first session) */
	login(a, "/api/login", "sofie.janssens@example.be", "sofie-demo-2026", &sofie);
	assert_int_equal(200, call(b, "GET", "/api/account", NULL, NULL, &sofie, NULL, NULL));
	assert_int_equal(200, call(a, "GET", "/api/account", NULL, NULL, &sofie, NULL, NULL));
	int st = call(b, "POST", "/api/logout", NULL, NULL, &sofie, sofie.csrf, NULL);
	assert_true(st == 200 || st == 204);
	assert_int_equal(401, call(a, "GET", "/api/account", NULL, NULL, &sofie, NULL, NULL));
	op_close(b);
	op_close(a);
}

int main(void)
{
	int rc = pg_start(&pg);
	if (rc == TEST_SKIP_CODE)
		return test_component_missing_status("PostgreSQL", pg.why);
	if (rc != 0) {
		fprintf(stderr, "PostgreSQL is installed but did not start\n");
		pg_stop(&pg);
		return 1;
	}
	if (pg_create_db(&pg, db, sizeof db) != 0) {
		pg_stop(&pg);
		return 1;
	}
	dir = test_mkdtemp();
	snprintf(pki, sizeof pki, "%s/pki/nist", dir);
	snprintf(dk, sizeof dk, "%s/data.key", dir);
	snprintf(mail, sizeof mail, "%s/mail", dir);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "%s/esim-pki init %s/pki --eid %s >/dev/null", test_bin_dir(),
		 dir, EID);
	if (system(cmd) != 0) {
		fprintf(stderr, "esim-pki init failed\n");
		pg_stop(&pg);
		return 1;
	}
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_instances)};
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pg_stop(&pg);
	test_rm_rf(dir);
	free(dir);
	return rc;
}
