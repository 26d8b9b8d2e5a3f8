/*
 * Length-prefixed frames over TCP and unix stream sockets: the wire of
 * esimkit's virtual eUICC (docs/euicc-socket.md) and of vsmartcard's vpcd,
 * which use the same 2-byte big-endian length prefix. Shared by the LPA's
 * socket driver and the eUICC's transports so the two ends cannot drift.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "apdu/sockio.h"

static esim_err unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (path[0] == '\0' || strlen(path) >= sizeof sa->sun_path)
		return ESIM_E_ARG;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return ESIM_OK;
}

/* Split "HOST:PORT" / "[V6]:PORT" into host (copied to h) and port. */
static esim_err split_host_port(const char *s, char *h, size_t hn, char *port, size_t pn)
{
	const char *colon;
	const char *host = s;
	size_t hl;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return ESIM_E_ARG;
		host = s + 1;
		hl = (size_t)(end - host);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return ESIM_E_ARG;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hn || strlen(colon + 1) == 0 || strlen(colon + 1) >= pn)
		return ESIM_E_ARG;
	memcpy(h, host, hl);
	h[hl] = '\0';
	strcpy(port, colon + 1);
	for (const char *p = port; *p; p++)
		if (*p < '0' || *p > '9')
			return ESIM_E_ARG;
	long v = strtol(port, NULL, 10);
	if (v < 1 || v > 65535)
		return ESIM_E_ARG;
	return ESIM_OK;
}

void apdu_sock_quickack(int fd)
{
	int one = 1;
	/* Linux clears TCP_QUICKACK by itself after a while, so this is
	 * called again after every read; it also sends an ACK that is due */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

void apdu_sock_nodelay(int fd)
{
	int one = 1;
	/* fails with EOPNOTSUPP on unix sockets, which need nothing */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The detail of a failed connect or listen on what: the system's reason
 * and, for the usual ones, what to do. */
static void sock_why(esim_errctx *why, bool listening, const char *what, int e)
{
	/* whole sentences, so that each is translated as one (the "esim"
	 * catalogue, docs/i18n.md) */
	const char *r = strerror(e);
	bool denied = e == EACCES || e == EPERM;
	if (!listening && (e == ENOENT || e == ECONNREFUSED))
		esim_errctx_set(why, "cannot connect to %s (%s): nothing listens there", what, r);
	else if (listening && e == EADDRINUSE)
		esim_errctx_set(why,
				"cannot listen on %s (%s): another process listens there (stop "
				"it or pick another address)",
				what, r);
	else if (denied && listening)
		esim_errctx_set(why, "cannot listen on %s (%s): permission denied for this user",
				what, r);
	else if (denied)
		esim_errctx_set(why, "cannot connect to %s (%s): permission denied for this user",
				what, r);
	else if (listening)
		esim_errctx_set(why, "cannot listen on %s (%s)", what, r);
	else
		esim_errctx_set(why, "cannot connect to %s (%s)", what, r);
}

static esim_err tcp_open(const char *host, const char *port, bool listening, int *out,
			 esim_errctx *why)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	char what[300];
	snprintf(what, sizeof what, "tcp:%s:%s", host, port);
	hints.ai_flags = AI_NUMERICSERV | (listening ? AI_PASSIVE : 0);
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		esim_errctx_set(why, "cannot resolve the host of %s (%s)", what, gai_strerror(gai));
		return ESIM_E_IO;
	}
	int fd = -1, e = EADDRNOTAVAIL;
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (listening) {
			int one = 1;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
			if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 8) == 0)
				break;
		} else if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			apdu_sock_nodelay(fd);
			break;
		}
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		sock_why(why, listening, what, e);
		return ESIM_E_IO;
	}
	*out = fd;
	return ESIM_OK;
}

esim_err apdu_sock_connect_tcp(const char *host, uint16_t port, int *fd)
{
	char p[8];
	snprintf(p, sizeof p, "%u", (unsigned)port);
	return tcp_open(host, p, false, fd, NULL);
}

static esim_err parse_spec(const char *spec, bool *is_unix, char *a, size_t an, char *p, size_t pn)
{
	if (strncmp(spec, "unix:", 5) == 0) {
		*is_unix = true;
		if (strlen(spec + 5) >= an)
			return ESIM_E_ARG;
		strcpy(a, spec + 5);
		return ESIM_OK;
	}
	*is_unix = false;
	if (strncmp(spec, "tcp:", 4) == 0)
		spec += 4;
	return split_host_port(spec, a, an, p, pn);
}

static void spec_why(esim_errctx *why, const char *spec)
{
	esim_errctx_set(why,
			"'%s' is not a socket address (unix:PATH, tcp:HOST:PORT or HOST:PORT, "
			"port 1..65535, path under 108 bytes)",
			spec);
}

esim_err apdu_sock_connect(const char *spec, int *fd)
{
	return apdu_sock_connect_why(spec, fd, NULL);
}

esim_err apdu_sock_connect_why(const char *spec, int *fd, esim_errctx *why)
{
	char addr[256], port[8];
	bool is_unix;
	esim_err err = parse_spec(spec, &is_unix, addr, sizeof addr, port, sizeof port);
	if (err != ESIM_OK) {
		spec_why(why, spec);
		return err;
	}
	if (!is_unix)
		return tcp_open(addr, port, false, fd, why);
	struct sockaddr_un sa;
	if ((err = unix_addr(addr, &sa)) != ESIM_OK) {
		spec_why(why, spec);
		return err;
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		if (s >= 0)
			close(s);
		char what[300];
		snprintf(what, sizeof what, "unix:%s", addr);
		sock_why(why, false, what, e);
		return ESIM_E_IO;
	}
	*fd = s;
	return ESIM_OK;
}

esim_err apdu_sock_listen(const char *spec, int *fd)
{
	return apdu_sock_listen_why(spec, fd, NULL);
}

esim_err apdu_sock_listen_why(const char *spec, int *fd, esim_errctx *why)
{
	char addr[256], port[8];
	bool is_unix;
	esim_err err = parse_spec(spec, &is_unix, addr, sizeof addr, port, sizeof port);
	if (err != ESIM_OK) {
		spec_why(why, spec);
		return err;
	}
	if (!is_unix)
		return tcp_open(addr, port, true, fd, why);
	struct sockaddr_un sa;
	if ((err = unix_addr(addr, &sa)) != ESIM_OK) {
		spec_why(why, spec);
		return err;
	}
	struct stat st;
	if (lstat(addr, &st) == 0 && S_ISSOCK(st.st_mode)) {
		/* a socket file left by a server that died: replace it, but
		 * never steal the path from a live server */
		int probe;
		if (apdu_sock_connect(spec, &probe) == ESIM_OK) {
			close(probe);
			esim_errctx_set(why,
					"cannot listen on unix:%s: a live server already listens "
					"there (stop it or pick another path)",
					addr);
			return ESIM_E_IO;
		}
		unlink(addr);
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* The socket is the card: only the owner may talk to it. The mode is
	 * set between bind and listen, so no connect can slip in before it
	 * (a connect to a socket that does not listen yet is refused). */
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(addr, 0600) != 0 ||
	    listen(s, 8) != 0) {
		int e = errno;
		if (s >= 0)
			close(s);
		char what[300];
		snprintf(what, sizeof what, "unix:%s", addr);
		sock_why(why, true, what, e);
		return ESIM_E_IO;
	}
	*fd = s;
	return ESIM_OK;
}

esim_err apdu_frame_write(int fd, const uint8_t *p, size_t n)
{
	uint8_t stackbuf[512];
	uint8_t *buf = stackbuf;
	if (n > APDU_FRAME_MAX)
		return ESIM_E_TOO_LARGE;
	if (n + 2 > sizeof stackbuf) {
		buf = malloc(n + 2);
		if (buf == NULL)
			return ESIM_E_NOMEM;
	}
	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	if (n > 0)
		memcpy(buf + 2, p, n);
	esim_err err = ESIM_OK;
	size_t done = 0;
	while (done < n + 2) {
		ssize_t w = send(fd, buf + done, n + 2 - done, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = (errno == EPIPE || errno == ECONNRESET) ? ESIM_E_APDU_CLOSED
								      : ESIM_E_IO;
			break;
		}
		done += (size_t)w;
	}
	if (buf != stackbuf)
		free(buf);
	return err;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly n bytes; started: part of the frame came before (EOF now is
 * inside a frame). quickack: re-arm TCP_QUICKACK after every read. */
static esim_err read_exact(int fd, uint8_t *p, size_t n, int first_ms, int rest_ms, int stop_fd,
			   bool *stopped, bool started, bool quickack)
{
	size_t done = 0;
	long long deadline = -1;
	if (!started && first_ms >= 0)
		deadline = now_ms() + first_ms;
	else if (started && rest_ms >= 0)
		deadline = now_ms() + rest_ms;
	while (done < n) {
		struct pollfd pf[2] = {{.fd = fd, .events = POLLIN},
				       {.fd = stop_fd, .events = POLLIN}};
		int timeout = -1;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			if (left <= 0)
				return ESIM_E_APDU_TIMEOUT;
			timeout = left > 1000000 ? 1000000 : (int)left;
		}
		int r = poll(pf, stop_fd >= 0 ? 2 : 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ESIM_E_IO;
		if (r == 0)
			continue; /* the deadline check above ends the loop */
		if (stop_fd >= 0 && pf[1].revents != 0) {
			if (stopped != NULL)
				*stopped = true;
			return ESIM_E_APDU_CLOSED;
		}
		ssize_t got = recv(fd, p + done, n - done, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			return errno == ECONNRESET
				   ? (started || done ? ESIM_E_APDU_FRAME : ESIM_E_APDU_CLOSED)
				   : ESIM_E_IO;
		if (got == 0)
			return (started || done > 0) ? ESIM_E_APDU_FRAME : ESIM_E_APDU_CLOSED;
		if (quickack)
			apdu_sock_quickack(fd);
		if (!started && rest_ms >= 0)
			deadline = now_ms() + rest_ms;
		started = true;
		done += (size_t)got;
	}
	return ESIM_OK;
}

static esim_err frame_read(int fd, esim_buf *out, int first_ms, int rest_ms, int stop_fd,
			   bool *stopped, bool quickack)
{
	uint8_t hdr[2];
	if (stopped != NULL)
		*stopped = false;
	out->len = 0;
	esim_err err = read_exact(fd, hdr, 2, first_ms, rest_ms, stop_fd, stopped, false, quickack);
	if (err != ESIM_OK)
		return err;
	size_t n = (size_t)hdr[0] << 8 | hdr[1];
	if ((err = esim_buf_reserve(out, n ? n : 1)) != ESIM_OK)
		return err;
	err = read_exact(fd, out->data, n, first_ms, rest_ms, stop_fd, stopped, true, quickack);
	if (err != ESIM_OK)
		return err;
	out->len = n;
	return ESIM_OK;
}

esim_err apdu_frame_read(int fd, esim_buf *out, int first_ms, int rest_ms, int stop_fd,
			 bool *stopped)
{
	return frame_read(fd, out, first_ms, rest_ms, stop_fd, stopped, false);
}

esim_err apdu_frame_read_quickack(int fd, esim_buf *out, int first_ms, int rest_ms, int stop_fd,
				  bool *stopped)
{
	return frame_read(fd, out, first_ms, rest_ms, stop_fd, stopped, true);
}
