/*
 * Chain validation (src/crypto/chain.c, cert.c, trust.c) against a small
 * RSP PKI made inside the test with OpenSSL: a CI, an EUM with an EIN
 * range, an eUICC, and SM-DP+ / SM-DS leaves, on both SGP.22 curves. Each
 * defect a verifier must catch (SGP.22 section 4.5.2, digest 10.4) is made
 * on purpose and must come back as its own esim_err. Needs no ../shared.
 */
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

#define DAY	   (24L * 3600L)
#define EID_OK	   "89049032123451234512345678901235"
#define EIN_PREFIX "89049032"

#define OID_CI	     "2.23.146.1.2.1.0"
#define OID_EUICC    "2.23.146.1.2.1.1"
#define OID_EUM	     "2.23.146.1.2.1.2"
#define OID_DP_TLS   "2.23.146.1.2.1.3"
#define OID_DP_AUTH  "2.23.146.1.2.1.4"
#define OID_DP_PB    "2.23.146.1.2.1.5"
#define OID_DS_TLS   "2.23.146.1.2.1.6"
#define OID_DS_AUTH  "2.23.146.1.2.1.7"
#define OID_V3_EUM   "2.23.146.1.2.1.0.0.0"
#define OID_V3_EUICC "2.23.146.1.2.1.0.0.0.0.0"

#define KU_CA	"critical,keyCertSign,cRLSign"
#define KU_SIGN "critical,digitalSignature"

/* What to put in a test certificate. Zero / NULL fields are left out. */
struct spec {
	const char *cn;
	const char *eid;     /* subject serialNumber */
	const char *policy;  /* certificatePolicies OID */
	bool no_ski, no_aki; /* omit SKI / AKI */
	const char *bc;	     /* basicConstraints value */
	const char *ku;	     /* keyUsage value */
	long not_before;     /* seconds from now */
	long not_after;	     /* seconds from now */
	const char *nc;	     /* nameConstraints dirName serialNumber prefix */
	const char *eins;    /* permitted-eins extension, one prefix */
	const char *rid;     /* SAN registeredID */
	const EVP_MD *md;    /* signature digest, default SHA-256 */
};

static const char *curves[] = {"prime256v1", "brainpoolP256r1"};
static const crypto_curve curve_ids[] = {CRYPTO_CURVE_P256, CRYPTO_CURVE_BRAINPOOLP256R1};

static EVP_PKEY *make_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);
	assert_non_null(k);
	return k;
}

static struct spec spec_ci(void)
{
	return (struct spec){.cn = "Test CI",
			     .policy = OID_CI,
			     .no_aki = true,
			     .bc = "critical,CA:TRUE",
			     .ku = KU_CA,
			     .not_before = -DAY,
			     .not_after = 3650 * DAY,
			     .rid = "2.999.1"};
}

static struct spec spec_eum(void)
{
	return (struct spec){.cn = "Test EUM",
			     .policy = OID_EUM,
			     .bc = "critical,CA:TRUE,pathlen:0",
			     .ku = "critical,keyCertSign",
			     .not_before = -DAY,
			     .not_after = 3650 * DAY,
			     .nc = EIN_PREFIX,
			     .rid = "2.999.5"};
}

static struct spec spec_euicc(void)
{
	return (struct spec){.cn = "Test eUICC",
			     .eid = EID_OK,
			     .policy = OID_EUICC,
			     .ku = KU_SIGN,
			     .not_before = -DAY,
			     .not_after = 3650 * DAY};
}

static struct spec spec_dp(const char *policy)
{
	return (struct spec){.cn = "TEST SM-DP+",
			     .policy = policy,
			     .ku = KU_SIGN,
			     .not_before = -DAY,
			     .not_after = 365 * DAY,
			     .rid = "2.999.10"};
}

static void add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static void add_key_id(X509 *x, int nid, const uint8_t *id, size_t len)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	assert_non_null(os);
	assert_int_equal(ASN1_OCTET_STRING_set(os, id, (int)len), 1);
	if (nid == NID_subject_key_identifier) {
		assert_int_equal(X509_add1_ext_i2d(x, nid, os, 0, X509V3_ADD_APPEND), 1);
		ASN1_OCTET_STRING_free(os);
	} else {
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
		assert_non_null(akid);
		akid->keyid = os;
		assert_int_equal(X509_add1_ext_i2d(x, nid, akid, 0, X509V3_ADD_APPEND), 1);
		AUTHORITY_KEYID_free(akid);
	}
}

/* certificatePolicies (critical) with one policy OID, as RSP certificates
 * carry their role. */
static void add_policy(X509 *x, const char *oid)
{
	CERTIFICATEPOLICIES *pols = sk_POLICYINFO_new_null();
	POLICYINFO *pi = POLICYINFO_new();

	assert_true(pols && pi);
	ASN1_OBJECT_free(pi->policyid);
	pi->policyid = OBJ_txt2obj(oid, 1);
	assert_non_null(pi->policyid);
	assert_true(sk_POLICYINFO_push(pols, pi) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_certificate_policies, pols, 1, X509V3_ADD_APPEND),
			 1);
	CERTIFICATEPOLICIES_free(pols);
}

/* nameConstraints: permitted DirName: O=..., serialNumber=<prefix>, as the
 * SGP.26 EUM has it. */
static void add_name_constraints(X509 *x, const char *prefix)
{
	NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
	GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
	X509_NAME *dn = X509_NAME_new();

	assert_true(nc && st && dn);
	assert_int_equal(X509_NAME_add_entry_by_txt(dn, "O", MBSTRING_ASC,
						    (const unsigned char *)"esimkit EUM", -1, -1,
						    0),
			 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(dn, "serialNumber", MBSTRING_ASC,
						    (const unsigned char *)prefix, -1, -1, 0),
			 1);
	st->base->type = GEN_DIRNAME;
	st->base->d.directoryName = dn;
	nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
	assert_non_null(nc->permittedSubtrees);
	assert_true(sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_APPEND), 1);
	NAME_CONSTRAINTS_free(nc);
}

/* id-rsp-extension-permitted-eins: SEQUENCE OF PrintableString. */
static void add_permitted_eins(X509 *x, const char *prefix)
{
	unsigned char der[64];
	size_t n = strlen(prefix);
	ASN1_OBJECT *oid = OBJ_txt2obj("2.23.146.1.2.2.0", 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;

	assert_true(n < 32 && oid && os);
	der[0] = 0x30;
	der[1] = (unsigned char)(n + 2);
	der[2] = 0x13;
	der[3] = (unsigned char)n;
	memcpy(der + 4, prefix, n);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, (int)n + 4), 1);
	ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
}

/* Issue a certificate for key per s, signed by issuer_key under issuer
 * (both NULL: self-signed). Caller frees the result. */
static crypto_cert *issue(const struct spec *s, EVP_PKEY *key, const crypto_cert *issuer,
			  EVP_PKEY *issuer_key)
{
	X509 *x = X509_new(), *ix = NULL;
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	uint8_t ski[EVP_MAX_MD_SIZE];
	unsigned ski_len = 0;
	unsigned char *der = NULL;
	time_t now = time(NULL);
	crypto_cert *out = NULL;
	int der_len;

	assert_true(x && name);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
						    (const unsigned char *)"ES", -1, -1, 0),
			 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
						    (const unsigned char *)"esimkit test", -1, -1,
						    0),
			 1);
	if (s->eid)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
							    (const unsigned char *)s->eid, -1, -1,
							    0),
				 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						    (const unsigned char *)s->cn, -1, -1, 0),
			 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	if (issuer)
		assert_esim(ESIM_OK, crypto_cert_to_x509(issuer, &ix));
	assert_int_equal(X509_set_issuer_name(x, ix ? X509_get_subject_name(ix) : name), 1);
	X509_NAME_free(name);
	assert_non_null(ASN1_TIME_adj(X509_getm_notBefore(x), now, 0, s->not_before));
	assert_non_null(ASN1_TIME_adj(X509_getm_notAfter(x), now, 0, s->not_after));
	assert_int_equal(X509_set_pubkey(x, key), 1);

	X509V3_set_ctx(&ctx, ix ? ix : x, x, NULL, NULL, 0);
	/* SKI as RFC 5280 method 1: SHA-1 of the public key bits. */
	assert_int_equal(X509_pubkey_digest(x, EVP_sha1(), ski, &ski_len), 1);
	if (!s->no_aki) {
		uint8_t aki[CRYPTO_KEY_ID_MAX];
		size_t aki_len = ski_len;

		if (issuer)
			assert_esim(ESIM_OK, crypto_cert_ski(issuer, aki, &aki_len));
		else
			memcpy(aki, ski, ski_len);
		add_key_id(x, NID_authority_key_identifier, aki, aki_len);
	}
	if (!s->no_ski)
		add_key_id(x, NID_subject_key_identifier, ski, ski_len);
	if (s->ku)
		add_conf_ext(x, &ctx, NID_key_usage, s->ku);
	if (s->policy)
		add_policy(x, s->policy);
	if (s->rid) {
		char v[64];
		snprintf(v, sizeof v, "RID:%s", s->rid);
		add_conf_ext(x, &ctx, NID_subject_alt_name, v);
	}
	if (s->bc)
		add_conf_ext(x, &ctx, NID_basic_constraints, s->bc);
	if (s->nc)
		add_name_constraints(x, s->nc);
	if (s->eins)
		add_permitted_eins(x, s->eins);
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, s->md ? s->md : EVP_sha256()) > 0);

	der_len = i2d_X509(x, &der);
	assert_true(der_len > 0);
	assert_esim(ESIM_OK, crypto_cert_load(der, (size_t)der_len, &out));
	OPENSSL_free(der);
	X509_free(x);
	X509_free(ix);
	return out;
}

/* A CI, an EUM and an eUICC on one curve, and a trust store with the CI. */
struct pki {
	const char *curve;
	crypto_curve curve_id;
	EVP_PKEY *ci_key, *eum_key, *leaf_key;
	crypto_cert *ci, *eum, *euicc;
	crypto_trust *trust;
};

static void pki_init(struct pki *p, size_t curve_index)
{
	struct spec s;

	memset(p, 0, sizeof *p);
	p->curve = curves[curve_index];
	p->curve_id = curve_ids[curve_index];
	p->ci_key = make_key(p->curve);
	p->eum_key = make_key(p->curve);
	p->leaf_key = make_key(p->curve);
	s = spec_ci();
	p->ci = issue(&s, p->ci_key, NULL, NULL);
	s = spec_eum();
	p->eum = issue(&s, p->eum_key, p->ci, p->ci_key);
	s = spec_euicc();
	p->euicc = issue(&s, p->leaf_key, p->eum, p->eum_key);
	assert_esim(ESIM_OK, crypto_trust_new(&p->trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(p->trust, p->ci));
}

static void pki_free(struct pki *p)
{
	EVP_PKEY_free(p->ci_key);
	EVP_PKEY_free(p->eum_key);
	EVP_PKEY_free(p->leaf_key);
	crypto_cert_free(p->ci);
	crypto_cert_free(p->eum);
	crypto_cert_free(p->euicc);
	crypto_trust_free(p->trust);
}

static const struct crypto_chain_opts *opts_now(struct crypto_chain_opts *o)
{
	o->check_time = true;
	o->now = time(NULL);
	return o;
}

/* Verify an eUICC leaf with one EUM intermediate, time checked. */
static esim_err verify_euicc(const struct pki *p, const crypto_cert *leaf, const crypto_cert *eum)
{
	struct crypto_chain_opts o;
	const crypto_cert *im[1] = {eum};
	return crypto_chain_verify(p->trust, leaf, im, eum ? 1 : 0, CRYPTO_ROLE_EUICC, opts_now(&o),
				   NULL);
}

static esim_err verify_leaf(const struct pki *p, const crypto_cert *leaf, crypto_rsp_role role)
{
	struct crypto_chain_opts o;
	return crypto_chain_verify(p->trust, leaf, NULL, 0, role, opts_now(&o), NULL);
}

/* A leaf issued by the pki's CI per s. */
static crypto_cert *issue_by_ci(const struct pki *p, const struct spec *s)
{
	return issue(s, p->leaf_key, p->ci, p->ci_key);
}

static crypto_cert *issue_by_eum(const struct pki *p, const struct spec *s)
{
	return issue(s, p->leaf_key, p->eum, p->eum_key);
}

static void test_good_euicc_chain(void **state)
{
	(void)state;
	for (size_t c = 0; c < 2; c++) {
		struct pki p;
		struct crypto_chain_opts o;
		const crypto_cert *im[2];
		const crypto_cert *ci = NULL;
		crypto_rsp_role role;
		crypto_curve curve;
		char eid[CRYPTO_EID_DIGITS + 1];

		pki_init(&p, c);
		/* An unrelated intermediate in front must not disturb the lookup. */
		im[0] = p.ci;
		im[1] = p.eum;
		assert_esim(ESIM_OK, crypto_chain_verify(p.trust, p.euicc, im, 2, CRYPTO_ROLE_EUICC,
							 opts_now(&o), &ci));
		assert_ptr_equal(ci, crypto_trust_get(p.trust, 0));
		/* No time check asked: same answer. */
		assert_esim(ESIM_OK, crypto_chain_verify(p.trust, p.euicc, im + 1, 1,
							 CRYPTO_ROLE_EUICC, NULL, &ci));
		assert_esim(ESIM_OK, crypto_cert_role(p.euicc, &role));
		assert_int_equal(role, CRYPTO_ROLE_EUICC);
		assert_esim(ESIM_OK, crypto_cert_role(p.eum, &role));
		assert_int_equal(role, CRYPTO_ROLE_EUM);
		assert_esim(ESIM_OK, crypto_cert_eid(p.euicc, eid));
		assert_string_equal(eid, EID_OK);
		assert_esim(ESIM_OK, crypto_cert_curve(p.euicc, &curve));
		assert_int_equal(curve, p.curve_id);
		/* The EUM and the CI verify as leaves of their own role too. */
		assert_esim(ESIM_OK, verify_leaf(&p, p.eum, CRYPTO_ROLE_EUM));
		assert_esim(ESIM_OK, verify_leaf(&p, p.ci, CRYPTO_ROLE_CI));
		pki_free(&p);
	}
}

/* v3 role OIDs and the permitted-eins extension instead of nameConstraints. */
static void test_good_v3_euicc_chain(void **state)
{
	(void)state;
	struct pki p;
	struct spec s = spec_eum();
	crypto_cert *eum, *leaf;
	crypto_rsp_role role;

	pki_init(&p, 0);
	s.policy = OID_V3_EUM;
	s.nc = NULL;
	s.eins = "890490";
	eum = issue(&s, p.eum_key, p.ci, p.ci_key);
	s = spec_euicc();
	s.policy = OID_V3_EUICC;
	leaf = issue(&s, p.leaf_key, eum, p.eum_key);
	assert_esim(ESIM_OK, crypto_cert_role(eum, &role));
	assert_int_equal(role, CRYPTO_ROLE_EUM);
	assert_esim(ESIM_OK, crypto_cert_role(leaf, &role));
	assert_int_equal(role, CRYPTO_ROLE_EUICC);
	assert_esim(ESIM_OK, verify_euicc(&p, leaf, eum));
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE,
		    crypto_cert_eid_permitted(eum, "89049132123451234512345678901235"));
	crypto_cert_free(leaf);
	crypto_cert_free(eum);
	pki_free(&p);
}

static void test_good_server_chains(void **state)
{
	(void)state;
	static const struct {
		const char *oid;
		crypto_rsp_role role;
	} roles[] = {
	    {OID_DP_AUTH, CRYPTO_ROLE_DP_AUTH}, {OID_DP_PB, CRYPTO_ROLE_DP_PB},
	    {OID_DP_TLS, CRYPTO_ROLE_DP_TLS},	{OID_DS_AUTH, CRYPTO_ROLE_DS_AUTH},
	    {OID_DS_TLS, CRYPTO_ROLE_DS_TLS},
	};
	for (size_t c = 0; c < 2; c++) {
		struct pki p;

		pki_init(&p, c);
		for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
			struct spec s = spec_dp(roles[i].oid);
			crypto_cert *leaf = issue_by_ci(&p, &s);
			struct crypto_chain_opts o;
			const crypto_cert *ci = NULL;
			crypto_rsp_role role;
			char rid[32];

			assert_esim(ESIM_OK, crypto_chain_verify(p.trust, leaf, NULL, 0,
								 roles[i].role, opts_now(&o), &ci));
			assert_ptr_equal(ci, crypto_trust_get(p.trust, 0));
			assert_esim(ESIM_OK, crypto_cert_role(leaf, &role));
			assert_int_equal(role, roles[i].role);
			assert_esim(ESIM_OK, crypto_cert_registered_id(leaf, rid, sizeof rid));
			assert_string_equal(rid, "2.999.10");
			assert_esim(ESIM_E_BUF_SMALL, crypto_cert_registered_id(leaf, rid, 4));
			/* Any other required role is refused. */
			assert_esim(ESIM_E_CERT_WRONG_ROLE,
				    verify_leaf(&p, leaf,
						roles[i].role == CRYPTO_ROLE_DP_AUTH
						    ? CRYPTO_ROLE_DP_PB
						    : CRYPTO_ROLE_DP_AUTH));
			crypto_cert_free(leaf);
		}
		pki_free(&p);
	}
}

static void test_unknown_ci(void **state)
{
	(void)state;
	for (size_t c = 0; c < 2; c++) {
		struct pki p, other;
		struct spec s = spec_dp(OID_DP_AUTH);
		crypto_cert *dp;

		pki_init(&p, c);
		pki_init(&other, c);
		/* A complete, correct chain, but to a CI p does not trust. */
		assert_esim(ESIM_E_CERT_UNKNOWN_CI, verify_euicc(&p, other.euicc, other.eum));
		dp = issue_by_ci(&other, &s);
		assert_esim(ESIM_E_CERT_UNKNOWN_CI, verify_leaf(&p, dp, CRYPTO_ROLE_DP_AUTH));
		assert_esim(ESIM_OK, verify_leaf(&other, dp, CRYPTO_ROLE_DP_AUTH));
		/* Presenting the other CI as an intermediate does not make it trusted. */
		{
			const crypto_cert *im[1] = {other.ci};
			assert_esim(ESIM_E_CERT_UNKNOWN_CI,
				    crypto_chain_verify(p.trust, dp, im, 1, CRYPTO_ROLE_DP_AUTH,
							NULL, NULL));
		}
		assert_esim(ESIM_E_CERT_UNKNOWN_CI, verify_leaf(&p, other.ci, CRYPTO_ROLE_CI));
		crypto_cert_free(dp);
		pki_free(&other);
		pki_free(&p);
	}
}

static void test_wrong_role(void **state)
{
	(void)state;
	struct pki p;
	struct spec s;
	crypto_cert *pb, *fake_eum, *leaf;

	pki_init(&p, 0);
	s = spec_dp(OID_DP_PB);
	pb = issue_by_ci(&p, &s);
	assert_esim(ESIM_E_CERT_WRONG_ROLE, verify_leaf(&p, pb, CRYPTO_ROLE_DP_AUTH));
	assert_esim(ESIM_E_CERT_WRONG_ROLE, verify_leaf(&p, p.euicc, CRYPTO_ROLE_DP_AUTH));
	assert_esim(ESIM_E_CERT_WRONG_ROLE, verify_euicc(&p, pb, p.eum));
	/* An issuer with CA rights but an SM-DP+ role cannot stand for an EUM. */
	s = spec_eum();
	s.policy = OID_DP_AUTH;
	fake_eum = issue(&s, p.eum_key, p.ci, p.ci_key);
	s = spec_euicc();
	leaf = issue(&s, p.leaf_key, fake_eum, p.eum_key);
	assert_esim(ESIM_E_CERT_WRONG_ROLE, verify_euicc(&p, leaf, fake_eum));
	/* Only a CI enters the trust store. */
	assert_esim(ESIM_E_CERT_WRONG_ROLE, crypto_trust_add_ci(p.trust, p.eum));
	assert_esim(ESIM_E_ARG,
		    crypto_chain_verify(p.trust, p.euicc, NULL, 0, CRYPTO_ROLE_NONE, NULL, NULL));
	crypto_cert_free(leaf);
	crypto_cert_free(fake_eum);
	crypto_cert_free(pb);
	pki_free(&p);
}

static void test_no_role(void **state)
{
	(void)state;
	struct pki p;
	static const char *policies[] = {NULL, "1.2.3.4", "2.23.146.1.2.1.0.0", "2.23.146.1.2.1.8"};
	crypto_rsp_role role;

	pki_init(&p, 0);
	for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
		struct spec s = spec_dp(policies[i]);
		crypto_cert *leaf = issue_by_ci(&p, &s);

		assert_esim(ESIM_E_CERT_NO_ROLE, crypto_cert_role(leaf, &role));
		assert_int_equal(role, CRYPTO_ROLE_NONE);
		assert_esim(ESIM_E_CERT_NO_ROLE, verify_leaf(&p, leaf, CRYPTO_ROLE_DP_AUTH));
		crypto_cert_free(leaf);
	}
	/* An EUM without a role. */
	{
		struct spec s = spec_eum();
		crypto_cert *eum, *leaf;

		s.policy = NULL;
		eum = issue(&s, p.eum_key, p.ci, p.ci_key);
		s = spec_euicc();
		leaf = issue(&s, p.leaf_key, eum, p.eum_key);
		assert_esim(ESIM_E_CERT_NO_ROLE, verify_euicc(&p, leaf, eum));
		crypto_cert_free(leaf);
		crypto_cert_free(eum);
	}
	assert_string_equal(crypto_rsp_role_name(CRYPTO_ROLE_DP_AUTH), "DPauth");
	assert_string_equal(crypto_rsp_role_name(CRYPTO_ROLE_NONE), "none");
	pki_free(&p);
}

/* Validity at every level: leaf, EUM, CI. */
static void test_validity(void **state)
{
	(void)state;
	struct pki p;
	struct spec s;
	crypto_cert *old_leaf, *young_leaf, *old_eum, *leaf_of_old_eum, *old_dp;
	struct crypto_chain_opts o;
	const crypto_cert *im[1];

	pki_init(&p, 1);
	s = spec_euicc();
	s.not_before = -10 * DAY;
	s.not_after = -DAY / 2;
	old_leaf = issue_by_eum(&p, &s);
	assert_esim(ESIM_E_CERT_EXPIRED, verify_euicc(&p, old_leaf, p.eum));
	assert_esim(ESIM_E_CERT_EXPIRED, crypto_cert_check_time(old_leaf, time(NULL)));
	/* Without check_time the same chain passes (the eUICC's view, v2). */
	im[0] = p.eum;
	assert_esim(ESIM_OK,
		    crypto_chain_verify(p.trust, old_leaf, im, 1, CRYPTO_ROLE_EUICC, NULL, NULL));
	o.check_time = false;
	o.now = 0;
	assert_esim(ESIM_OK,
		    crypto_chain_verify(p.trust, old_leaf, im, 1, CRYPTO_ROLE_EUICC, &o, NULL));
	/* ... and at a time inside its validity. */
	o.check_time = true;
	o.now = time(NULL) - 3 * DAY / 4; /* the EUM and the CI date from -1 day */
	assert_esim(ESIM_OK,
		    crypto_chain_verify(p.trust, old_leaf, im, 1, CRYPTO_ROLE_EUICC, &o, NULL));

	s = spec_euicc();
	s.not_before = DAY;
	young_leaf = issue_by_eum(&p, &s);
	assert_esim(ESIM_E_CERT_NOT_YET_VALID, verify_euicc(&p, young_leaf, p.eum));

	s = spec_eum();
	s.not_before = -10 * DAY;
	s.not_after = -DAY;
	old_eum = issue(&s, p.eum_key, p.ci, p.ci_key);
	s = spec_euicc();
	leaf_of_old_eum = issue(&s, p.leaf_key, old_eum, p.eum_key);
	assert_esim(ESIM_E_CERT_EXPIRED, verify_euicc(&p, leaf_of_old_eum, old_eum));

	s = spec_dp(OID_DP_TLS);
	s.not_after = -1;
	old_dp = issue_by_ci(&p, &s);
	assert_esim(ESIM_E_CERT_EXPIRED, verify_leaf(&p, old_dp, CRYPTO_ROLE_DP_TLS));

	/* An expired CI: trusted (the store does not judge time), but a
	 * time-checked chain through it fails. */
	{
		struct pki q;
		struct spec cs = spec_ci();
		crypto_cert *ci, *dp;
		crypto_trust *t;
		struct crypto_chain_opts qo;

		pki_init(&q, 0);
		cs.not_before = -10 * DAY;
		cs.not_after = -DAY;
		ci = issue(&cs, q.ci_key, NULL, NULL);
		cs = spec_dp(OID_DP_AUTH);
		dp = issue(&cs, q.leaf_key, ci, q.ci_key);
		assert_esim(ESIM_OK, crypto_trust_new(&t));
		assert_esim(ESIM_OK, crypto_trust_add_ci(t, ci));
		assert_esim(
		    ESIM_E_CERT_EXPIRED,
		    crypto_chain_verify(t, dp, NULL, 0, CRYPTO_ROLE_DP_AUTH, opts_now(&qo), NULL));
		assert_esim(ESIM_OK,
			    crypto_chain_verify(t, dp, NULL, 0, CRYPTO_ROLE_DP_AUTH, NULL, NULL));
		crypto_trust_free(t);
		crypto_cert_free(dp);
		crypto_cert_free(ci);
		pki_free(&q);
	}
	crypto_cert_free(old_dp);
	crypto_cert_free(leaf_of_old_eum);
	crypto_cert_free(old_eum);
	crypto_cert_free(young_leaf);
	crypto_cert_free(old_leaf);
	pki_free(&p);
}

/* Flip the last byte of the DER (inside the signature's s) and reload. */
static crypto_cert *corrupt_signature(const crypto_cert *cert)
{
	size_t len;
	const uint8_t *der = crypto_cert_der(cert, &len);
	uint8_t *copy = malloc(len);
	crypto_cert *out = NULL;

	assert_non_null(copy);
	memcpy(copy, der, len);
	copy[len - 1] ^= 0x01;
	assert_esim(ESIM_OK, crypto_cert_load(copy, len, &out));
	free(copy);
	return out;
}

static void test_bad_signature(void **state)
{
	(void)state;
	for (size_t c = 0; c < 2; c++) {
		struct pki p;
		struct spec s = spec_dp(OID_DP_AUTH);
		crypto_cert *dp, *bad_dp, *bad_leaf, *bad_eum, *forged;
		EVP_PKEY *stranger;

		pki_init(&p, c);
		dp = issue_by_ci(&p, &s);
		bad_dp = corrupt_signature(dp);
		assert_esim(ESIM_E_CERT_BAD_SIGNATURE,
			    verify_leaf(&p, bad_dp, CRYPTO_ROLE_DP_AUTH));
		assert_esim(ESIM_E_CERT_BAD_SIGNATURE, crypto_cert_verify_signed_by(bad_dp, p.ci));
		assert_esim(ESIM_OK, crypto_cert_verify_signed_by(dp, p.ci));
		bad_leaf = corrupt_signature(p.euicc);
		assert_esim(ESIM_E_CERT_BAD_SIGNATURE, verify_euicc(&p, bad_leaf, p.eum));
		bad_eum = corrupt_signature(p.eum);
		assert_esim(ESIM_E_CERT_BAD_SIGNATURE, verify_euicc(&p, p.euicc, bad_eum));
		/* Right AKI, wrong key: signed by a stranger claiming to be the CI. */
		stranger = make_key(p.curve);
		s = spec_dp(OID_DP_PB);
		forged = issue(&s, p.leaf_key, p.ci, stranger);
		assert_esim(ESIM_E_CERT_BAD_SIGNATURE, verify_leaf(&p, forged, CRYPTO_ROLE_DP_PB));
		EVP_PKEY_free(stranger);
		crypto_cert_free(forged);
		crypto_cert_free(bad_eum);
		crypto_cert_free(bad_leaf);
		crypto_cert_free(bad_dp);
		crypto_cert_free(dp);
		pki_free(&p);
	}
}

static void test_sig_alg(void **state)
{
	(void)state;
	struct pki p;
	struct spec s = spec_dp(OID_DP_AUTH);
	crypto_cert *dp;

	pki_init(&p, 0);
	s.md = EVP_sha384();
	dp = issue_by_ci(&p, &s);
	assert_esim(ESIM_E_CERT_SIG_ALG, verify_leaf(&p, dp, CRYPTO_ROLE_DP_AUTH));
	crypto_cert_free(dp);
	pki_free(&p);
}

static void test_missing_issuer(void **state)
{
	(void)state;
	struct pki p, other;
	struct spec s = spec_euicc();
	crypto_cert *by_ci;
	const crypto_cert *im[1];

	pki_init(&p, 0);
	pki_init(&other, 0);
	/* The eUICC without its EUM. */
	assert_esim(ESIM_E_CERT_MISSING_ISSUER, verify_euicc(&p, p.euicc, NULL));
	/* ... with someone else's EUM. */
	assert_esim(ESIM_E_CERT_MISSING_ISSUER, verify_euicc(&p, p.euicc, other.eum));
	/* ... with the CI in the EUM's place. */
	im[0] = p.ci;
	assert_esim(ESIM_E_CERT_MISSING_ISSUER,
		    crypto_chain_verify(p.trust, p.euicc, im, 1, CRYPTO_ROLE_EUICC, NULL, NULL));
	/* An eUICC certificate issued straight by the CI lacks its EUM level. */
	by_ci = issue_by_ci(&p, &s);
	assert_esim(ESIM_E_CERT_MISSING_ISSUER, verify_euicc(&p, by_ci, NULL));
	crypto_cert_free(by_ci);
	pki_free(&other);
	pki_free(&p);
}

static void test_not_ca(void **state)
{
	(void)state;
	static const struct {
		const char *bc, *ku;
	} bad[] = {
	    {NULL, "critical,keyCertSign"},		   /* no basicConstraints */
	    {"critical,CA:FALSE", "critical,keyCertSign"}, /* CA:FALSE */
	    {"critical,CA:TRUE,pathlen:0", KU_SIGN},	   /* no keyCertSign */
	    {"critical,CA:TRUE,pathlen:0", NULL},	   /* no keyUsage */
	};
	struct pki p;

	pki_init(&p, 1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct spec s = spec_eum();
		crypto_cert *eum, *leaf;

		s.bc = bad[i].bc;
		s.ku = bad[i].ku;
		eum = issue(&s, p.eum_key, p.ci, p.ci_key);
		s = spec_euicc();
		leaf = issue(&s, p.leaf_key, eum, p.eum_key);
		assert_esim(ESIM_E_CERT_NOT_CA, verify_euicc(&p, leaf, eum));
		assert_esim(ESIM_E_CERT_NOT_CA, verify_leaf(&p, eum, CRYPTO_ROLE_EUM));
		assert_esim(ESIM_E_CERT_NOT_CA, crypto_cert_check_ca(eum));
		crypto_cert_free(leaf);
		crypto_cert_free(eum);
	}
	assert_esim(ESIM_OK, crypto_cert_check_ca(p.eum));
	pki_free(&p);
}

static void test_eid(void **state)
{
	(void)state;
	static const char *no_eid[] = {
	    NULL,				 /* no serialNumber */
	    "8904903212345123451234567890123",	 /* 31 digits */
	    "890490321234512345123456789012355", /* 33 digits */
	    "8904903212345123451234567890123A",	 /* not a digit */
	};
	struct pki p;
	char eid[CRYPTO_EID_DIGITS + 1];

	pki_init(&p, 0);
	{
		struct spec s = spec_euicc();
		crypto_cert *leaf;

		s.eid = "89049033123451234512345678901234"; /* EIN 89049033 */
		leaf = issue_by_eum(&p, &s);
		assert_esim(ESIM_OK, crypto_cert_eid(leaf, eid));
		assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, verify_euicc(&p, leaf, p.eum));
		crypto_cert_free(leaf);
	}
	for (size_t i = 0; i < sizeof no_eid / sizeof no_eid[0]; i++) {
		struct spec s = spec_euicc();
		crypto_cert *leaf;

		s.eid = no_eid[i];
		leaf = issue_by_eum(&p, &s);
		assert_esim(ESIM_E_CERT_NO_EID, crypto_cert_eid(leaf, eid));
		assert_esim(ESIM_E_CERT_NO_EID, verify_euicc(&p, leaf, p.eum));
		crypto_cert_free(leaf);
	}
	/* An EUM that declares no range permits nothing. */
	{
		struct spec s = spec_eum();
		crypto_cert *eum, *leaf;

		s.nc = NULL;
		eum = issue(&s, p.eum_key, p.ci, p.ci_key);
		s = spec_euicc();
		leaf = issue(&s, p.leaf_key, eum, p.eum_key);
		assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, verify_euicc(&p, leaf, eum));
		crypto_cert_free(leaf);
		crypto_cert_free(eum);
	}
	/* Wrong check digits are the caller's business, not the chain's. */
	{
		struct spec s = spec_euicc();
		crypto_cert *leaf;

		s.eid = "89049032123451234512345678901299";
		leaf = issue_by_eum(&p, &s);
		assert_esim(ESIM_OK, verify_euicc(&p, leaf, p.eum));
		assert_esim(ESIM_OK, crypto_cert_eid(leaf, eid));
		assert_false(crypto_eid_check_digits(eid));
		crypto_cert_free(leaf);
	}
	assert_true(crypto_eid_check_digits(EID_OK));
	assert_false(crypto_eid_check_digits("89049032123451234512345678901234"));
	assert_false(crypto_eid_check_digits("8904903212345123451234567890123"));
	assert_esim(ESIM_OK, crypto_cert_eid_permitted(p.eum, EID_OK));
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE,
		    crypto_cert_eid_permitted(p.eum, "89049031123451234512345678901235"));
	assert_esim(ESIM_E_CERT_EID_OUT_OF_RANGE, crypto_cert_eid_permitted(p.eum, "89049032"));
	pki_free(&p);
}

static void test_ski_aki(void **state)
{
	(void)state;
	struct pki p;
	struct spec s;
	crypto_cert *c1, *c2, *eum, *leaf;
	uint8_t id[CRYPTO_KEY_ID_MAX];
	size_t len;

	pki_init(&p, 0);
	s = spec_dp(OID_DP_AUTH);
	s.no_ski = true;
	c1 = issue_by_ci(&p, &s);
	assert_esim(ESIM_E_CERT_NO_SKI, crypto_cert_ski(c1, id, &len));
	assert_esim(ESIM_E_CERT_NO_SKI, verify_leaf(&p, c1, CRYPTO_ROLE_DP_AUTH));
	s = spec_dp(OID_DP_AUTH);
	s.no_aki = true;
	c2 = issue_by_ci(&p, &s);
	assert_esim(ESIM_E_CERT_NO_AKI, crypto_cert_aki(c2, id, &len));
	assert_esim(ESIM_E_CERT_NO_AKI, verify_leaf(&p, c2, CRYPTO_ROLE_DP_AUTH));
	/* The EUM without an AKI: its CI cannot be named. */
	s = spec_eum();
	s.no_aki = true;
	eum = issue(&s, p.eum_key, p.ci, p.ci_key);
	assert_esim(ESIM_E_CERT_NO_AKI, verify_euicc(&p, p.euicc, eum));
	crypto_cert_free(eum);
	/* The EUM without an SKI: the eUICC's issuer cannot be identified. */
	s = spec_eum();
	s.no_ski = true;
	eum = issue(&s, p.eum_key, p.ci, p.ci_key);
	s = spec_euicc();
	s.no_aki = false;
	leaf = issue_by_eum(&p, &s); /* AKI from the good EUM: same key */
	assert_esim(ESIM_E_CERT_NO_SKI, verify_euicc(&p, leaf, eum));
	/* A CI without SKI cannot be trusted: nothing could name it. */
	{
		struct spec cs = spec_ci();
		crypto_cert *ci;

		cs.no_ski = true;
		ci = issue(&cs, p.ci_key, NULL, NULL);
		assert_esim(ESIM_E_CERT_NO_SKI, crypto_trust_add_ci(p.trust, ci));
		crypto_cert_free(ci);
	}
	/* SKI / AKI values link the good chain. */
	{
		uint8_t aki[CRYPTO_KEY_ID_MAX];
		size_t aki_len;

		assert_esim(ESIM_OK, crypto_cert_ski(p.eum, id, &len));
		assert_esim(ESIM_OK, crypto_cert_aki(p.euicc, aki, &aki_len));
		assert_int_equal(len, 20);
		assert_memory_equal(id, aki, len);
	}
	crypto_cert_free(leaf);
	crypto_cert_free(eum);
	crypto_cert_free(c2);
	crypto_cert_free(c1);
	pki_free(&p);
}

static void test_key_usage(void **state)
{
	(void)state;
	static const char *bad[] = {"critical,keyAgreement", "critical,keyCertSign", NULL};
	struct pki p;

	pki_init(&p, 1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct spec s = spec_dp(OID_DP_AUTH);
		crypto_cert *dp, *leaf;

		s.ku = bad[i];
		dp = issue_by_ci(&p, &s);
		assert_esim(ESIM_E_CERT_KEY_USAGE, verify_leaf(&p, dp, CRYPTO_ROLE_DP_AUTH));
		s = spec_euicc();
		s.ku = bad[i];
		leaf = issue_by_eum(&p, &s);
		assert_esim(ESIM_E_CERT_KEY_USAGE, verify_euicc(&p, leaf, p.eum));
		crypto_cert_free(leaf);
		crypto_cert_free(dp);
	}
	pki_free(&p);
}

static void test_curves(void **state)
{
	(void)state;
	struct pki nist, brp;
	struct spec s = spec_dp(OID_DP_AUTH);
	crypto_cert *mixed, *p384;
	EVP_PKEY *k384;
	crypto_curve curve;

	pki_init(&nist, 0);
	pki_init(&brp, 1);
	/* A P-256 key certified by the brainpool CI: the chain mixes curves. */
	mixed = issue(&s, nist.leaf_key, brp.ci, brp.ci_key);
	assert_esim(ESIM_E_CRYPTO_CURVE_MISMATCH, verify_leaf(&brp, mixed, CRYPTO_ROLE_DP_AUTH));
	k384 = make_key("secp384r1");
	p384 = issue(&s, k384, nist.ci, nist.ci_key);
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, crypto_cert_curve(p384, &curve));
	assert_esim(ESIM_E_CRYPTO_UNSUPPORTED_CURVE, verify_leaf(&nist, p384, CRYPTO_ROLE_DP_AUTH));
	EVP_PKEY_free(k384);
	crypto_cert_free(p384);
	crypto_cert_free(mixed);
	pki_free(&brp);
	pki_free(&nist);
}

static void test_parse(void **state)
{
	(void)state;
	struct pki p;
	const uint8_t *der;
	size_t len;
	uint8_t *buf;
	crypto_cert *c = NULL;
	static const uint8_t garbage[] = "this is not a certificate";
	static const uint8_t seq_garbage[] = {0x30, 0x03, 0x02, 0x01, 0x05};

	pki_init(&p, 0);
	der = crypto_cert_der(p.euicc, &len);
	buf = malloc(len + 64);
	assert_non_null(buf);

	assert_esim(ESIM_E_CERT_PARSE, crypto_cert_load(garbage, sizeof garbage - 1, &c));
	assert_null(c);
	assert_esim(ESIM_E_CERT_PARSE, crypto_cert_load(seq_garbage, sizeof seq_garbage, &c));
	assert_esim(ESIM_E_CERT_PARSE, crypto_cert_load(der, 0, &c));
	/* Every truncation of a good certificate. */
	for (size_t n = 1; n < len; n++)
		assert_esim(ESIM_E_CERT_PARSE, crypto_cert_load(der, n, &c));
	/* Trailing bytes after the certificate. */
	memcpy(buf, der, len);
	buf[len] = 0x00;
	assert_esim(ESIM_E_CERT_PARSE, crypto_cert_load(buf, len + 1, &c));
	/* The outer length in a non-minimal (BER, not DER) form. */
	assert_int_equal(der[1], 0x82);
	buf[0] = 0x30;
	buf[1] = 0x83;
	buf[2] = 0x00;
	memcpy(buf + 3, der + 2, len - 2);
	assert_esim(ESIM_E_CERT_PARSE, crypto_cert_load(buf, len + 1, &c));
	/* The exact DER loads, and is kept as a copy. */
	assert_esim(ESIM_OK, crypto_cert_load(der, len, &c));
	{
		size_t got_len;
		const uint8_t *got = crypto_cert_der(c, &got_len);
		assert_int_equal(got_len, len);
		assert_memory_equal(got, der, len);
		assert_ptr_not_equal(got, der); /* a copy */
	}
	crypto_cert_free(c);
	c = NULL;

	/* PEM: same DER; text after the block is refused; other PEM types too. */
	{
		BIO *bio = BIO_new(BIO_s_mem());
		char *pem;
		long pem_len;
		char *with_tail;

		assert_non_null(bio);
		X509 *xe = NULL;
		assert_esim(ESIM_OK, crypto_cert_to_x509(p.euicc, &xe));
		assert_int_equal(PEM_write_bio_X509(bio, xe), 1);
		X509_free(xe);
		pem_len = BIO_get_mem_data(bio, &pem);
		assert_esim(ESIM_OK, crypto_cert_load((const uint8_t *)pem, (size_t)pem_len, &c));
		{
			size_t got_len;
			const uint8_t *got = crypto_cert_der(c, &got_len);
			assert_int_equal(got_len, len);
			assert_memory_equal(got, der, len);
		}
		crypto_cert_free(c);
		c = NULL;
		with_tail = malloc((size_t)pem_len + 16);
		assert_non_null(with_tail);
		memcpy(with_tail, pem, (size_t)pem_len);
		memcpy(with_tail + pem_len, "\r\n \n", 4);
		assert_esim(ESIM_OK,
			    crypto_cert_load((const uint8_t *)with_tail, (size_t)pem_len + 4, &c));
		crypto_cert_free(c);
		c = NULL;
		memcpy(with_tail + pem_len, "junk", 4);
		assert_esim(ESIM_E_CERT_PARSE,
			    crypto_cert_load((const uint8_t *)with_tail, (size_t)pem_len + 4, &c));
		/* A damaged base64 body. */
		memcpy(with_tail, pem, (size_t)pem_len);
		with_tail[40] = '*';
		assert_esim(ESIM_E_CERT_PARSE,
			    crypto_cert_load((const uint8_t *)with_tail, (size_t)pem_len, &c));
		free(with_tail);
		BIO_free(bio);

		bio = BIO_new(BIO_s_mem());
		assert_non_null(bio);
		assert_int_equal(PEM_write_bio_PUBKEY(bio, p.ci_key), 1);
		pem_len = BIO_get_mem_data(bio, &pem);
		assert_esim(ESIM_E_CERT_PARSE,
			    crypto_cert_load((const uint8_t *)pem, (size_t)pem_len, &c));
		BIO_free(bio);
	}
	assert_null(c);
	assert_esim(ESIM_E_ARG, crypto_cert_load(NULL, 5, &c));
	assert_esim(ESIM_E_IO, crypto_cert_load_file("/nonexistent/cert.der", &c));
	free(buf);
	pki_free(&p);
}

static void test_trust_store(void **state)
{
	(void)state;
	struct pki p, other;
	crypto_trust *t;
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t ski_len;
	crypto_cert *copy, *cross, *ci2;
	struct spec s = spec_ci();

	pki_init(&p, 0);
	pki_init(&other, 1);
	assert_esim(ESIM_OK, crypto_trust_new(&t));
	assert_int_equal(crypto_trust_count(t), 0);
	assert_null(crypto_trust_get(t, 0));

	/* The store keeps its own copy: the caller's may go. */
	{
		size_t len;
		const uint8_t *der = crypto_cert_der(p.ci, &len);
		assert_esim(ESIM_OK, crypto_cert_load(der, len, &copy));
	}
	assert_esim(ESIM_OK, crypto_trust_add_ci(t, copy));
	crypto_cert_free(copy);
	assert_esim(ESIM_OK, crypto_trust_add_ci(t, p.ci)); /* again: no-op */
	assert_esim(ESIM_OK, crypto_trust_add_ci(t, other.ci));
	assert_int_equal(crypto_trust_count(t), 2);
	assert_esim(ESIM_OK, crypto_cert_ski(other.ci, ski, &ski_len));
	assert_ptr_equal(crypto_trust_find(t, ski, ski_len), crypto_trust_get(t, 1));
	assert_esim(ESIM_OK, crypto_cert_ski(p.ci, ski, &ski_len));
	assert_ptr_equal(crypto_trust_find(t, ski, ski_len), crypto_trust_get(t, 0));
	ski[0] ^= 0xff;
	assert_null(crypto_trust_find(t, ski, ski_len));
	assert_esim(ESIM_OK,
		    crypto_chain_verify(t, other.euicc, (const crypto_cert *const[]){other.eum}, 1,
					CRYPTO_ROLE_EUICC, NULL, NULL));

	/* A certificate with the CI role but issued by another CI is no root. */
	s.no_aki = false;
	cross = issue(&s, p.leaf_key, p.ci, p.ci_key);
	assert_esim(ESIM_E_CERT_BAD_SIGNATURE, crypto_trust_add_ci(t, cross));
	/* A different certificate under a PKID already trusted. */
	s = spec_ci();
	s.cn = "Test CI, renewed";
	ci2 = issue(&s, p.ci_key, NULL, NULL);
	assert_esim(ESIM_E_ARG, crypto_trust_add_ci(t, ci2));
	assert_int_equal(crypto_trust_count(t), 2);
	assert_esim(ESIM_E_CERT_PARSE, crypto_trust_add_ci_file(t, "/dev/null"));

	crypto_cert_free(ci2);
	crypto_cert_free(cross);
	crypto_trust_free(t);
	pki_free(&other);
	pki_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_euicc_chain),
	    cmocka_unit_test(test_good_v3_euicc_chain),
	    cmocka_unit_test(test_good_server_chains),
	    cmocka_unit_test(test_unknown_ci),
	    cmocka_unit_test(test_wrong_role),
	    cmocka_unit_test(test_no_role),
	    cmocka_unit_test(test_validity),
	    cmocka_unit_test(test_bad_signature),
	    cmocka_unit_test(test_sig_alg),
	    cmocka_unit_test(test_missing_issuer),
	    cmocka_unit_test(test_not_ca),
	    cmocka_unit_test(test_eid),
	    cmocka_unit_test(test_ski_aki),
	    cmocka_unit_test(test_key_usage),
	    cmocka_unit_test(test_curves),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_trust_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
