#!/bin/sh
# Image locks (vhd/lock.c), against QEMU's own: an image nbdkit smove serves
# cannot be written by qemu-io, served read-write by a second nbdkit smove,
# replaced by convert --force, read by convert or mirror, nor made a parent;
# images served read-only share with other readers; nbdkit smove refuses an
# image qemu-nbd serves; convert --force never replaces a member of its own
# source's chain. Once the holder exits, everything works again.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires qemu-img qemu-io qemu-nbd
cd "$T"

in_use="the disk is in use by another process"
held="\(a VM, QEMU, qemu-img or nbdkit has it open\)"
"$SMOVE" disk create --size 16M a.vhdx
qemu-img create -q -f vpc b.vhd 16M
qemu-io -f vhdx -c "write -P 0x5a 0 1M" a.vhdx >/dev/null
sum=$(md5sum <a.vhdx)

# Served read-write by nbdkit smove.
start_plugin rw "file=$T/a.vhdx"
expect_status 1 qemu-io -f vhdx -c "write 0 4k" a.vhdx
expect_stderr 'Failed to get "write" lock'
expect_status 1 qemu-img info a.vhdx
expect_stderr 'Failed to get shared "write" lock'
try_plugin rw2 "file=$T/a.vhdx" && fail "a second nbdkit smove served a.vhdx read-write"
grep -Eq "error: $T/a.vhdx: $in_use, which writes it $held$" "$T/rw2.log" ||
	fail "second server: $(cat "$T/rw2.log")"
try_plugin ro2 "file=$T/a.vhdx" readonly=true && fail "a read-only nbdkit smove served a.vhdx"
grep -Eq "error: $T/a.vhdx: $in_use, which writes it" "$T/ro2.log" || fail "$(cat "$T/ro2.log")"
expect_status 1 "$SMOVE" disk convert -q --force b.vhd a.vhdx
expect_stderr "^smove disk convert: a.vhdx: $in_use, which writes it $held$"
expect_status 1 "$SMOVE" disk convert -q a.vhdx c.raw
expect_stderr "^smove disk convert: a.vhdx: $in_use, which writes it"
[ ! -e c.raw ] && [ ! -e .c.raw.smove-tmp ] || fail "convert left a file behind"
expect_status 1 "$SMOVE" disk mirror -q a.vhdx "nbd+unix:///?socket=$T/none.sock"
expect_stderr "^smove disk mirror: a.vhdx: $in_use, which writes it"
expect_status 1 "$SMOVE" disk create --parent a.vhdx child.vhdx
expect_stderr "^smove disk create: a.vhdx: $in_use, which writes it"
[ ! -e child.vhdx ] || fail "create left child.vhdx behind"
# lock=false is the caller's promise that it holds the lock itself.
start_plugin nolock "file=$T/a.vhdx" readonly=true lock=false
stop_plugin nolock
stop_plugin rw
[ "$(md5sum <a.vhdx)" = "$sum" ] || fail "a.vhdx changed while it was locked"

# Served read-only (a qemu-img image): readers share it, writers do not.
start_plugin ro "file=$T/b.vhd" readonly=true
start_plugin ro3 "file=$T/b.vhd" readonly=true
qemu-io -r -f vpc -c "read 0 4k" b.vhd >/dev/null || fail "qemu-io could not read b.vhd"
"$SMOVE" disk convert -q b.vhd b.raw || fail "convert could not read b.vhd"
expect_status 1 qemu-io -f vpc -c "write 0 4k" b.vhd
expect_stderr 'Failed to get "write" lock'
try_plugin rw3 "file=$T/b.vhd" && fail "nbdkit smove served b.vhd read-write beside a reader"
grep -Eq "error: $T/b.vhd: $in_use, which forbids writing it $held$" "$T/rw3.log" ||
	fail "$(cat "$T/rw3.log")"
expect_status 1 "$SMOVE" disk convert -q --force a.vhdx b.vhd
expect_stderr "^smove disk convert: b.vhd: $in_use, which forbids writing it"
stop_plugin ro
stop_plugin ro3

# QEMU holds the image: qemu-nbd serves b.vhd read-write.
qemu-nbd -f vpc -t -k "$T/q.sock" b.vhd 2>qemu-nbd.log &
qpid=$!
on_exit "kill $qpid 2>/dev/null || :"
for _ in $(seq 100); do [ -S q.sock ] && break; sleep 0.05; done
try_plugin rw4 "file=$T/b.vhd" && fail "nbdkit smove served b.vhd beside qemu-nbd"
grep -Eq "error: $T/b.vhd: $in_use, which writes it $held$" "$T/rw4.log" || fail "$(cat "$T/rw4.log")"
try_plugin ro4 "file=$T/b.vhd" readonly=true && fail "nbdkit smove read b.vhd beside qemu-nbd"
expect_status 1 "$SMOVE" disk convert -q --force a.vhdx b.vhd
expect_stderr "^smove disk convert: b.vhd: $in_use, which writes it"
kill $qpid
wait $qpid 2>/dev/null || :

# convert --force never replaces what it reads.
"$SMOVE" disk create --parent a.vhdx child.vhdx
expect_status 1 "$SMOVE" disk convert -q --force child.vhdx a.vhdx
expect_stderr "^smove disk convert: a.vhdx: is a parent of child.vhdx, which convert reads; it cannot be replaced by the copy$"
expect_status 1 "$SMOVE" disk convert -q --force child.vhdx child.vhdx
expect_stderr "^smove disk convert: child.vhdx: is the source itself; convert cannot replace the image it reads$"
[ "$(md5sum <a.vhdx)" = "$sum" ] || fail "a.vhdx changed"

# Nobody holds anything any more.
qemu-io -f vhdx -c "write -P 0x66 0 4k" a.vhdx >/dev/null || fail "a.vhdx still locked"
"$SMOVE" disk convert -q --force b.vhd a.vhdx || fail "convert --force after the servers left"
start_plugin rw5 "file=$T/a.vhdx"
stop_plugin rw5
echo PASS
