/*
 * buf.h - a growable byte buffer with a hard cap fixed at init.
 *
 * Everything that comes from the network (HTTP bodies, exec output, JSON)
 * lands in a struct buf whose maximum is set by the caller; an append past
 * the cap fails with -EFBIG and leaves the buffer as it was. The data is
 * always NUL-terminated (the terminator is not counted in len), so a text
 * body can be handed to a parser directly.
 */
#ifndef RGT_BUF_H
#define RGT_BUF_H

#include <stddef.h>

struct buf {
	char *data;	/* NULL until the first append */
	size_t len;	/* bytes used, excluding the NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* hard limit on len */
};

void buf_init(struct buf *b, size_t max);
/* Free the storage; the buffer can be reused after buf_init(). */
void buf_cleanup(struct buf *b);
/* Drop the contents, keep the allocation and the limit. */
void buf_reset(struct buf *b);
/* 0, or -EFBIG past the limit, or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand the storage to the caller (malloc'd, NUL-terminated); buffer empties. */
char *buf_take(struct buf *b);

#endif
