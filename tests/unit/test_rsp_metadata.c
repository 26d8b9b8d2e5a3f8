/*
 * Tests of StoreMetadataRequest (BF25) and NotificationMetadata (BF2F)
 * (src/rsp/metadata.c): the encodings of digest 7.7 and 8.2, round trips of
 * every field, kept unknown tags, size limits and malformed inputs.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esim/crypto.h"
#include "esim/rsp.h"
#include "esim/rsp_bpp.h"
#include "esim/rsp_saip.h"
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

/* A BF25 TLV of exactly len bytes: the GSMA fields, then an unknown
 * element (kept as is, digest 7.5's extension marker) that fills the rest. */
static uint8_t *meta_of_len(size_t len)
{
	struct rsp_metadata m = {0};
	assert_esim(ESIM_OK, rsp_iccid_to_bcd("89000123456789012341", m.iccid));
	m.spn = "esimkit";
	m.name = "segments";
	uint8_t *base = NULL, *out = NULL;
	size_t base_len = 0, out_len = 0;
	assert_esim(ESIM_OK, rsp_metadata_encode(&m, &base, &base_len));
	free(base);
	/* BF25 82 LLLL: 5 header bytes, content = base content + filler TLV */
	size_t content_base = base_len - 3; /* base has BF25 + 1-byte length */
	for (size_t pad = 0; pad < len; pad++) {
		/* filler DF 7F 82 LLLL <pad> */
		uint8_t *fill = calloc(pad + 5, 1);
		fill[0] = 0xDF;
		fill[1] = 0x7F;
		fill[2] = 0x82;
		fill[3] = (uint8_t)(pad >> 8);
		fill[4] = (uint8_t)pad;
		m.extra = fill;
		m.extra_len = pad + 5;
		if (5 + content_base + pad + 5 == len) {
			assert_esim(ESIM_OK, rsp_metadata_encode(&m, &out, &out_len));
			free(fill);
			break;
		}
		free(fill);
	}
	assert_non_null(out);
	assert_int_equal(out_len, len);
	return out;
}

/* The 88 segments of one BPP built with a BF25 of len bytes: their count
 * is rsp_metadata_segments(len), none is over 1020 bytes on the wire, and
 * their payloads (each less its 8-byte MAC, MAC-only) give the BF25 back. */
static void check_split(EVP_PKEY *key, size_t len, size_t want_segments, size_t last_tlv)
{
	uint8_t *meta = meta_of_len(len);
	uint8_t *upp = NULL, *bpp = NULL, otpk[65], eid[16], host[8];
	size_t upp_len = 0, bpp_len = 0;
	assert_esim(ESIM_OK, rsp_saip_make_test_upp("89000123456789012341", &upp, &upp_len));
	EVP_PKEY *ot = NULL;
	assert_esim(ESIM_OK, crypto_key_generate(CRYPTO_CURVE_P256, &ot));
	assert_esim(ESIM_OK, crypto_key_public_point(ot, otpk));
	assert_esim(ESIM_OK, rsp_eid_to_bcd("89049032123451234512345678901235", eid));
	memset(host, 0x80, sizeof host);
	rsp_txid tx;
	assert_esim(ESIM_OK, rsp_txid_random(&tx));
	struct rsp_bpp_params p = {
	    .dp_pb_key = key,
	    .txid = &tx,
	    .euicc_otpk = otpk,
	    .euicc_otpk_len = 65,
	    .eid = eid,
	    .host_id = host,
	    .host_id_len = sizeof host,
	    .metadata = meta,
	    .metadata_len = len,
	    .upp = upp,
	    .upp_len = upp_len,
	};
	assert_esim(ESIM_OK, rsp_bpp_build(&p, &bpp, &bpp_len));
	struct rsp_bpp_view v;
	assert_esim(ESIM_OK, rsp_bpp_parse(bpp, bpp_len, &v));
	assert_int_equal(v.n_a1, want_segments);
	assert_int_equal(rsp_metadata_segments(len), want_segments);
	der_element a1, seg;
	assert_esim(ESIM_OK, der_parse_single(v.a1.p, v.a1.len, &a1));
	der_cursor c = der_cursor_of(a1.value);
	esim_buf plain = ESIM_BUF_INIT;
	esim_err err = ESIM_OK;
	size_t i = 0;
	while (der_next_child(&c, &seg, &err)) {
		i++;
		assert_int_equal(seg.tag, 0x88);
		assert_true(seg.tlv.len <= 1020);
		if (i < want_segments) /* every segment but the last is full */
			assert_int_equal(seg.tlv.len, 1020);
		else
			assert_int_equal(seg.tlv.len, last_tlv);
		assert_true(seg.value.len > 8);
		assert_esim(ESIM_OK, esim_buf_append(&plain, seg.value.p, seg.value.len - 8));
	}
	assert_esim(ESIM_OK, err);
	assert_int_equal(plain.len, len);
	assert_memory_equal(plain.data, meta, len);
	esim_buf_free(&plain);
	EVP_PKEY_free(ot);
	free(bpp);
	free(upp);
	free(meta);
}

/* The '88' segment rule of digest 7.4: at most 1008 bytes of BF25 per
 * segment (1020 bytes with tag, 82 03F8 and the MAC). Exactly full: one
 * segment; one byte over: a second segment of that one byte. */
static void test_segment_split(void **state)
{
	(void)state;
	EVP_PKEY *key = NULL;
	assert_esim(ESIM_OK, crypto_key_generate(CRYPTO_CURVE_P256, &key));
	assert_int_equal(RSP_META_SEGMENT_MAX, 1008);
	assert_int_equal(rsp_metadata_segments(1), 1);
	/* 1007: 88 82 03F7 + 1007 + 8 MAC = 1019 */
	check_split(key, 1007, 1, 1019);
	check_split(key, 1008, 1, 1020);
	/* the 1009th byte alone: 88 09 <1 byte> <8-byte MAC> */
	check_split(key, 1009, 2, 11);
	check_split(key, 2016, 2, 1020);
	check_split(key, 2017, 3, 11);
	EVP_PKEY_free(key);
}

/* Icons: PNG and JPEG known by their first bytes, anything else refused,
 * the size limit of SGP.22 (1024 bytes) enforced. */
static void test_icon_type(void **state)
{
	(void)state;
	uint8_t png[40] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
	uint8_t jpg[40] = {0xFF, 0xD8, 0xFF, 0xE0};
	uint8_t gif[40] = {'G', 'I', 'F', '8', '9', 'a'};
	enum rsp_icon_type t = RSP_ICON_JPG;
	assert_esim(ESIM_OK, rsp_icon_type_of(png, sizeof png, &t));
	assert_int_equal(t, RSP_ICON_PNG);
	assert_esim(ESIM_OK, rsp_icon_type_of(jpg, sizeof jpg, &t));
	assert_int_equal(t, RSP_ICON_JPG);
	assert_esim(ESIM_E_ARG, rsp_icon_type_of(gif, sizeof gif, &t));
	assert_esim(ESIM_E_ARG, rsp_icon_type_of(png, 7, &t)); /* a cut signature */
	assert_esim(ESIM_E_RSP_FIELD_SIZE, rsp_icon_type_of(png, 0, &t));
	uint8_t *big = calloc(1025, 1);
	memcpy(big, png, 8);
	assert_esim(ESIM_OK, rsp_icon_type_of(big, 1024, &t));
	assert_esim(ESIM_E_RSP_FIELD_SIZE, rsp_icon_type_of(big, 1025, &t));
	free(big);
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
	    cmocka_unit_test(test_segment_split),
	    cmocka_unit_test(test_icon_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
