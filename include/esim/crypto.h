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
#include "esim/util.h"

/* The two curves SGP.22 allows. */
typedef enum crypto_curve {
	CRYPTO_CURVE_UNKNOWN = 0,
	CRYPTO_CURVE_P256,	      /* NIST P-256, prime256v1, 1.2.840.10045.3.1.7 */
	CRYPTO_CURVE_BRAINPOOLP256R1, /* brainpoolP256r1, 1.3.36.3.3.2.8.1.1.7 */
} crypto_curve;

#define CRYPTO_RAW_SIG_LEN  64 /* r || s, 32 bytes each */
#define CRYPTO_EC_POINT_LEN 65 /* 04 || X || Y */
#define CRYPTO_ECDH_LEN	    32 /* shared secret: the x-coordinate */
#define CRYPTO_DER_SIG_MAX  72 /* 30 46 02 21 00 r 02 21 00 s */

/* "prime256v1" / "brainpoolP256r1" (OpenSSL group names), or NULL. */
const char *crypto_curve_name(crypto_curve c);

/* The curve of an EC key (public or private). ESIM_E_CRYPTO_UNSUPPORTED_CURVE
 * for any other curve, ESIM_E_CRYPTO_BAD_KEY for a non-EC key. */
esim_err crypto_key_curve(const EVP_PKEY *key, crypto_curve *out);

/* Load a private or public key from PEM or DER bytes (autodetected).
 * Only keys on the two SGP.22 curves are accepted (else
 * ESIM_E_CRYPTO_UNSUPPORTED_CURVE; anything else unreadable is
 * ESIM_E_CRYPTO_BAD_KEY). *out: caller frees with EVP_PKEY_free. */

/* Private key: PKCS#8 or SEC1 "EC PRIVATE KEY"; must hold the scalar. */
esim_err crypto_key_load_private(const uint8_t *data, size_t len, EVP_PKEY **out);
/* Public key: SubjectPublicKeyInfo. DER SPKI on an SGP.22 curve takes the
 * fast path of crypto_key_from_spki; other input goes through OpenSSL's
 * decoder. */
esim_err crypto_key_load_public(const uint8_t *data, size_t len, EVP_PKEY **out);
/* Public key from exactly one DER SubjectPublicKeyInfo (id-ecPublicKey,
 * namedCurve prime256v1 or brainpoolP256r1, point uncompressed or
 * compressed), built without OpenSSL's decoder framework and validated as
 * crypto_key_from_point does. ESIM_E_CRYPTO_BAD_KEY when malformed or not an
 * EC key, ESIM_E_CRYPTO_UNSUPPORTED_CURVE for another curve or explicit
 * parameters, ESIM_E_CRYPTO_BAD_POINT when the point is not on the curve.
 * *out: caller frees with EVP_PKEY_free. */
esim_err crypto_key_from_spki(const uint8_t *der, size_t len, EVP_PKEY **out);
/* crypto_key_load_private on a file's contents (the copy read is wiped). */
esim_err crypto_key_load_private_file(const char *path, EVP_PKEY **out);
/* crypto_key_load_public on a file's contents. */
esim_err crypto_key_load_public_file(const char *path, EVP_PKEY **out);

/* Generate a fresh key pair on curve (the one-time otPK/otSK of a BPP
 * session). *out: caller frees with EVP_PKEY_free. */
esim_err crypto_key_generate(crypto_curve curve, EVP_PKEY **out);
/* As crypto_key_generate, on the curve of like (borrowed, not changed; any
 * EC key on an SGP.22 curve, public or private): a copy of like's group
 * instead of one built from the curve's name, so cheaper. */
esim_err crypto_key_generate_like(EVP_PKEY *like, EVP_PKEY **out);

/* Export the public point of key (public or private) as 04||X||Y. */
esim_err crypto_key_public_point(const EVP_PKEY *key, uint8_t out[CRYPTO_EC_POINT_LEN]);

/* Import a peer's public point (exactly 65 bytes, 04||X||Y) on curve,
 * validated as SP 800-56A partial public-key validation (coordinates in the
 * field, on the curve; cofactor 1 makes that enough, see key.c):
 * ESIM_E_CRYPTO_BAD_POINT when malformed or not on the curve. *out: caller
 * frees with EVP_PKEY_free. */
esim_err crypto_key_from_point(crypto_curve curve, const uint8_t *point, size_t len,
			       EVP_PKEY **out);
/* As crypto_key_from_point, on the curve of like (borrowed; see
 * crypto_key_generate_like), with the same validation and errors. */
esim_err crypto_key_from_point_like(const EVP_PKEY *like, const uint8_t *point, size_t len,
				    EVP_PKEY **out);

/* True when key is an EC key that holds its private scalar. */
bool crypto_key_has_private(const EVP_PKEY *key);

/* ---- ECDSA with SHA-256 (ecdsa.c) ----------------------------------------
 * Keys are borrowed. A signature that is well-formed but does not verify is
 * ESIM_E_CRYPTO_SIGNATURE_INVALID; malformed bytes (wrong length, bad DER)
 * are ESIM_E_CRYPTO_BAD_SIGNATURE_FORMAT. */

/* One piece of a message that is signed as the concatenation of pieces
 * (borrowed; data may be NULL when len is 0). */
struct crypto_span {
	const uint8_t *data;
	size_t len;
};

/* Sign SHA-256(data) with priv; out receives raw r||s (SGP.22 form). */
esim_err crypto_ecdsa_sign(EVP_PKEY *priv, const uint8_t *data, size_t len,
			   uint8_t out[CRYPTO_RAW_SIG_LEN]);
/* Sign the concatenation of n spans without copying them; raw r||s out. */
esim_err crypto_ecdsa_sign_spans(EVP_PKEY *priv, const struct crypto_span *spans, size_t n,
				 uint8_t out[CRYPTO_RAW_SIG_LEN]);
/* Sign SHA-256(data); out receives DER (X.509 form), *out_len its length. */
esim_err crypto_ecdsa_sign_der(EVP_PKEY *priv, const uint8_t *data, size_t len,
			       uint8_t out[CRYPTO_DER_SIG_MAX], size_t *out_len);
/* Verify a raw r||s signature (sig_len must be 64) over data with pub. */
esim_err crypto_ecdsa_verify(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig,
			     size_t sig_len);
/* Verify a raw r||s signature over the concatenation of n spans. */
esim_err crypto_ecdsa_verify_spans(EVP_PKEY *pub, const struct crypto_span *spans, size_t n,
				   const uint8_t *sig, size_t sig_len);
/* Verify a strict-DER signature over data with pub. */
esim_err crypto_ecdsa_verify_der(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *der,
				 size_t der_len);
/* Verify a strict-DER signature over the concatenation of n spans. */
esim_err crypto_ecdsa_verify_der_spans(EVP_PKEY *pub, const struct crypto_span *spans, size_t n,
				       const uint8_t *der, size_t der_len);
/* Convert raw r||s (exactly 64 bytes) to minimal DER into out (*out_len set). */
esim_err crypto_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len,
				 uint8_t out[CRYPTO_DER_SIG_MAX], size_t *out_len);
/* Convert strict DER (minimal, non-negative, <= 32-byte r and s, nothing
 * trailing) to raw r||s. */
esim_err crypto_ecdsa_der_to_raw(const uint8_t *der, size_t der_len,
				 uint8_t out[CRYPTO_RAW_SIG_LEN]);

/* ---- ECKA / ECDH (ecdh.c) ------------------------------------------------ */

/* Shared secret (x-coordinate) of priv and peer (both borrowed);
 * ESIM_E_CRYPTO_CURVE_MISMATCH when on different curves. out is secret:
 * the caller wipes it. */
esim_err crypto_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t out[CRYPTO_ECDH_LEN]);
/* As crypto_ecdh, with the peer given as a 65-byte point on priv's curve
 * (validated; ESIM_E_CRYPTO_BAD_POINT). */
esim_err crypto_ecdh_point(EVP_PKEY *priv, const uint8_t *peer_point, size_t len,
			   uint8_t out[CRYPTO_ECDH_LEN]);

/* ---- KDF and MAC (kdf.c, scp03t.c) ---------------------------------------- */

/* ANSI X9.63 KDF with SHA-256: out_len bytes from secret and info (info
 * may be NULL when info_len is 0) into the caller's out. */
esim_err crypto_x963_kdf(const uint8_t *secret, size_t secret_len, const uint8_t *info,
			 size_t info_len, uint8_t *out, size_t out_len);
/* AES-CMAC (RFC 4493) with a 16-byte key over data: full 16-byte tag. */
esim_err crypto_aes_cmac(const uint8_t key[16], const uint8_t *data, size_t len, uint8_t out[16]);

/* ---- BPP session keys and SCP03t (scp03t.c; SGP.22 5.5, digest 7.3/7.4) --- */

#define CRYPTO_BPP_KEY_TYPE_AES	   0x88 /* CRT keyType */
#define CRYPTO_BPP_KEY_LEN_16	   0x10 /* CRT keyLen */
#define CRYPTO_BPP_HOST_ID_MAX	   16	/* hostId OCTET STRING (SIZE(1..16)) */
#define CRYPTO_EID_LEN		   16	/* EID, BCD as in GetEID */
#define CRYPTO_BPP_SHARED_INFO_MAX (3 + CRYPTO_BPP_HOST_ID_MAX + 1 + CRYPTO_EID_LEN)
#define CRYPTO_SCP03T_TAG_CFG	   0x87 /* encrypted + MAC: ConfigureISDP, ReplaceSessionKeys */
#define CRYPTO_SCP03T_TAG_META	   0x88 /* MAC-only: StoreMetadata */
#define CRYPTO_SCP03T_TAG_PROF	   0x86 /* encrypted + MAC: profile segments */
#define CRYPTO_SCP03T_SEGMENT_MAX  1020 /* whole TLV, tag and MAC included */
#define CRYPTO_SCP03T_MAC_LEN	   8	/* transmitted part of the C-MAC */

/* The three 16-byte BPP session values, in KDF output order. Secret: wipe
 * with crypto_bpp_keys_wipe. */
struct crypto_bpp_keys {
	uint8_t mcv[16]; /* initialMacChainingValue */
	uint8_t s_enc[16];
	uint8_t s_mac[16];
};

/* Build sharedInfo = keyType || keyLen || len(hostId) || hostId || 0x10 ||
 * EID into out (*out_len set). hostId is 1..16 bytes. */
esim_err crypto_bpp_shared_info(uint8_t key_type, uint8_t key_len, const uint8_t *host_id,
				size_t host_id_len, const uint8_t eid[CRYPTO_EID_LEN],
				uint8_t out[CRYPTO_BPP_SHARED_INFO_MAX], size_t *out_len);
/* Derive MCV0, S-ENC, S-MAC from ShS and the CRT values; only keyType 0x88
 * with keyLen 0x10 is defined (else ESIM_E_CRYPTO_UNSUPPORTED_CRT). */
esim_err crypto_bpp_derive_keys(const uint8_t *shs, size_t shs_len, uint8_t key_type,
				uint8_t key_len, const uint8_t *host_id, size_t host_id_len,
				const uint8_t eid[CRYPTO_EID_LEN], struct crypto_bpp_keys *out);
/* Overwrite the keys with zeros. */
void crypto_bpp_keys_wipe(struct crypto_bpp_keys *keys);

/* SCP03t state of one side of a BPP. Secret; plain data so it can live on
 * the stack or in a session struct; wipe with crypto_scp03t_clear. */
typedef struct crypto_scp03t {
	uint8_t s_enc[16];
	uint8_t s_mac[16];
	uint8_t mcv[16]; /* MAC chaining value: the last full C-MAC */
	uint64_t n;	 /* block counter for the ICV, starts at 1 */
} crypto_scp03t;

/* Start a session from derived keys (n = 1). keys stays the caller's. */
void crypto_scp03t_init(crypto_scp03t *st, const struct crypto_bpp_keys *keys);
/* ReplaceSessionKeys: new S-ENC, S-MAC and MCV, counter back to 1. */
void crypto_scp03t_replace_keys(crypto_scp03t *st, const uint8_t s_enc[16], const uint8_t s_mac[16],
				const uint8_t mcv[16]);
/* Wipe the state. */
void crypto_scp03t_clear(crypto_scp03t *st);
/* Largest plaintext one segment with this tag can carry in 1020 bytes:
 * 1007 for 86/87, 1008 for 88; 0 for another tag. */
size_t crypto_scp03t_max_plain(uint8_t tag);
/* Length of the whole TLV that protecting plain_len bytes under tag yields
 * (0 for another tag). */
size_t crypto_scp03t_segment_len(uint8_t tag, size_t plain_len);
/* Protect one segment: 86/87 encrypt and MAC, 88 MAC only. Appends the
 * whole TLV tag||L||C||MAC8 to out (caller owns out). ESIM_E_TOO_LARGE past
 * 1020 bytes. State advances only on success. */
esim_err crypto_scp03t_protect(crypto_scp03t *st, uint8_t tag, const uint8_t *plain,
			       size_t plain_len, esim_buf *out);
/* Unprotect one whole TLV exactly as received (tag, length, value; the MAC
 * covers the length bytes as sent). Appends the plaintext to out (caller
 * owns it; it may hold secrets: wipe it). Errors: ESIM_E_CRYPTO_BAD_LENGTH
 * (structure), ESIM_E_CRYPTO_MAC_INVALID, ESIM_E_CRYPTO_BAD_PADDING. The
 * state and out are unchanged on failure, so a correct retry succeeds. */
esim_err crypto_scp03t_unprotect_tlv(crypto_scp03t *st, const uint8_t *tlv, size_t tlv_len,
				     esim_buf *out);
/* Unprotect from the parts a DER reader hands over: the tag and the value
 * (C || MAC8). The length is re-encoded minimally, which is what is on the
 * wire when the reader enforces DER lengths (the der layer does). Same
 * errors and guarantees as crypto_scp03t_unprotect_tlv. */
esim_err crypto_scp03t_unprotect(crypto_scp03t *st, uint8_t tag, const uint8_t *value,
				 size_t value_len, esim_buf *out);

#endif
