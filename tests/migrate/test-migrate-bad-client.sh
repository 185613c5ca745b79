#!/bin/sh
# Bad clients while a migration is in progress: bytes that are no frame, a
# HELLO of an unknown protocol version, a header announcing a 3 GiB frame,
# PREFLIGHTs naming a disk "../evil" and a VM "../../etc". serve refuses each
# with a clear error (or by closing), creates nothing outside (or inside) its
# storage directory, and the migration going on meanwhile succeeds.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
bad() { /usr/bin/python3 "$abs_top_srcdir/tests/migrate/bad-client.py" "$PORT" "$1"; }
start_serve
truncate -s 8M "$T/disk.raw"
SMOVE_TEST_STALL=source-ready start_vm vm1 --memory 128M --disk "$T/disk.raw" \
	--cmdline "mem=8M passes=0 hb=5"
move_bg vm1
wait_for "$T/vm1.run.err" "stalling at source-ready"
for c in garbage version huge diskname vmname; do
	bad $c >"$T/bad.$c" || { cat "$T/bad.$c"; fail "serve did not refuse the $c client"; }
done
grep -q "no common protocol version" "$T/bad.version" || fail "no version error"
grep -Eq "not valid|name" "$T/bad.diskname" || fail "the ../ disk name was not refused by name"
[ ! -e "$T/evil" ] && [ ! -e "$T/store/evil" ] || fail "a file was created for ../evil"
[ "$(ls -A "$T/store")" = ".smove-sessions" ] || [ "$(ls "$T/store")" = vm1 ] || fail "unexpected files in the storage"
# The migration waiting at the source goes on: cancel it, then move for real.
src move --cancel vm1 >/dev/null
move_wait
expect_move 5
move vm1
expect_move 0
runs "$T/dst/vm1.sock"
grep -q "a peer was refused\|a connection was refused" "$T/serve.err" || fail "serve did not log the refusals"
