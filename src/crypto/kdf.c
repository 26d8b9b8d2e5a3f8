/*
 * kdf: the ANSI X9.63 key derivation function with SHA-256, which SGP.22
 * uses to turn the ECKA shared secret into the BPP session keys
 * (section 3.1.3.1; digest section 7.3):
 *   K = SHA256(Z || 00000001 || SharedInfo) || SHA256(Z || 00000002 || ...)
 * truncated to the length asked for. Implemented by OpenSSL's "X963KDF".
 */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "esim/crypto.h"

esim_err crypto_x963_kdf(const uint8_t *secret, size_t secret_len, const uint8_t *info,
			 size_t info_len, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[4], *p = params;
	esim_err err = ESIM_OK;

	if (secret == NULL || secret_len == 0 || out == NULL || out_len == 0 ||
	    (info == NULL && info_len > 0))
		return ESIM_E_ARG;
	kdf = EVP_KDF_fetch(NULL, "X963KDF", NULL);
	if (kdf == NULL)
		return ESIM_E_CRYPTO_OPENSSL;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return ESIM_E_NOMEM;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
	if (info_len > 0)
		*p++ =
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*p = OSSL_PARAM_construct_end();
	/* X9.63 caps the output at (2^32 - 1) hash blocks; OpenSSL refuses more */
	if (EVP_KDF_derive(ctx, out, out_len, params) != 1) {
		err = ESIM_E_CRYPTO_OPENSSL;
		ERR_clear_error();
	}
	EVP_KDF_CTX_free(ctx);
	return err;
}
