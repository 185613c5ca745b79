#!/bin/sh
# bench/qemu-tcg-precopy.sh: can QEMU 7.2's live pre-copy be trusted under
# TCG? Plain QEMU migrations of the Linux test guest (qemu/guest/), busy with
# its memory pattern and O_DIRECT disk records, each judged by the guest's
# own check after the move (bench/qemu-tcg-precopy.py does one row; the
# outcomes are counted). Not part of `make check`: it takes minutes. The
# findings are in docs/design.md, "QEMU under TCG: can live pre-copy be
# trusted?".
#
# Run from the build directory (or set abs_top_builddir), after `make`.
#   bench/qemu-tcg-precopy.sh [ROW...]   rows by name (default: all)
#   RUNS=N (10) runs per row; KEEP=1 keeps the files of each bad run.
# Rows:
#   live          -m 256M: pc.ram is a whole number of 256 KiB, so QEMU's
#                 bitmap sync takes its 64-pages-at-a-time fast path
#   live-odd      -m 262152k (256 MiB + 8 KiB): the same guest, pc.ram not
#                 a multiple of 256 KiB, so the sync takes the page-by-page
#                 path, which resets the TCG TLBs' dirty state
#   stop          stop-and-copy (QMP stop before migrate), -m 256M
#   live-single   -accel tcg,thread=single
#   live-smp2     -smp 2, two memory threads
#   live-nodisk   memory only
#   live-cachenone  cache=none on the disk
#   live-shift    migration's x-clear-bitmap-shift at its minimum (18)
#   live-odd-smp2 live-odd with -smp 2 and two memory threads
#   live-odd-single, live-odd-cachenone  live-odd with thread=single, cache=none
#   live-nodisk-big  memory only, a 160 MiB pattern rewritten at 64 MiB/s
#                 (more of the lost pages fall in the checker's memory than in
#                 the kernel's; flat out, it does not converge)
#   live-hot, live-odd-hot  memory only, a 256 KiB pattern rewritten flat
#                 out: a working set that stays in the TCG TLB, so that the
#                 checker, not only the kernel, meets the stale pages
#   live-cpumax, live-odd-cpumax  -cpu max (PCID and all TCG can do)
#   live-1g, live-odd-1g  1 GiB guests (-m 1G, -m 1048584k), a 256 MiB
#                 pattern at 64 MiB/s: what the page-by-page sync costs
set -eu
B=${abs_top_builddir:-$(pwd)}
S=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-10}
K="$B/qemu/guest/linux/vmlinuz"
I="$B/qemu/guest/initramfs.cpio"
[ -f "$K" ] && [ -f "$I" ] || {
	echo "no Linux test guest in $B: run make there ($(cat "$B/qemu/guest/linux/kernel.missing" 2>/dev/null))" >&2
	exit 1
}
command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64" >&2; exit 1; }
echo "# $(qemu-system-x86_64 --version | head -n 1), $(nproc) CPUs, kvm: $([ -e /dev/kvm ] && echo yes || echo no)"
row() {
	label=$1
	shift
	/usr/bin/python3 "$S/bench/qemu-tcg-precopy.py" --kernel "$K" --initramfs "$I" \
		--check-records "$S/tests/memsync/check-records.py" --runs "$RUNS" --label "$label" \
		${KEEP:+--keep} "$@"
}
ROWS=${*:-live live-odd stop live-single live-smp2 live-nodisk live-cachenone live-shift live-odd-smp2 \
	live-odd-single live-odd-cachenone live-nodisk-big live-hot live-odd-hot live-cpumax live-odd-cpumax \
	live-1g live-odd-1g}
for r in $ROWS; do
	case $r in
	live) row live ;;
	live-odd) row live-odd --memory 262152k ;;
	stop) row stop --mode stop ;;
	live-single) row live-single --accel tcg,thread=single ;;
	live-smp2) row live-smp2 --smp 2 --memthreads 2 ;;
	live-nodisk) row live-nodisk --no-disk ;;
	live-cachenone) row live-cachenone --cache none ;;
	live-shift) row live-shift --global migration.x-clear-bitmap-shift=18 ;;
	live-odd-smp2) row live-odd-smp2 --memory 262152k --smp 2 --memthreads 2 ;;
	live-odd-single) row live-odd-single --memory 262152k --accel tcg,thread=single ;;
	live-odd-cachenone) row live-odd-cachenone --memory 262152k --cache none ;;
	live-nodisk-big) row live-nodisk-big --no-disk --mem 160M --rate 64 ;;
	live-hot) row live-hot --no-disk --mem 256K ;;
	live-odd-hot) row live-odd-hot --no-disk --mem 256K --memory 262152k ;;
	live-cpumax) row live-cpumax --cpu max ;;
	live-odd-cpumax) row live-odd-cpumax --cpu max --memory 262152k ;;
	live-1g) row live-1g --memory 1G --mem 256M --rate 64 ;;
	live-odd-1g) row live-odd-1g --memory 1048584k --mem 256M --rate 64 ;;
	*) echo "unknown row $r" >&2; exit 1 ;;
	esac
done
