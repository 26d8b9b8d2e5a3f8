/*
 * Stream sockets carrying length-prefixed frames (docs/euicc-socket.md):
 * each frame is a 2-byte big-endian length and that many bytes. Used by the
 * LPA's "socket" driver and by the virtual eUICC's socket server and vpcd
 * client (src/euicc/transport.c), so both ends share one framing code.
 *
 * Private to libesim and the programs in this tree; not a public header.
 */
#ifndef ESIM_APDU_SOCKIO_H
#define ESIM_APDU_SOCKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esim/err.h"
#include "esim/util.h"

/* Largest frame payload: what a 2-byte length can say. */
#define APDU_FRAME_MAX 65535

/*
 * Address specs: "unix:/path", "tcp:HOST:PORT", or "HOST:PORT"; an IPv6
 * host is written in brackets ("tcp:[::1]:35963").
 * Connect sets TCP_NODELAY on TCP sockets (each frame is one send; without
 * it Nagle and delayed ACK add ~40 ms per APDU, digest 15.1).
 */
esim_err apdu_sock_connect(const char *spec, int *fd);
/* The same; on failure why (may be NULL) says which address failed, the
 * system's reason and what to do. */
esim_err apdu_sock_connect_why(const char *spec, int *fd, esim_errctx *why);
esim_err apdu_sock_connect_tcp(const char *host, uint16_t port, int *fd);
/* Listen on spec (backlog 8). A unix socket is created with mode 0600
 * (only its owner may connect). A stale unix socket file that nobody
 * accepts on is replaced; a live one gives ESIM_E_IO. */
esim_err apdu_sock_listen(const char *spec, int *fd);
esim_err apdu_sock_listen_why(const char *spec, int *fd, esim_errctx *why);
/* Set TCP_NODELAY when fd is a TCP socket; harmless otherwise. */
void apdu_sock_nodelay(int fd);
/* Set TCP_QUICKACK (ACK at once, and now if an ACK is due) when fd is a
 * TCP socket; harmless otherwise. Linux clears it again by itself. */
void apdu_sock_quickack(int fd);

/* Write one frame with a single send (MSG_NOSIGNAL). n <= APDU_FRAME_MAX. */
esim_err apdu_frame_write(int fd, const uint8_t *p, size_t n);

/*
 * Read one frame into out (emptied first).
 * first_ms: how long to wait for the frame's first byte (-1 = for ever);
 * rest_ms: how long the rest may take once it started (-1 = for ever).
 * stop_fd: when >= 0 and it becomes readable or hangs up, give up with
 * ESIM_E_APDU_CLOSED and *stopped = true (stopped may be NULL otherwise).
 * ESIM_E_APDU_CLOSED: orderly EOF before a frame; ESIM_E_APDU_FRAME: EOF
 * inside a frame; ESIM_E_APDU_TIMEOUT; ESIM_E_IO.
 */
esim_err apdu_frame_read(int fd, esim_buf *out, int first_ms, int rest_ms, int stop_fd,
			 bool *stopped);
/*
 * apdu_frame_read, re-arming TCP_QUICKACK after every read (digest 15.1).
 * For a peer that writes a frame's length and its payload as two sends
 * with Nagle on (Debian 12's vsmartcard-vpcd 3.3): its payload waits for
 * the ACK of the length, which a delayed ACK holds back ~40 ms. With this,
 * the length is ACKed as soon as it is read and the payload follows.
 */
esim_err apdu_frame_read_quickack(int fd, esim_buf *out, int first_ms, int rest_ms, int stop_fd,
				  bool *stopped);

#endif
