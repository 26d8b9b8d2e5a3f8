/*
 * euicc_apdu_front: the virtual eUICC's ISO 7816-4 face. It takes raw
 * command APDUs, keeps the per-card APDU state (logical channels, the
 * application selected on each, STORE DATA reassembly, responses waiting
 * for GET RESPONSE) and hands each complete ES10 command to one handler.
 * It counts what passes (euicc_apdu_front_counters).
 * Digest section 3 is the reference; the rules chosen where SGP.22 leaves
 * a choice are listed here and in docs/euicc-socket.md.
 *
 * Commands (anything else: 6D00 unknown INS, 6E00 known INS in the wrong
 * class):
 *   00 70 00 00 [01]      MANAGE CHANNEL open: the lowest free channel
 *                         1..7 in one data byte; P2 = n opens channel n
 *                         (no data). No free channel: 6A81. Channels
 *                         0..7 are served, as the ATR says (8 at most);
 *                         P2 8..19: 6881.
 *   00 70 80 ch           MANAGE CHANNEL close ch (P2 = 0: the CLA's own).
 *                         Channel 0 cannot be closed (6A86).
 *   00 A4 04 00|0C AID    SELECT by DF name. Only the ISD-R's full AID is
 *                         selectable (no partial AID: 6A82); P1 00..09
 *                         other than 04 is 6A82 (no file system here),
 *                         other P1 6A86. Answers FCI 6F 12 84 10 <AID>
 *                         (P2 0C: no data). A failed SELECT leaves the
 *                         selection as it was. A newly opened channel has
 *                         nothing selected.
 *   80 E2 11|91 nn data   STORE DATA block nn (0, 1, ... mod 256); 91 =
 *                         last. Intermediate blocks: 9000, no data. The
 *                         last one calls the ES10 handler. Short or
 *                         extended Lc; a block longer than cfg.max_block
 *                         (when set) is 6700 and drops the sequence.
 *   00|80 C0 00 00 Le     GET RESPONSE.
 *   80 AA 00 00 [data]    TERMINAL CAPABILITY: accepted, 9000.
 * CLA: channels 0..3 in the first interindustry form (00-03, 80-83),
 * 4..19 in the further form (40-4F, C0-CF); secure messaging 6882, command
 * chaining 6884, a channel that is not open or not served (8..19) 6881,
 * CLA FF / 20-3F / A0-BF 6E00. Lengths: short and extended Lc/Le, ISO cases 1-4; anything else
 * 6700.
 *
 * Rules where ISO/SGP.22 leave a choice:
 *   - A response that fits Ne (256 when the command has no Le, as lpac
 *     and euicc-go send STORE DATA without Le) comes back at once with 9000.
 *     A longer one is announced with a bare 61xx (no data: euicc-go drops
 *     data sent with 61xx, digest 3.3) and fetched with GET RESPONSE,
 *     which answers Le bytes and 61xx while more remain. A short non-zero
 *     Le larger than what is left is answered 6Cxx (xx = what is left).
 *     force_get_response makes every response go through 61xx, as T=0
 *     cards do.
 *   - Any command on a channel other than GET RESPONSE drops that
 *     channel's unread response. GET RESPONSE with nothing waiting: 6985.
 *   - A STORE DATA block with P2 = 00 starts a new sequence (dropping an
 *     unfinished one), except right after block FF, where 00 is the next
 *     block. Any P2 other than the expected one: 6A86 and the sequence is
 *     dropped. Any other command on the channel drops an unfinished
 *     sequence too. STORE DATA where the ISD-R is not selected: 6985.
 *     P1 other than 11/91: 6A86. A sequence over EUICC_APDU_MAX_COMMAND
 *     bytes: 6A84, dropped.
 *   - Each channel has its own STORE DATA sequence and response, so two
 *     channels can interleave.
 */
#ifndef ESIM_EUICC_APDU_FRONT_H
#define ESIM_EUICC_APDU_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esim/err.h"
#include "esim/util.h"

/* Logical channels served: 0..7. The ATR's card capabilities can say at
 * most 8 (three bits, ISO 7816-4), so the card serves exactly what it
 * advertises (docs/euicc-socket.md). */
#define EUICC_APDU_CHANNELS 8
/* One reassembled ES10 command: a BPP is sent one top-level TLV at a time
 * (digest 3.5), so the largest command is one 86 segment (< 64 KiB in
 * practice: SAIP segments are ~1 KiB) or a PrepareDownload / AuthenticateServer
 * with certificates (a few KiB). */
#define EUICC_APDU_MAX_COMMAND (64 * 1024 + 4096)
/* One ES10 response (GetProfilesInfo with icons is the largest). */
#define EUICC_APDU_MAX_RESPONSE (1024 * 1024)
/* Data bytes in one response APDU, so that data + SW fits one 16-bit-length
 * frame of the socket and vpcd transports, even for extended Le. */
#define EUICC_APDU_MAX_RDATA 65533

/* Status words the front and an ES10 handler use. */
#define EUICC_SW_OK		0x9000
#define EUICC_SW_WRONG_LENGTH	0x6700
#define EUICC_SW_CHANNEL	0x6881 /* logical channel not supported / not open */
#define EUICC_SW_SM		0x6882 /* secure messaging not supported */
#define EUICC_SW_CHAINING	0x6884 /* command chaining not supported */
#define EUICC_SW_CONDITIONS	0x6985
#define EUICC_SW_WRONG_DATA	0x6A80
#define EUICC_SW_FUNC_NOT_SUPP	0x6A81
#define EUICC_SW_NOT_FOUND	0x6A82
#define EUICC_SW_NO_MEMORY	0x6A84
#define EUICC_SW_WRONG_P1P2	0x6A86
#define EUICC_SW_DATA_NOT_FOUND 0x6A88
#define EUICC_SW_INS_UNKNOWN	0x6D00
#define EUICC_SW_CLA_UNKNOWN	0x6E00
#define EUICC_SW_NO_DIAG	0x6F00

/*
 * The ES10 handler: called once per complete ES10 command (the reassembled
 * STORE DATA payload, e.g. BF2E00) received on channel.
 *   - cmd stays valid only during the call.
 *   - resp is empty on entry; append the response TLV (leave it empty for
 *     "no data", e.g. the intermediate BPP segments of digest 3.5).
 *   - *sw is 9000 on entry. ES10 function errors are result codes inside
 *     the response TLV with 9000 (digest 3.4); set *sw to an error SW
 *     (6A80 malformed TLV, 6A88, 6985 ...) only to refuse the command at
 *     the APDU level; resp is then discarded.
 *   - return ESIM_OK normally; another code means an internal failure:
 *     the card answers 6A84 for ESIM_E_NOMEM / ESIM_E_TOO_LARGE and 6F00
 *     otherwise, and resp is discarded.
 */
typedef esim_err (*euicc_es10_handler)(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len,
				       esim_buf *resp, uint16_t *sw);

/* Trace hook: every command APDU (command = true) and response APDU as
 * they pass. Must not keep the pointer. */
typedef void (*euicc_apdu_trace)(void *ctx, bool command, const uint8_t *apdu, size_t len);

struct euicc_apdu_front_cfg {
	euicc_es10_handler es10; /* required */
	void *es10_ctx;
	/* optional: told when the card is reset (power on/off, reset, new
	 * socket client), after the front dropped its own state */
	void (*on_reset)(void *es10_ctx);
	euicc_apdu_trace trace; /* optional */
	void *trace_ctx;
	bool force_get_response; /* answer every response with 61xx first */
	/* 0: any length. Else the longest STORE DATA block accepted; longer
	 * ones are answered 6700 (a card with a small buffer, for tests of an
	 * LPA's fallback to smaller blocks). */
	size_t max_block;
};

/* What has passed the front since it was created (never reset, not even
 * by a card reset). Counts only, never contents. */
struct euicc_apdu_counters {
	uint64_t commands;	 /* command APDUs received */
	uint64_t command_bytes;	 /* their bytes (header, Lc, data, Le) */
	uint64_t response_bytes; /* response APDU bytes sent (data + SW) */
	uint64_t store_data;	 /* STORE DATA commands among them */
	uint64_t get_response;	 /* GET RESPONSE commands among them */
	uint64_t wrong_length;	 /* commands answered 6700 */
};

/* One front is one card: drive it from one thread at a time (the
 * transports serialise connections for that reason). */
typedef struct euicc_apdu_front euicc_apdu_front;

/* Copies cfg. The caller frees *out with euicc_apdu_front_free(). */
esim_err euicc_apdu_front_new(const struct euicc_apdu_front_cfg *cfg, euicc_apdu_front **out);
void euicc_apdu_front_free(euicc_apdu_front *f);

/* Card reset: channels 1..7 closed, nothing selected, every unfinished
 * STORE DATA sequence and unread response dropped; then cfg->on_reset. */
void euicc_apdu_front_reset(euicc_apdu_front *f);

/*
 * Process one command APDU and put the response APDU (data + SW1 SW2) into
 * rapdu, which is emptied first and owned by the caller. Every APDU-level
 * problem is a status word with ESIM_OK; an error return (ESIM_E_NOMEM,
 * ESIM_E_ARG) means no response could be built.
 */
esim_err euicc_apdu_front_process(euicc_apdu_front *f, const uint8_t *capdu, size_t len,
				  esim_buf *rapdu);

/* A copy of the counters (reading them while another thread drives the
 * front gives values that may be one APDU behind). */
void euicc_apdu_front_counters(const euicc_apdu_front *f, struct euicc_apdu_counters *out);

/* Is channel open / is the ISD-R selected on it (for tests and tracing). */
bool euicc_apdu_front_channel_open(const euicc_apdu_front *f, uint8_t channel);
bool euicc_apdu_front_isdr_selected(const euicc_apdu_front *f, uint8_t channel);

#endif
