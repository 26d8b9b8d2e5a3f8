#!/usr/bin/env bash
# The systemd units (packaging/systemd, issue 17.2): installed into a
# DESTDIR, each passes `systemd-analyze verify` (its program pointed at the
# DESTDIR's copy, its man page found there too), carries the hardening the
# issue asks for, and `systemd-analyze security --offline` rates it.
#
# usage: units_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/esim-units-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
	echo "units_test: FAILED: $*" >&2
	exit 1
}
if ! command -v systemd-analyze >/dev/null; then
	echo "units_test: SKIPPED: needs systemd-analyze (apt-get install systemd)" >&2
	if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then exit 1; fi
	exit 77
fi
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
dest=$work/dest
DESTDIR=$dest cmake --install "$build" >"$work/install.log" || {
	cat "$work/install.log" >&2
	fail "cmake --install"
}
units=(esim-smdp esim-operator esim-euicc)
[ -e "$build/esim-smds" ] && units+=(esim-smds)
for u in "${units[@]}"; do
	f=$(find "$dest" -path "*/systemd/system/$u.service" | head -n 1)
	[ -n "$f" ] || fail "$u.service not installed"
	# the same unit, its program at the DESTDIR's path
	mkdir -p "$work/units"
	sed "s|$prefix/bin/|$dest$prefix/bin/|g" "$f" >"$work/units/$u.service"
	if ! MANPATH=$dest$prefix/share/man systemd-analyze verify "$work/units/$u.service" \
		>"$work/$u.verify" 2>&1 || [ -s "$work/$u.verify" ]; then
		cat "$work/$u.verify" >&2
		fail "systemd-analyze verify $u.service"
	fi
	for d in Type=notify "User=$u" "StateDirectory=$u" ProtectSystem=strict ProtectHome=yes \
		PrivateTmp=yes NoNewPrivileges=yes "CapabilityBoundingSet=$" RestrictAddressFamilies= \
		SystemCallFilter=@system-service; do
		grep -q "^$d" "$f" || fail "$u.service lacks $d"
	done
	if [ "$u" != esim-euicc ]; then
		grep -q "^ExecReload=/bin/kill -HUP \$MAINPID$" "$f" || fail "$u.service: no ExecReload"
		grep -q "^ConfigurationDirectory=$u$" "$f" || fail "$u.service: no ConfigurationDirectory"
	fi
	score=$(systemd-analyze security --offline=yes "$work/units/$u.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	[ -n "$score" ] || fail "systemd-analyze security gave no exposure level for $u"
	# 10 is "unsafe"; these units must stay at "OK" (below 4.0) or better
	awk -v s="$score" 'BEGIN { exit !(s < 4.0) }' || fail "$u.service: exposure $score (>= 4.0)"
	echo "$u.service: verify OK, hardening OK, exposure $score"
done
echo "units_test: PASSED"
