# tests/functions.sh: helpers for smove's shell tests. Source it first:
#   . "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
# Each test is one scenario; it exits 0 (pass), 1 (fail) or 77 (skip).
set -eu

: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
: "${SMOVE:=$abs_top_builddir/cmd/smove}"
export LC_ALL=C

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

# requires CMD...: skip unless every command exists.
requires() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c not installed"
	done
}

requires_kvm() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no /dev/kvm"
}

# A scratch directory removed when the test exits; $T names it.
T=$(mktemp -d "${TMPDIR:-/tmp}/smove-test.XXXXXX")
cleanup_hooks=""
on_exit() { cleanup_hooks="$1; $cleanup_hooks"; }
trap 'eval "$cleanup_hooks"; rm -rf "$T"' EXIT

# expect_fail STATUS CMD...: run CMD, require exit status STATUS, keep its
# stderr in $T/stderr.
expect_status() {
	want=$1
	shift
	set +e
	"$@" >"$T/stdout" 2>"$T/stderr"
	got=$?
	set -e
	[ "$got" = "$want" ] || {
		cat "$T/stderr" >&2
		fail "'$*' exited $got, expected $want"
	}
}

# expect_stderr PATTERN: the last expect_status's stderr matches PATTERN (grep -E).
expect_stderr() {
	grep -Eq -- "$1" "$T/stderr" || {
		cat "$T/stderr" >&2
		fail "stderr does not match '$1'"
	}
}

# pattern_file FILE SIZE SEED: a file of SIZE bytes of reproducible data.
pattern_file() {
	/usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, random
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
with open(path, "wb") as f:
    left = size
    while left:
        n = min(left, 1 << 20)
        f.write(r.randbytes(n))
        left -= n
PY
}
