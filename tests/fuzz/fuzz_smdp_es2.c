/*
 * Fuzz target for the SM-DP+'s ES2+ JSON binding (src/smdp/es2.c, SGP.22
 * 5.3): request bodies straight into smdp_es2(), as an operator's TLS
 * client (its pinned certificate) sends them. Operators are authenticated
 * but their bodies are still input to check. The SM-DP+ runs once per
 * process on an in-memory store with an identity issued in-process, one
 * operator, one profile type built on our own minimal package and 64
 * profiles; orders made by one input stay (as on a running server), so
 * later inputs also meet used and exhausted inventory.
 *
 * Input: [function:1][body...]; the first byte picks downloadOrder,
 * confirmOrder, cancelOrder, releaseProfile or an unknown name (modulo 5);
 * bit 3 sends the request without a client certificate. Every answer must
 * be 404 without a body (unknown function) or 200 with a JSON object whose
 * header carries a functionExecutionStatus.status.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "esim/pki.h"
#include "esim/rsp_saip.h"
#include "esim/smdp.h"
#include "fuzz_asan_options.h"

static smdp *dp; /* opened once, shared by every input */
static char dir[64];
static uint8_t op_sha[32];

static const char *const functions[5] = {
    "downloadOrder", "confirmOrder", "cancelOrder", "releaseProfile", "noSuchFunction",
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
	snprintf(dir, sizeof dir, "/tmp/fuzz_smdp_es2.XXXXXX");
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
	/* one operator (its client certificate pinned by hash), one profile
	 * type on our own minimal package, some profiles to order */
	memset(op_sha, 0xA5, sizeof op_sha);
	if (smdp_add_operator(dp, "fuzzop", op_sha, NULL) != ESIM_OK)
		abort();
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	if (rsp_saip_make_test_upp("8944476500000000001", &upp, &upp_len) != ESIM_OK)
		abort();
	struct smdp_profile_type t = {.name = "fuzztype",
				      .operator_name = "fuzzop",
				      .upp = upp,
				      .upp_len = upp_len,
				      .spn = "Fuzz",
				      .profile_name = "Fuzz",
				      .profile_class = 2};
	if (smdp_add_profile_type(dp, &t) != ESIM_OK)
		abort();
	free(upp);
	for (int i = 0; i < 64; i++) {
		char iccid[24];
		snprintf(iccid, sizeof iccid, "89444765000000%04d", i);
		if (smdp_import_profile(dp, "fuzztype", iccid, "001010000000001") != ESIM_OK)
			abort();
	}
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *fn = functions[data[0] % 5];
	int status = 0;
	char *out = NULL;
	if (smdp_es2(dp, fn, (data[0] & 8) ? NULL : op_sha, data + 1, size - 1, &status, &out) !=
	    ESIM_OK)
		abort(); /* an in-memory store has no reason to fail */
	if (status == 404) {
		if (out || data[0] % 5 != 4)
			abort();
		return 0;
	}
	if (status != 200 || !out)
		abort();
	json_t *j = json_loads(out, 0, NULL);
	json_t *st = json_object_get(
	    json_object_get(json_object_get(j, "header"), "functionExecutionStatus"), "status");
	if (!json_is_object(j) || !json_is_string(st))
		abort();
	json_decref(j);
	free(out);
	return 0;
}
