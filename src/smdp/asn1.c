/*
 * ES9+ in the ASN.1 binding (SGP.22 section 6.6, HTTP function binding in
 * ASN.1): one URL, POST /gsma/rsp2/asn1 with Content-Type
 * application/x-gsma-rsp-asn1, whose body is a RemoteProfileProvisioningRequest
 * ([2] CHOICE, tag A2) holding one function's request, and whose answer is a
 * RemoteProfileProvisioningResponse (A2) holding that function's response.
 *
 * The digest (section 5) does not give these tags; they come from the
 * RSPDefinitions module of SGP.22 (request BF39 initiateAuthentication, BF3B
 * authenticateClient, BF3A getBoundProfilePackage, BF41 cancelSession, BF3D
 * handleNotification; each response under the same tag as a CHOICE of [0]
 * ok / [1] INTEGER error). The error integers are the function's enums
 * (digest 12 lists their ranges), mapped here from the subject and reason
 * codes the JSON handlers produce.
 *
 * The binding is a translation only: the request becomes the JSON body of
 * the same function, smdp_es9() (the same handlers, sessions and checks)
 * runs it, and its JSON answer is re-encoded. Every signed object crosses
 * as its complete TLV, byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/der.h"
#include "smdp_int.h"

#define ASN1_MAX_BODY (256 * 1024)

struct fn_map {
	uint32_t tag;
	const char *name;
};

static const struct fn_map functions[] = {
    {0xBF39, "initiateAuthentication"}, {0xBF3B, "authenticateClient"},
    {0xBF3A, "getBoundProfilePackage"}, {0xBF41, "cancelSession"},
    {0xBF3D, "handleNotification"},
};

/* One element's complete TLV into a base64 JSON field. */
static void set_tlv(json_t *o, const char *field, const der_element *e)
{
	net_json_set_base64(o, field, e->tlv.p, e->tlv.len);
}

static esim_err set_txid(json_t *o, const der_element *e)
{
	if (e->value.len == 0 || e->value.len > RSP_TXID_MAX)
		return ESIM_E_RSP_BAD_STRUCTURE;
	rsp_txid t;
	memcpy(t.b, e->value.p, e->value.len);
	t.len = e->value.len;
	char hex[2 * RSP_TXID_MAX + 1];
	rsp_txid_to_hex(&t, hex);
	json_object_set_new(o, "transactionId", json_string(hex));
	return ESIM_OK;
}

/* The function's request (the value of its BFxx element) as the JSON body
 * of the same function. Unknown elements after the mandatory ones are
 * ignored (extensibility). */
static esim_err request_to_json(uint32_t tag, der_cursor *in, json_t *o)
{
	der_element e;
	esim_err err;
	switch (tag) {
	case 0xBF39: /* euiccChallenge [1], smdpAddress [3], euiccInfo1 (BF20) */
		if ((err = der_get_tlv(in, 0x81, &e)) != ESIM_OK)
			return err;
		net_json_set_base64(o, "euiccChallenge", e.value.p, e.value.len);
		if ((err = der_get_tlv(in, 0x83, &e)) != ESIM_OK)
			return err;
		json_object_set_new(o, "smdpAddress",
				    json_stringn((const char *)e.value.p, e.value.len));
		if ((err = der_get_tlv(in, 0xBF20, &e)) != ESIM_OK)
			return err;
		set_tlv(o, "euiccInfo1", &e);
		return ESIM_OK;
	case 0xBF3B: /* transactionId [0], authenticateServerResponse [56] */
	case 0xBF3A: /* transactionId [0], prepareDownloadResponse [33] */
	case 0xBF41: /* transactionId [0], cancelSessionResponse [65] */
		if ((err = der_get_tlv(in, 0x80, &e)) != ESIM_OK ||
		    (err = set_txid(o, &e)) != ESIM_OK)
			return err;
		if ((err = der_get_tlv(in,
				       tag == 0xBF3B   ? 0xBF38
				       : tag == 0xBF3A ? 0xBF21
						       : 0xBF41,
				       &e)) != ESIM_OK)
			return err;
		set_tlv(o,
			tag == 0xBF3B	? "authenticateServerResponse"
			: tag == 0xBF3A ? "prepareDownloadResponse"
					: "cancelSessionResponse",
			&e);
		return ESIM_OK;
	case 0xBF3D: /* pendingNotification: PIR (BF37) or OtherSignedNotification (30) */
		if ((err = der_get_any(in, &e)) != ESIM_OK)
			return err;
		set_tlv(o, "pendingNotification", &e);
		return ESIM_OK;
	default:
		return ESIM_E_RSP_BAD_STRUCTURE;
	}
}

static bool code_is(const char *s, const char *r, const char *ws, const char *wr)
{
	return strcmp(s, ws) == 0 && (!wr || strcmp(r, wr) == 0);
}

/* The function's error integer for a JSON failure (SGP.22 v2.2.2 enums). */
static int64_t error_code(uint32_t tag, const char *s, const char *r)
{
	switch (tag) {
	case 0xBF39:
		if (code_is(s, r, "8.8.1", NULL))
			return 1; /* invalidDpAddress */
		if (code_is(s, r, "8.8.3", NULL))
			return 2; /* euiccVersionNotSupportedByDp */
		if (code_is(s, r, "8.8.2", NULL) || code_is(s, r, "8.8.4", NULL))
			return 3; /* ciPKNotSupported */
		break;
	case 0xBF3B:
		if (code_is(s, r, "8.1.2", "6.3"))
			return 2; /* eumCertificateExpired */
		if (code_is(s, r, "8.1.2", NULL))
			return 1; /* eumCertificateInvalid */
		if (code_is(s, r, "8.1.3", "6.3"))
			return 4; /* euiccCertificateExpired */
		if (code_is(s, r, "8.1.3", NULL))
			return 3; /* euiccCertificateInvalid */
		if (code_is(s, r, "8.1", "6.1"))
			return 5; /* euiccSignatureInvalid */
		if (code_is(s, r, "8.2.6", NULL))
			return 6; /* matchingIdRefused */
		if (code_is(s, r, "8.1.1", NULL))
			return 7; /* eidMismatch */
		if (code_is(s, r, "8.2.5", NULL) || code_is(s, r, "8.2", "1.2"))
			return 8; /* noEligibleProfile */
		if (code_is(s, r, "8.11.1", NULL))
			return 9; /* ciPKUnknown */
		if (code_is(s, r, "8.10.1", NULL))
			return 10; /* invalidTransactionId */
		if (code_is(s, r, "8.1", "4.8"))
			return 11; /* insufficientMemory */
		break;
	case 0xBF3A:
		if (code_is(s, r, "8.1", "6.1"))
			return 1; /* euiccSignatureInvalid */
		if (code_is(s, r, "8.2.7", "2.2"))
			return 2; /* confirmationCodeMissing */
		if (code_is(s, r, "8.2.7", "3.8"))
			return 3; /* confirmationCodeRefused */
		if (code_is(s, r, "8.2.7", "6.4"))
			return 4; /* confirmationCodeRetriesExceeded */
		if (code_is(s, r, "8.2", "3.7"))
			return 5; /* bppRebindingRefused */
		if (code_is(s, r, "8.8.5", "4.10"))
			return 6; /* downloadOrderExpired */
		if (code_is(s, r, "8.10.1", NULL))
			return 95; /* invalidTransactionId */
		break;
	case 0xBF41:
		if (code_is(s, r, "8.10.1", NULL))
			return 1; /* invalidTransactionId */
		if (code_is(s, r, "8.1", "6.1"))
			return 2; /* euiccSignatureInvalid */
		break;
	}
	return 127; /* undefinedError */
}

/* Append the complete TLV carried base64 in a JSON field. */
static esim_err add_b64(der_builder *b, const json_t *o, const char *field)
{
	uint8_t *p = NULL;
	size_t len = 0;
	esim_err err = net_json_get_base64(o, field, 1u << 20, &p, &len, NULL);
	if (err == ESIM_OK)
		err = der_add_raw(b, p, len);
	free(p);
	return err;
}

static esim_err add_txid(der_builder *b, const json_t *o)
{
	json_t *v = json_object_get(o, "transactionId");
	rsp_txid t;
	if (!json_is_string(v) || rsp_txid_from_hex(json_string_value(v), &t) != ESIM_OK)
		return ESIM_E_RSP_BAD_STRUCTURE;
	return der_add_octet_string(b, 0x80, t.b, t.len);
}

/* The JSON answer of smdp_es9() as the function's ASN.1 response. */
static esim_err response_to_der(uint32_t tag, const json_t *o, der_builder *b)
{
	json_t *fes = json_object_get(json_object_get(o, "header"), "functionExecutionStatus");
	const char *status = json_string_value(json_object_get(fes, "status"));
	if (!status)
		return ESIM_E_RSP_BAD_STRUCTURE;
	der_builder_open(b, 0xA2);
	der_builder_open(b, tag);
	if (strcmp(status, "Executed-Success") != 0) {
		json_t *scd = json_object_get(fes, "statusCodeData");
		const char *s = json_string_value(json_object_get(scd, "subjectCode"));
		const char *r = json_string_value(json_object_get(scd, "reasonCode"));
		der_add_int64(b, 0x81, error_code(tag, s ? s : "", r ? r : ""));
	} else {
		esim_err err = ESIM_OK;
		der_builder_open(b, 0xA0);
		switch (tag) {
		case 0xBF39:
			if ((err = add_txid(b, o)) == ESIM_OK &&
			    (err = add_b64(b, o, "serverSigned1")) == ESIM_OK &&
			    (err = add_b64(b, o, "serverSignature1")) == ESIM_OK &&
			    (err = add_b64(b, o, "euiccCiPKIdToBeUsed")) == ESIM_OK)
				err = add_b64(b, o, "serverCertificate");
			break;
		case 0xBF3B:
			if ((err = add_txid(b, o)) == ESIM_OK &&
			    (err = add_b64(b, o, "profileMetadata")) == ESIM_OK &&
			    (err = add_b64(b, o, "smdpSigned2")) == ESIM_OK &&
			    (err = add_b64(b, o, "smdpSignature2")) == ESIM_OK)
				err = add_b64(b, o, "smdpCertificate");
			break;
		case 0xBF3A:
			if ((err = add_txid(b, o)) == ESIM_OK)
				err = add_b64(b, o, "boundProfilePackage");
			break;
		default: /* cancelSessionOk: an empty SEQUENCE */
			break;
		}
		if (err != ESIM_OK)
			return err;
		der_builder_close(b);
	}
	der_builder_close(b);
	return der_builder_close(b);
}

esim_err smdp_es9_asn1(smdp *d, const uint8_t *body, size_t len, int *status, uint8_t **out,
		       size_t *out_len)
{
	if (!d || !status || !out || !out_len || (!body && len))
		return ESIM_E_ARG;
	*out = NULL;
	*out_len = 0;
	*status = 400;
	if (len > ASN1_MAX_BODY)
		return ESIM_OK;
	der_cursor top, outer, in;
	der_element fe;
	der_cursor_init(&top, body, len);
	if (der_get_sequence(&top, 0xA2, &outer) != ESIM_OK || der_expect_end(&top) != ESIM_OK ||
	    der_get_any(&outer, &fe) != ESIM_OK || der_expect_end(&outer) != ESIM_OK)
		return ESIM_OK; /* not a RemoteProfileProvisioningRequest: protocol fault */
	const char *fn = NULL;
	for (size_t i = 0; i < sizeof functions / sizeof *functions; i++)
		if (functions[i].tag == fe.tag)
			fn = functions[i].name;
	if (!fn)
		return ESIM_OK;
	json_t *req = json_object();
	if (!req)
		return ESIM_E_NOMEM;
	in = der_cursor_of(fe.value);
	if (request_to_json(fe.tag, &in, req) != ESIM_OK) {
		/* a malformed function request is the function's failure, as in
		 * the JSON binding: an empty object gets "mandatory element missing" */
		json_object_clear(req);
	}
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return ESIM_E_NOMEM;
	char *answer = NULL;
	esim_err err = smdp_es9(d, fn, (const uint8_t *)text, strlen(text), status, &answer);
	free(text);
	if (err != ESIM_OK || *status != 200) {
		free(answer);
		return err;
	}
	json_t *o = json_loads(answer, 0, NULL);
	free(answer);
	if (!o)
		return ESIM_E_NOMEM;
	der_builder b;
	der_builder_init(&b);
	err = response_to_der(fe.tag, o, &b);
	json_decref(o);
	if (err == ESIM_OK)
		err = der_builder_finish(&b, out, out_len);
	else
		der_builder_free(&b);
	return err;
}
