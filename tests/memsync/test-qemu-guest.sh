#!/bin/sh
# The test guest boots under QEMU too (for side-by-side benchmarks): its 32-bit
# multiboot image on QEMU's microvm machine runs the memory program with its
# heartbeat and stops through isa-debug-exit with success (QEMU exits 1 =
# (0 << 1) | 1); a guest failure shows as exit 3 = (1 << 1) | 1.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
requires qemu-system-x86_64
qemu() { # qemu CMDLINE
	timeout 120 qemu-system-x86_64 -accel kvm -machine microvm -m 256M -nodefaults \
		-no-reboot -display none -serial "file:$T/console" \
		-device isa-debug-exit,iobase=0x501 \
		-kernel "$abs_top_builddir/memsync/guest/guest32.elf" -append "$1" 2>"$T/qemu.err"
}
set +e
qemu "mem=64M passes=3 hb=5 hbprint=1"
st=$?
set -e
[ "$st" = 1 ] || { cat "$T/qemu.err" "$T/console"; fail "QEMU exited $st, expected 1 (guest success)"; }
grep -q "mem 0: 64 MiB x 3 passes" "$T/console" || fail "memory program did not run"
grep -q "^hb 2$" "$T/console" || fail "no heartbeat (kvmclock) under QEMU"
grep -q "verdict: ok" "$T/console" || fail "no verdict"
set +e
qemu "cpu0=dance"
st=$?
set -e
[ "$st" = 3 ] || fail "QEMU exited $st for a failing guest, expected 3"
grep -q "FAIL cpu 0: unknown program" "$T/console" || fail "the failure is not on the console"
