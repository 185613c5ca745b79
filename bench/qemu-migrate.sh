#!/bin/sh
# bench/qemu-migrate.sh: issue 10's benchmark. The same Linux test guest
# (qemu/guest/: 1 GiB of RAM, a 256 MiB working set rewritten at 64 MiB/s,
# O_DIRECT|O_SYNC records on its disk) moved live with its disk
#   (a) by smove's QEMU runtime, its disk a VHDX: `smove serve` and `smove
#       move`, TLS-PSK;
#   (b) by plain QEMU the way libvirt's `virsh migrate --live
#       --copy-storage-all` does it: the destination `-incoming defer -S` with
#       an NBD server of its own exporting an empty raw image of the same
#       size, the source blockdev-mirror sync=full to it, BLOCK_JOB_READY,
#       migrate (pause-before-switchover, as libvirt always sets it), the
#       mirror cancelled at pre-switchover (a READY mirror so ends with a
#       consistent copy), migrate-continue, nbd-server-stop and cont there.
#       QEMU refuses to migrate a VM with a VHDX open: its disk is raw.
# Both in the same run, interleaved (smove first in odd runs, QEMU first in
# even ones), over a veth pair between two network namespaces (loopback
# without them), with the same machine, CPU model, RAM (under TCG the size
# + 8 KiB that smove's runtime gives QEMU so that QEMU 7.2's live pre-copy is
# correct: plain QEMU gets it too), downtime limit (300 ms), bandwidth (no
# limit: 100 GiB/s) and auto-converge. Each run is judged by the guest's own
# checks after the move (bench/qemu-migrate.py): a damaged guest is a failed
# run, not a number. The machine's load is recorded before and after each
# run. bench/qemu-migrate.py prints the table: medians and spread, and the
# ratios smove/QEMU.
#
# Run as root from the build directory (or set abs_top_builddir), after make.
#   RUNS=N (5) runs of each; TOOLS="smove qemu" (either alone; smove-alt:
#   the smove executable SMOVE_ALT, e.g. another build with a change to
#   measure, serve staying this build's; smove-quick: smove move --quick,
#   the memory in one pass with the guest paused); SETTLE=S (3) seconds between the guest's first
#   pass and the move; QEMU_TLS=1 gives plain QEMU TLS-PSK too (migration and
#   NBD; libvirt's default, and this bench's, is without); COPY_MODE=
#   write-blocking makes QEMU's mirror synchronous as smove's is (libvirt's
#   --copy-storage-synchronous-writes; default background); AUTO_CONVERGE=0;
#   DISK_SIZE (1G) and DISK_DATA (128M: data written into the image before
#   the guest boots, after the guest's own 16 MiB of records); ACCEL (tcg;
#   kvm where /dev/kvm works); PERF=DIR records each move with `perf record
#   -a -g` into DIR/TOOL-RUN.perf.data (the whole machine: report with
#   --comm or --pid; PERF_EVENTS=E1,E2 records those events instead, e.g.
#   sched:sched_switch: when each vCPU thread last ran and first ran again);
#   KEEP=1 keeps the scratch directory
#   (results.jsonl holds every run with its phases and rounds).
set -eu
B=${abs_top_builddir:-$(pwd)}
S=$(cd "$(dirname "$0")/.." && pwd)
SMOVE=$B/cmd/smove
RUNS=${RUNS:-5}
K="$B/qemu/guest/linux/vmlinuz"
I="$B/qemu/guest/initramfs.cpio"
PY="/usr/bin/python3 $S/bench/qemu-migrate.py"
[ -x "$SMOVE" ] && [ -f "$K" ] && [ -f "$I" ] || {
	echo "build first, and run from the build directory (no $K or $I:" \
		"$(cat "$B/qemu/guest/linux/kernel.missing" 2>/dev/null))" >&2
	exit 1
}
command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64" >&2; exit 1; }
command -v psktool >/dev/null || { echo "no psktool (gnutls-bin)" >&2; exit 1; }
if [ -z "${ACCEL:-}" ]; then
	ACCEL=tcg
	[ -w /dev/kvm ] && ACCEL=kvm
fi
T=$(mktemp -d "${TMPDIR:-/var/tmp}/smove-bench-qemu.XXXXXX")
NS_SRC=smqb-src-$$
NS_DST=smqb-dst-$$
SERVE=
cleanup() {
	[ -z "$SERVE" ] || kill "$SERVE" 2>/dev/null || true
	ip netns del "$NS_SRC" 2>/dev/null || true
	ip netns del "$NS_DST" 2>/dev/null || true
	[ "${KEEP:-0}" = 1 ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$T/src" "$T/dst" "$T/store" "$T/psk"
export SMOVE_NBDKIT_PLUGIN="$B/storage/nbdkit/.libs/nbdkit-smove-plugin.so"
psktool -u smove -p "$T/psk/keys.psk" >/dev/null 2>&1

if [ "$(id -u)" = 0 ] && ip netns add "$NS_SRC" 2>/dev/null && ip netns add "$NS_DST" &&
	ip -n "$NS_SRC" link add va type veth peer name vb netns "$NS_DST" &&
	ip -n "$NS_SRC" addr add 10.252.0.1/24 dev va && ip -n "$NS_DST" addr add 10.252.0.2/24 dev vb &&
	ip -n "$NS_SRC" link set va up && ip -n "$NS_DST" link set vb up &&
	ip -n "$NS_SRC" link set lo up && ip -n "$NS_DST" link set lo up; then
	ADDR=10.252.0.2 NSS=$NS_SRC NSD=$NS_DST
	LINK="a veth pair between two network namespaces"
else
	echo "no network namespaces here: loopback" >&2
	ADDR=127.0.0.1 NSS= NSD=
	LINK="loopback (no namespaces)"
fi
in_bg() { ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@" & else "$@" & fi; }

# The disk: DISK_SIZE, the guest's records at its start (it writes them), and
# DISK_DATA of data after them that both mirrors must copy. The same bytes as
# a VHDX (smove) and raw (QEMU).
DISK_SIZE=${DISK_SIZE:-1G}
DISK_DATA=${DISK_DATA:-128M}
truncate -s "$DISK_SIZE" "$T/base.raw"
dd if=/dev/urandom of="$T/base.raw" bs=1M seek=64 count=$(($(numfmt --from=iec "$DISK_DATA") >> 20)) \
	conv=notrunc status=none
"$SMOVE" disk convert --to vhdx "$T/base.raw" "$T/base.vhdx" >/dev/null

# NBD_NO_CHACHA=1: serve (and the nbdkit exports it starts) with GnuTLS's
# ChaCha20-Poly1305 disabled (GNUTLS_SYSTEM_PRIORITY_FILE), so that the disks'
# NBD connections negotiate AES-GCM: GnuTLS's NORMAL, which nbdkit and libnbd
# use, picks ChaCha20 on these machines, 18 times slower here (gnutls-cli
# --benchmark-ciphers: 0.24 GB/s against 4.4 GB/s for AES-128-GCM). Not
# smove as it ships: a measure of the change proposed for it.
SERVE_ENV=
if [ "${NBD_NO_CHACHA:-0}" = 1 ]; then
	printf '[overrides]\ntls-disabled-cipher = CHACHA20-POLY1305\n' >"$T/gnutls.cfg"
	SERVE_ENV="GNUTLS_SYSTEM_PRIORITY_FILE=$T/gnutls.cfg"
fi
PORT=$((40000 + $$ % 20000))
in_bg "$NSD" env $SERVE_ENV SMOVE_RUNTIME_DIR="$T/dst" SMOVE_STATE_DIR="$T/dst" "$SMOVE" serve \
	--listen "$ADDR:$PORT" --storage "$T/store" --tls-psk "$T/psk/keys.psk" --json \
	>"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
for i in $(seq 100); do grep -qs listening "$T/serve.out" && break; sleep 0.1; done
grep -q listening "$T/serve.out" || { cat "$T/serve.err" >&2; exit 1; }

info() { /usr/bin/python3 -c 'import json,sys; print(json.dumps({"kind":"info","text":sys.argv[1]}))' "$1" >>"$T/results.jsonl"; echo "$1"; }
info "$(qemu-system-x86_64 --version | head -n 1); $(nproc) CPUs; /dev/kvm: $([ -e /dev/kvm ] && echo yes || echo no); accel $ACCEL"
info "link: $LINK; guest: 1 GiB RAM ($( [ "$ACCEL" = tcg ] && echo "1048584 KiB under TCG, both" || echo "1 GiB")), smove.mem=256M at 64 MiB/s, disk $DISK_SIZE with $DISK_DATA of data + 16 MiB of records rewritten"
info "QEMU: copy-mode ${COPY_MODE:-background}, TLS $([ "${QEMU_TLS:-0}" = 1 ] && echo PSK || echo none), auto-converge ${AUTO_CONVERGE:-1}; smove: TLS-PSK$([ "${NBD_NO_CHACHA:-0}" = 1 ] && echo ", its NBD without ChaCha20 (NBD_NO_CHACHA=1: not as shipped)")"
info "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

one() { # TOOL RUN
	l0=$(cut -d' ' -f1 /proc/loadavg)
	tool=$1 run=$2
	case $1 in
	smove-alt) set -- smove --label smove-alt --smove "$SMOVE_ALT" ;;
	smove-quick) set -- smove --label smove-quick --smove "$SMOVE" --quick ;;
	*) set -- "$1" --smove "$SMOVE" ;;
	esac
	$PY "$@" --run "$run" --kernel "$K" --initrd "$I" --vhdx "$T/base.vhdx" \
		--raw "$T/base.raw" --accel "$ACCEL" --addr "$ADDR" --port "$PORT" --ns-src "$NSS" \
		--ns-dst "$NSD" --tmp "$T" --src-dir "$T/src" --dst-dir "$T/dst" --store "$T/store" \
		--serve-pid "$SERVE" --serve-err "$T/serve.err" --psk "$T/psk/keys.psk" \
		--settle "${SETTLE:-3}" --qemu-tls "${QEMU_TLS:-0}" --copy-mode "${COPY_MODE:-background}" \
		--auto-converge "${AUTO_CONVERGE:-1}" ${KEEP:+--keep} ${PERF:+--perf "$PERF"} \
		${PERF_EVENTS:+--perf-events "$PERF_EVENTS"} >"$T/one.json" || true
	l1=$(cut -d' ' -f1 /proc/loadavg)
	/usr/bin/python3 -c 'import json,sys
try:
    r=json.load(open(sys.argv[1]))
except ValueError:
    r={"kind":"run","tool":sys.argv[4],"run":int(sys.argv[5]),"error":"the driver failed (see above)"}
r["load_before"]=float(sys.argv[2]); r["load_after"]=float(sys.argv[3])
print(json.dumps(r))' "$T/one.json" "$l0" "$l1" "$tool" "$run" | tee -a "$T/results.jsonl" |
		/usr/bin/python3 -c 'import json,sys
r=json.loads(sys.stdin.read())
print("run %d %-5s load %.1f->%.1f: %s" % (r["run"], r["tool"], r["load_before"], r["load_after"],
      ("FAILED: " + r["error"]) if "error" in r else
      "total %.2f s, downtime %.0f ms (QEMU: %s), gap %.0f ms, %.0f MB (wire %.0f), phases %s" % (
      r["total_s"], r["downtime_ms"], r.get("qemu_downtime_ms"), r["gap_ms"], r["bytes"] / 1e6,
      r["wire_bytes"] / 1e6, r["phases_s"])))'
}
TOOLS=${TOOLS:-smove qemu}
for i in $(seq "$RUNS"); do
	if [ $((i % 2)) = 1 ]; then
		order=$TOOLS
	else
		order=$(echo "$TOOLS" | tr ' ' '\n' | tac | tr '\n' ' ')
	fi
	for t in $order; do one "$t" "$i"; done
done
info "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
$PY table "$T/results.jsonl"
