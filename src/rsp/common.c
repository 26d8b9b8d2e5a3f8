/*
 * common: helpers shared by the rsp message codecs (see rsp_int.h): error
 * mapping, fixed-size fields, and the eUICC certificate chain check that
 * both the AuthenticateServerResponse and other notifications need
 * (digest 6.3 steps 3..6, 8.4).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "rsp_int.h"

esim_err rsp__structure(esim_err err)
{
	switch (err) {
	case ESIM_E_DER_UNEXPECTED_TAG:
	case ESIM_E_DER_CONSTRUCTED_EXPECTED:
	case ESIM_E_DER_PRIMITIVE_EXPECTED:
	case ESIM_E_DER_TRAILING_DATA:
	case ESIM_E_DER_TRUNCATED_TAG: /* a required element missing at the end */
		return ESIM_E_RSP_BAD_STRUCTURE;
	default:
		return err;
	}
}

esim_err rsp__open(const uint8_t *p, size_t len, uint32_t tag, der_cursor *in, uint32_t *choice)
{
	der_cursor top;
	der_cursor_init(&top, p, len);
	esim_err err = der_get_sequence(&top, tag, in);
	if (err == ESIM_OK)
		err = der_expect_end(&top);
	if (err == ESIM_OK && choice != NULL)
		err = der_peek_tag(in, choice);
	return rsp__structure(err);
}

esim_err rsp__signature(esim_err err)
{
	switch (err) {
	case ESIM_E_CRYPTO_SIGNATURE_INVALID:
	case ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT:
		return ESIM_E_RSP_BAD_SIGNATURE;
	default:
		return err;
	}
}

esim_err rsp__get_fixed(der_cursor *c, uint32_t tag, uint8_t *out, size_t len)
{
	der_cursor save = *c;
	der_span v;
	esim_err err = der_get_octet_string(c, tag, &v);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (v.len != len) {
		*c = save;
		return ESIM_E_RSP_BAD_STRUCTURE;
	}
	memcpy(out, v.p, len);
	return ESIM_OK;
}

esim_err rsp__get_txid(der_cursor *c, uint32_t tag, rsp_txid *out)
{
	der_cursor save = *c;
	der_span v;
	esim_err err = der_get_octet_string(c, tag, &v);
	if (err != ESIM_OK)
		return rsp__structure(err);
	err = rsp_txid_set(out, v.p, v.len);
	if (err != ESIM_OK)
		*c = save;
	return err;
}

esim_err rsp__get_sig(der_cursor *c, uint8_t out[RSP_SIG_LEN])
{
	return rsp__get_fixed(c, 0x5F37, out, RSP_SIG_LEN);
}

esim_err rsp__strdup(der_span s, char **out)
{
	char *p = malloc(s.len + 1);
	if (!p)
		return ESIM_E_NOMEM;
	if (s.len)
		memcpy(p, s.p, s.len);
	p[s.len] = '\0';
	*out = p;
	return ESIM_OK;
}

size_t rsp__utf8_chars(const uint8_t *p, size_t n)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			chars++;
	return chars;
}

esim_err rsp__verify(EVP_PKEY *pub, const struct crypto_span *spans, size_t n,
		     const uint8_t sig[RSP_SIG_LEN])
{
	return rsp__signature(crypto_ecdsa_verify_spans(pub, spans, n, sig, RSP_SIG_LEN));
}

esim_err rsp__euicc_chain(der_span euicc_cert, der_span eum_cert, const crypto_trust *trust,
			  const struct crypto_chain_opts *opts, EVP_PKEY **pub,
			  char eid[RSP_EID_DIGITS + 1], const crypto_cert **ci)
{
	crypto_cert *euicc = NULL, *eum = NULL;
	esim_err err = crypto_cert_load(euicc_cert.p, euicc_cert.len, &euicc);
	if (err == ESIM_OK)
		err = crypto_cert_load(eum_cert.p, eum_cert.len, &eum);
	if (err == ESIM_OK) {
		const crypto_cert *inter[1] = {eum};
		err = crypto_chain_verify(trust, euicc, inter, 1, CRYPTO_ROLE_EUICC, opts, ci);
	}
	if (err == ESIM_OK)
		err = crypto_cert_eid(euicc, eid);
	if (err == ESIM_OK) {
		EVP_PKEY *k = crypto_cert_pubkey(euicc);
		if (!k || EVP_PKEY_up_ref(k) != 1)
			err = ESIM_E_CRYPTO_OPENSSL;
		else
			*pub = k;
	}
	crypto_cert_free(euicc);
	crypto_cert_free(eum);
	return err;
}
