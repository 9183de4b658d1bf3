/*
 * evict.c - LRU eviction under cache_size (see evict.h).
 *
 * DESIGN
 * Each cached file has a small record written when its first blocks are
 * committed and refreshed when it is read (at most once a minute per file,
 * by the fetcher). A pass reads those records, counts each file's cached
 * bytes from the block keys (no block data is touched), asks the upper
 * layer which instances are pinned, and deletes whole files, oldest first.
 * Whole files, not blocks: a partly evicted checkpoint is as expensive to
 * re-read as a missing one, and file granularity keeps the records small.
 * A pinned file is never chosen, so the bound applies to evictable data
 * only and archived data can exceed it (SPEC: never evicted).
 */
#include "evict.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stats.h"

static int cmp_lru(const void *a, const void *b)
{
	const struct evict_file *x = a, *y = b;
	bool kx = x->pinned || x->hot, ky = y->pinned || y->hot;
	if (kx != ky)
		return kx ? 1 : -1;	/* kept ones last */
	return x->atime < y->atime ? -1 : x->atime > y->atime;
}

size_t evict_choose(struct evict_file *v, size_t n, uint64_t limit)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (!v[i].pinned)
			total += v[i].bytes;
	if (n)
		qsort(v, n, sizeof(*v), cmp_lru);
	size_t k = 0;
	while (total > limit && k < n && !v[k].pinned && !v[k].hot) {
		total -= v[k].bytes;
		k++;
	}
	return k;
}

static size_t file_key(char *k, const uint8_t *fid)
{
	memcpy(k, "file", 5);	/* with its NUL */
	memcpy(k + 5, fid, STORE_FID_LEN);
	return 5 + STORE_FID_LEN;
}

int evict_record(struct store *st, const uint8_t *fid, const char *plat,
		 const char *id, int64_t atime_ms)
{
	char k[5 + STORE_FID_LEN], v[512];
	size_t pl = strlen(plat), il = strlen(id);
	int64_t at = atime_ms;
	if (pl + il + 2 + sizeof(at) > sizeof(v))
		return -ENAMETOOLONG;
	memcpy(v, plat, pl + 1);
	memcpy(v + pl + 1, id, il + 1);
	memcpy(v + pl + il + 2, &at, sizeof(at));
	return store_meta_put(st, k, file_key(k, fid), v,
			      pl + il + 2 + sizeof(at));
}

struct collect {
	struct evict_file *v;
	size_t n, cap;
};

static int collect_fn(void *arg, const void *key, size_t kl, const void *val,
		      size_t vl)
{
	struct collect *c = arg;
	const char *p = val;
	if (kl != 5 + STORE_FID_LEN)
		return 0;
	size_t pl = strnlen(p, vl);
	if (pl + 1 >= vl)
		return 0;
	size_t il = strnlen(p + pl + 1, vl - pl - 1);
	if (pl + il + 2 + sizeof(int64_t) != vl)
		return 0;	/* not ours: skip rather than guess */
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct evict_file *nv = realloc(c->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = nc;
	}
	struct evict_file *f = &c->v[c->n];
	memset(f, 0, sizeof(*f));
	memcpy(f->fid, (const char *)key + 5, STORE_FID_LEN);
	f->plat = strdup(p);
	f->id = strdup(p + pl + 1);
	int64_t at;
	memcpy(&at, p + pl + il + 2, sizeof(at));
	f->atime = at;
	if (!f->plat || !f->id) {
		free(f->plat);
		free(f->id);
		return -ENOMEM;
	}
	c->n++;
	return 0;
}

void evict_files_free(struct evict_file *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].plat);
		free(v[i].id);
	}
	free(v);
}

int evict_scan(struct store *st, evict_keep_fn keep, void *arg,
	       struct evict_file **out, size_t *n)
{
	struct collect c = { 0 };
	int rc = store_meta_scan(st, "file", 5, collect_fn, &c);
	for (size_t i = 0; !rc && i < c.n; i++) {
		rc = store_blocks_bytes(st, c.v[i].fid, &c.v[i].bytes);
		enum evict_class k = keep ? keep(arg, c.v[i].fid,
						 c.v[i].plat, c.v[i].id) :
					    EVICT_OK;
		c.v[i].pinned = k == EVICT_PINNED;
		c.v[i].hot = k == EVICT_HOT;
	}
	if (rc) {
		evict_files_free(c.v, c.n);
		return rc;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}

int64_t evict_pass(struct store *st, uint64_t limit, evict_keep_fn keep,
		   void *arg, bool *still_over)
{
	*still_over = false;
	struct collect c = { 0 };
	int64_t freed = 0;
	int rc = evict_scan(st, keep, arg, &c.v, &c.n);
	size_t k = rc ? 0 : evict_choose(c.v, c.n, limit);
	uint64_t left = 0;
	for (size_t i = k; !rc && i < c.n; i++)
		if (!c.v[i].pinned)
			left += c.v[i].bytes;
	*still_over = left > limit;
	for (size_t i = 0; !rc && i < k; i++) {
		char key[5 + STORE_FID_LEN];
		rc = store_blocks_delete(st, c.v[i].fid);
		if (!rc)
			rc = store_meta_del(st, key, file_key(key, c.v[i].fid));
		if (!rc)
			freed += (int64_t)c.v[i].bytes;
		if (!rc)
			stats_evicted(c.v[i].bytes, STORE_BLOCK_SIZE);
	}
	if (k)
		rgt_log(RGT_INFO, "cache: evicted %zu files (%lld MiB) to stay "
			"under cache_size", k, (long long)(freed >> 20));
	evict_files_free(c.v, c.n);
	return rc ? rc : freed;
}
