/*
 * esim_log: structured logs an operator can use (issue 17.5). One line per
 * event on stderr (or a FILE of the caller's), journald-friendly: no colour,
 * no line breaks inside an event. Two formats:
 *
 *   json (the servers' default): one JSON object per line, with ts (UTC,
 *     RFC 3339 with milliseconds), level, prog, msg, request_id when the
 *     event belongs to a request, then the event's own fields in order:
 *     {"ts":"2026-12-08T01:02:03.456Z","level":"info","prog":"esim-smdp",
 *      "msg":"es9","request_id":"4f1c0a9e2b7d6c31","function":"..."}
 *   text: "TS LEVEL PROG: MSG key=value ... request_id=ID"
 *
 * Never a secret: the logger takes only the fields the caller names
 * (ESIM_LOG_S / ESIM_LOG_I); there is no "log this object" call, so a key,
 * Ki/OPc, token or matching ID cannot slip in with a structure. Callers
 * log transaction ids, ICCIDs, statuses and request ids, nothing else.
 *
 * A request id ties one operation together across programs: the LPA makes
 * one per command (or takes --request-id) and sends it as X-Request-Id on
 * every ES9+ call; the SM-DP+ logs it with each request and sends it on to
 * the operator with the ES2+ callbacks the request caused. Ids from the
 * network are checked (esim_request_id_valid) and replaced when unusable.
 *
 * An esim_log is a small value the program owns (no global state); emit
 * is safe from any thread (one fputs per line).
 */
#ifndef ESIM_LOG_H
#define ESIM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "esim/err.h"

enum esim_log_level { ESIM_LOG_DEBUG, ESIM_LOG_INFO, ESIM_LOG_WARN, ESIM_LOG_ERROR };
enum esim_log_format { ESIM_LOG_JSON, ESIM_LOG_TEXT };

typedef struct esim_log {
	const char *prog; /* borrowed: "esim-smdp" */
	enum esim_log_format format;
	enum esim_log_level min_level; /* events below it are dropped */
	FILE *out;		       /* NULL: stderr */
} esim_log;

/* One named field of an event: a string (str, NULL is written as null) or
 * a number (is_num). Keys and strings are borrowed for the call. */
struct esim_log_kv {
	const char *key;
	const char *str;
	long long num;
	bool is_num;
};
#define ESIM_LOG_S(k, v) ((struct esim_log_kv){.key = (k), .str = (v)})
#define ESIM_LOG_I(k, v) ((struct esim_log_kv){.key = (k), .num = (long long)(v), .is_num = true})

/* A logger for prog in format fmt, at info and above, on stderr. */
void esim_log_init(esim_log *lg, const char *prog, enum esim_log_format fmt);

/* "json" or "text" (the log-format setting); ESIM_E_ARG for anything else. */
esim_err esim_log_format_parse(const char *text, enum esim_log_format *out);

/* Write one event: msg, the request id (NULL or "": none) and n fields.
 * A NULL lg writes nothing. */
void esim_log_emit(const esim_log *lg, enum esim_log_level level, const char *request_id,
		   const char *msg, const struct esim_log_kv *kv, size_t n);

/* The line esim_log_emit would write (with its '\n'), into out (cap bytes,
 * always NUL-terminated; a line that does not fit is cut at a field and
 * still closed, so it stays valid JSON). Returns the length written. */
size_t esim_log_render(const esim_log *lg, enum esim_log_level level, const char *request_id,
		       const char *msg, const struct esim_log_kv *kv, size_t n, char *out,
		       size_t cap);

/* A net_log_fn (net_server_config.log) that writes net's rate-limited
 * lines as warn events; arg is the esim_log. */
void esim_log_net(void *arg, const char *line);

/* ---- request ids ---- */

#define ESIM_REQUEST_ID_HEADER "X-Request-Id"
#define ESIM_REQUEST_ID_MAX    64 /* characters, without the NUL */

/* 1..64 characters of [A-Za-z0-9._-]: safe in a header, a log line and a
 * database column as it is. */
bool esim_request_id_valid(const char *id);

/* A new random id: 16 lowercase hex digits into out. ESIM_E_CRYPTO_RANDOM
 * when the system has no randomness to give. */
esim_err esim_request_id_new(char out[ESIM_REQUEST_ID_MAX + 1]);

/* in when it is valid, else a new id; the result is copied into out and
 * returned. */
const char *esim_request_id_pick(const char *in, char out[ESIM_REQUEST_ID_MAX + 1]);

#endif
