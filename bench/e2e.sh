#!/usr/bin/env bash
# bench/e2e.sh: the end-to-end download benchmark of the three real
# programs (issue 15): `esim profile download` (the LPA, one process per
# download) against `esim-euicc` (the virtual eUICC) and `esim-smdp` (the
# SM-DP+ over HTTPS on loopback), first over the eUICC's unix socket, then
# through a real pcscd with vsmartcard's vpcd reader (PC/SC). SGP.22 3.1.3:
# activation code -> ES9+ / ES10b mutual authentication -> BPP loaded and
# installed -> PIR delivered to the SM-DP+ and removed from the card. Every
# signature is checked, the BPP is SCP03t-decrypted on the card, and both
# stores are SQLite with synchronous=FULL (durable), as deployed.
#
#   bench/e2e.sh [--build-dir DIR] [--downloads N] [--transports socket,pcsc]
#                [--profile ts48|synthetic|FILE] [--startup-runs N] [--tmp DIR]
#                [--keep] [--check] [--alternate-esim PATH]
#
# It builds nothing: DIR (default build-bench, from `make bench`) must hold
# esim, esim-euicc, esim-smdp, esim-pki and esim-operator. With
# --alternate-esim PATH every other download (the warm-up included) runs
# that esim instead, against the same eUICC and SM-DP+, and the times of
# the two are reported apart: an A/B comparison of two LPA builds under
# the same load (the APDU, byte and CPU figures are of both together). See
# bench/README.md ("End to end") for what is measured and how.
#
# Exit status: 0 all downloads of every requested transport succeeded;
# 1 a failure; 2 bad options; 77 a needed component is missing (the
# programs, or pcscd/vpcd for the PC/SC part), or 1 then if CI=true or CI=1
# (the rule of tests/common/testutil.c, test_component_missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-bench
N=${N:-50}
transports=socket,pcsc
profile=ts48
startup_runs=200
tmp_parent=${TMPDIR:-/tmp}
keep=false
check=false
esim_b=

usage() { sed -n '12,14p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "e2e: $*" >&2; exit 1; }
bad() { echo "e2e: $*" >&2; usage >&2; exit 2; }
ci_strict() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }
# missing WHAT WHY: skip (77), or fail under CI=true
missing() {
	if ci_strict; then
		echo "e2e: FAILED: $1 is missing ($2), and CI=true requires every component" >&2
		exit 1
	fi
	echo "e2e: SKIPPED: $1 is missing: $2" >&2
	exit 77
}

while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) build=${2:?}; shift ;;
	--downloads | -n) N=${2:?}; shift ;;
	--transports) transports=${2:?}; shift ;;
	--profile) profile=${2:?}; shift ;;
	--startup-runs) startup_runs=${2:?}; shift ;;
	--tmp) tmp_parent=${2:?}; shift ;;
	--keep) keep=true ;;
	--check) check=true ;;
	--alternate-esim) esim_b=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) bad "unknown option '$1'" ;;
	esac
	shift
done
[[ $N =~ ^[1-9][0-9]{0,4}$ ]] || bad "--downloads must be 1..99999, not '$N'"
[[ $startup_runs =~ ^[0-9]{1,5}$ ]] || bad "--startup-runs must be 0..99999"
want_socket=false want_pcsc=false
IFS=, read -r -a tlist <<<"$transports"
for t in "${tlist[@]}"; do
	case $t in
	socket) want_socket=true ;;
	pcsc) want_pcsc=true ;;
	*) bad "unknown transport '$t' (socket, pcsc)" ;;
	esac
done

[ -d "$build" ] || missing "the build directory" "no $build (make bench, or --build-dir DIR)"
bin=$(cd "$build" && pwd)
for p in esim esim-euicc esim-smdp esim-pki esim-operator; do
	[ -x "$bin/$p" ] || missing "$p" "no $bin/$p (build it first: make bench)"
done
[ -z "$esim_b" ] || [ -x "$esim_b" ] || bad "--alternate-esim: '$esim_b' is not an executable"
"$bin/esim-euicc" --help | grep -- '--stats' >/dev/null ||
	die "$bin/esim-euicc has no --stats (an older build: rebuild it)"

work=$(mktemp -d "$tmp_parent/esim-e2e-XXXXXX")
pids=()
pcscd_pid=
cleanup() {
	local p
	for p in "${pids[@]}" $pcscd_pid; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}" $pcscd_pid; do wait "$p" 2>/dev/null || true; done
	if [ -n "${pcsc_dir:-}" ]; then rm -rf "$pcsc_dir"; fi
	if $keep; then echo "e2e: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
	else
		local p
		while :; do p=$((20000 + RANDOM % 40000)); port_open "$p" || { echo "$p"; return; }; done
	fi
}
# wait_for SECONDS DESCRIPTION COMMAND...
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	while [ "$SECONDS" -lt "$deadline" ]; do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.05
	done
	echo "e2e: timed out waiting for $what" >&2
	for l in "$work"/*.log; do [ -f "$l" ] && { echo "--- $l" >&2; tail -n 20 "$l" >&2; }; done
	exit 1
}
# ns on CPU of every thread of PID (schedstat: ns, not 10 ms ticks)
cpu_ns() {
	local t sum=0 a rest
	for t in /proc/"$1"/task/*/schedstat; do
		read -r a rest <"$t" 2>/dev/null || continue
		sum=$((sum + a))
	done
	echo "$sum"
}
# children_us VAR: the waited-for children's user+sys CPU in microseconds
# into VAR, from the `times` builtin (in this shell: a $(...) subshell would
# report its own children)
children_us() {
	times >"$work/times"
	local l cu cs sum=0 v frac
	{ read -r l; read -r cu cs; } <"$work/times"
	for v in "$cu" "$cs"; do # 0m0.123s
		[[ $v =~ ^([0-9]+)m([0-9]+)[.,]([0-9]+)s$ ]] || die "cannot read times: '$v'"
		frac=${BASH_REMATCH[3]}000000
		sum=$((sum + (10#${BASH_REMATCH[1]} * 60 + 10#${BASH_REMATCH[2]}) * 1000000 + 10#${frac:0:6}))
	done
	printf -v "$1" '%s' "$sum"
}
# median and p90 (nearest rank) of the integers in FILE, one a line
stats_of() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		r = int(0.9 * NR); if (r < 0.9 * NR) r++; if (r < 1) r = 1
		printf "%s %s %s %s\n", m, v[r], v[1], v[NR] }'
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

# ---- the profile --------------------------------------------------------------
ts48=${ESIM_SHARED_DIR:-$root/../shared}/testdata/ts48/TS48V2-SAIP2-1-BERTLV-UNIQUE.der
case $profile in
ts48 | synthetic)
	if [ "$profile" = ts48 ] && [ -f "$ts48" ]; then
		upp=$ts48
		is_ts48=true
		profile_desc="TS.48 $(basename "$ts48")"
	else
		[ "$profile" = ts48 ] && echo "e2e: no $ts48: using the synthetic test profile" >&2
		upp=$work/upp.der
		"$bin/esim-operator" demo-template "$upp"
		is_ts48=false
		profile_desc="synthetic (rsp_saip_make_test_upp, NOT TS.48)"
	fi
	;;
*)
	[ -f "$profile" ] || bad "--profile: no file $profile"
	upp=$profile
	is_ts48=false
	profile_desc="$(basename "$profile")"
	;;
esac
upp_size=$(stat -c %s "$upp")

# ---- PKI, SM-DP+ and orders (before any timing) ---------------------------------
n_phases=0
$want_socket && n_phases=$((n_phases + 1))
$want_pcsc && n_phases=$((n_phases + 1))
n_orders=$((n_phases * (N + 1))) # one untimed warm-up download per transport
EID=89049032123451234512345678901235
pki=$work/pki
"$bin/esim-pki" init "$pki" --eid "$EID" >/dev/null
es9_port=$(free_port)
conf=$work/smdp.conf
cat >"$conf" <<CONF
db = sqlite:$work/smdp.db
fqdn = 127.0.0.1:$es9_port
ci = $pki/nist/ci.pem
dpauth-cert-nist = $pki/nist/dpauth.pem
dpauth-key-nist = $pki/nist/dpauth.key.pem
dppb-cert-nist = $pki/nist/dppb.pem
dppb-key-nist = $pki/nist/dppb.key.pem
listen-nist = 127.0.0.1:$es9_port
tls-cert-nist = $pki/nist/dptls.pem
tls-key-nist = $pki/nist/dptls.key.pem
CONF
smdp() { local c=$1; shift; "$bin/esim-smdp" "$c" --config "$conf" "$@"; }
smdp add-operator E2E "$pki/nist/operator.pem" >/dev/null
smdp add-type E2E E2E "$upp" esimkit e2e >/dev/null
# ICCIDs 8900098766 + 8 digits + the Luhn digit the import checks
luhn() {
	local s=$1 sum=0 i d dbl=1
	for ((i = ${#s} - 1; i >= 0; i--)); do
		d=${s:i:1}
		if [ $dbl = 1 ]; then d=$((d * 2)); [ $d -gt 9 ] && d=$((d - 9)); fi
		sum=$((sum + d))
		dbl=$((1 - dbl))
	done
	echo $(((10 - sum % 10) % 10))
}
for ((i = 1; i <= n_orders; i++)); do
	b=$(printf '8900098766%08d' "$i")
	printf '%s%s,001010%09d\n' "$b" "$(luhn "$b")" "$i"
done >"$work/batch.csv"
smdp import E2E "$work/batch.csv" >/dev/null
codes=()
for ((i = 0; i < n_orders; i++)); do
	code=$(smdp order E2E E2E | sed -n 's/^activation code //p')
	[ -n "$code" ] || die "esim-smdp order printed no activation code"
	codes+=("$code")
done
"$bin/esim-smdp" serve --config "$conf" >"$work/smdp.log" 2>&1 &
smdp_pid=$!
pids+=("$smdp_pid")
wait_for 30 "the SM-DP+" grep -Eq 'esim-smdp: ready|"msg":"ready"' "$work/smdp.log"
wait_for 30 "the SM-DP+ port $es9_port" port_open "$es9_port"

# the card: room for every profile of the run, so nothing is deleted and
# no deletion notification accumulates (each PIR leaves the card once the
# SM-DP+ acknowledged it)
capacity=$(((n_orders + 1) * upp_size * 4 + (4 << 20)))
euicc_db=$work/euicc.db
next_code=0

echo "e2e: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?') in $bin"
echo "e2e: profile $profile_desc, $upp_size bytes"
read -r la1 la5 la15 _ </proc/loadavg
echo "e2e: load average at the start $la1 $la5 $la15 on $(nproc) CPUs (other load inflates every time)"
echo "e2e: $N timed downloads per transport, each after 1 untimed warm-up; the eUICC has room for all (nothing deleted), capacity $capacity bytes"

# ---- one transport ----------------------------------------------------------------
# run_phase NAME ESIM-TRANSPORT-ARGS...: N+1 downloads one after another
declare -A R
run_phase() {
	local name=$1
	shift
	local -a targs=("$@")
	local st=$work/$name.stats
	local times_f=$work/$name.ms apdu_f=$work/$name.apdus cb_f=$work/$name.cbytes rb_f=$work/$name.rbytes
	: >"$times_f"; : >"$apdu_f"; : >"$cb_f"; : >"$rb_f"; : >"$times_f.b"
	local prog tf
	local ok=0 fail=0 i k=$stats_base t0 t1 out rc lines prev_c=0 prev_cb=0 prev_rb=0
	local e0 e1 s0 s1 l0 l1 p0=0 p1=0 deadline
	read_stats() { # waits for line number $1 of the stats file
		local want=$1 spins=0 l
		while :; do
			mapfile -t lines <"$st"
			if [ "${#lines[@]}" -gt "$want" ]; then
				l=${lines[$want]}
				[[ $l =~ ^stats\ ([0-9]+)\ commands\ ([0-9]+)\ command_bytes\ ([0-9]+)\ response_bytes\ ([0-9]+)$ ]] ||
					die "bad stats line '$l'"
				sc=${BASH_REMATCH[2]} scb=${BASH_REMATCH[3]} srb=${BASH_REMATCH[4]}
				return 0
			fi
			spins=$((spins + 1))
			[ $spins -lt 200000 ] || die "esim-euicc wrote no stats line $want"
		done
	}
	read_stats "$stats_base"
	prev_c=$sc prev_cb=$scb prev_rb=$srb
	for ((i = 0; i <= N; i++)); do
		local code=${codes[next_code]}
		next_code=$((next_code + 1))
		if [ $i = 1 ]; then # the warm-up is done: the measured window opens
			e0=$(cpu_ns "$euicc_pid"); s0=$(cpu_ns "$smdp_pid")
			[ -n "$pcscd_pid" ] && p0=$(cpu_ns "$pcscd_pid")
			children_us l0
		fi
		prog=$bin/esim tf=$times_f
		if [ -n "$esim_b" ] && [ $((i % 2)) = 0 ]; then prog=$esim_b tf=$times_f.b; fi
		t0=${EPOCHREALTIME/./}
		rc=0
		"$prog" profile download "$code" --yes --json "${targs[@]}" --ci "$pki/nist/ci.pem" \
			>"$work/out.json" 2>"$work/out.err" || rc=$?
		t1=${EPOCHREALTIME/./}
		out=
		read -r -d '' out <"$work/out.json" || true
		if [ $rc = 0 ] && [[ $out == *'"installed": true'* ]] && [[ $out == *'"delivered": true'* ]]; then
			[ $i = 0 ] || ok=$((ok + 1))
		else
			fail=$((fail + 1))
			if [ $fail -le 3 ]; then
				echo "e2e: $name download $i failed (exit $rc):" >&2
				cat "$work/out.err" "$work/out.json" >&2
			fi
		fi
		kill -USR1 "$euicc_pid"
		k=$((k + 1))
		read_stats $k
		if [ $i -gt 0 ]; then
			echo $((t1 - t0)) >>"$tf"
			echo $((sc - prev_c)) >>"$apdu_f"
			echo $((scb - prev_cb)) >>"$cb_f"
			echo $((srb - prev_rb)) >>"$rb_f"
		fi
		prev_c=$sc prev_cb=$scb prev_rb=$srb
	done
	children_us l1
	e1=$(cpu_ns "$euicc_pid"); s1=$(cpu_ns "$smdp_pid")
	[ -n "$pcscd_pid" ] && p1=$(cpu_ns "$pcscd_pid")
	local m p90 mn mx
	read -r m p90 mn mx < <(stats_of "$times_f")
	R[$name.ok]=$ok R[$name.fail]=$fail
	R[$name.median]=$(ms "$m") R[$name.p90]=$(ms "$p90") R[$name.min]=$(ms "$mn") R[$name.max]=$(ms "$mx")
	read -r m p90 mn mx < <(stats_of "$apdu_f")
	R[$name.apdus]=$m R[$name.apdus_min]=$mn R[$name.apdus_max]=$mx
	read -r m p90 mn mx < <(stats_of "$cb_f")
	R[$name.cbytes]=$m
	read -r m p90 mn mx < <(stats_of "$rb_f")
	R[$name.rbytes]=$m
	R[$name.cpu_esim]=$(awk -v a="$l0" -v b="$l1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n / 1000 }')
	R[$name.cpu_euicc]=$(awk -v a="$e0" -v b="$e1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n / 1e6 }')
	R[$name.cpu_smdp]=$(awk -v a="$s0" -v b="$s1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n / 1e6 }')
	R[$name.cpu_pcscd]=$(awk -v a="$p0" -v b="$p1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n / 1e6 }')
	echo
	echo "$name: $ok of $N downloads succeeded (installed, PIR delivered)$([ $fail -gt 0 ] && echo ", $fail FAILED")"
	echo "  time per download:  median ${R[$name.median]} ms, p90 ${R[$name.p90]} ms (min ${R[$name.min]}, max ${R[$name.max]})"
	echo "  command APDUs:      ${R[$name.apdus]} per download (min ${R[$name.apdus_min]}, max ${R[$name.apdus_max]}); bytes to the card ${R[$name.cbytes]}, from the card ${R[$name.rbytes]} (medians)"
	echo "  CPU per download:   esim ${R[$name.cpu_esim]} ms, esim-euicc ${R[$name.cpu_euicc]} ms, esim-smdp ${R[$name.cpu_smdp]} ms$([ -n "$pcscd_pid" ] && echo ", pcscd ${R[$name.cpu_pcscd]} ms")"
	# the exchange is serial (each side waits for the other): the CPU of all
	# the processes together is a floor of the time per download
	R[$name.cpu_sum]=$(awk -v a="${R[$name.cpu_esim]}" -v b="${R[$name.cpu_euicc]}" -v c="${R[$name.cpu_smdp]}" \
		-v d="${R[$name.cpu_pcscd]}" 'BEGIN { printf "%.2f", a + b + c + d }')
	echo "  CPU of all of them: ${R[$name.cpu_sum]} ms per download (the serial exchange's floor of the time)"
	if [ -n "$esim_b" ] && [ -s "$times_f.b" ]; then
		local ma pa na mb pb nb
		read -r ma pa na mx < <(stats_of "$times_f")
		read -r mb pb nb mx < <(stats_of "$times_f.b")
		echo "  alternated:         $bin/esim median $(ms "$ma") ms, min $(ms "$na") ($(wc -l <"$times_f") downloads);" \
			"$esim_b median $(ms "$mb") ms, min $(ms "$nb") ($(wc -l <"$times_f.b") downloads)"
	fi
	[ $fail = 0 ]
}

stop_euicc() {
	kill "$euicc_pid" 2>/dev/null || true
	wait "$euicc_pid" 2>/dev/null || true
}

failed=0
pcsc_missing=
if $want_socket; then
	sock=$work/card.sock
	"$bin/esim-euicc" --db "sqlite:$euicc_db" --pki "$pki" --listen "unix:$sock" \
		--capacity "$capacity" --stats "$work/socket.stats" >"$work/euicc-socket.log" 2>&1 &
	euicc_pid=$!
	pids+=("$euicc_pid")
	wait_for 30 "the eUICC socket" test -S "$sock"
	wait_for 30 "the eUICC's first stats line" grep -q '^stats 0 ' "$work/socket.stats"
	stats_base=0
	run_phase socket --socket "unix:$sock" || failed=1
	stop_euicc
fi

# ---- PC/SC: a private pcscd with a vpcd reader (as tests/common/pcscd_helper.c) ----
PCSCD=${E2E_PCSCD:-/usr/sbin/pcscd} # E2E_PCSCD: another binary (or none, to see the skip)
VPCD=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
pcsc_setup() { # 0, or 1 with pcsc_missing set
	if [ ! -x $PCSCD ] || [ ! -r $VPCD ]; then
		pcsc_missing="$PCSCD or $VPCD is not installed (scripts/deps.sh: pcscd vsmartcard-vpcd)"
		return 1
	fi
	# one pcscd per machine: wait for other PC/SC tests (the helper's lock)
	exec {lock_fd}>>/tmp/esimkit-pcscd.lock
	flock -w 300 "$lock_fd" || die "another PC/SC test holds /tmp/esimkit-pcscd.lock for too long"
	local old
	for old in $(pgrep -x pcscd || true); do
		if tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep '/tmp/esimkit-pcscd\.' >/dev/null; then
			echo "e2e: stopping pcscd $old left by an earlier run" >&2
			kill "$old" 2>/dev/null || true
			sleep 1
		elif [ -d "/proc/$old" ]; then
			pcsc_missing="a pcscd not started by this benchmark or the tests runs (pid $old); stop it to run the PC/SC part"
			return 1
		fi
	done
	if [ ! -w /run ] && [ ! -w /run/pcscd ]; then
		pcsc_missing="starting pcscd needs write access to /run/pcscd"
		return 1
	fi
	rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
	local p
	while :; do
		p=$((41000 + (RANDOM % 5000) * 2))
		port_open "$p" || port_open $((p + 1)) || break
	done
	vpcd_port=$p
	pcsc_dir=$(mktemp -d /tmp/esimkit-pcscd.XXXXXX)
	mkdir "$pcsc_dir/conf"
	printf 'FRIENDLYNAME "esimkit vpcd"\nDEVICENAME   /dev/null:0x%04X\nLIBPATH      %s\nCHANNELID    0x%04X\n' \
		"$p" "$VPCD" "$p" >"$pcsc_dir/conf/vpcd"
	$PCSCD -f -c "$pcsc_dir/conf" >"$work/pcscd.log" 2>&1 &
	pcscd_pid=$!
	wait_for 15 "pcscd" test -S /run/pcscd/pcscd.comm
	return 0
}

if $want_pcsc; then
	if pcsc_setup; then
		reader="esimkit vpcd 00 00"
		"$bin/esim-euicc" --db "sqlite:$euicc_db" --pki "$pki" --vpcd "127.0.0.1:$vpcd_port" \
			--capacity "$capacity" --stats "$work/pcsc.stats" >"$work/euicc-pcsc.log" 2>&1 &
		euicc_pid=$!
		pids+=("$euicc_pid")
		wait_for 30 "the eUICC's first stats line" grep -q '^stats 0 ' "$work/pcsc.stats"
		wait_for 30 "the card in PC/SC reader '$reader'" "$bin/esim" chip info --reader "$reader"
		# the APDUs of chip info are not the downloads': line 1 is the base
		kill -USR1 "$euicc_pid"
		wait_for 10 "the eUICC's stats line 1" grep -q '^stats 1 ' "$work/pcsc.stats"
		stats_base=1
		run_phase pcsc --reader "$reader" || failed=1
		stop_euicc
	else
		echo
		echo "pcsc: not run: $pcsc_missing" >&2
	fi
fi

# ---- esim start-up ---------------------------------------------------------------
# `esim --help`: exec, dynamic linking of libesim's libraries, argument
# parsing, exit. /bin/true, timed the same way, is the floor of the method
# (bash's fork + exec + wait).
startup() { # PROGRAM...: median microseconds over $startup_runs runs
	local f=$work/startup.us i t0 t1 m rest
	: >"$f"
	for ((i = 0; i < startup_runs; i++)); do
		t0=${EPOCHREALTIME/./}
		"$@" >/dev/null 2>&1 || true
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0)) >>"$f"
	done
	read -r m rest < <(stats_of "$f")
	ms "$m"
}
if [ "$startup_runs" -gt 0 ]; then
	R[startup]=$(startup "$bin/esim" --help)
	R[startup_floor]=$(startup /bin/true)
	echo
	echo "esim start-up: median ${R[startup]} ms over $startup_runs runs of 'esim --help' (/bin/true the same way: ${R[startup_floor]} ms)"
fi

# ---- verdict ---------------------------------------------------------------------
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { # VALUE LIMIT
	if le "$1" "$2"; then echo met; else echo "NOT met"; fi
}
echo
echo "| transport | downloads | median ms | p90 ms | command APDUs | bytes to card | bytes from card | CPU esim ms | CPU esim-euicc ms | CPU esim-smdp ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for t in socket pcsc; do
	[ -n "${R[$t.ok]:-}" ] || continue
	echo "| $t | ${R[$t.ok]}/$N | ${R[$t.median]} | ${R[$t.p90]} | ${R[$t.apdus]} | ${R[$t.cbytes]} | ${R[$t.rbytes]} | ${R[$t.cpu_esim]} | ${R[$t.cpu_euicc]} | ${R[$t.cpu_smdp]} |"
done
echo
echo "targets (issue 15):"
if [ -n "${R[socket.ok]:-}" ]; then
	echo "  socket median <= 10 ms: ${R[socket.median]} ms, $(verdict "${R[socket.median]}" 10)"
	if $is_ts48; then
		echo "  socket <= 40 command APDUs per TS.48 download: ${R[socket.apdus]}, $(verdict "${R[socket.apdus]}" 40)"
	else
		echo "  socket <= 40 command APDUs per TS.48 download: ${R[socket.apdus]} (not a TS.48 profile: not comparable)"
	fi
fi
if [ -n "${R[pcsc.ok]:-}" ]; then
	echo "  PC/SC median <= 20 ms: ${R[pcsc.median]} ms, $(verdict "${R[pcsc.median]}" 20)"
	if $is_ts48; then
		echo "  PC/SC <= 80 command APDUs per TS.48 download: ${R[pcsc.apdus]}, $(verdict "${R[pcsc.apdus]}" 80)"
	else
		echo "  PC/SC <= 80 command APDUs per TS.48 download: ${R[pcsc.apdus]} (not a TS.48 profile: not comparable)"
	fi
fi
[ -n "${R[startup]:-}" ] && echo "  esim start-up <= 2 ms: ${R[startup]} ms, $(verdict "${R[startup]}" 2)"
read -r la1 la5 la15 _ </proc/loadavg
echo "e2e: load average at the end $la1 $la5 $la15"

# --check (the CTest smoke run): the downloads succeeded and every number
# printed is a measurement, not a default (an empty stats file or a dead
# process would leave zeros)
if $check; then
	for t in socket pcsc; do
		[ -n "${R[$t.ok]:-}" ] || continue
		[ "${R[$t.ok]}" = "$N" ] || die "check: $t: ${R[$t.ok]} of $N downloads succeeded"
		for k in median p90 apdus cbytes rbytes cpu_esim cpu_euicc cpu_smdp; do
			le "${R[$t.$k]}" 0 && die "check: $t: $k is ${R[$t.$k]}, not a positive number"
		done
	done
	[ -n "${R[startup]:-}" ] && le "${R[startup]}" 0 && die "check: the start-up time is ${R[startup]}"
	echo "e2e: check passed"
fi

[ $failed = 0 ] || exit 1
[ -z "$pcsc_missing" ] || missing "PC/SC (pcscd + vpcd)" "$pcsc_missing"
exit 0
