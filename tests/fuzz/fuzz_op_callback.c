/*
 * Fuzz target for the operator's ES2+ callback handler (src/operator/
 * callback.c, SGP.22 5.3.5 HandleDownloadProgressInfo): the bodies the
 * SM-DP+ posts on the mutual-TLS listener. The caller is authenticated (the
 * pinned certificate's SHA-256 is passed as the listener would), but its
 * bodies, the forwarded ProfileInstallationResult, CERT.EUICC / CERT.EUM
 * and the eUICC-signed delete notification are still input to check.
 *
 * One operator handle for the process on an in-memory store, trusting the
 * CI in tests/fuzz/op_callback/ (a PKI made with esim-pki for this target;
 * its eUICC signed the seeds). Jan's line 1 is ordered with ICCID
 * 8932000000000000105, Sofie's line 2 (8932000000000000017) is active with
 * a termination case awaiting deletion; both, the call identifiers and the
 * seen notifications are put back before every input, so each input meets
 * the same state. Every RESET_EVERY inputs the handle is opened afresh (the
 * audit chain grows with every call).
 *
 * Input: [flags:1][JSON body] and optionally 0x00 [resultData DER]. With a
 * DER part the body's JSON object gets "resultData" = base64(DER) (the
 * fuzzer mutates the ASN.1, not its base64); flags bit 4 adds the PKI's
 * euiccCertificate and eumCertificate. Bit 0: no client certificate, bit
 * 1: another certificate's hash, bit 2: a GET instead of the POST.
 * Checked: an answer in {204, 400, 403, 404, 409, 422} (or a 404 / 403 for
 * the wrong method / caller), and a JSON error body on every refusal.
 *
 * Seeds: FUZZ_OP_CALLBACK_SEEDS=dir FUZZ_OP_CALLBACK_EUICC_KEY=euicc.key.pem
 * ./fuzz_op_callback -runs=0 writes them, signed with the PKI's eUICC key
 * (not kept in the tree: a new PKI means new certificates here and new
 * seeds, see tests/fuzz/op_callback/README).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "esim/crypto.h"
#include "esim/operator.h"
#include "esim/rsp.h"
#include "esim/store.h"
#include "esim/util.h"
#include "operator/op_int.h"
#include "fuzz_asan_options.h"

#ifndef ESIM_FUZZ_DIR
#error "ESIM_FUZZ_DIR: the tests/fuzz directory (CMakeLists.txt)"
#endif
#define PKI	    ESIM_FUZZ_DIR "/op_callback/"
#define SMDPID	    "smdp.fuzz.example"
#define CBPATH	    "/gsma/rsp2/es2plus/handleDownloadProgressInfo"
#define ICCID_NEW   "8932000000000000105"
#define ICCID_OLD   "8932000000000000017"
#define RESET_EVERY 50000

static op *O;
static op_callback *CB;
static uint8_t *euicc_der, *eum_der;
static size_t euicc_len, eum_len;
static unsigned long inputs;
static bool verbose; /* FUZZ_OP_CALLBACK_VERBOSE: print each answer */

static time_t still(void *arg)
{
	(void)arg;
	return 1790000000;
}

static const char RESET_SQL[] =
    "DELETE FROM op_es2_calls; DELETE FROM op_es2_notifications;"
    "UPDATE op_lines SET iccid = '" ICCID_NEW "', matching_id = 'MID-1', eid = NULL,"
    " state = 'ordered', downloaded = 0 WHERE id = 1;"
    "UPDATE op_lines SET eid = NULL, state = 'active', downloaded = 1 WHERE id = 2;"
    "UPDATE op_cases SET state = 'awaiting_deletion', proof = NULL, proof_eid = NULL,"
    " closed = NULL WHERE id = 1;";

static void open_op(void)
{
	struct op_config cfg = {
	    .db = ":memory:", .ci_file = PKI "ci.pem", .fast_hash = true, .now = still};
	struct op_callback_config cc = {.smdp_id = SMDPID,
					.smdp_client_cert_file = PKI "smdpcb.pem"};
	if (op_open(&cfg, &O) != ESIM_OK || op_seed_demo(O) != ESIM_OK ||
	    op_callback_new(O, &cc, &CB) != ESIM_OK)
		abort();
	if (store_exec(O->s,
		       "INSERT INTO op_cases (customer_id, line_id, state, reason, doc_type,"
		       " doc_number, doc_sha256, created, updated) VALUES (2, 2,"
		       " 'awaiting_deletion', 'moving', 'id_card', 'X1', '', 1, 1)") != ESIM_OK)
		abort();
}

static void done(void)
{
	op_callback_free(CB);
	op_close(O);
	free(euicc_der);
	free(eum_der);
}

/* ---- seeds ----------------------------------------------------------------------- */

static void put(const char *dir, const char *name, uint8_t flags, const char *json,
		const uint8_t *der, size_t dl)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (!f)
		abort();
	fputc(flags, f);
	fputs(json, f);
	if (der) {
		fputc(0, f);
		fwrite(der, 1, dl, f);
	}
	fclose(f);
}

static void write_seeds(const char *dir, const char *keyfile)
{
	EVP_PKEY *k;
	if (crypto_key_load_private_file(keyfile, &k) != ESIM_OK)
		abort();
	struct rsp_pir pir;
	memset(&pir, 0, sizeof pir);
	pir.txid.len = 16;
	memset(pir.txid.b, 0x5a, 16);
	pir.meta.seq = 7;
	pir.meta.event = RSP_EVENT_INSTALL;
	pir.meta.address = (char *)SMDPID;
	pir.meta.has_iccid = true;
	pir.success = true;
	pir.aid_len = 16;
	memset(pir.aid, 0xa0, 16);
	uint8_t *p;
	size_t pl;
	if (rsp_iccid_to_bcd(ICCID_NEW, pir.meta.iccid) != ESIM_OK ||
	    rsp_pir_build(&pir, k, &p, &pl) != ESIM_OK)
		abort();
#define HDR                                                                                        \
	"{\"header\":{\"functionRequesterIdentifier\":\"" SMDPID "\",\"functionCallIdentifier\":"
#define EIDF "\"eid\":\"89049032123451234512345678901235\","
	put(dir, "pir_installed", 0x10,
	    HDR "\"c1\"},\"iccid\":\"" ICCID_NEW "\"," EIDF "\"profileType\":\"STD\","
		"\"timestamp\":\"2026-01-01T00:00:00Z\",\"notificationPointId\":4,"
		"\"notificationPointStatus\":{\"status\":\"Executed-Success\"}}",
	    p, pl);
	put(dir, "pir_no_chain", 0x00,
	    HDR "\"c2\"},\"iccid\":\"" ICCID_NEW "\",\"notificationPointId\":4,"
		"\"notificationPointStatus\":{\"status\":\"Executed-Success\"}}",
	    p, pl);
	free(p);
	struct rsp_notif_metadata m = {
	    .seq = 9, .event = RSP_EVENT_DELETE, .address = (char *)SMDPID, .has_iccid = true};
	if (rsp_iccid_to_bcd(ICCID_OLD, m.iccid) != ESIM_OK ||
	    rsp_other_notif_build(&m, k, euicc_der, euicc_len, eum_der, eum_len, &p, &pl) !=
		ESIM_OK)
		abort();
	put(dir, "delete_notification", 0x00,
	    HDR "\"c3\"},\"iccid\":\"" ICCID_OLD "\"," EIDF "\"notificationPointId\":5,"
		"\"notificationPointStatus\":{\"status\":\"Executed-Success\"}}",
	    p, pl);
	free(p);
	EVP_PKEY_free(k);
	put(dir, "progress_3", 0x00,
	    HDR "\"c4\"},\"iccid\":\"" ICCID_NEW "\",\"notificationPointId\":3,"
		"\"notificationPointStatus\":{\"status\":\"Executed-Success\"}}",
	    NULL, 0);
	put(dir, "progress_failed", 0x00,
	    HDR "\"c5\"},\"iccid\":\"" ICCID_NEW "\",\"notificationPointId\":2,"
		"\"notificationPointStatus\":{\"status\":\"Failed\",\"statusCodeData\":"
		"{\"subjectCode\":\"8.1\",\"reasonCode\":\"3.8\"}}}",
	    NULL, 0);
	put(dir, "other_caller", 0x00,
	    "{\"header\":{\"functionRequesterIdentifier\":\"evil\",\"functionCallIdentifier\":"
	    "\"c6\"},\"iccid\":\"" ICCID_NEW "\"}",
	    NULL, 0);
	put(dir, "no_cert", 0x01, "{}", NULL, 0);
	put(dir, "bad_eid", 0x00,
	    HDR "\"c7\"},\"iccid\":\"" ICCID_NEW "\",\"eid\":\"1234\",\"notificationPointId\":1,"
		"\"notificationPointStatus\":{\"status\":\"Executed-Success\"}}",
	    NULL, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (esim_read_file(PKI "euicc.der", 8192, &euicc_der, &euicc_len) != ESIM_OK ||
	    esim_read_file(PKI "eum.der", 8192, &eum_der, &eum_len) != ESIM_OK)
		abort();
	open_op();
	atexit(done);
	verbose = getenv("FUZZ_OP_CALLBACK_VERBOSE") != NULL;
	const char *sd = getenv("FUZZ_OP_CALLBACK_SEEDS");
	if (sd)
		write_seeds(sd, getenv("FUZZ_OP_CALLBACK_EUICC_KEY"));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (++inputs % RESET_EVERY == 0) {
		op_callback_free(CB);
		op_close(O);
		open_op();
	}
	if (store_exec(O->s, RESET_SQL) != ESIM_OK)
		abort();
	uint8_t flags = data[0];
	const uint8_t *body = data + 1, *z = memchr(body, 0, size - 1);
	size_t body_len = z ? (size_t)(z - body) : size - 1;
	char *built = NULL;
	json_t *j = z || (flags & 0x10) ? json_loadb((const char *)body, body_len, 0, NULL) : NULL;
	if (json_is_object(j)) {
		if (z)
			net_json_set_base64(j, "resultData", z + 1, size - 1 - body_len - 1);
		if (flags & 0x10) {
			net_json_set_base64(j, "euiccCertificate", euicc_der, euicc_len);
			net_json_set_base64(j, "eumCertificate", eum_der, eum_len);
		}
		built = json_dumps(j, JSON_COMPACT);
		if (built) {
			body = (const uint8_t *)built;
			body_len = strlen(built);
		}
	}
	json_decref(j);
	net_request req = {.method = (flags & 4) ? "GET" : "POST",
			   .path = CBPATH,
			   .body = body_len ? body : NULL,
			   .body_len = body_len,
			   .peer_addr = "192.0.2.20",
			   .tls = true,
			   .has_client_cert = !(flags & 1)};
	memcpy(req.client_cert_sha256, op_callback_pin(CB), 32);
	if (flags & 2)
		req.client_cert_sha256[7] ^= 1;
	net_response r;
	net_response_init(&r);
	esim_err err = op_callback_http(&req, &r, CB);
	if (err != ESIM_OK && err != ESIM_E_NOMEM)
		abort(); /* an in-memory store has no reason to fail */
	if (verbose)
		fprintf(stderr, "callback: %d %.*s\n", r.status, (int)r.body.len,
			(const char *)r.body.data);
	if (err == ESIM_OK) {
		int s = r.status;
		if (s != 204 && s != 400 && s != 403 && s != 404 && s != 409 && s != 422)
			abort();
		if (s != 204) {
			json_t *e = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
			if (!json_is_string(json_object_get(e, "error")))
				abort();
			json_decref(e);
		}
	}
	net_response_clear(&r);
	free(built);
	return 0;
}
