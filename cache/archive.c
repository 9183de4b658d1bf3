/*
 * archive.c - archive records (see archive.h), JSON in the store.
 */
#include "archive.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "log.h"
#include "rpath.h"
#include "store.h"

static size_t key_of(char *buf, size_t len, const char *kind,
		     const char *plat, const char *id)
{
	int n = snprintf(buf, len, "%s%c%s%c%s", kind, 0, plat, 0, id);
	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

static size_t rec_key(char *buf, size_t len, const char *plat,
		      const char *id)
{
	return key_of(buf, len, "arch", plat, id);
}

void archive_free(struct archive *a)
{
	if (!a)
		return;
	free(a->platform);
	free(a->id);
	free(a->root);
	free(a->status_msg);
	free(a->info);
	free(a->ssh);
	free(a->report);
	free(a->manifest);
	free(a->verified);
	free(a->log_path);
	free(a->log_text);
	free(a->src_cloud);
	for (size_t i = 0; i < a->nfiles; i++) {
		free(a->files[i].path);
		free(a->files[i].src);
	}
	free(a->files);
	archive_names_free(a->dirs, a->ndirs);
	free(a);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

const char *archive_phase_name(enum archive_phase ph)
{
	static const char *const names[] = {
		"recorded", "destroy_requested", "destroy_accepted",
		"destroy_unknown",
	};
	return (unsigned)ph <= ARCH_DESTROY_UNKNOWN ? names[ph] : "recorded";
}

/*
 * "NAME" or "NAME VERBS" (see archive_set_progress); anything else is
 * RECORDED, which is evidence of nothing. Pure.
 */
int archive_phase_parse(const char *s, size_t len, enum archive_phase *ph,
			unsigned *verbs)
{
	*ph = ARCH_RECORDED;
	*verbs = 0;
	size_t nl = 0;
	while (nl < len && s[nl] != ' ')
		nl++;
	unsigned n = 0;
	if (nl < len) {
		if (nl + 1 == len || len - nl - 1 > 3)
			return -EINVAL;
		for (size_t i = nl + 1; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			n = n * 10 + (unsigned)(s[i] - '0');
		}
	}
	for (int p = ARCH_RECORDED; p <= ARCH_DESTROY_UNKNOWN; p++) {
		const char *name = archive_phase_name(p);
		if (strlen(name) == nl && !memcmp(s, name, nl)) {
			*ph = p;
			*verbs = n;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * A name as JSON: a string when it is UTF-8 (all JSON can hold), else
 * {"hex": "<its bytes>"}, so every name survives byte for byte. NULL only
 * when out of memory: callers must not drop the entry.
 */
static json_t *name_json(const char *s)
{
	if (rpath_utf8_valid(s))
		return json_string(s);
	char *hex = rpath_hex_encode(s);
	json_t *o = hex ? json_pack("{s:s}", "hex", hex) : NULL;
	free(hex);
	return o;
}

/* The inverse; NULL if @v is neither form. */
static char *name_from_json(json_t *v)
{
	if (json_is_string(v))
		return strdup(json_string_value(v));
	const char *hex = json_string_value(json_object_get(v, "hex"));
	return hex ? rpath_hex_decode(hex) : NULL;
}

static int save_as(struct store *st, const struct archive *a,
		   const char *kind);

int archive_save(struct store *st, const struct archive *a)
{
	return save_as(st, a, "arch");
}

/*
 * The journal's phase lives in its own small record, "tdph\0PLAT\0ID", so
 * that moving to DESTROY_REQUESTED just before the destroy call is one
 * tiny synced write, and the eviction pin rule can read it cheaply. A
 * journal without one (a crash between the two writes) is RECORDED: not
 * evidence of anything.
 */
int archive_set_phase(struct store *st, const char *plat, const char *id,
		      enum archive_phase ph)
{
	return archive_set_progress(st, plat, id, ph, 0);
}

int archive_set_progress(struct store *st, const char *plat, const char *id,
			 enum archive_phase ph, unsigned verbs)
{
	char k[512], v[48];
	size_t klen = key_of(k, sizeof(k), "tdph", plat, id);
	if (verbs > 999)
		return -EINVAL;
	int vl = verbs ? snprintf(v, sizeof(v), "%s %u",
				  archive_phase_name(ph), verbs) :
			 snprintf(v, sizeof(v), "%s", archive_phase_name(ph));
	int rc = klen ? store_meta_put(st, k, klen, v, (size_t)vl) :
			-ENAMETOOLONG;
	return rc ? rc : store_sync(st);
}

int archive_get_phase(struct store *st, const char *plat, const char *id,
		      enum archive_phase *ph)
{
	unsigned verbs;
	return archive_get_progress(st, plat, id, ph, &verbs);
}

int archive_get_progress(struct store *st, const char *plat, const char *id,
			 enum archive_phase *ph, unsigned *verbs)
{
	char k[512], tk[512];
	size_t klen = key_of(k, sizeof(k), "tdph", plat, id);
	size_t tklen = key_of(tk, sizeof(tk), "td", plat, id);
	void *v;
	size_t vl;
	if (!klen || !tklen)
		return -ENOENT;
	*ph = ARCH_RECORDED;
	*verbs = 0;
	int rc = store_meta_get(st, tk, tklen, &v, &vl);
	if (rc == -ENOENT)
		return rc;	/* no journal */
	if (rc) {
		/* A journal that cannot be read could be past its destroy
		 * call: pinned, never trusted, never dropped (fail closed). */
		*ph = ARCH_DESTROY_UNKNOWN;
		return 0;
	}
	free(v);
	rc = store_meta_get(st, k, klen, &v, &vl);
	if (rc == -ENOENT)
		return 0;	/* crashed between the two writes: RECORDED */
	if (rc || archive_phase_parse(v, vl, ph, verbs)) {
		rgt_log(RGT_WARN, "%s/%s: unreadable teardown phase record; "
			"taken as \"destroy_unknown\" (the copy stays pinned)",
			plat, id);
		*ph = ARCH_DESTROY_UNKNOWN;
		*verbs = 0;
	}
	if (!rc)
		free(v);
	return 0;
}

int archive_save_pending(struct store *st, const struct archive *a)
{
	/* The phase first: a crash between the two writes then leaves the
	 * new phase with the old journal (or none), never an old phase past
	 * RECORDED paired with a new, unproven journal. */
	int rc = archive_set_phase(st, a->platform, a->id, a->phase);
	return rc ? rc : save_as(st, a, "td");
}

/* Append @v to @arr (jansson takes @v even on failure); false if lost. */
static bool append(json_t *arr, json_t *v)
{
	return v && !json_array_append_new(arr, v);
}

static json_t *encode(const struct archive *a)
{
	json_t *files = json_array(), *dirs = json_array();
	bool ok = files && dirs;
	for (size_t i = 0; ok && i < a->nfiles; i++) {
		json_t *e = json_pack("{s:o,s:I,s:I,s:s}", "path",
				      name_json(a->files[i].path), "bytes",
				      (json_int_t)a->files[i].size, "mtime",
				      (json_int_t)a->files[i].mtime, "sha256",
				      a->files[i].sha256);
		if (e && a->files[i].src) {
			json_t *src = name_json(a->files[i].src);
			if (!src || json_object_set_new(e, "src", src) ||
			    json_object_set_new(e, "etag",
						json_string(a->files[i].etag))) {
				json_decref(e);
				e = NULL;
			}
		}
		ok = append(files, e);
	}
	for (size_t i = 0; ok && i < a->ndirs; i++)
		ok = append(dirs, name_json(a->dirs[i]));
	/* Every entry or none: a record that lost one would still look
	 * whole (the manifest's totals would say otherwise). */
	if (!ok || json_array_size(files) != a->nfiles ||
	    json_array_size(dirs) != a->ndirs) {
		json_decref(files);
		json_decref(dirs);
		return NULL;
	}
	json_t *log = a->log_path ?
		json_pack("{s:o,s:I,s:I}", "path", name_json(a->log_path),
			  "bytes", (json_int_t)a->log_size, "mtime",
			  (json_int_t)a->log_mtime) :
		json_null();
	json_t *lt = a->log_text ? name_json(a->log_text) : json_null();
	if (!lt)
		return NULL;
	json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
			 "platform", a->platform, "id", a->id, "root",
			 name_json(a->root), "status_msg",
			 str_or_null(a->status_msg), "info",
			 str_or_null(a->info), "ssh", str_or_null(a->ssh),
			 "report", str_or_null(a->report), "manifest",
			 str_or_null(a->manifest), "verified",
			 str_or_null(a->verified), "log", log, "log_text", lt,
			 "files", files, "dirs", dirs);
	if (o && a->src_cloud &&
	    json_object_set_new(o, "src_cloud", json_string(a->src_cloud))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int save_as(struct store *st, const struct archive *a,
		   const char *kind)
{
	char *text = archive_record_json(a);
	if (!text)
		return -ENOMEM;
	char k[512];
	size_t klen = key_of(k, sizeof(k), kind, a->platform, a->id);
	int rc = klen ? store_meta_put(st, k, klen, text, strlen(text)) :
			-ENAMETOOLONG;
	free(text);
	if (!rc)
		rc = store_sync(st);
	return rc;
}

static char *dup_or_null(json_t *v)
{
	const char *s = json_string_value(v);
	return s ? strdup(s) : NULL;
}

static int cmp_file(const void *x, const void *y)
{
	return strcmp(((const struct archive_file *)x)->path,
		      ((const struct archive_file *)y)->path);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int load_as(struct store *st, const char *kind, const char *plat,
		   const char *id, struct archive **out);

int archive_load(struct store *st, const char *plat, const char *id,
		 struct archive **out)
{
	return load_as(st, "arch", plat, id, out);
}

int archive_load_pending(struct store *st, const char *plat, const char *id,
			 struct archive **out)
{
	int rc = load_as(st, "td", plat, id, out);
	enum archive_phase ph = ARCH_RECORDED;
	if (!rc && !archive_get_phase(st, plat, id, &ph))
		(*out)->phase = ph;
	return rc;
}

int archive_delete_pending(struct store *st, const char *plat, const char *id)
{
	char k[512], pk[512];
	size_t klen = key_of(k, sizeof(k), "td", plat, id);
	size_t pklen = key_of(pk, sizeof(pk), "tdph", plat, id);
	if (!klen || !pklen)
		return -ENAMETOOLONG;
	/* the record first: a phase without a journal means nothing */
	int rc = store_meta_del(st, k, klen);
	if (!rc || rc == -ENOENT)
		rc = store_meta_del(st, pk, pklen);
	if (rc == -ENOENT)
		rc = 0;
	return rc ? rc : store_sync(st);
}

/* Decode record @o into @a; -EIO if any entry is malformed (an archive
 * that silently lost a file is worse than one that says it is broken). */
static int decode(json_t *o, struct archive *a)
{
	a->root = name_from_json(json_object_get(o, "root"));
	a->status_msg = dup_or_null(json_object_get(o, "status_msg"));
	a->info = dup_or_null(json_object_get(o, "info"));
	a->ssh = dup_or_null(json_object_get(o, "ssh"));
	a->report = dup_or_null(json_object_get(o, "report"));
	a->manifest = dup_or_null(json_object_get(o, "manifest"));
	a->verified = dup_or_null(json_object_get(o, "verified"));
	a->src_cloud = dup_or_null(json_object_get(o, "src_cloud"));
	json_t *lt = json_object_get(o, "log_text");
	if (lt && !json_is_null(lt) && !(a->log_text = name_from_json(lt)))
		return -EIO;
	json_t *log = json_object_get(o, "log");
	if (json_is_object(log)) {
		a->log_path = name_from_json(json_object_get(log, "path"));
		if (!a->log_path)
			return -EIO;
		a->log_size = (uint64_t)json_integer_value(
			json_object_get(log, "bytes"));
		a->log_mtime = json_integer_value(json_object_get(log, "mtime"));
	}
	if (!a->root)
		return -EIO;
	json_t *files = json_object_get(o, "files");
	size_t n = json_array_size(files), i;
	a->files = calloc(n ? n : 1, sizeof(*a->files));
	if (!a->files)
		return -ENOMEM;
	json_t *f;
	json_array_foreach(files, i, f) {
		const char *h = json_string_value(json_object_get(f, "sha256"));
		json_t *b = json_object_get(f, "bytes");
		json_t *m = json_object_get(f, "mtime");
		struct archive_file *af = &a->files[a->nfiles];
		if (!h || strlen(h) != 64 || !json_is_integer(b) ||
		    json_integer_value(b) < 0 || !json_is_integer(m))
			return -EIO;
		if (!(af->path = name_from_json(json_object_get(f, "path"))))
			return -EIO;
		af->size = (uint64_t)json_integer_value(b);
		af->mtime = json_integer_value(m);
		snprintf(af->sha256, sizeof(af->sha256), "%s", h);
		a->nfiles++;
		json_t *src = json_object_get(f, "src");
		if (src) {
			const char *et = json_string_value(
				json_object_get(f, "etag"));
			if (!(af->src = name_from_json(src)) || !et ||
			    strlen(et) >= sizeof(af->etag))
				return -EIO;
			snprintf(af->etag, sizeof(af->etag), "%s", et);
		}
	}
	json_t *dirs = json_object_get(o, "dirs");
	n = json_array_size(dirs);
	a->dirs = calloc(n ? n : 1, sizeof(*a->dirs));
	if (!a->dirs)
		return -ENOMEM;
	json_array_foreach(dirs, i, f) {
		if (!(a->dirs[a->ndirs] = name_from_json(f)))
			return -EIO;
		a->ndirs++;
	}
	return 0;
}

/*
 * A record from its JSON @text into *out, for @plat/@id; with @own, the
 * record must name itself @plat/@id (a record that travelled through a
 * bucket). Files and dirs sorted, as every lookup expects.
 */
static int parse_record(const char *text, size_t len, const char *plat,
			const char *id, bool own, struct archive **out)
{
	json_error_t je;
	json_t *o = json_loadb(text, len, 0, &je);
	if (!o || (own && !json_is_object(o))) {
		json_decref(o);
		return -EIO;
	}
	if (own) {
		const char *rp =
			json_string_value(json_object_get(o, "platform"));
		const char *ri = json_string_value(json_object_get(o, "id"));
		if (!rp || !ri || strcmp(rp, plat) || strcmp(ri, id)) {
			json_decref(o);
			return -EIO;
		}
	}
	struct archive *a = calloc(1, sizeof(*a));
	if (!a) {
		json_decref(o);
		return -ENOMEM;
	}
	a->platform = strdup(plat);
	a->id = strdup(id);
	int rc = a->platform && a->id ? decode(o, a) : -ENOMEM;
	json_decref(o);
	if (rc) {
		archive_free(a);
		return rc;
	}
	if (a->nfiles)
		qsort(a->files, a->nfiles, sizeof(*a->files), cmp_file);
	if (a->ndirs)
		qsort(a->dirs, a->ndirs, sizeof(*a->dirs), cmp_str);
	*out = a;
	return 0;
}

static int load_as(struct store *st, const char *kind, const char *plat,
		   const char *id, struct archive **out)
{
	char k[512];
	size_t klen = key_of(k, sizeof(k), kind, plat, id);
	void *v;
	size_t vl;
	if (!klen)
		return -ENOENT;
	int rc = store_meta_get(st, k, klen, &v, &vl);
	if (rc)
		return rc;
	rc = parse_record(v, vl, plat, id, false, out);
	free(v);
	return rc;
}

int archive_file_path(const struct archive *a, const struct archive_file *f,
		      char *out, size_t len)
{
	return rpath_join(out, len, a->root, f->path);
}

int archive_file_open(const struct archive *a, const struct archive_file *f,
		      struct fetch_file *ff)
{
	/* Bytes from a bucket are keyed by the object's path in it and its
	 * ETag, owned by the instance (so its pins keep them), exactly as
	 * the pull and checkpoints/ fetched them; a file with a src but no
	 * bucket named is broken. */
	if (f->src) {
		if (!a->src_cloud)
			return -EIO;
		/* An archive read from a bucket (src_remote: another mount
		 * pushed it) is the bucket's to keep: its blocks are owned by
		 * ("cloud", NAME) and evictable like MOUNT/cloud reads. */
		if (a->src_remote)
			return fetch_file_init(ff, a->src_remote, "cloud",
					       a->src_cloud, f->src, f->size,
					       f->mtime, f->etag);
		return fetch_file_init(ff, NULL, a->platform, a->id, f->src,
				       f->size, f->mtime, f->etag);
	}
	char path[8192];
	int rc = archive_file_path(a, f, path, sizeof(path));
	return rc ? rc : fetch_file_init(ff, NULL, a->platform, a->id, path,
					 f->size, f->mtime, NULL);
}

int archive_log_open(const struct archive *a, struct fetch_file *ff)
{
	if (!a->log_path)
		return -ENOENT;
	return fetch_file_init(ff, NULL, a->platform, a->id, a->log_path,
			       a->log_size, a->log_mtime, NULL);
}

bool archive_exists(struct store *st, const char *plat, const char *id)
{
	char k[512];
	size_t klen = rec_key(k, sizeof(k), plat, id);
	void *v;
	size_t vl;
	if (!klen || store_meta_get(st, k, klen, &v, &vl))
		return false;
	free(v);
	return true;
}

int archive_delete(struct store *st, const char *plat, const char *id)
{
	struct archive *a;
	int rc = archive_load(st, plat, id, &a);
	if (rc)
		return rc;
	struct fetch_file ff;
	for (size_t i = 0; i < a->nfiles && !rc; i++) {
		rc = archive_file_open(a, &a->files[i], &ff);
		if (!rc) {
			rc = store_blocks_delete(st, ff.fid);
			fetch_file_cleanup(&ff);
		}
	}
	if (!rc && a->log_path && !(rc = archive_log_open(a, &ff))) {
		rc = store_blocks_delete(st, ff.fid);
		fetch_file_cleanup(&ff);
	}
	archive_free(a);
	if (rc)
		return rc;
	char k[512];
	size_t klen = rec_key(k, sizeof(k), plat, id);
	rc = store_meta_del(st, k, klen);
	if (!rc)
		rc = store_sync(st);
	return rc;
}

struct names {
	char **v;
	size_t n, cap;
	size_t skip;		/* key prefix length */
	bool plats;		/* collect PLAT (unique) instead of ID */
};

static int names_fn(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct names *c = arg;
	const char *p = (const char *)key + c->skip;
	size_t len = klen - c->skip;
	if (c->plats)
		len = strnlen(p, len);
	char *s = strndup(p, len);
	if (!s)
		return -ENOMEM;
	if (c->n && !strcmp(c->v[c->n - 1], s)) {
		free(s);	/* keys are sorted: duplicates are adjacent */
		return 0;
	}
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		char **nv = realloc(c->v, nc * sizeof(*nv));
		if (!nv) {
			free(s);
			return -ENOMEM;
		}
		c->v = nv;
		c->cap = nc;
	}
	c->v[c->n++] = s;
	return 0;
}

int archive_platforms(struct store *st, char ***out, size_t *n)
{
	struct names c = { .skip = 5, .plats = true };
	int rc = store_meta_scan(st, "arch", 5, names_fn, &c);
	if (rc) {
		archive_names_free(c.v, c.n);
		return rc;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}

int archive_ids(struct store *st, const char *plat, char ***out, size_t *n)
{
	char k[256];
	int kl = snprintf(k, sizeof(k), "arch%c%s%c", 0, plat, 0);
	struct names c = { .skip = (size_t)kl };
	int rc = store_meta_scan(st, k, kl, names_fn, &c);
	if (rc) {
		archive_names_free(c.v, c.n);
		return rc;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}

void archive_names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

const struct archive_file *archive_file_at(const struct archive *a,
					   const char *rel)
{
	struct archive_file key = { .path = (char *)rel };
	if (!a->nfiles)
		return NULL;
	return bsearch(&key, a->files, a->nfiles, sizeof(*a->files),
		       cmp_file);
}

bool archive_dir_at(const struct archive *a, const char *rel)
{
	if (!*rel)
		return true;
	if (!a->ndirs)
		return false;
	return bsearch(&rel, a->dirs, a->ndirs, sizeof(*a->dirs), cmp_str) !=
	       NULL;
}

/* The child name of @path under dir @rel, or NULL if not a direct child. */
static const char *child_of(const char *rel, const char *path)
{
	size_t rl = strlen(rel);
	if (rl) {
		if (strncmp(path, rel, rl) || path[rl] != '/')
			return NULL;
		path += rl + 1;
	}
	return strchr(path, '/') ? NULL : path;
}

int archive_children(const struct archive *a, const char *rel,
		     int (*fn)(void *arg, const char *name, bool is_dir,
			       const struct archive_file *f),
		     void *arg)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < a->ndirs; i++) {
		const char *c = child_of(rel, a->dirs[i]);
		if (c && *c)
			rc = fn(arg, c, true, NULL);
	}
	for (size_t i = 0; !rc && i < a->nfiles; i++) {
		const char *c = child_of(rel, a->files[i].path);
		if (c && *c)
			rc = fn(arg, c, false, &a->files[i]);
	}
	return rc;
}

char *archive_record_json(const struct archive *a)
{
	json_t *o = encode(a);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

int archive_from_json(const char *text, size_t len, const char *plat,
		      const char *id, struct archive **out)
{
	return parse_record(text, len, plat, id, true, out);
}
