/*
 * roster.h - the explicit list of what a teardown must copy: every entry
 * under checkpoint_dir with type, size, mtime and (for regular files) the
 * SHA-256 computed on the box. Pure: builds the shell commands and parses
 * their output; running them is the caller's business (teardown.c).
 *
 * Commands print MARK before their output and parsers skip everything up
 * to it, so a chatty login shell can never shift the data.
 */
#ifndef RGT_ROSTER_H
#define RGT_ROSTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "xfer.h"

#define ROSTER_MARK "RGTFS-BEGIN"
#define ROSTER_MAX_ENTRIES 100000

struct roster_entry {
	char *path;		/* relative to checkpoint_dir, no "./" */
	char type;		/* find %y: f d l p s c b D ... */
	uint64_t size;
	int64_t mtime;		/* whole seconds */
	char sha256[65];	/* lower-case hex; "" until hashed */
	/* From a bucket (trust_cloud): the object's ETag; "" from a box. */
	char etag[XFER_ETAG_MAX];
};

struct roster {
	struct roster_entry *v;	/* sorted by path */
	size_t n;
};

void roster_free(struct roster *r);

/* GNU find over @dir: "%y %s %T@ %P\0" per entry, after the mark. */
int roster_list_cmd(struct buf *cmd, const char *dir);
/* Parse that output into @r. -EBADMSG (reason in err) on anything odd. */
int roster_parse(const char *out, size_t len, struct roster *r, char *err,
		 size_t errlen);
/*
 * Hash @dir/@rel on the box with the first tool it has: sha256sum,
 * shasum -a 256, openssl dgst -sha256, python3. Exits 127 when none.
 */
int roster_hash_cmd(struct buf *cmd, const char *dir, const char *rel);
/* The 64 hex digits after the mark (lower-cased). -EBADMSG if none. */
int roster_parse_hash(const char *out, size_t len, char hex[65]);
/*
 * 0 if @a and @b list the same paths with the same types, sizes and
 * mtimes; else -EBUSY with the first difference in err.
 */
int roster_compare(const struct roster *a, const struct roster *b, char *err,
		   size_t errlen);
/* Regular files and their total bytes. */
void roster_totals(const struct roster *r, uint64_t *files, uint64_t *bytes);

#endif
