/*
 * Profile personalisation and eligibility in the SM-DP+ (digest 13.4, 6.3
 * step 10, 7.8, 9.2): IMSI into EF.IMSI and Ki / OPc into akaParameter
 * from a batch, read back by re-parsing the personalised package; the
 * eligibility checks against EUICCInfo2 (SAIP version 8.2.5/4.3, free
 * memory 8.1/4.8); the ReplaceSessionKeys (PPK) binding for a profile type
 * configured with it, installed by the virtual eUICC; and the ES2+ bearer
 * token.
 */
#include "esim/der.h"
#include "esim/rsp_bpp.h"
#include "test_smdp_fixture.h"

static struct sfx F;

static const uint8_t KI[16] = {0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
			       0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF};
static const uint8_t OPC[16] = {0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7,
				0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF};

/* The minimal test package with a usim element (EF.IMSI 001010123456063,
 * as in TS.48) and an akaParameter element (milenage, K = 00..0F, OPc = 0)
 * inserted before the end element. */
static void make_upp(const char *iccid, unsigned major, uint8_t **out, size_t *out_len)
{
	uint8_t *base = NULL;
	size_t base_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(iccid, &base, &base_len));
	der_builder b;
	der_builder_init(&b);
	der_cursor c;
	der_cursor_init(&c, base, base_len);
	der_element e;
	esim_err err;
	bool first = true;
	while (der_next_child(&c, &e, &err)) {
		if (first && major) {
			/* the header again, with another major version */
			der_cursor h = der_cursor_of(e.value);
			der_element x;
			der_builder_open(&b, 0xA0);
			esim_err e2;
			while (der_next_child(&h, &x, &e2)) {
				if (x.tag == 0x80)
					der_add_int64(&b, 0x80, major);
				else
					der_add_raw(&b, x.tlv.p, x.tlv.len);
			}
			der_builder_close(&b);
			first = false;
			continue;
		}
		first = false;
		if (e.tag == 0xAA) {
			static const uint8_t usim[] = {
			    0xB3, 0x1C, 0xA0, 0x05, 0x80, 0x00, 0x81, 0x01, 0x32, 0x81,
			    0x06, 0x67, 0x81, 0x0F, 0x01, 0x02, 0x04, 0xA3, 0x0B, 0x83,
			    0x09, 0x08, 0x09, 0x10, 0x10, 0x10, 0x32, 0x54, 0x06, 0x36};
			/* usim: header id 50, template 2.23.143.1.2.4, ef-imsi (A3) */
			der_add_raw(&b, usim, sizeof usim);
			der_builder_open(&b, 0xA4);
			der_builder_open(&b, 0xA0);
			der_add_int64(&b, 0x81, 51);
			der_builder_close(&b);
			der_builder_open(&b, 0xA1);
			der_builder_open(&b, 0xA1);
			der_add_int64(&b, 0x80, 1); /* milenage */
			der_add_octet_string(&b, 0x81, "\x00", 1);
			uint8_t k[16];
			for (int i = 0; i < 16; i++)
				k[i] = (uint8_t)i;
			der_add_octet_string(&b, 0x82, k, 16);
			memset(k, 0, sizeof k);
			der_add_octet_string(&b, 0x83, k, 16);
			der_builder_close(&b);
			der_builder_close(&b);
			der_builder_close(&b);
		}
		der_add_raw(&b, e.tlv.p, e.tlv.len);
	}
	assert_esim(ESIM_OK, err);
	assert_esim(ESIM_OK, der_builder_finish(&b, out, out_len));
	free(base);
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(*out, *out_len, &info));
	assert_true(info.has_usim);
}

/* What a package carries: EF.IMSI as digits, the first akaParameter's K
 * and OPc (found by walking the package independently of the code under
 * test). */
struct found {
	char imsi[16];
	uint8_t ki[16], opc[16];
	int n_aka;
};

static void parse_upp(const uint8_t *upp, size_t len, struct found *f)
{
	memset(f, 0, sizeof *f);
	der_cursor top;
	der_cursor_init(&top, upp, len);
	der_element pe;
	esim_err err;
	while (der_next_child(&top, &pe, &err)) {
		der_cursor in = der_cursor_of(pe.value);
		if (pe.tag == 0xB3) {
			der_cursor file;
			assert_esim(ESIM_OK, der_get_element(&in, 0xA0, NULL));
			assert_esim(ESIM_OK, der_get_element(&in, 0x81, NULL));
			bool has_adf = false;
			assert_esim(ESIM_OK, der_get_optional(&in, 0xA2, &has_adf, NULL));
			assert_esim(ESIM_OK, der_get_element(&in, 0xA3, &file));
			der_element x;
			esim_err e2;
			while (der_next_child(&file, &x, &e2))
				if (x.tag == 0x83) {
					assert_int_equal(x.value.len, 9);
					assert_esim(ESIM_OK, smdp_imsi_decode(x.value.p, f->imsi));
				}
		} else if (pe.tag == 0xA4) {
			der_cursor conf, par;
			der_span k, o;
			assert_esim(ESIM_OK, der_get_element(&in, 0xA0, NULL));
			assert_esim(ESIM_OK, der_get_element(&in, 0xA1, &conf));
			assert_esim(ESIM_OK, der_get_element(&conf, 0xA1, &par));
			assert_esim(ESIM_OK, der_get_element(&par, 0x80, NULL));
			assert_esim(ESIM_OK, der_get_element(&par, 0x81, NULL));
			assert_esim(ESIM_OK, der_get_octet_string(&par, 0x82, &k));
			assert_esim(ESIM_OK, der_get_octet_string(&par, 0x83, &o));
			assert_int_equal(k.len, 16);
			assert_int_equal(o.len, 16);
			if (f->n_aka++ == 0) {
				memcpy(f->ki, k.p, 16);
				memcpy(f->opc, o.p, 16);
			}
		}
	}
	assert_esim(ESIM_OK, err);
}

static void test_personalise_upp(void **state)
{
	(void)state;
	uint8_t *upp;
	size_t len;
	make_upp(SFX_TEMPLATE, 0, &upp, &len);
	struct found f;
	parse_upp(upp, len, &f);
	assert_string_equal(f.imsi, "001010123456063");
	unsigned done = 0;
	assert_esim(ESIM_OK, smdp_personalise_upp(upp, len, "26201987654321", KI, OPC, &done));
	assert_int_equal(done, SMDP_PERS_IMSI | SMDP_PERS_KI | SMDP_PERS_OPC);
	parse_upp(upp, len, &f);
	assert_string_equal(f.imsi, "26201987654321"); /* even number of digits */
	assert_memory_equal(f.ki, KI, 16);
	assert_memory_equal(f.opc, OPC, 16);
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(upp, len, &info));
	/* only Ki: OPc stays */
	assert_esim(ESIM_OK, smdp_personalise_upp(upp, len, "310150123456789", OPC, NULL, &done));
	assert_int_equal(done, SMDP_PERS_IMSI | SMDP_PERS_KI);
	parse_upp(upp, len, &f);
	assert_string_equal(f.imsi, "310150123456789");
	assert_memory_equal(f.ki, OPC, 16);
	assert_memory_equal(f.opc, OPC, 16);
	/* malformed IMSIs */
	assert_esim(ESIM_E_ARG, smdp_personalise_upp(upp, len, "12345", NULL, NULL, &done));
	assert_esim(ESIM_E_ARG,
		    smdp_personalise_upp(upp, len, "1234567890123456", NULL, NULL, &done));
	assert_esim(ESIM_E_ARG, smdp_personalise_upp(upp, len, "12345a", NULL, NULL, &done));
	free(upp);
	/* a template without usim / akaParameter: nothing to write */
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &len));
	uint8_t *copy = malloc(len);
	memcpy(copy, upp, len);
	assert_esim(ESIM_OK, smdp_personalise_upp(upp, len, "001010000000001", KI, OPC, &done));
	assert_int_equal(done, 0);
	assert_memory_equal(copy, upp, len);
	free(copy);
	free(upp);
}

/* Open the SM-DP+ with the fixture's STD type (no usim), then add type
 * "USIM" of OP1 from make_upp (with the given major version, 0: 2) and
 * the options given. */
static void open_with_usim_type(unsigned major, bool ppk)
{
	sfx_open_smdp(&F, NULL, 0);
	uint8_t *upp;
	size_t len;
	make_upp(SFX_TEMPLATE, major, &upp, &len);
	struct smdp_profile_type t = {.name = "USIM",
				      .operator_name = "OP1",
				      .upp = upp,
				      .upp_len = len,
				      .spn = "esimkit",
				      .profile_name = "USIM profile",
				      .profile_class = 2,
				      .ppk = ppk};
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	free(upp);
}

static void test_import_personalised(void **state)
{
	(void)state;
	open_with_usim_type(0, false);
	const char *csv = "iccid,imsi,ki,opc\n"
			  "89000123450000010010,262019999999991,"
			  "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF,B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF\n"
			  "89000123450000010028,26201888888882,,\n";
	size_t count = 0;
	assert_esim(ESIM_OK, smdp_import_csv(F.d, "USIM", csv, strlen(csv), &count));
	assert_int_equal(count, 2);
	uint8_t *upp;
	size_t len;
	struct found f;
	assert_esim(ESIM_OK, smdp_profile_upp(F.d, "89000123450000010010", &upp, &len));
	parse_upp(upp, len, &f);
	assert_string_equal(f.imsi, "262019999999991");
	assert_memory_equal(f.ki, KI, 16);
	assert_memory_equal(f.opc, OPC, 16);
	assert_int_equal(f.n_aka, 1);
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(upp, len, &info));
	assert_string_equal(info.iccid, "89000123450000010010");
	esim_wipe(upp, len);
	free(upp);
	/* no Ki / OPc in the batch: the template's stay */
	assert_esim(ESIM_OK, smdp_profile_upp(F.d, "89000123450000010028", &upp, &len));
	parse_upp(upp, len, &f);
	assert_string_equal(f.imsi, "26201888888882");
	uint8_t k[16];
	for (int i = 0; i < 16; i++)
		k[i] = (uint8_t)i;
	assert_memory_equal(f.ki, k, 16);
	free(upp);
	char *hist = NULL;
	assert_esim(ESIM_OK, smdp_iccid_history(F.d, "89000123450000010010", &hist));
	assert_non_null(strstr(hist, "personalised: iccid imsi ki opc"));
	assert_null(strstr(hist, "A0A1A2")); /* no key material in the history */
	free(hist);
	assert_esim(ESIM_E_NOT_FOUND, smdp_profile_upp(F.d, "89000123450000000099", &upp, &len));
	/* the personalised profile downloads and installs */
	sfx_open_euiccs(&F);
	char mid[64], iccid[64];
	assert_esim(ESIM_OK, smdp_admin_order(F.d, "OP1", "USIM", "89000123450000010010", NULL,
					      NULL, iccid, mid));
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	assert_true(s.pir_success);
	lpa_session_clear(&s);
	enum smdp_state st;
	assert_esim(ESIM_OK, smdp_profile_state(F.d, "89000123450000010010", &st));
	assert_int_equal(st, SMDP_INSTALLED);
	sfx_close(&F);
}

/* Order one profile of type "USIM" and run the download up to
 * authenticateClient on driver drv. */
static void order_and_authenticate(struct lpa_driver *drv, const char *iccid, struct lpa_session *s)
{
	assert_esim(ESIM_OK, smdp_import_profile(F.d, "USIM", iccid, NULL));
	char mid[64], got[64];
	assert_esim(ESIM_OK, smdp_admin_order(F.d, "OP1", "USIM", iccid, NULL, NULL, got, mid));
	lpa_session_init(s, drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(s));
	assert_false(s->failed);
	assert_esim(ESIM_OK, lpa_dl_authenticate(s, mid));
}

static void test_eligibility_version(void **state)
{
	(void)state;
	/* SAIP 3.3 profile; the virtual eUICC supports 2.3.1 */
	open_with_usim_type(3, false);
	sfx_open_euiccs(&F);
	struct lpa_session s;
	order_and_authenticate(&F.drv[0], "89000123450000000033", &s);
	sfx_assert_lpa_fail(&s, "8.2.5", "4.3");
	lpa_session_clear(&s);
	sfx_close(&F);
}

static void test_eligibility_memory(void **state)
{
	(void)state;
	open_with_usim_type(0, false);
	/* an eUICC with room for less than the package */
	char p[4][700];
	snprintf(p[0], 700, "%s/nist/euicc.der", F.pki);
	snprintf(p[1], 700, "%s/nist/euicc.key.pem", F.pki);
	snprintf(p[2], 700, "%s/nist/eum.der", F.pki);
	snprintf(p[3], 700, "%s/nist/ci.der", F.pki);
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = ":memory:";
	ec.identities[0].cert_path = p[0];
	ec.identities[0].key_path = p[1];
	ec.identities[0].eum_path = p[2];
	ec.n_identities = 1;
	ec.ci_paths[0] = p[3];
	ec.n_ci_paths = 1;
	ec.capacity = 64;
	euicc *e = NULL;
	assert_esim(ESIM_OK, euicc_open(&ec, &e));
	struct lpa_driver drv = {sfx_es10, e, sfx_es9, F.d, SFX_FQDN};
	struct lpa_session s;
	order_and_authenticate(&drv, "89000123450000000041", &s);
	sfx_assert_lpa_fail(&s, "8.1", "4.8");
	lpa_session_clear(&s);
	euicc_close(e);
	sfx_close(&F);
}

static void test_ppk(void **state)
{
	(void)state;
	open_with_usim_type(0, true);
	for (int c = 0; c < 2; c++) {
		char iccid[32], prefix[31], eid[33];
		snprintf(iccid, sizeof iccid, "8900012345000000005%d", c);
		/* an eUICC of its own EID per curve (notifications are per EID) */
		snprintf(prefix, sizeof prefix, "89049032000000000000000000300%d", c);
		assert_esim(ESIM_OK, crypto_pki_eid_complete(prefix, eid));
		euicc *e = sfx_euicc_eid(&F, c == 0 ? "nist" : "brp", eid);
		struct lpa_driver drv = {sfx_es10, e, sfx_es9, F.d, SFX_FQDN};
		struct lpa_session s;
		order_and_authenticate(&drv, iccid, &s);
		assert_false(s.failed);
		assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
		assert_false(s.failed);
		/* the package carries ReplaceSessionKeys (A2) */
		struct rsp_bpp_view v;
		assert_esim(ESIM_OK, rsp_bpp_parse(s.bpp, s.bpp_len, &v));
		assert_non_null(v.a2.p);
		assert_esim(ESIM_OK, lpa_dl_load(&s));
		assert_true(s.pir_success);
		assert_esim(ESIM_OK, lpa_dl_notify(&s));
		lpa_session_clear(&s);
		enum smdp_state st;
		assert_esim(ESIM_OK, smdp_profile_state(F.d, iccid, &st));
		assert_int_equal(st, SMDP_INSTALLED);
		euicc_close(e);
	}
	/* a type without PPK: no A2 */
	struct lpa_session s;
	char mid[64];
	sfx_close(&F);
	sfx_open_smdp(&F, NULL, 1);
	sfx_open_euiccs(&F);
	sfx_order(&F, 1, NULL, NULL, NULL, true, mid);
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	struct rsp_bpp_view v;
	assert_esim(ESIM_OK, rsp_bpp_parse(s.bpp, s.bpp_len, &v));
	assert_null(v.a2.p);
	lpa_session_clear(&s);
	sfx_close(&F);
}

static json_t *es2_bearer(const char *auth, const char *call)
{
	char body[256];
	snprintf(body, sizeof body,
		 "{\"header\":{\"functionRequesterIdentifier\":\"OP1\","
		 "\"functionCallIdentifier\":\"%s\"},\"profileType\":\"STD\"}",
		 call);
	int status = 0;
	char *out = NULL;
	assert_esim(ESIM_OK, smdp_es2_auth(F.d, "downloadOrder", SFX_OP1_SHA, auth,
					   (const uint8_t *)body, strlen(body), &status, &out));
	assert_int_equal(status, 200);
	json_t *j = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(j);
	return j;
}

static void test_bearer(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 2);
	/* no token configured: the certificate is enough */
	json_t *j = es2_bearer(NULL, "b1");
	sfx_assert_ok(j);
	json_decref(j);
	assert_esim(ESIM_OK, smdp_set_operator_token(F.d, "OP1", "s3cret-token"));
	assert_esim(ESIM_E_SMDP_UNKNOWN, smdp_set_operator_token(F.d, "NOPE", "x"));
	j = es2_bearer(NULL, "b2");
	sfx_assert_fail(j, "1.1.1", "1.2");
	json_decref(j);
	j = es2_bearer("Bearer wrong-token", "b3");
	sfx_assert_fail(j, "1.1.1", "1.2");
	json_decref(j);
	j = es2_bearer("Basic s3cret-token", "b4");
	sfx_assert_fail(j, "1.1.1", "1.2");
	json_decref(j);
	j = es2_bearer("Bearer s3cret-token", "b5");
	sfx_assert_ok(j);
	json_decref(j);
	/* smdp_es2 (no header) is refused too; removing the token lifts it */
	j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", "\"profileType\":\"STD\"");
	sfx_assert_fail(j, "1.1.1", "1.2");
	json_decref(j);
	assert_esim(ESIM_OK, smdp_set_operator_token(F.d, "OP1", NULL));
	j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "downloadOrder", "\"iccid\":\"89000123450000000011\"");
	sfx_assert_fail(j, "8.2.1", "3.3"); /* past the caller check: already allocated */
	json_decref(j);
	sfx_close(&F);
}

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_personalise_upp),
	    cmocka_unit_test(test_import_personalised),
	    cmocka_unit_test(test_eligibility_version),
	    cmocka_unit_test(test_eligibility_memory),
	    cmocka_unit_test(test_ppk),
	    cmocka_unit_test(test_bearer),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
