#!/bin/bash
# futex.sh - where a zonegate variant's threads wait on each other (issue 17).
#
#   bench/futex.sh [--record] [--type ec|rsa] [--scen hs|resume] [--reps N] ADAPTER...
#
# Per adapter (zonegate, zonegate-2w, zonegate-2p ...; bench/adapters/) and
# round: 1,500 connections (32 at a time, TLS 1.3) through a fresh proxy,
# with `perf stat` over the proxy's process tree counting task-clock,
# context switches, migrations and futex calls; prints each per connection.
# An uncontended pthread lock never enters the kernel, so futex calls per
# connection count the waits (and wake-ups) of contended locks. --record
# also writes OUT/ADAPTER.futex.data: the call stack of every futex call
# (`perf report -i FILE --stdio --no-children -G`). Needs perf (linux-perf)
# and the release build of run.sh (build-bench/); run it under
# `flock /tmp/zg-bench.lock` like any benchmark. OUT: ZGB_OUT (/tmp/zg-futex).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B=${ZGB_BUILD:-$(dirname "$HERE")/build-bench}
REC=0 TYPE=ec SCEN=hs REPS=1 N=${ZGB_FUTEX_N:-1500}
while [ $# -gt 0 ]; do
	case "$1" in
	--record) REC=1 ;;
	--type) TYPE=$2; shift ;;
	--scen) SCEN=$2; shift ;;
	--reps) REPS=$2; shift ;;
	-*) echo "usage: $0 [--record] [--type ec|rsa] [--scen hs|resume] [--reps N] ADAPTER..." >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
OUT=${ZGB_OUT:-/tmp/zg-futex}
mkdir -p "$OUT"
BASE=$((20000 + ($$ % 1200) * 10))
export ZGB_PKI=$B/bench-pki/$TYPE ZGB_ZONEGATE=${ZGB_ZONEGATE:-$B/zonegate} ZGB_BIN=$B/bench
export ZGB_PORT=$((BASE + 5)) ZGB_BACKEND=$((BASE + 6))
[ -x "$ZGB_ZONEGATE" ] && [ -d "$ZGB_PKI" ] || { echo "futex.sh: run bench/run.sh once first (build-bench/)" >&2; exit 1; }
taskset -c 1 "$ZGB_BIN/backend" -m echo -l "127.0.0.1:$ZGB_BACKEND" 2>/dev/null &
BP=$!
trap 'kill $BP 2>/dev/null' EXIT
sleep 0.3
tree() { local p c; for p in $1; do echo "$p"; for c in $(pgrep -P "$p"); do tree "$c"; done; done; }
lg() { taskset -c 1 "$ZGB_BIN/loadgen" --cert "$ZGB_PKI/client-chain.pem" --key "$ZGB_PKI/client.key" \
	--ca "$ZGB_PKI/root.pem" -t "127.0.0.1:$ZGB_PORT" --tls 1.3 "$@"; }
for rep in $(seq "$REPS"); do
	for a in "$@"; do
		export ZGB_WORK=$OUT/$a
		P=$("$HERE/adapters/$a.sh" start) || { echo "$a: did not start" >&2; continue; }
		lg -s hs -n 50 -c 4 >/dev/null
		pids=$(tree "$P" | paste -sd, -)
		perf stat -x, -e task-clock,context-switches,cpu-migrations,syscalls:sys_enter_futex \
			-p "$pids" -o "$OUT/$a.stat" &
		PS=$!
		PR=""
		if [ $REC = 1 ]; then
			perf record -q -e syscalls:sys_enter_futex --call-graph dwarf,16384 -p "$pids" \
				-o "$OUT/$a.futex.data" 2>/dev/null &
			PR=$!
		fi
		sleep 0.3
		line=$(lg -s "$SCEN" -n $N -c 32 | tail -1)
		sleep 0.5
		kill -INT $PS $PR 2>/dev/null
		wait $PS $PR 2>/dev/null
		ok=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "ok" {print $2}')
		printf '%s %s %s round %s: ok=%s ' "$a" "$TYPE" "$SCEN" "$rep" "${ok:-0}"
		awk -F, -v n="${ok:-0}" 'n > 0 && /^[0-9]/ {
			if ($3 == "task-clock") printf "cpu_us=%.0f ", $1 * 1000 / n
			else printf "%s=%.2f ", $3, $1 / n } END {print ""}' "$OUT/$a.stat"
		"$HERE/adapters/$a.sh" stop
		sleep 0.2
	done
done
