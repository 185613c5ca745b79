/* tests/fuzz/replay-main.c: the main() of the replay programs. It feeds each
 * file named on the command line to the harness's LLVMFuzzerTestOneInput, so
 * that a fuzzer's corpus also runs under the project's compiler and the
 * sanitizer build, without libFuzzer. A file is read to its end, whatever
 * its size said before (another test may be rewriting a shared corpus). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0, n;

		if (!f) {
			perror(argv[i]);
			return 1;
		}
		do {
			if (len == cap) {
				uint8_t *p = realloc(buf, cap = cap ? cap * 2 : 65536);

				if (!p) {
					perror(argv[i]);
					return 1;
				}
				buf = p;
			}
			n = fread(buf + len, 1, cap - len, f);
			len += n;
		} while (n > 0);
		if (ferror(f)) {
			perror(argv[i]);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
	}
	return 0;
}
