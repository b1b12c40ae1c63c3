#!/bin/sh
# stunnel (Debian stunnel4; its build runs one thread per connection, which is
# how it is deployed), pinned to one CPU, TLS in -> plain out.
. "$(dirname "$0")/common.sh"
start() {
	cat > "$ZGB_WORK/stunnel.conf" <<CFG
foreground = yes
pid =
output = $ZGB_WORK/stunnel.log
debug = 5
; Nagle off both ways, as the other proxies do by default: without it every
; small TLS 1.3 exchange waits for a delayed ACK (40 ms).
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[bench]
accept = 127.0.0.1:$ZGB_PORT
connect = $ZGB_BACKEND_HOST:$ZGB_BACKEND
cert = $ZGB_PKI/server-chain.pem
key = $ZGB_PKI/server.key
CAfile = $ZGB_PKI/root.pem
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.2
sslVersionMax = TLSv1.3
ciphers = $TLS12_CIPHERS
ciphersuites = $TLS13_SUITES
curves = $GROUPS
CFG
	launch stunnel4 "$ZGB_WORK/stunnel.conf"
}
adapter_main "${1:-}" start
