/*
 * The SM-DP+ with the GSMA test material (digest 14, 10.3): the SGP.26
 * DPauth and DPpb identities of both curves, a DPtls certificate issued at
 * run time with the SGP.26 CI key (the shipped ones have expired), the
 * TS.48 profile TS48V2-SAIP2-1-BERTLV-UNIQUE as the profile type (its
 * ICCID, IMSI, Ki and OPc personalised from a batch and read back), and an
 * eUICC with the SGP.26 eUICC identity that trusts the SGP.26 CI. Over
 * HTTPS, on each curve, the profile is downloaded, installed (PIR success,
 * the ICCID listed by the eUICC) and the inventory says Installed. The
 * expired SGP.26 DPtls certificate is refused by the LPA's TLS client and
 * the expired MNO certificate by ES2+ although it is pinned. Needs
 * ../shared (skipped otherwise).
 */
#include <openssl/evp.h>

#include "esim/cert.h"
#include "esim/der.h"
#include "test_smdp_fixture.h"

static struct sfx F;

static bool contains(const esim_buf *b, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= b->len; i++)
		if (memcmp(b->data + i, needle, n) == 0)
			return true;
	return false;
}

static void write_file(const char *path, const esim_buf *b)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
	fclose(f);
}

/* CERT.DPtls for "localhost" under the SGP.26 CI of one curve, valid now,
 * written as PEM files. */
static void issue_dptls(const char *td, const char *curve, const char *cert_out,
			const char *key_out)
{
	char ci_p[700], key_p[700];
	snprintf(ci_p, sizeof ci_p, "%s/sgp26/CertificateIssuer/CERT_CI_ECDSA_%s.der", td, curve);
	snprintf(key_p, sizeof key_p, "%s/sgp26/CertificateIssuer/SK_CI_ECDSA_%s.pem", td, curve);
	size_t ci_len;
	uint8_t *ci = test_read(ci_p, &ci_len);
	EVP_PKEY *ci_key = NULL;
	assert_esim(ESIM_OK, crypto_key_load_private_file(key_p, &ci_key));
	struct crypto_issue_params ip = {
	    .kind = CRYPTO_ISSUE_DP_TLS,
	    .curve = strcmp(curve, "NIST") == 0 ? CRYPTO_CURVE_P256 : CRYPTO_CURVE_BRAINPOOLP256R1,
	    .issuer_der = ci,
	    .issuer_der_len = ci_len,
	    .issuer_key = ci_key,
	    .not_before = time(NULL) - 3600,
	    .not_after = time(NULL) + 86400,
	};
	struct crypto_issued it;
	assert_esim(ESIM_OK, crypto_issue(&ip, &it));
	esim_buf c = ESIM_BUF_INIT, k = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_pki_cert_pem(it.der, it.der_len, &c));
	assert_esim(ESIM_OK, crypto_pki_key_pem(it.key, &k));
	write_file(cert_out, &c);
	write_file(key_out, &k);
	esim_buf_free(&c);
	esim_buf_wipe_free(&k);
	crypto_issued_clear(&it);
	EVP_PKEY_free(ci_key);
	free(ci);
}

/* The SGP.26 eUICC (EID 89049032123451234512345678901235) with the
 * identity of one curve. Both curves share one card state (db), so that
 * its notification sequence numbers go on rising as on a real eUICC with
 * the same EID. */
static euicc *sgp26_euicc(const char *td, const char *curve, const char *db)
{
	char p[4][700];
	snprintf(p[0], 700, "%s/sgp26/eUICC/CERT_EUICC_ECDSA_%s.der", td, curve);
	snprintf(p[1], 700, "%s/sgp26/eUICC/SK_EUICC_ECDSA_%s.pem", td, curve);
	snprintf(p[2], 700, "%s/sgp26/EUM/CERT_EUM_ECDSA_%s.der", td, curve);
	snprintf(p[3], 700, "%s/sgp26/CertificateIssuer/CERT_CI_ECDSA_%s.der", td, curve);
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = db;
	ec.identities[0].cert_path = p[0];
	ec.identities[0].key_path = p[1];
	ec.identities[0].eum_path = p[2];
	ec.n_identities = 1;
	ec.ci_paths[0] = p[3];
	ec.n_ci_paths = 1;
	euicc *e = NULL;
	assert_esim(ESIM_OK, euicc_open(&ec, &e));
	return e;
}

/* The TS.48 package as personalised from the batch: EF.IMSI of the usim
 * element, and K / OPc of every akaParameter element (TS.48 has one for
 * the USIM and one for the ISIM), each 16 bytes counting up from k0 / o0. */
static void check_personalised(const char *iccid, const char *imsi, uint8_t k0, uint8_t o0)
{
	uint8_t *upp;
	size_t len;
	assert_esim(ESIM_OK, smdp_profile_upp(F.d, iccid, &upp, &len));
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(upp, len, &info));
	assert_string_equal(info.iccid, iccid);
	der_cursor top;
	der_cursor_init(&top, upp, len);
	der_element pe;
	esim_err err;
	bool seen_imsi = false;
	int n_aka = 0;
	while (der_next_child(&top, &pe, &err)) {
		der_cursor in = der_cursor_of(pe.value);
		der_element e;
		esim_err e2;
		if (pe.tag == 0xB3) {
			while (der_next_child(&in, &e, &e2)) {
				if (e.tag != 0xA3)
					continue;
				der_cursor f = der_cursor_of(e.value);
				der_element x;
				while (der_next_child(&f, &x, &e2))
					if (x.tag == 0x83) {
						char got[16];
						assert_esim(ESIM_OK,
							    smdp_imsi_decode(x.value.p, got));
						assert_string_equal(got, imsi);
						seen_imsi = true;
					}
			}
		} else if (pe.tag == 0xA4) {
			der_cursor conf, par;
			assert_esim(ESIM_OK, der_get_element(&in, 0xA0, NULL));
			assert_esim(ESIM_OK, der_get_element(&in, 0xA1, &conf));
			assert_esim(ESIM_OK, der_get_element(&conf, 0xA1, &par));
			while (der_next_child(&par, &e, &e2)) {
				if (e.tag != 0x82 && e.tag != 0x83)
					continue;
				assert_int_equal(e.value.len, 16);
				for (int i = 0; i < 16; i++)
					assert_int_equal(e.value.p[i],
							 (uint8_t)((e.tag == 0x82 ? k0 : o0) + i));
			}
			n_aka++;
		}
	}
	assert_esim(ESIM_OK, err);
	assert_true(seen_imsi);
	assert_int_equal(n_aka, 2);
	esim_wipe(upp, len);
	free(upp);
}

static void test_sgp26_ts48(void **state)
{
	(void)state;
	const char *td = test_shared_testdata();
	static const char *const curves[2] = {"NIST", "BRP"};
	char p[16][700];
	for (int c = 0; c < 2; c++) {
		snprintf(p[4 * c + 0], 700, "%s/sgp26/DPauth/CERT_S_SM_DPauth_ECDSA_%s.der", td,
			 curves[c]);
		snprintf(p[4 * c + 1], 700, "%s/sgp26/DPauth/SK_S_SM_DPauth_ECDSA_%s.pem", td,
			 curves[c]);
		snprintf(p[4 * c + 2], 700, "%s/sgp26/DPpb/CERT_S_SM_DPpb_ECDSA_%s.der", td,
			 curves[c]);
		snprintf(p[4 * c + 3], 700, "%s/sgp26/DPpb/SK_S_SM_DPpb_ECDSA_%s.pem", td,
			 curves[c]);
		snprintf(p[8 + c], 700, "%s/sgp26/CertificateIssuer/CERT_CI_ECDSA_%s.der", td,
			 curves[c]);
		snprintf(p[10 + c], 700, "%s/sgp26/CertificateIssuer/CERT_CI_ECDSA_%s.pem", td,
			 curves[c]);
	}
	snprintf(p[12], 700, "%s/dptls-nist.pem", F.dir);
	snprintf(p[13], 700, "%s/dptls-nist.key.pem", F.dir);
	snprintf(p[14], 700, "%s/dptls-brp.pem", F.dir);
	snprintf(p[15], 700, "%s/dptls-brp.key.pem", F.dir);
	issue_dptls(td, "NIST", p[12], p[13]);
	issue_dptls(td, "BRP", p[14], p[15]);

	snprintf(F.db, sizeof F.db, "sqlite:%s/sgp26.db", F.dir);
	F.cfg.db_url = F.db;
	F.cfg.fqdn = SFX_FQDN;
	for (int c = 0; c < 2; c++) {
		F.cfg.ids[c].dpauth_cert = p[4 * c + 0];
		F.cfg.ids[c].dpauth_key = p[4 * c + 1];
		F.cfg.ids[c].dppb_cert = p[4 * c + 2];
		F.cfg.ids[c].dppb_key = p[4 * c + 3];
		F.cfg.ci_paths[c] = p[8 + c];
	}
	F.cfg.n_ids = 2;
	F.cfg.n_ci = 2;
	F.cfg.log = getenv("SMDP_LOG") != NULL;
	snprintf(F.kek, sizeof F.kek, "%s/kek", F.dir);
	sfx_write_kek(F.kek);
	F.cfg.kek_file = F.kek;
	assert_esim(ESIM_OK, smdp_open(&F.cfg, &F.d));
	assert_string_equal(smdp_oid(F.d), "2.999.10");
	assert_esim(ESIM_OK, smdp_add_operator(F.d, "OP1", SFX_OP1_SHA, NULL));

	/* the TS.48 profile as the type, two ICCIDs imported into it */
	char ts48[700];
	snprintf(ts48, sizeof ts48, "%s/ts48/TS48V2-SAIP2-1-BERTLV-UNIQUE.der", td);
	size_t upp_len;
	uint8_t *upp = test_read(ts48, &upp_len);
	struct smdp_profile_type t = {.name = SFX_TYPE,
				      .operator_name = "OP1",
				      .upp = upp,
				      .upp_len = upp_len,
				      .spn = "GSMA",
				      .profile_name = "TS.48 test profile",
				      .profile_class = 0};
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	free(upp);
	const char *csv = "89000123450000000011,262019999999991,"
			  "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF,B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF\n"
			  "89000123450000000029,262019999999992,"
			  "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF,D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF\n";
	size_t count = 0;
	assert_esim(ESIM_OK, smdp_import_csv(F.d, SFX_TYPE, csv, strlen(csv), &count));
	assert_int_equal(count, 2);
	check_personalised("89000123450000000011", "262019999999991", 0xA0, 0xB0);
	check_personalised("89000123450000000029", "262019999999992", 0xC0, 0xD0);

	net_server *srv;
	struct net_server_config sc = {.threads = 2};
	assert_esim(ESIM_OK, net_server_new(&sc, &srv));
	int l[2], l_old, l_es2;
	struct net_listener_config lc = {.address = "127.0.0.1", .tls = true};
	for (int c = 0; c < 2; c++) {
		lc.cert_chain_file = p[12 + 2 * c];
		lc.key_file = p[13 + 2 * c];
		assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l[c]));
	}
	char old_cert[700], old_key[700], mno_cert[700], mno_key[700];
	snprintf(old_cert, 700, "%s/sgp26/DPtls/CERT_S_SM_DP_TLS_NIST.pem", td);
	snprintf(old_key, 700, "%s/sgp26/DPtls/SK_S_SM_DP_TLS_NIST.pem", td);
	snprintf(mno_cert, 700, "%s/mno/CERT_MNO_ECDSA_NIST.pem", td);
	snprintf(mno_key, 700, "%s/mno/SK_MNO_ECDSA_NIST.pem", td);
	lc.cert_chain_file = old_cert;
	lc.key_file = old_key;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_old));
	/* ES2+ with the MNO certificate pinned */
	crypto_cert *mc;
	assert_esim(ESIM_OK, crypto_cert_load_file(mno_cert, &mc));
	size_t mder_len;
	const uint8_t *mder = crypto_cert_der(mc, &mder_len);
	uint8_t pin[1][32];
	unsigned hl;
	assert_int_equal(EVP_Digest(mder, mder_len, pin[0], &hl, EVP_sha256(), NULL), 1);
	crypto_cert_free(mc);
	assert_esim(ESIM_OK, smdp_add_operator(F.d, "MNO", pin[0], NULL));
	lc.cert_chain_file = p[12];
	lc.key_file = p[13];
	lc.client_auth = NET_CLIENT_AUTH_REQUIRE;
	lc.client_pins = (const uint8_t(*)[32])pin;
	lc.n_client_pins = 1;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l_es2));
	for (int c = 0; c < 2; c++)
		assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l[c], l_es2));
	assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l_old, l_es2));
	assert_esim(ESIM_OK, net_server_start(srv));

	/* one download per curve, over HTTPS */
	for (int c = 0; c < 2; c++) {
		char base[128], mid[64], iccid[RSP_ICCID_TEXT_MAX];
		snprintf(base, sizeof base, "https://localhost:%u", net_server_port(srv, l[c]));
		struct net_client_config ccfg = {.ca_file = p[10 + c]};
		net_client *cli;
		assert_esim(ESIM_OK, net_client_new(&ccfg, &cli));
		struct lpa_http h = {cli, base};
		char edb[700];
		snprintf(edb, sizeof edb, "%s/euicc.db", F.dir);
		euicc *e = sgp26_euicc(td, curves[c], edb);
		struct lpa_driver drv = {sfx_es10, e, lpa_es9_http, &h, SFX_FQDN};
		sfx_order(&F, (size_t)c + 1, SFX_EID, NULL, NULL, true, mid);
		struct lpa_session s;
		lpa_session_init(&s, &drv);
		esim_err err = lpa_download(&s, mid, NULL);
		if (err != ESIM_OK)
			fail_msg("%s: %s failed=%d %s/%s", curves[c], esim_errname(err), s.failed,
				 s.subject, s.reason);
		assert_true(s.pir_success);
		assert_non_null(s.pir);
		struct rsp_pir pir;
		assert_esim(ESIM_OK, rsp_pir_parse(s.pir, s.pir_len, &pir));
		assert_true(pir.success);
		assert_true(pir.meta.has_iccid);
		sfx_iccid((size_t)c + 1, iccid);
		char got[RSP_ICCID_TEXT_MAX];
		assert_esim(ESIM_OK, rsp_iccid_from_bcd(pir.meta.iccid, RSP_ICCID_LEN, got));
		assert_string_equal(got, iccid);
		rsp_pir_free(&pir);
		lpa_session_clear(&s);
		assert_int_equal(sfx_state(&F, (size_t)c + 1), SMDP_INSTALLED);
		/* the eUICC lists the profile under the personalised ICCID */
		uint8_t bcd[RSP_ICCID_LEN];
		assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, bcd));
		esim_buf r = ESIM_BUF_INIT;
		const uint8_t list[] = {0xBF, 0x2D, 0x03, 0x5C, 0x01, 0x5A};
		assert_esim(ESIM_OK, euicc_es10(e, list, sizeof list, &r));
		assert_true(contains(&r, bcd, sizeof bcd));
		esim_buf_free(&r);
		euicc_close(e);
		net_client_free(cli);
	}

	/* the expired SGP.26 DPtls certificate: the LPA's client refuses it */
	{
		char url[256];
		snprintf(url, sizeof url, "https://localhost:%u/gsma/rsp2/es9plus/cancelSession",
			 net_server_port(srv, l_old));
		struct net_client_config ccfg = {.ca_file = p[10]};
		net_client *cli;
		assert_esim(ESIM_OK, net_client_new(&ccfg, &cli));
		struct net_client_response r;
		esim_err err = net_client_post_json(cli, url, "{}", 2, &r);
		net_client_response_clear(&r);
		if (err != ESIM_E_NET_UNTRUSTED_SERVER)
			fail_msg("expired DPtls: %s (%s)", esim_errname(err),
				 net_client_errmsg(cli));
		net_client_free(cli);
	}

	/* the expired MNO certificate, pinned, is refused by ES2+ */
	{
		char url[256];
		snprintf(url, sizeof url, "https://localhost:%u/gsma/rsp2/es2plus/downloadOrder",
			 net_server_port(srv, l_es2));
		struct net_client_config ccfg = {
		    .ca_file = p[10], .client_cert_file = mno_cert, .client_key_file = mno_key};
		net_client *cli;
		assert_esim(ESIM_OK, net_client_new(&ccfg, &cli));
		const char *body = "{\"header\":{\"functionRequesterIdentifier\":\"MNO\","
				   "\"functionCallIdentifier\":\"m1\"},\"profileType\":\"STD\"}";
		struct net_client_response r;
		assert_esim(ESIM_OK, net_client_post_json(cli, url, body, strlen(body), &r));
		json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		assert_non_null(j);
		sfx_assert_fail(j, "1.1.1", "6.3");
		json_decref(j);
		net_client_response_clear(&r);
		net_client_free(cli);
	}
	net_server_stop(srv);
	net_server_free(srv);
	smdp_close(F.d);
	F.d = NULL;
}

static int group_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	F.dir = test_mkdtemp();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

int main(void)
{
	test_require_shared("test_smdp_sgp26");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sgp26_ts48),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
