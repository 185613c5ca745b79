# tests/migrate/lib.sh: two smove "hosts" on one machine, over loopback, for
# the migration tests. Source it after tests/functions.sh. The source host's
# runtime directory is $T/src (its VMs run there), the destination's $T/dst
# with its storage in $T/store; `smove serve` listens on a free port.
#   start_serve [OPTS...]     serve in the background: $PORT, $SERVE_PID, $T/serve.err
#   start_vm NAME [RUN OPTS]  `smove run` of the test guest: $VM_PID, $T/NAME.console
#   src CMD... / dst CMD...   smove on one host or the other
#   move NAME [OPTS]          `smove move NAME --to 127.0.0.1:$PORT --json`,
#                             events in $T/move.json, exit status in $MOVE_STATUS
#   wait_for FILE PATTERN [S] until FILE matches (grep -E), S seconds (60)
#   event EXPR                evaluates EXPR over the last result event (python)
#   verdict NAME              waits for the guest's verdict on the destination
requires_kvm
requires nbdkit
GUEST="$abs_top_builddir/memsync/guest/guest.elf"
export SMOVE_NBDKIT_PLUGIN="$abs_top_builddir/storage/nbdkit/.libs/nbdkit-smove-plugin.so"
mkdir -p "$T/src" "$T/dst" "$T/store"

src() { SMOVE_RUNTIME_DIR="$T/src" "$SMOVE" "$@"; }
dst() { SMOVE_RUNTIME_DIR="$T/dst" "$SMOVE" "$@"; }

# Every VM process either host has registered, at the end.
kill_vms() {
	for f in "$T"/src/*.json "$T"/dst/*.json; do
		[ -f "$f" ] || continue
		pid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f" 2>/dev/null) || continue
		kill -9 "$pid" 2>/dev/null || true
	done
}
on_exit kill_vms

wait_for() {
	for i in $(seq $((${3:-60} * 10))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "--- $1:" >&2
	tail -20 "$1" >&2 || true
	fail "timed out waiting for '$2' in $1"
}

start_serve() {
	SMOVE_RUNTIME_DIR="$T/dst" "$SMOVE" serve --listen 127.0.0.1:0 --storage "$T/store" \
		--json "$@" >"$T/serve.out" 2>"$T/serve.err" &
	SERVE_PID=$!
	on_exit "kill $SERVE_PID 2>/dev/null || true"
	wait_for "$T/serve.out" listening 30
	PORT=$(sed -n 's/.*"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$T/serve.out")
}

start_vm() {
	name=$1
	shift
	SMOVE_RUNTIME_DIR="$T/src" "$SMOVE" run --name "$name" --guest "$GUEST" \
		--console "$T/$name.console" "$@" >"$T/$name.run.out" 2>"$T/$name.run.err" &
	VM_PID=$!
	on_exit "kill -9 $VM_PID 2>/dev/null || true"
	wait_for "$T/$name.console" "smove-guest:" 30
}

move() {
	name=$1
	shift
	set +e
	SMOVE_RUNTIME_DIR="$T/src" "$SMOVE" move "$name" --to "127.0.0.1:$PORT" --json "$@" \
		>"$T/move.json" 2>"$T/move.err"
	MOVE_STATUS=$?
	set -e
}

# event EXPR: EXPR (python, over d = the result event) printed.
event() {
	/usr/bin/python3 -c '
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if "\"result\"" in l][-1]
print(eval(sys.argv[2]))' "$T/move.json" "$1"
}

# expect_move STATUS: the last move exited STATUS.
expect_move() {
	[ "$MOVE_STATUS" = "$1" ] || {
		cat "$T/move.json" "$T/move.err" "$T/serve.err" >&2
		fail "smove move exited $MOVE_STATUS, expected $1"
	}
}

verdict() {
	wait_for "$T/store/$1/console.log" "verdict: ok|FAIL" 120
	if grep -q FAIL "$T/store/$1/console.log"; then
		grep FAIL "$T/store/$1/console.log" >&2
		fail "the guest found a broken invariant after the migration"
	fi
}

# ctl SOCKET [LINE]: one control-socket request, its reply printed.
ctl() { /usr/bin/python3 "$abs_top_srcdir/tests/memsync/ctl.py" "$@"; }
