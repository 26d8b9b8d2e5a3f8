/*
 * How many command APDUs a profile download costs, counted by the card.
 *
 * The card runs in this process: the real eUICC (euicc_open) behind the
 * real APDU front, served on a unix socket (euicc_serve_listener) or as
 * the card in a private pcscd's vsmartcard-vpcd reader (euicc_serve_vpcd,
 * tests/common/pcscd_helper.c). The SM-DP+ is the real esim-smdp on
 * loopback and the LPA the real `esim profile download`, run as a child.
 * The count is the front's own counter (euicc_apdu_front_counters),
 * cross-checked with its trace hook: what the card received, not what the
 * LPA says about itself.
 *
 * Bounds (issue 15): at most 40 command APDUs over the socket and over
 * PC/SC (extended length: one STORE DATA per ES10 command; through pcscd
 * the vpcd reader's ATR offers T=1, so the LPA's pcsc driver carries
 * them), where 139 were sent before, and 72 over PC/SC with T=0 and
 * 255-byte short blocks. Also: a card that refuses blocks longer than it
 * accepts (6700) still gets the profile installed, over PC/SC too, where
 * the LPA falls back from extended to short blocks.
 *
 * Our own test profile (rsp_saip_make_test_upp) always runs; the TS.48
 * profile TS48V2-SAIP2-1-BERTLV-UNIQUE needs ../shared (skipped, exit 77,
 * when absent; a failure under CI=true). PC/SC cases need pcscd and the
 * vpcd driver (same rule).
 */
#include <sys/time.h>

#include "pcscd_helper.h"
#include "test_lpa_fixture.h"

enum mode { M_SOCKET, M_PCSC };

struct tally {
	unsigned long cmds, store_data, ext_store_data, get_response, bytes_in, bytes_out;
};

struct tcard {
	euicc *e;
	euicc_apdu_front *front;
	int stop[2];
	pthread_t thr;
	int listen_fd;
	char spec[700];
	struct pcscd_env env;
	bool pcsc;
	bool short_only;
	struct tally t; /* from the trace hook */
};

static void trace_count(void *ctx, bool command, const uint8_t *apdu, size_t len)
{
	struct tally *t = ctx;
	if (!command) {
		t->bytes_out += len;
		return;
	}
	t->cmds++;
	t->bytes_in += len;
	if (len >= 2 && apdu[1] == 0xE2)
		t->store_data++;
	/* extended Lc (00 xx xx, ISO 7816-4 5.1) */
	if (len >= 7 && apdu[1] == 0xE2 && apdu[4] == 0x00)
		t->ext_store_data++;
	if (len >= 2 && apdu[1] == 0xC0)
		t->get_response++;
}

static void *serve(void *arg)
{
	struct tcard *c = arg;
	struct euicc_serve_opts o = {.stop_fd = c->stop[0], .short_apdus = c->short_only};
	if (c->pcsc)
		euicc_serve_vpcd("127.0.0.1", c->env.port, c->front, &o);
	else
		euicc_serve_listener(c->listen_fd, c->front, &o);
	return NULL;
}

struct setup {
	struct lenv e;
	struct tcard card;
	char cardpki[4][700];
};

/* The SM-DP+ (inventory from upp) and the card; false when PC/SC is not
 * available here (the caller skips). */
static bool start(struct setup *S, enum mode m, const uint8_t *upp, size_t upp_len,
		  size_t max_block, bool short_atr)
{
	struct lenv *e = &S->e;
	memset(S, 0, sizeof *S);
	e->dir = test_mkdtemp();
	snprintf(e->pki, sizeof e->pki, "%s/pki", e->dir);
	h_pki_init(e->pki, H_EID);
	snprintf(e->ci, sizeof e->ci, "%s/nist/ci.pem", e->pki);
	snprintf(e->sock, sizeof e->sock, "%s/card.sock", e->dir);
	e->port = l_free_port();
	snprintf(e->addr, sizeof e->addr, "127.0.0.1:%u", e->port);
	snprintf(e->conf, sizeof e->conf, "%s/smdp.conf", e->dir);
	FILE *f = fopen(e->conf, "w");
	assert_non_null(f);
	const char *p = e->pki;
	fprintf(f,
		"db = sqlite:%s/smdp.db\nfqdn = %s\n"
		"dpauth-cert-nist = %s/nist/dpauth.der\ndpauth-key-nist = %s/nist/dpauth.key.pem\n"
		"dppb-cert-nist = %s/nist/dppb.der\ndppb-key-nist = %s/nist/dppb.key.pem\n"
		"ci = %s/nist/ci.der\nlisten-nist = %s\n"
		"tls-cert-nist = %s/nist/dptls.pem\ntls-key-nist = %s/nist/dptls.key.pem\n",
		e->dir, e->addr, p, p, p, p, p, e->addr, p, p);
	fclose(f);
	char path[700], cmd[1500];
	snprintf(path, sizeof path, "%s/upp.der", e->dir);
	f = fopen(path, "wb");
	assert_int_equal(fwrite(upp, 1, upp_len, f), upp_len);
	fclose(f);
	snprintf(cmd, sizeof cmd, "add-operator OP '%s/nist/operator.der'", p);
	assert_int_equal(l_smdp_cmd(e, cmd, NULL), 0);
	snprintf(cmd, sizeof cmd, "add-type T1 OP '%s' 'Test SPN' 'Test Profile'", path);
	assert_int_equal(l_smdp_cmd(e, cmd, NULL), 0);
	snprintf(path, sizeof path, "%s/profiles.csv", e->dir);
	f = fopen(path, "w");
	for (int i = 0; i < 4; i++) {
		char body[20];
		snprintf(body, sizeof body, "89000123456789000%02d", i);
		fprintf(f, "%s%d,0010101234567%02d\n", body, rsp_iccid_luhn_digit(body, 19), i);
	}
	fclose(f);
	snprintf(cmd, sizeof cmd, "import T1 '%s'", path);
	assert_int_equal(l_smdp_cmd(e, cmd, NULL), 0);

	struct tcard *c = &S->card;
	c->listen_fd = -1;
	c->pcsc = m == M_PCSC;
	if (c->pcsc) {
		int r = pcscd_start(&c->env);
		if (r == TEST_SKIP_CODE) {
			pcscd_stop(&c->env);
			return false;
		}
		assert_int_equal(r, 0);
	}
	l_start_smdp(e);
	struct euicc_config cfg = {0};
	char db[700];
	snprintf(db, sizeof db, "%s/card.db", e->dir);
	cfg.db_url = db;
	h_identity(&cfg, e->pki, "nist", S->cardpki);
	assert_esim(ESIM_OK, euicc_open(&cfg, &c->e));
	struct euicc_apdu_front_cfg fc = {
	    .es10 = euicc_front_es10,
	    .es10_ctx = c->e,
	    .on_reset = euicc_front_reset,
	    .trace = trace_count,
	    .trace_ctx = &c->t,
	    .max_block = max_block,
	};
	c->short_only = short_atr;
	assert_esim(ESIM_OK, euicc_apdu_front_new(&fc, &c->front));
	assert_int_equal(pipe(c->stop), 0);
	if (!c->pcsc) {
		snprintf(c->spec, sizeof c->spec, "unix:%s", e->sock);
		assert_esim(ESIM_OK, euicc_socket_listen(c->spec, &c->listen_fd));
	}
	assert_int_equal(pthread_create(&c->thr, NULL, serve, c), 0);
	if (c->pcsc)
		assert_int_equal(pcscd_wait_card(&c->env, 20000), 0);
	return true;
}

static void stop(struct setup *S)
{
	struct tcard *c = &S->card;
	assert_int_equal(write(c->stop[1], "x", 1), 1);
	pthread_join(c->thr, NULL);
	close(c->stop[0]);
	close(c->stop[1]);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->pcsc)
		pcscd_stop(&c->env);
	euicc_apdu_front_free(c->front);
	euicc_close(c->e);
	l_stop_smdp(&S->e);
	test_rm_rf(S->e.dir);
	free(S->e.dir);
}

static long long now_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* esim ARGS against the card; exit status, stdout in *out (may be NULL). */
static int run_esim(struct setup *S, const char *args, char **out)
{
	char cmd[4000], dev[800];
	if (S->card.pcsc)
		snprintf(dev, sizeof dev, "--reader '%s'", S->card.env.reader);
	else
		snprintf(dev, sizeof dev, "--socket '%s'", S->card.spec);
	snprintf(cmd, sizeof cmd, "'%s/esim' %s %s --ci '%s' --json 2>>'%s/esim.err'",
		 test_bin_dir(), args, dev, S->e.ci, S->e.dir);
	return l_sh(cmd, out);
}

/* One download, checked to be installed: what the card counted; the
 * extended STORE DATA commands it received in *ext. */
static struct euicc_apdu_counters download(struct setup *S, const char *label, unsigned long *ext)
{
	char iccid[32], ac[256], args[400], *out = NULL;
	l_order(&S->e, NULL, iccid, ac);
	struct euicc_apdu_counters before, after;
	euicc_apdu_front_counters(S->card.front, &before);
	struct tally t0 = S->card.t;
	snprintf(args, sizeof args, "profile download '%s'", ac);
	long long t_start = now_us();
	int rc = run_esim(S, args, NULL);
	long long took = now_us() - t_start;
	euicc_apdu_front_counters(S->card.front, &after);
	struct tally t1 = S->card.t;
	unsigned long n = t1.cmds - t0.cmds;
	*ext = t1.ext_store_data - t0.ext_store_data;
	printf("# %s: %lu command APDUs (%lu STORE DATA, %lu of them extended, %lu GET "
	       "RESPONSE), %lu bytes sent, %lu bytes received, %lld ms\n",
	       label, n, t1.store_data - t0.store_data, *ext, t1.get_response - t0.get_response,
	       t1.bytes_in - t0.bytes_in, t1.bytes_out - t0.bytes_out, took / 1000);
	if (rc != 0) {
		char errf[700];
		snprintf(errf, sizeof errf, "%s/esim.err", S->e.dir);
		FILE *f = fopen(errf, "r");
		char buf[4000] = "";
		if (f != NULL) {
			buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
			fclose(f);
		}
		fail_msg("%s: download failed (%d): %s", label, rc, buf);
	}
	/* the front's own counter agrees with what passed its trace hook */
	assert_int_equal(after.commands - before.commands, n);
	assert_int_equal(after.command_bytes - before.command_bytes, t1.bytes_in - t0.bytes_in);
	assert_int_equal(after.response_bytes - before.response_bytes, t1.bytes_out - t0.bytes_out);
	assert_int_equal(run_esim(S, "profile list", &out), 0);
	assert_non_null(strstr(out, iccid));
	free(out);
	struct euicc_apdu_counters d = {
	    .commands = after.commands - before.commands,
	    .store_data = after.store_data - before.store_data,
	    .get_response = after.get_response - before.get_response,
	    .wrong_length = after.wrong_length - before.wrong_length,
	};
	return d;
}

static uint8_t *own_upp(size_t *len)
{
	uint8_t *upp = NULL;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("89000123456789000010", &upp, len));
	return upp;
}

static uint8_t *ts48_upp(size_t *len)
{
	char path[700];
	snprintf(path, sizeof path, "%s/ts48/TS48V2-SAIP2-1-BERTLV-UNIQUE.der",
		 test_shared_testdata());
	return test_read(path, len);
}

static const char *pcsc_missing; /* why PC/SC cases were skipped */
static char pcsc_why[300];

static void count_case(enum mode m, bool ts48, size_t max_block, bool short_atr,
		       unsigned long bound, const char *label)
{
	size_t len;
	uint8_t *upp = ts48 ? ts48_upp(&len) : own_upp(&len);
	struct setup *S = calloc(1, sizeof *S);
	assert_non_null(S);
	if (!start(S, m, upp, len, max_block, short_atr)) {
		snprintf(pcsc_why, sizeof pcsc_why, "%s", S->card.env.why);
		pcsc_missing = pcsc_why;
		free(upp);
		free(S);
		skip();
	}
	free(upp);
	unsigned long ext = 0;
	struct euicc_apdu_counters n = download(S, label, &ext);
	stop(S);
	free(S);
	assert_true(n.commands > 0);
	if (n.commands > bound)
		fail_msg("%s: %lu command APDUs, more than %lu", label, (unsigned long)n.commands,
			 bound);
	/* a card declaring extended length gets extended STORE DATA (at
	 * least the first, refused by a small card), one without none */
	if (short_atr)
		assert_int_equal(ext, 0);
	else if (ext == 0)
		fail_msg("%s: no extended STORE DATA, though the card declares extended length",
			 label);
	/* a small card refused the first long blocks: the fallback ran */
	if (max_block > 0)
		assert_true(n.wrong_length > 0);
	else
		assert_int_equal(n.wrong_length, 0);
}

static void test_own_socket(void **state)
{
	(void)state;
	count_case(M_SOCKET, false, 0, false, 40, "own profile, socket");
}

/* A card that refuses STORE DATA blocks over 200 bytes with 6700 (while
 * its ATR declares extended length): the LPA falls back from extended to
 * 255-byte to 120-byte blocks and the profile still installs. */
static void test_own_socket_small_card(void **state)
{
	(void)state;
	count_case(M_SOCKET, false, 200, false, 80, "own profile, socket, card takes <= 200 bytes");
}

static void test_own_pcsc(void **state)
{
	(void)state;
	count_case(M_PCSC, false, 0, false, 40, "own profile, PC/SC");
}

static void test_ts48_socket(void **state)
{
	(void)state;
	count_case(M_SOCKET, true, 0, false, 40, "TS.48, socket");
}

/* The same with a short-APDU ATR: 255-byte blocks, then 120. */
static void test_ts48_socket_small_card(void **state)
{
	(void)state;
	count_case(M_SOCKET, true, 200, true, 160, "TS.48, socket, card takes <= 200 bytes");
}

static void test_ts48_pcsc(void **state)
{
	(void)state;
	count_case(M_PCSC, true, 0, false, 40, "TS.48, PC/SC");
}

/* Through pcscd, a card that declares extended length but refuses STORE
 * DATA blocks over 200 bytes with 6700 (esim-euicc --max-block 200 with
 * the extended ATR): the LPA's first extended block is refused, it goes
 * on in 255-byte then 120-byte blocks and the profile installs. */
static void test_ts48_pcsc_small_card(void **state)
{
	(void)state;
	count_case(M_PCSC, true, 200, false, 160, "TS.48, PC/SC, card takes <= 200 bytes");
}

/* The same card with the short vpcd ATR (what esim-euicc --vpcd
 * --max-block 200 presents): short blocks from the start. */
static void test_ts48_pcsc_small_card_short_atr(void **state)
{
	(void)state;
	count_case(M_PCSC, true, 200, true, 160,
		   "TS.48, PC/SC, short ATR, card takes <= 200 bytes");
}

int main(void)
{
	const struct CMUnitTest own[] = {
	    cmocka_unit_test(test_own_socket),
	    cmocka_unit_test(test_own_socket_small_card),
	    cmocka_unit_test(test_own_pcsc),
	};
	const struct CMUnitTest ts48[] = {
	    cmocka_unit_test(test_ts48_socket),
	    cmocka_unit_test(test_ts48_socket_small_card),
	    cmocka_unit_test(test_ts48_pcsc),
	    cmocka_unit_test(test_ts48_pcsc_small_card),
	    cmocka_unit_test(test_ts48_pcsc_small_card_short_atr),
	};
	int rc = cmocka_run_group_tests_name("own test profile", own, NULL, NULL);
	if (rc != 0)
		return rc;
	if (test_shared_testdata() == NULL)
		return test_component_missing_status(
		    "../shared/testdata", "the TS.48 download counts need ../shared/testdata/ts48");
	rc = cmocka_run_group_tests_name("TS.48", ts48, NULL, NULL);
	if (rc == 0 && pcsc_missing != NULL)
		return test_component_missing_status("pcscd", pcsc_missing);
	return rc;
}
