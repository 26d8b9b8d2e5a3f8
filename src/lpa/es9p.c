/*
 * The LPA's ES9+ / ES11 client (SGP.22 5.6, 5.8, 6.5; digest 5.1 to 5.5):
 * POST a JSON body to https://ADDRESS/gsma/rsp2/es9plus/FUNCTION over the
 * CI-pinned TLS of net_client, with the SGP.22 headers, and read the
 * functionExecutionStatus of the answer. A "Failed" answer is reported
 * with its subjectCode / reasonCode named and explained.
 *
 * Bodies are encoded and answers decoded by the rsp_es9 codec
 * (include/esim/rsp_es9.h), the one the SM-DP+, the SM-DS and the tests
 * use.
 *
 * Retries: only functions the caller marks safe to repeat are retried
 * (initiateAuthentication, handleNotification); authenticateClient,
 * getBoundProfilePackage and cancelSession change server state and are
 * sent once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpa/lpa.h"

static void trace_http(struct lpa *L, const char *dir, const char *fn, const char *body, size_t len)
{
	if (!L->o.trace)
		return;
	const size_t cap = 2000;
	fprintf(stderr, "%s %s (%zu bytes) %.*s%s\n", dir, fn, len, (int)(len < cap ? len : cap),
		body ? body : "", len > cap ? "..." : "");
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* Read header.functionExecutionStatus; fills st on "Failed"/"Expired". */
static bool header_ok(json_t *doc, struct lpa_es9_status *st, const char **status_out)
{
	json_t *h = json_object_get(doc, "header");
	json_t *fes = h ? json_object_get(h, "functionExecutionStatus") : NULL;
	const char *status = fes ? json_string_value(json_object_get(fes, "status")) : NULL;
	*status_out = status;
	if (status != NULL && (strcmp(status, "Executed-Success") == 0 ||
			       strcmp(status, "Executed-WithWarning") == 0))
		return true;
	json_t *scd = fes ? json_object_get(fes, "statusCodeData") : NULL;
	copy_str(st->subject, sizeof st->subject,
		 scd ? json_string_value(json_object_get(scd, "subjectCode")) : NULL);
	copy_str(st->reason, sizeof st->reason,
		 scd ? json_string_value(json_object_get(scd, "reasonCode")) : NULL);
	copy_str(st->message, sizeof st->message,
		 scd ? json_string_value(json_object_get(scd, "message")) : NULL);
	return false;
}

static int report_failed(struct lpa *L, const char *address, const char *function,
			 const char *status, const struct lpa_es9_status *st)
{
	const char *sn = lpa_subject_name(st->subject), *rn = lpa_reason_name(st->reason);
	const char *hint = lpa_es9_hint(function, st->subject, st->reason);
	bool first = L->exit_code == CLI_OK;
	int rc;
	if (st->subject[0] == '\0')
		rc = lpa_fail(L, CLI_EXIT_SERVER, "%s at %s: the server answered status '%s'",
			      function, address, status ? status : "(none)");
	else
		rc = lpa_fail(L, CLI_EXIT_SERVER,
			      "%s at %s failed: subject %s (%s), reason %s (%s)%s%s%s%s%s",
			      function, address, st->subject, sn ? sn : "unknown subject",
			      st->reason, rn ? rn : "unknown reason", hint ? ": " : "",
			      hint ? hint : "", st->message[0] ? " [server: " : "", st->message,
			      st->message[0] ? "]" : "");
	if (first) {
		lpa_error_set(L, "function", json_string(function));
		lpa_error_set(L, "status", lpa_jstr(status));
		if (st->subject[0]) {
			lpa_error_set(L, "subject_code", json_string(st->subject));
			lpa_error_set(L, "reason_code", json_string(st->reason));
			lpa_error_set(L, "subject", lpa_jstr(sn));
			lpa_error_set(L, "reason", lpa_jstr(rn));
		}
	}
	return rc;
}

/*
 * Parsing the answer, fast for long base64 values. jansson's lexer spends
 * ~150 instructions per character of a string; getBoundProfilePackage's
 * boundProfilePackage is 16 kB of base64 (the TS.48 profile), so parsing
 * that answer was 2.6 M instructions, a tenth of esim's CPU per download.
 * So the long top-level string values made only of base64 characters (no
 * escape can hide in them: what jansson would return is exactly those
 * bytes) are cut out of the text before jansson parses the rest, and put
 * back as strings afterwards. Everything else is jansson's, as before:
 * the whole text must still be valid JSON (the cut values become ""),
 * keys stay where they were (so duplicates are still refused), and the
 * size and depth limits apply to the text as received.
 */
#define ES9_FAST_MIN  512 /* shorter values are not worth it */
#define ES9_FAST_CUTS 4
#define ES9_FAST_KEY  64

struct es9_cut {
	char key[ES9_FAST_KEY];
	size_t off, len; /* of the value's characters, between the quotes */
};

static bool b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

/* The top-level members "key": "base64..." of at least ES9_FAST_MIN
 * characters whose key has no escape; malformed text finds nothing here
 * and is left for jansson to refuse. */
static size_t find_cuts(const uint8_t *p, size_t len, struct es9_cut cuts[ES9_FAST_CUTS])
{
	size_t n = 0, depth = 0, key_off = 0, key_len = 0;
	bool key_ok = false;
	uint8_t last = 0; /* the last structural character outside strings */
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = p[i];
		if (ch == '"') {
			size_t start = i + 1, j = start;
			bool esc = false;
			if (depth == 1 && last == ':') {
				while (j < len && b64_char(p[j]))
					j++;
				if (j < len && p[j] == '"' && j - start >= ES9_FAST_MIN && key_ok &&
				    n < ES9_FAST_CUTS) {
					memcpy(cuts[n].key, p + key_off, key_len);
					cuts[n].key[key_len] = '\0';
					cuts[n].off = start;
					cuts[n].len = j - start;
					n++;
				}
			}
			for (; j < len; j++) { /* the end of the string */
				if (p[j] == '\\')
					esc = true, j++;
				else if (p[j] == '"')
					break;
			}
			if (j >= len)
				return n;
			if (depth == 1 && (last == '{' || last == ',')) { /* a member's name */
				key_off = start;
				key_len = j - start;
				key_ok = !esc && key_len < ES9_FAST_KEY;
			}
			last = '"';
			i = j;
		} else if (ch == '{' || ch == '[') {
			depth++;
			last = ch;
		} else if (ch == '}' || ch == ']') {
			if (depth > 0)
				depth--;
			last = ch;
		} else if (ch == ':' || ch == ',') {
			last = ch;
		}
	}
	return n;
}

esim_err lpa_es9_parse(const uint8_t *body, size_t len, json_t **doc, struct net_json_error *je)
{
	*doc = NULL;
	struct es9_cut cuts[ES9_FAST_CUTS];
	size_t n = len <= LPA_ES9_MAX_BODY ? find_cuts(body, len, cuts) : 0;
	if (n == 0)
		return net_json_parse(body, len, LPA_ES9_MAX_BODY, LPA_ES9_MAX_DEPTH, doc, je);
	uint8_t *text = malloc(len);
	if (text == NULL)
		return ESIM_E_NOMEM;
	size_t t = 0, from = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(text + t, body + from, cuts[i].off - from);
		t += cuts[i].off - from;
		from = cuts[i].off + cuts[i].len;
	}
	memcpy(text + t, body + from, len - from);
	t += len - from;
	esim_err err = net_json_parse(text, t, LPA_ES9_MAX_BODY, LPA_ES9_MAX_DEPTH, doc, je);
	free(text);
	for (size_t i = 0; err == ESIM_OK && i < n; i++) {
		json_t *v = json_object_get(*doc, cuts[i].key);
		/* jansson keeps the last of equal keys only when duplicates are
		 * allowed; they are not, so this is the member that was cut */
		if (!json_is_string(v) || json_string_length(v) != 0 ||
		    json_object_set_new(
			*doc, cuts[i].key,
			json_stringn_nocheck((const char *)body + cuts[i].off, cuts[i].len)) != 0)
			err = ESIM_E_NOMEM;
	}
	if (err != ESIM_OK && *doc != NULL) {
		json_decref(*doc);
		*doc = NULL;
	}
	return err;
}

int lpa_es9_answer(struct lpa *L, const char *address, const char *function, const uint8_t *body,
		   size_t len, json_t **resp, struct lpa_es9_status *st)
{
	*resp = NULL;
	json_t *doc = NULL;
	struct net_json_error je;
	esim_err err = lpa_es9_parse(body, len, &doc, &je);
	const char *status = NULL;
	if (err != ESIM_OK) {
		char ctx[300];
		snprintf(ctx, sizeof ctx, "%s at %s: the answer is not valid JSON", function,
			 address);
		return lpa_fail_err(L, err, CLI_EXIT_SERVER, ctx);
	}
	if (!header_ok(doc, st, &status)) {
		int rc = report_failed(L, address, function, status, st);
		json_decref(doc);
		return rc;
	}
	*resp = doc;
	return CLI_OK;
}

/* POST the body text of function; *resp the checked answer document (NULL
 * for 204). */
static int post_body(struct lpa *L, const char *address, const char *function, const char *body,
		     size_t len, bool safe_to_repeat, json_t **resp, struct lpa_es9_status *st)
{
	char url[600];
	snprintf(url, sizeof url, "https://%s/gsma/rsp2/es9plus/%s", address, function);
	trace_http(L, ">>", url, body, len);
	struct net_retry policy = {.safe_to_repeat = safe_to_repeat, .max_attempts = 3};
	struct net_client_response r;
	unsigned attempts = 0;
	esim_err err = net_client_post_json_retry(L->http, url, body, len, &policy, &r, &attempts);
	st->err = err;
	st->http_status = r.status;
	trace_http(L, "<<", function, (const char *)r.body.data, r.body.len);
	int rc;
	if (err == ESIM_E_NET_HTTP_STATUS) {
		rc = lpa_fail(L, CLI_EXIT_SERVER, "%s at %s: HTTP status %ld", function, address,
			      r.status);
		lpa_error_set(L, "http_status", json_integer(r.status));
		snprintf(st->message, sizeof st->message, "HTTP status %ld", r.status);
	} else if (err != ESIM_OK) {
		char ctx[800];
		const char *why = net_client_errmsg(L->http); /* names what failed */
		snprintf(ctx, sizeof ctx, "%s at %s%s%s%s", function, address,
			 why && *why ? " (" : "", why ? why : "", why && *why ? ")" : "");
		snprintf(st->message, sizeof st->message, "%s", esim_strerror(err));
		rc = lpa_fail_err(L, err, 0, ctx);
	} else if (r.status == 204 || r.body.len == 0) {
		rc = CLI_OK; /* handleNotification: 204, no body */
	} else {
		rc = lpa_es9_answer(L, address, function, r.body.data, r.body.len, resp, st);
	}
	net_client_response_clear(&r);
	return rc;
}

int lpa_es9_decode(struct lpa *L, const json_t *doc, struct rsp_es9_response *resp)
{
	const char *field = NULL;
	const char *fn = rsp_es9_fn_name(resp->fn);
	json_t *ev = json_object_get(doc, "eventEntries");
	if (resp->fn == RSP_ES11_AUTHENTICATE_CLIENT && ev != NULL && !json_is_array(ev))
		return lpa_fail(L, CLI_EXIT_SERVER, "the SM-DS eventEntries is not a list");
	esim_err err = rsp_es9_response_from_jdoc(resp->fn, doc, resp, &field);
	if (err == ESIM_OK)
		return CLI_OK;
	int rc = lpa_fail(L, CLI_EXIT_SERVER, "the %s answer has no valid '%s' (%s)", fn,
			  field ? field : "body", esim_strerror(err));
	lpa_error_set(L, "field", lpa_jstr(field));
	return rc;
}

int lpa_es9_call(struct lpa *L, const char *address, const struct rsp_es9_request *rq,
		 bool safe_to_repeat, struct rsp_es9_response *resp, struct lpa_es9_status *st)
{
	memset(st, 0, sizeof *st);
	memset(resp, 0, sizeof *resp);
	resp->fn = rq->fn;
	const char *fn = rsp_es9_fn_name(rq->fn);
	int rc = lpa_http(L);
	if (rc != CLI_OK)
		return rc;
	char *body = NULL;
	size_t len = 0;
	esim_err err = rsp_es9_request_to_json(rq, &body, &len);
	if (err != ESIM_OK) {
		char ctx[128];
		snprintf(ctx, sizeof ctx, "%s: the request cannot be encoded", fn);
		return lpa_fail_err(L, err, CLI_EXIT_FAILURE, ctx);
	}
	json_t *doc = NULL;
	rc = post_body(L, address, fn, body, len, safe_to_repeat, &doc, st);
	free(body);
	if (rc == CLI_OK && doc != NULL)
		rc = lpa_es9_decode(L, doc, resp);
	json_decref(doc);
	return rc;
}

int lpa_deliver_notification(struct lpa *L, const uint8_t *p, size_t len, const char *address,
			     uint64_t seq, bool *delivered, struct lpa_es9_status *st)
{
	*delivered = false;
	struct rsp_es9_request rq;
	struct rsp_es9_response resp;
	rsp_es9_dl_notification(p, len, &rq);
	/* handleNotification may be repeated: the SM-DP+ de-duplicates (SGP.22 5.6.4) */
	int rc = lpa_es9_call(L, address, &rq, true, &resp, st);
	rsp_es9_response_clear(&resp);
	if (rc != CLI_OK)
		return rc;
	*delivered = true;
	uint8_t *rm = NULL;
	size_t rm_len = 0;
	esim_err err = rsp_remove_notification_req(seq, &rm, &rm_len);
	int64_t code = 0;
	rc = lpa_es10_simple(L, RSP_ES10_REMOVE_NOTIFICATION, err, rm, rm_len, &code);
	if (rc == CLI_OK && code != 0 && code != 1) /* 1: already gone */
		rc = lpa_fail_card_result(L, RSP_ES10_REMOVE_NOTIFICATION, code);
	return rc;
}
