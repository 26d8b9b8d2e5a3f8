/*
 * identity: what the eUICC's ECASD holds (SGP.22 2.4, digest 10): CERT.EUICC
 * with its private key SK.EUICC.ECDSA, CERT.EUM, and the public keys of the
 * CIs it trusts (here the CI certificates, their SKI being the CI PKID).
 *
 * A real eUICC carries one identity per CI it supports; this one takes one
 * or two (e.g. a NIST P-256 chain and a brainpoolP256r1 chain) and signs
 * with the one whose CI the SM-DP+ chose (euiccCiPKIdToBeUsed). At load time
 * each identity is checked as an SM-DP+ would check it: the key matches the
 * certificate, CERT.EUICC -> CERT.EUM -> a trusted CI verifies, and all
 * identities carry the same EID, so that a misconfigured card fails at
 * start-up rather than at the SM-DP+.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "euicc_int.h"

static esim_err load_cert(const char *path, struct euicc_blob blob, crypto_cert **out)
{
	if (path != NULL)
		return crypto_cert_load_file(path, out);
	if (blob.p == NULL)
		return ESIM_E_ARG;
	return crypto_cert_load(blob.p, blob.len, out);
}

static esim_err load_one(euicc *e, const struct euicc_identity_cfg *c, struct euicc_ident *id)
{
	esim_err err = load_cert(c->cert_path, c->cert, &id->cert);
	if (err == ESIM_OK)
		err = load_cert(c->eum_path, c->eum, &id->eum);
	if (err != ESIM_OK)
		return err;
	if (c->key_path != NULL) {
		err = crypto_key_load_private_file(c->key_path, &id->key);
		if (err != ESIM_OK)
			return err;
	} else if (c->key != NULL) {
		if (EVP_PKEY_up_ref(c->key) != 1)
			return ESIM_E_CRYPTO_OPENSSL;
		id->key = c->key;
	} else {
		return ESIM_E_ARG;
	}
	if (!crypto_key_has_private(id->key) ||
	    EVP_PKEY_eq(id->key, crypto_cert_pubkey(id->cert)) != 1)
		return ESIM_E_EUICC_IDENTITY;

	const crypto_cert *im[1] = {id->eum};
	const crypto_cert *ci = NULL;
	struct crypto_chain_opts opts = {.check_time = false};
	err = crypto_chain_verify(e->trust, id->cert, im, 1, CRYPTO_ROLE_EUICC, &opts, &ci);
	if (err != ESIM_OK)
		return ESIM_E_EUICC_IDENTITY;
	err = crypto_cert_ski(ci, id->ci_pkid, &id->ci_pkid_len);
	if (err != ESIM_OK)
		return err;
	return ESIM_OK;
}

static esim_err eid_from_text(const char *t, uint8_t out[EUICC_EID_LEN])
{
	for (size_t i = 0; i < EUICC_EID_LEN; i++) {
		char hi = t[2 * i], lo = t[2 * i + 1];
		if (hi < '0' || hi > '9' || lo < '0' || lo > '9')
			return ESIM_E_EUICC_IDENTITY;
		out[i] = (uint8_t)(((hi - '0') << 4) | (lo - '0'));
	}
	return ESIM_OK;
}

esim_err euicc_identity_load(euicc *e, const struct euicc_config *cfg)
{
	esim_err err = crypto_trust_new(&e->trust);
	if (err != ESIM_OK)
		return err;
	if (cfg->n_ci_paths > EUICC_MAX_CI || cfg->n_ci_ders > EUICC_MAX_CI ||
	    cfg->n_identities == 0 || cfg->n_identities > EUICC_MAX_IDENTITIES)
		return ESIM_E_ARG;
	for (size_t i = 0; i < cfg->n_ci_paths; i++) {
		err = crypto_trust_add_ci_file(e->trust, cfg->ci_paths[i]);
		if (err != ESIM_OK)
			return err;
	}
	for (size_t i = 0; i < cfg->n_ci_ders; i++) {
		crypto_cert *ci = NULL;
		err = crypto_cert_load(cfg->ci_ders[i].p, cfg->ci_ders[i].len, &ci);
		if (err == ESIM_OK)
			err = crypto_trust_add_ci(e->trust, ci);
		crypto_cert_free(ci);
		if (err != ESIM_OK)
			return err;
	}
	if (crypto_trust_count(e->trust) == 0)
		return ESIM_E_ARG;

	for (size_t i = 0; i < cfg->n_identities; i++) {
		struct euicc_ident *id = &e->ids[i];
		e->n_ids = i + 1;
		err = load_one(e, &cfg->identities[i], id);
		if (err != ESIM_OK)
			return err;
		char eid[CRYPTO_EID_DIGITS + 1];
		err = crypto_cert_eid(id->cert, eid);
		if (err != ESIM_OK)
			return ESIM_E_EUICC_IDENTITY;
		if (i == 0)
			memcpy(e->eid_text, eid, sizeof eid);
		else if (strcmp(eid, e->eid_text) != 0)
			return ESIM_E_EUICC_IDENTITY;
		for (size_t j = 0; j < i; j++)
			if (e->ids[j].ci_pkid_len == id->ci_pkid_len &&
			    memcmp(e->ids[j].ci_pkid, id->ci_pkid, id->ci_pkid_len) == 0)
				return ESIM_E_EUICC_IDENTITY; /* two identities for one CI */
	}
	return eid_from_text(e->eid_text, e->eid);
}

void euicc_identity_free(euicc *e)
{
	for (size_t i = 0; i < e->n_ids; i++) {
		crypto_cert_free(e->ids[i].cert);
		crypto_cert_free(e->ids[i].eum);
		EVP_PKEY_free(e->ids[i].key);
		memset(&e->ids[i], 0, sizeof e->ids[i]);
	}
	e->n_ids = 0;
	crypto_trust_free(e->trust);
	e->trust = NULL;
}

int euicc_identity_for_ci(const euicc *e, const uint8_t *pkid, size_t len)
{
	for (size_t i = 0; i < e->n_ids; i++)
		if (e->ids[i].ci_pkid_len == len && memcmp(e->ids[i].ci_pkid, pkid, len) == 0)
			return (int)i;
	return -1;
}
