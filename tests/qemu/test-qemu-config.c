/* tests/qemu/test-qemu-config.c: the QEMU runtime's configuration: defaults,
 * JSON round trip, copy, and every refusal (unknown keys, wrong types, a
 * missing or other "runtime", bad values), each with a message naming it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qemu.h"

static const char *full =
    "{\"runtime\": \"qemu\", \"name\": \"vm1\", \"qemu\": \"/usr/bin/qemu-system-x86_64\","
    " \"accel\": \"tcg\", \"machine\": \"pc-q35-7.2\", \"cpu\": \"Nehalem-v1\","
    " \"memory\": 268435456, \"cpus\": 2, \"kernel\": \"/k\", \"initrd\": \"/i\","
    " \"cmdline\": \"console=ttyS0 x=\\\"y\\\"\", \"firmware\": \"uefi\", \"uefi_code\": \"/c.fd\","
    " \"uefi_vars_template\": \"/t.fd\", \"uefi_vars\": \"/v.fd\", \"console\": \"/log\","
    " \"control\": \"/run/vm1.sock\","
    " \"disks\": [{\"path\": \"a.vhdx\", \"format\": \"vhdx\", \"readonly\": false, \"size\": "
    "1048576}, {\"path\": \"b.raw\", \"format\": \"raw\", \"readonly\": true}],"
    " \"nics\": [{\"tap\": \"tap0\", \"mac\": \"52:54:00:12:34:56\"}, {\"tap\": \"tap1\"}]}";

static int parse(const char *text, struct qemu_config *c, char *err)
{
	qemu_config_init(c);
	return qemu_config_from_json(text, strlen(text), c, err);
}

Test(qemu_config, defaults)
{
	struct qemu_config c;
	char err[QEMU_ERR_LEN];

	cr_assert_eq(parse("{\"runtime\": \"qemu\", \"name\": \"a\"}", &c, err), 0, "%s", err);
	cr_assert_eq(c.accel, QEMU_ACCEL_AUTO);
	cr_assert_eq(c.firmware, QEMU_FW_BIOS);
	cr_assert_eq(c.memory, 256ull << 20);
	cr_assert_eq(c.cpus, 1);
	cr_assert_null(c.machine);
	cr_assert_null(c.cpu);
	cr_assert_eq(c.ndisks, 0);
	qemu_config_release(&c);
}

Test(qemu_config, round_trip)
{
	struct qemu_config c, d, e;
	char err[QEMU_ERR_LEN], *j1, *j2;

	cr_assert_eq(parse(full, &c, err), 0, "%s", err);
	cr_assert_str_eq(c.cmdline, "console=ttyS0 x=\"y\"");
	cr_assert_eq(c.ndisks, 2);
	cr_assert_eq(c.disks[0].format, VHD_FORMAT_VHDX);
	cr_assert_eq(c.disks[0].size, 1048576);
	cr_assert(c.disks[1].readonly);
	cr_assert_eq(c.nnics, 2);
	cr_assert_null(c.nics[1].mac);
	cr_assert_eq(qemu_config_to_json(&c, &j1, err), 0);
	cr_assert(strstr(j1, "\"runtime\":\"qemu\""), "%s", j1);
	cr_assert_eq(qemu_config_copy(&d, &c, err), 0);
	qemu_config_release(&c);
	cr_assert_eq(qemu_config_to_json(&d, &j2, err), 0);
	cr_assert_str_eq(j1, j2);
	cr_assert_eq(parse(j2, &e, err), 0, "%s", err);
	free(j2);
	cr_assert_eq(qemu_config_to_json(&e, &j2, err), 0);
	cr_assert_str_eq(j1, j2);
	free(j1);
	free(j2);
	qemu_config_release(&d);
	qemu_config_release(&e);
}

/* Each bad configuration fails with EINVAL (or E2BIG) and a message holding
 * the given words. */
static void refused(const char *text, const char *words)
{
	struct qemu_config c;
	char err[QEMU_ERR_LEN] = "";
	int r = parse(text, &c, err);

	cr_assert(r == -EINVAL || r == -E2BIG, "accepted (%d): %s", r, text);
	cr_assert(strstr(err, words), "message '%s' lacks '%s' for %s", err, words, text);
	/* Released on failure: nothing to free, and reusable. */
	cr_assert_null(c.name);
}

#define R "{\"runtime\": \"qemu\", \"name\": \"vm1\", "
Test(qemu_config, refusals)
{
	refused("{\"name\": \"vm1\"}", "\"runtime\" is missing");
	refused("{\"runtime\": \"memsync\", \"name\": \"vm1\"}", "\"memsync\", not \"qemu\"");
	refused("{\"runtime\": 1, \"name\": \"vm1\"}", "runtime");
	refused(R "\"guest\": \"x\"}", "unknown key \"guest\"");
	refused(R "\"cpus\": 1, \"cpus\": 2}", "key \"cpus\" is given twice");
	refused(R "\"memory\": \"1G\"}", "memory");
	refused(R "\"memory\": 1000}", "multiple of 2 MiB");
	refused(R "\"memory\": -2097152}", "memory");
	refused(R "\"cpus\": 0}", "vCPUs");
	refused(R "\"cpus\": 100000000000}", "cpus");
	refused(R "\"cpus\": 1.5}", "cpus");
	refused(R "\"accel\": \"hvf\"}", "use auto, kvm or tcg");
	refused(R "\"firmware\": \"coreboot\"}", "use bios or uefi");
	refused(R "\"cpu\": \"host,+vmx\"}", "CPU model");
	refused(R "\"machine\": \"\"}", "machine type");
	refused(R "\"initrd\": \"/i\"}", "needs a kernel");
	refused(R "\"uefi_code\": \"/c\"}", "firmware is BIOS");
	refused(R "\"disks\": {}}", "\"disks\" must be an array");
	refused(R "\"disks\": [{\"format\": \"raw\"}]}", "no \"path\"");
	refused(R "\"disks\": [{\"path\": \"a\", \"format\": \"qcow2\"}]}",
		"auto, raw, vhd or vhdx");
	refused(R "\"disks\": [{\"path\": \"a\", \"cache\": \"none\"}]}", "unknown key \"cache\"");
	refused(R "\"disks\": [{\"path\": \"a\"}, {\"path\": \"a\"}]}", "given twice");
	refused(R "\"disks\": [{\"path\": \"a\", \"readonly\": 1}]}", "readonly");
	refused(
	    R "\"disks\": [{\"path\": \"1\"}, {\"path\": \"2\"}, {\"path\": \"3\"}, {\"path\": "
	      "\"4\"}, {\"path\": \"5\"}, {\"path\": \"6\"}, {\"path\": \"7\"}, {\"path\": \"8\"}, "
	      "{\"path\": \"9\"}]}",
	    "more than 8 disks");
	refused(R "\"nics\": [{\"mac\": \"52:54:00:00:00:01\"}]}", "no \"tap\"");
	refused(R "\"nics\": [{\"tap\": \"t0\", \"mac\": \"53:54:00:00:00:01\"}]}", "unicast");
	refused(R "\"nics\": [{\"tap\": \"t0\", \"mac\": \"52:54:00:00:00\"}]}", "MAC");
	refused(R "\"nics\": [{\"tap\": \"a/b\"}]}", "not a tap device name");
	refused(R "\"nics\": [{\"tap\": \"t0\"}, {\"tap\": \"t0\"}]}", "given twice");
	refused("{\"runtime\": \"qemu\", \"name\": \"-x\"}", "not valid");
	refused("{\"runtime\": \"qemu\"}", "not valid");
	refused("[1]", "must be a JSON object");
	refused("{\"runtime\": \"qemu\",", "configuration");
}
