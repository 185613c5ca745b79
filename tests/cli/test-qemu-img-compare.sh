#!/bin/sh
# smove disk compare against qemu-img compare, side by side: the same command
# line given to both, on the same images, prints the same words and exits
# with the same status (0 identical, 1 different, 2 error), -s (strict), -q,
# -f/-F, different sizes, data against holes, across formats.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
cd "$T"

# same ARGS...: qemu-img compare ARGS and smove disk compare ARGS agree.
same() {
	set +e
	qemu-img compare "$@" >q.out 2>q.err
	qs=$?
	"$SMOVE" disk compare "$@" >s.out 2>s.err
	ss=$?
	set -e
	[ "$qs" = "$ss" ] || { cat q.out q.err s.out s.err >&2; fail "compare $*: qemu-img exits $qs, smove $ss"; }
	# qemu-img writes its warning on stdout too; an error goes to stderr for both.
	cmp -s q.out s.out || { diff q.out s.out >&2; fail "compare $*: other words than qemu-img"; }
	echo "compare $*: $ss, $(head -1 s.out)"
}

qemu-img create -q -f vpc a.vhd 64M
qemu-io -f vpc -c 'write -P 1 0 1M' -c 'write -P 2 10M 64k' a.vhd >/dev/null
qemu-img convert -f vpc -O raw a.vhd a.raw
qemu-img convert -f vpc -O vhdx a.vhd a.vhdx
same -f vpc -F raw a.vhd a.raw
same -f vhdx -F vpc a.vhdx a.vhd
same a.vhdx a.raw
same -q a.vhdx a.raw

# Content: the first differing sector.
cp a.raw b.raw
printf 'x' | dd of=b.raw bs=1 seek=$((10 * 1048576 + 4097)) conv=notrunc status=none
same a.vhdx b.raw
same -f raw b.raw a.raw
same -q b.raw a.raw
# Data in one, a hole in the other.
qemu-io -f vpc -c 'write -P 3 40M 512' a.vhd >/dev/null
same -f vpc -F vhdx a.vhd a.vhdx
same -F vpc a.vhdx a.vhd

# Sizes: a zero tail is no difference, unless strict; a non-zero one is.
qemu-img convert -f vhdx -O raw a.vhdx c.raw
truncate -s 80M c.raw
same a.vhdx c.raw
same -s a.vhdx c.raw
printf 'y' | dd of=c.raw bs=1 seek=$((70 * 1048576)) conv=notrunc status=none
same a.vhdx c.raw
same c.raw a.vhdx
# Strict: allocation differs (zeros written against a hole). Both end with
# data: QEMU also counts a run that reaches the end of one image only as a
# difference in status (its BDRV_BLOCK_EOF flag), which is no allocation.
qemu-img create -q -f vpc z.vhd 64M
qemu-img create -q -f vpc w.vhd 64M
for f in z w; do
	qemu-io -f vpc -c 'write -P 5 0 1M' -c 'write -P 6 62M 2M' $f.vhd >/dev/null
done
qemu-io -f vpc -c 'write -P 0 2M 2M' w.vhd >/dev/null
same -f vpc z.vhd w.vhd
same -s -f vpc z.vhd w.vhd

# Errors: 2, with the reason on standard error.
expect_status 2 "$SMOVE" disk compare a.raw missing.raw
expect_stderr "^smove disk compare: missing.raw: No such file or directory"
expect_status 2 qemu-img compare a.raw missing.raw
expect_status 2 "$SMOVE" disk compare a.raw
expect_stderr "^smove disk compare: expected two images"

# --json for scripts.
"$SMOVE" disk compare --json a.vhdx b.raw >cmp.json && fail "compare --json: exit 0 for different images"
/usr/bin/python3 - cmp.json <<'PY' || fail "compare --json: $(cat cmp.json)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["identical"] is False and j["offset"] == 10 * 1048576 + 4096, j
assert j["difference"] == "content" and j["size-mismatch"] is False, j
PY
echo PASS
