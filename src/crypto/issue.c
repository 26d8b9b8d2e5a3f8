/*
 * Issuing GSMA RSP certificates (SGP.22 section 4.5) for private test PKIs.
 *
 * Real deployments get their certificates from the GSMA CI and an EUM; a lab
 * needs its own hierarchy that looks exactly like theirs, so that our eUICC,
 * LPA and SM-DP+ check the same things they will check in production. The
 * profiles below follow the SGP.26 test certificates (digest section 10.3):
 * critical keyUsage and certificatePolicies carrying the role OID, SKI = SHA-1
 * of the public key bits (RFC 5280 method 1) and AKI = the issuer's SKI, the
 * CI/EUM/SM-DP+ OIDs as SubjectAltName registeredID, and the EUM's permitted
 * EIN prefix as a nameConstraints directoryName serialNumber.
 *
 * Two deliberate deviations from "critical everywhere": the DPtls/DStls
 * policy is non-critical (as in SGP.26) because generic TLS stacks reject
 * certificates with critical extensions they do not implement, and the
 * operator's ES2+ client certificate has no policy at all, as there is no
 * RSP role for it.
 *
 * The file also holds the SGP.29 EID check digits (ISO 7064 mod 97-10),
 * computed digit by digit since a 32-digit EID does not fit any C integer.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "esim/pki.h"

#define KUB_DIGITAL_SIGNATURE 0 /* bit numbers of KeyUsage (RFC 5280 4.2.1.3) */
#define KUB_KEY_CERT_SIGN     5
#define KUB_CRL_SIGN	      6

#define KU_BIT(n) (1u << (n))

#define SERIAL_LEN 16

enum eku_kind { EKU_NONE, EKU_SERVER_CLIENT, EKU_CLIENT };

struct profile {
	crypto_rsp_role role; /* CRYPTO_ROLE_NONE: no certificatePolicies */
	unsigned key_usage;
	bool ca;
	bool pathlen0; /* pathLenConstraint 0: the EUM signs only eUICCs */
	bool tls;      /* TLS server: non-critical policy, default SAN names */
	enum eku_kind eku;
	const char *rid; /* default SubjectAltName registeredID */
	const char *org;
	const char *org_unit;
	const char *cn; /* NULL: the first DNS name */
};

#define DIGSIG KU_BIT(KUB_DIGITAL_SIGNATURE)

static const struct profile *profile_of(crypto_issue_kind kind)
{
	static const struct profile profiles[] = {
	    [CRYPTO_ISSUE_CI] = {.role = CRYPTO_ROLE_CI,
				 .key_usage = KU_BIT(KUB_KEY_CERT_SIGN) | KU_BIT(KUB_CRL_SIGN),
				 .ca = true,
				 .rid = CRYPTO_PKI_OID_CI,
				 .org = "esimkit",
				 .org_unit = "TESTCERT",
				 .cn = "esimkit Test CI"},
	    [CRYPTO_ISSUE_EUM] = {.role = CRYPTO_ROLE_EUM,
				  .key_usage = KU_BIT(KUB_KEY_CERT_SIGN),
				  .ca = true,
				  .pathlen0 = true,
				  .rid = CRYPTO_PKI_OID_EUM,
				  .org = "esimkit Test EUM",
				  .cn = "esimkit EUM"},
	    [CRYPTO_ISSUE_EUICC] = {.role = CRYPTO_ROLE_EUICC,
				    .key_usage = DIGSIG,
				    .org = "esimkit Test EUM",
				    .cn = "esimkit eUICC"},
	    [CRYPTO_ISSUE_DP_TLS] = {.role = CRYPTO_ROLE_DP_TLS,
				     .key_usage = DIGSIG,
				     .tls = true,
				     .eku = EKU_SERVER_CLIENT,
				     .rid = CRYPTO_PKI_OID_SMDP,
				     .org = "esimkit"},
	    [CRYPTO_ISSUE_DP_AUTH] = {.role = CRYPTO_ROLE_DP_AUTH,
				      .key_usage = DIGSIG,
				      .rid = CRYPTO_PKI_OID_SMDP,
				      .org = "esimkit",
				      .cn = "esimkit SM-DP+"},
	    [CRYPTO_ISSUE_DP_PB] = {.role = CRYPTO_ROLE_DP_PB,
				    .key_usage = DIGSIG,
				    .rid = CRYPTO_PKI_OID_SMDP,
				    .org = "esimkit",
				    .cn = "esimkit SM-DP+"},
	    [CRYPTO_ISSUE_DS_TLS] = {.role = CRYPTO_ROLE_DS_TLS,
				     .key_usage = DIGSIG,
				     .tls = true,
				     .eku = EKU_SERVER_CLIENT,
				     .org = "esimkit"},
	    [CRYPTO_ISSUE_DS_AUTH] = {.role = CRYPTO_ROLE_DS_AUTH,
				      .key_usage = DIGSIG,
				      .org = "esimkit",
				      .cn = "esimkit SM-DS"},
	    [CRYPTO_ISSUE_OPERATOR] = {.role = CRYPTO_ROLE_NONE,
				       .key_usage = DIGSIG,
				       .eku = EKU_CLIENT,
				       .org = "esimkit Test Operator",
				       .cn = "esimkit Test Operator"},
	};
	if ((unsigned)kind >= sizeof profiles / sizeof profiles[0])
		return NULL;
	return &profiles[kind];
}

crypto_rsp_role crypto_issue_kind_role(crypto_issue_kind kind)
{
	const struct profile *p = profile_of(kind);
	return p ? p->role : CRYPTO_ROLE_NONE;
}

/* ---- EID check digits (SGP.29 / ISO 7064 mod 97-10) ---------------------- */

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

/* n mod 97 of a decimal string, one digit at a time. */
static unsigned mod97(const char *digits, size_t n, unsigned acc)
{
	for (size_t i = 0; i < n; i++)
		acc = (acc * 10 + (unsigned)(digits[i] - '0')) % 97;
	return acc;
}

esim_err crypto_pki_eid_check(const char *eid)
{
	if (eid == NULL || strlen(eid) != CRYPTO_EID_DIGITS || !all_digits(eid, CRYPTO_EID_DIGITS))
		return ESIM_E_CRYPTO_EID_FORMAT;
	return mod97(eid, CRYPTO_EID_DIGITS, 0) == 1 ? ESIM_OK : ESIM_E_CRYPTO_EID_CHECK_DIGITS;
}

esim_err crypto_pki_eid_check_digits(const char *digits, char out[3])
{
	if (digits == NULL)
		return ESIM_E_ARG;
	size_t n = strlen(digits);
	if ((n != CRYPTO_EID_DIGITS && n != CRYPTO_EID_DIGITS - 2) || !all_digits(digits, n))
		return ESIM_E_CRYPTO_EID_FORMAT;
	/* the prefix followed by "00" */
	unsigned r = mod97("00", 2, mod97(digits, CRYPTO_EID_DIGITS - 2, 0));
	unsigned check = 98 - r;
	out[0] = (char)('0' + check / 10);
	out[1] = (char)('0' + check % 10);
	out[2] = '\0';
	return ESIM_OK;
}

esim_err crypto_pki_eid_complete(const char *prefix30, char out[CRYPTO_EID_DIGITS + 1])
{
	if (prefix30 == NULL)
		return ESIM_E_ARG;
	if (strlen(prefix30) != CRYPTO_EID_DIGITS - 2)
		return ESIM_E_CRYPTO_EID_FORMAT;
	char check[3];
	esim_err err = crypto_pki_eid_check_digits(prefix30, check);
	if (err != ESIM_OK)
		return err;
	memcpy(out, prefix30, CRYPTO_EID_DIGITS - 2);
	memcpy(out + CRYPTO_EID_DIGITS - 2, check, 3);
	return ESIM_OK;
}

/* ---- building blocks ------------------------------------------------------ */

static bool valid_oid_text(const char *s)
{
	/* dotted decimal only: OBJ_txt2obj would also accept names */
	size_t n = strlen(s);
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : (s[i] < '0' || s[i] > '9'))
			return false;
	}
	return strchr(s, '.') != NULL;
}

static bool valid_dns_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '*' || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

/* SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2 (1)),
 * as the SGP.26 certificates compute their SKIs. */
static esim_err key_id_of(X509 *x, uint8_t out[CRYPTO_PKI_SKI_LEN])
{
	ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
	unsigned int n = 0;
	if (bits == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	if (!EVP_Digest(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), out, &n,
			EVP_sha1(), NULL) ||
	    n != CRYPTO_PKI_SKI_LEN)
		return ESIM_E_CRYPTO_OPENSSL;
	return ESIM_OK;
}

static esim_err random_serial(X509 *x)
{
	uint8_t b[SERIAL_LEN];
	if (RAND_bytes(b, sizeof b) != 1)
		return ESIM_E_CRYPTO_RANDOM;
	/* positive, and exactly SERIAL_LEN bytes once DER-encoded */
	b[0] &= 0x7f;
	if (b[0] == 0)
		b[0] = 1;
	BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
	esim_err err = ESIM_E_CRYPTO_OPENSSL;
	if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		err = ESIM_OK;
	BN_free(bn);
	return err;
}

static esim_err name_add(X509_NAME *name, int nid, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return ESIM_OK;
	if (nid == NID_countryName && strlen(value) != 2)
		return ESIM_E_ARG;
	if (strlen(value) > 64)
		return ESIM_E_ARG;
	if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value, -1,
					-1, 0))
		return ESIM_E_ARG;
	return ESIM_OK;
}

/* One extension, DER-encoded from its OpenSSL structure. */
static esim_err add_ext(X509 *x, int nid, void *value, bool critical)
{
	if (X509_add1_ext_i2d(x, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
		return ESIM_E_CRYPTO_OPENSSL;
	return ESIM_OK;
}

static esim_err add_basic_constraints(X509 *x, int pathlen)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	esim_err err = ESIM_E_NOMEM;
	if (bc == NULL)
		return err;
	bc->ca = 0xff;
	if (pathlen >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		if (bc->pathlen == NULL || !ASN1_INTEGER_set(bc->pathlen, pathlen))
			goto out;
	}
	err = add_ext(x, NID_basic_constraints, bc, true);
out:
	BASIC_CONSTRAINTS_free(bc);
	return err;
}

static esim_err add_key_usage(X509 *x, unsigned bits)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	esim_err err = ESIM_E_NOMEM;
	if (ku == NULL)
		return err;
	for (int i = 0; i < 9; i++) {
		if ((bits & KU_BIT(i)) && !ASN1_BIT_STRING_set_bit(ku, i, 1))
			goto out;
	}
	err = add_ext(x, NID_key_usage, ku, true);
out:
	ASN1_BIT_STRING_free(ku);
	return err;
}

static esim_err add_policy(X509 *x, crypto_rsp_role role, bool critical)
{
	char oid[32];
	snprintf(oid, sizeof oid, "2.23.146.1.2.1.%d", (int)role);
	CERTIFICATEPOLICIES *pols = sk_POLICYINFO_new_null();
	POLICYINFO *pi = POLICYINFO_new();
	esim_err err = ESIM_E_NOMEM;
	if (pols == NULL || pi == NULL)
		goto out;
	ASN1_OBJECT_free(pi->policyid);
	pi->policyid = OBJ_txt2obj(oid, 1);
	if (pi->policyid == NULL || !sk_POLICYINFO_push(pols, pi))
		goto out;
	pi = NULL;
	err = add_ext(x, NID_certificate_policies, pols, critical);
out:
	POLICYINFO_free(pi);
	CERTIFICATEPOLICIES_free(pols);
	return err;
}

static esim_err add_eku(X509 *x, enum eku_kind kind)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	esim_err err = ESIM_E_NOMEM;
	if (eku == NULL)
		return err;
	if (kind == EKU_SERVER_CLIENT && !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)))
		goto out;
	if (!sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)))
		goto out;
	err = add_ext(x, NID_ext_key_usage, eku, true);
out:
	/* the objects are OpenSSL's static ones: free only the stack */
	sk_ASN1_OBJECT_free(eku);
	return err;
}

static esim_err add_key_ids(X509 *x, const uint8_t ski[CRYPTO_PKI_SKI_LEN], const uint8_t *aki)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	AUTHORITY_KEYID *ak = NULL;
	esim_err err = ESIM_E_NOMEM;
	if (os == NULL || !ASN1_OCTET_STRING_set(os, ski, CRYPTO_PKI_SKI_LEN))
		goto out;
	err = add_ext(x, NID_subject_key_identifier, os, false);
	if (err != ESIM_OK || aki == NULL)
		goto out;
	err = ESIM_E_NOMEM;
	ak = AUTHORITY_KEYID_new();
	if (ak == NULL || (ak->keyid = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(ak->keyid, aki, CRYPTO_PKI_SKI_LEN))
		goto out;
	err = add_ext(x, NID_authority_key_identifier, ak, false);
out:
	ASN1_OCTET_STRING_free(os);
	AUTHORITY_KEYID_free(ak);
	return err;
}

static esim_err gens_push(GENERAL_NAMES *gens, GENERAL_NAME *gn)
{
	if (gn == NULL)
		return ESIM_E_NOMEM;
	if (!sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		return ESIM_E_NOMEM;
	}
	return ESIM_OK;
}

static esim_err push_dns(GENERAL_NAMES *gens, const char *name)
{
	if (!valid_dns_name(name))
		return ESIM_E_ARG;
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	if (s == NULL || !ASN1_STRING_set(s, name, -1)) {
		ASN1_IA5STRING_free(s);
		return ESIM_E_NOMEM;
	}
	GENERAL_NAME *gn = GENERAL_NAME_new();
	if (gn == NULL) {
		ASN1_IA5STRING_free(s);
		return ESIM_E_NOMEM;
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	return gens_push(gens, gn);
}

static esim_err push_ip(GENERAL_NAMES *gens, const char *text)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(text);
	if (ip == NULL)
		return ESIM_E_ARG;
	GENERAL_NAME *gn = GENERAL_NAME_new();
	if (gn == NULL) {
		ASN1_OCTET_STRING_free(ip);
		return ESIM_E_NOMEM;
	}
	GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	return gens_push(gens, gn);
}

static esim_err push_rid(GENERAL_NAMES *gens, const char *oid)
{
	if (!valid_oid_text(oid))
		return ESIM_E_ARG;
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	if (obj == NULL)
		return ESIM_E_ARG;
	GENERAL_NAME *gn = GENERAL_NAME_new();
	if (gn == NULL) {
		ASN1_OBJECT_free(obj);
		return ESIM_E_NOMEM;
	}
	GENERAL_NAME_set0_value(gn, GEN_RID, obj);
	return gens_push(gens, gn);
}

/* SubjectAltName in the SGP.26 order: names first, registeredID last. */
static esim_err add_san(X509 *x, const struct crypto_issue_params *p, const struct profile *prof,
			const char *rid)
{
	static const char *const def_dns[] = {"localhost"};
	static const char *const def_ip[] = {"127.0.0.1"};
	const char *const *dns = p->dns_names;
	const char *const *ips = p->ip_addrs;
	size_t n_dns = dns ? p->n_dns_names : 0;
	size_t n_ip = ips ? p->n_ip_addrs : 0;
	if (prof->tls && n_dns == 0 && n_ip == 0) {
		dns = def_dns;
		n_dns = 1;
		ips = def_ip;
		n_ip = 1;
	}
	if (n_dns == 0 && n_ip == 0 && rid == NULL)
		return ESIM_OK;

	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	esim_err err = gens ? ESIM_OK : ESIM_E_NOMEM;
	for (size_t i = 0; err == ESIM_OK && i < n_dns; i++)
		err = dns[i] ? push_dns(gens, dns[i]) : ESIM_E_ARG;
	for (size_t i = 0; err == ESIM_OK && i < n_ip; i++)
		err = ips[i] ? push_ip(gens, ips[i]) : ESIM_E_ARG;
	if (err == ESIM_OK && rid != NULL)
		err = push_rid(gens, rid);
	if (err == ESIM_OK)
		err = add_ext(x, NID_subject_alt_name, gens, false);
	GENERAL_NAMES_free(gens);
	return err;
}

/* EUM: permitted subtree directoryName {O = the EUM's organisation,
 * serialNumber = EIN prefix}; SGP.22 verifiers check EID.startswith(EIN). */
static esim_err add_name_constraints(X509 *x, const char *org, const char *ein)
{
	NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
	GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
	X509_NAME *dn = X509_NAME_new();
	esim_err err = ESIM_E_NOMEM;
	if (nc == NULL || st == NULL || dn == NULL)
		goto out;
	if ((err = name_add(dn, NID_organizationName, org)) != ESIM_OK ||
	    (err = name_add(dn, NID_serialNumber, ein)) != ESIM_OK)
		goto out;
	err = ESIM_E_NOMEM;
	if ((nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()) == NULL)
		goto out;
	if (st->base == NULL && (st->base = GENERAL_NAME_new()) == NULL)
		goto out;
	GENERAL_NAME_set0_value(st->base, GEN_DIRNAME, dn);
	dn = NULL;
	if (!sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st))
		goto out;
	st = NULL;
	err = add_ext(x, NID_name_constraints, nc, true);
out:
	X509_NAME_free(dn);
	GENERAL_SUBTREE_free(st);
	NAME_CONSTRAINTS_free(nc);
	return err;
}

/* The EIN for an EUM: explicit, or the first digits of the EID. "" = none. */
static esim_err eum_ein(const struct crypto_issue_params *p, char out[CRYPTO_EID_DIGITS + 1])
{
	out[0] = '\0';
	if (p->ein != NULL) {
		size_t n = strlen(p->ein);
		if (n > CRYPTO_EID_DIGITS || (!p->unchecked_eid && !all_digits(p->ein, n)))
			return ESIM_E_ARG;
		memcpy(out, p->ein, n + 1);
		return ESIM_OK;
	}
	if (p->eid == NULL)
		return ESIM_E_ARG;
	if (!p->unchecked_eid) {
		esim_err err = crypto_pki_eid_check(p->eid);
		if (err != ESIM_OK)
			return err;
	}
	size_t n = strnlen(p->eid, CRYPTO_PKI_EIN_DIGITS);
	memcpy(out, p->eid, n);
	out[n] = '\0';
	return ESIM_OK;
}

static esim_err check_eid(const struct crypto_issue_params *p)
{
	if (p->eid == NULL)
		return ESIM_E_ARG;
	if (p->unchecked_eid)
		return (p->eid[0] != '\0' && strlen(p->eid) <= 64) ? ESIM_OK : ESIM_E_ARG;
	return crypto_pki_eid_check(p->eid);
}

static esim_err build_subject(X509 *x, const struct crypto_issue_params *p,
			      const struct profile *prof, const char *cn_default)
{
	X509_NAME *name = X509_get_subject_name(x);
	const char *cn = p->common_name ? p->common_name : cn_default;
	esim_err err;
	if ((err = name_add(name, NID_countryName, p->country)) != ESIM_OK ||
	    (err = name_add(name, NID_organizationName, p->org ? p->org : prof->org)) != ESIM_OK ||
	    (err = name_add(name, NID_organizationalUnitName,
			    p->org_unit ? p->org_unit : prof->org_unit)) != ESIM_OK)
		return err;
	if (p->kind == CRYPTO_ISSUE_EUICC &&
	    (err = name_add(name, NID_serialNumber, p->eid)) != ESIM_OK)
		return err;
	if ((err = name_add(name, NID_commonName, cn)) != ESIM_OK)
		return err;
	return X509_NAME_entry_count(name) > 0 ? ESIM_OK : ESIM_E_ARG;
}

static esim_err load_issuer(const struct crypto_issue_params *p, X509 **out)
{
	if (p->issuer_der == NULL || p->issuer_key == NULL)
		return ESIM_E_ARG;
	const unsigned char *q = p->issuer_der;
	if (p->issuer_der_len > LONG_MAX)
		return ESIM_E_TOO_LARGE;
	X509 *issuer = d2i_X509(NULL, &q, (long)p->issuer_der_len);
	if (issuer == NULL || q != p->issuer_der + p->issuer_der_len) {
		X509_free(issuer);
		return ESIM_E_CERT_PARSE;
	}
	crypto_curve c;
	if (crypto_key_curve(p->issuer_key, &c) != ESIM_OK ||
	    X509_check_private_key(issuer, p->issuer_key) != 1) {
		X509_free(issuer);
		return ESIM_E_CRYPTO_BAD_KEY;
	}
	*out = issuer;
	return ESIM_OK;
}

/* The issuer's key identifier for our AKI: its SKI extension, or (for an
 * issuer without one) computed the same way we compute ours. */
static esim_err issuer_key_id(X509 *issuer, uint8_t out[CRYPTO_PKI_SKI_LEN])
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
	if (ski == NULL)
		return key_id_of(issuer, out);
	if (ASN1_STRING_length(ski) != CRYPTO_PKI_SKI_LEN)
		return ESIM_E_CERT_NO_SKI;
	memcpy(out, ASN1_STRING_get0_data(ski), CRYPTO_PKI_SKI_LEN);
	return ESIM_OK;
}

static esim_err subject_key(const struct crypto_issue_params *p, EVP_PKEY **out)
{
	if (p->subject_key != NULL) {
		crypto_curve c;
		esim_err err = crypto_key_curve(p->subject_key, &c);
		if (err != ESIM_OK)
			return err;
		if (!EVP_PKEY_up_ref(p->subject_key))
			return ESIM_E_CRYPTO_OPENSSL;
		*out = p->subject_key;
		return ESIM_OK;
	}
	return crypto_key_generate(p->curve, out);
}

static esim_err set_validity(X509 *x, time_t not_before, time_t not_after)
{
	if (not_after <= not_before)
		return ESIM_E_ARG;
	if (ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL)
		return ESIM_E_ARG;
	return ESIM_OK;
}

static esim_err add_extensions(X509 *x, const struct crypto_issue_params *p,
			       const struct profile *prof, const uint8_t ski[CRYPTO_PKI_SKI_LEN],
			       const uint8_t *aki)
{
	esim_err err = ESIM_OK;
	const char *rid = p->registered_id ? p->registered_id : prof->rid;
	if (rid != NULL && rid[0] == '\0')
		rid = NULL;

	if (prof->ca)
		err = add_basic_constraints(x, prof->pathlen0 ? 0 : -1);
	if (err == ESIM_OK)
		err = add_key_usage(x, prof->key_usage);
	if (err == ESIM_OK && prof->role != CRYPTO_ROLE_NONE)
		err = add_policy(x, prof->role, !prof->tls);
	if (err == ESIM_OK && prof->eku != EKU_NONE)
		err = add_eku(x, prof->eku);
	if (err == ESIM_OK)
		err = add_key_ids(x, ski, aki);
	if (err == ESIM_OK)
		err = add_san(x, p, prof, rid);
	if (err == ESIM_OK && p->kind == CRYPTO_ISSUE_EUM) {
		char ein[CRYPTO_EID_DIGITS + 1];
		err = eum_ein(p, ein);
		if (err == ESIM_OK && ein[0] != '\0')
			err = add_name_constraints(x, p->org ? p->org : prof->org, ein);
	}
	return err;
}

static esim_err encode(X509 *x, struct crypto_issued *out)
{
	int n = i2d_X509(x, NULL);
	if (n <= 0)
		return ESIM_E_CRYPTO_OPENSSL;
	out->der = malloc((size_t)n);
	if (out->der == NULL)
		return ESIM_E_NOMEM;
	unsigned char *q = out->der;
	if (i2d_X509(x, &q) != n)
		return ESIM_E_CRYPTO_OPENSSL;
	out->der_len = (size_t)n;
	return ESIM_OK;
}

static const char *default_cn(const struct crypto_issue_params *p, const struct profile *prof)
{
	if (prof->cn != NULL)
		return prof->cn;
	/* TLS server certificates: the first host name, as the SGP.26 DPtls does */
	if (p->dns_names != NULL && p->n_dns_names > 0)
		return p->dns_names[0];
	if ((p->dns_names == NULL || p->n_dns_names == 0) &&
	    (p->ip_addrs == NULL || p->n_ip_addrs == 0))
		return "localhost";
	return p->kind == CRYPTO_ISSUE_DS_TLS ? "esimkit SM-DS" : "esimkit SM-DP+";
}

esim_err crypto_issue(const struct crypto_issue_params *p, struct crypto_issued *out)
{
	if (out == NULL)
		return ESIM_E_ARG;
	memset(out, 0, sizeof *out);
	if (p == NULL)
		return ESIM_E_ARG;
	const struct profile *prof = profile_of(p->kind);
	if (prof == NULL)
		return ESIM_E_ARG;
	bool self_signed = p->kind == CRYPTO_ISSUE_CI;
	if (self_signed && (p->issuer_der != NULL || p->issuer_key != NULL))
		return ESIM_E_ARG;

	esim_err err = ESIM_OK;
	if (p->kind == CRYPTO_ISSUE_EUICC)
		err = check_eid(p);
	if (err != ESIM_OK)
		return err;

	X509 *issuer = NULL;
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	uint8_t aki[CRYPTO_PKI_SKI_LEN];
	if (!self_signed) {
		if ((err = load_issuer(p, &issuer)) != ESIM_OK ||
		    (err = issuer_key_id(issuer, aki)) != ESIM_OK)
			goto out;
	}
	if ((err = subject_key(p, &key)) != ESIM_OK)
		goto out;
	err = ESIM_E_NOMEM;
	if ((x = X509_new()) == NULL)
		goto out;
	err = ESIM_E_CRYPTO_OPENSSL;
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key))
		goto out;
	if ((err = random_serial(x)) != ESIM_OK ||
	    (err = set_validity(x, p->not_before, p->not_after)) != ESIM_OK ||
	    (err = build_subject(x, p, prof, default_cn(p, prof))) != ESIM_OK)
		goto out;
	err = ESIM_E_CRYPTO_OPENSSL;
	if (!X509_set_issuer_name(x, X509_get_subject_name(self_signed ? x : issuer)))
		goto out;
	if ((err = key_id_of(x, out->ski)) != ESIM_OK ||
	    (err = add_extensions(x, p, prof, out->ski, self_signed ? NULL : aki)) != ESIM_OK)
		goto out;
	/* X509_sign picks ecdsa-with-SHA256 for an EC key and SHA-256 */
	if (X509_sign(x, self_signed ? key : p->issuer_key, EVP_sha256()) <= 0) {
		err = ESIM_E_CRYPTO_BAD_KEY;
		goto out;
	}
	if ((err = encode(x, out)) != ESIM_OK)
		goto out;
	out->key = key;
	key = NULL;
out:
	if (err != ESIM_OK)
		crypto_issued_clear(out);
	EVP_PKEY_free(key);
	X509_free(x);
	X509_free(issuer);
	return err;
}

void crypto_issued_clear(struct crypto_issued *out)
{
	if (out == NULL)
		return;
	free(out->der);
	EVP_PKEY_free(out->key);
	memset(out, 0, sizeof *out);
}

/* ---- PEM ------------------------------------------------------------------ */

/* Move a memory BIO's contents into out. The BIO's buffer is cleansed by
 * OpenSSL when it is freed (BUF_MEM_free clears), which matters for keys. */
static esim_err bio_to_buf(BIO *bio, esim_buf *out)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || data == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	esim_err err = esim_buf_reserve(out, (size_t)n + 1);
	if (err == ESIM_OK)
		err = esim_buf_append(out, data, (size_t)n);
	return err;
}

esim_err crypto_pki_cert_pem(const uint8_t *der, size_t der_len, esim_buf *out)
{
	if (der == NULL || out == NULL || der_len > LONG_MAX)
		return ESIM_E_ARG;
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)der_len);
	if (x == NULL || q != der + der_len) {
		X509_free(x);
		return ESIM_E_CERT_PARSE;
	}
	BIO *bio = BIO_new(BIO_s_mem());
	esim_err err = ESIM_E_NOMEM;
	if (bio != NULL) {
		err =
		    PEM_write_bio_X509(bio, x) == 1 ? bio_to_buf(bio, out) : ESIM_E_CRYPTO_OPENSSL;
		BIO_free(bio);
	}
	X509_free(x);
	return err;
}

esim_err crypto_pki_key_pem(EVP_PKEY *key, esim_buf *out)
{
	if (key == NULL || out == NULL)
		return ESIM_E_ARG;
	BIO *bio = BIO_new(BIO_s_secmem());
	if (bio == NULL)
		return ESIM_E_NOMEM;
	esim_err err = ESIM_E_CRYPTO_BAD_KEY;
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
		err = bio_to_buf(bio, out);
	BIO_free(bio);
	return err;
}
