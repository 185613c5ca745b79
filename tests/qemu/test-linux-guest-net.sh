#!/bin/sh
# The Linux test guest's network path: /init gives eth0 (virtio-net, its
# modules loaded from the initramfs) the address of smove.ip=, the checker's
# TCP counter service (smove.netport=) answers through QEMU's user network
# (a host port forwarded to the guest's), and a client on the host reads its
# lines: consecutive counts, a line about every hb ms. The longest gap
# between two lines is printed (what a migration test would measure).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/linux-guest.sh"
requires_linux_guest
qemu-system-x86_64 -netdev help 2>/dev/null | grep -qx user || skip "QEMU has no user network"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
APPEND="smove.ip=10.0.2.15/24 smove.netport=7777 smove.hb=10 smove.hbprint=0"
linux_qemu net -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-10.0.2.15:7777" \
	-device virtio-net-pci,netdev=n0,romfile= 2>"$T/qemu.err" &
qpid=$!
on_exit "kill $qpid 2>/dev/null || true"
wait_for "$T/net.console" "^net: counter service on port 7777|FAIL" 90
grep -q "^init: eth0 10.0.2.15/24" "$T/net.console" || fail "/init did not configure eth0"
! grep FAIL "$T/net.console" || fail "the checker failed"
# 2 s of lines: every count once, in order, about 100 a second.
/usr/bin/python3 - "$port" <<'PY' || fail "the counter stream is wrong"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile()
t_end = time.time() + 2
last, gap, prev = 0, 0.0, None
while time.time() < t_end:
    line = f.readline()
    if not line:
        sys.exit("the guest closed the connection")
    n, ns = (int(x) for x in line.split())
    now = time.time()
    if n != last + 1:
        sys.exit(f"count {n} after {last}")
    if prev is not None:
        gap = max(gap, now - prev)
    last, prev = n, now
print(f"{last} lines in 2 s, longest gap {gap * 1000:.1f} ms")
if last < 50:
    sys.exit(f"only {last} lines in 2 s, expected about 200")
PY
send_console net finish
wait $qpid || fail "QEMU did not exit 0 after the finish request"
guest_ok "$T/net.console"
