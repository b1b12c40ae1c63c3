#!/bin/sh
# nginx (Debian nginx + libnginx-mod-stream), no master, one worker process,
# stream module, TLS in -> plain out.
. "$(dirname "$0")/common.sh"
start() {
	cat > "$ZGB_WORK/nginx.conf" <<CFG
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $((ZGB_MAXCONN * 2 + 100));
pid $ZGB_WORK/nginx.pid;
error_log $ZGB_WORK/error.log warn;
events { worker_connections $((ZGB_MAXCONN * 2 + 100)); }
stream {
	server {
		listen 127.0.0.1:$ZGB_PORT ssl;
		ssl_certificate $ZGB_PKI/server-chain.pem;
		ssl_certificate_key $ZGB_PKI/server.key;
		ssl_client_certificate $ZGB_PKI/root.pem;
		ssl_verify_client on;
		ssl_verify_depth 4;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_ciphers $TLS12_CIPHERS;
		ssl_prefer_server_ciphers on;
		ssl_conf_command Ciphersuites $TLS13_SUITES;
		ssl_ecdh_curve $GROUPS;
		proxy_pass $ZGB_BACKEND_HOST:$ZGB_BACKEND;
	}
CFG
	# storm scenarios: a second server, no classes (nginx as deployed today)
	if [ -n "${ZGB_PORT2:-}" ]; then
		sed -n '/^\tserver {/,/^\t}/p' "$ZGB_WORK/nginx.conf" |
			sed -e "s/:$ZGB_PORT ssl;/:$ZGB_PORT2 ssl;/" -e "s/:$ZGB_BACKEND;/:$ZGB_BACKEND2;/" \
			>> "$ZGB_WORK/nginx.conf"
	fi
	echo "}" >> "$ZGB_WORK/nginx.conf"
	launch nginx -p "$ZGB_WORK" -e "$ZGB_WORK/error.log" -c "$ZGB_WORK/nginx.conf"
}
adapter_main "${1:-}" start
