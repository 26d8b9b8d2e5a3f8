/*
 * The SQLite backend of the store layer (the embedded default).
 *
 * Durability: WAL journal with synchronous=FULL, so that COMMIT returns only
 * once the transaction is on disk; a process killed at any instant leaves the
 * last committed state. Writers take the lock up front (BEGIN IMMEDIATE) and
 * wait up to busy_timeout for each other.
 *
 * Schema versions live in PRAGMA user_version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "esim/store.h"

struct store {
	sqlite3 *db;
	int in_tx;
};

struct store_stmt {
	store *s;
	sqlite3_stmt *st;
};

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

esim_err store_open(const char *url, store **out)
{
	const char *path = url;
	if (strncmp(url, "sqlite:", 7) == 0)
		path = url + 7;
	else if (strstr(url, "://") != NULL)
		return ESIM_E_UNSUPPORTED;
	store *s = calloc(1, sizeof *s);
	if (s == NULL)
		return ESIM_E_NOMEM;
	int rc = sqlite3_open_v2(path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(s->db);
		free(s);
		return ESIM_E_STORE_OPEN;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 0);
	esim_err err = store_exec(s, "PRAGMA journal_mode=WAL;"
				     "PRAGMA synchronous=FULL;"
				     "PRAGMA foreign_keys=ON;");
	if (err == ESIM_OK) {
		/* Touch the file so that a non-database is refused at open. */
		err = store_exec(s, "SELECT count(*) FROM sqlite_master;");
	}
	if (err != ESIM_OK) {
		store_close(s);
		return err == ESIM_E_STORE_SQL ? ESIM_E_STORE_OPEN : err;
	}
	*out = s;
	return ESIM_OK;
}

void store_close(store *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	free(s);
}

const char *store_errmsg(const store *s)
{
	return s && s->db ? sqlite3_errmsg(s->db) : "no database";
}

esim_err store_exec(store *s, const char *sql)
{
	return map_rc(sqlite3_exec(s->db, sql, NULL, NULL, NULL));
}

esim_err store_prepare(store *s, const char *sql, store_stmt **out)
{
	store_stmt *st = calloc(1, sizeof *st);
	if (st == NULL)
		return ESIM_E_NOMEM;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st->st, NULL);
	if (rc != SQLITE_OK) {
		free(st);
		return map_rc(rc) == ESIM_OK ? ESIM_E_STORE_SQL : map_rc(rc);
	}
	st->s = s;
	*out = st;
	return ESIM_OK;
}

void store_finalize(store_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_finalize(st->st);
	free(st);
}

esim_err store_reset(store_stmt *st)
{
	sqlite3_reset(st->st);
	return map_rc(sqlite3_clear_bindings(st->st));
}

esim_err store_bind_int64(store_stmt *st, int idx, int64_t v)
{
	return map_rc(sqlite3_bind_int64(st->st, idx, v));
}

esim_err store_bind_text(store_stmt *st, int idx, const char *v)
{
	if (v == NULL)
		return store_bind_null(st, idx);
	return map_rc(sqlite3_bind_text(st->st, idx, v, -1, SQLITE_TRANSIENT));
}

esim_err store_bind_blob(store_stmt *st, int idx, const void *p, size_t n)
{
	if (n > INT32_MAX)
		return ESIM_E_TOO_LARGE;
	/* A zero-length blob is bound as an empty blob, not as NULL. */
	return map_rc(n ? sqlite3_bind_blob(st->st, idx, p, (int)n, SQLITE_TRANSIENT)
			: sqlite3_bind_zeroblob(st->st, idx, 0));
}

esim_err store_bind_null(store_stmt *st, int idx)
{
	return map_rc(sqlite3_bind_null(st->st, idx));
}

esim_err store_step(store_stmt *st, bool *row)
{
	int rc = sqlite3_step(st->st);
	*row = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return ESIM_OK;
	esim_err err = map_rc(sqlite3_errcode(st->s->db));
	return err == ESIM_OK ? ESIM_E_STORE_SQL : err;
}

esim_err store_run(store_stmt *st)
{
	bool row = true;
	esim_err err;
	while ((err = store_step(st, &row)) == ESIM_OK && row)
		;
	return err;
}

int64_t store_col_int64(store_stmt *st, int col)
{
	return sqlite3_column_int64(st->st, col);
}

const char *store_col_text(store_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st->st, col);
}

const uint8_t *store_col_blob(store_stmt *st, int col, size_t *len)
{
	const uint8_t *p = sqlite3_column_blob(st->st, col);
	*len = (size_t)sqlite3_column_bytes(st->st, col);
	return p;
}

bool store_col_is_null(store_stmt *st, int col)
{
	return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

esim_err store_begin(store *s)
{
	if (s->in_tx)
		return ESIM_E_STORE_STATE;
	esim_err err = store_exec(s, "BEGIN IMMEDIATE");
	if (err == ESIM_OK)
		s->in_tx = 1;
	return err;
}

esim_err store_commit(store *s)
{
	if (!s->in_tx)
		return ESIM_E_STORE_STATE;
	esim_err err = store_exec(s, "COMMIT");
	if (err == ESIM_OK)
		s->in_tx = 0;
	return err;
}

esim_err store_rollback(store *s)
{
	if (!s->in_tx)
		return ESIM_E_STORE_STATE;
	s->in_tx = 0;
	return store_exec(s, "ROLLBACK");
}

int64_t store_last_insert_id(store *s)
{
	return sqlite3_last_insert_rowid(s->db);
}

int64_t store_changes(store *s)
{
	return sqlite3_changes(s->db);
}

static esim_err user_version(store *s, int64_t *v)
{
	store_stmt *st;
	esim_err err = store_prepare(s, "PRAGMA user_version", &st);
	if (err != ESIM_OK)
		return err;
	bool row = false;
	err = store_step(st, &row);
	*v = row ? store_col_int64(st, 0) : 0;
	store_finalize(st);
	return err;
}

esim_err store_migrate(store *s, const char *const *migrations, size_t n)
{
	int64_t v;
	esim_err err = user_version(s, &v);
	if (err != ESIM_OK)
		return err;
	if (v < 0 || (uint64_t)v > n)
		return ESIM_E_STORE_MIGRATION;
	for (size_t i = (size_t)v; i < n; i++) {
		char pragma[64];
		snprintf(pragma, sizeof pragma, "PRAGMA user_version=%zu", i + 1);
		if ((err = store_begin(s)) != ESIM_OK)
			return err;
		err = store_exec(s, migrations[i]);
		if (err == ESIM_OK)
			err = store_exec(s, pragma);
		if (err != ESIM_OK) {
			store_rollback(s);
			return ESIM_E_STORE_MIGRATION;
		}
		if ((err = store_commit(s)) != ESIM_OK)
			return err;
	}
	return ESIM_OK;
}
