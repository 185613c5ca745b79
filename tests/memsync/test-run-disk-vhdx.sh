#!/bin/sh
# `smove run` with 2 vCPUs: a 1 GiB memory pattern on vCPU 0 and 64 MiB of
# checksummed records on a dynamic VHDX disk on vCPU 1; then `qemu-img check`
# finds the image clean and every record reads back from it (through qemu-img,
# an independent reader of the format).
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
requires qemu-img
export SMOVE_RUNTIME_DIR="$T/run"
"$SMOVE" disk create --size 64M "$T/disk.vhdx"
expect_status 0 "$SMOVE" run --name vhdx --memory 1280M --cpus 2 --disk "$T/disk.vhdx" \
	--console "$T/console" --guest "$abs_top_builddir/memsync/guest/guest.elf" \
	--cmdline "mem=1G passes=2 disk=64M diskpasses=2 cpu0=mem cpu1=disk"
grep -q "verdict: ok" "$T/console" || { cat "$T/console"; fail "no verdict in the console"; }
qemu-img check -f vhdx "$T/disk.vhdx" || fail "qemu-img check finds problems"
qemu-img convert -f vhdx -O raw "$T/disk.vhdx" "$T/disk.raw"
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/disk.raw" 64M 2
