#!/bin/sh
# The dirty log (per-vCPU dirty rings) holds exactly the pages the guest
# reports having written, round after round, plus the VMM's own writes; also
# while the guest writes more pages than the ring holds, throttled: its vCPU
# thread is kicked (SIGUSR1) every 10 ms, also while it resets its full ring,
# and a reset that a signal stops leaves pages writable and unlogged.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
"$abs_top_builddir/tests/memsync/test-vm" dirty ring
"$abs_top_builddir/tests/memsync/test-vm" dirty ring kicked
