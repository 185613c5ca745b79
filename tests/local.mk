# tests/: unit tests (criterion), shell tests against real peers, fuzzing.
# Each area has its own folder and local.mk; shared helpers live here.
EXTRA_DIST += tests/functions.sh
TESTS += tests/test-help-manpage.sh
EXTRA_DIST += tests/test-help-manpage.sh

# Criterion unit tests link against the libraries they test.
unit_cflags = $(AM_CFLAGS) $(CRITERION_CFLAGS)
unit_ldadd = $(CRITERION_LIBS) $(PTHREAD_LIBS) -lm

include tests/util/local.mk
include tests/disk/local.mk
include tests/vpc/local.mk
include tests/vhdx/local.mk
include tests/fuzz/local.mk
include tests/storage/local.mk
include tests/memsync/local.mk
include tests/proto/local.mk
include tests/migrate/local.mk
include tests/cli/local.mk
include tests/qemu/local.mk
include tests/fleet/local.mk
