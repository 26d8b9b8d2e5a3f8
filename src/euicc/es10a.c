/*
 * es10a: the LPA's view of the eUICC's configured addresses (SGP.22 5.7.3,
 * 5.7.4; digest 4.1): GetEuiccConfiguredAddresses (BF3C) returns the
 * default SM-DP+ address, when set, and the root SM-DS address;
 * SetDefaultDpAddress (BF3F) stores or (with an empty string) clears the
 * default SM-DP+ address. The address is persistent and survives restarts.
 */
#include <stdlib.h>
#include <string.h>

#include "euicc_int.h"

#define SETTING_DEFAULT_DP "default_dp_address"

esim_err es10a_get_configured_addresses(euicc *e, der_cursor *req, der_builder *b)
{
	(void)req;
	char *dp = NULL;
	esim_err err = euicc_db_get_setting(e->db, SETTING_DEFAULT_DP, &dp);
	if (err != ESIM_OK)
		return err;
	der_builder_open(b, 0xBF3C);
	if (dp != NULL && dp[0] != '\0')
		der_add_utf8(b, 0x80, dp, strlen(dp));
	der_add_utf8(b, 0x81, e->root_ds, strlen(e->root_ds));
	err = der_builder_close(b);
	free(dp);
	return err;
}

esim_err es10a_set_default_dp_address(euicc *e, der_cursor *req, der_builder *b)
{
	der_span addr;
	esim_err err = der_get_utf8(req, 0x80, &addr);
	if (err != ESIM_OK)
		return euicc_bad(err);
	/* v3 adds an optional allowedCiPKId (81); tolerate and ignore it */
	if (addr.len > EUICC_ADDR_MAX)
		return euicc_result(b, 0xBF3F, 127);
	char text[EUICC_ADDR_MAX + 1];
	memcpy(text, addr.p, addr.len);
	text[addr.len] = '\0';
	if (memchr(text, '\0', addr.len) != NULL)
		return euicc_result(b, 0xBF3F, 127);
	err = euicc_db_set_setting(e->db, SETTING_DEFAULT_DP, addr.len ? text : NULL);
	if (err != ESIM_OK)
		return err;
	return euicc_result(b, 0xBF3F, 0);
}
