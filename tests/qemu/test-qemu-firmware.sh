#!/bin/sh
# Firmware boots through the runtime: SeaBIOS boots the VM's first disk (its
# boot sector, read through smove's NBD server, prints on COM1); OVMF (where
# the ovmf package is installed) starts with its code read-only and a
# variable store made for the VM from the template, reaches its shell, and a
# "reset -s" typed on the console (qemu_vm_console_send) powers the guest
# off: qemu_vm_wait reports the guest's own shutdown.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/qemu-lib.sh"
requires_qemu
cd "$T"
qemu-img create -q -f raw boot.raw 1M
/usr/bin/python3 "$abs_top_srcdir/tests/qemu/mbr.py" boot.raw
cat >bios.json <<JSON
{"runtime": "qemu", "name": "bios", "memory": 134217728, "firmware": "bios",
 "console": "$T/bios.console", "disks": [{"path": "$T/boot.raw", "format": "raw"}]}
JSON
timeout 600 "$QEMU_VM" console bios.json smove-mbr-ok >out 2>&1 || { cat out; fail "BIOS boot from the disk"; }
grep -q smove-mbr-ok bios.console || fail "no boot sector output in the console log"

ovmf=""
for f in /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd; do
	[ -f "$f" ] && ovmf=$f && break
done
if [ -z "$ovmf" ]; then
	echo "no OVMF (apt-get install ovmf): the UEFI case was not run"
	echo PASS
	exit 0
fi
cat >uefi.json <<JSON
{"runtime": "qemu", "name": "uefi", "memory": 268435456, "firmware": "uefi",
 "uefi_vars": "$T/uefi-vars.fd", "console": "$T/uefi.console"}
JSON
timeout 900 "$QEMU_VM" console uefi.json "Shell>" "reset -s" >out 2>&1 ||
	{ cat out; tail -c 2000 uefi.console; fail "UEFI boot to its shell and power off"; }
cat out
grep -q "the guest powered off, QEMU exited 0" out || fail "no guest power-off"
[ -s uefi-vars.fd ] || fail "no variable store made for the VM"
tmpl=$(echo "$ovmf" | sed 's/CODE/VARS/')
[ "$(stat -c %s uefi-vars.fd)" = "$(stat -c %s "$tmpl")" ] || fail "the variable store is not the template's size"
echo PASS
