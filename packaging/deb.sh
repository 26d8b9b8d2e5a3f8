#!/usr/bin/env bash
# `make deb`: the Debian packages (debian/, debhelper), built from a copy
# of the source files (git's tracked and new, not ignored ones) in OUT/src so
# that the shared working tree gets no debian/tmp, obj-* or .deb files.
# The .debs, .buildinfo and .changes end up in OUT.
#
# usage: packaging/deb.sh [OUT]     (default build-deb)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for tool in dpkg-buildpackage dh; do
	command -v "$tool" >/dev/null || {
		echo "deb: needs $tool (scripts/deps.sh installs debhelper and dpkg-dev)" >&2
		exit 1
	}
done
rm -rf "$out/src" "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
mkdir -p "$out/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -xf - -C "$out/src"
cd "$out/src"
# the source copy is the package's parent: the .debs land in $out
nice dpkg-buildpackage -us -uc -b -j"$(nproc 2>/dev/null || echo 2)" >"$out/build.log" 2>&1 || {
	tail -n 60 "$out/build.log" >&2
	echo "deb: dpkg-buildpackage failed (whole log: $out/build.log)" >&2
	exit 1
}
ls "$out"/*.deb
