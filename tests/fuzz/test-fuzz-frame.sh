#!/bin/sh
# Coverage-guided fuzzing of the migration protocol's receivers (frames,
# every message's decoder in both versions, pages into a bounded guest
# memory, the destination's and the source's state machines) for a bounded
# time, from streams captured from real sessions of both sides plus the
# committed seeds. 20 s here; SMOVE_TEST_FULL=1 (make check-full) runs 10
# minutes.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fuzz/fuzz-lib.sh"
mkdir "$T/corpus"
"$abs_top_builddir/tests/fuzz/frame-seeds" "$T/corpus" || fail "cannot make seeds"
run_libfuzzer frame 65536 "$T/corpus" "$abs_top_srcdir/tests/fuzz/seeds-frame"
