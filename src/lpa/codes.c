/*
 * What the SGP.22 codes a server or card sends back mean, in words a user
 * can act on: ES9+/ES11 subjectCode and reasonCode (SGP.22 5.6, digest
 * 5.4) and the bppCommandId / errorReason of a failed installation
 * (digest 7.6). The ES10 result codes are in src/rsp/es10_lpa.c.
 */
#include <string.h>

#include "lpa/lpa.h"

struct pair {
	const char *code;
	const char *name;
};

static const struct pair subjects[] = {
    {"1.2.1", "Content-Type header"},
    {"1.3.1", "JSON request"},
    {"8.1", "eUICC"},
    {"8.1.1", "EID"},
    {"8.1.2", "EUM certificate"},
    {"8.1.3", "eUICC certificate"},
    {"8.1.4", "eUICC certificate (EID range)"},
    {"8.2", "Profile"},
    {"8.2.1", "Profile ICCID"},
    {"8.2.5", "Profile Type"},
    {"8.2.6", "Matching ID"},
    {"8.2.7", "Confirmation Code"},
    {"8.2.9", "Profile Metadata"},
    {"8.2.12", "Profile Owner"},
    {"8.8", "SM-DP+"},
    {"8.8.1", "SM-DP+ Address"},
    {"8.8.2", "Security configuration (CI public key identifiers)"},
    {"8.8.3", "Specification version number"},
    {"8.8.4", "SM-DP+ certificate"},
    {"8.8.5", "Download order"},
    {"8.9", "SM-DS"},
    {"8.9.1", "SM-DS address"},
    {"8.9.2", "SM-DS security configuration"},
    {"8.9.3", "SM-DS specification version number"},
    {"8.9.4", "SM-DS certificate"},
    {"8.9.5", "Event record"},
    {"8.10.1", "TransactionId"},
    {"8.11.1", "CI public key"},
};

static const struct pair reasons[] = {
    {"1.2", "Not allowed (authorisation)"},
    {"2.1", "Invalid (format)"},
    {"2.2", "Mandatory element missing"},
    {"2.3", "Conditional element missing"},
    {"3.1", "Unsupported"},
    {"3.3", "Already in use"},
    {"3.5", "Invalid transition"},
    {"3.7", "Unavailable"},
    {"3.8", "Refused"},
    {"3.9", "Unknown"},
    {"3.10", "Invalid association"},
    {"4.2", "Execution error"},
    {"4.3", "Not eligible"},
    {"4.8", "Insufficient memory"},
    {"4.10", "Time to live expired"},
    {"5.1", "Inaccessible"},
    {"6.1", "Verification failed"},
    {"6.3", "Expired"},
    {"6.4", "Maximum number of retries exceeded"},
};

struct hint {
	const char *function; /* NULL: any */
	const char *subject, *reason;
	const char *text;
};

static const struct hint hints[] = {
    {NULL, "8.8.1", "3.8", "the server is not the SM-DP+ named in the activation code"},
    {NULL, "8.8.2", "3.1", "the server trusts none of the CIs this eUICC can use"},
    {NULL, "8.8.3", "3.1", "the server does not support this eUICC's SGP.22 version"},
    {NULL, "8.8.4", "3.7", "the server has no certificate from a CI this eUICC trusts"},
    {NULL, "8.10.1", "3.9", "the server does not know (or has expired) this session"},
    {NULL, "8.1.2", "6.1", "the eUICC's manufacturer (EUM) certificate was not accepted"},
    {NULL, "8.1.2", "6.3", "the eUICC's manufacturer (EUM) certificate has expired"},
    {NULL, "8.1.3", "6.1", "the eUICC certificate was not accepted"},
    {NULL, "8.1.3", "6.3", "the eUICC certificate has expired"},
    {NULL, "8.11.1", "3.9", "the eUICC's certificate is from another CI than agreed"},
    {NULL, "8.1", "6.1", "the eUICC's signature did not verify"},
    {NULL, "8.2.6", "3.8",
     "the SM-DP+ has no order for this matching ID (mistyped, already used or cancelled)"},
    {NULL, "8.1.1", "3.8",
     "the SM-DP+ refused this eUICC (EID): the order is for another eUICC, or there is no"
     " default order for this one"},
    {NULL, "8.2", "1.2", "the operator has not released the profile yet"},
    {NULL, "8.2.5", "4.3", "this eUICC or device is not eligible for the profile"},
    {NULL, "8.1", "4.8", "the eUICC has not enough free memory for the profile"},
    {NULL, "8.8.5", "4.10", "the download order has expired"},
    {NULL, "8.8.5", "6.4", "too many download attempts for this order"},
    {NULL, "8.2.7", "2.2", "the profile needs a confirmation code"},
    {NULL, "8.2.7", "3.8", "the confirmation code is wrong"},
    {NULL, "8.2.7", "6.4", "too many wrong confirmation codes: the order is blocked"},
    {NULL, "8.2", "3.7", "the profile is already bound to another download session"},
    {NULL, "8.8", "3.10", "the cancellation was signed for another SM-DP+"},
    {NULL, "8.9.5", "3.9", "the SM-DS has no event for this eUICC"},
};

static const char *lookup(const struct pair *t, size_t n, const char *code)
{
	for (size_t i = 0; code != NULL && i < n; i++)
		if (strcmp(t[i].code, code) == 0)
			return t[i].name;
	return NULL;
}

const char *lpa_subject_name(const char *subject)
{
	return lookup(subjects, sizeof subjects / sizeof subjects[0], subject);
}

const char *lpa_reason_name(const char *reason)
{
	return lookup(reasons, sizeof reasons / sizeof reasons[0], reason);
}

const char *lpa_es9_hint(const char *function, const char *subject, const char *reason)
{
	if (subject == NULL || reason == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
		const struct hint *h = &hints[i];
		if (h->function != NULL && (function == NULL || strcmp(function, h->function) != 0))
			continue;
		if (strcmp(h->subject, subject) == 0 && strcmp(h->reason, reason) == 0)
			return h->text;
	}
	return NULL;
}

const char *lpa_bpp_command_name(int64_t v)
{
	static const char *const names[] = {
	    "initialiseSecureChannel", "configureISDP",	     "storeMetadata",
	    "storeMetadata2",	       "replaceSessionKeys", "loadProfileElements",
	};
	return v >= 0 && v < 6 ? names[v] : NULL;
}

const char *lpa_bpp_error_name(int64_t v)
{
	static const char *const names[] = {
	    NULL,
	    "incorrectInputValues",
	    "invalidSignature",
	    "invalidTransactionId",
	    "unsupportedCrtValues",
	    "unsupportedRemoteOperationType",
	    "unsupportedProfileClass",
	    "scp03tStructureError",
	    "scp03tSecurityError",
	    "installFailedDueToIccidAlreadyExistsOnEuicc",
	    "installFailedDueToInsufficientMemoryForProfile",
	    "installFailedDueToInterruption",
	    "installFailedDueToPEProcessingError",
	    "installFailedDueToDataMismatch",
	    "testProfileInstallFailedDueToInvalidNaaKey",
	    "pprNotAllowed",
	};
	if (v == 127)
		return "installFailedDueToUnknownError";
	return v >= 1 && v < 16 ? names[v] : NULL;
}
