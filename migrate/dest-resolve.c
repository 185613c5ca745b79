/* migrate/dest-resolve.c: a destination's answer to RESOLVE, from its
 * session records: whether the VM of a session was resumed here, was never
 * and never will be (the promise made under the record's lock), or cannot be
 * told without a person. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/internal.h"

/* A VM of that name is registered here and its process lives. */
static bool runs_here(const char *name)
{
	struct migrate_registry_entry *e;
	char err[MIGRATE_ERR_LEN];
	bool runs = false;
	size_t n;

	if (migrate_registry_list(&e, &n, err) < 0)
		return true; /* cannot tell: as before, the record decides */
	for (size_t i = 0; i < n; i++)
		runs |= !e[i].stale && strcmp(e[i].name, name) == 0;
	free(e);
	return runs;
}

enum proto_outcome mig_dest_resolve(struct migrate_serve *sv, const char *id, char *detail,
				    size_t len)
{
	struct mig_record rec;
	char err[MIGRATE_ERR_LEN];
	enum proto_outcome out;
	int r;

	/* The promise "never" for a session still receiving, atomic against the
	 * incoming VM's resume (the record's lock); a session of a serve that
	 * crashed is settled the same way. */
	memset(&rec, 0, sizeof(rec));
	pthread_mutex_lock(&sv->lock);
	r = mig_record_transition(sv->storage, id, MIG_REC_BIT(MIG_REC_RECEIVING), MIG_REC_ABORTED,
				  NULL, &rec, err);
	for (struct mig_incoming *i = sv->incoming; i && (r == 0 || r == -ECANCELED); i = i->next)
		if (strcmp(i->id, id) == 0 && i->rec.id[0])
			i->rec = rec;
	pthread_mutex_unlock(&sv->lock);
	if (r < 0 && r != -ECANCELED)
		rec.state = (enum mig_rec_state) - 1;
	switch ((int)rec.state) {
	case MIG_REC_ABORTED:
		out = PROTO_OUTCOME_NOT_RESUMED;
		snprintf(detail, len, "%s was never resumed here and never will be", rec.name);
		break;
	case MIG_REC_RESUMING:
		/* The VM's process made the record and resumes next: only its
		 * death stops it. Gone, it may have died before or after the
		 * resume (the guest may have run and written its disks here):
		 * neither copy can be declared the VM's without a person. */
		if (!runs_here(rec.name)) {
			out = PROTO_OUTCOME_UNKNOWN;
			snprintf(detail, len,
				 "%s was resuming here but its process is gone: it may have run "
				 "here; both copies are kept for a person to choose",
				 rec.name);
			break;
		}
		/* fallthrough */
	case MIG_REC_RESUMED:
	case MIG_REC_COMMITTED:
		out = PROTO_OUTCOME_RESUMED;
		snprintf(detail, len, "%s was resumed here (%s)", rec.name,
			 mig_rec_state_name(rec.state));
		break;
	default:
		out = PROTO_OUTCOME_UNKNOWN;
		snprintf(detail, len, "no record of session %s (it may still be copying)", id);
	}
	return out;
}
