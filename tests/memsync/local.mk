# tests/memsync/: smove's VM, its test guest, `smove run` and `smove ps`.
# Tests that need /dev/kvm skip (77) without it.
check_PROGRAMS += tests/memsync/test-vm
tests_memsync_test_vm_LDADD = $(memsync_libs)
tests_memsync_test_vm_DEPENDENCIES = memsync/libmemsync.la memsync/guest/guest.elf
memsync_shell_tests = \
	tests/memsync/test-vm-dirty-bitmap.sh tests/memsync/test-vm-dirty-ring.sh \
	tests/memsync/test-vm-tamper.sh tests/memsync/test-vm-restore.sh \
	tests/memsync/test-run-disk-raw.sh tests/memsync/test-control.sh tests/memsync/test-ps.sh \
	tests/memsync/test-disk-lock.sh tests/memsync/test-run-bad-config.sh \
	tests/memsync/test-run-config.sh tests/memsync/test-run-disk-vhdx.sh \
	tests/memsync/test-run-disk-vhd.sh tests/memsync/test-vm-backend.sh \
	tests/memsync/test-vm-throttle.sh tests/memsync/test-qemu-guest.sh \
	tests/memsync/test-guest-rate.sh tests/memsync/test-guest-gapprint.sh
TESTS += $(memsync_shell_tests)
EXTRA_DIST += $(memsync_shell_tests) tests/memsync/ctl.py
# Robustness: bad configurations and bad control-socket input, under ASan/UBSan.
sanitizer_tests += tests/memsync/test-run-bad-config.sh tests/memsync/test-control.sh
EXTRA_DIST += tests/memsync/check-records.py

if HAVE_CRITERION
check_PROGRAMS += tests/memsync/test-state-blob
TESTS += tests/memsync/test-state-blob
sanitizer_tests += tests/memsync/test-state-blob
tests_memsync_test_state_blob_CFLAGS = $(unit_cflags)
tests_memsync_test_state_blob_LDADD = $(memsync_libs) $(unit_ldadd)
endif
