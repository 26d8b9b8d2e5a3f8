/*
 * bpp: the Bound Profile Package (ES8+, digest section 7), built by the
 * SM-DP+ and taken apart by the LPA and the eUICC.
 *
 * The BPP is bound to one eUICC by ECDH between a fresh otSK.DP and the
 * eUICC's otPK, with the EID in the KDF's sharedInfo; smdpSign covers the
 * BF23 content followed by the eUICC's otPK, so that a BPP built for one
 * session cannot be replayed to another. One SCP03t counter runs across
 * ConfigureISDP, StoreMetadata and ReplaceSessionKeys; the profile segments
 * continue under the session keys, or start afresh under the PPK when
 * ReplaceSessionKeys is present (digest 7.5, 7.8).
 *
 * Every segment holds at most 1020 bytes on the wire (1007 bytes of
 * plaintext for 86/87, 1008 for 88); longer inputs become several segments.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp_bpp.h"
#include "rsp_int.h"

/* Protect data under tag in as many segments as needed, each appended to b. */
static esim_err add_segments(der_builder *b, crypto_scp03t *st, uint8_t tag, const uint8_t *data,
			     size_t len)
{
	size_t max = crypto_scp03t_max_plain(tag);
	esim_buf seg = ESIM_BUF_INIT;
	esim_err err = ESIM_OK;
	size_t off = 0;
	do {
		size_t n = len - off < max ? len - off : max;
		seg.len = 0;
		err = crypto_scp03t_protect(st, tag, data + off, n, &seg);
		if (err == ESIM_OK)
			err = der_add_raw(b, seg.data, seg.len);
		off += n;
	} while (err == ESIM_OK && off < len);
	esim_buf_free(&seg);
	return err;
}

static esim_err build_init_sc(der_builder *b, const struct rsp_bpp_params *p,
			      const uint8_t otpk_dp[RSP_OTPK_LEN])
{
	/* The signed content first, on its own, so it can be signed as is. */
	der_builder c;
	der_builder_init(&c);
	der_add_int64(&c, 0x82, RSP_BPP_REMOTE_OP_INSTALL);
	der_add_octet_string(&c, 0x80, p->txid->b, p->txid->len);
	der_builder_open(&c, 0xA6);
	uint8_t kt = CRYPTO_BPP_KEY_TYPE_AES, kl = CRYPTO_BPP_KEY_LEN_16;
	der_add_octet_string(&c, 0x80, &kt, 1);
	der_add_octet_string(&c, 0x81, &kl, 1);
	der_add_octet_string(&c, 0x84, p->host_id, p->host_id_len);
	der_builder_close(&c);
	der_add_octet_string(&c, 0x5F49, otpk_dp, RSP_OTPK_LEN);
	uint8_t *content = NULL;
	size_t content_len = 0;
	esim_err err = der_builder_finish(&c, &content, &content_len);
	if (err != ESIM_OK)
		return err;
	uint8_t tail[3 + RSP_OTPK_LEN] = {0x5F, 0x49, RSP_OTPK_LEN};
	memcpy(tail + 3, p->euicc_otpk, RSP_OTPK_LEN);
	struct crypto_span spans[2] = {{content, content_len}, {tail, sizeof(tail)}};
	uint8_t sig[RSP_SIG_LEN];
	err = crypto_ecdsa_sign_spans(p->dp_pb_key, spans, 2, sig);
	if (err == ESIM_OK) {
		der_builder_open(b, 0xBF23);
		der_add_raw(b, content, content_len);
		der_add_octet_string(b, 0x5F37, sig, RSP_SIG_LEN);
		err = der_builder_close(b);
	}
	free(content);
	return err;
}

static esim_err check_params(const struct rsp_bpp_params *p)
{
	if (!p || !p->dp_pb_key || !p->txid || !p->euicc_otpk || !p->eid || !p->host_id ||
	    !p->metadata || !p->upp || !p->upp_len || !p->metadata_len)
		return ESIM_E_ARG;
	if (p->txid->len < 1 || p->txid->len > RSP_TXID_MAX)
		return ESIM_E_RSP_BAD_TXID;
	if (p->euicc_otpk_len != RSP_OTPK_LEN)
		return ESIM_E_CRYPTO_BAD_POINT;
	if (p->host_id_len < 1 || p->host_id_len > CRYPTO_BPP_HOST_ID_MAX)
		return ESIM_E_ARG;
	if (p->dp_proprietary && !p->dp_proprietary_len)
		return ESIM_E_ARG;
	return ESIM_OK;
}

esim_err rsp_bpp_build(const struct rsp_bpp_params *p, uint8_t **out, size_t *out_len)
{
	if (!out || !out_len)
		return ESIM_E_ARG;
	esim_err err = check_params(p);
	if (err != ESIM_OK)
		return err;
	EVP_PKEY *otsk = NULL;
	uint8_t otpk_dp[RSP_OTPK_LEN];
	uint8_t shs[CRYPTO_ECDH_LEN];
	struct crypto_bpp_keys keys;
	crypto_scp03t st;
	memset(&keys, 0, sizeof(keys));
	memset(&st, 0, sizeof(st));
	der_builder b;
	der_builder_init(&b);

	/* otSK.DP on SK.DPpb's curve (which fails for a key on no SGP.22 curve) */
	err = crypto_key_generate_like(p->dp_pb_key, &otsk);
	if (err == ESIM_OK)
		err = crypto_key_public_point(otsk, otpk_dp);
	if (err == ESIM_OK) /* validates the eUICC's point on our curve */
		err = crypto_ecdh_point(otsk, p->euicc_otpk, p->euicc_otpk_len, shs);
	EVP_PKEY_free(otsk);
	if (err == ESIM_OK)
		err = crypto_bpp_derive_keys(shs, sizeof(shs), CRYPTO_BPP_KEY_TYPE_AES,
					     CRYPTO_BPP_KEY_LEN_16, p->host_id, p->host_id_len,
					     p->eid, &keys);
	esim_wipe(shs, sizeof(shs));
	if (err != ESIM_OK)
		goto out;
	crypto_scp03t_init(&st, &keys);
	crypto_bpp_keys_wipe(&keys);

	der_builder_open(&b, 0xBF36);
	err = build_init_sc(&b, p, otpk_dp);
	if (err != ESIM_OK)
		goto out;

	/* ConfigureISDP: BF24 { [B8 dpProprietaryData] } */
	{
		der_builder cfg;
		der_builder_init(&cfg);
		der_builder_open(&cfg, 0xBF24);
		if (p->dp_proprietary)
			der_add_raw(&cfg, p->dp_proprietary, p->dp_proprietary_len);
		der_builder_close(&cfg);
		uint8_t *cfg_bytes = NULL;
		size_t cfg_len = 0;
		err = der_builder_finish(&cfg, &cfg_bytes, &cfg_len);
		if (err != ESIM_OK)
			goto out;
		der_builder_open(&b, 0xA0);
		err = add_segments(&b, &st, CRYPTO_SCP03T_TAG_CFG, cfg_bytes, cfg_len);
		der_builder_close(&b);
		free(cfg_bytes);
		if (err != ESIM_OK)
			goto out;
	}

	der_builder_open(&b, 0xA1);
	err = add_segments(&b, &st, CRYPTO_SCP03T_TAG_META, p->metadata, p->metadata_len);
	der_builder_close(&b);
	if (err != ESIM_OK)
		goto out;

	if (p->ppk) {
		uint8_t rsk[3 + 3 * 18] = {0xBF, 0x26, 3 * 18};
		uint8_t *q = rsk + 3;
		const uint8_t *vals[3] = {p->ppk->mcv, p->ppk->enc, p->ppk->mac};
		for (int i = 0; i < 3; i++) {
			*q++ = (uint8_t)(0x80 + i);
			*q++ = 16;
			memcpy(q, vals[i], 16);
			q += 16;
		}
		der_builder_open(&b, 0xA2);
		err = add_segments(&b, &st, CRYPTO_SCP03T_TAG_CFG, rsk, (size_t)(q - rsk));
		der_builder_close(&b);
		esim_wipe(rsk, sizeof(rsk));
		if (err != ESIM_OK)
			goto out;
		crypto_scp03t_replace_keys(&st, p->ppk->enc, p->ppk->mac, p->ppk->mcv);
	}

	der_builder_open(&b, 0xA3);
	err = add_segments(&b, &st, CRYPTO_SCP03T_TAG_PROF, p->upp, p->upp_len);
	der_builder_close(&b);
	if (err != ESIM_OK)
		goto out;
	der_builder_close(&b);
	err = der_builder_finish(&b, out, out_len);
out:
	if (err != ESIM_OK)
		der_builder_free(&b);
	crypto_scp03t_clear(&st);
	crypto_bpp_keys_wipe(&keys);
	return err;
}

/* --- parsing ------------------------------------------------------------------ */

static esim_err bpp_structure(esim_err err)
{
	if (err == ESIM_OK || err == ESIM_E_NOMEM || err == ESIM_E_ARG)
		return err;
	return ESIM_E_RSP_BPP_STRUCTURE;
}

static esim_err get_byte(der_cursor *c, uint32_t tag, uint8_t *out)
{
	return rsp__get_fixed(c, tag, out, 1);
}

esim_err rsp_init_sc_parse(const uint8_t *p, size_t len, struct rsp_init_sc *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_element top;
	der_cursor in, crt;
	der_span host;
	esim_err err = der_parse_single(p, len, &top);
	if (err == ESIM_OK && top.tag != 0xBF23)
		err = ESIM_E_RSP_BPP_STRUCTURE;
	if (err == ESIM_OK) {
		in = der_cursor_of(top.value);
		err = der_get_int64(&in, 0x82, &out->remote_op);
	}
	if (err == ESIM_OK)
		err = rsp__get_txid(&in, 0x80, &out->txid);
	if (err == ESIM_OK)
		err = der_get_sequence(&in, 0xA6, &crt);
	if (err == ESIM_OK)
		err = get_byte(&crt, 0x80, &out->key_type);
	if (err == ESIM_OK)
		err = get_byte(&crt, 0x81, &out->key_len);
	if (err == ESIM_OK)
		err = der_get_octet_string(&crt, 0x84, &host);
	if (err == ESIM_OK && (host.len < 1 || host.len > CRYPTO_BPP_HOST_ID_MAX))
		err = ESIM_E_RSP_BPP_STRUCTURE;
	if (err == ESIM_OK)
		err = der_expect_end(&crt);
	if (err == ESIM_OK)
		err = rsp__get_fixed(&in, 0x5F49, out->otpk_dp, RSP_OTPK_LEN);
	size_t signed_len = top.value.len - in.len;
	if (err == ESIM_OK)
		err = rsp__get_sig(&in, out->sig);
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	if (err != ESIM_OK) {
		memset(out, 0, sizeof(*out));
		return bpp_structure(err);
	}
	memcpy(out->host_id, host.p, host.len);
	out->host_id_len = host.len;
	out->tlv = top.tlv;
	out->signed_part.p = top.value.p;
	out->signed_part.len = signed_len;
	return ESIM_OK;
}

esim_err rsp_init_sc_verify(const struct rsp_init_sc *sc, EVP_PKEY *dp_pb_pub,
			    const uint8_t euicc_otpk[RSP_OTPK_LEN])
{
	if (!sc || !dp_pb_pub || !euicc_otpk || !sc->signed_part.p)
		return ESIM_E_ARG;
	uint8_t tail[3 + RSP_OTPK_LEN] = {0x5F, 0x49, RSP_OTPK_LEN};
	memcpy(tail + 3, euicc_otpk, RSP_OTPK_LEN);
	struct crypto_span spans[2] = {{sc->signed_part.p, sc->signed_part.len},
				       {tail, sizeof(tail)}};
	return rsp__verify(dp_pb_pub, spans, 2, sc->sig);
}

/* A sequence of at least one segment of seg_tag; *count set. */
static esim_err check_seq(const der_element *e, uint32_t seg_tag, size_t *count)
{
	der_cursor c = der_cursor_of(e->value);
	der_element s;
	esim_err err = ESIM_OK;
	*count = 0;
	if (!der_tag_is_constructed(e->tag))
		return ESIM_E_RSP_BPP_STRUCTURE;
	while (der_next_child(&c, &s, &err)) {
		if (s.tag != seg_tag)
			return ESIM_E_RSP_BPP_STRUCTURE;
		(*count)++;
	}
	if (err != ESIM_OK || *count == 0)
		return ESIM_E_RSP_BPP_STRUCTURE;
	return ESIM_OK;
}

esim_err rsp_bpp_parse(const uint8_t *p, size_t len, struct rsp_bpp_view *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_element top, bf23, e;
	esim_err err = der_parse_single(p, len, &top);
	if (err != ESIM_OK || top.tag != 0xBF36)
		return ESIM_E_RSP_BPP_STRUCTURE;
	der_cursor in = der_cursor_of(top.value);
	err = der_get_tlv(&in, 0xBF23, &bf23);
	if (err == ESIM_OK)
		err = rsp_init_sc_parse(bf23.tlv.p, bf23.tlv.len, &out->init_sc);
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xA0, &e);
	if (err == ESIM_OK && (err = check_seq(&e, 0x87, &out->n_a0)) == ESIM_OK)
		out->a0 = e.tlv;
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xA1, &e);
	if (err == ESIM_OK && (err = check_seq(&e, 0x88, &out->n_a1)) == ESIM_OK)
		out->a1 = e.tlv;
	uint32_t tag = 0;
	if (err == ESIM_OK)
		err = der_peek_tag(&in, &tag);
	if (err == ESIM_OK && tag == 0xA2) {
		err = der_get_tlv(&in, 0xA2, &e);
		if (err == ESIM_OK && (err = check_seq(&e, 0x87, &out->n_a2)) == ESIM_OK)
			out->a2 = e.tlv;
	}
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xA3, &e);
	if (err == ESIM_OK && (err = check_seq(&e, 0x86, &out->n_a3)) == ESIM_OK)
		out->a3 = e.tlv;
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	if (err != ESIM_OK) {
		memset(out, 0, sizeof(*out));
		return bpp_structure(err);
	}
	return ESIM_OK;
}

static esim_err push(der_span **v, size_t *n, size_t *cap, const uint8_t *p, size_t len)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		der_span *g = realloc(*v, nc * sizeof(**v));
		if (!g)
			return ESIM_E_NOMEM;
		*v = g;
		*cap = nc;
	}
	(*v)[*n].p = p;
	(*v)[*n].len = len;
	(*n)++;
	return ESIM_OK;
}

/* The chunks of one sequence: header (+ first segment when first_with_header),
 * then each segment. */
static esim_err split_seq(der_span seq, bool first_with_header, der_span **v, size_t *n,
			  size_t *cap)
{
	der_element e, s;
	esim_err err = der_parse_single(seq.p, seq.len, &e);
	if (err != ESIM_OK)
		return ESIM_E_RSP_BPP_STRUCTURE;
	der_cursor c = der_cursor_of(e.value);
	bool first = true;
	if (!first_with_header)
		err = push(v, n, cap, e.tlv.p, e.header_len);
	while (err == ESIM_OK && der_next_child(&c, &s, &err)) {
		if (first && first_with_header)
			err = push(v, n, cap, e.tlv.p, e.header_len + s.tlv.len);
		else
			err = push(v, n, cap, s.tlv.p, s.tlv.len);
		first = false;
	}
	return err;
}

esim_err rsp_bpp_split(const uint8_t *p, size_t len, der_span **chunks, size_t *n_chunks)
{
	if (!p || !chunks || !n_chunks)
		return ESIM_E_ARG;
	struct rsp_bpp_view v;
	esim_err err = rsp_bpp_parse(p, len, &v);
	if (err != ESIM_OK)
		return err;
	der_span *arr = NULL;
	size_t n = 0, cap = 0;
	/* BF36 header + BF23: the BF23 TLV starts right after the header. */
	err = push(&arr, &n, &cap, p, (size_t)(v.init_sc.tlv.p - p) + v.init_sc.tlv.len);
	if (err == ESIM_OK)
		err = split_seq(v.a0, true, &arr, &n, &cap);
	if (err == ESIM_OK)
		err = split_seq(v.a1, false, &arr, &n, &cap);
	if (err == ESIM_OK && v.a2.p)
		err = split_seq(v.a2, true, &arr, &n, &cap);
	if (err == ESIM_OK)
		err = split_seq(v.a3, false, &arr, &n, &cap);
	if (err != ESIM_OK) {
		free(arr);
		return err;
	}
	*chunks = arr;
	*n_chunks = n;
	return ESIM_OK;
}
