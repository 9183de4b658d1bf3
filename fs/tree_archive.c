/*
 * tree_archive.c - the archive kinds of the tree (see tree.h):
 *
 *   archive/                      one directory per platform with archives
 *   archive/<kind>/               one per archived instance
 *   archive/<kind>/<id>/          status status_msg info.json ssh teardown
 *                                 [PULL_MANIFEST.json PULL_VERIFIED.json]
 *                                 [log] checkpoints/
 *   archive/<kind>/<id>/checkpoints/...   the archived files (rpath:
 *                                 relative to the record's root)
 *
 * Everything is served from the store alone: no node here has a remote.
 * Bytes go through archive_file_open(), the lookup the teardown's serve
 * check read every file through before the destroy.
 */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "archive.h"
#include "ops.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum { AV_STATUS, AV_STATUS_MSG, AV_INFO, AV_SSH, AV_TEARDOWN, AV_MANIFEST,
       AV_VERIFIED, AV_PLOG };

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

static int dir_stat_fn(struct rgt_ctx *c, struct node *n, struct stat *st,
		       double *timeout)
{
	tree_dir_stat(c, n, st);
	return 0;
}

/* ---- archive/ -------------------------------------------------------------------- */

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
	return archive_exists(c->store, p->plat, name) ? 0 : -ENOENT;
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
	struct archive *a;
	int rc = archive_load(c->store, p->plat, p->id, &a);
	if (rc)
		return rc;
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
	archive_free(a);
	return rc;
}

static int inst_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	struct archive *a;
	int rc = archive_load(c->store, n->plat, n->id, &a);
	if (rc)
		return rc;
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
	archive_free(a);
	return rc;
}

const struct kind_ops tree_archive_inst = {
	.stat = dir_stat_fn, .resolve = inst_resolve, .fill = inst_fill,
};

static int vfile_render(struct rgt_ctx *c, const struct node *n,
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
	case AV_PLOG: text = a->log_text; break;
	}
	rc = text ? buf_appendf(b, "%s", text) : 0;
	archive_free(a);
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
	struct archive *a;
	int rc = archive_load(c->store, n->plat, n->id, &a);
	if (rc)
		return rc;
	const struct archive_file *f =
		n->kind == NK_AFILE ? archive_file_at(a, n->rpath) : NULL;
	if (n->kind == NK_AFILE && !f)
		rc = -ENOENT;
	else
		tree_file_stat(c, n, st, f ? f->size : a->log_size,
			       f ? f->mtime : a->log_mtime, STORE_BLOCK_SIZE);
	archive_free(a);
	return rc;
}

static int file_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		     struct open_out *out)
{
	struct archive *a;
	h->kind = FH_REMOTE;
	fetch_stream_init(&h->stream);
	int rc = archive_load(c->store, n->plat, n->id, &a);
	if (rc)
		return rc;
	/* The archive's own lookup: the same one the teardown's serve check
	 * read every file through. */
	if (n->kind == NK_AFILE) {
		const struct archive_file *f = archive_file_at(a, n->rpath);
		rc = f ? archive_file_open(a, f, &h->ff) : -ENOENT;
	} else {
		rc = archive_log_open(a, &h->ff);
	}
	archive_free(a);
	out->keep_cache = true;	/* an archive never changes */
	return rc;
}

const struct kind_ops tree_archive_log = {
	.stat = file_stat, .open = file_open,
};

const struct kind_ops tree_archive_file = {
	.stat = file_stat, .open = file_open,
};

static int dir_resolve(struct rgt_ctx *c, struct node *p, const char *name,
		       struct node *t, char *path, size_t pathlen)
{
	struct archive *a;
	int rc = archive_load(c->store, p->plat, p->id, &a);
	if (rc)
		return rc;
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
	archive_free(a);
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
	struct archive *a;
	int rc = archive_load(c->store, n->plat, n->id, &a);
	if (rc)
		return rc;
	struct adir_arg aa = { d, n };
	rc = archive_children(a, n->rpath, adir_fn, &aa);
	archive_free(a);
	return rc;
}

const struct kind_ops tree_archive_dir = {
	.stat = dir_stat_fn, .resolve = dir_resolve, .fill = dir_fill,
};
