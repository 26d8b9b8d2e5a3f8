/*
 * Fuzz target for the LPA's reading of ES9+ and ES11 answers (SGP.22 5.6,
 * 5.8; src/lpa/es9p.c, download.c, discover.c): whatever answers at the
 * SM-DP+ or SM-DS address (after TLS) is not trusted. The input is the
 * answer body of one function, read the way the LPA reads it:
 * lpa_es9_answer (the JSON, its header and a "Failed" status with its
 * codes), then the function's message with the rsp_es9 codec
 * (lpa_es9_decode) and the LPA's checks and steps of the library
 * (rsp_es9_dl_*), with download.c's reporting, which this target compiles
 * in (it lives in the esim program, not a library):
 *
 *  0 initiateAuthentication: rsp_es9_dl_authenticate_server (serverSigned1
 *    names our transaction, challenge and address; AuthenticateServer
 *    built), signed1_failed;
 *  1 authenticateClient: profileMetadata decoded, rsp_es9_dl_accept_-
 *    authenticate (smdpSigned2), PrepareDownload built;
 *  2 getBoundProfilePackage: check_txid, rsp_bpp_split of the package;
 *  3 ES11 authenticateClient: eventEntries, lpa_es11_events;
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

/* The answer decoded by the codec as the LPA decodes it (lpa_es9_decode):
 * either a recorded failure and a cleared struct, or every span inside
 * the decoded message. */
static int decode(struct dl *d, json_t *doc, enum rsp_es9_fn fn, struct rsp_es9_response *r)
{
	memset(r, 0, sizeof *r);
	r->fn = fn;
	int rc = lpa_es9_decode(d->L, doc, r);
	if (rc != CLI_OK && (r->own_ != NULL || d->L->exit_code == CLI_OK))
		abort();
	return rc;
}

static void initiate(struct dl *d, json_t *doc)
{
	struct rsp_es9_response r;
	if (decode(d, doc, RSP_ES9_INITIATE_AUTHENTICATION, &r) != CLI_OK)
		return;
	for (size_t i = 0; i < RSP_CHALLENGE_LEN; i++)
		d->s.challenge[i] = (uint8_t)(0xC0 + i);
	char hex[2 * RSP_TXID_MAX + 1];
	rsp_txid_to_hex(&r.u.initiate.txid, hex);
	uint8_t *as = NULL;
	size_t as_len = 0;
	esim_err err = rsp_es9_dl_authenticate_server(&d->s, &r, "MID", &d->dev, &as, &as_len);
	if (err != ESIM_OK)
		(void)signed1_failed(d, err, hex);
	else if (!as || !rsp_txid_equal(&d->s.txid, &r.u.initiate.txid))
		abort();
	free(as);
	rsp_es9_response_clear(&r);
}

static void authenticate_client(struct dl *d, json_t *doc)
{
	struct rsp_es9_response r;
	if (decode(d, doc, RSP_ES9_AUTHENTICATE_CLIENT, &r) != CLI_OK)
		return;
	/* the metadata is decoded (and shown) whatever smdpSigned2 says */
	struct rsp_metadata m;
	const der_span meta = r.u.authenticate.profile_metadata;
	if (rsp_metadata_decode(meta.p, meta.len, &m) == ESIM_OK) {
		json_decref(metadata_json(&m));
		rsp_metadata_free(&m);
	}
	if (rsp_es9_dl_accept_authenticate(&d->s, &r) == ESIM_OK) {
		uint8_t *pd = NULL;
		size_t pd_len = 0;
		if (rsp_es9_dl_prepare_download(&d->s, d->s.cc_required ? "1234" : NULL, &pd,
						&pd_len) == ESIM_OK)
			free(pd);
	}
	rsp_es9_response_clear(&r);
}

static void bound_profile_package(struct dl *d, json_t *doc)
{
	struct rsp_es9_response r;
	if (decode(d, doc, RSP_ES9_GET_BOUND_PROFILE_PACKAGE, &r) != CLI_OK)
		return;
	if (check_txid(d, &r, &r.u.get_bpp.txid, "getBoundProfilePackage") == CLI_OK) {
		const der_span b = r.u.get_bpp.bound_profile_package;
		der_span *chunks = NULL;
		size_t n = 0;
		if (rsp_bpp_split(b.p, b.len, &chunks, &n) == ESIM_OK) {
			for (size_t i = 0; i < n; i++)
				if (chunks[i].p < b.p || chunks[i].p + chunks[i].len > b.p + b.len)
					abort(); /* a segment outside the package */
		}
		free(chunks);
	}
	rsp_es9_response_clear(&r);
}

static void events(struct dl *d, json_t *doc)
{
	struct rsp_es9_response r;
	if (decode(d, doc, RSP_ES11_AUTHENTICATE_CLIENT, &r) != CLI_OK)
		return;
	json_t *ev = NULL;
	(void)lpa_es11_events(d->L, &r, &ev);
	if (!json_is_array(ev) || json_array_size(ev) != r.u.es11.n_events)
		abort();
	json_object_set_new(d->L->result, "events", ev);
	rsp_es9_response_clear(&r);
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
	if (rsp_txid_set(&d.txid, tx, sizeof tx) != ESIM_OK ||
	    rsp_es9_dl_init(&d.s, d.smdp) != ESIM_OK)
		abort();
	d.s.txid = d.txid;
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
		events(&d, resp);
	} else {
		struct rsp_es9_response r;
		(void)decode(&d, resp,
			     which == 4 ? RSP_ES9_HANDLE_NOTIFICATION : RSP_ES9_CANCEL_SESSION, &r);
		rsp_es9_response_clear(&r);
	}
	json_decref(resp);
	rsp_es9_dl_clear(&d.s);
	json_decref(L.result);
	json_decref(L.error);
	return 0;
}
