/*
 * net_server under abuse, on loopback with real TLS (OpenSSL) and real
 * sockets: a slowloris that trickles one byte every 200 ms (in the TLS
 * handshake, in the headers, in the body) is cut off at the whole-request
 * deadline although the per-read timeout never fires; the per-address and
 * per-listener connection caps close the connection over the cap at once
 * while the others keep working, and free their slot on close; the log of
 * the refusals is rate-limited with a "suppressed" summary; and a server
 * that runs out of file descriptors backs off instead of spinning in
 * accept() (CPU time measured with getrusage in a forked child whose
 * RLIMIT_NOFILE is lowered), then serves the queued clients once
 * descriptors are free again. A TLS listener whose TLS setup fails for a
 * connection closes it unanswered (never plain HTTP on the TLS port), and
 * a listener's default headers are on every answer, the server's own
 * 404/405/400/413/501 included.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "testutil.h"

#include "esim/net.h"
#include "esim/pki.h"
#include "net/server_testing.h"

struct pem_id {
	struct crypto_issued iss;
	char cert[512];
	char key[512];
};

static char *dir;
static struct pem_id ci, tls;

/* ---- the log sink: lines counted and kept ---------------------------- */

struct log_sink {
	pthread_mutex_t mu;
	unsigned lines;
	unsigned suppressed_lines;
	unsigned long suppressed_sum; /* K of every "suppressed K" line */
	unsigned by_kind[4];	      /* accept, listener cap, address cap, deadline */
};

static void sink_fn(void *arg, const char *line)
{
	struct log_sink *s = arg;
	pthread_mutex_lock(&s->mu);
	s->lines++;
	unsigned long k = 0;
	if (sscanf(line, "net: suppressed %lu", &k) == 1) {
		s->suppressed_lines++;
		s->suppressed_sum += k;
	} else if (strstr(line, "accept failed") != NULL) {
		s->by_kind[0]++;
	} else if (strstr(line, "connections open (the cap): closed one from") != NULL) {
		s->by_kind[1]++;
	} else if (strstr(line, "(the cap): closed one more") != NULL) {
		s->by_kind[2]++;
	} else if (strstr(line, "without a complete request") != NULL) {
		s->by_kind[3]++;
	}
	pthread_mutex_unlock(&s->mu);
}

/* ---- PKI and server --------------------------------------------------- */

static void write_file(const char *path, const esim_buf *b)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
	fclose(f);
}

static void issue(struct pem_id *id, const char *name, crypto_issue_kind kind,
		  const struct pem_id *issuer)
{
	time_t now = time(NULL);
	struct crypto_issue_params p = {
	    .kind = kind,
	    .curve = CRYPTO_CURVE_P256,
	    .not_before = now - 3600,
	    .not_after = now + 86400,
	};
	if (issuer != NULL) {
		p.issuer_der = issuer->iss.der;
		p.issuer_der_len = issuer->iss.der_len;
		p.issuer_key = issuer->iss.key;
	}
	assert_esim(ESIM_OK, crypto_issue(&p, &id->iss));
	esim_buf c = ESIM_BUF_INIT, k = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, crypto_pki_cert_pem(id->iss.der, id->iss.der_len, &c));
	assert_esim(ESIM_OK, crypto_pki_key_pem(id->iss.key, &k));
	test_path(id->cert, sizeof(id->cert), "%s/%s.pem", dir, name);
	test_path(id->key, sizeof(id->key), "%s/%s.key", dir, name);
	write_file(id->cert, &c);
	write_file(id->key, &k);
	esim_buf_free(&c);
	esim_buf_wipe_free(&k);
}

static esim_err ping_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	esim_err e = net_response_set(resp, 200, "text/plain");
	if (e == ESIM_OK)
		e = net_response_append(resp, "pong", 4);
	return e;
}

/* A started server with one listener on 127.0.0.1 (TLS or plain). */
static net_server *start_server(const struct net_server_config *sc,
				const struct net_listener_config *extra, bool use_tls,
				uint16_t *port)
{
	net_server *srv;
	assert_esim(ESIM_OK, net_server_new(sc, &srv));
	struct net_listener_config lc = {0};
	if (extra != NULL)
		lc = *extra;
	lc.address = "127.0.0.1";
	lc.tls = use_tls;
	lc.cert_chain_file = use_tls ? tls.cert : NULL;
	lc.key_file = use_tls ? tls.key : NULL;
	int id;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &id));
	assert_esim(ESIM_OK, net_server_add_route(srv, id, "GET", "/ping", ping_handler, NULL));
	assert_esim(ESIM_OK, net_server_add_route(srv, id, "POST", "/ping", ping_handler, NULL));
	assert_esim(ESIM_OK, net_server_start(srv));
	*port = net_server_port(srv, id);
	return srv;
}

static int setup(void **state)
{
	(void)state;
	dir = test_mkdtemp();
	issue(&ci, "ci", CRYPTO_ISSUE_CI, NULL);
	issue(&tls, "tls", CRYPTO_ISSUE_DP_TLS, &ci);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	crypto_issued_clear(&ci.iss);
	crypto_issued_clear(&tls.iss);
	test_rm_rf(dir);
	free(dir);
	return 0;
}

/* ---- clients ------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A TCP connection to 127.0.0.1:port from source address src (NULL: any);
 * -1 when connect fails. */
static int tcp_from(const char *src, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (src != NULL) {
		struct sockaddr_in b = {.sin_family = AF_INET};
		assert_int_equal(inet_pton(AF_INET, src, &b.sin_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct tconn {
	int fd;
	SSL *ssl;
};

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, ci.cert, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* TCP + TLS handshake; false (and nothing open) when the server closes. */
static bool tls_open(SSL_CTX *ctx, const char *src, uint16_t port, struct tconn *c)
{
	c->ssl = NULL;
	c->fd = tcp_from(src, port);
	if (c->fd < 0)
		return false;
	struct timeval tv = {5, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c->ssl = SSL_new(ctx);
	assert_non_null(c->ssl);
	assert_int_equal(SSL_set_tlsext_host_name(c->ssl, "localhost"), 1);
	assert_int_equal(SSL_set_fd(c->ssl, c->fd), 1);
	if (SSL_connect(c->ssl) != 1) {
		SSL_free(c->ssl);
		close(c->fd);
		c->ssl = NULL;
		c->fd = -1;
		return false;
	}
	return true;
}

static void tls_close(struct tconn *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
}

/* GET /ping on a kept-alive TLS connection: true when "pong" comes back. */
static bool tls_ping(struct tconn *c)
{
	static const char req[] = "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n";
	if (SSL_write(c->ssl, req, (int)sizeof(req) - 1) != (int)sizeof(req) - 1)
		return false;
	char buf[1024];
	size_t got = 0;
	while (got < sizeof(buf) - 1) {
		int n = SSL_read(c->ssl, buf + got, (int)(sizeof(buf) - 1 - got));
		if (n <= 0)
			return false;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\npong") != NULL)
			return strncmp(buf, "HTTP/1.1 200", 12) == 0;
	}
	return false;
}

/* True once the peer has closed fd (EOF or reset); reads what arrives
 * (through ssl when given: a TLS 1.3 session ticket, an alert) and drops
 * it. Waits at most ms. fd must be non-blocking when ssl is given. */
static bool peer_closed(int fd, SSL *ssl, int ms)
{
	double end = now_s() + ms / 1000.0;
	for (;;) {
		double left = end - now_s();
		struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
		int r = poll(&p, 1, left > 0 ? (int)(left * 1000) : 0);
		if (r > 0) {
			char buf[4096];
			if (ssl != NULL) {
				int n = SSL_read(ssl, buf, sizeof(buf));
				if (n <= 0 && SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ)
					return true;
				if (n <= 0 && (p.revents & (POLLHUP | POLLRDHUP)))
					return true;
			} else {
				ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
				if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
					return true;
			}
			continue;
		}
		if (now_s() >= end)
			return false;
	}
}

/* Send prefix, then one more byte every 200 ms, for at most max_s seconds
 * or until the server closes the connection. With ssl, bytes go through
 * TLS. Returns the seconds from t0 to the close, or -1 if still open. */
static double trickle(int fd, SSL *ssl, const char *prefix, double t0, double max_s)
{
	size_t plen = strlen(prefix);
	int fl = fcntl(fd, F_GETFL);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
	double closed = -1;
	if (plen > 0) {
		ssize_t n = ssl != NULL ? SSL_write(ssl, prefix, (int)plen)
					: send(fd, prefix, plen, MSG_NOSIGNAL);
		assert_int_equal(n, (ssize_t)plen);
	}
	for (;;) {
		if (peer_closed(fd, ssl, 200)) {
			closed = now_s() - t0;
			break;
		}
		if (now_s() - t0 > max_s)
			break;
		char b = 'a';
		ssize_t n = ssl != NULL ? SSL_write(ssl, &b, 1) : send(fd, &b, 1, MSG_NOSIGNAL);
		if (n != 1) {
			closed = now_s() - t0; /* reset by the server */
			break;
		}
	}
	assert_int_equal(fcntl(fd, F_SETFL, fl), 0);
	return closed;
}

/* ---- the slowloris ------------------------------------------------------ */

#define DEADLINE_MS 1500
#define READ_TMO_MS 1000 /* per read: a byte every 200 ms never lets it fire */

static void test_slowloris_cut_at_deadline(void **state)
{
	(void)state;
	struct log_sink sink = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct net_server_config sc = {.threads = 2,
				       .timeout_ms = READ_TMO_MS,
				       .request_deadline_ms = DEADLINE_MS,
				       .log = sink_fn,
				       .log_arg = &sink};
	uint16_t port;
	net_server *srv = start_server(&sc, NULL, true, &port);
	SSL_CTX *ctx = client_ctx();
	const double lo = DEADLINE_MS / 1000.0 - 0.1, hi = DEADLINE_MS / 1000.0 + 0.8;

	/* 1. in the TLS handshake: a record header announcing 16 KiB of
	 * ClientHello, then its bytes one at a time */
	double t0 = now_s();
	int fd = tcp_from(NULL, port);
	assert_true(fd >= 0);
	double t = trickle(fd, NULL, "\x16\x03\x01\x40\x00\x01", t0, 6.0);
	close(fd);
	print_message("handshake trickle closed after %.2f s\n", t);
	assert_true(t >= lo && t <= hi);

	/* 2. in the headers of the first request: an endless header line */
	struct tconn c;
	t0 = now_s();
	assert_true(tls_open(ctx, NULL, port, &c));
	t = trickle(c.fd, c.ssl, "GET /ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", t0, 6.0);
	tls_close(&c);
	print_message("header trickle closed after %.2f s\n", t);
	assert_true(t >= lo && t <= hi);

	/* 3. in the body of a second request on a kept-alive connection: the
	 * deadline runs from that request's first byte, not from accept, and
	 * the keep-alive wait before it does not count */
	assert_true(tls_open(ctx, NULL, port, &c));
	assert_true(tls_ping(&c));
	usleep(700 * 1000); /* idle, under the read timeout */
	t0 = now_s();
	t = trickle(c.fd, c.ssl,
		    "POST /ping HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n", t0,
		    6.0);
	tls_close(&c);
	print_message("body trickle closed after %.2f s\n", t);
	assert_true(t >= lo && t <= hi);

	struct net_server_stats st;
	net_server_get_stats(srv, &st);
	assert_int_equal(st.deadline_closed, 3);
	net_server_free(srv);
	assert_int_equal(sink.by_kind[3], 3);

	/* The control: the same trickle with a deadline far away is still
	 * open after 4 s (so the per-read timeout alone never closes it), and
	 * the request, once finished, is answered. */
	sc.request_deadline_ms = 60000;
	srv = start_server(&sc, NULL, true, &port);
	t0 = now_s();
	assert_true(tls_open(ctx, NULL, port, &c));
	t = trickle(c.fd, c.ssl, "GET /ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", t0, 4.0);
	assert_true(t < 0);
	const char *rest = "\r\n\r\n";
	assert_int_equal(SSL_write(c.ssl, rest, 4), 4);
	char buf[512] = "";
	int n = SSL_read(c.ssl, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
	tls_close(&c);
	net_server_get_stats(srv, &st);
	assert_int_equal(st.deadline_closed, 0);
	net_server_free(srv);
	SSL_CTX_free(ctx);
}

/* ---- the caps -------------------------------------------------------------- */

static void test_connection_caps(void **state)
{
	(void)state;
	struct log_sink sink = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct net_server_config sc = {.threads = 2, .log = sink_fn, .log_arg = &sink};
	struct net_listener_config lc = {.max_connections = 7, .max_connections_per_address = 4};
	uint16_t port;
	net_server *srv = start_server(&sc, &lc, true, &port);
	SSL_CTX *ctx = client_ctx();

	/* four from 127.0.0.1, each working */
	struct tconn a[4];
	for (int i = 0; i < 4; i++) {
		assert_true(tls_open(ctx, "127.0.0.1", port, &a[i]));
		assert_true(tls_ping(&a[i]));
	}
	/* the fifth from the same address is closed at once, before TLS */
	double t0 = now_s();
	int fd = tcp_from("127.0.0.1", port);
	assert_true(fd >= 0);
	assert_true(peer_closed(fd, NULL, 1000));
	assert_true(now_s() - t0 < 0.5);
	close(fd);
	/* ... and a TLS client sees its handshake fail */
	struct tconn x;
	assert_false(tls_open(ctx, "127.0.0.1", port, &x));
	/* the first four still work */
	for (int i = 0; i < 4; i++)
		assert_true(tls_ping(&a[i]));
	/* another address is not held back by 127.0.0.1's cap */
	struct tconn b[3];
	for (int i = 0; i < 3; i++) {
		assert_true(tls_open(ctx, "127.0.0.2", port, &b[i]));
		assert_true(tls_ping(&b[i]));
	}
	/* seven open: the listener's cap closes the next from anywhere */
	assert_false(tls_open(ctx, "127.0.0.3", port, &x));
	/* a closed connection gives its slot back (to its address and to the
	 * listener) */
	tls_close(&a[0]);
	usleep(200 * 1000);
	assert_true(tls_open(ctx, "127.0.0.1", port, &a[0]));
	assert_true(tls_ping(&a[0]));

	struct net_server_stats st;
	net_server_get_stats(srv, &st);
	assert_int_equal(st.refused_address_cap, 2);
	assert_int_equal(st.refused_listener_cap, 1);

	/* a burst of refusals (127.0.0.1 is at its cap, the listener no
	 * longer): at most the rate's lines, then one summary */
	for (int i = 0; i < 3; i++)
		tls_close(&b[i]);
	usleep(200 * 1000);
	for (int i = 0; i < 40; i++) {
		fd = tcp_from("127.0.0.1", port);
		assert_true(fd >= 0);
		assert_true(peer_closed(fd, NULL, 1000));
		close(fd);
	}
	net_server_get_stats(srv, &st);
	assert_int_equal(st.refused_address_cap, 42);
	assert_int_equal(st.refused_listener_cap, 1);
	for (int i = 0; i < 4; i++)
		tls_close(&a[i]);
	net_server_free(srv);
	print_message("address cap lines %u, suppressed lines %u (sum %lu)\n", sink.by_kind[2],
		      sink.suppressed_lines, sink.suppressed_sum);
	/* the default 5 a second, plus what refilled meanwhile */
	assert_true(sink.by_kind[2] >= 5 && sink.by_kind[2] <= 15);
	assert_true(sink.suppressed_lines >= 1);
	assert_int_equal(sink.by_kind[2] + sink.suppressed_sum, 42);
	assert_int_equal(sink.by_kind[1], 1);
	SSL_CTX_free(ctx);
}

/* ---- out of file descriptors ------------------------------------------- */

struct backoff_result {
	long cpu_us;
	long wall_us;
	unsigned lines;
	unsigned long accept_errors;
	int filled;
};

static long tv_us(struct timeval tv)
{
	return (long)tv.tv_sec * 1000000L + (long)tv.tv_usec;
}

/* The child: a server whose process has no descriptor left. Reports over
 * `out` and is told what to do over `in`. Exits 0, or 2.. on setup errors. */
static void backoff_child(int in, int out)
{
	static struct log_sink sink = {.mu = PTHREAD_MUTEX_INITIALIZER};
	net_server *srv;
	struct net_server_config sc = {.threads = 2, .log = sink_fn, .log_arg = &sink};
	if (net_server_new(&sc, &srv) != ESIM_OK)
		_exit(2);
	struct net_listener_config lc = {.address = "127.0.0.1"};
	int id;
	if (net_server_add_listener(srv, &lc, &id) != ESIM_OK ||
	    net_server_add_route(srv, id, "GET", "/ping", ping_handler, NULL) != ESIM_OK ||
	    net_server_start(srv) != ESIM_OK)
		_exit(3);
	uint16_t port = net_server_port(srv, id);
	if (write(out, &port, sizeof(port)) != sizeof(port))
		_exit(4);

	/* no descriptor left: a low limit, every slot under it taken */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 256;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		_exit(5);
	static int fill[256];
	int nfill = 0;
	for (;;) {
		int fd = dup(out);
		if (fd < 0)
			break;
		fill[nfill++] = fd;
	}
	if (errno != EMFILE)
		_exit(6);
	char ch = 'R';
	if (write(out, &ch, 1) != 1 || read(in, &ch, 1) != 1)
		_exit(7);

	/* the parent's clients are queued now: a second of accept() failing */
	struct rusage r0, r1;
	struct timeval w0, w1;
	getrusage(RUSAGE_SELF, &r0);
	gettimeofday(&w0, NULL);
	usleep(1000 * 1000);
	getrusage(RUSAGE_SELF, &r1);
	gettimeofday(&w1, NULL);
	struct backoff_result res = {0};
	res.cpu_us =
	    tv_us(r1.ru_utime) - tv_us(r0.ru_utime) + tv_us(r1.ru_stime) - tv_us(r0.ru_stime);
	res.wall_us = tv_us(w1) - tv_us(w0);
	pthread_mutex_lock(&sink.mu);
	res.lines = sink.lines;
	pthread_mutex_unlock(&sink.mu);
	struct net_server_stats st;
	net_server_get_stats(srv, &st);
	res.accept_errors = st.accept_errors;
	res.filled = nfill;

	/* descriptors free again */
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	if (write(out, &res, sizeof(res)) != sizeof(res) || read(in, &ch, 1) != 1)
		_exit(8);
	net_server_free(srv);
	_exit(0);
}

static bool plain_ping_reply(int fd)
{
	char buf[1024];
	size_t got = 0;
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(buf) - 1) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\npong") != NULL)
			return strncmp(buf, "HTTP/1.1 200", 12) == 0;
	}
	return false;
}

static void test_accept_backoff_out_of_fds(void **state)
{
	(void)state;
	int p2c[2], c2p[2];
	assert_int_equal(pipe(p2c), 0);
	assert_int_equal(pipe(c2p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p2c[1]);
		close(c2p[0]);
		backoff_child(p2c[0], c2p[1]);
	}
	close(p2c[0]);
	close(c2p[1]);
	uint16_t port = 0;
	assert_int_equal(read(c2p[0], &port, sizeof(port)), sizeof(port));
	char ch;
	assert_int_equal(read(c2p[0], &ch, 1), 1);

	/* three clients queue up on a server that cannot accept them */
	static const char req[] = "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = tcp_from(NULL, port);
		assert_true(fds[i] >= 0);
		assert_int_equal(send(fds[i], req, sizeof(req) - 1, MSG_NOSIGNAL),
				 (ssize_t)sizeof(req) - 1);
	}
	ch = 'C';
	assert_int_equal(write(p2c[1], &ch, 1), 1);
	struct backoff_result res;
	assert_int_equal(read(c2p[0], &res, sizeof(res)), sizeof(res));
	double cpu = (double)res.cpu_us / (double)res.wall_us;
	print_message(
	    "out of fds (%d filled): cpu %.1f%% of wall, %u log lines, %lu accept errors\n",
	    res.filled, 100.0 * cpu, res.lines, res.accept_errors);
	/* accept() did fail (the test measures what it means to) */
	assert_true(res.accept_errors >= 2);
	/* no spinning, and a bounded log */
	assert_true(cpu < 0.20);
	assert_true(res.lines <= 20);

	/* descriptors are free again: the queued clients are served, and new
	 * ones */
	double t0 = now_s();
	for (int i = 0; i < 3; i++) {
		assert_true(plain_ping_reply(fds[i]));
		close(fds[i]);
	}
	print_message("queued clients served %.2f s after descriptors were freed\n", now_s() - t0);
	assert_true(now_s() - t0 < 2.5);
	int fd = tcp_from(NULL, port);
	assert_true(fd >= 0);
	assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
	assert_true(plain_ping_reply(fd));
	close(fd);

	ch = 'Q';
	assert_int_equal(write(p2c[1], &ch, 1), 1);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(p2c[1]);
	close(c2p[0]);
}

/* ---- TLS fails closed ------------------------------------------------------ */

/* Everything the peer sends on fd until it closes (or 5 s pass). */
static size_t read_all(int fd, char *buf, size_t cap)
{
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t got = 0;
	while (got < cap - 1) {
		ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

static void test_tls_setup_failure_closes(void **state)
{
	(void)state;
	struct log_sink sink = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct net_server_config sc = {.threads = 2, .log = sink_fn, .log_arg = &sink};
	uint16_t port;
	net_server *srv = start_server(&sc, NULL, true, &port);
	SSL_CTX *ctx = client_ctx();
	struct tconn c;

	/* SSL_new fails for every new connection: a plain-HTTP request to the
	 * TLS port gets no byte back, the connection is closed (well before
	 * the 30 s idle timeout), and a TLS client's handshake fails */
	net_server_test_fail_tls_setup(srv, 0, true);
	for (int i = 0; i < 3; i++) {
		int fd = tcp_from(NULL, port);
		assert_true(fd >= 0);
		static const char req[] = "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n";
		send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL); /* may already be reset */
		double t0 = now_s();
		char buf[1024];
		size_t n = read_all(fd, buf, sizeof(buf));
		close(fd);
		if (n > 0)
			print_message("answered in clear text on the TLS port: %.60s\n", buf);
		assert_int_equal(n, 0);
		assert_true(now_s() - t0 < 3.0);
	}
	assert_false(tls_open(ctx, NULL, port, &c));
	struct net_server_stats st;
	net_server_get_stats(srv, &st);
	assert_int_equal(st.setup_refused, 4);
	assert_int_equal(st.requests, 0);

	/* once TLS can be set up again, the same listener serves TLS */
	net_server_test_fail_tls_setup(srv, 0, false);
	assert_true(tls_open(ctx, NULL, port, &c));
	assert_true(tls_ping(&c));
	tls_close(&c);
	net_server_free(srv);
	assert_true(sink.lines >= 1);
	SSL_CTX_free(ctx);
}

/* ---- default headers on every answer ------------------------------------------- */

static const struct net_header test_defaults[] = {
    {"Content-Security-Policy", "default-src 'none'"},
    {"X-Frame-Options", "DENY"},
    {"X-Content-Type-Options", "nosniff"},
};

/* A handler with a policy of its own: it is kept, not doubled. */
static esim_err own_csp_handler(const net_request *req, net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	esim_err e = net_response_set(resp, 200, "text/plain");
	if (e == ESIM_OK)
		e = net_response_add_header(resp, "Content-Security-Policy", "sandbox");
	return e;
}

static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The head of an answer has status and each default header exactly once. */
static void assert_defaults(const char *answer, const char *status)
{
	const char *end = strstr(answer, "\r\n\r\n");
	if (end == NULL || strncmp(answer, status, strlen(status)) != 0)
		print_message("answer: %.200s\n", answer);
	assert_non_null(end);
	assert_int_equal(strncmp(answer, status, strlen(status)), 0);
	char head[2048];
	size_t hl = (size_t)(end - answer) + 2;
	assert_true(hl < sizeof(head));
	memcpy(head, answer, hl);
	head[hl] = '\0';
	for (size_t i = 0; i < sizeof(test_defaults) / sizeof(test_defaults[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), "\r\n%s: %s\r\n", test_defaults[i].name,
			 test_defaults[i].value);
		if (count_of(head, line) != 1)
			print_message("%s: no %s in\n%s\n", status, test_defaults[i].name, head);
		assert_int_equal(count_of(head, line), 1);
	}
}

/* One request on a new plain connection; the answer until the close. */
static void plain_exchange(uint16_t port, const char *req, size_t len, char *buf, size_t cap)
{
	int fd = tcp_from(NULL, port);
	assert_true(fd >= 0);
	assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	read_all(fd, buf, cap);
	close(fd);
}

static void tls_exchange(SSL_CTX *ctx, uint16_t port, const char *req, char *buf, size_t cap)
{
	struct tconn c;
	assert_true(tls_open(ctx, NULL, port, &c));
	assert_int_equal(SSL_write(c.ssl, req, (int)strlen(req)), (int)strlen(req));
	size_t got = 0;
	int n;
	while (got < cap - 1 && (n = SSL_read(c.ssl, buf + got, (int)(cap - 1 - got))) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	tls_close(&c);
}

static void test_default_headers_everywhere(void **state)
{
	(void)state;
	struct net_server_config sc = {.threads = 1, .max_body = 1024};
	struct net_listener_config lc = {.default_headers = test_defaults, .n_default_headers = 3};
	static char buf[8192];
	for (int use_tls = 0; use_tls <= 1; use_tls++) {
		net_server *srv;
		assert_esim(ESIM_OK, net_server_new(&sc, &srv));
		lc.address = "127.0.0.1";
		lc.tls = use_tls;
		lc.cert_chain_file = use_tls ? tls.cert : NULL;
		lc.key_file = use_tls ? tls.key : NULL;
		int id;
		assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &id));
		assert_esim(ESIM_OK,
			    net_server_add_route(srv, id, "GET", "/ping", ping_handler, NULL));
		assert_esim(ESIM_OK,
			    net_server_add_route(srv, id, "GET", "/own", own_csp_handler, NULL));
		assert_esim(ESIM_OK, net_server_start(srv));
		uint16_t port = net_server_port(srv, id);
		SSL_CTX *ctx = client_ctx();
		static const struct {
			const char *req, *status;
		} cases[] = {
		    /* a handler's answer */
		    {"GET /ping HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "HTTP/1.1 200"},
		    /* the server's own: unknown path, known path with another method */
		    {"GET /nope HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "HTTP/1.1 404"},
		    {"POST /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 404"},
		    {"DELETE /ping HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		     "HTTP/1.1 405"},
		    /* evhttp's own: a malformed request line, a body over the cap, an
		     * unknown method */
		    {"NOT A REQUEST\r\n\r\n", "HTTP/1.1 400"},
		    {"POST /ping HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n",
		     "HTTP/1.1 413"},
		    {"TRACE /ping HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		     "HTTP/1.1 501"},
		};
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (use_tls)
				tls_exchange(ctx, port, cases[i].req, buf, sizeof(buf));
			else
				plain_exchange(port, cases[i].req, strlen(cases[i].req), buf,
					       sizeof(buf));
			assert_defaults(buf, cases[i].status);
		}
		/* a header the handler set itself is kept, and not doubled */
		const char *own = "GET /own HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
		if (use_tls)
			tls_exchange(ctx, port, own, buf, sizeof(buf));
		else
			plain_exchange(port, own, strlen(own), buf, sizeof(buf));
		assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
		assert_int_equal(count_of(buf, "Content-Security-Policy:"), 1);
		assert_non_null(strstr(buf, "\r\nContent-Security-Policy: sandbox\r\n"));
		assert_non_null(strstr(buf, "\r\nX-Frame-Options: DENY\r\n"));
		SSL_CTX_free(ctx);
		net_server_free(srv);
	}

	/* a header that could split the answer is refused */
	static const struct net_header bad[] = {{"X-Bad", "a\r\nSet-Cookie: x=1"}};
	static const struct net_header bad_name[] = {{"X Bad", "a"}};
	net_server *srv;
	assert_esim(ESIM_OK, net_server_new(NULL, &srv));
	struct net_listener_config blc = {
	    .address = "127.0.0.1", .default_headers = bad, .n_default_headers = 1};
	assert_esim(ESIM_E_ARG, net_server_add_listener(srv, &blc, NULL));
	blc.default_headers = bad_name;
	assert_esim(ESIM_E_ARG, net_server_add_listener(srv, &blc, NULL));
	net_server_free(srv);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slowloris_cut_at_deadline),
	    cmocka_unit_test(test_connection_caps),
	    cmocka_unit_test(test_accept_backoff_out_of_fds),
	    cmocka_unit_test(test_tls_setup_failure_closes),
	    cmocka_unit_test(test_default_headers_everywhere),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
