/*
 * rsp_ac: the Activation Code of SGP.22 section 4.1 (digest 9.4), the text
 * a user scans from a QR code or types:
 *
 *     LPA:1$<SM-DP+ address>$<AC_Token = matchingId>[$<SM-DP+ OID>[$<CC flag "1">]]
 *
 * The "LPA:" prefix belongs to the QR form and is optional here.
 */
#ifndef ESIM_RSP_AC_H
#define ESIM_RSP_AC_H

#include <stdbool.h>

#include "esim/err.h"
#include "esim/rsp.h"

#define RSP_AC_MATCHING_ID_MAX 255
#define RSP_AC_TEXT_MAX	       1024

struct rsp_activation_code {
	char smdp[RSP_ADDRESS_MAX + 1]; /* host, or host:port */
	char matching_id[RSP_AC_MATCHING_ID_MAX + 1];
	bool has_oid;
	char oid[RSP_OID_TEXT_MAX]; /* dotted; "" unless has_oid */
	bool cc_required;
};

/*
 * Parse an activation code. Surrounding whitespace (a scanner's newline) is
 * ignored; everything else must be exact: format "1", 3 to 5 fields, a
 * non-empty address of letters, digits, '-' and '.' (with an optional
 * ":port"), a non-empty matchingId of printable ASCII without spaces, an
 * OID that is empty or dotted decimal, and a CC flag that is empty or "1".
 * ESIM_E_RSP_BAD_ACTIVATION_CODE for anything else, with *why (may be NULL)
 * set to a static sentence naming the problem.
 */
esim_err rsp_ac_parse(const char *text, struct rsp_activation_code *out, const char **why);

/* Check a bare SM-DP+ / SM-DS address as rsp_ac_parse checks field 2. */
esim_err rsp_ac_check_address(const char *address, const char **why);

#endif
