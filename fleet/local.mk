# fleet/: many VMs, many hosts: the administrator's side of the
# administration role (inventories, moves commanded on a host), plans and
# their execution (smove plan, smove rebalance). Depends on proto/ and util/.
noinst_LTLIBRARIES += fleet/libfleet.la
fleet_libfleet_la_SOURCES = fleet/fleet.h fleet/client.c fleet/inventory.c fleet/plan.c \
	fleet/planfile.c fleet/run.c
fleet_libfleet_la_LIBADD = proto/libproto.la util/libutil.la $(PTHREAD_LIBS)
