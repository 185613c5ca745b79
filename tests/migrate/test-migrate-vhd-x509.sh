#!/bin/sh
# Live migration with a dynamic VHD disk over TLS with X.509 certificates on
# both sides, memory compressed: the guest's invariants hold on the
# destination, and libvhdi reads every record from its VHD.
. "$abs_top_srcdir/tests/functions.sh"
requires certtool
/usr/bin/python3 -c 'import pyvhdi' 2>/dev/null || skip "python3-libvhdi not installed"
. "$abs_top_srcdir/tests/migrate/lib.sh"
sh "$abs_top_srcdir/tests/proto/make-tls-creds.sh" "$T/tls"
start_serve --tls-x509 "$T/tls/x509"
live_scenario vhd 1 --tls-x509 "$T/tls/x509" --compress
