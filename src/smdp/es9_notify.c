/*
 * ES9+ handleNotification and cancelSession (SGP.22 3.5, 5.6.4, 5.6.5;
 * digest 8.4, 6.7): a PIR ends its session and moves the profile to
 * Installed or Error, other notifications update the lifecycle of a profile
 * this SM-DP+ delivered to that eUICC; each is recorded once and forwarded
 * to the operator. cancelSession ends the session and, by its reason,
 * fails the order or leaves it downloadable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp_auth.h"
#include "es9_int.h"

/* ---- handleNotification (digest 8.4) -------------------------------------------------- */

struct notif_tx {
	smdp *d;
	const char *request_id; /* of the ES9+ request: its callbacks carry it */
	const char *eid;
	uint64_t seq;
	const char *kind;
	int event;
	const char *iccid;
	const uint8_t *data;
	size_t len;
	time_t now;
	/* PIR */
	const struct session *ss;
	bool pir_success;
	bool duplicate;
};

static esim_err record_notification(store *s, struct notif_tx *a)
{
	/* One statement: a notification already recorded (the same eID and
	 * seqNumber, UNIQUE) inserts nothing and returns no row. Under READ
	 * COMMITTED a concurrent insert of the same one is waited for, then
	 * counts as there. */
	store_stmt *st;
	esim_err err = store_prepare(s,
				     "INSERT INTO smdp_notifications (eid, seq, kind, event, iccid,"
				     " received, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
				     " ON CONFLICT (eid, seq) DO NOTHING RETURNING id",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, a->eid);
	store_bind_int64(st, 2, (int64_t)a->seq);
	store_bind_text(st, 3, a->kind);
	store_bind_int64(st, 4, a->event);
	store_bind_text(st, 5, a->iccid);
	store_bind_int64(st, 6, (int64_t)a->now);
	store_bind_blob(st, 7, a->data, a->len);
	int64_t id = 0;
	err = store_run_id(st, &id);
	store_finalize(st);
	if (err == ESIM_E_NOT_FOUND) {
		a->duplicate = true;
		return ESIM_OK;
	}
	/* answered with 204, the eUICC deletes it: it must not be lost */
	if (err == ESIM_OK)
		store_make_durable(s);
	return err;
}

static esim_err pir_tx(store *s, void *arg)
{
	struct notif_tx *a = arg;
	a->duplicate = false;
	esim_err err = record_notification(s, a);
	if (err != ESIM_OK || a->duplicate)
		return err;
	store_stmt *st;
	/* the order's profile came with the session (smdp_es9_load_session_in) */
	int64_t pid = a->ss->profile_id;
	if (!pid)
		return ESIM_OK;
	/* one UPDATE: the state, and on success the eUICC it is installed on */
	if (a->pir_success)
		err = smdp_db_transition_expect(s, pid, SMDP_DOWNLOADED, SMDP_BIT(SMDP_DOWNLOADED),
						SMDP_INSTALLED, a->now, "PIR success", a->eid,
						"disabled");
	else
		err = smdp_db_transition_expect(s, pid, SMDP_DOWNLOADED, SMDP_BIT(SMDP_DOWNLOADED),
						SMDP_ERROR, a->now, "PIR error", NULL, NULL);
	if (err == ESIM_E_SMDP_TRANSITION)
		return ESIM_OK; /* e.g. the order was cancelled meanwhile: keep the record */
	/* the operator's message first: the order's UPDATE and the session's
	 * DELETE after it go with the COMMIT */
	if (err == ESIM_OK) {
		struct smdp_status ok = SMDP_OK_STATUS;
		struct smdp_status bad =
		    SMDP_FAIL("8.2", "4.2", "installation failed on the eUICC");
		/* what the order needs was read with the session, in this
		 * transaction: the SM-DS event and the callback only if any */
		err = smdp_outbox_queue_pir_known(a->d, s, a->request_id, a->ss->order_id,
						  a->pir_success ? &ok : &bad, a->data, a->len,
						  a->ss->euicc_cert, a->ss->euicc_cert_len,
						  a->ss->smds_event, a->ss->op_callback);
	}
	/* the order closed and the session ended: one statement on
	 * PostgreSQL (a data-modifying WITH), two on SQLite */
	bool pg = store_sql_dialect(s) == STORE_DIALECT_POSTGRES;
	if (err == ESIM_OK &&
	    (err = store_prepare(s,
				 pg ? "WITH o AS (UPDATE smdp_orders SET open = 0, updated = ?1"
				      " WHERE id = ?2) DELETE FROM smdp_sessions WHERE txid = ?3"
				    : "UPDATE smdp_orders SET open = 0, updated = ?1 WHERE id = ?2",
				 &st)) == ESIM_OK) {
		store_bind_int64(st, 1, (int64_t)a->now);
		store_bind_int64(st, 2, a->ss->order_id);
		if (pg)
			store_bind_text(st, 3, a->ss->txid_hex);
		err = store_run_at_commit(st);
		store_finalize(st);
	}
	if (err == ESIM_OK && !pg)
		err = smdp_es9_delete_session(s, a->ss->txid_hex);
	return err;
}

/*
 * A PIR in one transaction: the session read, the PIR's signature checked
 * with the session's eUICC key, then pir_tx's writes. Under READ COMMITTED
 * the read locks nothing, so the check holds no lock; it saves the separate
 * (autocommit) read of the session, a transaction and a round trip per
 * download. Re-run from the start after a conflict.
 */
struct pir_load {
	struct notif_tx a;
	const char *hex;
	struct session ss;
	char iccid[RSP_ICCID_TEXT_MAX];
	bool verified;
};

static esim_err pir_load_tx(store *s, void *arg)
{
	struct pir_load *l = arg;
	smdp *d = l->a.d;
	smdp_es9_session_clear(&l->ss);
	l->verified = false;
	l->a.duplicate = false;
	bool found = false;
	esim_err err = smdp_es9_load_session_in(d, s, l->hex, &l->ss, &found, true);
	if (err != ESIM_OK)
		return err;
	EVP_PKEY *c = NULL;
	struct rsp_pir pir;
	if (!found || strcmp(l->ss.state, ST_DOWNLOADED) != 0 ||
	    smdp_es9_euicc_pub_of(d, &l->ss, &c) != ESIM_OK ||
	    rsp_pir_verify(l->a.data, l->a.len, c, d->oid, &pir) != ESIM_OK) {
		EVP_PKEY_free(c);
		return ESIM_OK; /* dropped: nothing written */
	}
	EVP_PKEY_free(c);
	l->verified = true;
	l->iccid[0] = '\0';
	if (pir.meta.has_iccid)
		rsp_iccid_from_bcd(pir.meta.iccid, RSP_ICCID_LEN, l->iccid);
	l->a.eid = l->ss.eid;
	l->a.seq = pir.meta.seq;
	l->a.kind = "pir";
	l->a.event = RSP_EVENT_INSTALL;
	l->a.iccid = l->iccid;
	l->a.ss = &l->ss;
	l->a.pir_success = pir.success;
	rsp_pir_free(&pir);
	return pir_tx(s, &l->a);
}

static esim_err other_tx(store *s, void *arg)
{
	struct notif_tx *a = arg;
	a->duplicate = false;
	store_stmt *st;
	/* only profiles this SM-DP+ delivered to this eUICC */
	esim_err err = store_prepare(
	    s, "SELECT id FROM smdp_profiles WHERE iccid = ?1 AND eid = ?2 {{FOR_UPDATE}}", &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, a->iccid);
	store_bind_text(st, 2, a->eid);
	bool row;
	err = store_step(st, &row);
	int64_t pid = row ? store_col_int64(st, 0) : 0;
	store_finalize(st);
	if (err != ESIM_OK || !row)
		return err;
	if ((err = record_notification(s, a)) != ESIM_OK || a->duplicate)
		return err;
	const char *lc = a->event == RSP_EVENT_ENABLE	 ? "enabled"
			 : a->event == RSP_EVENT_DISABLE ? "disabled"
							 : "deleted";
	if ((err = store_prepare(s,
				 "UPDATE smdp_profiles SET lifecycle = ?1, updated = ?2"
				 " WHERE id = ?3",
				 &st)) != ESIM_OK)
		return err;
	store_bind_text(st, 1, lc);
	store_bind_int64(st, 2, (int64_t)a->now);
	store_bind_int64(st, 3, pid);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK)
		err = smdp_db_history(s, pid, a->now, "notification", lc);
	/* forward to the operator (digest 8.4, impl: point 5 = other notification) */
	if (err == ESIM_OK &&
	    (err = store_prepare(s,
				 "SELECT id FROM smdp_orders WHERE profile_id = ?1"
				 " ORDER BY id DESC LIMIT 1",
				 &st)) == ESIM_OK) {
		store_bind_int64(st, 1, pid);
		err = store_step(st, &row);
		int64_t oid = row ? store_col_int64(st, 0) : 0;
		store_finalize(st);
		struct smdp_status ok = SMDP_OK_STATUS;
		if (err == ESIM_OK && row)
			err = smdp_outbox_queue_rid(a->d, s, a->request_id, oid, 5, &ok, a->data,
						    a->len);
	}
	return err;
}

esim_err smdp_es9_handle_notification(struct es9 *x, store *s)
{
	smdp *d = x->d;
	x->no_content = true; /* always 204, digest 8.4 */
	esim_err err = ESIM_OK;
	atomic_fetch_add(&d->notifications, 1);
	/* the request as the rsp_es9 codec reads it: pendingNotification one
	 * complete BF37 or 30 TLV of at most 64 KiB */
	struct rsp_es9_request rq;
	const char *field = NULL;
	esim_err de = rsp_es9_request_from_jdoc(RSP_ES9_HANDLE_NOTIFICATION, x->req, &rq, &field);
	enum rsp_pending_kind kind;
	const uint8_t *p = rq.u.notify.pending_notification.p;
	size_t len = rq.u.notify.pending_notification.len;
	if (de != ESIM_OK || rsp_pending_kind(p, len, &kind) != ESIM_OK) {
		x->st = SMDP_OK_STATUS;
		smdp_logf(d, "notification_dropped", "why=%s error=%s",
			  de == ESIM_E_RSP_BAD_STRUCTURE || de == ESIM_OK ? "unknown-kind"
									  : "no-or-bad-field",
			  esim_errname(de));
		goto out;
	}
	struct notif_tx a;
	memset(&a, 0, sizeof a);
	a.d = d;
	a.request_id = x->request_id;
	a.data = p;
	a.len = len;
	a.now = smdp_now(d);
	if (kind == RSP_PENDING_PIR) {
		struct rsp_pir pir;
		if (rsp_pir_parse(p, len, &pir) != ESIM_OK) {
			smdp_logf(d, "notification_dropped", "why=bad-pir");
			goto out;
		}
		char hex[2 * RSP_TXID_MAX + 1];
		rsp_txid_to_hex(&pir.txid, hex);
		rsp_pir_free(&pir);
		struct pir_load l;
		memset(&l, 0, sizeof l);
		l.a = a;
		l.hex = hex;
		err = store_transaction_opts(s, ES9_TX, pir_load_tx, &l, 0);
		if (err == ESIM_OK && !l.verified) {
			smdp_logf(d, "notification_dropped", "why=pir-unverified txid=%s", hex);
			smdp_es9_session_clear(&l.ss);
			goto out;
		}
		if (err == ESIM_OK && l.a.pir_success && !l.a.duplicate)
			atomic_fetch_add(&d->installs, 1);
		if (err == ESIM_OK)
			smdp_logf(d, "pir", "txid=%s eid=%s iccid=%s success=%d duplicate=%d", hex,
				  l.ss.eid, l.iccid, l.a.pir_success, l.a.duplicate);
		smdp_es9_session_clear(&l.ss);
	} else {
		struct rsp_notif_metadata meta;
		char eid[RSP_EID_DIGITS + 1];
		struct crypto_chain_opts co = {.check_time = d->check_time, .now = a.now};
		if (rsp_other_notif_verify(p, len, d->trust, &co, &meta, eid) != ESIM_OK) {
			smdp_logf(d, "notification_dropped", "why=other-unverified");
			goto out;
		}
		char iccid[RSP_ICCID_TEXT_MAX] = "";
		if (meta.has_iccid)
			rsp_iccid_from_bcd(meta.iccid, RSP_ICCID_LEN, iccid);
		a.eid = eid;
		a.seq = meta.seq;
		a.kind = "other";
		a.event = (int)meta.event;
		a.iccid = iccid;
		rsp_notif_metadata_free(&meta);
		if (iccid[0])
			err = store_transaction_opts(s, ES9_TX, other_tx, &a, 0);
		smdp_logf(d, "notification", "eid=%s iccid=%s event=%d duplicate=%d", eid, iccid,
			  a.event, a.duplicate);
	}
out:
	rsp_es9_request_clear(&rq);
	/* A notification is never refused visibly (digest 8.4: 204 whatever its
	 * content). But one that verified and could not be recorded must not be
	 * acknowledged: the LPA would remove it from the eUICC and the PIR or
	 * the proof of deletion would be lost. Storage trouble answers 503, and
	 * the LPA keeps the notification and sends it again. */
	if (err != ESIM_OK) {
		smdp_logf(d, "notification_error", "err=%s", esim_errname(err));
		x->no_content = false;
		x->busy = true;
		x->st = ES9_BUSY;
	}
	return ESIM_OK;
}

/* ---- cancelSession (digest 6.7) --------------------------------------------------------- */

struct cancel_tx {
	smdp *d;
	const struct session *ss;
	int64_t reason;
	time_t now;
	const char *request_id; /* of the ES9+ request: its callbacks carry it */
};

static esim_err cancel_tx_fn(store *s, void *arg)
{
	struct cancel_tx *a = arg;
	store_stmt *st;
	esim_err err = store_prepare(
	    s, "SELECT o.profile_id, o.open FROM smdp_orders o WHERE o.id = ?1 {{FOR_UPDATE}}",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, a->ss->order_id);
	bool row;
	err = store_step(st, &row);
	int64_t pid = row ? store_col_int64(st, 0) : 0;
	bool open = row && store_col_int64(st, 1) != 0;
	store_finalize(st);
	if (err == ESIM_OK && row && open) {
		char why[64];
		snprintf(why, sizeof why, "cancelSession reason %lld", (long long)a->reason);
		struct smdp_status fs = SMDP_FAIL("8.1", "3.8", why);
		bool final = a->reason == RSP_CANCEL_END_USER_REJECTION ||
			     a->reason == RSP_CANCEL_PPR_NOT_ALLOWED ||
			     a->reason == RSP_CANCEL_METADATA_MISMATCH;
		int point = strcmp(a->ss->state, ST_DOWNLOADED) == 0 ? 3 : 1;
		if (final) {
			err =
			    smdp_es9_fail_order(a->d, s, a->ss->order_id, pid, a->now, point, &fs);
		} else {
			/* postponed, timeout, loading failed, undefined: the order stays
			 * downloadable (impl, digest 6.7) */
			err = smdp_db_transition(
			    s, pid, SMDP_BIT(SMDP_RELEASED) | SMDP_BIT(SMDP_DOWNLOADED),
			    SMDP_RELEASED, a->now, why);
			if (err == ESIM_E_SMDP_TRANSITION)
				err = ESIM_OK;
			if (err == ESIM_OK)
				err = smdp_outbox_queue_rid(a->d, s, a->request_id, a->ss->order_id,
							    point, &fs, NULL, 0);
		}
	}
	if (err == ESIM_OK)
		err = smdp_es9_delete_session(s, a->ss->txid_hex);
	return err;
}

esim_err smdp_es9_cancel_session(struct es9 *x, store *s)
{
	smdp *d = x->d;
	const char *txhex = smdp_es9_opt_str(x->req, "transactionId");
	struct rsp_es9_request rq;
	memset(&rq, 0, sizeof rq);
	EVP_PKEY *euicc = NULL;
	if (!txhex) {
		x->st = ES9_MISSING;
		return ESIM_OK;
	}
	struct session ss;
	bool found;
	esim_err err = smdp_es9_load_session(d, s, txhex, &ss, &found);
	if (err != ESIM_OK)
		return err;
	if (!found || strcmp(ss.state, ST_STARTED) == 0) {
		x->st = ES9_UNKNOWN_TX;
		goto out;
	}
	/* the request as the codec reads it: cancelSessionResponse one complete
	 * BF41 TLV, here of at most 4 KiB */
	if (!smdp_es9_decode(x, RSP_ES9_CANCEL_SESSION, &rq))
		goto out;
	const uint8_t *csr = rq.u.cancel.cancel_session_response.p;
	size_t csr_len = rq.u.cancel.cancel_session_response.len;
	if (csr_len > 4096) {
		x->st = ES9_BADFIELD;
		goto out;
	}
	if ((err = smdp_es9_euicc_pub_of(d, &ss, &euicc)) != ESIM_OK)
		goto out;
	struct rsp_cancel_session_resp r;
	esim_err ve = rsp_cancel_session_resp_verify(csr, csr_len, euicc, &ss.txid, NULL, &r);
	if (ve == ESIM_E_RSP_TXID_MISMATCH) {
		x->st = ES9_UNKNOWN_TX;
		goto out;
	}
	if (ve == ESIM_E_RSP_BAD_SIGNATURE || ve == ESIM_E_CRYPTO_SIGNATURE_INVALID) {
		x->st = ES9_EUICC_SIG;
		goto out;
	}
	if (ve != ESIM_OK) {
		x->st = ES9_BADFIELD;
		goto out;
	}
	if (strcmp(r.smdp_oid, d->oid) != 0) {
		x->st = SMDP_FAIL("8.8", "3.10", "SM-DP+ OID mismatch");
		goto out;
	}
	struct cancel_tx a = {d, &ss, r.reason, smdp_now(d), x->request_id};
	err = store_transaction_opts(s, ES9_TX, cancel_tx_fn, &a, 0);
	smdp_logf(d, "cancel", "txid=%s reason=%lld", ss.txid_hex, (long long)r.reason);
out:
	EVP_PKEY_free(euicc);
	rsp_es9_request_clear(&rq);
	smdp_es9_session_clear(&ss);
	return err;
}
