/*
 * ops.c - FUSE low-level operations over the virtual tree.
 *
 * DESIGN
 * Each rgt_<op> resolves its node, calls one fleet_/remote_/fetch_ function
 * that returns -errno, and replies exactly once. Nothing here touches
 * libssh2, libcurl or LMDB.
 *
 * The tree and each kind of node in it are tree.c and tree_archive.c
 * (tree.h): one table of handlers per kind, so this file only dispatches.
 *
 * Everything is read-only. Writes, creates, renames and unlinks fail with
 * EROFS. rmdir of an instance directory is the teardown verb, rmdir of an
 * archive deletes it; both are refused for a process that has just tried
 * to delete inside (rm -r, see rmguard.h), so `rm -rf` changes nothing.
 */
#include <fuse_lowlevel.h>

#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "buf.h"
#include "config.h"
#include "fetch.h"
#include "fleet.h"
#include "handle.h"
#include "log.h"
#include "node.h"
#include "remote.h"
#include "rmguard.h"
#include "rpath.h"
#include "teardown.h"
#include "tree.h"
#include "xattr.h"

#define FIXED_NAME_TIMEOUT 86400.0	/* status, teardown...: see lookup */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct rgt_ctx *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Errors of the remote side as a reader should see them. */
static int io_errno(int rc)
{
	switch (-rc) {
	case EACCES:
	case ENOMEM:
	case ENOENT:
	case ENAMETOOLONG:
		return -rc;
	default:
		return EIO;
	}
}

/* The attributes of @n, by its kind. */
static int node_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		     double *timeout)
{
	const struct kind_ops *k = tree_kind(n->kind);
	*timeout = ATTR_TIMEOUT;
	return k->stat ? k->stat(c, n, st, timeout) : -EIO;
}

/* ---- lookup --------------------------------------------------------------------- */

/* Describe child @name of @p in @t (strings borrowed or in @path). */
static int resolve(struct rgt_ctx *c, struct node *p, const char *name,
		   struct node *t, char *path, size_t pathlen)
{
	const struct kind_ops *k = tree_kind(p->kind);
	memset(t, 0, sizeof(*t));
	t->pi = p->pi;
	t->id = p->id;
	t->cloud = p->cloud;
	return k->resolve ? k->resolve(c, p, name, t, path, pathlen) :
			    -ENOTDIR;
}

/*
 * Look @name up under @p and fill @e; on success the node's lookup count
 * was incremented (the caller replies with @e or undoes it).
 */
static int do_lookup(struct rgt_ctx *c, struct node *p, const char *name,
		     struct fuse_entry_param *e)
{
	struct node t;
	char path[PATH_MAX];
	int rc = resolve(c, p, name, &t, path, sizeof(path));
	if (rc)
		return rc;
	struct node *n = node_child(c->nodes, p, name, &t, true, &rc);
	if (!n)
		return rc;
	memset(e, 0, sizeof(*e));
	rc = node_stat(c, n, &e->attr, &e->attr_timeout);
	if (rc) {
		node_forget(c->nodes, n->ino, 1);
		return rc;
	}
	e->ino = n->ino;
	e->generation = 1;
	e->entry_timeout = ATTR_TIMEOUT;
	/*
	 * The files of an instance directory exist exactly as long as the
	 * directory does, so their names may stay in the kernel's dentry
	 * cache. That matters during rmdir: the kernel then holds the
	 * directory's lock, and a first lookup of `teardown` would wait for
	 * the whole teardown; a cached name is read at once.
	 */
	if (p->kind == NK_INSTANCE && n->kind != NK_RDIR)
		e->entry_timeout = FIXED_NAME_TIMEOUT;
	return 0;
}

static void rgt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rgt_ctx *c = ctx_of(req);
	struct node *p = node_get(c->nodes, parent);
	struct fuse_entry_param e;

	if (!p) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int rc = do_lookup(c, p, name, &e);
	if (rc == -ENOENT) {
		/* A negative entry, not cached by the kernel. */
		memset(&e, 0, sizeof(e));
		fuse_reply_entry(req, &e);
	} else if (rc) {
		fuse_reply_err(req, io_errno(rc));
	} else if (fuse_reply_entry(req, &e)) {
		node_forget(c->nodes, e.ino, 1);
	}
}

static void rgt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(ctx_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void rgt_forget_multi(fuse_req_t req, size_t count,
			     struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(ctx_of(req)->nodes, forgets[i].ino,
			    forgets[i].nlookup);
	fuse_reply_none(req);
}

static void rgt_getattr(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct rgt_ctx *c = ctx_of(req);
	struct node *n = node_get(c->nodes, ino);
	struct stat st;
	double timeout;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int rc = node_stat(c, n, &st, &timeout);
	if (rc)
		fuse_reply_err(req, io_errno(rc));
	else
		fuse_reply_attr(req, &st, timeout);
}

/* ---- directories ---------------------------------------------------------------- */

static void dir_free(struct hobj *o)
{
	struct dirh *d = (struct dirh *)o;
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d);
}

static int fill_dir(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	const struct kind_ops *k = tree_kind(n->kind);
	if (!k->fill)
		return -ENOTDIR;
	int rc = tree_dir_add(d, ".", n->ino, S_IFDIR);
	if (!rc)
		rc = tree_dir_add(d, "..", n->parent, S_IFDIR);
	return rc ? rc : k->fill(c, n, d);
}

static void rgt_opendir(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct rgt_ctx *c = ctx_of(req);
	struct node *n = node_get(c->nodes, ino);
	struct dirh *d;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!(d = calloc(1, sizeof(*d)))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->h.free = dir_free;
	int rc = fill_dir(c, n, d);
	if (!rc)
		rc = handle_add(c->handles, &d->h, &fi->fh);
	if (rc) {
		dir_free(&d->h);
		fuse_reply_err(req, io_errno(rc));
		return;
	}
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi))
		handle_remove(c->handles, fi->fh);
}

static void rgt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct rgt_ctx *c = ctx_of(req);
	struct dirh *d = (struct dirh *)handle_get(c->handles, fi->fh);
	char *buf = d ? malloc(size) : NULL;
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, d ? ENOMEM : EBADF);
		if (d)
			handle_put(c->handles, &d->h);
		return;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = { .st_ino = d->v[i].ino,
				   .st_mode = d->v[i].type };
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						d->v[i].name, &st,
						(off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	handle_put(c->handles, &d->h);
}

/*
 * readdirplus: every entry but . and .. comes with its attributes and
 * counts as a lookup, so `ls` of an instance directory also fills the
 * kernel's dentry cache (see do_lookup).
 */
static void rgt_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			    off_t off, struct fuse_file_info *fi)
{
	struct rgt_ctx *c = ctx_of(req);
	struct dirh *d = (struct dirh *)handle_get(c->handles, fi->fh);
	struct node *p = node_get(c->nodes, ino);
	char *buf = d && p ? malloc(size) : NULL;
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, d && p ? ENOMEM : EBADF);
		if (d)
			handle_put(c->handles, &d->h);
		return;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct fuse_entry_param e;
		bool dot = !strcmp(d->v[i].name, ".") ||
			   !strcmp(d->v[i].name, "..");
		if (dot || do_lookup(c, p, d->v[i].name, &e)) {
			/* . and .., or gone since opendir: no attributes,
			 * and nothing counted (ino 0 is not a lookup). */
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = d->v[i].ino;
			e.attr.st_mode = d->v[i].type;
		}
		size_t need = fuse_add_direntry_plus(req, buf + used,
						     size - used, d->v[i].name,
						     &e, (off_t)(i + 1));
		if (need > size - used) {
			if (e.ino)
				node_forget(c->nodes, e.ino, 1);
			break;
		}
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	handle_put(c->handles, &d->h);
}

static void rgt_releasedir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	handle_remove(ctx_of(req)->handles, fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- files ----------------------------------------------------------------------- */

static void fh_free(struct hobj *o)
{
	struct fh *h = (struct fh *)o;
	if (!h)
		return;
	if (h->kind == FH_VFILE) {
		buf_cleanup(&h->text);
	} else {
		fetch_file_cleanup(&h->ff);
		fetch_stream_cleanup(&h->stream);
	}
	free(h);
}

static void rgt_open(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	struct rgt_ctx *c = ctx_of(req);
	struct node *n = node_get(c->nodes, ino);
	struct fh *h;
	int rc;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!(h = calloc(1, sizeof(*h)))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->h.free = fh_free;
	const struct kind_ops *k = tree_kind(n->kind);
	struct open_out oo = { false, false };
	rc = k->open ? k->open(c, n, h, &oo) : -EISDIR;
	fi->direct_io = oo.direct_io;
	fi->keep_cache = oo.keep_cache;
	if (!rc)
		rc = handle_add(c->handles, &h->h, &fi->fh);
	if (rc) {
		fh_free(&h->h);
		fuse_reply_err(req, io_errno(rc));
		return;
	}
	if (fuse_reply_open(req, fi))
		handle_remove(c->handles, fi->fh);
}

struct reply_arg {
	fuse_req_t req;
	int replied;
};

static int reply_iov(void *arg, const struct iovec *iov, int n)
{
	struct reply_arg *a = arg;
	a->replied = 1;
	if (!n)
		return fuse_reply_buf(a->req, NULL, 0);
	return fuse_reply_iov(a->req, iov, n);
}

static void rgt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct rgt_ctx *c = ctx_of(req);
	struct fh *h = (struct fh *)handle_get(c->handles, fi->fh);

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (h->kind == FH_VFILE) {
		if ((size_t)off >= h->text.len) {
			fuse_reply_buf(req, NULL, 0);
		} else {
			size_t n = h->text.len - (size_t)off;
			fuse_reply_buf(req, h->text.data + off,
				       n < size ? n : size);
		}
	} else {
		struct reply_arg a = { req, 0 };
		int rc = fetch_read(c->fetcher, &h->ff, &h->stream,
				    (uint64_t)off, size, reply_iov, &a);
		if (!a.replied)
			fuse_reply_err(req, io_errno(rc));
	}
	handle_put(c->handles, &h->h);
}

static void rgt_release(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	handle_remove(ctx_of(req)->handles, fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- everything that would change something ---------------------------------- */

static void rgt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			int to_set, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

/*
 * An unlink or rmdir anywhere inside an instance or an archive marks the
 * process that tried (rmguard.h): `rm -r`, `find -delete` and
 * shutil.rmtree empty a directory before they remove it, rmdir(1) never
 * does. Such a process's rmdir of the instance (or archive) itself is
 * refused with ENOTEMPTY; a deliberate rmdir from another process is not.
 */
static int guard_key(const struct rgt_ctx *c, const struct node *n,
		     char *out, size_t len)
{
	int k;
	if (!n || !n->id)
		return -ENOENT;
	if (n->pi >= 0 && n->kind != NK_PLATFORM)
		k = snprintf(out, len, "%s/%s",
			     fleet_platform_name(c->fleet, (size_t)n->pi),
			     n->id);
	else if (n->plat && n->kind != NK_APLAT)
		k = snprintf(out, len, "archive/%s/%s", n->plat, n->id);
	else
		return -ENOENT;
	return k < 0 || (size_t)k >= len ? -ENAMETOOLONG : 0;
}

static void note_delete(fuse_req_t req, const struct node *p)
{
	struct rgt_ctx *c = ctx_of(req);
	char key[256];
	if (!guard_key(c, p, key, sizeof(key)))
		rmguard_note(c->guard, key, fuse_req_ctx(req)->pid);
}

static bool recursive_delete(fuse_req_t req, const char *key)
{
	return rmguard_hit(ctx_of(req)->guard, key, fuse_req_ctx(req)->pid);
}

static void rgt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rgt_ctx *c = ctx_of(req);
	note_delete(req, node_get(c->nodes, parent));
	fuse_reply_err(req, EROFS);
}

static bool is_owner(fuse_req_t req, const struct rgt_ctx *c)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	return fc && fc->uid == c->uid;
}

struct caller {
	fuse_req_t req;
	pid_t pid;
	uint64_t start;
};

/*
 * Asked by the teardown between steps: was the rmdir interrupted? The
 * kernel's INTERRUPT, or the caller being killed (Ctrl-C on rmdir(1) is
 * fatal to it), whichever we see first.
 */
static bool req_interrupted(void *arg)
{
	struct caller *cl = arg;
	return fuse_req_interrupted(cl->req) ||
	       rmguard_caller_dying(cl->pid, cl->start);
}

static int rmdir_instance(fuse_req_t req, size_t pi, const char *name)
{
	struct rgt_ctx *c = ctx_of(req);
	const char *plat = fleet_platform_name(c->fleet, pi);
	char key[256];
	if (!fleet_instance_visible(c->fleet, pi, name))
		return -ENOENT;
	if (!is_owner(req, c)) {
		rgt_log(RGT_WARN, "rmdir %s/%s by uid %u refused: only the "
			"mounting user may tear down", plat, name,
			(unsigned)fuse_req_ctx(req)->uid);
		fleet_set_teardown(c->fleet, pi, name,
				   "refused: only the user who mounted rgtfs "
				   "may tear an instance down\n"
				   "nothing was destroyed\n");
		return -EPERM;
	}
	snprintf(key, sizeof(key), "%s/%s", plat, name);
	if (!c->guard || recursive_delete(req, key)) {
		rgt_log(RGT_INFO, "rmdir %s/%s refused: the same process just "
			"tried to delete inside it (rm -r?); use rmdir on the "
			"directory itself", plat, name);
		fleet_set_teardown(c->fleet, pi, name,
				   "refused: the process asking had just tried "
				   "to delete files inside (rm -r?); a teardown "
				   "is asked for with rmdir on the directory "
				   "alone\n"
				   "nothing was destroyed\n");
		return -ENOTEMPTY;
	}
	struct caller cl = { req, fuse_req_ctx(req)->pid, 0 };
	cl.start = rmguard_start_time(cl.pid);
	return teardown_instance(c, pi, name, req_interrupted, &cl);
}

#define ARCHIVE_GUARD 60	/* seconds; see rmdir_archive */

static int rmdir_archive(fuse_req_t req, const char *plat, const char *name)
{
	struct rgt_ctx *c = ctx_of(req);
	char key[256];
	if (!is_owner(req, c))
		return -EPERM;
	/* an archive in a bucket: nothing here deletes in a bucket */
	if (!archive_exists(c->store, plat, name) &&
	    tree_archive_is_remote(c, plat, name))
		return -EROFS;
	int k = snprintf(key, sizeof(key), "archive/%s/%s", plat, name);
	if (k < 0 || (size_t)k >= sizeof(key))
		return -ENAMETOOLONG;
	/*
	 * An archive may be the only copy of a destroyed box, so its guard
	 * is stricter than an instance's: besides the process that tried to
	 * delete inside, any attempt inside within ARCHIVE_GUARD seconds
	 * refuses, which also stops `find -depth -exec rmdir {} \;` (one
	 * process per directory, innermost first).
	 */
	if (!c->guard || recursive_delete(req, key) ||
	    rmguard_recent(c->guard, key, ARCHIVE_GUARD)) {
		rgt_log(RGT_INFO, "rmdir archive/%s/%s refused: something "
			"just tried to delete inside it (rm -r?); the archive "
			"may be the only copy", plat, name);
		return -ENOTEMPTY;
	}
	int rc = archive_delete(c->store, plat, name);
	if (!rc)
		rgt_log(RGT_INFO, "archive %s/%s deleted from the cache", plat,
			name);
	return rc;
}

static void rgt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rgt_ctx *c = ctx_of(req);
	struct node *p = node_get(c->nodes, parent);
	int rc;

	if (!p) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (p->kind == NK_PLATFORM) {
		int pi = fleet_instance_section(c->fleet, (size_t)p->pi, name);
		rc = pi < 0 ? -ENOENT : rmdir_instance(req, (size_t)pi, name);
	} else if (p->kind == NK_APLAT) {
		rc = rmdir_archive(req, p->plat, name);
	} else {
		note_delete(req, p);
		rc = -EROFS;
	}
	fuse_reply_err(req, -rc);
}

static void rgt_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname,
		       unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		     const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		      size_t size, off_t off, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = STORE_BLOCK_SIZE;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

static void rgt_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rgt_ctx *c = userdata;
	if (!c->guard && rmguard_new(&c->guard))
		rgt_log(RGT_ERR, "out of memory: rm -r cannot be told from "
			"rmdir, so every rmdir of an instance is refused");
	/* Parallel reads on one file let the kernel's read-ahead overlap with
	 * ours; readdir is answered from our own snapshot. */
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void rgt_destroy(void *userdata)
{
	struct rgt_ctx *c = userdata;
	rmguard_free(c->guard);
	c->guard = NULL;
}

/* ---- extended attributes (xattr.h) --------------------------------------------- */

static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf,
			size_t size)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/* What the kind of @n says; nothing at all for kinds without. */
static int node_xattrs(struct rgt_ctx *c, struct node *n,
		       struct node_xattrs *x)
{
	const struct kind_ops *k = tree_kind(n->kind);
	memset(x, 0, sizeof(*x));
	return k->xattrs ? k->xattrs(c, n, x) : 0;
}

static void rgt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 size_t size)
{
	struct rgt_ctx *c = ctx_of(req);
	struct node *n = node_get(c->nodes, ino);
	struct node_xattrs x;
	char buf[XATTR_SOURCE_MAX + 64];

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* ls -l's ACL and SELinux probes end here, without a store read */
	if (!xattr_is_ours(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	int rc = node_xattrs(c, n, &x);
	if (rc) {
		fuse_reply_err(req, io_errno(rc));
		return;
	}
	reply_xattr(req, xattr_value(&x, name, buf,
				     size < sizeof(buf) ? size : sizeof(buf)),
		    buf, size);
}

static void rgt_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rgt_ctx *c = ctx_of(req);
	struct node *n = node_get(c->nodes, ino);
	struct node_xattrs x;
	char buf[128];

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int rc = node_xattrs(c, n, &x);
	if (rc) {
		fuse_reply_err(req, io_errno(rc));
		return;
	}
	reply_xattr(req, xattr_list(&x, buf,
				    size < sizeof(buf) ? size : sizeof(buf)),
		    buf, size);
}

static void rgt_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 const char *value, size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void rgt_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops rgt_ops = {
	.init = rgt_init,
	.destroy = rgt_destroy,
	.lookup = rgt_lookup,
	.forget = rgt_forget,
	.forget_multi = rgt_forget_multi,
	.getattr = rgt_getattr,
	.setattr = rgt_setattr,
	.mknod = rgt_mknod,
	.mkdir = rgt_mkdir,
	.unlink = rgt_unlink,
	.rmdir = rgt_rmdir,
	.symlink = rgt_symlink,
	.rename = rgt_rename,
	.link = rgt_link,
	.open = rgt_open,
	.read = rgt_read,
	.write = rgt_write,
	.release = rgt_release,
	.opendir = rgt_opendir,
	.readdir = rgt_readdir,
	.readdirplus = rgt_readdirplus,
	.releasedir = rgt_releasedir,
	.statfs = rgt_statfs,
	.create = rgt_create,
	.getxattr = rgt_getxattr,
	.listxattr = rgt_listxattr,
	.setxattr = rgt_setxattr,
	.removexattr = rgt_removexattr,
};
