/*
 * net_server: the HTTPS server under the SM-DP+ (ES9+, ES2+) and the
 * operator service, on libevent 2.1's evhttp with TLS through
 * bufferevent_openssl (SGP.22 section 2.6.2 / 6.5; digest 5.1, 9.2).
 *
 * Threading: each listener's socket is bound once; every worker thread has
 * its own event_base and, per listener, its own evhttp on a dup() of that
 * socket. The kernel wakes the workers that are waiting and one of them
 * wins accept(): a worker busy in TLS or in a handler's RSP crypto is not
 * polling, so new connections go to the idle ones. (SO_REUSEPORT was not
 * chosen: it hashes each connection to a fixed socket, so a new connection
 * could wait behind a busy worker.) A connection stays on the worker that
 * accepted it, keep-alive included. Handlers run synchronously on their
 * worker.
 *
 * TLS: one SSL_CTX per listener (one identity per curve, as SGP.22 allows),
 * shared by the workers, with its session cache and ticket keys, so that a
 * resumed session works whichever worker accepts. The groups list carries
 * brainpoolP256r1 because OpenSSL 3.0 offers no brainpool group unless
 * asked; OpenSSL before 3.2 has brainpool only for TLS 1.2 (neither the
 * TLS 1.3 groups nor the TLS 1.3 brainpool signature schemes), so a
 * brainpool listener is capped at TLS 1.2 there.
 *
 * TCP_NODELAY (digest 15.1): set on the listening socket, which Linux
 * copies to every accepted socket before the TLS handshake; checked again
 * (and set if missing) when a TLS connection's first request, or any plain
 * HTTP request, is dispatched.
 *
 * Writes: each response leaves as one TLS record in one write(2)
 * (coalesce_output_cb).
 *
 * Abuse (docs/net.md "Limits"): every accepted connection gets a net_conn,
 * made in new_conn_bev and set up in the same loop turn, once evhttp has
 * made its evhttp_connection (conn_setup). It holds a slot in the
 * listener's caps (total and per address; over a cap the connection is
 * closed at once) and carries the whole-request deadline: armed at accept
 * (so it covers the TLS handshake and the first request) and whenever a
 * request's first byte arrives, disarmed when evhttp hands the complete
 * request to dispatch_cb. Arming is a timer in the worker's heap: no
 * system call per request. accept() failures (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM, ...) pause that worker's accepting for 10 ms doubling to 1 s
 * instead of spinning on a socket that stays readable, and the server's
 * own log lines are rate-limited per kind (a token bucket).
 *
 * TLS fails closed: a connection on a TLS listener whose TLS cannot be set
 * up (SSL_new or the TLS bufferevent fails) is never handed to evhttp
 * without TLS (given no bufferevent, evhttp would make a plain one and
 * answer in clear text on the TLS port). It gets a bufferevent that can
 * carry nothing (input and output frozen) and is closed in the loop turn
 * of its accept (refused_bev, conn_setup); a request that still reaches
 * dispatch_cb on a TLS listener without TLS is never answered.
 *
 * Default headers (net_listener_config.default_headers, e.g. the operator
 * portal's Content-Security-Policy): added to every answer of their
 * listener, the handlers' (where the handler did not set that header
 * itself), the server's own (404, 405, 431, 500, ...) and evhttp's own
 * (400 for a malformed request, 413 for a body over the cap, 501 for an
 * unknown method): those are written by evhttp without a hook, so an
 * output callback (own_answer_cb) adds the headers right after their
 * status line.
 *
 * libevent 2.1 facts this relies on: evhttp calls the bevcb before it sets
 * the socket on the bufferevent, and makes the evhttp_connection the
 * bufferevent's callback argument (so bufferevent_getcb finds it); the
 * connection's close callback runs exactly once before it is freed; and a
 * bufferevent whose callbacks are all NULL has been given up by evhttp;
 * a response's status line is added to the connection's output in one
 * evbuffer_add on its own, before its headers and body, and evhttp_send_reply
 * writes it there before it returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "esim/net.h"
#include "net/server_testing.h"

#define NET_DEFAULT_THREADS	 2
#define NET_DEFAULT_MAX_BODY	 (1u << 20)
#define NET_DEFAULT_MAX_HEADERS	 (16u << 10)
#define NET_DEFAULT_TIMEOUT_MS	 30000
#define NET_DEFAULT_GRACE_MS	 5000
#define NET_MAX_HEADERS_COUNT	 100
#define NET_LISTEN_BACKLOG	 1024
#define NET_DRAIN_POLL_MS	 10
#define NET_DEFAULT_MAX_CONNS	 1024
#define NET_DEFAULT_MAX_PER_ADDR 64
#define NET_DEFAULT_DEADLINE_MS	 10000
#define NET_DEFAULT_LOG_PER_SEC	 5
#define NET_BACKOFF_FIRST_MS	 10
#define NET_BACKOFF_MAX_MS	 1000
#define NET_ADDR_KEY_LEN	 16

/* TLS 1.2 suites: ECDHE-ECDSA only (every RSP TLS certificate is EC);
 * AES-128-GCM and AES-128-CBC-SHA256 first, as SGP.22 names them. */
#define NET_TLS12_CIPHERS                                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256:"                                 \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
#define NET_GROUPS  "P-256:brainpoolP256r1:X25519:P-384"
#define NET_SIGALGS "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:RSA-PSS+SHA256:RSA+SHA256"

struct net_route {
	char *method;
	char *path;
	net_handler fn;
	void *arg;
	int listener; /* -1: every listener */
};

/* Open connections from one address (IPv4, or an IPv6 /64) on a listener. */
struct net_addr_count {
	uint8_t key[NET_ADDR_KEY_LEN];
	unsigned n;
	struct net_addr_count *next;
};

struct net_listener {
	int id;
	int fd;
	uint16_t port;
	bool tls;
	SSL_CTX *ctx; /* under mu once started: net_server_reload_tls swaps it */
	char *cert_file, *key_file, *client_ca_file; /* for net_server_reload_tls */
	net_client_auth auth;
	uint8_t (*pins)[NET_SHA256_LEN];
	size_t n_pins;
	bool has_ca;
	net_server *srv;
	atomic_bool test_fail_tls; /* net_server_test_fail_tls_setup */

	/* Added to every answer (copied strings). */
	struct net_response_hdr *defaults;
	size_t n_defaults;

	/* Caps, shared by the workers: mu guards open and the table. */
	unsigned max_conns;
	unsigned max_per_addr;
	pthread_mutex_t mu;
	bool mu_ok;
	unsigned open;
	struct net_addr_count **buckets;
	size_t n_buckets; /* a power of two */
};

struct net_worker;

/* One listener's evhttp inside one worker. */
struct net_worker_http {
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evconnlistener *lev; /* owned by bound */
	struct event *backoff_ev;   /* re-enables accepting after an accept error */
	unsigned backoff_ms;	    /* the current pause; 0 after a good accept */
	bool injecting;		    /* own_answer_cb is adding the default headers */
	struct net_listener *l;
	struct net_worker *w;
};

/* One accepted connection (worker-local). It holds a reference on its
 * bufferevent until released, so that the pointer stays valid whatever
 * evhttp does in between. */
struct net_conn {
	struct net_worker_http *wh;
	struct bufferevent *bev;
	struct event *timer; /* first the setup, then the request deadline */
	struct evbuffer_cb_entry *in_cb;
	struct net_conn *prev, *next;
	uint8_t key[NET_ADDR_KEY_LEN];
	bool set_up;  /* conn_setup ran: the timer is the deadline now */
	bool refuse;  /* TLS could not be set up: close at once */
	bool counted; /* holds a slot in the listener's caps */
	bool armed;   /* the deadline is running */
};

struct net_worker {
	net_server *srv;
	struct event_base *base;
	pthread_t thread;
	bool running;
	struct event *stop_ev;
	struct event *drain_ev;
	struct timespec deadline;
	struct net_worker_http *https; /* one per listener */
	unsigned long inflight;	       /* replies not yet written; worker-local */
	struct net_conn *conns;	       /* every tracked connection */
	struct net_conn *last_in;      /* the last one that received bytes */
	bool answering;		       /* send_reply_now is writing one of ours */
};

/* Kinds of the server's own log lines, each rate-limited on its own. */
enum net_log_kind {
	NET_LOG_ACCEPT,
	NET_LOG_LISTENER_CAP,
	NET_LOG_ADDRESS_CAP,
	NET_LOG_DEADLINE,
	NET_LOG_TLS_SETUP,
	NET_LOG_KINDS
};

static const char *const net_log_kind_name[NET_LOG_KINDS] = {
    "accept error", "listener cap", "address cap", "request deadline", "TLS setup"};

/* A token bucket: up to per_second lines a second (and a burst as large). */
struct net_log_bucket {
	unsigned long millitokens;
	struct timespec last;
	unsigned long suppressed;
	bool started;
};

struct net_server {
	struct net_server_config cfg;
	esim_errctx why; /* what the last failed setup call failed on */
	struct net_listener **listeners;
	size_t n_listeners;
	struct net_route *routes;
	size_t n_routes;
	struct net_worker *workers;
	unsigned n_workers;
	bool started;
	bool stopped;
	atomic_ulong connections;
	atomic_ulong requests;
	atomic_ulong handled;
	atomic_ulong handshakes;
	atomic_ulong resumed;
	atomic_ulong refused_listener_cap;
	atomic_ulong refused_address_cap;
	atomic_ulong deadline_closed;
	atomic_ulong accept_errors;
	atomic_ulong log_suppressed;
	atomic_ulong setup_refused;
	pthread_mutex_t log_mu;
	bool log_mu_ok;
	struct net_log_bucket log_buckets[NET_LOG_KINDS];
};

static pthread_once_t net_libevent_once = PTHREAD_ONCE_INIT;
static int net_libevent_ok;

static void net_libevent_init(void)
{
	net_libevent_ok = evthread_use_pthreads() == 0;
}

esim_err net_server_new(const struct net_server_config *cfg, net_server **out)
{
	*out = NULL;
	pthread_once(&net_libevent_once, net_libevent_init);
	if (!net_libevent_ok)
		return ESIM_E_INTERNAL;
	net_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ESIM_E_NOMEM;
	if (cfg != NULL)
		s->cfg = *cfg;
	if (s->cfg.threads == 0)
		s->cfg.threads = NET_DEFAULT_THREADS;
	if (s->cfg.max_body == 0)
		s->cfg.max_body = NET_DEFAULT_MAX_BODY;
	if (s->cfg.max_headers == 0)
		s->cfg.max_headers = NET_DEFAULT_MAX_HEADERS;
	if (s->cfg.timeout_ms == 0)
		s->cfg.timeout_ms = NET_DEFAULT_TIMEOUT_MS;
	if (s->cfg.shutdown_grace_ms == 0)
		s->cfg.shutdown_grace_ms = NET_DEFAULT_GRACE_MS;
	if (s->cfg.request_deadline_ms == 0)
		s->cfg.request_deadline_ms = NET_DEFAULT_DEADLINE_MS;
	if (s->cfg.log_per_second == 0)
		s->cfg.log_per_second = NET_DEFAULT_LOG_PER_SEC;
	atomic_init(&s->connections, 0);
	atomic_init(&s->requests, 0);
	atomic_init(&s->handled, 0);
	atomic_init(&s->handshakes, 0);
	atomic_init(&s->resumed, 0);
	atomic_init(&s->refused_listener_cap, 0);
	atomic_init(&s->refused_address_cap, 0);
	atomic_init(&s->deadline_closed, 0);
	atomic_init(&s->accept_errors, 0);
	atomic_init(&s->log_suppressed, 0);
	atomic_init(&s->setup_refused, 0);
	if (pthread_mutex_init(&s->log_mu, NULL) != 0) {
		free(s);
		return ESIM_E_NOMEM;
	}
	s->log_mu_ok = true;
	*out = s;
	return ESIM_OK;
}

/* ---- rate-limited log ------------------------------------------------------ */

static void log_emit(const net_server *s, const char *line)
{
	if (s->cfg.log != NULL)
		s->cfg.log(s->cfg.log_arg, line);
	else
		fprintf(stderr, "%s\n", line);
}

static void log_emit_suppressed(const net_server *s, enum net_log_kind kind, unsigned long n)
{
	char line[128];
	snprintf(line, sizeof(line), "net: suppressed %lu %s messages", n, net_log_kind_name[kind]);
	log_emit(s, line);
}

/* One line of the given kind, unless that kind has used its lines for
 * this second; then it is only counted. */
static void net_logf(net_server *s, enum net_log_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void net_logf(net_server *s, enum net_log_kind kind, const char *fmt, ...)
{
	struct net_log_bucket *b = &s->log_buckets[kind];
	unsigned long cap = 1000ul * s->cfg.log_per_second;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	unsigned long held = 0;
	bool emit = false;
	pthread_mutex_lock(&s->log_mu);
	if (!b->started) {
		b->started = true;
		b->millitokens = cap;
	} else {
		long long ms = (long long)(now.tv_sec - b->last.tv_sec) * 1000 +
			       (now.tv_nsec - b->last.tv_nsec) / 1000000;
		if (ms > 0) {
			unsigned long add = (unsigned long)ms * s->cfg.log_per_second;
			b->millitokens = b->millitokens + add > cap ? cap : b->millitokens + add;
		}
	}
	b->last = now;
	if (b->millitokens >= 1000) {
		b->millitokens -= 1000;
		held = b->suppressed;
		b->suppressed = 0;
		emit = true;
	} else {
		b->suppressed++;
	}
	pthread_mutex_unlock(&s->log_mu);
	if (!emit) {
		atomic_fetch_add(&s->log_suppressed, 1);
		return;
	}
	if (held > 0)
		log_emit_suppressed(s, kind, held);
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_emit(s, line);
}

/* At stop: what is still held back is reported. */
static void log_flush(net_server *s)
{
	for (int k = 0; k < NET_LOG_KINDS; k++) {
		pthread_mutex_lock(&s->log_mu);
		unsigned long held = s->log_buckets[k].suppressed;
		s->log_buckets[k].suppressed = 0;
		pthread_mutex_unlock(&s->log_mu);
		if (held > 0)
			log_emit_suppressed(s, (enum net_log_kind)k, held);
	}
}

/* ---- listeners: socket ------------------------------------------------- */

static esim_err listen_socket(const char *address, uint16_t port, int *fd_out, uint16_t *port_out,
			      esim_errctx *why)
{
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	char portbuf[8];
	snprintf(portbuf, sizeof(portbuf), "%u", (unsigned)port);
	const char *host = address != NULL ? address : "0.0.0.0";
	int gai = getaddrinfo(host, portbuf, &hints, &ai);
	if (gai != 0) {
		esim_errctx_set(why, "cannot listen on %s:%u: '%s' is not a numeric address (%s)",
				host, (unsigned)port, host, gai_strerror(gai));
		return ESIM_E_NET_BIND;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		esim_errctx_set(why, "cannot listen on %s:%u (%s)", host, (unsigned)port,
				strerror(errno));
		freeaddrinfo(ai);
		return ESIM_E_NET_BIND;
	}
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, NET_LISTEN_BACKLOG) != 0) {
		int e = errno;
		const char *hint = "";
		if (e == EADDRINUSE)
			hint = ": another process listens there (stop it or pick another port)";
		else if (e == EACCES)
			hint = ": ports below 1024 need privileges";
		else if (e == EADDRNOTAVAIL)
			hint = ": no interface of this host has that address";
		esim_errctx_set(why, "cannot listen on %s:%u (%s)%s", host, (unsigned)port,
				strerror(e), hint);
		freeaddrinfo(ai);
		close(fd);
		return ESIM_E_NET_BIND;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		close(fd);
		return ESIM_E_NET_BIND;
	}
	*port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return ESIM_OK;
}

/* ---- listeners: TLS ------------------------------------------------------ */

static void tls_info_cb(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE))
		return;
	struct net_listener *l = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (l == NULL)
		return;
	atomic_fetch_add(&l->srv->handshakes, 1);
	if (SSL_session_reused((SSL *)ssl))
		atomic_fetch_add(&l->srv->resumed, 1);
}

/* Client-certificate check for mutual TLS. It replaces OpenSSL's path
 * building so that a pinned certificate is accepted as itself, whoever
 * issued it (ES2+ certificates are agreed bilaterally and often
 * self-signed); otherwise the configured CA decides. */
static int client_cert_verify_cb(X509_STORE_CTX *sctx, void *arg)
{
	struct net_listener *l = arg;
	X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
	if (leaf == NULL) {
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (X509_digest(leaf, EVP_sha256(), md, &mdlen) == 1 && mdlen == NET_SHA256_LEN) {
		for (size_t i = 0; i < l->n_pins; i++) {
			if (memcmp(l->pins[i], md, NET_SHA256_LEN) == 0) {
				X509_STORE_CTX_set_error(sctx, X509_V_OK);
				return 1;
			}
		}
	}
	if (l->has_ca)
		return X509_verify_cert(sctx) == 1;
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REJECTED);
	return 0;
}

static bool key_is_brainpool(EVP_PKEY *key)
{
	char group[64];
	size_t glen = 0;
	if (key == NULL || EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) != 1)
		return false;
	return strcmp(group, "brainpoolP256r1") == 0;
}

/* OpenSSL's reason for its last error, for a message; never NULL. */
static const char *ossl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());
	return r != NULL ? r : "no reason given";
}

static esim_err tls_ctx_new(struct net_listener *l, const struct net_listener_config *lc,
			    SSL_CTX **out)
{
	if (lc->cert_chain_file == NULL || lc->key_file == NULL)
		return ESIM_E_ARG;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return ESIM_E_NOMEM;
	esim_err err = ESIM_E_NET_TLS_CONFIG;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, NET_TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, NET_GROUPS) != 1 ||
	    SSL_CTX_set1_sigalgs_list(ctx, NET_SIGALGS) != 1)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_NO_COMPRESSION);
	/* a file that cannot be opened: the system's reason, not OpenSSL's */
	const char *unreadable = access(lc->cert_chain_file, R_OK) != 0 ? lc->cert_chain_file
				 : access(lc->key_file, R_OK) != 0	? lc->key_file
									: NULL;
	if (unreadable != NULL) {
		esim_errctx_set(&l->srv->why, "cannot read the TLS %s %s (%s)",
				unreadable == lc->key_file ? "key" : "certificate chain",
				unreadable, strerror(errno));
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, lc->cert_chain_file) != 1) {
		esim_errctx_set(&l->srv->why, "cannot use the TLS certificate chain %s (%s)",
				lc->cert_chain_file, ossl_reason());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, lc->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		esim_errctx_set(&l->srv->why, "cannot use the TLS key %s with the chain %s (%s)",
				lc->key_file, lc->cert_chain_file, ossl_reason());
		goto fail;
	}
	if (key_is_brainpool(SSL_CTX_get0_privatekey(ctx)) && OpenSSL_version_num() < 0x30200000L &&
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;

	/* Resumption: the server-side cache (TLS 1.2 session ids) and tickets
	 * (on by default). A session id context is required once client
	 * certificates are verified, or OpenSSL refuses to resume. */
	static const unsigned char sid_ctx[] = "esimkit-net";
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 20000);
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1)
		goto fail;

	if (lc->client_auth == NET_CLIENT_AUTH_REQUIRE) {
		if (lc->n_client_pins == 0 && lc->client_ca_file == NULL) {
			err = ESIM_E_ARG;
			goto fail;
		}
		if (lc->client_ca_file != NULL) {
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(lc->client_ca_file);
			if (names == NULL ||
			    SSL_CTX_load_verify_locations(ctx, lc->client_ca_file, NULL) != 1) {
				sk_X509_NAME_pop_free(names, X509_NAME_free);
				goto fail;
			}
			SSL_CTX_set_client_CA_list(ctx, names);
			if (!l->has_ca) /* a reload: already true */
				l->has_ca = true;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		SSL_CTX_set_cert_verify_callback(ctx, client_cert_verify_cb, l);
	}
	SSL_CTX_set_app_data(ctx, l);
	SSL_CTX_set_info_callback(ctx, tls_info_cb);
	*out = ctx;
	return ESIM_OK;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return err;
}

static void listener_free(struct net_listener *l)
{
	if (l == NULL)
		return;
	if (l->fd >= 0)
		close(l->fd);
	SSL_CTX_free(l->ctx);
	free(l->cert_file);
	free(l->key_file);
	free(l->client_ca_file);
	free(l->pins);
	for (size_t i = 0; i < l->n_defaults; i++) {
		free(l->defaults[i].name);
		free(l->defaults[i].value);
	}
	free(l->defaults);
	for (size_t i = 0; i < l->n_buckets; i++) {
		struct net_addr_count *e = l->buckets[i];
		while (e != NULL) {
			struct net_addr_count *next = e->next;
			free(e);
			e = next;
		}
	}
	free(l->buckets);
	if (l->mu_ok)
		pthread_mutex_destroy(&l->mu);
	free(l);
}

/* A header name is an RFC 9110 token; a value has no CR, LF or other
 * control character but tab. */
static bool header_ok(const char *name, const char *value)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	if (name == NULL || value == NULL || name[0] == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		bool alnum = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= 'A' && ch <= 'Z');
		if (!alnum && strchr(tchar, ch) == NULL)
			return false;
	}
	for (const char *p = value; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return true;
}

static esim_err copy_defaults(struct net_listener *l, const struct net_listener_config *lc)
{
	if (lc->n_default_headers == 0)
		return ESIM_OK;
	if (lc->default_headers == NULL)
		return ESIM_E_ARG;
	for (size_t i = 0; i < lc->n_default_headers; i++) {
		if (!header_ok(lc->default_headers[i].name, lc->default_headers[i].value))
			return ESIM_E_ARG;
	}
	l->defaults = calloc(lc->n_default_headers, sizeof(*l->defaults));
	if (l->defaults == NULL)
		return ESIM_E_NOMEM;
	for (size_t i = 0; i < lc->n_default_headers; i++) {
		struct net_response_hdr *h = &l->defaults[l->n_defaults];
		h->name = strdup(lc->default_headers[i].name);
		h->value = strdup(lc->default_headers[i].value);
		l->n_defaults++;
		if (h->name == NULL || h->value == NULL)
			return ESIM_E_NOMEM; /* listener_free frees what was copied */
	}
	return ESIM_OK;
}

const char *net_server_errmsg(const net_server *srv)
{
	return srv != NULL ? esim_errctx_text(&srv->why) : "";
}

esim_err net_server_add_listener(net_server *srv, const struct net_listener_config *lc, int *id)
{
	esim_errctx_clear(&srv->why);
	if (srv->started)
		return ESIM_E_NET_STATE;
	if (lc->client_auth == NET_CLIENT_AUTH_REQUIRE && !lc->tls)
		return ESIM_E_ARG;
	struct net_listener *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return ESIM_E_NOMEM;
	l->fd = -1;
	l->srv = srv;
	atomic_init(&l->test_fail_tls, false);
	l->tls = lc->tls;
	l->auth = lc->client_auth;
	l->id = (int)srv->n_listeners;
	l->max_conns = lc->max_connections ? lc->max_connections : NET_DEFAULT_MAX_CONNS;
	l->max_per_addr = lc->max_connections_per_address ? lc->max_connections_per_address
							  : NET_DEFAULT_MAX_PER_ADDR;
	esim_err err = ESIM_OK;
	if (pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l);
		return ESIM_E_NOMEM;
	}
	l->mu_ok = true;
	/* a bucket per connection the cap allows (at most 64 Ki): short chains */
	l->n_buckets = 16;
	while (l->n_buckets < l->max_conns && l->n_buckets < (64u << 10))
		l->n_buckets <<= 1;
	l->buckets = calloc(l->n_buckets, sizeof(*l->buckets));
	if (l->buckets == NULL) {
		l->n_buckets = 0;
		err = ESIM_E_NOMEM;
		goto fail;
	}
	if (lc->n_client_pins > 0) {
		l->pins = malloc(lc->n_client_pins * sizeof(*l->pins));
		if (l->pins == NULL) {
			err = ESIM_E_NOMEM;
			goto fail;
		}
		memcpy(l->pins, lc->client_pins, lc->n_client_pins * sizeof(*l->pins));
		l->n_pins = lc->n_client_pins;
	}
	if ((err = copy_defaults(l, lc)) != ESIM_OK)
		goto fail;
	if (lc->tls && (err = tls_ctx_new(l, lc, &l->ctx)) != ESIM_OK)
		goto fail;
	if (lc->tls && ((l->cert_file = strdup(lc->cert_chain_file)) == NULL ||
			(l->key_file = strdup(lc->key_file)) == NULL ||
			(lc->client_ca_file != NULL &&
			 (l->client_ca_file = strdup(lc->client_ca_file)) == NULL))) {
		err = ESIM_E_NOMEM;
		goto fail;
	}
	if ((err = listen_socket(lc->address, lc->port, &l->fd, &l->port, &srv->why)) != ESIM_OK)
		goto fail;
	struct net_listener **v =
	    realloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*srv->listeners));
	if (v == NULL) {
		err = ESIM_E_NOMEM;
		goto fail;
	}
	srv->listeners = v;
	v[srv->n_listeners++] = l;
	if (id != NULL)
		*id = l->id;
	return ESIM_OK;
fail:
	listener_free(l);
	return err;
}

esim_err net_server_reload_tls(net_server *srv, int *bad_id)
{
	esim_errctx_clear(&srv->why); /* net_server_errmsg: this reload's failure */
	if (bad_id != NULL)
		*bad_id = -1;
	SSL_CTX **fresh = calloc(srv->n_listeners + 1, sizeof(*fresh));
	if (fresh == NULL)
		return ESIM_E_NOMEM;
	esim_err err = ESIM_OK;
	for (size_t i = 0; i < srv->n_listeners && err == ESIM_OK; i++) {
		struct net_listener *l = srv->listeners[i];
		if (!l->tls)
			continue;
		struct net_listener_config lc = {.cert_chain_file = l->cert_file,
						 .key_file = l->key_file,
						 .client_ca_file = l->client_ca_file,
						 .client_auth = l->auth,
						 .n_client_pins = l->n_pins};
		err = tls_ctx_new(l, &lc, &fresh[i]);
		if (err != ESIM_OK && bad_id != NULL)
			*bad_id = l->id;
	}
	/* all or nothing: every listener keeps its identity unless all loaded */
	for (size_t i = 0; i < srv->n_listeners; i++) {
		if (fresh[i] == NULL)
			continue;
		struct net_listener *l = srv->listeners[i];
		SSL_CTX *old = fresh[i];
		if (err == ESIM_OK) {
			pthread_mutex_lock(&l->mu);
			old = l->ctx;
			l->ctx = fresh[i];
			pthread_mutex_unlock(&l->mu);
		}
		SSL_CTX_free(old); /* connections set up with it hold their own reference */
	}
	free(fresh);
	return err;
}

uint16_t net_server_port(const net_server *srv, int id)
{
	if (id < 0 || (size_t)id >= srv->n_listeners)
		return 0;
	return srv->listeners[id]->port;
}

esim_err net_server_add_route(net_server *srv, int id, const char *method, const char *path,
			      net_handler fn, void *arg)
{
	if (srv->started)
		return ESIM_E_NET_STATE;
	if (method == NULL || path == NULL || fn == NULL || path[0] != '/' || id < -1 ||
	    (id >= 0 && (size_t)id >= srv->n_listeners))
		return ESIM_E_ARG;
	struct net_route *r = realloc(srv->routes, (srv->n_routes + 1) * sizeof(*r));
	if (r == NULL)
		return ESIM_E_NOMEM;
	srv->routes = r;
	struct net_route *nr = &r[srv->n_routes];
	nr->method = strdup(method);
	nr->path = strdup(path);
	if (nr->method == NULL || nr->path == NULL) {
		free(nr->method);
		free(nr->path);
		return ESIM_E_NOMEM;
	}
	nr->fn = fn;
	nr->arg = arg;
	nr->listener = id;
	srv->n_routes++;
	return ESIM_OK;
}

/* ---- per-connection and per-request callbacks (worker threads) ---------- */

/* One response, one TLS record. evhttp puts the status line and headers in
 * one evbuffer chain and moves the body in as another, and
 * bufferevent_openssl calls SSL_write once per chain: two records, two
 * write(2)s, and the client is woken twice for one response. Pulling the
 * first record's worth (a TLS record carries at most 16 KiB of plaintext)
 * into one chain whenever data is added makes it one record and one
 * write; a larger body goes out in full records after it. The copy is at
 * most 16 KiB and happens only when a new chain was appended. */
#define NET_TLS_RECORD_MAX (16u << 10)

static void coalesce_output_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	(void)arg;
	if (info->n_added == 0)
		return;
	size_t len = evbuffer_get_length(out);
	ev_ssize_t want = (ev_ssize_t)(len < NET_TLS_RECORD_MAX ? len : NET_TLS_RECORD_MAX);
	if (evbuffer_get_contiguous_space(out) < (size_t)want)
		(void)evbuffer_pullup(out, want); /* on failure: two records, as before */
}

/* ---- connection caps ------------------------------------------------------ */

/* The key an address is counted under: an IPv4 address (as v4-mapped
 * IPv6), or the /64 of an IPv6 address. */
static void addr_key(const char *text, uint8_t key[NET_ADDR_KEY_LEN])
{
	memset(key, 0, NET_ADDR_KEY_LEN);
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, text, &a4) == 1) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, text, &a6) == 1) {
		memcpy(key, &a6, IN6_IS_ADDR_V4MAPPED(&a6) ? 16 : 8);
	} else {
		/* never expected (evhttp prints numeric addresses): the text */
		size_t n = strlen(text);
		memcpy(key, text, n < NET_ADDR_KEY_LEN ? n : NET_ADDR_KEY_LEN);
	}
}

static size_t addr_bucket(const struct net_listener *l, const uint8_t key[NET_ADDR_KEY_LEN])
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < NET_ADDR_KEY_LEN; i++)
		h = (h ^ key[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32)) & (l->n_buckets - 1);
}

enum cap_verdict { CAP_OK, CAP_LISTENER, CAP_ADDRESS };

/* Take a slot for one more connection from key, if the caps allow. */
static enum cap_verdict caps_take(struct net_listener *l, const uint8_t key[NET_ADDR_KEY_LEN],
				  unsigned *n_addr)
{
	enum cap_verdict v = CAP_OK;
	pthread_mutex_lock(&l->mu);
	struct net_addr_count **head = &l->buckets[addr_bucket(l, key)], *e = *head;
	while (e != NULL && memcmp(e->key, key, NET_ADDR_KEY_LEN) != 0)
		e = e->next;
	*n_addr = e != NULL ? e->n : 0;
	if (l->open >= l->max_conns) {
		v = CAP_LISTENER;
	} else if (e != NULL && e->n >= l->max_per_addr) {
		v = CAP_ADDRESS;
	} else {
		if (e == NULL) {
			e = calloc(1, sizeof(*e));
			if (e == NULL) {
				pthread_mutex_unlock(&l->mu);
				return CAP_LISTENER; /* out of memory: refuse, as if full */
			}
			memcpy(e->key, key, NET_ADDR_KEY_LEN);
			e->next = *head;
			*head = e;
		}
		e->n++;
		l->open++;
	}
	pthread_mutex_unlock(&l->mu);
	return v;
}

static void caps_release(struct net_listener *l, const uint8_t key[NET_ADDR_KEY_LEN])
{
	pthread_mutex_lock(&l->mu);
	struct net_addr_count **pp = &l->buckets[addr_bucket(l, key)];
	while (*pp != NULL && memcmp((*pp)->key, key, NET_ADDR_KEY_LEN) != 0)
		pp = &(*pp)->next;
	struct net_addr_count *e = *pp;
	if (e != NULL && --e->n == 0) {
		*pp = e->next;
		free(e);
	}
	if (l->open > 0)
		l->open--;
	pthread_mutex_unlock(&l->mu);
}

/* ---- connection tracking and the request deadline ------------------------- */

static void conn_release(struct net_conn *c)
{
	struct net_worker *w = c->wh->w;
	if (c->counted)
		caps_release(c->wh->l, c->key);
	event_free(c->timer);
	if (c->in_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (w->last_in == c)
		w->last_in = NULL;
	bufferevent_decref(c->bev);
	free(c);
}

/* evhttp is closing the connection (it frees the bufferevent right after). */
static void conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	conn_release(arg);
}

static void conn_arm(struct net_conn *c)
{
	unsigned ms = c->wh->w->srv->cfg.request_deadline_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (event_add(c->timer, &tv) == 0)
		c->armed = true;
}

static void conn_disarm(struct net_conn *c)
{
	if (c->armed) {
		event_del(c->timer);
		c->armed = false;
	}
}

/* Bytes arrived: the first byte of a request starts its deadline. */
static void conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	struct net_conn *c = arg;
	if (info->n_added == 0)
		return;
	c->wh->w->last_in = c;
	if (c->set_up && !c->armed)
		conn_arm(c);
}

/* The first run, in the loop turn of the accept: evhttp has its
 * connection now. Find it, check the caps, start the deadline. */
static void conn_setup(struct net_conn *c)
{
	struct net_listener *l = c->wh->l;
	net_server *srv = l->srv;
	bufferevent_event_cb ecb = NULL;
	void *cbarg = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, &ecb, &cbarg);
	if (ecb == NULL || cbarg == NULL) {
		conn_release(c); /* evhttp has already given the connection up */
		return;
	}
	struct evhttp_connection *evcon = cbarg;
	c->set_up = true;
	evhttp_connection_set_closecb(evcon, conn_closed_cb, c);
	if (c->refuse) {
		/* its TLS could not be set up: evhttp closes and frees it
		 * unanswered, and conn_closed_cb releases c */
		bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, 0);
		return;
	}
	char *addr = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(evcon, &addr, &port);
	if (addr == NULL)
		addr = "";
	addr_key(addr, c->key);
	unsigned n_addr = 0;
	enum cap_verdict v = caps_take(l, c->key, &n_addr);
	if (v == CAP_OK) {
		c->counted = true;
		conn_arm(c);
		return;
	}
	if (v == CAP_LISTENER) {
		atomic_fetch_add(&srv->refused_listener_cap, 1);
		net_logf(srv, NET_LOG_LISTENER_CAP,
			 "net: listener %d: %u connections open (the cap): closed one from %s",
			 l->id, l->max_conns, addr);
	} else {
		atomic_fetch_add(&srv->refused_address_cap, 1);
		net_logf(srv, NET_LOG_ADDRESS_CAP,
			 "net: listener %d: %s has %u connections open (the cap): closed one more",
			 l->id, addr, n_addr);
	}
	/* evhttp closes and frees it, and conn_closed_cb releases c */
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, 0);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_conn *c = arg;
	if (!c->set_up) {
		conn_setup(c);
		return;
	}
	c->armed = false;
	net_server *srv = c->wh->w->srv;
	atomic_fetch_add(&srv->deadline_closed, 1);
	net_logf(srv, NET_LOG_DEADLINE,
		 "net: listener %d: closed a connection without a complete request after %u ms",
		 c->wh->l->id, srv->cfg.request_deadline_ms);
	/* as a read timeout: evhttp drops the connection, conn_closed_cb
	 * releases c */
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

/* Track a new connection's bufferevent (no-op on failure: the connection
 * then runs untracked, as before caps existed). refuse: close it as soon as
 * evhttp has set it up. */
static void conn_track(struct net_worker_http *wh, struct bufferevent *bev, bool refuse)
{
	struct net_worker *w = wh->w;
	struct net_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->wh = wh;
	c->bev = bev;
	c->refuse = refuse;
	c->timer = event_new(w->base, -1, 0, conn_timer_cb, c);
	c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), conn_input_cb, c);
	if (c->timer == NULL || c->in_cb == NULL) {
		if (c->in_cb != NULL)
			evbuffer_remove_cb_entry(bufferevent_get_input(bev), c->in_cb);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return;
	}
	bufferevent_incref(bev);
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	/* runs once this accept's callback has returned, in the same turn */
	event_active(c->timer, EV_TIMEOUT, 0);
}

/* The tracked connection a request arrived on (usually the last one that
 * received bytes; otherwise a walk of the worker's list). */
static struct net_conn *conn_of(struct net_worker *w, struct evhttp_request *r)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	if (bev == NULL)
		return NULL;
	if (w->last_in != NULL && w->last_in->bev == bev)
		return w->last_in;
	for (struct net_conn *c = w->conns; c != NULL; c = c->next) {
		if (c->bev == bev)
			return c;
	}
	return NULL;
}

/* ---- accept errors ----------------------------------------------------------- */

/* The worker this thread runs (set by worker_main; NULL elsewhere). The
 * only thread-local state here: libevent passes a listener's error
 * callback the evhttp as its argument (evhttp_bind_listener took the
 * slot), so the callback finds its worker this way. */
static __thread struct net_worker *net_this_worker;

/* accept() failed with something other than EAGAIN/EINTR/ECONNABORTED
 * (libevent retries those itself). The listening socket stays readable
 * (the connection is still queued), so without a pause the loop would
 * spin: stop accepting on this worker for a while, longer each time. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	(void)arg; /* evhttp made it its evhttp: find ours through the thread */
	struct net_worker *w = net_this_worker;
	struct net_worker_http *wh = NULL;
	for (size_t i = 0; w != NULL && i < w->srv->n_listeners; i++) {
		if (w->https[i].lev == lev)
			wh = &w->https[i];
	}
	if (wh == NULL) {
		evconnlistener_disable(lev); /* cannot happen; never spin */
		return;
	}
	net_server *srv = w->srv;
	int e = EVUTIL_SOCKET_ERROR();
	atomic_fetch_add(&srv->accept_errors, 1);
	wh->backoff_ms = wh->backoff_ms == 0 ? NET_BACKOFF_FIRST_MS : wh->backoff_ms * 2;
	if (wh->backoff_ms > NET_BACKOFF_MAX_MS)
		wh->backoff_ms = NET_BACKOFF_MAX_MS;
	evconnlistener_disable(lev);
	struct timeval tv = {wh->backoff_ms / 1000, (wh->backoff_ms % 1000) * 1000};
	event_add(wh->backoff_ev, &tv);
	net_logf(srv, NET_LOG_ACCEPT,
		 "net: listener %d: accept failed: %s; pausing accept for %u ms", wh->l->id,
		 strerror(e), wh->backoff_ms);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_worker_http *wh = arg;
	if (wh->bound != NULL && wh->lev != NULL)
		evconnlistener_enable(wh->lev);
}

/* Every status line evhttp writes itself (400 for a malformed request, 413
 * for a body over the cap, 501 for an unknown method) gets the listener's
 * default headers right after it; evhttp then appends its own headers.
 * Answers of ours (w->answering) carry them already, and 1xx lines are
 * left alone. Added bytes are the tail of the buffer from orig_size. */
static void own_answer_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	struct net_worker_http *wh = arg;
	size_t n = info->n_added;
	if (n < 14 || n > 256 || info->n_deleted != 0 || wh->w->answering || wh->injecting)
		return;
	char line[257];
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(out, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(out, &pos, line, n) != (ev_ssize_t)n)
		return;
	line[n] = '\0';
	/* "HTTP/1.x NNN reason\r\n" and nothing else */
	if (strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' || line[9] < '2' || line[9] > '5' ||
	    memchr(line, '\n', n) != line + n - 1 || line[n - 2] != '\r')
		return;
	wh->injecting = true;
	for (size_t i = 0; i < wh->l->n_defaults; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", wh->l->defaults[i].name,
				    wh->l->defaults[i].value);
	wh->injecting = false;
}

/* Watch bev's output for evhttp's own answers (when the listener has
 * default headers). */
static bool watch_own_answers(struct net_worker_http *wh, struct bufferevent *bev)
{
	return wh->l->n_defaults == 0 ||
	       evbuffer_add_cb(bufferevent_get_output(bev), own_answer_cb, wh) != NULL;
}

/* The connection cannot be set up as its listener requires (its TLS, or
 * the hook that puts the default headers on evhttp's own answers). Given
 * no bufferevent, evhttp would make a plain one and serve the connection
 * in clear text: it gets one that can carry nothing instead (evhttp can
 * take no byte of its input, add none to its output), and conn_setup
 * closes it in this loop turn. */
static struct bufferevent *refused_bev(struct net_worker_http *wh, struct event_base *base,
				       const char *what)
{
	net_server *srv = wh->l->srv;
	atomic_fetch_add(&srv->setup_refused, 1);
	ERR_clear_error();
	net_logf(srv, NET_LOG_TLS_SETUP,
		 "net: listener %d: %s failed: connection closed unanswered", wh->l->id, what);
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL; /* evhttp's own would be the same allocation; see dispatch_cb */
	evbuffer_freeze(bufferevent_get_input(bev), 1);
	evbuffer_freeze(bufferevent_get_output(bev), 0);
	conn_track(wh, bev, true);
	return bev;
}

static struct bufferevent *new_conn_bev(struct event_base *base, void *arg)
{
	struct net_worker_http *wh = arg;
	atomic_fetch_add(&wh->l->srv->connections, 1);
	wh->backoff_ms = 0;
	if (!wh->l->tls) {
		struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL)
			return NULL; /* evhttp makes one itself (untracked) */
		if (!watch_own_answers(wh, bev)) {
			bufferevent_free(bev);
			return refused_bev(wh, base, "output callback");
		}
		conn_track(wh, bev, false);
		return bev;
	}
	SSL *ssl = NULL;
	if (!atomic_load(&wh->l->test_fail_tls)) {
		/* the current identity (net_server_reload_tls may swap it); the
		 * SSL keeps its own reference */
		pthread_mutex_lock(&wh->l->mu);
		SSL_CTX *ctx = wh->l->ctx;
		SSL_CTX_up_ref(ctx);
		pthread_mutex_unlock(&wh->l->mu);
		ssl = SSL_new(ctx);
		SSL_CTX_free(ctx);
	}
	if (ssl == NULL)
		return refused_bev(wh, base, "SSL_new");
	/* coalesce_output_cb may move output that an SSL_write which could not
	 * finish is to be retried with (same bytes, new address) */
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return refused_bev(wh, base, "TLS bufferevent");
	}
	/* Clients that close without close_notify are common and harmless
	 * here: every HTTP message is length-delimited. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if (evbuffer_add_cb(bufferevent_get_output(bev), coalesce_output_cb, NULL) == NULL ||
	    !watch_own_answers(wh, bev)) {
		bufferevent_free(bev); /* frees ssl */
		return refused_bev(wh, base, "output callback");
	}
	conn_track(wh, bev, false);
	return bev;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	default:
		return "OTHER";
	}
}

static void request_complete_cb(struct evhttp_request *r, void *arg)
{
	(void)r;
	struct net_worker *w = arg;
	if (w->inflight > 0)
		w->inflight--;
}

/* A header of the answer (the content type included), case-insensitive. */
static bool resp_has(const net_response *resp, const char *name)
{
	if (resp == NULL)
		return false;
	if (resp->content_type != NULL && strcasecmp(name, "Content-Type") == 0)
		return true;
	for (size_t i = 0; i < resp->n_headers; i++) {
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return true;
	}
	return false;
}

/* The listener's default headers that resp (may be NULL) does not set. */
static void add_defaults(struct net_worker_http *wh, struct evkeyvalq *oh, const net_response *resp)
{
	for (size_t i = 0; i < wh->l->n_defaults; i++) {
		if (!resp_has(resp, wh->l->defaults[i].name))
			evhttp_add_header(oh, wh->l->defaults[i].name, wh->l->defaults[i].value);
	}
}

static void send_reply_now(struct net_worker_http *wh, struct evhttp_request *r, int status,
			   struct evbuffer *body)
{
	struct net_worker *w = wh->w;
	w->inflight++;
	evhttp_request_set_on_complete_cb(r, request_complete_cb, w);
	w->answering = true;
	evhttp_send_reply(r, status, NULL, body);
	w->answering = false;
}

static void send_simple(struct net_worker_http *wh, struct evhttp_request *r, int status)
{
	add_defaults(wh, evhttp_request_get_output_headers(r), NULL);
	send_reply_now(wh, r, status, NULL);
}

static void send_response(struct net_worker_http *wh, struct evhttp_request *r,
			  const net_response *resp)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r);
	if (resp->content_type != NULL)
		evhttp_add_header(oh, "Content-Type", resp->content_type);
	for (size_t i = 0; i < resp->n_headers; i++)
		evhttp_add_header(oh, resp->headers[i].name, resp->headers[i].value);
	struct evbuffer *body = NULL;
	if (resp->body.len > 0) {
		body = evbuffer_new();
		if (body == NULL || evbuffer_add(body, resp->body.data, resp->body.len) != 0) {
			if (body != NULL)
				evbuffer_free(body);
			evhttp_clear_headers(oh);
			send_simple(wh, r, 500);
			return;
		}
	}
	add_defaults(wh, oh, resp);
	send_reply_now(wh, r, resp->status, body);
	if (body != NULL)
		evbuffer_free(body);
}

/* A request on a TLS listener that arrived without TLS: only possible when
 * refused_bev could not allocate and evhttp's own plain bufferevent could.
 * Nothing is written (the output is frozen) and the connection is closed
 * once the handler returns. */
static void refuse_cleartext(struct net_worker_http *wh, struct evhttp_request *r,
			     struct bufferevent *bev)
{
	atomic_fetch_add(&wh->l->srv->setup_refused, 1);
	evbuffer_freeze(bufferevent_get_output(bev), 0);
	evhttp_send_reply(r, 403, NULL, NULL); /* frees the request with the connection */
	bufferevent_trigger_event(bev, BEV_EVENT_READING | BEV_EVENT_EOF, BEV_TRIG_DEFER_CALLBACKS);
}

static const struct net_route *find_route(const net_server *srv, int listener, const char *method,
					  const char *path, bool *path_known)
{
	*path_known = false;
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct net_route *rt = &srv->routes[i];
		if ((rt->listener != -1 && rt->listener != listener) || strcmp(rt->path, path) != 0)
			continue;
		*path_known = true;
		if (strcmp(rt->method, method) == 0)
			return rt;
	}
	return NULL;
}

/* Marker stored as an SSL's app data once its socket's TCP_NODELAY is known
 * to be on (the address is the marker; the value is never read). */
static const char nodelay_checked = 1;

/* TCP_NODELAY on fd, set if it was off; false if it cannot be read or set. */
static bool ensure_nodelay(evutil_socket_t fd)
{
	int on = 0;
	socklen_t ol = sizeof(on);
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &ol) != 0)
		return false;
	if (!on) {
		int one = 1;
		on = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
	}
	return on != 0;
}

/* Transport facts for net_request: TLS state, peer, client certificate.
 * *der_out is malloc'd when a client certificate is present. */
static void fill_transport(struct net_worker_http *wh, struct evhttp_request *r, net_request *req,
			   uint8_t **der_out)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r);
	if (evcon == NULL)
		return;
	char *addr = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(evcon, &addr, &port);
	req->peer_addr = addr != NULL ? addr : "";
	req->peer_port = port;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	SSL *ssl = wh->l->tls && bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	/* A TLS connection remembers in its SSL's app data that TCP_NODELAY
	 * was seen on, so that only its first request pays the system call. */
	if (ssl != NULL && SSL_get_app_data(ssl) == &nodelay_checked) {
		req->tcp_nodelay = true;
	} else {
		req->tcp_nodelay = ensure_nodelay(bev != NULL ? bufferevent_getfd(bev) : -1);
		if (req->tcp_nodelay && ssl != NULL)
			SSL_set_app_data(ssl, (void *)&nodelay_checked);
	}
	if (ssl == NULL)
		return;
	req->tls = true;
	req->tls_resumed = SSL_session_reused(ssl) == 1;
	req->tls_version = SSL_get_version(ssl);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	if (peer == NULL)
		return;
	int n = i2d_X509(peer, NULL);
	if (n <= 0)
		return;
	uint8_t *der = malloc((size_t)n);
	if (der == NULL)
		return;
	uint8_t *p = der;
	if (i2d_X509(peer, &p) != n ||
	    EVP_Digest(der, (size_t)n, req->client_cert_sha256, NULL, EVP_sha256(), NULL) != 1) {
		free(der);
		return;
	}
	req->has_client_cert = true;
	req->client_cert_der = der;
	req->client_cert_der_len = (size_t)n;
	*der_out = der;
}

static void dispatch_cb(struct evhttp_request *r, void *arg)
{
	struct net_worker_http *wh = arg;
	struct net_worker *w = wh->w;
	net_server *srv = w->srv;
	atomic_fetch_add(&srv->requests, 1);
	/* the request is complete: its deadline is met */
	struct net_conn *conn = conn_of(w, r);
	if (conn != NULL)
		conn_disarm(conn);
	if (wh->l->tls) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(r);
		struct bufferevent *bev =
		    evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
		if (bev != NULL && bufferevent_openssl_get_ssl(bev) == NULL) {
			refuse_cleartext(wh, r, bev);
			return;
		}
	}

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL || path[0] == '\0')
		path = "/";
	const char *method = method_name(evhttp_request_get_command(r));
	bool path_known;
	const struct net_route *rt = find_route(srv, wh->l->id, method, path, &path_known);
	if (rt == NULL) {
		send_simple(wh, r, path_known ? 405 : 404);
		return;
	}

	net_request req = {0};
	req.method = method;
	req.path = path;
	req.query = evhttp_uri_get_query(uri);
	req.listener = wh->l->id;

	struct net_header hdrs[NET_MAX_HEADERS_COUNT];
	size_t nh = 0;
	struct evkeyvalq *ih = evhttp_request_get_input_headers(r);
	for (struct evkeyval *kv = ih->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (nh == NET_MAX_HEADERS_COUNT) {
			send_simple(wh, r, 431);
			return;
		}
		hdrs[nh].name = kv->key;
		hdrs[nh].value = kv->value;
		nh++;
	}
	req.headers = hdrs;
	req.n_headers = nh;

	struct evbuffer *in = evhttp_request_get_input_buffer(r);
	req.body_len = evbuffer_get_length(in);
	req.body = req.body_len > 0 ? evbuffer_pullup(in, -1) : NULL;
	if (req.body_len > 0 && req.body == NULL) {
		send_simple(wh, r, 500);
		return;
	}

	uint8_t *cert_der = NULL;
	fill_transport(wh, r, &req, &cert_der);
	if (wh->l->auth == NET_CLIENT_AUTH_REQUIRE && !req.has_client_cert) {
		/* The handshake already demands a certificate; this only
		 * guards against a failure to read it back. */
		free(cert_der);
		send_simple(wh, r, 403);
		return;
	}

	net_response resp;
	net_response_init(&resp);
	esim_err err = rt->fn(&req, &resp, rt->arg);
	free(cert_der);
	if (err != ESIM_OK || resp.status == 0) {
		net_response_clear(&resp);
		send_simple(wh, r, 500);
		return;
	}
	atomic_fetch_add(&srv->handled, 1);
	send_response(wh, r, &resp);
	net_response_clear(&resp);
}

/* ---- workers ------------------------------------------------------------- */

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_worker *w = arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	bool late = now.tv_sec > w->deadline.tv_sec ||
		    (now.tv_sec == w->deadline.tv_sec && now.tv_nsec >= w->deadline.tv_nsec);
	if (w->inflight == 0 || late)
		event_base_loopbreak(w->base);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_worker *w = arg;
	for (size_t i = 0; i < w->srv->n_listeners; i++) {
		struct net_worker_http *wh = &w->https[i];
		if (wh->bound != NULL) {
			evhttp_del_accept_socket(wh->http, wh->bound);
			wh->bound = NULL;
			wh->lev = NULL;
		}
		if (wh->backoff_ev != NULL)
			event_del(wh->backoff_ev);
	}
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	unsigned g = w->srv->cfg.shutdown_grace_ms;
	w->deadline.tv_sec += g / 1000;
	w->deadline.tv_nsec += (long)(g % 1000) * 1000000L;
	if (w->deadline.tv_nsec >= 1000000000L) {
		w->deadline.tv_sec++;
		w->deadline.tv_nsec -= 1000000000L;
	}
	struct timeval tv = {0, NET_DRAIN_POLL_MS * 1000};
	event_add(w->drain_ev, &tv);
	drain_cb(-1, 0, w);
}

static void *worker_main(void *arg)
{
	struct net_worker *w = arg;
	/* A peer that resets while a reply is written must not raise SIGPIPE
	 * in the process: block it on this thread, so write() reports EPIPE
	 * instead. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	net_this_worker = w;
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static esim_err worker_setup(net_server *srv, struct net_worker *w)
{
	w->srv = srv;
	/* The epoll changelist folds the read/write interest changes that a
	 * request-response turn makes on a connection (evhttp enables and
	 * disables each direction) into one epoll_ctl before the next wait,
	 * instead of one per change: about 16 system calls per download
	 * otherwise. Its documented caveat is dup()ed descriptors, which this
	 * server never makes. */
	struct event_config *cfg = event_config_new();
	if (cfg == NULL)
		return ESIM_E_NOMEM;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (w->base == NULL)
		return ESIM_E_NOMEM;
	w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
	w->drain_ev = event_new(w->base, -1, EV_PERSIST, drain_cb, w);
	w->https = calloc(srv->n_listeners ? srv->n_listeners : 1, sizeof(*w->https));
	if (w->stop_ev == NULL || w->drain_ev == NULL || w->https == NULL)
		return ESIM_E_NOMEM;
	struct timeval tmo = {srv->cfg.timeout_ms / 1000, (srv->cfg.timeout_ms % 1000) * 1000};
	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct net_listener *l = srv->listeners[i];
		struct net_worker_http *wh = &w->https[i];
		wh->l = l;
		wh->w = w;
		wh->http = evhttp_new(w->base);
		if (wh->http == NULL)
			return ESIM_E_NOMEM;
		evhttp_set_max_body_size(wh->http, (ev_ssize_t)srv->cfg.max_body);
		evhttp_set_max_headers_size(wh->http, (ev_ssize_t)srv->cfg.max_headers);
		evhttp_set_timeout_tv(wh->http, &tmo);
		evhttp_set_allowed_methods(wh->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
							 EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
							 EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
		evhttp_set_default_content_type(wh->http, NULL);
		evhttp_set_gencb(wh->http, dispatch_cb, wh);
		evhttp_set_bevcb(wh->http, new_conn_bev, wh);
		int fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return ESIM_E_IO;
		struct evconnlistener *lev =
		    evconnlistener_new(w->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, 0, fd);
		if (lev == NULL) {
			close(fd);
			return ESIM_E_NOMEM;
		}
		wh->bound = evhttp_bind_listener(wh->http, lev);
		if (wh->bound == NULL) {
			evconnlistener_free(lev);
			return ESIM_E_NOMEM;
		}
		wh->lev = lev;
		wh->backoff_ev = evtimer_new(w->base, accept_resume_cb, wh);
		if (wh->backoff_ev == NULL)
			return ESIM_E_NOMEM;
		evconnlistener_set_error_cb(lev, accept_error_cb);
	}
	return ESIM_OK;
}

static void worker_free(net_server *srv, struct net_worker *w)
{
	if (w->https != NULL) {
		/* evhttp_free closes the connections: each releases its net_conn */
		for (size_t i = 0; i < srv->n_listeners; i++) {
			if (w->https[i].http != NULL)
				evhttp_free(w->https[i].http);
		}
		/* ... but for any not set up yet */
		while (w->conns != NULL)
			conn_release(w->conns);
		for (size_t i = 0; i < srv->n_listeners; i++) {
			if (w->https[i].backoff_ev != NULL)
				event_free(w->https[i].backoff_ev);
		}
		free(w->https);
	}
	if (w->stop_ev != NULL)
		event_free(w->stop_ev);
	if (w->drain_ev != NULL)
		event_free(w->drain_ev);
	if (w->base != NULL)
		event_base_free(w->base);
	memset(w, 0, sizeof(*w));
}

esim_err net_server_start(net_server *srv)
{
	if (srv->started || srv->n_listeners == 0)
		return ESIM_E_NET_STATE;
	srv->workers = calloc(srv->cfg.threads, sizeof(*srv->workers));
	if (srv->workers == NULL)
		return ESIM_E_NOMEM;
	srv->n_workers = srv->cfg.threads;
	srv->started = true;
	esim_err err = ESIM_OK;
	for (unsigned i = 0; i < srv->n_workers && err == ESIM_OK; i++)
		err = worker_setup(srv, &srv->workers[i]);
	for (unsigned i = 0; i < srv->n_workers && err == ESIM_OK; i++) {
		struct net_worker *w = &srv->workers[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			err = ESIM_E_INTERNAL;
		else
			w->running = true;
	}
	if (err != ESIM_OK)
		net_server_stop(srv);
	return err;
}

void net_server_stop(net_server *srv)
{
	if (srv == NULL || !srv->started || srv->stopped)
		return;
	srv->stopped = true;
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct net_worker *w = &srv->workers[i];
		if (w->running)
			event_active(w->stop_ev, EV_READ, 0);
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct net_worker *w = &srv->workers[i];
		if (w->running) {
			pthread_join(w->thread, NULL);
			w->running = false;
		}
	}
	/* No worker accepts any more: close the listening sockets so that
	 * new clients are refused rather than queued. */
	for (size_t i = 0; i < srv->n_listeners; i++) {
		if (srv->listeners[i]->fd >= 0) {
			close(srv->listeners[i]->fd);
			srv->listeners[i]->fd = -1;
		}
	}
	/* Closes idle keep-alive connections. */
	for (unsigned i = 0; i < srv->n_workers; i++)
		worker_free(srv, &srv->workers[i]);
	log_flush(srv);
}

void net_server_free(net_server *srv)
{
	if (srv == NULL)
		return;
	net_server_stop(srv);
	free(srv->workers);
	for (size_t i = 0; i < srv->n_listeners; i++)
		listener_free(srv->listeners[i]);
	free(srv->listeners);
	for (size_t i = 0; i < srv->n_routes; i++) {
		free(srv->routes[i].method);
		free(srv->routes[i].path);
	}
	free(srv->routes);
	if (srv->log_mu_ok)
		pthread_mutex_destroy(&srv->log_mu);
	free(srv);
}

void net_server_get_stats(const net_server *srv, struct net_server_stats *out)
{
	net_server *s = (net_server *)srv;
	out->connections = atomic_load(&s->connections);
	out->requests = atomic_load(&s->requests);
	out->handled = atomic_load(&s->handled);
	out->tls_handshakes = atomic_load(&s->handshakes);
	out->tls_resumed = atomic_load(&s->resumed);
	out->refused_listener_cap = atomic_load(&s->refused_listener_cap);
	out->refused_address_cap = atomic_load(&s->refused_address_cap);
	out->deadline_closed = atomic_load(&s->deadline_closed);
	out->accept_errors = atomic_load(&s->accept_errors);
	out->log_suppressed = atomic_load(&s->log_suppressed);
	out->setup_refused = atomic_load(&s->setup_refused);
}

void net_server_test_fail_tls_setup(net_server *srv, int id, bool fail)
{
	if (id >= 0 && (size_t)id < srv->n_listeners)
		atomic_store(&srv->listeners[id]->test_fail_tls, fail);
}
