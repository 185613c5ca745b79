#!/bin/sh
# Sparse mirroring of a 64 GiB raw image holding 100 MiB of data
# (tests/storage/mirror-scenario.sh, sparse_scenario).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
. "$abs_top_srcdir/tests/storage/mirror-scenario.sh"
sparse_scenario raw
echo PASS
