#!/bin/bash
# demo.sh - zonegate in two minutes: two sites on this machine's loopback.
#
#   plain client --(plain TCP)--> site A: zonegate, route "pacs-out" (wrap)
#                --(mutual TLS)--> site B: zonegate, route "pacs-in" (unwrap)
#                --(plain TCP)--> the service at site B (python3 -m http.server)
#
# Installs the Debian packages it needs (scripts/deps.sh), builds build/,
# generates a demo PKI into .demo/pki, starts the service and both gateways on
# 127.0.0.1, sends a request through them, shows two refused connections and
# why, prints the gateways' log lines and stops everything with SIGTERM.
# Everything it writes lives in .demo/ (ignored by git).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo
build=${ZG_BUILD_DIR:-build}
zg=$root/$build/zonegate
# ports (override with ZG_DEMO_PORT_BASE if these are taken)
base=${ZG_DEMO_PORT_BASE:-17400}
svc_port=$base
b_port=$((base + 1))
a_port=$((base + 2))

if [ -t 1 ]; then
	bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	bold() { printf '\n== %s\n' "$*"; }
fi
note() { printf '   %s\n' "$*"; }
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

port_free() {
	/usr/bin/python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

# wait_listening PORT: until something accepts on 127.0.0.1:PORT (10 s at most)
wait_listening() {
	/usr/bin/python3 -c 'import socket,sys,time
end = time.monotonic() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > end:
            sys.exit(1)
        time.sleep(0.05)' "$1"
}

# wait_log FILE REGEX: wait up to 20 s for a log line.
wait_log() {
	for _ in $(seq 200); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "demo: timed out waiting for /$2/ in $1:" >&2
	cat "$1" >&2
	exit 1
}

# show SITE FILE: the interesting log lines of one gateway, one event a line.
show() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import re, sys
site, path = sys.argv[1], sys.argv[2]
kv = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
keep = {
    "ready": ["routes", "workers", "generation"],
    "conn_close": ["route", "peer", "upstream", "tls", "cipher", "subject", "san", "bytes_in",
                   "bytes_out", "duration_ms", "reason"],
    "refused": ["route", "peer", "reason", "detail"],
    "draining": ["deadline_ms", "active"],
    "stopped": [],
}
for line in open(path):
    d = dict((k, v.strip('"')) for k, v in kv.findall(line))
    ev = d.get("event")
    if ev not in keep:
        continue
    print(f"   [{site}] {d.get('ts', '')[11:23]} {ev:<10}", end="")
    for k in keep[ev]:
        if k in d:
            print(f" {k}={d[k]}", end="")
    print()
PY
}

bold "1. Debian packages (scripts/deps.sh, idempotent)"
scripts/deps.sh
note "ok"

bold "2. Build ($build/)"
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$build" >/dev/null
"$zg" version

bold "3. Demo PKI (.demo/pki): root -> intermediate -> leaves, RSA-2048 and P-256, SHA-256"
mkdir -p "$demo"
tests/pki/mkpki.sh "$demo/pki"
pki=$demo/pki
note "site A presents $(openssl x509 -in "$pki/site-a-ec.pem" -noout -subject -nameopt oneline) (P-256)"
note "site B presents $(openssl x509 -in "$pki/site-b-rsa.pem" -noout -subject -nameopt oneline) (RSA-2048)"
note "both trust roots.pem; chains: int-ec.pem / int-rsa.pem"

for p in $svc_port $b_port $a_port; do
	port_free "$p" || { echo "demo: port $p is in use; set ZG_DEMO_PORT_BASE" >&2; exit 1; }
done

bold "4. The plain-TCP service at site B (python3 -m http.server on 127.0.0.1:$svc_port)"
mkdir -p "$demo/www"
echo "Hello from the PACS at site B (plain HTTP, reached through two zonegates)" >"$demo/www/index.html"
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$demo/www" "$svc_port" \
	>"$demo/service.log" 2>&1 &
pids+=($!)
wait_listening "$svc_port" || { echo "demo: the service did not start" >&2; exit 1; }

(
	umask 077
	cat >"$demo/site-b.conf" <<EOF
; site B: accepts mutual TLS from other sites and unwraps it for the service.
[gateway]
name = site-b
workers = 2
drain_timeout = 10s

[tls]
profile = cryptrec-high
certificate = $pki/site-b-rsa.pem
key = $pki/site-b-rsa.key
chain = $pki/int-rsa.pem
trust_anchors = $pki/roots.pem

[route pacs-in]
mode = unwrap
listen = 127.0.0.1:$b_port
connect = 127.0.0.1:$svc_port
EOF
	cat >"$demo/site-a.conf" <<EOF
; site A: takes plain TCP from inside its zone and wraps it in mutual TLS to B.
[gateway]
name = site-a
workers = 2
drain_timeout = 10s

[tls]
profile = cryptrec-high
certificate = $pki/site-a-ec.pem
key = $pki/site-a-ec.key
chain = $pki/int-ec.pem
trust_anchors = $pki/roots.pem

[route pacs-out]
mode = wrap
listen = 127.0.0.1:$a_port
connect = 127.0.0.1:$b_port
server_name = site-b.zonegate.test
allow_from = 127.0.0.1/32
EOF
)

bold "5. zonegate check -c .demo/site-a.conf"
"$zg" check -c "$demo/site-a.conf" | sed 's/^/   /'

bold "6. Start site B and site A"
: >"$demo/site-b.log"
: >"$demo/site-a.log"
"$zg" run -c "$demo/site-b.conf" 2>>"$demo/site-b.log" &
b_pid=$!
pids+=($b_pid)
"$zg" run -c "$demo/site-a.conf" 2>>"$demo/site-a.log" &
a_pid=$!
pids+=($a_pid)
wait_log "$demo/site-b.log" 'event=ready'
wait_log "$demo/site-a.log" 'event=ready'
note "site B (pid $b_pid): unwrap 127.0.0.1:$b_port -> service 127.0.0.1:$svc_port"
note "site A (pid $a_pid): wrap   127.0.0.1:$a_port -> site B 127.0.0.1:$b_port (expects DNS:site-b.zonegate.test)"

bold "7. A plain client at site A: curl http://127.0.0.1:$a_port/"
reply=$(curl -sS --max-time 10 "http://127.0.0.1:$a_port/")
note "reply: $reply"

bold "8. Refused: a client that goes straight to site B without a client certificate"
echo | openssl s_client -connect "127.0.0.1:$b_port" -CAfile "$pki/roots.pem" -brief \
	>/dev/null 2>&1 || true
wait_log "$demo/site-b.log" 'event=refused'
note "site B says: $(grep -m1 'event=refused' "$demo/site-b.log" | grep -oE 'reason=[a-z_]+ detail=.*')"

bold "9. Refused: a plain client from a source outside site A's allow_from (127.0.0.2)"
curl -sS --max-time 10 --interface 127.0.0.2 "http://127.0.0.1:$a_port/" >/dev/null 2>&1 || true
wait_log "$demo/site-a.log" 'event=refused'
note "site A says: $(grep -m1 'event=refused' "$demo/site-a.log" | grep -oE 'reason=[a-z_]+ detail=.*')"

bold "10. Stop both gateways (SIGTERM: drain, then exit)"
kill -TERM "$a_pid" "$b_pid"
rc_a=0 rc_b=0
wait "$a_pid" || rc_a=$?
wait "$b_pid" || rc_b=$?
note "site A exited $rc_a, site B exited $rc_b"

bold "11. What the gateways logged (full logs: .demo/site-a.log, .demo/site-b.log)"
show "site A" "$demo/site-a.log"
show "site B" "$demo/site-b.log"

[ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ] && [[ $reply == Hello* ]] || {
	echo "demo: FAILED" >&2
	exit 1
}
bold "Demo done: traffic crossed A (wrap) -> B (unwrap) over mutual TLS; two refusals shown."
