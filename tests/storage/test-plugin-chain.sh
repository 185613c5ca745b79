#!/bin/sh
# A differencing VHDX (and VHD) served with its chain: by nbdkit smove from
# files, and from a web server (nginx) where the parent is found at the
# child's URL; writes through the plugin land in the child only; the mirror
# engine flattens the chain. Every read is compared with smove's own
# flattening of the local files.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires qemu-io nbdcopy nbdinfo

cd "$T"
mkdir www
for fmt in vhdx vhd; do
	q=$fmt
	[ "$fmt" = vhd ] && q=vpc
	"$SMOVE" disk create --size 64M --chs-round "www/base.$fmt" 2>err || {
		grep -q 'this build cannot' err && skip "no $fmt support in this build"
		cat err >&2
		exit 1
	}
	qemu-io -f "$q" -c 'write -P 0x11 0 4M' -c 'write -P 0x22 40M 2M' "www/base.$fmt" >/dev/null
	"$SMOVE" disk create --parent "www/base.$fmt" "www/child.$fmt"
	"$SMOVE" disk convert -q "www/child.$fmt" "flat-$fmt.raw"

	# From the files: the plugin reads through the chain.
	start_plugin "c$fmt" "file=$T/www/child.$fmt"
	nbdcopy "$nbd_uri" "copy-$fmt.raw"
	cmp "flat-$fmt.raw" "copy-$fmt.raw" || fail "$fmt: the chain read through the plugin differs"
	nbdinfo --map "$nbd_uri" | grep -q 'data' || fail "$fmt: no data in the chain's map"
	qemu-io -f raw -c 'write -P 0x33 1M 1M' "$nbd_uri" >/dev/null
	stop_plugin "c$fmt"
	"$SMOVE" disk convert -q "www/base.$fmt" "base-$fmt.raw"
	cmp "flat-$fmt.raw" "base-$fmt.raw" || fail "$fmt: a write through the plugin reached the parent"
	"$SMOVE" disk convert -q "www/child.$fmt" "flat2-$fmt.raw"
	cmp -s "flat-$fmt.raw" "flat2-$fmt.raw" && fail "$fmt: the write through the plugin is lost"
	mv "flat2-$fmt.raw" "flat-$fmt.raw"

	# The mirror engine flattens the chain into a fresh image.
	"$SMOVE" disk create --size 64M --chs-round "mirror.$fmt"
	start_plugin "m$fmt" "file=$T/mirror.$fmt"
	"$SMOVE" disk mirror -q --verify "www/child.$fmt" "$nbd_uri"
	stop_plugin "m$fmt"
	"$SMOVE" disk convert -q "mirror.$fmt" "mirror-$fmt.raw"
	cmp "flat-$fmt.raw" "mirror-$fmt.raw" || fail "$fmt: the mirrored chain differs"
done

# From a web server: the parent is fetched at the child's URL's directory.
start_nginx "$T/www"
for fmt in vhdx vhd; do
	url="http://127.0.0.1:$NGINX_PORT/child.$fmt"
	"$SMOVE" disk info "$url" | grep -q "base.$fmt" || fail "$fmt: the chain over HTTP lacks its parent"
	"$SMOVE" disk convert -q "$url" "http-$fmt.raw"
	cmp "flat-$fmt.raw" "http-$fmt.raw" || fail "$fmt: the chain read over HTTP differs"
	start_plugin "u$fmt" url="$url"
	nbdcopy "$nbd_uri" "nbd-http-$fmt.raw"
	cmp "flat-$fmt.raw" "nbd-http-$fmt.raw" || fail "$fmt: the plugin's url= chain differs"
	stop_plugin "u$fmt"
done
echo PASS
