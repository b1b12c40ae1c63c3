#!/bin/sh
# a second zonegate binary (ZGB_BASE_ZONEGATE, e.g. a release build of main)
# run beside `zonegate` in the same repetitions, so a change's before and
# after come from one run: bench/run.sh --proxies "zonegate zonegate-base haproxy"
[ -n "$ZGB_BASE_ZONEGATE" ] || { echo "zonegate-base: set ZGB_BASE_ZONEGATE" >&2; exit 1; }
ZGB_ZONEGATE=$ZGB_BASE_ZONEGATE
export ZGB_ZONEGATE
exec "$(dirname "$0")/zonegate.sh" "$@"
