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
	time_t atime;		/* last read */
	bool pinned;
};

/*
 * Choose files to drop so the unpinned bytes fit @limit: sorts @v by atime
 * (oldest first) and returns how many of the first entries to evict; only
 * unpinned entries are counted and ever chosen (pinned ones sort last).
 */
size_t evict_choose(struct evict_file *v, size_t n, uint64_t limit);

typedef bool (*evict_pinned_fn)(void *arg, const char *plat, const char *id);

/* The store's record of a cached file: "file\0" fid -> plat\0id\0atime. */
int evict_record(struct store *st, const uint8_t *fid, const char *plat,
		 const char *id, time_t atime);

/*
 * One pass: if unpinned cached bytes exceed @limit, delete the blocks of
 * the least recently used unpinned files until they fit. Returns bytes
 * freed or -errno.
 */
int64_t evict_pass(struct store *st, uint64_t limit, evict_pinned_fn pinned,
		   void *arg);

#endif
