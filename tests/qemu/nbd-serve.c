/* tests/qemu/nbd-serve.c: serves disk images with smove's in-process NBD server
 * (storage/nbd-server.h), for the tests that check it against real clients
 * and hostile ones.
 *
 *   nbd-serve [--readonly] [--detached] [--swap-ms N] SOCKET [ro:]IMAGE...
 *
 * Image i is export "dI" (the first is also the default export), read-only
 * with --readonly or when named ro:IMAGE. It prints
 * "ready" on standard output once listening, then waits for signals:
 *   SIGUSR1  attach every export's backend (with --detached they start with
 *            none: clients complete the handshake and their requests wait)
 *   SIGUSR2  print the counters
 *   SIGTERM, SIGINT  stop the server, flush and close the images, print the
 *            counters and exit 0.
 * --swap-ms N: a thread swaps every export's backend (to the same disk) every
 * N ms while clients run, and the number of swaps is printed at exit. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/nbd-server.h"

#define MAX_IMAGES 8

static struct storage_nbd_server *server;
static struct vhd_disk *disks[MAX_IMAGES];
static unsigned ndisks, swap_ms;
static volatile bool swapping_done;
static unsigned long swaps;

static void print_stats(void)
{
	char last[256];

	for (unsigned i = 0; i < ndisks; i++) {
		struct storage_nbd_stats st;

		storage_nbd_server_stats(server, i, &st);
		printf("d%u: requests %llu reads %llu writes %llu flushes %llu trims %llu zeroes "
		       "%llu bytes_read %llu bytes_written %llu errors %llu connections %u "
		       "in_flight %u waiting %u\n",
		       i, (unsigned long long)st.requests, (unsigned long long)st.reads,
		       (unsigned long long)st.writes, (unsigned long long)st.flushes,
		       (unsigned long long)st.trims, (unsigned long long)st.zeroes,
		       (unsigned long long)st.bytes_read, (unsigned long long)st.bytes_written,
		       (unsigned long long)st.errors, st.connections, st.in_flight, st.waiting);
	}
	storage_nbd_server_last_error(server, last, sizeof(last));
	printf("last error: %s\n", last);
	fflush(stdout);
}

static void *swapper(void *arg)
{
	char err[VHD_ERR_LEN];

	(void)arg;
	while (!swapping_done) {
		struct timespec ts = {(time_t)(swap_ms / 1000), (long)(swap_ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
		for (unsigned i = 0; i < ndisks; i++)
			if (storage_nbd_server_set_backend(server, i, &storage_blk_vhd_ops,
							   disks[i], err) == 0)
				swaps++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct storage_nbd_export ex[MAX_IMAGES];
	char names[MAX_IMAGES][16], err[VHD_ERR_LEN];
	bool readonly = false, detached = false;
	pthread_t swap_thread;
	sigset_t set;
	int a = 1, sig, status = 0;

	for (; a < argc && argv[a][0] == '-'; a++) {
		if (strcmp(argv[a], "--readonly") == 0)
			readonly = true;
		else if (strcmp(argv[a], "--detached") == 0)
			detached = true;
		else if (strcmp(argv[a], "--swap-ms") == 0 && a + 1 < argc)
			swap_ms = (unsigned)atoi(argv[++a]);
		else
			break;
	}
	if (argc - a < 2 || argc - a - 1 > MAX_IMAGES) {
		fprintf(stderr, "usage: nbd-serve [--readonly] [--detached] [--swap-ms N] SOCKET "
				"[ro:]IMAGE...\n");
		return 2;
	}
	for (int i = a + 1; i < argc; i++, ndisks++) {
		bool ro = readonly || strncmp(argv[i], "ro:", 3) == 0;
		struct vhd_open_opts o = {.readonly = ro};

		if (vhd_open(argv[i] + (strncmp(argv[i], "ro:", 3) == 0 ? 3 : 0), &o,
			     &disks[ndisks], err) < 0) {
			fprintf(stderr, "nbd-serve: %s\n", err);
			return 1;
		}
		snprintf(names[ndisks], sizeof(names[ndisks]), "d%u", ndisks);
		ex[ndisks] = (struct storage_nbd_export){names[ndisks], vhd_size(disks[ndisks]), ro,
							 detached ? NULL : &storage_blk_vhd_ops,
							 disks[ndisks]};
	}
	/* Every thread the server starts inherits this mask: signals come here. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (storage_nbd_server_start(argv[a], ex, ndisks, &server, err) < 0) {
		fprintf(stderr, "nbd-serve: %s\n", err);
		return 1;
	}
	if (swap_ms && pthread_create(&swap_thread, NULL, swapper, NULL) != 0)
		swap_ms = 0;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			for (unsigned i = 0; i < ndisks; i++)
				storage_nbd_server_set_backend(server, i, &storage_blk_vhd_ops,
							       disks[i], err);
		} else if (sig == SIGUSR2) {
			print_stats();
		} else {
			break;
		}
	}
	if (swap_ms) {
		swapping_done = true;
		pthread_join(swap_thread, NULL);
		printf("swaps: %lu\n", swaps);
	}
	storage_nbd_server_stop(server);
	print_stats();
	storage_nbd_server_free(server);
	for (unsigned i = 0; i < ndisks; i++) {
		if (!vhd_readonly(disks[i]) && vhd_flush(disks[i], err) < 0) {
			fprintf(stderr, "nbd-serve: %s\n", err);
			status = 1;
		}
		vhd_close(disks[i]);
	}
	return status;
}
