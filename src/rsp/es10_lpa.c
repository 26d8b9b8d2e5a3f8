/*
 * The LPA's ES10a/b/c requests and response parsers for chip and profile
 * management (SGP.22 5.7.3 to 5.7.21; digest 4.1 to 4.4, 8.3), and the
 * names of each function's result codes.
 *
 * Parsers are liberal where real cards differ (unknown elements inside
 * ProfileInfo and EUICCInfo2 are skipped: v2.4+ and v3 add fields) and
 * strict about the structure they rely on (one TLV of the expected tag,
 * results as INTEGER). Everything goes through the der cursor; nothing
 * here does pointer arithmetic on the card's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp_es10.h"
#include "rsp/rsp_int.h"

/* --- names ----------------------------------------------------------------- */

struct code_name {
	uint32_t tag;
	int64_t code;
	const char *name;
	const char *meaning;
};

static const struct code_name result_names[] = {
    {RSP_ES10_ENABLE_PROFILE, 0, "ok", "the profile was enabled"},
    {RSP_ES10_ENABLE_PROFILE, 1, "iccidOrAidNotFound", "no profile with that ICCID or AID"},
    {RSP_ES10_ENABLE_PROFILE, 2, "profileNotInDisabledState", "the profile is already enabled"},
    {RSP_ES10_ENABLE_PROFILE, 3, "disallowedByPolicy",
     "the enabled profile's policy rules (PPR1) forbid disabling it"},
    {RSP_ES10_ENABLE_PROFILE, 4, "wrongProfileReenabling",
     "the profile cannot be re-enabled this way"},
    {RSP_ES10_ENABLE_PROFILE, 5, "catBusy", "the card toolkit is busy; retry later"},
    {RSP_ES10_ENABLE_PROFILE, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_DISABLE_PROFILE, 0, "ok", "the profile was disabled"},
    {RSP_ES10_DISABLE_PROFILE, 1, "iccidOrAidNotFound", "no profile with that ICCID or AID"},
    {RSP_ES10_DISABLE_PROFILE, 2, "profileNotInEnabledState", "the profile is not enabled"},
    {RSP_ES10_DISABLE_PROFILE, 3, "disallowedByPolicy",
     "the profile's policy rules (PPR1) forbid disabling it"},
    {RSP_ES10_DISABLE_PROFILE, 5, "catBusy", "the card toolkit is busy; retry later"},
    {RSP_ES10_DISABLE_PROFILE, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_DELETE_PROFILE, 0, "ok", "the profile was deleted"},
    {RSP_ES10_DELETE_PROFILE, 1, "iccidOrAidNotFound", "no profile with that ICCID or AID"},
    {RSP_ES10_DELETE_PROFILE, 2, "profileNotInDisabledState",
     "the profile is enabled; disable it first"},
    {RSP_ES10_DELETE_PROFILE, 3, "disallowedByPolicy",
     "the profile's policy rules (PPR2) forbid deleting it"},
    {RSP_ES10_DELETE_PROFILE, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_SET_NICKNAME, 0, "ok", "the nickname was set"},
    {RSP_ES10_SET_NICKNAME, 1, "iccidNotFound", "no profile with that ICCID"},
    {RSP_ES10_SET_NICKNAME, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_MEMORY_RESET, 0, "ok", "the eUICC memory was reset"},
    {RSP_ES10_MEMORY_RESET, 1, "nothingToDelete", "there was nothing to delete"},
    {RSP_ES10_MEMORY_RESET, 5, "catBusy", "the card toolkit is busy; retry later"},
    {RSP_ES10_MEMORY_RESET, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_SET_DEFAULT_DP, 0, "ok", "the default SM-DP+ address was set"},
    {RSP_ES10_SET_DEFAULT_DP, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_REMOVE_NOTIFICATION, 0, "ok", "the notification was removed"},
    {RSP_ES10_REMOVE_NOTIFICATION, 1, "nothingToDelete",
     "no pending notification has that sequence number"},
    {RSP_ES10_REMOVE_NOTIFICATION, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_LIST_NOTIFICATION, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_RETRIEVE_NOTIFICATIONS, 1, "noResultAvailable", "no pending notification matches"},
    {RSP_ES10_RETRIEVE_NOTIFICATIONS, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_GET_PROFILES_INFO, 1, "incorrectInputValues", "the card refused the search criteria"},
    {RSP_ES10_GET_PROFILES_INFO, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_AUTHENTICATE_SERVER, 1, "invalidCertificate",
     "the SM-DP+ authentication certificate is not valid for this eUICC"},
    {RSP_ES10_AUTHENTICATE_SERVER, 2, "invalidSignature",
     "the SM-DP+ signature (serverSignature1) does not verify"},
    {RSP_ES10_AUTHENTICATE_SERVER, 3, "unsupportedCurve",
     "the SM-DP+ key is on a curve the eUICC does not support"},
    {RSP_ES10_AUTHENTICATE_SERVER, 4, "noSessionContext", "the eUICC has no session open"},
    {RSP_ES10_AUTHENTICATE_SERVER, 5, "invalidOid",
     "the SM-DP+ certificate carries the wrong role"},
    {RSP_ES10_AUTHENTICATE_SERVER, 6, "euiccChallengeMismatch",
     "the SM-DP+ signed another eUICC challenge"},
    {RSP_ES10_AUTHENTICATE_SERVER, 7, "ciPKUnknown",
     "the SM-DP+ certificate is from a CI this eUICC does not trust"},
    {RSP_ES10_AUTHENTICATE_SERVER, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_PREPARE_DOWNLOAD, 1, "invalidCertificate",
     "the SM-DP+ binding certificate is not valid for this eUICC"},
    {RSP_ES10_PREPARE_DOWNLOAD, 2, "invalidSignature",
     "the SM-DP+ signature (smdpSignature2) does not verify"},
    {RSP_ES10_PREPARE_DOWNLOAD, 3, "unsupportedCurve",
     "the SM-DP+ key is on a curve the eUICC does not support"},
    {RSP_ES10_PREPARE_DOWNLOAD, 4, "noSessionContext", "the eUICC has no session open"},
    {RSP_ES10_PREPARE_DOWNLOAD, 5, "invalidTransactionId", "the SM-DP+ used another transactionId"},
    {RSP_ES10_PREPARE_DOWNLOAD, 127, "undefinedError", "the card failed for another reason"},
    {RSP_ES10_CANCEL_SESSION, 5, "invalidTransactionId",
     "the eUICC has no session with that transactionId"},
    {RSP_ES10_CANCEL_SESSION, 127, "undefinedError", "the card failed for another reason"},
};

const char *rsp_es10_result_name(uint32_t tag, int64_t code, const char **meaning)
{
	for (size_t i = 0; i < sizeof result_names / sizeof result_names[0]; i++)
		if (result_names[i].tag == tag && result_names[i].code == code) {
			if (meaning != NULL)
				*meaning = result_names[i].meaning;
			return result_names[i].name;
		}
	if (meaning != NULL)
		*meaning = NULL;
	return NULL;
}

const char *rsp_es10_function_name(uint32_t tag)
{
	switch (tag) {
	case RSP_ES10_GET_EUICC_INFO1:
		return "GetEUICCInfo1";
	case RSP_ES10_PREPARE_DOWNLOAD:
		return "PrepareDownload";
	case RSP_ES10_GET_EUICC_INFO2:
		return "GetEUICCInfo2";
	case RSP_ES10_LIST_NOTIFICATION:
		return "ListNotification";
	case RSP_ES10_SET_NICKNAME:
		return "SetNickname";
	case RSP_ES10_RETRIEVE_NOTIFICATIONS:
		return "RetrieveNotificationsList";
	case RSP_ES10_GET_PROFILES_INFO:
		return "GetProfilesInfo";
	case RSP_ES10_GET_EUICC_CHALLENGE:
		return "GetEUICCChallenge";
	case RSP_ES10_REMOVE_NOTIFICATION:
		return "RemoveNotificationFromList";
	case RSP_ES10_ENABLE_PROFILE:
		return "EnableProfile";
	case RSP_ES10_DISABLE_PROFILE:
		return "DisableProfile";
	case RSP_ES10_DELETE_PROFILE:
		return "DeleteProfile";
	case RSP_ES10_MEMORY_RESET:
		return "eUICCMemoryReset";
	case RSP_ES10_LOAD_BPP:
		return "LoadBoundProfilePackage";
	case RSP_ES10_AUTHENTICATE_SERVER:
		return "AuthenticateServer";
	case RSP_ES10_GET_ADDRESSES:
		return "GetEuiccConfiguredAddresses";
	case RSP_ES10_GET_EID:
		return "GetEID";
	case RSP_ES10_SET_DEFAULT_DP:
		return "SetDefaultDpAddress";
	case RSP_ES10_CANCEL_SESSION:
		return "CancelSession";
	default:
		return "ES10 function";
	}
}

const char *rsp_event_name(enum rsp_event ev)
{
	static const char *const names[] = {"install",	  "enable",	"disable",
					    "delete",	  "rpm-enable", "rpm-disable",
					    "rpm-delete", "rpm-result"};
	if ((unsigned)ev > RSP_EVENT_MAX)
		return "unknown";
	return names[ev];
}

const char *rsp_uicc_capability_name(unsigned bit)
{
	static const char *const names[] = {
	    "contactlessSupport",
	    "usimSupport",
	    "isimSupport",
	    "csimSupport",
	    "akaMilenage",
	    "akaCave",
	    "akaTuak128",
	    "akaTuak256",
	    "rfu1",
	    "rfu2",
	    "gbaAuthenUsim",
	    "gbaAuthenISim",
	    "mbmsAuthenUsim",
	    "eapClient",
	    "javacard",
	    "multos",
	    "multipleUsimSupport",
	    "multipleIsimSupport",
	    "multipleCsimSupport",
	    "berTlvFileSupport",
	    "dfLinkSupport",
	    "catTp",
	    "getIdentity",
	    "profile-a-x25519",
	    "profile-b-p256",
	    "suciCalculatorApi",
	};
	return bit < sizeof names / sizeof names[0] ? names[bit] : NULL;
}

const char *rsp_rsp_capability_name(unsigned bit)
{
	static const char *const names[] = {
	    "additionalProfile",
	    "crlSupport",
	    "rpmSupport",
	    "testProfileSupport",
	    "deviceInfoExtensibilitySupport",
	    "serviceSpecificDataSupport",
	};
	return bit < sizeof names / sizeof names[0] ? names[bit] : NULL;
}

const char *rsp_euicc_category_name(int64_t v)
{
	switch (v) {
	case 0:
		return "other";
	case 1:
		return "basicEuicc";
	case 2:
		return "mediumEuicc";
	case 3:
		return "contactlessEuicc";
	default:
		return NULL;
	}
}

/* --- small helpers ---------------------------------------------------------- */

esim_err rsp_es10_empty_req(uint32_t tag, uint8_t **out, size_t *out_len)
{
	der_builder b;
	der_builder_init(&b);
	der_add_tlv(&b, tag, NULL, 0);
	return der_builder_finish(&b, out, out_len);
}

/* The content of the one TLV of tag that p..p+len must be. */
static esim_err outer(const uint8_t *p, size_t len, uint32_t tag, der_cursor *content)
{
	der_element e;
	esim_err err = der_parse_single(p, len, &e);
	if (err != ESIM_OK)
		return err;
	if (e.tag != tag)
		return ESIM_E_RSP_BAD_STRUCTURE;
	*content = der_cursor_of(e.value);
	return ESIM_OK;
}

esim_err rsp_es10_result_parse(const uint8_t *p, size_t len, uint32_t tag, int64_t *result)
{
	der_cursor c;
	esim_err err = outer(p, len, tag, &c);
	if (err == ESIM_OK)
		err = rsp__structure(der_get_int64(&c, 0x80, result));
	return err;
}

static void add_ref(der_builder *b, const struct rsp_profile_ref *ref)
{
	if (ref->by_aid)
		der_add_octet_string(b, 0x4F, ref->aid, ref->aid_len);
	else
		der_add_octet_string(b, 0x5A, ref->iccid, RSP_ICCID_LEN);
}

static bool ref_ok(const struct rsp_profile_ref *ref)
{
	return ref != NULL &&
	       (!ref->by_aid || (ref->aid_len >= RSP_AID_MIN && ref->aid_len <= RSP_AID_MAX));
}

esim_err rsp_profile_ref_parse(const char *text, struct rsp_profile_ref *out)
{
	if (text == NULL || out == NULL)
		return ESIM_E_ARG;
	memset(out, 0, sizeof *out);
	size_t n = strlen(text), digits = 0;
	while (digits < n && text[digits] >= '0' && text[digits] <= '9')
		digits++;
	bool iccid_like = (digits == n && n >= RSP_ICCID_DIGITS_MIN && n <= RSP_ICCID_DIGITS_MAX) ||
			  (digits == n - 1 && n == RSP_ICCID_DIGITS_MAX &&
			   (text[n - 1] == 'F' || text[n - 1] == 'f'));
	if (iccid_like)
		return rsp_iccid_to_bcd(text, out->iccid);
	if (digits == n && n > 0)
		return ESIM_E_RSP_BAD_ICCID; /* all digits but not 18..20 */
	esim_err err = rsp_aid_from_hex(text, out->aid, &out->aid_len);
	if (err == ESIM_OK)
		out->by_aid = true;
	return err;
}

/* --- profiles ------------------------------------------------------------------ */

esim_err rsp_get_profiles_req(const struct rsp_profile_ref *ref, uint8_t **out, size_t *out_len)
{
	if (ref != NULL && !ref_ok(ref))
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_GET_PROFILES_INFO);
	if (ref != NULL) {
		der_builder_open(&b, 0xA0);
		add_ref(&b, ref);
		der_builder_close(&b);
	}
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

static void profile_info_free(struct rsp_profile_info *pi)
{
	free(pi->nickname);
	free(pi->spn);
	free(pi->name);
	for (size_t i = 0; i < pi->n_notif; i++)
		free(pi->notif[i].address);
	free(pi->notif);
	memset(pi, 0, sizeof *pi);
}

void rsp_profile_list_free(struct rsp_profile_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		profile_info_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

static esim_err utf8_dup(der_span v, size_t max_bytes, char **out)
{
	if (!der_utf8_valid(v.p, v.len))
		return ESIM_E_DER_BAD_UTF8;
	if (v.len > max_bytes)
		return ESIM_E_RSP_FIELD_SIZE;
	free(*out);
	*out = NULL;
	return rsp__strdup(v, out);
}

static esim_err value_mask(der_span v, uint64_t *mask)
{
	der_bits bits;
	esim_err err = der_value_bit_string(v, &bits);
	if (err == ESIM_OK)
		err = der_bits_to_mask(&bits, mask);
	return err;
}

static esim_err notif_configs(der_span v, struct rsp_profile_info *pi)
{
	der_cursor c = der_cursor_of(v);
	der_element e;
	esim_err err = ESIM_OK;
	while (der_next_child(&c, &e, &err)) {
		if (e.tag != DER_TAG_SEQUENCE)
			return ESIM_E_RSP_BAD_STRUCTURE;
		der_cursor in = der_cursor_of(e.value);
		der_bits bits;
		uint64_t mask = 0;
		der_span addr;
		err = der_get_bit_string(&in, 0x80, &bits);
		if (err == ESIM_OK)
			err = der_bits_to_mask(&bits, &mask);
		if (err == ESIM_OK)
			err = der_get_utf8(&in, 0x81, &addr);
		if (err != ESIM_OK)
			return rsp__structure(err);
		if (addr.len > RSP_ADDRESS_MAX)
			return ESIM_E_RSP_FIELD_SIZE;
		struct rsp_notif_config *n =
		    realloc(pi->notif, (pi->n_notif + 1) * sizeof *pi->notif);
		if (n == NULL)
			return ESIM_E_NOMEM;
		pi->notif = n;
		n[pi->n_notif].pmo = (uint32_t)mask;
		n[pi->n_notif].address = NULL;
		err = rsp__strdup(addr, &n[pi->n_notif].address);
		if (err != ESIM_OK)
			return err;
		pi->n_notif++;
	}
	return err;
}

static esim_err operator_id(der_span v, struct rsp_operator_id *o)
{
	der_cursor c = der_cursor_of(v);
	esim_err err = rsp__get_fixed(&c, 0x80, o->mcc_mnc, 3);
	der_element e;
	while (err == ESIM_OK && der_next_child(&c, &e, &err)) {
		if (e.tag != 0x81 && e.tag != 0x82)
			continue;
		if (e.value.len > RSP_GID_MAX)
			return ESIM_E_RSP_FIELD_SIZE;
		bool g1 = e.tag == 0x81;
		memcpy(g1 ? o->gid1 : o->gid2, e.value.p, e.value.len);
		*(g1 ? &o->gid1_len : &o->gid2_len) = e.value.len;
		*(g1 ? &o->has_gid1 : &o->has_gid2) = true;
	}
	return rsp__structure(err);
}

static esim_err profile_info(der_span value, struct rsp_profile_info *pi)
{
	der_cursor c = der_cursor_of(value);
	der_element e;
	esim_err err = ESIM_OK;
	pi->profile_class = RSP_CLASS_OPERATIONAL;
	while (err == ESIM_OK && der_next_child(&c, &e, &err)) {
		int64_t v;
		uint64_t mask;
		switch (e.tag) {
		case 0x5A:
			err = rsp_iccid_from_bcd(e.value.p, e.value.len, pi->iccid);
			pi->has_iccid = err == ESIM_OK;
			break;
		case 0x4F:
			if (e.value.len < RSP_AID_MIN || e.value.len > RSP_AID_MAX)
				return ESIM_E_RSP_BAD_AID;
			memcpy(pi->aid, e.value.p, e.value.len);
			pi->aid_len = e.value.len;
			break;
		case 0x9F70:
			err = der_value_int64(e.value, &v);
			if (err == ESIM_OK && v != 0 && v != 1)
				err = ESIM_E_RSP_BAD_STRUCTURE;
			pi->state = (enum rsp_profile_state)v;
			pi->has_state = true;
			break;
		case 0x90:
			err = utf8_dup(e.value, 4 * RSP_NAME_MAX, &pi->nickname);
			break;
		case 0x91:
			err = utf8_dup(e.value, 4 * RSP_SPN_MAX, &pi->spn);
			break;
		case 0x92:
			err = utf8_dup(e.value, 4 * RSP_NAME_MAX, &pi->name);
			break;
		case 0x93:
			err = der_value_int64(e.value, &v);
			pi->icon_type = (enum rsp_icon_type)v;
			pi->has_icon_type = err == ESIM_OK;
			break;
		case 0x94:
			pi->icon_len = e.value.len;
			break;
		case 0x95:
			err = der_value_int64(e.value, &v);
			if (err == ESIM_OK && (v < 0 || v > 2))
				err = ESIM_E_RSP_BAD_STRUCTURE;
			pi->profile_class = (enum rsp_profile_class)v;
			pi->has_class = true;
			break;
		case 0xB6:
			err = notif_configs(e.value, pi);
			break;
		case 0xB7:
			err = operator_id(e.value, &pi->owner);
			pi->has_owner = err == ESIM_OK;
			break;
		case 0x99:
			err = value_mask(e.value, &mask);
			pi->ppr = (uint32_t)mask;
			pi->has_ppr = err == ESIM_OK;
			break;
		default:
			break; /* B8 dpProprietaryData, v2.4+/v3 extensions */
		}
	}
	return rsp__structure(err);
}

esim_err rsp_get_profiles_parse(const uint8_t *p, size_t len, struct rsp_profile_list *out,
				int64_t *error_code)
{
	memset(out, 0, sizeof *out);
	der_cursor c, list;
	esim_err err = outer(p, len, RSP_ES10_GET_PROFILES_INFO, &c);
	if (err != ESIM_OK)
		return err;
	uint32_t tag = 0;
	err = der_peek_tag(&c, &tag);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (tag == 0x81) {
		int64_t code = 0;
		err = rsp__structure(der_get_int64(&c, 0x81, &code));
		if (err != ESIM_OK)
			return err;
		if (error_code != NULL)
			*error_code = code;
		return ESIM_E_RSP_EUICC_ERROR;
	}
	err = der_get_sequence(&c, 0xA0, &list);
	if (err != ESIM_OK)
		return rsp__structure(err);
	der_element e;
	while (der_next_child(&list, &e, &err)) {
		if (e.tag != 0xE3) {
			err = ESIM_E_RSP_BAD_STRUCTURE;
			break;
		}
		struct rsp_profile_info *n = realloc(out->items, (out->n + 1) * sizeof *n);
		if (n == NULL) {
			err = ESIM_E_NOMEM;
			break;
		}
		out->items = n;
		memset(&n[out->n], 0, sizeof n[out->n]);
		out->n++;
		err = profile_info(e.value, &n[out->n - 1]);
		if (err != ESIM_OK)
			break;
	}
	if (err != ESIM_OK)
		rsp_profile_list_free(out);
	return err;
}

static esim_err enable_disable(uint32_t tag, const struct rsp_profile_ref *ref, bool refresh,
			       uint8_t **out, size_t *out_len)
{
	if (!ref_ok(ref))
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, tag);
	der_builder_open(&b, 0xA0);
	add_ref(&b, ref);
	der_builder_close(&b);
	der_add_bool(&b, 0x81, refresh);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_enable_profile_req(const struct rsp_profile_ref *ref, bool refresh, uint8_t **out,
				size_t *out_len)
{
	return enable_disable(RSP_ES10_ENABLE_PROFILE, ref, refresh, out, out_len);
}

esim_err rsp_disable_profile_req(const struct rsp_profile_ref *ref, bool refresh, uint8_t **out,
				 size_t *out_len)
{
	return enable_disable(RSP_ES10_DISABLE_PROFILE, ref, refresh, out, out_len);
}

esim_err rsp_delete_profile_req(const struct rsp_profile_ref *ref, uint8_t **out, size_t *out_len)
{
	if (!ref_ok(ref))
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_DELETE_PROFILE);
	add_ref(&b, ref);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_set_nickname_req(const uint8_t iccid[RSP_ICCID_LEN], const char *nickname,
			      uint8_t **out, size_t *out_len)
{
	if (iccid == NULL || nickname == NULL)
		return ESIM_E_ARG;
	size_t n = strlen(nickname);
	if (!der_utf8_valid((const uint8_t *)nickname, n))
		return ESIM_E_DER_BAD_UTF8;
	if (rsp__utf8_chars((const uint8_t *)nickname, n) > RSP_NAME_MAX)
		return ESIM_E_RSP_FIELD_SIZE;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_SET_NICKNAME);
	der_add_octet_string(&b, 0x5A, iccid, RSP_ICCID_LEN);
	der_add_utf8(&b, 0x90, nickname, n);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_memory_reset_req(uint32_t options, uint8_t **out, size_t *out_len)
{
	if (options == 0 || options > 0xFF)
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_MEMORY_RESET);
	der_add_bit_string_mask(&b, 0x82, options);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_get_eid_req(uint8_t **out, size_t *out_len)
{
	static const uint8_t tag_list[] = {0x5A};
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_GET_EID);
	der_add_octet_string(&b, 0x5C, tag_list, sizeof tag_list);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_get_eid_parse(const uint8_t *p, size_t len, char eid[RSP_EID_DIGITS + 1])
{
	der_cursor c;
	uint8_t bcd[RSP_EID_LEN];
	esim_err err = outer(p, len, RSP_ES10_GET_EID, &c);
	if (err == ESIM_OK)
		err = rsp__get_fixed(&c, 0x5A, bcd, sizeof bcd);
	if (err == ESIM_OK)
		err = rsp_eid_from_bcd(bcd, sizeof bcd, eid);
	return err;
}

/* --- addresses ------------------------------------------------------------------------ */

void rsp_addresses_free(struct rsp_addresses *a)
{
	if (a == NULL)
		return;
	free(a->default_dp);
	free(a->root_ds);
	memset(a, 0, sizeof *a);
}

esim_err rsp_get_addresses_parse(const uint8_t *p, size_t len, struct rsp_addresses *out)
{
	memset(out, 0, sizeof *out);
	der_cursor c;
	esim_err err = outer(p, len, RSP_ES10_GET_ADDRESSES, &c);
	der_element e;
	while (err == ESIM_OK && der_next_child(&c, &e, &err)) {
		if (e.tag == 0x80)
			err = utf8_dup(e.value, RSP_ADDRESS_MAX, &out->default_dp);
		else if (e.tag == 0x81)
			err = utf8_dup(e.value, RSP_ADDRESS_MAX, &out->root_ds);
		/* v3: A2 additionalRootDsAddresses, 83 allowedCiPKId, A4 ciList */
	}
	if (err != ESIM_OK)
		rsp_addresses_free(out);
	return rsp__structure(err);
}

esim_err rsp_set_default_dp_req(const char *address, uint8_t **out, size_t *out_len)
{
	if (address == NULL)
		return ESIM_E_ARG;
	size_t n = strlen(address);
	if (n > RSP_ADDRESS_MAX)
		return ESIM_E_RSP_FIELD_SIZE;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_SET_DEFAULT_DP);
	der_add_utf8(&b, 0x80, address, n);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

/* --- eUICC information ---------------------------------------------------------------- */

static esim_err pkid_list(der_span v, struct rsp_pkid_list *l)
{
	der_cursor c = der_cursor_of(v);
	der_element e;
	esim_err err = ESIM_OK;
	while (der_next_child(&c, &e, &err)) {
		if (e.tag != DER_TAG_OCTET_STRING || e.value.len == 0 || e.value.len > RSP_PKID_LEN)
			return ESIM_E_RSP_BAD_STRUCTURE;
		if (l->n == RSP_MAX_PKIDS)
			return ESIM_E_TOO_LARGE;
		memcpy(l->id[l->n], e.value.p, e.value.len);
		l->len[l->n++] = e.value.len;
	}
	return err;
}

static esim_err version(der_span v, uint8_t out[3])
{
	if (v.len != 3)
		return ESIM_E_RSP_BAD_STRUCTURE;
	memcpy(out, v.p, 3);
	return ESIM_OK;
}

esim_err rsp_euicc_info1_parse(const uint8_t *p, size_t len, struct rsp_euicc_info1 *out)
{
	memset(out, 0, sizeof *out);
	der_cursor c;
	esim_err err = outer(p, len, RSP_ES10_GET_EUICC_INFO1, &c);
	der_element e;
	bool have_svn = false;
	while (err == ESIM_OK && der_next_child(&c, &e, &err)) {
		if (e.tag == 0x82) {
			err = version(e.value, out->svn);
			have_svn = true;
		} else if (e.tag == 0xA9) {
			err = pkid_list(e.value, &out->verification);
		} else if (e.tag == 0xAA) {
			err = pkid_list(e.value, &out->signing);
		}
	}
	if (err == ESIM_OK && !have_svn)
		err = ESIM_E_RSP_BAD_STRUCTURE;
	return rsp__structure(err);
}

/* extCardResource: TS 102 226 TLVs 81 apps, 82 free NVM, 83 free RAM, each
 * an unsigned big-endian number of 1..8 bytes. */
static esim_err ext_resource(der_span v, struct rsp_euicc_info2 *o)
{
	der_cursor c = der_cursor_of(v);
	der_element e;
	esim_err err = ESIM_OK;
	while (der_next_child(&c, &e, &err)) {
		if (e.value.len == 0 || e.value.len > 8)
			continue;
		uint64_t x = 0;
		for (size_t i = 0; i < e.value.len; i++)
			x = x << 8 | e.value.p[i];
		if (e.tag == 0x81) {
			o->installed_apps = x;
			o->has_installed_apps = true;
		} else if (e.tag == 0x82) {
			o->free_nvm = x;
			o->has_free_nvm = true;
		} else if (e.tag == 0x83) {
			o->free_ram = x;
			o->has_free_ram = true;
		}
	}
	o->has_ext_resource = true;
	return err;
}

esim_err rsp_euicc_info2_parse(const uint8_t *p, size_t len, struct rsp_euicc_info2 *out)
{
	memset(out, 0, sizeof *out);
	der_cursor c;
	esim_err err = outer(p, len, RSP_ES10_GET_EUICC_INFO2, &c);
	der_element e;
	while (err == ESIM_OK && der_next_child(&c, &e, &err)) {
		switch (e.tag) {
		case 0x81:
			err = version(e.value, out->profile_version);
			break;
		case 0x82:
			err = version(e.value, out->svn);
			break;
		case 0x83:
			err = version(e.value, out->firmware);
			break;
		case 0x84:
			err = ext_resource(e.value, out);
			break;
		case 0x85:
			err = value_mask(e.value, &out->uicc_capability);
			break;
		case 0x86:
			err = version(e.value, out->ts102241);
			out->has_ts102241 = true;
			break;
		case 0x87:
			err = version(e.value, out->gp);
			out->has_gp = true;
			break;
		case 0x88:
			err = value_mask(e.value, &out->rsp_capability);
			break;
		case 0xA9:
			err = pkid_list(e.value, &out->verification);
			break;
		case 0xAA:
			err = pkid_list(e.value, &out->signing);
			break;
		case 0x8B:
			err = der_value_int64(e.value, &out->category);
			out->has_category = true;
			break;
		case 0x99:
			err = value_mask(e.value, &out->forbidden_ppr);
			out->has_forbidden_ppr = true;
			break;
		case 0x04:
			err = version(e.value, out->pp_version);
			out->has_pp_version = true;
			break;
		case 0x0C:
			if (e.value.len >= sizeof out->sas_number ||
			    !der_utf8_valid(e.value.p, e.value.len)) {
				err = ESIM_E_RSP_FIELD_SIZE;
				break;
			}
			memcpy(out->sas_number, e.value.p, e.value.len);
			out->sas_number[e.value.len] = '\0';
			break;
		default:
			break; /* AC, 8D, 8E, AF and v3 fields */
		}
	}
	return rsp__structure(err);
}

esim_err rsp_challenge_parse(const uint8_t *p, size_t len, uint8_t out[RSP_CHALLENGE_LEN])
{
	der_cursor c;
	esim_err err = outer(p, len, RSP_ES10_GET_EUICC_CHALLENGE, &c);
	if (err == ESIM_OK)
		err = rsp__get_fixed(&c, 0x80, out, RSP_CHALLENGE_LEN);
	return rsp__structure(err);
}

/* --- notifications ---------------------------------------------------------------------- */

esim_err rsp_list_notification_req(uint32_t pmo_filter, uint8_t **out, size_t *out_len)
{
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_LIST_NOTIFICATION);
	if (pmo_filter != 0)
		der_add_bit_string_mask(&b, 0x81, pmo_filter);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

void rsp_notif_list_free(struct rsp_notif_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		rsp_notif_metadata_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

/* TAG { 81 error } -> ESIM_E_RSP_EUICC_ERROR; otherwise the A0 list. */
static esim_err list_or_error(const uint8_t *p, size_t len, uint32_t tag, der_cursor *list,
			      int64_t *error_code)
{
	der_cursor c;
	esim_err err = outer(p, len, tag, &c);
	if (err != ESIM_OK)
		return err;
	uint32_t first = 0;
	err = der_peek_tag(&c, &first);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (first == 0x81) {
		int64_t code = 0;
		err = rsp__structure(der_get_int64(&c, 0x81, &code));
		if (err != ESIM_OK)
			return err;
		if (error_code != NULL)
			*error_code = code;
		return ESIM_E_RSP_EUICC_ERROR;
	}
	return rsp__structure(der_get_sequence(&c, 0xA0, list));
}

esim_err rsp_list_notification_parse(const uint8_t *p, size_t len, struct rsp_notif_list *out,
				     int64_t *error_code)
{
	memset(out, 0, sizeof *out);
	der_cursor list;
	esim_err err = list_or_error(p, len, RSP_ES10_LIST_NOTIFICATION, &list, error_code);
	if (err != ESIM_OK)
		return err;
	der_element e;
	while (der_next_child(&list, &e, &err)) {
		struct rsp_notif_metadata *n = realloc(out->items, (out->n + 1) * sizeof *n);
		if (n == NULL) {
			err = ESIM_E_NOMEM;
			break;
		}
		out->items = n;
		err = rsp_notif_metadata_decode(e.tlv.p, e.tlv.len, &n[out->n]);
		if (err != ESIM_OK)
			break;
		out->n++;
	}
	if (err != ESIM_OK)
		rsp_notif_list_free(out);
	return rsp__structure(err);
}

esim_err rsp_retrieve_notification_req(uint64_t seq, uint8_t **out, size_t *out_len)
{
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_RETRIEVE_NOTIFICATIONS);
	der_builder_open(&b, 0xA0);
	der_add_uint64(&b, 0x80, seq);
	der_builder_close(&b);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_retrieve_notification_parse(const uint8_t *p, size_t len, der_span **items,
					 size_t *n_items, int64_t *error_code)
{
	*items = NULL;
	*n_items = 0;
	der_cursor list;
	esim_err err = list_or_error(p, len, RSP_ES10_RETRIEVE_NOTIFICATIONS, &list, error_code);
	if (err != ESIM_OK)
		return err;
	der_element e;
	while (der_next_child(&list, &e, &err)) {
		if (e.tag != 0xBF37 && e.tag != DER_TAG_SEQUENCE) {
			err = ESIM_E_RSP_UNKNOWN_NOTIFICATION;
			break;
		}
		der_span *n = realloc(*items, (*n_items + 1) * sizeof *n);
		if (n == NULL) {
			err = ESIM_E_NOMEM;
			break;
		}
		*items = n;
		n[(*n_items)++] = e.tlv;
	}
	if (err != ESIM_OK) {
		free(*items);
		*items = NULL;
		*n_items = 0;
	}
	return rsp__structure(err);
}

esim_err rsp_remove_notification_req(uint64_t seq, uint8_t **out, size_t *out_len)
{
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, RSP_ES10_REMOVE_NOTIFICATION);
	der_add_uint64(&b, 0x80, seq);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_pending_metadata(const uint8_t *p, size_t len, struct rsp_notif_metadata *out)
{
	memset(out, 0, sizeof *out);
	enum rsp_pending_kind kind;
	esim_err err = rsp_pending_kind(p, len, &kind);
	if (err != ESIM_OK)
		return err;
	der_cursor c, in;
	der_cursor_init(&c, p, len);
	if (kind == RSP_PENDING_PIR) {
		/* BF37 { BF27 { 80 txId, BF2F ... } } */
		err = der_get_element(&c, 0xBF37, &in);
		if (err == ESIM_OK)
			err = der_get_element(&in, 0xBF27, &c);
		if (err == ESIM_OK)
			err = der_get_element(&c, 0x80, NULL);
	} else {
		err = der_get_element(&c, DER_TAG_SEQUENCE, &in);
		c = in;
	}
	der_element e;
	if (err == ESIM_OK)
		err = der_get_tlv(&c, 0xBF2F, &e);
	if (err == ESIM_OK)
		err = rsp_notif_metadata_decode(e.tlv.p, e.tlv.len, out);
	return rsp__structure(err);
}
