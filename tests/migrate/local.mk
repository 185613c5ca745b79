# tests/migrate/: live migration end to end, over loopback (`smove serve` and
# `smove move` between two runtime directories on this machine; lib.sh). The
# test hooks SMOVE_TEST_STALL (a side waits at a named point),
# SMOVE_TEST_MEM_AVAILABLE (serve pretends) and SMOVE_TEST_FRAME_TIMEOUT_MS
# (a shorter frame timeout) let them act at phase boundaries.
# Tests that need /dev/kvm or nbdkit skip (77) without them.
migrate_shell_tests = \
	tests/migrate/test-migrate-raw.sh tests/migrate/test-migrate-vhdx-psk.sh \
	tests/migrate/test-migrate-vhd-x509.sh tests/migrate/test-migrate-cancel.sh \
	tests/migrate/test-migrate-dest-killed.sh tests/migrate/test-migrate-doubt-resumed.sh \
	tests/migrate/test-migrate-doubt-not-resumed.sh tests/migrate/test-migrate-doubt-crashed.sh \
	tests/migrate/test-migrate-nogo.sh tests/migrate/test-migrate-bad-client.sh \
	tests/migrate/test-migrate-bad-dest.sh \
	tests/migrate/test-migrate-back.sh tests/migrate/test-demo.sh \
	tests/migrate/test-migrate-two-at-once.sh tests/migrate/test-migrate-nodisk-channels.sh \
	tests/migrate/test-migrate-ring.sh tests/migrate/test-migrate-deferred.sh \
	tests/migrate/test-fault-kill.sh tests/migrate/test-fault-cancel.sh \
	tests/migrate/test-fault-net.sh tests/migrate/test-fault-disk.sh \
	tests/migrate/test-migrate-quick.sh
TESTS += $(migrate_shell_tests)
# Each again with the QEMU runtime (the Linux test guest, under TCG where
# /dev/kvm is missing): the .sh runs need /dev/kvm, the .qemu runs every
# machine. A .qemu is the .sh's copy in the build tree, made executable with
# SMOVE_TEST_RUNTIME=qemu set first; its log is test-X.qemu.log. Three have
# none: test-migrate-ring and test-migrate-deferred test smove's own VMM's
# dirty ring and its senders' page deferral, and test-migrate-nodisk-channels
# its extra channels for MEM_BATCH pages; a QEMU VM's memory goes as QEMU's
# one stream, with none of these (a QEMU VM without disks is moved, and its
# memory checked after the move, by test-migrate-bad-dest).
migrate_qemu_tests = tests/migrate/test-migrate-raw.qemu \
	tests/migrate/test-migrate-vhdx-psk.qemu tests/migrate/test-migrate-vhd-x509.qemu \
	tests/migrate/test-migrate-cancel.qemu tests/migrate/test-migrate-dest-killed.qemu \
	tests/migrate/test-migrate-doubt-resumed.qemu \
	tests/migrate/test-migrate-doubt-not-resumed.qemu \
	tests/migrate/test-migrate-doubt-crashed.qemu tests/migrate/test-migrate-nogo.qemu \
	tests/migrate/test-migrate-bad-client.qemu tests/migrate/test-migrate-bad-dest.qemu \
	tests/migrate/test-migrate-back.qemu tests/migrate/test-migrate-two-at-once.qemu \
	tests/migrate/test-fault-kill.qemu \
	tests/migrate/test-fault-cancel.qemu tests/migrate/test-fault-net.qemu \
	tests/migrate/test-fault-disk.qemu tests/migrate/test-migrate-matrix.qemu \
	tests/migrate/test-migrate-quick.qemu
TESTS += $(migrate_qemu_tests)
check_SCRIPTS += $(migrate_qemu_tests)
CLEANFILES += $(migrate_qemu_tests)
tests/migrate/%.qemu: $(srcdir)/tests/migrate/%.sh
	$(make_qemu_variant)
EXTRA_DIST += $(migrate_shell_tests) tests/migrate/lib.sh tests/migrate/bad-client.py \
	tests/migrate/bad_wire.py \
	tests/migrate/bad-dest.py
# Robustness: serve and move against bad peers, under ASan/UBSan.
sanitizer_tests += tests/migrate/test-migrate-bad-client.sh tests/migrate/test-migrate-bad-dest.sh \
	tests/migrate/test-migrate-bad-client.qemu tests/migrate/test-migrate-bad-dest.qemu
# The migration matrix and 10 moves back and forth between two hosts in
# network namespaces (netns.sh); disks compared with a reference (make-records.py).
TESTS += tests/migrate/test-migrate-matrix.sh
EXTRA_DIST += tests/migrate/test-migrate-matrix.sh tests/migrate/netns.sh \
	tests/migrate/make-records.py
# The session record's decision, raced by several processes.
if HAVE_CRITERION
check_PROGRAMS += tests/migrate/test-record
TESTS += tests/migrate/test-record
sanitizer_tests += tests/migrate/test-record
tests_migrate_test_record_CFLAGS = $(unit_cflags)
tests_migrate_test_record_LDADD = migrate/libmigrate.la memsync/libmemsync.la $(qemu_libs) $(unit_ldadd)
endif
