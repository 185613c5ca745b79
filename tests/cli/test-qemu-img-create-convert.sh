#!/bin/sh
# qemu-img's create, convert and resize command lines, given unchanged to
# smove disk and to qemu-img side by side: the images come out the same
# (qemu-img info's members, qemu-img compare), -o options, -b/-F for a
# parent, -n and --target-is-zero, -p/-q, and resize's grow and --shrink;
# where qemu-img cannot (VHD and VHDX resize, differencing images), what smove
# made is read back by qemu-img and libvhdi.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
cd "$T"

# info_same A B [FMT]: qemu-img info sees the same format, size and block size
# (FMT given: QEMU probes a fixed VHD as raw).
info_same() {
	for i in "$1" "$2"; do
		qemu-img info ${3:+-f $3} --output=json "$i" | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
print(j["format"], j["virtual-size"], j.get("cluster-size"))'
	done >sizes
	[ "$(sed -n 1p sizes)" = "$(sed -n 2p sizes)" ] || { cat sizes >&2; fail "$1 and $2 differ: $(cat sizes)"; }
}

# create: the same line for both (FMT FILE SIZE, -o).
while read -r args; do
	# shellcheck disable=SC2086
	qemu-img create -q $args q.img 64M
	# shellcheck disable=SC2086
	"$SMOVE" disk create $args s.img 64M || fail "smove disk create $args s.img 64M"
	f=$(echo "$args" | cut -d' ' -f2)
	info_same q.img s.img $f
	qemu-img compare -f $f -F $f q.img s.img >/dev/null || fail "create $args: contents differ"
	echo "create $args: as qemu-img"
	rm -f q.img s.img
done <<'EOF_ARGS'
-f raw
-f vpc -o force_size=off
-f vpc -o subformat=fixed,force_size=off
-f vhdx -o block_size=8M
-f vhdx -o subformat=fixed,block_size=8M
EOF_ARGS
"$SMOVE" disk create -o help | grep -q '^  block_size=' || fail "-o help"
expect_status 2 "$SMOVE" disk create -f vhdx -o cluster_size=64k x.vhdx 64M
expect_stderr "^smove disk create: -o: unknown or incomplete option 'cluster_size=64k' \('-o help' lists them\)"
# vpc names VHD, as in QEMU.
"$SMOVE" disk create -f vpc v.vhd 1M
"$SMOVE" disk info v.vhd | grep -q '^format: *vhd (dynamic)' || fail "-f vpc did not make a VHD"

# -b PARENT [-F FMT]: a differencing image, the parent's size.
"$SMOVE" disk create -f vhdx -o block_size=8M p.vhdx 64M
qemu-io -f vhdx -c 'write -P 9 0 1M' p.vhdx >/dev/null
"$SMOVE" disk create -f vhdx -b p.vhdx -F vhdx c.vhdx
"$SMOVE" disk create -f vhdx -b p.vhdx -F vhdx c2.vhdx 64M
"$SMOVE" disk info --json c.vhdx | grep -q '"backing-filename":"p.vhdx"' || fail "-b: no parent"
expect_status 2 "$SMOVE" disk create -f vhdx -b p.vhdx c3.vhdx 32M
expect_stderr "a differencing image has its parent's size, 67108864 bytes, not 33554432"
expect_status 2 "$SMOVE" disk create -b p.vhdx -F vpc c3.vhdx
expect_stderr "a differencing image's parent has the child's format: vhdx here, not vhd"
[ ! -e c3.vhdx ] || fail "a refused create left c3.vhdx"
"$SMOVE" disk compare -q c.vhdx p.vhdx || fail "the child does not read as its parent"

# convert: the same line for both, every pair of formats, then qemu-img
# compare; -o, -p and -q as qemu-img takes them. The source's size is
# CHS-exact, so that a VHD made by either is sized alike by every reader.
size=67125248
truncate -s $size src.raw
dd if=/dev/urandom of=src.raw bs=64k count=16 seek=3 conv=notrunc status=none
dd if=/dev/urandom of=src.raw bs=64k count=1 seek=1000 conv=notrunc status=none
for to in raw vpc vhdx; do
	for opts in "" "-o subformat=fixed"; do
		[ $to = raw ] && [ -n "$opts" ] && continue
		# The options that make both pick the same layout (QEMU's VHDX block
		# size depends on the disk size, smove's is 32M).
		[ $to = vpc ] && opts="-o ${opts#-o }${opts:+,}force_size=off"
		[ $to = vhdx ] && opts="-o ${opts#-o }${opts:+,}block_size=8M"
		# shellcheck disable=SC2086
		qemu-img convert -q -f raw -O $to $opts src.raw q.$to
		# shellcheck disable=SC2086
		"$SMOVE" disk convert -q -f raw -O $to $opts src.raw s.$to ||
			fail "convert -O $to $opts"
		info_same q.$to s.$to $to
		qemu-img compare -q -f $to -F $to q.$to s.$to || fail "convert -O $to $opts: contents differ"
		qemu-img compare -q -f $to -F raw s.$to src.raw ||
			fail "convert -O $to $opts: not the source"
		echo "convert -O $to $opts: as qemu-img"
		rm -f q.$to s.$to
	done
done
"$SMOVE" disk convert -p -O vhdx src.raw p2.vhdx 2>/dev/null || fail "convert -p"

# -n: into an existing image, which held other data; --target-is-zero into a
# fresh one. qemu-img does the same with the same line.
for t in q s; do
	qemu-img create -q -f vhdx $t.vhdx $size
	qemu-io -f vhdx -c 'write -P 0x55 30M 4M' $t.vhdx >/dev/null
done
qemu-img convert -n -f raw -O vhdx src.raw q.vhdx
"$SMOVE" disk convert -n -f raw -O vhdx src.raw s.vhdx || fail "convert -n"
qemu-img compare -q -F raw q.vhdx src.raw || fail "qemu-img convert -n"
qemu-img compare -q -F raw s.vhdx src.raw || fail "smove convert -n left old data"
qemu-img create -q -f vhdx z.vhdx $size
"$SMOVE" disk convert -n --target-is-zero -O vhdx src.raw z.vhdx || fail "--target-is-zero"
qemu-img compare -q -F raw z.vhdx src.raw || fail "convert -n --target-is-zero"
expect_status 2 "$SMOVE" disk convert --target-is-zero src.raw y.vhdx
expect_stderr -- "--target-is-zero needs -n"
qemu-img create -q -f raw small.raw 1M
expect_status 1 "$SMOVE" disk convert -n src.raw small.raw
expect_stderr "small.raw: is smaller \(1048576 bytes\) than src.raw \($size bytes\)"
# -n into an NBD export, the URL named as qemu-img names it.
if command -v qemu-nbd >/dev/null; then
	qemu-img create -q -f raw nbd.raw $size
	qemu-nbd -f raw -t -k "$T/nbd.sock" nbd.raw &
	npid=$!
	on_exit "kill $npid 2>/dev/null || :"
	for _ in $(seq 100); do [ -S nbd.sock ] && break; sleep 0.05; done
	"$SMOVE" disk convert -n -q src.raw "nbd+unix:///?socket=$T/nbd.sock" || fail "convert -n to NBD"
	kill $npid
	wait $npid 2>/dev/null || :
	cmp nbd.raw src.raw || fail "convert -n to NBD: other bytes"
fi

# resize: raw as qemu-img resize does it, with the same lines.
cp src.raw q.raw
cp src.raw s.raw
while read -r args; do
	set +e
	# shellcheck disable=SC2086
	qemu-img resize -q -f raw q.raw $args 2>q.err
	qs=$?
	# shellcheck disable=SC2086
	"$SMOVE" disk resize -q -f raw s.raw $args 2>s.err
	ss=$?
	set -e
	[ $qs = $ss ] || { cat q.err s.err >&2; fail "resize $args: qemu-img exits $qs, smove $ss"; }
	[ "$(stat -c %s q.raw)" = "$(stat -c %s s.raw)" ] || fail "resize $args: other sizes"
	cmp q.raw s.raw || fail "resize $args: other contents"
	echo "resize $args: $ss, $(stat -c %s s.raw) bytes, as qemu-img"
done <<'EOF_ARGS'
+1M
-1M
-- -1M
--shrink -- -1M
100M
32M
--shrink 32M
EOF_ARGS
grep -q -- "--shrink" s.err || true

# VHD (dynamic, fixed) and VHDX, which qemu-img cannot resize: smove grows
# them in place, qemu-img and libvhdi read the same data and zeros after.
qemu-img create -q -f vpc d.vhd 64M
qemu-img create -q -f vpc -o subformat=fixed f.vhd 64M
qemu-img create -q -f vhdx -o block_size=1M x.vhdx 64M
for img in d.vhd:vpc f.vhd:vpc x.vhdx:vhdx; do
	f=${img#*:}
	img=${img%:*}
	qemu-io -f $f -c 'write -P 1 0 2M' -c 'write -P 2 6M 1M' -c 'write -P 3 62M 2M' $img >/dev/null
	qemu-img convert -f $f -O raw $img before.raw
	"$SMOVE" disk resize -f $f $img +200G >/dev/null || fail "resize $img +200G"
	qemu-img info -f $f --output=json $img | grep -q '"virtual-size": 2[0-9]\{11\}' ||
		fail "$img: qemu-img does not see it grown"
	qemu-io -f $f -c 'read -P 3 62M 2M' -c 'read -P 0 64M 64M' -c 'read -P 0 150G 1M' $img >io.out ||
		{ cat io.out >&2; fail "$img: qemu-io reads other data after the resize"; }
	qemu-img compare -q -f $f -F raw $img before.raw || fail "$img: data changed"
	[ $f = vhdx ] && { qemu-img check -q $img || fail "qemu-img check $img"; }
	"$SMOVE" disk check -q $img || fail "smove disk check $img"
	/usr/bin/python3 - $img <<'PY' || fail "libvhdi on $img"
import pyvhdi, sys
f = pyvhdi.file(); f.open(sys.argv[1])
assert f.get_media_size() >= 200 << 30, f.get_media_size()
f.seek_offset(62 << 20, 0)
assert f.read_buffer(1 << 20) == b"\x03" * (1 << 20)
PY
	"$SMOVE" disk resize -q -f $f --shrink $img 63M || fail "resize --shrink $img"
	"$SMOVE" disk resize -q -f $f $img 64M || fail "grow $img again"
	qemu-io -f $f -c 'read -P 3 62M 1M' -c 'read -P 0 63M 1M' $img >io.out ||
		{ cat io.out >&2; fail "$img: the shrunk part does not read as zero"; }
	echo "resize $img: grown to 200G and shrunk, read back by qemu-io and libvhdi"
done
expect_status 1 "$SMOVE" disk resize x.vhdx 32M
expect_stderr "give --shrink to do so"
expect_status 1 "$SMOVE" disk resize c.vhdx +1G
expect_stderr "c.vhdx: is a differencing image, which has its parent's size: it cannot be resized"
expect_status 2 "$SMOVE" disk resize nbd://localhost/x 1G
expect_stderr "is a URL; resize changes a local file"
echo PASS
