/*
 * Tests of StoreMetadataRequest (BF25) and NotificationMetadata (BF2F)
 * (src/rsp/metadata.c): the encodings of digest 7.7 and 8.2, round trips of
 * every field, kept unknown tags, size limits and malformed inputs.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp.h"
#include "testutil.h"

static const void *find(const void *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp((const uint8_t *)hay + i, needle, m) == 0)
			return (const uint8_t *)hay + i;
	return NULL;
}

/* Segment 2 plaintext of digest 7.7 vector B. */
#define META_GSMA                                                                                  \
	"bf252d5a0a980010325476981032149109"                                                       \
	"47534d415f54455354"                                                                       \
	"9211"                                                                                     \
	"47534d415f544553545f50524f46494c45"                                                       \
	"950100"

static void test_decode_gsma(void **state)
{
	(void)state;
	size_t n;
	uint8_t *p = test_unhex(META_GSMA, &n);
	struct rsp_metadata m;
	assert_esim(ESIM_OK, rsp_metadata_decode(p, n, &m));
	char iccid[RSP_ICCID_TEXT_MAX];
	assert_esim(ESIM_OK, rsp_iccid_from_bcd(m.iccid, 10, iccid));
	assert_string_equal(iccid, "89000123456789012341");
	assert_string_equal(m.spn, "GSMA_TEST");
	assert_string_equal(m.name, "GSMA_TEST_PROFILE");
	assert_true(m.has_class);
	assert_int_equal(m.profile_class, RSP_CLASS_TEST);
	assert_false(m.has_icon_type);
	assert_int_equal(m.n_notif, 0);
	assert_int_equal(m.extra_len, 0);

	/* re-encoding gives the same bytes */
	uint8_t *enc;
	size_t enc_len;
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &enc, &enc_len));
	assert_int_equal(enc_len, n);
	assert_memory_equal(enc, p, n);
	free(enc);
	rsp_metadata_free(&m);
	free(p);
}

static void fill_full(struct rsp_metadata *m)
{
	memset(m, 0, sizeof(*m));
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("8949449999999990031", m->iccid));
	m->spn = strdup("Operätor");
	m->name = strdup("My profile");
	m->has_icon_type = true;
	m->icon_type = RSP_ICON_PNG;
	m->icon_len = 300;
	m->icon = malloc(300);
	memset(m->icon, 0xAB, 300);
	m->has_class = true;
	m->profile_class = RSP_CLASS_OPERATIONAL;
	m->n_notif = 2;
	m->notif = calloc(2, sizeof(*m->notif));
	m->notif[0].pmo = RSP_PMO_INSTALL;
	m->notif[0].address = strdup("smdp.example.com");
	m->notif[1].pmo = RSP_PMO_ALL_LOCAL;
	m->notif[1].address = strdup("notify.example.com");
	m->has_owner = true;
	m->owner.mcc_mnc[0] = 0x00;
	m->owner.mcc_mnc[1] = 0xF1;
	m->owner.mcc_mnc[2] = 0x10;
	m->owner.has_gid1 = true;
	m->owner.gid1_len = 2;
	m->owner.gid1[0] = 0x12;
	m->owner.gid1[1] = 0x34;
	m->has_ppr = true;
	m->ppr = 0x2; /* ppr1 */
}

static void test_roundtrip_full(void **state)
{
	(void)state;
	struct rsp_metadata m, d;
	fill_full(&m);
	uint8_t *enc;
	size_t n;
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &enc, &n));
	/* B6 holds 30 {80 02 07 80 81 ...} and 30 {80 02 04 70 ...} */
	static const uint8_t bits_install[] = {0x80, 0x02, 0x07, 0x80, 0x81};
	static const uint8_t bits_local[] = {0x80, 0x02, 0x04, 0x70, 0x81};
	assert_non_null(find(enc, n, bits_install, sizeof bits_install));
	assert_non_null(find(enc, n, bits_local, sizeof bits_local));
	static const uint8_t ppr[] = {0x99, 0x02, 0x06, 0x40};
	assert_non_null(find(enc, n, ppr, sizeof ppr));

	assert_esim(ESIM_OK, rsp_metadata_decode(enc, n, &d));
	assert_memory_equal(d.iccid, m.iccid, 10);
	assert_string_equal(d.spn, "Operätor");
	assert_string_equal(d.name, "My profile");
	assert_true(d.has_icon_type);
	assert_int_equal(d.icon_type, RSP_ICON_PNG);
	assert_int_equal(d.icon_len, 300);
	assert_memory_equal(d.icon, m.icon, 300);
	assert_int_equal(d.profile_class, RSP_CLASS_OPERATIONAL);
	assert_int_equal(d.n_notif, 2);
	assert_int_equal(d.notif[1].pmo, RSP_PMO_ALL_LOCAL);
	assert_string_equal(d.notif[1].address, "notify.example.com");
	assert_string_equal(rsp_metadata_notif_address(&d, RSP_EVENT_DELETE), "notify.example.com");
	assert_string_equal(rsp_metadata_notif_address(&d, RSP_EVENT_INSTALL), "smdp.example.com");
	assert_null(rsp_metadata_notif_address(&d, RSP_EVENT_RPM_ENABLE));
	assert_true(d.has_owner);
	assert_memory_equal(d.owner.mcc_mnc, m.owner.mcc_mnc, 3);
	assert_true(d.owner.has_gid1);
	assert_false(d.owner.has_gid2);
	assert_int_equal(d.owner.gid1_len, 2);
	assert_true(d.has_ppr);
	assert_int_equal(d.ppr, 0x2);
	rsp_metadata_free(&d);
	free(enc);
	rsp_metadata_free(&m);
	assert_null(m.spn);
}

static void test_unknown_kept_and_order(void **state)
{
	(void)state;
	/* 92 before 91, an unknown 9F21 (estimatedProfileSize, v3) kept */
	size_t n;
	uint8_t *p = test_unhex("bf25175a0a980010325476981032149201419101429f21020400", &n);
	struct rsp_metadata m;
	assert_esim(ESIM_OK, rsp_metadata_decode(p, n, &m));
	assert_string_equal(m.spn, "B");
	assert_string_equal(m.name, "A");
	assert_false(m.has_class);
	assert_int_equal(m.profile_class, RSP_CLASS_OPERATIONAL);
	assert_int_equal(m.extra_len, 5);
	assert_memory_equal(m.extra, p + n - 5, 5);
	uint8_t *enc;
	size_t enc_len;
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &enc, &enc_len));
	/* canonical order on output, the unknown element last */
	struct rsp_metadata d;
	assert_esim(ESIM_OK, rsp_metadata_decode(enc, enc_len, &d));
	assert_int_equal(d.extra_len, 5);
	assert_memory_equal(enc + enc_len - 5, p + n - 5, 5);
	assert_int_equal(enc[15], 0x91);
	rsp_metadata_free(&d);
	free(enc);
	rsp_metadata_free(&m);
	free(p);
}

static void expect_decode(esim_err want, const char *hex)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	struct rsp_metadata m;
	assert_esim(want, rsp_metadata_decode(p, n, &m));
	assert_null(m.spn);
	assert_null(m.extra);
	free(p);
}

static void test_decode_bad(void **state)
{
	(void)state;
	/* missing name */
	expect_decode(ESIM_E_RSP_BAD_STRUCTURE, "bf250f5a0a98001032547698103214910142");
	/* missing iccid */
	expect_decode(ESIM_E_RSP_BAD_STRUCTURE, "bf2506910142920141");
	/* ICCID of 9 bytes */
	expect_decode(ESIM_E_RSP_BAD_STRUCTURE, "bf25115a09980010325476981032910142920141");
	/* duplicate 91 */
	expect_decode(ESIM_E_RSP_DUPLICATE_FIELD,
		      "bf25155a0a98001032547698103214910142910142920141");
	/* icon without iconType */
	expect_decode(ESIM_E_RSP_BAD_STRUCTURE, "bf25155a0a98001032547698103214910142920141940100");
	/* wrong outer tag, trailing bytes */
	expect_decode(ESIM_E_RSP_BAD_STRUCTURE, "bf26125a0a98001032547698103214910142920141");
	expect_decode(ESIM_E_RSP_BAD_STRUCTURE, "bf25125a0a9800103254769810321491014292014100");
	/* truncated */
	expect_decode(ESIM_E_DER_OVERRUN, "bf25125a0a980010325476981032149101429201");
	/* profileClass 3 */
	expect_decode(ESIM_E_RSP_BAD_STRUCTURE, "bf25155a0a98001032547698103214910142920141950103");
	/* invalid UTF-8 in the name */
	expect_decode(ESIM_E_DER_BAD_UTF8, "bf25125a0a980010325476981032149101429201ff");
	/* notificationConfigurationInfo with an empty PMO */
	expect_decode(ESIM_E_RSP_BAD_PMO,
		      "bf251c5a0a98001032547698103214910142920141b6083006800100810141");
}

static void test_size_limits(void **state)
{
	(void)state;
	struct rsp_metadata m;
	fill_full(&m);
	uint8_t *enc;
	size_t n;
	char spn33[34];
	memset(spn33, 'S', 33);
	spn33[33] = '\0';
	char *saved = m.spn;
	m.spn = spn33;
	assert_esim(ESIM_E_RSP_FIELD_SIZE, rsp_metadata_encode(&m, &enc, &n));
	spn33[32] = '\0';
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &enc, &n));
	free(enc);
	/* 32 characters of 2 bytes each are still 32 characters */
	char wide[65];
	for (int i = 0; i < 32; i++) {
		wide[2 * i] = (char)0xC3;
		wide[2 * i + 1] = (char)0xA4;
	}
	wide[64] = '\0';
	m.spn = wide;
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &enc, &n));
	struct rsp_metadata d;
	assert_esim(ESIM_OK, rsp_metadata_decode(enc, n, &d));
	assert_string_equal(d.spn, wide);
	rsp_metadata_free(&d);
	free(enc);
	m.spn = saved;

	char name65[66];
	memset(name65, 'N', 65);
	name65[65] = '\0';
	saved = m.name;
	m.name = name65;
	assert_esim(ESIM_E_RSP_FIELD_SIZE, rsp_metadata_encode(&m, &enc, &n));
	m.name = saved;

	uint8_t *icon = m.icon;
	m.icon = calloc(1025, 1);
	m.icon_len = 1025;
	assert_esim(ESIM_E_RSP_FIELD_SIZE, rsp_metadata_encode(&m, &enc, &n));
	m.icon_len = 1024;
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &enc, &n));
	free(enc);
	free(m.icon);
	m.icon = icon;

	m.has_icon_type = false;
	assert_esim(ESIM_E_ARG, rsp_metadata_encode(&m, &enc, &n));
	m.has_icon_type = true;
	m.notif[0].pmo = 0;
	assert_esim(ESIM_E_ARG, rsp_metadata_encode(&m, &enc, &n));
	rsp_metadata_free(&m);

	/* a 33-character SPN on the wire is refused too */
	expect_decode(ESIM_E_RSP_FIELD_SIZE,
		      "bf25325a0a989444999999990930f19121"
		      "535353535353535353535353535353535353535353535353535353535353535353"
		      "920141");
}

static void test_notif_metadata(void **state)
{
	(void)state;
	struct rsp_notif_metadata n = {.seq = 5, .event = RSP_EVENT_ENABLE, .has_iccid = true};
	n.address = strdup("smdp.example.com");
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("89000123456789012341", n.iccid));
	uint8_t *enc;
	size_t len;
	assert_esim(ESIM_OK, rsp_notif_metadata_encode(&n, &enc, &len));
	size_t want_len;
	uint8_t *want = test_unhex("bf2f2580010581020640"
				   "0c10736d64702e6578616d706c652e636f6d"
				   "5a0a98001032547698103214",
				   &want_len);
	assert_int_equal(len, want_len);
	assert_memory_equal(enc, want, len);
	free(want);

	struct rsp_notif_metadata d;
	assert_esim(ESIM_OK, rsp_notif_metadata_decode(enc, len, &d));
	assert_int_equal(d.seq, 5);
	assert_int_equal(d.event, RSP_EVENT_ENABLE);
	assert_string_equal(d.address, "smdp.example.com");
	assert_true(d.has_iccid);
	assert_memory_equal(d.iccid, n.iccid, 10);
	rsp_notif_metadata_free(&d);
	free(enc);

	/* seqNumber past 127, each event bit, no iccid */
	n.seq = 128;
	n.has_iccid = false;
	for (unsigned ev = 0; ev <= RSP_EVENT_MAX; ev++) {
		n.event = (enum rsp_event)ev;
		assert_esim(ESIM_OK, rsp_notif_metadata_encode(&n, &enc, &len));
		assert_int_equal(enc[3], 0x80);
		assert_int_equal(enc[4], 0x02);
		assert_int_equal(enc[5], 0x00);
		assert_int_equal(enc[6], 0x80);
		assert_int_equal(enc[9], 7 - ev); /* unused bits */
		assert_int_equal(enc[10], 0x80 >> ev);
		assert_esim(ESIM_OK, rsp_notif_metadata_decode(enc, len, &d));
		assert_int_equal(d.event, ev);
		assert_int_equal(d.seq, 128);
		assert_false(d.has_iccid);
		rsp_notif_metadata_free(&d);
		free(enc);
	}
	n.event = (enum rsp_event)8;
	assert_esim(ESIM_E_ARG, rsp_notif_metadata_encode(&n, &enc, &len));
	rsp_notif_metadata_free(&n);
}

static void expect_notif(esim_err want, const char *hex)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	struct rsp_notif_metadata d;
	assert_esim(want, rsp_notif_metadata_decode(p, n, &d));
	assert_null(d.address);
	free(p);
}

static void test_notif_metadata_bad(void **state)
{
	(void)state;
	/* two PMO bits (enable|disable) */
	expect_notif(ESIM_E_RSP_BAD_PMO, "bf2f0d800105810205600c0461626364");
	/* no bit */
	expect_notif(ESIM_E_RSP_BAD_PMO, "bf2f0c8001058101000c0461626364");
	/* bit 8 */
	expect_notif(ESIM_E_RSP_BAD_PMO, "bf2f0e80010581030700800c0461626364");
	/* address missing */
	expect_notif(ESIM_E_RSP_BAD_STRUCTURE, "bf2f0780010581020640");
	/* wrong tag */
	expect_notif(ESIM_E_RSP_BAD_STRUCTURE, "bf300d800105810206400c0461626364");
	/* minimal good one */
	size_t n;
	uint8_t *p = test_unhex("bf2f0d800105810206400c0461626364", &n);
	struct rsp_notif_metadata d;
	assert_esim(ESIM_OK, rsp_notif_metadata_decode(p, n, &d));
	assert_string_equal(d.address, "abcd");
	rsp_notif_metadata_free(&d);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_gsma),
	    cmocka_unit_test(test_roundtrip_full),
	    cmocka_unit_test(test_unknown_kept_and_order),
	    cmocka_unit_test(test_decode_bad),
	    cmocka_unit_test(test_size_limits),
	    cmocka_unit_test(test_notif_metadata),
	    cmocka_unit_test(test_notif_metadata_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
