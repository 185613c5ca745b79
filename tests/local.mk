# tests/: unit tests (criterion), shell tests against real peers, fuzzing.
EXTRA_DIST += tests/functions.sh

shell_tests = \
	tests/test-help-manpage.sh \
	tests/disk/test-raw-cli.sh
TESTS += $(shell_tests)
EXTRA_DIST += $(shell_tests)

if HAVE_CRITERION
unit_tests = \
	tests/unit/test-disk-generic \
	tests/unit/test-json
check_PROGRAMS += $(unit_tests)
TESTS += $(unit_tests)
unit_cflags = $(AM_CFLAGS) $(CRITERION_CFLAGS)
unit_ldadd = vhd/libvhd.la proto/libproto.la $(CRITERION_LIBS) $(PTHREAD_LIBS) -lm
tests_unit_test_disk_generic_CFLAGS = $(unit_cflags)
tests_unit_test_disk_generic_LDADD = $(unit_ldadd)
tests_unit_test_json_CFLAGS = $(unit_cflags)
tests_unit_test_json_LDADD = $(unit_ldadd)
endif
