/*
 * SM-DP+ tests, in-process: the inventory and its state machine (digest
 * 9.1), ES2+ (9.3) as an operator calls it, and ES9+ (5, 6) driven by the
 * test LPA against real virtual eUICCs on both curves, with the subject
 * and reason code of every failure the server implements.
 */
#include "test_smdp_fixture.h"

#include "esim/der.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_bpp.h"
#include "esim/rsp_es10.h"

static struct sfx F;

static int group_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	sfx_pki(&F);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 8);
	sfx_open_euiccs(&F);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sfx_close(&F);
	return 0;
}

/* ---- inventory ------------------------------------------------------------- */

static void test_import_and_states(void **state)
{
	(void)state;
	size_t n = 0;
	assert_esim(ESIM_OK, smdp_count_state(F.d, SFX_TYPE, SMDP_AVAILABLE, &n));
	assert_int_equal(n, 8);
	char iccid[RSP_ICCID_TEXT_MAX];
	sfx_iccid(1, iccid);
	/* Available -> Allocated -> Linked -> Confirmed -> Released -> Downloaded -> Installed */
	assert_esim(ESIM_E_SMDP_TRANSITION, smdp_tr_confirm(F.d, iccid));
	assert_esim(ESIM_OK, smdp_tr_allocate(F.d, iccid));
	assert_esim(ESIM_E_SMDP_TRANSITION, smdp_tr_allocate(F.d, iccid));
	assert_esim(ESIM_OK, smdp_tr_link(F.d, iccid));
	assert_esim(ESIM_E_SMDP_TRANSITION, smdp_tr_installed(F.d, iccid));
	assert_esim(ESIM_OK, smdp_tr_confirm(F.d, iccid));
	assert_esim(ESIM_E_SMDP_TRANSITION, smdp_tr_downloaded(F.d, iccid));
	assert_esim(ESIM_OK, smdp_tr_release(F.d, iccid));
	assert_esim(ESIM_OK, smdp_tr_downloaded(F.d, iccid));
	assert_esim(ESIM_E_SMDP_TRANSITION, smdp_tr_make_available(F.d, iccid));
	assert_esim(ESIM_OK, smdp_tr_installed(F.d, iccid));
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
	assert_esim(ESIM_E_SMDP_TRANSITION, smdp_tr_error(F.d, iccid));
	assert_esim(ESIM_OK, smdp_tr_make_unavailable(F.d, iccid));
	assert_esim(ESIM_E_SMDP_TRANSITION, smdp_tr_error(F.d, iccid));
	/* Error and back to Available (recycling) */
	sfx_iccid(2, iccid);
	assert_esim(ESIM_OK, smdp_tr_error(F.d, iccid));
	assert_int_equal(sfx_state(&F, 2), SMDP_ERROR);
	assert_esim(ESIM_OK, smdp_tr_make_available(F.d, iccid));
	assert_int_equal(sfx_state(&F, 2), SMDP_AVAILABLE);
	assert_esim(ESIM_E_NOT_FOUND, smdp_tr_allocate(F.d, "89000000000000000000"));
	/* the history names every step */
	char *h = NULL;
	sfx_iccid(1, iccid);
	assert_esim(ESIM_OK, smdp_iccid_history(F.d, iccid, &h));
	assert_non_null(strstr(h, "import STD"));
	assert_non_null(strstr(h, "Downloaded -> Installed"));
	assert_non_null(strstr(h, "Installed -> Unavailable"));
	free(h);
	/* names round-trip */
	for (int s = SMDP_AVAILABLE; s <= SMDP_UNAVAILABLE; s++) {
		enum smdp_state back;
		assert_esim(ESIM_OK, smdp_state_parse(smdp_state_name((enum smdp_state)s), &back));
		assert_int_equal(back, s);
	}
}

static void test_import_errors(void **state)
{
	(void)state;
	size_t n = 99;
	const char *bad = "8900012345000009999,12AB\n";
	assert_esim(ESIM_E_SMDP_CSV, smdp_import_csv(F.d, SFX_TYPE, bad, strlen(bad), &n));
	const char *badki = "89000123450000099997,001010000000001,XYZ\n";
	assert_esim(ESIM_E_SMDP_CSV, smdp_import_csv(F.d, SFX_TYPE, badki, strlen(badki), &n));
	/* all or nothing: the second line duplicates an existing ICCID */
	const char *dup = "89000123450000099997\n89000123450000000011\n";
	assert_esim(ESIM_E_STORE_CONSTRAINT, smdp_import_csv(F.d, SFX_TYPE, dup, strlen(dup), &n));
	enum smdp_state st;
	assert_esim(ESIM_E_NOT_FOUND, smdp_profile_state(F.d, "89000123450000099997", &st));
	assert_esim(ESIM_E_SMDP_UNKNOWN,
		    smdp_import_profile(F.d, "NOPE", "89000123450000099997", NULL));
	assert_esim(ESIM_OK, smdp_import_profile(F.d, SFX_TYPE, "89000123450000099997", "001019"));
	assert_esim(ESIM_OK, smdp_profile_state(F.d, "89000123450000099997", &st));
	assert_int_equal(st, SMDP_AVAILABLE);
	assert_esim(ESIM_E_RSP_BAD_ICCID, smdp_import_profile(F.d, SFX_TYPE, "12AB", NULL));
}

/* ---- ES2+ --------------------------------------------------------------------- */

static void test_es2_orders(void **state)
{
	(void)state;
	json_t *j;
	/* by type: the first Available profile, Allocated */
	j = sfx_es2_ok(&F, "downloadOrder", "\"profileType\":\"STD\"");
	char iccid[RSP_ICCID_TEXT_MAX], fields[256];
	sfx_iccid(1, iccid);
	assert_string_equal(json_string_value(json_object_get(j, "iccid")), iccid);
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_ALLOCATED);
	/* by ICCID with EID: Linked */
	sfx_iccid(2, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"eid\":\"%s\"", iccid, SFX_EID);
	json_decref(sfx_es2_ok(&F, "downloadOrder", fields));
	assert_int_equal(sfx_state(&F, 2), SMDP_LINKED);
	/* errors of DownloadOrder */
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", fields), "8.2.1",
			"3.3");
	json_decref(j);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder",
				    "\"iccid\":\"89000000000000000000\""),
			"8.2.1", "3.9");
	json_decref(j);
	sfx_assert_fail(
	    j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", "\"profileType\":\"NOPE\""),
	    "8.2.5", "3.9");
	json_decref(j);
	/* another operator's type: answered as an unknown one (no probing) */
	sfx_assert_fail(
	    j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", "\"profileType\":\"OTHER\""),
	    "8.2.5", "3.9");
	json_decref(j);
	sfx_iccid(3, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"profileType\":\"OTHER\"", iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", fields), "8.2.5",
			"3.8");
	json_decref(j);
	/* operators are isolated: OP2 cannot touch OP1's profiles, nor tell
	 * them from unknown ones (test_smdp_abuse.c) */
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\"", iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP2_SHA, "OP2", "downloadOrder", fields), "8.2.1",
			"3.9");
	json_decref(j);
	/* the requester must be the certificate's operator; unknown certs refused */
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP2_SHA, "OP1", "downloadOrder", fields), "1.1.1",
			"1.2");
	json_decref(j);
	sfx_assert_fail(j = sfx_es2(&F, NULL, "OP1", "downloadOrder", fields), "1.1.1", "1.2");
	json_decref(j);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", ""), "8.2.1", "2.3");
	json_decref(j);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"eid\":\"123\"", iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", fields), "8.1.1",
			"2.1");
	json_decref(j);
	/* none left */
	for (int i = 0; i < 6; i++)
		json_decref(sfx_es2_ok(&F, "downloadOrder", "\"profileType\":\"STD\""));
	sfx_assert_fail(
	    j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", "\"profileType\":\"STD\""),
	    "8.2.5", "3.7");
	json_decref(j);

	/* ConfirmOrder */
	sfx_iccid(1, iccid);
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"releaseFlag\":false,\"matchingId\":\"MID-1\"", iccid);
	j = sfx_es2_ok(&F, "confirmOrder", fields);
	assert_string_equal(json_string_value(json_object_get(j, "matchingId")), "MID-1");
	assert_string_equal(json_string_value(json_object_get(j, "smdpAddress")), SFX_FQDN);
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_CONFIRMED);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", fields), "8.2.1",
			"3.5");
	json_decref(j);
	sfx_iccid(3, iccid);
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"releaseFlag\":true,\"matchingId\":\"MID-1\"", iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", fields), "8.2.6",
			"3.3");
	json_decref(j);
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"releaseFlag\":true,\"smdsAddress\":\"ds.example\"", iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", fields), "8.1.1",
			"2.2");
	json_decref(j);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"releaseFlag\":true,\"matchingId\":\"\"",
		 iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", fields), "8.1.1",
			"2.2");
	json_decref(j);
	sfx_iccid(2, iccid);
	snprintf(
	    fields, sizeof fields,
	    "\"iccid\":\"%s\",\"releaseFlag\":true,\"eid\":\"89049032123451234512345678901332\"",
	    iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", fields), "8.1.1",
			"3.10");
	json_decref(j);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", "\"iccid\":\"1\""),
			"1.3.1", "2.2");
	json_decref(j);
	/* generated matchingId: 4 groups of 5 + separators */
	j = sfx_es2_ok(
	    &F, "confirmOrder",
	    (snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"releaseFlag\":true", iccid),
	     fields));
	assert_int_equal(strlen(json_string_value(json_object_get(j, "matchingId"))), 23);
	assert_string_equal(json_string_value(json_object_get(j, "eid")), SFX_EID);
	json_decref(j);
	assert_int_equal(sfx_state(&F, 2), SMDP_RELEASED);

	/* ReleaseProfile */
	sfx_iccid(2, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\"", iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "releaseProfile", fields), "8.2.1",
			"3.5");
	json_decref(j);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "releaseProfile",
				    "\"iccid\":\"89000000000000000000\""),
			"8.2.1", "3.9");
	json_decref(j);
	sfx_iccid(1, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\"", iccid);
	json_decref(sfx_es2_ok(&F, "releaseProfile", fields));
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);

	/* CancelOrder */
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"matchingId\":\"WRONG\",\"finalProfileStatusIndicator\":"
		 "\"Available\"",
		 iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "cancelOrder", fields), "8.2.6",
			"3.10");
	json_decref(j);
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"eid\":\"%s\",\"finalProfileStatusIndicator\":\"Available\"",
		 iccid, SFX_EID);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "cancelOrder", fields), "8.1.1",
			"3.10");
	json_decref(j);
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"matchingId\":\"MID-1\",\"finalProfileStatusIndicator\":"
		 "\"Available\"",
		 iccid);
	json_decref(sfx_es2_ok(&F, "cancelOrder", fields));
	assert_int_equal(sfx_state(&F, 1), SMDP_AVAILABLE);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "cancelOrder", fields), "8.2.1", "3.5");
	json_decref(j);
	sfx_iccid(2, iccid); /* its order is linked to SFX_EID: cancelled with it */
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"eid\":\"%s\",\"finalProfileStatusIndicator\":"
		 "\"Unavailable\"",
		 iccid, SFX_EID);
	json_decref(sfx_es2_ok(&F, "cancelOrder", fields));
	assert_int_equal(sfx_state(&F, 2), SMDP_UNAVAILABLE);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "cancelOrder",
				    "\"iccid\":\"89000000000000000000\","
				    "\"finalProfileStatusIndicator\":\"Available\""),
			"8.2.1", "3.9");
	json_decref(j);
}

static void test_es2_resend(void **state)
{
	(void)state;
	const char *body = "{\"header\":{\"functionRequesterIdentifier\":\"OP1\","
			   "\"functionCallIdentifier\":\"same\"},\"profileType\":\"STD\"}";
	char *a = NULL, *b = NULL;
	int st;
	assert_esim(ESIM_OK, smdp_es2(F.d, "downloadOrder", SFX_OP1_SHA, (const uint8_t *)body,
				      strlen(body), &st, &a));
	assert_esim(ESIM_OK, smdp_es2(F.d, "downloadOrder", SFX_OP1_SHA, (const uint8_t *)body,
				      strlen(body), &st, &b));
	/* a resend gets the same answer and claims no second profile */
	assert_string_equal(a, b);
	free(a);
	free(b);
	size_t n;
	assert_esim(ESIM_OK, smdp_count_state(F.d, SFX_TYPE, SMDP_ALLOCATED, &n));
	assert_int_equal(n, 1);
	assert_esim(ESIM_OK, smdp_es2(F.d, "nope", SFX_OP1_SHA, (const uint8_t *)body, strlen(body),
				      &st, &a));
	assert_int_equal(st, 404);
	assert_null(a);
}

/* ---- ES9+: downloads ------------------------------------------------------------ */

static void download_ok(int curve)
{
	char mid[64];
	sfx_order(&F, 1, NULL, NULL, NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[curve]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	assert_false(s.cc_required);
	assert_true(s.pir_success);
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
	/* the operator gets points 3 and 4 */
	size_t pending = 0;
	assert_esim(ESIM_OK, smdp_outbox_pending(F.d, &pending));
	assert_int_equal(pending, 2);
	/* the eUICC has it */
	esim_buf r = ESIM_BUF_INIT;
	uint8_t *req;
	size_t len;
	assert_esim(ESIM_OK, rsp_get_profiles_req(NULL, &req, &len));
	assert_esim(ESIM_OK, euicc_es10(F.e[curve], req, len, &r));
	free(req);
	struct rsp_profile_list pl;
	int64_t code;
	assert_esim(ESIM_OK, rsp_get_profiles_parse(r.data, r.len, &pl, &code));
	assert_int_equal(pl.n, 1);
	char iccid[RSP_ICCID_TEXT_MAX];
	sfx_iccid(1, iccid);
	assert_string_equal(pl.items[0].iccid, iccid);
	assert_string_equal(pl.items[0].spn, "esimkit");
	rsp_profile_list_free(&pl);
	esim_buf_free(&r);
	char *m = NULL;
	assert_esim(ESIM_OK, smdp_metrics(F.d, &m));
	assert_non_null(strstr(m, "smdp_installs_total 1"));
	free(m);
}

static void test_download_nist(void **state)
{
	(void)state;
	download_ok(0);
}

static void test_download_brainpool(void **state)
{
	(void)state;
	download_ok(1);
}

static void test_download_default_smdp(void **state)
{
	(void)state;
	/* default SM-DP+: no matchingId, the order is linked to the EID */
	sfx_order(&F, 3, SFX_EID, "", NULL, true, NULL);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, NULL, NULL));
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 3), SMDP_INSTALLED);
	/* no second order for this EID: the EID is refused (SGP.23) */
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, NULL));
	sfx_assert_lpa_fail(&s, "8.1.1", "3.8");
	lpa_session_clear(&s);
}

static void test_download_linked_other_eid(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, "89049032123451234512345678901332", "LINKED-1", NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	sfx_assert_lpa_fail(&s, "8.1.1", "3.8");
	lpa_session_clear(&s);
	/* an order linked to this EID with the SM-DS event id as matchingId */
	sfx_order(&F, 2, SFX_EID, "EVENT-77", NULL, true, mid);
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, "EVENT-77", NULL));
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 2), SMDP_INSTALLED);
}

static void test_not_released_unknown_mid(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "HELD-1", NULL, false, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, "HELD-1"));
	sfx_assert_lpa_fail(&s, "8.2", "1.2");
	lpa_session_clear(&s);
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, "NO-SUCH-ID"));
	sfx_assert_lpa_fail(&s, "8.2.6", "3.8");
	/* the session ended with the failure */
	char body[256], *out = NULL;
	int st;
	snprintf(body, sizeof body,
		 "{\"transactionId\":\"%s\",\"prepareDownloadResponse\":\"vyEA\"}", s.txid_hex);
	assert_esim(ESIM_OK, smdp_es9(F.d, "getBoundProfilePackage", (const uint8_t *)body,
				      strlen(body), &st, &out));
	assert_non_null(strstr(out, "\"subjectCode\":\"8.10.1\",\"reasonCode\":\"3.9\""));
	free(out);
	lpa_session_clear(&s);
}

static void test_confirmation_code(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "CC-1", "1234", true, mid);
	/* wrong code twice: refused, counted */
	for (int i = 0; i < 2; i++) {
		struct lpa_session s;
		lpa_session_init(&s, &F.drv[0]);
		assert_esim(ESIM_OK, lpa_dl_initiate(&s));
		assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
		assert_false(s.failed);
		assert_true(s.cc_required);
		assert_esim(ESIM_OK, lpa_dl_prepare(&s, "9999"));
		sfx_assert_lpa_fail(&s, "8.2.7", "3.8");
		lpa_session_clear(&s);
	}
	/* the right code works */
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, "1234"));
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);

	/* a third wrong code blocks the order */
	sfx_order(&F, 2, NULL, "CC-2", "5555", true, mid);
	for (int i = 0; i < 3; i++) {
		lpa_session_init(&s, &F.drv[1]);
		assert_esim(ESIM_OK, lpa_dl_initiate(&s));
		assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
		assert_esim(ESIM_OK, lpa_dl_prepare(&s, "0000"));
		sfx_assert_lpa_fail(&s, "8.2.7", i < 2 ? "3.8" : "6.4");
		lpa_session_clear(&s);
	}
	assert_int_equal(sfx_state(&F, 2), SMDP_ERROR);
	lpa_session_init(&s, &F.drv[1]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	sfx_assert_lpa_fail(&s, "8.2.6", "3.8");
	lpa_session_clear(&s);
}

static void test_expiry_and_attempts(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "EXP-1", NULL, true, mid);
	F.offset = 31 * 86400; /* past the default 30-day order lifetime */
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	sfx_assert_lpa_fail(&s, "8.8.5", "4.10");
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_ERROR);
	F.offset = 0;
	/* attempts: 10 authenticateClient per order by default */
	sfx_order(&F, 2, NULL, "ATT-1", NULL, true, mid);
	for (int i = 0; i <= 10; i++) {
		lpa_session_init(&s, &F.drv[0]);
		assert_esim(ESIM_OK, lpa_dl_initiate(&s));
		assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
		if (i < 10)
			assert_false(s.failed);
		else
			sfx_assert_lpa_fail(&s, "8.8.5", "6.4");
		lpa_session_clear(&s);
	}
	assert_int_equal(sfx_state(&F, 2), SMDP_ERROR);
}

/* ---- ES9+: initiateAuthentication checks ----------------------------------------- */

static json_t *call_es9(const char *fn, const char *body, int *status)
{
	char *out = NULL;
	assert_esim(ESIM_OK, smdp_es9(F.d, fn, (const uint8_t *)body, strlen(body), status, &out));
	json_t *j = out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	return j;
}

/* An initiateAuthentication body with a hand-made EUICCInfo1. */
static json_t *initiate_with(const char *addr, const uint8_t svn[3], const uint8_t *verif,
			     const uint8_t *sign)
{
	uint8_t info[64];
	size_t n = 0;
	info[n++] = 0xBF;
	info[n++] = 0x20;
	info[n++] = 5 + 24 + 24;
	info[n++] = 0x82;
	info[n++] = 3;
	memcpy(info + n, svn, 3);
	n += 3;
	const uint8_t *lists[2] = {verif, sign};
	for (int l = 0; l < 2; l++) {
		info[n++] = l == 0 ? 0xA9 : 0xAA;
		info[n++] = 22;
		info[n++] = 0x04;
		info[n++] = 20;
		memcpy(info + n, lists[l], 20);
		n += 20;
	}
	json_t *o = json_object();
	json_object_set_new(o, "smdpAddress", json_string(addr));
	uint8_t chal[16] = {1, 2, 3};
	net_json_set_base64(o, "euiccChallenge", chal, 16);
	net_json_set_base64(o, "euiccInfo1", info, n);
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	int st;
	json_t *j = call_es9("initiateAuthentication", body, &st);
	free(body);
	assert_int_equal(st, 200);
	return j;
}

static void ci_ski(const char *curve, uint8_t out[20])
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s/ci.der", F.pki, curve);
	crypto_cert *c;
	assert_esim(ESIM_OK, crypto_cert_load_file(p, &c));
	size_t n;
	uint8_t buf[CRYPTO_KEY_ID_MAX];
	assert_esim(ESIM_OK, crypto_cert_ski(c, buf, &n));
	assert_int_equal(n, 20);
	memcpy(out, buf, 20);
	crypto_cert_free(c);
}

static void test_initiate_checks(void **state)
{
	(void)state;
	uint8_t nist[20], brp[20], other[20];
	ci_ski("nist", nist);
	ci_ski("brp", brp);
	memset(other, 0x5A, sizeof other);
	const uint8_t v222[3] = {2, 2, 2}, v300[3] = {3, 0, 0}, v130[3] = {1, 3, 0};
	json_t *j = initiate_with(SFX_FQDN, v222, nist, nist);
	sfx_assert_ok(j);
	/* the address is compared case-insensitively */
	json_decref(j);
	j = initiate_with("SMDP.Test.Example", v222, brp, brp);
	sfx_assert_ok(j);
	json_decref(j);
	sfx_assert_fail(j = initiate_with("other.example", v222, nist, nist), "8.8.1", "3.8");
	json_decref(j);
	sfx_assert_fail(j = initiate_with(SFX_FQDN, v300, nist, nist), "8.8.3", "3.1");
	json_decref(j);
	sfx_assert_fail(j = initiate_with(SFX_FQDN, v130, nist, nist), "8.8.3", "3.1");
	json_decref(j);
	sfx_assert_fail(j = initiate_with(SFX_FQDN, v222, nist, other), "8.8.2", "3.1");
	json_decref(j);
	sfx_assert_fail(j = initiate_with(SFX_FQDN, v222, other, nist), "8.8.4", "3.7");
	json_decref(j);
	int st;
	sfx_assert_fail(j = call_es9("initiateAuthentication", "{\"smdpAddress\":\"x\"}", &st),
			"1.3.1", "2.2");
	json_decref(j);
	sfx_assert_fail(j = call_es9("initiateAuthentication", "not json", &st), "1.3.1", "2.1");
	json_decref(j);
	/* unknown transactionIds */
	sfx_assert_fail(
	    j = call_es9("authenticateClient",
			 "{\"transactionId\":\"00112233\",\"authenticateServerResponse\":"
			 "\"vzgA\"}",
			 &st),
	    "8.10.1", "3.9");
	json_decref(j);
	sfx_assert_fail(j = call_es9("getBoundProfilePackage",
				     "{\"transactionId\":\"00112233\",\"prepareDownloadResponse\":"
				     "\"vyEA\"}",
				     &st),
			"8.10.1", "3.9");
	json_decref(j);
	sfx_assert_fail(
	    j = call_es9("cancelSession",
			 "{\"transactionId\":\"XYZ\",\"cancelSessionResponse\":\"vyEA\"}", &st),
	    "8.10.1", "3.9");
	json_decref(j);
	/* handleNotification never fails visibly */
	j = call_es9("handleNotification", "{\"pendingNotification\":\"AAAA\"}", &st);
	assert_int_equal(st, 204);
	assert_null(j);
	j = call_es9("handleNotification", "garbage", &st);
	assert_int_equal(st, 204);
	assert_null(j);
	j = call_es9("noSuchFunction", "{}", &st);
	assert_int_equal(st, 404);
}

/* ---- ES9+: authenticateClient checks --------------------------------------------- */

/* Run AuthenticateServer on drv's eUICC for session s without calling the
 * SM-DP+; the BF38 response into out. */
static void auth_server_only(struct lpa_session *s, const struct lpa_driver *drv, const char *mid,
			     esim_buf *out)
{
	uint8_t *req = NULL;
	size_t len = 0;
	struct rsp_device_info dev = {.tac = {1, 2, 3, 4}};
	assert_esim(ESIM_OK,
		    rsp_auth_server_req_build(s->signed1, s->signed1_len, s->sig1, s->sig1_len,
					      s->pkid, s->pkid_len, s->server_cert,
					      s->server_cert_len, mid, &dev, &req, &len));
	out->len = 0;
	assert_esim(ESIM_OK, drv->es10(drv->es10_ctx, req, len, out));
	free(req);
}

static json_t *auth_client(const char *txid, const uint8_t *p, size_t n)
{
	json_t *o = json_object();
	json_object_set_new(o, "transactionId", json_string(txid));
	net_json_set_base64(o, "authenticateServerResponse", p, n);
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	int st;
	json_t *j = call_es9("authenticateClient", body, &st);
	free(body);
	return j;
}

static void test_authenticate_checks(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "AC-1", NULL, true, mid);
	struct lpa_session s;
	esim_buf r = ESIM_BUF_INIT;
	/* euiccSignature1 tampered: 8.1 / 6.1 */
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	auth_server_only(&s, &F.drv[0], mid, &r);
	struct rsp_auth_server_resp ar;
	assert_esim(ESIM_OK, rsp_auth_server_resp_parse(r.data, r.len, &ar));
	size_t sig_off = (size_t)(ar.euicc_signed1.p - r.data) + ar.euicc_signed1.len + 3;
	r.data[sig_off + 5] ^= 1;
	json_t *j = auth_client(s.txid_hex, r.data, r.len);
	sfx_assert_fail(j, "8.1", "6.1");
	json_decref(j);
	lpa_session_clear(&s);

	/* a challenge is used once: the same response twice */
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	auth_server_only(&s, &F.drv[0], mid, &r);
	j = auth_client(s.txid_hex, r.data, r.len);
	sfx_assert_ok(j);
	json_decref(j);
	j = auth_client(s.txid_hex, r.data, r.len);
	sfx_assert_fail(j, "8.10.1", "3.9");
	json_decref(j);
	lpa_session_clear(&s);

	/* the EUM of another CI than euiccCiPKIdToBeUsed: 8.11.1 / 3.9 (a
	 * brainpool eUICC's answer offered in a NIST session) */
	struct lpa_session s2;
	lpa_session_init(&s, &F.drv[0]);
	lpa_session_init(&s2, &F.drv[1]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_initiate(&s2));
	auth_server_only(&s2, &F.drv[1], mid, &r);
	j = auth_client(s.txid_hex, r.data, r.len);
	sfx_assert_fail(j, "8.11.1", "3.9");
	json_decref(j);
	/* the same response in its own session is fine */
	j = auth_client(s2.txid_hex, r.data, r.len);
	sfx_assert_ok(j);
	json_decref(j);
	lpa_session_clear(&s);
	lpa_session_clear(&s2);
	esim_buf_free(&r);

	/* session time-out */
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	F.offset = 601;
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	sfx_assert_lpa_fail(&s, "8.10.1", "3.9");
	F.offset = 0;
	lpa_session_clear(&s);
}

static void try_cert(euicc *e, const char *subject, const char *reason)
{
	char mid[64];
	static size_t next = 1;
	char want[32];
	snprintf(want, sizeof want, "CERT-%zu", next);
	sfx_order(&F, next++, NULL, want, NULL, true, mid);
	struct lpa_driver drv = {sfx_es10, e, sfx_es9, F.d, SFX_FQDN};
	struct lpa_session s;
	lpa_session_init(&s, &drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	sfx_assert_lpa_fail(&s, subject, reason);
	lpa_session_clear(&s);
	euicc_close(e);
}

static void test_euicc_certificates(void **state)
{
	(void)state;
	char eid[33];
	/* an expired eUICC certificate: 8.1.3 / 6.3 */
	assert_esim(ESIM_OK, crypto_pki_eid_complete("890490320000000000000000000777", eid));
	euicc *e = sfx_euicc_eid_until(&F, "nist", eid, time(NULL) - 60);
	assert_non_null(e);
	try_cert(e, "8.1.3", "6.3");
	/* an EID outside the EUM's permitted prefix 89049032: 8.1.3 / 6.1 */
	assert_esim(ESIM_OK, crypto_pki_eid_complete("890440320000000000000000000777", eid));
	e = sfx_euicc_eid_until(&F, "nist", eid, CRYPTO_PKI_NOT_AFTER_NEVER);
	if (e)
		try_cert(e, "8.1.3", "6.1");
	else
		fprintf(stderr, "note: the virtual eUICC refuses an out-of-range EID itself\n");
}

/* A verified CERT.EUM is kept (es9.c eum_keep), but what depends on the
 * moment is still checked on every use: once cached, the same EUM is
 * refused when the clock has passed its notAfter (10 years in the test
 * PKI), and accepted again when the clock is back. */
static void test_cached_eum_still_checked(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "EUM-CACHE-1", NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid)); /* the EUM is cached now */
	assert_false(s.failed);
	lpa_session_clear(&s);

	F.offset = 11L * 365 * 86400;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	sfx_assert_lpa_fail(&s, "8.1.2", "6.3");
	lpa_session_clear(&s);
	F.offset = 0;

	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_false(s.failed);
	lpa_session_clear(&s);
}

/* ---- retries and CancelSession ------------------------------------------------------- */

static void test_bpp_retry_same_otpk(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "RETRY-1", NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_false(s.has_bound_otpk);
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_false(s.failed);
	uint8_t *first = s.bpp;
	size_t first_len = s.bpp_len;
	s.bpp = NULL;
	/* the download was interrupted: the LPA cancels (loadBppExecutionError) */
	assert_esim(ESIM_OK, lpa_dl_cancel(&s, RSP_CANCEL_LOAD_BPP_ERROR));
	assert_false(s.failed);
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
	/* retry: smdpSigned2 names the bound otPK, the eUICC reuses it, and the
	 * same package comes back, its BF23 signed for the new session */
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_true(s.has_bound_otpk);
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_false(s.failed);
	struct rsp_bpp_view v1, v2;
	assert_esim(ESIM_OK, rsp_bpp_parse(first, first_len, &v1));
	assert_esim(ESIM_OK, rsp_bpp_parse(s.bpp, s.bpp_len, &v2));
	size_t tail1 = first_len - (size_t)(v1.a0.p - first);
	size_t tail2 = s.bpp_len - (size_t)(v2.a0.p - s.bpp);
	assert_int_equal(tail1, tail2);
	assert_memory_equal(v1.a0.p, v2.a0.p, tail1);
	assert_memory_equal(v1.init_sc.otpk_dp, v2.init_sc.otpk_dp, RSP_OTPK_LEN);
	assert_true(rsp_txid_equal(&v2.init_sc.txid, &s.txid));
	assert_esim(ESIM_OK, lpa_dl_load(&s));
	assert_true(s.pir_success);
	assert_esim(ESIM_OK, lpa_dl_notify(&s));
	lpa_session_clear(&s);
	free(first);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
}

static void test_bpp_rebind_other_otpk(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "REBIND-1", NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_false(s.failed);
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_DOWNLOADED);
	/* another eUICC (other otPK) takes the same order: a newly bound package */
	lpa_session_init(&s, &F.drv[1]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);

	/* with rebinding refused: 8.2 / 3.7 */
	sfx_close(&F);
	F.cfg.refuse_rebind = true;
	sfx_open_smdp(&F, NULL, 2);
	sfx_open_euiccs(&F);
	sfx_order(&F, 1, NULL, "REBIND-2", NULL, true, mid);
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_false(s.failed);
	lpa_session_clear(&s);
	lpa_session_init(&s, &F.drv[1]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	sfx_assert_lpa_fail(&s, "8.2", "3.7");
	lpa_session_clear(&s);
}

static void test_cancel_session_reasons(void **state)
{
	(void)state;
	/* reason -> resulting profile state (digest 6.7, impl) */
	static const struct {
		int reason;
		bool after_bpp;
		enum smdp_state want;
	} cases[] = {
	    {RSP_CANCEL_END_USER_REJECTION, false, SMDP_ERROR},
	    {RSP_CANCEL_POSTPONED, false, SMDP_RELEASED},
	    {RSP_CANCEL_TIMEOUT, true, SMDP_RELEASED},
	    {RSP_CANCEL_PPR_NOT_ALLOWED, false, SMDP_ERROR},
	    {RSP_CANCEL_METADATA_MISMATCH, false, SMDP_ERROR},
	    {RSP_CANCEL_LOAD_BPP_ERROR, true, SMDP_RELEASED},
	    {RSP_CANCEL_UNDEFINED, false, SMDP_RELEASED},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char mid[64], want_mid[32];
		snprintf(want_mid, sizeof want_mid, "CANCEL-%zu", i);
		sfx_order(&F, i + 1, NULL, want_mid, NULL, true, mid);
		struct lpa_session s;
		lpa_session_init(&s, &F.drv[i % 2]);
		assert_esim(ESIM_OK, lpa_dl_initiate(&s));
		assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
		if (cases[i].after_bpp) {
			assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
			assert_false(s.failed);
		}
		assert_esim(ESIM_OK, lpa_dl_cancel(&s, cases[i].reason));
		assert_false(s.failed);
		/* the session is gone */
		assert_esim(ESIM_OK, lpa_dl_cancel(&s, cases[i].reason));
		sfx_assert_lpa_fail(&s, "8.10.1", "3.9");
		lpa_session_clear(&s);
		assert_int_equal(sfx_state(&F, i + 1), cases[i].want);
	}
}

static void test_cancel_session_bad(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "CB-1", NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	uint8_t *req;
	size_t len;
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_OK,
		    rsp_cancel_session_req_build(&s.txid, RSP_CANCEL_POSTPONED, &req, &len));
	assert_esim(ESIM_OK, euicc_es10(F.e[0], req, len, &r));
	free(req);
	/* signature tampered (last byte of 5F37) */
	r.data[r.len - 1] ^= 1;
	json_t *o = json_object();
	json_object_set_new(o, "transactionId", json_string(s.txid_hex));
	net_json_set_base64(o, "cancelSessionResponse", r.data, r.len);
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	int st;
	json_t *j = call_es9("cancelSession", body, &st);
	free(body);
	sfx_assert_fail(j, "8.1", "6.1");
	json_decref(j);
	esim_buf_free(&r);
	lpa_session_clear(&s);
}

/* ---- notifications ------------------------------------------------------------------- */

static void test_notifications(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "N-1", NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_esim(ESIM_OK, lpa_dl_load(&s));
	/* the PIR delivered twice (an LPA retry) is handled once */
	assert_esim(ESIM_OK, lpa_dl_notify(&s));
	json_t *o = json_object();
	net_json_set_base64(o, "pendingNotification", s.pir, s.pir_len);
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	int st;
	json_decref(call_es9("handleNotification", body, &st));
	assert_int_equal(st, 204);
	free(body);
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
	char *m = NULL;
	assert_esim(ESIM_OK, smdp_metrics(F.d, &m));
	assert_non_null(strstr(m, "smdp_installs_total 1\n"));
	free(m);
	/* enable then delete on the card: signed notifications to our address */
	char iccid[RSP_ICCID_TEXT_MAX];
	sfx_iccid(1, iccid);
	struct rsp_profile_ref ref;
	assert_esim(ESIM_OK, rsp_profile_ref_parse(iccid, &ref));
	uint8_t *req;
	size_t len;
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, rsp_enable_profile_req(&ref, false, &req, &len));
	assert_esim(ESIM_OK, euicc_es10(F.e[0], req, len, &r));
	free(req);
	size_t sent = 0;
	assert_esim(ESIM_OK, lpa_send_notifications(&F.drv[0], &sent));
	assert_int_equal(sent, 1);
	assert_esim(ESIM_OK, rsp_disable_profile_req(&ref, false, &req, &len));
	r.len = 0;
	assert_esim(ESIM_OK, euicc_es10(F.e[0], req, len, &r));
	free(req);
	assert_esim(ESIM_OK, rsp_delete_profile_req(&ref, &req, &len));
	r.len = 0;
	assert_esim(ESIM_OK, euicc_es10(F.e[0], req, len, &r));
	free(req);
	esim_buf_free(&r);
	assert_esim(ESIM_OK, lpa_send_notifications(&F.drv[0], &sent));
	assert_int_equal(sent, 2);
	char *h = NULL;
	assert_esim(ESIM_OK, smdp_iccid_history(F.d, iccid, &h));
	assert_non_null(strstr(h, "notification enabled"));
	assert_non_null(strstr(h, "notification disabled"));
	assert_non_null(strstr(h, "notification deleted"));
	free(h);
	/* a deleted profile is never handed out again */
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
	json_t *j =
	    sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", "\"iccid\":\"89000123450000000011\"");
	sfx_assert_fail(j, "8.2.1", "3.3");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_import_and_states, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_es2_orders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_es2_resend, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_download_nist, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_download_brainpool, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_download_default_smdp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_download_linked_other_eid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_released_unknown_mid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_confirmation_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_and_attempts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initiate_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_authenticate_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_euicc_certificates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cached_eum_still_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bpp_retry_same_otpk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bpp_rebind_other_otpk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_session_reasons, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_session_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
