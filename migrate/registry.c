/* migrate/registry.c: the VMs of this host. Each running VM owns a file
 * NAME.json in the runtime directory ($SMOVE_RUNTIME_DIR, or /run/smove),
 * holding its name, pid and control socket, and keeps it locked (flock) for as
 * long as its process lives. A file nobody locks belongs to a process that
 * died: listing removes it and reports it as stale. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/internal.h"

struct migrate_registry {
	int fd;
	char path[4096];
};

const char *migrate_runtime_dir(void)
{
	const char *d = getenv("SMOVE_RUNTIME_DIR");

	return d && d[0] ? d : "/run/smove";
}

const char *migrate_state_dir(void)
{
	const char *d = getenv("SMOVE_STATE_DIR");

	return d && d[0] ? d : "/var/lib/smove";
}

static int entry_path(const char *name, char *out, size_t len, char *err)
{
	if ((size_t)snprintf(out, len, "%s/%s.json", migrate_runtime_dir(), name) >= len)
		return util_error(err, ENAMETOOLONG, "%s: runtime directory path too long",
				  migrate_runtime_dir());
	return 0;
}

int migrate_registry_add(const char *name, const char *control, struct migrate_registry **out,
			 char *err)
{
	struct migrate_registry *r = calloc(1, sizeof(*r));
	struct proto_json j;
	const char *text;
	int e;

	if (!r)
		return util_error(err, ENOMEM, "out of memory");
	if (mkdir(migrate_runtime_dir(), 0700) < 0 && errno != EEXIST) {
		e = util_error(err, errno, "%s: cannot create the runtime directory: %s",
			       migrate_runtime_dir(), strerror(errno));
		free(r);
		return e;
	}
	if ((e = entry_path(name, r->path, sizeof(r->path), err)) < 0) {
		free(r);
		return e;
	}
	r->fd = open(r->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->fd < 0 || flock(r->fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno == EWOULDBLOCK
			? util_error(err, EEXIST, "a VM named '%s' is already running on this host",
				     name)
			: util_error(err, errno, "%s: %s", r->path, strerror(errno));
		if (r->fd >= 0)
			close(r->fd);
		free(r);
		return e;
	}
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "name", name);
	proto_json_kv_int(&j, "pid", getpid());
	proto_json_kv_str(&j, "control", control);
	proto_json_obj_end(&j);
	text = proto_json_finish(&j);
	if (!text || ftruncate(r->fd, 0) < 0 || pwrite(r->fd, text, strlen(text), 0) < 0) {
		e = util_error(err, errno ? errno : ENOMEM, "%s: cannot write: %s", r->path,
			       strerror(errno));
		proto_json_release(&j);
		migrate_registry_remove(r);
		return e;
	}
	proto_json_release(&j);
	*out = r;
	return 0;
}

void migrate_registry_remove(struct migrate_registry *r)
{
	if (!r)
		return;
	unlink(r->path);
	close(r->fd);
	free(r);
}

/* Reads one entry; returns false if its file is unreadable. */
static bool read_entry(int fd, struct migrate_registry_entry *e)
{
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	struct proto_json_value *v;
	char perr[PROTO_ERR_LEN];
	const char *s;
	uint64_t pid;
	bool ok = false;

	if (n <= 0 || proto_json_parse(buf, (size_t)n, &v, perr) < 0)
		return false;
	if (proto_json_get_str(v, "control", &s, perr) == 0 &&
	    proto_json_get_u64(v, "pid", &pid, perr) == 0) {
		snprintf(e->control, sizeof(e->control), "%s", s);
		e->pid = (long)pid;
		ok = true;
	}
	proto_json_free(v);
	return ok;
}

int migrate_registry_list(struct migrate_registry_entry **out, size_t *n, char *err)
{
	DIR *d = opendir(migrate_runtime_dir());
	struct migrate_registry_entry *list = NULL;
	struct dirent *de;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0
				       : util_error(err, errno, "%s: %s", migrate_runtime_dir(),
						    strerror(errno));
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct migrate_registry_entry e = {0};
		int fd;

		if (len < 6 || len - 5 > MIGRATE_NAME_MAX ||
		    strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
			continue;
		memcpy(e.name, de->d_name, len - 5);
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		bool readable = read_entry(fd, &e);
		if (flock(fd, LOCK_SH | LOCK_NB) == 0 &&
		    (!readable || (kill((pid_t)e.pid, 0) < 0 && errno == ESRCH))) {
			e.stale = true; /* nobody holds it: its process is gone */
			unlinkat(dirfd(d), de->d_name, 0);
		}
		close(fd);
		if (*n == cap) {
			struct migrate_registry_entry *nl =
			    realloc(list, (cap = cap ? 2 * cap : 8) * sizeof(*nl));

			if (!nl) {
				free(list);
				closedir(d);
				return util_error(err, ENOMEM, "out of memory");
			}
			list = nl;
		}
		list[(*n)++] = e;
	}
	closedir(d);
	*out = list;
	return 0;
}
