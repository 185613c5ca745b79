#!/bin/sh
# smove disk mirror onto a destination that is not all zero: whatever the
# export held before, it ends equal to the source (qemu-img compare), for
# sources made by qemu-img (ZERO blocks) and by smove (absent ranges), onto
# nbdkit smove over a VHDX full of junk and a raw file of junk behind nbdkit
# file (write-zeroes range by range), and behind qemu-nbd (one fast zero of
# the whole disk first). Zeros never travel as payload. With
# --destination-is-zero on a fresh destination nothing but the data is sent.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires qemu-img qemu-io qemu-nbd nbdkit
cd "$T"

size=33554432
writes='-c "write -P 0x11 1M 1M" -c "write -P 0x22 5M 64k" -c "write -z 8M 2M" -c "write -P 0x33 31M 1M"'
qemu-img create -q -f vhdx -o block_size=1M q.vhdx 32M
"$SMOVE" disk create --size 32M --block-size 1M s.vhdx
eval qemu-io -f vhdx "$writes" q.vhdx >/dev/null
eval qemu-io -f vhdx "$writes" s.vhdx >/dev/null
pattern_file junk.raw $size 7

# log_bytes LOG OP: bytes of the requests OP (Write, Zero) in an nbdkit log
# filter's file; log_count LOG OP WORD: requests OP whose line has WORD.
log_bytes() {
	/usr/bin/python3 - "$@" <<'PY'
import sys
n = 0
for l in open(sys.argv[1]):
    f = l.split()
    if len(f) > 4 and f[3] == sys.argv[2]:
        n += int([x for x in f if x.startswith("count=")][0][6:], 16)
print(n)
PY
}
log_count() {
	/usr/bin/python3 - "$@" <<'PY'
import sys
print(sum(1 for l in open(sys.argv[1]) if len(l.split()) > 4 and l.split()[3] == sys.argv[2]
          and sys.argv[3] in l.split()))
PY
}
json_field() {
	/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

for src in q.vhdx s.vhdx; do
	# nbdkit smove over a VHDX whose every block holds junk (made by smove,
	# filled by qemu-img): no fast zero there, so each range gets write-zeroes.
	rm -f d.vhdx
	"$SMOVE" disk create --size 32M --block-size 1M d.vhdx
	qemu-img convert -n -f raw -O vhdx junk.raw d.vhdx
	NBDKIT_ARGS="--filter=log" start_plugin "d$src" "file=$T/d.vhdx" logfile="$T/d.log"
	"$SMOVE" disk mirror -q --json "$src" "$nbd_uri" >d.json
	stop_plugin "d$src"
	qemu-img compare -f vhdx -F vhdx "$src" d.vhdx >cmp.out ||
		fail "$src onto nbdkit smove over junk: $(cat cmp.out)"
	"$SMOVE" disk check d.vhdx >/dev/null || fail "d.vhdx is damaged"
	# Only the data crosses as payload: 2 MiB + 64 KiB, the zero run of s.vhdx's
	# last data block excepted (64 KiB granules: 0x510000-0x600000 is zero).
	w=$(log_bytes d.log Write)
	[ "$w" -le $((2 * 1048576 + 65536 + 2 * 1048576)) ] || fail "$src: $w bytes written as payload"
	[ "$(log_count d.log Zero fast=1)" = 0 ] || fail "$src: fast zero sent to nbdkit smove"
	[ "$(log_bytes d.log Zero)" -ge $((28 * 1048576)) ] || fail "$src: too little zeroed: $(cat d.log)"
	[ "$(json_field d.json bytes-zeroed)" -ge $((28 * 1048576)) ] || fail "$src: bytes-zeroed $(cat d.json)"

	# A raw file of junk behind nbdkit file (which offers no fast zero
	# here): write-zeroes range by range, holes punched.
	cp junk.raw f.raw
	NBDKIT_PLUGIN=file NBDKIT_ARGS="--filter=log" start_plugin "f$src" "file=$T/f.raw" logfile="$T/f.log"
	"$SMOVE" disk mirror -q --verify "$src" "$nbd_uri"
	stop_plugin "f$src"
	qemu-img compare -f vhdx -F raw "$src" f.raw >cmp.out ||
		fail "$src onto nbdkit file over junk: $(cat cmp.out)"
	[ "$(log_bytes f.log Write)" -le $((2 * 1048576 + 65536 + 2 * 1048576)) ] ||
		fail "$src: $(log_bytes f.log Write) bytes written as payload"
	[ "$(du -k f.raw | cut -f1)" -le 8192 ] || fail "f.raw is not sparse after the mirror"

	# The same behind qemu-nbd, which offers fast zero: the whole disk is
	# zeroed by one request first, and nothing else is zeroed.
	cp junk.raw n.raw
	qemu-nbd -f raw -t -k "$T/n.sock" n.raw 2>qemu-nbd.log &
	qpid=$!
	on_exit "kill $qpid 2>/dev/null || :"
	for _ in $(seq 100); do [ -S n.sock ] && break; sleep 0.05; done
	"$SMOVE" disk mirror -q --json "$src" "nbd+unix:///?socket=$T/n.sock" >n.json
	kill $qpid
	wait $qpid 2>/dev/null || :
	rm -f n.sock
	qemu-img compare -f vhdx -F raw "$src" n.raw >cmp.out ||
		fail "$src onto qemu-nbd over junk: $(cat cmp.out)"
	[ "$(json_field n.json bytes-zeroed)" = $size ] || fail "$src to qemu-nbd: $(cat n.json)"
	[ "$(json_field n.json bytes-sent)" -le $((2 * 1048576 + 65536 + 2 * 1048576)) ] ||
		fail "$src to qemu-nbd: $(cat n.json)"
done

# --destination-is-zero onto a fresh image: no write-zeroes but over the
# ranges the source's map calls zero (q.vhdx's ZERO blocks), no zeros sent.
for src in q.vhdx s.vhdx; do
	rm -f z.vhdx
	"$SMOVE" disk create --size 32M --block-size 1M z.vhdx
	NBDKIT_ARGS="--filter=log" start_plugin "z$src" "file=$T/z.vhdx" logfile="$T/z.log"
	"$SMOVE" disk mirror -q --json --destination-is-zero "$src" "$nbd_uri" >z.json
	stop_plugin "z$src"
	qemu-img compare -f vhdx -F vhdx "$src" z.vhdx >cmp.out || fail "$src onto a fresh image: $(cat cmp.out)"
	zero=$("$SMOVE" disk map --json "$src" | /usr/bin/python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["type"] == "zero"))')
	[ "$(log_bytes z.log Zero)" = "$zero" ] ||
		fail "$src: $(log_bytes z.log Zero) bytes zeroed, the source map has $zero"
	[ "$(json_field z.json bytes-zeroed)" = "$zero" ] || fail "$src: $(cat z.json)"
	[ "$(log_bytes z.log Write)" = "$(json_field z.json bytes-sent)" ] || fail "$src: $(cat z.json)"
	[ "$(log_bytes z.log Write)" -le $((2 * 1048576 + 65536 + 2 * 1048576)) ] ||
		fail "$src: $(log_bytes z.log Write) bytes written as payload"
done
echo PASS
