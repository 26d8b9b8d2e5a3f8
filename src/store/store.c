/*
 * The store layer's public functions: pick a backend from the URL, rewrite
 * SQL for its dialect, dispatch, and own what is the same everywhere:
 * transaction state, the retry loop of store_transaction, and the migration
 * procedure. The servers (SM-DP+, operator service) and the virtual eUICC
 * keep every state change that SGP.22 makes them commit to (a profile
 * reserved, downloaded, deleted) in one of these transactions.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

static const struct store_backend *backend_for(const char *url)
{
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
		return &store_pg_backend;
	if (strncmp(url, "sqlite:", 7) == 0 || strstr(url, "://") == NULL)
		return &store_sqlite_backend;
	return NULL;
}

esim_err store_open(const char *url, store **out)
{
	if (url == NULL || out == NULL)
		return ESIM_E_ARG;
	*out = NULL;
	const struct store_backend *be = backend_for(url);
	if (be == NULL)
		return ESIM_E_UNSUPPORTED;
	store *s = NULL;
	esim_err err = be->open(url, &s);
	if (err != ESIM_OK)
		return err;
	s->be = be;
	s->in_tx = false;
	*out = s;
	return ESIM_OK;
}

void store_close(store *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_cache; i++) {
		s->be->finalize(s->cache[i].st);
		free(s->cache[i].sql);
	}
	s->be->close(s);
}

const char *store_errmsg(const store *s)
{
	return s ? s->be->errmsg(s) : "no database";
}

const char *store_backend_name(const store *s)
{
	return s->be->name;
}

store_dialect store_sql_dialect(const store *s)
{
	return s->be->dialect;
}

esim_err store_exec(store *s, const char *sql)
{
	char *q = NULL;
	esim_err err = store_sql_rewrite(sql, s->be->dialect, false, &q, NULL);
	if (err != ESIM_OK)
		return err;
	err = s->be->exec(s, q);
	free(q);
	return err;
}

/*
 * Statement reuse. Preparing is a large share of a short transaction's cost
 * (SQLite parses and plans the text every time; docs/PERFORMANCE.md), and the
 * services run the same few statements over and over. So, on backends that
 * allow it, store_finalize() resets a statement and parks it in a small
 * per-connection table keyed by the caller's SQL text, and store_prepare()
 * hands a parked one back. A statement still in use is never shared: a second
 * prepare of the same text while the first is out gets a fresh statement.
 */
static store_stmt *cache_take(store *s, const char *sql)
{
	for (size_t i = 0; i < s->n_cache; i++) {
		struct store_cached *c = &s->cache[i];
		if (!c->in_use && strcmp(c->sql, sql) == 0) {
			if (s->be->reset(c->st) != ESIM_OK)
				return NULL;
			c->in_use = true;
			return c->st;
		}
	}
	return NULL;
}

static void cache_put(store *s, const char *sql, store_stmt *st)
{
	if (!s->be->cache_statements || s->n_cache == STORE_STMT_CACHE)
		return;
	char *copy = strdup(sql);
	if (copy == NULL)
		return;
	struct store_cached *c = &s->cache[s->n_cache++];
	c->sql = copy;
	c->st = st;
	c->in_use = true;
	st->cached = c;
}

esim_err store_prepare(store *s, const char *sql, store_stmt **out)
{
	if (s->be->cache_statements) {
		store_stmt *hit = cache_take(s, sql);
		if (hit != NULL) {
			*out = hit;
			return ESIM_OK;
		}
	}
	char *q = NULL;
	int nparams = 0;
	bool pg = s->be->dialect == STORE_DIALECT_POSTGRES;
	esim_err err = store_sql_rewrite(sql, s->be->dialect, pg, &q, &nparams);
	if (err != ESIM_OK)
		return err;
	err = s->be->prepare(s, q, nparams, out);
	free(q);
	if (err == ESIM_OK) {
		(*out)->s = s;
		(*out)->cached = NULL;
		cache_put(s, sql, *out);
	}
	return err;
}

void store_finalize(store_stmt *st)
{
	if (st == NULL)
		return;
	if (st->cached != NULL) {
		/* Park it: reset now so that it holds no locks or results. */
		st->s->be->reset(st);
		st->cached->in_use = false;
		return;
	}
	st->s->be->finalize(st);
}

esim_err store_reset(store_stmt *st)
{
	return st->s->be->reset(st);
}

esim_err store_bind_int64(store_stmt *st, int idx, int64_t v)
{
	return st->s->be->bind_int64(st, idx, v);
}

esim_err store_bind_text(store_stmt *st, int idx, const char *v)
{
	if (v == NULL)
		return st->s->be->bind_null(st, idx);
	return st->s->be->bind_text(st, idx, v);
}

esim_err store_bind_blob(store_stmt *st, int idx, const void *p, size_t n)
{
	if (n > INT32_MAX)
		return ESIM_E_TOO_LARGE;
	if (p == NULL && n != 0)
		return ESIM_E_ARG;
	return st->s->be->bind_blob(st, idx, p, n);
}

esim_err store_bind_null(store_stmt *st, int idx)
{
	return st->s->be->bind_null(st, idx);
}

esim_err store_step(store_stmt *st, bool *row)
{
	*row = false;
	return st->s->be->step(st, row);
}

esim_err store_run(store_stmt *st)
{
	bool row = true;
	esim_err err;
	while ((err = store_step(st, &row)) == ESIM_OK && row)
		;
	return err;
}

esim_err store_run_at_commit(store_stmt *st)
{
	if (!st->s->in_tx || st->s->be->run_at_commit == NULL)
		return store_run(st);
	return st->s->be->run_at_commit(st);
}

esim_err store_run_id(store_stmt *st, int64_t *id)
{
	bool row = false;
	esim_err err = store_step(st, &row);
	if (err != ESIM_OK)
		return err;
	if (!row)
		return ESIM_E_NOT_FOUND;
	*id = store_col_int64(st, 0);
	return store_run(st);
}

int64_t store_col_int64(store_stmt *st, int col)
{
	return st->s->be->col_int64(st, col);
}

const char *store_col_text(store_stmt *st, int col)
{
	return st->s->be->col_text(st, col);
}

const uint8_t *store_col_blob(store_stmt *st, int col, size_t *len)
{
	*len = 0;
	return st->s->be->col_blob(st, col, len);
}

bool store_col_is_null(store_stmt *st, int col)
{
	return st->s->be->col_is_null(st, col);
}

static esim_err begin_tx(store *s, bool lazy, bool read_committed)
{
	if (s->in_tx)
		return ESIM_E_STORE_STATE;
	s->read_committed = read_committed;
	esim_err err = s->be->begin(s, lazy);
	if (err == ESIM_OK) {
		s->in_tx = true;
		s->lazy = lazy;
		s->want_durable = false;
	}
	return err;
}

esim_err store_begin(store *s)
{
	return begin_tx(s, false, false);
}

esim_err store_begin_lazy(store *s)
{
	return begin_tx(s, true, false);
}

void store_make_durable(store *s)
{
	if (s->in_tx)
		s->want_durable = true;
}

esim_err store_commit(store *s)
{
	if (!s->in_tx)
		return ESIM_E_STORE_STATE;
	/* Whatever happens, no transaction is open afterwards (the backend
	 * rolls back a commit that failed). */
	s->in_tx = false;
	return s->be->commit(s, !s->lazy || s->want_durable);
}

esim_err store_rollback(store *s)
{
	if (!s->in_tx)
		return ESIM_E_STORE_STATE;
	s->in_tx = false;
	return s->be->rollback(s);
}

/* A short wait before retrying a transaction that lost a conflict: random,
 * so that two losers do not collide again in lock step, and growing with
 * the number of attempts. */
static void backoff(unsigned attempt, unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	unsigned cap_us = 200u << (attempt < 6 ? attempt : 6); /* 0.2 .. 12.8 ms */
	struct timespec ts = {0, (long)((*seed >> 8) % cap_us) * 1000L};
	nanosleep(&ts, NULL);
}

static esim_err run_tx(store *s, unsigned opts, store_tx_fn fn, void *arg, unsigned max_tries)
{
	bool lazy = (opts & STORE_TX_LAZY) != 0;
	bool rc = (opts & STORE_TX_READ_COMMITTED) != 0;
	if (max_tries == 0)
		max_tries = 100;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	unsigned seed = (unsigned)now.tv_nsec ^ (unsigned)(uintptr_t)&now;
	esim_err err = ESIM_E_STORE_BUSY;
	for (unsigned attempt = 0; attempt < max_tries; attempt++) {
		if (attempt > 0)
			backoff(attempt, &seed);
		err = begin_tx(s, lazy, rc);
		if (err == ESIM_E_STORE_BUSY)
			continue;
		if (err != ESIM_OK)
			return err;
		err = fn(s, arg);
		if (err != ESIM_OK) {
			store_rollback(s);
			if (err == ESIM_E_STORE_BUSY)
				continue;
			return err;
		}
		err = store_commit(s);
		if (err != ESIM_E_STORE_BUSY)
			return err;
	}
	return err;
}

esim_err store_transaction(store *s, store_tx_fn fn, void *arg, unsigned max_tries)
{
	return run_tx(s, 0, fn, arg, max_tries);
}

esim_err store_transaction_lazy(store *s, store_tx_fn fn, void *arg, unsigned max_tries)
{
	return run_tx(s, STORE_TX_LAZY, fn, arg, max_tries);
}

esim_err store_transaction_opts(store *s, unsigned opts, store_tx_fn fn, void *arg,
				unsigned max_tries)
{
	if (opts & ~(STORE_TX_LAZY | STORE_TX_READ_COMMITTED))
		return ESIM_E_ARG;
	return run_tx(s, opts, fn, arg, max_tries);
}

int64_t store_last_insert_id(store *s)
{
	return s->be->last_insert_id(s);
}

int64_t store_changes(store *s)
{
	return s->be->changes(s);
}

/* One migration step: inside one transaction, read the version, run the
 * migration it calls for and bump the version. *done when there was
 * nothing left to do. */
static esim_err migrate_step(store *s, const char *const *migrations, size_t n, bool *done)
{
	int64_t v = 0;
	esim_err err = s->be->get_version(s, &v);
	if (err != ESIM_OK)
		return err;
	if (v < 0 || (uint64_t)v > n)
		return ESIM_E_STORE_MIGRATION;
	if ((uint64_t)v == n) {
		*done = true;
		return ESIM_OK;
	}
	err = store_exec(s, migrations[v]);
	if (err == ESIM_E_STORE_BUSY)
		return err;
	if (err == ESIM_OK)
		err = s->be->set_version(s, v + 1);
	return err == ESIM_OK || err == ESIM_E_STORE_BUSY ? err : ESIM_E_STORE_MIGRATION;
}

esim_err store_migrate(store *s, const char *const *migrations, size_t n)
{
	if (s->in_tx)
		return ESIM_E_STORE_STATE;
	esim_err err = s->be->prepare_version(s);
	if (err != ESIM_OK)
		return err;
	unsigned busy = 0;
	while (err == ESIM_OK || (err == ESIM_E_STORE_BUSY && ++busy < 50)) {
		bool done = false;
		err = store_begin(s);
		if (err != ESIM_OK)
			continue;
		err = migrate_step(s, migrations, n, &done);
		if (err != ESIM_OK) {
			store_rollback(s);
			continue;
		}
		err = store_commit(s);
		if (err == ESIM_OK && done)
			return ESIM_OK;
	}
	return err;
}
