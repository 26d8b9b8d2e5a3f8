/*
 * The SM-DP+ over HTTPS (ES9+, SGP.22 section 6.5) under a slow-client
 * flood: 200 connections from four loopback addresses (127.0.0.2-5, so
 * that the per-address cap does not simply refuse them) trickle one byte
 * every 200 ms, half of them inside the TLS handshake and half inside the
 * headers of an ES9+ request, and reconnect whenever they are cut. While
 * they do, complete profile downloads (the test LPA with a virtual eUICC,
 * over net_client from 127.0.0.1) must succeed, each within a bounded
 * time, and every slow connection must be cut at the whole-request
 * deadline (none lives past it), so that the flood holds at most its
 * share of descriptors for at most that long.
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
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "test_smdp_fixture.h"

static struct sfx F;

#define DEADLINE_MS  2000
#define SLOW_CLIENTS 200
#define SLOW_ADDRS   4

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the flood ------------------------------------------------------------- */

struct slot {
	int fd;
	SSL *ssl; /* the header tricklers: after a complete handshake */
	double opened;
};

struct flood {
	uint16_t port;
	SSL_CTX *ctx;
	atomic_bool stop;
	atomic_int open;	/* slots connected now */
	atomic_int cut;		/* connections the server closed */
	atomic_int too_old;	/* seen alive past the deadline + margin */
	atomic_int longest_ms;	/* the longest life of a cut connection */
	atomic_int opened;	/* connections made */
	atomic_int open_failed; /* connect or handshake refused */
	struct slot slots[SLOW_CLIENTS];
};

static void slot_close(struct flood *f, struct slot *s)
{
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	if (s->fd >= 0)
		close(s->fd);
	s->ssl = NULL;
	s->fd = -1;
	atomic_fetch_sub(&f->open, 1);
}

static bool slot_open(struct flood *f, int i)
{
	struct slot *s = &f->slots[i];
	char src[16];
	snprintf(src, sizeof src, "127.0.0.%d", 2 + i % SLOW_ADDRS);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return false;
	struct sockaddr_in b = {.sin_family = AF_INET};
	inet_pton(AF_INET, src, &b.sin_addr);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {3, 0};
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (bind(s->fd, (struct sockaddr *)&b, sizeof b) != 0 ||
	    connect(s->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(s->fd);
		s->fd = -1;
		return false;
	}
	s->opened = now_s();
	const char *prefix;
	if (i % 2 == 0) {
		/* inside the handshake: a record header announcing 16 KiB */
		prefix = "\x16\x03\x01\x40\x00\x01";
		if (send(s->fd, prefix, strlen(prefix), MSG_NOSIGNAL) < 0)
			goto fail;
	} else {
		/* inside the headers of an ES9+ request */
		s->ssl = SSL_new(f->ctx);
		if (s->ssl == NULL || SSL_set_tlsext_host_name(s->ssl, "localhost") != 1 ||
		    SSL_set_fd(s->ssl, s->fd) != 1 || SSL_connect(s->ssl) != 1)
			goto fail;
		prefix = "POST /gsma/rsp2/es9plus/initiateAuthentication HTTP/1.1\r\n"
			 "Host: localhost\r\nX-Slow: ";
		if (SSL_write(s->ssl, prefix, (int)strlen(prefix)) <= 0)
			goto fail;
	}
	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
	atomic_fetch_add(&f->open, 1);
	atomic_fetch_add(&f->opened, 1);
	return true;
fail:
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	close(s->fd);
	s->ssl = NULL;
	s->fd = -1;
	return false;
}

/* Has the server closed the slot's connection? */
static bool slot_closed(struct slot *s)
{
	struct pollfd p = {.fd = s->fd, .events = POLLIN | POLLRDHUP};
	if (poll(&p, 1, 0) <= 0)
		return false;
	char buf[4096];
	if (s->ssl != NULL) {
		int n = SSL_read(s->ssl, buf, sizeof buf);
		return n <= 0 && (SSL_get_error(s->ssl, n) != SSL_ERROR_WANT_READ ||
				  (p.revents & (POLLHUP | POLLRDHUP)));
	}
	ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	for (int i = 0; i < SLOW_CLIENTS; i++)
		f->slots[i].fd = -1;
	const double margin = 1.0;
	while (!atomic_load(&f->stop)) {
		double round = now_s();
		for (int i = 0; i < SLOW_CLIENTS && !atomic_load(&f->stop); i++) {
			struct slot *s = &f->slots[i];
			if (s->fd < 0) {
				if (!slot_open(f, i))
					atomic_fetch_add(&f->open_failed, 1);
				continue;
			}
			double age = now_s() - s->opened;
			bool gone = slot_closed(s);
			if (!gone) {
				char b = 'a';
				ssize_t n = s->ssl != NULL ? SSL_write(s->ssl, &b, 1)
							   : send(s->fd, &b, 1, MSG_NOSIGNAL);
				gone = n != 1 &&
				       !(s->ssl != NULL &&
					 SSL_get_error(s->ssl, (int)n) == SSL_ERROR_WANT_WRITE);
			}
			if (gone) {
				atomic_fetch_add(&f->cut, 1);
				int ms = (int)(age * 1000);
				if (ms > atomic_load(&f->longest_ms))
					atomic_store(&f->longest_ms, ms);
				slot_close(f, s);
			} else if (age > DEADLINE_MS / 1000.0 + margin) {
				atomic_fetch_add(&f->too_old, 1);
			}
		}
		double left = 0.2 - (now_s() - round);
		if (left > 0)
			usleep((useconds_t)(left * 1e6));
	}
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		if (f->slots[i].fd >= 0)
			slot_close(f, &f->slots[i]);
	}
	return NULL;
}

/* ---- the test -------------------------------------------------------------- */

static void test_downloads_during_slowloris(void **state)
{
	(void)state;
	char cert[700], key[700], ca[700];
	snprintf(cert, sizeof cert, "%s/nist/dptls.pem", F.pki);
	snprintf(key, sizeof key, "%s/nist/dptls.key.pem", F.pki);
	snprintf(ca, sizeof ca, "%s/nist/ci.pem", F.pki);
	sfx_open_smdp(&F, NULL, 40);

	net_server *srv;
	struct net_server_config sc = {.threads = 2, .request_deadline_ms = DEADLINE_MS};
	assert_esim(ESIM_OK, net_server_new(&sc, &srv));
	struct net_listener_config lc = {
	    .address = "127.0.0.1", .tls = true, .cert_chain_file = cert, .key_file = key};
	int l;
	assert_esim(ESIM_OK, net_server_add_listener(srv, &lc, &l));
	assert_esim(ESIM_OK, smdp_add_routes(F.d, srv, l, l));
	assert_esim(ESIM_OK, net_server_start(srv));

	struct flood *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->port = net_server_port(srv, l);
	f->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(f->ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(f->ctx, ca, NULL), 1);
	SSL_CTX_set_verify(f->ctx, SSL_VERIFY_PEER, NULL);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flood_main, f), 0);
	double t0 = now_s();
	while (atomic_load(&f->open) < SLOW_CLIENTS && now_s() - t0 < 10)
		usleep(20 * 1000);
	print_message("%d slow connections open after %.2f s\n", atomic_load(&f->open),
		      now_s() - t0);
	assert_true(atomic_load(&f->open) >= SLOW_CLIENTS * 9 / 10);

	/* downloads, one every 250 ms or so, for three deadlines */
	char base[128];
	snprintf(base, sizeof base, "https://localhost:%u", f->port);
	double start = now_s(), slowest = 0;
	size_t done = 0;
	while (now_s() - start < 3.0 * DEADLINE_MS / 1000.0 && done < 40) {
		struct net_client_config ccfg = {.ca_file = ca, .timeout_ms = 20000};
		net_client *cli;
		assert_esim(ESIM_OK, net_client_new(&ccfg, &cli));
		struct lpa_http h = {cli, base};
		char prefix[31], eid[33], mid[64];
		snprintf(prefix, sizeof prefix, "8904903200000000000000000020%02zu", done);
		assert_esim(ESIM_OK, crypto_pki_eid_complete(prefix, eid));
		euicc *e = sfx_euicc_eid(&F, "nist", eid);
		struct lpa_driver drv = {sfx_es10, e, lpa_es9_http, &h, SFX_FQDN};
		sfx_order(&F, done + 1, NULL, NULL, NULL, true, mid);
		struct lpa_session s;
		lpa_session_init(&s, &drv);
		double t = now_s();
		assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
		t = now_s() - t;
		lpa_session_clear(&s);
		assert_int_equal(sfx_state(&F, done + 1), SMDP_INSTALLED);
		euicc_close(e);
		net_client_free(cli);
		if (t > slowest)
			slowest = t;
		done++;
		usleep(250 * 1000);
	}
	int open_now = atomic_load(&f->open);
	atomic_store(&f->stop, true);
	pthread_join(th, NULL);

	struct net_server_stats st;
	net_server_get_stats(srv, &st);
	print_message("%zu downloads in %.2f s under the flood (slowest %.2f s); flood: %d "
		      "connections made, %d cut (longest life %d ms), %d seen past the deadline, "
		      "%d open at the end; server: %lu closed at the deadline\n",
		      done, now_s() - start, slowest, atomic_load(&f->opened), atomic_load(&f->cut),
		      atomic_load(&f->longest_ms), atomic_load(&f->too_old), open_now,
		      st.deadline_closed);
	/* every download succeeded (asserted above), each in bounded time */
	assert_true(done >= 4);
	assert_true(slowest < 5.0);
	/* the flood was cut at the deadline: every slot at least once, none
	 * lived past it */
	assert_true(atomic_load(&f->cut) >= SLOW_CLIENTS);
	assert_true(atomic_load(&f->longest_ms) <= DEADLINE_MS + 1000);
	assert_int_equal(atomic_load(&f->too_old), 0);
	assert_true(st.deadline_closed >= (unsigned long)atomic_load(&f->cut) * 9 / 10);
	/* the per-address cap (64) never refused the flood's 50 per address */
	assert_int_equal(st.refused_address_cap, 0);

	SSL_CTX_free(f->ctx);
	free(f);
	net_server_free(srv);
	sfx_close(&F);
}

static int group_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	sfx_pki(&F);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_downloads_during_slowloris),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
