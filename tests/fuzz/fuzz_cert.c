/*
 * Fuzz target for certificate loading (SGP.22 section 4.5): every
 * certificate an SM-DP+ or LPA receives (the eUICC and EUM certificates in
 * AuthenticateClient, the SM-DP+ certificates in the ES9+ answers) is
 * untrusted bytes that meet crypto_cert_load() first. On a successful load
 * every accessor of cert.h runs on the result, the certificate is checked
 * against itself as issuer, and it is offered to a CI trust store, so that
 * a malformed extension found by any of them is found here. Accessors must
 * agree with each other (abort() otherwise): a role that parsed has a
 * name, lengths stay in their buffers, an EID is 32 digits, a certificate
 * the trust store took is found again by its SKI.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/cert.h"

static void must(int cond)
{
	if (!cond)
		abort();
}

static void check_accessors(const crypto_cert *c)
{
	size_t len = 0;
	const uint8_t *der = crypto_cert_der(c, &len);
	must(der != NULL && len > 0);
	/* a key on an SGP.22 curve always has its EVP_PKEY */
	crypto_curve kc;
	if (crypto_cert_curve(c, &kc) == ESIM_OK)
		must(crypto_cert_pubkey(c) != NULL);
	else
		must(crypto_cert_pubkey(c) == NULL);

	crypto_rsp_role role = CRYPTO_ROLE_NONE;
	if (crypto_cert_role(c, &role) == ESIM_OK)
		must(crypto_rsp_role_name(role) != NULL);

	uint8_t id[CRYPTO_KEY_ID_MAX];
	size_t id_len = 0;
	if (crypto_cert_ski(c, id, &id_len) == ESIM_OK)
		must(id_len <= CRYPTO_KEY_ID_MAX);
	id_len = 0;
	if (crypto_cert_aki(c, id, &id_len) == ESIM_OK)
		must(id_len <= CRYPTO_KEY_ID_MAX);

	char eid[CRYPTO_EID_DIGITS + 1];
	if (crypto_cert_eid(c, eid) == ESIM_OK) {
		must(strlen(eid) == CRYPTO_EID_DIGITS);
		(void)crypto_eid_check_digits(eid);
		/* the certificate as its own EUM: its EIN range (if any) */
		(void)crypto_cert_eid_permitted(c, eid);
	}
	(void)crypto_cert_eid_permitted(c, "89049032123451234512345678901235");

	crypto_curve curve;
	if (crypto_cert_curve(c, &curve) == ESIM_OK)
		must(crypto_curve_name(curve) != NULL);

	(void)crypto_cert_check_time(c, 0);
	(void)crypto_cert_check_time(c, (time_t)1700000000);
	(void)crypto_cert_check_time(c, (time_t)4102444800); /* 2100 */

	char oid[128];
	if (crypto_cert_registered_id(c, oid, sizeof oid) == ESIM_OK)
		must(memchr(oid, '\0', sizeof oid) != NULL);
	char tiny[4];
	(void)crypto_cert_registered_id(c, tiny, sizeof tiny);

	(void)crypto_cert_verify_signed_by(c, c);
	(void)crypto_cert_check_ca(c);
	(void)crypto_cert_check_digital_signature(c);
}

static void check_trust(const crypto_cert *c)
{
	crypto_trust *t = NULL;
	if (crypto_trust_new(&t) != ESIM_OK)
		return;
	if (crypto_trust_add_ci(t, c) == ESIM_OK) {
		must(crypto_trust_count(t) == 1);
		must(crypto_trust_get(t, 0) != NULL);
		uint8_t ski[CRYPTO_KEY_ID_MAX];
		size_t n = 0;
		must(crypto_cert_ski(c, ski, &n) == ESIM_OK);
		must(crypto_trust_find(t, ski, n) != NULL);
		/* a self-signed CI chains to itself, whatever the role asked */
		struct crypto_chain_opts opts = {.check_time = false};
		const crypto_cert *ci = NULL;
		(void)crypto_chain_verify(t, c, NULL, 0, CRYPTO_ROLE_DP_AUTH, &opts, &ci);
	}
	crypto_trust_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	crypto_cert *c = NULL;
	if (crypto_cert_load(data, size, &c) != ESIM_OK) {
		must(c == NULL);
		return 0;
	}
	must(c != NULL);
	check_accessors(c);
	check_trust(c);

	/* the bytes it kept load again to the same DER */
	size_t len = 0;
	const uint8_t *der = crypto_cert_der(c, &len);
	crypto_cert *again = NULL;
	must(crypto_cert_load(der, len, &again) == ESIM_OK);
	size_t len2 = 0;
	const uint8_t *der2 = crypto_cert_der(again, &len2);
	must(len2 == len && memcmp(der, der2, len) == 0);
	crypto_cert_free(again);
	crypto_cert_free(c);
	return 0;
}
