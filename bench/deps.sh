#!/bin/sh
# Install the proxies the benchmark compares zonegate with, from Debian.
# Idempotent. Not part of scripts/deps.sh: the build and the tests do not need them.
set -eu
PKGS="stunnel4 haproxy nginx libnginx-mod-stream hitch openssl valgrind linux-perf python3 util-linux procps iproute2"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "bench deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The packages enable their system services; the benchmark starts its own.
for s in nginx haproxy hitch stunnel4; do
	$SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
done
