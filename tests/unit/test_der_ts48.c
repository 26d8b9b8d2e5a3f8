/*
 * The der reader against real data: every GSMA TS.48 test profile package
 * in ../shared/testdata/ts48 (SAIP DER streams, digest 13) parses as a
 * sequence of top-level ProfileElements, every constructed element is made
 * of whole elements with no byte left over at any level, the first element
 * is the ProfileHeader and its ICCID is where the digest says (13.3).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "esim/der.h"

struct tally {
	size_t elements, constructed, primitive_bytes, max_depth;
};

/* Own recursive walk through the cursor API (independent of der_walk):
 * each level must end exactly where its parent's value ends. Returns the
 * number of bytes accounted for. */
static size_t walk(der_cursor c, unsigned depth, struct tally *t)
{
	size_t consumed = 0, start_len = c.len;
	assert_true(depth < DER_DEFAULT_MAX_DEPTH);
	if (depth > t->max_depth)
		t->max_depth = depth;
	while (!der_cursor_empty(&c)) {
		der_element e;
		esim_err err = der_get_any(&c, &e);
		if (err != ESIM_OK)
			fail_msg("depth %u: %s with %zu bytes left", depth, esim_errname(err),
				 c.len);
		assert_int_equal(e.tlv.len, e.header_len + e.value.len);
		t->elements++;
		if (der_tag_is_constructed(e.tag)) {
			t->constructed++;
			size_t inner = walk(der_cursor_of(e.value), depth + 1, t);
			assert_int_equal(inner, e.value.len);
		} else {
			t->primitive_bytes += e.value.len;
		}
		consumed += e.tlv.len;
	}
	assert_esim(ESIM_OK, der_expect_end(&c));
	assert_int_equal(consumed, start_len);
	return consumed;
}

static esim_err count_cb(void *ctx, const der_element *e, unsigned depth, size_t offset)
{
	(void)e;
	(void)depth;
	(void)offset;
	(*(size_t *)ctx)++;
	return ESIM_OK;
}

static void check_header(const uint8_t *p, size_t len, const char *name)
{
	der_cursor c, hdr;
	der_cursor_init(&c, p, len);
	uint32_t tag;
	assert_esim(ESIM_OK, der_peek_tag(&c, &tag));
	if (tag != 0xA0)
		fail_msg("%s: first element is %X, not the ProfileHeader A0", name, tag);
	assert_esim(ESIM_OK, der_get_sequence(&c, 0xA0, &hdr));
	int64_t major, minor;
	assert_esim(ESIM_OK, der_get_int64(&hdr, 0x80, &major));
	assert_esim(ESIM_OK, der_get_int64(&hdr, 0x81, &minor));
	assert_true(major >= 1 && major <= 3);
	der_span profile_type = {NULL, 0};
	bool present;
	der_cursor pt;
	assert_esim(ESIM_OK, der_get_optional(&hdr, 0x82, &present, &pt));
	if (present) {
		profile_type.p = pt.p;
		profile_type.len = pt.len;
		assert_true(der_utf8_valid(profile_type.p, profile_type.len));
	}
	der_span iccid;
	assert_esim(ESIM_OK, der_get_octet_string(&hdr, 0x83, &iccid));
	assert_int_equal(iccid.len, 10);
	char digits[21];
	for (size_t i = 0; i < 10; i++) {
		/* plain BCD in the header, F as filler */
		static const char hex[] = "0123456789ABCDEF";
		digits[2 * i] = hex[iccid.p[i] >> 4];
		digits[2 * i + 1] = hex[iccid.p[i] & 0xF];
	}
	digits[20] = '\0';
	/* ICCIDs start with the telecom industry identifier 89 */
	assert_memory_equal(digits, "89", 2);
	for (size_t i = 0; i < 19; i++)
		assert_true(digits[i] >= '0' && digits[i] <= '9');
	printf("  %s: SAIP %d.%d, ICCID %s, \"%.*s\"\n", name, (int)major, (int)minor, digits,
	       (int)profile_type.len, profile_type.p ? (const char *)profile_type.p : "");
}

static void test_ts48_profiles(void **state)
{
	(void)state;
	char dir[4096];
	test_path(dir, sizeof dir, "%s/ts48", test_shared_testdata());
	DIR *d = opendir(dir);
	if (d == NULL)
		fail_msg("cannot open %s", dir);
	size_t files = 0;
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL) {
		size_t nl = strlen(ent->d_name);
		if (nl < 5 || strcmp(ent->d_name + nl - 4, ".der") != 0)
			continue;
		char path[8192];
		size_t len;
		test_path(path, sizeof path, "%s/%s", dir, ent->d_name);
		uint8_t *p = test_read(path, &len);
		assert_true(len > 0);

		struct tally t = {0};
		der_cursor c;
		der_cursor_init(&c, p, len);
		size_t top = 0;
		{
			/* the top level is a concatenation of ProfileElements */
			der_cursor tc = c;
			der_element e;
			esim_err err;
			while (der_next_child(&tc, &e, &err)) {
				assert_true(der_tag_is_constructed(e.tag));
				top++;
			}
			assert_esim(ESIM_OK, err);
		}
		assert_int_equal(walk(c, 0, &t), len);

		/* der_walk agrees with the hand-written walk */
		size_t walked = 0, off = 0;
		assert_esim(ESIM_OK, der_walk(p, len, 0, count_cb, &walked, &off));
		assert_int_equal(walked, t.elements);

		/* the last element is PE-End (AA) */
		der_cursor last = c;
		der_element e, end = {0};
		while (!der_cursor_empty(&last)) {
			assert_esim(ESIM_OK, der_get_any(&last, &e));
			end = e;
		}
		assert_int_equal(end.tag, 0xAA);

		printf("%s: %zu bytes, %zu profile elements, %zu elements (%zu constructed), "
		       "depth %zu\n",
		       ent->d_name, len, top, t.elements, t.constructed, t.max_depth + 1);
		check_header(p, len, ent->d_name);

		/* the dump of real data succeeds too */
		FILE *null = fopen("/dev/null", "w");
		assert_non_null(null);
		der_dump_opts o = {.names = DER_NAMES_SAIP, .full = true};
		assert_esim(ESIM_OK, der_dump(null, p, len, &o, &off));
		fclose(null);
		free(p);
		files++;
	}
	closedir(d);
	if (files == 0)
		fail_msg("no *.der file in %s", dir);
	printf("%zu TS.48 profile packages parsed\n", files);
}

int main(void)
{
	test_require_shared("TS.48 profiles");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ts48_profiles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
