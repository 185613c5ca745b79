#!/bin/sh
# Live migration of a 2-vCPU guest (memory pattern on one vCPU, disk records
# on the other) with a dynamic VHDX disk, over TLS with a pre-shared key and
# 4 extra channels for memory: the guest's invariants hold on the
# destination, whose VHDX passes `qemu-img check` and holds every record. A
# source with the wrong key is refused before anything happens.
. "$abs_top_srcdir/tests/functions.sh"
requires psktool qemu-img
. "$abs_top_srcdir/tests/migrate/lib.sh"
sh "$abs_top_srcdir/tests/proto/make-tls-creds.sh" "$T/tls"
start_serve --tls-psk "$T/tls/keys.psk"
# A wrong key, or a user serve does not know: the move fails (exit 1, result
# "failed", the TLS error) and nothing changed: the VM runs on here, serve
# has no session.
refused() {
	for k in wrong bob; do
		move vm1 --tls-psk "$T/tls/$k.psk"
		expect_result 1 failed "^TLS handshake failed"
		runs "$T/src/vm1.sock"
		[ ! -e "$T/store/.smove-sessions" ] || [ -z "$(ls -A "$T/store/.smove-sessions")" ] ||
			fail "serve made a record for a peer with the $k key"
		[ ! -e "$T/store/vm1" ] || fail "serve made store/vm1 for a peer with the $k key"
	done
	echo "the wrong key and an unknown user were refused"
}
LIVE_BEFORE_MOVE=refused live_scenario vhdx 2 --tls-psk "$T/tls/alice.psk" --channels 4
grep -q '"round"' "$T/move.json" || fail "no memory round reported"
