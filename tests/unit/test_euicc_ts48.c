/*
 * Every GSMA TS.48 test profile of ../shared/testdata/ts48 installed on the
 * virtual eUICC through APDUs, bound by the test with the SGP.26 DPpb key
 * (the SM-DP+ side of the rsp layer), on an eUICC with the SGP.26 eUICC
 * identity that trusts the SGP.26 CI. Each PIR is verified with the
 * eUICC's key; each profile is listed (disabled, with its ICCID) and then
 * deleted, because several files carry the same ICCID. Needs ../shared
 * (skipped otherwise).
 */
#include <dirent.h>

#include "euicc_harness.h"

static bool contains(const esim_buf *b, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= b->len; i++)
		if (memcmp(b->data + i, needle, n) == 0)
			return true;
	return false;
}

/* RemoveNotificationFromList for everything ListNotification shows. */
static void drain_notifications(struct harness *h)
{
	esim_buf r = ESIM_BUF_INIT, x = ESIM_BUF_INIT;
	h_es10_hex(h, "BF2800", &r);
	der_cursor c, v, list;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF28, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	der_element el;
	esim_err err;
	while (der_next_child(&list, &el, &err)) {
		struct rsp_notif_metadata m;
		assert_esim(ESIM_OK, rsp_notif_metadata_decode(el.tlv.p, el.tlv.len, &m));
		der_builder b;
		uint8_t *cmd;
		size_t len;
		der_builder_init(&b);
		der_builder_open(&b, 0xBF30);
		der_add_uint64(&b, 0x80, m.seq);
		der_builder_close(&b);
		h_finish(&b, &cmd, &len);
		h_es10(h, cmd, len, &x);
		assert_int_equal(h_result(&x, 0xBF30), 0);
		free(cmd);
		rsp_notif_metadata_free(&m);
	}
	esim_buf_free(&r);
	esim_buf_free(&x);
}

static void test_ts48_profiles(void **state)
{
	(void)state;
	const char *td = test_shared_testdata();
	char p[9][700];
	snprintf(p[0], 700, "%s/sgp26/eUICC/CERT_EUICC_ECDSA_NIST.der", td);
	snprintf(p[1], 700, "%s/sgp26/eUICC/SK_EUICC_ECDSA_NIST.pem", td);
	snprintf(p[2], 700, "%s/sgp26/EUM/CERT_EUM_ECDSA_NIST.der", td);
	snprintf(p[3], 700, "%s/sgp26/CertificateIssuer/CERT_CI_ECDSA_NIST.der", td);
	snprintf(p[4], 700, "%s/sgp26/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der", td);
	snprintf(p[5], 700, "%s/sgp26/DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem", td);
	snprintf(p[6], 700, "%s/sgp26/DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der", td);
	snprintf(p[7], 700, "%s/sgp26/DPpb/SK_S_SM_DPpb_ECDSA_NIST.pem", td);
	snprintf(p[8], 700, "%s/ts48", td);

	struct harness h;
	memset(&h, 0, sizeof h);
	char *d = test_mkdtemp();
	snprintf(h.dir, sizeof h.dir, "%s", d);
	free(d);
	struct euicc_config cfg = {.n_identities = 1, .n_ci_paths = 1};
	cfg.identities[0].cert_path = p[0];
	cfg.identities[0].key_path = p[1];
	cfg.identities[0].eum_path = p[2];
	cfg.ci_paths[0] = p[3];
	h_start_cfg(&h, &cfg);
	struct h_smdp dp;
	h_smdp_load(&dp, p[4], p[5], p[6], p[7], p[3]);
	assert_string_equal(dp.oid, "2.999.10");

	DIR *dir = opendir(p[8]);
	assert_non_null(dir);
	struct dirent *ent;
	size_t installed = 0;
	while ((ent = readdir(dir)) != NULL) {
		size_t nl = strlen(ent->d_name);
		if (nl < 5 || strcmp(ent->d_name + nl - 4, ".der") != 0)
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", p[8], ent->d_name);
		size_t ul;
		uint8_t *upp = test_read(path, &ul);
		struct rsp_saip_info info;
		assert_esim(ESIM_OK, rsp_saip_check(upp, ul, &info));
		uint8_t *meta = NULL;
		size_t ml;
		h_metadata(info.iccid, 0, 0, "smdp.example.com", &meta, &ml);
		struct rsp_pir pir;
		h_download(&h, &dp, meta, ml, upp, ul, NULL, &pir);
		if (!pir.success)
			fail_msg("%s: PIR error %d/%d", ent->d_name, (int)pir.bpp_command_id,
				 (int)pir.error_reason);
		rsp_pir_free(&pir);
		/* listed as disabled under its ICCID, then deleted */
		uint8_t bcd[10];
		assert_esim(ESIM_OK, rsp_iccid_to_bcd(info.iccid, bcd));
		esim_buf r = ESIM_BUF_INIT;
		h_es10_hex(&h, "BF2D065C045A9F7095", &r);
		assert_true(contains(&r, bcd, 10));
		assert_true(contains(&r, "\x9F\x70\x01\x00", 4));
		assert_int_equal(h_profile_op(&h, 0xBF31, info.iccid), 0);
		assert_int_equal(h_profile_op(&h, 0xBF32, info.iccid), 0);
		assert_int_equal(h_profile_op(&h, 0xBF33, info.iccid), 0);
		esim_buf_free(&r);
		drain_notifications(&h);
		free(meta);
		free(upp);
		installed++;
	}
	closedir(dir);
	assert_true(installed >= 6);
	h_smdp_free(&dp);
	h_stop(&h);
	test_rm_rf(h.dir);
}

int main(void)
{
	test_require_shared("test_euicc_ts48");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ts48_profiles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
