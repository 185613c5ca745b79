#!/bin/sh
# qemu/guest/mkuefi-vhdx.sh KERNEL INITRAMFS CMDLINE OUT.vhdx: a VHDX that
# UEFI firmware (OVMF) boots into the Linux test guest. A unified kernel image
# (systemd-boot's EFI stub with the kernel, initramfs, command line and an
# os-release added as PE sections) is the ESP's removable-media loader
# \EFI\BOOT\BOOTX64.EFI; the ESP (FAT, mtools: no mount, no root) is the one
# partition of a GPT disk, converted to VHDX by qemu-img.
# Needs objcopy, systemd-boot-efi, dosfstools, mtools, gdisk and qemu-img;
# EFI_STUB names another stub.
set -eu
kernel=$1
initramfs=$2
cmdline=$3
out=$4
stub=${EFI_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}
[ -f "$stub" ] || { echo "mkuefi-vhdx: no EFI stub $stub (apt-get install systemd-boot-efi)" >&2; exit 1; }
tmp="$out.tmp.d"
rm -rf "$tmp"
mkdir -p "$tmp"
hex() { printf '0x%x' "$1"; }

# The sections go after the stub's image, each at a 64 KiB boundary.
size=$(objdump -p "$stub" | awk '/^SizeOfImage/ {print "0x" $2}')
osrel=$(((size + 0xffff) & ~0xffff))
cmd=$((osrel + 0x10000))
linux=$((cmd + 0x10000))
initrd=$(((linux + $(stat -c %s "$kernel") + 0xffff) & ~0xffff))
printf 'NAME="smove test guest"\nID=smove-test-guest\n' >"$tmp/os-release"
printf '%s' "$cmdline" >"$tmp/cmdline"
objcopy --add-section .osrel="$tmp/os-release" --change-section-vma .osrel="$(hex $osrel)" \
	--add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline="$(hex $cmd)" \
	--add-section .linux="$kernel" --change-section-vma .linux="$(hex $linux)" \
	--add-section .initrd="$initramfs" --change-section-vma .initrd="$(hex $initrd)" \
	"$stub" "$tmp/uki.efi"

# The ESP: the image and 2 MiB to spare, in KiB as mkfs.vfat counts.
kib=$(($(stat -c %s "$tmp/uki.efi") / 1024 + 2048))
mkfs.vfat -C -n SMOVE-ESP "$tmp/esp.img" "$kib" >/dev/null
mmd -i "$tmp/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$tmp/esp.img" "$tmp/uki.efi" ::/EFI/BOOT/BOOTX64.EFI

# GPT: the ESP from 1 MiB, the disk a whole number of MiB with room for the
# backup table at its end.
sectors=$((kib * 2))
mib=$(((2048 + sectors + 2048 + 2047) / 2048))
truncate -s "${mib}M" "$tmp/disk.raw"
sgdisk -n "1:2048:+$sectors" -t 1:EF00 -c 1:ESP "$tmp/disk.raw" >/dev/null
dd if="$tmp/esp.img" of="$tmp/disk.raw" bs=512 seek=2048 conv=notrunc status=none
qemu-img convert -f raw -O vhdx "$tmp/disk.raw" "$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$tmp"
