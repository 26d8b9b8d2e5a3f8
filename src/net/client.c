/*
 * net_client: the HTTPS client of the LPA (ES9+, ES11), of the operator
 * service (ES2+ toward the SM-DP+) and of the SM-DP+'s callback outbox,
 * written directly on OpenSSL and a TCP socket (docs/net.md says why not
 * libcurl: start-up time and a 30-library dependency tree).
 *
 * SGP.22 (digest 5.1, 10.4) has the LPA check CERT.DPtls against the CIs it
 * trusts and the SM-DP+ host name. DPtls and DStls are signed by the CI
 * directly, so OpenSSL's chain building with the configured CIs as the only
 * trust anchors (never the system store) is that check; the host name (or
 * IP address) is checked inside the handshake (SSL_set1_host), and SNI is
 * sent for names. brainpoolP256r1 is in the offered groups, since OpenSSL's
 * default list lacks it and a brainpool SM-DP+ needs it.
 *
 * HTTP/1.1, one request at a time: the request (headers and body) leaves
 * in one write, the response is read with Content-Length, chunked, or
 * until the server closes, under a size cap. One connection per client is
 * kept alive; before reuse it is checked (a server that closed it, or sent
 * something unasked, makes us reconnect), and a request that found it dead
 * after all is sent again once on a new connection only when that is safe
 * (the method is idempotent, or the server had gone before it could read
 * the request). The last TLS session is kept and offered on reconnects.
 *
 * Timeouts: the socket is non-blocking and every wait is a poll() bounded
 * by the request's deadline (connect additionally by connect_timeout_ms).
 * OpenSSL reads and writes through a small BIO of ours (send with
 * MSG_NOSIGNAL, so no SIGPIPE in the threads that run clients).
 *
 * Nothing here touches OpenSSL before the first https:// request: a
 * program that never makes one pays nothing for TLS at start-up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "esim/log.h"
#include "esim/net.h"

#define NET_CLIENT_CONNECT_MS	10000
#define NET_CLIENT_TIMEOUT_MS	60000
#define NET_CLIENT_MAX_RESPONSE (4u << 20)
#define NET_CLIENT_GROUPS	"X25519:P-256:brainpoolP256r1:P-384"
#define NET_CLIENT_MAX_HEAD	(64u << 10) /* status line + headers of one response */
#define NET_CLIENT_RBUF		16384	    /* also the longest header line */
#define NET_CLIENT_PEER_MAX	300
#define NET_CLIENT_HOST_MAX	256
#define NET_CLIENT_BIO_TYPE	(0x70 | BIO_TYPE_SOURCE_SINK)

struct net_client {
	/* configuration (copied) */
	char *ca_file;
	char *ca_pem;
	char *cert_file;
	char *key_file;
	char *user_agent;
	unsigned connect_ms;
	unsigned timeout_ms;
	size_t max_response;

	/* TLS, set up at the first https request */
	SSL_CTX *ctx;
	BIO_METHOD *bio_method;
	SSL_SESSION *session;			/* the newest resumable session ... */
	char session_peer[NET_CLIENT_PEER_MAX]; /* ... and the server it is for */

	/* the kept-alive connection */
	int fd; /* -1: none */
	SSL *ssl;
	char peer[NET_CLIENT_PEER_MAX];	 /* "https://host:port" it goes to */
	char where[NET_CLIENT_PEER_MAX]; /* "host:port" for messages */
	bool conn_resumed;
	int name_error;	 /* X509_V_ERR_{HOSTNAME,IP_ADDRESS}_MISMATCH seen in the handshake */
	bool cert_asked; /* the server asked for a client certificate we do not have */

	/* received, not yet consumed */
	uint8_t rbuf[NET_CLIENT_RBUF];
	size_t rpos, rlen;

	/* per request */
	int64_t deadline; /* CLOCK_MONOTONIC ms */
	bool timed_out;
	int sys_errno;
	size_t rx; /* bytes received since the request was sent */

	long connections;
	bool fresh;
	bool last_resumed;
	char message[512];
	char request_id[ESIM_REQUEST_ID_MAX + 1]; /* X-Request-Id on every request; "" none */
};

struct net_url {
	bool tls;
	bool ip; /* host is an IP address literal */
	char host[NET_CLIENT_HOST_MAX];
	char port[6];
	const char *authority; /* as written, for Host: */
	size_t authority_len;
	const char *target; /* path and query; "" means "/" */
	size_t target_len;
};

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static esim_err fail(net_client *c, esim_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static esim_err fail(net_client *c, esim_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	return err;
}

/* OpenSSL's reason for the newest queued error, or fallback. */
static const char *ossl_reason(const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r != NULL ? r : fallback;
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

/* ---- URL ------------------------------------------------------------------ */

static bool host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_';
}

/* scheme://host[:port][/path][?query][#fragment]; no user info. */
static esim_err parse_url(net_client *c, const char *url, struct net_url *u)
{
	memset(u, 0, sizeof(*u));
	const char *p;
	if (strncasecmp(url, "https://", 8) == 0) {
		u->tls = true;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		p = url + 7;
	} else {
		return fail(c, ESIM_E_NET_BAD_REQUEST, "URL %.200s: not http:// or https://", url);
	}
	size_t alen = strcspn(p, "/?#");
	u->authority = p;
	u->authority_len = alen;
	const char *end = p + alen;
	const char *hp = p, *he;
	if (*hp == '[') {
		he = memchr(hp, ']', alen);
		if (he == NULL)
			return fail(c, ESIM_E_NET_BAD_REQUEST, "URL %.200s: unclosed [", url);
		hp++;
		p = he + 1;
		for (const char *q = hp; q < he; q++)
			if (!(host_char_ok(*q) || *q == ':'))
				return fail(c, ESIM_E_NET_BAD_REQUEST,
					    "URL %.200s: bad IPv6 address", url);
	} else {
		he = hp;
		while (he < end && *he != ':') {
			if (!host_char_ok(*he))
				return fail(c, ESIM_E_NET_BAD_REQUEST,
					    "URL %.200s: bad character in the host", url);
			he++;
		}
		p = he;
	}
	size_t hlen = (size_t)(he - hp);
	if (hlen == 0 || hlen >= sizeof(u->host))
		return fail(c, ESIM_E_NET_BAD_REQUEST, "URL %.200s: bad host", url);
	memcpy(u->host, hp, hlen);
	u->host[hlen] = '\0';
	if (p < end && *p == ':') {
		p++;
		size_t plen = (size_t)(end - p);
		unsigned long port = 0;
		for (const char *q = p; q < end; q++) {
			if (*q < '0' || *q > '9' || plen > 5)
				return fail(c, ESIM_E_NET_BAD_REQUEST, "URL %.200s: bad port", url);
			port = port * 10 + (unsigned long)(*q - '0');
		}
		if (plen == 0 || port == 0 || port > 65535)
			return fail(c, ESIM_E_NET_BAD_REQUEST, "URL %.200s: bad port", url);
		snprintf(u->port, sizeof(u->port), "%lu", port);
	} else if (p != end) {
		return fail(c, ESIM_E_NET_BAD_REQUEST, "URL %.200s: bad authority", url);
	} else {
		snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
	}
	u->target = end;
	u->target_len = strcspn(end, "#");
	for (size_t i = 0; i < u->target_len; i++)
		if ((unsigned char)end[i] <= 0x20 || end[i] == 0x7f)
			return fail(c, ESIM_E_NET_BAD_REQUEST,
				    "URL %.200s: space or control character in the path", url);
	unsigned char addr[sizeof(struct in6_addr)];
	u->ip = inet_pton(AF_INET, u->host, addr) == 1 || inet_pton(AF_INET6, u->host, addr) == 1;
	if (u->ip && strchr(u->host, ':') != NULL && *u->authority != '[')
		return fail(c, ESIM_E_NET_BAD_REQUEST, "URL %.200s: IPv6 address without []", url);
	return ESIM_OK;
}

/* ---- socket I/O under the request deadline --------------------------------- */

/* Wait for events on c->fd until deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(net_client *c, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = {.fd = c->fd, .events = events};
		int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR) {
			c->sys_errno = errno;
			return -1;
		}
	}
}

/* One recv (out false) or send (out true) on the client's socket, waiting
 * for it to be ready until the request's deadline: > 0 bytes moved, 0 at
 * the end of the stream (recv), -1 on error or time-out (recorded). */
static ssize_t sock_io(net_client *c, void *buf, size_t n, bool out)
{
	for (;;) {
		ssize_t k = out ? send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL)
				: recv(c->fd, buf, n, MSG_DONTWAIT);
		if (k >= 0)
			return k;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			c->sys_errno = errno;
			return -1;
		}
		int w = wait_fd(c, out ? POLLOUT : POLLIN, c->deadline);
		if (w <= 0) {
			c->timed_out = w == 0;
			return -1;
		}
	}
}

static ssize_t sock_read(net_client *c, void *buf, size_t n)
{
	return sock_io(c, buf, n, false);
}

static ssize_t sock_write(net_client *c, const void *buf, size_t n)
{
	return sock_io(c, (void *)buf, n, true);
}

/* The BIO under OpenSSL: sock_read / sock_write on the client's socket. */
static int bio_write(BIO *b, const char *data, int len)
{
	BIO_clear_retry_flags(b);
	ssize_t k = sock_write(BIO_get_data(b), data, (size_t)len);
	return k < 0 ? -1 : (int)k;
}

static int bio_read(BIO *b, char *data, int len)
{
	BIO_clear_retry_flags(b);
	ssize_t k = sock_read(BIO_get_data(b), data, (size_t)len);
	return k < 0 ? -1 : (int)k;
}

static int bio_puts(BIO *b, const char *s)
{
	return bio_write(b, s, (int)strlen(s));
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- TLS context ------------------------------------------------------------ */

/* The newest resumable session of a connection, kept for the next one to
 * the same server (TLS 1.3 tickets arrive after the handshake). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	net_client *c = SSL_get_app_data(ssl);
	if (c == NULL || SSL_SESSION_is_resumable(sess) != 1)
		return 0;
	SSL_SESSION_free(c->session);
	c->session = sess;
	snprintf(c->session_peer, sizeof(c->session_peer), "%s", c->peer);
	return 1; /* the reference is ours */
}

/* A certificate for another name is refused, but only after the chain's
 * own checks (issuer, signatures, validity): OpenSSL checks the name
 * before the dates, and a server whose certificate has expired (or is
 * otherwise bad) should be reported as untrusted whatever name it bears.
 * The name error is held back and raised at the leaf, the last call. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	net_client *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	if (c == NULL)
		return ok;
	int e = X509_STORE_CTX_get_error(xs);
	if (!ok && (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
		c->name_error = e;
		return 1;
	}
	if (ok && c->name_error != 0 && X509_STORE_CTX_get_error_depth(xs) == 0) {
		X509_STORE_CTX_set_error(xs, c->name_error);
		return 0;
	}
	return ok;
}

/* Called when the server asks for a client certificate and none is
 * configured: none is sent, and a refusal can then be named for what it is
 * (under TLS 1.3 it only arrives after our handshake has finished). */
static int client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
	(void)x509;
	(void)pkey;
	net_client *c = SSL_get_app_data(ssl);
	if (c != NULL)
		c->cert_asked = true;
	return 0;
}

static esim_err load_ca_pem(net_client *c, X509_STORE *store)
{
	BIO *b = BIO_new_mem_buf(c->ca_pem, -1);
	if (b == NULL)
		return ESIM_E_NOMEM;
	int n = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		int ok = X509_STORE_add_cert(store, x);
		X509_free(x);
		if (ok != 1) {
			BIO_free(b);
			return fail(c, ESIM_E_ARG, "CA certificates (PEM text): %s",
				    ossl_reason("not usable"));
		}
		n++;
	}
	BIO_free(b);
	ERR_clear_error(); /* the end of the text reads as "no start line" */
	if (n == 0)
		return fail(c, ESIM_E_ARG, "CA certificates (PEM text): no certificate in it");
	return ESIM_OK;
}

static esim_err tls_setup(net_client *c)
{
	if (c->ctx != NULL)
		return ESIM_OK;
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	BIO_METHOD *m = BIO_meth_new(NET_CLIENT_BIO_TYPE, "esim net_client socket");
	if (ctx == NULL || m == NULL || BIO_meth_set_write(m, bio_write) != 1 ||
	    BIO_meth_set_read(m, bio_read) != 1 || BIO_meth_set_puts(m, bio_puts) != 1 ||
	    BIO_meth_set_ctrl(m, bio_ctrl) != 1 || BIO_meth_set_create(m, bio_create) != 1) {
		SSL_CTX_free(ctx);
		BIO_meth_free(m);
		return fail(c, ESIM_E_NOMEM, "TLS set-up: %s", ossl_reason("out of memory"));
	}
	esim_err err = ESIM_OK;
	/* TLS 1.2 and 1.3; the groups list names brainpoolP256r1, which
	 * OpenSSL 3.0 does not offer otherwise. Security level 2 as Debian's
	 * configuration has it (P-256 and brainpoolP256r1 keys meet it). */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, NET_CLIENT_GROUPS) != 1)
		err = fail(c, ESIM_E_UNSUPPORTED, "TLS set-up: %s", ossl_reason("groups list"));
	SSL_CTX_set_security_level(ctx, 2);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				     SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	/* The configured certificates are the trust anchors, whether self-signed
	 * CIs or not (as the libcurl client had it: a pinned server certificate
	 * works too). Nothing else: no default paths, no system store. */
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	if (err == ESIM_OK && c->ca_file != NULL) {
		if (X509_STORE_load_file(store, c->ca_file) != 1)
			err = fail(c, ESIM_E_ARG, "CA file %.300s: %s", c->ca_file,
				   ossl_reason("no certificate in it"));
	} else if (err == ESIM_OK) {
		err = load_ca_pem(c, store);
	}
	if (err == ESIM_OK && c->cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1)
			err = fail(c, ESIM_E_NET_CLIENT_CERT, "client certificate %.300s: %s",
				   c->cert_file, ossl_reason("not usable"));
		else if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1 &&
			 ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
			err = fail(c, ESIM_E_NET_CLIENT_CERT, "client key %.300s: %s", c->key_file,
				   ossl_reason("not usable"));
		else if (SSL_CTX_check_private_key(ctx) != 1)
			err = fail(c, ESIM_E_NET_CLIENT_CERT,
				   "client key %.200s does not match the certificate %.200s",
				   c->key_file, c->cert_file);
	}
	ERR_clear_error();
	if (err != ESIM_OK) {
		SSL_CTX_free(ctx);
		BIO_meth_free(m);
		return err;
	}
	SSL_CTX_set_session_cache_mode(ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	if (c->cert_file == NULL)
		SSL_CTX_set_client_cert_cb(ctx, client_cert_cb);
	c->ctx = ctx;
	c->bio_method = m;
	return ESIM_OK;
}

/* ---- connection --------------------------------------------------------------- */

static void conn_close(net_client *c)
{
	if (c->ssl != NULL) {
		if (c->fd >= 0) {
			/* close_notify, best effort, never waiting */
			int64_t saved = c->deadline;
			bool saved_to = c->timed_out;
			int saved_errno = c->sys_errno;
			c->deadline = now_ms();
			SSL_shutdown(c->ssl);
			c->deadline = saved;
			c->timed_out = saved_to;
			c->sys_errno = saved_errno;
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->peer[0] = '\0';
	c->conn_resumed = false;
	OPENSSL_cleanse(c->rbuf, c->rlen);
	c->rpos = c->rlen = 0;
}

/* Whether the kept-alive connection can carry the next request: nothing
 * unread and nothing arrived meanwhile (an end of stream, a reset, or
 * bytes nobody asked for all mean: do not send on it). */
static bool conn_usable(net_client *c)
{
	if (c->fd < 0 || c->rpos != c->rlen || (c->ssl != NULL && SSL_has_pending(c->ssl)))
		return false;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	return poll(&pfd, 1, 0) == 0;
}

static esim_err tcp_connect(net_client *c, const struct net_url *u)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	if (u->ip)
		hints.ai_flags |= AI_NUMERICHOST;
	struct addrinfo *res = NULL;
	int g = getaddrinfo(u->host, u->port, &hints, &res);
	if (g != 0)
		return fail(c, ESIM_E_NET_CONNECT, "resolving %s: %s", u->host,
			    g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
	int64_t start = now_ms();
	int64_t deadline = start + c->connect_ms;
	if (deadline > c->deadline)
		deadline = c->deadline;
	int last = ECONNREFUSED;
	bool timed_out = false;
	for (struct addrinfo *ai = res; ai != NULL && c->fd < 0 && !timed_out; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			last = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r != 0 && errno == EINPROGRESS) {
			c->fd = fd;
			int w = wait_fd(c, POLLOUT, deadline);
			c->fd = -1;
			socklen_t sl = sizeof(last);
			if (w == 0) {
				timed_out = true;
			} else if (w < 0) {
				last = c->sys_errno;
			} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &sl) != 0) {
				last = errno;
			} else if (last == 0) {
				r = 0;
			}
		} else if (r != 0) {
			last = errno;
		}
		if (r == 0)
			c->fd = fd;
		else
			close(fd);
	}
	freeaddrinfo(res);
	if (c->fd >= 0) {
		c->connections++;
		return ESIM_OK;
	}
	if (timed_out)
		return fail(c, ESIM_E_NET_TIMEOUT, "connect to %s timed out after %lld ms",
			    c->where, (long long)(now_ms() - start));
	if (last == ECONNREFUSED)
		return fail(c, ESIM_E_NET_CONNECT, "connect to %s refused", c->where);
	return fail(c, ESIM_E_NET_CONNECT, "connect to %s failed: %s", c->where, strerror(last));
}

static esim_err tls_handshake(net_client *c, const struct net_url *u)
{
	esim_err err = tls_setup(c);
	if (err != ESIM_OK)
		return err;
	ERR_clear_error();
	SSL *ssl = SSL_new(c->ctx);
	BIO *b = BIO_new(c->bio_method);
	if (ssl == NULL || b == NULL) {
		SSL_free(ssl);
		BIO_free(b);
		return fail(c, ESIM_E_NOMEM, "TLS set-up: out of memory");
	}
	BIO_set_data(b, c);
	SSL_set_bio(ssl, b, b);
	SSL_set_app_data(ssl, c);
	c->ssl = ssl;
	int ok;
	if (u->ip) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host);
	} else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok =
		    SSL_set1_host(ssl, u->host) == 1 && SSL_set_tlsext_host_name(ssl, u->host) == 1;
	}
	if (ok != 1)
		return fail(c, ESIM_E_NET_BAD_REQUEST, "host %s: not usable for TLS", u->host);
	if (c->session != NULL && strcmp(c->session_peer, c->peer) == 0)
		SSL_set_session(ssl, c->session);
	c->name_error = 0;
	c->cert_asked = false;
	int connected = SSL_connect(ssl);
	long vr = SSL_get_verify_result(ssl);
	if (connected == 1 && vr == X509_V_OK && c->name_error == 0) {
		c->conn_resumed = SSL_session_reused(ssl) == 1;
		return ESIM_OK;
	}
	if (vr == X509_V_OK && c->name_error != 0)
		vr = c->name_error; /* never reached: verify_cb fails the handshake */
	if (c->timed_out)
		err = fail(c, ESIM_E_NET_TIMEOUT, "TLS handshake with %s timed out", c->where);
	else if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
		err = fail(c, ESIM_E_NET_HOSTNAME,
			   "TLS verify failed: the certificate of %s is not for %s (%s)", c->where,
			   u->host, X509_verify_cert_error_string(vr));
	else if (vr != X509_V_OK)
		err = fail(c, ESIM_E_NET_UNTRUSTED_SERVER, "TLS verify failed: %s (server %s)",
			   X509_verify_cert_error_string(vr), c->where);
	else if (ERR_peek_last_error() != 0)
		err = fail(c, ESIM_E_NET_TLS, "TLS handshake with %s failed: %s", c->where,
			   ossl_reason("error"));
	else
		err =
		    fail(c, ESIM_E_NET_TLS, "TLS handshake with %s failed: %s", c->where,
			 c->sys_errno ? strerror(c->sys_errno) : "connection closed by the server");
	ERR_clear_error();
	/* the session of a failed handshake is not offered again */
	if (c->session != NULL && strcmp(c->session_peer, c->peer) == 0) {
		SSL_SESSION_free(c->session);
		c->session = NULL;
	}
	return err;
}

static esim_err conn_open(net_client *c, const struct net_url *u, const char *peer)
{
	conn_close(c);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	esim_err err = tcp_connect(c, u);
	if (err == ESIM_OK && u->tls)
		err = tls_handshake(c, u);
	if (err != ESIM_OK) {
		conn_close(c);
		return err;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	return ESIM_OK;
}

/* ---- reading the response ------------------------------------------------------- */

/* More bytes into rbuf (compacted first): ESIM_OK with *eof set at the end
 * of the stream, or the error. */
static esim_err conn_fill(net_client *c, bool *eof)
{
	*eof = false;
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
		OPENSSL_cleanse(c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
	}
	size_t room = sizeof(c->rbuf) - c->rlen;
	if (room == 0)
		return fail(c, ESIM_E_NET_IO, "HTTP response from %s: line longer than %u bytes",
			    c->where, (unsigned)sizeof(c->rbuf));
	ssize_t k;
	if (c->ssl != NULL) {
		ERR_clear_error();
		int n =
		    SSL_read(c->ssl, c->rbuf + c->rlen, room > INT32_MAX ? INT32_MAX : (int)room);
		if (n > 0) {
			k = n;
		} else {
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_ZERO_RETURN ||
			    (e == SSL_ERROR_SYSCALL && !c->timed_out && c->sys_errno == 0 &&
			     ERR_peek_last_error() == 0)) {
				k = 0;
			} else if (c->timed_out) {
				return fail(c, ESIM_E_NET_TIMEOUT, "no answer from %s within %u ms",
					    c->where, c->timeout_ms);
			} else if (e == SSL_ERROR_SSL) {
				esim_err err = fail(c, ESIM_E_NET_TLS, "TLS error from %s: %s",
						    c->where, ossl_reason("protocol error"));
				ERR_clear_error();
				return err;
			} else {
				return fail(c, ESIM_E_NET_IO, "receiving from %s: %s", c->where,
					    c->sys_errno ? strerror(c->sys_errno) : "I/O error");
			}
		}
	} else {
		k = sock_read(c, c->rbuf + c->rlen, room);
		if (k < 0 && c->timed_out)
			return fail(c, ESIM_E_NET_TIMEOUT, "no answer from %s within %u ms",
				    c->where, c->timeout_ms);
		if (k < 0)
			return fail(c, ESIM_E_NET_IO, "receiving from %s: %s", c->where,
				    strerror(c->sys_errno));
	}
	if (k == 0) {
		*eof = true;
		return ESIM_OK;
	}
	c->rlen += (size_t)k;
	c->rx += (size_t)k;
	return ESIM_OK;
}

/* One line (CRLF or LF ended, without it) as a pointer into rbuf, valid
 * until the next read. *budget is what the response head may still use. */
static esim_err read_line(net_client *c, const char **line, size_t *len, size_t *budget)
{
	size_t scanned = 0;
	for (;;) {
		const uint8_t *start = c->rbuf + c->rpos;
		size_t avail = c->rlen - c->rpos;
		const uint8_t *nl = memchr(start + scanned, '\n', avail - scanned);
		if (nl != NULL) {
			size_t n = (size_t)(nl - start);
			if (n + 1 > *budget)
				break;
			*budget -= n + 1;
			c->rpos += n + 1;
			if (n > 0 && start[n - 1] == '\r')
				n--;
			*line = (const char *)start;
			*len = n;
			return ESIM_OK;
		}
		scanned = avail;
		if (avail >= *budget)
			break;
		bool eof;
		esim_err err = conn_fill(c, &eof);
		if (err != ESIM_OK)
			return err;
		if (eof)
			return fail(c, ESIM_E_NET_IO,
				    c->rx == 0
					? "connection closed by %s before it answered"
					: "connection closed by %s in the middle of the answer",
				    c->where);
	}
	return fail(c, ESIM_E_NET_IO, "HTTP response from %s: headers over %u bytes", c->where,
		    NET_CLIENT_MAX_HEAD);
}

/* Exactly n body bytes into out (n already checked against the cap). */
static esim_err read_exact(net_client *c, esim_buf *out, size_t n)
{
	while (n > 0) {
		if (c->rpos == c->rlen) {
			bool eof;
			esim_err err = conn_fill(c, &eof);
			if (err != ESIM_OK)
				return err;
			if (eof)
				return fail(c, ESIM_E_NET_IO,
					    "connection closed by %s in the middle of the body",
					    c->where);
		}
		size_t k = c->rlen - c->rpos < n ? c->rlen - c->rpos : n;
		esim_err err = esim_buf_append(out, c->rbuf + c->rpos, k);
		if (err != ESIM_OK)
			return err;
		c->rpos += k;
		n -= k;
	}
	return ESIM_OK;
}

static esim_err too_large(net_client *c, size_t cap)
{
	return fail(c, ESIM_E_NET_BODY_TOO_LARGE, "response from %s: body over %zu bytes", c->where,
		    cap);
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool token_in(const char *v, size_t n, const char *word)
{
	size_t wl = strlen(word);
	for (size_t i = 0; i < n;) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == wl && strncasecmp(v + s, word, wl) == 0)
			return true;
	}
	return false;
}

static bool parse_size(const char *v, size_t n, int base, uint64_t *out)
{
	uint64_t x = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		int d;
		char ch = v[i];
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (base == 16 && ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (base == 16 && ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return false;
		if (x > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		x = x * (uint64_t)base + (uint64_t)d;
	}
	*out = x;
	return true;
}

struct head {
	bool chunked;
	bool has_length;
	uint64_t length;
	bool keep_alive;
};

static esim_err bad_response(net_client *c, const char *what)
{
	return fail(c, ESIM_E_NET_IO, "malformed HTTP response from %s: %s", c->where, what);
}

/* Status line and headers; 1xx interim answers are skipped. */
static esim_err read_head(net_client *c, struct net_client_response *resp, struct head *h)
{
	size_t budget = NET_CLIENT_MAX_HEAD;
	const char *l;
	size_t n;
	esim_err err;
	do {
		memset(h, 0, sizeof(*h));
		resp->content_type[0] = resp->admin_protocol[0] = '\0';
		if ((err = read_line(c, &l, &n, &budget)) != ESIM_OK)
			return err;
		/* HTTP/1.x SSS[ reason] */
		if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') ||
		    l[8] != ' ' || l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' ||
		    l[11] < '0' || l[11] > '9' || (n > 12 && l[12] != ' '))
			return bad_response(c, "bad status line");
		h->keep_alive = l[7] == '1';
		resp->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
		for (;;) {
			if ((err = read_line(c, &l, &n, &budget)) != ESIM_OK)
				return err;
			if (n == 0)
				break;
			const char *colon = memchr(l, ':', n);
			if (colon == NULL || colon == l || l[0] == ' ' || l[0] == '\t' ||
			    colon[-1] == ' ' || colon[-1] == '\t')
				return bad_response(c, "bad header line");
			size_t nl = (size_t)(colon - l);
			const char *v = colon + 1;
			size_t vl = n - nl - 1;
			while (vl > 0 && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (nl == 14 && strncasecmp(l, "Content-Length", nl) == 0) {
				uint64_t len;
				if (!parse_size(v, vl, 10, &len) ||
				    (h->has_length && len != h->length))
					return bad_response(c, "bad Content-Length");
				h->has_length = true;
				h->length = len;
			} else if (nl == 17 && strncasecmp(l, "Transfer-Encoding", nl) == 0) {
				/* only chunked is spoken (no gzip, no layered codings) */
				if (vl != 7 || strncasecmp(v, "chunked", 7) != 0)
					return bad_response(c, "unsupported Transfer-Encoding");
				h->chunked = true;
			} else if (nl == 10 && strncasecmp(l, "Connection", nl) == 0) {
				if (token_in(v, vl, "close"))
					h->keep_alive = false;
				else if (token_in(v, vl, "keep-alive"))
					h->keep_alive = true;
			} else if (nl == 12 && strncasecmp(l, "Content-Type", nl) == 0) {
				copy_value(resp->content_type, sizeof(resp->content_type), v, vl);
			} else if (nl == 16 && strncasecmp(l, "X-Admin-Protocol", nl) == 0) {
				copy_value(resp->admin_protocol, sizeof(resp->admin_protocol), v,
					   vl);
			}
		}
	} while (resp->status < 200 && resp->status != 101);
	if (resp->status == 101)
		return bad_response(c, "unexpected 101 Switching Protocols");
	if (h->chunked && h->has_length) {
		h->has_length = false; /* chunked wins; the connection is not reused */
		h->keep_alive = false;
	}
	return ESIM_OK;
}

static esim_err read_chunked(net_client *c, esim_buf *body)
{
	size_t budget = NET_CLIENT_MAX_HEAD; /* chunk-size lines and trailers */
	const char *l;
	size_t n;
	esim_err err;
	for (;;) {
		if ((err = read_line(c, &l, &n, &budget)) != ESIM_OK)
			return err;
		size_t hl = 0;
		while (hl < n && l[hl] != ';' && l[hl] != ' ' && l[hl] != '\t')
			hl++;
		uint64_t size;
		if (!parse_size(l, hl, 16, &size))
			return bad_response(c, "bad chunk size");
		if (size == 0)
			break;
		if (size > c->max_response - body->len)
			return too_large(c, c->max_response);
		if ((err = read_exact(c, body, (size_t)size)) != ESIM_OK)
			return err;
		if ((err = read_line(c, &l, &n, &budget)) != ESIM_OK)
			return err;
		if (n != 0)
			return bad_response(c, "chunk longer than its size");
	}
	do { /* trailers, ignored */
		if ((err = read_line(c, &l, &n, &budget)) != ESIM_OK)
			return err;
	} while (n != 0);
	return ESIM_OK;
}

static esim_err read_until_close(net_client *c, esim_buf *body)
{
	for (;;) {
		size_t k = c->rlen - c->rpos;
		if (k > c->max_response - body->len)
			return too_large(c, c->max_response);
		esim_err err = esim_buf_append(body, c->rbuf + c->rpos, k);
		if (err != ESIM_OK)
			return err;
		c->rpos = c->rlen;
		bool eof;
		if ((err = conn_fill(c, &eof)) != ESIM_OK)
			return err;
		if (eof)
			return ESIM_OK;
	}
}

static esim_err read_response(net_client *c, const char *method, struct net_client_response *resp,
			      bool *keep)
{
	struct head h;
	esim_err err = read_head(c, resp, &h);
	if (err != ESIM_OK)
		return err;
	*keep = h.keep_alive;
	if (strcmp(method, "HEAD") == 0 || resp->status == 204 || resp->status == 304)
		return ESIM_OK;
	if (h.chunked)
		return read_chunked(c, &resp->body);
	if (h.has_length) {
		if (h.length > c->max_response)
			return too_large(c, c->max_response);
		if ((err = esim_buf_reserve(&resp->body, (size_t)h.length)) != ESIM_OK)
			return err;
		return read_exact(c, &resp->body, (size_t)h.length);
	}
	*keep = false;
	return read_until_close(c, &resp->body);
}

/* ---- the request ----------------------------------------------------------------- */

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    strchr("\"(),/:;<=>?@[\\]{}", *s) != NULL)
			return false;
	return true;
}

static esim_err append_str(esim_buf *b, const char *s, size_t n)
{
	return esim_buf_append(b, s, n);
}

static esim_err build_request(net_client *c, const char *method, const struct net_url *u,
			      const struct net_header *headers, size_t n_headers,
			      const uint8_t *body, size_t body_len, esim_buf *out)
{
	bool own_host = true, own_ua = true, own_rid = c->request_id[0] != '\0';
	for (size_t i = 0; i < n_headers; i++) {
		const char *nm = headers[i].name, *v = headers[i].value;
		if (nm == NULL || v == NULL || !is_token(nm))
			return fail(c, ESIM_E_NET_BAD_REQUEST, "request header name %.60s",
				    nm ? nm : "(null)");
		for (const char *q = v; *q; q++)
			if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
				return fail(c, ESIM_E_NET_BAD_REQUEST,
					    "request header %.60s: control character in the value",
					    nm);
		if (strcasecmp(nm, "Content-Length") == 0 ||
		    strcasecmp(nm, "Transfer-Encoding") == 0)
			return fail(c, ESIM_E_NET_BAD_REQUEST,
				    "request header %s: set by the client itself", nm);
		if (strcasecmp(nm, "Host") == 0)
			own_host = false;
		if (strcasecmp(nm, "User-Agent") == 0)
			own_ua = false;
		if (strcasecmp(nm, ESIM_REQUEST_ID_HEADER) == 0)
			own_rid = false;
	}
	bool with_length =
	    body_len > 0 || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
			     strcmp(method, "DELETE") != 0);
	char num[48];
	if (body_len > SIZE_MAX / 2)
		return fail(c, ESIM_E_NET_BAD_REQUEST, "request body of %zu bytes", body_len);
	esim_err err = esim_buf_reserve(out, 256 + body_len);
	if (err == ESIM_OK)
		err = append_str(out, method, strlen(method));
	if (err == ESIM_OK)
		err = append_str(out, " ", 1);
	if (err == ESIM_OK && u->target_len > 0 && u->target[0] != '/')
		err = append_str(out, "/", 1);
	if (err == ESIM_OK)
		err = u->target_len > 0 ? append_str(out, u->target, u->target_len)
					: append_str(out, "/", 1);
	if (err == ESIM_OK)
		err = append_str(out, " HTTP/1.1\r\n", 11);
	if (err == ESIM_OK && own_host) {
		err = append_str(out, "Host: ", 6);
		if (err == ESIM_OK)
			err = append_str(out, u->authority, u->authority_len);
		if (err == ESIM_OK)
			err = append_str(out, "\r\n", 2);
	}
	if (err == ESIM_OK && own_ua) {
		err = append_str(out, "User-Agent: ", 12);
		if (err == ESIM_OK)
			err = append_str(out, c->user_agent, strlen(c->user_agent));
		if (err == ESIM_OK)
			err = append_str(out, "\r\n", 2);
	}
	if (err == ESIM_OK && own_rid) {
		err = append_str(out, ESIM_REQUEST_ID_HEADER ": ",
				 strlen(ESIM_REQUEST_ID_HEADER) + 2);
		if (err == ESIM_OK)
			err = append_str(out, c->request_id, strlen(c->request_id));
		if (err == ESIM_OK)
			err = append_str(out, "\r\n", 2);
	}
	for (size_t i = 0; err == ESIM_OK && i < n_headers; i++) {
		err = append_str(out, headers[i].name, strlen(headers[i].name));
		if (err == ESIM_OK)
			err = append_str(out, ": ", 2);
		if (err == ESIM_OK)
			err = append_str(out, headers[i].value, strlen(headers[i].value));
		if (err == ESIM_OK)
			err = append_str(out, "\r\n", 2);
	}
	if (err == ESIM_OK && with_length) {
		int k = snprintf(num, sizeof(num), "Content-Length: %zu\r\n", body_len);
		err = append_str(out, num, (size_t)k);
	}
	if (err == ESIM_OK)
		err = append_str(out, "\r\n", 2);
	if (err == ESIM_OK && body_len > 0)
		err = esim_buf_append(out, body, body_len);
	return err;
}

/* The whole request in one write (one TLS record up to 16 KiB). */
static esim_err send_all(net_client *c, const esim_buf *req)
{
	size_t off = 0;
	while (off < req->len) {
		size_t n = req->len - off;
		ssize_t k;
		if (c->ssl != NULL) {
			ERR_clear_error();
			int r =
			    SSL_write(c->ssl, req->data + off, n > INT32_MAX ? INT32_MAX : (int)n);
			k = r > 0 ? r : -1;
		} else {
			k = sock_write(c, req->data + off, n);
		}
		if (k < 0) {
			if (c->timed_out)
				return fail(c, ESIM_E_NET_TIMEOUT, "sending to %s timed out",
					    c->where);
			if (c->sys_errno == 0 && c->ssl != NULL && ERR_peek_last_error() != 0) {
				esim_err err = fail(c, ESIM_E_NET_TLS, "TLS error to %s: %s",
						    c->where, ossl_reason("protocol error"));
				ERR_clear_error();
				return err;
			}
			return fail(c, ESIM_E_NET_IO, "sending to %s: %s", c->where,
				    c->sys_errno ? strerror(c->sys_errno) : "connection closed");
		}
		off += (size_t)k;
	}
	return ESIM_OK;
}

static bool idempotent(const char *method)
{
	static const char *const m[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strcmp(method, m[i]) == 0)
			return true;
	return false;
}

/* The server closed or reset the connection (no timeout, no TLS alert). */
static bool peer_went_away(const net_client *c)
{
	return !c->timed_out && (c->sys_errno == 0 || c->sys_errno == ECONNRESET ||
				 c->sys_errno == EPIPE || c->sys_errno == ECONNABORTED);
}

esim_err net_client_request(net_client *c, const char *method, const char *url,
			    const struct net_header *headers, size_t n_headers, const uint8_t *body,
			    size_t body_len, struct net_client_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	c->message[0] = '\0';
	c->last_resumed = false;
	if (method == NULL || url == NULL || (body == NULL && body_len != 0))
		return fail(c, ESIM_E_ARG, "request: no method or URL, or a length without a body");
	if (!is_token(method))
		return fail(c, ESIM_E_NET_BAD_REQUEST, "request method %.40s", method);
	struct net_url u;
	esim_err err = parse_url(c, url, &u);
	if (err != ESIM_OK)
		return err;
	char peer[NET_CLIENT_PEER_MAX];
	snprintf(peer, sizeof(peer), "%s://%s:%s", u.tls ? "https" : "http", u.host, u.port);
	esim_buf req = ESIM_BUF_INIT;
	if ((err = build_request(c, method, &u, headers, n_headers, body, body_len, &req)) !=
	    ESIM_OK) {
		esim_buf_wipe_free(&req);
		return err == ESIM_E_NET_BAD_REQUEST ? err : fail(c, err, "building the request");
	}
	snprintf(c->where, sizeof(c->where), strchr(u.host, ':') ? "[%s]:%s" : "%s:%s", u.host,
		 u.port);
	c->deadline = now_ms() + c->timeout_ms;
	c->timed_out = false;

	bool keep = false;
	for (int attempt = 0;; attempt++) {
		c->sys_errno = 0;
		bool reused = !c->fresh && strcmp(c->peer, peer) == 0 && conn_usable(c);
		if (!reused)
			err = conn_open(c, &u, peer);
		c->fresh = false;
		if (err != ESIM_OK)
			break;
		c->last_resumed = c->ssl != NULL && c->conn_resumed;
		c->rx = 0;
		bool sent = (err = send_all(c, &req)) == ESIM_OK;
		if (sent) {
			err = read_response(c, method, resp, &keep);
		} else if (err == ESIM_E_NET_IO) {
			/* A server may answer (413, 431) and close before reading
			 * all of a request: read its answer even so. */
			char wmsg[sizeof(c->message)];
			memcpy(wmsg, c->message, sizeof(wmsg));
			esim_err rerr = read_response(c, method, resp, &keep);
			if (rerr == ESIM_OK)
				keep = false;
			if (rerr == ESIM_OK || c->rx > 0 || rerr == ESIM_E_NET_TLS)
				err = rerr;
			else
				memcpy(c->message, wmsg, sizeof(wmsg));
		}
		if (err == ESIM_OK)
			break;
		if (!reused && c->cert_asked && c->rx == 0 &&
		    (err == ESIM_E_NET_IO || err == ESIM_E_NET_TLS)) {
			char was[sizeof(c->message)];
			memcpy(was, c->message, sizeof(was));
			err = fail(c, ESIM_E_NET_TLS,
				   "TLS: %s asks for a client certificate and none is configured "
				   "(%.300s)",
				   c->where, was);
		}
		/* A kept-alive connection the server had given up: once more on a
		 * new one, when that cannot run the request twice. */
		bool stale = reused && attempt == 0 && c->rx == 0 && err == ESIM_E_NET_IO &&
			     peer_went_away(c) && (idempotent(method) || !sent);
		esim_buf_wipe_free(&resp->body);
		memset(resp, 0, sizeof(*resp));
		conn_close(c);
		if (!stale)
			break;
		c->message[0] = '\0';
	}
	esim_buf_wipe_free(&req);
	if (err != ESIM_OK) {
		conn_close(c);
		esim_buf_wipe_free(&resp->body);
		resp->status = 0;
		return err;
	}
	if (!keep) {
		conn_close(c);
	} else if (c->rpos == c->rlen) {
		OPENSSL_cleanse(c->rbuf, c->rlen); /* the answer is the caller's now */
		c->rpos = c->rlen = 0;
	}
	if (resp->status >= 400)
		return fail(c, ESIM_E_NET_HTTP_STATUS, "HTTP status %ld", resp->status);
	return ESIM_OK;
}

/* ---- the rest of the API ------------------------------------------------------------ */

esim_err net_client_new(const struct net_client_config *cfg, net_client **out)
{
	*out = NULL;
	if (cfg == NULL || (cfg->ca_file == NULL) == (cfg->ca_pem == NULL) ||
	    (cfg->client_cert_file == NULL) != (cfg->client_key_file == NULL))
		return ESIM_E_ARG;
	const char *ua = cfg->user_agent ? cfg->user_agent : NET_USER_AGENT_LPA;
	for (const char *q = ua; *q; q++)
		if ((unsigned char)*q < 0x20)
			return ESIM_E_ARG;
	net_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ESIM_E_NOMEM;
	c->fd = -1;
	bool oom = false;
	c->ca_file = dup_or_null(cfg->ca_file, &oom);
	c->ca_pem = dup_or_null(cfg->ca_pem, &oom);
	c->cert_file = dup_or_null(cfg->client_cert_file, &oom);
	c->key_file = dup_or_null(cfg->client_key_file, &oom);
	c->user_agent = dup_or_null(ua, &oom);
	if (oom) {
		net_client_free(c);
		return ESIM_E_NOMEM;
	}
	c->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : NET_CLIENT_CONNECT_MS;
	c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : NET_CLIENT_TIMEOUT_MS;
	c->max_response = cfg->max_response ? cfg->max_response : NET_CLIENT_MAX_RESPONSE;
	*out = c;
	return ESIM_OK;
}

esim_err net_client_set_request_id(net_client *c, const char *id)
{
	if (c == NULL || (id != NULL && !esim_request_id_valid(id)))
		return ESIM_E_ARG;
	snprintf(c->request_id, sizeof(c->request_id), "%s", id ? id : "");
	return ESIM_OK;
}

void net_client_free(net_client *c)
{
	if (c == NULL)
		return;
	conn_close(c);
	SSL_SESSION_free(c->session);
	SSL_CTX_free(c->ctx);
	BIO_meth_free(c->bio_method);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->cert_file);
	free(c->key_file);
	free(c->user_agent);
	free(c);
}

void net_client_response_clear(struct net_client_response *r)
{
	esim_buf_wipe_free(&r->body);
	memset(r, 0, sizeof(*r));
}

esim_err net_client_post_json(net_client *c, const char *url, const char *json, size_t len,
			      struct net_client_response *resp)
{
	const struct net_header h[] = {
	    {"Content-Type", NET_CONTENT_TYPE_JSON},
	    {"X-Admin-Protocol", NET_ADMIN_PROTOCOL},
	    {"Accept", "application/json"},
	};
	return net_client_request(c, "POST", url, h, sizeof(h) / sizeof(h[0]),
				  (const uint8_t *)json, len, resp);
}

const char *net_client_errmsg(const net_client *c)
{
	return c->message;
}

long net_client_connections(const net_client *c)
{
	return c->connections;
}

bool net_client_last_resumed(const net_client *c)
{
	return c->last_resumed;
}

void net_client_fresh_connect(net_client *c)
{
	c->fresh = true;
}

bool net_error_is_transient(esim_err err, long http_status)
{
	switch (err) {
	case ESIM_E_NET_CONNECT:
	case ESIM_E_NET_TIMEOUT:
	case ESIM_E_NET_IO:
		return true;
	case ESIM_E_NET_HTTP_STATUS:
		return http_status >= 500 && http_status <= 599;
	default:
		return false;
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

esim_err net_client_post_json_retry(net_client *c, const char *url, const char *json, size_t len,
				    const struct net_retry *policy,
				    struct net_client_response *resp, unsigned *attempts)
{
	unsigned max = 1, backoff = 200, cap = 5000;
	if (policy != NULL && policy->safe_to_repeat) {
		max = policy->max_attempts ? policy->max_attempts : 3;
		backoff = policy->initial_backoff_ms ? policy->initial_backoff_ms : 200;
		cap = policy->max_backoff_ms ? policy->max_backoff_ms : 5000;
	}
	esim_err err = ESIM_OK;
	unsigned n = 0;
	for (;;) {
		n++;
		err = net_client_post_json(c, url, json, len, resp);
		if (err == ESIM_OK || n >= max || !net_error_is_transient(err, resp->status))
			break;
		net_client_response_clear(resp);
		sleep_ms(backoff);
		backoff = backoff > cap / 2 ? cap : backoff * 2;
	}
	if (attempts != NULL)
		*attempts = n;
	return err;
}
