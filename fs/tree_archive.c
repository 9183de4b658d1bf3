/*
 * tree_archive.c - the archive kinds of the tree (see tree.h):
 *
 *   archive/                      one directory per platform with archives
 *   archive/<kind>/               one per archived instance
 *   archive/<kind>/<id>/          status status_msg info.json ssh teardown
 *                                 [PULL_MANIFEST.json PULL_VERIFIED.json]
 *                                 .error (a read that failed for good)
 *                                 [log] checkpoints/
 *   archive/<kind>/<id>/checkpoints/...   the archived files (rpath:
 *                                 relative to the record's root)
 *
 * A local archive is served from the store alone: no node of it has a
 * remote. Bytes go through archive_file_open(), the lookup the teardown's
 * serve check read every file through before the destroy.
 *
 * Archives other mounts pushed to a configured bucket (archive_to,
 * archive_push.h) are listed here too, a local archive winning on a name
 * clash. Their records come from the bucket, their files read lazily
 * from it through the same archive_file_open() (src, etag, src_remote:
 * blocks keyed by the object's ETag, kept in the store). What is known of
 * the buckets is cached in this file (REMOTE_AGE): the list of archives
 * of each bucket, and each remote archive once loaded, for the life of
 * the mount (an archive never changes; a record that failed to load is
 * tried again after REMOTE_AGE). Nothing here deletes in a bucket: rmdir
 * of a remote archive is EROFS (tree_archive_is_remote()).
 */
#include "tree.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive.h"
#include "archive_push.h"
#include "cloud.h"
#include "log.h"
#include "ops.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum { AV_STATUS, AV_STATUS_MSG, AV_INFO, AV_SSH, AV_TEARDOWN, AV_MANIFEST,
       AV_VERIFIED, AV_PLOG, AV_ERROR };

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
	{ ".error", AV_ERROR },
};

static int dir_stat_fn(struct rgt_ctx *c, struct node *n, struct stat *st,
		       double *timeout)
{
	tree_dir_stat(c, n, st);
	return 0;
}

/* ---- archives in buckets --------------------------------------------------------- */

#define REMOTE_AGE 30	/* seconds a bucket's list of archives is reused */

struct rlist {
	time_t at;		/* 0: never listed */
	struct archive_ref *v;
	size_t n;
};

struct rloaded {
	struct rloaded *next;
	char *plat, *id;
	struct archive *a;	/* NULL: the last load failed (rc, at) */
	int rc;
	time_t at;
};

/* One mount per process: the cache is the process's. Guarded by rmu. */
static pthread_mutex_t rmu = PTHREAD_MUTEX_INITIALIZER;
static struct rlist *rlists;	/* one per c->clouds[i] */
static size_t nrlists;
static struct rloaded *rloaded;

static time_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1;	/* never 0 */
}

/* Bring the archive list of bucket @ci up to date (caller holds rmu;
 * dropped while the bucket is listed). */
static void refresh_list(struct rgt_ctx *c, size_t ci)
{
	if (!rlists) {
		rlists = calloc(c->nclouds, sizeof(*rlists));
		if (!rlists)
			return;
		nrlists = c->nclouds;
	}
	if (ci >= nrlists || (rlists[ci].at &&
			      mono_now() - rlists[ci].at < REMOTE_AGE))
		return;
	pthread_mutex_unlock(&rmu);
	struct archive_ref *v = NULL;
	size_t n = 0;
	char err[512];
	int rc = archive_remote_list(c->clouds[ci], REMOTE_AGE, &v, &n, err,
				     sizeof(err));
	pthread_mutex_lock(&rmu);
	if (rc) {
		/* the last list known stays; asked again after REMOTE_AGE */
		rgt_log(RGT_DEBUG, "archives in [cloud:%s]: %s",
			cloud_name(c->clouds[ci]), err);
		rlists[ci].at = mono_now();
		return;
	}
	archive_refs_free(rlists[ci].v, rlists[ci].n);
	rlists[ci].v = v;
	rlists[ci].n = n;
	rlists[ci].at = mono_now();
}

/* The first bucket listing @plat/@id (@id NULL: any id of @plat); -1. */
static int remote_find(struct rgt_ctx *c, const char *plat, const char *id)
{
	int found = -1;
	pthread_mutex_lock(&rmu);
	for (size_t ci = 0; found < 0 && ci < c->nclouds; ci++) {
		refresh_list(c, ci);
		for (size_t i = 0; rlists && found < 0 && i < rlists[ci].n; i++)
			if (!strcmp(rlists[ci].v[i].platform, plat) &&
			    (!id || !strcmp(rlists[ci].v[i].id, id)))
				found = (int)ci;
	}
	pthread_mutex_unlock(&rmu);
	return found;
}

bool tree_archive_is_remote(struct rgt_ctx *c, const char *plat,
			    const char *id)
{
	return remote_find(c, plat, id) >= 0;
}

/* Names from the buckets: platforms (@plat NULL) or ids of @plat. */
static int remote_names(struct rgt_ctx *c, const char *plat, char ***out,
			size_t *nout)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	pthread_mutex_lock(&rmu);
	for (size_t ci = 0; ci < c->nclouds; ci++)
		refresh_list(c, ci);
	for (size_t ci = 0; !rc && rlists && ci < nrlists; ci++) {
		for (size_t i = 0; !rc && i < rlists[ci].n; i++) {
			const struct archive_ref *r = &rlists[ci].v[i];
			if (plat && strcmp(r->platform, plat))
				continue;
			const char *name = plat ? r->id : r->platform;
			bool dup = false;
			for (size_t k = 0; !dup && k < n; k++)
				dup = !strcmp(v[k], name);
			if (dup)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				char **nv = realloc(v, nc * sizeof(*nv));
				if (!nv) {
					rc = -ENOMEM;
					break;
				}
				v = nv;
				cap = nc;
			}
			if (!(v[n] = strdup(name)))
				rc = -ENOMEM;
			else
				n++;
		}
	}
	pthread_mutex_unlock(&rmu);
	if (rc) {
		archive_names_free(v, n);
		return rc;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* The remote archive @plat/@id, loaded once (borrowed for the mount's
 * life). */
static int remote_get(struct rgt_ctx *c, const char *plat, const char *id,
		      struct archive **out)
{
	int ci = remote_find(c, plat, id);
	if (ci < 0)
		return -ENOENT;
	pthread_mutex_lock(&rmu);
	struct rloaded *e = rloaded;
	while (e && (strcmp(e->plat, plat) || strcmp(e->id, id)))
		e = e->next;
	if (e && (e->a || mono_now() - e->at < REMOTE_AGE)) {
		int rc = e->a ? 0 : e->rc;
		*out = e->a;
		pthread_mutex_unlock(&rmu);
		return rc;
	}
	pthread_mutex_unlock(&rmu);

	struct cloud *cl = c->clouds[ci];
	struct archive *a = NULL;
	size_t refused = 0;
	char err[1024] = "";
	int rc = archive_remote_load(cl, c->store, plat, id, REMOTE_AGE, &a,
				     &refused, err, sizeof(err));
	if (rc)
		rgt_log(RGT_WARN, "archive %s/%s in [cloud:%s] cannot be read: "
			"%s", plat, id, cloud_name(cl), err[0] ? err :
			strerror(-rc));

	pthread_mutex_lock(&rmu);
	e = rloaded;
	while (e && (strcmp(e->plat, plat) || strcmp(e->id, id)))
		e = e->next;
	if (e && e->a) {
		/* another thread loaded it meanwhile: that copy is the one */
		archive_free(a);
		*out = e->a;
		pthread_mutex_unlock(&rmu);
		return 0;
	}
	if (!e && (e = calloc(1, sizeof(*e)))) {
		e->plat = strdup(plat);
		e->id = strdup(id);
		if (!e->plat || !e->id) {
			free(e->plat);
			free(e->id);
			free(e);
			e = NULL;
		} else {
			e->next = rloaded;
			rloaded = e;
		}
	}
	if (e) {
		e->a = rc ? NULL : a;
		e->rc = rc;
		e->at = mono_now();
	}
	pthread_mutex_unlock(&rmu);
	if (!e && !rc) {
		archive_free(a);
		return -ENOMEM;
	}
	*out = rc ? NULL : a;
	return rc ? (rc == -ENOENT ? -ENOENT : -EIO) : 0;
}

/*
 * The archive @plat/@id: the local one (owned: released by aput), else
 * the one in a bucket (borrowed). Local first, so a local archive wins.
 */
struct aref {
	struct archive *a;
	bool owned;
};

static int aget(struct rgt_ctx *c, const char *plat, const char *id,
		struct aref *r)
{
	r->a = NULL;
	r->owned = true;
	int rc = archive_load(c->store, plat, id, &r->a);
	if (rc != -ENOENT || !c->nclouds)
		return rc;
	r->owned = false;
	return remote_get(c, plat, id, &r->a);
}

static void aput(struct aref *r)
{
	if (r->owned)
		archive_free(r->a);
	r->a = NULL;
}

/* Is @name in @v (@n names)? */
static bool has_name(char **v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], name))
			return true;
	return false;
}

/* ---- archive/ -------------------------------------------------------------------- */

/* Add the bucket's names (platforms, or ids of @plat) not in @local. */
static int add_remote(struct rgt_ctx *c, struct node *n, struct dirh *d,
		      const char *plat, char **local, size_t nlocal)
{
	char **v;
	size_t k;
	int rc = remote_names(c, plat, &v, &k);
	if (rc)
		return 0;	/* the bucket's problem is not the listing's */
	for (size_t i = 0; !rc && i < k; i++)
		if (!has_name(local, nlocal, v[i]))
			rc = tree_add_child(d, n, v[i], S_IFDIR);
	archive_names_free(v, k);
	return rc;
}

static int root_resolve(struct rgt_ctx *c, struct node *p, const char *name,
			struct node *t, char *path, size_t pathlen)
{
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
	if (rc && c->nclouds && remote_find(c, name, NULL) >= 0)
		rc = 0;
	t->kind = NK_APLAT;
	t->plat = (char *)name;
	t->pi = -1;
	return rc;
}

static int root_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	char **v;
	size_t k;
	int rc = archive_platforms(c->store, &v, &k);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < k; i++)
		rc = tree_add_child(d, n, v[i], S_IFDIR);
	if (!rc && c->nclouds)
		rc = add_remote(c, n, d, NULL, v, k);
	archive_names_free(v, k);
	return rc;
}

const struct kind_ops tree_archive_root = {
	.stat = dir_stat_fn, .resolve = root_resolve, .fill = root_fill,
};

/* ---- archive/<kind>/ ------------------------------------------------------------ */

static int plat_resolve(struct rgt_ctx *c, struct node *p, const char *name,
			struct node *t, char *path, size_t pathlen)
{
	t->plat = p->plat;
	t->id = (char *)name;
	t->pi = -1;
	t->kind = NK_AINST;
	if (archive_exists(c->store, p->plat, name))
		return 0;
	return c->nclouds && remote_find(c, p->plat, name) >= 0 ? 0 : -ENOENT;
}

static int plat_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	char **v;
	size_t k;
	int rc = archive_ids(c->store, n->plat, &v, &k);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < k; i++)
		rc = tree_add_child(d, n, v[i], S_IFDIR);
	if (!rc && c->nclouds)
		rc = add_remote(c, n, d, n->plat, v, k);
	archive_names_free(v, k);
	return rc;
}

const struct kind_ops tree_archive_plat = {
	.stat = dir_stat_fn, .resolve = plat_resolve, .fill = plat_fill,
};

/* ---- archive/<kind>/<id>/ -------------------------------------------------------- */

static int inst_resolve(struct rgt_ctx *c, struct node *p, const char *name,
			struct node *t, char *path, size_t pathlen)
{
	struct aref ar;
	int rc = aget(c, p->plat, p->id, &ar);
	if (rc)
		return rc;
	struct archive *a = ar.a;
	t->plat = p->plat;
	t->id = p->id;
	t->pi = -1;
	rc = -ENOENT;
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
	} else if (!strcmp(name, "log") && a->log_text) {
		/* the platform's log, kept as text */
		t->kind = NK_AVFILE;
		t->vf = AV_PLOG;
		rc = 0;
	}
	if (!strcmp(name, "checkpoints")) {
		t->kind = NK_ADIR;
		t->rpath = (char *)"";
		rc = 0;
	}
	aput(&ar);
	return rc;
}

static int inst_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	struct aref ar;
	int rc = aget(c, n->plat, n->id, &ar);
	if (rc)
		return rc;
	struct archive *a = ar.a;
	for (size_t i = 0; !rc && i < NELEM(avfiles); i++) {
		/* manifests only where there are some */
		if ((avfiles[i].vf == AV_MANIFEST && !a->manifest) ||
		    (avfiles[i].vf == AV_VERIFIED && !a->verified))
			continue;
		rc = tree_add_child(d, n, avfiles[i].name, S_IFREG);
	}
	if (!rc && (a->log_path || a->log_text))
		rc = tree_add_child(d, n, "log", S_IFREG);
	if (!rc)
		rc = tree_add_child(d, n, "checkpoints", S_IFDIR);
	aput(&ar);
	return rc;
}

const struct kind_ops tree_archive_inst = {
	.stat = dir_stat_fn, .resolve = inst_resolve, .fill = inst_fill,
};

static int vfile_render(struct rgt_ctx *c, const struct node *n,
			struct buf *b)
{
	struct aref ar;
	int rc = aget(c, n->plat, n->id, &ar);
	if (rc)
		return rc;
	struct archive *a = ar.a;
	const char *text = NULL;
	switch (n->vf) {
	case AV_STATUS: text = "gone\n"; break;
	case AV_STATUS_MSG: text = a->status_msg; break;
	case AV_INFO: text = a->info; break;
	case AV_SSH: text = a->ssh; break;
	case AV_TEARDOWN: text = a->report; break;
	case AV_MANIFEST: text = a->manifest; break;
	case AV_VERIFIED: text = a->verified; break;
	case AV_PLOG: text = a->log_text; break;
	case AV_ERROR: {
		/* a read of it that failed for good (a block failing its
		 * checksum): the store is all there is */
		char msg[1400];
		if (c->fetcher && fetch_read_problem(c->fetcher, n->plat,
						     n->id, msg, sizeof(msg)))
			rc = buf_appendf(b, "%s\n", msg);
		aput(&ar);
		return rc;
	}
	}
	rc = text ? buf_appendf(b, "%s", text) : 0;
	aput(&ar);
	return rc;
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

const struct kind_ops tree_archive_vfile = {
	.stat = vfile_stat, .open = vfile_open,
};

/* ---- archived bytes: the log snapshot and checkpoints/ --------------------------- */

static int file_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		     double *timeout)
{
	struct aref ar;
	int rc = aget(c, n->plat, n->id, &ar);
	if (rc)
		return rc;
	struct archive *a = ar.a;
	const struct archive_file *f =
		n->kind == NK_AFILE ? archive_file_at(a, n->rpath) : NULL;
	if (n->kind == NK_AFILE && !f)
		rc = -ENOENT;
	else
		tree_file_stat(c, n, st, f ? f->size : a->log_size,
			       f ? f->mtime : a->log_mtime, STORE_BLOCK_SIZE);
	aput(&ar);
	return rc;
}

static int file_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		     struct open_out *out)
{
	struct aref ar;
	h->kind = FH_REMOTE;
	fetch_stream_init(&h->stream);
	int rc = aget(c, n->plat, n->id, &ar);
	if (rc)
		return rc;
	struct archive *a = ar.a;
	/* The archive's own lookup: the same one the teardown's serve check
	 * read every file through. */
	if (n->kind == NK_AFILE) {
		const struct archive_file *f = archive_file_at(a, n->rpath);
		rc = f ? archive_file_open(a, f, &h->ff) : -ENOENT;
	} else {
		rc = archive_log_open(a, &h->ff);
	}
	aput(&ar);
	out->keep_cache = true;	/* an archive never changes */
	return rc;
}

/* The digest the teardown verified, the blocks held, where any missing
 * ones could come from (only a bucket: the box is gone). */
static int file_xattrs(struct rgt_ctx *c, struct node *n,
		       struct node_xattrs *x)
{
	struct aref ar = { NULL, true };
	struct fetch_file ff;
	/* The local record only: a pushed archive's would be a bucket list
	 * and GET (aget), and rsync -X asks for every file. It has none. */
	int rc = archive_load(c->store, n->plat, n->id, &ar.a);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	struct archive *a = ar.a;
	const struct archive_file *f = NULL;
	if (n->kind == NK_AFILE) {
		f = archive_file_at(a, n->rpath);
		rc = f ? archive_file_open(a, f, &ff) : -ENOENT;
	} else if (a->log_path) {
		rc = archive_log_open(a, &ff);
	} else {
		aput(&ar);
		return 0;	/* the platform's log text: no blocks */
	}
	if (!rc) {
		if (f && strlen(f->sha256) == 64)
			memcpy(x->sha256, f->sha256, sizeof(x->sha256));
		x->has_cached = !store_blocks_bytes(c->store, ff.fid,
						    &x->cached);
		tree_source_text(ff.remote,
				 ff.remote ? rgt_cloud(c, a->src_cloud) : NULL,
				 ff.path, x->source, sizeof(x->source));
		fetch_file_cleanup(&ff);
	}
	aput(&ar);
	return rc;
}

const struct kind_ops tree_archive_log = {
	.stat = file_stat, .open = file_open, .xattrs = file_xattrs,
};

const struct kind_ops tree_archive_file = {
	.stat = file_stat, .open = file_open, .xattrs = file_xattrs,
};

static int dir_resolve(struct rgt_ctx *c, struct node *p, const char *name,
		       struct node *t, char *path, size_t pathlen)
{
	struct aref ar;
	int rc = aget(c, p->plat, p->id, &ar);
	if (rc)
		return rc;
	struct archive *a = ar.a;
	t->plat = p->plat;
	t->id = p->id;
	t->pi = -1;
	/* relative names inside the record, joined like the record's own */
	int n = *p->rpath ? snprintf(path, pathlen, "%s/%s", p->rpath, name) :
			    snprintf(path, pathlen, "%s", name);
	if (n < 0 || (size_t)n >= pathlen) {
		rc = -ENAMETOOLONG;
	} else if (archive_file_at(a, path)) {
		t->kind = NK_AFILE;
		t->rpath = path;
	} else if (archive_dir_at(a, path)) {
		t->kind = NK_ADIR;
		t->rpath = path;
	} else {
		rc = -ENOENT;
	}
	aput(&ar);
	return rc;
}

struct adir_arg {
	struct dirh *d;
	const struct node *n;
};

static int adir_fn(void *arg, const char *name, bool is_dir,
		   const struct archive_file *f)
{
	struct adir_arg *a = arg;
	return tree_add_child(a->d, a->n, name, is_dir ? S_IFDIR : S_IFREG);
}

static int dir_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	struct aref ar;
	int rc = aget(c, n->plat, n->id, &ar);
	if (rc)
		return rc;
	struct archive *a = ar.a;
	struct adir_arg aa = { d, n };
	rc = archive_children(a, n->rpath, adir_fn, &aa);
	aput(&ar);
	return rc;
}

const struct kind_ops tree_archive_dir = {
	.stat = dir_stat_fn, .resolve = dir_resolve, .fill = dir_fill,
};
