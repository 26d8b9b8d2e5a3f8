/*
 * es10b_bpp: ES10b.LoadBoundProfilePackage, the eUICC's side of ES8+
 * (SGP.22 2.5.5, 3.1.3.3, 5.7.6, 5.5; digest 3.5, 7).
 *
 * The LPA sends the BF36 bound profile package as a series of ES10
 * commands cut at TLV boundaries: the BF36 header with BF23
 * (InitialiseSecureChannel), then the A0 header and its 87 segments
 * (ConfigureISDP), A1 and its 88 segments (StoreMetadata), optionally A2 and
 * its 87 segments (ReplaceSessionKeys), A3 and its 86 segments (the profile
 * package). A container's elements may come in the same command as its
 * header or in later ones; the lengths of BF36 and A3 tell which segment is
 * the last.
 *
 * Rules: every segment's C-MAC is checked (crypto_scp03t_unprotect) before
 * its content is looked at; plaintext is only collected in RAM; nothing is
 * written until the whole package has been received and checked, and then
 * the profile and its ProfileInstallationResult go to the store in one
 * transaction. The first failure ends the load with a PIR carrying
 * errorResult (bppCommandId, errorReason), which is queued as a
 * notification and returned; the rest of the package is acknowledged with
 * an empty 9000 and dropped. Intermediate commands answer an empty 9000.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/rsp_bpp.h"

#include "euicc_int.h"

/* bppCommandId */
enum {
	CMD_INIT_SC = 0,
	CMD_CONFIGURE_ISDP = 1,
	CMD_STORE_METADATA = 2,
	CMD_STORE_METADATA2 = 3,
	CMD_REPLACE_SESSION_KEYS = 4,
	CMD_LOAD_PE = 5,
};

/* errorReason */
enum {
	ERR_INCORRECT_INPUT = 1,
	ERR_INVALID_SIGNATURE = 2,
	ERR_INVALID_TXID = 3,
	ERR_UNSUPPORTED_CRT = 4,
	ERR_UNSUPPORTED_REMOTE_OP = 5,
	ERR_UNSUPPORTED_CLASS = 6,
	ERR_SCP03T_STRUCTURE = 7,
	ERR_SCP03T_SECURITY = 8,
	ERR_ICCID_EXISTS = 9,
	ERR_NO_MEMORY = 10,
	ERR_PE_PROCESSING = 12,
	ERR_DATA_MISMATCH = 13,
	ERR_PPR_NOT_ALLOWED = 15,
	ERR_UNKNOWN = 127,
};

enum bpp_phase {
	PH_EXPECT_A0 = 0,
	PH_IN_A0,
	PH_EXPECT_A1,
	PH_IN_A1,
	PH_EXPECT_A2_A3,
	PH_IN_A2,
	PH_EXPECT_A3,
	PH_IN_A3,
	PH_END,
};

struct euicc_bpp {
	enum bpp_phase phase;
	size_t outer_left;     /* BF36 content not yet received */
	size_t container_left; /* content of the open A0..A3 not yet received */
	crypto_scp03t scp;
	unsigned n88;
	esim_buf plain;	  /* plaintext of the open A0 / A1 / A2 */
	uint8_t *dp_prop; /* B8 from ConfigureISDP */
	size_t dp_prop_len;
	bool configured;
	uint8_t *metadata; /* BF25 TLV */
	size_t metadata_len;
	struct euicc_meta_info meta;
	esim_buf upp;
	uint64_t room; /* bytes the profile may take */
};

void es10b_bpp_free(struct euicc_bpp *bpp)
{
	if (bpp == NULL)
		return;
	crypto_scp03t_clear(&bpp->scp);
	esim_buf_wipe_free(&bpp->plain);
	esim_buf_wipe_free(&bpp->upp);
	free(bpp->dp_prop);
	free(bpp->metadata);
	esim_wipe(bpp, sizeof *bpp);
	free(bpp);
}

static bool is_piece_tag(uint32_t t)
{
	return t == 0xA0 || t == 0xA1 || t == 0xA2 || t == 0xA3 || t == 0x86 || t == 0x87 ||
	       t == 0x88;
}

bool es10b_bpp_is_piece(const euicc *e, const uint8_t *cmd, size_t len)
{
	der_cursor c;
	uint32_t tag;
	der_cursor_init(&c, cmd, len);
	if (der_peek_tag(&c, &tag) != ESIM_OK)
		return false;
	if (tag == 0xBF36)
		return true;
	return (e->sess.state == SESS_BPP || e->sess.state == SESS_BPP_DONE) && is_piece_tag(tag);
}

/* Tag and length of an element whose content may not be all here (the
 * BF36 and A0..A3 headers); advances c past the header only. */
static esim_err read_header(der_cursor *c, uint32_t *tag, size_t *len)
{
	esim_err err = der_peek_tag(c, tag);
	if (err != ESIM_OK)
		return err;
	size_t tl = der_tag_len(*tag);
	if (c->len <= tl)
		return ESIM_E_DER_TRUNCATED_LENGTH;
	const uint8_t *p = c->p + tl;
	size_t n = c->len - tl, hl, v = 0;
	if (p[0] < 0x80) {
		v = p[0];
		hl = 1;
	} else {
		size_t k = p[0] & 0x7F;
		if (k == 0 || k > 4)
			return ESIM_E_DER_LENGTH_TOO_LONG;
		if (n < 1 + k)
			return ESIM_E_DER_TRUNCATED_LENGTH;
		if (p[1] == 0 || (k == 1 && p[1] < 0x80))
			return ESIM_E_DER_NONMINIMAL_LENGTH;
		for (size_t i = 0; i < k; i++)
			v = (v << 8) | p[1 + i];
		hl = 1 + k;
	}
	c->p += tl + hl;
	c->len -= tl + hl;
	*len = v;
	return ESIM_OK;
}

/* End the load with an errorResult PIR: queue it, return it. */
static esim_err fail(euicc *e, int cmd_id, int reason, esim_buf *resp)
{
	struct euicc_session *s = &e->sess;
	struct euicc_bpp *bpp = s->bpp;
	uint8_t iccid[EUICC_ICCID_LEN]; /* known once StoreMetadata was accepted */
	bool has_iccid = bpp != NULL && bpp->metadata != NULL;
	if (has_iccid)
		memcpy(iccid, bpp->meta.iccid, sizeof iccid);
	struct euicc_pir pir = {
	    .txid = s->txid,
	    .txid_len = s->txid_len,
	    .smdp_oid = s->smdp_oid,
	    .address = s->server_address,
	    .iccid = has_iccid ? iccid : NULL,
	    .success = false,
	    .bpp_command_id = cmd_id,
	    .error_reason = reason,
	};
	es10b_bpp_free(bpp);
	s->bpp = NULL;
	s->state = SESS_BPP_DONE;

	struct euicc_notif n = {.pmo = EUICC_PMO_INSTALL};
	esim_err err = store_begin(e->db);
	if (err != ESIM_OK)
		return err;
	err = euicc_db_next_seq(e->db, &n.seq);
	if (err == ESIM_OK) {
		pir.seq = n.seq;
		err = euicc_build_pir(&e->ids[s->ident], &pir, &n.meta, &n.meta_len, &n.data,
				      &n.data_len);
	}
	if (err == ESIM_OK)
		err = euicc_db_notif_insert(e->db, &n);
	if (err == ESIM_OK)
		err = store_commit(e->db);
	else
		store_rollback(e->db);
	if (err == ESIM_OK)
		err = esim_buf_append(resp, n.data, n.data_len);
	free(n.meta);
	free(n.data);
	return err;
}

/* InitialiseSecureChannelRequest checks (digest 7.6) and key agreement.
 * Returns an errorReason, 0 on success. */
static int init_secure_channel(euicc *e, const der_element *bf23, struct euicc_bpp *bpp)
{
	struct euicc_session *s = &e->sess;
	struct rsp_init_sc sc;
	if (rsp_init_sc_parse(bf23->tlv.p, bf23->tlv.len, &sc) != ESIM_OK)
		return ERR_INCORRECT_INPUT;
	/* smdpSign covers the BF23 content up to 5F37, then 5F49 41 otPK.EUICC */
	uint8_t own[CRYPTO_EC_POINT_LEN];
	if (crypto_key_public_point(s->otsk, own) != ESIM_OK)
		return ERR_UNKNOWN;
	if (rsp_init_sc_verify(&sc, crypto_cert_pubkey(s->dppb), own) != ESIM_OK)
		return ERR_INVALID_SIGNATURE;
	if (sc.remote_op != RSP_BPP_REMOTE_OP_INSTALL)
		return ERR_UNSUPPORTED_REMOTE_OP;
	if (sc.txid.len != s->txid_len || memcmp(sc.txid.b, s->txid, s->txid_len) != 0)
		return ERR_INVALID_TXID;
	if (sc.key_type != CRYPTO_BPP_KEY_TYPE_AES || sc.key_len != CRYPTO_BPP_KEY_LEN_16 ||
	    sc.host_id_len == 0)
		return ERR_UNSUPPORTED_CRT;

	uint8_t shs[CRYPTO_ECDH_LEN];
	if (crypto_ecdh_point(s->otsk, sc.otpk_dp, sizeof sc.otpk_dp, shs) != ESIM_OK)
		return ERR_INCORRECT_INPUT; /* smdpOtpk not on the one-time key's curve */
	struct crypto_bpp_keys keys;
	esim_err err = crypto_bpp_derive_keys(shs, sizeof shs, sc.key_type, sc.key_len, sc.host_id,
					      sc.host_id_len, e->eid, &keys);
	esim_wipe(shs, sizeof shs);
	if (err != ESIM_OK)
		return ERR_UNSUPPORTED_CRT;
	crypto_scp03t_init(&bpp->scp, &keys);
	crypto_bpp_keys_wipe(&keys);
	return 0;
}

static esim_err start(euicc *e, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	struct euicc_session *s = &e->sess;
	der_cursor c;
	der_cursor_init(&c, cmd, len);
	uint32_t tag;
	size_t outer;
	esim_err err = read_header(&c, &tag, &outer);
	if (err != ESIM_OK)
		return ESIM_E_EUICC_BAD_COMMAND;
	if (s->state != SESS_PREPARED)
		return ESIM_E_EUICC_CONDITIONS; /* no download prepared: nothing to report to */
	der_element bf23;
	err = der_get_tlv(&c, 0xBF23, &bf23);
	if (err != ESIM_OK || !der_cursor_empty(&c) || bf23.tlv.len > outer)
		return fail(e, CMD_INIT_SC, ERR_INCORRECT_INPUT, resp);

	struct euicc_bpp *bpp = calloc(1, sizeof *bpp);
	if (bpp == NULL)
		return ESIM_E_NOMEM;
	s->bpp = bpp;
	s->state = SESS_BPP;
	bpp->outer_left = outer - bf23.tlv.len;
	bpp->phase = PH_EXPECT_A0;
	uint64_t used = 0;
	err = euicc_db_used_bytes(e->db, &used);
	if (err != ESIM_OK)
		return err;
	bpp->room = used < e->capacity ? e->capacity - used : 0;
	if (bpp->room > EUICC_UPP_MAX)
		bpp->room = EUICC_UPP_MAX;
	int reason = init_secure_channel(e, &bf23, bpp);
	if (reason != 0)
		return fail(e, CMD_INIT_SC, reason, resp);
	return ESIM_OK;
}

/* Unprotect one segment into out; an errorReason or 0. */
static int unprotect(struct euicc_bpp *bpp, const der_element *seg, esim_buf *out)
{
	esim_err err = crypto_scp03t_unprotect_tlv(&bpp->scp, seg->tlv.p, seg->tlv.len, out);
	if (err == ESIM_OK)
		return 0;
	if (err == ESIM_E_CRYPTO_MAC_INVALID)
		return ERR_SCP03T_SECURITY;
	if (err == ESIM_E_NOMEM)
		return ERR_UNKNOWN;
	return ERR_SCP03T_STRUCTURE;
}

/* ConfigureISDPRequest BF24 { [B8 dpProprietaryData] } */
static int end_a0(struct euicc_bpp *bpp)
{
	der_cursor c, kids;
	der_cursor_init(&c, bpp->plain.data, bpp->plain.len);
	if (der_get_element(&c, 0xBF24, &kids) != ESIM_OK || der_expect_end(&c) != ESIM_OK)
		return ERR_INCORRECT_INPUT;
	bool has = false;
	der_element b8;
	der_cursor tmp = kids;
	if (der_get_optional(&tmp, 0xB8, &has, NULL) != ESIM_OK)
		return ERR_INCORRECT_INPUT;
	if (has) {
		if (der_get_tlv(&kids, 0xB8, &b8) != ESIM_OK || b8.tlv.len > 128)
			return ERR_INCORRECT_INPUT;
		bpp->dp_prop = malloc(b8.tlv.len);
		if (bpp->dp_prop == NULL)
			return ERR_UNKNOWN;
		memcpy(bpp->dp_prop, b8.tlv.p, b8.tlv.len);
		bpp->dp_prop_len = b8.tlv.len;
	}
	bpp->configured = true;
	return 0;
}

/* StoreMetadataRequest BF25 (digest 7.5); an errorReason or 0. */
static int end_a1(euicc *e, struct euicc_bpp *bpp)
{
	der_element el;
	if (der_parse_single(bpp->plain.data, bpp->plain.len, &el) != ESIM_OK || el.tag != 0xBF25 ||
	    el.tlv.len > EUICC_METADATA_MAX)
		return ERR_INCORRECT_INPUT;
	if (euicc_parse_metadata(el.tlv.p, el.tlv.len, &bpp->meta) != ESIM_OK)
		return ERR_INCORRECT_INPUT;
	if (bpp->meta.profile_class < 0 || bpp->meta.profile_class > 2)
		return ERR_UNSUPPORTED_CLASS;
	/* a policy rule this eUICC does not accept (EUICCInfo2 99, digest 7.5) */
	if (bpp->meta.ppr & e->forbidden_ppr)
		return ERR_PPR_NOT_ALLOWED;
	struct euicc_profile p = {0};
	esim_err err = euicc_db_profile_by_iccid(e->db, bpp->meta.iccid, &p);
	euicc_profile_clear(&p);
	if (err == ESIM_OK)
		return ERR_ICCID_EXISTS;
	if (err != ESIM_E_NOT_FOUND)
		return ERR_UNKNOWN;
	bpp->metadata = malloc(el.tlv.len);
	if (bpp->metadata == NULL)
		return ERR_UNKNOWN;
	memcpy(bpp->metadata, el.tlv.p, el.tlv.len);
	bpp->metadata_len = el.tlv.len;
	if (bpp->metadata_len > bpp->room)
		return ERR_NO_MEMORY;
	bpp->room -= bpp->metadata_len;
	return 0;
}

/* ReplaceSessionKeysRequest BF26 { 80 MCV, 81 PPK-ENC, 82 PPK-MAC } */
static int end_a2(struct euicc_bpp *bpp)
{
	der_cursor c, kids;
	der_span mcv, enc, mac;
	der_cursor_init(&c, bpp->plain.data, bpp->plain.len);
	if (der_get_element(&c, 0xBF26, &kids) != ESIM_OK || der_expect_end(&c) != ESIM_OK ||
	    der_get_octet_string(&kids, 0x80, &mcv) != ESIM_OK ||
	    der_get_octet_string(&kids, 0x81, &enc) != ESIM_OK ||
	    der_get_octet_string(&kids, 0x82, &mac) != ESIM_OK || mcv.len != 16 || enc.len != 16 ||
	    mac.len != 16)
		return ERR_INCORRECT_INPUT;
	crypto_scp03t_replace_keys(&bpp->scp, enc.p, mac.p, mcv.p);
	return 0;
}

/* The whole package is here: check it, then commit profile + PIR. */
static esim_err finish(euicc *e, esim_buf *resp)
{
	struct euicc_session *s = &e->sess;
	struct euicc_bpp *bpp = s->bpp;
	uint8_t header_iccid[EUICC_ICCID_LEN];
	if (bpp->outer_left != 0)
		return fail(e, CMD_LOAD_PE, ERR_SCP03T_STRUCTURE, resp);
	esim_err err = euicc_check_upp(bpp->upp.data, bpp->upp.len, header_iccid);
	if (err != ESIM_OK)
		return fail(e, CMD_LOAD_PE, ERR_PE_PROCESSING, resp);
	if (memcmp(header_iccid, bpp->meta.iccid, EUICC_ICCID_LEN) != 0)
		return fail(e, CMD_LOAD_PE, ERR_DATA_MISMATCH, resp);

	struct euicc_profile p = {
	    .profile_class = bpp->meta.profile_class,
	    .ppr = bpp->meta.ppr,
	    .metadata = bpp->metadata,
	    .metadata_len = bpp->metadata_len,
	    .dp_prop = bpp->dp_prop,
	    .dp_prop_len = bpp->dp_prop_len,
	};
	const struct euicc_ident *id = &e->ids[s->ident];
	memcpy(p.iccid, bpp->meta.iccid, EUICC_ICCID_LEN);
	memcpy(p.ci_pkid, id->ci_pkid, id->ci_pkid_len);
	p.ci_pkid_len = id->ci_pkid_len;

	struct euicc_pir pir = {
	    .txid = s->txid,
	    .txid_len = s->txid_len,
	    .smdp_oid = s->smdp_oid,
	    .address = s->server_address,
	    .iccid = bpp->meta.iccid,
	    .success = true,
	};
	struct euicc_notif n = {.pmo = EUICC_PMO_INSTALL};
	err = store_begin(e->db);
	if (err != ESIM_OK)
		return err;
	err = euicc_db_next_aid(e->db, p.aid);
	if (err == ESIM_OK)
		err = euicc_db_profile_insert(e->db, &p, bpp->upp.data, bpp->upp.len);
	if (err == ESIM_OK)
		err = euicc_db_next_seq(e->db, &n.seq);
	if (err == ESIM_OK) {
		pir.seq = n.seq;
		memcpy(pir.aid, p.aid, EUICC_AID_LEN);
		err = euicc_build_pir(id, &pir, &n.meta, &n.meta_len, &n.data, &n.data_len);
	}
	if (err == ESIM_OK)
		err = euicc_db_notif_insert(e->db, &n);
	if (err == ESIM_OK)
		err = store_commit(e->db);
	else
		store_rollback(e->db);
	if (err != ESIM_OK) {
		free(n.meta);
		free(n.data);
		if (err == ESIM_E_STORE_CONSTRAINT)
			return fail(e, CMD_LOAD_PE, ERR_ICCID_EXISTS, resp);
		return fail(e, CMD_LOAD_PE, ERR_UNKNOWN, resp);
	}
	/* installed: the one-time key has served its purpose */
	EVP_PKEY_free(s->otsk);
	s->otsk = NULL;
	es10b_bpp_free(bpp);
	s->bpp = NULL;
	s->state = SESS_BPP_DONE;
	err = esim_buf_append(resp, n.data, n.data_len);
	free(n.meta);
	free(n.data);
	return err;
}

/* The bppCommandId a failure in the current phase is reported under. */
static int phase_cmd(const struct euicc_bpp *bpp)
{
	switch (bpp->phase) {
	case PH_EXPECT_A0:
	case PH_IN_A0:
		return CMD_CONFIGURE_ISDP;
	case PH_EXPECT_A1:
	case PH_IN_A1:
		return bpp->n88 > 1 ? CMD_STORE_METADATA2 : CMD_STORE_METADATA;
	case PH_EXPECT_A2_A3:
	case PH_IN_A2:
		return CMD_REPLACE_SESSION_KEYS;
	default:
		return CMD_LOAD_PE;
	}
}

/* A container's content is complete: act on what it carried. */
static esim_err end_container(euicc *e, esim_buf *resp)
{
	struct euicc_bpp *bpp = e->sess.bpp;
	int reason = 0, cmd = phase_cmd(bpp);
	switch (bpp->phase) {
	case PH_IN_A0:
		reason = end_a0(bpp);
		bpp->phase = PH_EXPECT_A1;
		break;
	case PH_IN_A1:
		reason = end_a1(e, bpp);
		cmd = CMD_STORE_METADATA;
		bpp->phase = PH_EXPECT_A2_A3;
		break;
	case PH_IN_A2:
		reason = end_a2(bpp);
		bpp->phase = PH_EXPECT_A3;
		break;
	case PH_IN_A3:
		bpp->phase = PH_END;
		return finish(e, resp);
	default:
		return ESIM_E_INTERNAL;
	}
	esim_buf_wipe_free(&bpp->plain);
	if (reason != 0)
		return fail(e, cmd, reason, resp);
	return ESIM_OK;
}

static esim_err open_container(euicc *e, der_cursor *c, esim_buf *resp)
{
	struct euicc_bpp *bpp = e->sess.bpp;
	uint32_t tag;
	size_t len;
	const uint8_t *start = c->p;
	if (read_header(c, &tag, &len) != ESIM_OK)
		return fail(e, phase_cmd(bpp), ERR_SCP03T_STRUCTURE, resp);
	size_t hl = (size_t)(c->p - start);
	enum bpp_phase next;
	if (bpp->phase == PH_EXPECT_A0 && tag == 0xA0)
		next = PH_IN_A0;
	else if (bpp->phase == PH_EXPECT_A1 && tag == 0xA1)
		next = PH_IN_A1;
	else if (bpp->phase == PH_EXPECT_A2_A3 && tag == 0xA2)
		next = PH_IN_A2;
	else if ((bpp->phase == PH_EXPECT_A2_A3 || bpp->phase == PH_EXPECT_A3) && tag == 0xA3)
		next = PH_IN_A3;
	else
		return fail(e, phase_cmd(bpp), ERR_SCP03T_STRUCTURE, resp);
	if (hl + len > bpp->outer_left || len == 0)
		return fail(e, phase_cmd(bpp), ERR_SCP03T_STRUCTURE, resp);
	bpp->outer_left -= hl;
	bpp->container_left = len;
	bpp->phase = next;
	return ESIM_OK;
}

static esim_err segment(euicc *e, der_cursor *c, esim_buf *resp)
{
	struct euicc_bpp *bpp = e->sess.bpp;
	der_element seg;
	uint32_t want = bpp->phase == PH_IN_A1 ? 0x88 : bpp->phase == PH_IN_A3 ? 0x86 : 0x87;
	if (bpp->phase == PH_IN_A1)
		bpp->n88++;
	if (der_get_tlv(c, want, &seg) != ESIM_OK || seg.tlv.len > bpp->container_left)
		return fail(e, phase_cmd(bpp), ERR_SCP03T_STRUCTURE, resp);
	int reason;
	if (bpp->phase == PH_IN_A3) {
		reason = unprotect(bpp, &seg, &bpp->upp);
		if (reason == 0 && bpp->upp.len > bpp->room)
			reason = ERR_NO_MEMORY;
	} else {
		reason = unprotect(bpp, &seg, &bpp->plain);
		if (reason == 0 && bpp->plain.len > EUICC_METADATA_MAX)
			reason = ERR_INCORRECT_INPUT;
	}
	if (reason != 0)
		return fail(e, phase_cmd(bpp), reason, resp);
	bpp->container_left -= seg.tlv.len;
	bpp->outer_left -= seg.tlv.len;
	if (bpp->container_left == 0)
		return end_container(e, resp);
	return ESIM_OK;
}

esim_err es10b_bpp_piece(euicc *e, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	der_cursor c;
	uint32_t tag;
	der_cursor_init(&c, cmd, len);
	if (der_peek_tag(&c, &tag) != ESIM_OK)
		return ESIM_E_EUICC_BAD_COMMAND;
	if (tag == 0xBF36) {
		if (e->sess.state == SESS_BPP || e->sess.state == SESS_BPP_DONE)
			return ESIM_E_EUICC_CONDITIONS; /* one package per session */
		return start(e, cmd, len, resp);
	}
	if (e->sess.state == SESS_BPP_DONE)
		return ESIM_OK; /* the rest of a failed package: dropped */
	esim_err err = ESIM_OK;
	while (err == ESIM_OK && e->sess.state == SESS_BPP && !der_cursor_empty(&c)) {
		struct euicc_bpp *bpp = e->sess.bpp;
		bool in = bpp->phase == PH_IN_A0 || bpp->phase == PH_IN_A1 ||
			  bpp->phase == PH_IN_A2 || bpp->phase == PH_IN_A3;
		err = in ? segment(e, &c, resp) : open_container(e, &c, resp);
	}
	return err;
}
