#!/usr/bin/env bash
# The README's main job: walk through what esimkit can do today, on a fresh
# clone, with nothing from outside the repository.
#
# Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build" && pwd)
work=${ESIM_DEMO_DIR:-$root/demo-out}
rm -rf "$work"
mkdir -p "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

EID=89049032123451234512345678901235

step "1. A private RSP test PKI (CI, EUM, eUICC, SM-DP+ auth/pb/tls, operator) on both curves"
"$bin/esim-pki" init "$work/pki" --eid "$EID"
find "$work/pki" -maxdepth 2 -name '*.der' | sort | sed "s|$work/||"

step "2. The eUICC certificate, decoded by the project's own DER layer"
"$bin/esim" der dump "$work/pki/nist/euicc.der" | head -n 40

step "3. Every SM-DP+ certificate chains to its CI (the project's own chain check)"
for curve in nist brp; do
  for role in dpauth dppb dptls; do
    "$bin/esim-pki" verify "$work/pki/$curve/ci.der" "$work/pki/$curve/$role.der"
  done
  "$bin/esim-pki" verify "$work/pki/$curve/ci.der" "$work/pki/$curve/euicc.der" "$work/pki/$curve/eum.der"
done

step "4. The same DPtls chain, checked by stock OpenSSL as a TLS client would"
openssl verify -CAfile "$work/pki/nist/ci.pem" "$work/pki/nist/dptls.pem"

step "Done. Outputs are in $work"
