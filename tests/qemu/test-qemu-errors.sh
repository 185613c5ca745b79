#!/bin/sh
# What goes wrong before or while QEMU starts is a clear error, and leaves
# nothing behind (no runtime directory, no QEMU process): a missing QEMU
# binary, a binary that is not QEMU, a kernel that is missing or that QEMU
# cannot load, a CPU model or machine QEMU does not know, a tap device that
# does not exist or is not a tap, KVM asked for where there is none, an
# incoming VM whose disk has no size. And a tap that exists works: QEMU gets
# the NIC, its MAC is recorded, announce-self runs.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/qemu-lib.sh"
requires_qemu
cd "$T"
qemu-img create -q -f raw disk.raw 8M

# refused JSON PATTERN [incoming]: the VM is not created, the message matches.
refused() {
	vm_config bad.json bad "hb=100" "" "" "$1"
	expect_status 1 timeout 120 "$QEMU_VM" create bad.json ${3:-}
	expect_stderr "$2"
	[ -z "$(ls "$T/run" 2>/dev/null)" ] || fail "a runtime directory was left: $(ls "$T/run")"
	! pgrep -f "qemu-system-x86_64 -name bad," >/dev/null || fail "a QEMU process was left"
}
refused '"qemu": "/nonexistent/qemu-system-x86_64"' \
	'QEMU binary /nonexistent/qemu-system-x86_64: No such file or directory'
refused '"qemu": "qemu-system-nonexistent"' 'qemu-system-nonexistent not found in PATH'
refused '"qemu": "/bin/false"' 'QEMU did not start: QEMU exited with status 1'
printf 'not a kernel\n' >badkernel
vm_config bad.json bad "hb=100"
sed -i "s|\"kernel\": \"[^\"]*\"|\"kernel\": \"$T/badkernel\"|" bad.json
expect_status 1 "$QEMU_VM" create bad.json
expect_stderr 'bad: QEMU did not start: QEMU exited with status 1; QEMU said: .*kernel'
sed -i "s|\"kernel\": \"[^\"]*\"|\"kernel\": \"$T/nokernel\"|" bad.json
expect_status 1 "$QEMU_VM" create bad.json
expect_stderr "bad: kernel $T/nokernel: No such file or directory"
refused '"cpu": "NoSuchModel"' "QEMU did not start: .*QEMU said: .*NoSuchModel"
refused '"machine": "nosuch"' "QEMU did not start: .*QEMU said: .*unsupported machine type"
refused '"nics": [{"tap": "smove-notap0"}]' \
	'bad: tap device smove-notap0 does not exist: create it first'
refused '"nics": [{"tap": "lo"}]' 'bad: network interface lo is not a tap device'
vm_config bad.json bad "hb=100"
sed -i 's|"console": "[^"]*"|"console": "/nonexistent/dir/console"|' bad.json
expect_status 1 "$QEMU_VM" create bad.json
expect_stderr 'bad: console log /nonexistent/dir/console: No such file or directory'
if [ ! -e /dev/kvm ]; then
	QEMU_ACCEL=kvm
	refused '' 'the configuration asks for KVM, but /dev/kvm: No such file'
	QEMU_ACCEL=auto
fi
# An incoming VM learns its disks' sizes from the configuration.
vm_config in.json inc "hb=100" "$T/disk.raw" raw
expect_status 1 "$QEMU_VM" create in.json incoming
expect_stderr 'has no size in the configuration: an incoming VM needs'
sed -i 's|"format": "raw"}|"format": "raw", "size": 8388608}|' in.json
"$QEMU_VM" create in.json incoming >out 2>&1 || { cat out; fail "an incoming VM with sizes"; }
grep -q "^vm: state incoming qemu inmigrate" out || { cat out; fail "not incoming"; }

# A tap that exists (where this test may make one).
tap=smq$$
if ip tuntap add dev "$tap" mode tap 2>/dev/null; then
	on_exit "ip tuntap del dev $tap mode tap 2>/dev/null || :"
	vm_config nic.json nic "hb=100" "" "" "\"nics\": [{\"tap\": \"$tap\"}]"
	"$QEMU_VM" create nic.json >out 2>&1 || { cat out; fail "a VM with tap $tap"; }
	grep -q "\"nics\":\[{\"tap\":\"$tap\",\"mac\":\"52:54:00:" out ||
		{ cat out; fail "no MAC recorded"; }
else
	echo "no tap device could be made here: the NIC case was not run"
fi
echo PASS
