#!/bin/sh
# nbdkit smove serving a vhd image to qemu-io, qemu-img, nbdcopy and nbdinfo
# (tests/storage/plugin-clients.sh).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
. "$abs_top_srcdir/tests/storage/plugin-clients.sh"
plugin_clients vhd
echo PASS
