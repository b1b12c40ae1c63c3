#!/bin/bash
# run.sh - zonegate's benchmark against stunnel, HAProxy, nginx and hitch
# (issue #6). See bench/README.md for what each figure means.
#
#   bench/run.sh [--quick] [--proxies "zonegate haproxy ..."]
#                [--scenarios "hs hsmany bulk pingpong idle storm stormlink syscalls"]
#                [--reps N] [--out DIR]
#
# Every proxy runs alone, pinned to CPU 0, one thread/worker; the load
# generator and the backend run on CPU 1. Figures come from the proxy's own
# CPU time (/proc/PID/stat utime+stime, whole process tree, all threads) and
# RSS (/proc/PID/status VmRSS), read before and after each run. Each figure
# is the median of --reps runs (default 3) with min-max shown.
# --quick: ECDSA + TLS 1.3 only, small counts, one run each (about 1.5 minutes).
# ZGB_TYPES ("ec rsa") and ZGB_VERSIONS ("1.2 1.3") narrow a full run's
# handshake tables, e.g. ZGB_TYPES=ec ZGB_VERSIONS=1.3 for one column;
# ZGB_IDLE_LEVELS ("2000 5000 9900") the idle scenario's levels;
# ZGB_PP_REQS the ping-pong's round trips per connection (2000; --quick 300).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
QUICK=0
REPS=""
PROXIES="zonegate stunnel haproxy nginx hitch"
SCENARIOS="hs hsmany bulk pingpong idle"
OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--reps) REPS=$2; shift ;;
	--proxies) PROXIES=$2; shift ;;
	--scenarios) SCENARIOS=$2; shift ;;
	--out) OUT=$2; shift ;;
	*) echo "usage: $0 [--quick] [--reps N] [--proxies LIST] [--scenarios LIST] [--out DIR]" >&2; exit 2 ;;
	esac
	shift
done

BUILD=${ZGB_BUILD:-$ROOT/build-bench}
OUT=${OUT:-$BUILD/results-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RES="$OUT/results.tsv"
: > "$RES"
LOG="$OUT/run.log"
: > "$LOG"

if [ $QUICK = 1 ]; then
	REPS=${REPS:-1}
	TYPES="ec"; VERSIONS="1.3"
	HS_N=200; HS_C=32; BULK_MB=32; IDLE_LEVELS="500"; PP_REQS=${ZGB_PP_REQS:-300}
	SC_R1=100; SC_R2=600
else
	REPS=${REPS:-3}
	TYPES=${ZGB_TYPES:-ec rsa}; VERSIONS=${ZGB_VERSIONS:-1.2 1.3}
	HS_N=1500; HS_C=32; BULK_MB=256; IDLE_LEVELS=${ZGB_IDLE_LEVELS:-2000 5000 9900}; PP_REQS=${ZGB_PP_REQS:-2000}
	SC_R1=200; SC_R2=2200
fi
BULK_CONNS=4
# storm: STORM_CONNS bulk uploads of STORM_MB each beside a clinical ping-pong
STORM_CONNS=8
STORM_MB=$([ $QUICK = 1 ] && echo 24 || echo 64)
# stormlink: the same storm with the backends behind a 200 Mbit/s link (a
# veth into a network namespace, tbf on the gateway's side). 8 x 64 MiB last
# ~21 s at 200 Mbit/s, ~29 s at 150; the clinical ping-pong (LINK_REQS round
# trips, ~50 ms each behind a full router buffer) ends well inside that.
LINK_MB=$([ $QUICK = 1 ] && echo 24 || echo 64)
LINK_REQS=$([ $QUICK = 1 ] && echo 100 || echo 300)
# host zgbh --- zgba [router netns zgbrPID] zgbb --tbf--> zgbn [backends netns zgbPID]
LINK_NS=zgb$$ LINK_RNS=zgbr$$ LINK_VH=zgbh$$ LINK_VRA=zgba$$ LINK_VRB=zgbb$$ LINK_VN=zgbn$$
LINK_HOST_IP=10.77.0.1 LINK_RA_IP=10.77.0.2 LINK_RB_IP=10.77.0.5 LINK_NS_IP=10.77.0.6
# The router's buffer: 50 ms at the link's rate (tbf latency), burst 32 KiB
# (~1.3 ms at 200 Mbit/s; tbf needs >= rate/HZ).
LINK_BUFFER_MS=50 LINK_BURST=32kb

# Ports: derived from the PID so two runs do not collide; below the
# ephemeral range (32768-60999) so no outgoing connection holds them.
BASE=$((20000 + ($$ % 1200) * 10))
P_PROXY=$BASE; P_ECHO=$((BASE + 1)); P_SINK=$((BASE + 2)); P_PROXY2=$((BASE + 3)); P_SOURCE=$((BASE + 4))

T0=$(date +%s)
say() { echo "bench: $*" >&2; echo "[$(( $(date +%s) - T0 ))s] $*" >> "$LOG"; }

# --- limits ------------------------------------------------------------------
# Each idle connection costs the proxy two descriptors; 9,900 connections need
# ~19,900. The soft limit goes to the hard limit (raising the hard limit needs
# CAP_SYS_RESOURCE, which a container may not grant).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
MAXCONN=$(( (NOFILE - 100) / 2 ))
export ZGB_MAXCONN=$MAXCONN
for lvl in $IDLE_LEVELS; do
	if [ "$lvl" -gt "$MAXCONN" ]; then
		say "idle level $lvl exceeds the descriptor limit ($NOFILE); capped to $MAXCONN"
		IDLE_LEVELS=$(echo "$IDLE_LEVELS" | sed "s/\b$lvl\b/$MAXCONN/")
	fi
done

# --- build -------------------------------------------------------------------
# A release build of zonegate and the bench tools. If the shared tree does not
# configure at this moment (someone's half-written change), use the binaries
# of the last good build, or compile the bench tools directly.
BIN="$BUILD/bench"
if { [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" -Dbuildtype=release -Db_ndebug=true >>"$LOG" 2>&1; } &&
	ninja -C "$BUILD" zonegate bench/loadgen bench/backend bench/inproc >>"$LOG" 2>&1; then
	:
elif [ -x "$BIN/loadgen" ] && [ -x "$BIN/backend" ] && [ -x "$BIN/inproc" ]; then
	say "build failed (see $LOG); using the binaries of the last good build"
else
	say "build failed (see $LOG); compiling the bench tools directly"
	BIN="$BUILD/bench-cc"
	mkdir -p "$BIN"
	CF="-std=c17 -O2 -DNDEBUG -D_GNU_SOURCE -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -Wall -Wextra -Wpedantic"
	for t in loadgen backend inproc; do
		cc $CF -o "$BIN/$t" "$HERE/$t.c" -lssl -lcrypto || exit 1
	done
fi
[ -x "$BUILD/zonegate" ] || { say "no zonegate binary: zonegate rows will be empty"; PROXIES=${PROXIES/zonegate/}; }
# ZGB_ZONEGATE_BIN: run this zonegate binary instead of the tree's (an A/B
# pair of fixed binaries with zonegate-base, whatever the tree holds then)
export ZGB_BIN="$BIN" ZGB_ZONEGATE="${ZGB_ZONEGATE_BIN:-$BUILD/zonegate}"
PKI="$BUILD/bench-pki"
"$HERE/mkcerts.sh" "$PKI" "$HS_N"
CLK_TCK=$(getconf CLK_TCK)

# --- /proc readers -----------------------------------------------------------
tree() { # "PID [PID...]": each PID and all its descendants (an adapter that
	# runs several independent processes, zonegate-2p, prints all their PIDs)
	local p c
	for p in $1; do
		echo "$p"
		for c in $(pgrep -P "$p" 2>/dev/null); do tree "$c"; done
	done
}
cpu_us() { # PID: utime+stime of the tree in microseconds
	local t=0 p v
	for p in $(tree "$1"); do
		v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
		t=$((t + ${v:-0}))
	done
	echo $((t * 1000000 / CLK_TCK))
}
cpu_ns() { # PID: on-CPU time of every thread of the tree in ns (schedstat:
	# to the nanosecond, where utime+stime counts 10 ms ticks)
	local p
	for p in $(tree "$1"); do
		cat /proc/"$p"/task/*/schedstat 2>/dev/null || true
	done | awk '{t += $1} END {printf "%.0f\n", t}'
}
slices() { # PID: times the tree's threads were switched in (schedstat's third field)
	local p
	for p in $(tree "$1"); do
		cat /proc/"$p"/task/*/schedstat 2>/dev/null || true
	done | awk '{t += $3} END {printf "%.0f\n", t}'
}
cpu_parts() { # PID: "utime stime" of the tree in microseconds
	local u=0 k=0 p v
	for p in $(tree "$1"); do
		v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}') || v=""
		set -- ${v:-0 0}
		u=$((u + $1)); k=$((k + $2))
	done
	echo "$((u * 1000000 / CLK_TCK)) $((k * 1000000 / CLK_TCK))"
}
others_us() { # SINK_PID: CPU of the sink and of both CPUs' softirq threads, microseconds
	local t=0 p
	for p in "$1" $(pgrep -x 'ksoftirqd/[01]' 2>/dev/null); do t=$((t + $(cpu_us "$p"))); done
	echo "$t"
}
sleeps() { # PID: voluntary context switches of every thread of the tree (each one a sleep)
	local t=0 p f v
	for p in $(tree "$1"); do
		for f in /proc/"$p"/task/*/status; do
			v=$(awk '/^voluntary_ctxt_switches:/ {print $2}' "$f" 2>/dev/null) || v=0
			t=$((t + ${v:-0}))
		done
	done
	echo "$t"
}
rss_kib() { # PID: VmRSS of the tree in KiB
	local t=0 p v
	for p in $(tree "$1"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
switches() { # PID: "voluntary involuntary" context switches of the tree's threads
	local p
	for p in $(tree "$1"); do
		cat /proc/"$p"/task/*/status 2>/dev/null || true
	done | awk '/^voluntary_ctxt_switches:/ {v += $2} /^nonvoluntary_ctxt_switches:/ {i += $2}
		END {print v + 0, i + 0}'
}
settle() { # PID: wait until the proxy stops burning CPU (its tail work)
	local a b i=0
	a=$(cpu_us "$1")
	while [ $i -lt 30 ]; do
		sleep 0.1
		b=$(cpu_us "$1")
		[ "$a" = "$b" ] && return 0
		a=$b
		i=$((i + 1))
	done
}
record() { # scen proxy variant metric value
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RES"
}
kv() { # KEY LINE: value of KEY=... in LINE
	echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'
}

# --- backends ----------------------------------------------------------------
BACKENDS=""
start_backends() {
	taskset -c 1 "$BIN/backend" -m echo -l "127.0.0.1:$P_ECHO" 2>>"$LOG" &
	BACKENDS="$BACKENDS $!"
	taskset -c 1 "$BIN/backend" -m sink -l "127.0.0.1:$P_SINK" 2>>"$LOG" &
	BACKENDS="$BACKENDS $!"
	SINK_PID=$!
	taskset -c 1 "$BIN/backend" -m source -l "127.0.0.1:$P_SOURCE" 2>>"$LOG" &
	BACKENDS="$BACKENDS $!"
	sleep 0.3
}
PROXY_PID=""
CUR_ADAPTER=""
cleanup() {
	[ -n "$CUR_ADAPTER" ] && "$HERE/adapters/$CUR_ADAPTER.sh" stop 2>/dev/null || true
	for p in $BACKENDS; do kill "$p" 2>/dev/null || true; done
	link_down
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- the link (stormlink) -----------------------------------------------------
# link_up: a network namespace holding an echo and a sink backend (CPU 1),
# reached through a router namespace whose egress toward the backends gets a
# tbf by link_rate. The router is a namespace of its own because a qdisc on
# the gateway's own interface would not fill like a router's: TCP Small
# Queues lets a socket hold only ~1 ms of its rate in a local qdisc, while a
# packet forwarded by another IP stack is released (skb_orphan in ip_rcv).
# Removed by link_down, also on failure (trap above).
LINK_BACKENDS=""
LINK_MADE=0
link_up() {
	local ns p
	# a namespace left by a run that was killed (-9) holds the addresses
	for ns in $(ip netns list 2>/dev/null | awk '/^zgbr?[0-9]+( |$)/ {print $1}'); do
		p=${ns#zgb}
		kill -0 "${p#r}" 2>/dev/null || ip netns del "$ns" 2>>"$LOG" || true
	done
	if [ -n "$(ip -o addr show to "$LINK_HOST_IP/32" 2>/dev/null)" ]; then
		say "stormlink: $LINK_HOST_IP is in use on this host; no stormlink rows"
		return 1
	fi
	LINK_MADE=1
	if ! { ip netns add "$LINK_NS" && ip netns add "$LINK_RNS" &&
		ip link add "$LINK_VH" type veth peer name "$LINK_VRA" netns "$LINK_RNS" &&
		ip -n "$LINK_RNS" link add "$LINK_VRB" type veth peer name "$LINK_VN" netns "$LINK_NS" &&
		ip addr add "$LINK_HOST_IP/30" dev "$LINK_VH" && ip link set "$LINK_VH" up &&
		ip route add "$LINK_NS_IP/32" via "$LINK_RA_IP" &&
		ip -n "$LINK_RNS" addr add "$LINK_RA_IP/30" dev "$LINK_VRA" &&
		ip -n "$LINK_RNS" addr add "$LINK_RB_IP/30" dev "$LINK_VRB" &&
		ip -n "$LINK_RNS" link set "$LINK_VRA" up && ip -n "$LINK_RNS" link set "$LINK_VRB" up &&
		ip netns exec "$LINK_RNS" sysctl -qw net.ipv4.ip_forward=1 &&
		ip -n "$LINK_NS" addr add "$LINK_NS_IP/30" dev "$LINK_VN" &&
		ip -n "$LINK_NS" link set "$LINK_VN" up && ip -n "$LINK_NS" link set lo up &&
		ip -n "$LINK_NS" route add default via "$LINK_RB_IP"; } 2>>"$LOG"; then
		say "stormlink: veth setup failed (see $LOG)"
		return 1
	fi
	ip netns exec "$LINK_NS" taskset -c 1 "$BIN/backend" -m echo -l "$LINK_NS_IP:$P_ECHO" 2>>"$LOG" &
	LINK_BACKENDS="$LINK_BACKENDS $!"
	ip netns exec "$LINK_NS" taskset -c 1 "$BIN/backend" -m sink -l "$LINK_NS_IP:$P_SINK" 2>>"$LOG" &
	LINK_BACKENDS="$LINK_BACKENDS $!"
	LINK_SINK_PID=$!
	sleep 0.3
}
link_rate() { # MBIT [dscp]: the link's rate toward the backends, a tbf; dscp:
	# a router that serves AF41 (zonegate's clinical class) first instead,
	# an HTB at the same rate and burst with AF41 in a priority-0 class (a
	# quarter of the rate guaranteed) and the rest in a priority-1 class,
	# each behind its own 50 ms FIFO (this kernel has no prio qdisc)
	local q=(tc -n "$LINK_RNS") lim=$(( $1 * 1000000 / 8 * LINK_BUFFER_MS / 1000 ))
	"${q[@]}" qdisc del dev "$LINK_VRB" root 2>/dev/null || true
	if [ "${2:-}" != dscp ]; then
		"${q[@]}" qdisc add dev "$LINK_VRB" root tbf rate "${1}mbit" burst "$LINK_BURST" \
			latency "${LINK_BUFFER_MS}ms" 2>>"$LOG" && return 0
		say "stormlink: tc tbf failed"
		return 1
	fi
	{ "${q[@]}" qdisc add dev "$LINK_VRB" root handle 1: htb default 20 &&
		"${q[@]}" class add dev "$LINK_VRB" parent 1: classid 1:1 htb rate "${1}mbit" burst "$LINK_BURST" &&
		"${q[@]}" class add dev "$LINK_VRB" parent 1:1 classid 1:10 htb rate "$(($1 / 4))mbit" \
			ceil "${1}mbit" burst "$LINK_BURST" prio 0 &&
		"${q[@]}" class add dev "$LINK_VRB" parent 1:1 classid 1:20 htb rate "$(($1 * 3 / 4))mbit" \
			ceil "${1}mbit" burst "$LINK_BURST" prio 1 &&
		"${q[@]}" qdisc add dev "$LINK_VRB" parent 1:10 bfifo limit "$lim" &&
		"${q[@]}" qdisc add dev "$LINK_VRB" parent 1:20 bfifo limit "$lim" &&
		"${q[@]}" filter add dev "$LINK_VRB" parent 1: protocol ip prio 1 u32 \
			match ip dsfield 0x88 0xfc flowid 1:10; } 2>>"$LOG" && return 0
	say "stormlink: tc htb (dscp) failed"
	return 1
}
link_down() {
	local p
	for p in $LINK_BACKENDS; do kill "$p" 2>/dev/null || true; done
	for p in $LINK_BACKENDS; do wait "$p" 2>/dev/null || true; done
	LINK_BACKENDS=""
	if [ "$LINK_MADE" = 1 ]; then
		ip link del "$LINK_VH" 2>/dev/null || true
		ip netns del "$LINK_NS" 2>/dev/null || true
		ip netns del "$LINK_RNS" 2>/dev/null || true
		LINK_MADE=0
	fi
}

# start_proxy NAME TYPE BACKEND_PORT: sets PROXY_PID, or returns 1.
start_proxy() {
	local name=$1 adapter=$1
	[ "$name" = relay ] && adapter=relay
	export ZGB_WORK="$OUT/work/$name" ZGB_PORT=$P_PROXY ZGB_BACKEND=$3 ZGB_PKI="$PKI/$2"
	CUR_ADAPTER=$adapter
	if ! PROXY_PID=$("$HERE/adapters/$adapter.sh" start 2>>"$LOG"); then
		say "$name: did not start (see $ZGB_WORK/stderr.log)"
		CUR_ADAPTER=""
		return 1
	fi
}
stop_proxy() {
	[ -n "$CUR_ADAPTER" ] && "$HERE/adapters/$CUR_ADAPTER.sh" stop 2>>"$LOG" || true
	CUR_ADAPTER=""
	sleep 0.2
}

# lg_args NAME TYPE: sets LGA to the load generator's connection options
lg_args() {
	if [ "$1" = relay ] || [ "$1" = direct ]; then
		LGA=(--plain)
	else
		LGA=(--cert "$PKI/$2/client-chain.pem" --key "$PKI/$2/client.key" --ca "$PKI/$2/root.pem")
	fi
}
# loadgen NAME TYPE ARGS...: run the load generator on CPU 1
loadgen() {
	lg_args "$1" "$2"
	shift 2
	taskset -c 1 "$BIN/loadgen" "${LGA[@]}" "$@" 2>>"$LOG"
}

# measure NAME TYPE ARGS...: one loadgen run; prints "cpu_us loadgen-line"
# and leaves the proxy's context switches over the run ("voluntary
# involuntary") in $OUT/switches.
measure() {
	local c0 c1 line s0 s1
	c0=$(cpu_us "$PROXY_PID")
	s0=$(switches "$PROXY_PID")
	line=$(loadgen "$@" | tail -1) || true
	settle "$PROXY_PID"
	c1=$(cpu_us "$PROXY_PID")
	s1=$(switches "$PROXY_PID")
	echo "${s0% *} ${s0#* } ${s1% *} ${s1#* }" |
		awk '{print $3 - $1, $4 - $2}' > "$OUT/switches"
	echo "$((c1 - c0)) $line"
}

# --- scenarios ---------------------------------------------------------------
# (1) and (2): per connection: handshake (full or resumed) + 100-byte echo.
scen_handshakes() { # NAME TYPE
	local name=$1 type=$2 v s r out cpu line ok res fail sv si
	start_proxy "$name" "$type" "$P_ECHO" || return 0
	# warm-up: lazy initialisation, caches, page faults
	loadgen "$name" "$type" -s hs -t "127.0.0.1:$P_PROXY" -n 50 -c 4 >/dev/null || true
	for v in $VERSIONS; do
		for s in hs resume; do
			[ "$name" = relay ] && [ "$s" = resume ] && continue
			for r in $REP; do
				out=$(measure "$name" "$type" -s "$s" -t "127.0.0.1:$P_PROXY" -n "$HS_N" -c "$HS_C" --tls "$v")
				cpu=${out%% *}; line=${out#* }
				ok=$(kv ok "$line"); res=$(kv resumed "$line"); fail=$(kv fail "$line")
				[ -n "$ok" ] && [ "$ok" -gt 0 ] || { say "$name $type $v $s: no connection succeeded: $line"; continue; }
				record "$s" "$name" "$type-$v" cpu_us $((cpu / ok))
				record "$s" "$name" "$type-$v" resumed_pct $((100 * res / ok))
				record "$s" "$name" "$type-$v" conn_per_s "$(kv conn_per_s "$line")"
				read -r sv si < "$OUT/switches"
				record "$s" "$name" "$type-$v" switches_per_conn "$(awk -v a="$sv" -v b="$si" -v n="$ok" 'BEGIN {printf "%.2f", (a + b) / n}')"
				record "$s" "$name" "$type-$v" invol_per_conn "$(awk -v b="$si" -v n="$ok" 'BEGIN {printf "%.3f", b / n}')"
				[ "$fail" = 0 ] || record "$s" "$name" "$type-$v" failed "$fail"
				say "$name $type tls$v $s rep$r: $((cpu / ok)) us/conn, resumed $res/$ok, fail $fail"
			done
		done
	done
	stop_proxy
}

# (1b) full handshakes, every connection a different client certificate (a
# fresh proxy per run): what a verified-chain cache miss costs.
scen_hsmany() { # NAME
	local name=$1 out cpu line ok fail r=$REP
	[ "$name" = relay ] && return 0
	start_proxy "$name" ec "$P_ECHO" || return 0
	loadgen "$name" ec -s hs -t "127.0.0.1:$P_PROXY" -n 20 -c 4 >/dev/null || true
	out=$(measure "$name" ec -s hs -t "127.0.0.1:$P_PROXY" -n "$HS_N" -c "$HS_C" --tls 1.3 \
		--client-dir "$PKI/ec/clients" --clients "$HS_N")
	cpu=${out%% *}; line=${out#* }
	ok=$(kv ok "$line"); fail=$(kv fail "$line")
	if [ -n "$ok" ] && [ "$ok" -gt 0 ]; then
		record hsmany "$name" ec-1.3 cpu_us $((cpu / ok))
		[ "$fail" = 0 ] || record hsmany "$name" ec-1.3 failed "$fail"
		say "$name distinct clients rep$r: $((cpu / ok)) us/conn, fail $fail"
	else
		say "$name distinct clients: no connection succeeded: $line"
	fi
	stop_proxy
}

# (3) bulk one way: upload through the proxy to the sink, then download
# from the source (TLS decryption, then encryption, on the proxy).
scen_bulk_dir() { # NAME SCENARIO VARIANT BACKEND_PORT
	local name=$1 r out cpu line ok bytes
	start_proxy "$name" ec "$4" || return 0
	for r in $REP; do
		out=$(measure "$name" ec -s "$2" -t "127.0.0.1:$P_PROXY" -n $BULK_CONNS -c $BULK_CONNS \
			--bytes "${BULK_MB}M" --tls 1.3)
		cpu=${out%% *}; line=${out#* }
		ok=$(kv ok "$line")
		[ -n "$ok" ] && [ "$ok" -gt 0 ] || { say "$name $2: failed: $line"; continue; }
		bytes=$((ok * BULK_MB * 1048576))
		record bulk "$name" "$3" cpu_s_per_gb "$(awk -v c="$cpu" -v b="$bytes" 'BEGIN {printf "%.3f", c / 1e6 / (b / 1e9)}')"
		record bulk "$name" "$3" mb_per_s "$(kv mb_per_s "$line")"
		say "$name $2 rep$r: cpu ${cpu} us for $bytes bytes ($(kv mb_per_s "$line") MB/s)"
	done
	stop_proxy
}
scen_bulk() { # NAME
	scen_bulk_dir "$1" bulk ec-1.3 "$P_SINK"
	scen_bulk_dir "$1" download ec-1.3-down "$P_SOURCE"
}

# (4) idle connections held: RSS per connection (fresh proxy per level).
scen_idle() { # NAME
	local name=$1 n r0 r1 ready line i held
	for n in ${IDLE_ONE:-$IDLE_LEVELS}; do
		start_proxy "$name" ec "$P_ECHO" || return 0
		loadgen "$name" ec -s hs -t "127.0.0.1:$P_PROXY" -n 100 -c 4 >/dev/null || true
		settle "$PROXY_PID"
		r0=$(rss_kib "$PROXY_PID")
		ready="$OUT/work/idle.ready"
		rm -f "$ready"
		lg_args "$name" ec
		taskset -c 1 "$BIN/loadgen" "${LGA[@]}" -s idle -t "127.0.0.1:$P_PROXY" -n "$n" -c 32 \
			--tls 1.3 --hold 600 --ready-file "$ready" > "$OUT/work/idle.out" 2>>"$LOG" &
		local lg=$!
		i=0
		while [ ! -f "$ready" ] && kill -0 "$lg" 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
		settle "$PROXY_PID"
		r1=$(rss_kib "$PROXY_PID")
		line=$(cat "$OUT/work/idle.out" 2>/dev/null || true)
		kill "$lg" 2>/dev/null || true
		wait "$lg" 2>/dev/null || true
		held=$(kv held "$line")
		if [ -z "$held" ] || [ "$held" = 0 ]; then
			say "$name idle $n: nothing held: $line"
		else
			# per connection actually held; a proxy that refused some is flagged
			record idle "$name" "$n" rss_kib_per_conn "$(awk -v a="$r0" -v b="$r1" -v n="$held" 'BEGIN {printf "%.2f", (b - a) / n}')"
			record idle "$name" "$n" rss_mib_total "$(awk -v b="$r1" 'BEGIN {printf "%.1f", b / 1024}')"
			[ "$held" = "$n" ] || record idle "$name" "$n" failed $((n - held))
			say "$name idle $n: $held held, RSS $r0 -> $r1 KiB"
		fi
		stop_proxy
	done
}

# (5) 1 KiB ping-pong, 1 and 32 connections: round-trip latency, and the
# proxy's CPU per round trip both from ticks (as the other scenarios) and
# from schedstat (ns: a 1-connection run holds only ~10 ticks).
scen_pingpong() { # NAME
	local name=$1 k r out line n0 n1 s0 s1 target=$P_PROXY
	if [ "$name" = direct ]; then
		target=$P_ECHO
		PROXY_PID=$$
	else
		start_proxy "$name" ec "$P_ECHO" || return 0
		# warm-up: lazy initialisation, the first (full) handshake
		loadgen "$name" ec -s pingpong -t "127.0.0.1:$target" -n 1 --reqs 50 --size 1024 --tls 1.3 \
			>/dev/null || true
	fi
	for k in 1 32; do
		for r in $REP; do
			n0=$(cpu_ns "$PROXY_PID"); s0=$(slices "$PROXY_PID")
			out=$(measure "$name" ec -s pingpong -t "127.0.0.1:$target" -n $k --reqs "$PP_REQS" --size 1024 --tls 1.3)
			n1=$(cpu_ns "$PROXY_PID"); s1=$(slices "$PROXY_PID")
			line=${out#* }
			[ "$(kv fail "$line")" = 0 ] || { say "$name pingpong $k: $line"; continue; }
			record pingpong "$name" "c$k" p50_us "$(kv p50_us "$line")"
			record pingpong "$name" "c$k" p99_us "$(kv p99_us "$line")"
			if [ "$name" != direct ]; then
				record pingpong "$name" "c$k" cpu_us_per_req \
					"$(awk -v c="${out%% *}" -v n="$(kv reqs "$line")" 'BEGIN {printf "%.1f", c / n}')"
				record pingpong "$name" "c$k" sched_us_per_req \
					"$(awk -v a="$n0" -v b="$n1" -v n="$(kv reqs "$line")" 'BEGIN {printf "%.2f", (b - a) / 1000 / n}')"
				# how often the proxy was woken (switched in) per round trip
				record pingpong "$name" "c$k" slices_per_req \
					"$(awk -v a="$s0" -v b="$s1" -v n="$(kv reqs "$line")" 'BEGIN {printf "%.3f", (b - a) / n}')"
			fi
			say "$name pingpong c$k rep$r: p50 $(kv p50_us "$line") p99 $(kv p99_us "$line")"
		done
	done
	[ "$name" = direct ] || stop_proxy
}

# (7) system calls per 1 KiB round trip (TLS 1.3), 1 and 32 connections:
# perf stat counts every syscalls:sys_enter_* tracepoint of the proxy's
# tree (no ptrace, so the proxy keeps its pace and its epoll batching), and
# the reads that ended in EAGAIN (sys_exit ret == -11). Two ping-pongs of
# SC_R1 and SC_R2 round trips per connection; their difference divided by
# the extra round trips, so handshakes, connection set-up and close cancel.
SC_EAGAIN="read recvfrom recvmsg readv"
# Counted one by one (the rest lands in "other", from raw_syscalls): every
# tracepoint costs perf an event per thread to open.
SC_CALLS="read write readv writev recvfrom sendto recvmsg sendmsg recvmmsg sendmmsg splice
	epoll_wait epoll_pwait epoll_pwait2 epoll_ctl poll ppoll select pselect6 io_uring_enter
	clock_gettime gettimeofday getpid gettid getrusage times futex sched_yield nanosleep
	clock_nanosleep brk mmap munmap mremap madvise mprotect accept accept4 close shutdown
	setsockopt getsockopt ioctl fcntl"
sc_count() { # NAME K REQS FILE: count the proxy tree's system calls during one ping-pong
	local pids perf i ev=(-e raw_syscalls:sys_enter)
	for i in $SC_CALLS; do
		ev+=(-e "syscalls:sys_enter_$i")
	done
	for i in $SC_EAGAIN; do
		ev+=(-e "syscalls:sys_exit_$i" --filter 'ret == -11')
	done
	pids=$(tree "$PROXY_PID" | paste -sd, -)
	rm -f "$OUT/work/perf.ctl" "$OUT/work/perf.ack"
	mkfifo "$OUT/work/perf.ctl" "$OUT/work/perf.ack"
	# counters open disabled and are enabled once all are in place
	perf stat -x, -o "$4" -D -1 --control "fifo:$OUT/work/perf.ctl,$OUT/work/perf.ack" \
		"${ev[@]}" -p "$pids" 2>>"$LOG" &
	perf=$!
	exec 8<>"$OUT/work/perf.ctl" 9<>"$OUT/work/perf.ack" # read-write: never blocks
	echo enable >&8
	read -r -t 30 i <&9 || say "perf stat did not acknowledge"
	loadgen "$1" ec -s pingpong -t "127.0.0.1:$P_PROXY" -n "$2" --reqs "$3" --size 1024 --tls 1.3 \
		>/dev/null || true
	settle "$PROXY_PID"
	say "syscalls: $1 $2 x $3 done"
	echo disable >&8
	read -r -t 30 i <&9 || true
	exec 8>&- 9<&-
	kill -INT "$perf"
	wait "$perf" || true
}
scen_syscalls() { # NAME
	local name=$1 k f1 f2
	[ "$name" = relay ] && return 0
	command -v perf >/dev/null || { say "syscalls: no perf (linux-perf)"; return 0; }
	say "$name syscalls: start"
	start_proxy "$name" ec "$P_ECHO" || return 0
	loadgen "$name" ec -s pingpong -t "127.0.0.1:$P_PROXY" -n 1 --reqs 50 --size 1024 --tls 1.3 \
		>/dev/null || true
	for k in 1 32; do
		f1="$OUT/work/sc-$name-$k-1.csv"; f2="$OUT/work/sc-$name-$k-2.csv"
		sc_count "$name" "$k" "$SC_R1" "$f1"
		sc_count "$name" "$k" "$SC_R2" "$f2"
		# per syscall: (count in run 2 - count in run 1) / extra round trips
		awk -F, -v rt=$((k * (SC_R2 - SC_R1))) '
			function key(ev) {
				if (ev ~ /raw_syscalls/) return "total"
				if (ev ~ /sys_exit_/) { sub(/.*sys_exit_/, "", ev); return ev "(EAGAIN)" }
				sub(/.*sys_enter_/, "", ev); return ev
			}
			FNR == 1 { file++ }
			$1 ~ /^[0-9]+$/ {
				d = (file == 2 ? $1 : -$1); c[key($3)] += d
				if ($3 ~ /syscalls:sys_enter_/) named += d
			}
			END {
				c["other"] = c["total"] - named
				for (s in c) if (s == "total" || c[s] / rt >= 0.005 || c[s] / rt <= -0.005) printf "%s %.3f\n", s, c[s] / rt
			}' "$f1" "$f2" | while read -r sys v; do
			record syscalls "$name" "c$k" "$sys" "$v"
		done
		say "$name syscalls c$k rep$REP: $(awk -F'\t' -v p="$name" -v c="c$k" '$1 == "syscalls" && $2 == p && $3 == c && $4 == "total" {v = $5} END {print v}' "$RES") per round trip"
	done
	stop_proxy
}

# (6) storm: STORM_CONNS bulk uploads (an OS-update storm) through one route
# while a 1 KiB ping-pong (clinical request/response) goes through another.
# zonegate runs twice: with traffic classes (updates rate 50 ceil 150,
# clinical rate 50 ceil 200, priority 0, link 200 Mbit/s) and without
# (variant unshaped: what shaping costs per GB). The other proxies have no
# classes: the reference as deployed today.
# The storm functions serve both storm scenarios through SC (storm or
# stormlink), SC_MB (MiB per upload) and SC_REQS (ping-pong round trips).
storm_pingpong() { # NAME VARIANT: one 1 KiB ping-pong through the second port
	local line
	line=$(loadgen "$1" ec -s pingpong -t "127.0.0.1:$P_PROXY2" -n 1 --reqs "$SC_REQS" --size 1024 \
		--tls 1.3 | tail -1) || true
	[ "$(kv fail "$line")" = 0 ] || { say "$1 $SC $2 pingpong: $line"; return 0; }
	record "$SC" "$1" "$2" p50_us "$(kv p50_us "$line")"
	record "$SC" "$1" "$2" p99_us "$(kv p99_us "$line")"
	say "$1 $SC $2: ping-pong p50 $(kv p50_us "$line") p99 $(kv p99_us "$line") us"
}
scen_storm_one() { # NAME LABEL CLASSES
	local name=$1 label=$2 c0 c1 lg line ok bytes t0 t1 p0 p1 z0 z1 probe="" o0 o1 sink
	[ "$name" = relay ] && return 0
	export ZGB_PORT2=$P_PROXY2 ZGB_BACKEND2=$P_ECHO ZGB_STORM_CLASSES=$3
	start_proxy "$name" ec "$P_SINK" || { unset ZGB_PORT2 ZGB_BACKEND2 ZGB_STORM_CLASSES; return 0; }
	loadgen "$name" ec -s pingpong -t "127.0.0.1:$P_PROXY2" -n 1 --reqs 50 --size 1024 --tls 1.3 \
		>/dev/null || true
	storm_pingpong "$label" idle
	sink=$SINK_PID
	[ "$SC" = stormlink ] && sink=$LINK_SINK_PID
	c0=$(cpu_us "$PROXY_PID"); p0=$(cpu_parts "$PROXY_PID"); z0=$(sleeps "$PROXY_PID")
	o0=$(others_us "$sink")
	lg_args "$name" ec
	t0=$(date +%s%N)
	/usr/bin/time -f "%U %S" -o "$OUT/work/storm.time" \
	taskset -c 1 "$BIN/loadgen" "${LGA[@]}" -s bulk -t "127.0.0.1:$P_PROXY" -n $STORM_CONNS \
		-c $STORM_CONNS --bytes "${SC_MB}M" --tls 1.3 > "$OUT/work/storm.out" 2>>"$LOG" &
	lg=$!
	# ZGB_STORM_PROBE: a command given the proxy's PID and the row's label
	# while the bulk runs (perf record, strace -c); it disturbs the figures
	if [ -n "${ZGB_STORM_PROBE:-}" ]; then
		$ZGB_STORM_PROBE "$PROXY_PID" "$label" >>"$LOG" 2>&1 &
		probe=$!
	fi
	sleep 1
	storm_pingpong "$label" storm
	t1=$(date +%s%N)
	wait "$lg" || true
	[ -z "$probe" ] || { kill -INT "$probe" 2>/dev/null || true; wait "$probe" 2>/dev/null || true; }
	settle "$PROXY_PID"
	c1=$(cpu_us "$PROXY_PID"); p1=$(cpu_parts "$PROXY_PID"); z1=$(sleeps "$PROXY_PID")
	o1=$(others_us "$sink")
	line=$(tail -1 "$OUT/work/storm.out")
	ok=$(kv ok "$line")
	if [ -n "$ok" ] && [ "$ok" -gt 0 ]; then
		bytes=$((ok * SC_MB * 1048576))
		record "$SC" "$label" bulk mbit_per_s "$(awk -v m="$(kv mb_per_s "$line")" 'BEGIN {printf "%.1f", m * 8}')"
		record "$SC" "$label" bulk cpu_s_per_gb "$(awk -v c=$((c1 - c0)) -v b="$bytes" 'BEGIN {printf "%.3f", c / 1e6 / (b / 1e9)}')"
		# user and system time apart: the shaper is user code; and the
		# proxy's sleeps (wake-ups) per GB, which pacing multiplies
		record "$SC" "$label" bulk user_s_per_gb "$(awk -v a="${p0% *}" -v c="${p1% *}" -v b="$bytes" 'BEGIN {printf "%.3f", (c - a) / 1e6 / (b / 1e9)}')"
		record "$SC" "$label" bulk sys_s_per_gb "$(awk -v a="${p0#* }" -v c="${p1#* }" -v b="$bytes" 'BEGIN {printf "%.3f", (c - a) / 1e6 / (b / 1e9)}')"
		# The whole path: proxy + load generator + sink + the softirq
		# threads. The kernel's TCP work lands on whichever process's
		# context runs it (a sendto into an open window transmits at
		# once, a full window leaves it to the ACK's softirq on the other
		# CPU), so only the sum compares pacing by the proxy with pacing
		# by the link; softirq run while a CPU idles is in none of them.
		record "$SC" "$label" bulk path_s_per_gb "$(awk -v c=$((c1 - c0)) -v o=$((o1 - o0)) -v b="$bytes" \
			-v lg="$(cat "$OUT/work/storm.time" 2>/dev/null | tail -1)" \
			'BEGIN {split(lg, t, " "); printf "%.3f", (c + o) / 1e6 / (b / 1e9) + (t[1] + t[2]) / (b / 1e9)}')"
		record "$SC" "$label" bulk sleeps_per_gb "$(awk -v a="$z0" -v c="$z1" -v b="$bytes" 'BEGIN {printf "%.0f", (c - a) / (b / 1e9)}')"
		# when the ping-pong ended and how long the storm lasted (s after its start)
		record "$SC" "$label" bulk storm_s "$(kv elapsed_s "$line")"
		record "$SC" "$label" storm pp_end_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}')"
		say "$label $SC: bulk $(kv mb_per_s "$line") MB/s in $(kv elapsed_s "$line") s, cpu $((c1 - c0)) us for $bytes bytes"
	else
		say "$label $SC: bulk failed: $line"
	fi
	stop_proxy
	unset ZGB_PORT2 ZGB_BACKEND2 ZGB_STORM_CLASSES
}
scen_storm() { # NAME
	local SC=storm SC_MB=$STORM_MB SC_REQS=$PP_REQS
	if [ "$1" = zonegate ]; then
		scen_storm_one zonegate zonegate 1
		scen_storm_one zonegate zonegate-unshaped 0
	else
		scen_storm_one "$1" "$1" 0
	fi
}

# (8) stormlink: the storm with the backends behind a 200 Mbit/s link with a
# router's buffer (link_up), so an unshaped storm queues the clinical
# packets as a WAN would. zonegate (and zonegate-base) run as: classes over
# the 200 Mbit/s link; unshaped over the same link; unshaped over a
# 150 Mbit/s link (the updates ceil: CPU per GB at the shaped run's rate,
# the same link doing the pacing); and classes over a link whose router
# serves DSCP AF41 (the clinical class's mark) first ("dscp"): what the
# marks buy where the router honours them. ZGB_LINK_VARIANTS narrows that
# list ("classes unshaped unshaped150 dscp"). Peers: no classes, 200 Mbit/s.
scen_stormlink() { # NAME
	local SC=stormlink SC_MB=$LINK_MB SC_REQS=$LINK_REQS v
	case "$1" in
	relay) return 0 ;;
	hitch) say "hitch has one backend per process: no second route, no stormlink row"; return 0 ;;
	esac
	export ZGB_BACKEND_HOST=$LINK_NS_IP
	case "$1" in
	zonegate | zonegate-base)
		for v in ${ZGB_LINK_VARIANTS:-classes unshaped unshaped150 dscp}; do
			case "$v" in
			classes) link_rate 200 && scen_storm_one "$1" "$1" 1 ;;
			unshaped) link_rate 200 && scen_storm_one "$1" "$1-unshaped" 0 ;;
			unshaped150) link_rate 150 && scen_storm_one "$1" "$1-unshaped-150" 0 ;;
			dscp) link_rate 200 dscp && scen_storm_one "$1" "$1-dscp" 1 ;;
			*) say "ZGB_LINK_VARIANTS: unknown variant $v" ;;
			esac
		done
		;;
	*) link_rate 200 && scen_storm_one "$1" "$1" 0 ;;
	esac
	unset ZGB_BACKEND_HOST
}

# --- references --------------------------------------------------------------
run_speed() {
	say "openssl speed (crypto floor)"
	{
		taskset -c 0 openssl speed -seconds 1 ecdsap256 rsa2048 ecdhx25519 ecdhp256 2>/dev/null
		taskset -c 0 openssl speed -seconds 1 -bytes 16384 -evp aes-256-gcm 2>/dev/null
		taskset -c 0 openssl speed -seconds 1 -bytes 16384 -evp aes-128-gcm 2>/dev/null
	} > "$OUT/speed.txt"
}
run_inproc() {
	say "in-process OpenSSL handshakes"
	local n=2000
	[ $QUICK = 1 ] && n=300
	: > "$OUT/inproc.txt"
	for t in $TYPES; do
		for v in $VERSIONS; do
			taskset -c 0 "$BIN/inproc" -d "$PKI" -n $n -t "$t" -v "$v" >> "$OUT/inproc.txt"
		done
	done
}
run_meta() {
	{
		echo "date	$(date -u +%Y-%m-%dT%H:%MZ)"
		echo "mode	$([ $QUICK = 1 ] && echo quick || echo full), reps=$REPS, handshakes/run=$HS_N (concurrency $HS_C), bulk=${BULK_CONNS}x${BULK_MB} MiB, pingpong=$PP_REQS requests"
		echo "cpu	$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}') ($(nproc) cores, $(lscpu | awk -F: '/Hypervisor vendor/ {gsub(/^ +/, "", $2); print $2}'))"
		echo "kernel	$(uname -r)"
		echo "openssl	$(openssl version)"
		echo "zonegate	$(git -C "$ROOT" describe --always --dirty 2>/dev/null) ($("$ZGB_ZONEGATE" version 2>/dev/null | head -1))${ZGB_ZONEGATE_BIN:+ binary $ZGB_ZONEGATE_BIN}${ZGB_BASE_ZONEGATE:+, base $ZGB_BASE_ZONEGATE}"
		for p in stunnel4 haproxy nginx libnginx-mod-stream hitch; do
			echo "$p	$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)"
		done
		echo "nofile	$NOFILE"
		echo "storm	${STORM_CONNS}x${STORM_MB} MiB, pingpong=$PP_REQS requests; stormlink ${STORM_CONNS}x${LINK_MB} MiB, pingpong=$LINK_REQS requests, tbf burst $LINK_BURST latency ${LINK_BUFFER_MS}ms"
		echo "load	$(cut -d' ' -f1-3 /proc/loadavg)"
	} > "$OUT/meta.tsv"
}

# --- main --------------------------------------------------------------------
say "results in $OUT"
run_meta
start_backends
want() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
# the reference rows only where a table shows them (a short run stays short)
{ want hs || want hsmany || want bulk; } && run_speed
{ want hs || want hsmany || want idle; } && run_inproc
if want stormlink && ! link_up; then
	SCENARIOS=${SCENARIOS/stormlink/}
fi
# Repetitions are the outer loop and every proxy takes its turn within each,
# so a disturbance on the machine (another job, a frequency change) spreads
# over all proxies instead of landing on one.
for REP in $(seq "$REPS"); do
	for name in $PROXIES relay; do
		if want hs; then
			for t in $TYPES; do
				scen_handshakes "$name" "$t"
			done
		fi
		want hsmany && scen_hsmany "$name"
		want bulk && scen_bulk "$name"
		want pingpong && scen_pingpong "$name"
		want storm && scen_storm "$name"
		want syscalls && scen_syscalls "$name"
		want stormlink && scen_stormlink "$name"
	done
	want pingpong && scen_pingpong direct
done
# Idle: one run per level (a fresh proxy each), proxies interleaved per level.
if want idle; then
	for lvl in $IDLE_LEVELS; do
		for name in $PROXIES relay; do
			IDLE_ONE=$lvl scen_idle "$name"
		done
	done
fi
/usr/bin/python3 "$HERE/report.py" "$OUT" | tee "$OUT/report.md"
