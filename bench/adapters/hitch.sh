#!/bin/sh
# hitch (Debian hitch), one worker process (plus its manager), TLS in ->
# plain out (no PROXY header).
. "$(dirname "$0")/common.sh"
start() {
	cat > "$ZGB_WORK/hitch.conf" <<CFG
frontend = "[127.0.0.1]:$ZGB_PORT"
backend = "[$ZGB_BACKEND_HOST]:$ZGB_BACKEND"
pem-file = "$ZGB_PKI/server-combined.pem"
workers = 1
daemon = off
user = "root"
group = "root"
tls-protos = TLSv1.2 TLSv1.3
ciphers = "$TLS12_CIPHERS"
ciphersuites = "$TLS13_SUITES"
ecdh-curve = "$GROUPS"
prefer-server-ciphers = on
client-verify = required
client-verify-ca = "$ZGB_PKI/root.pem"
write-proxy-v2 = off
log-level = 1
CFG
	launch hitch --config="$ZGB_WORK/hitch.conf"
}
adapter_main "${1:-}" start
