# tests/qemu/runtime.mk: the QEMU runtime (qemu/) and the in-process NBD server it serves
# its disks with (storage/nbd-server.h), against real peers: QEMU under TCG
# (no /dev/kvm needed), qemu-io, qemu-img, nbdinfo, nbdcopy.
EXTRA_DIST += tests/qemu/nbd-lib.sh tests/qemu/hostile-nbd-client.py

# The NBD server behind real clients and hostile ones.
check_PROGRAMS += tests/qemu/nbd-serve
tests_qemu_nbd_serve_LDADD = storage/libstorage.la vhd/libvhd.la $(PTHREAD_LIBS)

qemu_nbd_tests = \
	tests/qemu/test-nbd-server-raw.sh \
	tests/qemu/test-nbd-server-vhdx.sh \
	tests/qemu/test-nbd-server-detached.sh \
	tests/qemu/test-nbd-server-hostile.sh
TESTS += $(qemu_nbd_tests)
EXTRA_DIST += $(qemu_nbd_tests)
# Bad input from clients: again under the sanitizers.
sanitizer_tests += tests/qemu/test-nbd-server-hostile.sh

if HAVE_CRITERION
# The QMP client against a real QEMU (skips without one).
check_PROGRAMS += tests/qemu/test-qmp
TESTS += tests/qemu/test-qmp
sanitizer_tests += tests/qemu/test-qmp
tests_qemu_test_qmp_CFLAGS = $(unit_cflags)
tests_qemu_test_qmp_LDADD = $(qemu_libs) $(unit_ldadd)
endif

if HAVE_CRITERION
# The configuration: JSON round trip and refusals (untrusted input: sanitizers).
check_PROGRAMS += tests/qemu/test-qemu-config
TESTS += tests/qemu/test-qemu-config
sanitizer_tests += tests/qemu/test-qemu-config
tests_qemu_test_qemu_config_CFLAGS = $(unit_cflags)
tests_qemu_test_qemu_config_LDADD = $(qemu_libs) $(unit_ldadd)
endif

# The runtime itself, driven by qemu-vm (one scenario per subcommand) under
# TCG: boot with a VHDX disk served by smove, pause/resume, stop; migrations
# between two QEMUs through a socketpair; the errors.
check_PROGRAMS += tests/qemu/qemu-vm
tests_qemu_qemu_vm_LDADD = $(qemu_libs)
tests_qemu_qemu_vm_DEPENDENCIES = qemu/libqemu.la memsync/guest/guest32.elf
EXTRA_DIST += tests/qemu/qemu-lib.sh tests/qemu/mbr.py
qemu_runtime_tests = \
	tests/qemu/test-qemu-boot.sh \
	tests/qemu/test-qemu-errors.sh \
	tests/qemu/test-qemu-firmware.sh \
	tests/qemu/test-qemu-process.sh \
	tests/qemu/test-qemu-migrate-stop-copy.sh \
	tests/qemu/test-qemu-migrate-live.sh \
	tests/qemu/test-qemu-migrate-fail.sh \
	tests/qemu/test-migrate-net.sh
TESTS += $(qemu_runtime_tests)
EXTRA_DIST += $(qemu_runtime_tests)
# test-migrate-net.sh's client and frame capture, in the third namespace.
EXTRA_DIST += tests/qemu/net-client.py
# The runtime's error paths and a whole VM's life: again under the sanitizers.
sanitizer_tests += tests/qemu/test-qemu-errors.sh tests/qemu/test-qemu-boot.sh
