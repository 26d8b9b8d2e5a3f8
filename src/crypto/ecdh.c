/*
 * ecdh: ECKA-EG / ECDH as SGP.22 uses it for the bound profile package
 * (section 3.1.3.1 / 5.5): the SM-DP+ combines otSK.DP with otPK.EUICC, the
 * eUICC combines otSK.EUICC with otPK.DP, and both get the same shared
 * secret ShS, the 32-byte x-coordinate of the product point, which feeds the
 * X9.63 KDF (kdf.c, scp03t.c).
 *
 * Both keys must be on the same curve. A peer point is validated when it is
 * imported (crypto_key_from_point: on the curve), and here once more with
 * OpenSSL's quick public-key check (not infinity, coordinates in range, on
 * the curve) for peers that arrive as EVP_PKEYs. That is SP 800-56A partial
 * public-key validation; the full check's n * Q == infinity adds a scalar
 * multiplication and proves nothing more on P-256 and brainpoolP256r1,
 * whose cofactor is 1 (every point on the curve but infinity has order n).
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "esim/crypto.h"
#include "esim/util.h"

esim_err crypto_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t out[CRYPTO_ECDH_LEN])
{
	crypto_curve c_priv, c_peer;
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	uint8_t secret[CRYPTO_ECDH_LEN + 16];
	size_t len = sizeof secret;
	esim_err err;

	if (priv == NULL || peer == NULL || out == NULL)
		return ESIM_E_ARG;
	err = crypto_key_curve(priv, &c_priv);
	if (err != ESIM_OK)
		return err;
	err = crypto_key_curve(peer, &c_peer);
	if (err != ESIM_OK)
		return err;
	if (c_priv != c_peer)
		return ESIM_E_CRYPTO_CURVE_MISMATCH;
	if (!crypto_key_has_private(priv))
		return ESIM_E_CRYPTO_BAD_KEY;

	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	if (ctx == NULL)
		return ESIM_E_NOMEM;
	if (EVP_PKEY_derive_init(ctx) != 1) {
		err = ESIM_E_CRYPTO_OPENSSL;
		goto out;
	}
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
	if (chk == NULL) {
		err = ESIM_E_NOMEM;
		goto out;
	}
	/* validate_peer = 0 below: set_peer would run the full check */
	if (EVP_PKEY_public_check_quick(chk) != 1 ||
	    EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) != 1) {
		err = ESIM_E_CRYPTO_BAD_POINT;
		goto out;
	}
	if (EVP_PKEY_derive(ctx, secret, &len) != 1) {
		err = ESIM_E_CRYPTO_OPENSSL;
		goto out;
	}
	if (len != CRYPTO_ECDH_LEN) {
		err = ESIM_E_CRYPTO_OPENSSL;
		goto out;
	}
	memcpy(out, secret, CRYPTO_ECDH_LEN);
out:
	esim_wipe(secret, sizeof secret);
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	if (err != ESIM_OK)
		ERR_clear_error();
	return err;
}

esim_err crypto_ecdh_point(EVP_PKEY *priv, const uint8_t *peer_point, size_t len,
			   uint8_t out[CRYPTO_ECDH_LEN])
{
	EVP_PKEY *peer = NULL;
	esim_err err;

	if (priv == NULL || out == NULL)
		return ESIM_E_ARG;
	err = crypto_key_from_point_like(priv, peer_point, len, &peer);
	if (err != ESIM_OK)
		return err;
	err = crypto_ecdh(priv, peer, out);
	EVP_PKEY_free(peer);
	return err;
}
