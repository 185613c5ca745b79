/* cmd/tls.c: the one set of TLS options of every command that connects
 * (--tls-psk FILE, --tls-username NAME, --tls-certificates DIR, as nbdkit and
 * libnbd name them; the old spellings stay as hidden aliases), and the check
 * of their files before any connection, so that a missing or malformed key
 * file is reported by its name, not by a handshake that fails later. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "fleet/fleet.h"

int parse_tls_option(int c, const char *arg, struct tls_args *t)
{
	switch (c) {
	case OPT_TLS_PSK:
		t->psk = arg;
		return 1;
	case OPT_TLS_USERNAME:
		t->username = arg;
		return 1;
	case OPT_TLS_CERTIFICATES:
		t->certificates = arg;
		return 1;
	}
	return 0;
}

/* A key as psktool writes it: an even number of hex digits. */
static bool hex_key(const char *s, size_t n)
{
	if (n == 0 || n % 2)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	return true;
}

/* The PSK file: readable, psktool's USER:HEXKEY lines, with a key for the
 * user (the first one when none was named, which *user then holds). */
static int check_psk(const char *file, const char **user, char *err, size_t len)
{
	static char first[256];
	char line[4096], users[256] = "";
	FILE *f;
	int n = 0, found = 0;

	if (is_url(file))
		return snprintf(err, len, "%s: is a URL; the key file must be a local file", file),
		       -1;
	if (!(f = fopen(file, "r")))
		return snprintf(err, len, "%s: %s", file, strerror(errno)), -1;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		size_t keylen;

		n++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		keylen = colon ? strlen(colon + 1) : 0;
		if (!colon || colon == line || !hex_key(colon + 1, keylen)) {
			fclose(f);
			return snprintf(err, len,
					"%s: line %d is not USER:HEXKEY (the format psktool "
					"writes)",
					file, n),
			       -1;
		}
		*colon = '\0';
		if (!first[0] && strlen(line) < sizeof(first))
			memcpy(first, line, strlen(line) + 1);
		if (*user && strcmp(line, *user) == 0)
			found = 1;
		size_t ul = strlen(users), ll = strlen(line);
		if (ul + ll + 3 < sizeof(users)) {
			if (ul) {
				memcpy(users + ul, ", ", 2);
				ul += 2;
			}
			memcpy(users + ul, line, ll + 1);
		}
	}
	fclose(f);
	if (!first[0])
		return snprintf(err, len, "%s: holds no key (psktool -u USER -p %s makes one)",
				file, file),
		       -1;
	if (*user && !found)
		return snprintf(err, len, "%s: has no key for user '%s' (it has: %s)", file, *user,
				users),
		       -1;
	if (!*user)
		*user = first;
	return 0;
}

static int check_cert_file(const char *dir, const char *name, char *err, size_t len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, R_OK) < 0)
		return snprintf(err, len, "%s: %s (--tls-certificates %s needs %s)", path,
				strerror(errno), dir, name),
		       -1;
	return 0;
}

int tls_check(struct tls_args *t, enum tls_role role, char *err, size_t len)
{
	const char *who = role == TLS_SERVER ? "server" : "client";
	char cert[32], key[32];
	struct stat st;

	if (t->psk && t->certificates)
		return snprintf(err, len, "give --tls-psk or --tls-certificates, not both"), -1;
	if (t->username && !t->psk)
		return snprintf(err, len, "--tls-username names a key of --tls-psk FILE"), -1;
	if (t->psk)
		return check_psk(t->psk, role == TLS_SERVER ? &(const char *){NULL} : &t->username,
				 err, len);
	if (!t->certificates)
		return 0;
	if (is_url(t->certificates))
		return snprintf(err, len,
				"%s: is a URL; the certificates must be in a local directory",
				t->certificates),
		       -1;
	if (stat(t->certificates, &st) < 0)
		return snprintf(err, len, "%s: %s", t->certificates, strerror(errno)), -1;
	if (!S_ISDIR(st.st_mode))
		return snprintf(err, len, "%s: not a directory (--tls-certificates names one)",
				t->certificates),
		       -1;
	snprintf(cert, sizeof(cert), "%s-cert.pem", who);
	snprintf(key, sizeof(key), "%s-key.pem", who);
	if (check_cert_file(t->certificates, "ca-cert.pem", err, len) < 0)
		return -1;
	/* A client's own pair is needed only by a server that verifies clients;
	 * smove's migration always does. */
	if (role == TLS_NBD_CLIENT) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", t->certificates, cert);
		if (access(path, F_OK) < 0)
			return 0;
	}
	if (check_cert_file(t->certificates, cert, err, len) < 0 ||
	    check_cert_file(t->certificates, key, err, len) < 0)
		return -1;
	return 0;
}

int tls_check_fleet(struct tls_args *t, struct fleet_tls *f, char *err, size_t len)
{
	if (tls_check(t, TLS_MIGRATION_CLIENT, err, len) < 0)
		return -1;
	f->psk = t->psk;
	f->user = t->username;
	f->x509 = t->certificates;
	return 0;
}
