/*
 * scp03t: protection of the Bound Profile Package (SGP.22 section 2.6.4 /
 * 5.5, "SCP03t", called BSP in v3; digest sections 7.3 and 7.4).
 *
 * Session keys: ShS from ECKA goes through the X9.63 KDF with
 * sharedInfo = keyType || keyLen || hostId-LV || EID-LV; the 48 output bytes
 * are MCV0, S-ENC and S-MAC, in that order.
 *
 * Each BPP segment (TLV 87/86 encrypted + MAC, 88 MAC only) is protected as
 *   ICV = AES-ECB(S-ENC, n as 16-byte big-endian); C = AES-CBC(S-ENC, ICV,
 *   P || 80 00..); n += 1; M = AES-CMAC(S-MAC, MCV || tag || L || C);
 *   MCV = M; wire = tag || L || C || M[0..7]
 * with n advancing for MAC-only segments too. The receiving side checks the
 * MAC in constant time before it decrypts anything, and changes its state
 * only once the whole segment was accepted, so a rejected segment can be
 * retried and an attacker learns nothing from the padding check.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "esim/crypto.h"
#include "esim/util.h"

#define BLK 16

esim_err crypto_aes_cmac(const uint8_t key[16], const uint8_t *data, size_t len, uint8_t out[16])
{
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[2];
	size_t outl = 0;
	esim_err err = ESIM_OK;

	if (key == NULL || out == NULL || (data == NULL && len > 0))
		return ESIM_E_ARG;
	mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	if (mac == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (ctx == NULL)
		return ESIM_E_NOMEM;
	params[0] =
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)"AES-128-CBC", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, 16, params) != 1 ||
	    (len > 0 && EVP_MAC_update(ctx, data, len) != 1) ||
	    EVP_MAC_final(ctx, out, &outl, 16) != 1 || outl != 16) {
		err = ESIM_E_CRYPTO_OPENSSL;
		ERR_clear_error();
	}
	EVP_MAC_CTX_free(ctx);
	return err;
}

/* ---- session keys ---------------------------------------------------------- */

esim_err crypto_bpp_shared_info(uint8_t key_type, uint8_t key_len, const uint8_t *host_id,
				size_t host_id_len, const uint8_t eid[CRYPTO_EID_LEN],
				uint8_t out[CRYPTO_BPP_SHARED_INFO_MAX], size_t *out_len)
{
	size_t n = 0;

	if (host_id == NULL || eid == NULL || out == NULL || out_len == NULL)
		return ESIM_E_ARG;
	*out_len = 0;
	if (host_id_len == 0 || host_id_len > CRYPTO_BPP_HOST_ID_MAX)
		return ESIM_E_CRYPTO_BAD_LENGTH;
	out[n++] = key_type;
	out[n++] = key_len;
	out[n++] = (uint8_t)host_id_len;
	memcpy(out + n, host_id, host_id_len);
	n += host_id_len;
	out[n++] = CRYPTO_EID_LEN;
	memcpy(out + n, eid, CRYPTO_EID_LEN);
	n += CRYPTO_EID_LEN;
	*out_len = n;
	return ESIM_OK;
}

esim_err crypto_bpp_derive_keys(const uint8_t *shs, size_t shs_len, uint8_t key_type,
				uint8_t key_len, const uint8_t *host_id, size_t host_id_len,
				const uint8_t eid[CRYPTO_EID_LEN], struct crypto_bpp_keys *out)
{
	uint8_t info[CRYPTO_BPP_SHARED_INFO_MAX];
	uint8_t k[3 * BLK];
	size_t info_len = 0;
	esim_err err;

	if (shs == NULL || out == NULL)
		return ESIM_E_ARG;
	if (key_type != CRYPTO_BPP_KEY_TYPE_AES || key_len != CRYPTO_BPP_KEY_LEN_16)
		return ESIM_E_CRYPTO_UNSUPPORTED_CRT;
	if (shs_len != CRYPTO_ECDH_LEN)
		return ESIM_E_CRYPTO_BAD_LENGTH;
	err = crypto_bpp_shared_info(key_type, key_len, host_id, host_id_len, eid, info, &info_len);
	if (err != ESIM_OK)
		return err;
	err = crypto_x963_kdf(shs, shs_len, info, info_len, k, sizeof k);
	if (err == ESIM_OK) {
		memcpy(out->mcv, k, BLK);
		memcpy(out->s_enc, k + BLK, BLK);
		memcpy(out->s_mac, k + 2 * BLK, BLK);
	}
	esim_wipe(k, sizeof k);
	return err;
}

void crypto_bpp_keys_wipe(struct crypto_bpp_keys *keys)
{
	if (keys != NULL)
		esim_wipe(keys, sizeof *keys);
}

/* ---- state ------------------------------------------------------------------- */

void crypto_scp03t_init(crypto_scp03t *st, const struct crypto_bpp_keys *keys)
{
	crypto_scp03t_replace_keys(st, keys->s_enc, keys->s_mac, keys->mcv);
}

void crypto_scp03t_replace_keys(crypto_scp03t *st, const uint8_t s_enc[16], const uint8_t s_mac[16],
				const uint8_t mcv[16])
{
	memcpy(st->s_enc, s_enc, BLK);
	memcpy(st->s_mac, s_mac, BLK);
	memcpy(st->mcv, mcv, BLK);
	st->n = 1;
}

void crypto_scp03t_clear(crypto_scp03t *st)
{
	if (st != NULL)
		esim_wipe(st, sizeof *st);
}

static bool tag_encrypts(uint8_t tag)
{
	return tag == CRYPTO_SCP03T_TAG_CFG || tag == CRYPTO_SCP03T_TAG_PROF;
}

static bool tag_known(uint8_t tag)
{
	return tag_encrypts(tag) || tag == CRYPTO_SCP03T_TAG_META;
}

/* Minimal BER/DER length encoding; returns the number of bytes written. */
static size_t put_len(size_t len, uint8_t out[5])
{
	if (len < 0x80) {
		out[0] = (uint8_t)len;
		return 1;
	}
	size_t nbytes = 0;
	for (size_t v = len; v > 0; v >>= 8)
		nbytes++;
	out[0] = (uint8_t)(0x80 | nbytes);
	for (size_t i = 0; i < nbytes; i++)
		out[1 + i] = (uint8_t)(len >> (8 * (nbytes - 1 - i)));
	return 1 + nbytes;
}

static size_t len_of_len(size_t len)
{
	uint8_t tmp[5];
	return put_len(len, tmp);
}

static size_t cipher_len(uint8_t tag, size_t plain_len)
{
	/* method 2 always adds at least the 80 byte */
	return tag_encrypts(tag) ? (plain_len / BLK + 1) * BLK : plain_len;
}

size_t crypto_scp03t_segment_len(uint8_t tag, size_t plain_len)
{
	if (!tag_known(tag) || plain_len > SIZE_MAX / 2)
		return 0;
	size_t v = cipher_len(tag, plain_len) + CRYPTO_SCP03T_MAC_LEN;
	return 1 + len_of_len(v) + v;
}

size_t crypto_scp03t_max_plain(uint8_t tag)
{
	if (!tag_known(tag))
		return 0;
	/* 1020 = tag(1) + 82 xx xx (3) + C + MAC(8): C <= 1008 */
	size_t c_max = CRYPTO_SCP03T_SEGMENT_MAX - 1 - 3 - CRYPTO_SCP03T_MAC_LEN;
	return tag_encrypts(tag) ? (c_max / BLK) * BLK - 1 : c_max;
}

/* The ICV of SCP03 encryption: the block counter, encrypted under S-ENC. */
static esim_err make_icv(const crypto_scp03t *st, uint64_t n, uint8_t icv[BLK])
{
	uint8_t ctr[BLK] = {0};
	EVP_CIPHER_CTX *c;
	int outl = 0;
	esim_err err = ESIM_OK;

	for (int i = 0; i < 8; i++)
		ctr[BLK - 1 - i] = (uint8_t)(n >> (8 * i));
	c = EVP_CIPHER_CTX_new();
	if (c == NULL)
		return ESIM_E_NOMEM;
	if (EVP_EncryptInit_ex2(c, EVP_aes_128_ecb(), st->s_enc, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    EVP_EncryptUpdate(c, icv, &outl, ctr, BLK) != 1 || outl != BLK) {
		err = ESIM_E_CRYPTO_OPENSSL;
		ERR_clear_error();
	}
	EVP_CIPHER_CTX_free(c);
	return err;
}

/* AES-128-CBC without OpenSSL padding over len (a multiple of 16) bytes. */
static esim_err cbc(const uint8_t key[BLK], const uint8_t iv[BLK], int enc, const uint8_t *in,
		    size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c;
	int outl = 0;
	esim_err err = ESIM_OK;

	if (len > INT32_MAX)
		return ESIM_E_TOO_LARGE;
	c = EVP_CIPHER_CTX_new();
	if (c == NULL)
		return ESIM_E_NOMEM;
	if (EVP_CipherInit_ex2(c, EVP_aes_128_cbc(), key, iv, enc, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    EVP_CipherUpdate(c, out, &outl, in, (int)len) != 1 || (size_t)outl != len) {
		err = ESIM_E_CRYPTO_OPENSSL;
		ERR_clear_error();
	}
	EVP_CIPHER_CTX_free(c);
	return err;
}

/* C-MAC over MCV || header || C with S-MAC. */
static esim_err seg_mac(const crypto_scp03t *st, const uint8_t *hdr, size_t hdr_len,
			const uint8_t *c, size_t c_len, uint8_t mac[BLK])
{
	EVP_MAC *m;
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[2];
	size_t outl = 0;
	esim_err err = ESIM_OK;

	m = EVP_MAC_fetch(NULL, "CMAC", NULL);
	if (m == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	ctx = EVP_MAC_CTX_new(m);
	EVP_MAC_free(m);
	if (ctx == NULL)
		return ESIM_E_NOMEM;
	params[0] =
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)"AES-128-CBC", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, st->s_mac, BLK, params) != 1 ||
	    EVP_MAC_update(ctx, st->mcv, BLK) != 1 || EVP_MAC_update(ctx, hdr, hdr_len) != 1 ||
	    (c_len > 0 && EVP_MAC_update(ctx, c, c_len) != 1) ||
	    EVP_MAC_final(ctx, mac, &outl, BLK) != 1 || outl != BLK) {
		err = ESIM_E_CRYPTO_OPENSSL;
		ERR_clear_error();
	}
	EVP_MAC_CTX_free(ctx);
	return err;
}

/* ---- protect ------------------------------------------------------------------ */

esim_err crypto_scp03t_protect(crypto_scp03t *st, uint8_t tag, const uint8_t *plain,
			       size_t plain_len, esim_buf *out)
{
	uint8_t hdr[6], icv[BLK], mac[BLK];
	size_t hdr_len, c_len, start;
	uint8_t *c;
	esim_err err;

	if (st == NULL || out == NULL || (plain == NULL && plain_len > 0) || !tag_known(tag))
		return ESIM_E_ARG;
	if (plain_len > crypto_scp03t_max_plain(tag))
		return ESIM_E_TOO_LARGE;
	if (st->n == UINT64_MAX)
		return ESIM_E_TOO_LARGE; /* never in practice: 2^64 segments */
	c_len = cipher_len(tag, plain_len);
	hdr[0] = tag;
	hdr_len = 1 + put_len(c_len + CRYPTO_SCP03T_MAC_LEN, hdr + 1);

	start = out->len;
	err = esim_buf_reserve(out, hdr_len + c_len + CRYPTO_SCP03T_MAC_LEN);
	if (err != ESIM_OK)
		return err;
	memcpy(out->data + start, hdr, hdr_len);
	c = out->data + start + hdr_len;
	if (plain_len > 0)
		memcpy(c, plain, plain_len);
	if (tag_encrypts(tag)) {
		c[plain_len] = 0x80;
		memset(c + plain_len + 1, 0, c_len - plain_len - 1);
		err = make_icv(st, st->n, icv);
		if (err == ESIM_OK)
			err = cbc(st->s_enc, icv, 1, c, c_len, c);
		esim_wipe(icv, sizeof icv);
	}
	if (err == ESIM_OK)
		err = seg_mac(st, hdr, hdr_len, c, c_len, mac);
	if (err != ESIM_OK) {
		/* the reserved space may still hold plaintext */
		esim_wipe(out->data + start, hdr_len + c_len);
		return err;
	}
	memcpy(c + c_len, mac, CRYPTO_SCP03T_MAC_LEN);
	out->len = start + hdr_len + c_len + CRYPTO_SCP03T_MAC_LEN;
	memcpy(st->mcv, mac, BLK);
	st->n++;
	return ESIM_OK;
}

/* ---- unprotect ----------------------------------------------------------------- */

/* The common receiving path: hdr is tag || L exactly as on the wire, value is
 * C || MAC8. */
static esim_err unprotect(crypto_scp03t *st, uint8_t tag, const uint8_t *hdr, size_t hdr_len,
			  const uint8_t *value, size_t value_len, esim_buf *out)
{
	uint8_t mac[BLK], icv[BLK];
	const uint8_t *c = value;
	size_t c_len, start, plain_len;
	uint8_t *p;
	esim_err err;

	if (!tag_known(tag))
		return ESIM_E_ARG;
	if (value_len < CRYPTO_SCP03T_MAC_LEN)
		return ESIM_E_CRYPTO_BAD_LENGTH;
	c_len = value_len - CRYPTO_SCP03T_MAC_LEN;
	if (tag_encrypts(tag) && (c_len == 0 || c_len % BLK != 0))
		return ESIM_E_CRYPTO_BAD_LENGTH;
	if (c_len > INT32_MAX || st->n == UINT64_MAX)
		return ESIM_E_TOO_LARGE;

	err = seg_mac(st, hdr, hdr_len, c, c_len, mac);
	if (err != ESIM_OK)
		return err;
	if (!esim_ct_equal(mac, c + c_len, CRYPTO_SCP03T_MAC_LEN))
		return ESIM_E_CRYPTO_MAC_INVALID;

	start = out->len;
	err = esim_buf_reserve(out, c_len);
	if (err != ESIM_OK)
		return err;
	p = out->data + start;
	plain_len = c_len;
	if (tag_encrypts(tag)) {
		err = make_icv(st, st->n, icv);
		if (err == ESIM_OK)
			err = cbc(st->s_enc, icv, 0, c, c_len, p);
		esim_wipe(icv, sizeof icv);
		if (err == ESIM_OK) {
			/* The MAC is already verified, so this check is no oracle.
			 * Padding is 80 followed by 0..15 zeros. */
			size_t i = c_len;
			while (i > 0 && c_len - i < BLK && p[i - 1] == 0x00)
				i--;
			if (i == 0 || c_len - i >= BLK || p[i - 1] != 0x80)
				err = ESIM_E_CRYPTO_BAD_PADDING;
			else
				plain_len = i - 1;
		}
		if (err != ESIM_OK) {
			esim_wipe(p, c_len);
			return err;
		}
		/* the padding bytes beyond plain_len are not secret */
	} else if (c_len > 0) {
		memcpy(p, c, c_len);
	}
	out->len = start + plain_len;
	memcpy(st->mcv, mac, BLK);
	st->n++;
	return ESIM_OK;
}

esim_err crypto_scp03t_unprotect(crypto_scp03t *st, uint8_t tag, const uint8_t *value,
				 size_t value_len, esim_buf *out)
{
	uint8_t hdr[6];
	size_t hdr_len;

	if (st == NULL || out == NULL || (value == NULL && value_len > 0))
		return ESIM_E_ARG;
	if (value_len > UINT32_MAX)
		return ESIM_E_TOO_LARGE;
	hdr[0] = tag;
	hdr_len = 1 + put_len(value_len, hdr + 1);
	return unprotect(st, tag, hdr, hdr_len, value, value_len, out);
}

esim_err crypto_scp03t_unprotect_tlv(crypto_scp03t *st, const uint8_t *tlv, size_t tlv_len,
				     esim_buf *out)
{
	size_t pos = 2, len = 0;

	if (st == NULL || out == NULL || tlv == NULL)
		return ESIM_E_ARG;
	if (tlv_len < 2)
		return ESIM_E_CRYPTO_BAD_LENGTH;
	if (!tag_known(tlv[0]))
		return ESIM_E_CRYPTO_BAD_LENGTH; /* not a BPP segment */
	if (tlv[1] < 0x80) {
		len = tlv[1];
	} else {
		/* any definite form: the MAC covers the bytes as sent */
		size_t nbytes = tlv[1] & 0x7f;
		if (nbytes == 0 || nbytes > 4 || tlv_len < 2 + nbytes)
			return ESIM_E_CRYPTO_BAD_LENGTH;
		for (size_t i = 0; i < nbytes; i++)
			len = (len << 8) | tlv[2 + i];
		pos = 2 + nbytes;
	}
	if (len != tlv_len - pos)
		return ESIM_E_CRYPTO_BAD_LENGTH;
	return unprotect(st, tlv[0], tlv, pos, tlv + pos, len, out);
}
