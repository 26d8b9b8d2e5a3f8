/*
 * euicc: the ISD-R's ES10 dispatcher and the card object (SGP.22 5.7,
 * digest 4.1).
 *
 * One ES10 command arrives complete (the APDU front has reassembled the
 * STORE DATA blocks); its outer tag selects the function. The only commands
 * that are not one whole TLV are the pieces of a bound profile package
 * (digest 3.5): they start with the BF36 header, then come A0..A3 headers
 * and 86/87/88 segments, and go to the BPP state machine (es10b_bpp.c).
 *
 * The RSP session (challenge, transaction, CERT.DPauth/DPpb, one-time key,
 * BPP progress) is RAM-only: a card reset or a new GetEUICCChallenge
 * forgets it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "euicc_int.h"

typedef esim_err (*es10_fn)(euicc *e, der_cursor *req, der_builder *b);

static const struct es10_entry {
	uint32_t tag;
	const char *name;
	es10_fn fn;
} es10_table[] = {
    {0xBF3C, "GetEuiccConfiguredAddresses", es10a_get_configured_addresses},
    {0xBF3F, "SetDefaultDpAddress", es10a_set_default_dp_address},
    {0xBF2E, "GetEUICCChallenge", es10b_get_challenge},
    {0xBF20, "GetEUICCInfo1", es10b_get_info1},
    {0xBF22, "GetEUICCInfo2", es10b_get_info2},
    {0xBF38, "AuthenticateServer", es10b_authenticate_server},
    {0xBF21, "PrepareDownload", es10b_prepare_download},
    {0xBF41, "CancelSession", es10b_cancel_session},
    {0xBF28, "ListNotification", es10b_list_notification},
    {0xBF2B, "RetrieveNotificationsList", es10b_retrieve_notifications},
    {0xBF30, "RemoveNotificationFromList", es10b_remove_notification},
    {0xBF43, "GetRAT", es10b_get_rat},
    {0xBF2D, "GetProfilesInfo", es10c_get_profiles_info},
    {0xBF31, "EnableProfile", es10c_enable},
    {0xBF32, "DisableProfile", es10c_disable},
    {0xBF33, "DeleteProfile", es10c_delete},
    {0xBF34, "eUICCMemoryReset", es10c_memory_reset},
    {0xBF3E, "GetEID", es10c_get_eid},
    {0xBF29, "SetNickname", es10c_set_nickname},
};

const char *euicc_es10_name(const uint8_t *cmd, size_t len)
{
	der_cursor c;
	uint32_t tag = 0;
	der_cursor_init(&c, cmd, len);
	if (der_peek_tag(&c, &tag) != ESIM_OK)
		return "unknown";
	switch (tag) {
	case 0xBF36:
	case 0xA0:
	case 0xA1:
	case 0xA2:
	case 0xA3:
	case 0x86:
	case 0x87:
	case 0x88:
		return "LoadBoundProfilePackage";
	case 0xBF35:
		return "LoadCRL";
	default:
		break;
	}
	for (size_t i = 0; i < sizeof es10_table / sizeof es10_table[0]; i++)
		if (es10_table[i].tag == tag)
			return es10_table[i].name;
	return "unknown";
}

esim_err euicc_bad(esim_err err)
{
	if (err >= ESIM_E_DER_TRUNCATED_TAG && err <= ESIM_E_DER_BUILDER_STATE)
		return ESIM_E_EUICC_BAD_COMMAND;
	return err;
}

esim_err euicc_result(der_builder *b, uint32_t tag, int64_t code)
{
	der_builder_open(b, tag);
	der_add_int64(b, 0x80, code);
	return der_builder_close(b);
}

void euicc_session_clear(euicc *e)
{
	struct euicc_session *s = &e->sess;
	/* dpauth and dppb are borrowed from the certificate cache */
	if (s->otsk != NULL) {
		/* A one-time key whose BPP never installed stays available for a
		 * bppEuiccOtpk retry in a later session (digest 15.2). */
		EVP_PKEY_free(e->retry_otsk);
		e->retry_otsk = s->otsk;
	}
	es10b_bpp_free(s->bpp);
	esim_wipe(s, sizeof *s);
	s->state = SESS_NONE;
}

void euicc_reset(euicc *e)
{
	euicc_session_clear(e);
}

esim_err euicc_es10(euicc *e, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	if (e == NULL || (cmd == NULL && len > 0) || resp == NULL)
		return ESIM_E_ARG;
	if (es10b_bpp_is_piece(e, cmd, len))
		return es10b_bpp_piece(e, cmd, len, resp);

	der_element el;
	esim_err err = der_parse_single(cmd, len, &el);
	if (err != ESIM_OK)
		return ESIM_E_EUICC_BAD_COMMAND;
	const struct es10_entry *ent = NULL;
	for (size_t i = 0; i < sizeof es10_table / sizeof es10_table[0]; i++)
		if (es10_table[i].tag == el.tag)
			ent = &es10_table[i];
	if (ent == NULL)
		return ESIM_E_EUICC_UNKNOWN_COMMAND;

	der_cursor req = der_cursor_of(el.value);
	der_builder b;
	der_builder_init(&b);
	err = euicc_bad(ent->fn(e, &req, &b));
	if (err == ESIM_OK) {
		uint8_t *out = NULL;
		size_t out_len = 0;
		err = der_builder_finish(&b, &out, &out_len);
		if (err == ESIM_OK) {
			err = esim_buf_append(resp, out, out_len);
			free(out);
		}
		/* a builder failure here is ours, never the command's */
		if (err >= ESIM_E_DER_TRUNCATED_TAG && err <= ESIM_E_DER_BUILDER_STATE)
			err = ESIM_E_INTERNAL;
	}
	der_builder_free(&b);
	return err;
}

esim_err euicc_front_es10(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len,
			  esim_buf *resp, uint16_t *sw)
{
	(void)channel; /* one ISD-R, one RSP session, whichever channel */
	esim_err err = euicc_es10(ctx, cmd, len, resp);
	if (err == ESIM_E_EUICC_BAD_COMMAND || err == ESIM_E_EUICC_UNKNOWN_COMMAND) {
		resp->len = 0;
		*sw = 0x6A80;
		return ESIM_OK;
	}
	if (err == ESIM_E_EUICC_CONDITIONS) {
		resp->len = 0;
		*sw = 0x6985;
		return ESIM_OK;
	}
	return err;
}

void euicc_front_reset(void *ctx)
{
	euicc_reset(ctx);
}

esim_err euicc_open(const struct euicc_config *cfg, euicc **out)
{
	if (cfg == NULL || out == NULL || cfg->db_url == NULL)
		return ESIM_E_ARG;
	euicc *e = calloc(1, sizeof *e);
	if (e == NULL)
		return ESIM_E_NOMEM;
	e->capacity = cfg->capacity ? cfg->capacity : EUICC_DEFAULT_CAPACITY;
	e->forbidden_ppr = cfg->forbidden_ppr;
	e->max_notifs =
	    cfg->max_notifications ? cfg->max_notifications : EUICC_DEFAULT_MAX_NOTIFICATIONS;
	const char *ds = cfg->root_ds_address ? cfg->root_ds_address : EUICC_DEFAULT_ROOT_DS;
	if (strlen(ds) > EUICC_ADDR_MAX) {
		free(e);
		return ESIM_E_ARG;
	}
	memcpy(e->root_ds, ds, strlen(ds) + 1);
	esim_err err = euicc_identity_load(e, cfg);
	if (err == ESIM_OK)
		err = euicc_db_open(cfg->db_url, &e->db);
	if (err != ESIM_OK) {
		euicc_close(e);
		return err;
	}
	*out = e;
	return ESIM_OK;
}

void euicc_close(euicc *e)
{
	if (e == NULL)
		return;
	euicc_session_clear(e);
	EVP_PKEY_free(e->retry_otsk);
	euicc_cert_cache_free(e); /* before the trust its entries point into */
	euicc_identity_free(e);
	store_close(e->db);
	free(e);
}

const uint8_t *euicc_eid(const euicc *e)
{
	return e->eid;
}

const char *euicc_eid_text(const euicc *e)
{
	return e->eid_text;
}
