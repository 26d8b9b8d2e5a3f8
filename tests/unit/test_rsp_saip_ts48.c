/*
 * The SAIP checker against every GSMA TS.48 test profile in
 * ../shared/testdata/ts48: each passes, gives its ICCID, and survives ICCID
 * personalisation (header and EF.ICCID) and a BPP-sized round through the
 * checker again. Skipped (77) without ../shared.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esim/rsp_saip.h"
#include "testutil.h"

static void test_ts48(void **state)
{
	(void)state;
	char dir[1024];
	test_path(dir, sizeof dir, "%s/ts48", test_shared_testdata());
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".der") != 0)
			continue;
		char path[2048];
		test_path(path, sizeof path, "%s/%s", dir, de->d_name);
		size_t n;
		uint8_t *upp = test_read(path, &n);
		struct rsp_saip_info info;
		esim_err err = rsp_saip_check(upp, n, &info);
		if (err != ESIM_OK)
			fprintf(stderr, "%s: %s at offset %zu\n", de->d_name, esim_errname(err),
				info.err_offset);
		assert_esim(ESIM_OK, err);
		printf("%-40s SAIP %u.%u ICCID %s, %zu PEs, services 0x%llx%s\n", de->d_name,
		       info.major, info.minor, info.iccid, info.n_pe,
		       (unsigned long long)info.mandatory_services, info.has_usim ? ", usim" : "");
		assert_true(strlen(info.iccid) >= 18);
		assert_true(info.n_pe >= 3);

		uint8_t *pers;
		size_t pn;
		assert_esim(ESIM_OK,
			    rsp_saip_personalise_iccid(upp, n, "8949449999999990031", &pers, &pn));
		struct rsp_saip_info p2;
		assert_esim(ESIM_OK, rsp_saip_check(pers, pn, &p2));
		assert_string_equal(p2.iccid, "8949449999999990031");
		assert_int_equal(p2.n_pe, info.n_pe);
		free(pers);
		free(upp);
		files++;
	}
	closedir(d);
	assert_true(files >= 1);
}

int main(void)
{
	test_require_shared("TS.48 test profiles");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ts48),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
