#!/usr/bin/env bash
# The Debian packages (issue 17.3), in a throwaway Debian 12 root, never on
# this machine's own system:
#  1. `packaging/deb.sh` (what `make deb` runs) builds libesim0,
#     libesim-dev, esim, esim-euicc, esim-smdp, esim-smds, esim-operator;
#  2. lintian reports no error on them (its output is printed);
#  3. debootstrap --variant=minbase bookworm (the downloaded packages are
#     cached in a tarball in OUT, so reruns do not fetch them again), then
#     apt installs the .debs there with their dependencies;
#  4. each service is started the way its installed unit says (ExecStart
#     as the unit's User, its StateDirectory made as systemd would, a
#     NOTIFY_SOCKET listening): there is no systemd as PID 1 in a chroot.
#     It must report READY=1 through sd_notify and answer (esim-smdp's and
#     esim-smds's /healthz, esim-operator's portal over TLS, esim-euicc's
#     socket with `esim chip info`), then exit 0 on SIGTERM;
#  5. dpkg --purge removes everything: no package, user, file or
#     directory of ours is left (dpkg -S, getent, find).
# 77 when this cannot run here (not root, no debootstrap, no mirror), a
# failure under CI=true.
#
# usage: deb_test.sh SOURCE_DIR OUT_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
mirror=${ESIM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$out/root
pids=()
mounted=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
	[ -n "${ESIM_DEB_KEEP:-}" ] || rm -rf "$root"
}
trap cleanup EXIT
fail() {
	echo "deb_test: FAILED: $*" >&2
	exit 1
}
skip() {
	echo "deb_test: SKIPPED: $*" >&2
	if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then exit 1; fi
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root for debootstrap and chroot"
for tool in debootstrap dpkg-buildpackage dh lintian curl python3; do
	command -v "$tool" >/dev/null || skip "needs $tool (scripts/deps.sh)"
done
t0=$SECONDS
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

# ESIM_DEB_KEEP=1 keeps the root; ESIM_DEB_REUSE=1 then starts at step 4
# with it (debugging the services without rebuilding)
reuse=
if [ -n "${ESIM_DEB_REUSE:-}" ] && [ -x "$root/usr/bin/esim-smdp" ]; then
	reuse=1
	for m in proc sys dev; do
		mount --bind "/$m" "$root/$m"
		mounted+=("$root/$m")
	done
fi
pkgs=(libesim0 libesim-dev esim esim-euicc esim-smdp esim-smds esim-operator)
if [ -z "$reuse" ]; then
echo "== 1. the packages (packaging/deb.sh)"
bash "$src/packaging/deb.sh" "$out/debs" >/dev/null || fail "packaging/deb.sh"
for p in "${pkgs[@]}"; do
	ls "$out/debs/${p}_"*.deb >/dev/null 2>&1 || fail "no $p package"
done
echo "   $(cd "$out/debs" && ls ./*.deb | tr '\n' ' ') ($((SECONDS - t0)) s)"

echo "== 2. lintian"
lintian --tag-display-limit 0 "$out/debs/"*.deb >"$out/lintian.txt" 2>&1 || true
sed 's/^/   /' "$out/lintian.txt"
if grep -q '^E:' "$out/lintian.txt"; then fail "lintian reports errors"; fi
echo "   no error ($(grep -c '^W:' "$out/lintian.txt" || true) warnings)"

echo "== 3. a Debian 12 root with the packages"
tarball=$out/bookworm-minbase.tgz
if [ ! -s "$tarball" ]; then
	debootstrap --variant=minbase --make-tarball="$tarball" bookworm "$out/tarball-work" "$mirror" \
		>"$out/debootstrap.log" 2>&1 || {
		rm -f "$tarball"
		skip "debootstrap cannot fetch bookworm from $mirror (see $out/debootstrap.log)"
	}
fi
rm -rf "$root"
debootstrap --variant=minbase --unpack-tarball="$tarball" bookworm "$root" "$mirror" \
	>"$out/debootstrap.log" 2>&1 || fail "debootstrap (see $out/debootstrap.log)"
for m in proc sys dev; do
	mount --bind "/$m" "$root/$m"
	mounted+=("$root/$m")
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
# no service is started by a maintainer script in this root
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/tmp/debs"
for p in "${pkgs[@]}"; do cp "$out/debs/${p}_"*.deb "$root/tmp/debs/"; done
in_root apt-get update -qq >"$out/apt.log" 2>&1 || skip "apt-get update in the root (no mirror?)"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	$(cd "$root/tmp/debs" && printf '/tmp/debs/%s ' ./*.deb | sed 's|/\./|/|g') \
	>>"$out/apt.log" 2>&1 || {
	tail -n 30 "$out/apt.log" >&2
	fail "apt-get install of the .debs"
}
rm -rf "$root/tmp/debs"
for p in "${pkgs[@]}"; do
	in_root dpkg-query -W -f='${Status}\n' "$p" | grep "install ok installed" >/dev/null || fail "$p not installed"
done
for u in esim-smdp esim-smds esim-operator esim-euicc; do
	in_root getent passwd "$u" >/dev/null || fail "the postinst made no user $u"
done
echo "   installed with apt ($((SECONDS - t0)) s)"
fi

echo "== 4. the services, as their units run them"
# unit_get UNIT KEY: a key of the installed unit (the last one given)
unit_get() { sed -n "s/^$2=//p" "$root/lib/systemd/system/$1.service" | tail -n 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
# start UNIT: ExecStart under the unit's User, StateDirectory and
# RuntimeDirectory made for it, a NOTIFY_SOCKET whose first message is
# written to $out/UNIT.notify
start() {
	local u=$1 user exec env_args=()
	user=$(unit_get "$u" User)
	exec=$(unit_get "$u" ExecStart)
	local state run
	state=$(unit_get "$u" StateDirectory)
	run=$(unit_get "$u" RuntimeDirectory)
	[ -n "$state" ] && install -d -m 0700 -o "$(in_root id -u "$user")" -g "$(in_root id -g "$user")" "$root/var/lib/$state"
	[ -n "$run" ] && install -d -m 0750 -o "$(in_root id -u "$user")" -g "$(in_root id -g "$user")" "$root/run/$run"
	local envline
	envline=$(unit_get "$u" Environment | tr -d '"')
	[ -n "$envline" ] && env_args+=("$envline")
	if [ -f "$root/etc/default/$u" ]; then
		while IFS= read -r l; do [ -n "$l" ] && env_args+=("$l"); done <"$root/etc/default/$u"
	fi
	rm -f "$root/run/$u.notify.sock" "$out/$u.notify"
	python3 - "$root/run/$u.notify.sock" "$out/$u.notify" <<'PY' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
s.settimeout(60)
msg = s.recv(4096)
open(sys.argv[2], 'wb').write(msg)
PY
	pids+=($!)
	for _ in $(seq 1 50); do [ -S "$root/run/$u.notify.sock" ] && break; sleep 0.1; done
	# the unit's $VAR references expanded from its environment, as systemd does
	local cmd=$exec
	for kv in "${env_args[@]}"; do
		local k=${kv%%=*} v=${kv#*=}
		cmd=${cmd//\$$k/$v}
	done
	# shellcheck disable=SC2086
	chroot --userspec="$user:$user" "$root" /usr/bin/env -i PATH=/usr/bin:/bin \
		NOTIFY_SOCKET="/run/$u.notify.sock" $cmd >"$out/$u.log" 2>&1 &
	local pid=$!
	pids+=($pid)
	eval "${u//-/_}_pid=$pid"
	for _ in $(seq 1 100); do [ -s "$out/$u.notify" ] && break; sleep 0.1; done
	grep -q "READY=1" "$out/$u.notify" 2>/dev/null || {
		cat "$out/$u.log" >&2
		fail "$u did not report READY=1 through sd_notify"
	}
}
stop() { # stop UNIT PID: SIGTERM, exit 0
	kill -TERM "$2"
	local rc=0
	wait "$2" || rc=$?
	[ $rc -eq 0 ] || fail "$1 exited $rc on SIGTERM: $(tail -n 5 "$out/$1.log")"
}
EID=89049032123451234512345678901235
# the settings an operator would write under /etc (ConfigurationDirectory)
in_root mkdir -p /etc/esim-smdp
in_root esim-pki init /etc/esim-smdp/pki --eid "$EID" >/dev/null
in_root mkdir -p /etc/esim-operator /var/lib/esim-euicc
cp -a "$root/etc/esim-smdp/pki" "$root/var/lib/esim-euicc/pki"
p=/etc/esim-smdp/pki/nist
es9=$(free_port)
admin=$(free_port)
cat >"$root/etc/esim-smdp/esim-smdp.conf" <<CONF
db = sqlite:/var/lib/esim-smdp/smdp.db
fqdn = 127.0.0.1:$es9
dpauth-cert-nist = $p/dpauth.pem
dpauth-key-nist = $p/dpauth.key.pem
dppb-cert-nist = $p/dppb.pem
dppb-key-nist = $p/dppb.key.pem
ci = $p/ci.pem
listen-nist = 127.0.0.1:$es9
tls-cert-nist = $p/dptls.pem
tls-key-nist = $p/dptls.key.pem
admin-listen = 127.0.0.1:$admin
CONF
in_root chown -R root:esim-smdp /etc/esim-smdp
in_root chmod -R g+rX,o-rwx /etc/esim-smdp
start esim-smdp
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/healthz")
[ "$code" = 200 ] || fail "esim-smdp /healthz answered $code"
echo "   esim-smdp: READY=1, /healthz 200"

op=$(free_port)
cp "$root$p/dptls.pem" "$root/etc/esim-operator/portal.pem"
cp "$root$p/dptls.key.pem" "$root/etc/esim-operator/portal.key.pem"
cat >"$root/etc/esim-operator/esim-operator.conf" <<CONF
db = /var/lib/esim-operator/operator.db
maildir = /var/lib/esim-operator/mail
listen = 127.0.0.1:$op
tls-cert = /etc/esim-operator/portal.pem
tls-key = /etc/esim-operator/portal.key.pem
CONF
in_root chown -R esim-operator:esim-operator /etc/esim-operator
in_root chmod -R go-rwx /etc/esim-operator
start esim-operator
code=$(curl -s -o "$out/portal.html" -w '%{http_code}' --cacert "$root$p/ci.pem" "https://127.0.0.1:$op/")
[ "$code" = 200 ] && cmp -s "$out/portal.html" "$root/usr/share/esim-operator/web/index.html" ||
	fail "esim-operator's portal over TLS: HTTP $code, not /usr/share/esim-operator/web/index.html"
echo "   esim-operator: READY=1, the portal over HTTPS from /usr/share/esim-operator/web"

in_root mkdir -p /etc/esim-smds
cp "$root$p/ci.pem" "$root/etc/esim-smds/ci.pem" # each service reads only its own /etc
for role in dsauth dstls; do
	in_root esim-pki issue "$role" --out "/etc/esim-smds/$role" --issuer-cert "$p/ci.pem" \
		--issuer-key "$p/ci.key.pem" --host 127.0.0.1 >/dev/null 2>&1 ||
		fail "esim-pki issue $role"
done
es11=$(free_port)
admin_ds=$(free_port)
cat >"$root/etc/esim-smds/esim-smds.conf" <<CONF
db = sqlite:/var/lib/esim-smds/smds.db
fqdn = 127.0.0.1:$es11
dsauth-cert-nist = /etc/esim-smds/dsauth.pem
dsauth-key-nist = /etc/esim-smds/dsauth.key.pem
ci = /etc/esim-smds/ci.pem
listen-nist = 127.0.0.1:$es11
tls-cert-nist = /etc/esim-smds/dstls.pem
tls-key-nist = /etc/esim-smds/dstls.key.pem
admin-listen = 127.0.0.1:$admin_ds
CONF
in_root chown -R root:esim-smds /etc/esim-smds
in_root chmod -R g+rX,o-rwx /etc/esim-smds
start esim-smds
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_ds/healthz")
[ "$code" = 200 ] || fail "esim-smds /healthz answered $code"
echo "   esim-smds: READY=1, /healthz 200"

in_root chown -R esim-euicc:esim-euicc /var/lib/esim-euicc
start esim-euicc
in_root esim chip info --socket unix:/run/esim-euicc/card.sock --json >"$out/chip.json" 2>&1 ||
	fail "esim chip info on the service's socket: $(cat "$out/chip.json")"
grep -q "$EID" "$out/chip.json" || fail "esim chip info did not report EID $EID"
echo "   esim-euicc: READY=1, esim chip info on /run/esim-euicc/card.sock: EID $EID"
# shellcheck disable=SC2154
stop esim-smdp "$esim_smdp_pid"
# shellcheck disable=SC2154
stop esim-smds "$esim_smds_pid"
# shellcheck disable=SC2154
stop esim-operator "$esim_operator_pid"
# shellcheck disable=SC2154
stop esim-euicc "$esim_euicc_pid"
rm -rf "$root/run/esim-euicc" # RuntimeDirectory: systemd removes it at stop
echo "   the four exit 0 on SIGTERM"

echo "== 5. dpkg --purge"
in_root dpkg --purge "${pkgs[@]}" >"$out/purge.log" 2>&1 || {
	cat "$out/purge.log" >&2
	fail "dpkg --purge"
}
for p in "${pkgs[@]}"; do
	if in_root dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep "ok installed\|config-files" >/dev/null; then
		fail "$p is still known to dpkg after --purge"
	fi
done
for u in esim-smdp esim-smds esim-operator esim-euicc; do
	if in_root getent passwd "$u" >/dev/null; then fail "user $u left after purge"; fi
	if in_root getent group "$u" >/dev/null; then fail "group $u left after purge"; fi
done
rm -f "$root/run/"esim-*.notify.sock
left=$(cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev \) -prune -o \
	\( -iname '*esim*' -print \) | grep -v '^./var/lib/dpkg/\|^./var/cache/apt/\|^./var/lib/apt/' || true)
[ -z "$left" ] || fail "left after purge: $left"
if in_root dpkg -S esim 2>/dev/null | grep . >/dev/null; then fail "dpkg -S still finds files of ours"; fi
echo "   nothing of ours left ($((SECONDS - t0)) s in all)"
echo "deb_test: PASSED"
