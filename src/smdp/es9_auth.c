/*
 * ES9+ initiateAuthentication and authenticateClient (SGP.22 3.1.2, 5.6.1,
 * 5.6.3; digest 6.2, 6.3): the session opened with serverSigned1, then the
 * eUICC authenticated (its certificate chain step by step, each failure with
 * its code; the verified CERT.EUM kept in a cache and in smdp_eum_certs),
 * the order found by matchingId or, for the default SM-DP+, by EID, the
 * eUICC's eligibility checked against EUICCInfo2, and smdpSigned2 with the
 * profile metadata returned. PK.EUICC.SIG is kept by SubjectPublicKeyInfo
 * for the later calls of the session (smdp_es9_euicc_pub_of).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "esim/der.h"
#include "esim/rsp_auth.h"
#include "es9_int.h"

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
esim_err smdp_es9_euicc_pub_of(smdp *d, const struct session *ss, EVP_PKEY **key)
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

esim_err smdp_es9_initiate_authentication(struct es9 *x, store *s)
{
	smdp *d = x->d;
	struct rsp_es9_request rq;
	memset(&rq, 0, sizeof rq);
	esim_err err = ESIM_OK;
	/* the request as the codec reads it (euiccChallenge 16 bytes, one
	 * BF20 euiccInfo1, smdpAddress text); an address that is present but
	 * empty or too long can only be another server's: 8.8.1 / 3.8 below */
	json_t *jaddr = json_object_get(x->req, "smdpAddress");
	bool addr_bad = json_is_string(jaddr) && (json_string_length(jaddr) == 0 ||
						  json_string_length(jaddr) > RSP_ES9_MAX_TEXT);
	if (!addr_bad && !smdp_es9_decode(x, RSP_ES9_INITIATE_AUTHENTICATION, &rq))
		goto out;
	size_t fqdn_len = strlen(d->fqdn);
	der_span a = rq.u.initiate.smdp_address;
	if (addr_bad || a.len != fqdn_len ||
	    strncasecmp((const char *)a.p, d->fqdn, fqdn_len) != 0) {
		x->st = SMDP_FAIL("8.8.1", "3.8", "SM-DP+ address refused");
		goto out;
	}
	const uint8_t *chal = rq.u.initiate.euicc_challenge.p;
	const uint8_t *info = rq.u.initiate.euicc_info1.p;
	size_t info_len = rq.u.initiate.euicc_info1.len;
	struct info1 i1;
	if (parse_info1(info, info_len, &i1) != ESIM_OK) {
		x->st = ES9_BADFIELD;
		goto out;
	}
	/* this server implements SGP.22 v2.x (2.0.0 up to, not including, 3.0.0) */
	if (i1.svn[0] != 2) {
		x->st = SMDP_FAIL("8.8.3", "3.1", "SGP.22 version not supported");
		goto out;
	}
	/* the CI the eUICC will sign with and our DPauth it can verify, as
	 * the SM-DS chooses (rsp_server_choose, src/rsp/server_auth.c) */
	der_span id_ci[SMDP_MAX_IDENTITIES], chosen;
	for (size_t k = 0; k < d->n_ids; k++)
		id_ci[k] = (der_span){d->ids[k].ci_pkid, d->ids[k].ci_pkid_len};
	int ident = -1;
	esim_err ce = rsp_server_choose(i1.sign, i1.n_sign, i1.verif, i1.n_verif, d->trust, id_ci,
					d->n_ids, &chosen, &ident);
	if (ce == ESIM_E_CERT_UNKNOWN_CI) {
		x->st = SMDP_FAIL("8.8.2", "3.1", "none of the eUICC's CIs is supported");
		goto out;
	}
	if (ce != ESIM_OK) {
		x->st = SMDP_FAIL("8.8.4", "3.7", "no SM-DP+ certificate for the eUICC's CIs");
		goto out;
	}
	const uint8_t *sign_ci = chosen.p;
	size_t sign_ci_len = chosen.len;
	bool room;
	if ((err = smdp_es9_pending_room(d, s, &room)) != ESIM_OK)
		goto out;
	if (!room) {
		x->st = ES9_BUSY;
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
		struct rsp_es9_response r = {.fn = RSP_ES9_INITIATE_AUTHENTICATION};
		r.u.initiate.txid = txid;
		r.u.initiate.server_signed1 = (der_span){signed1, signed1_len};
		r.u.initiate.server_signature1 = (der_span){sig_tlv, sizeof sig_tlv};
		r.u.initiate.euicc_ci_pkid = (der_span){pk, 2 + sign_ci_len};
		r.u.initiate.server_certificate = (der_span){cert, cert_len};
		err = smdp_es9_answer(x, &r);
		smdp_logf(d, "session_start", "txid=%s curve=%s", hex,
			  crypto_curve_name(id->curve));
	}
	free(signed1);
out:
	rsp_es9_request_clear(&rq);
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
	uint8_t *der; /* owned */
	size_t der_len;
	int64_t now;
	bool cache_full; /* the cache could not keep it: read before writing */
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

/* Write a kept EUM (eum_ctx.pending) to smdp_eum_certs, after the
 * transaction that verified it: in a transaction of its own, durable, so
 * that a rolled-back authentication does not lose it. Frees r->der. */
static void eum_record(smdp *d, store *s, struct eum_row *r)
{
	esim_err err = ESIM_OK;
	if (r->cache_full) {
		store_stmt *st;
		if ((err = store_prepare(s, "SELECT 1 FROM smdp_eum_certs WHERE ski = ?1", &st)) ==
		    ESIM_OK) {
			bool row = false;
			store_bind_blob(st, 1, r->ski, r->ski_len);
			err = store_step(st, &row);
			store_finalize(st);
			if (err == ESIM_OK && row)
				goto out;
		}
	}
	/* one INSERT ... ON CONFLICT DO NOTHING: at READ COMMITTED, instances
	 * that meet the same new EUM at once never abort each other (under
	 * SERIALIZABLE they did: the serialization failures at three instances,
	 * docs/PERFORMANCE.md); still durable */
	if (err == ESIM_OK)
		err = store_transaction_opts(s, STORE_TX_READ_COMMITTED, eum_insert_tx, r, 0);
	if (err != ESIM_OK) /* the download goes on; only a later PIR misses it */
		smdp_logf(d, "eum_record_failed", "error=%s", esim_strerror(err));
out:
	free(r->der);
	r->der = NULL;
}

/* The cache of verified EUMs as the library's chain check sees it (its
 * ctx: struct eum_ctx). A new EUM that this caller must record is copied
 * to pending: the check runs inside authenticateClient's transaction, and
 * the record is written after it (eum_record). */
struct eum_ctx {
	smdp *d;
	struct eum_row pending; /* der != NULL: to record */
};

static const crypto_cert *eum_find_cb(void *ctx, const uint8_t *der, size_t len)
{
	const struct eum_ctx *c = ctx;
	der_span span = {der, len};
	return eum_cached(c->d, &span);
}

static const crypto_cert *eum_keep_cb(void *ctx, crypto_cert **cert)
{
	struct eum_ctx *c = ctx;
	bool record;
	const crypto_cert *use = eum_keep(c->d, cert, &record);
	if (!record || c->pending.der) /* a retried transaction keeps the first */
		return use;
	struct eum_row *r = &c->pending;
	size_t len;
	const uint8_t *der = crypto_cert_der(use, &len);
	r->now = (int64_t)smdp_now(c->d);
	r->cache_full = *cert != NULL;
	if (crypto_cert_ski(use, r->ski, &r->ski_len) == ESIM_OK && (r->der = malloc(len))) {
		memcpy(r->der, der, len);
		r->der_len = len;
	}
	return use;
}

/* The eUICC chain (rsp_server_check_chain, shared with the SM-DS), each
 * failure with its code, with this SM-DP+'s EUM cache. */
static bool check_chain(smdp *d, struct eum_ctx *ec, const struct session *ss,
			const struct rsp_auth_server_resp *r, struct smdp_status *st,
			crypto_cert **euicc_out, char eid[RSP_EID_DIGITS + 1])
{
	struct rsp_eum_cache cache = {.find = eum_find_cb, .keep = eum_keep_cb, .ctx = ec};
	struct rsp_chain_check cc = {.trust = d->trust,
				     .ci_pkid = ss->ci_pkid,
				     .ci_pkid_len = ss->ci_pkid_len,
				     .check_time = d->check_time,
				     .now = smdp_now(d),
				     .cache = &cache};
	enum rsp_chain_fault f = RSP_CHAIN_EUICC_INVALID;
	crypto_cert *euicc = NULL;
	if (rsp_server_check_chain(&cc, r, &f, &euicc, eid) != ESIM_OK || f != RSP_CHAIN_OK) {
		const char *sc, *rc, *msg;
		rsp_chain_fault_status(f == RSP_CHAIN_OK ? RSP_CHAIN_EUICC_INVALID : f, &sc, &rc,
				       &msg);
		*st = SMDP_FAIL(sc, rc, msg);
		crypto_cert_free(euicc);
		return false;
	}
	/* SGP.29 check digits: not a chain rule (cert.c), but no EID that
	 * breaks them is one; the SM-DP+ refuses it as an invalid EID */
	if (rsp_eid_check(eid) != ESIM_OK) {
		*st = SMDP_FAIL("8.1.1", "2.1",
				"EID of the eUICC certificate: wrong check digits (SGP.29: the "
				"32-digit number mod 97 must be 1)");
		smdp_logf(d, "eid_refused", "eid=%s rule=sgp29-mod97", eid);
		crypto_cert_free(euicc);
		return false;
	}
	*euicc_out = euicc;
	return true;
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
	const char *request_id; /* of the ES9+ request: its callbacks carry it */
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
	/* UTF-8: up to 4 bytes a character */
	char spn[4 * RSP_SPN_MAX + 1], name[4 * RSP_NAME_MAX + 1];
	int pclass;
	uint32_t ppr;
	struct smdp_es9_meta_extra mx;
	bool cc_required, has_bound;
	uint8_t bound[RSP_OTPK_LEN];
};

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
	    " p.iccid, t.spn, t.profile_name, t.profile_class, t.ppr, p.upp, " SMDP_ES9_META_COLS
	    " FROM smdp_orders o"
	    " JOIN smdp_profiles p ON p.id = o.profile_id JOIN smdp_profile_types t"
	    " ON t.id = p.type_id WHERE o.open = 1 AND ";
	char sql[700];
	const char *lock = smdp_es9_order_lock(s);
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
		/* the default SM-DP+ case refuses the EID (digest 6.3 step 9;
		 * SGP.23 4.3.14.2.2), an activation code its matchingId */
		if (err == ESIM_OK)
			a->st =
			    a->has_mid
				? SMDP_FAIL("8.2.6", "3.8", "no order for this matchingId")
				: SMDP_FAIL("8.1.1", "3.8", "no default SM-DP+ order for this EID");
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
	smdp_es9_meta_extra_read(st, 14, &a->mx);
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
		return smdp_es9_fail_order(a->d, s, a->order_id, pid, a->now, 1, &a->st);
	}
	if (attempts >= (int64_t)a->d->max_attempts) {
		a->st = SMDP_FAIL("8.8.5", "6.4", "too many download attempts");
		if ((err = session_spend(s, a)) != ESIM_OK)
			return err;
		return smdp_es9_fail_order(a->d, s, a->order_id, pid, a->now, 1, &a->st);
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
			   : smdp_outbox_queue_rid(a->d, s, a->request_id, a->order_id, 1, &a->st,
						   NULL, 0);
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

void smdp_es9_meta_extra_read(store_stmt *st, int col, struct smdp_es9_meta_extra *mx)
{
	size_t n = 0;
	const uint8_t *icon = store_col_blob(st, col + 1, &n);
	mx->icon_type = -1;
	mx->icon_len = 0;
	if (!store_col_is_null(st, col) && icon && n && n <= sizeof mx->icon) {
		mx->icon_type = (int)store_col_int64(st, col);
		memcpy(mx->icon, icon, n);
		mx->icon_len = n;
	}
	const char *nc = store_col_text(st, col + 2);
	mx->has_notif = nc != NULL;
	snprintf(mx->notif, sizeof mx->notif, "%s", nc ? nc : "");
}

esim_err smdp_es9_build_metadata(smdp *d, const char *iccid, const char *spn, const char *name,
				 int pclass, uint32_t ppr, const struct smdp_es9_meta_extra *mx,
				 uint8_t **out, size_t *out_len)
{
	/* the type's class, PPRs, icon and notification configuration
	 * (inventory.c checked them all at add-type) */
	struct smdp_meta_src src = {
	    .iccid = iccid,
	    .spn = spn,
	    .name = name,
	    .profile_class = pclass,
	    .ppr = ppr,
	    .icon_type = mx->icon_type,
	    .icon = mx->icon_type >= 0 ? mx->icon : NULL,
	    .icon_len = mx->icon_type >= 0 ? mx->icon_len : 0,
	    .notif = mx->has_notif ? mx->notif : NULL,
	};
	return smdp_metadata_build(d, &src, out, out_len);
}

/*
 * authenticateClient's transaction: the session read, the eUICC's chain and
 * signature checked against it (no row is locked yet under READ COMMITTED),
 * then auth_tx_fn's order resolution and writes. One transaction instead of
 * an autocommit read of the session plus one, as getBoundProfilePackage's
 * first. A refusal that ends the session deletes it in the same
 * transaction. Re-run from the start after a conflict.
 */
struct auth_load {
	struct auth_tx a;
	const char *txhex;
	bool decoded; /* the codec read the request (else x->st says why) */
	struct smdp_status dec_st;
	esim_err pe; /* rsp_auth_server_resp_parse of it */
	struct rsp_auth_server_resp r;
	struct session ss;
	char eid[RSP_EID_DIGITS + 1];
	struct eum_ctx ec;
	struct smdp_status st; /* a refusal before the order */
};

static esim_err auth_refuse(store *s, struct auth_load *l, struct smdp_status st)
{
	l->st = st;
	return smdp_es9_delete_session(s, l->ss.txid_hex);
}

static esim_err auth_load_tx(store *s, void *arg)
{
	struct auth_load *l = arg;
	smdp *d = l->a.d;
	smdp_es9_session_clear(&l->ss);
	l->st = SMDP_OK_STATUS;
	bool found = false;
	esim_err err = smdp_es9_load_session_in(d, s, l->txhex, &l->ss, &found, true);
	if (err != ESIM_OK)
		return err;
	if (!found || strcmp(l->ss.state, ST_STARTED) != 0) {
		l->st = ES9_UNKNOWN_TX;
		return ESIM_OK;
	}
	if (!l->decoded) {
		l->st = l->dec_st;
		return ESIM_OK;
	}
	/* digest 6.3 step 2 (impl): the eUICC refused; end the session */
	if (l->pe == ESIM_E_RSP_EUICC_ERROR)
		return auth_refuse(s, l,
				   SMDP_FAIL("8.1", "3.8", "eUICC refused the authentication"));
	if (l->pe != ESIM_OK) {
		l->st = ES9_BADFIELD;
		return ESIM_OK;
	}
	const struct rsp_auth_server_resp *r = &l->r;
	crypto_cert *euicc = NULL;
	struct smdp_status st;
	if (!check_chain(d, &l->ec, &l->ss, r, &st, &euicc, l->eid))
		return auth_refuse(s, l, st);
	/* digest 6.3 steps 7 and 8: the signature first; then an euiccSigned1
	 * made for another session is an unknown transaction (SGP.23's
	 * authenticateClient test of a mismatched transactionId, digest 5.4),
	 * and a wrong serverChallenge a failed verification */
	bool sig_ok =
	    crypto_ecdsa_verify(crypto_cert_pubkey(euicc), r->euicc_signed1.p, r->euicc_signed1.len,
				r->euicc_signature1, RSP_SIG_LEN) == ESIM_OK;
	if (!sig_ok || !rsp_txid_equal(&r->txid, &l->ss.txid) ||
	    memcmp(r->server_challenge, l->ss.server_challenge, 16) != 0) {
		crypto_cert_free(euicc);
		return auth_refuse(s, l,
				   sig_ok && !rsp_txid_equal(&r->txid, &l->ss.txid)
				       ? ES9_UNKNOWN_TX
				       : ES9_EUICC_SIG);
	}
	der_span spki;
	if (spki_of(r->euicc_cert.p, r->euicc_cert.len, &spki) == ESIM_OK)
		key_keep(d, &spki, crypto_cert_pubkey(euicc));
	crypto_cert_free(euicc);
	struct auth_tx *a = &l->a;
	a->ss = &l->ss;
	a->eid = l->eid;
	a->r = r;
	a->dppb_key = d->ids[l->ss.ident].dppb_key;
	a->has_mid = false;
	if (r->has_matching_id && r->matching_id.len > 0) {
		if (r->matching_id.len >= sizeof a->mid)
			return auth_refuse(s, l, SMDP_FAIL("8.2.6", "3.8", "matchingId refused"));
		a->has_mid = true;
		memcpy(a->mid, r->matching_id.p, r->matching_id.len);
		a->mid[r->matching_id.len] = '\0';
	}
	return auth_tx_fn(s, a);
}

esim_err smdp_es9_authenticate_client(struct es9 *x, store *s)
{
	smdp *d = x->d;
	const char *txhex = smdp_es9_opt_str(x->req, "transactionId");
	struct rsp_es9_request rq;
	memset(&rq, 0, sizeof rq);
	struct auth_load l;
	memset(&l, 0, sizeof l);
	struct auth_tx *a = &l.a;
	const struct session *ss = &l.ss;
	esim_err err;
	if (!txhex) {
		x->st = ES9_MISSING;
		return ESIM_OK;
	}
	/* the request as the codec reads it: authenticateServerResponse one
	 * complete BF38 TLV of at most 64 KiB; an unknown session still
	 * answers first (auth_load_tx) */
	l.decoded = smdp_es9_decode(x, RSP_ES9_AUTHENTICATE_CLIENT, &rq);
	l.dec_st = x->st;
	if (l.decoded)
		l.pe = rsp_auth_server_resp_parse(
		    rq.u.authenticate.authenticate_server_response.p,
		    rq.u.authenticate.authenticate_server_response.len, &l.r);
	l.txhex = txhex;
	l.ec.d = d;
	a->d = d;
	a->request_id = x->request_id;
	a->now = smdp_now(d);
	if (l.decoded && l.pe == ESIM_OK) {
		a->forbidden = forbidden_ppr(l.r.euicc_info2);
		parse_info2_caps(l.r.euicc_info2, &a->caps);
	}
	err = store_transaction_opts(s, ES9_TX, auth_load_tx, &l, 0);
	if (l.ec.pending.der) /* a new EUM, verified in it */
		eum_record(d, s, &l.ec.pending);
	if (err == ESIM_E_NOT_FOUND && a->lost) { /* rolled back: nothing written */
		a->st = ES9_UNKNOWN_TX;
		err = ESIM_OK;
	}
	if (err != ESIM_OK)
		goto out;
	if (l.st.subject) {
		x->st = l.st;
		goto out;
	}
	if (a->st.subject) {
		x->st = a->st;
		err = smdp_es9_end_session(s, ss->txid_hex);
		goto out;
	}
	/* profileMetadata (step 11); smdpSigned2 came out of the transaction */
	struct smdp_identity *id = &d->ids[ss->ident];
	uint8_t *meta = NULL, sig_tlv[RSP_SIG_TLV_LEN];
	size_t meta_len = 0;
	err = smdp_es9_build_metadata(d, a->iccid, a->spn, a->name, a->pclass, a->ppr, &a->mx,
				      &meta, &meta_len);
	if (err == ESIM_OK) {
		size_t cert_len;
		const uint8_t *cert = crypto_cert_der(id->dppb, &cert_len);
		rsp_sig_tlv(a->sig2, sig_tlv);
		struct rsp_es9_response ans = {.fn = RSP_ES9_AUTHENTICATE_CLIENT};
		ans.u.authenticate.txid = ss->txid;
		ans.u.authenticate.profile_metadata = (der_span){meta, meta_len};
		ans.u.authenticate.smdp_signed2 = (der_span){a->signed2, a->signed2_len};
		ans.u.authenticate.smdp_signature2 = (der_span){sig_tlv, sizeof sig_tlv};
		ans.u.authenticate.smdp_certificate = (der_span){cert, cert_len};
		err = smdp_es9_answer(x, &ans);
		smdp_logf(d, "authenticated", "txid=%s eid=%s iccid=%s cc=%d", ss->txid_hex, l.eid,
			  a->iccid, a->cc_required);
	}
	free(meta);
out:
	free(a->signed2);
	free(l.ec.pending.der);
	rsp_es9_request_clear(&rq);
	smdp_es9_session_clear(&l.ss);
	return err;
}
