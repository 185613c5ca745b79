#!/usr/bin/python3
# tests/memsync/ctl.py SOCKET [LINE...]: sends each LINE (default: a status
# request) to a VM's control socket on one connection and prints each reply
# line. A LINE of the form @N sends N bytes of 'x' without a newline first.
import socket, sys

s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rb")
for line in sys.argv[2:] or ['{"cmd":"status"}']:
    if line.startswith("@"):
        s.sendall(b"x" * int(line[1:]) + b"\n")
    else:
        s.sendall(line.encode() + b"\n")
    reply = f.readline()
    if not reply:
        sys.exit("no reply to " + line[:60])
    sys.stdout.write(reply.decode())
