#!/usr/bin/env bash
# CTest: skip_reporting. A test whose real component is missing must be
# reported as skipped (exit 77), never as passed, and under CI=true as failed.
#
#   tests/skip/check_skip.sh BUILD_DIR
#
# Runs the tests that mix SQLite and PostgreSQL cases (test_smdp_schema,
# test_smdp_concurrency, test_operator) and test_store_pg (PostgreSQL only)
# with ESIM_PG_BINDIR pointing to an empty directory, so pg_helper finds no
# initdb/postgres there:
#   - without CI: both must exit 77 (the SQLite case still runs and passes);
#   - with CI=true: both must exit non-zero and not 77;
# and test_require_shared's rule the same way with ESIM_SHARED_DIR pointing
# to a directory without testdata (test_der_ts48).
set -uo pipefail
BUILD="$(cd "${1:?usage: check_skip.sh BUILD_DIR}" && pwd)"
empty="$(mktemp -d /tmp/esimtest.XXXXXX)"
trap 'rm -rf "$empty"' EXIT
fail=0

expect() { # expect WANT(77|fail) CI(true|"") ENVVAR=VALUE PROGRAM
	local want=$1 ci=$2 var=$3 prog=$4 rc
	env -u CI ${ci:+CI=$ci} "$var" "$BUILD/$prog" >"$empty/out" 2>&1
	rc=$?
	if [ "$want" = 77 ] && [ $rc -ne 77 ]; then
		echo "FAIL: $prog with $var ${ci:+CI=$ci }exited $rc, expected 77 (skip)"
		tail -n 20 "$empty/out"
		fail=1
	elif [ "$want" = fail ] && { [ $rc -eq 0 ] || [ $rc -eq 77 ]; }; then
		echo "FAIL: $prog with $var CI=$ci exited $rc, expected a failure (not 0, not 77)"
		tail -n 20 "$empty/out"
		fail=1
	else
		echo "ok: $prog with $var ${ci:+CI=$ci }exited $rc"
	fi
}

for prog in test_smdp_schema test_smdp_concurrency test_operator test_store_pg; do
	if [ ! -x "$BUILD/$prog" ]; then
		echo "FAIL: $BUILD/$prog not built"
		exit 1
	fi
	expect 77 "" "ESIM_PG_BINDIR=$empty" $prog
	expect fail true "ESIM_PG_BINDIR=$empty" $prog
done
# the SQLite case of test_smdp_schema ran and passed before the skip
env -u CI ESIM_PG_BINDIR="$empty" "$BUILD/test_smdp_schema" >"$empty/out" 2>&1
grep -qF 'OK ] test_upgrade_sqlite' "$empty/out" ||
	{ echo "FAIL: test_smdp_schema did not run its SQLite case"; fail=1; }
if [ -x "$BUILD/test_der_ts48" ]; then
	expect 77 "" "ESIM_SHARED_DIR=$empty" test_der_ts48
	expect fail true "ESIM_SHARED_DIR=$empty" test_der_ts48
fi
exit $fail
