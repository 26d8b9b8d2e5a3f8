/*
 * cert: one GSMA RSP certificate (SGP.22 section 4.5.2, digest section 10).
 *
 * Certificates arrive from peers (CERT.EUICC and CERT.EUM in ES9+
 * AuthenticateClient, CERT.DPauth / CERT.DPpb in ES10b) and from files. We
 * keep the exact DER next to OpenSSL's X509 so that what we hash, store or
 * forward is byte for byte what the issuer signed, and we read the few
 * fields SGP.22 gives meaning to: the role (certificatePolicies under
 * id-rspRole), SKI / AKI (the PKIDs that link a chain), the EID in the
 * subject serialNumber, the curve, validity, the SM-DP+ OID in SAN
 * registeredID and the EUM's permitted EIN prefixes.
 *
 * EID check digits (SGP.29, the number mod 97 == 1) are deliberately not
 * enforced by crypto_cert_eid nor by the chain check: a certificate whose
 * EID is in the EUM's range but has wrong check digits was still issued by
 * the EUM, and the SM-DP+ must answer such a device with its own "EID does
 * not match" status rather than "certificate invalid" (osmo-ttcn3-hacks'
 * SGP.26-derived UNMATCHED_EID case). crypto_eid_check_digits is there for
 * callers that want it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "esim/cert.h"
#include "esim/pki.h"
#include "esim/util.h"

/* Real RSP certificates are under 1 KiB; this bounds hostile input. */
#define CERT_MAX_LEN (64u * 1024u)
#define OID_TEXT_MAX 80

/* id-rsp-extension-permitted-eins (v3 EUM certificates). */
#define OID_PERMITTED_EINS "2.23.146.1.2.2.0"

struct crypto_cert {
	X509 *x509;
	uint8_t *der;
	size_t der_len;
};

const char *crypto_rsp_role_name(crypto_rsp_role role)
{
	switch (role) {
	case CRYPTO_ROLE_CI:
		return "CI";
	case CRYPTO_ROLE_EUICC:
		return "eUICC";
	case CRYPTO_ROLE_EUM:
		return "EUM";
	case CRYPTO_ROLE_DP_TLS:
		return "DPtls";
	case CRYPTO_ROLE_DP_AUTH:
		return "DPauth";
	case CRYPTO_ROLE_DP_PB:
		return "DPpb";
	case CRYPTO_ROLE_DS_TLS:
		return "DStls";
	case CRYPTO_ROLE_DS_AUTH:
		return "DSauth";
	case CRYPTO_ROLE_NONE:
		break;
	}
	return "none";
}

/* Parse exactly one DER certificate filling all of data. */
static esim_err cert_from_der(const uint8_t *data, size_t len, crypto_cert **out)
{
	const unsigned char *p = data;
	unsigned char *reenc = NULL;
	X509 *x;
	crypto_cert *c;
	int n;

	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL) {
		ERR_clear_error();
		return ESIM_E_CERT_PARSE;
	}
	/* Trailing bytes would ride along unsigned in anything we forward. */
	if (p != data + len)
		goto parse_error;
	/* Only DER: the bytes we keep must be the one encoding of what we read
	 * (d2i tolerates some BER, e.g. indefinite lengths). */
	n = i2d_X509(x, &reenc);
	if (n < 0 || (size_t)n != len || memcmp(reenc, data, len) != 0)
		goto parse_error;
	OPENSSL_free(reenc);
	reenc = NULL;
	/* Malformed or duplicated standard extensions (SKI, AKI, key usage,
	 * basic constraints ...) make every later answer unreliable. */
	if (X509_get_extension_flags(x) & EXFLAG_INVALID)
		goto parse_error;

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		X509_free(x);
		return ESIM_E_NOMEM;
	}
	c->der = malloc(len);
	if (c->der == NULL) {
		free(c);
		X509_free(x);
		return ESIM_E_NOMEM;
	}
	memcpy(c->der, data, len);
	c->der_len = len;
	c->x509 = x;
	*out = c;
	return ESIM_OK;

parse_error:
	OPENSSL_free(reenc);
	X509_free(x);
	ERR_clear_error();
	return ESIM_E_CERT_PARSE;
}

static bool only_space(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* One PEM "CERTIFICATE" block; text before it is allowed (OpenSSL's
 * "Bag Attributes"), anything but white space after it is not. */
static esim_err cert_from_pem(const uint8_t *data, size_t len, crypto_cert **out)
{
	BIO *bio;
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long der_len = 0;
	uint8_t rest[256];
	int r;
	esim_err err = ESIM_E_CERT_PARSE;

	bio = BIO_new_mem_buf(data, (int)len);
	if (bio == NULL)
		return ESIM_E_NOMEM;
	if (!PEM_read_bio(bio, &name, &header, &der, &der_len))
		goto out;
	if (strcmp(name, "CERTIFICATE") != 0 || header[0] != '\0' || der_len <= 0)
		goto out;
	while ((r = BIO_read(bio, rest, sizeof rest)) > 0)
		if (!only_space(rest, (size_t)r))
			goto out;
	err = cert_from_der(der, (size_t)der_len, out);
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	ERR_clear_error();
	return err;
}

esim_err crypto_cert_load(const uint8_t *data, size_t len, crypto_cert **out)
{
	if (out == NULL || (data == NULL && len > 0))
		return ESIM_E_ARG;
	*out = NULL;
	if (len == 0)
		return ESIM_E_CERT_PARSE;
	if (len > CERT_MAX_LEN)
		return ESIM_E_TOO_LARGE;
	/* A DER certificate is a SEQUENCE; PEM is text. */
	if (data[0] == 0x30)
		return cert_from_der(data, len, out);
	return cert_from_pem(data, len, out);
}

esim_err crypto_cert_load_file(const char *path, crypto_cert **out)
{
	uint8_t *data = NULL;
	size_t len = 0;
	esim_err err;

	if (path == NULL || out == NULL)
		return ESIM_E_ARG;
	*out = NULL;
	err = esim_read_file(path, CERT_MAX_LEN, &data, &len);
	if (err != ESIM_OK)
		return err;
	err = crypto_cert_load(data, len, out);
	free(data);
	return err;
}

void crypto_cert_free(crypto_cert *cert)
{
	if (cert == NULL)
		return;
	X509_free(cert->x509);
	free(cert->der);
	free(cert);
}

const uint8_t *crypto_cert_der(const crypto_cert *cert, size_t *len)
{
	if (cert == NULL) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = cert->der_len;
	return cert->der;
}

X509 *crypto_cert_x509(const crypto_cert *cert)
{
	return cert ? cert->x509 : NULL;
}

EVP_PKEY *crypto_cert_pubkey(const crypto_cert *cert)
{
	return cert ? X509_get0_pubkey(cert->x509) : NULL;
}

/* v2 roles are the last arc under id-rspRole; the v3 chain-variant roles
 * (digest 10.2) map onto the same roles. SubCA policies have no role here. */
static crypto_rsp_role role_from_oid(const char *oid)
{
	static const struct {
		const char *oid;
		crypto_rsp_role role;
	} map[] = {
	    {"2.23.146.1.2.1.0", CRYPTO_ROLE_CI},
	    {"2.23.146.1.2.1.1", CRYPTO_ROLE_EUICC},
	    {"2.23.146.1.2.1.2", CRYPTO_ROLE_EUM},
	    {"2.23.146.1.2.1.3", CRYPTO_ROLE_DP_TLS},
	    {"2.23.146.1.2.1.4", CRYPTO_ROLE_DP_AUTH},
	    {"2.23.146.1.2.1.5", CRYPTO_ROLE_DP_PB},
	    {"2.23.146.1.2.1.6", CRYPTO_ROLE_DS_TLS},
	    {"2.23.146.1.2.1.7", CRYPTO_ROLE_DS_AUTH},
	    {"2.23.146.1.2.1.0.0.0", CRYPTO_ROLE_EUM},
	    {"2.23.146.1.2.1.0.0.0.0.0", CRYPTO_ROLE_EUICC},
	    {"2.23.146.1.2.1.0.0.1.0", CRYPTO_ROLE_DP_TLS},
	    {"2.23.146.1.2.1.0.0.1.1", CRYPTO_ROLE_DP_AUTH},
	    {"2.23.146.1.2.1.0.0.1.2", CRYPTO_ROLE_DP_PB},
	    {"2.23.146.1.2.1.0.0.2.0", CRYPTO_ROLE_DS_TLS},
	    {"2.23.146.1.2.1.0.0.2.1", CRYPTO_ROLE_DS_AUTH},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(oid, map[i].oid) == 0)
			return map[i].role;
	return CRYPTO_ROLE_NONE;
}

/* An extension decoded by OpenSSL: NULL with *err = ESIM_OK when absent,
 * NULL with ESIM_E_CERT_PARSE when present twice or undecodable. */
static void *cert_ext(const crypto_cert *cert, int nid, esim_err *err)
{
	int crit = -1;
	void *ext = X509_get_ext_d2i(cert->x509, nid, &crit, NULL);

	*err = ESIM_OK;
	if (ext == NULL && crit != -1)
		*err = ESIM_E_CERT_PARSE;
	ERR_clear_error();
	return ext;
}

esim_err crypto_cert_role(const crypto_cert *cert, crypto_rsp_role *out)
{
	CERTIFICATEPOLICIES *pols;
	char oid[OID_TEXT_MAX];
	esim_err err;

	if (cert == NULL || out == NULL)
		return ESIM_E_ARG;
	*out = CRYPTO_ROLE_NONE;
	pols = cert_ext(cert, NID_certificate_policies, &err);
	if (pols == NULL)
		return err != ESIM_OK ? err : ESIM_E_CERT_NO_ROLE;
	for (int i = 0; i < sk_POLICYINFO_num(pols); i++) {
		const POLICYINFO *pi = sk_POLICYINFO_value(pols, i);
		int n = OBJ_obj2txt(oid, sizeof oid, pi->policyid, 1);

		if (n <= 0 || (size_t)n >= sizeof oid)
			continue; /* longer than any RSP OID */
		*out = role_from_oid(oid);
		if (*out != CRYPTO_ROLE_NONE)
			break;
	}
	CERTIFICATEPOLICIES_free(pols);
	return *out == CRYPTO_ROLE_NONE ? ESIM_E_CERT_NO_ROLE : ESIM_OK;
}

static esim_err copy_key_id(const ASN1_OCTET_STRING *id, uint8_t out[CRYPTO_KEY_ID_MAX],
			    size_t *len)
{
	int n = ASN1_STRING_length(id);

	if (n <= 0 || n > CRYPTO_KEY_ID_MAX)
		return ESIM_E_CERT_PARSE;
	memcpy(out, ASN1_STRING_get0_data(id), (size_t)n);
	*len = (size_t)n;
	return ESIM_OK;
}

esim_err crypto_cert_ski(const crypto_cert *cert, uint8_t out[CRYPTO_KEY_ID_MAX], size_t *len)
{
	ASN1_OCTET_STRING *ski;
	esim_err err;

	if (cert == NULL || out == NULL || len == NULL)
		return ESIM_E_ARG;
	*len = 0;
	ski = cert_ext(cert, NID_subject_key_identifier, &err);
	if (ski == NULL)
		return err != ESIM_OK ? err : ESIM_E_CERT_NO_SKI;
	err = ASN1_STRING_length(ski) == 0 ? ESIM_E_CERT_NO_SKI : copy_key_id(ski, out, len);
	ASN1_OCTET_STRING_free(ski);
	return err;
}

esim_err crypto_cert_aki(const crypto_cert *cert, uint8_t out[CRYPTO_KEY_ID_MAX], size_t *len)
{
	AUTHORITY_KEYID *akid;
	esim_err err;

	if (cert == NULL || out == NULL || len == NULL)
		return ESIM_E_ARG;
	*len = 0;
	akid = cert_ext(cert, NID_authority_key_identifier, &err);
	if (akid == NULL)
		return err != ESIM_OK ? err : ESIM_E_CERT_NO_AKI;
	if (akid->keyid == NULL || ASN1_STRING_length(akid->keyid) == 0)
		err = ESIM_E_CERT_NO_AKI; /* issuer+serial form only: unusable */
	else
		err = copy_key_id(akid->keyid, out, len);
	AUTHORITY_KEYID_free(akid);
	return err;
}

static bool all_digits(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

esim_err crypto_cert_eid(const crypto_cert *cert, char out[CRYPTO_EID_DIGITS + 1])
{
	const X509_NAME *subject;
	const ASN1_STRING *sn;
	int idx;

	if (cert == NULL || out == NULL)
		return ESIM_E_ARG;
	out[0] = '\0';
	subject = X509_get_subject_name(cert->x509);
	idx = X509_NAME_get_index_by_NID(subject, NID_serialNumber, -1);
	if (idx < 0)
		return ESIM_E_CERT_NO_EID;
	/* Two serialNumbers would leave the EID ambiguous. */
	if (X509_NAME_get_index_by_NID(subject, NID_serialNumber, idx) >= 0)
		return ESIM_E_CERT_NO_EID;
	sn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
	if (sn == NULL || ASN1_STRING_length(sn) != CRYPTO_EID_DIGITS ||
	    !all_digits(ASN1_STRING_get0_data(sn), CRYPTO_EID_DIGITS))
		return ESIM_E_CERT_NO_EID;
	memcpy(out, ASN1_STRING_get0_data(sn), CRYPTO_EID_DIGITS);
	out[CRYPTO_EID_DIGITS] = '\0';
	return ESIM_OK;
}

bool crypto_eid_check_digits(const char *eid)
{
	return crypto_pki_eid_check(eid) == ESIM_OK; /* one implementation of SGP.29 */
}

esim_err crypto_cert_curve(const crypto_cert *cert, crypto_curve *out)
{
	EVP_PKEY *key;

	if (cert == NULL || out == NULL)
		return ESIM_E_ARG;
	*out = CRYPTO_CURVE_UNKNOWN;
	key = X509_get0_pubkey(cert->x509);
	if (key == NULL) {
		ERR_clear_error();
		return ESIM_E_CRYPTO_BAD_KEY;
	}
	return crypto_key_curve(key, out);
}

esim_err crypto_cert_check_time(const crypto_cert *cert, time_t now)
{
	int c;

	if (cert == NULL)
		return ESIM_E_ARG;
	/* A certificate is valid through the second named in notAfter. */
	c = ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert->x509), now);
	if (c == -2)
		return ESIM_E_CERT_PARSE;
	if (c < 0)
		return ESIM_E_CERT_EXPIRED;
	c = ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert->x509), now);
	if (c == -2)
		return ESIM_E_CERT_PARSE;
	if (c > 0)
		return ESIM_E_CERT_NOT_YET_VALID;
	return ESIM_OK;
}

esim_err crypto_cert_registered_id(const crypto_cert *cert, char *out, size_t n)
{
	GENERAL_NAMES *san;
	esim_err err;
	int len;

	if (cert == NULL || out == NULL || n == 0 || n > INT32_MAX)
		return ESIM_E_ARG;
	out[0] = '\0';
	san = cert_ext(cert, NID_subject_alt_name, &err);
	if (san == NULL)
		return err != ESIM_OK ? err : ESIM_E_NOT_FOUND;
	err = ESIM_E_NOT_FOUND;
	for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);

		if (gn->type != GEN_RID)
			continue;
		len = OBJ_obj2txt(out, (int)n, gn->d.registeredID, 1);
		if (len <= 0)
			err = ESIM_E_INTERNAL;
		else if ((size_t)len >= n)
			err = ESIM_E_BUF_SMALL;
		else
			err = ESIM_OK;
		break;
	}
	GENERAL_NAMES_free(san);
	if (err != ESIM_OK)
		out[0] = '\0';
	return err;
}

esim_err crypto_cert_verify_signed_by(const crypto_cert *cert, const crypto_cert *issuer)
{
	EVP_PKEY *key;
	int r;

	if (cert == NULL || issuer == NULL)
		return ESIM_E_ARG;
	/* SGP.22 section 4.5.2: every RSP certificate is signed this way. */
	if (X509_get_signature_nid(cert->x509) != NID_ecdsa_with_SHA256)
		return ESIM_E_CERT_SIG_ALG;
	key = X509_get0_pubkey(issuer->x509);
	if (key == NULL) {
		ERR_clear_error();
		return ESIM_E_CRYPTO_BAD_KEY;
	}
	/* X509_verify hashes the cached TBS encoding, i.e. the bytes received. */
	r = X509_verify(cert->x509, key);
	ERR_clear_error();
	return r == 1 ? ESIM_OK : ESIM_E_CERT_BAD_SIGNATURE;
}

esim_err crypto_cert_check_ca(const crypto_cert *cert)
{
	uint32_t flags;

	if (cert == NULL)
		return ESIM_E_ARG;
	flags = X509_get_extension_flags(cert->x509);
	if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA))
		return ESIM_E_CERT_NOT_CA;
	if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(cert->x509) & KU_KEY_CERT_SIGN))
		return ESIM_E_CERT_NOT_CA;
	return ESIM_OK;
}

esim_err crypto_cert_check_digital_signature(const crypto_cert *cert)
{
	if (cert == NULL)
		return ESIM_E_ARG;
	if (!(X509_get_extension_flags(cert->x509) & EXFLAG_KUSAGE) ||
	    !(X509_get_key_usage(cert->x509) & KU_DIGITAL_SIGNATURE))
		return ESIM_E_CERT_KEY_USAGE;
	return ESIM_OK;
}

/* An EIN prefix is 1..32 decimal digits; anything else permits nothing. */
static bool prefix_matches(const ASN1_STRING *prefix, const char *eid)
{
	int n = ASN1_STRING_length(prefix);
	const unsigned char *p = ASN1_STRING_get0_data(prefix);

	if (n <= 0 || n > CRYPTO_EID_DIGITS || !all_digits(p, (size_t)n))
		return false;
	return strncmp(eid, (const char *)p, (size_t)n) == 0;
}

/* Variant O: nameConstraints permittedSubtrees directoryName serialNumber.
 * Only the serialNumber is compared (the SGP.22 rule, not RFC 5280's
 * whole-RDN-sequence match, which the SGP.26 chain would fail). */
static esim_err eid_in_name_constraints(const crypto_cert *eum, const char *eid, bool *ok)
{
	NAME_CONSTRAINTS *nc;
	esim_err err;

	nc = cert_ext(eum, NID_name_constraints, &err);
	if (nc == NULL)
		return err;
	for (int i = 0; !*ok && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
		const GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		const X509_NAME *dn;
		int idx = -1;

		if (st->base == NULL || st->base->type != GEN_DIRNAME)
			continue;
		dn = st->base->d.directoryName;
		while (!*ok && (idx = X509_NAME_get_index_by_NID(dn, NID_serialNumber, idx)) >= 0)
			*ok = prefix_matches(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(dn, idx)),
					     eid);
	}
	NAME_CONSTRAINTS_free(nc);
	return ESIM_OK;
}

/* v3: PermittedEins ::= SEQUENCE OF PrintableString, in extension
 * 2.23.146.1.2.2.0. */
static esim_err eid_in_permitted_eins(const crypto_cert *eum, const char *eid, bool *ok)
{
	ASN1_OBJECT *oid;
	const ASN1_OCTET_STRING *val;
	const unsigned char *p;
	STACK_OF(ASN1_TYPE) * seq;
	int idx;

	oid = OBJ_txt2obj(OID_PERMITTED_EINS, 1);
	if (oid == NULL) {
		ERR_clear_error();
		return ESIM_E_NOMEM;
	}
	idx = X509_get_ext_by_OBJ(eum->x509, oid, -1);
	ASN1_OBJECT_free(oid);
	if (idx < 0)
		return ESIM_OK;
	val = X509_EXTENSION_get_data(X509_get_ext(eum->x509, idx));
	p = ASN1_STRING_get0_data(val);
	seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, ASN1_STRING_length(val));
	if (seq == NULL || p != ASN1_STRING_get0_data(val) + ASN1_STRING_length(val)) {
		sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
		ERR_clear_error();
		return ESIM_E_CERT_PARSE;
	}
	for (int i = 0; !*ok && i < sk_ASN1_TYPE_num(seq); i++) {
		const ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);

		if (t->type == V_ASN1_PRINTABLESTRING)
			*ok = prefix_matches(t->value.printablestring, eid);
	}
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return ESIM_OK;
}

esim_err crypto_cert_eid_permitted(const crypto_cert *eum, const char *eid)
{
	bool ok = false;
	esim_err err;

	if (eum == NULL || eid == NULL)
		return ESIM_E_ARG;
	if (strlen(eid) != CRYPTO_EID_DIGITS)
		return ESIM_E_CERT_EID_OUT_OF_RANGE;
	err = eid_in_name_constraints(eum, eid, &ok);
	if (err == ESIM_OK && !ok)
		err = eid_in_permitted_eins(eum, eid, &ok);
	if (err != ESIM_OK)
		return err;
	return ok ? ESIM_OK : ESIM_E_CERT_EID_OUT_OF_RANGE;
}
