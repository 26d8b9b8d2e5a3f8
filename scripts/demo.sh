#!/usr/bin/env bash
# The README's main job (`make demo`): the whole journey of issue 6 on
# loopback, with nothing from outside the repository. A Belgian customer
# gets an eSIM from the operator (ES2+ to the SM-DP+), downloads and
# enables it with `esim` on the virtual eUICC, uses it; then ends the
# subscription through the operator's JSON API: account check, payment of
# the open invoice, termination request with identity proof, staff
# approval, `esim cancel` deletes the profile, the eUICC-signed deletion
# notification reaches the operator through the SM-DP+, the case closes and
# the signed termination record is saved and verified. A second journey
# goes through the SM-DS (esim-smds): the operator orders for the
# customer's EID with the SM-DS, the device discovers the event and
# downloads without an activation code, and the event is gone afterwards.
#
# Usage: scripts/demo.sh BUILD_DIR     (ESIM_DEMO_DIR: where outputs go)
#        scripts/demo.sh PREFIX        an installed tree (PREFIX/bin/esim...,
#                                      e.g. /usr or DESTDIR/usr/local)
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build" && pwd)
if [ ! -x "$bin/esim" ] && [ -x "$bin/bin/esim" ]; then bin=$bin/bin; fi
work=${ESIM_DEMO_DIR:-$root/demo-out}
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

for tool in curl jq; do
  # 77: "skipped" for CTest; under CI=true a missing tool fails the run
  command -v "$tool" >/dev/null || { echo "demo: needs $tool (apt-get install $tool)" >&2
    [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ] && exit 1; exit 77; }
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    local p
    while :; do p=$((20000 + RANDOM % 40000)); port_open "$p" || { echo "$p"; return; }; done
  fi
}
# wait_for DESCRIPTION COMMAND...: up to 30 s, then fail loudly
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "demo: timed out waiting for $what" >&2
  for l in "$work"/*.log; do echo "--- $l" >&2; tail -n 20 "$l" >&2; done
  exit 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

EID=89049032123451234512345678901235
pki=$work/pki/nist
es9_port=$(free_port)
es2_port=$(free_port)
op_port=$(free_port)
cb_port=$(free_port)
while [ "$es2_port" = "$es9_port" ]; do es2_port=$(free_port); done
while [ "$op_port" = "$es9_port" ] || [ "$op_port" = "$es2_port" ]; do op_port=$(free_port); done
while [ "$cb_port" = "$es9_port" ] || [ "$cb_port" = "$es2_port" ] || [ "$cb_port" = "$op_port" ]; do
  cb_port=$(free_port)
done
# the SM-DS (second journey): ES11 for the device, ES12 for the SM-DP+
ds11_port=$(free_port)
ds12_port=$(free_port)
while [[ " $es9_port $es2_port $op_port $cb_port " == *" $ds11_port "* ]]; do ds11_port=$(free_port); done
while [[ " $es9_port $es2_port $op_port $cb_port $ds11_port " == *" $ds12_port "* ]]; do ds12_port=$(free_port); done
smdp_addr=127.0.0.1:$es9_port
op_url=http://127.0.0.1:$op_port
cb_url=https://127.0.0.1:$cb_port/gsma/rsp2/es2plus/handleDownloadProgressInfo

step "1. Test PKI: CI, EUM, eUICC, SM-DP+ (auth, pb, tls) and the operator's ES2+ certificate"
"$bin/esim-pki" init "$work/pki" --eid "$EID" >/dev/null
# the SM-DP+'s ES2+ callbacks reach the operator on a listener of their own,
# mutual TLS both ways: its TLS identity, and the SM-DP+'s client
# certificate that the operator pins
"$bin/esim-pki" issue dptls --out "$work/pki/operator-callback-tls" --issuer-cert "$pki/ci.pem" \
  --issuer-key "$pki/ci.key.pem" --host 127.0.0.1 --cn "ACME ES2+ callbacks" >/dev/null 2>&1
"$bin/esim-pki" issue operator --out "$work/pki/smdp-callback-client" --issuer-cert "$pki/ci.pem" \
  --issuer-key "$pki/ci.key.pem" --cn "SM-DP+ callbacks" >/dev/null 2>&1
say "written to $work/pki (EID $EID)"

step "2. The SM-DP+ (esim-smdp): ES9+ on $smdp_addr, ES2+ (mutual TLS) on 127.0.0.1:$es2_port"
cat >"$work/smdp.conf" <<CONF
db = sqlite:$work/smdp.db
fqdn = $smdp_addr
dpauth-cert-nist = $pki/dpauth.pem
dpauth-key-nist = $pki/dpauth.key.pem
dppb-cert-nist = $pki/dppb.pem
dppb-key-nist = $pki/dppb.key.pem
ci = $pki/ci.pem
listen-nist = 127.0.0.1:$es9_port
tls-cert-nist = $pki/dptls.pem
tls-key-nist = $pki/dptls.key.pem
listen-es2 = 127.0.0.1:$es2_port
es2-cert = $pki/dptls.pem
es2-key = $pki/dptls.key.pem
# the operator's callback listener: its CA, and the client certificate the
# SM-DP+ presents there (the operator pins it)
operator-ca = $pki/ci.pem
callback-client-cert = $work/pki/smdp-callback-client.pem
callback-client-key = $work/pki/smdp-callback-client.key.pem
# the SM-DS where ConfirmOrder may register an event (ES12, mutual TLS with
# the DPtls certificate, which the SM-DS pins)
smds = 127.0.0.1:$ds12_port
smds-ca = $pki/ci.pem
CONF
smdp=("$bin/esim-smdp")
"$bin/esim-operator" demo-template "$work/profile-template.der"
"${smdp[@]}" add-operator --config "$work/smdp.conf" ACME "$pki/operator.pem" "$cb_url" >/dev/null
"${smdp[@]}" add-type --config "$work/smdp.conf" STD ACME "$work/profile-template.der" "ACME" "ACME 5G" >/dev/null
printf '%s\n' 8932000000000000105,206010000000108 8932000000000000113,206010000000116 \
  8932000000000000121,206010000000124 >"$work/batch.csv"
"${smdp[@]}" import --config "$work/smdp.conf" STD "$work/batch.csv" >/dev/null
"${smdp[@]}" serve --config "$work/smdp.conf" >"$work/smdp.log" 2>&1 &
pids+=($!)
wait_for "the SM-DP+" port_open "$es9_port"
wait_for "the SM-DP+ ES2+ listener" port_open "$es2_port"
say "operator ACME registered (pinned certificate), 3 profiles of type STD imported"

step "3. The operator (esim-operator) on $op_url, ES2+ callbacks (mutual TLS) on 127.0.0.1:$cb_port"
opargs=(--db "$work/operator.db" --key "$pki/operator.key.pem" --cert "$pki/operator.pem"
  --ci "$pki/ci.pem" --data-key "$work/operator-data.key" --maildir "$work/mail"
  --smdp-url "https://127.0.0.1:$es2_port" --smdp-ca "$pki/ci.pem" --name ACME --profile-type STD)
"$bin/esim-operator" init-demo "${opargs[@]}"
"$bin/esim-operator" serve "${opargs[@]}" --listen "127.0.0.1:$op_port" --insecure-http yes \
  --port-file "$work/operator.port" --es2-listen "127.0.0.1:$cb_port" \
  --es2-tls-cert "$work/pki/operator-callback-tls.pem" --es2-tls-key "$work/pki/operator-callback-tls.key.pem" \
  --smdp-client-cert "$work/pki/smdp-callback-client.pem" --smdp-id "$smdp_addr" \
  >"$work/operator.log" 2>&1 &
pids+=($!)
wait_for "the operator" test -s "$work/operator.port"
wait_for "the operator's callback listener" port_open "$cb_port"
say "the callback path on the customers' port: HTTP $(curl -s -o /dev/null -w '%{http_code}' -X POST --data '{}' "$op_url/gsma/rsp2/es2plus/handleDownloadProgressInfo")"
say "on the callback listener without the SM-DP+'s certificate: $(curl -s -o /dev/null --cacert "$pki/ci.pem" -X POST --data '{}' "$cb_url" && echo accepted || echo 'refused in the TLS handshake')"

step "4. The virtual eUICC (esim-euicc) on a unix socket"
"$bin/esim-euicc" --db "$work/euicc.db" --pki "$work/pki" --listen "unix:$work/card.sock" \
  >"$work/euicc.log" 2>&1 &
pids+=($!)
wait_for "the eUICC socket" test -S "$work/card.sock"
# esim COMMAND [ARGS...]: the LPA on the virtual eUICC (options go after the command)
esim() { local c=$1; shift; "$bin/esim" "$c" "$@" --socket "unix:$work/card.sock" --ci "$pki/ci.pem"; }
say "EID: $(esim chip info --json | jq -r '.. | objects | .eid? // empty' | head -n 1)"

step "5. Jan orders an eSIM: the operator calls ES2+ DownloadOrder + ConfirmOrder"
"$bin/esim-operator" order-esim jan.peeters@example.be "${opargs[@]}" | tee "$work/order.txt"
code=$(sed -n 's/^activation code: //p' "$work/order.txt")

step "6. esim downloads the profile (ES9+ + ES10) and enables it"
esim profile download "$code" --yes
iccid=$(esim profile list --json | jq -r '.. | objects | select(has("iccid")) | .iccid' | head -n 1)
say "installed ICCID $iccid"
esim profile enable "$iccid" --yes
esim profile list

cj=$work/jan.cookies
api() { # api METHOD PATH [JSON]: as the logged-in user of cookie jar $cj
  local m=$1 p=$2; shift 2
  curl -sS -f -X "$m" -b "$cj" -c "$cj" -H "Content-Type: application/json" \
    -H "X-CSRF-Token: ${csrf:-}" ${1:+--data "$1"} "$op_url$p"
}
login() { # login PATH USER PASSWORD
  rm -f "$cj"
  csrf=$(curl -sS -f -c "$cj" -H "Content-Type: application/json" \
    --data "{\"login\":\"$2\",\"password\":\"$3\"}" "$op_url$1" | jq -r .csrf)
}

step "7. Jan uses the line and checks the account in the portal's API (session cookie + CSRF token)"
login /api/login jan.peeters@example.be jan-demo-2026
line_active() { api GET /api/account | jq -e '.lines[0].state == "active"'; }
wait_for "the SM-DP+'s download report to reach the operator" line_active
api GET /api/account | jq -c '{account: .account, lines: .lines, open_invoices: [.invoices[] | select(.status == "open")], usage: .usage}'

step "8. Before terminating: the precheck, then Jan pays the open invoice (simulated payment)"
line_id=$(api GET /api/account | jq -r '.lines[0].id')
api GET "/api/lines/precheck?id=$line_id" | jq '{open_total_cents, notice_period_days, earliest_end, leased_equipment, can_submit}'
invoice=$(api GET /api/account | jq -r '[.invoices[] | select(.status == "open")][0].id')
api POST /api/invoices/pay "{\"invoice_id\":$invoice}" | jq -c '{invoice: .invoice.number, status: .invoice.status, payment: .payment.reference}'
say "without the CSRF token the same request is refused: HTTP $(curl -s -o /dev/null -w '%{http_code}' -b "$cj" -X POST --data '{"invoice_id":1}' "$op_url/api/invoices/pay")"

step "9. Jan asks to terminate the line, with a reason and identity proof (Belgian eID card)"
# the operator takes only JPEG, PNG or PDF, judged by the content: a tiny PDF
printf '%%PDF-1.4\n%% scan of Belgian eID card 592-1234567-89, Jan Peeters\n%%%%EOF\n' >"$work/id-card-scan.pdf"
doc=$(base64 -w0 "$work/id-card-scan.pdf")
case_id=$(api POST /api/cases "{\"line_id\":$line_id,\"reason\":\"moving abroad\",\"document_type\":\"id_card\",\"document_number\":\"592-1234567-89\",\"document_copy\":\"$doc\",\"document_mime\":\"application/pdf\"}" | jq -r .case.id)
api GET "/api/case?id=$case_id" | jq -c '.case | {id, state, msisdn, iccid, document_sha256}'
ref=$(api GET "/api/case?id=$case_id" | jq -r '.events[-1].reference')
say "the confirmation notice carried reference $ref; \"Was this really us?\":"
curl -sS -f -H "Content-Type: application/json" --data "{\"reference\":\"$ref\"}" "$op_url/api/reference/check" | jq -c .
say "a scammer's made-up reference:"
curl -sS -f -H "Content-Type: application/json" --data '{"reference":"OP-SCAM-2026"}' "$op_url/api/reference/check" | jq -c .

step "10. A reviewer checks the identity evidence and the account, and approves"
login /api/staff/login reviewer review-demo-2026
api GET /api/staff/queue | jq -c '.cases[] | {id, state, customer: .customer.name, document_type, checks}'
api POST /api/staff/case/approve "{\"case_id\":$case_id,\"note\":\"identity checked against the eID copy\"}" | jq -c '.case | {id, state}'
say "the line is stopped; the operator waits for the eUICC-signed proof of deletion"

step "11. Jan removes the profile: esim cancel (disable, delete, notify the SM-DP+)"
esim cancel "$iccid" --yes

step "12. The SM-DP+ verifies and forwards the delete notification; the operator verifies it again and closes the case"
login /api/login jan.peeters@example.be jan-demo-2026
case_closed() { api GET "/api/case?id=$case_id" | jq -e '.case.state == "closed"'; }
wait_for "the deletion proof to reach the operator" case_closed
api GET "/api/case?id=$case_id" | jq -r '.events[] | "   \(.at)  \(.state)  \(.actor)  \(.reference)"'

step "13. The signed termination record, saved and verified"
api GET "/api/case/record?id=$case_id" >"$work/termination-record-$case_id.json"
say "saved $work/termination-record-$case_id.json"
"$bin/esim-operator" verify-record "$work/termination-record-$case_id.json" --ci "$pki/ci.pem" \
  --operator-cert "$pki/operator.pem"
"$bin/esim-operator" audit-verify "${opargs[@]}"
say "notices sent by e-mail: $(ls "$work/mail/new" | wc -l) (maildir $work/mail)"

step "14. Second journey, through the SM-DS: the operator orders for Jan's EID, the phone discovers it"
"$bin/esim-pki" issue dstls --out "$work/pki/dstls" --issuer-cert "$pki/ci.pem" \
  --issuer-key "$pki/ci.key.pem" --host 127.0.0.1 >/dev/null 2>&1
"$bin/esim-pki" issue dsauth --out "$work/pki/dsauth" --issuer-cert "$pki/ci.pem" \
  --issuer-key "$pki/ci.key.pem" --oid 2.999.20 >/dev/null 2>&1
cat >"$work/smds.conf" <<CONF
db = sqlite:$work/smds.db
fqdn = 127.0.0.1:$ds11_port
dsauth-cert-nist = $work/pki/dsauth.pem
dsauth-key-nist = $work/pki/dsauth.key.pem
ci = $pki/ci.pem
listen-nist = 127.0.0.1:$ds11_port
tls-cert-nist = $work/pki/dstls.pem
tls-key-nist = $work/pki/dstls.key.pem
listen-es12 = 127.0.0.1:$ds12_port
smdp-clients = $smdp_addr $pki/dptls.pem
CONF
"$bin/esim-smds" serve --config "$work/smds.conf" >"$work/smds.log" 2>&1 &
pids+=($!)
wait_for "the SM-DS" port_open "$ds12_port"
say "esim-smds: ES11 on 127.0.0.1:$ds11_port (CERT.DSauth, DStls), ES12 on 127.0.0.1:$ds12_port (pins the SM-DP+)"
es2() { # es2 FUNCTION JSON: the operator's ES2+ call (mutual TLS)
  curl -sS -f --cacert "$pki/ci.pem" --cert "$pki/operator.pem" --key "$pki/operator.key.pem" \
    -H "Content-Type: application/json" --data "$2" "https://127.0.0.1:$es2_port/gsma/rsp2/es2plus/$1"
}
hdr='"header":{"functionRequesterIdentifier":"ACME","functionCallIdentifier":"demo-smds-'$$
iccid2=$(es2 downloadOrder "{$hdr-1\"},\"profileType\":\"STD\"}" | jq -r .iccid)
es2 confirmOrder "{$hdr-2\"},\"iccid\":\"$iccid2\",\"eid\":\"$EID\",\"smdsAddress\":\"127.0.0.1:$ds12_port\",\"releaseFlag\":true}" |
  jq -c '{status: .header.functionExecutionStatus.status, matchingId, eid}'
say "ConfirmOrder registered the event at the SM-DS: $("$bin/esim-smds" events "$EID" --config "$work/smds.conf") event(s) for $EID"
esim profile discover --smds "127.0.0.1:$ds11_port"
esim profile download --discover --smds "127.0.0.1:$ds11_port" --yes
esim profile list
no_event() { [ "$("$bin/esim-smds" events "$EID" --config "$work/smds.conf")" = 0 ]; }
wait_for "the SM-DP+ to delete the event (ES12 DeleteEvent)" no_event
say "after the download the SM-DS holds $("$bin/esim-smds" events "$EID" --config "$work/smds.conf") event(s) for $EID:"
esim profile discover --smds "127.0.0.1:$ds11_port"

step "Done. The portal: $op_url/ (customers) and $op_url/staff (staff); outputs in $work"
if [ -n "${ESIM_DEMO_KEEP:-}" ]; then
  say "ESIM_DEMO_KEEP is set: the servers keep running until Ctrl-C"
  wait
fi
