#!/bin/sh
# The administration role refuses what it must, with a reason, and the
# session goes on after a refused request: requests that are not objects
# with a known "cmd", unknown members (a key file chosen by the peer among
# them), a "to" that is not HOST:PORT (a Unix socket of the host), members
# of the wrong type, a VM the host does not have, a cancel with nothing to
# cancel; a host without TLS (--insecure) and one with --no-admin refuse the
# role itself; a client without TLS is refused by a host with it (and
# smove's own client never asks without TLS). No VM is
# needed: every check comes before one is looked for, or finds none.
. "$abs_top_srcdir/tests/functions.sh"
# Loopback: the requests' checks do not depend on where the hosts are.
FLEET_NETNS=no
. "$abs_top_srcdir/tests/fleet/lib.sh"
REQ="$abs_top_builddir/tests/fleet/admin-request"
host_serve a
ask() { # JSON PATTERN: the last reply matches PATTERN
	"$REQ" "$(host_addr a)" "$T/lib.psk" "$1" >"$T/reply" 2>"$T/reply.err" ||
		{ cat "$T/reply.err"; fail "request $1 failed"; }
	tail -1 "$T/reply" | grep -Eq -- "$2" || { cat "$T/reply"; fail "$1: not '$2'"; }
}
ask '{"cmd":"inventory"}' '^\{"ok":true,"host":"127.0.0.1:[0-9]+"'
ask '{"cmd":"nope"}' '"ok":false,"error":"unknown request \\"nope\\"'
ask '{"name":"x"}' '"error":"a request is an object with a \\"cmd\\" string"'
ask '{"cmd":"inventory","x":1}' '"error":"unknown member \\"x\\""'
ask '{"cmd":"move","name":"vm9","to":"127.0.0.1:1","tls_psk":"/etc/shadow"}' 'unknown member \\"tls_psk\\"'
ask '{"cmd":"move","name":"vm9","to":"unix:/run/x.sock"}' '"to\\" must be the HOST:PORT'
ask '{"cmd":"move","name":"vm9","to":"/run/x.sock"}' '"to\\" must be the HOST:PORT'
ask '{"cmd":"move","name":"../etc","to":"127.0.0.1:1"}' '"name\\" must be the plain name of a VM'
ask '{"cmd":"move","name":"vm9","to":"127.0.0.1:1","bandwidth":-1}' '"bandwidth\\" must be a non-negative integer'
ask '{"cmd":"move","name":"vm9","to":"127.0.0.1:1","dry_run":"yes"}' '"dry_run\\" must be true or false'
ask '{"cmd":"move","name":"vm9","to":"127.0.0.1:1","mode":"hot"}' '"mode\\" must be live, quick or cold'
ask '{"cmd":"move","name":"vm9","to":"127.0.0.1:1"}' 'no VM named vm9 on this host'
ask '{"cmd":"cancel","name":"vm9"}' 'vm9: no VM of that name runs here'
ask '{"cmd":"resolve","name":"vm9"}' 'no migration of a VM of that name is in doubt here'
grep -q 'admin: smove asks {"cmd":"inventory"}' "$T/a/serve.err" || fail "serve does not log the requests"
# the role itself refused
host_serve b --no-admin
expect_status 1 "$REQ" "$(host_addr b)" "$T/lib.psk" '{"cmd":"inventory"}'
expect_stderr "does not take administration requests \(smove serve --no-admin\)"
mkdir -p "$T/c/store"
SMOVE_RUNTIME_DIR="$T/c" "$SMOVE" serve --listen 127.0.0.1:0 --storage "$T/c/store" --json --insecure \
	>"$T/c.out" 2>"$T/c.err" &
on_exit "kill $! 2>/dev/null || true"
wait_for "$T/c.out" listening 30
c=127.0.0.1:$(sed -n 's/.*"[0-9.]*:\([0-9]*\)".*/\1/p' "$T/c.out")
expect_status 1 "$REQ" "$c" - '{"cmd":"inventory"}'
expect_stderr "does not take administration requests \(it runs without TLS\)"
expect_status 1 "$REQ" "$(host_addr a)" - '{"cmd":"inventory"}'
expect_stderr "closed|reset|TLS"
expect_status 1 "$SMOVE" ps --host "$c"
expect_stderr "administration role needs TLS"
echo PASS
