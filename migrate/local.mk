# migrate/: the VM host (control socket, registry) and the live migration,
# whatever runs the VM: the runtimes are reached through migrate/runtime.h,
# one file each. Depends on storage/, proto/, util/ and the runtimes' public
# headers.
noinst_LTLIBRARIES += migrate/libmigrate.la
migrate_libmigrate_la_SOURCES = \
	migrate/migrate.h migrate/internal.h migrate/runtime.h \
	migrate/vm.c migrate/runtime-memsync.c migrate/runtime-qemu.c \
	migrate/control.c migrate/registry.c migrate/testhook.c migrate/events.c \
	migrate/limit.c migrate/handover.c migrate/opts.c migrate/record.c
# The source, in the VM's process.
migrate_libmigrate_la_SOURCES += migrate/source.c migrate/source-preflight.c migrate/storage.c \
	migrate/memory.c migrate/precopy.c migrate/stream.c migrate/switchover.c migrate/resolve.c \
	migrate/queue.c
# The destination: serve, and the incoming VM's process.
migrate_libmigrate_la_SOURCES += migrate/preflight.c migrate/serve.c migrate/dest.c \
	migrate/dest-preflight.c migrate/dest-resolve.c migrate/dest-disk.c migrate/child.c migrate/incoming.c migrate/prefault.c
# The administration role (serve) and cold moves.
migrate_libmigrate_la_SOURCES += migrate/admin.c migrate/inventory.c migrate/cold.c
migrate_libmigrate_la_CFLAGS = $(AM_CFLAGS) $(LIBNBD_CFLAGS)
