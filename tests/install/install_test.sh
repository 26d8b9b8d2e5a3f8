#!/usr/bin/env bash
# `make install` into a DESTDIR, then only the installed files (issue 17.1):
#  1. the layout: programs, libesim.so.MAJOR.MINOR.PATCH with its SONAME
#     links, public headers, esim.pc, the portal's web folder, man pages,
#     example configuration files, systemd units;
#  2. every installed program answers --version ("PROGRAM VERSION", the
#     project's version) and --help;
#  3. esim-operator serve refuses to start without db / listen / TLS and
#     names what is missing (no esim-operator.db appears), serves the
#     portal from the installed share/ (a marker added to the installed
#     index.html is what a browser gets), and on SIGTERM finishes an
#     answer in flight (15 MiB read slowly) before it exits 0;
#  4. the installed esim-smdp reloads its DPtls certificate on SIGHUP (a
#     new certificate is served afterwards, the old one before), keeps the
#     old one when the new files do not load, and exits 0 on SIGTERM;
#  5. every installed header compiles on its own with `pkg-config --cflags
#     esim`; a small C program compiled and linked against the installed
#     libesim through `pkg-config --cflags --libs esim` runs and reports
#     the library's version (it loads libesim.so.0 from the DESTDIR);
#  6. the demo's whole journey (scripts/demo.sh) with the installed programs.
#
# usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/esim-install-test.XXXXXX)
dest=$work/dest
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "install_test: FAILED: $*" >&2
	exit 1
}
skip() { # a missing tool: 77, a failure under CI=true
	echo "install_test: SKIPPED: $*" >&2
	if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then exit 1; fi
	exit 77
}
for tool in curl openssl pkg-config cc jq; do
	command -v "$tool" >/dev/null || skip "needs $tool (scripts/deps.sh)"
done

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ -n "$version" ] && [ -n "$prefix" ] || fail "no version or prefix in $build/CMakeCache.txt"

echo "== 1. DESTDIR=$dest cmake --install (prefix $prefix)"
DESTDIR=$dest cmake --install "$build" >"$work/install.log" || {
	cat "$work/install.log" >&2
	fail "cmake --install"
}
root=$dest$prefix
bin=$root/bin
programs=(esim esim-pki esim-euicc esim-smdp esim-operator)
[ -e "$build/esim-smds" ] && programs+=(esim-smds)
for p in "${programs[@]}"; do
	[ -x "$bin/$p" ] || fail "$bin/$p not installed"
done
lib=$(find "$root" -name "libesim.so.$version" -type f | head -n 1)
[ -n "$lib" ] || fail "libesim.so.$version not installed"
libdir=$(dirname "$lib")
[ "$(readlink "$libdir/libesim.so.${version%%.*}")" = "libesim.so.$version" ] ||
	fail "libesim.so.${version%%.*} does not point at libesim.so.$version"
[ -L "$libdir/libesim.so" ] || fail "no libesim.so link for the linker"
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libesim.so.${version%%.*}" ] || fail "SONAME is '$soname'"
[ -f "$libdir/pkgconfig/esim.pc" ] || fail "esim.pc not in $libdir/pkgconfig"
for h in "$src"/include/esim/*.h; do
	cmp -s "$h" "$root/include/esim/$(basename "$h")" || fail "header $(basename "$h") not installed"
done
[ -z "$(find "$root/include" -name '*_int.h')" ] || fail "an internal header was installed"
[ -f "$root/share/esim-operator/web/index.html" ] || fail "the portal's web folder is not in share/"
for m in man1/esim.1 man1/esim-pki.1 man8/esim-euicc.8 man8/esim-smdp.8 man8/esim-operator.8; do
	[ -f "$root/share/man/$m" ] || fail "man page $m not installed"
	MANWIDTH=80 man -l "$root/share/man/$m" >/dev/null 2>&1 || fail "man -l $m"
done
for c in esim-smdp.conf esim-operator.conf; do
	[ -f "$root/share/doc/esimkit/examples/$c" ] || fail "example $c not installed"
done
units=(esim-smdp esim-operator esim-euicc)
[ -e "$build/esim-smds" ] && units+=(esim-smds)
for c in "${units[@]}"; do
	[ "$c" = esim-euicc ] || [ -f "$root/share/doc/esimkit/examples/$c.conf" ] ||
		fail "example $c.conf not installed"
done
for u in "${units[@]}"; do
	f=$(find "$dest" -name "$u.service" | head -n 1)
	[ -n "$f" ] || fail "unit $u.service not installed"
	grep -q "^ExecStart=$prefix/bin/$u " "$f" || fail "$u.service does not start $prefix/bin/$u"
done
echo "   layout OK ($(find "$dest" -type f | wc -l) files)"

echo "== 2. --version and --help of the installed programs"
for p in "${programs[@]}"; do
	out=$("$bin/$p" --version)
	[ "$out" = "$p $version" ] || fail "$p --version printed '$out', not '$p $version'"
	"$bin/$p" --help >"$work/help.txt" 2>&1 || fail "$p --help exited non-zero"
	grep -q "usage" "$work/help.txt" || fail "$p --help printed no usage"
done
echo "   ${programs[*]}: --version, --help OK"

echo "== 3. esim-operator serve: the settings it needs, the installed web folder"
mkdir -p "$work/cwd"
pushd "$work/cwd" >/dev/null
set +e
"$bin/esim-operator" serve >"$work/op1.txt" 2>&1
rc1=$?
"$bin/esim-operator" serve --db "$work/op.db" --listen 127.0.0.1:0 >"$work/op2.txt" 2>&1
rc2=$?
"$bin/esim-operator" serve --db "$work/op.db" --listen 127.0.0.1:0 --insecure-http maybe \
	>"$work/op3.txt" 2>&1
rc3=$?
set -e
popd >/dev/null
[ $rc1 -eq 2 ] && grep -q "missing setting: db" "$work/op1.txt" ||
	fail "serve without db: rc $rc1: $(cat "$work/op1.txt")"
[ $rc2 -eq 2 ] && grep -q "missing setting(s): tls-cert, tls-key" "$work/op2.txt" ||
	fail "serve without TLS: rc $rc2: $(cat "$work/op2.txt")"
[ $rc3 -eq 2 ] && grep -q "insecure-http: expected yes or no" "$work/op3.txt" ||
	fail "insecure-http maybe: rc $rc3: $(cat "$work/op3.txt")"
[ -z "$(ls -A "$work/cwd")" ] || fail "serve left files in the current directory: $(ls -A "$work/cwd")"
[ ! -e "$work/op.db" ] || fail "serve created its database before refusing"
marker="installed-copy-$$"
printf '<!-- %s -->\n' "$marker" >>"$root/share/esim-operator/web/index.html"
"$bin/esim-operator" init-demo --db "$work/op.db" >/dev/null
head -c $((15 << 20)) /dev/urandom >"$root/share/esim-operator/web/big.js"
"$bin/esim-operator" serve --db "$work/op.db" --listen 127.0.0.1:0 --insecure-http yes \
	--port-file "$work/op.port" --maildir "$work/mail" >"$work/op.log" 2>&1 &
op_pid=$!
pids+=($op_pid)
for _ in $(seq 1 100); do [ -s "$work/op.port" ] && break; sleep 0.1; done
[ -s "$work/op.port" ] || fail "esim-operator serve did not start: $(cat "$work/op.log")"
curl -sS -f "http://127.0.0.1:$(cat "$work/op.port")/" | grep "$marker" >/dev/null ||
	fail "the portal is not served from $root/share/esim-operator/web"
# SIGTERM while a 15 MiB answer is on its way (read at 5 MiB/s: loopback's
# socket buffers take about 9 MiB, so some 4 MiB are still unsent at the
# signal; a SIGKILL there leaves the client short): the answer is finished
# (well inside the 5 s grace), then the exit is 0
curl -sS -f --limit-rate 5M -o "$work/big.out" "http://127.0.0.1:$(cat "$work/op.port")/static/big.js" &
curl_pid=$!
sleep 0.3
kill -TERM "$op_pid"
wait "$curl_pid" || fail "the answer in flight at SIGTERM was cut off"
cmp -s "$work/big.out" "$root/share/esim-operator/web/big.js" ||
	fail "the answer in flight at SIGTERM arrived incomplete ($(stat -c %s "$work/big.out") bytes)"
rc=0
wait "$op_pid" || rc=$?
[ $rc -eq 0 ] || fail "esim-operator exited $rc on SIGTERM"
rm -f "$root/share/esim-operator/web/big.js"
echo "   refusals name db, tls-cert/tls-key, insecure-http; portal from share/; SIGTERM finished a 15 MiB answer in flight, exit 0 OK"

echo "== 4. esim-smdp: SIGHUP reloads DPtls, SIGTERM exits 0"
"$bin/esim-pki" init "$work/pki" --eid 89049032123451234512345678901235 >/dev/null
p=$work/pki/nist
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cp "$p/dptls.pem" "$work/live.pem"
cp "$p/dptls.key.pem" "$work/live.key.pem"
cat >"$work/smdp.conf" <<CONF
db = sqlite:$work/smdp.db
fqdn = 127.0.0.1:$port
dpauth-cert-nist = $p/dpauth.pem
dpauth-key-nist = $p/dpauth.key.pem
dppb-cert-nist = $p/dppb.pem
dppb-key-nist = $p/dppb.key.pem
ci = $p/ci.pem
listen-nist = 127.0.0.1:$port
tls-cert-nist = $work/live.pem
tls-key-nist = $work/live.key.pem
admin-listen = off
CONF
# ES9+ without its TLS files is refused (never plain HTTP)
sed '/^tls-key-nist/d' "$work/smdp.conf" >"$work/smdp-nokey.conf"
set +e
timeout 10 "$bin/esim-smdp" serve --config "$work/smdp-nokey.conf" >"$work/smdp-nokey.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] && grep -q "listen-nist needs tls-cert-nist and tls-key-nist" "$work/smdp-nokey.log" ||
	fail "esim-smdp with listen-nist but no tls-key-nist: rc $rc: $(cat "$work/smdp-nokey.log")"
served() { # the SHA-256 fingerprint of the certificate the server presents now
	openssl s_client -connect "127.0.0.1:$port" -servername 127.0.0.1 </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
"$bin/esim-smdp" serve --config "$work/smdp.conf" >"$work/smdp.log" 2>&1 &
smdp_pid=$!
pids+=($smdp_pid)
for _ in $(seq 1 100); do grep -q "ready" "$work/smdp.log" && break; sleep 0.1; done
grep -q "ready" "$work/smdp.log" || fail "esim-smdp did not start: $(cat "$work/smdp.log")"
old=$(fp "$work/live.pem")
[ "$(served)" = "$old" ] || fail "esim-smdp does not serve its DPtls certificate"
"$bin/esim-pki" issue dptls --out "$work/renewed" --issuer-cert "$p/ci.pem" \
	--issuer-key "$p/ci.key.pem" --host 127.0.0.1 >/dev/null 2>&1
new=$(fp "$work/renewed.pem")
[ "$new" != "$old" ] || fail "the renewed certificate is the old one"
cp "$work/renewed.pem" "$work/live.pem"
cp "$work/renewed.key.pem" "$work/live.key.pem"
[ "$(served)" = "$old" ] || fail "the certificate changed before SIGHUP"
kill -HUP "$smdp_pid"
for _ in $(seq 1 50); do [ "$(served)" = "$new" ] && break; sleep 0.1; done
[ "$(served)" = "$new" ] || fail "after SIGHUP esim-smdp still serves the old certificate"
grep -q "SIGHUP: TLS certificates reloaded" "$work/smdp.log" || fail "no reload line in the log"
# a broken key: the reload is refused, the renewed certificate stays
echo "not a key" >"$work/live.key.pem"
kill -HUP "$smdp_pid"
for _ in $(seq 1 50); do grep -q "TLS reload refused" "$work/smdp.log" && break; sleep 0.1; done
grep -q "TLS reload refused" "$work/smdp.log" || fail "a broken key was not reported"
[ "$(served)" = "$new" ] || fail "a refused reload changed the certificate"
kill -0 "$smdp_pid" || fail "esim-smdp died on a refused reload"
kill -TERM "$smdp_pid"
set +e
wait "$smdp_pid"
rc=$?
set -e
[ $rc -eq 0 ] || fail "esim-smdp exited $rc on SIGTERM: $(tail -5 "$work/smdp.log")"
echo "   reload on SIGHUP (old -> renewed), refused reload kept it, SIGTERM exit 0 OK"

echo "== 5. a program built with pkg-config --cflags --libs esim"
cat >"$work/hello.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <esim/util.h>

int main(void)
{
	char *b64 = NULL;
	if (esim_base64_encode((const uint8_t *)"eSIM", 4, &b64) != ESIM_OK || strcmp(b64, "ZVNJTQ=="))
		return 1;
	free(b64);
	printf("libesim %s\n", esim_version());
	return 0;
}
C
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
[ "$(pkg-config --modversion esim)" = "$version" ] || fail "pkg-config --modversion esim"
# every installed header stands on its own with pkg-config's flags (none
# reaches into src/)
for h in "$root"/include/esim/*.h; do
	printf '#include <esim/%s>\n' "$(basename "$h")" >"$work/h.c"
	# shellcheck disable=SC2046
	cc -std=c11 -Wall -Werror -fsyntax-only $(pkg-config --cflags esim) "$work/h.c" ||
		fail "esim/$(basename "$h") does not compile on its own"
done
# a sanitizer build's libesim needs its runtime first in the program (make
# asan): the program is then built with the same sanitizers
san=""
if readelf -d "$libdir"/libesim.so.* 2>/dev/null | grep 'NEEDED.*libasan' >/dev/null; then
	san="-fsanitize=address,undefined"
fi
# shellcheck disable=SC2046,SC2086
cc -Wall -Werror $san -o "$work/hello" "$work/hello.c" $(pkg-config --cflags --libs esim) ||
	fail "compiling against the installed libesim"
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
readelf -d "$work/hello" | grep "NEEDED.*\[libesim.so.${version%%.*}\]" >/dev/null ||
	fail "hello does not need libesim.so.${version%%.*}"
out=$(LD_LIBRARY_PATH=$libdir "$work/hello") || fail "hello did not run"
[ "$out" = "libesim $version" ] || fail "hello printed '$out'"
LD_LIBRARY_PATH=$libdir ldd "$work/hello" | grep "$libdir/libesim.so" >/dev/null ||
	fail "hello did not load the installed libesim"
echo "   $out, linked and loaded from $libdir OK"

echo "== 6. the demo's journey with the installed programs"
ESIM_DEMO_DIR=$work/demo bash "$src/scripts/demo.sh" "$root" >"$work/demo.log" 2>&1 || {
	tail -n 40 "$work/demo.log" >&2
	fail "scripts/demo.sh $root"
}
grep -q "record OK" "$work/demo.log" || fail "the demo did not verify the termination record"
echo "   demo with $bin OK"
echo "install_test: PASSED"
