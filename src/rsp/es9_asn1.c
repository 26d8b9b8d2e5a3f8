/*
 * ES9+ / ES11 messages in the ASN.1 binding (SGP.22 6.6: one URL, body
 * Content-Type application/x-gsma-rsp-asn1) as RSPDefinitions defines
 * them. The module is DEFINITIONS AUTOMATIC TAGS, which decides every tag
 * below (X.680 25.3 and 31.2.7):
 *
 *  - RemoteProfileProvisioningRequest / -Response are [2] CHOICE (A2);
 *    their alternatives carry explicit numbers: [57] BF39
 *    initiateAuthentication, [59] BF3B authenticateClient, [58] BF3A
 *    getBoundProfilePackage, [65] BF41 cancelSession, [61] BF3D
 *    handleNotification; [64] BF40 the ES11 authenticateClient answer.
 *  - A SEQUENCE some of whose components are tagged in the module is left
 *    alone (InitiateAuthenticationRequest: 81, 83, BF20;
 *    AuthenticateClientRequest: 80, BF38; GetBoundProfilePackageRequest:
 *    80, BF21; the Ok answers: 80 then their signed objects' own tags).
 *  - A SEQUENCE none of whose components is tagged gets [0], [1], ... by
 *    position: implicit, so the new tag replaces the type's outermost one
 *    (CancelSessionRequestEs9: 80 transactionId, A1 the eUICC's
 *    CancelSessionResponse, whose [65] BF41 is replaced; EventEntries: 80
 *    eventId, 81 rspServerAddress; AuthenticateClientOkEs11: 80, A1), except
 *    around an untagged CHOICE, where it is explicit (HandleNotification:
 *    A0 wrapping BF37 or 30).
 *  - Every response CHOICE { ok, error INTEGER } has untagged alternatives:
 *    [0] A0 the ok SEQUENCE, [1] 81 the INTEGER.
 *
 * A signed object crosses as its complete TLV. The CancelSessionResponse
 * alone changes its outer tag on the way (A1 here, BF41 for the eUICC and
 * in JSON); the signature inside covers only euiccCancelSessionSigned, so
 * the re-tagged bytes still verify.
 */
#include <stdlib.h>
#include <string.h>

#include "es9_codec.h"
#include "rsp_int.h"

static void set_field(const char **field, const char *name)
{
	if (field)
		*field = name;
}

static uint32_t request_tag(enum rsp_es9_fn fn)
{
	static const uint32_t tags[RSP_ES9_FN_COUNT] = {0xBF39, 0xBF3B, 0xBF3A,
							0xBF41, 0xBF3D, 0xBF3B};
	return tags[fn];
}

static uint32_t response_tag(enum rsp_es9_fn fn)
{
	static const uint32_t tags[RSP_ES9_FN_COUNT] = {0xBF39, 0xBF3B, 0xBF3A, 0xBF41, 0, 0xBF40};
	return tags[fn];
}

/* ---- encoding ---------------------------------------------------------------------------- */

static esim_err add_fields(der_builder *b, const struct es9_field *f, size_t n, const void *base)
{
	for (size_t i = 0; i < n; i++) {
		const der_span *v = (const der_span *)((const uint8_t *)base + f[i].offset);
		esim_err err = es9__check_field(&f[i], v->p, v->len);
		if (err != ESIM_OK)
			return ESIM_E_ARG; /* the caller's bytes are not the TLV the field is */
		der_add_raw(b, v->p, v->len);
	}
	return b->err;
}

static esim_err finish(der_builder *b, esim_err err, uint8_t **out, size_t *len)
{
	if (err == ESIM_OK)
		err = b->err;
	if (err != ESIM_OK) {
		der_builder_free(b);
		return err;
	}
	return der_builder_finish(b, out, len);
}

esim_err rsp_es9_request_to_asn1(const struct rsp_es9_request *r, uint8_t **out, size_t *len)
{
	if (!r || !out || !len || (unsigned)r->fn >= RSP_ES9_FN_COUNT)
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xA2);
	der_builder_open(&b, request_tag(r->fn));
	esim_err err = ESIM_OK;
	size_t n;
	bool txid;
	const struct es9_field *f = es9__request_fields(r->fn, &n, &txid);
	if (txid) {
		const rsp_txid *t = es9__request_txid((struct rsp_es9_request *)r);
		if (t->len < 1 || t->len > RSP_TXID_MAX)
			err = ESIM_E_RSP_BAD_TXID;
		else
			der_add_octet_string(&b, 0x80, t->b, t->len);
	}
	switch (r->fn) {
	case RSP_ES9_INITIATE_AUTHENTICATION: {
		const struct es9_field info1 = {"euiccInfo1", 0, 0xBF20, 0, RSP_ES9_MAX_TLV};
		der_span a = r->u.initiate.smdp_address;
		if (r->u.initiate.euicc_challenge.len != 16 || a.len == 0 ||
		    a.len > RSP_ES9_MAX_TEXT ||
		    es9__check_field(&info1, r->u.initiate.euicc_info1.p,
				     r->u.initiate.euicc_info1.len) != ESIM_OK) {
			err = ESIM_E_ARG;
			break;
		}
		der_add_octet_string(&b, 0x81, r->u.initiate.euicc_challenge.p, 16);
		der_add_utf8(&b, 0x83, (const char *)a.p, a.len);
		der_add_raw(&b, r->u.initiate.euicc_info1.p, r->u.initiate.euicc_info1.len);
		break;
	}
	case RSP_ES9_CANCEL_SESSION: { /* [1] implicit: BF41 becomes A1 */
		der_element e;
		if (es9__check_field(f, r->u.cancel.cancel_session_response.p,
				     r->u.cancel.cancel_session_response.len) != ESIM_OK ||
		    der_parse_single(r->u.cancel.cancel_session_response.p,
				     r->u.cancel.cancel_session_response.len, &e) != ESIM_OK) {
			err = ESIM_E_ARG;
			break;
		}
		der_add_tlv(&b, 0xA1, e.value.p, e.value.len);
		break;
	}
	case RSP_ES9_HANDLE_NOTIFICATION: /* [0] explicit around the CHOICE */
		der_builder_open(&b, 0xA0);
		if (err == ESIM_OK)
			err = add_fields(&b, f, n, r);
		der_builder_close(&b);
		break;
	default:
		if (err == ESIM_OK)
			err = add_fields(&b, f, n, r);
		break;
	}
	der_builder_close(&b);
	der_builder_close(&b);
	return finish(&b, err, out, len);
}

esim_err rsp_es9_response_to_asn1(const struct rsp_es9_response *r, uint8_t **out, size_t *len)
{
	if (!r || !out || !len || (unsigned)r->fn >= RSP_ES9_FN_COUNT ||
	    r->fn == RSP_ES9_HANDLE_NOTIFICATION)
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xA2);
	der_builder_open(&b, response_tag(r->fn));
	esim_err err = ESIM_OK;
	if (r->status == RSP_ES9_FAILED || r->status == RSP_ES9_EXPIRED) {
		int64_t code =
		    r->error != 0 ? r->error : rsp_es9_error_code(r->fn, r->subject, r->reason);
		der_add_int64(&b, 0x81, code);
	} else {
		der_builder_open(&b, 0xA0);
		size_t n;
		bool txid;
		const struct es9_field *f = es9__response_fields(r->fn, &n, &txid);
		if (txid) {
			const rsp_txid *t = es9__response_txid((struct rsp_es9_response *)r);
			if (t->len < 1 || t->len > RSP_TXID_MAX)
				err = ESIM_E_RSP_BAD_TXID;
			else
				der_add_octet_string(&b, 0x80, t->b, t->len);
		}
		if (err == ESIM_OK)
			err = add_fields(&b, f, n, r);
		if (err == ESIM_OK && r->fn == RSP_ES11_AUTHENTICATE_CLIENT) {
			if (r->u.es11.n_events && !r->u.es11.events)
				err = ESIM_E_ARG;
			der_builder_open(&b, 0xA1);
			for (size_t i = 0; err == ESIM_OK && i < r->u.es11.n_events; i++) {
				const struct rsp_es11_event *e = &r->u.es11.events[i];
				der_builder_open(&b, 0x30);
				der_add_utf8(&b, 0x80, (const char *)e->event_id.p,
					     e->event_id.len);
				der_add_utf8(&b, 0x81, (const char *)e->rsp_server_address.p,
					     e->rsp_server_address.len);
				der_builder_close(&b);
			}
			der_builder_close(&b);
		}
		der_builder_close(&b);
	}
	der_builder_close(&b);
	der_builder_close(&b);
	return finish(&b, err, out, len);
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* The envelope A2 { one element }: its tag and a cursor over its content. */
static esim_err open_envelope(const uint8_t *body, size_t len, uint32_t *tag, der_cursor *in,
			      const char **field)
{
	set_field(field, "RemoteProfileProvisioning");
	if (!body && len)
		return ESIM_E_ARG;
	if (len > RSP_ES9_MAX_BODY)
		return ESIM_E_TOO_LARGE;
	der_cursor top, outer;
	der_element e;
	der_cursor_init(&top, body, len);
	esim_err err = der_get_sequence(&top, 0xA2, &outer);
	if (err == ESIM_OK)
		err = der_expect_end(&top);
	if (err == ESIM_OK)
		err = der_get_any(&outer, &e);
	if (err == ESIM_OK)
		err = der_expect_end(&outer);
	if (err == ESIM_OK && !der_tag_is_constructed(e.tag))
		err = ESIM_E_DER_CONSTRUCTED_EXPECTED;
	if (err != ESIM_OK)
		return rsp__structure(err);
	*tag = e.tag;
	*in = der_cursor_of(e.value);
	return ESIM_OK;
}

static esim_err get_txid(der_cursor *c, rsp_txid *t, const char **field)
{
	set_field(field, "transactionId");
	return rsp__get_txid(c, 0x80, t);
}

static esim_err get_fields(der_cursor *c, const struct es9_field *f, size_t n, void *base,
			   void **own, const char **field)
{
	for (size_t i = 0; i < n; i++) {
		der_element e;
		set_field(field, f[i].name);
		esim_err err = der_get_tlv(c, f[i].tag, &e);
		if (err != ESIM_OK && f[i].alt)
			err = der_get_tlv(c, f[i].alt, &e);
		if (err != ESIM_OK)
			return rsp__structure(err);
		if (e.tlv.len > f[i].max)
			return ESIM_E_RSP_FIELD_SIZE;
		if ((err = es9__own_copy(own, e.tlv.p, e.tlv.len,
					 (der_span *)((uint8_t *)base + f[i].offset))) != ESIM_OK)
			return err;
	}
	return ESIM_OK;
}

static esim_err get_text(der_cursor *c, uint32_t tag, const char *name, void **own, der_span *dst,
			 const char **field)
{
	der_span v;
	set_field(field, name);
	esim_err err = der_get_utf8(c, tag, &v);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (v.len == 0 || v.len > RSP_ES9_MAX_TEXT)
		return ESIM_E_RSP_FIELD_SIZE;
	return es9__own_copy(own, v.p, v.len, dst);
}

esim_err rsp_es9_request_from_asn1(const uint8_t *body, size_t len, struct rsp_es9_request *r,
				   const char **field)
{
	if (!r)
		return ESIM_E_ARG;
	memset(r, 0, sizeof *r);
	uint32_t tag;
	der_cursor in;
	esim_err err = open_envelope(body, len, &tag, &in, field);
	if (err != ESIM_OK)
		return err;
	unsigned i = 0;
	while (i < RSP_ES11_AUTHENTICATE_CLIENT && request_tag((enum rsp_es9_fn)i) != tag)
		i++;
	if (i == RSP_ES11_AUTHENTICATE_CLIENT)
		return ESIM_E_RSP_BAD_STRUCTURE; /* no such function */
	r->fn = (enum rsp_es9_fn)i;
	size_t n;
	bool txid;
	const struct es9_field *f = es9__request_fields(r->fn, &n, &txid);
	if (txid)
		err = get_txid(&in, es9__request_txid(r), field);
	if (err != ESIM_OK)
		goto out;
	switch (r->fn) {
	case RSP_ES9_INITIATE_AUTHENTICATION: {
		der_span ch;
		set_field(field, "euiccChallenge");
		if ((err = rsp__structure(der_get_octet_string(&in, 0x81, &ch))) != ESIM_OK)
			break;
		if (ch.len != 16) {
			err = ESIM_E_RSP_FIELD_SIZE;
			break;
		}
		if ((err = es9__own_copy(&r->own_, ch.p, 16, &r->u.initiate.euicc_challenge)) !=
			ESIM_OK ||
		    (err = get_text(&in, 0x83, "smdpAddress", &r->own_, &r->u.initiate.smdp_address,
				    field)) != ESIM_OK)
			break;
		const struct es9_field info1 = {
		    "euiccInfo1", offsetof(struct rsp_es9_request, u.initiate.euicc_info1), 0xBF20,
		    0, RSP_ES9_MAX_TLV};
		err = get_fields(&in, &info1, 1, r, &r->own_, field);
		break;
	}
	case RSP_ES9_CANCEL_SESSION: { /* A1: the CancelSessionResponse, its BF41 restored */
		der_element e;
		set_field(field, "cancelSessionResponse");
		if ((err = rsp__structure(der_get_tlv(&in, 0xA1, &e))) != ESIM_OK)
			break;
		if (e.value.len > RSP_ES9_MAX_TLV) {
			err = ESIM_E_RSP_FIELD_SIZE;
			break;
		}
		der_builder b;
		der_builder_init(&b);
		der_add_tlv(&b, 0xBF41, e.value.p, e.value.len);
		uint8_t *tlv = NULL;
		size_t tlv_len = 0;
		if ((err = der_builder_finish(&b, &tlv, &tlv_len)) != ESIM_OK)
			break;
		err = es9__own_copy(&r->own_, tlv, tlv_len, &r->u.cancel.cancel_session_response);
		free(tlv);
		break;
	}
	case RSP_ES9_HANDLE_NOTIFICATION: { /* A0 { BF37 | 30 } */
		der_cursor c;
		set_field(field, "pendingNotification");
		if ((err = rsp__structure(der_get_sequence(&in, 0xA0, &c))) != ESIM_OK)
			break;
		if ((err = get_fields(&c, f, n, r, &r->own_, field)) == ESIM_OK &&
		    (err = rsp__structure(der_expect_end(&c))) != ESIM_OK)
			set_field(field, "pendingNotification");
		break;
	}
	default:
		err = get_fields(&in, f, n, r, &r->own_, field);
		break;
	}
out:
	if (err != ESIM_OK)
		rsp_es9_request_clear(r);
	else
		set_field(field, NULL);
	return err;
}

static esim_err get_events(der_cursor *in, struct rsp_es9_response *r, const char **field)
{
	der_cursor list, probe;
	der_element e;
	esim_err err;
	set_field(field, "eventEntries");
	if ((err = rsp__structure(der_get_sequence(in, 0xA1, &list))) != ESIM_OK)
		return err;
	size_t n = 0;
	probe = list;
	while (der_next_child(&probe, &e, &err))
		if (++n > RSP_ES9_MAX_EVENTS)
			return ESIM_E_RSP_FIELD_SIZE;
	if (err != ESIM_OK)
		return err;
	uint8_t *mem;
	if ((err = es9__own(&r->own_, n * sizeof(struct rsp_es11_event), &mem)) != ESIM_OK)
		return err;
	memset(mem, 0, n * sizeof(struct rsp_es11_event));
	r->u.es11.events = (struct rsp_es11_event *)(void *)mem;
	for (size_t i = 0; i < n; i++) {
		der_cursor c;
		struct rsp_es11_event *ev = &r->u.es11.events[i];
		set_field(field, "eventEntries");
		if ((err = rsp__structure(der_get_sequence(&list, 0x30, &c))) != ESIM_OK ||
		    (err = get_text(&c, 0x80, "eventId", &r->own_, &ev->event_id, field)) !=
			ESIM_OK ||
		    (err = get_text(&c, 0x81, "rspServerAddress", &r->own_, &ev->rsp_server_address,
				    field)) != ESIM_OK)
			return err;
		r->u.es11.n_events = i + 1;
	}
	return ESIM_OK;
}

esim_err rsp_es9_response_from_asn1(const uint8_t *body, size_t len, struct rsp_es9_response *r,
				    const char **field)
{
	if (!r)
		return ESIM_E_ARG;
	memset(r, 0, sizeof *r);
	uint32_t tag;
	der_cursor in, ok;
	esim_err err = open_envelope(body, len, &tag, &in, field);
	if (err != ESIM_OK)
		return err;
	unsigned i = 0;
	while (i < RSP_ES9_FN_COUNT && (response_tag((enum rsp_es9_fn)i) != tag || tag == 0))
		i++;
	if (i == RSP_ES9_FN_COUNT)
		return ESIM_E_RSP_BAD_STRUCTURE;
	r->fn = (enum rsp_es9_fn)i;
	uint32_t choice = 0;
	set_field(field, rsp_es9_fn_name(r->fn));
	if ((err = rsp__structure(der_peek_tag(&in, &choice))) != ESIM_OK)
		goto out;
	if (choice == 0x81) { /* [1] the function's error INTEGER */
		set_field(field, "error");
		if ((err = rsp__structure(der_get_int64(&in, 0x81, &r->error))) != ESIM_OK)
			goto out;
		r->status = RSP_ES9_FAILED;
		es9__complete_status(r->fn, r);
		goto out;
	}
	if ((err = rsp__structure(der_get_sequence(&in, 0xA0, &ok))) != ESIM_OK)
		goto out;
	r->status = RSP_ES9_SUCCESS;
	size_t n;
	bool txid;
	const struct es9_field *f = es9__response_fields(r->fn, &n, &txid);
	if (txid)
		err = get_txid(&ok, es9__response_txid(r), field);
	if (err == ESIM_OK)
		err = get_fields(&ok, f, n, r, &r->own_, field);
	if (err == ESIM_OK && r->fn == RSP_ES11_AUTHENTICATE_CLIENT)
		err = get_events(&ok, r, field);
out:
	if (err != ESIM_OK)
		rsp_es9_response_clear(r);
	else
		set_field(field, NULL);
	return err;
}
