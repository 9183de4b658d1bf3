/*
 * rpath.c - remote paths and names (see rpath.h).
 */
#include "rpath.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int rpath_normalize(char *path)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	char *w = path;		/* write position; path[0] is '/' */
	const char *r = path;
	while (*r) {
		while (*r == '/')
			r++;
		if (!*r)
			break;
		const char *end = strchr(r, '/');
		size_t n = end ? (size_t)(end - r) : strlen(r);
		if (n == 1 && r[0] == '.') {
			r += n;
			continue;
		}
		if (n == 2 && r[0] == '.' && r[1] == '.')
			return -EINVAL;
		*w++ = '/';
		memmove(w, r, n);
		w += n;
		r += n;
	}
	if (w == path)
		*w++ = '/';
	*w = '\0';
	return 0;
}

int rpath_join(char *out, size_t len, const char *dir, const char *rel)
{
	if (!rel || rel[0] == '/')
		return -EINVAL;
	size_t dl = strlen(dir);
	/* "/" joins as "/x", never "//x". */
	const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
	int n = *rel ? snprintf(out, len, "%s%s%s", dir, sep, rel) :
		       snprintf(out, len, "%s", dir);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

char *rpath_join_dup(const char *dir, const char *rel)
{
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = malloc(n);
	if (p && rpath_join(p, n, dir, rel)) {
		free(p);
		p = NULL;
	}
	return p;
}

/* Length of the UTF-8 sequence at @s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong, surrogates, past U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

bool rpath_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = utf8_len(p);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

int rpath_escape(struct buf *b, const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	int rc = 0;
	while (*p && !rc) {
		size_t n = utf8_len(p);
		if (*p == '\\')
			rc = buf_append(b, "\\\\", 2);
		else if (*p == '\n')
			rc = buf_append(b, "\\n", 2);
		else if (*p == '\t')
			rc = buf_append(b, "\\t", 2);
		else if (*p == '\r')
			rc = buf_append(b, "\\r", 2);
		else if (*p < 0x20 || *p == 0x7f || !n)
			rc = buf_appendf(b, "\\x%02x", *p);
		else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			rc = buf_appendf(b, "\\x%02x\\x%02x", p[0], p[1]);
		else
			rc = buf_append(b, p, n);
		p += n ? n : 1;
	}
	if (!rc && !b->data)
		rc = buf_append(b, "", 0);
	return rc;
}

const char *rpath_escape_s(const char *name, char *out, size_t len)
{
	struct buf b;
	buf_init(&b, len > 4 ? len - 4 : 0);
	int rc = rpath_escape(&b, name ? name : "");
	if (rc == -EFBIG) {
		/* escape what fits, byte by byte, then mark the cut */
		buf_cleanup(&b);
		buf_init(&b, len > 4 ? len - 4 : 0);
		char one[2] = { 0, 0 };
		for (const char *p = name; *p; p++) {
			one[0] = *p;
			size_t before = b.len;
			if (rpath_escape(&b, one)) {
				b.len = before;
				break;
			}
		}
	}
	snprintf(out, len, "%s%s", b.data ? b.data : "",
		 rc == -EFBIG ? "..." : "");
	buf_cleanup(&b);
	return out;
}

char *rpath_hex_encode(const char *s)
{
	size_t n = strlen(s);
	char *h = malloc(2 * n + 1);
	if (!h)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(h + 2 * i, 3, "%02x", (unsigned char)s[i]);
	h[2 * n] = '\0';
	return h;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *rpath_hex_decode(const char *hex)
{
	size_t n = strlen(hex);
	if (n % 2)
		return NULL;
	char *s = malloc(n / 2 + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(s);
			return NULL;
		}
		s[i] = (char)(hi << 4 | lo);
	}
	s[n / 2] = '\0';
	return s;
}
