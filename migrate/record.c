/* migrate/record.c: the durable records of migrations.
 *
 * Destination: DIR/.smove-sessions/ID.json for every incoming session,
 *   {"session": ID, "name": NAME, "state": "receiving"|"aborted"|"resuming"|
 *    "resumed"|"committed", "created_dir": BOOL, "time": UNIX_SECONDS}
 * written durably (util_write_durable) at each change. "resuming" is written
 * before the VM may run, "aborted" before a copy is discarded or a RESOLVE
 * is told NOT_RESUMED: RESOLVE answers from it, also after a restart.
 * Source: STATEDIR/NAME.migration while a migration may be in doubt
 * (written before the pause, removed when it settles), so that a source
 * process that ended in doubt is reported by `smove ps`, settled by `smove
 * move --resolve NAME`, and its disks refused by `smove run` until then. It
 * is in STATEDIR (/var/lib/smove), not RUNDIR (a tmpfs almost everywhere):
 * after a reboot in doubt, a VM started again from its disks could run
 * beside its copy on the destination. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migrate/internal.h"

static const char *const state_names[] = {"receiving", "aborted", "resuming", "resumed",
					  "committed"};

const char *mig_rec_state_name(enum mig_rec_state s)
{
	return (unsigned)s < 5 ? state_names[s] : "unknown";
}

void mig_record_path(const char *dir, const char *id, char *out, size_t len)
{
	snprintf(out, len, "%s/%s/%s.json", dir, MIG_RECORD_DIR, id);
}

/* A record is one 512-byte block (JSON padded with spaces): rewritten in
 * place with a single direct, synchronous pwrite (or pwrite and fdatasync), a
 * write of one sector that the device performs whole. The first version is created through a
 * temporary file and a rename, so that the file never exists half-written. */
#define RECORD_SIZE 512

int mig_record_write(const char *dir, const struct mig_record *r, char *err)
{
	char path[4096], block[RECORD_SIZE];
	struct proto_json j;
	const char *s;
	int rc, fd;

	util_path_join(path, sizeof(path), dir, MIG_RECORD_DIR);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return util_error(err, errno, "%s: %s", path, strerror(errno));
	mig_record_path(dir, r->id, path, sizeof(path));
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "session", r->id);
	proto_json_kv_str(&j, "name", r->name);
	proto_json_kv_str(&j, "state", mig_rec_state_name(r->state));
	proto_json_kv_bool(&j, "created_dir", r->created_dir);
	proto_json_kv_double(&j, "time", (double)time(NULL));
	proto_json_obj_end(&j);
	s = proto_json_finish(&j);
	if (!s || strlen(s) >= RECORD_SIZE) {
		proto_json_release(&j);
		return util_error(err, ENOMEM, "%s: record too large", path);
	}
	memset(block, ' ', sizeof(block));
	memcpy(block, s, strlen(s));
	block[RECORD_SIZE - 1] = '\n';
	proto_json_release(&j);
	/* Direct and synchronous: one sector written through with FUA, no cache
	 * flush of the whole device (file systems without O_DIRECT: fdatasync). */
	fd = open(path, O_WRONLY | O_CLOEXEC | O_DIRECT | O_DSYNC);
	if (fd >= 0) {
		void *aligned;

		if (posix_memalign(&aligned, 4096, RECORD_SIZE) == 0) {
			memcpy(aligned, block, RECORD_SIZE);
			rc = pwrite(fd, aligned, RECORD_SIZE, 0) == RECORD_SIZE ? 0 : -errno;
			free(aligned);
			if (rc == 0) {
				close(fd);
				return 0;
			}
		}
		close(fd);
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return util_write_durable(path, block, sizeof(block), err);
	/* Durability point: after fdatasync the record says r->state. */
	rc = pwrite(fd, block, sizeof(block), 0) == (ssize_t)sizeof(block) && fdatasync(fd) == 0
		 ? 0
		 : util_error(err, errno, "%s: %s", path, strerror(errno));
	close(fd);
	return rc;
}

static int copy_str(const struct proto_json_value *v, const char *key, char *dst, size_t len,
		    bool required, char *err)
{
	const char *s;
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_str(v, key, &s, perr);

	if (r == -ENOENT && !required) {
		dst[0] = 0;
		return 0;
	}
	if (r < 0 || strlen(s) >= len)
		return util_error(err, EINVAL, "record: bad or missing \"%s\"", key);
	strcpy(dst, s);
	return 0;
}

int mig_record_read(const char *dir, const char *id, struct mig_record *r, char *err)
{
	char path[4096], *text, state[32], perr[PROTO_ERR_LEN];
	struct proto_json_value *v;
	size_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	mig_record_path(dir, id, path, sizeof(path));
	if ((rc = util_read_small(path, &text, &len, 65536, err)) < 0)
		return rc;
	rc = proto_json_parse(text, len, &v, perr);
	free(text);
	if (rc < 0)
		return util_error(err, EINVAL, "%s: %s", path, perr);
	rc = copy_str(v, "session", r->id, sizeof(r->id), true, err);
	if (rc == 0)
		rc = copy_str(v, "name", r->name, sizeof(r->name), true, err);
	if (rc == 0)
		rc = copy_str(v, "state", state, sizeof(state), true, err);
	if (rc == 0) {
		rc = util_error(err, EINVAL, "%s: unknown state '%s'", path, state);
		for (unsigned i = 0; i < 5; i++)
			if (strcmp(state, state_names[i]) == 0) {
				r->state = (enum mig_rec_state)i;
				rc = 0;
			}
	}
	if (rc == 0)
		proto_json_get_bool(v, "created_dir", &r->created_dir, perr);
	proto_json_free(v);
	return rc;
}

int mig_record_transition(const char *dir, const char *id, unsigned from, enum mig_rec_state to,
			  const bool *created_dir, struct mig_record *now, char *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct mig_record cur;
	char path[4096];
	int fd, rc;

	mig_record_path(dir, id, path, sizeof(path));
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return util_error(err, errno, "%s: %s", path, strerror(errno));
	/* The lock serialises serve (RESOLVE, discard, confirmation) and the
	 * incoming VM's process (its resume) on this one record; it goes with
	 * the process that holds it, whatever kills it. */
	while ((rc = fcntl(fd, F_OFD_SETLKW, &fl)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		rc = util_error(err, errno, "%s: lock: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if ((rc = mig_record_read(dir, id, &cur, err)) == 0) {
		bool change;

		mig_test_delay("record");
		change = cur.state != to || (created_dir && *created_dir != cur.created_dir);

		if (cur.state != to && !(from & MIG_REC_BIT(cur.state)))
			rc = -ECANCELED;
		else if (change) {
			cur.state = to;
			if (created_dir)
				cur.created_dir = *created_dir;
			rc = mig_record_write(dir, &cur, err);
		}
	}
	if (rc == 0 || rc == -ECANCELED) {
		if (now)
			*now = cur;
	}
	close(fd);
	return rc;
}

/* ---- the source's record ---------------------------------------------------- */

static void source_path(const char *name, const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s/%s%s", migrate_state_dir(), name, suffix);
}

static int make_state_dir(char *err)
{
	char parent[4096];

	if (mkdir(migrate_state_dir(), 0700) == 0) {
		snprintf(parent, sizeof(parent), "%s/..", migrate_state_dir());
		return util_fsync_dir(parent, err);
	}
	if (errno != EEXIST)
		return util_error(err, errno, "%s: %s", migrate_state_dir(), strerror(errno));
	return 0;
}

int mig_source_record_write(const struct mig_source_record *r, char *err)
{
	return mig_source_record_write_as(r, ".migration", err);
}

int mig_source_record_write_as(const struct mig_source_record *r, const char *suffix, char *err)
{
	char path[4096];
	struct proto_json j;
	const char *s;
	int rc;

	if ((rc = make_state_dir(err)) < 0)
		return rc;
	source_path(r->name, suffix, path, sizeof(path));
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "name", r->name);
	proto_json_kv_str(&j, "session", r->id);
	proto_json_kv_str(&j, "to", r->to);
	proto_json_kv_str(&j, "tls_psk", r->tls_psk);
	proto_json_kv_str(&j, "tls_user", r->tls_user);
	proto_json_kv_str(&j, "tls_x509", r->tls_x509);
	proto_json_kv_str(&j, "own_dir", r->own_dir);
	proto_json_key(&j, "disks");
	proto_json_arr_begin(&j);
	for (unsigned i = 0; i < r->ndisks; i++)
		proto_json_str(&j, r->disks[i]);
	proto_json_arr_end(&j);
	proto_json_key(&j, "held");
	proto_json_arr_begin(&j);
	for (unsigned i = 0; i < r->nheld; i++)
		proto_json_str(&j, r->held[i]);
	proto_json_arr_end(&j);
	proto_json_obj_end(&j);
	s = proto_json_finish(&j);
	rc = s ? util_write_durable(path, s, strlen(s), err)
	       : util_error(err, ENOMEM, "out of memory");
	proto_json_release(&j);
	return rc;
}

/* A list of paths, at most MIGRATE_MAX_DISKS; an absent list is empty. */
static int read_paths(const struct proto_json_value *v, const char *key, char out[][1024],
		      unsigned *n, const char *path, char *err)
{
	const struct proto_json_value *d = proto_json_get(v, key);

	*n = 0;
	for (size_t i = 0; d && d->type == PROTO_JSON_ARRAY && i < d->n; i++) {
		if (i >= MIGRATE_MAX_DISKS || d->items[i]->type != PROTO_JSON_STRING ||
		    strlen(d->items[i]->str) >= 1024)
			return util_error(err, EINVAL, "%s: bad %s list", path, key);
		strcpy(out[(*n)++], d->items[i]->str);
	}
	return 0;
}

int mig_source_record_read(const char *name, struct mig_source_record *r, char *err)
{
	return mig_source_record_read_as(name, ".migration", r, err);
}

int mig_source_record_read_as(const char *name, const char *suffix, struct mig_source_record *r,
			      char *err)
{
	char path[4096], *text, perr[PROTO_ERR_LEN];
	struct proto_json_value *v;
	size_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	source_path(name, suffix, path, sizeof(path));
	if ((rc = util_read_small(path, &text, &len, 1 << 20, err)) < 0)
		return rc;
	rc = proto_json_parse(text, len, &v, perr);
	free(text);
	if (rc < 0)
		return util_error(err, EINVAL, "%s: %s", path, perr);
	if ((rc = copy_str(v, "name", r->name, sizeof(r->name), true, err)) == 0 &&
	    (rc = copy_str(v, "session", r->id, sizeof(r->id), true, err)) == 0 &&
	    (rc = copy_str(v, "to", r->to, sizeof(r->to), true, err)) == 0 &&
	    (rc = copy_str(v, "tls_psk", r->tls_psk, sizeof(r->tls_psk), false, err)) == 0 &&
	    (rc = copy_str(v, "tls_user", r->tls_user, sizeof(r->tls_user), false, err)) == 0 &&
	    (rc = copy_str(v, "own_dir", r->own_dir, sizeof(r->own_dir), false, err)) == 0)
		rc = copy_str(v, "tls_x509", r->tls_x509, sizeof(r->tls_x509), false, err);
	if (rc == 0)
		rc = read_paths(v, "disks", r->disks, &r->ndisks, path, err);
	if (rc == 0)
		rc = read_paths(v, "held", r->held, &r->nheld, path, err);
	proto_json_free(v);
	return rc;
}

void mig_source_record_remove(const char *name)
{
	mig_source_record_remove_as(name, ".migration");
}

void mig_source_record_remove_as(const char *name, const char *suffix)
{
	char path[4096], err[MIGRATE_ERR_LEN];

	source_path(name, suffix, path, sizeof(path));
	util_unlink_durable(path, err);
}

bool migrate_disk_held(const char *disk, char *name, size_t len)
{
	struct migrate_leftover_entry *list = NULL;
	struct mig_source_record r;
	char err[MIGRATE_ERR_LEN];
	struct stat a, b;
	size_t n = 0;
	bool held = false;

	if (stat(disk, &a) < 0 || migrate_leftover_list(&list, &n, err) < 0)
		return false;
	for (size_t i = 0; i < n && !held; i++) {
		if (mig_source_record_read(list[i].name, &r, err) < 0)
			continue;
		for (unsigned k = 0; k < r.nheld && !held; k++)
			held = stat(r.held[k], &b) == 0 && a.st_dev == b.st_dev &&
			       a.st_ino == b.st_ino;
		if (held)
			snprintf(name, len, "%s", r.name);
	}
	free(list);
	return held;
}

bool migrate_disk_uncommitted(const char *disk, char *session, size_t len)
{
	char storage[PATH_MAX], sessions[PATH_MAX + 32], err[MIGRATE_ERR_LEN], *name, *slash;
	struct dirent *e;
	bool found = false;
	DIR *d;

	/* STORAGE/NAME/DISK */
	if (!realpath(disk, storage) || !(slash = strrchr(storage, '/')) || slash == storage)
		return false;
	*slash = 0;
	if (!(slash = strrchr(storage, '/')) || slash == storage)
		return false;
	*slash = 0;
	name = slash + 1;
	util_path_join(sessions, sizeof(sessions), storage, MIG_RECORD_DIR);
	if (!(d = opendir(sessions)))
		return false;
	while (!found && (e = readdir(d))) {
		struct mig_record r;
		char id[2 * PROTO_ID_LEN + 1];
		size_t n = strlen(e->d_name);

		if (n != 2 * PROTO_ID_LEN + 5 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(id, sizeof(id), "%.*s", 2 * PROTO_ID_LEN, e->d_name);
		if (mig_record_read(storage, id, &r, err) == 0 && strcmp(r.name, name) == 0 &&
		    (r.state == MIG_REC_RESUMING || r.state == MIG_REC_RESUMED)) {
			snprintf(session, len, "%s", id);
			found = true;
		}
	}
	closedir(d);
	return found;
}
