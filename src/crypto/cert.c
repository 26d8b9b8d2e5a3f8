/*
 * cert: one GSMA RSP certificate (SGP.22 section 4.5.2, digest section 10).
 *
 * Certificates arrive from peers (CERT.EUICC and CERT.EUM in ES9+
 * AuthenticateClient, CERT.DPauth / CERT.DPpb in ES10b) and from files. We
 * keep the exact DER, because what we hash, store or forward must be byte
 * for byte what the issuer signed, and we read the few fields SGP.22 gives
 * meaning to: the role (certificatePolicies under id-rspRole), SKI / AKI
 * (the PKIDs that link a chain), the EID in the subject serialNumber, the
 * curve, validity, the SM-DP+ OID in SAN registeredID and the EUM's
 * permitted EIN prefixes.
 *
 * The certificate is parsed here with the der layer's cursor, not with
 * d2i_X509: OpenSSL 3 decodes the SubjectPublicKeyInfo through its provider
 * decoder framework, which cost an SM-DP+ more per certificate than the
 * ECDSA verification that follows. One pass over the DER records spans into
 * our own copy (tbsCertificate, signature, names, SPKI) and the values of
 * the extensions we interpret; the public key is built from the SPKI with
 * EVP_PKEY_fromdata (crypto_key_from_spki). The parser is strict: DER only,
 * one certificate and nothing after it, v3, the same signature algorithm
 * inside and outside tbsCertificate, RFC 5280 time forms, extensions
 * well-formed and each present once, no critical extension that is not
 * ours to read (RFC 5280 4.2), and a point on its curve. What the
 * SGP.22 rules add (ecdsa-with-SHA256, the two curves, the role, SKI / AKI,
 * key usage ...) is left to the accessors and the chain check, so that each
 * such defect keeps its own error there. The extensions we read are checked
 * by content whether critical or not (a critical flag must be DER TRUE).
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

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "esim/cert.h"
#include "esim/der.h"
#include "esim/pki.h"
#include "esim/util.h"

/* Real RSP certificates are under 1 KiB; this bounds hostile input. */
#define CERT_MAX_LEN (64u * 1024u)
/* RSP certificates carry about six extensions; this bounds the duplicate
 * check on hostile input. */
#define CERT_MAX_EXTENSIONS 32

/* OID contents (the bytes after tag and length). */
static const uint8_t oid_ski[] = {0x55, 0x1D, 0x0E};
static const uint8_t oid_key_usage[] = {0x55, 0x1D, 0x0F};
static const uint8_t oid_san[] = {0x55, 0x1D, 0x11};
static const uint8_t oid_basic_constraints[] = {0x55, 0x1D, 0x13};
static const uint8_t oid_name_constraints[] = {0x55, 0x1D, 0x1E};
static const uint8_t oid_crl_dp[] = {0x55, 0x1D, 0x1F};
static const uint8_t oid_policies[] = {0x55, 0x1D, 0x20};
static const uint8_t oid_aki[] = {0x55, 0x1D, 0x23};
static const uint8_t oid_eku[] = {0x55, 0x1D, 0x25};
static const uint8_t oid_serial_number[] = {0x55, 0x04, 0x05};
/* id-rsp-extension-permitted-eins 2.23.146.1.2.2.0 (v3 EUM certificates). */
static const uint8_t oid_permitted_eins[] = {0x67, 0x81, 0x12, 0x01, 0x02, 0x02, 0x00};
/* id-rspRole 2.23.146.1.2.1: role OIDs are this followed by small arcs. */
static const uint8_t oid_rsp_role[] = {0x67, 0x81, 0x12, 0x01, 0x02, 0x01};
/* AlgorithmIdentifier { ecdsa-with-SHA256 } with parameters absent, as
 * RFC 5758 section 3.2 requires: the whole TLV. */
static const uint8_t alg_ecdsa_sha256[] = {0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86,
					   0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02};

/* GeneralName tags (RFC 5280 4.2.1.6, IMPLICIT except directoryName). */
#define GN_OTHER_NAME 0xA0u
#define GN_RFC822     0x81u
#define GN_DNS	      0x82u
#define GN_X400	      0xA3u
#define GN_DIRECTORY  0xA4u
#define GN_EDI_PARTY  0xA5u
#define GN_URI	      0x86u
#define GN_IP	      0x87u
#define GN_RID	      0x88u

/* keyUsage named bits */
#define KU_BIT_DIGITAL_SIGNATURE 0
#define KU_BIT_KEY_CERT_SIGN	 5

struct crypto_cert {
	uint8_t *der; /* the certificate; every span below points into it */
	size_t der_len;
	EVP_PKEY *pub;	    /* NULL unless the key is on an SGP.22 curve */
	crypto_curve curve; /* CRYPTO_CURVE_UNKNOWN when pub is NULL */
	esim_err curve_err; /* crypto_cert_curve's answer when pub is NULL */
	der_span tbs;	    /* tbsCertificate TLV: the signed bytes */
	der_span sig_alg;   /* signatureAlgorithm TLV (equal to the tbs one) */
	der_span sig;	    /* signatureValue bits: DER ECDSA-Sig-Value */
	der_span issuer;    /* Name contents */
	der_span subject;
	der_span spki;		       /* SubjectPublicKeyInfo TLV */
	int64_t not_before, not_after; /* seconds since the epoch, UTC */

	/* Extensions we interpret; has_* false when absent. */
	bool has_ski, has_aki_keyid, has_ku, has_bc, has_policies;
	der_span ski;	    /* KeyIdentifier */
	der_span aki_keyid; /* AuthorityKeyIdentifier keyIdentifier */
	der_bits ku;
	bool ca;
	crypto_rsp_role role; /* first policy that names a role */
	der_span san;	      /* GeneralNames contents; p NULL: absent */
	der_span permitted;   /* nameConstraints permittedSubtrees contents */
	der_span eins;	      /* PermittedEins contents; p NULL: absent */
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

static bool span_is(der_span s, const uint8_t *p, size_t n)
{
	return s.len == n && memcmp(s.p, p, n) == 0;
}

#define SPAN_IS(s, arr) span_is((s), (arr), sizeof(arr))

/* v2 roles are the last arc under id-rspRole; the v3 chain-variant roles
 * (digest 10.2) map onto the same roles. SubCA policies have no role here. */
static crypto_rsp_role role_from_oid(der_span oid)
{
	static const struct {
		uint8_t arcs[5];
		uint8_t n;
		crypto_rsp_role role;
	} map[] = {
	    {{0}, 1, CRYPTO_ROLE_CI},
	    {{1}, 1, CRYPTO_ROLE_EUICC},
	    {{2}, 1, CRYPTO_ROLE_EUM},
	    {{3}, 1, CRYPTO_ROLE_DP_TLS},
	    {{4}, 1, CRYPTO_ROLE_DP_AUTH},
	    {{5}, 1, CRYPTO_ROLE_DP_PB},
	    {{6}, 1, CRYPTO_ROLE_DS_TLS},
	    {{7}, 1, CRYPTO_ROLE_DS_AUTH},
	    {{0, 0, 0}, 3, CRYPTO_ROLE_EUM},
	    {{0, 0, 0, 0, 0}, 5, CRYPTO_ROLE_EUICC},
	    {{0, 0, 1, 0}, 4, CRYPTO_ROLE_DP_TLS},
	    {{0, 0, 1, 1}, 4, CRYPTO_ROLE_DP_AUTH},
	    {{0, 0, 1, 2}, 4, CRYPTO_ROLE_DP_PB},
	    {{0, 0, 2, 0}, 4, CRYPTO_ROLE_DS_TLS},
	    {{0, 0, 2, 1}, 4, CRYPTO_ROLE_DS_AUTH},
	};
	const size_t plen = sizeof oid_rsp_role;

	if (oid.len <= plen || memcmp(oid.p, oid_rsp_role, plen) != 0)
		return CRYPTO_ROLE_NONE;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (oid.len - plen == map[i].n && memcmp(oid.p + plen, map[i].arcs, map[i].n) == 0)
			return map[i].role;
	return CRYPTO_ROLE_NONE;
}

/* ---- structure checks ------------------------------------------------------ */

/* A DER INTEGER value of any size: non-empty and minimal. */
static bool integer_ok(der_span v)
{
	if (v.len == 0)
		return false;
	if (v.len >= 2 &&
	    ((v.p[0] == 0x00 && (v.p[1] & 0x80) == 0) || (v.p[0] == 0xFF && (v.p[1] & 0x80) != 0)))
		return false;
	return true;
}

/* AlgorithmIdentifier ::= SEQUENCE { OID, parameters ANY OPTIONAL }. */
static bool get_algorithm(der_cursor *c, der_span *tlv)
{
	der_element e;
	der_cursor alg;
	der_span oid;

	if (der_get_tlv(c, DER_TAG_SEQUENCE, &e) != ESIM_OK)
		return false;
	alg = der_cursor_of(e.value);
	if (der_get_oid(&alg, DER_TAG_DEFAULT, &oid) != ESIM_OK)
		return false;
	if (!der_cursor_empty(&alg) && der_get_any(&alg, NULL) != ESIM_OK)
		return false;
	*tlv = e.tlv;
	return der_expect_end(&alg) == ESIM_OK;
}

/* Name ::= SEQUENCE OF SET SIZE (1..MAX) OF SEQUENCE { type OID, value ANY }
 * (the contents of the outer SEQUENCE). */
static bool name_ok(der_span name)
{
	der_cursor rdns = der_cursor_of(name);

	while (!der_cursor_empty(&rdns)) {
		der_cursor set, atv;
		der_span type;

		if (der_get_element(&rdns, DER_TAG_SET, &set) != ESIM_OK || der_cursor_empty(&set))
			return false;
		while (!der_cursor_empty(&set)) {
			if (der_get_sequence(&set, DER_TAG_DEFAULT, &atv) != ESIM_OK ||
			    der_get_oid(&atv, DER_TAG_DEFAULT, &type) != ESIM_OK ||
			    der_get_any(&atv, NULL) != ESIM_OK || der_expect_end(&atv) != ESIM_OK)
				return false;
		}
	}
	return true;
}

/* Walks the attributes of a Name already checked by name_ok. */
struct name_iter {
	der_cursor rdns, set;
};

static void name_iter_init(struct name_iter *it, der_span name)
{
	it->rdns = der_cursor_of(name);
	der_cursor_init(&it->set, NULL, 0);
}

static bool name_next(struct name_iter *it, der_span *type, der_element *value)
{
	der_cursor atv;

	while (der_cursor_empty(&it->set))
		if (der_cursor_empty(&it->rdns) ||
		    der_get_element(&it->rdns, DER_TAG_SET, &it->set) != ESIM_OK)
			return false;
	return der_get_sequence(&it->set, DER_TAG_DEFAULT, &atv) == ESIM_OK &&
	       der_get_oid(&atv, DER_TAG_DEFAULT, type) == ESIM_OK &&
	       der_get_any(&atv, value) == ESIM_OK;
}

/* One GeneralName, by its CHOICE tag. */
static bool general_name_ok(const der_element *e)
{
	der_cursor c = der_cursor_of(e->value);
	der_span oid;
	der_element inner;

	switch (e->tag) {
	case GN_OTHER_NAME: /* SEQUENCE { type-id OID, value [0] EXPLICIT ANY } */
		return der_get_oid(&c, DER_TAG_DEFAULT, &oid) == ESIM_OK &&
		       der_get_tlv(&c, 0xA0, &inner) == ESIM_OK && der_expect_end(&c) == ESIM_OK &&
		       der_parse_single(inner.value.p, inner.value.len, NULL) == ESIM_OK;
	case GN_DIRECTORY: /* EXPLICIT Name */
		return der_get_tlv(&c, DER_TAG_SEQUENCE, &inner) == ESIM_OK &&
		       der_expect_end(&c) == ESIM_OK && name_ok(inner.value);
	case GN_RID:
		return der_value_oid(e->value) == ESIM_OK;
	case GN_RFC822:
	case GN_DNS:
	case GN_URI:
	case GN_IP:
	case GN_X400:
	case GN_EDI_PARTY:
		return true;
	default:
		return false;
	}
}

/* GeneralNames ::= SEQUENCE OF GeneralName (the contents). */
static bool general_names_ok(der_span names)
{
	der_cursor c = der_cursor_of(names);
	der_element e;
	esim_err err;

	while (der_next_child(&c, &e, &err))
		if (!general_name_ok(&e))
			return false;
	return err == ESIM_OK;
}

/* ---- time ------------------------------------------------------------------ */

static bool two_digits(const uint8_t *p, int *v)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return false;
	*v = (p[0] - '0') * 10 + (p[1] - '0');
	return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. Done
 * by hand rather than with timegm so that any four-digit year fits (time_t
 * may be 32 bits) and nothing depends on the C library's normalisation. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Time ::= CHOICE { UTCTime, GeneralizedTime } in the only forms RFC 5280
 * 4.1.2.5 allows: YYMMDDHHMMSSZ (YY >= 50 is 19YY) and YYYYMMDDHHMMSSZ. */
static esim_err get_time(der_cursor *c, int64_t *out)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	der_element e;
	const uint8_t *p;
	int64_t year;
	int hi, lo, mon, day, hour, min, sec;
	size_t off;

	if (der_get_any(c, &e) != ESIM_OK)
		return ESIM_E_CERT_PARSE;
	p = e.value.p;
	if (e.tag == DER_TAG_UTC_TIME) {
		if (e.value.len != 13 || p[12] != 'Z' || !two_digits(p, &lo))
			return ESIM_E_CERT_BAD_TIME;
		year = lo >= 50 ? 1900 + lo : 2000 + lo;
		off = 2;
	} else if (e.tag == DER_TAG_GENERALIZED_TIME) {
		if (e.value.len != 15 || p[14] != 'Z' || !two_digits(p, &hi) ||
		    !two_digits(p + 2, &lo))
			return ESIM_E_CERT_BAD_TIME;
		year = hi * 100 + lo;
		off = 4;
	} else {
		return ESIM_E_CERT_PARSE;
	}
	if (!two_digits(p + off, &mon) || !two_digits(p + off + 2, &day) ||
	    !two_digits(p + off + 4, &hour) || !two_digits(p + off + 6, &min) ||
	    !two_digits(p + off + 8, &sec))
		return ESIM_E_CERT_BAD_TIME;
	if (mon < 1 || mon > 12 || hour > 23 || min > 59 || sec > 59 || day < 1)
		return ESIM_E_CERT_BAD_TIME;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day > mdays[mon - 1] + (mon == 2 && leap))
		return ESIM_E_CERT_BAD_TIME;
	*out = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
	return ESIM_OK;
}

/* ---- extensions ------------------------------------------------------------ */

/* Each parser gets a cursor over the extnValue contents, which must hold
 * exactly one value, and returns false when it is malformed. */

static bool ext_ski(crypto_cert *c, der_cursor *v)
{
	c->has_ski = true;
	return der_get_octet_string(v, DER_TAG_DEFAULT, &c->ski) == ESIM_OK;
}

/* AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL,
 *   authorityCertIssuer [1] GeneralNames OPTIONAL,
 *   authorityCertSerialNumber [2] INTEGER OPTIONAL } */
static bool ext_aki(crypto_cert *c, der_cursor *v)
{
	der_cursor aki, part;
	bool present;

	if (der_get_sequence(v, DER_TAG_DEFAULT, &aki) != ESIM_OK ||
	    der_get_optional(&aki, 0x80, &present, &part) != ESIM_OK)
		return false;
	if (present) {
		c->has_aki_keyid = true;
		c->aki_keyid = (der_span){part.p, part.len};
	}
	if (der_get_optional(&aki, 0xA1, &present, &part) != ESIM_OK ||
	    (present && !general_names_ok((der_span){part.p, part.len})))
		return false;
	if (der_get_optional(&aki, 0x82, &present, &part) != ESIM_OK ||
	    (present && !integer_ok((der_span){part.p, part.len})))
		return false;
	return der_expect_end(&aki) == ESIM_OK;
}

static bool ext_key_usage(crypto_cert *c, der_cursor *v)
{
	c->has_ku = true;
	return der_get_bit_string(v, DER_TAG_DEFAULT, &c->ku) == ESIM_OK;
}

/* BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE,
 *   pathLenConstraint INTEGER (0..MAX) OPTIONAL }; DER leaves out a FALSE. */
static bool ext_basic_constraints(crypto_cert *c, der_cursor *v)
{
	der_cursor bc;
	der_span pathlen;
	uint32_t tag;

	c->has_bc = true;
	if (der_get_sequence(v, DER_TAG_DEFAULT, &bc) != ESIM_OK)
		return false;
	if (der_peek_tag(&bc, &tag) == ESIM_OK && tag == DER_TAG_BOOLEAN &&
	    (der_get_bool_strict(&bc, DER_TAG_DEFAULT, &c->ca) != ESIM_OK || !c->ca))
		return false;
	if (!der_cursor_empty(&bc) &&
	    der_get_big_unsigned(&bc, DER_TAG_DEFAULT, &pathlen) != ESIM_OK)
		return false;
	return der_expect_end(&bc) == ESIM_OK;
}

/* certificatePolicies ::= SEQUENCE OF PolicyInformation { policyIdentifier
 * OID, policyQualifiers SEQUENCE OF PolicyQualifierInfo OPTIONAL }. */
static bool ext_policies(crypto_cert *c, der_cursor *v)
{
	der_cursor pols, pi, quals, q;
	der_span oid;

	c->has_policies = true;
	c->role = CRYPTO_ROLE_NONE;
	if (der_get_sequence(v, DER_TAG_DEFAULT, &pols) != ESIM_OK)
		return false;
	while (!der_cursor_empty(&pols)) {
		if (der_get_sequence(&pols, DER_TAG_DEFAULT, &pi) != ESIM_OK ||
		    der_get_oid(&pi, DER_TAG_DEFAULT, &oid) != ESIM_OK)
			return false;
		if (!der_cursor_empty(&pi)) {
			if (der_get_sequence(&pi, DER_TAG_DEFAULT, &quals) != ESIM_OK ||
			    der_cursor_empty(&quals))
				return false;
			while (!der_cursor_empty(&quals))
				if (der_get_sequence(&quals, DER_TAG_DEFAULT, &q) != ESIM_OK ||
				    der_get_oid(&q, DER_TAG_DEFAULT, &oid) != ESIM_OK ||
				    der_get_any(&q, NULL) != ESIM_OK ||
				    der_expect_end(&q) != ESIM_OK)
					return false;
		}
		if (der_expect_end(&pi) != ESIM_OK)
			return false;
		if (c->role == CRYPTO_ROLE_NONE)
			c->role = role_from_oid(oid);
	}
	return true;
}

static bool ext_san(crypto_cert *c, der_cursor *v)
{
	der_element e;

	if (der_get_tlv(v, DER_TAG_SEQUENCE, &e) != ESIM_OK || !general_names_ok(e.value))
		return false;
	c->san = e.value;
	return true;
}

/* GeneralSubtrees ::= SEQUENCE OF GeneralSubtree { base GeneralName,
 *   minimum [0] INTEGER DEFAULT 0, maximum [1] INTEGER OPTIONAL }. */
static bool subtrees_ok(der_span subtrees)
{
	der_cursor all = der_cursor_of(subtrees), st, n;
	der_element base;
	bool present;

	while (!der_cursor_empty(&all)) {
		if (der_get_sequence(&all, DER_TAG_DEFAULT, &st) != ESIM_OK ||
		    der_get_any(&st, &base) != ESIM_OK || !general_name_ok(&base))
			return false;
		for (uint32_t tag = 0x80; tag <= 0x81; tag++)
			if (der_get_optional(&st, tag, &present, &n) != ESIM_OK ||
			    (present && !integer_ok((der_span){n.p, n.len})))
				return false;
		if (der_expect_end(&st) != ESIM_OK)
			return false;
	}
	return true;
}

/* NameConstraints ::= SEQUENCE { permittedSubtrees [0] OPTIONAL,
 *   excludedSubtrees [1] OPTIONAL }. */
static bool ext_name_constraints(crypto_cert *c, der_cursor *v)
{
	der_cursor nc, sub;
	bool present;

	if (der_get_sequence(v, DER_TAG_DEFAULT, &nc) != ESIM_OK ||
	    der_get_optional(&nc, 0xA0, &present, &sub) != ESIM_OK)
		return false;
	if (present) {
		/* the reader's spans point into the input even when empty, so
		 * p != NULL tells "present" */
		c->permitted = (der_span){sub.p, sub.len};
		if (!subtrees_ok(c->permitted))
			return false;
	}
	if (der_get_optional(&nc, 0xA1, &present, &sub) != ESIM_OK ||
	    (present && !subtrees_ok((der_span){sub.p, sub.len})))
		return false;
	return der_expect_end(&nc) == ESIM_OK;
}

/* A SEQUENCE OF whole elements; OIDs only when oids (extKeyUsage). */
static bool ext_sequence_of(der_cursor *v, bool oids, der_span *contents)
{
	der_element e, child;
	der_cursor c;
	esim_err err;

	if (der_get_tlv(v, DER_TAG_SEQUENCE, &e) != ESIM_OK)
		return false;
	c = der_cursor_of(e.value);
	while (der_next_child(&c, &child, &err))
		if (oids && (child.tag != DER_TAG_OID || der_value_oid(child.value) != ESIM_OK))
			return false;
	if (contents != NULL)
		*contents = e.value;
	return err == ESIM_OK;
}

/* Extensions ::= SEQUENCE OF Extension { extnID OID, critical BOOLEAN
 * DEFAULT FALSE, extnValue OCTET STRING } (the contents). */
static esim_err parse_extensions(crypto_cert *c, der_span exts)
{
	der_cursor all = der_cursor_of(exts), ext, v;
	der_span seen[CERT_MAX_EXTENSIONS], oid, value;
	size_t n = 0;
	uint32_t tag;
	bool crit, ok;

	while (!der_cursor_empty(&all)) {
		if (n == CERT_MAX_EXTENSIONS ||
		    der_get_sequence(&all, DER_TAG_DEFAULT, &ext) != ESIM_OK ||
		    der_get_oid(&ext, DER_TAG_DEFAULT, &oid) != ESIM_OK ||
		    der_peek_tag(&ext, &tag) != ESIM_OK)
			return ESIM_E_CERT_BAD_EXTENSION;
		crit = false;
		if (tag == DER_TAG_BOOLEAN &&
		    (der_get_bool_strict(&ext, DER_TAG_DEFAULT, &crit) != ESIM_OK || !crit))
			return ESIM_E_CERT_BAD_EXTENSION;
		if (der_get_octet_string(&ext, DER_TAG_DEFAULT, &value) != ESIM_OK ||
		    der_expect_end(&ext) != ESIM_OK)
			return ESIM_E_CERT_BAD_EXTENSION;
		/* RFC 5280 4.2: at most one instance of an extension. */
		for (size_t i = 0; i < n; i++)
			if (span_is(seen[i], oid.p, oid.len))
				return ESIM_E_CERT_BAD_EXTENSION;
		seen[n++] = oid;

		v = der_cursor_of(value);
		if (SPAN_IS(oid, oid_ski))
			ok = ext_ski(c, &v);
		else if (SPAN_IS(oid, oid_aki))
			ok = ext_aki(c, &v);
		else if (SPAN_IS(oid, oid_key_usage))
			ok = ext_key_usage(c, &v);
		else if (SPAN_IS(oid, oid_basic_constraints))
			ok = ext_basic_constraints(c, &v);
		else if (SPAN_IS(oid, oid_policies))
			ok = ext_policies(c, &v);
		else if (SPAN_IS(oid, oid_san))
			ok = ext_san(c, &v);
		else if (SPAN_IS(oid, oid_name_constraints))
			ok = ext_name_constraints(c, &v);
		else if (SPAN_IS(oid, oid_permitted_eins))
			ok = ext_sequence_of(&v, false, &c->eins);
		else if (SPAN_IS(oid, oid_eku))
			ok = ext_sequence_of(&v, true, NULL);
		else if (SPAN_IS(oid, oid_crl_dp))
			ok = ext_sequence_of(&v, false, NULL);
		else if (crit)
			return ESIM_E_CERT_UNKNOWN_CRITICAL; /* RFC 5280 4.2: MUST reject */
		else
			continue; /* not ours to read */
		if (!ok || der_expect_end(&v) != ESIM_OK)
			return ESIM_E_CERT_BAD_EXTENSION;
	}
	return ESIM_OK;
}

/* ---- the certificate -------------------------------------------------------- */

/* SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }. */
static bool spki_ok(der_span spki)
{
	der_cursor c = der_cursor_of(spki);
	der_span alg;
	der_bits bits;

	return get_algorithm(&c, &alg) &&
	       der_get_bit_string(&c, DER_TAG_DEFAULT, &bits) == ESIM_OK && bits.unused == 0 &&
	       der_expect_end(&c) == ESIM_OK;
}

/* TBSCertificate (its contents), RFC 5280 4.1. */
static esim_err parse_tbs(crypto_cert *c, der_cursor *tbs)
{
	der_cursor ver, validity, exts_wrap, exts;
	der_element e;
	der_span inner_alg;
	int64_t version;
	bool present;
	esim_err err;

	/* version [0] EXPLICIT INTEGER: DER omits v1 (the default), and
	 * RSP certificates are v3 (they need extensions). */
	if (der_get_optional(tbs, 0xA0, &present, &ver) != ESIM_OK)
		return ESIM_E_CERT_PARSE;
	if (!present)
		return ESIM_E_CERT_VERSION;
	if (der_get_int64(&ver, DER_TAG_DEFAULT, &version) != ESIM_OK ||
	    der_expect_end(&ver) != ESIM_OK)
		return ESIM_E_CERT_PARSE;
	if (version != 2)
		return ESIM_E_CERT_VERSION;

	if (der_get_tlv(tbs, DER_TAG_INTEGER, &e) != ESIM_OK || !integer_ok(e.value))
		return ESIM_E_CERT_PARSE;
	if (!get_algorithm(tbs, &inner_alg))
		return ESIM_E_CERT_PARSE;
	/* RFC 5280 4.1.1.2: the signed copy names the algorithm too, so that
	 * it cannot be swapped in the unsigned outer field. */
	if (inner_alg.len != c->sig_alg.len || memcmp(inner_alg.p, c->sig_alg.p, inner_alg.len))
		return ESIM_E_CERT_SIG_ALG_MISMATCH;

	if (der_get_tlv(tbs, DER_TAG_SEQUENCE, &e) != ESIM_OK || !name_ok(e.value))
		return ESIM_E_CERT_PARSE;
	c->issuer = e.value;
	if (der_get_sequence(tbs, DER_TAG_DEFAULT, &validity) != ESIM_OK)
		return ESIM_E_CERT_PARSE;
	if ((err = get_time(&validity, &c->not_before)) != ESIM_OK ||
	    (err = get_time(&validity, &c->not_after)) != ESIM_OK)
		return err;
	if (der_expect_end(&validity) != ESIM_OK)
		return ESIM_E_CERT_PARSE;
	if (der_get_tlv(tbs, DER_TAG_SEQUENCE, &e) != ESIM_OK || !name_ok(e.value))
		return ESIM_E_CERT_PARSE;
	c->subject = e.value;
	if (der_get_tlv(tbs, DER_TAG_SEQUENCE, &e) != ESIM_OK || !spki_ok(e.value))
		return ESIM_E_CERT_PARSE;
	c->spki = e.tlv;

	/* issuerUniqueID [1], subjectUniqueID [2]: IMPLICIT BIT STRING */
	for (uint32_t tag = 0x81; tag <= 0x82; tag++) {
		der_cursor uid;
		der_bits bits;
		if (der_get_optional(tbs, tag, &present, &uid) != ESIM_OK ||
		    (present && der_value_bit_string((der_span){uid.p, uid.len}, &bits) != ESIM_OK))
			return ESIM_E_CERT_PARSE;
	}
	if (der_get_optional(tbs, 0xA3, &present, &exts_wrap) != ESIM_OK)
		return ESIM_E_CERT_PARSE;
	if (present) {
		if (der_get_sequence(&exts_wrap, DER_TAG_DEFAULT, &exts) != ESIM_OK ||
		    der_expect_end(&exts_wrap) != ESIM_OK)
			return ESIM_E_CERT_BAD_EXTENSION;
		err = parse_extensions(c, (der_span){exts.p, exts.len});
		if (err != ESIM_OK)
			return err;
	}
	return der_expect_end(tbs) == ESIM_OK ? ESIM_OK : ESIM_E_CERT_PARSE;
}

/* The public key, last: building it is the dearest step, and a certificate
 * that is malformed elsewhere should not cost it. A key on another curve,
 * or not an EC key at all, still loads (without an EVP_PKEY): the chain
 * check reports the curve with its own error, as SGP.22 2.6.5 is a rule on
 * the chain, not on the encoding. A point off its curve does not load. */
static esim_err load_key(crypto_cert *c)
{
	esim_err err = crypto_key_from_spki(c->spki.p, c->spki.len, &c->pub);

	switch (err) {
	case ESIM_OK:
		c->curve_err = crypto_key_curve(c->pub, &c->curve);
		return c->curve_err == ESIM_OK ? ESIM_OK : ESIM_E_INTERNAL;
	case ESIM_E_CRYPTO_UNSUPPORTED_CURVE:
	case ESIM_E_CRYPTO_BAD_KEY:
		c->curve_err = err;
		return ESIM_OK;
	default:
		return err;
	}
}

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 * signatureValue BIT STRING }, exactly filling the buffer. */
static esim_err cert_parse(crypto_cert *c)
{
	der_cursor in, cert, tbs;
	der_element tbs_e;
	der_bits sig;
	esim_err err;

	der_cursor_init(&in, c->der, c->der_len);
	if (der_get_sequence(&in, DER_TAG_DEFAULT, &cert) != ESIM_OK ||
	    der_expect_end(&in) != ESIM_OK ||
	    der_get_tlv(&cert, DER_TAG_SEQUENCE, &tbs_e) != ESIM_OK ||
	    !get_algorithm(&cert, &c->sig_alg) ||
	    der_get_bit_string(&cert, DER_TAG_DEFAULT, &sig) != ESIM_OK || sig.unused != 0 ||
	    der_expect_end(&cert) != ESIM_OK)
		return ESIM_E_CERT_PARSE;
	c->tbs = tbs_e.tlv;
	c->sig = sig.bytes;
	tbs = der_cursor_of(tbs_e.value);
	err = parse_tbs(c, &tbs);
	if (err != ESIM_OK)
		return err;
	return load_key(c);
}

/* Parse exactly one DER certificate filling all of data. */
static esim_err cert_from_der(const uint8_t *data, size_t len, crypto_cert **out)
{
	crypto_cert *c;
	esim_err err;

	/* One allocation: the struct, then the DER its spans point into. */
	c = malloc(sizeof *c + len);
	if (c == NULL)
		return ESIM_E_NOMEM;
	memset(c, 0, sizeof *c);
	c->der = (uint8_t *)(c + 1);
	memcpy(c->der, data, len);
	c->der_len = len;
	c->role = CRYPTO_ROLE_NONE;
	c->curve = CRYPTO_CURVE_UNKNOWN;
	err = cert_parse(c);
	if (err != ESIM_OK) {
		crypto_cert_free(c);
		return err;
	}
	*out = c;
	return ESIM_OK;
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
	EVP_PKEY_free(cert->pub);
	free(cert); /* the DER lives in the same block */
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

esim_err crypto_cert_to_x509(const crypto_cert *cert, X509 **out)
{
	const unsigned char *p;

	if (cert == NULL || out == NULL)
		return ESIM_E_ARG;
	p = cert->der;
	*out = d2i_X509(NULL, &p, (long)cert->der_len);
	if (*out == NULL) {
		ERR_clear_error();
		return ESIM_E_CERT_PARSE;
	}
	return ESIM_OK;
}

EVP_PKEY *crypto_cert_pubkey(const crypto_cert *cert)
{
	return cert ? cert->pub : NULL;
}

esim_err crypto_cert_role(const crypto_cert *cert, crypto_rsp_role *out)
{
	if (cert == NULL || out == NULL)
		return ESIM_E_ARG;
	*out = cert->has_policies ? cert->role : CRYPTO_ROLE_NONE;
	return *out == CRYPTO_ROLE_NONE ? ESIM_E_CERT_NO_ROLE : ESIM_OK;
}

static esim_err copy_key_id(der_span id, uint8_t out[CRYPTO_KEY_ID_MAX], size_t *len)
{
	if (id.len > CRYPTO_KEY_ID_MAX)
		return ESIM_E_CERT_PARSE;
	memcpy(out, id.p, id.len);
	*len = id.len;
	return ESIM_OK;
}

esim_err crypto_cert_ski(const crypto_cert *cert, uint8_t out[CRYPTO_KEY_ID_MAX], size_t *len)
{
	if (cert == NULL || out == NULL || len == NULL)
		return ESIM_E_ARG;
	*len = 0;
	if (!cert->has_ski || cert->ski.len == 0)
		return ESIM_E_CERT_NO_SKI;
	return copy_key_id(cert->ski, out, len);
}

esim_err crypto_cert_aki(const crypto_cert *cert, uint8_t out[CRYPTO_KEY_ID_MAX], size_t *len)
{
	if (cert == NULL || out == NULL || len == NULL)
		return ESIM_E_ARG;
	*len = 0;
	/* the issuer+serial form alone names no key: unusable */
	if (!cert->has_aki_keyid || cert->aki_keyid.len == 0)
		return ESIM_E_CERT_NO_AKI;
	return copy_key_id(cert->aki_keyid, out, len);
}

static bool all_digits(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

esim_err crypto_cert_eid(const crypto_cert *cert, char out[CRYPTO_EID_DIGITS + 1])
{
	struct name_iter it;
	der_span type;
	der_element v, sn = {0};
	size_t count = 0;

	if (cert == NULL || out == NULL)
		return ESIM_E_ARG;
	out[0] = '\0';
	name_iter_init(&it, cert->subject);
	while (name_next(&it, &type, &v))
		if (SPAN_IS(type, oid_serial_number) && count++ == 0)
			sn = v;
	/* None, or two that would leave the EID ambiguous. */
	if (count != 1)
		return ESIM_E_CERT_NO_EID;
	if (der_tag_is_constructed(sn.tag) || sn.value.len != CRYPTO_EID_DIGITS ||
	    !all_digits(sn.value.p, CRYPTO_EID_DIGITS))
		return ESIM_E_CERT_NO_EID;
	memcpy(out, sn.value.p, CRYPTO_EID_DIGITS);
	out[CRYPTO_EID_DIGITS] = '\0';
	return ESIM_OK;
}

bool crypto_eid_check_digits(const char *eid)
{
	return crypto_pki_eid_check(eid) == ESIM_OK; /* one implementation of SGP.29 */
}

esim_err crypto_cert_curve(const crypto_cert *cert, crypto_curve *out)
{
	if (cert == NULL || out == NULL)
		return ESIM_E_ARG;
	*out = cert->curve;
	return cert->pub ? ESIM_OK : cert->curve_err;
}

esim_err crypto_cert_check_time(const crypto_cert *cert, time_t now)
{
	if (cert == NULL)
		return ESIM_E_ARG;
	/* A certificate is valid through the second named in notAfter. */
	if (cert->not_after < (int64_t)now)
		return ESIM_E_CERT_EXPIRED;
	if (cert->not_before > (int64_t)now)
		return ESIM_E_CERT_NOT_YET_VALID;
	return ESIM_OK;
}

esim_err crypto_cert_registered_id(const crypto_cert *cert, char *out, size_t n)
{
	der_cursor names;
	der_element e;
	esim_err err;

	if (cert == NULL || out == NULL || n == 0 || n > INT32_MAX)
		return ESIM_E_ARG;
	out[0] = '\0';
	if (cert->san.p == NULL)
		return ESIM_E_NOT_FOUND;
	names = der_cursor_of(cert->san);
	while (der_next_child(&names, &e, &err)) {
		if (e.tag != GN_RID)
			continue;
		err = der_oid_to_text(e.value, out, n);
		if (err != ESIM_OK && err != ESIM_E_BUF_SMALL)
			err = ESIM_E_INTERNAL;
		if (err != ESIM_OK)
			out[0] = '\0';
		return err;
	}
	return ESIM_E_NOT_FOUND;
}

esim_err crypto_cert_verify_signed_by(const crypto_cert *cert, const crypto_cert *issuer)
{
	esim_err err;

	if (cert == NULL || issuer == NULL)
		return ESIM_E_ARG;
	/* SGP.22 section 4.5.2: every RSP certificate is signed this way. */
	if (!SPAN_IS(cert->sig_alg, alg_ecdsa_sha256))
		return ESIM_E_CERT_SIG_ALG;
	if (issuer->pub == NULL)
		return ESIM_E_CRYPTO_BAD_KEY;
	/* Over the tbsCertificate bytes as received; the signature must be
	 * strict DER, as OpenSSL's own X.509 verification demands. */
	err = crypto_ecdsa_verify_der(issuer->pub, cert->tbs.p, cert->tbs.len, cert->sig.p,
				      cert->sig.len);
	if (err == ESIM_OK || err == ESIM_E_NOMEM)
		return err;
	return ESIM_E_CERT_BAD_SIGNATURE;
}

esim_err crypto_cert_check_ca(const crypto_cert *cert)
{
	if (cert == NULL)
		return ESIM_E_ARG;
	if (!cert->has_bc || !cert->ca)
		return ESIM_E_CERT_NOT_CA;
	if (!cert->has_ku || !der_bits_test(&cert->ku, KU_BIT_KEY_CERT_SIGN))
		return ESIM_E_CERT_NOT_CA;
	return ESIM_OK;
}

esim_err crypto_cert_check_digital_signature(const crypto_cert *cert)
{
	if (cert == NULL)
		return ESIM_E_ARG;
	if (!cert->has_ku || !der_bits_test(&cert->ku, KU_BIT_DIGITAL_SIGNATURE))
		return ESIM_E_CERT_KEY_USAGE;
	return ESIM_OK;
}

/* An EIN prefix is 1..32 decimal digits; anything else permits nothing. */
static bool prefix_matches(const der_element *prefix, const char *eid)
{
	der_span v = prefix->value;

	if (der_tag_is_constructed(prefix->tag) || v.len == 0 || v.len > CRYPTO_EID_DIGITS ||
	    !all_digits(v.p, v.len))
		return false;
	return strncmp(eid, (const char *)v.p, v.len) == 0;
}

/* Variant O: nameConstraints permittedSubtrees directoryName serialNumber.
 * Only the serialNumber is compared (the SGP.22 rule, not RFC 5280's
 * whole-RDN-sequence match, which the SGP.26 chain would fail). */
static bool eid_in_name_constraints(const crypto_cert *eum, const char *eid)
{
	der_cursor subtrees = der_cursor_of(eum->permitted), st, dir;
	der_element base, name, v;
	struct name_iter it;
	der_span type;

	if (eum->permitted.p == NULL)
		return false;
	while (der_get_sequence(&subtrees, DER_TAG_DEFAULT, &st) == ESIM_OK) {
		if (der_get_any(&st, &base) != ESIM_OK || base.tag != GN_DIRECTORY)
			continue;
		dir = der_cursor_of(base.value);
		if (der_get_tlv(&dir, DER_TAG_SEQUENCE, &name) != ESIM_OK)
			continue;
		name_iter_init(&it, name.value);
		while (name_next(&it, &type, &v))
			if (SPAN_IS(type, oid_serial_number) && prefix_matches(&v, eid))
				return true;
	}
	return false;
}

/* v3: PermittedEins ::= SEQUENCE OF PrintableString, in extension
 * 2.23.146.1.2.2.0. */
static bool eid_in_permitted_eins(const crypto_cert *eum, const char *eid)
{
	der_cursor eins = der_cursor_of(eum->eins);
	der_element e;
	esim_err err;

	if (eum->eins.p == NULL)
		return false;
	while (der_next_child(&eins, &e, &err))
		if (e.tag == DER_TAG_PRINTABLE_STRING && prefix_matches(&e, eid))
			return true;
	return false;
}

esim_err crypto_cert_eid_permitted(const crypto_cert *eum, const char *eid)
{
	if (eum == NULL || eid == NULL)
		return ESIM_E_ARG;
	if (strlen(eid) != CRYPTO_EID_DIGITS)
		return ESIM_E_CERT_EID_OUT_OF_RANGE;
	if (eid_in_name_constraints(eum, eid) || eid_in_permitted_eins(eum, eid))
		return ESIM_OK;
	return ESIM_E_CERT_EID_OUT_OF_RANGE;
}
