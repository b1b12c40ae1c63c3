#!/bin/sh
# zonegate, one worker, an unwrap route (mTLS in -> plain out), profile
# cryptrec-high, server-side session cache on, tickets off (its defaults).
# ZGB_ZONEGATE = path to the zonegate binary (a release build).
# Storm scenario: ZGB_PORT2 -> ZGB_BACKEND2 is a second route ("clinical");
# ZGB_STORM_CLASSES=1 puts the first route in class updates and the second
# in class clinical under a 200 Mbit/s link (docs/performance.md, storm).
# ZGB_ZG_KEY_PROCESS = on (default) | off: [tls] key_process, to measure the
# key process's cost (its CPU counts: the figures take the process tree).
# ZGB_ZG_ADMIN_PORT set: an [admin] listener on that loopback port (metrics).
# ZGB_ZG_WORKERS = number of workers (default 1; zonegate-2w: 2 on CPUs 0,1).
# ZGB_ZG_TICKETS=1: resumption by stateless tickets sealed with a key file
# (ZGB_ZG_TICKET_KEY, default $ZGB_WORK/ticket.key, made if missing) and no
# session cache, so two processes on one port resume each other's sessions
# (zonegate-2p; the resumed figures of all variants then compare).
. "$(dirname "$0")/common.sh"
# tickets: the [tls] lines of ZGB_ZG_TICKETS=1 (the key file made if missing)
tickets() {
	[ "${ZGB_ZG_TICKETS:-0}" = 1 ] || return 0
	tk=${ZGB_ZG_TICKET_KEY:-$ZGB_WORK/ticket.key}
	[ -s "$tk" ] || (umask 077 && openssl rand -out "$tk" 80)
	printf 'session_cache = off\nsession_tickets = on\nsession_ticket_key = %s\n' "$tk"
}
start() {
	umask 022
	cat > "$ZGB_WORK/zonegate.conf" <<CFG
[gateway]
name = bench
workers = ${ZGB_ZG_WORKERS:-1}
log_level = ${ZGB_ZG_LOG_LEVEL:-info}
max_connections = $ZGB_MAXCONN

[tls]
profile = cryptrec-high
certificate = $ZGB_PKI/server-chain.pem
key = $ZGB_PKI/server.key
trust_anchors = $ZGB_PKI/root.pem
verify_depth = 4
key_process = ${ZGB_ZG_KEY_PROCESS:-on}
$(tickets)

[route bench]
mode = unwrap
listen = 127.0.0.1:$ZGB_PORT
connect = $ZGB_BACKEND_HOST:$ZGB_BACKEND
max_connections = $ZGB_MAXCONN
CFG
	if [ -n "${ZGB_PORT2:-}" ]; then
		cat >> "$ZGB_WORK/zonegate.conf" <<CFG

[route clinical]
mode = unwrap
listen = 127.0.0.1:$ZGB_PORT2
connect = $ZGB_BACKEND_HOST:$ZGB_BACKEND2
CFG
	fi
	if [ -n "${ZGB_ZG_ADMIN_PORT:-}" ]; then
		cat >> "$ZGB_WORK/zonegate.conf" <<CFG

[admin]
listen = 127.0.0.1:$ZGB_ZG_ADMIN_PORT
CFG
	fi
	if [ "${ZGB_STORM_CLASSES:-0}" = 1 ]; then
		sed -i -e '/^\[route bench\]/a class = updates' \
			-e '/^\[route clinical\]/a class = clinical' "$ZGB_WORK/zonegate.conf"
		cat >> "$ZGB_WORK/zonegate.conf" <<CFG

[link]
to_client = 200Mbit/s
to_upstream = 200Mbit/s

[class updates]
rate = 50Mbit/s
ceil = 150Mbit/s
priority = 7

[class clinical]
rate = 50Mbit/s
ceil = 200Mbit/s
priority = 0
CFG
	fi
	launch "${ZGB_ZONEGATE:?}" run -c "$ZGB_WORK/zonegate.conf"
}
adapter_main "${1:-}" start
