/*
 * ES9+ in the ASN.1 binding (SGP.22 6.6, HTTP function binding in ASN.1):
 * one URL, POST /gsma/rsp2/asn1 with Content-Type
 * application/x-gsma-rsp-asn1, whose body is a RemoteProfileProvisioningRequest
 * ([2] CHOICE, tag A2) holding one function's request, and whose answer is a
 * RemoteProfileProvisioningResponse (A2) holding that function's response.
 *
 * The binding is a translation only, and the translating is the codec's
 * (include/esim/rsp_es9.h, src/rsp/es9_asn1.c, which derives every tag from
 * RSPDefinitions' automatic tagging: CancelSessionRequestEs9 carries the
 * eUICC's answer as [1] A1, HandleNotification its notification inside
 * [0] A0): the request is decoded, re-encoded as the JSON body of the same
 * function, smdp_es9() (the same handlers, sessions and checks) runs it, and
 * its JSON answer is decoded and re-encoded as the function's response, a
 * failure as the function's error INTEGER (rsp_es9_error_code). Every
 * signed object crosses as its complete TLV, byte for byte.
 *
 * An envelope that is not A2 around one known function is a protocol fault
 * (HTTP 400). A function request that does not follow its structure is
 * that function's failure, as in the JSON binding: the handler gets an
 * empty body and answers "mandatory element missing" (undefinedError here;
 * handleNotification: 204).
 */
#include <stdlib.h>
#include <string.h>

#include "esim/der.h"
#include "esim/rsp_es9.h"
#include "smdp_int.h"

#define ASN1_MAX_BODY (256 * 1024)

/* The function a RemoteProfileProvisioningRequest holds; false when the
 * body is not A2 around exactly one element of a known function's tag. */
static bool envelope_fn(const uint8_t *body, size_t len, enum rsp_es9_fn *fn)
{
	static const struct {
		uint32_t tag;
		enum rsp_es9_fn fn;
	} map[] = {
	    {0xBF39, RSP_ES9_INITIATE_AUTHENTICATION},	 {0xBF3B, RSP_ES9_AUTHENTICATE_CLIENT},
	    {0xBF3A, RSP_ES9_GET_BOUND_PROFILE_PACKAGE}, {0xBF41, RSP_ES9_CANCEL_SESSION},
	    {0xBF3D, RSP_ES9_HANDLE_NOTIFICATION},
	};
	der_cursor top, outer;
	der_element fe;
	der_cursor_init(&top, body, len);
	if (der_get_sequence(&top, 0xA2, &outer) != ESIM_OK || der_expect_end(&top) != ESIM_OK ||
	    der_get_any(&outer, &fe) != ESIM_OK || der_expect_end(&outer) != ESIM_OK)
		return false;
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (map[i].tag == fe.tag) {
			*fn = map[i].fn;
			return true;
		}
	return false;
}

esim_err smdp_es9_asn1(smdp *d, const uint8_t *body, size_t len, int *status, uint8_t **out,
		       size_t *out_len)
{
	if (!d || !status || !out || !out_len || (!body && len))
		return ESIM_E_ARG;
	*out = NULL;
	*out_len = 0;
	*status = 400;
	enum rsp_es9_fn fn;
	if (len > ASN1_MAX_BODY || !envelope_fn(body, len, &fn))
		return ESIM_OK; /* not a RemoteProfileProvisioningRequest: protocol fault */
	struct rsp_es9_request rq;
	const char *field = NULL;
	char *text = NULL;
	size_t text_len = 0;
	esim_err err = rsp_es9_request_from_asn1(body, len, &rq, &field);
	if (err == ESIM_OK) {
		err = rsp_es9_request_to_json(&rq, &text, &text_len);
	} else {
		smdp_logf(d, "es9_asn1_malformed", "function=%s field=%s error=%s",
			  rsp_es9_fn_name(fn), field ? field : "-", esim_errname(err));
		text = strdup("{}"); /* the handler names what is missing */
		text_len = 2;
		err = text ? ESIM_OK : ESIM_E_NOMEM;
	}
	rsp_es9_request_clear(&rq);
	if (err != ESIM_OK)
		return err;
	char *answer = NULL;
	err = smdp_es9(d, rsp_es9_fn_name(fn), (const uint8_t *)text, text_len, status, &answer);
	free(text);
	if (err != ESIM_OK || *status != 200) {
		free(answer);
		return err;
	}
	struct rsp_es9_response rs;
	err = rsp_es9_response_from_json(fn, (const uint8_t *)answer, strlen(answer), &rs, &field);
	free(answer);
	if (err == ESIM_OK)
		err = rsp_es9_response_to_asn1(&rs, out, out_len);
	rsp_es9_response_clear(&rs);
	return err;
}
