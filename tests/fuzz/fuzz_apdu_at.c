/*
 * Fuzz the "at" APDU driver's reading of modem replies (src/apdu/at.c,
 * 3GPP TS 27.007 +CSIM / +CCHO / +CGLA / +CCHC): a modem, or whatever sits
 * on its serial port, is not trusted. The driver is compiled into this
 * target with its serial I/O (read, write, poll) pointed at a scripted
 * modem: the driver's command lines are swallowed, and after each command
 * ("\r") the next reply of the input becomes readable, in pieces of a size
 * the input chooses (lines split across reads). A command without a reply
 * left times out at once (poll says "nothing").
 *
 * Input: [flags:1] then replies separated by 0x00 bytes. flags bit 0: csim
 * mode (else cgla); bits 1-3: the read piece size (1, 2, 4 ... 128 bytes).
 * The script sends what the LPA sends: MANAGE CHANNEL open, SELECT of the
 * ISD-R on that channel, two STORE DATA, MANAGE CHANNEL close.
 * Checked: no crash, leak or overflow; every transmit that succeeds gives
 * a response APDU of at least the two status bytes and at most
 * APDU_MAX_LEN bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "esim/apdu.h"

static struct modem {
	const uint8_t *p; /* the rest of the input */
	size_t len;
	const uint8_t *reply; /* the current reply: readable now */
	size_t reply_len;
	size_t piece;
} M;

static ssize_t fuzz_write(int fd, const void *buf, size_t n)
{
	(void)fd;
	/* a command ends with \r: the modem answers with the next reply */
	if (n > 0 && ((const char *)buf)[n - 1] == '\r') {
		const uint8_t *end = memchr(M.p, 0, M.len);
		size_t l = end ? (size_t)(end - M.p) : M.len;
		M.reply = M.p;
		M.reply_len = l;
		M.p += end ? l + 1 : l;
		M.len -= end ? l + 1 : l;
	}
	return (ssize_t)n;
}

static ssize_t fuzz_read(int fd, void *buf, size_t n)
{
	(void)fd;
	size_t k = M.reply_len < n ? M.reply_len : n;
	if (k > M.piece)
		k = M.piece;
	memcpy(buf, M.reply, k);
	M.reply += k;
	M.reply_len -= k;
	return (ssize_t)k;
}

static int fuzz_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	(void)timeout;
	if (n != 1)
		abort();
	fds[0].revents = M.reply_len > 0 ? POLLIN : 0;
	return M.reply_len > 0;
}

/* The driver takes two line buffers of AT_LINE_MAX (> 128 KiB) per
 * command; under ASan each is an mmap and munmap of its own, which made
 * this target ~3,000 exec/s. They come from two static slots instead
 * (overflows still hit the globals' redzones; a use after free of a slot
 * is not seen); every other allocation is the real one. */
#define FUZZ_AT_LINE (2 * APDU_MAX_LEN + 64)
static char at_slot[2][FUZZ_AT_LINE];
static bool at_slot_used[2];

static void *fuzz_malloc(size_t n)
{
	for (int i = 0; n == FUZZ_AT_LINE && i < 2; i++)
		if (!at_slot_used[i]) {
			at_slot_used[i] = true;
			return at_slot[i];
		}
	return malloc(n);
}

static void fuzz_free(void *p)
{
	for (int i = 0; i < 2; i++)
		if (p == at_slot[i]) {
			at_slot_used[i] = false;
			return;
		}
	free(p);
}

#define read	       fuzz_read
#define write	       fuzz_write
#define poll	       fuzz_poll
#define malloc	       fuzz_malloc
#define free	       fuzz_free
#define apdu_driver_at fuzz_apdu_driver_at
#include "../../src/apdu/at.c"
#undef read
#undef write
#undef poll
#undef malloc
#undef free
_Static_assert(AT_LINE_MAX == FUZZ_AT_LINE, "the driver's line buffer size");

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	M = (struct modem){
	    .p = data + 1, .len = size - 1, .piece = (size_t)1 << ((data[0] >> 1) & 7)};
	/* one context (its receive buffer is 128 KiB), reset per input */
	static struct at_ctx *c;
	if (c == NULL && (c = malloc(sizeof *c)) == NULL)
		return 0;
	c->rx_len = 0;
	c->cmd = NULL;
	c->provisional_open = false;
	c->fd = -1;
	c->session = -1;
	c->timeout_ms = 1000;
	c->mode = (data[0] & 1) ? AT_MODE_CSIM : AT_MODE_CGLA;

	static const uint8_t open_ch[] = {0x00, 0x70, 0x00, 0x00, 0x01};
	static const uint8_t select_isdr[] = {0x01, 0xA4, 0x04, 0x00, 0x10, 0xA0, 0x00, 0x00,
					      0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF,
					      0x89, 0x00, 0x00, 0x01, 0x00, 0x00};
	static const uint8_t get_eid[] = {0x81, 0xE2, 0x91, 0x00, 0x06, 0xBF,
					  0x3E, 0x03, 0x5C, 0x01, 0x5A, 0x00};
	static const uint8_t get_resp[] = {0x81, 0xC0, 0x00, 0x00, 0x00};
	static const uint8_t close_ch[] = {0x00, 0x70, 0x80, 0x01, 0x00};
	const struct {
		const uint8_t *p;
		size_t n;
	} script[] = {{open_ch, sizeof open_ch},
		      {select_isdr, sizeof select_isdr},
		      {get_eid, sizeof get_eid},
		      {get_resp, sizeof get_resp},
		      {close_ch, sizeof close_ch}};
	esim_buf r = ESIM_BUF_INIT;
	for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
		esim_err err = at_transmit(c, script[i].p, script[i].n, &r);
		if (err == ESIM_OK && (r.len < 2 || r.len > APDU_MAX_LEN))
			abort();
	}
	esim_buf_free(&r);
	if (c->session >= 0) { /* what at_close() sends, without its free */
		char cmd[32];
		snprintf(cmd, sizeof cmd, "AT+CCHC=%d", c->session);
		(void)at_command(c, cmd, "+CCHC:", NULL, 0);
	}
	return 0;
}
