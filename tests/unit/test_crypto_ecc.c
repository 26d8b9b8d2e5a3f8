/*
 * Behaviour of the EC part of the crypto layer beyond the published vectors
 * (test_crypto_kat.c): key loading in every form, the validation of peer
 * points, ECDSA in raw and DER form on both SGP.22 curves, the strict
 * DER <-> raw conversion, and ECDH error paths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "esim/crypto.h"
#include "esim/util.h"
#include "testutil.h"

/* The RFC 6979 A.2.5 P-256 key in three encodings, and its public key. */
static const char sec1_pem[] = "-----BEGIN EC PRIVATE KEY-----\n"
			       "MHcCAQEEIMmvqdhFunUWa1whV2ex1pNOUMPbNuibEnuKYisSD2choAoGCCqGSM49\n"
			       "AwEHoUQDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Z5A/4QCLi8\n"
			       "maQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==\n"
			       "-----END EC PRIVATE KEY-----\n";
static const char pkcs8_der_hex[] =
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420c9afa9d845ba7516"
    "6b5c215767b1d6934e50c3db36e89b127b8a622b120f6721a1440342000460fed4ba255a9d31c961eb74c635"
    "6d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3"
    "c294d4462299";
static const char spki_pem[] = "-----BEGIN PUBLIC KEY-----\n"
			       "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7\n"
			       "Yfps5mliLmDyn7Z5A/4QCLi8maQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==\n"
			       "-----END PUBLIC KEY-----\n";
static const char spki_der_hex[] =
    "3059301306072a8648ce3d020106082a8648ce3d0301070342000460fed4ba255a9d31c961eb74c6356d68c0"
    "49b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4"
    "462299";
static const char point_hex[] =
    "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9"
    "e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
/* RFC 7027 A.1 key A on brainpoolP256r1, PKCS#8 PEM. */
static const char bp_pkcs8_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGIAgEAMBQGByqGSM49AgEGCSskAwMCCAEBBwRtMGsCAQEEIIHbHuEAFQ/y6jON\n"
    "cIJxvjgwDLVCQdeZUPd7BjA5gE8doUQDQgAERBBukT+SvAKhcF2ZU6hBTbleGqpJ\n"
    "6B2ehfkpqOMQC+WKtIRvEcrMtzzknL3RIPWpAKaf0ywnIiP3ie8Q6wib3A==\n"
    "-----END PRIVATE KEY-----\n";
/* A secp384r1 public key and an Ed25519 private key: not SGP.22 keys. */
static const char p384_pem[] = "-----BEGIN PUBLIC KEY-----\n"
			       "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE2KF+Vbji9HvDaf2WFmlc4nPc5OMHgwpl\n"
			       "9aSpqolnyYeu6nrTZWd6E7/WXD/lpmk5vcU1QsUhOlE0XbqCIKuyPHFlmk2FCzu6\n"
			       "/40DW9CKWesyCZyWqQSeTX1DXPZ1cTvI\n"
			       "-----END PUBLIC KEY-----\n";
static const char ed25519_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIFQmNEqOr6RTc07JmZhPLUtLZoBXVNFRz/WHS3OJ4nwf\n"
    "-----END PRIVATE KEY-----\n";

static const crypto_curve curves[] = {CRYPTO_CURVE_P256, CRYPTO_CURVE_BRAINPOOLP256R1};

static void check_rfc6979_key(EVP_PKEY *k, bool priv)
{
	uint8_t pt[65], want[65];
	crypto_curve c = CRYPTO_CURVE_UNKNOWN;
	assert_non_null(k);
	assert_esim(ESIM_OK, crypto_key_curve(k, &c));
	assert_int_equal(c, CRYPTO_CURVE_P256);
	assert_int_equal(crypto_key_has_private(k), priv);
	assert_esim(ESIM_OK, crypto_key_public_point(k, pt));
	assert_esim(ESIM_OK, esim_hex_decode_fixed(point_hex, want, 65));
	assert_memory_equal(pt, want, 65);
}

static void test_load_formats(void **state)
{
	(void)state;
	EVP_PKEY *k = NULL;
	size_t n = 0;
	uint8_t *der;

	assert_esim(ESIM_OK,
		    crypto_key_load_private((const uint8_t *)sec1_pem, strlen(sec1_pem), &k));
	check_rfc6979_key(k, true);
	EVP_PKEY_free(k);

	der = test_unhex(pkcs8_der_hex, &n);
	assert_esim(ESIM_OK, crypto_key_load_private(der, n, &k));
	check_rfc6979_key(k, true);
	EVP_PKEY_free(k);
	free(der);

	assert_esim(ESIM_OK,
		    crypto_key_load_public((const uint8_t *)spki_pem, strlen(spki_pem), &k));
	check_rfc6979_key(k, false);
	EVP_PKEY_free(k);

	der = test_unhex(spki_der_hex, &n);
	assert_esim(ESIM_OK, crypto_key_load_public(der, n, &k));
	check_rfc6979_key(k, false);
	EVP_PKEY_free(k);
	free(der);

	crypto_curve c;
	assert_esim(ESIM_OK, crypto_key_load_private((const uint8_t *)bp_pkcs8_pem,
						     strlen(bp_pkcs8_pem), &k));
	assert_esim(ESIM_OK, crypto_key_curve(k, &c));
	assert_int_equal(c, CRYPTO_CURVE_BRAINPOOLP256R1);
	EVP_PKEY_free(k);
}

/* `openssl ecparam -genkey` output (as the SGP.26 SK_*.pem files): an
 * "EC PARAMETERS" block before the key. Regression: the decoder used to stop
 * at the parameters and report no key. */
static void test_load_with_ec_parameters(void **state)
{
	(void)state;
	static const char params[] = "-----BEGIN EC PARAMETERS-----\n"
				     "BggqhkjOPQMBBw==\n"
				     "-----END EC PARAMETERS-----\n";
	char buf[1024];
	EVP_PKEY *k = NULL, *plain = NULL;
	snprintf(buf, sizeof buf, "%s%s", params, sec1_pem);
	assert_esim(ESIM_OK, crypto_key_load_private((const uint8_t *)buf, strlen(buf), &k));
	assert_esim(ESIM_OK,
		    crypto_key_load_private((const uint8_t *)sec1_pem, strlen(sec1_pem), &plain));
	assert_int_equal(EVP_PKEY_eq(k, plain), 1);
	EVP_PKEY_free(k);
	k = NULL;
	/* parameters alone are not a key */
	assert_esim(ESIM_E_CRYPTO_BAD_KEY,
		    crypto_key_load_private((const uint8_t *)params, strlen(params), &k));
	assert_null(k);
	EVP_PKEY_free(plain);
}

static void test_load_rejects(void **state)
{
	(void)state;
	EVP_PKEY *k = (EVP_PKEY *)1;
	size_t n = 0;

	/* a public key is no private key */
	assert_esim(ESIM_E_CRYPTO_BAD_KEY,
		    crypto_key_load_private((const uint8_t *)spki_pem, strlen(spki_pem), &k));
	assert_null(k);
	/* other curves and other algorithms */
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE,
		    crypto_key_load_public((const uint8_t *)p384_pem, strlen(p384_pem), &k));
	assert_null(k);
	assert_esim(ESIM_E_CRYPTO_BAD_KEY,
		    crypto_key_load_private((const uint8_t *)ed25519_pem, strlen(ed25519_pem), &k));
	/* garbage, truncation, nothing */
	assert_esim(ESIM_E_CRYPTO_BAD_KEY,
		    crypto_key_load_private((const uint8_t *)"hello", 5, &k));
	uint8_t *der = test_unhex(pkcs8_der_hex, &n);
	assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_key_load_private(der, n - 1, &k));
	free(der);
	assert_esim(ESIM_E_ARG, crypto_key_load_public((const uint8_t *)"", 0, &k));
	assert_esim(ESIM_E_ARG, crypto_key_curve(NULL, &(crypto_curve){0}));
}

static void test_load_files(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char priv_path[512], pub_path[512];
	EVP_PKEY *k = NULL;
	FILE *f;

	test_path(priv_path, sizeof priv_path, "%s/priv.pem", dir);
	test_path(pub_path, sizeof pub_path, "%s/pub.pem", dir);
	f = fopen(priv_path, "w");
	assert_non_null(f);
	fputs(sec1_pem, f);
	fclose(f);
	f = fopen(pub_path, "w");
	assert_non_null(f);
	fputs(spki_pem, f);
	fclose(f);

	assert_esim(ESIM_OK, crypto_key_load_private_file(priv_path, &k));
	check_rfc6979_key(k, true);
	EVP_PKEY_free(k);
	assert_esim(ESIM_OK, crypto_key_load_public_file(pub_path, &k));
	check_rfc6979_key(k, false);
	EVP_PKEY_free(k);
	assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_key_load_private_file(pub_path, &k));
	test_path(pub_path, sizeof pub_path, "%s/absent.pem", dir);
	assert_true(crypto_key_load_public_file(pub_path, &k) != ESIM_OK);
	test_rm_rf(dir);
	free(dir);
}

static void test_generate_and_points(void **state)
{
	(void)state;
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *k = NULL, *pub = NULL;
		uint8_t pt[65], pt2[65];
		crypto_curve c;

		assert_esim(ESIM_OK, crypto_key_generate(curves[i], &k));
		assert_esim(ESIM_OK, crypto_key_curve(k, &c));
		assert_int_equal(c, curves[i]);
		assert_true(crypto_key_has_private(k));
		assert_esim(ESIM_OK, crypto_key_public_point(k, pt));
		assert_int_equal(pt[0], 0x04);
		assert_esim(ESIM_OK, crypto_key_from_point(curves[i], pt, 65, &pub));
		assert_false(crypto_key_has_private(pub));
		assert_esim(ESIM_OK, crypto_key_public_point(pub, pt2));
		assert_memory_equal(pt, pt2, 65);
		EVP_PKEY_free(pub);

		/* the same on a copy of k's group */
		EVP_PKEY *k3 = NULL;
		assert_esim(ESIM_OK, crypto_key_from_point_like(k, pt, 65, &pub));
		assert_false(crypto_key_has_private(pub));
		assert_esim(ESIM_OK, crypto_key_public_point(pub, pt2));
		assert_memory_equal(pt, pt2, 65);
		assert_esim(ESIM_OK, crypto_key_generate_like(pub, &k3));
		assert_esim(ESIM_OK, crypto_key_curve(k3, &c));
		assert_int_equal(c, curves[i]);
		assert_true(crypto_key_has_private(k3));
		assert_esim(ESIM_OK, crypto_key_public_point(k3, pt2));
		assert_memory_not_equal(pt, pt2, 65);
		EVP_PKEY_free(k3);
		EVP_PKEY_free(pub);

		/* two generations differ */
		EVP_PKEY *k2 = NULL;
		assert_esim(ESIM_OK, crypto_key_generate(curves[i], &k2));
		assert_esim(ESIM_OK, crypto_key_public_point(k2, pt2));
		assert_memory_not_equal(pt, pt2, 65);
		EVP_PKEY_free(k2);
		EVP_PKEY_free(k);
	}
	EVP_PKEY *k = NULL, *p384 = EVP_EC_gen("secp384r1");
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, crypto_key_generate(CRYPTO_CURVE_UNKNOWN, &k));
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, crypto_key_generate_like(p384, &k));
	assert_null(k);
	EVP_PKEY_free(p384);
	assert_null(crypto_curve_name(CRYPTO_CURVE_UNKNOWN));
	assert_string_equal(crypto_curve_name(CRYPTO_CURVE_P256), "prime256v1");
	assert_string_equal(crypto_curve_name(CRYPTO_CURVE_BRAINPOOLP256R1), "brainpoolP256r1");
}

/* One point import, by curve name (crypto_key_from_point) or on the group
 * of a fresh key of that curve (crypto_key_from_point_like; for
 * CRYPTO_CURVE_UNKNOWN the template is a P-384 key, on no SGP.22 curve). */
static esim_err import_point(bool like, crypto_curve c, const uint8_t *p, size_t n, EVP_PKEY **out)
{
	if (!like)
		return crypto_key_from_point(c, p, n, out);
	EVP_PKEY *tmpl = NULL;
	if (c == CRYPTO_CURVE_UNKNOWN)
		tmpl = EVP_EC_gen("secp384r1");
	else
		assert_esim(ESIM_OK, crypto_key_generate(c, &tmpl));
	assert_non_null(tmpl);
	esim_err e = crypto_key_from_point_like(tmpl, p, n, out);
	EVP_PKEY_free(tmpl);
	return e;
}

static void test_point_validation(void **state)
{
	(void)state;
	for (int like = 0; like < 2; like++) {
		uint8_t pt[66], bad[66];
		EVP_PKEY *k = NULL;

		assert_esim(ESIM_OK, esim_hex_decode_fixed(point_hex, pt, 65));
		pt[65] = 0;
		/* lengths */
		assert_esim(ESIM_E_CRYPTO_BAD_POINT,
			    import_point(like, CRYPTO_CURVE_P256, pt, 64, &k));
		assert_esim(ESIM_E_CRYPTO_BAD_POINT,
			    import_point(like, CRYPTO_CURVE_P256, pt, 66, &k));
		assert_esim(ESIM_E_CRYPTO_BAD_POINT,
			    import_point(like, CRYPTO_CURVE_P256, pt, 0, &k));
		/* compressed / hybrid prefixes, even with a valid X */
		for (uint8_t pfx = 0; pfx < 8; pfx++) {
			if (pfx == 4)
				continue;
			memcpy(bad, pt, 65);
			bad[0] = pfx;
			assert_esim(ESIM_E_CRYPTO_BAD_POINT,
				    import_point(like, CRYPTO_CURVE_P256, bad, 65, &k));
		}
		/* off the curve: every single-bit change of Y */
		for (size_t bit = 0; bit < 256; bit += 17) {
			memcpy(bad, pt, 65);
			bad[33 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_esim(ESIM_E_CRYPTO_BAD_POINT,
				    import_point(like, CRYPTO_CURVE_P256, bad, 65, &k));
		}
		/* (0,0) and coordinates >= p */
		memset(bad, 0, 65);
		bad[0] = 0x04;
		assert_esim(ESIM_E_CRYPTO_BAD_POINT,
			    import_point(like, CRYPTO_CURVE_P256, bad, 65, &k));
		memset(bad + 1, 0xff, 64);
		assert_esim(ESIM_E_CRYPTO_BAD_POINT,
			    import_point(like, CRYPTO_CURVE_P256, bad, 65, &k));
		/* a P-256 point on brainpool, and no curve at all */
		assert_esim(ESIM_E_CRYPTO_BAD_POINT,
			    import_point(like, CRYPTO_CURVE_BRAINPOOLP256R1, pt, 65, &k));
		assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE,
			    import_point(like, CRYPTO_CURVE_UNKNOWN, pt, 65, &k));
		assert_null(k);
		assert_esim(ESIM_OK, import_point(like, CRYPTO_CURVE_P256, pt, 65, &k));
		EVP_PKEY_free(k);
	}
}

/* crypto_key_from_spki: the decoder-free path for DER SubjectPublicKeyInfo.
 * Every key it builds equals what OpenSSL's decoder makes of the same
 * bytes; what it refuses, it refuses with its own error. */
static void test_key_from_spki(void **state)
{
	(void)state;
	static const char *names[] = {"prime256v1", "brainpoolP256r1"};
	EVP_PKEY *k = NULL, *ref = NULL;
	uint8_t *der = NULL, *bad;
	size_t n = 0;

	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *gen = EVP_EC_gen(names[i]);
		unsigned char *spki = NULL;
		int len;
		crypto_curve c;

		assert_non_null(gen);
		len = i2d_PUBKEY(gen, &spki);
		assert_true(len > 0);
		assert_esim(ESIM_OK, crypto_key_from_spki(spki, (size_t)len, &k));
		assert_int_equal(EVP_PKEY_eq(k, gen), 1);
		assert_false(crypto_key_has_private(k));
		assert_esim(ESIM_OK, crypto_key_curve(k, &c));
		assert_int_equal(c, i == 0 ? CRYPTO_CURVE_P256 : CRYPTO_CURVE_BRAINPOOLP256R1);
		EVP_PKEY_free(k);
		/* load_public takes the same path and gives the same key */
		assert_esim(ESIM_OK, crypto_key_load_public(spki, (size_t)len, &k));
		assert_int_equal(EVP_PKEY_eq(k, gen), 1);
		EVP_PKEY_free(k);
		/* trailing byte, truncation: refused here, left to the decoder there */
		bad = malloc((size_t)len + 1);
		assert_non_null(bad);
		memcpy(bad, spki, (size_t)len);
		bad[len] = 0;
		assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_key_from_spki(bad, (size_t)len + 1, &k));
		assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_key_from_spki(bad, (size_t)len - 1, &k));
		/* off the curve: last byte of Y */
		bad[len - 1] ^= 0x01;
		assert_esim(ESIM_E_CRYPTO_BAD_POINT, crypto_key_from_spki(bad, (size_t)len, &k));
		assert_null(k);
		/* load_public keeps the decoder's answer for a bad key */
		assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_key_load_public(bad, (size_t)len, &k));
		free(bad);
		OPENSSL_free(spki);
		EVP_PKEY_free(gen);
	}
	der = test_unhex(spki_der_hex, &n);
	assert_esim(ESIM_OK, crypto_key_from_spki(der, n, &k));
	assert_esim(ESIM_OK,
		    crypto_key_load_public((const uint8_t *)spki_pem, strlen(spki_pem), &ref));
	assert_int_equal(EVP_PKEY_eq(k, ref), 1);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ref);
	free(der);
	/* the point at infinity (its only encoding, 00), a P-384 key, explicit
	 * parameters, and a key that is not EC */
	der = test_unhex("3019301306072A8648CE3D020106082A8648CE3D03010703020000", &n);
	assert_esim(ESIM_E_CRYPTO_BAD_POINT, crypto_key_from_spki(der, n, &k));
	free(der);
	der = test_unhex("3013300B06072A8648CE3D02013000030400000000", &n);
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, crypto_key_from_spki(der, n, &k));
	free(der);
	der = test_unhex("3012300D06092A864886F70D0101010500030100", &n);
	assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_key_from_spki(der, n, &k));
	free(der);
	{
		EVP_PKEY *p384 = EVP_EC_gen("secp384r1");
		unsigned char *spki = NULL;
		int len = i2d_PUBKEY(p384, &spki);
		assert_true(len > 0);
		assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE,
			    crypto_key_from_spki(spki, (size_t)len, &k));
		assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE,
			    crypto_key_load_public(spki, (size_t)len, &k));
		OPENSSL_free(spki);
		EVP_PKEY_free(p384);
	}
	assert_esim(ESIM_E_ARG, crypto_key_from_spki(NULL, 0, &k));
	assert_null(k);
}

/* Partial validation still refuses the point at infinity and points off
 * the curve, for peers given as bytes and as keys. */
static void test_point_infinity(void **state)
{
	(void)state;
	uint8_t inf[CRYPTO_EC_POINT_LEN] = {0x00}, zero[CRYPTO_EC_POINT_LEN] = {0x04};
	uint8_t out[CRYPTO_ECDH_LEN];
	EVP_PKEY *k = NULL, *priv = NULL;

	assert_esim(ESIM_E_CRYPTO_BAD_POINT, crypto_key_from_point(CRYPTO_CURVE_P256, inf, 1, &k));
	assert_esim(ESIM_E_CRYPTO_BAD_POINT,
		    crypto_key_from_point(CRYPTO_CURVE_BRAINPOOLP256R1, inf, 1, &k));
	/* 04 || 0 || 0: the affine (0,0) some libraries use for infinity */
	assert_esim(ESIM_E_CRYPTO_BAD_POINT,
		    crypto_key_from_point(CRYPTO_CURVE_BRAINPOOLP256R1, zero, sizeof zero, &k));
	assert_esim(ESIM_OK, crypto_key_generate(CRYPTO_CURVE_BRAINPOOLP256R1, &priv));
	assert_esim(ESIM_E_CRYPTO_BAD_POINT, crypto_ecdh_point(priv, inf, 1, out));
	assert_esim(ESIM_E_CRYPTO_BAD_POINT, crypto_ecdh_point(priv, zero, sizeof zero, out));
	EVP_PKEY_free(priv);
	assert_null(k);
}

static void test_sign_verify_both_curves(void **state)
{
	(void)state;
	static const uint8_t a[] = "BF23 body", b[] = "5F49 otPK.EUICC";
	const size_t la = sizeof a - 1, lb = sizeof b - 1;
	uint8_t whole[64];
	memcpy(whole, a, la);
	memcpy(whole + la, b, lb);
	struct crypto_span spans[2] = {{a, la}, {b, lb}};

	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *k = NULL, *other = NULL, *pub = NULL, *wrong_curve = NULL;
		uint8_t sig[64], pt[65], der[CRYPTO_DER_SIG_MAX];
		size_t der_len = 0;

		assert_esim(ESIM_OK, crypto_key_generate(curves[i], &k));
		assert_esim(ESIM_OK, crypto_key_generate(curves[i], &other));
		assert_esim(ESIM_OK, crypto_key_generate(curves[1 - i], &wrong_curve));
		assert_esim(ESIM_OK, crypto_key_public_point(k, pt));
		assert_esim(ESIM_OK, crypto_key_from_point(curves[i], pt, 65, &pub));

		/* spans and the concatenation are the same message */
		assert_esim(ESIM_OK, crypto_ecdsa_sign_spans(k, spans, 2, sig));
		assert_esim(ESIM_OK, crypto_ecdsa_verify(pub, whole, la + lb, sig, 64));
		assert_esim(ESIM_OK, crypto_ecdsa_verify(k, whole, la + lb, sig, 64));
		assert_esim(ESIM_OK, crypto_ecdsa_sign(k, whole, la + lb, sig));
		assert_esim(ESIM_OK, crypto_ecdsa_verify_spans(pub, spans, 2, sig, 64));
		/* ... but not with the pieces swapped */
		struct crypto_span swapped[2] = {spans[1], spans[0]};
		assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
			    crypto_ecdsa_verify_spans(pub, swapped, 2, sig, 64));
		/* other key, other curve */
		assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
			    crypto_ecdsa_verify(other, whole, la + lb, sig, 64));
		assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
			    crypto_ecdsa_verify(wrong_curve, whole, la + lb, sig, 64));
		/* raw signatures must be exactly 64 bytes */
		assert_esim(ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT,
			    crypto_ecdsa_verify(pub, whole, la + lb, sig, 63));
		/* r = 0 and s = 0 are well-formed but never valid */
		uint8_t zero[64] = {0};
		assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
			    crypto_ecdsa_verify(pub, whole, la + lb, zero, 64));

		/* DER signing and verifying, and conversion both ways */
		assert_esim(ESIM_OK, crypto_ecdsa_sign_der(k, a, la, der, &der_len));
		assert_esim(ESIM_OK, crypto_ecdsa_verify_der(pub, a, la, der, der_len));
		assert_esim(ESIM_OK, crypto_ecdsa_der_to_raw(der, der_len, sig));
		assert_esim(ESIM_OK, crypto_ecdsa_verify(pub, a, la, sig, 64));
		uint8_t der2[CRYPTO_DER_SIG_MAX];
		size_t der2_len = 0;
		assert_esim(ESIM_OK, crypto_ecdsa_raw_to_der(sig, 64, der2, &der2_len));
		assert_int_equal(der2_len, der_len);
		assert_memory_equal(der2, der, der_len);
		assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
			    crypto_ecdsa_verify_der(pub, b, lb, der, der_len));
		struct crypto_span one = {a, la};
		assert_esim(ESIM_OK, crypto_ecdsa_verify_der_spans(pub, &one, 1, der, der_len));

		/* a public key cannot sign */
		assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_ecdsa_sign(pub, a, la, sig));
		assert_esim(ESIM_E_CRYPTO_BAD_KEY,
			    crypto_ecdsa_sign_der(pub, a, la, der, &der_len));

		EVP_PKEY_free(k);
		EVP_PKEY_free(other);
		EVP_PKEY_free(pub);
		EVP_PKEY_free(wrong_curve);
	}
}

static void der_expect(const char *raw_hex, const char *der_hex)
{
	uint8_t raw[64], back[64], der[CRYPTO_DER_SIG_MAX];
	size_t der_len = 0, wn = 0;
	assert_esim(ESIM_OK, esim_hex_decode_fixed(raw_hex, raw, 64));
	assert_esim(ESIM_OK, crypto_ecdsa_raw_to_der(raw, 64, der, &der_len));
	uint8_t *want = test_unhex(der_hex, &wn);
	assert_int_equal(der_len, wn);
	assert_memory_equal(der, want, wn);
	free(want);
	assert_esim(ESIM_OK, crypto_ecdsa_der_to_raw(der, der_len, back));
	assert_memory_equal(back, raw, 64);
}

#define Z32 "0000000000000000000000000000000000000000000000000000000000000000"
#define F32 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define A32 "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff01"

static void test_raw_der_conversion(void **state)
{
	(void)state;
	/* high bit set: a 00 byte keeps it positive (33 content bytes) */
	der_expect(F32 F32, "3046022100" F32 "022100" F32);
	/* no padding below 0x80 */
	der_expect(A32 A32, "30440220" A32 "0220" A32);
	/* leading zeros go, zero stays one byte */
	der_expect(Z32 "00000000000000000000000000000000000000000000000000000000000000"
		       "80",
		   "300702010002020080");
	der_expect("0000000000000000000000000000000000000000000000000000000000000001" A32,
		   "30250201010220" A32);

	uint8_t raw[64] = {0}, der[CRYPTO_DER_SIG_MAX];
	size_t dl = 0;
	assert_esim(ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT, crypto_ecdsa_raw_to_der(raw, 63, der, &dl));
	assert_esim(ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT, crypto_ecdsa_raw_to_der(raw, 65, der, &dl));
}

static void test_der_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "", /* nothing */
	    "3006020101020101"
	    "00", /* trailing after the SEQUENCE */
	    "3009020101020101"
	    "020101", /* a third INTEGER */
	    "3007020101020101"
	    "00", /* trailing inside the SEQUENCE */
	    "3006020101020101"
	    "",			  /* (valid; checked below) */
	    "300602018002017f",	  /* negative r */
	    "300602017f020180",	  /* negative s */
	    "30070202000102017f", /* r with a redundant 00 */
	    "30070202ff8002017f", /* r with a redundant ff (negative) */
	    "3025022101"
	    "00000000000000000000000000000000000000000000000000000000000000"
	    "020101", /* r of 33 value bytes */
	    "3026022200ff"
	    "000000000000000000000000000000000000000000000000000000000000"
	    "00020101",		    /* r of 34 bytes */
	    "30050200020101",	    /* empty INTEGER */
	    "3003020101",	    /* s missing */
	    "318106020101020101",   /* SET, long length form */
	    "30810602010102010101", /* long length form: non-minimal */
	    "3106020101020101",	    /* SET instead of SEQUENCE */
	    "3006030101020101",	    /* BIT STRING instead of INTEGER */
	    "300602020101020101",   /* r overruns */
	    "3007020101020201",	    /* s truncated */
	};
	uint8_t raw[64];
	EVP_PKEY *k = NULL;
	assert_esim(ESIM_OK, crypto_key_generate(CRYPTO_CURVE_P256, &k));

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t n = 0;
		uint8_t *der = test_unhex(bad[i], &n);
		esim_err want = i == 4 ? ESIM_OK : ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT;
		esim_err got = crypto_ecdsa_der_to_raw(der ? der : (const uint8_t *)"", n, raw);
		if (got != want)
			fail_msg("case %zu (%s): %s", i, bad[i], esim_errname(got));
		if (want != ESIM_OK) {
			assert_esim(ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT,
				    crypto_ecdsa_verify_der(k, (const uint8_t *)"m", 1,
							    der ? der : (const uint8_t *)"", n));
		}
		free(der);
	}
	/* the one well-formed case decodes to r = s = 1 */
	assert_esim(ESIM_OK, crypto_ecdsa_der_to_raw(
				 (const uint8_t *)"\x30\x06\x02\x01\x01\x02\x01\x01", 8, raw));
	assert_int_equal(raw[31], 1);
	assert_int_equal(raw[63], 1);
	EVP_PKEY_free(k);
}

static void test_ecdh_agreement_and_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *a = NULL, *b = NULL, *other = NULL, *pub_b = NULL;
		uint8_t za[32], zb[32], pb[65];

		assert_esim(ESIM_OK, crypto_key_generate(curves[i], &a));
		assert_esim(ESIM_OK, crypto_key_generate(curves[i], &b));
		assert_esim(ESIM_OK, crypto_key_generate(curves[1 - i], &other));
		assert_esim(ESIM_OK, crypto_key_public_point(b, pb));
		assert_esim(ESIM_OK, crypto_key_from_point(curves[i], pb, 65, &pub_b));

		assert_esim(ESIM_OK, crypto_ecdh(a, pub_b, za));
		assert_esim(ESIM_OK, crypto_ecdh(b, a, zb));
		assert_memory_equal(za, zb, 32);
		assert_esim(ESIM_OK, crypto_ecdh_point(a, pb, 65, zb));
		assert_memory_equal(za, zb, 32);

		assert_esim(ESIM_E_CRYPTO_CURVE_MISMATCH, crypto_ecdh(a, other, za));
		assert_esim(ESIM_E_CRYPTO_CURVE_MISMATCH, crypto_ecdh(other, b, za));
		assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_ecdh(pub_b, a, za));
		pb[64] ^= 1;
		assert_esim(ESIM_E_CRYPTO_BAD_POINT, crypto_ecdh_point(a, pb, 65, za));
		assert_esim(ESIM_E_CRYPTO_BAD_POINT, crypto_ecdh_point(a, pb, 64, za));

		EVP_PKEY_free(a);
		EVP_PKEY_free(b);
		EVP_PKEY_free(other);
		EVP_PKEY_free(pub_b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_formats),
	    cmocka_unit_test(test_load_with_ec_parameters),
	    cmocka_unit_test(test_load_rejects),
	    cmocka_unit_test(test_load_files),
	    cmocka_unit_test(test_generate_and_points),
	    cmocka_unit_test(test_point_validation),
	    cmocka_unit_test(test_key_from_spki),
	    cmocka_unit_test(test_point_infinity),
	    cmocka_unit_test(test_sign_verify_both_curves),
	    cmocka_unit_test(test_raw_der_conversion),
	    cmocka_unit_test(test_der_malformed),
	    cmocka_unit_test(test_ecdh_agreement_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
