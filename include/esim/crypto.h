/*
 * crypto: the SGP.22 cryptography on OpenSSL 3's EVP interfaces.
 *
 *  - keys: load PEM/DER, curve of a key, one-time key pairs, public points
 *  - ECDSA on NIST P-256 and brainpoolP256r1, signatures both as raw r||s
 *    (64 bytes, as SGP.22 signs inside its messages) and DER (as X.509 signs)
 *  - ECKA (ECDH) and the ANSI X9.63 KDF with SHA-256
 *  - the bound-profile-package session keys and SCP03t segment protection
 *    (SGP.22 section 2.6.4 / 5.5; digest section 7)
 *
 * Keys are OpenSSL EVP_PKEY objects; functions that return one say so and
 * the caller frees it with EVP_PKEY_free(). Secrets held in esimkit structs
 * are wiped by their _free/_clear functions.
 *
 * Certificates and chains are in esim/cert.h.
 */
#ifndef ESIM_CRYPTO_H
#define ESIM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "esim/err.h"

/* The two curves SGP.22 allows. */
typedef enum crypto_curve {
	CRYPTO_CURVE_UNKNOWN = 0,
	CRYPTO_CURVE_P256,            /* NIST P-256, prime256v1, 1.2.840.10045.3.1.7 */
	CRYPTO_CURVE_BRAINPOOLP256R1, /* brainpoolP256r1, 1.3.36.3.3.2.8.1.1.7 */
} crypto_curve;

#define CRYPTO_RAW_SIG_LEN 64  /* r || s, 32 bytes each */
#define CRYPTO_EC_POINT_LEN 65 /* 04 || X || Y */
#define CRYPTO_ECDH_LEN 32     /* shared secret: the x-coordinate */

/* "prime256v1" / "brainpoolP256r1" (OpenSSL group names), or NULL. */
const char *crypto_curve_name(crypto_curve c);

/* The curve of an EC key (public or private). ESIM_E_CRYPTO_UNSUPPORTED_CURVE
 * for any other curve, ESIM_E_CRYPTO_BAD_KEY for a non-EC key. */
esim_err crypto_key_curve(const EVP_PKEY *key, crypto_curve *out);

/* Load a private or public key from PEM or DER bytes (autodetected).
 * Only keys on the two SGP.22 curves are accepted. *out: caller frees. */
esim_err crypto_key_load_private(const uint8_t *data, size_t len, EVP_PKEY **out);
esim_err crypto_key_load_public(const uint8_t *data, size_t len, EVP_PKEY **out);
esim_err crypto_key_load_private_file(const char *path, EVP_PKEY **out);

#endif
