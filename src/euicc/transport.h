/*
 * How the virtual eUICC is reached: its own socket server (the LPA's
 * "socket" driver, docs/euicc-socket.md) or vsmartcard's vpcd, through which
 * every PC/SC program sees it as a card in a reader.
 *
 * Both loops run until opts->stop_fd becomes readable (or hangs up): the
 * program's signal handler writes a byte to a pipe. No global state.
 */
#ifndef ESIM_EUICC_TRANSPORT_H
#define ESIM_EUICC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "esim/err.h"
#include "euicc/apdu_front.h"

/* The ATRs the card presents (transport.c explains each byte). The
 * socket server's offer T=0 (the transport passes whole APDUs, so the
 * protocol is moot there); the vpcd reader's offer T=0 and T=1, so that
 * PC/SC programs may send extended APDUs. In each pair the _short one
 * lacks "extended Lc and Le fields" in the card capabilities (a front
 * with max_block < 256: short_apdus). All: up to 8 logical channels,
 * which is what the APDU front serves (EUICC_APDU_CHANNELS). TCK checked. */
#define EUICC_ATR_LEN 22
extern const uint8_t euicc_atr[EUICC_ATR_LEN];
extern const uint8_t euicc_atr_short[EUICC_ATR_LEN];
#define EUICC_ATR_VPCD_LEN 23
extern const uint8_t euicc_atr_vpcd[EUICC_ATR_VPCD_LEN];
extern const uint8_t euicc_atr_vpcd_short[EUICC_ATR_VPCD_LEN];

/* vpcd's default port (0x8C7B, /etc/reader.conf.d/vpcd). */
#define EUICC_VPCD_DEFAULT_PORT 35963

/* vpcd / socket control messages (a 1-byte frame). */
#define EUICC_CTRL_POWER_OFF 0x00
#define EUICC_CTRL_POWER_ON  0x01
#define EUICC_CTRL_RESET     0x02
#define EUICC_CTRL_ATR	     0x04

struct euicc_serve_opts {
	int stop_fd;	      /* -1: run until an error */
	FILE *log;	      /* one line per connection event; NULL: quiet */
	int frame_timeout_ms; /* a started frame must complete in this time;
				 0 = 10000 */
	int retry_ms;	      /* vpcd: wait between reconnects; 0 = 1000 */
	bool short_apdus;     /* present euicc_atr_short (socket) or
				 euicc_atr_vpcd_short (vpcd): for a front
				 with max_block < 256 */
};

/* Listen on "unix:/path", "tcp:HOST:PORT" or "HOST:PORT"; *fd owned by the
 * caller. A stale unix socket file is replaced. */
esim_err euicc_socket_listen(const char *spec, int *fd);

/*
 * Serve clients of listen_fd one after another (a card is one device:
 * others wait in the listen backlog). Each connection starts with a card
 * reset (euicc_apdu_front_reset), so channels left open by a client that
 * went away do not leak. A malformed frame closes that connection (logged).
 * Returns ESIM_OK when stopped, an error when accept() fails for good.
 * listen_fd stays open.
 */
esim_err euicc_serve_listener(int listen_fd, euicc_apdu_front *front,
			      const struct euicc_serve_opts *opts);

/* euicc_socket_listen + euicc_serve_listener; removes a unix socket file
 * it created when it returns. */
esim_err euicc_serve_socket(const char *spec, euicc_apdu_front *front,
			    const struct euicc_serve_opts *opts);

/*
 * Be the card behind pcscd's vpcd reader: connect to host:port (vpcd
 * listens there), answer power on/off/reset (card reset, no reply), ATR
 * requests (euicc_atr_vpcd, or euicc_atr_vpcd_short with short_apdus) and
 * APDUs; when the connection drops, reset the card and reconnect every
 * retry_ms until stopped. Returns ESIM_OK when stopped.
 */
esim_err euicc_serve_vpcd(const char *host, uint16_t port, euicc_apdu_front *front,
			  const struct euicc_serve_opts *opts);

#endif
