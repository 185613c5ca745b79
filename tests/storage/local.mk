# tests/storage/: the NBD and HTTP backends, the nbdkit plugin and the mirror
# engine, against real peers (nbdkit, nginx, qemu-img, qemu-io, nbdcopy).
EXTRA_DIST += tests/storage/servers.sh tests/storage/hostile-http.py tests/storage/hostile-nbd.py \
	tests/storage/plugin-clients.sh tests/storage/mirror-scenario.sh

storage_shell_tests = \
	tests/storage/test-nbd-url.sh \
	tests/storage/test-http.sh \
	tests/storage/test-https.sh \
	tests/storage/test-http-norange.sh \
	tests/storage/test-http-hostile.sh \
	tests/storage/test-nbd-hostile.sh \
	tests/storage/test-broken-remote.sh \
	tests/storage/test-plugin-raw.sh \
	tests/storage/test-plugin-vhd.sh \
	tests/storage/test-plugin-vhdx.sh \
	tests/storage/test-plugin-chain.sh \
	tests/storage/test-plugin-url.sh \
	tests/storage/test-mirror-raw.sh \
	tests/storage/test-mirror-vhd.sh \
	tests/storage/test-mirror-vhdx.sh \
	tests/storage/test-mirror-tls.sh \
	tests/storage/test-nbd-x509.sh \
	tests/storage/test-mirror-fault.sh \
	tests/storage/test-mirror-sparse-raw.sh \
	tests/storage/test-mirror-sparse-vhdx.sh \
	tests/storage/test-mirror-dirty-dest.sh \
	tests/storage/test-image-locks.sh
TESTS += $(storage_shell_tests)
EXTRA_DIST += $(storage_shell_tests)
# Bad input from servers: again under the sanitizers.
sanitizer_tests += tests/storage/test-http-hostile.sh tests/storage/test-http-norange.sh \
	tests/storage/test-nbd-hostile.sh tests/storage/test-broken-remote.sh \
	tests/storage/test-mirror-fault.sh

if HAVE_CRITERION
check_PROGRAMS += tests/storage/test-storage-io
TESTS += tests/storage/test-storage-io
tests_storage_test_storage_io_CFLAGS = $(unit_cflags)
tests_storage_test_storage_io_LDADD = storage/libstorage.la vhd/libvhd.la $(unit_ldadd)
check_PROGRAMS += tests/storage/test-mirror-api
TESTS += tests/storage/test-mirror-api
tests_storage_test_mirror_api_CFLAGS = $(unit_cflags)
tests_storage_test_mirror_api_LDADD = storage/libstorage.la vhd/libvhd.la $(unit_ldadd)
endif

# The mirror engine under a writer (driven by the test-mirror-*.sh scripts).
check_PROGRAMS += tests/storage/mirror-writer
tests_storage_mirror_writer_LDADD = storage/libstorage.la vhd/libvhd.la $(PTHREAD_LIBS)
