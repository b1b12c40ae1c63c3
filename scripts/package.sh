#!/bin/bash
# package.sh [OUTDIR] - build the zonegate .deb from this checkout, as a
# Debian build daemon would (dpkg-buildpackage -b, release flags from
# dpkg-buildflags, no -Werror), and run lintian on it.
#
# The source is copied (tracked and unignored files only) to OUTDIR/src, so
# the build never writes into the checkout; the .deb lands in OUTDIR
# (default build-deb/). Exit status: 0 built and lintian-clean, 1 otherwise.
# DEB_BUILD_OPTIONS defaults to nocheck: scripts/test.sh runs the tests.
set -euo pipefail

cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
rm -rf "$out"
mkdir -p "$out/src"
{ git ls-files; git ls-files --others --exclude-standard; } | sort -u |
	while read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
	tar -cf - -T - | tar -xf - -C "$out/src"
(
	cd "$out/src"
	DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck} dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1
) || { tail -30 "$out/build.log" >&2; echo "package.sh: dpkg-buildpackage failed" >&2; exit 1; }
changes=$(ls "$out"/zonegate_*.changes)
# lintian refuses nothing by exit status for warnings; fail on any tag shown
tags=$(lintian --tag-display-limit 0 "$changes" 2>&1 | grep -v 'running with root privileges' || true)
if [ -n "$tags" ]; then
	printf '%s\n' "$tags" >&2
	echo "package.sh: lintian reported the tags above" >&2
	exit 1
fi
ls "$out"/zonegate_*.deb
