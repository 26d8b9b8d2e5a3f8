/*
 * ES9+ getBoundProfilePackage (SGP.22 3.1.3, 5.6.2; digest 6.5): the
 * PrepareDownloadResponse checked with the session's eUICC key, the order
 * and its confirmation code checked, the profile package bound to the
 * eUICC's one-time key (or the package bound before to the same key, its
 * BF23 signed again for this transactionId), and the order moved to
 * Downloaded. One transaction on PostgreSQL, two with the crypto between
 * them on SQLite (bpp_all_tx).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "esim/der.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_bpp.h"
#include "es9_int.h"

#define ES9_HOST_ID "esimkit1"

/* ---- getBoundProfilePackage (digest 6.5) --------------------------------------------- */

struct bpp_tx {
	smdp *d;
	const char *request_id; /* of the ES9+ request: its callbacks carry it */
	const struct session *ss;
	const struct rsp_prepare_download_resp *pd;
	time_t now;
	/* phase 1 out */
	struct smdp_status st;
	int64_t profile_id;
	char iccid[RSP_ICCID_TEXT_MAX];
	/* UTF-8: up to 4 bytes a character */
	char spn[4 * RSP_SPN_MAX + 1], name[4 * RSP_NAME_MAX + 1];
	int pclass;
	uint32_t ppr;
	struct smdp_es9_meta_extra mx;
	uint8_t *upp;
	size_t upp_len;
	bool ppk;	     /* the type binds with profile protection keys */
	enum smdp_state pst; /* the profile's state as phase 1 read it */
	bool keep_session;   /* st refuses this try only: the LPA may try again */
	uint8_t *old_bpp;    /* same otPK: the package bound before */
	size_t old_bpp_len;
	/* phase 2 in */
	const uint8_t *bpp;
	size_t bpp_len;
};

static esim_err bpp_tx1(store *s, void *arg)
{
	struct bpp_tx *a = arg;
	a->st = SMDP_OK_STATUS;
	a->keep_session = false;
	if (a->upp)
		esim_wipe(a->upp, a->upp_len);
	free(a->upp);
	free(a->old_bpp);
	a->upp = a->old_bpp = NULL;
	store_stmt *st;
	char sql[600];
	snprintf(sql, sizeof sql,
		 "SELECT o.open, o.expires, o.cc_hash, o.cc_left, o.bound_otpk, o.bpp, p.id,"
		 " p.state, p.iccid, p.upp, t.spn, t.profile_name, t.profile_class, t.ppr, t.ppk,"
		 " p.keys_sealed, p.kek_id, " SMDP_ES9_META_COLS " FROM smdp_orders o"
		 " JOIN smdp_profiles p ON p.id = o.profile_id JOIN smdp_profile_types t"
		 " ON t.id = p.type_id WHERE o.id = ?1 %s",
		 smdp_es9_order_lock(s));
	esim_err err = store_prepare(s, sql, &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, a->ss->order_id);
	bool row;
	if ((err = store_step(st, &row)) != ESIM_OK || !row) {
		store_finalize(st);
		if (err == ESIM_OK)
			a->st = ES9_UNKNOWN_TX;
		return err;
	}
	bool open = store_col_int64(st, 0) != 0;
	int64_t expires = store_col_int64(st, 1);
	size_t n;
	uint8_t cc_hash[32];
	const uint8_t *cch = store_col_blob(st, 2, &n);
	bool has_cc = cch && n == 32;
	if (has_cc)
		memcpy(cc_hash, cch, 32);
	int64_t cc_left = store_col_int64(st, 3);
	const uint8_t *bound = store_col_blob(st, 4, &n);
	bool same_otpk = bound && n == RSP_OTPK_LEN && memcmp(bound, a->pd->otpk, n) == 0;
	bool other_otpk = bound && !same_otpk;
	const uint8_t *ob = store_col_blob(st, 5, &n);
	if (same_otpk && ob && n) {
		a->old_bpp = malloc(n);
		if (a->old_bpp) {
			memcpy(a->old_bpp, ob, n);
			a->old_bpp_len = n;
		}
	}
	a->profile_id = store_col_int64(st, 6);
	enum smdp_state pst = SMDP_ERROR;
	smdp_state_parse(store_col_text(st, 7), &pst);
	a->pst = pst;
	snprintf(a->iccid, sizeof a->iccid, "%s", store_col_text(st, 8));
	const uint8_t *upp = store_col_blob(st, 9, &n);
	if (upp && n) {
		a->upp = malloc(n);
		if (a->upp) {
			memcpy(a->upp, upp, n);
			a->upp_len = n;
		}
	}
	snprintf(a->spn, sizeof a->spn, "%s", store_col_text(st, 10));
	snprintf(a->name, sizeof a->name, "%s", store_col_text(st, 11));
	a->pclass = (int)store_col_int64(st, 12);
	a->ppr = (uint32_t)store_col_int64(st, 13);
	a->ppk = store_col_int64(st, 14) != 0;
	smdp_es9_meta_extra_read(st, 17, &a->mx);
	/* the profile's Ki / OPc, sealed at rest (kek.c), into the package in
	 * memory only; it is wiped when the request ends */
	const uint8_t *sealed = store_col_blob(st, 15, &n);
	err = a->upp ? smdp_keys_apply(a->d, a->iccid, sealed, n, store_col_text(st, 16), a->upp,
				       a->upp_len)
		     : ESIM_OK;
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	if (!a->upp)
		return ESIM_E_NOMEM;
	if (!open || (pst != SMDP_RELEASED && pst != SMDP_DOWNLOADED)) {
		a->st = SMDP_FAIL("8.2", "1.2", "order no longer downloadable");
		return ESIM_OK;
	}
	if (expires < (int64_t)a->now) {
		a->st = SMDP_FAIL("8.8.5", "4.10", "download order expired");
		return smdp_es9_fail_order(a->d, s, a->ss->order_id, a->profile_id, a->now, 3,
					   &a->st);
	}
	if (a->ss->cc_required && has_cc) {
		if (cc_left <= 0) {
			a->st = SMDP_FAIL("8.2.7", "6.4", "confirmation code retries exceeded");
			return smdp_es9_fail_order(a->d, s, a->ss->order_id, a->profile_id, a->now,
						   2, &a->st);
		}
		if (!a->pd->has_hash_cc) {
			a->st = SMDP_FAIL("8.2.7", "2.2", "confirmation code required");
			return ESIM_OK;
		}
		uint8_t in[32 + RSP_TXID_MAX], want[32];
		unsigned hl;
		memcpy(in, cc_hash, 32);
		memcpy(in + 32, a->ss->txid.b, a->ss->txid.len);
		int ok = EVP_Digest(in, 32 + a->ss->txid.len, want, &hl, EVP_sha256(), NULL);
		esim_wipe(in, sizeof in);
		esim_wipe(cc_hash, sizeof cc_hash);
		if (ok != 1)
			return ESIM_E_CRYPTO_OPENSSL;
		if (!esim_ct_equal(want, a->pd->hash_cc, 32)) {
			/* the attempt limit holds across power losses */
			store_make_durable(s);
			if ((err = store_prepare(s,
						 "UPDATE smdp_orders SET cc_left = cc_left - 1"
						 " WHERE id = ?1",
						 &st)) != ESIM_OK)
				return err;
			store_bind_int64(st, 1, a->ss->order_id);
			err = store_run(st);
			store_finalize(st);
			if (err != ESIM_OK)
				return err;
			if (cc_left - 1 <= 0) {
				a->st =
				    SMDP_FAIL("8.2.7", "6.4", "confirmation code retries exceeded");
				return smdp_es9_fail_order(a->d, s, a->ss->order_id, a->profile_id,
							   a->now, 2, &a->st);
			}
			/* counted above; the session stays authenticated, so
			 * the LPA may ask the user again and send a new
			 * PrepareDownloadResponse on this transactionId until
			 * the limit (SGP.22 5.6.2; digest 5.4, 6.5 step 5) */
			a->st = SMDP_FAIL("8.2.7", "3.8", "confirmation code refused");
			a->keep_session = true;
			return ESIM_OK;
		}
	}
	if (other_otpk && a->d->refuse_rebind) {
		a->st = SMDP_FAIL("8.2", "3.7", "profile already bound to another one-time key");
		return ESIM_OK;
	}
	return ESIM_OK;
}

static esim_err bpp_tx2(store *s, void *arg)
{
	struct bpp_tx *a = arg;
	a->st = SMDP_OK_STATUS;
	esim_err err = smdp_db_transition_expect(
	    s, a->profile_id, a->pst, SMDP_BIT(SMDP_RELEASED) | SMDP_BIT(SMDP_DOWNLOADED),
	    SMDP_DOWNLOADED, a->now, "getBoundProfilePackage", NULL, NULL);
	if (err == ESIM_E_SMDP_TRANSITION) {
		a->st = SMDP_FAIL("8.2", "1.2", "order no longer downloadable");
		return ESIM_OK;
	}
	/* the operator's message first (it reads the order): the two UPDATEs
	 * after it, whose results are not read, go with the COMMIT. None when
	 * the operator had no callback URL as phase 1 read the session (a URL
	 * set since then is as if set after this download: that saves the
	 * outbox's four-table read in every download of such an operator) */
	struct smdp_status ok = SMDP_OK_STATUS;
	if (err == ESIM_OK && a->ss->op_callback)
		err =
		    smdp_outbox_queue_rid(a->d, s, a->request_id, a->ss->order_id, 3, &ok, NULL, 0);
	if (err != ESIM_OK)
		return err;
	/* the order keeps the package and the key it is bound to, the session
	 * moves on: one statement on PostgreSQL (a data-modifying WITH), two
	 * on SQLite */
	bool pg = store_sql_dialect(s) == STORE_DIALECT_POSTGRES;
	store_stmt *st;
	if ((err = store_prepare(
		 s,
		 pg ? "WITH o AS (UPDATE smdp_orders SET bound_otpk = ?1, bpp = ?2, updated = ?3"
		      " WHERE id = ?4) UPDATE smdp_sessions SET state = 'downloaded', updated = ?3"
		      " WHERE txid = ?5"
		    : "UPDATE smdp_orders SET bound_otpk = ?1, bpp = ?2, updated = ?3 WHERE id = "
		      "?4",
		 &st)) != ESIM_OK)
		return err;
	store_bind_blob(st, 1, a->pd->otpk, RSP_OTPK_LEN);
	store_bind_blob(st, 2, a->bpp, a->bpp_len);
	store_bind_int64(st, 3, (int64_t)a->now);
	store_bind_int64(st, 4, a->ss->order_id);
	if (pg)
		store_bind_text(st, 5, a->ss->txid_hex);
	err = store_run_at_commit(st);
	store_finalize(st);
	if (err != ESIM_OK || pg)
		return err;
	if ((err = store_prepare(s,
				 "UPDATE smdp_sessions SET state = 'downloaded', updated = ?1"
				 " WHERE txid = ?2",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)a->now);
	store_bind_text(st, 2, a->ss->txid_hex);
	err = store_run_at_commit(st);
	store_finalize(st);
	return err;
}

/* The package bound earlier to the same otPK.EUICC, with its BF23 signed
 * again for this session's transactionId: the eUICC checks BF23's txId
 * against its session (digest 7.6), while the segments depend only on the
 * two one-time keys and the EID, so they are reused unchanged. */
static esim_err rebind_txid(EVP_PKEY *dppb_key, const uint8_t *old, size_t old_len,
			    const rsp_txid *txid, const uint8_t otpk_euicc[RSP_OTPK_LEN],
			    uint8_t **out, size_t *out_len)
{
	struct rsp_bpp_view v;
	esim_err err = rsp_bpp_parse(old, old_len, &v);
	if (err != ESIM_OK)
		return err;
	der_builder sb;
	der_builder_init(&sb);
	der_add_int64(&sb, 0x82, RSP_BPP_REMOTE_OP_INSTALL);
	der_add_octet_string(&sb, 0x80, txid->b, txid->len);
	der_builder_open(&sb, 0xA6);
	der_add_octet_string(&sb, 0x80, &v.init_sc.key_type, 1);
	der_add_octet_string(&sb, 0x81, &v.init_sc.key_len, 1);
	der_add_octet_string(&sb, 0x84, v.init_sc.host_id, v.init_sc.host_id_len);
	der_builder_close(&sb);
	der_add_octet_string(&sb, 0x5F49, v.init_sc.otpk_dp, RSP_OTPK_LEN);
	uint8_t *signed_part = NULL;
	size_t signed_len = 0;
	if ((err = der_builder_finish(&sb, &signed_part, &signed_len)) != ESIM_OK)
		return err;
	uint8_t tail[3 + RSP_OTPK_LEN] = {0x5F, 0x49, RSP_OTPK_LEN};
	memcpy(tail + 3, otpk_euicc, RSP_OTPK_LEN);
	struct crypto_span spans[2] = {{signed_part, signed_len}, {tail, sizeof tail}};
	uint8_t sig[RSP_SIG_LEN];
	err = crypto_ecdsa_sign_spans(dppb_key, spans, 2, sig);
	if (err == ESIM_OK) {
		der_builder b;
		der_builder_init(&b);
		der_builder_open(&b, 0xBF36);
		der_builder_open(&b, 0xBF23);
		der_add_raw(&b, signed_part, signed_len);
		der_add_octet_string(&b, 0x5F37, sig, sizeof sig);
		der_builder_close(&b);
		der_add_raw(&b, v.a0.p, (size_t)(old + old_len - v.a0.p));
		der_builder_close(&b);
		err = der_builder_finish(&b, out, out_len);
	}
	free(signed_part);
	return err;
}

/*
 * getBoundProfilePackage's first transaction: the session read, the
 * PrepareDownloadResponse checked with the session's eUICC key (no row is
 * locked yet under READ COMMITTED), then bpp_tx1's reads of the order. One
 * transaction instead of an autocommit read of the session plus one.
 * A response that fails the check ends the session in the same
 * transaction. Re-run from the start after a conflict.
 */
struct bpp_load {
	struct bpp_tx a;
	const char *txhex;
	const uint8_t *pdr;
	size_t pdr_len;
	struct session ss;
	struct rsp_prepare_download_resp pd;
	EVP_PKEY *euicc;
	bool unknown; /* no such session, or not authenticated */
	esim_err ve;  /* the check of the PrepareDownloadResponse */
	uint8_t *bpp; /* the bound package (bpp_make), malloc'd */
	size_t bpp_len;
	bool bad_point; /* the eUICC's otPK is no point of the curve */
};

static esim_err bpp_load_tx(store *s, void *arg)
{
	struct bpp_load *l = arg;
	smdp_es9_session_clear(&l->ss);
	EVP_PKEY_free(l->euicc);
	l->euicc = NULL;
	l->unknown = false;
	l->ve = ESIM_OK;
	bool found = false;
	esim_err err = smdp_es9_load_session_in(l->a.d, s, l->txhex, &l->ss, &found, true);
	if (err != ESIM_OK)
		return err;
	if (!found || strcmp(l->ss.state, ST_AUTHENTICATED) != 0) {
		l->unknown = true;
		return ESIM_OK;
	}
	if ((err = smdp_es9_euicc_pub_of(l->a.d, &l->ss, &l->euicc)) != ESIM_OK)
		return err;
	l->ve = rsp_prepare_download_resp_verify(l->pdr, l->pdr_len, l->euicc, &l->ss.txid,
						 l->ss.sig2, NULL, &l->pd);
	if (l->ve != ESIM_OK)
		return smdp_es9_delete_session(s, l->ss.txid_hex);
	l->a.ss = &l->ss;
	l->a.pd = &l->pd;
	return bpp_tx1(s, &l->a);
}

/* The package for this session: the one bound before to the same otPK
 * with its BF23 signed again, or a new binding of the profile (fresh
 * profile protection keys when its type has them). Into l->bpp. */
static esim_err bpp_make(smdp *d, struct bpp_load *l)
{
	struct bpp_tx *a = &l->a;
	const struct session *ss = &l->ss;
	const struct rsp_prepare_download_resp *pd = &l->pd;
	struct smdp_identity *id = &d->ids[ss->ident];
	free(l->bpp);
	l->bpp = NULL;
	l->bad_point = false;
	if (a->old_bpp)
		return rebind_txid(id->dppb_key, a->old_bpp, a->old_bpp_len, &ss->txid, pd->otpk,
				   &l->bpp, &l->bpp_len);
	uint8_t *meta = NULL, eid_bcd[RSP_EID_LEN];
	size_t meta_len = 0;
	esim_err err = smdp_es9_build_metadata(d, a->iccid, a->spn, a->name, a->pclass, a->ppr,
					       &a->mx, &meta, &meta_len);
	if (err == ESIM_OK)
		err = rsp_eid_to_bcd(ss->eid, eid_bcd);
	/* fresh profile protection keys for this binding (digest 7.8) */
	struct rsp_bpp_ppk ppk;
	if (err == ESIM_OK && a->ppk && RAND_bytes((uint8_t *)&ppk, sizeof ppk) != 1)
		err = ESIM_E_CRYPTO_RANDOM;
	if (err == ESIM_OK) {
		struct rsp_bpp_params bp = {
		    .dp_pb_key = id->dppb_key,
		    .txid = &ss->txid,
		    .euicc_otpk = pd->otpk,
		    .euicc_otpk_len = RSP_OTPK_LEN,
		    .eid = eid_bcd,
		    .host_id = (const uint8_t *)ES9_HOST_ID,
		    .host_id_len = strlen(ES9_HOST_ID),
		    .metadata = meta,
		    .metadata_len = meta_len,
		    .upp = a->upp,
		    .upp_len = a->upp_len,
		    .ppk = a->ppk ? &ppk : NULL,
		};
		err = rsp_bpp_build(&bp, &l->bpp, &l->bpp_len);
		esim_wipe(&ppk, sizeof ppk);
		if (err == ESIM_E_CRYPTO_BAD_POINT) {
			l->bad_point = true;
			err = ESIM_OK;
		}
	}
	free(meta);
	return err;
}

/*
 * PostgreSQL: the load, the binding and the writes in one transaction. The
 * order row stays locked (FOR UPDATE) while the package is bound, which
 * only a second request for the same order waits for; it saves a COMMIT, a
 * BEGIN and a transaction per download (docs/PERFORMANCE.md). SQLite takes
 * its write lock at BEGIN, so there the binding stays between two
 * transactions, lest every download wait for another's crypto.
 */
static esim_err bpp_all_tx(store *s, void *arg)
{
	struct bpp_load *l = arg;
	esim_err err = bpp_load_tx(s, l);
	if (err != ESIM_OK || l->unknown || l->ve != ESIM_OK || l->a.st.subject)
		return err;
	if ((err = bpp_make(l->a.d, l)) != ESIM_OK)
		return err;
	if (l->bad_point)
		return smdp_es9_delete_session(s, l->ss.txid_hex);
	l->a.bpp = l->bpp;
	l->a.bpp_len = l->bpp_len;
	return bpp_tx2(s, &l->a);
}

esim_err smdp_es9_get_bound_profile_package(struct es9 *x, store *s)
{
	smdp *d = x->d;
	const char *txhex = smdp_es9_opt_str(x->req, "transactionId");
	struct rsp_es9_request rq;
	memset(&rq, 0, sizeof rq);
	if (!txhex) {
		x->st = ES9_MISSING;
		return ESIM_OK;
	}
	struct bpp_load l;
	memset(&l, 0, sizeof l);
	esim_err err = ESIM_OK;
	/* the request as the codec reads it: prepareDownloadResponse one
	 * complete BF21 TLV; a malformed one leaves the session as it is (only
	 * the eUICC's signed answer, or its expiry, ends it) */
	if (!smdp_es9_decode(x, RSP_ES9_GET_BOUND_PROFILE_PACKAGE, &rq))
		goto out;
	l.a.d = d;
	l.a.request_id = x->request_id;
	l.a.now = smdp_now(d);
	l.txhex = txhex;
	l.pdr = rq.u.get_bpp.prepare_download_response.p;
	l.pdr_len = rq.u.get_bpp.prepare_download_response.len;
	bool one_tx = store_sql_dialect(s) == STORE_DIALECT_POSTGRES;
	if ((err = store_transaction_opts(s, ES9_TX, one_tx ? bpp_all_tx : bpp_load_tx, &l, 0)) !=
	    ESIM_OK)
		goto out;
	if (l.unknown) {
		x->st = ES9_UNKNOWN_TX;
		goto out;
	}
	esim_err ve = l.ve;
	if (ve != ESIM_OK) { /* the session is already ended */
		if (ve == ESIM_E_RSP_EUICC_ERROR)
			x->st = SMDP_FAIL("8.1", "3.8", "eUICC refused PrepareDownload");
		else if (ve == ESIM_E_RSP_TXID_MISMATCH)
			x->st = ES9_UNKNOWN_TX;
		else if (ve == ESIM_E_RSP_BAD_SIGNATURE || ve == ESIM_E_CRYPTO_SIGNATURE_INVALID)
			x->st = ES9_EUICC_SIG;
		else
			x->st = ES9_BADFIELD;
		goto out;
	}
	struct bpp_tx *a = &l.a;
	struct session *ss = &l.ss;
	if (!one_tx && !a->st.subject) {
		if ((err = bpp_make(d, &l)) != ESIM_OK)
			goto out;
		if (l.bad_point) {
			x->st = ES9_BADFIELD;
			err = smdp_es9_end_session(s, ss->txid_hex);
			goto out;
		}
		a->bpp = l.bpp;
		a->bpp_len = l.bpp_len;
		if ((err = store_transaction_opts(s, ES9_TX, bpp_tx2, a, 0)) != ESIM_OK)
			goto out;
	}
	if (l.bad_point) { /* one_tx: the session is already ended */
		x->st = ES9_BADFIELD;
		goto out;
	}
	/* a refusal of the load (bpp_tx1) or of the writes (bpp_tx2) */
	if (a->st.subject) {
		x->st = a->st;
		if (!a->keep_session)
			err = smdp_es9_end_session(s, ss->txid_hex);
		goto out;
	}
	atomic_fetch_add(&d->downloads, 1);
	struct rsp_es9_response r = {.fn = RSP_ES9_GET_BOUND_PROFILE_PACKAGE};
	r.u.get_bpp.txid = ss->txid;
	r.u.get_bpp.bound_profile_package = (der_span){l.bpp, l.bpp_len};
	if ((err = smdp_es9_answer(x, &r)) != ESIM_OK)
		goto out;
	smdp_logf(d, "bpp", "txid=%s iccid=%s reused=%d bytes=%zu", ss->txid_hex, a->iccid,
		  a->old_bpp != NULL, l.bpp_len);
out:
	EVP_PKEY_free(l.euicc);
	if (l.a.upp)
		esim_wipe(l.a.upp, l.a.upp_len); /* holds the profile's keys */
	free(l.a.upp);
	free(l.a.old_bpp);
	rsp_es9_request_clear(&rq);
	free(l.bpp);
	smdp_es9_session_clear(&l.ss);
	return err;
}
