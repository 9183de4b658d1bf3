/*
 * test_log_ring.c - MOUNT/.rgtfs/log's ring (util/log.c): it keeps the last
 * RGT_LOG_RING lines, oldest first, each one line with its time and level,
 * and it never grows past its slots; and the stats counters (util/stats.c)
 * render as "key value" lines that add up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "log.h"
#include "stats.h"

/* The lines logged here are the test's: keep them off stderr, where
 * CHECK reports. */
static int saved_err = -1;

static void quiet(void)
{
	int fd = open("/dev/null", O_WRONLY);
	saved_err = dup(STDERR_FILENO);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

static void loud(void)
{
	if (saved_err >= 0) {
		dup2(saved_err, STDERR_FILENO);
		close(saved_err);
		saved_err = -1;
	}
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* Line @k (0-based) of @s, without its newline, into @out. */
static const char *line_at(const char *s, size_t k, char *out, size_t len)
{
	for (; k && s && *s; s++)
		if (*s == '\n')
			k--;
	const char *nl = s ? strchr(s, '\n') : NULL;
	size_t n = nl ? (size_t)(nl - s) : 0;
	if (n >= len)
		n = len - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static void test_ring(void)
{
	struct buf b;
	char l[2048];

	buf_init(&b, 1u << 20);
	CHECK_ERR(rgt_log_recent(&b), 0);
	CHECK(b.len == 0);	/* nothing logged yet */

	quiet();
	rgt_log(RGT_WARN, "first %d", 1);
	rgt_log(RGT_DEBUG, "not logged at the default level");
	loud();
	buf_reset(&b);
	CHECK_ERR(rgt_log_recent(&b), 0);
	CHECK(count_lines(b.data) == 1);
	/* "YYYY-MM-DDTHH:MM:SSZ warn: first 1" */
	line_at(b.data, 0, l, sizeof(l));
	CHECK(strlen(l) > 21 && l[4] == '-' && l[10] == 'T' && l[19] == 'Z');
	CHECK_STR(l + 21, "warn: first 1");

	/* a message cannot forge a second line */
	quiet();
	rgt_log(RGT_INFO, "two\nlines\rand\x1b[31m escapes");
	loud();
	buf_reset(&b);
	CHECK_ERR(rgt_log_recent(&b), 0);
	CHECK(count_lines(b.data) == 2);
	CHECK_STR(line_at(b.data, 1, l, sizeof(l)) + 21,
		  "info: two lines and [31m escapes");

	/* past the ring's size: the oldest lines go, the newest stay */
	quiet();
	for (int i = 0; i < RGT_LOG_RING + 17; i++)
		rgt_log(RGT_INFO, "line %d", i);
	loud();
	buf_reset(&b);
	CHECK_ERR(rgt_log_recent(&b), 0);
	CHECK(count_lines(b.data) == RGT_LOG_RING);
	CHECK_STR(line_at(b.data, 0, l, sizeof(l)) + 21, "info: line 17");
	snprintf(l + 1024, 64, "info: line %d", RGT_LOG_RING + 16);
	CHECK_STR(line_at(b.data, RGT_LOG_RING - 1, l, 1024) + 21, l + 1024);

	/* a huge message is cut to one bounded line */
	char *big = malloc(64 * 1024);
	memset(big, 'x', 64 * 1024 - 1);
	big[64 * 1024 - 1] = '\0';
	quiet();
	rgt_log(RGT_ERR, "%s", big);
	loud();
	free(big);
	buf_reset(&b);
	CHECK_ERR(rgt_log_recent(&b), 0);
	CHECK(count_lines(b.data) == RGT_LOG_RING);
	CHECK(b.len < (size_t)RGT_LOG_RING * 1100);
	line_at(b.data, RGT_LOG_RING - 1, l, sizeof(l));
	CHECK(!strncmp(l + 21, "error: xxxx", 11));
	CHECK(strlen(l) < 1100);

	/* a buffer too small fails cleanly */
	struct buf small;
	buf_init(&small, 100);
	CHECK_ERR(rgt_log_recent(&small), -EFBIG);
	buf_cleanup(&small);
	buf_cleanup(&b);
}

static void test_stats(void)
{
	struct buf b;
	buf_init(&b, 1u << 16);
	stats_fetched("sftp", 1000);
	stats_fetched("openssh", 20);
	stats_fetched("s3", 3);
	stats_fetched(NULL, 5);		/* a block, no transport's bytes */
	stats_add(STATS_CACHE_HITS, 4);
	stats_evicted(3u << 20, 1u << 20);
	stats_evicted((1u << 20) + 1, 1u << 20);	/* rounds up */
	CHECK(stats_get(STATS_CACHE_MISSES) == 4);
	CHECK(stats_get(STATS_FETCHED_BYTES_LIBSSH2) == 1000);
	CHECK(stats_get(STATS_FETCHED_BYTES_OPENSSH) == 20);
	CHECK(stats_get(STATS_FETCHED_BYTES_S3) == 3);
	CHECK(stats_get(STATS_EVICTED_BLOCKS) == 5);
	CHECK(stats_get(STATS_EVICTED_BYTES) == (4u << 20) + 1);
	CHECK(stats_get(STATS_N) == 0);
	CHECK(stats_name(STATS_N) == NULL);
	CHECK_ERR(stats_render(&b), 0);
	CHECK(count_lines(b.data) == STATS_N);
	CHECK(strstr(b.data, "cache_hits 4\n") != NULL);
	CHECK(strstr(b.data, "cache_misses 4\n") != NULL);
	CHECK(strstr(b.data, "fetched_bytes.sftp_libssh2 1000\n") != NULL);
	CHECK(strstr(b.data, "teardowns_started 0\n") != NULL);
	buf_cleanup(&b);
}

int main(void)
{
	test_ring();
	test_stats();
	return CHECK_DONE();
}
