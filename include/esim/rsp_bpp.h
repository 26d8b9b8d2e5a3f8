/*
 * rsp_bpp: the Bound Profile Package of ES8+ (digest section 7).
 *
 * SM-DP+ side: rsp_bpp_build() binds a profile package (UPP) to one eUICC:
 * a fresh one-time key pair on the curve of the DPpb key, ECDH with the
 * eUICC's otPK, the SCP03t session keys, and the BF36 structure with the
 * signed InitialiseSecureChannelRequest, ConfigureISDP, StoreMetadata,
 * optional ReplaceSessionKeys (PPK path) and the profile segments.
 *
 * LPA / eUICC side: rsp_bpp_parse() checks the outer structure,
 * rsp_bpp_split() cuts a BPP into the ES10b LoadBoundProfilePackage
 * commands of digest 3.5, rsp_init_sc_parse()/_verify() read and check the
 * BF23 the eUICC receives first.
 */
#ifndef ESIM_RSP_BPP_H
#define ESIM_RSP_BPP_H

#include "esim/rsp.h"

#define RSP_BPP_REMOTE_OP_INSTALL 1

/* Profile protection keys for the ReplaceSessionKeys path (digest 7.8).
 * Secret: the caller wipes them. */
struct rsp_bpp_ppk {
	uint8_t enc[16];
	uint8_t mac[16];
	uint8_t mcv[16]; /* initialMacChainingValue */
};

/* Inputs of rsp_bpp_build; all borrowed for the call. */
struct rsp_bpp_params {
	EVP_PKEY *dp_pb_key; /* SK.DPpb: signs BF23; its curve is the session's */
	const rsp_txid *txid;
	const uint8_t *euicc_otpk; /* otPK.EUICC from euiccSigned2, 65 bytes */
	size_t euicc_otpk_len;
	const uint8_t *eid;	/* 16 bytes BCD */
	const uint8_t *host_id; /* 1..16 bytes */
	size_t host_id_len;
	const uint8_t *metadata; /* the whole BF25 TLV */
	size_t metadata_len;
	const uint8_t *upp; /* the SAIP profile package */
	size_t upp_len;
	const struct rsp_bpp_ppk *ppk; /* NULL: UPP protected with the session keys */
	const uint8_t *dp_proprietary; /* NULL, or a whole B8 TLV placed inside BF24 */
	size_t dp_proprietary_len;
};

/* Build BF36. *out: caller frees. Errors: ESIM_E_ARG for missing inputs,
 * ESIM_E_CRYPTO_BAD_POINT for an otPK.EUICC not on the DPpb curve,
 * ESIM_E_RSP_BAD_TXID, crypto errors. */
esim_err rsp_bpp_build(const struct rsp_bpp_params *p, uint8_t **out, size_t *out_len);

/* InitialiseSecureChannelRequest (BF23), decoded. Spans point into the
 * caller's buffer. */
struct rsp_init_sc {
	der_span tlv;	      /* the whole BF23 TLV */
	der_span signed_part; /* content before 5F37: what smdpSign covers first */
	int64_t remote_op;    /* 82: 1 installBoundProfilePackage */
	rsp_txid txid;
	uint8_t key_type, key_len; /* A6 80 / 81 */
	uint8_t host_id[CRYPTO_BPP_HOST_ID_MAX];
	size_t host_id_len;
	uint8_t otpk_dp[RSP_OTPK_LEN];
	uint8_t sig[RSP_SIG_LEN];
};

/* Parse exactly one BF23 TLV. Values are returned as found (the eUICC
 * decides which remoteOpId / CRT values it accepts: digest 7.6).
 * ESIM_E_RSP_BPP_STRUCTURE when malformed. */
esim_err rsp_init_sc_parse(const uint8_t *p, size_t len, struct rsp_init_sc *out);
/* Verify smdpSign over signed_part || 5F49 41 euicc_otpk with the DPpb
 * public key (borrowed). ESIM_E_RSP_BAD_SIGNATURE when it does not verify. */
esim_err rsp_init_sc_verify(const struct rsp_init_sc *sc, EVP_PKEY *dp_pb_pub,
			    const uint8_t euicc_otpk[RSP_OTPK_LEN]);

/* The outer structure of a BPP. Spans are whole TLVs in the input; a2.p is
 * NULL when there is no ReplaceSessionKeys. */
struct rsp_bpp_view {
	struct rsp_init_sc init_sc;
	der_span a0, a1, a2, a3;
	size_t n_a0, n_a1, n_a2, n_a3; /* segments in each */
};

/* Check BF36 { BF23, A0 {87...}, A1 {88...}, [A2 {87...}], A3 {86...} }:
 * every sequence non-empty and of the right segment tag, nothing else.
 * ESIM_E_RSP_BPP_STRUCTURE otherwise. */
esim_err rsp_bpp_parse(const uint8_t *p, size_t len, struct rsp_bpp_view *out);

/* Cut a BPP into the ES10b commands of digest 3.5, in order: BF36 header +
 * BF23; A0 header + first 87; each further 87; A1 header; each 88; A2
 * header + first 87; each further 87; A3 header; each 86. The spans point
 * into p and, concatenated, give p back exactly. *chunks: caller frees the
 * array with free(). */
esim_err rsp_bpp_split(const uint8_t *p, size_t len, der_span **chunks, size_t *n_chunks);

#endif
