/*
 * ckpt_safetensors.c - load check for .safetensors.
 *
 * The format: 8 bytes little-endian N, then N bytes of JSON (an object: per
 * tensor {dtype, shape, data_offsets: [begin, end]}, plus an optional
 * "__metadata__" object of strings), then the data area. Offsets are
 * relative to the data area.
 *
 * DESIGN
 *	We repeat what the reference loader (huggingface/safetensors,
 *	SafeTensors::read_metadata and Metadata::validate) refuses, so a file
 *	we pass is one it loads:
 *	- N <= 100,000,000 (its MAX_HEADER_SIZE) and 8 + N <= size;
 *	- the header starts with '{' and is valid UTF-8 JSON (jansson
 *	  checks the UTF-8); duplicate keys are refused, as serde refuses a
 *	  duplicate field inside a tensor entry;
 *	- every tensor has a known dtype, a shape of non-negative integers
 *	  whose element count times the dtype's bits neither overflows 64
 *	  bits nor leaves a partial byte, and end - begin equal to that size;
 *	- sorted by (begin, end), each tensor starts where the previous one
 *	  ended, the first at 0, and the last ends exactly at the end of the
 *	  file: no gap, no overlap, no trailing bytes.
 *	The tensor data itself is not read: safetensors has no checksum, and
 *	the SHA-256 of the pull covers the bytes.
 *
 *	Verdicts: a header that runs past the end, or tensors that need more
 *	data than the file holds, is CKPT_TRUNCATED; anything wrong inside the
 *	JSON is CKPT_BAD_HEADER; offsets that disagree with shapes or with
 *	each other are CKPT_BAD_OFFSETS.
 *
 *	The dtype table includes the sub-byte and newer types of safetensors
 *	0.6 (F4, F6_*, F8_E8M0, C64); older readers refuse those, which no
 *	header check can know.
 */
#include "ckpt_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ST_HEADER_MAX 100000000ULL

static const struct {
	const char *name;
	unsigned bits;
} dtypes[] = {
	{ "BOOL", 8 },	   { "F4", 4 },	       { "F6_E2M3", 6 },
	{ "F6_E3M2", 6 },  { "U8", 8 },	       { "I8", 8 },
	{ "F8_E5M2", 8 },  { "F8_E4M3", 8 },   { "F8_E8M0", 8 },
	{ "I16", 16 },	   { "U16", 16 },      { "F16", 16 },
	{ "BF16", 16 },	   { "I32", 32 },      { "U32", 32 },
	{ "F32", 32 },	   { "C64", 64 },      { "F64", 64 },
	{ "I64", 64 },	   { "U64", 64 },
};

struct span {
	uint64_t begin, end;
	const char *name;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static unsigned dtype_bits(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (!strcmp(s, dtypes[i].name))
			return dtypes[i].bits;
	return 0;
}

/* A JSON integer that is >= 0, as uint64; -1 if it is not one. */
static int get_u64(json_t *v, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i < 0)
		return -1;
	*out = (uint64_t)i;
	return 0;
}

static enum ckpt_verdict check_metadata(struct ckpt_ctx *c, json_t *meta)
{
	const char *k;
	json_t *v;
	char q[CKPT_QUOTE_LEN];

	if (json_is_null(meta))
		return CKPT_OK;
	if (!json_is_object(meta))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "__metadata__ is not an object");
	json_object_foreach(meta, k, v) {
		if (!json_is_string(v)) {
			ckpt_quote(q, sizeof(q), k, strlen(k));
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "__metadata__ '%s' is not a string",
					 q);
		}
	}
	return CKPT_OK;
}

/* Check one tensor entry and fill @sp with its data span. */
static enum ckpt_verdict check_tensor(struct ckpt_ctx *c, const char *name,
				      json_t *t, struct span *sp)
{
	json_t *dtype, *shape, *offs, *dim;
	char q[CKPT_QUOTE_LEN], qd[CKPT_QUOTE_LEN];
	uint64_t nel = 1, n, bits;
	unsigned dbits;
	size_t i;

	ckpt_quote(q, sizeof(q), name, strlen(name));
	if (!json_is_object(t))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "tensor '%s' is not an object", q);
	dtype = json_object_get(t, "dtype");
	shape = json_object_get(t, "shape");
	offs = json_object_get(t, "data_offsets");
	if (!json_is_string(dtype) || !json_is_array(shape) ||
	    !json_is_array(offs))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "tensor '%s': dtype, shape or data_offsets "
				 "missing or of the wrong type", q);
	dbits = dtype_bits(json_string_value(dtype));
	if (!dbits) {
		ckpt_quote(qd, sizeof(qd), json_string_value(dtype),
			   json_string_length(dtype));
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "tensor '%s': unknown dtype '%s'", q, qd);
	}
	json_array_foreach(shape, i, dim) {
		if (get_u64(dim, &n))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "tensor '%s': shape[%zu] is not a "
					 "non-negative integer", q, i);
		if (__builtin_mul_overflow(nel, n, &nel))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "tensor '%s': shape's element count "
					 "overflows 64 bits", q);
	}
	if (__builtin_mul_overflow(nel, (uint64_t)dbits, &bits))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "tensor '%s': size in bits overflows 64 bits",
				 q);
	if (bits % 8)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "tensor '%s': %llu elements of %u bits are "
				 "not a whole number of bytes", q,
				 (unsigned long long)nel, dbits);
	if (json_array_size(offs) != 2 ||
	    get_u64(json_array_get(offs, 0), &sp->begin) ||
	    get_u64(json_array_get(offs, 1), &sp->end))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "tensor '%s': data_offsets is not two "
				 "non-negative integers", q);
	if (sp->begin > sp->end)
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "tensor '%s': data_offsets [%llu, %llu] end "
				 "before they begin", q,
				 (unsigned long long)sp->begin,
				 (unsigned long long)sp->end);
	if (sp->end - sp->begin != bits / 8)
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "tensor '%s': data_offsets [%llu, %llu] hold "
				 "%llu bytes, %s x %llu elements need %llu", q,
				 (unsigned long long)sp->begin,
				 (unsigned long long)sp->end,
				 (unsigned long long)(sp->end - sp->begin),
				 json_string_value(dtype),
				 (unsigned long long)nel,
				 (unsigned long long)(bits / 8));
	sp->name = name;
	return CKPT_OK;
}

static enum ckpt_verdict check_spans(struct ckpt_ctx *c, struct span *sp,
				     size_t n, uint64_t data_len)
{
	char q[CKPT_QUOTE_LEN], qp[CKPT_QUOTE_LEN];
	uint64_t at = 0;
	size_t i;

	qsort(sp, n, sizeof(*sp), span_cmp);
	for (i = 0; i < n; i++) {
		if (sp[i].begin == at) {
			at = sp[i].end;
			continue;
		}
		ckpt_quote(q, sizeof(q), sp[i].name, strlen(sp[i].name));
		if (sp[i].begin > at)
			return ckpt_fail(c, CKPT_BAD_OFFSETS,
					 "gap of %llu bytes at data offset "
					 "%llu, before tensor '%s'",
					 (unsigned long long)(sp[i].begin - at),
					 (unsigned long long)at, q);
		ckpt_quote(qp, sizeof(qp), sp[i - 1].name,
			   strlen(sp[i - 1].name));
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "tensor '%s' at data offset %llu overlaps "
				 "tensor '%s', which ends at %llu", q,
				 (unsigned long long)sp[i].begin, qp,
				 (unsigned long long)at);
	}
	if (at > data_len)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "tensors need %llu data bytes, the file holds "
				 "%llu after the header",
				 (unsigned long long)at,
				 (unsigned long long)data_len);
	if (at < data_len)
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "%llu bytes after the last tensor (data ends "
				 "at %llu of %llu)",
				 (unsigned long long)(data_len - at),
				 (unsigned long long)at,
				 (unsigned long long)data_len);
	return ckpt_ok(c, "%zu tensors, %llu data bytes", n,
		       (unsigned long long)at);
}

static enum ckpt_verdict st_verify(struct ckpt_ctx *c)
{
	uint64_t size = c->r->size, hlen;
	unsigned char len8[8];
	char *hdr = NULL;
	json_t *root = NULL, *v;
	json_error_t err;
	struct span *sp = NULL;
	enum ckpt_verdict vd;
	const char *k;
	size_t n = 0;

	if (size < 8)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "%llu bytes, less than the 8-byte header "
				 "length", (unsigned long long)size);
	vd = ckpt_read(c, len8, 8, 0);
	if (vd)
		return vd;
	hlen = ckpt_le64(len8);
	if (hlen > ST_HEADER_MAX)
		return ckpt_fail(c, CKPT_TOO_LARGE,
				 "header length %llu is over the loader's "
				 "limit of %llu", (unsigned long long)hlen,
				 ST_HEADER_MAX);
	if (hlen > size - 8)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "header of %llu bytes at offset 8 runs past "
				 "the end of the file (%llu bytes)",
				 (unsigned long long)hlen,
				 (unsigned long long)size);
	hdr = malloc(hlen + 1);
	if (!hdr)
		return ckpt_fail(c, CKPT_IO_ERROR,
				 "no memory for a %llu-byte header",
				 (unsigned long long)hlen);
	vd = ckpt_read(c, hdr, hlen, 8);
	if (vd)
		goto out_free_hdr;
	hdr[hlen] = '\0';
	if (!hlen || hdr[0] != '{') {
		vd = ckpt_fail(c, CKPT_BAD_HEADER,
			       "header at offset 8 does not start with '{'");
		goto out_free_hdr;
	}
	root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		vd = ckpt_fail(c, CKPT_BAD_HEADER,
			       "header is not JSON: byte %llu: %s",
			       8ULL + (unsigned long long)err.position,
			       err.text);
		goto out_free_hdr;
	}
	if (!json_is_object(root)) {
		vd = ckpt_fail(c, CKPT_BAD_HEADER,
			       "header is not a JSON object");
		goto out_decref;
	}
	sp = calloc(json_object_size(root) + 1, sizeof(*sp));
	if (!sp) {
		vd = ckpt_fail(c, CKPT_IO_ERROR, "no memory for %zu tensors",
			       json_object_size(root));
		goto out_decref;
	}
	json_object_foreach(root, k, v) {
		if (!strcmp(k, "__metadata__"))
			vd = check_metadata(c, v);
		else
			vd = check_tensor(c, k, v, &sp[n++]);
		if (vd)
			goto out_free_spans;
	}
	vd = check_spans(c, sp, n, size - 8 - hlen);
out_free_spans:
	free(sp);
out_decref:
	json_decref(root);
out_free_hdr:
	free(hdr);
	return vd;
}

const struct ckpt_ops ckpt_safetensors_ops = {
	.name = "safetensors",
	.verify = st_verify,
};
