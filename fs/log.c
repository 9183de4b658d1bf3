/*
 * log.c - leveled logging to stderr, one write(2) per line so lines from
 * different threads never interleave.
 */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum rgt_log_level cur_level = RGT_INFO;

void rgt_log_set_level(enum rgt_log_level level)
{
	cur_level = level;
}

enum rgt_log_level rgt_log_get_level(void)
{
	return cur_level;
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
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
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
