/*
 * ckpt_npy.c - load check for .npy files and for the members of .npz.
 *
 * The format: "\x93NUMPY", major and minor version bytes, the header length
 * (2 bytes little-endian for 1.0, 4 bytes for 2.0 and 3.0), then the header:
 * a Python dict literal such as
 *	{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a newline; the array data follows to the end.
 *
 * DESIGN
 *	numpy reads the header with ast.literal_eval. We never evaluate it:
 *	a small strict parser accepts exactly the literals numpy writes (a
 *	dict of the three keys numpy requires, each once; string values in
 *	single or double quotes without escapes; True/False; a tuple of
 *	decimal integers, with the trailing comma a 1-tuple needs; an 'L'
 *	suffix in 1.0/2.0 headers, which numpy filters out for files from
 *	Python 2). Anything else is CKPT_BAD_HEADER, even where Python would
 *	accept it (hex digits, escapes): no writer produces it.
 *
 *	Limits are numpy's own: a header longer than 10000 bytes is refused
 *	by np.load unless allow_pickle=True (CKPT_TOO_LARGE); at most 64
 *	dimensions (numpy 2; numpy 1 allows 32).
 *
 *	descr: byte order [<>|=] (optional), then a kind and size numpy
 *	knows: b1, i/u 1 2 4 8, f 2 4 8 16, c 8 16 32, S/V n, U n (4n
 *	bytes), M8/m8 with an optional [unit]. A known kind with a size
 *	numpy has no type for is CKPT_BAD_HEADER. Object arrays ('O') need
 *	pickle to load, and structured dtypes (a list descr) and other
 *	strings are not checked: CKPT_UNKNOWN_FORMAT.
 *
 *	The data must be exactly shape x itemsize bytes: short is
 *	CKPT_TRUNCATED; longer is CKPT_BAD_HEADER (np.load would ignore the
 *	extra bytes, but then the header does not describe the file).
 *
 *	np.load picks .npy or .npz by magic, not by name, so a .npy that is
 *	really a zip is checked as .npz.
 */
#include "ckpt_int.h"

#include <stdlib.h>
#include <string.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_HEADER_MAX 10000
#define NPY_MAX_DIMS 64

struct lit {
	const char *p, *end;
	int allow_long;		/* 'L' suffix on integers (1.0, 2.0) */
};

static void skip_ws(struct lit *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' ||
				 *l->p == '\n' || *l->p == '\r'))
		l->p++;
}

static int eat(struct lit *l, char ch)
{
	skip_ws(l);
	if (l->p < l->end && *l->p == ch) {
		l->p++;
		return 1;
	}
	return 0;
}

/* A quoted string without escapes, at most @max - 1 bytes, into @out. */
static int lit_string(struct lit *l, char *out, size_t max)
{
	const char *s;
	char q;

	skip_ws(l);
	if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
		return -1;
	q = *l->p++;
	for (s = l->p; l->p < l->end && *l->p != q; l->p++)
		if (*l->p == '\\' || *l->p == '\n' || (size_t)(l->p - s) >= max)
			return -1;
	if (l->p >= l->end || (size_t)(l->p - s) >= max)
		return -1;
	memcpy(out, s, (size_t)(l->p - s));
	out[l->p - s] = '\0';
	l->p++;
	return 0;
}

static int lit_word(struct lit *l, const char *w)
{
	size_t n = strlen(w);

	skip_ws(l);
	if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n))
		return 0;
	l->p += n;
	return 1;
}

/* A decimal integer: 0 ok, -1 not one, -2 over 64 bits. */
static int lit_uint(struct lit *l, uint64_t *out)
{
	uint64_t v = 0;
	const char *s;

	skip_ws(l);
	s = l->p;
	while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*l->p - '0'), &v))
			return -2;
		l->p++;
	}
	if (l->p == s || (*s == '0' && l->p - s > 1))
		return -1;
	if (l->allow_long && l->p < l->end && *l->p == 'L')
		l->p++;
	*out = v;
	return 0;
}

struct npy_header {
	char descr[64];
	int list_descr;		/* a structured dtype: not checked */
	int ndim;
	uint64_t dims[NPY_MAX_DIMS];
};

/* "(3, 4)", "(5,)", "()". */
static enum ckpt_verdict parse_shape(struct ckpt_ctx *c, struct lit *l,
				     struct npy_header *h)
{
	int rc;

	if (!eat(l, '('))
		return ckpt_fail(c, CKPT_BAD_HEADER, "shape is not a tuple");
	if (eat(l, ')'))
		return CKPT_OK;
	for (;;) {
		if (h->ndim == NPY_MAX_DIMS)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "shape has more than %d dimensions",
					 NPY_MAX_DIMS);
		rc = lit_uint(l, &h->dims[h->ndim]);
		if (rc == -2)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "shape[%d] does not fit 64 bits",
					 h->ndim);
		if (rc)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "shape[%d] is not a non-negative "
					 "decimal integer", h->ndim);
		h->ndim++;
		if (eat(l, ',')) {
			if (eat(l, ')'))
				return CKPT_OK;
			continue;
		}
		if (eat(l, ')')) {
			/* "(3)" is the integer 3, not a tuple. */
			if (h->ndim == 1)
				return ckpt_fail(c, CKPT_BAD_HEADER,
						 "shape is an integer in "
						 "parentheses, not a tuple");
			return CKPT_OK;
		}
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "shape: ',' or ')' expected after "
				 "dimension %d", h->ndim - 1);
	}
}

/* Skip a structured descr's list; only its brackets and quotes matter. */
static int skip_list(struct lit *l)
{
	int depth = 0;
	char q = 0;

	for (; l->p < l->end; l->p++) {
		char ch = *l->p;

		if (q) {
			if (ch == '\\')
				return -1;
			if (ch == q)
				q = 0;
		} else if (ch == '\'' || ch == '"') {
			q = ch;
		} else if (ch == '[' || ch == '(') {
			depth++;
		} else if (ch == ']' || ch == ')') {
			if (--depth == 0) {
				l->p++;
				return 0;
			}
		}
	}
	return -1;
}

static enum ckpt_verdict parse_header(struct ckpt_ctx *c, struct lit *l,
				      struct npy_header *h)
{
	int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
	enum ckpt_verdict vd;
	char key[32], q[CKPT_QUOTE_LEN];

	if (!eat(l, '{'))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "header is not a dict literal");
	while (!eat(l, '}')) {
		if (lit_string(l, key, sizeof(key)))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "header: a quoted key expected");
		ckpt_quote(q, sizeof(q), key, strlen(key));
		if (!eat(l, ':'))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "header: ':' expected after '%s'", q);
		if (!strcmp(key, "descr") && !seen_descr++) {
			skip_ws(l);
			if (l->p < l->end && *l->p == '[') {
				h->list_descr = 1;
				if (skip_list(l))
					return ckpt_fail(c, CKPT_BAD_HEADER,
							 "header: descr list "
							 "does not end");
			} else if (lit_string(l, h->descr,
					      sizeof(h->descr))) {
				return ckpt_fail(c, CKPT_BAD_HEADER,
						 "header: descr is not a "
						 "short string");
			}
		} else if (!strcmp(key, "fortran_order") && !seen_fortran++) {
			if (!lit_word(l, "True") && !lit_word(l, "False"))
				return ckpt_fail(c, CKPT_BAD_HEADER,
						 "header: fortran_order is not "
						 "True or False");
		} else if (!strcmp(key, "shape") && !seen_shape++) {
			vd = parse_shape(c, l, h);
			if (vd)
				return vd;
		} else {
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "header: unexpected or repeated key "
					 "'%s'", q);
		}
		if (eat(l, ','))
			continue;
		if (!eat(l, '}'))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "header: ',' or '}' expected after "
					 "'%s'", q);
		break;
	}
	if (!seen_descr || !seen_fortran || !seen_shape)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "header lacks %s", !seen_descr ? "descr" :
				 !seen_fortran ? "fortran_order" : "shape");
	skip_ws(l);
	if (l->p != l->end)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "header: bytes after the dict literal");
	return CKPT_OK;
}

/*
 * The item size of a simple descr. 0 and *itemsize set; -1 a known kind
 * with a size numpy has no type for; -2 an object array; -3 not checked.
 */
static int descr_itemsize(const char *d, uint64_t *itemsize)
{
	uint64_t n = 0;
	const char *p;
	char kind;

	if (*d == '<' || *d == '>' || *d == '|' || *d == '=')
		d++;
	kind = *d++;
	if (kind == 'O' && (!*d || !strcmp(d, "8")))
		return -2;
	if (!kind || !strchr("biufcSUVMm", kind))
		return -3;
	if (*d < '0' || *d > '9')
		return -3;
	for (p = d; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return -1;
	if (kind == 'M' || kind == 'm') {
		if (n != 8)
			return -1;
		if (*p == '[') {
			for (p++; (*p >= 'a' && *p <= 'z') ||
				  (*p >= 'A' && *p <= 'Z') ||
				  (*p >= '0' && *p <= '9'); p++)
				;
			if (*p++ != ']')
				return -1;
		}
	}
	if (*p)
		return -1;
	switch (kind) {
	case 'b':
		if (n != 1)
			return -1;
		break;
	case 'i':
	case 'u':
		if (n != 1 && n != 2 && n != 4 && n != 8)
			return -1;
		break;
	case 'f':
		if (n != 2 && n != 4 && n != 8 && n != 16)
			return -1;
		break;
	case 'c':
		if (n != 8 && n != 16 && n != 32)
			return -1;
		break;
	case 'U':
		if (__builtin_mul_overflow(n, 4, &n))
			return -1;
		break;
	}
	*itemsize = n;
	return 0;
}

enum ckpt_verdict ckpt_npy_check(struct ckpt_ctx *c, const unsigned char *head,
				 size_t headlen, uint64_t size)
{
	struct npy_header h = { .ndim = 0 };
	uint64_t hlen, hend, nel = 1, itemsize, need;
	struct lit l;
	enum ckpt_verdict vd;
	char q[CKPT_QUOTE_LEN];
	int major, minor, rc, i;

	if (headlen < NPY_MAGIC_LEN + 2)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "%zu bytes, shorter than the .npy magic and "
				 "version", headlen);
	if (memcmp(head, NPY_MAGIC, NPY_MAGIC_LEN))
		return ckpt_fail(c, CKPT_BAD_MAGIC,
				 "no \\x93NUMPY magic at offset 0");
	major = head[6];
	minor = head[7];
	if ((major != 1 && major != 2 && major != 3) || minor != 0)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "format version %d.%d is not 1.0, 2.0 or 3.0",
				 major, minor);
	if (headlen < (major == 1 ? 10u : 12u))
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "the file ends inside the header length");
	hlen = major == 1 ? ckpt_le16(head + 8) : ckpt_le32(head + 8);
	hend = (major == 1 ? 10 : 12) + hlen;
	if (hlen > NPY_HEADER_MAX)
		return ckpt_fail(c, CKPT_TOO_LARGE,
				 "header of %llu bytes; np.load refuses more "
				 "than %d without allow_pickle",
				 (unsigned long long)hlen, NPY_HEADER_MAX);
	if (hend > size || hend > headlen)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "header ends at offset %llu, past the end "
				 "(%llu bytes)", (unsigned long long)hend,
				 (unsigned long long)size);
	l.p = (const char *)head + hend - hlen;
	l.end = (const char *)head + hend;
	l.allow_long = major < 3;
	vd = parse_header(c, &l, &h);
	if (vd)
		return vd;
	if (h.list_descr)
		return ckpt_fail(c, CKPT_UNKNOWN_FORMAT,
				 "structured dtype: not checked");
	rc = descr_itemsize(h.descr, &itemsize);
	ckpt_quote(q, sizeof(q), h.descr, strlen(h.descr));
	if (rc == -2)
		return ckpt_fail(c, CKPT_UNKNOWN_FORMAT,
				 "object array (descr '%s'): loading needs "
				 "pickle", q);
	if (rc == -3)
		return ckpt_fail(c, CKPT_UNKNOWN_FORMAT,
				 "descr '%s' is not checked", q);
	if (rc)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "descr '%s' is not a numpy type", q);
	for (i = 0; i < h.ndim; i++)
		if (__builtin_mul_overflow(nel, h.dims[i], &nel))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "shape's element count overflows "
					 "64 bits");
	if (__builtin_mul_overflow(nel, itemsize, &need))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "data size overflows 64 bits");
	if (size - hend < need)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "data at offset %llu needs %llu bytes (%llu "
				 "x '%s'), the file holds %llu",
				 (unsigned long long)hend,
				 (unsigned long long)need,
				 (unsigned long long)nel, q,
				 (unsigned long long)(size - hend));
	if (size - hend > need)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "data at offset %llu is %llu bytes, the "
				 "header describes %llu (%llu x '%s')",
				 (unsigned long long)hend,
				 (unsigned long long)(size - hend),
				 (unsigned long long)need,
				 (unsigned long long)nel, q);
	return ckpt_ok(c, "'%s', %d dimensions, %llu data bytes", q, h.ndim,
		       (unsigned long long)need);
}

static enum ckpt_verdict npy_verify(struct ckpt_ctx *c)
{
	uint64_t size = c->r->size;
	size_t n = size < CKPT_NPY_HEAD_MAX ? (size_t)size : CKPT_NPY_HEAD_MAX;
	unsigned char *head;
	enum ckpt_verdict vd;

	if (size >= 4 && c->fmt == CKPT_FMT_NPY) {
		unsigned char m[4];

		vd = ckpt_read(c, m, 4, 0);
		if (vd)
			return vd;
		if (!memcmp(m, "PK\3\4", 4) || !memcmp(m, "PK\5\6", 4))
			return ckpt_zip_npz_ops.verify(c);
	}
	head = malloc(n ? n : 1);
	if (!head)
		return ckpt_fail(c, CKPT_IO_ERROR, "no memory");
	vd = ckpt_read(c, head, n, 0);
	if (!vd)
		vd = ckpt_npy_check(c, head, n, size);
	free(head);
	return vd;
}

const struct ckpt_ops ckpt_npy_ops = {
	.name = "npy",
	.verify = npy_verify,
};
