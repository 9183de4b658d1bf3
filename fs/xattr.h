/*
 * xattr.h - the extended attributes a file of the tree carries, so that
 * `getfattr -d`, `cp -a` and `rsync -X` see where bytes come from:
 *
 *   user.rgtfs.sha256  the SHA-256 the file is known to have (an archived
 *                      file: the digest its teardown verified); absent
 *                      when nothing says it
 *   user.rgtfs.cached  bytes of this version held by the cache, decimal
 *   user.rgtfs.source  where missing bytes come from: "sftp sftp://HOST:PORT
 *                      PATH", "s3 s3://BUCKET (ENDPOINT) PATH", or "cache"
 *                      when only the cache holds them
 *
 * Any other name reads ENODATA. Values are computed from what the tree and
 * the store already hold: a getxattr never makes a network call (rsync -X
 * asks for every file). So an archive another mount pushed to a bucket,
 * whose record is the bucket's, shows none.
 *
 * This file is the pure part (names, values, the list), unit-tested; the
 * kinds fill struct node_xattrs (tree.h, kind_ops.xattrs).
 */
#ifndef RGT_XATTR_H
#define RGT_XATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define XATTR_SOURCE_MAX 1024

struct node_xattrs {
	char sha256[65];		/* lower-case hex; "": not known */
	bool has_cached;
	uint64_t cached;		/* bytes in the store */
	char source[XATTR_SOURCE_MAX];	/* "": none */
};

/* Is @name one of ours (whatever the node)? Cheap: no store access. */
bool xattr_is_ours(const char *name);

/*
 * The value of @name into @buf (not NUL-terminated, as getxattr(2)).
 * Returns its length, -ENODATA if @x has no such attribute, -ERANGE if
 * @len is non-zero and too small. @len 0: only the length.
 */
ssize_t xattr_value(const struct node_xattrs *x, const char *name,
		    char *buf, size_t len);

/* The NUL-separated names @x has, as listxattr(2); same return rules. */
ssize_t xattr_list(const struct node_xattrs *x, char *buf, size_t len);

#endif
