/*
 * The HandleDownloadProgressInfo outbox (digest 5.3.5, es2.c
 * smdp_outbox_run) against a real operator endpoint: a plain-HTTP
 * net_server on loopback that counts the calls it gets and answers with a
 * status the test chooses.
 *
 * What the operator answers decides what happens next: 2xx delivered; no
 * answer, 5xx, 408 and 429 tried again later (back-off); any other 4xx is
 * the operator refusing the call for good (its callback listener answers
 * 403 / 404 / 409 / 422 for those), so the row is marked failed with its
 * status, is no longer pending, is never sent again, and /metrics counts
 * it. (At 529f5d7 every non-2xx was retried, forever, about hourly.)
 */
#include <stdatomic.h>

#include "esim/store.h"
#include "test_smdp_fixture.h"

static struct sfx F;
static atomic_int calls;
static atomic_int reply = 204;

static esim_err cb_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	atomic_fetch_add(&calls, 1);
	return net_response_set(resp, atomic_load(&reply), NULL);
}

static net_server *srv;
static char cb_url[128];

static int setup(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 16);
	sfx_open_euiccs(&F);
	struct net_server_config sc = {.threads = 1};
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
	atomic_store(&calls, 0);
	atomic_store(&reply, 204);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	net_server_stop(srv);
	net_server_free(srv);
	srv = NULL;
	sfx_close(&F);
	return 0;
}

static void exec_sql(const char *sql, const char *text)
{
	store *s;
	assert_esim(ESIM_OK, store_open(F.db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	if (text)
		store_bind_text(st, 1, text);
	assert_esim(ESIM_OK, store_run(st));
	store_finalize(st);
	store_close(s);
}

/* "done:failed:last_status:attempts" of every outbox row, '|'-joined. */
static void outbox_rows(char *out, size_t n)
{
	store *s;
	assert_esim(ESIM_OK, store_open(F.db, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s,
					   "SELECT done, failed, COALESCE(last_status, 0), attempts"
					   " FROM smdp_outbox ORDER BY id",
					   &st));
	size_t k = 0;
	out[0] = '\0';
	bool row;
	while (store_step(st, &row) == ESIM_OK && row) {
		k += (size_t)snprintf(
		    out + k, n - k, "%lld:%lld:%lld:%lld|", (long long)store_col_int64(st, 0),
		    (long long)store_col_int64(st, 1), (long long)store_col_int64(st, 2),
		    (long long)store_col_int64(st, 3));
		assert_true(k < n);
	}
	store_finalize(st);
	store_close(s);
}

/* OP1's callbacks go to our endpoint; one download of ICCID i queues its
 * notification points (how many: returned). */
static size_t download(size_t i)
{
	exec_sql("UPDATE smdp_operators SET callback_url = ?1 WHERE name = 'OP1'", cb_url);
	size_t before, after;
	assert_esim(ESIM_OK, smdp_outbox_pending(F.d, &before));
	char mid[64];
	sfx_order(&F, i, NULL, NULL, NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	assert_esim(ESIM_OK, smdp_outbox_pending(F.d, &after));
	assert_true(after > before);
	return after - before;
}

static size_t run_outbox(void)
{
	/* a CA is required; the endpoint is plain HTTP on loopback */
	char ca[800];
	snprintf(ca, sizeof ca, "%s/nist/ci.pem", F.pki);
	struct net_client_config cc = {
	    .ca_file = ca, .connect_timeout_ms = 2000, .timeout_ms = 4000};
	size_t delivered = 99;
	assert_esim(ESIM_OK, smdp_outbox_run(F.d, &cc, &delivered));
	return delivered;
}

static size_t pending(void)
{
	size_t n;
	assert_esim(ESIM_OK, smdp_outbox_pending(F.d, &n));
	return n;
}

static bool metric_has(const char *line)
{
	char *m = NULL;
	assert_esim(ESIM_OK, smdp_metrics(F.d, &m));
	bool ok = strstr(m, line) != NULL;
	if (!ok)
		fprintf(stderr, "no \"%s\" in:\n%s", line, m);
	free(m);
	return ok;
}

/* 422: one attempt per callback, then never again, however late. */
static void test_refused_for_good_is_not_retried(void **state)
{
	(void)state;
	size_t k = download(1);
	atomic_store(&reply, 422);
	assert_int_equal(run_outbox(), 0);
	assert_int_equal(atomic_load(&calls), (int)k);
	/* a day later, and with an operator that would now accept: nothing */
	atomic_store(&reply, 204);
	F.offset += 86400;
	assert_int_equal(run_outbox(), 0);
	assert_int_equal(atomic_load(&calls), (int)k);
	assert_int_equal(pending(), 0);
	char rows[512], want[512] = "";
	outbox_rows(rows, sizeof rows);
	for (size_t i = 0; i < k; i++)
		strcat(want, "0:1:422:1|"); /* not done, failed, 422, one attempt */
	assert_string_equal(rows, want);
	char line[64];
	snprintf(line, sizeof line, "smdp_outbox_failed_total %zu\n", k);
	assert_true(metric_has(line));
	assert_true(metric_has("smdp_outbox_delivered_total 0\n"));
}

/* 503: retried after the back-off, and delivered once the operator is back. */
static void test_unavailable_is_retried(void **state)
{
	(void)state;
	size_t k = download(1);
	atomic_store(&reply, 503);
	assert_int_equal(run_outbox(), 0);
	assert_int_equal(atomic_load(&calls), (int)k);
	assert_int_equal(pending(), k);
	/* not before its next try */
	assert_int_equal(run_outbox(), 0);
	assert_int_equal(atomic_load(&calls), (int)k);
	F.offset += 5000; /* past the longest back-off */
	assert_int_equal(run_outbox(), 0);
	assert_int_equal(atomic_load(&calls), (int)(2 * k));
	char rows[512], want[512] = "";
	outbox_rows(rows, sizeof rows);
	for (size_t i = 0; i < k; i++)
		strcat(want, "0:0:503:2|");
	assert_string_equal(rows, want);
	atomic_store(&reply, 204);
	F.offset += 5000;
	assert_int_equal(run_outbox(), k);
	assert_int_equal(atomic_load(&calls), (int)(3 * k));
	assert_int_equal(pending(), 0);
	char line[64];
	snprintf(line, sizeof line, "smdp_outbox_retried_total %zu\n", 2 * k);
	assert_true(metric_has(line));
	snprintf(line, sizeof line, "smdp_outbox_delivered_total %zu\n", k);
	assert_true(metric_has(line));
	assert_true(metric_has("smdp_outbox_failed_total 0\n"));
}

/* Status by status: which are final. A callback URL where nothing listens
 * (no answer at all) is retried too. */
static void test_status_table(void **state)
{
	(void)state;
	static const struct {
		int status;
		bool final;
	} table[] = {
	    {400, true},  {401, true},	{403, true},  {404, true},  {409, true},
	    {410, true},  {422, true},	{408, false}, {429, false}, {500, false},
	    {502, false}, {503, false}, {504, false},
	};
	for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
		size_t k = download(i + 1);
		atomic_store(&calls, 0);
		atomic_store(&reply, table[i].status);
		run_outbox();
		assert_int_equal(atomic_load(&calls), (int)k);
		F.offset += 5000;
		run_outbox();
		if (atomic_load(&calls) != (int)(table[i].final ? k : 2 * k))
			fail_msg("HTTP %d: %d calls for %zu callbacks (final: %d)", table[i].status,
				 atomic_load(&calls), k, table[i].final);
		/* settle this round: the retried ones are delivered now */
		atomic_store(&reply, 204);
		F.offset += 5000;
		run_outbox();
		assert_int_equal(pending(), 0);
	}
	/* nothing listens: connection refused, retried */
	exec_sql("UPDATE smdp_operators SET callback_url = ?1 WHERE name = 'OP1'",
		 "http://127.0.0.1:1/gsma/rsp2/es2plus/handleDownloadProgressInfo");
	char mid[64];
	sfx_order(&F, 16, NULL, NULL, NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	size_t k = pending();
	assert_true(k > 0);
	assert_int_equal(run_outbox(), 0);
	F.offset += 5000;
	assert_int_equal(run_outbox(), 0);
	assert_int_equal(pending(), k);
	char rows[1024];
	outbox_rows(rows, sizeof rows);
	/* the last k rows: tried twice, no status */
	size_t tail = 0;
	for (const char *p = rows; (p = strstr(p, "0:0:0:2|")) != NULL; p++)
		tail++;
	assert_int_equal(tail, k);
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
	    cmocka_unit_test_setup_teardown(test_refused_for_good_is_not_retried, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unavailable_is_retried, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_table, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
