/*
 * key: EC keys on the two curves SGP.22 allows (NIST P-256 and
 * brainpoolP256r1, SGP.22 section 2.6.5). Loads long-term keys (SM-DP+,
 * eUICC, CI) from PEM or DER, makes the one-time key pairs of the BPP key
 * agreement (otPK/otSK, section 3.1.3), and moves public points in and out
 * of the 65-byte uncompressed form that SGP.22 messages carry
 * (euiccOtpk, smdpOtpk). Every point that arrives from a peer goes through
 * crypto_key_from_point(), which refuses points off the curve: an invalid
 * point would leak the private key through ECDH.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "esim/crypto.h"
#include "esim/der.h"
#include "esim/util.h"

/* Long-term key files are small; this bounds a mistaken path. */
#define KEY_FILE_MAX (64u * 1024u)

const char *crypto_curve_name(crypto_curve c)
{
	switch (c) {
	case CRYPTO_CURVE_P256:
		return "prime256v1";
	case CRYPTO_CURVE_BRAINPOOLP256R1:
		return "brainpoolP256r1";
	default:
		return NULL;
	}
}

esim_err crypto_key_curve(const EVP_PKEY *key, crypto_curve *out)
{
	char group[64];
	size_t glen = 0;

	if (key == NULL || out == NULL)
		return ESIM_E_ARG;
	*out = CRYPTO_CURVE_UNKNOWN;
	if (!EVP_PKEY_is_a(key, "EC"))
		return ESIM_E_CRYPTO_BAD_KEY;
	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
					    &glen))
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE; /* explicit parameters, no name */
	/* OpenSSL may report P-256 under its NIST alias. */
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
	    strcmp(group, "secp256r1") == 0)
		*out = CRYPTO_CURVE_P256;
	else if (strcmp(group, "brainpoolP256r1") == 0)
		*out = CRYPTO_CURVE_BRAINPOOLP256R1;
	else
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE;
	return ESIM_OK;
}

/* PEM files written by `openssl ecparam -genkey` (the SGP.26 SK_*.pem among
 * them) carry an "EC PARAMETERS" block in front of the key. The key names its
 * own curve, so the block adds nothing; OpenSSL's decoder, however, stops at
 * the first block. Step over any such blocks. */
static void skip_ec_parameters(const uint8_t **data, size_t *len)
{
	static const char begin[] = "-----BEGIN EC PARAMETERS-----";
	static const char end[] = "-----END EC PARAMETERS-----";
	const uint8_t *p = *data;
	size_t n = *len;
	for (;;) {
		while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++, n--;
		if (n < sizeof begin - 1 || memcmp(p, begin, sizeof begin - 1) != 0)
			break;
		size_t i = sizeof begin - 1;
		while (i + sizeof end - 1 <= n && memcmp(p + i, end, sizeof end - 1) != 0)
			i++;
		if (i + sizeof end - 1 > n)
			return; /* unterminated: let the decoder report the file */
		p += i + sizeof end - 1;
		n -= i + sizeof end - 1;
		*data = p;
		*len = n;
	}
}

/* Decode with OpenSSL's decoder framework, which autodetects PEM vs DER and
 * the wrapping (PKCS#8, SEC1 "EC PRIVATE KEY", SubjectPublicKeyInfo). */
static esim_err key_decode(const uint8_t *data, size_t len, int selection, EVP_PKEY **out)
{
	EVP_PKEY *pkey = NULL;
	OSSL_DECODER_CTX *dctx;
	const unsigned char *p = data;
	size_t left = len;
	crypto_curve c;
	esim_err err;

	if (data == NULL || len == 0 || out == NULL)
		return ESIM_E_ARG;
	*out = NULL;
	skip_ec_parameters(&p, &left);
	dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, NULL, NULL, "EC", selection, NULL, NULL);
	if (dctx == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	int ok = OSSL_DECODER_from_data(dctx, &p, &left);
	OSSL_DECODER_CTX_free(dctx);
	if (!ok || pkey == NULL) {
		EVP_PKEY_free(pkey);
		return ESIM_E_CRYPTO_BAD_KEY;
	}
	err = crypto_key_curve(pkey, &c);
	if (err == ESIM_OK && selection == EVP_PKEY_KEYPAIR && !crypto_key_has_private(pkey))
		err = ESIM_E_CRYPTO_BAD_KEY;
	if (err != ESIM_OK) {
		EVP_PKEY_free(pkey);
		return err;
	}
	*out = pkey;
	return ESIM_OK;
}

esim_err crypto_key_load_private(const uint8_t *data, size_t len, EVP_PKEY **out)
{
	return key_decode(data, len, EVP_PKEY_KEYPAIR, out);
}

esim_err crypto_key_load_public(const uint8_t *data, size_t len, EVP_PKEY **out)
{
	/* DER SubjectPublicKeyInfo on an SGP.22 curve (the SM-DP+ reads the
	 * eUICC key from the stored certificate this way on every request) is
	 * built directly; OpenSSL's decoder framework costs more than an ECDSA
	 * verification. Anything else, PEM included, and every failure, goes
	 * through the decoder so that what is accepted and the error codes stay
	 * those of the decoder. */
	if (data != NULL && len > 0 && out != NULL && data[0] == 0x30) {
		esim_err err = crypto_key_from_spki(data, len, out);
		if (err == ESIM_OK || err == ESIM_E_NOMEM)
			return err;
	}
	return key_decode(data, len, EVP_PKEY_PUBLIC_KEY, out);
}

esim_err crypto_key_load_private_file(const char *path, EVP_PKEY **out)
{
	uint8_t *data = NULL;
	size_t len = 0;
	esim_err err;

	if (path == NULL || out == NULL)
		return ESIM_E_ARG;
	err = esim_read_file(path, KEY_FILE_MAX, &data, &len);
	if (err != ESIM_OK)
		return err;
	err = crypto_key_load_private(data, len, out);
	esim_wipe(data, len);
	free(data);
	return err;
}

esim_err crypto_key_load_public_file(const char *path, EVP_PKEY **out)
{
	uint8_t *data = NULL;
	size_t len = 0;
	esim_err err;

	if (path == NULL || out == NULL)
		return ESIM_E_ARG;
	err = esim_read_file(path, KEY_FILE_MAX, &data, &len);
	if (err != ESIM_OK)
		return err;
	err = crypto_key_load_public(data, len, out);
	free(data);
	return err;
}

esim_err crypto_key_generate(crypto_curve curve, EVP_PKEY **out)
{
	const char *name = crypto_curve_name(curve);
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	if (out == NULL)
		return ESIM_E_ARG;
	*out = NULL;
	if (name == NULL)
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_group_name(ctx, name) <= 0) {
		EVP_PKEY_CTX_free(ctx);
		return ESIM_E_CRYPTO_OPENSSL;
	}
	int rc = EVP_PKEY_generate(ctx, &pkey);
	EVP_PKEY_CTX_free(ctx);
	if (rc <= 0) {
		EVP_PKEY_free(pkey);
		/* keygen only fails for want of entropy once the group is set */
		return ESIM_E_CRYPTO_RANDOM;
	}
	*out = pkey;
	return ESIM_OK;
}

/* Generating from a template key's parameters copies its EC_GROUP; naming
 * the curve (crypto_key_generate) has OpenSSL build the group from its
 * tables first, which costs about as much again on P-256. */
esim_err crypto_key_generate_like(EVP_PKEY *like, EVP_PKEY **out)
{
	crypto_curve curve;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	esim_err err;

	if (out == NULL)
		return ESIM_E_ARG;
	*out = NULL;
	err = crypto_key_curve(like, &curve);
	if (err != ESIM_OK)
		return err;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, like, NULL);
	if (ctx == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	if (EVP_PKEY_keygen_init(ctx) <= 0) {
		EVP_PKEY_CTX_free(ctx);
		return ESIM_E_CRYPTO_OPENSSL;
	}
	int rc = EVP_PKEY_generate(ctx, &pkey);
	EVP_PKEY_CTX_free(ctx);
	if (rc <= 0) {
		EVP_PKEY_free(pkey);
		return ESIM_E_CRYPTO_RANDOM;
	}
	*out = pkey;
	return ESIM_OK;
}

esim_err crypto_key_public_point(const EVP_PKEY *key, uint8_t out[CRYPTO_EC_POINT_LEN])
{
	uint8_t pt[CRYPTO_EC_POINT_LEN + 8];
	size_t n = 0;
	crypto_curve c;
	esim_err err;

	if (key == NULL || out == NULL)
		return ESIM_E_ARG;
	err = crypto_key_curve(key, &c);
	if (err != ESIM_OK)
		return err;
	/* OSSL_PKEY_PARAM_PUB_KEY is always the uncompressed octet string for EC
	 * keys, whatever point-format the key was loaded with. */
	if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n))
		return ESIM_E_CRYPTO_BAD_KEY;
	if (n != CRYPTO_EC_POINT_LEN || pt[0] != 0x04)
		return ESIM_E_CRYPTO_BAD_POINT;
	memcpy(out, pt, CRYPTO_EC_POINT_LEN);
	return ESIM_OK;
}

/* An EC public key on curve from an encoded point (uncompressed 04||X||Y or
 * compressed 02/03||X), through EVP_PKEY_fromdata: no decoder, no provider
 * search beyond the EC key manager.
 *
 * Validation is SP 800-56A 5.6.2.3.4 partial public-key validation: fromdata
 * hands the octets to EC_POINT_oct2point, which refuses coordinates outside
 * the field and points not on the curve, and none of the accepted encodings
 * can name the point at infinity (its only octet form is the single byte 00).
 * The full validation's remaining step, n * Q == infinity, proves Q is in the
 * prime-order subgroup; P-256 and brainpoolP256r1 both have cofactor 1, so
 * every point on the curve other than infinity already is, and that extra
 * scalar multiplication (the dearest part, on brainpool most of all) buys
 * nothing. */
static esim_err key_from_octets(crypto_curve curve, const uint8_t *point, size_t len,
				EVP_PKEY **out)
{
	const char *name = crypto_curve_name(curve);
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	esim_err err = ESIM_OK;

	if (name == NULL)
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
	params[2] = OSSL_PARAM_construct_end();

	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	if (EVP_PKEY_fromdata_init(ctx) <= 0)
		err = ESIM_E_CRYPTO_OPENSSL;
	/* a failure here is the peer's bytes, not OpenSSL */
	else if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 || pkey == NULL)
		err = ESIM_E_CRYPTO_BAD_POINT;
	EVP_PKEY_CTX_free(ctx);
	if (err != ESIM_OK) {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return err;
	}
	*out = pkey;
	return ESIM_OK;
}

esim_err crypto_key_from_point(crypto_curve curve, const uint8_t *point, size_t len, EVP_PKEY **out)
{
	if (out == NULL || (point == NULL && len > 0))
		return ESIM_E_ARG;
	*out = NULL;
	if (crypto_curve_name(curve) == NULL)
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE;
	/* Only the uncompressed form: SGP.22 peers send nothing else, and the
	 * fixed length keeps hybrid/compressed parsing out of the attack surface. */
	if (len != CRYPTO_EC_POINT_LEN || point[0] != 0x04)
		return ESIM_E_CRYPTO_BAD_POINT;
	return key_from_octets(curve, point, len, out);
}

/* The same import on a copy of like's group (see crypto_key_generate_like):
 * EVP_PKEY_set1_encoded_public_key hands the octets to EC_POINT_oct2point
 * as fromdata does, so the validation is the same. */
esim_err crypto_key_from_point_like(const EVP_PKEY *like, const uint8_t *point, size_t len,
				    EVP_PKEY **out)
{
	crypto_curve curve;
	esim_err err;

	if (out == NULL || (point == NULL && len > 0))
		return ESIM_E_ARG;
	*out = NULL;
	err = crypto_key_curve(like, &curve);
	if (err != ESIM_OK)
		return err;
	if (len != CRYPTO_EC_POINT_LEN || point[0] != 0x04)
		return ESIM_E_CRYPTO_BAD_POINT;
	EVP_PKEY *pkey = EVP_PKEY_new();
	if (pkey == NULL)
		return ESIM_E_NOMEM;
	if (EVP_PKEY_copy_parameters(pkey, like) != 1)
		err = ESIM_E_CRYPTO_OPENSSL;
	/* a failure here is the peer's bytes, not OpenSSL */
	else if (EVP_PKEY_set1_encoded_public_key(pkey, point, len) != 1)
		err = ESIM_E_CRYPTO_BAD_POINT;
	if (err != ESIM_OK) {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return err;
	}
	*out = pkey;
	return ESIM_OK;
}

/* id-ecPublicKey and the two named curves, as OID contents. */
static const uint8_t oid_ec_public_key[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01};
static const uint8_t oid_prime256v1[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const uint8_t oid_brainpoolp256r1[] = {0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07};

static bool span_is(der_span s, const uint8_t *p, size_t n)
{
	return s.len == n && memcmp(s.p, p, n) == 0;
}

/* The curve and the encoded point of a DER SubjectPublicKeyInfo (RFC 5480),
 * which must fill der exactly. ESIM_E_CRYPTO_BAD_KEY when malformed or not
 * an EC key, ESIM_E_CRYPTO_UNSUPPORTED_CURVE for any other curve. */
static esim_err spki_curve(const uint8_t *der, size_t len, crypto_curve *curve, der_span *point)
{
	der_cursor in, spki, alg;
	der_span alg_oid, curve_oid;
	der_bits bits;
	uint32_t tag;

	*curve = CRYPTO_CURVE_UNKNOWN;
	der_cursor_init(&in, der, len);
	if (der_get_sequence(&in, DER_TAG_DEFAULT, &spki) != ESIM_OK ||
	    der_expect_end(&in) != ESIM_OK ||
	    der_get_sequence(&spki, DER_TAG_DEFAULT, &alg) != ESIM_OK ||
	    der_get_bit_string(&spki, DER_TAG_DEFAULT, &bits) != ESIM_OK ||
	    der_expect_end(&spki) != ESIM_OK || bits.unused != 0 ||
	    der_get_oid(&alg, DER_TAG_DEFAULT, &alg_oid) != ESIM_OK)
		return ESIM_E_CRYPTO_BAD_KEY;
	if (!span_is(alg_oid, oid_ec_public_key, sizeof oid_ec_public_key))
		return ESIM_E_CRYPTO_BAD_KEY;
	/* ECParameters: namedCurve, or explicit parameters / implicitCA, which
	 * no SGP.22 key uses. */
	if (der_peek_tag(&alg, &tag) != ESIM_OK)
		return ESIM_E_CRYPTO_BAD_KEY;
	if (tag != DER_TAG_OID) {
		der_element e;
		if (der_get_any(&alg, &e) != ESIM_OK || der_expect_end(&alg) != ESIM_OK)
			return ESIM_E_CRYPTO_BAD_KEY;
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE;
	}
	if (der_get_oid(&alg, DER_TAG_DEFAULT, &curve_oid) != ESIM_OK ||
	    der_expect_end(&alg) != ESIM_OK)
		return ESIM_E_CRYPTO_BAD_KEY;
	if (span_is(curve_oid, oid_prime256v1, sizeof oid_prime256v1))
		*curve = CRYPTO_CURVE_P256;
	else if (span_is(curve_oid, oid_brainpoolp256r1, sizeof oid_brainpoolp256r1))
		*curve = CRYPTO_CURVE_BRAINPOOLP256R1;
	else
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE;
	*point = bits.bytes;
	return ESIM_OK;
}

esim_err crypto_key_from_spki(const uint8_t *der, size_t len, EVP_PKEY **out)
{
	crypto_curve curve;
	der_span point;
	esim_err err;

	if (out == NULL || der == NULL)
		return ESIM_E_ARG;
	*out = NULL;
	err = spki_curve(der, len, &curve, &point);
	if (err != ESIM_OK)
		return err;
	/* X.509 allows the compressed form too (RFC 5480 section 2.2); the
	 * lengths rule out hybrid forms and the infinity octet. */
	if (!(point.len == CRYPTO_EC_POINT_LEN && point.p[0] == 0x04) &&
	    !(point.len == 33 && (point.p[0] == 0x02 || point.p[0] == 0x03)))
		return ESIM_E_CRYPTO_BAD_POINT;
	return key_from_octets(curve, point.p, point.len, out);
}

bool crypto_key_has_private(const EVP_PKEY *key)
{
	BIGNUM *d = NULL;

	if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
		return false;
	if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d))
		return false;
	BN_clear_free(d);
	return true;
}
