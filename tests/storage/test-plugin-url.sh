#!/bin/sh
# nbdkit smove url=http://...: an image on a web server (nginx) served
# read-only: clients read it whole and sparse, writes are refused, and wrong
# parameters are refused with a message.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires nbdcopy nbdinfo qemu-io

cd "$T"
mkdir www
"$SMOVE" disk create --size 32M www/a.raw
pattern_file p 1048576 11
dd if=p of=www/a.raw bs=1M seek=7 conv=notrunc status=none
start_nginx "$T/www"
start_plugin u url="http://127.0.0.1:$NGINX_PORT/a.raw"

nbdinfo --json "$nbd_uri" | grep -q '"is_read_only": true' || fail "the export is not read-only"
nbdcopy "$nbd_uri" b.raw
cmp www/a.raw b.raw || fail "nbdcopy of the URL differs"
expect_status 1 qemu-io -f raw -c 'write -P 1 0 4k' "$nbd_uri"
expect_stderr 'read-only|not permitted|Permission denied'
cmp www/a.raw b.raw || fail "the file changed"

# Wrong parameters.
expect_status 1 nbdkit --run true "$PLUGIN" file=www/a.raw url="http://127.0.0.1:$NGINX_PORT/a.raw"
expect_stderr 'file=PATH or url=URL \(one of them\)'
expect_status 1 nbdkit --run true "$PLUGIN" url=ftp://127.0.0.1/a.raw
expect_stderr 'not an http://, https:// or nbd:// URL'
expect_status 1 nbdkit --run true "$PLUGIN" url="http://127.0.0.1:$NGINX_PORT/a.raw" readonly=false
expect_stderr 'read-only'
expect_status 1 nbdkit --run true "$PLUGIN" url="http://127.0.0.1:$NGINX_PORT/none.raw"
expect_stderr 'none.raw: server answered HTTP 404'
expect_status 1 nbdkit --run true "$PLUGIN" www/a.raw format=qcow2
expect_stderr "unknown format 'qcow2'"
echo PASS
