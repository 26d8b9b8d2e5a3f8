#!/usr/bin/env bash
# Browser test of the esim-operator portal (CTest: browser_portal).
#
#   tests/browser/run.sh BUILD_DIR [--update-docs]
#
# Seeds a fresh SQLite database per language with `esim-operator init-demo`,
# serves each on loopback, and drives the customer's termination request and
# the staff review in English, Dutch, French and Chinese in headless Debian
# Chromium with playwright-core and axe-core (portal.test.js): every page at
# desktop and at 360 px width, checked for sideways scrolling, untranslated
# text and accessibility. PORTAL_LANGS="nl" runs fewer languages.
# Screenshots of every step land in BUILD_DIR/browser-artifacts/; with
# --update-docs the DOC-* ones are also copied to docs/img/ for journey.md.
#
# Exit 77 (skipped) only when Chromium is not installed, and 1 for that too
# when CI=true; scripts/deps.sh installs it, so in CI the test always runs. Anything else missing is a
# failure, not a skip.
set -euo pipefail

BUILD="$(cd "${1:?usage: run.sh BUILD_DIR [--update-docs]}" && pwd)"
UPDATE_DOCS="${2:-}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
CHROMIUM="${PORTAL_CHROMIUM:-/usr/bin/chromium}"
OP="$BUILD/esim-operator"
ART="$BUILD/browser-artifacts"
NODE_DIR="$BUILD/browser-node"

if [ ! -x "$CHROMIUM" ]; then
	# the rule of tests/common/testutil.h: a skip, but a failure under CI=true
	if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
		echo "browser_portal: FAILED: $CHROMIUM is missing, and CI=true requires every component" >&2
		exit 1
	fi
	echo "browser_portal: SKIPPED: $CHROMIUM is missing (scripts/deps.sh installs Debian's chromium)"
	exit 77
fi
for tool in node npm; do
	if ! command -v "$tool" >/dev/null; then
		echo "browser_portal: FAILED: '$tool' not found (scripts/deps.sh installs nodejs and npm)" >&2
		exit 1
	fi
done
if [ ! -x "$OP" ]; then
	echo "browser_portal: FAILED: $OP not built" >&2
	exit 1
fi

# playwright-core and axe-core, from the committed lock, into the build dir (never
# into the source tree). Re-installed only when the lock changes. No browser
# is ever downloaded: the test launches the Debian chromium.
mkdir -p "$NODE_DIR"
lock_sum="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
	[ "$(cat "$NODE_DIR/.lock-sum" 2>/dev/null)" != "$lock_sum" ]; then
	cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
	echo "browser_portal: npm ci (log: $NODE_DIR/npm-ci.log)"
	if ! (cd "$NODE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
		npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1); then
		cat "$NODE_DIR/npm-ci.log" >&2
		echo "browser_portal: FAILED: npm ci" >&2
		exit 1
	fi
	echo "$lock_sum" >"$NODE_DIR/.lock-sum"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/esim-browser.XXXXXX")"
SERVER_PIDS=""
cleanup() {
	for pid in $SERVER_PIDS; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

rm -rf "$ART"
mkdir -p "$ART"

# The operator's record-signing key: a throwaway P-256 pair for this run.
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$TMP/operator.key" -out "$TMP/operator.pem" -days 2 \
	-subj "/CN=esimkit Mobile browser test" >"$ART/openssl.log" 2>&1; then
	cat "$ART/openssl.log" >&2
	echo "browser_portal: FAILED: openssl could not make the operator key" >&2
	exit 1
fi
# One server per language, each on its own database fresh from init-demo, so
# that every language runs the whole journey from the same start.
LANGS="en nl fr zh"
SERVER_PIDS=""
URLS=""
for lang in $LANGS; do
	"$OP" init-demo --db "$TMP/op-$lang.db" >"$ART/init-demo-$lang.log" 2>&1 || {
		cat "$ART/init-demo-$lang.log" >&2
		echo "browser_portal: FAILED: esim-operator init-demo" >&2
		exit 1
	}
	# a leased phone on Sofie's line (2) not yet back: the staff review's
	# equipment panel blocks her approval until it is marked received
	"$OP" add-equipment --db "$TMP/op-$lang.db" 2 "Smartphone (leased)" 2027-01-31 RET-2026-0042 \
		>>"$ART/init-demo-$lang.log" 2>&1 || {
		cat "$ART/init-demo-$lang.log" >&2
		echo "browser_portal: FAILED: esim-operator add-equipment" >&2
		exit 1
	}
	"$OP" serve --db "$TMP/op-$lang.db" --listen 127.0.0.1:0 --insecure-http yes \
		--port-file "$TMP/port-$lang" --web-dir "$SRC/src/operator/web" --maildir "$TMP/mail-$lang" \
		--key "$TMP/operator.key" --cert "$TMP/operator.pem" >"$ART/esim-operator-$lang.log" 2>&1 &
	pid=$!
	SERVER_PIDS="$SERVER_PIDS $pid"
	for _ in $(seq 1 100); do
		[ -s "$TMP/port-$lang" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$ART/esim-operator-$lang.log" >&2
			echo "browser_portal: FAILED: esim-operator serve exited" >&2
			exit 1
		fi
		sleep 0.1
	done
	if [ ! -s "$TMP/port-$lang" ]; then
		echo "browser_portal: FAILED: esim-operator serve wrote no port in 10 s" >&2
		exit 1
	fi
	URLS="$URLS $lang=http://127.0.0.1:$(tr -d '[:space:]' <"$TMP/port-$lang")"
done
echo "browser_portal: esim-operator per language:$URLS; screenshots in $ART"

rc=0
PORTAL_BASE_URLS="$URLS" PORTAL_ARTIFACTS="$ART" PORTAL_MAILDIR="$TMP/mail-LANG" \
	PORTAL_NODE_MODULES="$NODE_DIR/node_modules" PORTAL_CHROMIUM="$CHROMIUM" \
	PORTAL_WEB="$SRC/src/operator/web" PORTAL_LANGS="${PORTAL_LANGS:-$LANGS}" \
	timeout 400 node "$HERE/portal.test.js" || rc=$?
if [ "$rc" -ne 0 ]; then
	for lang in $LANGS; do
		echo "--- esim-operator log, $lang (last 20 lines) ---" >&2
		tail -n 20 "$ART/esim-operator-$lang.log" >&2 || true
	done
	echo "browser_portal: FAILED (exit $rc); screenshots in $ART" >&2
	exit 1
fi

# The pictures docs/journey.md embeds (DOC-*.png); the rest stay build
# artefacts.
if [ "$UPDATE_DOCS" = "--update-docs" ]; then
	mkdir -p "$SRC/docs/img"
	for f in "$ART"/DOC-*.png; do
		[ -e "$f" ] || continue
		name="$(basename "$f" .png)"
		name="portal-${name#DOC-}.png"
		# pngquant (optional, Debian's package) cuts them to about a third
		if command -v pngquant >/dev/null; then
			pngquant --quality 60-85 --speed 1 --force -o "$SRC/docs/img/$name" "$f"
		else
			cp "$f" "$SRC/docs/img/$name"
		fi
	done
	echo "browser_portal: docs/img/ updated"
fi
exit 0
