/*
 * apdu: the LPA's side of the ISO 7816-4 link to an eUICC (SGP.22 ES10 over
 * APDUs, see ../shared/docs/sgp22-digest.md section 3).
 *
 * Two levels:
 *  - apdu_driver: moves one command APDU to the card and one response APDU
 *    back. Drivers: "socket" (esimkit's virtual eUICC, docs/euicc-socket.md),
 *    "pcsc" (any PC/SC reader, including vsmartcard's vpcd), and "at"
 *    (a modem's AT+CSIM; written separately, see apdu_drivers()).
 *  - apdu_session: what an LPA needs on top: a logical channel of its own
 *    (MANAGE CHANNEL), the ISD-R selected on it, and apdu_es10_transmit(),
 *    which cuts one ES10 command into STORE DATA blocks and collects the
 *    response through 61xx / GET RESPONSE.
 *
 * Block size (fewest APDUs the card and transport allow): a whole ES10
 * command in one extended-length STORE DATA (Le 0000, so the response comes
 * back whole too) when the card's ATR declares extended Lc/Le (ISO 7816-4
 * card capabilities) and the driver carries extended APDUs (socket; pcsc
 * when connected with T=1); else
 * short blocks of the driver's default (255 for socket and pcsc, 120 for
 * at) or of opts.mss. A card that answers 6700 (wrong length) to a block
 * gets the ES10 command again in smaller blocks (extended -> the short
 * default -> 120 -> halves, not below APDU_MIN_MSS), and the session keeps
 * that size.
 *
 * Status words: 9000 and 91xx end a command successfully; anything else is
 * ESIM_E_APDU_SW, and apdu_session_last_sw() tells which SW the card gave.
 * ES10 function errors are not SWs: they come back inside the response TLV.
 */
#ifndef ESIM_APDU_H
#define ESIM_APDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "esim/err.h"
#include "esim/util.h"

/* The ISD-R's AID (SGP.22 2.2.3). */
#define APDU_ISDR_AID_LEN 16
extern const uint8_t apdu_isdr_aid[APDU_ISDR_AID_LEN];

/* Largest command or response APDU any driver must carry: an extended
 * APDU, 4 + 3 + 65535 + 3 bytes, rounded up. */
#define APDU_MAX_LEN 65546
/* Default and largest STORE DATA block (the digest's MSS): 120 as lpac,
 * because some modems fail on longer AT lines (drivers that declare no
 * default_mss get it); 255 is the short-APDU maximum; the fallback after
 * 6700 never goes below APDU_MIN_MSS. */
#define APDU_DEFAULT_MSS 120
#define APDU_MAX_MSS	 255
#define APDU_MIN_MSS	 16
/* Longest short command APDU: header, Lc, 255 bytes, Le. */
#define APDU_SHORT_MAX_LEN 261
/* Cap on one reassembled ES10 response, against a card that never ends
 * its 61xx chain. */
#define APDU_MAX_RESPONSE (1024 * 1024)

/* ---- drivers --------------------------------------------------------- */

typedef struct apdu_driver {
	const char *name; /* "socket", "pcsc", "at" */
	const char *help; /* one line: what the spec string may be */
	/* Connect to the card described by spec; *ctx is the driver's state. */
	esim_err (*open)(const char *spec, void **ctx);
	/* Optional: open, and on failure say in why (may be NULL) what failed
	 * (address, reader, device), the reason and what to do. */
	esim_err (*open_why)(const char *spec, void **ctx, esim_errctx *why);
	/* Send one command APDU, receive one response APDU (data + SW1 SW2)
	 * into rapdu, which the driver empties first. The caller owns rapdu. */
	esim_err (*transmit)(void *ctx, const uint8_t *capdu, size_t len, esim_buf *rapdu);
	/* Disconnect and free ctx (NULL is allowed). */
	void (*close)(void *ctx);
	/* Optional: the card's ATR into atr (emptied first, owned by the
	 * caller). NULL or an error: unknown (short APDUs are used). */
	esim_err (*atr)(void *ctx, esim_buf *atr);
	/* Longest command APDU the driver can carry; up to
	 * APDU_SHORT_MAX_LEN (0 included): short APDUs only, even when the
	 * card declares extended length. */
	size_t max_apdu;
	/* Optional: the same for the open connection, when it depends on
	 * it (pcsc: extended APDUs with T=1 only); used instead of max_apdu
	 * when set. */
	size_t (*max_apdu_of)(void *ctx);
	/* STORE DATA block when neither opts.mss nor extended length applies;
	 * 0 = APDU_DEFAULT_MSS. */
	size_t default_mss;
} apdu_driver;

/*
 * socket spec: "unix:/path/to.sock", "tcp:HOST:PORT" or "HOST:PORT"
 *   (IPv6 as "tcp:[::1]:PORT"). Optional ",timeout=MS" (default 30000) bounds
 *   the wait for each response.
 * pcsc spec: "" (the first reader with a card), a reader index "0", "1"...
 *   in SCardListReaders order, or a substring of the reader's name.
 */
extern const apdu_driver apdu_driver_socket;
extern const apdu_driver apdu_driver_pcsc;

/* The NULL-terminated table of compiled-in drivers, in the order "socket",
 * "pcsc", then "at" once src/apdu/at.c exists (it defines apdu_driver_at and
 * adds itself to the table in src/apdu/driver.c). */
const apdu_driver *const *apdu_drivers(void);
/* The driver named name, or NULL. */
const apdu_driver *apdu_driver_find(const char *name);

/* ---- helpers ------------------------------------------------------------ */

/* CLA byte for base class (0x00 interindustry, 0x80 proprietary) on logical
 * channel ch 0..19 (ISO 7816-4 5.4.1: first form for 0..3, further form for
 * 4..19). Returns base unchanged for ch > 19. */
uint8_t apdu_cla(uint8_t base, uint8_t ch);
/* The SW of a response APDU (its last two bytes); 0 when len < 2. */
uint16_t apdu_sw(const uint8_t *rapdu, size_t len);
/* True for SWs that end a command successfully: 9000 and 91xx. */
bool apdu_sw_ok(uint16_t sw);

/* What an ATR's historical bytes say about the card (ISO 7816-4 card
 * capabilities, compact-TLV tag 7 with its third software function byte,
 * in historical bytes of category 00 or 80). */
struct apdu_card_caps {
	bool present;	       /* the third software function byte was found */
	bool extended_length;  /* b7: extended Lc and Le fields */
	bool chaining;	       /* b8: command chaining */
	unsigned max_channels; /* b3-b1 + 1: 1..8 logical channels */
};
/* Parse atr (TS, T0, interface bytes, historical bytes, TCK). A malformed
 * ATR (shorter than T0 and the TDi bytes announce, a compact-TLV object
 * running past the end) is ESIM_E_APDU_MALFORMED; an ATR without card
 * capabilities is ESIM_OK with present = false. */
esim_err apdu_atr_card_caps(const uint8_t *atr, size_t len, struct apdu_card_caps *out);

/* ---- session -------------------------------------------------------------- */

typedef struct apdu_session apdu_session;

struct apdu_session_opts {
	size_t mss;	    /* short STORE DATA blocks of 1..255 bytes (never
			       extended length); 0 = automatic (top of file) */
	bool basic_channel; /* use channel 0 instead of MANAGE CHANNEL (for
			       readers or modems without logical channels) */
	FILE *trace;	    /* when set, every APDU is written there as hex */
	esim_errctx *why;   /* when set, a failed open says there what failed
			       (address, reader, device) and what to do */
};

/*
 * Open the driver named driver with spec, open a logical channel and select
 * the ISD-R on it. opts may be NULL (defaults). On success the caller owns
 * *out and closes it with apdu_session_close(). On ESIM_E_APDU_SW,
 * nothing is left open and the failing SW is lost: use a trace to see it.
 */
esim_err apdu_session_open(const char *driver, const char *spec,
			   const struct apdu_session_opts *opts, apdu_session **out);
/* Close the logical channel (best effort), the driver, and free s. */
void apdu_session_close(apdu_session *s);

/* The logical channel the session talks on (0 with basic_channel). */
uint8_t apdu_session_channel(const apdu_session *s);
/* The SW that ended the last exchange (0 before any). */
uint16_t apdu_session_last_sw(const apdu_session *s);
/* The STORE DATA block size in use: the short block (1..255), or the
 * extended one (> 255) when *extended. extended may be NULL. */
size_t apdu_session_block(const apdu_session *s, bool *extended);

/*
 * Send one raw command APDU as it is and follow 61xx (GET RESPONSE) and
 * 6Cxx (resend with the right Le) so that resp gets the whole response data,
 * without SW. The SW is in *sw (may be NULL) and apdu_session_last_sw();
 * a non-success SW is still ESIM_OK here: the caller judges it.
 */
esim_err apdu_session_transmit(apdu_session *s, const uint8_t *capdu, size_t len, esim_buf *resp,
			       uint16_t *sw);

/*
 * One ES10 command (a whole BER-TLV, e.g. BF2E00) to the ISD-R: STORE DATA
 * blocks (their size: top of this file), P1 0x11 / 0x91 (last), P2 =
 * block number, then the response, collected through GET RESPONSE where
 * the card asks for it (61xx). resp is emptied first and receives the
 * response TLV (may be empty, e.g. for BPP segments). A block refused with
 * 6700 is retried in smaller blocks from the first block (a card acts on a
 * command only at its last block). ESIM_E_APDU_SW when a block ends with
 * another SW than 9000/91xx (then see apdu_session_last_sw()).
 */
esim_err apdu_es10_transmit(apdu_session *s, const uint8_t *cmd, size_t len, esim_buf *resp);

#endif
