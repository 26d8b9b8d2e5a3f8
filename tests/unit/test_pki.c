/*
 * Tests of the private RSP test PKI: the SGP.29 EID check digits, the
 * certificate issuer (crypto_issue, SGP.22 section 4.5 profiles) and the
 * esim-pki program. Everything esim-pki writes is read back through the
 * certificate layer (esim/cert.h), i.e. with the same SGP.22 chain checks the
 * SM-DP+ and the eUICC perform, and the DPtls chain also through the openssl
 * command line, as a TLS peer would validate it. Needs no ../shared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testutil.h"

#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/pki.h"

#define SGP26_EID "89049032123451234512345678901235"

/* ---- helpers ---------------------------------------------------------------- */

/* Run a shell command; its exit status (-1 when it did not exit normally). */
static int run(const char *cmd)
{
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Run esim-pki with args, output to dir/out.txt (or /dev/null). */
static int run_pki(const char *logdir, const char *args)
{
	char cmd[8192];
	char log[4200];
	if (logdir)
		test_path(log, sizeof log, "'%s/out.txt'", logdir);
	else
		snprintf(log, sizeof log, "/dev/null");
	test_path(cmd, sizeof cmd, "'%s/esim-pki' %s >%s 2>&1", test_bin_dir(), args, log);
	return run(cmd);
}

static crypto_cert *load(const char *dir, const char *curve, const char *name)
{
	char path[4200];
	crypto_cert *c = NULL;
	test_path(path, sizeof path, "%s/%s/%s.der", dir, curve, name);
	assert_esim(ESIM_OK, crypto_cert_load_file(path, &c));
	return c;
}

static crypto_cert *load_der(const struct crypto_issued *is)
{
	crypto_cert *c = NULL;
	assert_esim(ESIM_OK, crypto_cert_load(is->der, is->der_len, &c));
	return c;
}

static void assert_aki_is_ski(const crypto_cert *cert, const crypto_cert *issuer)
{
	uint8_t aki[CRYPTO_KEY_ID_MAX], ski[CRYPTO_KEY_ID_MAX];
	size_t aki_len = 0, ski_len = 0;
	assert_esim(ESIM_OK, crypto_cert_aki(cert, aki, &aki_len));
	assert_esim(ESIM_OK, crypto_cert_ski(issuer, ski, &ski_len));
	assert_int_equal(ski_len, CRYPTO_PKI_SKI_LEN);
	assert_int_equal(aki_len, ski_len);
	assert_memory_equal(aki, ski, ski_len);
}

/* The private key in dir/curve/name.key.pem signs, the certificate's public
 * key verifies, and the file is private (0600). */
static void assert_key_matches(const char *dir, const char *curve, const char *name,
			       const crypto_cert *cert)
{
	char path[4200];
	struct stat st;
	EVP_PKEY *key = NULL;
	static const uint8_t msg[] = "esimkit key/certificate pairing";
	uint8_t sig[CRYPTO_DER_SIG_MAX];
	size_t sig_len = 0;

	test_path(path, sizeof path, "%s/%s/%s.key.pem", dir, curve, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_esim(ESIM_OK, crypto_key_load_private_file(path, &key));
	assert_esim(ESIM_OK, crypto_ecdsa_sign_der(key, msg, sizeof msg, sig, &sig_len));
	assert_esim(ESIM_OK, crypto_ecdsa_verify_der(crypto_cert_pubkey(cert), msg, sizeof msg, sig,
						     sig_len));
	/* and a changed message does not verify: the check has teeth */
	assert_esim(
	    ESIM_E_CRYPTO_SIGNATURE_INVALID,
	    crypto_ecdsa_verify_der(crypto_cert_pubkey(cert), msg, sizeof msg - 1, sig, sig_len));
	EVP_PKEY_free(key);
}

/* An OpenSSL view of cert for assertions (crypto_cert_to_x509 gives a new
 * X509 each time); the views are freed when the program exits. */
static X509 **x509_views;
static size_t n_x509_views;

static void free_x509_views(void)
{
	for (size_t i = 0; i < n_x509_views; i++)
		X509_free(x509_views[i]);
	free(x509_views);
}

static X509 *cert_x509(const crypto_cert *cert)
{
	X509 *x = NULL;
	X509 **grown = realloc(x509_views, (n_x509_views + 1) * sizeof *grown);
	assert_non_null(grown);
	if (x509_views == NULL)
		atexit(free_x509_views);
	x509_views = grown;
	assert_esim(ESIM_OK, crypto_cert_to_x509(cert, &x));
	x509_views[n_x509_views++] = x;
	return x;
}

/* 1 critical, 0 not critical, -1 absent */
static int ext_critical(const crypto_cert *cert, int nid)
{
	X509 *x = cert_x509(cert);
	int idx = X509_get_ext_by_NID(x, nid, -1);
	return idx < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, idx));
}

static bool files_equal(const char *a, const char *b)
{
	size_t na = 0, nb = 0;
	uint8_t *pa = test_read(a, &na);
	uint8_t *pb = test_read(b, &nb);
	bool eq = na == nb && memcmp(pa, pb, na) == 0;
	free(pa);
	free(pb);
	return eq;
}

/* A whole file as a NUL-terminated string. Caller frees. */
static char *read_text(const char *path)
{
	size_t n = 0;
	uint8_t *p = test_read(path, &n);
	char *t = calloc(1, n + 1);
	assert_non_null(t);
	memcpy(t, p, n);
	free(p);
	return t;
}

static bool path_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Independent reference for the check digits: 9 digits at a time in 64-bit
 * arithmetic (10^9 * 96 + 999999999 fits easily). */
static unsigned ref_mod97(const char *d, size_t n)
{
	uint64_t r = 0;
	size_t i = 0;
	while (i < n) {
		uint64_t chunk = 0, scale = 1;
		for (size_t k = 0; k < 9 && i < n; k++, i++) {
			chunk = chunk * 10 + (uint64_t)(d[i] - '0');
			scale *= 10;
		}
		r = (r * scale + chunk) % 97;
	}
	return (unsigned)r;
}

/* ---- EID check digits -------------------------------------------------------- */

static void test_eid_sgp26_valid(void **state)
{
	(void)state;
	char check[3];
	char full[CRYPTO_EID_DIGITS + 1];
	assert_esim(ESIM_OK, crypto_pki_eid_check(SGP26_EID));
	assert_esim(ESIM_OK, crypto_pki_eid_check_digits(SGP26_EID, check));
	assert_string_equal(check, "35");
	/* the 30-digit prefix gives the same digits (digest 2.3) */
	assert_esim(ESIM_OK, crypto_pki_eid_check_digits("890490321234512345123456789012", check));
	assert_string_equal(check, "35");
	assert_esim(ESIM_OK, crypto_pki_eid_complete("890490321234512345123456789012", full));
	assert_string_equal(full, SGP26_EID);
	/* the cert layer's own check agrees */
	assert_true(crypto_eid_check_digits(SGP26_EID));
}

static void test_eid_known_values(void **state)
{
	(void)state;
	char check[3];
	/* n = 0: 98 - 0 */
	assert_esim(ESIM_OK, crypto_pki_eid_check_digits("000000000000000000000000000000", check));
	assert_string_equal(check, "98");
	/* n = 1 * 100 = 100 = 3 mod 97: 98 - 3 */
	assert_esim(ESIM_OK, crypto_pki_eid_check_digits("000000000000000000000000000001", check));
	assert_string_equal(check, "95");
	/* n = 9600 = 94 mod 97: a check value below 10 keeps its leading zero */
	assert_esim(ESIM_OK, crypto_pki_eid_check_digits("000000000000000000000000000096", check));
	assert_string_equal(check, "04");
	assert_esim(ESIM_OK, crypto_pki_eid_check("00000000000000000000000000009604"));
}

static void test_eid_rejects(void **state)
{
	(void)state;
	char check[3];
	assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS,
		    crypto_pki_eid_check("89049032123451234512345678901234"));
	assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS,
		    crypto_pki_eid_check("89049032123451234512345678901253"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT,
		    crypto_pki_eid_check("8904903212345123451234567890123"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT,
		    crypto_pki_eid_check("890490321234512345123456789012350"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT,
		    crypto_pki_eid_check("8904903212345123451234567890123A"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT,
		    crypto_pki_eid_check(" 8904903212345123451234567890123"));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT, crypto_pki_eid_check(""));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT, crypto_pki_eid_check(NULL));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT,
		    crypto_pki_eid_check_digits("8904903212345123451234567890123", check));
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT,
		    crypto_pki_eid_check_digits("89049032123451234512345678901x", check));
}

/* Many prefixes against an independent computation; every single-digit
 * change of a valid EID is detected (a property of ISO 7064 mod 97-10). */
static void test_eid_against_reference(void **state)
{
	(void)state;
	uint32_t seed = 12345;
	for (int round = 0; round < 200; round++) {
		char prefix[31];
		for (int i = 0; i < 30; i++) {
			seed = seed * 1103515245u + 12345u;
			prefix[i] = (char)('0' + (seed >> 16) % 10);
		}
		prefix[30] = '\0';
		char full[CRYPTO_EID_DIGITS + 1];
		assert_esim(ESIM_OK, crypto_pki_eid_complete(prefix, full));
		char with00[33];
		snprintf(with00, sizeof with00, "%s00", prefix);
		unsigned want = 98 - ref_mod97(with00, 32);
		assert_int_equal((full[30] - '0') * 10 + (full[31] - '0'), want);
		assert_int_equal(ref_mod97(full, 32), 1);
		assert_esim(ESIM_OK, crypto_pki_eid_check(full));
		int pos = round % 32;
		full[pos] = (char)('0' + (full[pos] - '0' + 1 + round % 9) % 10);
		assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS, crypto_pki_eid_check(full));
	}
}

/* ---- crypto_issue in process -------------------------------------------------- */

struct hier {
	struct crypto_issued ci, eum;
	time_t now;
};

static void make_ci_eum(struct hier *h, crypto_curve curve, const char *ein)
{
	h->now = time(NULL);
	struct crypto_issue_params p = {
	    .kind = CRYPTO_ISSUE_CI,
	    .curve = curve,
	    .not_before = h->now - 60,
	    .not_after = h->now + 86400,
	};
	assert_esim(ESIM_OK, crypto_issue(&p, &h->ci));
	struct crypto_issue_params e = {
	    .kind = CRYPTO_ISSUE_EUM,
	    .curve = curve,
	    .ein = ein,
	    .issuer_der = h->ci.der,
	    .issuer_der_len = h->ci.der_len,
	    .issuer_key = h->ci.key,
	    .not_before = h->now - 60,
	    .not_after = h->now + 86400,
	};
	assert_esim(ESIM_OK, crypto_issue(&e, &h->eum));
}

static void hier_clear(struct hier *h)
{
	crypto_issued_clear(&h->ci);
	crypto_issued_clear(&h->eum);
}

static struct crypto_issue_params under_ci(const struct hier *h, crypto_issue_kind kind)
{
	struct crypto_issue_params p = {
	    .kind = kind,
	    .curve = CRYPTO_CURVE_P256,
	    .issuer_der = h->ci.der,
	    .issuer_der_len = h->ci.der_len,
	    .issuer_key = h->ci.key,
	    .not_before = h->now - 60,
	    .not_after = h->now + 3600,
	};
	return p;
}

/* An expired and a not-yet-valid DPtls, as the SM-DP+ tests need. */
static void test_issue_validity(void **state)
{
	(void)state;
	struct hier h;
	make_ci_eum(&h, CRYPTO_CURVE_P256, "89049032");
	crypto_cert *ci = load_der(&h.ci);
	crypto_trust *trust = NULL;
	assert_esim(ESIM_OK, crypto_trust_new(&trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(trust, ci));

	struct crypto_issue_params p = under_ci(&h, CRYPTO_ISSUE_DP_TLS);
	p.not_before = h.now - 2 * 86400;
	p.not_after = h.now - 86400;
	struct crypto_issued old;
	assert_esim(ESIM_OK, crypto_issue(&p, &old));
	crypto_cert *c = load_der(&old);
	assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(c, h.now));
	assert_esim(ESIM_OK, crypto_cert_check_time(c, h.now - 86400 - 3600));
	struct crypto_chain_opts timed = {.check_time = true, .now = h.now};
	assert_esim(ESIM_E_CERT_EXPIRED,
		    crypto_chain_verify(trust, c, NULL, 0, CRYPTO_ROLE_DP_TLS, &timed, NULL));
	assert_esim(ESIM_OK,
		    crypto_chain_verify(trust, c, NULL, 0, CRYPTO_ROLE_DP_TLS, NULL, NULL));
	crypto_cert_free(c);
	crypto_issued_clear(&old);

	p.not_before = h.now + 86400;
	p.not_after = h.now + 2 * 86400;
	struct crypto_issued future;
	assert_esim(ESIM_OK, crypto_issue(&p, &future));
	c = load_der(&future);
	assert_esim(ESIM_E_CERT_NOT_YET_VALID, crypto_cert_check_time(c, h.now));
	crypto_cert_free(c);
	crypto_issued_clear(&future);

	/* an empty or inverted validity is refused */
	p.not_after = p.not_before;
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &future));
	assert_null(future.der);
	assert_null(future.key);

	crypto_trust_free(trust);
	crypto_cert_free(ci);
	hier_clear(&h);
}

static void test_issue_profile_details(void **state)
{
	(void)state;
	struct hier h;
	make_ci_eum(&h, CRYPTO_CURVE_BRAINPOOLP256R1, "89049032");
	crypto_cert *ci = load_der(&h.ci);
	crypto_cert *eum = load_der(&h.eum);
	crypto_rsp_role role;
	crypto_curve curve;
	char rid[64];

	/* CI: self-signed, role, rid 2.999.1, CA, curve */
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(ci, ci));
	assert_esim(ESIM_OK, crypto_cert_role(ci, &role));
	assert_int_equal(role, CRYPTO_ROLE_CI);
	assert_esim(ESIM_OK, crypto_cert_check_ca(ci));
	assert_esim(ESIM_OK, crypto_cert_registered_id(ci, rid, sizeof rid));
	assert_string_equal(rid, CRYPTO_PKI_OID_CI);
	assert_esim(ESIM_OK, crypto_cert_curve(ci, &curve));
	assert_int_equal(curve, CRYPTO_CURVE_BRAINPOOLP256R1);
	assert_int_equal(X509_get_key_usage(cert_x509(ci)), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(ext_critical(ci, NID_key_usage), 1);
	assert_int_equal(ext_critical(ci, NID_basic_constraints), 1);
	assert_int_equal(ext_critical(ci, NID_certificate_policies), 1);
	assert_int_equal(ext_critical(ci, NID_authority_key_identifier), -1);
	assert_int_equal(X509_get_pathlen(cert_x509(ci)), -1);
	assert_int_equal(X509_get_signature_nid(cert_x509(ci)), NID_ecdsa_with_SHA256);
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t ski_len = 0;
	assert_esim(ESIM_OK, crypto_cert_ski(ci, ski, &ski_len));
	assert_int_equal(ski_len, CRYPTO_PKI_SKI_LEN);
	assert_memory_equal(ski, h.ci.ski, ski_len);

	/* EUM: CA with pathlen 0, critical nameConstraints, rid 2.999.5 */
	assert_esim(ESIM_OK, crypto_cert_check_ca(eum));
	assert_aki_is_ski(eum, ci);
	assert_esim(ESIM_OK, crypto_cert_registered_id(eum, rid, sizeof rid));
	assert_string_equal(rid, CRYPTO_PKI_OID_EUM);
	X509 *x = cert_x509(eum);
	int idx = X509_get_ext_by_NID(x, NID_name_constraints, -1);
	assert_true(idx >= 0);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, idx)), 1);
	assert_int_equal(X509_get_pathlen(x), 0);
	assert_esim(ESIM_OK, crypto_cert_eid_permitted(eum, SGP26_EID));
	char other[CRYPTO_EID_DIGITS + 1];
	assert_esim(ESIM_OK, crypto_pki_eid_complete("890490331234512345123456789012", other));
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, crypto_cert_eid_permitted(eum, other));
	/* key usage: keyCertSign only */
	assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN);

	/* DPpb with a custom OID; operator certificate has clientAuth only */
	struct crypto_issue_params p = under_ci(&h, CRYPTO_ISSUE_DP_PB);
	p.curve = CRYPTO_CURVE_BRAINPOOLP256R1;
	p.registered_id = "2.999.12";
	struct crypto_issued pb;
	assert_esim(ESIM_OK, crypto_issue(&p, &pb));
	crypto_cert *c = load_der(&pb);
	assert_esim(ESIM_OK, crypto_cert_registered_id(c, rid, sizeof rid));
	assert_string_equal(rid, "2.999.12");
	assert_esim(ESIM_OK, crypto_cert_role(c, &role));
	assert_int_equal(role, CRYPTO_ROLE_DP_PB);
	assert_esim(ESIM_OK, crypto_cert_check_digital_signature(c));
	assert_aki_is_ski(c, ci);
	crypto_cert_free(c);
	crypto_issued_clear(&pb);

	p = under_ci(&h, CRYPTO_ISSUE_OPERATOR);
	struct crypto_issued op;
	assert_esim(ESIM_OK, crypto_issue(&p, &op));
	c = load_der(&op);
	assert_esim(ESIM_E_CERT_NO_ROLE, crypto_cert_role(c, &role));
	x = cert_x509(c);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	/* issued on P-256 under a brainpool CI: curves are per key */
	assert_esim(ESIM_OK, crypto_cert_curve(c, &curve));
	assert_int_equal(curve, CRYPTO_CURVE_P256);
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(c, ci));
	crypto_cert_free(c);
	crypto_issued_clear(&op);

	/* DPtls host names: given ones, CN = the first */
	static const char *const dns[] = {"smdp.example.net", "alt.example.net"};
	static const char *const ips[] = {"192.0.2.7"};
	p = under_ci(&h, CRYPTO_ISSUE_DP_TLS);
	p.dns_names = dns;
	p.n_dns_names = 2;
	p.ip_addrs = ips;
	p.n_ip_addrs = 1;
	struct crypto_issued tls;
	assert_esim(ESIM_OK, crypto_issue(&p, &tls));
	c = load_der(&tls);
	x = cert_x509(c);
	assert_int_equal(X509_check_host(x, "alt.example.net", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(x, "192.0.2.7", 0), 1);
	char cn[128];
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
	assert_string_equal(cn, "smdp.example.net");
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	assert_int_equal(ext_critical(c, NID_ext_key_usage), 1);
	/* as in SGP.26: a TLS stack must not meet an unknown critical extension */
	assert_int_equal(ext_critical(c, NID_certificate_policies), 0);
	crypto_cert_free(c);
	crypto_issued_clear(&tls);

	crypto_cert_free(eum);
	crypto_cert_free(ci);
	hier_clear(&h);
}

/* eUICC chains: in range verifies, out of the EUM's EIN range is refused by
 * the SGP.22 chain check, and an existing key can be certified. */
static void test_issue_euicc_chain(void **state)
{
	(void)state;
	struct hier h;
	make_ci_eum(&h, CRYPTO_CURVE_P256, "89049032");
	crypto_cert *ci = load_der(&h.ci);
	crypto_cert *eum = load_der(&h.eum);
	crypto_trust *trust = NULL;
	assert_esim(ESIM_OK, crypto_trust_new(&trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(trust, ci));
	const crypto_cert *inter[] = {eum};

	EVP_PKEY *own = NULL;
	assert_esim(ESIM_OK, crypto_key_generate(CRYPTO_CURVE_P256, &own));
	struct crypto_issue_params p = {
	    .kind = CRYPTO_ISSUE_EUICC,
	    .subject_key = own,
	    .eid = SGP26_EID,
	    .issuer_der = h.eum.der,
	    .issuer_der_len = h.eum.der_len,
	    .issuer_key = h.eum.key,
	    .not_before = h.now - 60,
	    .not_after = CRYPTO_PKI_NOT_AFTER_NEVER,
	};
	struct crypto_issued in;
	assert_esim(ESIM_OK, crypto_issue(&p, &in));
	assert_ptr_equal(in.key, own);
	crypto_cert *c = load_der(&in);
	assert_int_equal(EVP_PKEY_eq(crypto_cert_pubkey(c), own), 1);
	char eid[CRYPTO_EID_DIGITS + 1];
	assert_esim(ESIM_OK, crypto_cert_eid(c, eid));
	assert_string_equal(eid, SGP26_EID);
	assert_int_equal(X509_get_key_usage(cert_x509(c)), KU_DIGITAL_SIGNATURE);
	assert_int_equal(ext_critical(c, NID_certificate_policies), 1);
	assert_int_equal(ext_critical(c, NID_basic_constraints), -1);
	const crypto_cert *ci_out = NULL;
	struct crypto_chain_opts timed = {.check_time = true, .now = h.now};
	assert_esim(ESIM_OK,
		    crypto_chain_verify(trust, c, inter, 1, CRYPTO_ROLE_EUICC, &timed, &ci_out));
	assert_non_null(ci_out);
	/* "no expiry": still valid in the year 9000 */
	assert_esim(ESIM_OK, crypto_cert_check_time(c, (time_t)221845392000LL));
	crypto_cert_free(c);
	crypto_issued_clear(&in);

	/* a valid EID outside 89049032... */
	char other[CRYPTO_EID_DIGITS + 1];
	assert_esim(ESIM_OK, crypto_pki_eid_complete("890490331234512345123456789012", other));
	p.eid = other;
	p.subject_key = NULL;
	p.curve = CRYPTO_CURVE_P256;
	assert_esim(ESIM_OK, crypto_issue(&p, &in));
	c = load_der(&in);
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE,
		    crypto_chain_verify(trust, c, inter, 1, CRYPTO_ROLE_EUICC, NULL, NULL));
	/* and it is not accepted in another role */
	assert_int_not_equal(
	    crypto_chain_verify(trust, c, inter, 1, CRYPTO_ROLE_DP_AUTH, NULL, NULL), ESIM_OK);
	crypto_cert_free(c);
	crypto_issued_clear(&in);

	/* a malformed EID only when asked for explicitly */
	p.eid = "8904903212345123451234567890123X";
	assert_esim(ESIM_E_CRYPTO_EID_FORMAT, crypto_issue(&p, &in));
	p.eid = "89049032123451234512345678901234";
	assert_esim(ESIM_E_CRYPTO_EID_CHECK_DIGITS, crypto_issue(&p, &in));
	p.unchecked_eid = true;
	assert_esim(ESIM_OK, crypto_issue(&p, &in));
	c = load_der(&in);
	assert_esim(ESIM_OK, crypto_cert_eid(c, eid));
	assert_false(crypto_eid_check_digits(eid));
	crypto_cert_free(c);
	crypto_issued_clear(&in);

	/* an EUM without nameConstraints (ein ""): no EID is in its range */
	struct crypto_issue_params e = under_ci(&h, CRYPTO_ISSUE_EUM);
	e.ein = "";
	struct crypto_issued eum2;
	assert_esim(ESIM_OK, crypto_issue(&e, &eum2));
	c = load_der(&eum2);
	assert_int_equal(ext_critical(c, NID_name_constraints), -1);
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, crypto_cert_eid_permitted(c, SGP26_EID));
	crypto_cert_free(c);
	crypto_issued_clear(&eum2);
	/* a shorter explicit EIN; a non-digit one is refused */
	e.ein = "8904";
	assert_esim(ESIM_OK, crypto_issue(&e, &eum2));
	c = load_der(&eum2);
	assert_esim(ESIM_OK, crypto_cert_eid_permitted(c, other));
	crypto_cert_free(c);
	crypto_issued_clear(&eum2);
	e.ein = "8904x";
	assert_esim(ESIM_E_ARG, crypto_issue(&e, &eum2));

	EVP_PKEY_free(own);
	crypto_trust_free(trust);
	crypto_cert_free(eum);
	crypto_cert_free(ci);
	hier_clear(&h);
}

static void test_issue_bad_params(void **state)
{
	(void)state;
	struct hier h;
	make_ci_eum(&h, CRYPTO_CURVE_P256, "89049032");
	struct crypto_issued out;

	/* a CI takes no issuer; everything else needs one */
	struct crypto_issue_params p = under_ci(&h, CRYPTO_ISSUE_CI);
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	p = under_ci(&h, CRYPTO_ISSUE_DP_AUTH);
	p.issuer_der = NULL;
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	/* issuer key that is not the issuer certificate's */
	p = under_ci(&h, CRYPTO_ISSUE_DP_AUTH);
	p.issuer_key = h.eum.key;
	assert_esim(ESIM_E_CRYPTO_BAD_KEY, crypto_issue(&p, &out));
	/* garbage issuer */
	p = under_ci(&h, CRYPTO_ISSUE_DP_AUTH);
	p.issuer_der_len = h.ci.der_len - 1;
	assert_esim(ESIM_E_CERT_PARSE, crypto_issue(&p, &out));
	/* bad OID, IP, DNS name, country */
	p = under_ci(&h, CRYPTO_ISSUE_DP_AUTH);
	p.registered_id = "2.999..10";
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	p.registered_id = "smdp";
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	static const char *const bad_ip[] = {"300.1.2.3"};
	p = under_ci(&h, CRYPTO_ISSUE_DP_TLS);
	p.ip_addrs = bad_ip;
	p.n_ip_addrs = 1;
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	static const char *const bad_dns[] = {"smdp example"};
	p = under_ci(&h, CRYPTO_ISSUE_DP_TLS);
	p.dns_names = bad_dns;
	p.n_dns_names = 1;
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	p = under_ci(&h, CRYPTO_ISSUE_DP_AUTH);
	p.country = "ESP";
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	/* an EUM with neither EID nor EIN */
	p = under_ci(&h, CRYPTO_ISSUE_EUM);
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	/* an unknown kind, an unsupported curve */
	p = under_ci(&h, (crypto_issue_kind)99);
	assert_esim(ESIM_E_ARG, crypto_issue(&p, &out));
	p = under_ci(&h, CRYPTO_ISSUE_DP_AUTH);
	p.curve = CRYPTO_CURVE_UNKNOWN;
	assert_int_not_equal(crypto_issue(&p, &out), ESIM_OK);
	assert_null(out.der);
	assert_null(out.key);
	assert_esim(ESIM_E_ARG, crypto_issue(NULL, &out));

	assert_int_equal(crypto_issue_kind_role(CRYPTO_ISSUE_DP_AUTH), CRYPTO_ROLE_DP_AUTH);
	assert_int_equal(crypto_issue_kind_role(CRYPTO_ISSUE_EUICC), CRYPTO_ROLE_EUICC);
	assert_int_equal(crypto_issue_kind_role(CRYPTO_ISSUE_OPERATOR), CRYPTO_ROLE_NONE);
	hier_clear(&h);
}

/* Random serial numbers: positive, 16 bytes, different each time. */
static void test_issue_serials(void **state)
{
	(void)state;
	struct hier h;
	make_ci_eum(&h, CRYPTO_CURVE_P256, "89049032");
	struct crypto_issued a, b;
	struct crypto_issue_params p = under_ci(&h, CRYPTO_ISSUE_DP_AUTH);
	assert_esim(ESIM_OK, crypto_issue(&p, &a));
	assert_esim(ESIM_OK, crypto_issue(&p, &b));
	crypto_cert *ca = load_der(&a), *cb = load_der(&b);
	const ASN1_INTEGER *sa = X509_get0_serialNumber(cert_x509(ca));
	const ASN1_INTEGER *sb = X509_get0_serialNumber(cert_x509(cb));
	assert_int_equal(ASN1_STRING_type(sa), V_ASN1_INTEGER); /* not negative */
	assert_int_equal(ASN1_STRING_length(sa), 16);
	/* DER: 02 10 and a first content byte without the sign bit */
	unsigned char *enc = NULL;
	assert_int_equal(i2d_ASN1_INTEGER(sa, &enc), 18);
	assert_int_equal(enc[1], 16);
	assert_true(enc[2] < 0x80 && enc[2] != 0);
	OPENSSL_free(enc);
	assert_int_not_equal(ASN1_INTEGER_cmp(sa, sb), 0);
	crypto_cert_free(ca);
	crypto_cert_free(cb);
	crypto_issued_clear(&a);
	crypto_issued_clear(&b);
	hier_clear(&h);
}

/* ---- the esim-pki program -------------------------------------------------------- */

static void check_curve_dir(const char *dir, const char *cdir, crypto_curve want_curve,
			    const char *want_oid)
{
	crypto_cert *ci = load(dir, cdir, "ci");
	crypto_cert *eum = load(dir, cdir, "eum");
	crypto_cert *euicc = load(dir, cdir, "euicc");
	crypto_cert *dpauth = load(dir, cdir, "dpauth");
	crypto_cert *dppb = load(dir, cdir, "dppb");
	crypto_cert *dptls = load(dir, cdir, "dptls");
	crypto_cert *op = load(dir, cdir, "operator");
	crypto_cert *all[] = {ci, eum, euicc, dpauth, dppb, dptls, op};
	static const char *const names[] = {"ci",   "eum",   "euicc",	"dpauth",
					    "dppb", "dptls", "operator"};

	crypto_trust *trust = NULL;
	assert_esim(ESIM_OK, crypto_trust_new(&trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(trust, ci));
	struct crypto_chain_opts timed = {.check_time = true, .now = time(NULL)};
	const crypto_cert *inter[] = {eum};
	const crypto_cert *ci_out = NULL;
	assert_esim(ESIM_OK, crypto_chain_verify(trust, euicc, inter, 1, CRYPTO_ROLE_EUICC, &timed,
						 &ci_out));
	assert_ptr_equal(ci_out, crypto_trust_get(trust, 0));
	assert_esim(ESIM_OK,
		    crypto_chain_verify(trust, dpauth, NULL, 0, CRYPTO_ROLE_DP_AUTH, &timed, NULL));
	assert_esim(ESIM_OK,
		    crypto_chain_verify(trust, dppb, NULL, 0, CRYPTO_ROLE_DP_PB, &timed, NULL));
	assert_esim(ESIM_OK,
		    crypto_chain_verify(trust, dptls, NULL, 0, CRYPTO_ROLE_DP_TLS, &timed, NULL));
	/* roles are not interchangeable */
	assert_int_not_equal(
	    crypto_chain_verify(trust, dppb, NULL, 0, CRYPTO_ROLE_DP_AUTH, &timed, NULL), ESIM_OK);
	assert_esim(ESIM_OK, crypto_cert_verify_signed_by(op, ci));

	char eid[CRYPTO_EID_DIGITS + 1];
	assert_esim(ESIM_OK, crypto_cert_eid(euicc, eid));
	assert_string_equal(eid, SGP26_EID);

	assert_aki_is_ski(eum, ci);
	assert_aki_is_ski(euicc, eum);
	assert_aki_is_ski(dpauth, ci);
	assert_aki_is_ski(dppb, ci);
	assert_aki_is_ski(dptls, ci);
	assert_aki_is_ski(op, ci);

	char rid[64];
	assert_esim(ESIM_OK, crypto_cert_registered_id(dpauth, rid, sizeof rid));
	assert_string_equal(rid, want_oid);
	assert_esim(ESIM_OK, crypto_cert_registered_id(dptls, rid, sizeof rid));
	assert_string_equal(rid, want_oid);

	X509 *x = cert_x509(dptls);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		crypto_curve curve = CRYPTO_CURVE_UNKNOWN;
		assert_esim(ESIM_OK, crypto_cert_curve(all[i], &curve));
		assert_int_equal(curve, want_curve);
		assert_key_matches(dir, cdir, names[i], all[i]);
	}

	/* EUM: the nameConstraints that stock TLS validation trips over */
	X509 *xe = cert_x509(eum);
	int idx = X509_get_ext_by_NID(xe, NID_name_constraints, -1);
	assert_true(idx >= 0);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(xe, idx)), 1);
	assert_esim(ESIM_OK, crypto_cert_eid_permitted(eum, SGP26_EID));

	/* the DPtls chain passes ordinary TLS path validation */
	char cmd[8192];
	test_path(cmd, sizeof cmd,
		  "openssl verify -purpose sslserver -CAfile '%s/%s/ci.pem' '%s/%s/dptls.pem' "
		  ">/dev/null 2>&1",
		  dir, cdir, dir, cdir);
	assert_int_equal(run(cmd), 0);
	/* and against another CI it does not */
	test_path(cmd, sizeof cmd,
		  "openssl verify -CAfile '%s/%s/ci.pem' '%s/%s/dptls.pem' >/dev/null 2>&1", dir,
		  strcmp(cdir, "nist") == 0 ? "brp" : "nist", dir, cdir);
	assert_int_not_equal(run(cmd), 0);

	crypto_trust_free(trust);
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		crypto_cert_free(all[i]);
}

static void test_cli_init(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char args[4400];
	char path[4200];
	test_path(args, sizeof args, "init '%s/pki' --eid " SGP26_EID, dir);
	assert_int_equal(run_pki(dir, args), 0);
	char pki[4200];
	test_path(pki, sizeof pki, "%s/pki", dir);
	check_curve_dir(pki, "nist", CRYPTO_CURVE_P256, CRYPTO_PKI_OID_SMDP);
	check_curve_dir(pki, "brp", CRYPTO_CURVE_BRAINPOOLP256R1, CRYPTO_PKI_OID_SMDP);

	/* a nist eUICC does not chain to the brp CI */
	crypto_cert *brp_ci = load(pki, "brp", "ci");
	crypto_cert *eum = load(pki, "nist", "eum");
	crypto_cert *euicc = load(pki, "nist", "euicc");
	crypto_trust *trust = NULL;
	assert_esim(ESIM_OK, crypto_trust_new(&trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(trust, brp_ci));
	const crypto_cert *inter[] = {eum};
	assert_int_not_equal(
	    crypto_chain_verify(trust, euicc, inter, 1, CRYPTO_ROLE_EUICC, NULL, NULL), ESIM_OK);
	crypto_trust_free(trust);
	crypto_cert_free(brp_ci);
	crypto_cert_free(eum);
	crypto_cert_free(euicc);

	/* the manifest names the EID and the CI's SKI */
	char *text = read_text(test_path(path, sizeof path, "%s/manifest.json", pki));
	assert_non_null(strstr(text, "\"eid\": \"" SGP26_EID "\""));
	crypto_cert *ci = load(pki, "nist", "ci");
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t ski_len = 0;
	assert_esim(ESIM_OK, crypto_cert_ski(ci, ski, &ski_len));
	char *hex = esim_hex_encode(ski, ski_len, true);
	assert_non_null(strstr(text, hex));
	assert_non_null(strstr(text, "\"file\": \"brp/dptls.key.pem\""));
	free(hex);
	crypto_cert_free(ci);
	free(text);
	assert_true(path_exists(test_path(path, sizeof path, "%s/README", pki)));

	/* esim-pki verify: the same checks from the command line */
	static const char *const leaves[] = {"dpauth", "dppb", "dptls", "operator"};
	char args2[8800];
	for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
		test_path(args2, sizeof args2, "verify '%s/brp/ci.der' '%s/brp/%s.der'", pki, pki,
			  leaves[i]);
		assert_int_equal(run_pki(NULL, args2), 0);
		/* under the other curve's CI: does not verify */
		test_path(args2, sizeof args2, "verify '%s/nist/ci.der' '%s/brp/%s.der'", pki, pki,
			  leaves[i]);
		assert_int_equal(run_pki(NULL, args2), 1);
	}
	test_path(args2, sizeof args2,
		  "verify '%s/nist/ci.pem' '%s/nist/euicc.pem' '%s/nist/eum.pem'", pki, pki, pki);
	assert_int_equal(run_pki(dir, args2), 0);
	char *vout = read_text(test_path(path, sizeof path, "%s/out.txt", dir));
	assert_non_null(strstr(vout, "EID " SGP26_EID));
	free(vout);
	/* without its EUM the eUICC does not verify; an unreadable file is bad input */
	test_path(args2, sizeof args2, "verify '%s/nist/ci.der' '%s/nist/euicc.der'", pki, pki);
	assert_int_equal(run_pki(NULL, args2), 1);
	test_path(args2, sizeof args2, "verify '%s/nist/ci.der' '%s/nist/none.der'", pki, pki);
	assert_int_equal(run_pki(NULL, args2), 2);
	test_path(args2, sizeof args2, "verify '%s/nist/eum.der' '%s/nist/euicc.der'", pki, pki);
	assert_int_equal(run_pki(NULL, args2), 2);
	test_rm_rf(dir);
	free(dir);
}

static void test_cli_options(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char args[4400];
	char path[4200];
	test_path(args, sizeof args,
		  "init '%s' --eid " SGP26_EID " --curve nist --smdp-oid 2.999.12 "
		  "--smdp-host smdp.lab.example --smdp-host 198.51.100.9 --days 30 "
		  "--operator 'ACME Mobile'",
		  dir);
	/* the temporary directory exists but holds no PKI yet */
	assert_int_equal(run_pki(dir, args), 0);
	assert_false(path_exists(test_path(path, sizeof path, "%s/brp", dir)));
	check_curve_dir(dir, "nist", CRYPTO_CURVE_P256, "2.999.12");

	crypto_cert *tls = load(dir, "nist", "dptls");
	X509 *x = cert_x509(tls);
	assert_int_equal(X509_check_host(x, "smdp.lab.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "198.51.100.9", 0), 1);
	/* --days 30 */
	assert_esim(ESIM_OK, crypto_cert_check_time(tls, time(NULL) + 29 * 86400));
	assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(tls, time(NULL) + 31 * 86400));
	crypto_cert_free(tls);

	crypto_cert *op = load(dir, "nist", "operator");
	char org[128];
	X509_NAME_get_text_by_NID(X509_get_subject_name(cert_x509(op)), NID_organizationName, org,
				  sizeof org);
	assert_string_equal(org, "ACME Mobile");
	crypto_cert_free(op);

	/* bad option values are usage errors */
	test_path(args, sizeof args, "init '%s/x' --eid " SGP26_EID " --smdp-oid smdp", dir);
	assert_int_equal(run_pki(NULL, args), 2);
	test_path(args, sizeof args, "init '%s/x' --eid " SGP26_EID " --curve p384", dir);
	assert_int_equal(run_pki(NULL, args), 2);
	test_path(args, sizeof args, "init '%s/x' --eid " SGP26_EID " --days 0", dir);
	assert_int_equal(run_pki(NULL, args), 2);
	test_path(args, sizeof args, "init '%s/x' --eid " SGP26_EID " --smdp-host 'a b'", dir);
	assert_int_equal(run_pki(NULL, args), 2);
	test_path(args, sizeof args, "init '%s/x' --eid " SGP26_EID " --bogus", dir);
	assert_int_equal(run_pki(NULL, args), 2);
	test_path(args, sizeof args, "init --eid " SGP26_EID);
	assert_int_equal(run_pki(NULL, args), 2);
	assert_false(path_exists(test_path(path, sizeof path, "%s/x", dir)));
	assert_int_equal(run_pki(NULL, "--help"), 0);
	assert_int_equal(run_pki(NULL, "frobnicate"), 2);
	assert_int_equal(run_pki(NULL, ""), 2);
	test_rm_rf(dir);
	free(dir);
}

static void test_cli_bad_eid(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	static const char *const bad[] = {
	    "89049032123451234512345678901234",	 /* wrong check digits */
	    "8904903212345123451234567890123",	 /* 31 digits */
	    "890490321234512345123456789012355", /* 33 digits */
	    "8904903212345123451234567890123A",	 /* not a digit */
	};
	char args[4400];
	char path[4200];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		test_path(args, sizeof args, "init '%s/pki' --eid %s", dir, bad[i]);
		assert_int_equal(run_pki(dir, args), 2);
		assert_false(path_exists(test_path(path, sizeof path, "%s/pki", dir)));
	}
	/* the message names the right check digits */
	test_path(args, sizeof args, "init '%s/pki' --eid %s", dir, bad[0]);
	assert_int_equal(run_pki(dir, args), 2);
	char *text = read_text(test_path(path, sizeof path, "%s/out.txt", dir));
	assert_non_null(strstr(text, "'35'"));
	free(text);

	/* eid-check */
	assert_int_equal(run_pki(NULL, "eid-check " SGP26_EID), 0);
	assert_int_equal(run_pki(NULL, "eid-check 89049032123451234512345678901234"), 2);
	assert_int_equal(run_pki(NULL, "eid-check 8904903212345123451234567890123"), 2);
	assert_int_equal(run_pki(NULL, "eid-check"), 2);
	assert_int_equal(run_pki(dir, "eid-check 890490321234512345123456789012"), 0);
	text = read_text(test_path(path, sizeof path, "%s/out.txt", dir));
	assert_true(strncmp(text, SGP26_EID " ", CRYPTO_EID_DIGITS + 1) == 0);
	free(text);
	test_rm_rf(dir);
	free(dir);
}

static void test_cli_no_overwrite(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char args[4400];
	char a[4200], b[4200];
	test_path(args, sizeof args, "init '%s/pki' --eid " SGP26_EID " --curve brp", dir);
	assert_int_equal(run_pki(dir, args), 0);

	/* keep copies to compare against */
	char cmd[8192];
	test_path(cmd, sizeof cmd, "cp -p '%s/pki/brp/ci.der' '%s/pki/manifest.json' '%s/'", dir,
		  dir, dir);
	assert_int_equal(run(cmd), 0);

	test_path(args, sizeof args, "init '%s/pki' --eid " SGP26_EID, dir);
	assert_int_equal(run_pki(dir, args), 1);
	assert_true(files_equal(test_path(a, sizeof a, "%s/pki/brp/ci.der", dir),
				test_path(b, sizeof b, "%s/ci.der", dir)));
	assert_true(files_equal(test_path(a, sizeof a, "%s/pki/manifest.json", dir),
				test_path(b, sizeof b, "%s/manifest.json", dir)));
	assert_false(path_exists(test_path(a, sizeof a, "%s/pki/nist", dir)));

	/* --force replaces it with a new CI */
	test_path(args, sizeof args, "init '%s/pki' --eid " SGP26_EID " --curve brp --force", dir);
	assert_int_equal(run_pki(dir, args), 0);
	assert_false(files_equal(test_path(a, sizeof a, "%s/pki/brp/ci.der", dir),
				 test_path(b, sizeof b, "%s/ci.der", dir)));
	struct stat st;
	assert_int_equal(stat(test_path(a, sizeof a, "%s/pki/brp/ci.key.pem", dir), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	check_curve_dir(test_path(a, sizeof a, "%s/pki", dir), "brp", CRYPTO_CURVE_BRAINPOOLP256R1,
			CRYPTO_PKI_OID_SMDP);
	/* no temporary files left behind */
	test_path(cmd, sizeof cmd, "ls '%s/pki/brp' | grep -q '\\.tmp$'", dir);
	assert_int_not_equal(run(cmd), 0);
	test_rm_rf(dir);
	free(dir);
}

/* esim-pki issue: an expired DPtls under a CI made by init, a CA that is not
 * the issuer's key is refused, and nothing is overwritten without --force. */
static void test_cli_issue(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char args[8800];
	char path[4200];
	test_path(args, sizeof args, "init '%s/pki' --eid " SGP26_EID " --curve nist", dir);
	assert_int_equal(run_pki(dir, args), 0);

	time_t now = time(NULL);
	test_path(args, sizeof args,
		  "issue dptls --issuer-cert '%s/pki/nist/ci.pem' --issuer-key "
		  "'%s/pki/nist/ci.key.pem' --out '%s/old' --host smdp.example.com "
		  "--not-before %lld --not-after %lld",
		  dir, dir, dir, (long long)(now - 7200), (long long)(now - 3600));
	assert_int_equal(run_pki(dir, args), 0);
	crypto_cert *ci = load(dir, "pki/nist", "ci");
	crypto_cert *old = NULL;
	assert_esim(ESIM_OK,
		    crypto_cert_load_file(test_path(path, sizeof path, "%s/old.pem", dir), &old));
	crypto_trust *trust = NULL;
	assert_esim(ESIM_OK, crypto_trust_new(&trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(trust, ci));
	struct crypto_chain_opts timed = {.check_time = true, .now = now};
	assert_esim(ESIM_OK,
		    crypto_chain_verify(trust, old, NULL, 0, CRYPTO_ROLE_DP_TLS, NULL, NULL));
	assert_esim(ESIM_E_CERT_EXPIRED,
		    crypto_chain_verify(trust, old, NULL, 0, CRYPTO_ROLE_DP_TLS, &timed, NULL));
	assert_int_equal(X509_check_host(cert_x509(old), "smdp.example.com", 0, 0, NULL), 1);
	assert_key_matches(dir, ".", "old", old);
	crypto_cert_free(old);
	crypto_trust_free(trust);
	crypto_cert_free(ci);

	/* exists: refused without --force */
	assert_int_equal(run_pki(dir, args), 1);
	/* the EUM's key is not the CI's */
	test_path(args, sizeof args,
		  "issue dpauth --issuer-cert '%s/pki/nist/ci.pem' --issuer-key "
		  "'%s/pki/nist/eum.key.pem' --out '%s/x'",
		  dir, dir, dir);
	assert_int_equal(run_pki(dir, args), 2);
	assert_false(path_exists(test_path(path, sizeof path, "%s/x.der", dir)));
	/* no issuer for a non-CI */
	test_path(args, sizeof args, "issue dpauth --out '%s/x'", dir);
	assert_int_equal(run_pki(NULL, args), 2);
	test_path(args, sizeof args, "issue nobody --out '%s/x'", dir);
	assert_int_equal(run_pki(NULL, args), 2);
	test_rm_rf(dir);
	free(dir);
}

/* clang-format off */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eid_sgp26_valid),
		cmocka_unit_test(test_eid_known_values),
		cmocka_unit_test(test_eid_rejects),
		cmocka_unit_test(test_eid_against_reference),
		cmocka_unit_test(test_issue_validity),
		cmocka_unit_test(test_issue_profile_details),
		cmocka_unit_test(test_issue_euicc_chain),
		cmocka_unit_test(test_issue_bad_params),
		cmocka_unit_test(test_issue_serials),
		cmocka_unit_test(test_cli_init),
		cmocka_unit_test(test_cli_options),
		cmocka_unit_test(test_cli_bad_eid),
		cmocka_unit_test(test_cli_no_overwrite),
		cmocka_unit_test(test_cli_issue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
/* clang-format on */
