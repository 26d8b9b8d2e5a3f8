/*
 * Tests of common mutual authentication (src/rsp/smdp_auth.c): the SM-DP+
 * builds serverSigned1, the LPA wraps it into AuthenticateServerRequest,
 * a simulated eUICC answers (euiccSigned1 / euiccSigned2 / CancelSession
 * signed with its key), and the SM-DP+ verifies each answer; then the same
 * answers tampered with, from an untrusted chain, with the wrong txId,
 * challenge, CI, hashCc or OID. Known encodings from digest 4.2 and the
 * hashCc worked value of digest 6.4.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp_auth.h"
#include "test_rsp_fixture.h"
#include "testutil.h"

static struct fix_pki pki;
static rsp_txid txid;
static uint8_t euicc_chal[16], server_chal[16];

static int setup(void **state)
{
	(void)state;
	fix_pki_init(&pki, CRYPTO_CURVE_P256);
	assert_esim(ESIM_OK, rsp_txid_from_hex("0123456789ABCDEF0123456789ABCDEF", &txid));
	for (int i = 0; i < 16; i++) {
		euicc_chal[i] = (uint8_t)(0x10 + i);
		server_chal[i] = (uint8_t)(0xA0 + i);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fix_pki_clear(&pki);
	return 0;
}

static const uint8_t *find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

static void test_hash_cc(void **state)
{
	(void)state;
	uint8_t h[32];
	assert_esim(ESIM_OK, rsp_hash_cc("12345678", 8, &txid, h));
	size_t n;
	uint8_t *want =
	    test_unhex("A1370440A38BA522A1518B10200EC765DA6A7B2E5AFD2A696DE8592FD4A0928F", &n);
	assert_memory_equal(h, want, 32);
	free(want);
	uint8_t h2[32];
	assert_esim(ESIM_OK, rsp_hash_cc("12345679", 8, &txid, h2));
	assert_memory_not_equal(h, h2, 32);
}

static void test_cancel_session_req(void **state)
{
	(void)state;
	rsp_txid t;
	assert_esim(ESIM_OK, rsp_txid_from_hex("00112233445566778899AABBCCDDEEFF", &t));
	uint8_t *enc;
	size_t n, wn;
	assert_esim(ESIM_OK, rsp_cancel_session_req_build(&t, RSP_CANCEL_POSTPONED, &enc, &n));
	uint8_t *want = test_unhex("BF411580100011223344556677"
				   "8899AABBCCDDEEFF810101",
				   &wn);
	assert_int_equal(n, wn);
	assert_memory_equal(enc, want, n);
	free(want);
	free(enc);
	assert_esim(ESIM_E_ARG,
		    rsp_cancel_session_req_build(&t, (enum rsp_cancel_reason)128, &enc, &n));
}

/* What the eUICC does in AuthenticateServer (digest 6.3 steps 8-9), driven by
 * the request the LPA built. */
static void euicc_authenticate(const uint8_t *req, size_t req_len, const rsp_txid *t,
			       const uint8_t *chal, EVP_PKEY *key, const struct crypto_issued *cert,
			       const struct crypto_issued *eum, uint8_t **out, size_t *out_len)
{
	der_cursor c, in;
	der_element ctx;
	der_cursor_init(&c, req, req_len);
	assert_esim(ESIM_OK, der_get_sequence(&c, 0xBF38, &in));
	for (int i = 0; i < 4; i++) {
		der_element skip;
		assert_esim(ESIM_OK, der_get_any(&in, &skip));
	}
	assert_esim(ESIM_OK, der_get_tlv(&in, 0xA0, &ctx));

	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0x30);
	der_add_octet_string(&b, 0x80, t->b, t->len);
	der_add_utf8(&b, 0x83, "smdp.example.com", 16);
	der_add_octet_string(&b, 0x84, chal, 16);
	der_builder_open(&b, 0xBF22);
	static const uint8_t v[] = {0x02, 0x02, 0x02};
	der_add_octet_string(&b, 0x81, v, 3);
	der_builder_close(&b);
	der_add_raw(&b, ctx.tlv.p, ctx.tlv.len);
	der_builder_close(&b);
	uint8_t *signed1;
	size_t s1_len;
	assert_esim(ESIM_OK, der_builder_finish(&b, &signed1, &s1_len));
	uint8_t sig[64];
	assert_esim(ESIM_OK, crypto_ecdsa_sign(key, signed1, s1_len, sig));

	der_builder_init(&b);
	der_builder_open(&b, 0xBF38);
	der_builder_open(&b, 0xA0);
	der_add_raw(&b, signed1, s1_len);
	der_add_octet_string(&b, 0x5F37, sig, 64);
	der_add_raw(&b, cert->der, cert->der_len);
	der_add_raw(&b, eum->der, eum->der_len);
	der_builder_close(&b);
	der_builder_close(&b);
	assert_esim(ESIM_OK, der_builder_finish(&b, out, out_len));
	free(signed1);
}

static void make_request(const char *matching_id, uint8_t **req, size_t *req_len)
{
	uint8_t *signed1, sig1[64], sig1_tlv[67];
	size_t s1_len;
	assert_esim(ESIM_OK,
		    rsp_server_signed1_build(&txid, euicc_chal, "smdp.example.com", server_chal,
					     pki.dpauth.key, &signed1, &s1_len, sig1));
	/* the serverSignature1 verifies with the DPauth key over the TLV */
	assert_esim(ESIM_OK, crypto_ecdsa_verify(pki.dpauth.key, signed1, s1_len, sig1, 64));
	assert_int_equal(signed1[0], 0x30);
	assert_int_equal(signed1[2], 0x80);
	rsp_sig_tlv(sig1, sig1_tlv);
	uint8_t pkid[22] = {0x04, 0x14};
	memcpy(pkid + 2, pki.ci.ski, 20);
	static const uint8_t caps[] = {0x85, 0x03, 0x0F, 0x00, 0x00};
	struct rsp_device_info dev = {
	    .tac = {0x35, 0x29, 0x06, 0x11}, .capabilities = caps, .capabilities_len = sizeof caps};
	assert_esim(ESIM_OK, rsp_auth_server_req_build(signed1, s1_len, sig1_tlv, 67, pkid, 22,
						       pki.dpauth.der, pki.dpauth.der_len,
						       matching_id, &dev, req, req_len));
	/* wrong pieces are refused */
	uint8_t *x;
	size_t xn;
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE,
		    rsp_auth_server_req_build(sig1_tlv, 67, signed1, s1_len, pkid, 22,
					      pki.dpauth.der, pki.dpauth.der_len, matching_id, &dev,
					      &x, &xn));
	assert_int_not_equal(rsp_auth_server_req_build(signed1, s1_len - 1, sig1_tlv, 67, pkid, 22,
						       pki.dpauth.der, pki.dpauth.der_len,
						       matching_id, &dev, &x, &xn),
			     ESIM_OK);
	free(signed1);
}

static void test_authenticate(void **state)
{
	(void)state;
	uint8_t *req, *resp;
	size_t req_len, resp_len;
	make_request("MATCH-1", &req, &req_len);
	/* ctxParams1 = A0 { 80 "MATCH-1", A1 { 80 04 TAC, A1 05 caps } } */
	static const uint8_t ctx[] = {0xA0, 0x18, 0x80, 0x07, 'M',  'A',  'T',	'C',
				      'H',  '-',  '1',	0xA1, 0x0D, 0x80, 0x04, 0x35,
				      0x29, 0x06, 0x11, 0xA1, 0x05, 0x85, 0x03, 0x0F};
	assert_non_null(find(req, req_len, ctx, sizeof ctx));

	euicc_authenticate(req, req_len, &txid, server_chal, pki.euicc.key, &pki.euicc, &pki.eum,
			   &resp, &resp_len);
	struct rsp_auth_expect ex = {.trust = pki.trust,
				     .txid = &txid,
				     .server_challenge = server_chal,
				     .ci_pkid = pki.ci.ski,
				     .ci_pkid_len = 20};
	struct rsp_auth_server_resp r;
	assert_esim(ESIM_OK, rsp_auth_server_resp_verify(resp, resp_len, &ex, &r));
	assert_false(r.is_error);
	assert_string_equal(r.eid, FIX_EID);
	assert_non_null(r.euicc_pub);
	assert_int_equal(EVP_PKEY_eq(r.euicc_pub, pki.euicc.key), 1);
	assert_true(r.has_matching_id);
	assert_int_equal(r.matching_id.len, 7);
	assert_memory_equal(r.matching_id.p, "MATCH-1", 7);
	assert_int_equal(r.euicc_info2.p[0], 0xBF);
	assert_int_equal(r.euicc_info2.p[1], 0x22);
	assert_int_equal(r.ctx_params1.p[0], 0xA0);
	assert_int_equal(r.device_info.p[0], 0xA1);
	assert_int_equal(r.server_address.len, 16);
	uint8_t euicc_sig1[64];
	memcpy(euicc_sig1, r.euicc_signature1, 64);
	rsp_auth_server_resp_clear(&r);

	/* wrong expectations */
	rsp_txid other = txid;
	other.b[0] ^= 1;
	ex.txid = &other;
	assert_esim(ESIM_E_RSP_TXID_MISMATCH, rsp_auth_server_resp_verify(resp, resp_len, &ex, &r));
	rsp_auth_server_resp_clear(&r);
	ex.txid = &txid;
	uint8_t chal2[16];
	memcpy(chal2, server_chal, 16);
	chal2[15] ^= 1;
	ex.server_challenge = chal2;
	assert_esim(ESIM_E_RSP_CHALLENGE_MISMATCH,
		    rsp_auth_server_resp_verify(resp, resp_len, &ex, &r));
	rsp_auth_server_resp_clear(&r);
	ex.server_challenge = server_chal;
	ex.ci_pkid = pki.other_ci.ski;
	assert_esim(ESIM_E_RSP_CI_MISMATCH, rsp_auth_server_resp_verify(resp, resp_len, &ex, &r));
	rsp_auth_server_resp_clear(&r);
	ex.ci_pkid = NULL;

	/* a flipped byte inside euiccSigned1 (the challenge) */
	uint8_t *bad = malloc(resp_len);
	memcpy(bad, resp, resp_len);
	uint8_t *hit = (uint8_t *)find(bad, resp_len, server_chal, 16);
	assert_non_null(hit);
	hit[0] ^= 0x80;
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE, rsp_auth_server_resp_verify(bad, resp_len, &ex, &r));
	rsp_auth_server_resp_clear(&r);
	free(bad);
	free(resp);

	/* signed by a key that is not the certificate's */
	euicc_authenticate(req, req_len, &txid, server_chal, pki.dppb.key, &pki.euicc, &pki.eum,
			   &resp, &resp_len);
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE, rsp_auth_server_resp_verify(resp, resp_len, &ex, &r));
	rsp_auth_server_resp_clear(&r);
	free(resp);

	/* an eUICC under an untrusted CI */
	euicc_authenticate(req, req_len, &txid, server_chal, pki.other_euicc.key, &pki.other_euicc,
			   &pki.other_eum, &resp, &resp_len);
	assert_esim(ESIM_E_CERT_UNKNOWN_CI, rsp_auth_server_resp_verify(resp, resp_len, &ex, &r));
	rsp_auth_server_resp_clear(&r);
	free(resp);
	free(req);

	/* without matchingId (default SM-DP+ case) */
	make_request(NULL, &req, &req_len);
	euicc_authenticate(req, req_len, &txid, server_chal, pki.euicc.key, &pki.euicc, &pki.eum,
			   &resp, &resp_len);
	assert_esim(ESIM_OK, rsp_auth_server_resp_verify(resp, resp_len, &ex, &r));
	assert_false(r.has_matching_id);
	rsp_auth_server_resp_clear(&r);
	free(resp);
	free(req);

	/* the eUICC's error answer: BF38 { A1 { 80 txId, 02 01 06 } } */
	size_t n;
	uint8_t *err_resp = test_unhex("BF3817A11580100123456789ABCDEF0123456789ABCDEF020106", &n);
	assert_esim(ESIM_E_RSP_EUICC_ERROR, rsp_auth_server_resp_verify(err_resp, n, &ex, &r));
	assert_true(r.is_error);
	assert_int_equal(r.error_code, 6);
	assert_true(rsp_txid_equal(&r.txid, &txid));
	rsp_auth_server_resp_clear(&r);
	free(err_resp);

	/* smdpSigned2 / smdpSignature2 over smdpSigned2 || 5F37 40 || euiccSignature1 */
	uint8_t *signed2, sig2[64], s1tlv[67];
	size_t s2_len;
	assert_esim(ESIM_OK, rsp_smdp_signed2_build(&txid, true, NULL, pki.dppb.key, euicc_sig1,
						    &signed2, &s2_len, sig2));
	assert_int_equal(s2_len, 2 + 18 + 3);
	assert_int_equal(signed2[s2_len - 1], 0xFF);
	rsp_sig_tlv(euicc_sig1, s1tlv);
	struct crypto_span sp[2] = {{signed2, s2_len}, {s1tlv, 67}};
	assert_esim(ESIM_OK, crypto_ecdsa_verify_spans(pki.dppb.key, sp, 2, sig2, 64));
	free(signed2);
	uint8_t otpk[65];
	assert_esim(ESIM_OK, crypto_key_public_point(pki.euicc.key, otpk));
	assert_esim(ESIM_OK, rsp_smdp_signed2_build(&txid, false, otpk, pki.dppb.key, euicc_sig1,
						    &signed2, &s2_len, sig2));
	assert_int_equal(s2_len, 2 + 18 + 3 + 68);
	free(signed2);
}

/* eUICC PrepareDownload answer (digest 6.4 steps 7-8). */
static void euicc_prepare(const rsp_txid *t, const uint8_t otpk[65], const uint8_t *hash_cc,
			  const uint8_t smdp_sig2[64], EVP_PKEY *key, uint8_t **out, size_t *n)
{
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0x30);
	der_add_octet_string(&b, 0x80, t->b, t->len);
	der_add_octet_string(&b, 0x5F49, otpk, 65);
	if (hash_cc)
		der_add_octet_string(&b, 0x04, hash_cc, 32);
	der_builder_close(&b);
	uint8_t *s2, tlv[67], sig[64];
	size_t s2n;
	assert_esim(ESIM_OK, der_builder_finish(&b, &s2, &s2n));
	rsp_sig_tlv(smdp_sig2, tlv);
	struct crypto_span sp[2] = {{s2, s2n}, {tlv, 67}};
	assert_esim(ESIM_OK, crypto_ecdsa_sign_spans(key, sp, 2, sig));
	der_builder_init(&b);
	der_builder_open(&b, 0xBF21);
	der_builder_open(&b, 0xA0);
	der_add_raw(&b, s2, s2n);
	der_add_octet_string(&b, 0x5F37, sig, 64);
	der_builder_close(&b);
	der_builder_close(&b);
	assert_esim(ESIM_OK, der_builder_finish(&b, out, n));
	free(s2);
}

static void test_prepare_download(void **state)
{
	(void)state;
	uint8_t smdp_sig2[64], otpk[65], hcc[32];
	for (int i = 0; i < 64; i++)
		smdp_sig2[i] = (uint8_t)i;
	EVP_PKEY *ot = NULL;
	assert_esim(ESIM_OK, crypto_key_generate(CRYPTO_CURVE_P256, &ot));
	assert_esim(ESIM_OK, crypto_key_public_point(ot, otpk));
	assert_esim(ESIM_OK, rsp_hash_cc("12345678", 8, &txid, hcc));

	uint8_t *resp;
	size_t n;
	struct rsp_prepare_download_resp r;
	euicc_prepare(&txid, otpk, hcc, smdp_sig2, pki.euicc.key, &resp, &n);
	assert_esim(ESIM_OK, rsp_prepare_download_resp_verify(resp, n, pki.euicc.key, &txid,
							      smdp_sig2, hcc, &r));
	assert_memory_equal(r.otpk, otpk, 65);
	assert_true(r.has_hash_cc);
	/* wrong CC, wrong smdpSignature2 (what the eUICC countersigned), wrong txId */
	uint8_t hcc2[32];
	assert_esim(ESIM_OK, rsp_hash_cc("00000000", 8, &txid, hcc2));
	assert_esim(
	    ESIM_E_RSP_CC_MISMATCH,
	    rsp_prepare_download_resp_verify(resp, n, pki.euicc.key, &txid, smdp_sig2, hcc2, &r));
	uint8_t sig_other[64];
	memcpy(sig_other, smdp_sig2, 64);
	sig_other[0] ^= 1;
	assert_esim(
	    ESIM_E_RSP_BAD_SIGNATURE,
	    rsp_prepare_download_resp_verify(resp, n, pki.euicc.key, &txid, sig_other, NULL, &r));
	rsp_txid other = txid;
	other.len = 15;
	assert_esim(
	    ESIM_E_RSP_TXID_MISMATCH,
	    rsp_prepare_download_resp_verify(resp, n, pki.euicc.key, &other, smdp_sig2, NULL, &r));
	assert_esim(
	    ESIM_E_RSP_BAD_SIGNATURE,
	    rsp_prepare_download_resp_verify(resp, n, pki.dppb.key, &txid, smdp_sig2, NULL, &r));
	free(resp);

	/* CC required but absent */
	euicc_prepare(&txid, otpk, NULL, smdp_sig2, pki.euicc.key, &resp, &n);
	assert_esim(ESIM_OK, rsp_prepare_download_resp_verify(resp, n, pki.euicc.key, &txid,
							      smdp_sig2, NULL, &r));
	assert_false(r.has_hash_cc);
	assert_esim(ESIM_E_RSP_CC_MISSING, rsp_prepare_download_resp_verify(
					       resp, n, pki.euicc.key, &txid, smdp_sig2, hcc, &r));
	free(resp);

	/* error form */
	uint8_t *e = test_unhex("BF2117A11580100123456789ABCDEF0123456789ABCDEF020102", &n);
	assert_esim(ESIM_E_RSP_EUICC_ERROR, rsp_prepare_download_resp_parse(e, n, &r));
	assert_true(r.is_error);
	assert_int_equal(r.error_code, 2);
	free(e);
	EVP_PKEY_free(ot);

	/* PrepareDownloadRequest as the LPA sends it */
	uint8_t *signed2, sig2[64], sig2_tlv[67], euicc_sig1[64] = {1};
	size_t s2n, rn;
	assert_esim(ESIM_OK, rsp_smdp_signed2_build(&txid, true, NULL, pki.dppb.key, euicc_sig1,
						    &signed2, &s2n, sig2));
	rsp_sig_tlv(sig2, sig2_tlv);
	uint8_t *req;
	assert_esim(ESIM_OK,
		    rsp_prepare_download_req_build(signed2, s2n, sig2_tlv, 67, hcc, pki.dppb.der,
						   pki.dppb.der_len, &req, &rn));
	der_cursor c, in;
	der_cursor_init(&c, req, rn);
	assert_esim(ESIM_OK, der_get_sequence(&c, 0xBF21, &in));
	der_element el;
	assert_esim(ESIM_OK, der_get_tlv(&in, 0x30, &el));
	assert_memory_equal(el.tlv.p, signed2, s2n);
	assert_esim(ESIM_OK, der_get_tlv(&in, 0x5F37, &el));
	assert_esim(ESIM_OK, der_get_tlv(&in, 0x04, &el));
	assert_memory_equal(el.value.p, hcc, 32);
	assert_esim(ESIM_OK, der_get_tlv(&in, 0x30, &el));
	assert_int_equal(el.tlv.len, pki.dppb.der_len);
	assert_esim(ESIM_OK, der_expect_end(&in));
	free(req);
	free(signed2);
}

static void euicc_cancel(const rsp_txid *t, const char *oid, int64_t reason, EVP_PKEY *key,
			 uint8_t **out, size_t *n)
{
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0x30);
	der_add_octet_string(&b, 0x80, t->b, t->len);
	der_add_oid(&b, 0x81, oid);
	der_add_int64(&b, 0x82, reason);
	der_builder_close(&b);
	uint8_t *s, sig[64];
	size_t sn;
	assert_esim(ESIM_OK, der_builder_finish(&b, &s, &sn));
	assert_esim(ESIM_OK, crypto_ecdsa_sign(key, s, sn, sig));
	der_builder_init(&b);
	der_builder_open(&b, 0xBF41);
	der_builder_open(&b, 0xA0);
	der_add_raw(&b, s, sn);
	der_add_octet_string(&b, 0x5F37, sig, 64);
	der_builder_close(&b);
	der_builder_close(&b);
	assert_esim(ESIM_OK, der_builder_finish(&b, out, n));
	free(s);
}

static void test_cancel_session_resp(void **state)
{
	(void)state;
	uint8_t *resp;
	size_t n;
	struct rsp_cancel_session_resp r;
	euicc_cancel(&txid, "2.999.10", RSP_CANCEL_END_USER_REJECTION, pki.euicc.key, &resp, &n);
	assert_esim(ESIM_OK,
		    rsp_cancel_session_resp_verify(resp, n, pki.euicc.key, &txid, "2.999.10", &r));
	assert_int_equal(r.reason, 0);
	assert_string_equal(r.smdp_oid, "2.999.10");
	assert_esim(ESIM_E_RSP_OID_MISMATCH,
		    rsp_cancel_session_resp_verify(resp, n, pki.euicc.key, &txid, "2.999.12", &r));
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE,
		    rsp_cancel_session_resp_verify(resp, n, pki.dppb.key, &txid, NULL, &r));
	rsp_txid other;
	assert_esim(ESIM_OK, rsp_txid_from_hex("01", &other));
	assert_esim(ESIM_E_RSP_TXID_MISMATCH,
		    rsp_cancel_session_resp_verify(resp, n, pki.euicc.key, &other, NULL, &r));
	resp[n - 68] ^= 1; /* the reason byte, inside the signed block */
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE,
		    rsp_cancel_session_resp_verify(resp, n, pki.euicc.key, &txid, NULL, &r));
	free(resp);

	uint8_t *e = test_unhex("BF4103810105", &n);
	assert_esim(ESIM_E_RSP_EUICC_ERROR, rsp_cancel_session_resp_parse(e, n, &r));
	assert_true(r.is_error);
	assert_int_equal(r.error_code, 5);
	free(e);
	e = test_unhex("BF4103820105", &n);
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE, rsp_cancel_session_resp_parse(e, n, &r));
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_cc),
	    cmocka_unit_test(test_cancel_session_req),
	    cmocka_unit_test(test_authenticate),
	    cmocka_unit_test(test_prepare_download),
	    cmocka_unit_test(test_cancel_session_resp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
