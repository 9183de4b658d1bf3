/*
 * paperspace.h - the Paperspace (Core machines) adapter
 * (platforms/paperspace.c) and its pure parts.
 *
 * paperspace_platform_ops is the adapter registered in platform.c. The
 * functions below do no I/O: they turn Paperspace JSON into rgtfs value
 * types and are what tests/unit/test_paperspace.c exercises.
 *
 * Threads: the pure functions are reentrant. A struct platform opened by
 * paperspace_platform_ops is used by one thread at a time (platform.h).
 */
#ifndef RGT_PAPERSPACE_H
#define RGT_PAPERSPACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "platform.h"

struct buf;

/* The largest reply accepted (one page), in bytes. */
#define PAPERSPACE_MAX_BODY ((size_t)8 << 20)
/* Machines asked for per page, and the most pages one list follows. */
#define PAPERSPACE_PAGE_LIMIT 100
#define PAPERSPACE_MAX_PAGES 50
/* The longest page cursor accepted. */
#define PAPERSPACE_CURSOR_MAX 512

extern const struct platform_ops paperspace_platform_ops;

/*
 * Normalized state of one machine (PLATFORMS.md section 7). A machine with
 * dtDeleted set that is still listed is RGT_ST_DESTROYING (listed is never
 * gone); an unexpected state is RGT_ST_UNKNOWN.
 */
enum rgt_state paperspace_map_state(json_t *m);

/*
 * Parse one page of GET /machines ({"hasMore", "items", "nextPage"}),
 * appending to @out (which may already hold earlier pages).
 * [in]  ssh_user   the login of every endpoint (NULL: "paperspace")
 * [out] more       whether the page says more follow
 * [out] cursor     nextPage (PAPERSPACE_CURSOR_MAX bytes), "" if none
 * [out] skipped    += entries skipped as malformed (first reason in err)
 * Returns 0, -EBADMSG (not JSON, no "items" list, hasMore without a
 * usable nextPage), -EIO (an error body, even with HTTP 200), -EFBIG,
 * -ENOMEM.
 */
int paperspace_parse_page(const char *body, size_t len, const char *ssh_user,
			  struct rgt_instance_list *out, bool *more,
			  char cursor[PAPERSPACE_CURSOR_MAX], size_t *skipped,
			  char *err, size_t errlen);

/* The static IP that keeps billing after @m is deleted, one line, into
 * @out (nothing for a dynamic IP). 0, -EFBIG, -ENOMEM. */
int paperspace_orphan_lines(json_t *m, struct buf *out);

/*
 * Append the snapshots of machine @id found in one page of GET /snapshots
 * to @out, one line each. Same paging outputs as paperspace_parse_page().
 */
int paperspace_parse_snapshots(const char *body, size_t len, const char *id,
			       struct buf *out, bool *more,
			       char cursor[PAPERSPACE_CURSOR_MAX], char *err,
			       size_t errlen);

/* 0 if a DELETE reply ({"data": Machine}) names machine @id, else -EBADMSG
 * (or -EIO for an error body, with *refused set). */
int paperspace_parse_delete(const char *body, size_t len, const char *id,
			    bool *refused, char *err, size_t errlen);

#endif
