/*
 * What the SM-DP+ tests share: a private RSP PKI made by the real
 * `esim-pki init` (both curves), an SM-DP+ on a fresh SQLite (or
 * PostgreSQL) database with one operator, one profile type and a batch of
 * profiles, and virtual eUICCs (the euicc core library, in-process) behind
 * the test LPA of tests/common/lpa_driver. Header-only: each test_smdp_*.c
 * is its own program.
 */
#ifndef TEST_SMDP_FIXTURE_H
#define TEST_SMDP_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "testutil.h"
#include "lpa_driver.h"

#include <openssl/evp.h>

#include "esim/pki.h"
#include "esim/rsp_saip.h"
#include "esim/smdp.h"
#include "euicc/euicc.h"

#define SFX_EID	     "89049032123451234512345678901235"
#define SFX_FQDN     "smdp.test.example"
#define SFX_TYPE     "STD"
#define SFX_TEMPLATE "89000123456789012341"

static const uint8_t SFX_OP1_SHA[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
					1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t SFX_OP2_SHA[32] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
					2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};

struct sfx {
	char *dir;
	char pki[600];
	char db[700];
	char kek[700]; /* the SM-DP+'s KEK file (mode 0600) */
	char paths[16][700];
	smdp *d;
	struct smdp_config cfg;
	time_t offset; /* added to the SM-DP+'s clock */
	euicc *e[2];   /* [0] NIST identity, [1] brainpool identity */
	struct lpa_driver drv[2];
	unsigned calls;
};

static time_t sfx_clock(void *arg)
{
	return time(NULL) + ((struct sfx *)arg)->offset;
}

static esim_err sfx_es10(void *ctx, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	return euicc_es10(ctx, cmd, len, resp);
}

static esim_err sfx_es9(void *ctx, const char *fn, const char *json, int *status, char **out)
{
	return smdp_es9(ctx, fn, (const uint8_t *)json, strlen(json), status, out);
}

/* A key-encryption key file for Ki / OPc at rest: 64 random hex digits,
 * mode 0600. */
static inline void sfx_write_kek(const char *path)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static inline void sfx_pki(struct sfx *f)
{
	f->dir = test_mkdtemp();
	snprintf(f->pki, sizeof f->pki, "%s/pki", f->dir);
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "'%s/esim-pki' init '%s' --eid %s --curve both >/dev/null",
		 test_bin_dir(), f->pki, SFX_EID);
	assert_int_equal(system(cmd), 0);
	snprintf(f->kek, sizeof f->kek, "%s/kek", f->dir);
	sfx_write_kek(f->kek);
}

/* ICCID text with its Luhn check digit (ITU-T E.118) appended to body. */
static inline void sfx_luhn(const char *body, char *out, size_t n)
{
	snprintf(out, n, "%s%d", body, rsp_iccid_luhn_digit(body, strlen(body)));
}

/* ICCID number i of the batch: 89000123450000, i in 5 digits, the check
 * digit (89000123450000000011 for i = 1). */
static inline void sfx_iccid(size_t i, char out[RSP_ICCID_TEXT_MAX])
{
	char body[RSP_ICCID_TEXT_MAX - 1];
	snprintf(body, sizeof body, "89000123450000%05u", (unsigned)(i % 100000));
	sfx_luhn(body, out, RSP_ICCID_TEXT_MAX);
}

static inline const char *sfx_path(struct sfx *f, int i, const char *curve, const char *file)
{
	snprintf(f->paths[i], sizeof f->paths[i], "%s/%s/%s", f->pki, curve, file);
	return f->paths[i];
}

/* An eUICC with the identity of one curve, its state in memory. */
static inline euicc *sfx_euicc(struct sfx *f, const char *curve, const char *cert_path)
{
	char p[4][700];
	snprintf(p[0], 700, "%s/%s/euicc.der", f->pki, curve);
	snprintf(p[1], 700, "%s/%s/euicc.key.pem", f->pki, curve);
	snprintf(p[2], 700, "%s/%s/eum.der", f->pki, curve);
	snprintf(p[3], 700, "%s/%s/ci.der", f->pki, curve);
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = ":memory:";
	ec.identities[0].cert_path = cert_path ? cert_path : p[0];
	ec.identities[0].key_path = p[1];
	ec.identities[0].eum_path = p[2];
	ec.n_identities = 1;
	ec.ci_paths[0] = p[3];
	ec.n_ci_paths = 1;
	euicc *e = NULL;
	assert_esim(ESIM_OK, euicc_open(&ec, &e));
	return e;
}

/* An eUICC of its own EID (a certificate issued now under the PKI's EUM
 * of that curve), its state in memory. */
static inline euicc *sfx_euicc_eid_until(struct sfx *f, const char *curve, const char *eid,
					 time_t not_after)
{
	char p[4][700];
	snprintf(p[0], 700, "%s/%s/eum.der", f->pki, curve);
	snprintf(p[1], 700, "%s/%s/eum.key.pem", f->pki, curve);
	snprintf(p[2], 700, "%s/%s/ci.der", f->pki, curve);
	size_t eum_len;
	uint8_t *eum = test_read(p[0], &eum_len);
	EVP_PKEY *eum_key = NULL;
	assert_esim(ESIM_OK, crypto_key_load_private_file(p[1], &eum_key));
	crypto_curve c =
	    strcmp(curve, "nist") == 0 ? CRYPTO_CURVE_P256 : CRYPTO_CURVE_BRAINPOOLP256R1;
	struct crypto_issue_params ip = {
	    .kind = CRYPTO_ISSUE_EUICC,
	    .curve = c,
	    .eid = eid,
	    .issuer_der = eum,
	    .issuer_der_len = eum_len,
	    .issuer_key = eum_key,
	    .not_before = time(NULL) - 3600,
	    .not_after = not_after,
	};
	struct crypto_issued out;
	assert_esim(ESIM_OK, crypto_issue(&ip, &out));
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = ":memory:";
	ec.identities[0].cert.p = out.der;
	ec.identities[0].cert.len = out.der_len;
	ec.identities[0].key = out.key;
	ec.identities[0].eum.p = eum;
	ec.identities[0].eum.len = eum_len;
	ec.n_identities = 1;
	ec.ci_paths[0] = p[2];
	ec.n_ci_paths = 1;
	euicc *e = NULL;
	esim_err err = euicc_open(&ec, &e);
	crypto_issued_clear(&out);
	EVP_PKEY_free(eum_key);
	free(eum);
	return err == ESIM_OK ? e : NULL;
}

static inline euicc *sfx_euicc_eid(struct sfx *f, const char *curve, const char *eid)
{
	euicc *e = sfx_euicc_eid_until(f, curve, eid, CRYPTO_PKI_NOT_AFTER_NEVER);
	assert_non_null(e);
	return e;
}

/* Open the SM-DP+ on db_url (NULL: a fresh SQLite file) with cfg tweaks
 * already in f->cfg, add OP1 (and OP2) and the STD type, import n
 * profiles 8900012345678900001..n. */
static inline void sfx_open_smdp(struct sfx *f, const char *db_url, size_t n)
{
	static unsigned seq;
	if (!db_url) {
		snprintf(f->db, sizeof f->db, "sqlite:%s/smdp%u.db", f->dir, seq++);
		db_url = f->db;
	}
	f->cfg.db_url = db_url;
	f->cfg.fqdn = SFX_FQDN;
	f->cfg.ids[0].dpauth_cert = sfx_path(f, 0, "nist", "dpauth.der");
	f->cfg.ids[0].dpauth_key = sfx_path(f, 1, "nist", "dpauth.key.pem");
	f->cfg.ids[0].dppb_cert = sfx_path(f, 2, "nist", "dppb.der");
	f->cfg.ids[0].dppb_key = sfx_path(f, 3, "nist", "dppb.key.pem");
	f->cfg.ids[1].dpauth_cert = sfx_path(f, 4, "brp", "dpauth.der");
	f->cfg.ids[1].dpauth_key = sfx_path(f, 5, "brp", "dpauth.key.pem");
	f->cfg.ids[1].dppb_cert = sfx_path(f, 6, "brp", "dppb.der");
	f->cfg.ids[1].dppb_key = sfx_path(f, 7, "brp", "dppb.key.pem");
	f->cfg.n_ids = 2;
	f->cfg.ci_paths[0] = sfx_path(f, 8, "nist", "ci.der");
	f->cfg.ci_paths[1] = sfx_path(f, 9, "brp", "ci.der");
	f->cfg.n_ci = 2;
	f->cfg.clock = sfx_clock;
	f->cfg.clock_arg = f;
	if (!f->cfg.kek_file)
		f->cfg.kek_file = f->kek;
	assert_esim(ESIM_OK, smdp_open(&f->cfg, &f->d));
	assert_esim(ESIM_OK, smdp_add_operator(f->d, "OP1", SFX_OP1_SHA, "https://op1.invalid/cb"));
	assert_esim(ESIM_OK, smdp_add_operator(f->d, "OP2", SFX_OP2_SHA, NULL));
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	struct smdp_profile_type t = {
	    .name = SFX_TYPE,
	    .operator_name = "OP1",
	    .upp = upp,
	    .upp_len = upp_len,
	    .spn = "esimkit",
	    .profile_name = "Test profile",
	    .profile_class = 2,
	};
	assert_esim(ESIM_OK, smdp_add_profile_type(f->d, &t));
	t.name = "OTHER";
	t.operator_name = "OP2";
	assert_esim(ESIM_OK, smdp_add_profile_type(f->d, &t));
	free(upp);
	esim_buf csv = ESIM_BUF_INIT;
	const char *hdr = "iccid,imsi\n";
	esim_buf_append(&csv, hdr, strlen(hdr));
	for (size_t i = 1; i <= n; i++) {
		char line[128], iccid[RSP_ICCID_TEXT_MAX];
		sfx_iccid(i, iccid);
		/* no Ki / OPc: this template has no akaParameter to take them */
		int k = snprintf(line, sizeof line, "%s,00101000000%04zu\n", iccid, i);
		esim_buf_append(&csv, line, (size_t)k);
	}
	size_t count = 0;
	if (n > 0) {
		assert_esim(ESIM_OK, smdp_import_csv(f->d, SFX_TYPE, (const char *)csv.data,
						     csv.len, &count));
		assert_int_equal(count, n);
	}
	esim_buf_free(&csv);
}

static inline void sfx_open_euiccs(struct sfx *f)
{
	f->e[0] = sfx_euicc(f, "nist", NULL);
	f->e[1] = sfx_euicc(f, "brp", NULL);
	for (int i = 0; i < 2; i++) {
		f->drv[i].es10 = sfx_es10;
		f->drv[i].es10_ctx = f->e[i];
		f->drv[i].es9 = sfx_es9;
		f->drv[i].es9_ctx = f->d;
		f->drv[i].smdp_address = SFX_FQDN;
	}
}

static inline void sfx_close(struct sfx *f)
{
	for (int i = 0; i < 2; i++) {
		euicc_close(f->e[i]);
		f->e[i] = NULL;
	}
	smdp_close(f->d);
	f->d = NULL;
	memset(&f->cfg, 0, sizeof f->cfg);
	f->offset = 0;
}

/* One ES2+ call as operator op_sha; the parsed answer (caller decrefs).
 * body_fmt is the JSON after the header, e.g. "\"iccid\":\"...\"". */
static inline json_t *sfx_es2(struct sfx *f, const uint8_t *op_sha, const char *fri, const char *fn,
			      const char *fields)
{
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"header\":{\"functionRequesterIdentifier\":\"%s\","
		 "\"functionCallIdentifier\":\"c%u\"}%s%s}",
		 fri, f->calls++, fields && *fields ? "," : "", fields ? fields : "");
	int status = 0;
	char *out = NULL;
	assert_esim(ESIM_OK,
		    smdp_es2(f->d, fn, op_sha, (const uint8_t *)body, strlen(body), &status, &out));
	assert_int_equal(status, 200);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	free(out);
	return j;
}

static inline const char *sfx_status(const json_t *j, const char *what)
{
	json_t *fes = json_object_get(json_object_get(j, "header"), "functionExecutionStatus");
	if (strcmp(what, "status") == 0)
		return json_string_value(json_object_get(fes, "status"));
	return json_string_value(json_object_get(json_object_get(fes, "statusCodeData"), what));
}

static inline void sfx_assert_ok(const json_t *j)
{
	const char *st = sfx_status(j, "status");
	if (!st || strcmp(st, "Executed-Success") != 0) {
		char *t = json_dumps(j, 0);
		fprintf(stderr, "expected success, got %s\n", t);
		free(t);
		fail();
	}
}

static inline void sfx_assert_fail(const json_t *j, const char *subject, const char *reason)
{
	const char *s = sfx_status(j, "subjectCode"), *r = sfx_status(j, "reasonCode");
	if (!s || !r || strcmp(s, subject) != 0 || strcmp(r, reason) != 0) {
		char *t = json_dumps(j, 0);
		fprintf(stderr, "expected %s/%s, got %s\n", subject, reason, t);
		free(t);
		fail();
	}
	assert_string_equal(sfx_status(j, "status"), "Failed");
}

/* ES2+ as OP1, asserting success; returns the parsed answer. */
static inline json_t *sfx_es2_ok(struct sfx *f, const char *fn, const char *fields)
{
	json_t *j = sfx_es2(f, SFX_OP1_SHA, "OP1", fn, fields);
	sfx_assert_ok(j);
	return j;
}

/* DownloadOrder + ConfirmOrder for ICCID number i (eid, cc may be NULL;
 * mid NULL: generated, "" for the default SM-DP+ case). The matchingId
 * is written to mid_out (>= 64 bytes). */
static inline void sfx_order(struct sfx *f, size_t i, const char *eid, const char *mid,
			     const char *cc, bool release, char *mid_out)
{
	char iccid[RSP_ICCID_TEXT_MAX], fields[512];
	sfx_iccid(i, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\"%s%s%s", iccid, eid ? ",\"eid\":\"" : "",
		 eid ? eid : "", eid ? "\"" : "");
	json_decref(sfx_es2_ok(f, "downloadOrder", fields));
	int k = snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"releaseFlag\":%s", iccid,
			 release ? "true" : "false");
	if (mid)
		k += snprintf(fields + k, sizeof fields - (size_t)k, ",\"matchingId\":\"%s\"", mid);
	if (cc)
		k += snprintf(fields + k, sizeof fields - (size_t)k, ",\"confirmationCode\":\"%s\"",
			      cc);
	json_t *j = sfx_es2_ok(f, "confirmOrder", fields);
	if (mid_out)
		snprintf(mid_out, 64, "%s", json_string_value(json_object_get(j, "matchingId")));
	json_decref(j);
}

static inline enum smdp_state sfx_state(struct sfx *f, size_t i)
{
	char iccid[RSP_ICCID_TEXT_MAX];
	sfx_iccid(i, iccid);
	enum smdp_state st;
	assert_esim(ESIM_OK, smdp_profile_state(f->d, iccid, &st));
	return st;
}

#define sfx_assert_lpa_fail(sess, subj, rsn)                                                       \
	do {                                                                                       \
		if (!(sess)->failed || strcmp((sess)->subject, (subj)) != 0 ||                     \
		    strcmp((sess)->reason, (rsn)) != 0) {                                          \
			fprintf(stderr, "expected %s/%s, got failed=%d %s/%s\n", (subj), (rsn),    \
				(sess)->failed, (sess)->subject, (sess)->reason);                  \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

#endif
