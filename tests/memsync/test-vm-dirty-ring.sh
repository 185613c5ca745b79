#!/bin/sh
# The dirty log (per-vCPU dirty rings) holds exactly the pages the guest
# reports having written, round after round, plus the VMM's own writes.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
"$abs_top_builddir/tests/memsync/test-vm" dirty ring
