/*
 * Names for tags, used by the dump as hints (digest 4.1 master table, 7.1,
 * 8.2, 13.2).
 *
 * SGP.22 tags are context-dependent: the ES10 command tags (BF20..BF4D)
 * also appear as plain context tags inside other structures (BF22/BF23
 * inside StoreMetadata), so a name is a guess about the most common
 * meaning, never a decoding. Universal tags are the only certain names.
 */
#include <stddef.h>

#include "esim/der.h"

struct tag_name {
	uint32_t tag;
	const char *name;
};

/* clang-format off: one tag per line reads better than packed columns */

static const struct tag_name universal_names[] = {
    {0x01, "BOOLEAN"},	       {0x02, "INTEGER"},	{0x03, "BIT STRING"},
    {0x04, "OCTET STRING"},    {0x05, "NULL"},		{0x06, "OBJECT IDENTIFIER"},
    {0x0A, "ENUMERATED"},      {0x0C, "UTF8String"},	{0x12, "NumericString"},
    {0x13, "PrintableString"}, {0x16, "IA5String"},	{0x17, "UTCTime"},
    {0x18, "GeneralizedTime"}, {0x1A, "VisibleString"}, {0x1E, "BMPString"},
    {0x30, "SEQUENCE"},	       {0x31, "SET"},
};

static const struct tag_name sgp22_names[] = {
    /* ES10 functions: request and response share the tag (digest 4.1) */
    {0xBF20, "GetEuiccInfo1 / EUICCInfo1"},
    {0xBF21, "PrepareDownload"},
    {0xBF22, "GetEuiccInfo2 / EUICCInfo2"},
    {0xBF23, "InitialiseSecureChannel"},
    {0xBF24, "ConfigureISDP"},
    {0xBF25, "StoreMetadata"},
    {0xBF26, "ReplaceSessionKeys"},
    {0xBF27, "ProfileInstallationResultData"},
    {0xBF28, "ListNotification"},
    {0xBF29, "SetNickname"},
    {0xBF2A, "UpdateMetadata"},
    {0xBF2B, "RetrieveNotificationsList"},
    {0xBF2D, "GetProfilesInfo / ProfilesInfo"},
    {0xBF2E, "GetEuiccChallenge"},
    {0xBF2F, "NotificationMetadata"},
    {0xBF30, "RemoveNotificationFromList"},
    {0xBF31, "EnableProfile"},
    {0xBF32, "DisableProfile"},
    {0xBF33, "DeleteProfile"},
    {0xBF34, "eUICCMemoryReset"},
    {0xBF35, "LoadCRL"},
    {0xBF36, "BoundProfilePackage"},
    {0xBF37, "ProfileInstallationResult"},
    {0xBF38, "AuthenticateServer"},
    {0xBF3C, "GetEuiccConfiguredAddresses"},
    {0xBF3E, "GetEID"},
    {0xBF3F, "SetDefaultDpAddress"},
    {0xBF40, "AuthenticateClientResponseEs11"},
    {0xBF41, "CancelSession"},
    {0xBF42, "LpaeActivation"},
    {0xBF43, "GetRAT"},
    {0xBF44, "LoadRpmPackage"},
    {0xBF45, "VerifySmdsResponse"},
    {0xBF46, "CheckEvent"},
    {0xBF4A, "PendingOperationAlert"},
    {0xBF4B, "VerifyDeviceChange"},
    {0xBF4D, "PrepareDeviceChange"},
    /* application / private tags with one meaning throughout */
    {0x4F, "AID"},
    {0x5A, "ICCID / EID"},
    {0x5C, "tagList"},
    {0x5F37, "signature"},
    {0x5F49, "public key (otPK)"},
    {0x7F21, "certificate"},
    {0xE3, "ProfileInfo"},
    {0x9F70, "profileState"},
};

/* ProfileElement CHOICE alternatives of a SAIP package (digest 13.2). */
static const struct tag_name saip_names[] = {
    {0xA0, "ProfileHeader"},
    {0xA1, "genericFileManagement"},
    {0xA2, "pinCodes"},
    {0xA3, "pukCodes"},
    {0xA4, "akaParameter"},
    {0xA5, "cdmaParameter"},
    {0xA6, "securityDomain"},
    {0xA7, "rfm"},
    {0xA8, "application"},
    {0xA9, "nonStandard"},
    {0xAA, "end"},
    {0xAB, "rfu1"},
    {0xAC, "rfu2"},
    {0xAD, "rfu3"},
    {0xAE, "rfu4"},
    {0xAF, "rfu5"},
    {0xB0, "mf"},
    {0xB1, "cd"},
    {0xB2, "telecom"},
    {0xB3, "usim"},
    {0xB4, "opt-usim"},
    {0xB5, "isim"},
    {0xB6, "opt-isim"},
    {0xB7, "phonebook"},
    {0xB8, "gsm-access"},
    {0xB9, "csim"},
    {0xBA, "opt-csim"},
    {0xBB, "eap"},
    {0xBC, "df-5gs"},
    {0xBD, "df-saip"},
    {0xBE, "df-snpn"},
    {0xBF1F, "df-5gprose"},
    {0xBF20, "iot"},
    {0xBF21, "opt-iot"},
};

/* clang-format on */

static const char *lookup(const struct tag_name *t, size_t n, uint32_t tag)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].tag == tag)
			return t[i].name;
	return NULL;
}

#define LOOKUP(table, tag) lookup((table), sizeof(table) / sizeof((table)[0]), (tag))

const char *der_tag_name(uint32_t tag, enum der_names names, unsigned depth)
{
	const char *name = LOOKUP(universal_names, tag);
	if (name != NULL)
		return name;
	switch (names) {
	case DER_NAMES_SGP22:
		return LOOKUP(sgp22_names, tag);
	case DER_NAMES_SAIP:
		return depth == 0 ? LOOKUP(saip_names, tag) : NULL;
	case DER_NAMES_NONE:
		break;
	}
	return NULL;
}
