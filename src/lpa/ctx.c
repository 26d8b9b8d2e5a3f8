/*
 * What every `esim` command shares: global options (transport, device,
 * --json, --trace, --mss, --ci, --timeout), the lazily opened card session
 * (ES10 over apdu_session) and the failure reporting that turns library
 * errors and SGP.22 result codes into one clear line and a stable exit code
 * (src/lpa/cli.h, docs/usage.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "esim/i18n.h"
#include "esim/log.h"
#include "esim/pki.h"
#include "lpa/lpa.h"

enum {
	OPT_TRANSPORT = 0x100,
	OPT_DEVICE,
	OPT_SOCKET,
	OPT_READER,
	OPT_JSON,
	OPT_TRACE,
	OPT_MSS,
	OPT_CI,
	OPT_TIMEOUT,
	OPT_YES,
	OPT_BASIC,
	OPT_REQUEST_ID,
	OPT_HELP,
};

static const struct option global_opts[] = {
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"reader", required_argument, NULL, OPT_READER},
    {"json", no_argument, NULL, OPT_JSON},
    {"trace", no_argument, NULL, OPT_TRACE},
    {"mss", required_argument, NULL, OPT_MSS},
    {"ci", required_argument, NULL, OPT_CI},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"yes", no_argument, NULL, OPT_YES},
    {"basic-channel", no_argument, NULL, OPT_BASIC},
    {"request-id", required_argument, NULL, OPT_REQUEST_ID},
    {"help", no_argument, NULL, OPT_HELP},
};
#define N_GLOBAL (sizeof global_opts / sizeof global_opts[0])

bool lpa_is_global_option(const char *arg, bool *takes_value)
{
	if (strncmp(arg, "--", 2) != 0)
		return false;
	const char *name = arg + 2;
	size_t n = strcspn(name, "=");
	for (size_t i = 0; i < N_GLOBAL; i++)
		if (strlen(global_opts[i].name) == n &&
		    strncmp(global_opts[i].name, name, n) == 0) {
			*takes_value =
			    global_opts[i].has_arg == required_argument && name[n] != '=';
			return true;
		}
	return false;
}

void lpa_usage_globals(FILE *out)
{
	fputs(
	    _("global options (before or anywhere after the command name):\n"
	      "  --transport socket|pcsc|at   how to reach the eUICC ($ESIM_TRANSPORT; default "
	      "pcsc)\n"
	      "  --device SPEC                the transport's device ($ESIM_DEVICE): unix:PATH or\n"
	      "                               tcp:HOST:PORT (socket), reader name or index "
	      "(pcsc),\n"
	      "                               /dev/ttyUSB2[,baud=N][,mode=cgla|csim] (at)\n"
	      "  --socket SPEC                same as --transport socket --device SPEC\n"
	      "  --reader NAME                same as --transport pcsc --device NAME\n"
	      "  --mss N                      short STORE DATA blocks of N bytes, 1..255 "
	      "(default:\n"
	      "                               extended length where the card declares it, else "
	      "255;\n"
	      "                               120 on the at transport)\n"
	      "  --basic-channel              talk on channel 0 (no MANAGE CHANNEL)\n"
	      "  --ci FILE                    trusted CI certificate for ES9+/ES11 TLS "
	      "(repeatable;\n"
	      "                               $ESIM_CI: files separated by ':')\n"
	      "  --timeout SECONDS            HTTP timeout per request (default 60)\n"
	      "  --json                       print one JSON document (docs/usage.md)\n"
	      "  --trace                      print APDUs and HTTP exchanges on stderr\n"
	      "  --yes                        do not ask before destructive steps\n"
	      "  --request-id ID              X-Request-Id sent on every ES9+/ES11 request, to "
	      "find\n"
	      "                               this command in the servers' logs (1..64 of\n"
	      "                               A-Z a-z 0-9 . _ -; default: 16 random hex digits)\n"
	      "  --help                       this help (after a command: the command's)\n"),
	    out);
}

static json_t *warnings_of(struct lpa *L)
{
	json_t *w = json_object_get(L->result, "warnings");
	if (w == NULL) {
		w = json_array();
		json_object_set_new(L->result, "warnings", w);
	}
	return w;
}

int lpa_init(struct lpa *L, const char *command, int argc, char **argv, int first,
	     const struct option *extra, lpa_opt_fn fn, void *user)
{
	memset(L, 0, sizeof *L);
	L->command = command;
	L->result = json_object();
	L->o.transport = getenv("ESIM_TRANSPORT");
	L->o.device = getenv("ESIM_DEVICE");
	L->o.timeout_s = LPA_DEFAULT_HTTP_TIMEOUT_S;
	size_t n_extra = 0;
	while (extra != NULL && extra[n_extra].name != NULL)
		n_extra++;
	struct option *all = calloc(N_GLOBAL + n_extra + 1, sizeof *all);
	if (all == NULL || L->result == NULL) {
		free(all);
		return lpa_fail(L, CLI_EXIT_FAILURE, "out of memory");
	}
	memcpy(all, global_opts, sizeof global_opts);
	if (n_extra)
		memcpy(all + N_GLOBAL, extra, n_extra * sizeof *all);
	/* argv[first] is the first argument after the (sub)command */
	int sub_argc = argc - first + 1;
	char **sub_argv = argv + first - 1;
	optind = 1;
	opterr = 0;
	int rc = CLI_OK, c;
	while (rc == CLI_OK && (c = getopt_long(sub_argc, sub_argv, ":", all, NULL)) != -1) {
		char *end = NULL;
		long v;
		switch (c) {
		case OPT_TRANSPORT:
			L->o.transport = optarg;
			break;
		case OPT_DEVICE:
			L->o.device = optarg;
			break;
		case OPT_SOCKET:
			L->o.transport = "socket";
			L->o.device = optarg;
			break;
		case OPT_READER:
			L->o.transport = "pcsc";
			L->o.device = optarg;
			break;
		case OPT_JSON:
			L->o.json = true;
			break;
		case OPT_TRACE:
			L->o.trace = true;
			break;
		case OPT_YES:
			L->o.yes = true;
			break;
		case OPT_BASIC:
			L->o.basic_channel = true;
			break;
		case OPT_MSS:
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 1 || v > APDU_MAX_MSS)
				rc = lpa_fail(L, CLI_EXIT_USAGE, "--mss must be 1..%d",
					      APDU_MAX_MSS);
			else
				L->o.mss = (size_t)v;
			break;
		case OPT_TIMEOUT:
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 1 || v > 3600)
				rc = lpa_fail(L, CLI_EXIT_USAGE,
					      "--timeout must be 1..3600 seconds");
			else
				L->o.timeout_s = (unsigned)v;
			break;
		case OPT_CI:
			if (L->o.n_ci == LPA_MAX_CI)
				rc = lpa_fail(L, CLI_EXIT_USAGE, "at most %d --ci", LPA_MAX_CI);
			else
				L->o.ci[L->o.n_ci++] = optarg;
			break;
		case OPT_REQUEST_ID:
			if (!esim_request_id_valid(optarg))
				rc = lpa_fail(
				    L, CLI_EXIT_USAGE,
				    "--request-id '%s': 1..64 characters of A-Z a-z 0-9 . _ -",
				    optarg);
			else
				snprintf(L->o.request_id, sizeof L->o.request_id, "%s", optarg);
			break;
		case OPT_HELP:
			rc = -1;
			break;
		case ':':
			rc = lpa_fail(L, CLI_EXIT_USAGE, "option %s needs a value",
				      sub_argv[optind - 1]);
			break;
		case '?':
			rc = lpa_fail(L, CLI_EXIT_USAGE, "unknown option %s", sub_argv[optind - 1]);
			break;
		default:
			if (fn != NULL)
				rc = fn(L, c, optarg, user);
			else
				rc = lpa_fail(L, CLI_EXIT_USAGE, "unexpected option");
			break;
		}
	}
	free(all);
	if (rc != CLI_OK)
		return rc;
	for (int i = optind; i < sub_argc; i++) {
		if (L->npos == LPA_MAX_POS)
			return lpa_fail(L, CLI_EXIT_USAGE, "too many arguments");
		L->pos[L->npos++] = sub_argv[i];
	}
	if (L->o.request_id[0] == '\0' && esim_request_id_new(L->o.request_id) != ESIM_OK)
		L->o.request_id[0] = '\0'; /* no randomness: no id, the servers make one */
	/* --json: one English document, the system's reasons in it too */
	if (L->o.json)
		esim_i18n_english();
	L->tty = !L->o.json && isatty(STDOUT_FILENO);
	L->stdin_tty = isatty(STDIN_FILENO);
	if (L->o.transport != NULL && apdu_driver_find(L->o.transport) == NULL)
		return lpa_fail(L, CLI_EXIT_USAGE, "unknown transport '%s' (socket, pcsc or at)",
				L->o.transport);
	return CLI_OK;
}

int lpa_done(struct lpa *L)
{
	int code = L->exit_code;
	if (L->o.json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "command", json_string(L->command));
		json_object_set_new(doc, "ok", json_boolean(code == CLI_OK));
		json_object_set_new(doc, "exit_code", json_integer(code));
		if (L->http != NULL) /* the servers' logs of this command carry it */
			json_object_set_new(doc, "request_id", json_string(L->o.request_id));
		json_object_set(doc, "result", L->result ? L->result : json_null());
		if (L->error != NULL)
			json_object_set(doc, "error", L->error);
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text != NULL) {
			puts(text);
			free(text);
		}
		json_decref(doc);
	}
	fflush(stdout);
	apdu_session_close(L->s);
	net_client_free(L->http);
	free(L->ci_pem);
	json_decref(L->result);
	json_decref(L->error);
	memset(L, 0, sizeof *L);
	return code;
}

/* --- failures ------------------------------------------------------------- */

static const char *category(int exit_code)
{
	switch (exit_code) {
	case CLI_EXIT_USAGE:
		return "usage";
	case CLI_EXIT_CARD:
		return "card";
	case CLI_EXIT_SERVER:
		return "server";
	case CLI_EXIT_NETWORK:
		return "network";
	case CLI_EXIT_DATA:
		return "data";
	default:
		return "failure";
	}
}

static int fail_v(struct lpa *L, int exit_code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* A warning: on stderr in the user's language (shown), in the JSON
 * document in English (msg), which scripts may match. */
static void warn_text(struct lpa *L, const char *msg, const char *shown)
{
	fprintf(stderr, _("esim: warning: %s\n"), shown);
	if (L->result != NULL)
		json_array_append_new(warnings_of(L), json_string(msg));
}

/* A failure whose English (msg, for --json) and shown text (stderr) are
 * already written: the detail of a lower layer (esim_strerror,
 * esim_errctx) is an argument that differs between the two. */
static int fail_texts(struct lpa *L, int exit_code, const char *msg, const char *shown)
{
	if (L->soft > 0) {
		warn_text(L, msg, shown);
		return exit_code;
	}
	fprintf(stderr, "esim: %s\n", shown);
	if (L->exit_code == CLI_OK) {
		L->exit_code = exit_code;
		json_decref(L->error);
		L->error = json_object();
		json_object_set_new(L->error, "category", json_string(category(exit_code)));
		json_object_set_new(L->error, "message", json_string(msg));
	}
	return exit_code;
}

static int fail_v(struct lpa *L, int exit_code, const char *fmt, va_list ap)
{
	char msg[1024], shown[1024];
	va_list ap2;
	va_copy(ap2, ap);
	vsnprintf(msg, sizeof msg, fmt, ap);
	vsnprintf(shown, sizeof shown, _(fmt), ap2);
	va_end(ap2);
	return fail_texts(L, exit_code, msg, shown);
}

int lpa_fail(struct lpa *L, int exit_code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = fail_v(L, exit_code, fmt, ap);
	va_end(ap);
	return rc;
}

void lpa_error_set(struct lpa *L, const char *key, json_t *value)
{
	if (L->error != NULL && L->soft == 0)
		json_object_set_new(L->error, key, value);
	else
		json_decref(value);
}

void lpa_warn(struct lpa *L, const char *fmt, ...)
{
	char msg[1024], shown[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	vsnprintf(shown, sizeof shown, _(fmt), ap);
	va_end(ap);
	warn_text(L, msg, shown);
}

int lpa_exit_for(esim_err err)
{
	if (err == ESIM_OK)
		return CLI_OK;
	if (err == ESIM_E_ARG || err == ESIM_E_RSP_BAD_ACTIVATION_CODE ||
	    err == ESIM_E_RSP_BAD_ICCID || err == ESIM_E_RSP_BAD_AID)
		return CLI_EXIT_USAGE;
	if (err >= 400 && err < 500)
		return CLI_EXIT_CARD;
	if (err == ESIM_E_RSP_EUICC_ERROR)
		return CLI_EXIT_CARD;
	switch (err) {
	case ESIM_E_NET_CONNECT:
	case ESIM_E_NET_TLS:
	case ESIM_E_NET_UNTRUSTED_SERVER:
	case ESIM_E_NET_HOSTNAME:
	case ESIM_E_NET_TIMEOUT:
	case ESIM_E_NET_IO:
	case ESIM_E_NET_CLIENT_CERT:
	case ESIM_E_NET_BAD_REQUEST:
		return CLI_EXIT_NETWORK;
	default:
		break;
	}
	if (err >= 800 && err < 900)
		return CLI_EXIT_SERVER;
	if ((err >= 100 && err < 200) || (err >= 600 && err < 700) || err == ESIM_E_BASE64 ||
	    err == ESIM_E_HEX || err == ESIM_E_TOO_LARGE)
		return CLI_EXIT_DATA;
	if (err >= 300 && err < 400)
		return CLI_EXIT_DATA;
	return CLI_EXIT_FAILURE;
}

/* What to do about a failure to reach a server; "" when there is nothing
 * to say beyond the message. */
static const char *net_hint(esim_err err)
{
	switch (err) {
	case ESIM_E_NET_CONNECT:
		return N_("; check the SM-DP+ address (host:port) and the network");
	case ESIM_E_NET_TLS:
		return N_("; is that address the SM-DP+'s HTTPS (TLS) port?");
	case ESIM_E_NET_UNTRUSTED_SERVER:
		return N_("; its certificate does not chain to the --ci given: pass the CI "
			  "certificate that issued it");
	case ESIM_E_NET_HOSTNAME:
		return N_("; its certificate does not name that host: use the address the "
			  "certificate names");
	case ESIM_E_NET_TIMEOUT:
		return N_("; the server did not answer in time (--timeout SECONDS waits longer)");
	default:
		return "";
	}
}

int lpa_fail_err(struct lpa *L, esim_err err, int exit_code, const char *context)
{
	if (exit_code == 0)
		exit_code = lpa_exit_for(err);
	char msg[1024], shown[1024];
	const char *hint = net_hint(err);
	snprintf(msg, sizeof msg, "%s: %s (%s)%s", context, esim_strerror(err), esim_errname(err),
		 hint);
	snprintf(shown, sizeof shown, "%s: %s (%s)%s", context, esim_strerror_local(err),
		 esim_errname(err), hint[0] ? _(hint) : "");
	int rc = fail_texts(L, exit_code, msg, shown);
	if (L->error != NULL && json_object_get(L->error, "esim_error") == NULL)
		lpa_error_set(L, "esim_error", json_string(esim_errname(err)));
	return rc;
}

int lpa_fail_card_result(struct lpa *L, uint32_t tag, int64_t code)
{
	const char *meaning = NULL;
	const char *name = rsp_es10_result_name(tag, code, &meaning);
	bool first = L->exit_code == CLI_OK;
	int rc = lpa_fail(L, CLI_EXIT_CARD, "%s failed: %s (%lld): %s", rsp_es10_function_name(tag),
			  name ? name : "unknown result code", (long long)code,
			  meaning ? meaning : "the card gave a result code SGP.22 does not define");
	if (first) {
		lpa_error_set(L, "function", json_string(rsp_es10_function_name(tag)));
		lpa_error_set(L, "result_code", json_integer(code));
		lpa_error_set(L, "result_name", lpa_jstr(name));
	}
	return rc;
}

/* --- card ------------------------------------------------------------------ */

int lpa_card(struct lpa *L)
{
	if (L->s != NULL)
		return CLI_OK;
	const char *t = L->o.transport ? L->o.transport : "pcsc";
	const char *dev = L->o.device;
	if (dev == NULL) {
		if (strcmp(t, "pcsc") != 0)
			return lpa_fail(L, CLI_EXIT_USAGE,
					"the %s transport needs --device (or $ESIM_DEVICE)", t);
		dev = "";
	}
	esim_errctx why = {{0}};
	struct apdu_session_opts so = {
	    .mss = L->o.mss,
	    .basic_channel = L->o.basic_channel,
	    .trace = L->o.trace ? stderr : NULL,
	    .why = &why,
	};
	esim_err err = apdu_session_open(t, dev, &so, &L->s);
	if (err != ESIM_OK) {
		/* the driver's detail names the address, reader or device, the
		 * reason and what to do; the transport hint says how to pick
		 * another card */
		const char *hint =
		    err == ESIM_E_ARG	       ? ""
		    : strcmp(t, "socket") == 0 ? N_(": is esim-euicc running? (start it "
						    "with --listen SPEC, or give "
						    "another --socket)")
		    : strcmp(t, "pcsc") == 0   ? N_(" (--reader NAME|INDEX picks another)")
					       : N_(" (--device PATH picks another)");
		int code = err == ESIM_E_ARG ? CLI_EXIT_USAGE : CLI_EXIT_CARD;
		L->s = NULL;
		if (esim_errctx_text(&why)[0] == '\0') {
			char ctx[600];
			snprintf(ctx, sizeof ctx,
				 "cannot reach the eUICC (%s transport, device '%s')", t, dev);
			return lpa_fail_err(L, err, code, ctx);
		}
		char msg[1024], shown[1024];
		snprintf(msg, sizeof msg, "cannot reach the eUICC (%s transport): %s%s (%s)", t,
			 esim_errctx_text(&why), hint, esim_errname(err));
		snprintf(shown, sizeof shown, _("cannot reach the eUICC (%s transport): %s%s (%s)"),
			 t, esim_errctx_local(&why), hint[0] ? _(hint) : "", esim_errname(err));
		int rc = fail_texts(L, code, msg, shown);
		lpa_error_set(L, "esim_error", json_string(esim_errname(err)));
		return rc;
	}
	return CLI_OK;
}

int lpa_es10(struct lpa *L, const uint8_t *req, size_t len, esim_buf *resp)
{
	int rc = lpa_card(L);
	if (rc != CLI_OK)
		return rc;
	uint32_t tag = 0;
	der_cursor c;
	der_cursor_init(&c, req, len);
	(void)der_peek_tag(&c, &tag);
	esim_err err = apdu_es10_transmit(L->s, req, len, resp);
	if (err == ESIM_E_APDU_SW) {
		rc = lpa_fail(L, CLI_EXIT_CARD, "%s: the card answered with status word %04X",
			      rsp_es10_function_name(tag), apdu_session_last_sw(L->s));
		lpa_error_set(L, "function", json_string(rsp_es10_function_name(tag)));
		char sw[8];
		snprintf(sw, sizeof sw, "%04X", apdu_session_last_sw(L->s));
		lpa_error_set(L, "sw", json_string(sw));
		return rc;
	}
	if (err != ESIM_OK) {
		char ctx[128];
		snprintf(ctx, sizeof ctx, "%s", rsp_es10_function_name(tag));
		return lpa_fail_err(L, err, CLI_EXIT_CARD, ctx);
	}
	return CLI_OK;
}

int lpa_es10_owned(struct lpa *L, esim_err build_err, uint8_t *req, size_t len, esim_buf *resp)
{
	if (build_err != ESIM_OK) {
		free(req);
		return lpa_fail_err(L, build_err, 0, "building the ES10 request");
	}
	int rc = lpa_es10(L, req, len, resp);
	free(req);
	return rc;
}

int lpa_es10_simple(struct lpa *L, uint32_t tag, esim_err build_err, uint8_t *req, size_t len,
		    int64_t *result)
{
	esim_buf resp = ESIM_BUF_INIT;
	int rc = lpa_es10_owned(L, build_err, req, len, &resp);
	int64_t code = -1;
	if (rc == CLI_OK) {
		esim_err err = rsp_es10_result_parse(resp.data, resp.len, tag, &code);
		if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, rsp_es10_function_name(tag));
		else if (code != 0 && result == NULL)
			rc = lpa_fail_card_result(L, tag, code);
	}
	if (result != NULL)
		*result = code;
	esim_buf_free(&resp);
	return rc;
}

int lpa_get_eid(struct lpa *L, char eid[RSP_EID_DIGITS + 1])
{
	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf resp = ESIM_BUF_INIT;
	esim_err err = rsp_get_eid_req(&req, &len);
	int rc = lpa_es10_owned(L, err, req, len, &resp);
	if (rc == CLI_OK) {
		err = rsp_get_eid_parse(resp.data, resp.len, eid);
		if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "GetEID");
	}
	esim_buf_free(&resp);
	return rc;
}

int lpa_get_profiles(struct lpa *L, const struct rsp_profile_ref *ref, struct rsp_profile_list *out)
{
	memset(out, 0, sizeof *out);
	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf resp = ESIM_BUF_INIT;
	esim_err err = rsp_get_profiles_req(ref, &req, &len);
	int rc = lpa_es10_owned(L, err, req, len, &resp);
	if (rc == CLI_OK) {
		int64_t code = 0;
		err = rsp_get_profiles_parse(resp.data, resp.len, out, &code);
		if (err == ESIM_E_RSP_EUICC_ERROR)
			rc = lpa_fail_card_result(L, RSP_ES10_GET_PROFILES_INFO, code);
		else if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "GetProfilesInfo");
	}
	esim_buf_free(&resp);
	return rc;
}

int lpa_list_notifications(struct lpa *L, uint32_t pmo, struct rsp_notif_list *out)
{
	memset(out, 0, sizeof *out);
	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf resp = ESIM_BUF_INIT;
	esim_err err = rsp_list_notification_req(pmo, &req, &len);
	int rc = lpa_es10_owned(L, err, req, len, &resp);
	if (rc == CLI_OK) {
		int64_t code = 0;
		err = rsp_list_notification_parse(resp.data, resp.len, out, &code);
		if (err == ESIM_E_RSP_EUICC_ERROR)
			rc = lpa_fail_card_result(L, RSP_ES10_LIST_NOTIFICATION, code);
		else if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "ListNotification");
	}
	esim_buf_free(&resp);
	return rc;
}

/* --- terminal ------------------------------------------------------------------ */

bool lpa_prompt(struct lpa *L, const char *question, bool secret, char *buf, size_t cap)
{
	(void)L;
	fprintf(stderr, "%s", question);
	fflush(stderr);
	struct termios old, t;
	bool restore = false;
	if (secret && tcgetattr(STDIN_FILENO, &old) == 0) {
		t = old;
		t.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	bool ok = fgets(buf, (int)cap, stdin) != NULL;
	if (restore) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (ok)
		buf[strcspn(buf, "\r\n")] = '\0';
	return ok;
}

bool lpa_confirm(struct lpa *L, const char *question)
{
	char buf[16];
	if (!lpa_prompt(L, question, false, buf, sizeof buf))
		return false;
	/* y / yes always; also the answer the question's language asks for */
	/* TRANSLATORS: the short yes answer of the [y/N] questions */
	const char *y = _("y");
	/* TRANSLATORS: the long yes answer of the [y/N] questions */
	const char *yes = _("yes");
	return strcmp(buf, "y") == 0 || strcmp(buf, "Y") == 0 || strcmp(buf, "yes") == 0 ||
	       strcasecmp(buf, y) == 0 || strcasecmp(buf, yes) == 0;
}

void lpa_progress(struct lpa *L, const char *fmt, ...)
{
	if (!L->tty)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("\r\033[K", stdout);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fflush(stdout);
}

void lpa_progress_end(struct lpa *L)
{
	if (!L->tty)
		return;
	fputs("\r\033[K", stdout);
	fflush(stdout);
}

json_t *lpa_jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *lpa_jhex(const uint8_t *p, size_t n)
{
	char *h = esim_hex_encode(p, n, true);
	json_t *j = h ? json_string(h) : json_null();
	free(h);
	return j;
}

void lpa_version_text(const uint8_t v[3], char out[16])
{
	snprintf(out, 16, "%u.%u.%u", v[0], v[1], v[2]);
}

void lpa_now_iso(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- HTTP ----------------------------------------------------------------------- */

static esim_err append_ci(esim_buf *pem, const char *path, esim_errctx *why)
{
	uint8_t *data = NULL;
	size_t len = 0;
	errno = 0;
	esim_err err = esim_read_file(path, 1024 * 1024, &data, &len);
	if (err == ESIM_E_IO && errno != 0)
		esim_errctx_set(why, "cannot read %s (%s)", path, strerror(errno));
	else if (err == ESIM_E_TOO_LARGE)
		esim_errctx_set(why, "%s is larger than 1 MiB: not a certificate", path);
	if (err != ESIM_OK)
		return err;
	if (len > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		err = esim_buf_append(pem, data, len);
		if (err == ESIM_OK)
			err = esim_buf_append_byte(pem, '\n');
	} else {
		err = crypto_pki_cert_pem(data, len, pem);
	}
	if (err != ESIM_OK)
		esim_errctx_set(why, "%s is not a PEM or DER certificate", path);
	free(data);
	return err;
}

int lpa_http(struct lpa *L)
{
	if (L->http != NULL)
		return CLI_OK;
	const char *env = getenv("ESIM_CI");
	char *env_copy = NULL;
	if (L->o.n_ci == 0 && env != NULL && *env != '\0') {
		env_copy = strdup(env);
		for (char *save = NULL, *t = strtok_r(env_copy, ":", &save);
		     t != NULL && L->o.n_ci < LPA_MAX_CI; t = strtok_r(NULL, ":", &save))
			L->o.ci[L->o.n_ci++] = t;
	}
	int rc = CLI_OK;
	if (L->o.n_ci == 0)
		rc = lpa_fail(L, CLI_EXIT_USAGE,
			      "no CI certificate to check the server's TLS certificate against: "
			      "pass --ci FILE (or set $ESIM_CI)");
	esim_buf pem = ESIM_BUF_INIT;
	for (size_t i = 0; rc == CLI_OK && i < L->o.n_ci; i++) {
		esim_errctx why = {{0}};
		esim_err err = append_ci(&pem, L->o.ci[i], &why);
		if (err != ESIM_OK) {
			if (esim_errctx_text(&why)[0] != '\0') {
				char msg[1024], shown[1024];
				snprintf(msg, sizeof msg,
					 "the CI certificate (--ci or $ESIM_CI): %s (%s)",
					 esim_errctx_text(&why), esim_errname(err));
				snprintf(shown, sizeof shown,
					 _("the CI certificate (--ci or $ESIM_CI): %s (%s)"),
					 esim_errctx_local(&why), esim_errname(err));
				rc = fail_texts(L, CLI_EXIT_USAGE, msg, shown);
				lpa_error_set(L, "esim_error", json_string(esim_errname(err)));
			} else {
				char ctx[600];
				snprintf(ctx, sizeof ctx, "reading the CI certificate %s",
					 L->o.ci[i]);
				rc = lpa_fail_err(L, err, CLI_EXIT_USAGE, ctx);
			}
		}
	}
	if (rc == CLI_OK && esim_buf_append_byte(&pem, 0) != ESIM_OK)
		rc = lpa_fail(L, CLI_EXIT_FAILURE, "out of memory");
	if (rc == CLI_OK) {
		L->ci_pem = (char *)pem.data;
		pem.data = NULL;
		struct net_client_config cfg = {
		    .ca_pem = L->ci_pem,
		    .connect_timeout_ms = L->o.timeout_s < 10 ? L->o.timeout_s * 1000 : 10000,
		    .timeout_ms = L->o.timeout_s * 1000,
		    .max_response = LPA_MAX_BPP * 2,
		};
		/* esim is one process per command: OpenSSL's atexit clean-up
		 * (freeing every provider, method store and error string one by
		 * one, 1.4 M instructions, ~5% of a download's CPU) is left to
		 * the kernel. Objects that hold secrets are freed (and cleansed)
		 * by their owners before exit, as before. And libssl's default
		 * initialisation registers every legacy cipher under its names
		 * for EVP_get_cipherbyname (2.3 M instructions, ~9%), which
		 * nothing in esim calls: TLS fetches its ciphers from the
		 * provider, and esim reads no encrypted PEM. The digests stay
		 * registered: certificate verification looks them up by name.
		 * A no-op when something initialised OpenSSL earlier. */
		OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_NO_ADD_ALL_CIPHERS, NULL);
		esim_err err = net_client_new(&cfg, &L->http);
		if (err != ESIM_OK) {
			L->http = NULL;
			rc = lpa_fail_err(L, err, CLI_EXIT_USAGE, "setting up HTTPS with the CI");
		} else if (L->o.request_id[0] != '\0') {
			(void)net_client_set_request_id(L->http, L->o.request_id);
		}
	}
	esim_buf_free(&pem);
	free(env_copy);
	if (env_copy != NULL)
		L->o.n_ci = 0; /* the pointers went with env_copy */
	return rc;
}
