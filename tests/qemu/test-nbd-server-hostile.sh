#!/bin/sh
# A hostile client against smove's NBD server (tests/qemu/hostile-nbd-client.py):
# malformed handshakes, options before GO, bad magic, out-of-range offsets,
# huge lengths, unknown commands and flags, pipelining past the queue's
# bound, a connection flood. Each ends in the error the NBD specification
# names or in a closed connection; the server keeps serving well-behaved
# clients, writes nothing it was not asked to, and stops cleanly. Also run
# under the sanitizers (make check-sanitizers).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/nbd-lib.sh"
requires qemu-img
cd "$T"
size=4194304
pattern_file a.raw $size 21
cp a.raw orig.raw
cp a.raw orig-copy.raw
start_serve a.raw ro:orig.raw
timeout 300 /usr/bin/python3 "$abs_top_srcdir/tests/qemu/hostile-nbd-client.py" "$sock" $size a.raw \
	>client.out 2>&1 || { cat client.out; cat "$T/serve.err"; fail "hostile client"; }
# Still serving, and still right.
head -c $((size - 1048576)) orig.raw >expected.raw
head -c 1048576 /dev/zero >>expected.raw
qemu-img compare -f raw -F raw "$uri" expected.raw >/dev/null ||
	fail "after the hostile client, the export does not read as expected"
stop_serve
cmp a.raw expected.raw || fail "the image holds something nobody wrote"
cmp orig.raw orig-copy.raw || fail "the read-only export was written"
grep -q 'last error: .' "$T/serve.out" || fail "no protocol violation recorded"
[ "$(stat_of d0 connections)" = 0 ] || fail "connections left: $(cat "$T/serve.out")"
cat client.out
echo PASS
