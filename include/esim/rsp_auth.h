/*
 * rsp_auth: common mutual authentication and PrepareDownload (digest 6.2 to
 * 6.4, 6.7), as stateless functions.
 *
 * SM-DP+ side: build serverSigned1 + serverSignature1, verify the eUICC's
 * AuthenticateServerResponse, build smdpSigned2 + smdpSignature2, verify the
 * PrepareDownloadResponse, verify a CancelSessionResponse. The SM-DP+ keeps
 * the session (txId, challenges, the eUICC key); these functions only check
 * what they are given.
 *
 * LPA side: build the ES10b requests AuthenticateServer (BF38),
 * PrepareDownload (BF21) and CancelSession (BF41) from the pieces the SM-DP+
 * sent, copied byte for byte.
 *
 * Spans (der_span) in the result structs point into the caller's input and
 * live as long as it does. Keys returned in a struct are owned by it and
 * released by its _clear function.
 */
#ifndef ESIM_RSP_AUTH_H
#define ESIM_RSP_AUTH_H

#include "esim/rsp.h"

/* CancelSession reasons (digest 6.7). */
enum rsp_cancel_reason {
	RSP_CANCEL_END_USER_REJECTION = 0,
	RSP_CANCEL_POSTPONED = 1,
	RSP_CANCEL_TIMEOUT = 2,
	RSP_CANCEL_PPR_NOT_ALLOWED = 3,
	RSP_CANCEL_METADATA_MISMATCH = 4,
	RSP_CANCEL_LOAD_BPP_ERROR = 5,
	RSP_CANCEL_UNDEFINED = 127,
};

/* hashCc = SHA-256(SHA-256(cc) || txId bytes) (digest 6.4). */
esim_err rsp_hash_cc(const char *cc, size_t cc_len, const rsp_txid *txid, uint8_t out[32]);

/* --- SM-DP+: InitiateAuthentication -------------------------------------- */

/* serverSigned1 = 30 { 80 txId, 81 euiccChallenge, 83 serverAddress,
 * 84 serverChallenge } and serverSignature1 = ECDSA(dp_auth_key, that TLV)
 * as raw r||s (wrap with rsp_sig_tlv for the wire). *signed1: caller
 * frees. dp_auth_key is borrowed. */
esim_err rsp_server_signed1_build(const rsp_txid *txid,
				  const uint8_t euicc_challenge[RSP_CHALLENGE_LEN],
				  const char *server_address,
				  const uint8_t server_challenge[RSP_CHALLENGE_LEN],
				  EVP_PKEY *dp_auth_key, uint8_t **signed1, size_t *signed1_len,
				  uint8_t sig1[RSP_SIG_LEN]);

/* SM-DP+ and SM-DS: from EUICCInfo1's CI lists (PKIDs as spans), the CI
 * the eUICC is to sign with (*ci: one of signing that trust holds, the CI
 * of one of our identities first) and our identity the eUICC can verify
 * (*ident: index into id_ci, the CIs of our CERT.DPauth / CERT.DSauth, in
 * verification; that of *ci preferred). ESIM_E_CERT_UNKNOWN_CI when no
 * signing CI is trusted (SGP.22: x.2 / 3.1), ESIM_E_RSP_CI_MISMATCH when
 * no identity fits (x.4 / 3.7). *ci points into signing
 * (server_auth.c). */
esim_err rsp_server_choose(const der_span *signing, size_t n_signing, const der_span *verification,
			   size_t n_verification, const crypto_trust *trust, const der_span *id_ci,
			   size_t n_ids, der_span *ci, int *ident);

/* --- SM-DP+: AuthenticateClient ------------------------------------------- */

/* A server's cache of verified CERT.EUMs (optional; the SM-DP+ keeps one).
 * find: a verified EUM whose DER equals der, or NULL (borrowed from the
 * cache, which never drops an entry while the server runs). keep: take a
 * freshly verified EUM: *cert becomes NULL when the cache took it (or
 * freed it for an equal entry), stays with the caller when the cache is
 * full; returns the certificate to use from now on. Thread-safe as the
 * server needs. */
struct rsp_eum_cache {
	const crypto_cert *(*find)(void *ctx, const uint8_t *der, size_t len);
	const crypto_cert *(*keep)(void *ctx, crypto_cert **cert);
	void *ctx;
};

/* What rsp_server_check_chain checks against. */
struct rsp_chain_check {
	const crypto_trust *trust; /* required */
	const uint8_t *ci_pkid;	   /* the CI the session agreed on (required) */
	size_t ci_pkid_len;
	bool check_time; /* validity periods against now */
	time_t now;
	const struct rsp_eum_cache *cache; /* NULL: none */
};

/* Why an eUICC chain was refused; rsp_chain_fault_status gives its
 * authenticateClient subject / reason (the same for ES9+ and ES11). */
enum rsp_chain_fault {
	RSP_CHAIN_OK = 0,
	RSP_CHAIN_EUM_INVALID,	       /* 8.1.2 / 6.1 */
	RSP_CHAIN_EUM_EXPIRED,	       /* 8.1.2 / 6.3 */
	RSP_CHAIN_EUM_NOT_YET_VALID,   /* 8.1.2 / 6.1 */
	RSP_CHAIN_EUM_WRONG_CI,	       /* 8.11.1 / 3.9 */
	RSP_CHAIN_EUICC_INVALID,       /* 8.1.3 / 6.1 */
	RSP_CHAIN_EUICC_EXPIRED,       /* 8.1.3 / 6.3 */
	RSP_CHAIN_EUICC_NOT_YET_VALID, /* 8.1.3 / 6.1 */
	RSP_CHAIN_EID_OUT_OF_RANGE,    /* 8.1.3 / 6.1 */
};

struct rsp_auth_server_resp; /* below */

/* SM-DP+ and SM-DS: the eUICC chain of a parsed AuthenticateServerResponse
 * (rsp_auth_server_resp_parse), step by step (server_auth.c). ESIM_OK with
 * *fault RSP_CHAIN_OK, *euicc_out the verified CERT.EUICC (caller frees
 * with crypto_cert_free) and eid its EID; or ESIM_OK with *fault saying
 * what failed (*euicc_out NULL). Other errors: bad arguments. The EID's
 * SGP.29 check digits are the caller's (rsp_eid_check). */
esim_err rsp_server_check_chain(const struct rsp_chain_check *c,
				const struct rsp_auth_server_resp *r, enum rsp_chain_fault *fault,
				crypto_cert **euicc_out, char eid[RSP_EID_DIGITS + 1]);
/* The subject / reason codes and a message (static strings) of a fault;
 * all NULL for RSP_CHAIN_OK. */
void rsp_chain_fault_status(enum rsp_chain_fault f, const char **subject, const char **reason,
			    const char **message);

/* What the SM-DP+ expects of an AuthenticateServerResponse. */
struct rsp_auth_expect {
	const crypto_trust *trust;		    /* required */
	const struct crypto_chain_opts *chain_opts; /* may be NULL */
	const rsp_txid *txid;			    /* required */
	const uint8_t *server_challenge;	    /* required, 16 bytes */
	/* The CI PKID chosen in InitiateAuthentication; NULL: any trusted CI.
	 * ESIM_E_RSP_CI_MISMATCH when the chain ends at another one. */
	const uint8_t *ci_pkid;
	size_t ci_pkid_len;
};

struct rsp_auth_server_resp {
	bool is_error;	    /* A1: the eUICC refused (error_code, txid set) */
	int64_t error_code; /* 1 invalidCertificate ... 127 (digest 4.1) */
	rsp_txid txid;
	/* A0 (spans into the input): */
	der_span euicc_signed1; /* the whole 30 TLV the signature covers */
	uint8_t euicc_signature1[RSP_SIG_LEN];
	der_span euicc_cert, eum_cert; /* whole 30 TLVs */
	der_span server_address;       /* 83 content (UTF-8, not NUL-terminated) */
	uint8_t server_challenge[RSP_CHALLENGE_LEN];
	der_span euicc_info2; /* whole BF22 TLV */
	der_span ctx_params1; /* whole A0 TLV */
	bool has_matching_id;
	der_span matching_id; /* 80 content inside ctxParams1 */
	der_span device_info; /* whole A1 TLV inside ctxParams1 */
	/* After verification: */
	char eid[RSP_EID_DIGITS + 1];
	EVP_PKEY *euicc_pub; /* owned; freed by rsp_auth_server_resp_clear */
};

void rsp_auth_server_resp_clear(struct rsp_auth_server_resp *r);
/* Parse BF38 without verifying anything. For A1 sets is_error and returns
 * ESIM_E_RSP_EUICC_ERROR. */
esim_err rsp_auth_server_resp_parse(const uint8_t *p, size_t len, struct rsp_auth_server_resp *out);
/* Parse and verify as the SM-DP+ must (digest 6.3 steps 3..8): the eUICC
 * chain to a trusted CI with the EUM as intermediate (cert errors as
 * returned by crypto_chain_verify), the chosen CI, euiccSignature1 over
 * the euiccSigned1 TLV as received (ESIM_E_RSP_BAD_SIGNATURE), txId
 * (ESIM_E_RSP_TXID_MISMATCH) and serverChallenge
 * (ESIM_E_RSP_CHALLENGE_MISMATCH). Sets eid and euicc_pub. Always call
 * rsp_auth_server_resp_clear afterwards. */
esim_err rsp_auth_server_resp_verify(const uint8_t *p, size_t len,
				     const struct rsp_auth_expect *expect,
				     struct rsp_auth_server_resp *out);

/* smdpSigned2 = 30 { 80 txId, 01 ccRequiredFlag, [5F49 bound otPK] } and
 * smdpSignature2 = ECDSA(dp_pb_key, smdpSigned2 TLV || 5F37 40 ||
 * euiccSignature1). bound_otpk (65 bytes) or NULL. *signed2: caller frees. */
esim_err rsp_smdp_signed2_build(const rsp_txid *txid, bool cc_required, const uint8_t *bound_otpk,
				EVP_PKEY *dp_pb_key, const uint8_t euicc_signature1[RSP_SIG_LEN],
				uint8_t **signed2, size_t *signed2_len, uint8_t sig2[RSP_SIG_LEN]);

/* --- SM-DP+: GetBoundProfilePackage --------------------------------------- */

struct rsp_prepare_download_resp {
	bool is_error;
	int64_t error_code;
	rsp_txid txid;
	der_span euicc_signed2; /* whole 30 TLV */
	uint8_t otpk[RSP_OTPK_LEN];
	bool has_hash_cc;
	uint8_t hash_cc[32];
	uint8_t euicc_signature2[RSP_SIG_LEN];
};

/* Parse BF21; ESIM_E_RSP_EUICC_ERROR for A1 (is_error, error_code, txid). */
esim_err rsp_prepare_download_resp_parse(const uint8_t *p, size_t len,
					 struct rsp_prepare_download_resp *out);
/* Parse and verify (digest 6.5 steps 3..5): euiccSignature2 over
 * euiccSigned2 TLV || 5F37 40 || smdp_signature2 with euicc_pub (borrowed),
 * txId, and when expected_hash_cc is not NULL (a confirmation code is
 * required) hashCc present (ESIM_E_RSP_CC_MISSING) and equal
 * (ESIM_E_RSP_CC_MISMATCH). */
esim_err rsp_prepare_download_resp_verify(const uint8_t *p, size_t len, EVP_PKEY *euicc_pub,
					  const rsp_txid *expected_txid,
					  const uint8_t smdp_signature2[RSP_SIG_LEN],
					  const uint8_t *expected_hash_cc,
					  struct rsp_prepare_download_resp *out);

/* --- CancelSession --------------------------------------------------------- */

/* LPA: CancelSessionRequest BF41 { 80 txId, 81 reason }. *out: caller frees. */
esim_err rsp_cancel_session_req_build(const rsp_txid *txid, enum rsp_cancel_reason reason,
				      uint8_t **out, size_t *out_len);

struct rsp_cancel_session_resp {
	bool is_error;
	int64_t error_code;  /* 81: 5 invalidTransactionId, 127 */
	der_span signed_tlv; /* whole euiccCancelSessionSigned 30 TLV */
	rsp_txid txid;
	char smdp_oid[RSP_OID_TEXT_MAX];
	int64_t reason;
	uint8_t sig[RSP_SIG_LEN];
};

/* Parse BF41 { A0 { 30 {80 txId, 81 smdpOid, 82 reason}, 5F37 } | 81 err };
 * ESIM_E_RSP_EUICC_ERROR for the error form. */
esim_err rsp_cancel_session_resp_parse(const uint8_t *p, size_t len,
				       struct rsp_cancel_session_resp *out);
/* Parse and verify the signature over the 30 TLV with euicc_pub, the txId
 * and, when not NULL, the SM-DP+ OID (digest 6.7). */
esim_err rsp_cancel_session_resp_verify(const uint8_t *p, size_t len, EVP_PKEY *euicc_pub,
					const rsp_txid *expected_txid,
					const char *expected_smdp_oid,
					struct rsp_cancel_session_resp *out);

/* --- LPA: ES10b requests ----------------------------------------------------- */

struct rsp_device_info {
	uint8_t tac[4];
	/* DeviceCapabilities content (the children of A1, may be empty). */
	const uint8_t *capabilities;
	size_t capabilities_len;
	bool has_imei;
	uint8_t imei[8];
};

/* AuthenticateServerRequest BF38 { serverSigned1, serverSignature1,
 * euiccCiPKIdToBeUsed, serverCertificate, A0 ctxParams1 { [80 matchingId],
 * A1 deviceInfo } }. The first four are whole TLVs as the SM-DP+ sent
 * them (30, 5F37, 04, 30), each checked to be one element of that tag
 * (ESIM_E_RSP_BAD_STRUCTURE). matching_id NULL leaves 80 out. *out:
 * caller frees. */
esim_err rsp_auth_server_req_build(const uint8_t *server_signed1, size_t server_signed1_len,
				   const uint8_t *server_sig1, size_t server_sig1_len,
				   const uint8_t *ci_pkid, size_t ci_pkid_len,
				   const uint8_t *server_cert, size_t server_cert_len,
				   const char *matching_id, const struct rsp_device_info *dev,
				   uint8_t **out, size_t *out_len);

/* PrepareDownloadRequest BF21 { smdpSigned2 30, smdpSignature2 5F37,
 * [04 hashCc], smdpCertificate 30 }: TLVs as received; hash_cc NULL or 32
 * bytes. *out: caller frees. */
esim_err rsp_prepare_download_req_build(const uint8_t *smdp_signed2, size_t smdp_signed2_len,
					const uint8_t *smdp_sig2, size_t smdp_sig2_len,
					const uint8_t *hash_cc, const uint8_t *smdp_cert,
					size_t smdp_cert_len, uint8_t **out, size_t *out_len);

#endif
