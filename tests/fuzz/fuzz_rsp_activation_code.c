/*
 * Fuzz the activation code parser (src/rsp/activation_code.c, SGP.22 4.1),
 * which reads text a user scans from a QR code or pastes: untrusted. The
 * input is the text. Beyond "no crash": a code that parses has a non-empty
 * SM-DP+ address that the address check accepts on its own, a non-empty
 * matchingId without spaces or control characters, an OID only when the
 * code has one; a refused code always comes with a sentence naming why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esim/rsp_ac.h"

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4 * RSP_AC_TEXT_MAX)
		return 0;
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct rsp_activation_code ac;
	const char *why = NULL;
	esim_err err = rsp_ac_parse(text, &ac, &why);
	if (err == ESIM_OK) {
		must(ac.smdp[0] != '\0');
		must(rsp_ac_check_address(ac.smdp, NULL) == ESIM_OK);
		must(ac.matching_id[0] != '\0');
		for (const char *p = ac.matching_id; *p; p++)
			must(*p > ' ' && *p < 0x7F);
		must(ac.has_oid || ac.oid[0] == '\0');
	} else {
		must(err == ESIM_E_RSP_BAD_ACTIVATION_CODE);
		must(why != NULL && why[0] != '\0');
	}
	why = NULL;
	err = rsp_ac_check_address(text, &why);
	must(err == ESIM_OK || (why != NULL && why[0] != '\0'));
	free(text);
	return 0;
}
