/*
 * pki: issuing GSMA RSP certificates for a private test PKI (SGP.22 section
 * 4.5; the profiles follow the SGP.26 test certificates, digest section 10.3),
 * and the SGP.29 EID check digits.
 *
 * One call, crypto_issue(), issues any certificate of the RSP hierarchy from
 * a parameter struct: a self-signed CI, an EUM under it, an eUICC under the
 * EUM, the SM-DP+ certificates (DPauth, DPpb, DPtls), the SM-DS ones, and an
 * operator's ES2+ client TLS certificate. Validity is given explicitly so that
 * tests can issue expired or not-yet-valid certificates, and the issuer is any
 * certificate + key (e.g. the SGP.26 test CI) so that a test can issue what it
 * needs at run time.
 *
 * Ownership: crypto_issued holds a malloc'd DER and an EVP_PKEY; release both
 * with crypto_issued_clear(). Parameters are borrowed for the call only.
 */
#ifndef ESIM_PKI_H
#define ESIM_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/err.h"
#include "esim/util.h"

/* What to issue. Each kind has its GSMA profile (key usage, policy, ...). */
typedef enum crypto_issue_kind {
	CRYPTO_ISSUE_CI = 0,   /* self-signed root, CA:TRUE, keyCertSign+cRLSign */
	CRYPTO_ISSUE_EUM,      /* CA:TRUE pathlen 0, nameConstraints with the EIN */
	CRYPTO_ISSUE_EUICC,    /* subject serialNumber = EID, signed by the EUM */
	CRYPTO_ISSUE_DP_TLS,   /* SM-DP+ TLS server (and client) */
	CRYPTO_ISSUE_DP_AUTH,  /* SM-DP+ authentication (serverSignature1) */
	CRYPTO_ISSUE_DP_PB,    /* SM-DP+ profile binding (smdpSignature2) */
	CRYPTO_ISSUE_DS_TLS,   /* SM-DS TLS server */
	CRYPTO_ISSUE_DS_AUTH,  /* SM-DS authentication */
	CRYPTO_ISSUE_OPERATOR, /* operator's ES2+ TLS client: EKU clientAuth, no RSP role */
} crypto_issue_kind;

/* Default SubjectAltName registeredIDs, as in SGP.26 (digest 10.2). */
#define CRYPTO_PKI_OID_CI   "2.999.1"
#define CRYPTO_PKI_OID_EUM  "2.999.5"
#define CRYPTO_PKI_OID_SMDP "2.999.10"

/* notAfter 9999-12-31 23:59:59 UTC: RFC 5280's "no well-defined expiration",
 * what eUICC certificates carry in practice. Needs a 64-bit time_t. */
#define CRYPTO_PKI_NOT_AFTER_NEVER ((time_t)253402300799LL)

#define CRYPTO_PKI_EIN_DIGITS 8 /* EUM permitted prefix taken from the EID */
#define CRYPTO_PKI_SKI_LEN    20

struct crypto_issue_params {
	crypto_issue_kind kind;
	/* Curve of a freshly generated key; ignored when subject_key is set. */
	crypto_curve curve;
	/* Certify this existing key (private or public; borrowed) instead of
	 * generating one. */
	EVP_PKEY *subject_key;

	/* Subject. NULL fields take the kind's default (see issue.c); country
	 * must be 2 letters. For DPtls/DStls the default CN is the first DNS
	 * name. */
	const char *country;
	const char *org;
	const char *org_unit;
	const char *common_name;

	/* eUICC: the EID (subject serialNumber). EUM: the permitted prefix
	 * (nameConstraints) is ein, or when ein is NULL the first
	 * CRYPTO_PKI_EIN_DIGITS digits of eid; ein = "" issues an EUM without
	 * nameConstraints. The EID must be valid (crypto_pki_eid_check) and ein
	 * all digits unless unchecked_eid is set, which lets negative tests issue
	 * malformed ones. */
	const char *eid;
	const char *ein;
	bool unchecked_eid;

	/* SubjectAltName dNSName / iPAddress entries (text, IPv4 or IPv6).
	 * DPtls and DStls: when both lists are empty, "localhost" and
	 * "127.0.0.1". Other kinds: only what is given. */
	const char *const *dns_names;
	size_t n_dns_names;
	const char *const *ip_addrs;
	size_t n_ip_addrs;

	/* SubjectAltName registeredID (dotted OID). NULL: the kind's default
	 * (CI 2.999.1, EUM 2.999.5, DP* 2.999.10, none for the others). "" for
	 * none at all. */
	const char *registered_id;

	/* Issuer certificate (DER) and its private key (both borrowed). Must be
	 * NULL for CRYPTO_ISSUE_CI, which is self-signed; required otherwise.
	 * The key must match the certificate. */
	const uint8_t *issuer_der;
	size_t issuer_der_len;
	EVP_PKEY *issuer_key;

	/* Validity; not_after must be later than not_before. */
	time_t not_before;
	time_t not_after;
};

struct crypto_issued {
	uint8_t *der; /* the certificate, malloc'd */
	size_t der_len;
	EVP_PKEY *key;			 /* the subject key (generated, or a new reference to
					  * params.subject_key) */
	uint8_t ski[CRYPTO_PKI_SKI_LEN]; /* SubjectKeyIdentifier written */
};

/* Issue one certificate, signed with ecdsa-with-SHA256 and a random positive
 * 128-bit serial number. ESIM_E_ARG for inconsistent parameters (missing or
 * superfluous issuer, bad subject text, bad OID or IP address, empty
 * validity), ESIM_E_CRYPTO_BAD_KEY when issuer_key does not match issuer_der,
 * ESIM_E_CERT_PARSE for a bad issuer_der, ESIM_E_CRYPTO_EID_* for a bad EID.
 * On success *out must be released with crypto_issued_clear(); on failure
 * *out is left cleared. */
esim_err crypto_issue(const struct crypto_issue_params *params, struct crypto_issued *out);
void crypto_issued_clear(struct crypto_issued *out);

/* The RSP role a kind carries in certificatePolicies (CRYPTO_ROLE_NONE for
 * the operator certificate). */
crypto_rsp_role crypto_issue_kind_role(crypto_issue_kind kind);

/* PEM text of a certificate (DER in) and of a private key (unencrypted
 * PKCS#8). The key's buffer holds a secret: free it with esim_buf_wipe_free.
 * *out is appended to (start from ESIM_BUF_INIT). */
esim_err crypto_pki_cert_pem(const uint8_t *der, size_t der_len, esim_buf *out);
esim_err crypto_pki_key_pem(EVP_PKEY *key, esim_buf *out);

/* SGP.29 EID check digits.
 *
 * crypto_pki_eid_check: ESIM_OK when eid is 32 decimal digits and the
 * number mod 97 == 1; ESIM_E_CRYPTO_EID_FORMAT when not 32 digits,
 * ESIM_E_CRYPTO_EID_CHECK_DIGITS when the check digits are wrong.
 *
 * crypto_pki_eid_check_digits: the two check digits (+ NUL) for digits,
 * which is either the 30-digit prefix or a whole 32-digit EID (whose last
 * two digits are ignored): 98 - (prefix*100 mod 97).
 *
 * crypto_pki_eid_complete: the full 32-digit EID for a 30-digit prefix. */
esim_err crypto_pki_eid_check(const char *eid);
esim_err crypto_pki_eid_check_digits(const char *digits, char out[3]);
esim_err crypto_pki_eid_complete(const char *prefix30, char out[CRYPTO_EID_DIGITS + 1]);

#endif
