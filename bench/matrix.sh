#!/usr/bin/env bash
# The table of docs/PERFORMANCE.md: every configuration of the SM-DP+ load
# generator run REPEAT times, reported as the median of the runs (server CPU
# per download moves by up to ~30% between identical runs on a shared VM; the
# median of three or more is stable to a few percent).
#
#   bench/matrix.sh [BENCH_DIR]         (default: build-bench, from `make bench`)
#   REPEAT=5 DOWNLOADS=400 bench/matrix.sh
#   CONFIGS="nist:synthetic:1:run brp:ts48:8:run" bench/matrix.sh
#
# A configuration is curve:profile:concurrency:tls (tls = run | download, see
# bench/README.md). Prints one Markdown row per configuration; the JSON of
# every run is kept in $OUT (default: a new directory under /tmp).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bench_dir=${1:-$here/build-bench}
bin=$bench_dir/bench_download
[ -x "$bin" ] || { echo "matrix: no $bin (run: make bench)" >&2; exit 2; }
command -v jq >/dev/null || { echo "matrix: jq is needed (make deps)" >&2; exit 2; }

REPEAT=${REPEAT:-3}
DOWNLOADS=${DOWNLOADS:-300}
TS48=${TS48:-$here/../shared/testdata/ts48/TS48V2-SAIP2-1-BERTLV-UNIQUE.der}
CONFIGS=${CONFIGS:-"nist:synthetic:1:run nist:synthetic:8:run nist:ts48:1:run nist:ts48:8:run
brp:synthetic:1:run brp:synthetic:8:run brp:ts48:1:run brp:ts48:8:run
nist:synthetic:1:download brp:synthetic:1:download"}
OUT=${OUT:-$(mktemp -d /tmp/esim-matrix-XXXXXX)}
mkdir -p "$OUT"

# the median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| curve | profile | C | TLS | downloads/s | p50 ms | p99 ms | server CPU / download | floor | multiple |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for cfg in $CONFIGS; do
	IFS=: read -r curve prof conc tls <<<"$cfg"
	args=(--downloads "$DOWNLOADS" --concurrency "$conc" --curve "$curve" --tls "$tls" --json)
	if [ "$prof" = ts48 ]; then
		[ -f "$TS48" ] || { echo "matrix: skipping $cfg (no $TS48)" >&2; continue; }
		args+=(--profile "$TS48")
	fi
	for r in $(seq 1 "$REPEAT"); do
		"$bin" "${args[@]}" >"$OUT/$cfg.$r.json"
	done
	m() { for f in "$OUT/$cfg".*.json; do jq -r "$1" "$f"; done | median; }
	printf "| %s | %s | %s | %s | %.0f | %.1f | %.1f | %.2f ms | %.2f ms | **%.2fx** |\n" \
		"$curve" "$prof" "$conc" "$tls" \
		"$(m .downloads_per_s)" "$(m '.latency_s.p50 * 1000')" "$(m '.latency_s.p99 * 1000')" \
		"$(m '.server_cpu_s_per_download * 1000')" "$(m '.floor_s_per_download * 1000')" \
		"$(m .floor_multiple)"
done
echo
echo "medians of $REPEAT runs of $DOWNLOADS downloads each; runs in $OUT"
