#!/bin/sh
# Every command is documented, and each command's --help and its man-page
# section list the same options: every long option --help names is in the
# section, every option the section defines (its .TP tags, long and short)
# is in --help, and so is every short option --help gives.
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
	# The options the section defines: the tag line after each .TP.
	awk 'prev == ".TP" {print} {prev = $0}' "$T/section" | sed 's/\\//g' |
		grep -oE -- '(^|[ "])--?[a-zA-Z][a-z0-9-]*' | tr -d ' "' | sort -u >"$T/manopts"
	while read -r opt; do
		case $opt in
		--*) grep -Eq -- "$opt([^a-z0-9-]|$)" "$T/help" ;;
		*) grep -Eq -- "(^|[ ,])$opt([ ,]|$)" "$T/help" ;;
		esac || fail "smove $1: the man page defines $opt, --help does not list it"
	done <"$T/manopts"
	# Short options --help gives ("  -f, --format") are in the section too.
	for opt in $(grep -oE -- '^ +-[a-zA-Z]\>' "$T/help" | tr -d ' ' | sort -u); do
		[ "$opt" = -h ] && continue
		grep -Fq -- "\\$opt" "$T/section" ||
			fail "smove $1 --help gives $opt, its man-page section does not"
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
