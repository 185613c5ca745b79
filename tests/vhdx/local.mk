# tests/vhdx/: the VHDX driver: unit tests (criterion), interop with qemu-img and
# libvhdi, differencing chains, the log, crash injection, broken images.
if HAVE_CRITERION
vhdx_unit_tests = tests/vhdx/test-utf16
check_PROGRAMS += $(vhdx_unit_tests)
TESTS += $(vhdx_unit_tests)
sanitizer_tests += $(vhdx_unit_tests)
tests_vhdx_test_utf16_CFLAGS = $(unit_cflags)
tests_vhdx_test_utf16_LDADD = vhd/libvhd.la $(unit_ldadd)
endif

check_PROGRAMS += tests/vhdx/vhdx-tool
tests_vhdx_vhdx_tool_LDADD = vhd/libvhd.la $(PTHREAD_LIBS)

vhdx_shell_tests = tests/vhdx/test-qemu-read.sh tests/vhdx/test-qemu-write.sh
TESTS += $(vhdx_shell_tests)
EXTRA_DIST += $(vhdx_shell_tests) tests/vhdx/libvhdi-compare.py
