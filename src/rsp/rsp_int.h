/*
 * Private helpers of the rsp layer: small getters that turn the der
 * layer's generic errors into the rsp layer's "wrong structure" errors and
 * read the fixed-size fields SGP.22 messages share.
 */
#ifndef ESIM_RSP_INT_H
#define ESIM_RSP_INT_H

#include "esim/der.h"
#include "esim/rsp.h"

/* Well-formed DER that is not the expected structure (wrong tag, form or
 * trailing element, or a required element missing at the end) becomes
 * ESIM_E_RSP_BAD_STRUCTURE; encoding errors
 * (truncation, bad lengths) keep their der code. */
esim_err rsp__structure(esim_err err);
/* A signature that does not verify or is malformed becomes
 * ESIM_E_RSP_BAD_SIGNATURE; other errors are kept. */
esim_err rsp__signature(esim_err err);

/* Open a message: the one TLV of tag that makes up all of p[0..len), its
 * content in *in. With choice non-NULL, also the tag of the content's first
 * element (a response's CHOICE: result or error). Errors are mapped with
 * rsp__structure. */
esim_err rsp__open(const uint8_t *p, size_t len, uint32_t tag, der_cursor *in, uint32_t *choice);
/* Primitive element of tag with exactly len content bytes into out. */
esim_err rsp__get_fixed(der_cursor *c, uint32_t tag, uint8_t *out, size_t len);
/* transactionId (1..16 bytes) under tag. */
esim_err rsp__get_txid(der_cursor *c, uint32_t tag, rsp_txid *out);
/* 5F37 with exactly 64 bytes. */
esim_err rsp__get_sig(der_cursor *c, uint8_t out[RSP_SIG_LEN]);
/* A malloc'd NUL-terminated copy of a span (caller frees). */
esim_err rsp__strdup(der_span s, char **out);
/* Number of UTF-8 characters in valid UTF-8. */
size_t rsp__utf8_chars(const uint8_t *p, size_t n);
/* Sign / verify SHA-256 over concatenated spans; verification errors are
 * mapped with rsp__signature. */
esim_err rsp__verify(EVP_PKEY *pub, const struct crypto_span *spans, size_t n,
		     const uint8_t sig[RSP_SIG_LEN]);

/* Decode the content of a BF2F (whose value span is given). */
esim_err rsp__notif_metadata_value(der_span value, struct rsp_notif_metadata *out);
/* Parse 30 CERT.EUICC / 30 CERT.EUM, verify the chain, give the eUICC key
 * (new reference, caller frees), the EID and the CI (borrowed). */
esim_err rsp__euicc_chain(der_span euicc_cert, der_span eum_cert, const crypto_trust *trust,
			  const struct crypto_chain_opts *opts, EVP_PKEY **pub,
			  char eid[RSP_EID_DIGITS + 1], const crypto_cert **ci);

#endif
