/*
 * Fuzz target for the LPA's reading of ES9+ and ES11 answers (SGP.22 5.6,
 * 5.8; src/lpa/es9p.c, download.c, discover.c): whatever answers at the
 * SM-DP+ or SM-DS address (after TLS) is not trusted. The input is the
 * answer body of one function, read the way the LPA reads it:
 * lpa_es9_answer (the JSON, its header and a "Failed" status with its
 * codes), then the function's own fields with download.c's code, which
 * this target compiles in (it lives in the esim program, not a library):
 *
 *  0 initiateAuthentication: transactionId, serverSigned1 and the other
 *    base64 fields, check_server_signed1 (transaction, challenge, address);
 *  1 authenticateClient: check_txid, profileMetadata / smdpSigned2 /
 *    smdpSignature2 / smdpCertificate, smdp_signed2, rsp_metadata_decode;
 *  2 getBoundProfilePackage: check_txid, boundProfilePackage, rsp_bpp_split;
 *  3 ES11 authenticateClient: lpa_es11_events (the SM-DS event list);
 *  4 handleNotification, 5 cancelSession: the answer alone.
 *
 * Input: [function:1][body]. The session's transaction is 16 bytes
 * 0x01..0x10 and the eUICC challenge 16 bytes 0xC0..0xCF, at
 * smdp.example.com. Checked: no crash, leak or sanitizer report; an answer
 * refused always leaves a recorded error and no document; the LPA's fast
 * parse (lpa_es9_parse) agrees with jansson alone on every input. The LPA's error
 * lines go to stderr: run with -close_fd_mask=2 for speed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lpa/download.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fns[6] = {"initiateAuthentication", "authenticateClient",
				   "getBoundProfilePackage", "authenticateClient",
				   "handleNotification",     "cancelSession"};

static void initiate(struct dl *d, json_t *resp)
{
	uint8_t challenge[RSP_CHALLENGE_LEN];
	for (size_t i = 0; i < sizeof challenge; i++)
		challenge[i] = (uint8_t)(0xC0 + i);
	struct lpa *L = d->L;
	int rc = CLI_OK;
	uint8_t *signed1 = NULL, *sig1 = NULL, *pkid = NULL, *cert = NULL;
	size_t signed1_len = 0, sig1_len = 0, pkid_len = 0, cert_len = 0;
	const char *t = json_string_value(json_object_get(resp, "transactionId"));
	if (t == NULL || rsp_txid_from_hex(t, &d->txid) != ESIM_OK)
		rc = lpa_fail(L, CLI_EXIT_SERVER, "no valid transactionId");
	else
		rsp_txid_to_hex(&d->txid, d->txid_hex);
	const char *fn = "initiateAuthentication";
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "serverSigned1", &signed1, &signed1_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "serverSignature1", &sig1, &sig1_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "euiccCiPKIdToBeUsed", &pkid, &pkid_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "serverCertificate", &cert, &cert_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		(void)check_server_signed1(d, signed1, signed1_len, challenge);
	free(signed1);
	free(sig1);
	free(pkid);
	free(cert);
}

static void authenticate_client(struct dl *d, json_t *resp)
{
	const char *fn = "authenticateClient";
	uint8_t *meta = NULL, *signed2 = NULL, *sig2 = NULL, *cert = NULL;
	size_t meta_len = 0, signed2_len = 0, sig2_len = 0, cert_len = 0;
	int rc = check_txid(d, resp, fn);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "profileMetadata", &meta, &meta_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "smdpSigned2", &signed2, &signed2_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "smdpSignature2", &sig2, &sig2_len, DL_MAX_FIELD);
	if (rc == CLI_OK)
		rc = get_b64(d, resp, fn, "smdpCertificate", &cert, &cert_len, DL_MAX_FIELD);
	bool cc_required = false;
	if (rc == CLI_OK)
		rc = smdp_signed2(d, signed2, signed2_len, &cc_required);
	/* the metadata is decoded (and shown) whatever smdpSigned2 said */
	if (meta) {
		struct rsp_metadata m;
		if (rsp_metadata_decode(meta, meta_len, &m) == ESIM_OK) {
			json_decref(metadata_json(&m));
			rsp_metadata_free(&m);
		}
	}
	free(meta);
	free(signed2);
	free(sig2);
	free(cert);
}

static void bound_profile_package(struct dl *d, json_t *resp)
{
	uint8_t *bpp = NULL;
	size_t bpp_len = 0;
	int rc = check_txid(d, resp, "getBoundProfilePackage");
	if (rc == CLI_OK)
		rc = get_b64(d, resp, "getBoundProfilePackage", "boundProfilePackage", &bpp,
			     &bpp_len, LPA_MAX_BPP);
	if (rc == CLI_OK) {
		der_span *chunks = NULL;
		size_t n = 0;
		if (rsp_bpp_split(bpp, bpp_len, &chunks, &n) == ESIM_OK) {
			for (size_t i = 0; i < n; i++)
				if (chunks[i].p < bpp ||
				    chunks[i].p + chunks[i].len > bpp + bpp_len)
					abort(); /* a segment outside the package */
		}
		free(chunks);
	}
	free(bpp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned which = data[0] % 6;
	struct lpa L = {.command = "fuzz", .result = json_object()};
	L.o.json = true;
	struct dl d = {.L = &L, .have_smdp = true, .server_session = true};
	snprintf(d.smdp, sizeof d.smdp, "smdp.example.com");
	uint8_t tx[16];
	for (size_t i = 0; i < sizeof tx; i++)
		tx[i] = (uint8_t)(i + 1);
	if (rsp_txid_set(&d.txid, tx, sizeof tx) != ESIM_OK)
		abort();
	rsp_txid_to_hex(&d.txid, d.txid_hex);

	/* the fast parse gives what jansson alone gives: both refuse, or both
	 * give equal documents */
	json_t *fast = NULL, *plain = NULL;
	struct net_json_error je;
	esim_err ef = lpa_es9_parse(data + 1, size - 1, &fast, &je);
	esim_err ep =
	    net_json_parse(data + 1, size - 1, LPA_ES9_MAX_BODY, LPA_ES9_MAX_DEPTH, &plain, &je);
	if ((ef == ESIM_OK) != (ep == ESIM_OK) || (ef == ESIM_OK && !json_equal(fast, plain)))
		abort();
	json_decref(fast);
	json_decref(plain);

	json_t *resp = NULL;
	struct lpa_es9_status st;
	memset(&st, 0, sizeof st);
	int rc = lpa_es9_answer(&L, d.smdp, fns[which], data + 1, size - 1, &resp, &st);
	if (rc != CLI_OK) {
		if (resp || L.exit_code == CLI_OK || !L.error)
			abort(); /* refused: recorded, nothing handed on */
	} else if (!json_is_object(resp)) {
		abort();
	} else if (which == 0) {
		initiate(&d, resp);
	} else if (which == 1) {
		authenticate_client(&d, resp);
	} else if (which == 2) {
		bound_profile_package(&d, resp);
	} else if (which == 3) {
		json_t *ev = NULL;
		rc = lpa_es11_events(&L, resp, &ev);
		if (!json_is_array(ev))
			abort();
		json_object_set_new(L.result, "events", ev);
	}
	json_decref(resp);
	json_decref(L.result);
	json_decref(L.error);
	return 0;
}
