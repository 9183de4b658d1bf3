/*
 * log.h - the one writer to stderr (or to syslog once the daemon has
 * detached: rgt_log_to_syslog()).
 *
 * Levels follow syslog: RGT_ERR for failures the user must see, RGT_WARN for
 * degraded operation (API down, host unreachable), RGT_INFO for lifecycle,
 * RGT_DEBUG for tracing (only with -d or RGTFS_DEBUG=1).
 *
 * Never pass a secret (API key, token, env value) to these functions.
 * Thread-safe: each message is written with one write(2) (one syslog()
 * call), on one line: newlines in the message become spaces.
 *
 * The last RGT_LOG_RING lines written (whatever the destination) are also
 * kept in memory, for MOUNT/.rgtfs/log: a fixed ring of fixed-size slots,
 * so the memory it takes never grows.
 */
#ifndef RGT_LOG_H
#define RGT_LOG_H

#include <stdarg.h>

struct buf;

enum rgt_log_level { RGT_ERR = 3, RGT_WARN = 4, RGT_INFO = 6, RGT_DEBUG = 7 };

void rgt_log_set_level(enum rgt_log_level level);
enum rgt_log_level rgt_log_get_level(void);
/*
 * From now on, log to syslog ("rgtfs[PID]", facility daemon) instead of
 * stderr: for a daemon whose stderr went to /dev/null (no -f). Call it
 * after fuse_daemonize(), before threads start.
 */
void rgt_log_to_syslog(void);
void rgt_log(enum rgt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define RGT_LOG_RING 300	/* lines rgt_log_recent() keeps */

/*
 * Append the last RGT_LOG_RING lines logged to @out, oldest first, each
 * "YYYY-MM-DDTHH:MM:SSZ LEVEL: message\n" (UTC). 0, or buf_append's error.
 */
int rgt_log_recent(struct buf *out);

/* Invariant violated: log and abort. Never returns. */
void rgt_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#define RGT_DEBUG_LOG(...)                                                     \
	do {                                                                   \
		if (rgt_log_get_level() >= RGT_DEBUG)                          \
			rgt_log(RGT_DEBUG, __VA_ARGS__);                       \
	} while (0)

#endif
