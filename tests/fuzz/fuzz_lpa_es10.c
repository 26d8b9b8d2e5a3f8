/*
 * Fuzz the LPA's reading of what a card answers (src/rsp/es10_lpa.c and
 * the ES10 responses the LPA parses elsewhere in src/rsp): a card, a
 * modem or anything on the PC/SC or socket path may answer garbage.
 * Input: [which:1][response...]; `which` picks the parser the LPA would
 * call for the command it sent. Checked: no crash, leak or overflow; every
 * parser either succeeds or returns an error (out is freed either way with
 * its _free function, which must accept what a failed parse left), and
 * an eUICC error answer sets the error code the header promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esim/rsp.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_es10.h"

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	int64_t code = INT64_MIN; /* "not set" */
	esim_err err;
	switch (data[0] % 14) {
	case 0: {
		struct rsp_profile_list l;
		memset(&l, 0, sizeof l);
		err = rsp_get_profiles_parse(p, n, &l, &code);
		must(err != ESIM_E_RSP_EUICC_ERROR || code != INT64_MIN);
		rsp_profile_list_free(&l);
		break;
	}
	case 1: {
		char eid[RSP_EID_DIGITS + 1];
		if (rsp_get_eid_parse(p, n, eid) == ESIM_OK)
			must(strlen(eid) == RSP_EID_DIGITS);
		break;
	}
	case 2: {
		struct rsp_addresses a;
		memset(&a, 0, sizeof a);
		(void)rsp_get_addresses_parse(p, n, &a);
		rsp_addresses_free(&a);
		break;
	}
	case 3: {
		struct rsp_euicc_info1 i1;
		memset(&i1, 0, sizeof i1);
		(void)rsp_euicc_info1_parse(p, n, &i1);
		break;
	}
	case 4: {
		struct rsp_euicc_info2 i2;
		memset(&i2, 0, sizeof i2);
		(void)rsp_euicc_info2_parse(p, n, &i2);
		break;
	}
	case 5: {
		uint8_t ch[RSP_CHALLENGE_LEN];
		(void)rsp_challenge_parse(p, n, ch);
		break;
	}
	case 6: {
		struct rsp_notif_list l;
		memset(&l, 0, sizeof l);
		err = rsp_list_notification_parse(p, n, &l, &code);
		must(err != ESIM_E_RSP_EUICC_ERROR || code != INT64_MIN);
		rsp_notif_list_free(&l);
		break;
	}
	case 7: {
		der_span *items = NULL;
		size_t k = 0;
		err = rsp_retrieve_notification_parse(p, n, &items, &k, &code);
		if (err == ESIM_OK)
			for (size_t i = 0; i < k; i++)
				must(items[i].p >= p && items[i].p + items[i].len <= p + n);
		free(items);
		break;
	}
	case 8: {
		struct rsp_notif_metadata m;
		memset(&m, 0, sizeof m);
		(void)rsp_pending_metadata(p, n, &m);
		rsp_notif_metadata_free(&m);
		break;
	}
	case 9: {
		struct rsp_auth_server_resp r;
		memset(&r, 0, sizeof r);
		(void)rsp_auth_server_resp_parse(p, n, &r);
		rsp_auth_server_resp_clear(&r);
		break;
	}
	case 10: {
		struct rsp_prepare_download_resp r;
		memset(&r, 0, sizeof r);
		(void)rsp_prepare_download_resp_parse(p, n, &r);
		break;
	}
	case 11: {
		struct rsp_cancel_session_resp r;
		memset(&r, 0, sizeof r);
		(void)rsp_cancel_session_resp_parse(p, n, &r);
		break;
	}
	case 12: {
		struct rsp_pir pir;
		memset(&pir, 0, sizeof pir);
		(void)rsp_pir_parse(p, n, &pir);
		rsp_pir_free(&pir);
		break;
	}
	default: {
		/* EnableProfile, DeleteProfile, SetNickname ... all answer
		 * { 80 result } under their own tag */
		static const uint32_t tags[] = {0xBF31, 0xBF32, 0xBF33, 0xBF29,
						0xBF34, 0xBF3F, 0xBF30, 0xBF41};
		int64_t result;
		uint32_t tag = tags[n % (sizeof tags / sizeof tags[0])];
		(void)rsp_es10_result_parse(p, n, tag, &result);
		break;
	}
	}
	return 0;
}
