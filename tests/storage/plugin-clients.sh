# tests/storage/plugin-clients.sh: the scenario of the test-plugin-FMT.sh
# tests, for one format: `nbdkit smove` serves a fresh 256 MiB image, real
# clients write it (qemu-io: data across block boundaries, write-zeroes,
# discard, flush), read it (nbdcopy, qemu-img convert/compare) and map it
# (nbdinfo --map); every answer is compared with a raw file that qemu-io
# wrote with the same commands, and with the image read directly (qemu-img,
# smove). Source it after servers.sh and call plugin_clients FMT.

plugin_clients() {
	fmt=$1
	requires qemu-img qemu-io nbdinfo nbdcopy
	cd "$T"
	round=""
	[ "$fmt" = vhd ] && round=--chs-round # so that QEMU sees the same size
	"$SMOVE" disk create --size 256M $round "a.$fmt" 2>err ||
		{ grep -q 'this build cannot' err && skip "no $fmt support in this build"; cat err; exit 1; }
	size=$("$SMOVE" disk info --json "a.$fmt" | /usr/bin/python3 -c '
import json, sys
print(json.load(sys.stdin)["virtual-size"])')
	qemu-img create -q -f raw expected.raw "$size"

	set -- -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1000k 3000k' \
		-c 'write -P 0x33 255M 1M' -c 'write -P 0x44 33554000 1000' \
		-c 'write -z 1500k 500k' -c 'discard 2M 2M' -c 'write -P 0x55 3M 4k' -c flush
	qemu-io -f raw "$@" expected.raw >/dev/null
	start_plugin p "a.$fmt"
	qemu-io -f raw "$@" "$nbd_uri" >qemu-io.out || { cat qemu-io.out; fail "qemu-io writes"; }
	grep -qi error qemu-io.out && fail "qemu-io: $(cat qemu-io.out)"

	# Read back through the plugin by three clients.
	qemu-img compare -f raw -F raw "$nbd_uri" expected.raw >/dev/null ||
		fail "$fmt: qemu-img compare through the plugin differs"
	nbdcopy "$nbd_uri" copy.raw
	cmp copy.raw expected.raw || fail "$fmt: nbdcopy through the plugin differs"
	qemu-img convert -f raw -O raw "$nbd_uri" conv.raw
	cmp conv.raw expected.raw || fail "$fmt: qemu-img convert through the plugin differs"

	# The plugin's map is the image's own chain map (holes where nothing was
	# written), and qemu-img, reading the file directly, sees no data there.
	nbdinfo --map --json "$nbd_uri" >nbd-map.json
	"$SMOVE" disk map --json "a.$fmt" >file-map.json
	/usr/bin/python3 - nbd-map.json file-map.json "$size" <<'PY' || fail "$fmt: maps differ"
import json, sys
nbd = json.load(open(sys.argv[1]))
mine = json.load(open(sys.argv[2]))
def runs(m, key, start):
    out = []
    for e in m:
        t = key(e)
        if out and out[-1][2] == t and out[-1][0] + out[-1][1] == e[start]:
            out[-1][1] += e["length"]
        else:
            out.append([e[start], e["length"], t])
    return out
a = runs(nbd, lambda e: {0: "data", 2: "zero", 3: "absent"}[e["type"]], "offset")
b = runs(mine, lambda e: e["type"], "start")
assert a == b, (a, b)
assert sum(e["length"] for e in nbd) == int(sys.argv[3])
hole = [r for r in a if r[2] == "absent" and r[0] <= 100 << 20 < r[0] + r[1]]
assert hole, a
PY
	stop_plugin p

	# After the plugin has gone: the file itself, read by qemu-img.
	qfmt=$fmt
	[ "$fmt" = vhd ] && qfmt=vpc
	qemu-img compare -f "$qfmt" -F raw "a.$fmt" expected.raw >/dev/null ||
		fail "$fmt: the image written through the plugin differs (qemu-img)"
	if [ "$fmt" = vhdx ]; then
		qemu-img check -f vhdx "a.$fmt" >check.out || { cat check.out; fail "qemu-img check"; }
	fi
	# Leaks (space trim freed, exit 3 as qemu-img's) are no damage.
	st=0
	"$SMOVE" disk check "a.$fmt" >/dev/null || st=$?
	[ $st = 0 ] || [ $st = 3 ] || fail "$fmt: smove disk check (exit $st)"
}
