/*
 * Profile downloads into the virtual eUICC, through APDUs, with the test
 * playing the SM-DP+ with the rsp builders (serverSigned1, smdpSigned2, the
 * BPP from a synthetic SAIP package): install, GetProfilesInfo with its
 * search criteria and tag lists, SetNickname, enable, disable, delete, and
 * every notification verified as the SM-DP+ verifies it (PIR and
 * OtherSignedNotification, chain to the CI), with increasing seqNumbers.
 * Then the failures of LoadBoundProfilePackage, each with its PIR
 * errorResult, nothing installed and the PIR queued: a tampered segment
 * (scp03tSecurityError 8), another transaction in BF23 (3), an ICCID
 * already installed (9), a header ICCID other than the metadata's (13), not
 * enough memory (10); the profile policy rules and state rules of ES10c
 * (2, 3), eUICCMemoryReset, the ReplaceSessionKeys path, the bounded
 * notification queue, and persistence across a restart.
 */
#include "euicc_harness.h"

#define ICCID_A	   "89000123456789012341"
#define ICCID_B	   "8949449999999990031"
#define ICCID_C	   "89000123456789012358"
#define NOTIF_ADDR "notify.smdp.example.com"

static char top_dir[400];
static char pki_dir[512];

static int group_setup(void **state)
{
	(void)state;
	char *d = test_mkdtemp();
	snprintf(top_dir, sizeof top_dir, "%s", d);
	free(d);
	snprintf(pki_dir, sizeof pki_dir, "%s/pki", top_dir);
	h_pki_init(pki_dir, H_EID);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_rm_rf(top_dir);
	return 0;
}

struct fixture {
	struct harness h;
	struct euicc_config cfg;
	char paths[2][4][700];
	struct h_smdp dp;
};

static int setup_cfg(void **state, uint64_t capacity, size_t max_notifs)
{
	struct fixture *f = calloc(1, sizeof *f);
	char *d = test_mkdtemp();
	snprintf(f->h.dir, sizeof f->h.dir, "%s", d);
	free(d);
	h_identity(&f->cfg, pki_dir, "nist", f->paths[0]);
	h_identity(&f->cfg, pki_dir, "brp", f->paths[1]);
	f->cfg.capacity = capacity;
	f->cfg.max_notifications = max_notifs;
	h_start_cfg(&f->h, &f->cfg);
	h_smdp_from_pki(&f->dp, pki_dir, "nist");
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_cfg(state, 0, 0);
}

static int setup_small(void **state)
{
	return setup_cfg(state, 3000, 3);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	h_smdp_free(&f->dp);
	if (f->h.e != NULL)
		h_stop(&f->h);
	test_rm_rf(f->h.dir);
	free(f);
	return 0;
}

/* GetProfilesInfo for one ICCID: -1 when absent, else its state. */
static int64_t profile_state(struct harness *h, const char *iccid)
{
	uint8_t bcd[10], *cmd = NULL;
	size_t len;
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, bcd));
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF2D);
	der_builder_open(&b, 0xA0);
	der_add_octet_string(&b, 0x5A, bcd, 10);
	der_builder_close(&b);
	der_builder_close(&b);
	h_finish(&b, &cmd, &len);
	esim_buf r = ESIM_BUF_INIT;
	h_es10(h, cmd, len, &r);
	free(cmd);
	der_cursor c, v, list, info;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF2D, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	int64_t state = -1;
	if (!der_cursor_empty(&list)) {
		assert_esim(ESIM_OK, der_get_element(&list, 0xE3, &info));
		assert_true(der_cursor_empty(&list));
		der_element el;
		esim_err err;
		while (der_next_child(&info, &el, &err))
			if (el.tag == 0x9F70)
				assert_esim(ESIM_OK, der_value_int64(el.value, &state));
	}
	esim_buf_free(&r);
	return state;
}

struct notif_list {
	size_t n;
	uint64_t seq[32];
	enum rsp_event ev[32];
};

static void list_notifs(struct harness *h, struct notif_list *out)
{
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(h, "BF2800", &r);
	der_cursor c, v, list;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF28, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	memset(out, 0, sizeof *out);
	der_element el;
	esim_err err;
	while (der_next_child(&list, &el, &err)) {
		struct rsp_notif_metadata m;
		assert_esim(ESIM_OK, rsp_notif_metadata_decode(el.tlv.p, el.tlv.len, &m));
		assert_true(out->n < 32);
		out->seq[out->n] = m.seq;
		out->ev[out->n] = m.event;
		out->n++;
		rsp_notif_metadata_free(&m);
	}
	assert_esim(ESIM_OK, err);
	esim_buf_free(&r);
}

/* Retrieve every pending notification and verify each as the SM-DP+ does;
 * return the events in order, and check seqNumbers increase. */
static void verify_all_notifs(struct fixture *f, enum rsp_event *ev, size_t *n, const char *iccid)
{
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2B00", &r);
	der_cursor c, v, list;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF2B, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	der_element el;
	esim_err err;
	uint64_t last = 0;
	uint8_t bcd[10];
	assert_esim(ESIM_OK, rsp_iccid_to_bcd(iccid, bcd));
	*n = 0;
	while (der_next_child(&list, &el, &err)) {
		enum rsp_pending_kind kind;
		uint64_t seq;
		assert_esim(ESIM_OK, rsp_pending_kind(el.tlv.p, el.tlv.len, &kind));
		if (kind == RSP_PENDING_PIR) {
			struct rsp_pir pir;
			assert_esim(ESIM_OK, rsp_pir_verify(el.tlv.p, el.tlv.len, f->dp.euicc_pub,
							    f->dp.oid, &pir));
			assert_int_equal(pir.meta.event, RSP_EVENT_INSTALL);
			assert_string_equal(pir.meta.address, f->dp.address);
			seq = pir.meta.seq;
			ev[(*n)++] = RSP_EVENT_INSTALL;
			rsp_pir_free(&pir);
		} else {
			struct rsp_notif_metadata m;
			char eid[RSP_EID_DIGITS + 1];
			assert_esim(ESIM_OK, rsp_other_notif_verify(el.tlv.p, el.tlv.len,
								    f->dp.trust, NULL, &m, eid));
			assert_string_equal(eid, H_EID);
			assert_string_equal(m.address, NOTIF_ADDR);
			assert_true(m.has_iccid);
			assert_memory_equal(m.iccid, bcd, 10);
			seq = m.seq;
			ev[(*n)++] = m.event;
			rsp_notif_metadata_free(&m);
		}
		assert_true(seq > last);
		last = seq;
	}
	assert_esim(ESIM_OK, err);
	esim_buf_free(&r);
}

static void test_full_lifecycle(void **state)
{
	struct fixture *f = *state;
	uint8_t *upp = NULL, *meta = NULL;
	size_t upp_len, meta_len;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(ICCID_A, &upp, &upp_len));
	h_metadata(ICCID_A, -1, 0, NOTIF_ADDR, &meta, &meta_len);
	struct rsp_pir pir;
	h_download(&f->h, &f->dp, meta, meta_len, upp, upp_len, NULL, &pir);
	assert_true(pir.success);
	assert_int_equal(pir.aid_len, 16);
	assert_memory_equal(pir.aid,
			    "\xA0\x00\x00\x05\x59\x10\x10\xFF\xFF\xFF\xFF\x89\x00\x00\x10\x00", 16);
	assert_true(pir.meta.has_iccid);
	rsp_pir_free(&pir);

	/* GetProfilesInfo: disabled, with the metadata as given */
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2D00", &r);
	der_cursor c, v, list, info;
	der_span s;
	int64_t x;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF2D, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	assert_esim(ESIM_OK, der_get_element(&list, 0xE3, &info));
	assert_true(der_cursor_empty(&list));
	assert_esim(ESIM_OK, der_get_octet_string(&info, 0x5A, &s));
	assert_memory_equal(s.p, "\x98\x00\x10\x32\x54\x76\x98\x10\x32\x14", 10);
	assert_esim(ESIM_OK, der_get_octet_string(&info, 0x4F, &s));
	assert_int_equal(s.len, 16);
	assert_esim(ESIM_OK, der_get_int64(&info, 0x9F70, &x));
	assert_int_equal(x, 0);
	assert_esim(ESIM_OK, der_get_utf8(&info, 0x91, &s));
	assert_memory_equal(s.p, "Test Operator", s.len);
	assert_esim(ESIM_OK, der_get_utf8(&info, 0x92, &s));
	assert_memory_equal(s.p, "Test Profile", s.len);
	assert_esim(ESIM_OK, der_get_int64(&info, 0x95, &x));
	assert_int_equal(x, 2); /* operational by default */
	/* then the notification configuration (B6) and policy rules (99) when
	 * the metadata has them: this metadata has B6, no PPRs */
	der_cursor nc;
	assert_esim(ESIM_OK, der_get_element(&info, 0xB6, &nc));
	assert_true(der_cursor_empty(&info));

	/* tag list: only what is asked, in ProfileInfo order */
	h_es10_hex(&f->h, "BF2D065C049F70B65A", &r);
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF2D, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	assert_esim(ESIM_OK, der_get_element(&list, 0xE3, &info));
	assert_esim(ESIM_OK, der_get_octet_string(&info, 0x5A, &s));
	assert_esim(ESIM_OK, der_get_int64(&info, 0x9F70, &x));
	der_cursor b6;
	assert_esim(ESIM_OK, der_get_element(&info, 0xB6, &b6));
	assert_true(der_cursor_empty(&info));
	size_t n;
	/* search by class (operational) and by AID, and a miss by class */
	h_es10_hex(&f->h, "BF2D05A003950102", &r);
	assert_true(r.len > 10);
	h_es10_hex(&f->h, "BF2D05A003950100", &r);
	assert_memory_equal(r.data, "\xBF\x2D\x02\xA0\x00", 5);
	h_es10_hex(&f->h,
		   "BF2D14A0124F"
		   "10A0000005591010FFFFFFFF8900001000",
		   &r);
	assert_true(r.len > 10);

	/* nickname */
	h_es10_hex(&f->h, "BF29155A0A9800103254769810321490074D79206C696E65", &r);
	assert_int_equal(h_result(&r, 0xBF29), 0);
	h_es10_hex(&f->h, "BF2D035C0190", &r);
	assert_memory_equal(r.data + 7, "\x90\x07My line", 9);

	/* enable, disable, delete */
	assert_int_equal(h_profile_op(&f->h, 0xBF31, ICCID_A), 0);
	assert_int_equal(profile_state(&f->h, ICCID_A), 1);
	assert_int_equal(h_profile_op(&f->h, 0xBF32, ICCID_A), 0);
	assert_int_equal(profile_state(&f->h, ICCID_A), 0);
	assert_int_equal(h_profile_op(&f->h, 0xBF33, ICCID_A), 0);
	assert_int_equal(profile_state(&f->h, ICCID_A), -1);

	/* four notifications, each verified, in order */
	enum rsp_event ev[8];
	verify_all_notifs(f, ev, &n, ICCID_A);
	assert_int_equal(n, 4);
	assert_int_equal(ev[0], RSP_EVENT_INSTALL);
	assert_int_equal(ev[1], RSP_EVENT_ENABLE);
	assert_int_equal(ev[2], RSP_EVENT_DISABLE);
	assert_int_equal(ev[3], RSP_EVENT_DELETE);
	/* ListNotification with a PMO filter, RetrieveNotificationsList by
	 * seqNumber and by PMO */
	struct notif_list nl;
	list_notifs(&f->h, &nl);
	assert_int_equal(nl.n, 4);
	h_es10_hex(&f->h, "BF280481020640", &r); /* enable only */
	assert_true(r.len > 5);
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF28, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	der_element el;
	assert_esim(ESIM_OK, der_get_any(&list, &el));
	assert_true(der_cursor_empty(&list));
	uint8_t cmd[8] = {0xBF, 0x2B, 0x05, 0xA0, 0x03, 0x80, 0x01, (uint8_t)nl.seq[2]};
	assert_true(nl.seq[2] < 128);
	h_es10(&f->h, cmd, sizeof cmd, &r);
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF2B, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	assert_esim(ESIM_OK, der_get_tlv(&list, 0x30, &el));
	assert_true(der_cursor_empty(&list));
	h_es10_hex(&f->h, "BF2B06A00481020780", &r); /* install only: the PIR */
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF2B, &v));
	assert_esim(ESIM_OK, der_get_element(&v, 0xA0, &list));
	assert_esim(ESIM_OK, der_get_tlv(&list, 0xBF37, &el));
	assert_true(der_cursor_empty(&list));

	/* removing them one by one */
	for (size_t i = 0; i < nl.n; i++) {
		uint8_t rm[6] = {0xBF, 0x30, 0x03, 0x80, 0x01, (uint8_t)nl.seq[i]};
		h_es10(&f->h, rm, sizeof rm, &r);
		assert_int_equal(h_result(&r, 0xBF30), 0);
		h_es10(&f->h, rm, sizeof rm, &r);
		assert_int_equal(h_result(&r, 0xBF30), 1);
	}
	list_notifs(&f->h, &nl);
	assert_int_equal(nl.n, 0);
	esim_buf_free(&r);
	free(upp);
	free(meta);
}

static void test_state_rules_and_policies(void **state)
{
	struct fixture *f = *state;
	h_install(&f->h, &f->dp, ICCID_A, 2, 0, NOTIF_ADDR);
	h_install(&f->h, &f->dp, ICCID_B, 2, 1u << 2 /* PPR2 */, NULL);
	h_install(&f->h, &f->dp, ICCID_C, 2, 1u << 1 /* PPR1 */, NULL);
	struct notif_list before, after;

	assert_int_equal(h_profile_op(&f->h, 0xBF31, ICCID_A), 0);
	list_notifs(&f->h, &before);
	/* enabled: cannot be enabled again or deleted */
	assert_int_equal(h_profile_op(&f->h, 0xBF31, ICCID_A), 2);
	assert_int_equal(h_profile_op(&f->h, 0xBF33, ICCID_A), 2);
	/* disabled: cannot be disabled */
	assert_int_equal(h_profile_op(&f->h, 0xBF32, ICCID_B), 2);
	/* PPR2: cannot be deleted */
	assert_int_equal(h_profile_op(&f->h, 0xBF33, ICCID_B), 3);
	/* unknown ICCID */
	assert_int_equal(h_profile_op(&f->h, 0xBF31, "89000123456789012366"), 1);
	assert_int_equal(h_profile_op(&f->h, 0xBF33, "89000123456789012366"), 1);
	list_notifs(&f->h, &after);
	assert_int_equal(after.n, before.n); /* no notification for refusals */
	assert_int_equal(profile_state(&f->h, ICCID_A), 1);
	assert_int_equal(profile_state(&f->h, ICCID_B), 0);

	/* enabling B disables A: A's disable is notified (configured), B has
	 * no notificationConfigurationInfo */
	assert_int_equal(h_profile_op(&f->h, 0xBF31, ICCID_B), 0);
	assert_int_equal(profile_state(&f->h, ICCID_A), 0);
	assert_int_equal(profile_state(&f->h, ICCID_B), 1);
	list_notifs(&f->h, &after);
	assert_int_equal(after.n, before.n + 1);
	assert_int_equal(after.ev[after.n - 1], RSP_EVENT_DISABLE);
	/* PPR1 on C: once enabled, neither disable nor switching away */
	assert_int_equal(h_profile_op(&f->h, 0xBF31, ICCID_C), 0);
	assert_int_equal(h_profile_op(&f->h, 0xBF32, ICCID_C), 3);
	assert_int_equal(h_profile_op(&f->h, 0xBF31, ICCID_A), 3);
	assert_int_equal(profile_state(&f->h, ICCID_C), 1);
	assert_int_equal(profile_state(&f->h, ICCID_A), 0);

	/* the state survives a restart */
	h_stop(&f->h);
	h_start_cfg(&f->h, &f->cfg);
	assert_int_equal(profile_state(&f->h, ICCID_C), 1);
	assert_int_equal(profile_state(&f->h, ICCID_B), 0);
	list_notifs(&f->h, &before);
	assert_int_equal(before.n, after.n);

	/* eUICCMemoryReset of operational profiles deletes them all, enabled
	 * or not, policy rules notwithstanding */
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF340482020780", &r);
	assert_int_equal(h_result(&r, 0xBF34), 0);
	h_es10_hex(&f->h, "BF2D00", &r);
	assert_memory_equal(r.data, "\xBF\x2D\x02\xA0\x00", 5);
	h_es10_hex(&f->h, "BF340482020780", &r);
	assert_int_equal(h_result(&r, 0xBF34), 1);
	/* AIDs are never reused: the next install gets a fresh one */
	uint8_t *upp = NULL, *meta = NULL;
	size_t ul, ml;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(ICCID_A, &upp, &ul));
	h_metadata(ICCID_A, 0, 0, NULL, &meta, &ml);
	struct rsp_pir pir;
	h_download(&f->h, &f->dp, meta, ml, upp, ul, NULL, &pir);
	assert_true(pir.success);
	assert_int_equal(pir.aid[14], 0x13); /* the fourth ISD-P ever */
	rsp_pir_free(&pir);
	/* a test profile goes with "field-loaded test profiles" */
	h_es10_hex(&f->h, "BF340482020640", &r);
	assert_int_equal(h_result(&r, 0xBF34), 0);
	assert_int_equal(profile_state(&f->h, ICCID_A), -1);
	esim_buf_free(&r);
	free(upp);
	free(meta);
}

/* ---- LoadBoundProfilePackage failures ---- */

struct snapshot {
	esim_buf profiles;
	struct notif_list notifs;
};

static void take(struct harness *h, struct snapshot *s)
{
	s->profiles = (esim_buf)ESIM_BUF_INIT;
	h_es10_hex(h, "BF2D00", &s->profiles);
	list_notifs(h, &s->notifs);
}

/* Profiles unchanged, exactly one more notification: an install one. */
static void assert_failed_install(struct harness *h, struct snapshot *s)
{
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(h, "BF2D00", &r);
	h_bytes_equal(&r, &s->profiles);
	struct notif_list now;
	list_notifs(h, &now);
	assert_int_equal(now.n, s->notifs.n + 1);
	assert_int_equal(now.ev[now.n - 1], RSP_EVENT_INSTALL);
	if (s->notifs.n > 0)
		assert_true(now.seq[now.n - 1] > s->notifs.seq[s->notifs.n - 1]);
	esim_buf_free(&r);
	esim_buf_free(&s->profiles);
}

/* A valid package of about 3 KB: the test package with a nonStandard PE
 * (A9) of filler inserted before the end element, so that it needs several
 * 86 segments. *out: caller frees. */
static void make_big_upp(const char *iccid, uint8_t **out, size_t *len)
{
	uint8_t *upp = NULL;
	size_t ul;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(iccid, &upp, &ul));
	/* the end element is the last TLV: AA 07 A0 05 80 00 81 01 xx */
	der_cursor c;
	der_element el, last = {0};
	der_cursor_init(&c, upp, ul);
	while (!der_cursor_empty(&c)) {
		assert_esim(ESIM_OK, der_get_any(&c, &el));
		last = el;
	}
	assert_int_equal(last.tag, 0xAA);
	size_t head = (size_t)(last.tlv.p - upp);
	der_builder b;
	der_builder_init(&b);
	der_add_raw(&b, upp, head);
	der_builder_open(&b, 0xA9);
	der_builder_open(&b, 0xA0);
	der_add_int64(&b, 0x81, 77);
	der_builder_close(&b);
	uint8_t filler[3000];
	for (size_t i = 0; i < sizeof filler; i++)
		filler[i] = (uint8_t)(i * 7);
	der_add_octet_string(&b, 0x04, filler, sizeof filler);
	der_builder_close(&b);
	der_add_raw(&b, last.tlv.p, last.tlv.len);
	h_finish(&b, out, len);
	free(upp);
	struct rsp_saip_info info;
	assert_esim(ESIM_OK, rsp_saip_check(*out, *len, &info));
}

/* Flip one bit in the middle of the second 86 segment's ciphertext. */
static size_t seen_86;
static void flip_second_86(uint8_t *chunk, size_t len, size_t index)
{
	(void)index;
	if (chunk[0] == 0x86 && ++seen_86 == 2)
		chunk[len / 2] ^= 0x10;
}

static void expect_error_pir(const struct rsp_pir *pir, int64_t cmd, int64_t reason)
{
	assert_false(pir->success);
	assert_int_equal(pir->bpp_command_id, cmd);
	assert_int_equal(pir->error_reason, reason);
}

static void test_tampered_segment(void **state)
{
	struct fixture *f = *state;
	h_install(&f->h, &f->dp, ICCID_B, 2, 0, NULL);
	struct snapshot s;
	take(&f->h, &s);
	uint8_t *upp = NULL, *meta = NULL, *bpp = NULL;
	size_t ul, ml, bl;
	make_big_upp(ICCID_A, &upp, &ul);
	h_metadata(ICCID_A, -1, 0, NULL, &meta, &ml);
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	h_build_bpp(&f->dp, &f->dp.txid, meta, ml, upp, ul, NULL, &bpp, &bl);
	struct rsp_bpp_view view;
	assert_esim(ESIM_OK, rsp_bpp_parse(bpp, bl, &view));
	assert_true(view.n_a3 >= 3);
	esim_buf r = ESIM_BUF_INIT;
	seen_86 = 0;
	/* the segments after the tampered one are acknowledged and dropped */
	assert_int_equal(h_load_bpp(&f->h, bpp, bl, flip_second_86, &r), view.n_a3 - 2);
	struct rsp_pir pir;
	assert_esim(ESIM_OK, rsp_pir_verify(r.data, r.len, f->dp.euicc_pub, f->dp.oid, &pir));
	expect_error_pir(&pir, 5, 8); /* loadProfileElements, scp03tSecurityError */
	rsp_pir_free(&pir);
	assert_failed_install(&f->h, &s);
	assert_int_equal(profile_state(&f->h, ICCID_A), -1);
	/* a retry in a new session names the one-time key the failed BPP was
	 * bound to (bppEuiccOtpk): the eUICC reuses it, and the same package,
	 * untampered, installs */
	uint8_t old_otpk[RSP_OTPK_LEN];
	memcpy(old_otpk, f->dp.otpk, sizeof old_otpk);
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	uint8_t *req = NULL;
	size_t rl;
	h_prepare_req(&f->dp, false, NULL, old_otpk, 0, &req, &rl);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, rl, NULL), 0);
	free(req);
	assert_memory_equal(f->dp.otpk, old_otpk, sizeof old_otpk);
	free(bpp);
	h_build_bpp(&f->dp, &f->dp.txid, meta, ml, upp, ul, NULL, &bpp, &bl);
	h_load_bpp(&f->h, bpp, bl, NULL, &r);
	struct rsp_pir ok;
	assert_esim(ESIM_OK, rsp_pir_verify(r.data, r.len, f->dp.euicc_pub, f->dp.oid, &ok));
	assert_true(ok.success);
	rsp_pir_free(&ok);
	/* once used for an install, the key is gone: a new one is made */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	h_prepare_req(&f->dp, false, NULL, old_otpk, 0, &req, &rl);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, rl, NULL), 0);
	free(req);
	assert_memory_not_equal(f->dp.otpk, old_otpk, sizeof old_otpk);
	assert_int_equal(profile_state(&f->h, ICCID_A), 0);
	esim_buf_free(&r);
	free(bpp);
	free(upp);
	free(meta);
}

static void test_bpp_wrong_txid_and_metadata(void **state)
{
	struct fixture *f = *state;
	h_install(&f->h, &f->dp, ICCID_B, 2, 0, NULL);
	uint8_t *upp = NULL, *meta = NULL, *bpp = NULL;
	size_t ul, ml, bl;
	esim_buf r = ESIM_BUF_INIT;
	struct rsp_pir pir;
	struct snapshot s;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(ICCID_A, &upp, &ul));
	h_metadata(ICCID_A, -1, 0, NULL, &meta, &ml);

	/* BF23 for another transaction (correctly signed): 0 / 3 */
	take(&f->h, &s);
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	rsp_txid other;
	assert_esim(ESIM_OK, rsp_txid_random(&other));
	h_build_bpp(&f->dp, &other, meta, ml, upp, ul, NULL, &bpp, &bl);
	assert_true(h_load_bpp(&f->h, bpp, bl, NULL, &r) > 0); /* the rest dropped */
	assert_esim(ESIM_OK, rsp_pir_verify(r.data, r.len, f->dp.euicc_pub, f->dp.oid, &pir));
	expect_error_pir(&pir, 0, 3);
	rsp_pir_free(&pir);
	free(bpp);
	assert_failed_install(&f->h, &s);

	/* the ICCID of an installed profile: 2 / 9 */
	uint8_t *meta_b = NULL;
	size_t mbl;
	h_metadata(ICCID_B, -1, 0, NULL, &meta_b, &mbl);
	take(&f->h, &s);
	h_download(&f->h, &f->dp, meta_b, mbl, upp, ul, NULL, &pir);
	expect_error_pir(&pir, 2, 9);
	rsp_pir_free(&pir);
	assert_failed_install(&f->h, &s);

	/* metadata ICCID C, package header ICCID A: 5 / 13 */
	uint8_t *meta_c = NULL;
	size_t mcl;
	h_metadata(ICCID_C, -1, 0, NULL, &meta_c, &mcl);
	take(&f->h, &s);
	h_download(&f->h, &f->dp, meta_c, mcl, upp, ul, NULL, &pir);
	expect_error_pir(&pir, 5, 13);
	rsp_pir_free(&pir);
	assert_failed_install(&f->h, &s);

	/* a package that is not SAIP: 5 / 12 */
	take(&f->h, &s);
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	h_download(&f->h, &f->dp, meta, ml, junk, sizeof junk, NULL, &pir);
	expect_error_pir(&pir, 5, 12);
	rsp_pir_free(&pir);
	assert_failed_install(&f->h, &s);

	/* and after all that, the right package installs */
	h_download(&f->h, &f->dp, meta, ml, upp, ul, NULL, &pir);
	assert_true(pir.success);
	rsp_pir_free(&pir);
	assert_int_equal(profile_state(&f->h, ICCID_A), 0);
	esim_buf_free(&r);
	free(upp);
	free(meta);
	free(meta_b);
	free(meta_c);
}

/* The confirmation code retry on one session (SGP.22 3.1.3, SGP.23 CC
 * retry): the SM-DP+ answered 8.2.7 / 3.8 and kept the session, the LPA
 * sends PrepareDownload again with the new hashCc. The card signs a new
 * euiccSigned2 (verified with the new hashCc) with a fresh one-time key,
 * or the one it holds when bppEuiccOtpk names it, and the package bound to
 * the last key installs. Another transaction, a BPP already started, no
 * session: refused. On 195e680 the second PrepareDownload got 4. */
static void test_prepare_again(void **state)
{
	struct fixture *f = *state;
	uint8_t hash1[32], hash2[32], hash3[32], otpk1[RSP_OTPK_LEN], otpk2[RSP_OTPK_LEN];
	memset(hash1, 0x11, sizeof hash1);
	memset(hash2, 0x22, sizeof hash2);
	memset(hash3, 0x33, sizeof hash3);
	uint8_t *upp = NULL, *meta = NULL, *bpp = NULL, *req = NULL;
	size_t ul, ml, bl, rl;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(ICCID_A, &upp, &ul));
	h_metadata(ICCID_A, -1, 0, NULL, &meta, &ml);

	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash1), 0);
	memcpy(otpk1, f->dp.otpk, sizeof otpk1);
	/* the retry: euiccSigned2 carries hash2 (h_prepare_send verifies the
	 * signature and the hashCc as the SM-DP+ does), and a new key */
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash2), 0);
	memcpy(otpk2, f->dp.otpk, sizeof otpk2);
	assert_memory_not_equal(otpk1, otpk2, sizeof otpk1);
	/* bppEuiccOtpk naming the key the card holds: kept */
	h_prepare_req(&f->dp, true, hash3, otpk2, 0, &req, &rl);
	assert_int_equal(h_prepare_send(&f->h, &f->dp, req, rl, hash3), 0);
	free(req);
	assert_memory_equal(f->dp.otpk, otpk2, sizeof otpk2);
	/* a package bound to that key installs */
	h_build_bpp(&f->dp, &f->dp.txid, meta, ml, upp, ul, NULL, &bpp, &bl);
	esim_buf r = ESIM_BUF_INIT;
	h_load_bpp(&f->h, bpp, bl, NULL, &r);
	struct rsp_pir pir;
	assert_esim(ESIM_OK, rsp_pir_verify(r.data, r.len, f->dp.euicc_pub, f->dp.oid, &pir));
	assert_true(pir.success);
	rsp_pir_free(&pir);
	free(bpp);
	assert_int_equal(profile_state(&f->h, ICCID_A), 0);
	/* after the PIR the session is over */
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash1), 4);

	/* another transaction on a prepared session: invalidTransactionId,
	 * and the session is gone */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash1), 0);
	rsp_txid mine = f->dp.txid;
	assert_esim(ESIM_OK, rsp_txid_random(&f->dp.txid));
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash2), 5);
	f->dp.txid = mine;
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash2), 4);

	/* once LoadBoundProfilePackage has begun (BF23 accepted), no more */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	uint8_t *meta_c = NULL, *upp_c = NULL;
	size_t mcl, ucl;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(ICCID_C, &upp_c, &ucl));
	h_metadata(ICCID_C, -1, 0, NULL, &meta_c, &mcl);
	h_build_bpp(&f->dp, &f->dp.txid, meta_c, mcl, upp_c, ucl, NULL, &bpp, &bl);
	der_span *chunks = NULL;
	size_t n = 0;
	assert_esim(ESIM_OK, rsp_bpp_split(bpp, bl, &chunks, &n));
	assert_true(n > 2);
	h_es10(&f->h, chunks[0].p, chunks[0].len, &r);
	assert_int_equal(r.len, 0); /* BF23 taken, the BPP has begun */
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash1), 4);
	free(chunks);
	free(bpp);
	assert_int_equal(profile_state(&f->h, ICCID_C), -1);

	/* a retry without the hashCc the SM-DP+ requires: undefinedError */
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, true, hash1), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, true, NULL), 127);
	esim_buf_free(&r);
	free(upp);
	free(meta);
	free(upp_c);
	free(meta_c);
}

static void test_ppk_path(void **state)
{
	struct fixture *f = *state;
	uint8_t *upp = NULL, *meta = NULL, *bpp = NULL;
	size_t ul, ml, bl;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(ICCID_A, &upp, &ul));
	h_metadata(ICCID_A, 1, 0, NULL, &meta, &ml);
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	struct rsp_bpp_ppk ppk;
	for (size_t i = 0; i < 16; i++) {
		ppk.enc[i] = (uint8_t)(i + 1);
		ppk.mac[i] = (uint8_t)(i + 2);
		ppk.mcv[i] = (uint8_t)i;
	}
	h_build_bpp(&f->dp, &f->dp.txid, meta, ml, upp, ul, &ppk, &bpp, &bl);
	struct rsp_bpp_view view;
	assert_esim(ESIM_OK, rsp_bpp_parse(bpp, bl, &view));
	assert_non_null(view.a2.p);
	esim_buf r = ESIM_BUF_INIT;
	h_load_bpp(&f->h, bpp, bl, NULL, &r);
	struct rsp_pir pir;
	assert_esim(ESIM_OK, rsp_pir_verify(r.data, r.len, f->dp.euicc_pub, f->dp.oid, &pir));
	assert_true(pir.success);
	rsp_pir_free(&pir);
	assert_int_equal(profile_state(&f->h, ICCID_A), 0);
	/* the whole package is kept: its size shows in the free memory */
	esim_buf_free(&r);
	free(bpp);
	free(upp);
	free(meta);
}

static void test_small_card(void **state)
{
	struct fixture *f = *state; /* capacity 3000 bytes, 3 notifications */
	uint8_t *upp = NULL, *meta = NULL, *big = NULL, *meta_c = NULL;
	size_t ul, ml, bl, mcl;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp(ICCID_A, &upp, &ul));
	h_metadata(ICCID_A, -1, 0, NULL, &meta, &ml);
	struct rsp_pir pir;
	h_download(&f->h, &f->dp, meta, ml, upp, ul, NULL, &pir);
	assert_true(pir.success);
	rsp_pir_free(&pir);
	/* free memory in EUICCInfo2 went down by what is stored */
	esim_buf r = ESIM_BUF_INIT;
	h_es10_hex(&f->h, "BF2200", &r);
	der_cursor c, v;
	der_span s;
	der_cursor_init(&c, r.data, r.len);
	assert_esim(ESIM_OK, der_get_element(&c, 0xBF22, &v));
	for (int i = 0; i < 4; i++)
		assert_esim(ESIM_OK, der_get_octet_string(&v, (uint32_t)(0x81 + i), &s));
	assert_int_equal(s.p[2], 1); /* one application */
	uint32_t free_nvm =
	    (uint32_t)s.p[5] << 24 | (uint32_t)s.p[6] << 16 | (uint32_t)s.p[7] << 8 | s.p[8];
	assert_int_equal(free_nvm, 3000 - ul - ml);

	/* a 3 KB package no longer fits: 5 / 10, nothing installed, twice */
	make_big_upp(ICCID_C, &big, &bl);
	h_metadata(ICCID_C, -1, 0, NULL, &meta_c, &mcl);
	for (int i = 0; i < 2; i++) {
		h_download(&f->h, &f->dp, meta_c, mcl, big, bl, NULL, &pir);
		expect_error_pir(&pir, 5, 10);
		rsp_pir_free(&pir);
		assert_int_equal(profile_state(&f->h, ICCID_C), -1);
	}
	/* three notifications queued: the bound is reached, no new download
	 * is prepared until the LPA removes one */
	struct notif_list nl;
	list_notifs(&f->h, &nl);
	assert_int_equal(nl.n, 3);
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 127);
	uint8_t rm[6] = {0xBF, 0x30, 0x03, 0x80, 0x01, (uint8_t)nl.seq[0]};
	h_es10(&f->h, rm, sizeof rm, &r);
	assert_int_equal(h_result(&r, 0xBF30), 0);
	assert_int_equal(h_authenticate(&f->h, &f->dp), 0);
	assert_int_equal(h_prepare(&f->h, &f->dp, false, NULL), 0);
	esim_buf_free(&r);
	free(upp);
	free(meta);
	free(big);
	free(meta_c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_full_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_rules_and_policies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered_segment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bpp_wrong_txid_and_metadata, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prepare_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ppk_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_small_card, setup_small, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
