/*
 * The store layer on SQLite (the embedded default): the shared cases of
 * store_cases.h on database files, plus what only SQLite has (files that
 * are not databases, :memory:) and the SQL rewriter's PostgreSQL output,
 * which needs no server to check.
 */
#include <sqlite3.h>

#include "store_cases.h"
#include "store/store_int.h"

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
	test_path(path, sizeof path, "%s/no/such/dir/x.db", dir);
	assert_esim(ESIM_E_STORE_OPEN, store_open(path, &s));
	test_rm_rf(dir);
	free(dir);
}

static void test_memory_database(void **state)
{
	(void)state;
	store *s = open_db(":memory:");
	insert(s, "m", 3, ESIM_OK);
	assert_int_equal(count(s), 1);
	assert_int_equal(store_last_insert_id(s), 1);
	store_close(s);
}

/* Statement reuse (store.c): a finalized statement comes back for the same
 * text with its bindings cleared; one still in use is never handed out twice. */
static void test_statement_reuse(void **state)
{
	(void)state;
	store *s = open_db(":memory:");
	insert(s, "a", 1, ESIM_OK);
	insert(s, "b", 2, ESIM_OK);
	const char *q = "SELECT n FROM item WHERE name = ?1";
	store_stmt *st1, *st2, *st3;
	bool row;
	assert_esim(ESIM_OK, store_prepare(s, q, &st1));
	assert_esim(ESIM_OK, store_bind_text(st1, 1, "a"));
	assert_esim(ESIM_OK, store_step(st1, &row));
	assert_true(row);
	/* the same text while st1 is mid-result: a different statement */
	assert_esim(ESIM_OK, store_prepare(s, q, &st2));
	assert_ptr_not_equal(st1, st2);
	assert_esim(ESIM_OK, store_bind_text(st2, 1, "b"));
	assert_esim(ESIM_OK, store_step(st2, &row));
	assert_true(row);
	assert_int_equal(store_col_int64(st2, 0), 2);
	assert_int_equal(store_col_int64(st1, 0), 1);
	store_finalize(st1);
	/* reused, with the old binding gone: NULL matches no row */
	assert_esim(ESIM_OK, store_prepare(s, q, &st3));
	assert_ptr_equal(st3, st1);
	assert_esim(ESIM_OK, store_step(st3, &row));
	assert_false(row);
	store_finalize(st3);
	store_finalize(st2);
	/* a parked statement holds no lock: another writer commits */
	assert_esim(ESIM_OK, store_begin(s));
	insert(s, "c", 3, ESIM_OK);
	assert_esim(ESIM_OK, store_commit(s));
	assert_int_equal(count(s), 3);
	store_close(s);
}

/*
 * A VFS that forwards to the default one and counts xSync calls, so that a
 * test can see which commits flush: a lazy commit must not, a durable one
 * and a lazy one made durable must.
 */
struct count_file {
	sqlite3_file base;
	sqlite3_file *real; /* right after this struct, szOsFile of the real VFS */
	unsigned *syncs;
};

#define REAL(f) (((struct count_file *)(f))->real)

static int cf_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int cf_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int cf_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int cf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int cf_sync(sqlite3_file *f, int flags)
{
	(*((struct count_file *)f)->syncs)++;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int cf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int cf_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int cf_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int cf_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int cf_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int cf_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int cf_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int cf_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, p);
}
static int cf_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void cf_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int cf_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods count_io = {
    .iVersion = 2,
    .xClose = cf_close,
    .xRead = cf_read,
    .xWrite = cf_write,
    .xTruncate = cf_truncate,
    .xSync = cf_sync,
    .xFileSize = cf_file_size,
    .xLock = cf_lock,
    .xUnlock = cf_unlock,
    .xCheckReservedLock = cf_check_reserved,
    .xFileControl = cf_file_control,
    .xSectorSize = cf_sector_size,
    .xDeviceCharacteristics = cf_device_characteristics,
    .xShmMap = cf_shm_map,
    .xShmLock = cf_shm_lock,
    .xShmBarrier = cf_shm_barrier,
    .xShmUnmap = cf_shm_unmap,
};

struct count_vfs {
	sqlite3_vfs vfs;
	sqlite3_vfs *real;
	unsigned syncs;
};

static int cv_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct count_vfs *cv = v->pAppData;
	struct count_file *cf = (struct count_file *)f;
	cf->real = (sqlite3_file *)(cf + 1);
	cf->syncs = &cv->syncs;
	int rc = cv->real->xOpen(cv->real, name, cf->real, flags, out_flags);
	/* SQLite calls xClose only on files whose pMethods is set */
	f->pMethods = rc == SQLITE_OK && cf->real->pMethods ? &count_io : NULL;
	return rc;
}

static void test_lazy_commits_do_not_flush(void **state)
{
	(void)state;
	struct count_vfs cv = {.real = sqlite3_vfs_find(NULL)};
	assert_non_null(cv.real);
	cv.vfs = *cv.real; /* every other method as the real VFS has it */
	cv.vfs.iVersion = 1;
	cv.vfs.zName = "esim-count";
	cv.vfs.szOsFile = (int)sizeof(struct count_file) + cv.real->szOsFile;
	cv.vfs.pAppData = &cv;
	cv.vfs.xOpen = cv_open;
	cv.vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&cv.vfs, 1), SQLITE_OK);

	char *dir = test_mkdtemp(), path[256];
	test_path(path, sizeof path, "%s/sync.db", dir);
	store *s = open_db(path);
	cv.syncs = 0;
	assert_esim(ESIM_OK, store_begin(s));
	insert(s, "durable", 1, ESIM_OK);
	assert_esim(ESIM_OK, store_commit(s));
	assert_true(cv.syncs >= 1);

	for (int i = 0; i < 5; i++) {
		cv.syncs = 0;
		assert_esim(ESIM_OK, store_begin_lazy(s));
		char name[16];
		snprintf(name, sizeof name, "lazy%d", i);
		insert(s, name, i, ESIM_OK);
		assert_esim(ESIM_OK, store_commit(s));
		assert_int_equal(cv.syncs, 0);
	}

	cv.syncs = 0;
	assert_esim(ESIM_OK, store_begin_lazy(s));
	insert(s, "upgraded", 9, ESIM_OK);
	store_make_durable(s);
	assert_esim(ESIM_OK, store_commit(s));
	assert_true(cv.syncs >= 1);

	/* after lazy ones, a plain durable transaction flushes again */
	cv.syncs = 0;
	assert_esim(ESIM_OK, store_begin(s));
	insert(s, "durable2", 2, ESIM_OK);
	assert_esim(ESIM_OK, store_commit(s));
	assert_true(cv.syncs >= 1);
	assert_int_equal(count(s), 8);
	store_close(s);

	assert_int_equal(sqlite3_vfs_unregister(&cv.vfs), SQLITE_OK);
	assert_int_equal(sqlite3_vfs_register(cv.real, 1), SQLITE_OK);
	test_rm_rf(dir);
	free(dir);
}

static void expect_rewrite(const char *in, store_dialect d, bool dollar, const char *want,
			   int want_n)
{
	char *out = NULL;
	int n = -1;
	assert_esim(ESIM_OK, store_sql_rewrite(in, d, dollar, &out, &n));
	assert_string_equal(out, want);
	assert_int_equal(n, want_n);
	free(out);
}

static void test_rewrite(void **state)
{
	(void)state;
	const store_dialect pg = STORE_DIALECT_POSTGRES, lite = STORE_DIALECT_SQLITE;
	expect_rewrite("SELECT ?1, ?12 FROM t WHERE a = ?2", pg, true,
		       "SELECT $1, $12 FROM t WHERE a = $2", 12);
	expect_rewrite("SELECT ?1, ?12", lite, false, "SELECT ?1, ?12", 12);
	expect_rewrite("VALUES (?, ?, ?5, ?)", pg, true, "VALUES ($1, $2, $5, $6)", 6);
	expect_rewrite("SELECT '?1''?2', \"?3\", E'\\'?4', x -- ?5\n, /* ?6 */ ?1", pg, true,
		       "SELECT '?1''?2', \"?3\", E'\\'?4', x -- ?5\n, /* ?6 */ $1", 1);
	expect_rewrite("DO $f$ SELECT '?1' $f$; SELECT $$?2$$, ?1", pg, true,
		       "DO $f$ SELECT '?1' $f$; SELECT $$?2$$, $1", 1);
	expect_rewrite("CREATE TABLE t (id {{ID}}, n {{INT}}, b {{BLOB}})", pg, false,
		       "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
		       "n BIGINT, b BYTEA)",
		       0);
	expect_rewrite("CREATE TABLE t (id {{ID}}, n {{INT}}, b {{BLOB}})", lite, false,
		       "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, b BLOB)",
		       0);
	expect_rewrite("SELECT 1 {{FOR_UPDATE}}", lite, false, "SELECT 1 ", 0);
	expect_rewrite("SELECT 1 {{SKIP_LOCKED}}", pg, false, "SELECT 1 FOR UPDATE SKIP LOCKED", 0);
	expect_rewrite("CREATE TABLE t (k TEXT PRIMARY KEY) {{WITHOUT_ROWID}};", lite, false,
		       "CREATE TABLE t (k TEXT PRIMARY KEY) WITHOUT ROWID;", 0);
	expect_rewrite("CREATE TABLE t (k TEXT PRIMARY KEY) {{WITHOUT_ROWID}};", pg, false,
		       "CREATE TABLE t (k TEXT PRIMARY KEY) ;", 0);
	expect_rewrite("SELECT '{{ID}}'", pg, false, "SELECT '{{ID}}'", 0);
	/* in SQLite a backslash does not escape: 'a\' is a whole literal */
	expect_rewrite("SELECT E'a\\', ?1", lite, false, "SELECT E'a\\', ?1", 1);

	char *out = NULL;
	int n;
	const char *bad[] = {
	    "SELECT 'x",     "SELECT \"x",   "SELECT 1 /* x", "SELECT {{ID",
	    "SELECT {{id}}", "SELECT ?1000", "SELECT ?0",     "SELECT ?99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_esim(ESIM_E_STORE_SQL, store_sql_rewrite(bad[i], pg, true, &out, &n));
		assert_null(out);
	}
}

static int setup(void **state)
{
	struct store_fx *fx = *state;
	fx->dir = test_mkdtemp();
	return 0;
}

static int teardown(void **state)
{
	struct store_fx *fx = *state;
	test_rm_rf(fx->dir);
	free(fx->dir);
	return 0;
}

int main(void)
{
	static struct store_fx fx = {.pg = false};
	const struct CMUnitTest tests[] = {
	    STORE_CASES(&fx),
	    cmocka_unit_test(test_not_a_database),
	    cmocka_unit_test(test_memory_database),
	    cmocka_unit_test(test_statement_reuse),
	    cmocka_unit_test(test_lazy_commits_do_not_flush),
	    cmocka_unit_test(test_rewrite),
	};
	void *state = &fx;
	if (setup(&state) != 0)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	teardown(&state);
	return rc;
}
