/*
 * The LPA's ES10 encoders and decoders (src/rsp/es10_lpa.c) against the
 * worked encodings of digest 4.2, and the activation code parser
 * (src/rsp/activation_code.c) with every malformed case of digest 9.4.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "esim/rsp_ac.h"
#include "esim/rsp_es10.h"

#define ICCID "89000123456789012341"

static void expect_hex(esim_err err, uint8_t *got, size_t len, const char *hex)
{
	assert_esim(ESIM_OK, err);
	size_t n;
	uint8_t *want = test_unhex(hex, &n);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
	free(want);
	free(got);
}

/* o and n are read after the call (argument evaluation order is unspecified) */
#define EXPECT(call, hex)                                                                          \
	do {                                                                                       \
		o = NULL;                                                                          \
		n = 0;                                                                             \
		esim_err e_ = (call);                                                              \
		expect_hex(e_, o, n, hex);                                                         \
	} while (0)

static void iccid_ref(struct rsp_profile_ref *r)
{
	assert_esim(ESIM_OK, rsp_profile_ref_parse(ICCID, r));
	assert_false(r->by_aid);
}

static void test_worked_encodings(void **state)
{
	(void)state;
	uint8_t *o = NULL;
	size_t n = 0;
	struct rsp_profile_ref r;
	iccid_ref(&r);
	EXPECT(rsp_get_eid_req(&o, &n), "BF3E035C015A");
	EXPECT(rsp_enable_profile_req(&r, true, &o, &n), "BF3111A00C5A0A98001032547698103214"
							 "8101FF");
	EXPECT(rsp_disable_profile_req(&r, false, &o, &n), "BF3211A00C5A0A980010325476981032148101"
							   "00");
	EXPECT(rsp_delete_profile_req(&r, &o, &n), "BF330C5A0A98001032547698103214");
	EXPECT(rsp_set_nickname_req(r.iccid, "My line", &o, &n),
	       "BF29155A0A9800103254769810321490074D79206C696E65");
	EXPECT(rsp_memory_reset_req(RSP_RESET_OPERATIONAL | RSP_RESET_TEST | RSP_RESET_DEFAULT_SMDP,
				    &o, &n),
	       "BF3404820205E0");
	EXPECT(rsp_list_notification_req(0, &o, &n), "BF2800");
	EXPECT(rsp_list_notification_req(RSP_PMO_ENABLE, &o, &n), "BF280481020640");
	EXPECT(rsp_list_notification_req(RSP_PMO_INSTALL | RSP_PMO_DELETE, &o, &n),
	       "BF280481020490");
	EXPECT(rsp_retrieve_notification_req(5, &o, &n), "BF2B05A003800105");
	EXPECT(rsp_remove_notification_req(5, &o, &n), "BF3003800105");
	EXPECT(rsp_remove_notification_req(128, &o, &n), "BF300480020080");
	EXPECT(rsp_get_profiles_req(NULL, &o, &n), "BF2D00");
	EXPECT(rsp_get_profiles_req(&r, &o, &n), "BF2D0EA00C5A0A98001032547698103214");
	EXPECT(rsp_set_default_dp_req("smdp.example.com", &o, &n),
	       "BF3F1280107"
	       "36D64702E6578616D706C652E636F6D");
	EXPECT(rsp_es10_empty_req(RSP_ES10_GET_EUICC_CHALLENGE, &o, &n), "BF2E00");
	/* by AID */
	assert_esim(ESIM_OK, rsp_profile_ref_parse("A0000005591010FFFFFFFF8900001000", &r));
	assert_true(r.by_aid);
	EXPECT(rsp_delete_profile_req(&r, &o, &n), "BF33124F10A0000005591010FFFFFFFF8900001000");
}

static void test_ref_parse(void **state)
{
	(void)state;
	struct rsp_profile_ref r;
	assert_esim(ESIM_OK, rsp_profile_ref_parse("8949449999999990031", &r)); /* 19 digits */
	uint8_t want[10];
	memcpy(want, r.iccid, 10);
	assert_esim(ESIM_OK, rsp_profile_ref_parse("8949449999999990031F", &r)); /* padded */
	assert_memory_equal(r.iccid, want, 10);
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_profile_ref_parse("12345", &r));
	assert_esim(ESIM_E_RSP_BAD_ICCID, rsp_profile_ref_parse("890001234567890123412", &r));
	assert_int_not_equal(ESIM_OK, rsp_profile_ref_parse("xyz", &r));
	assert_int_not_equal(ESIM_OK, rsp_profile_ref_parse("A0000005", &r)); /* 4 bytes */
	assert_int_not_equal(ESIM_OK, rsp_profile_ref_parse("", &r));
}

static void test_nickname_limits(void **state)
{
	(void)state;
	uint8_t iccid[10] = {0}, *o = NULL;
	size_t n;
	char name[70];
	memset(name, 'x', 64);
	name[64] = '\0';
	assert_esim(ESIM_OK, rsp_set_nickname_req(iccid, name, &o, &n));
	free(o);
	name[64] = 'x';
	name[65] = '\0';
	assert_esim(ESIM_E_RSP_FIELD_SIZE, rsp_set_nickname_req(iccid, name, &o, &n));
	assert_esim(ESIM_E_DER_BAD_UTF8, rsp_set_nickname_req(iccid, "\xC3(", &o, &n));
	/* 64 two-byte characters are fine */
	char wide[140] = "";
	for (int i = 0; i < 64; i++)
		strcat(wide, "\xC3\xA9");
	assert_esim(ESIM_OK, rsp_set_nickname_req(iccid, wide, &o, &n));
	free(o);
}

static void test_parse_results(void **state)
{
	(void)state;
	size_t n;
	uint8_t *p = test_unhex("BF3303800100", &n);
	int64_t code = -1;
	assert_esim(ESIM_OK, rsp_es10_result_parse(p, n, RSP_ES10_DELETE_PROFILE, &code));
	assert_int_equal(code, 0);
	assert_esim(ESIM_E_RSP_BAD_STRUCTURE,
		    rsp_es10_result_parse(p, n, RSP_ES10_ENABLE_PROFILE, &code));
	free(p);
	const char *meaning = NULL;
	assert_string_equal(rsp_es10_result_name(RSP_ES10_DELETE_PROFILE, 2, &meaning),
			    "profileNotInDisabledState");
	assert_non_null(meaning);
	assert_string_equal(rsp_es10_result_name(RSP_ES10_ENABLE_PROFILE, 1, NULL),
			    "iccidOrAidNotFound");
	assert_string_equal(rsp_es10_result_name(RSP_ES10_AUTHENTICATE_SERVER, 7, NULL),
			    "ciPKUnknown");
	assert_null(rsp_es10_result_name(RSP_ES10_SET_NICKNAME, 2, NULL));
	assert_string_equal(rsp_es10_function_name(0xBF31), "EnableProfile");

	p = test_unhex("BF3E125A1089049032123451234512345678901235", &n);
	char eid[33];
	assert_esim(ESIM_OK, rsp_get_eid_parse(p, n, eid));
	assert_string_equal(eid, "89049032123451234512345678901235");
	free(p);

	/* euicc-go's GetEuiccConfiguredAddresses answer */
	p = test_unhex("BF3C2480"
		       "0B6578616D706C652E636F6D"
		       "8115746573747"
		       "26F6F74736D64732E67736D612E636F6D",
		       &n);
	struct rsp_addresses a;
	assert_esim(ESIM_OK, rsp_get_addresses_parse(p, n, &a));
	assert_string_equal(a.default_dp, "example.com");
	assert_string_equal(a.root_ds, "testrootsmds.gsma.com");
	rsp_addresses_free(&a);
	free(p);
}

static void test_parse_profiles(void **state)
{
	(void)state;
	/* two profiles: one enabled with nickname and notification config,
	 * one disabled test profile; unknown tag 9F24 skipped */
	const char *e1 = "5A0A98001032547698103214"
			 "4F10A0000005591010FFFFFFFF8900001000"
			 "9F700101"
			 "90024869"
			 "9103414243"
			 "92034E6574"
			 "B60F300D80020470"
			 "8107736D2E74657374";
	const char *e2 = "5A0A98001032547698103224"
			 "9F700100"
			 "950100"
			 "9F240101"
			 "92025431";
	char buf[1024];
	size_t l1 = strlen(e1) / 2, l2 = strlen(e2) / 2;
	size_t inner = 2 + l1 + 2 + l2;
	snprintf(buf, sizeof buf, "BF2D%02zXA0%02zXE3%02zX%sE3%02zX%s", inner + 2, inner, l1, e1,
		 l2, e2);
	size_t n;
	uint8_t *p = test_unhex(buf, &n);
	struct rsp_profile_list pl;
	int64_t code = 0;
	assert_esim(ESIM_OK, rsp_get_profiles_parse(p, n, &pl, &code));
	assert_int_equal(pl.n, 2);
	assert_string_equal(pl.items[0].iccid, ICCID);
	assert_int_equal(pl.items[0].state, RSP_PROFILE_ENABLED);
	assert_string_equal(pl.items[0].nickname, "Hi");
	assert_string_equal(pl.items[0].spn, "ABC");
	assert_string_equal(pl.items[0].name, "Net");
	assert_int_equal(pl.items[0].aid_len, 16);
	assert_int_equal(pl.items[0].profile_class, RSP_CLASS_OPERATIONAL);
	assert_int_equal(pl.items[0].n_notif, 1);
	assert_int_equal(pl.items[0].notif[0].pmo, RSP_PMO_ALL_LOCAL);
	assert_string_equal(pl.items[0].notif[0].address, "sm.test");
	assert_string_equal(pl.items[1].iccid, "89000123456789012342");
	assert_int_equal(pl.items[1].state, RSP_PROFILE_DISABLED);
	assert_int_equal(pl.items[1].profile_class, RSP_CLASS_TEST);
	assert_null(pl.items[1].nickname);
	rsp_profile_list_free(&pl);
	free(p);
	/* the error form */
	p = test_unhex("BF2D03810101", &n);
	assert_esim(ESIM_E_RSP_EUICC_ERROR, rsp_get_profiles_parse(p, n, &pl, &code));
	assert_int_equal(code, 1);
	free(p);
	/* truncated */
	p = test_unhex("BF2D05A003E301", &n);
	assert_int_not_equal(ESIM_OK, rsp_get_profiles_parse(p, n, &pl, &code));
	free(p);
}

static void test_parse_notifications(void **state)
{
	(void)state;
	/* digest 8.2's NotificationMetadata example inside ListNotification */
	const char *meta = "BF2F2580010581020640"
			   "0C10736D64702E6578616D706C652E636F6D"
			   "5A0A98001032547698103214";
	char buf[256];
	snprintf(buf, sizeof buf, "BF282AA028%s", meta);
	size_t n;
	uint8_t *p = test_unhex(buf, &n);
	struct rsp_notif_list nl;
	int64_t code = 0;
	assert_esim(ESIM_OK, rsp_list_notification_parse(p, n, &nl, &code));
	assert_int_equal(nl.n, 1);
	assert_int_equal(nl.items[0].seq, 5);
	assert_int_equal(nl.items[0].event, RSP_EVENT_ENABLE);
	assert_string_equal(nl.items[0].address, "smdp.example.com");
	assert_string_equal(rsp_event_name(nl.items[0].event), "enable");
	rsp_notif_list_free(&nl);
	free(p);
	p = test_unhex("BF280381017F", &n);
	assert_esim(ESIM_E_RSP_EUICC_ERROR, rsp_list_notification_parse(p, n, &nl, &code));
	assert_int_equal(code, 127);
	free(p);
	/* RetrieveNotificationsList with one OtherSignedNotification (its
	 * metadata only; signature and certificates do not matter here) */
	snprintf(buf, sizeof buf, "BF2B2CA02A3028%s", meta);
	p = test_unhex(buf, &n);
	der_span *items = NULL;
	size_t ni = 0;
	assert_esim(ESIM_OK, rsp_retrieve_notification_parse(p, n, &items, &ni, &code));
	assert_int_equal(ni, 1);
	assert_int_equal(items[0].p[0], 0x30);
	struct rsp_notif_metadata m;
	assert_esim(ESIM_OK, rsp_pending_metadata(items[0].p, items[0].len, &m));
	assert_int_equal(m.seq, 5);
	rsp_notif_metadata_free(&m);
	free(items);
	free(p);
	p = test_unhex("BF2B03810101", &n);
	assert_esim(ESIM_E_RSP_EUICC_ERROR,
		    rsp_retrieve_notification_parse(p, n, &items, &ni, &code));
	assert_int_equal(code, 1);
	free(p);
}

static void test_info(void **state)
{
	(void)state;
	/* digest 5.3's EUICCInfo1 */
	const char *pk = "F54172BDF98A95D65CBEB88A38A1C11D800A85C3";
	char buf[512];
	snprintf(buf, sizeof buf,
		 "BF2035820302020"
		 "0A9160414%sAA160414%s",
		 pk, pk);
	size_t n;
	uint8_t *p = test_unhex(buf, &n);
	struct rsp_euicc_info1 i1;
	assert_esim(ESIM_OK, rsp_euicc_info1_parse(p, n, &i1));
	assert_int_equal(i1.svn[1], 2);
	assert_int_equal(i1.verification.n, 1);
	assert_int_equal(i1.signing.n, 1);
	assert_int_equal(i1.signing.id[0][0], 0xF5);
	free(p);
	/* EUICCInfo2 with the real card's extCardResource and rspCapability */
	snprintf(buf, sizeof buf,
		 "810302030182030202008303010203840D810108820400045BF883022419"
		 "85020640"
		 "88020398"
		 "A9160414%s"
		 "AA160414%s"
		 "8B0102"
		 "0403010000"
		 "0C0454455354",
		 pk, pk);
	char full[600];
	size_t blen = strlen(buf) / 2;
	assert_true(blen < 256);
	snprintf(full, sizeof full, "BF22%s%02zX%s", blen > 127 ? "81" : "", blen, buf);
	p = test_unhex(full, &n);
	struct rsp_euicc_info2 i2;
	assert_esim(ESIM_OK, rsp_euicc_info2_parse(p, n, &i2));
	assert_int_equal(i2.svn[2], 0);
	assert_int_equal(i2.free_nvm, 0x45BF8);
	assert_int_equal(i2.free_ram, 0x2419);
	assert_int_equal(i2.installed_apps, 8);
	assert_true(i2.uicc_capability & 2); /* usimSupport */
	assert_int_equal(i2.rsp_capability, 1u | 8u | 16u);
	assert_string_equal(rsp_rsp_capability_name(3), "testProfileSupport");
	assert_int_equal(i2.category, 2);
	assert_string_equal(i2.sas_number, "TEST");
	assert_int_equal(i2.verification.n, 1);
	free(p);
}

struct ac_case {
	const char *text;
	const char *why_contains; /* NULL: valid */
};

static void test_activation_codes(void **state)
{
	(void)state;
	struct rsp_activation_code ac;
	const char *why = NULL;
	assert_esim(ESIM_OK,
		    rsp_ac_parse("LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815", &ac, &why));
	assert_string_equal(ac.smdp, "SMDP.GSMA.COM");
	assert_string_equal(ac.matching_id, "04386-AGYFT-A74Y8-3F815");
	assert_false(ac.has_oid);
	assert_false(ac.cc_required);
	assert_esim(
	    ESIM_OK,
	    rsp_ac_parse("1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746", &ac, &why));
	assert_true(ac.has_oid);
	assert_string_equal(ac.oid, "1.3.6.1.4.1.31746");
	assert_esim(ESIM_OK, rsp_ac_parse(" LPA:1$smdp.example.com$MATCHID$$1\n", &ac, &why));
	assert_true(ac.cc_required);
	assert_false(ac.has_oid);
	assert_esim(ESIM_OK, rsp_ac_parse("LPA:1$127.0.0.1:8443$X-1$2.999.10$1", &ac, &why));
	assert_string_equal(ac.smdp, "127.0.0.1:8443");
	assert_true(ac.cc_required);

	static const struct ac_case bad[] = {
	    {"", "empty"},
	    {"   ", "empty"},
	    {"LPA:", "not an activation code"},
	    {"hello", "not an activation code"},
	    {"LPA:2$smdp.example.com$MID", "format"},
	    {"LPA:1", "address (field 2) is missing"},
	    {"LPA:1$$MID", "address (field 2) is empty"},
	    {"LPA:1$smdp example.com$MID", "only letters"},
	    {"LPA:1$smdp_example.com$MID", "only letters"},
	    {"LPA:1$.example.com$MID", "not a host name"},
	    {"LPA:1$a..b$MID", "not a host name"},
	    {"LPA:1$smdp.example.com:0$MID", "port"},
	    {"LPA:1$smdp.example.com:99999$MID", "port"},
	    {"LPA:1$smdp.example.com:$MID", "port"},
	    {"LPA:1$smdp.example.com", "matching ID (field 3) is missing"},
	    {"LPA:1$smdp.example.com$", "matching ID (field 3) is empty"},
	    {"LPA:1$smdp.example.com$MID WITH SPACE", "matching ID"},
	    {"LPA:1$smdp.example.com$MID\x01", "matching ID"},
	    {"LPA:1$smdp.example.com$M\xC3\xA9", "matching ID"},
	    {"LPA:1$smdp.example.com$MID$1.3.x", "OID"},
	    {"LPA:1$smdp.example.com$MID$1..3", "OID"},
	    {"LPA:1$smdp.example.com$MID$$2", "confirmation-code flag"},
	    {"LPA:1$smdp.example.com$MID$$yes", "confirmation-code flag"},
	    {"LPA:1$smdp.example.com$MID$$1$extra", "too many"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		esim_err err = rsp_ac_parse(bad[i].text, &ac, &why);
		if (err != ESIM_E_RSP_BAD_ACTIVATION_CODE || why == NULL ||
		    strstr(why, bad[i].why_contains) == NULL)
			fail_msg("'%s': %s / %s", bad[i].text, esim_errname(err), why ? why : "-");
	}
	char big[1100];
	memset(big, 'A', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_esim(ESIM_E_RSP_BAD_ACTIVATION_CODE, rsp_ac_parse(big, &ac, &why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worked_encodings),
	    cmocka_unit_test(test_ref_parse),
	    cmocka_unit_test(test_nickname_limits),
	    cmocka_unit_test(test_parse_results),
	    cmocka_unit_test(test_parse_profiles),
	    cmocka_unit_test(test_parse_notifications),
	    cmocka_unit_test(test_info),
	    cmocka_unit_test(test_activation_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
