# system/: what `make install` puts beside the binary for the system: the
# systemd unit of `smove serve` and the bash completion. Their directories
# are configure options (--with-systemdsystemunitdir,
# --with-bash-completion-dir), inside the prefix by default.
systemdsystemunit_DATA += system/smove-serve.service
bashcompletion_DATA += system/smove
EXTRA_DIST += system/smove-serve.service.in system/smove.bash-completion
CLEANFILES += system/smove-serve.service system/smove

# The unit names the installed binary: made at build time, when $(bindir)
# is known in full (configure leaves it as ${exec_prefix}/bin).
system/smove-serve.service: $(top_srcdir)/system/smove-serve.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) system && \
	sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		$(top_srcdir)/system/smove-serve.service.in >$@
system/smove: $(top_srcdir)/system/smove.bash-completion
	$(AM_V_GEN)$(MKDIR_P) system && cp $(top_srcdir)/system/smove.bash-completion $@
