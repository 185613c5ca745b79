#!/bin/sh
# smove disk info/map/convert/check on images (raw, VHDX, VHD) served by
# nginx over HTTP: the same answers as on the local file, data fetched with
# range requests, format metadata fetched once (the block cache), connections
# reused.
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

# Every answer is a 206 (ranges), and connections are reused (nginx logs the
# connection's serial number first): info and check, which read one range at a
# time, make all their requests on one connection; convert, whose copy reads
# with up to 8 threads, on at most one per thread and one for the map.
# used NAME MAX: checks and clears the log of one command.
used() {
	awk '$2 != 206 { exit 1 }' nginx/access.log || fail "$1: a request was not answered 206"
	reqs=$(wc -l <nginx/access.log)
	conns=$(cut -d' ' -f1 nginx/access.log | sort -u | wc -l)
	[ "$conns" -le "$2" ] || fail "$1: $conns connections for $reqs requests: not reused"
	total=$((total + reqs))
	: >nginx/access.log
}
total=0
"$SMOVE" disk info --json "$url/a.raw" >info.json
grep -q '"virtual-size":67108864' info.json || fail "info over HTTP: $(cat info.json)"
used info 1
"$SMOVE" disk convert -q "$url/a.raw" b.raw
cmp www/a.raw b.raw || fail "convert over HTTP differs from the file"
used convert 9
"$SMOVE" disk check "$url/a.raw" >/dev/null || fail "check over HTTP"
used check 1
[ "$total" -ge 16 ] || fail "only $total ranged requests for a 64 MiB copy"

# A VHDX and a VHD: info fetches their metadata once (no range twice, a
# handful of requests), and convert reads what the local file holds.
"$SMOVE" disk create --size 256M www/b.vhdx
"$SMOVE" disk create --size 256M --chs-round www/b.vhd
qemu-io -f vhdx -c 'write -P 7 0 40M' -c 'write -P 8 200M 1M' www/b.vhdx >/dev/null
qemu-io -f vpc -c 'write -P 7 0 4M' -c 'write -P 8 200M 1M' www/b.vhd >/dev/null
for f in b.vhdx b.vhd; do
	: >nginx/access.log
	"$SMOVE" disk info "$url/$f" | grep -q "^virtual size: *256" || fail "info of $f over HTTP"
	n=$(wc -l <nginx/access.log)
	[ "$n" -le 8 ] || fail "info of $f made $n requests: $(cat nginx/access.log)"
	dup=$(awk '{print $4}' nginx/access.log | sort | uniq -d)
	[ -z "$dup" ] || fail "info of $f fetched $dup twice"
	"$SMOVE" disk convert -q "$url/$f" "http-$f.raw"
	"$SMOVE" disk convert -q "www/$f" "local-$f.raw"
	cmp "http-$f.raw" "local-$f.raw" || fail "$f: convert over HTTP differs"
	rm -f "http-$f.raw" "local-$f.raw"
done

# A file that is not there, and a URL with no server behind it.
expect_status 1 "$SMOVE" disk info "$url/missing.raw"
expect_stderr 'missing.raw: server answered HTTP 404'
expect_status 1 "$SMOVE" disk info "http://127.0.0.1:$(free_port)/a.raw"
expect_stderr 'Failed to connect|Couldn.t connect'
echo PASS
