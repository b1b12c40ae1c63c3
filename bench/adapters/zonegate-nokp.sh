#!/bin/sh
# zonegate with [tls] key_process = off (the key in the gateway's own memory,
# as before issue 15): the baseline the key process's cost is measured
# against, e.g. bench/run.sh --proxies "zonegate zonegate-nokp" --scenarios hs
ZGB_ZG_KEY_PROCESS=off
export ZGB_ZG_KEY_PROCESS
exec "$(dirname "$0")/zonegate.sh" "$@"
