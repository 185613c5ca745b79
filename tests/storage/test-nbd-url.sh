#!/bin/sh
# smove disk info/map/convert/check on NBD exports served by nbdkit: over a
# Unix socket (nbd+unix://) and over TCP with TLS-PSK (nbds://), the same
# answers as on the local file; the map comes from NBD block status.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires nbdkit psktool

cd "$T"
"$SMOVE" disk create --size 64M a.raw
pattern_file p 2097152 4
dd if=p of=a.raw bs=1M seek=8 conv=notrunc status=none
dd if=p of=a.raw bs=1M seek=62 conv=notrunc status=none
nbdkit -U "$T/sock" -P "$T/pid" file a.raw
on_exit 'kill $(cat "$T/pid") 2>/dev/null || :'
sock="nbd+unix:///?socket=$T/sock"

"$SMOVE" disk map --json a.raw >file-map.json
"$SMOVE" disk map --json "$sock" >nbd-map.json
cmp file-map.json nbd-map.json || fail "the NBD map differs from the file's"
grep -q '"data"' nbd-map.json || fail "no data in the NBD map"
"$SMOVE" disk info "$sock" | grep -q '^allocated: *4.00 MiB' || fail "allocated over NBD"
"$SMOVE" disk convert -q "$sock" b.raw
cmp a.raw b.raw || fail "convert over NBD differs"
[ "$(du -k b.raw | cut -f1)" -le 8192 ] || fail "convert over NBD is not sparse"
"$SMOVE" disk check "$sock" >/dev/null || fail "check over NBD"

# TLS with a pre-shared key over TCP; the wrong key is refused.
psktool -u alice -p keys.psk >/dev/null
psktool -u alice -p wrong.psk >/dev/null
port=$(free_port)
nbdkit -p "$port" -i 127.0.0.1 -P "$T/pid2" --tls=require --tls-psk=keys.psk file a.raw
on_exit 'kill $(cat "$T/pid2") 2>/dev/null || :'
"$SMOVE" disk convert -q "nbds://alice@127.0.0.1:$port/?tls-psk-file=$T/keys.psk" c.raw
cmp a.raw c.raw || fail "convert over NBD with TLS differs"
expect_status 1 "$SMOVE" disk info "nbds://alice@127.0.0.1:$port/?tls-psk-file=$T/wrong.psk"
expect_stderr "nbds://alice@127.0.0.1:$port/.*: cannot connect"
expect_status 1 "$SMOVE" disk info "nbd://127.0.0.1:$port/"
expect_stderr "cannot connect"

# Nothing listening.
expect_status 1 "$SMOVE" disk info "nbd+unix:///?socket=$T/nosock"
expect_stderr "nosock: cannot connect"
echo PASS
