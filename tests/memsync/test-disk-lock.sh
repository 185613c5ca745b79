#!/bin/sh
# A disk is locked while a VM uses it: qemu-io (QEMU's image locking) and a
# second smove refuse to write it; once the VM stops, both can again.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
requires qemu-io
export SMOVE_RUNTIME_DIR="$T/run"
guest="$abs_top_builddir/memsync/guest/guest.elf"
truncate -s 4M "$T/d.raw"
"$SMOVE" run --name locker --memory 64M --guest "$guest" --cmdline cpu0=idle \
	--console /dev/null --disk "$T/d.raw" &
pid=$!
on_exit "kill $pid 2>/dev/null || true"
for i in $(seq 100); do [ -S "$T/run/locker.sock" ] && break; sleep 0.1; done
expect_status 1 qemu-io -f raw -c "write 0 4k" "$T/d.raw"
expect_stderr "lock"
expect_status 1 "$SMOVE" run --name other --memory 64M --guest "$guest" --console /dev/null \
	--disk "$T/d.raw"
expect_stderr "d.raw: the disk is in use by another process"
kill $pid
wait $pid || fail "smove run exited $?"
expect_status 0 qemu-io -f raw -c "write 0 4k" "$T/d.raw"
