/*
 * The store layer's behaviour, written once and run on both backends:
 * test_store.c runs these cases on SQLite files, test_store_pg.c on a
 * throwaway PostgreSQL server. The same assertions hold on both; where the
 * backends legitimately differ (last_insert_id) the case says so.
 *
 * Each case gets a struct store_fx through cmocka's state and asks it for a
 * fresh, empty database with fx_new_db().
 */
#ifndef ESIM_TEST_STORE_CASES_H
#define ESIM_TEST_STORE_CASES_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "pg_helper.h"
#include "esim/store.h"

struct store_fx {
	bool pg;
	struct pg_env *env; /* PostgreSQL */
	char *dir;	    /* SQLite: temp dir of the database files */
	unsigned n;
	char url[256]; /* the current case's database */
};

static void fx_new_db(struct store_fx *fx)
{
	if (fx->pg) {
		if (pg_create_db(fx->env, fx->url, sizeof fx->url) != 0)
			fail_msg("cannot create a PostgreSQL database");
	} else {
		test_path(fx->url, sizeof fx->url, "sqlite:%s/t%u.db", fx->dir, fx->n++);
	}
}

static const char *const schema[] = {
    "CREATE TABLE item (id {{ID}}, name TEXT UNIQUE NOT NULL, data {{BLOB}});",
    "ALTER TABLE item ADD COLUMN n {{INT}} NOT NULL DEFAULT 0;",
};

static store *open_url(const char *url)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(url, &s));
	assert_non_null(s);
	return s;
}

static store *open_db(const char *url)
{
	store *s = open_url(url);
	assert_esim(ESIM_OK, store_migrate(s, schema, 2));
	return s;
}

static void insert(store *s, const char *name, int64_t n, esim_err expect)
{
	store_stmt *st;
	assert_esim(ESIM_OK,
		    store_prepare(s, "INSERT INTO item(name, data, n) VALUES (?1, ?2, ?3)", &st));
	assert_esim(ESIM_OK, store_bind_text(st, 1, name));
	assert_esim(ESIM_OK, store_bind_blob(st, 2, "\x00\x01\x02", 3));
	assert_esim(ESIM_OK, store_bind_int64(st, 3, n));
	assert_esim(expect, store_run(st));
	store_finalize(st);
}

static int64_t query_int(store *s, const char *sql)
{
	store_stmt *st;
	bool row;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	int64_t n = store_col_int64(st, 0);
	store_finalize(st);
	return n;
}

static int64_t count(store *s)
{
	return query_int(s, "SELECT count(*) FROM item");
}

static void case_roundtrip_and_persistence(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	assert_string_equal(store_backend_name(s), fx->pg ? "postgresql" : "sqlite");
	assert_int_equal(store_sql_dialect(s),
			 fx->pg ? STORE_DIALECT_POSTGRES : STORE_DIALECT_SQLITE);
	insert(s, "alpha", -5, ESIM_OK);
	insert(s, "alpha", 1, ESIM_E_STORE_CONSTRAINT);
	assert_true(strlen(store_errmsg(s)) > 0);
	store_close(s);

	s = open_db(fx->url); /* migrations are not re-run */
	store_stmt *st;
	bool row;
	assert_esim(ESIM_OK,
		    store_prepare(s, "SELECT name, data, n FROM item WHERE name = ?1", &st));
	assert_esim(ESIM_OK, store_bind_text(st, 1, "alpha"));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_string_equal(store_col_text(st, 0), "alpha");
	size_t len;
	const uint8_t *blob = store_col_blob(st, 1, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(blob, "\x00\x01\x02", 3);
	assert_int_equal(store_col_int64(st, 2), -5);
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_false(row);
	/* a finished statement runs again when stepped */
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_string_equal(store_col_text(st, 0), "alpha");
	/* binding needs a reset first, which also clears the bindings */
	assert_esim(ESIM_E_STORE_STATE, store_bind_text(st, 1, "beta"));
	assert_esim(ESIM_OK, store_reset(st));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_false(row); /* name = NULL matches nothing */
	assert_esim(ESIM_OK, store_reset(st));
	assert_esim(ESIM_E_STORE_STATE, store_bind_text(st, 2, "x")); /* no ?2 */
	store_finalize(st);
	store_close(s);
}

static void case_rollback_leaves_nothing(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_E_STORE_STATE, store_begin(s));
	insert(s, "a", 1, ESIM_OK);
	insert(s, "b", 2, ESIM_OK);
	assert_int_equal(count(s), 2);
	assert_esim(ESIM_OK, store_rollback(s));
	assert_int_equal(count(s), 0);
	assert_esim(ESIM_E_STORE_STATE, store_commit(s));
	assert_esim(ESIM_E_STORE_STATE, store_rollback(s));

	/* a constraint violation inside a transaction, then rollback */
	assert_esim(ESIM_OK, store_begin(s));
	insert(s, "c", 1, ESIM_OK);
	insert(s, "c", 1, ESIM_E_STORE_CONSTRAINT);
	assert_esim(ESIM_OK, store_rollback(s));
	assert_int_equal(count(s), 0);

	/* and a committed one stays */
	assert_esim(ESIM_OK, store_begin(s));
	insert(s, "d", 4, ESIM_OK);
	assert_esim(ESIM_OK, store_commit(s));
	assert_int_equal(count(s), 1);
	store_close(s);
}

/* Lazy transactions (store.h, "Durability"): the same atomicity and
 * visibility as durable ones; only the flush differs (test_store.c counts
 * the flushes on SQLite). */
static void case_lazy_transactions(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url), *other = open_url(fx->url);
	assert_esim(ESIM_OK, store_begin_lazy(s));
	assert_esim(ESIM_E_STORE_STATE, store_begin(s));
	insert(s, "lazy", 1, ESIM_OK);
	assert_int_equal(count(other), 0); /* not visible before COMMIT */
	assert_esim(ESIM_OK, store_commit(s));
	assert_int_equal(count(other), 1);

	assert_esim(ESIM_OK, store_begin_lazy(s));
	insert(s, "gone", 2, ESIM_OK);
	store_make_durable(s);
	assert_esim(ESIM_OK, store_rollback(s));
	assert_int_equal(count(other), 1);

	/* upgraded to durable, then a durable one, then lazy again: the
	 * backend switches its setting back and forth */
	assert_esim(ESIM_OK, store_begin_lazy(s));
	insert(s, "upgraded", 3, ESIM_OK);
	store_make_durable(s);
	assert_esim(ESIM_OK, store_commit(s));
	assert_esim(ESIM_OK, store_begin(s));
	insert(s, "durable", 4, ESIM_OK);
	assert_esim(ESIM_OK, store_commit(s));
	assert_esim(ESIM_OK, store_begin_lazy(s));
	insert(s, "lazy2", 5, ESIM_OK);
	assert_esim(ESIM_OK, store_commit(s));
	assert_int_equal(count(other), 4);
	store_make_durable(s); /* outside a transaction: nothing to do */
	assert_esim(ESIM_E_STORE_STATE, store_commit(s));
	store_close(s);
	store_close(other);

	/* everything committed survives the process's connections */
	s = open_db(fx->url);
	assert_int_equal(count(s), 4);
	assert_int_equal(query_int(s, "SELECT count(*) FROM item WHERE name = 'gone'"), 0);
	store_close(s);
}

static void case_newer_schema_refused(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	assert_esim(ESIM_E_STORE_MIGRATION, store_migrate(s, schema, 1));
	assert_esim(ESIM_OK, store_migrate(s, schema, 2));
	store_close(s);
}

static void case_failed_migration_rolls_back(void **state)
{
	struct store_fx *fx = *state;
	static const char *const bad[] = {
	    "CREATE TABLE t (x {{INT}});",
	    "CREATE TABLE u (y {{INT}}); CREATE TABLE t (x {{INT}});",
	};
	static const char *const fixed[] = {
	    "CREATE TABLE t (x {{INT}});",
	    "CREATE TABLE u (y {{INT}});",
	};
	fx_new_db(fx);
	store *s = open_url(fx->url);
	assert_esim(ESIM_E_STORE_MIGRATION, store_migrate(s, bad, 2));
	/* version 1 stays applied; u from the failed step is gone */
	assert_esim(ESIM_E_STORE_SQL, store_exec(s, "SELECT * FROM u"));
	assert_esim(ESIM_OK, store_exec(s, "SELECT * FROM t"));
	/* a corrected step 2 applies on top of version 1 */
	assert_esim(ESIM_OK, store_migrate(s, fixed, 2));
	assert_esim(ESIM_OK, store_exec(s, "SELECT * FROM u"));
	store_close(s);
}

static void case_blobs(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	uint8_t big[3000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 8)); /* zeros and every byte value */
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "INSERT INTO item(name, data) VALUES (?1, ?2)", &st));
	const char *names[] = {"big", "empty", "null"};
	for (int i = 0; i < 3; i++) {
		assert_esim(ESIM_OK, store_reset(st));
		assert_esim(ESIM_OK, store_bind_text(st, 1, names[i]));
		if (i == 0)
			assert_esim(ESIM_OK, store_bind_blob(st, 2, big, sizeof big));
		else if (i == 1)
			assert_esim(ESIM_OK, store_bind_blob(st, 2, NULL, 0));
		else
			assert_esim(ESIM_OK, store_bind_null(st, 2));
		assert_esim(ESIM_OK, store_run(st));
	}
	store_finalize(st);

	assert_esim(ESIM_OK, store_prepare(s, "SELECT data, name FROM item ORDER BY id", &st));
	bool row;
	size_t len = 99;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	const uint8_t *p = store_col_blob(st, 0, &len);
	assert_int_equal(len, sizeof big);
	assert_memory_equal(p, big, sizeof big);
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_false(store_col_is_null(st, 0));
	p = store_col_blob(st, 0, &len);
	assert_non_null(p); /* empty, not NULL */
	assert_int_equal(len, 0);
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_true(store_col_is_null(st, 0));
	len = 99;
	assert_null(store_col_blob(st, 0, &len));
	assert_int_equal(len, 0);
	assert_null(store_col_text(st, 0));
	assert_int_equal(store_col_int64(st, 0), 0);
	/* out-of-range column reads as NULL */
	assert_true(store_col_is_null(st, 7));
	assert_null(store_col_blob(st, 7, &len));
	store_finalize(st);

	/* next to a column the PostgreSQL backend reads only as text (numeric),
	 * blobs come as text too and are decoded from hex */
	assert_esim(ESIM_OK, store_prepare(s, "SELECT data, n + 0.5 FROM item ORDER BY id", &st));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	p = store_col_blob(st, 0, &len);
	assert_int_equal(len, sizeof big);
	assert_memory_equal(p, big, sizeof big);
	assert_int_equal(store_col_int64(st, 1), 0);
	assert_esim(ESIM_OK, store_step(st, &row));
	p = store_col_blob(st, 0, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	store_finalize(st);

	/* a blob as a key, and a blob parameter whose type only the binding
	 * tells (SELECT ?1) */
	assert_esim(ESIM_OK, store_prepare(s, "SELECT name FROM item WHERE data = ?1", &st));
	assert_esim(ESIM_OK, store_bind_blob(st, 1, big, sizeof big));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_string_equal(store_col_text(st, 0), "big");
	store_finalize(st);
	assert_esim(ESIM_OK, store_prepare(s, "SELECT ?1, ?2", &st));
	assert_esim(ESIM_OK, store_bind_blob(st, 1, "\x00z\x00", 3));
	assert_esim(ESIM_OK, store_bind_int64(st, 2, 42));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	p = store_col_blob(st, 0, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "\x00z\x00", 3);
	assert_int_equal(store_col_int64(st, 1), 42);
	store_finalize(st);
	store_close(s);
}

static void case_int64_extremes(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	const int64_t v[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT32_MAX + 1LL, INT64_MAX};
	char name[16];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		snprintf(name, sizeof name, "v%zu", i);
		insert(s, name, v[i], ESIM_OK);
	}
	store_stmt *st;
	bool row;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT n, ?1 FROM item ORDER BY n", &st));
	assert_esim(ESIM_OK, store_bind_int64(st, 1, INT64_MIN));
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		assert_esim(ESIM_OK, store_step(st, &row));
		assert_true(row);
		assert_true(store_col_int64(st, 0) == v[i]);
		assert_true(store_col_int64(st, 1) == INT64_MIN);
	}
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_false(row);
	store_finalize(st);
	/* a parameter compared with a 64-bit column */
	assert_esim(ESIM_OK, store_prepare(s, "SELECT name FROM item WHERE n = ?1", &st));
	assert_esim(ESIM_OK, store_bind_int64(st, 1, INT64_MAX));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_string_equal(store_col_text(st, 0), "v6");
	store_finalize(st);
	store_close(s);
}

static void case_utf8_text(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	const char *text = "Gr\xc3\xbc\xc3\x9f"
			   "e \xf0\x9f\x99\x82 \xe6\x97\xa5"; /* Grüße 🙂 日 */
	insert(s, text, 1, ESIM_OK);
	store_stmt *st;
	bool row;
	assert_esim(ESIM_OK,
		    store_prepare(s, "SELECT name, length(name) FROM item WHERE name = ?1", &st));
	assert_esim(ESIM_OK, store_bind_text(st, 1, text));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_string_equal(store_col_text(st, 0), text);
	assert_int_equal(store_col_int64(st, 1), 9); /* characters, not bytes */
	store_finalize(st);
	store_close(s);
}

static void case_sql_text_is_shared(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	store_stmt *st = NULL;
	bool row;
	/* ?N and {{...}} inside literals, quoted names and comments are text */
	assert_esim(ESIM_OK, store_prepare(s,
					   "SELECT 'it''s ?1 {{BLOB}}' AS \"a?2\", ?1 -- ?3 {{X}}\n"
					   "/* ?4 */",
					   &st));
	assert_esim(ESIM_OK, store_bind_text(st, 1, "p"));
	assert_esim(ESIM_E_STORE_STATE, store_bind_text(st, 2, "q"));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_string_equal(store_col_text(st, 0), "it's ?1 {{BLOB}}");
	assert_string_equal(store_col_text(st, 1), "p");
	store_finalize(st);
	st = NULL;
	assert_esim(ESIM_E_STORE_SQL, store_prepare(s, "SELECT {{NOPE}}", &st));
	assert_null(st);
	assert_esim(ESIM_E_STORE_SQL, store_prepare(s, "SELECT 'open", &st));
	assert_esim(ESIM_E_STORE_SQL, store_prepare(s, "SELEC 1", &st));
	assert_esim(ESIM_E_STORE_SQL, store_exec(s, "SELECT * FROM nowhere"));

	/* RETURNING id works on both; last_insert_id only on SQLite */
	int64_t id1 = 0, id2 = 0;
	assert_esim(ESIM_OK,
		    store_prepare(s, "INSERT INTO item(name) VALUES (?1) RETURNING id", &st));
	assert_esim(ESIM_OK, store_bind_text(st, 1, "one"));
	assert_esim(ESIM_OK, store_run_id(st, &id1));
	assert_int_equal(store_last_insert_id(s), fx->pg ? -1 : id1);
	assert_esim(ESIM_OK, store_reset(st));
	assert_esim(ESIM_OK, store_bind_text(st, 1, "two"));
	assert_esim(ESIM_OK, store_run_id(st, &id2));
	assert_true(id1 > 0 && id2 > id1);
	store_finalize(st);
	/* a statement that returns nothing */
	assert_esim(ESIM_OK, store_prepare(
				 s, "UPDATE item SET n = 1 WHERE name = 'none' RETURNING id", &st));
	assert_esim(ESIM_E_NOT_FOUND, store_run_id(st, &id1));
	store_finalize(st);
	/* changes counts the rows of the last write */
	assert_esim(ESIM_OK, store_exec(s, "UPDATE item SET n = n + 1"));
	assert_int_equal(store_changes(s), 2);
	assert_int_equal(query_int(s, "SELECT sum(n) FROM item"), 2);
	store_close(s);
}

/* --- concurrency: each thread has its own connection ----------------------- */

struct counter_arg {
	const char *url;
	int times;
	esim_err err;
	unsigned retries;
};

static esim_err counter_tx(store *s, void *arg)
{
	/* read, then write what was read: lost updates show up unless the
	 * transactions really are serializable */
	struct counter_arg *a = arg;
	store_stmt *st = NULL;
	bool row = false;
	a->retries++;
	esim_err err = store_prepare(s, "SELECT v FROM counter WHERE id = 1", &st);
	if (err == ESIM_OK)
		err = store_step(st, &row);
	int64_t v = row ? store_col_int64(st, 0) : -1;
	store_finalize(st);
	st = NULL;
	if (err != ESIM_OK)
		return err;
	if (!row)
		return ESIM_E_NOT_FOUND;
	err = store_prepare(s, "UPDATE counter SET v = ?1 WHERE id = 1", &st);
	if (err == ESIM_OK)
		err = store_bind_int64(st, 1, v + 1);
	if (err == ESIM_OK)
		err = store_run(st);
	store_finalize(st);
	return err;
}

static void *counter_thread(void *p)
{
	struct counter_arg *a = p;
	store *s = NULL;
	a->err = store_open(a->url, &s);
	for (int i = 0; i < a->times && a->err == ESIM_OK; i++)
		a->err = store_transaction(s, counter_tx, a, 0);
	store_close(s);
	return NULL;
}

static void case_concurrent_counter(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	static const char *const counter_schema[] = {
	    "CREATE TABLE counter (id {{INT}} PRIMARY KEY, v {{INT}} NOT NULL);"
	    "INSERT INTO counter VALUES (1, 0);",
	};
	store *s = open_url(fx->url);
	assert_esim(ESIM_OK, store_migrate(s, counter_schema, 1));
	struct counter_arg a[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		a[i] = (struct counter_arg){.url = fx->url, .times = 500};
		assert_int_equal(pthread_create(&t[i], NULL, counter_thread, &a[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_esim(ESIM_OK, a[i].err);
	}
	assert_int_equal(query_int(s, "SELECT v FROM counter WHERE id = 1"), 1000);
	printf("counter: %u transaction runs for 1000 increments\n", a[0].retries + a[1].retries);
	store_close(s);
}

#define CLAIM_THREADS 8
#define CLAIM_ROWS    200

struct claim_arg {
	const char *url;
	int64_t owner;
	int64_t got[CLAIM_ROWS];
	size_t n_got;
	int64_t id; /* of the current transaction */
	esim_err err;
};

static esim_err claim_tx(store *s, void *arg)
{
	struct claim_arg *a = arg;
	store_stmt *st = NULL;
	a->id = 0; /* reset the output: the body may run more than once */
	esim_err err = store_prepare(s,
				     "UPDATE pool SET owner = ?1 WHERE id = (SELECT id FROM pool "
				     "WHERE owner IS NULL ORDER BY id LIMIT 1 {{SKIP_LOCKED}}) "
				     "RETURNING id",
				     &st);
	if (err == ESIM_OK)
		err = store_bind_int64(st, 1, a->owner);
	if (err == ESIM_OK)
		err = store_run_id(st, &a->id);
	store_finalize(st);
	return err;
}

static void *claim_thread(void *p)
{
	struct claim_arg *a = p;
	store *s = NULL;
	a->err = store_open(a->url, &s);
	while (a->err == ESIM_OK) {
		a->err = store_transaction(s, claim_tx, a, 0);
		if (a->err == ESIM_OK && a->n_got < CLAIM_ROWS)
			a->got[a->n_got++] = a->id;
	}
	if (a->err == ESIM_E_NOT_FOUND)
		a->err = ESIM_OK; /* the pool is empty: done */
	store_close(s);
	return NULL;
}

static void case_claim_exactly_once(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	static const char *const pool_schema[] = {
	    "CREATE TABLE pool (id {{ID}}, owner {{INT}});",
	};
	store *s = open_url(fx->url);
	assert_esim(ESIM_OK, store_migrate(s, pool_schema, 1));
	assert_esim(ESIM_OK, store_begin(s));
	for (int i = 0; i < CLAIM_ROWS; i++)
		assert_esim(ESIM_OK, store_exec(s, "INSERT INTO pool (owner) VALUES (NULL)"));
	assert_esim(ESIM_OK, store_commit(s));

	static struct claim_arg a[CLAIM_THREADS];
	pthread_t t[CLAIM_THREADS];
	for (int i = 0; i < CLAIM_THREADS; i++) {
		memset(&a[i], 0, sizeof a[i]);
		a[i].url = fx->url;
		a[i].owner = i + 1;
		assert_int_equal(pthread_create(&t[i], NULL, claim_thread, &a[i]), 0);
	}
	int seen[CLAIM_ROWS + 1] = {0};
	size_t total = 0;
	for (int i = 0; i < CLAIM_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_esim(ESIM_OK, a[i].err);
		for (size_t j = 0; j < a[i].n_got; j++) {
			assert_true(a[i].got[j] >= 1 && a[i].got[j] <= CLAIM_ROWS);
			seen[a[i].got[j]]++;
		}
		total += a[i].n_got;
	}
	assert_int_equal(total, CLAIM_ROWS);
	for (int id = 1; id <= CLAIM_ROWS; id++)
		assert_int_equal(seen[id], 1);
	/* the database agrees with what the claimers were told */
	assert_int_equal(query_int(s, "SELECT count(*) FROM pool WHERE owner IS NULL"), 0);
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT owner FROM pool WHERE id = ?1", &st));
	for (int i = 0; i < CLAIM_THREADS; i++) {
		for (size_t j = 0; j < a[i].n_got; j++) {
			bool row;
			assert_esim(ESIM_OK, store_reset(st));
			assert_esim(ESIM_OK, store_bind_int64(st, 1, a[i].got[j]));
			assert_esim(ESIM_OK, store_step(st, &row));
			assert_true(row);
			assert_int_equal(store_col_int64(st, 0), a[i].owner);
		}
	}
	store_finalize(st);
	store_close(s);
}

struct migrate_arg {
	const char *url;
	esim_err err;
};

static void *migrate_thread(void *p)
{
	struct migrate_arg *a = p;
	store *s = NULL;
	a->err = store_open(a->url, &s);
	if (a->err == ESIM_OK)
		a->err = store_migrate(s, schema, 2);
	store_close(s);
	return NULL;
}

static void case_concurrent_migrations(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	struct migrate_arg a[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct migrate_arg){.url = fx->url};
		assert_int_equal(pthread_create(&t[i], NULL, migrate_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_esim(ESIM_OK, a[i].err);
	}
	store *s = open_db(fx->url);
	insert(s, "x", 7, ESIM_OK); /* both steps applied, once */
	assert_int_equal(query_int(s, "SELECT n FROM item"), 7);
	assert_esim(ESIM_E_STORE_MIGRATION, store_migrate(s, schema, 1));
	store_close(s);
}

#define STORE_CASES(fx)                                                                            \
	cmocka_unit_test_prestate(case_roundtrip_and_persistence, (fx)),                           \
	    cmocka_unit_test_prestate(case_rollback_leaves_nothing, (fx)),                         \
	    cmocka_unit_test_prestate(case_lazy_transactions, (fx)),                               \
	    cmocka_unit_test_prestate(case_newer_schema_refused, (fx)),                            \
	    cmocka_unit_test_prestate(case_failed_migration_rolls_back, (fx)),                     \
	    cmocka_unit_test_prestate(case_blobs, (fx)),                                           \
	    cmocka_unit_test_prestate(case_int64_extremes, (fx)),                                  \
	    cmocka_unit_test_prestate(case_utf8_text, (fx)),                                       \
	    cmocka_unit_test_prestate(case_sql_text_is_shared, (fx)),                              \
	    cmocka_unit_test_prestate(case_concurrent_counter, (fx)),                              \
	    cmocka_unit_test_prestate(case_claim_exactly_once, (fx)),                              \
	    cmocka_unit_test_prestate(case_concurrent_migrations, (fx))

#endif
