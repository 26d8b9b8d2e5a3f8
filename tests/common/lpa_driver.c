/*
 * A test LPA (LPAd) for the SM-DP+ tests and the load generator: the
 * download of digest section 6 and the notification loop of 8.3, with the
 * eUICC and the SM-DP+ behind callbacks. It copies every TLV the SM-DP+
 * sends byte for byte into the ES10b requests, as a real LPA must.
 */
#include "lpa_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "esim/der.h"
#include "esim/rsp_auth.h"
#include "esim/rsp_bpp.h"
#include "esim/rsp_es10.h"

void lpa_session_init(struct lpa_session *s, const struct lpa_driver *drv)
{
	memset(s, 0, sizeof *s);
	s->drv = drv;
}

void lpa_session_clear(struct lpa_session *s)
{
	free(s->signed1);
	free(s->sig1);
	free(s->pkid);
	free(s->server_cert);
	free(s->metadata);
	free(s->signed2);
	free(s->sig2);
	free(s->smdp_cert);
	free(s->bpp);
	free(s->pir);
	const struct lpa_driver *d = s->drv;
	memset(s, 0, sizeof *s);
	s->drv = d;
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static esim_err es10(const struct lpa_driver *d, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	resp->len = 0;
	return d->es10(d->es10_ctx, cmd, len, resp);
}

/* POST obj (stolen); on 200 parse the answer into *out (caller decrefs)
 * and fill the failure codes. */
static esim_err es9(struct lpa_session *s, const char *fn, json_t *obj, json_t **out)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!text)
		return ESIM_E_NOMEM;
	char *resp = NULL;
	int status = 0;
	esim_err err = s->drv->es9(s->drv->es9_ctx, fn, text, &status, &resp);
	free(text);
	s->http_status = status;
	s->failed = false;
	s->subject[0] = s->reason[0] = '\0';
	if (out)
		*out = NULL;
	if (err != ESIM_OK) {
		free(resp);
		return err;
	}
	if (status == 204 || !resp) {
		free(resp);
		return status == 204 || status == 200 ? ESIM_OK : ESIM_E_NET_HTTP_STATUS;
	}
	json_t *j = json_loads(resp, 0, NULL);
	free(resp);
	if (!j)
		return ESIM_E_NET_JSON;
	json_t *fes = json_object_get(json_object_get(j, "header"), "functionExecutionStatus");
	const char *st = json_string_value(json_object_get(fes, "status"));
	if (!st) {
		json_decref(j);
		return ESIM_E_NET_JSON_FIELD;
	}
	if (strcmp(st, "Executed-Success") != 0) {
		json_t *scd = json_object_get(fes, "statusCodeData");
		s->failed = true;
		snprintf(s->subject, sizeof s->subject, "%s",
			 str_or_empty(json_string_value(json_object_get(scd, "subjectCode"))));
		snprintf(s->reason, sizeof s->reason, "%s",
			 str_or_empty(json_string_value(json_object_get(scd, "reasonCode"))));
	}
	if (out)
		*out = j;
	else
		json_decref(j);
	return ESIM_OK;
}

static esim_err b64_field(const json_t *j, const char *f, uint8_t **out, size_t *len)
{
	free(*out);
	*out = NULL;
	return net_json_get_base64(j, f, 1 << 20, out, len, NULL);
}

esim_err lpa_dl_initiate(struct lpa_session *s)
{
	const struct lpa_driver *d = s->drv;
	esim_buf r = ESIM_BUF_INIT;
	static const uint8_t get_chal[] = {0xBF, 0x2E, 0x00};
	static const uint8_t get_info1[] = {0xBF, 0x20, 0x00};
	uint8_t chal[16];
	json_t *resp = NULL;
	esim_err err = es10(d, get_chal, sizeof get_chal, &r);
	if (err == ESIM_OK)
		err = rsp_challenge_parse(r.data, r.len, chal);
	if (err == ESIM_OK)
		err = es10(d, get_info1, sizeof get_info1, &r);
	if (err != ESIM_OK) {
		esim_buf_free(&r);
		return err;
	}
	json_t *o = json_object();
	json_object_set_new(o, "smdpAddress", json_string(d->smdp_address));
	net_json_set_base64(o, "euiccChallenge", chal, sizeof chal);
	net_json_set_base64(o, "euiccInfo1", r.data, r.len);
	esim_buf_free(&r);
	err = es9(s, "initiateAuthentication", o, &resp);
	if (err == ESIM_OK && !s->failed) {
		const char *tx = json_string_value(json_object_get(resp, "transactionId"));
		if (!tx || rsp_txid_from_hex(tx, &s->txid) != ESIM_OK)
			err = ESIM_E_NET_JSON_FIELD;
		else
			snprintf(s->txid_hex, sizeof s->txid_hex, "%s", tx);
		if (err == ESIM_OK)
			err = b64_field(resp, "serverSigned1", &s->signed1, &s->signed1_len);
		if (err == ESIM_OK)
			err = b64_field(resp, "serverSignature1", &s->sig1, &s->sig1_len);
		if (err == ESIM_OK)
			err = b64_field(resp, "euiccCiPKIdToBeUsed", &s->pkid, &s->pkid_len);
		if (err == ESIM_OK)
			err = b64_field(resp, "serverCertificate", &s->server_cert,
					&s->server_cert_len);
	}
	json_decref(resp);
	return err;
}

esim_err lpa_dl_authenticate(struct lpa_session *s, const char *matching_id)
{
	static const uint8_t caps[] = {0x80, 0x03, 0x0D, 0x00, 0x00, 0x85, 0x03, 0x0F, 0x00, 0x00};
	struct rsp_device_info dev = {
	    .tac = {0x35, 0x29, 0x06, 0x11},
	    .capabilities = caps,
	    .capabilities_len = sizeof caps,
	};
	uint8_t *req = NULL;
	size_t req_len = 0;
	esim_buf r = ESIM_BUF_INIT;
	json_t *resp = NULL;
	esim_err err = rsp_auth_server_req_build(
	    s->signed1, s->signed1_len, s->sig1, s->sig1_len, s->pkid, s->pkid_len, s->server_cert,
	    s->server_cert_len, matching_id, &dev, &req, &req_len);
	if (err == ESIM_OK)
		err = es10(s->drv, req, req_len, &r);
	free(req);
	if (err != ESIM_OK) {
		esim_buf_free(&r);
		return err;
	}
	json_t *o = json_object();
	json_object_set_new(o, "transactionId", json_string(s->txid_hex));
	net_json_set_base64(o, "authenticateServerResponse", r.data, r.len);
	esim_buf_free(&r);
	err = es9(s, "authenticateClient", o, &resp);
	if (err == ESIM_OK && !s->failed) {
		err = b64_field(resp, "profileMetadata", &s->metadata, &s->metadata_len);
		if (err == ESIM_OK)
			err = b64_field(resp, "smdpSigned2", &s->signed2, &s->signed2_len);
		if (err == ESIM_OK)
			err = b64_field(resp, "smdpSignature2", &s->sig2, &s->sig2_len);
		if (err == ESIM_OK)
			err = b64_field(resp, "smdpCertificate", &s->smdp_cert, &s->smdp_cert_len);
		/* smdpSigned2 = 30 { 80 txId, 01 ccRequiredFlag, [5F49 otPK] } */
		der_cursor top, in;
		der_span tx;
		bool present = false;
		der_cursor_init(&top, s->signed2, s->signed2_len);
		if (err == ESIM_OK)
			err = der_get_sequence(&top, 0x30, &in);
		if (err == ESIM_OK)
			err = der_get_octet_string(&in, 0x80, &tx);
		if (err == ESIM_OK)
			err = der_get_bool(&in, 0x01, &s->cc_required);
		if (err == ESIM_OK)
			err = der_get_optional(&in, 0x5F49, &present, NULL);
		s->has_bound_otpk = present;
	}
	json_decref(resp);
	return err;
}

esim_err lpa_dl_prepare(struct lpa_session *s, const char *cc)
{
	uint8_t hash[32];
	bool use_cc = s->cc_required && cc;
	esim_err err = ESIM_OK;
	if (use_cc)
		err = rsp_hash_cc(cc, strlen(cc), &s->txid, hash);
	uint8_t *req = NULL;
	size_t req_len = 0;
	esim_buf r = ESIM_BUF_INIT;
	json_t *resp = NULL;
	if (err == ESIM_OK)
		err = rsp_prepare_download_req_build(
		    s->signed2, s->signed2_len, s->sig2, s->sig2_len, use_cc ? hash : NULL,
		    s->smdp_cert, s->smdp_cert_len, &req, &req_len);
	if (err == ESIM_OK)
		err = es10(s->drv, req, req_len, &r);
	free(req);
	if (err != ESIM_OK) {
		esim_buf_free(&r);
		return err;
	}
	json_t *o = json_object();
	json_object_set_new(o, "transactionId", json_string(s->txid_hex));
	net_json_set_base64(o, "prepareDownloadResponse", r.data, r.len);
	esim_buf_free(&r);
	err = es9(s, "getBoundProfilePackage", o, &resp);
	if (err == ESIM_OK && !s->failed)
		err = b64_field(resp, "boundProfilePackage", &s->bpp, &s->bpp_len);
	json_decref(resp);
	return err;
}

esim_err lpa_dl_load(struct lpa_session *s)
{
	der_span *chunks = NULL;
	size_t n = 0;
	esim_buf r = ESIM_BUF_INIT;
	esim_err err = rsp_bpp_split(s->bpp, s->bpp_len, &chunks, &n);
	for (size_t i = 0; err == ESIM_OK && i < n; i++) {
		err = es10(s->drv, chunks[i].p, chunks[i].len, &r);
		if (err == ESIM_OK && r.len > 0)
			break; /* the PIR: done, or the first error */
	}
	free(chunks);
	if (err == ESIM_OK && r.len == 0)
		err = ESIM_E_RSP_BPP_STRUCTURE;
	if (err == ESIM_OK) {
		struct rsp_pir pir;
		err = rsp_pir_parse(r.data, r.len, &pir);
		if (err == ESIM_OK) {
			s->pir_success = pir.success;
			rsp_pir_free(&pir);
			free(s->pir);
			s->pir = r.data;
			s->pir_len = r.len;
			r.data = NULL;
		}
	}
	esim_buf_free(&r);
	return err;
}

static esim_err remove_notification(const struct lpa_driver *d, uint64_t seq)
{
	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf r = ESIM_BUF_INIT;
	esim_err err = rsp_remove_notification_req(seq, &req, &len);
	if (err == ESIM_OK)
		err = es10(d, req, len, &r);
	int64_t res = -1;
	if (err == ESIM_OK)
		err = rsp_es10_result_parse(r.data, r.len, 0xBF30, &res);
	if (err == ESIM_OK && res != 0)
		err = ESIM_E_RSP_EUICC_ERROR;
	free(req);
	esim_buf_free(&r);
	return err;
}

esim_err lpa_dl_notify(struct lpa_session *s)
{
	if (!s->pir)
		return ESIM_E_ARG;
	json_t *o = json_object();
	net_json_set_base64(o, "pendingNotification", s->pir, s->pir_len);
	esim_err err = es9(s, "handleNotification", o, NULL);
	if (err == ESIM_OK && s->http_status != 204)
		err = ESIM_E_NET_HTTP_STATUS;
	struct rsp_pir pir;
	if (err == ESIM_OK && (err = rsp_pir_parse(s->pir, s->pir_len, &pir)) == ESIM_OK) {
		err = remove_notification(s->drv, pir.meta.seq);
		rsp_pir_free(&pir);
	}
	return err;
}

esim_err lpa_dl_cancel(struct lpa_session *s, int reason)
{
	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf r = ESIM_BUF_INIT;
	esim_err err =
	    rsp_cancel_session_req_build(&s->txid, (enum rsp_cancel_reason)reason, &req, &len);
	if (err == ESIM_OK)
		err = es10(s->drv, req, len, &r);
	free(req);
	if (err == ESIM_OK) {
		json_t *o = json_object();
		json_object_set_new(o, "transactionId", json_string(s->txid_hex));
		net_json_set_base64(o, "cancelSessionResponse", r.data, r.len);
		err = es9(s, "cancelSession", o, NULL);
	}
	esim_buf_free(&r);
	return err;
}

esim_err lpa_download(struct lpa_session *s, const char *matching_id, const char *cc)
{
	esim_err err = lpa_dl_initiate(s);
	if (err == ESIM_OK && !s->failed)
		err = lpa_dl_authenticate(s, matching_id);
	if (err == ESIM_OK && !s->failed)
		err = lpa_dl_prepare(s, cc);
	if (err == ESIM_OK && !s->failed)
		err = lpa_dl_load(s);
	if (err == ESIM_OK && !s->failed)
		err = lpa_dl_notify(s);
	if (err == ESIM_OK && (s->failed || !s->pir_success))
		err = ESIM_E_RSP_EUICC_ERROR;
	return err;
}

esim_err lpa_send_notifications(const struct lpa_driver *d, size_t *sent)
{
	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf r = ESIM_BUF_INIT;
	struct rsp_notif_list list = {0};
	int64_t code = 0;
	if (sent)
		*sent = 0;
	esim_err err = rsp_list_notification_req(0, &req, &len);
	if (err == ESIM_OK)
		err = es10(d, req, len, &r);
	free(req);
	if (err == ESIM_OK)
		err = rsp_list_notification_parse(r.data, r.len, &list, &code);
	for (size_t i = 0; err == ESIM_OK && i < list.n; i++) {
		der_span *items = NULL;
		size_t n_items = 0;
		err = rsp_retrieve_notification_req(list.items[i].seq, &req, &len);
		if (err == ESIM_OK)
			err = es10(d, req, len, &r);
		free(req);
		if (err == ESIM_OK)
			err =
			    rsp_retrieve_notification_parse(r.data, r.len, &items, &n_items, &code);
		if (err == ESIM_OK && n_items == 1) {
			struct lpa_session s;
			lpa_session_init(&s, d);
			json_t *o = json_object();
			net_json_set_base64(o, "pendingNotification", items[0].p, items[0].len);
			err = es9(&s, "handleNotification", o, NULL);
			if (err == ESIM_OK && s.http_status == 204) {
				err = remove_notification(d, list.items[i].seq);
				if (err == ESIM_OK && sent)
					(*sent)++;
			}
		}
		free(items);
	}
	rsp_notif_list_free(&list);
	esim_buf_free(&r);
	return err;
}

esim_err lpa_es9_http(void *ctx, const char *function, const char *json, int *status, char **out)
{
	struct lpa_http *h = ctx;
	char url[512];
	snprintf(url, sizeof url, "%s/gsma/rsp2/es9plus/%s", h->base_url, function);
	struct net_client_response r;
	esim_err err = net_client_post_json(h->client, url, json, strlen(json), &r);
	*out = NULL;
	*status = (int)r.status;
	if (err == ESIM_OK && r.status == 200) {
		*out = malloc(r.body.len + 1);
		if (!*out) {
			err = ESIM_E_NOMEM;
		} else {
			memcpy(*out, r.body.data, r.body.len);
			(*out)[r.body.len] = '\0';
		}
	}
	net_client_response_clear(&r);
	return err;
}
