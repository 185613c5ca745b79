# tests/fleet/: many VMs, many hosts: a destination's limit and the source's
# queue, the administration role (inventory, moves commanded from
# elsewhere), plans and their execution (smove plan, smove rebalance), cold
# moves. Each script runs with the QEMU runtime (.qemu: the Linux test
# guest, TCG where /dev/kvm is missing), several `smove serve` hosts on
# loopback (tests/fleet/lib.sh).
fleet_tests = tests/fleet/test-fleet-queue.qemu tests/fleet/test-fleet-drain.qemu \
	tests/fleet/test-fleet-dest-killed.qemu tests/fleet/test-fleet-resume.qemu \
	tests/fleet/test-fleet-dryrun.qemu tests/fleet/test-fleet-cold.qemu \
	tests/fleet/test-fleet-admin.qemu
TESTS += $(fleet_tests)
check_SCRIPTS += $(fleet_tests)
CLEANFILES += $(fleet_tests)
tests/fleet/%.qemu: $(srcdir)/tests/fleet/%.sh
	$(make_qemu_variant)
EXTRA_DIST += $(fleet_tests:.qemu=.sh)
EXTRA_DIST += tests/fleet/lib.sh tests/fleet/watch.py
# The planner, without hosts.
if HAVE_CRITERION
check_PROGRAMS += tests/fleet/test-plan
TESTS += tests/fleet/test-plan
sanitizer_tests += tests/fleet/test-plan
tests_fleet_test_plan_CFLAGS = $(unit_cflags)
tests_fleet_test_plan_LDADD = fleet/libfleet.la $(unit_ldadd)
endif
# One administration request, as given (test-fleet-admin).
check_PROGRAMS += tests/fleet/admin-request
tests_fleet_admin_request_LDADD = fleet/libfleet.la $(PTHREAD_LIBS)
