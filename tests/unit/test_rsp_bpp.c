/*
 * Tests of the bound profile package (src/rsp/bpp.c): build a BPP as the
 * SM-DP+ does, then take it apart as the eUICC does (ECDH with its own
 * otSK, session keys, SCP03t unprotect of every segment in order) and
 * compare the plaintexts; the PPK path; smdpSign; the digest 3.5 split;
 * malformed structures.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp_bpp.h"
#include "esim/rsp_saip.h"
#include "test_rsp_fixture.h"
#include "testutil.h"

static struct fix_pki pki;

static int setup(void **state)
{
	(void)state;
	fix_pki_init(&pki, CRYPTO_CURVE_P256);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fix_pki_clear(&pki);
	return 0;
}

struct inputs {
	rsp_txid txid;
	EVP_PKEY *euicc_ot; /* the eUICC's one-time key pair */
	uint8_t otpk[65];
	uint8_t eid[16];
	uint8_t host_id[8];
	uint8_t *meta;
	size_t meta_len;
	uint8_t *upp;
	size_t upp_len;
	struct rsp_bpp_params p;
};

static void inputs_init(struct inputs *in, crypto_curve curve, size_t meta_pad, size_t upp_len)
{
	memset(in, 0, sizeof(*in));
	assert_esim(ESIM_OK, rsp_txid_random(&in->txid));
	assert_esim(ESIM_OK, crypto_key_generate(curve, &in->euicc_ot));
	assert_esim(ESIM_OK, crypto_key_public_point(in->euicc_ot, in->otpk));
	assert_esim(ESIM_OK, rsp_eid_to_bcd(FIX_EID, in->eid));
	memset(in->host_id, 0x80, sizeof(in->host_id));

	struct rsp_metadata m = {0};
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("89000123456789012341", m.iccid));
	m.spn = strdup("esimkit");
	m.name = strdup("test");
	if (meta_pad) {
		m.has_icon_type = true;
		m.icon_type = RSP_ICON_PNG;
		m.icon_len = meta_pad;
		m.icon = malloc(meta_pad);
		for (size_t i = 0; i < meta_pad; i++)
			m.icon[i] = (uint8_t)i;
	}
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &in->meta, &in->meta_len));
	rsp_metadata_free(&m);

	if (upp_len == 0) {
		assert_esim(ESIM_OK,
			    rsp_saip_make_test_upp("89000123456789012341", &in->upp, &in->upp_len));
	} else {
		in->upp = malloc(upp_len);
		for (size_t i = 0; i < upp_len; i++)
			in->upp[i] = (uint8_t)(i * 7 + 3);
		in->upp_len = upp_len;
	}
	in->p = (struct rsp_bpp_params){
	    .dp_pb_key = pki.dppb.key,
	    .txid = &in->txid,
	    .euicc_otpk = in->otpk,
	    .euicc_otpk_len = 65,
	    .eid = in->eid,
	    .host_id = in->host_id,
	    .host_id_len = sizeof(in->host_id),
	    .metadata = in->meta,
	    .metadata_len = in->meta_len,
	    .upp = in->upp,
	    .upp_len = in->upp_len,
	};
}

static void inputs_clear(struct inputs *in)
{
	EVP_PKEY_free(in->euicc_ot);
	free(in->meta);
	free(in->upp);
}

/* Unprotect every segment of one sequence (whole TLV) into out. */
static void unprotect_seq(crypto_scp03t *st, der_span seq, esim_buf *out)
{
	der_element e, s;
	esim_err err = ESIM_OK;
	assert_esim(ESIM_OK, der_parse_single(seq.p, seq.len, &e));
	der_cursor c = der_cursor_of(e.value);
	while (der_next_child(&c, &s, &err)) {
		assert_true(s.tlv.len <= CRYPTO_SCP03T_SEGMENT_MAX);
		assert_esim(ESIM_OK, crypto_scp03t_unprotect_tlv(st, s.tlv.p, s.tlv.len, out));
	}
	assert_esim(ESIM_OK, err);
}

/* The eUICC's side: check BF23, derive the keys, decrypt everything. */
static void euicc_open(const struct inputs *in, const uint8_t *bpp, size_t n,
		       const struct rsp_bpp_ppk *ppk, EVP_PKEY *dp_pub)
{
	struct rsp_bpp_view v;
	assert_esim(ESIM_OK, rsp_bpp_parse(bpp, n, &v));
	assert_int_equal(v.init_sc.remote_op, 1);
	assert_true(rsp_txid_equal(&v.init_sc.txid, &in->txid));
	assert_int_equal(v.init_sc.key_type, 0x88);
	assert_int_equal(v.init_sc.key_len, 0x10);
	assert_int_equal(v.init_sc.host_id_len, 8);
	assert_esim(ESIM_OK, rsp_init_sc_verify(&v.init_sc, dp_pub, in->otpk));
	/* bound to this eUICC's otPK: another one does not verify */
	uint8_t other[65];
	memcpy(other, in->otpk, 65);
	other[64] ^= 1;
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE, rsp_init_sc_verify(&v.init_sc, dp_pub, other));

	uint8_t shs[32];
	struct crypto_bpp_keys keys;
	crypto_scp03t st;
	assert_esim(ESIM_OK, crypto_ecdh_point(in->euicc_ot, v.init_sc.otpk_dp, 65, shs));
	assert_esim(ESIM_OK, crypto_bpp_derive_keys(shs, 32, 0x88, 0x10, v.init_sc.host_id,
						    v.init_sc.host_id_len, in->eid, &keys));
	crypto_scp03t_init(&st, &keys);

	esim_buf cfg = ESIM_BUF_INIT, meta = ESIM_BUF_INIT, rsk = ESIM_BUF_INIT,
		 prof = ESIM_BUF_INIT;
	unprotect_seq(&st, v.a0, &cfg);
	if (in->p.dp_proprietary) {
		assert_int_equal(cfg.len, 3 + in->p.dp_proprietary_len);
		assert_memory_equal(cfg.data + 3, in->p.dp_proprietary, in->p.dp_proprietary_len);
	} else {
		assert_int_equal(cfg.len, 3);
		assert_memory_equal(cfg.data, "\xBF\x24\x00", 3);
	}
	unprotect_seq(&st, v.a1, &meta);
	assert_int_equal(meta.len, in->meta_len);
	assert_memory_equal(meta.data, in->meta, in->meta_len);
	if (ppk) {
		assert_non_null(v.a2.p);
		unprotect_seq(&st, v.a2, &rsk);
		assert_int_equal(rsk.len, 57);
		assert_memory_equal(rsk.data, "\xBF\x26\x36\x80\x10", 5);
		assert_memory_equal(rsk.data + 5, ppk->mcv, 16);
		assert_memory_equal(rsk.data + 23, ppk->enc, 16);
		assert_memory_equal(rsk.data + 41, ppk->mac, 16);
		crypto_scp03t_replace_keys(&st, rsk.data + 23, rsk.data + 41, rsk.data + 5);
	} else {
		assert_null(v.a2.p);
	}
	unprotect_seq(&st, v.a3, &prof);
	assert_int_equal(prof.len, in->upp_len);
	assert_memory_equal(prof.data, in->upp, in->upp_len);
	assert_int_equal(v.n_a3, (in->upp_len + 1006) / 1007);

	crypto_scp03t_clear(&st);
	crypto_bpp_keys_wipe(&keys);
	esim_buf_free(&cfg);
	esim_buf_free(&meta);
	esim_buf_free(&rsk);
	esim_buf_free(&prof);
}

static void test_build_and_open(void **state)
{
	(void)state;
	struct inputs in;
	inputs_init(&in, CRYPTO_CURVE_P256, 0, 0);
	uint8_t *bpp;
	size_t n;
	assert_esim(ESIM_OK, rsp_bpp_build(&in.p, &bpp, &n));
	assert_int_equal(bpp[0], 0xBF);
	assert_int_equal(bpp[1], 0x36);
	euicc_open(&in, bpp, n, NULL, pki.dppb.key);
	/* the DPauth key does not verify smdpSign */
	struct rsp_bpp_view v;
	assert_esim(ESIM_OK, rsp_bpp_parse(bpp, n, &v));
	assert_esim(ESIM_E_RSP_BAD_SIGNATURE,
		    rsp_init_sc_verify(&v.init_sc, pki.dpauth.key, in.otpk));
	free(bpp);
	inputs_clear(&in);
}

static void test_large_and_ppk(void **state)
{
	(void)state;
	struct inputs in;
	/* metadata over one 88 (1008 bytes), a UPP of 5 segments with a short last one */
	inputs_init(&in, CRYPTO_CURVE_P256, 1024, 4 * 1007 + 10);
	static const uint8_t dpp[] = {0xB8, 0x05, 0x06, 0x03, 0x88, 0x37, 0x0A};
	in.p.dp_proprietary = dpp;
	in.p.dp_proprietary_len = sizeof dpp;
	struct rsp_bpp_ppk ppk;
	for (int i = 0; i < 16; i++) {
		ppk.mcv[i] = (uint8_t)i;
		ppk.enc[i] = (uint8_t)(0x10 + i);
		ppk.mac[i] = (uint8_t)(0x20 + i);
	}
	in.p.ppk = &ppk;
	uint8_t *bpp;
	size_t n;
	assert_esim(ESIM_OK, rsp_bpp_build(&in.p, &bpp, &n));
	struct rsp_bpp_view v;
	assert_esim(ESIM_OK, rsp_bpp_parse(bpp, n, &v));
	assert_int_equal(v.n_a0, 1);
	assert_int_equal(v.n_a1, 2);
	assert_int_equal(v.n_a2, 1);
	assert_int_equal(v.n_a3, 5);
	euicc_open(&in, bpp, n, &ppk, pki.dppb.key);

	/* the 3.5 split: 1 + 1 + (1 + 2) + 1 + (1 + 5) chunks, reassembling exactly */
	der_span *chunks;
	size_t nc;
	assert_esim(ESIM_OK, rsp_bpp_split(bpp, n, &chunks, &nc));
	assert_int_equal(nc, 12);
	esim_buf all = ESIM_BUF_INIT;
	for (size_t i = 0; i < nc; i++)
		assert_esim(ESIM_OK, esim_buf_append(&all, chunks[i].p, chunks[i].len));
	assert_int_equal(all.len, n);
	assert_memory_equal(all.data, bpp, n);
	/* chunk 0 = BF36 header + BF23; chunk 1 = A0 header + 87; chunk 2 = A1 header only */
	assert_int_equal(chunks[0].p[0], 0xBF);
	assert_int_equal(chunks[0].len, (size_t)(v.init_sc.tlv.p - bpp) + v.init_sc.tlv.len);
	assert_int_equal(chunks[1].p[0], 0xA0);
	assert_int_equal(chunks[1].len, v.a0.len);
	assert_int_equal(chunks[2].p[0], 0xA1);
	assert_true(chunks[2].len <= 4);
	assert_int_equal(chunks[3].p[0], 0x88);
	assert_int_equal(chunks[5].p[0], 0xA2);
	assert_int_equal(chunks[5].len, v.a2.len);
	assert_int_equal(chunks[6].p[0], 0xA3);
	assert_true(chunks[6].len <= 4);
	for (size_t i = 7; i < 12; i++) {
		assert_int_equal(chunks[i].p[0], 0x86);
		assert_true(chunks[i].len <= 1020);
	}
	assert_int_equal(chunks[7].len, 1020);
	esim_buf_free(&all);
	free(chunks);
	free(bpp);
	inputs_clear(&in);
}

static void test_brainpool(void **state)
{
	(void)state;
	struct fix_pki bp;
	fix_pki_init(&bp, CRYPTO_CURVE_BRAINPOOLP256R1);
	struct inputs in;
	inputs_init(&in, CRYPTO_CURVE_BRAINPOOLP256R1, 0, 2000);
	in.p.dp_pb_key = bp.dppb.key;
	uint8_t *bpp;
	size_t n;
	assert_esim(ESIM_OK, rsp_bpp_build(&in.p, &bpp, &n));
	euicc_open(&in, bpp, n, NULL, bp.dppb.key);
	free(bpp);
	/* an otPK.EUICC on the other curve is refused */
	in.p.dp_pb_key = pki.dppb.key;
	assert_esim(ESIM_E_CRYPTO_BAD_POINT, rsp_bpp_build(&in.p, &bpp, &n));
	inputs_clear(&in);
	fix_pki_clear(&bp);
}

static void test_bad_inputs(void **state)
{
	(void)state;
	struct inputs in;
	inputs_init(&in, CRYPTO_CURVE_P256, 0, 100);
	uint8_t *bpp;
	size_t n;
	in.p.euicc_otpk_len = 64;
	assert_esim(ESIM_E_CRYPTO_BAD_POINT, rsp_bpp_build(&in.p, &bpp, &n));
	in.p.euicc_otpk_len = 65;
	in.otpk[10] ^= 1; /* off the curve */
	assert_esim(ESIM_E_CRYPTO_BAD_POINT, rsp_bpp_build(&in.p, &bpp, &n));
	in.otpk[10] ^= 1;
	in.p.host_id_len = 17;
	assert_esim(ESIM_E_ARG, rsp_bpp_build(&in.p, &bpp, &n));
	in.p.host_id_len = 8;
	in.p.upp_len = 0;
	assert_esim(ESIM_E_ARG, rsp_bpp_build(&in.p, &bpp, &n));
	in.p.upp_len = in.upp_len;

	assert_esim(ESIM_OK, rsp_bpp_build(&in.p, &bpp, &n));
	struct rsp_bpp_view v;
	assert_esim(ESIM_E_RSP_BPP_STRUCTURE, rsp_bpp_parse(bpp, n - 1, &v));
	/* swap the A1 tag for A3 */
	uint8_t *bad = malloc(n);
	memcpy(bad, bpp, n);
	assert_esim(ESIM_OK, rsp_bpp_parse(bpp, n, &v));
	bad[v.a1.p - bpp] = 0xA3;
	assert_esim(ESIM_E_RSP_BPP_STRUCTURE, rsp_bpp_parse(bad, n, &v));
	der_span *chunks;
	size_t nc;
	assert_esim(ESIM_E_RSP_BPP_STRUCTURE, rsp_bpp_split(bad, n, &chunks, &nc));
	free(bad);
	static const uint8_t empty[] = {0xBF, 0x36, 0x00};
	assert_esim(ESIM_E_RSP_BPP_STRUCTURE, rsp_bpp_parse(empty, sizeof empty, &v));
	free(bpp);
	inputs_clear(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_and_open),
	    cmocka_unit_test(test_large_and_ppk),
	    cmocka_unit_test(test_brainpool),
	    cmocka_unit_test(test_bad_inputs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
