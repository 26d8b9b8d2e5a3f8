/*
 * smdp_auth: common mutual authentication and PrepareDownload (digest 6.2 to
 * 6.4, 6.7) as the SM-DP+ performs them, plus the ES10b requests the LPA
 * assembles from the SM-DP+'s pieces.
 *
 * The functions are stateless: the SM-DP+ keeps txId, challenges, the chosen
 * CI and the eUICC key in its session and passes them in. Every signature
 * is checked over the exact bytes received; the signed blocks are kept as
 * spans into the caller's buffer for that reason.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp_auth.h"
#include "rsp_int.h"

esim_err rsp_hash_cc(const char *cc, size_t cc_len, const rsp_txid *txid, uint8_t out[32])
{
	if ((!cc && cc_len) || !txid || !out || txid->len < 1 || txid->len > RSP_TXID_MAX)
		return ESIM_E_ARG;
	uint8_t inner[32 + RSP_TXID_MAX];
	unsigned int n = 0;
	if (EVP_Digest(cc, cc_len, inner, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return ESIM_E_CRYPTO_OPENSSL;
	memcpy(inner + 32, txid->b, txid->len);
	int ok = EVP_Digest(inner, 32 + txid->len, out, &n, EVP_sha256(), NULL);
	esim_wipe(inner, sizeof(inner)); /* SHA-256(CC) is as good as the CC */
	return ok == 1 && n == 32 ? ESIM_OK : ESIM_E_CRYPTO_OPENSSL;
}

static bool txid_ok(const rsp_txid *t)
{
	return t && t->len >= 1 && t->len <= RSP_TXID_MAX;
}

esim_err rsp_server_signed1_build(const rsp_txid *txid,
				  const uint8_t euicc_challenge[RSP_CHALLENGE_LEN],
				  const char *server_address,
				  const uint8_t server_challenge[RSP_CHALLENGE_LEN],
				  EVP_PKEY *dp_auth_key, uint8_t **signed1, size_t *signed1_len,
				  uint8_t sig1[RSP_SIG_LEN])
{
	if (!txid_ok(txid) || !euicc_challenge || !server_address || !server_challenge ||
	    !dp_auth_key || !signed1 || !signed1_len || !sig1)
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0x30);
	der_add_octet_string(&b, 0x80, txid->b, txid->len);
	der_add_octet_string(&b, 0x81, euicc_challenge, RSP_CHALLENGE_LEN);
	der_add_utf8(&b, 0x83, server_address, strlen(server_address));
	der_add_octet_string(&b, 0x84, server_challenge, RSP_CHALLENGE_LEN);
	der_builder_close(&b);
	uint8_t *p = NULL;
	size_t n = 0;
	esim_err err = der_builder_finish(&b, &p, &n);
	if (err != ESIM_OK)
		return err;
	err = crypto_ecdsa_sign(dp_auth_key, p, n, sig1);
	if (err != ESIM_OK) {
		free(p);
		return err;
	}
	*signed1 = p;
	*signed1_len = n;
	return ESIM_OK;
}

/* --- AuthenticateServerResponse ------------------------------------------- */

void rsp_auth_server_resp_clear(struct rsp_auth_server_resp *r)
{
	if (!r)
		return;
	EVP_PKEY_free(r->euicc_pub);
	memset(r, 0, sizeof(*r));
}

/* A1 { [80 txId], 02 code } shared by BF38 and BF21 errors. */
static esim_err parse_error_alt(der_cursor *c, rsp_txid *txid, int64_t *code)
{
	der_cursor in;
	bool has_txid = false;
	esim_err err = der_get_sequence(c, 0xA1, &in);
	if (err == ESIM_OK) {
		uint32_t tag;
		err = der_peek_tag(&in, &tag);
		has_txid = err == ESIM_OK && tag == 0x80;
	}
	if (err == ESIM_OK && has_txid)
		err = rsp__get_txid(&in, 0x80, txid);
	if (err == ESIM_OK)
		err = der_get_int64(&in, DER_TAG_INTEGER, code);
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	if (err == ESIM_OK)
		err = der_expect_end(c);
	err = rsp__structure(err);
	return err == ESIM_OK ? ESIM_E_RSP_EUICC_ERROR : err;
}

static esim_err parse_ctx_params1(der_element *ctx, struct rsp_auth_server_resp *out)
{
	der_cursor in = der_cursor_of(ctx->value);
	der_cursor save = in;
	bool present = false;
	esim_err err = der_get_optional(&in, 0x80, &present, NULL);
	if (err == ESIM_OK && present) {
		in = save;
		err = der_get_utf8(&in, 0x80, &out->matching_id);
		out->has_matching_id = err == ESIM_OK;
	}
	der_element dev;
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xA1, &dev);
	if (err == ESIM_OK)
		out->device_info = dev.tlv;
	return rsp__structure(err);
}

static esim_err parse_euicc_signed1(der_span tlv, struct rsp_auth_server_resp *out)
{
	der_cursor c = der_cursor_of(tlv), in;
	der_element info2, ctx;
	esim_err err = der_get_sequence(&c, 0x30, &in);
	if (err == ESIM_OK)
		err = rsp__get_txid(&in, 0x80, &out->txid);
	if (err == ESIM_OK)
		err = der_get_utf8(&in, 0x83, &out->server_address);
	if (err == ESIM_OK)
		err = rsp__get_fixed(&in, 0x84, out->server_challenge, RSP_CHALLENGE_LEN);
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xBF22, &info2);
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xA0, &ctx);
	/* v3 may add elements after ctxParams1: tolerated. */
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (!der_tag_is_constructed(info2.tag))
		return ESIM_E_RSP_BAD_STRUCTURE;
	out->euicc_info2 = info2.tlv;
	out->ctx_params1 = ctx.tlv;
	return parse_ctx_params1(&ctx, out);
}

esim_err rsp_auth_server_resp_parse(const uint8_t *p, size_t len, struct rsp_auth_server_resp *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_cursor in, ok;
	uint32_t tag = 0;
	esim_err err = rsp__open(p, len, 0xBF38, &in, &tag);
	if (err != ESIM_OK)
		return err;
	if (tag == 0xA1) {
		out->is_error = true;
		return parse_error_alt(&in, &out->txid, &out->error_code);
	}
	der_element signed1, cert1, cert2;
	err = der_get_sequence(&in, 0xA0, &ok);
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	if (err == ESIM_OK)
		err = der_get_tlv(&ok, 0x30, &signed1);
	if (err == ESIM_OK)
		err = rsp__get_sig(&ok, out->euicc_signature1);
	if (err == ESIM_OK)
		err = der_get_tlv(&ok, 0x30, &cert1);
	if (err == ESIM_OK)
		err = der_get_tlv(&ok, 0x30, &cert2);
	if (err == ESIM_OK)
		err = der_expect_end(&ok);
	if (err != ESIM_OK) {
		memset(out, 0, sizeof(*out));
		return rsp__structure(err);
	}
	out->euicc_signed1 = signed1.tlv;
	out->euicc_cert = cert1.tlv;
	out->eum_cert = cert2.tlv;
	err = parse_euicc_signed1(signed1.tlv, out);
	if (err != ESIM_OK)
		memset(out, 0, sizeof(*out));
	return err;
}

esim_err rsp_auth_server_resp_verify(const uint8_t *p, size_t len,
				     const struct rsp_auth_expect *expect,
				     struct rsp_auth_server_resp *out)
{
	if (!expect || !expect->trust || !txid_ok(expect->txid) || !expect->server_challenge)
		return ESIM_E_ARG;
	esim_err err = rsp_auth_server_resp_parse(p, len, out);
	if (err != ESIM_OK)
		return err;
	const crypto_cert *ci = NULL;
	err = rsp__euicc_chain(out->euicc_cert, out->eum_cert, expect->trust, expect->chain_opts,
			       &out->euicc_pub, out->eid, &ci);
	if (err == ESIM_OK && expect->ci_pkid) {
		uint8_t ski[CRYPTO_KEY_ID_MAX];
		size_t ski_len = 0;
		err = crypto_cert_ski(ci, ski, &ski_len);
		if (err == ESIM_OK &&
		    (ski_len != expect->ci_pkid_len || memcmp(ski, expect->ci_pkid, ski_len) != 0))
			err = ESIM_E_RSP_CI_MISMATCH;
	}
	if (err == ESIM_OK) {
		struct crypto_span s = {out->euicc_signed1.p, out->euicc_signed1.len};
		err = rsp__verify(out->euicc_pub, &s, 1, out->euicc_signature1);
	}
	if (err == ESIM_OK && !rsp_txid_equal(&out->txid, expect->txid))
		err = ESIM_E_RSP_TXID_MISMATCH;
	if (err == ESIM_OK &&
	    !esim_ct_equal(out->server_challenge, expect->server_challenge, RSP_CHALLENGE_LEN))
		err = ESIM_E_RSP_CHALLENGE_MISMATCH;
	return err;
}

esim_err rsp_smdp_signed2_build(const rsp_txid *txid, bool cc_required, const uint8_t *bound_otpk,
				EVP_PKEY *dp_pb_key, const uint8_t euicc_signature1[RSP_SIG_LEN],
				uint8_t **signed2, size_t *signed2_len, uint8_t sig2[RSP_SIG_LEN])
{
	if (!txid_ok(txid) || !dp_pb_key || !euicc_signature1 || !signed2 || !signed2_len || !sig2)
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0x30);
	der_add_octet_string(&b, 0x80, txid->b, txid->len);
	der_add_bool(&b, DER_TAG_BOOLEAN, cc_required);
	if (bound_otpk)
		der_add_octet_string(&b, 0x5F49, bound_otpk, RSP_OTPK_LEN);
	der_builder_close(&b);
	uint8_t *p = NULL;
	size_t n = 0;
	esim_err err = der_builder_finish(&b, &p, &n);
	if (err != ESIM_OK)
		return err;
	uint8_t sig1_tlv[RSP_SIG_TLV_LEN];
	rsp_sig_tlv(euicc_signature1, sig1_tlv);
	struct crypto_span spans[2] = {{p, n}, {sig1_tlv, sizeof(sig1_tlv)}};
	err = crypto_ecdsa_sign_spans(dp_pb_key, spans, 2, sig2);
	if (err != ESIM_OK) {
		free(p);
		return err;
	}
	*signed2 = p;
	*signed2_len = n;
	return ESIM_OK;
}

/* --- PrepareDownloadResponse ---------------------------------------------- */

esim_err rsp_prepare_download_resp_parse(const uint8_t *p, size_t len,
					 struct rsp_prepare_download_resp *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_cursor in, ok, s2;
	uint32_t tag = 0;
	esim_err err = rsp__open(p, len, 0xBF21, &in, &tag);
	if (err != ESIM_OK)
		return err;
	if (tag == 0xA1) {
		out->is_error = true;
		return parse_error_alt(&in, &out->txid, &out->error_code);
	}
	der_element signed2;
	err = der_get_sequence(&in, 0xA0, &ok);
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	if (err == ESIM_OK)
		err = der_get_tlv(&ok, 0x30, &signed2);
	if (err == ESIM_OK)
		err = rsp__get_sig(&ok, out->euicc_signature2);
	if (err == ESIM_OK)
		err = der_expect_end(&ok);
	if (err == ESIM_OK) {
		out->euicc_signed2 = signed2.tlv;
		s2 = der_cursor_of(signed2.value);
		err = rsp__get_txid(&s2, 0x80, &out->txid);
	}
	if (err == ESIM_OK)
		err = rsp__get_fixed(&s2, 0x5F49, out->otpk, RSP_OTPK_LEN);
	if (err == ESIM_OK) {
		der_cursor save = s2;
		err = der_get_optional(&s2, 0x04, &out->has_hash_cc, NULL);
		if (err == ESIM_OK && out->has_hash_cc) {
			s2 = save;
			err = rsp__get_fixed(&s2, 0x04, out->hash_cc, 32);
		}
	}
	if (err == ESIM_OK)
		err = der_expect_end(&s2);
	if (err != ESIM_OK) {
		memset(out, 0, sizeof(*out));
		return rsp__structure(err);
	}
	return ESIM_OK;
}

esim_err rsp_prepare_download_resp_verify(const uint8_t *p, size_t len, EVP_PKEY *euicc_pub,
					  const rsp_txid *expected_txid,
					  const uint8_t smdp_signature2[RSP_SIG_LEN],
					  const uint8_t *expected_hash_cc,
					  struct rsp_prepare_download_resp *out)
{
	if (!euicc_pub || !txid_ok(expected_txid) || !smdp_signature2)
		return ESIM_E_ARG;
	esim_err err = rsp_prepare_download_resp_parse(p, len, out);
	if (err != ESIM_OK)
		return err;
	uint8_t sig2_tlv[RSP_SIG_TLV_LEN];
	rsp_sig_tlv(smdp_signature2, sig2_tlv);
	struct crypto_span spans[2] = {{out->euicc_signed2.p, out->euicc_signed2.len},
				       {sig2_tlv, sizeof(sig2_tlv)}};
	err = rsp__verify(euicc_pub, spans, 2, out->euicc_signature2);
	if (err == ESIM_OK && !rsp_txid_equal(&out->txid, expected_txid))
		err = ESIM_E_RSP_TXID_MISMATCH;
	if (err == ESIM_OK && expected_hash_cc) {
		if (!out->has_hash_cc)
			err = ESIM_E_RSP_CC_MISSING;
		else if (!esim_ct_equal(out->hash_cc, expected_hash_cc, 32))
			err = ESIM_E_RSP_CC_MISMATCH;
	}
	return err;
}

/* --- CancelSession ---------------------------------------------------------- */

esim_err rsp_cancel_session_req_build(const rsp_txid *txid, enum rsp_cancel_reason reason,
				      uint8_t **out, size_t *out_len)
{
	if (!txid_ok(txid) || !out || !out_len || (int)reason < 0 || (int)reason > 127)
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF41);
	der_add_octet_string(&b, 0x80, txid->b, txid->len);
	der_add_int64(&b, 0x81, reason);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_cancel_session_resp_parse(const uint8_t *p, size_t len,
				       struct rsp_cancel_session_resp *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_cursor in, ok, s;
	uint32_t tag = 0;
	esim_err err = rsp__open(p, len, 0xBF41, &in, &tag);
	if (err != ESIM_OK)
		return err;
	if (tag == 0x81) {
		out->is_error = true;
		err = der_get_int64(&in, 0x81, &out->error_code);
		if (err == ESIM_OK)
			err = der_expect_end(&in);
		err = rsp__structure(err);
		return err == ESIM_OK ? ESIM_E_RSP_EUICC_ERROR : err;
	}
	der_element signed_el;
	der_span oid;
	err = der_get_sequence(&in, 0xA0, &ok);
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	if (err == ESIM_OK)
		err = der_get_tlv(&ok, 0x30, &signed_el);
	if (err == ESIM_OK)
		err = rsp__get_sig(&ok, out->sig);
	if (err == ESIM_OK)
		err = der_expect_end(&ok);
	if (err == ESIM_OK) {
		out->signed_tlv = signed_el.tlv;
		s = der_cursor_of(signed_el.value);
		err = rsp__get_txid(&s, 0x80, &out->txid);
	}
	if (err == ESIM_OK)
		err = der_get_oid(&s, 0x81, &oid);
	if (err == ESIM_OK) {
		err = der_oid_to_text(oid, out->smdp_oid, sizeof(out->smdp_oid));
		if (err == ESIM_E_BUF_SMALL)
			err = ESIM_E_RSP_FIELD_SIZE;
	}
	if (err == ESIM_OK)
		err = der_get_int64(&s, 0x82, &out->reason);
	if (err == ESIM_OK)
		err = der_expect_end(&s);
	if (err != ESIM_OK) {
		memset(out, 0, sizeof(*out));
		return rsp__structure(err);
	}
	return ESIM_OK;
}

esim_err rsp_cancel_session_resp_verify(const uint8_t *p, size_t len, EVP_PKEY *euicc_pub,
					const rsp_txid *expected_txid,
					const char *expected_smdp_oid,
					struct rsp_cancel_session_resp *out)
{
	if (!euicc_pub || !txid_ok(expected_txid))
		return ESIM_E_ARG;
	esim_err err = rsp_cancel_session_resp_parse(p, len, out);
	if (err != ESIM_OK)
		return err;
	struct crypto_span s = {out->signed_tlv.p, out->signed_tlv.len};
	err = rsp__verify(euicc_pub, &s, 1, out->sig);
	if (err == ESIM_OK && !rsp_txid_equal(&out->txid, expected_txid))
		err = ESIM_E_RSP_TXID_MISMATCH;
	if (err == ESIM_OK && expected_smdp_oid && strcmp(expected_smdp_oid, out->smdp_oid) != 0)
		err = ESIM_E_RSP_OID_MISMATCH;
	return err;
}

/* --- LPA: ES10b requests ------------------------------------------------------ */

/* bytes must be exactly one element of tag. */
static esim_err check_one(const uint8_t *p, size_t len, uint32_t tag)
{
	if (!p)
		return ESIM_E_ARG;
	der_element e;
	esim_err err = der_parse_single(p, len, &e);
	if (err != ESIM_OK)
		return rsp__structure(err);
	return e.tag == tag ? ESIM_OK : ESIM_E_RSP_BAD_STRUCTURE;
}

esim_err rsp_auth_server_req_build(const uint8_t *server_signed1, size_t server_signed1_len,
				   const uint8_t *server_sig1, size_t server_sig1_len,
				   const uint8_t *ci_pkid, size_t ci_pkid_len,
				   const uint8_t *server_cert, size_t server_cert_len,
				   const char *matching_id, const struct rsp_device_info *dev,
				   uint8_t **out, size_t *out_len)
{
	if (!dev || !out || !out_len || (dev->capabilities_len && !dev->capabilities))
		return ESIM_E_ARG;
	esim_err err = check_one(server_signed1, server_signed1_len, 0x30);
	if (err == ESIM_OK)
		err = check_one(server_sig1, server_sig1_len, 0x5F37);
	if (err == ESIM_OK)
		err = check_one(ci_pkid, ci_pkid_len, 0x04);
	if (err == ESIM_OK)
		err = check_one(server_cert, server_cert_len, 0x30);
	if (err != ESIM_OK)
		return err;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF38);
	der_add_raw(&b, server_signed1, server_signed1_len);
	der_add_raw(&b, server_sig1, server_sig1_len);
	der_add_raw(&b, ci_pkid, ci_pkid_len);
	der_add_raw(&b, server_cert, server_cert_len);
	der_builder_open(&b, 0xA0);
	if (matching_id)
		der_add_utf8(&b, 0x80, matching_id, strlen(matching_id));
	der_builder_open(&b, 0xA1);
	der_add_octet_string(&b, 0x80, dev->tac, sizeof(dev->tac));
	der_builder_open(&b, 0xA1);
	der_add_raw(&b, dev->capabilities, dev->capabilities_len);
	der_builder_close(&b);
	if (dev->has_imei)
		der_add_octet_string(&b, 0x82, dev->imei, sizeof(dev->imei));
	der_builder_close(&b);
	der_builder_close(&b);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_prepare_download_req_build(const uint8_t *smdp_signed2, size_t smdp_signed2_len,
					const uint8_t *smdp_sig2, size_t smdp_sig2_len,
					const uint8_t *hash_cc, const uint8_t *smdp_cert,
					size_t smdp_cert_len, uint8_t **out, size_t *out_len)
{
	if (!out || !out_len)
		return ESIM_E_ARG;
	esim_err err = check_one(smdp_signed2, smdp_signed2_len, 0x30);
	if (err == ESIM_OK)
		err = check_one(smdp_sig2, smdp_sig2_len, 0x5F37);
	if (err == ESIM_OK)
		err = check_one(smdp_cert, smdp_cert_len, 0x30);
	if (err != ESIM_OK)
		return err;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF21);
	der_add_raw(&b, smdp_signed2, smdp_signed2_len);
	der_add_raw(&b, smdp_sig2, smdp_sig2_len);
	if (hash_cc)
		der_add_octet_string(&b, 0x04, hash_cc, 32);
	der_add_raw(&b, smdp_cert, smdp_cert_len);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}
