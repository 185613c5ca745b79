# tests/proto/: the wire formats (JSON, the migration protocol).
if HAVE_CRITERION
proto_unit_tests = tests/proto/test-json tests/proto/test-messages tests/proto/test-session \
	tests/proto/test-pages \
	tests/proto/test-tls \
	tests/proto/test-channels
check_PROGRAMS += $(proto_unit_tests)
TESTS += $(proto_unit_tests)
sanitizer_tests += $(proto_unit_tests)
tests_proto_test_json_CFLAGS = $(unit_cflags)
tests_proto_test_json_LDADD = proto/libproto.la $(unit_ldadd)
tests_proto_test_messages_CFLAGS = $(unit_cflags)
tests_proto_test_messages_LDADD = proto/libproto.la $(unit_ldadd)
tests_proto_test_session_CFLAGS = $(unit_cflags)
tests_proto_test_session_LDADD = proto/libproto.la $(unit_ldadd)
endif
EXTRA_DIST += tests/proto/harness.h
if HAVE_CRITERION
tests_proto_test_pages_CFLAGS = $(unit_cflags) $(ZLIB_CFLAGS)
tests_proto_test_pages_LDADD = proto/libproto.la $(ZLIB_LIBS) $(unit_ldadd)
endif
if HAVE_CRITERION
tests_proto_test_tls_CFLAGS = $(unit_cflags)
tests_proto_test_tls_LDADD = proto/libproto.la $(unit_ldadd)
endif
EXTRA_DIST += tests/proto/make-tls-creds.sh
if HAVE_CRITERION
tests_proto_test_channels_CFLAGS = $(unit_cflags)
tests_proto_test_channels_LDADD = proto/libproto.la $(unit_ldadd)
endif
if HAVE_CRITERION
proto_stream_tests = tests/proto/test-messages-v3 tests/proto/test-stream
check_PROGRAMS += $(proto_stream_tests)
TESTS += $(proto_stream_tests)
sanitizer_tests += $(proto_stream_tests)
tests_proto_test_stream_CFLAGS = $(unit_cflags)
tests_proto_test_stream_LDADD = proto/libproto.la $(unit_ldadd)
tests_proto_test_messages_v3_CFLAGS = $(unit_cflags)
tests_proto_test_messages_v3_LDADD = proto/libproto.la $(unit_ldadd)
endif
if HAVE_CRITERION
check_PROGRAMS += tests/proto/test-admin
TESTS += tests/proto/test-admin
sanitizer_tests += tests/proto/test-admin
tests_proto_test_admin_CFLAGS = $(unit_cflags)
tests_proto_test_admin_LDADD = proto/libproto.la $(unit_ldadd)
endif
