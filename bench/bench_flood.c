/*
 * bench_flood: an initiateAuthentication flood against the real `esim-smdp
 * serve` (issue 13, point 6). ES9+ initiateAuthentication (digest 6.2)
 * needs no credential and leaves a session row behind; this program fires
 * N of them from C threads over HTTPS (one kept-alive connection and one
 * virtual eUICC each, so every call is a real, signed one) and samples the
 * session table's row count twice a second, during the flood and for a
 * while after, to show whether the table stays bounded: the server's
 * sweep (session-purge-interval) removes sessions past session-ttl, and
 * max-pending-sessions caps those not yet authenticated (the calls beyond
 * it get HTTP 503).
 *
 * The server runs on a fresh private PKI (`esim-pki init`) and SQLite
 * database in a directory of its own; the row count is read through a
 * connection of this program to that database.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "esim/pki.h"
#include "esim/store.h"
#include "esim/util.h"
#include "euicc/euicc.h"
#include "lpa_driver.h"

#ifndef BENCH_BIN_DIR
#define BENCH_BIN_DIR "."
#endif

#define FLOOD_FQDN "smdp.flood.example"

struct opts {
	size_t calls, concurrency;
	unsigned ttl, purge_every, max_pending, tail_s;
	const char *bin_dir, *tmp;
	bool keep;
};

struct run {
	const struct opts *o;
	char pki[600], base_url[128];
	atomic_size_t next, ok, busy, failed;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_flood [--calls N] [--concurrency C] [--session-ttl S]\n"
			"                   [--purge-interval S] [--max-pending M] [--tail S]\n"
			"                   [--bin-dir DIR] [--tmp DIR] [--keep]\n"
			"  N initiateAuthentication calls (default 15000) from C threads (4);\n"
			"  the server runs with session-ttl S (10), session-purge-interval (2)\n"
			"  and max-pending-sessions M (10000); rows are sampled every 0.5 s\n"
			"  during the flood and for --tail seconds after it (default ttl + 2\n"
			"  intervals). --purge-interval 1000000 --max-pending 1000000 shows the\n"
			"  table without either defence.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.calls = 15000,
			   .concurrency = 4,
			   .ttl = 10,
			   .purge_every = 2,
			   .max_pending = 10000,
			   .bin_dir = BENCH_BIN_DIR,
			   .tmp = "/tmp"};
	bool tail_set = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--keep") == 0) {
			o->keep = true;
			continue;
		}
		if (!v || strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return -1;
		if (strcmp(a, "--calls") == 0)
			o->calls = strtoul(v, NULL, 10);
		else if (strcmp(a, "--concurrency") == 0)
			o->concurrency = strtoul(v, NULL, 10);
		else if (strcmp(a, "--session-ttl") == 0)
			o->ttl = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--purge-interval") == 0)
			o->purge_every = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--max-pending") == 0)
			o->max_pending = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--tail") == 0) {
			o->tail_s = (unsigned)strtoul(v, NULL, 10);
			tail_set = true;
		} else if (strcmp(a, "--bin-dir") == 0)
			o->bin_dir = v;
		else if (strcmp(a, "--tmp") == 0)
			o->tmp = v;
		else
			return -1;
		i++;
	}
	if (!tail_set)
		o->tail_s = o->ttl + 2 * (o->purge_every < 60 ? o->purge_every : 0) + 1;
	return o->calls && o->concurrency && o->ttl ? 0 : -1;
}

static esim_err es10_cb(void *ctx, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	return euicc_es10(ctx, cmd, len, resp);
}

static void *flood_main(void *arg)
{
	struct run *r = arg;
	char p[4][700];
	snprintf(p[0], 700, "%s/nist/euicc.der", r->pki);
	snprintf(p[1], 700, "%s/nist/euicc.key.pem", r->pki);
	snprintf(p[2], 700, "%s/nist/eum.der", r->pki);
	snprintf(p[3], 700, "%s/nist/ci.der", r->pki);
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = ":memory:";
	ec.identities[0].cert_path = p[0];
	ec.identities[0].key_path = p[1];
	ec.identities[0].eum_path = p[2];
	ec.n_identities = 1;
	ec.ci_paths[0] = p[3];
	ec.n_ci_paths = 1;
	char ca[700];
	snprintf(ca, sizeof ca, "%s/nist/ci.pem", r->pki);
	struct net_client_config cc = {.ca_file = ca};
	euicc *e = NULL;
	net_client *cli = NULL;
	if (euicc_open(&ec, &e) != ESIM_OK || net_client_new(&cc, &cli) != ESIM_OK) {
		fprintf(stderr, "bench_flood: cannot open an eUICC or a client\n");
		euicc_close(e);
		return NULL;
	}
	struct lpa_http h = {cli, r->base_url};
	struct lpa_driver drv = {es10_cb, e, lpa_es9_http, &h, FLOOD_FQDN};
	while (atomic_fetch_add(&r->next, 1) < r->o->calls) {
		struct lpa_session s;
		lpa_session_init(&s, &drv);
		esim_err err = lpa_dl_initiate(&s);
		if (err == ESIM_OK && !s.failed)
			atomic_fetch_add(&r->ok, 1);
		else if (s.http_status == 503)
			atomic_fetch_add(&r->busy, 1);
		else if (atomic_fetch_add(&r->failed, 1) < 3)
			fprintf(stderr, "bench_flood: call failed: %s (HTTP %d %s/%s)\n",
				esim_strerror(err), s.http_status, s.subject, s.reason);
		lpa_session_clear(&s);
	}
	net_client_free(cli);
	euicc_close(e);
	return NULL;
}

static esim_err rows(store *s, size_t *all, size_t *started)
{
	store_stmt *st;
	esim_err err = store_prepare(
	    s, "SELECT COUNT(*), COALESCE(SUM(state = 'started'), 0) FROM smdp_sessions", &st);
	if (err != ESIM_OK)
		return err;
	bool row;
	err = store_step(st, &row);
	*all = err == ESIM_OK && row ? (size_t)store_col_int64(st, 0) : 0;
	*started = err == ESIM_OK && row ? (size_t)store_col_int64(st, 1) : 0;
	store_finalize(st);
	return err;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o) != 0) {
		usage();
		return 2;
	}
	struct run r = {.o = &o};
	char dir[512], conf[700], log[700], db[700], cmd[2048], eid[CRYPTO_EID_DIGITS + 1];
	snprintf(dir, sizeof dir, "%s/bench_flood.XXXXXX", o.tmp);
	if (!mkdtemp(dir)) {
		perror("bench_flood: mkdtemp");
		return 1;
	}
	snprintf(r.pki, sizeof r.pki, "%s/pki", dir);
	snprintf(conf, sizeof conf, "%s/smdp.conf", dir);
	snprintf(log, sizeof log, "%s/smdp.log", dir);
	snprintf(db, sizeof db, "sqlite:%s/smdp.db", dir);
	if (crypto_pki_eid_complete("890490320000000000000000000001", eid) != ESIM_OK)
		return 1;
	snprintf(cmd, sizeof cmd, "'%s/esim-pki' init '%s' --eid %s --curve nist >/dev/null",
		 o.bin_dir, r.pki, eid);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_flood: esim-pki init failed\n");
		return 1;
	}
	FILE *f = fopen(conf, "w");
	if (!f)
		return 1;
	fprintf(f,
		"db = %s\nfqdn = %s\nlog = 0\nci = %s/nist/ci.der\n"
		"listen-nist = 127.0.0.1:0\ntls-cert-nist = %s/nist/dptls.pem\n"
		"tls-key-nist = %s/nist/dptls.key.pem\n"
		"dpauth-cert-nist = %s/nist/dpauth.der\ndpauth-key-nist = %s/nist/dpauth.key.pem\n"
		"dppb-cert-nist = %s/nist/dppb.der\ndppb-key-nist = %s/nist/dppb.key.pem\n"
		"session-ttl = %u\nsession-purge-interval = %u\nmax-pending-sessions = %u\n",
		db, FLOOD_FQDN, r.pki, r.pki, r.pki, r.pki, r.pki, r.pki, r.pki, o.ttl,
		o.purge_every, o.max_pending);
	fclose(f);
	pid_t pid = 0;
	unsigned port = 0;
	if (bench_start_smdp(o.bin_dir, conf, log, &pid, &port) != ESIM_OK) {
		if (pid)
			kill(pid, SIGKILL);
		return 1;
	}
	snprintf(r.base_url, sizeof r.base_url, "https://localhost:%u", port);
	store *s = NULL;
	if (store_open(db, &s) != ESIM_OK) {
		kill(pid, SIGTERM);
		return 1;
	}
	printf("# %zu initiateAuthentication calls, %zu threads; session-ttl %u s,"
	       " purge every %u s, max-pending-sessions %u\n",
	       o.calls, o.concurrency, o.ttl, o.purge_every, o.max_pending);
	printf("#   t(s)   sent      ok    busy  failed    rows  started\n");
	pthread_t *th = calloc(o.concurrency, sizeof *th);
	size_t n_th = 0;
	for (size_t i = 0; th && i < o.concurrency; i++)
		if (pthread_create(&th[n_th], NULL, flood_main, &r) == 0)
			n_th++;
	double t0 = now_s(), flood_end = 0;
	size_t max_rows = 0;
	for (;;) {
		usleep(500000);
		size_t sent = atomic_load(&r.ok) + atomic_load(&r.busy) + atomic_load(&r.failed);
		size_t all = 0, started = 0;
		rows(s, &all, &started);
		if (all > max_rows)
			max_rows = all;
		double t = now_s() - t0;
		printf("%8.1f %6zu %7zu %7zu %7zu %7zu %8zu\n", t, sent, atomic_load(&r.ok),
		       atomic_load(&r.busy), atomic_load(&r.failed), all, started);
		fflush(stdout);
		if (sent >= o.calls && flood_end == 0)
			flood_end = t;
		if (flood_end > 0 && t - flood_end >= o.tail_s)
			break;
	}
	for (size_t i = 0; i < n_th; i++)
		pthread_join(th[i], NULL);
	free(th);
	size_t all = 0, started = 0;
	rows(s, &all, &started);
	store_close(s);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	printf("# flood took %.1f s (%.0f calls/s); ok %zu, busy (503) %zu, failed %zu;"
	       " rows at most %zu, at the end %zu\n",
	       flood_end, flood_end > 0 ? (double)o.calls / flood_end : 0.0, atomic_load(&r.ok),
	       atomic_load(&r.busy), atomic_load(&r.failed), max_rows, all);
	if (!o.keep) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_flood: could not remove %s\n", dir);
	} else {
		printf("# kept %s\n", dir);
	}
	return atomic_load(&r.failed) ? 1 : 0;
}
