#!/bin/sh
# The QEMU runtime boots the test guest under TCG (KVM where /dev/kvm works)
# with a VHDX disk that smove serves to QEMU over its in-process NBD server:
# the status names the accelerator, QEMU's version, the versioned machine and
# the CPU model; a second VM cannot take the disk; the guest's heartbeat and
# disk records go on; paused, nothing moves (heartbeat, disk requests); a
# resume block refuses a resume; resumed, the guest reaches its verdict;
# stopped, QEMU exits; every record on the image is the guest's last pass.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/qemu-lib.sh"
requires_qemu
cd "$T"
"$SMOVE" disk create --size 8M disk.vhdx >/dev/null
vm_config vm.json boot1 "mem=16M passes=20 disk=4M diskpasses=20 hb=20 hbprint=5" "$T/disk.vhdx" vhdx
timeout 600 "$QEMU_VM" boot vm.json >out 2>err || { cat out err; fail "qemu-vm boot"; }
cat out
if [ -e /dev/kvm ]; then
	grep -q "accel kvm\|accel tcg" out || fail "no accelerator in the status"
else
	grep -q "^created: .* accel tcg " out || fail "without /dev/kvm the accelerator is not tcg"
fi
grep -q "^created: .*machine pc-q35-[0-9.]* cpu Nehalem-v1" out || fail "machine or CPU model"
grep -q '"machine":"pc-q35-' out || fail "the recorded configuration lacks the versioned machine"
grep -q '"size":8388608' out || fail "the recorded configuration lacks the disk's size"
grep -q "^second VM refused: .*in use" out || fail "a second VM on the same disk was not refused"
grep -q "^verdict: ok" vm.json.console || fail "the console log has no verdict"
[ -z "$(ls "$T/run")" ] || fail "the runtime directory was left: $(ls "$T/run")"
check_disk disk.vhdx vhdx 4M 20
qemu-img check -f vhdx disk.vhdx >/dev/null || fail "qemu-img check"
echo PASS
