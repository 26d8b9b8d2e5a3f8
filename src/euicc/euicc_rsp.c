/*
 * euicc_rsp: the eUICC's use of the rsp layer for the structures it signs
 * or must read exactly as its peers do (SGP.22 5.7.6, 3.5; digest 7.5, 8.2,
 * 13): the ProfileInstallationResult, the OtherSignedNotification, the
 * StoreMetadataRequest and the SAIP profile package header. The SM-DP+
 * verifies these with the same rsp code, so the encodings cannot drift.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp.h"

#include "euicc_int.h"

/* SAIP EUICCResponse with one PEStatus "ok": the simaResponse of a success
 * (digest 8.2). The package is kept, not executed, so there is no
 * per-element result to report. */
static const uint8_t euicc_response_ok[] = {0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00};

static esim_err fill_meta(struct rsp_notif_metadata *m, int64_t seq, enum rsp_event ev,
			  const char *addr, size_t addr_len, const uint8_t *iccid)
{
	memset(m, 0, sizeof *m);
	m->seq = (uint64_t)seq;
	m->event = ev;
	m->address = malloc(addr_len + 1);
	if (m->address == NULL)
		return ESIM_E_NOMEM;
	memcpy(m->address, addr, addr_len);
	m->address[addr_len] = '\0';
	if (iccid != NULL) {
		m->has_iccid = true;
		memcpy(m->iccid, iccid, RSP_ICCID_LEN);
	}
	return ESIM_OK;
}

esim_err euicc_build_pir(const struct euicc_ident *id, const struct euicc_pir *in, uint8_t **meta,
			 size_t *meta_len, uint8_t **data, size_t *data_len)
{
	struct rsp_pir pir;
	memset(&pir, 0, sizeof pir);
	esim_err err = rsp_txid_set(&pir.txid, in->txid, in->txid_len);
	if (err == ESIM_OK)
		err = fill_meta(&pir.meta, in->seq, RSP_EVENT_INSTALL, in->address,
				strlen(in->address), in->iccid);
	if (err != ESIM_OK) {
		rsp_notif_metadata_free(&pir.meta);
		return err;
	}
	snprintf(pir.smdp_oid, sizeof pir.smdp_oid, "%s", in->smdp_oid);
	pir.success = in->success;
	if (in->success) {
		memcpy(pir.aid, in->aid, EUICC_AID_LEN);
		pir.aid_len = EUICC_AID_LEN;
		pir.euicc_response = (uint8_t *)euicc_response_ok;
		pir.euicc_response_len = sizeof euicc_response_ok;
	} else {
		pir.bpp_command_id = in->bpp_command_id;
		pir.error_reason = in->error_reason;
	}
	err = rsp_notif_metadata_encode(&pir.meta, meta, meta_len);
	if (err == ESIM_OK) {
		err = rsp_pir_build(&pir, id->key, data, data_len);
		if (err != ESIM_OK) {
			free(*meta);
			*meta = NULL;
		}
	}
	pir.euicc_response = NULL; /* static, not owned */
	rsp_notif_metadata_free(&pir.meta);
	return err;
}

esim_err euicc_build_other_notification(const struct euicc_ident *id, int64_t seq,
					enum euicc_pmo pmo, der_span address,
					const uint8_t iccid[EUICC_ICCID_LEN], uint8_t **meta,
					size_t *meta_len, uint8_t **data, size_t *data_len)
{
	struct rsp_notif_metadata m;
	esim_err err =
	    fill_meta(&m, seq, (enum rsp_event)pmo, (const char *)address.p, address.len, iccid);
	if (err != ESIM_OK) {
		rsp_notif_metadata_free(&m);
		return err;
	}
	size_t cert_len, eum_len;
	const uint8_t *cert = crypto_cert_der(id->cert, &cert_len);
	const uint8_t *eum = crypto_cert_der(id->eum, &eum_len);
	err = rsp_notif_metadata_encode(&m, meta, meta_len);
	if (err == ESIM_OK) {
		err = rsp_other_notif_build(&m, id->key, cert, cert_len, eum, eum_len, data,
					    data_len);
		if (err != ESIM_OK) {
			free(*meta);
			*meta = NULL;
		}
	}
	rsp_notif_metadata_free(&m);
	return err;
}

esim_err euicc_parse_metadata(const uint8_t *bf25, size_t len, struct euicc_meta_info *out)
{
	struct rsp_metadata m;
	esim_err err = rsp_metadata_decode(bf25, len, &m);
	if (err != ESIM_OK)
		return err;
	memcpy(out->iccid, m.iccid, EUICC_ICCID_LEN);
	out->profile_class = m.has_class ? (int)m.profile_class : RSP_CLASS_OPERATIONAL;
	out->ppr = m.has_ppr ? m.ppr : 0;
	rsp_metadata_free(&m);
	return ESIM_OK;
}
