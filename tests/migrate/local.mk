# tests/migrate/: live migration end to end, over loopback (`smove serve` and
# `smove move` between two runtime directories on this machine). Tests that
# need /dev/kvm or nbdkit skip (77) without them.
migrate_shell_tests = \
	tests/migrate/test-migrate-raw.sh
TESTS += $(migrate_shell_tests)
EXTRA_DIST += $(migrate_shell_tests) tests/migrate/lib.sh
