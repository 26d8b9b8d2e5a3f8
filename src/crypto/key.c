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
#include <openssl/evp.h>
#include <openssl/params.h>

#include "esim/crypto.h"
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

esim_err crypto_key_from_point(crypto_curve curve, const uint8_t *point, size_t len, EVP_PKEY **out)
{
	const char *name = crypto_curve_name(curve);
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	EVP_PKEY *pkey = NULL;
	esim_err err = ESIM_OK;

	if (out == NULL || (point == NULL && len > 0))
		return ESIM_E_ARG;
	*out = NULL;
	if (name == NULL)
		return ESIM_E_CRYPTO_UNSUPPORTED_CURVE;
	/* Only the uncompressed form: SGP.22 peers send nothing else, and the
	 * fixed length keeps hybrid/compressed parsing out of the attack surface. */
	if (len != CRYPTO_EC_POINT_LEN || point[0] != 0x04)
		return ESIM_E_CRYPTO_BAD_POINT;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
	params[2] = OSSL_PARAM_construct_end();

	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	if (EVP_PKEY_fromdata_init(ctx) <= 0) {
		err = ESIM_E_CRYPTO_OPENSSL;
		goto out;
	}
	/* fromdata already refuses most invalid points; a failure here is the
	 * peer's bytes, not OpenSSL. */
	if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 || pkey == NULL) {
		err = ESIM_E_CRYPTO_BAD_POINT;
		goto out;
	}
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (chk == NULL) {
		err = ESIM_E_CRYPTO_OPENSSL;
		goto out;
	}
	/* Full public-key validation (SP 800-56A 5.6.2.3.3): not infinity,
	 * coordinates in range, on the curve, order n. */
	if (EVP_PKEY_public_check(chk) != 1) {
		err = ESIM_E_CRYPTO_BAD_POINT;
		goto out;
	}
	*out = pkey;
	pkey = NULL;
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return err;
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
