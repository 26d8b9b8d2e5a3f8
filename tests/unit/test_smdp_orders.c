/*
 * The orders and profile types operators use (issue 14, item 8):
 * `esim-smdp order` with an operator's matchingId, a confirmation code,
 * an SM-DS address, held (not released) until `esim-smdp release`, and an
 * expiry of its own; `esim-smdp add-type` with a profile class, PPR1 /
 * PPR2, a PNG or JPEG icon and a notification configuration, each bad
 * value refused with a message naming it. Downloads run through the real
 * ES9+ handlers and the eUICC core (in process), and once end to end on
 * the real programs (esim-smdp serve, esim-euicc, esim) with an icon big
 * enough that the StoreMetadata spans two '88' segments; the card then
 * reports class, icon type, PPRs and notification configuration and
 * enforces the PPRs.
 */
#include <fcntl.h>
#include <unistd.h>

#include "esim/der.h"
#include "esim/rsp_bpp.h"
#include "esim/rsp_es10.h"
#include "esim/store.h"
#include "test_lpa_fixture.h"
#include "test_smdp_fixture.h"

static struct sfx F;
static char conf[800];

/* ---- helpers ------------------------------------------------------------- */

static void write_conf(void)
{
	snprintf(conf, sizeof conf, "%s/smdp-orders.conf", F.dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"db = %s\nfqdn = %s\ndpauth-cert-nist = %s\ndpauth-key-nist = %s\n"
		"dppb-cert-nist = %s\ndppb-key-nist = %s\nkek-file = %s\n",
		F.db, SFX_FQDN, F.cfg.ids[0].dpauth_cert, F.cfg.ids[0].dpauth_key,
		F.cfg.ids[0].dppb_cert, F.cfg.ids[0].dppb_key, F.kek);
	fclose(f);
}

static void open_all(void)
{
	sfx_open_smdp(&F, NULL, 6);
	sfx_open_euiccs(&F);
	write_conf();
}

static char *slurp(const char *path)
{
	size_t len = 0;
	uint8_t *raw = test_read(path, &len);
	char *s = strndup((const char *)raw, len);
	free(raw);
	assert_non_null(s);
	return s;
}

/* esim-smdp ARGS --config conf: exit code, stdout and stderr (malloc'd). */
static int smdp_run(const char *args, char **out, char **err)
{
	char cmd[4000], o[800], e[800];
	snprintf(o, sizeof o, "%s/run.out", F.dir);
	snprintf(e, sizeof e, "%s/run.err", F.dir);
	snprintf(cmd, sizeof cmd, "'%s/esim-smdp' %s --config '%s' >'%s' 2>'%s'", test_bin_dir(),
		 args, conf, o, e);
	int st = system(cmd);
	*out = slurp(o);
	*err = slurp(e);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An order that must succeed: its ICCID and matchingId. */
static void order_ok(const char *args, char iccid[32], char mid[64], char **out)
{
	char *o = NULL, *e = NULL;
	if (smdp_run(args, &o, &e) != 0)
		fail_msg("esim-smdp %s: %s", args, e);
	assert_int_equal(sscanf(strstr(o, "iccid "), "iccid %31s", iccid), 1);
	assert_int_equal(sscanf(strstr(o, "matchingId "), "matchingId %63s", mid), 1);
	free(e);
	if (out)
		*out = o;
	else
		free(o);
}

/* A command that must fail with exit code rc and stderr containing want. */
static void run_fails(const char *args, int rc, const char *want)
{
	char *o = NULL, *e = NULL;
	int got = smdp_run(args, &o, &e);
	if (got != rc || !strstr(e, want))
		fail_msg("esim-smdp %s: exit %d, stderr '%s'; wanted exit %d and '%s'", args, got,
			 e, rc, want);
	free(o);
	free(e);
}

static size_t n_available(const char *type)
{
	size_t n = 0;
	assert_esim(ESIM_OK, smdp_count_state(F.d, type, SMDP_AVAILABLE, &n));
	return n;
}

static enum smdp_state state_of(const char *iccid)
{
	enum smdp_state st;
	assert_esim(ESIM_OK, smdp_profile_state(F.d, iccid, &st));
	return st;
}

/* One whole download on eUICC 0; ESIM_OK or the driver's error, codes in
 * *s (caller clears). */
static esim_err download(struct lpa_session *s, const char *mid, const char *cc)
{
	lpa_session_init(s, &F.drv[0]);
	return lpa_download(s, mid, cc);
}

static void download_ok(const char *mid, const char *cc)
{
	struct lpa_session s;
	esim_err err = download(&s, mid, cc);
	if (err != ESIM_OK || !s.pir_success)
		fail_msg("download %s: %s, %s/%s", mid, esim_strerror(err), s.subject, s.reason);
	lpa_session_clear(&s);
}

static void download_refused(const char *mid, const char *cc, const char *subj, const char *rsn)
{
	struct lpa_session s;
	assert_esim(ESIM_E_RSP_EUICC_ERROR, download(&s, mid, cc));
	sfx_assert_lpa_fail(&s, subj, rsn);
	assert_int_not_equal(s.http_status, 500);
	lpa_session_clear(&s);
}

/* A column of the open order of iccid, as text ("" for NULL). */
static void order_col(const char *col, const char *iccid, char *out, size_t n)
{
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(F.db, &s));
	char sql[300];
	snprintf(sql, sizeof sql,
		 "SELECT o.%s FROM smdp_orders o JOIN smdp_profiles p ON p.id = o.profile_id"
		 " WHERE p.iccid = ?1 AND o.open = 1",
		 col);
	store_stmt *st;
	assert_esim(ESIM_OK, store_prepare(s, sql, &st));
	store_bind_text(st, 1, iccid);
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	const char *v = store_col_text(st, 0);
	snprintf(out, n, "%s", v ? v : "");
	store_finalize(st);
	store_close(s);
}

/* ---- orders ------------------------------------------------------------------ */

/* The operator's matchingId is the one in the activation code and the
 * one that downloads; a matchingId already in use is refused (8.2.6 /
 * 3.3) and leaves no half-made order behind. */
static void test_order_matching_id(void **state)
{
	(void)state;
	open_all();
	char iccid[32], mid[64], *out = NULL;
	order_ok("order OP1 STD --matching-id OP1-CAMPAIGN-0042", iccid, mid, &out);
	assert_string_equal(mid, "OP1-CAMPAIGN-0042");
	assert_non_null(strstr(out, "LPA:1$" SFX_FQDN "$OP1-CAMPAIGN-0042\n"));
	free(out);
	size_t before = n_available(SFX_TYPE);
	run_fails("order OP1 STD --matching-id OP1-CAMPAIGN-0042", 1,
		  "matchingId already in use (8.2.6 / 3.3)");
	assert_int_equal(n_available(SFX_TYPE), before);
	/* nothing that breaks the activation code: '$' splits its fields */
	run_fails("order OP1 STD --matching-id 'A$B'", 1, "matchingId 'A$B': 1 to 64 letters");
	run_fails("order OP1 STD --matching-id 'A B'", 1, "matchingId 'A B'");
	assert_int_equal(n_available(SFX_TYPE), before);
	download_ok("OP1-CAMPAIGN-0042", NULL);
	assert_int_equal(state_of(iccid), SMDP_INSTALLED);
	sfx_close(&F);
}

/* --release no: the order is Confirmed and its download refused with
 * 8.2 / 1.2 (profile not released) until `esim-smdp release`. */
static void test_order_not_released(void **state)
{
	(void)state;
	open_all();
	char iccid[32], mid[64], *out = NULL;
	order_ok("order OP1 STD --release no", iccid, mid, &out);
	assert_non_null(strstr(out, "not released: esim-smdp release OP1 "));
	free(out);
	assert_int_equal(state_of(iccid), SMDP_CONFIRMED);
	download_refused(mid, NULL, "8.2", "1.2");
	download_refused(mid, NULL, "8.2", "1.2"); /* still, until released */
	char args[200];
	snprintf(args, sizeof args, "release OP1 %s", iccid);
	char *e = NULL;
	assert_int_equal(smdp_run(args, &out, &e), 0);
	free(out);
	free(e);
	assert_int_equal(state_of(iccid), SMDP_RELEASED);
	download_ok(mid, NULL);
	/* a second release of the now installed profile: 8.2.1 / 3.5 */
	run_fails(args, 1, "(8.2.1 / 3.5)");
	run_fails("order OP1 STD --release maybe", 2, "--release 'maybe': expected yes or no");
	sfx_close(&F);
}

/* --cc: the activation code says a code is needed ($$1); without it the
 * eUICC itself refuses PrepareDownload (ccRequired and no hashCc), which
 * the SM-DP+ reports as 8.1 / 3.8; with the wrong code the SM-DP+ refuses
 * with 8.2.7 / 3.8; with the right one it installs. */
static void test_order_confirmation_code(void **state)
{
	(void)state;
	open_all();
	char iccid[32], mid[64], *out = NULL;
	order_ok("order OP1 STD --cc 7294", iccid, mid, &out);
	char want[200];
	snprintf(want, sizeof want, "LPA:1$%s$%s$$1\n", SFX_FQDN, mid);
	assert_non_null(strstr(out, want));
	free(out);
	download_refused(mid, NULL, "8.1", "3.8");
	download_refused(mid, "1111", "8.2.7", "3.8");
	download_ok(mid, "7294");
	sfx_close(&F);
}

/* --smds-address: passed as ConfirmOrder's smdsAddress and stored with
 * the order (the SM-DS event registration itself is es12.c's: here the
 * configured SM-DS does not answer, so the registration is queued).
 * Without an EID it is refused by ES2+ (8.1.1 / 2.2), an SM-DS this SM-DP+
 * does not know with 8.9 / 5.1, and the profile goes back to Available. */
static void test_order_smds_address(void **state)
{
	(void)state;
	open_all();
	FILE *f = fopen(conf, "a");
	assert_non_null(f);
	/* port 1 on loopback: nobody listens, the connection is refused */
	fprintf(
	    f,
	    "smds = 127.0.0.1:1\nsmds-ca = %s/nist/ci.pem\nsmds-client-cert = %s/nist/dptls.pem\n"
	    "smds-client-key = %s/nist/dptls.key.pem\n",
	    F.pki, F.pki, F.pki);
	fclose(f);
	size_t before = n_available(SFX_TYPE);
	run_fails("order OP1 STD --smds-address 127.0.0.1:1", 1, "(8.1.1 / 2.2)");
	run_fails("order OP1 STD " SFX_EID " --smds-address smds.unknown.example", 1,
		  "(8.9 / 5.1)");
	assert_int_equal(n_available(SFX_TYPE), before);
	char iccid[32], mid[64], got[300];
	order_ok("order OP1 STD " SFX_EID " --smds-address 127.0.0.1:1", iccid, mid, NULL);
	order_col("smds_address", iccid, got, sizeof got);
	assert_string_equal(got, "127.0.0.1:1");
	order_col("eid", iccid, got, sizeof got);
	assert_string_equal(got, SFX_EID);
	sfx_close(&F);
}

/* --expires: the order's own expiry; past it the download is refused
 * with 8.8.5 / 4.10 (download order expired), before it the SM-DP+'s
 * default of 30 days does not apply. Bad values are refused before any
 * order is made. */
static void test_order_expires(void **state)
{
	(void)state;
	open_all();
	char iccid[32], mid[64], mid2[64], iccid2[32], got[64];
	time_t t0 = time(NULL);
	order_ok("order OP1 STD --expires 1h", iccid, mid, NULL);
	order_col("expires", iccid, got, sizeof got);
	long long exp = atoll(got);
	assert_true(exp >= (long long)t0 + 3600 && exp <= (long long)time(NULL) + 3600);
	order_ok("order OP1 STD --expires 2099-01-01T00:00:00Z", iccid2, mid2, NULL);
	order_col("expires", iccid2, got, sizeof got);
	assert_string_equal(got, "4070908800");
	F.offset = 2 * 3600; /* two hours later */
	download_refused(mid, NULL, "8.8.5", "4.10");
	download_ok(mid2, NULL);
	F.offset = 0;
	size_t before = n_available(SFX_TYPE);
	run_fails("order OP1 STD --expires 2001-01-01T00:00:00Z", 2, "is not in the future");
	run_fails("order OP1 STD --expires soon", 2, "--expires 'soon': expected N[s|m|h|d]");
	run_fails("order OP1 STD --expires 0", 2, "--expires '0'");
	run_fails("order OP1 STD --expires 3w", 2, "--expires '3w'");
	assert_int_equal(n_available(SFX_TYPE), before);
	sfx_close(&F);
}

/* ---- profile types ---------------------------------------------------------- */

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A PNG file of exactly len bytes (len >= 57): signature, IHDR of a 1x1
 * image, a tEXt chunk that fills, IEND; chunk CRCs computed. Made here. */
static uint8_t *make_png(size_t len)
{
	uint8_t *p = calloc(len, 1);
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
	memcpy(p, sig, 8);
	size_t o = 8;
	/* IHDR: 1x1, bit depth 8, colour type 0 */
	put32(p + o, 13);
	memcpy(p + o + 4, "IHDR", 4);
	put32(p + o + 8, 1);
	put32(p + o + 12, 1);
	p[o + 16] = 8;
	put32(p + o + 21, crc32_of(p + o + 4, 17));
	o += 25;
	size_t text = len - o - 12 - 12;
	put32(p + o, (uint32_t)text);
	memcpy(p + o + 4, "tEXt", 4);
	memcpy(p + o + 8, "Comment", 8); /* keyword, NUL, then text */
	for (size_t i = 8; i < text; i++)
		p[o + 8 + i] = (uint8_t)('a' + i % 26);
	put32(p + o + 8 + text, crc32_of(p + o + 4, 4 + text));
	o += 12 + text;
	put32(p + o, 0);
	memcpy(p + o + 4, "IEND", 4);
	put32(p + o + 8, crc32_of(p + o + 4, 4));
	return p;
}

/* A JPEG-framed file of len bytes: SOI, an APP0 JFIF segment, a COM
 * segment that fills, EOI. Made here. */
static uint8_t *make_jpeg(size_t len)
{
	uint8_t *p = calloc(len, 1);
	static const uint8_t head[20] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J',
					 'F',  'I',  'F',  0x00, 0x01, 0x01, 0x00,
					 0x00, 0x01, 0x00, 0x01, 0x00, 0x00};
	memcpy(p, head, sizeof head);
	size_t com = len - sizeof head - 2;
	p[20] = 0xFF;
	p[21] = 0xFE;
	p[22] = (uint8_t)((com - 2) >> 8);
	p[23] = (uint8_t)(com - 2);
	memset(p + 24, 'x', com - 4);
	p[len - 2] = 0xFF;
	p[len - 1] = 0xD9;
	return p;
}

static void write_bytes(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static const char *data_path(const char *name)
{
	static char path[4][800];
	static int k;
	k = (k + 1) % 4;
	snprintf(path[k], sizeof path[k], "%s/%s", F.dir, name);
	return path[k];
}

/* Import profiles numbered from..to (sfx_iccid) into type. */
static void import_into(const char *type, size_t from, size_t to)
{
	esim_buf csv = ESIM_BUF_INIT;
	for (size_t i = from; i <= to; i++) {
		char line[128], iccid[RSP_ICCID_TEXT_MAX];
		sfx_iccid(i, iccid);
		int k = snprintf(line, sizeof line, "%s,00101000000%04zu\n", iccid, i);
		esim_buf_append(&csv, line, (size_t)k);
	}
	size_t count = 0;
	assert_esim(ESIM_OK, smdp_import_csv(F.d, type, (const char *)csv.data, csv.len, &count));
	esim_buf_free(&csv);
}

/* Order one profile of type (released) and download it; the metadata the
 * LPA was shown, decoded, in *m; the BPP's '88' segments in *n88. */
static void download_type(const char *type, struct rsp_metadata *m, size_t *n88)
{
	char args[200], iccid[32], mid[64];
	snprintf(args, sizeof args, "order OP1 %s", type);
	order_ok(args, iccid, mid, NULL);
	struct lpa_session s;
	esim_err err = download(&s, mid, NULL);
	if (err != ESIM_OK || !s.pir_success)
		fail_msg("download of %s: %s, %s/%s", type, esim_strerror(err), s.subject,
			 s.reason);
	assert_esim(ESIM_OK, rsp_metadata_decode(s.metadata, s.metadata_len, m));
	struct rsp_bpp_view v;
	assert_esim(ESIM_OK, rsp_bpp_parse(s.bpp, s.bpp_len, &v));
	*n88 = v.n_a1;
	lpa_session_clear(&s);
}

/* add-type --class --ppr --icon --notify: each value reaches the
 * StoreMetadata of a download (and so the eUICC); PNG and JPEG icons get
 * their iconType from their bytes. */
static void test_add_type_options(void **state)
{
	(void)state;
	open_all();
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	write_bytes(data_path("t.der"), upp, upp_len);
	free(upp);
	uint8_t *png = make_png(300), *jpg = make_jpeg(200);
	write_bytes(data_path("i.png"), png, 300);
	write_bytes(data_path("i.jpg"), jpg, 200);
	char args[2000], *o = NULL, *e = NULL;
	snprintf(args, sizeof args,
		 "add-type TESTCLS OP1 '%s' 'Test Op' 'Test profile' --class test --ppr none "
		 "--icon '%s' --notify 'install,delete@notify.op1.example;enable'",
		 data_path("t.der"), data_path("i.png"));
	if (smdp_run(args, &o, &e) != 0)
		fail_msg("%s", e);
	free(o);
	free(e);
	snprintf(args, sizeof args,
		 "add-type OPER OP1 '%s' 'Oper' 'Locked line' --class operational --ppr ppr1,ppr2 "
		 "--icon '%s' --notify none",
		 data_path("t.der"), data_path("i.jpg"));
	if (smdp_run(args, &o, &e) != 0)
		fail_msg("%s", e);
	free(o);
	free(e);
	snprintf(args, sizeof args,
		 "add-type PROV OP1 '%s' 'Boot' 'Provisioning' --class provisioning --ppr ppr2",
		 data_path("t.der"));
	if (smdp_run(args, &o, &e) != 0)
		fail_msg("%s", e);
	free(o);
	free(e);
	import_into("TESTCLS", 101, 101);
	import_into("OPER", 102, 102);
	import_into("PROV", 103, 103);

	struct rsp_metadata m;
	size_t n88 = 0;
	download_type("TESTCLS", &m, &n88);
	assert_true(m.has_class);
	assert_int_equal(m.profile_class, RSP_CLASS_TEST);
	assert_false(m.has_ppr);
	assert_true(m.has_icon_type);
	assert_int_equal(m.icon_type, RSP_ICON_PNG);
	assert_int_equal(m.icon_len, 300);
	assert_memory_equal(m.icon, png, 300);
	assert_int_equal(m.n_notif, 2);
	assert_int_equal(m.notif[0].pmo, RSP_PMO_INSTALL | RSP_PMO_DELETE);
	assert_string_equal(m.notif[0].address, "notify.op1.example");
	assert_int_equal(m.notif[1].pmo, RSP_PMO_ENABLE);
	assert_string_equal(m.notif[1].address, SFX_FQDN);
	assert_int_equal(n88, 1);
	rsp_metadata_free(&m);

	download_type("OPER", &m, &n88);
	assert_int_equal(m.profile_class, RSP_CLASS_OPERATIONAL);
	assert_true(m.has_ppr);
	assert_int_equal(m.ppr, RSP_PPR1 | RSP_PPR2);
	assert_int_equal(m.icon_type, RSP_ICON_JPG);
	assert_int_equal(m.icon_len, 200);
	assert_memory_equal(m.icon, jpg, 200);
	assert_int_equal(m.n_notif, 0); /* "none": no B6 at all */
	rsp_metadata_free(&m);

	download_type("PROV", &m, &n88);
	assert_int_equal(m.profile_class, RSP_CLASS_PROVISIONING);
	assert_int_equal(m.ppr, RSP_PPR2);
	assert_false(m.has_icon_type);
	assert_int_equal(m.n_notif, 1); /* the default: enable, disable, delete to us */
	assert_int_equal(m.notif[0].pmo, RSP_PMO_ALL_LOCAL);
	assert_string_equal(m.notif[0].address, SFX_FQDN);
	rsp_metadata_free(&m);
	free(png);
	free(jpg);
	sfx_close(&F);
}

/* Bad add-type values are refused naming what is wrong, and nothing is
 * stored (the same name then works). */
static void test_add_type_refusals(void **state)
{
	(void)state;
	open_all();
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	write_bytes(data_path("t.der"), upp, upp_len);
	free(upp);
	static const uint8_t gif[32] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0};
	write_bytes(data_path("i.gif"), gif, sizeof gif);
	uint8_t *big = make_png(1025);
	write_bytes(data_path("big.png"), big, 1025);
	free(big);
	write_bytes(data_path("empty.png"), (const uint8_t *)"", 0);
	struct {
		const char *opts, *want;
	} cases[] = {
	    {"--icon 'DIR/i.gif'", "neither PNG nor JPEG (it starts 47 49 46 38"},
	    {"--icon 'DIR/big.png'", "1025 bytes; an icon is 1 to 1024 bytes"},
	    {"--icon 'DIR/empty.png'", "0 bytes; an icon is 1 to 1024 bytes"},
	    {"--icon 'DIR/none.png'", "--icon"},
	    {"--class trial", "--class 'trial': expected test, provisioning or operational"},
	    {"--ppr ppr3", "'ppr3' is not ppr1 or ppr2"},
	    {"--notify 'enable,reboot'", "'reboot' is not an event"},
	    {"--notify 'enable;enable@x.example'", "an event is in two entries"},
	    {"--notify 'enable,enable'", "'enable' listed twice"},
	    {"--notify 'delete@bad address'", "is not an FQDN"},
	    {"--notify '@x.example'", "names no event"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char opts[900], args[2000];
		const char *dir = strstr(cases[i].opts, "DIR/");
		if (dir)
			snprintf(opts, sizeof opts, "%.*s%s%s", (int)(dir - cases[i].opts),
				 cases[i].opts, F.dir, dir + 3);
		else
			snprintf(opts, sizeof opts, "%s", cases[i].opts);
		snprintf(args, sizeof args, "add-type BAD OP1 '%s' SPN NAME %s", data_path("t.der"),
			 opts);
		char *o = NULL, *e = NULL;
		int rc = smdp_run(args, &o, &e);
		if (rc == 0 || !strstr(e, cases[i].want))
			fail_msg("%s: exit %d, stderr '%s'; wanted '%s'", opts, rc, e,
				 cases[i].want);
		free(o);
		free(e);
	}
	/* the library call says the same */
	char why[256];
	struct smdp_profile_type t = {.name = "BAD",
				      .operator_name = "OP1",
				      .upp = gif,
				      .upp_len = sizeof gif,
				      .spn = "s",
				      .profile_name = "n",
				      .profile_class = 2};
	assert_int_not_equal(smdp_add_profile_type_why(F.d, &t, why, sizeof why), ESIM_OK);
	assert_non_null(strstr(why, "not a SAIP profile package"));
	t.upp = NULL;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	t.upp = upp;
	t.upp_len = upp_len;
	t.ppr = 1u << 0; /* pprUpdateControl is not the operator's to set */
	assert_esim(ESIM_E_ARG, smdp_add_profile_type_why(F.d, &t, why, sizeof why));
	assert_non_null(strstr(why, "only PPR1 and PPR2"));
	t.ppr = 0;
	t.profile_class = 3;
	assert_esim(ESIM_E_ARG, smdp_add_profile_type_why(F.d, &t, why, sizeof why));
	assert_non_null(strstr(why, "profile class 3"));
	t.profile_class = 2;
	t.spn = "a string of forty characters, too long!!";
	assert_int_not_equal(smdp_add_profile_type_why(F.d, &t, why, sizeof why), ESIM_OK);
	assert_non_null(strstr(why, "SPN must be at most 32"));
	/* nothing of the refusals stored: BAD is still free */
	t.spn = "s";
	assert_esim(ESIM_OK, smdp_add_profile_type_why(F.d, &t, why, sizeof why));
	free(upp);
	sfx_close(&F);
}

/* An SPN of 32 and a name of 64 characters that take 3 bytes each in
 * UTF-8 ("\u20ac", the euro sign): within SGP.22's limits, so add-type takes
 * them, and the download carries them whole (they are counted in
 * characters, not bytes). */
static void test_type_multibyte_names(void **state)
{
	(void)state;
	open_all();
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	char spn[32 * 3 + 1] = "", name[64 * 3 + 1] = "";
	for (int i = 0; i < 32; i++)
		strcat(spn, "\xe2\x82\xac");
	for (int i = 0; i < 64; i++)
		strcat(name, "\xe2\x82\xac");
	struct smdp_profile_type t = {.name = "EURO",
				      .operator_name = "OP1",
				      .upp = upp,
				      .upp_len = upp_len,
				      .spn = spn,
				      .profile_name = name,
				      .profile_class = 2};
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	import_into("EURO", 301, 301);
	struct rsp_metadata m;
	size_t n88 = 0;
	download_type("EURO", &m, &n88);
	assert_string_equal(m.spn, spn);
	assert_string_equal(m.name, name);
	rsp_metadata_free(&m);
	free(upp);
	sfx_close(&F);
}

/* An eUICC that forbids PPR1 (euicc_config.forbidden_ppr: EUICCInfo2 99):
 * the SM-DP+ refuses to download a PPR1 type to it (8.2.5 / 4.3, digest
 * 6.3 eligibility), and a PPR2 type installs. */
static void test_forbidden_ppr_smdp(void **state)
{
	(void)state;
	sfx_open_smdp(&F, NULL, 0);
	write_conf();
	char p[4][700];
	snprintf(p[0], 700, "%s/nist/euicc.der", F.pki);
	snprintf(p[1], 700, "%s/nist/euicc.key.pem", F.pki);
	snprintf(p[2], 700, "%s/nist/eum.der", F.pki);
	snprintf(p[3], 700, "%s/nist/ci.der", F.pki);
	struct euicc_config ec;
	memset(&ec, 0, sizeof ec);
	ec.db_url = ":memory:";
	ec.identities[0].cert_path = p[0];
	ec.identities[0].key_path = p[1];
	ec.identities[0].eum_path = p[2];
	ec.n_identities = 1;
	ec.ci_paths[0] = p[3];
	ec.n_ci_paths = 1;
	ec.forbidden_ppr = RSP_PPR1;
	assert_esim(ESIM_OK, euicc_open(&ec, &F.e[0]));
	F.drv[0] = (struct lpa_driver){.es10 = sfx_es10,
				       .es10_ctx = F.e[0],
				       .es9 = sfx_es9,
				       .es9_ctx = F.d,
				       .smdp_address = SFX_FQDN};
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	struct smdp_profile_type t = {.name = "LOCK1",
				      .operator_name = "OP1",
				      .upp = upp,
				      .upp_len = upp_len,
				      .spn = "s",
				      .profile_name = "n",
				      .profile_class = 2,
				      .ppr = RSP_PPR1};
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	t.name = "LOCK2";
	t.ppr = RSP_PPR2;
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	free(upp);
	import_into("LOCK1", 401, 401);
	import_into("LOCK2", 402, 402);
	char iccid[32], mid[64];
	order_ok("order OP1 LOCK1", iccid, mid, NULL);
	download_refused(mid, NULL, "8.2.5", "4.3");
	order_ok("order OP1 LOCK2", iccid, mid, NULL);
	download_ok(mid, NULL);
	sfx_close(&F);
}

/* The eUICC's own check: a bound profile package whose StoreMetadata
 * carries a PPR the eUICC forbids ends with an errorResult PIR,
 * storeMetadata (2) / pprNotAllowed (15), and nothing installed; its
 * EUICCInfo2 declares the rule (99 02 06 40: PPR1). */
static void test_forbidden_ppr_euicc(void **state)
{
	(void)state;
	struct harness h;
	memset(&h, 0, sizeof h);
	snprintf(h.dir, sizeof h.dir, "%s", F.dir);
	char bufs[4][700];
	struct euicc_config cfg;
	memset(&cfg, 0, sizeof cfg);
	h_identity(&cfg, F.pki, "nist", bufs);
	cfg.forbidden_ppr = RSP_PPR1;
	h_start_cfg(&h, &cfg);
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&h, "BF2200", &r);
	static const uint8_t rule[] = {0x99, 0x02, 0x06, 0x40};
	bool found = false;
	for (size_t i = 0; i + sizeof rule <= r.len; i++)
		found = found || memcmp(r.data + i, rule, sizeof rule) == 0;
	assert_true(found);
	struct h_smdp d;
	memset(&d, 0, sizeof d);
	h_smdp_from_pki(&d, F.pki, "nist");
	uint8_t *upp = NULL, *meta = NULL;
	size_t upp_len = 0, meta_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	h_metadata(SFX_TEMPLATE, 2, RSP_PPR1, NULL, &meta, &meta_len);
	struct rsp_pir pir;
	h_download(&h, &d, meta, meta_len, upp, upp_len, NULL, &pir);
	assert_false(pir.success);
	assert_int_equal(pir.bpp_command_id, 2);
	assert_int_equal(pir.error_reason, 15);
	rsp_pir_free(&pir);
	h_es10_hex(&h, "BF2D00", &r);
	assert_memory_equal(r.data, "\xBF\x2D\x02\xA0\x00", 5); /* nothing installed */
	esim_buf_free(&r);
	free(upp);
	free(meta);
	h_smdp_free(&d);
	h_stop(&h);
	char db[700];
	snprintf(db, sizeof db, "%s/card.db", F.dir);
	unlink(db);
}

/* ---- end to end on the real programs ------------------------------------------ */

/* GetProfilesInfo for iccid with a tagList, straight to the card. */
static void card_profile(struct lenv *e, const char *iccid, struct rsp_profile_info *out,
			 struct rsp_profile_list *pl)
{
	uint8_t bcd[RSP_ICCID_LEN];
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, bcd));
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF2D);
	der_builder_open(&b, 0xA0);
	der_add_octet_string(&b, 0x5A, bcd, sizeof bcd);
	der_builder_close(&b);
	static const uint8_t tags[] = {0x5A, 0x93, 0x94, 0x95, 0xB6, 0x99};
	der_add_octet_string(&b, 0x5C, tags, sizeof tags);
	der_builder_close(&b);
	uint8_t *req = NULL;
	size_t len = 0;
	assert_esim(ESIM_OK, der_builder_finish(&b, &req, &len));
	apdu_session *s = h_connect_retry(e->sock, 20000);
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(s, req, len, &resp));
	apdu_session_close(s);
	free(req);
	int64_t code = 0;
	assert_esim(ESIM_OK, rsp_get_profiles_parse(resp.data, resp.len, pl, &code));
	esim_buf_free(&resp);
	assert_int_equal(pl->n, 1);
	*out = pl->items[0];
}

/* A type with a 1000-byte PNG icon: its StoreMetadata is over 1008 bytes,
 * so it travels in two '88' segments. Downloaded with `esim` from
 * `esim-smdp serve` onto `esim-euicc`; the card then reports the class,
 * the icon (type and size), PPR1 + PPR2 and the notification
 * configuration, `esim profile list` shows the PPRs and the notification
 * configuration, and the card refuses to disable (PPR1) or delete (PPR2). */
static void test_end_to_end_segments(void **state)
{
	(void)state;
	struct lenv *e = l_setup();
	uint8_t *png = make_png(1000);
	char icon[700], upp_path[700], args[2000];
	snprintf(icon, sizeof icon, "%s/big.png", e->dir);
	snprintf(upp_path, sizeof upp_path, "%s/upp.der", e->dir);
	FILE *f = fopen(icon, "wb");
	assert_int_equal(fwrite(png, 1, 1000, f), 1000);
	fclose(f);
	free(png);
	snprintf(args, sizeof args,
		 "add-type ICON OP '%s' 'Icon Mobile' 'Icon profile' --class test --ppr ppr1,ppr2 "
		 "--icon '%s' --notify 'install,enable,disable,delete@notify.icon.example'",
		 upp_path, icon);
	assert_int_equal(l_smdp_cmd(e, args, NULL), 0);
	char csv[700];
	snprintf(csv, sizeof csv, "%s/icon.csv", e->dir);
	f = fopen(csv, "w");
	char body[32] = "8900012345678900099";
	char iccid[48];
	snprintf(iccid, sizeof iccid, "%s%d", body, rsp_iccid_luhn_digit(body, 19));
	fprintf(f, "%s,001010123456799\n", iccid);
	fclose(f);
	snprintf(args, sizeof args, "import ICON '%s'", csv);
	assert_int_equal(l_smdp_cmd(e, args, NULL), 0);
	char *out = NULL, ac[256];
	assert_int_equal(l_smdp_cmd(e, "order OP ICON", &out), 0);
	assert_int_equal(sscanf(strstr(out, "activation code "), "activation code %255s", ac), 1);
	free(out);
	snprintf(args, sizeof args, "profile download '%s'", ac);
	if (l_esim(e, args) != 0)
		fail_msg("download failed: %s", e->err);

	/* the card's view, asked with a tagList */
	struct rsp_profile_list pl;
	struct rsp_profile_info p;
	card_profile(e, iccid, &p, &pl);
	assert_int_equal(p.profile_class, RSP_CLASS_TEST);
	assert_true(p.has_icon_type);
	assert_int_equal(p.icon_type, RSP_ICON_PNG);
	assert_int_equal(p.icon_len, 1000);
	assert_true(p.has_ppr);
	assert_int_equal(p.ppr, RSP_PPR1 | RSP_PPR2);
	assert_int_equal(p.n_notif, 1);
	assert_int_equal(p.notif[0].pmo, RSP_PMO_INSTALL | RSP_PMO_ALL_LOCAL);
	assert_string_equal(p.notif[0].address, "notify.icon.example");
	rsp_profile_list_free(&pl);
	/* `esim profile list` (no tagList): PPRs and notification configuration */
	json_t *jp = l_find_profile(e, iccid);
	assert_non_null(jp);
	assert_string_equal(json_string_value(json_object_get(jp, "class")), "test");
	assert_int_equal(json_integer_value(json_object_get(jp, "policy_rules")),
			 RSP_PPR1 | RSP_PPR2);
	json_t *na = json_object_get(jp, "notification_addresses");
	assert_int_equal(json_array_size(na), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(na, 0), "address")),
			    "notify.icon.example");
	/* PPR2: not deletable; enabled, PPR1: not disablable (disallowedByPolicy) */
	snprintf(args, sizeof args, "profile delete %s", iccid);
	assert_int_not_equal(l_esim(e, args), 0);
	assert_string_equal(l_error_str(e, "result_name"), "disallowedByPolicy");
	snprintf(args, sizeof args, "profile enable %s", iccid);
	assert_int_equal(l_esim(e, args), 0);
	snprintf(args, sizeof args, "profile disable %s", iccid);
	assert_int_not_equal(l_esim(e, args), 0);
	assert_string_equal(l_error_str(e, "result_name"), "disallowedByPolicy");
	l_teardown(e);
}

/* The same type in process, to count the segments of the BPP itself. */
static void test_icon_spans_two_segments(void **state)
{
	(void)state;
	open_all();
	uint8_t *upp = NULL;
	size_t upp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(SFX_TEMPLATE, &upp, &upp_len));
	uint8_t *png = make_png(1000);
	struct smdp_profile_type t = {.name = "ICON",
				      .operator_name = "OP1",
				      .upp = upp,
				      .upp_len = upp_len,
				      .spn = "Icon Mobile",
				      .profile_name = "Icon profile",
				      .profile_class = RSP_CLASS_TEST,
				      .ppr = RSP_PPR1 | RSP_PPR2,
				      .icon = png,
				      .icon_len = 1000,
				      .notif = "install,enable,disable,delete@notify.icon.example"};
	assert_esim(ESIM_OK, smdp_add_profile_type(F.d, &t));
	import_into("ICON", 201, 201);
	struct rsp_metadata m;
	size_t n88 = 0;
	download_type("ICON", &m, &n88);
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &enc, &enc_len));
	assert_true(enc_len > RSP_META_SEGMENT_MAX);
	assert_int_equal(n88, 2);
	assert_int_equal(m.icon_len, 1000);
	free(enc);
	rsp_metadata_free(&m);
	free(png);
	free(upp);
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
	    cmocka_unit_test(test_order_matching_id),
	    cmocka_unit_test(test_order_not_released),
	    cmocka_unit_test(test_order_confirmation_code),
	    cmocka_unit_test(test_order_smds_address),
	    cmocka_unit_test(test_order_expires),
	    cmocka_unit_test(test_add_type_options),
	    cmocka_unit_test(test_add_type_refusals),
	    cmocka_unit_test(test_icon_spans_two_segments),
	    cmocka_unit_test(test_type_multibyte_names),
	    cmocka_unit_test(test_forbidden_ppr_smdp),
	    cmocka_unit_test(test_forbidden_ppr_euicc),
	    cmocka_unit_test(test_end_to_end_segments),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
