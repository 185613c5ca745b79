# tests/vpc/: the VHD driver (vhd/vpc-*.c) against QEMU and libvhdi, broken
# images, crash order, and its unit tests.
check_PROGRAMS += tests/vpc/vhd-io
tests_vpc_vhd_io_LDADD = vhd/libvhd.la $(PTHREAD_LIBS)

vpc_shell_tests = tests/vpc/test-vpc-qemu-read.sh tests/vpc/test-vpc-write-interop.sh \
	tests/vpc/test-vpc-create.sh tests/vpc/test-vpc-chain.sh tests/vpc/test-vpc-broken.sh \
	tests/vpc/test-vpc-force-size.sh
TESTS += $(vpc_shell_tests)
sanitizer_tests += tests/vpc/test-vpc-broken.sh tests/vpc/test-vpc-chain.sh
EXTRA_DIST += $(vpc_shell_tests) tests/vpc/compare-maps.py tests/vpc/read-pyvhdi.py \
	tests/vpc/make-broken.py

# The broken-image corpus, made before the tests run so that the image
# fuzzer's replay test (tests/fuzz) finds it too.
check_SCRIPTS += tests/vpc/broken-corpus.stamp
CLEANFILES += tests/vpc/broken-corpus.stamp
tests/vpc/broken-corpus.stamp: $(top_srcdir)/tests/vpc/make-broken.py
	$(AM_V_GEN)$(MKDIR_P) tests/vpc tests/data/broken && \
	/usr/bin/python3 $(top_srcdir)/tests/vpc/make-broken.py corpus tests/data/broken && touch $@
clean-local: clean-vpc-corpus
clean-vpc-corpus:
	rm -f tests/data/broken/vpc-*.vhd
.PHONY: clean-vpc-corpus

if HAVE_CRITERION
vpc_unit_tests = tests/vpc/test-vpc-format tests/vpc/test-vpc-crash
check_PROGRAMS += $(vpc_unit_tests)
TESTS += $(vpc_unit_tests)
sanitizer_tests += $(vpc_unit_tests)
tests_vpc_test_vpc_format_CFLAGS = $(unit_cflags)
tests_vpc_test_vpc_format_LDADD = vhd/libvhd.la $(unit_ldadd)
tests_vpc_test_vpc_crash_CFLAGS = $(unit_cflags)
tests_vpc_test_vpc_crash_LDADD = vhd/libvhd.la $(unit_ldadd)
endif
