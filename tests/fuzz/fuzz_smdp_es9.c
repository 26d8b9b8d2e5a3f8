/*
 * Fuzz target for the SM-DP+'s ES9+ JSON binding (digest 5): request
 * bodies straight into smdp_es9(), the code every LPA on the Internet can
 * reach. The SM-DP+ runs once per process on an in-memory store with an
 * identity (CI -> DPauth, DPpb) issued in-process at start-up and written
 * to a private temporary directory (smdp_open takes files).
 *
 * Input: [function:1][body...]; the first byte picks the ES9+ function
 * (modulo 7; 5 is an unknown name, 6 the ASN.1 binding with a DER body).
 * Every JSON answer must be 204 without a body (handleNotification), 404
 * (unknown function), or 200 with an answer the rsp_es9 codec decodes;
 * every ASN.1 answer 204 or 400 without a body, or 200 with a
 * RemoteProfileProvisioningResponse the codec decodes. The input also goes
 * through the codec's request decoders (the server's first reading of it):
 * what they accept must encode, and decode again to the same message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "esim/der.h"
#include "esim/pki.h"
#include "esim/rsp_es9.h"
#include "esim/smdp.h"
#include "fuzz_asan_options.h"

static smdp *dp; /* opened once, shared by every input */
static char dir[64];

static const char *const functions[6] = {
    "initiateAuthentication", "authenticateClient", "getBoundProfilePackage",
    "handleNotification",     "cancelSession",	    "noSuchFunction",
};

static void write_file(const char *name, const void *p, size_t len, char *path, size_t n)
{
	snprintf(path, n, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len)
		abort();
	fclose(f);
}

static void cleanup(void)
{
	smdp_close(dp);
	static const char *const names[] = {"ci.der", "auth.der", "auth.key", "pb.der", "pb.key"};
	char path[128];
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/fuzz_smdp_es9.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	time_t now = time(NULL);
	struct crypto_issue_params p = {
	    .kind = CRYPTO_ISSUE_CI,
	    .curve = CRYPTO_CURVE_P256,
	    .not_before = now - 3600,
	    .not_after = now + 86400 * 365,
	};
	struct crypto_issued ci, auth, pb;
	if (crypto_issue(&p, &ci) != ESIM_OK)
		abort();
	p.issuer_der = ci.der;
	p.issuer_der_len = ci.der_len;
	p.issuer_key = ci.key;
	p.kind = CRYPTO_ISSUE_DP_AUTH;
	if (crypto_issue(&p, &auth) != ESIM_OK)
		abort();
	p.kind = CRYPTO_ISSUE_DP_PB;
	if (crypto_issue(&p, &pb) != ESIM_OK)
		abort();
	static char paths[5][128];
	write_file("ci.der", ci.der, ci.der_len, paths[0], sizeof paths[0]);
	write_file("auth.der", auth.der, auth.der_len, paths[1], sizeof paths[1]);
	write_file("pb.der", pb.der, pb.der_len, paths[3], sizeof paths[3]);
	esim_buf k = ESIM_BUF_INIT;
	if (crypto_pki_key_pem(auth.key, &k) != ESIM_OK)
		abort();
	write_file("auth.key", k.data, k.len, paths[2], sizeof paths[2]);
	esim_buf_wipe_free(&k);
	if (crypto_pki_key_pem(pb.key, &k) != ESIM_OK)
		abort();
	write_file("pb.key", k.data, k.len, paths[4], sizeof paths[4]);
	esim_buf_wipe_free(&k);
	crypto_issued_clear(&ci);
	crypto_issued_clear(&auth);
	crypto_issued_clear(&pb);
	struct smdp_config cfg = {
	    .db_url = ":memory:",
	    .fqdn = "smdp.fuzz.example",
	    .ids = {{paths[1], paths[2], paths[3], paths[4]}},
	    .n_ids = 1,
	    .ci_paths = {paths[0]},
	    .n_ci = 1,
	    .max_db_connections = 1, /* one in-memory database */
	};
	if (smdp_open(&cfg, &dp) != ESIM_OK)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup();
	return 0;
}

/* A request the codec accepted encodes, and its encoding decodes to the
 * same JSON text. */
static void check_request(const struct rsp_es9_request *r)
{
	char *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;
	uint8_t *der = NULL;
	size_t der_len = 0;
	struct rsp_es9_request again;
	if (rsp_es9_request_to_json(r, &a, &al) != ESIM_OK ||
	    rsp_es9_request_to_asn1(r, &der, &der_len) != ESIM_OK ||
	    rsp_es9_request_from_asn1(der, der_len, &again, NULL) != ESIM_OK)
		abort();
	again.fn = r->fn;
	if (rsp_es9_request_to_json(&again, &b, &bl) != ESIM_OK || al != bl || memcmp(a, b, al))
		abort();
	rsp_es9_request_clear(&again);
	free(a);
	free(b);
	free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct rsp_es9_request rq = {0};
	struct rsp_es9_response rs;
	unsigned which = data[0] % 7;
	if (which == 6
		? rsp_es9_request_from_asn1(data + 1, size - 1, &rq, NULL) == ESIM_OK
		: which < 5 && rsp_es9_fn_from_name(functions[which], &rq.fn) &&
		      rsp_es9_request_from_json(rq.fn, data + 1, size - 1, &rq, NULL) == ESIM_OK)
		check_request(&rq);
	rsp_es9_request_clear(&rq);
	if (data[0] % 7 == 6) {
		int status = 0;
		uint8_t *der = NULL;
		size_t der_len = 0;
		der_element el;
		if (smdp_es9_asn1(dp, data + 1, size - 1, &status, &der, &der_len) != ESIM_OK)
			abort();
		if (status == 200) {
			if (!der || der_parse_single(der, der_len, &el) != ESIM_OK ||
			    el.tag != 0xA2 ||
			    rsp_es9_response_from_asn1(der, der_len, &rs, NULL) != ESIM_OK)
				abort();
			rsp_es9_response_clear(&rs);
		} else if ((status != 204 && status != 400) || der) {
			abort();
		}
		free(der);
		return 0;
	}
	const char *fn = functions[data[0] % 7];
	int status = 0;
	char *out = NULL;
	if (smdp_es9(dp, fn, data + 1, size - 1, &status, &out) != ESIM_OK)
		abort(); /* an in-memory store has no reason to fail */
	if (status == 404 || status == 204) {
		if (out || (status == 404) != (data[0] % 7 == 5))
			abort();
		return 0;
	}
	if (status != 200 || !out)
		abort();
	enum rsp_es9_fn fn_id;
	if (!rsp_es9_fn_from_name(fn, &fn_id) ||
	    rsp_es9_response_from_json(fn_id, (const uint8_t *)out, strlen(out), &rs, NULL) !=
		ESIM_OK)
		abort();
	rsp_es9_response_clear(&rs);
	free(out);
	return 0;
}
