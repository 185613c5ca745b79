#!/bin/sh
# make install, into a DESTDIR: the binary, smove(1) and
# nbdkit-smove-plugin(1), the docs, the systemd unit of smove serve (which
# systemd-analyze verify accepts where it exists), the bash completion (which
# loads in bash and completes commands, subcommands and options), and the
# nbdkit plugin in LIBDIR/nbdkit/plugins under the configured prefix, where an
# installed nbdkit serves an image with it.
. "$abs_top_srcdir/tests/functions.sh"
cd "$T"
b="$abs_top_builddir"
var() { sed -n "s|^$1 = ||p" "$b/Makefile"; }
# make of the build tree, apart from a make check that may be running us.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$b" "$@"; }
prefix=$(var prefix)
root="$T/root"
mk install DESTDIR="$root" >install.log 2>&1 || { cat install.log; fail "make install"; }

# The directories, as make expands them.
expand() { mk -f - print <<EOM
include Makefile
print:
	@echo \$($1)
EOM
}
bindir=$(expand bindir)
mandir=$(expand mandir)
docdir=$(expand docdir)
unitdir=$(expand systemdsystemunitdir)
compdir=$(expand bashcompletiondir)
plugindir=$(expand nbdkitplugindir)
for f in "$bindir/smove" "$mandir/man1/smove.1" "$mandir/man1/nbdkit-smove-plugin.1" \
	"$docdir/README.md" "$docdir/migration.md" "$docdir/nbdkit-smove-plugin.md" \
	"$docdir/control-socket.md" "$unitdir/smove-serve.service" "$compdir/smove" \
	"$plugindir/nbdkit-smove-plugin.so"; do
	[ -e "$root$f" ] || fail "make install did not install $f (in $(find "$root" -type f | head -40))"
done
case $plugindir in
"$prefix"/*) ;;
*) [ "$(var nbdkitplugindir)" != '${libdir}/nbdkit/plugins' ] ||
	fail "the plugin went outside the prefix $prefix: $plugindir" ;;
esac
"$root$bindir/smove" --version | grep -q '^smove ' || fail "the installed smove does not run"
if command -v man >/dev/null; then
	man -l "$root$mandir/man1/nbdkit-smove-plugin.1" 2>/dev/null | grep -q 'serve a VHD, VHDX or raw' ||
		fail "the plugin's man page does not render"
fi

# The unit names the installed binary and passes systemd-analyze verify.
unit="$root$unitdir/smove-serve.service"
grep -q "^ExecStart=$bindir/smove serve --listen " "$unit" || fail "unit: $(cat "$unit")"
grep -q '^KillMode=process$' "$unit" || fail "stopping the service would kill the VMs that arrived"
if command -v systemd-analyze >/dev/null; then
	# A copy naming the binary where DESTDIR holds it (the installed path
	# does not exist here); its man page is not installed system-wide either.
	sed "s|$bindir/smove|$root$bindir/smove|" "$unit" >smove-serve.service
	systemd-analyze verify --man=no "$T/smove-serve.service" >verify.log 2>&1 ||
		{ cat verify.log; fail "systemd-analyze verify smove-serve.service"; }
	! grep -q 'smove-serve' verify.log || { cat verify.log; fail "systemd-analyze warns about the unit"; }
fi

# The completion loads in bash, with nothing but bash, and completes.
complete_words() { # complete_words WORD...: what TAB offers after them
	PATH="$root$bindir:$PATH" bash --norc --noprofile -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		complete -p smove >/dev/null || exit 3
		_smove; printf "%s\n" "${COMPREPLY[@]}"' sh "$root$compdir/smove" "$@"
}
complete_words smove di >c.out || fail "the completion does not load: $(cat c.out)"
grep -qx disk c.out || fail "smove di<TAB>: $(cat c.out)"
complete_words smove disk con >c.out && grep -qx convert c.out || fail "smove disk con<TAB>: $(cat c.out)"
complete_words smove disk convert --tar >c.out && grep -qx -- --target-is-zero c.out ||
	fail "smove disk convert --tar<TAB>: $(cat c.out)"
complete_words smove move vm1 --par >c.out && grep -qx -- --parallel-connections c.out ||
	fail "smove move --par<TAB>: $(cat c.out)"
complete_words smove disk convert -O v >c.out && grep -qx vpc c.out || fail "-O v<TAB>: $(cat c.out)"
complete_words smove help disk co >c.out && grep -qx compare c.out || fail "help disk co<TAB>"

# The installed plugin serves an image.
if command -v nbdkit >/dev/null && command -v qemu-img >/dev/null; then
	"$root$bindir/smove" disk create -f vhdx d.vhdx 16M
	qemu-io -f vhdx -c 'write -P 7 0 1M' d.vhdx >/dev/null
	nbdkit -U "$T/p.sock" -P "$T/p.pid" "$root$plugindir/nbdkit-smove-plugin.so" file="$T/d.vhdx" ||
		fail "nbdkit could not load the installed plugin"
	on_exit 'kill $(cat "$T/p.pid") 2>/dev/null || :'
	for _ in $(seq 100); do [ -s p.pid ] && break; sleep 0.05; done
	qemu-img convert -O raw "nbd+unix:///?socket=$T/p.sock" d.raw || fail "reading through the plugin"
	qemu-img compare -q -U -f vhdx -F raw d.vhdx d.raw || fail "the plugin served other bytes"
fi

# And uninstall leaves nothing of it.
mk uninstall DESTDIR="$root" >/dev/null 2>&1 || fail "make uninstall"
left=$(find "$root" -type f | head -5)
[ -z "$left" ] || fail "make uninstall left: $left"
echo PASS
