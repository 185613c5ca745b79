#!/bin/sh
# The guest's invariants are real: a byte the host flips in a guest page while
# the VM is paused is reported by the guest after resume, naming that page.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
"$abs_top_builddir/tests/memsync/test-vm" tamper
