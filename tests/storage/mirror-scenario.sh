# tests/storage/mirror-scenario.sh: the scenario of the test-mirror-*.sh
# tests. mirror_scenario SRCFMT DSTFMT [mirror-writer options]: a 32 MiB
# source with data, a fresh destination image served by `nbdkit smove`
# (NBDKIT_ARGS adds nbdkit options, e.g. TLS), tests/storage/mirror-writer
# mirrors one to the other under writer threads and compares them; then,
# with nbdkit stopped, qemu-img compares the two files and checks the
# destination. Source it after servers.sh.

qemu_fmt() { [ "$1" = vhd ] && echo vpc || echo "$1"; }

# make_image FILE FMT: a 32 MiB image of FMT (skips if this build lacks it).
# A VHD's size is rounded up to whole CHS geometry, so that QEMU, which sizes
# VHDs from their geometry, sees the same disk.
make_image() {
	round=""
	[ "$2" = vhd ] && round=--chs-round
	"$SMOVE" disk create --size 32M $round "$1" 2>"$T/create.err" || {
		grep -q 'this build cannot' "$T/create.err" && skip "no $2 support in this build"
		cat "$T/create.err" >&2
		fail "cannot create $1"
	}
}

mirror_scenario() {
	sfmt=$1
	dfmt=$2
	shift 2
	requires qemu-img qemu-io
	cd "$T"
	make_image "src.$sfmt" "$sfmt"
	make_image "dst.$dfmt" "$dfmt"
	sq=$(qemu_fmt "$sfmt")
	dq=$(qemu_fmt "$dfmt")
	qemu-io -f "$sq" -c 'write -P 0x5a 1M 8M' -c 'write -P 0x6b 20M 3M' \
		-c 'write -P 0x7c 32767k 1k' "src.$sfmt" >/dev/null
	start_plugin d "file=$T/dst.$dfmt"
	"$abs_top_builddir/tests/storage/mirror-writer" "$@" "src.$sfmt" "$nbd_uri" >out 2>err || {
		cat out err >&2
		fail "mirror-writer $sfmt -> $dfmt failed"
	}
	for key in writes_behind writes_at writes_ahead writes_in_bulk writes_in_synced; do
		grep -q "^$key=[1-9]" out || { cat out >&2; fail "no writes counted as $key"; }
	done
	grep -q '^writer_errors=0$' out || fail "a writer saw an error"
	grep -q '^state=completed$' out || fail "the mirror did not complete"
	stop_plugin d
	qemu-img compare -f "$sq" -F "$dq" "src.$sfmt" "dst.$dfmt" >/dev/null ||
		fail "$sfmt -> $dfmt: qemu-img finds the destination file different"
	if [ "$dfmt" = vhdx ]; then
		qemu-img check -f vhdx "dst.$dfmt" >/dev/null || fail "qemu-img check dst.vhdx"
	fi
	# Leaks (space the zeroed blocks left, exit 3 as qemu-img's) are no damage.
	st=0
	"$SMOVE" disk check "dst.$dfmt" >/dev/null || st=$?
	[ $st = 0 ] || [ $st = 3 ] || fail "smove disk check dst.$dfmt (exit $st)"
}

# sparse_scenario FMT: a 64 GiB FMT image holding 100 MiB of data (100 runs
# of 1 MiB, scattered) is mirrored by `smove disk mirror` to a fresh 64 GiB
# FMT image served by nbdkit smove behind nbdkit's stats filter. About 100
# MiB cross the wire (the filter counts them, and so does smove), the
# destination file stays sparse, and qemu-img finds the two equal.
sparse_scenario() {
	fmt=$1
	requires qemu-img qemu-io
	cd "$T"
	# Scattered 1 MiB runs allocate 100 blocks of 32 MiB in a VHDX, all read
	# and found mostly zero: 3 GiB to read. The quick run uses 1 MiB blocks.
	bs=""
	[ "$fmt" = vhdx ] && [ "${SMOVE_TEST_FULL:-}" != 1 ] && bs="--block-size 1M"
	"$SMOVE" disk create --size 64G $bs "src.$fmt" 2>create.err || {
		grep -q 'this build cannot' create.err && skip "no $fmt support in this build"
		cat create.err >&2
		fail "cannot create src.$fmt"
	}
	"$SMOVE" disk create --size 64G $bs "dst.$fmt"
	q=$(qemu_fmt "$fmt")
	/usr/bin/python3 -c '
import random
r = random.Random(5)
for i in range(100):
    print("write -P %d %d 1M" % (i + 1, r.randrange(0, 64 << 10) << 20))
' >writes
	qemu-io -f "$q" "src.$fmt" <writes >/dev/null
	data=$("$SMOVE" disk map --json "src.$fmt" | /usr/bin/python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["type"] == "data"))')
	NBDKIT_ARGS="--filter=stats" start_plugin d "file=$T/dst.$fmt" statsfile="$T/stats"
	"$SMOVE" disk mirror --json "src.$fmt" "$nbd_uri" >mirror.json
	stop_plugin d
	# "write: 100 ops, 0.6 s, 100.00 MiB, ...": the filter rounds to 2 decimals.
	wire=$(awk '$1 == "write:" {
		split("bytes KiB MiB GiB TiB", u, " ")
		for (k = 1; k <= 5; k++) if ($7 ~ "^" u[k]) printf "%.0f\n", $6 * 1024 ^ (k - 1)
	}' stats)
	sent=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes-sent"])' mirror.json)
	mib=104857600
	[ -n "$wire" ] || fail "no write line in the stats: $(cat stats)"
	[ "$wire" -ge "$mib" ] && [ "$wire" -le $((mib + mib / 50)) ] ||
		fail "$wire bytes written on the wire for 100 MiB of data (source map: $data bytes of data)"
	[ "$sent" -ge $((wire - 10486)) ] && [ "$sent" -le $((wire + 10486)) ] ||
		fail "smove counted $sent bytes sent, nbdkit $wire"
	used=$(du -k "dst.$fmt" | cut -f1)
	[ "$used" -le $((110 * 1024 + 32 * 1024)) ] || fail "dst.$fmt uses $used KiB: not sparse"
	if [ "$fmt" = raw ] || [ "${SMOVE_TEST_FULL:-}" = 1 ]; then
		# QEMU maps a VHDX as all data: comparing 64 GiB takes long.
		qemu-img compare -f "$q" -F "$q" "src.$fmt" "dst.$fmt" >/dev/null ||
			fail "the copy differs (qemu-img compare)"
	else
		# libvhdi reads back every run written, and between them.
		/usr/bin/python3 - "src.$fmt" "dst.$fmt" writes <<'PY' || fail "the copy differs (libvhdi)"
import sys, pyvhdi
a, b = pyvhdi.file(), pyvhdi.file()
a.open(sys.argv[1]); b.open(sys.argv[2])
offs = [int(l.split()[3]) for l in open(sys.argv[3])]
for off in offs + [o + (1 << 20) for o in offs] + [o + (5 << 20) for o in offs]:
    off = min(off, a.get_media_size() - (1 << 20))
    a.seek_offset(off, 0); b.seek_offset(off, 0)
    assert a.read_buffer(1 << 20) == b.read_buffer(1 << 20), off
PY
	fi
	echo "$fmt: $data bytes of data in the map, $wire bytes on the wire, $used KiB used"
}
