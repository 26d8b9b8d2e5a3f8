/*
 * The streaming batch import of the SM-DP+ (smdp_import_stream, `esim-smdp
 * import`): each kind of bad row (ICCID check digit, duplicate ICCID in
 * the file and against the database, Ki / OPc length and hex, IMSI, a
 * template with no slot for a Ki the batch carries) is reported with its
 * line number and leaves nothing of the file imported, on SQLite and on a
 * real PostgreSQL; a file read as a stream imports every row; the
 * command prints file:line: reason.
 */
#include <unistd.h>

#include "esim/der.h"
#include "pg_helper.h"
#include "test_smdp_fixture.h"

static struct sfx F;

#define KI_HEX "000102030405060708090A0B0C0D0E0F"

/* A template with an akaParameter element (Ki / OPc slots). */
static void add_usim_type(smdp *d)
{
	uint8_t *base = NULL, *upp = NULL;
	size_t base_len = 0, len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &base, &base_len));
	der_builder b;
	der_builder_init(&b);
	der_cursor c;
	der_cursor_init(&c, base, base_len);
	der_element e;
	esim_err err;
	static const uint8_t zero[16] = {0};
	while (der_next_child(&c, &e, &err)) {
		if (e.tag == 0xAA) {
			der_builder_open(&b, 0xA4);
			der_builder_open(&b, 0xA0);
			der_add_int64(&b, 0x81, 51);
			der_builder_close(&b);
			der_builder_open(&b, 0xA1);
			der_builder_open(&b, 0xA1);
			der_add_int64(&b, 0x80, 1);
			der_add_octet_string(&b, 0x81, "\x00", 1);
			der_add_octet_string(&b, 0x82, zero, 16);
			der_add_octet_string(&b, 0x83, zero, 16);
			der_builder_close(&b);
			der_builder_close(&b);
			der_builder_close(&b);
		}
		der_add_raw(&b, e.tlv.p, e.tlv.len);
	}
	assert_esim(ESIM_OK, der_builder_finish(&b, &upp, &len));
	free(base);
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

static esim_err import_text(const char *type, const char *text, size_t *count,
			    struct smdp_import_report *rep)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	esim_err err = smdp_import_stream(F.d, type, f, count, rep);
	fclose(f);
	return err;
}

static size_t available(const char *type)
{
	size_t n = 0;
	assert_esim(ESIM_OK, smdp_count_state(F.d, type, SMDP_AVAILABLE, &n));
	return n;
}

/* text fails with err at line, the reason containing what; nothing of it
 * imported (the count of the type's profiles unchanged). */
static void bad(const char *type, const char *text, esim_err err, size_t line, const char *what)
{
	size_t before = available(type), count = 77;
	struct smdp_import_report rep;
	assert_esim(err, import_text(type, text, &count, &rep));
	assert_int_equal(count, 0);
	if (rep.line != line || strstr(rep.reason, what) == NULL)
		fail_msg("expected line %zu '%s', got line %zu '%s'", line, what, rep.line,
			 rep.reason);
	assert_int_equal(available(type), before);
}

static void run_bad_rows(const char *db_url)
{
	sfx_open_smdp(&F, db_url, 0);
	add_usim_type(F.d);
	char a[RSP_ICCID_TEXT_MAX], b[RSP_ICCID_TEXT_MAX], c[RSP_ICCID_TEXT_MAX], t[1024];
	sfx_iccid(1, a);
	sfx_iccid(2, b);
	sfx_iccid(3, c);
	/* the good first file */
	snprintf(t, sizeof t, "iccid,imsi,ki,opc\n%s,262010000000001," KI_HEX "," KI_HEX "\n", a);
	size_t count = 0;
	struct smdp_import_report rep;
	assert_esim(ESIM_OK, import_text("USIM", t, &count, &rep));
	assert_int_equal(count, 1);
	/* a wrong check digit: the last digit of c changed */
	char wrong[RSP_ICCID_TEXT_MAX];
	snprintf(wrong, sizeof wrong, "%s", c);
	wrong[strlen(wrong) - 1] = (char)('0' + (wrong[strlen(wrong) - 1] - '0' + 1) % 10);
	snprintf(t, sizeof t, "# batch 2\n%s,262010000000002\n%s,262010000000003\n", b, wrong);
	bad("USIM", t, ESIM_E_SMDP_CSV, 3, "bad check digit (Luhn)");
	/* the same ICCID twice in one file */
	snprintf(t, sizeof t, "%s\n%s\n%s\n", b, c, b);
	bad("USIM", t, ESIM_E_STORE_CONSTRAINT, 3, "earlier line of this file");
	/* an ICCID of the first file again, in a second one */
	snprintf(t, sizeof t, "%s\n%s\n", b, a);
	bad("USIM", t, ESIM_E_STORE_CONSTRAINT, 2, "already imported");
	/* Ki of 30 hex digits; OPc not hex; IMSI too short */
	snprintf(t, sizeof t, "%s,262010000000002,000102030405060708090A0B0C0D0E," KI_HEX "\n", b);
	bad("USIM", t, ESIM_E_SMDP_CSV, 1, "Ki must be 32 hex digits");
	snprintf(t, sizeof t,
		 "%s\n%s,262010000000002," KI_HEX ",000102030405060708090A0B0C0D0EXY\n", c, b);
	bad("USIM", t, ESIM_E_SMDP_CSV, 2, "OPc is not hex");
	snprintf(t, sizeof t, "%s,26201\n", b);
	bad("USIM", t, ESIM_E_SMDP_CSV, 1, "IMSI");
	/* the STD template has no akaParameter: a Ki for it would be dropped */
	snprintf(t, sizeof t, "%s,262010000000002\n%s,262010000000003," KI_HEX "\n", b, c);
	bad(SFX_TYPE, t, ESIM_E_SMDP_CSV, 2, "no akaParameter slot for Ki");
	/* and the good rows of the bad files are not there */
	enum smdp_state st;
	assert_esim(ESIM_E_NOT_FOUND, smdp_profile_state(F.d, b, &st));
	assert_esim(ESIM_E_NOT_FOUND, smdp_profile_state(F.d, c, &st));
	/* the same rows, fixed, import */
	snprintf(t, sizeof t, "%s,262010000000002\n%s,262010000000003," KI_HEX "," KI_HEX "\n", b,
		 c);
	assert_esim(ESIM_OK, import_text("USIM", t, &count, &rep));
	assert_int_equal(count, 2);
	assert_int_equal(available("USIM"), 3);
	sfx_close(&F);
}

static void test_bad_rows_sqlite(void **state)
{
	(void)state;
	run_bad_rows(NULL);
}

static char pg_missing[300];

static void test_bad_rows_postgres(void **state)
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
	char url[512];
	assert_int_equal(pg_create_db(&pg, url, sizeof url), 0);
	run_bad_rows(url);
	pg_stop(&pg);
}

/* A real file, read as a stream: every row in, the last one included. */
static void test_stream_file(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 0);
	add_usim_type(F.d);
	FILE *f = tmpfile();
	assert_non_null(f);
	const size_t n = 20000;
	for (size_t i = 1; i <= n; i++) {
		char iccid[RSP_ICCID_TEXT_MAX];
		sfx_iccid(i, iccid);
		fprintf(f, "%s,26201%010zu," KI_HEX "," KI_HEX "%s", iccid, i,
			i == n ? "" : "\r\n"); /* CRLF, and no newline at the end */
	}
	rewind(f);
	size_t count = 0;
	struct smdp_import_report rep;
	assert_esim(ESIM_OK, smdp_import_stream(F.d, "USIM", f, &count, &rep));
	fclose(f);
	assert_int_equal(count, n);
	assert_int_equal(available("USIM"), n);
	sfx_close(&F);
}

/* `esim-smdp import`: file:line: reason on stderr, exit 1, nothing in. */
static void test_command(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 0);
	add_usim_type(F.d);
	char conf[800], csv[800], errp[800], cmd[4000];
	snprintf(conf, sizeof conf, "%s/smdp.conf", F.dir);
	snprintf(csv, sizeof csv, "%s/batch.csv", F.dir);
	snprintf(errp, sizeof errp, "%s/import.err", F.dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = %s\nfqdn = %s\ndpauth-cert-nist = %s\ndpauth-key-nist = %s\n"
		"dppb-cert-nist = %s\ndppb-key-nist = %s\nkek-file = %s\n",
		F.db, SFX_FQDN, F.cfg.ids[0].dpauth_cert, F.cfg.ids[0].dpauth_key,
		F.cfg.ids[0].dppb_cert, F.cfg.ids[0].dppb_key, F.kek);
	fclose(f);
	char a[RSP_ICCID_TEXT_MAX], b[RSP_ICCID_TEXT_MAX];
	sfx_iccid(1, a);
	sfx_iccid(2, b);
	f = fopen(csv, "w");
	fprintf(f, "iccid,imsi,ki,opc\n%s,262010000000001," KI_HEX "," KI_HEX "\n%s,1\n", a, b);
	fclose(f);
	snprintf(cmd, sizeof cmd, "'%s/esim-smdp' import --config '%s' USIM '%s' 2>'%s' >/dev/null",
		 test_bin_dir(), conf, csv, errp);
	assert_int_not_equal(system(cmd), 0);
	size_t len;
	uint8_t *raw = test_read(errp, &len);
	char *msg = strndup((const char *)raw, len); /* the file has no NUL */
	free(raw);
	assert_non_null(msg);
	char want[900];
	snprintf(want, sizeof want, "%s:3: IMSI", csv);
	if (!strstr(msg, want) || !strstr(msg, "nothing imported"))
		fail_msg("stderr: %s", msg);
	assert_null(strstr(msg, KI_HEX)); /* no key material in messages */
	free(msg);
	assert_int_equal(available("USIM"), 0);
	/* fixed, it imports */
	f = fopen(csv, "w");
	fprintf(f, "%s,262010000000001," KI_HEX "," KI_HEX "\n%s\n", a, b);
	fclose(f);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(available("USIM"), 2);
	sfx_close(&F);
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
	    cmocka_unit_test(test_bad_rows_sqlite),
	    cmocka_unit_test(test_stream_file),
	    cmocka_unit_test(test_command),
	    cmocka_unit_test(test_bad_rows_postgres),
	};
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	if (rc == 0 && pg_missing[0] != '\0')
		return test_component_missing_status("PostgreSQL", pg_missing);
	return rc;
}
