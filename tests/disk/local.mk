# tests/disk/: the generic disk layer and the `smove disk` commands.
disk_shell_tests = tests/disk/test-raw-cli.sh tests/disk/test-read-args.sh \
	tests/disk/test-format-guess.sh tests/disk/test-sector-size.sh
TESTS += $(disk_shell_tests)
EXTRA_DIST += $(disk_shell_tests)
sanitizer_tests += $(disk_shell_tests)

if HAVE_CRITERION
check_PROGRAMS += tests/disk/test-disk-generic
TESTS += tests/disk/test-disk-generic
sanitizer_tests += tests/disk/test-disk-generic
tests_disk_test_disk_generic_CFLAGS = $(unit_cflags)
tests_disk_test_disk_generic_LDADD = vhd/libvhd.la $(unit_ldadd)
endif
