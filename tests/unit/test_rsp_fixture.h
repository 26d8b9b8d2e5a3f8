/*
 * A private RSP PKI for the rsp tests, issued at run time with crypto_issue
 * so that these tests need nothing from ../shared: a CI, an EUM, an eUICC
 * (EID 89049032123451234512345678901235), DPauth and DPpb, and a trust
 * store holding the CI. Header-only: each test_rsp_*.c is its own program.
 */
#ifndef TEST_RSP_FIXTURE_H
#define TEST_RSP_FIXTURE_H

#include <string.h>
#include <time.h>

#include "esim/cert.h"
#include "esim/pki.h"
#include "testutil.h"

#define FIX_EID "89049032123451234512345678901235"

struct fix_pki {
	struct crypto_issued ci, eum, euicc, dpauth, dppb, other_ci, other_eum, other_euicc;
	crypto_trust *trust;
};

static inline void fix_issue(struct crypto_issued *out, crypto_issue_kind kind, crypto_curve curve,
			     const struct crypto_issued *issuer, const char *eid)
{
	time_t now = time(NULL);
	struct crypto_issue_params p = {
	    .kind = kind,
	    .curve = curve,
	    .eid = eid,
	    .not_before = now - 3600,
	    .not_after = now + 86400,
	};
	if (issuer) {
		p.issuer_der = issuer->der;
		p.issuer_der_len = issuer->der_len;
		p.issuer_key = issuer->key;
	}
	assert_esim(ESIM_OK, crypto_issue(&p, out));
}

static inline void fix_pki_init(struct fix_pki *f, crypto_curve curve)
{
	memset(f, 0, sizeof(*f));
	fix_issue(&f->ci, CRYPTO_ISSUE_CI, curve, NULL, NULL);
	fix_issue(&f->eum, CRYPTO_ISSUE_EUM, curve, &f->ci, FIX_EID);
	fix_issue(&f->euicc, CRYPTO_ISSUE_EUICC, curve, &f->eum, FIX_EID);
	fix_issue(&f->dpauth, CRYPTO_ISSUE_DP_AUTH, curve, &f->ci, NULL);
	fix_issue(&f->dppb, CRYPTO_ISSUE_DP_PB, curve, &f->ci, NULL);
	/* a second, untrusted hierarchy */
	fix_issue(&f->other_ci, CRYPTO_ISSUE_CI, curve, NULL, NULL);
	fix_issue(&f->other_eum, CRYPTO_ISSUE_EUM, curve, &f->other_ci, FIX_EID);
	fix_issue(&f->other_euicc, CRYPTO_ISSUE_EUICC, curve, &f->other_eum, FIX_EID);
	crypto_cert *ci = NULL;
	assert_esim(ESIM_OK, crypto_cert_load(f->ci.der, f->ci.der_len, &ci));
	assert_esim(ESIM_OK, crypto_trust_new(&f->trust));
	assert_esim(ESIM_OK, crypto_trust_add_ci(f->trust, ci));
	crypto_cert_free(ci);
}

static inline void fix_pki_clear(struct fix_pki *f)
{
	crypto_issued_clear(&f->ci);
	crypto_issued_clear(&f->eum);
	crypto_issued_clear(&f->euicc);
	crypto_issued_clear(&f->dpauth);
	crypto_issued_clear(&f->dppb);
	crypto_issued_clear(&f->other_ci);
	crypto_issued_clear(&f->other_eum);
	crypto_issued_clear(&f->other_euicc);
	crypto_trust_free(f->trust);
	memset(f, 0, sizeof(*f));
}

#endif
