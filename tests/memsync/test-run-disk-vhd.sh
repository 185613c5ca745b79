#!/bin/sh
# `smove run` with 2 vCPUs, each running a program: a memory pattern on
# vCPU 0 and 64 MiB of checksummed records on a dynamic VHD disk on vCPU 1;
# every record then reads back from the image through qemu-img (format vpc).
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
requires qemu-img
export SMOVE_RUNTIME_DIR="$T/run"
"$SMOVE" disk create --chs-round --size 64M "$T/disk.vhd" # so that QEMU sees all of it
expect_status 0 "$SMOVE" run --name vhd --memory 320M --cpus 2 --disk "$T/disk.vhd" \
	--console "$T/console" --guest "$abs_top_builddir/memsync/guest/guest.elf" \
	--cmdline "mem=256M passes=2 disk=64M diskpasses=2 cpu0=mem cpu1=disk"
grep -q "verdict: ok" "$T/console" || { cat "$T/console"; fail "no verdict in the console"; }
qemu-img convert -f vpc -O raw "$T/disk.vhd" "$T/disk.raw"
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/disk.raw" 64M 2
