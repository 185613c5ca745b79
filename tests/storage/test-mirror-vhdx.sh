#!/bin/sh
# The mirror engine under two writer threads writing at full speed, vhdx to vhdx
# (tests/storage/mirror-scenario.sh): the destination equals the source.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
. "$abs_top_srcdir/tests/storage/mirror-scenario.sh"
mirror_scenario vhdx vhdx --writers 2 --bandwidth 64000000 --timeout 60
echo PASS
