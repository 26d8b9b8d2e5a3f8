/*
 * Our certificate parser (src/crypto/cert.c) against OpenSSL's X.509 API on
 * every GSMA test certificate in ../shared/testdata (sgp26, sgp26-invalid,
 * mno): each field cert.c reads must read the same through d2i_X509 - the
 * DER, SKI, AKI, role policy, EID, curve and public key, validity to the
 * second, SAN registeredID, CA rights, key usage, the EUM's permitted EIN
 * range, and for every pair of certificates whether one signed the other.
 * Needs ../shared (skipped when absent).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "esim/cert.h"
#include "testutil.h"

#define MAX_CERTS 64
#define SGP26_EID "89049032123451234512345678901235"

struct pair {
	char name[256];
	crypto_cert *mine;
	X509 *theirs;
};

static struct pair certs[MAX_CERTS];
static size_t n_certs;

static X509 *openssl_load(const char *path)
{
	size_t len;
	uint8_t *data = test_read(path, &len);
	X509 *x;

	if (data[0] == 0x30) {
		const unsigned char *p = data;
		x = d2i_X509(NULL, &p, (long)len);
	} else {
		BIO *bio = BIO_new_mem_buf(data, (int)len);
		assert_non_null(bio);
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	free(data);
	assert_non_null(x);
	return x;
}

static void load_dir(const char *rel)
{
	char dir[4200], path[4600];
	DIR *d;
	struct dirent *e;

	test_path(dir, sizeof dir, "%s/%s", test_shared_testdata(), rel);
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		struct pair *c;

		if (e->d_name[0] == '.')
			continue;
		test_path(path, sizeof path, "%s/%s", dir, e->d_name);
		if (strncmp(e->d_name, "CERT_", 5) != 0 || n < 4 ||
		    (strcmp(e->d_name + n - 4, ".der") != 0 &&
		     strcmp(e->d_name + n - 4, ".pem") != 0)) {
			DIR *sub = opendir(path);
			if (sub != NULL) {
				char subrel[4200];
				closedir(sub);
				load_dir(test_path(subrel, sizeof subrel, "%s/%s", rel, e->d_name));
			}
			continue;
		}
		assert_true(n_certs < MAX_CERTS);
		c = &certs[n_certs++];
		snprintf(c->name, sizeof c->name, "%.120s/%.120s", rel, e->d_name);
		assert_esim(ESIM_OK, crypto_cert_load_file(path, &c->mine));
		c->theirs = openssl_load(path);
	}
	closedir(d);
}

static int setup(void **state)
{
	(void)state;
	load_dir("sgp26");
	load_dir("sgp26-invalid");
	load_dir("mno");
	return n_certs >= 30 ? 0 : -1; /* 34 in the published set */
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_certs; i++) {
		crypto_cert_free(certs[i].mine);
		X509_free(certs[i].theirs);
	}
	return 0;
}

static void same_key_id(esim_err mine_err, const uint8_t *mine, size_t mine_len,
			const ASN1_OCTET_STRING *theirs)
{
	if (theirs == NULL || ASN1_STRING_length(theirs) == 0) {
		assert_true(mine_err == ESIM_E_CERT_NO_SKI || mine_err == ESIM_E_CERT_NO_AKI);
		return;
	}
	assert_esim(ESIM_OK, mine_err);
	assert_int_equal(mine_len, (size_t)ASN1_STRING_length(theirs));
	assert_memory_equal(mine, ASN1_STRING_get0_data(theirs), mine_len);
}

static crypto_rsp_role openssl_role(X509 *x)
{
	static const struct {
		const char *oid;
		crypto_rsp_role role;
	} map[] = {
	    {"2.23.146.1.2.1.0", CRYPTO_ROLE_CI},      {"2.23.146.1.2.1.1", CRYPTO_ROLE_EUICC},
	    {"2.23.146.1.2.1.2", CRYPTO_ROLE_EUM},     {"2.23.146.1.2.1.3", CRYPTO_ROLE_DP_TLS},
	    {"2.23.146.1.2.1.4", CRYPTO_ROLE_DP_AUTH}, {"2.23.146.1.2.1.5", CRYPTO_ROLE_DP_PB},
	    {"2.23.146.1.2.1.6", CRYPTO_ROLE_DS_TLS},  {"2.23.146.1.2.1.7", CRYPTO_ROLE_DS_AUTH},
	};
	CERTIFICATEPOLICIES *pols = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
	crypto_rsp_role role = CRYPTO_ROLE_NONE;
	char oid[80];

	for (int i = 0; pols && role == CRYPTO_ROLE_NONE && i < sk_POLICYINFO_num(pols); i++) {
		OBJ_obj2txt(oid, sizeof oid, sk_POLICYINFO_value(pols, i)->policyid, 1);
		for (size_t j = 0; j < sizeof map / sizeof map[0]; j++)
			if (strcmp(oid, map[j].oid) == 0)
				role = map[j].role;
	}
	CERTIFICATEPOLICIES_free(pols);
	return role;
}

static time_t openssl_time(const ASN1_TIME *t)
{
	struct tm tm;
	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return timegm(&tm);
}

/* The EIN prefixes an EUM permits, as OpenSSL reads nameConstraints. */
static bool openssl_permits(X509 *x, const char *eid)
{
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
	bool ok = false;

	for (int i = 0; nc && !ok && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		int idx = -1;
		if (st->base->type != GEN_DIRNAME)
			continue;
		while (!ok && (idx = X509_NAME_get_index_by_NID(st->base->d.directoryName,
								NID_serialNumber, idx)) >= 0) {
			const ASN1_STRING *s = X509_NAME_ENTRY_get_data(
			    X509_NAME_get_entry(st->base->d.directoryName, idx));
			ok = strncmp(eid, (const char *)ASN1_STRING_get0_data(s),
				     (size_t)ASN1_STRING_length(s)) == 0;
		}
	}
	NAME_CONSTRAINTS_free(nc);
	return ok;
}

static void compare_one(const struct pair *c)
{
	uint8_t id[CRYPTO_KEY_ID_MAX];
	size_t len = 0, der_len;
	unsigned char *der = NULL;
	crypto_rsp_role role;
	crypto_curve mine_curve, their_curve;
	char eid[CRYPTO_EID_DIGITS + 1], rid[128], their_rid[128] = "";
	EVP_PKEY *theirs_key = X509_get0_pubkey(c->theirs);
	GENERAL_NAMES *san;
	uint32_t flags = X509_get_extension_flags(c->theirs);
	uint32_t ku = X509_get_key_usage(c->theirs);
	esim_err err;
	int idx;

	print_message("  %s\n", c->name);
	/* the bytes */
	const uint8_t *mine_der = crypto_cert_der(c->mine, &der_len);
	assert_int_equal(i2d_X509(c->theirs, &der), (int)der_len);
	assert_memory_equal(der, mine_der, der_len);
	OPENSSL_free(der);
	/* SKI, AKI */
	err = crypto_cert_ski(c->mine, id, &len);
	same_key_id(err, id, len, X509_get0_subject_key_id(c->theirs));
	err = crypto_cert_aki(c->mine, id, &len);
	same_key_id(err, id, len, X509_get0_authority_key_id(c->theirs));
	/* role */
	err = crypto_cert_role(c->mine, &role);
	assert_int_equal(role, openssl_role(c->theirs));
	assert_esim(role == CRYPTO_ROLE_NONE ? ESIM_E_CERT_NO_ROLE : ESIM_OK, err);
	/* EID: the one subject serialNumber */
	idx = X509_NAME_get_index_by_NID(X509_get_subject_name(c->theirs), NID_serialNumber, -1);
	err = crypto_cert_eid(c->mine, eid);
	if (idx < 0) {
		assert_esim(ESIM_E_CERT_NO_EID, err);
	} else {
		const ASN1_STRING *sn = X509_NAME_ENTRY_get_data(
		    X509_NAME_get_entry(X509_get_subject_name(c->theirs), idx));
		if (err == ESIM_OK)
			assert_memory_equal(eid, ASN1_STRING_get0_data(sn), CRYPTO_EID_DIGITS);
		else
			assert_int_not_equal(ASN1_STRING_length(sn), CRYPTO_EID_DIGITS);
	}
	/* curve and key */
	assert_non_null(theirs_key);
	assert_esim(ESIM_OK, crypto_key_curve(theirs_key, &their_curve));
	assert_esim(ESIM_OK, crypto_cert_curve(c->mine, &mine_curve));
	assert_int_equal(mine_curve, their_curve);
	assert_int_equal(EVP_PKEY_eq(crypto_cert_pubkey(c->mine), theirs_key), 1);
	/* validity, to the second at both ends */
	{
		time_t nb = openssl_time(X509_get0_notBefore(c->theirs));
		time_t na = openssl_time(X509_get0_notAfter(c->theirs));
		assert_esim(ESIM_OK, crypto_cert_check_time(c->mine, nb));
		assert_esim(ESIM_E_CERT_NOT_YET_VALID, crypto_cert_check_time(c->mine, nb - 1));
		assert_esim(ESIM_OK, crypto_cert_check_time(c->mine, na));
		assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(c->mine, na + 1));
	}
	/* SAN registeredID */
	san = X509_get_ext_d2i(c->theirs, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);
		if (gn->type == GEN_RID) {
			OBJ_obj2txt(their_rid, sizeof their_rid, gn->d.registeredID, 1);
			break;
		}
	}
	GENERAL_NAMES_free(san);
	err = crypto_cert_registered_id(c->mine, rid, sizeof rid);
	if (their_rid[0] == '\0') {
		assert_esim(ESIM_E_NOT_FOUND, err);
	} else {
		assert_esim(ESIM_OK, err);
		assert_string_equal(rid, their_rid);
	}
	/* CA rights and key usage */
	assert_esim((flags & EXFLAG_BCONS) && (flags & EXFLAG_CA) && (flags & EXFLAG_KUSAGE) &&
			    (ku & KU_KEY_CERT_SIGN)
			? ESIM_OK
			: ESIM_E_CERT_NOT_CA,
		    crypto_cert_check_ca(c->mine));
	assert_esim((flags & EXFLAG_KUSAGE) && (ku & KU_DIGITAL_SIGNATURE) ? ESIM_OK
									   : ESIM_E_CERT_KEY_USAGE,
		    crypto_cert_check_digital_signature(c->mine));
	/* permitted EIN range */
	{
		static const char *eids[] = {SGP26_EID, "89049033123451234512345678901234",
					     "89044045123451234512345678901234"};
		for (size_t i = 0; i < sizeof eids / sizeof eids[0]; i++)
			assert_esim(openssl_permits(c->theirs, eids[i])
					? ESIM_OK
					: ESIM_E_CERT_EID_OUT_OF_RANGE,
				    crypto_cert_eid_permitted(c->mine, eids[i]));
	}
}

static void test_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_certs; i++)
		compare_one(&certs[i]);
}

/* For every ordered pair: did b's key sign a? Both must agree. */
static void test_signatures(void **state)
{
	size_t signed_pairs = 0;

	(void)state;
	for (size_t a = 0; a < n_certs; a++) {
		for (size_t b = 0; b < n_certs; b++) {
			int theirs =
			    X509_verify(certs[a].theirs, X509_get0_pubkey(certs[b].theirs)) == 1;
			esim_err mine = crypto_cert_verify_signed_by(certs[a].mine, certs[b].mine);
			if (theirs != (mine == ESIM_OK))
				fail_msg("%s signed by %s: OpenSSL %d, esimkit %s", certs[a].name,
					 certs[b].name, theirs, esim_errname(mine));
			signed_pairs += (size_t)theirs;
		}
	}
	/* every certificate but the unknown-CI ones has its issuer here */
	assert_true(signed_pairs >= n_certs / 2);
}

int main(void)
{
	test_require_shared("SGP.26 certificates");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_signatures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
