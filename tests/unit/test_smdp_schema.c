/*
 * The SM-DP+ schema's upgrades, on SQLite and on a real PostgreSQL (started
 * on loopback by pg_helper): a database made by the earlier migrations,
 * with rows in it, is upgraded in place; its rows survive, and the queries
 * that use the changed tables and indexes still find what they should.
 *
 * Migration 3 writes fewer pages per download: sessions WITHOUT ROWID on
 * SQLite, order indexes without `open`, the pick index only over Available
 * profiles. On SQLite the test also checks that the engine really uses the
 * new shapes (sqlite_master, EXPLAIN QUERY PLAN).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "pg_helper.h"

#include "esim/store.h"
#include "smdp/smdp_int.h"

/* sql with ?1, where used, bound to a one-byte blob (portable: SQLite's
 * X'..' literal is a bit string on PostgreSQL). */
static esim_err exec_blob(store *s, const char *sql)
{
	static const uint8_t one = 0x01;
	store_stmt *st = NULL;
	esim_err e = store_prepare(s, sql, &st);
	if (e == ESIM_OK && strstr(sql, "?1") != NULL)
		e = store_bind_blob(st, 1, &one, 1);
	if (e == ESIM_OK)
		e = store_run(st);
	store_finalize(st);
	return e;
}

static void exec_ok(store *s, const char *sql)
{
	esim_err e = exec_blob(s, sql);
	if (e != ESIM_OK)
		fail_msg("%s: %s (%s)", sql, esim_strerror(e), store_errmsg(s));
}

/* The first column of the first row of sql as text ("" when no row). */
static void query_text(store *s, const char *sql, char *out, size_t n)
{
	store_stmt *st = NULL;
	bool row = false;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	assert_esim(ESIM_OK, store_step(st, &row));
	const char *v = row ? store_col_text(st, 0) : NULL;
	snprintf(out, n, "%s", v != NULL ? v : "");
	store_finalize(st);
}

/* All rows' first columns joined by '|' (SQLite's EXPLAIN QUERY PLAN has
 * its text in column 3). */
static void query_all(store *s, const char *sql, int col, char *out, size_t n)
{
	store_stmt *st = NULL;
	bool row = true;
	size_t len = 0;
	out[0] = '\0';
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	while (store_step(st, &row) == ESIM_OK && row) {
		const char *v = store_col_text(st, col);
		len += (size_t)snprintf(out + len, n - len, "%s|", v != NULL ? v : "");
		assert_true(len < n);
	}
	store_finalize(st);
}

static void upgrade_keeps_rows(const char *url)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(url, &s));
	assert_esim(ESIM_OK, smdp_schema_migrate_upto(s, 2));
	exec_ok(s, "INSERT INTO smdp_operators (name, created) VALUES ('op', 1)");
	exec_ok(s, "INSERT INTO smdp_profile_types (name, operator_id, template, spn, profile_name,"
		   " profile_class, ppr) VALUES ('T', 1, ?1, 'spn', 'name', 2, 0)");
	/* 1 and 3 Available, 2 Released with an open order, 4 of another type */
	exec_ok(s, "INSERT INTO smdp_profiles (iccid, type_id, state, upp, updated) VALUES"
		   " ('8900000000000000001', 1, 'Available', ?1, 1),"
		   " ('8900000000000000002', 1, 'Released', ?1, 1),"
		   " ('8900000000000000003', 1, 'Available', ?1, 1),"
		   " ('8900000000000000004', 2, 'Available', ?1, 1)");
	exec_ok(s, "INSERT INTO smdp_orders (profile_id, operator_id, eid, matching_id, cc_left,"
		   " attempts, expires, open, created, updated) VALUES"
		   " (2, 1, '89049032123451234512345678901235', 'MID-1', 5, 0, 99, 1, 1, 1),"
		   " (2, 1, '89049032123451234512345678901235', 'MID-0', 5, 0, 99, 0, 1, 1)");
	exec_ok(s, "INSERT INTO smdp_sessions (txid, state, ident, euicc_challenge,"
		   " server_challenge, ci_pkid, eid, order_id, euicc_cert, cc_required, created,"
		   " updated) VALUES ('0A0B', 'authenticated', 0, ?1, ?1, ?1,"
		   " '89049032123451234512345678901235', 1, ?1, 1, 5, 6)");

	assert_esim(ESIM_OK, smdp_schema_migrate(s));
	assert_esim(ESIM_OK, smdp_schema_migrate(s)); /* again: nothing left to do */

	char v[512];
	query_text(s,
		   "SELECT state || ':' || eid || ':' || order_id || ':' || cc_required FROM"
		   " smdp_sessions WHERE txid = '0A0B'",
		   v, sizeof v);
	assert_string_equal(v, "authenticated:89049032123451234512345678901235:1:1");
	/* the pick: the lowest Available of the type, then the next */
	const char *pick = "SELECT iccid FROM smdp_profiles WHERE type_id = 1 AND state ="
			   " 'Available' ORDER BY id LIMIT 1";
	query_text(s, pick, v, sizeof v);
	assert_string_equal(v, "8900000000000000001");
	exec_ok(s, "UPDATE smdp_profiles SET state = 'Allocated' WHERE id = 1");
	query_text(s, pick, v, sizeof v);
	assert_string_equal(v, "8900000000000000003");
	/* open orders by EID and by profile */
	query_all(s,
		  "SELECT matching_id FROM smdp_orders WHERE eid ="
		  " '89049032123451234512345678901235' AND open = 1",
		  0, v, sizeof v);
	assert_string_equal(v, "MID-1|");
	query_all(s, "SELECT matching_id FROM smdp_orders WHERE profile_id = 2 ORDER BY id DESC", 0,
		  v, sizeof v);
	assert_string_equal(v, "MID-0|MID-1|");
	/* the session table takes new rows and refuses a duplicate txid */
	exec_ok(s, "INSERT INTO smdp_sessions (txid, state, ident, euicc_challenge,"
		   " server_challenge, ci_pkid, cc_required, created, updated) VALUES"
		   " ('0C0D', 'initiated', 0, ?1, ?1, ?1, 0, 7, 7)");
	assert_esim(ESIM_E_STORE_CONSTRAINT,
		    exec_blob(s, "INSERT INTO smdp_sessions (txid, state, ident, euicc_challenge,"
				 " server_challenge, ci_pkid, cc_required, created, updated) VALUES"
				 " ('0C0D', 'initiated', 0, ?1, ?1, ?1, 0, 7, 7)"));

	if (store_sql_dialect(s) == STORE_DIALECT_SQLITE) {
		query_text(s, "SELECT sql FROM sqlite_master WHERE name = 'smdp_sessions'", v,
			   sizeof v);
		assert_non_null(strstr(v, "WITHOUT ROWID"));
		query_text(s,
			   "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE"
			   " 'sqlite_autoindex_smdp_sessions%'",
			   v, sizeof v);
		assert_string_equal(v, "0");
		query_all(s,
			  "EXPLAIN QUERY PLAN SELECT id FROM smdp_profiles WHERE type_id = 1 AND"
			  " state = 'Available' ORDER BY id LIMIT 1",
			  3, v, sizeof v);
		if (strstr(v, "smdp_profiles_pick") == NULL)
			fail_msg("pick query does not use the partial index: %s", v);
	}
	store_close(s);
}

static void test_upgrade_sqlite(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char url[600];
	test_path(url, sizeof url, "%s/smdp.db", dir);
	upgrade_keeps_rows(url);
	test_rm_rf(dir);
	free(dir);
}

/* set when PostgreSQL is not installed: the run ends with a skip (77) */
static char pg_missing[300];

static void test_upgrade_postgres(void **state)
{
	(void)state;
	struct pg_env pg;
	memset(&pg, 0, sizeof pg);
	int rc = pg_start(&pg);
	if (rc == TEST_SKIP_CODE) {
		/* the SQLite case still runs; main() reports the skip */
		snprintf(pg_missing, sizeof pg_missing, "%s", pg.why);
		pg_stop(&pg);
		skip();
	}
	assert_int_equal(rc, 0);
	char url[512];
	assert_int_equal(pg_create_db(&pg, url, sizeof url), 0);
	upgrade_keeps_rows(url);
	pg_stop(&pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upgrade_sqlite),
	    cmocka_unit_test(test_upgrade_postgres),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	/* a failure stays a failure; a pass without the PostgreSQL half is not
	 * a pass */
	if (rc == 0 && pg_missing[0] != '\0')
		return test_component_missing_status("PostgreSQL", pg_missing);
	return rc;
}
