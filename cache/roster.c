/*
 * roster.c - commands and parsers for the teardown roster (see roster.h).
 */
#include "roster.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xfer.h"

void roster_free(struct roster *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].path);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

int roster_list_cmd(struct buf *cmd, const char *dir)
{
	/* -H: a checkpoint_dir that is itself a symlink is followed (the
	 * tree shows its files); links below it are still reported as links
	 * and refused. */
	int rc = buf_appendf(cmd, "printf '%s\\0'; LC_ALL=C find -H ",
			     ROSTER_MARK);
	if (!rc)
		rc = xfer_shell_quote(cmd, dir);
	if (!rc)
		rc = buf_appendf(cmd, " -mindepth 1 -printf '%%y %%s %%T@ "
				      "%%P\\0'");
	return rc;
}

/* Position just after MARK\0, or NULL. */
static const char *after_mark(const char *out, size_t len, size_t *left)
{
	size_t ml = strlen(ROSTER_MARK);
	for (size_t i = 0; i + ml + 1 <= len; i++) {
		if (!memcmp(out + i, ROSTER_MARK, ml) && out[i + ml] == '\0') {
			*left = len - i - ml - 1;
			return out + i + ml + 1;
		}
	}
	return NULL;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct roster_entry *)a)->path,
		      ((const struct roster_entry *)b)->path);
}

/* Refuse the whole listing: free what was taken and say which entry (by
 * its place in find's output) was wrong. */
static int bad(struct roster *r, char *err, size_t errlen, const char *what)
{
	size_t rec = r->n;

	roster_free(r);
	snprintf(err, errlen, "roster: %s in entry %zu", what, rec);
	return -EBADMSG;
}

int roster_parse(const char *out, size_t len, struct roster *r, char *err,
		 size_t errlen)
{
	size_t left, cap = 0;
	const char *p = after_mark(out, len, &left);

	r->v = NULL;
	r->n = 0;
	if (!p) {
		snprintf(err, errlen, "roster: no output from find");
		return -EBADMSG;
	}
	while (left) {
		const char *end = memchr(p, '\0', left);
		if (!end)
			return bad(r, err, errlen, "truncated record");
		size_t rl = end - p;
		struct roster_entry e = { 0 };
		char *q;
		/* "%y %s %T@ %P": type, size, mtime with fraction, path. */
		if (rl < 7 || p[1] != ' ' || !isdigit((unsigned char)p[2]))
			return bad(r, err, errlen, "malformed record");
		e.type = p[0];
		errno = 0;
		unsigned long long sz = strtoull(p + 2, &q, 10);
		if (errno || *q != ' ')
			return bad(r, err, errlen, "bad size");
		long long mt = strtoll(q + 1, &q, 10);
		if (errno || (*q != '.' && *q != ' '))
			return bad(r, err, errlen, "bad mtime");
		while (*q && *q != ' ')
			q++;
		if (*q != ' ' || q + 1 >= end)
			return bad(r, err, errlen, "no path");
		q++;
		size_t pl = end - q;
		if (pl > 4095 || !strncmp(q, "/", 1) ||
		    !strcmp(q, "..") || !strncmp(q, "../", 3) ||
		    strstr(q, "/../") ||
		    (pl >= 3 && !strcmp(q + pl - 3, "/.."))) {
			return bad(r, err, errlen,
				   "path escapes checkpoint_dir");
		}
		if (r->n >= ROSTER_MAX_ENTRIES)
			return bad(r, err, errlen, "too many entries");
		if (r->n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct roster_entry *nv =
				realloc(r->v, nc * sizeof(*nv));
			if (!nv) {
				roster_free(r);
				return -ENOMEM;
			}
			r->v = nv;
			cap = nc;
		}
		e.size = sz;
		e.mtime = mt;
		e.path = strndup(q, pl);
		if (!e.path) {
			roster_free(r);
			return -ENOMEM;
		}
		r->v[r->n++] = e;
		left -= rl + 1;
		p = end + 1;
	}
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), cmp_entry);
	return 0;
}

int roster_hash_cmd(struct buf *cmd, const char *dir, const char *rel)
{
	int rc = buf_appendf(cmd, "printf '%s\\0'; f=", ROSTER_MARK);
	if (!rc)
		rc = xfer_shell_quote(cmd, dir);
	if (!rc)
		rc = buf_append(cmd, "/", 1);
	if (!rc)
		rc = xfer_shell_quote(cmd, rel);
	if (!rc)
		rc = buf_appendf(cmd,
			"; if command -v sha256sum >/dev/null 2>&1; then "
			"sha256sum < \"$f\"; "
			"elif command -v shasum >/dev/null 2>&1; then "
			"shasum -a 256 < \"$f\"; "
			"elif command -v openssl >/dev/null 2>&1; then "
			"openssl dgst -sha256 -r < \"$f\"; "
			"elif command -v python3 >/dev/null 2>&1; then "
			"python3 -c 'import hashlib,sys\n"
			"h=hashlib.sha256()\n"
			"for b in iter(lambda: sys.stdin.buffer.read(1<<20), "
			"b\"\"): h.update(b)\n"
			"print(h.hexdigest())' < \"$f\"; "
			"else echo 'rgtfs: no sha256 tool on the box' >&2; "
			"exit 127; fi");
	return rc;
}

int roster_parse_hash(const char *out, size_t len, char hex[65])
{
	size_t left;
	const char *p = after_mark(out, len, &left);
	if (!p)
		return -EBADMSG;
	/* The digest is the first word: "<hex>  -", "<hex> *stdin". */
	size_t i = 0;
	while (i < left && isspace((unsigned char)p[i]))
		i++;
	if (left - i < 64)
		return -EBADMSG;
	for (size_t k = 0; k < 64; k++) {
		unsigned char c = (unsigned char)p[i + k];
		if (!isxdigit(c))
			return -EBADMSG;
		hex[k] = (char)tolower(c);
	}
	if (left - i > 64 && !isspace((unsigned char)p[i + 64]))
		return -EBADMSG;	/* longer than a SHA-256 */
	hex[64] = '\0';
	return 0;
}

int roster_compare(const struct roster *a, const struct roster *b, char *err,
		   size_t errlen)
{
	size_t i = 0, k = 0;
	while (i < a->n || k < b->n) {
		int c = i >= a->n ? 1 : k >= b->n ? -1 :
				    strcmp(a->v[i].path, b->v[k].path);
		if (c < 0) {
			snprintf(err, errlen, "%s disappeared", a->v[i].path);
			return -EBUSY;
		}
		if (c > 0) {
			snprintf(err, errlen, "%s appeared", b->v[k].path);
			return -EBUSY;
		}
		const struct roster_entry *x = &a->v[i], *y = &b->v[k];
		if (x->type != y->type || x->size != y->size ||
		    x->mtime != y->mtime || strcmp(x->etag, y->etag)) {
			snprintf(err, errlen,
				 "%s changed (%" PRIu64 " -> %" PRIu64
				 " bytes, mtime %" PRId64 " -> %" PRId64 ")",
				 x->path, x->size, y->size, x->mtime,
				 y->mtime);
			return -EBUSY;
		}
		i++;
		k++;
	}
	return 0;
}

void roster_totals(const struct roster *r, uint64_t *files, uint64_t *bytes)
{
	*files = *bytes = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].type == 'f') {
			(*files)++;
			*bytes += r->v[i].size;
		}
	}
}
