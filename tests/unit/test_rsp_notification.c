/*
 * Tests of the signed notifications (src/rsp/notification.c): a
 * ProfileInstallationResult and an OtherSignedNotification built with an
 * eUICC key, parsed and verified as the SM-DP+ does (digest 8.4), and
 * rejected when tampered with, signed by another key, chained to an
 * untrusted CI or carrying the wrong PMO. The PKI is issued at run time.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp.h"
#include "test_rsp_fixture.h"
#include "testutil.h"

static struct fix_pki pki;

static int setup(void **state)
{
	(void)state;
	fix_pki_init(&pki, CRYPTO_CURVE_P256);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fix_pki_clear(&pki);
	return 0;
}

static void pir_fill(struct rsp_pir *pir, bool success)
{
	memset(pir, 0, sizeof(*pir));
	assert_esim(ESIM_OK, rsp_txid_from_hex("0123456789ABCDEF0123456789ABCDEF", &pir->txid));
	pir->meta.seq = 7;
	pir->meta.event = RSP_EVENT_INSTALL;
	pir->meta.address = strdup("testsmdpplus1.example.com");
	pir->meta.has_iccid = true;
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("89000123456789012341", pir->meta.iccid));
	strcpy(pir->smdp_oid, "2.999.10");
	pir->success = success;
	static const uint8_t ok_resp[] = {0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00};
	pir->euicc_response = malloc(sizeof ok_resp);
	memcpy(pir->euicc_response, ok_resp, sizeof ok_resp);
	pir->euicc_response_len = sizeof ok_resp;
	if (success) {
		assert_esim(ESIM_OK, rsp_isdp_aid(0, pir->aid));
		pir->aid_len = 16;
	} else {
		pir->bpp_command_id = RSP_BPP_CMD_LOAD_PROFILE_ELEMENTS;
		pir->error_reason = RSP_BPP_ERR_ICCID_EXISTS;
	}
}

static void test_pir_success(void **state)
{
	(void)state;
	struct rsp_pir pir, got;
	pir_fill(&pir, true);
	uint8_t *enc;
	size_t n;
	assert_esim(ESIM_OK, rsp_pir_build(&pir, pki.euicc.key, &enc, &n));
	assert_int_equal(enc[0], 0xBF);
	assert_int_equal(enc[1], 0x37);

	enum rsp_pending_kind kind;
	assert_esim(ESIM_OK, rsp_pending_kind(enc, n, &kind));
	assert_int_equal(kind, RSP_PENDING_PIR);

	assert_esim(ESIM_OK, rsp_pir_parse(enc, n, &got));
	assert_true(rsp_txid_equal(&got.txid, &pir.txid));
	rsp_pir_free(&got);

	assert_esim(ESIM_OK, rsp_pir_verify(enc, n, pki.euicc.key, "2.999.10", &got));
	assert_true(got.success);
	assert_int_equal(got.aid_len, 16);
	assert_memory_equal(got.aid, pir.aid, 16);
	assert_int_equal(got.meta.seq, 7);
	assert_int_equal(got.meta.event, RSP_EVENT_INSTALL);
	assert_string_equal(got.meta.address, "testsmdpplus1.example.com");
	assert_string_equal(got.smdp_oid, "2.999.10");
	assert_int_equal(got.euicc_response_len, 9);
	assert_memory_equal(got.euicc_response, pir.euicc_response, 9);
	rsp_pir_free(&got);

	/* wrong OID, wrong key */
	assert_esim(ESIM_E_RSP_OID_MISMATCH,
		    rsp_pir_verify(enc, n, pki.euicc.key, "2.999.11", &got));
	assert_null(got.meta.address);
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE, rsp_pir_verify(enc, n, pki.dpauth.key, NULL, &got));

	/* a flipped byte inside BF27 (the seqNumber) breaks the signature */
	uint8_t *bad = malloc(n);
	memcpy(bad, enc, n);
	static const uint8_t seq[] = {0x80, 0x01, 0x07};
	for (size_t i = 0; i + 3 <= n; i++)
		if (memcmp(bad + i, seq, 3) == 0) {
			bad[i + 2] = 8;
			break;
		}
	assert_esim(ESIM_OK, rsp_pir_parse(bad, n, &got));
	assert_int_equal(got.meta.seq, 8);
	rsp_pir_free(&got);
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE, rsp_pir_verify(bad, n, pki.euicc.key, NULL, &got));
	/* and so does a flipped signature byte */
	memcpy(bad, enc, n);
	bad[n - 1] ^= 0x01;
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE, rsp_pir_verify(bad, n, pki.euicc.key, NULL, &got));
	free(bad);
	/* truncated */
	assert_int_not_equal(rsp_pir_parse(enc, n - 1, &got), ESIM_OK);
	free(enc);
	rsp_pir_free(&pir);
}

static void test_pir_error(void **state)
{
	(void)state;
	struct rsp_pir pir, got;
	pir_fill(&pir, false);
	pir.smdp_oid[0] = '\0';
	uint8_t *enc;
	size_t n;
	assert_esim(ESIM_OK, rsp_pir_build(&pir, pki.euicc.key, &enc, &n));
	assert_esim(ESIM_OK, rsp_pir_verify(enc, n, pki.euicc.key, NULL, &got));
	assert_false(got.success);
	assert_int_equal(got.bpp_command_id, 5);
	assert_int_equal(got.error_reason, 9);
	assert_string_equal(got.smdp_oid, "");
	assert_int_equal(got.euicc_response_len, 9);
	rsp_pir_free(&got);
	free(enc);

	/* without the optional 82 */
	free(pir.euicc_response);
	pir.euicc_response = NULL;
	pir.euicc_response_len = 0;
	assert_esim(ESIM_OK, rsp_pir_build(&pir, pki.euicc.key, &enc, &n));
	assert_esim(ESIM_OK, rsp_pir_verify(enc, n, pki.euicc.key, "", &got));
	assert_null(got.euicc_response);
	rsp_pir_free(&got);
	free(enc);

	/* a PIR must carry the install event */
	pir.meta.event = RSP_EVENT_ENABLE;
	assert_esim(ESIM_E_RSP_BAD_PMO, rsp_pir_build(&pir, pki.euicc.key, &enc, &n));
	rsp_pir_free(&pir);
}

static void test_pir_fixed_encoding(void **state)
{
	(void)state;
	/* A hand-assembled PIR: structure as in digest 8.2, signature zeros. */
	size_t n;
	uint8_t *p =
	    test_unhex("bf3781a0bf275a800100bf2f15800101810207800c0c736d64702e6578616d706c65"
		       "060388370aa238a0364f10a0000005591010ffffffff8900001000"
		       "04223020a01e3003800100300380010030038001003003800100300380010030038001ff"
		       "5f3740"
		       "0000000000000000000000000000000000000000000000000000000000000000"
		       "0000000000000000000000000000000000000000000000000000000000000000",
		       &n);
	struct rsp_pir got;
	assert_esim(ESIM_OK, rsp_pir_parse(p, n, &got));
	assert_int_equal(got.txid.len, 1);
	assert_string_equal(got.smdp_oid, "2.999.10");
	assert_string_equal(got.meta.address, "smdp.example");
	assert_false(got.meta.has_iccid);
	assert_true(got.success);
	assert_int_equal(got.euicc_response_len, 34);
	rsp_pir_free(&got);
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE, rsp_pir_verify(p, n, pki.euicc.key, NULL, &got));
	free(p);
}

static void test_other_notification(void **state)
{
	(void)state;
	struct rsp_notif_metadata meta = {.seq = 300, .event = RSP_EVENT_DELETE, .has_iccid = true};
	meta.address = strdup("notify.example.com");
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("89000123456789012341", meta.iccid));
	uint8_t *enc;
	size_t n;
	assert_esim(ESIM_OK,
		    rsp_other_notif_build(&meta, pki.euicc.key, pki.euicc.der, pki.euicc.der_len,
					  pki.eum.der, pki.eum.der_len, &enc, &n));
	enum rsp_pending_kind kind;
	assert_esim(ESIM_OK, rsp_pending_kind(enc, n, &kind));
	assert_int_equal(kind, RSP_PENDING_OTHER);

	struct rsp_notif_metadata got;
	char eid[33];
	assert_esim(ESIM_OK, rsp_other_notif_verify(enc, n, pki.trust, NULL, &got, eid));
	assert_string_equal(eid, FIX_EID);
	assert_int_equal(got.seq, 300);
	assert_int_equal(got.event, RSP_EVENT_DELETE);
	assert_string_equal(got.address, "notify.example.com");
	assert_memory_equal(got.iccid, meta.iccid, 10);
	rsp_notif_metadata_free(&got);

	/* tampered seqNumber */
	uint8_t *bad = malloc(n);
	memcpy(bad, enc, n);
	static const uint8_t seq[] = {0x80, 0x02, 0x01, 0x2C};
	bool found = false;
	for (size_t i = 0; i + 4 <= n && !found; i++)
		if (memcmp(bad + i, seq, 4) == 0) {
			bad[i + 3] = 0x2D;
			found = true;
		}
	assert_true(found);
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE,
		    rsp_other_notif_verify(bad, n, pki.trust, NULL, &got, eid));
	assert_null(got.address);
	free(bad);
	free(enc);

	/* signed with a key other than the certificate's */
	assert_esim(ESIM_OK,
		    rsp_other_notif_build(&meta, pki.dpauth.key, pki.euicc.der, pki.euicc.der_len,
					  pki.eum.der, pki.eum.der_len, &enc, &n));
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE,
		    rsp_other_notif_verify(enc, n, pki.trust, NULL, &got, eid));
	free(enc);

	/* a chain under an untrusted CI */
	assert_esim(ESIM_OK, rsp_other_notif_build(&meta, pki.other_euicc.key, pki.other_euicc.der,
						   pki.other_euicc.der_len, pki.other_eum.der,
						   pki.other_eum.der_len, &enc, &n));
	assert_esim(ESIM_E_CERT_UNKNOWN_CI,
		    rsp_other_notif_verify(enc, n, pki.trust, NULL, &got, eid));
	free(enc);

	/* the EUM certificate where the eUICC's belongs */
	assert_esim(ESIM_OK,
		    rsp_other_notif_build(&meta, pki.euicc.key, pki.eum.der, pki.eum.der_len,
					  pki.eum.der, pki.eum.der_len, &enc, &n));
	assert_int_not_equal(rsp_other_notif_verify(enc, n, pki.trust, NULL, &got, eid), ESIM_OK);
	free(enc);

	/* install is not an "other" notification */
	meta.event = RSP_EVENT_INSTALL;
	assert_esim(ESIM_E_RSP_BAD_PMO,
		    rsp_other_notif_build(&meta, pki.euicc.key, pki.euicc.der, pki.euicc.der_len,
					  pki.eum.der, pki.eum.der_len, &enc, &n));
	rsp_notif_metadata_free(&meta);
}

static void test_pending_kind(void **state)
{
	(void)state;
	enum rsp_pending_kind kind;
	static const uint8_t a1[] = {0xA1, 0x00};
	static const uint8_t junk[] = {0x30, 0x05, 0x00};
	static const uint8_t two[] = {0x30, 0x00, 0x30, 0x00};
	assert_esim(ESIM_E_RSP_UNKNOWN_NOTIFICATION, rsp_pending_kind(a1, sizeof a1, &kind));
	assert_int_not_equal(rsp_pending_kind(junk, sizeof junk, &kind), ESIM_OK);
	assert_int_not_equal(rsp_pending_kind(two, sizeof two, &kind), ESIM_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pir_success),	       cmocka_unit_test(test_pir_error),
	    cmocka_unit_test(test_pir_fixed_encoding), cmocka_unit_test(test_other_notification),
	    cmocka_unit_test(test_pending_kind),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
