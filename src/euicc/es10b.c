/*
 * es10b: the eUICC's part of common mutual authentication and download
 * preparation (SGP.22 3.1.2, 3.1.3, 5.7.5, 5.7.7, 5.7.8, 5.7.13, 5.7.14;
 * digest 4.3, 6.2-6.4, 6.7): GetEUICCChallenge, GetEUICCInfo1/2,
 * AuthenticateServer, PrepareDownload, CancelSession and GetRAT.
 *
 * The RSP session is a small state machine in RAM: GetEUICCChallenge starts
 * it (and forgets any earlier one), AuthenticateServer moves it to
 * "authenticated" once CERT.DPauth chains to a trusted CI and
 * serverSignature1 covers our challenge, PrepareDownload to "prepared"
 * once CERT.DPpb (same CI) signed smdpSigned2 || euiccSignature1. Each step
 * accepts exactly one call, but for PrepareDownload, which may come again
 * while prepared and before any BPP (the LPA retrying a confirmation code
 * the SM-DP+ refused, SGP.22 3.1.3 / 5.6.2, SGP.23 CC retry): it signs a new
 * euiccSigned2 with the new hashCc and a fresh one-time key. A replayed or
 * out-of-order request finds the session in another state and fails
 * (noSessionContext), a request for another transaction fails with
 * invalidTransactionId. A failed step ends the session, so a new attempt
 * starts from a fresh challenge.
 *
 * Declared capabilities (EUICCInfo2): SGP.22 v2.2.2, SAIP 2.3.1; the
 * profile package is checked and stored, not executed, so uiccCapability
 * lists what the TS.48 test profiles require the card to accept.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "euicc_int.h"

static const uint8_t svn[3] = {2, 2, 2};
static const uint8_t profile_version[3] = {2, 3, 1};
static const uint8_t firmware_version[3] = {1, 0, 0};
static const uint8_t ts102241_version[3] = {9, 2, 0};
static const uint8_t gp_version[3] = {2, 3, 0};
static const uint8_t pp_version[3] = {1, 0, 0};
static const char sas_number[] = "ESIMKIT-VIRTUAL";

/* UICCCapability (SAIP): usim 1, isim 2, csim 3, akaMilenage 4,
 * usimTestAlgorithm 8, javacard 14, berTlvFileSupport 19, getIdentity 22,
 * profile-a-x25519 23, profile-b-p256 24. */
#define UICC_CAPABILITY                                                                            \
	((1ull << 1) | (1ull << 2) | (1ull << 3) | (1ull << 4) | (1ull << 8) | (1ull << 14) |      \
	 (1ull << 19) | (1ull << 22) | (1ull << 23) | (1ull << 24))
/* RspCapability: additionalProfile 0, testProfileSupport 3,
 * deviceInfoExtensibilitySupport 4 (no CRL, no RPM). */
#define RSP_CAPABILITY ((1ull << 0) | (1ull << 3) | (1ull << 4))

esim_err es10b_get_challenge(euicc *e, der_cursor *req, der_builder *b)
{
	(void)req;
	euicc_session_clear(e);
	if (RAND_bytes(e->sess.challenge, sizeof e->sess.challenge) != 1)
		return ESIM_E_CRYPTO_RANDOM;
	e->sess.state = SESS_CHALLENGE;
	der_builder_open(b, 0xBF2E);
	der_add_octet_string(b, 0x80, e->sess.challenge, sizeof e->sess.challenge);
	return der_builder_close(b);
}

static void add_pkid_lists(euicc *e, der_builder *b)
{
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t len;
	der_builder_open(b, 0xA9); /* euiccCiPKIdListForVerification: every trusted CI */
	for (size_t i = 0; i < crypto_trust_count(e->trust); i++)
		if (crypto_cert_ski(crypto_trust_get(e->trust, i), ski, &len) == ESIM_OK)
			der_add_octet_string(b, 0x04, ski, len);
	der_builder_close(b);
	der_builder_open(b, 0xAA); /* ...ForSigning: the CIs we hold an identity under */
	for (size_t i = 0; i < e->n_ids; i++)
		der_add_octet_string(b, 0x04, e->ids[i].ci_pkid, e->ids[i].ci_pkid_len);
	der_builder_close(b);
}

esim_err es10b_get_info1(euicc *e, der_cursor *req, der_builder *b)
{
	(void)req;
	der_builder_open(b, 0xBF20);
	der_add_octet_string(b, 0x82, svn, sizeof svn);
	add_pkid_lists(e, b);
	return der_builder_close(b);
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

esim_err es10b_add_info2(euicc *e, der_builder *b)
{
	uint64_t used = 0;
	struct euicc_profile *v = NULL;
	size_t n = 0;
	esim_err err = euicc_db_used_bytes(e->db, &used);
	if (err == ESIM_OK)
		err = euicc_db_profiles(e->db, &v, &n);
	if (err != ESIM_OK)
		return err;
	euicc_profiles_free(v, n);
	uint64_t free_nvm = used < e->capacity ? e->capacity - used : 0;
	if (free_nvm > 0xFFFFFFFFu)
		free_nvm = 0xFFFFFFFFu;
	/* TS 102 226 extended card resources: installed applications, free
	 * non-volatile memory, free volatile memory */
	uint8_t ext[3 + 6 + 4] = {0x81, 0x01, (uint8_t)(n > 255 ? 255 : n), 0x82, 0x04};
	put_be(ext + 5, free_nvm, 4);
	ext[9] = 0x83;
	ext[10] = 0x02;
	put_be(ext + 11, 0x4000, 2);

	der_builder_open(b, 0xBF22);
	der_add_octet_string(b, 0x81, profile_version, 3);
	der_add_octet_string(b, 0x82, svn, 3);
	der_add_octet_string(b, 0x83, firmware_version, 3);
	der_add_octet_string(b, 0x84, ext, sizeof ext);
	der_add_bit_string_mask(b, 0x85, UICC_CAPABILITY);
	der_add_octet_string(b, 0x86, ts102241_version, 3);
	der_add_octet_string(b, 0x87, gp_version, 3);
	der_add_bit_string_mask(b, 0x88, RSP_CAPABILITY);
	add_pkid_lists(e, b);
	der_add_int64(b, 0x8B, 2); /* euiccCategory: medium */
	if (e->forbidden_ppr != 0)
		der_add_bit_string_mask(b, 0x99, e->forbidden_ppr);
	der_add_octet_string(b, 0x04, pp_version, 3);
	der_add_utf8(b, 0x0C, sas_number, strlen(sas_number));
	return der_builder_close(b);
}

esim_err es10b_get_info2(euicc *e, der_cursor *req, der_builder *b)
{
	(void)req;
	return es10b_add_info2(e, b);
}

/* BF38/BF21 { A1 { 80 txId, 02 code } } */
static esim_err auth_error(der_builder *b, uint32_t tag, der_span txid, int64_t code)
{
	der_builder_open(b, tag);
	der_builder_open(b, 0xA1);
	der_add_octet_string(b, 0x80, txid.p, txid.len);
	der_add_int64(b, 0x02, code);
	der_builder_close(b);
	return der_builder_close(b);
}

/* Map a chain check failure to an AuthenticateErrorCode /
 * DownloadErrorCode: 3 unsupportedCurve, 1 invalidCertificate. */
static int64_t chain_code(esim_err err)
{
	if (err == ESIM_E_CRYPTO_UNSUPPORTED_CURVE || err == ESIM_E_CRYPTO_CURVE_MISMATCH)
		return 3;
	return 1;
}

struct auth_req {
	der_element signed1, sig, pkid, cert, ctx;
	der_span txid, challenge, address, server_challenge;
};

static esim_err parse_auth(der_cursor *req, struct auth_req *r)
{
	esim_err err = der_get_tlv(req, 0x30, &r->signed1);
	if (err == ESIM_OK)
		err = der_get_tlv(req, 0x5F37, &r->sig);
	if (err == ESIM_OK)
		err = der_get_tlv(req, 0x04, &r->pkid);
	if (err == ESIM_OK)
		err = der_get_tlv(req, 0x30, &r->cert);
	if (err == ESIM_OK)
		err = der_get_tlv(req, 0xA0, &r->ctx);
	if (err != ESIM_OK)
		return euicc_bad(err);
	/* v3 otherCertsInChain (A1) and crlList (A2) may follow: ignored */
	der_cursor s = der_cursor_of(r->signed1.value);
	err = der_get_octet_string(&s, 0x80, &r->txid);
	if (err == ESIM_OK)
		err = der_get_octet_string(&s, 0x81, &r->challenge);
	if (err == ESIM_OK)
		err = der_get_utf8(&s, 0x83, &r->address);
	if (err == ESIM_OK)
		err = der_get_octet_string(&s, 0x84, &r->server_challenge);
	if (err != ESIM_OK)
		return euicc_bad(err);
	if (r->txid.len == 0 || r->txid.len > EUICC_TXID_MAX || r->challenge.len != 16 ||
	    r->server_challenge.len != 16 || r->address.len > EUICC_ADDR_MAX)
		return ESIM_E_EUICC_BAD_COMMAND;
	return ESIM_OK;
}

/* The checks of digest 6.3 in order; 0 when all pass. */
static int64_t auth_check(euicc *e, const struct auth_req *r, int *ident)
{
	struct euicc_session *s = &e->sess;
	if (s->state != SESS_CHALLENGE)
		return 4; /* noSessionContext */
	*ident = euicc_identity_for_ci(e, r->pkid.value.p, r->pkid.value.len);
	if (*ident < 0)
		return 7; /* ciPKUnknown: not in euiccCiPKIdListForSigning */
	if (euicc_cert_get(e, r->cert.tlv.p, r->cert.tlv.len, &s->dpauth) != ESIM_OK)
		return 1;
	uint8_t aki[CRYPTO_KEY_ID_MAX];
	size_t aki_len;
	if (crypto_cert_aki(s->dpauth, aki, &aki_len) != ESIM_OK)
		return 1;
	if (crypto_trust_find(e->trust, aki, aki_len) == NULL)
		return 7; /* ciPKUnknown: issuer not in the verification list */
	crypto_rsp_role role;
	if (crypto_cert_role(s->dpauth, &role) != ESIM_OK ||
	    (role != CRYPTO_ROLE_DP_AUTH && role != CRYPTO_ROLE_DS_AUTH))
		return 5; /* invalidOid */
	crypto_curve curve;
	if (crypto_cert_curve(s->dpauth, &curve) != ESIM_OK)
		return 3;
	esim_err err = euicc_cert_chain(e, s->dpauth, role, &s->ci); /* no clock: no time check */
	if (err != ESIM_OK)
		return chain_code(err);
	if (crypto_cert_registered_id(s->dpauth, s->smdp_oid, sizeof s->smdp_oid) != ESIM_OK)
		return 1; /* no SM-DP+ OID: nothing to put in a PIR or CancelSession */
	if (crypto_ecdsa_verify(crypto_cert_pubkey(s->dpauth), r->signed1.tlv.p, r->signed1.tlv.len,
				r->sig.value.p, r->sig.value.len) != ESIM_OK)
		return 2; /* invalidSignature */
	if (!esim_ct_equal(r->challenge.p, s->challenge, 16))
		return 6; /* euiccChallengeMismatch */
	return 0;
}

esim_err es10b_authenticate_server(euicc *e, der_cursor *req, der_builder *b)
{
	struct auth_req r;
	esim_err err = parse_auth(req, &r);
	if (err != ESIM_OK)
		return err;
	struct euicc_session *s = &e->sess;
	int ident = -1;
	int64_t code = auth_check(e, &r, &ident);
	if (code != 0) {
		euicc_session_clear(e);
		return auth_error(b, 0xBF38, r.txid, code);
	}

	/* euiccSigned1 = 30 { 80 txId, 83 serverAddress, 84 serverChallenge,
	 * BF22 euiccInfo2, ctxParams1 as received } */
	der_builder sb;
	der_builder_init(&sb);
	der_builder_open(&sb, 0x30);
	der_add_octet_string(&sb, 0x80, r.txid.p, r.txid.len);
	der_add_tlv(&sb, 0x83, r.address.p, r.address.len);
	der_add_octet_string(&sb, 0x84, r.server_challenge.p, 16);
	err = es10b_add_info2(e, &sb);
	if (err == ESIM_OK) {
		der_add_raw(&sb, r.ctx.tlv.p, r.ctx.tlv.len);
		err = der_builder_close(&sb);
	}
	uint8_t sig[CRYPTO_RAW_SIG_LEN];
	const struct euicc_ident *id = &e->ids[ident];
	if (err == ESIM_OK)
		err = crypto_ecdsa_sign(id->key, der_builder_data(&sb), der_builder_len(&sb), sig);
	if (err != ESIM_OK) {
		der_builder_free(&sb);
		euicc_session_clear(e);
		return err;
	}
	size_t cert_len, eum_len;
	const uint8_t *cert = crypto_cert_der(id->cert, &cert_len);
	const uint8_t *eum = crypto_cert_der(id->eum, &eum_len);
	der_builder_open(b, 0xBF38);
	der_builder_open(b, 0xA0);
	der_add_raw(b, der_builder_data(&sb), der_builder_len(&sb));
	der_add_octet_string(b, 0x5F37, sig, sizeof sig);
	der_add_raw(b, cert, cert_len);
	der_add_raw(b, eum, eum_len);
	der_builder_close(b);
	err = der_builder_close(b);
	der_builder_free(&sb);
	if (err != ESIM_OK) {
		euicc_session_clear(e);
		return err;
	}
	memcpy(s->txid, r.txid.p, r.txid.len);
	s->txid_len = r.txid.len;
	memcpy(s->server_address, r.address.p, r.address.len);
	s->server_address[r.address.len] = '\0';
	s->ident = (size_t)ident;
	memcpy(s->euicc_sig1, sig, sizeof sig);
	s->state = SESS_AUTHENTICATED;
	return ESIM_OK;
}

struct prep_req {
	der_element signed2, sig, cert;
	der_span txid, hash_cc, otpk;
	bool cc_required, has_hash, has_otpk;
};

static esim_err parse_prep(der_cursor *req, struct prep_req *r)
{
	der_cursor hc;
	esim_err err = der_get_tlv(req, 0x30, &r->signed2);
	if (err == ESIM_OK)
		err = der_get_tlv(req, 0x5F37, &r->sig);
	if (err == ESIM_OK)
		err = der_get_optional(req, 0x04, &r->has_hash, &hc);
	if (err == ESIM_OK)
		err = der_get_tlv(req, 0x30, &r->cert);
	if (err != ESIM_OK)
		return euicc_bad(err);
	if (r->has_hash) {
		r->hash_cc.p = hc.p;
		r->hash_cc.len = hc.len;
		if (hc.len != 32)
			return ESIM_E_EUICC_BAD_COMMAND;
	}
	der_cursor s = der_cursor_of(r->signed2.value), ot;
	err = der_get_octet_string(&s, 0x80, &r->txid);
	if (err == ESIM_OK)
		err = der_get_bool(&s, DER_TAG_BOOLEAN, &r->cc_required);
	if (err == ESIM_OK)
		err = der_get_optional(&s, 0x5F49, &r->has_otpk, &ot);
	if (err != ESIM_OK)
		return euicc_bad(err);
	if (r->has_otpk) {
		r->otpk.p = ot.p;
		r->otpk.len = ot.len;
	}
	if (r->txid.len == 0 || r->txid.len > EUICC_TXID_MAX)
		return ESIM_E_EUICC_BAD_COMMAND;
	return ESIM_OK;
}

static int64_t prep_check(euicc *e, const struct prep_req *r, const crypto_cert **dppb)
{
	struct euicc_session *s = &e->sess;
	/* Once more while prepared and no BPP has started: the SM-DP+ refused
	 * the confirmation code (8.2.7 / 3.8) and keeps the session, the LPA
	 * asks the user again and needs a euiccSigned2 with the new hashCc. */
	if (s->state != SESS_AUTHENTICATED && s->state != SESS_PREPARED)
		return 4;
	if (euicc_cert_get(e, r->cert.tlv.p, r->cert.tlv.len, dppb) != ESIM_OK)
		return 1;
	crypto_rsp_role role;
	if (crypto_cert_role(*dppb, &role) != ESIM_OK || role != CRYPTO_ROLE_DP_PB)
		return 1;
	crypto_curve curve;
	if (crypto_cert_curve(*dppb, &curve) != ESIM_OK)
		return 3;
	const crypto_cert *ci = NULL;
	esim_err err = euicc_cert_chain(e, *dppb, CRYPTO_ROLE_DP_PB, &ci);
	if (err != ESIM_OK)
		return chain_code(err);
	if (ci != s->ci)
		return 1; /* CERT.DPpb under another CI than CERT.DPauth */
	char oid[EUICC_OID_TEXT_MAX];
	if (crypto_cert_registered_id(*dppb, oid, sizeof oid) != ESIM_OK ||
	    strcmp(oid, s->smdp_oid) != 0)
		return 1; /* another SM-DP+ than the one authenticated */
	uint8_t tl[3] = {0x5F, 0x37, 0x40};
	struct crypto_span spans[3] = {{r->signed2.tlv.p, r->signed2.tlv.len},
				       {tl, sizeof tl},
				       {s->euicc_sig1, sizeof s->euicc_sig1}};
	if (crypto_ecdsa_verify_spans(crypto_cert_pubkey(*dppb), spans, 3, r->sig.value.p,
				      r->sig.value.len) != ESIM_OK)
		return 2;
	if (r->txid.len != s->txid_len || memcmp(r->txid.p, s->txid, s->txid_len) != 0)
		return 5;
	if (r->cc_required && !r->has_hash)
		return 127; /* digest 6.4 step 5: the value is the SM-DP+'s to check */
	return 0;
}

static bool key_is(EVP_PKEY *k, der_span otpk)
{
	uint8_t pt[CRYPTO_EC_POINT_LEN];
	return k != NULL && otpk.len == sizeof pt && crypto_key_public_point(k, pt) == ESIM_OK &&
	       memcmp(pt, otpk.p, sizeof pt) == 0;
}

/* otSK.EUICC: the one this session already holds (a second PrepareDownload)
 * or the one retained from an earlier session when the SM-DP+ names its
 * public key (a retry of an already bound BPP), else a fresh pair on
 * CERT.DPpb's curve. */
static esim_err one_time_key(euicc *e, const struct prep_req *r, const crypto_cert *dppb,
			     EVP_PKEY **out)
{
	if (r->has_otpk && key_is(e->sess.otsk, r->otpk)) {
		*out = e->sess.otsk;
		return ESIM_OK;
	}
	if (r->has_otpk && key_is(e->retry_otsk, r->otpk)) {
		*out = e->retry_otsk;
		e->retry_otsk = NULL;
		return ESIM_OK;
	}
	crypto_curve curve;
	esim_err err = crypto_cert_curve(dppb, &curve);
	if (err != ESIM_OK)
		return err;
	return crypto_key_generate(curve, out);
}

esim_err es10b_prepare_download(euicc *e, der_cursor *req, der_builder *b)
{
	struct prep_req r;
	memset(&r, 0, sizeof r);
	esim_err err = parse_prep(req, &r);
	if (err != ESIM_OK)
		return err;
	struct euicc_session *s = &e->sess;
	const crypto_cert *dppb = NULL; /* borrowed from the certificate cache */
	int64_t code = prep_check(e, &r, &dppb);
	bool room = false;
	if (code == 0) {
		/* the PIR of this download needs a place in the queue */
		err = euicc_notif_room(e, 1, &room);
		if (err != ESIM_OK)
			return err;
		if (!room)
			code = 127;
	}
	if (code != 0) {
		euicc_session_clear(e);
		return auth_error(b, 0xBF21, r.txid, code);
	}

	EVP_PKEY *otsk = NULL;
	uint8_t otpk[CRYPTO_EC_POINT_LEN];
	err = one_time_key(e, &r, dppb, &otsk);
	if (err == ESIM_OK)
		err = crypto_key_public_point(otsk, otpk);

	der_builder sb;
	der_builder_init(&sb);
	der_builder_open(&sb, 0x30);
	der_add_octet_string(&sb, 0x80, r.txid.p, r.txid.len);
	der_add_octet_string(&sb, 0x5F49, otpk, sizeof otpk);
	if (r.has_hash)
		der_add_octet_string(&sb, 0x04, r.hash_cc.p, r.hash_cc.len);
	der_builder_close(&sb);
	uint8_t sig[CRYPTO_RAW_SIG_LEN];
	if (err == ESIM_OK) {
		struct crypto_span spans[2] = {{der_builder_data(&sb), der_builder_len(&sb)},
					       {r.sig.tlv.p, r.sig.tlv.len}};
		err = sb.err != ESIM_OK
			  ? sb.err
			  : crypto_ecdsa_sign_spans(e->ids[s->ident].key, spans, 2, sig);
	}
	if (err == ESIM_OK) {
		der_builder_open(b, 0xBF21);
		der_builder_open(b, 0xA0);
		der_add_raw(b, der_builder_data(&sb), der_builder_len(&sb));
		der_add_octet_string(b, 0x5F37, sig, sizeof sig);
		der_builder_close(b);
		err = der_builder_close(b);
	}
	der_builder_free(&sb);
	if (err != ESIM_OK) {
		if (otsk != s->otsk)
			EVP_PKEY_free(otsk);
		euicc_session_clear(e);
		return err;
	}
	/* A second PrepareDownload with a fresh pair: the first otSK.EUICC was
	 * never used for a BPP and goes now (EVP_PKEY_free clears the private
	 * scalar, BN_clear_free). */
	if (s->otsk != otsk)
		EVP_PKEY_free(s->otsk);
	s->dppb = dppb;
	s->otsk = otsk;
	s->state = SESS_PREPARED;
	return ESIM_OK;
}

esim_err es10b_cancel_session(euicc *e, der_cursor *req, der_builder *b)
{
	der_span txid;
	int64_t reason;
	esim_err err = der_get_octet_string(req, 0x80, &txid);
	if (err == ESIM_OK)
		err = der_get_int64(req, 0x81, &reason);
	if (err != ESIM_OK)
		return euicc_bad(err);
	struct euicc_session *s = &e->sess;
	bool open =
	    s->state == SESS_AUTHENTICATED || s->state == SESS_PREPARED || s->state == SESS_BPP;
	if (!open || txid.len != s->txid_len || memcmp(txid.p, s->txid, txid.len) != 0) {
		der_builder_open(b, 0xBF41);
		der_add_int64(b, 0x81, 5); /* invalidTransactionId */
		return der_builder_close(b);
	}
	der_builder sb;
	der_builder_init(&sb);
	der_builder_open(&sb, 0x30);
	der_add_octet_string(&sb, 0x80, txid.p, txid.len);
	der_add_oid(&sb, 0x81, s->smdp_oid);
	der_add_int64(&sb, 0x82, reason);
	err = der_builder_close(&sb);
	uint8_t sig[CRYPTO_RAW_SIG_LEN];
	if (err == ESIM_OK)
		err = crypto_ecdsa_sign(e->ids[s->ident].key, der_builder_data(&sb),
					der_builder_len(&sb), sig);
	if (err == ESIM_OK) {
		der_builder_open(b, 0xBF41);
		der_builder_open(b, 0xA0);
		der_add_raw(b, der_builder_data(&sb), der_builder_len(&sb));
		der_add_octet_string(b, 0x5F37, sig, sizeof sig);
		der_builder_close(b);
		err = der_builder_close(b);
	}
	der_builder_free(&sb);
	euicc_session_clear(e);
	return err;
}

esim_err es10b_get_rat(euicc *e, der_cursor *req, der_builder *b)
{
	(void)req;
	/* One rule: PPR1 and PPR2 (but the forbidden ones) allowed for any
	 * operator (mccMnc wildcard 'EEEEEE'), with end-user consent. */
	static const uint8_t any_operator[3] = {0xEE, 0xEE, 0xEE};
	der_builder_open(b, 0xBF43);
	der_builder_open(b, 0xA0);
	der_builder_open(b, 0x30);
	der_add_bit_string_mask(b, 0x80, ((1u << 1) | (1u << 2)) & ~e->forbidden_ppr);
	der_builder_open(b, 0xA1);
	der_builder_open(b, 0x30);
	der_add_octet_string(b, 0x80, any_operator, sizeof any_operator);
	der_builder_close(b);
	der_builder_close(b);
	der_add_bit_string_mask(b, 0x82, 1u << 0); /* consentRequired */
	der_builder_close(b);
	der_builder_close(b);
	return der_builder_close(b);
}
