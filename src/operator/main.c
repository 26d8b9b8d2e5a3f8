/*
 * esim-operator: the operator's subscription service and its admin
 * commands. `serve` runs the portal API and, on a listener of its own with
 * mutual TLS pinned to the SM-DP+'s certificate, the ES2+ callback that the
 * SM-DP+ (SGP.22 5.3.5 HandleDownloadProgressInfo) calls; `order-esim`
 * places an ES2+ DownloadOrder + ConfirmOrder and shows the activation
 * code (SGP.22 4.1) as text and as a QR code in the terminal.
 *
 * Configuration: a file of "key = value" lines (--config FILE); every key
 * may also be given as --key value, which wins. See docs/operator.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <qrencode.h>
#include <systemd/sd-daemon.h>

#include "esim/operator.h"
#include "esim/rsp_saip.h"
#include "esim/util.h"

#define MAX_KV 48

struct kv {
	char *k[MAX_KV], *v[MAX_KV];
	size_t n;
	/* where each came from (the config file's line; 0: the command line)
	 * and whether the program read it, so that a setting nothing reads (a
	 * typo) is said rather than ignored */
	const char *path;
	int line[MAX_KV];
	bool read[MAX_KV];
};

static void kv_set(struct kv *kv, const char *k, const char *v)
{
	for (size_t i = 0; i < kv->n; i++)
		if (!strcmp(kv->k[i], k)) {
			free(kv->v[i]);
			kv->v[i] = strdup(v);
			return;
		}
	if (kv->n < MAX_KV) {
		kv->k[kv->n] = strdup(k);
		kv->v[kv->n++] = strdup(v);
	}
}

static const char *kv_get(const struct kv *kv, const char *k)
{
	for (size_t i = 0; i < kv->n; i++)
		if (!strcmp(kv->k[i], k)) {
			/* the kv is main's local: const only promises the
			 * readers do not change the settings */
			((struct kv *)kv)->read[i] = true;
			return kv->v[i];
		}
	return NULL;
}

static void kv_free(struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->k[i]);
		free(kv->v[i]);
	}
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int load_config(struct kv *kv, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "esim-operator: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[1024];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *l = trim(line);
		if (!*l || *l == '#')
			continue;
		char *eq = strchr(l, '=');
		if (!eq) {
			/* a line the reader cannot use is said, never skipped */
			fprintf(stderr, "esim-operator: %s:%d: expected 'key = value', not '%s'\n",
				path, lineno, l);
			rc = -1;
			break;
		}
		*eq = '\0';
		kv_set(kv, trim(l), trim(eq + 1));
		for (size_t i = 0; i < kv->n; i++)
			if (!strcmp(kv->k[i], trim(l)))
				kv->line[i] = lineno;
	}
	kv->path = path;
	fclose(f);
	return rc;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: esim-operator <command> [--config FILE] [--key value]...\n"
	    "       esim-operator --help | --version   this help | the version\n"
	    "  serve                      the portal and its JSON API; with es2-listen the\n"
	    "                             SM-DP+'s ES2+ callbacks on their own listener\n"
	    "  init-demo                  seed the demo customers and staff\n"
	    "  add-customer LOGIN NAME ADDRESS [MSISDN PLAN]   password: prompt or stdin\n"
	    "  add-staff LOGIN reviewer|admin                  password: prompt or stdin\n"
	    "  order-esim LOGIN           ES2+ order; prints the activation code and QR\n"
	    "  set KEY VALUE              final_invoice_policy 0|1, deletion_reminder_seconds N\n"
	    "  tick                       send due deletion reminders\n"
	    "  mail                       send the e-mail notices due (smtp-host)\n"
	    "  set-contract LINE DAYS prorated|full_month   notice period, final invoice\n"
	    "  add-equipment LINE ITEM RETURN-BY RETURN-REF leased equipment to return\n"
	    "  audit-verify               check the audit log's hash chain and signed head\n"
	    "  verify-record FILE [--ci CI.pem] [--operator-cert CERT.pem]\n"
	    "  demo-template FILE         write a minimal SAIP profile template (demo, tests)\n"
	    "keys: db, listen, tls-cert, tls-key (serve needs db, listen and both TLS files;\n"
	    "      insecure-http = yes serves plain HTTP without them: loopback demos),\n"
	    "      port-file, web-dir, maildir, key, cert, ci, data-key,\n"
	    "      log-format (json: one JSON object per line for each ES2+ callback, with\n"
	    "      its X-Request-Id, the default; text),\n"
	    "      operator-cert (verify-record: the operator certificate to check with),\n"
	    "      smdp-url, smdp-ca, name, profile-type, tick-seconds,\n"
	    "      es2-listen, es2-tls-cert, es2-tls-key, smdp-client-cert, smdp-id\n"
	    "      (the SM-DP+'s ES2+ callbacks: own listener, mutual TLS, pinned cert),\n"
	    "      charging-listen, charging-tls-cert, charging-tls-key, charging-client-cert\n"
	    "      (the charging system's usage and authorisation: own listener, mutual TLS),\n"
	    "      smtp-host, smtp-port (587), smtp-user, smtp-password-file, smtp-from,\n"
	    "      smtp-ca (e-mail notices over SMTP with STARTTLS instead of the maildir),\n"
	    "      max-connections (per listener; default 1024), max-connections-per-address\n"
	    "      (per IPv4 address or IPv6 /64; default 64), request-deadline (seconds for\n"
	    "      the TLS handshake and a whole request, 8 MiB bodies included; default 60)\n");
}

static void print_qr(const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!q) {
		fprintf(stderr, "esim-operator: QR encoding failed\n");
		return;
	}
	int w = q->width, m = 2;
	/* two modules per character cell, dark on light (works on dark terminals) */
	for (int y = -m; y < w + m; y += 2) {
		for (int x = -m; x < w + m; x++) {
			int top = y >= 0 && y < w && x >= 0 && x < w && (q->data[y * w + x] & 1);
			int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
				  (q->data[(y + 1) * w + x] & 1);
			fputs(top && bot ? " "
			      : top	 ? "\xe2\x96\x84"
			      : bot	 ? "\xe2\x96\x80"
					 : "\xe2\x96\x88",
			      stdout);
		}
		fputc('\n', stdout);
	}
	QRcode_free(q);
}

/* A new account's password: asked twice without echo on a terminal, else
 * the first line of stdin. Never an argument: argv shows in ps and in the
 * shell's history. 0 and pw filled, or -1 after saying why. */
static int read_password(const char *login, char *pw, size_t n)
{
	bool tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	char again[256] = "";
	int rc = -1;
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &old) != 0)
			tty = false;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
	}
	for (int round = 0; round < (tty ? 2 : 1); round++) {
		char *into = round ? again : pw;
		size_t cap = round ? sizeof again : n;
		if (tty) {
			fprintf(stderr, round ? "Password again: " : "Password for %s: ", login);
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		}
		char *got = fgets(into, (int)cap, stdin);
		if (tty)
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		if (!got)
			into[0] = '\0';
		into[strcspn(into, "\r\n")] = '\0';
	}
	if (!pw[0])
		fprintf(stderr, "esim-operator: no password given (type it at the prompt or pipe it"
				" on stdin)\n");
	else if (strlen(pw) < 8)
		fprintf(stderr, "esim-operator: the password needs at least 8 characters\n");
	else if (tty && strcmp(pw, again) != 0)
		fprintf(stderr, "esim-operator: the two passwords differ\n");
	else
		rc = 0;
	esim_wipe(again, sizeof again);
	if (rc != 0)
		esim_wipe(pw, n);
	return rc;
}

static int password_in_argv(const char *cmd)
{
	fprintf(stderr,
		"esim-operator: %s: a password on the command line is refused (ps and the shell's"
		" history show it); give it on stdin or at the prompt, e.g.\n"
		"  printf '%%s\\n' \"$PASSWORD\" | esim-operator %s %s\n",
		cmd, cmd,
		!strcmp(cmd, "add-staff") ? "LOGIN reviewer|admin"
					  : "LOGIN NAME ADDRESS [MSISDN PLAN]");
	return 2;
}

/* The portal's files where `make install` puts them, found from the
 * program's own path (BINDIR/../DATADIR/esim-operator/web, so a DESTDIR or
 * relocated tree works too); NULL when absent: op_open's default, the
 * source tree's folder for the build tree. */
static const char *installed_web_dir(char *buf, size_t n)
{
#ifdef ESIM_OPERATOR_REL_WEB_DIR
	char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len <= 0)
		return NULL;
	exe[len] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	int w = snprintf(buf, n, "%s/%s", exe, ESIM_OPERATOR_REL_WEB_DIR);
	struct stat st;
	if (w > 0 && (size_t)w < n && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return buf;
#else
	(void)buf;
	(void)n;
#endif
	return NULL;
}

/* Every setting that names a file to read (a key, certificate or CA
 * bundle, the SMTP password file) names a readable one; else say which
 * setting, the path and the system's reason. data-key is created when
 * absent, db and the maildir too: not checked here. */
static int check_files(const struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		const char *k = kv->k[i];
		size_t n = strlen(k);
		bool file =
		    strcmp(k, "key") == 0 || strcmp(k, "cert") == 0 || strcmp(k, "ci") == 0 ||
		    (n > 5 && strcmp(k + n - 5, "-cert") == 0) ||
		    (n > 4 && strcmp(k + n - 4, "-key") == 0 && strcmp(k, "data-key") != 0) ||
		    (n > 3 && strcmp(k + n - 3, "-ca") == 0) ||
		    strcmp(k, "smtp-password-file") == 0;
		if (!file)
			continue;
		FILE *f = fopen(kv->v[i], "rb");
		if (f != NULL) {
			fclose(f);
			continue;
		}
		fprintf(stderr, "esim-operator: setting %s: cannot read %s (%s)\n", k, kv->v[i],
			strerror(errno));
		return -1;
	}
	return 0;
}

static int fail(const char *what, esim_err err)
{
	fprintf(stderr, "esim-operator: %s: %s (%s)\n", what, esim_strerror(err),
		esim_errname(err));
	return 1;
}

/* A whole number in 1..max under key k (dflt when absent); -1 (said) when
 * it is something else. */
static int kv_limit(const struct kv *kv, const char *k, unsigned max, unsigned dflt, unsigned *out)
{
	const char *v = kv_get(kv, k);
	*out = dflt;
	if (v == NULL)
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n == 0 || n > max) {
		fprintf(stderr,
			"esim-operator: %s: expected a whole number from 1 to %u, not '%s'\n", k,
			max, v);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* serve's settings that have no safe default: the address, and TLS unless
 * plain HTTP is asked for by name (insecure-http = yes: the demo and tests
 * on loopback). 0, or -1 after naming every missing one. */
static int serve_settings_ok(const struct kv *kv)
{
	const char *insecure = kv_get(kv, "insecure-http");
	if (insecure && strcmp(insecure, "yes") != 0 && strcmp(insecure, "no") != 0) {
		fprintf(stderr, "esim-operator: insecure-http: expected yes or no, not '%s'\n",
			insecure);
		return -1;
	}
	bool plain = insecure && !strcmp(insecure, "yes");
	char missing[160] = "";
	static const char *const need[] = {"listen", "tls-cert", "tls-key"};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
		if (!kv_get(kv, need[i]) && (i == 0 || !plain))
			snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
				 "%s%s", missing[0] ? ", " : "", need[i]);
	if (!missing[0])
		return 0;
	fprintf(stderr,
		"esim-operator: serve: missing setting(s): %s (in --config FILE or as --KEY "
		"VALUE; plain HTTP without tls-cert/tls-key only with insecure-http = yes)\n",
		missing);
	return -1;
}

/* The charging system's listener: charging-listen ADDR:PORT, its TLS
 * identity and the charging system's client certificate, pinned. */
static esim_err add_charging(op *o, const struct kv *kv, net_server *srv, unsigned max_conns,
			     unsigned max_per_addr, op_charging **chg, int *id)
{
	char a[128];
	snprintf(a, sizeof a, "%s", kv_get(kv, "charging-listen"));
	char *cc = strrchr(a, ':');
	if (!cc || !kv_get(kv, "charging-tls-cert") || !kv_get(kv, "charging-tls-key") ||
	    !kv_get(kv, "charging-client-cert")) {
		fprintf(stderr,
			"esim-operator: charging-listen (ADDR:PORT) needs charging-tls-cert,"
			" charging-tls-key and charging-client-cert\n");
		return ESIM_E_OP_CONFIG;
	}
	*cc = '\0';
	struct op_charging_config cfg = {.client_cert_file = kv_get(kv, "charging-client-cert")};
	esim_err err = op_charging_new(o, &cfg, chg);
	if (err != ESIM_OK)
		return err;
	uint8_t pin[1][32];
	memcpy(pin[0], op_charging_pin(*chg), 32);
	struct net_listener_config cl = {.max_connections = max_conns,
					 .max_connections_per_address = max_per_addr,
					 .address = a,
					 .port = (uint16_t)atoi(cc + 1),
					 .tls = true,
					 .cert_chain_file = kv_get(kv, "charging-tls-cert"),
					 .key_file = kv_get(kv, "charging-tls-key"),
					 .client_auth = NET_CLIENT_AUTH_REQUIRE,
					 .client_pins = (const uint8_t(*)[32])pin,
					 .n_client_pins = 1};
	err = net_server_add_listener(srv, &cl, id);
	if (err == ESIM_OK)
		err = op_charging_add_routes(*chg, srv, *id);
	if (err == ESIM_OK)
		printf("esim-operator: charging on https://%s:%s (mutual TLS, %s)\n", a, cc + 1,
		       op_charging_actor(*chg));
	return err;
}

/* With smtp-host: every 5 seconds. */
static bool mail_due(const struct kv *kv, time_t *last)
{
	if (!kv_get(kv, "smtp-host") || time(NULL) - *last < 5)
		return false;
	*last = time(NULL);
	return true;
}

static int serve_run(op *o, const struct kv *kv)
{
	const char *listen = kv_get(kv, "listen"); /* serve_settings_ok: set */
	char addr[128];
	snprintf(addr, sizeof addr, "%s", listen);
	char *colon = strrchr(addr, ':');
	if (!colon)
		return fail("listen must be ADDR:PORT", ESIM_E_ARG);
	*colon = '\0';
	/* 0 for the caps: net's defaults */
	/* the ES2+ callbacks' log lines (with their X-Request-Id) */
	esim_log log;
	esim_log_init(&log, "esim-operator", ESIM_LOG_JSON);
	op_set_log(o, &log);
	const char *lf = kv_get(kv, "log-format");
	if (lf && esim_log_format_parse(lf, &log.format) != ESIM_OK) {
		fprintf(stderr, "esim-operator: log-format: expected json or text, not '%s'\n", lf);
		return 2;
	}
	unsigned max_conns, max_per_addr, deadline_s;
	if (kv_limit(kv, "max-connections", 1000000, 0, &max_conns) != 0 ||
	    kv_limit(kv, "max-connections-per-address", 1000000, 0, &max_per_addr) != 0 ||
	    kv_limit(kv, "request-deadline", 3600, 60, &deadline_s) != 0)
		return 1;
	/* net's rate-limited connection warnings as log lines too */
	struct net_server_config sc = {.threads = 2,
				       .max_body = 8u << 20,
				       .request_deadline_ms = deadline_s * 1000,
				       .log = esim_log_net,
				       .log_arg = &log};
	net_server *srv = NULL;
	esim_err err = net_server_new(&sc, &srv);
	struct net_listener_config lc = {.max_connections = max_conns,
					 .max_connections_per_address = max_per_addr,
					 .address = addr,
					 .port = (uint16_t)atoi(colon + 1),
					 .tls = kv_get(kv, "tls-cert") != NULL,
					 .cert_chain_file = kv_get(kv, "tls-cert"),
					 .key_file = kv_get(kv, "tls-key")};
	int id = -1;
	/* the portal's security headers on the server's own answers too */
	if (err == ESIM_OK)
		err = op_add_portal(o, srv, &lc, &id);
	/* the SM-DP+'s ES2+ callbacks: their own listener, mutual TLS pinned to
	 * the SM-DP+'s client certificate (never the customers' port) */
	op_callback *cb = NULL;
	int cid = -1;
	char caddr[128];
	const char *es2_listen = kv_get(kv, "es2-listen");
	if (err == ESIM_OK && es2_listen) {
		snprintf(caddr, sizeof caddr, "%s", es2_listen);
		char *cc = strrchr(caddr, ':');
		if (!cc || !kv_get(kv, "es2-tls-cert") || !kv_get(kv, "es2-tls-key") ||
		    !kv_get(kv, "smdp-client-cert") || !kv_get(kv, "smdp-id")) {
			net_server_free(srv);
			fprintf(stderr, "esim-operator: es2-listen (ADDR:PORT) needs es2-tls-cert, "
					"es2-tls-key, smdp-client-cert and smdp-id\n");
			return 1;
		}
		*cc = '\0';
		struct op_callback_config cc_cfg = {.smdp_id = kv_get(kv, "smdp-id"),
						    .smdp_client_cert_file =
							kv_get(kv, "smdp-client-cert"),
						    .log = &log};
		err = op_callback_new(o, &cc_cfg, &cb);
		uint8_t pin[1][32];
		if (err == ESIM_OK)
			memcpy(pin[0], op_callback_pin(cb), 32);
		struct net_listener_config cl = {.max_connections = max_conns,
						 .max_connections_per_address = max_per_addr,
						 .address = caddr,
						 .port = (uint16_t)atoi(cc + 1),
						 .tls = true,
						 .cert_chain_file = kv_get(kv, "es2-tls-cert"),
						 .key_file = kv_get(kv, "es2-tls-key"),
						 .client_auth = NET_CLIENT_AUTH_REQUIRE,
						 .client_pins = (const uint8_t(*)[32])pin,
						 .n_client_pins = 1};
		if (err == ESIM_OK)
			err = net_server_add_listener(srv, &cl, &cid);
		if (err == ESIM_OK)
			err = op_callback_add_routes(cb, srv, cid);
	}
	/* the charging system: its own listener too, mutual TLS pinned */
	op_charging *chg = NULL;
	int chid = -1;
	if (err == ESIM_OK && kv_get(kv, "charging-listen"))
		err = add_charging(o, kv, srv, max_conns, max_per_addr, &chg, &chid);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (err == ESIM_OK)
		err = net_server_start(srv);
	if (err != ESIM_OK) {
		/* net names the address or TLS file that failed, and why */
		const char *why = net_server_errmsg(srv); /* owned by srv */
		bool named = why[0] != '\0';
		if (named)
			fprintf(stderr, "esim-operator: serve: %s (%s)\n", why, esim_errname(err));
		net_server_free(srv);
		op_callback_free(cb);
		op_charging_free(chg);
		return named ? 1 : fail("serve", err);
	}
	uint16_t port = net_server_port(srv, id);
	printf("esim-operator listening on %s://%s:%u\n", lc.tls ? "https" : "http", addr, port);
	if (cb)
		printf("esim-operator: ES2+ callbacks on https://%s:%u (mutual TLS, %s)\n", caddr,
		       net_server_port(srv, cid), op_callback_actor(cb));
	fflush(stdout);
	const char *pf = kv_get(kv, "port-file");
	if (pf) {
		char tmp[1024];
		snprintf(tmp, sizeof tmp, "%s.tmp", pf);
		FILE *f = fopen(tmp, "w");
		if (f) {
			fprintf(f, "%u\n", port);
			fclose(f);
			rename(tmp, pf);
		}
	}
	sd_notify(0, "READY=1");
	long tick = kv_get(kv, "tick-seconds") ? atol(kv_get(kv, "tick-seconds")) : 60;
	/* every setting serve uses is read by now: the others are typos or
	 * another program's, said with where they came from */
	for (size_t i = 0; i < kv->n; i++) {
		if (kv->read[i])
			continue;
		char msg[700];
		if (kv->line[i] > 0 && kv->path)
			snprintf(msg, sizeof msg,
				 "%s:%d: '%s' is not a setting of esim-operator "
				 "serve; ignored (see esim-operator --help)",
				 kv->path, kv->line[i], kv->k[i]);
		else
			snprintf(msg, sizeof msg,
				 "the command line: '%s' is not a setting of "
				 "esim-operator serve; ignored (see esim-operator --help)",
				 kv->k[i]);
		esim_log_emit(&log, ESIM_LOG_WARN, NULL, msg, NULL, 0);
	}
	time_t last = time(NULL), last_mail = 0;
	for (;;) {
		struct timespec ts = {1, 0};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (sig == SIGHUP) { /* a certificate renewal: TLS files read again */
			sd_notify(0, "RELOADING=1");
			int bad = -1;
			esim_err rerr = net_server_reload_tls(srv, &bad);
			if (rerr == ESIM_OK) {
				esim_log_emit(&log, ESIM_LOG_INFO, NULL,
					      "SIGHUP: TLS certificates reloaded", NULL, 0);
			} else {
				const struct esim_log_kv f[] = {
				    ESIM_LOG_I("listener", bad),
				    ESIM_LOG_S("error", esim_strerror(rerr))};
				esim_log_emit(&log, ESIM_LOG_ERROR, NULL,
					      "SIGHUP: TLS reload refused; the certificates in use "
					      "are kept",
					      f, 2);
			}
			sd_notify(0, "READY=1");
		}
		/* the mail outbox: due e-mail notices, every few seconds */
		if (mail_due(kv, &last_mail)) {
			size_t sent = 0, failed = 0;
			op_mail_deliver(o, &sent, &failed);
			if (sent || failed) {
				const struct esim_log_kv f[] = {ESIM_LOG_I("sent", sent),
								ESIM_LOG_I("retry", failed)};
				esim_log_emit(&log, ESIM_LOG_INFO, NULL, "mail", f, 2);
			}
		}
		if (tick > 0 && time(NULL) - last >= tick) {
			size_t n = 0;
			op_tick(o, &n);
			if (n) {
				const struct esim_log_kv f[] = {ESIM_LOG_I("count", n)};
				esim_log_emit(&log, ESIM_LOG_INFO, NULL, "deletion reminders sent",
					      f, 1);
			}
			last = time(NULL);
		}
	}
	/* stop accepting, finish the requests in flight, then exit */
	sd_notify(0, "STOPPING=1");
	net_server_stop(srv);
	net_server_free(srv);
	op_callback_free(cb);
	op_charging_free(chg);
	return 0;
}

/* serve_run's log is its own (on its stack): op's runtime lines go there
 * while it runs, and back to stderr when it returns. */
static int serve(op *o, const struct kv *kv)
{
	int rc = serve_run(o, kv);
	op_set_log(o, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		esim_print_version("esim-operator");
		return 0;
	}
	if (argc < 2) {
		usage();
		return 2;
	}
	const char *cmd = argv[1];
	struct kv kv = {0};
	const char *pos[8];
	size_t npos = 0;
	const char *config = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strncmp(argv[i], "--", 2) && i + 1 < argc) {
			if (!strcmp(argv[i], "--config"))
				config = argv[i + 1];
			i++;
		} else if (!strncmp(argv[i], "--", 2)) {
			usage();
			return 2;
		} else if (npos < 8) {
			pos[npos++] = argv[i];
		}
	}
	if (config && load_config(&kv, config) != 0)
		return 1;
	for (int i = 2; i + 1 < argc; i++)
		if (!strncmp(argv[i], "--", 2)) {
			if (strcmp(argv[i], "--config") != 0) {
				kv_set(&kv, argv[i] + 2, argv[i + 1]);
				for (size_t j = 0; j < kv.n; j++)
					if (!strcmp(kv.k[j], argv[i] + 2))
						kv.line[j] = 0; /* the flag wins */
			}
			i++;
		}
	int rc = 0;
	if (!strcmp(cmd, "verify-record")) {
		if (npos != 1) {
			usage();
			kv_free(&kv);
			return 2;
		}
		uint8_t *p = NULL;
		size_t n = 0;
		esim_err err = esim_read_file(pos[0], 8u << 20, &p, &n);
		char why[160] = "";
		if (err == ESIM_OK)
			err = op_record_verify(p, n, kv_get(&kv, "ci"),
					       kv_get(&kv, "operator-cert"), why, sizeof why);
		free(p);
		if (err == ESIM_OK)
			printf("record OK: operator signature and deletion proof verified\n");
		else
			fprintf(stderr, "record REFUSED: %s (%s)\n",
				why[0] ? why : esim_strerror(err), esim_errname(err));
		kv_free(&kv);
		return err == ESIM_OK ? 0 : 1;
	}
	if (!strcmp(cmd, "demo-template") && npos == 1) {
		/* the SM-DP+ needs a profile template; the demo has no operator's */
		uint8_t *upp = NULL;
		size_t n = 0;
		esim_err err = rsp_saip_make_test_upp("8932000000000000009", &upp, &n);
		FILE *f = err == ESIM_OK ? fopen(pos[0], "wb") : NULL;
		if (f) {
			if (fwrite(upp, 1, n, f) != n)
				err = ESIM_E_IO;
			if (fclose(f) != 0)
				err = ESIM_E_IO;
		} else if (err == ESIM_OK) {
			err = ESIM_E_IO;
		}
		free(upp);
		kv_free(&kv);
		return err == ESIM_OK ? 0 : fail("demo-template", err);
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help")) {
		usage();
		kv_free(&kv);
		return 0;
	}
	/* add-customer LOGIN PASSWORD NAME ADDRESS [MSISDN PLAN] and add-staff
	 * LOGIN PASSWORD ROLE were the old forms: refused, as is --password */
	bool add_c = !strcmp(cmd, "add-customer"), add_s = !strcmp(cmd, "add-staff");
	if ((add_c || add_s) && (kv_get(&kv, "password") || (add_c && (npos == 4 || npos == 6)) ||
				 (add_s && npos == 3))) {
		kv_free(&kv);
		return password_in_argv(cmd);
	}
	if ((add_c && npos != 3 && npos != 5) || (add_s && npos != 2)) {
		usage();
		kv_free(&kv);
		return 2;
	}
	/* never a database invented in the current directory */
	if (!kv_get(&kv, "db")) {
		fprintf(stderr,
			"esim-operator: %s: missing setting: db (the SQLite file, in "
			"--config FILE or as --db PATH)\n",
			cmd);
		kv_free(&kv);
		return 2;
	}
	if (!strcmp(cmd, "serve") && serve_settings_ok(&kv) != 0) {
		kv_free(&kv);
		return 2;
	}
	char pw[256] = "";
	if ((add_c || add_s) && read_password(pos[0], pw, sizeof pw) != 0) {
		kv_free(&kv);
		return 1;
	}
	char web[4096];
	struct op_config cfg = {
	    .db = kv_get(&kv, "db"),
	    .web_dir = kv_get(&kv, "web-dir") ? kv_get(&kv, "web-dir")
					      : installed_web_dir(web, sizeof web),
	    .maildir = kv_get(&kv, "maildir"),
	    .key_file = kv_get(&kv, "key"),
	    .cert_file = kv_get(&kv, "cert"),
	    .ci_file = kv_get(&kv, "ci"),
	    .data_key_file = kv_get(&kv, "data-key"),
	    .smdp_url = kv_get(&kv, "smdp-url"),
	    .smdp_ca = kv_get(&kv, "smdp-ca"),
	    .name = kv_get(&kv, "name"),
	    .profile_type = kv_get(&kv, "profile-type"),
	    .smtp_host = kv_get(&kv, "smtp-host"),
	    .smtp_port = (uint16_t)(kv_get(&kv, "smtp-port") ? atoi(kv_get(&kv, "smtp-port")) : 0),
	    .smtp_user = kv_get(&kv, "smtp-user"),
	    .smtp_password_file = kv_get(&kv, "smtp-password-file"),
	    .smtp_from = kv_get(&kv, "smtp-from"),
	    .smtp_ca = kv_get(&kv, "smtp-ca"),
	};
	op *o = NULL;
	bool files_ok = check_files(&kv) == 0; /* says which one otherwise */
	esim_err err = files_ok ? op_open(&cfg, &o) : ESIM_E_IO;
	if (err != ESIM_OK) {
		esim_wipe(pw, sizeof pw);
		kv_free(&kv);
		return files_ok ? fail("open", err) : 1;
	}
	if (!strcmp(cmd, "serve")) {
		rc = serve(o, &kv);
	} else if (!strcmp(cmd, "init-demo")) {
		err = op_seed_demo(o);
		rc = err == ESIM_OK ? 0 : fail("init-demo", err);
		if (!rc)
			printf(
			    "demo data seeded: jan.peeters@example.be, sofie.janssens@example.be,"
			    " staff reviewer and admin\n");
	} else if (add_c) {
		int64_t id = 0;
		err = op_add_customer(o, pos[0], pw, pos[1], pos[2], &id);
		if (err == ESIM_OK && npos == 5)
			err = op_add_line(o, id, pos[3], NULL, pos[4], false, NULL);
		rc = err == ESIM_OK ? 0 : fail("add-customer", err);
		if (!rc)
			printf("customer %lld\n", (long long)id);
	} else if (add_s) {
		err = op_add_staff(o, pos[0], pw, pos[1]);
		rc = err == ESIM_OK ? 0 : fail("add-staff", err);
	} else if (!strcmp(cmd, "set") && npos == 2) {
		err = op_set_setting(o, pos[0], atoll(pos[1]));
		rc = err == ESIM_OK ? 0 : fail("set", err);
	} else if (!strcmp(cmd, "order-esim") && npos == 1) {
		char ac[512];
		err = op_order_esim(o, pos[0], ac, sizeof ac);
		if (err == ESIM_OK) {
			printf("activation code: %s\n", ac);
			print_qr(ac);
		}
		rc = err == ESIM_OK ? 0 : fail("order-esim", err);
	} else if (!strcmp(cmd, "mail")) {
		size_t sent = 0, failed = 0;
		err = op_mail_deliver(o, &sent, &failed);
		rc = err == ESIM_OK ? 0 : fail("mail (needs smtp-host)", err);
		if (!rc)
			printf("%zu sent, %zu to retry\n", sent, failed);
	} else if (!strcmp(cmd, "set-contract") && npos == 3) {
		err = op_set_contract(o, atoll(pos[0]), atoi(pos[1]), pos[2]);
		rc = err == ESIM_OK
			 ? 0
			 : fail("set-contract (LINE, DAYS 0-365, prorated|full_month)", err);
	} else if (!strcmp(cmd, "add-equipment") && npos == 4) {
		int64_t eid = 0;
		err = op_add_equipment(o, atoll(pos[0]), pos[1], pos[2], pos[3], &eid);
		rc = err == ESIM_OK ? 0 : fail("add-equipment", err);
		if (!rc)
			printf("equipment %lld\n", (long long)eid);
	} else if (!strcmp(cmd, "tick")) {
		size_t n = 0;
		err = op_tick(o, &n);
		rc = err == ESIM_OK ? 0 : fail("tick", err);
		if (!rc)
			printf("%zu reminder(s) sent\n", n);
	} else if (!strcmp(cmd, "audit-verify")) {
		int64_t n = 0, bad = 0;
		err = op_audit_verify(o, &n, &bad);
		if (err == ESIM_OK)
			printf("audit log OK: %lld entries, chain and signed head verified\n",
			       (long long)n);
		else if (err == ESIM_E_OP_AUDIT)
			fprintf(stderr, "audit log BROKEN at entry %lld (0: the head)\n",
				(long long)bad);
		rc = err == ESIM_OK ? 0 : (err == ESIM_E_OP_AUDIT ? 1 : fail("audit-verify", err));
	} else {
		usage();
		rc = 2;
	}
	esim_wipe(pw, sizeof pw);
	op_close(o);
	kv_free(&kv);
	return rc;
}
