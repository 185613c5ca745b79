/* tests/memsync/test-state-blob.c: saved state is untrusted input (it arrives
 * over the network in a migration). The framing refuses bad magic, versions,
 * lengths and checksums; the section parser, reached with a valid checksum,
 * refuses truncated, oversized, unknown and missing sections; random damage
 * never crashes it. No KVM needed: it works on encoded states alone. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "memsync/memsync.h"

static char err[VM_ERR_LEN];

static struct vm_vcpu_state *sample(void)
{
	struct vm_vcpu_state *s = calloc(1, sizeof(*s));

	s->version = VM_STATE_VERSION;
	for (size_t i = 0; i < sizeof(s->regs); i++)
		s->regs[i] = (uint8_t)(i * 3);
	s->mp_state = 0;
	s->xsave_len = 4096;
	memset(s->xsave, 0xab, s->xsave_len);
	s->nmsrs = 3;
	s->msrs[0].index = 0x10;
	s->msrs[0].data = 123456789;
	s->msrs[1].index = 0xc0000080;
	s->msrs[2].index = 0x4b564d01;
	s->msrs[2].data = 0x6001;
	return s;
}

/* Rewrites the trailing CRC so that the parser, not the checksum, is tested. */
static void recrc(uint8_t *buf, size_t len)
{
	uint32_t c = (uint32_t)crc32(0, buf, (uInt)(len - 4));

	for (int i = 0; i < 4; i++)
		buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void set_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

Test(state_blob, round_trip)
{
	struct vm_vcpu_state *s = sample(), *d = calloc(1, sizeof(*d));
	uint8_t *buf;
	size_t len;

	cr_assert_eq(vm_vcpu_state_encode(s, &buf, &len, err), 0, "%s", err);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), 0, "%s", err);
	cr_assert_eq(memcmp(s->regs, d->regs, sizeof(s->regs)), 0);
	cr_assert_eq(d->nmsrs, 3);
	cr_assert_eq(d->msrs[2].data, 0x6001);
	cr_assert_eq(d->xsave_len, 4096);
	free(buf);
	free(s);
	free(d);
}

Test(state_blob, framing_refused)
{
	struct vm_vcpu_state *s = sample(), *d = calloc(1, sizeof(*d));
	uint8_t *buf;
	size_t len;

	cr_assert_eq(vm_vcpu_state_encode(s, &buf, &len, err), 0);
	cr_assert_eq(vm_vcpu_state_decode(buf, 10, d, err), -EINVAL);
	buf[0] ^= 1; /* magic */
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EINVAL);
	cr_assert(strstr(err, "not smove state"), "%s", err);
	buf[0] ^= 1;
	buf[8] = 99; /* version */
	recrc(buf, len);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EPROTO);
	cr_assert(strstr(err, "version 99"), "%s", err);
	buf[8] = VM_STATE_VERSION;
	buf[12] = 3; /* another blob type */
	recrc(buf, len);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EINVAL);
	buf[12] = 1;
	set_le64(buf + 16, (uint64_t)len); /* length */
	recrc(buf, len);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EINVAL);
	set_le64(buf + 16, (uint64_t)len - 28);
	recrc(buf, len);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), 0, "%s", err);
	buf[100] ^= 0x40; /* checksum */
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EBADMSG);
	free(buf);
	free(s);
	free(d);
}

Test(state_blob, sections_refused)
{
	struct vm_vcpu_state *s = sample(), *d = calloc(1, sizeof(*d));
	uint8_t *buf;
	size_t len;

	cr_assert_eq(vm_vcpu_state_encode(s, &buf, &len, err), 0);
	/* The first section (registers, 144 bytes) claims to be longer than the blob. */
	buf[24 + 4] = 0xff;
	buf[24 + 5] = 0xff;
	buf[24 + 6] = 0xff;
	recrc(buf, len);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EINVAL);
	cr_assert(strstr(err, "overruns"), "%s", err);
	buf[24 + 4] = 143; /* shorter than kvm_regs */
	buf[24 + 5] = buf[24 + 6] = 0;
	recrc(buf, len);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EINVAL);
	buf[24 + 4] = 144;
	buf[24] = 77; /* an unknown section */
	recrc(buf, len);
	cr_assert_eq(vm_vcpu_state_decode(buf, len, d, err), -EINVAL);
	cr_assert(strstr(err, "unknown vCPU section 77"), "%s", err);
	free(buf);
	/* A state without its MSR section (the last) is incomplete. */
	cr_assert_eq(vm_vcpu_state_encode(s, &buf, &len, err), 0);
	size_t cut = len - 4 - 8 - 3 * 12;
	set_le64(buf + 16, cut - 24);
	memmove(buf + cut, buf + len - 4, 4);
	recrc(buf, cut + 4);
	cr_assert_eq(vm_vcpu_state_decode(buf, cut + 4, d, err), -EINVAL);
	cr_assert(strstr(err, "incomplete"), "%s", err);
	free(buf);
	free(s);
	free(d);
}

Test(state_blob, random_damage)
{
	struct vm_vcpu_state *s = sample(), *d = calloc(1, sizeof(*d));
	uint8_t *buf, *copy;
	size_t len;
	unsigned seed = 12345;

	cr_assert_eq(vm_vcpu_state_encode(s, &buf, &len, err), 0);
	copy = malloc(len);
	for (int round = 0; round < 3000; round++) {
		size_t n = len;

		memcpy(copy, buf, len);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245 + 12345;
			copy[24 + seed % (len - 28)] = (uint8_t)(seed >> 16);
		}
		if (round % 7 == 0) {
			n = 28 + seed % (len - 28);
			set_le64(copy + 16, n - 28);
		}
		recrc(copy, n);
		vm_vcpu_state_decode(copy, n, d, err); /* must not crash; may succeed */
		cr_assert(d->nmsrs <= VM_MAX_MSRS && d->xsave_len <= VM_XSAVE_MAX);
	}
	free(copy);
	free(buf);
	free(s);
	free(d);
}
