# tests/qemu/nbd-lib.sh: helpers for the NBD server's tests. Source it after
# tests/functions.sh.
#   start_serve IMAGE...             tests/qemu/nbd-serve on $T/nbd.sock; sets
#                                    $serve_pid and $uri (export d0)
#   start_serve_opts OPTS -- IMAGE...  the same with nbd-serve's options
#   stop_serve                       SIGTERM, waits; its output is in $T/serve.out
#   nbd_clients FMT                  the real-clients scenario for one format
NBD_SERVE="$abs_top_builddir/tests/qemu/nbd-serve"
sock="$T/nbd.sock"

start_serve() {
	start_serve_opts -- "$@"
}

start_serve_opts() {
	_opts=""
	while [ "$1" != "--" ]; do _opts="$_opts $1"; shift; done
	shift
	rm -f "$sock"
	# shellcheck disable=SC2086
	"$NBD_SERVE" $_opts "$sock" "$@" >"$T/serve.out" 2>"$T/serve.err" &
	serve_pid=$!
	on_exit "kill $serve_pid 2>/dev/null || :"
	for _ in $(seq 200); do grep -q '^ready$' "$T/serve.out" 2>/dev/null && break; sleep 0.05; done
	grep -q '^ready$' "$T/serve.out" || { cat "$T/serve.err" >&2; fail "nbd-serve did not start"; }
	uri="nbd+unix:///d0?socket=$sock"
}

stop_serve() {
	kill -TERM "$serve_pid"
	wait "$serve_pid" || { cat "$T/serve.err" >&2; fail "nbd-serve exited $?"; }
	[ ! -s "$T/serve.err" ] || { cat "$T/serve.err" >&2; fail "nbd-serve wrote to stderr"; }
}

# stat_of EXPORT FIELD: a counter from nbd-serve's last report.
stat_of() {
	grep "^$1:" "$T/serve.out" | tail -1 | awk -v f="$2" '{for (i = 2; i < NF; i++) if ($i == f) print $(i + 1)}'
}

nbd_clients() {
	fmt=$1
	requires qemu-img qemu-io nbdinfo nbdcopy
	cd "$T"
	case $fmt in
	raw) qemu-img create -q -f raw a.raw 256M ;;
	*) "$SMOVE" disk create --size 256M "a.$fmt" >/dev/null ;;
	esac
	qemu-img create -q -f raw b.raw 16M
	qemu-img create -q -f raw expected.raw 256M

	set -- -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1000k 3000k' \
		-c 'write -P 0x33 255M 1M' -c 'write -P 0x44 33554000 1000' \
		-c 'write -z 1500k 500k' -c 'discard 2M 2M' -c 'write -P 0x55 3M 4k' \
		-c 'write -f -P 0x66 5M 64k' -c 'write -z -u 8M 1M' -c flush
	qemu-io -f raw "$@" expected.raw >/dev/null
	start_serve_opts --swap-ms 3 -- "a.$fmt" b.raw

	# What the server says about itself.
	nbdinfo --json "$uri" >info.json
	/usr/bin/python3 - info.json <<'PY' || fail "$fmt: nbdinfo's view of the export"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
assert e["export-size"] == 256 << 20, e
for k in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero", "can_multi_conn"):
    assert e[k] is True, (k, e)
assert e["is_read_only"] is False, e
assert e["block_size_minimum"] == 1 and e["block_size_preferred"] == 4096, e
assert e["block_size_maximum"] == 32 << 20, e
PY
	nbdinfo --list --json "nbd+unix:///?socket=$sock" >list.json
	grep -q '"export-name": "d1"' list.json || fail "$fmt: nbdinfo --list: $(cat list.json)"

	qemu-io -f raw "$@" "$uri" >qemu-io.out || { cat qemu-io.out; fail "qemu-io writes"; }
	grep -qi error qemu-io.out && fail "qemu-io: $(cat qemu-io.out)"
	qemu-img compare -f raw -F raw "$uri" expected.raw >/dev/null ||
		fail "$fmt: qemu-img compare through the server differs"
	# nbdcopy opens several connections (the server says multi-conn).
	nbdcopy --connections=4 "$uri" copy.raw
	cmp copy.raw expected.raw || fail "$fmt: nbdcopy from the server differs"
	# ... and writes through several: the second export, from a pattern.
	pattern_file p.raw 16777216 5
	nbdcopy --connections=4 p.raw "nbd+unix:///d1?socket=$sock"
	nbdcopy "nbd+unix:///d1?socket=$sock" p2.raw
	cmp p.raw p2.raw || fail "$fmt: nbdcopy to the second export differs"
	# The default export ("") is the first.
	qemu-img compare -f raw -F raw "nbd+unix:///?socket=$sock" expected.raw >/dev/null ||
		fail "$fmt: the default export is not d0"
	kill -USR2 "$serve_pid"
	sleep 0.2
	stop_serve
	for f in writes zeroes trims flushes reads; do
		[ "$(stat_of d0 $f)" -gt 0 ] || fail "$fmt: no $f counted: $(cat "$T/serve.out")"
	done
	[ "$(stat_of d0 errors)" = 0 ] || fail "$fmt: errors counted: $(cat "$T/serve.out")"
	[ "$(stat_of d0 connections)" = 0 ] || fail "$fmt: connections left: $(cat "$T/serve.out")"
	[ "$(grep '^swaps:' "$T/serve.out" | awk '{print $2}')" -gt 10 ] ||
		fail "$fmt: the backend was hardly swapped: $(cat "$T/serve.out")"

	# After the server has gone: the files themselves.
	cmp b.raw p.raw || fail "$fmt: the second image differs"
	qemu-img compare -f "$fmt" -F raw "a.$fmt" expected.raw >/dev/null ||
		fail "$fmt: the image written through the server differs (qemu-img)"
	if [ "$fmt" = vhdx ]; then
		qemu-img check -f vhdx "a.$fmt" >check.out || { cat check.out; fail "qemu-img check"; }
		"$SMOVE" disk check "a.$fmt" >/dev/null || fail "$fmt: smove disk check"
	fi
}
