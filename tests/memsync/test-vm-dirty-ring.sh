#!/bin/sh
# The dirty log (per-vCPU dirty rings) holds exactly the pages the guest
# reports having written, round after round, plus the VMM's own writes. Off
# PVM, also while the guest writes more pages than the ring holds, throttled
# (its vCPU thread kicked every 10 ms, also while it resets the ring): on PVM
# the ring misses a page or more there (`test-vm dirty ring kicked` shows it;
# docs/migration.md), which is why smove will not migrate a ring-mode VM there.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
"$abs_top_builddir/tests/memsync/test-vm" dirty ring
[ -e /sys/module/kvm_pvm ] || "$abs_top_builddir/tests/memsync/test-vm" dirty ring kicked
