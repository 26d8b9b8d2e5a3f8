/*
 * esim-smdp: the SM-DP+ program (SGP.22 ES9+ and ES2+, digest sections 5,
 * 6 and 9). `serve` runs the HTTPS listeners (one ES9+ listener per curve,
 * each with its DPtls identity, and an ES2+ listener with mutual TLS
 * pinned to the operators' certificates), an admin listener (loopback by
 * default) with /metrics and /healthz, the sweep of expired RSP sessions
 * and the HandleDownloadProgressInfo outbox; the other subcommands
 * administer the inventory in the same database.
 *
 * Configuration: a file of "key = value" lines (--config FILE), every key
 * also accepted as --key VALUE (flags win). Keys are listed in usage().
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <systemd/sd-daemon.h>

#include "esim/cert.h"
#include "esim/rsp.h"
#include "esim/smdp.h"
#include "esim/util.h"

#define MAX_KV 64

struct kv {
	char *key[MAX_KV], *val[MAX_KV];
	size_t n;
	/* where each came from, for messages: the config file's line, or 0
	 * for the command line; and whether the program read it (kv_get), so
	 * that a setting no code reads (a typo) is said, not ignored */
	const char *path;
	int line[MAX_KV];
	bool read[MAX_KV];
};

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: esim-smdp <command> [--config FILE] [--key value]...\n"
	    "       esim-smdp --help | --version   this help | the version\n"
	    "\n"
	    "  serve                      run the SM-DP+\n"
	    "  add-operator NAME CERT [CALLBACK_URL]\n"
	    "                             register an operator, pinning its ES2+ client cert\n"
	    "  set-token OPERATOR         require an ES2+ bearer token (read from stdin;\n"
	    "                             an empty line removes it)\n"
	    "  add-type NAME OPERATOR UPP SPN PROFILE_NAME [ppk]\n"
	    "                             add a profile type from a SAIP template (DER file);\n"
	    "                             ppk: bind with profile protection keys; options:\n"
	    "      --class test|provisioning|operational   profile class (default operational)\n"
	    "      --ppr none|ppr1|ppr2|ppr1,ppr2          profile policy rules (PPR1: cannot\n"
	    "                             be disabled, PPR2: cannot be deleted; default none)\n"
	    "      --icon FILE            a PNG or JPEG icon of at most 1024 bytes\n"
	    "      --notify SPEC          notification configuration: none, or\n"
	    "                             EVENTS[@ADDRESS][;EVENTS[@ADDRESS]]..., EVENTS from\n"
	    "                             install,enable,disable,delete,all; ADDRESS default\n"
	    "                             fqdn (default: all@fqdn)\n"
	    "  import TYPE CSV            import profiles: ICCID,IMSI[,Ki,OPc] per line,\n"
	    "                             streamed, all or nothing; Ki/OPc sealed (kek-file)\n"
	    "  rekey --new-kek-file FILE  re-seal every Ki/OPc under a new KEK (kek-file opens\n"
	    "                             the current ones), then point kek-file at FILE\n"
	    "  order OPERATOR TYPE [EID [CC]]  (or --eid EID)\n"
	    "                             create and release an order; prints the activation "
	    "code;\n"
	    "                             options:\n"
	    "      --matching-id ID       the operator's matchingId (default: one made here)\n"
	    "      --cc CODE              confirmation code the user must enter\n"
	    "      --smds-address FQDN    SM-DS for the event registration (needs an EID)\n"
	    "      --release no           confirm but do not release (see release)\n"
	    "      --expires WHEN         the order's own expiry: N[s|m|h|d] from now or\n"
	    "                             YYYY-MM-DDTHH:MM:SSZ (default: order-ttl, 30 days);\n"
	    "                             a later download gets 8.8.5 / 4.10\n"
	    "  release OPERATOR ICCID     release the profile of an order confirmed with\n"
	    "                             --release no (ES2+ ReleaseProfile)\n"
	    "  state ICCID                the profile's state\n"
	    "  history ICCID              the profile's history\n"
	    "\n"
	    "keys: db (sqlite:PATH | postgresql://...), fqdn, oid,\n"
	    "  dpauth-cert-nist, dpauth-key-nist, dppb-cert-nist, dppb-key-nist, (and -brp),\n"
	    "  ci (comma-separated CI certificates trusted for eUICCs),\n"
	    "  listen-nist, listen-brp (ADDR:PORT for ES9+), tls-cert-nist, tls-key-nist,\n"
	    "  tls-cert-brp, tls-key-brp (DPtls chain and key, PEM),\n"
	    "  listen-es2 (ADDR:PORT), es2-cert, es2-key (TLS identity of the ES2+ listener\n"
	    "  and of the callbacks), operator-ca (CA bundle for operator callback servers),\n"
	    "  callback-client-cert, callback-client-key (the client certificate presented to\n"
	    "  the operators' mutual-TLS callback listeners; default es2-cert / es2-key),\n"
	    "  admin-listen (ADDR:PORT of the plain-HTTP admin listener with /metrics and\n"
	    "  /healthz; default 127.0.0.1:0, a free loopback port; off: none),\n"
	    "  session-purge-interval (seconds between sweeps of expired sessions; default\n"
	    "  30), max-pending-sessions (sessions not yet authenticated at most; default\n"
	    "  10000; beyond it initiateAuthentication answers 503),\n"
	    "  kek-file (key-encryption key of Ki/OPc at rest: 32 bytes raw or hex, mode 0600),\n"
	    "  threads, session-ttl, cc-attempts, download-attempts, order-ttl,\n"
	    "  log (1: a line per ES9+/ES2+ request and event, with its X-Request-Id;\n"
	    "  default 0), log-format (json: one JSON object per line, the default; text),\n"
	    "  max-connections (per listener; default 1024), max-connections-per-address\n"
	    "  (per IPv4 address or IPv6 /64 and listener; default 64), request-deadline\n"
	    "  (seconds for the TLS handshake and a whole request; default 10),\n"
	    "  outbox-concurrency (callbacks in flight at once; default 8, at most 64),\n"
	    "  outbox-batch (callbacks leased per pass; default 8 per connection),\n"
	    "  outbox-lease (seconds a pass holds its callbacks before another instance may\n"
	    "  send them; default 30), outbox-idle-ms (wait when none is due; default 200),\n"
	    "  smds (comma-separated SM-DS addresses ConfirmOrder may name; ES12),\n"
	    "  smds-ca (CA bundle of the SM-DSs' TLS certificates), smds-client-cert,\n"
	    "  smds-client-key (our ES12 TLS client identity; default tls-cert-nist /\n"
	    "  tls-key-nist), smds-timeout-ms (ConfirmOrder's RegisterEvent; default 5000)\n");
}

static int kv_set(struct kv *kv, const char *k, const char *v)
{
	for (size_t i = 0; i < kv->n; i++)
		if (strcmp(kv->key[i], k) == 0) {
			free(kv->val[i]);
			kv->val[i] = strdup(v);
			return 0;
		}
	if (kv->n == MAX_KV)
		return -1;
	kv->key[kv->n] = strdup(k);
	kv->val[kv->n++] = strdup(v);
	return 0;
}

static const char *kv_get(const struct kv *kv, const char *k)
{
	for (size_t i = 0; i < kv->n; i++)
		if (strcmp(kv->key[i], k) == 0) {
			/* every kv is a local of main: the const is the
			 * readers' promise not to change the settings */
			((struct kv *)kv)->read[i] = true;
			return kv->val[i];
		}
	return NULL;
}

/* Where setting i came from: "FILE:LINE" or "the command line". */
static const char *kv_where(const struct kv *kv, size_t i, char *buf, size_t n)
{
	if (kv->line[i] > 0 && kv->path != NULL)
		snprintf(buf, n, "%s:%d", kv->path, kv->line[i]);
	else
		snprintf(buf, n, "the command line");
	return buf;
}

static void kv_free(struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->key[i]);
		free(kv->val[i]);
	}
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int kv_load(struct kv *kv, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "esim-smdp: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[1024];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *l = trim(line);
		if (*l == '#' || *l == '\0')
			continue;
		char *eq = strchr(l, '=');
		if (!eq) {
			fprintf(stderr, "esim-smdp: %s:%d: expected key = value\n", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		if (kv_set(kv, trim(l), trim(eq + 1)) != 0) {
			fprintf(stderr, "esim-smdp: %s:%d: more than %d settings\n", path, lineno,
				MAX_KV);
			rc = -1;
			break;
		}
		for (size_t i = 0; i < kv->n; i++)
			if (strcmp(kv->key[i], trim(l)) == 0)
				kv->line[i] = lineno;
	}
	kv->path = path;
	fclose(f);
	return rc;
}

/* Options and positional arguments; returns the number of positionals. */
static int parse_args(int argc, char **argv, struct kv *kv, char **pos, int max_pos)
{
	struct kv flags = {0};
	const char *config = NULL;
	int npos = 0;
	for (int i = 2; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "esim-smdp: %s needs a value\n", argv[i]);
				kv_free(&flags);
				return -1;
			}
			if (strcmp(argv[i], "--config") == 0)
				config = argv[i + 1];
			else
				kv_set(&flags, argv[i] + 2, argv[i + 1]);
			i++;
		} else if (npos < max_pos) {
			pos[npos++] = argv[i];
		} else {
			fprintf(stderr, "esim-smdp: unexpected argument '%s'\n", argv[i]);
			kv_free(&flags);
			return -1;
		}
	}
	if (config && kv_load(kv, config) != 0) {
		kv_free(&flags);
		return -1;
	}
	for (size_t i = 0; i < flags.n; i++) {
		kv_set(kv, flags.key[i], flags.val[i]);
		for (size_t j = 0; j < kv->n; j++)
			if (strcmp(kv->key[j], flags.key[i]) == 0)
				kv->line[j] = 0; /* the flag wins */
	}
	kv_free(&flags);
	return npos;
}

static unsigned kv_uint(const struct kv *kv, const char *k)
{
	const char *v = kv_get(kv, k);
	return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

/* A whole number in 1..max under key k, or 0 when absent; -1 (said) when
 * it is something else. */
static int kv_limit(const struct kv *kv, const char *k, unsigned max, unsigned *out)
{
	const char *v = kv_get(kv, k);
	*out = 0;
	if (v == NULL)
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n == 0 || n > max) {
		char where[600] = "";
		for (size_t i = 0; i < kv->n; i++)
			if (strcmp(kv->key[i], k) == 0)
				kv_where(kv, i, where, sizeof where);
		fprintf(stderr,
			"esim-smdp: %s: %s: expected a whole number from 1 to %u, not '%s'\n",
			where, k, max, v);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* Every setting that names a file (a certificate, key, CA bundle or the
 * KEK) names a readable one; else say which setting, the path and the
 * system's reason before anything is opened. ci is a comma-separated list. */
static int check_files(const struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		const char *k = kv->key[i];
		size_t n = strlen(k);
		bool file = strcmp(k, "ci") == 0 || strcmp(k, "kek-file") == 0 ||
			    strcmp(k, "operator-ca") == 0 || strstr(k, "-cert") != NULL ||
			    (n > 4 && strcmp(k + n - 4, "-key") == 0) ||
			    strncmp(k, "tls-key-", 8) == 0 || strncmp(k, "dpauth-key-", 11) == 0 ||
			    strncmp(k, "dppb-key-", 9) == 0;
		if (!file)
			continue;
		char list[4096];
		snprintf(list, sizeof list, "%s", kv->val[i]);
		char *save = NULL;
		for (char *t = strtok_r(list, ",", &save); t != NULL;
		     t = strtok_r(NULL, ",", &save)) {
			const char *path = trim(t);
			FILE *f = fopen(path, "rb");
			if (f != NULL) {
				fclose(f);
				continue;
			}
			fprintf(stderr, "esim-smdp: setting %s: cannot read %s (%s)\n", k, path,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The SM-DSs of ES12 (es12.c): smds, smds-ca, smds-client-cert / -key. */
static esim_err set_smds(const struct kv *kv, smdp *d)
{
	struct smdp_smds_config sc = {
	    .ca_file = kv_get(kv, "smds-ca"),
	    .client_cert = kv_get(kv, "smds-client-cert") ? kv_get(kv, "smds-client-cert")
							  : kv_get(kv, "tls-cert-nist"),
	    .client_key = kv_get(kv, "smds-client-cert") ? kv_get(kv, "smds-client-key")
							 : kv_get(kv, "tls-key-nist"),
	    .timeout_ms = kv_uint(kv, "smds-timeout-ms"),
	};
	char list[2048], *save = NULL;
	snprintf(list, sizeof list, "%s", kv_get(kv, "smds"));
	for (char *t = strtok_r(list, ",", &save); t && sc.n < SMDP_MAX_SMDS;
	     t = strtok_r(NULL, ",", &save))
		sc.addresses[sc.n++] = trim(t);
	esim_err err = smdp_set_smds(d, &sc);
	if (err != ESIM_OK)
		fprintf(stderr, "esim-smdp: smds needs smds-ca and a client certificate "
				"(smds-client-cert / -key, or tls-cert-nist / -key)\n");
	return err;
}

static esim_err open_smdp(const struct kv *kv, smdp **out, char cis[8][512])
{
	if (check_files(kv) != 0)
		return ESIM_E_IO;
	struct smdp_config c;
	memset(&c, 0, sizeof c);
	c.db_url = kv_get(kv, "db");
	c.fqdn = kv_get(kv, "fqdn");
	c.oid = kv_get(kv, "oid");
	static const char *const curves[] = {"nist", "brp"};
	for (size_t i = 0; i < 2; i++) {
		char k[4][40];
		snprintf(k[0], 40, "dpauth-cert-%s", curves[i]);
		snprintf(k[1], 40, "dpauth-key-%s", curves[i]);
		snprintf(k[2], 40, "dppb-cert-%s", curves[i]);
		snprintf(k[3], 40, "dppb-key-%s", curves[i]);
		if (!kv_get(kv, k[0]))
			continue;
		struct smdp_identity_cfg *id = &c.ids[c.n_ids++];
		id->dpauth_cert = kv_get(kv, k[0]);
		id->dpauth_key = kv_get(kv, k[1]);
		id->dppb_cert = kv_get(kv, k[2]);
		id->dppb_key = kv_get(kv, k[3]);
	}
	const char *ci = kv_get(kv, "ci");
	if (ci) {
		char buf[4096];
		snprintf(buf, sizeof buf, "%s", ci);
		char *save = NULL;
		for (char *t = strtok_r(buf, ",", &save); t && c.n_ci < 8;
		     t = strtok_r(NULL, ",", &save)) {
			snprintf(cis[c.n_ci], 512, "%s", trim(t));
			c.ci_paths[c.n_ci] = cis[c.n_ci];
			c.n_ci++;
		}
	}
	c.session_ttl_s = kv_uint(kv, "session-ttl");
	c.cc_max_attempts = kv_uint(kv, "cc-attempts");
	c.max_download_attempts = kv_uint(kv, "download-attempts");
	c.order_ttl_s = kv_uint(kv, "order-ttl");
	c.max_pending_sessions = kv_uint(kv, "max-pending-sessions");
	c.log = kv_uint(kv, "log") != 0;
	const char *lf = kv_get(kv, "log-format");
	if (lf && esim_log_format_parse(lf, &c.log_format) != ESIM_OK) {
		fprintf(stderr, "esim-smdp: log-format: expected json or text, not '%s'\n", lf);
		return ESIM_E_ARG;
	}
	c.kek_file = kv_get(kv, "kek-file");
	if (!c.db_url || !c.fqdn || c.n_ids == 0) {
		fprintf(stderr, "esim-smdp: db, fqdn and at least one dpauth/dppb identity are "
				"required\n");
		return ESIM_E_ARG;
	}
	esim_err err = smdp_open(&c, out);
	if (err != ESIM_OK)
		fprintf(stderr, "esim-smdp: cannot open the SM-DP+: %s\n", esim_strerror(err));
	if (err == ESIM_OK && kv_get(kv, "smds") && (err = set_smds(kv, *out)) != ESIM_OK) {
		smdp_close(*out);
		*out = NULL;
	}
	return err;
}

static int parse_hostport(const char *s, char *host, size_t n, uint16_t *port)
{
	const char *c = strrchr(s, ':');
	if (!c || (size_t)(c - s) >= n)
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	long p = strtol(c + 1, NULL, 10);
	if (p < 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

/* ---- serve ----------------------------------------------------------------- */

struct outbox_ctx {
	smdp *d;
	struct net_client_config cc;
	struct smdp_outbox_config ob; /* outbox-concurrency, -batch, -lease */
	unsigned idle_ms;	      /* outbox-idle-ms: the wait when nothing is due */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	unsigned purge_every; /* seconds between session sweeps */
};

/* serve's own lines (listening, ready, reload, stop, what a thread could
 * not do) in the log-format setting's form: one JSON object per line
 * (the default), or the plain "esim-smdp: ..." text. Set by cmd_serve
 * before any thread starts and only read after. */
static esim_log serve_log = {.prog = "esim-smdp", .format = ESIM_LOG_JSON};

static void slog(enum esim_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void slog(enum esim_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (serve_log.format == ESIM_LOG_TEXT)
		fprintf(stderr, "esim-smdp: %s\n", msg);
	else
		esim_log_emit(&serve_log, level, NULL, msg, NULL, 0);
}

/* Sweeps expired RSP sessions on its own timer, so that a slow outbox
 * delivery never delays it (es9.c: smdp_purge_sessions). */
static void *purge_thread(void *arg)
{
	struct outbox_ctx *o = arg;
	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		pthread_mutex_unlock(&o->lock);
		size_t n = 0;
		esim_err err = smdp_purge_sessions(o->d, &n);
		if (err != ESIM_OK)
			slog(ESIM_LOG_ERROR, "session purge: %s", esim_strerror(err));
		pthread_mutex_lock(&o->lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += o->purge_every;
		while (!o->stop && pthread_cond_timedwait(&o->cond, &o->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* Delivers callbacks as long as some are due, a pass right after the
 * other, and waits idle_ms only when a pass found nothing (or failed), so
 * that the outbox keeps up with the downloads that fill it. */
static void *outbox_thread(void *arg)
{
	struct outbox_ctx *o = arg;
	smdp_outbox_sender *snd = NULL;
	if (o->cc.ca_file) {
		esim_err err = smdp_outbox_sender_new(&o->ob, &snd);
		if (err != ESIM_OK)
			slog(ESIM_LOG_ERROR, "outbox: %s (no callbacks are sent)",
			     esim_strerror(err));
	}
	/* ES12 rows go to the SM-DSs with their own TLS client identity */
	smdp_outbox_sender *es12 = NULL;
	esim_err e12 = smdp_smds_sender_new(o->d, &es12);
	if (e12 != ESIM_OK)
		slog(ESIM_LOG_ERROR, "outbox: SM-DS client: %s (no ES12 call is sent)",
		     esim_strerror(e12));
	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		pthread_mutex_unlock(&o->lock);
		size_t claimed = 0, claimed12 = 0;
		esim_err err = snd ? smdp_outbox_deliver(o->d, snd, &claimed, NULL) : ESIM_OK;
		if (err != ESIM_OK && err != ESIM_E_STORE_BUSY)
			slog(ESIM_LOG_WARN, "outbox: %s", esim_strerror(err));
		e12 = es12 ? smdp_outbox_deliver(o->d, es12, &claimed12, NULL) : ESIM_OK;
		if (e12 != ESIM_OK && e12 != ESIM_E_STORE_BUSY)
			slog(ESIM_LOG_WARN, "outbox (ES12): %s", esim_strerror(e12));
		claimed += claimed12;
		pthread_mutex_lock(&o->lock);
		if (o->stop || (claimed > 0 && err == ESIM_OK))
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += o->idle_ms / 1000;
		ts.tv_nsec += (long)(o->idle_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&o->cond, &o->lock, &ts);
	}
	pthread_mutex_unlock(&o->lock);
	smdp_outbox_sender_free(snd);
	smdp_outbox_sender_free(es12);
	return NULL;
}

static int add_tls_listener(net_server *srv, const struct kv *kv, const char *listen,
			    const char *cert, const char *key, bool mtls, const uint8_t (*pins)[32],
			    size_t n_pins, int *id)
{
	char host[256];
	uint16_t port;
	if (parse_hostport(listen, host, sizeof host, &port) != 0) {
		fprintf(stderr, "esim-smdp: bad listen address '%s'\n", listen);
		return -1;
	}
	unsigned max_conns, max_per_addr;
	if (kv_limit(kv, "max-connections", 1000000, &max_conns) != 0 ||
	    kv_limit(kv, "max-connections-per-address", 1000000, &max_per_addr) != 0)
		return -1;
	struct net_listener_config lc = {
	    .max_connections = max_conns,
	    .max_connections_per_address = max_per_addr,
	    .address = host,
	    .port = port,
	    .tls = cert != NULL,
	    .cert_chain_file = cert,
	    .key_file = key,
	    .client_auth = mtls ? NET_CLIENT_AUTH_REQUIRE : NET_CLIENT_AUTH_NONE,
	    .client_pins = pins,
	    .n_client_pins = n_pins,
	};
	esim_err err = net_server_add_listener(srv, &lc, id);
	if (err != ESIM_OK) {
		/* net names the address or file and the reason */
		const char *why = net_server_errmsg(srv);
		fprintf(stderr, "esim-smdp: listener %s: %s\n", listen,
			why[0] ? why : esim_strerror(err));
		return -1;
	}
	slog(ESIM_LOG_INFO, "listening on %s:%u (%s)", host, net_server_port(srv, *id),
	     mtls ? "ES2+, mutual TLS" : "ES9+");
	return 0;
}

/* The admin listener: plain HTTP, /metrics and /healthz only. Loopback
 * unless configured otherwise (then whoever reaches the address reads the
 * counters: put it behind a firewall). */
static int add_admin_listener(net_server *srv, smdp *d, const char *listen)
{
	char host[256];
	uint16_t port;
	if (parse_hostport(listen, host, sizeof host, &port) != 0) {
		fprintf(stderr, "esim-smdp: bad admin-listen address '%s'\n", listen);
		return -1;
	}
	struct net_listener_config lc = {.address = host, .port = port};
	int id;
	esim_err err = net_server_add_listener(srv, &lc, &id);
	if (err == ESIM_OK)
		err = smdp_add_admin_routes(d, srv, id);
	if (err != ESIM_OK) {
		const char *why = net_server_errmsg(srv);
		fprintf(stderr, "esim-smdp: admin-listen %s: %s\n", listen,
			why[0] ? why : esim_strerror(err));
		return -1;
	}
	if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0 &&
	    strcmp(host, "localhost") != 0)
		slog(ESIM_LOG_WARN,
		     "warning: admin listener on %s is not loopback; "
		     "/metrics and /healthz need no credential",
		     host);
	slog(ESIM_LOG_INFO, "admin on %s:%u (/metrics, /healthz)", host, net_server_port(srv, id));
	return 0;
}

/* Once serve has read every setting it uses: the ones it did not are
 * not settings of esim-smdp (a typo, or one of another program), said
 * with where they came from rather than silently ignored. */
static void kv_report_unread(const struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		if (kv->read[i])
			continue;
		char where[600];
		slog(ESIM_LOG_WARN,
		     "%s: '%s' is not a setting of esim-smdp serve; ignored (see "
		     "esim-smdp --help)",
		     kv_where(kv, i, where, sizeof where), kv->key[i]);
	}
}

static int cmd_serve(const struct kv *kv, smdp *d)
{
	const char *lf = kv_get(kv, "log-format");
	if (lf != NULL && esim_log_format_parse(lf, &serve_log.format) != ESIM_OK)
		return 2; /* open_smdp said so already */
	/* net's own rate-limited lines in the same form */
	struct net_server_config sc = {
	    .threads = kv_uint(kv, "threads"), .log = esim_log_net, .log_arg = &serve_log};
	unsigned deadline_s;
	if (kv_limit(kv, "request-deadline", 3600, &deadline_s) != 0)
		return 1;
	sc.request_deadline_ms = deadline_s * 1000;
	net_server *srv = NULL;
	uint8_t(*pins)[32] = NULL;
	size_t n_pins = 0;
	int rc = 1;
	if (net_server_new(&sc, &srv) != ESIM_OK)
		return 1;
	int es9[2] = {-1, -1}, n9 = 0, es2 = -1;
	static const char *const curves[] = {"nist", "brp"};
	for (int i = 0; i < 2; i++) {
		char k[3][32];
		snprintf(k[0], 32, "listen-%s", curves[i]);
		snprintf(k[1], 32, "tls-cert-%s", curves[i]);
		snprintf(k[2], 32, "tls-key-%s", curves[i]);
		if (!kv_get(kv, k[0]))
			continue;
		/* ES9+ is HTTPS only (SGP.22 ES9+ binding): never plain HTTP for want of a key */
		if (!kv_get(kv, k[1]) || !kv_get(kv, k[2])) {
			fprintf(stderr,
				"esim-smdp: serve: %s needs %s and %s (the DPtls chain and key)\n",
				k[0], k[1], k[2]);
			goto out;
		}
		if (add_tls_listener(srv, kv, kv_get(kv, k[0]), kv_get(kv, k[1]), kv_get(kv, k[2]),
				     false, NULL, 0, &es9[n9]) != 0)
			goto out;
		n9++;
	}
	if (kv_get(kv, "listen-es2")) {
		if (!kv_get(kv, "es2-cert") || !kv_get(kv, "es2-key")) {
			fprintf(stderr,
				"esim-smdp: serve: listen-es2 needs es2-cert and es2-key (ES2+ "
				"is mutual TLS)\n");
			goto out;
		}
		if (smdp_operator_pins(d, &pins, &n_pins) != ESIM_OK || n_pins == 0) {
			fprintf(stderr,
				"esim-smdp: no operator certificates pinned (add-operator)\n");
			goto out;
		}
		if (add_tls_listener(srv, kv, kv_get(kv, "listen-es2"), kv_get(kv, "es2-cert"),
				     kv_get(kv, "es2-key"), true, (const uint8_t(*)[32])pins,
				     n_pins, &es2) != 0)
			goto out;
	}
	if (n9 == 0 && es2 < 0) {
		fprintf(stderr, "esim-smdp: nothing to listen on (listen-nist / listen-brp / "
				"listen-es2)\n");
		goto out;
	}
	for (int i = 0; i < n9; i++)
		if (smdp_add_routes(d, srv, es9[i], es2 >= 0 ? es2 : es9[i]) != ESIM_OK)
			goto out;
	if (n9 == 0 && smdp_add_routes(d, srv, es2, es2) != ESIM_OK)
		goto out;
	const char *admin = kv_get(kv, "admin-listen");
	if (!admin)
		admin = "127.0.0.1:0";
	if (strcmp(admin, "off") != 0 && add_admin_listener(srv, d, admin) != 0)
		goto out;
	/* block the signals before any thread starts, then wait for them here */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct outbox_ctx oc = {.d = d, .purge_every = kv_uint(kv, "session-purge-interval")};
	if (oc.purge_every == 0)
		oc.purge_every = 30;
	oc.cc.ca_file = kv_get(kv, "operator-ca");
	/* the client certificate the operator's callback listener pins
	 * (callback-client-cert; the ES2+ identity when not set) */
	oc.cc.client_cert_file = kv_get(kv, "callback-client-cert")
				     ? kv_get(kv, "callback-client-cert")
				     : kv_get(kv, "es2-cert");
	oc.cc.client_key_file = kv_get(kv, "callback-client-cert")
				    ? kv_get(kv, "callback-client-key")
				    : kv_get(kv, "es2-key");
	oc.cc.user_agent = "esim-smdp";
	oc.ob.client = &oc.cc;
	if (kv_limit(kv, "outbox-concurrency", SMDP_OUTBOX_CONCURRENCY_MAX, &oc.ob.concurrency) !=
		0 ||
	    kv_limit(kv, "outbox-batch", SMDP_OUTBOX_BATCH_MAX, &oc.ob.batch) != 0 ||
	    kv_limit(kv, "outbox-lease", 86400, &oc.ob.lease_s) != 0 ||
	    kv_limit(kv, "outbox-idle-ms", 60000, &oc.idle_ms) != 0)
		goto out;
	if (oc.ob.lease_s == 1) {
		fprintf(stderr, "esim-smdp: outbox-lease: at least 2 seconds\n");
		goto out;
	}
	if (oc.idle_ms == 0)
		oc.idle_ms = 200;
	pthread_mutex_init(&oc.lock, NULL);
	pthread_cond_init(&oc.cond, NULL);
	pthread_t ot, pt;
	if (net_server_start(srv) != ESIM_OK ||
	    pthread_create(&ot, NULL, outbox_thread, &oc) != 0) {
		fprintf(stderr, "esim-smdp: cannot start\n");
		goto out;
	}
	bool purging = pthread_create(&pt, NULL, purge_thread, &oc) == 0;
	if (!purging)
		slog(ESIM_LOG_ERROR, "cannot start the session purge");
	kv_report_unread(kv);
	slog(ESIM_LOG_INFO, "ready");
	sd_notify(0, "READY=1");
	int sig = 0;
	/* SIGHUP: the listeners' TLS certificates and keys read again (a
	 * renewal); SIGTERM, SIGINT: stop accepting, finish the requests in
	 * flight (net_server_stop), then exit */
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
		sd_notify(0, "RELOADING=1");
		int bad = -1;
		esim_err rerr = net_server_reload_tls(srv, &bad);
		if (rerr == ESIM_OK)
			slog(ESIM_LOG_INFO, "SIGHUP: TLS certificates reloaded");
		else
			slog(ESIM_LOG_ERROR,
			     "SIGHUP: TLS reload refused, listener %d: %s; the "
			     "certificates in use are kept",
			     bad,
			     net_server_errmsg(srv)[0] ? net_server_errmsg(srv)
						       : esim_strerror(rerr));
		sd_notify(0, "READY=1");
	}
	slog(ESIM_LOG_INFO, "signal %d, shutting down", sig);
	sd_notify(0, "STOPPING=1");
	net_server_stop(srv);
	pthread_mutex_lock(&oc.lock);
	oc.stop = true;
	pthread_cond_broadcast(&oc.cond);
	pthread_mutex_unlock(&oc.lock);
	pthread_join(ot, NULL);
	if (purging)
		pthread_join(pt, NULL);
	pthread_mutex_destroy(&oc.lock);
	pthread_cond_destroy(&oc.cond);
	rc = 0;
out:
	net_server_free(srv);
	free(pins);
	return rc;
}

/* ---- admin ------------------------------------------------------------------- */

static int cmd_add_operator(smdp *d, char **pos, int n)
{
	if (n < 2) {
		usage();
		return 2;
	}
	crypto_cert *c = NULL;
	esim_err err = crypto_cert_load_file(pos[1], &c);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smdp: %s: %s\n", pos[1], esim_strerror(err));
		return 1;
	}
	size_t len;
	const uint8_t *der = crypto_cert_der(c, &len);
	uint8_t sha[32];
	unsigned hl;
	EVP_Digest(der, len, sha, &hl, EVP_sha256(), NULL);
	crypto_cert_free(c);
	err = smdp_add_operator(d, pos[0], sha, n > 2 ? pos[2] : NULL);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smdp: add-operator: %s\n", esim_strerror(err));
		return 1;
	}
	return 0;
}

/* The token comes on stdin, not argv, so that it never shows in ps. */
static int cmd_set_token(smdp *d, char **pos, int n)
{
	if (n < 1) {
		usage();
		return 2;
	}
	char line[512];
	if (!fgets(line, sizeof line, stdin))
		line[0] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	esim_err err = smdp_set_operator_token(d, pos[0], line[0] ? line : NULL);
	esim_wipe(line, sizeof line);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smdp: set-token: %s\n", esim_strerror(err));
		return 1;
	}
	return 0;
}

static int parse_class(const char *v, int *out)
{
	static const char *const names[] = {"test", "provisioning", "operational"};
	for (int i = 0; i < 3; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	fprintf(stderr,
		"esim-smdp: add-type: --class '%s': expected test, provisioning or "
		"operational\n",
		v);
	return -1;
}

static int parse_ppr(const char *v, uint32_t *out)
{
	*out = 0;
	if (strcmp(v, "none") == 0)
		return 0;
	char buf[64];
	snprintf(buf, sizeof buf, "%s", v);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "ppr1") == 0 || strcmp(t, "PPR1") == 0)
			*out |= RSP_PPR1;
		else if (strcmp(t, "ppr2") == 0 || strcmp(t, "PPR2") == 0)
			*out |= RSP_PPR2;
		else {
			fprintf(stderr,
				"esim-smdp: add-type: --ppr '%s': '%s' is not ppr1 or ppr2 "
				"(or none)\n",
				v, t);
			return -1;
		}
	}
	return 0;
}

static int cmd_add_type(const struct kv *kv, smdp *d, char **pos, int n)
{
	if (n < 5) {
		usage();
		return 2;
	}
	struct smdp_profile_type t = {
	    .name = pos[0],
	    .operator_name = pos[1],
	    .spn = pos[3],
	    .profile_name = pos[4],
	    .profile_class = 2,
	    .ppk = n > 5 && strcmp(pos[5], "ppk") == 0,
	    .notif = kv_get(kv, "notify"),
	};
	const char *v = kv_get(kv, "class");
	if (v && parse_class(v, &t.profile_class) != 0)
		return 2;
	if ((v = kv_get(kv, "ppr")) && parse_ppr(v, &t.ppr) != 0)
		return 2;
	uint8_t *upp = NULL, *icon = NULL;
	size_t len = 0, icon_len = 0;
	const char *icon_path = kv_get(kv, "icon");
	if (icon_path) {
		/* read a little past the limit, so that a big file is said to be big */
		esim_err err = esim_read_file(icon_path, 64u << 10, &icon, &icon_len);
		if (err != ESIM_OK) {
			fprintf(stderr, "esim-smdp: add-type: --icon %s: %s\n", icon_path,
				esim_strerror(err));
			return 1;
		}
		t.icon = icon;
		t.icon_len = icon_len;
	}
	char why[256] = "";
	esim_err err = esim_read_file(pos[2], 4u << 20, &upp, &len);
	if (err == ESIM_OK) {
		t.upp = upp;
		t.upp_len = len;
		err = smdp_add_profile_type_why(d, &t, why, sizeof why);
	} else {
		snprintf(why, sizeof why, "%s: %s", pos[2], esim_strerror(err));
	}
	free(upp);
	free(icon);
	if (err != ESIM_OK) {
		if (icon_path && strncmp(why, "icon:", 5) == 0)
			fprintf(stderr, "esim-smdp: add-type: --icon %s: %s\n", icon_path, why + 6);
		else
			fprintf(stderr, "esim-smdp: add-type: %s\n",
				why[0] ? why : esim_strerror(err));
		return 1;
	}
	return 0;
}

static int cmd_import(smdp *d, char **pos, int n)
{
	if (n < 2) {
		usage();
		return 2;
	}
	FILE *f = fopen(pos[1], "r");
	if (!f) {
		fprintf(stderr, "esim-smdp: import: %s: %s\n", pos[1], strerror(errno));
		return 1;
	}
	/* stdio's buffer holds Ki / OPc text: ours, to wipe it */
	static char iobuf[1 << 16];
	setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
	size_t count = 0;
	struct smdp_import_report rep;
	esim_err err = smdp_import_stream(d, pos[0], f, &count, &rep);
	fclose(f);
	esim_wipe(iobuf, sizeof iobuf);
	if (err != ESIM_OK) {
		if (rep.line)
			fprintf(stderr, "esim-smdp: import: %s:%zu: %s; nothing imported\n", pos[1],
				rep.line, rep.reason);
		else
			fprintf(stderr, "esim-smdp: import: %s: %s; nothing imported\n", pos[1],
				rep.reason[0] ? rep.reason : esim_strerror(err));
		return 1;
	}
	printf("imported %zu profiles\n", count);
	return 0;
}

static int cmd_rekey(const struct kv *kv, smdp *d)
{
	const char *nf = kv_get(kv, "new-kek-file");
	if (!nf) {
		fprintf(stderr, "esim-smdp: rekey needs --new-kek-file FILE\n");
		return 2;
	}
	size_t count = 0;
	esim_err err = smdp_rekey(d, nf, &count);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smdp: rekey: %s; nothing changed\n", esim_strerror(err));
		return 1;
	}
	printf("re-sealed %zu profiles under %s; set kek-file = %s\n", count, nf, nf);
	return 0;
}

/* --expires: N[s|m|h|d] from now, or YYYY-MM-DDTHH:MM:SSZ (UTC). */
static int parse_expires(const char *v, time_t now, time_t *out)
{
	char *end = NULL;
	errno = 0;
	if (strlen(v) == 20 && v[4] == '-' && v[10] == 'T' && v[19] == 'Z') {
		struct tm tm;
		memset(&tm, 0, sizeof tm);
		char z = 0;
		if (sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) == 7 &&
		    z == 'Z' && tm.tm_mon >= 1 && tm.tm_mon <= 12 && tm.tm_mday >= 1 &&
		    tm.tm_mday <= 31 && tm.tm_hour < 24 && tm.tm_min < 60 && tm.tm_sec < 61) {
			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			*out = timegm(&tm);
			if (*out > now)
				return 0;
			fprintf(stderr, "esim-smdp: order: --expires %s is not in the future\n", v);
			return -1;
		}
	} else if (v[0] >= '0' && v[0] <= '9') {
		unsigned long long n = strtoull(v, &end, 10);
		unsigned long long mul = 1;
		if (*end == 'm')
			mul = 60;
		else if (*end == 'h')
			mul = 3600;
		else if (*end == 'd')
			mul = 86400;
		else if (*end != 's' && *end != '\0')
			mul = 0;
		if (*end != '\0')
			end++;
		if (errno == 0 && mul && *end == '\0' && n > 0 && n <= 3650ull * 86400 / mul) {
			*out = now + (time_t)(n * mul);
			return 0;
		}
	}
	fprintf(stderr,
		"esim-smdp: order: --expires '%s': expected N[s|m|h|d] (N > 0, at most 10 years) "
		"or YYYY-MM-DDTHH:MM:SSZ\n",
		v);
	return -1;
}

static void print_status(const char *cmd, const struct smdp_admin_status *st, esim_err err)
{
	if (st->subject[0])
		fprintf(stderr, "esim-smdp: %s: %s (%s / %s)\n", cmd, st->message, st->subject,
			st->reason);
	else
		fprintf(stderr, "esim-smdp: %s: %s\n", cmd,
			st->message[0] ? st->message : esim_strerror(err));
}

static int cmd_order(const struct kv *kv, smdp *d, char **pos, int n)
{
	if (n < 2) {
		usage();
		return 2;
	}
	char iccid[64], mid[64];
	const char *eid = n > 2 ? pos[2] : kv_get(kv, "eid");
	/* the ES2+ DownloadOrder refuses it too; say why before anything runs */
	esim_err err = eid ? rsp_eid_check(eid) : ESIM_OK;
	if (err == ESIM_E_CRYPTO_EID_CHECK_DIGITS) {
		fprintf(stderr,
			"esim-smdp: order: EID %s: wrong check digits (SGP.29: the 32-digit "
			"number mod 97 must be 1)\n",
			eid);
		return 1;
	}
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smdp: order: EID '%s': not 32 decimal digits\n", eid);
		return 1;
	}
	struct smdp_order_opts o = {
	    .type = pos[1],
	    .eid = eid,
	    .matching_id = kv_get(kv, "matching-id"),
	    .cc = n > 3 ? pos[3] : kv_get(kv, "cc"),
	    .smds_address = kv_get(kv, "smds-address"),
	};
	const char *rel = kv_get(kv, "release");
	if (rel && strcmp(rel, "no") != 0 && strcmp(rel, "yes") != 0) {
		fprintf(stderr, "esim-smdp: order: --release '%s': expected yes or no\n", rel);
		return 2;
	}
	o.hold = rel && strcmp(rel, "no") == 0;
	const char *exp = kv_get(kv, "expires");
	if (exp && parse_expires(exp, time(NULL), &o.expires) != 0)
		return 2;
	struct smdp_admin_status st;
	err = smdp_admin_order_opts(d, pos[0], &o, iccid, mid, &st);
	if (err != ESIM_OK) {
		print_status("order", &st, err);
		return 1;
	}
	printf("iccid %s\nmatchingId %s\nactivation code LPA:1$%s$%s%s\n", iccid, mid,
	       kv_get(kv, "fqdn"), mid, o.cc ? "$$1" : "");
	if (o.hold)
		printf("not released: esim-smdp release %s %s\n", pos[0], iccid);
	return 0;
}

static int cmd_release(smdp *d, char **pos, int n)
{
	if (n < 2) {
		usage();
		return 2;
	}
	struct smdp_admin_status st;
	esim_err err = smdp_admin_release(d, pos[0], pos[1], &st);
	if (err != ESIM_OK) {
		print_status("release", &st, err);
		return 1;
	}
	printf("released %s\n", pos[1]);
	return 0;
}

static int cmd_state(smdp *d, char **pos, int n, bool history)
{
	if (n < 1) {
		usage();
		return 2;
	}
	if (history) {
		char *h = NULL;
		esim_err err = smdp_iccid_history(d, pos[0], &h);
		if (err != ESIM_OK) {
			fprintf(stderr, "esim-smdp: %s: %s\n", pos[0], esim_strerror(err));
			return 1;
		}
		fputs(h, stdout);
		free(h);
		return 0;
	}
	enum smdp_state st;
	esim_err err = smdp_profile_state(d, pos[0], &st);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smdp: %s: %s\n", pos[0], esim_strerror(err));
		return 1;
	}
	printf("%s\n", smdp_state_name(st));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		esim_print_version("esim-smdp");
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage();
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	struct kv kv = {0};
	char *pos[8];
	int npos = parse_args(argc, argv, &kv, pos, 8);
	if (npos < 0) {
		kv_free(&kv);
		return 2;
	}
	char cis[8][512];
	smdp *d = NULL;
	int rc;
	if (open_smdp(&kv, &d, cis) != ESIM_OK) {
		kv_free(&kv);
		return 1;
	}
	if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(&kv, d);
	else if (strcmp(cmd, "add-operator") == 0)
		rc = cmd_add_operator(d, pos, npos);
	else if (strcmp(cmd, "add-type") == 0)
		rc = cmd_add_type(&kv, d, pos, npos);
	else if (strcmp(cmd, "set-token") == 0)
		rc = cmd_set_token(d, pos, npos);
	else if (strcmp(cmd, "import") == 0)
		rc = cmd_import(d, pos, npos);
	else if (strcmp(cmd, "rekey") == 0)
		rc = cmd_rekey(&kv, d);
	else if (strcmp(cmd, "order") == 0)
		rc = cmd_order(&kv, d, pos, npos);
	else if (strcmp(cmd, "release") == 0)
		rc = cmd_release(d, pos, npos);
	else if (strcmp(cmd, "state") == 0)
		rc = cmd_state(d, pos, npos, false);
	else if (strcmp(cmd, "history") == 0)
		rc = cmd_state(d, pos, npos, true);
	else {
		usage();
		rc = 2;
	}
	smdp_close(d);
	kv_free(&kv);
	return rc;
}
