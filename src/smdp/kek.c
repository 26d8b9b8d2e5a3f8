/*
 * The key-encryption key (KEK) of the SM-DP+ and the sealing of each
 * profile's Ki / OPc with it (digest 9.1: the SM-DP+ keeps the operator's
 * batch until download; 13.4: Ki / OPc go into the akaParameter elements).
 *
 * Ki and OPc are never written to the database in clear: the personalised
 * package keeps the template's own bytes in the akaParameter slots, and the
 * profile's values are sealed with XChaCha20-Poly1305 (libsodium) under
 * the KEK, with the ICCID as associated data so that a sealed blob moved to
 * another row does not open. A row stores the blob and the KEK's id (a
 * keyed BLAKE2b of a fixed label, which reveals nothing of the key), so
 * that `rekey` finds the rows still under an older key. They are opened
 * only in memory while the package is bound (getBoundProfilePackage) and
 * wiped right after.
 *
 * The KEK file holds 32 bytes, raw or as 64 hex digits. It must be a
 * regular file owned by the user running the SM-DP+ and neither readable
 * nor writable by group or others: anything else is refused with a message
 * that names the file and the fix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "smdp_int.h"

#define KEK_FILE_MAX 200

static const char kek_id_label[] = "esimkit smdp kek id v1";
static const char seal_ad_label[] = "esimkit smdp ki/opc v1|";

/* 32 raw bytes, or 64 hex digits with optional trailing white space. */
static bool kek_parse(const uint8_t *b, size_t n, uint8_t key[SMDP_KEK_LEN])
{
	if (n == SMDP_KEK_LEN) {
		memcpy(key, b, SMDP_KEK_LEN);
		return true;
	}
	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
		n--;
	if (n != 2 * SMDP_KEK_LEN)
		return false;
	char hex[2 * SMDP_KEK_LEN + 1];
	memcpy(hex, b, n);
	hex[n] = '\0';
	bool ok = esim_hex_decode_fixed(hex, key, SMDP_KEK_LEN) == ESIM_OK;
	sodium_memzero(hex, sizeof hex);
	return ok;
}

esim_err smdp_kek_load(const char *path, struct smdp_kek *out)
{
	if (!path || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof *out);
	if (sodium_init() < 0)
		return ESIM_E_CRYPTO_OPENSSL;
	uint8_t *buf = NULL;
	size_t got = 0;
	char why[600];
	esim_err err = esim_read_secret_file(path, KEK_FILE_MAX, &buf, &got, why, sizeof why);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smdp: KEK file %s\n", why);
		err = ESIM_E_SMDP_KEK;
	} else {
		if (!kek_parse(buf, got, out->key)) {
			fprintf(stderr,
				"esim-smdp: KEK file %s must hold 32 bytes, raw or as 64 hex"
				" digits (make one with: head -c 32 /dev/urandom > FILE)\n",
				path);
			err = ESIM_E_SMDP_KEK;
		}
		sodium_memzero(buf, got);
		free(buf);
	}
	if (err == ESIM_OK) {
		uint8_t id[SMDP_KEK_ID_LEN / 2];
		crypto_generichash(id, sizeof id, (const uint8_t *)kek_id_label,
				   sizeof kek_id_label - 1, out->key, SMDP_KEK_LEN);
		sodium_bin2hex(out->id, sizeof out->id, id, sizeof id);
		out->loaded = true;
	} else {
		sodium_memzero(out, sizeof *out);
	}
	return err;
}

void smdp_kek_clear(struct smdp_kek *k)
{
	if (k)
		sodium_memzero(k, sizeof *k);
}

/* Associated data: a label and the ICCID the blob belongs to. */
static size_t seal_ad(const char *iccid, uint8_t ad[64])
{
	size_t l = sizeof seal_ad_label - 1, n = strlen(iccid);
	if (n > 64 - l)
		n = 64 - l;
	memcpy(ad, seal_ad_label, l);
	memcpy(ad + l, iccid, n);
	return l + n;
}

esim_err smdp_keys_seal(const struct smdp_kek *k, const char *iccid, const uint8_t *ki,
			const uint8_t *opc, uint8_t out[SMDP_SEALED_LEN])
{
	if (!k || !k->loaded || !iccid || (!ki && !opc))
		return ESIM_E_ARG;
	uint8_t pt[SMDP_KEYS_PT_LEN] = {0};
	pt[0] = (uint8_t)((ki ? SMDP_PERS_KI : 0) | (opc ? SMDP_PERS_OPC : 0));
	if (ki)
		memcpy(pt + 1, ki, 16);
	if (opc)
		memcpy(pt + 17, opc, 16);
	uint8_t ad[64];
	size_t adl = seal_ad(iccid, ad);
	randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	unsigned long long cl = 0;
	int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &cl, pt, sizeof pt, ad, adl, NULL,
	    out, k->key);
	sodium_memzero(pt, sizeof pt);
	return rc == 0 ? ESIM_OK : ESIM_E_CRYPTO_OPENSSL;
}

esim_err smdp_keys_open(const struct smdp_kek *k, const char *iccid, const uint8_t *sealed,
			size_t len, uint8_t ki[16], uint8_t opc[16], unsigned *which)
{
	if (!k || !iccid || !sealed || !which)
		return ESIM_E_ARG;
	*which = 0;
	if (!k->loaded)
		return ESIM_E_SMDP_KEK;
	if (len != SMDP_SEALED_LEN)
		return ESIM_E_STORE_CORRUPT;
	uint8_t pt[SMDP_KEYS_PT_LEN];
	uint8_t ad[64];
	size_t adl = seal_ad(iccid, ad);
	unsigned long long pl = 0;
	const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pl, NULL, sealed + nb, len - nb, ad,
						       adl, sealed, k->key) != 0 ||
	    pl != sizeof pt) {
		sodium_memzero(pt, sizeof pt);
		return ESIM_E_SMDP_KEK; /* another KEK, or a blob of another row */
	}
	*which = pt[0] & (SMDP_PERS_KI | SMDP_PERS_OPC);
	memcpy(ki, pt + 1, 16);
	memcpy(opc, pt + 17, 16);
	sodium_memzero(pt, sizeof pt);
	return ESIM_OK;
}

esim_err smdp_keys_apply(const smdp *d, const char *iccid, const uint8_t *sealed, size_t len,
			 const char *kek_id, uint8_t *upp, size_t upp_len)
{
	if (!sealed)
		return ESIM_OK; /* the profile carries the template's own keys */
	if (!d->kek.loaded) {
		smdp_logf(d, "kek", "iccid=%s error=\"sealed Ki/OPc but no kek-file configured\"",
			  iccid);
		return ESIM_E_SMDP_KEK;
	}
	if (kek_id && strcmp(kek_id, d->kek.id) != 0) {
		smdp_logf(d, "kek", "iccid=%s error=\"sealed under KEK %s, configured KEK is %s\"",
			  iccid, kek_id, d->kek.id);
		return ESIM_E_SMDP_KEK;
	}
	uint8_t ki[16], opc[16];
	unsigned which = 0, done = 0;
	esim_err err = smdp_keys_open(&d->kek, iccid, sealed, len, ki, opc, &which);
	if (err == ESIM_OK)
		err = smdp_personalise_upp(upp, upp_len, NULL, which & SMDP_PERS_KI ? ki : NULL,
					   which & SMDP_PERS_OPC ? opc : NULL, &done);
	if (err == ESIM_OK && (done & which) != which)
		err = ESIM_E_STORE_CORRUPT; /* import checked that the slots exist */
	sodium_memzero(ki, sizeof ki);
	sodium_memzero(opc, sizeof opc);
	return err;
}
