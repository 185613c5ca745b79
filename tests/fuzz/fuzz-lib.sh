# tests/fuzz/fuzz-lib.sh: what every fuzz test script shares. Source it after
# tests/functions.sh.
#   run_libfuzzer NAME MAX_LEN DIR...  coverage-guided run of NAME's libFuzzer
#       harness over the corpus DIRs for 20 s (SMOVE_TEST_FULL=1: 10 minutes);
#       skips when the harness was not built (needs clang).
#   run_replay NAME FILE...  replays FILEs through NAME's replay program (the
#       project's compiler; under ASan and UBSan in the sanitizer pass).

run_libfuzzer() {
	name=$1 max_len=$2
	shift 2
	fuzzer="$abs_top_builddir/tests/fuzz/fuzz-$name-libfuzzer"
	[ -x "$fuzzer" ] || skip "libFuzzer harness not built (needs clang and libclang-rt-14-dev)"
	secs=20
	[ -n "${SMOVE_TEST_FULL:-}" ] && secs=600
	(cd "$T" && "$fuzzer" -max_total_time=$secs -timeout=10 -rss_limit_mb=2048 \
		-max_len="$max_len" -print_final_stats=1 "$@") >"$T/fuzz.log" 2>&1 || {
		tail -60 "$T/fuzz.log" >&2
		fail "the $name fuzzer found a crash, a leak or a hang (see above)"
	}
	grep -E 'stat::number_of_executed_units' "$T/fuzz.log"
	echo PASS
}

run_replay() {
	name=$1
	shift
	"$abs_top_builddir/tests/fuzz/replay-$name" "$@" || fail "replaying $# inputs failed"
	echo "replayed $# inputs"
	echo PASS
}

# The files of the directories that exist among DIR... (for run_replay).
files_in() {
	for d in "$@"; do
		[ -d "$d" ] && for f in "$d"/*; do [ -f "$f" ] && echo "$f"; done
	done
	true
}
