# tests/fuzz/: fuzz harnesses. Each is built twice: with libFuzzer (clang,
# when installed) for bounded coverage-guided runs, and as a replay program
# with the project's compiler, which the sanitizer pass runs.
fuzz_vhd_sources = $(addprefix $(top_srcdir)/,$(filter %.c,$(vhd_libvhd_la_SOURCES)))
FUZZ_CLANG_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_srcdir) -I$(top_builddir) -include config.h -pthread

if HAVE_CLANG
check_SCRIPTS += tests/fuzz/fuzz-image-libfuzzer
CLEANFILES += tests/fuzz/fuzz-image-libfuzzer
tests/fuzz/fuzz-image-libfuzzer: $(top_srcdir)/tests/fuzz/fuzz-image.c $(fuzz_vhd_sources)
	$(AM_V_CCLD)$(MKDIR_P) tests/fuzz && \
	$(CLANG) $(FUZZ_CLANG_FLAGS) -o $@ $(top_srcdir)/tests/fuzz/fuzz-image.c $(fuzz_vhd_sources)
endif

check_PROGRAMS += tests/fuzz/replay-image
tests_fuzz_replay_image_SOURCES = tests/fuzz/fuzz-image.c
tests_fuzz_replay_image_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_STANDALONE
tests_fuzz_replay_image_LDADD = vhd/libvhd.la $(PTHREAD_LIBS)

fuzz_tests = tests/fuzz/test-replay-image.sh tests/fuzz/test-fuzz-image.sh
TESTS += $(fuzz_tests)
sanitizer_tests += tests/fuzz/test-replay-image.sh
EXTRA_DIST += $(fuzz_tests) tests/fuzz/make-seeds.sh tests/fuzz/sparse-seed.py $(wildcard $(srcdir)/tests/fuzz/seeds-image/*)
