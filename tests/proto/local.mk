# tests/proto/: the wire formats (JSON, the migration protocol).
if HAVE_CRITERION
check_PROGRAMS += tests/proto/test-json
TESTS += tests/proto/test-json
sanitizer_tests += tests/proto/test-json
tests_proto_test_json_CFLAGS = $(unit_cflags)
tests_proto_test_json_LDADD = proto/libproto.la $(unit_ldadd)
endif
