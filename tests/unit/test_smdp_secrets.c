/*
 * Ki / OPc at rest in the SM-DP+ (kek.c): after a batch import and after a
 * download, the known Ki / OPc bytes and their hex text appear nowhere in
 * the database's files (SQLite: main, -wal, -shm, -journal; PostgreSQL:
 * every file under the test cluster's data directory after a CHECKPOINT),
 * while the SM-DP+ still personalises the package with them. The KEK file
 * is refused when group or others may read it; another KEK opens nothing;
 * rekey moves every row to a new KEK, after which the old one opens
 * nothing; rows of a database from before the sealing are sealed when it
 * is opened with a KEK, and refused without one.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esim/der.h"
#include "pg_helper.h"
#include "test_smdp_fixture.h"
#include "smdp/smdp_int.h"

static struct sfx F;
/* random per run, so that a hit in the files can only be the import's */
static uint8_t KI[16], OPC[16];

static void make_usim_upp(const char *iccid, const uint8_t *ki, uint8_t **out, size_t *out_len)
{
	uint8_t *base = NULL;
	size_t base_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(iccid, &base, &base_len));
	der_builder b;
	der_builder_init(&b);
	der_cursor c;
	der_cursor_init(&c, base, base_len);
	der_element e;
	esim_err err;
	while (der_next_child(&c, &e, &err)) {
		if (e.tag == 0xAA) { /* the end element: akaParameter before it */
			der_builder_open(&b, 0xA4);
			der_builder_open(&b, 0xA0);
			der_add_int64(&b, 0x81, 51);
			der_builder_close(&b);
			der_builder_open(&b, 0xA1);
			der_builder_open(&b, 0xA1);
			der_add_int64(&b, 0x80, 1); /* milenage */
			der_add_octet_string(&b, 0x81, "\x00", 1);
			static const uint8_t zero[16] = {0};
			der_add_octet_string(&b, 0x82, ki ? ki : zero, 16);
			der_add_octet_string(&b, 0x83, ki ? ki : zero, 16);
			der_builder_close(&b);
			der_builder_close(&b);
			der_builder_close(&b);
		}
		der_add_raw(&b, e.tlv.p, e.tlv.len);
	}
	assert_esim(ESIM_OK, err);
	assert_esim(ESIM_OK, der_builder_finish(&b, out, out_len));
	free(base);
}

static void add_usim_type(smdp *d)
{
	uint8_t *upp;
	size_t len;
	make_usim_upp(SFX_TEMPLATE, NULL, &upp, &len);
	struct smdp_profile_type t = {.name = "USIM",
				      .operator_name = "OP1",
				      .upp = upp,
				      .upp_len = len,
				      .spn = "esimkit",
				      .profile_name = "USIM profile",
				      .profile_class = 2};
	assert_esim(ESIM_OK, smdp_add_profile_type(d, &t));
	free(upp);
}

static void hex(const uint8_t *b, size_t n, bool upper, char *out)
{
	const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The ICCID i of the batch with KI / OPC (line 1 of the file is a header). */
static void import_batch(smdp *d, size_t n)
{
	char ki[33], opc[33];
	hex(KI, 16, true, ki);
	hex(OPC, 16, false, opc);
	esim_buf csv = ESIM_BUF_INIT;
	esim_buf_append(&csv, "iccid,imsi,ki,opc\n", 18);
	for (size_t i = 1; i <= n; i++) {
		char line[160], iccid[RSP_ICCID_TEXT_MAX];
		sfx_iccid(i, iccid);
		int k =
		    snprintf(line, sizeof line, "%s,2620100000%05zu,%s,%s\n", iccid, i, ki, opc);
		esim_buf_append(&csv, line, (size_t)k);
	}
	size_t count = 0;
	assert_esim(ESIM_OK, smdp_import_csv(d, "USIM", (const char *)csv.data, csv.len, &count));
	assert_int_equal(count, n);
	esim_buf_free(&csv);
}

/* needles: raw Ki, raw OPc, and their hex text in both cases */
struct needles {
	uint8_t b[6][33]; /* hex text and its NUL */
	size_t n[6];
};

static void make_needles(struct needles *nd)
{
	memcpy(nd->b[0], KI, 16);
	memcpy(nd->b[1], OPC, 16);
	nd->n[0] = nd->n[1] = 16;
	hex(KI, 16, true, (char *)nd->b[2]);
	hex(KI, 16, false, (char *)nd->b[3]);
	hex(OPC, 16, true, (char *)nd->b[4]);
	hex(OPC, 16, false, (char *)nd->b[5]);
	for (int i = 2; i < 6; i++)
		nd->n[i] = 32;
}

static bool contains(const uint8_t *h, size_t hn, const uint8_t *nd, size_t n)
{
	for (size_t i = 0; i + n <= hn; i++)
		if (h[i] == nd[0] && memcmp(h + i, nd, n) == 0)
			return true;
	return false;
}

/* How many of the needles occur in the file (0 when it does not exist);
 * marker, when not NULL, is counted as well in *marker_hits. */
static int scan_file(const char *path, const struct needles *nd, const char *marker,
		     int *marker_hits)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	esim_buf b = ESIM_BUF_INIT;
	uint8_t chunk[65536];
	size_t r;
	while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
		esim_buf_append(&b, chunk, r);
	fclose(f);
	int hits = 0;
	for (int i = 0; i < 6; i++)
		if (b.len && contains(b.data, b.len, nd->b[i], nd->n[i])) {
			fprintf(stderr, "needle %d (%s) found in %s\n", i, i < 2 ? "raw" : "hex",
				path);
			hits++;
		}
	if (marker && b.len && contains(b.data, b.len, (const uint8_t *)marker, strlen(marker)))
		(*marker_hits)++;
	esim_buf_free(&b);
	return hits;
}

static int scan_tree(const char *dir, const struct needles *nd, const char *marker,
		     int *marker_hits)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int hits = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char p[1200];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			hits += scan_tree(p, nd, marker, marker_hits);
		else if (S_ISREG(st.st_mode))
			hits += scan_file(p, nd, marker, marker_hits);
	}
	closedir(d);
	return hits;
}

static int scan_sqlite(const char *db_path, const struct needles *nd, int *marker_hits,
		       const char *marker)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	int hits = 0;
	for (int i = 0; i < 4; i++) {
		char p[800];
		snprintf(p, sizeof p, "%s%s", db_path, sfx[i]);
		hits += scan_file(p, nd, marker, marker_hits);
	}
	return hits;
}

/* Ki / OPc as the SM-DP+ hands them to the binding: in its package. */
static void assert_upp_keys(smdp *d, size_t i)
{
	char iccid[RSP_ICCID_TEXT_MAX];
	sfx_iccid(i, iccid);
	uint8_t *upp = NULL;
	size_t len = 0;
	assert_esim(ESIM_OK, smdp_profile_upp(d, iccid, &upp, &len));
	assert_true(contains(upp, len, KI, 16));
	assert_true(contains(upp, len, OPC, 16));
	esim_wipe(upp, len);
	free(upp);
}

static void download(size_t i)
{
	char iccid[RSP_ICCID_TEXT_MAX], got[64], mid[64];
	sfx_iccid(i, iccid);
	assert_esim(ESIM_OK, smdp_admin_order(F.d, "OP1", "USIM", iccid, NULL, NULL, got, mid));
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	assert_esim(ESIM_OK, lpa_download(&s, mid, NULL));
	assert_true(s.pir_success);
	lpa_session_clear(&s);
	enum smdp_state st;
	assert_esim(ESIM_OK, smdp_profile_state(F.d, iccid, &st));
	assert_int_equal(st, SMDP_INSTALLED);
}

static void run_at_rest(const char *db_url, const char *scan_dir)
{
	sfx_open_smdp(&F, db_url, 0);
	add_usim_type(F.d);
	import_batch(F.d, 3);
	assert_upp_keys(F.d, 1);
	sfx_open_euiccs(&F);
	download(1);
	struct needles nd;
	make_needles(&nd);
	int marker = 0, hits;
	char iccid[RSP_ICCID_TEXT_MAX];
	sfx_iccid(2, iccid);
	if (!scan_dir) {
		/* closed: what is on disk is all there is */
		char path[sizeof F.db];
		memcpy(path, F.db + strlen("sqlite:"), sizeof F.db - strlen("sqlite:"));
		sfx_close(&F);
		hits = scan_sqlite(path, &nd, &marker, iccid);
	} else {
		store *s = NULL;
		assert_esim(ESIM_OK, store_open(db_url, &s));
		assert_esim(ESIM_OK, store_exec(s, "CHECKPOINT"));
		store_close(s);
		hits = scan_tree(scan_dir, &nd, iccid, &marker);
		sfx_close(&F);
	}
	/* the scan sees the data: the ICCID text of a row is there */
	assert_true(marker > 0);
	assert_int_equal(hits, 0);
}

static void test_at_rest_sqlite(void **state)
{
	(void)state;
	run_at_rest(NULL, NULL);
}

/* set when PostgreSQL is not installed: the run ends with a skip (77) */
static char pg_missing[300];

static void test_at_rest_postgres(void **state)
{
	(void)state;
	struct pg_env pg;
	memset(&pg, 0, sizeof pg);
	int rc = pg_start(&pg);
	if (rc == TEST_SKIP_CODE) {
		snprintf(pg_missing, sizeof pg_missing, "%s", pg.why);
		pg_stop(&pg);
		skip();
	}
	assert_int_equal(rc, 0);
	char url[512], data[300];
	assert_int_equal(pg_create_db(&pg, url, sizeof url), 0);
	snprintf(data, sizeof data, "%s/data", pg.dir);
	run_at_rest(url, data);
	pg_stop(&pg);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* smdp_open with kek, its stderr captured into err_out. */
static esim_err open_capture(const char *kek, char *err_out, size_t n)
{
	char path[800];
	snprintf(path, sizeof path, "%s/stderr.txt", F.dir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	F.cfg.kek_file = kek;
	esim_err err = smdp_open(&F.cfg, &F.d);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	size_t len = 0;
	uint8_t *t = test_read(path, &len);
	snprintf(err_out, n, "%.*s", (int)len, (const char *)t);
	free(t);
	if (err == ESIM_OK) {
		smdp_close(F.d);
		F.d = NULL;
	}
	return err;
}

static void test_kek_file_checked(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 0);
	smdp_close(F.d);
	F.d = NULL;
	char kek[800], msg[1024];
	snprintf(kek, sizeof kek, "%s/kek-test", F.dir);
	const char *key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	write_file(kek, key, 0644);
	assert_esim(ESIM_E_SMDP_KEK, open_capture(kek, msg, sizeof msg));
	assert_non_null(strstr(msg, kek));
	assert_non_null(strstr(msg, "chmod 600"));
	write_file(kek, key, 0640);
	assert_esim(ESIM_E_SMDP_KEK, open_capture(kek, msg, sizeof msg));
	write_file(kek, key, 0600);
	assert_esim(ESIM_OK, open_capture(kek, msg, sizeof msg));
	write_file(kek, key, 0400);
	assert_esim(ESIM_OK, open_capture(kek, msg, sizeof msg));
	/* not 32 bytes */
	write_file(kek, "0001020304\n", 0600);
	assert_esim(ESIM_E_SMDP_KEK, open_capture(kek, msg, sizeof msg));
	assert_non_null(strstr(msg, "32 bytes"));
	/* someone else's file, even 0600 (only root can make one here) */
	if (geteuid() == 0) {
		write_file(kek, key, 0600);
		assert_int_equal(chown(kek, 65534, 65534), 0);
		assert_esim(ESIM_E_SMDP_KEK, open_capture(kek, msg, sizeof msg));
		assert_non_null(strstr(msg, "owned by uid 65534"));
	}
	/* missing */
	unlink(kek);
	assert_esim(ESIM_E_SMDP_KEK, open_capture(kek, msg, sizeof msg));
	assert_non_null(strstr(msg, kek));
	sfx_close(&F);
}

static void reopen(const char *kek)
{
	smdp_close(F.d);
	F.d = NULL;
	F.cfg.kek_file = kek;
	assert_esim(ESIM_OK, smdp_open(&F.cfg, &F.d));
	for (int i = 0; i < 2; i++)
		F.drv[i].es9_ctx = F.d;
}

static void test_wrong_kek(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 0);
	add_usim_type(F.d);
	import_batch(F.d, 2);
	char other[800], iccid[RSP_ICCID_TEXT_MAX];
	snprintf(other, sizeof other, "%s/kek-other", F.dir);
	sfx_write_kek(other);
	char first[800];
	snprintf(first, sizeof first, "%s", F.cfg.kek_file);
	reopen(other);
	sfx_iccid(1, iccid);
	uint8_t *upp = NULL;
	size_t len = 0;
	assert_esim(ESIM_E_SMDP_KEK, smdp_profile_upp(F.d, iccid, &upp, &len));
	assert_null(upp);
	/* a download of it fails too, and the package never leaves */
	sfx_open_euiccs(&F);
	char got[64], mid[64];
	assert_esim(ESIM_OK, smdp_admin_order(F.d, "OP1", "USIM", iccid, NULL, NULL, got, mid));
	struct lpa_session s;
	lpa_session_init(&s, &F.drv[0]);
	lpa_download(&s, mid, NULL);
	assert_false(s.pir_success);
	lpa_session_clear(&s);
	/* no KEK at all: the same */
	reopen(NULL);
	assert_esim(ESIM_E_SMDP_KEK, smdp_profile_upp(F.d, iccid, &upp, &len));
	/* and a batch with Ki / OPc is refused without a KEK */
	size_t count = 9;
	char line[200], kih[33];
	hex(KI, 16, true, kih);
	sfx_iccid(7, iccid);
	snprintf(line, sizeof line, "%s,262010000000007,%s,%s\n", iccid, kih, kih);
	assert_esim(ESIM_E_SMDP_KEK, smdp_import_csv(F.d, "USIM", line, strlen(line), &count));
	/* the right one opens them */
	reopen(first);
	assert_upp_keys(F.d, 2);
	/* a blob opens only for its own ICCID (associated data) */
	struct smdp_kek k;
	assert_esim(ESIM_OK, smdp_kek_load(first, &k));
	uint8_t sealed[SMDP_SEALED_LEN], a[16], b[16];
	unsigned which;
	assert_esim(ESIM_OK, smdp_keys_seal(&k, "89000123450000000011", KI, OPC, sealed));
	assert_esim(ESIM_E_SMDP_KEK, smdp_keys_open(&k, "89000123450000000029", sealed,
						    sizeof sealed, a, b, &which));
	assert_esim(ESIM_OK, smdp_keys_open(&k, "89000123450000000011", sealed, sizeof sealed, a, b,
					    &which));
	assert_memory_equal(a, KI, 16);
	assert_memory_equal(b, OPC, 16);
	smdp_kek_clear(&k);
	sfx_close(&F);
}

static void test_rekey(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 0);
	add_usim_type(F.d);
	import_batch(F.d, 600); /* more than one batch of rekey's */
	char old[800], nk[800];
	snprintf(old, sizeof old, "%s", F.cfg.kek_file);
	snprintf(nk, sizeof nk, "%s/kek-new", F.dir);
	/* a new KEK file open to others is refused, and nothing changes */
	write_file(nk, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 0644);
	size_t count = 0;
	assert_esim(ESIM_E_SMDP_KEK, smdp_rekey(F.d, nk, &count));
	unlink(nk);
	sfx_write_kek(nk);
	assert_esim(ESIM_OK, smdp_rekey(F.d, nk, &count));
	assert_int_equal(count, 600);
	/* again: nothing left under another key */
	assert_esim(ESIM_OK, smdp_rekey(F.d, nk, &count));
	assert_int_equal(count, 0);
	/* the old KEK opens nothing any more; the new one everything */
	reopen(old);
	char iccid[RSP_ICCID_TEXT_MAX];
	uint8_t *upp = NULL;
	size_t len;
	for (size_t i = 1; i <= 600; i += 599) {
		sfx_iccid(i, iccid);
		assert_esim(ESIM_E_SMDP_KEK, smdp_profile_upp(F.d, iccid, &upp, &len));
	}
	reopen(nk);
	assert_upp_keys(F.d, 1);
	assert_upp_keys(F.d, 600);
	sfx_open_euiccs(&F);
	download(2);
	sfx_close(&F);
}

/* The number of the first migration that knows keys_sealed. */
static size_t sealing_migration(void)
{
	for (size_t k = 1; k < 64; k++) {
		store *s = NULL;
		assert_esim(ESIM_OK, store_open(":memory:", &s));
		assert_esim(ESIM_OK, smdp_schema_migrate_upto(s, k));
		store_stmt *st = NULL;
		esim_err e = store_prepare(s, "SELECT keys_sealed FROM smdp_profiles", &st);
		store_finalize(st);
		store_close(s);
		if (e == ESIM_OK)
			return k;
	}
	fail();
	return 0;
}

static void test_legacy_rows(void **state)
{
	(void)state;
	size_t k = sealing_migration();
	assert_true(k > 1);
	/* a database of the schema before, with a profile whose package
	 * holds KI / OPC in clear, as imports used to leave it */
	char path[800], url[820];
	snprintf(path, sizeof path, "%s/legacy.db", F.dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(url, &s));
	assert_esim(ESIM_OK, smdp_schema_migrate_upto(s, k - 1));
	uint8_t *tmpl, *upp;
	size_t tl, ul;
	make_usim_upp(SFX_TEMPLATE, NULL, &tmpl, &tl);
	char iccid[RSP_ICCID_TEXT_MAX];
	sfx_iccid(1, iccid);
	assert_esim(ESIM_OK, rsp_saip_personalise_iccid(tmpl, tl, iccid, &upp, &ul));
	unsigned done = 0;
	assert_esim(ESIM_OK, smdp_personalise_upp(upp, ul, NULL, KI, OPC, &done));
	assert_int_equal(done, SMDP_PERS_KI | SMDP_PERS_OPC);
	assert_esim(ESIM_OK,
		    store_exec(s, "INSERT INTO smdp_operators (name, created) VALUES ('OP1', 1)"));
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s,
					   "INSERT INTO smdp_profile_types (name, operator_id,"
					   " template, spn, profile_name, profile_class, ppr)"
					   " VALUES ('USIM', 1, ?1, 's', 'n', 2, 0)",
					   &st));
	store_bind_blob(st, 1, tmpl, tl);
	assert_esim(ESIM_OK, store_run(st));
	store_finalize(st);
	assert_esim(ESIM_OK, store_prepare(s,
					   "INSERT INTO smdp_profiles (iccid, type_id, state, upp,"
					   " updated) VALUES (?1, 1, 'Available', ?2, 1)",
					   &st));
	store_bind_text(st, 1, iccid);
	store_bind_blob(st, 2, upp, ul);
	assert_esim(ESIM_OK, store_run(st));
	store_finalize(st);
	store_close(s);
	free(tmpl);
	free(upp);
	struct needles nd;
	make_needles(&nd);
	int marker = 0;
	assert_true(scan_sqlite(path, &nd, &marker, NULL) > 0); /* in clear before */
	/* without a KEK the database is refused, with one its rows are sealed */
	sfx_open_smdp(&F, NULL, 0); /* for the cfg; then the legacy file */
	smdp_close(F.d);
	F.d = NULL;
	char kek[800], msg[1024];
	snprintf(kek, sizeof kek, "%s", F.cfg.kek_file);
	F.cfg.db_url = url;
	assert_esim(ESIM_E_SMDP_KEK, open_capture(NULL, msg, sizeof msg));
	assert_non_null(strstr(msg, "in clear"));
	assert_non_null(strstr(msg, "kek-file"));
	F.cfg.kek_file = kek;
	assert_esim(ESIM_OK, smdp_open(&F.cfg, &F.d));
	uint8_t *got;
	size_t gl;
	assert_esim(ESIM_OK, smdp_profile_upp(F.d, iccid, &got, &gl));
	assert_true(contains(got, gl, KI, 16));
	assert_true(contains(got, gl, OPC, 16));
	free(got);
	smdp_close(F.d);
	F.d = NULL;
	assert_int_equal(scan_sqlite(path, &nd, &marker, NULL), 0);
	sfx_close(&F);
}

static int group_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	sfx_pki(&F);
	FILE *r = fopen("/dev/urandom", "rb");
	assert_non_null(r);
	assert_int_equal(fread(KI, 1, 16, r), 16);
	assert_int_equal(fread(OPC, 1, 16, r), 16);
	fclose(r);
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
	    cmocka_unit_test(test_at_rest_sqlite), cmocka_unit_test(test_kek_file_checked),
	    cmocka_unit_test(test_wrong_kek),	   cmocka_unit_test(test_rekey),
	    cmocka_unit_test(test_legacy_rows),	   cmocka_unit_test(test_at_rest_postgres),
	};
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	if (rc == 0 && pg_missing[0] != '\0')
		return test_component_missing_status("PostgreSQL", pg_missing);
	return rc;
}
