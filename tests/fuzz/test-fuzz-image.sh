#!/bin/sh
# Coverage-guided fuzzing of the image parsers (libFuzzer, ASan, UBSan) for a
# bounded time, from seeds made by qemu-img and by smove plus the committed
# ones. 20 s here; SMOVE_TEST_FULL=1 (make check-full) runs 10 minutes.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fuzz/fuzz-lib.sh"
mkdir "$T/corpus"
sh "$abs_top_srcdir/tests/fuzz/make-seeds.sh" "$T/corpus"
seeds="$abs_top_srcdir/tests/fuzz/seeds-image"
[ -d "$seeds" ] || seeds=
run_libfuzzer image 1048576 "$T/corpus" $seeds
