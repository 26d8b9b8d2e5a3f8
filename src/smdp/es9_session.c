/*
 * ES9+ sessions in the store (SGP.22 3.1.2, 5.6; digest 15.4): the row
 * initiateAuthentication creates, read back by every later call of the
 * download, ended by the PIR, cancelSession or a failure, and swept when
 * idle longer than the configured lifetime (smdp_purge_sessions). Sessions
 * not yet authenticated are counted for the cap of es9_auth.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es9_int.h"

void smdp_es9_session_clear(struct session *s)
{
	free(s->euicc_cert);
	memset(s, 0, sizeof *s);
}

static void copy_blob(store_stmt *st, int col, uint8_t *dst, size_t cap, size_t *len)
{
	size_t n = 0;
	const uint8_t *p = store_col_blob(st, col, &n);
	if (!p || n > cap)
		n = 0;
	if (n)
		memcpy(dst, p, n);
	if (len)
		*len = n;
}

esim_err smdp_es9_delete_session(store *s, const char *txid_hex)
{
	store_stmt *st;
	esim_err err = store_prepare(s, "DELETE FROM smdp_sessions WHERE txid = ?1", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, txid_hex);
	/* the last statement where it is used: sent with the COMMIT */
	err = store_run_at_commit(st);
	store_finalize(st);
	return err;
}

static esim_err delete_session_tx(store *s, void *arg)
{
	return smdp_es9_delete_session(s, arg);
}

/*
 * Sessions are the state a power loss may take (store.h, "Durability"):
 * the device starts a new one, as after a time-out. So every transaction
 * here is lazy, and the changes that must not be lost make it durable where
 * they are written: a profile's state and history (smdp_db_history), a
 * message owed to the operator (smdp_outbox_queue), a notification the
 * eUICC will delete once answered (record_notification), and a failed
 * confirmation code (the attempt limit). A download thus pays for two disk
 * flushes (the package handed out, then installed) instead of one per call.
 */
esim_err smdp_es9_end_session(store *s, const char *txid_hex)
{
	return store_transaction_opts(s, ES9_TX, delete_session_tx, (void *)(uintptr_t)txid_hex, 0);
}

/* Load a live session; *found false when unknown or expired (then deleted:
 * in the open transaction when in_tx, else in one of its own). */
esim_err smdp_es9_load_session_in(smdp *d, store *s, const char *txid_hex, struct session *out,
				  bool *found, bool in_tx)
{
	memset(out, 0, sizeof *out);
	*found = false;
	rsp_txid t;
	if (!txid_hex || rsp_txid_from_hex(txid_hex, &t) != ESIM_OK)
		return ESIM_OK;
	char hex[2 * RSP_TXID_MAX + 1];
	rsp_txid_to_hex(&t, hex);
	store_stmt *st;
	esim_err err = store_prepare(
	    s,
	    "SELECT s.state, s.ident, s.euicc_challenge, s.server_challenge, s.ci_pkid, s.eid,"
	    " s.order_id, s.euicc_cert, s.euicc_sig1, s.smdp_sig2, s.cc_required, s.updated,"
	    " o.profile_id, (SELECT COUNT(*) FROM smdp_operators op WHERE op.id ="
	    " o.operator_id AND op.callback_url IS NOT NULL), CASE WHEN o.smds_address IS NOT"
	    " NULL AND o.eid IS NOT NULL AND o.matching_id IS NOT NULL THEN 1 ELSE 0 END"
	    " FROM smdp_sessions s LEFT JOIN smdp_orders o ON o.id = s.order_id WHERE s.txid = ?1",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, hex);
	bool row;
	err = store_step(st, &row);
	if (err != ESIM_OK || !row) {
		store_finalize(st);
		return err;
	}
	bool expired = store_col_int64(st, 11) + (int64_t)d->session_ttl_s < (int64_t)smdp_now(d);
	snprintf(out->txid_hex, sizeof out->txid_hex, "%s", hex);
	out->txid = t;
	snprintf(out->state, sizeof out->state, "%s", store_col_text(st, 0));
	out->ident = (int)store_col_int64(st, 1);
	copy_blob(st, 2, out->euicc_challenge, 16, NULL);
	copy_blob(st, 3, out->server_challenge, 16, NULL);
	copy_blob(st, 4, out->ci_pkid, sizeof out->ci_pkid, &out->ci_pkid_len);
	const char *eid = store_col_text(st, 5);
	if (eid)
		snprintf(out->eid, sizeof out->eid, "%s", eid);
	out->order_id = store_col_int64(st, 6);
	size_t n = 0;
	const uint8_t *c = store_col_blob(st, 7, &n);
	if (c && n) {
		out->euicc_cert = malloc(n);
		if (out->euicc_cert) {
			memcpy(out->euicc_cert, c, n);
			out->euicc_cert_len = n;
		}
	}
	copy_blob(st, 8, out->sig1, 64, NULL);
	copy_blob(st, 9, out->sig2, 64, NULL);
	out->cc_required = store_col_int64(st, 10) != 0;
	out->profile_id = store_col_int64(st, 12); /* an order's never changes */
	out->op_callback = store_col_int64(st, 13) != 0;
	out->smds_event = store_col_int64(st, 14) != 0;
	store_finalize(st);
	if (out->ident < 0 || (size_t)out->ident >= d->n_ids)
		return ESIM_E_STORE_CORRUPT;
	if (expired) {
		smdp_es9_session_clear(out);
		return in_tx ? smdp_es9_delete_session(s, hex) : smdp_es9_end_session(s, hex);
	}
	*found = true;
	return ESIM_OK;
}

esim_err smdp_es9_load_session(smdp *d, store *s, const char *txid_hex, struct session *out,
			       bool *found)
{
	return smdp_es9_load_session_in(d, s, txid_hex, out, found, false);
}

/* Sessions not yet authenticated and not expired. */
static esim_err count_pending(smdp *d, store *s, uint64_t *out)
{
	store_stmt *st;
	esim_err err = store_prepare(s,
				     "SELECT COUNT(*) FROM smdp_sessions WHERE state = 'started'"
				     " AND updated >= ?1",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)smdp_now(d) - (int64_t)d->session_ttl_s);
	bool row;
	err = store_step(st, &row);
	*out = err == ESIM_OK && row ? (uint64_t)store_col_int64(st, 0) : 0;
	store_finalize(st);
	return err;
}

/*
 * Room for one more unauthenticated session? d->pending counts up with
 * each new session and is set to the true number by each purge and each
 * recount here, so the common case costs no query. At the cap the table is
 * counted, and a count that found it full holds for the rest of that
 * second: a flood is refused without a scan per call. Concurrent callers may pass the cap by the
 * number of workers.
 */
esim_err smdp_es9_pending_room(smdp *d, store *s, bool *room)
{
	*room = true;
	if (atomic_load(&d->pending) < d->max_pending)
		return ESIM_OK;
	int64_t now = (int64_t)smdp_now(d);
	if (atomic_load(&d->pending_full_at) == now) {
		*room = false;
		return ESIM_OK;
	}
	uint64_t n = 0;
	esim_err err = count_pending(d, s, &n);
	if (err != ESIM_OK)
		return err;
	atomic_store(&d->pending, n);
	*room = n < d->max_pending;
	atomic_store(&d->pending_full_at, *room ? INT64_MIN : now);
	return ESIM_OK;
}

#define PURGE_BATCH	  500
#define PURGE_MAX_BATCHES 64

struct purge_tx {
	int64_t before;
	int64_t deleted;
};

static esim_err purge_tx_fn(store *s, void *arg)
{
	struct purge_tx *a = arg;
	store_stmt *st;
	esim_err err = store_prepare(s,
				     "DELETE FROM smdp_sessions WHERE txid IN (SELECT txid FROM"
				     " smdp_sessions WHERE updated < ?1 LIMIT ?2)",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, a->before);
	store_bind_int64(st, 2, PURGE_BATCH);
	err = store_run(st);
	store_finalize(st);
	a->deleted = err == ESIM_OK ? store_changes(s) : 0;
	return err;
}

esim_err smdp_purge_sessions(smdp *d, size_t *deleted)
{
	if (!d)
		return ESIM_E_ARG;
	if (deleted)
		*deleted = 0;
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	/* the rule of smdp_es9_load_session: expired once idle longer than the TTL */
	struct purge_tx a = {.before = (int64_t)smdp_now(d) - (int64_t)d->session_ttl_s};
	for (int i = 0; err == ESIM_OK && i < PURGE_MAX_BATCHES; i++) {
		a.deleted = 0;
		err = store_transaction_opts(s, ES9_TX, purge_tx_fn, &a, 0);
		if (err == ESIM_OK && deleted)
			*deleted += (size_t)a.deleted;
		if (a.deleted < PURGE_BATCH)
			break;
	}
	uint64_t n = 0;
	if (err == ESIM_OK && (err = count_pending(d, s, &n)) == ESIM_OK)
		atomic_store(&d->pending, n);
	smdp_store_put(d, s);
	return err;
}

esim_err smdp_session_count(smdp *d, size_t *all, size_t *pending)
{
	if (!d)
		return ESIM_E_ARG;
	store *s;
	esim_err err = smdp_store_get(d, &s);
	if (err != ESIM_OK)
		return err;
	store_stmt *st;
	if (all && (err = store_prepare(s, "SELECT COUNT(*) FROM smdp_sessions", &st)) == ESIM_OK) {
		bool row;
		err = store_step(st, &row);
		*all = err == ESIM_OK && row ? (size_t)store_col_int64(st, 0) : 0;
		store_finalize(st);
	}
	uint64_t n = 0;
	if (err == ESIM_OK && pending && (err = count_pending(d, s, &n)) == ESIM_OK)
		*pending = (size_t)n;
	smdp_store_put(d, s);
	return err;
}
