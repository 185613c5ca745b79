#!/bin/sh
# Replays the committed fuzz seeds and the broken-image corpus through the
# image fuzz harness built with the project's compiler (and, in the
# sanitizer pass, under ASan and UBSan).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fuzz/fuzz-lib.sh"
mkdir "$T/corpus"
sh "$abs_top_srcdir/tests/fuzz/make-seeds.sh" "$T/corpus"
# shellcheck disable=SC2046 # file names made by the tests, without spaces
run_replay image "$T"/corpus/* $(files_in "$abs_top_srcdir/tests/fuzz/seeds-image" \
	"$abs_top_builddir/tests/data/broken")
