/*
 * Which PostgreSQL commits wait for the WAL flush (store.h, "Durability";
 * issue 18): the PostgreSQL store turns synchronous_commit off for the
 * session once, with a connection's first lazy transaction, instead of a
 * SET LOCAL in every lazy transaction. These tests read the setting in
 * force at the moment of COMMIT itself, from a deferred constraint trigger
 * (it runs inside COMMIT, after everything the store sends before it), and
 * check that every durable transaction, every lazy one made durable and
 * every autocommit write still commits with synchronous_commit on, and a
 * lazy one with it off; also after a lazy transaction that was rolled back
 * or failed at COMMIT (its SET undone with it); and a READ COMMITTED
 * transaction of statements run at COMMIT only, which goes without BEGIN
 * and COMMIT, is as lazy or durable as asked and all or nothing.
 * Skipped (77) when PostgreSQL is not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "pg_helper.h"
#include "esim/store.h"

static struct pg_env env;
static char url[256];

/* t's rows record, at COMMIT, the synchronous_commit then in force */
static const char *const schema[] = {
    "CREATE TABLE t (id integer PRIMARY KEY, tag text NOT NULL)",
    "CREATE TABLE seen (tag text NOT NULL, sc text NOT NULL)",
    "CREATE FUNCTION rec() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO seen VALUES (NEW.tag, current_setting('synchronous_commit'));"
    " RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON t DEFERRABLE"
    " INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rec()",
};

static int next_id = 1;

static esim_err insert(store *s, const char *tag, bool at_commit)
{
	store_stmt *st;
	esim_err err = store_prepare(s, "INSERT INTO t (id, tag) VALUES (?1, ?2)", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, next_id++);
	store_bind_text(st, 2, tag);
	err = at_commit ? store_run_at_commit(st) : store_run(st);
	store_finalize(st);
	return err;
}

/* the synchronous_commit that tag's COMMIT ran with ("" if none did) */
static void seen(store *s, const char *tag, char *out, size_t n)
{
	store_stmt *st;
	bool row = false;
	out[0] = '\0';
	assert_esim(ESIM_OK, store_prepare(s, "SELECT sc FROM seen WHERE tag = ?1", &st));
	store_bind_text(st, 1, tag);
	assert_esim(ESIM_OK, store_step(st, &row));
	if (row)
		snprintf(out, n, "%s", store_col_text(st, 0));
	store_finalize(st);
}

static void expect(store *s, const char *tag, const char *sc)
{
	char v[16];
	seen(s, tag, v, sizeof v);
	if (strcmp(v, sc) != 0)
		fail_msg("%s committed with synchronous_commit '%s', want '%s'", tag, v, sc);
}

static store *setup(void)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(url, &s));
	assert_esim(ESIM_OK, store_exec(s, "DROP TABLE IF EXISTS t, seen"));
	assert_esim(ESIM_OK, store_exec(s, "DROP FUNCTION IF EXISTS rec()"));
	for (size_t i = 0; i < sizeof schema / sizeof *schema; i++)
		assert_esim(ESIM_OK, store_exec(s, schema[i]));
	return s;
}

static void lazy(store *s, const char *tag, bool at_commit, bool durable)
{
	assert_esim(ESIM_OK, store_begin_lazy(s));
	assert_esim(ESIM_OK, insert(s, tag, at_commit));
	if (durable)
		store_make_durable(s);
	assert_esim(ESIM_OK, store_commit(s));
}

static void durable(store *s, const char *tag, bool at_commit)
{
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, insert(s, tag, at_commit));
	assert_esim(ESIM_OK, store_commit(s));
}

/* Lazy transactions one after the other on one connection, then every kind
 * of durable commit after them, each with a plain statement and with one
 * run at COMMIT (the other path to the COMMIT). */
static void test_each_commit_as_asked(void **state)
{
	(void)state;
	store *s = setup();
	lazy(s, "lazy1", false, false);
	lazy(s, "lazy2", true, false);
	lazy(s, "lazy3", false, false);
	durable(s, "durable1", false);
	durable(s, "durable2", true);
	lazy(s, "lazy4", true, false);
	lazy(s, "upgraded1", false, true);
	lazy(s, "upgraded2", true, true);
	lazy(s, "lazy5", false, false);
	assert_esim(ESIM_OK, insert(s, "autocommit1", false)); /* no transaction */
	assert_esim(ESIM_OK, store_exec(s, "INSERT INTO t VALUES (1000, 'exec1')"));
	lazy(s, "lazy6", false, false);
	assert_esim(ESIM_OK, store_exec(s, "INSERT INTO t VALUES (1001, 'exec2')"));
	for (const char *const *t =
		 (const char *const[]){"lazy1", "lazy2", "lazy3", "lazy4", "lazy5", "lazy6", NULL};
	     *t != NULL; t++)
		expect(s, *t, "off");
	for (const char *const *t =
		 (const char *const[]){"durable1", "durable2", "upgraded1", "upgraded2",
				       "autocommit1", "exec1", "exec2", NULL};
	     *t != NULL; t++)
		expect(s, *t, "on");
	store_close(s);
}

/* A connection's first lazy transaction rolled back, or failed at COMMIT:
 * its SET went with it, and what follows still commits as asked. */
static void test_after_rollback(void **state)
{
	(void)state;
	store *s = setup();
	assert_esim(ESIM_OK, store_begin_lazy(s));
	assert_esim(ESIM_OK, insert(s, "rolled-back", false));
	assert_esim(ESIM_OK, store_rollback(s));
	durable(s, "durable3", false);
	assert_esim(ESIM_OK, insert(s, "autocommit2", false));
	lazy(s, "lazy7", false, false);
	/* a statement failing in a transaction on a session with it off: the
	 * rollback ends the transaction, and the connection works on */
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_OK, store_exec(s, "SELECT 1"));
	store_stmt *bad;
	assert_esim(ESIM_OK,
		    store_prepare(s, "INSERT INTO t (id, tag) VALUES (999999, NULL)", &bad));
	assert_true(store_run(bad) != ESIM_OK);
	store_finalize(bad);
	assert_esim(ESIM_OK, store_rollback(s));
	durable(s, "durable5", false);
	assert_esim(ESIM_OK, insert(s, "autocommit4", false));
	expect(s, "durable5", "on");
	expect(s, "autocommit4", "on");
	expect(s, "rolled-back", "");
	expect(s, "durable3", "on");
	expect(s, "autocommit2", "on");
	expect(s, "lazy7", "off");
	store_close(s);

	s = setup();
	/* a duplicate key run at COMMIT: the COMMIT is skipped, rolled back */
	assert_esim(ESIM_OK, store_exec(s, "INSERT INTO t VALUES (5000, 'first')"));
	assert_esim(ESIM_OK, store_begin_lazy(s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "INSERT INTO t (id, tag) VALUES (5000, ?1)", &st));
	store_bind_text(st, 1, "dup");
	assert_esim(ESIM_OK, store_run_at_commit(st));
	store_finalize(st);
	assert_true(store_commit(s) != ESIM_OK);
	durable(s, "durable4", true);
	assert_esim(ESIM_OK, insert(s, "autocommit3", false));
	expect(s, "first", "on");
	expect(s, "dup", "");
	expect(s, "durable4", "on");
	expect(s, "autocommit3", "on");
	store_close(s);
}

struct rc_tx {
	const char *tags[2];
	int64_t ids[2];
};

static esim_err rc_body(store *s, void *arg)
{
	const struct rc_tx *a = arg;
	for (int i = 0; i < 2 && a->tags[i]; i++) {
		store_stmt *st;
		esim_err err = store_prepare(s, "INSERT INTO t (id, tag) VALUES (?1, ?2)", &st);
		if (err != ESIM_OK)
			return err;
		store_bind_int64(st, 1, a->ids[i] ? a->ids[i] : next_id++);
		store_bind_text(st, 2, a->tags[i]);
		err = store_run_at_commit(st);
		store_finalize(st);
		if (err != ESIM_OK)
			return err;
	}
	return ESIM_OK;
}

/* READ COMMITTED transactions of statements run at COMMIT only (the
 * SM-DP+'s session INSERT) go without BEGIN and COMMIT, as the pipeline's
 * implicit transaction: still lazy or durable as asked, and all or
 * nothing (the second statement failing undoes the first). */
static void test_read_committed_at_commit_only(void **state)
{
	(void)state;
	store *s = setup();
	unsigned lazy_rc = STORE_TX_LAZY | STORE_TX_READ_COMMITTED;
	struct rc_tx a = {{"durable-rc1", NULL}, {0, 0}};
	assert_esim(ESIM_OK, store_transaction_opts(s, STORE_TX_READ_COMMITTED, rc_body, &a, 1));
	a = (struct rc_tx){{"lazy-rc1", "lazy-rc2"}, {0, 0}};
	assert_esim(ESIM_OK, store_transaction_opts(s, lazy_rc, rc_body, &a, 1));
	a = (struct rc_tx){{"lazy-rc3", NULL}, {0, 0}};
	assert_esim(ESIM_OK, store_transaction_opts(s, lazy_rc, rc_body, &a, 1));
	a = (struct rc_tx){{"durable-rc2", NULL}, {0, 0}};
	assert_esim(ESIM_OK, store_transaction_opts(s, STORE_TX_READ_COMMITTED, rc_body, &a, 1));
	/* all or nothing: the duplicate key of the second undoes the first */
	a = (struct rc_tx){{"kept", NULL}, {7000, 0}};
	assert_esim(ESIM_OK, store_transaction_opts(s, lazy_rc, rc_body, &a, 1));
	a = (struct rc_tx){{"undone", "dup"}, {7001, 7000}};
	assert_true(store_transaction_opts(s, lazy_rc, rc_body, &a, 1) != ESIM_OK);
	a = (struct rc_tx){{"after", NULL}, {0, 0}};
	assert_esim(ESIM_OK, store_transaction_opts(s, lazy_rc, rc_body, &a, 1));
	expect(s, "durable-rc1", "on");
	expect(s, "lazy-rc1", "off");
	expect(s, "lazy-rc2", "off");
	expect(s, "lazy-rc3", "off");
	expect(s, "durable-rc2", "on");
	expect(s, "kept", "off");
	expect(s, "undone", "");
	expect(s, "dup", "");
	expect(s, "after", "off");
	store_stmt *st;
	bool row = true;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT id FROM t WHERE id = 7001", &st));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_false(row);
	store_finalize(st);
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
	    cmocka_unit_test(test_each_commit_as_asked),
	    cmocka_unit_test(test_after_rollback),
	    cmocka_unit_test(test_read_committed_at_commit_only),
	};
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pg_stop(&env);
	return rc;
}
