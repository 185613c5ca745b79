#!/bin/sh
# Every long option that a command's --help lists appears in the man page,
# in the section of that command, and every command is documented.
. "$abs_top_srcdir/tests/functions.sh"

man="$abs_top_srcdir/docs/smove.1"
commands=$("$SMOVE" --help | awk '/^Commands:/{on=1;next} on && NF==0{exit} on{print $1}')
[ -n "$commands" ] || fail "smove --help lists no commands"
check_help() { # check_help "CMD WORDS"
	"$SMOVE" $1 --help >"$T/help" || fail "smove $1 --help failed"
	grep -Fq ".SS \"smove $1\"" "$man" || fail "man page has no section for 'smove $1'"
	awk -v s=".SS \"smove $1\"" '$0==s{on=1;next} on && /^\.S[SH] /{exit} on' "$man" >"$T/section"
	for opt in $(grep -oE -- '--[a-z][a-z0-9-]+' "$T/help" | sort -u); do
		[ "$opt" = --help ] && continue
		manopt=$(printf '%s' "$opt" | sed 's/-/\\-/g') # roff escapes every dash
		grep -Fq -- "$manopt" "$T/section" ||
			fail "smove $1 --help lists $opt, its man-page section does not"
	done
}
for c in $commands; do
	sub=$("$SMOVE" $c --help | awk '/^Commands:/{on=1;next} on && NF==0{exit} on{print $1}')
	if [ -n "$sub" ]; then
		for s in $sub; do check_help "$c $s"; done
	else
		check_help "$c"
	fi
done
echo PASS
