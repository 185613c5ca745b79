# docs/: the manual page and the protocol references.
dist_man1_MANS += docs/smove.1 docs/nbdkit-smove-plugin.1
doc_files = docs/nbdkit-smove-plugin.md docs/control-socket.md docs/design.md docs/protocol.md docs/formats.md docs/migration.md \
	docs/rebalance.md
EXTRA_DIST += $(doc_files)
# make install puts them in $(docdir), with the README.
doc_DATA += README.md $(doc_files)
