/*
 * cert: GSMA RSP certificates (SGP.22 section 4.5, digest section 10).
 *
 * A crypto_cert keeps the exact DER it was loaded from (signatures are
 * checked over those bytes) next to OpenSSL's parsed X509. Roles come from
 * the certificatePolicies OIDs under id-rspRole (2.23.146.1.2.1.x).
 *
 * Chains are checked by hand, the way SGP.22 requires, not by OpenSSL's
 * path builder: issuer found by AKI -> SKI, the issuer's signature, the
 * issuer's CA rights, each certificate's role, validity (when asked), and
 * for eUICC certificates the EID against the EUM's permitted EIN prefix
 * (nameConstraints serialNumber, or the permitted-eins extension).
 * Each failure has its own esim_err (ESIM_E_CERT_*).
 *
 * Ownership: crypto_cert_* and crypto_trust_* objects are freed with their
 * _free function. Pointers returned by accessors are borrowed and live as
 * long as the object they came from.
 */
#ifndef ESIM_CERT_H
#define ESIM_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "esim/crypto.h"
#include "esim/err.h"

/* GSMA RSP roles, numbered as the last arc of id-rspRole (2.23.146.1.2.1.x). */
typedef enum crypto_rsp_role {
	CRYPTO_ROLE_NONE = -1,
	CRYPTO_ROLE_CI = 0,
	CRYPTO_ROLE_EUICC = 1,
	CRYPTO_ROLE_EUM = 2,
	CRYPTO_ROLE_DP_TLS = 3,
	CRYPTO_ROLE_DP_AUTH = 4,
	CRYPTO_ROLE_DP_PB = 5,
	CRYPTO_ROLE_DS_TLS = 6,
	CRYPTO_ROLE_DS_AUTH = 7,
} crypto_rsp_role;

#define CRYPTO_KEY_ID_MAX 32 /* SKI/AKI are 20 bytes in practice */
#define CRYPTO_EID_DIGITS 32

typedef struct crypto_cert crypto_cert;

/* "CI", "eUICC", "EUM", "DPtls", "DPauth", "DPpb", "DStls", "DSauth", "none". */
const char *crypto_rsp_role_name(crypto_rsp_role role);

/* Parse one certificate from DER or PEM bytes (autodetected). The DER is
 * copied. The parse is strict (see cert.c): ESIM_E_CERT_PARSE for anything
 * that is not one DER certificate, ESIM_E_CERT_VERSION (not v3),
 * ESIM_E_CERT_SIG_ALG_MISMATCH, ESIM_E_CERT_BAD_TIME,
 * ESIM_E_CERT_BAD_EXTENSION, ESIM_E_CRYPTO_BAD_POINT (key not on its
 * curve). A key on another curve loads; crypto_cert_curve reports it.
 * *out: caller frees with crypto_cert_free. */
esim_err crypto_cert_load(const uint8_t *data, size_t len, crypto_cert **out);
esim_err crypto_cert_load_file(const char *path, crypto_cert **out);
void crypto_cert_free(crypto_cert *cert);

/* The exact DER bytes (borrowed). */
const uint8_t *crypto_cert_der(const crypto_cert *cert, size_t *len);
/* The public key (borrowed; owned by cert, do not free), or NULL when it is
 * not on one of the two SGP.22 curves. */
EVP_PKEY *crypto_cert_pubkey(const crypto_cert *cert);
/* A NEW OpenSSL X509 decoded from the DER, for callers that need
 * OpenSSL's X.509 API (tests, tools); slow, not for request paths.
 * *out: caller frees with X509_free. */
esim_err crypto_cert_to_x509(const crypto_cert *cert, X509 **out);

/* The role from certificatePolicies: ESIM_E_CERT_NO_ROLE when none. */
esim_err crypto_cert_role(const crypto_cert *cert, crypto_rsp_role *out);
/* SubjectKeyIdentifier / AuthorityKeyIdentifier keyIdentifier. */
esim_err crypto_cert_ski(const crypto_cert *cert, uint8_t out[CRYPTO_KEY_ID_MAX], size_t *len);
esim_err crypto_cert_aki(const crypto_cert *cert, uint8_t out[CRYPTO_KEY_ID_MAX], size_t *len);
/* The EID (32 decimal digits + NUL) from the subject serialNumber of an
 * eUICC certificate; ESIM_E_CERT_NO_EID when absent or not 32 digits. */
esim_err crypto_cert_eid(const crypto_cert *cert, char out[CRYPTO_EID_DIGITS + 1]);
/* The curve of the certificate's public key. */
esim_err crypto_cert_curve(const crypto_cert *cert, crypto_curve *out);
/* Validity at time now: ESIM_E_CERT_EXPIRED / ESIM_E_CERT_NOT_YET_VALID. */
esim_err crypto_cert_check_time(const crypto_cert *cert, time_t now);
/* The first SubjectAltName registeredID as dotted text (e.g. "2.999.10"),
 * the SM-DP+ / CI / EUM OID. ESIM_E_NOT_FOUND when absent. */
esim_err crypto_cert_registered_id(const crypto_cert *cert, char *out, size_t n);
/* Check that issuer's key signed cert (no other checks). */
esim_err crypto_cert_verify_signed_by(const crypto_cert *cert, const crypto_cert *issuer);
/* CA rights: basicConstraints CA:TRUE and keyUsage keyCertSign, else
 * ESIM_E_CERT_NOT_CA. */
esim_err crypto_cert_check_ca(const crypto_cert *cert);
/* keyUsage present and allowing digitalSignature, else ESIM_E_CERT_KEY_USAGE
 * (RSP certificates always carry keyUsage, so an absent one fails too). */
esim_err crypto_cert_check_digital_signature(const crypto_cert *cert);
/* ESIM_OK when eid starts with an EIN prefix that the EUM certificate eum
 * permits: nameConstraints permitted directoryName serialNumber (Variant O)
 * or the permitted-eins extension 2.23.146.1.2.2.0 (v3).
 * ESIM_E_CERT_EID_OUT_OF_RANGE otherwise, also when eum declares no range. */
esim_err crypto_cert_eid_permitted(const crypto_cert *eum, const char *eid);
/* SGP.29 check digits: true when the 32-digit eid, read as a number, is 1
 * modulo 97. Not part of crypto_cert_eid / crypto_chain_verify (see cert.c):
 * callers that want it ask for it. */
bool crypto_eid_check_digits(const char *eid);

/* A set of trusted CI certificates, looked up by their SKI (the CI PKID). */
typedef struct crypto_trust crypto_trust;

esim_err crypto_trust_new(crypto_trust **out);
void crypto_trust_free(crypto_trust *trust);
/* Add a CI certificate (it must have the CI role and verify as
 * self-signed). The trust store keeps its own reference. */
esim_err crypto_trust_add_ci(crypto_trust *trust, const crypto_cert *ci);
esim_err crypto_trust_add_ci_file(crypto_trust *trust, const char *path);
/* The trusted CI with this SKI (borrowed), or NULL. */
const crypto_cert *crypto_trust_find(const crypto_trust *trust, const uint8_t *ski, size_t ski_len);
size_t crypto_trust_count(const crypto_trust *trust);
/* The i-th CI (borrowed), in insertion order. */
const crypto_cert *crypto_trust_get(const crypto_trust *trust, size_t i);

struct crypto_chain_opts {
	bool check_time; /* check validity periods at `now` */
	time_t now;
};

/* Verify leaf up to a trusted CI, using intermediates (any order, may be
 * NULL when n_intermediates is 0). leaf_role is required of the leaf:
 * CRYPTO_ROLE_EUICC expects one EUM intermediate and checks the EID range;
 * DP and DS roles are signed by the CI directly. On success *ci_out (may be
 * NULL) is the trusted CI the chain ends at (borrowed from trust). */
esim_err crypto_chain_verify(const crypto_trust *trust, const crypto_cert *leaf,
			     const crypto_cert *const *intermediates, size_t n_intermediates,
			     crypto_rsp_role leaf_role, const struct crypto_chain_opts *opts,
			     const crypto_cert **ci_out);

#endif
