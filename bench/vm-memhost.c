/* bench/vm-memhost.c: the test guest's memory-pattern loop (memsync/guest/mem.c,
 * built for the host) over SIZE MiB, PASSES times, as bench/vm.sh compares it
 * with the same loop in a guest. Prints the microseconds that passes 2 and
 * later took (the first touches the pages). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

void pattern_fill(uint64_t *page, uint64_t gpa, uint64_t gen);

int main(int argc, char **argv)
{
	uint64_t size = argc > 1 ? strtoull(argv[1], NULL, 0) << 20 : 512ull << 20;
	uint64_t passes = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
	struct timespec a, b;
	uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t gen = 1; gen <= passes; gen++) {
		if (gen == 2) /* after first touch, as the guest measures */
			clock_gettime(CLOCK_MONOTONIC, &a);
		for (uint64_t off = 0; off < size; off += 4096)
			pattern_fill((uint64_t *)(mem + off), off, gen);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.0f\n",
	       (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3);
	return 0;
}
