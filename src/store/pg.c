/*
 * The PostgreSQL backend of the store layer (libpq), for SM-DP+ and
 * operator deployments that run several server instances on one database
 * (ARCHITECTURE.md, "Where this can grow").
 *
 * Statements are prepared on the server (PQprepare) under a name of their
 * own and described once, which tells the parameter types the server
 * inferred and the result column types. Parameters go as text, except
 * blobs, which go as binary bytea (a blob bound where the server inferred
 * another type makes the statement be prepared again with bytea there).
 * Results come back in binary when they hold a bytea column and every
 * column is of a type decoded here (integers, bool, text, bytea); otherwise
 * in text, with bytea's hex form decoded on demand. A step runs the
 * statement once and then walks the rows of the one PGresult.
 *
 * Statements are kept per connection and reused (store.c's cache), so a
 * statement costs one round trip (Bind/Execute) after its first use.
 *
 * Transactions are SERIALIZABLE (see store.h for why), or READ COMMITTED
 * when the caller asks (store_transaction_opts); serialization
 * failures and deadlocks come back as ESIM_E_STORE_BUSY. Schema versions
 * live in the one-row table esim_schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "store/store_int.h"

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); stable across versions. */
#define PG_BOOL	   16
#define PG_BYTEA   17
#define PG_CHAR	   18
#define PG_NAME	   19
#define PG_INT8	   20
#define PG_INT2	   21
#define PG_INT4	   23
#define PG_TEXT	   25
#define PG_OID	   26
#define PG_BPCHAR  1042
#define PG_VARCHAR 1043

struct pg_store {
	struct store base;
	PGconn *conn;
	int64_t changes;
	unsigned next_name;
	esim_err tx_err; /* first failure inside the open transaction */
	/* a BEGIN not yet sent: it goes with the transaction's first statement
	 * (pg_begin); NULL when none is pending */
	const char *begin_sql;
	bool begin_lazy; /* the BEGIN goes with `SET synchronous_commit TO off` */
	/* The session's own synchronous_commit (see pg_begin): sc_off once a
	 * transaction that set it off has committed; sc_set_in_tx while the
	 * open transaction sets it (a rollback undoes that SET). */
	bool sc_off;
	bool sc_set_in_tx;
	/* the session's default isolation is READ COMMITTED; implicit: the
	 * pipeline of pg_commit sends neither BEGIN nor COMMIT (see there) */
	bool default_rc, implicit;
	/* statements of store_run_at_commit not sent yet: they go in one
	 * pipeline with the COMMIT (or with the next statement) */
	struct pg_deferred *deferred;
	size_t n_deferred, cap_deferred;
	char **stale; /* prepared statements still to DEALLOCATE */
	size_t n_stale, cap_stale;
	char errmsg[512];
};

enum pg_state { PG_READY, PG_ROWS, PG_DONE };

/* A statement's execution kept for later: its name and its own copy of the
 * bound values. */
struct pg_deferred {
	char name[32];
	int nparams;
	char **vals;
	int *lens;
	int *fmts;
};

static void deferred_free(struct pg_deferred *d)
{
	for (int i = 0; d->vals != NULL && i < d->nparams; i++)
		free(d->vals[i]);
	free(d->vals);
	free(d->lens);
	free(d->fmts);
	*d = (struct pg_deferred){0};
}

static void drop_deferred(struct pg_store *ps)
{
	for (size_t i = 0; i < ps->n_deferred; i++)
		deferred_free(&ps->deferred[i]);
	ps->n_deferred = 0;
}

struct pg_col {
	uint8_t *p; /* decoded bytea or formatted integer, NUL-terminated */
	size_t len;
	bool done;
};

struct pg_stmt {
	struct store_stmt base;
	char *sql;
	char name[32];
	int nparams;
	Oid *ptypes;
	char **vals; /* owned copies; NULL binds SQL NULL */
	int *lens;
	int *fmts;
	int result_format;
	PGresult *res;
	int row;
	int nfields;
	enum pg_state state;
	struct pg_col *cols;
};

static struct pg_store *ps_of(const store *s)
{
	return (struct pg_store *)s;
}

static struct pg_stmt *pst_of(store_stmt *st)
{
	return (struct pg_stmt *)st;
}

static void set_msg(struct pg_store *ps, const char *msg)
{
	snprintf(ps->errmsg, sizeof ps->errmsg, "%s", msg ? msg : "");
	size_t n = strlen(ps->errmsg);
	while (n > 0 && (ps->errmsg[n - 1] == '\n' || ps->errmsg[n - 1] == ' '))
		ps->errmsg[--n] = '\0';
}

static esim_err map_sqlstate(const char *st)
{
	if (st == NULL || strlen(st) != 5)
		return ESIM_E_STORE_SQL;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
		return ESIM_E_STORE_BUSY;
	if (strncmp(st, "23", 2) == 0)
		return ESIM_E_STORE_CONSTRAINT;
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0)
		return ESIM_E_STORE_CONNECTION;
	if (strcmp(st, "25P02") == 0)
		return ESIM_E_STORE_STATE; /* a statement after an error in a transaction */
	if (strcmp(st, "53100") == 0)
		return ESIM_E_IO;
	if (strcmp(st, "53200") == 0)
		return ESIM_E_NOMEM;
	if (strncmp(st, "XX00", 4) == 0 && (st[4] == '1' || st[4] == '2'))
		return ESIM_E_STORE_CORRUPT;
	return ESIM_E_STORE_SQL;
}

/* Check a result: ESIM_OK for a successful command or query; otherwise
 * the mapped error, with the server's message kept for store_errmsg. Also
 * keeps store_changes() and the transaction's first failure up to date. */
static esim_err check(struct pg_store *ps, const PGresult *res)
{
	ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
		const char *tag = PQcmdStatus((PGresult *)res);
		if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
		    strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0)
			ps->changes = strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
		return ESIM_OK;
	}
	esim_err err;
	if (res == NULL) {
		set_msg(ps, PQerrorMessage(ps->conn));
		err = PQstatus(ps->conn) == CONNECTION_BAD ? ESIM_E_STORE_CONNECTION : ESIM_E_NOMEM;
	} else {
		const char *msg = PQresultErrorMessage(res);
		set_msg(ps, msg && *msg ? msg : PQerrorMessage(ps->conn));
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state == NULL && PQstatus(ps->conn) == CONNECTION_BAD)
			err = ESIM_E_STORE_CONNECTION;
		else
			err = map_sqlstate(state);
	}
	if (ps->base.in_tx && ps->tx_err == ESIM_OK)
		ps->tx_err = err;
	return err;
}

static esim_err run_now(struct pg_store *ps, const char *sql)
{
	PGresult *res = PQexec(ps->conn, sql);
	esim_err err = check(ps, res);
	PQclear(res);
	return err;
}

static esim_err pipeline(struct pg_store *ps, struct pg_stmt *st, bool commit, bool upgrade,
			 PGresult **out);

#define SC_OFF "SET synchronous_commit TO off" /* session-wide: see pg_begin */

/* Send a pending BEGIN on its own (before SQL text that is not a prepared
 * statement: store_exec, the schema version), with the deferred statements
 * of store_run_at_commit if there are any. */
static esim_err send_begin(struct pg_store *ps)
{
	if (ps->n_deferred > 0)
		return pipeline(ps, NULL, false, false, NULL);
	const char *b = ps->begin_sql;
	if (b == NULL)
		return ESIM_OK;
	ps->begin_sql = NULL;
	esim_err err = run_now(ps, b);
	if (err == ESIM_OK && ps->begin_lazy)
		err = run_now(ps, SC_OFF);
	return err;
}

/* Outside a transaction every statement that may write commits durably: a
 * session whose synchronous_commit a lazy transaction turned off gets it
 * back first (a statement that begins with SELECT is taken to write
 * nothing; no statement of the store layer's users writes from a SELECT). */
static esim_err autocommit_durable(struct pg_store *ps, const char *sql)
{
	/* (not while a transaction is open on the server: the ROLLBACK that
	 * ends one runs after store.c has cleared in_tx) */
	if (ps->base.in_tx || !ps->sc_off || PQtransactionStatus(ps->conn) != PQTRANS_IDLE)
		return ESIM_OK;
	if (sql != NULL) {
		while (*sql == ' ' || *sql == '\t' || *sql == '\n')
			sql++;
		if (strncasecmp(sql, "SELECT", 6) == 0)
			return ESIM_OK;
	}
	esim_err err = run_now(ps, "SET synchronous_commit TO on");
	if (err == ESIM_OK)
		ps->sc_off = false;
	return err;
}

static esim_err run(struct pg_store *ps, const char *sql)
{
	esim_err err = send_begin(ps);
	if (err == ESIM_OK)
		err = autocommit_durable(ps, NULL);
	if (err != ESIM_OK)
		return err;
	PGresult *res = PQexec(ps->conn, sql);
	err = check(ps, res);
	PQclear(res);
	return err;
}

/* DEALLOCATE fails inside a failed transaction; such names wait here until
 * the transaction is over. */
static void drop_prepared(struct pg_store *ps, const char *name)
{
	char sql[64];
	/* (a deferred statement may still name it: after the transaction) */
	if (ps->n_deferred == 0 && PQtransactionStatus(ps->conn) != PQTRANS_INERROR) {
		snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
		PQclear(PQexec(ps->conn, sql));
		return;
	}
	if (ps->n_stale == ps->cap_stale) {
		size_t cap = ps->cap_stale ? ps->cap_stale * 2 : 8;
		char **p = realloc(ps->stale, cap * sizeof *p);
		if (p == NULL)
			return; /* the server frees it with the session */
		ps->stale = p;
		ps->cap_stale = cap;
	}
	ps->stale[ps->n_stale] = strdup(name);
	if (ps->stale[ps->n_stale] != NULL)
		ps->n_stale++;
}

static void flush_stale(struct pg_store *ps)
{
	char sql[64];
	for (size_t i = 0; i < ps->n_stale; i++) {
		snprintf(sql, sizeof sql, "DEALLOCATE %s", ps->stale[i]);
		PQclear(PQexec(ps->conn, sql));
		free(ps->stale[i]);
	}
	ps->n_stale = 0;
}

static void ignore_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* e.g. "relation already exists, skipping" */
}

static void pg_close(store *s)
{
	struct pg_store *ps = ps_of(s);
	PQfinish(ps->conn);
	drop_deferred(ps);
	free(ps->deferred);
	for (size_t i = 0; i < ps->n_stale; i++)
		free(ps->stale[i]);
	free(ps->stale);
	free(ps);
}

static esim_err pg_open(const char *url, store **out)
{
	struct pg_store *ps = calloc(1, sizeof *ps);
	if (ps == NULL)
		return ESIM_E_NOMEM;
	/* The URL first (expanded), then what we insist on. */
	const char *const keys[] = {"dbname", "client_encoding", "application_name", NULL};
	const char *const vals[] = {url, "UTF8", "esimkit", NULL};
	ps->conn = PQconnectdbParams(keys, vals, 1);
	if (ps->conn == NULL) {
		free(ps);
		return ESIM_E_NOMEM;
	}
	if (PQstatus(ps->conn) != CONNECTION_OK) {
		pg_close(&ps->base);
		return ESIM_E_STORE_OPEN;
	}
	PQsetNoticeProcessor(ps->conn, ignore_notice, NULL);
	/* The text-mode decoder below reads the hex form only. */
	esim_err err = run(ps, "SET bytea_output = 'hex'");
	if (err != ESIM_OK) {
		pg_close(&ps->base);
		return ESIM_E_STORE_OPEN;
	}
	PGresult *res = PQexec(ps->conn, "SHOW default_transaction_isolation");
	ps->default_rc = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			 strcmp(PQgetvalue(res, 0, 0), "read committed") == 0;
	PQclear(res);
	*out = &ps->base;
	return ESIM_OK;
}

static const char *pg_errmsg(const store *s)
{
	const struct pg_store *ps = (const struct pg_store *)s;
	return ps->errmsg[0] ? ps->errmsg : "no error";
}

static esim_err pg_exec(store *s, const char *sql)
{
	return run(ps_of(s), sql);
}

static bool binary_decodable(Oid t)
{
	switch (t) {
	case PG_BOOL:
	case PG_BYTEA:
	case PG_CHAR:
	case PG_NAME:
	case PG_INT8:
	case PG_INT2:
	case PG_INT4:
	case PG_TEXT:
	case PG_OID:
	case PG_BPCHAR:
	case PG_VARCHAR:
		return true;
	default:
		return false;
	}
}

/* Prepare sql under a fresh name with the given parameter types (NULL: let
 * the server infer them), describe it, and take over the name, the
 * parameter types and the result format. */
static esim_err prepare_named(struct pg_stmt *st, const Oid *types, int ntypes)
{
	struct pg_store *ps = ps_of(st->base.s);
	char name[32];
	snprintf(name, sizeof name, "esim_%u", ps->next_name++);
	/* inside the transaction, not one of its own (first use only) */
	esim_err err = send_begin(ps);
	if (err != ESIM_OK)
		return err;
	PGresult *res = PQprepare(ps->conn, name, st->sql, ntypes, types);
	err = check(ps, res);
	PQclear(res);
	if (err != ESIM_OK)
		return err;
	res = PQdescribePrepared(ps->conn, name);
	err = check(ps, res);
	if (err != ESIM_OK) {
		PQclear(res);
		drop_prepared(ps, name);
		return err;
	}
	int np = PQnparams(res);
	Oid *pt = calloc((size_t)np + 1, sizeof *pt);
	if (pt == NULL) {
		PQclear(res);
		drop_prepared(ps, name);
		return ESIM_E_NOMEM;
	}
	for (int i = 0; i < np; i++)
		pt[i] = PQparamtype(res, i);
	bool has_bytea = false, decodable = true;
	for (int i = 0; i < PQnfields(res); i++) {
		has_bytea |= PQftype(res, i) == PG_BYTEA;
		decodable &= binary_decodable(PQftype(res, i));
	}
	PQclear(res);
	if (st->name[0] != '\0')
		drop_prepared(ps, st->name);
	memcpy(st->name, name, sizeof name);
	free(st->ptypes);
	st->ptypes = pt;
	st->nparams = np;
	st->result_format = has_bytea && decodable ? 1 : 0;
	return ESIM_OK;
}

static void clear_result(struct pg_stmt *st)
{
	for (int i = 0; st->cols != NULL && i < st->nfields; i++)
		free(st->cols[i].p);
	free(st->cols);
	st->cols = NULL;
	PQclear(st->res);
	st->res = NULL;
	st->nfields = 0;
	st->row = -1;
}

static void clear_bindings(struct pg_stmt *st)
{
	for (int i = 0; i < st->nparams; i++) {
		free(st->vals[i]);
		st->vals[i] = NULL;
		st->lens[i] = 0;
		st->fmts[i] = 0;
	}
}

static void pg_finalize(store_stmt *base)
{
	struct pg_stmt *st = pst_of(base);
	clear_result(st);
	if (st->vals != NULL)
		clear_bindings(st);
	if (st->name[0] != '\0')
		drop_prepared(ps_of(base->s), st->name);
	free(st->vals);
	free(st->lens);
	free(st->fmts);
	free(st->ptypes);
	free(st->sql);
	free(st);
}

static esim_err alloc_bindings(struct pg_stmt *st)
{
	size_t n = (size_t)st->nparams + 1;
	st->vals = calloc(n, sizeof *st->vals);
	st->lens = calloc(n, sizeof *st->lens);
	st->fmts = calloc(n, sizeof *st->fmts);
	return st->vals && st->lens && st->fmts ? ESIM_OK : ESIM_E_NOMEM;
}

static esim_err pg_prepare(store *s, const char *sql, int nparams, store_stmt **out)
{
	(void)nparams; /* the server's description is what counts */
	struct pg_store *ps = ps_of(s);
	if (ps->n_stale > 0 && ps->n_deferred == 0 &&
	    PQtransactionStatus(ps->conn) != PQTRANS_INERROR)
		flush_stale(ps);
	struct pg_stmt *st = calloc(1, sizeof *st);
	if (st == NULL)
		return ESIM_E_NOMEM;
	st->base.s = s;
	st->row = -1;
	st->sql = strdup(sql);
	esim_err err = st->sql ? prepare_named(st, NULL, 0) : ESIM_E_NOMEM;
	if (err == ESIM_OK)
		err = alloc_bindings(st);
	if (err != ESIM_OK) {
		pg_finalize(&st->base);
		return err;
	}
	*out = &st->base;
	return ESIM_OK;
}

static esim_err pg_reset(store_stmt *base)
{
	struct pg_stmt *st = pst_of(base);
	clear_result(st);
	clear_bindings(st);
	st->state = PG_READY;
	return ESIM_OK;
}

static esim_err bind_value(store_stmt *base, int idx, const void *p, size_t n, int fmt)
{
	struct pg_stmt *st = pst_of(base);
	if (st->state != PG_READY || idx < 1 || idx > st->nparams)
		return ESIM_E_STORE_STATE;
	char *copy = NULL;
	if (p != NULL) {
		/* One spare byte: text values stay NUL-terminated, and an
		 * empty blob is a non-NULL pointer (NULL would mean SQL NULL). */
		copy = malloc(n + 1);
		if (copy == NULL)
			return ESIM_E_NOMEM;
		if (n)
			memcpy(copy, p, n);
		copy[n] = '\0';
	}
	free(st->vals[idx - 1]);
	st->vals[idx - 1] = copy;
	st->lens[idx - 1] = (int)n;
	st->fmts[idx - 1] = fmt;
	return ESIM_OK;
}

static esim_err pg_bind_int64(store_stmt *st, int idx, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
	return bind_value(st, idx, buf, (size_t)n, 0);
}

static esim_err pg_bind_text(store_stmt *st, int idx, const char *v)
{
	return bind_value(st, idx, v, strlen(v), 0);
}

static esim_err pg_bind_blob(store_stmt *st, int idx, const void *p, size_t n)
{
	return bind_value(st, idx, p ? p : "", n, 1);
}

static esim_err pg_bind_null(store_stmt *st, int idx)
{
	return bind_value(st, idx, NULL, 0, 0);
}

/* A blob bound where the server inferred another type: prepare again with
 * bytea for every blob parameter, so that the binary value is read as one. */
static esim_err retype_blobs(struct pg_stmt *st)
{
	bool need = false;
	for (int i = 0; i < st->nparams; i++)
		need |= st->fmts[i] == 1 && st->ptypes[i] != PG_BYTEA;
	if (!need)
		return ESIM_OK;
	int np = st->nparams;
	Oid *types = calloc((size_t)np + 1, sizeof *types);
	if (types == NULL)
		return ESIM_E_NOMEM;
	for (int i = 0; i < np; i++)
		types[i] = st->fmts[i] == 1 ? PG_BYTEA : st->ptypes[i];
	esim_err err = prepare_named(st, types, np);
	free(types);
	if (err == ESIM_OK && st->nparams != np)
		err = ESIM_E_INTERNAL; /* cannot happen: same text, same count */
	return err;
}

/* One pipeline, one round trip: the pending BEGIN (and the SET of a
 * lazy transaction), the deferred statements of store_run_at_commit, then
 * either st (its result in *out, for the caller to check) or, with commit,
 * `SET LOCAL synchronous_commit TO on` when upgrade and the COMMIT. Every
 * result is checked in order; after a failure the server skips the rest up
 * to the Sync (PGRES_PIPELINE_ABORTED, the transaction left failed), and
 * the first failure is returned. */
static esim_err pipeline(struct pg_store *ps, struct pg_stmt *st, bool commit, bool upgrade,
			 PGresult **out)
{
	if (out != NULL)
		*out = NULL;
	PGconn *c = ps->conn;
	const char *b = ps->begin_sql;
	ps->begin_sql = NULL;
	if (!PQenterPipelineMode(c)) {
		drop_deferred(ps);
		set_msg(ps, PQerrorMessage(c));
		return ESIM_E_STORE_CONNECTION;
	}
	int nq = 0;
	bool sent = true;
	bool implicit = ps->implicit;
	ps->implicit = false;
	if (b != NULL) {
		if (!implicit) {
			sent = PQsendQueryParams(c, b, 0, NULL, NULL, NULL, NULL, 0);
			nq++;
		}
		if (sent && ps->begin_lazy) {
			sent = PQsendQueryParams(c, SC_OFF, 0, NULL, NULL, NULL, NULL, 0);
			nq++;
		}
	}
	for (size_t i = 0; sent && i < ps->n_deferred; i++) {
		const struct pg_deferred *d = &ps->deferred[i];
		sent = PQsendQueryPrepared(c, d->name, d->nparams, (const char *const *)d->vals,
					   d->lens, d->fmts, 0);
		nq++;
	}
	if (sent && st != NULL) {
		sent = PQsendQueryPrepared(c, st->name, st->nparams, (const char *const *)st->vals,
					   st->lens, st->fmts, st->result_format);
		nq++;
	}
	if (sent && commit && upgrade) {
		sent = PQsendQueryParams(c, "SET LOCAL synchronous_commit TO on", 0, NULL, NULL,
					 NULL, NULL, 0);
		nq++;
	}
	if (sent && commit && !implicit) {
		sent = PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
		nq++;
	}
	sent = sent && PQpipelineSync(c);
	drop_deferred(ps);
	if (!sent) {
		set_msg(ps, PQerrorMessage(c));
		return ESIM_E_STORE_CONNECTION; /* the connection is unusable */
	}
	esim_err err = ESIM_OK;
	for (int i = 0; i < nq; i++) {
		PGresult *r = PQgetResult(c);
		if (r == NULL) {
			set_msg(ps, PQerrorMessage(c));
			if (out != NULL) {
				PQclear(*out);
				*out = NULL;
			}
			return ESIM_E_STORE_CONNECTION;
		}
		if (st != NULL && i == nq - 1 && err == ESIM_OK) {
			*out = r;
		} else {
			esim_err e =
			    PQresultStatus(r) == PGRES_PIPELINE_ABORTED ? ESIM_OK : check(ps, r);
			/* COMMIT of a failed transaction "succeeds" as a ROLLBACK */
			if (e == ESIM_OK && commit && !implicit && i == nq - 1 &&
			    strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
				e = ps->tx_err != ESIM_OK ? ps->tx_err : ESIM_E_STORE_STATE;
				set_msg(ps,
					"transaction rolled back: a statement in it had failed");
			}
			if (err == ESIM_OK)
				err = e;
			PQclear(r);
		}
		PGresult *end = PQgetResult(c); /* NULL: this query's results are over */
		PQclear(end);
	}
	PGresult *sync = PQgetResult(c);
	bool synced = sync != NULL && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
	PQclear(sync);
	if (!synced || !PQexitPipelineMode(c)) {
		set_msg(ps, PQerrorMessage(c));
		if (out != NULL) {
			PQclear(*out);
			*out = NULL;
		}
		return ESIM_E_STORE_CONNECTION;
	}
	return err;
}

/* store_run_at_commit: keep the statement's execution (its name and a copy
 * of its bindings) for the pipeline of the COMMIT or of the next statement. */
static esim_err pg_run_at_commit(store_stmt *base)
{
	struct pg_stmt *st = pst_of(base);
	struct pg_store *ps = ps_of(base->s);
	clear_result(st);
	esim_err err = retype_blobs(st);
	if (err != ESIM_OK)
		return err;
	if (ps->n_deferred == ps->cap_deferred) {
		size_t cap = ps->cap_deferred ? ps->cap_deferred * 2 : 4;
		struct pg_deferred *p = realloc(ps->deferred, cap * sizeof *p);
		if (p == NULL)
			return ESIM_E_NOMEM;
		ps->deferred = p;
		ps->cap_deferred = cap;
	}
	struct pg_deferred *d = &ps->deferred[ps->n_deferred];
	memcpy(d->name, st->name, sizeof d->name);
	d->nparams = st->nparams;
	d->vals = st->vals;
	d->lens = st->lens;
	d->fmts = st->fmts;
	st->vals = NULL;
	st->lens = NULL;
	st->fmts = NULL;
	if ((err = alloc_bindings(st)) != ESIM_OK) {
		/* give the values back: the statement stays as it was */
		free(st->vals);
		free(st->lens);
		free(st->fmts);
		st->vals = d->vals;
		st->lens = d->lens;
		st->fmts = d->fmts;
		*d = (struct pg_deferred){0};
		return err;
	}
	ps->n_deferred++;
	ps->changes = -1;
	st->state = PG_DONE;
	return ESIM_OK;
}

static esim_err execute(struct pg_stmt *st)
{
	struct pg_store *ps = ps_of(st->base.s);
	esim_err err = retype_blobs(st);
	if (err != ESIM_OK)
		return err;
	PGresult *res = NULL;
	if (ps->begin_sql != NULL || ps->n_deferred > 0) {
		if ((err = pipeline(ps, st, false, false, &res)) != ESIM_OK)
			return err;
	} else {
		if ((err = autocommit_durable(ps, st->sql)) != ESIM_OK)
			return err;
		res = PQexecPrepared(ps->conn, st->name, st->nparams, (const char *const *)st->vals,
				     st->lens, st->fmts, st->result_format);
	}
	err = check(ps, res);
	if (err != ESIM_OK) {
		PQclear(res);
		return err;
	}
	st->res = res;
	st->row = -1;
	st->nfields = PQresultStatus(res) == PGRES_TUPLES_OK ? PQnfields(res) : 0;
	if (st->nfields > 0) {
		st->cols = calloc((size_t)st->nfields, sizeof *st->cols);
		if (st->cols == NULL) {
			clear_result(st);
			return ESIM_E_NOMEM;
		}
	}
	return ESIM_OK;
}

static void clear_cols(struct pg_stmt *st)
{
	for (int i = 0; st->cols != NULL && i < st->nfields; i++) {
		free(st->cols[i].p);
		st->cols[i] = (struct pg_col){0};
	}
}

static esim_err pg_step(store_stmt *base, bool *row)
{
	struct pg_stmt *st = pst_of(base);
	*row = false;
	if (st->state != PG_ROWS) {
		clear_result(st);
		esim_err err = execute(st);
		if (err != ESIM_OK) {
			st->state = PG_DONE;
			return err;
		}
		st->state = PG_ROWS;
	}
	clear_cols(st);
	st->row++;
	if (st->nfields > 0 && st->row < PQntuples(st->res)) {
		*row = true;
		return ESIM_OK;
	}
	clear_result(st);
	st->state = PG_DONE;
	return ESIM_OK;
}

static bool have(struct pg_stmt *st, int col)
{
	return st->res != NULL && col >= 0 && col < st->nfields && st->row >= 0 &&
	       st->row < PQntuples(st->res) && !PQgetisnull(st->res, st->row, col);
}

static int64_t be_int(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	/* sign-extend from n bytes */
	if (n < 8 && n > 0 && (p[0] & 0x80))
		v |= ~(uint64_t)0 << (8 * n);
	return (int64_t)v;
}

static int64_t pg_col_int64(store_stmt *base, int col)
{
	struct pg_stmt *st = pst_of(base);
	if (!have(st, col))
		return 0;
	const char *v = PQgetvalue(st->res, st->row, col);
	int len = PQgetlength(st->res, st->row, col);
	Oid t = PQftype(st->res, col);
	if (PQfformat(st->res, col) == 1) {
		switch (t) {
		case PG_INT8:
			return len == 8 ? be_int((const uint8_t *)v, 8) : 0;
		case PG_INT4:
			return len == 4 ? be_int((const uint8_t *)v, 4) : 0;
		case PG_INT2:
			return len == 2 ? be_int((const uint8_t *)v, 2) : 0;
		case PG_OID:
			return len == 4 ? (int64_t)(uint32_t)be_int((const uint8_t *)v, 4) : 0;
		case PG_BOOL:
		case PG_CHAR:
			return len == 1 ? (uint8_t)v[0] : 0;
		case PG_BYTEA:
			return 0;
		default:
			break; /* a text type: its bytes, as below */
		}
	} else if (t == PG_BOOL) {
		return v[0] == 't';
	}
	return strtoll(v, NULL, 10);
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode bytea's text form "\x4142..." once per row and column. */
static const struct pg_col *hex_col(struct pg_stmt *st, int col)
{
	struct pg_col *c = &st->cols[col];
	if (c->done)
		return c;
	const char *v = PQgetvalue(st->res, st->row, col);
	size_t n = strlen(v);
	if (n < 2 || v[0] != '\\' || v[1] != 'x' || n % 2)
		return NULL;
	size_t out = (n - 2) / 2;
	c->p = malloc(out + 1);
	if (c->p == NULL)
		return NULL;
	for (size_t i = 0; i < out; i++) {
		int hi = nibble(v[2 + 2 * i]), lo = nibble(v[3 + 2 * i]);
		if (hi < 0 || lo < 0) {
			free(c->p);
			c->p = NULL;
			return NULL;
		}
		c->p[i] = (uint8_t)(hi << 4 | lo);
	}
	c->p[out] = 0;
	c->len = out;
	c->done = true;
	return c;
}

static const char *pg_col_text(store_stmt *base, int col)
{
	struct pg_stmt *st = pst_of(base);
	if (!have(st, col))
		return NULL;
	Oid t = PQftype(st->res, col);
	bool binary = PQfformat(st->res, col) == 1;
	if (t == PG_BYTEA && !binary) {
		const struct pg_col *c = hex_col(st, col);
		return c ? (const char *)c->p : NULL;
	}
	if (binary && (t == PG_INT8 || t == PG_INT4 || t == PG_INT2 || t == PG_OID)) {
		struct pg_col *c = &st->cols[col];
		if (!c->done) {
			c->p = malloc(24);
			if (c->p == NULL)
				return NULL;
			snprintf((char *)c->p, 24, "%lld", (long long)pg_col_int64(base, col));
			c->len = strlen((char *)c->p);
			c->done = true;
		}
		return (const char *)c->p;
	}
	if (binary && t == PG_BOOL)
		return PQgetvalue(st->res, st->row, col)[0] ? "t" : "f";
	return PQgetvalue(st->res, st->row, col);
}

static const uint8_t *pg_col_blob(store_stmt *base, int col, size_t *len)
{
	struct pg_stmt *st = pst_of(base);
	*len = 0;
	if (!have(st, col))
		return NULL;
	if (PQftype(st->res, col) == PG_BYTEA && PQfformat(st->res, col) == 0) {
		const struct pg_col *c = hex_col(st, col);
		if (c == NULL)
			return NULL;
		*len = c->len;
		return c->p;
	}
	*len = (size_t)PQgetlength(st->res, st->row, col);
	return (const uint8_t *)PQgetvalue(st->res, st->row, col);
}

static bool pg_col_is_null(store_stmt *base, int col)
{
	return !have(pst_of(base), col);
}

/* Lazy transactions (store.h, "Durability") commit with synchronous_commit
 * off, durable ones with it on. The session keeps it off once a lazy
 * transaction has set it (SET, not SET LOCAL: one statement per connection
 * rather than one per lazy transaction, which is most of the SM-DP+'s);
 * every durable COMMIT on such a session is preceded by `SET LOCAL
 * synchronous_commit TO on` in the same message (pg_commit), and an
 * autocommit statement that may write by `SET synchronous_commit TO on`
 * (autocommit_durable). So which commits wait for the flush is exactly
 * what it was with SET LOCAL in every lazy transaction. */
static esim_err pg_begin(store *s, bool lazy)
{
	struct pg_store *ps = ps_of(s);
	ps->tx_err = ESIM_OK;
	/* not sent yet: the BEGIN (and the SET of a lazy one) goes in one
	 * pipeline with the first statement, saving a round trip per
	 * transaction; a transaction that runs no statement sends nothing */
	ps->begin_sql = s->read_committed ? "BEGIN ISOLATION LEVEL READ COMMITTED"
					  : "BEGIN ISOLATION LEVEL SERIALIZABLE";
	ps->begin_lazy = lazy && !ps->sc_off;
	ps->sc_set_in_tx = ps->begin_lazy;
	return ESIM_OK;
}

static esim_err pg_commit(store *s, bool durable)
{
	struct pg_store *ps = ps_of(s);
	if (ps->tx_err != ESIM_OK)
		drop_deferred(ps);			    /* the server would skip them anyway */
	if (ps->begin_sql != NULL && ps->n_deferred == 0) { /* nothing ran */
		ps->begin_sql = NULL;
		ps->sc_set_in_tx = false;
		return ESIM_OK;
	}
	/* (after a failed statement COMMIT alone reports the failure) */
	bool upgrade = durable && (ps->sc_set_in_tx || ps->sc_off) && ps->tx_err == ESIM_OK;
	esim_err err;
	if (ps->n_deferred > 0) {
		/* the deferred statements and the COMMIT in one round trip; a
		 * failure of one of them skips the COMMIT (rolled back below).
		 * When they are all the transaction ran, at READ COMMITTED, the
		 * session's default, and commit as the session's
		 * synchronous_commit says (no SET LOCAL): without BEGIN and
		 * COMMIT, as the implicit transaction that the protocol makes of
		 * a pipeline's statements up to its Sync (all of them or none,
		 * committed at the Sync, as durably as COMMIT would) */
		ps->implicit =
		    ps->begin_sql != NULL && s->read_committed && ps->default_rc && !upgrade;
		err = pipeline(ps, NULL, true, upgrade, NULL);
	} else {
		const char *sql = upgrade ? "SET LOCAL synchronous_commit TO on; COMMIT" : "COMMIT";
		PGresult *res = PQexec(ps->conn, sql);
		err = check(ps, res);
		/* COMMIT of a failed transaction "succeeds" as a ROLLBACK. */
		if (err == ESIM_OK && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
			err = ps->tx_err != ESIM_OK ? ps->tx_err : ESIM_E_STORE_STATE;
			set_msg(ps, "transaction rolled back: a statement in it had failed");
		}
		PQclear(res);
	}
	if (PQtransactionStatus(ps->conn) != PQTRANS_IDLE)
		PQclear(PQexec(ps->conn, "ROLLBACK"));
	if (err == ESIM_OK && ps->sc_set_in_tx)
		ps->sc_off = true; /* the SET committed with the transaction */
	ps->sc_set_in_tx = false;
	ps->tx_err = ESIM_OK;
	flush_stale(ps);
	return err;
}

static esim_err pg_rollback(store *s)
{
	struct pg_store *ps = ps_of(s);
	drop_deferred(ps);
	ps->sc_set_in_tx = false;    /* a rollback undoes the SET */
	if (ps->begin_sql != NULL) { /* nothing was sent */
		ps->begin_sql = NULL;
		ps->tx_err = ESIM_OK;
		return ESIM_OK;
	}
	esim_err err = run(ps, "ROLLBACK");
	ps->tx_err = ESIM_OK;
	flush_stale(ps);
	return err;
}

static int64_t pg_last_insert_id(store *s)
{
	(void)s;
	return -1;
}

static int64_t pg_changes(store *s)
{
	return ps_of(s)->changes;
}

/* Key of the advisory lock that serialises creating esim_schema ("esim"). */
#define PG_SCHEMA_LOCK "1702062445"

static esim_err pg_prepare_version(store *s)
{
	/* Two processes may do this at once, and CREATE TABLE IF NOT EXISTS
	 * can still collide in the catalog: a session advisory lock makes
	 * them take turns. */
	struct pg_store *ps = ps_of(s);
	esim_err err = run(ps, "SELECT pg_advisory_lock(" PG_SCHEMA_LOCK ")");
	if (err != ESIM_OK)
		return err;
	err = run(ps, "CREATE TABLE IF NOT EXISTS esim_schema ("
		      " id integer PRIMARY KEY CHECK (id = 1),"
		      " version integer NOT NULL);"
		      "INSERT INTO esim_schema (id, version) VALUES (1, 0)"
		      " ON CONFLICT (id) DO NOTHING;");
	esim_err unlock = run(ps, "SELECT pg_advisory_unlock(" PG_SCHEMA_LOCK ")");
	return err != ESIM_OK ? err : unlock;
}

static esim_err pg_get_version(store *s, int64_t *v)
{
	struct pg_store *ps = ps_of(s);
	/* FOR UPDATE: a second migrator waits here, then fails to serialize
	 * and starts over, seeing the new version. */
	esim_err err = send_begin(ps);
	if (err != ESIM_OK)
		return err;
	PGresult *res = PQexec(ps->conn, "SELECT version FROM esim_schema WHERE id = 1 FOR UPDATE");
	err = check(ps, res);
	if (err == ESIM_OK)
		*v = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return err;
}

static esim_err pg_set_version(store *s, int64_t v)
{
	char sql[96];
	snprintf(sql, sizeof sql, "UPDATE esim_schema SET version = %lld WHERE id = 1",
		 (long long)v);
	return run(ps_of(s), sql);
}

const struct store_backend store_pg_backend = {
    .name = "postgresql",
    .dialect = STORE_DIALECT_POSTGRES,
    /* A prepared statement lives as long as its connection, whatever
     * happens to transactions; reusing it saves the Parse, Describe and
     * DEALLOCATE round trips (each its own transaction outside one). */
    .cache_statements = true,
    .open = pg_open,
    .close = pg_close,
    .errmsg = pg_errmsg,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .bind_int64 = pg_bind_int64,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .run_at_commit = pg_run_at_commit,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .col_is_null = pg_col_is_null,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .last_insert_id = pg_last_insert_id,
    .changes = pg_changes,
    .prepare_version = pg_prepare_version,
    .get_version = pg_get_version,
    .set_version = pg_set_version,
};
