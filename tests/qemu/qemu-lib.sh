# tests/qemu/qemu-lib.sh: helpers for the QEMU runtime's tests. Source it after
# tests/functions.sh. They run QEMU under TCG when there is no /dev/kvm, and
# boot the built-in freestanding test guest (memsync/guest/guest32.elf).
#   QEMU_VM                      the driver (tests/qemu/qemu-vm)
#   requires_qemu                skip without qemu-system-x86_64 or the guest
#   vm_config FILE NAME CMDLINE [DISK [FORMAT]] [EXTRA-JSON]
#                                writes a configuration for the test guest
#   check_disk DISK FMT SIZE GEN the guest's records of pass GEN (check-records.py)
QEMU_VM="$abs_top_builddir/tests/qemu/qemu-vm"
GUEST32="$abs_top_builddir/memsync/guest/guest32.elf"
# The runtime directories go to the test's scratch directory.
SMOVE_RUNTIME_DIR="$T/run"
export SMOVE_RUNTIME_DIR

requires_qemu() {
	requires qemu-system-x86_64 qemu-img
	[ -f "$GUEST32" ] || skip "no test guest ($GUEST32): run make"
}

vm_config() {
	_disks="[]"
	if [ -n "${4:-}" ]; then
		_disks="[{\"path\": \"$4\", \"format\": \"${5:-auto}\"}]"
	fi
	cat >"$1" <<JSON
{"runtime": "qemu", "name": "$2", "accel": "${QEMU_ACCEL:-auto}", "memory": ${QEMU_MEMORY:-134217728},
 "cpus": ${QEMU_CPUS:-1}, "kernel": "$GUEST32", "cmdline": "$3", "console": "$1.console",
 "disks": $_disks ${6:+, $6}}
JSON
}

check_disk() {
	case $2 in
	raw) _raw=$1 ;;
	*)
		_raw="$1.check.raw"
		rm -f "$_raw"
		qemu-img convert -f "$2" -O raw "$1" "$_raw"
		;;
	esac
	/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$_raw" "$3" "$4" ||
		fail "the guest's records on $1 are not all of pass $4"
}
