#!/bin/sh
# The auto-converge hook: a 90 % throttle slows a guest that writes memory in
# ring 3 without ever exiting, and lifting it restores the speed.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
"$abs_top_builddir/tests/memsync/test-vm" throttle
