/*
 * The HandleDownloadProgressInfo outbox (digest 5.3.5, es2.c) shared by two
 * SM-DP+ instances on one database, on SQLite and on PostgreSQL
 * (tests/common/pg_helper; a skip without it, a failure under CI=true).
 *
 * The operator is a plain-HTTP net_server on loopback that records every
 * call it gets (functionCallIdentifier, body, and which instance sent it,
 * by User-Agent) and answers 204.
 *
 *  - test_*: two instances (two smdp handles, each delivering from its own
 *    thread) drain 2,000 queued callbacks: every one arrives exactly once,
 *    both instances send some, and the backlog is gone in bounded time
 *    (the rate is printed, not asserted). At 529f5d7 both instances read
 *    the same pending rows and both sent them (duplicates).
 *  - then a crash: a child process (this program, exec'd) leases a batch,
 *    posts it to an operator that holds its answers, and is killed before
 *    it can mark anything. Its rows are not sent by the other instance
 *    while the lease runs, and are sent once it has run out, each resend
 *    carrying the very body, so the same functionCallIdentifier, as the
 *    call the dead instance made.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esim/store.h"
#include "pg_helper.h"
#include "smdp/smdp_int.h"
#include "test_smdp_fixture.h"

#define N_CALLBACKS 2000
#define N_CRASH	    16
#define LEASE_S	    30

static struct sfx F;
static char db_url[512];

/* ---- the counting operator ------------------------------------------------ */

struct rec {
	char id[64], ua[16];
	char *body;
};

static pthread_mutex_t rlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rcond = PTHREAD_COND_INITIALIZER;
static struct rec *recs;
static size_t n_recs, cap_recs;
static bool hold; /* answer nothing until released (the crash case) */
static net_server *srv;
static char cb_url[128];

static esim_err cb_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)arg;
	json_t *j = json_loadb((const char *)req->body, req->body_len, 0, NULL);
	const char *id = json_string_value(
	    json_object_get(json_object_get(j, "header"), "functionCallIdentifier"));
	const char *ua = net_request_header(req, "User-Agent");
	pthread_mutex_lock(&rlock);
	if (n_recs == cap_recs) {
		cap_recs = cap_recs ? 2 * cap_recs : 1024;
		recs = realloc(recs, cap_recs * sizeof *recs);
	}
	struct rec *r = &recs[n_recs++];
	snprintf(r->id, sizeof r->id, "%s", id ? id : "");
	snprintf(r->ua, sizeof r->ua, "%s", ua ? ua : "");
	r->body = strndup((const char *)req->body, req->body_len);
	pthread_cond_broadcast(&rcond);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30; /* never forever */
	while (hold && pthread_cond_timedwait(&rcond, &rlock, &ts) == 0)
		;
	pthread_mutex_unlock(&rlock);
	json_decref(j);
	return net_response_set(resp, 204, NULL);
}

static void recs_clear(void)
{
	pthread_mutex_lock(&rlock);
	for (size_t i = 0; i < n_recs; i++)
		free(recs[i].body);
	n_recs = 0;
	pthread_mutex_unlock(&rlock);
}

static void receiver_start(void)
{
	struct net_server_config sc = {.threads = 8};
	assert_esim(ESIM_OK, net_server_new(&sc, &srv));
	struct net_listener_config lc = {.address = "127.0.0.1"};
	int l;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l));
	assert_esim(ESIM_OK, net_server_add_route(srv, l, "POST",
						  "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
						  cb_handler, NULL));
	assert_esim(ESIM_OK, net_server_start(srv));
	snprintf(cb_url, sizeof cb_url,
		 "http://127.0.0.1:%u/gsma/rsp2/es2plus/handleDownloadProgressInfo",
		 net_server_port(srv, l));
}

static void receiver_stop(void)
{
	pthread_mutex_lock(&rlock);
	hold = false;
	pthread_cond_broadcast(&rcond);
	pthread_mutex_unlock(&rlock);
	net_server_stop(srv);
	net_server_free(srv);
	srv = NULL;
	recs_clear();
}

/* ---- the outbox ----------------------------------------------------------- */

static void client_cfg(struct net_client_config *cc, char *ca, size_t n, const char *pki,
		       const char *ua)
{
	snprintf(ca, n, "%s/nist/ci.pem", pki); /* required; the endpoint is plain HTTP */
	*cc = (struct net_client_config){
	    .ca_file = ca, .connect_timeout_ms = 2000, .timeout_ms = 8000, .user_agent = ua};
}

static size_t pending(smdp *d)
{
	size_t n = 0;
	assert_esim(ESIM_OK, smdp_outbox_pending(d, &n));
	return n;
}

static int64_t count_sql(const char *sql)
{
	store *s;
	assert_esim(ESIM_OK, store_open(db_url, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	bool row;
	assert_esim(ESIM_OK, store_step(st, &row));
	int64_t v = store_col_int64(st, 0);
	store_finalize(st);
	store_close(s);
	return v;
}

/* n callbacks queued through smdp_outbox_queue for real orders of OP1,
 * whose callback URL is our receiver (each queue makes its own
 * functionCallIdentifier). */
static void queue_callbacks(size_t n)
{
	store *s;
	assert_esim(ESIM_OK, smdp_store_get(F.d, &s));
	store_stmt *st;
	assert_esim(ESIM_OK,
		    store_prepare(
			s, "UPDATE smdp_operators SET callback_url = ?1 WHERE name = 'OP1'", &st));
	store_bind_text(st, 1, cb_url);
	assert_esim(ESIM_OK, store_run(st));
	store_finalize(st);
	int64_t orders[8];
	size_t k = 0;
	assert_esim(ESIM_OK,
		    store_prepare(s, "SELECT id FROM smdp_orders ORDER BY id LIMIT 8", &st));
	bool row;
	while (store_step(st, &row) == ESIM_OK && row && k < 8)
		orders[k++] = store_col_int64(st, 0);
	store_finalize(st);
	assert_int_equal(k, 8);
	assert_esim(ESIM_OK, store_begin(s));
	for (size_t i = 0; i < n; i++) {
		struct smdp_status ok = SMDP_OK_STATUS;
		assert_esim(ESIM_OK, smdp_outbox_queue(F.d, s, orders[i % k], 1 + (int)(i % 3), &ok,
						       NULL, 0));
	}
	assert_esim(ESIM_OK, store_commit(s));
	smdp_store_put(F.d, s);
}

struct instance {
	smdp *d;
	const char *ua;
	size_t delivered, passes;
	esim_err err;
};

/* One instance's outbox loop, as main.c runs it, until nothing is left. */
static void *instance_thread(void *arg)
{
	struct instance *in = arg;
	char ca[800];
	struct net_client_config cc;
	client_cfg(&cc, ca, sizeof ca, F.pki, in->ua);
	struct smdp_outbox_config oc = {.client = &cc, .concurrency = 4, .lease_s = LEASE_S};
	smdp_outbox_sender *snd = NULL;
	if ((in->err = smdp_outbox_sender_new(&oc, &snd)) != ESIM_OK)
		return NULL;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		size_t claimed = 0, ok = 0, left = 1;
		esim_err err = smdp_outbox_deliver(in->d, snd, &claimed, &ok);
		if (err != ESIM_OK && err != ESIM_E_STORE_BUSY) {
			in->err = err;
			break;
		}
		in->delivered += ok;
		in->passes++;
		if (claimed > 0)
			continue;
		if (smdp_outbox_pending(in->d, &left) == ESIM_OK && left == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 60)
			break; /* the caller's assertions say what is missing */
		usleep(10000);
	}
	smdp_outbox_sender_free(snd);
	return NULL;
}

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->id, ((const struct rec *)b)->id);
}

static void two_instances_exactly_once(void)
{
	recs_clear();
	size_t before = pending(F.d);
	queue_callbacks(N_CALLBACKS);
	assert_int_equal(pending(F.d), before + N_CALLBACKS);
	size_t total = before + N_CALLBACKS;
	smdp *b = NULL;
	assert_esim(ESIM_OK, smdp_open(&F.cfg, &b));
	struct instance in[2] = {{.d = F.d, .ua = "inst-A"}, {.d = b, .ua = "inst-B"}};
	pthread_t th[2];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, instance_thread, &in[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	smdp_close(b);
	for (int i = 0; i < 2; i++)
		assert_esim(ESIM_OK, in[i].err);
	fprintf(stderr,
		"outbox (%s): %zu callbacks by two instances in %.2f s, %.0f callbacks/s"
		" (A %zu in %zu passes, B %zu in %zu passes)\n",
		strncmp(db_url, "postgres", 8) == 0 ? "postgresql" : "sqlite", total, secs,
		(double)total / secs, in[0].delivered, in[0].passes, in[1].delivered, in[1].passes);
	/* bounded, so that a slow machine cannot make it flake */
	assert_true(secs < 30.0);
	assert_int_equal(pending(F.d), 0);
	assert_int_equal(count_sql("SELECT COUNT(*) FROM smdp_outbox WHERE done = 1"), total);
	assert_int_equal(
	    count_sql("SELECT COUNT(*) FROM smdp_outbox WHERE lease_owner IS NOT NULL"), 0);
	assert_int_equal(in[0].delivered + in[1].delivered, total);
	/* the receiver's view: each identifier exactly once, from both */
	pthread_mutex_lock(&rlock); /* no assertion inside: it would leave it locked */
	size_t got = n_recs, by_a = 0, by_b = 0, dups = 0, bad_id = 0;
	qsort(recs, n_recs, sizeof *recs, cmp_rec);
	for (size_t i = 0; i < n_recs; i++) {
		bad_id += strncmp(recs[i].id, "hdpi-", 5) != 0;
		by_a += strcmp(recs[i].ua, "inst-A") == 0;
		by_b += strcmp(recs[i].ua, "inst-B") == 0;
		if (i > 0 && strcmp(recs[i].id, recs[i - 1].id) == 0) {
			if (dups++ < 5)
				fprintf(stderr, "duplicate: %s\n", recs[i].id);
		}
	}
	pthread_mutex_unlock(&rlock);
	fprintf(stderr, "receiver: %zu calls, %zu duplicates, %zu from A, %zu from B\n", got, dups,
		by_a, by_b);
	assert_int_equal(bad_id, 0);
	assert_int_equal(dups, 0);
	assert_int_equal(got, total);
	assert_true(by_a > 0);
	assert_true(by_b > 0);
	assert_int_equal(by_a + by_b, total);
}

/* The child: an instance that leases one batch and posts it (the
 * receiver holds the answers); the parent kills it there. */
static int child_main(const char *dir, const char *url)
{
	memset(&F, 0, sizeof F);
	F.dir = strdup(dir);
	snprintf(F.pki, sizeof F.pki, "%s/pki", dir);
	snprintf(F.kek, sizeof F.kek, "%s/kek", dir);
	struct smdp_config *c = &F.cfg;
	c->db_url = url;
	c->fqdn = SFX_FQDN;
	c->ids[0].dpauth_cert = sfx_path(&F, 0, "nist", "dpauth.der");
	c->ids[0].dpauth_key = sfx_path(&F, 1, "nist", "dpauth.key.pem");
	c->ids[0].dppb_cert = sfx_path(&F, 2, "nist", "dppb.der");
	c->ids[0].dppb_key = sfx_path(&F, 3, "nist", "dppb.key.pem");
	c->n_ids = 1;
	c->ci_paths[0] = sfx_path(&F, 8, "nist", "ci.der");
	c->n_ci = 1;
	c->kek_file = F.kek;
	smdp *d = NULL;
	if (smdp_open(c, &d) != ESIM_OK)
		return 3;
	char ca[800];
	struct net_client_config cc;
	client_cfg(&cc, ca, sizeof ca, F.pki, "inst-dead");
	struct smdp_outbox_config oc = {
	    .client = &cc, .concurrency = 4, .batch = N_CRASH, .lease_s = LEASE_S};
	smdp_outbox_sender *snd = NULL;
	if (smdp_outbox_sender_new(&oc, &snd) != ESIM_OK)
		return 4;
	size_t claimed = 0;
	smdp_outbox_deliver(d, snd, &claimed, NULL);
	/* only reached if the parent did not kill us */
	fprintf(stderr, "child: pass ended (%zu claimed)\n", claimed);
	return 5;
}

static void crash_resends_same_identifier(void)
{
	recs_clear();
	assert_int_equal(pending(F.d), 0);
	queue_callbacks(N_CRASH);
	pthread_mutex_lock(&rlock);
	hold = true;
	pthread_mutex_unlock(&rlock);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_smdp_outbox_multi", "--outbox-child", F.dir, db_url,
		      (char *)NULL);
		_exit(127);
	}
	/* wait until the child's calls have reached the operator */
	pthread_mutex_lock(&rlock);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	while (n_recs < 1 && pthread_cond_timedwait(&rcond, &rlock, &ts) == 0)
		;
	size_t held = n_recs;
	pthread_mutex_unlock(&rlock);
	assert_true(held >= 1);
	usleep(500000); /* the child's other connections */
	kill(pid, SIGKILL);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status)); /* killed mid-batch, not ended */
	pthread_mutex_lock(&rlock);
	hold = false;
	pthread_cond_broadcast(&rcond);
	pthread_mutex_unlock(&rlock);
	assert_int_equal(pending(F.d), N_CRASH); /* nothing marked */
	assert_int_equal(count_sql("SELECT COUNT(*) FROM smdp_outbox WHERE done = 0 AND"
				   " lease_owner IS NOT NULL"),
			 N_CRASH);

	char ca[800];
	struct net_client_config cc;
	client_cfg(&cc, ca, sizeof ca, F.pki, "inst-A");
	struct smdp_outbox_config oc = {.client = &cc, .concurrency = 4, .lease_s = LEASE_S};
	smdp_outbox_sender *snd = NULL;
	assert_esim(ESIM_OK, smdp_outbox_sender_new(&oc, &snd));
	/* while the dead instance's lease runs, its rows are not due */
	size_t claimed = 99, ok = 99;
	assert_esim(ESIM_OK, smdp_outbox_deliver(F.d, snd, &claimed, &ok));
	assert_int_equal(claimed, 0);
	assert_int_equal(pending(F.d), N_CRASH);
	/* once it has run out, another instance sends them */
	F.offset = LEASE_S + 1;
	size_t total = 0;
	for (int i = 0; i < 10 && pending(F.d) > 0; i++) {
		assert_esim(ESIM_OK, smdp_outbox_deliver(F.d, snd, &claimed, &ok));
		total += ok;
	}
	smdp_outbox_sender_free(snd);
	F.offset = 0;
	assert_int_equal(total, N_CRASH);
	assert_int_equal(pending(F.d), 0);

	/* the receiver's records, checked outside its lock */
	pthread_mutex_lock(&rlock);
	size_t n = n_recs;
	struct rec *all = calloc(n ? n : 1, sizeof *all);
	memcpy(all, recs, n * sizeof *all);
	pthread_mutex_unlock(&rlock);
	/* by sender: the killed instance's calls (some may have reached the
	 * operator only after the kill) and the resends after the lease */
	size_t dead = 0, after = 0, resent = 0, dups = 0;
	struct rec *re = calloc(n ? n : 1, sizeof *re);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(all[i].ua, "inst-dead") == 0)
			all[dead++] = all[i];
		else
			re[after++] = all[i];
	}
	assert_int_equal(dead + after, n);
	assert_true(dead >= 1 && dead <= N_CRASH);
	assert_int_equal(after, N_CRASH);
	for (size_t i = 0; i < after; i++)
		assert_string_equal(re[i].ua, "inst-A");
	for (size_t i = 0; i < dead; i++) {
		size_t found = 0;
		for (size_t k = 0; k < after; k++)
			if (strcmp(re[k].id, all[i].id) == 0) {
				/* the very call again: same identifier, same body */
				assert_string_equal(re[k].body, all[i].body);
				found++;
			}
		assert_int_equal(found, 1);
		resent++;
	}
	/* each row once after the crash, and once by the killed instance */
	qsort(re, after, sizeof *re, cmp_rec);
	qsort(all, dead, sizeof *all, cmp_rec);
	for (size_t k = 1; k < after; k++)
		dups += strcmp(re[k].id, re[k - 1].id) == 0;
	for (size_t k = 1; k < dead; k++)
		dups += strcmp(all[k].id, all[k - 1].id) == 0;
	free(re);
	free(all); /* the bodies stay the receiver's */
	fprintf(stderr,
		"crash: %zu calls made by the killed instance, all resent with the same"
		" functionCallIdentifier; %d calls after the lease\n",
		resent, N_CRASH);
	assert_int_equal(dups, 0);
}

static void run(const char *url)
{
	receiver_start();
	sfx_open_smdp(&F, url, 8);
	snprintf(db_url, sizeof db_url, "%s", F.cfg.db_url);
	for (size_t i = 1; i <= 8; i++) {
		char iccid[RSP_ICCID_TEXT_MAX], fields[128];
		sfx_iccid(i, iccid);
		snprintf(fields, sizeof fields, "\"iccid\":\"%s\"", iccid);
		json_decref(sfx_es2_ok(&F, "downloadOrder", fields));
	}
	two_instances_exactly_once();
	crash_resends_same_identifier();
	smdp_close(F.d);
	F.d = NULL;
	memset(&F.cfg, 0, sizeof F.cfg);
	receiver_stop();
}

static void test_outbox_two_instances_sqlite(void **state)
{
	(void)state;
	run(NULL);
}

/* set when PostgreSQL is not installed: the run ends with a skip (77) */
static char pg_missing[300];

static void test_outbox_two_instances_postgres(void **state)
{
	(void)state;
	struct pg_env pg;
	memset(&pg, 0, sizeof pg);
	int rc = pg_start(&pg);
	if (rc == TEST_SKIP_CODE) {
		snprintf(pg_missing, sizeof pg_missing, "%s", pg.why);
		pg_stop(&pg);
		skip();
	}
	assert_int_equal(rc, 0);
	char url[512];
	assert_int_equal(pg_create_db(&pg, url, sizeof url), 0);
	run(url);
	pg_stop(&pg);
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

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--outbox-child") == 0)
		_exit(child_main(argv[2], argv[3]));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outbox_two_instances_sqlite),
	    cmocka_unit_test(test_outbox_two_instances_postgres),
	};
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	if (rc == 0 && pg_missing[0] != '\0')
		return test_component_missing_status("PostgreSQL", pg_missing);
	return rc;
}
