/*
 * esim-euicc: the virtual eUICC as a program (ARCHITECTURE.md, "the four
 * programs"). It opens one eUICC (its SQLite database and identity) and
 * serves it through the APDU front on any number of sockets (the LPA's
 * "socket" driver, docs/euicc-socket.md) and, optionally, as the card in
 * vsmartcard's vpcd reader of pcscd, so that any PC/SC program sees it.
 *
 * Each transport runs in its own thread with its own APDU front (its own
 * logical channels), as the separate interfaces of one card would; the
 * card logic behind them is shared and serialised by one mutex. SIGTERM and
 * SIGINT write to a pipe that every serving loop watches, so the program
 * stops cleanly: every state change was committed before it was answered,
 * so there is nothing to flush.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "apdu/sockio.h"
#include "esim/store.h"
#include "euicc/apdu_front.h"
#include "euicc/euicc.h"
#include "euicc/transport.h"
#include "esim/util.h"

#define MAX_LISTEN 8

static int stop_pipe[2] = {-1, -1};  /* written by the signal handler only */
static int stats_pipe[2] = {-1, -1}; /* SIGUSR1 (--stats) writes here */

static void on_signal(int sig)
{
	int saved = errno;
	if (write(sig == SIGUSR1 ? stats_pipe[1] : stop_pipe[1], "x", 1) < 0) {
		/* nothing to do: the pipe is non-full in practice */
	}
	errno = saved;
}

/* --stats: APDUs and bytes through every front, for bench/e2e.sh. Only
 * counts (never APDU contents), updated with relaxed atomics. */
struct card_stats {
	uint64_t commands;	 /* command APDUs received */
	uint64_t command_bytes;	 /* their bytes (header + data + Le) */
	uint64_t response_bytes; /* response bytes sent (data + SW) */
	int fd;			 /* the --stats file, O_APPEND; -1 without --stats */
	uint64_t lines;
};

struct card {
	euicc *e;
	pthread_mutex_t lock;
	bool trace;
	struct card_stats stats;
};

struct transport {
	struct card *card;
	euicc_apdu_front *front;
	const char *spec; /* listen spec or vpcd host:port */
	int listen_fd;	  /* -1 for vpcd */
	char vpcd_host[256];
	uint16_t vpcd_port;
	pthread_t thread;
	bool started;
	bool short_apdus; /* --max-block under 256: no extended length in the ATR */
	esim_err result;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: esim-euicc --db PATH IDENTITY [--listen SPEC]... [--vpcd HOST:PORT]\n"
		"                  [--trace] [--capacity BYTES] [--max-notifications N]\n"
		"                  [--root-ds ADDRESS] [--stats FILE] [--max-block N]\n"
		"       esim-euicc info --db PATH IDENTITY\n"
		"       esim-euicc --help | --version   this help | the version\n"
		"IDENTITY is either\n"
		"  --pki DIR     a PKI from 'esim-pki init': DIR/nist and/or DIR/brp with\n"
		"                euicc.der, euicc.key.pem, eum.der (the identity) and ci.der\n"
		"                (trusted)\n"
		"or\n"
		"  --cert F --key F --eum F   one identity (repeat the three for a second)\n"
		"  --ci F                     a trusted CI certificate (repeatable)\n"
		"SPEC: unix:PATH, tcp:HOST:PORT or HOST:PORT. --vpcd connects to vpcd\n"
		"(default port %d). --trace prints every APDU and ES10 function to stderr.\n"
		"--stats FILE appends a line 'stats SEQ commands N command_bytes N\n"
		"response_bytes N' (totals since start) at start, on SIGUSR1 and at exit.\n"
		"--max-block N (tests of LPAs): STORE DATA blocks over N bytes are answered\n"
		"6700 (wrong length); under 256, the ATR declares no extended length.\n",
		EUICC_VPCD_DEFAULT_PORT);
}

/* ---- trace and the serialised ES10 handler ---- */

static void trace_apdu(void *ctx, bool command, const uint8_t *apdu, size_t len)
{
	struct transport *t = ctx;
	(void)t;
	char line[2 * 64 + 8];
	size_t n = len > 64 ? 64 : len;
	for (size_t i = 0; i < n; i++)
		snprintf(line + 2 * i, 3, "%02X", apdu[i]);
	const char *name = "";
	/* the first STORE DATA block starts with the ES10 command's tag */
	if (command && len > 5 && apdu[1] == 0xE2 && apdu[3] == 0x00 && apdu[4] != 0)
		name = euicc_es10_name(apdu + 5, len - 5);
	fprintf(stderr, "%s %s%s (%zu bytes)%s%s\n", command ? ">>" : "<<", line,
		len > n ? "..." : "", len, name[0] ? " " : "", name);
}

static void stats_apdu(void *ctx, bool command, const uint8_t *apdu, size_t len)
{
	struct transport *t = ctx;
	struct card_stats *st = &t->card->stats;
	if (command) {
		__atomic_fetch_add(&st->commands, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&st->command_bytes, (uint64_t)len, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&st->response_bytes, (uint64_t)len, __ATOMIC_RELAXED);
	}
	if (t->card->trace)
		trace_apdu(ctx, command, apdu, len);
}

/* One line, written whole with one write(2) to the O_APPEND file, so that
 * a reader never sees half of it. Only the stats thread and main (after
 * that thread ended) call this. */
static void stats_write(struct card_stats *st)
{
	char line[160];
	int n = snprintf(line, sizeof line,
			 "stats %" PRIu64 " commands %" PRIu64 " command_bytes %" PRIu64
			 " response_bytes %" PRIu64 "\n",
			 st->lines++, __atomic_load_n(&st->commands, __ATOMIC_RELAXED),
			 __atomic_load_n(&st->command_bytes, __ATOMIC_RELAXED),
			 __atomic_load_n(&st->response_bytes, __ATOMIC_RELAXED));
	if (n > 0 && write(st->fd, line, (size_t)n) != n)
		fprintf(stderr, "esim-euicc: cannot write the --stats file: %s\n", strerror(errno));
}

/* Writes a line for every SIGUSR1 until the program stops. */
static void *stats_thread(void *arg)
{
	struct card_stats *st = arg;
	for (;;) {
		struct pollfd pf[2] = {{.fd = stats_pipe[0], .events = POLLIN},
				       {.fd = stop_pipe[0], .events = POLLIN}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (pf[1].revents != 0)
			return NULL;
		char drain[64];
		if (read(stats_pipe[0], drain, sizeof drain) > 0)
			stats_write(st);
	}
}

static esim_err card_es10(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len,
			  esim_buf *resp, uint16_t *sw)
{
	struct transport *t = ctx;
	pthread_mutex_lock(&t->card->lock);
	esim_err err = euicc_front_es10(t->card->e, channel, cmd, len, resp, sw);
	pthread_mutex_unlock(&t->card->lock);
	if (t->card->trace)
		fprintf(stderr, "   ES10 %s on channel %u: %zu bytes in, %zu out, SW %04X%s%s\n",
			euicc_es10_name(cmd, len), channel, len, resp->len, *sw,
			err != ESIM_OK ? ", " : "", err != ESIM_OK ? esim_strerror(err) : "");
	return err;
}

static void card_reset(void *ctx)
{
	struct transport *t = ctx;
	pthread_mutex_lock(&t->card->lock);
	euicc_front_reset(t->card->e);
	pthread_mutex_unlock(&t->card->lock);
}

static void *serve_thread(void *arg)
{
	struct transport *t = arg;
	struct euicc_serve_opts o = {
	    .stop_fd = stop_pipe[0], .log = stderr, .short_apdus = t->short_apdus};
	if (t->listen_fd >= 0)
		t->result = euicc_serve_listener(t->listen_fd, t->front, &o);
	else
		t->result = euicc_serve_vpcd(t->vpcd_host, t->vpcd_port, t->front, &o);
	/* one transport failing for good stops the program */
	if (t->result != ESIM_OK && write(stop_pipe[1], "x", 1) < 0)
		t->result = ESIM_E_IO;
	return NULL;
}

/* ---- options ---- */

struct opts {
	const char *db;
	const char *pki;
	struct euicc_config cfg;
	const char *listen[MAX_LISTEN];
	size_t n_listen;
	const char *vpcd;
	const char *stats;
	size_t max_block; /* --max-block; 0: any */
	bool trace;
	bool info;
	char paths[EUICC_MAX_IDENTITIES * 4][4096];
};

static bool file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int pki_dir(struct opts *o)
{
	static const char *const curves[] = {"nist", "brp"};
	size_t k = 0;
	for (size_t i = 0; i < 2; i++) {
		char *cert = o->paths[k], *key = o->paths[k + 1], *eum = o->paths[k + 2],
		     *ci = o->paths[k + 3];
		snprintf(cert, 4096, "%.4000s/%s/euicc.der", o->pki, curves[i]);
		snprintf(key, 4096, "%.4000s/%s/euicc.key.pem", o->pki, curves[i]);
		snprintf(eum, 4096, "%.4000s/%s/eum.der", o->pki, curves[i]);
		snprintf(ci, 4096, "%.4000s/%s/ci.der", o->pki, curves[i]);
		if (!file_exists(cert))
			continue;
		struct euicc_identity_cfg *id = &o->cfg.identities[o->cfg.n_identities++];
		id->cert_path = cert;
		id->key_path = key;
		id->eum_path = eum;
		o->cfg.ci_paths[o->cfg.n_ci_paths++] = ci;
		k += 4;
	}
	if (o->cfg.n_identities == 0) {
		fprintf(stderr, "esim-euicc: no eUICC identity in %s/nist or %s/brp\n", o->pki,
			o->pki);
		return -1;
	}
	return 0;
}

/* Every identity and CI file is readable; else say which one (its option,
 * path and the system's reason) before the card is opened. */
static int check_files(const struct opts *o)
{
	for (size_t i = 0; i < o->cfg.n_identities + o->cfg.n_ci_paths; i++) {
		bool ci = i >= o->cfg.n_identities;
		const struct euicc_identity_cfg *id = ci ? NULL : &o->cfg.identities[i];
		const char *paths[3] = {ci ? o->cfg.ci_paths[i - o->cfg.n_identities]
					   : id->cert_path,
					ci ? NULL : id->key_path, ci ? NULL : id->eum_path};
		static const char *const what[3] = {"certificate (--cert)", "key (--key)",
						    "EUM certificate (--eum)"};
		for (size_t k = 0; k < 3 && paths[k] != NULL; k++) {
			int fd = open(paths[k], O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				close(fd);
				continue;
			}
			fprintf(stderr, "esim-euicc: cannot read the %s %s (%s)\n",
				ci ? "trusted CI certificate (--ci)" : what[k], paths[k],
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

#define OPT_STR_(x) #x
#define OPT_STR(x)  OPT_STR_(x)

/* Why parse_args refused option a with value v: the option and value,
 * and what it takes. */
static void option_refused(const char *a, const char *v)
{
	static const struct {
		const char *name, *takes;
	} limits[] = {
	    {"--capacity", "a whole number of bytes above 0"},
	    {"--max-notifications", "a whole number from 1 to 99999"},
	    {"--max-block", "a whole number from 1 to 65535"},
	    {"--stats", "one file (given once)"},
	    {"--cert", "one file per identity, at most " OPT_STR(EUICC_MAX_IDENTITIES)},
	    {"--key", "one file per identity, at most " OPT_STR(EUICC_MAX_IDENTITIES)},
	    {"--eum", "one file per identity, at most " OPT_STR(EUICC_MAX_IDENTITIES)},
	    {"--ci", "at most " OPT_STR(EUICC_MAX_CI) " files"},
	    {"--listen", "at most " OPT_STR(MAX_LISTEN) " addresses"},
	};
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
		if (strcmp(a, limits[i].name) == 0) {
			fprintf(stderr, "esim-euicc: %s '%s': %s takes %s\n", a, v ? v : "", a,
				limits[i].takes);
			return;
		}
	fprintf(stderr, "esim-euicc: unknown option '%s'\n", a);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	size_t n_cert = 0, n_key = 0, n_eum = 0;
	int i = 1;
	if (argc > 1 && strcmp(argv[1], "info") == 0) {
		o->info = true;
		i = 2;
	}
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes =
		    strcmp(a, "--trace") != 0 && strcmp(a, "--help") != 0 && strcmp(a, "-h") != 0;
		if (takes && v == NULL) {
			fprintf(stderr, "esim-euicc: %s needs a value\n", a);
			return -1;
		}
		uint64_t n;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--trace") == 0) {
			o->trace = true;
			continue;
		} else if (strcmp(a, "--db") == 0) {
			o->db = v;
		} else if (strcmp(a, "--pki") == 0) {
			o->pki = v;
		} else if (strcmp(a, "--cert") == 0 && n_cert < EUICC_MAX_IDENTITIES) {
			o->cfg.identities[n_cert++].cert_path = v;
		} else if (strcmp(a, "--key") == 0 && n_key < EUICC_MAX_IDENTITIES) {
			o->cfg.identities[n_key++].key_path = v;
		} else if (strcmp(a, "--eum") == 0 && n_eum < EUICC_MAX_IDENTITIES) {
			o->cfg.identities[n_eum++].eum_path = v;
		} else if (strcmp(a, "--ci") == 0 && o->cfg.n_ci_paths < EUICC_MAX_CI) {
			o->cfg.ci_paths[o->cfg.n_ci_paths++] = v;
		} else if (strcmp(a, "--listen") == 0 && o->n_listen < MAX_LISTEN) {
			o->listen[o->n_listen++] = v;
		} else if (strcmp(a, "--vpcd") == 0) {
			o->vpcd = v;
		} else if (strcmp(a, "--capacity") == 0 && parse_u64(v, &n) == 0 && n > 0) {
			o->cfg.capacity = n;
		} else if (strcmp(a, "--max-notifications") == 0 && parse_u64(v, &n) == 0 &&
			   n > 0 && n < 100000) {
			o->cfg.max_notifications = (size_t)n;
		} else if (strcmp(a, "--root-ds") == 0) {
			o->cfg.root_ds_address = v;
		} else if (strcmp(a, "--stats") == 0 && o->stats == NULL) {
			o->stats = v;
		} else if (strcmp(a, "--max-block") == 0 && parse_u64(v, &n) == 0 && n > 0 &&
			   n <= 65535) {
			o->max_block = (size_t)n;
		} else {
			option_refused(a, v);
			return -1;
		}
		i++;
	}
	if (o->db == NULL) {
		fprintf(stderr, "esim-euicc: --db PATH is required\n");
		return -1;
	}
	o->cfg.db_url = o->db;
	if (o->pki != NULL) {
		if (n_cert || n_key || n_eum) {
			fprintf(stderr, "esim-euicc: --pki excludes --cert/--key/--eum\n");
			return -1;
		}
		return pki_dir(o);
	}
	if (n_cert == 0 || n_cert != n_key || n_cert != n_eum || o->cfg.n_ci_paths == 0) {
		fprintf(stderr, "esim-euicc: give --pki DIR, or --cert, --key, --eum (as many of "
				"each) and at least one --ci\n");
		return -1;
	}
	o->cfg.n_identities = n_cert;
	return 0;
}

static int split_host_port(const char *spec, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(spec, ':');
	size_t hl = colon ? (size_t)(colon - spec) : strlen(spec);
	uint64_t p = EUICC_VPCD_DEFAULT_PORT;
	if (hl == 0 || hl >= cap ||
	    (colon && (parse_u64(colon + 1, &p) != 0 || p == 0 || p > 65535)))
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* esim-euicc info: what the card holds, read through ES10 like an LPA would
 * not need to (this is the operator of the virtual card looking inside). */
static int run_info(euicc *e)
{
	static const uint8_t get_profiles[] = {0xBF, 0x2D, 0x00};
	static const uint8_t list_notifs[] = {0xBF, 0x28, 0x00};
	esim_buf r = ESIM_BUF_INIT;
	printf("EID %s\n", euicc_eid_text(e));
	esim_err err = euicc_es10(e, get_profiles, sizeof get_profiles, &r);
	if (err == ESIM_OK) {
		printf("GetProfilesInfo ");
		for (size_t i = 0; i < r.len; i++)
			printf("%02X", r.data[i]);
		printf("\n");
		r.len = 0;
		err = euicc_es10(e, list_notifs, sizeof list_notifs, &r);
	}
	if (err == ESIM_OK) {
		printf("ListNotification ");
		for (size_t i = 0; i < r.len; i++)
			printf("%02X", r.data[i]);
		printf("\n");
	}
	esim_buf_free(&r);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-euicc: %s\n", esim_strerror(err));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct opts o; /* large path buffers: not on the stack */
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		esim_print_version("esim-euicc");
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (parse_args(argc, argv, &o) != 0) {
		/* the message said what was wrong; the whole usage would bury it */
		fprintf(stderr, "esim-euicc: see esim-euicc --help\n");
		return 2;
	}
	struct card card = {.trace = o.trace, .stats = {.fd = -1}};
	if (o.stats != NULL && !o.info) {
		card.stats.fd =
		    open(o.stats, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (card.stats.fd < 0) {
			fprintf(stderr, "esim-euicc: cannot open the --stats file %s: %s\n",
				o.stats, strerror(errno));
			return 1;
		}
	}
	if (check_files(&o) != 0) {
		if (card.stats.fd >= 0)
			close(card.stats.fd);
		return 1;
	}
	esim_err err = euicc_open(&o.cfg, &card.e);
	if (err != ESIM_OK) {
		fprintf(stderr, "esim-euicc: cannot open the eUICC: %s\n", esim_strerror(err));
		if (card.stats.fd >= 0)
			close(card.stats.fd);
		return 1;
	}
	if (o.info) {
		int rc = run_info(card.e);
		euicc_close(card.e);
		return rc;
	}
	if (o.n_listen == 0 && o.vpcd == NULL) {
		fprintf(stderr, "esim-euicc: nothing to serve: give --listen and/or --vpcd\n");
		euicc_close(card.e);
		return 2;
	}
	if (pipe(stop_pipe) != 0 || pipe(stats_pipe) != 0) {
		euicc_close(card.e);
		return 1;
	}
	pthread_mutex_init(&card.lock, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (card.stats.fd >= 0)
		sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct transport tr[MAX_LISTEN + 1];
	esim_errctx why = {{0}};
	size_t n_tr = 0;
	memset(tr, 0, sizeof tr);
	int rc = 0;
	printf("EID %s\n", euicc_eid_text(card.e));
	for (size_t i = 0; i <= o.n_listen && rc == 0; i++) {
		bool vpcd = i == o.n_listen;
		if (vpcd && o.vpcd == NULL)
			break;
		struct transport *t = &tr[n_tr];
		t->card = &card;
		t->listen_fd = -1;
		t->short_apdus = o.max_block > 0 && o.max_block < 256;
		t->spec = vpcd ? o.vpcd : o.listen[i];
		if (vpcd) {
			if (split_host_port(o.vpcd, t->vpcd_host, sizeof t->vpcd_host,
					    &t->vpcd_port) != 0) {
				fprintf(stderr, "esim-euicc: bad --vpcd '%s'\n", o.vpcd);
				rc = 2;
				break;
			}
		} else if ((err = apdu_sock_listen_why(t->spec, &t->listen_fd, &why)) != ESIM_OK) {
			/* why names the address, the reason and what to do */
			const char *w = esim_errctx_text(&why);
			fprintf(stderr, "esim-euicc: --listen %s: %s\n", t->spec,
				w[0] ? w : esim_strerror(err));
			rc = 1;
			break;
		}
		struct euicc_apdu_front_cfg fc = {
		    .es10 = card_es10,
		    .es10_ctx = t,
		    .on_reset = card_reset,
		    .trace = card.stats.fd >= 0 ? stats_apdu
			     : o.trace		? trace_apdu
						: NULL,
		    .trace_ctx = t,
		    .max_block = o.max_block,
		};
		n_tr++;
		if ((err = euicc_apdu_front_new(&fc, &t->front)) != ESIM_OK) {
			rc = 1;
			break;
		}
		printf("%s %s\n", vpcd ? "vpcd" : "listening", t->spec);
	}
	fflush(stdout);
	pthread_t stats_tid;
	bool stats_started = false;
	if (rc == 0 && card.stats.fd >= 0) {
		stats_write(&card.stats); /* line 0: the counters are live */
		stats_started = pthread_create(&stats_tid, NULL, stats_thread, &card.stats) == 0;
		if (!stats_started)
			rc = 1;
	}
	for (size_t i = 0; i < n_tr && rc == 0; i++) {
		if (pthread_create(&tr[i].thread, NULL, serve_thread, &tr[i]) != 0) {
			rc = 1;
			if (write(stop_pipe[1], "x", 1) < 0)
				rc = 1;
			break;
		}
		tr[i].started = true;
	}
	if (rc == 0) /* systemd's Type=notify: every socket is listening */
		sd_notify(0, "READY=1");
	for (size_t i = 0; i < n_tr; i++) {
		if (tr[i].started) {
			pthread_join(tr[i].thread, NULL);
			if (tr[i].result != ESIM_OK) {
				fprintf(stderr, "esim-euicc: %s: %s\n", tr[i].spec,
					esim_strerror(tr[i].result));
				rc = 1;
			}
		}
		if (tr[i].listen_fd >= 0) {
			close(tr[i].listen_fd);
			if (strncmp(tr[i].spec, "unix:", 5) == 0)
				unlink(tr[i].spec + 5);
		}
		euicc_apdu_front_free(tr[i].front);
	}
	if (stats_started) {
		if (write(stop_pipe[1], "x", 1) < 0)
			rc = 1;
		pthread_join(stats_tid, NULL);
	}
	if (card.stats.fd >= 0) {
		stats_write(&card.stats); /* the totals at exit */
		close(card.stats.fd);
	}
	pthread_mutex_destroy(&card.lock);
	euicc_close(card.e);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	close(stats_pipe[0]);
	close(stats_pipe[1]);
	return rc;
}
