#!/bin/sh
# Two zonegate processes, workers = 1 each, on the same port (each worker's
# listener has SO_REUSEPORT, so the kernel spreads connections over both as
# it does over zonegate-2w's two workers): the control for issue 17's
# scaling figure. They share no session cache, counter, key process,
# OpenSSL lock or heap, only the machine. Each has its own work directory
# ($ZGB_WORK/p0, p1: configuration, log, pid). run.sh counts both process
# trees (start prints both PIDs). ZGB_2P_CPUS: the CPU list of each
# process, default "0,1 0,1", the pinning of zonegate-2w (both free on both
# CPUs); zonegate-2ps uses "0 1" (one process per CPU).
#   bench/run.sh --proxies "zonegate zonegate-2w zonegate-2p" --scenarios hs
. "$(dirname "$0")/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$ZGB_WORK
start() {
	i=0
	# with ZGB_ZG_TICKETS=1 both seal and open tickets with one key file
	ZGB_ZG_TICKET_KEY=$TOP/ticket.key
	export ZGB_ZG_TICKET_KEY
	for cpu in ${ZGB_2P_CPUS:-0,1 0,1}; do
		# the second joins the first's port: launch waits for its own listener
		if ! ZGB_WORK=$TOP/p$i ZGB_CPU=$cpu ZGB_PORT_SHARED=$([ $i = 0 ] && echo 0 || echo 1) \
			ZGB_ZG_WORKERS=1 "$HERE/zonegate.sh" start; then
			stop
			return 1
		fi
		i=$((i + 1))
	done
}
stop() {
	for d in "$TOP"/p*; do
		[ -d "$d" ] && ZGB_WORK=$d "$HERE/zonegate.sh" stop
	done
	return 0
}
case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
