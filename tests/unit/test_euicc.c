/*
 * The virtual eUICC through APDUs: identity (GetEID, EUICCInfo1/2),
 * challenge, ES10a addresses (persistent), the ES10c and notification
 * functions on an empty card, GetRAT, and the APDU-level answers to
 * malformed or unknown commands. Downloads and profile life cycles are in
 * test_euicc_download.c.
 */
#include "euicc_harness.h"

#include "esim/cert.h"

static char pki_dir[512];
static char top_dir[400];

static int group_setup(void **state)
{
	(void)state;
	char *d = test_mkdtemp();
	snprintf(top_dir, sizeof top_dir, "%s", d);
	free(d);
	snprintf(pki_dir, sizeof pki_dir, "%s/pki", top_dir);
	h_pki_init(pki_dir, H_EID);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(top_dir);
	return 0;
}

struct fixture {
	struct harness h;
	struct euicc_config cfg;
	char paths[2][4][700];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char *d = test_mkdtemp();
	snprintf(f->h.dir, sizeof f->h.dir, "%s", d);
	free(d);
	h_identity(&f->cfg, pki_dir, "nist", f->paths[0]);
	h_identity(&f->cfg, pki_dir, "brp", f->paths[1]);
	f->cfg.capacity = 100000;
	h_start_cfg(&f->h, &f->cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->h.e != NULL)
		h_stop(&f->h);
	test_rm_rf(f->h.dir);
	free(f);
	return 0;
}

static void test_get_eid(void **state)
{
	struct fixture *f = *state;
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF3E035C015A", &r);
	size_t n;
	uint8_t *want = test_unhex("BF3E125A10" H_EID, &n);
	assert_int_equal(r.len, n);
	assert_memory_equal(r.data, want, n);
	free(want);
	/* the same without a tagList */
	h_es10_hex(&f->h, "BF3E00", &r);
	assert_int_equal(r.len, 21);
	esim_buf_free(&r);
}

static void test_challenge(void **state)
{
	struct fixture *f = *state;
	esim_buf a = ESIM_BUF_INIT, b = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2E00", &a);
	h_es10_hex(&f->h, "BF2E00", &b);
	assert_int_equal(a.len, 2 + 1 + 2 + 16);
	assert_memory_equal(a.data, "\xBF\x2E\x12\x80\x10", 5);
	assert_int_equal(b.len, a.len);
	assert_memory_not_equal(a.data + 5, b.data + 5, 16);
	esim_buf_free(&a);
	esim_buf_free(&b);
}

/* The SKIs of the two CIs of the test PKI. */
static void ci_pkids(uint8_t nist[20], uint8_t brp[20])
{
	char p[700];
	crypto_cert *c = NULL;
	size_t len;
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	snprintf(p, sizeof p, "%s/nist/ci.der", pki_dir);
	assert_esim(ESIM_OK, crypto_cert_load_file(p, &c));
	assert_esim(ESIM_OK, crypto_cert_ski(c, ski, &len));
	assert_int_equal(len, 20);
	memcpy(nist, ski, 20);
	crypto_cert_free(c);
	snprintf(p, sizeof p, "%s/brp/ci.der", pki_dir);
	assert_esim(ESIM_OK, crypto_cert_load_file(p, &c));
	assert_esim(ESIM_OK, crypto_cert_ski(c, ski, &len));
	memcpy(brp, ski, 20);
	crypto_cert_free(c);
}

static void expect_pkid_list(der_cursor *c, uint32_t tag, const uint8_t *a, const uint8_t *b)
{
	der_cursor list;
	der_span s;
	assert_esim(ESIM_OK, der_get_element(c, tag, &list));
	assert_esim(ESIM_OK, der_get_octet_string(&list, 0x04, &s));
	assert_int_equal(s.len, 20);
	assert_memory_equal(s.p, a, 20);
	assert_esim(ESIM_OK, der_get_octet_string(&list, 0x04, &s));
	assert_memory_equal(s.p, b, 20);
	assert_true(der_cursor_empty(&list));
}

static void test_info1(void **state)
{
	struct fixture *f = *state;
	uint8_t nist[20], brp[20];
	ci_pkids(nist, brp);
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2000", &r);
	der_cursor c, v;
	der_span svn;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF20, &v));
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x82, &svn));
	assert_int_equal(svn.len, 3);
	assert_memory_equal(svn.p, "\x02\x02\x02", 3);
	expect_pkid_list(&v, 0xA9, nist, brp);
	expect_pkid_list(&v, 0xAA, nist, brp);
	assert_true(der_cursor_empty(&v));
	esim_buf_free(&r);
}

static void test_info2(void **state)
{
	struct fixture *f = *state;
	uint8_t nist[20], brp[20];
	ci_pkids(nist, brp);
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2200", &r);
	der_cursor c, v;
	der_span s;
	der_bits bits;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF22, &v));
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x81, &s));
	assert_memory_equal(s.p, "\x02\x03\x01", 3); /* SAIP 2.3.1 */
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x82, &s));
	assert_memory_equal(s.p, "\x02\x02\x02", 3); /* SGP.22 2.2.2 */
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x83, &s));
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x84, &s));
	/* no profile: 0 applications, free NVM = the configured capacity */
	assert_int_equal(s.len, 13);
	assert_memory_equal(s.p, "\x81\x01\x00\x82\x04\x00\x01\x86\xA0\x83\x02", 11);
	assert_esim(ESIM_OK, der_get_bit_string(&v, 0x85, &bits));
	assert_true(der_bits_test(&bits, 1)); /* usim */
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x86, &s));
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x87, &s));
	assert_esim(ESIM_OK, der_get_bit_string(&v, 0x88, &bits));
	assert_true(der_bits_test(&bits, 0));  /* additionalProfile */
	assert_false(der_bits_test(&bits, 1)); /* no CRL */
	assert_false(der_bits_test(&bits, 2)); /* no RPM */
	expect_pkid_list(&v, 0xA9, nist, brp);
	expect_pkid_list(&v, 0xAA, nist, brp);
	int64_t cat;
	assert_esim(ESIM_OK, der_get_int64(&v, 0x8B, &cat));
	assert_esim(ESIM_OK, der_get_octet_string(&v, 0x04, &s));
	assert_esim(ESIM_OK, der_get_utf8(&v, 0x0C, &s));
	assert_true(der_cursor_empty(&v));
	esim_buf_free(&r);
}

static void test_addresses_persist(void **state)
{
	struct fixture *f = *state;
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF3C00", &r);
	size_t n;
	uint8_t *want = test_unhex("BF3C11810F6C70612E64732E67736D612E636F6D", &n);
	assert_int_equal(r.len, n);
	assert_memory_equal(r.data, want, n);
	free(want);

	h_es10_hex(&f->h, "BF3F128010736D64702E6578616D706C652E636F6D", &r);
	assert_int_equal(h_result(&r, 0xBF3F), 0);
	/* survives a restart of the card */
	h_stop(&f->h);
	h_start_cfg(&f->h, &f->cfg);
	h_es10_hex(&f->h, "BF3C00", &r);
	want = test_unhex(
	    "BF3C238010736D64702E6578616D706C652E636F6D810F6C70612E64732E67736D612E636F6D", &n);
	assert_int_equal(r.len, n);
	assert_memory_equal(r.data, want, n);
	free(want);
	/* an empty address clears it */
	h_es10_hex(&f->h, "BF3F028000", &r);
	assert_int_equal(h_result(&r, 0xBF3F), 0);
	h_es10_hex(&f->h, "BF3C00", &r);
	assert_int_equal(r.len, 3 + 17);
	esim_buf_free(&r);
}

static void test_empty_card_es10c(void **state)
{
	struct fixture *f = *state;
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2D00", &r);
	assert_int_equal(r.len, 5);
	assert_memory_equal(r.data, "\xBF\x2D\x02\xA0\x00", 5);
	/* a tagList or a search criterion finds nothing either */
	h_es10_hex(&f->h, "BF2D0C5C0A5A4F9F70909192939495", &r);
	assert_memory_equal(r.data, "\xBF\x2D\x02\xA0\x00", 5);
	h_es10_hex(&f->h, "BF2D0EA00C5A0A98001032547698103214", &r);
	assert_memory_equal(r.data, "\xBF\x2D\x02\xA0\x00", 5);
	/* an ICCID of the wrong size is incorrectInputValues */
	h_es10_hex(&f->h, "BF2D05A0035A0198", &r);
	assert_int_equal(h_int_at(&r, 0xBF2D, NULL, 0x81), 1);

	/* iccidOrAidNotFound everywhere */
	h_es10_hex(&f->h, "BF3111A00C5A0A980010325476981032148101FF", &r);
	assert_int_equal(h_result(&r, 0xBF31), 1);
	h_es10_hex(&f->h, "BF3211A00C5A0A98001032547698103214810100", &r);
	assert_int_equal(h_result(&r, 0xBF32), 1);
	h_es10_hex(&f->h, "BF330C5A0A98001032547698103214", &r);
	assert_int_equal(h_result(&r, 0xBF33), 1);
	h_es10_hex(&f->h,
		   "BF3312"
		   "4F10A0000005591010FFFFFFFF8900001000",
		   &r);
	assert_int_equal(h_result(&r, 0xBF33), 1);
	h_es10_hex(&f->h, "BF29155A0A9800103254769810321490074D79206C696E65", &r);
	assert_int_equal(h_result(&r, 0xBF29), 1);
	/* eUICCMemoryReset: nothingToDelete */
	h_es10_hex(&f->h, "BF3404820205E0", &r);
	assert_int_equal(h_result(&r, 0xBF34), 1);
	esim_buf_free(&r);
}

static void test_empty_notifications(void **state)
{
	struct fixture *f = *state;
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2800", &r);
	assert_memory_equal(r.data, "\xBF\x28\x02\xA0\x00", 5);
	h_es10_hex(&f->h, "BF280481020640", &r);
	assert_memory_equal(r.data, "\xBF\x28\x02\xA0\x00", 5);
	h_es10_hex(&f->h, "BF2B00", &r);
	assert_memory_equal(r.data, "\xBF\x2B\x02\xA0\x00", 5);
	h_es10_hex(&f->h, "BF2B05A003800105", &r);
	assert_int_equal(h_int_at(&r, 0xBF2B, NULL, 0x81), 1); /* noResultAvailable */
	h_es10_hex(&f->h, "BF3003800105", &r);
	assert_int_equal(h_result(&r, 0xBF30), 1); /* nothingToDelete */
	esim_buf_free(&r);
}

static void test_get_rat(void **state)
{
	struct fixture *f = *state;
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF4300", &r);
	der_cursor c, v, rule, ops, op;
	der_bits bits;
	der_span mccmnc;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF43, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &v));
	assert_esim(ESIM_OK, der_get_sequence(&v, DER_TAG_DEFAULT, &rule));
	assert_esim(ESIM_OK, der_get_bit_string(&rule, 0x80, &bits));
	assert_true(der_bits_test(&bits, 1) && der_bits_test(&bits, 2));
	assert_esim(ESIM_OK, der_get_element(&rule, 0xA1, &ops));
	assert_esim(ESIM_OK, der_get_sequence(&ops, DER_TAG_DEFAULT, &op));
	assert_esim(ESIM_OK, der_get_octet_string(&op, 0x80, &mccmnc));
	assert_memory_equal(mccmnc.p, "\xEE\xEE\xEE", 3);
	assert_esim(ESIM_OK, der_get_bit_string(&rule, 0x82, &bits));
	assert_true(der_bits_test(&bits, 0));
	esim_buf_free(&r);
}

static void test_malformed_commands(void **state)
{
	struct fixture *f = *state;
	/* unknown ES10 tag, truncated TLV, trailing bytes: 6A80 */
	assert_int_equal(h_es10_sw(&f->h, (const uint8_t *)"\xBF\x99\x00", 3), 0x6A80);
	assert_int_equal(h_es10_sw(&f->h, (const uint8_t *)"\xBF\x2E\x05\x00", 4), 0x6A80);
	assert_int_equal(h_es10_sw(&f->h, (const uint8_t *)"\xBF\x2E\x00\x00", 4), 0x6A80);
	/* a malformed field inside a known command */
	assert_int_equal(h_es10_sw(&f->h, (const uint8_t *)"\xBF\x30\x03\x04\x01\x05", 6), 0x6A80);
	/* BPP pieces outside a download */
	assert_int_equal(h_es10_sw(&f->h, (const uint8_t *)"\xA3\x00", 2), 0x6A80);
	assert_int_equal(
	    h_es10_sw(&f->h, (const uint8_t *)"\xBF\x36\x81\x90\xBF\x23\x03\x82\x01\x01", 10),
	    0x6985);
	/* the card still answers normally afterwards */
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF3E035C015A", &r);
	assert_int_equal(r.len, 21);
	esim_buf_free(&r);
}

/* Identity checks at open: a key that does not match its certificate, or
 * an untrusted CI, are refused. */
static void test_bad_identity(void **state)
{
	(void)state;
	char *d = test_mkdtemp();
	char db[600], p[3][700], ci[700], nist[4][700];
	snprintf(db, sizeof db, "%s/x.db", d);
	struct euicc_config cfg = {.db_url = db};
	h_identity(&cfg, pki_dir, "nist", nist);
	snprintf(p[0], sizeof p[0], "%s/brp/euicc.key.pem", pki_dir);
	cfg.identities[0].key_path = p[0];
	euicc *e = NULL;
	assert_esim(ESIM_E_EUICC_IDENTITY, euicc_open(&cfg, &e));
	cfg.identities[0].key_path = nist[1];
	snprintf(ci, sizeof ci, "%s/brp/ci.der", pki_dir);
	cfg.ci_paths[0] = ci;
	assert_esim(ESIM_E_EUICC_IDENTITY, euicc_open(&cfg, &e));
	cfg.ci_paths[0] = nist[3];
	assert_esim(ESIM_OK, euicc_open(&cfg, &e));
	assert_string_equal(euicc_eid_text(e), H_EID);
	euicc_close(e);
	test_rm_rf(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_get_eid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_challenge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_addresses_persist, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_card_es10c, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_notifications, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_rat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_commands, setup, teardown),
	    cmocka_unit_test(test_bad_identity),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
