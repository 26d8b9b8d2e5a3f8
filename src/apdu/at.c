/*
 * The "at" APDU driver: an eUICC inside a cellular modem, reached through
 * the modem's AT command port (3GPP TS 27.007 8.17 AT+CSIM, 8.45 AT+CCHO,
 * 8.46 AT+CCHC, 8.43 AT+CGLA). This is how an LPA manages the eSIM of a
 * modem or IoT module (digest 3.1: the ISD-R on a logical channel).
 *
 * Modes (spec option ",mode="):
 *  - cgla (default): the modem opens the logical channel itself. MANAGE
 *    CHANNEL from the session is answered locally with a provisional channel;
 *    the SELECT of the ISD-R that follows becomes AT+CCHO="<AID>", and every
 *    later APDU on that channel goes out as AT+CGLA=<session>,<len>,"<hex>"
 *    with the CLA's channel bits set to the channel the modem gave (the
 *    session id, as modems report it). MANAGE CHANNEL close becomes
 *    AT+CCHC. Many modems refuse MANAGE CHANNEL through AT+CSIM, which is why
 *    this is the default.
 *  - csim: every APDU is passed as is with AT+CSIM=<len>,"<hex>".
 *
 * The serial line is put in raw mode (termios) and every command waits for
 * OK / ERROR / +CME ERROR within the timeout; echo is tolerated (lines that
 * repeat the command are skipped) and switched off with ATE0 at open.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "esim/apdu.h"

#define AT_DEFAULT_TIMEOUT_MS 10000
#define AT_LINE_MAX	      (2 * APDU_MAX_LEN + 64)
#define AT_PROVISIONAL_CH     1

enum at_mode { AT_MODE_CGLA, AT_MODE_CSIM };

struct at_ctx {
	int fd;
	int timeout_ms;
	enum at_mode mode;
	/* cgla mode: the channel the session believes it has, and the
	 * modem's session once AT+CCHO succeeded */
	bool provisional_open;
	int session; /* -1: none */
	/* receive buffer of the serial line */
	char rx[AT_LINE_MAX];
	size_t rx_len;
	char *cmd; /* the line being sent (to recognise echo) */
};

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static esim_err write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return ESIM_E_IO;
		}
		p += w;
		n -= (size_t)w;
	}
	return ESIM_OK;
}

/* Next non-empty line (without CR/LF) into line, waiting until deadline. */
static esim_err read_line(struct at_ctx *c, char *line, size_t cap, long deadline)
{
	for (;;) {
		/* a complete line in the buffer? */
		size_t start = 0;
		while (start < c->rx_len && (c->rx[start] == '\r' || c->rx[start] == '\n'))
			start++;
		for (size_t i = start; i < c->rx_len; i++) {
			if (c->rx[i] != '\r' && c->rx[i] != '\n')
				continue;
			size_t n = i - start;
			if (n >= cap)
				return ESIM_E_APDU_FRAME;
			memcpy(line, c->rx + start, n);
			line[n] = '\0';
			memmove(c->rx, c->rx + i + 1, c->rx_len - i - 1);
			c->rx_len -= i + 1;
			return ESIM_OK;
		}
		if (start > 0) {
			memmove(c->rx, c->rx + start, c->rx_len - start);
			c->rx_len -= start;
		}
		if (c->rx_len == sizeof c->rx)
			return ESIM_E_APDU_FRAME;
		long left = deadline - now_ms();
		if (left <= 0)
			return ESIM_E_APDU_TIMEOUT;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ESIM_E_IO;
		if (r == 0)
			return ESIM_E_APDU_TIMEOUT;
		ssize_t got = read(c->fd, c->rx + c->rx_len, sizeof c->rx - c->rx_len);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return ESIM_E_APDU_CLOSED;
		c->rx_len += (size_t)got;
	}
}

/*
 * Send one AT command and collect its answer. When prefix is given (e.g.
 * "+CGLA:"), the text after it on the first matching line goes to payload
 * (may be NULL). A bare line that is neither echo nor final result code is
 * also taken as payload when no prefixed line came (AT+CCHO answers with
 * the session id alone). ERROR and +CME ERROR are ESIM_E_APDU_SW with the
 * modem's text in *errtext (may be NULL).
 */
static esim_err at_command(struct at_ctx *c, const char *cmd, const char *prefix, char *payload,
			   size_t payload_cap)
{
	size_t n = strlen(cmd);
	char *line = malloc(AT_LINE_MAX);
	if (line == NULL)
		return ESIM_E_NOMEM;
	/* drop anything unsolicited that arrived before the command */
	c->rx_len = 0;
	esim_err err = write_all(c->fd, cmd, n);
	if (err == ESIM_OK)
		err = write_all(c->fd, "\r", 1);
	long deadline = now_ms() + c->timeout_ms;
	bool have_payload = false;
	if (payload != NULL && payload_cap > 0)
		payload[0] = '\0';
	while (err == ESIM_OK) {
		err = read_line(c, line, AT_LINE_MAX, deadline);
		if (err != ESIM_OK)
			break;
		if (strcmp(line, cmd) == 0)
			continue; /* echo */
		if (strcmp(line, "OK") == 0)
			break;
		if (strcmp(line, "ERROR") == 0 || strncmp(line, "+CME ERROR", 10) == 0 ||
		    strncmp(line, "+CMS ERROR", 10) == 0) {
			err = ESIM_E_APDU_SW;
			break;
		}
		if (payload == NULL)
			continue;
		const char *text = NULL;
		if (prefix != NULL && strncmp(line, prefix, strlen(prefix)) == 0)
			text = line + strlen(prefix);
		else if (!have_payload && line[0] != '+')
			text = line;
		if (text != NULL) {
			while (*text == ' ')
				text++;
			if (strlen(text) >= payload_cap) {
				err = ESIM_E_APDU_FRAME;
				break;
			}
			strcpy(payload, text);
			have_payload = prefix == NULL || text != line;
		}
	}
	free(line);
	return err;
}

/* Parse `<len>,"<hex>"` (quotes optional) into a response APDU. */
static esim_err parse_len_hex(const char *text, esim_buf *rapdu)
{
	char *end;
	long n = strtol(text, &end, 10);
	if (end == text || *end != ',' || n < 4 || n % 2 != 0 || n > 2L * APDU_MAX_LEN)
		return ESIM_E_APDU_FRAME;
	const char *hex = end + 1;
	if (*hex == '"')
		hex++;
	size_t hl = strlen(hex);
	if (hl > 0 && hex[hl - 1] == '"')
		hl--;
	if (hl != (size_t)n)
		return ESIM_E_APDU_FRAME;
	char *copy = strndup(hex, hl);
	if (copy == NULL)
		return ESIM_E_NOMEM;
	uint8_t *bytes = NULL;
	size_t len = 0;
	esim_err err = esim_hex_decode(copy, &bytes, &len);
	free(copy);
	if (err != ESIM_OK)
		return ESIM_E_APDU_FRAME;
	rapdu->len = 0;
	err = esim_buf_append(rapdu, bytes, len);
	free(bytes);
	return err;
}

/* AT+<verb>=[<prefix_arg>,]<len>,"<hex>" with a response +<verb>: */
static esim_err at_apdu(struct at_ctx *c, const char *verb, int session, const uint8_t *capdu,
			size_t len, esim_buf *rapdu)
{
	char *hex = esim_hex_encode(capdu, len, true);
	if (hex == NULL)
		return ESIM_E_NOMEM;
	size_t cap = strlen(hex) + 64;
	char *cmd = malloc(cap);
	char *payload = malloc(AT_LINE_MAX);
	esim_err err = ESIM_E_NOMEM;
	if (cmd != NULL && payload != NULL) {
		if (session >= 0)
			snprintf(cmd, cap, "AT+%s=%d,%zu,\"%s\"", verb, session, 2 * len, hex);
		else
			snprintf(cmd, cap, "AT+%s=%zu,\"%s\"", verb, 2 * len, hex);
		char prefix[16];
		snprintf(prefix, sizeof prefix, "+%s:", verb);
		err = at_command(c, cmd, prefix, payload, AT_LINE_MAX);
		if (err == ESIM_OK)
			err = payload[0] ? parse_len_hex(payload, rapdu) : ESIM_E_APDU_FRAME;
	}
	free(hex);
	free(cmd);
	free(payload);
	return err;
}

static esim_err set_sw(esim_buf *rapdu, uint16_t sw, const uint8_t *data, size_t n)
{
	rapdu->len = 0;
	esim_err err = esim_buf_append(rapdu, data, n);
	if (err == ESIM_OK)
		err = esim_buf_append_byte(rapdu, (uint8_t)(sw >> 8));
	if (err == ESIM_OK)
		err = esim_buf_append_byte(rapdu, (uint8_t)sw);
	return err;
}

/* The logical channel a CLA addresses (ISO 7816-4 5.4.1). */
static uint8_t cla_channel(uint8_t cla)
{
	if (cla & 0x40)
		return (uint8_t)(4 + (cla & 0x0F));
	return cla & 0x03;
}

static uint8_t cla_base(uint8_t cla)
{
	return (cla & 0x40) ? (uint8_t)(cla & 0xB0) : (uint8_t)(cla & 0x9C);
}

static esim_err cgla_transmit(struct at_ctx *c, const uint8_t *capdu, size_t len, esim_buf *rapdu)
{
	uint8_t cla = capdu[0], ins = capdu[1], p1 = capdu[2];
	uint8_t ch = cla_channel(cla);
	if (ins == 0x70 && (cla & 0x80) == 0) {
		if (p1 == 0x00) { /* MANAGE CHANNEL open: answered here */
			if (c->provisional_open || c->session >= 0)
				return set_sw(rapdu, 0x6A81, NULL, 0);
			c->provisional_open = true;
			const uint8_t chan = AT_PROVISIONAL_CH;
			return set_sw(rapdu, 0x9000, &chan, 1);
		}
		if (p1 == 0x80) { /* close */
			if (c->session >= 0) {
				char cmd[32];
				snprintf(cmd, sizeof cmd, "AT+CCHC=%d", c->session);
				(void)at_command(c, cmd, "+CCHC:", NULL, 0);
			}
			c->session = -1;
			c->provisional_open = false;
			return set_sw(rapdu, 0x9000, NULL, 0);
		}
	}
	if (ch == 0)
		return at_apdu(c, "CSIM", -1, capdu, len, rapdu);
	if (ch != AT_PROVISIONAL_CH || !c->provisional_open)
		return set_sw(rapdu, 0x6881, NULL, 0); /* logical channel not supported */
	if (c->session < 0) {
		/* the first command on the channel must be SELECT by AID */
		if (ins != 0xA4 || p1 != 0x04 || len < 5 || capdu[4] == 0 ||
		    len < (size_t)5 + capdu[4])
			return set_sw(rapdu, 0x6985, NULL, 0);
		char *aid = esim_hex_encode(capdu + 5, capdu[4], true);
		if (aid == NULL)
			return ESIM_E_NOMEM;
		char cmd[128], payload[64];
		snprintf(cmd, sizeof cmd, "AT+CCHO=\"%s\"", aid);
		free(aid);
		esim_err err = at_command(c, cmd, "+CCHO:", payload, sizeof payload);
		if (err == ESIM_E_APDU_SW)
			return set_sw(rapdu, 0x6A82, NULL, 0); /* application not found */
		if (err != ESIM_OK)
			return err;
		char *end;
		long sid = strtol(payload, &end, 10);
		if (end == payload || *end != '\0' || sid < 0 || sid > 0xFFFF)
			return ESIM_E_APDU_FRAME;
		c->session = (int)sid;
		return set_sw(rapdu, 0x9000, NULL, 0);
	}
	uint8_t *copy = malloc(len);
	if (copy == NULL)
		return ESIM_E_NOMEM;
	memcpy(copy, capdu, len);
	if (c->session >= 1 && c->session <= 19)
		copy[0] = apdu_cla(cla_base(cla), (uint8_t)c->session);
	esim_err err = at_apdu(c, "CGLA", c->session, copy, len, rapdu);
	free(copy);
	return err;
}

static speed_t baud_of(long b)
{
	switch (b) {
	case 9600:
		return B9600;
	case 19200:
		return B19200;
	case 38400:
		return B38400;
	case 57600:
		return B57600;
	case 115200:
		return B115200;
	case 230400:
		return B230400;
	case 460800:
		return B460800;
	case 921600:
		return B921600;
	default:
		return 0;
	}
}

/* spec: PATH[,baud=N][,timeout=MS][,mode=cgla|csim] */
static esim_err parse_spec(const char *spec, char *path, size_t cap, struct at_ctx *c,
			   speed_t *speed)
{
	if (spec == NULL || *spec == '\0' || strlen(spec) >= cap)
		return ESIM_E_ARG;
	strcpy(path, spec);
	char *opt = strchr(path, ',');
	if (opt != NULL)
		*opt++ = '\0';
	while (opt != NULL && *opt != '\0') {
		char *next = strchr(opt, ',');
		if (next != NULL)
			*next++ = '\0';
		char *end;
		if (strncmp(opt, "baud=", 5) == 0) {
			*speed = baud_of(strtol(opt + 5, &end, 10));
			if (*end != '\0' || *speed == 0)
				return ESIM_E_ARG;
		} else if (strncmp(opt, "timeout=", 8) == 0) {
			long v = strtol(opt + 8, &end, 10);
			if (*end != '\0' || v < 1 || v > 3600000)
				return ESIM_E_ARG;
			c->timeout_ms = (int)v;
		} else if (strcmp(opt, "mode=cgla") == 0) {
			c->mode = AT_MODE_CGLA;
		} else if (strcmp(opt, "mode=csim") == 0) {
			c->mode = AT_MODE_CSIM;
		} else {
			return ESIM_E_ARG;
		}
		opt = next;
	}
	return ESIM_OK;
}

static esim_err at_open_why(const char *spec, void **out, esim_errctx *why)
{
	struct at_ctx *c = calloc(1, sizeof *c);
	if (c == NULL)
		return ESIM_E_NOMEM;
	c->fd = -1;
	c->session = -1;
	c->timeout_ms = AT_DEFAULT_TIMEOUT_MS;
	char path[512];
	speed_t speed = B115200;
	esim_err err = parse_spec(spec, path, sizeof path, c, &speed);
	if (err != ESIM_OK)
		esim_errctx_set(why,
				"'%s' is not a modem device (PATH[,baud=N][,timeout=MS]"
				"[,mode=cgla|csim])",
				spec ? spec : "");
	if (err == ESIM_OK) {
		c->fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (c->fd < 0) {
			int e = errno;
			if (e == EACCES)
				esim_errctx_set(why,
						"cannot open the modem %s (%s): add this user to "
						"the dialout group",
						path, strerror(e));
			else if (e == ENOENT)
				esim_errctx_set(why,
						"cannot open the modem %s (%s): is the modem "
						"plugged in? (see ls /dev/ttyUSB* /dev/ttyACM*)",
						path, strerror(e));
			else
				esim_errctx_set(why, "cannot open the modem %s (%s)", path,
						strerror(e));
			err = ESIM_E_APDU_NO_READER;
		}
	}
	struct termios t;
	if (err == ESIM_OK && tcgetattr(c->fd, &t) == 0) {
		cfmakeraw(&t);
		t.c_cflag |= CLOCAL | CREAD;
		cfsetispeed(&t, speed);
		cfsetospeed(&t, speed);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(c->fd, TCSANOW, &t) != 0)
			err = ESIM_E_IO;
		tcflush(c->fd, TCIOFLUSH);
	}
	/* A modem that does not answer "AT" is not a modem (or is busy). */
	if (err == ESIM_OK)
		err = at_command(c, "AT", NULL, NULL, 0);
	if (err == ESIM_E_APDU_TIMEOUT || err == ESIM_E_APDU_SW) {
		if (err == ESIM_E_APDU_TIMEOUT)
			esim_errctx_set(why,
					"the modem %s does not answer AT (no answer): is it the AT "
					"port, and is no other program (ModemManager) using it?",
					path);
		else
			esim_errctx_set(why,
					"the modem %s does not answer AT (ERROR): is it the AT "
					"port, and is no other program (ModemManager) using it?",
					path);
		err = ESIM_E_APDU_NO_READER;
	}
	if (err == ESIM_OK)
		(void)at_command(c, "ATE0", NULL, NULL, 0);
	if (err != ESIM_OK) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return err;
	}
	*out = c;
	return ESIM_OK;
}

static esim_err at_open(const char *spec, void **out)
{
	return at_open_why(spec, out, NULL);
}

static esim_err at_transmit(void *ctx, const uint8_t *capdu, size_t len, esim_buf *rapdu)
{
	struct at_ctx *c = ctx;
	rapdu->len = 0;
	if (capdu == NULL || len < 4 || len > 255 + 6)
		return ESIM_E_APDU_MALFORMED;
	esim_err err = c->mode == AT_MODE_CSIM ? at_apdu(c, "CSIM", -1, capdu, len, rapdu)
					       : cgla_transmit(c, capdu, len, rapdu);
	if (err == ESIM_OK && rapdu->len < 2)
		err = ESIM_E_APDU_FRAME;
	if (err == ESIM_E_APDU_SW) /* the modem said ERROR: no SW from the card */
		err = set_sw(rapdu, 0x6F00, NULL, 0);
	return err;
}

static void at_close(void *ctx)
{
	struct at_ctx *c = ctx;
	if (c == NULL)
		return;
	if (c->session >= 0) {
		char cmd[32];
		snprintf(cmd, sizeof cmd, "AT+CCHC=%d", c->session);
		(void)at_command(c, cmd, "+CCHC:", NULL, 0);
	}
	close(c->fd);
	free(c);
}

const apdu_driver apdu_driver_at = {
    .name = "at",
    .help = "serial device of a modem: PATH[,baud=N][,timeout=MS][,mode=cgla|csim]",
    .open = at_open,
    .open_why = at_open_why,
    .transmit = at_transmit,
    .close = at_close,
};
