#!/bin/sh
# Coverage-guided fuzzing of the migration protocol's receiver (frames,
# messages, pages, the destination's state machine) for a bounded time, from
# streams captured from real source sessions plus the committed seeds. 20 s
# here; SMOVE_TEST_FULL=1 (make check-full) runs 10 minutes.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fuzz/fuzz-lib.sh"
mkdir "$T/corpus"
"$abs_top_builddir/tests/fuzz/frame-seeds" "$T/corpus" || fail "cannot make seeds"
run_libfuzzer frame 65536 "$T/corpus" "$abs_top_srcdir/tests/fuzz/seeds-frame"
