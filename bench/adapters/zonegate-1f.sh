#!/bin/sh
# zonegate, one worker, free on CPUs 0 and 1 like zonegate-2w's workers
# (`zonegate` is pinned to CPU 0): what the placement alone does to the CPU
# per connection when the proxy shares CPU 1 with the load generator.
ZGB_CPU=0,1
export ZGB_CPU
exec "$(dirname "$0")/zonegate.sh" "$@"
