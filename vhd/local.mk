# vhd/: the disk-image library (raw, VHD, VHDX). Depends on libc and util/ only.
noinst_LTLIBRARIES += vhd/libvhd.la
vhd_libvhd_la_SOURCES = \
	vhd/vhd.h vhd/driver.h \
	vhd/disk.c vhd/copy.c vhd/compare.c vhd/resize.c vhd/extents.c vhd/util.c \
	vhd/io.c vhd/io-file.c vhd/io-stream.c vhd/io-memory.c \
	vhd/lock.c vhd/raw.c vhd/utf16.c
# The VHD format (Microsoft Virtual PC).
vhd_libvhd_la_SOURCES += vhd/vpc.h vhd/vpc-format.c vhd/vpc-open.c vhd/vpc-io.c vhd/vpc-meta.c \
	vhd/vpc-check.c vhd/vpc-create.c vhd/vpc-resize.c
# The VHDX format (Hyper-V).
vhd_libvhd_la_SOURCES += vhd/vhdx.h vhd/vhdx-header.c vhd/vhdx-metadata.c \
	vhd/vhdx-log.c vhd/vhdx-overlay.c vhd/vhdx-bat.c vhd/vhdx-io.c vhd/vhdx-zero.c \
	vhd/vhdx-open.c vhd/vhdx-create.c vhd/vhdx-check.c vhd/vhdx-resize.c
vhd_libvhd_la_LIBADD = util/libutil.la
