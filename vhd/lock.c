/* vhd/lock.c: image locks, compatible with QEMU's image locking. Every smove
 * user of an image file (a VM, nbdkit smove, convert, create, mirror) takes
 * them here, so that each one and QEMU's tools see the others.
 *
 * QEMU (block/file-posix.c) locks single bytes of the image file with OFD
 * locks, all shared (F_RDLCK): byte 100+n held = "I use permission n", byte
 * 200+n held = "nobody else may have permission n", with n = 0 consistent
 * read, 1 write, 2 write-unchanged, 3 resize. Before taking its own it asks
 * (F_OFD_GETLK) whether another open file description holds a byte that
 * conflicts: 200+n for each permission it wants, 100+n for each one it
 * forbids. OFD locks belong to the open file description, not the process,
 * so two opens in one process conflict too, and a fork carries them. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vhd/vhd.h"

#define PERM_BASE   100
#define SHARED_BASE 200
#define PERM_READ   0
#define PERM_WRITE  1
#define PERM_RESIZE 3

/* 1 if another open file description holds a lock on byte, 0 if not. */
static int locked_by_other(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

static int lock_byte(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

static int busy(const char *name, const char *why, char *err)
{
	return vhd_error(err, EBUSY,
			 "%s: the disk is in use by another process, which %s (a VM, QEMU, "
			 "qemu-img or nbdkit has it open)",
			 name, why);
}

int vhd_lock_fd(int fd, const char *name, bool write, char *err)
{
	/* A reader uses read and forbids writes: it caches metadata (and a VM's
	 * guest its data) that a writer would change under it. A writer uses
	 * read and write and forbids write and resize, as a QEMU guest device
	 * does. Both allow other readers that forbid no more than that. */
	static const int held[] = {PERM_READ, PERM_WRITE};
	static const int forbidden[] = {PERM_WRITE, PERM_RESIZE};
	static const char *const why_held[] = {"forbids reading it", "forbids writing it"};
	static const char *const why_forbidden[] = {"writes it", "may resize it"};
	unsigned n = write ? 2 : 1;
	int r;

	for (unsigned i = 0; i < n; i++) {
		if ((r = locked_by_other(fd, SHARED_BASE + held[i])) > 0)
			return busy(name, why_held[i], err);
		if (r == 0 && (r = locked_by_other(fd, PERM_BASE + forbidden[i])) > 0)
			return busy(name, why_forbidden[i], err);
		if (r < 0)
			return vhd_error(err, -r, "%s: cannot test the image lock: %m", name);
	}
	for (unsigned i = 0; i < n; i++) {
		r = lock_byte(fd, PERM_BASE + held[i]);
		if (r == 0)
			r = lock_byte(fd, SHARED_BASE + forbidden[i]);
		if (r == -EAGAIN || r == -EACCES) /* taken between the test and now */
			return busy(name, "took its lock just now", err);
		if (r < 0)
			return vhd_error(err, -r, "%s: cannot lock the image: %m", name);
	}
	return 0;
}

int vhd_lock_path(const char *path, bool write, int *fd, char *err)
{
	int r, f = open(path, O_RDONLY | O_CLOEXEC);

	*fd = -1;
	if (f < 0)
		return vhd_error(err, errno, "%s: %m", path);
	r = vhd_lock_fd(f, path, write, err);
	if (r < 0) {
		close(f);
		return r;
	}
	*fd = f;
	return 0;
}
