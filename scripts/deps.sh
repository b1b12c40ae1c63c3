#!/bin/sh
# Install the Debian packages zonegate builds, tests and demos with.
# Idempotent: packages already present are not fetched again. orthanc: on a
# systemd box the package also enables orthanc.service (ports 4242, 8042);
# the tests start their own instances and do not use it.
set -eu
PKGS="build-essential meson ninja-build pkg-config libssl-dev openssl libcmocka-dev \
libinih-dev libjansson-dev libcurl4-openssl-dev libseccomp-dev clang python3 python3-pytest python3-pytest-timeout socat curl gnutls-bin \
iproute2 rsyslog rsyslog-gnutls sslscan systemd prometheus \
dpkg-dev debhelper fakeroot scdoc lintian haproxy \
wireguard-go wireguard-tools keepalived nftables iputils-ping python3-cryptography dcmtk strace \
libclang-rt-14-dev tcpdump python3-hl7 orthanc"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
