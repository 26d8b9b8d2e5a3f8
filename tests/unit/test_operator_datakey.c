/*
 * Files that hold a secret (esim_read_secret_file): the SM-DP+'s
 * key-encryption key and the operator's data key, which wraps every
 * per-case key of the identity copies. Such a file must be a regular file
 * of the service's user that nobody else may read; anything else is
 * refused with a message that names the file and the fix, before the
 * secret is used. The operator creates its data key with mode 0600 and
 * never over an existing file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esim/operator.h"
#include "esim/util.h"
#include "testutil.h"

static void write_mode(const char *path, const void *p, size_t n, mode_t mode)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_secret_file_rules(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char path[600], link[600], why[700];
	snprintf(path, sizeof path, "%s/secret", dir);
	snprintf(link, sizeof link, "%s/secret.link", dir);
	const uint8_t key[32] = {1, 2, 3};
	uint8_t *p = NULL;
	size_t n = 0;

	write_mode(path, key, sizeof key, 0600);
	assert_esim(ESIM_OK, esim_read_secret_file(path, 64, &p, &n, why, sizeof why));
	assert_int_equal(n, sizeof key);
	assert_memory_equal(p, key, sizeof key);
	esim_wipe(p, n);
	free(p);
	assert_int_equal(chmod(path, 0400), 0);
	assert_esim(ESIM_OK, esim_read_secret_file(path, 64, &p, &n, why, sizeof why));
	free(p);

	/* readable by group or others: refused, the message names the fix */
	static const mode_t open_modes[] = {0644, 0640, 0604, 0620};
	for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
		assert_int_equal(chmod(path, open_modes[i]), 0);
		p = NULL;
		assert_esim(ESIM_E_SECRET_FILE,
			    esim_read_secret_file(path, 64, &p, &n, why, sizeof why));
		assert_null(p);
		assert_non_null(strstr(why, path));
		assert_non_null(strstr(why, "chmod 600"));
	}
	assert_int_equal(chmod(path, 0600), 0);

	/* a symbolic link is not followed, a directory is not a file */
	assert_int_equal(symlink(path, link), 0);
	assert_int_not_equal(esim_read_secret_file(link, 64, &p, &n, why, sizeof why), ESIM_OK);
	assert_non_null(strstr(why, link));
	assert_esim(ESIM_E_SECRET_FILE, esim_read_secret_file(dir, 64, &p, &n, why, sizeof why));
	assert_non_null(strstr(why, "not a regular file"));

	/* too large, and missing */
	assert_esim(ESIM_E_TOO_LARGE, esim_read_secret_file(path, 16, &p, &n, why, sizeof why));
	snprintf(link, sizeof link, "%s/none", dir);
	assert_esim(ESIM_E_IO, esim_read_secret_file(link, 64, &p, &n, why, sizeof why));
	assert_non_null(strstr(why, link));
	test_rm_rf(dir);
	free(dir);
}

static esim_err open_with_key(const char *dir, const char *dk, op **o)
{
	char db[600];
	snprintf(db, sizeof db, "%s/op.db", dir);
	struct op_config cfg = {.db = db, .web_dir = dir, .data_key_file = dk, .fast_hash = true};
	return op_open(&cfg, o);
}

static void test_operator_data_key(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char dk[600];
	snprintf(dk, sizeof dk, "%s/data.key", dir);
	op *o = NULL;
	/* made on first start, owner-only, whatever the umask */
	mode_t old = umask(0);
	esim_err err = open_with_key(dir, dk, &o);
	umask(old);
	assert_esim(ESIM_OK, err);
	op_close(o);
	struct stat st;
	assert_int_equal(stat(dk, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	/* and used again as it is */
	assert_esim(ESIM_OK, open_with_key(dir, dk, &o));
	op_close(o);
	/* opened up to others: the operator does not start on it (at 529f5d7
	 * any mode was read, and a copy readable by all was never noticed) */
	assert_int_equal(chmod(dk, 0644), 0);
	o = NULL;
	assert_int_not_equal(open_with_key(dir, dk, &o), ESIM_OK);
	assert_null(o);
	/* a key of the wrong size is refused, not padded or replaced */
	write_mode(dk, "short", 5, 0600);
	assert_int_not_equal(open_with_key(dir, dk, &o), ESIM_OK);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secret_file_rules),
	    cmocka_unit_test(test_operator_data_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
