# qemu/guest/: the Linux test guest, for the QEMU runtime and for machines
# without /dev/kvm: Debian's cloud kernel, fetched into the build tree (never
# installed), and an initramfs with busybox-static, the virtio modules and
# smove's checker (the built-in test guest's programs, console lines and disk
# records, for a real kernel). What `make` leaves, for the tests:
#   qemu/guest/linux/vmlinuz, modules/, modules.order   fetch-kernel.sh
#   qemu/guest/initramfs.cpio                            mkinitramfs.sh
#   qemu/guest/linux/kernel.missing                      why there is none
# The downloaded package stays in the cache (configure --with-kernel-cache, or
# SMOVE_KERNEL_CACHE when make runs; default qemu/guest/cache in the build
# tree), so a rebuild downloads nothing; where the kernel cannot be had, the
# next `make` tries again.
checker_sources = qemu/guest/checker.c qemu/guest/checker-mem.c qemu/guest/checker-disk.c \
	memsync/guest/mem.c
checker_headers = qemu/guest/checker.h memsync/guest/abi.h
linux_guest_scripts = qemu/guest/fetch-kernel.sh qemu/guest/mkinitramfs.sh qemu/guest/init.sh
EXTRA_DIST += qemu/guest/checker.c qemu/guest/checker-mem.c qemu/guest/checker-disk.c \
	qemu/guest/checker.h $(linux_guest_scripts) qemu/guest/mkuefi-vhdx.sh
# The checker runs in the guest, alone: static, and none of the project's
# sanitizer flags.
CHECKER_CFLAGS = -std=gnu11 -D_GNU_SOURCE -DGUEST_HOST_BUILD -O2 -g $(WARN_CFLAGS) \
	-static -pthread

all-local: linux-guest
if LINUX_GUEST
linux-guest: qemu/guest/initramfs.cpio
qemu/guest/smove-checker: $(addprefix $(srcdir)/,$(checker_sources) $(checker_headers))
	$(AM_V_GEN)$(MKDIR_P) qemu/guest && \
	$(CC) $(CHECKER_CFLAGS) -I$(top_srcdir) -o $@ $(addprefix $(srcdir)/,$(checker_sources)) -lz
# No stamp when the kernel is missing: the next make tries again.
qemu/guest/linux/stamp: $(srcdir)/qemu/guest/fetch-kernel.sh
	$(AM_V_GEN)$(SHELL) $(srcdir)/qemu/guest/fetch-kernel.sh \
		"$${SMOVE_KERNEL_CACHE:-$(kernel_cache)}" qemu/guest/linux && \
	{ test -f qemu/guest/linux/kernel.missing || touch $@; }
qemu/guest/initramfs.cpio: qemu/guest/linux/stamp qemu/guest/smove-checker \
		$(addprefix $(srcdir)/,$(linux_guest_scripts))
	$(AM_V_GEN)if test -f qemu/guest/linux/kernel.missing; then rm -f $@; else \
	$(SHELL) $(srcdir)/qemu/guest/mkinitramfs.sh $@ qemu/guest/linux qemu/guest/smove-checker \
		$(srcdir)/qemu/guest/init.sh '$(BUSYBOX)'; fi
else
linux-guest:
	$(AM_V_GEN)$(MKDIR_P) qemu/guest/linux && \
	printf '%s\n' "$(linux_guest_missing)" >qemu/guest/linux/kernel.missing
endif
.PHONY: linux-guest

clean-local: clean-linux-guest
clean-linux-guest:
	rm -rf qemu/guest/linux qemu/guest/smove-checker qemu/guest/initramfs.cpio \
		qemu/guest/initramfs.cpio.tmp qemu/guest/initramfs.cpio.root
# The downloaded package, where it is in the build tree (never another cache).
distclean-local: distclean-linux-guest
distclean-linux-guest:
	rm -rf qemu/guest/cache
.PHONY: clean-linux-guest distclean-linux-guest
