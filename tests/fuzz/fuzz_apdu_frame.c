/*
 * Fuzz the socket framing both ends of the eUICC socket share
 * (src/apdu/sockio.c: 2-byte length + bytes, docs/euicc-socket.md) and the
 * virtual eUICC's connection loop on top of it (src/euicc/transport.c:
 * control bytes for power and ATR, APDUs into the APDU front). Whoever
 * connects to the card's socket or vpcd port is not trusted.
 *
 * The input is the byte stream a peer sends: it is written into one end of
 * a socketpair, that end is shut for writing, and the card's loop
 * (serve_connection, compiled into this target) serves the other end until
 * the stream ends or it closes the connection on a bad frame. Then what it
 * answered is read back with apdu_frame_read, as the LPA's socket driver
 * reads it: every answer must be a whole frame, the ATR or a response APDU
 * ending in a status word. The APDU front's ES10 handler echoes.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apdu/sockio.h"
#include "euicc/apdu_front.h"

#include "../../src/euicc/transport.c"

static esim_err echo(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len, esim_buf *resp,
		     uint16_t *sw)
{
	(void)ctx;
	(void)channel;
	(void)sw;
	return esim_buf_append(resp, cmd, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the card's answers stay in the socket buffers until it is done:
	 * keep the stream small enough for them (an ATR answers 3 bytes
	 * with 24) */
	if (size > 4096)
		return 0;
	static euicc_apdu_front *front;
	struct euicc_apdu_front_cfg cfg = {.es10 = echo};
	if (front == NULL && euicc_apdu_front_new(&cfg, &front) != ESIM_OK)
		abort();
	euicc_apdu_front_reset(front);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	int big = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	if (size > 0 && write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);

	struct serve_cfg c = serve_cfg_of(NULL);
	c.frame_timeout_ms = 1000; /* never reached: the stream is all there */
	if (serve_connection(sv[1], front, &c))
		abort(); /* no stop fd: it cannot have been stopped */
	close(sv[1]);

	esim_buf f = ESIM_BUF_INIT;
	esim_err err;
	while ((err = apdu_frame_read(sv[0], &f, 1000, 1000, -1, NULL)) == ESIM_OK) {
		if (f.len == sizeof euicc_atr && memcmp(f.data, euicc_atr, f.len) == 0)
			continue;
		if (f.len < 2)
			abort();
	}
	if (err != ESIM_E_APDU_CLOSED)
		abort(); /* the card wrote a broken frame */
	esim_buf_free(&f);
	close(sv[0]);
	return 0;
}
