#!/bin/sh
# Web servers that misbehave (tests/storage/hostile-http.py): wrong or missing
# Content-Range, short and long bodies, connections cut mid-body, a file that
# changes size, transient 503s. Each is a clear error naming the URL, never a
# crash or wrong data; the transient failures are retried and succeed.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"

cd "$T"
pattern_file a.raw 1048576 9

serve() { # serve MODE: starts the server, sets $url
	rm -f port port.count
	/usr/bin/python3 "$abs_top_srcdir/tests/storage/hostile-http.py" "$1" a.raw port &
	pid=$!
	on_exit "kill $pid 2>/dev/null || :"
	for _ in $(seq 100); do [ -e port ] && break; sleep 0.05; done
	[ -e port ] || fail "hostile-http.py $1 did not start"
	url="http://127.0.0.1:$(cat port)/a.raw"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || :; }

serve good
"$SMOVE" disk convert -q "$url" b.raw
cmp a.raw b.raw || fail "good server: copy differs"
stop

check_error() { # check_error MODE PATTERN
	serve "$1"
	rm -f b.raw
	expect_status 1 "$SMOVE" disk convert -q "$url" b.raw
	expect_stderr "$2"
	grep -q "$url" "$T/stderr" || fail "$1: the message does not name the URL"
	[ ! -e b.raw ] || fail "$1: convert left b.raw behind"
	stop
}
check_error wrong-range 'server sent bytes 512-512 when bytes 0-0 were asked for'
check_error no-range 'without a usable Content-Range'
check_error short-body 'server sent 0 of the 1 bytes asked for at offset 0'
check_error long-body 'server sent more than the 1 bytes asked for'
check_error grow 'the file changed on the server'
check_error cut 'gave up after 6 attempts'

# Two 503s, then good answers: retried with back-off, the copy is right.
serve flaky
"$SMOVE" disk convert -q "$url" b.raw
cmp a.raw b.raw || fail "flaky server: copy differs"
[ "$(cat port.count)" -ge 4 ] || fail "flaky server: expected retries"
stop
echo PASS
