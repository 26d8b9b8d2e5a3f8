/*
 * Activation Code parsing (SGP.22 4.1; digest 9.4): the LPA's first contact
 * with user input. Every malformed case is rejected with a sentence that
 * says which field is wrong, because a user typing a code from a letter
 * needs to know where the typo is.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esim/der.h"
#include "esim/rsp_ac.h"

#define AC_MAX_FIELDS 5

static esim_err bad(const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return ESIM_E_RSP_BAD_ACTIVATION_CODE;
}

esim_err rsp_ac_check_address(const char *a, const char **why)
{
	if (a == NULL || *a == '\0')
		return bad(why, "the SM-DP+ address (field 2) is empty");
	size_t n = strlen(a);
	if (n > RSP_ADDRESS_MAX)
		return bad(why, "the SM-DP+ address (field 2) is longer than 255 characters");
	const char *colon = strchr(a, ':');
	size_t host_len = colon ? (size_t)(colon - a) : n;
	if (host_len == 0)
		return bad(why, "the SM-DP+ address (field 2) has no host name");
	for (size_t i = 0; i < host_len; i++) {
		unsigned char ch = (unsigned char)a[i];
		if (!isalnum(ch) && ch != '-' && ch != '.')
			return bad(why, "the SM-DP+ address (field 2) may hold only letters, "
					"digits, '-' and '.' (and a :port)");
	}
	if (a[0] == '.' || a[0] == '-' || a[host_len - 1] == '.' || strstr(a, "..") != NULL)
		return bad(why, "the SM-DP+ address (field 2) is not a host name");
	if (colon != NULL) {
		const char *port = colon + 1;
		size_t pn = strlen(port);
		if (pn == 0 || pn > 5 || strspn(port, "0123456789") != pn || atoi(port) < 1 ||
		    atoi(port) > 65535)
			return bad(why, "the port after ':' in the SM-DP+ address is not 1..65535");
	}
	return ESIM_OK;
}

/* Copy the trimmed text and split it on '$'; fields point into buf. */
static esim_err split(const char *text, char *buf, size_t cap, char **fields, size_t *n,
		      const char **why)
{
	while (isspace((unsigned char)*text))
		text++;
	size_t len = strlen(text);
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len == 0)
		return bad(why, "the activation code is empty");
	if (len >= cap)
		return bad(why, "the activation code is too long");
	memcpy(buf, text, len);
	buf[len] = '\0';
	char *p = buf;
	if (strncasecmp(p, "LPA:", 4) == 0)
		p += 4;
	*n = 0;
	for (;;) {
		if (*n == AC_MAX_FIELDS)
			return bad(why, "too many '$'-separated fields (at most 5: format, "
					"address, matching ID, OID, confirmation-code flag)");
		fields[(*n)++] = p;
		char *d = strchr(p, '$');
		if (d == NULL)
			break;
		*d = '\0';
		p = d + 1;
	}
	return ESIM_OK;
}

static esim_err check_matching_id(const char *m, const char **why)
{
	size_t n = strlen(m);
	if (n == 0)
		return bad(why, "the matching ID (field 3) is empty");
	if (n > RSP_AC_MATCHING_ID_MAX)
		return bad(why, "the matching ID (field 3) is longer than 255 characters");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)m[i];
		if (ch <= 0x20 || ch >= 0x7F)
			return bad(why, "the matching ID (field 3) contains a space, a control "
					"character or a non-ASCII character");
	}
	return ESIM_OK;
}

static esim_err check_oid(const char *oid, const char **why)
{
	size_t n = strlen(oid);
	if (n >= RSP_OID_TEXT_MAX)
		return bad(why, "the SM-DP+ OID (field 4) is too long");
	esim_buf tmp = ESIM_BUF_INIT;
	esim_err err = strspn(oid, "0123456789.") == n ? der_oid_from_text(oid, &tmp) : ESIM_E_ARG;
	esim_buf_free(&tmp);
	if (err != ESIM_OK)
		return bad(why, "the SM-DP+ OID (field 4) is not a dotted object identifier "
				"such as 1.3.6.1.4.1.31746");
	return ESIM_OK;
}

esim_err rsp_ac_parse(const char *text, struct rsp_activation_code *out, const char **why)
{
	if (why != NULL)
		*why = NULL;
	if (text == NULL || out == NULL)
		return ESIM_E_ARG;
	memset(out, 0, sizeof *out);
	char buf[RSP_AC_TEXT_MAX];
	char *f[AC_MAX_FIELDS];
	size_t n = 0;
	esim_err err = split(text, buf, sizeof buf, f, &n, why);
	if (err != ESIM_OK)
		return err;
	if (strcmp(f[0], "1") != 0)
		return bad(why, n == 1
				    ? "not an activation code (expected LPA:1$address$matchingId)"
				    : "unknown activation code format (field 1 must be \"1\")");
	if (n < 2)
		return bad(why, "the SM-DP+ address (field 2) is missing");
	err = rsp_ac_check_address(f[1], why);
	if (err != ESIM_OK)
		return err;
	if (n < 3)
		return bad(why, "the matching ID (field 3) is missing");
	err = check_matching_id(f[2], why);
	if (err != ESIM_OK)
		return err;
	if (n >= 4 && f[3][0] != '\0') {
		err = check_oid(f[3], why);
		if (err != ESIM_OK)
			return err;
		out->has_oid = true;
		strcpy(out->oid, f[3]);
	}
	if (n == 5) {
		if (strcmp(f[4], "1") == 0)
			out->cc_required = true;
		else if (f[4][0] != '\0')
			return bad(why,
				   "the confirmation-code flag (field 5) must be \"1\" or empty");
	}
	strcpy(out->smdp, f[1]);
	strcpy(out->matching_id, f[2]);
	return ESIM_OK;
}
