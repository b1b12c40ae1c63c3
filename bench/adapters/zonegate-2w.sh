#!/bin/sh
# zonegate with workers = 2 on both CPUs (issue 17's scaling figure): its CPU
# per handshake against `zonegate` (1 worker, CPU 0) in the same run shows
# what a second worker adds in contention (session cache, counters, audit
# queue, allocator). The load generator shares CPU 1 with the second worker,
# so only the CPU per connection compares, not throughput:
# bench/run.sh --proxies "zonegate zonegate-2w" --scenarios hs
ZGB_ZG_WORKERS=2
ZGB_CPU=0,1
export ZGB_ZG_WORKERS ZGB_CPU
exec "$(dirname "$0")/zonegate.sh" "$@"
