/*
 * rgtfs-store - look into an rgtfs cache directory, in the spirit of
 * mdb_stat: what is cached, which host keys are pinned, and remove a pin
 * after a box was re-created with a new key (the one change to the cache a
 * user is expected to make by hand).
 *
 *   rgtfs-store [-c CACHEDIR] stat
 *   rgtfs-store [-c CACHEDIR] instances
 *   rgtfs-store [-c CACHEDIR] hostkeys
 *   rgtfs-store [-c CACHEDIR] forget-hostkey PLATFORM/ID
 *   rgtfs-store [-c CACHEDIR] ls
 *   rgtfs-store [-c CACHEDIR] export PLATFORM/ID DIR
 *   rgtfs-store [-c CACHEDIR] verify [PLATFORM/ID]
 *
 * Safe while rgtfs runs: LMDB allows other processes to read and write the
 * same environment.
 *
 * ls: one tab-separated line per instance and per archive the cache holds
 * (a header first, so `column -t` lines it up): name, kind, files, bytes
 * (an archive's full size; "-" for an instance, whose files' sizes on the
 * box the cache does not record), cached bytes, and what eviction makes of
 * it. That last column is the evictor's own view: evict_scan() (the scan a
 * pass makes) with the daemon's pin rule, life_pinned(life_of()), fed the
 * facts the store holds (archive records, teardown journals and their
 * phase, the last known instance records). What only the running daemon
 * knows (an rmdir under way, a file being read) cannot be seen here.
 *
 * export: the files of an archive into a new or empty DIR, each read from
 * the store alone and hashed as it is written, checked against the
 * archive's PULL_MANIFEST.json, then that manifest itself: DIR is then a
 * pulled copy in the layout remote-gpu-trainer's verify_local.py checks.
 * Before anything is written the two file lists must agree both ways
 * (every manifest file in the archive and every archive file in the
 * manifest, as verify checks); a mismatch names the file, exits 1 and
 * leaves DIR as it was.
 * Nothing is overwritten (O_EXCL), names are the archive's own (a name
 * that would leave the checkpoint root is refused), everything is fsynced.
 * On a mismatch it stops at that file (removing only the file it was
 * writing) and exits 1.
 *
 * verify: re-hash archives from the store against their PULL_MANIFEST.json:
 *   OK      PLATFORM/ID/path
 *   FAIL    PLATFORM/ID/path: <why>
 *   MISSING PLATFORM/ID/path: <why>
 * Exit 0 if every file is OK, 1 if any is not or there is no archive to
 * check at all, 2 on a usage error.
 *
 * Every command opens an existing cache only (CACHEDIR/data.mdb): where
 * there is none it says "no cache at CACHEDIR" and exits 1, creating
 * nothing.
 *
 * Names are printed with control characters escaped as rgtfs-verify does,
 * so a name holding a newline or a tab still gives one line (one field).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "archive_push.h"
#include "config.h"
#include "evict.h"
#include "fetch.h"
#include "life.h"
#include "manifest.h"
#include "rpath.h"
#include "store.h"
#include "xfer.h"

/* "kind\0PLAT\0ID" (no terminating NUL in the store) -> "PLAT/ID". */
static void key_name(const void *k, size_t kl, size_t skip, char *out,
		     size_t len)
{
	size_t n = kl > skip ? kl - skip : 0;
	if (n >= len)
		n = len - 1;
	memcpy(out, (const char *)k + skip, n);
	out[n] = '\0';
	char *z = memchr(out, '\0', n);
	if (z)
		*z = '/';
}

static int print_inst(void *arg, const void *k, size_t kl, const void *v,
		      size_t vl)
{
	char name[256];
	key_name(k, kl, 5, name, sizeof(name));
	printf("%s\t%.*s\n", name, (int)vl, (const char *)v);
	return 0;
}

static int print_key(void *arg, const void *k, size_t kl, const void *v,
		     size_t vl)
{
	char name[256];
	key_name(k, kl, 8, name, sizeof(name));
	size_t tl = strnlen(v, vl);
	char fp[128];

	if (tl >= vl)
		return 0;
	xfer_key_fingerprint((const unsigned char *)v + tl + 1, vl - tl - 1,
			     fp, sizeof(fp));
	printf("%s\t%s %s\n", name, (const char *)v, fp);
	return 0;
}

/* The escape rgtfs-verify prints names with: \xNN for control characters,
 * DEL and backslash, so one name is one line and one TSV field. */
static void print_name(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

/* "PLATFORM/ID" into @plat and @id (split at the first '/'); -EINVAL. */
static int split_name(const char *arg, char *plat, size_t plen, char *id,
		      size_t ilen)
{
	const char *slash = strchr(arg, '/');
	if (!slash || slash == arg || !slash[1] || strchr(slash + 1, '/') ||
	    (size_t)(slash - arg) >= plen || strlen(slash + 1) >= ilen)
		return -EINVAL;
	memcpy(plat, arg, slash - arg);
	plat[slash - arg] = '\0';
	strcpy(id, slash + 1);
	return 0;
}

/* ---- ls ------------------------------------------------------------------ */

/*
 * The facts the daemon's pin rule is fed, as far as the store holds them:
 * what fleet_pinned() reads from the store itself (archive record, journal
 * and phase) plus what the fleet loads at start from the last known
 * instance record ("inst"): that it is known, and gone or destroying.
 */
static void store_facts(struct store *st, const char *plat, const char *id,
			struct life_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->archived = archive_exists(st, plat, id);
	enum archive_phase ph = ARCH_RECORDED;
	f->journal = !archive_get_phase(st, plat, id, &ph);
	f->phase = ph;
	if (!strcmp(plat, "cloud")) {
		/* MOUNT/cloud reads: the bucket keeps them (fleet_pinned) */
		f->known = true;
		return;
	}
	char k[512];
	int kl = snprintf(k, sizeof(k), "inst%c%s%c%s", 0, plat, 0, id);
	void *v;
	size_t vl;
	if (kl < 0 || (size_t)kl >= sizeof(k) ||
	    store_meta_get(st, k, (size_t)kl, &v, &vl))
		return;
	json_error_t je;
	json_t *o = json_loadb(v, vl, 0, &je);
	const char *state = json_string_value(json_object_get(o, "state"));
	f->known = true;
	f->gone = state && (!strcmp(state, "gone") ||
			    !strcmp(state, "destroying"));
	json_decref(o);
	free(v);
}

static enum evict_class store_keep(void *arg, const uint8_t *fid,
				   const char *plat, const char *id)
{
	struct life_facts f;
	store_facts(arg, plat, id, &f);
	return life_pinned(life_of(&f)) ? EVICT_PINNED : EVICT_OK;
}

struct row {
	char *plat, *id;
	bool archive;
	uint64_t files;
	int64_t bytes;		/* -1: not known */
	uint64_t cached;
	bool pinned;
	enum inst_life life;
};

struct rows {
	struct row *v;
	size_t n, cap;
	struct store *st;
};

/* The row of (@plat, @id, @archive), added if new; NULL out of memory. */
static struct row *row_get(struct rows *r, const char *plat, const char *id,
			   bool archive)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].archive == archive && !strcmp(r->v[i].plat, plat) &&
		    !strcmp(r->v[i].id, id))
			return &r->v[i];
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 32;
		struct row *nv = realloc(r->v, nc * sizeof(*nv));
		if (!nv)
			return NULL;
		r->v = nv;
		r->cap = nc;
	}
	struct row *w = &r->v[r->n];
	memset(w, 0, sizeof(*w));
	w->plat = strdup(plat);
	w->id = strdup(id);
	if (!w->plat || !w->id) {
		free(w->plat);
		free(w->id);
		return NULL;
	}
	w->archive = archive;
	w->bytes = archive ? 0 : -1;
	struct life_facts f;
	store_facts(r->st, plat, id, &f);
	w->life = life_of(&f);
	w->pinned = life_pinned(w->life);
	r->n++;
	return w;
}

/* Instance records and journals: instances even with nothing cached. */
static int inst_fn(void *arg, const void *k, size_t kl, const void *v,
		   size_t vl)
{
	struct rows *r = arg;
	const char *p = k;
	size_t skip = strnlen(p, kl) + 1;
	if (skip >= kl)
		return 0;
	size_t pl = strnlen(p + skip, kl - skip);
	if (skip + pl + 1 >= kl)
		return 0;
	char *plat = strndup(p + skip, pl);
	char *id = strndup(p + skip + pl + 1, kl - skip - pl - 1);
	int rc = plat && id && row_get(r, plat, id, false) ? 0 : -ENOMEM;
	free(plat);
	free(id);
	return rc;
}

static int cmp_row(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = strcmp(a->plat, b->plat);
	if (!c)
		c = strcmp(a->id, b->id);
	return c ? c : (int)a->archive - (int)b->archive;
}

/* Is @fid one of the files (or the log) of archive @a? */
static bool archive_has_fid(const struct archive *a, const uint8_t *fid)
{
	struct fetch_file ff;
	bool hit = false;
	for (size_t i = 0; !hit && i < a->nfiles; i++) {
		if (archive_file_open(a, &a->files[i], &ff))
			continue;
		hit = !memcmp(ff.fid, fid, STORE_FID_LEN);
		fetch_file_cleanup(&ff);
	}
	if (!hit && !archive_log_open(a, &ff)) {
		hit = !memcmp(ff.fid, fid, STORE_FID_LEN);
		fetch_file_cleanup(&ff);
	}
	return hit;
}

static int cmd_ls(struct store *st)
{
	struct rows r = { .st = st };
	struct evict_file *ef = NULL;
	size_t nef = 0;
	char **plats = NULL;
	size_t np = 0;
	int rc = evict_scan(st, store_keep, st, &ef, &nef);
	if (!rc)
		rc = archive_platforms(st, &plats, &np);
	/* Archives: their own file list and sizes, and what of it is cached
	 * (the blocks archive_file_open() names, as MOUNT/archive reads). */
	for (size_t p = 0; !rc && p < np; p++) {
		char **ids;
		size_t ni;
		rc = archive_ids(st, plats[p], &ids, &ni);
		for (size_t i = 0; !rc && i < ni; i++) {
			struct archive *a;
			rc = archive_load(st, plats[p], ids[i], &a);
			if (rc) {
				fprintf(stderr, "rgtfs-store: archive %s/%s "
					"cannot be read: %s\n", plats[p], ids[i],
					strerror(-rc));
				rc = 0;
				continue;
			}
			struct row *w = row_get(&r, plats[p], ids[i], true);
			for (size_t f = 0; w && !rc && f < a->nfiles; f++) {
				struct fetch_file ff;
				uint64_t b = 0;
				w->files++;
				w->bytes += (int64_t)a->files[f].size;
				rc = archive_file_open(a, &a->files[f], &ff);
				if (rc)
					break;
				rc = store_blocks_bytes(st, ff.fid, &b);
				fetch_file_cleanup(&ff);
				w->cached += b;
			}
			/* the rest of this instance's cached files */
			for (size_t e = 0; w && !rc && e < nef; e++)
				if (!strcmp(ef[e].plat, plats[p]) &&
				    !strcmp(ef[e].id, ids[i]) &&
				    archive_has_fid(a, ef[e].fid))
					ef[e].bytes = UINT64_MAX; /* counted */
			if (!w && !rc)
				rc = -ENOMEM;
			archive_free(a);
		}
		if (!rc)
			archive_names_free(ids, ni);
	}
	archive_names_free(plats, np);
	/* Instances: every cached file the evictor has a record of and no
	 * archive claims, by owner. */
	for (size_t e = 0; !rc && e < nef; e++) {
		if (ef[e].bytes == UINT64_MAX)
			continue;
		struct row *w = row_get(&r, ef[e].plat, ef[e].id, false);
		if (!w) {
			rc = -ENOMEM;
			break;
		}
		w->files++;
		w->cached += ef[e].bytes;
		/* evict_scan() classified it with the same rule */
		w->pinned = ef[e].pinned;
	}
	if (!rc)
		rc = store_meta_scan(st, "inst", 5, inst_fn, &r);
	if (!rc)
		rc = store_meta_scan(st, "td", 3, inst_fn, &r);
	if (!rc) {
		if (r.n)
			qsort(r.v, r.n, sizeof(*r.v), cmp_row);
		printf("NAME\tKIND\tFILES\tBYTES\tCACHED\tEVICTION\tSTATE\n");
		for (size_t i = 0; i < r.n; i++) {
			struct row *w = &r.v[i];
			print_name(w->plat);
			putchar('/');
			print_name(w->id);
			printf("\t%s\t%" PRIu64 "\t", w->archive ? "archive" :
			       "instance", w->files);
			if (w->bytes < 0)
				printf("-");
			else
				printf("%" PRId64, w->bytes);
			printf("\t%" PRIu64 "\t%s\t%s\n", w->cached,
			       w->pinned ? "pinned" : "evictable",
			       life_name(w->life));
		}
	}
	for (size_t i = 0; i < r.n; i++) {
		free(r.v[i].plat);
		free(r.v[i].id);
	}
	free(r.v);
	evict_files_free(ef, nef);
	return rc;
}

/* ---- reading an archived file from the store ---------------------------- */

#define CHUNK ((size_t)STORE_BLOCK_SIZE)

/* Called with each chunk of a file as it is read; non-zero stops. */
typedef int (*chunk_fn)(void *arg, const char *data, size_t len);

enum got { GOT_OK, GOT_MISSING, GOT_SHORT, GOT_MISMATCH, GOT_SINK };

/*
 * Read archived file @f of @a from the store alone, in order, handing
 * each chunk to @sink (may be NULL) and hashing it; compare the digest
 * with @want. The one reader export and verify share. @why says what
 * went wrong; @hex is the digest of what was read (GOT_OK, GOT_MISMATCH).
 */
static enum got read_archived(struct store *st, const struct archive *a,
			      const struct archive_file *f, const char *want,
			      chunk_fn sink, void *arg, char *hex, char *why,
			      size_t whylen)
{
	struct fetch_file ff;
	uint64_t have = 0;
	int rc = archive_file_open(a, f, &ff);
	if (rc) {
		snprintf(why, whylen, "cannot name its blocks: %s",
			 strerror(-rc));
		return GOT_SHORT;
	}
	store_blocks_bytes(st, ff.fid, &have);
	if (f->size && !have) {
		fetch_file_cleanup(&ff);
		snprintf(why, whylen, "none of its %" PRIu64 " bytes is in the "
			 "cache", f->size);
		return GOT_MISSING;
	}
	char *buf = malloc(CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	enum got g = GOT_OK;
	if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		snprintf(why, whylen, "out of memory");
		g = GOT_SHORT;
	}
	for (uint64_t off = 0; g == GOT_OK && off < f->size; off += CHUNK) {
		size_t n = f->size - off < CHUNK ? (size_t)(f->size - off) :
						   CHUNK;
		uint64_t bad = 0;
		rc = archive_read_cached(st, ff.fid, f->size, off, n, buf,
					 &bad);
		if (rc == -EBADMSG) {
			/* damaged, not merely missing: the bytes are there
			 * and wrong, so they are neither hashed nor written */
			snprintf(why, whylen, "block %" PRIu64 " fails its "
				 "checksum (CRC32C): the cached bytes are "
				 "damaged, so the file cannot match its "
				 "manifest sha256", bad);
			g = GOT_SHORT;
			break;
		}
		if (rc) {
			snprintf(why, whylen, "bytes at %" PRIu64 " are not in "
				 "the cache (%" PRIu64 " of %" PRIu64 " bytes "
				 "cached)", off, have, f->size);
			g = GOT_SHORT;
			break;
		}
		EVP_DigestUpdate(md, buf, n);
		if (sink && (rc = sink(arg, buf, n))) {
			snprintf(why, whylen, "cannot write: %s",
				 strerror(rc > 0 ? rc : -rc));
			g = GOT_SINK;
		}
	}
	if (g == GOT_OK) {
		unsigned char raw[EVP_MAX_MD_SIZE];
		unsigned int ml = 0;
		EVP_DigestFinal_ex(md, raw, &ml);
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", raw[i]);
		if (strcmp(hex, want)) {
			snprintf(why, whylen, "sha256 of the cached bytes is "
				 "%s, the manifest says %s", hex, want);
			g = GOT_MISMATCH;
		}
	}
	EVP_MD_CTX_free(md);
	free(buf);
	fetch_file_cleanup(&ff);
	return g;
}

/*
 * The archive @plat/@id and its manifest's files; prints why not and
 * returns -errno.
 */
static int load_checked(struct store *st, const char *plat, const char *id,
			struct archive **a, struct manifest_file **mv,
			size_t *mn)
{
	char err[256];
	int rc = archive_load(st, plat, id, a);
	if (rc) {
		fprintf(stderr, "rgtfs-store: %s/%s: %s\n", plat, id,
			rc == -ENOENT ? "no such archive in the cache" :
			strerror(-rc));
		return rc;
	}
	if (!(*a)->manifest) {
		fprintf(stderr, "rgtfs-store: %s/%s: the archive has no "
			"PULL_MANIFEST.json to check against\n", plat, id);
		rc = -ENOENT;
	} else if ((rc = manifest_parse((*a)->manifest,
					strlen((*a)->manifest), mv, mn, err,
					sizeof(err)))) {
		fprintf(stderr, "rgtfs-store: %s/%s: PULL_MANIFEST.json: %s\n",
			plat, id, err);
	}
	if (rc) {
		archive_free(*a);
		*a = NULL;
	}
	return rc;
}

/* ---- verify --------------------------------------------------------------- */

static void print_line(const char *what, const struct archive *a,
		       const char *path, const char *why)
{
	printf("%-7s ", what);
	print_name(a->platform);
	putchar('/');
	print_name(a->id);
	putchar('/');
	print_name(path);
	if (why) {
		printf(": ");
		print_name(why);
	}
	putchar('\n');
}

/* 0 all OK, 1 anything else. */
static int verify_one(struct store *st, const char *plat, const char *id)
{
	struct archive *a;
	struct manifest_file *mv;
	size_t mn;
	int bad = 0;
	if (load_checked(st, plat, id, &a, &mv, &mn))
		return 1;
	for (size_t i = 0; i < mn; i++) {
		const struct archive_file *f = archive_file_at(a, mv[i].path);
		char hex[65], why[512];
		if (!f) {
			print_line("MISSING", a, mv[i].path,
				   "in the manifest, not in the archive");
			bad = 1;
			continue;
		}
		if (f->size != mv[i].bytes) {
			snprintf(why, sizeof(why), "the archive has %" PRIu64
				 " bytes, the manifest says %" PRIu64, f->size,
				 mv[i].bytes);
			print_line("FAIL", a, mv[i].path, why);
			bad = 1;
			continue;
		}
		enum got g = read_archived(st, a, f, mv[i].sha256, NULL, NULL,
					   hex, why, sizeof(why));
		if (g != GOT_OK)
			bad = 1;
		print_line(g == GOT_OK ? "OK" : g == GOT_MISSING ? "MISSING" :
			   "FAIL", a, mv[i].path, g == GOT_OK ? NULL : why);
	}
	/* the other way round: a file the archive serves but the manifest
	 * does not vouch for */
	for (size_t k = 0; k < a->nfiles; k++) {
		bool listed = false;
		for (size_t i = 0; !listed && i < mn; i++)
			listed = !strcmp(mv[i].path, a->files[k].path);
		if (!listed) {
			print_line("FAIL", a, a->files[k].path,
				   "in the archive, not in the manifest");
			bad = 1;
		}
	}
	manifest_files_free(mv, mn);
	archive_free(a);
	return bad;
}

/*
 * 0 only when there was something to check and all of it is OK: a cache
 * with no archives is no evidence, so `rgtfs-store verify && rm -r
 * my-other-copy` must not go ahead on it (1).
 */
static int cmd_verify(struct store *st, const char *arg, const char *cachedir)
{
	char plat[256], id[256];
	if (arg) {
		if (split_name(arg, plat, sizeof(plat), id, sizeof(id)))
			return 2;
		return verify_one(st, plat, id);
	}
	char **plats;
	size_t np;
	int status = 0, n = 0;
	int rc = archive_platforms(st, &plats, &np);
	for (size_t p = 0; !rc && p < np; p++) {
		char **ids;
		size_t ni;
		if ((rc = archive_ids(st, plats[p], &ids, &ni)))
			break;
		for (size_t i = 0; i < ni; i++, n++)
			status |= verify_one(st, plats[p], ids[i]);
		archive_names_free(ids, ni);
	}
	if (!rc)
		archive_names_free(plats, np);
	if (rc) {
		fprintf(stderr, "rgtfs-store: %s\n", strerror(-rc));
		return 1;
	}
	if (!n) {
		fprintf(stderr, "rgtfs-store: no archives in the cache at %s\n",
			cachedir);
		return 1;
	}
	return status;
}

/* ---- export --------------------------------------------------------------- */

static int write_all(void *arg, const char *p, size_t n)
{
	int fd = *(int *)arg;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The archive's own name mapping decides where a file goes: its path on
 * the box is rpath_join(root, path) (archive_file_path), and it is
 * exported to DIR/path only when that is already normal (no "", "." or
 * ".." component, nothing absolute): exactly the file under the
 * checkpoint root the archive serves, never a name outside DIR.
 */
static bool name_stays_inside(const struct archive *a,
			      const struct archive_file *f)
{
	char abs[8192], norm[8192];
	if (!*f->path || archive_file_path(a, f, abs, sizeof(abs)))
		return false;
	memcpy(norm, abs, strlen(abs) + 1);
	if (rpath_normalize(norm) || strcmp(norm, abs))
		return false;
	for (const char *p = f->path; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (!strncmp(p, "..", 2) && (p[2] == '/' || !p[2]))
			return false;
	}
	return true;
}

/* Open (creating) the parent directories of @rel under @root; the fd of
 * the last one, the file's own name in *base; -errno. No symlink is
 * followed (O_NOFOLLOW). */
static int open_parent(int root, const char *rel, const char **base)
{
	int dfd = dup(root);
	const char *p = rel, *slash;
	while (dfd >= 0 && (slash = strchr(p, '/'))) {
		char comp[256];
		size_t l = (size_t)(slash - p);
		if (!l || l >= sizeof(comp)) {
			close(dfd);
			return -EINVAL;
		}
		memcpy(comp, p, l);
		comp[l] = '\0';
		if (mkdirat(dfd, comp, 0755) && errno != EEXIST) {
			int e = -errno;
			close(dfd);
			return e;
		}
		int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY |
				 O_NOFOLLOW | O_CLOEXEC);
		int e = -errno;
		if (nfd >= 0 && fsync(dfd))
			e = -errno, close(nfd), nfd = -1;
		close(dfd);
		if (nfd < 0)
			return e;
		dfd = nfd;
		p = slash + 1;
	}
	*base = p;
	return dfd < 0 ? -errno : dfd;
}

/* DIR: made, or already there and empty. -errno with a message. */
static int prepare_dir(const char *dir, bool *made)
{
	*made = false;
	if (!mkdir(dir, 0755)) {
		*made = true;
		return 0;
	}
	if (errno != EEXIST) {
		int e = errno;
		fprintf(stderr, "rgtfs-store: cannot create %s: %s\n", dir,
			strerror(e));
		return -e;
	}
	DIR *d = opendir(dir);
	if (!d) {
		int e = errno;
		fprintf(stderr, "rgtfs-store: %s: %s\n", dir, strerror(e));
		return -e;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = -ENOTEMPTY;
	closedir(d);
	if (rc)
		fprintf(stderr, "rgtfs-store: %s is not empty: export writes "
			"only into a new or empty directory\n", dir);
	return rc;
}

/* Write one exported file @rel under @root (never over anything). */
static int export_file(struct store *st, const struct archive *a,
		       const struct archive_file *f, const char *sha,
		       int root)
{
	const char *base = f->path;
	char why[512], hex[65];
	int dfd = open_parent(root, f->path, &base);
	if (dfd < 0) {
		fprintf(stderr, "rgtfs-store: %s: cannot make its directory: "
			"%s\n", rpath_escape_s(f->path, why, sizeof(why)),
			strerror(-dfd));
		return dfd;
	}
	int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		fprintf(stderr, "rgtfs-store: %s: %s\n",
			rpath_escape_s(f->path, why, sizeof(why)), strerror(e));
		close(dfd);
		return -e;
	}
	enum got g = read_archived(st, a, f, sha, write_all, &fd, hex, why,
				   sizeof(why));
	int rc = 0;
	if (g == GOT_OK) {
		/* the box's mtime, as cp -a keeps; set before the fsync so
		 * that it is as durable as the bytes */
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_OMIT },
			{ .tv_sec = f->mtime },
		};
		if (futimens(fd, ts)) {
			snprintf(why, sizeof(why), "futimens: %s",
				 strerror(errno));
			g = GOT_SINK;
		}
	}
	if (g == GOT_OK && fsync(fd)) {
		snprintf(why, sizeof(why), "fsync: %s", strerror(errno));
		g = GOT_SINK;
	}
	if (close(fd) && g == GOT_OK) {
		snprintf(why, sizeof(why), "close: %s", strerror(errno));
		g = GOT_SINK;
	}
	if (g != GOT_OK) {
		char esc[1024];
		/* only the file this run created; everything else stays */
		unlinkat(dfd, base, 0);
		fprintf(stderr, "rgtfs-store: %s: %s: export stopped\n",
			rpath_escape_s(f->path, esc, sizeof(esc)), why);
		rc = -EIO;
	} else if (fsync(dfd)) {
		rc = -errno;
		fprintf(stderr, "rgtfs-store: fsync of the directory of %s: "
			"%s\n", rpath_escape_s(f->path, why, sizeof(why)),
			strerror(-rc));
	}
	close(dfd);
	return rc;
}

/* 0 exported, 1 refused or failed, 2 usage. */
static int cmd_export(struct store *st, const char *arg, const char *dir_arg)
{
	char plat[256], id[256], esc[1024], dir[4096];
	struct archive *a;
	struct manifest_file *mv;
	size_t mn;
	bool made;
	if (split_name(arg, plat, sizeof(plat), id, sizeof(id)))
		return 2;
	/* DIR without its trailing '/'s, so that its parent (whose entry
	 * for a new DIR is fsynced at the end) is found: "out/" is "out" */
	size_t dl = strlen(dir_arg);
	if (!dl || dl >= sizeof(dir)) {
		fprintf(stderr, "rgtfs-store: %s: not a usable directory "
			"name\n", dir_arg);
		return 1;
	}
	memcpy(dir, dir_arg, dl + 1);
	while (dl > 1 && dir[dl - 1] == '/')
		dir[--dl] = '\0';
	if (load_checked(st, plat, id, &a, &mv, &mn))
		return 1;
	int rc = 0;
	/* Everything that can be checked before a byte is written is. */
	for (size_t i = 0; !rc && i < mn; i++) {
		const struct archive_file *f = archive_file_at(a, mv[i].path);
		rpath_escape_s(mv[i].path, esc, sizeof(esc));
		if (!f) {
			fprintf(stderr, "rgtfs-store: %s: in the manifest, not "
				"in the archive\n", esc);
			rc = -ENOENT;
		} else if (f->size != mv[i].bytes) {
			fprintf(stderr, "rgtfs-store: %s: the archive has %"
				PRIu64 " bytes, the manifest says %" PRIu64
				"\n", esc, f->size, mv[i].bytes);
			rc = -EIO;
		} else if (!name_stays_inside(a, f) ||
			   !strcmp(f->path, "PULL_MANIFEST.json")) {
			fprintf(stderr, "rgtfs-store: %s: refused: the name "
				"would not be a file under DIR\n", esc);
			rc = -EINVAL;
		}
	}
	/* and the other way round, as verify checks: a file the archive
	 * holds that the manifest does not vouch for would be missing from
	 * DIR, which would then pass as the whole run */
	for (size_t k = 0; !rc && k < a->nfiles; k++) {
		bool listed = false;
		for (size_t i = 0; !listed && i < mn; i++)
			listed = !strcmp(mv[i].path, a->files[k].path);
		if (!listed) {
			fprintf(stderr, "rgtfs-store: %s: in the archive, not "
				"in the manifest\n", rpath_escape_s(
				a->files[k].path, esc, sizeof(esc)));
			rc = -EIO;
		}
	}
	if (rc || prepare_dir(dir, &made)) {
		manifest_files_free(mv, mn);
		archive_free(a);
		return 1;
	}
	int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		rc = -errno;
		fprintf(stderr, "rgtfs-store: %s: %s\n", dir, strerror(-rc));
	}
	for (size_t i = 0; !rc && i < mn; i++)
		rc = export_file(st, a, archive_file_at(a, mv[i].path),
				 mv[i].sha256, root);
	if (!rc) {
		/* the manifest exactly as recorded: PULL_VERIFIED.json's
		 * manifest_sha256 still holds for it */
		int fd = openat(root, "PULL_MANIFEST.json", O_WRONLY | O_CREAT |
				O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		rc = fd < 0 ? -errno :
			      write_all(&fd, a->manifest, strlen(a->manifest));
		if (!rc && fsync(fd))
			rc = -errno;
		if (fd >= 0 && close(fd) && !rc)
			rc = -errno;
		if (!rc && fsync(root))
			rc = -errno;
		if (rc)
			fprintf(stderr, "rgtfs-store: %s/PULL_MANIFEST.json: "
				"%s\n", dir, strerror(-rc));
	}
	if (!rc && made) {
		/* the new DIR's own entry, in its parent */
		char parent[4096];
		snprintf(parent, sizeof(parent), "%s", dir);
		char *s = strrchr(parent, '/');
		if (s == parent)
			s[1] = '\0';
		else if (s)
			*s = '\0';
		else
			strcpy(parent, ".");
		int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0 || fsync(pfd))
			rc = -errno;
		if (pfd >= 0)
			close(pfd);
		if (rc)
			fprintf(stderr, "rgtfs-store: fsync of %s (the parent "
				"of %s): %s\n", parent, dir, strerror(-rc));
	}
	if (root >= 0)
		close(root);
	if (!rc)
		printf("exported %zu files of %s/%s to %s, each checked against "
		       "PULL_MANIFEST.json\n", mn, plat, id, dir);
	manifest_files_free(mv, mn);
	archive_free(a);
	return rc ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rgtfs-store [-c CACHEDIR] stat | instances | hostkeys "
		"| forget-hostkey PLATFORM/ID\n"
		"       rgtfs-store [-c CACHEDIR] ls | verify [PLATFORM/ID] "
		"| export PLATFORM/ID DIR\n");
}

int main(int argc, char **argv)
{
	char *dir = NULL, err[512];
	struct store *st;
	int opt, rc;

	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		switch (opt) {
		case 'c':
			free(dir);
			dir = strdup(optarg);
			break;
		default:
			free(dir);
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc) {
		free(dir);
		usage();
		return 2;
	}
	if (!dir)
		dir = config_default_cache_dir();
	if (!dir) {
		fprintf(stderr, "rgtfs-store: out of memory\n");
		return 1;
	}
	/*
	 * An existing cache only: store_open() makes a missing directory
	 * (mkdir, chmod 0700, a first write transaction), which is right for
	 * the daemon and wrong here. A mistyped -c must not leave an empty
	 * cache behind, nor let `verify` report on one.
	 */
	char cachedir[4096], mdb[4096 + 16];
	struct stat sb;
	int dl = snprintf(cachedir, sizeof(cachedir), "%s", dir);
	free(dir);
	snprintf(mdb, sizeof(mdb), "%s/data.mdb", cachedir);
	if (dl < 0 || (size_t)dl >= sizeof(cachedir) || stat(mdb, &sb) ||
	    !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "rgtfs-store: no cache at %s\n", cachedir);
		return 1;
	}
	rc = store_open(cachedir, 1ull << 40, &st, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rgtfs-store: %s\n", err);
		return 1;
	}
	const char *cmd = argv[optind];
	if (!strcmp(cmd, "stat")) {
		struct store_info si;
		rc = store_info(st, &si);
		if (!rc)
			printf("blocks %llu\nrecords %llu\nbytes %llu\n",
			       (unsigned long long)si.blocks,
			       (unsigned long long)si.meta,
			       (unsigned long long)si.used);
	} else if (!strcmp(cmd, "instances")) {
		rc = store_meta_scan(st, "inst", 5, print_inst, NULL);
	} else if (!strcmp(cmd, "hostkeys")) {
		rc = store_meta_scan(st, "hostkey", 8, print_key, NULL);
	} else if (!strcmp(cmd, "forget-hostkey") && optind + 1 < argc) {
		const char *arg = argv[optind + 1];
		const char *slash = strchr(arg, '/');
		char k[512];
		if (!slash || slash == arg || !slash[1]) {
			usage();
			store_close(st);
			return 2;
		}
		int n = snprintf(k, sizeof(k), "hostkey%c%.*s%c%s", 0,
				 (int)(slash - arg), arg, 0, slash + 1);
		rc = store_meta_del(st, k, n);
		if (rc == -ENOENT)
			fprintf(stderr, "rgtfs-store: no host key pinned for "
				"%s\n", arg);
		else if (!rc)
			printf("forgot the host key of %s; the next connect "
			       "pins the key it is offered\n", arg);
	} else if (!strcmp(cmd, "ls") && optind + 1 == argc) {
		rc = cmd_ls(st);
	} else if (!strcmp(cmd, "verify") && optind + 2 >= argc) {
		int status = cmd_verify(st, argv[optind + 1], cachedir);
		store_close(st);
		if (status == 2)
			usage();
		if (fflush(stdout))
			return 1;
		return status;
	} else if (!strcmp(cmd, "export") && optind + 3 == argc) {
		int status = cmd_export(st, argv[optind + 1], argv[optind + 2]);
		store_close(st);
		if (status == 2)
			usage();
		return status;
	} else {
		usage();
		store_close(st);
		return 2;
	}
	store_close(st);
	if (rc && rc != -ENOENT)
		fprintf(stderr, "rgtfs-store: %s\n", strerror(-rc));
	return rc ? 1 : 0;
}
