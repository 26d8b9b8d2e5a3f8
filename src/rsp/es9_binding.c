/*
 * A server's ASN.1 binding of ES9+ and ES11 (SGP.22 6.6: one URL, POST
 * /gsma/rsp2/asn1, Content-Type application/x-gsma-rsp-asn1), as a
 * translation in front of its JSON handlers, shared by the SM-DP+ (ES9+,
 * src/smdp/asn1.c) and the SM-DS (ES11, src/smds/http.c).
 *
 * The body must be a RemoteProfileProvisioningRequest ([2] CHOICE, A2)
 * around exactly one request of a function the server offers; anything
 * else is a protocol fault (HTTP 400, no body). The request is decoded
 * (es9_asn1.c), re-encoded as that function's JSON body, and the server's
 * JSON handler runs it: the same checks, sessions and codes as the JSON
 * binding. A request that does not follow its structure reaches the
 * handler as an empty object, so that the handler answers "mandatory
 * element missing" as in the JSON binding; the caller learns of it
 * (fault) to log it. The JSON answer is decoded and re-encoded as the
 * function's RemoteProfileProvisioningResponse (a failure as the
 * function's error INTEGER). For ES11 the authenticateClient answer is
 * AuthenticateClientResponseEs11 (BF40, the event entries). Every signed
 * object crosses as its complete TLV, byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/der.h"
#include "esim/rsp_es9.h"

/* The function a RemoteProfileProvisioningRequest holds; false when the
 * body is not A2 around exactly one element of a function offered. */
static bool envelope_fn(const uint8_t *body, size_t len, bool es11, enum rsp_es9_fn *fn)
{
	static const struct {
		uint32_t tag;
		enum rsp_es9_fn fn;
		bool es11;
	} map[] = {
	    {0xBF39, RSP_ES9_INITIATE_AUTHENTICATION, true},
	    {0xBF3B, RSP_ES9_AUTHENTICATE_CLIENT, true},
	    {0xBF3A, RSP_ES9_GET_BOUND_PROFILE_PACKAGE, false},
	    {0xBF41, RSP_ES9_CANCEL_SESSION, false},
	    {0xBF3D, RSP_ES9_HANDLE_NOTIFICATION, false},
	};
	der_cursor top, outer;
	der_element fe;
	der_cursor_init(&top, body, len);
	if (der_get_sequence(&top, 0xA2, &outer) != ESIM_OK || der_expect_end(&top) != ESIM_OK ||
	    der_get_any(&outer, &fe) != ESIM_OK || der_expect_end(&outer) != ESIM_OK)
		return false;
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (map[i].tag == fe.tag && (map[i].es11 || !es11)) {
			*fn = map[i].fn;
			return true;
		}
	return false;
}

esim_err rsp_es9_asn1_serve(const struct rsp_es9_asn1_server *srv, const uint8_t *body, size_t len,
			    int *status, uint8_t **out, size_t *out_len,
			    struct rsp_es9_asn1_fault *fault)
{
	if (!srv || !srv->handler || !status || !out || !out_len || (!body && len))
		return ESIM_E_ARG;
	*out = NULL;
	*out_len = 0;
	*status = 400;
	if (fault)
		*fault = (struct rsp_es9_asn1_fault){0};
	enum rsp_es9_fn fn;
	if ((srv->max_body && len > srv->max_body) || !envelope_fn(body, len, srv->es11, &fn))
		return ESIM_OK; /* not a RemoteProfileProvisioningRequest: protocol fault */
	struct rsp_es9_request rq;
	const char *field = NULL;
	char *text = NULL;
	size_t text_len = 0;
	esim_err err = rsp_es9_request_from_asn1(body, len, &rq, &field);
	if (err == ESIM_OK) {
		err = rsp_es9_request_to_json(&rq, &text, &text_len);
	} else {
		if (fault)
			*fault = (struct rsp_es9_asn1_fault){
			    .malformed = true, .fn = fn, .field = field, .err = err};
		text = strdup("{}"); /* the handler names what is missing */
		text_len = 2;
		err = text ? ESIM_OK : ESIM_E_NOMEM;
	}
	rsp_es9_request_clear(&rq);
	if (err != ESIM_OK)
		return err;
	char *answer = NULL;
	err = srv->handler(srv->ctx, rsp_es9_fn_name(fn), (const uint8_t *)text, text_len, status,
			   &answer);
	free(text);
	if (err != ESIM_OK || *status != 200) {
		free(answer);
		return err;
	}
	if (srv->es11 && fn == RSP_ES9_AUTHENTICATE_CLIENT)
		fn = RSP_ES11_AUTHENTICATE_CLIENT; /* answered with the event entries, BF40 */
	struct rsp_es9_response rs;
	err = answer ? rsp_es9_response_from_json(fn, (const uint8_t *)answer, strlen(answer), &rs,
						  &field)
		     : ESIM_E_ARG;
	free(answer);
	if (err == ESIM_OK)
		err = rsp_es9_response_to_asn1(&rs, out, out_len);
	rsp_es9_response_clear(&rs);
	return err;
}
