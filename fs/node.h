/*
 * node.h - the virtual tree's inode table: ino <-> node, lookup counts.
 *
 * Inode numbers are derived from (parent ino, name) with a 64-bit hash, so
 * readdir can report the number lookup will return without creating nodes,
 * and the same path keeps its number across remounts. A collision (two
 * paths, one number) is detected and refused with -EIO.
 *
 * Lifetime: a node exists while the kernel holds lookups on it (nlookup,
 * decremented by forget) or it is pinned (root, platform dirs). The kernel
 * never sends forget for an inode while an operation on it is in flight, so
 * a node pointer from node_get() stays valid for the rest of that operation.
 *
 * Locking: one mutex inside struct nodes guards the table and the mutable
 * fields (attr, identity); callers use the accessors.
 */
#ifndef RGT_NODE_H
#define RGT_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "xfer.h"

enum node_kind {
	NK_ROOT,
	NK_PLATFORM,	/* MOUNT/vastai */
	NK_ARCHIVE,	/* MOUNT/archive */
	NK_INSTANCE,	/* MOUNT/vastai/<id> */
	NK_VFILE,	/* status, status_msg, info.json, ssh, teardown, .error */
	NK_PERROR,	/* MOUNT/vastai/.error */
	NK_LOG,		/* remote log_path */
	NK_RDIR,	/* checkpoints/ and below */
	NK_RFILE,	/* a remote regular file */
	NK_APLAT,	/* MOUNT/archive/<platform> */
	NK_AINST,	/* MOUNT/archive/<platform>/<id> */
	NK_AVFILE,	/* its status, info.json, manifests, teardown, ... */
	NK_ALOG,	/* its log snapshot */
	NK_ADIR,	/* its checkpoints/ and below (rpath: relative) */
	NK_AFILE,	/* an archived file (rpath: relative) */
	NK_PLOG,	/* log from the platform's log API (rendered text) */
	NK_CLOUDS,	/* MOUNT/cloud */
	NK_CERROR,	/* MOUNT/cloud/.error */
	NK_FLEET,	/* MOUNT/fleet.tsv, fleet.json (vf: fleetview_file) */
	NK_RGTDIR,	/* MOUNT/.rgtfs */
	NK_RGTFILE,	/* its version, stats, log (vf: fleetview_rgt) */
};

#define NODE_ROOT_INO 1

struct node {
	uint64_t ino;
	uint64_t parent;
	char *name;
	enum node_kind kind;
	int pi;			/* platform index (NK_PLATFORM and below) */
	char *id;		/* instance id (NK_INSTANCE and below) */
	char *plat;		/* platform name (archive nodes) */
	char *rpath;		/* remote path (NK_LOG, NK_RDIR, NK_RFILE) */
	int vf;			/* enum fleet_file for NK_VFILE */
	int cloud;		/* NK_RDIR/NK_RFILE of a bucket: its index in
				 * rgt_ctx.clouds plus one; 0: not a bucket */
	/* guarded by the table lock: */
	uint64_t nlookup;
	bool pinned;
	struct xfer_attr attr;	/* last known remote attributes */
	bool have_cached;	/* identity of the last open, for keep_cache */
	uint64_t cached_size;
	int64_t cached_mtime;
	char cached_etag[XFER_ETAG_MAX];
	struct node *hnext;
};

struct nodes;

int nodes_new(struct nodes **out);
void nodes_free(struct nodes *t);

/* The node numbered @ino, or NULL. */
struct node *node_get(struct nodes *t, uint64_t ino);

/* Inode number @name would have under @parent (pure). */
uint64_t node_ino_for(uint64_t parent, const char *name);

/*
 * Find or create the child @name of @parent described by @tmpl (kind, pi,
 * id, rpath, vf, attr are copied; strings duplicated). If @count, the
 * lookup count is incremented (every fuse_reply_entry must count).
 * Returns the node or NULL with *err set (-ENOMEM, -EIO on collision).
 */
struct node *node_child(struct nodes *t, const struct node *parent,
			const char *name, const struct node *tmpl, bool count,
			int *err);

/* Drop @n lookups of @ino; the node is freed at zero unless pinned. */
void node_forget(struct nodes *t, uint64_t ino, uint64_t n);

/* Locked accessors for the mutable fields. */
void node_set_attr(struct nodes *t, struct node *n,
		   const struct xfer_attr *a);
struct xfer_attr node_attr(struct nodes *t, struct node *n);
/* Record the identity opened now; true if it equals the previous one. */
bool node_same_identity(struct nodes *t, struct node *n, uint64_t size,
			int64_t mtime, const char *etag);

#endif
