/*
 * A test LPA (LPAd) for the SM-DP+ tests and the load generator: the
 * download of SGP.22 3.1.3 and the notification loop of 3.5, with the
 * eUICC and the SM-DP+ behind callbacks. The messages and the LPA's
 * checks are the esim program's own: every ES9+ body is encoded and
 * decoded by the rsp_es9 codec, and each step runs the library's
 * rsp_es9_dl_* (serverSigned1 names our transaction, challenge and
 * address; smdpSigned2 our transaction), as src/lpa/download.c does.
 * What stays here is the order of the calls and the callbacks. Every TLV
 * the SM-DP+ sends crosses byte for byte into the ES10b requests.
 */
#include "lpa_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	rsp_es9_dl_clear(&s->dl);
	const struct lpa_driver *d = s->drv;
	memset(s, 0, sizeof *s);
	s->drv = d;
}

static esim_err es10(const struct lpa_driver *d, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	resp->len = 0;
	return d->es10(d->es10_ctx, cmd, len, resp);
}

/* One ES9+ call: rq encoded by the codec (the JSON the esim program
 * sends), the answer decoded by it into *out (may be NULL; caller clears)
 * and its failure codes kept in s. */
static esim_err es9(struct lpa_session *s, const struct rsp_es9_request *rq,
		    struct rsp_es9_response *out)
{
	struct rsp_es9_response local;
	if (!out)
		out = &local;
	memset(out, 0, sizeof *out);
	out->fn = rq->fn;
	char *text = NULL;
	size_t len = 0;
	esim_err err = rsp_es9_request_to_json(rq, &text, &len);
	if (err != ESIM_OK)
		return err;
	char *resp = NULL;
	int status = 0;
	err = s->drv->es9(s->drv->es9_ctx, rsp_es9_fn_name(rq->fn), text, &status, &resp);
	free(text);
	s->http_status = status;
	s->failed = false;
	s->subject[0] = s->reason[0] = '\0';
	if (err != ESIM_OK) {
		free(resp);
		return err;
	}
	if (status == 204 || !resp) {
		free(resp);
		return status == 204 || status == 200 ? ESIM_OK : ESIM_E_NET_HTTP_STATUS;
	}
	err = rsp_es9_response_from_json(rq->fn, (const uint8_t *)resp, strlen(resp), out, NULL);
	free(resp);
	if (err == ESIM_OK && out->status != RSP_ES9_SUCCESS && out->status != RSP_ES9_WARNING) {
		s->failed = true;
		snprintf(s->subject, sizeof s->subject, "%s", out->subject);
		snprintf(s->reason, sizeof s->reason, "%s", out->reason);
	}
	if (out == &local)
		rsp_es9_response_clear(&local);
	return err;
}

/* The transactionId the next request names: the session's hex, which a
 * test may have edited to send another session's. */
static esim_err sync_txid(struct lpa_session *s)
{
	return rsp_txid_from_hex(s->txid_hex, &s->dl.txid);
}

/* A copy the tests may read (or take) after the step. */
static esim_err keep(uint8_t **dst, size_t *len, der_span v)
{
	free(*dst);
	*dst = malloc(v.len ? v.len : 1);
	*len = 0;
	if (!*dst)
		return ESIM_E_NOMEM;
	if (v.len)
		memcpy(*dst, v.p, v.len);
	*len = v.len;
	return ESIM_OK;
}

esim_err lpa_dl_initiate(struct lpa_session *s)
{
	const struct lpa_driver *d = s->drv;
	esim_buf chal = ESIM_BUF_INIT, info1 = ESIM_BUF_INIT;
	static const uint8_t get_chal[] = {0xBF, 0x2E, 0x00};
	static const uint8_t get_info1[] = {0xBF, 0x20, 0x00};
	struct rsp_es9_request rq;
	struct rsp_es9_response resp;
	memset(&resp, 0, sizeof resp);
	esim_err err = rsp_es9_dl_init(&s->dl, d->smdp_address);
	if (err == ESIM_OK)
		err = es10(d, get_chal, sizeof get_chal, &chal);
	if (err == ESIM_OK)
		err = es10(d, get_info1, sizeof get_info1, &info1);
	if (err == ESIM_OK)
		err = rsp_es9_dl_initiate(&s->dl, chal.data, chal.len, info1.data, info1.len, &rq);
	if (err == ESIM_OK)
		err = es9(s, &rq, &resp);
	if (err == ESIM_OK && !s->failed) {
		s->txid = s->dl.txid = resp.u.initiate.txid;
		rsp_txid_to_hex(&s->txid, s->txid_hex);
		err = keep(&s->signed1, &s->signed1_len, resp.u.initiate.server_signed1);
		if (err == ESIM_OK)
			err = keep(&s->sig1, &s->sig1_len, resp.u.initiate.server_signature1);
		if (err == ESIM_OK)
			err = keep(&s->pkid, &s->pkid_len, resp.u.initiate.euicc_ci_pkid);
		if (err == ESIM_OK)
			err = keep(&s->server_cert, &s->server_cert_len,
				   resp.u.initiate.server_certificate);
	}
	rsp_es9_response_clear(&resp);
	esim_buf_free(&chal);
	esim_buf_free(&info1);
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
	/* the initiateAuthentication answer as kept (a test may have edited it) */
	struct rsp_es9_response init = {.fn = RSP_ES9_INITIATE_AUTHENTICATION};
	init.u.initiate.txid = s->txid;
	init.u.initiate.server_signed1 = (der_span){s->signed1, s->signed1_len};
	init.u.initiate.server_signature1 = (der_span){s->sig1, s->sig1_len};
	init.u.initiate.euicc_ci_pkid = (der_span){s->pkid, s->pkid_len};
	init.u.initiate.server_certificate = (der_span){s->server_cert, s->server_cert_len};
	uint8_t *req = NULL;
	size_t req_len = 0;
	esim_buf r = ESIM_BUF_INIT;
	struct rsp_es9_request rq;
	struct rsp_es9_response resp;
	memset(&resp, 0, sizeof resp);
	esim_err err =
	    rsp_es9_dl_authenticate_server(&s->dl, &init, matching_id, &dev, &req, &req_len);
	if (err == ESIM_OK)
		err = es10(s->drv, req, req_len, &r);
	free(req);
	if (err == ESIM_OK)
		err = sync_txid(s);
	if (err == ESIM_OK)
		err = rsp_es9_dl_authenticate_client(&s->dl, r.data, r.len, &rq);
	if (err == ESIM_OK)
		err = es9(s, &rq, &resp);
	esim_buf_free(&r);
	if (err == ESIM_OK && !s->failed)
		err = rsp_es9_dl_accept_authenticate(&s->dl, &resp);
	if (err == ESIM_OK && !s->failed) {
		const struct rsp_es9_response *a = &s->dl.auth;
		err = keep(&s->metadata, &s->metadata_len, a->u.authenticate.profile_metadata);
		if (err == ESIM_OK)
			err = keep(&s->signed2, &s->signed2_len, a->u.authenticate.smdp_signed2);
		if (err == ESIM_OK)
			err = keep(&s->sig2, &s->sig2_len, a->u.authenticate.smdp_signature2);
		if (err == ESIM_OK)
			err = keep(&s->smdp_cert, &s->smdp_cert_len,
				   a->u.authenticate.smdp_certificate);
		s->cc_required = s->dl.cc_required;
		s->has_bound_otpk = s->dl.bound_otpk;
	}
	rsp_es9_response_clear(&resp);
	return err;
}

esim_err lpa_dl_prepare(struct lpa_session *s, const char *cc)
{
	uint8_t *req = NULL;
	size_t req_len = 0;
	esim_buf r = ESIM_BUF_INIT;
	struct rsp_es9_request rq;
	struct rsp_es9_response resp;
	memset(&resp, 0, sizeof resp);
	esim_err err =
	    rsp_es9_dl_prepare_download(&s->dl, s->cc_required ? cc : NULL, &req, &req_len);
	if (err == ESIM_OK)
		err = es10(s->drv, req, req_len, &r);
	free(req);
	if (err == ESIM_OK)
		err = sync_txid(s);
	if (err == ESIM_OK)
		err = rsp_es9_dl_get_bpp(&s->dl, r.data, r.len, &rq);
	if (err == ESIM_OK)
		err = es9(s, &rq, &resp);
	esim_buf_free(&r);
	if (err == ESIM_OK && !s->failed)
		err = rsp_es9_dl_check_txid(&s->dl, &resp);
	if (err == ESIM_OK && !s->failed)
		err = keep(&s->bpp, &s->bpp_len, resp.u.get_bpp.bound_profile_package);
	rsp_es9_response_clear(&resp);
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
	struct rsp_es9_request rq;
	rsp_es9_dl_notification(s->pir, s->pir_len, &rq);
	esim_err err = es9(s, &rq, NULL);
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
	struct rsp_es9_request rq;
	if (err == ESIM_OK)
		err = sync_txid(s);
	if (err == ESIM_OK)
		err = rsp_es9_dl_cancel(&s->dl, r.data, r.len, &rq);
	if (err == ESIM_OK)
		err = es9(s, &rq, NULL);
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
			struct rsp_es9_request rq;
			rsp_es9_dl_notification(items[0].p, items[0].len, &rq);
			err = es9(&s, &rq, NULL);
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
