# tests/migrate/lib.sh: two smove "hosts" on one machine, over loopback, for
# the migration tests. Source it after tests/functions.sh. The source host's
# runtime directory is $T/src (its VMs run there; a reboot empties it) and its
# state directory $T/src-state (records of migrations in doubt: persistent),
# the destination's $T/dst and $T/dst-state, with its storage in $T/store;
# `smove serve` listens on a free port, with TLS (a key made here) unless a
# test says otherwise.
#
# The runtime: $SMOVE_TEST_RUNTIME, memsync (smove's KVM VMM and its test
# guest: needs /dev/kvm) or qemu (QEMU, with KVM where it works and TCG
# elsewhere, and the Linux test guest of qemu/guest/: runs on every
# machine). Each test runs as test-X.sh (memsync) and test-X.qemu (qemu:
# tests/migrate/local.mk). start_vm takes the test guest's command line in
# the built-in guest's words (mem=8M passes=0 ...) and gives the Linux guest
# the same as smove.* words.
# Each host's processes run through $IN_SRC / $IN_DST (empty here; `ip netns
# exec NS` after tests/migrate/netns.sh) and its serve listens on $SRC_ADDR /
# $DST_ADDR (127.0.0.1 here).
#   start_serve [OPTS...]     serve in the background: $PORT, $SERVE_PID, $T/serve.err
#   start_vm NAME [RUN OPTS]  `smove run` of the test guest: $VM_PID, $T/NAME.console
#   src CMD... / dst CMD...   smove on one host or the other
#   move NAME [OPTS]          `smove move NAME --to $DST_ADDR:$PORT --json`,
#                             events in $T/move.json, exit status in $MOVE_STATUS
#   wait_for FILE PATTERN [S] until FILE matches (grep -E), S seconds (60)
#   event EXPR                evaluates EXPR over the last result event (python)
#   verdict NAME              waits for the guest's verdict on the destination
RUNTIME=${SMOVE_TEST_RUNTIME:-memsync}
case $RUNTIME in
memsync) requires_kvm ;;
qemu)
	. "$abs_top_srcdir/tests/qemu/linux-guest.sh"
	requires_linux_guest
	;;
*) fail "SMOVE_TEST_RUNTIME=$RUNTIME: memsync or qemu" ;;
esac
requires nbdkit psktool
echo "runtime: $RUNTIME"
GUEST="$abs_top_builddir/memsync/guest/guest.elf"
export SMOVE_NBDKIT_PLUGIN="$abs_top_builddir/storage/nbdkit/.libs/nbdkit-smove-plugin.so"
mkdir -p "$T/src" "$T/src-state" "$T/dst" "$T/dst-state" "$T/store"
# Under the sanitizers nbdkit is not instrumented: the plugin's runtime is
# preloaded into it (exec keeps the pid that socket activation names).
if [ "${SMOVE_SANITIZERS:-no}" = yes ]; then
	cat >"$T/nbdkit" <<SH
#!/bin/sh
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0
exec nbdkit "\$@"
SH
	chmod +x "$T/nbdkit"
	export SMOVE_NBDKIT="$T/nbdkit"
fi

IN_SRC= IN_DST= SRC_ADDR=127.0.0.1 DST_ADDR=127.0.0.1
src() { SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src-state" $IN_SRC "$SMOVE" "$@"; }
dst() { SMOVE_RUNTIME_DIR="$T/dst" SMOVE_STATE_DIR="$T/dst-state" $IN_DST "$SMOVE" "$@"; }
# The key serve and move use unless a test gives its own TLS options.
psktool -u smove -p "$T/lib.psk" >/dev/null 2>&1 || fail "psktool cannot make a key"
# LIB_TLS=none: start_serve, move and move_bg speak in the clear (serve with
# --insecure), for the fake peers that speak the protocol without TLS
# (bad-client.py, bad-dest.py); psk (the default): TLS with $T/lib.psk.
LIB_TLS=psk
# tls_default ARGS...: --tls-psk $T/lib.psk unless ARGS choose their own
# (nothing with LIB_TLS=none).
tls_default() {
	case " $* " in
	*" --tls-psk "* | *" --tls-x509 "* | *" --insecure "*) ;;
	*) [ "$LIB_TLS" = none ] || echo "--tls-psk $T/lib.psk" ;;
	esac
}
# serve_tls ARGS...: serve's TLS options: tls_default's, or --insecure.
serve_tls() {
	t=$(tls_default "$@")
	case " $* " in
	*" --tls-psk "* | *" --tls-x509 "* | *" --insecure "*) ;;
	*) echo "${t:---insecure}" ;;
	esac
}

# Every VM process either host has registered, at the end.
kill_vms() {
	for f in "$T"/src/*.json "$T"/dst/*.json; do
		[ -f "$f" ] || continue
		pid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f" 2>/dev/null) || continue
		kill -9 "$pid" 2>/dev/null || true
	done
}
on_exit kill_vms

wait_for() {
	for i in $(seq $((${3:-60} * 10))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "--- $1:" >&2
	tail -20 "$1" >&2 || true
	fail "timed out waiting for '$2' in $1"
}

# (A second start_serve listens on the same port: a restart of the same host.)
start_serve() {
	: >"$T/serve.out" # not a previous serve's line, whenever the shell opens it
	SMOVE_RUNTIME_DIR="$T/dst" SMOVE_STATE_DIR="$T/dst-state" $IN_DST "$SMOVE" serve \
		--listen "$DST_ADDR:${PORT:-0}" --storage "$T/store" --json $(serve_tls "$@") "$@" \
		>"$T/serve.out" 2>"$T/serve.err" &
	SERVE_PID=$!
	on_exit "kill $SERVE_PID 2>/dev/null || true"
	for i in $(seq 300); do
		grep -q listening "$T/serve.out" && break
		kill -0 $SERVE_PID 2>/dev/null || { cat "$T/serve.err" >&2; fail "serve did not start"; }
		sleep 0.1
	done
	wait_for "$T/serve.out" listening 1
	PORT=$(sed -n 's/.*"[0-9.]*:\([0-9]*\)".*/\1/p' "$T/serve.out")
}

# linux_cmdline WORDS: the built-in guest's command line (mem=8M ...) as the
# Linux guest's (smove.mem=8M ...); its vCPU programs (cpuN=...) all run.
linux_cmdline() {
	out="console=ttyS0 quiet panic=-1 smove.hbprint=20 smove.gapprint=20"
	for w in $1; do
		case $w in
		cpu[0-9]*=*) ;;
		*) out="$out smove.$w" ;;
		esac
	done
	echo "$out"
}

# runtime_args RUN-OPTS...: start_vm's options for $RUNTIME, one a line (a
# QEMU VM boots the Linux guest in at least 128 MiB).
runtime_args() {
	case $RUNTIME in
	memsync)
		echo "--guest"
		echo "$GUEST"
		for a in "$@"; do echo "$a"; done
		;;
	qemu)
		printf '%s\n' --runtime qemu --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRAMFS"
		prev=
		for a in "$@"; do
			case $prev in
			--cmdline) a=$(linux_cmdline "$a") ;;
			--memory)
				[ "$(numfmt --from=iec "$a")" -ge $((128 << 20)) ] || a=128M
				;;
			esac
			echo "$a"
			prev=$a
		done
		;;
	esac
}

start_vm() {
	name=$1
	shift
	runtime_args "$@" >"$T/$name.args"
	(
		# $IN_SRC split into words first, the arguments at newlines only.
		set -- env SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src-state" $IN_SRC "$SMOVE" run \
			--name "$name" --console "$T/$name.console"
		IFS='
'
		exec "$@" $(cat "$T/$name.args")
	) >"$T/$name.run.out" 2>"$T/$name.run.err" &
	VM_PID=$!
	on_exit "kill -9 $VM_PID 2>/dev/null || true"
	for i in $(seq 600); do
		grep -Eq "smove-(guest|checker):" "$T/$name.console" 2>/dev/null && return 0
		kill -0 $VM_PID 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/$name.run.err" >&2
	fail "$name did not start (its smove run: $T/$name.run.err above)"
}

move() {
	name=$1
	shift
	set +e
	SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src-state" $IN_SRC "$SMOVE" move "$name" \
		--to "$DST_ADDR:$PORT" --json $(tls_default "$@") "$@" >"$T/move.json" 2>"$T/move.err"
	MOVE_STATUS=$?
	set -e
}

# event EXPR: EXPR (python, over d = the result event) printed.
event() {
	/usr/bin/python3 -c '
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if "\"result\"" in l][-1]
print(eval(sys.argv[2]))' "$T/move.json" "$1"
}

# expect_move STATUS: the last move exited STATUS.
expect_move() {
	[ "$MOVE_STATUS" = "$1" ] || {
		cat "$T/move.json" "$T/move.err" "$T/serve.err" >&2
		fail "smove move exited $MOVE_STATUS, expected $1"
	}
}

verdict() {
	wait_for "$T/store/$1/console.log" "verdict: ok|FAIL" 120
	if grep -q FAIL "$T/store/$1/console.log"; then
		grep FAIL "$T/store/$1/console.log" >&2
		fail "the guest found a broken invariant after the migration"
	fi
}

# ctl SOCKET [LINE]: one control-socket request, its reply printed.
ctl() { /usr/bin/python3 "$abs_top_srcdir/tests/memsync/ctl.py" "$@"; }

# check_disk FORMAT IMAGE SIZE PASSES: the image is sound (qemu-img check for
# VHDX; read by libvhdi for VHD) and holds every record of pass PASSES.
check_disk() {
	case $1 in
	raw) cp "$2" "$T/check.raw" ;;
	vhdx)
		qemu-img check -f vhdx "$2" >"$T/qemu-check" 2>&1 || {
			cat "$T/qemu-check" >&2
			fail "qemu-img check finds problems in $2"
		}
		qemu-img convert -f vhdx -O raw "$2" "$T/check.raw"
		;;
	vhd) /usr/bin/python3 "$abs_top_srcdir/tests/vpc/read-pyvhdi.py" "$T/check.raw" "$2" ;;
	esac
	/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/check.raw" "$3" "$4"
}

# check_disk_equal FORMAT IMAGE BYTES PASSES: check_disk, and the image equals,
# as QEMU reads it (qemu-img compare) and for VHD as libvhdi reads it too, a
# reference made apart from smove (make-records.py): the test guest's records
# of pass PASSES over its first BYTES, zeros after.
check_disk_equal() {
	check_disk "$@"
	case $1 in
	raw) qfmt=raw ;;
	vhd) qfmt=vpc ;;
	vhdx) qfmt=vhdx ;;
	esac
	size=$(qemu-img info -f $qfmt --output=json "$2" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
	/usr/bin/python3 "$abs_top_srcdir/tests/migrate/make-records.py" "$T/ref.raw" "$size" "$3" "$4"
	[ "$(stat -c %s "$T/check.raw")" = "$size" ] ||
		fail "$2: $(stat -c %s "$T/check.raw") bytes read by the checks above, $size by QEMU"
	qemu-img compare -f raw -F $qfmt "$T/ref.raw" "$2" >&2 ||
		fail "QEMU reads $2 other than the guest wrote it"
	if [ "$1" = vhd ]; then
		qemu-img compare -f raw -F raw "$T/ref.raw" "$T/check.raw" >&2 ||
			fail "libvhdi reads $2 other than the guest wrote it"
	fi
	echo "$2: equal to the reference (pass $4 over $3 bytes of $size)"
}

# guest STATUS-EXPR: EXPR (python, over d = the destination VM's status reply).
guest() {
	ctl "$T/dst/vm1.sock" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# live_scenario FORMAT CPUS [MOVE OPTS...]: the test guest writes 3 passes
# of checksummed records on the first 8 MiB of a 9 MiB disk of FORMAT and
# rewrites and checks an 8 MiB memory pattern for ever (one vCPU: disk, then
# memory; two: one each) in a guest of $LIVE_MEMORY (128M); it is moved once
# the first disk pass is done. On the destination its programs go on with
# every invariant intact (a lost, stale or corrupt page or record, or a clock
# going back, would stop it with FAIL), its heartbeat goes on (no gap of 5 s),
# its disk equals the reference (check_disk_equal), and nothing is left on the
# source. $LIVE_BEFORE_MOVE, when set, is run just before the move.
live_scenario() {
	fmt=$1
	cpus=$2
	shift 2
	disk="$T/disk.$fmt"
	case $fmt in
	raw) truncate -s 9M "$disk" ;;
	vhd) "$SMOVE" disk create --chs-round --size 9M "$disk" >/dev/null ;;
	*) "$SMOVE" disk create --size 9M "$disk" >/dev/null ;;
	esac
	progs="cpu0=disk+mem"
	[ "$cpus" = 1 ] || progs="cpu0=mem cpu1=disk"
	start_vm vm1 --memory "${LIVE_MEMORY:-128M}" --cpus "$cpus" --disk "$disk" \
		--cmdline "mem=8M passes=0 disk=8M diskpasses=3 $progs hb=5"
	wait_for "$T/vm1.console" "disk 0 pass 1 ok"
	[ -z "${LIVE_BEFORE_MOVE:-}" ] || $LIVE_BEFORE_MOVE
	move vm1 "$@"
	expect_move 0
	[ "$(event 'd["result"]')" = done ] || fail "result is not done"
	wait "$VM_PID" || fail "the source's smove run did not exit 0"
	grep -q "moved to $DST_ADDR:$PORT" "$T/vm1.run.err" ||
		fail "smove run did not say where the VM went"
	[ ! -e "$disk" ] || fail "the source's disk is still there"
	[ ! -e "$T/src/vm1.json" ] || fail "the source still registers vm1"
	! ls -A "$T/src" | grep -E '^\.?vm1' || fail "the source keeps files of vm1"
	dst ps | grep -Eq "^vm1 .* running" || fail "smove ps does not list vm1 on the destination"
	# The console log travelled; the programs go on there.
	console="$T/store/vm1/console.log"
	grep -q "disk 0 pass 1 ok" "$console" || fail "the console log did not travel"
	passes=$(grep -c "mem pass" "$T/vm1.console" || true)
	wait_for "$console" "disk 0: 8 MiB x 3 passes verified" 120
	for i in $(seq 600); do
		[ "$(grep -c "mem pass" "$console")" -ge $((passes + 3)) ] && break
		grep -q FAIL "$console" && break
		sleep 0.1
	done
	! grep FAIL "$console" || fail "the guest found a broken invariant after the migration"
	[ "$(grep -c "mem pass" "$console")" -ge $((passes + 3)) ] ||
		fail "the memory program does not go on after the migration"
	[ "$(guest 'd["guest"]["state"]')" = running ] || fail "the guest is not running"
	gap=$(guest 'd["guest"]["max_gap_ms"]')
	echo "the guest's longest heartbeat gap: $gap ms," \
		"downtime seen by the hosts: $(event 'd["downtime_ms"]') ms"
	/usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[1]) > 5000)" "$gap" ||
		fail "the guest saw a gap of $gap ms"
	ctl "$T/dst/vm1.sock" '{"cmd":"stop"}' >/dev/null
	for i in $(seq 100); do [ -e "$T/dst/vm1.json" ] || break; sleep 0.1; done
	! ls -A "$T/store/vm1" | grep -q smove-tmp || fail "temporary files left on the destination"
	check_disk_equal "$fmt" "$T/store/vm1/disk.$fmt" $((8 << 20)) 3
}

# move_bg NAME [OPTS]: `smove move` in the background ($MOVE_PID); then
# move_wait collects its status into $MOVE_STATUS.
move_bg() {
	name=$1
	shift
	SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src-state" $IN_SRC "$SMOVE" move "$name" \
		--to "$DST_ADDR:$PORT" --json $(tls_default "$@") "$@" >"$T/move.json" 2>"$T/move.err" &
	MOVE_PID=$!
	on_exit "kill $MOVE_PID 2>/dev/null || true"
}
move_wait() {
	set +e
	wait "$MOVE_PID"
	MOVE_STATUS=$?
	set -e
}

# status SOCKET EXPR: EXPR (python, over d = the VM's status reply).
status() {
	ctl "$1" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"
}

# runs SOCKET: the VM behind SOCKET runs: its guest's heartbeat advances.
runs() {
	# (one python for the whole wait: a process for each look cost seconds)
	/usr/bin/python3 - "$1" >"$T/runs.out" 2>&1 <<'PY' ||
import json, socket, sys, time
def status():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sys.argv[1])
    s.sendall(b'{"cmd":"status"}\n')
    d = json.loads(s.makefile("rb").readline())
    s.close()
    return d
# A VM that has just arrived knows its guest from its first heartbeat line
# on: until then its status has no "guest".
def heartbeat(d):
    return d.get("guest", {}).get("heartbeat")
first = None
for i in range(300):
    d = status()
    hb = heartbeat(d)
    if first is None:
        first = hb
    elif d["state"] == "running" and hb is not None and hb > first:
        sys.exit(0)
    time.sleep(0.1)
sys.exit("state %s, heartbeat %s (first seen %s)" % (d["state"], heartbeat(d), first))
PY
		fail "the VM at $1 does not run ($(tail -1 "$T/runs.out"))"
}

# nothing_on_dest NAME: no copy of NAME is left on the destination (files,
# exports, VM process), and its record says the session was aborted.
nothing_on_dest() {
	for i in $(seq 100); do
		[ ! -e "$T/store/$1" ] && [ ! -e "$T/dst/$1.json" ] && break
		sleep 0.1
	done
	[ ! -e "$T/store/$1" ] || { ls -la "$T/store/$1"; fail "the destination kept $T/store/$1"; }
	[ ! -e "$T/dst/$1.json" ] || fail "the destination still runs $1"
	! pgrep -f "file=$T/store" >/dev/null || fail "an nbdkit export is left"
	grep -l '"aborted"' "$T"/store/.smove-sessions/*.json >/dev/null ||
		fail "no record says the session was aborted"
}

# bad_client_base SOCKET: for tests/migrate/bad-client.py with the QEMU
# runtime, the configuration and QEMU of the running VM behind SOCKET
# (BAD_CLIENT_QEMU, a JSON file), on which its fake QEMU VMs are modelled.
bad_client_base() {
	[ "$RUNTIME" = qemu ] || return 0
	ctl "$1" '{"cmd":"config"}' >"$T/base.config"
	ctl "$1" >"$T/base.status"
	/usr/bin/python3 -c '
import json, sys
c = json.loads(json.load(open(sys.argv[1]))["config"])
s = json.load(open(sys.argv[2]))
info = {"accel": s["accel"], "qemu_version": s["qemu_version"], "machine": s["machine"],
        "cpu": s["cpu_model"]}
json.dump({"config": c, "info": info}, open(sys.argv[3], "w"))' \
		"$T/base.config" "$T/base.status" "$T/qemu-base.json"
	export BAD_CLIENT_QEMU="$T/qemu-base.json"
}

# silent_peers: 20 connections to serve ($PORT on loopback) that say nothing,
# 10 from each of 127.0.0.2 and 127.0.0.3 (addresses no other peer of the
# tests uses), held in the background ($SILENT_PID) until serve drops them
# at its handshake deadline; $T/silent20 says "held H refused R" (serve takes
# 8 a peer before their HELLO), then "all closed S s later".
silent_peers() {
	/usr/bin/python3 - "$PORT" >"$T/silent20" 2>&1 <<'PY' &
import select, socket, sys, time
conns = []
for addr in ["127.0.0.2"] * 10 + ["127.0.0.3"] * 10:
    c = socket.socket()
    c.bind((addr, 0))
    c.connect(("127.0.0.1", int(sys.argv[1])))
    conns.append(c)
def closed():
    out = []
    for c in conns:
        r, _, _ = select.select([c], [], [], 0)
        out.append(bool(r) and c.recv(1, socket.MSG_PEEK) == b"")
    return out
time.sleep(1)
print("held %d refused %d" % (closed().count(False), closed().count(True)), flush=True)
t0 = time.monotonic()
while not all(closed()) and time.monotonic() - t0 < 30:
    time.sleep(0.1)
print("all closed %.1f s later" % (time.monotonic() - t0) if all(closed()) else "still open after 30 s",
      flush=True)
PY
	SILENT_PID=$!
	on_exit "kill $SILENT_PID 2>/dev/null || true"
	wait_for "$T/silent20" held 30
}

# ---- the fault tests (test-fault-*.sh) ----------------------------------------
# Each case of a fault test runs in a process of its own (fault_cases), on a
# fresh vm1: two vCPUs, one rewriting 8 MiB of memory, the other its 8 MiB raw
# disk ($T/disk.raw), both checking what they read back for ever. After the
# fault, the checks below say which host runs vm1 and that nothing is lost.

# fault_cases SCRIPT CASE...: runs `sh SCRIPT CASE` for each case (77 skips).
fault_cases() {
	script=$1
	shift
	for c in "$@"; do
		echo "=== $c"
		s=$(date +%s)
		set +e
		sh "$script" "$c"
		rc=$?
		set -e
		[ "$rc" = 77 ] && exit 77
		[ "$rc" = 0 ] || fail "case $c failed"
		echo "=== $c: ok ($(($(date +%s) - s)) s)"
	done
}

# fault_vm [STALL [RUN OPTS]]: vm1 started with the source's test hook
# SMOVE_TEST_STALL=STALL, once its guest has written its disk once. Its disk
# is given by a relative path (smove run is started in $T): a resolve from
# another directory must still find it. fault_vm_again starts vm1 anew on
# the same disk (as a person would after its process ended).
fault_vm() {
	truncate -s 8M "$T/disk.raw"
	[ -z "${1:-}" ] || export SMOVE_TEST_STALL="$1"
	[ $# = 0 ] || shift
	fault_vm_again "$@"
	unset SMOVE_TEST_STALL
}
fault_vm_again() {
	[ ! -e "$T/vm1.console" ] || mv "$T/vm1.console" "$T/vm1.console.$(date +%s%N)"
	cwd=$(pwd)
	cd "$T"
	start_vm vm1 --memory 64M --cpus 2 --disk disk.raw \
		--cmdline "mem=8M passes=0 disk=8M diskpasses=0 cpu0=mem cpu1=disk hb=5" "$@"
	cd "$cwd"
	wait_for "$T/vm1.console" "disk 0 pass 1 ok"
}

# kill_source: the source VM's process killed (SIGKILL; QEMU goes with it).
kill_source() {
	kill -9 "$VM_PID"
	wait "$VM_PID" 2>/dev/null || true
	for i in $(seq 100); do [ "$(ps_state src vm1)" != running ] && break; sleep 0.1; done
}

# disk_records_hold CONSOLE IMAGE: the raw IMAGE holds every record of the
# guest behind CONSOLE (8 MiB, fault_vm's): each block a sound record of the
# last pass the guest reported done, or of the pass after it (those a prefix:
# the guest writes in order): no write it completed is lost.
disk_records_hold() {
	k=$(grep -c "disk 0 pass [0-9]* ok" "$1" || true)
	/usr/bin/python3 - "$2" "$k" <<'PY' || fail "$2 lost writes the guest completed (pass $k done)"
import struct, sys, zlib
path, k = sys.argv[1], int(sys.argv[2])
newer, bad = True, []
with open(path, "rb") as f:
    for block in range(8 << 20 >> 12):
        rec = bytearray(f.read(4096))
        magic, blk, g, seed, crc = struct.unpack_from("<QQQQI", rec)
        struct.pack_into("<I", rec, 32, 0)
        ok = magic == 0x3130434552564D53 and blk == block and zlib.crc32(rec) == crc
        if ok and g == k + 1 and newer:
            continue
        newer = False
        if not ok or g != k:
            bad.append("block %d: %s, pass %d" % (block, "sound" if ok else "corrupt", g))
if bad:
    sys.exit("; ".join(bad[:5]) + " (%d bad blocks, pass %d done)" % (len(bad), k))
print("%s: every record of pass %d or %d, in order" % (path, k, k + 1))
PY
}

# fault_serve [STALL [SERVE OPTS]]: serve with the destination's test hook STALL.
fault_serve() {
	[ -z "${1:-}" ] || export SMOVE_TEST_STALL="$1"
	[ $# = 0 ] || shift
	start_serve "$@"
	unset SMOVE_TEST_STALL
}

# fault_move PHASE [MOVE OPTS]: serve and vm1 started with the test hooks
# (docs/migration.md) that hold a migration at PHASE, and vm1's move started
# (move_bg); returns once the migration is there. The phases:
#   preflight      PREFLIGHT received, not answered (dest-preflight)
#   storage        the disk's bulk copy, slowed down (--bandwidth 4, no hook)
#   synced         disks mirrored synchronously (source-storage)
#   round-1        after memory round 1 (source-memory)
#   round-3        after round 3 (source-round-3, --downtime-ms 1)
#   switchover     the source paused, before the last round (source-switchover)
#   ready-wait     the source paused, the state sent, not loaded there
#                  (dest-switchover)
#   before-resume  the destination ready, RESUME not sent (source-ready)
#   after-resume   RESUME received there, nothing done (dest-resume)
#   resume-sent    RESUME received there, the VM's process asked to resume,
#                  its answer not read (dest-resume-sent)
#   resuming       the VM's process there made its record "resuming", the VM
#                  not resumed (incoming-resuming: it waits there for ever)
#   before-running resumed there, RUNNING not sent (dest-running)
#   after-running  RUNNING received here, COMMIT not sent (source-running)
#   cleanup        COMMIT not sent, the source's files deleted, its record
#                  not yet (source-commit)
#   after-commit   COMMIT received there, not recorded (dest-commit)
fault_move() {
	src_stall="" dest_stall="" opts=""
	case $1 in
	preflight) dest_stall=dest-preflight ;;
	storage) opts="--bandwidth 4" ;;
	synced) src_stall=source-storage ;;
	round-1) src_stall=source-memory ;;
	round-3) src_stall=source-round-3 opts="--downtime-ms 1" ;;
	switchover) src_stall=source-switchover ;;
	ready-wait) dest_stall=dest-switchover ;;
	before-resume) src_stall=source-ready ;;
	after-resume) dest_stall=dest-resume ;;
	resume-sent) dest_stall=dest-resume-sent ;;
	resuming) dest_stall=incoming-resuming ;;
	before-running) dest_stall=dest-running ;;
	after-running) src_stall=source-running ;;
	cleanup) src_stall=source-commit ;;
	after-commit) dest_stall=dest-commit ;;
	*) fail "no phase $1" ;;
	esac
	shift
	fault_serve "$dest_stall"
	fault_vm "$src_stall"
	move_bg vm1 $opts "$@"
	if [ -n "$src_stall" ]; then
		wait_for "$T/vm1.run.err" "stalling at $src_stall"
	elif [ -n "$dest_stall" ]; then
		wait_for "$T/serve.err" "stalling at $dest_stall"
	else
		wait_for "$T/move.json" '"event":"progress"'
	fi
}

# expect_result STATUS RESULT [PATTERN]: the last move exited STATUS with the
# result RESULT, and its error matches PATTERN (grep -E).
expect_result() {
	expect_move "$1"
	[ "$(event 'd["result"]')" = "$2" ] || fail "the result is $(event 'd["result"]'), not $2"
	[ -z "${3:-}" ] || event 'd.get("error", "")' | grep -Eq -- "$3" ||
		fail "the result's error '$(event 'd.get("error", "")')' does not match '$3'"
}

# guest_goes_on CONSOLE: the guest behind CONSOLE completes two more memory
# passes and two more disk passes, and never found a broken invariant: the
# second of each began after this was called, so it read back every page and
# every disk record (a pass checks what the one before wrote).
guest_goes_on() {
	mem=$(grep -c "mem pass" "$1" || true)
	disk=$(grep -c "disk 0 pass" "$1" || true)
	for i in $(seq 600); do
		grep -q FAIL "$1" && break
		[ "$(grep -c "mem pass" "$1")" -ge $((mem + 2)) ] &&
			[ "$(grep -c "disk 0 pass" "$1")" -ge $((disk + 2)) ] && break
		sleep 0.1
	done
	! grep FAIL "$1" || fail "the guest found a broken invariant"
	[ "$(grep -c "mem pass" "$1")" -ge $((mem + 2)) ] &&
		[ "$(grep -c "disk 0 pass" "$1")" -ge $((disk + 2)) ] ||
		fail "the guest's programs do not go on ($1)"
}

# guest_mem_goes_on CONSOLE: the memory program of the guest behind CONSOLE
# checks one more pass (every page of its pattern) and finds nothing wrong.
guest_mem_goes_on() {
	mem=$(grep -c "mem pass" "$1" || true)
	for i in $(seq 300); do
		grep -q FAIL "$1" && break
		[ "$(grep -c "mem pass" "$1")" -ge $((mem + 1)) ] && break
		sleep 0.1
	done
	! grep FAIL "$1" || fail "the guest found a stale or lost page after the migration"
	[ "$(grep -c "mem pass" "$1")" -ge $((mem + 1)) ] ||
		fail "the memory program does not go on after the migration"
}

# ps_state HOST NAME: NAME's state in `smove ps` on HOST (src or dst), or none.
ps_state() {
	"$1" ps | awk -v n="$2" '$1 == n { print $3; f = 1 } END { if (!f) print "none" }'
}

# on_source: vm1 runs on the source only, with its disk and without a record
# of a migration in doubt; its guest goes on; the destination (a serve
# started anew if it was killed: it discards what a crash left) has nothing.
on_source() {
	runs "$T/src/vm1.sock"
	[ -e "$T/disk.raw" ] || fail "the source's disk is gone"
	[ ! -e "$T/src-state/vm1.migration" ] || fail "the source still has a record in doubt"
	[ "$(ps_state src vm1)" = running ] || fail "smove ps on the source: vm1 $(ps_state src vm1)"
	kill -0 "$SERVE_PID" 2>/dev/null || start_serve
	for i in $(seq 100); do [ -e "$T/dst/vm1.json" ] || break; sleep 0.1; done
	[ "$(ps_state dst vm1)" = none ] || fail "smove ps on the destination: vm1 $(ps_state dst vm1)"
	[ ! -e "$T/store/vm1" ] || { ls -la "$T/store/vm1"; fail "the destination kept store/vm1"; }
	! pgrep -f "file=$T/store" >/dev/null || fail "an nbdkit export is left"
	! ls "$T/store/.smove-sessions" 2>/dev/null | grep -q psk || fail "an NBD key is left"
	for f in "$T"/store/.smove-sessions/*.json; do
		[ -e "$f" ] || continue
		grep -q '"aborted"' "$f" || fail "a record does not say aborted: $(cat "$f")"
	done
	guest_goes_on "$T/vm1.console"
}

# on_destination [killed]: vm1 runs on the destination only, its disk under
# its final name; the source's process ended (exit 0, unless the test killed
# it), its disk and records gone; the guest goes on.
on_destination() {
	for i in $(seq 100); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$VM_PID" 2>/dev/null || fail "the source's VM process still runs"
	[ "${1:-}" = killed ] || wait "$VM_PID" || fail "the source's smove run did not exit 0"
	[ ! -e "$T/disk.raw" ] || fail "the source's disk is still there"
	[ ! -e "$T/src-state/vm1.migration" ] || fail "the source's record is still there"
	[ "$(ps_state src vm1)" = none ] || fail "smove ps on the source: vm1 $(ps_state src vm1)"
	runs "$T/dst/vm1.sock"
	[ "$(ps_state dst vm1)" = running ] || fail "smove ps on the destination: vm1 $(ps_state dst vm1)"
	[ -e "$T/store/vm1/disk.raw" ] || fail "the destination's disk has not its final name"
	! ls -A "$T/store/vm1" | grep -q smove-tmp || fail "temporary files left on the destination"
	guest_goes_on "$T/store/vm1/console.log"
}

# in_doubt: the last move ended in doubt: vm1 paused on the source with all
# its files and its record, refusing to resume or to move.
in_doubt() {
	expect_result 6 in-doubt
	[ "$(event 'd["resolve"]')" = "smove move --resolve vm1" ] || fail "the result does not say how to settle it"
	[ "$(ps_state src vm1)" = in-doubt ] || fail "smove ps on the source: vm1 $(ps_state src vm1)"
	ctl "$T/src/vm1.sock" '{"cmd":"resume"}' | grep -q '"ok":false' || fail "the source VM could be resumed"
	[ -e "$T/disk.raw" ] || fail "the source's disk is gone while in doubt"
	[ -e "$T/src-state/vm1.migration" ] || fail "no record of the migration in doubt"
	move vm1
	expect_move 1
	cat "$T/move.json" "$T/move.err" | grep -q "in doubt" || fail "a move in doubt is not refused as such"
}
