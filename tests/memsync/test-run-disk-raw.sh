#!/bin/sh
# `smove run` with 2 vCPUs: vCPU 0 writes a 512 MiB memory pattern with its
# invariants, vCPU 1 writes 64 MiB of checksummed records to a raw disk through
# virtio-blk; the guest verifies both and stops with success; the host then
# reads every record back from the image.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
export SMOVE_RUNTIME_DIR="$T/run"
truncate -s 64M "$T/disk.raw"
guest="$abs_top_builddir/memsync/guest/guest.elf"
expect_status 0 "$SMOVE" run --name raw --guest "$guest" --memory 640M --cpus 2 \
	--disk "$T/disk.raw" --console "$T/console" \
	--cmdline "mem=512M passes=2 disk=64M diskpasses=2 cpu0=mem cpu1=disk"
grep -q "verdict: ok" "$T/console" || { cat "$T/console"; fail "no verdict in the console"; }
grep -q "disk 0: 64 MiB x 2 passes verified" "$T/console" || { cat "$T/console"; fail "disk program did not finish"; }
grep -q "mem 0: 512 MiB x 2 passes" "$T/console" || { cat "$T/console"; fail "memory program did not finish"; }
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/disk.raw" 64M 2
[ ! -e "$T/run/raw.json" ] || fail "the registry entry was left behind"
