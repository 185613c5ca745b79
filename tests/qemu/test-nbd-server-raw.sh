#!/bin/sh
# smove's in-process NBD server serving a raw image (and a second export) to
# qemu-io, qemu-img, nbdinfo and nbdcopy, while a thread keeps swapping the
# exports' backends (tests/qemu/nbd-lib.sh).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/nbd-lib.sh"
nbd_clients raw
echo PASS
