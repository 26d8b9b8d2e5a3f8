/*
 * store: a small SQL layer shared by the eUICC, the SM-DP+ and the operator
 * service. Prepared statements with numbered parameters (?1, ?2, ...),
 * explicit transactions, and numbered schema migrations.
 *
 * Backends: SQLite (the embedded default: "sqlite:PATH", a plain PATH, or
 * ":memory:"). The database is opened in WAL mode with synchronous=FULL, so
 * a committed transaction survives a crash or power loss: every state
 * change that matters is durable before it is acknowledged.
 *
 * Ownership: store_open() gives a handle freed by store_close(); statements
 * from store_prepare() are freed by store_finalize() (before the store is
 * closed). Text and blob columns are borrowed until the next step, reset or
 * finalize of their statement.
 */
#ifndef ESIM_STORE_H
#define ESIM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esim/err.h"

typedef struct store store;
typedef struct store_stmt store_stmt;

esim_err store_open(const char *url, store **out);
void store_close(store *s);
/* The backend's last error message (for logs); never NULL. */
const char *store_errmsg(const store *s);

/* Run one or more statements without parameters or results. */
esim_err store_exec(store *s, const char *sql);

esim_err store_prepare(store *s, const char *sql, store_stmt **out);
void store_finalize(store_stmt *st);
esim_err store_reset(store_stmt *st); /* also clears bindings */

/* Parameters are numbered from 1; text and blobs are copied. */
esim_err store_bind_int64(store_stmt *st, int idx, int64_t v);
esim_err store_bind_text(store_stmt *st, int idx, const char *v); /* NULL binds NULL */
esim_err store_bind_blob(store_stmt *st, int idx, const void *p, size_t n);
esim_err store_bind_null(store_stmt *st, int idx);

/* Advance: *row is true when a result row is available, false when done. */
esim_err store_step(store_stmt *st, bool *row);
/* Run a statement that returns no rows (step to completion). */
esim_err store_run(store_stmt *st);

/* Columns are numbered from 0. */
int64_t store_col_int64(store_stmt *st, int col);
const char *store_col_text(store_stmt *st, int col); /* NULL for SQL NULL */
const uint8_t *store_col_blob(store_stmt *st, int col, size_t *len);
bool store_col_is_null(store_stmt *st, int col);

/* Transactions. store_begin takes the write lock at once, so two writers
 * never deadlock half-way through. */
esim_err store_begin(store *s);
esim_err store_commit(store *s);
esim_err store_rollback(store *s);

int64_t store_last_insert_id(store *s);
int64_t store_changes(store *s);

/* Bring the schema to version n by running migrations[v] for every
 * v >= the current version, each in its own transaction. A database with a
 * newer schema than n is refused (ESIM_E_STORE_MIGRATION). */
esim_err store_migrate(store *s, const char *const *migrations, size_t n);

#endif
