/*
 * bench_download: the SM-DP+ load generator of issue 8. It starts the real
 * `esim-smdp` program as a child on a fresh private PKI (`esim-pki init`)
 * and SQLite database, seeds profiles and released orders through the
 * admin subcommands, then runs complete SGP.22 profile downloads (digest
 * section 6: initiateAuthentication, authenticateClient,
 * getBoundProfilePackage, handleNotification of the PIR) from C threads,
 * each with its own virtual eUICC (the euicc core, real ES10 crypto) and
 * one kept-alive TLS connection.
 *
 * The server's CPU time comes from /proc/<pid>/stat around the run, so it
 * is the SM-DP+'s own cost, not the load generator's. It is read against
 * the crypto floor: the signatures, verifications, key agreement and
 * SCP03t work SGP.22 makes mandatory for the server per download, priced
 * with rates measured in the same run on the same machine.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "bench_common.h"
#include "esim/cert.h"
#include "esim/crypto.h"
#include "esim/net.h"
#include "esim/pki.h"
#include "esim/rsp_saip.h"
#include "esim/store.h"
#include "esim/util.h"
#include "euicc/euicc.h"
#include "lpa_driver.h"

#ifndef BENCH_BIN_DIR
#define BENCH_BIN_DIR "."
#endif

#define BENCH_FQDN     "smdp.bench.example"
#define BENCH_TEMPLATE "89000123456789012341"
/* The EUM of `esim-pki init` permits the first 8 digits of this EID. */
#define BENCH_EID_PREFIX    "890490320000000000000000000000"
#define BENCH_MAX_INSTANCES 8

struct opts {
	size_t downloads;
	/* downloads before the measured window, on the same client threads
	 * and server connections: the SM-DP+'s pooled database connections
	 * open and prepare their statements there, so the window shows a
	 * running server's cost per download */
	size_t warmup;
	size_t total; /* warmup + downloads */
	size_t concurrency;
	const char *curve; /* "nist" or "brp" */
	const char *profile;
	const char *bin_dir;
	const char *tmp; /* parent of the run's directory (PKI, database, logs) */
	unsigned server_threads;
	const char *db;	    /* the SM-DP+'s database URL; NULL: SQLite in the run dir */
	unsigned instances; /* esim-smdp processes on that database */
	const char *hook;   /* run as `HOOK start` / `HOOK end` around the window */
	bool json;
	bool keep;
	/* a new TLS connection (full handshake, as a new device makes) for
	 * each download, instead of one per thread for the whole run */
	bool tls_per_download;
	/* the operator's callbacks (--callbacks): a counting receiver, and the
	 * outbox's pending rows printed every second */
	bool callbacks;
};

/* What the download threads share; results go to their own slots. */
struct run {
	const struct opts *o;
	const char *pki;
	char base_url[BENCH_MAX_INSTANCES][128];
	unsigned n_urls;
	char **mids;
	atomic_size_t next;
	size_t limit; /* the phase's end (warm-up, then window) */
	/* under lock: threads done warming up (or gone); window opened by main */
	size_t warm_done;
	bool window_open;
	pthread_cond_t cv;
	atomic_size_t failures;
	double *latency; /* seconds, one per download (NAN-free: failures are -1) */
	esim_err thread_err;
	pthread_mutex_t lock;
};

struct worker {
	struct run *r;
	unsigned idx;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread: the rates are per CPU second, as the
 * server's cost is, so that other load on the machine does not skew them. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_download [--downloads N] [--concurrency C] [--curve nist|brp]\n"
		"                      [--profile UPP.der] [--server-threads T] [--bin-dir DIR]\n"
		"                      [--tmp DIR] [--tls run|download] [--json] [--keep]\n"
		"                      [--db URL] [--instances K] [--hook CMD] [--callbacks]\n"
		"                      [--warmup W]\n"
		"  Runs N complete ES9+ downloads against a real esim-smdp (child process)\n"
		"  from C threads and reports throughput, latency, the server's CPU seconds\n"
		"  per download and that CPU as a multiple of the mandatory crypto.\n"
		"  Defaults: 200 downloads, concurrency 1, nist, a synthetic UPP, server\n"
		"  threads = nproc, programs from %s, the database under\n"
		"  --tmp (default /tmp; /dev/shm shows the cost of fsync), one TLS connection\n"
		"  per thread for the whole run (--tls download: one per download, each with\n"
		"  a full handshake, which then counts in the floor). --db postgresql://...\n"
		"  puts the SM-DP+ on that (empty) database; --instances K (at most 8) starts K\n"
		"  esim-smdp processes on it, client thread i talking to instance i mod K;\n"
		"  --callbacks: the operator has a callback URL (a counting receiver in the\n"
		"  bench), and the outbox's backlog is printed every second until it drains.\n"
		"  --hook CMD runs `CMD start` just before the first download and `CMD end`\n"
		"  just after the last (bench/pgcost.sh snapshots PostgreSQL's counters).\n"
		"  --warmup W: W downloads first, on the same threads and connections, outside\n"
		"  the measured window and the hook's (connections opened, statements prepared).\n",
		BENCH_BIN_DIR);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	long np = sysconf(_SC_NPROCESSORS_ONLN);
	*o = (struct opts){.downloads = 200,
			   .concurrency = 1,
			   .curve = "nist",
			   .bin_dir = BENCH_BIN_DIR,
			   .tmp = "/tmp",
			   .instances = 1,
			   .server_threads = np > 0 ? (unsigned)np : 2};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--callbacks") == 0) {
			o->callbacks = true;
			continue;
		}
		if (strcmp(a, "--keep") == 0) {
			o->keep = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || !v) {
			usage();
			return -1;
		}
		i++;
		if (strcmp(a, "--downloads") == 0)
			o->downloads = strtoul(v, NULL, 10);
		else if (strcmp(a, "--concurrency") == 0)
			o->concurrency = strtoul(v, NULL, 10);
		else if (strcmp(a, "--curve") == 0)
			o->curve = v;
		else if (strcmp(a, "--profile") == 0)
			o->profile = v;
		else if (strcmp(a, "--bin-dir") == 0)
			o->bin_dir = v;
		else if (strcmp(a, "--tmp") == 0)
			o->tmp = v;
		else if (strcmp(a, "--tls") == 0 && strcmp(v, "run") == 0)
			o->tls_per_download = false;
		else if (strcmp(a, "--tls") == 0 && strcmp(v, "download") == 0)
			o->tls_per_download = true;
		else if (strcmp(a, "--server-threads") == 0)
			o->server_threads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--db") == 0)
			o->db = v;
		else if (strcmp(a, "--instances") == 0)
			o->instances = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--hook") == 0)
			o->hook = v;
		else if (strcmp(a, "--warmup") == 0)
			o->warmup = strtoul(v, NULL, 10);
		else {
			usage();
			return -1;
		}
	}
	o->total = o->downloads + o->warmup;
	if (o->downloads == 0 || o->concurrency == 0 || o->concurrency > 1024 ||
	    o->warmup > 1000000 || o->downloads > 1000000 || o->instances == 0 ||
	    o->instances > BENCH_MAX_INSTANCES || (o->instances > 1 && o->db == NULL) ||
	    (strcmp(o->curve, "nist") != 0 && strcmp(o->curve, "brp") != 0)) {
		usage();
		return -1;
	}
	return 0;
}

/* ---- child processes -------------------------------------------------------- */

/* Run a shell command and keep its stdout (malloc'd, NUL-terminated). */
static esim_err run_capture(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return ESIM_E_IO;
	esim_buf b = ESIM_BUF_INIT;
	char chunk[4096];
	size_t n;
	esim_err err = ESIM_OK;
	while (err == ESIM_OK && (n = fread(chunk, 1, sizeof chunk, p)) > 0)
		err = esim_buf_append(&b, chunk, n);
	int st = pclose(p);
	if (err == ESIM_OK)
		err = esim_buf_append(&b, "", 1);
	if (err == ESIM_OK && (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
		fprintf(stderr, "bench: command failed: %s\n", cmd);
		err = ESIM_E_IO;
	}
	if (err != ESIM_OK) {
		esim_buf_free(&b);
		return err;
	}
	*out = (char *)b.data;
	return ESIM_OK;
}

static esim_err run_quiet(const char *cmd)
{
	char *out = NULL;
	esim_err err = run_capture(cmd, &out);
	free(out);
	return err;
}

/* utime + stime of every thread of pid, in seconds. */
/* CPU time of process pid, all its threads, in seconds: the sum of their
 * run times in /proc/<pid>/task/<tid>/schedstat, in nanoseconds (utime +
 * stime in /proc/<pid>/stat count in clock ticks of 10 ms, a few percent
 * of a short run). The server's threads live as long as it does, so none
 * of their time is lost with them. */
static esim_err proc_cpu(pid_t pid, double *out)
{
	char path[300];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return ESIM_E_IO;
	unsigned long long ns = 0;
	size_t tasks = 0;
	esim_err err = ESIM_OK;
	for (struct dirent *de = readdir(d); de && err == ESIM_OK; de = readdir(d)) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
		FILE *f = fopen(path, "r");
		unsigned long long v = 0;
		if (!f)
			continue; /* the thread just ended */
		if (fscanf(f, "%llu", &v) != 1)
			err = ESIM_E_IO;
		fclose(f);
		ns += v;
		tasks++;
	}
	closedir(d);
	if (err == ESIM_OK && tasks == 0)
		err = ESIM_E_IO;
	if (err == ESIM_OK)
		*out = (double)ns / 1e9;
	return err;
}

/* ---- seeding ------------------------------------------------------------------ */

/* ICCID number i: 8900098765, i in 8 digits, the Luhn check digit that
 * the import requires (static buffer). */
static const char *bench_iccid(size_t i)
{
	static char out[24];
	snprintf(out, sizeof out, "8900098765%08zu", i % 100000000u);
	out[18] = (char)('0' + rsp_iccid_luhn_digit(out, 18));
	out[19] = '\0';
	return out;
}

static esim_err write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return ESIM_E_IO;
	int ok = fwrite(data, 1, len, f) == len;
	ok = fclose(f) == 0 && ok;
	return ok ? ESIM_OK : ESIM_E_IO;
}

static esim_err write_text(const char *path, const char *text)
{
	return write_bytes(path, text, strlen(text));
}

/* The SM-DP+ config: both identities (the eUICC picks by its CI), one
 * ES9+ listener with the DPtls of the curve under test. */
static esim_err write_config(const struct opts *o, const char *dir, const char *pki,
			     const char *conf)
{
	char text[8192], db[1024];
	if (o->db)
		snprintf(db, sizeof db, "%s", o->db);
	else
		snprintf(db, sizeof db, "sqlite:%s/smdp.db", dir);
	int k = snprintf(text, sizeof text,
			 "db = %s\nfqdn = %s\nthreads = %u\nlog = 0\n"
			 "ci = %s/nist/ci.der,%s/brp/ci.der\n"
			 "listen-%s = 127.0.0.1:0\ntls-cert-%s = %s/%s/dptls.pem\n"
			 "tls-key-%s = %s/%s/dptls.key.pem\n",
			 db, BENCH_FQDN, o->server_threads, pki, pki, o->curve, o->curve, pki,
			 o->curve, o->curve, pki, o->curve);
	static const char *const curves[] = {"nist", "brp"};
	for (int i = 0; i < 2; i++)
		k += snprintf(text + k, sizeof text - (size_t)k,
			      "dpauth-cert-%s = %s/%s/dpauth.der\n"
			      "dpauth-key-%s = %s/%s/dpauth.key.pem\n"
			      "dppb-cert-%s = %s/%s/dppb.der\n"
			      "dppb-key-%s = %s/%s/dppb.key.pem\n",
			      curves[i], pki, curves[i], curves[i], pki, curves[i], curves[i], pki,
			      curves[i], curves[i], pki, curves[i]);
	if (o->callbacks) /* required for delivery; the receiver is plain HTTP */
		k += snprintf(text + k, sizeof text - (size_t)k, "operator-ca = %s/nist/ci.pem\n",
			      pki);
	if ((size_t)k >= sizeof text)
		return ESIM_E_TOO_LARGE;
	return write_text(conf, text);
}

/* Operator, profile type, N profiles and N released orders (matchingIds
 * into mids), all through `esim-smdp` admin subcommands. */
static char callback_url[128]; /* set before seed() with --callbacks */

static esim_err seed(const struct opts *o, const char *dir, const char *pki, const char *conf,
		     char **mids, size_t *upp_len)
{
	char upp_path[700], csv_path[700], cmd[4096];
	uint8_t *upp = NULL;
	esim_err err;
	if (o->profile) {
		err = esim_read_file(o->profile, 4u << 20, &upp, upp_len);
		snprintf(upp_path, sizeof upp_path, "%s", o->profile);
	} else {
		err = rsp_saip_make_test_upp(BENCH_TEMPLATE, &upp, upp_len);
		snprintf(upp_path, sizeof upp_path, "%s/upp.der", dir);
		if (err == ESIM_OK)
			err = write_bytes(upp_path, upp, *upp_len);
	}
	free(upp);
	if (err != ESIM_OK) {
		fprintf(stderr, "bench: profile: %s\n", esim_strerror(err));
		return err;
	}
	const char *smdp = o->bin_dir;
	snprintf(cmd, sizeof cmd,
		 "'%s/esim-smdp' add-operator --config '%s' BENCH '%s/nist/operator.pem' %s", smdp,
		 conf, pki, o->callbacks ? callback_url : "");
	err = run_quiet(cmd);
	if (err == ESIM_OK) {
		snprintf(cmd, sizeof cmd,
			 "'%s/esim-smdp' add-type --config '%s' BENCH BENCH '%s' esimkit bench",
			 smdp, conf, upp_path);
		err = run_quiet(cmd);
	}
	if (err != ESIM_OK)
		return err;
	snprintf(csv_path, sizeof csv_path, "%s/batch.csv", dir);
	FILE *f = fopen(csv_path, "w");
	if (!f)
		return ESIM_E_IO;
	for (size_t i = 1; i <= o->total; i++)
		fprintf(f, "%s,001010%09zu\n", bench_iccid(i), i);
	if (fclose(f) != 0)
		return ESIM_E_IO;
	snprintf(cmd, sizeof cmd, "'%s/esim-smdp' import --config '%s' BENCH '%s'", smdp, conf,
		 csv_path);
	err = run_quiet(cmd);
	snprintf(cmd, sizeof cmd, "'%s/esim-smdp' order --config '%s' BENCH BENCH", smdp, conf);
	for (size_t i = 0; err == ESIM_OK && i < o->total; i++) {
		char *out = NULL;
		err = run_capture(cmd, &out);
		const char *m = err == ESIM_OK ? strstr(out, "matchingId ") : NULL;
		if (err == ESIM_OK && !m)
			err = ESIM_E_IO;
		if (err == ESIM_OK) {
			m += strlen("matchingId ");
			size_t n = strcspn(m, "\r\n");
			mids[i] = strndup(m, n);
			if (!mids[i])
				err = ESIM_E_NOMEM;
		}
		free(out);
	}
	return err;
}

/* ---- the eUICC of one thread ------------------------------------------------- */

/* A virtual eUICC with its own EID (a CERT.EUICC issued now under the
 * PKI's EUM): the SM-DP+ keeps notifications unique per EID + seqNumber,
 * so eUICCs sharing an EID would have their PIRs dropped as replays. */
static esim_err open_euicc(const char *pki, const char *curve, unsigned idx, euicc **out)
{
	char p[3][700], prefix[40], eid[CRYPTO_EID_DIGITS + 1];
	snprintf(p[0], 700, "%s/%s/eum.der", pki, curve);
	snprintf(p[1], 700, "%s/%s/eum.key.pem", pki, curve);
	snprintf(p[2], 700, "%s/%s/ci.der", pki, curve);
	snprintf(prefix, sizeof prefix, "8904903200000000000000%08u", idx + 1);
	uint8_t *eum = NULL;
	size_t eum_len = 0;
	EVP_PKEY *eum_key = NULL;
	struct crypto_issued iss = {0};
	esim_err err = crypto_pki_eid_complete(prefix, eid);
	if (err == ESIM_OK)
		err = esim_read_file(p[0], 1u << 16, &eum, &eum_len);
	if (err == ESIM_OK)
		err = crypto_key_load_private_file(p[1], &eum_key);
	if (err == ESIM_OK) {
		struct crypto_issue_params ip = {
		    .kind = CRYPTO_ISSUE_EUICC,
		    .curve = strcmp(curve, "nist") == 0 ? CRYPTO_CURVE_P256
							: CRYPTO_CURVE_BRAINPOOLP256R1,
		    .eid = eid,
		    .issuer_der = eum,
		    .issuer_der_len = eum_len,
		    .issuer_key = eum_key,
		    .not_before = time(NULL) - 3600,
		    .not_after = CRYPTO_PKI_NOT_AFTER_NEVER,
		};
		err = crypto_issue(&ip, &iss);
	}
	if (err == ESIM_OK) {
		struct euicc_config ec;
		memset(&ec, 0, sizeof ec);
		ec.db_url = ":memory:";
		ec.identities[0].cert.p = iss.der;
		ec.identities[0].cert.len = iss.der_len;
		ec.identities[0].key = iss.key;
		ec.identities[0].eum.p = eum;
		ec.identities[0].eum.len = eum_len;
		ec.n_identities = 1;
		ec.ci_paths[0] = p[2];
		ec.n_ci_paths = 1;
		ec.capacity = UINT64_C(1) << 34; /* every profile of the run stays installed */
		err = euicc_open(&ec, out);
	}
	crypto_issued_clear(&iss);
	EVP_PKEY_free(eum_key);
	free(eum);
	return err;
}

static esim_err es10_cb(void *ctx, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	return euicc_es10(ctx, cmd, len, resp);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	euicc *e = NULL;
	net_client *cli = NULL;
	char ca[700];
	snprintf(ca, sizeof ca, "%s/%s/ci.pem", r->pki, r->o->curve);
	struct net_client_config cc = {.ca_file = ca};
	esim_err err = open_euicc(r->pki, r->o->curve, w->idx, &e);
	if (err == ESIM_OK)
		err = net_client_new(&cc, &cli);
	if (err != ESIM_OK) {
		pthread_mutex_lock(&r->lock);
		r->thread_err = err;
		r->warm_done++; /* never in the window */
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->lock);
		euicc_close(e);
		return NULL;
	}
	struct lpa_http h = {cli, r->base_url[w->idx % r->n_urls]};
	struct lpa_driver drv = {es10_cb, e, lpa_es9_http, &h, BENCH_FQDN};
	for (bool window = false;;) {
		size_t i = atomic_fetch_add(&r->next, 1);
		if (i >= r->limit) {
			if (window)
				break;
			/* the warm-up is over: main opens the window */
			window = true;
			pthread_mutex_lock(&r->lock);
			r->warm_done++;
			pthread_cond_broadcast(&r->cv);
			while (!r->window_open)
				pthread_cond_wait(&r->cv, &r->lock);
			pthread_mutex_unlock(&r->lock);
			continue;
		}
		double t0 = now_s();
		if (r->o->tls_per_download) {
			/* a new client has no TLS session to resume */
			net_client_free(cli);
			cli = NULL;
			if ((err = net_client_new(&cc, &cli)) != ESIM_OK) {
				atomic_fetch_add(&r->failures, 1);
				r->latency[i] = -1;
				continue;
			}
			h.client = cli;
		}
		struct lpa_session s;
		lpa_session_init(&s, &drv);
		err = lpa_download(&s, r->mids[i], NULL);
		double t1 = now_s();
		if (err != ESIM_OK) {
			if (atomic_fetch_add(&r->failures, 1) < 5)
				fprintf(stderr, "bench: download %zu: %s (%s %s/%s) %s\n", i,
					esim_strerror(err), s.failed ? "failed" : "", s.subject,
					s.reason, cli ? net_client_errmsg(cli) : "");
			r->latency[i] = -1;
		} else {
			r->latency[i] = t1 - t0;
		}
		lpa_session_clear(&s);
	}
	net_client_free(cli);
	euicc_close(e);
	return NULL;
}

/* ---- crypto rates --------------------------------------------------------------- */

struct rates {
	double sign, verify, keygen, ecdh; /* operations per CPU second */
	double scp03t_pkg;		   /* packages per second (protect, all segments) */
	/* Not in the floor, measured to explain what is above it: parsing
	 * an X.509 certificate (CERT.EUICC) and importing a public point. */
	double cert_parse, point_import;
	/* TLS key exchange with X25519 (the group the LPA's client offers
	 * first): one key pair and one derivation, per second */
	double x25519_kex;
};

/* X25519 key pair + derivation with a peer's public key: the server's
 * share of a full TLS handshake's key exchange. */
static esim_err measure_x25519(double secs, double *out)
{
	EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (!peer)
		return ESIM_E_CRYPTO_OPENSSL;
	esim_err err = ESIM_OK;
	double t0, t;
	size_t n;
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs; n++, t = cpu_s()) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
		EVP_PKEY_CTX *c = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
		uint8_t sh[32];
		size_t shl = sizeof sh;
		if (!c || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_derive_set_peer(c, peer) <= 0 ||
		    EVP_PKEY_derive(c, sh, &shl) <= 0)
			err = ESIM_E_CRYPTO_OPENSSL;
		esim_wipe(sh, sizeof sh);
		EVP_PKEY_CTX_free(c);
		EVP_PKEY_free(k);
	}
	*out = (double)n / (t - t0);
	EVP_PKEY_free(peer);
	return err;
}

static esim_err measure_rates(crypto_curve curve, size_t pkg_len, const uint8_t *cert,
			      size_t cert_len, double secs, struct rates *out)
{
	EVP_PKEY *k = NULL, *peer = NULL;
	uint8_t msg[200], sig[CRYPTO_RAW_SIG_LEN], pt[CRYPTO_EC_POINT_LEN], shs[CRYPTO_ECDH_LEN];
	memset(msg, 0x5a, sizeof msg);
	esim_err err = crypto_key_generate(curve, &k);
	if (err == ESIM_OK)
		err = crypto_key_generate(curve, &peer);
	if (err == ESIM_OK)
		err = crypto_key_public_point(peer, pt);
	if (err == ESIM_OK)
		err = crypto_ecdsa_sign(k, msg, sizeof msg, sig);
	double t0, t;
	size_t n;
	/* sign and verify ~secs each; key generation and ECDH a third of that */
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs; n++, t = cpu_s())
		err = crypto_ecdsa_sign(k, msg, sizeof msg, sig);
	out->sign = (double)n / (t - t0);
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs; n++, t = cpu_s())
		err = crypto_ecdsa_verify(k, msg, sizeof msg, sig, sizeof sig);
	out->verify = (double)n / (t - t0);
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs / 3; n++, t = cpu_s()) {
		EVP_PKEY *g = NULL; /* as the server makes otSK.DP: on SK.DPpb's group */
		err = crypto_key_generate_like(k, &g);
		EVP_PKEY_free(g);
	}
	out->keygen = (double)n / (t - t0);
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs / 3; n++, t = cpu_s())
		err = crypto_ecdh_point(k, pt, sizeof pt, shs);
	out->ecdh = (double)n / (t - t0);
	esim_wipe(shs, sizeof shs);
	uint8_t *plain = calloc(pkg_len ? pkg_len : 1, 1);
	esim_buf b = ESIM_BUF_INIT;
	if (!plain && err == ESIM_OK)
		err = ESIM_E_NOMEM;
	struct crypto_bpp_keys keys;
	memset(&keys, 0x11, sizeof keys);
	size_t seg = crypto_scp03t_max_plain(CRYPTO_SCP03T_TAG_PROF);
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs / 3; n++, t = cpu_s()) {
		crypto_scp03t st;
		crypto_scp03t_init(&st, &keys);
		b.len = 0;
		for (size_t off = 0; err == ESIM_OK && off < pkg_len; off += seg) {
			size_t l = pkg_len - off < seg ? pkg_len - off : seg;
			err =
			    crypto_scp03t_protect(&st, CRYPTO_SCP03T_TAG_PROF, plain + off, l, &b);
		}
		crypto_scp03t_clear(&st);
	}
	out->scp03t_pkg = (double)n / (t - t0);
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs / 3; n++, t = cpu_s()) {
		crypto_cert *c = NULL;
		err = crypto_cert_load(cert, cert_len, &c);
		crypto_cert_free(c);
	}
	out->cert_parse = (double)n / (t - t0);
	for (n = 0, t0 = cpu_s(), t = t0; err == ESIM_OK && t - t0 < secs / 3; n++, t = cpu_s()) {
		EVP_PKEY *q = NULL;
		err = crypto_key_from_point_like(k, pt, sizeof pt, &q);
		EVP_PKEY_free(q);
	}
	out->point_import = (double)n / (t - t0);
	esim_buf_free(&b);
	free(plain);
	EVP_PKEY_free(k);
	EVP_PKEY_free(peer);
	return err;
}

/* ---- report ----------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static void cpu_model(char *out, size_t n)
{
	snprintf(out, n, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "model name", 10) == 0) {
			const char *c = strchr(line, ':');
			if (c) {
				c += 1 + (c[1] == ' ');
				snprintf(out, n, "%.*s", (int)strcspn(c, "\n"), c);
			}
			break;
		}
	}
	fclose(f);
}

/* Per download the server must make 3 signatures (serverSignature1,
 * smdpSignature2, smdpSign of BF23), 4 verifications (CERT.EUICC by the
 * EUM, euiccSignature1, euiccSignature2, the PIR's euiccSignPIR), one
 * one-time key pair, one ECDH and the SCP03t encryption and MAC of the
 * package. SGP.22 also has CERT.EUM verified by the CI, but CERT.EUM is the
 * same for every eUICC of a manufacturer, so a server verifies each
 * distinct one once (esim-smdp does): not per download. With a TLS
 * connection per download (--tls download) add the server's part of a full
 * handshake: one signature with the DPtls key and an X25519 exchange. */
#define FLOOR_SIGN   3
#define FLOOR_VERIFY 4

static double floor_s(const struct rates *r, bool tls_per_download)
{
	double f = FLOOR_SIGN / r->sign + FLOOR_VERIFY / r->verify + 1 / r->keygen + 1 / r->ecdh +
		   1 / r->scp03t_pkg;
	if (tls_per_download)
		f += 1 / r->sign + 1 / r->x25519_kex;
	return f;
}

/* ---- --callbacks: the operator's receiver and the backlog ----------------- */

static atomic_size_t callbacks_got;

static esim_err callback_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	atomic_fetch_add(&callbacks_got, 1);
	return net_response_set(resp, 204, NULL);
}

static esim_err receiver_start(net_server **out)
{
	struct net_server_config sc = {.threads = 2};
	struct net_listener_config lc = {.address = "127.0.0.1"};
	int l = -1;
	esim_err err = net_server_new(&sc, out);
	if (err == ESIM_OK)
		err = net_server_add_listener(*out, &lc, &l);
	if (err == ESIM_OK)
		err = net_server_add_route(*out, l, "POST",
					   "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
					   callback_handler, NULL);
	if (err == ESIM_OK)
		err = net_server_start(*out);
	if (err == ESIM_OK)
		snprintf(callback_url, sizeof callback_url,
			 "http://127.0.0.1:%u/gsma/rsp2/es2plus/handleDownloadProgressInfo",
			 net_server_port(*out, l));
	return err;
}

struct sampler {
	const char *db;
	struct run *r;
	double t0;
	atomic_bool downloads_done, stop;
	size_t peak;
	double drained_at; /* seconds after t0 when the backlog was 0 after the downloads */
};

/* Every second: downloads done, callbacks queued but not yet delivered
 * (the outbox's pending rows), callbacks the operator got. */
static void *sampler_main(void *arg)
{
	struct sampler *sm = arg;
	store *s = NULL;
	if (store_open(sm->db, &s) != ESIM_OK) {
		fprintf(stderr, "bench: cannot open %s for the backlog\n", sm->db);
		return NULL;
	}
	while (!atomic_load(&sm->stop)) {
		usleep(sm->drained_at > 0 ? 1000000 : 250000);
		store_stmt *st;
		int64_t pending = -1;
		if (store_prepare(s,
				  "SELECT COUNT(*) FROM smdp_outbox WHERE done = 0 AND failed = 0",
				  &st) == ESIM_OK) {
			bool row;
			if (store_step(st, &row) == ESIM_OK && row)
				pending = store_col_int64(st, 0);
			store_finalize(st);
		}
		double t = now_s() - sm->t0;
		size_t done = atomic_load(&sm->r->next);
		done = done > sm->r->o->warmup ? done - sm->r->o->warmup : 0;
		if (done > sm->r->o->downloads)
			done = sm->r->o->downloads;
		if (pending > (int64_t)sm->peak)
			sm->peak = (size_t)pending;
		static double last;
		if (t - last >= 1.0 || (pending == 0 && atomic_load(&sm->downloads_done))) {
			last = t;
			fprintf(stderr,
				"backlog t=%5.1fs downloads=%zu pending=%lld delivered=%zu\n", t,
				done, (long long)pending, atomic_load(&callbacks_got));
		}
		if (pending == 0 && atomic_load(&sm->downloads_done)) {
			sm->drained_at = t;
			break;
		}
	}
	store_close(s);
	return NULL;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	char tmpl[512];
	snprintf(tmpl, sizeof tmpl, "%s/esim-bench-XXXXXX", o.tmp);
	char *dir = mkdtemp(tmpl);
	if (!dir) {
		perror("bench: mkdtemp");
		return 1;
	}
	char pki[600], conf[700], log[700], cmd[2048], eid[CRYPTO_EID_DIGITS + 1];
	snprintf(pki, sizeof pki, "%s/pki", dir);
	snprintf(conf, sizeof conf, "%s/smdp.conf", dir);
	snprintf(log, sizeof log, "%s/smdp.log", dir);
	struct run r = {.o = &o, .pki = pki};
	pthread_mutex_init(&r.lock, NULL);
	r.mids = calloc(o.total, sizeof *r.mids);
	r.latency = calloc(o.total, sizeof *r.latency);
	r.limit = o.warmup;
	pthread_cond_init(&r.cv, NULL);
	pid_t srv[BENCH_MAX_INSTANCES] = {0};
	int rc = 1;
	size_t upp_len = 0;
	esim_err err = r.mids && r.latency ? ESIM_OK : ESIM_E_NOMEM;
	if (err == ESIM_OK)
		err = crypto_pki_eid_complete(BENCH_EID_PREFIX, eid);
	if (err == ESIM_OK) {
		snprintf(cmd, sizeof cmd, "'%s/esim-pki' init '%s' --eid %s --curve both",
			 o.bin_dir, pki, eid);
		err = run_quiet(cmd);
	}
	net_server *receiver = NULL;
	if (err == ESIM_OK && o.callbacks)
		err = receiver_start(&receiver);
	if (err == ESIM_OK)
		err = write_config(&o, dir, pki, conf);
	double t_seed = now_s();
	if (err == ESIM_OK)
		err = seed(&o, dir, pki, conf, r.mids, &upp_len);
	t_seed = now_s() - t_seed;
	/* every instance has its own listener port (127.0.0.1:0) and log */
	for (unsigned k = 0; err == ESIM_OK && k < o.instances; k++) {
		unsigned port = 0;
		if (k > 0)
			snprintf(log, sizeof log, "%s/smdp-%u.log", dir, k);
		err = bench_start_smdp(o.bin_dir, conf, log, &srv[k], &port);
		if (err == ESIM_OK) {
			snprintf(r.base_url[k], sizeof r.base_url[k], "https://127.0.0.1:%u", port);
			r.n_urls = k + 1;
			/* for attaching a profiler to the server (bench/README.md) */
			fprintf(stderr, "bench: esim-smdp pid %d on port %u\n", (int)srv[k], port);
		}
	}
	if (err != ESIM_OK) {
		fprintf(stderr, "bench: setup failed: %s (dir %s)\n", esim_strerror(err), dir);
		goto out;
	}
	pthread_t *th = calloc(o.concurrency, sizeof *th);
	struct worker *ws = calloc(o.concurrency, sizeof *ws);
	double cpu0 = 0, cpu1 = 0;
	struct rusage ru0, ru1;
	err = th && ws ? ESIM_OK : ESIM_E_NOMEM;
	if (err == ESIM_OK && o.warmup)
		fprintf(stderr, "bench: %zu warm-up downloads\n", o.warmup);
	size_t started = 0;
	for (size_t i = 0; err == ESIM_OK && i < o.concurrency; i++) {
		ws[i] = (struct worker){&r, (unsigned)i};
		if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0)
			err = ESIM_E_NOMEM;
		else
			started++;
	}
	/* the window: from here, with every thread done warming up, to the
	 * last download */
	pthread_mutex_lock(&r.lock);
	while (r.warm_done < started)
		pthread_cond_wait(&r.cv, &r.lock);
	pthread_mutex_unlock(&r.lock);
	if (err == ESIM_OK && atomic_load(&r.failures) > 0) {
		fprintf(stderr, "bench: %zu warm-up downloads failed\n", atomic_load(&r.failures));
		err = ESIM_E_IO;
	}
	fprintf(stderr, "bench: %zu downloads start\n", o.downloads);
	if (err == ESIM_OK && o.hook) {
		snprintf(cmd, sizeof cmd, "%s start", o.hook);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: hook failed: %s\n", cmd);
	}
	getrusage(RUSAGE_SELF, &ru0);
	for (unsigned k = 0; err == ESIM_OK && k < o.instances; k++) {
		double c = 0;
		err = proc_cpu(srv[k], &c);
		cpu0 += c;
	}
	double t0 = now_s();
	char dburl[1024];
	if (o.db)
		snprintf(dburl, sizeof dburl, "%s", o.db);
	else
		snprintf(dburl, sizeof dburl, "sqlite:%s/smdp.db", dir);
	struct sampler sm = {.db = dburl, .r = &r, .t0 = t0};
	pthread_t smt;
	bool sampling =
	    err == ESIM_OK && o.callbacks && pthread_create(&smt, NULL, sampler_main, &sm) == 0;
	pthread_mutex_lock(&r.lock);
	/* after a failure the threads find the window empty and leave */
	atomic_store(&r.next, o.warmup);
	r.limit = err == ESIM_OK ? o.total : o.warmup;
	r.window_open = true;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.lock);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	double wall = now_s() - t0;
	if (sampling) {
		/* the outbox keeps up when the backlog drains right after the
		 * downloads; give it two minutes at most */
		atomic_store(&sm.downloads_done, true);
		for (int i = 0; i < 1200 && sm.drained_at == 0; i++)
			usleep(100000);
		atomic_store(&sm.stop, true);
		pthread_join(smt, NULL);
		fprintf(stderr,
			"callbacks: %zu delivered; backlog peak %zu; downloads took %.1f s, backlog"
			" drained %.1f s after the start (%.1f s after the last download)\n",
			atomic_load(&callbacks_got), sm.peak, wall, sm.drained_at,
			sm.drained_at > 0 ? sm.drained_at - wall : -1.0);
	}
	for (unsigned k = 0; err == ESIM_OK && k < o.instances; k++) {
		double c = 0;
		err = proc_cpu(srv[k], &c);
		cpu1 += c;
	}
	getrusage(RUSAGE_SELF, &ru1);
	if (o.hook) {
		snprintf(cmd, sizeof cmd, "%s end", o.hook);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: hook failed: %s\n", cmd);
	}
	free(th);
	free(ws);
	if (err == ESIM_OK && r.thread_err != ESIM_OK)
		err = r.thread_err;
	if (err != ESIM_OK) {
		fprintf(stderr, "bench: run failed: %s\n", esim_strerror(err));
		goto out;
	}
	for (unsigned k = 0; k < o.instances; k++) {
		kill(srv[k], SIGTERM);
		waitpid(srv[k], NULL, 0);
		srv[k] = 0;
	}

	/* rates, on an otherwise idle machine now that the server is gone */
	struct rates p256 = {0}, cur = {0};
	crypto_curve curve =
	    strcmp(o.curve, "nist") == 0 ? CRYPTO_CURVE_P256 : CRYPTO_CURVE_BRAINPOOLP256R1;
	char cert_path[2][700];
	uint8_t *cert[2] = {NULL, NULL};
	size_t cert_len[2] = {0, 0};
	snprintf(cert_path[0], 700, "%s/nist/euicc.der", pki);
	snprintf(cert_path[1], 700, "%s/%s/euicc.der", pki, o.curve);
	err = esim_read_file(cert_path[0], 1u << 16, &cert[0], &cert_len[0]);
	if (err == ESIM_OK)
		err = esim_read_file(cert_path[1], 1u << 16, &cert[1], &cert_len[1]);
	if (err == ESIM_OK)
		err = measure_rates(CRYPTO_CURVE_P256, upp_len, cert[0], cert_len[0], 1.0, &p256);
	if (err == ESIM_OK)
		err = measure_x25519(0.3, &p256.x25519_kex);
	cur = p256;
	if (err == ESIM_OK && curve != CRYPTO_CURVE_P256)
		err = measure_rates(curve, upp_len, cert[1], cert_len[1], 1.0, &cur);
	cur.x25519_kex = p256.x25519_kex;
	free(cert[0]);
	free(cert[1]);
	if (err != ESIM_OK) {
		fprintf(stderr, "bench: crypto rates: %s\n", esim_strerror(err));
		goto out;
	}

	size_t fails = atomic_load(&r.failures), ok = o.downloads - fails;
	double *lat = malloc(o.downloads * sizeof *lat);
	size_t nl = 0;
	for (size_t i = o.warmup; lat && i < o.total; i++)
		if (r.latency[i] >= 0)
			lat[nl++] = r.latency[i];
	if (lat)
		qsort(lat, nl, sizeof *lat, cmp_double);
	double client_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
			    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
			    (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
			    (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	double srv_cpu = (cpu1 - cpu0) / (double)(ok ? ok : 1);
	double fl = floor_s(&cur, o.tls_per_download);
	char model[256];
	cpu_model(model, sizeof model);
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	double p50 = pct(lat, nl, 0.50), p90 = pct(lat, nl, 0.90), p99 = pct(lat, nl, 0.99),
	       pmax = nl ? lat[nl - 1] : 0;
	if (o.json) {
		json_t *j = json_pack(
		    "{s:s,s:I,s:s,s:s,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:f,s:{s:f,s:f,s:f,s:"
		    "f},"
		    "s:f,"
		    "s:f,s:f,s:f,s:{s:f,s:f},s:{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f},s:f,s:f,s:f}",
		    "cpu_model", model, "nproc", (json_int_t)nproc, "curve", o.curve, "tls",
		    o.tls_per_download ? "download" : "run", "downloads", (json_int_t)o.downloads,
		    "concurrency", (json_int_t)o.concurrency, "profile",
		    o.profile ? o.profile : "synthetic", "profile_bytes", (json_int_t)upp_len,
		    "server_threads", (json_int_t)o.server_threads, "instances",
		    (json_int_t)o.instances, "ok", (json_int_t)ok, "failures", (json_int_t)fails,
		    "wall_s", wall, "warmup", (json_int_t)o.warmup, "downloads_per_s",
		    (double)ok / wall, "latency_s", "p50", p50, "p90", p90, "p99", p99, "max", pmax,
		    "server_cpu_s_total", cpu1 - cpu0, "server_cpu_s_per_download", srv_cpu,
		    "client_cpu_s_per_download", client_cpu / (double)(ok ? ok : 1), "seed_s",
		    t_seed, "p256", "sign_per_s", p256.sign, "verify_per_s", p256.verify,
		    "curve_rates", "sign_per_s", cur.sign, "verify_per_s", cur.verify,
		    "keygen_per_s", cur.keygen, "ecdh_per_s", cur.ecdh, "scp03t_pkg_per_s",
		    cur.scp03t_pkg, "cert_parse_per_s", cur.cert_parse, "point_import_per_s",
		    cur.point_import, "x25519_kex_per_s", cur.x25519_kex, "floor_s_per_download",
		    fl, "floor_multiple", srv_cpu / fl, "target_multiple", 1.5);
		char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(j);
	} else {
		printf("machine            %s, nproc %ld\n", model, nproc);
		printf("run                %zu downloads, concurrency %zu, curve %s, profile %s "
		       "(%zu bytes), server threads %u, TLS connection per %s\n",
		       o.downloads, o.concurrency, o.curve, o.profile ? o.profile : "synthetic",
		       upp_len, o.server_threads, o.tls_per_download ? "download" : "thread");
		printf("instances          %u esim-smdp on %s\n", o.instances,
		       o.db ? "the --db database" : "SQLite");
		printf("result             %zu ok, %zu failed, %.2f s wall (seeding %.1f s "
		       "and %zu warm-up downloads before, not counted)\n",
		       ok, fails, wall, t_seed, o.warmup);
		printf("throughput         %.1f downloads/s\n", (double)ok / wall);
		printf("latency (ms)       p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", p50 * 1e3,
		       p90 * 1e3, p99 * 1e3, pmax * 1e3);
		printf("server CPU         %.2f ms per download (%.2f s total, all instances)\n",
		       srv_cpu * 1e3, cpu1 - cpu0);
		printf("client CPU         %.2f ms per download (eUICC + LPA + TLS client)\n",
		       client_cpu * 1e3 / (double)(ok ? ok : 1));
		printf("P-256 rates        sign %.0f/s  verify %.0f/s\n", p256.sign, p256.verify);
		if (curve != CRYPTO_CURVE_P256)
			printf("%-6s rates       sign %.0f/s  verify %.0f/s\n", o.curve, cur.sign,
			       cur.verify);
		printf("%-6s rates       keygen %.0f/s  ecdh %.0f/s  scp03t %.0f packages/s\n",
		       o.curve, cur.keygen, cur.ecdh, cur.scp03t_pkg);
		printf("not in the floor   X.509 parse %.0f/s  point import %.0f/s\n",
		       cur.cert_parse, cur.point_import);
		if (o.tls_per_download)
			printf("TLS key exchange   X25519 %.0f/s\n", cur.x25519_kex);
		printf("crypto floor       %.3f ms per download (%d sign, %d verify, keygen, ECDH, "
		       "SCP03t%s)\n",
		       fl * 1e3, FLOOR_SIGN, FLOOR_VERIFY,
		       o.tls_per_download ? "; TLS: 1 sign, X25519" : "");
		printf("floor multiple     %.2fx (target <= 2x)\n", srv_cpu / fl);
	}
	free(lat);
	rc = fails == 0 ? 0 : 1;
out:
	for (unsigned k = 0; k < BENCH_MAX_INSTANCES; k++) {
		if (srv[k] > 0) {
			kill(srv[k], SIGTERM);
			waitpid(srv[k], NULL, 0);
		}
	}
	for (size_t i = 0; r.mids && i < o.total; i++)
		free(r.mids[i]);
	free(r.mids);
	free(r.latency);
	net_server_free(receiver);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cv);
	if (!o.keep) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: could not remove %s\n", dir);
	} else {
		fprintf(stderr, "bench: kept %s\n", dir);
	}
	return rc;
}
