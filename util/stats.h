/*
 * stats.h - process-wide counters for MOUNT/.rgtfs/stats.
 *
 * Each counter is bumped at the one place its fact happens (a block fetch
 * completing in cache/fetch.c, a store hit there, an eviction in
 * cache/evict.c, a teardown in fs/teardown.c), so the numbers are facts,
 * not estimates. Counters only grow; they start at zero with the process.
 * Per-section API call counts live with their sections (fleet.h), since
 * the sections are only known at run time.
 *
 * Threads: every function may be called from any thread (C11 atomics,
 * relaxed: a reader sees each counter's value at some recent moment, and
 * two counters read together need not be from the same moment).
 */
#ifndef RGT_STATS_H
#define RGT_STATS_H

#include <stdint.h>

struct buf;

enum stats_counter {
	STATS_FETCHED_BYTES_LIBSSH2,	/* block bytes over SFTP, libssh2 */
	STATS_FETCHED_BYTES_OPENSSH,	/* ... over SFTP, the OpenSSH client */
	STATS_FETCHED_BYTES_S3,		/* ... from a bucket */
	STATS_CACHE_MISSES,		/* blocks fetched from a remote */
	STATS_CACHE_HITS,		/* blocks a read served from the store */
	STATS_EVICTED_BLOCKS,
	STATS_EVICTED_BYTES,
	STATS_TEARDOWNS_STARTED,
	STATS_TEARDOWNS_DESTROYED,	/* the platform confirmed the destroy */
	STATS_TEARDOWNS_REFUSED,	/* ended before any destroy call */
	STATS_TEARDOWNS_FAILED,		/* ended after a destroy call */
	STATS_N
};

void stats_add(enum stats_counter c, uint64_t n);
uint64_t stats_get(enum stats_counter c);
/* The key .rgtfs/stats shows for @c ("cache_hits"); NULL if out of range. */
const char *stats_name(enum stats_counter c);

/*
 * One block of @bytes fetched over @transport, the name remote_transport()
 * gives ("sftp" is libssh2, "openssh", "s3"; NULL or another name counts
 * the block but no transport's bytes).
 */
void stats_fetched(const char *transport, uint64_t bytes);
/* A file of @bytes evicted, in blocks of @block_size bytes. */
void stats_evicted(uint64_t bytes, uint64_t block_size);

/* Append "key value\n" for every counter, in enum order. 0 or -errno. */
int stats_render(struct buf *out);

#endif
