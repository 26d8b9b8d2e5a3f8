/*
 * Tests of rsp identifiers (src/rsp/ids.c) against the known values of
 * digest 2.3: ICCID in both BCD forms, EID BCD and SGP.29 check digits,
 * transactionId hex, ISD-P AIDs.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp.h"
#include "testutil.h"

static void expect_bytes(const uint8_t *got, const char *hex)
{
	size_t n;
	uint8_t *want = test_unhex(hex, &n);
	assert_memory_equal(got, want, n);
	free(want);
}

static void test_iccid_swapped(void **state)
{
	(void)state;
	uint8_t b[10];
	char text[RSP_ICCID_TEXT_MAX];
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("89000123456789012341", b));
	expect_bytes(b, "98001032547698103214");
	assert_esim(ESIM_OK, rsp_iccid_from_bcd(b, 10, text));
	assert_string_equal(text, "89000123456789012341");

	/* 19 digits are padded with F; a written-out 20th F means the same */
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("8949449999999990031", b));
	expect_bytes(b, "989444999999990930F1");
	assert_esim(ESIM_OK, rsp_iccid_from_bcd(b, 10, text));
	assert_string_equal(text, "8949449999999990031");
	uint8_t b2[10];
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("8949449999999990031F", b2));
	assert_memory_equal(b, b2, 10);
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("8949449999999990031f", b2));
	assert_memory_equal(b, b2, 10);

	/* 18 digits */
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("894944999999999003", b));
	expect_bytes(b, "989444999999990930FF");
	assert_esim(ESIM_OK, rsp_iccid_from_bcd(b, 10, text));
	assert_string_equal(text, "894944999999999003");
}

static void test_iccid_plain(void **state)
{
	(void)state;
	uint8_t b[10], s[10];
	char text[RSP_ICCID_TEXT_MAX];
	assert_esim(ESIM_OK, rsp_iccid_to_plain_bcd("89000123456789012341", b));
	expect_bytes(b, "89000123456789012341");
	assert_esim(ESIM_OK, rsp_iccid_from_plain_bcd(b, 10, text));
	assert_string_equal(text, "89000123456789012341");
	rsp_iccid_swap(b, s);
	expect_bytes(s, "98001032547698103214");
	assert_esim(ESIM_OK, rsp_iccid_to_plain_bcd("8949449999999990031", b));
	expect_bytes(b, "8949449999999990031F");
	assert_esim(ESIM_OK, rsp_iccid_from_plain_bcd(b, 10, text));
	assert_string_equal(text, "8949449999999990031");
}

static void test_iccid_bad(void **state)
{
	(void)state;
	uint8_t b[10];
	char text[RSP_ICCID_TEXT_MAX];
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_to_bcd("89000123456789012", b));	 /* 17 */
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_to_bcd("890001234567890123411", b)); /* 21 */
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_to_bcd("8900012345678901234A", b));
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_to_bcd("890001234567890123F", b)); /* F at 19 */
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_to_bcd("", b));
	assert_esim(ESIM_E_ARG, rsp_iccid_to_bcd(NULL, b));
	/* a nibble A..E, F in the middle, too short, wrong length */
	uint8_t x[10] = {0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x1A};
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_from_bcd(x, 10, text));
	x[9] = 0x14;
	x[4] = 0xF4;
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_from_bcd(x, 10, text));
	uint8_t shortest[10] = {0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0xF2, 0xFF};
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_from_bcd(shortest, 10, text)); /* 17 digits */
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_from_bcd(x, 9, text));
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_iccid_from_plain_bcd(x, 11, text));
}

/* ITU-T E.118 check digits: the textbook Luhn case, and the fixture's
 * first ICCID (documented in test_smdp_fixture.h as ...0011). */
static void test_iccid_luhn(void **state)
{
	(void)state;
	assert_int_equal(rsp_iccid_luhn_digit("7992739871", 10), 3); /* the textbook case */
	assert_int_equal(rsp_iccid_luhn_digit("8900012345000000001", 19), 1);
	assert_true(rsp_iccid_luhn_ok("89000123450000000011"));
	assert_false(rsp_iccid_luhn_ok("89000123450000000012"));
	assert_false(rsp_iccid_luhn_ok("8900012345000000001F"));
	assert_int_equal(rsp_iccid_luhn_digit("89x", 3), -1);
	assert_false(rsp_iccid_luhn_ok("8"));
	assert_false(rsp_iccid_luhn_ok(NULL));
}

static void test_eid(void **state)
{
	(void)state;
	uint8_t b[16];
	char text[RSP_EID_DIGITS + 1];
	assert_esim(ESIM_OK, rsp_eid_to_bcd("89049032123451234512345678901235", b));
	expect_bytes(b, "89049032123451234512345678901235");
	assert_esim(ESIM_OK, rsp_eid_from_bcd(b, 16, text));
	assert_string_equal(text, "89049032123451234512345678901235");
	assert_esim(ESIM_E_RSP_BAD_EID, rsp_eid_to_bcd("8904903212345123451234567890123", b));
	assert_esim(ESIM_E_RSP_BAD_EID, rsp_eid_to_bcd("8904903212345123451234567890123X", b));
	b[3] = 0x3A;
	assert_esim(ESIM_E_RSP_BAD_EID, rsp_eid_from_bcd(b, 16, text));
	assert_esim(ESIM_E_RSP_BAD_EID, rsp_eid_from_bcd(b, 15, text));

	/* SGP.29: the test EIDs of the digest and SGP.26 */
	assert_esim(ESIM_OK, rsp_eid_check("89049032123451234512345678901235"));
	/* the EID of pySim's KDF vector (digest 7.7 A) is not a valid one */
	assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS,
		    rsp_eid_check("89049032123451234512345678901335"));
	assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS,
		    rsp_eid_check("89049032123451234512345678901234"));
	assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS,
		    rsp_eid_check("89049032123451234512345678901236"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT, rsp_eid_check("8904903212345123451234567890123"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT, rsp_eid_check("8904903212345123451234567890123a"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT, rsp_eid_check(NULL));
}

static void test_txid(void **state)
{
	(void)state;
	rsp_txid a, b;
	char hex[33];
	assert_esim(ESIM_OK, rsp_txid_from_hex("0123456789abcdef0123456789ABCDEF", &a));
	assert_int_equal(a.len, 16);
	assert_int_equal(a.b[0], 0x01);
	assert_int_equal(a.b[15], 0xEF);
	assert_esim(ESIM_OK, rsp_txid_to_hex(&a, hex));
	assert_string_equal(hex, "0123456789ABCDEF0123456789ABCDEF");
	assert_esim(ESIM_OK, rsp_txid_from_hex("0A", &b));
	assert_int_equal(b.len, 1);
	assert_false(rsp_txid_equal(&a, &b));
	assert_esim(ESIM_OK, rsp_txid_set(&b, a.b, a.len));
	assert_true(rsp_txid_equal(&a, &b));
	b.b[7] ^= 1;
	assert_false(rsp_txid_equal(&a, &b));

	assert_esim(ESIM_E_RSP_BAD_TXID, rsp_txid_from_hex("", &b));
	assert_esim(ESIM_E_RSP_BAD_TXID,
		    rsp_txid_from_hex("0123456789abcdef0123456789ABCDEF00", &b));
	assert_esim(ESIM_E_HEX, rsp_txid_from_hex("0G", &b));
	assert_esim(ESIM_E_HEX, rsp_txid_from_hex("012", &b));
	uint8_t big[17] = {0};
	assert_esim(ESIM_E_RSP_BAD_TXID, rsp_txid_set(&b, big, 17));
	assert_esim(ESIM_E_RSP_BAD_TXID, rsp_txid_set(&b, big, 0));

	rsp_txid r1, r2;
	assert_esim(ESIM_OK, rsp_txid_random(&r1));
	assert_esim(ESIM_OK, rsp_txid_random(&r2));
	assert_int_equal(r1.len, 16);
	assert_false(rsp_txid_equal(&r1, &r2));
}

static void test_aid(void **state)
{
	(void)state;
	uint8_t aid[16];
	char hex[33];
	assert_esim(ESIM_OK, rsp_isdp_aid(0, aid));
	assert_esim(ESIM_OK, rsp_aid_to_hex(aid, 16, hex));
	assert_string_equal(hex, "A0000005591010FFFFFFFF8900001000");
	assert_esim(ESIM_OK, rsp_isdp_aid(2, aid));
	assert_esim(ESIM_OK, rsp_aid_to_hex(aid, 16, hex));
	assert_string_equal(hex, "A0000005591010FFFFFFFF8900001200");
	assert_esim(ESIM_OK, rsp_isdp_aid(0xFFEF, aid));
	assert_esim(ESIM_OK, rsp_aid_to_hex(aid, 16, hex));
	assert_string_equal(hex, "A0000005591010FFFFFFFF8900FFFF00");
	assert_esim(ESIM_E_ARG, rsp_isdp_aid(0xFFF0, aid));
	assert_esim(ESIM_OK, rsp_aid_to_hex(RSP_AID_ISDR, 16, hex));
	assert_string_equal(hex, "A0000005591010FFFFFFFF8900000100");
	assert_esim(ESIM_OK, rsp_aid_to_hex(RSP_AID_ECASD, 16, hex));
	assert_string_equal(hex, "A0000005591010FFFFFFFF8900000200");

	uint8_t back[16];
	size_t n;
	assert_esim(ESIM_OK, rsp_aid_from_hex("a0000005591010ffffffff8900001000", back, &n));
	assert_int_equal(n, 16);
	assert_esim(ESIM_OK, rsp_isdp_aid(0, aid));
	assert_memory_equal(back, aid, 16);
	assert_esim(ESIM_OK, rsp_aid_from_hex("A000000559", back, &n));
	assert_int_equal(n, 5);
	assert_esim(ESIM_E_RSP_BAD_AID, rsp_aid_from_hex("A0000005", back, &n));
	assert_esim(ESIM_E_RSP_BAD_AID, rsp_aid_to_hex(aid, 17, hex));
	assert_esim(ESIM_E_RSP_BAD_AID, rsp_aid_to_hex(aid, 4, hex));
}

static void test_sig_tlv(void **state)
{
	(void)state;
	uint8_t sig[64], tlv[RSP_SIG_TLV_LEN];
	for (int i = 0; i < 64; i++)
		sig[i] = (uint8_t)i;
	rsp_sig_tlv(sig, tlv);
	assert_int_equal(tlv[0], 0x5F);
	assert_int_equal(tlv[1], 0x37);
	assert_int_equal(tlv[2], 0x40);
	assert_memory_equal(tlv + 3, sig, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_iccid_swapped), cmocka_unit_test(test_iccid_plain),
	    cmocka_unit_test(test_iccid_bad),	  cmocka_unit_test(test_eid),
	    cmocka_unit_test(test_txid),	  cmocka_unit_test(test_aid),
	    cmocka_unit_test(test_sig_tlv),	  cmocka_unit_test(test_iccid_luhn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
