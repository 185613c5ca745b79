# tests/storage/servers.sh: throwaway servers for the storage tests, on
# loopback or Unix sockets inside $T. Source it after tests/functions.sh.

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until something listens on 127.0.0.1:PORT (or PID died).
wait_port() {
	for _ in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		/usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start_nginx ROOT [DIRECTIVES] [ssl]: serves ROOT on 127.0.0.1:$NGINX_PORT
# (https with $T/nginx/cert.pem when the third argument is "ssl"; the client
# trusts it through SMOVE_CA_FILE=$T/nginx/cert.pem). DIRECTIVES go into the
# server block. Stopped when the test exits.
start_nginx() {
	requires nginx
	n="$T/nginx"
	mkdir -p "$n/tmp"
	listen_ssl=""
	tls_conf=""
	if [ "${3:-}" = ssl ]; then
		requires certtool
		certtool --generate-privkey --outfile "$n/key.pem" >/dev/null 2>&1
		cat >"$n/cert.tmpl" <<TMPL
cn = "127.0.0.1"
ip_address = "127.0.0.1"
dns_name = "localhost"
ca
cert_signing_key
signing_key
encryption_key
tls_www_server
expiration_days = 2
TMPL
		certtool --generate-self-signed --load-privkey "$n/key.pem" \
			--template "$n/cert.tmpl" --outfile "$n/cert.pem" >/dev/null 2>&1
		listen_ssl=" ssl"
		tls_conf="ssl_certificate $n/cert.pem; ssl_certificate_key $n/key.pem;"
	fi
	for _ in 1 2 3 4 5; do
		NGINX_PORT=$(free_port)
		cat >"$n/nginx.conf" <<CONF
daemon off;
master_process off;
pid $n/nginx.pid;
error_log $n/error.log;
events { worker_connections 64; }
http {
	log_format smove '\$connection \$status \$bytes_sent "\$http_range" "\$request"';
	access_log $n/access.log smove;
	client_body_temp_path $n/tmp/body;
	proxy_temp_path $n/tmp/proxy;
	fastcgi_temp_path $n/tmp/fastcgi;
	uwsgi_temp_path $n/tmp/uwsgi;
	scgi_temp_path $n/tmp/scgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$NGINX_PORT$listen_ssl;
		root $1;
		$tls_conf
		${2:-}
	}
}
CONF
		nginx -c "$n/nginx.conf" -p "$n" 2>>"$n/start.log" &
		nginx_pid=$!
		if wait_port "$NGINX_PORT" "$nginx_pid"; then
			on_exit "kill $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null || :"
			return 0
		fi
		kill "$nginx_pid" 2>/dev/null || :
	done
	cat "$n/start.log" "$n/error.log" >&2 2>/dev/null || :
	fail "nginx did not start"
}

# start_plugin NAME PARAMS...: `nbdkit smove PARAMS` from the build tree on
# the Unix socket $T/NAME.sock (its pid in $T/NAME.pid); sets $nbd_uri.
# NBDKIT_ARGS adds nbdkit options (filters, TLS). Under the sanitizers nbdkit
# itself is not instrumented, so the plugin's runtime is preloaded into it.
PLUGIN="$abs_top_builddir/storage/nbdkit/.libs/nbdkit-smove-plugin.so"
start_plugin() {
	try_plugin "$@" || {
		cat "$T/$1.log" >&2
		fail "nbdkit smove did not start: $*"
	}
}

# try_plugin NAME PARAMS...: the same, but returns nbdkit's failure (its
# messages are in $T/NAME.log) instead of failing the test. NBDKIT_PLUGIN
# names another plugin than smove's (file, memory, ...) for both.
try_plugin() {
	requires nbdkit
	_pn=$1
	shift
	set -- -U "$T/$_pn.sock" -P "$T/$_pn.pid" ${NBDKIT_ARGS:-} "${NBDKIT_PLUGIN:-$PLUGIN}" "$@"
	if [ "${SMOVE_SANITIZERS:-no}" = yes ]; then
		set -- env LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
			ASAN_OPTIONS=detect_leaks=0 nbdkit "$@"
	else
		set -- nbdkit "$@"
	fi
	"$@" 2>>"$T/$_pn.log" || return 1
	# nbdkit's parent returns once the socket listens; the child writes the
	# pid file a moment later, and stop_plugin needs it.
	for _ in $(seq 200); do [ -s "$T/$_pn.pid" ] && break; sleep 0.02; done
	on_exit "stop_plugin $_pn"
	nbd_uri="nbd+unix:///?socket=$T/$_pn.sock"
}

# stop_plugin NAME: stops it and waits until it has exited (and flushed).
stop_plugin() {
	[ -e "$T/$1.pid" ] || return 0
	_pp=$(cat "$T/$1.pid")
	kill "$_pp" 2>/dev/null || :
	for _ in $(seq 200); do kill -0 "$_pp" 2>/dev/null || break; sleep 0.05; done
	rm -f "$T/$1.pid"
}
