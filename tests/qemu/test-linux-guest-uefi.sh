#!/bin/sh
# The Linux test guest boots by UEFI from a VHDX served by smove's nbdkit
# plugin: the test builds a GPT disk whose ESP holds a unified kernel image
# (systemd-boot's stub with the same kernel and initramfs,
# qemu/guest/mkuefi-vhdx.sh), converts it to VHDX with qemu-img, and serves
# it read-only with `nbdkit smove`; OVMF boots it under TCG. The checker
# writes its records to a second VHDX (made by `smove disk create`, served
# read-write by the plugin too), and the host then finds every record of the
# last pass in it, as QEMU's vhdx driver reads the image.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/linux-guest.sh"
requires_linux_guest
requires nbdkit qemu-img objcopy objdump sgdisk mkfs.vfat mmd mcopy
OVMF=${OVMF:-/usr/share/ovmf/OVMF.fd}
[ -f "$OVMF" ] || skip "no OVMF firmware at $OVMF (apt-get install ovmf)"
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || skip "no EFI stub (apt-get install systemd-boot-efi)"
PLUGIN="$abs_top_builddir/storage/nbdkit/.libs/nbdkit-smove-plugin.so"
[ -f "$PLUGIN" ] || fail "the nbdkit plugin is not built: $PLUGIN"
# nbdkit is not instrumented: under the sanitizers it preloads the plugin's runtime.
serve() {
	if [ "${SMOVE_SANITIZERS:-no}" = yes ]; then
		LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
			ASAN_OPTIONS=detect_leaks=0 nbdkit "$@"
	else
		nbdkit "$@"
	fi
}

sh "$abs_top_srcdir/qemu/guest/mkuefi-vhdx.sh" "$LINUX_KERNEL" "$LINUX_INITRAMFS" \
	"console=ttyS0 quiet panic=-1 smove.mem=8M smove.passes=2 smove.disk=8M smove.diskpasses=2 smove.diskdev=/dev/vdb smove.hb=5" \
	"$T/boot.vhdx"
qemu-img check -f vhdx "$T/boot.vhdx" >/dev/null || fail "qemu-img check finds problems in the boot VHDX"
sum=$(md5sum <"$T/boot.vhdx")
"$SMOVE" disk create --size 16M "$T/records.vhdx" >/dev/null
serve -r -U "$T/boot.sock" -P "$T/boot.pid" "$PLUGIN" file="$T/boot.vhdx"
on_exit "kill \$(cat $T/boot.pid) 2>/dev/null || true"
serve -U "$T/rec.sock" -P "$T/rec.pid" "$PLUGIN" file="$T/records.vhdx"
on_exit "kill \$(cat $T/rec.pid) 2>/dev/null || true"

start=$(date +%s)
linux_uefi() {
	timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 256 -nodefaults -no-reboot \
		-display none -bios "$OVMF" -serial "file:$T/uefi.console" \
		-drive "file=nbd+unix:///?socket=$T/boot.sock,format=raw,if=none,id=boot,readonly=on" \
		-device virtio-blk-pci,drive=boot,bootindex=1 \
		-drive "file=nbd+unix:///?socket=$T/rec.sock,format=raw,if=none,id=rec" \
		-device virtio-blk-pci,drive=rec
}
linux_uefi 2>"$T/qemu.err" || { cat "$T/qemu.err" >&2; fail "QEMU did not exit 0"; }
echo "firmware, boot from the VHDX, checks and power-off in $(($(date +%s) - start)) s"
tr -d '\r' <"$T/uefi.console" >"$T/console"
grep -q "^smove-checker: .*smove.diskdev=/dev/vdb" "$T/console" ||
	{ tail -c 2000 "$T/console" >&2; fail "the UKI's kernel did not run the checker"; }
grep -q "^disk 0: 8 MiB x 2 passes verified" "$T/console" || fail "no disk check"
grep -q "^mem 0: 8 MiB x 2 passes" "$T/console" || fail "no memory check"
guest_ok "$T/console"
# Both exports end: nbdkit has flushed and closed the images.
pids="$(cat "$T/boot.pid") $(cat "$T/rec.pid")"
kill $pids
for i in $(seq 100); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
[ "$(md5sum <"$T/boot.vhdx")" = "$sum" ] || fail "the read-only boot VHDX changed"
qemu-img check -f vhdx "$T/records.vhdx" >/dev/null || fail "qemu-img check finds problems in the records VHDX"
qemu-img convert -f vhdx -O raw "$T/records.vhdx" "$T/records.raw"
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/records.raw" 8M 2
