/*
 * rsp_es10: the LPA's side of the ES10a/b/c functions it calls on the
 * ISD-R for chip and profile management (digest sections 4.1 to 4.4 and
 * 8.3): request builders and response parsers, plus the names of every
 * function's result codes so that a user sees what the card said.
 *
 * The download-specific requests (AuthenticateServer, PrepareDownload,
 * CancelSession) and the BPP split are in rsp_auth.h / rsp_bpp.h.
 *
 * Ownership: builders hand out a malloc'd request the caller frees with
 * free(). Parsers fill structs that own their strings and arrays and are
 * released with the matching _free function (which accepts a zeroed
 * struct). Spans (der_span) borrow the caller's response buffer.
 */
#ifndef ESIM_RSP_ES10_H
#define ESIM_RSP_ES10_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esim/der.h"
#include "esim/err.h"
#include "esim/rsp.h"

/* ES10 request / response tags (digest 4.1). */
enum rsp_es10_tag {
	RSP_ES10_GET_EUICC_INFO1 = 0xBF20,
	RSP_ES10_PREPARE_DOWNLOAD = 0xBF21,
	RSP_ES10_GET_EUICC_INFO2 = 0xBF22,
	RSP_ES10_LIST_NOTIFICATION = 0xBF28,
	RSP_ES10_SET_NICKNAME = 0xBF29,
	RSP_ES10_RETRIEVE_NOTIFICATIONS = 0xBF2B,
	RSP_ES10_GET_PROFILES_INFO = 0xBF2D,
	RSP_ES10_GET_EUICC_CHALLENGE = 0xBF2E,
	RSP_ES10_REMOVE_NOTIFICATION = 0xBF30,
	RSP_ES10_ENABLE_PROFILE = 0xBF31,
	RSP_ES10_DISABLE_PROFILE = 0xBF32,
	RSP_ES10_DELETE_PROFILE = 0xBF33,
	RSP_ES10_MEMORY_RESET = 0xBF34,
	RSP_ES10_LOAD_BPP = 0xBF36,
	RSP_ES10_AUTHENTICATE_SERVER = 0xBF38,
	RSP_ES10_GET_ADDRESSES = 0xBF3C,
	RSP_ES10_GET_EID = 0xBF3E,
	RSP_ES10_SET_DEFAULT_DP = 0xBF3F,
	RSP_ES10_CANCEL_SESSION = 0xBF41,
};

/* The function's name ("EnableProfile") for a request tag; "ES10 function"
 * for an unknown one. Static string. */
const char *rsp_es10_function_name(uint32_t tag);

/* The SGP.22 name of result code `code` of the function with request tag
 * `tag` ("iccidOrAidNotFound"), or NULL when the code is not defined for
 * it, and a one-line explanation for people (*meaning, may be NULL).
 * Covers the result codes of every function in digest 4.1 and the
 * AuthenticateServer / PrepareDownload / CancelSession error codes. */
const char *rsp_es10_result_name(uint32_t tag, int64_t code, const char **meaning);

/* A request without content: TAG 00 (BF2E 00, BF20 00, BF22 00, BF3C 00,
 * BF28 00, BF2D 00). */
esim_err rsp_es10_empty_req(uint32_t tag, uint8_t **out, size_t *out_len);

/* Results of the simple "TAG { 80 result }" responses (SetNickname,
 * Enable/Disable/DeleteProfile, eUICCMemoryReset, SetDefaultDpAddress,
 * RemoveNotificationFromList). The response must be exactly one TLV of tag
 * whose first element is 80 INTEGER. */
esim_err rsp_es10_result_parse(const uint8_t *p, size_t len, uint32_t tag, int64_t *result);

/* --- identifiers of a profile --------------------------------------------- */

/* A profile named by ICCID (the 5A form) or by ISD-P AID (4F). */
struct rsp_profile_ref {
	bool by_aid;
	uint8_t iccid[RSP_ICCID_LEN]; /* swapped BCD */
	uint8_t aid[RSP_AID_MAX];
	size_t aid_len;
};

/* Parse user text: 18..20 decimal digits (a trailing F allowed) is an
 * ICCID, 10..32 hex digits otherwise an AID. ESIM_E_RSP_BAD_ICCID /
 * ESIM_E_RSP_BAD_AID / ESIM_E_ARG. */
esim_err rsp_profile_ref_parse(const char *text, struct rsp_profile_ref *out);

/* --- ES10c: profiles --------------------------------------------------------- */

/* GetProfilesInfo: all profiles (ref NULL) or one, with the default tag
 * set (no tagList) so that real cards answer with what they always give. */
esim_err rsp_get_profiles_req(const struct rsp_profile_ref *ref, uint8_t **out, size_t *out_len);

enum rsp_profile_state { RSP_PROFILE_DISABLED = 0, RSP_PROFILE_ENABLED = 1 };

/* One ProfileInfo (E3). Strings owned, NUL-terminated UTF-8 or NULL. */
struct rsp_profile_info {
	bool has_iccid;
	char iccid[RSP_ICCID_TEXT_MAX];
	uint8_t aid[RSP_AID_MAX];
	size_t aid_len; /* 0 when absent */
	bool has_state;
	enum rsp_profile_state state;
	char *nickname;
	char *spn;
	char *name;
	bool has_class;
	enum rsp_profile_class profile_class; /* RSP_CLASS_OPERATIONAL when absent */
	bool has_icon_type;
	enum rsp_icon_type icon_type;
	size_t icon_len;		/* the icon bytes are not kept */
	struct rsp_notif_config *notif; /* B6, owned array */
	size_t n_notif;
	bool has_owner;
	struct rsp_operator_id owner;
	bool has_ppr;
	uint32_t ppr;
};

struct rsp_profile_list {
	struct rsp_profile_info *items;
	size_t n;
};

void rsp_profile_list_free(struct rsp_profile_list *l);
/* Parse BF2D { A0 { E3 ... } } or BF2D { 81 error }. For the error form
 * *error_code is set and ESIM_E_RSP_EUICC_ERROR returned. Unknown elements
 * inside E3 are skipped (v3 adds many). */
esim_err rsp_get_profiles_parse(const uint8_t *p, size_t len, struct rsp_profile_list *out,
				int64_t *error_code);

/* EnableProfile BF31 { A0 {5A|4F}, 81 refreshFlag } and
 * DisableProfile BF32 (same shape). */
esim_err rsp_enable_profile_req(const struct rsp_profile_ref *ref, bool refresh, uint8_t **out,
				size_t *out_len);
esim_err rsp_disable_profile_req(const struct rsp_profile_ref *ref, bool refresh, uint8_t **out,
				 size_t *out_len);
/* DeleteProfile BF33 { 5A | 4F } (no A0 wrapper). */
esim_err rsp_delete_profile_req(const struct rsp_profile_ref *ref, uint8_t **out, size_t *out_len);
/* SetNickname BF29 { 5A iccid, 90 nickname }: nickname 0..64 characters of
 * UTF-8 (ESIM_E_RSP_FIELD_SIZE / ESIM_E_DER_BAD_UTF8). */
esim_err rsp_set_nickname_req(const uint8_t iccid[RSP_ICCID_LEN], const char *nickname,
			      uint8_t **out, size_t *out_len);

/* eUICCMemoryReset BF34 { 82 resetOptions }. */
#define RSP_RESET_OPERATIONAL  0x1u /* bit 0 deleteOperationalProfiles */
#define RSP_RESET_TEST	       0x2u /* bit 1 deleteFieldLoadedTestProfiles */
#define RSP_RESET_DEFAULT_SMDP 0x4u /* bit 2 resetDefaultSmdpAddress */
esim_err rsp_memory_reset_req(uint32_t options, uint8_t **out, size_t *out_len);

/* GetEID BF3E { 5C 01 5A } and its response BF3E { 5A 10 EID }. */
esim_err rsp_get_eid_req(uint8_t **out, size_t *out_len);
esim_err rsp_get_eid_parse(const uint8_t *p, size_t len, char eid[RSP_EID_DIGITS + 1]);

/* --- ES10a: addresses ---------------------------------------------------------- */

struct rsp_addresses {
	char *default_dp; /* owned or NULL */
	char *root_ds;	  /* owned or NULL */
};
void rsp_addresses_free(struct rsp_addresses *a);
esim_err rsp_get_addresses_parse(const uint8_t *p, size_t len, struct rsp_addresses *out);
/* SetDefaultDpAddress BF3F { 80 address } ("" clears it). */
esim_err rsp_set_default_dp_req(const char *address, uint8_t **out, size_t *out_len);

/* --- ES10b: eUICC information ----------------------------------------------------- */

#define RSP_PKID_LEN  20
#define RSP_MAX_PKIDS 16

struct rsp_pkid_list {
	uint8_t id[RSP_MAX_PKIDS][RSP_PKID_LEN];
	size_t len[RSP_MAX_PKIDS]; /* bytes of each (normally 20) */
	size_t n;
};

/* EUICCInfo1 BF20 { 82 svn, A9 {04...}, AA {04...} }. */
struct rsp_euicc_info1 {
	uint8_t svn[3];
	struct rsp_pkid_list verification, signing;
};
esim_err rsp_euicc_info1_parse(const uint8_t *p, size_t len, struct rsp_euicc_info1 *out);

/* EUICCInfo2 BF22 (digest 4.3); fields absent on the card have has_* false. */
struct rsp_euicc_info2 {
	uint8_t profile_version[3]; /* 81 */
	uint8_t svn[3];		    /* 82 */
	uint8_t firmware[3];	    /* 83 */
	bool has_ext_resource;	    /* 84 */
	bool has_installed_apps, has_free_nvm, has_free_ram;
	uint64_t installed_apps, free_nvm, free_ram;
	uint64_t uicc_capability; /* 85 named bits */
	bool has_ts102241;
	uint8_t ts102241[3]; /* 86 */
	bool has_gp;
	uint8_t gp[3];				    /* 87 */
	uint64_t rsp_capability;		    /* 88 named bits */
	struct rsp_pkid_list verification, signing; /* A9, AA */
	bool has_category;
	int64_t category; /* 8B */
	bool has_forbidden_ppr;
	uint64_t forbidden_ppr; /* 99 */
	bool has_pp_version;
	uint8_t pp_version[3]; /* 04 */
	char sas_number[65];   /* 0C, "" when absent */
};
esim_err rsp_euicc_info2_parse(const uint8_t *p, size_t len, struct rsp_euicc_info2 *out);

/* Names of the bits of uiccCapability (85) and rspCapability (88), and of
 * euiccCategory values; NULL for undefined ones. Static strings. */
const char *rsp_uicc_capability_name(unsigned bit);
const char *rsp_rsp_capability_name(unsigned bit);
const char *rsp_euicc_category_name(int64_t v);

/* GetEUICCChallenge response BF2E { 80 challenge(16) }. */
esim_err rsp_challenge_parse(const uint8_t *p, size_t len, uint8_t out[RSP_CHALLENGE_LEN]);

/* --- ES10b: notifications ------------------------------------------------------------ */

/* ListNotification BF28 [ 81 PMO filter ]; pmo_filter 0 lists all. */
esim_err rsp_list_notification_req(uint32_t pmo_filter, uint8_t **out, size_t *out_len);

struct rsp_notif_list {
	struct rsp_notif_metadata *items;
	size_t n;
};
void rsp_notif_list_free(struct rsp_notif_list *l);
/* Parse BF28 { A0 { BF2F ... } } or { 81 error } (ESIM_E_RSP_EUICC_ERROR,
 * *error_code set). */
esim_err rsp_list_notification_parse(const uint8_t *p, size_t len, struct rsp_notif_list *out,
				     int64_t *error_code);

/* RetrieveNotificationsList BF2B { A0 { 80 seqNumber } }. */
esim_err rsp_retrieve_notification_req(uint64_t seq, uint8_t **out, size_t *out_len);
/* Parse BF2B { A0 { PendingNotification... } } into spans of the whole BF37
 * / 30 TLVs (borrowing p); *items: caller frees the array with free().
 * BF2B { 81 error } gives ESIM_E_RSP_EUICC_ERROR with *error_code (1
 * noResultAvailable, 127). */
esim_err rsp_retrieve_notification_parse(const uint8_t *p, size_t len, der_span **items,
					 size_t *n_items, int64_t *error_code);

/* RemoveNotificationFromList BF30 { 80 seqNumber }. */
esim_err rsp_remove_notification_req(uint64_t seq, uint8_t **out, size_t *out_len);

/* The notification metadata (BF2F) of a pending notification, either kind
 * (BF37 PIR or 30 OtherSignedNotification), without verifying anything.
 * Release *out with rsp_notif_metadata_free. */
esim_err rsp_pending_metadata(const uint8_t *p, size_t len, struct rsp_notif_metadata *out);

/* Name of a NotificationEvent ("install", "enable", "disable", "delete"...). */
const char *rsp_event_name(enum rsp_event ev);

#endif
