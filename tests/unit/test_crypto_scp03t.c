/*
 * SCP03t segment protection beyond the published vectors: size limits and
 * length forms, round trips at every plaintext length, the exact MAC input
 * (the length bytes as sent), structure and padding errors, and the rule
 * that a refused segment leaves the receiver's state untouched.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/crypto.h"
#include "esim/util.h"
#include "testutil.h"

static void keys_fixed(struct crypto_bpp_keys *k)
{
	for (int i = 0; i < 16; i++) {
		k->mcv[i] = (uint8_t)(0x10 + i);
		k->s_enc[i] = (uint8_t)(0x20 + i);
		k->s_mac[i] = (uint8_t)(0x30 + i);
	}
}

static void pair(crypto_scp03t *dp, crypto_scp03t *euicc)
{
	struct crypto_bpp_keys k;
	keys_fixed(&k);
	crypto_scp03t_init(dp, &k);
	crypto_scp03t_init(euicc, &k);
	crypto_bpp_keys_wipe(&k);
}

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(crypto_scp03t_max_plain(0x86), 1007);
	assert_int_equal(crypto_scp03t_max_plain(0x87), 1007);
	assert_int_equal(crypto_scp03t_max_plain(0x88), 1008);
	assert_int_equal(crypto_scp03t_max_plain(0x85), 0);
	assert_int_equal(crypto_scp03t_segment_len(0x88, 1008), 1020);
	assert_int_equal(crypto_scp03t_segment_len(0x86, 1007), 1020);
	assert_int_equal(crypto_scp03t_segment_len(0x86, 1008), 1036);
	/* padding always adds: 15 -> one block, 16 -> two */
	assert_int_equal(crypto_scp03t_segment_len(0x87, 0), 1 + 1 + 16 + 8);
	assert_int_equal(crypto_scp03t_segment_len(0x87, 15), 1 + 1 + 16 + 8);
	assert_int_equal(crypto_scp03t_segment_len(0x87, 16), 1 + 1 + 32 + 8);
	/* L = 120 short, 136 -> 81 88, 264 -> 82 01 08 */
	assert_int_equal(crypto_scp03t_segment_len(0x87, 111), 1 + 1 + 120);
	assert_int_equal(crypto_scp03t_segment_len(0x87, 127), 1 + 2 + 136);
	assert_int_equal(crypto_scp03t_segment_len(0x88, 256), 1 + 3 + 264);
	assert_int_equal(crypto_scp03t_segment_len(0x01, 10), 0);
}

static void test_protect_limits(void **state)
{
	(void)state;
	crypto_scp03t dp, eu;
	uint8_t big[1009] = {0};
	esim_buf out = ESIM_BUF_INIT;

	pair(&dp, &eu);
	crypto_scp03t before = dp;
	assert_esim(ESIM_E_TOO_LARGE, crypto_scp03t_protect(&dp, 0x86, big, 1008, &out));
	assert_esim(ESIM_E_TOO_LARGE, crypto_scp03t_protect(&dp, 0x88, big, 1009, &out));
	assert_esim(ESIM_E_ARG, crypto_scp03t_protect(&dp, 0x89, big, 10, &out));
	assert_int_equal(out.len, 0);
	assert_memory_equal(&dp, &before, sizeof dp);
	assert_esim(ESIM_OK, crypto_scp03t_protect(&dp, 0x88, big, 1008, &out));
	assert_int_equal(out.len, 1020);
	assert_memory_equal(out.data, "\x88\x82\x03\xf8", 4);
	esim_buf_free(&out);
}

/* Every length from 0 to the maximum, every tag, both receiving entry points;
 * the output buffer keeps what it held before. */
static void test_round_trip_all_lengths(void **state)
{
	(void)state;
	static const uint8_t tags[] = {0x87, 0x88, 0x86};
	uint8_t plain[1008];
	crypto_scp03t dp, eu;

	for (size_t i = 0; i < sizeof plain; i++)
		plain[i] = (uint8_t)(i * 7 + 3);
	/* zeros and 80s at the end of the plaintext must survive unpadding */
	plain[1000] = 0x80;
	pair(&dp, &eu);
	for (size_t t = 0; t < sizeof tags; t++) {
		size_t max = crypto_scp03t_max_plain(tags[t]);
		for (size_t n = 0; n <= max; n++) {
			esim_buf seg = ESIM_BUF_INIT, out = ESIM_BUF_INIT;
			uint8_t save = n > 0 ? plain[n - 1] : 0;
			if (n % 3 == 1 && n > 0)
				plain[n - 1] = 0x00;
			if (n % 3 == 2 && n > 0)
				plain[n - 1] = 0x80;

			assert_esim(ESIM_OK, esim_buf_append(&seg, "pre", 3));
			assert_esim(ESIM_OK, crypto_scp03t_protect(&dp, tags[t], plain, n, &seg));
			assert_int_equal(seg.len - 3, crypto_scp03t_segment_len(tags[t], n));
			assert_int_equal(seg.data[3], tags[t]);
			assert_esim(ESIM_OK, esim_buf_append(&out, "x", 1));
			if (n % 2)
				assert_esim(ESIM_OK, crypto_scp03t_unprotect_tlv(
							 &eu, seg.data + 3, seg.len - 3, &out));
			else {
				/* value after the minimal header */
				size_t h = seg.data[4] < 0x80 ? 2 : 2 + (seg.data[4] & 0x7f);
				assert_esim(ESIM_OK,
					    crypto_scp03t_unprotect(&eu, tags[t], seg.data + 3 + h,
								    seg.len - 3 - h, &out));
			}
			assert_int_equal(out.len, n + 1);
			assert_int_equal(out.data[0], 'x');
			if (n > 0)
				assert_memory_equal(out.data + 1, plain, n);
			assert_memory_equal(&dp, &eu, sizeof dp);
			if (n > 0)
				plain[n - 1] = save;
			esim_buf_free(&seg);
			esim_buf_free(&out);
		}
	}
	assert_int_equal(dp.n, 1 + 1008 + 1009 + 1008);
	crypto_scp03t_clear(&dp);
	crypto_scp03t_clear(&eu);
}

/* A ciphertext is not the plaintext, and the same plaintext twice gives two
 * different ciphertexts (the counter moves the ICV). */
static void test_encryption_hides(void **state)
{
	(void)state;
	crypto_scp03t dp, eu;
	uint8_t plain[32] = {0};
	esim_buf a = ESIM_BUF_INIT, b = ESIM_BUF_INIT, m = ESIM_BUF_INIT;

	pair(&dp, &eu);
	assert_esim(ESIM_OK, crypto_scp03t_protect(&dp, 0x86, plain, 32, &a));
	assert_esim(ESIM_OK, crypto_scp03t_protect(&dp, 0x86, plain, 32, &b));
	assert_int_equal(a.len, b.len);
	assert_memory_not_equal(a.data + 2, b.data + 2, 48);
	assert_memory_not_equal(a.data + 2, plain, 32);
	/* MAC-only carries the plaintext as is */
	assert_esim(ESIM_OK, crypto_scp03t_protect(&dp, 0x88, plain, 32, &m));
	assert_int_equal(m.len, 2 + 32 + 8);
	assert_memory_equal(m.data + 2, plain, 32);
	esim_buf_free(&a);
	esim_buf_free(&b);
	esim_buf_free(&m);
}

/* The MAC covers the length bytes as sent: a sender that used 81 18 instead of
 * 18 is accepted through the TLV entry point (which sees the wire bytes) and
 * refused by the (tag, value) one, which can only assume the DER form. */
static void test_mac_covers_wire_length(void **state)
{
	(void)state;
	crypto_scp03t dp, eu, eu2;
	esim_buf seg = ESIM_BUF_INIT, out = ESIM_BUF_INIT;
	uint8_t tlv[64], mac[16], in[64];

	pair(&dp, &eu);
	eu2 = eu;
	crypto_scp03t before = dp;
	assert_esim(ESIM_OK,
		    crypto_scp03t_protect(&dp, 0x87, (const uint8_t *)"\xbf\x24\x00", 3, &seg));
	assert_int_equal(seg.len, 2 + 16 + 8);
	/* rebuild as 87 81 18 C MAC' with MAC' over MCV || 87 81 18 || C */
	memcpy(in, before.mcv, 16);
	memcpy(in + 16, "\x87\x81\x18", 3);
	memcpy(in + 19, seg.data + 2, 16);
	assert_esim(ESIM_OK, crypto_aes_cmac(before.s_mac, in, 35, mac));
	memcpy(tlv, "\x87\x81\x18", 3);
	memcpy(tlv + 3, seg.data + 2, 16);
	memcpy(tlv + 19, mac, 8);

	assert_esim(ESIM_OK, crypto_scp03t_unprotect_tlv(&eu, tlv, 27, &out));
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "\xbf\x24\x00", 3);
	assert_memory_equal(eu.mcv, mac, 16);
	out.len = 0;
	assert_esim(ESIM_E_CRYPTO_MAC_INVALID,
		    crypto_scp03t_unprotect(&eu2, 0x87, tlv + 3, 24, &out));
	/* and the DER-form segment passes the (tag, value) entry point */
	assert_esim(ESIM_OK, crypto_scp03t_unprotect(&eu2, 0x87, seg.data + 2, 24, &out));
	esim_buf_free(&seg);
	esim_buf_free(&out);
}

static void test_structure_errors(void **state)
{
	(void)state;
	crypto_scp03t dp, eu;
	esim_buf seg = ESIM_BUF_INIT, out = ESIM_BUF_INIT;
	uint8_t buf[64];

	pair(&dp, &eu);
	crypto_scp03t before = eu;
	assert_esim(ESIM_OK, crypto_scp03t_protect(&dp, 0x87, (const uint8_t *)"abc", 3, &seg));
	memcpy(buf, seg.data, seg.len);

	/* L does not match what follows */
	buf[1] = 0x19;
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH, crypto_scp03t_unprotect_tlv(&eu, buf, seg.len, &out));
	buf[1] = 0x17;
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH, crypto_scp03t_unprotect_tlv(&eu, buf, seg.len, &out));
	buf[1] = 0x18;
	/* truncated header, unknown tag, reserved / indefinite length forms */
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH, crypto_scp03t_unprotect_tlv(&eu, buf, 1, &out));
	buf[0] = 0x85;
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH, crypto_scp03t_unprotect_tlv(&eu, buf, seg.len, &out));
	buf[0] = 0x87;
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH,
		    crypto_scp03t_unprotect_tlv(&eu, (const uint8_t *)"\x87\x80", 2, &out));
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH,
		    crypto_scp03t_unprotect_tlv(&eu, (const uint8_t *)"\x87\x82\x00", 3, &out));
	/* value shorter than the MAC; encrypted C not whole blocks, or empty */
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH, crypto_scp03t_unprotect(&eu, 0x88, buf + 2, 7, &out));
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH, crypto_scp03t_unprotect(&eu, 0x87, buf + 2, 8, &out));
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH,
		    crypto_scp03t_unprotect(&eu, 0x87, buf + 2, 23, &out));
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH,
		    crypto_scp03t_unprotect(&eu, 0x86, buf + 2, 25, &out));
	assert_esim(ESIM_E_ARG, crypto_scp03t_unprotect(&eu, 0x89, buf + 2, 24, &out));
	assert_int_equal(out.len, 0);
	assert_memory_equal(&eu, &before, sizeof eu);

	/* a segment for one tag does not pass as another: the MAC covers the tag */
	assert_esim(ESIM_E_CRYPTO_MAC_INVALID,
		    crypto_scp03t_unprotect(&eu, 0x86, buf + 2, 24, &out));
	assert_esim(ESIM_E_CRYPTO_MAC_INVALID,
		    crypto_scp03t_unprotect(&eu, 0x88, buf + 2, 24, &out));
	assert_memory_equal(&eu, &before, sizeof eu);
	assert_esim(ESIM_OK, crypto_scp03t_unprotect_tlv(&eu, buf, seg.len, &out));
	assert_memory_equal(out.data, "abc", 3);
	esim_buf_free(&seg);
	esim_buf_free(&out);
}

/* Build a segment whose MAC is right but whose decrypted padding is not. */
static size_t forge_padding(const crypto_scp03t *st, const uint8_t block[16], uint8_t tlv[26])
{
	uint8_t ctr[16] = {0}, icv[16], in[16 + 2 + 16];
	int n = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	assert_non_null(c);
	ctr[15] = (uint8_t)st->n;
	assert_int_equal(EVP_EncryptInit_ex2(c, EVP_aes_128_ecb(), st->s_enc, NULL, NULL), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	assert_int_equal(EVP_EncryptUpdate(c, icv, &n, ctr, 16), 1);
	assert_int_equal(EVP_EncryptInit_ex2(c, EVP_aes_128_cbc(), st->s_enc, icv, NULL), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	tlv[0] = 0x87;
	tlv[1] = 0x18;
	assert_int_equal(EVP_EncryptUpdate(c, tlv + 2, &n, block, 16), 1);
	EVP_CIPHER_CTX_free(c);
	memcpy(in, st->mcv, 16);
	memcpy(in + 16, tlv, 18);
	uint8_t mac[16];
	assert_esim(ESIM_OK, crypto_aes_cmac(st->s_mac, in, sizeof in, mac));
	memcpy(tlv + 18, mac, 8);
	return 26;
}

static void test_bad_padding(void **state)
{
	(void)state;
	static const char *const blocks[] = {
	    "41414141414141414141414141414141", /* no 80 at all */
	    "00000000000000000000000000000000", /* only zeros */
	    "41414141414141414141414141414181", /* 81, not 80 */
	    "41414141414141414141414141418001", /* something after the 80 */
	};
	crypto_scp03t dp, eu;
	esim_buf out = ESIM_BUF_INIT;
	uint8_t block[16], tlv[26];

	pair(&dp, &eu);
	crypto_scp03t before = eu;
	for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
		assert_esim(ESIM_OK, esim_hex_decode_fixed(blocks[i], block, 16));
		size_t n = forge_padding(&eu, block, tlv);
		assert_esim(ESIM_E_CRYPTO_BAD_PADDING,
			    crypto_scp03t_unprotect_tlv(&eu, tlv, n, &out));
		assert_int_equal(out.len, 0);
		assert_memory_equal(&eu, &before, sizeof eu);
	}
	/* the forging helper is right: well-padded blocks pass */
	assert_esim(ESIM_OK, esim_hex_decode_fixed("80000000000000000000000000000000", block, 16));
	size_t n = forge_padding(&eu, block, tlv);
	assert_esim(ESIM_OK, crypto_scp03t_unprotect_tlv(&eu, tlv, n, &out));
	assert_int_equal(out.len, 0);
	esim_buf_free(&out);
}

static void test_keys_and_clear(void **state)
{
	(void)state;
	uint8_t shs[32] = {1}, host[17] = {0x80}, eid[16] = {0x89};
	struct crypto_bpp_keys k, k2;

	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CRT,
		    crypto_bpp_derive_keys(shs, 32, 0x80, 0x10, host, 8, eid, &k));
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CRT,
		    crypto_bpp_derive_keys(shs, 32, 0x88, 0x20, host, 8, eid, &k));
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH,
		    crypto_bpp_derive_keys(shs, 32, 0x88, 0x10, host, 0, eid, &k));
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH,
		    crypto_bpp_derive_keys(shs, 32, 0x88, 0x10, host, 17, eid, &k));
	assert_esim(ESIM_E_CRYPTO_BAD_LENGTH,
		    crypto_bpp_derive_keys(shs, 31, 0x88, 0x10, host, 8, eid, &k));
	assert_esim(ESIM_OK, crypto_bpp_derive_keys(shs, 32, 0x88, 0x10, host, 16, eid, &k));
	/* the EID takes part: another EID, other keys */
	eid[15] = 1;
	assert_esim(ESIM_OK, crypto_bpp_derive_keys(shs, 32, 0x88, 0x10, host, 16, eid, &k2));
	assert_memory_not_equal(&k, &k2, sizeof k);

	crypto_scp03t st;
	crypto_scp03t_init(&st, &k);
	assert_memory_equal(st.s_enc, k.s_enc, 16);
	assert_memory_equal(st.s_mac, k.s_mac, 16);
	assert_memory_equal(st.mcv, k.mcv, 16);
	assert_int_equal(st.n, 1);
	crypto_scp03t_clear(&st);
	static const crypto_scp03t zero;
	assert_memory_equal(&st, &zero, sizeof st);
	crypto_bpp_keys_wipe(&k);
	crypto_bpp_keys_wipe(&k2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_protect_limits),
	    cmocka_unit_test(test_round_trip_all_lengths),
	    cmocka_unit_test(test_encryption_hides),
	    cmocka_unit_test(test_mac_covers_wire_length),
	    cmocka_unit_test(test_structure_errors),
	    cmocka_unit_test(test_bad_padding),
	    cmocka_unit_test(test_keys_and_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
