#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static int dir_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *test_source_dir(void)
{
	const char *s = getenv("ESIM_SOURCE_DIR");
	return s ? s : ".";
}

const char *test_bin_dir(void)
{
	const char *s = getenv("ESIM_BIN_DIR");
	return s ? s : ".";
}

const char *test_shared_testdata(void)
{
	static char path[4096];
	char buf[4200];
	const char *shared = getenv("ESIM_SHARED_DIR");
	if (shared != NULL)
		snprintf(buf, sizeof buf, "%.4000s/testdata", shared);
	else
		snprintf(buf, sizeof buf, "%.4000s/../shared/testdata", test_source_dir());
	if (!dir_exists(buf))
		return NULL;
	snprintf(path, sizeof path, "%.4000s", buf);
	return path;
}

static int ci_requires_all(void)
{
	const char *ci = getenv("CI");
	return ci != NULL && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

int test_component_missing_status(const char *component, const char *why)
{
	fflush(stdout);
	if (ci_requires_all()) {
		fprintf(stderr,
			"FAILED: %s is missing (%s), and CI=true requires every component: "
			"this test must run, not skip\n",
			component, why);
		return 1;
	}
	fprintf(stderr, "SKIPPED: %s is missing: %s\n", component, why);
	return TEST_SKIP_CODE;
}

void test_component_missing(const char *component, const char *why)
{
	exit(test_component_missing_status(component, why));
}

void test_require_shared(const char *what)
{
	if (test_shared_testdata() == NULL) {
		char why[300];
		snprintf(why, sizeof why, "%.200s needs ../shared/testdata (set ESIM_SHARED_DIR)",
			 what);
		test_component_missing("../shared/testdata", why);
	}
}

char *test_path(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return buf;
}

uint8_t *test_read(const char *path, size_t *len)
{
	uint8_t *p = NULL;
	esim_err err = esim_read_file(path, 64u << 20, &p, len);
	if (err != ESIM_OK)
		fail_msg("cannot read %s: %s", path, esim_strerror(err));
	return p;
}

uint8_t *test_unhex(const char *hex, size_t *len)
{
	uint8_t *p = NULL;
	size_t n = 0;
	if (esim_hex_decode(hex, &p, &n) != ESIM_OK)
		fail_msg("bad hex in test: %s", hex);
	if (len)
		*len = n;
	return p;
}

char *test_mkdtemp(void)
{
	char *t = strdup("/tmp/esimtest.XXXXXX");
	if (t == NULL || mkdtemp(t) == NULL)
		fail_msg("mkdtemp failed");
	return t;
}

void test_rm_rf(const char *dir)
{
	char cmd[4200];
	if (dir == NULL || strncmp(dir, "/tmp/esimtest.", 14) != 0)
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
}

void _assert_esim(esim_err expected, esim_err actual, const char *expr, const char *file, int line)
{
	if (expected != actual) {
		print_error("%s:%d: %s returned %s (%s), expected %s\n", file, line, expr,
			    esim_errname(actual), esim_strerror(actual), esim_errname(expected));
		_fail(file, line);
	}
}
