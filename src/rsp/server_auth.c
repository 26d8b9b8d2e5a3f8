/*
 * The server's half of the common mutual authentication that the SM-DP+
 * (ES9+, SGP.22 5.6.1) and the SM-DS (ES11, 5.8.1) share (SGP.22 3.1.2;
 * digest 6.2): from the eUICC's EUICCInfo1, which CI the eUICC is to sign
 * with and which of the server's identities (CERT.DPauth or CERT.DSauth)
 * it can verify. Both servers call it, so that they choose alike; the
 * signing of serverSigned1 and the check of the eUICC's answer are in
 * smdp_auth.c (rsp_server_signed1_build, rsp_auth_server_resp_verify).
 */
#include <string.h>

#include "esim/rsp_auth.h"

static bool same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	return an == bn && memcmp(a, b, an) == 0;
}

esim_err rsp_server_choose(const der_span *signing, size_t n_signing, const der_span *verification,
			   size_t n_verification, const crypto_trust *trust, const der_span *id_ci,
			   size_t n_ids, der_span *ci, int *ident)
{
	if ((!signing && n_signing) || (!verification && n_verification) || !trust ||
	    (!id_ci && n_ids) || !ci || !ident)
		return ESIM_E_ARG;
	ci->p = NULL;
	ci->len = 0;
	*ident = -1;
	/* a CI the eUICC lists for signing and we trust, the CI of one of our
	 * identities first */
	for (int pass = 0; pass < 2 && !ci->p; pass++)
		for (size_t i = 0; i < n_signing && !ci->p; i++) {
			bool ours = false;
			for (size_t k = 0; k < n_ids && !ours; k++)
				ours = same(signing[i].p, signing[i].len, id_ci[k].p, id_ci[k].len);
			if ((pass == 1 || ours) &&
			    crypto_trust_find(trust, signing[i].p, signing[i].len))
				*ci = signing[i];
		}
	if (!ci->p)
		return ESIM_E_CERT_UNKNOWN_CI;
	/* an identity under a CI the eUICC verifies with, that of the signing
	 * CI when there is one */
	for (size_t k = 0; k < n_ids; k++) {
		bool listed = false;
		for (size_t i = 0; i < n_verification && !listed; i++)
			listed =
			    same(verification[i].p, verification[i].len, id_ci[k].p, id_ci[k].len);
		if (listed && (*ident < 0 || same(id_ci[k].p, id_ci[k].len, ci->p, ci->len)))
			*ident = (int)k;
	}
	return *ident < 0 ? ESIM_E_RSP_CI_MISMATCH : ESIM_OK;
}
