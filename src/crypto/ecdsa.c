/*
 * ecdsa: ECDSA with SHA-256 on P-256 and brainpoolP256r1.
 *
 * SGP.22 carries signatures inside its own messages as raw r||s, 64 bytes
 * (BSI TR-03111 plain format, tag 5F37: euiccSignature1/2, serverSignature1,
 * smdpSign ...), while X.509 and OpenSSL use DER SEQUENCE { r, s }. This
 * file signs and verifies in both forms and converts between them.
 *
 * The DER -> raw direction parses by hand and is strict (minimal INTEGERs,
 * non-negative, at most 32 value bytes, no trailing data): a signature that
 * a strict peer would refuse must not verify here, and a malformed encoding
 * is reported as ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT, never as "invalid".
 *
 * SGP.22 signs the concatenation of several TLVs (e.g. smdpSign covers the
 * body of BF23 followed by the eUICC's 5F49), so the _spans variants feed
 * the pieces to the digest without copying them together.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "esim/crypto.h"
#include "esim/util.h"

#define HALF (CRYPTO_RAW_SIG_LEN / 2)

/* Encode one 32-byte unsigned big-endian integer as a minimal DER INTEGER. */
static size_t der_put_uint(const uint8_t v[HALF], uint8_t *out)
{
	size_t skip = 0;
	while (skip < HALF - 1 && v[skip] == 0)
		skip++;
	size_t n = HALF - skip;
	int pad = (v[skip] & 0x80) != 0;
	out[0] = 0x02;
	out[1] = (uint8_t)(n + (size_t)pad);
	size_t off = 2;
	if (pad)
		out[off++] = 0x00;
	memcpy(out + off, v + skip, n);
	return off + n;
}

esim_err crypto_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len,
				 uint8_t out[CRYPTO_DER_SIG_MAX], size_t *out_len)
{
	uint8_t body[CRYPTO_DER_SIG_MAX];
	size_t n;

	if (raw == NULL || out == NULL || out_len == NULL)
		return ESIM_E_ARG;
	*out_len = 0;
	if (raw_len != CRYPTO_RAW_SIG_LEN)
		return ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT;
	n = der_put_uint(raw, body);
	n += der_put_uint(raw + HALF, body + n);
	/* at most 2 * 35 = 70 bytes of content: the short length form always fits */
	out[0] = 0x30;
	out[1] = (uint8_t)n;
	memcpy(out + 2, body, n);
	*out_len = n + 2;
	return ESIM_OK;
}

/* Read one DER INTEGER at *p (within end) into a 32-byte big-endian field. */
static esim_err der_get_uint(const uint8_t **p, const uint8_t *end, uint8_t out[HALF])
{
	const uint8_t *q = *p;
	size_t n;

	if (end - q < 2 || q[0] != 0x02)
		return ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT;
	n = q[1];
	q += 2;
	/* long length forms are never minimal for values this small */
	if (n == 0 || n > HALF + 1 || (size_t)(end - q) < n)
		return ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT;
	if (q[0] & 0x80)
		return ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT; /* negative */
	if (n > 1 && q[0] == 0x00 && (q[1] & 0x80) == 0)
		return ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT; /* redundant leading zero */
	if (q[0] == 0x00 && n > 1) {
		q++;
		n--;
	}
	if (n > HALF)
		return ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT;
	memset(out, 0, HALF - n);
	memcpy(out + HALF - n, q, n);
	*p = q + n;
	return ESIM_OK;
}

esim_err crypto_ecdsa_der_to_raw(const uint8_t *der, size_t der_len,
				 uint8_t out[CRYPTO_RAW_SIG_LEN])
{
	const uint8_t *p, *end;
	esim_err err;

	if (der == NULL || out == NULL)
		return ESIM_E_ARG;
	if (der_len < 2 || der[0] != 0x30 || der[1] >= 0x80 || (size_t)der[1] + 2 != der_len)
		return ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT;
	p = der + 2;
	end = der + der_len;
	err = der_get_uint(&p, end, out);
	if (err == ESIM_OK)
		err = der_get_uint(&p, end, out + HALF);
	if (err == ESIM_OK && p != end)
		err = ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT;
	if (err != ESIM_OK)
		memset(out, 0, CRYPTO_RAW_SIG_LEN);
	return err;
}

static esim_err check_key(const EVP_PKEY *key)
{
	crypto_curve c;
	if (key == NULL)
		return ESIM_E_ARG;
	return crypto_key_curve(key, &c);
}

/* Sign the concatenated spans; the DER signature goes to der/der_len. */
static esim_err sign_spans_der(EVP_PKEY *priv, const struct crypto_span *spans, size_t n,
			       uint8_t der[CRYPTO_DER_SIG_MAX], size_t *der_len)
{
	EVP_MD_CTX *md;
	esim_err err = ESIM_OK;
	size_t len = CRYPTO_DER_SIG_MAX;

	if (spans == NULL && n > 0)
		return ESIM_E_ARG;
	err = check_key(priv);
	if (err != ESIM_OK)
		return err;
	if (!crypto_key_has_private(priv))
		return ESIM_E_CRYPTO_BAD_KEY;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		return ESIM_E_NOMEM;
	if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, priv, NULL) != 1) {
		err = ESIM_E_CRYPTO_OPENSSL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (spans[i].data == NULL && spans[i].len > 0) {
			err = ESIM_E_ARG;
			goto out;
		}
		if (spans[i].len > 0 &&
		    EVP_DigestSignUpdate(md, spans[i].data, spans[i].len) != 1) {
			err = ESIM_E_CRYPTO_OPENSSL;
			goto out;
		}
	}
	if (EVP_DigestSignFinal(md, der, &len) != 1) {
		err = ESIM_E_CRYPTO_OPENSSL;
		goto out;
	}
	*der_len = len;
out:
	EVP_MD_CTX_free(md);
	if (err != ESIM_OK)
		ERR_clear_error();
	return err;
}

esim_err crypto_ecdsa_sign_spans(EVP_PKEY *priv, const struct crypto_span *spans, size_t n,
				 uint8_t out[CRYPTO_RAW_SIG_LEN])
{
	uint8_t der[CRYPTO_DER_SIG_MAX];
	size_t der_len = 0;
	esim_err err;

	if (out == NULL)
		return ESIM_E_ARG;
	err = sign_spans_der(priv, spans, n, der, &der_len);
	if (err != ESIM_OK)
		return err;
	err = crypto_ecdsa_der_to_raw(der, der_len, out);
	/* OpenSSL's own output is always well-formed */
	return err == ESIM_OK ? ESIM_OK : ESIM_E_CRYPTO_OPENSSL;
}

esim_err crypto_ecdsa_sign(EVP_PKEY *priv, const uint8_t *data, size_t len,
			   uint8_t out[CRYPTO_RAW_SIG_LEN])
{
	struct crypto_span s = {data, len};
	return crypto_ecdsa_sign_spans(priv, &s, 1, out);
}

esim_err crypto_ecdsa_sign_der(EVP_PKEY *priv, const uint8_t *data, size_t len,
			       uint8_t out[CRYPTO_DER_SIG_MAX], size_t *out_len)
{
	struct crypto_span s = {data, len};
	if (out == NULL || out_len == NULL)
		return ESIM_E_ARG;
	*out_len = 0;
	return sign_spans_der(priv, &s, 1, out, out_len);
}

esim_err crypto_ecdsa_verify_spans(EVP_PKEY *pub, const struct crypto_span *spans, size_t n,
				   const uint8_t *sig, size_t sig_len)
{
	uint8_t der[CRYPTO_DER_SIG_MAX];
	size_t der_len = 0;
	EVP_MD_CTX *md;
	esim_err err;

	if (sig == NULL || (spans == NULL && n > 0))
		return ESIM_E_ARG;
	err = check_key(pub);
	if (err != ESIM_OK)
		return err;
	err = crypto_ecdsa_raw_to_der(sig, sig_len, der, &der_len);
	if (err != ESIM_OK)
		return err;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		return ESIM_E_NOMEM;
	if (EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pub, NULL) != 1) {
		err = ESIM_E_CRYPTO_BAD_KEY;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (spans[i].data == NULL && spans[i].len > 0) {
			err = ESIM_E_ARG;
			goto out;
		}
		if (spans[i].len > 0 &&
		    EVP_DigestVerifyUpdate(md, spans[i].data, spans[i].len) != 1) {
			err = ESIM_E_CRYPTO_OPENSSL;
			goto out;
		}
	}
	/* 1 = valid; 0 = does not verify; < 0 = OpenSSL refused the (well-formed)
	 * signature, e.g. r or s out of range: also "does not verify". */
	err = EVP_DigestVerifyFinal(md, der, der_len) == 1 ? ESIM_OK
							   : ESIM_E_CRYPTO_SIGNATURE_INVALID;
out:
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return err;
}

esim_err crypto_ecdsa_verify(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig,
			     size_t sig_len)
{
	struct crypto_span s = {data, len};
	return crypto_ecdsa_verify_spans(pub, &s, 1, sig, sig_len);
}

esim_err crypto_ecdsa_verify_der_spans(EVP_PKEY *pub, const struct crypto_span *spans, size_t n,
				       const uint8_t *der, size_t der_len)
{
	uint8_t raw[CRYPTO_RAW_SIG_LEN];
	esim_err err;

	if (der == NULL)
		return ESIM_E_ARG;
	/* strict parse first, so that only canonical DER can ever verify */
	err = crypto_ecdsa_der_to_raw(der, der_len, raw);
	if (err != ESIM_OK)
		return err;
	return crypto_ecdsa_verify_spans(pub, spans, n, raw, sizeof raw);
}

esim_err crypto_ecdsa_verify_der(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *der,
				 size_t der_len)
{
	struct crypto_span s = {data, len};
	return crypto_ecdsa_verify_der_spans(pub, &s, 1, der, der_len);
}
