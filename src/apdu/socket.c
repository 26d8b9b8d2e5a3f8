/*
 * The "socket" APDU driver: talks to esimkit's virtual eUICC (esim-euicc)
 * over a unix or TCP stream socket with the 2-byte length framing of
 * docs/euicc-socket.md. One frame out (the command APDU), one frame back
 * (the response APDU); the card's answer is awaited with a timeout so that
 * a hung card cannot hang the LPA. The ATR is asked for with the 1-byte
 * control frame 04; the socket carries extended APDUs (a frame holds
 * 65535 bytes), so a card that declares extended Lc/Le gets them.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esim/apdu.h"
#include "apdu/sockio.h"

#define SOCKET_DEFAULT_TIMEOUT_MS 30000

struct socket_ctx {
	int fd;
	int timeout_ms;
};

static esim_err socket_open_why(const char *spec, void **ctx, esim_errctx *why)
{
	char addr[512];
	int timeout = SOCKET_DEFAULT_TIMEOUT_MS;
	if (spec == NULL || strlen(spec) >= sizeof addr) {
		esim_errctx_set(why, "the socket device is missing or too long");
		return ESIM_E_ARG;
	}
	strcpy(addr, spec);
	char *opt = strchr(addr, ',');
	if (opt != NULL) {
		*opt++ = '\0';
		char *end = NULL;
		long v = strncmp(opt, "timeout=", 8) == 0 ? strtol(opt + 8, &end, 10) : 0;
		if (v < 1 || v > 3600000 || *end != '\0') {
			esim_errctx_set(why,
					"'%s': the only option after the address is "
					"timeout=MS (1..3600000)",
					spec);
			return ESIM_E_ARG;
		}
		timeout = (int)v;
	}
	struct socket_ctx *c = calloc(1, sizeof *c);
	if (c == NULL)
		return ESIM_E_NOMEM;
	/* no eUICC at the address is "no card", with the address, the
	 * system's reason and a hint in why */
	esim_err err = apdu_sock_connect_why(addr, &c->fd, why);
	if (err != ESIM_OK) {
		free(c);
		return err == ESIM_E_ARG ? err : ESIM_E_APDU_NO_READER;
	}
	c->timeout_ms = timeout;
	*ctx = c;
	return ESIM_OK;
}

static esim_err socket_open(const char *spec, void **ctx)
{
	return socket_open_why(spec, ctx, NULL);
}

static esim_err socket_transmit(void *ctx, const uint8_t *capdu, size_t len, esim_buf *rapdu)
{
	struct socket_ctx *c = ctx;
	rapdu->len = 0;
	if (len < 4 || len > APDU_FRAME_MAX)
		return ESIM_E_APDU_MALFORMED;
	esim_err err = apdu_frame_write(c->fd, capdu, len);
	if (err != ESIM_OK)
		return err;
	err = apdu_frame_read(c->fd, rapdu, c->timeout_ms, c->timeout_ms, -1, NULL);
	if (err == ESIM_E_APDU_FRAME)
		return ESIM_E_APDU_CLOSED;
	if (err != ESIM_OK)
		return err;
	return rapdu->len >= 2 ? ESIM_OK : ESIM_E_APDU_MALFORMED;
}

static esim_err socket_atr(void *ctx, esim_buf *atr)
{
	struct socket_ctx *c = ctx;
	static const uint8_t req = 0x04; /* ATR request (docs/euicc-socket.md) */
	atr->len = 0;
	esim_err err = apdu_frame_write(c->fd, &req, 1);
	if (err == ESIM_OK)
		err = apdu_frame_read(c->fd, atr, c->timeout_ms, c->timeout_ms, -1, NULL);
	if (err == ESIM_E_APDU_FRAME)
		return ESIM_E_APDU_CLOSED;
	if (err == ESIM_OK && atr->len < 2)
		err = ESIM_E_APDU_MALFORMED;
	return err;
}

static void socket_close(void *ctx)
{
	struct socket_ctx *c = ctx;
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

const apdu_driver apdu_driver_socket = {
    .name = "socket",
    .help = "unix:/path/to/euicc.sock | tcp:HOST:PORT | HOST:PORT [,timeout=MS]",
    .open = socket_open,
    .open_why = socket_open_why,
    .transmit = socket_transmit,
    .close = socket_close,
    .atr = socket_atr,
    .max_apdu = APDU_FRAME_MAX,
    .default_mss = APDU_MAX_MSS,
};
