#!/bin/sh
# The dirty log (bitmap with manual protect) holds exactly the pages the guest
# reports having written, round after round, plus the VMM's own writes; also
# with the guest writing more pages than a dirty ring holds while throttled
# (its vCPU thread kicked every 10 ms), as test-vm-dirty-ring.sh does for
# the ring.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
"$abs_top_builddir/tests/memsync/test-vm" dirty bitmap
"$abs_top_builddir/tests/memsync/test-vm" dirty bitmap kicked
