/*
 * ckpt.c - checkpoint load checks: the verdicts, dispatch by file name, and
 * the helpers every format shares.
 *
 * DESIGN
 *	One file per format (ckpt_safetensors.c, ckpt_zip.c, ckpt_npy.c,
 *	ckpt_json.c), each behind a struct ckpt_ops; this file maps a name's
 *	extension to a format and a format to its ops. The formats are pure
 *	parsers over a struct ckpt_reader, so the same checks run on a local
 *	file (rgtfs-verify, the unit tests) and on bytes in the cache
 *	(teardown).
 *
 *	The format comes from the name, not from sniffing: the name is what
 *	the user's loader will go by. Sniffing is only used inside a format
 *	where the loader sniffs too (torch.load tells a zip from a legacy
 *	pickle by the first bytes; np.load tells .npz from .npy by magic).
 *
 *	.bin is ambiguous (HF's pytorch_model.bin is torch.save output, but
 *	many other tools write .bin); it is checked as a torch file when it
 *	starts like a zip and is CKPT_UNKNOWN_FORMAT otherwise.
 *
 *	Details are for humans and land in one-line reports: ckpt_fail()
 *	replaces control characters, and names taken from a file go through
 *	ckpt_quote() first.
 */
#include "ckpt_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *ext;
	enum ckpt_format fmt;
} exts[] = {
	{ "safetensors", CKPT_FMT_SAFETENSORS },
	{ "pt", CKPT_FMT_TORCH },
	{ "pth", CKPT_FMT_TORCH },
	{ "ckpt", CKPT_FMT_TORCH },
	{ "bin", CKPT_FMT_TORCH_BIN },
	{ "npy", CKPT_FMT_NPY },
	{ "npz", CKPT_FMT_NPZ },
	{ "json", CKPT_FMT_JSON },
};

static const struct ckpt_ops *ops_of(enum ckpt_format f)
{
	switch (f) {
	case CKPT_FMT_SAFETENSORS:	return &ckpt_safetensors_ops;
	case CKPT_FMT_TORCH:		return &ckpt_zip_torch_ops;
	case CKPT_FMT_TORCH_BIN:	return &ckpt_zip_torch_ops;
	case CKPT_FMT_NPY:		return &ckpt_npy_ops;
	case CKPT_FMT_NPZ:		return &ckpt_zip_npz_ops;
	case CKPT_FMT_JSON:		return &ckpt_json_ops;
	case CKPT_FMT_NONE:		break;
	}
	return NULL;
}

const char *ckpt_strerror(enum ckpt_verdict v)
{
	switch (v) {
	case CKPT_OK:			return "ok";
	case CKPT_UNKNOWN_FORMAT:	return "no check for this format";
	case CKPT_TRUNCATED:		return "truncated";
	case CKPT_BAD_MAGIC:		return "bad magic";
	case CKPT_BAD_HEADER:		return "bad header";
	case CKPT_BAD_OFFSETS:		return "bad offsets";
	case CKPT_BAD_CRC:		return "bad CRC";
	case CKPT_TOO_LARGE:		return "too large";
	case CKPT_IO_ERROR:		return "I/O error";
	}
	return "unknown verdict";
}

enum ckpt_format ckpt_format_of(const char *name)
{
	const char *base, *dot;
	size_t i;

	if (!name)
		return CKPT_FMT_NONE;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	if (!dot)
		return CKPT_FMT_NONE;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (!strcasecmp(dot + 1, exts[i].ext))
			return exts[i].fmt;
	return CKPT_FMT_NONE;
}

const char *ckpt_format_name(enum ckpt_format f)
{
	switch (f) {
	case CKPT_FMT_SAFETENSORS:	return "safetensors";
	case CKPT_FMT_TORCH:		return "torch";
	case CKPT_FMT_TORCH_BIN:	return "torch (.bin)";
	case CKPT_FMT_NPY:		return "npy";
	case CKPT_FMT_NPZ:		return "npz";
	case CKPT_FMT_JSON:		return "json";
	case CKPT_FMT_NONE:		break;
	}
	return "none";
}

enum ckpt_verdict ckpt_verify(const char *name, const struct ckpt_reader *r,
			      char *detail, size_t detail_len)
{
	struct ckpt_ctx c = {
		.r = r,
		.fmt = ckpt_format_of(name),
		.detail = detail,
		.detail_len = detail_len,
	};
	const struct ckpt_ops *ops = ops_of(c.fmt);

	if (detail && detail_len)
		detail[0] = '\0';
	if (!ops)
		return ckpt_fail(&c, CKPT_UNKNOWN_FORMAT,
				 "no load check for this file type");
	return ops->verify(&c);
}

enum ckpt_verdict ckpt_fail(struct ckpt_ctx *c, enum ckpt_verdict v,
			    const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (!c->detail || !c->detail_len)
		return v;
	va_start(ap, fmt);
	vsnprintf(c->detail, c->detail_len, fmt, ap);
	va_end(ap);
	/* One line, whatever a library's message or a file's bytes held. */
	for (p = c->detail; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return v;
}

enum ckpt_verdict ckpt_read(struct ckpt_ctx *c, void *buf, size_t len,
			    uint64_t off)
{
	int rc;

	if (off > c->r->size || len > c->r->size - off)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "%zu bytes at offset %llu run past the end of "
				 "the file (%llu bytes)",
				 len, (unsigned long long)off,
				 (unsigned long long)c->r->size);
	if (!len)
		return CKPT_OK;
	rc = c->r->pread(c->r->arg, buf, len, off);
	if (rc > 0)
		rc = -EIO;
	if (rc)
		return ckpt_fail(c, CKPT_IO_ERROR,
				 "read of %zu bytes at offset %llu: %s", len,
				 (unsigned long long)off, strerror(-rc));
	return CKPT_OK;
}

void ckpt_quote(char *out, size_t outlen, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (!outlen)
		return;
	for (i = 0; i < n && i < CKPT_QUOTE_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		int plain = ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'';

		if (o + (plain ? 1 : 4) >= outlen)
			break;
		if (plain) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	if (i < n && o + 3 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static int fd_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	int fd = *(int *)arg;
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* the file shrank under us */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int ckpt_reader_fd(struct ckpt_reader *r, int *fdp)
{
	struct stat st;

	if (fstat(*fdp, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	r->size = (uint64_t)st.st_size;
	r->pread = fd_pread;
	r->arg = fdp;
	return 0;
}
