# cmd/: the smove executable. Thin: it parses arguments and calls the libraries.
bin_PROGRAMS += cmd/smove
cmd_smove_SOURCES = cmd/cmd.h cmd/smove.c cmd/util.c cmd/tls.c cmd/progress.c cmd/demo.c
cmd_smove_LDADD = fleet/libfleet.la migrate/libmigrate.la memsync/libmemsync.la qemu/libqemu.la storage/libstorage.la \
	vhd/libvhd.la proto/libproto.la util/libutil.la $(PTHREAD_LIBS) -lm
# smove disk
cmd_smove_SOURCES += cmd/disk.h cmd/disk.c cmd/disk-info.c cmd/disk-map.c \
	cmd/disk-create.c cmd/disk-convert.c cmd/disk-check.c cmd/disk-compare.c \
	cmd/disk-resize.c
# smove disk mirror (storage/); URLs in every disk command
cmd_smove_SOURCES += cmd/disk-mirror.c
# smove run, ps (migrate/ and the runtimes)
cmd_smove_SOURCES += cmd/run.h cmd/run.c cmd/run-vm.c cmd/run-host.c cmd/ps.c
cmd_smove_CPPFLAGS = $(AM_CPPFLAGS) -DSMOVE_GUEST_PATH='"$(pkgdatadir)/guest.elf"' \
	-DSMOVE_PLUGIN_PATH='"$(nbdkitplugindir)/nbdkit-smove-plugin.so"'
cmd_smove_LDADD += $(ZLIB_LIBS)
# smove serve, move (migration)
cmd_smove_SOURCES += cmd/serve.c cmd/move.c cmd/report.c cmd/demo-migrate.c
# smove plan, rebalance (fleet/)
cmd_smove_SOURCES += cmd/plan.c cmd/rebalance.c
