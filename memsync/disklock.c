/* memsync/disklock.c: disks are locked while a VM uses them, with OFD locks on
 * the bytes QEMU uses for its image locking (block/file-posix.c: byte 100+n
 * held = "I use permission n", byte 200+n held = "nobody else may have
 * permission n"; n = 0 consistent read, 1 write, 2 write-unchanged, 3 resize).
 * A VM holds read (and write) and forbids others write and resize, as a QEMU
 * guest device does, so qemu-img and another smove refuse to write the disk
 * (and to read it without -U) while the VM runs. The locks live as long as the
 * returned descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "memsync/internal.h"

#define PERM_BASE   100
#define SHARED_BASE 200
#define PERM_READ   0
#define PERM_WRITE  1
#define PERM_RESIZE 3

static bool locked_by_other(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};

	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

static int lock_byte(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};

	return fcntl(fd, F_OFD_SETLK, &fl);
}

int vm_disk_lock(const char *path, bool readonly, int *out, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int held[] = {PERM_READ, PERM_WRITE};
	int unshared[] = {PERM_WRITE, PERM_RESIZE};
	unsigned nheld = readonly ? 1 : 2, nunshared = readonly ? 1 : 2;

	if (fd < 0)
		return vm_error(err, errno, "%s: %s", path, strerror(errno));
	for (unsigned i = 0; i < nheld; i++)
		if (locked_by_other(fd, SHARED_BASE + held[i]))
			goto busy;
	for (unsigned i = 0; i < nunshared; i++)
		if (locked_by_other(fd, PERM_BASE + unshared[i]))
			goto busy;
	for (unsigned i = 0; i < nheld; i++)
		if (lock_byte(fd, PERM_BASE + held[i]) < 0)
			goto busy;
	for (unsigned i = 0; i < nunshared; i++)
		if (lock_byte(fd, SHARED_BASE + unshared[i]) < 0)
			goto busy;
	*out = fd;
	return 0;
busy:
	close(fd);
	return vm_error(err, EBUSY,
			"%s: the disk is in use by another process (a VM or qemu-img holds its "
			"lock)",
			path);
}
