#!/bin/sh
# The README's first command ends with `smove demo`: a live migration between
# two smove instances on this machine, told for a person. It succeeds, shows
# each step, the downtime and the guest's verdict, and leaves nothing behind;
# `smove demo disk` still shows the disk layer.
# Without /dev/kvm the demo moves the Linux guest under QEMU/TCG: it runs
# on every machine, so this test does too (not lib.sh, whose default runtime
# needs /dev/kvm).
. "$abs_top_srcdir/tests/functions.sh"
requires nbdkit psktool
if [ -w /dev/kvm ]; then
	guest="the test guest"
else
	. "$abs_top_srcdir/tests/qemu/linux-guest.sh"
	requires_linux_guest
	guest="a Linux guest under QEMU"
fi
export SMOVE_NBDKIT_PLUGIN="$abs_top_builddir/storage/nbdkit/.libs/nbdkit-smove-plugin.so"
expect_status 0 "$SMOVE" demo --dir "$T/demo"
for s in "smove serve on loopback" "smove run of $guest" "memory round 1" \
	"moved to 127.0.0.1:[0-9]* in .* downtime [0-9.]* ms" "every page and record intact" \
	"records, 4096 intact, 0 damaged" "demo: the VM moved while it worked"; do
	grep -q "$s" "$T/stdout" || { cat "$T/stdout"; fail "the demo does not show '$s'"; }
done
[ -z "$(ls -A "$T/demo" 2>/dev/null)" ] || { ls -R "$T/demo"; fail "the demo left files"; }
! pgrep -f "$T/demo" >/dev/null || fail "the demo left processes"
mkdir "$T/disk"
expect_status 0 "$SMOVE" demo disk --dir "$T/disk"
grep -q "all copies identical, OK" "$T/stdout" || fail "smove demo disk failed"
