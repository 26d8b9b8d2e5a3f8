/*
 * ES9+ (LPA -> SM-DP+), JSON binding (digest 5.1 to 5.4), with the SM-DP+
 * steps of the common mutual authentication and download (digest 6.2 to
 * 6.7) and handleNotification (digest 8.4).
 *
 * Sessions live in the store (digest 15.4) keyed by the transactionId in
 * upper-case hex: a session is created by initiateAuthentication, moves to
 * "authenticated" exactly once (so each serverChallenge is used once), to
 * "downloaded" when a bound profile package went out, and is deleted by
 * the PIR, cancelSession, a failure, or when it has been idle longer than
 * the configured lifetime: found so when loaded, or swept in bounded
 * batches by smdp_purge_sessions (the server calls it on a timer), so
 * that sessions nobody comes back to do not pile up. initiateAuthentication
 * needs no credential, so the sessions not yet authenticated are capped:
 * beyond the cap the call gets HTTP 503 (retry later) and no row. Crypto
 * runs outside database transactions; every order and profile change runs
 * inside one.
 *
 * Every failure answers HTTP 200 with a Failed header and the subject and
 * reason codes of digest 5.4; handleNotification always answers 204.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "esim/der.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_bpp.h"
#include "smdp_int.h"

#define ES9_MAX_BODY  (256 * 1024)
#define ES9_MAX_DEPTH 8
#define ES9_HOST_ID   "esimkit1"

#define ST_STARTED	 "started"
#define ST_AUTHENTICATED "authenticated"
#define ST_DOWNLOADED	 "downloaded"

static const struct smdp_status MISSING = {"1.3.1", "2.2", "mandatory element missing"};
static const struct smdp_status BADFIELD = {"1.3.1", "2.1", "element invalid"};
static const struct smdp_status UNKNOWN_TX = {"8.10.1", "3.9", "transactionId unknown"};
static const struct smdp_status EUICC_SIG = {"8.1", "6.1", "eUICC signature invalid"};

static const struct smdp_status BUSY = {"8.8", "4.2",
					"too many sessions pending authentication; retry later"};

struct es9 {
	smdp *d;
	json_t *req;
	json_t *resp; /* fields added on success */
	struct smdp_status st;
	bool no_content; /* 204 */
	bool busy;	 /* 503 with st: the session cap is reached */
};

static const char *opt_str(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A base64 field of at most max bytes; false with st set when absent/bad. */
static bool get_b64(struct es9 *x, const char *field, size_t max, uint8_t **out, size_t *len)
{
	json_t *v = json_object_get(x->req, field);
	if (!json_is_string(v)) {
		x->st = MISSING;
		return false;
	}
	if (net_json_get_base64(x->req, field, max, out, len, NULL) != ESIM_OK) {
		x->st = BADFIELD;
		return false;
	}
	return true;
}

/* ---- sessions ------------------------------------------------------------- */

struct session {
	char txid_hex[2 * RSP_TXID_MAX + 1];
	rsp_txid txid;
	char state[24];
	int ident;
	uint8_t euicc_challenge[16], server_challenge[16];
	uint8_t ci_pkid[CRYPTO_KEY_ID_MAX];
	size_t ci_pkid_len;
	char eid[RSP_EID_DIGITS + 1];
	int64_t order_id;
	int64_t profile_id; /* the order's (0: no order yet) */
	uint8_t *euicc_cert;
	size_t euicc_cert_len;
	uint8_t sig1[64], sig2[64];
	bool cc_required;
};

static void session_clear(struct session *s)
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

/*
 * The download's transactions run at READ COMMITTED on PostgreSQL
 * (store_transaction_opts): each write that depends on a read either locks
 * the rows it read (the order row, order_lock; a profile's state,
 * smdp_db_transition's FOR UPDATE) or carries its own condition (a session
 * becomes authenticated only WHERE state = 'started'; a notification goes
 * in with ON CONFLICT DO NOTHING against UNIQUE (eid, seq)). So two
 * downloads never abort each other for touching the same pages, as they did
 * under SERIALIZABLE (docs/PERFORMANCE.md, "PostgreSQL cost per download").
 */
#define ES9_TX (STORE_TX_LAZY | STORE_TX_READ_COMMITTED)

/* Lock only the order row (alias o) of a join: the profile's state is
 * locked where it changes, and locking the profile type's row would queue
 * every download of that type behind one another. SQLite's write lock
 * covers everything. */
static const char *order_lock(store *s)
{
	return store_sql_dialect(s) == STORE_DIALECT_POSTGRES ? "FOR UPDATE OF o" : "";
}

static esim_err delete_session(store *s, const char *txid_hex)
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
	return delete_session(s, arg);
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
static esim_err end_session(store *s, const char *txid_hex)
{
	return store_transaction_opts(s, ES9_TX, delete_session_tx, (void *)(uintptr_t)txid_hex, 0);
}

/* Load a live session; *found false when unknown or expired (then deleted:
 * in the open transaction when in_tx, else in one of its own). */
static esim_err load_session_in(smdp *d, store *s, const char *txid_hex, struct session *out,
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
	    " o.profile_id FROM smdp_sessions s LEFT JOIN smdp_orders o ON o.id = s.order_id"
	    " WHERE s.txid = ?1",
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
	store_finalize(st);
	if (out->ident < 0 || (size_t)out->ident >= d->n_ids)
		return ESIM_E_STORE_CORRUPT;
	if (expired) {
		session_clear(out);
		return in_tx ? delete_session(s, hex) : end_session(s, hex);
	}
	*found = true;
	return ESIM_OK;
}

static esim_err load_session(smdp *d, store *s, const char *txid_hex, struct session *out,
			     bool *found)
{
	return load_session_in(d, s, txid_hex, out, found, false);
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
static esim_err pending_room(smdp *d, store *s, bool *room)
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
	/* the rule of load_session: expired once idle longer than the TTL */
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

/* PK.EUICC.SIG from the SubjectPublicKeyInfo of the CERT.EUICC that
 * authenticateClient verified and kept in the session: loading the key
 * alone costs about 3/4 of parsing the whole certificate again (OpenSSL
 * 3.0, both curves; docs/PERFORMANCE.md), and this runs on every later
 * call of the session. *key: caller frees. */
/* The SubjectPublicKeyInfo TLV of a certificate's DER. */
static esim_err spki_of(const uint8_t *der, size_t len, der_span *out)
{
	der_cursor top, cert, tbs;
	der_element e, spki;
	bool present;
	der_cursor_init(&top, der, len);
	esim_err err = der_get_sequence(&top, DER_TAG_SEQUENCE, &cert);
	if (err == ESIM_OK)
		err = der_get_sequence(&cert, DER_TAG_SEQUENCE, &tbs);
	if (err == ESIM_OK)
		err = der_get_optional(&tbs, 0xA0, &present, NULL); /* version */
	/* serialNumber, signature, issuer, validity, subject */
	for (int i = 0; err == ESIM_OK && i < 5; i++)
		err = der_get_any(&tbs, &e);
	if (err == ESIM_OK)
		err = der_get_tlv(&tbs, DER_TAG_SEQUENCE, &spki);
	if (err == ESIM_OK)
		*out = spki.tlv;
	return err;
}

static size_t key_slot(const der_span *spki)
{
	uint32_t h = 2166136261u; /* FNV-1a: the slot only, equality is checked */
	for (size_t i = 0; i < spki->len; i++)
		h = (h ^ spki->p[i]) * 16777619u;
	return h % SMDP_KEY_CACHE;
}

/* Remember key (a reference is taken) as the key of this SPKI. */
static void key_keep(smdp *d, const der_span *spki, EVP_PKEY *key)
{
	if (key == NULL || spki->len > SMDP_KEY_SPKI_MAX || EVP_PKEY_up_ref(key) != 1)
		return;
	struct smdp_key *k = &d->keys[key_slot(spki)];
	pthread_mutex_lock(&d->key_lock);
	EVP_PKEY *old = k->key;
	memcpy(k->spki, spki->p, spki->len);
	k->len = spki->len;
	k->key = key;
	pthread_mutex_unlock(&d->key_lock);
	EVP_PKEY_free(old);
}

/* PK.EUICC.SIG from the SubjectPublicKeyInfo of the CERT.EUICC that
 * authenticateClient verified and kept in the session: from the key cache
 * when authenticateClient (or an earlier call) put it there, else loaded
 * from the SPKI alone. *key: caller frees. */
static esim_err euicc_pub_of(smdp *d, const struct session *ss, EVP_PKEY **key)
{
	if (!ss->euicc_cert)
		return ESIM_E_NOT_FOUND;
	der_span spki;
	esim_err err = spki_of(ss->euicc_cert, ss->euicc_cert_len, &spki);
	if (err != ESIM_OK)
		return err;
	struct smdp_key *k = &d->keys[key_slot(&spki)];
	*key = NULL;
	pthread_mutex_lock(&d->key_lock);
	if (k->key && k->len == spki.len && memcmp(k->spki, spki.p, spki.len) == 0 &&
	    EVP_PKEY_up_ref(k->key) == 1)
		*key = k->key;
	pthread_mutex_unlock(&d->key_lock);
	if (*key)
		return ESIM_OK;
	err = crypto_key_load_public(spki.p, spki.len, key);
	if (err == ESIM_OK)
		key_keep(d, &spki, *key);
	return err;
}

/* ---- initiateAuthentication (digest 6.2) ---------------------------------------- */

struct info1 {
	uint8_t svn[3];
	der_span verif[16], sign[16];
	size_t n_verif, n_sign;
};

static esim_err parse_pkid_list(der_cursor *c, uint32_t tag, der_span *out, size_t *n)
{
	bool present;
	der_cursor list;
	esim_err err = der_get_optional(c, tag, &present, &list);
	if (err != ESIM_OK || !present)
		return err;
	while (!der_cursor_empty(&list)) {
		der_span id;
		if ((err = der_get_octet_string(&list, 0x04, &id)) != ESIM_OK)
			return err;
		if (*n < 16)
			out[(*n)++] = id;
	}
	return ESIM_OK;
}

static esim_err parse_info1(const uint8_t *p, size_t len, struct info1 *out)
{
	memset(out, 0, sizeof *out);
	der_cursor top, in;
	der_cursor_init(&top, p, len);
	esim_err err = der_get_sequence(&top, 0xBF20, &in);
	if (err == ESIM_OK)
		err = der_expect_end(&top);
	der_span svn;
	if (err == ESIM_OK)
		err = der_get_octet_string(&in, 0x82, &svn);
	if (err == ESIM_OK && svn.len != 3)
		err = ESIM_E_RSP_BAD_STRUCTURE;
	if (err == ESIM_OK) {
		memcpy(out->svn, svn.p, 3);
		err = parse_pkid_list(&in, 0xA9, out->verif, &out->n_verif);
	}
	if (err == ESIM_OK)
		err = parse_pkid_list(&in, 0xAA, out->sign, &out->n_sign);
	return err; /* later (v3) elements are ignored */
}

static bool span_has(const der_span *list, size_t n, const uint8_t *id, size_t id_len)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].len == id_len && memcmp(list[i].p, id, id_len) == 0)
			return true;
	return false;
}

struct session_new {
	const char *hex;
	int ident;
	const uint8_t *euicc_chal, *server_chal, *ci_pkid;
	size_t ci_pkid_len;
	time_t now;
};

static esim_err session_insert_tx(store *s, void *arg)
{
	const struct session_new *a = arg;
	store_stmt *st;
	esim_err err =
	    store_prepare(s,
			  "INSERT INTO smdp_sessions (txid, state, ident, euicc_challenge,"
			  " server_challenge, ci_pkid, cc_required, created, updated)"
			  " VALUES (?1, 'started', ?2, ?3, ?4, ?5, 0, ?6, ?6)",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, a->hex);
	store_bind_int64(st, 2, a->ident);
	store_bind_blob(st, 3, a->euicc_chal, 16);
	store_bind_blob(st, 4, a->server_chal, 16);
	store_bind_blob(st, 5, a->ci_pkid, a->ci_pkid_len);
	store_bind_int64(st, 6, (int64_t)a->now);
	err = store_run_at_commit(st); /* BEGIN, INSERT and COMMIT: one round trip */
	store_finalize(st);
	return err;
}

static esim_err initiate_authentication(struct es9 *x, store *s)
{
	smdp *d = x->d;
	const char *addr = opt_str(x->req, "smdpAddress");
	uint8_t *chal = NULL, *info = NULL;
	size_t chal_len = 0, info_len = 0;
	esim_err err = ESIM_OK;
	if (!addr) {
		x->st = MISSING;
		return ESIM_OK;
	}
	if (!get_b64(x, "euiccChallenge", 64, &chal, &chal_len) ||
	    !get_b64(x, "euiccInfo1", 4096, &info, &info_len))
		goto out;
	if (chal_len != 16) {
		x->st = BADFIELD;
		goto out;
	}
	if (strcasecmp(addr, d->fqdn) != 0) {
		x->st = SMDP_FAIL("8.8.1", "3.8", "SM-DP+ address refused");
		goto out;
	}
	struct info1 i1;
	if (parse_info1(info, info_len, &i1) != ESIM_OK) {
		x->st = BADFIELD;
		goto out;
	}
	/* this server implements SGP.22 v2.x (2.0.0 up to, not including, 3.0.0) */
	if (i1.svn[0] != 2) {
		x->st = SMDP_FAIL("8.8.3", "3.1", "SGP.22 version not supported");
		goto out;
	}
	/* the CI the eUICC will sign with: one it lists and we trust,
	 * preferring the CI of one of our identities */
	const uint8_t *sign_ci = NULL;
	size_t sign_ci_len = 0;
	for (size_t i = 0; i < i1.n_sign && !sign_ci; i++)
		for (size_t k = 0; k < d->n_ids; k++)
			if (i1.sign[i].len == d->ids[k].ci_pkid_len &&
			    memcmp(i1.sign[i].p, d->ids[k].ci_pkid, i1.sign[i].len) == 0 &&
			    crypto_trust_find(d->trust, i1.sign[i].p, i1.sign[i].len)) {
				sign_ci = i1.sign[i].p;
				sign_ci_len = i1.sign[i].len;
			}
	for (size_t i = 0; i < i1.n_sign && !sign_ci; i++)
		if (crypto_trust_find(d->trust, i1.sign[i].p, i1.sign[i].len)) {
			sign_ci = i1.sign[i].p;
			sign_ci_len = i1.sign[i].len;
		}
	if (!sign_ci) {
		x->st = SMDP_FAIL("8.8.2", "3.1", "none of the eUICC's CIs is supported");
		goto out;
	}
	/* our DPauth must chain to a CI the eUICC can verify with; prefer the
	 * identity of the signing CI */
	int ident = -1;
	for (size_t k = 0; k < d->n_ids; k++) {
		if (!span_has(i1.verif, i1.n_verif, d->ids[k].ci_pkid, d->ids[k].ci_pkid_len))
			continue;
		if (ident < 0 || (d->ids[k].ci_pkid_len == sign_ci_len &&
				  memcmp(d->ids[k].ci_pkid, sign_ci, sign_ci_len) == 0))
			ident = (int)k;
	}
	if (ident < 0) {
		x->st = SMDP_FAIL("8.8.4", "3.7", "no SM-DP+ certificate for the eUICC's CIs");
		goto out;
	}
	bool room;
	if ((err = pending_room(d, s, &room)) != ESIM_OK)
		goto out;
	if (!room) {
		x->st = BUSY;
		x->busy = true;
		smdp_logf(d, "session_cap", "pending>=%u", d->max_pending);
		goto out;
	}
	struct smdp_identity *id = &d->ids[ident];
	rsp_txid txid;
	uint8_t server_chal[16];
	if ((err = rsp_txid_random(&txid)) != ESIM_OK)
		goto out;
	if (RAND_bytes(server_chal, sizeof server_chal) != 1) {
		err = ESIM_E_CRYPTO_RANDOM;
		goto out;
	}
	uint8_t *signed1 = NULL, sig1[RSP_SIG_LEN], sig_tlv[RSP_SIG_TLV_LEN];
	size_t signed1_len = 0;
	err = rsp_server_signed1_build(&txid, chal, d->fqdn, server_chal, id->dpauth_key, &signed1,
				       &signed1_len, sig1);
	if (err != ESIM_OK)
		goto out;
	char hex[2 * RSP_TXID_MAX + 1];
	rsp_txid_to_hex(&txid, hex);
	struct session_new sn = {hex, ident, chal, server_chal, sign_ci, sign_ci_len, smdp_now(d)};
	err = store_transaction_opts(s, ES9_TX, session_insert_tx, &sn, 0);
	if (err == ESIM_OK) {
		atomic_fetch_add(&d->pending, 1);
		uint8_t pk[2 + CRYPTO_KEY_ID_MAX];
		pk[0] = 0x04;
		pk[1] = (uint8_t)sign_ci_len;
		memcpy(pk + 2, sign_ci, sign_ci_len);
		size_t cert_len;
		const uint8_t *cert = crypto_cert_der(id->dpauth, &cert_len);
		rsp_sig_tlv(sig1, sig_tlv);
		json_object_set_new(x->resp, "transactionId", json_string(hex));
		net_json_set_base64(x->resp, "serverSigned1", signed1, signed1_len);
		net_json_set_base64(x->resp, "serverSignature1", sig_tlv, sizeof sig_tlv);
		net_json_set_base64(x->resp, "euiccCiPKIdToBeUsed", pk, 2 + sign_ci_len);
		net_json_set_base64(x->resp, "serverCertificate", cert, cert_len);
		smdp_logf(d, "session_start", "txid=%s curve=%s", hex,
			  crypto_curve_name(id->curve));
	}
	free(signed1);
out:
	free(chal);
	free(info);
	return err;
}

/* ---- authenticateClient (digest 6.3) --------------------------------------------- */

/*
 * CERT.EUM is the same for every eUICC of a manufacturer's batch, so the
 * work that depends on it alone (parse, the CI's signature, CA rights and
 * role) is done once per distinct certificate and kept in d->eum. What
 * depends on the moment or the session (validity, which CI the session
 * agreed on) is checked every time by check_chain.
 */
static const crypto_cert *eum_cached(smdp *d, const der_span *der)
{
	pthread_mutex_lock(&d->eum_lock);
	size_t n = d->n_eum;
	pthread_mutex_unlock(&d->eum_lock);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const uint8_t *p = crypto_cert_der(d->eum[i].cert, &len);
		if (len == der->len && memcmp(p, der->p, len) == 0)
			return d->eum[i].cert;
	}
	return NULL;
}

/* Keep a verified EUM in the cache. *cert becomes NULL when the cache took
 * it, or when an equal entry was already there (then *cert is freed); it
 * stays with the caller when the cache is full. The certificate to use from
 * now on comes back; *record says whether this caller is the one to record
 * it in smdp_eum_certs (false when another thread's copy came first). */
static const crypto_cert *eum_keep(smdp *d, crypto_cert **cert, bool *record)
{
	const crypto_cert *use = *cert;
	size_t len;
	const uint8_t *p = crypto_cert_der(*cert, &len);
	*record = true;
	pthread_mutex_lock(&d->eum_lock);
	for (size_t i = 0; i < d->n_eum; i++) {
		size_t l2;
		const uint8_t *p2 = crypto_cert_der(d->eum[i].cert, &l2);
		if (l2 == len && memcmp(p, p2, len) == 0) { /* another thread was first */
			use = d->eum[i].cert;
			crypto_cert_free(*cert);
			*cert = NULL;
			*record = false;
			break;
		}
	}
	if (*cert && d->n_eum < SMDP_EUM_CACHE) {
		d->eum[d->n_eum++].cert = *cert;
		*cert = NULL;
	}
	pthread_mutex_unlock(&d->eum_lock);
	return use;
}

/*
 * The cache is lost on restart and holds SMDP_EUM_CACHE entries, yet a PIR
 * callback (es2.c add_euicc_chain) needs the EUM of a session that may have
 * been authenticated before a restart. So a verified EUM is also written to
 * smdp_eum_certs, by SKI: once per distinct EUM and process (the cache
 * remembers it after that), not once per download. With the cache full, an
 * EUM is verified on every download anyway; a read by primary key then
 * spares the write.
 */
struct eum_row {
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t ski_len;
	const uint8_t *der;
	size_t der_len;
	int64_t now;
};

static esim_err eum_insert_tx(store *s, void *arg)
{
	const struct eum_row *r = arg;
	store_stmt *st;
	esim_err err = store_prepare(s,
				     "INSERT INTO smdp_eum_certs (ski, der, created) VALUES"
				     " (?1, ?2, ?3) ON CONFLICT (ski) DO NOTHING",
				     &st);
	if (err != ESIM_OK)
		return err;
	store_bind_blob(st, 1, r->ski, r->ski_len);
	store_bind_blob(st, 2, r->der, r->der_len);
	store_bind_int64(st, 3, r->now);
	err = store_run(st);
	store_finalize(st);
	return err;
}

static void eum_record(smdp *d, store *s, const crypto_cert *eum, bool cache_full)
{
	struct eum_row r = {.now = (int64_t)smdp_now(d)};
	r.der = crypto_cert_der(eum, &r.der_len);
	esim_err err = crypto_cert_ski(eum, r.ski, &r.ski_len);
	if (err == ESIM_OK && cache_full) {
		store_stmt *st;
		if ((err = store_prepare(s, "SELECT 1 FROM smdp_eum_certs WHERE ski = ?1", &st)) ==
		    ESIM_OK) {
			bool row = false;
			store_bind_blob(st, 1, r.ski, r.ski_len);
			err = store_step(st, &row);
			store_finalize(st);
			if (err == ESIM_OK && row)
				return;
		}
	}
	if (err == ESIM_OK)
		err = store_transaction(s, eum_insert_tx, &r, 0);
	if (err != ESIM_OK) /* the download goes on; only a later PIR misses it */
		smdp_logf(d, "eum_record_failed", "error=%s", esim_strerror(err));
}

/* The eUICC chain, step by step, so that each failure gets its code. */
static bool check_chain(smdp *d, store *s, const struct session *ss,
			const struct rsp_auth_server_resp *r, struct smdp_status *st,
			crypto_cert **euicc_out, char eid[RSP_EID_DIGITS + 1])
{
	crypto_cert *own_eum = NULL, *euicc = NULL;
	const crypto_cert *eum = eum_cached(d, &r->eum_cert);
	time_t now = smdp_now(d);
	bool ok = false;
	if (!eum && crypto_cert_load(r->eum_cert.p, r->eum_cert.len, &own_eum) != ESIM_OK) {
		*st = SMDP_FAIL("8.1.2", "6.1", "EUM certificate invalid");
		goto out;
	}
	if (!eum)
		eum = own_eum;
	if (crypto_cert_load(r->euicc_cert.p, r->euicc_cert.len, &euicc) != ESIM_OK) {
		*st = SMDP_FAIL("8.1.3", "6.1", "eUICC certificate invalid");
		goto out;
	}
	uint8_t aki[CRYPTO_KEY_ID_MAX], ski[CRYPTO_KEY_ID_MAX];
	size_t aki_len, ski_len;
	if (crypto_cert_aki(eum, aki, &aki_len) != ESIM_OK || aki_len != ss->ci_pkid_len ||
	    memcmp(aki, ss->ci_pkid, aki_len) != 0) {
		*st = SMDP_FAIL("8.11.1", "3.9", "EUM not issued by the CI to be used");
		goto out;
	}
	crypto_rsp_role role;
	if (own_eum) {
		const crypto_cert *ci = crypto_trust_find(d->trust, ss->ci_pkid, ss->ci_pkid_len);
		if (!ci || crypto_cert_verify_signed_by(own_eum, ci) != ESIM_OK ||
		    crypto_cert_check_ca(own_eum) != ESIM_OK ||
		    crypto_cert_role(own_eum, &role) != ESIM_OK || role != CRYPTO_ROLE_EUM) {
			*st = SMDP_FAIL("8.1.2", "6.1", "EUM certificate invalid");
			goto out;
		}
		/* verified: from now on the cache's copy (if it took ours, it
		 * owns it; if another thread's came first, ours goes) */
		bool record;
		eum = eum_keep(d, &own_eum, &record);
		if (record)
			eum_record(d, s, eum, own_eum != NULL);
	}
	if (d->check_time) {
		esim_err e = crypto_cert_check_time(eum, now);
		if (e != ESIM_OK) {
			*st = e == ESIM_E_CERT_EXPIRED
				  ? SMDP_FAIL("8.1.2", "6.3", "EUM certificate expired")
				  : SMDP_FAIL("8.1.2", "6.1", "EUM certificate not yet valid");
			goto out;
		}
	}
	if (crypto_cert_aki(euicc, aki, &aki_len) != ESIM_OK ||
	    crypto_cert_ski(eum, ski, &ski_len) != ESIM_OK || aki_len != ski_len ||
	    memcmp(aki, ski, aki_len) != 0 || crypto_cert_verify_signed_by(euicc, eum) != ESIM_OK ||
	    crypto_cert_role(euicc, &role) != ESIM_OK || role != CRYPTO_ROLE_EUICC ||
	    crypto_cert_check_digital_signature(euicc) != ESIM_OK) {
		*st = SMDP_FAIL("8.1.3", "6.1", "eUICC certificate invalid");
		goto out;
	}
	if (d->check_time) {
		esim_err e = crypto_cert_check_time(euicc, now);
		if (e != ESIM_OK) {
			*st = e == ESIM_E_CERT_EXPIRED
				  ? SMDP_FAIL("8.1.3", "6.3", "eUICC certificate expired")
				  : SMDP_FAIL("8.1.3", "6.1", "eUICC certificate not yet valid");
			goto out;
		}
	}
	/* digest 5.4 (impl): an EID outside the EUM's range makes the eUICC
	 * certificate invalid for that EUM */
	if (crypto_cert_eid(euicc, eid) != ESIM_OK ||
	    crypto_cert_eid_permitted(eum, eid) != ESIM_OK) {
		*st = SMDP_FAIL("8.1.3", "6.1", "EID outside the EUM's permitted range");
		goto out;
	}
	/* SGP.29 check digits: not a chain rule (cert.c), but no EID that
	 * breaks them is one; the SM-DP+ refuses it as an invalid EID */
	if (rsp_eid_check(eid) != ESIM_OK) {
		*st = SMDP_FAIL("8.1.1", "2.1",
				"EID of the eUICC certificate: wrong check digits (SGP.29: the "
				"32-digit number mod 97 must be 1)");
		smdp_logf(d, "eid_refused", "eid=%s rule=sgp29-mod97", eid);
		goto out;
	}
	*euicc_out = euicc;
	euicc = NULL;
	ok = true;
out:
	crypto_cert_free(own_eum);
	crypto_cert_free(euicc);
	return ok;
}

/* forbiddenProfilePolicyRules (99) of EUICCInfo2, 0 when absent. */
static uint64_t forbidden_ppr(der_span info2)
{
	der_cursor top, in;
	der_cursor_init(&top, info2.p, info2.len);
	if (der_get_sequence(&top, 0xBF22, &in) != ESIM_OK)
		return 0;
	der_element e;
	esim_err err;
	while (der_next_child(&in, &e, &err)) {
		if (e.tag != 0x99)
			continue;
		der_bits b;
		uint64_t m = 0;
		if (der_value_bit_string(e.value, &b) == ESIM_OK &&
		    der_bits_to_mask(&b, &m) == ESIM_OK)
			return m;
	}
	return 0;
}

/* What EUICCInfo2 says about the eUICC's room for a profile (digest 4.3):
 * the SAIP version it supports (81) and its free non-volatile memory (82
 * inside extCardResource 84). has_* false when the eUICC does not say. */
struct info2_caps {
	bool has_saip, has_free;
	unsigned saip_major, saip_minor;
	uint64_t free_nvm;
};

static void parse_info2_caps(der_span info2, struct info2_caps *out)
{
	memset(out, 0, sizeof *out);
	der_cursor top, in;
	der_cursor_init(&top, info2.p, info2.len);
	if (der_get_sequence(&top, 0xBF22, &in) != ESIM_OK)
		return;
	der_element e;
	esim_err err;
	while (der_next_child(&in, &e, &err)) {
		if (e.tag == 0x81 && e.value.len == 3) {
			out->has_saip = true;
			out->saip_major = e.value.p[0];
			out->saip_minor = e.value.p[1];
		} else if (e.tag == 0x84) {
			der_cursor ext = der_cursor_of(e.value);
			der_element r;
			esim_err e2;
			while (der_next_child(&ext, &r, &e2)) {
				if (r.tag != 0x82 || r.value.len == 0 || r.value.len > 8)
					continue;
				uint64_t v = 0;
				for (size_t i = 0; i < r.value.len; i++)
					v = v << 8 | r.value.p[i];
				out->has_free = true;
				out->free_nvm = v;
			}
		}
	}
}

/* The SAIP version in a package's ProfileHeader (digest 13.3). */
static bool upp_saip_version(const uint8_t *upp, size_t len, unsigned *major, unsigned *minor)
{
	der_cursor top, hdr;
	der_cursor_init(&top, upp, len);
	uint64_t ma = 0, mi = 0;
	if (der_get_sequence(&top, 0xA0, &hdr) != ESIM_OK ||
	    der_get_uint64(&hdr, 0x80, &ma) != ESIM_OK ||
	    der_get_uint64(&hdr, 0x81, &mi) != ESIM_OK || ma > 255 || mi > 255)
		return false;
	*major = (unsigned)ma;
	*minor = (unsigned)mi;
	return true;
}

/* What the order resolution hands to the crypto outside the transaction. */
struct auth_tx {
	smdp *d;
	const struct session *ss;
	const char *eid;
	bool has_mid;
	char mid[128];
	uint64_t forbidden;
	struct info2_caps caps;
	time_t now;
	const struct rsp_auth_server_resp *r;
	EVP_PKEY *dppb_key;
	/* out */
	bool lost; /* another request authenticated the session first */
	struct smdp_status st;
	uint8_t *signed2; /* smdpSigned2, malloc'd, with its signature sig2 */
	size_t signed2_len;
	uint8_t sig2[RSP_SIG_LEN];
	int64_t order_id;
	char iccid[RSP_ICCID_TEXT_MAX];
	char spn[64], name[128];
	int pclass;
	uint32_t ppr;
	bool cc_required, has_bound;
	uint8_t bound[RSP_OTPK_LEN];
};

static esim_err fail_order(smdp *d, store *s, int64_t order_id, int64_t profile_id, time_t now,
			   int point, const struct smdp_status *st)
{
	esim_err err = smdp_db_transition(s, profile_id, 0x1FFu & ~(SMDP_BIT(SMDP_INSTALLED)),
					  SMDP_ERROR, now, st->message);
	store_stmt *q;
	if (err == ESIM_OK &&
	    (err = store_prepare(s, "UPDATE smdp_orders SET open = 0, updated = ?1 WHERE id = ?2",
				 &q)) == ESIM_OK) {
		store_bind_int64(q, 1, (int64_t)now);
		store_bind_int64(q, 2, order_id);
		err = store_run(q);
		store_finalize(q);
	}
	if (err == ESIM_OK)
		err = smdp_outbox_queue(d, s, order_id, point, st, NULL, 0);
	return err;
}

/*
 * The session becomes authenticated exactly once (the challenge is spent):
 * every write of auth_tx_fn's transaction is preceded or followed by an
 * UPDATE ... WHERE state = 'started' in it, and when that changes no row
 * (a concurrent request got there first) the transaction is rolled back.
 *
 * session_spend: the session alone, before the writes of a failed request.
 */
static esim_err session_spend(store *s, struct auth_tx *a)
{
	store_stmt *st;
	esim_err err =
	    store_prepare(s,
			  "UPDATE smdp_sessions SET state = 'authenticated', updated = ?1"
			  " WHERE txid = ?2 AND state = 'started'",
			  &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)a->now);
	store_bind_text(st, 2, a->ss->txid_hex);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK && store_changes(s) != 1) {
		a->lost = true;
		err = ESIM_E_NOT_FOUND;
	}
	return err;
}

/* The session row once the eUICC is authenticated, in the same transaction
 * as the order it was matched with (what getBoundProfilePackage needs), and
 * the state change in the same statement. */
static esim_err session_authenticated(store *s, struct auth_tx *a)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    s,
	    "UPDATE smdp_sessions SET state = 'authenticated', updated = ?8, eid = ?1,"
	    " order_id = ?2, euicc_cert = ?3, euicc_sig1 = ?4, smdp_sig2 = ?5,"
	    " cc_required = ?6 WHERE txid = ?7 AND state = 'started'",
	    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_text(st, 1, a->eid);
	store_bind_int64(st, 2, a->order_id);
	store_bind_blob(st, 3, a->r->euicc_cert.p, a->r->euicc_cert.len);
	store_bind_blob(st, 4, a->r->euicc_signature1, RSP_SIG_LEN);
	store_bind_blob(st, 5, a->sig2, RSP_SIG_LEN);
	store_bind_int64(st, 6, a->cc_required);
	store_bind_text(st, 7, a->ss->txid_hex);
	store_bind_int64(st, 8, (int64_t)a->now);
	err = store_run(st);
	store_finalize(st);
	if (err == ESIM_OK && store_changes(s) != 1) {
		a->lost = true;
		err = ESIM_E_NOT_FOUND; /* rolls back the attempt counted */
	}
	return err;
}

static esim_err auth_tx_fn(store *s, void *arg)
{
	struct auth_tx *a = arg;
	a->st = SMDP_OK_STATUS;
	a->has_bound = false;
	free(a->signed2); /* from a try that lost a conflict */
	a->signed2 = NULL;
	a->lost = false;
	/* the session is spent where this transaction writes (session_spend,
	 * session_authenticated); the reads and refusals before need no lock */
	store_stmt *st;
	esim_err err;
	const char *cols =
	    "SELECT o.id, o.eid, o.expires, o.attempts, o.cc_hash, o.bound_otpk, p.id, p.state,"
	    " p.iccid, t.spn, t.profile_name, t.profile_class, t.ppr, p.upp FROM smdp_orders o"
	    " JOIN smdp_profiles p ON p.id = o.profile_id JOIN smdp_profile_types t"
	    " ON t.id = p.type_id WHERE o.open = 1 AND ";
	char sql[700];
	const char *lock = order_lock(s);
	if (a->has_mid)
		snprintf(sql, sizeof sql, "%so.matching_id = ?1 %s", cols, lock);
	else
		snprintf(sql, sizeof sql,
			 "%so.eid = ?1 AND (o.matching_id IS NULL OR o.matching_id = '') AND"
			 " p.state IN ('Released', 'Downloaded') ORDER BY o.id LIMIT 1 %s",
			 cols, lock);
	if ((err = store_prepare(s, sql, &st)) != ESIM_OK)
		return err;
	store_bind_text(st, 1, a->has_mid ? a->mid : a->eid);
	bool row;
	err = store_step(st, &row);
	if (err != ESIM_OK || !row) {
		store_finalize(st);
		if (err == ESIM_OK)
			a->st = SMDP_FAIL("8.2.6", "3.8", "no order for this matchingId / EID");
		return err;
	}
	a->order_id = store_col_int64(st, 0);
	const char *oeid = store_col_text(st, 1);
	int64_t expires = store_col_int64(st, 2), attempts = store_col_int64(st, 3);
	size_t n;
	a->cc_required = store_col_blob(st, 4, &n) != NULL;
	const uint8_t *b = store_col_blob(st, 5, &n);
	if (b && n == RSP_OTPK_LEN) {
		memcpy(a->bound, b, n);
		a->has_bound = true;
	}
	int64_t pid = store_col_int64(st, 6);
	enum smdp_state pst = SMDP_ERROR;
	smdp_state_parse(store_col_text(st, 7), &pst);
	snprintf(a->iccid, sizeof a->iccid, "%s", store_col_text(st, 8));
	snprintf(a->spn, sizeof a->spn, "%s", store_col_text(st, 9));
	snprintf(a->name, sizeof a->name, "%s", store_col_text(st, 10));
	a->pclass = (int)store_col_int64(st, 11);
	a->ppr = (uint32_t)store_col_int64(st, 12);
	size_t upp_len = 0;
	const uint8_t *upp = store_col_blob(st, 13, &upp_len);
	unsigned pmaj = 0, pmin = 0;
	bool has_ver = upp && upp_saip_version(upp, upp_len, &pmaj, &pmin);
	bool eid_mismatch = oeid && strcmp(oeid, a->eid) != 0;
	store_finalize(st);
	if (eid_mismatch) {
		a->st = SMDP_FAIL("8.1.1", "3.8", "order bound to another EID");
		return ESIM_OK;
	}
	if (pst == SMDP_ALLOCATED || pst == SMDP_LINKED || pst == SMDP_CONFIRMED) {
		a->st = SMDP_FAIL("8.2", "1.2", "profile not released");
		return ESIM_OK;
	}
	if (pst != SMDP_RELEASED && pst != SMDP_DOWNLOADED) {
		a->st = SMDP_FAIL("8.2.6", "3.8", "order not downloadable");
		return ESIM_OK;
	}
	if (expires < (int64_t)a->now) {
		a->st = SMDP_FAIL("8.8.5", "4.10", "download order expired");
		if ((err = session_spend(s, a)) != ESIM_OK)
			return err;
		return fail_order(a->d, s, a->order_id, pid, a->now, 1, &a->st);
	}
	if (attempts >= (int64_t)a->d->max_attempts) {
		a->st = SMDP_FAIL("8.8.5", "6.4", "too many download attempts");
		if ((err = session_spend(s, a)) != ESIM_OK)
			return err;
		return fail_order(a->d, s, a->order_id, pid, a->now, 1, &a->st);
	}
	if ((err = store_prepare(s,
				 "UPDATE smdp_orders SET attempts = attempts + 1, updated = ?1"
				 " WHERE id = ?2",
				 &st)) != ESIM_OK)
		return err;
	store_bind_int64(st, 1, (int64_t)a->now);
	store_bind_int64(st, 2, a->order_id);
	err = store_run(st);
	store_finalize(st);
	if (err != ESIM_OK)
		return err;
	/* eligibility (digest 6.3 step 10): the eUICC must support the
	 * package's SAIP version, allow its PPRs, and have room for it (the
	 * package size is a lower bound of what installing it takes) */
	if (has_ver && a->caps.has_saip &&
	    (pmaj > a->caps.saip_major ||
	     (pmaj == a->caps.saip_major && pmin > a->caps.saip_minor)))
		a->st = SMDP_FAIL("8.2.5", "4.3", "profile version not supported by the eUICC");
	else if (a->forbidden & a->ppr)
		a->st = SMDP_FAIL("8.2.5", "4.3", "profile policy rules forbidden by the eUICC");
	else if (a->caps.has_free && a->caps.free_nvm < upp_len)
		a->st = SMDP_FAIL("8.1", "4.8", "insufficient memory on the eUICC");
	if (a->st.subject)
		return (err = session_spend(s, a)) != ESIM_OK
			   ? err
			   : smdp_outbox_queue(a->d, s, a->order_id, 1, &a->st, NULL, 0);
	/* smdpSigned2 (steps 12, 13) depends on the order just read (ccRequired,
	 * the otPK it is bound to), and the session must keep its signature:
	 * signing here saves a second transaction */
	err = rsp_smdp_signed2_build(&a->ss->txid, a->cc_required, a->has_bound ? a->bound : NULL,
				     a->dppb_key, a->r->euicc_signature1, &a->signed2,
				     &a->signed2_len, a->sig2);
	if (err == ESIM_OK)
		err = session_authenticated(s, a);
	return err;
}

static esim_err build_metadata(smdp *d, const char *iccid, const char *spn, const char *name,
			       int pclass, uint32_t ppr, uint8_t **out, size_t *out_len)
{
	struct rsp_metadata m;
	memset(&m, 0, sizeof m);
	esim_err err = rsp_iccid_to_bcd(iccid, m.iccid);
	if (err != ESIM_OK)
		return err;
	struct rsp_notif_config nc = {RSP_PMO_ALL_LOCAL, d->fqdn};
	m.spn = (char *)spn;
	m.name = (char *)name;
	m.has_class = true;
	m.profile_class = (enum rsp_profile_class)pclass;
	m.notif = &nc;
	m.n_notif = 1;
	m.has_ppr = ppr != 0;
	m.ppr = ppr;
	return rsp_metadata_encode(&m, out, out_len);
}

static esim_err authenticate_client(struct es9 *x, store *s)
{
	smdp *d = x->d;
	const char *txhex = opt_str(x->req, "transactionId");
	uint8_t *asr = NULL;
	size_t asr_len = 0;
	struct auth_tx a;
	memset(&a, 0, sizeof a);
	if (!txhex) {
		x->st = MISSING;
		return ESIM_OK;
	}
	struct session ss;
	bool found;
	esim_err err = load_session(d, s, txhex, &ss, &found);
	if (err != ESIM_OK)
		return err;
	if (!found || strcmp(ss.state, ST_STARTED) != 0) {
		x->st = UNKNOWN_TX;
		goto out;
	}
	if (!get_b64(x, "authenticateServerResponse", 64 * 1024, &asr, &asr_len))
		goto out;
	struct rsp_auth_server_resp r;
	esim_err pe = rsp_auth_server_resp_parse(asr, asr_len, &r);
	if (pe == ESIM_E_RSP_EUICC_ERROR) {
		/* digest 6.3 step 2 (impl): the eUICC refused; end the session */
		x->st = SMDP_FAIL("8.1", "3.8", "eUICC refused the authentication");
		err = end_session(s, ss.txid_hex);
		goto out;
	}
	if (pe != ESIM_OK) {
		x->st = BADFIELD;
		goto out;
	}
	crypto_cert *euicc = NULL;
	char eid[RSP_EID_DIGITS + 1];
	if (!check_chain(d, s, &ss, &r, &x->st, &euicc, eid)) {
		err = end_session(s, ss.txid_hex);
		goto out;
	}
	if (crypto_ecdsa_verify(crypto_cert_pubkey(euicc), r.euicc_signed1.p, r.euicc_signed1.len,
				r.euicc_signature1, RSP_SIG_LEN) != ESIM_OK ||
	    !rsp_txid_equal(&r.txid, &ss.txid) ||
	    memcmp(r.server_challenge, ss.server_challenge, 16) != 0) {
		crypto_cert_free(euicc);
		x->st = EUICC_SIG;
		err = end_session(s, ss.txid_hex);
		goto out;
	}
	der_span spki;
	if (spki_of(r.euicc_cert.p, r.euicc_cert.len, &spki) == ESIM_OK)
		key_keep(d, &spki, crypto_cert_pubkey(euicc));
	crypto_cert_free(euicc);
	a.d = d;
	a.ss = &ss;
	a.eid = eid;
	a.now = smdp_now(d);
	a.r = &r;
	a.dppb_key = d->ids[ss.ident].dppb_key;
	a.forbidden = forbidden_ppr(r.euicc_info2);
	parse_info2_caps(r.euicc_info2, &a.caps);
	if (r.has_matching_id && r.matching_id.len > 0) {
		if (r.matching_id.len >= sizeof a.mid) {
			x->st = SMDP_FAIL("8.2.6", "3.8", "matchingId refused");
			err = end_session(s, ss.txid_hex);
			goto out;
		}
		a.has_mid = true;
		memcpy(a.mid, r.matching_id.p, r.matching_id.len);
	}
	err = store_transaction_opts(s, ES9_TX, auth_tx_fn, &a, 0);
	if (err == ESIM_E_NOT_FOUND && a.lost) { /* rolled back: nothing written */
		a.st = UNKNOWN_TX;
		err = ESIM_OK;
	}
	if (err != ESIM_OK)
		goto out;
	if (a.st.subject) {
		x->st = a.st;
		err = end_session(s, ss.txid_hex);
		goto out;
	}
	/* profileMetadata (step 11); smdpSigned2 came out of the transaction */
	struct smdp_identity *id = &d->ids[ss.ident];
	uint8_t *meta = NULL, sig_tlv[RSP_SIG_TLV_LEN];
	size_t meta_len = 0;
	err = build_metadata(d, a.iccid, a.spn, a.name, a.pclass, a.ppr, &meta, &meta_len);
	if (err == ESIM_OK) {
		size_t cert_len;
		const uint8_t *cert = crypto_cert_der(id->dppb, &cert_len);
		rsp_sig_tlv(a.sig2, sig_tlv);
		json_object_set_new(x->resp, "transactionId", json_string(ss.txid_hex));
		net_json_set_base64(x->resp, "profileMetadata", meta, meta_len);
		net_json_set_base64(x->resp, "smdpSigned2", a.signed2, a.signed2_len);
		net_json_set_base64(x->resp, "smdpSignature2", sig_tlv, sizeof sig_tlv);
		net_json_set_base64(x->resp, "smdpCertificate", cert, cert_len);
		smdp_logf(d, "authenticated", "txid=%s eid=%s iccid=%s cc=%d", ss.txid_hex, eid,
			  a.iccid, a.cc_required);
	}
	free(meta);
out:
	free(a.signed2);
	free(asr);
	session_clear(&ss);
	return err;
}

/* ---- getBoundProfilePackage (digest 6.5) --------------------------------------------- */

struct bpp_tx {
	smdp *d;
	const struct session *ss;
	const struct rsp_prepare_download_resp *pd;
	time_t now;
	/* phase 1 out */
	struct smdp_status st;
	int64_t profile_id;
	char iccid[RSP_ICCID_TEXT_MAX];
	char spn[64], name[128];
	int pclass;
	uint32_t ppr;
	uint8_t *upp;
	size_t upp_len;
	bool ppk;	     /* the type binds with profile protection keys */
	enum smdp_state pst; /* the profile's state as phase 1 read it */
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
		 " p.keys_sealed, p.kek_id"
		 " FROM smdp_orders o"
		 " JOIN smdp_profiles p ON p.id = o.profile_id JOIN smdp_profile_types t"
		 " ON t.id = p.type_id WHERE o.id = ?1 %s",
		 order_lock(s));
	esim_err err = store_prepare(s, sql, &st);
	if (err != ESIM_OK)
		return err;
	store_bind_int64(st, 1, a->ss->order_id);
	bool row;
	if ((err = store_step(st, &row)) != ESIM_OK || !row) {
		store_finalize(st);
		if (err == ESIM_OK)
			a->st = UNKNOWN_TX;
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
		return fail_order(a->d, s, a->ss->order_id, a->profile_id, a->now, 3, &a->st);
	}
	if (a->ss->cc_required && has_cc) {
		if (cc_left <= 0) {
			a->st = SMDP_FAIL("8.2.7", "6.4", "confirmation code retries exceeded");
			return fail_order(a->d, s, a->ss->order_id, a->profile_id, a->now, 2,
					  &a->st);
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
				return fail_order(a->d, s, a->ss->order_id, a->profile_id, a->now,
						  2, &a->st);
			}
			a->st = SMDP_FAIL("8.2.7", "3.8", "confirmation code refused");
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
	 * after it, whose results are not read, go with the COMMIT */
	struct smdp_status ok = SMDP_OK_STATUS;
	if (err == ESIM_OK)
		err = smdp_outbox_queue(a->d, s, a->ss->order_id, 3, &ok, NULL, 0);
	store_stmt *st;
	if (err == ESIM_OK)
		err = store_prepare(s,
				    "UPDATE smdp_orders SET bound_otpk = ?1, bpp = ?2, updated = ?3"
				    " WHERE id = ?4",
				    &st);
	if (err != ESIM_OK)
		return err;
	store_bind_blob(st, 1, a->pd->otpk, RSP_OTPK_LEN);
	store_bind_blob(st, 2, a->bpp, a->bpp_len);
	store_bind_int64(st, 3, (int64_t)a->now);
	store_bind_int64(st, 4, a->ss->order_id);
	err = store_run_at_commit(st);
	store_finalize(st);
	if (err != ESIM_OK)
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
};

static esim_err bpp_load_tx(store *s, void *arg)
{
	struct bpp_load *l = arg;
	session_clear(&l->ss);
	EVP_PKEY_free(l->euicc);
	l->euicc = NULL;
	l->unknown = false;
	l->ve = ESIM_OK;
	bool found = false;
	esim_err err = load_session_in(l->a.d, s, l->txhex, &l->ss, &found, true);
	if (err != ESIM_OK)
		return err;
	if (!found || strcmp(l->ss.state, ST_AUTHENTICATED) != 0) {
		l->unknown = true;
		return ESIM_OK;
	}
	if ((err = euicc_pub_of(l->a.d, &l->ss, &l->euicc)) != ESIM_OK)
		return err;
	l->ve = rsp_prepare_download_resp_verify(l->pdr, l->pdr_len, l->euicc, &l->ss.txid,
						 l->ss.sig2, NULL, &l->pd);
	if (l->ve != ESIM_OK)
		return delete_session(s, l->ss.txid_hex);
	l->a.ss = &l->ss;
	l->a.pd = &l->pd;
	return bpp_tx1(s, &l->a);
}

static esim_err get_bound_profile_package(struct es9 *x, store *s)
{
	smdp *d = x->d;
	const char *txhex = opt_str(x->req, "transactionId");
	uint8_t *pdr = NULL, *bpp = NULL;
	size_t pdr_len = 0, bpp_len = 0;
	if (!txhex) {
		x->st = MISSING;
		return ESIM_OK;
	}
	struct bpp_load l;
	memset(&l, 0, sizeof l);
	esim_err err = ESIM_OK;
	if (!get_b64(x, "prepareDownloadResponse", 16 * 1024, &pdr, &pdr_len))
		goto out;
	l.a.d = d;
	l.a.now = smdp_now(d);
	l.txhex = txhex;
	l.pdr = pdr;
	l.pdr_len = pdr_len;
	if ((err = store_transaction_opts(s, ES9_TX, bpp_load_tx, &l, 0)) != ESIM_OK)
		goto out;
	if (l.unknown) {
		x->st = UNKNOWN_TX;
		goto out;
	}
	esim_err ve = l.ve;
	if (ve != ESIM_OK) { /* the session is already ended */
		if (ve == ESIM_E_RSP_EUICC_ERROR)
			x->st = SMDP_FAIL("8.1", "3.8", "eUICC refused PrepareDownload");
		else if (ve == ESIM_E_RSP_TXID_MISMATCH)
			x->st = UNKNOWN_TX;
		else if (ve == ESIM_E_RSP_BAD_SIGNATURE || ve == ESIM_E_CRYPTO_SIGNATURE_INVALID)
			x->st = EUICC_SIG;
		else
			x->st = BADFIELD;
		goto out;
	}
	struct bpp_tx *a = &l.a;
	struct session *ss = &l.ss;
	const struct rsp_prepare_download_resp *pd = &l.pd;
	if (a->st.subject) {
		x->st = a->st;
		err = end_session(s, ss->txid_hex);
		goto out;
	}
	struct smdp_identity *id = &d->ids[ss->ident];
	if (a->old_bpp) {
		err = rebind_txid(id->dppb_key, a->old_bpp, a->old_bpp_len, &ss->txid, pd->otpk,
				  &bpp, &bpp_len);
	} else {
		uint8_t *meta = NULL, eid_bcd[RSP_EID_LEN];
		size_t meta_len = 0;
		err = build_metadata(d, a->iccid, a->spn, a->name, a->pclass, a->ppr, &meta,
				     &meta_len);
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
			err = rsp_bpp_build(&bp, &bpp, &bpp_len);
			esim_wipe(&ppk, sizeof ppk);
			if (err == ESIM_E_CRYPTO_BAD_POINT) {
				x->st = BADFIELD;
				err = end_session(s, ss->txid_hex);
				free(meta);
				goto out;
			}
		}
		free(meta);
	}
	if (err != ESIM_OK)
		goto out;
	a->bpp = bpp;
	a->bpp_len = bpp_len;
	if ((err = store_transaction_opts(s, ES9_TX, bpp_tx2, a, 0)) != ESIM_OK)
		goto out;
	if (a->st.subject) {
		x->st = a->st;
		err = end_session(s, ss->txid_hex);
		goto out;
	}
	atomic_fetch_add(&d->downloads, 1);
	json_object_set_new(x->resp, "transactionId", json_string(ss->txid_hex));
	net_json_set_base64(x->resp, "boundProfilePackage", bpp, bpp_len);
	smdp_logf(d, "bpp", "txid=%s iccid=%s reused=%d bytes=%zu", ss->txid_hex, a->iccid,
		  a->old_bpp != NULL, bpp_len);
out:
	EVP_PKEY_free(l.euicc);
	if (l.a.upp)
		esim_wipe(l.a.upp, l.a.upp_len); /* holds the profile's keys */
	free(l.a.upp);
	free(l.a.old_bpp);
	free(pdr);
	free(bpp);
	session_clear(&l.ss);
	return err;
}

/* ---- handleNotification (digest 8.4) -------------------------------------------------- */

struct notif_tx {
	smdp *d;
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
	/* the order's profile came with the session (load_session_in) */
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
		err = smdp_outbox_queue_pir(a->d, s, a->ss->order_id, a->pir_success ? &ok : &bad,
					    a->data, a->len, a->ss->euicc_cert,
					    a->ss->euicc_cert_len);
	}
	if (err == ESIM_OK &&
	    (err = store_prepare(s, "UPDATE smdp_orders SET open = 0, updated = ?1 WHERE id = ?2",
				 &st)) == ESIM_OK) {
		store_bind_int64(st, 1, (int64_t)a->now);
		store_bind_int64(st, 2, a->ss->order_id);
		err = store_run_at_commit(st);
		store_finalize(st);
	}
	if (err == ESIM_OK)
		err = delete_session(s, a->ss->txid_hex);
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
	session_clear(&l->ss);
	l->verified = false;
	l->a.duplicate = false;
	bool found = false;
	esim_err err = load_session_in(d, s, l->hex, &l->ss, &found, true);
	if (err != ESIM_OK)
		return err;
	EVP_PKEY *c = NULL;
	struct rsp_pir pir;
	if (!found || strcmp(l->ss.state, ST_DOWNLOADED) != 0 ||
	    euicc_pub_of(d, &l->ss, &c) != ESIM_OK ||
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
			err = smdp_outbox_queue(a->d, s, oid, 5, &ok, a->data, a->len);
	}
	return err;
}

static esim_err handle_notification(struct es9 *x, store *s)
{
	smdp *d = x->d;
	x->no_content = true; /* always 204, digest 8.4 */
	uint8_t *p = NULL;
	size_t len = 0;
	esim_err err = ESIM_OK;
	atomic_fetch_add(&d->notifications, 1);
	if (!get_b64(x, "pendingNotification", 64 * 1024, &p, &len)) {
		x->st = SMDP_OK_STATUS;
		smdp_logf(d, "notification_dropped", "why=no-or-bad-field");
		return ESIM_OK;
	}
	enum rsp_pending_kind kind;
	if (rsp_pending_kind(p, len, &kind) != ESIM_OK) {
		smdp_logf(d, "notification_dropped", "why=unknown-kind");
		goto out;
	}
	struct notif_tx a;
	memset(&a, 0, sizeof a);
	a.d = d;
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
			session_clear(&l.ss);
			goto out;
		}
		if (err == ESIM_OK && l.a.pir_success && !l.a.duplicate)
			atomic_fetch_add(&d->installs, 1);
		if (err == ESIM_OK)
			smdp_logf(d, "pir", "txid=%s eid=%s iccid=%s success=%d duplicate=%d", hex,
				  l.ss.eid, l.iccid, l.a.pir_success, l.a.duplicate);
		session_clear(&l.ss);
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
	free(p);
	/* A notification is never refused visibly (digest 8.4: 204 whatever its
	 * content). But one that verified and could not be recorded must not be
	 * acknowledged: the LPA would remove it from the eUICC and the PIR or
	 * the proof of deletion would be lost. Storage trouble answers 503, and
	 * the LPA keeps the notification and sends it again. */
	if (err != ESIM_OK) {
		smdp_logf(d, "notification_error", "err=%s", esim_errname(err));
		x->no_content = false;
		x->busy = true;
		x->st = BUSY;
	}
	return ESIM_OK;
}

/* ---- cancelSession (digest 6.7) --------------------------------------------------------- */

struct cancel_tx {
	smdp *d;
	const struct session *ss;
	int64_t reason;
	time_t now;
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
			err = fail_order(a->d, s, a->ss->order_id, pid, a->now, point, &fs);
		} else {
			/* postponed, timeout, loading failed, undefined: the order stays
			 * downloadable (impl, digest 6.7) */
			err = smdp_db_transition(
			    s, pid, SMDP_BIT(SMDP_RELEASED) | SMDP_BIT(SMDP_DOWNLOADED),
			    SMDP_RELEASED, a->now, why);
			if (err == ESIM_E_SMDP_TRANSITION)
				err = ESIM_OK;
			if (err == ESIM_OK)
				err = smdp_outbox_queue(a->d, s, a->ss->order_id, point, &fs, NULL,
							0);
		}
	}
	if (err == ESIM_OK)
		err = delete_session(s, a->ss->txid_hex);
	return err;
}

static esim_err cancel_session(struct es9 *x, store *s)
{
	smdp *d = x->d;
	const char *txhex = opt_str(x->req, "transactionId");
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	EVP_PKEY *euicc = NULL;
	if (!txhex) {
		x->st = MISSING;
		return ESIM_OK;
	}
	struct session ss;
	bool found;
	esim_err err = load_session(d, s, txhex, &ss, &found);
	if (err != ESIM_OK)
		return err;
	if (!found || strcmp(ss.state, ST_STARTED) == 0) {
		x->st = UNKNOWN_TX;
		goto out;
	}
	if (!get_b64(x, "cancelSessionResponse", 4096, &csr, &csr_len))
		goto out;
	if ((err = euicc_pub_of(d, &ss, &euicc)) != ESIM_OK)
		goto out;
	struct rsp_cancel_session_resp r;
	esim_err ve = rsp_cancel_session_resp_verify(csr, csr_len, euicc, &ss.txid, NULL, &r);
	if (ve == ESIM_E_RSP_TXID_MISMATCH) {
		x->st = UNKNOWN_TX;
		goto out;
	}
	if (ve == ESIM_E_RSP_BAD_SIGNATURE || ve == ESIM_E_CRYPTO_SIGNATURE_INVALID) {
		x->st = EUICC_SIG;
		goto out;
	}
	if (ve != ESIM_OK) {
		x->st = BADFIELD;
		goto out;
	}
	if (strcmp(r.smdp_oid, d->oid) != 0) {
		x->st = SMDP_FAIL("8.8", "3.10", "SM-DP+ OID mismatch");
		goto out;
	}
	struct cancel_tx a = {d, &ss, r.reason, smdp_now(d)};
	err = store_transaction_opts(s, ES9_TX, cancel_tx_fn, &a, 0);
	smdp_logf(d, "cancel", "txid=%s reason=%lld", ss.txid_hex, (long long)r.reason);
out:
	EVP_PKEY_free(euicc);
	free(csr);
	session_clear(&ss);
	return err;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

esim_err smdp_es9(smdp *d, const char *function, const uint8_t *body, size_t len, int *status,
		  char **out)
{
	if (!d || !function || !status || !out)
		return ESIM_E_ARG;
	*out = NULL;
	esim_err (*fn)(struct es9 *, store *) = NULL;
	if (strcmp(function, "initiateAuthentication") == 0)
		fn = initiate_authentication;
	else if (strcmp(function, "authenticateClient") == 0)
		fn = authenticate_client;
	else if (strcmp(function, "getBoundProfilePackage") == 0)
		fn = get_bound_profile_package;
	else if (strcmp(function, "handleNotification") == 0)
		fn = handle_notification;
	else if (strcmp(function, "cancelSession") == 0)
		fn = cancel_session;
	if (!fn) {
		*status = 404;
		return ESIM_OK;
	}
	atomic_fetch_add(&d->req_es9, 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct es9 x = {.d = d, .st = SMDP_OK_STATUS};
	x.resp = json_object();
	store *s = NULL;
	esim_err err = ESIM_OK;
	if (!x.resp)
		return ESIM_E_NOMEM;
	if (net_json_parse(body, len, ES9_MAX_BODY, ES9_MAX_DEPTH, &x.req, NULL) != ESIM_OK ||
	    !json_is_object(x.req)) {
		x.st = BADFIELD;
		x.no_content = strcmp(function, "handleNotification") == 0;
	} else if ((err = smdp_store_get(d, &s)) == ESIM_OK) {
		err = fn(&x, s);
	}
	smdp_store_put(d, s);
	if (err == ESIM_OK) {
		if (x.no_content) {
			*status = 204;
		} else {
			*status = x.busy ? 503 : 200;
			json_t *o = smdp_json_header(&x.st);
			if (!x.st.subject)
				json_object_update(o, x.resp);
			if (x.st.subject) {
				atomic_fetch_add(&d->fail_es9, 1);
				smdp_logf(d, "es9_failed", "function=%s subject=%s reason=%s",
					  function, x.st.subject, x.st.reason);
			} else {
				atomic_fetch_add(&d->ok_es9, 1);
			}
			err = smdp_json_finish(d, o, &x.st, out);
		}
	}
	json_decref(x.req);
	json_decref(x.resp);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000L;
	atomic_fetch_add(&d->latency_us, (unsigned long)(us > 0 ? us : 0));
	return err;
}
