/*
 * fetch.h - the block fetcher: serves byte ranges of remote files from the
 * store, fetching missing 1 MiB blocks through the instance's remote.
 *
 * - Warm reads are answered straight from the LMDB map (zero copy: the
 *   reply callback gets iovecs pointing into the map).
 * - Each missing block is fetched once however many readers want it
 *   (in-flight table), by a pool of worker threads, each request on its own
 *   transport session; sequential readers get read-ahead.
 * - Fetched blocks are written to the store by one writer thread in
 *   batched transactions: FUSE threads never wait for a commit.
 * - Memory is bounded: read-ahead stops while the bytes of the blocks
 *   held (queued, being fetched, fetched and not yet committed) would
 *   pass max_inflight.
 *
 * Threads: all functions may be called from any thread.
 */
#ifndef RGT_FETCH_H
#define RGT_FETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "store.h"
#include "xfer.h"

struct remote;
struct fetcher;

struct fetcher_params {
	struct store *store;
	int workers;			/* fetch threads, default 8 */
	size_t max_inflight;		/* bytes, default 32 MiB */
	int readahead;			/* blocks ahead of a sequential reader */
	long wait_timeout_ms;		/* bound on one read's wait */
	uint64_t cache_size;		/* evictable bytes; 0: unbounded */
	/* Which instances' data must never be evicted (archived, gone,
	 * tearing down); may be NULL. Called from the writer thread. */
	bool (*pinned)(void *arg, const char *plat, const char *id);
	void *pinned_arg;
};

int fetcher_new(const struct fetcher_params *p, struct fetcher **out);
/* Stops the threads, writes what was fetched, frees. */
void fetcher_free(struct fetcher *f);

/* One version of one remote file: its identity is (path, size, mtime, and
 * for S3 objects the ETag). */
struct fetch_file {
	struct remote *remote;	/* borrowed; outlives the file; NULL: the
				 * bytes can only come from the store */
	char *plat;		/* owner, for eviction */
	char *id;
	char *path;
	uint64_t size;
	int64_t mtime;
	char etag[XFER_ETAG_MAX];	/* "" but for S3 objects */
	uint8_t fid[STORE_FID_LEN];
};

/* @etag: the S3 object's ETag, NULL or "" for SFTP files. Every read then
 * asks the transport for exactly this version (-ESTALE otherwise). */
int fetch_file_init(struct fetch_file *ff, struct remote *r,
		    const char *platform, const char *id, const char *path,
		    uint64_t size, int64_t mtime, const char *etag);
void fetch_file_cleanup(struct fetch_file *ff);

/* The identity key of a file version (pure; unit-tested). An empty or
 * NULL @etag gives the key files had before etags existed. */
void fetch_file_id(uint8_t fid[STORE_FID_LEN], const char *platform,
		   const char *id, const char *path, uint64_t size,
		   int64_t mtime, const char *etag);

/* Per-open-file sequential detection (embed in the file handle). */
/*
 * One open file's reading pattern, for read-ahead. A read that starts
 * inside the current run (from run_start to a block past next_off: the
 * kernel sends a sequential reader's requests in parallel, slightly out of
 * order) continues it; any other read starts a new run. A run from the
 * start of the file is a copy and gets read-ahead at once; any other run
 * only once it is RA_MIN_RUN long, so a random read of a few MiB never
 * pulls in blocks nobody asked for. The window grows with the run up to
 * the configured readahead.
 */
struct fetch_stream {
	pthread_mutex_t mu;
	bool started;		/* a first read was seen */
	unsigned gen;		/* counts runs: a stale refill keeps off */
	uint64_t run_start;	/* where the current sequential run began */
	uint64_t next_off;	/* the furthest end read in this run */
	uint64_t ra_upto;	/* blocks below this were scheduled */
};

void fetch_stream_init(struct fetch_stream *s);
void fetch_stream_cleanup(struct fetch_stream *s);

/* Called once with the data; must not keep the pointers. */
typedef int (*fetch_reply_fn)(void *arg, const struct iovec *iov, int n);

/*
 * Read [off, off+len) of @ff (clamped to its size). On success calls
 * @reply once and returns its result; otherwise returns -errno (-EIO,
 * -EACCES, -ETIMEDOUT...) without calling it. Bounded by wait_timeout_ms.
 * A block evicted while the read waited is fetched again, not an error.
 */
int fetch_read(struct fetcher *f, struct fetch_file *ff,
	       struct fetch_stream *s, uint64_t off, size_t len,
	       fetch_reply_fn reply, void *arg);

/*
 * Read-ahead across files, for readers that go through a directory file
 * by file (rsync, cp -r, tar, a shell loop). fetch_walk_step() is told of
 * every open: file @index of the listing of directory @dir (any string
 * naming it: platform, instance and path). It returns true when the open
 * continues a walk, i.e. the last open in @dir was of a file a few places
 * before this one; a lone open (cat of one file) never counts. The caller
 * then hands the files that follow to fetch_prefetch_whole(), which
 * queues the whole of a small file (at most FETCH_WALK_MAX_SIZE) as
 * read-ahead, within max_inflight, so that their requests are in flight
 * in parallel while the reader is still on the current one.
 */
#define FETCH_WALK_AHEAD 16		/* files queued ahead of a walk */
#define FETCH_WALK_MAX_SIZE STORE_BLOCK_SIZE
bool fetch_walk_step(struct fetcher *f, const char *dir, size_t index);
void fetch_prefetch_whole(struct fetcher *f, const struct fetch_file *ff);

/* Tests only (NULL in the daemon): called inside fetch_read() between
 * waiting for the blocks and replying, e.g. to evict meanwhile. */
extern void (*fetch_test_between_passes)(struct fetch_file *ff);

/*
 * Wait until every block fetched so far is committed to the store (the
 * writer queue is empty), bounded by wait_timeout_ms: -ETIMEDOUT.
 */
int fetch_flush(struct fetcher *f);

/*
 * The newest read problem of instance @plat/@id that no remote could mend
 * (a cached block failing its checksum with the box gone) into @buf, one
 * line; 1 if there is one, else 0 and "". For the archive's .error.
 */
int fetch_read_problem(struct fetcher *f, const char *plat, const char *id,
		       char *buf, size_t len);

/* How many block commits have failed since the fetcher started: a caller
 * that needs its blocks in the store compares it before and after. */
unsigned long fetch_write_errors(struct fetcher *f);

/*
 * Wait for an eviction pass under way to end. A pass decides which files
 * are pinned and deletes the others; one that judged an instance before
 * its pin took effect (a teardown just began) could still delete its
 * files. After the barrier, every pass sees the pin: call it right after
 * making data pinned, before relying on it.
 */
void fetch_evict_barrier(struct fetcher *f);

/* Block math (pure): blocks covering [off, off+len) of a file of @size. */
int fetch_block_range(uint64_t off, uint64_t len, uint64_t size,
		      uint64_t *first, uint64_t *last);

struct fetch_stats {
	uint64_t blocks_fetched;
	uint64_t bytes_fetched;
	uint64_t blocks_written;
	uint64_t hits;		/* block reads served from the store */
	size_t inflight;	/* bytes held right now */
	size_t inflight_peak;
};
void fetch_get_stats(struct fetcher *f, struct fetch_stats *out);

#endif
