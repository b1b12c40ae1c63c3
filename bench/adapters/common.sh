# common.sh - sourced by every adapter. An adapter is run as
#   ADAPTER.sh start   -> starts the proxy pinned to CPU 0, prints its PID
#   ADAPTER.sh stop    -> stops the proxy started in $ZGB_WORK
# with these variables set by run.sh:
#   ZGB_WORK          private directory for the proxy's config, pid and log
#   ZGB_PORT          TLS port to listen on (127.0.0.1)
#   ZGB_BACKEND       plain backend port (on ZGB_BACKEND_HOST)
#   ZGB_BACKEND_HOST  the backends' address (default 127.0.0.1; the stormlink
#                     scenario puts them in a network namespace behind a link)
#   ZGB_PKI           certificate directory of one key type (see mkcerts.sh)
#   ZGB_MAXCONN       connection limit to configure (>= the idle scenario)
#   ZGB_CPU           CPU to pin to (default 0)
#   ZGB_WRAP          optional command prefix, e.g. "valgrind --tool=callgrind"
#   ZGB_WAIT          seconds to wait for the port (default 10; more under valgrind)
#   ZGB_PORT_SHARED   1: another process already listens on ZGB_PORT with
#                     SO_REUSEPORT and this one joins it (zonegate-2p)
# Every proxy gets the same policy: TLS 1.2-1.3, the cryptrec-high suite and
# group lists in the same order, client certificate required and verified
# against $ZGB_PKI/root.pem (depth 4), plain TCP to the backend, one thread
# or one worker process, default session resumption settings.
set -eu
: "${ZGB_WORK:?}" "${ZGB_PORT:?}" "${ZGB_BACKEND:?}" "${ZGB_PKI:?}"
ZGB_MAXCONN=${ZGB_MAXCONN:-30000}
ZGB_CPU=${ZGB_CPU:-0}
ZGB_BACKEND_HOST=${ZGB_BACKEND_HOST:-127.0.0.1}

# The same lists as src/profile.c "cryptrec-high".
TLS13_SUITES="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
TLS12_CIPHERS="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-CCM8:ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-CCM"
GROUPS="X25519:P-256:P-384:P-521:X448"

mkdir -p "$ZGB_WORK"

# listeners PORT: how many sockets listen on PORT.
listeners() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -c LISTEN || true
}

# wait_listen PORT PID [N]: until at least N (1) sockets listen on PORT (10 s).
wait_listen() {
	i=0
	while [ $i -lt $((${ZGB_WAIT:-10} * 10)) ]; do
		if [ "$(listeners "$1")" -ge "${3:-1}" ]; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || { echo "adapter: process $2 died" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	echo "adapter: nothing listens on $1" >&2
	return 1
}

# launch CMD...: start CMD pinned to $ZGB_CPU in the background, record and
# print its PID once the port listens.
launch() {
	i=0
	while [ "${ZGB_PORT_SHARED:-0}" != 1 ] && [ "$(listeners "$ZGB_PORT")" -gt 0 ]; do
		[ $i -lt 100 ] || { echo "adapter: port $ZGB_PORT still busy" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	n0=$(listeners "$ZGB_PORT")
	# shellcheck disable=SC2086 # ZGB_WRAP is a command prefix (valgrind, perf ...)
	taskset -c "$ZGB_CPU" ${ZGB_WRAP:-} "$@" >"$ZGB_WORK/stdout.log" 2>"$ZGB_WORK/stderr.log" &
	pid=$!
	echo "$pid" > "$ZGB_WORK/pid"
	wait_listen "$ZGB_PORT" "$pid" $((n0 + 1)) || { tail -5 "$ZGB_WORK/stderr.log" >&2; return 1; }
	echo "$pid"
}

# stop_pid: SIGTERM the recorded PID (and, for forking proxies, its children),
# then SIGKILL after 5 s.
stop_pid() {
	[ -f "$ZGB_WORK/pid" ] || return 0
	pid=$(cat "$ZGB_WORK/pid")
	kids=$(pgrep -P "$pid" 2>/dev/null || true)
	kill -TERM "$pid" $kids 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -KILL "$pid" $kids 2>/dev/null || true
	# not our child: wait for the kernel to release it (and its port)
	i=0
	while [ -d "/proc/$pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	rm -f "$ZGB_WORK/pid"
}

adapter_main() { # start-function
	case "${1:-}" in
	start) "$2" ;;
	stop) stop_pid ;;
	*) echo "usage: $0 start|stop" >&2; exit 2 ;;
	esac
}
