#!/bin/sh
# A live migration over loopback without TLS: the test guest (1 vCPU) writes
# checksummed records on a raw disk, then rewrites and checks a memory
# pattern; it is moved mid-run. On the destination the guest finishes with
# every invariant intact (no lost or stale page, no lost record, its clock
# never going back), the records read back from the destination's disk, and
# nothing is left on the source (disk, registration, process).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
LIB_TLS=none
start_serve
live_scenario raw 1
