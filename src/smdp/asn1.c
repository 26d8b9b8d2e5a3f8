/*
 * ES9+ in the ASN.1 binding (SGP.22 6.6, HTTP function binding in ASN.1):
 * one URL, POST /gsma/rsp2/asn1 with Content-Type
 * application/x-gsma-rsp-asn1, whose body is a RemoteProfileProvisioningRequest
 * ([2] CHOICE, tag A2) holding one function's request, and whose answer is a
 * RemoteProfileProvisioningResponse (A2) holding that function's response.
 *
 * The binding is a translation only (rsp_es9_asn1_serve, src/rsp/es9_binding.c,
 * shared with the SM-DS), and the translating is the codec's
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

/* smdp_es9 as the binding's JSON handler. */
static esim_err es9_json(void *ctx, const char *function, const uint8_t *body, size_t len,
			 int *status, char **answer)
{
	return smdp_es9(ctx, function, body, len, status, answer);
}

esim_err smdp_es9_asn1(smdp *d, const uint8_t *body, size_t len, int *status, uint8_t **out,
		       size_t *out_len)
{
	if (!d || !status || !out || !out_len || (!body && len))
		return ESIM_E_ARG;
	/* the envelope and the translation are the library's (es9_binding.c),
	 * shared with the SM-DS's ES11 */
	struct rsp_es9_asn1_server srv = {
	    .es11 = false, .max_body = ASN1_MAX_BODY, .handler = es9_json, .ctx = d};
	struct rsp_es9_asn1_fault f = {0};
	esim_err err = rsp_es9_asn1_serve(&srv, body, len, status, out, out_len, &f);
	if (f.malformed)
		smdp_logf(d, "es9_asn1_malformed", "function=%s field=%s error=%s",
			  rsp_es9_fn_name(f.fn), f.field ? f.field : "-", esim_errname(f.err));
	return err;
}
