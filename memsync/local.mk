# memsync/: smove's KVM virtual machine, its devices and the test guest.
noinst_LTLIBRARIES += memsync/libmemsync.la
memsync_libmemsync_la_SOURCES = \
	memsync/memsync.h memsync/internal.h \
	memsync/vm.c memsync/vcpu.c memsync/vcpu-state.c memsync/boot.c memsync/cpuid.c \
	memsync/dirty.c memsync/blob.c memsync/config.c \
	memsync/hostcheck.c \
	memsync/devices/virtio.h memsync/devices/uart.c memsync/devices/pci.c \
	memsync/devices/virtio-pci.c memsync/devices/virtio-blk.c \
	memsync/guest/abi.h
memsync_libmemsync_la_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
memsync_libmemsync_la_CPPFLAGS = $(AM_CPPFLAGS)
# What links libmemsync needs besides it.
memsync_libs = memsync/libmemsync.la storage/libstorage.la vhd/libvhd.la proto/libproto.la \
	util/libutil.la $(ZLIB_LIBS) $(PTHREAD_LIBS)

# The test guest: freestanding, built with the project's compiler but none of
# its flags (no sanitizers, no PIC, no red zone), linked at 1 MiB. Installed
# where `smove run` looks for it by default.
guest_sources = memsync/guest/entry.S memsync/guest/main.c memsync/guest/lib.c \
	memsync/guest/mem.c memsync/guest/disk.c memsync/guest/multiboot.c
guest_headers = memsync/guest/guest.h memsync/guest/abi.h memsync/guest/virtio-regs.h
GUEST_CFLAGS = -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -nostdlib -static \
	-fno-pic -fno-pie -no-pie -mno-red-zone -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
	-Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
pkgdata_DATA = memsync/guest/guest.elf memsync/guest/guest32.elf
CLEANFILES += memsync/guest/guest.elf memsync/guest/guest32.elf
EXTRA_DIST += $(guest_sources) memsync/guest/guest.h memsync/guest/guest.ld \
	memsync/guest/virtio-regs.h
memsync/guest/guest.elf: $(addprefix $(srcdir)/,$(guest_sources) $(guest_headers) memsync/guest/guest.ld)
	$(AM_V_GEN)$(MKDIR_P) memsync/guest && \
	$(CC) $(GUEST_CFLAGS) -I$(top_srcdir) -T $(srcdir)/memsync/guest/guest.ld -o $@ \
		$(addprefix $(srcdir)/,$(guest_sources))
# The same image as a 32-bit ELF entered at its multiboot entry, for QEMU's
# -kernel (QEMU 7.2 loads no 64-bit multiboot ELF).
memsync/guest/guest32.elf: memsync/guest/guest.elf
	$(AM_V_GEN)start=$$(nm memsync/guest/guest.elf | awk '$$3 == "_start32" {print $$1}') && \
	objcopy -O elf32-i386 --set-start=0x$$start memsync/guest/guest.elf $@
