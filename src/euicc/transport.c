/*
 * The virtual eUICC's transports: a socket server for the LPA's "socket"
 * driver (docs/euicc-socket.md) and a client of vsmartcard's vpcd driver,
 * so that pcscd presents the card in a PC/SC reader (ARCHITECTURE.md).
 * Both speak the same framing (2-byte big-endian length + payload, 1-byte
 * payloads are control messages) and feed APDUs to the euicc_apdu_front.
 *
 * A card is one device: connections are served one at a time, and every
 * new connection or power event is a card reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apdu/sockio.h"
#include "euicc/transport.h"

/*
 * The socket server's ATR, 3B 9F 96 80 1F C7 ...: direct convention,
 * T0 = 9F (TA1 and TD1 follow, 15 historical bytes), TA1 = 96, TD1 = 80
 * (T=0, TD2 follows), TD2 = 1F (T=15, TA3 follows), TA3 = C7 (class
 * A/B/C, clock stop); 15 historical bytes as many eUICCs send, except the
 * card capabilities (compact-TLV 73, ISO 7816-4), whose third software
 * function byte says what this card does:
 *   b7 (40)    extended Lc and Le fields: in euicc_atr and euicc_atr_vpcd
 *              (the transport carries them), not in the _short variants
 *              (a card made with --max-block under 256);
 *   b5 b4 (18) logical channel numbers assigned by the card and by the
 *              interface device (MANAGE CHANNEL with P2 = 0 or n);
 *   b3-b1 (7)  at most 8 logical channels: 0-7 are served
 *              (EUICC_APDU_CHANNELS), no more;
 *   b8, b6 (0) no command chaining, no EF.ATR.
 * TCK last (XOR of T0..TCK is 0).
 */
const uint8_t euicc_atr[EUICC_ATR_LEN] = {0x3B, 0x9F, 0x96, 0x80, 0x1F, 0xC7, 0x80, 0x31,
					  0xE0, 0x73, 0xFE, 0x21, 0x5F, 0x63, 0x3A, 0x20,
					  0x4E, 0x83, 0x00, 0x90, 0x00, 0xD7};
const uint8_t euicc_atr_short[EUICC_ATR_LEN] = {0x3B, 0x9F, 0x96, 0x80, 0x1F, 0xC7, 0x80, 0x31,
						0xE0, 0x73, 0xFE, 0x21, 0x1F, 0x63, 0x3A, 0x20,
						0x4E, 0x83, 0x00, 0x90, 0x00, 0x97};
/*
 * The vpcd reader's ATR offers T=1 as well, so that a PC/SC program may
 * send extended APDUs (ISO 7816-3 T=0 TPDUs cannot carry them; vpcd passes
 * whole APDUs whatever the protocol): T0 = 9F, TA1 = 96, TD1 = 80 (T=0,
 * TD2 follows), TD2 = 81 (T=1, only TD3 follows: IFSC, BWI and CWI keep
 * their defaults), TD3 = 1F (T=15, TA4 follows), TA4 = C7 (the same
 * global class and clock stop byte), the same historical bytes, TCK.
 * T=0 stays offered, first as ISO 7816-3 orders the protocols: tools that
 * ask for T=0 only (SIM tools do) still connect; pcsc-lite gives T=1 to a
 * program that accepts both (pcscd 1.9.9, checked), and the LPA uses
 * extended APDUs only when connected with T=1 (src/apdu/pcsc.c).
 */
const uint8_t euicc_atr_vpcd[EUICC_ATR_VPCD_LEN] = {0x3B, 0x9F, 0x96, 0x80, 0x81, 0x1F, 0xC7, 0x80,
						    0x31, 0xE0, 0x73, 0xFE, 0x21, 0x5F, 0x63, 0x3A,
						    0x20, 0x4E, 0x83, 0x00, 0x90, 0x00, 0x56};
const uint8_t euicc_atr_vpcd_short[EUICC_ATR_VPCD_LEN] = {
    0x3B, 0x9F, 0x96, 0x80, 0x81, 0x1F, 0xC7, 0x80, 0x31, 0xE0, 0x73, 0xFE,
    0x21, 0x1F, 0x63, 0x3A, 0x20, 0x4E, 0x83, 0x00, 0x90, 0x00, 0x16};

#define DEFAULT_FRAME_TIMEOUT_MS 10000
#define DEFAULT_RETRY_MS	 1000

struct serve_cfg {
	int stop_fd;
	FILE *log;
	int frame_timeout_ms;
	int retry_ms;
	const uint8_t *atr;
	size_t atr_len;
};

static struct serve_cfg serve_cfg_of(const struct euicc_serve_opts *o)
{
	struct serve_cfg c = {.stop_fd = -1,
			      .frame_timeout_ms = DEFAULT_FRAME_TIMEOUT_MS,
			      .retry_ms = DEFAULT_RETRY_MS,
			      .atr = euicc_atr,
			      .atr_len = EUICC_ATR_LEN};
	if (o != NULL) {
		c.stop_fd = o->stop_fd;
		c.log = o->log;
		if (o->short_apdus)
			c.atr = euicc_atr_short;
		if (o->frame_timeout_ms > 0)
			c.frame_timeout_ms = o->frame_timeout_ms;
		if (o->retry_ms > 0)
			c.retry_ms = o->retry_ms;
	}
	return c;
}

__attribute__((format(printf, 2, 3))) static void logf_(const struct serve_cfg *c, const char *fmt,
							...)
{
	if (c->log == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("euicc: ", c->log);
	vfprintf(c->log, fmt, ap);
	fputc('\n', c->log);
	fflush(c->log);
	va_end(ap);
}

/* Has the stop fd fired? Waits up to ms (0: just look). */
static bool stop_requested(const struct serve_cfg *c, int ms)
{
	if (c->stop_fd < 0) {
		if (ms > 0)
			poll(NULL, 0, ms);
		return false;
	}
	struct pollfd pf = {.fd = c->stop_fd, .events = POLLIN};
	return poll(&pf, 1, ms) > 0;
}

/*
 * Serve one connection until it ends. Returns true when the stop fd fired.
 * Every read re-arms TCP_QUICKACK (digest 15.1): a peer that sends a
 * frame's length and payload as two writes with Nagle on, as Debian 12's
 * vpcd does, would otherwise wait for our delayed ACK (~40 ms) on every
 * APDU. Harmless on unix sockets and for peers that send one write.
 */
static bool serve_connection(int fd, euicc_apdu_front *front, const struct serve_cfg *c)
{
	esim_buf in = ESIM_BUF_INIT, out = ESIM_BUF_INIT;
	bool stopped = false;
	apdu_sock_quickack(fd);
	for (;;) {
		esim_err err = apdu_frame_read_quickack(fd, &in, -1, c->frame_timeout_ms,
							c->stop_fd, &stopped);
		if (stopped)
			break;
		if (err == ESIM_E_APDU_CLOSED) {
			logf_(c, "peer closed the connection");
			break;
		}
		if (err != ESIM_OK) {
			logf_(c, "closing the connection: %s", esim_strerror(err));
			break;
		}
		if (in.len == 1) {
			uint8_t ctl = in.data[0];
			if (ctl == EUICC_CTRL_POWER_OFF || ctl == EUICC_CTRL_POWER_ON ||
			    ctl == EUICC_CTRL_RESET) {
				euicc_apdu_front_reset(front);
				continue;
			}
			if (ctl == EUICC_CTRL_ATR) {
				err = apdu_frame_write(fd, c->atr, c->atr_len);
			} else {
				logf_(c, "closing the connection: unknown control byte %02X", ctl);
				break;
			}
		} else if (in.len == 0) {
			logf_(c, "closing the connection: empty frame");
			break;
		} else {
			err = euicc_apdu_front_process(front, in.data, in.len, &out);
			if (err == ESIM_OK)
				err = apdu_frame_write(fd, out.data, out.len);
		}
		if (err != ESIM_OK) {
			logf_(c, "closing the connection: %s", esim_strerror(err));
			break;
		}
	}
	esim_buf_free(&in);
	esim_buf_free(&out);
	return stopped;
}

esim_err euicc_socket_listen(const char *spec, int *fd)
{
	if (spec == NULL || fd == NULL)
		return ESIM_E_ARG;
	return apdu_sock_listen(spec, fd);
}

esim_err euicc_serve_listener(int listen_fd, euicc_apdu_front *front,
			      const struct euicc_serve_opts *opts)
{
	if (listen_fd < 0 || front == NULL)
		return ESIM_E_ARG;
	struct serve_cfg c = serve_cfg_of(opts);
	for (;;) {
		struct pollfd pf[2] = {{.fd = listen_fd, .events = POLLIN},
				       {.fd = c.stop_fd, .events = POLLIN}};
		int r = poll(pf, c.stop_fd >= 0 ? 2 : 1, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ESIM_E_IO;
		if (c.stop_fd >= 0 && pf[1].revents != 0)
			return ESIM_OK;
		if (pf[0].revents == 0)
			continue;
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN ||
			    errno == EMFILE || errno == ENFILE) {
				/* transient; EMFILE: wait instead of spinning */
				if (errno == EMFILE || errno == ENFILE)
					stop_requested(&c, 100);
				continue;
			}
			return ESIM_E_IO;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		apdu_sock_nodelay(fd);
		logf_(&c, "client connected");
		euicc_apdu_front_reset(front);
		bool stopped = serve_connection(fd, front, &c);
		close(fd);
		if (stopped)
			return ESIM_OK;
	}
}

esim_err euicc_serve_socket(const char *spec, euicc_apdu_front *front,
			    const struct euicc_serve_opts *opts)
{
	int fd;
	esim_err err = euicc_socket_listen(spec, &fd);
	if (err != ESIM_OK)
		return err;
	err = euicc_serve_listener(fd, front, opts);
	close(fd);
	if (strncmp(spec, "unix:", 5) == 0)
		unlink(spec + 5);
	return err;
}

esim_err euicc_serve_vpcd(const char *host, uint16_t port, euicc_apdu_front *front,
			  const struct euicc_serve_opts *opts)
{
	if (host == NULL || front == NULL || port == 0)
		return ESIM_E_ARG;
	struct serve_cfg c = serve_cfg_of(opts);
	/* T=0 and T=1 offered; extended length unless the card is small */
	c.atr = opts != NULL && opts->short_apdus ? euicc_atr_vpcd_short : euicc_atr_vpcd;
	c.atr_len = EUICC_ATR_VPCD_LEN;
	bool logged_wait = false;
	for (;;) {
		if (stop_requested(&c, 0))
			return ESIM_OK;
		int fd;
		if (apdu_sock_connect_tcp(host, port, &fd) != ESIM_OK) {
			if (!logged_wait)
				logf_(&c, "waiting for vpcd on %s:%u", host, (unsigned)port);
			logged_wait = true;
			if (stop_requested(&c, c.retry_ms))
				return ESIM_OK;
			continue;
		}
		logged_wait = false;
		logf_(&c, "connected to vpcd on %s:%u", host, (unsigned)port);
		euicc_apdu_front_reset(front);
		bool stopped = serve_connection(fd, front, &c);
		close(fd);
		euicc_apdu_front_reset(front);
		if (stopped)
			return ESIM_OK;
		if (stop_requested(&c, c.retry_ms))
			return ESIM_OK;
	}
}
