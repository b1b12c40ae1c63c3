#!/bin/sh
# zonegate with the operator's plane switched on: [admin] listen on
# 127.0.0.1:ZGB_PORT+7 and a scraper fetching /metrics every second (on the
# load generator's CPU, not counted: the figures take zonegate's process
# tree), to show that metrics cost the handshake nothing measurable, e.g.
#   bench/run.sh --proxies "zonegate zonegate-metrics" --scenarios hs
# (docs/performance.md). ZGB_ZG_SCRAPE_S sets the scrape interval.
. "$(dirname "$0")/common.sh"
ZGB_ZG_ADMIN_PORT=$((ZGB_PORT + 7))
export ZGB_ZG_ADMIN_PORT
case "${1:-}" in
start)
	pid=$("$(dirname "$0")/zonegate.sh" start)
	# The scraper runs in its own process group, stopped with zonegate
	# (stop below) and by itself when zonegate is gone; it must not
	# outlive the run: it inherits run.sh's descriptors, among them the
	# benchmark lock (an orphan with ZGB_ZG_SCRAPE_S=3600 held it 10 min).
	setsid taskset -c 1 sh -c 'while kill -0 "$1" 2>/dev/null; do
		curl -sf -o /dev/null "http://127.0.0.1:$2/metrics" || echo "scrape failed" >&2
		sleep "$3"
	done' scraper "$pid" "$ZGB_ZG_ADMIN_PORT" "${ZGB_ZG_SCRAPE_S:-1}" \
		</dev/null >/dev/null 2>>"$ZGB_WORK/scraper.log" &
	echo "$!" >"$ZGB_WORK/scraper.pid"
	echo "$pid"
	;;
stop)
	if [ -f "$ZGB_WORK/scraper.pid" ]; then
		kill -TERM "-$(cat "$ZGB_WORK/scraper.pid")" 2>/dev/null
		rm -f "$ZGB_WORK/scraper.pid"
	fi
	exec "$(dirname "$0")/zonegate.sh" "$@"
	;;
*) exec "$(dirname "$0")/zonegate.sh" "$@" ;;
esac
