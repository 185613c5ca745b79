/* tests/migrate/test-record.c: the destination's session record, the one
 * place where "this host may run the VM" is decided. serve (RESOLVE, a
 * discard) and the incoming VM's process (its resume) move it with
 * mig_record_transition; these tests race two processes on one record and
 * check that exactly one decision wins and that what is on disk says which. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate/internal.h"

static char dir[] = "/tmp/smove-test-record-XXXXXX";
static const char *id = "00112233445566778899aabbccddeeff";

static void setup(void)
{
	struct mig_record r = {.state = MIG_REC_RECEIVING};
	char err[MIGRATE_ERR_LEN];

	cr_assert(mkdtemp(dir));
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.name, sizeof(r.name), "vm1");
	cr_assert_eq(mig_record_write(dir, &r, err), 0, "%s", err);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
}

static enum mig_rec_state on_disk(void)
{
	struct mig_record r;
	char err[MIGRATE_ERR_LEN];

	cr_assert_eq(mig_record_read(dir, id, &r, err), 0, "%s", err);
	return r.state;
}

TestSuite(record, .init = setup, .fini = teardown);

Test(record, resume_then_resolve_is_resumed)
{
	struct mig_record now;
	char err[MIGRATE_ERR_LEN];

	cr_assert_eq(mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING),
					   MIG_REC_RESUMING, NULL, &now, err),
		     0, "%s", err);
	/* RESOLVE comes after: the promise "never" can no longer be given. */
	cr_assert_eq(mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING), MIG_REC_ABORTED,
					   NULL, &now, err),
		     -ECANCELED);
	cr_assert_eq(now.state, MIG_REC_RESUMING);
	cr_assert_eq(on_disk(), MIG_REC_RESUMING);
}

Test(record, resolve_then_resume_never_resumes)
{
	struct mig_record now;
	char err[MIGRATE_ERR_LEN];

	cr_assert_eq(mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING), MIG_REC_ABORTED,
					   NULL, &now, err),
		     0, "%s", err);
	cr_assert_eq(mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING),
					   MIG_REC_RESUMING, NULL, &now, err),
		     -ECANCELED);
	cr_assert_eq(now.state, MIG_REC_ABORTED);
	cr_assert_eq(on_disk(), MIG_REC_ABORTED);
	/* Being in the state asked for already is no error. */
	cr_assert_eq(mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING), MIG_REC_ABORTED,
					   NULL, &now, err),
		     0);
}

Test(record, created_dir_kept_by_a_transition)
{
	struct mig_record now;
	char err[MIGRATE_ERR_LEN];

	cr_assert_eq(mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING),
					   MIG_REC_RECEIVING, &(bool){true}, &now, err),
		     0, "%s", err);
	cr_assert_eq(mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING), MIG_REC_ABORTED,
					   NULL, &now, err),
		     0, "%s", err);
	cr_assert(now.created_dir, "the transition lost created_dir");
	cr_assert_eq(on_disk(), MIG_REC_ABORTED);
}

/* Many processes race for the two decisions at once: exactly one kind wins,
 * every loser is told so, and the disk agrees with the winners. */
Test(record, racing_processes_agree)
{
	enum {
		N = 16
	};
	pid_t pids[N];
	int resumed = 0, aborted = 0;

	/* Each process takes 5 ms between its read and its write: without the
	 * record's lock, several would see "receiving" and all write. */
	setenv("SMOVE_TEST_DELAY", "record:5", 1);

	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		cr_assert(pids[i] >= 0);
		if (pids[i] == 0) {
			enum mig_rec_state to = i % 2 ? MIG_REC_RESUMING : MIG_REC_ABORTED;
			struct mig_record now;
			char err[MIGRATE_ERR_LEN];
			int r = mig_record_transition(dir, id, MIG_REC_BIT(MIG_REC_RECEIVING), to,
						      NULL, &now, err);

			_exit(r == 0		? (to == MIG_REC_RESUMING ? 10 : 20)
			      : r == -ECANCELED ? 30
						: 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int st;

		cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
		cr_assert(WIFEXITED(st));
		cr_assert_neq(WEXITSTATUS(st), 1, "a transition failed");
		resumed += WEXITSTATUS(st) == 10;
		aborted += WEXITSTATUS(st) == 20;
	}
	cr_assert(resumed == 0 || aborted == 0, "%d resumes and %d aborts both won", resumed,
		  aborted);
	cr_assert_eq(resumed + aborted, N / 2, "the winners' kind: all of it");
	cr_assert_eq(on_disk(), resumed ? MIG_REC_RESUMING : MIG_REC_ABORTED);
}
