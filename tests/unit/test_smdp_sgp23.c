/*
 * SM-DP+ behaviours that SGP.23 test sequences check and that the server
 * got wrong before (issue 14), each with the subject and reason code and
 * the HTTP status of the answer (200 with a Failed header, never 500):
 *
 * - authenticateClient with an euiccSigned1 made for another session:
 *   8.10.1 / 3.9 (unknown transaction), not 8.1 / 6.1;
 * - the default SM-DP+ case (no matchingId) with no order for the EID:
 *   8.1.1 / 3.8 (EID refused), not 8.2.6 / 3.8;
 * - getBoundProfilePackage with a wrong confirmation code: counted, the
 *   session stays, the right code on the same transactionId downloads;
 *   the limit still blocks the order;
 * - ES2+ CancelOrder without the EID of an order linked to one: 8.1.1 /
 *   3.10, the order untouched;
 * - several default SM-DP+ orders (no matchingId) for one EID and for
 *   several: stored with a NULL matchingId (no collision in the unique
 *   index, no HTTP 500), downloaded one after the other; migration 9
 *   turns the '' of older databases into NULL. On SQLite, and on a real
 *   PostgreSQL (pg_helper) for the default orders and the migration:
 *   skipped (77) without PostgreSQL, a failure under CI=true.
 *
 * The session, confirmation-code and limit cases run again on PostgreSQL
 * (the "_pg" entries): there authenticateClient checks the eUICC inside its
 * transaction and getBoundProfilePackage loads, binds and writes in one,
 * so every refusal must leave the same state as on SQLite.
 */
#include "test_smdp_fixture.h"

#include "esim/der.h"
#include "esim/rsp_auth.h"
#include "esim/store.h"
#include "pg_helper.h"
#include "smdp/smdp_int.h"

static struct sfx F;

static int group_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	sfx_pki(&F);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(F.dir);
	free(F.dir);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 8);
	sfx_open_euiccs(&F);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sfx_close(&F);
	return 0;
}

/* One PostgreSQL for the group's "_pg" cases (a fresh database each),
 * started by the first of them; pg_missing says why there is none. */
static struct pg_env PG;
static bool pg_started;
static char pg_missing[300];

static int setup_pg(void **state)
{
	(void)state;
	if (!pg_started && pg_missing[0] == '\0') {
		memset(&PG, 0, sizeof PG);
		int rc = pg_start(&PG);
		if (rc == TEST_SKIP_CODE) {
			snprintf(pg_missing, sizeof pg_missing, "%s", PG.why);
			pg_stop(&PG);
		} else {
			assert_int_equal(rc, 0);
			pg_started = true;
		}
	}
	if (!pg_started)
		return 0; /* the case skips itself */
	char url[512];
	assert_int_equal(pg_create_db(&PG, url, sizeof url), 0);
	sfx_open_smdp(&F, url, 8);
	sfx_open_euiccs(&F);
	return 0;
}

static int teardown_pg(void **state)
{
	(void)state;
	if (pg_started)
		sfx_close(&F);
	return 0;
}

/* A "_pg" case runs its SQLite twin on the PostgreSQL of setup_pg. */
#define PG_TWIN(name)                                                                              \
	static void name##_pg(void **state)                                                        \
	{                                                                                          \
		if (!pg_started)                                                                   \
			skip();                                                                    \
		name(state);                                                                       \
	}

/* The LPA's last ES9+ answer was a refusal with these codes, over HTTP 200. */
#define assert_refused(s, subj, rsn)                                                               \
	do {                                                                                       \
		sfx_assert_lpa_fail((s), (subj), (rsn));                                           \
		assert_int_equal((s)->http_status, 200);                                           \
	} while (0)

/* One ES9+ call in-process; the parsed answer (caller decrefs), status
 * asserted to be 200. */
static json_t *es9_call(const char *fn, const char *body)
{
	int status = 0;
	char *out = NULL;
	assert_esim(ESIM_OK, smdp_es9(F.d, fn, (const uint8_t *)body, strlen(body), &status, &out));
	assert_int_equal(status, 200);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	free(out);
	return j;
}

/* ---- 1: authenticateClient, euiccSigned1 of another session ---------------- */

static void test_auth_other_session_txid(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "TX-1", NULL, true, mid);
	/* session B, then session A on the same eUICC (which now holds A) */
	struct lpa_session a, b;
	lpa_session_init(&b, &F.drv[0]);
	lpa_session_init(&a, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&b));
	assert_esim(ESIM_OK, lpa_dl_initiate(&a));
	assert_string_not_equal(a.txid_hex, b.txid_hex);
	/* A's AuthenticateServerResponse (validly signed, euiccSigned1 with
	 * A's transactionId) sent as the answer of session B */
	snprintf(a.txid_hex, sizeof a.txid_hex, "%s", b.txid_hex);
	assert_esim(ESIM_OK, lpa_dl_authenticate(&a, mid));
	assert_refused(&a, "8.10.1", "3.9");
	lpa_session_clear(&a);
	lpa_session_clear(&b);
	/* the order was not touched: a proper session downloads it */
	lpa_session_init(&a, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&a, mid, NULL));
	lpa_session_clear(&a);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
}

/* ---- 2: default SM-DP+ without an order for the EID ------------------------ */

static void test_default_smdp_no_order(void **state)
{
	(void)state;
	/* an order for another EID and an activation-code order exist */
	sfx_order(&F, 1, "89049032123451234512345678901332", "", NULL, true, NULL);
	sfx_order(&F, 2, NULL, "AC-2", NULL, true, NULL);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, NULL));
	assert_refused(&s, "8.1.1", "3.8");
	lpa_session_clear(&s);
	/* an unknown matchingId stays 8.2.6 / 3.8 */
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, "NO-SUCH-ID"));
	assert_refused(&s, "8.2.6", "3.8");
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
	assert_int_equal(sfx_state(&F, 2), SMDP_RELEASED);
}

/* ---- 3: confirmation code, retried on the same session --------------------- */

/*
 * A PrepareDownloadResponse as the eUICC of F.e[0] makes it (signed with
 * its key from the PKI), with the hashCc of code and a fresh otPK: the
 * LPA's retry after asking the user again. Our virtual eUICC runs one
 * PrepareDownload per session, so the wrong tries are made here and the
 * right one by the eUICC itself, whose session is then still untouched.
 */
static void prepare_response_otpk(const struct lpa_session *s, const char *code, bool off_curve,
				  uint8_t **out, size_t *out_len)
{
	char path[700];
	snprintf(path, sizeof path, "%s/nist/euicc.key.pem", F.pki);
	EVP_PKEY *sk = NULL, *ot = NULL;
	assert_esim(ESIM_OK, crypto_key_load_private_file(path, &sk));
	assert_esim(ESIM_OK, crypto_key_generate(CRYPTO_CURVE_P256, &ot));
	uint8_t otpk[CRYPTO_EC_POINT_LEN], hash[32];
	assert_esim(ESIM_OK, crypto_key_public_point(ot, otpk));
	if (off_curve) /* the last byte of y changed: no point of P-256 */
		otpk[CRYPTO_EC_POINT_LEN - 1] ^= 0x01;
	assert_esim(ESIM_OK, rsp_hash_cc(code, strlen(code), &s->txid, hash));
	der_builder sb;
	der_builder_init(&sb);
	der_builder_open(&sb, 0x30);
	der_add_octet_string(&sb, 0x80, s->txid.b, s->txid.len);
	der_add_octet_string(&sb, 0x5F49, otpk, sizeof otpk);
	der_add_octet_string(&sb, 0x04, hash, sizeof hash);
	der_builder_close(&sb);
	uint8_t *signed2 = NULL;
	size_t signed2_len = 0;
	assert_esim(ESIM_OK, der_builder_finish(&sb, &signed2, &signed2_len));
	/* euiccSignature2 over euiccSigned2 and the smdpSignature2 TLV */
	struct crypto_span spans[2] = {{signed2, signed2_len}, {s->sig2, s->sig2_len}};
	uint8_t sig[RSP_SIG_LEN];
	assert_esim(ESIM_OK, crypto_ecdsa_sign_spans(sk, spans, 2, sig));
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF21);
	der_builder_open(&b, 0xA0);
	der_add_raw(&b, signed2, signed2_len);
	der_add_octet_string(&b, 0x5F37, sig, sizeof sig);
	der_builder_close(&b);
	der_builder_close(&b);
	assert_esim(ESIM_OK, der_builder_finish(&b, out, out_len));
	free(signed2);
	EVP_PKEY_free(ot);
	EVP_PKEY_free(sk);
}

/* getBoundProfilePackage on s's session with a response for code (its
 * otPK off the curve when asked). */
static json_t *bpp_with(const struct lpa_session *s, const char *code, bool off_curve)
{
	uint8_t *pdr = NULL;
	size_t pdr_len = 0;
	prepare_response_otpk(s, code, off_curve, &pdr, &pdr_len);
	json_t *o = json_object();
	json_object_set_new(o, "transactionId", json_string(s->txid_hex));
	net_json_set_base64(o, "prepareDownloadResponse", pdr, pdr_len);
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(pdr);
	json_t *j = es9_call("getBoundProfilePackage", body);
	free(body);
	return j;
}

static json_t *bpp_with_code(const struct lpa_session *s, const char *code)
{
	return bpp_with(s, code, false);
}

static void test_cc_retry_same_session(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 1, NULL, "CC-1", "1234", true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_false(s.failed);
	assert_true(s.cc_required);
	/* two wrong codes: refused, the session stays */
	for (int i = 0; i < 2; i++) {
		json_t *j = bpp_with_code(&s, i ? "0000" : "9999");
		sfx_assert_fail(j, "8.2.7", "3.8");
		json_decref(j);
	}
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
	/* the right code on the same transactionId: the eUICC's own
	 * PrepareDownload, the package, the installation */
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, "1234"));
	assert_false(s.failed);
	assert_int_equal(s.http_status, 200);
	assert_esim(ESIM_OK, lpa_dl_load(&s));
	assert_true(s.pir_success);
	assert_esim(ESIM_OK, lpa_dl_notify(&s));
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
}

static void test_cc_limit_same_session(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 2, NULL, "CC-2", "5555", true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	/* three wrong codes (the default limit) on one session: the third
	 * blocks the order and ends the session */
	for (int i = 0; i < 3; i++) {
		json_t *j = bpp_with_code(&s, "0000");
		sfx_assert_fail(j, "8.2.7", i < 2 ? "3.8" : "6.4");
		json_decref(j);
	}
	assert_int_equal(sfx_state(&F, 2), SMDP_ERROR);
	json_t *j = bpp_with_code(&s, "5555");
	sfx_assert_fail(j, "8.10.1", "3.9");
	json_decref(j);
	lpa_session_clear(&s);
}

/* A PrepareDownloadResponse validly signed by the eUICC whose one-time key
 * is no point of the curve: "element invalid", the session ended (on
 * PostgreSQL in the transaction that bound nothing), the order untouched
 * and downloadable by a new session. */
static void test_bpp_otpk_off_curve(void **state)
{
	(void)state;
	char mid[64];
	sfx_order(&F, 3, NULL, "PT-3", NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_false(s.failed);
	json_t *j = bpp_with(&s, "", true);
	sfx_assert_fail(j, "1.3.1", "2.1");
	json_decref(j);
	/* the session is gone: a good response on it is an unknown one */
	j = bpp_with(&s, "", false);
	sfx_assert_fail(j, "8.10.1", "3.9");
	json_decref(j);
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 3), SMDP_RELEASED);
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 3), SMDP_INSTALLED);
}

/* ---- 5: CancelOrder of an order linked to an EID --------------------------- */

static void test_cancel_order_needs_eid(void **state)
{
	(void)state;
	char iccid[RSP_ICCID_TEXT_MAX], fields[320], mid[64];
	sfx_order(&F, 1, SFX_EID, NULL, NULL, true, mid);
	sfx_iccid(1, iccid);
	/* without the EID: 8.1.1 / 3.10, even with the right matchingId */
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"matchingId\":\"%s\",\"finalProfileStatusIndicator\":"
		 "\"Available\"",
		 iccid, mid);
	json_t *j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "cancelOrder", fields);
	sfx_assert_fail(j, "8.1.1", "3.10");
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
	/* another EID: the same */
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"eid\":\"89049032123451234512345678901332\","
		 "\"finalProfileStatusIndicator\":\"Available\"",
		 iccid);
	sfx_assert_fail(j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "cancelOrder", fields), "8.1.1",
			"3.10");
	json_decref(j);
	assert_int_equal(sfx_state(&F, 1), SMDP_RELEASED);
	/* the order still downloads... */
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_false(s.failed);
	lpa_session_clear(&s);
	/* ...and is cancelled with its EID */
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"eid\":\"%s\",\"finalProfileStatusIndicator\":\"Available\"",
		 iccid, SFX_EID);
	json_decref(sfx_es2_ok(&F, "cancelOrder", fields));
	assert_int_equal(sfx_state(&F, 1), SMDP_AVAILABLE);
	/* an order with no EID is cancelled without one */
	sfx_order(&F, 2, NULL, NULL, NULL, true, NULL);
	sfx_iccid(2, iccid);
	snprintf(fields, sizeof fields,
		 "\"iccid\":\"%s\",\"finalProfileStatusIndicator\":\"Unavailable\"", iccid);
	json_decref(sfx_es2_ok(&F, "cancelOrder", fields));
	assert_int_equal(sfx_state(&F, 2), SMDP_UNAVAILABLE);
}

/* ---- 7: several default SM-DP+ orders -------------------------------------- */

/* Default-SM-DP+ downloads by drv until each of the profiles want[0..n-1]
 * is installed, in that order. */
static void download_defaults(const struct lpa_driver *drv, const size_t *want, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct lpa_session s;
		lpa_session_init(&s, drv);
		esim_err err = lpa_download(&s, NULL, NULL);
		if (err != ESIM_OK)
			fprintf(stderr, "download %zu: %s, %s/%s (HTTP %d)\n", k,
				esim_strerror(err), s.subject, s.reason, s.http_status);
		assert_esim(ESIM_OK, err);
		lpa_session_clear(&s);
		assert_int_equal(sfx_state(&F, want[k]), SMDP_INSTALLED);
		for (size_t m = k + 1; m < n; m++)
			assert_int_equal(sfx_state(&F, want[m]), SMDP_RELEASED);
	}
	/* none left for this EID */
	struct lpa_session s;
	lpa_session_init(&s, drv);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, NULL));
	assert_refused(&s, "8.1.1", "3.8");
	lpa_session_clear(&s);
}

static void test_default_orders_one_eid(void **state)
{
	(void)state;
	/* three orders with no matchingId for one EID: each ConfirmOrder
	 * answers 200 with an empty matchingId (sfx_es2 asserts 200) */
	for (size_t i = 1; i <= 3; i++)
		sfx_order(&F, i, SFX_EID, "", NULL, true, NULL);
	const size_t want[] = {1, 2, 3};
	download_defaults(&F.drv[0], want, 3);
}

static void test_default_orders_several_eids(void **state)
{
	(void)state;
	char eid[3][RSP_EID_DIGITS + 1];
	euicc *e[3];
	struct lpa_driver drv[3];
	for (int i = 0; i < 3; i++) {
		char prefix[31];
		snprintf(prefix, sizeof prefix, "890490320000000000000000%06d", 700 + i);
		assert_esim(ESIM_OK, crypto_pki_eid_complete(prefix, eid[i]));
		e[i] = sfx_euicc_eid(&F, "nist", eid[i]);
		drv[i] = F.drv[0];
		drv[i].es10_ctx = e[i];
	}
	/* two orders per EID, made in turn: EID i gets profiles i + 1 and
	 * i + 4 */
	for (size_t round = 0; round < 2; round++)
		for (size_t i = 0; i < 3; i++)
			sfx_order(&F, i + 1 + 3 * round, eid[i], "", NULL, true, NULL);
	char iccid[RSP_ICCID_TEXT_MAX], fields[256];
	for (size_t i = 0; i < 3; i++) {
		const size_t want[] = {i + 1, i + 4};
		download_defaults(&drv[i], want, 2);
	}
	for (int i = 0; i < 3; i++)
		euicc_close(e[i]);
	/* a default order without an EID is still refused at ConfirmOrder */
	sfx_iccid(7, iccid);
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\"", iccid);
	json_decref(sfx_es2_ok(&F, "downloadOrder", fields));
	snprintf(fields, sizeof fields, "\"iccid\":\"%s\",\"releaseFlag\":true,\"matchingId\":\"\"",
		 iccid);
	json_t *j = sfx_es2(&F, SFX_OP1_SHA, "OP1", "confirmOrder", fields);
	sfx_assert_fail(j, "8.1.1", "2.2");
	json_decref(j);
}

/* Migration 9 on a database (url, empty) whose default orders hold '' as
 * matchingId. */
static void migration_empty_mid(const char *url)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(url, &s));
	assert_esim(ESIM_OK, smdp_schema_migrate_upto(s, 8));
	store_stmt *st = NULL;
	assert_esim(
	    ESIM_OK,
	    store_prepare(s,
			  "INSERT INTO smdp_orders (profile_id, operator_id, eid, matching_id,"
			  " cc_left, attempts, expires, open, created, updated) VALUES"
			  " (1, 1, '" SFX_EID "', '', 3, 0, 99, 0, 1, 1),"
			  " (2, 1, '" SFX_EID "', '', 3, 0, 99, 1, 1, 1),"
			  " (3, 1, '" SFX_EID "', 'MID-3', 3, 0, 99, 1, 1, 1)",
			  &st));
	assert_esim(ESIM_OK, store_run(st));
	store_finalize(st);
	assert_esim(ESIM_OK, smdp_schema_migrate(s));
	assert_esim(ESIM_OK,
		    store_prepare(s,
				  "SELECT SUM(CASE WHEN matching_id IS NULL THEN 1 ELSE 0 END),"
				  " SUM(CASE WHEN matching_id = '' THEN 1 ELSE 0 END),"
				  " MAX(matching_id) FROM smdp_orders",
				  &st));
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	assert_int_equal(store_col_int64(st, 0), 2);
	assert_int_equal(store_col_int64(st, 1), 0);
	assert_string_equal(store_col_text(st, 2), "MID-3");
	store_finalize(st);
	/* and a second open one with no matchingId now fits */
	assert_esim(
	    ESIM_OK,
	    store_prepare(s,
			  "INSERT INTO smdp_orders (profile_id, operator_id, eid, matching_id,"
			  " cc_left, attempts, expires, open, created, updated) VALUES"
			  " (4, 1, '" SFX_EID "', NULL, 3, 0, 99, 1, 1, 1)",
			  &st));
	assert_esim(ESIM_OK, store_run(st));
	store_finalize(st);
	store_close(s);
}

static void test_migration_empty_mid(void **state)
{
	(void)state;
	char url[800];
	snprintf(url, sizeof url, "sqlite:%s/mig9.db", F.dir);
	migration_empty_mid(url);
}

PG_TWIN(test_auth_other_session_txid)
PG_TWIN(test_cc_retry_same_session)
PG_TWIN(test_cc_limit_same_session)
PG_TWIN(test_bpp_otpk_off_curve)

/* The default orders and the migration on a real PostgreSQL, whose unique
 * index gave the HTTP 500 as SQLite's did. */
static void test_default_orders_postgres(void **state)
{
	(void)state;
	struct pg_env pg;
	memset(&pg, 0, sizeof pg);
	int rc = pg_start(&pg);
	if (rc == TEST_SKIP_CODE) {
		if (pg_missing[0] == '\0')
			snprintf(pg_missing, sizeof pg_missing, "%s", pg.why);
		pg_stop(&pg);
		skip();
	}
	assert_int_equal(rc, 0);
	char url[512];
	assert_int_equal(pg_create_db(&pg, url, sizeof url), 0);
	migration_empty_mid(url);
	assert_int_equal(pg_create_db(&pg, url, sizeof url), 0);
	sfx_open_smdp(&F, url, 8);
	sfx_open_euiccs(&F);
	for (size_t i = 1; i <= 3; i++)
		sfx_order(&F, i, SFX_EID, "", NULL, true, NULL);
	const size_t want[] = {1, 2, 3};
	download_defaults(&F.drv[0], want, 3);
	sfx_close(&F);
	pg_stop(&pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_auth_other_session_txid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_smdp_no_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cc_retry_same_session, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cc_limit_same_session, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bpp_otpk_off_curve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_order_needs_eid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_orders_one_eid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_orders_several_eids, setup, teardown),
	    cmocka_unit_test(test_migration_empty_mid),
	    cmocka_unit_test(test_default_orders_postgres),
	    cmocka_unit_test_setup_teardown(test_auth_other_session_txid_pg, setup_pg, teardown_pg),
	    cmocka_unit_test_setup_teardown(test_cc_retry_same_session_pg, setup_pg, teardown_pg),
	    cmocka_unit_test_setup_teardown(test_cc_limit_same_session_pg, setup_pg, teardown_pg),
	    cmocka_unit_test_setup_teardown(test_bpp_otpk_off_curve_pg, setup_pg, teardown_pg),
	};
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	if (pg_started)
		pg_stop(&PG);
	/* a pass without the PostgreSQL half is not a pass */
	if (rc == 0 && pg_missing[0] != '\0')
		return test_component_missing_status("PostgreSQL", pg_missing);
	return rc;
}
