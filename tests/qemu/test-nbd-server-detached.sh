#!/bin/sh
# An export with no backend yet (as a destination QEMU starts before its disk
# is ready): the handshake completes with the right size, requests wait, and
# once the backend is attached they complete with the right data.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/nbd-lib.sh"
requires qemu-img qemu-io nbdinfo
cd "$T"
qemu-img create -q -f raw a.raw 8M
qemu-io -f raw -c 'write -P 0x5a 0 8M' a.raw >/dev/null
start_serve_opts --detached -- a.raw
# The size is known before any backend.
[ "$(timeout 20 nbdinfo --size "$uri")" = 8388608 ] || fail "nbdinfo --size before attach"
# A read waits...
timeout 60 qemu-io -f raw -c 'read -P 0x5a 0 4k' -c 'write -P 0x77 1M 64k' -c flush "$uri" \
	>io.out 2>&1 &
io=$!
sleep 2
kill -0 $io 2>/dev/null || { cat io.out; fail "a request did not wait for the backend"; }
kill -USR2 "$serve_pid"
sleep 0.3
[ "$(stat_of d0 waiting)" = 1 ] || fail "no request counted as waiting: $(cat "$T/serve.out")"
[ "$(stat_of d0 requests)" = 0 ] || fail "a request ran without a backend"
# ... until the backend is attached.
kill -USR1 "$serve_pid"
wait $io || { cat io.out; fail "qemu-io failed"; }
grep -q 'read 4096/4096' io.out || { cat io.out; fail "the read did not see the image"; }
grep -qi 'fail\|error' io.out && { cat io.out; fail "qemu-io: an error"; }
qemu-io -f raw -c 'read -P 0x77 1M 64k' "$uri" | grep -q 'read 65536/65536' || fail "the write is lost"
stop_serve
[ "$(stat_of d0 waiting)" = 0 ] || fail "requests still waiting at exit"
echo PASS
