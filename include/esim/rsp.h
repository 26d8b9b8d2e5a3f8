/*
 * rsp: SGP.22 data structures shared by both ends of an interface
 * (digest sections 2.3, 7.5, 8). This header holds the identifiers (ICCID,
 * EID, transactionId, AIDs), the profile metadata (StoreMetadataRequest,
 * BF25), the notification metadata (BF2F) and the signed notifications
 * (ProfileInstallationResult BF37, OtherSignedNotification 30).
 *
 * Related headers of the same layer:
 *   esim/rsp_auth.h  common mutual authentication (SM-DP+ and LPA sides)
 *   esim/rsp_bpp.h   the bound profile package (ES8+)
 *   esim/rsp_saip.h  the SAIP profile package (UPP) checker
 *
 * Ownership: structs with pointer members are filled by the library and
 * released with their _free function, which also accepts a zeroed struct.
 * Encoders hand out a malloc'd buffer the caller frees with free().
 * Decoders never keep pointers into the input unless a field is a der_span,
 * which is documented as borrowing the caller's buffer.
 */
#ifndef ESIM_RSP_H
#define ESIM_RSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/der.h"
#include "esim/err.h"

/* --- identifiers (ids.c; digest 2.3) ------------------------------------- */

#define RSP_ICCID_LEN	     10 /* BCD bytes, both forms */
#define RSP_ICCID_DIGITS_MIN 18
#define RSP_ICCID_DIGITS_MAX 20
#define RSP_ICCID_TEXT_MAX   (RSP_ICCID_DIGITS_MAX + 1) /* with NUL */
#define RSP_EID_LEN	     16
#define RSP_EID_DIGITS	     32
#define RSP_TXID_MAX	     16
#define RSP_AID_MIN	     5
#define RSP_AID_MAX	     16
#define RSP_OID_TEXT_MAX     128 /* dotted OID text with NUL */
#define RSP_SIG_LEN	     64	 /* raw r||s */
#define RSP_SIG_TLV_LEN	     67	 /* 5F37 40 r||s */
#define RSP_CHALLENGE_LEN    16
#define RSP_OTPK_LEN	     65 /* 04 || X || Y */

/* ICCID text (18..20 decimal digits; a 20th character 'F'/'f' is padding
 * and stands for 19 digits) to the 10-byte form of tag 5A / EF.ICCID: BCD
 * with the nibbles of each byte swapped, padded with F.
 * "89000123456789012341" -> 98 00 10 32 54 76 98 10 32 14. */
/* ITU-T E.118: the last digit of an ICCID is a Luhn check digit over the
 * others. rsp_iccid_luhn_digit gives it for digits (decimal, any length;
 * -1 when a character is not a digit); rsp_iccid_luhn_ok says whether the
 * last digit of iccid is right. */
int rsp_iccid_luhn_digit(const char *digits, size_t len);
bool rsp_iccid_luhn_ok(const char *iccid);
esim_err rsp_iccid_to_bcd(const char *digits, uint8_t out[RSP_ICCID_LEN]);
/* The 10-byte swapped form back to digits (18..20, padding dropped) into
 * out (NUL-terminated). ESIM_E_RSP_BAD_ICCID for a length other than 10, a
 * nibble A..E, an F before the end, or fewer than 18 digits. */
esim_err rsp_iccid_from_bcd(const uint8_t *bcd, size_t len, char out[RSP_ICCID_TEXT_MAX]);
/* The same two for plain BCD, digits in order (SAIP ProfileHeader 83):
 * "89000123456789012341" -> 89 00 01 23 45 67 89 01 23 41. */
esim_err rsp_iccid_to_plain_bcd(const char *digits, uint8_t out[RSP_ICCID_LEN]);
esim_err rsp_iccid_from_plain_bcd(const uint8_t *bcd, size_t len, char out[RSP_ICCID_TEXT_MAX]);
/* Swap the nibbles of each of the 10 bytes (plain <-> swapped BCD). */
void rsp_iccid_swap(const uint8_t in[RSP_ICCID_LEN], uint8_t out[RSP_ICCID_LEN]);

/* EID: 32 decimal digits <-> 16 bytes BCD in order (GetEID's 5A 10).
 * ESIM_E_RSP_BAD_EID on a wrong length or a non-decimal digit / nibble.
 * Neither checks the check digits. */
esim_err rsp_eid_to_bcd(const char *digits, uint8_t out[RSP_EID_LEN]);
esim_err rsp_eid_from_bcd(const uint8_t *bcd, size_t len, char out[RSP_EID_DIGITS + 1]);
/* SGP.29: ESIM_OK when eid is 32 digits and, read as a number, is 1
 * modulo 97; ESIM_E_CRYPTO_EID_FORMAT / ESIM_E_CRYPTO_EID_CHECK_DIGITS
 * otherwise. */
esim_err rsp_eid_check(const char *eid);

/* A transactionId: 1..16 bytes (OCTET STRING); hex text in JSON. */
typedef struct rsp_txid {
	uint8_t b[RSP_TXID_MAX];
	size_t len;
} rsp_txid;

/* Set from bytes; ESIM_E_RSP_BAD_TXID unless 1 <= len <= 16. */
esim_err rsp_txid_set(rsp_txid *out, const uint8_t *p, size_t len);
/* From hex text (either case, 2..32 hex digits). ESIM_E_HEX for bad hex,
 * ESIM_E_RSP_BAD_TXID for a wrong length. */
esim_err rsp_txid_from_hex(const char *hex, rsp_txid *out);
/* Uppercase hex, NUL-terminated (as pySim sends it). */
esim_err rsp_txid_to_hex(const rsp_txid *id, char out[2 * RSP_TXID_MAX + 1]);
/* 16 fresh random bytes (an SM-DP+ transactionId). */
esim_err rsp_txid_random(rsp_txid *out);
/* Both valid and the same bytes. */
bool rsp_txid_equal(const rsp_txid *a, const rsp_txid *b);

/* The ISD-R and ECASD AIDs (16 bytes each, digest 1.1). */
extern const uint8_t RSP_AID_ISDR[16];
extern const uint8_t RSP_AID_ECASD[16];
/* The AID of the n-th ISD-P as the virtual eUICC allocates them (the
 * pattern is implementation-defined; this one reproduces what real cards
 * show): A0000005591010FFFFFFFF89 00 HHHH 00 with HHHH = 0x0010 + n, so
 * n = 0 gives ...8900001000 and n = 2 ...8900001200. ESIM_E_ARG for
 * n > 0xFFEF. */
esim_err rsp_isdp_aid(unsigned n, uint8_t out[RSP_AID_MAX]);
/* AID bytes (5..16) as uppercase hex (NUL-terminated), and back.
 * ESIM_E_RSP_BAD_AID for a length outside 5..16. */
esim_err rsp_aid_to_hex(const uint8_t *aid, size_t len, char out[2 * RSP_AID_MAX + 1]);
esim_err rsp_aid_from_hex(const char *hex, uint8_t out[RSP_AID_MAX], size_t *out_len);

/* Wrap a raw signature as the 5F37 TLV that travels in SGP.22 messages
 * (and base64 in ES9+ JSON): 5F 37 40 || sig. */
void rsp_sig_tlv(const uint8_t sig[RSP_SIG_LEN], uint8_t out[RSP_SIG_TLV_LEN]);

/* --- notification events (digest 8.1) ------------------------------------ */

/* NotificationEvent named bits. A PMO bit mask has bit n set for named bit
 * n (RSP_PMO(RSP_EVENT_ENABLE) == 0x2). */
enum rsp_event {
	RSP_EVENT_INSTALL = 0,
	RSP_EVENT_ENABLE = 1,
	RSP_EVENT_DISABLE = 2,
	RSP_EVENT_DELETE = 3,
	RSP_EVENT_RPM_ENABLE = 4, /* v3 */
	RSP_EVENT_RPM_DISABLE = 5,
	RSP_EVENT_RPM_DELETE = 6,
	RSP_EVENT_LOAD_RPM_RESULT = 7,
};
#define RSP_PMO(ev)	  (UINT32_C(1) << (ev))
#define RSP_PMO_INSTALL	  RSP_PMO(RSP_EVENT_INSTALL)
#define RSP_PMO_ENABLE	  RSP_PMO(RSP_EVENT_ENABLE)
#define RSP_PMO_DISABLE	  RSP_PMO(RSP_EVENT_DISABLE)
#define RSP_PMO_DELETE	  RSP_PMO(RSP_EVENT_DELETE)
#define RSP_PMO_ALL_LOCAL (RSP_PMO_ENABLE | RSP_PMO_DISABLE | RSP_PMO_DELETE)
#define RSP_EVENT_MAX	  7

/* --- StoreMetadataRequest BF25 (metadata.c; digest 7.5) ------------------ */

#define RSP_SPN_MAX	32   /* characters */
#define RSP_NAME_MAX	64   /* characters */
#define RSP_ICON_MAX	1024 /* bytes */
#define RSP_ADDRESS_MAX 255  /* bytes of an FQDN */
#define RSP_GID_MAX	16   /* bytes of gid1 / gid2 (sanity cap) */

enum rsp_icon_type { RSP_ICON_JPG = 0, RSP_ICON_PNG = 1 };
/* profilePolicyRules bits (PprIds): PPR1 "disabling not allowed", PPR2
 * "deletion not allowed"; bit 0 is pprUpdateControl. */
#define RSP_PPR_UPDATE_CONTROL (1u << 0)
#define RSP_PPR1	       (1u << 1)
#define RSP_PPR2	       (1u << 2)
/* The StoreMetadataRequest travels to the eUICC MAC-only in '88'
 * segments of at most 1020 bytes each (tag 88, length 82 03F8, 8-byte
 * MAC): at most 1008 bytes of the BF25 TLV per segment, cut at any byte
 * (digest 7.4). */
#define RSP_META_SEGMENT_MAX 1008
enum rsp_profile_class {
	RSP_CLASS_TEST = 0,
	RSP_CLASS_PROVISIONING = 1,
	RSP_CLASS_OPERATIONAL = 2, /* the DEFAULT when 95 is absent */
};

/* One notificationConfigurationInfo entry: 30 { 80 PMO bits, 81 address }. */
struct rsp_notif_config {
	uint32_t pmo;  /* RSP_PMO_* mask, one or more bits */
	char *address; /* owned, NUL-terminated UTF-8 */
};

/* profileOwner B7 (OperatorId). */
struct rsp_operator_id {
	uint8_t mcc_mnc[3]; /* 24.008 coding */
	bool has_gid1, has_gid2;
	uint8_t gid1[RSP_GID_MAX], gid2[RSP_GID_MAX];
	size_t gid1_len, gid2_len;
};

/* StoreMetadataRequest. Strings are owned, NUL-terminated UTF-8; release
 * everything with rsp_metadata_free. */
struct rsp_metadata {
	uint8_t iccid[RSP_ICCID_LEN]; /* swapped BCD, as in tag 5A */
	char *spn;		      /* serviceProviderName 91 (required) */
	char *name;		      /* profileName 92 (required) */
	bool has_icon_type;
	enum rsp_icon_type icon_type; /* 93 */
	uint8_t *icon;		      /* 94, owned, requires 93 */
	size_t icon_len;
	bool has_class;
	enum rsp_profile_class profile_class; /* 95; RSP_CLASS_OPERATIONAL when absent */
	struct rsp_notif_config *notif;	      /* B6, owned array */
	size_t n_notif;
	bool has_owner;
	struct rsp_operator_id owner; /* B7 */
	bool has_ppr;
	uint32_t ppr; /* 99 profilePolicyRules, bit n = named bit n */
	/* Elements of other tags (v2.4+/v3 extensions), whole TLVs in the order
	 * found, owned; re-emitted after the known ones when encoding. */
	uint8_t *extra;
	size_t extra_len;
};

/* Release the owned members and zero *m. */
void rsp_metadata_free(struct rsp_metadata *m);
/* Encode the whole BF25 TLV. Checks: spn and name set and within
 * 32 / 64 characters, icon <= 1024 bytes and only with an icon type, PMO
 * masks non-empty, addresses non-empty and <= 255 bytes, a valid class
 * (ESIM_E_RSP_FIELD_SIZE / ESIM_E_ARG). *out: caller frees. */
esim_err rsp_metadata_encode(const struct rsp_metadata *m, uint8_t **out, size_t *out_len);
/* Decode one BF25 TLV (exactly; nothing may follow). Elements may come in
 * any order; unknown tags are kept in extra. Errors: der errors for bad
 * DER, ESIM_E_RSP_BAD_STRUCTURE for a missing 5A/91/92 or wrong element
 * form, ESIM_E_RSP_FIELD_SIZE past a size limit, ESIM_E_RSP_DUPLICATE_FIELD.
 * On success *out must be released with rsp_metadata_free; on failure it is
 * left zeroed. */
esim_err rsp_metadata_decode(const uint8_t *p, size_t len, struct rsp_metadata *out);
/* The address configured for event (RSP_EVENT_*) in m, borrowed, or NULL
 * when none: where the eUICC sends that notification (digest 8.1). */
const char *rsp_metadata_notif_address(const struct rsp_metadata *m, enum rsp_event ev);
/* The number of '88' segments a BF25 TLV of bf25_len bytes is split into
 * in the bound profile package (at least 1). */
size_t rsp_metadata_segments(size_t bf25_len);
/* The type of an icon from its first bytes: PNG (89 'PNG' 0D 0A 1A 0A) or
 * JPEG (FF D8 FF, SOI and the next marker). ESIM_E_RSP_FIELD_SIZE for an
 * empty icon or one over RSP_ICON_MAX bytes, ESIM_E_ARG for bytes that
 * are neither. */
esim_err rsp_icon_type_of(const uint8_t *icon, size_t len, enum rsp_icon_type *type);

/* --- NotificationMetadata BF2F (metadata.c; digest 8.2) ------------------ */

struct rsp_notif_metadata {
	uint64_t seq;	      /* 80 seqNumber */
	enum rsp_event event; /* 81 PMO: exactly one bit */
	char *address;	      /* 0C notificationAddress, owned UTF-8 */
	bool has_iccid;
	uint8_t iccid[RSP_ICCID_LEN]; /* 5A, swapped BCD */
};

void rsp_notif_metadata_free(struct rsp_notif_metadata *n);
/* Encode the whole BF2F TLV. ESIM_E_ARG for an event > 7 or a missing /
 * oversize address. *out: caller frees. */
esim_err rsp_notif_metadata_encode(const struct rsp_notif_metadata *n, uint8_t **out,
				   size_t *out_len);
/* Append the BF2F TLV to an open builder (for lists such as ListNotification). */
esim_err rsp_notif_metadata_add(der_builder *b, const struct rsp_notif_metadata *n);
/* Decode exactly one BF2F TLV. ESIM_E_RSP_BAD_PMO when the PMO has not
 * exactly one bit set. On success release *out with
 * rsp_notif_metadata_free; on failure it is left zeroed. */
esim_err rsp_notif_metadata_decode(const uint8_t *p, size_t len, struct rsp_notif_metadata *out);

/* --- signed notifications (notification.c; digest 8.2, 8.4) -------------- */

/* ProfileInstallationResultData, decoded. */
struct rsp_pir {
	rsp_txid txid;
	struct rsp_notif_metadata meta;	 /* event must be RSP_EVENT_INSTALL */
	char smdp_oid[RSP_OID_TEXT_MAX]; /* dotted; "" when absent (v2.0) */
	bool success;
	/* successResult */
	uint8_t aid[RSP_AID_MAX]; /* 4F isdpAid */
	size_t aid_len;
	/* errorResult */
	int64_t bpp_command_id; /* 80 (digest 7.6) */
	int64_t error_reason;	/* 81 */
	/* simaResponse (04, success) or the optional 82 of an error: SAIP
	 * EUICCResponse DER, owned (NULL when absent). */
	uint8_t *euicc_response;
	size_t euicc_response_len;
	/* After parsing: the raw signature. */
	uint8_t sig[RSP_SIG_LEN];
};

/* bppCommandId / errorReason values (digest 7.6). */
enum rsp_bpp_command {
	RSP_BPP_CMD_INIT_SC = 0,
	RSP_BPP_CMD_CONFIGURE_ISDP = 1,
	RSP_BPP_CMD_STORE_METADATA = 2,
	RSP_BPP_CMD_STORE_METADATA2 = 3,
	RSP_BPP_CMD_REPLACE_SESSION_KEYS = 4,
	RSP_BPP_CMD_LOAD_PROFILE_ELEMENTS = 5,
};
enum rsp_bpp_error {
	RSP_BPP_ERR_INCORRECT_INPUT = 1,
	RSP_BPP_ERR_INVALID_SIGNATURE = 2,
	RSP_BPP_ERR_INVALID_TXID = 3,
	RSP_BPP_ERR_UNSUPPORTED_CRT = 4,
	RSP_BPP_ERR_UNSUPPORTED_REMOTE_OP = 5,
	RSP_BPP_ERR_UNSUPPORTED_CLASS = 6,
	RSP_BPP_ERR_SCP03T_STRUCTURE = 7,
	RSP_BPP_ERR_SCP03T_SECURITY = 8,
	RSP_BPP_ERR_ICCID_EXISTS = 9,
	RSP_BPP_ERR_NO_MEMORY = 10,
	RSP_BPP_ERR_INTERRUPTION = 11,
	RSP_BPP_ERR_PE_PROCESSING = 12,
	RSP_BPP_ERR_DATA_MISMATCH = 13,
	RSP_BPP_ERR_INVALID_NAA_KEY = 14,
	RSP_BPP_ERR_PPR_NOT_ALLOWED = 15,
	RSP_BPP_ERR_UNKNOWN = 127,
};

void rsp_pir_free(struct rsp_pir *pir);
/* eUICC side: build BF37 { BF27 {...}, 5F37 ECDSA(euicc_key, BF27 TLV) }.
 * pir->meta.event must be RSP_EVENT_INSTALL; on success aid_len must be
 * 5..16. pir->sig is ignored. euicc_key is borrowed. *out: caller frees. */
esim_err rsp_pir_build(const struct rsp_pir *pir, EVP_PKEY *euicc_key, uint8_t **out,
		       size_t *out_len);
/* Parse one BF37 TLV without verifying (the SM-DP+ needs the txId to find
 * the session key). Release *out with rsp_pir_free (zeroed on failure). */
esim_err rsp_pir_parse(const uint8_t *p, size_t len, struct rsp_pir *out);
/* Parse and verify the signature over the BF27 TLV as received with
 * euicc_pub (the key of the session, borrowed); when expected_smdp_oid is
 * not NULL the smdpOid must equal it (ESIM_E_RSP_OID_MISMATCH).
 * ESIM_E_RSP_BAD_SIGNATURE when it does not verify. Release *out with
 * rsp_pir_free (zeroed on failure). */
esim_err rsp_pir_verify(const uint8_t *p, size_t len, EVP_PKEY *euicc_pub,
			const char *expected_smdp_oid, struct rsp_pir *out);

/* eUICC side: OtherSignedNotification 30 { BF2F meta, 5F37 ECDSA(euicc_key,
 * BF2F TLV), 30 CERT.EUICC, 30 CERT.EUM }. The certificates are DER,
 * copied as given. meta->event must not be RSP_EVENT_INSTALL. *out: caller
 * frees. */
esim_err rsp_other_notif_build(const struct rsp_notif_metadata *meta, EVP_PKEY *euicc_key,
			       const uint8_t *euicc_cert, size_t euicc_cert_len,
			       const uint8_t *eum_cert, size_t eum_cert_len, uint8_t **out,
			       size_t *out_len);
/* SM-DP+ side: parse, check the eUICC chain to a CI in trust
 * (crypto_chain_verify, role eUICC, EUM intermediate; opts may be NULL),
 * verify the signature over the BF2F TLV as received, require one PMO bit
 * other than install. *meta_out: release with rsp_notif_metadata_free
 * (zeroed on failure); eid_out gets the EID of CERT.EUICC. */
esim_err rsp_other_notif_verify(const uint8_t *p, size_t len, const crypto_trust *trust,
				const struct crypto_chain_opts *opts,
				struct rsp_notif_metadata *meta_out,
				char eid_out[RSP_EID_DIGITS + 1]);

/* Which kind a PendingNotification is (RetrieveNotificationsList element,
 * or the ES9+ handleNotification body after base64). */
enum rsp_pending_kind {
	RSP_PENDING_PIR = 1,   /* BF37 ProfileInstallationResult */
	RSP_PENDING_OTHER = 2, /* 30 OtherSignedNotification */
};
/* The input must be exactly one well-formed TLV; ESIM_E_RSP_UNKNOWN_NOTIFICATION
 * for another tag (including v3's A1). */
esim_err rsp_pending_kind(const uint8_t *p, size_t len, enum rsp_pending_kind *out);

#endif
