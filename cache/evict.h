/*
 * evict.h - keep evictable cache data under cache_size, least recently
 * used first. Data of archived, gone and tearing-down instances is pinned
 * (the caller's callback says which) and is never evicted, whatever the
 * bound: it may be the only copy left.
 *
 * evict_choose() is the pure rule; evict_pass() applies it to the store.
 * Threads: evict_pass() runs in the fetcher's writer thread.
 */
#ifndef RGT_EVICT_H
#define RGT_EVICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store.h"

struct evict_file {
	uint8_t fid[STORE_FID_LEN];
	char *plat;
	char *id;
	uint64_t bytes;		/* cached bytes of this file */
	int64_t atime;		/* last read, ms since the epoch */
	bool pinned;		/* outside the bound: never counted or chosen */
	bool hot;		/* being read: counted, but not chosen now */
};

/*
 * Choose files to drop so the unpinned bytes fit @limit: sorts @v (pinned
 * and hot entries last, the rest oldest first) and returns how many of the
 * first entries to evict. Hot entries count towards the limit but are
 * never chosen; pinned entries neither count nor are chosen.
 */
size_t evict_choose(struct evict_file *v, size_t n, uint64_t limit);

enum evict_class { EVICT_OK, EVICT_HOT, EVICT_PINNED };

/* What a file is to eviction now. */
typedef enum evict_class (*evict_keep_fn)(void *arg, const uint8_t *fid,
					  const char *plat, const char *id);

/* The store's record of a cached file: "file\0" fid -> plat\0id\0atime. */
int evict_record(struct store *st, const uint8_t *fid, const char *plat,
		 const char *id, int64_t atime_ms);

/*
 * What a pass sees, and nothing deleted: every file the store has a record
 * of, with its cached bytes and its class from @keep (NULL: all EVICT_OK),
 * in key order. For rgtfs-store ls; evict_pass() decides from the same.
 * *out is malloc'd (NULL possible when @n is 0): evict_files_free().
 */
int evict_scan(struct store *st, evict_keep_fn keep, void *arg,
	       struct evict_file **out, size_t *n);
void evict_files_free(struct evict_file *v, size_t n);

/*
 * One pass: if unpinned cached bytes exceed @limit, delete the blocks of
 * the least recently used unpinned files until they fit. Returns bytes
 * freed or -errno; *still_over: files being read kept it over the bound.
 */
int64_t evict_pass(struct store *st, uint64_t limit, evict_keep_fn keep,
		   void *arg, bool *still_over);

#endif
