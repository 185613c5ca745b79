/* cmd/run.h: what the files of `smove run` share (run.c parses the command
 * line, run-vm.c makes the VM in its runtime, run-host.c hosts it). */
#ifndef SMOVE_CMD_RUN_H
#define SMOVE_CMD_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "migrate/migrate.h"

/* The command line, as given; NULL/0 where an option was not given. */
struct run_args {
	const char *runtime; /* "memsync", "qemu" */
	const char *config;  /* --config FILE */
	const char *name, *cmdline, *control, *console;
	uint64_t memory;
	unsigned cpus;
	bool cpus_given;
	unsigned ndisks;
	char *disks[MIGRATE_MAX_DISKS]; /* FILE[,readonly][,format=FMT] */
	bool json;
	bool force; /* start a VM whose migration here was never committed */
	/* memsync */
	const char *guest, *dirty_log;
	/* qemu */
	const char *qemu, *accel, *machine, *cpu_model, *kernel, *initrd, *firmware, *uefi_vars;
	unsigned nnics;
	char *nics[8]; /* TAP[,mac=MAC] */
};

/* Makes the VM the arguments describe, in its runtime, not yet started: 0,
 * or an exit status (the message printed). */
int run_make_vm(const struct run_args *a, struct migrate_vm **out);

void run_block_signals(void);
/* A VM whose migration is in doubt does not start again here, by its name
 * or by one of its disks, nor (without force) one that arrived by a
 * migration never committed: 0, or EXIT_FAILURE (the message printed). */
int run_check_leftover(const char *name, const char *const *disks, unsigned ndisks, bool force);
/* Registers, serves the control socket, starts and waits for the VM: the
 * exit status. Frees the VM. */
int run_host(struct migrate_vm *vm, bool json);
/* `smove run --incoming`: a VM that `smove serve` creates for a migration. */
int run_incoming(int data_fd, int handover_fd, bool json);

#endif
