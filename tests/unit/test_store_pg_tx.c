/*
 * The store layer's PostgreSQL transactions and statements as the SM-DP+'s
 * download path uses them (issue 18, docs/store.md): store_transaction_opts
 * with STORE_TX_READ_COMMITTED really runs at READ COMMITTED, and a body
 * that locks the row it reads (FOR UPDATE) is never aborted by a concurrent
 * one, so it needs no retry; prepared statements are kept per connection
 * and reused, across a rolled-back transaction too; a statement run with
 * store_run_at_commit goes with the COMMIT, and its failure (a constraint,
 * a serialization failure) comes back from store_commit with the whole
 * transaction rolled back (BUSY retried by store_transaction). Skipped (77) when
 * PostgreSQL is not installed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "pg_helper.h"
#include "esim/store.h"

static struct pg_env env;
static char url[256];

static store *open_url(void)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(url, &s));
	return s;
}

static int64_t query_int(store *s, const char *sql)
{
	store_stmt *st;
	bool row = false;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	int64_t v = store_col_int64(st, 0);
	store_finalize(st);
	return v;
}

struct iso {
	char level[32];
};

static esim_err read_isolation(store *s, void *arg)
{
	struct iso *a = arg;
	store_stmt *st;
	bool row = false;
	esim_err err = store_prepare(s, "SELECT current_setting('transaction_isolation')", &st);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	if (err == ESIM_OK && row)
		snprintf(a->level, sizeof a->level, "%s", store_col_text(st, 0));
	store_finalize(st);
	return err;
}

static void test_isolation_levels(void **state)
{
	(void)state;
	store *s = open_url();
	struct iso a = {{0}};
	assert_esim(ESIM_OK,
		    store_transaction_opts(s, STORE_TX_READ_COMMITTED, read_isolation, &a, 1));
	assert_string_equal(a.level, "read committed");
	assert_esim(ESIM_OK, store_transaction_opts(s, STORE_TX_READ_COMMITTED | STORE_TX_LAZY,
						    read_isolation, &a, 1));
	assert_string_equal(a.level, "read committed");
	/* the default stays SERIALIZABLE */
	assert_esim(ESIM_OK, store_transaction(s, read_isolation, &a, 1));
	assert_string_equal(a.level, "serializable");
	assert_esim(ESIM_OK, store_transaction_lazy(s, read_isolation, &a, 1));
	assert_string_equal(a.level, "serializable");
	/* and the level is per transaction, not left behind */
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, read_isolation(s, &a));
	assert_esim(ESIM_OK, store_commit(s));
	assert_string_equal(a.level, "serializable");
	assert_esim(ESIM_E_ARG, store_transaction_opts(s, 0x80u, read_isolation, &a, 1));
	store_close(s);
}

#define THREADS 8
#define ROUNDS	25

struct worker {
	unsigned opts;
	esim_err err;
};

/* read the counter with its row locked, then write it back + 1 */
static esim_err bump(store *s, void *arg)
{
	(void)arg;
	store_stmt *st;
	bool row = false;
	esim_err err = store_prepare(s, "SELECT v FROM c WHERE id = 1 {{FOR_UPDATE}}", &st);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	int64_t v = row ? store_col_int64(st, 0) : -1;
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if ((err = store_prepare(s, "UPDATE c SET v = ?1 WHERE id = 1", &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, v + 1);
	err = store_run(st);
	store_finalize(st);
	return err;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	store *s = NULL;
	w->err = store_open(url, &s);
	/* one try each: a transaction that PostgreSQL aborted is an error here */
	for (int i = 0; w->err == ESIM_OK && i < ROUNDS; i++)
		w->err = store_transaction_opts(s, w->opts, bump, NULL, 1);
	store_close(s);
	return NULL;
}

static void run_counter(unsigned opts, int *failed, int64_t *total)
{
	store *s = open_url();
	assert_esim(ESIM_OK, store_exec(s, "DROP TABLE IF EXISTS c;"
					   "CREATE TABLE c (id {{INT}} PRIMARY KEY, v {{INT}});"
					   "INSERT INTO c VALUES (1, 0);"));
	struct worker w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){opts, ESIM_OK};
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	*failed = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].err != ESIM_OK) {
			assert_esim(ESIM_E_STORE_BUSY, w[i].err);
			(*failed)++;
		}
	}
	*total = query_int(s, "SELECT v FROM c WHERE id = 1");
	store_close(s);
}

/* Under READ COMMITTED the row lock orders the bumps: none is lost and none
 * is aborted. Under SERIALIZABLE the same body is aborted when the row it
 * read changed meanwhile (that is what store_transaction's retry is for). */
static void test_row_lock_needs_no_retry(void **state)
{
	(void)state;
	int failed = 0;
	int64_t total = 0;
	run_counter(STORE_TX_READ_COMMITTED | STORE_TX_LAZY, &failed, &total);
	assert_int_equal(failed, 0);
	assert_int_equal(total, THREADS * ROUNDS);
	run_counter(0, &failed, &total);
	/* SERIALIZABLE: every commit that happened counted once */
	assert_true(total <= THREADS * ROUNDS);
	print_message("serializable, one try each: %d of %d threads stopped by a "
		      "serialization failure; read committed: none\n",
		      failed, THREADS);
}

/* A statement is prepared once per connection and reused: the server keeps
 * one prepared statement for the text, also after a rollback. */
static void test_statements_reused(void **state)
{
	(void)state;
	store *s = open_url();
	assert_esim(ESIM_OK, store_exec(s, "CREATE TABLE r (id {{INT}} PRIMARY KEY)"));
	const char *sql = "INSERT INTO r (id) VALUES (?1) /* reuse-marker */";
	for (int i = 0; i < 10; i++) {
		bool tx = i % 3 == 1;
		if (tx)
			assert_esim(ESIM_OK, store_begin(s));
		store_stmt *st;
		assert_esim(ESIM_OK, store_prepare(s, sql, &st));
		assert_esim(ESIM_OK, store_bind_int64(st, 1, i));
		assert_esim(ESIM_OK, store_run(st));
		store_finalize(st);
		if (tx)
			assert_esim(ESIM_OK, store_rollback(s)); /* rows 1, 4, 7 undone */
	}
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM r"), 7);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM pg_prepared_statements"
				      " WHERE statement LIKE '%reuse' || '-marker%'"),
			 1);
	/* a statement still in use is not shared: the second one is its own */
	store_stmt *a, *b;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT id FROM r ORDER BY id", &a));
	assert_esim(ESIM_OK, store_prepare(s, "SELECT id FROM r ORDER BY id", &b));
	assert_ptr_not_equal(a, b);
	bool row = false;
	assert_esim(ESIM_OK, store_step(a, &row));
	assert_true(row);
	assert_int_equal(store_col_int64(a, 0), 0);
	assert_esim(ESIM_OK, store_step(b, &row));
	assert_esim(ESIM_OK, store_step(b, &row));
	assert_int_equal(store_col_int64(b, 0), 2);
	assert_int_equal(store_col_int64(a, 0), 0);
	store_finalize(a);
	store_finalize(b);
	store_close(s);
}

static esim_err insert_row(store *s, const char *sql, int64_t id, int64_t k, bool at_commit)
{
	store_stmt *st;
	esim_err err = store_prepare(s, sql, &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, id);
	store_bind_int64(st, 2, k);
	err = at_commit ? store_run_at_commit(st) : store_run(st);
	store_finalize(st);
	return err;
}

#define INS "INSERT INTO d (id, k) VALUES (?1, ?2)"

/* store_run_at_commit: the statement goes with the COMMIT. When it fails,
 * store_commit reports its error (not a generic one), the whole transaction
 * is rolled back (the statement before it too) and the connection is left
 * with no transaction open. A statement run after it sends it first, and a
 * rollback drops it unsent. */
static void test_run_at_commit(void **state)
{
	(void)state;
	store *s = open_url();
	assert_esim(ESIM_OK, store_exec(s, "CREATE TABLE d (id {{INT}} PRIMARY KEY, k {{INT}})"));
	assert_esim(ESIM_OK, insert_row(s, INS, 1, 0, false));
	/* a transaction of one deferred statement: BEGIN, INSERT, COMMIT */
	assert_esim(ESIM_OK, store_begin_lazy(s));
	assert_esim(ESIM_OK, insert_row(s, INS, 2, 0, true));
	assert_int_equal(store_changes(s), -1);
	store_make_durable(s);
	assert_esim(ESIM_OK, store_commit(s));
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d"), 2);
	/* the last statement fails: its error, and nothing of the transaction */
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, insert_row(s, INS, 3, 0, false));
	assert_esim(ESIM_OK, insert_row(s, INS, 1, 0, true)); /* duplicate key: not sent yet */
	assert_esim(ESIM_E_STORE_CONSTRAINT, store_commit(s));
	assert_non_null(strstr(store_errmsg(s), "duplicate key"));
	assert_esim(ESIM_E_STORE_STATE, store_rollback(s)); /* already over */
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d"), 2);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d WHERE id = 3"), 0);
	/* the same, lazy and made durable (SET LOCAL ... on in the pipeline) */
	assert_esim(ESIM_OK, store_begin_lazy(s));
	assert_esim(ESIM_OK, insert_row(s, INS, 4, 0, true));
	assert_esim(ESIM_OK, insert_row(s, INS, 2, 0, true));
	store_make_durable(s);
	assert_esim(ESIM_E_STORE_CONSTRAINT, store_commit(s));
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d WHERE id = 4"), 0);
	/* a later statement sees it, in the same transaction */
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, insert_row(s, INS, 5, 0, true));
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d WHERE id = 5"), 1);
	assert_esim(ESIM_OK, store_rollback(s));
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d WHERE id = 5"), 0);
	/* a rollback drops one never sent */
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, insert_row(s, INS, 6, 0, true));
	assert_esim(ESIM_OK, store_rollback(s));
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d"), 2);
	/* outside a transaction it is store_run */
	assert_esim(ESIM_OK, insert_row(s, INS, 7, 0, true));
	assert_int_equal(store_changes(s), 1);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM d"), 3);
	store_close(s);
}

/* Write skew under SERIALIZABLE: the body reads the rows of k = 2 and
 * inserts one of k = 1 with store_run_at_commit; on its first try another
 * connection, between the two, reads k = 1 and inserts k = 2 and commits.
 * The body's pipelined INSERT + COMMIT then fails to serialize: that is
 * ESIM_E_STORE_BUSY from store_commit, so store_transaction runs the body
 * again, which commits. */
struct skew {
	store *other;
	int tries;
};

static esim_err skew_body(store *s, void *arg)
{
	struct skew *a = arg;
	a->tries++;
	store_stmt *st;
	bool row = false;
	esim_err err = store_prepare(s, "SELECT COUNT(*) FROM w WHERE k = 2", &st);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (a->tries == 1) {
		store *o = a->other;
		assert_esim(ESIM_OK, store_begin(o));
		assert_int_equal(query_int(o, "SELECT COUNT(*) FROM w WHERE k = 1"), 0);
		assert_esim(ESIM_OK,
			    insert_row(o, "INSERT INTO w (id, k) VALUES (?1, ?2)", 100, 2, false));
		assert_esim(ESIM_OK, store_commit(o));
	}
	return insert_row(s, "INSERT INTO w (id, k) VALUES (?1, ?2)", 200 + a->tries, 1, true);
}

static void test_run_at_commit_serialization_failure(void **state)
{
	(void)state;
	store *s = open_url();
	struct skew a = {open_url(), 0};
	assert_esim(ESIM_OK, store_exec(s, "CREATE TABLE w (id {{INT}} PRIMARY KEY, k {{INT}})"));
	assert_esim(ESIM_OK, store_transaction(s, skew_body, &a, 5));
	assert_int_equal(a.tries, 2);
	/* the first try's row is not there, the second's is */
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM w WHERE id = 201"), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM w WHERE id = 202"), 1);
	/* and the failure is BUSY at store_commit itself */
	assert_esim(ESIM_OK, store_exec(s, "DELETE FROM w"));
	a.tries = 0;
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, skew_body(s, &a));
	assert_esim(ESIM_E_STORE_BUSY, store_commit(s));
	assert_non_null(strstr(store_errmsg(s), "serialize"));
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM w WHERE k = 1"), 0);
	store_close(a.other);
	store_close(s);
}

int main(void)
{
	int rc = pg_start(&env);
	if (rc == TEST_SKIP_CODE)
		test_component_missing("PostgreSQL", env.why);
	if (rc != 0 || pg_create_db(&env, url, sizeof url) != 0) {
		pg_stop(&env);
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_isolation_levels),
	    cmocka_unit_test(test_row_lock_needs_no_retry),
	    cmocka_unit_test(test_statements_reused),
	    cmocka_unit_test(test_run_at_commit),
	    cmocka_unit_test(test_run_at_commit_serialization_failure),
	};
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pg_stop(&env);
	return rc;
}
