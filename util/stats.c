/*
 * stats.c - the counters of stats.h: one array of relaxed atomics. No lock,
 * so a bump costs one atomic add on the paths that serve bytes.
 */
#include "stats.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "buf.h"

static _Atomic uint64_t counters[STATS_N];

static const char *const names[STATS_N] = {
	[STATS_FETCHED_BYTES_LIBSSH2] = "fetched_bytes.sftp_libssh2",
	[STATS_FETCHED_BYTES_OPENSSH] = "fetched_bytes.sftp_openssh",
	[STATS_FETCHED_BYTES_S3] = "fetched_bytes.s3",
	[STATS_CACHE_MISSES] = "cache_misses",
	[STATS_CACHE_HITS] = "cache_hits",
	[STATS_EVICTED_BLOCKS] = "evicted_blocks",
	[STATS_EVICTED_BYTES] = "evicted_bytes",
	[STATS_TEARDOWNS_STARTED] = "teardowns_started",
	[STATS_TEARDOWNS_DESTROYED] = "teardowns_destroyed",
	[STATS_TEARDOWNS_REFUSED] = "teardowns_refused",
	[STATS_TEARDOWNS_FAILED] = "teardowns_failed",
};

void stats_add(enum stats_counter c, uint64_t n)
{
	if ((unsigned)c < STATS_N)
		atomic_fetch_add_explicit(&counters[c], n,
					  memory_order_relaxed);
}

uint64_t stats_get(enum stats_counter c)
{
	return (unsigned)c < STATS_N ?
		       atomic_load_explicit(&counters[c],
					    memory_order_relaxed) :
		       0;
}

const char *stats_name(enum stats_counter c)
{
	return (unsigned)c < STATS_N ? names[c] : NULL;
}

void stats_fetched(const char *transport, uint64_t bytes)
{
	stats_add(STATS_CACHE_MISSES, 1);
	if (!transport)
		return;
	/* xfer_sftp_ops is "sftp": SFTP over libssh2 */
	if (!strcmp(transport, "sftp"))
		stats_add(STATS_FETCHED_BYTES_LIBSSH2, bytes);
	else if (!strcmp(transport, "openssh"))
		stats_add(STATS_FETCHED_BYTES_OPENSSH, bytes);
	else if (!strcmp(transport, "s3"))
		stats_add(STATS_FETCHED_BYTES_S3, bytes);
}

void stats_evicted(uint64_t bytes, uint64_t block_size)
{
	stats_add(STATS_EVICTED_BYTES, bytes);
	if (block_size)
		stats_add(STATS_EVICTED_BLOCKS,
			  (bytes + block_size - 1) / block_size);
}

int stats_render(struct buf *out)
{
	int rc = 0;
	for (int c = 0; !rc && c < STATS_N; c++)
		rc = buf_appendf(out, "%s %" PRIu64 "\n", names[c],
				 stats_get(c));
	return rc;
}
