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
live_scenario vhdx 2 --tls-psk "$T/tls/alice.psk" --channels 4
grep -q '"round"' "$T/move.json" || fail "no memory round reported"
