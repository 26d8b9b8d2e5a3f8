/*
 * trust: the set of CI certificates a verifier trusts (SGP.22 section 4.5.2.1
 * and 2.4: the eUICC stores CI public keys in its ECASD, the SM-DP+ and the
 * LPA keep a list of accepted CIs). Lookups are by SKI, which SGP.22 calls
 * the CI PKID: euiccCiPKIdListForVerification / ForSigning name CIs that way,
 * and every certificate names its issuer by AKI.
 *
 * A CI is admitted only when it carries the CI role and verifies as
 * self-signed, so a certificate that merely claims to be a root cannot
 * enter by mistake. Validity is not checked here; crypto_chain_verify does
 * that at the time it is asked about.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/cert.h"
#include "esim/util.h"

struct crypto_trust {
	crypto_cert **cis;
	size_t n, cap;
};

esim_err crypto_trust_new(crypto_trust **out)
{
	if (out == NULL)
		return ESIM_E_ARG;
	*out = calloc(1, sizeof **out);
	return *out ? ESIM_OK : ESIM_E_NOMEM;
}

void crypto_trust_free(crypto_trust *trust)
{
	if (trust == NULL)
		return;
	for (size_t i = 0; i < trust->n; i++)
		crypto_cert_free(trust->cis[i]);
	free(trust->cis);
	free(trust);
}

/* Order: role (NO_ROLE / WRONG_ROLE), SKI (NO_SKI), curve
 * (CRYPTO_UNSUPPORTED_CURVE), then the self-signature (SIG_ALG /
 * BAD_SIGNATURE: a CI issued by someone else is not a root). */
static esim_err check_ci(const crypto_cert *ci, uint8_t ski[CRYPTO_KEY_ID_MAX], size_t *ski_len)
{
	crypto_rsp_role role;
	crypto_curve curve;
	esim_err err;

	err = crypto_cert_role(ci, &role);
	if (err != ESIM_OK)
		return err;
	if (role != CRYPTO_ROLE_CI)
		return ESIM_E_CERT_WRONG_ROLE;
	err = crypto_cert_ski(ci, ski, ski_len);
	if (err != ESIM_OK)
		return err;
	err = crypto_cert_curve(ci, &curve);
	if (err != ESIM_OK)
		return err;
	return crypto_cert_verify_signed_by(ci, ci);
}

esim_err crypto_trust_add_ci(crypto_trust *trust, const crypto_cert *ci)
{
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t ski_len = 0, der_len = 0, old_len = 0;
	const uint8_t *der;
	const crypto_cert *old;
	crypto_cert *copy = NULL;
	esim_err err;

	if (trust == NULL || ci == NULL)
		return ESIM_E_ARG;
	err = check_ci(ci, ski, &ski_len);
	if (err != ESIM_OK)
		return err;
	der = crypto_cert_der(ci, &der_len);
	old = crypto_trust_find(trust, ski, ski_len);
	if (old != NULL) {
		const uint8_t *old_der = crypto_cert_der(old, &old_len);

		/* The same CI twice is harmless; two CIs under one PKID would
		 * make lookups ambiguous. */
		if (old_len == der_len && memcmp(old_der, der, der_len) == 0)
			return ESIM_OK;
		return ESIM_E_ARG;
	}
	if (trust->n == trust->cap) {
		size_t cap = trust->cap ? trust->cap * 2 : 4;
		crypto_cert **p = realloc(trust->cis, cap * sizeof *p);

		if (p == NULL)
			return ESIM_E_NOMEM;
		trust->cis = p;
		trust->cap = cap;
	}
	/* Our own copy, so the caller may free theirs. */
	err = crypto_cert_load(der, der_len, &copy);
	if (err != ESIM_OK)
		return err;
	trust->cis[trust->n++] = copy;
	return ESIM_OK;
}

esim_err crypto_trust_add_ci_file(crypto_trust *trust, const char *path)
{
	crypto_cert *ci = NULL;
	esim_err err;

	if (trust == NULL || path == NULL)
		return ESIM_E_ARG;
	err = crypto_cert_load_file(path, &ci);
	if (err != ESIM_OK)
		return err;
	err = crypto_trust_add_ci(trust, ci);
	crypto_cert_free(ci);
	return err;
}

const crypto_cert *crypto_trust_find(const crypto_trust *trust, const uint8_t *ski, size_t ski_len)
{
	uint8_t have[CRYPTO_KEY_ID_MAX];
	size_t have_len;

	if (trust == NULL || ski == NULL || ski_len == 0)
		return NULL;
	for (size_t i = 0; i < trust->n; i++) {
		if (crypto_cert_ski(trust->cis[i], have, &have_len) != ESIM_OK)
			continue;
		if (have_len == ski_len && memcmp(have, ski, ski_len) == 0)
			return trust->cis[i];
	}
	return NULL;
}

size_t crypto_trust_count(const crypto_trust *trust)
{
	return trust ? trust->n : 0;
}

const crypto_cert *crypto_trust_get(const crypto_trust *trust, size_t i)
{
	if (trust == NULL || i >= trust->n)
		return NULL;
	return trust->cis[i];
}
