/*
 * The certificates that go with a PIR callback (digest 5.3.5 point 4,
 * es2.c add_euicc_chain), across a restart of the SM-DP+, on SQLite and
 * on a real PostgreSQL (tests/common/pg_helper).
 *
 * The operator verifies the eUICC's signature of a PIR itself before it
 * activates a line, so the callback must carry CERT.EUICC (kept with the
 * session) and CERT.EUM. The EUM used to come only from the in-memory
 * cache of verified EUMs: an SM-DP+ restarted between authenticateClient
 * and the PIR sent the callback without it, and the operator could never
 * activate the line; so did one whose cache of 32 EUMs was full. Verified
 * EUMs are now also kept in smdp_eum_certs, one row per distinct EUM.
 */
#include "esim/cert.h"
#include "esim/store.h"
#include "pg_helper.h"
#include "smdp/smdp_int.h"
#include "test_smdp_fixture.h"

static struct sfx F;

/* The body of the one outbox row of notification point `point`
 * (caller decrefs). */
static json_t *outbox_body(const char *url, int point)
{
	store *s;
	assert_esim(ESIM_OK, store_open(url, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT body FROM smdp_outbox ORDER BY id", &st));
	json_t *found = NULL;
	bool row;
	while (store_step(st, &row) == ESIM_OK && row) {
		json_t *j = json_loads(store_col_text(st, 0), 0, NULL);
		assert_non_null(j);
		if (json_integer_value(json_object_get(j, "notificationPointId")) == point) {
			assert_null(found); /* exactly one */
			found = j;
		} else {
			json_decref(j);
		}
	}
	store_finalize(st);
	store_close(s);
	assert_non_null(found);
	return found;
}

static size_t eum_rows(const char *url)
{
	store *s;
	assert_esim(ESIM_OK, store_open(url, &s));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, "SELECT COUNT(*) FROM smdp_eum_certs", &st));
	bool row;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	size_t n = (size_t)store_col_int64(st, 0);
	store_finalize(st);
	store_close(s);
	return n;
}

/* field of j, base64-decoded, equals the bytes of file curve/name of the
 * test PKI. */
static void assert_field_is_file(const json_t *j, const char *field, const char *curve,
				 const char *name)
{
	uint8_t *got = NULL;
	size_t got_len = 0;
	esim_err err = net_json_get_base64(j, field, 64 * 1024, &got, &got_len, NULL);
	if (err != ESIM_OK) {
		char *t = json_dumps(j, JSON_COMPACT);
		fprintf(stderr, "callback without %s: %s\n", field, t);
		free(t);
	}
	assert_esim(ESIM_OK, err);
	char path[800];
	snprintf(path, sizeof path, "%s/%s/%s", F.pki, curve, name);
	size_t want_len;
	uint8_t *want = test_read(path, &want_len);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	free(got);
	free(want);
}

/* A download is authenticated and loaded; the SM-DP+ is closed and opened
 * again on the same database (its EUM cache is gone); the PIR that then
 * arrives still queues a callback with CERT.EUICC and CERT.EUM. */
static void run(const char *db_url)
{
	sfx_open_smdp(&F, db_url, 4);
	const char *url = F.cfg.db_url;
	sfx_open_euiccs(&F);
	char mid[64];
	sfx_order(&F, 1, NULL, NULL, NULL, true, mid);
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_dl_initiate(&s));
	assert_esim(ESIM_OK, lpa_dl_authenticate(&s, mid));
	assert_esim(ESIM_OK, lpa_dl_prepare(&s, NULL));
	assert_esim(ESIM_OK, lpa_dl_load(&s));
	assert_true(s.pir_success);

	/* restart: same configuration, same database, nothing in memory */
	struct smdp_config cfg = F.cfg;
	smdp_close(F.d);
	F.d = NULL;
	assert_esim(ESIM_OK, smdp_open(&cfg, &F.d));
	F.drv[0].es9_ctx = F.d;
	F.drv[1].es9_ctx = F.d;

	assert_esim(ESIM_OK, lpa_dl_notify(&s));
	assert_int_equal(s.http_status, 204);
	lpa_session_clear(&s);
	assert_int_equal(sfx_state(&F, 1), SMDP_INSTALLED);
	json_t *pir = outbox_body(url, 4);
	assert_field_is_file(pir, "euiccCertificate", "nist", "euicc.der");
	assert_field_is_file(pir, "eumCertificate", "nist", "eum.der");
	json_decref(pir);
	/* one verified EUM, one row */
	assert_int_equal(eum_rows(url), 1);

	/* a second download with the same EUM after the restart: verified
	 * again (the cache was empty), still one row */
	sfx_order(&F, 2, NULL, NULL, NULL, true, mid);
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	assert_int_equal(eum_rows(url), 1);
	/* and another EUM (brainpool) is one more */
	sfx_order(&F, 3, NULL, NULL, NULL, true, mid);
	lpa_session_init(&s, &F.drv[1]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	lpa_session_clear(&s);
	assert_int_equal(eum_rows(url), 2);
	sfx_close(&F);
}

/* The cache of verified EUMs is full (SMDP_EUM_CACHE entries of another
 * EUM): the NIST EUM is verified on every download and never cached, yet
 * the PIR callback still carries it, from the table, which has it once. */
static void test_pir_chain_cache_full(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 4);
	sfx_open_euiccs(&F);
	char path[800];
	snprintf(path, sizeof path, "%s/brp/eum.der", F.pki);
	for (size_t i = 0; i < SMDP_EUM_CACHE; i++) /* each slot owns its copy */
		assert_esim(ESIM_OK, crypto_cert_load_file(path, &F.d->eum[i].cert));
	F.d->n_eum = SMDP_EUM_CACHE;
	for (size_t i = 1; i <= 2; i++) {
		char mid[64];
		sfx_order(&F, i, NULL, NULL, NULL, true, mid);
		struct lpa_session s;
		lpa_session_init(&s, &F.drv[0]);
		assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
		lpa_session_clear(&s);
	}
	assert_int_equal(F.d->n_eum, SMDP_EUM_CACHE);
	store *st;
	assert_esim(ESIM_OK, store_open(F.db, &st));
	store_stmt *q;
	assert_esim(ESIM_OK, store_prepare(st, "SELECT body FROM smdp_outbox ORDER BY id", &q));
	size_t pirs = 0;
	bool row;
	while (store_step(q, &row) == ESIM_OK && row) {
		json_t *j = json_loads(store_col_text(q, 0), 0, NULL);
		assert_non_null(j);
		if (json_integer_value(json_object_get(j, "notificationPointId")) == 4) {
			assert_field_is_file(j, "eumCertificate", "nist", "eum.der");
			pirs++;
		}
		json_decref(j);
	}
	store_finalize(q);
	store_close(st);
	assert_int_equal(pirs, 2);
	assert_int_equal(eum_rows(F.db), 1);
	sfx_close(&F);
}

static void test_pir_chain_after_restart_sqlite(void **state)
{
	(void)state;
	run(NULL);
}

/* set when PostgreSQL is not installed: the run ends with a skip (77) */
static char pg_missing[300];

static void test_pir_chain_after_restart_postgres(void **state)
{
	(void)state;
	struct pg_env pg;
	memset(&pg, 0, sizeof pg);
	int rc = pg_start(&pg);
	if (rc == TEST_SKIP_CODE) {
		/* the SQLite case still runs; main() reports the skip */
		snprintf(pg_missing, sizeof pg_missing, "%s", pg.why);
		pg_stop(&pg);
		skip();
	}
	assert_int_equal(rc, 0);
	char url[512];
	assert_int_equal(pg_create_db(&pg, url, sizeof url), 0);
	run(url);
	pg_stop(&pg);
}

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pir_chain_after_restart_sqlite),
	    cmocka_unit_test(test_pir_chain_after_restart_postgres),
	    cmocka_unit_test(test_pir_chain_cache_full),
	};
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	/* a failure stays a failure; a pass without the PostgreSQL half is not
	 * a pass */
	if (rc == 0 && pg_missing[0] != '\0')
		return test_component_missing_status("PostgreSQL", pg_missing);
	return rc;
}
