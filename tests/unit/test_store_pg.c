/*
 * The store layer on PostgreSQL: the shared cases of store_cases.h against a
 * throwaway server (tests/common/pg_helper), plus what only PostgreSQL does:
 * serialization failures reported as ESIM_E_STORE_BUSY, a COMMIT after a
 * failed statement, both URL schemes, and a server that is not there.
 * Skipped (77) when PostgreSQL is not installed.
 */
#include "store_cases.h"

static void setup_counter(store *s)
{
	assert_esim(ESIM_OK, store_exec(s, "CREATE TABLE c (id {{INT}} PRIMARY KEY, v {{INT}});"
					   "INSERT INTO c VALUES (1, 0);"));
}

static void test_serialization_failure_is_busy(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *a = open_url(fx->url), *b = open_url(fx->url);
	setup_counter(a);
	assert_int_equal(query_int(a, "SELECT v FROM c"), 0);

	assert_esim(ESIM_OK, store_begin(a));
	assert_int_equal(query_int(a, "SELECT v FROM c WHERE id = 1"), 0);
	assert_esim(ESIM_OK, store_begin(b));
	assert_int_equal(query_int(b, "SELECT v FROM c WHERE id = 1"), 0);
	assert_esim(ESIM_OK, store_exec(b, "UPDATE c SET v = 10 WHERE id = 1"));
	assert_esim(ESIM_OK, store_commit(b));
	/* a read the old value and now writes: it must lose */
	assert_esim(ESIM_E_STORE_BUSY, store_exec(a, "UPDATE c SET v = 1 WHERE id = 1"));
	assert_true(strstr(store_errmsg(a), "serialize") != NULL);
	assert_esim(ESIM_OK, store_rollback(a));
	assert_int_equal(query_int(a, "SELECT v FROM c"), 10);

	/* write skew: each reads what the other writes; one commit fails */
	assert_esim(ESIM_OK, store_exec(a, "INSERT INTO c VALUES (2, 0)"));
	assert_esim(ESIM_OK, store_begin(a));
	assert_esim(ESIM_OK, store_begin(b));
	assert_int_equal(query_int(a, "SELECT v FROM c WHERE id = 2"), 0);
	assert_int_equal(query_int(b, "SELECT v FROM c WHERE id = 1"), 10);
	assert_esim(ESIM_OK, store_exec(a, "UPDATE c SET v = 5 WHERE id = 1"));
	assert_esim(ESIM_OK, store_exec(b, "UPDATE c SET v = 5 WHERE id = 2"));
	assert_esim(ESIM_OK, store_commit(a));
	assert_esim(ESIM_E_STORE_BUSY, store_commit(b));
	/* the failed commit ended the transaction */
	assert_esim(ESIM_E_STORE_STATE, store_rollback(b));
	assert_esim(ESIM_OK, store_begin(b));
	assert_esim(ESIM_OK, store_commit(b));
	assert_int_equal(query_int(b, "SELECT v FROM c WHERE id = 2"), 0);
	store_close(a);
	store_close(b);
}

static void test_commit_after_failed_statement(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	store *s = open_db(fx->url);
	assert_esim(ESIM_OK, store_begin(s));
	insert(s, "a", 1, ESIM_OK);
	insert(s, "a", 1, ESIM_E_STORE_CONSTRAINT);
	/* PostgreSQL refuses everything until the rollback ... */
	assert_esim(ESIM_E_STORE_STATE, store_exec(s, "SELECT 1"));
	/* ... and a COMMIT anyway reports the first failure and rolls back */
	assert_esim(ESIM_E_STORE_CONSTRAINT, store_commit(s));
	assert_int_equal(count(s), 0);
	/* statements finalized inside the failed transaction were released:
	 * the connection keeps working */
	insert(s, "b", 2, ESIM_OK);
	assert_int_equal(count(s), 1);
	store_close(s);
}

static void test_urls(void **state)
{
	struct store_fx *fx = *state;
	fx_new_db(fx);
	char url[300];
	/* postgres:// is the same as postgresql:// */
	assert_true(strncmp(fx->url, "postgresql://", 13) == 0);
	test_path(url, sizeof url, "postgres://%s", fx->url + 13);
	store *s = open_url(url);
	assert_string_equal(store_backend_name(s), "postgresql");
	store_close(s);
	/* nobody listens there (the port of a socket we hold closed) */
	store *t = NULL;
	assert_esim(ESIM_E_STORE_OPEN,
		    store_open("postgresql://esim@127.0.0.1:1/x?connect_timeout=2", &t));
	assert_null(t);
	assert_esim(ESIM_E_STORE_OPEN, store_open("postgresql://nobody@127.0.0.1:1/", &t));
}

int main(void)
{
	static struct pg_env env;
	int rc = pg_start(&env);
	if (rc == TEST_SKIP_CODE)
		test_component_missing("PostgreSQL", env.why);
	if (rc != 0) {
		pg_stop(&env);
		return 1;
	}
	static struct store_fx fx = {.pg = true, .env = &env};
	const struct CMUnitTest tests[] = {
	    STORE_CASES(&fx),
	    cmocka_unit_test_prestate(test_serialization_failure_is_busy, &fx),
	    cmocka_unit_test_prestate(test_commit_after_failed_statement, &fx),
	    cmocka_unit_test_prestate(test_urls, &fx),
	};
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pg_stop(&env);
	return rc;
}
