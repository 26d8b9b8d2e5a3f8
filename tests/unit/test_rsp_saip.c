/*
 * Tests of the SAIP profile package checker (src/rsp/saip.c) on packages
 * built here: the synthetic test UPP, ICCID personalisation, and each
 * structural error the checker names.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp_saip.h"
#include "testutil.h"

static const uint8_t *find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

static void test_synthetic(void **state)
{
	(void)state;
	uint8_t *upp;
	size_t n;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("8949449999999990031", &upp, &n));
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(upp, n, &info));
	assert_int_equal(info.major, 2);
	assert_int_equal(info.minor, 3);
	assert_string_equal(info.iccid, "8949449999999990031");
	assert_int_equal(info.n_pe, 3);
	assert_int_equal(info.mandatory_services, 0);
	assert_false(info.has_usim);
	assert_int_equal(info.profile_type.len, 20);
	assert_memory_equal(info.profile_type.p, "esimkit test profile", 20);
	/* the header holds plain BCD, EF.ICCID the swapped form */
	static const uint8_t plain[] = {0x83, 0x0A, 0x89, 0x49, 0x44, 0x99,
					0x99, 0x99, 0x99, 0x90, 0x03, 0x1F};
	static const uint8_t swapped[] = {0x83, 0x0A, 0x98, 0x94, 0x44, 0x99,
					  0x99, 0x99, 0x99, 0x09, 0x30, 0xF1};
	assert_non_null(find(upp, n, plain, sizeof plain));
	assert_non_null(find(upp, n, swapped, sizeof swapped));
	/* ends with AA 07 A0 05 80 00 81 01 02 */
	assert_memory_equal(upp + n - 9, "\xAA\x07\xA0\x05\x80\x00\x81\x01\x02", 9);
	free(upp);
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_saip_make_test_upp("123", &upp, &n));
}

static void test_personalise(void **state)
{
	(void)state;
	uint8_t *upp, *pers;
	size_t n, pn;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("89000123456789012341", &upp, &n));
	assert_esim(ESIM_OK, rsp_saip_personalise_iccid(upp, n, "8949449999999990031", &pers, &pn));
	assert_int_equal(pn, n);
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(pers, pn, &info));
	assert_string_equal(info.iccid, "8949449999999990031");
	static const uint8_t swapped[] = {0x83, 0x0A, 0x98, 0x94, 0x44, 0x99,
					  0x99, 0x99, 0x99, 0x09, 0x30, 0xF1};
	static const uint8_t old_swapped[] = {0x83, 0x0A, 0x98, 0x00, 0x10, 0x32,
					      0x54, 0x76, 0x98, 0x10, 0x32, 0x14};
	assert_non_null(find(pers, pn, swapped, sizeof swapped));
	assert_null(find(pers, pn, old_swapped, sizeof old_swapped));
	/* exactly 20 bytes changed */
	size_t diff = 0;
	for (size_t i = 0; i < n; i++)
		diff += upp[i] != pers[i];
	assert_true(diff <= 20 && diff >= 10);
	free(pers);
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_saip_personalise_iccid(upp, n, "12", &pers, &pn));
	free(upp);
}

static uint8_t *unhex(const char *h, size_t *n)
{
	return test_unhex(h, n);
}

static void expect(esim_err want, const char *hex, size_t want_off)
{
	size_t n;
	uint8_t *p = unhex(hex, &n);
	struct rsp_saip_info info;
	assert_esim(want, rsp_saip_check(p, n, &info));
	assert_int_equal(info.err_offset, want_off);
	free(p);
}

/* Pieces: header (ICCID 89000123456789012341), mf id 1, end id 2. */
#define HDR                                                                                        \
	"a0128001028101038"                                                                        \
	"30a89000123456789012341"
#define MF1   "b007a0058000810101"
#define END2  "aa07a0058000810102"
#define USIM3 "b305a003810103"

static void test_errors(void **state)
{
	(void)state;
	size_t hlen = 20, mlen = 9;
	expect(ESIM_OK, HDR MF1 END2, 0);
	expect(ESIM_OK, HDR MF1 USIM3 END2, 0);
	/* no header first */
	expect(ESIM_E_RSP_SAIP_NO_HEADER, MF1 END2, 0);
	expect(ESIM_E_RSP_SAIP_NO_HEADER, "", 0);
	/* header without ICCID, with a 9-byte one, with an A..E nibble */
	expect(ESIM_E_RSP_SAIP_BAD_HEADER, "a006800102810103" MF1 END2, 0);
	expect(ESIM_E_RSP_SAIP_BAD_HEADER, "a0118001028101038309890001234567890123" MF1 END2, 0);
	expect(ESIM_E_RSP_SAIP_BAD_HEADER,
	       "a0128001028101038"
	       "30a8900012345678901234A" MF1 END2,
	       0);
	/* no end, no mf */
	expect(ESIM_E_RSP_SAIP_NO_END, HDR MF1, hlen + mlen);
	expect(ESIM_E_RSP_SAIP_NO_MF, HDR USIM3 END2, hlen + 7 + 9);
	/* something after end, a second header */
	expect(ESIM_E_RSP_SAIP_MISPLACED, HDR MF1 END2 USIM3, hlen + mlen + 9);
	expect(ESIM_E_RSP_SAIP_MISPLACED, HDR MF1 HDR END2, hlen + mlen);
	/* duplicate identification */
	expect(ESIM_E_RSP_SAIP_DUPLICATE_ID, HDR MF1 "b305a003810101" END2, hlen + mlen + 7 + 9);
	/* PE without PEHeader, with a bad one */
	expect(ESIM_E_RSP_SAIP_BAD_PE_HEADER, HDR "b0058103010203" END2, hlen);
	expect(ESIM_E_RSP_SAIP_BAD_PE_HEADER, HDR "b005a003800100" END2, hlen);
	expect(ESIM_E_RSP_SAIP_BAD_PE_HEADER, HDR "8001ff" END2, hlen);
	/* not DER: truncated element, indefinite length */
	expect(ESIM_E_RSP_SAIP_MALFORMED, HDR MF1 "aa07a00580008101", hlen + mlen);
	expect(ESIM_E_RSP_SAIP_MALFORMED,
	       HDR "b080a0058000810101"
		   "0000" END2,
	       hlen);
}

static void test_mandatory_services(void **state)
{
	(void)state;
	/* header with A5 { 81 00 (usim), 84 00 (milenage) } */
	size_t n;
	uint8_t *p = unhex("a01880010281010383"
			   "0a89000123456789012341"
			   "a50481008400" MF1 END2,
			   &n);
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(p, n, &info));
	assert_int_equal(info.mandatory_services, RSP_SAIP_SVC_USIM | RSP_SAIP_SVC_MILENAGE);
	free(p);
	/* the personalisation needs an EF.ICCID */
	p = unhex(HDR MF1 END2, &n);
	uint8_t *out;
	size_t on;
	assert_esim(ESIM_E_RSP_SAIP_NO_EF_ICCID,
		    rsp_saip_personalise_iccid(p, n, "89000123456789012341", &out, &on));
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_synthetic),
	    cmocka_unit_test(test_personalise),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_mandatory_services),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
