#!/bin/sh
# The "kernel alone" reference: bench/backend in relay mode, plain TCP in ->
# plain TCP out, no TLS. ZGB_BIN = directory holding the built backend.
. "$(dirname "$0")/common.sh"
start() {
	launch "${ZGB_BIN:?}/backend" -m relay -l "127.0.0.1:$ZGB_PORT" -t "$ZGB_BACKEND_HOST:$ZGB_BACKEND"
}
adapter_main "${1:-}" start
