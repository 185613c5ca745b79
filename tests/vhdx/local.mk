# tests/vhdx/: the VHDX driver: unit tests (criterion), interop with qemu-img and
# libvhdi, differencing chains, the log, crash injection, broken images.
if HAVE_CRITERION
vhdx_unit_tests = tests/vhdx/test-utf16 tests/vhdx/test-vhdx-format tests/vhdx/test-vhdx-log \
	tests/vhdx/test-vhdx-io
check_PROGRAMS += $(vhdx_unit_tests)
TESTS += $(vhdx_unit_tests)
sanitizer_tests += $(vhdx_unit_tests)
tests_vhdx_test_utf16_CFLAGS = $(unit_cflags)
tests_vhdx_test_utf16_LDADD = vhd/libvhd.la $(unit_ldadd)
tests_vhdx_test_vhdx_format_SOURCES = tests/vhdx/test-vhdx-format.c \
	tests/vhdx/memimg.c tests/vhdx/memimg.h
tests_vhdx_test_vhdx_format_CFLAGS = $(unit_cflags)
tests_vhdx_test_vhdx_format_LDADD = vhd/libvhd.la $(unit_ldadd)
tests_vhdx_test_vhdx_log_SOURCES = tests/vhdx/test-vhdx-log.c \
	tests/vhdx/memimg.c tests/vhdx/memimg.h
tests_vhdx_test_vhdx_log_CFLAGS = $(unit_cflags)
tests_vhdx_test_vhdx_log_LDADD = vhd/libvhd.la $(unit_ldadd)
tests_vhdx_test_vhdx_io_SOURCES = tests/vhdx/test-vhdx-io.c \
	tests/vhdx/memimg.c tests/vhdx/memimg.h
tests_vhdx_test_vhdx_io_CFLAGS = $(unit_cflags)
tests_vhdx_test_vhdx_io_LDADD = vhd/libvhd.la $(unit_ldadd)
endif

check_PROGRAMS += tests/vhdx/vhdx-tool
tests_vhdx_vhdx_tool_LDADD = vhd/libvhd.la $(PTHREAD_LIBS)

vhdx_shell_tests = tests/vhdx/test-qemu-read.sh tests/vhdx/test-qemu-write.sh \
	tests/vhdx/test-log-replay.sh tests/vhdx/test-vhdx-chain.sh \
	tests/vhdx/test-vhdx-broken.sh
TESTS += $(vhdx_shell_tests)
sanitizer_tests += tests/vhdx/test-vhdx-broken.sh tests/vhdx/test-vhdx-chain.sh
EXTRA_DIST += $(vhdx_shell_tests) tests/vhdx/libvhdi-compare.py tests/vhdx/make-broken.py

# The broken-image corpus, made before the tests run so that the image
# fuzzer's replay test (tests/fuzz) finds it too.
check_SCRIPTS += tests/vhdx/broken-corpus.stamp
CLEANFILES += tests/vhdx/broken-corpus.stamp
tests/vhdx/broken-corpus.stamp: $(top_srcdir)/tests/vhdx/make-broken.py
	$(AM_V_GEN)$(MKDIR_P) tests/vhdx tests/data/broken && \
	/usr/bin/python3 $(top_srcdir)/tests/vhdx/make-broken.py corpus tests/data/broken && touch $@
clean-local: clean-vhdx-corpus
clean-vhdx-corpus:
	rm -f tests/data/broken/vhdx-*.vhdx
.PHONY: clean-vhdx-corpus
