/*
 * tree.c - the live kinds of the tree (see tree.h):
 *
 *   /                    platform directories, archive/, fleet.tsv,
 *                        fleet.json, .rgtfs/ (fleetview.c)
 *   /<kind>/             .error + one directory per visible instance
 *   /<kind>/<id>/        status status_msg info.json ssh teardown .error
 *                        log checkpoints/
 *   .../checkpoints/...  the remote checkpoint_dir, regular files and
 *                        directories only
 *
 * A platform directory's node carries its *directory* index in pi (several
 * sections of one kind share it); an instance and everything below it
 * carries its *section* index (fleet.h).
 *
 * Virtual files are rendered at open() into the handle and served with
 * direct_io, so a shell loop re-reading `status` sees every change and never
 * a torn value. Remote files are served by the fetcher; their page cache is
 * kept across opens while (size, mtime) is unchanged.
 */
#include "tree.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloud.h"
#include "config.h"
#include "fleet.h"
#include "fleetview.h"
#include "ops.h"
#include "platform.h"
#include "remote.h"
#include "rpath.h"
#include "store.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The fixed files of an instance directory. */
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

/* ---- shared helpers ---------------------------------------------------------- */

int tree_dir_add(struct dirh *d, const char *name, uint64_t ino, mode_t type)
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

int tree_add_child(struct dirh *d, const struct node *n, const char *name,
		   mode_t type)
{
	return tree_dir_add(d, name, node_ino_for(n->ino, name), type);
}

/*
 * Directories are writable for the owner: nothing under the mount can be
 * changed (every change fails with EROFS), but the kernel then passes the
 * owner's unlink and rmdir attempts through to us instead of refusing them
 * itself, so rm -r is seen at work inside a directory (rmguard.h) before
 * it asks for the directory.
 */
void tree_dir_stat(struct rgt_ctx *c, const struct node *n, struct stat *st)
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

void tree_file_stat(struct rgt_ctx *c, const struct node *n, struct stat *st,
		    uint64_t size, int64_t mtime, long blksize)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_uid = c->uid;
	st->st_gid = c->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
	st->st_blksize = blksize;
}

int tree_text_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		   double *timeout,
		   int (*render)(struct rgt_ctx *, const struct node *,
				 struct buf *))
{
	struct buf b;
	buf_init(&b, VFILE_MAX);
	int rc = render(c, n, &b);
	tree_file_stat(c, n, st, b.len, time(NULL), 4096);
	st->st_blocks = 0;
	buf_cleanup(&b);
	*timeout = 0;	/* changes with every poll */
	return rc;
}

int tree_text_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		   struct open_out *out,
		   int (*render)(struct rgt_ctx *, const struct node *,
				 struct buf *))
{
	h->kind = FH_VFILE;
	buf_init(&h->text, VFILE_MAX);
	out->direct_io = true;
	return render(c, n, &h->text);
}

struct cloud *rgt_cloud(const struct rgt_ctx *c, const char *name)
{
	for (size_t i = 0; name && i < c->nclouds; i++)
		if (!strcmp(cloud_name(c->clouds[i]), name))
			return c->clouds[i];
	return NULL;
}

/* The bucket of a node under MOUNT/cloud/NAME, or NULL. */
static struct cloud *cloud_of(const struct rgt_ctx *c, const struct node *n)
{
	return n->cloud > 0 && (size_t)n->cloud <= c->nclouds ?
		       c->clouds[n->cloud - 1] : NULL;
}

/*
 * Where the names and bytes of a remote node come from, in the order to
 * ask. A bucket's node: that bucket. An instance's log: the box. An
 * instance's checkpoints/: the box, and, when its section says cloud =
 * NAME, the bucket copy under the section's prefix (SPEC: a stopped or
 * gone instance's synced checkpoints stay readable) -- the bucket first
 * when the platform says the box is not running. Node paths are always
 * the box's; cloud_map_path() is the one mapping to the bucket's.
 */
struct rsrc {
	struct remote *r;
	const char *path;	/* in r's tree */
	const char *plat;	/* identity of its files (fetch_file_id) */
	const char *id;
	bool cloud;
	char buf[PATH_MAX];
	const struct cloud *cl;	/* the bucket, when cloud */
};

static int sources_of(struct rgt_ctx *c, const struct node *n,
		      struct rsrc src[2])
{
	struct cloud *cl = cloud_of(c, n);
	if (cl) {
		src[0] = (struct rsrc){ cloud_remote(cl), n->rpath, "cloud",
					cloud_name(cl), true, "", cl };
		return src[0].r ? 1 : 0;
	}
	if (n->pi < 0 || !n->id)
		return 0;
	int k = 0;
	struct remote *box = fleet_remote(c->fleet, (size_t)n->pi, n->id);
	if (box)
		src[k++] = (struct rsrc){ box, n->rpath,
					  fleet_platform_name(c->fleet,
							      (size_t)n->pi),
					  n->id, false, "", NULL };
	const struct rgt_section *sec = fleet_section(c->fleet, (size_t)n->pi);
	cl = n->kind == NK_LOG ? NULL : rgt_cloud(c, sec->cloud);
	char pre[PATH_MAX];
	if (!cl || !cloud_remote(cl) ||
	    cloud_instance_path(cl, sec->kind, n->id, pre, sizeof(pre)))
		return k;
	struct rsrc *b = &src[k];
	/* the instance's copy: owned by the instance, so its pins (gone,
	 * tearing down, archived) keep these blocks as they keep the box's */
	*b = (struct rsrc){ cloud_remote(cl), b->buf,
			    fleet_platform_name(c->fleet, (size_t)n->pi), n->id,
			    true, "", cl };
	if (cloud_map_path(pre, sec->checkpoint_dir, n->rpath, b->buf,
			   sizeof(b->buf)))
		return k;
	k++;
	int st = RGT_ST_UNKNOWN;
	if (k == 2 && !fleet_instance_state(c->fleet, (size_t)n->pi, n->id,
					    &st) &&
	    st != RGT_ST_RUNNING && st != RGT_ST_PROVISIONING &&
	    st != RGT_ST_UNKNOWN) {
		struct rsrc t = src[0];
		src[0] = src[1];
		src[1] = t;
		/* the structs moved: their buffers with them */
		if (src[0].cloud)
			src[0].path = src[0].buf;
		if (src[1].cloud)
			src[1].path = src[1].buf;
	}
	return k;
}

/* The source whose files have this version: S3 objects always carry an
 * ETag, SFTP files never do. */
static const struct rsrc *source_for(const struct rsrc *src, int n,
				     const struct xfer_attr *a)
{
	for (int i = 0; i < n; i++)
		if (src[i].cloud == (a->etag[0] != '\0'))
			return &src[i];
	return n ? &src[0] : NULL;
}

/* @path's parent directory into @out ("/" for "/x"). */
static void parent_of(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s", path);
	char *slash = strrchr(out, '/');
	if (!slash)
		return;
	if (slash == out)
		slash[1] = '\0';
	else
		*slash = '\0';
}

/*
 * The listing of directory @dir_of(src) from the first source that
 * answers; a listing served from memory because its source did not
 * answer (stale) is taken only when no source answers afresh.
 */
static int list_any(const struct rsrc *src, int n, bool parent, int max_age,
		    struct rlisting **out, int *used)
{
	int first_rc = -ENOENT;
	struct rlisting *stale = NULL;
	int stale_i = -1;
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX];
		if (parent)
			parent_of(src[i].path, dir, sizeof(dir));
		else
			snprintf(dir, sizeof(dir), "%s", src[i].path);
		struct rlisting *l;
		int rc = remote_list(src[i].r, dir, max_age, &l);
		if (!rc && !l->stale) {
			rlisting_free(stale);
			*out = l;
			*used = i;
			return 0;
		}
		if (!rc && !stale) {
			stale = l;
			stale_i = i;
		} else if (!rc) {
			rlisting_free(l);
		} else if (i == 0) {
			first_rc = rc;
		}
	}
	if (stale) {
		*out = stale;
		*used = stale_i;
		return 0;
	}
	return first_rc;
}

static int dir_stat_fn(struct rgt_ctx *c, struct node *n, struct stat *st,
		       double *timeout)
{
	tree_dir_stat(c, n, st);
	return 0;
}

/* ---- / --------------------------------------------------------------------------- */

static int root_resolve(struct rgt_ctx *c, struct node *p, const char *name,
			struct node *t, char *path, size_t pathlen)
{
	if (!strcmp(name, "archive")) {
		t->kind = NK_ARCHIVE;
		return 0;
	}
	if (!strcmp(name, "cloud") && c->nclouds) {
		t->kind = NK_CLOUDS;
		t->pi = -1;
		return 0;
	}
	for (size_t i = 0; i < NELEM(fleetview_root_names); i++) {
		if (!strcmp(name, fleetview_root_names[i])) {
			t->kind = NK_FLEET;
			t->vf = (int)i;
			t->pi = -1;
			return 0;
		}
	}
	if (!strcmp(name, FLEETVIEW_DIR)) {
		t->kind = NK_RGTDIR;
		t->pi = -1;
		return 0;
	}
	/* a platform directory's pi is its directory index */
	t->pi = fleet_dir_index(c->fleet, name);
	if (t->pi < 0)
		return -ENOENT;
	t->kind = NK_PLATFORM;
	return 0;
}

static int root_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < fleet_ndirs(c->fleet); i++)
		rc = tree_add_child(d, n, fleet_dir_name(c->fleet, i),
				    S_IFDIR);
	if (!rc && c->nclouds)
		rc = tree_add_child(d, n, "cloud", S_IFDIR);
	for (size_t i = 0; !rc && i < NELEM(fleetview_root_names); i++)
		rc = tree_add_child(d, n, fleetview_root_names[i], S_IFREG);
	if (!rc)
		rc = tree_add_child(d, n, FLEETVIEW_DIR, S_IFDIR);
	return rc ? rc : tree_add_child(d, n, "archive", S_IFDIR);
}

static const struct kind_ops root_ops = {
	.stat = dir_stat_fn, .resolve = root_resolve, .fill = root_fill,
};

/* ---- /<kind>/ ------------------------------------------------------------------- */

static int platform_resolve(struct rgt_ctx *c, struct node *p,
			    const char *name, struct node *t, char *path,
			    size_t pathlen)
{
	if (!strcmp(name, ".error")) {
		t->kind = NK_PERROR;
		return 0;
	}
	/* ... and an instance's pi, its section's */
	t->pi = fleet_instance_section(c->fleet, (size_t)p->pi, name);
	if (t->pi < 0)
		return -ENOENT;
	t->kind = NK_INSTANCE;
	t->id = (char *)name;
	return 0;
}

static int platform_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	char **ids;
	size_t k;
	int rc = tree_add_child(d, n, ".error", S_IFREG);
	if (rc || (rc = fleet_instance_ids(c->fleet, (size_t)n->pi, &ids, &k)))
		return rc;
	for (size_t i = 0; !rc && i < k; i++)
		rc = tree_add_child(d, n, ids[i], S_IFDIR);
	fleet_ids_free(ids, k);
	return rc;
}

static const struct kind_ops platform_ops = {
	.stat = dir_stat_fn, .resolve = platform_resolve,
	.fill = platform_fill,
};

static int perror_render(struct rgt_ctx *c, const struct node *n,
			 struct buf *b)
{
	return fleet_platform_error(c->fleet, (size_t)n->pi, b);
}

static int perror_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		       double *timeout)
{
	return tree_text_stat(c, n, st, timeout, perror_render);
}

static int perror_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		       struct open_out *out)
{
	return tree_text_open(c, n, h, out, perror_render);
}

static const struct kind_ops perror_ops = {
	.stat = perror_stat, .open = perror_open,
};

/* ---- /cloud/ ------------------------------------------------------------------- */

/*
 * MOUNT/cloud/NAME is the root of bucket NAME, read-only, served by the
 * same remote-directory handlers as checkpoints/ (its nodes carry the
 * bucket's index). Problems of every bucket are in MOUNT/cloud/.error,
 * one line each, outside any bucket's namespace.
 */
static int clouds_resolve(struct rgt_ctx *c, struct node *p, const char *name,
			  struct node *t, char *path, size_t pathlen)
{
	if (!strcmp(name, ".error")) {
		t->kind = NK_CERROR;
		return 0;
	}
	for (size_t i = 0; i < c->nclouds; i++) {
		if (strcmp(name, cloud_name(c->clouds[i])))
			continue;
		t->kind = NK_RDIR;
		t->cloud = (int)i + 1;
		t->rpath = (char *)"/";
		return 0;
	}
	return -ENOENT;
}

static int clouds_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	int rc = tree_add_child(d, n, ".error", S_IFREG);
	for (size_t i = 0; !rc && i < c->nclouds; i++)
		rc = tree_add_child(d, n, cloud_name(c->clouds[i]), S_IFDIR);
	return rc;
}

static const struct kind_ops clouds_ops = {
	.stat = dir_stat_fn, .resolve = clouds_resolve, .fill = clouds_fill,
};

static int cerror_render(struct rgt_ctx *c, const struct node *n,
			 struct buf *b)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < c->nclouds; i++) {
		char err[512];
		cloud_error(c->clouds[i], err, sizeof(err));
		if (!err[0])
			continue;
		rc = buf_appendf(b, "%s: ", cloud_name(c->clouds[i]));
		if (!rc)
			rc = rpath_escape(b, err);
		if (!rc)
			rc = buf_append(b, "\n", 1);
	}
	return rc;
}

static int cerror_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		       double *timeout)
{
	return tree_text_stat(c, n, st, timeout, cerror_render);
}

static int cerror_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		       struct open_out *out)
{
	return tree_text_open(c, n, h, out, cerror_render);
}

static const struct kind_ops cerror_ops = {
	.stat = cerror_stat, .open = cerror_open,
};

/* ---- /<kind>/<id>/ -------------------------------------------------------------- */

static int instance_resolve(struct rgt_ctx *c, struct node *p,
			    const char *name, struct node *t, char *path,
			    size_t pathlen)
{
	const struct rgt_section *sec = fleet_section(c->fleet, (size_t)p->pi);
	if (!fleet_instance_visible(c->fleet, (size_t)p->pi, p->id))
		return -ENOENT;
	for (size_t i = 0; i < NELEM(vfiles); i++) {
		if (!strcmp(name, vfiles[i].name)) {
			t->kind = NK_VFILE;
			t->vf = vfiles[i].vf;
			return 0;
		}
	}
	if (!strcmp(name, "log")) {
		struct platform_caps caps;
		/* No log_path: the platform's log API when it has one. */
		if (!sec->log_path &&
		    !fleet_caps(c->fleet, (size_t)p->pi, &caps) &&
		    caps.log_api) {
			t->kind = NK_PLOG;
			return 0;
		}
		t->kind = NK_LOG;
		t->rpath = sec->log_path ? sec->log_path : (char *)"";
		return 0;
	}
	if (!strcmp(name, "checkpoints")) {
		t->kind = NK_RDIR;
		t->rpath = sec->checkpoint_dir;
		return 0;
	}
	return -ENOENT;
}

static int instance_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	int rc = 0;
	if (!fleet_instance_visible(c->fleet, (size_t)n->pi, n->id))
		return -ENOENT;
	for (size_t i = 0; !rc && i < NELEM(vfiles); i++)
		rc = tree_add_child(d, n, vfiles[i].name, S_IFREG);
	if (!rc)
		rc = tree_add_child(d, n, "log", S_IFREG);
	if (!rc)
		rc = tree_add_child(d, n, "checkpoints", S_IFDIR);
	return rc;
}

static const struct kind_ops instance_ops = {
	.stat = dir_stat_fn, .resolve = instance_resolve,
	.fill = instance_fill,
};

static int vfile_render(struct rgt_ctx *c, const struct node *n,
			struct buf *b)
{
	return fleet_instance_file(c->fleet, (size_t)n->pi, n->id, n->vf, b);
}

static int vfile_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		      double *timeout)
{
	return tree_text_stat(c, n, st, timeout, vfile_render);
}

static int vfile_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		      struct open_out *out)
{
	return tree_text_open(c, n, h, out, vfile_render);
}

static const struct kind_ops vfile_ops = {
	.stat = vfile_stat, .open = vfile_open,
};

/*
 * `log` from the platform's log API (NK_PLOG), rendered like the vfiles.
 * When the API fails the file still reads, as one line giving the reason
 * ("rgtfs: log unavailable: ..."), so `cat log` and `tail log` keep working
 * and say why; a read error would look like a broken mount.
 */
static int plog_render(struct rgt_ctx *c, const struct node *n,
		       struct buf *b)
{
	char err[512];
	int rc = fleet_log(c->fleet, (size_t)n->pi, n->id, b, err,
			   sizeof(err));
	if (!rc || rc == -ENOMEM)
		return rc;
	if (!err[0])
		snprintf(err, sizeof(err), "%s", strerror(-rc));
	buf_reset(b);
	rc = buf_appendf(b, "rgtfs: log unavailable: ");
	if (!rc)
		rc = rpath_escape(b, err);
	if (!rc)
		rc = buf_append(b, "\n", 1);
	return rc;
}

/*
 * Without asking the platform (a streamed log takes seconds, and `ls -l`
 * stats every file): the size of the last read, 0 before any. Reads are
 * direct_io, so they return the whole log whatever the size says, as a
 * /proc file does; `tail` then reads it through.
 */
static int plog_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		     double *timeout)
{
	tree_file_stat(c, n, st, fleet_log_size(c->fleet, (size_t)n->pi, n->id),
		       time(NULL), 4096);
	st->st_blocks = 0;
	*timeout = 0;
	return 0;
}

static int plog_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		     struct open_out *out)
{
	return tree_text_open(c, n, h, out, plog_render);
}

static const struct kind_ops plog_ops = {
	.stat = plog_stat, .open = plog_open,
};

/* ---- remote files: log and checkpoints/ -------------------------------------- */

/* Fresh attributes of a remote file or dir from its parent's listing. */
static int refresh_remote(struct rgt_ctx *c, struct node *n, int max_age)
{
	struct rsrc src[2];
	int ns = sources_of(c, n, src);
	if (!ns)
		return -ENOENT;
	if (n->kind == NK_LOG) {
		struct xfer_attr a;
		int rc = remote_stat(src[0].r, n->rpath, max_age, &a);
		if (!rc)
			node_set_attr(c->nodes, n, &a);
		return rc;
	}
	if (n->kind == NK_RDIR || !strchr(n->rpath, '/'))
		return 0;	/* directories: the listing that found it */
	struct rlisting *l;
	int used;
	int rc = list_any(src, ns, true, max_age, &l, &used);
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

static int rfile_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		      double *timeout)
{
	*timeout = ATTR_TIMEOUT;
	int rc = refresh_remote(c, n, LIST_MAX_AGE);
	if (rc == -ENOENT && n->kind == NK_RFILE)
		return rc;
	struct xfer_attr a = node_attr(c->nodes, n);
	tree_file_stat(c, n, st, a.size, a.mtime, STORE_BLOCK_SIZE);
	if (n->kind == NK_LOG)
		*timeout = 0;
	return 0;
}

/*
 * @n (a checkpoint file) was just opened: if that continues a walk of its
 * directory (fetch_walk_step), queue the small files after it whole, from
 * the same listing and source, so a reader going file by file (rsync,
 * cp -r) finds them fetched or on their way.
 */
static void walk_ahead(struct rgt_ctx *c, const struct node *n,
		       const struct rsrc *src, int ns)
{
	struct rlisting *l;
	int used;
	if (list_any(src, ns, true, LIST_MAX_AGE, &l, &used))
		return;
	const struct rentry *e = rlisting_find(l, n->name);
	const struct rsrc *s = &src[used];
	char dir[PATH_MAX + 300];
	parent_of(s->path, dir + 0, PATH_MAX);
	size_t dl = strlen(dir);
	snprintf(dir + dl, sizeof(dir) - dl, "\n%s\n%s", s->plat, s->id);
	if (!e || !fetch_walk_step(c->fetcher, dir, (size_t)(e - l->v))) {
		rlisting_free(l);
		return;
	}
	/* Each sibling's source path comes from sources_of(), as its own
	 * open would compute it: the same identity, the same blocks. */
	char pdir[PATH_MAX];
	parent_of(n->rpath, pdir, sizeof(pdir));
	int queued = 0;
	size_t from = (size_t)(e - l->v) + 1;
	for (size_t i = from; i < l->n && i < from + 4 * FETCH_WALK_AHEAD &&
			      queued < FETCH_WALK_AHEAD; i++) {
		const struct rentry *x = &l->v[i];
		if (!S_ISREG(x->attr.mode) || !x->attr.size ||
		    x->attr.size > FETCH_WALK_MAX_SIZE)
			continue;
		char *p = rpath_join_dup(pdir, x->name);
		if (!p)
			break;
		struct node sib = { .name = x->name, .kind = NK_RFILE,
				    .pi = n->pi, .id = n->id, .rpath = p,
				    .cloud = n->cloud };
		struct rsrc ss[2];
		int k = sources_of(c, &sib, ss);
		const struct rsrc *t = NULL;
		for (int j = 0; j < k; j++)
			if (ss[j].r == s->r && ss[j].cloud == s->cloud)
				t = &ss[j];
		struct fetch_file ff;
		if (t && !fetch_file_init(&ff, t->r, t->plat, t->id, t->path,
					  x->attr.size, x->attr.mtime,
					  x->attr.etag)) {
			fetch_prefetch_whole(c->fetcher, &ff);
			fetch_file_cleanup(&ff);
			queued++;
		}
		free(p);
	}
	rlisting_free(l);
}

/*
 * The version of @n the tree last listed, as a fetch_file, and the source
 * its bytes come from (*used): what an open reads and what its xattrs
 * describe are the same one.
 */
static int rfile_identity(struct rgt_ctx *c, struct node *n,
			  const struct rsrc *src, int ns,
			  struct fetch_file *ff, const struct rsrc **used)
{
	struct xfer_attr a = node_attr(c->nodes, n);
	/* the bytes come from where this version was listed */
	const struct rsrc *s = source_for(src, ns, &a);
	*used = s;
	return fetch_file_init(ff, s->r, s->plat, s->id,
			       *s->path ? s->path : "/dev/null", a.size,
			       a.mtime, a.etag);
}

static int rfile_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		      struct open_out *out)
{
	struct rsrc src[2];
	int ns = sources_of(c, n, src);
	int rc;
	bool listed = false;
	h->kind = FH_REMOTE;
	fetch_stream_init(&h->stream);
	if (!ns)
		return -ENOENT;
	if (n->kind == NK_LOG && !*n->rpath) {
		/* No log_path configured: an empty log. */
		struct xfer_attr empty = { 0 };
		node_set_attr(c->nodes, n, &empty);
	} else {
		/* The log grows: always ask. Checkpoints: reuse a listing
		 * that is at most LIST_MAX_AGE old. */
		rc = refresh_remote(c, n, n->kind == NK_LOG ? 0 : LIST_MAX_AGE);
		listed = !rc;
		if (rc && rc != -ENOENT && rc != -EACCES)
			rc = 0;	/* unreachable: last known attrs */
		if (rc == -ENOENT && n->kind == NK_LOG) {
			struct xfer_attr empty = { 0 };
			node_set_attr(c->nodes, n, &empty);
			rc = 0;
		}
		if (rc)
			return rc;
	}
	const struct rsrc *s;
	rc = rfile_identity(c, n, src, ns, &h->ff, &s);
	if (rc)
		return rc;
	if (n->kind == NK_LOG)
		out->direct_io = true;
	else
		out->keep_cache = node_same_identity(c->nodes, n, h->ff.size,
						     h->ff.mtime, h->ff.etag);
	/* only from a listing just served: never a second timeout */
	if (listed && n->kind == NK_RFILE)
		walk_ahead(c, n, src, ns);
	return 0;
}

void tree_source_text(struct remote *r, const struct cloud *cl,
		      const char *path, char *out, size_t len)
{
	struct rgt_endpoint ep;
	char esc[XATTR_SOURCE_MAX];

	rpath_escape_s(path, esc, sizeof(esc));
	if (!r)
		snprintf(out, len, "cache");
	else if (cl)
		snprintf(out, len, "s3 %s %s", cloud_where(cl), esc);
	else if (!remote_endpoint(r, &ep))
		snprintf(out, len, strchr(ep.host, ':') ?
			 "sftp sftp://[%s]:%d %s" : "sftp sftp://%s:%d %s",
			 ep.host, ep.port, esc);
	else
		snprintf(out, len, "sftp (no endpoint) %s", esc);
}

/* No network: the version last listed, the store's count of it. */
static int rfile_xattrs(struct rgt_ctx *c, struct node *n,
			struct node_xattrs *x)
{
	struct rsrc src[2];
	int ns = sources_of(c, n, src);
	if (!ns || (n->kind == NK_LOG && !*n->rpath))
		return 0;
	struct fetch_file ff;
	const struct rsrc *s;
	int rc = rfile_identity(c, n, src, ns, &ff, &s);
	if (rc)
		return rc;
	x->has_cached = !store_blocks_bytes(c->store, ff.fid, &x->cached);
	tree_source_text(s->r, s->cloud ? s->cl : NULL, s->path, x->source,
			 sizeof(x->source));
	fetch_file_cleanup(&ff);
	return 0;
}

static const struct kind_ops rfile_ops = {
	.stat = rfile_stat, .open = rfile_open, .xattrs = rfile_xattrs,
};

static int rdir_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		     double *timeout)
{
	tree_dir_stat(c, n, st);
	struct xfer_attr a = node_attr(c->nodes, n);
	if (a.mtime)
		st->st_mtime = st->st_ctime = a.mtime;
	return 0;
}

static int rdir_resolve(struct rgt_ctx *c, struct node *p, const char *name,
			struct node *t, char *path, size_t pathlen)
{
	struct rsrc src[2];
	int ns = sources_of(c, p, src), used;
	struct rlisting *l;
	if (!ns)
		return -ENOENT;
	int rc = rpath_join(path, pathlen, p->rpath, name);
	if (rc)
		return rc;
	rc = list_any(src, ns, false, LIST_MAX_AGE, &l, &used);
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

static int rdir_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	struct rsrc src[2];
	int ns = sources_of(c, n, src), used;
	struct rlisting *l;
	if (!ns)
		return -ENOENT;
	int rc = list_any(src, ns, false, LIST_MAX_AGE, &l, &used);
	if (rc == -ENOENT && !n->cloud &&
	    !strcmp(n->rpath,
		    fleet_section(c->fleet, (size_t)n->pi)->checkpoint_dir))
		return 0;	/* no checkpoint_dir yet: empty */
	if (rc == -ENOENT && n->cloud && !strcmp(n->rpath, "/"))
		return 0;	/* an empty bucket */
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < l->n; i++)
		rc = tree_add_child(d, n, l->v[i].name,
				    S_ISDIR(l->v[i].attr.mode) ? S_IFDIR :
								 S_IFREG);
	rlisting_free(l);
	return rc;
}

static const struct kind_ops rdir_ops = {
	.stat = rdir_stat, .resolve = rdir_resolve, .fill = rdir_fill,
};

/* ---- what the fleet view shows of checkpoints/ ---------------------------------- */

#define CKPT_SUM_DIRS 4096	/* listings one instance's sum reads, at most */

/* Sum the listed files under @root in @s's namespace (see tree.h). */
static int sum_listed(struct rgt_ctx *c, const struct rsrc *s,
		      uint64_t *total, uint64_t *cached)
{
	char **todo = malloc(CKPT_SUM_DIRS * sizeof(*todo));
	size_t ntodo = 0, seen = 0;
	int rc = 0;
	if (!todo || !(todo[0] = strdup(s->path))) {
		free(todo);
		return -ENOMEM;
	}
	ntodo = seen = 1;
	*total = *cached = 0;
	while (ntodo) {
		char *dir = todo[--ntodo];
		struct rlisting *l;
		int lrc = remote_list_cached(s->r, dir, &l);
		if (lrc) {
			/* checkpoints/ itself: nothing known; below it: that
			 * directory was never opened, so it adds nothing */
			if (seen == 1)
				rc = -ENOENT;
			free(dir);
			continue;
		}
		for (size_t i = 0; !rc && i < l->n; i++) {
			const struct rentry *e = &l->v[i];
			char *p = rpath_join_dup(dir, e->name);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			if (S_ISDIR(e->attr.mode) && seen < CKPT_SUM_DIRS) {
				todo[ntodo++] = p;
				seen++;
				continue;
			}
			if (S_ISREG(e->attr.mode)) {
				uint8_t fid[STORE_FID_LEN];
				uint64_t have = 0;
				fetch_file_id(fid, s->plat, s->id, p,
					      e->attr.size, e->attr.mtime,
					      e->attr.etag);
				*total += e->attr.size;
				if (!store_blocks_bytes(c->store, fid, &have))
					*cached += have < e->attr.size ?
							   have :
							   e->attr.size;
			}
			free(p);
		}
		rlisting_free(l);
		free(dir);
		if (rc)
			break;
	}
	while (ntodo)
		free(todo[--ntodo]);
	free(todo);
	return rc;
}

int tree_checkpoint_bytes(struct rgt_ctx *c, size_t pi, const char *id,
			  uint64_t *total, uint64_t *cached)
{
	const struct rgt_section *sec = fleet_section(c->fleet, pi);
	struct node root = { .kind = NK_RDIR, .pi = (int)pi, .id = (char *)id,
			     .rpath = sec->checkpoint_dir };
	struct rsrc src[2];
	int ns = sources_of(c, &root, src);
	for (int i = 0; i < ns; i++) {
		int rc = sum_listed(c, &src[i], total, cached);
		if (rc != -ENOENT)
			return rc;
	}
	return -ENOENT;
}

/* ---- the table ---------------------------------------------------------------- */

static const struct kind_ops *const kinds[] = {
	[NK_ROOT] = &root_ops,
	[NK_PLATFORM] = &platform_ops,
	[NK_ARCHIVE] = &tree_archive_root,
	[NK_INSTANCE] = &instance_ops,
	[NK_VFILE] = &vfile_ops,
	[NK_PERROR] = &perror_ops,
	[NK_LOG] = &rfile_ops,
	[NK_RDIR] = &rdir_ops,
	[NK_RFILE] = &rfile_ops,
	[NK_APLAT] = &tree_archive_plat,
	[NK_AINST] = &tree_archive_inst,
	[NK_AVFILE] = &tree_archive_vfile,
	[NK_ALOG] = &tree_archive_log,
	[NK_ADIR] = &tree_archive_dir,
	[NK_AFILE] = &tree_archive_file,
	[NK_PLOG] = &plog_ops,
	[NK_CLOUDS] = &clouds_ops,
	[NK_CERROR] = &cerror_ops,
	[NK_FLEET] = &fleetview_fleet,
	[NK_RGTDIR] = &fleetview_dir,
	[NK_RGTFILE] = &fleetview_rfile,
};

static const struct kind_ops none_ops;

const struct kind_ops *tree_kind(enum node_kind k)
{
	return (unsigned)k < NELEM(kinds) && kinds[k] ? kinds[k] : &none_ops;
}
