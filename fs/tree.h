/*
 * tree.h - each kind of node of the virtual tree, with its handlers in one
 * place (internal to fs/: ops.c dispatches, tree.c and tree_archive.c
 * implement).
 *
 * A kind is one entry of the table tree_kind() returns: how it stats, how
 * it finds a child by name, how it lists its children, how it opens. A new
 * file in the tree is one kind (or one name in a kind's name table), not a
 * case in four switches. Handlers return 0 or -errno and never touch FUSE:
 * only ops.c and main.c include <fuse_lowlevel.h>.
 */
#ifndef RGT_TREE_H
#define RGT_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "buf.h"
#include "fetch.h"
#include "handle.h"
#include "node.h"
#include "xattr.h"

struct rgt_ctx;

#define ATTR_TIMEOUT 1.0	/* seconds the kernel may cache attributes */
#define LIST_MAX_AGE 1		/* seconds a remote listing is reused */
#define VFILE_MAX (1u << 20)	/* bound on one rendered virtual file */

/* An open directory: a snapshot of its entries. */
struct dent {
	char *name;
	uint64_t ino;
	mode_t type;
};

struct dirh {
	struct hobj h;		/* first: see handle.h */
	struct dent *v;
	size_t n, cap;
};

int tree_dir_add(struct dirh *d, const char *name, uint64_t ino, mode_t type);
/* Child @name of node @n, with the number lookup will give it. */
int tree_add_child(struct dirh *d, const struct node *n, const char *name,
		   mode_t type);

/* An open file: rendered text, or bytes through the fetcher. */
enum fh_kind { FH_VFILE, FH_REMOTE };

struct fh {
	struct hobj h;			/* first: see handle.h */
	enum fh_kind kind;
	struct buf text;		/* FH_VFILE */
	struct fetch_file ff;		/* FH_REMOTE */
	struct fetch_stream stream;
};

/* What an open asks of the kernel's page cache. */
struct open_out {
	bool direct_io;		/* changes with every read: no caching */
	bool keep_cache;	/* unchanged since the last open */
};

struct kind_ops {
	int (*stat)(struct rgt_ctx *c, struct node *n, struct stat *st,
		    double *timeout);
	/* Describe child @name of directory @p in @t (strings borrowed or
	 * in @path). NULL: not a directory. */
	int (*resolve)(struct rgt_ctx *c, struct node *p, const char *name,
		       struct node *t, char *path, size_t pathlen);
	/* Add every child of @n to @d. NULL: not a directory. */
	int (*fill)(struct rgt_ctx *c, struct node *n, struct dirh *d);
	/* Set up @h (kind and contents) for reading. NULL: a directory. */
	int (*open)(struct rgt_ctx *c, struct node *n, struct fh *h,
		    struct open_out *out);
	/* Fill @x from what the tree and the store hold, with no network
	 * call (xattr.h). NULL: no attributes. */
	int (*xattrs)(struct rgt_ctx *c, struct node *n,
		      struct node_xattrs *x);
};

/* The handlers of @k (never NULL). */
const struct kind_ops *tree_kind(enum node_kind k);

/* Shared by the kind files. */
void tree_dir_stat(struct rgt_ctx *c, const struct node *n, struct stat *st);
void tree_file_stat(struct rgt_ctx *c, const struct node *n, struct stat *st,
		    uint64_t size, int64_t mtime, long blksize);
/* stat of a rendered file: its current length, timeout 0. */
int tree_text_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		   double *timeout,
		   int (*render)(struct rgt_ctx *, const struct node *,
				 struct buf *));
int tree_text_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		   struct open_out *out,
		   int (*render)(struct rgt_ctx *, const struct node *,
				 struct buf *));

struct remote;
struct cloud;
/* user.rgtfs.source of bytes read through @r at @path: @cl is the bucket
 * when @r is its remote; @r NULL: the cache alone holds them. */
void tree_source_text(struct remote *r, const struct cloud *cl,
		      const char *path, char *out, size_t len);

/*
 * What the tree knows of instance @id's checkpoints without asking
 * anyone: the regular files of every listing of checkpoints/ and below
 * it already made (in memory or the store, box or bucket copy, whichever
 * has one of checkpoints/ itself), their sizes summed into *total, and
 * the bytes of those very versions the store holds into *cached. A
 * subdirectory never listed counts nothing. -ENOENT: checkpoints/ was
 * never listed.
 */
int tree_checkpoint_bytes(struct rgt_ctx *c, size_t pi, const char *id,
			  uint64_t *total, uint64_t *cached);

/* Is archive/@plat/@id one pushed to a bucket (and not a local one's
 * name)? Such an archive is read-only: rmdir of it is EROFS. */
bool tree_archive_is_remote(struct rgt_ctx *c, const char *plat,
			    const char *id);

/* The archive kinds (tree_archive.c). */
extern const struct kind_ops tree_archive_root, tree_archive_plat,
	tree_archive_inst, tree_archive_vfile, tree_archive_log,
	tree_archive_dir, tree_archive_file;

#endif
