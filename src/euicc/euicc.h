/*
 * euicc: the card logic of the virtual eUICC, i.e. the ISD-R with every
 * ES10a/b/c function of SGP.22 v2.2.2 (digest sections 4, 6, 7, 8).
 *
 * The APDU front (apdu_front.h) reassembles STORE DATA blocks into one ES10
 * command and hands it to euicc_es10(), which answers with one response TLV
 * (or nothing, for the intermediate pieces of a bound profile package).
 * Function-level failures are ES10 result codes inside the response (SW
 * 9000); only a command that is not a well-formed ES10 request makes
 * euicc_es10() fail, with ESIM_E_EUICC_BAD_COMMAND or
 * ESIM_E_EUICC_UNKNOWN_COMMAND, which the front turns into 6A80.
 *
 * State: profiles, notifications, the notification sequence counter and
 * the configured addresses live in one SQLite database (euicc_db.c); every
 * install, enable, disable, delete and memory reset is committed before the
 * response is produced. The RSP session (challenge, transaction, one-time
 * keys, BPP progress) lives in RAM only, as on a card.
 *
 * Ownership: euicc_open() gives a handle freed by euicc_close(). The config
 * is borrowed for the call only.
 */
#ifndef ESIM_EUICC_H
#define ESIM_EUICC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "esim/err.h"
#include "esim/util.h"

#define EUICC_MAX_IDENTITIES		2 /* one per CI: a NIST one and a brainpool one */
#define EUICC_MAX_CI			8
#define EUICC_EID_LEN			16
#define EUICC_DEFAULT_CAPACITY		(4u * 1024u * 1024u) /* bytes of profile storage */
#define EUICC_DEFAULT_MAX_NOTIFICATIONS 64
#define EUICC_DEFAULT_ROOT_DS		"lpa.ds.gsma.com"

/* Borrowed bytes. */
struct euicc_blob {
	const uint8_t *p;
	size_t len;
};

/* One eUICC identity: CERT.EUICC, its private key and CERT.EUM. Either the
 * paths or the in-memory forms are given (paths win when set). */
struct euicc_identity_cfg {
	const char *cert_path; /* DER or PEM */
	const char *key_path;  /* PEM or DER private key */
	const char *eum_path;  /* DER or PEM */
	struct euicc_blob cert;
	EVP_PKEY *key; /* borrowed; the eUICC takes its own reference */
	struct euicc_blob eum;
};

struct euicc_config {
	const char *db_url; /* "PATH", "sqlite:PATH" or ":memory:" */
	struct euicc_identity_cfg identities[EUICC_MAX_IDENTITIES];
	size_t n_identities; /* 1 or 2, all with the same EID */
	/* Trusted CI certificates (the eUICC's verification list). */
	const char *ci_paths[EUICC_MAX_CI];
	size_t n_ci_paths;
	struct euicc_blob ci_ders[EUICC_MAX_CI];
	size_t n_ci_ders;
	uint64_t capacity;	     /* 0: EUICC_DEFAULT_CAPACITY */
	size_t max_notifications;    /* 0: EUICC_DEFAULT_MAX_NOTIFICATIONS */
	const char *root_ds_address; /* NULL: EUICC_DEFAULT_ROOT_DS */
	/* Profile policy rules this eUICC does not accept (PprIds bits:
	 * RSP_PPR1 1u << 1, RSP_PPR2 1u << 2; 0: none): declared in EUICCInfo2
	 * (99 forbiddenProfilePolicyRules), left out of the RAT, and a
	 * StoreMetadata carrying one is refused with pprNotAllowed (15). */
	uint32_t forbidden_ppr;
};

typedef struct euicc euicc;

/* Open (and create or migrate) the eUICC's database and load its
 * identities. ESIM_E_EUICC_IDENTITY when a key does not match its
 * certificate, a chain does not verify to a configured CI, or two
 * identities carry different EIDs. */
esim_err euicc_open(const struct euicc_config *cfg, euicc **out);
void euicc_close(euicc *e);

/* Process one complete ES10 command (cmd, len). The response TLV, if any,
 * is appended to resp (caller owns it); an empty response is valid (BPP
 * pieces before the last one). Errors: ESIM_E_EUICC_BAD_COMMAND,
 * ESIM_E_EUICC_UNKNOWN_COMMAND (-> SW 6A80), ESIM_E_EUICC_CONDITIONS (a
 * BPP with no download prepared -> SW 6985); others (ESIM_E_STORE_*,
 * ESIM_E_NOMEM, ...) are internal failures (-> SW 6F00), after which the
 * stored state is the last committed one. */
esim_err euicc_es10(euicc *e, const uint8_t *cmd, size_t len, esim_buf *resp);

/* The SGP.22 name of the ES10 function a command invokes, e.g.
 * "GetEUICCChallenge" or "LoadBoundProfilePackage", for traces; static
 * string, "unknown" when the tag is not an ES10 request. */
const char *euicc_es10_name(const uint8_t *cmd, size_t len);

/* Card reset / new power-up: forget the RAM session (as a card does). */
void euicc_reset(euicc *e);

/* Adapters for the APDU front (apdu_front.h: euicc_es10_handler and
 * on_reset), ctx being the euicc: a malformed or unknown command becomes
 * SW 6A80, other failures are returned (the front answers 6A84 / 6F00). */
esim_err euicc_front_es10(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len,
			  esim_buf *resp, uint16_t *sw);
void euicc_front_reset(void *ctx);

/* The EID: 16 bytes BCD, and 32 digits + NUL (borrowed). */
const uint8_t *euicc_eid(const euicc *e);
const char *euicc_eid_text(const euicc *e);

#endif
