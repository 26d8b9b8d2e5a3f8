/*
 * The SM-DP+ on HTTP: routes for ES9+ (digest 5.1; JSON, and the ASN.1
 * binding on /gsma/rsp2/asn1) and ES2+ (digest 9.2)
 * on a net_server, the SGP.22 response headers, and the administrative
 * routes (/metrics, /healthz), which go on an admin listener of their own
 * and never on the public ES9+ / ES2+ ones: the counters say how the
 * service is used and fails, nothing an LPA or an operator needs. The
 * handlers themselves are transport-free (es9.c, es2.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smdp_int.h"

#define ES9_PREFIX "/gsma/rsp2/es9plus/"
#define ES2_PREFIX "/gsma/rsp2/es2plus/"

static const char *const es9_functions[] = {
    "initiateAuthentication", "authenticateClient", "getBoundProfilePackage",
    "handleNotification",     "cancelSession",
};
static const char *const es2_functions[] = {
    "downloadOrder",
    "confirmOrder",
    "cancelOrder",
    "releaseProfile",
};

static bool json_content_type(const net_request *req)
{
	const char *ct = net_request_header(req, "Content-Type");
	return ct && strncasecmp(ct, "application/json", 16) == 0 &&
	       (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

static esim_err reply(net_response *resp, int status, char *body)
{
	esim_err err;
	if (status == 204) {
		err = net_response_set(resp, 204, NULL);
	} else {
		/* 503 (es9.c: too many pending sessions) carries a Failed
		 * header too, and says when to come back */
		bool json = status == 200 || (status == 503 && body);
		err = net_response_set(resp, status, json ? NET_CONTENT_TYPE_JSON : NULL);
		if (err == ESIM_OK && body)
			err = net_response_append(resp, body, strlen(body));
		if (err == ESIM_OK && status == 503)
			err = net_response_add_header(resp, "Retry-After", "1");
	}
	if (err == ESIM_OK)
		err = net_response_add_header(resp, "X-Admin-Protocol", NET_ADMIN_PROTOCOL);
	free(body);
	return err;
}

static esim_err bad_content_type(smdp *d, net_response *resp)
{
	struct smdp_status st = SMDP_FAIL("1.2.1", "2.1", "Content-Type must be application/json");
	char *out = NULL;
	esim_err err = smdp_json_finish(d, smdp_json_header(&st), &st, &out);
	if (err != ESIM_OK)
		return err;
	return reply(resp, 200, out);
}

/* (impl) function requester with an expired (6.3) or otherwise unusable
 * (6.1) client certificate. */
static esim_err refuse_client_cert(smdp *d, net_response *resp, esim_err why)
{
	struct smdp_status st = why == ESIM_E_CERT_EXPIRED
				    ? SMDP_FAIL("1.1.1", "6.3", "client certificate expired")
				    : SMDP_FAIL("1.1.1", "6.1", "client certificate not valid now");
	atomic_fetch_add(&d->fail_es2, 1);
	smdp_logf(d, "es2_refused", "why=%s", esim_errname(why));
	char *out = NULL;
	esim_err err = smdp_json_finish(d, smdp_json_header(&st), &st, &out);
	if (err != ESIM_OK)
		return err;
	return reply(resp, 200, out);
}

/* The request's X-Request-Id when it is one (1..64 of [A-Za-z0-9._-]),
 * else a new one: a header from the network is never logged or stored as
 * it came. Answered back in the same header. */
static const char *request_id(const net_request *req, char buf[ESIM_REQUEST_ID_MAX + 1])
{
	return esim_request_id_pick(net_request_header(req, ESIM_REQUEST_ID_HEADER), buf);
}

/* One line per request (when log is on): which function, the HTTP status
 * and the request id; never the body. */
static void log_request(smdp *d, const char *rid, const char *iface, const char *fn, int status)
{
	if (!d->log)
		return;
	const struct esim_log_kv kv[] = {ESIM_LOG_S("function", fn), ESIM_LOG_I("status", status)};
	esim_log_emit(&d->logger, ESIM_LOG_INFO, rid, iface, kv, 2);
}

static esim_err es9_handler(const net_request *req, net_response *resp, void *arg)
{
	smdp *d = arg;
	const char *fn = req->path + strlen(ES9_PREFIX);
	char ridbuf[ESIM_REQUEST_ID_MAX + 1];
	const char *rid = request_id(req, ridbuf);
	if (!json_content_type(req))
		return bad_content_type(d, resp);
	int status = 500;
	char *out = NULL;
	esim_err err = smdp_es9_req(d, fn, req->body, req->body_len, rid, &status, &out);
	log_request(d, rid, "es9", fn, err == ESIM_OK ? status : 500);
	if (err != ESIM_OK)
		return err;
	err = reply(resp, status, out);
	if (err == ESIM_OK)
		err = net_response_add_header(resp, ESIM_REQUEST_ID_HEADER, rid);
	return err;
}

/* The ASN.1 binding: one URL for every ES9+ function (asn1.c). */
static esim_err asn1_handler(const net_request *req, net_response *resp, void *arg)
{
	smdp *d = arg;
	const char *ct = net_request_header(req, "Content-Type");
	size_t n = strlen(NET_CONTENT_TYPE_ASN1);
	int status = 400;
	uint8_t *out = NULL;
	size_t out_len = 0;
	esim_err err = ESIM_OK;
	if (ct && strncasecmp(ct, NET_CONTENT_TYPE_ASN1, n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
		err = smdp_es9_asn1(d, req->body, req->body_len, &status, &out, &out_len);
	if (err == ESIM_OK)
		err = net_response_set(resp, status, status == 200 ? NET_CONTENT_TYPE_ASN1 : NULL);
	if (err == ESIM_OK && out)
		err = net_response_append(resp, out, out_len);
	if (err == ESIM_OK && status == 503)
		err = net_response_add_header(resp, "Retry-After", "1");
	if (err == ESIM_OK)
		err = net_response_add_header(resp, "X-Admin-Protocol", NET_ADMIN_PROTOCOL);
	/* logged and answered with its id; the callbacks it queues do not
	 * carry it yet (smdp_es9_asn1 takes no request id) */
	char ridbuf[ESIM_REQUEST_ID_MAX + 1];
	const char *rid = request_id(req, ridbuf);
	log_request(d, rid, "es9-asn1", NULL, err == ESIM_OK ? status : 500);
	if (err == ESIM_OK)
		err = net_response_add_header(resp, ESIM_REQUEST_ID_HEADER, rid);
	free(out);
	return err;
}

static esim_err es2_handler(const net_request *req, net_response *resp, void *arg)
{
	smdp *d = arg;
	const char *fn = req->path + strlen(ES2_PREFIX);
	if (!json_content_type(req))
		return bad_content_type(d, resp);
	/* A pinned certificate passes the handshake whatever its validity
	 * (net_server accepts it as itself); an expired or not yet valid one
	 * is still no credential (digest 9.2), so the caller is refused here. */
	if (req->has_client_cert) {
		crypto_cert *c = NULL;
		esim_err ce = crypto_cert_load(req->client_cert_der, req->client_cert_der_len, &c);
		if (ce == ESIM_OK)
			ce = crypto_cert_check_time(c, smdp_now(d));
		crypto_cert_free(c);
		if (ce != ESIM_OK)
			return refuse_client_cert(d, resp, ce);
	}
	int status = 500;
	char *out = NULL;
	char ridbuf[ESIM_REQUEST_ID_MAX + 1];
	const char *rid = request_id(req, ridbuf);
	esim_err err = smdp_es2_auth(d, fn, req->has_client_cert ? req->client_cert_sha256 : NULL,
				     net_request_header(req, "Authorization"), req->body,
				     req->body_len, &status, &out);
	log_request(d, rid, "es2", fn, err == ESIM_OK ? status : 500);
	if (err != ESIM_OK)
		return err;
	err = reply(resp, status, out);
	if (err == ESIM_OK)
		err = net_response_add_header(resp, ESIM_REQUEST_ID_HEADER, rid);
	return err;
}

static esim_err metrics_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	char *text = NULL;
	esim_err err = smdp_metrics(arg, &text);
	if (err == ESIM_OK)
		err = net_response_set(resp, 200, "text/plain; version=0.0.4");
	if (err == ESIM_OK)
		err = net_response_append(resp, text, strlen(text));
	free(text);
	return err;
}

esim_err smdp_add_routes(smdp *d, net_server *srv, int es9_listener, int es2_listener)
{
	char path[128];
	esim_err err = ESIM_OK;
	for (size_t i = 0; err == ESIM_OK && i < sizeof es9_functions / sizeof *es9_functions;
	     i++) {
		snprintf(path, sizeof path, "%s%s", ES9_PREFIX, es9_functions[i]);
		err = net_server_add_route(srv, es9_listener, "POST", path, es9_handler, d);
	}
	for (size_t i = 0; err == ESIM_OK && i < sizeof es2_functions / sizeof *es2_functions;
	     i++) {
		snprintf(path, sizeof path, "%s%s", ES2_PREFIX, es2_functions[i]);
		err = net_server_add_route(srv, es2_listener, "POST", path, es2_handler, d);
	}
	if (err == ESIM_OK)
		err = net_server_add_route(srv, es9_listener, "POST", "/gsma/rsp2/asn1",
					   asn1_handler, d);
	return err;
}

static esim_err healthz_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	bool ok = smdp_health(arg) == ESIM_OK;
	const char *text = ok ? "ok\n" : "store not answering\n";
	esim_err err = net_response_set(resp, ok ? 200 : 503, "text/plain");
	if (err == ESIM_OK)
		err = net_response_append(resp, text, strlen(text));
	return err;
}

esim_err smdp_add_admin_routes(smdp *d, net_server *srv, int admin_listener)
{
	if (!d || !srv || admin_listener < 0)
		return ESIM_E_ARG; /* never -1: that would be every listener */
	esim_err err =
	    net_server_add_route(srv, admin_listener, "GET", "/metrics", metrics_handler, d);
	if (err == ESIM_OK)
		err = net_server_add_route(srv, admin_listener, "GET", "/healthz", healthz_handler,
					   d);
	return err;
}
