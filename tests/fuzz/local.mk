# tests/fuzz/: fuzz harnesses. Each is built twice: with libFuzzer (clang,
# when installed) for bounded coverage-guided runs, and as a replay program
# (the harness with tests/fuzz/replay-main.c) with the project's compiler,
# which the sanitizer pass runs. The scripts share tests/fuzz/fuzz-lib.sh.
FUZZ_CLANG_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_srcdir) -I$(top_builddir) -include config.h -pthread
# A libFuzzer harness: its .c files are its prerequisites.
fuzz_link = $(AM_V_CCLD)$(MKDIR_P) tests/fuzz && \
	$(CLANG) $(FUZZ_CLANG_FLAGS) -o $@ $(filter %.c,$^)
fuzz_sources = $(addprefix $(top_srcdir)/,$(filter %.c,$(1)))

if HAVE_CLANG
check_SCRIPTS += tests/fuzz/fuzz-image-libfuzzer tests/fuzz/fuzz-frame-libfuzzer
CLEANFILES += tests/fuzz/fuzz-image-libfuzzer tests/fuzz/fuzz-frame-libfuzzer
tests/fuzz/fuzz-image-libfuzzer: $(top_srcdir)/tests/fuzz/fuzz-image.c \
		$(call fuzz_sources,$(vhd_libvhd_la_SOURCES) $(util_libutil_la_SOURCES))
	$(fuzz_link)
tests/fuzz/fuzz-frame-libfuzzer: $(top_srcdir)/tests/fuzz/fuzz-frame.c \
		$(call fuzz_sources,$(proto_libproto_la_SOURCES) $(util_libutil_la_SOURCES))
	$(fuzz_link) $(ZLIB_LIBS) $(GNUTLS_LIBS)
endif

check_PROGRAMS += tests/fuzz/replay-image tests/fuzz/replay-frame tests/fuzz/frame-seeds
tests_fuzz_replay_image_SOURCES = tests/fuzz/fuzz-image.c tests/fuzz/replay-main.c
tests_fuzz_replay_image_LDADD = vhd/libvhd.la $(PTHREAD_LIBS)
tests_fuzz_replay_frame_SOURCES = tests/fuzz/fuzz-frame.c tests/fuzz/replay-main.c
tests_fuzz_replay_frame_LDADD = proto/libproto.la $(PTHREAD_LIBS)
tests_fuzz_frame_seeds_LDADD = proto/libproto.la $(PTHREAD_LIBS)

fuzz_tests = tests/fuzz/test-replay-image.sh tests/fuzz/test-fuzz-image.sh \
	tests/fuzz/test-replay-frame.sh tests/fuzz/test-fuzz-frame.sh
TESTS += $(fuzz_tests)
sanitizer_tests += tests/fuzz/test-replay-image.sh tests/fuzz/test-replay-frame.sh
EXTRA_DIST += $(fuzz_tests) tests/fuzz/fuzz-lib.sh tests/fuzz/make-seeds.sh tests/fuzz/sparse-seed.py \
	$(wildcard $(srcdir)/tests/fuzz/seeds-image/*) $(wildcard $(srcdir)/tests/fuzz/seeds-frame/*)
