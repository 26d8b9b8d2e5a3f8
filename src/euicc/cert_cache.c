/*
 * cert_cache: the SM-DP+ certificates the eUICC has parsed and verified,
 * kept across sessions (SGP.22 5.7.13 AuthenticateServer step "verify
 * CERT.DPauth", 5.7.5 PrepareDownload "verify CERT.DPpb"; digest 6.3, 6.4).
 *
 * Every download presents the same CERT.DPauth and CERT.DPpb of the same
 * SM-DP+. Parsing one (our DER parser, then EVP_PKEY_fromdata) and
 * verifying its chain to the CI (an ECDSA verification) cost about 0.9 M
 * instructions per certificate, a third of the card's CPU per download.
 * The result of crypto_chain_verify depends only on the certificate's
 * bytes, the role asked for and the trust store, and the trust store does
 * not change while the eUICC runs (no clock either: validity is not
 * checked), so a certificate byte-for-byte equal to one verified before,
 * for the same role, is verified already. The signatures that change with
 * each session (serverSignature1, smdpSignature2, the
 * InitialiseSecureChannel signature) are verified every time, by the
 * callers, with the cached certificate's key.
 *
 * A small LRU of EUICC_CERT_CACHE parsed certificates; a certificate is
 * found by comparing all of its DER bytes. The session borrows its
 * CERT.DPauth and CERT.DPpb from here: entries the session uses are never
 * evicted. Certificates whose chain failed stay unverified (checked again
 * next time, and failing again).
 */
#include <string.h>

#include "euicc_int.h"

static bool in_use(const euicc *e, const crypto_cert *c)
{
	return c == e->sess.dpauth || c == e->sess.dppb;
}

esim_err euicc_cert_get(euicc *e, const uint8_t *der, size_t len, const crypto_cert **out)
{
	*out = NULL;
	struct euicc_cert_slot *victim = NULL;
	for (size_t i = 0; i < EUICC_CERT_CACHE; i++) {
		struct euicc_cert_slot *sl = &e->certs[i];
		if (sl->cert == NULL) { /* an empty slot first, else the least recently used */
			if (victim == NULL || victim->cert != NULL)
				victim = sl;
			continue;
		}
		size_t n;
		const uint8_t *p = crypto_cert_der(sl->cert, &n);
		if (n == len && memcmp(p, der, len) == 0) {
			sl->used = ++e->cert_clock;
			*out = sl->cert;
			return ESIM_OK;
		}
		if (!in_use(e, sl->cert) &&
		    (victim == NULL || (victim->cert != NULL && sl->used < victim->used)))
			victim = sl;
	}
	crypto_cert *c = NULL;
	esim_err err = crypto_cert_load(der, len, &c);
	if (err != ESIM_OK)
		return err;
	if (victim == NULL) { /* cannot happen: the session holds at most two */
		crypto_cert_free(c);
		return ESIM_E_INTERNAL;
	}
	crypto_cert_free(victim->cert);
	victim->cert = c;
	victim->verified = 0;
	victim->ci = NULL;
	victim->used = ++e->cert_clock;
	*out = c;
	return ESIM_OK;
}

esim_err euicc_cert_chain(euicc *e, const crypto_cert *cert, crypto_rsp_role role,
			  const crypto_cert **ci)
{
	*ci = NULL;
	struct euicc_cert_slot *sl = NULL;
	for (size_t i = 0; i < EUICC_CERT_CACHE && sl == NULL; i++)
		if (e->certs[i].cert == cert)
			sl = &e->certs[i];
	uint32_t bit = role >= 0 && role < 32 ? 1u << role : 0;
	if (sl != NULL && bit != 0 && (sl->verified & bit) != 0) {
		*ci = sl->ci;
		return ESIM_OK;
	}
	struct crypto_chain_opts opts = {.check_time = false}; /* a card has no clock */
	esim_err err = crypto_chain_verify(e->trust, cert, NULL, 0, role, &opts, ci);
	if (err == ESIM_OK && sl != NULL && bit != 0) {
		sl->verified |= bit;
		sl->ci = *ci;
	}
	return err;
}

void euicc_cert_cache_free(euicc *e)
{
	for (size_t i = 0; i < EUICC_CERT_CACHE; i++) {
		crypto_cert_free(e->certs[i].cert);
		memset(&e->certs[i], 0, sizeof e->certs[i]);
	}
}
