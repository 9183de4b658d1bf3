/*
 * ssh.h - the `ssh` kind: plain SSH hosts from [ssh:NAME] sections
 * (platforms/ssh.c), and its pure parts.
 *
 * ssh_platform_ops is registered in platform.c. Each [ssh:NAME] section is
 * opened on its own and lists exactly one instance, NAME, whose state comes
 * from a bounded probe of the SSH banner (no authentication).
 *
 * Threads: the pure functions are reentrant. A struct platform opened by
 * ssh_platform_ops is used by one thread at a time (platform.h).
 */
#ifndef RGT_SSH_H
#define RGT_SSH_H

#include <stddef.h>

#include "platform.h"

extern const struct platform_ops ssh_platform_ops;

/* The most bytes a probe reads looking for the version line. */
#define SSH_BANNER_MAX 8192

enum ssh_banner {
	SSH_BANNER_MORE = 0,	/* no complete version line yet */
	SSH_BANNER_OK = 1,	/* "SSH-2.0-..." (or "SSH-1.99-...") */
	SSH_BANNER_BAD = -1,	/* not an SSH-2 server */
};

/*
 * Look for the server's identification string in the first @len bytes a
 * server sent (RFC 4253 4.2: lines before it that do not start with "SSH-"
 * are allowed; lines end in CRLF, a bare LF is accepted; a line is at most
 * 255 bytes). Pure.
 * [out] ident  on OK, the version line without its line end, printable
 *              ASCII only (anything else became '?'), truncated to fit
 * [out] why    on BAD, one line saying what was wrong
 * Returns SSH_BANNER_MORE when the bytes so far are a valid prefix (the
 * caller reads more, bounded by SSH_BANNER_MAX and a timeout).
 */
enum ssh_banner ssh_banner_parse(const char *buf, size_t len, char *ident,
				 size_t identlen, char *why, size_t whylen);

/*
 * Keep the last @cap bytes of a stream: append @n bytes of @p to the tail
 * buffer @tail (holding *@tlen bytes, capacity @cap). Pure.
 */
void ssh_tail_append(char *tail, size_t *tlen, size_t cap, const char *p,
		     size_t n);

#endif
