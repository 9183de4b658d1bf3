/*
 * ckpt.h - load checks for checkpoint files, without executing anything.
 *
 * Before a GPU box is destroyed, every pulled file of a known format must
 * pass the checks its loader would make: safetensors header and offsets,
 * the zip structure and every entry's CRC-32 of torch.save files and .npz
 * archives, .npy headers, and that .json parses. The verdict is an outcome,
 * not an error of the call: ckpt_verify() returns an enum ckpt_verdict and
 * writes a one-line reason (what is wrong, and where: byte offset, tensor or
 * entry name) into a caller's buffer.
 *
 * The one promise: CKPT_OK is never given for a file its loader would
 * refuse. Where in doubt the checks are stricter than the loaders (a false
 * FAIL keeps a box alive; a false OK loses a checkpoint). Files that cannot
 * be checked without running code (legacy torch pickles, numpy object
 * arrays) get CKPT_UNKNOWN_FORMAT, which is not a failure by itself.
 *
 * Input is hostile: every length and offset is checked against the reader's
 * size before use, memory is bounded (headers are capped, entry data is
 * streamed in fixed chunks), and no name from a file reaches the detail
 * unescaped.
 *
 * Threads: the functions keep no state; any thread may call them, with its
 * own reader.
 */
#ifndef RGT_CKPT_H
#define RGT_CKPT_H

#include <stddef.h>
#include <stdint.h>

enum ckpt_verdict {
	CKPT_OK,
	CKPT_UNKNOWN_FORMAT,	/* no check for this type: not a failure */
	CKPT_TRUNCATED,		/* the file ends before its structures do */
	CKPT_BAD_MAGIC,		/* not the format its name says */
	CKPT_BAD_HEADER,	/* malformed header or structure */
	CKPT_BAD_OFFSETS,	/* offsets disagree with sizes or each other */
	CKPT_BAD_CRC,		/* entry data does not match its CRC-32 */
	CKPT_TOO_LARGE,		/* a header or directory past our bounds */
	CKPT_IO_ERROR,		/* the reader failed: nothing was decided */
};

enum ckpt_format {
	CKPT_FMT_NONE,		/* no check for this name */
	CKPT_FMT_SAFETENSORS,	/* .safetensors */
	CKPT_FMT_TORCH,		/* .pt .pth .ckpt: torch.save zip */
	CKPT_FMT_TORCH_BIN,	/* .bin: checked as torch only if it is a zip */
	CKPT_FMT_NPY,		/* .npy */
	CKPT_FMT_NPZ,		/* .npz: zip of .npy */
	CKPT_FMT_JSON,		/* .json */
};

/*
 * A bounded source of bytes: a local file, or a file in the block cache.
 * pread() reads exactly @len bytes at @off and returns 0, or -errno; the
 * checks never ask for bytes past @size. Most reads are at most 1 MiB; the
 * exceptions are read in one call and capped: a safetensors header (100 MB),
 * a zip central directory (64 MiB), a whole .json file (256 MiB).
 */
struct ckpt_reader {
	uint64_t size;
	int (*pread)(void *arg, void *buf, size_t len, uint64_t off);
	void *arg;
};

/* A static, human-readable name for @v ("ok", "truncated", ...). */
const char *ckpt_strerror(enum ckpt_verdict v);

/* The format to check a file as, from the extension of @name (any path;
 * the extension is matched without regard to case). */
enum ckpt_format ckpt_format_of(const char *name);

/* A static name for @f ("safetensors", "torch", ..., "none"). */
const char *ckpt_format_name(enum ckpt_format f);

/*
 * Check the bytes behind @r as the format ckpt_format_of(@name) says.
 *
 * @name	[in] the file's name or path; used for the format only.
 * @r		[in] the bytes; r->size is the file's size.
 * @detail	[out] one line (no newline), NUL-terminated, truncated to
 *		@detail_len: the reason for anything but CKPT_OK, a short
 *		summary for CKPT_OK. May be NULL when @detail_len is 0.
 *
 * Reads the whole file once for zip formats (CRC of every entry), only the
 * headers for safetensors and .npy, the whole (capped) text for .json.
 * CKPT_IO_ERROR means a read failed: the file was not judged.
 */
enum ckpt_verdict ckpt_verify(const char *name, const struct ckpt_reader *r,
			      char *detail, size_t detail_len);

/*
 * Fill @r to read the open file @fd (@fdp must stay valid while @r is used):
 * size from fstat(), reads by pread(2), a short read (the file shrank) is
 * -EIO. Returns 0, or -errno from fstat, or -EINVAL if @fd is not a regular
 * file.
 */
int ckpt_reader_fd(struct ckpt_reader *r, int *fdp);

#endif
