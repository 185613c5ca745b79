#!/bin/sh
# make-seeds.sh DIR: small valid images of every format and subformat, made by
# qemu-img (when installed) and by smove, as seeds for the image fuzzer.
set -eu
dir=$1
: "${SMOVE:=smove}"
if command -v qemu-img >/dev/null; then
	qemu-img create -q -f vpc -o subformat=dynamic "$dir/q-dyn.vhd" 4M
	qemu-img create -q -f vpc -o subformat=fixed "$dir/q-fixed.vhd" 1M
	qemu-img create -q -f vhdx -o block_size=1M "$dir/q.vhdx" 4M
	qemu-io -f vpc -c 'write -P 0x5a 0 64k' "$dir/q-dyn.vhd" >/dev/null
	qemu-io -f vhdx -c 'write -P 0x5a 1M 64k' "$dir/q.vhdx" >/dev/null
fi
"$SMOVE" disk create --size 4M --block-size 1M "$dir/s.vhdx" 2>/dev/null || true
"$SMOVE" disk create --size 4M --block-size 512K "$dir/s.vhd" 2>/dev/null || true
"$SMOVE" disk create --parent "$dir/s.vhd" "$dir/s-child.vhd" 2>/dev/null || true
"$SMOVE" disk create --parent "$dir/s.vhdx" "$dir/s-child.vhdx" 2>/dev/null || true
# Images over 1 MiB are cut: the fuzzer's inputs are bounded. A VHDX, whose
# structures sit at 1 MiB multiples, is written in the harness's sparse form.
for f in "$dir"/*; do
	case $f in
	*.vhdx)
		/usr/bin/python3 "$(dirname "$0")/sparse-seed.py" "$f" "$f.sparse" && rm "$f" ;;
	*) [ "$(stat -c %s "$f")" -le 1048576 ] || truncate -s 1M "$f" ;;
	esac
done
