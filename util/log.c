/*
 * log.c - leveled logging: to stderr, one write(2) per line so lines from
 * different threads never interleave; or, once the daemon has detached
 * (stderr is /dev/null then), to syslog as "rgtfs[PID]", facility daemon,
 * one syslog() call per message, like sshfs.
 */
#include "log.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

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

static void vlog(enum rgt_log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = {
		[RGT_ERR] = "error", [RGT_WARN] = "warn",
		[RGT_INFO] = "info", [RGT_DEBUG] = "debug",
	};
	char line[1024];
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
