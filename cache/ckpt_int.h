/*
 * ckpt_int.h - what ckpt.c shares with the per-format files ckpt_<fmt>.c.
 * No other module includes it.
 *
 * Each format is a struct ckpt_ops; ckpt.c picks one by the file's name and
 * calls its verify() with a context that carries the reader and the detail
 * buffer. A verify() returns its verdict through ckpt_fail() (which writes
 * the detail) or ckpt_ok(), and reads only through ckpt_read(), which turns
 * a reader failure into CKPT_IO_ERROR with the offset in the detail.
 */
#ifndef RGT_CKPT_INT_H
#define RGT_CKPT_INT_H

#include "ckpt.h"

struct ckpt_ctx {
	const struct ckpt_reader *r;
	enum ckpt_format fmt;
	char *detail;
	size_t detail_len;
};

struct ckpt_ops {
	const char *name;
	enum ckpt_verdict (*verify)(struct ckpt_ctx *c);
};

extern const struct ckpt_ops ckpt_safetensors_ops;	/* ckpt_safetensors.c */
extern const struct ckpt_ops ckpt_zip_torch_ops;	/* ckpt_zip.c */
extern const struct ckpt_ops ckpt_zip_npz_ops;		/* ckpt_zip.c */
extern const struct ckpt_ops ckpt_npy_ops;		/* ckpt_npy.c */
extern const struct ckpt_ops ckpt_json_ops;		/* ckpt_json.c */

/* Write the detail (control characters become '?') and return @v. */
enum ckpt_verdict ckpt_fail(struct ckpt_ctx *c, enum ckpt_verdict v,
			    const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define ckpt_ok(c, ...) ckpt_fail((c), CKPT_OK, __VA_ARGS__)

/*
 * Read exactly @len bytes at @off. CKPT_OK; CKPT_TRUNCATED (detail written)
 * if the range passes the reader's size; CKPT_IO_ERROR (detail written) if
 * the reader fails.
 */
enum ckpt_verdict ckpt_read(struct ckpt_ctx *c, void *buf, size_t len,
			    uint64_t off);

/*
 * Copy @n bytes of the untrusted name @s into @out for a detail line:
 * printable ASCII as is, anything else (and \ and ') as \xNN, cut after
 * CKPT_QUOTE_MAX input bytes with "...". @out is always NUL-terminated.
 */
#define CKPT_QUOTE_MAX 96
#define CKPT_QUOTE_LEN (4 * CKPT_QUOTE_MAX + 4)
void ckpt_quote(char *out, size_t outlen, const char *s, size_t n);

/* Bytes of an .npy that ckpt_npy_check() wants to see: magic, version,
 * length and the longest header numpy loads by default. */
#define CKPT_NPY_HEAD_MAX (12 + 10000)

/*
 * Check an .npy of @size bytes whose first min(@size, CKPT_NPY_HEAD_MAX)
 * bytes are @head (@headlen). Used for .npy files and for .npz members.
 */
enum ckpt_verdict ckpt_npy_check(struct ckpt_ctx *c, const unsigned char *head,
				 size_t headlen, uint64_t size);

/* Little-endian loads from a byte buffer. */
static inline uint16_t ckpt_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t ckpt_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t ckpt_le64(const unsigned char *p)
{
	return (uint64_t)ckpt_le32(p) | (uint64_t)ckpt_le32(p + 4) << 32;
}

#endif
