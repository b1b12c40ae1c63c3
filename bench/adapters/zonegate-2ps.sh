#!/bin/sh
# zonegate-2p with one process pinned to each CPU (0 and 1) instead of both
# free on both: whether the scheduler's placement moves the figure.
ZGB_2P_CPUS="0 1"
export ZGB_2P_CPUS
exec "$(dirname "$0")/zonegate-2p.sh" "$@"
