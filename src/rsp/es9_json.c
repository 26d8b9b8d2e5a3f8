/*
 * ES9+ / ES11 messages in the JSON binding (SGP.22 6.5: 6.5.1 the common
 * header, 6.5.2.x the function bodies; ES11 in 6.5.2.6 and 5.8).
 *
 * Requests carry no header (an LPA need not send one; one that is sent is
 * ignored). Answers carry header.functionExecutionStatus: status, and on
 * "Failed" statusCodeData { subjectCode, reasonCode, message }; the
 * function's own members are present on success only. Byte members are
 * the base64 (RFC 4648, padded) of complete TLVs, except euiccChallenge
 * (the 16 raw bytes); transactionId is hex; smdpAddress, eventId and
 * rspServerAddress are strings. The member names and their order follow
 * SGP.22 6.5.2, as the SM-DP+ and the LPA have always sent them.
 *
 * Decoding: the text is bounded in size and nesting before jansson reads
 * it; a member that is missing is ESIM_E_NOT_FOUND, one of the wrong type,
 * size or encoding an error of its own; *field names it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es9_codec.h"
#include "esim/util.h"

#define ES9_JSON_MAX_DEPTH 16

static void set_field(const char **field, const char *name)
{
	if (field)
		*field = name;
}

/* ---- encoding ----------------------------------------------------------------------------
 *
 * The text is written directly, in jansson's compact form (no spaces, '/'
 * not escaped), not built as a jansson document and dumped: a bound
 * profile package is tens of kilobytes of base64, which needs no escaping
 * and which json_dumps would examine character by character (~1.6 M
 * instructions for 16 kB). Strings that may need escaping (addresses,
 * event ids, status codes and message) go through jansson.
 */

struct jw {
	esim_buf b;
	esim_err err;
	bool first; /* no member yet in the innermost object */
};

static void w_raw(struct jw *w, const char *p, size_t n)
{
	if (w->err == ESIM_OK)
		w->err = esim_buf_append(&w->b, p, n);
}

static void w_str(struct jw *w, const char *s)
{
	w_raw(w, s, strlen(s));
}

static void w_open(struct jw *w)
{
	w_raw(w, "{", 1);
	w->first = true;
}

static void w_close(struct jw *w)
{
	w_raw(w, "}", 1);
	w->first = false;
}

/* "name": (names are ours: plain ASCII) */
static void w_name(struct jw *w, const char *name)
{
	if (!w->first)
		w_raw(w, ",", 1);
	w->first = false;
	w_raw(w, "\"", 1);
	w_str(w, name);
	w_raw(w, "\":", 2);
}

/* A string value escaped as jansson escapes it (UTF-8 checked). */
static void w_text(struct jw *w, const char *name, const char *p, size_t n)
{
	if (w->err != ESIM_OK)
		return;
	if (n > RSP_ES9_MAX_TEXT + 256 || !der_utf8_valid((const uint8_t *)p, n)) {
		w->err = ESIM_E_ARG;
		return;
	}
	json_t *v = json_stringn(p, n);
	char *q = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	json_decref(v);
	if (!q) {
		w->err = ESIM_E_NOMEM;
		return;
	}
	w_name(w, name);
	w_str(w, q);
	free(q);
}

static void w_b64(struct jw *w, const char *name, der_span v)
{
	if (w->err != ESIM_OK)
		return;
	if (!v.p && v.len) {
		w->err = ESIM_E_ARG;
		return;
	}
	char *text = NULL;
	if ((w->err = esim_base64_encode(v.p, v.len, &text)) != ESIM_OK)
		return;
	w_name(w, name);
	w_raw(w, "\"", 1);
	w_str(w, text);
	w_raw(w, "\"", 1);
	free(text);
}

static void w_txid(struct jw *w, const rsp_txid *t)
{
	char hex[2 * RSP_TXID_MAX + 1];
	if (w->err == ESIM_OK && (w->err = rsp_txid_to_hex(t, hex)) == ESIM_OK) {
		w_name(w, "transactionId");
		w_raw(w, "\"", 1);
		w_str(w, hex);
		w_raw(w, "\"", 1);
	}
}

/* The byte fields of a table, read from the struct at base. */
static void w_fields(struct jw *w, const struct es9_field *f, size_t n, const void *base)
{
	for (size_t i = 0; i < n; i++)
		w_b64(w, f[i].name, *(const der_span *)((const uint8_t *)base + f[i].offset));
}

static esim_err w_finish(struct jw *w, char **out, size_t *len)
{
	w_raw(w, "", 1); /* the NUL */
	if (w->err != ESIM_OK) {
		esim_buf_free(&w->b);
		return w->err;
	}
	*out = (char *)w->b.data;
	if (len)
		*len = w->b.len - 1;
	return ESIM_OK;
}

esim_err rsp_es9_request_to_json(const struct rsp_es9_request *r, char **out, size_t *len)
{
	if (!r || !out || (unsigned)r->fn >= RSP_ES9_FN_COUNT)
		return ESIM_E_ARG;
	*out = NULL;
	struct jw w = {ESIM_BUF_INIT, ESIM_OK, true};
	w_open(&w);
	if (r->fn == RSP_ES9_INITIATE_AUTHENTICATION) {
		der_span a = r->u.initiate.smdp_address;
		if (r->u.initiate.euicc_challenge.len != 16 || a.len == 0 ||
		    a.len > RSP_ES9_MAX_TEXT)
			w.err = ESIM_E_ARG;
		w_b64(&w, "euiccChallenge", r->u.initiate.euicc_challenge);
		w_b64(&w, "euiccInfo1", r->u.initiate.euicc_info1);
		w_text(&w, "smdpAddress", (const char *)a.p, a.len);
	} else {
		size_t n;
		bool txid;
		const struct es9_field *f = es9__request_fields(r->fn, &n, &txid);
		if (txid)
			w_txid(&w, es9__request_txid((struct rsp_es9_request *)r));
		w_fields(&w, f, n, r);
	}
	w_close(&w);
	return w_finish(&w, out, len);
}

static const char *const status_names[] = {"Executed-Success", "Executed-WithWarning", "Failed",
					   "Expired"};

esim_err rsp_es9_response_to_json(const struct rsp_es9_response *r, char **out, size_t *len)
{
	if (!r || !out || (unsigned)r->fn >= RSP_ES9_FN_COUNT ||
	    (unsigned)r->status > RSP_ES9_EXPIRED)
		return ESIM_E_ARG;
	*out = NULL;
	bool failed = r->status == RSP_ES9_FAILED || r->status == RSP_ES9_EXPIRED;
	if (!failed && r->fn == RSP_ES9_HANDLE_NOTIFICATION)
		return ESIM_E_ARG; /* no answer body: HTTP 204 */
	struct jw w = {ESIM_BUF_INIT, ESIM_OK, true};
	w_str(&w, "{\"header\":{\"functionExecutionStatus\":{\"status\":\"");
	w_str(&w, status_names[r->status]);
	w_raw(&w, "\"", 1);
	if (failed) {
		struct rsp_es9_response c = *r; /* subject / reason from the error if need be */
		c.own_ = NULL;
		es9__complete_status(r->fn, &c);
		w_str(&w, ",\"statusCodeData\":");
		w_open(&w);
		w_text(&w, "subjectCode", c.subject, strnlen(c.subject, sizeof c.subject));
		w_text(&w, "reasonCode", c.reason, strnlen(c.reason, sizeof c.reason));
		if (c.message[0])
			w_text(&w, "message", c.message, strnlen(c.message, sizeof c.message));
		w_close(&w);
		w_str(&w, "}}}");
		return w_finish(&w, out, len);
	}
	w_str(&w, "}}");
	w.first = false;
	size_t n;
	bool txid;
	const struct es9_field *f = es9__response_fields(r->fn, &n, &txid);
	if (txid)
		w_txid(&w, es9__response_txid((struct rsp_es9_response *)r));
	w_fields(&w, f, n, r);
	if (r->fn == RSP_ES11_AUTHENTICATE_CLIENT) {
		if (r->u.es11.n_events && !r->u.es11.events)
			w.err = ESIM_E_ARG;
		w_name(&w, "eventEntries");
		w_raw(&w, "[", 1);
		for (size_t i = 0; w.err == ESIM_OK && i < r->u.es11.n_events; i++) {
			const struct rsp_es11_event *e = &r->u.es11.events[i];
			if (e->event_id.len > RSP_ES9_MAX_TEXT ||
			    e->rsp_server_address.len > RSP_ES9_MAX_TEXT)
				w.err = ESIM_E_ARG;
			if (i)
				w_raw(&w, ",", 1);
			w_open(&w);
			w_text(&w, "eventId", (const char *)e->event_id.p, e->event_id.len);
			w_text(&w, "rspServerAddress", (const char *)e->rsp_server_address.p,
			       e->rsp_server_address.len);
			w_close(&w);
		}
		w_raw(&w, "]", 1);
	}
	w_close(&w);
	return w_finish(&w, out, len);
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* Objects and arrays nested at most max deep, counted outside strings,
 * before jansson (whose own limit is 2048) sees the text. */
static bool depth_ok(const uint8_t *p, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return true;
}

static esim_err parse(const uint8_t *body, size_t len, json_t **doc, const char **field)
{
	*doc = NULL;
	set_field(field, "body");
	if (!body && len)
		return ESIM_E_ARG;
	if (len > RSP_ES9_MAX_BODY)
		return ESIM_E_TOO_LARGE;
	if (!depth_ok(body, len, ES9_JSON_MAX_DEPTH))
		return ESIM_E_RSP_BAD_STRUCTURE;
	json_error_t je;
	*doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
	if (!*doc)
		return ESIM_E_RSP_BAD_STRUCTURE;
	return ESIM_OK;
}

static esim_err get_member(const json_t *o, const char *name, json_type type, json_t **v,
			   const char **field)
{
	*v = json_object_get(o, name);
	if (!*v) {
		set_field(field, name);
		return ESIM_E_NOT_FOUND;
	}
	if (json_typeof(*v) != type) {
		set_field(field, name);
		return ESIM_E_RSP_BAD_STRUCTURE;
	}
	return ESIM_OK;
}

static esim_err get_text(const json_t *o, const char *name, void **own, der_span *dst,
			 const char **field)
{
	json_t *v;
	esim_err err = get_member(o, name, JSON_STRING, &v, field);
	if (err != ESIM_OK)
		return err;
	size_t n = json_string_length(v);
	if (n == 0 || n > RSP_ES9_MAX_TEXT) {
		set_field(field, name);
		return ESIM_E_RSP_FIELD_SIZE;
	}
	return es9__own_copy(own, (const uint8_t *)json_string_value(v), n, dst);
}

static esim_err get_b64(const json_t *o, const struct es9_field *f, void **own, der_span *dst,
			const char **field)
{
	json_t *v;
	esim_err err = get_member(o, f->name, JSON_STRING, &v, field);
	if (err != ESIM_OK)
		return err;
	set_field(field, f->name);
	size_t tlen = json_string_length(v);
	if (tlen / 2 > f->max / 3 * 4 + 8) /* cannot fit, even with whitespace */
		return ESIM_E_RSP_FIELD_SIZE;
	uint8_t *p = NULL;
	size_t n = 0;
	if ((err = esim_base64_decode(json_string_value(v), tlen, &p, &n)) != ESIM_OK)
		return err;
	err = es9__check_field(f, p, n);
	if (err == ESIM_OK)
		err = es9__own_copy(own, p, n, dst);
	free(p);
	return err;
}

static esim_err get_txid(const json_t *o, rsp_txid *t, const char **field)
{
	json_t *v;
	esim_err err = get_member(o, "transactionId", JSON_STRING, &v, field);
	if (err != ESIM_OK)
		return err;
	set_field(field, "transactionId");
	return rsp_txid_from_hex(json_string_value(v), t);
}

static esim_err get_fields(const json_t *o, const struct es9_field *f, size_t n, void *base,
			   void **own, const char **field)
{
	esim_err err = ESIM_OK;
	for (size_t i = 0; err == ESIM_OK && i < n; i++)
		err = get_b64(o, &f[i], own, (der_span *)((uint8_t *)base + f[i].offset), field);
	return err;
}

static const struct es9_field f_challenge = {"euiccChallenge", 0, 0, 0, 16};
static const struct es9_field f_info1 = {"euiccInfo1", 0, 0xBF20, 0, RSP_ES9_MAX_TLV};

esim_err rsp_es9_request_from_jdoc(enum rsp_es9_fn fn, const json_t *doc, struct rsp_es9_request *r,
				   const char **field)
{
	if (!r || (unsigned)fn >= RSP_ES9_FN_COUNT)
		return ESIM_E_ARG;
	memset(r, 0, sizeof *r);
	r->fn = fn;
	set_field(field, "body");
	if (!json_is_object(doc))
		return ESIM_E_RSP_BAD_STRUCTURE;
	esim_err err = ESIM_OK;
	if (fn == RSP_ES9_INITIATE_AUTHENTICATION) {
		if ((err = get_b64(doc, &f_challenge, &r->own_, &r->u.initiate.euicc_challenge,
				   field)) == ESIM_OK &&
		    r->u.initiate.euicc_challenge.len != 16)
			err = ESIM_E_RSP_FIELD_SIZE;
		if (err == ESIM_OK)
			err = get_b64(doc, &f_info1, &r->own_, &r->u.initiate.euicc_info1, field);
		if (err == ESIM_OK)
			err = get_text(doc, "smdpAddress", &r->own_, &r->u.initiate.smdp_address,
				       field);
	} else {
		size_t n;
		bool txid;
		const struct es9_field *f = es9__request_fields(fn, &n, &txid);
		if (txid)
			err = get_txid(doc, es9__request_txid(r), field);
		if (err == ESIM_OK)
			err = get_fields(doc, f, n, r, &r->own_, field);
	}
	if (err != ESIM_OK)
		rsp_es9_request_clear(r);
	else
		set_field(field, NULL);
	return err;
}

esim_err rsp_es9_request_from_json(enum rsp_es9_fn fn, const uint8_t *body, size_t len,
				   struct rsp_es9_request *r, const char **field)
{
	if (!r)
		return ESIM_E_ARG;
	memset(r, 0, sizeof *r);
	r->fn = fn;
	json_t *doc;
	esim_err err = parse(body, len, &doc, field);
	if (err == ESIM_OK)
		err = rsp_es9_request_from_jdoc(fn, doc, r, field);
	json_decref(doc);
	return err;
}

/* A statusCodeData string member (optional) into a fixed buffer. */
static esim_err get_code(const json_t *scd, const char *name, char *dst, size_t cap, bool truncate,
			 const char **field)
{
	json_t *v = json_object_get(scd, name);
	if (!v)
		return ESIM_OK;
	set_field(field, name);
	if (!json_is_string(v))
		return ESIM_E_RSP_BAD_STRUCTURE;
	if (json_string_length(v) >= cap && !truncate)
		return ESIM_E_RSP_FIELD_SIZE;
	snprintf(dst, cap, "%s", json_string_value(v));
	return ESIM_OK;
}

static esim_err get_events(const json_t *doc, struct rsp_es9_response *r, const char **field)
{
	json_t *a = json_object_get(doc, "eventEntries");
	set_field(field, "eventEntries");
	if (!a)
		return ESIM_OK; /* none: an SM-DS with no event for this eUICC may leave it out */
	if (!json_is_array(a))
		return ESIM_E_RSP_BAD_STRUCTURE;
	size_t n = json_array_size(a);
	if (n > RSP_ES9_MAX_EVENTS)
		return ESIM_E_RSP_FIELD_SIZE;
	uint8_t *mem;
	esim_err err = es9__own(&r->own_, n * sizeof(struct rsp_es11_event), &mem);
	if (err != ESIM_OK)
		return err;
	r->u.es11.events = (struct rsp_es11_event *)(void *)mem;
	memset(mem, 0, n * sizeof(struct rsp_es11_event));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);
		if (!json_is_object(e))
			return ESIM_E_RSP_BAD_STRUCTURE;
		if ((err = get_text(e, "eventId", &r->own_, &r->u.es11.events[i].event_id,
				    field)) != ESIM_OK ||
		    (err = get_text(e, "rspServerAddress", &r->own_,
				    &r->u.es11.events[i].rsp_server_address, field)) != ESIM_OK)
			return err;
		r->u.es11.n_events = i + 1;
	}
	return ESIM_OK;
}

esim_err rsp_es9_response_from_jdoc(enum rsp_es9_fn fn, const json_t *doc,
				    struct rsp_es9_response *r, const char **field)
{
	if (!r || (unsigned)fn >= RSP_ES9_FN_COUNT)
		return ESIM_E_ARG;
	memset(r, 0, sizeof *r);
	r->fn = fn;
	set_field(field, "body");
	if (!json_is_object(doc))
		return ESIM_E_RSP_BAD_STRUCTURE;
	json_t *hdr, *fes, *st;
	esim_err err;
	if ((err = get_member(doc, "header", JSON_OBJECT, &hdr, field)) != ESIM_OK ||
	    (err = get_member(hdr, "functionExecutionStatus", JSON_OBJECT, &fes, field)) !=
		ESIM_OK ||
	    (err = get_member(fes, "status", JSON_STRING, &st, field)) != ESIM_OK)
		goto out;
	const char *s = json_string_value(st);
	size_t k = 0;
	while (k < 4 && strcmp(s, status_names[k]) != 0)
		k++;
	if (k == 4) {
		set_field(field, "status");
		err = ESIM_E_RSP_BAD_STRUCTURE;
		goto out;
	}
	r->status = (enum rsp_es9_status)k;
	if (r->status == RSP_ES9_FAILED || r->status == RSP_ES9_EXPIRED) {
		json_t *scd = json_object_get(fes, "statusCodeData");
		if (scd && !json_is_object(scd)) {
			set_field(field, "statusCodeData");
			err = ESIM_E_RSP_BAD_STRUCTURE;
		} else if ((err = get_code(scd, "subjectCode", r->subject, sizeof r->subject, false,
					   field)) == ESIM_OK &&
			   (err = get_code(scd, "reasonCode", r->reason, sizeof r->reason, false,
					   field)) == ESIM_OK) {
			err = get_code(scd, "message", r->message, sizeof r->message, true, field);
		}
		if (err == ESIM_OK && r->status == RSP_ES9_FAILED)
			es9__complete_status(fn, r);
		goto out;
	}
	if (fn == RSP_ES9_HANDLE_NOTIFICATION)
		goto out; /* a success header and nothing else to read */
	size_t n;
	bool txid;
	const struct es9_field *f = es9__response_fields(fn, &n, &txid);
	if (txid)
		err = get_txid(doc, es9__response_txid(r), field);
	if (err == ESIM_OK)
		err = get_fields(doc, f, n, r, &r->own_, field);
	if (err == ESIM_OK && fn == RSP_ES11_AUTHENTICATE_CLIENT)
		err = get_events(doc, r, field);
out:
	if (err != ESIM_OK)
		rsp_es9_response_clear(r);
	else
		set_field(field, NULL);
	return err;
}

esim_err rsp_es9_response_from_json(enum rsp_es9_fn fn, const uint8_t *body, size_t len,
				    struct rsp_es9_response *r, const char **field)
{
	if (!r)
		return ESIM_E_ARG;
	memset(r, 0, sizeof *r);
	r->fn = fn;
	json_t *doc;
	esim_err err = parse(body, len, &doc, field);
	if (err == ESIM_OK)
		err = rsp_es9_response_from_jdoc(fn, doc, r, field);
	json_decref(doc);
	return err;
}
