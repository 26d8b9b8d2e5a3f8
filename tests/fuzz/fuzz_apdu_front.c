/*
 * Fuzz the virtual eUICC's APDU front (src/euicc/apdu_front.c), the first
 * code that sees the bytes an LPA or any PC/SC program sends. The input is
 * a sequence of APDUs, each prefixed by one length byte; length 0 resets the
 * card. The in-test ES10 handler echoes, answers 1000 bytes for EE.. (to
 * drive GET RESPONSE chaining) and refuses DD.. with 6A80.
 * Checked: no crash or leak, every response ends in a status word from the
 * set the front documents, and data only comes with 9000.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "euicc/apdu_front.h"

static esim_err handler(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len, esim_buf *resp,
			uint16_t *sw)
{
	(void)ctx;
	if (channel >= EUICC_APDU_CHANNELS || len == 0 || len > EUICC_APDU_MAX_COMMAND)
		abort();
	if (cmd[0] == 0xEE) {
		/* one append: byte by byte this was most of the target's time */
		static uint8_t big[1000];
		if (big[1] == 0)
			for (size_t i = 0; i < sizeof big; i++)
				big[i] = (uint8_t)i;
		return esim_buf_append(resp, big, sizeof big);
	}
	if (cmd[0] == 0xDD) {
		*sw = 0x6A80;
		return ESIM_OK;
	}
	return esim_buf_append(resp, cmd, len);
}

static int sw_known(uint16_t sw)
{
	switch (sw) {
	case 0x9000:
	case 0x6700:
	case 0x6881:
	case 0x6882:
	case 0x6884:
	case 0x6985:
	case 0x6A80:
	case 0x6A81:
	case 0x6A82:
	case 0x6A84:
	case 0x6A86:
	case 0x6D00:
	case 0x6E00:
	case 0x6F00:
		return 1;
	default:
		return (sw >> 8) == 0x61 || (sw >> 8) == 0x6C;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct euicc_apdu_front_cfg cfg = {.es10 = handler,
					   .force_get_response = size > 0 && (data[0] & 1)};
	euicc_apdu_front *f = NULL;
	if (euicc_apdu_front_new(&cfg, &f) != ESIM_OK)
		return 0;
	esim_buf r = ESIM_BUF_INIT;
	size_t off = size > 0 ? 1 : 0;
	while (off < size) {
		size_t n = data[off++];
		if (n == 0) {
			euicc_apdu_front_reset(f);
			continue;
		}
		if (n > size - off)
			n = size - off;
		if (euicc_apdu_front_process(f, data + off, n, &r) != ESIM_OK)
			abort();
		off += n;
		if (r.len < 2)
			abort();
		uint16_t sw = (uint16_t)(r.data[r.len - 2] << 8 | r.data[r.len - 1]);
		if (!sw_known(sw))
			abort();
		if (r.len > 2 && sw != 0x9000 && (sw >> 8) != 0x61)
			abort();
		if (r.len - 2 > 65536)
			abort();
	}
	esim_buf_free(&r);
	euicc_apdu_front_free(f);
	return 0;
}
