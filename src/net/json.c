/*
 * JSON for the ES9+, ES2+ and ES11 bindings (SGP.22 section 6.5, digest
 * 5.3 and 9.3), on jansson, for the server's request bodies and the
 * client's responses alike.
 *
 * Bodies come from the network, so they are capped in size and in nesting
 * depth before jansson builds anything (jansson's own depth limit is far
 * above what any SGP.22 message needs), and a missing or mistyped field is
 * reported by name so that a server can answer with the right
 * subject/reason code and a client can say what the peer got wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esim/net.h"

static void set_err(struct net_json_error *err, const char *field, const char *text)
{
	if (err == NULL)
		return;
	snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
	snprintf(err->text, sizeof(err->text), "%s", text != NULL ? text : "");
}

/* Nesting depth of objects and arrays, ignoring brackets inside strings.
 * Malformed text is left for jansson to reject. */
static size_t json_depth(const uint8_t *p, size_t len, size_t limit)
{
	size_t depth = 0, max = 0;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = p[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > max)
				max = depth;
			if (max > limit)
				return max;
		} else if ((ch == '}' || ch == ']') && depth > 0) {
			depth--;
		}
	}
	return max;
}

esim_err net_json_parse(const uint8_t *body, size_t len, size_t max_len, size_t max_depth,
			json_t **out, struct net_json_error *err)
{
	*out = NULL;
	set_err(err, "", "");
	if (body == NULL && len != 0)
		return ESIM_E_ARG;
	if (len > max_len) {
		set_err(err, "", "body too large");
		return ESIM_E_NET_BODY_TOO_LARGE;
	}
	if (json_depth(body, len, max_depth) > max_depth) {
		set_err(err, "", "nested too deep");
		return ESIM_E_NET_JSON_TOO_DEEP;
	}
	json_error_t je;
	json_t *j = json_loadb(len ? (const char *)body : "", len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		set_err(err, "", je.text);
		return ESIM_E_NET_JSON;
	}
	*out = j;
	return ESIM_OK;
}

static esim_err get_field(const json_t *obj, const char *field, int type, json_t **out,
			  struct net_json_error *err)
{
	*out = NULL;
	if (!json_is_object(obj)) {
		set_err(err, field, "parent is not an object");
		return ESIM_E_NET_JSON_FIELD;
	}
	json_t *v = json_object_get(obj, field);
	if (v == NULL) {
		set_err(err, field, "missing");
		return ESIM_E_NET_JSON_FIELD;
	}
	if ((int)json_typeof(v) != type) {
		set_err(err, field, type == JSON_STRING ? "not a string" : "not an object");
		return ESIM_E_NET_JSON_FIELD;
	}
	*out = v;
	return ESIM_OK;
}

esim_err net_json_get_object(const json_t *obj, const char *field, json_t **out,
			     struct net_json_error *err)
{
	return get_field(obj, field, JSON_OBJECT, out, err);
}

esim_err net_json_get_string(const json_t *obj, const char *field, const char **out,
			     struct net_json_error *err)
{
	json_t *v;
	*out = NULL;
	esim_err e = get_field(obj, field, JSON_STRING, &v, err);
	if (e != ESIM_OK)
		return e;
	*out = json_string_value(v);
	return ESIM_OK;
}

esim_err net_json_get_base64(const json_t *obj, const char *field, size_t max, uint8_t **out,
			     size_t *out_len, struct net_json_error *err)
{
	json_t *v;
	*out = NULL;
	*out_len = 0;
	esim_err e = get_field(obj, field, JSON_STRING, &v, err);
	if (e != ESIM_OK)
		return e;
	size_t tlen = json_string_length(v);
	/* Refuse what cannot fit before decoding, leaving room for generous
	 * whitespace (line-wrapped base64); the exact cap is checked after. */
	if (tlen / 2 > max / 3 * 4 + 8) {
		set_err(err, field, "too large");
		return ESIM_E_NET_BODY_TOO_LARGE;
	}
	uint8_t *p;
	size_t n;
	e = esim_base64_decode(json_string_value(v), tlen, &p, &n);
	if (e != ESIM_OK) {
		set_err(err, field, "bad base64");
		return e;
	}
	if (n > max) {
		free(p);
		set_err(err, field, "too large");
		return ESIM_E_NET_BODY_TOO_LARGE;
	}
	*out = p;
	*out_len = n;
	return ESIM_OK;
}

esim_err net_json_set_base64(json_t *obj, const char *field, const uint8_t *data, size_t len)
{
	char *s;
	esim_err e = esim_base64_encode(data, len, &s);
	if (e != ESIM_OK)
		return e;
	json_t *v = json_stringn(s, strlen(s));
	free(s);
	if (v == NULL)
		return ESIM_E_NOMEM;
	if (json_object_set_new(obj, field, v) != 0)
		return ESIM_E_NOMEM;
	return ESIM_OK;
}
