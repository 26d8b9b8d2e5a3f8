/*
 * The plain request/response objects that ES9+ / ES2+ / ES11 handlers work
 * on (SGP.22 section 6.5: HTTP POST with a JSON or ASN.1 body, answered
 * with a status, a content type, X-Admin-Protocol and a body).
 *
 * They hold no libevent type, so that a handler can be unit-tested by
 * building a net_request by hand and reading the net_response it filled.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esim/net.h"

const char *net_request_header(const net_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	}
	return NULL;
}

void net_response_init(net_response *resp)
{
	memset(resp, 0, sizeof(*resp));
}

void net_response_clear(net_response *resp)
{
	free(resp->content_type);
	for (size_t i = 0; i < resp->n_headers; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	free(resp->headers);
	/* Bodies may carry session material (e.g. a bound profile package):
	 * wipe rather than just free. */
	esim_buf_wipe_free(&resp->body);
	memset(resp, 0, sizeof(*resp));
}

/* Header injection guard: a CR or LF in a name or value would let a value
 * that came from a peer start a new header or a new response. */
static bool header_text_ok(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

esim_err net_response_set(net_response *resp, int status, const char *content_type)
{
	if (status < 100 || status > 599)
		return ESIM_E_ARG;
	char *ct = NULL;
	if (content_type != NULL) {
		if (!header_text_ok(content_type))
			return ESIM_E_ARG;
		ct = strdup(content_type);
		if (ct == NULL)
			return ESIM_E_NOMEM;
	}
	free(resp->content_type);
	resp->content_type = ct;
	resp->status = status;
	return ESIM_OK;
}

esim_err net_response_add_header(net_response *resp, const char *name, const char *value)
{
	if (!header_text_ok(name) || !header_text_ok(value) || name[0] == '\0' ||
	    strchr(name, ':') != NULL)
		return ESIM_E_ARG;
	struct net_response_hdr *h =
	    realloc(resp->headers, (resp->n_headers + 1) * sizeof(*resp->headers));
	if (h == NULL)
		return ESIM_E_NOMEM;
	resp->headers = h;
	char *n = strdup(name), *v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return ESIM_E_NOMEM;
	}
	h[resp->n_headers].name = n;
	h[resp->n_headers].value = v;
	resp->n_headers++;
	return ESIM_OK;
}

esim_err net_response_append(net_response *resp, const void *data, size_t len)
{
	return esim_buf_append(&resp->body, data, len);
}

esim_err net_response_json(net_response *resp, int status, const json_t *json)
{
	char *text = json_dumps(json, JSON_COMPACT);
	if (text == NULL)
		return ESIM_E_NOMEM;
	esim_err err = net_response_set(resp, status, NET_CONTENT_TYPE_JSON);
	if (err == ESIM_OK)
		err = net_response_add_header(resp, "X-Admin-Protocol", NET_ADMIN_PROTOCOL);
	if (err == ESIM_OK)
		err = net_response_append(resp, text, strlen(text));
	free(text);
	return err;
}
