/* memsync/guest/lib.c: the test guest's small libc: memory and string
 * functions (gcc may call them), a printf to the UART, CRC-32, a PRNG and the
 * command-line parser. Runs in ring 3. */
#include "memsync/guest/guest.h"

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

struct out {
	char *buf;
	size_t len, pos;
};

static void out_c(struct out *o, char c)
{
	if (o->pos + 1 < o->len)
		o->buf[o->pos++] = c;
}

static void out_u(struct out *o, uint64_t v, unsigned base)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		out_c(o, tmp[--n]);
}

/* %s %c %d %u %x with l/ll (all taken as 64-bit when l is given). */
static void vformat(struct out *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int longs = 0;

		if (*fmt != '%') {
			out_c(o, *fmt);
			continue;
		}
		while (*++fmt == 'l')
			longs++;
		switch (*fmt) {
		case 's':
			for (const char *s = va_arg(ap, const char *); *s; s++)
				out_c(o, *s);
			break;
		case 'c':
			out_c(o, (char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);

			if (v < 0) {
				out_c(o, '-');
				v = -v;
			}
			out_u(o, (uint64_t)v, 10);
			break;
		}
		case 'u':
		case 'x':
			out_u(o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned),
			      *fmt == 'u' ? 10 : 16);
			break;
		case '%':
			out_c(o, '%');
			break;
		default:
			return;
		}
	}
}

void gsnprintf(char *buf, size_t len, const char *fmt, ...)
{
	struct out o = {buf, len, 0};
	va_list ap;

	va_start(ap, fmt);
	vformat(&o, fmt, ap);
	va_end(ap);
	buf[o.pos] = 0;
}

static volatile uint32_t console_lock;

/* Each byte is one exit to the VMM (tens of microseconds): keep lines short.
 * A line goes out whole, not interleaved with another vCPU's. */
void gprintf(const char *fmt, ...)
{
	char buf[256];
	struct out o = {buf, sizeof(buf), 0};
	va_list ap;

	va_start(ap, fmt);
	vformat(&o, fmt, ap);
	va_end(ap);
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause");
	for (size_t i = 0; i < o.pos; i++)
		outb(GUEST_PORT_UART, (uint8_t)buf[i]);
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

static uint32_t crc_table[256];

void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* zlib's CRC-32 (reflected 0xedb88320), so that the host checks with zlib. */
uint32_t crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

int cmdline_get(const char *key, uint64_t *out, char *str, size_t strmax)
{
	const char *p = boot->cmdline;
	size_t klen = strlen(key);

	while (*p) {
		const char *w = p, *v;
		size_t n = 0;

		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - w) > klen && memcmp(w, key, klen) == 0 && w[klen] == '=') {
			v = w + klen + 1;
			if (str) {
				while (v + n < p && n + 1 < strmax) {
					str[n] = v[n];
					n++;
				}
				str[n] = 0;
				return 0;
			}
			uint64_t val = 0;
			if (v == p)
				return -1;
			for (; v < p && *v >= '0' && *v <= '9'; v++)
				val = val * 10 + (uint64_t)(*v - '0');
			if (v < p) {
				unsigned shift = *v == 'K'   ? 10
						 : *v == 'M' ? 20
						 : *v == 'G' ? 30
							     : 99;
				if (shift == 99 || v + 1 != p)
					return -1;
				val <<= shift;
			}
			*out = val;
			return 0;
		}
		while (*p == ' ')
			p++;
	}
	return 1;
}
