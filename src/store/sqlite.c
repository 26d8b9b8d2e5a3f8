/*
 * The SQLite backend of the store layer (the embedded default, used by the
 * virtual eUICC and by single-host SM-DP+ / operator deployments).
 *
 * Durability: WAL journal with synchronous=FULL, so that COMMIT returns only
 * once the transaction is on disk; a process killed at any instant leaves the
 * last committed state. Writers take the lock up front (BEGIN IMMEDIATE) and
 * wait up to busy_timeout for each other, which makes every transaction
 * serializable, the guarantee the PostgreSQL backend matches.
 *
 * Schema versions live in PRAGMA user_version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/store_int.h"

/* The statements every transaction runs, prepared once per connection:
 * sqlite3_exec would parse them again each time. */
enum lite_tx_sql { TX_BEGIN, TX_COMMIT, TX_ROLLBACK, TX_SYNC_NORMAL, TX_SYNC_FULL, TX_N };

static const char *const tx_sql[TX_N] = {
    "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL",
};

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	bool sync_normal; /* PRAGMA synchronous is NORMAL now (else FULL) */
	sqlite3_stmt *tx[TX_N];
};

struct sqlite_stmt {
	struct store_stmt base;
	sqlite3_stmt *st;
};

static sqlite3 *db_of(const store *s)
{
	return ((const struct sqlite_store *)s)->db;
}

static sqlite3_stmt *st_of(store_stmt *st)
{
	return ((struct sqlite_stmt *)st)->st;
}

static esim_err map_rc(int rc)
{
	switch (rc & 0xFF) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return ESIM_OK;
	case SQLITE_NOMEM:
		return ESIM_E_NOMEM;
	case SQLITE_CONSTRAINT:
		return ESIM_E_STORE_CONSTRAINT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return ESIM_E_STORE_BUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return ESIM_E_STORE_CORRUPT;
	case SQLITE_IOERR:
	case SQLITE_FULL:
		return ESIM_E_IO;
	case SQLITE_CANTOPEN:
		return ESIM_E_STORE_OPEN;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return ESIM_E_STORE_STATE;
	default:
		return ESIM_E_STORE_SQL;
	}
}

/* An error that is certain to be one: some failures report SQLITE_OK from
 * sqlite3_errcode (e.g. after an automatic reset). */
static esim_err fail(int rc)
{
	esim_err err = map_rc(rc);
	return err == ESIM_OK ? ESIM_E_STORE_SQL : err;
}

static esim_err lite_exec(store *s, const char *sql)
{
	return map_rc(sqlite3_exec(db_of(s), sql, NULL, NULL, NULL));
}

/* Run one of tx_sql, preparing it on first use. */
static esim_err lite_tx(store *s, enum lite_tx_sql which)
{
	struct sqlite_store *ls = (struct sqlite_store *)s;
	if (!ls->tx[which]) {
		int rc = sqlite3_prepare_v3(ls->db, tx_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
					    &ls->tx[which], NULL);
		if (rc != SQLITE_OK)
			return fail(rc);
	}
	sqlite3_step(ls->tx[which]);
	/* reset returns the step's error, if any */
	return map_rc(sqlite3_reset(ls->tx[which]));
}

static void lite_close(store *s)
{
	struct sqlite_store *ls = (struct sqlite_store *)s;
	for (int i = 0; i < TX_N; i++)
		sqlite3_finalize(ls->tx[i]);
	sqlite3_close(ls->db);
	free(s);
}

static esim_err lite_open(const char *url, store **out)
{
	const char *path = url;
	if (strncmp(url, "sqlite:", 7) == 0)
		path = url + 7;
	struct sqlite_store *ls = calloc(1, sizeof *ls);
	if (ls == NULL)
		return ESIM_E_NOMEM;
	int rc = sqlite3_open_v2(
	    path, &ls->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(ls->db);
		free(ls);
		return ESIM_E_STORE_OPEN;
	}
	sqlite3_busy_timeout(ls->db, 5000);
	sqlite3_extended_result_codes(ls->db, 0);
	store *s = &ls->base;
	/* Switching a new file to WAL while another connection opens it can
	 * fail with SQLITE_BUSY at once, without the busy handler: retry for
	 * about as long as the busy timeout. */
	esim_err err = ESIM_E_STORE_BUSY;
	for (int i = 0; i < 500 && err == ESIM_E_STORE_BUSY; i++) {
		if (i > 0)
			sqlite3_sleep(10);
		err = lite_exec(s, "PRAGMA journal_mode=WAL;"
				   "PRAGMA synchronous=FULL;"
				   "PRAGMA foreign_keys=ON;");
		if (err == ESIM_OK) {
			/* Touch the file so that a non-database is refused at open. */
			err = lite_exec(s, "SELECT count(*) FROM sqlite_master;");
		}
	}
	if (err != ESIM_OK) {
		lite_close(s);
		return err == ESIM_E_STORE_SQL ? ESIM_E_STORE_OPEN : err;
	}
	*out = s;
	return ESIM_OK;
}

static const char *lite_errmsg(const store *s)
{
	return sqlite3_errmsg(db_of(s));
}

static esim_err lite_prepare(store *s, const char *sql, int nparams, store_stmt **out)
{
	(void)nparams;
	struct sqlite_stmt *st = calloc(1, sizeof *st);
	if (st == NULL)
		return ESIM_E_NOMEM;
	int rc = sqlite3_prepare_v2(db_of(s), sql, -1, &st->st, NULL);
	if (rc != SQLITE_OK || st->st == NULL) {
		sqlite3_finalize(st->st);
		free(st);
		return fail(rc);
	}
	*out = &st->base;
	return ESIM_OK;
}

static void lite_finalize(store_stmt *st)
{
	sqlite3_finalize(st_of(st));
	free(st);
}

static esim_err lite_reset(store_stmt *st)
{
	sqlite3_reset(st_of(st));
	return map_rc(sqlite3_clear_bindings(st_of(st)));
}

static esim_err lite_bind_int64(store_stmt *st, int idx, int64_t v)
{
	return map_rc(sqlite3_bind_int64(st_of(st), idx, v));
}

static esim_err lite_bind_text(store_stmt *st, int idx, const char *v)
{
	return map_rc(sqlite3_bind_text(st_of(st), idx, v, -1, SQLITE_TRANSIENT));
}

static esim_err lite_bind_blob(store_stmt *st, int idx, const void *p, size_t n)
{
	/* A zero-length blob is bound as an empty blob, not as NULL. */
	return map_rc(n ? sqlite3_bind_blob(st_of(st), idx, p, (int)n, SQLITE_TRANSIENT)
			: sqlite3_bind_zeroblob(st_of(st), idx, 0));
}

static esim_err lite_bind_null(store_stmt *st, int idx)
{
	return map_rc(sqlite3_bind_null(st_of(st), idx));
}

static esim_err lite_step(store_stmt *st, bool *row)
{
	int rc = sqlite3_step(st_of(st));
	*row = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return ESIM_OK;
	return fail(sqlite3_errcode(db_of(st->s)));
}

static int64_t lite_col_int64(store_stmt *st, int col)
{
	return sqlite3_column_int64(st_of(st), col);
}

static const char *lite_col_text(store_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st_of(st), col);
}

static const uint8_t *lite_col_blob(store_stmt *st, int col, size_t *len)
{
	static const uint8_t empty[1] = {0};
	const uint8_t *p = sqlite3_column_blob(st_of(st), col);
	*len = (size_t)sqlite3_column_bytes(st_of(st), col);
	/* SQLite gives NULL for an empty blob too; the store API keeps NULL
	 * for SQL NULL only. */
	if (p == NULL && sqlite3_column_type(st_of(st), col) != SQLITE_NULL)
		return empty;
	return p;
}

static bool lite_col_is_null(store_stmt *st, int col)
{
	return sqlite3_column_type(st_of(st), col) == SQLITE_NULL;
}

/*
 * Lazy transactions (store.h, "Durability") run with synchronous=NORMAL: in
 * WAL mode COMMIT then appends the transaction to the WAL without an
 * fdatasync. The setting may only change between transactions, so begin
 * sets it when it differs from what the last transaction used.
 */
static esim_err lite_begin(store *s, bool lazy)
{
	struct sqlite_store *ls = (struct sqlite_store *)s;
	if (ls->sync_normal != lazy) {
		esim_err err = lite_tx(s, lazy ? TX_SYNC_NORMAL : TX_SYNC_FULL);
		if (err != ESIM_OK)
			return err;
		ls->sync_normal = lazy;
	}
	return lite_tx(s, TX_BEGIN);
}

/* Flush the WAL of a transaction committed with synchronous=NORMAL: the
 * fdatasync that synchronous=FULL would have made at COMMIT. The WAL is
 * one append-only file, so this also flushes every commit before it. */
static esim_err lite_sync_wal(sqlite3 *db)
{
	sqlite3_file *wal = NULL;
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK)
		return ESIM_E_STORE_SYNC;
	if (wal == NULL || wal->pMethods == NULL)
		return ESIM_OK; /* an in-memory database: nothing to flush */
	return wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) == SQLITE_OK ? ESIM_OK
									  : ESIM_E_STORE_SYNC;
}

static esim_err lite_commit(store *s, bool durable)
{
	esim_err err = lite_tx(s, TX_COMMIT);
	/* A failed COMMIT leaves SQLite's transaction open; the store API
	 * promises that it is over. */
	if (err != ESIM_OK && !sqlite3_get_autocommit(db_of(s)))
		lite_tx(s, TX_ROLLBACK);
	if (err == ESIM_OK && durable && ((struct sqlite_store *)s)->sync_normal)
		err = lite_sync_wal(db_of(s));
	return err;
}

static esim_err lite_rollback(store *s)
{
	/* SQLite may already have rolled back by itself (e.g. after SQLITE_FULL). */
	if (sqlite3_get_autocommit(db_of(s)))
		return ESIM_OK;
	return lite_tx(s, TX_ROLLBACK);
}

static int64_t lite_last_insert_id(store *s)
{
	return sqlite3_last_insert_rowid(db_of(s));
}

static int64_t lite_changes(store *s)
{
	return sqlite3_changes(db_of(s));
}

static esim_err lite_prepare_version(store *s)
{
	(void)s;
	return ESIM_OK;
}

static esim_err lite_get_version(store *s, int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db_of(s), "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return fail(rc);
	}
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	esim_err err = rc == SQLITE_ROW ? ESIM_OK : fail(rc);
	sqlite3_finalize(st);
	return err;
}

static esim_err lite_set_version(store *s, int64_t v)
{
	char pragma[64];
	snprintf(pragma, sizeof pragma, "PRAGMA user_version=%lld", (long long)v);
	return lite_exec(s, pragma);
}

const struct store_backend store_sqlite_backend = {
    .cache_statements = true,
    .name = "sqlite",
    .dialect = STORE_DIALECT_SQLITE,
    .open = lite_open,
    .close = lite_close,
    .errmsg = lite_errmsg,
    .exec = lite_exec,
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .reset = lite_reset,
    .bind_int64 = lite_bind_int64,
    .bind_text = lite_bind_text,
    .bind_blob = lite_bind_blob,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .col_int64 = lite_col_int64,
    .col_text = lite_col_text,
    .col_blob = lite_col_blob,
    .col_is_null = lite_col_is_null,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .last_insert_id = lite_last_insert_id,
    .changes = lite_changes,
    .prepare_version = lite_prepare_version,
    .get_version = lite_get_version,
    .set_version = lite_set_version,
};
