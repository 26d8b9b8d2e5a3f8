/*
 * The server's half of the common mutual authentication that the SM-DP+
 * (ES9+, SGP.22 5.6.1) and the SM-DS (ES11, 5.8.1) share (SGP.22 3.1.2;
 * digest 6.2): from the eUICC's EUICCInfo1, which CI the eUICC is to sign
 * with and which of the server's identities (CERT.DPauth or CERT.DSauth)
 * it can verify; and the check of the eUICC's certificate chain in its
 * AuthenticateServerResponse (SGP.22 5.6.3 / 5.8.2), each failure with its
 * code, with the server's optional cache of verified EUMs. Both servers
 * call them, so that they choose and refuse alike; the signing of
 * serverSigned1 is in smdp_auth.c (rsp_server_signed1_build).
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

/*
 * The eUICC's certificate chain of an AuthenticateServerResponse, checked
 * step by step as both servers must (SGP.22 5.6.3 / 5.8.2, the
 * authenticateClient codes; digest 6.3 steps 3 to 6), so that each failure
 * gets its own code: CERT.EUM (parse, issued by the CI the session agreed
 * on, signed by it, a CA with the EUM role, its validity), then
 * CERT.EUICC (issued and signed by that EUM, the eUICC role, digital
 * signature usage, its validity), then the EID inside the EUM's permitted
 * range. CERT.EUM is the same for every eUICC of a manufacturer's batch:
 * with a cache, the work that depends on it alone (parse, signature, CA
 * rights, role) is done once per distinct certificate; validity and the
 * session's CI are checked every time.
 */
esim_err rsp_server_check_chain(const struct rsp_chain_check *c,
				const struct rsp_auth_server_resp *r, enum rsp_chain_fault *fault,
				crypto_cert **euicc_out, char eid[RSP_EID_DIGITS + 1])
{
	if (!c || !c->trust || !c->ci_pkid || !r || !fault || !euicc_out || !eid)
		return ESIM_E_ARG;
	*euicc_out = NULL;
	eid[0] = '\0';
	crypto_cert *own_eum = NULL, *euicc = NULL;
	const crypto_cert *eum =
	    c->cache ? c->cache->find(c->cache->ctx, r->eum_cert.p, r->eum_cert.len) : NULL;
	enum rsp_chain_fault f = RSP_CHAIN_OK;
	uint8_t aki[CRYPTO_KEY_ID_MAX], ski[CRYPTO_KEY_ID_MAX];
	size_t aki_len = 0, ski_len = 0;
	crypto_rsp_role role;
	if (!eum && crypto_cert_load(r->eum_cert.p, r->eum_cert.len, &own_eum) != ESIM_OK) {
		f = RSP_CHAIN_EUM_INVALID;
		goto out;
	}
	if (!eum)
		eum = own_eum;
	if (crypto_cert_load(r->euicc_cert.p, r->euicc_cert.len, &euicc) != ESIM_OK) {
		f = RSP_CHAIN_EUICC_INVALID;
		goto out;
	}
	if (crypto_cert_aki(eum, aki, &aki_len) != ESIM_OK ||
	    !same(aki, aki_len, c->ci_pkid, c->ci_pkid_len)) {
		f = RSP_CHAIN_EUM_WRONG_CI;
		goto out;
	}
	if (own_eum) {
		const crypto_cert *ci = crypto_trust_find(c->trust, c->ci_pkid, c->ci_pkid_len);
		if (!ci || crypto_cert_verify_signed_by(own_eum, ci) != ESIM_OK ||
		    crypto_cert_check_ca(own_eum) != ESIM_OK ||
		    crypto_cert_role(own_eum, &role) != ESIM_OK || role != CRYPTO_ROLE_EUM) {
			f = RSP_CHAIN_EUM_INVALID;
			goto out;
		}
		/* verified: from now on the cache's copy (it owns it once
		 * taken; when full, ours stays ours) */
		if (c->cache)
			eum = c->cache->keep(c->cache->ctx, &own_eum);
	}
	esim_err e;
	if (c->check_time && (e = crypto_cert_check_time(eum, c->now)) != ESIM_OK) {
		f = e == ESIM_E_CERT_EXPIRED ? RSP_CHAIN_EUM_EXPIRED : RSP_CHAIN_EUM_NOT_YET_VALID;
		goto out;
	}
	if (crypto_cert_aki(euicc, aki, &aki_len) != ESIM_OK ||
	    crypto_cert_ski(eum, ski, &ski_len) != ESIM_OK || !same(aki, aki_len, ski, ski_len) ||
	    crypto_cert_verify_signed_by(euicc, eum) != ESIM_OK ||
	    crypto_cert_role(euicc, &role) != ESIM_OK || role != CRYPTO_ROLE_EUICC ||
	    crypto_cert_check_digital_signature(euicc) != ESIM_OK) {
		f = RSP_CHAIN_EUICC_INVALID;
		goto out;
	}
	if (c->check_time && (e = crypto_cert_check_time(euicc, c->now)) != ESIM_OK) {
		f = e == ESIM_E_CERT_EXPIRED ? RSP_CHAIN_EUICC_EXPIRED
					     : RSP_CHAIN_EUICC_NOT_YET_VALID;
		goto out;
	}
	/* digest 5.4 (impl): an EID outside the EUM's range makes the eUICC
	 * certificate invalid for that EUM */
	if (crypto_cert_eid(euicc, eid) != ESIM_OK ||
	    crypto_cert_eid_permitted(eum, eid) != ESIM_OK) {
		f = RSP_CHAIN_EID_OUT_OF_RANGE;
		goto out;
	}
	*euicc_out = euicc;
	euicc = NULL;
out:
	*fault = f;
	crypto_cert_free(own_eum);
	crypto_cert_free(euicc);
	return ESIM_OK;
}

void rsp_chain_fault_status(enum rsp_chain_fault f, const char **subject, const char **reason,
			    const char **message)
{
	static const struct {
		const char *s, *r, *m;
	} t[] = {
	    [RSP_CHAIN_OK] = {NULL, NULL, NULL},
	    [RSP_CHAIN_EUM_INVALID] = {"8.1.2", "6.1", "EUM certificate invalid"},
	    [RSP_CHAIN_EUM_EXPIRED] = {"8.1.2", "6.3", "EUM certificate expired"},
	    [RSP_CHAIN_EUM_NOT_YET_VALID] = {"8.1.2", "6.1", "EUM certificate not yet valid"},
	    [RSP_CHAIN_EUM_WRONG_CI] = {"8.11.1", "3.9", "EUM not issued by the CI to be used"},
	    [RSP_CHAIN_EUICC_INVALID] = {"8.1.3", "6.1", "eUICC certificate invalid"},
	    [RSP_CHAIN_EUICC_EXPIRED] = {"8.1.3", "6.3", "eUICC certificate expired"},
	    [RSP_CHAIN_EUICC_NOT_YET_VALID] = {"8.1.3", "6.1", "eUICC certificate not yet valid"},
	    [RSP_CHAIN_EID_OUT_OF_RANGE] = {"8.1.3", "6.1",
					    "EID outside the EUM's permitted range"},
	};
	size_t i = (size_t)f < sizeof t / sizeof *t ? (size_t)f : RSP_CHAIN_EUICC_INVALID;
	*subject = t[i].s;
	*reason = t[i].r;
	*message = t[i].m;
}
