#!/bin/sh
# HAProxy (Debian haproxy), one thread, TCP mode, TLS in -> plain out.
. "$(dirname "$0")/common.sh"
start() {
	cat > "$ZGB_WORK/haproxy.cfg" <<CFG
global
	nbthread 1
	maxconn $ZGB_MAXCONN
	ssl-default-bind-ciphers $TLS12_CIPHERS
	ssl-default-bind-ciphersuites $TLS13_SUITES
	ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3
defaults
	mode tcp
	maxconn $ZGB_MAXCONN
	timeout connect 5s
	timeout client 600s
	timeout server 600s
frontend tls_in
	bind 127.0.0.1:$ZGB_PORT ssl crt $ZGB_PKI/server-combined.pem ca-file $ZGB_PKI/root.pem verify required curves $GROUPS
	default_backend plain_out
backend plain_out
	server b $ZGB_BACKEND_HOST:$ZGB_BACKEND
CFG
	# storm scenario: a second frontend, no classes (HAProxy as deployed today)
	if [ -n "${ZGB_PORT2:-}" ]; then
		cat >> "$ZGB_WORK/haproxy.cfg" <<CFG
frontend tls_in2
	bind 127.0.0.1:$ZGB_PORT2 ssl crt $ZGB_PKI/server-combined.pem ca-file $ZGB_PKI/root.pem verify required curves $GROUPS
	default_backend plain_out2
backend plain_out2
	server b2 $ZGB_BACKEND_HOST:$ZGB_BACKEND2
CFG
	fi
	launch haproxy -db -f "$ZGB_WORK/haproxy.cfg"
}
adapter_main "${1:-}" start
