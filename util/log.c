/*
 * log.c - leveled logging: to stderr, one write(2) per line so lines from
 * different threads never interleave; or, once the daemon has detached
 * (stderr is /dev/null then), to syslog as "rgtfs[PID]", facility daemon,
 * one syslog() call per message, like sshfs.
 *
 * Every line written also goes into a ring of RGT_LOG_RING fixed slots
 * (MOUNT/.rgtfs/log): one mutex, held for a memcpy, never while writing.
 * A line is sanitised before it is kept, so the ring holds exactly what
 * stderr or syslog got, with its time.
 */
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define LINE_MAX_LEN 1024
#define STAMP_LEN 21	/* "2025-07-30T10:00:00Z " */

static enum rgt_log_level cur_level = RGT_INFO;
static atomic_bool to_syslog;

void rgt_log_set_level(enum rgt_log_level level)
{
	cur_level = level;
}

enum rgt_log_level rgt_log_get_level(void)
{
	return cur_level;
}

void rgt_log_to_syslog(void)
{
	/* The socket is opened at the first message (no LOG_NDELAY), and
	 * glibc takes the pid at each message: fine after a fork. */
	openlog("rgtfs", LOG_PID, LOG_DAEMON);
	atomic_store(&to_syslog, true);
}

static struct {
	pthread_mutex_t mu;
	char slot[RGT_LOG_RING][STAMP_LEN + LINE_MAX_LEN];
	size_t next;	/* slot the next line goes to */
	size_t count;	/* slots in use, up to RGT_LOG_RING */
} ring = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Keep "@stamp @msg" (@n bytes of @msg, no newline) in the ring. */
static void ring_push(const char *msg, size_t n)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	if (!gmtime_r(&now, &tm) ||
	    !strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ ", &tm))
		snprintf(stamp, sizeof(stamp), "%lld ", (long long)now);
	pthread_mutex_lock(&ring.mu);
	snprintf(ring.slot[ring.next], sizeof(ring.slot[0]), "%s%.*s", stamp,
		 (int)n, msg);
	ring.next = (ring.next + 1) % RGT_LOG_RING;
	if (ring.count < RGT_LOG_RING)
		ring.count++;
	pthread_mutex_unlock(&ring.mu);
}

int rgt_log_recent(struct buf *out)
{
	int rc = 0;
	pthread_mutex_lock(&ring.mu);
	size_t first = (ring.next + RGT_LOG_RING - ring.count) % RGT_LOG_RING;
	for (size_t i = 0; !rc && i < ring.count; i++)
		rc = buf_appendf(out, "%s\n",
				 ring.slot[(first + i) % RGT_LOG_RING]);
	pthread_mutex_unlock(&ring.mu);
	return rc;
}

static void vlog(enum rgt_log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = {
		[RGT_ERR] = "error", [RGT_WARN] = "warn",
		[RGT_INFO] = "info", [RGT_DEBUG] = "debug",
	};
	char line[LINE_MAX_LEN];
	int n = snprintf(line, sizeof(line), "rgtfs: %s: ",
			 level <= RGT_DEBUG && names[level] ? names[level] :
							      "log");
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	size_t len = n + (m < 0 ? 0 :
			  (size_t)m >= sizeof(line) - n - 1 ?
					  sizeof(line) - n - 2 :
					  (size_t)m);
	/* One line per message, whatever the caller passed. */
	for (size_t i = n; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';	/* no forged lines, no escapes */
	ring_push(line + strlen("rgtfs: "), len - strlen("rgtfs: "));
	if (atomic_load(&to_syslog)) {
		/* Our levels are syslog's priorities (log.h). syslog adds
		 * "rgtfs[PID]: " itself; keep the level word. */
		line[len] = '\0';
		syslog(level <= RGT_DEBUG ? (int)level : LOG_INFO, "%s",
		       line + strlen("rgtfs: "));
		return;
	}
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void rgt_log(enum rgt_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > cur_level)
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void rgt_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(RGT_ERR, fmt, ap);
	va_end(ap);
	abort();
}
