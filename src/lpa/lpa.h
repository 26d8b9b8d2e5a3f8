/*
 * The LPA's shared machinery (private to src/lpa): one struct lpa per
 * command run holds the parsed global options, the card session and HTTP
 * client (both opened lazily), the JSON result being built and the first
 * error. Commands report failures through lpa_fail*(), which print one
 * clear line on stderr and remember the exit code and the SGP.22 code;
 * lpa_done() prints the JSON document (with --json) and returns the exit
 * code, so every command ends with `return lpa_done(&L);`.
 */
#ifndef ESIM_LPA_LPA_H
#define ESIM_LPA_LPA_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "esim/apdu.h"
#include "esim/err.h"
#include "esim/net.h"
#include "esim/rsp.h"
#include "esim/rsp_es10.h"
#include "esim/rsp_es9.h"
#include "lpa/cli.h"

#define LPA_MAX_CI		   16
#define LPA_MAX_POS		   8
#define LPA_DEFAULT_HTTP_TIMEOUT_S 60
#define LPA_MAX_BPP		   (8u * 1024 * 1024)

struct lpa_opts {
	const char *transport; /* socket | pcsc | at */
	const char *device;    /* the driver's spec */
	bool json;
	bool trace;
	bool yes;
	bool basic_channel;
	size_t mss;
	const char *ci[LPA_MAX_CI];
	size_t n_ci;
	unsigned timeout_s;
	/* --request-id, or a new random one: X-Request-Id on every ES9+ /
	 * ES11 request, so that the servers' logs of this command can be found
	 * (include/esim/log.h); ESIM_REQUEST_ID_MAX + 1 */
	char request_id[65];
};

struct lpa {
	const char *command; /* "profile list" */
	struct lpa_opts o;
	bool tty; /* stdout is a terminal and no --json: tables + progress */
	bool stdin_tty;
	apdu_session *s;
	net_client *http;
	char *ci_pem;
	json_t *result; /* the command's result object */
	/* the first failure */
	int exit_code;
	json_t *error;
	/* > 0: failures are printed as warnings and not recorded (for
	 * best-effort steps such as delivering a notification) */
	int soft;
	/* positional arguments after the subcommand */
	char *pos[LPA_MAX_POS];
	int npos;
};

/* A command-specific option: getopt_long entry plus its handler. */
typedef int (*lpa_opt_fn)(struct lpa *L, int id, const char *arg, void *user);

/*
 * Parse argv (argv[0] = group, argv[1] = subcommand when sub is true) with
 * the global options plus extra (codes of extra entries must be >= 0x200;
 * the array ends with a zero entry; may be NULL). Positional arguments go
 * to L->pos. Returns CLI_OK, or an exit code after printing the problem
 * (the caller returns lpa_done()).
 */
int lpa_init(struct lpa *L, const char *command, int argc, char **argv, int first,
	     const struct option *extra, lpa_opt_fn fn, void *user);
/* Print the JSON document (with --json), free everything, return the exit
 * code. */
int lpa_done(struct lpa *L);

/* Print the global options (for --help of each group). */
void lpa_usage_globals(FILE *out);
/* Whether "--name" (or "--name=value") is a global option, and whether it
 * takes a value. */
bool lpa_is_global_option(const char *arg, bool *takes_value);

/* --- failures ------------------------------------------------------------ */

/* Record a failure with exit code and message (printf format). Only the
 * first failure is kept in the JSON document; each is printed. Returns
 * exit_code so that a command can `return lpa_fail(...)`. */
int lpa_fail(struct lpa *L, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, for a library error; the exit code follows the error's layer when
 * exit_code is 0. context says what was being done ("reading the EID"). */
int lpa_fail_err(struct lpa *L, esim_err err, int exit_code, const char *context);
/* An ES10 function answered with result code `code` (not ok). */
int lpa_fail_card_result(struct lpa *L, uint32_t tag, int64_t code);
/* Attach a field to the error object of the last failure (for --json). */
void lpa_error_set(struct lpa *L, const char *key, json_t *value);
/* Non-fatal message on stderr (and in the JSON "warnings" array). */
void lpa_warn(struct lpa *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit code an esim_err maps to. */
int lpa_exit_for(esim_err err);

/* --- the card -------------------------------------------------------------- */

/* Open the session if needed; on failure records it and returns the exit
 * code (non-zero). */
int lpa_card(struct lpa *L);
/* One ES10 command (the card session is opened first). resp is emptied and
 * receives the response TLV. On failure the error is recorded with the
 * function's name and a non-zero exit code is returned. */
int lpa_es10(struct lpa *L, const uint8_t *req, size_t len, esim_buf *resp);
/* Build-and-send helpers: run an ES10 request built by the caller
 * (req is freed here). */
int lpa_es10_owned(struct lpa *L, esim_err build_err, uint8_t *req, size_t len, esim_buf *resp);
/* A "TAG { 80 result }" function: sends req (freed here) and fails with the
 * result's name unless it is 0. *result (may be NULL) gets the code. */
int lpa_es10_simple(struct lpa *L, uint32_t tag, esim_err build_err, uint8_t *req, size_t len,
		    int64_t *result);
/* GetEID. */
int lpa_get_eid(struct lpa *L, char eid[RSP_EID_DIGITS + 1]);
/* GetProfilesInfo for all (ref NULL) or one profile. */
int lpa_get_profiles(struct lpa *L, const struct rsp_profile_ref *ref,
		     struct rsp_profile_list *out);
/* ListNotification with a PMO filter (0: all). */
int lpa_list_notifications(struct lpa *L, uint32_t pmo, struct rsp_notif_list *out);

/* --- ES9+ / ES11 ----------------------------------------------------------- */

/* The HTTP client (CI trust from --ci / ESIM_CI), opened if needed. */
int lpa_http(struct lpa *L);

/* Result of the last ES9+ / ES11 call that failed: was it the network? */
struct lpa_es9_status {
	esim_err err; /* ESIM_OK, or the transport error */
	long http_status;
	char subject[16], reason[16]; /* "" unless the server said Failed */
	char message[256];
};
/* An ES9+ / ES11 answer body as JSON, bounded in size and depth, with the
 * long base64 members kept out of jansson's lexer (es9p.c explains how).
 * Must give exactly what net_json_parse(body, len, LPA_ES9_MAX_BODY,
 * LPA_ES9_MAX_DEPTH, ...) gives: fuzz_lpa_es9 checks both on every input. */
#define LPA_ES9_MAX_BODY  (LPA_MAX_BPP * 2)
#define LPA_ES9_MAX_DEPTH 16
esim_err lpa_es9_parse(const uint8_t *body, size_t len, json_t **doc, struct net_json_error *je);
/* The answer body of an ES9+ / ES11 function (len bytes, untrusted): parsed
 * as JSON (depth and size bounded) and its header.functionExecutionStatus
 * read; *resp the document (caller decrefs) on Executed-Success or
 * -WithWarning, else NULL with the failure recorded (st filled on
 * "Failed") and a non-zero exit code returned. lpa_es9_call's reading of
 * what the server sent, and fuzz_lpa_es9's input. */
int lpa_es9_answer(struct lpa *L, const char *address, const char *function, const uint8_t *body,
		   size_t len, json_t **resp, struct lpa_es9_status *st);
/* One ES9+ / ES11 call: rq encoded by the rsp_es9 codec and POSTed to
 * https://ADDRESS/gsma/rsp2/es9plus/FUNCTION (with safe_to_repeat,
 * transient failures are retried), the answer decoded into *resp (always
 * initialised; caller clears with rsp_es9_response_clear; no fields for
 * 204). A transport failure, an HTTP error, a "Failed" header (the subject
 * and reason named and explained) or a member the answer lacks or has
 * malformed (named) is recorded and a non-zero exit code returned; *st
 * says which. */
int lpa_es9_call(struct lpa *L, const char *address, const struct rsp_es9_request *rq,
		 bool safe_to_repeat, struct rsp_es9_response *resp, struct lpa_es9_status *st);
/* Decode a checked answer document of resp->fn (set by the caller) with
 * the codec; a failure is recorded with the field named. */
int lpa_es9_decode(struct lpa *L, const json_t *doc, struct rsp_es9_response *resp);
/* ES11 AuthenticateClient's eventEntries, as the codec decoded them, as a
 * new array of {event_id, smdp_address} in *out (always set, caller
 * decrefs; discover.c). */
int lpa_es11_events(struct lpa *L, const struct rsp_es9_response *resp, json_t **out);

/* Explanations of ES9+ status codes (codes.c). */
const char *lpa_subject_name(const char *subject);
const char *lpa_reason_name(const char *reason);
/* A sentence for a known (function, subject, reason) case, or NULL. */
const char *lpa_es9_hint(const char *function, const char *subject, const char *reason);
/* Names of bppCommandId and errorReason values in a PIR (digest 7.6). */
const char *lpa_bpp_command_name(int64_t v);
const char *lpa_bpp_error_name(int64_t v);

/* Deliver one pending notification (the whole BF37 / 30 TLV) to address
 * and, when the server accepted it, remove seq from the card. *delivered
 * tells which; the failure (if any) is kept in st. Returns CLI_OK or the
 * exit code of the failure (recorded as warning only when quiet). */
int lpa_deliver_notification(struct lpa *L, const uint8_t *p, size_t len, const char *address,
			     uint64_t seq, bool *delivered, struct lpa_es9_status *st);

/* Deliver every pending notification of the profile iccid (10 bytes
 * swapped BCD; NULL: all), each removed from the card once accepted.
 * One object per notification is appended to out; *failures counts those
 * kept and *first_rc is the exit code of the first failure (cmd_notification.c). */
int lpa_process_notifications(struct lpa *L, const uint8_t *iccid, json_t *out, size_t *failures,
			      int *first_rc);

/* --- output helpers -------------------------------------------------------- */

/* Ask on the terminal; true for y/yes. */
bool lpa_confirm(struct lpa *L, const char *question);
/* Read a line from the terminal (echo off when secret); false on EOF. */
bool lpa_prompt(struct lpa *L, const char *question, bool secret, char *buf, size_t cap);
/* Progress line on a terminal (overwritten with \r); nothing otherwise. */
void lpa_progress(struct lpa *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lpa_progress_end(struct lpa *L);
/* json helpers that tolerate NULL strings (-> null) */
json_t *lpa_jstr(const char *s);
json_t *lpa_jhex(const uint8_t *p, size_t n);
/* "2.2.2" for a VersionType */
void lpa_version_text(const uint8_t v[3], char out[16]);
/* Current UTC time as ISO 8601 "2024-01-02T03:04:05Z". */
void lpa_now_iso(char out[32]);

/* --- command groups (declared in cli.h) ------------------------------------------ */

/* profile download / discover (download.c, discover.c) */
int lpa_profile_download(int argc, char **argv);
int lpa_profile_discover(int argc, char **argv);
/* profile download --discover: an SM-DS event, then its download (discover.c) */
int lpa_profile_download_discover(int argc, char **argv);

#endif
