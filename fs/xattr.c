/*
 * xattr.c - names and values of the tree's extended attributes (xattr.h).
 */
#include "xattr.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define X_SHA256 "user.rgtfs.sha256"
#define X_CACHED "user.rgtfs.cached"
#define X_SOURCE "user.rgtfs.source"

static const char *const names[] = { X_SHA256, X_CACHED, X_SOURCE };

bool xattr_is_ours(const char *name)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/* Point @v at the value of attribute @i of @x (@tmp: room for a number);
 * false if @x does not have it. */
static bool value_of(const struct node_xattrs *x, size_t i, char tmp[24],
		     const char **v, size_t *vlen)
{
	switch (i) {
	case 0:
		*v = x->sha256;
		break;
	case 1:
		if (!x->has_cached)
			return false;
		snprintf(tmp, 24, "%" PRIu64, x->cached);
		*v = tmp;
		break;
	default:
		*v = x->source;
		break;
	}
	*vlen = strlen(*v);
	return *vlen > 0;
}

static ssize_t give(const void *src, size_t n, char *buf, size_t len)
{
	if (n > (size_t)SSIZE_MAX)
		return -E2BIG;
	if (!len)
		return (ssize_t)n;
	if (len < n)
		return -ERANGE;
	memcpy(buf, src, n);
	return (ssize_t)n;
}

ssize_t xattr_value(const struct node_xattrs *x, const char *name,
		    char *buf, size_t len)
{
	char tmp[24];
	const char *v;
	size_t vlen;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return value_of(x, i, tmp, &v, &vlen) ?
			       give(v, vlen, buf, len) : -ENODATA;
	return -ENODATA;
}

ssize_t xattr_list(const struct node_xattrs *x, char *buf, size_t len)
{
	char out[sizeof(X_SHA256) + sizeof(X_CACHED) + sizeof(X_SOURCE)];
	size_t n = 0;
	char tmp[24];
	const char *v;
	size_t vlen;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!value_of(x, i, tmp, &v, &vlen))
			continue;
		size_t k = strlen(names[i]) + 1;
		memcpy(out + n, names[i], k);
		n += k;
	}
	return give(out, n, buf, len);
}
