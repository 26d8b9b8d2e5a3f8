/*
 * Helpers shared by the test programs: where the source tree, the build tree
 * and the GSMA test data (../shared/testdata) are, and reading files there.
 *
 * Tests that need ../shared live in their own executable and call
 * test_require_shared() first: when the data is absent it prints why and
 * exits 77, which CTest reports as "skipped", never as "passed".
 *
 * The same rule for every real component a test needs (PostgreSQL, pcscd,
 * Chromium, ../shared/testdata): when it is missing the test reports a skip
 * (77), never a pass; and with CI=true in the environment a missing
 * component is a failure (exit 1), because CI installs everything and a
 * skip there would hide a test that silently stopped running.
 */
#ifndef ESIM_TESTUTIL_H
#define ESIM_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "esim/err.h"
#include "esim/util.h"

#define TEST_SKIP_CODE 77

/* Print why `component` cannot be used here and return the exit status the
 * test must end with: TEST_SKIP_CODE, or 1 when $CI is "true" (or "1").
 * For tests that run their other cases first and report at the end. */
int test_component_missing_status(const char *component, const char *why);
/* The same, then exit with that status. */
__attribute__((noreturn)) void test_component_missing(const char *component, const char *why);

/* Path of ../shared/testdata (from $ESIM_SHARED_DIR, else ../shared next to
 * the source tree), or NULL when it is absent. Static storage. */
const char *test_shared_testdata(void);
/* Exit 77 with a message when ../shared/testdata is absent. */
void test_require_shared(const char *what);
/* Source and build directories ($ESIM_SOURCE_DIR, $ESIM_BIN_DIR). */
const char *test_source_dir(void);
const char *test_bin_dir(void);
/* snprintf into a static-free buffer the caller provides. */
char *test_path(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Read a file that must exist; fails the test otherwise. Caller frees. */
uint8_t *test_read(const char *path, size_t *len);
/* Decode hex that must be valid; fails the test otherwise. Caller frees. */
uint8_t *test_unhex(const char *hex, size_t *len);
/* Make a fresh temporary directory; caller removes it with test_rm_rf. */
char *test_mkdtemp(void);
void test_rm_rf(const char *dir);

/* assert an esim_err, printing both names on mismatch */
#define assert_esim(expected, actual)                                                              \
	_assert_esim((expected), (actual), #actual, __FILE__, __LINE__)
void _assert_esim(esim_err expected, esim_err actual, const char *expr, const char *file, int line);

#endif
