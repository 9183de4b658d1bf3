/*
 * ops.c - FUSE low-level operations over the virtual tree.
 *
 * DESIGN
 * Each rgt_<op> resolves its node, calls one fleet_/remote_/fetch_ function
 * that returns -errno, and replies exactly once. Nothing here touches
 * libssh2, libcurl or LMDB.
 *
 * The tree (SPEC.md "The tree"):
 *   /                    platforms + archive/
 *   /<platform>/         .error + one directory per visible instance
 *   /<platform>/<id>/    status status_msg info.json ssh log teardown
 *                        .error checkpoints/
 *   .../checkpoints/...  the remote checkpoint_dir, regular files and
 *                        directories only
 *
 * Everything is read-only. Writes, creates, renames and unlinks fail with
 * EROFS. rmdir of an instance directory is the teardown verb, rmdir of an
 * archive deletes it; both are refused for a process that has just tried
 * to delete inside (rm -r, see rmguard.h), so `rm -rf` changes nothing.
 *
 * Virtual files are rendered at open() into the file handle and served
 * with direct_io, so a shell loop re-reading `status` sees every change and
 * never a torn value. Remote files are served by the fetcher; their page
 * cache is kept across opens while (size, mtime) is unchanged.
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

#define ATTR_TIMEOUT 1.0	/* seconds the kernel may cache attributes */
#define LIST_MAX_AGE 1		/* seconds a remote listing is reused */
#define FIXED_NAME_TIMEOUT 86400.0	/* status, teardown...: see lookup */
#define VFILE_MAX (1u << 20)	/* bound on one rendered virtual file */

static const struct {
	const char *name;
	int vf;
} vfiles[] = {
	{ "status", FF_STATUS },
	{ "status_msg", FF_STATUS_MSG },
	{ "info.json", FF_INFO },
	{ "ssh", FF_SSH },
	{ "teardown", FF_TEARDOWN },
	{ ".error", FF_ERROR },
};

enum { AV_STATUS, AV_STATUS_MSG, AV_INFO, AV_SSH, AV_TEARDOWN, AV_MANIFEST,
       AV_VERIFIED };

static const struct {
	const char *name;
	int vf;
} avfiles[] = {
	{ "status", AV_STATUS },
	{ "status_msg", AV_STATUS_MSG },
	{ "info.json", AV_INFO },
	{ "ssh", AV_SSH },
	{ "teardown", AV_TEARDOWN },
	{ "PULL_MANIFEST.json", AV_MANIFEST },
	{ "PULL_VERIFIED.json", AV_VERIFIED },
};

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

static struct remote *remote_of(struct rgt_ctx *c, const struct node *n)
{
	if (n->pi < 0 || !n->id)
		return NULL;
	return fleet_remote(c->fleet, (size_t)n->pi, n->id);
}


/* ---- rendering virtual files ------------------------------------------------ */

static int render_archive(struct rgt_ctx *c, const struct node *n,
			  struct buf *b)
{
	struct archive *a;
	int rc = archive_load(c->store, n->plat, n->id, &a);
	if (rc)
		return rc;
	const char *text = NULL;
	switch (n->vf) {
	case AV_STATUS: text = "gone\n"; break;
	case AV_STATUS_MSG: text = a->status_msg; break;
	case AV_INFO: text = a->info; break;
	case AV_SSH: text = a->ssh; break;
	case AV_TEARDOWN: text = a->report; break;
	case AV_MANIFEST: text = a->manifest; break;
	case AV_VERIFIED: text = a->verified; break;
	}
	rc = text ? buf_appendf(b, "%s", text) : 0;
	archive_free(a);
	return rc;
}

static int render(struct rgt_ctx *c, const struct node *n, struct buf *b)
{
	if (n->kind == NK_AVFILE)
		return render_archive(c, n, b);
	if (n->kind == NK_PERROR)
		return fleet_platform_error(c->fleet, (size_t)n->pi, b);
	return fleet_instance_file(c->fleet, (size_t)n->pi, n->id, n->vf, b);
}

/* ---- attributes -------------------------------------------------------------- */

/*
 * Directories are writable for the owner: nothing under the mount can be
 * changed (every change fails with EROFS), but the kernel then passes the
 * owner's unlink and rmdir attempts through to us instead of refusing them
 * itself, so rm -r is seen at work inside a directory (rmguard.h) before
 * it asks for the directory.
 */
static void dir_stat(struct rgt_ctx *c, const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = c->uid;
	st->st_gid = c->gid;
	st->st_mtime = st->st_ctime = st->st_atime = c->mount_time;
	st->st_blksize = 4096;
}

/* Fresh attributes of a remote file or dir from its parent's listing. */
static int refresh_remote(struct rgt_ctx *c, struct node *n, int max_age)
{
	struct remote *r = remote_of(c, n);
	if (!r)
		return -ENOENT;
	if (n->kind == NK_LOG) {
		struct xfer_attr a;
		int rc = remote_stat(r, n->rpath, max_age, &a);
		if (!rc)
			node_set_attr(c->nodes, n, &a);
		return rc;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", n->rpath);
	char *slash = strrchr(dir, '/');
	if (!slash || n->kind == NK_RDIR)
		return 0;	/* directories: the listing that found it */
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	struct rlisting *l;
	int rc = remote_list(r, dir, max_age, &l);
	if (rc)
		return rc;
	const struct rentry *e = rlisting_find(l, n->name);
	if (e && S_ISREG(e->attr.mode))
		node_set_attr(c->nodes, n, &e->attr);
	else
		rc = -ENOENT;
	rlisting_free(l);
	return rc;
}

static int node_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		     double *timeout)
{
	*timeout = ATTR_TIMEOUT;
	switch (n->kind) {
	case NK_ROOT:
	case NK_ARCHIVE:
	case NK_INSTANCE:
	case NK_AINST:
	case NK_ADIR:
		dir_stat(c, n, st);
		return 0;
	case NK_PLATFORM:
	case NK_APLAT:
		dir_stat(c, n, st);
		return 0;
	case NK_ALOG:
	case NK_AFILE: {
		struct archive *a;
		int rc = archive_load(c->store, n->plat, n->id, &a);
		if (rc)
			return rc;
		const struct archive_file *f =
			n->kind == NK_AFILE ? archive_file_at(a, n->rpath) :
					      NULL;
		if (n->kind == NK_AFILE && !f) {
			archive_free(a);
			return -ENOENT;
		}
		memset(st, 0, sizeof(*st));
		st->st_ino = n->ino;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_uid = c->uid;
		st->st_gid = c->gid;
		st->st_size = (off_t)(f ? f->size : a->log_size);
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_mtime = st->st_ctime = st->st_atime =
			f ? f->mtime : a->log_mtime;
		st->st_blksize = STORE_BLOCK_SIZE;
		archive_free(a);
		return 0;
	}
	case NK_RDIR: {
		dir_stat(c, n, st);
		struct xfer_attr a = node_attr(c->nodes, n);
		if (a.mtime)
			st->st_mtime = st->st_ctime = a.mtime;
		return 0;
	}
	case NK_VFILE:
	case NK_AVFILE:
	case NK_PERROR: {
		struct buf b;
		buf_init(&b, VFILE_MAX);
		int rc = render(c, n, &b);
		memset(st, 0, sizeof(*st));
		st->st_ino = n->ino;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_uid = c->uid;
		st->st_gid = c->gid;
		st->st_size = b.len;
		st->st_mtime = st->st_ctime = st->st_atime = time(NULL);
		st->st_blksize = 4096;
		buf_cleanup(&b);
		*timeout = 0;	/* changes with every poll */
		return rc;
	}
	case NK_LOG:
	case NK_RFILE: {
		int rc = refresh_remote(c, n, LIST_MAX_AGE);
		if (rc == -ENOENT && n->kind == NK_RFILE)
			return rc;
		struct xfer_attr a = node_attr(c->nodes, n);
		memset(st, 0, sizeof(*st));
		st->st_ino = n->ino;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_uid = c->uid;
		st->st_gid = c->gid;
		st->st_size = (off_t)a.size;
		st->st_blocks = (a.size + 511) / 512;
		st->st_mtime = st->st_ctime = st->st_atime = a.mtime;
		st->st_blksize = STORE_BLOCK_SIZE;
		if (n->kind == NK_LOG)
			*timeout = 0;
		return 0;
	}
	}
	return -EIO;
}

/* ---- lookup --------------------------------------------------------------------- */

/* Describe child @name of @p in @t (strings borrowed or in @path). */
static int resolve(struct rgt_ctx *c, struct node *p, const char *name,
		   struct node *t, char *path, size_t pathlen)
{
	memset(t, 0, sizeof(*t));
	t->pi = p->pi;
	t->id = p->id;
	switch (p->kind) {
	case NK_ROOT:
		if (!strcmp(name, "archive")) {
			t->kind = NK_ARCHIVE;
			return 0;
		}
		/* a platform directory's pi is its directory index */
		t->pi = fleet_dir_index(c->fleet, name);
		if (t->pi < 0)
			return -ENOENT;
		t->kind = NK_PLATFORM;
		return 0;
	case NK_PLATFORM:
		if (!strcmp(name, ".error")) {
			t->kind = NK_PERROR;
			return 0;
		}
		/* ... and an instance's, its section's */
		t->pi = fleet_instance_section(c->fleet, (size_t)p->pi, name);
		if (t->pi < 0)
			return -ENOENT;
		t->kind = NK_INSTANCE;
		t->id = (char *)name;
		return 0;
	case NK_INSTANCE: {
		const struct rgt_section *sec =
			fleet_section(c->fleet, (size_t)p->pi);
		if (!fleet_instance_visible(c->fleet, (size_t)p->pi, p->id))
			return -ENOENT;
		for (size_t i = 0; i < sizeof(vfiles) / sizeof(vfiles[0]);
		     i++) {
			if (!strcmp(name, vfiles[i].name)) {
				t->kind = NK_VFILE;
				t->vf = vfiles[i].vf;
				return 0;
			}
		}
		if (!strcmp(name, "log")) {
			t->kind = NK_LOG;
			t->rpath = (char *)(sec->log_path ? sec->log_path :
							    "");
			return 0;
		}
		if (!strcmp(name, "checkpoints")) {
			t->kind = NK_RDIR;
			t->rpath = (char *)sec->checkpoint_dir;
			return 0;
		}
		return -ENOENT;
	}
	case NK_RDIR: {
		struct remote *r = remote_of(c, p);
		struct rlisting *l;
		if (!r)
			return -ENOENT;
		int rc = rpath_join(path, pathlen, p->rpath, name);
		if (rc)
			return rc;
		rc = remote_list(r, p->rpath, LIST_MAX_AGE, &l);
		if (rc)
			return rc;
		const struct rentry *e = rlisting_find(l, name);
		if (!e) {
			rlisting_free(l);
			return -ENOENT;
		}
		t->kind = S_ISDIR(e->attr.mode) ? NK_RDIR : NK_RFILE;
		t->attr = e->attr;
		t->rpath = path;
		rlisting_free(l);
		return 0;
	}
	case NK_ARCHIVE: {
		char **v;
		size_t k;
		int rc = archive_platforms(c->store, &v, &k);
		if (rc)
			return rc;
		rc = -ENOENT;
		for (size_t i = 0; i < k; i++)
			if (!strcmp(v[i], name))
				rc = 0;
		archive_names_free(v, k);
		t->kind = NK_APLAT;
		t->plat = (char *)name;
		t->pi = -1;
		return rc;
	}
	case NK_APLAT:
	case NK_AINST:
	case NK_ADIR: {
		struct archive *a;
		const char *id = p->kind == NK_APLAT ? name : p->id;
		int rc = archive_load(c->store, p->plat, id, &a);
		if (rc)
			return rc;
		t->plat = p->plat;
		t->id = (char *)id;
		t->pi = -1;
		rc = -ENOENT;
		if (p->kind == NK_APLAT) {
			t->kind = NK_AINST;
			rc = 0;
		} else if (p->kind == NK_AINST) {
			for (size_t i = 0; i < NELEM(avfiles); i++) {
				if (!strcmp(name, avfiles[i].name)) {
					t->kind = NK_AVFILE;
					t->vf = avfiles[i].vf;
					rc = 0;
				}
			}
			if (!strcmp(name, "log") && a->log_path) {
				t->kind = NK_ALOG;
				rc = 0;
			}
			if (!strcmp(name, "checkpoints")) {
				t->kind = NK_ADIR;
				t->rpath = (char *)"";
				rc = 0;
			}
		} else {
			int n = snprintf(path, pathlen, "%s%s%s", p->rpath,
					 *p->rpath ? "/" : "", name);
			if (n < 0 || (size_t)n >= pathlen) {
				rc = -ENAMETOOLONG;
			} else if (archive_file_at(a, path)) {
				t->kind = NK_AFILE;
				t->rpath = path;
				rc = 0;
			} else if (archive_dir_at(a, path)) {
				t->kind = NK_ADIR;
				t->rpath = path;
				rc = 0;
			}
		}
		archive_free(a);
		return rc;
	}
	default:
		return -ENOTDIR;
	}
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

static int dir_add(struct dirh *d, const char *name, uint64_t ino,
		   mode_t type)
{
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 16;
		struct dent *nv = realloc(d->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		d->v = nv;
		d->cap = nc;
	}
	if (!(d->v[d->n].name = strdup(name)))
		return -ENOMEM;
	d->v[d->n].ino = ino;
	d->v[d->n].type = type;
	d->n++;
	return 0;
}

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

static int add_child(struct dirh *d, const struct node *n, const char *name,
		     mode_t type)
{
	return dir_add(d, name, node_ino_for(n->ino, name), type);
}

struct adir_arg {
	struct dirh *d;
	const struct node *n;
};

static int adir_fn(void *arg, const char *name, bool is_dir,
		   const struct archive_file *f)
{
	struct adir_arg *a = arg;
	return add_child(a->d, a->n, name, is_dir ? S_IFDIR : S_IFREG);
}

static int fill_dir(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	int rc = dir_add(d, ".", n->ino, S_IFDIR);
	if (!rc)
		rc = dir_add(d, "..", n->parent, S_IFDIR);
	switch (n->kind) {
	case NK_ROOT:
		for (size_t i = 0; !rc && i < fleet_ndirs(c->fleet); i++)
			rc = add_child(d, n, fleet_dir_name(c->fleet, i),
				       S_IFDIR);
		if (!rc)
			rc = add_child(d, n, "archive", S_IFDIR);
		return rc;
	case NK_ARCHIVE: {
		char **v;
		size_t k;
		if (rc || (rc = archive_platforms(c->store, &v, &k)))
			return rc;
		for (size_t i = 0; !rc && i < k; i++)
			rc = add_child(d, n, v[i], S_IFDIR);
		archive_names_free(v, k);
		return rc;
	}
	case NK_APLAT: {
		char **v;
		size_t k;
		if (rc || (rc = archive_ids(c->store, n->plat, &v, &k)))
			return rc;
		for (size_t i = 0; !rc && i < k; i++)
			rc = add_child(d, n, v[i], S_IFDIR);
		archive_names_free(v, k);
		return rc;
	}
	case NK_AINST:
	case NK_ADIR: {
		struct archive *a;
		if (rc || (rc = archive_load(c->store, n->plat, n->id, &a)))
			return rc;
		if (n->kind == NK_AINST) {
			for (size_t i = 0; !rc && i < NELEM(avfiles); i++) {
				/* manifests only where there are some */
				if ((avfiles[i].vf == AV_MANIFEST &&
				     !a->manifest) ||
				    (avfiles[i].vf == AV_VERIFIED &&
				     !a->verified))
					continue;
				rc = add_child(d, n, avfiles[i].name,
					       S_IFREG);
			}
			if (!rc && a->log_path)
				rc = add_child(d, n, "log", S_IFREG);
			if (!rc)
				rc = add_child(d, n, "checkpoints", S_IFDIR);
		} else {
			struct adir_arg aa = { d, n };
			rc = archive_children(a, n->rpath, adir_fn, &aa);
		}
		archive_free(a);
		return rc;
	}
	case NK_PLATFORM: {
		char **ids;
		size_t k;
		if (!rc)
			rc = add_child(d, n, ".error", S_IFREG);
		if (rc || (rc = fleet_instance_ids(c->fleet, (size_t)n->pi,
						   &ids, &k)))
			return rc;
		for (size_t i = 0; !rc && i < k; i++)
			rc = add_child(d, n, ids[i], S_IFDIR);
		fleet_ids_free(ids, k);
		return rc;
	}
	case NK_INSTANCE:
		if (!fleet_instance_visible(c->fleet, (size_t)n->pi, n->id))
			return -ENOENT;
		for (size_t i = 0;
		     !rc && i < sizeof(vfiles) / sizeof(vfiles[0]); i++)
			rc = add_child(d, n, vfiles[i].name, S_IFREG);
		if (!rc)
			rc = add_child(d, n, "log", S_IFREG);
		if (!rc)
			rc = add_child(d, n, "checkpoints", S_IFDIR);
		return rc;
	case NK_RDIR: {
		struct remote *r = remote_of(c, n);
		struct rlisting *l;
		if (rc)
			return rc;
		if (!r)
			return -ENOENT;
		rc = remote_list(r, n->rpath, LIST_MAX_AGE, &l);
		if (rc == -ENOENT &&
		    !strcmp(n->rpath, fleet_section(c->fleet, (size_t)n->pi)
						->checkpoint_dir))
			return 0;	/* no checkpoint_dir yet: empty */
		if (rc)
			return rc;
		for (size_t i = 0; !rc && i < l->n; i++)
			rc = add_child(d, n, l->v[i].name,
				       S_ISDIR(l->v[i].attr.mode) ? S_IFDIR :
								    S_IFREG);
		rlisting_free(l);
		return rc;
	}
	default:
		return -ENOTDIR;
	}
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

enum fh_kind { FH_VFILE, FH_REMOTE };

struct fh {
	struct hobj h;			/* first: see handle.h */
	enum fh_kind kind;
	struct buf text;		/* FH_VFILE */
	struct fetch_file ff;		/* FH_REMOTE */
	struct fetch_stream stream;
};

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
	switch (n->kind) {
	case NK_ALOG:
	case NK_AFILE: {
		/* Archived bytes: only the store has them (no remote). */
		struct archive *a;
		h->kind = FH_REMOTE;
		fetch_stream_init(&h->stream);
		rc = archive_load(c->store, n->plat, n->id, &a);
		if (rc)
			break;
		const struct archive_file *f =
			n->kind == NK_AFILE ? archive_file_at(a, n->rpath) :
					      NULL;
		/* The archive's own lookup: the same one the teardown's
		 * serve check read every file through. */
		if (n->kind == NK_AFILE)
			rc = f ? archive_file_open(a, f, &h->ff) : -ENOENT;
		else
			rc = archive_log_open(a, &h->ff);
		archive_free(a);
		fi->keep_cache = 1;	/* an archive never changes */
		break;
	}
	case NK_VFILE:
	case NK_AVFILE:
	case NK_PERROR:
		h->kind = FH_VFILE;
		buf_init(&h->text, VFILE_MAX);
		rc = render(c, n, &h->text);
		fi->direct_io = 1;
		break;
	case NK_LOG:
	case NK_RFILE: {
		struct remote *r = remote_of(c, n);
		h->kind = FH_REMOTE;
		fetch_stream_init(&h->stream);
		if (!r) {
			rc = -ENOENT;
			break;
		}
		if (n->kind == NK_LOG && !*n->rpath) {
			/* No log_path configured: an empty log. */
			struct xfer_attr empty = { 0 };
			node_set_attr(c->nodes, n, &empty);
			rc = 0;
		} else {
			/* The log grows: always ask. Checkpoints: reuse a
			 * listing that is at most LIST_MAX_AGE old. */
			rc = refresh_remote(c, n,
					    n->kind == NK_LOG ? 0 :
								LIST_MAX_AGE);
			if (rc && rc != -ENOENT && rc != -EACCES)
				rc = 0;	/* unreachable: last known attrs */
			if (rc == -ENOENT && n->kind == NK_LOG) {
				struct xfer_attr empty = { 0 };
				node_set_attr(c->nodes, n, &empty);
				rc = 0;
			}
		}
		if (rc)
			break;
		struct xfer_attr a = node_attr(c->nodes, n);
		rc = fetch_file_init(&h->ff, r,
				     fleet_platform_name(c->fleet,
							 (size_t)n->pi),
				     n->id, *n->rpath ? n->rpath : "/dev/null",
				     a.size, a.mtime);
		if (n->kind == NK_LOG)
			fi->direct_io = 1;
		else
			fi->keep_cache = node_same_identity(c->nodes, n,
							    a.size, a.mtime);
		break;
	}
	default:
		rc = -EISDIR;
	}
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

/* Asked by the teardown between steps: was the rmdir interrupted? */
static bool req_interrupted(void *arg)
{
	return fuse_req_interrupted(arg);
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
	return teardown_instance(c, pi, name, req_interrupted, req);
}

#define ARCHIVE_GUARD 60	/* seconds; see rmdir_archive */

static int rmdir_archive(fuse_req_t req, const char *plat, const char *name)
{
	struct rgt_ctx *c = ctx_of(req);
	char key[256];
	if (!is_owner(req, c))
		return -EPERM;
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
};
