/*
 * The SM-DS on HTTP: ES11 on the paths LPAs use for it (SGP.22 6.5.2.x:
 * /gsma/rsp2/es9plus/initiateAuthentication and authenticateClient, as
 * lpac and euicc-go post them to an SM-DS) and in the ASN.1 binding on
 * /gsma/rsp2/asn1 (SGP.22 6.6), ES12 on /gsma/rsp2/es12/ (a
 * listener that requires the SM-DP+'s client certificate), and /healthz
 * on an admin listener of its own. The handlers are transport-free
 * (es11.c, es12.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esim/rsp_es9.h"
#include "smds_int.h"

#define ES11_PREFIX "/gsma/rsp2/es9plus/"
#define ES12_PREFIX "/gsma/rsp2/es12/"
/* an ES11 request is small: BF38 with the eUICC's two certificates */
#define ES11_ASN1_MAX_BODY (64 * 1024)

static bool json_content_type(const net_request *req)
{
	const char *ct = net_request_header(req, "Content-Type");
	return ct && strncasecmp(ct, "application/json", 16) == 0 &&
	       (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

static esim_err reply(net_response *resp, int status, char *body)
{
	esim_err err = net_response_set(resp, status, body ? NET_CONTENT_TYPE_JSON : NULL);
	if (err == ESIM_OK && body)
		err = net_response_append(resp, body, strlen(body));
	if (err == ESIM_OK && status == 503)
		err = net_response_add_header(resp, "Retry-After", "1");
	if (err == ESIM_OK)
		err = net_response_add_header(resp, "X-Admin-Protocol", NET_ADMIN_PROTOCOL);
	free(body);
	return err;
}

static esim_err bad_content_type(net_response *resp)
{
	struct smds_status st = SMDS_FAIL("1.2.1", "2.1", "Content-Type must be application/json");
	char *out = NULL;
	esim_err err = smds_json_finish(&st, NULL, &out);
	return err == ESIM_OK ? reply(resp, 200, out) : err;
}

static esim_err es11_handler(const net_request *req, net_response *resp, void *arg)
{
	if (!json_content_type(req))
		return bad_content_type(resp);
	int status = 500;
	char *out = NULL;
	esim_err err = smds_es11(arg, req->path + strlen(ES11_PREFIX), req->body, req->body_len,
				 &status, &out);
	return err == ESIM_OK ? reply(resp, status, out) : err;
}

/* smds_es11 as the ASN.1 binding's JSON handler. */
static esim_err es11_json(void *ctx, const char *function, const uint8_t *body, size_t len,
			  int *status, char **answer)
{
	return smds_es11(ctx, function, body, len, status, answer);
}

/* ES11 in the ASN.1 binding (SGP.22 6.6): one URL, a
 * RemoteProfileProvisioningRequest holding initiateAuthentication (BF39)
 * or authenticateClient (BF3B), answered with the function's response
 * (BF39, or AuthenticateClientResponseEs11 BF40 with the event entries).
 * The envelope and the translation are the library's (rsp_es9_asn1_serve,
 * shared with the SM-DP+); the checks are smds_es11's, as in JSON. Not
 * such a request, or another Content-Type: HTTP 400. */
static esim_err asn1_handler(const net_request *req, net_response *resp, void *arg)
{
	const char *ct = net_request_header(req, "Content-Type");
	size_t n = strlen(NET_CONTENT_TYPE_ASN1);
	int status = 400;
	uint8_t *out = NULL;
	size_t out_len = 0;
	esim_err err = ESIM_OK;
	if (ct && strncasecmp(ct, NET_CONTENT_TYPE_ASN1, n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) {
		struct rsp_es9_asn1_server srv = {
		    .es11 = true, .max_body = ES11_ASN1_MAX_BODY, .handler = es11_json, .ctx = arg};
		err = rsp_es9_asn1_serve(&srv, req->body, req->body_len, &status, &out, &out_len,
					 NULL);
	}
	if (err == ESIM_OK)
		err = net_response_set(resp, status, status == 200 ? NET_CONTENT_TYPE_ASN1 : NULL);
	if (err == ESIM_OK && out)
		err = net_response_append(resp, out, out_len);
	if (err == ESIM_OK && status == 503)
		err = net_response_add_header(resp, "Retry-After", "1");
	if (err == ESIM_OK)
		err = net_response_add_header(resp, "X-Admin-Protocol", NET_ADMIN_PROTOCOL);
	free(out);
	return err;
}

static esim_err es12_handler(const net_request *req, net_response *resp, void *arg)
{
	if (!json_content_type(req))
		return bad_content_type(resp);
	int status = 500;
	char *out = NULL;
	esim_err err = smds_es12(arg, req->path + strlen(ES12_PREFIX),
				 req->has_client_cert ? req->client_cert_sha256 : NULL, req->body,
				 req->body_len, &status, &out);
	return err == ESIM_OK ? reply(resp, status, out) : err;
}

esim_err smds_add_routes(smds *d, net_server *srv, int es11_listener, int es12_listener)
{
	static const char *const es11[] = {"initiateAuthentication", "authenticateClient"};
	static const char *const es12[] = {"registerEvent", "deleteEvent"};
	char path[96];
	esim_err err = ESIM_OK;
	for (size_t i = 0; err == ESIM_OK && es11_listener >= 0 && i < 2; i++) {
		snprintf(path, sizeof path, "%s%s", ES11_PREFIX, es11[i]);
		err = net_server_add_route(srv, es11_listener, "POST", path, es11_handler, d);
	}
	if (err == ESIM_OK && es11_listener >= 0)
		err = net_server_add_route(srv, es11_listener, "POST", "/gsma/rsp2/asn1",
					   asn1_handler, d);
	for (size_t i = 0; err == ESIM_OK && es12_listener >= 0 && i < 2; i++) {
		snprintf(path, sizeof path, "%s%s", ES12_PREFIX, es12[i]);
		err = net_server_add_route(srv, es12_listener, "POST", path, es12_handler, d);
	}
	return err;
}

static esim_err healthz_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	bool ok = smds_health(arg) == ESIM_OK;
	const char *text = ok ? "ok\n" : "store not answering\n";
	esim_err err = net_response_set(resp, ok ? 200 : 503, "text/plain");
	if (err == ESIM_OK)
		err = net_response_append(resp, text, strlen(text));
	return err;
}

esim_err smds_add_admin_routes(smds *d, net_server *srv, int admin_listener)
{
	if (!d || !srv || admin_listener < 0)
		return ESIM_E_ARG;
	return net_server_add_route(srv, admin_listener, "GET", "/healthz", healthz_handler, d);
}
