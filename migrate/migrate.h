/* migrate/migrate.h: smove's VM host and its live migration, the one public
 * header of migrate/.
 *
 * A VM runs in a runtime: smove's own KVM VMM (memsync/) or QEMU (qemu/).
 * migrate/ knows a runtime only through the ops struct of migrate/runtime.h,
 * which one file per runtime fills (runtime-memsync.c, runtime-qemu.c); what
 * a host does with a VM is the same whatever runs it:
 *
 *   migrate_vm_*        the VM, wrapped: start, wait, stop, status
 *   migrate_control_*   its control socket (line-oriented JSON,
 *                       docs/control-socket.md) and the client side
 *   migrate_registry_*  the VMs of this host (RUNDIR/NAME.json)
 *   migrate_attach      the source side of a migration, in the VM's process:
 *                       the commands migrate, migrate-cancel, migrate-resolve
 *   migrate_serve_*     the destination, `smove serve`
 *   migrate_incoming_*  the incoming VM's process (`smove run --incoming`)
 *   migrate_leftover_*  migrations in doubt whose source process has ended
 *
 * docs/migration.md tells the whole story; docs/design.md why it is built so.
 *
 * Conventions: functions return 0 (or a count) or a negative errno with a
 * sentence in err (MIGRATE_ERR_LEN bytes). The library never prints and never
 * exits: a migration ends with an outcome (enum migrate_result), and cmd/
 * makes exit statuses of it.
 */
#ifndef SMOVE_MIGRATE_H
#define SMOVE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define MIGRATE_ERR_LEN	  512
#define MIGRATE_NAME_MAX  64
#define MIGRATE_MAX_DISKS 8

/* ---- the outcome of a migration -------------------------------------------- */

enum migrate_result {
	MIGRATE_DONE,	     /* moved (or, for a dry run, the destination said go) */
	MIGRATE_FAILED,	     /* failed before anything changed */
	MIGRATE_NOGO,	     /* the destination's preflight said no */
	MIGRATE_ROLLED_BACK, /* failed or cancelled: the VM runs here again */
	MIGRATE_IN_DOUBT,    /* paused here; settle with `smove move --resolve` */
};
/* "done", "failed", "no-go", "rolled-back", "in-doubt" (the result events'
 * "result"); parse returns -EINVAL for another name. */
const char *migrate_result_name(enum migrate_result r);
int migrate_result_parse(const char *name, enum migrate_result *out);

/* ---- a VM, whatever runs it ---------------------------------------------------- */

struct vm;	/* memsync/memsync.h */
struct qemu_vm; /* qemu/qemu.h */
struct migrate_vm;

/* Wraps a runtime's VM; the wrapper owns it from then on (migrate_vm_free
 * frees both). */
int migrate_vm_memsync(struct vm *vm, struct migrate_vm **out, char *err);
int migrate_vm_qemu(struct qemu_vm *vm, struct migrate_vm **out, char *err);

/* The runtime a VM's configuration (JSON text) names in its "runtime" member:
 * "qemu", or "memsync" when it has none. */
const char *migrate_config_runtime(const char *config_json);

const char *migrate_vm_name(const struct migrate_vm *v);
const char *migrate_vm_runtime(const struct migrate_vm *v);
/* The control socket path of its configuration (NULL: the default). */
const char *migrate_vm_control_path(const struct migrate_vm *v);
int migrate_vm_start(struct migrate_vm *v, char *err);
/* Until the VM has stopped: 0 if the guest stopped by itself with *guest_exit,
 * 1 if it was stopped (migrate_vm_stop), or a negative errno for a VM error. */
int migrate_vm_wait(struct migrate_vm *v, int *guest_exit, char *err);
/* Asks the VM to stop, from any thread (not a signal handler). */
void migrate_vm_stop(struct migrate_vm *v);

struct migrate_vm_status {
	const char *state; /* created, running, paused, incoming, stopped */
	uint64_t uptime_ns;
	uint64_t last_pause_ns;
	unsigned throttle;
	/* What the test guests publish (guest_valid false for another guest). */
	bool guest_valid;
	const char *guest_state; /* boot, running, done, failed */
	uint64_t heartbeat;
	uint64_t max_gap_ns;
	char guest_message[160];
};
void migrate_vm_status(struct migrate_vm *v, struct migrate_vm_status *st);
void migrate_vm_free(struct migrate_vm *v);

/* ---- runtime directory, registry ------------------------------------------------ */

/* $SMOVE_RUNTIME_DIR, or /run/smove: control sockets, the registry. */
const char *migrate_runtime_dir(void);
/* $SMOVE_STATE_DIR, or /var/lib/smove: the records that decide who owns a
 * VM, which must survive a reboot (a tmpfs RUNDIR would not). */
const char *migrate_state_dir(void);

/* Registers the VM as NAME (a file RUNDIR/NAME.json locked while the process
 * lives, naming its pid and control socket). -EEXIST when a live VM has it. */
struct migrate_registry;
int migrate_registry_add(const char *name, const char *control, struct migrate_registry **out,
			 char *err);
void migrate_registry_remove(struct migrate_registry *r);

struct migrate_registry_entry {
	char name[MIGRATE_NAME_MAX + 1];
	char control[256];
	long pid;
	bool stale; /* its process is gone (the entry has been removed) */
};
/* Lists the registered VMs; stale entries are removed and reported as stale. */
int migrate_registry_list(struct migrate_registry_entry **out, size_t *n, char *err);

/* ---- the control socket ------------------------------------------------------------ */

struct migrate_control;
/* A command handler: adds its members to the reply object (after "ok": true)
 * and returns 0, or returns a negative errno with err (the reply is then
 * {"ok": false, "error": err}). Runs on the control socket's thread. */
typedef int (*migrate_control_fn)(void *opaque, const struct proto_json_value *request,
				  struct proto_json *reply, char *err);
/* Serves the VM's built-in commands (status, config, pause, resume, stop). */
int migrate_control_start(struct migrate_vm *vm, const char *path, struct migrate_control **out,
			  char *err);
/* Adds a command (the migration adds migrate, migrate-cancel, ...). */
int migrate_control_register(struct migrate_control *c, const char *cmd, migrate_control_fn fn,
			     void *opaque);
/* A command that keeps its client (`migrate` streams events until its
 * result): fn receives fd, a blocking duplicate of the client's socket that
 * it owns from then on (it writes every reply line itself), and returns 0; or
 * it returns a negative errno with err, fd is closed and the client gets
 * {"ok": false, "error": err}. Runs on the control socket's thread: it must
 * hand long work to a thread of its own. */
typedef int (*migrate_control_stream_fn)(void *opaque, const struct proto_json_value *request,
					 int fd, char *err);
int migrate_control_register_stream(struct migrate_control *c, const char *cmd,
				    migrate_control_stream_fn fn, void *opaque);
/* Names the VM's state in `status` where its run state alone would mislead
 * (a VM paused by a migration in doubt is not merely "paused"): fn returns
 * that state's name, or NULL to report the run state, and may add members of
 * its own to the reply (they come before "state"). One per socket; fn NULL
 * removes it. */
typedef const char *(*migrate_control_status_fn)(void *opaque, struct proto_json *reply);
void migrate_control_status_hook(struct migrate_control *c, migrate_control_status_fn fn,
				 void *opaque);
void migrate_control_stop(struct migrate_control *c);
/* Sends one request line to a control socket and returns the reply line. */
int migrate_control_request(const char *path, const char *request, char **reply, int timeout_ms,
			    char *err);
/* Sends one request and calls fn with each line the VM sends back, and with
 * NULL after tick_ms without one (or after a signal interrupted the wait), until
 * fn returns nonzero (a negative errno is returned as the result, with err
 * written by fn) or the VM closes the connection (-ECONNRESET). */
typedef int (*migrate_control_line_fn)(void *opaque, const char *line);
int migrate_control_stream(const char *path, const char *request, int tick_ms,
			   migrate_control_line_fn fn, void *opaque, char *err);

/* ---- the source: a migrator in the VM's process -------------------------------------
 *
 * A migrator adds the commands migrate, migrate-cancel and migrate-resolve to
 * the VM's control socket and runs each migration in a thread of its own.
 * When a migration is done the VM has been stopped (migrate_vm_wait returns)
 * and its files deleted; migrate_moved then says where it went. */
struct migrator;
struct migrate_attach_opts {
	/* Every event line, also when no client listens (the VM's log). */
	void (*log)(void *opaque, const char *line);
	void *opaque;
	/* The directory serve made for an incoming VM: removed with its files when
	 * the VM leaves again. NULL for a VM whose files are the user's. */
	const char *own_dir;
};
int migrate_attach(struct migrate_vm *vm, struct migrate_control *ctl,
		   const struct migrate_attach_opts *o, struct migrator **out, char *err);
bool migrate_moved(struct migrator *mm, char *to, size_t len);
bool migrate_in_doubt(struct migrator *mm);
/* Cancels a migration in progress (it rolls back if it can) and waits for it.
 * The migrator's commands and its `status` hook live on the control socket:
 * stop that first. */
void migrate_detach(struct migrator *mm);

/* ---- migrations in doubt whose source process has ended ---------------------------- */

/* A source process that ended while its migration was in doubt leaves its
 * record: true (and the destination in `to`) when NAME has one. */
bool migrate_leftover(const char *name, char *to, size_t len);
struct migrate_leftover_entry {
	char name[MIGRATE_NAME_MAX + 1];
	char to[256];
};
/* True (and the VM's name) when an unresolved migration's record names this
 * disk file (any path to it): `smove run` refuses to start a VM on it. */
bool migrate_disk_held(const char *disk, char *name, size_t len);
/* True (and the session's id) when disk lies in a directory `smove serve`
 * made for a VM that arrived by a migration never committed (its record
 * "resuming" or "resumed"): its source may have abandoned it and run its own
 * copy again, so `smove run` does not start it without --force. */
bool migrate_disk_uncommitted(const char *disk, char *session, size_t len);
/* Every such record (malloc'ed list). */
int migrate_leftover_list(struct migrate_leftover_entry **out, size_t *n, char *err);
/* Settles one by asking the destination (line gets the events); the outcome.
 * MIGRATE_DONE deletes the disk files named in it. give_up: where the
 * destination cannot say, abandon it (fence its copy; the VM may be started
 * here again). A VM abandoned so has its fence delivered instead. */
int migrate_leftover_resolve(const char *name, bool give_up,
			     void (*line)(void *opaque, const char *line), void *opaque,
			     enum migrate_result *result, char *err);

/* ---- the destination: `smove serve` ---------------------------------------------------
 *
 * One process, one listening address, a thread per connection; each incoming
 * migration gets its storage under storage/NAME and a VM process of its own
 * (`exe run --incoming`). */
struct migrate_serve_opts {
	const char *listen;  /* ADDR:PORT (port 0: any, see migrate_serve_address) */
	const char *storage; /* DIR */
	const char *tls_psk, *tls_x509;
	bool insecure;	       /* without TLS, listen beyond loopback */
	unsigned max_incoming; /* migrations at once, 0 = 4 */
	const char *exe;       /* the smove executable for the VM processes */
	const char *nbdkit;    /* the nbdkit executable (NULL: "nbdkit") */
	const char *plugin;    /* the smove plugin for nbdkit (NULL: "smove") */
	void (*log)(void *opaque, const char *line);
	void *opaque;
};
struct migrate_serve;
/* Binds, locks the storage directory, cleans up or reports what crashed
 * migrations left (through log). */
int migrate_serve_new(const struct migrate_serve_opts *o, struct migrate_serve **out, char *err);
const char *migrate_serve_address(const struct migrate_serve *s);
/* Accepts until migrate_serve_stop (callable from any thread, not a signal
 * handler). */
int migrate_serve_run(struct migrate_serve *s, char *err);
void migrate_serve_stop(struct migrate_serve *s);
/* Aborts the migrations in progress (before RESUME they are discarded). */
void migrate_serve_free(struct migrate_serve *s);

/* ---- the incoming VM's process --------------------------------------------------------
 *
 * `smove run --incoming --handover-fd M (--memfd N | --stream-fd N)`:
 * migrate_incoming_accept reads serve's "create" request and creates the VM
 * in the runtime its configuration names (its RAM the memfd, or its
 * runtime's stream arriving on the stream socket); the caller registers it
 * and starts its control socket, then migrate_incoming_ready answers serve and
 * serves the rest of the handover (disks, state, resume, status, commit) in a
 * thread. Before resume, a serve that goes away stops the VM. */
struct migrate_incoming;
int migrate_incoming_accept(int handover_fd, int data_fd, struct migrate_incoming **out,
			    struct migrate_vm **vm, char *err);
int migrate_incoming_ready(struct migrate_incoming *in, char *err);
void migrate_incoming_fail(struct migrate_incoming *in, const char *why);
/* The directory that holds the VM's files (serve's storage/NAME). */
const char *migrate_incoming_dir(const struct migrate_incoming *in);
void migrate_incoming_free(struct migrate_incoming *in);

#endif
