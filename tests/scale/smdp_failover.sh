#!/usr/bin/env bash
# Issue 18, scale-out: three esim-smdp instances on one PostgreSQL behind
# HAProxy (mode tcp: TLS passes through, so the LPA checks each instance's
# DPtls certificate end to end; health checks GET /healthz on each
# instance's plain-HTTP admin listener). scale_load runs DOWNLOADS complete
# SGP.22 downloads through HAProxy, CONCURRENCY at a time, each with its own
# virtual eUICC, retrying as an LPA may; mid-load one instance is killed
# with SIGKILL and restarted a few seconds later. Then, from the database
# and the operator's (counting) callback receiver:
#   - every ordered profile is Installed, moved there exactly once, with its
#     PIR notification row (no acknowledged notification lost);
#   - no ICCID went to two EIDs, no EID holds the same ICCID twice;
#   - every ES2+ callback queued was received; each functionCallIdentifier
#     once, except one that was in flight at the kill (first received at
#     most 2 s after it, then the same identifier again once the outbox
#     lease ran out: twice in all at most);
# and prints the figures (downloads, wall time, rate, retries, gap).
#
# Usage: smdp_failover.sh BUILD_DIR [DOWNLOADS] [CONCURRENCY]
# 77 when haproxy, psql, python3 or PostgreSQL is missing (1 under CI=true).
set -euo pipefail
bin=$(cd "${1:-build}" && pwd)
downloads=${2:-1000}
conc=${3:-16}
here=$(cd "$(dirname "$0")" && pwd)

missing() {
  echo "smdp_failover: $1 is missing ($2)" >&2
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "FAILED: CI=true requires every component: this test must run, not skip" >&2
    exit 1
  fi
  echo "SKIPPED" >&2
  exit 77
}
command -v haproxy >/dev/null || missing haproxy "apt-get install haproxy (scripts/deps.sh)"
command -v psql >/dev/null || missing psql "apt-get install postgresql"
command -v python3 >/dev/null || missing python3 "apt-get install python3"

work=$(mktemp -d /tmp/esim-scale.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for l in "$work"/*.log; do [ -f "$l" ] && { echo "--- $l" >&2; tail -n 15 "$l" >&2; }; done
  fi
  if [ -z "${ESIM_SCALE_KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT
die() { echo "smdp_failover: FAIL: $*" >&2; exit 1; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# wait_for SECONDS DESCRIPTION COMMAND...
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "timed out waiting for $what"
}
t_start=$SECONDS

# --- PostgreSQL (tests/common/pg_helper.c through scale_load) ---------------
"$bin/scale_load" pg "$work" >"$work/pg.log" 2>&1 &
pg_pid=$!
pids+=("$pg_pid")
for _ in $(seq 600); do
  [ -s "$work/pg.url" ] && break
  if ! kill -0 "$pg_pid" 2>/dev/null; then
    rc=0; wait "$pg_pid" || rc=$?
    cat "$work/pg.log" >&2
    [ "$rc" -eq 77 ] && exit 77
    die "PostgreSQL did not start (exit $rc)"
  fi
  sleep 0.1
done
[ -s "$work/pg.url" ] || die "PostgreSQL did not start in 60 s"
db=$(cat "$work/pg.url")
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$db" -c "$1"; }

# --- PKI, ports, configuration --------------------------------------------------
"$bin/esim-pki" init "$work/pki" --eid 89049032123451234512345678901235 >/dev/null
pki=$work/pki/nist
"$bin/esim-pki" issue dptls --out "$work/pki/cb-tls" --issuer-cert "$pki/ci.pem" \
  --issuer-key "$pki/ci.key.pem" --host 127.0.0.1 --cn "callback receiver" >/dev/null 2>&1
"$bin/esim-pki" issue operator --out "$work/pki/smdp-cb-client" --issuer-cert "$pki/ci.pem" \
  --issuer-key "$pki/ci.key.pem" --cn "SM-DP+ callbacks" >/dev/null 2>&1

ports=()
while [ "${#ports[@]}" -lt 7 ]; do
  p=$(free_port)
  case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
ha_port=${ports[0]}
fqdn=127.0.0.1:$ha_port

python3 "$here/cb_receiver.py" "$work/pki/cb-tls.pem" "$work/pki/cb-tls.key.pem" \
  "$work/cb.port" "$work/callbacks.tsv" 2>"$work/receiver.log" &
pids+=($!)
wait_for 10 "the callback receiver" test -s "$work/cb.port"
cb_url=https://127.0.0.1:$(cat "$work/cb.port")/gsma/rsp2/es2plus/handleDownloadProgressInfo

for i in 1 2 3; do
  cat >"$work/smdp$i.conf" <<CONF
db = $db
fqdn = $fqdn
dpauth-cert-nist = $pki/dpauth.pem
dpauth-key-nist = $pki/dpauth.key.pem
dppb-cert-nist = $pki/dppb.pem
dppb-key-nist = $pki/dppb.key.pem
ci = $pki/ci.pem
listen-nist = 127.0.0.1:${ports[$i]}
tls-cert-nist = $pki/dptls.pem
tls-key-nist = $pki/dptls.key.pem
admin-listen = 127.0.0.1:${ports[$((i + 3))]}
operator-ca = $pki/ci.pem
callback-client-cert = $work/pki/smdp-cb-client.pem
callback-client-key = $work/pki/smdp-cb-client.key.pem
threads = 2
log = 0
CONF
done

# --- inventory: operator, type, profiles, released orders ------------------------
smdp() { "$bin/esim-smdp" "$@"; }
"$bin/esim-operator" demo-template "$work/template.der"
smdp add-operator --config "$work/smdp1.conf" ACME "$pki/operator.pem" "$cb_url" >/dev/null
smdp add-type --config "$work/smdp1.conf" STD ACME "$work/template.der" ACME "ACME 5G" >/dev/null
python3 - "$downloads" >"$work/batch.csv" <<'PY'
import sys
def luhn(d):
    s = 0
    for i, c in enumerate(reversed(d)):
        v = int(c)
        if i % 2 == 0:
            v *= 2
            v = v - 9 if v > 9 else v
        s += v
    return str((10 - s % 10) % 10)
for i in range(1, int(sys.argv[1]) + 1):
    d = "89320000%010d" % i
    print("%s%s,20601%010d" % (d, luhn(d), i))
PY
smdp import --config "$work/smdp1.conf" STD "$work/batch.csv" >/dev/null
t_orders=$SECONDS
# as `esim-smdp order` does, in one process (a process per order: ~50 ms each)
"$bin/scale_load" order --db "$db" --fqdn "$fqdn" --pki "$work/pki" --operator ACME --type STD \
  --count "$downloads" --out "$work/mids.txt" 2>"$work/order.log" || die "ordering failed"
[ "$(wc -l <"$work/mids.txt")" -eq "$downloads" ] ||
  die "$(wc -l <"$work/mids.txt") orders made, $downloads wanted"
[ "$(sql "SELECT count(DISTINCT matching_id) FROM smdp_orders WHERE open = 1")" -eq "$downloads" ] ||
  die "the orders' matchingIds are not distinct"
echo "setup: $downloads profiles imported and ordered ($((SECONDS - t_orders)) s for the orders)"

# --- three SM-DP+ instances and HAProxy ---------------------------------------------
start_smdp() { # start_smdp I
  "$bin/esim-smdp" serve --config "$work/smdp$1.conf" >>"$work/smdp$1.log" 2>&1 &
  smdp_pid[$1]=$!
  pids+=("${smdp_pid[$1]}")
}
healthy() { # healthy I: the instance's /healthz answers 200
  [ "$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=1).status)' \
    "http://127.0.0.1:${ports[$(($1 + 3))]}/healthz" 2>/dev/null)" = 200 ]
}
declare -a smdp_pid
for i in 1 2 3; do start_smdp "$i"; done
for i in 1 2 3; do wait_for 30 "esim-smdp $i" healthy "$i"; done

cat >"$work/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
frontend es9
  bind 127.0.0.1:$ha_port
  default_backend smdp
backend smdp
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 250ms fastinter 100ms downinter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
  server smdp1 127.0.0.1:${ports[1]} check port ${ports[4]}
  server smdp2 127.0.0.1:${ports[2]} check port ${ports[5]}
  server smdp3 127.0.0.1:${ports[3]} check port ${ports[6]}
CFG
haproxy -c -q -f "$work/haproxy.cfg" || die "haproxy refuses its configuration"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for 10 "HAProxy" port_open "$ha_port"

# --- the load, with one instance killed and restarted mid-load -------------------------
"$bin/scale_load" run --url "https://$fqdn" --fqdn "$fqdn" --pki "$work/pki" \
  --mids "$work/mids.txt" --concurrency "$conc" >"$work/load.out" 2>"$work/load.log" &
load_pid=$!
pids+=("$load_pid")
installed() { sql "SELECT count(*) FROM smdp_profiles WHERE state = 'Installed'"; }
kill_at=$((downloads / 3))
while [ "$(installed)" -lt "$kill_at" ]; do
  kill -0 "$load_pid" 2>/dev/null || die "the load ended before the kill point"
  sleep 0.2
done
kill_time=$(date +%s.%N)
kill -9 "${smdp_pid[2]}"
wait "${smdp_pid[2]}" 2>/dev/null || true
echo "killed esim-smdp 2 (SIGKILL) at $(installed) installs"
sleep 3
start_smdp 2
wait_for 30 "esim-smdp 2 after the restart" healthy 2
restart_time=$(date +%s.%N)
echo "restarted esim-smdp 2 after $(python3 -c "print('%.1f' % ($restart_time - $kill_time))") s, at $(installed) installs"
load_rc=0
wait "$load_pid" || load_rc=$?
cat "$work/load.out"
[ "$load_rc" -eq 0 ] || { tail -n 20 "$work/load.log" >&2; die "the load did not complete (exit $load_rc)"; }
grep -q "killed\|retry" "$work/load.log" || echo "note: the load saw no error at the kill"

# --- the database's account --------------------------------------------------------------
states=$(sql "SELECT state || '=' || count(*) FROM smdp_profiles GROUP BY state ORDER BY state" | tr '\n' ' ')
echo "profile states: $states"
[ "$(installed)" -eq "$downloads" ] || die "$(installed) profiles Installed, $downloads wanted ($states)"
moved=$(sql "SELECT count(*) FROM smdp_history WHERE event = 'state' AND detail LIKE '% -> Installed%'")
[ "$moved" -eq "$downloads" ] || die "$moved moves to Installed in the history, $downloads downloads"
twice=$(sql "SELECT count(*) FROM (SELECT profile_id FROM smdp_history WHERE event = 'state'
  AND detail LIKE '% -> Installed%' GROUP BY profile_id HAVING count(*) > 1) x")
[ "$twice" -eq 0 ] || die "$twice profiles moved to Installed more than once"
two_eids=$(sql "SELECT count(*) FROM (SELECT p.iccid FROM smdp_orders o JOIN smdp_profiles p
  ON p.id = o.profile_id WHERE o.eid IS NOT NULL GROUP BY p.iccid HAVING count(DISTINCT o.eid) > 1) x")
[ "$two_eids" -eq 0 ] || die "$two_eids ICCIDs bound to two EIDs"
pir_eids=$(sql "SELECT count(*) FROM (SELECT iccid FROM smdp_notifications WHERE iccid IS NOT NULL
  GROUP BY iccid HAVING count(DISTINCT eid) > 1) x")
[ "$pir_eids" -eq 0 ] || die "$pir_eids ICCIDs notified from two EIDs"
no_pir=$(sql "SELECT count(*) FROM smdp_profiles p WHERE p.state = 'Installed' AND NOT EXISTS
  (SELECT 1 FROM smdp_notifications n WHERE n.iccid = p.iccid AND n.eid = p.eid)")
[ "$no_pir" -eq 0 ] || die "$no_pir installed profiles without their PIR notification row"

# --- the ES2+ callbacks ---------------------------------------------------------------------
queued=$(sql "SELECT count(*) FROM smdp_outbox")
drained() { [ "$(sql "SELECT count(*) FROM smdp_outbox WHERE done = 0 AND failed = 0")" -eq 0 ]; }
wait_for 90 "the callback outbox to drain" drained
refused=$(sql "SELECT count(*) FROM smdp_outbox WHERE failed <> 0")
[ "$refused" -eq 0 ] || die "$refused callbacks marked failed"
sql "SELECT body::json->'header'->>'functionCallIdentifier' FROM smdp_outbox" | sort >"$work/queued.ids"
cut -f2 "$work/callbacks.tsv" | sort >"$work/received.all"
sort -u "$work/received.all" >"$work/received.ids"
lost=$(comm -23 "$work/queued.ids" "$work/received.ids" | wc -l)
extra=$(comm -13 "$work/queued.ids" "$work/received.ids" | wc -l)
[ "$lost" -eq 0 ] || die "$lost queued callbacks never received"
[ "$extra" -eq 0 ] || die "$extra callbacks received that were never queued"
python3 - "$work/callbacks.tsv" "$kill_time" <<'PY' || die "callbacks delivered more than once in normal running"
import sys, collections
kill = float(sys.argv[2])
seen = collections.defaultdict(list)
for line in open(sys.argv[1]):
    t, fcid = line.split("\t")[:2]
    seen[fcid].append(float(t))
dups = {k: v for k, v in seen.items() if len(v) > 1}
# the receiver stamps a request when it handles it: one the killed instance
# sent just before SIGKILL may be stamped a little after (grace 2 s)
bad = [k for k, v in dups.items() if len(v) > 2 or min(v) > kill + 2.0]
print("callbacks: %d received, %d distinct functionCallIdentifiers, %d resent after the kill"
      % (sum(len(v) for v in seen.values()), len(seen), len(dups)))
for k, v in sorted(dups.items(), key=lambda kv: min(kv[1]))[:5]:
    print("  %s: %s" % (k, ", ".join("%+.3f" % (t - kill) for t in sorted(v))))
if bad:
    print("delivered twice without a crash between: %s" % ", ".join(sorted(bad)[:5]))
    sys.exit(1)
PY
echo "callbacks queued: $queued, all received"
echo "smdp_failover: PASS ($downloads downloads through HAProxy, 3 instances, one killed and restarted; $((SECONDS - t_start)) s in all)"
