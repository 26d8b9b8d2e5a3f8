#!/usr/bin/env bash
# Install every Debian package that esimkit's build, tests and demo need.
# Idempotent: when everything is present it installs nothing and exits 0.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev openssl libcmocka-dev
  libjansson-dev libsqlite3-dev sqlite3
  libevent-dev
  libpq-dev postgresql
  libpcsclite-dev pcscd pcsc-tools vsmartcard-vpcd
  libsodium-dev libqrencode-dev
  chromium curl jq python3 haproxy
  gettext libc-l10n fonts-wqy-zenhei
  python3-aiosmtpd
  libsystemd-dev systemd man-db
  debhelper dpkg-dev fakeroot lintian debootstrap
)
# The browser test (tests/browser) needs node and npm. Many machines carry a
# newer Node.js from elsewhere; Debian's nodejs and npm only fill the gap.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
