# tests/util/: util/'s helpers.
if HAVE_CRITERION
check_PROGRAMS += tests/util/test-util
TESTS += tests/util/test-util
tests_util_test_util_CFLAGS = $(unit_cflags)
tests_util_test_util_LDADD = util/libutil.la $(unit_ldadd)
endif
