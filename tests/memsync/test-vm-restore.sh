#!/bin/sh
# The seed of live migration: pause a 2-vCPU guest mid-run (memory pattern on
# one vCPU, disk records on the other), save every vCPU and device state and
# the RAM, create a fresh incoming VM, load it all and resume: the guest
# finishes with every invariant intact, its heartbeat continuing. The disk's
# records are then checked from the host too.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
truncate -s 8M "$T/disk.raw"
"$abs_top_builddir/tests/memsync/test-vm" restore "$T/disk.raw"
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/disk.raw" 8M 6
