#!/bin/sh
# virtio-blk's backend is swapped while the guest writes records (as a
# migration routes writes through the storage mirror): the guest's requests go
# through the new backend and every record still verifies, in the guest and
# from the host.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
truncate -s 8M "$T/disk.raw"
"$abs_top_builddir/tests/memsync/test-vm" backend "$T/disk.raw"
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/disk.raw" 8M 4
