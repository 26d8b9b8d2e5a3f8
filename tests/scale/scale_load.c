/*
 * scale_load: the helper program of tests/scale/smdp_failover.sh (issue 18,
 * scale-out). Two jobs:
 *
 *   scale_load pg DIR
 *       starts a throwaway PostgreSQL (tests/common/pg_helper.c), creates
 *       one database, writes its postgresql:// URL to DIR/pg.url and stays
 *       until SIGTERM/SIGINT (then stops the server and removes its files).
 *       Exit 77 when PostgreSQL is not installed (1 under CI=true).
 *
 *   scale_load order --db URL --fqdn ADDR --pki DIR --operator NAME
 *                    --type TYPE --count N --out FILE
 *       creates and releases N orders (smdp_admin_order, as `esim-smdp
 *       order` does, in one process, four at a time) and writes their matchingIds, one a
 *       line, to FILE.
 *
 *   scale_load run --url https://HOST:PORT --fqdn ADDR --pki DIR
 *                  --mids FILE [--concurrency C] [--attempts N]
 *       runs one complete SGP.22 profile download (digest section 6:
 *       initiateAuthentication, authenticateClient, getBoundProfilePackage,
 *       LoadBoundProfilePackage, handleNotification of the PIR) for each
 *       matchingId of FILE, C at a time, each thread with its own virtual
 *       eUICC, through the given URL (HAProxy in front of several SM-DP+
 *       instances). A download whose connection breaks or gets a 5xx or a
 *       Failed answer is retried as an LPA may: before the package is
 *       loaded, a new RSP session (initiateAuthentication with the same
 *       matchingId: the order stays downloadable until installed); after
 *       it, the PIR stays in the eUICC's notification list and is sent
 *       again (digest 8.3) until the SM-DP+ acknowledges it. Every retry
 *       opens a new TLS connection. Prints the figures (downloads, wall
 *       time, rate, retries, the longest gap between two completed
 *       downloads) and exits 0 only when every download ended installed
 *       and acknowledged.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "esim/crypto.h"
#include "esim/net.h"
#include "esim/pki.h"
#include "esim/smdp.h"
#include "esim/util.h"
#include "euicc/euicc.h"
#include "lpa_driver.h"
#include "pg_helper.h"
#include "testutil.h"

#define MAX_MIDS 100000

struct run {
	const char *url, *fqdn, *pki;
	char **mids;
	size_t n_mids;
	unsigned attempts;
	atomic_size_t next, done, failed, retries, pir_retries;
	pthread_mutex_t lock;
	double t0, last_done, max_gap, first_err, last_err;
	esim_err thread_err;
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

/* ---- pg ------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int cmd_pg(const char *dir)
{
	struct pg_env env;
	int rc = pg_start(&env);
	if (rc == 77)
		return test_component_missing_status("PostgreSQL", env.why);
	if (rc != 0) {
		pg_stop(&env);
		return 1;
	}
	char url[512], path[1024], tmp[1100];
	if (pg_create_db(&env, url, sizeof url) != 0) {
		pg_stop(&env);
		return 1;
	}
	snprintf(path, sizeof path, "%s/pg.url", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", url) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "scale_load: cannot write %s: %s\n", path, strerror(errno));
		pg_stop(&env);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stop_flag)
		pause();
	pg_stop(&env);
	return 0;
}

/* ---- order ----------------------------------------------------------------------- */

struct order_job {
	smdp *d;
	const char *opname, *type;
	size_t count;
	char (*mids)[64];
	atomic_size_t next;
	pthread_mutex_t lock;
	esim_err err;
};

static void *order_main(void *arg)
{
	struct order_job *j = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->count)
			break;
		char iccid[64];
		esim_err err =
		    smdp_admin_order(j->d, j->opname, j->type, NULL, NULL, NULL, iccid, j->mids[i]);
		if (err != ESIM_OK) {
			pthread_mutex_lock(&j->lock);
			j->err = err;
			pthread_mutex_unlock(&j->lock);
			break;
		}
	}
	return NULL;
}

static int cmd_order(int argc, char **argv)
{
	const char *db = NULL, *fqdn = NULL, *pki = NULL, *opname = NULL, *type = NULL, *out = NULL;
	size_t count = 0;
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (strcmp(a, "--db") == 0)
			db = v;
		else if (strcmp(a, "--fqdn") == 0)
			fqdn = v;
		else if (strcmp(a, "--pki") == 0)
			pki = v;
		else if (strcmp(a, "--operator") == 0)
			opname = v;
		else if (strcmp(a, "--type") == 0)
			type = v;
		else if (strcmp(a, "--count") == 0)
			count = strtoul(v, NULL, 10);
		else if (strcmp(a, "--out") == 0)
			out = v;
		else {
			fprintf(stderr, "scale_load order: unknown option %s\n", a);
			return 2;
		}
	}
	if (!db || !fqdn || !pki || !opname || !type || !out || count == 0) {
		fprintf(stderr, "scale_load order: --db, --fqdn, --pki, --operator, --type, "
				"--out and --count (> 0) are required\n");
		return 2;
	}
	char p[5][700];
	snprintf(p[0], 700, "%s/nist/dpauth.pem", pki);
	snprintf(p[1], 700, "%s/nist/dpauth.key.pem", pki);
	snprintf(p[2], 700, "%s/nist/dppb.pem", pki);
	snprintf(p[3], 700, "%s/nist/dppb.key.pem", pki);
	snprintf(p[4], 700, "%s/nist/ci.pem", pki);
	struct smdp_config c;
	memset(&c, 0, sizeof c);
	c.db_url = db;
	c.fqdn = fqdn;
	c.ids[0] = (struct smdp_identity_cfg){p[0], p[1], p[2], p[3]};
	c.n_ids = 1;
	c.ci_paths[0] = p[4];
	c.n_ci = 1;
	smdp *d = NULL;
	esim_err err = smdp_open(&c, &d);
	struct order_job job = {.d = d,
				.opname = opname,
				.type = type,
				.count = count,
				.lock = PTHREAD_MUTEX_INITIALIZER};
	job.mids = calloc(count, sizeof *job.mids);
	if (err == ESIM_OK && !job.mids)
		err = ESIM_E_NOMEM;
	/* four callers at once: each order is a durable commit */
	pthread_t th[4];
	size_t started = 0;
	for (size_t i = 0; err == ESIM_OK && i < 4; i++) {
		if (pthread_create(&th[i], NULL, order_main, &job) != 0)
			err = ESIM_E_NOMEM;
		else
			started++;
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (err == ESIM_OK)
		err = job.err;
	FILE *f = err == ESIM_OK ? fopen(out, "w") : NULL;
	if (err == ESIM_OK && !f)
		err = ESIM_E_IO;
	for (size_t i = 0; err == ESIM_OK && i < count; i++)
		if (fprintf(f, "%s\n", job.mids[i]) < 0)
			err = ESIM_E_IO;
	if (f && fclose(f) != 0 && err == ESIM_OK)
		err = ESIM_E_IO;
	free(job.mids);
	smdp_close(d);
	if (err != ESIM_OK) {
		fprintf(stderr, "scale_load order: %s\n", esim_strerror(err));
		return 1;
	}
	return 0;
}

/* ---- the eUICC of one thread ---------------------------------------------------- */

/* A virtual eUICC with its own EID (CERT.EUICC issued now under the PKI's
 * NIST EUM): notifications are unique per EID + seqNumber at the SM-DP+. */
static esim_err open_euicc(const char *pki, unsigned idx, euicc **out)
{
	char p[3][700], prefix[40], eid[CRYPTO_EID_DIGITS + 1];
	snprintf(p[0], 700, "%s/nist/eum.der", pki);
	snprintf(p[1], 700, "%s/nist/eum.key.pem", pki);
	snprintf(p[2], 700, "%s/nist/ci.der", pki);
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
		    .curve = CRYPTO_CURVE_P256,
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

/* ---- run -------------------------------------------------------------------------- */

static void note_error(struct run *r, size_t i, const char *step, esim_err err,
		       const struct lpa_session *s, net_client *cli)
{
	double t = now_s() - r->t0;
	pthread_mutex_lock(&r->lock);
	if (r->first_err < 0)
		r->first_err = t;
	r->last_err = t;
	pthread_mutex_unlock(&r->lock);
	size_t k = atomic_fetch_add(&r->retries, 1);
	if (k < 8)
		fprintf(stderr, "scale_load: %.2f s: download %zu, %s: %s %s%s%s%s %s (retrying)\n",
			t, i, step, esim_strerror(err), s && s->failed ? "Failed " : "",
			s && s->failed ? s->subject : "", s && s->failed ? "/" : "",
			s && s->failed ? s->reason : "", cli ? net_client_errmsg(cli) : "");
}

/* A new TLS connection (the old one may go to a dead instance). */
static esim_err renew(const struct net_client_config *cc, net_client **cli, struct lpa_http *h)
{
	net_client_free(*cli);
	*cli = NULL;
	esim_err err = net_client_new(cc, cli);
	h->client = *cli;
	return err;
}

static void backoff(unsigned attempt)
{
	unsigned ms = 50u * (attempt < 8 ? attempt : 8);
	usleep(ms * 1000u);
}

/* One download with retries; ESIM_OK when installed and its PIR
 * acknowledged. */
static esim_err one_download(struct run *r, size_t i, const struct lpa_driver *drv,
			     const struct net_client_config *cc, net_client **cli,
			     struct lpa_http *h)
{
	esim_err err = ESIM_E_ARG;
	bool loaded = false;
	for (unsigned a = 1; a <= r->attempts && !loaded; a++) {
		struct lpa_session s;
		lpa_session_init(&s, drv);
		const char *step = "initiateAuthentication";
		err = lpa_dl_initiate(&s);
		if (err == ESIM_OK && !s.failed) {
			step = "authenticateClient";
			err = lpa_dl_authenticate(&s, r->mids[i]);
		}
		if (err == ESIM_OK && !s.failed) {
			step = "getBoundProfilePackage";
			err = lpa_dl_prepare(&s, NULL);
		}
		if (err == ESIM_OK && !s.failed) {
			step = "LoadBoundProfilePackage";
			err = lpa_dl_load(&s);
			if (err == ESIM_OK && !s.pir_success) {
				fprintf(stderr,
					"scale_load: download %zu: the eUICC's PIR is an error\n",
					i);
				lpa_session_clear(&s);
				return ESIM_E_RSP_EUICC_ERROR;
			}
			if (err == ESIM_OK)
				loaded = true;
		}
		if (loaded) {
			/* the PIR: first from this session, then from the
			 * eUICC's list (it stays there until acknowledged) */
			err = lpa_dl_notify(&s);
			for (unsigned b = 1; err != ESIM_OK && b <= r->attempts; b++) {
				note_error(r, i, "handleNotification", err, &s, *cli);
				atomic_fetch_add(&r->pir_retries, 1);
				backoff(b);
				size_t sent = 0;
				err = renew(cc, cli, h);
				if (err == ESIM_OK)
					err = lpa_send_notifications(drv, &sent);
				if (err == ESIM_OK && sent == 0)
					err = ESIM_E_NET_HTTP_STATUS; /* not acknowledged */
			}
		} else {
			if (err == ESIM_OK && s.failed)
				err = ESIM_E_RSP_EUICC_ERROR;
			note_error(r, i, step, err, &s, *cli);
			backoff(a);
			esim_err e2 = renew(cc, cli, h);
			if (e2 != ESIM_OK)
				err = e2;
		}
		lpa_session_clear(&s);
	}
	return loaded ? err : (err == ESIM_OK ? ESIM_E_RSP_EUICC_ERROR : err);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	euicc *e = NULL;
	net_client *cli = NULL;
	char ca[700];
	snprintf(ca, sizeof ca, "%s/nist/ci.pem", r->pki);
	struct net_client_config cc = {.ca_file = ca};
	esim_err err = open_euicc(r->pki, w->idx, &e);
	if (err == ESIM_OK)
		err = net_client_new(&cc, &cli);
	if (err != ESIM_OK) {
		pthread_mutex_lock(&r->lock);
		r->thread_err = err;
		pthread_mutex_unlock(&r->lock);
		net_client_free(cli);
		euicc_close(e);
		return NULL;
	}
	struct lpa_http h = {cli, r->url};
	struct lpa_driver drv = {es10_cb, e, lpa_es9_http, &h, r->fqdn};
	for (;;) {
		size_t i = atomic_fetch_add(&r->next, 1);
		if (i >= r->n_mids)
			break;
		err = one_download(r, i, &drv, &cc, &cli, &h);
		if (err != ESIM_OK) {
			atomic_fetch_add(&r->failed, 1);
			fprintf(stderr, "scale_load: download %zu (%s) gave up: %s\n", i,
				r->mids[i], esim_strerror(err));
			continue;
		}
		atomic_fetch_add(&r->done, 1);
		double t = now_s();
		pthread_mutex_lock(&r->lock);
		if (t - r->last_done > r->max_gap)
			r->max_gap = t - r->last_done;
		r->last_done = t;
		pthread_mutex_unlock(&r->lock);
	}
	net_client_free(cli);
	euicc_close(e);
	return NULL;
}

static esim_err read_mids(const char *path, struct run *r)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "scale_load: cannot open %s: %s\n", path, strerror(errno));
		return ESIM_E_IO;
	}
	r->mids = calloc(MAX_MIDS, sizeof *r->mids);
	char line[256];
	esim_err err = r->mids ? ESIM_OK : ESIM_E_NOMEM;
	while (err == ESIM_OK && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		if (r->n_mids == MAX_MIDS) {
			fprintf(stderr, "scale_load: %s: more than %d matchingIds\n", path,
				MAX_MIDS);
			err = ESIM_E_TOO_LARGE;
		} else if (!(r->mids[r->n_mids++] = strdup(line))) {
			err = ESIM_E_NOMEM;
		}
	}
	fclose(f);
	if (err == ESIM_OK && r->n_mids == 0) {
		fprintf(stderr, "scale_load: %s holds no matchingId\n", path);
		err = ESIM_E_ARG;
	}
	return err;
}

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: scale_load pg DIR\n"
	    "       scale_load order --db URL --fqdn ADDR --pki DIR --operator NAME --type TYPE\n"
	    "                        --count N --out FILE\n"
	    "       scale_load run --url https://HOST:PORT --fqdn ADDR --pki DIR --mids FILE\n"
	    "                      [--concurrency C] [--attempts N]\n");
	return 2;
}

static int cmd_run(int argc, char **argv)
{
	struct run r = {.attempts = 30, .first_err = -1, .last_err = -1};
	const char *mids = NULL;
	size_t conc = 16;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--url") == 0)
			r.url = v;
		else if (strcmp(a, "--fqdn") == 0)
			r.fqdn = v;
		else if (strcmp(a, "--pki") == 0)
			r.pki = v;
		else if (strcmp(a, "--mids") == 0)
			mids = v;
		else if (strcmp(a, "--concurrency") == 0)
			conc = strtoul(v, NULL, 10);
		else if (strcmp(a, "--attempts") == 0)
			r.attempts = (unsigned)strtoul(v, NULL, 10);
		else
			return usage();
	}
	if (!r.url || !r.fqdn || !r.pki || !mids || conc == 0 || conc > 256 || r.attempts == 0)
		return usage();
	pthread_mutex_init(&r.lock, NULL);
	esim_err err = read_mids(mids, &r);
	pthread_t th[256];
	struct worker ws[256];
	size_t started = 0;
	r.t0 = r.last_done = now_s();
	for (size_t i = 0; err == ESIM_OK && i < conc; i++) {
		ws[i] = (struct worker){&r, (unsigned)i};
		if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0)
			err = ESIM_E_NOMEM;
		else
			started++;
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	double wall = now_s() - r.t0;
	if (err == ESIM_OK && r.thread_err != ESIM_OK)
		err = r.thread_err;
	size_t done = atomic_load(&r.done), failed = atomic_load(&r.failed);
	if (err == ESIM_OK) {
		printf("downloads          %zu of %zu installed and acknowledged, %zu gave up\n",
		       done, r.n_mids, failed);
		printf("wall time          %.2f s (concurrency %zu)\n", wall, conc);
		printf("rate               %.1f downloads/s\n", (double)done / wall);
		printf("retries            %zu (of which PIR resends %zu)\n",
		       atomic_load(&r.retries), atomic_load(&r.pir_retries));
		if (r.first_err >= 0)
			printf("errors seen        from %.2f s to %.2f s of the run\n", r.first_err,
			       r.last_err);
		else
			printf("errors seen        none\n");
		printf("fail-over gap      %.3f s (longest time between two completed "
		       "downloads)\n",
		       r.max_gap);
	} else {
		fprintf(stderr, "scale_load: %s\n", esim_strerror(err));
	}
	for (size_t i = 0; i < r.n_mids; i++)
		free(r.mids[i]);
	free(r.mids);
	pthread_mutex_destroy(&r.lock);
	return err == ESIM_OK && failed == 0 && done == r.n_mids ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "pg") == 0)
		return cmd_pg(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "order") == 0)
		return cmd_order(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc, argv);
	return usage();
}
