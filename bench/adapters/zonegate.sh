#!/bin/sh
# zonegate, one worker, an unwrap route (mTLS in -> plain out), profile
# cryptrec-high, server-side session cache on, tickets off (its defaults).
# ZGB_ZONEGATE = path to the zonegate binary (a release build).
. "$(dirname "$0")/common.sh"
start() {
	umask 022
	cat > "$ZGB_WORK/zonegate.conf" <<CFG
[gateway]
name = bench
workers = 1
log_level = ${ZGB_ZG_LOG_LEVEL:-info}
max_connections = $ZGB_MAXCONN

[tls]
profile = cryptrec-high
certificate = $ZGB_PKI/server-chain.pem
key = $ZGB_PKI/server.key
trust_anchors = $ZGB_PKI/root.pem
verify_depth = 4

[route bench]
mode = unwrap
listen = 127.0.0.1:$ZGB_PORT
connect = 127.0.0.1:$ZGB_BACKEND
max_connections = $ZGB_MAXCONN
CFG
	launch "${ZGB_ZONEGATE:?}" run -c "$ZGB_WORK/zonegate.conf"
}
adapter_main "${1:-}" start
