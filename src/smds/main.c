/*
 * esim-smds: the SM-DS program (SGP.22 3.3, ES11 5.8, ES12 5.9;
 * docs/smds.md). `serve` runs one ES11 listener per curve (HTTPS with
 * that curve's CERT.DStls, no client certificate), the ES12 listener
 * (mutual TLS pinned to the configured SM-DP+ certificates) and an admin
 * listener (loopback by default) with /healthz, plus a sweep of expired
 * ES11 sessions. `events EID` prints how many events the SM-DS holds for
 * an EID (all with no EID). SIGHUP reloads the TLS certificates, and
 * systemd hears READY / RELOADING / STOPPING (sd_notify; a no-op without
 * NOTIFY_SOCKET).
 *
 * Configuration: a file of "key = value" lines (--config FILE), every key
 * also accepted as --key VALUE (flags win). Keys are listed in usage().
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <systemd/sd-daemon.h>

#include "esim/cert.h"
#include "esim/smds.h"
#include "esim/util.h"

#define MAX_KV 48

struct kv {
	char *key[MAX_KV], *val[MAX_KV];
	size_t n;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: esim-smds <command> [--config FILE] [--key value]...\n"
		"\n"
		"  serve                 run the SM-DS\n"
		"  events [EID]          how many events are held (for EID, or all)\n"
		"  esim-smds --help | --version   this help | the version\n"
		"\n"
		"--config FILE: a file of 'key = value' lines; every key is also --key VALUE.\n"
		"keys: db (sqlite:PATH | postgresql://...), fqdn (our address, host[:port]),\n"
		"  dsauth-cert-nist, dsauth-key-nist, dsauth-cert-brp, dsauth-key-brp\n"
		"  (CERT.DSauth and key per curve), ci (comma-separated CI certificates\n"
		"  trusted for eUICCs), listen-nist, listen-brp (ADDR:PORT for ES11),\n"
		"  tls-cert-nist, tls-key-nist, tls-cert-brp, tls-key-brp (CERT.DStls chain\n"
		"  and key, PEM), listen-es12 (ADDR:PORT, mutual TLS), es12-cert, es12-key\n"
		"  (its TLS identity; default tls-cert-nist / tls-key-nist),\n"
		"  smdp-clients (comma-separated 'ADDRESS CERT' pairs: each SM-DP+ allowed\n"
		"  on ES12, its address and its TLS client certificate, pinned),\n"
		"  admin-listen (ADDR:PORT for /healthz; default 127.0.0.1:0; off: none),\n"
		"  session-ttl (seconds an ES11 session lives; default 300), threads,\n"
		"  no-cert-time-check (0/1), log (0/1), log-format (json: one JSON object\n"
		"  per line, the default; text)\n");
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
		if (strcmp(kv->key[i], k) == 0)
			return kv->val[i];
	return NULL;
}

static void kv_free(struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->key[i]);
		free(kv->val[i]);
	}
	kv->n = 0;
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
		fprintf(stderr, "esim-smds: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[2048];
	int lineno = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof line, f)) {
		lineno++;
		char *l = trim(line);
		if (*l == '#' || *l == '\0')
			continue;
		char *eq = strchr(l, '=');
		if (!eq) {
			fprintf(stderr, "esim-smds: %s:%d: expected key = value\n", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		rc = kv_set(kv, trim(l), trim(eq + 1));
	}
	fclose(f);
	return rc;
}

static int parse_args(int argc, char **argv, struct kv *kv, char **pos, int max_pos)
{
	struct kv flags = {0};
	const char *config = NULL;
	int npos = 0, rc = 0;
	for (int i = 2; rc == 0 && i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "esim-smds: %s needs a value\n", argv[i]);
				rc = -1;
			} else if (strcmp(argv[i], "--config") == 0) {
				config = argv[++i];
			} else {
				kv_set(&flags, argv[i] + 2, argv[i + 1]);
				i++;
			}
		} else if (npos < max_pos) {
			pos[npos++] = argv[i];
		} else {
			fprintf(stderr, "esim-smds: unexpected argument '%s'\n", argv[i]);
			rc = -1;
		}
	}
	if (rc == 0 && config && kv_load(kv, config) != 0)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < flags.n; i++)
		kv_set(kv, flags.key[i], flags.val[i]);
	kv_free(&flags);
	return rc == 0 ? npos : -1;
}

static unsigned kv_uint(const struct kv *kv, const char *k)
{
	const char *v = kv_get(kv, k);
	return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

/* The SHA-256 of a certificate file's DER. */
static int cert_sha(const char *path, uint8_t sha[32])
{
	crypto_cert *c = NULL;
	esim_err err = crypto_cert_load_file(path, &c);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smds: smdp-clients: %s: %s\n", path, esim_strerror(err));
		return -1;
	}
	size_t len;
	const uint8_t *der = crypto_cert_der(c, &len);
	unsigned hl = 0;
	int ok = EVP_Digest(der, len, sha, &hl, EVP_sha256(), NULL);
	crypto_cert_free(c);
	return ok == 1 ? 0 : -1;
}

/* Strings of the config live in kv and in bufs (the comma lists split). */
struct cfg_bufs {
	char ci[SMDS_MAX_CI][512];
	char smdp[SMDS_MAX_SMDP][256];
};

static int make_config(const struct kv *kv, struct smds_config *c, struct cfg_bufs *b)
{
	memset(c, 0, sizeof *c);
	c->db_url = kv_get(kv, "db");
	c->fqdn = kv_get(kv, "fqdn");
	static const char *const curves[] = {"nist", "brp"};
	for (size_t i = 0; i < 2; i++) {
		char k[2][40];
		snprintf(k[0], 40, "dsauth-cert-%s", curves[i]);
		snprintf(k[1], 40, "dsauth-key-%s", curves[i]);
		if (!kv_get(kv, k[0]))
			continue;
		c->ids[c->n_ids].dsauth_cert = kv_get(kv, k[0]);
		c->ids[c->n_ids++].dsauth_key = kv_get(kv, k[1]);
	}
	char list[4096], *save = NULL;
	snprintf(list, sizeof list, "%s", kv_get(kv, "ci") ? kv_get(kv, "ci") : "");
	for (char *t = strtok_r(list, ",", &save); t && c->n_ci < SMDS_MAX_CI;
	     t = strtok_r(NULL, ",", &save)) {
		snprintf(b->ci[c->n_ci], sizeof b->ci[0], "%s", trim(t));
		c->ci_paths[c->n_ci] = b->ci[c->n_ci];
		c->n_ci++;
	}
	snprintf(list, sizeof list, "%s",
		 kv_get(kv, "smdp-clients") ? kv_get(kv, "smdp-clients") : "");
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		char *sp = strchr(t, ' ');
		if (!sp || c->n_smdps == SMDS_MAX_SMDP) {
			fprintf(stderr,
				"esim-smds: smdp-clients: expected 'ADDRESS CERT', not '%s'\n", t);
			return -1;
		}
		*sp = '\0';
		struct smds_smdp_cfg *s = &c->smdps[c->n_smdps];
		snprintf(b->smdp[c->n_smdps], sizeof b->smdp[0], "%s", t);
		s->address = b->smdp[c->n_smdps];
		if (cert_sha(trim(sp + 1), s->cert_sha256) != 0)
			return -1;
		c->n_smdps++;
	}
	c->session_ttl_s = kv_uint(kv, "session-ttl");
	c->no_cert_time_check = kv_uint(kv, "no-cert-time-check") != 0;
	c->log = kv_uint(kv, "log") != 0;
	const char *lf = kv_get(kv, "log-format");
	if (lf && esim_log_format_parse(lf, &c->log_format) != ESIM_OK) {
		fprintf(stderr, "esim-smds: log-format: expected json or text, not '%s'\n", lf);
		return -1;
	}
	if (!c->db_url || !c->fqdn || c->n_ids == 0) {
		fprintf(stderr,
			"esim-smds: db, fqdn and at least one dsauth-cert/-key are required\n");
		return -1;
	}
	return 0;
}

static int parse_hostport(const char *s, char *host, size_t n, uint16_t *port)
{
	const char *c = strrchr(s, ':');
	if (!c || (size_t)(c - s) >= n)
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	char *end = NULL;
	long p = strtol(c + 1, &end, 10);
	if (end == c + 1 || *end != '\0' || p < 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static int add_listener(smds *d, net_server *srv, const char *what, const char *listen,
			const char *cert, const char *key, const uint8_t (*pins)[32], size_t n_pins,
			int *id)
{
	char host[256];
	uint16_t port;
	if (parse_hostport(listen, host, sizeof host, &port) != 0) {
		fprintf(stderr, "esim-smds: bad listen address '%s'\n", listen);
		return -1;
	}
	struct net_listener_config lc = {
	    .address = host,
	    .port = port,
	    .tls = cert != NULL,
	    .cert_chain_file = cert,
	    .key_file = key,
	    .client_auth = pins ? NET_CLIENT_AUTH_REQUIRE : NET_CLIENT_AUTH_NONE,
	    .client_pins = pins,
	    .n_client_pins = n_pins,
	};
	esim_err err = net_server_add_listener(srv, &lc, id);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smds: listener %s: %s\n", listen, esim_strerror(err));
		return -1;
	}
	smds_log(d, ESIM_LOG_INFO, "listening on %s:%u (%s)", host, net_server_port(srv, *id),
		 what);
	return 0;
}

struct purge {
	smds *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

static void *purge_thread(void *arg)
{
	struct purge *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		pthread_mutex_unlock(&p->lock);
		esim_err err = smds_purge_sessions(p->d, NULL);
		if (err != ESIM_OK)
			smds_log(p->d, ESIM_LOG_ERROR, "session purge: %s", esim_strerror(err));
		pthread_mutex_lock(&p->lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 30;
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int cmd_serve(const struct kv *kv, smds *d)
{
	struct net_server_config sc = {.threads = kv_uint(kv, "threads")};
	net_server *srv = NULL;
	uint8_t(*pins)[32] = NULL;
	size_t n_pins = 0;
	int rc = 1, es11[2] = {-1, -1}, n11 = 0, es12 = -1, admin_id = -1;
	if (net_server_new(&sc, &srv) != ESIM_OK)
		return 1;
	static const char *const curves[] = {"nist", "brp"};
	for (int i = 0; i < 2; i++) {
		char k[3][32];
		snprintf(k[0], 32, "listen-%s", curves[i]);
		snprintf(k[1], 32, "tls-cert-%s", curves[i]);
		snprintf(k[2], 32, "tls-key-%s", curves[i]);
		if (!kv_get(kv, k[0]))
			continue;
		if (add_listener(d, srv, "ES11", kv_get(kv, k[0]), kv_get(kv, k[1]),
				 kv_get(kv, k[2]), NULL, 0, &es11[n11]) != 0)
			goto out;
		n11++;
	}
	if (kv_get(kv, "listen-es12")) {
		if (smds_smdp_pins(d, &pins, &n_pins) != ESIM_OK || n_pins == 0) {
			fprintf(stderr, "esim-smds: listen-es12 without smdp-clients: no SM-DP+ "
					"could register an event\n");
			goto out;
		}
		const char *cert =
		    kv_get(kv, "es12-cert") ? kv_get(kv, "es12-cert") : kv_get(kv, "tls-cert-nist");
		const char *key =
		    kv_get(kv, "es12-cert") ? kv_get(kv, "es12-key") : kv_get(kv, "tls-key-nist");
		if (!cert) {
			fprintf(stderr, "esim-smds: listen-es12 needs es12-cert / es12-key\n");
			goto out;
		}
		if (add_listener(d, srv, "ES12, mutual TLS", kv_get(kv, "listen-es12"), cert, key,
				 (const uint8_t(*)[32])pins, n_pins, &es12) != 0)
			goto out;
	}
	if (n11 == 0 && es12 < 0) {
		fprintf(stderr, "esim-smds: nothing to listen on (listen-nist / listen-brp / "
				"listen-es12)\n");
		goto out;
	}
	for (int i = 0; i < n11; i++)
		if (smds_add_routes(d, srv, es11[i], -1) != ESIM_OK)
			goto out;
	if (es12 >= 0 && smds_add_routes(d, srv, -1, es12) != ESIM_OK)
		goto out;
	const char *admin = kv_get(kv, "admin-listen") ? kv_get(kv, "admin-listen") : "127.0.0.1:0";
	if (strcmp(admin, "off") != 0) {
		if (add_listener(d, srv, "admin: /healthz", admin, NULL, NULL, NULL, 0,
				 &admin_id) != 0 ||
		    smds_add_admin_routes(d, srv, admin_id) != ESIM_OK)
			goto out;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct purge p = {.d = d};
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	pthread_t pt;
	if (net_server_start(srv) != ESIM_OK || pthread_create(&pt, NULL, purge_thread, &p) != 0) {
		smds_log(d, ESIM_LOG_ERROR, "cannot start");
		goto out;
	}
	smds_log(d, ESIM_LOG_INFO, "ready");
	sd_notify(0, "READY=1");
	int sig = 0;
	/* SIGHUP: the listeners' TLS certificates and keys read again (a
	 * renewal of DStls); SIGTERM, SIGINT: finish the requests in flight,
	 * then exit. CERT.DSauth is read at start only. */
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
		sd_notify(0, "RELOADING=1");
		int bad = -1;
		esim_err rerr = net_server_reload_tls(srv, &bad);
		if (rerr == ESIM_OK)
			smds_log(d, ESIM_LOG_INFO, "SIGHUP: TLS certificates reloaded");
		else
			smds_log(d, ESIM_LOG_ERROR,
				 "SIGHUP: TLS reload refused, listener %d: %s; the certificates in "
				 "use are kept",
				 bad, esim_strerror(rerr));
		sd_notify(0, "READY=1");
	}
	smds_log(d, ESIM_LOG_INFO, "signal %d, shutting down", sig);
	sd_notify(0, "STOPPING=1");
	net_server_stop(srv);
	pthread_mutex_lock(&p.lock);
	p.stop = true;
	pthread_cond_broadcast(&p.cond);
	pthread_mutex_unlock(&p.lock);
	pthread_join(pt, NULL);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	rc = 0;
out:
	net_server_free(srv);
	free(pins);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		esim_print_version("esim-smds");
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage();
		return argc < 2 ? 2 : 0;
	}
	struct kv kv = {0};
	char *pos[4];
	int npos = parse_args(argc, argv, &kv, pos, 4);
	struct smds_config c;
	struct cfg_bufs *b = calloc(1, sizeof *b);
	smds *d = NULL;
	int rc = 2;
	if (npos < 0 || !b || make_config(&kv, &c, b) != 0)
		goto out;
	esim_err err = smds_open(&c, &d);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-smds: cannot open the SM-DS: %s\n", esim_strerror(err));
		rc = 1;
		goto out;
	}
	if (strcmp(argv[1], "serve") == 0) {
		rc = cmd_serve(&kv, d);
	} else if (strcmp(argv[1], "events") == 0) {
		size_t n = 0;
		err = smds_event_count(d, npos > 0 ? pos[0] : NULL, &n);
		if (err == ESIM_OK)
			printf("%zu\n", n);
		else
			fprintf(stderr, "esim-smds: events: %s\n", esim_strerror(err));
		rc = err == ESIM_OK ? 0 : 1;
	} else {
		usage();
	}
out:
	smds_close(d);
	free(b);
	kv_free(&kv);
	return rc;
}
