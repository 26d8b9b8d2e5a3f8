/*
 * chain: verify an RSP certificate up to a trusted CI, by hand (SGP.22
 * section 4.5.2 and 5.6.13 / 3.1.3.2 steps; digest 10.4).
 *
 * Why not X509_verify_cert: the SGP.26 EUM certificate constrains eUICC
 * subjects with a directoryName (O=..., serialNumber=<EIN prefix>) that the
 * eUICC subject does not literally start with, so RFC 5280 name-constraint
 * processing rejects a chain that SGP.22 accepts (X509_V_ERR_PERMITTED_
 * VIOLATION). SGP.22's rule is only "the EID starts with a permitted
 * prefix". The chains are also short and fixed (Variant O):
 *
 *   eUICC -> EUM -> CI        DPauth / DPpb / DPtls / DSauth / DStls -> CI
 *
 * so each link is found by AKI -> SKI and checked explicitly. v3 SubCA
 * variants (A/B/C) are not built: such a chain ends in UNKNOWN_CI or
 * MISSING_ISSUER.
 *
 * Order of checks; the first failure is returned, so each defect has one
 * answer and a caller can map it to an SGP.22 status code:
 *  1. the leaf's own profile: role present (NO_ROLE) and the required one
 *     (WRONG_ROLE), SKI (NO_SKI), AKI (NO_AKI; a CI leaf needs none).
 *  2. the path, by AKI -> SKI:
 *     - eUICC: the issuer must be one of the intermediates (an EUM). No
 *       intermediate with that SKI -> MISSING_ISSUER (also when the AKI
 *       names a trusted CI: the EUM level is missing), or NO_SKI when some
 *       intermediate could not be identified for lack of an SKI. The EUM's
 *       AKI (NO_AKI) must name a trusted CI, else UNKNOWN_CI.
 *     - EUM, DP and DS leaves: the AKI must name a trusted CI, else
 *       UNKNOWN_CI; intermediates are not used.
 *     - CI leaf: it must itself be in the trust store (UNKNOWN_CI).
 *     Building the path first means that "who signed this" is answered
 *     before anything is said about the certificates' contents: an EUM under
 *     an unknown CI is UNKNOWN_CI whatever else is wrong with it.
 *  3. curves: every key on P-256 or brainpoolP256r1
 *     (CRYPTO_UNSUPPORTED_CURVE), all on the same one (CRYPTO_CURVE_MISMATCH),
 *     as SGP.22 section 2.6.5 requires of a chain.
 *  4. validity, when opts->check_time: leaf, EUM, CI in that order
 *     (EXPIRED / NOT_YET_VALID). Before the signatures and the contents, so
 *     that an expired certificate reads as expired (SGP.26's expired EUM
 *     also has a wrong policy and no basicConstraints).
 *  5. signatures: leaf by its issuer, EUM by the CI (SIG_ALG /
 *     BAD_SIGNATURE). The CI's self-signature was checked when trusted.
 *  6. the issuers' rights: the EUM's role (NO_ROLE / WRONG_ROLE) and CA
 *     rights (NOT_CA: basicConstraints CA and keyCertSign); the CI's CA
 *     rights (NOT_CA).
 *  7. the leaf's key usage: digitalSignature for eUICC, DP and DS leaves
 *     (KEY_USAGE); CA rights for an EUM or CI leaf (NOT_CA).
 *  8. eUICC only: the EID, 32 digits in the subject serialNumber (NO_EID),
 *     within a prefix the EUM permits (EID_OUT_OF_RANGE). Check digits are
 *     not enforced here (see cert.c).
 */
#include <string.h>

#include "esim/cert.h"

#define CHAIN_MAX 3 /* eUICC, EUM, CI */

static bool role_is_leaf(crypto_rsp_role r)
{
	return r >= CRYPTO_ROLE_CI && r <= CRYPTO_ROLE_DS_AUTH;
}

static const crypto_cert *find_intermediate(const crypto_cert *const *im, size_t n,
					    const uint8_t *aki, size_t aki_len, esim_err *err)
{
	uint8_t ski[CRYPTO_KEY_ID_MAX];
	size_t ski_len;
	bool unnamed = false;

	for (size_t i = 0; i < n; i++) {
		if (im[i] == NULL || crypto_cert_ski(im[i], ski, &ski_len) != ESIM_OK) {
			unnamed = true;
			continue;
		}
		if (ski_len == aki_len && memcmp(ski, aki, aki_len) == 0) {
			*err = ESIM_OK;
			return im[i];
		}
	}
	*err = unnamed ? ESIM_E_CERT_NO_SKI : ESIM_E_CERT_MISSING_ISSUER;
	return NULL;
}

/* The trusted CI named by cert's AKI. */
static esim_err find_ci(const crypto_trust *trust, const crypto_cert *cert, const crypto_cert **ci)
{
	uint8_t aki[CRYPTO_KEY_ID_MAX];
	size_t aki_len;
	esim_err err = crypto_cert_aki(cert, aki, &aki_len);

	if (err != ESIM_OK)
		return err;
	*ci = crypto_trust_find(trust, aki, aki_len);
	return *ci ? ESIM_OK : ESIM_E_CERT_UNKNOWN_CI;
}

/* Step 1. */
static esim_err check_leaf_profile(const crypto_cert *leaf, crypto_rsp_role want)
{
	uint8_t id[CRYPTO_KEY_ID_MAX];
	size_t len;
	crypto_rsp_role role;
	esim_err err;

	err = crypto_cert_role(leaf, &role);
	if (err != ESIM_OK)
		return err;
	if (role != want)
		return ESIM_E_CERT_WRONG_ROLE;
	err = crypto_cert_ski(leaf, id, &len);
	if (err != ESIM_OK || want == CRYPTO_ROLE_CI)
		return err;
	return crypto_cert_aki(leaf, id, &len);
}

/* Step 2: path[0] = leaf ... path[*depth - 1] = the trusted CI. */
static esim_err build_path(const crypto_trust *trust, const crypto_cert *leaf,
			   const crypto_cert *const *im, size_t n_im, crypto_rsp_role role,
			   const crypto_cert *path[CHAIN_MAX], size_t *depth)
{
	uint8_t id[CRYPTO_KEY_ID_MAX];
	size_t id_len, der_len, ci_len;
	const crypto_cert *eum, *ci;
	esim_err err;

	path[0] = leaf;
	if (role == CRYPTO_ROLE_CI) {
		const uint8_t *der = crypto_cert_der(leaf, &der_len), *ci_der;

		err = crypto_cert_ski(leaf, id, &id_len);
		if (err != ESIM_OK)
			return err;
		ci = crypto_trust_find(trust, id, id_len);
		if (ci == NULL)
			return ESIM_E_CERT_UNKNOWN_CI;
		ci_der = crypto_cert_der(ci, &ci_len);
		if (ci_len != der_len || memcmp(ci_der, der, der_len) != 0)
			return ESIM_E_CERT_UNKNOWN_CI;
		path[0] = ci; /* the same bytes; ci_out then points into trust */
		*depth = 1;
		return ESIM_OK;
	}
	if (role != CRYPTO_ROLE_EUICC) {
		err = find_ci(trust, leaf, &ci);
		if (err != ESIM_OK)
			return err;
		path[1] = ci;
		*depth = 2;
		return ESIM_OK;
	}
	err = crypto_cert_aki(leaf, id, &id_len);
	if (err != ESIM_OK)
		return err;
	eum = find_intermediate(im, n_im, id, id_len, &err);
	if (eum == NULL)
		return err;
	err = find_ci(trust, eum, &ci);
	if (err != ESIM_OK)
		return err;
	path[1] = eum;
	path[2] = ci;
	*depth = 3;
	return ESIM_OK;
}

/* Step 3. */
static esim_err check_curves(const crypto_cert *const *path, size_t depth)
{
	crypto_curve first = CRYPTO_CURVE_UNKNOWN, c;

	for (size_t i = 0; i < depth; i++) {
		esim_err err = crypto_cert_curve(path[i], &c);

		if (err != ESIM_OK)
			return err;
		if (i == 0)
			first = c;
		else if (c != first)
			return ESIM_E_CRYPTO_CURVE_MISMATCH;
	}
	return ESIM_OK;
}

/* Step 6: the EUM (when present) and the CI as issuers. */
static esim_err check_issuers(const crypto_cert *const *path, size_t depth)
{
	crypto_rsp_role role;
	esim_err err;

	if (depth == 3) {
		err = crypto_cert_role(path[1], &role);
		if (err != ESIM_OK)
			return err;
		if (role != CRYPTO_ROLE_EUM)
			return ESIM_E_CERT_WRONG_ROLE;
		err = crypto_cert_check_ca(path[1]);
		if (err != ESIM_OK)
			return err;
	}
	return crypto_cert_check_ca(path[depth - 1]);
}

esim_err crypto_chain_verify(const crypto_trust *trust, const crypto_cert *leaf,
			     const crypto_cert *const *intermediates, size_t n_intermediates,
			     crypto_rsp_role leaf_role, const struct crypto_chain_opts *opts,
			     const crypto_cert **ci_out)
{
	const crypto_cert *path[CHAIN_MAX] = {NULL};
	size_t depth = 0;
	char eid[CRYPTO_EID_DIGITS + 1];
	esim_err err;

	if (ci_out)
		*ci_out = NULL;
	if (trust == NULL || leaf == NULL || (intermediates == NULL && n_intermediates > 0) ||
	    !role_is_leaf(leaf_role))
		return ESIM_E_ARG;

	err = check_leaf_profile(leaf, leaf_role);
	if (err != ESIM_OK)
		return err;
	err = build_path(trust, leaf, intermediates, n_intermediates, leaf_role, path, &depth);
	if (err != ESIM_OK)
		return err;
	err = check_curves(path, depth);
	if (err != ESIM_OK)
		return err;
	if (opts != NULL && opts->check_time) {
		for (size_t i = 0; i < depth; i++) {
			err = crypto_cert_check_time(path[i], opts->now);
			if (err != ESIM_OK)
				return err;
		}
	}
	for (size_t i = 0; i + 1 < depth; i++) {
		err = crypto_cert_verify_signed_by(path[i], path[i + 1]);
		if (err != ESIM_OK)
			return err;
	}
	err = check_issuers(path, depth);
	if (err != ESIM_OK)
		return err;
	if (leaf_role == CRYPTO_ROLE_EUM || leaf_role == CRYPTO_ROLE_CI)
		err = crypto_cert_check_ca(leaf);
	else
		err = crypto_cert_check_digital_signature(leaf);
	if (err != ESIM_OK)
		return err;
	if (leaf_role == CRYPTO_ROLE_EUICC) {
		err = crypto_cert_eid(leaf, eid);
		if (err != ESIM_OK)
			return err;
		err = crypto_cert_eid_permitted(path[1], eid);
		if (err != ESIM_OK)
			return err;
	}
	if (ci_out)
		*ci_out = path[depth - 1];
	return ESIM_OK;
}
