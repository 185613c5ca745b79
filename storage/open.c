/* storage/open.c: opening an image by name. A name is a local path or a URL;
 * the URL's scheme picks the backend (nbd.c, http.c). A differencing image
 * found at a URL has its parent looked up relative to that URL. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/storage.h"

static const char *const nbd_schemes[] = {"nbd://",	  "nbds://",	  "nbd+unix://",
					  "nbds+unix://", "nbd+vsock://", "nbds+vsock://"};
static const char *const http_schemes[] = {"http://", "https://"};

static bool has_scheme(const char *name, const char *const *schemes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strncasecmp(name, schemes[i], strlen(schemes[i])) == 0)
			return true;
	return false;
}

static bool is_nbd(const char *name)
{
	return has_scheme(name, nbd_schemes, sizeof nbd_schemes / sizeof nbd_schemes[0]);
}

static bool is_http(const char *name)
{
	return has_scheme(name, http_schemes, sizeof http_schemes / sizeof http_schemes[0]);
}

bool storage_is_url(const char *name)
{
	return is_nbd(name) || is_http(name);
}

int storage_io_open(const char *name, const struct storage_opts *o, bool readonly,
		    struct vhd_io **out, char *err)
{
	if (is_nbd(name))
		return storage_io_open_nbd(name, o, readonly, out, err);
	if (is_http(name))
		return storage_io_open_http(name, o, out, err);
	return vhd_io_open_file(name, readonly ? VHD_IO_RDONLY : 0, out, err);
}

/* Appends s to the URL in out (of outlen bytes), percent-encoding what a URL
 * path cannot hold as is. */
static int append_encoded(char *out, size_t outlen, const char *s)
{
	size_t l = strlen(out);

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = isalnum(c) || strchr("-._~/!$&'()*+,;=:@", c);

		if (l + 4 > outlen)
			return -ENAMETOOLONG;
		if (plain)
			out[l++] = (char)c;
		else
			l += (size_t)snprintf(out + l, 4, "%%%02X", c);
	}
	out[l] = '\0';
	return 0;
}

/* The parent locator of a child found at a URL, resolved against the URL's
 * directory: "base.vhdx" or ".\base.vhdx" next to https://host/dir/child.vhdx
 * is https://host/dir/base.vhdx. Absolute Windows or Unix paths mean nothing
 * on a web server and are refused (the driver tries the next locator). */
static int resolve_parent_url(const char *child, const char *parent, char *out, size_t outlen,
			      char *err)
{
	char rel[4096];
	size_t plen = strlen(parent);

	if (storage_is_url(parent)) {
		if (plen >= outlen)
			return vhd_error(err, ENAMETOOLONG, "%s: parent URL too long", child);
		memcpy(out, parent, plen + 1);
		return 0;
	}
	if (is_nbd(child))
		return vhd_error(err, ENOENT,
				 "%s: an NBD export has no directory in which to look for the "
				 "parent image \"%s\"",
				 child, parent);
	if (plen >= sizeof rel)
		return vhd_error(err, ENAMETOOLONG, "%s: parent path too long", child);
	for (size_t i = 0; i <= plen; i++)
		rel[i] = parent[i] == '\\' ? '/' : parent[i];
	const char *r = rel;
	while (strncmp(r, "./", 2) == 0)
		r += 2;
	if (r[0] == '/' || (isalpha((unsigned char)r[0]) && r[1] == ':'))
		return vhd_error(err, ENOENT,
				 "%s: the parent path \"%s\" is absolute; it cannot be found on "
				 "a web server",
				 child, parent);
	/* The child's directory: up to the last '/' of its path (before any query),
	 * and after the authority (scheme://host/). */
	const char *path = strstr(child, "://") + 3;
	path += strcspn(path, "/?#");
	size_t dirlen = (size_t)(path - child) + strcspn(path, "?#");
	while (dirlen > (size_t)(path - child) && child[dirlen - 1] != '/')
		dirlen--;
	if (dirlen + 2 > outlen)
		return vhd_error(err, ENAMETOOLONG, "%s: URL too long", child);
	memcpy(out, child, dirlen);
	out[dirlen] = '\0';
	if (dirlen == (size_t)(path - child)) /* no path at all: https://host */
		strcat(out, "/");
	if (append_encoded(out, outlen, r) < 0)
		return vhd_error(err, ENAMETOOLONG, "%s: parent URL too long", child);
	return 0;
}

static int open_url_parent(void *opaque, const char *child, const char *parent, bool readonly,
			   struct vhd_io **io, char *err)
{
	char url[8192];
	int r = resolve_parent_url(child, parent, url, sizeof url, err);

	if (r < 0)
		return r;
	return storage_io_open(url, opaque, true, io, err);
}

/* For a URL: its byte I/O, and open options that find its parents. */
static int url_io(const char *name, const struct vhd_open_opts *vopts, const struct storage_opts *o,
		  struct vhd_io **io, struct vhd_open_opts *opts, char *err)
{
	static const struct storage_opts no_opts;

	*opts = vopts ? *vopts : (struct vhd_open_opts){0};
	if (!opts->open_parent) {
		opts->open_parent = open_url_parent;
		opts->opaque = (void *)(o ? o : &no_opts);
	}
	return storage_io_open(name, o, opts->readonly, io, err);
}

int storage_open(const char *name, const struct vhd_open_opts *vopts, const struct storage_opts *o,
		 struct vhd_disk **out, char *err)
{
	struct vhd_open_opts opts;
	struct vhd_io *io;
	int r;

	*out = NULL;
	if (!storage_is_url(name))
		return vhd_open(name, vopts, out, err);
	r = url_io(name, vopts, o, &io, &opts, err);
	if (r < 0)
		return r;
	return vhd_open_io(io, &opts, out, err);
}

int storage_check(const char *name, const struct vhd_open_opts *vopts, const struct storage_opts *o,
		  vhd_report_fn report, void *opaque, char *err)
{
	struct vhd_open_opts opts;
	struct vhd_io *io;
	int r;

	if (!storage_is_url(name))
		return vhd_check(name, vopts, report, opaque, err);
	r = url_io(name, vopts, o, &io, &opts, err);
	if (r < 0)
		return r;
	return vhd_check_io(io, &opts, report, opaque, err);
}
