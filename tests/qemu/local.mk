# tests/qemu/: QEMU as smove's second runtime, and the Linux test guest
# (qemu/guest/) it runs; these need no /dev/kvm (TCG). Tests that need the
# Linux guest skip (77), saying why, where `make` could not build it.
qemu_shell_tests = tests/qemu/test-linux-guest.sh tests/qemu/test-linux-guest-net.sh \
	tests/qemu/test-linux-guest-uefi.sh tests/qemu/test-qemu-precopy-tcg.sh
TESTS += $(qemu_shell_tests)
EXTRA_DIST += $(qemu_shell_tests) tests/qemu/linux-guest.sh
