/* The store layer on SQLite: migrations, statements, transactions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "esim/store.h"

static const char *const schema[] = {
	"CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, data BLOB);",
	"ALTER TABLE item ADD COLUMN n INTEGER NOT NULL DEFAULT 0;",
};

static store *open_db(const char *path)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(path, &s));
	assert_esim(ESIM_OK, store_migrate(s, schema, 2));
	return s;
}

static void insert(store *s, const char *name, int64_t n, esim_err expect)
{
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "INSERT INTO item(name, data, n) VALUES (?1, ?2, ?3)", &st));
	assert_esim(ESIM_OK, store_bind_text(st, 1, name));
	assert_esim(ESIM_OK, store_bind_blob(st, 2, "\x00\x01\x02", 3));
	assert_esim(ESIM_OK, store_bind_int64(st, 3, n));
	assert_esim(expect, store_run(st));
	store_finalize(st);
}

static int64_t count(store *s)
{
	store_stmt *st;
	bool row;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT count(*) FROM item", &st));
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	int64_t n = store_col_int64(st, 0);
	store_finalize(st);
	return n;
}

static void test_roundtrip_and_persistence(void **state)
{
	(void)state;
	char *dir = test_mkdtemp(), path[256];
	test_path(path, sizeof path, "%s/t.db", dir);
	store *s = open_db(path);
	insert(s, "alpha", -5, ESIM_OK);
	insert(s, "alpha", 1, ESIM_E_STORE_CONSTRAINT);
	store_close(s);

	s = open_db(path); /* migrations are not re-run */
	store_stmt *st;
	bool row;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT name, data, n FROM item WHERE name = ?1", &st));
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
	store_finalize(st);
	store_close(s);
	test_rm_rf(dir);
	free(dir);
}

static void test_rollback_leaves_nothing(void **state)
{
	(void)state;
	store *s = open_db(":memory:");
	assert_esim(ESIM_OK, store_begin(s));
	assert_esim(ESIM_E_STORE_STATE, store_begin(s));
	insert(s, "a", 1, ESIM_OK);
	insert(s, "b", 2, ESIM_OK);
	assert_int_equal(count(s), 2);
	assert_esim(ESIM_OK, store_rollback(s));
	assert_int_equal(count(s), 0);
	assert_esim(ESIM_E_STORE_STATE, store_commit(s));
	store_close(s);
}

static void test_newer_schema_refused(void **state)
{
	(void)state;
	store *s = open_db(":memory:");
	assert_esim(ESIM_E_STORE_MIGRATION, store_migrate(s, schema, 1));
	store_close(s);
}

static void test_failed_migration_rolls_back(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"CREATE TABLE t (x INTEGER);",
		"CREATE TABLE u (y INTEGER); CREATE TABLE t (x INTEGER);",
	};
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(":memory:", &s));
	assert_esim(ESIM_E_STORE_MIGRATION, store_migrate(s, bad, 2));
	/* version 1 stays applied; u from the failed step is gone */
	assert_esim(ESIM_E_STORE_SQL, store_exec(s, "SELECT * FROM u"));
	assert_esim(ESIM_OK, store_exec(s, "SELECT * FROM t"));
	store_close(s);
}

static void test_not_a_database(void **state)
{
	(void)state;
	char *dir = test_mkdtemp(), path[256];
	test_path(path, sizeof path, "%s/junk.db", dir);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	for (int i = 0; i < 4096; i++)
		fputc(i * 7, f);
	fclose(f);
	store *s = NULL;
	esim_err err = store_open(path, &s);
	assert_true(err == ESIM_E_STORE_CORRUPT || err == ESIM_E_STORE_OPEN);
	assert_null(s);
	assert_esim(ESIM_E_UNSUPPORTED, store_open("mysql://x", &s));
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_and_persistence),
		cmocka_unit_test(test_rollback_leaves_nothing),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_failed_migration_rolls_back),
		cmocka_unit_test(test_not_a_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
