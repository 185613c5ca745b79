#!/bin/sh
# smove disk info/map/convert/check on images served by nginx over HTTP:
# the same answers as on the local file, data fetched with range requests,
# format metadata fetched once (the block cache), connections reused.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires qemu-img

cd "$T"
mkdir www
"$SMOVE" disk create --size 64M www/a.raw
pattern_file p 3145728 7
dd if=p of=www/a.raw bs=1M seek=5 conv=notrunc status=none
dd if=p of=www/a.raw bs=1 seek=67000000 count=100000 conv=notrunc status=none
start_nginx "$T/www"
url="http://127.0.0.1:$NGINX_PORT"

"$SMOVE" disk info --json "$url/a.raw" >info.json
grep -q '"virtual-size":67108864' info.json || fail "info over HTTP: $(cat info.json)"
"$SMOVE" disk convert -q "$url/a.raw" b.raw
cmp www/a.raw b.raw || fail "convert over HTTP differs from the file"
"$SMOVE" disk check "$url/a.raw" >/dev/null || fail "check over HTTP"

# Every answer was a 206 (ranges), and each command reused one connection
# for all its requests (nginx logs the connection's serial number first).
awk '$2 != 206 { exit 1 }' nginx/access.log || fail "a request was not answered 206"
reqs=$(wc -l <nginx/access.log)
conns=$(cut -d' ' -f1 nginx/access.log | sort -u | wc -l)
[ "$reqs" -ge 16 ] || fail "only $reqs ranged requests for a 64 MiB copy"
[ "$conns" -le 4 ] || fail "$conns connections for $reqs requests: not reused"

# A file that is not there, and a URL with no server behind it.
expect_status 1 "$SMOVE" disk info "$url/missing.raw"
expect_stderr 'missing.raw: server answered HTTP 404'
expect_status 1 "$SMOVE" disk info "http://127.0.0.1:$(free_port)/a.raw"
expect_stderr 'Failed to connect|Couldn.t connect'
echo PASS
