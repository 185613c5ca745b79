# tests/qemu/linux-guest.sh: the Linux test guest (qemu/guest/) under QEMU, for
# the tests. Source it after tests/functions.sh.
#   requires_linux_guest     skip unless `make` built the kernel and initramfs
#                            (the reason it could not, otherwise)
#   linux_qemu NAME ARGS...  qemu-system-x86_64 -machine q35 -accel tcg -m 256
#                            with the guest's kernel, initramfs and console:
#                            the command line is $APPEND (smove.* words), the
#                            console a Unix socket $T/NAME.sock (send_console)
#                            logged to $T/NAME.console; ARGS add devices
#   linux_disk NAME FILE     ARGS for a virtio-blk disk on a raw FILE
#   send_console NAME LINE   LINE to the guest's console (e.g. "finish")
#   wait_for FILE PATTERN [S]  until FILE matches (grep -E), S seconds (60)
#   guest_ok FILE            the console FILE has "verdict: ok" and no FAIL
# SMOVE_LINUX_GUEST_DIR: another build tree's qemu/guest (the sanitizer
# tree, which builds no guest of its own, uses the main tree's).
LINUX_GUEST_DIR=${SMOVE_LINUX_GUEST_DIR:-$abs_top_builddir/qemu/guest}
LINUX_DIR="$LINUX_GUEST_DIR/linux"
LINUX_KERNEL="$LINUX_DIR/vmlinuz"
LINUX_INITRAMFS="$LINUX_GUEST_DIR/initramfs.cpio"

requires_linux_guest() {
	requires qemu-system-x86_64
	if [ ! -f "$LINUX_KERNEL" ] || [ ! -f "$LINUX_INITRAMFS" ]; then
		[ -f "$LINUX_DIR/kernel.missing" ] &&
			skip "no Linux test guest: $(cat "$LINUX_DIR/kernel.missing")"
		skip "no Linux test guest: run make (qemu/guest/local.mk builds it)"
	fi
}

linux_qemu() {
	name=$1
	shift
	timeout "${LINUX_TIMEOUT:-120}" qemu-system-x86_64 -machine q35 -accel "${LINUX_ACCEL:-tcg}" \
		-m "${LINUX_MEMORY:-256}" -nodefaults -no-reboot -display none \
		-chardev "socket,id=con,path=$T/$name.sock,server=on,wait=off,logfile=$T/$name.console" \
		-serial chardev:con \
		-kernel "$LINUX_KERNEL" -initrd "$LINUX_INITRAMFS" \
		-append "console=ttyS0 quiet panic=-1 $APPEND" "$@"
}

linux_disk() {
	echo "-drive file=$2,format=raw,if=none,id=$1,cache=${LINUX_CACHE:-writeback} -device virtio-blk-pci,drive=$1"
}

send_console() {
	/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
s.close()' "$T/$1.sock" "$2"
}

wait_for() {
	for i in $(seq $((${3:-60} * 10))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "--- $1:" >&2
	tail -20 "$1" >&2 || true
	fail "timed out waiting for '$2' in $1"
}

guest_ok() {
	if grep FAIL "$1" >&2 || ! grep -q "^verdict: ok" "$1"; then
		grep -v '^hb ' "$1" | tail -20 >&2
		fail "the guest's checker did not find every invariant intact ($1)"
	fi
}
