/*
 * Inside the store layer: the backend table that store.c dispatches on, and
 * the SQL rewriter the backends share. Not a public header.
 *
 * A backend's handle types embed `struct store` / `struct store_stmt` as
 * their first member, so that store.c sees only the common part and the
 * backend casts back to its own type.
 */
#ifndef ESIM_STORE_INT_H
#define ESIM_STORE_INT_H

#include "esim/store.h"

struct store_backend;

/* Prepared statements kept for reuse, keyed by their SQL text as the caller
 * wrote it (see store_prepare in store.c). */
#define STORE_STMT_CACHE 48

struct store_cached {
	char *sql; /* the caller's text, before rewriting */
	store_stmt *st;
	bool in_use; /* handed out and not yet finalized */
};

struct store {
	const struct store_backend *be;
	bool in_tx;
	bool lazy;	     /* the open transaction was begun lazily */
	bool want_durable;   /* ... and must be committed durably after all */
	bool read_committed; /* the next/open transaction: READ COMMITTED (PostgreSQL) */
	struct store_cached cache[STORE_STMT_CACHE];
	size_t n_cache;
};

struct store_stmt {
	store *s;
	struct store_cached *cached; /* its cache slot, or NULL */
};

struct store_backend {
	const char *name;
	store_dialect dialect;
	/* Whether statements may be kept across store_finalize and reused. */
	bool cache_statements;
	esim_err (*open)(const char *url, store **out);
	void (*close)(store *s);
	const char *(*errmsg)(const store *s);
	/* sql has already been through store_sql_rewrite. */
	esim_err (*exec)(store *s, const char *sql);
	esim_err (*prepare)(store *s, const char *sql, int nparams, store_stmt **out);
	void (*finalize)(store_stmt *st);
	esim_err (*reset)(store_stmt *st);
	esim_err (*bind_int64)(store_stmt *st, int idx, int64_t v);
	esim_err (*bind_text)(store_stmt *st, int idx, const char *v);
	esim_err (*bind_blob)(store_stmt *st, int idx, const void *p, size_t n);
	esim_err (*bind_null)(store_stmt *st, int idx);
	esim_err (*step)(store_stmt *st, bool *row);
	/* store_run_at_commit inside a transaction; NULL: store_run. */
	esim_err (*run_at_commit)(store_stmt *st);
	int64_t (*col_int64)(store_stmt *st, int col);
	const char *(*col_text)(store_stmt *st, int col);
	const uint8_t *(*col_blob)(store_stmt *st, int col, size_t *len);
	bool (*col_is_null)(store_stmt *st, int col);
	/* Transactions: store.c keeps in_tx and calls these at the right time.
	 * begin(lazy): lazy transactions need not reach stable storage at
	 * COMMIT; s->read_committed asks for READ COMMITTED isolation where
	 * the backend has it.
	 * COMMIT. commit(durable): true for every transaction that was not
	 * begun lazily and for a lazy one that store_make_durable() upgraded;
	 * when it returns ESIM_OK the transaction is on stable storage. commit
	 * must leave no transaction open when it fails. */
	esim_err (*begin)(store *s, bool lazy);
	esim_err (*commit)(store *s, bool durable);
	esim_err (*rollback)(store *s);
	int64_t (*last_insert_id)(store *s);
	int64_t (*changes)(store *s);
	/* Schema version bookkeeping for store_migrate. prepare_version runs
	 * outside a transaction (it may create the bookkeeping table); get and
	 * set run inside the migration's transaction. */
	esim_err (*prepare_version)(store *s);
	esim_err (*get_version)(store *s, int64_t *v);
	esim_err (*set_version)(store *s, int64_t v);
};

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

/*
 * Rewrite SQL for a dialect: {{TOKEN}} placeholders are replaced (see
 * store.h), and when dollar_params is set, ?N becomes $N and a bare ?
 * becomes $(highest so far + 1). String literals ('...', E'...'),
 * quoted identifiers, dollar-quoted bodies and comments are copied as they
 * are. *nparams: the highest parameter number seen. *out: caller frees.
 * ESIM_E_STORE_SQL for an unknown token, an unterminated literal or
 * comment, or a parameter number outside 1..999.
 */
esim_err store_sql_rewrite(const char *sql, store_dialect d, bool dollar_params, char **out,
			   int *nparams);

#endif
