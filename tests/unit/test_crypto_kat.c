/*
 * Known-answer tests for the crypto layer, from published vectors only.
 * Each group names its source; every value was also re-checked with the
 * openssl command line (openssl kdf / mac / dgst -verify) or Python's
 * cryptography package before it was written here.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/crypto.h"
#include "esim/util.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------- */

static void unhex_fixed(const char *hex, uint8_t *out, size_t n)
{
	if (esim_hex_decode_fixed(hex, out, n) != ESIM_OK)
		fail_msg("bad fixed hex in test: %s", hex);
}

static void assert_hex(const uint8_t *got, size_t n, const char *want_hex)
{
	size_t wn = 0;
	uint8_t *want = test_unhex(want_hex, &wn);
	if (wn != n || memcmp(got, want, n) != 0) {
		char *g = esim_hex_encode(got, n, false);
		print_error("got  %s\nwant %s\n", g ? g : "?", want_hex);
		free(g);
		free(want);
		fail();
	}
	free(want);
}

/* A public key from affine coordinates (hex), through the validating import. */
static EVP_PKEY *pub_xy(crypto_curve c, const char *x, const char *y)
{
	uint8_t pt[CRYPTO_EC_POINT_LEN];
	EVP_PKEY *k = NULL;
	pt[0] = 0x04;
	unhex_fixed(x, pt + 1, 32);
	unhex_fixed(y, pt + 33, 32);
	assert_esim(ESIM_OK, crypto_key_from_point(c, pt, sizeof pt, &k));
	return k;
}

/* A private key from the scalar and its point, as unencrypted PKCS#8 DER. */
static EVP_PKEY *priv_dxy(crypto_curve c, const char *d, const char *x, const char *y)
{
	/* PrivateKeyInfo { 0, ecPublicKey + named curve, ECPrivateKey { 1, d, [1] point } } */
	static const char p256[] = "308187020100301306072a8648ce3d020106082a8648ce3d030107"
				   "046d306b0201010420";
	static const char bp256[] = "308188020100301406072a8648ce3d020106092b2403030208010107"
				    "046d306b0201010420";
	char hex[600];
	size_t n = 0;
	EVP_PKEY *k = NULL;
	snprintf(hex, sizeof hex, "%s%sa14403420004%s%s", c == CRYPTO_CURVE_P256 ? p256 : bp256, d,
		 x, y);
	uint8_t *der = test_unhex(hex, &n);
	assert_esim(ESIM_OK, crypto_key_load_private(der, n, &k));
	free(der);
	return k;
}

/* ---- ECDSA P-256 / SHA-256: RFC 6979 appendix A.2.5 ----------------------------- */

#define RFC6979_X  "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"
#define RFC6979_UX "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
#define RFC6979_UY "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"

static const struct {
	const char *msg;
	const char *r, *s;
} rfc6979[] = {
    {"sample", "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
     "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"},
    {"test", "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
     "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"},
};

static void test_rfc6979_verify(void **state)
{
	(void)state;
	EVP_PKEY *pub = pub_xy(CRYPTO_CURVE_P256, RFC6979_UX, RFC6979_UY);

	for (size_t i = 0; i < sizeof rfc6979 / sizeof rfc6979[0]; i++) {
		const char *msg = rfc6979[i].msg;
		size_t mlen = strlen(msg);
		uint8_t sig[64], der[CRYPTO_DER_SIG_MAX], m[16];
		size_t der_len = 0;

		unhex_fixed(rfc6979[i].r, sig, 32);
		unhex_fixed(rfc6979[i].s, sig + 32, 32);
		assert_esim(ESIM_OK, crypto_ecdsa_verify(pub, (const uint8_t *)msg, mlen, sig, 64));

		/* the same signature in DER form */
		assert_esim(ESIM_OK, crypto_ecdsa_raw_to_der(sig, 64, der, &der_len));
		assert_esim(ESIM_OK,
			    crypto_ecdsa_verify_der(pub, (const uint8_t *)msg, mlen, der, der_len));

		/* one bit flipped in the message */
		memcpy(m, msg, mlen);
		m[0] ^= 0x01;
		assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
			    crypto_ecdsa_verify(pub, m, mlen, sig, 64));
		/* ... in r, and in s */
		for (size_t bit = 0; bit < 2; bit++) {
			uint8_t bad[64];
			memcpy(bad, sig, 64);
			bad[bit ? 63 : 0] ^= 0x01;
			assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
				    crypto_ecdsa_verify(pub, (const uint8_t *)msg, mlen, bad, 64));
		}
		/* "sample" as two spans gives the same digest */
		struct crypto_span sp[3] = {
		    {(const uint8_t *)msg, 2}, {NULL, 0}, {(const uint8_t *)msg + 2, mlen - 2}};
		assert_esim(ESIM_OK, crypto_ecdsa_verify_spans(pub, sp, 3, sig, 64));
	}
	/* the signature of "sample" does not verify "test" */
	uint8_t sig[64];
	unhex_fixed(rfc6979[0].r, sig, 32);
	unhex_fixed(rfc6979[0].s, sig + 32, 32);
	assert_esim(ESIM_E_CRYPTO_SIGNATURE_INVALID,
		    crypto_ecdsa_verify(pub, (const uint8_t *)"test", 4, sig, 64));
	EVP_PKEY_free(pub);
}

/* The RFC 6979 private key signs (randomised k) and its own public point is
 * the published U. */
static void test_rfc6979_key_sign(void **state)
{
	(void)state;
	EVP_PKEY *priv = priv_dxy(CRYPTO_CURVE_P256, RFC6979_X, RFC6979_UX, RFC6979_UY);
	EVP_PKEY *pub = pub_xy(CRYPTO_CURVE_P256, RFC6979_UX, RFC6979_UY);
	uint8_t pt[65], sig[64];

	assert_esim(ESIM_OK, crypto_key_public_point(priv, pt));
	assert_hex(pt, 65, "04" RFC6979_UX RFC6979_UY);
	assert_esim(ESIM_OK, crypto_ecdsa_sign(priv, (const uint8_t *)"sample", 6, sig));
	assert_esim(ESIM_OK, crypto_ecdsa_verify(pub, (const uint8_t *)"sample", 6, sig, 64));
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
}

/* ---- ECDH P-256: RFC 5903 section 8.1 (256-bit random ECP group) ------------------ */

#define RFC5903_I    "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"
#define RFC5903_GIX  "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
#define RFC5903_GIY  "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3"
#define RFC5903_R    "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53"
#define RFC5903_GRX  "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
#define RFC5903_GRY  "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB"
#define RFC5903_GIRX "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE"

static void test_rfc5903_ecdh(void **state)
{
	(void)state;
	EVP_PKEY *i = priv_dxy(CRYPTO_CURVE_P256, RFC5903_I, RFC5903_GIX, RFC5903_GIY);
	EVP_PKEY *r = priv_dxy(CRYPTO_CURVE_P256, RFC5903_R, RFC5903_GRX, RFC5903_GRY);
	EVP_PKEY *gi = pub_xy(CRYPTO_CURVE_P256, RFC5903_GIX, RFC5903_GIY);
	EVP_PKEY *gr = pub_xy(CRYPTO_CURVE_P256, RFC5903_GRX, RFC5903_GRY);
	uint8_t z[32], pt[65];

	assert_esim(ESIM_OK, crypto_ecdh(i, gr, z));
	assert_hex(z, 32, RFC5903_GIRX);
	memset(z, 0, sizeof z);
	assert_esim(ESIM_OK, crypto_ecdh(r, gi, z));
	assert_hex(z, 32, RFC5903_GIRX);
	/* from the 65-byte point, as SGP.22 carries otPK */
	unhex_fixed("04" RFC5903_GRX RFC5903_GRY, pt, 65);
	memset(z, 0, sizeof z);
	assert_esim(ESIM_OK, crypto_ecdh_point(i, pt, 65, z));
	assert_hex(z, 32, RFC5903_GIRX);
	EVP_PKEY_free(i);
	EVP_PKEY_free(r);
	EVP_PKEY_free(gi);
	EVP_PKEY_free(gr);
}

/* ---- ECDH brainpoolP256r1: RFC 7027 appendix A.1 ---------------------------------- */

#define RFC7027_DA "81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D"
#define RFC7027_XA "44106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5"
#define RFC7027_YA "8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC"
#define RFC7027_DB "55E40BC41E37E3E2AD25C3C6654511FFA8474A91A0032087593852D3E7D76BD3"
#define RFC7027_XB "8D2D688C6CF93E1160AD04CC4429117DC2C41825E1E9FCA0ADDD34E6F1B39F7B"
#define RFC7027_YB "990C57520812BE512641E47034832106BC7D3E8DD0E4C7F1136D7006547CEC6A"
#define RFC7027_XZ "89AFC39D41D3B327814B80940B042590F96556EC91E6AE7939BCE31F3A18BF2B"

static void test_rfc7027_ecdh(void **state)
{
	(void)state;
	const crypto_curve bp = CRYPTO_CURVE_BRAINPOOLP256R1;
	EVP_PKEY *a = priv_dxy(bp, RFC7027_DA, RFC7027_XA, RFC7027_YA);
	EVP_PKEY *b = priv_dxy(bp, RFC7027_DB, RFC7027_XB, RFC7027_YB);
	uint8_t pa[65], pb[65], z[32];
	crypto_curve c;

	assert_esim(ESIM_OK, crypto_key_curve(a, &c));
	assert_int_equal(c, bp);
	unhex_fixed("04" RFC7027_XA RFC7027_YA, pa, 65);
	unhex_fixed("04" RFC7027_XB RFC7027_YB, pb, 65);
	assert_esim(ESIM_OK, crypto_ecdh_point(a, pb, 65, z));
	assert_hex(z, 32, RFC7027_XZ);
	memset(z, 0, sizeof z);
	assert_esim(ESIM_OK, crypto_ecdh_point(b, pa, 65, z));
	assert_hex(z, 32, RFC7027_XZ);
	/* a brainpool point is not a P-256 point */
	EVP_PKEY *wrong = NULL;
	assert_esim(ESIM_E_CRYPTO_BAD_POINT,
		    crypto_key_from_point(CRYPTO_CURVE_P256, pb, 65, &wrong));
	assert_null(wrong);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

/* ---- AES-CMAC: RFC 4493 section 4, examples 1-4 ------------------------------------ */

static void test_rfc4493_cmac(void **state)
{
	(void)state;
	static const char msg[] = "6bc1bee22e409f96e93d7e117393172a"
				  "ae2d8a571e03ac9c9eb76fac45af8e51"
				  "30c81c46a35ce411e5fbc1191a0a52ef"
				  "f69f2445df4f9b17ad2b417be66c3710";
	static const struct {
		size_t len;
		const char *mac;
	} ex[] = {
	    {0, "bb1d6929e95937287fa37d129b756746"},
	    {16, "070a16b46b4d4144f79bdd9dd04a287c"},
	    {40, "dfa66747de9ae63030ca32611497c827"},
	    {64, "51f0bebf7e3b9d92fc49741779363cfe"},
	};
	uint8_t key[16], m[64], mac[16];

	unhex_fixed("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
	unhex_fixed(msg, m, 64);
	for (size_t i = 0; i < 4; i++) {
		assert_esim(ESIM_OK, crypto_aes_cmac(key, ex[i].len ? m : NULL, ex[i].len, mac));
		assert_hex(mac, 16, ex[i].mac);
	}
}

/* ---- ANSI X9.63 KDF, SHA-256: NIST CAVS ansx963_2001.rsp ---------------------------- */

static void test_cavs_x963(void **state)
{
	(void)state;
	uint8_t z[24], info[16], out[128];

	/* [SHA-256] [shared secret length = 192] [SharedInfo length = 0]
	 * [key data length = 128] COUNT = 0 */
	unhex_fixed("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08", z, 24);
	assert_esim(ESIM_OK, crypto_x963_kdf(z, 24, NULL, 0, out, 16));
	assert_hex(out, 16, "443024c3dae66b95e6f5670601558f71");

	/* [SHA-256] [shared secret length = 192] [SharedInfo length = 128]
	 * [key data length = 1024] COUNT = 0 */
	unhex_fixed("22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d", z, 24);
	unhex_fixed("75eef81aa3041e33b80971203d2c0c52", info, 16);
	assert_esim(ESIM_OK, crypto_x963_kdf(z, 24, info, 16, out, 128));
	assert_hex(out, 128,
		   "c498af77161cc59f2962b9a713e2b215152d139766ce34a776df11866a69bf2e"
		   "52a13d9c7c6fc878c50c5ea0bc7b00e0da2447cfd874f6cf92f30d0097111485"
		   "500c90c3af8b487872d04685d14c8d1dc8d7fa08beb0ce0ababc11f0bd496269"
		   "142d43525a78e5bc79a17f59676a5706dc54d54d4d1f0bd7e386128ec26afc21");
	/* a prefix of the output is the shorter derivation (counter mode) */
	uint8_t short_out[40];
	assert_esim(ESIM_OK, crypto_x963_kdf(z, 24, info, 16, short_out, sizeof short_out));
	assert_memory_equal(short_out, out, sizeof short_out);
}

/* ---- SGP.22 BPP session keys and SCP03t: digest section 7.7 -------------------------
 * (pySim tests/unittests/test_esim_bsp.py vectors, re-derived independently.) */

#define HOST_ID "8080808080808080"

static void test_sgp22_vector_a(void **state)
{
	(void)state;
	uint8_t shs[32], host[8], eid[16];
	struct crypto_bpp_keys k;

	unhex_fixed("8902dca391bbb22570fe60c176076246f568b1941265dff1d729e63039658089", shs, 32);
	unhex_fixed(HOST_ID, host, 8);
	unhex_fixed("89049032123451234512345678901335", eid, 16);
	assert_esim(ESIM_OK, crypto_bpp_derive_keys(shs, 32, 0x88, 0x10, host, 8, eid, &k));
	assert_hex(k.s_enc, 16, "d782d575b22a38334556a3d9a1e2ae6b");
	assert_hex(k.s_mac, 16, "a35addc192ae8f934e2932116c7e89e7");
	assert_hex(k.mcv, 16, "734bc93ddb10c71c5ad13d420dc08b5b");
	crypto_bpp_keys_wipe(&k);
	static const uint8_t zero[sizeof k] = {0};
	assert_memory_equal(&k, zero, sizeof k);
}

#define VB_SHS	      "c9a993dd4879a8f7161f2085410edd4f9652f1df37be097ba96ba2ca6be528fe"
#define VB_EID	      "89049032123451234512345678901235"
#define VB_SEG1_PLAIN "bf2400"
#define VB_SEG1	      "8718f6fe031e4b9cfe87c8e1e62f3fde85c49412d7722a6a2d89"
/* StoreMetadata: iccid, "GSMA_TEST", "GSMA_TEST_PROFILE", profileClass 0 */
#define VB_SEG2_PLAIN                                                                              \
	"bf252d5a0a980010325476981032149109"                                                       \
	"47534d415f54455354"                                                                       \
	"9211"                                                                                     \
	"47534d415f544553545f50524f46494c45"                                                       \
	"950100"
#define VB_SEG2 "8838" VB_SEG2_PLAIN "8a62cc9adbb5ccbc"
#define VB_SEG3_PLAIN                                                                              \
	"bf2636"                                                                                   \
	"8010000102030405060708090a0b0c0d0e0f"                                                     \
	"8110010102030405060708090a0b0c0d0e0f"                                                     \
	"8210020102030405060708090a0b0c0d0e0f"
#define VB_SEG3                                                                                    \
	"8748a14c800a001992351cd46ad2945654674369701d82b7b46567652bc8fbed234939fc57fba748015525"   \
	"fd6c651e9d3d1330652d42a0cfad950e912122af4ec5362d3c0bc535729c40"

static void vb_keys(struct crypto_bpp_keys *k)
{
	uint8_t shs[32], host[8], eid[16];
	unhex_fixed(VB_SHS, shs, 32);
	unhex_fixed(HOST_ID, host, 8);
	unhex_fixed(VB_EID, eid, 16);
	assert_esim(ESIM_OK, crypto_bpp_derive_keys(shs, 32, CRYPTO_BPP_KEY_TYPE_AES,
						    CRYPTO_BPP_KEY_LEN_16, host, 8, eid, k));
}

static void test_sgp22_vector_b_keys(void **state)
{
	(void)state;
	uint8_t host[8], eid[16], info[CRYPTO_BPP_SHARED_INFO_MAX];
	size_t info_len = 0;
	struct crypto_bpp_keys k;

	unhex_fixed(HOST_ID, host, 8);
	unhex_fixed(VB_EID, eid, 16);
	assert_esim(ESIM_OK, crypto_bpp_shared_info(0x88, 0x10, host, 8, eid, info, &info_len));
	assert_hex(info, info_len, "88100880808080808080801089049032123451234512345678901235");

	vb_keys(&k);
	assert_hex(k.mcv, 16, "406d507b448a699e7a36a38494debbde");
	assert_hex(k.s_enc, 16, "472f5bfadd97f21d34f3ce9b51b92751");
	assert_hex(k.s_mac, 16, "9ec07f5b36a13e12a991d66e294e6242");
	crypto_bpp_keys_wipe(&k);
}

/* Protect one segment and compare the whole TLV. */
static void protect_expect(crypto_scp03t *st, uint8_t tag, const char *plain_hex,
			   const char *tlv_hex)
{
	size_t n = 0;
	uint8_t *p = test_unhex(plain_hex, &n);
	esim_buf out = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_scp03t_protect(st, tag, p, n, &out));
	assert_hex(out.data, out.len, tlv_hex);
	esim_buf_free(&out);
	free(p);
}

/* The SM-DP+ side: segments 1-3 exactly, then the ReplaceSessionKeys switch. */
static void test_sgp22_vector_b_protect(void **state)
{
	(void)state;
	struct crypto_bpp_keys k;
	crypto_scp03t st;

	vb_keys(&k);
	crypto_scp03t_init(&st, &k);
	assert_int_equal(st.n, 1);

	protect_expect(&st, 0x87, VB_SEG1_PLAIN, VB_SEG1);
	assert_hex(st.mcv, 16, "9412d7722a6a2d8930d8ba424f048693");
	assert_int_equal(st.n, 2);

	protect_expect(&st, 0x88, VB_SEG2_PLAIN, VB_SEG2);
	assert_hex(st.mcv, 16, "8a62cc9adbb5ccbc281d71d08802aa82");
	assert_int_equal(st.n, 3); /* MAC-only advances the counter too */

	protect_expect(&st, 0x87, VB_SEG3_PLAIN, VB_SEG3);
	assert_int_equal(st.n, 4);

	/* ReplaceSessionKeys: PPK-ENC 01 01 02.., PPK-MAC 02 01 02.., MCV 00 01 02.. */
	uint8_t enc[16], mac[16], mcv[16];
	unhex_fixed("010102030405060708090a0b0c0d0e0f", enc, 16);
	unhex_fixed("020102030405060708090a0b0c0d0e0f", mac, 16);
	unhex_fixed("000102030405060708090a0b0c0d0e0f", mcv, 16);
	crypto_scp03t_replace_keys(&st, enc, mac, mcv);
	assert_int_equal(st.n, 1);

	/* Segment 4: a 1007-byte profile chunk fills one 1020-byte 86 TLV. Only the
	 * first 7 plaintext bytes are published, so only the structure is checked. */
	uint8_t plain[1007] = {0xa0, 0x48, 0x80, 0x01, 0x02, 0x81, 0x01};
	esim_buf out = ESIM_BUF_INIT;
	assert_int_equal(crypto_scp03t_max_plain(0x86), sizeof plain);
	assert_int_equal(crypto_scp03t_segment_len(0x86, sizeof plain), 1020);
	assert_esim(ESIM_OK, crypto_scp03t_protect(&st, 0x86, plain, sizeof plain, &out));
	assert_int_equal(out.len, 1020);
	assert_hex(out.data, 4, "868203f8");
	assert_int_equal(st.n, 2);
	esim_buf_free(&out);

	crypto_scp03t_clear(&st);
	crypto_bpp_keys_wipe(&k);
}

/* Unprotect a whole TLV (hex) and compare the plaintext. */
static void unprotect_expect(crypto_scp03t *st, const char *tlv_hex, const char *plain_hex)
{
	size_t n = 0, pn = 0;
	uint8_t *tlv = test_unhex(tlv_hex, &n);
	uint8_t *plain = test_unhex(plain_hex, &pn);
	esim_buf out = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_scp03t_unprotect_tlv(st, tlv, n, &out));
	assert_int_equal(out.len, pn);
	assert_memory_equal(out.data, plain, pn);
	esim_buf_wipe_free(&out);
	free(tlv);
	free(plain);
}

/* Every single-bit change of the segment is refused, the state stays put, and
 * the genuine segment still goes through afterwards. */
static void tamper_then_accept(crypto_scp03t *st, const char *tlv_hex, const char *plain_hex)
{
	size_t n = 0;
	uint8_t *tlv = test_unhex(tlv_hex, &n);
	crypto_scp03t before = *st;
	esim_buf out = ESIM_BUF_INIT;
	size_t hdr = 2;

	for (size_t i = hdr; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			tlv[i] ^= (uint8_t)(1u << bit);
			assert_esim(ESIM_E_CRYPTO_MAC_INVALID,
				    crypto_scp03t_unprotect_tlv(st, tlv, n, &out));
			tlv[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(out.len, 0);
			assert_memory_equal(st, &before, sizeof before);
		}
	}
	/* a wrong tag is a wrong MAC input as well (87 <-> 86 both decrypt) */
	if (tlv[0] != 0x88) {
		tlv[0] ^= 0x01;
		assert_esim(ESIM_E_CRYPTO_MAC_INVALID,
			    crypto_scp03t_unprotect_tlv(st, tlv, n, &out));
		tlv[0] ^= 0x01;
		assert_memory_equal(st, &before, sizeof before);
	}
	free(tlv);
	esim_buf_free(&out);
	unprotect_expect(st, tlv_hex, plain_hex);
}

/* The eUICC side: segments 1-3 back to their plaintext, tampering refused. */
static void test_sgp22_vector_b_unprotect(void **state)
{
	(void)state;
	struct crypto_bpp_keys k;
	crypto_scp03t st;

	vb_keys(&k);
	crypto_scp03t_init(&st, &k);

	tamper_then_accept(&st, VB_SEG1, VB_SEG1_PLAIN);
	assert_hex(st.mcv, 16, "9412d7722a6a2d8930d8ba424f048693");
	tamper_then_accept(&st, VB_SEG2, VB_SEG2_PLAIN);
	assert_hex(st.mcv, 16, "8a62cc9adbb5ccbc281d71d08802aa82");

	/* segment 3 through the (tag, value) entry point a DER reader uses */
	size_t n = 0;
	uint8_t *tlv = test_unhex(VB_SEG3, &n);
	esim_buf out = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_scp03t_unprotect(&st, tlv[0], tlv + 2, n - 2, &out));
	assert_hex(out.data, out.len, VB_SEG3_PLAIN);
	assert_int_equal(st.n, 4);

	/* segment 3 replayed: the MAC chain has moved on */
	esim_buf out2 = ESIM_BUF_INIT;
	assert_esim(ESIM_E_CRYPTO_MAC_INVALID, crypto_scp03t_unprotect_tlv(&st, tlv, n, &out2));
	assert_int_equal(out2.len, 0);
	free(tlv);

	/* switch to the keys segment 3 carried, as the eUICC does */
	const uint8_t *rsk = out.data + 3;
	assert_int_equal(rsk[0], 0x80);
	assert_int_equal(rsk[18], 0x81);
	assert_int_equal(rsk[36], 0x82);
	crypto_scp03t_replace_keys(&st, rsk + 20, rsk + 38, rsk + 2);
	assert_int_equal(st.n, 1);
	esim_buf_wipe_free(&out);

	/* segment 4 (our own, see above) opens under the new keys */
	crypto_scp03t dp;
	uint8_t enc[16], mac[16], mcv[16];
	unhex_fixed("010102030405060708090a0b0c0d0e0f", enc, 16);
	unhex_fixed("020102030405060708090a0b0c0d0e0f", mac, 16);
	unhex_fixed("000102030405060708090a0b0c0d0e0f", mcv, 16);
	crypto_scp03t_replace_keys(&dp, enc, mac, mcv);
	assert_memory_equal(&dp, &st, sizeof dp);
	uint8_t plain[1007] = {0xa0, 0x48, 0x80, 0x01, 0x02, 0x81, 0x01};
	for (size_t i = 7; i < sizeof plain; i++)
		plain[i] = (uint8_t)i;
	esim_buf seg = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_scp03t_protect(&dp, 0x86, plain, sizeof plain, &seg));
	assert_esim(ESIM_OK, crypto_scp03t_unprotect_tlv(&st, seg.data, seg.len, &out));
	assert_int_equal(out.len, sizeof plain);
	assert_memory_equal(out.data, plain, sizeof plain);
	assert_memory_equal(&dp, &st, sizeof dp);

	esim_buf_free(&seg);
	esim_buf_wipe_free(&out);
	crypto_scp03t_clear(&st);
	crypto_scp03t_clear(&dp);
	crypto_bpp_keys_wipe(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc6979_verify),
	    cmocka_unit_test(test_rfc6979_key_sign),
	    cmocka_unit_test(test_rfc5903_ecdh),
	    cmocka_unit_test(test_rfc7027_ecdh),
	    cmocka_unit_test(test_rfc4493_cmac),
	    cmocka_unit_test(test_cavs_x963),
	    cmocka_unit_test(test_sgp22_vector_a),
	    cmocka_unit_test(test_sgp22_vector_b_keys),
	    cmocka_unit_test(test_sgp22_vector_b_protect),
	    cmocka_unit_test(test_sgp22_vector_b_unprotect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
