/*
 * Fuzz target for the virtual eUICC's command path: APDUs through the
 * APDU front into the ES10 dispatcher, and raw ES10 commands straight into
 * euicc_es10() (the BPP state machine included). The card is an in-memory
 * eUICC (":memory:" database) with an identity issued in-process once at
 * start-up (CI -> EUM -> eUICC with the pki API), so the target needs no
 * files. The card is opened once: opening one per input (schema creation,
 * identity loading with its chain check) cost 2.4 ms and held the target
 * at ~400 inputs/s. Between inputs card_reset() puts it back to its
 * opening state: the RAM session and a kept retry key dropped (a power
 * cycle), and every table emptied and the counters zeroed.
 *
 * Input: records of [mode:1][len:2 big-endian][bytes]. mode bit 0 set: a
 * raw ES10 command; clear: a command APDU. After the sequence the card must
 * still answer GetProfilesInfo and ListNotification with well-formed DER.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "esim/der.h"
#include "esim/pki.h"
#include "esim/store.h"
#include "euicc/apdu_front.h"
#include "euicc/euicc.h"
#include "euicc/euicc_int.h"
#include "fuzz_asan_options.h"

struct identity {
	struct crypto_issued ci, eum, euicc;
};

static struct identity *ident; /* made once, read-only afterwards */

static void make_identity(void)
{
	static struct identity id;
	time_t now = time(NULL);
	struct crypto_issue_params p = {
	    .kind = CRYPTO_ISSUE_CI,
	    .curve = CRYPTO_CURVE_P256,
	    .not_before = now - 3600,
	    .not_after = now + 86400 * 365,
	};
	if (crypto_issue(&p, &id.ci) != ESIM_OK)
		abort();
	p.kind = CRYPTO_ISSUE_EUM;
	p.eid = "89049032123451234512345678901235";
	p.issuer_der = id.ci.der;
	p.issuer_der_len = id.ci.der_len;
	p.issuer_key = id.ci.key;
	if (crypto_issue(&p, &id.eum) != ESIM_OK)
		abort();
	p.kind = CRYPTO_ISSUE_EUICC;
	p.issuer_der = id.eum.der;
	p.issuer_der_len = id.eum.der_len;
	p.issuer_key = id.eum.key;
	p.not_after = CRYPTO_PKI_NOT_AFTER_NEVER;
	if (crypto_issue(&p, &id.euicc) != ESIM_OK)
		abort();
	ident = &id;
}

static void open_card(void);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_identity();
	open_card();
	return 0;
}

static void check_der(const esim_buf *r)
{
	der_element el;
	if (der_parse_single(r->data, r->len, &el) != ESIM_OK)
		abort();
}

static euicc *card;
static euicc_apdu_front *front;

static void open_card(void)
{
	struct euicc_config cfg = {.db_url = ":memory:", .n_identities = 1, .n_ci_ders = 1};
	cfg.identities[0].cert.p = ident->euicc.der;
	cfg.identities[0].cert.len = ident->euicc.der_len;
	cfg.identities[0].key = ident->euicc.key;
	cfg.identities[0].eum.p = ident->eum.der;
	cfg.identities[0].eum.len = ident->eum.der_len;
	cfg.ci_ders[0].p = ident->ci.der;
	cfg.ci_ders[0].len = ident->ci.der_len;
	cfg.max_notifications = 8;
	if (euicc_open(&cfg, &card) != ESIM_OK)
		abort();
	struct euicc_apdu_front_cfg fc = {
	    .es10 = euicc_front_es10,
	    .es10_ctx = card,
	    .on_reset = euicc_front_reset,
	};
	if (euicc_apdu_front_new(&fc, &front) != ESIM_OK)
		abort();
}

/* Back to the state euicc_open() left: what an input did must not leak
 * into the next one (a crash must replay from its own input alone). */
static void card_reset(void)
{
	static const char *const sql[] = {
	    "DELETE FROM profiles",	     "DELETE FROM notifications",   "DELETE FROM settings",
	    "UPDATE counters SET value = 0", "DELETE FROM sqlite_sequence",
	};
	euicc_apdu_front_reset(front); /* channels closed; calls euicc_reset */
	euicc_reset(card);
	EVP_PKEY_free(card->retry_otsk);
	card->retry_otsk = NULL;
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
		if (store_exec(card->db, sql[i]) != ESIM_OK)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	euicc *e = card;
	card_reset();

	esim_buf r = ESIM_BUF_INIT;
	size_t off = 0;
	while (off + 3 <= size) {
		uint8_t mode = data[off];
		size_t len = ((size_t)data[off + 1] << 8) | data[off + 2];
		off += 3;
		if (len > size - off)
			len = size - off;
		r.len = 0;
		if (mode & 1) {
			esim_err err = euicc_es10(e, data + off, len, &r);
			if (err == ESIM_OK && r.len > 0)
				check_der(&r);
			else if (err != ESIM_OK && err != ESIM_E_EUICC_BAD_COMMAND &&
				 err != ESIM_E_EUICC_UNKNOWN_COMMAND &&
				 err != ESIM_E_EUICC_CONDITIONS)
				abort(); /* nothing else may fail on an in-memory card */
		} else if (euicc_apdu_front_process(front, data + off, len, &r) != ESIM_OK) {
			abort();
		}
		off += len;
	}

	static const uint8_t get_profiles[] = {0xBF, 0x2D, 0x00};
	static const uint8_t list_notifs[] = {0xBF, 0x28, 0x00};
	r.len = 0;
	if (euicc_es10(e, get_profiles, sizeof get_profiles, &r) != ESIM_OK)
		abort();
	check_der(&r);
	r.len = 0;
	if (euicc_es10(e, list_notifs, sizeof list_notifs, &r) != ESIM_OK)
		abort();
	check_der(&r);
	esim_buf_free(&r);
	return 0;
}
