/*
 * The GSMA SGP.26 test certificates (../shared/testdata/sgp26 and
 * sgp26-invalid) through cert.c, trust.c and chain.c: every certificate
 * must chain to the test CI of its curve with the role its folder says,
 * the PKIDs, EID and SM-DP+ OID must read as SGP.26 publishes them, and
 * each deliberately broken certificate must fail with its own error.
 * Needs ../shared (skipped when absent).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esim/cert.h"
#include "testutil.h"

#define NIST_PKID "F54172BDF98A95D65CBEB88A38A1C11D800A85C3"
#define BRP_PKID  "C0BC70BA36929D43B467FF57570530E57AB8FCD8"
#define SGP26_EID "89049032123451234512345678901235"
/* 2026-06-01T00:00:00Z: every SGP.26 certificate, DPtls included, is valid. */
#define BEFORE_TLS_EXPIRY ((time_t)1780272000)

struct fixture {
	crypto_trust *trust;
	const crypto_cert *ci_nist, *ci_brp; /* borrowed from trust */
	crypto_cert *eum_nist, *eum_brp;
	crypto_cert *euicc_nist;
};

static crypto_cert *load(const char *rel)
{
	char path[4200];
	crypto_cert *c = NULL;

	test_path(path, sizeof path, "%s/%s", test_shared_testdata(), rel);
	assert_esim(ESIM_OK, crypto_cert_load_file(path, &c));
	return c;
}

static const crypto_cert *trusted(const crypto_trust *t, const char *pkid_hex)
{
	size_t len;
	uint8_t *pkid = test_unhex(pkid_hex, &len);
	const crypto_cert *ci = crypto_trust_find(t, pkid, len);

	free(pkid);
	return ci;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char path[4200];

	assert_non_null(f);
	assert_esim(ESIM_OK, crypto_trust_new(&f->trust));
	assert_esim(ESIM_OK,
		    crypto_trust_add_ci_file(
			f->trust, test_path(path, sizeof path,
					    "%s/sgp26/CertificateIssuer/CERT_CI_ECDSA_NIST.der",
					    test_shared_testdata())));
	assert_esim(ESIM_OK,
		    crypto_trust_add_ci_file(
			f->trust, test_path(path, sizeof path,
					    "%s/sgp26/CertificateIssuer/CERT_CI_ECDSA_BRP.pem",
					    test_shared_testdata())));
	assert_int_equal(crypto_trust_count(f->trust), 2);
	f->ci_nist = trusted(f->trust, NIST_PKID);
	f->ci_brp = trusted(f->trust, BRP_PKID);
	assert_non_null(f->ci_nist);
	assert_non_null(f->ci_brp);
	f->eum_nist = load("sgp26/EUM/CERT_EUM_ECDSA_NIST.der");
	f->eum_brp = load("sgp26/EUM/CERT_EUM_ECDSA_BRP.der");
	f->euicc_nist = load("sgp26/eUICC/CERT_EUICC_ECDSA_NIST.der");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	crypto_cert_free(f->euicc_nist);
	crypto_cert_free(f->eum_brp);
	crypto_cert_free(f->eum_nist);
	crypto_trust_free(f->trust);
	free(f);
	return 0;
}

static void assert_ski_hex(const crypto_cert *c, const char *hex)
{
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t len;
	char *got;

	assert_esim(ESIM_OK, crypto_cert_ski(c, ski, &len));
	got = esim_hex_encode(ski, len, true);
	assert_non_null(got);
	assert_string_equal(got, hex);
	free(got);
}

static void test_ci_pkids(void **state)
{
	struct fixture *f = *state;
	crypto_curve curve;
	char rid[32];

	assert_ski_hex(f->ci_nist, NIST_PKID);
	assert_ski_hex(f->ci_brp, BRP_PKID);
	assert_ptr_equal(crypto_trust_get(f->trust, 0), f->ci_nist);
	assert_ptr_equal(crypto_trust_get(f->trust, 1), f->ci_brp);
	assert_esim(ESIM_OK, crypto_cert_curve(f->ci_nist, &curve));
	assert_int_equal(curve, CRYPTO_CURVE_P256);
	assert_esim(ESIM_OK, crypto_cert_curve(f->ci_brp, &curve));
	assert_int_equal(curve, CRYPTO_CURVE_BRAINPOOLP256R1);
	assert_esim(ESIM_OK, crypto_cert_registered_id(f->ci_nist, rid, sizeof rid));
	assert_string_equal(rid, "2.999.1");
	assert_esim(ESIM_OK, crypto_cert_check_ca(f->ci_nist));
}

static const struct folder {
	const char *dir;
	crypto_rsp_role role;
} folders[] = {
    {"CertificateIssuer", CRYPTO_ROLE_CI}, {"EUM", CRYPTO_ROLE_EUM},
    {"eUICC", CRYPTO_ROLE_EUICC},	   {"DPauth", CRYPTO_ROLE_DP_AUTH},
    {"DPpb", CRYPTO_ROLE_DP_PB},	   {"DPtls", CRYPTO_ROLE_DP_TLS},
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* One SGP.26 certificate file: role from its folder, curve from its name
 * (or, for the DP2/DP4/DP8 TLS certificates, from the CI its AKI names),
 * a good chain to that CI, and PEM identical to its DER sibling. */
static void check_file(const struct fixture *f, const struct folder *fo, const char *name)
{
	char rel[512];
	crypto_cert *c;
	crypto_rsp_role role;
	crypto_curve curve, want_curve;
	const crypto_cert *want_ci, *ci = NULL;
	const crypto_cert *im[1];
	struct crypto_chain_opts o = {.check_time = true, .now = BEFORE_TLS_EXPIRY};

	snprintf(rel, sizeof rel, "sgp26/%s/%s", fo->dir, name);
	c = load(rel);
	assert_esim(ESIM_OK, crypto_cert_role(c, &role));
	if (role != fo->role)
		fail_msg("%s: role %s, expected %s", rel, crypto_rsp_role_name(role),
			 crypto_rsp_role_name(fo->role));
	if (strstr(name, "_NIST") != NULL) {
		want_ci = f->ci_nist;
	} else if (strstr(name, "_BRP") != NULL) {
		want_ci = f->ci_brp;
	} else {
		uint8_t aki[CRYPTO_KEY_ID_MAX];
		size_t aki_len;

		assert_esim(ESIM_OK, crypto_cert_aki(c, aki, &aki_len));
		want_ci = crypto_trust_find(f->trust, aki, aki_len);
		/* SGP.26 issues the extra SM-DP+ TLS certificates under the NIST CI. */
		assert_ptr_equal(want_ci, f->ci_nist);
	}
	want_curve = want_ci == f->ci_nist ? CRYPTO_CURVE_P256 : CRYPTO_CURVE_BRAINPOOLP256R1;
	assert_esim(ESIM_OK, crypto_cert_curve(c, &curve));
	assert_int_equal(curve, want_curve);

	im[0] = want_ci == f->ci_nist ? f->eum_nist : f->eum_brp;
	assert_esim(ESIM_OK, crypto_chain_verify(f->trust, c, im, 1, fo->role, &o, &ci));
	assert_ptr_equal(ci, want_ci);
	if (fo->role != CRYPTO_ROLE_CI)
		assert_esim(ESIM_OK, crypto_cert_verify_signed_by(
					 c, fo->role == CRYPTO_ROLE_EUICC ? im[0] : want_ci));
	/* Against the other curve's CI alone, the chain must not pass. */
	{
		crypto_trust *other;
		const crypto_cert *other_ci = want_ci == f->ci_nist ? f->ci_brp : f->ci_nist;
		esim_err err;

		assert_esim(ESIM_OK, crypto_trust_new(&other));
		assert_esim(ESIM_OK, crypto_trust_add_ci(other, other_ci));
		err = crypto_chain_verify(other, c, im, 1, fo->role, &o, NULL);
		assert_esim(ESIM_E_CERT_UNKNOWN_CI, err);
		crypto_trust_free(other);
	}

	if (ends_with(name, ".pem")) {
		crypto_cert *d;
		size_t n1, n2;
		const uint8_t *b1, *b2;

		snprintf(rel, sizeof rel, "sgp26/%s/%.*s.der", fo->dir, (int)(strlen(name) - 4),
			 name);
		d = load(rel);
		b1 = crypto_cert_der(c, &n1);
		b2 = crypto_cert_der(d, &n2);
		assert_int_equal(n1, n2);
		assert_memory_equal(b1, b2, n1);
		crypto_cert_free(d);
	}
	crypto_cert_free(c);
}

static void test_every_certificate(void **state)
{
	struct fixture *f = *state;
	size_t count = 0;

	for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++) {
		char dir[4200];
		DIR *d;
		struct dirent *e;
		size_t here = 0;

		test_path(dir, sizeof dir, "%s/sgp26/%s", test_shared_testdata(), folders[i].dir);
		d = opendir(dir);
		assert_non_null(d);
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "CERT_", 5) != 0 ||
			    (!ends_with(e->d_name, ".der") && !ends_with(e->d_name, ".pem")))
				continue;
			check_file(f, &folders[i], e->d_name);
			here++;
		}
		closedir(d);
		if (here == 0)
			fail_msg("no certificate in %s", dir);
		count += here;
	}
	/* 4 CI, 2 EUM, 2 eUICC, 4 DPauth, 4 DPpb, 7 DPtls files today. */
	assert_true(count >= 23);
}

static void test_fields(void **state)
{
	struct fixture *f = *state;
	char eid[CRYPTO_EID_DIGITS + 1], rid[32];
	crypto_cert *c;

	assert_esim(ESIM_OK, crypto_cert_eid(f->euicc_nist, eid));
	assert_string_equal(eid, SGP26_EID);
	assert_true(crypto_eid_check_digits(eid));
	assert_esim(ESIM_OK, crypto_cert_eid_permitted(f->eum_nist, eid));
	assert_esim(ESIM_OK, crypto_cert_eid_permitted(f->eum_brp, eid));
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE,
		    crypto_cert_eid_permitted(f->eum_nist, "89049033123451234512345678901234"));
	assert_esim(ESIM_E_NOT_FOUND, crypto_cert_registered_id(f->euicc_nist, rid, sizeof rid));
	assert_esim(ESIM_E_CERT_NO_EID, crypto_cert_eid(f->eum_nist, eid));

	c = load("sgp26/eUICC/CERT_EUICC_ECDSA_BRP.der");
	assert_esim(ESIM_OK, crypto_cert_eid(c, eid));
	assert_string_equal(eid, SGP26_EID);
	crypto_cert_free(c);

	c = load("sgp26/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der");
	assert_esim(ESIM_OK, crypto_cert_registered_id(c, rid, sizeof rid));
	assert_string_equal(rid, "2.999.10");
	crypto_cert_free(c);
	c = load("sgp26/DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der");
	assert_esim(ESIM_OK, crypto_cert_registered_id(c, rid, sizeof rid));
	assert_string_equal(rid, "2.999.10");
	crypto_cert_free(c);
	c = load("sgp26/DPauth/CERT_S_SM_DP2auth_ECDSA_NIST.der");
	assert_esim(ESIM_OK, crypto_cert_registered_id(c, rid, sizeof rid));
	assert_string_equal(rid, "2.999.12");
	crypto_cert_free(c);
	assert_esim(ESIM_OK, crypto_cert_registered_id(f->eum_nist, rid, sizeof rid));
	assert_string_equal(rid, "2.999.5");
}

/* The SGP.26 SM-DP+ TLS certificates expired on 2 August 2026. */
static void test_dptls_expiry(void **state)
{
	struct fixture *f = *state;
	static const char *files[] = {"sgp26/DPtls/CERT_S_SM_DP_TLS_NIST.der",
				      "sgp26/DPtls/CERT_S_SM_DP_TLS_BRP.pem",
				      "sgp26/DPtls/CERT_S_SM_DP8_TLS.der"};

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		crypto_cert *c = load(files[i]);
		struct crypto_chain_opts now = {.check_time = true, .now = time(NULL)};
		struct crypto_chain_opts before = {.check_time = true, .now = BEFORE_TLS_EXPIRY};

		assert_esim(
		    ESIM_E_CERT_EXPIRED,
		    crypto_chain_verify(f->trust, c, NULL, 0, CRYPTO_ROLE_DP_TLS, &now, NULL));
		assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(c, time(NULL)));
		assert_esim(ESIM_OK, crypto_chain_verify(f->trust, c, NULL, 0, CRYPTO_ROLE_DP_TLS,
							 &before, NULL));
		/* One second past notAfter (2026-08-02 13:14:3x): expired. */
		assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(c, (time_t)1785676480));
		crypto_cert_free(c);
	}
}

static esim_err verify_euicc_with(const struct fixture *f, const crypto_cert *leaf,
				  const crypto_cert *eum, bool check_time)
{
	struct crypto_chain_opts o = {.check_time = check_time, .now = time(NULL)};
	const crypto_cert *im[1] = {eum};
	return crypto_chain_verify(f->trust, leaf, im, 1, CRYPTO_ROLE_EUICC, &o, NULL);
}

/* sgp26-invalid: what each file really is (see openssl x509 -text) and the
 * error that follows from it. */
static void test_invalid(void **state)
{
	struct fixture *f = *state;
	crypto_cert *c, *uci;
	char eid[CRYPTO_EID_DIGITS + 1];
	crypto_rsp_role role;

	/* eUICC valid 2010..2015, correctly signed by the SGP.26 EUM. */
	c = load("sgp26-invalid/CERT_EUICC_ECDSA_NIST_EXPIRED.der");
	assert_esim(ESIM_E_CERT_EXPIRED, verify_euicc_with(f, c, f->eum_nist, true));
	assert_esim(ESIM_OK, verify_euicc_with(f, c, f->eum_nist, false));
	crypto_cert_free(c);

	/* eUICC self-signed with the eUICC key, without AKI: nothing names its
	 * issuer, and the EUM's key does not verify it. */
	c = load("sgp26-invalid/CERT_EUICC_ECDSA_NIST_INVALID.der");
	assert_esim(ESIM_E_CERT_NO_AKI, verify_euicc_with(f, c, f->eum_nist, true));
	assert_esim(ESIM_E_CERT_BAD_SIGNATURE, crypto_cert_verify_signed_by(c, f->eum_nist));
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(c, c));
	crypto_cert_free(c);

	/* EID 89049033...: well formed (32 digits) but outside the EUM's
	 * permitted prefix 89049032. */
	c = load("sgp26-invalid/CERT_EUICC_ECDSA_NIST_INVALID_EID.der");
	assert_esim(ESIM_OK, crypto_cert_eid(c, eid));
	assert_string_equal(eid, "89049033123451234512345678901234");
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, verify_euicc_with(f, c, f->eum_nist, true));
	crypto_cert_free(c);
	c = load("sgp26-invalid/CERT_EUICC_ECDSA_NIST_INVALID_EID.pem");
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, verify_euicc_with(f, c, f->eum_nist, true));
	crypto_cert_free(c);

	/* EID ...1299: inside the EUM's range and correctly signed, so the chain
	 * is valid; it is another EID than the test eUICC's (a profile-binding
	 * mismatch for the SM-DP+, not a certificate error), and its SGP.29 check
	 * digits are wrong. */
	c = load("sgp26-invalid/CERT_EUICC_ECDSA_NIST_UNMATCHED_EID.der");
	assert_esim(ESIM_OK, verify_euicc_with(f, c, f->eum_nist, true));
	assert_esim(ESIM_OK, crypto_cert_eid(c, eid));
	assert_string_equal(eid, "89049032123451234512345678901299");
	assert_string_not_equal(eid, SGP26_EID);
	assert_false(crypto_eid_check_digits(eid));
	crypto_cert_free(c);
	c = load("sgp26-invalid/CERT_EUICC_ECDSA_NIST_UNMATCHED_EID.pem");
	assert_esim(ESIM_OK, verify_euicc_with(f, c, f->eum_nist, true));
	crypto_cert_free(c);

	/* EUM valid 2010..2015, signed by the CI; it also carries the DPauth
	 * policy and no basicConstraints, which the time check comes before. */
	c = load("sgp26-invalid/CERT_EUM_ECDSA_NIST_EXPIRED.der");
	assert_esim(ESIM_E_CERT_EXPIRED, verify_euicc_with(f, f->euicc_nist, c, true));
	assert_esim(ESIM_E_CERT_WRONG_ROLE, verify_euicc_with(f, f->euicc_nist, c, false));
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(c, f->ci_nist));
	crypto_cert_free(c);

	/* EUM self-signed (same key as the SGP.26 EUM), no AKI: the CI did not
	 * sign it and it names no CI. */
	c = load("sgp26-invalid/CERT_EUM_ECDSA_NIST_INVALID.der");
	assert_esim(ESIM_E_CERT_NO_AKI, verify_euicc_with(f, f->euicc_nist, c, true));
	assert_esim(ESIM_E_CERT_BAD_SIGNATURE, crypto_cert_verify_signed_by(c, f->ci_nist));
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(f->euicc_nist, c));
	crypto_cert_free(c);

	/* EUM issued by "Unknown CI" (AKI 8466D9...), which signed it indeed. */
	c = load("sgp26-invalid/CERT_EUM_ECDSA_NIST_UNKNOWN_CI.der");
	uci = load("sgp26-invalid/CERT_UNKNOWN_CI_ECDSA_NIST.der");
	assert_esim(ESIM_E_CERT_UNKNOWN_CI, verify_euicc_with(f, f->euicc_nist, c, true));
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(c, uci));
	/* The unknown CI is a bare certificate (no extensions): no RSP role,
	 * no SKI; it cannot become trusted, and is no trusted CI as a leaf. */
	assert_esim(ESIM_E_CERT_NO_ROLE, crypto_cert_role(uci, &role));
	assert_esim(ESIM_E_CERT_NO_ROLE, crypto_trust_add_ci(f->trust, uci));
	assert_int_equal(crypto_trust_count(f->trust), 2);
	assert_esim(ESIM_E_CERT_NO_ROLE,
		    crypto_chain_verify(f->trust, uci, NULL, 0, CRYPTO_ROLE_CI, NULL, NULL));
	/* Even presented next to its EUM, the chain ends at an untrusted CI. */
	{
		const crypto_cert *im[2] = {uci, c};
		assert_esim(ESIM_E_CERT_UNKNOWN_CI,
			    crypto_chain_verify(f->trust, f->euicc_nist, im, 2, CRYPTO_ROLE_EUICC,
						NULL, NULL));
	}
	crypto_cert_free(uci);
	crypto_cert_free(c);

	/* The good SGP.26 eUICC without its EUM, and with one bit of its
	 * signature flipped. */
	assert_esim(
	    ESIM_E_CERT_MISSING_ISSUER,
	    crypto_chain_verify(f->trust, f->euicc_nist, NULL, 0, CRYPTO_ROLE_EUICC, NULL, NULL));
	{
		size_t len;
		const uint8_t *der = crypto_cert_der(f->euicc_nist, &len);
		uint8_t *copy = malloc(len);

		assert_non_null(copy);
		memcpy(copy, der, len);
		copy[len - 1] ^= 0x80;
		assert_esim(ESIM_OK, crypto_cert_load(copy, len, &c));
		assert_esim(ESIM_E_CERT_BAD_SIGNATURE, verify_euicc_with(f, c, f->eum_nist, true));
		crypto_cert_free(c);
		free(copy);
	}
}

/* Every file in sgp26-invalid is covered above; a new one must be added. */
static void test_invalid_folder_known(void **state)
{
	static const char *known[] = {
	    "CERT_EUICC_ECDSA_NIST_EXPIRED.der",       "CERT_EUICC_ECDSA_NIST_INVALID.der",
	    "CERT_EUICC_ECDSA_NIST_INVALID_EID.der",   "CERT_EUICC_ECDSA_NIST_INVALID_EID.pem",
	    "CERT_EUICC_ECDSA_NIST_UNMATCHED_EID.der", "CERT_EUICC_ECDSA_NIST_UNMATCHED_EID.pem",
	    "CERT_EUM_ECDSA_NIST_EXPIRED.der",	       "CERT_EUM_ECDSA_NIST_INVALID.der",
	    "CERT_EUM_ECDSA_NIST_UNKNOWN_CI.der",      "CERT_UNKNOWN_CI_ECDSA_NIST.der",
	};
	char dir[4200];
	DIR *d;
	struct dirent *e;
	size_t seen = 0;

	(void)state;
	test_path(dir, sizeof dir, "%s/sgp26-invalid", test_shared_testdata());
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		bool found = false;

		if (e->d_name[0] == '.')
			continue;
		for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
			found = found || strcmp(known[i], e->d_name) == 0;
		if (!found)
			fail_msg("sgp26-invalid/%s is not covered by test_invalid", e->d_name);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, sizeof known / sizeof known[0]);
}

int main(void)
{
	test_require_shared("SGP.26 certificates");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ci_pkids), cmocka_unit_test(test_every_certificate),
	    cmocka_unit_test(test_fields),   cmocka_unit_test(test_dptls_expiry),
	    cmocka_unit_test(test_invalid),  cmocka_unit_test(test_invalid_folder_known),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
