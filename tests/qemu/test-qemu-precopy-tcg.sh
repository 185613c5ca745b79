#!/bin/sh
# QEMU 7.2's live pre-copy under TCG with the RAM size that keeps its dirty
# tracking exact (docs/design.md, "QEMU under TCG"): guest RAM of 256 MiB +
# 8 KiB, not a multiple of 256 KiB, so that the migration's bitmap sync takes
# its page-by-page path, which resets the vCPUs' TLB dirty state. One plain
# QEMU migration of the busy Linux test guest (memory pattern and O_DIRECT
# disk records, shared raw disk, QMP migrate over a Unix socket, cont on the
# destination, bench/qemu-tcg-precopy.py); the guest's check after the move,
# and the host's check of its disk, find every invariant intact. With
# TCG_PRECOPY_MEMORY=256M (a whole number of 256 KiB) this test fails: the
# destination's kernel crashed or the checker failed in 84 of 95 such runs.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/linux-guest.sh"
requires_linux_guest
/usr/bin/python3 "$abs_top_srcdir/bench/qemu-tcg-precopy.py" --kernel "$LINUX_KERNEL" \
	--initramfs "$LINUX_INITRAMFS" --check-records "$abs_top_srcdir/tests/memsync/check-records.py" \
	--runs 1 --memory "${TCG_PRECOPY_MEMORY:-262152k}" --tmp "$T" --label test >"$T/out" ||
	{ cat "$T/out" >&2; fail "the migration driver failed"; }
cat "$T/out"
grep -q '"outcome": "ok"' "$T/out" || fail "the guest did not come out of the live migration intact"
