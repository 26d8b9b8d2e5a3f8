/*
 * The virtual eUICC's side of common mutual authentication, through APDUs,
 * with the test playing the SM-DP+ with the rsp builders (digest 6.3, 6.4,
 * 6.7): AuthenticateServer and PrepareDownload accepted, then each refusal
 * with its specified code: no session (4), replayed request (4), wrong
 * challenge (6), bad serverSignature1 (2), SM-DP+ under an untrusted CI
 * (7), a certificate of the wrong role (5 / 1), a bad smdpSignature2 (2),
 * another transaction (5), missing hashCc when required (127), DPpb under
 * another CI (1); CancelSession signed with the SM-DP+ OID, and refused for
 * an unknown transaction (5). Each negative case also checks that the
 * stored state (profiles, notifications) did not change.
 */
#include "euicc_harness.h"

static char top_dir[400];
static char pki_dir[512];
static char pki2_dir[512]; /* another CI: untrusted by the card */

static int group_setup(void **state)
{
	(void)state;
	char *d = test_mkdtemp();
	snprintf(top_dir, sizeof top_dir, "%s", d);
	free(d);
	snprintf(pki_dir, sizeof pki_dir, "%s/pki", top_dir);
	snprintf(pki2_dir, sizeof pki2_dir, "%s/pki2", top_dir);
	h_pki_init(pki_dir, H_EID);
	h_pki_init(pki2_dir, H_EID);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(top_dir);
	return 0;
}

struct fixture {
	struct harness h;
	struct euicc_config cfg;
	char paths[2][4][700];
	struct h_smdp dp;
	esim_buf before_profiles, before_notifs;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char *d = test_mkdtemp();
	snprintf(f->h.dir, sizeof f->h.dir, "%s", d);
	free(d);
	h_identity(&f->cfg, pki_dir, "nist", f->paths[0]);
	h_identity(&f->cfg, pki_dir, "brp", f->paths[1]);
	h_start_cfg(&f->h, &f->cfg);
	h_smdp_from_pki(&f->dp, pki_dir, "nist");
	h_es10_hex(&f->h, "BF2D00", &f->before_profiles);
	h_es10_hex(&f->h, "BF2800", &f->before_notifs);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	h_smdp_free(&f->dp);
	if (f->h.e != NULL)
		h_stop(&f->h);
	esim_buf_free(&f->before_profiles);
	esim_buf_free(&f->before_notifs);
	test_rm_rf(f->h.dir);
	free(f);
	return 0;
}

/* Profiles and notifications as they were at setup. */
static void assert_store_unchanged(struct fixture *f)
{
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2D00", &r);
	h_bytes_equal(&r, &f->before_profiles);
	h_es10_hex(&f->h, "BF2800", &r);
	h_bytes_equal(&r, &f->before_notifs);
	esim_buf_free(&r);
}

static void test_authenticate_both_curves(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	/* the brainpool identity is chosen for the brainpool CI */
	struct h_smdp brp;
	h_smdp_from_pki(&brp, pki_dir, "brp");
	assert_int_equal(h_authenticate(&f->h, &brp), 0);
	assert_int_equal(h_prepare(&f->h, &brp, false, NULL), 0);
	h_smdp_free(&brp);
	assert_store_unchanged(f);
}

static void test_no_session_and_replay(void **state)
{
	struct fixture *f = *state;
	uint8_t ch[16] = {0}, *req = NULL;
	size_t len;
	/* no GetEUICCChallenge since the card was reset */
	h_auth_req(&f->dp, ch, 0, false, &req, &len);
	assert_int_equal(h_authenticate_req(&f->h, &f->dp, req, len), 4);
	free(req);

	h_challenge(&f->h, ch);
	h_auth_req(&f->dp, ch, 0, false, &req, &len);
	assert_int_equal(h_authenticate_req(&f->h, &f->dp, req, len), 0);
	/* the same request again: the session is past that step */
	assert_int_equal(h_authenticate_req(&f->h, &f->dp, req, len), 4);
	/* and after a new challenge, the old one no longer matches */
	uint8_t ch2[16];
	h_challenge(&f->h, ch2);
	assert_int_equal(h_authenticate_req(&f->h, &f->dp, req, len), 6);
	free(req);
	assert_store_unchanged(f);
}

static void test_wrong_challenge(void **state)
{
	struct fixture *f = *state;
	uint8_t ch[16], *req = NULL;
	size_t len;
	h_challenge(&f->h, ch);
	ch[0] ^= 0xFF;
	h_auth_req(&f->dp, ch, 0, false, &req, &len);
	assert_int_equal(h_authenticate_req(&f->h, &f->dp, req, len), 6);
	free(req);
	assert_store_unchanged(f);
}

static void test_bad_server_signature(void **state)
{
	struct fixture *f = *state;
	uint8_t ch[16], *req = NULL;
	size_t len;
	h_challenge(&f->h, ch);
	h_auth_req(&f->dp, ch, H_FLIP_SIG1, false, &req, &len);
	assert_int_equal(h_authenticate_req(&f->h, &f->dp, req, len), 2);
	free(req);
	assert_store_unchanged(f);
}

static void test_untrusted_ci(void **state)
{
	struct fixture *f = *state;
	struct h_smdp other;
	h_smdp_from_pki(&other, pki2_dir, "nist");
	/* the SM-DP+ asks for a CI the card has no identity under */
	assert_int_equal(h_authenticate(&f->h, &other), 7);
	/* or names our CI but presents a DPauth from another CI */
	memcpy(other.ci_pkid_tlv, f->dp.ci_pkid_tlv, sizeof other.ci_pkid_tlv);
	uint8_t ch[16], *req = NULL;
	size_t len;
	h_challenge(&f->h, ch);
	h_auth_req(&other, ch, 0, false, &req, &len);
	esim_buf r = ESIM_BUF_INIT;
	h_es10(&f->h, req, len, &r);
	static const uint32_t path[] = {0xA1, 0};
	assert_int_equal(h_int_at(&r, 0xBF38, path, 0x02), 7);
	esim_buf_free(&r);
	free(req);
	h_smdp_free(&other);
	assert_store_unchanged(f);
}

static void test_wrong_role(void **state)
{
	struct fixture *f = *state;
	/* CERT.DPpb (and its key) where CERT.DPauth belongs: invalidOid */
	struct h_smdp d;
	char p[4][700];
	snprintf(p[0], 700, "%s/nist/dppb.der", pki_dir);
	snprintf(p[1], 700, "%s/nist/dppb.key.pem", pki_dir);
	snprintf(p[2], 700, "%s/nist/dpauth.der", pki_dir);
	snprintf(p[3], 700, "%s/nist/dpauth.key.pem", pki_dir);
	char ci[700];
	snprintf(ci, sizeof ci, "%s/nist/ci.der", pki_dir);
	h_smdp_load(&d, p[0], p[1], p[2], p[3], ci);
	assert_int_equal(h_authenticate(&f->h, &d), 5);
	h_smdp_free(&d);
	/* CERT.DPauth where CERT.DPpb belongs: invalidCertificate */
	h_smdp_load(&d, p[2], p[3], p[2], p[3], ci);
	assert_int_equal(h_authenticate(&f->h, &d), 0);
	assert_int_equal(h_prepare(&f->h, &d, false, NULL), 1);
	h_smdp_free(&d);
	assert_store_unchanged(f);
}

/* The card keeps the SM-DP+ certificates it verified (cert_cache.c): a
 * cached certificate is still refused in the other role, the signatures
 * made with it are still checked, a certificate from another CI is still
 * refused after ours were cached, and more distinct certificates than the
 * cache holds (8) evict without breaking the next download. */
static void test_cached_certificates(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	/* both verified and cached: a second session hits the cache */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	/* a bad serverSignature1 under the cached CERT.DPauth */
	uint8_t ch[16], *req = NULL;
	size_t len;
	h_challenge(&f->h, ch);
	h_auth_req(&f->dp, ch, H_FLIP_SIG1, false, &req, &len);
	assert_int_equal(h_authenticate_req(&f->h, &f->dp, req, len), 2);
	free(req);
	/* the cached CERT.DPpb as CERT.DPauth (5), the cached CERT.DPauth as
	 * CERT.DPpb (1): verified for one role is not verified for another */
	char p[4][700], ci[700];
	snprintf(p[0], 700, "%s/nist/dppb.der", pki_dir);
	snprintf(p[1], 700, "%s/nist/dppb.key.pem", pki_dir);
	snprintf(p[2], 700, "%s/nist/dpauth.der", pki_dir);
	snprintf(p[3], 700, "%s/nist/dpauth.key.pem", pki_dir);
	snprintf(ci, sizeof ci, "%s/nist/ci.der", pki_dir);
	struct h_smdp d;
	h_smdp_load(&d, p[0], p[1], p[2], p[3], ci);
	assert_int_equal(h_authenticate(&f->h, &d), 5);
	h_smdp_free(&d);
	h_smdp_load(&d, p[2], p[3], p[2], p[3], ci);
	assert_int_equal(h_authenticate(&f->h, &d), 0);
	assert_int_equal(h_prepare(&f->h, &d, false, NULL), 1);
	h_smdp_free(&d);
	/* CERT.DPauth with a forged signature (its last byte changed), twice:
	 * invalidCertificate both times, also once it sits in the cache */
	uint8_t *der = NULL;
	size_t der_len = 0;
	assert_esim(ESIM_OK, esim_read_file(p[2], 64 * 1024, &der, &der_len));
	der[der_len - 1] ^= 0x01;
	char forged[760];
	snprintf(forged, sizeof forged, "%s/forged-dpauth.der", f->h.dir);
	FILE *fp = fopen(forged, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(der, 1, der_len, fp), der_len);
	fclose(fp);
	free(der);
	h_smdp_load(&d, forged, p[3], p[0], p[1], ci);
	assert_int_equal(h_authenticate(&f->h, &d), 1);
	assert_int_equal(h_authenticate(&f->h, &d), 1);
	h_smdp_free(&d);
	/* another CI's CERT.DPauth naming our CI's PKID: still ciPKUnknown */
	struct h_smdp other;
	h_smdp_from_pki(&other, pki2_dir, "nist");
	memcpy(other.ci_pkid_tlv, f->dp.ci_pkid_tlv, sizeof other.ci_pkid_tlv);
	h_challenge(&f->h, ch);
	h_auth_req(&other, ch, 0, false, &req, &len);
	esim_buf r = ESIM_BUF_INIT;
	h_es10(&f->h, req, len, &r);
	static const uint32_t path[] = {0xA1, 0};
	assert_int_equal(h_int_at(&r, 0xBF38, path, 0x02), 7);
	esim_buf_free(&r);
	free(req);
	h_smdp_free(&other);
	/* more distinct certificates than the cache holds: 12, from both
	 * curves of both PKIs (the other PKI's with our CI's PKID, so that the
	 * card parses them and finds their CI unknown) */
	const char *dirs[2] = {pki_dir, pki2_dir}, *curves[2] = {"nist", "brp"};
	const char *files[3] = {"dpauth", "dppb", "dptls"};
	struct h_smdp ours_brp;
	h_smdp_from_pki(&ours_brp, pki_dir, "brp");
	for (int k = 0; k < 2; k++)
		for (int c = 0; c < 2; c++)
			for (int i = 0; i < 3; i++) {
				snprintf(p[0], 700, "%s/%s/%s.der", dirs[k], curves[c], files[i]);
				snprintf(p[1], 700, "%s/%s/%s.key.pem", dirs[k], curves[c],
					 files[i]);
				snprintf(p[2], 700, "%s/%s/dppb.der", dirs[k], curves[c]);
				snprintf(p[3], 700, "%s/%s/dppb.key.pem", dirs[k], curves[c]);
				snprintf(ci, sizeof ci, "%s/%s/ci.der", dirs[k], curves[c]);
				h_smdp_load(&d, p[0], p[1], p[2], p[3], ci);
				if (k == 1)
					memcpy(d.ci_pkid_tlv,
					       (c == 0 ? &f->dp : &ours_brp)->ci_pkid_tlv,
					       sizeof d.ci_pkid_tlv);
				int want = k == 1 ? 7 : i == 0 ? 0 : 5;
				assert_int_equal(h_authenticate(&f->h, &d), want);
				h_smdp_free(&d);
			}
	h_smdp_free(&ours_brp);
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	assert_store_unchanged(f);
}

static void test_prepare_refusals(void **state)
{
	struct fixture *f = *state;
	uint8_t *req = NULL;
	size_t len;
	/* no authenticated session */
	h_challenge(&f->h, (uint8_t[16]){0});
	assert_esim(ESIM_OK, rsp_txid_random(&f->dp.txid));
	h_prepare_req(&f->dp, false, NULL, NULL, 0, &req, &len);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, len, NULL), 4);
	free(req);
	/* bad smdpSignature2 */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	h_prepare_req(&f->dp, false, NULL, NULL, H_FLIP_SIG2, &req, &len);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, len, NULL), 2);
	free(req);
	/* another transaction id, correctly signed */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	rsp_txid real = f->dp.txid;
	assert_esim(ESIM_OK, rsp_txid_random(&f->dp.txid));
	h_prepare_req(&f->dp, false, NULL, NULL, 0, &req, &len);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, len, NULL), 5);
	free(req);
	f->dp.txid = real;
	/* confirmation code required but no hashCc: the eUICC refuses */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, true, NULL), 127);
	/* with it, accepted, and hashCc is signed back for the SM-DP+ to check */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	uint8_t hash[32];
	assert_esim(ESIM_OK, rsp_hash_cc("12345678", 8, &f->dp.txid, hash));
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash), 0);
	/* the same request again is a confirmation code retry, accepted
	 * (test_euicc_download test_prepare_again); replayed once a new
	 * session has begun, it is refused */
	h_prepare_req(&f->dp, true, hash, NULL, 0, &req, &len);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, len, hash), 0);
	uint8_t ch[16];
	h_challenge(&f->h, ch);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, len, hash), 4);
	free(req);
	/* DPpb from another CI */
	struct h_smdp other;
	h_smdp_from_pki(&other, pki2_dir, "nist");
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	free(f->dp.pb_der);
	EVP_PKEY_free(f->dp.pb_key);
	f->dp.pb_der = other.pb_der;
	f->dp.pb_len = other.pb_len;
	f->dp.pb_key = other.pb_key;
	other.pb_der = NULL;
	other.pb_key = NULL;
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 1);
	h_smdp_free(&other);
	assert_store_unchanged(f);
}

static void test_cancel_session(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	uint8_t *req = NULL;
	size_t len;
	assert_esim(ESIM_OK,
		    rsp_cancel_session_req_build(&f->dp.txid, RSP_CANCEL_POSTPONED, &req, &len));
	esim_buf r = ESIM_BUF_INIT;
	h_es10(&f->h, req, len, &r);
	struct rsp_cancel_session_resp cr;
	assert_esim(ESIM_OK, rsp_cancel_session_resp_verify(r.data, r.len, f->dp.euicc_pub,
							    &f->dp.txid, f->dp.oid, &cr));
	assert_int_equal(cr.reason, RSP_CANCEL_POSTPONED);
	/* the session is gone: cancelling again or preparing fails */
	h_es10(&f->h, req, len, &r);
	assert_int_equal(h_int_at(&r, 0xBF41, NULL, 0x81), 5);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 4);
	free(req);
	/* after PrepareDownload too, but not for another transaction */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	rsp_txid other;
	assert_esim(ESIM_OK, rsp_txid_random(&other));
	assert_esim(ESIM_OK, rsp_cancel_session_req_build(&other, RSP_CANCEL_END_USER_REJECTION,
							  &req, &len));
	h_es10(&f->h, req, len, &r);
	assert_int_equal(h_int_at(&r, 0xBF41, NULL, 0x81), 5);
	free(req);
	assert_esim(ESIM_OK, rsp_cancel_session_req_build(
				 &f->dp.txid, RSP_CANCEL_END_USER_REJECTION, &req, &len));
	h_es10(&f->h, req, len, &r);
	assert_esim(ESIM_OK, rsp_cancel_session_resp_verify(r.data, r.len, f->dp.euicc_pub,
							    &f->dp.txid, f->dp.oid, &cr));
	assert_int_equal(cr.reason, RSP_CANCEL_END_USER_REJECTION);
	free(req);
	esim_buf_free(&r);
	assert_store_unchanged(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_authenticate_both_curves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_session_and_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_challenge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_server_signature, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_untrusted_ci, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_role, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cached_certificates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prepare_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_session, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
