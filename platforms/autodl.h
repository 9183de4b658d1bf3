/*
 * autodl.h - the AutoDL Pro developer-API adapter (platforms/autodl.c) and
 * its pure parts.
 *
 * autodl_platform_ops is the adapter registered in platform.c. The
 * functions below do no I/O: they turn AutoDL replies into rgtfs value
 * types and are what the unit tests exercise with canned replies.
 *
 * Threads: the pure functions are reentrant. A struct platform opened by
 * autodl_platform_ops is used by one thread at a time (platform.h).
 */
#ifndef RGT_AUTODL_H
#define RGT_AUTODL_H

#include <stdbool.h>
#include <stddef.h>

#include "platform.h"

/* The largest reply accepted (one list page or one verb reply), bytes. */
#define AUTODL_MAX_BODY ((size_t)8 << 20)
/* Instances asked for per list page. */
#define AUTODL_PAGE_SIZE 50
/* Pages followed in one list at most: more is an error, never a hang. */
#define AUTODL_MAX_PAGES 200

extern const struct platform_ops autodl_platform_ops;

/*
 * Normalized state of an AutoDL Pro "status" string (PLATFORMS.md 7):
 * creating/starting -> provisioning, running, shutting_down/shutdown ->
 * stopped, releasing/released -> destroying, anything else (or NULL) ->
 * unknown. Never GONE: a listed instance is not gone.
 */
enum rgt_state autodl_map_state(const char *status);

/* One parsed page of POST /api/v1/dev/instance/pro/list. */
struct autodl_page {
	long page_index;	/* as the reply says (or as asked, if absent) */
	long max_page;		/* the reply's max_page */
	long result_total;	/* the reply's result_total; -1 if absent */
};

/*
 * Parse one list page. @want_page is the page_index that was asked for:
 * a reply for another page is refused (a server that ignores paging would
 * otherwise send page 1 forever).
 * [in]  body, len   the reply (need not be NUL-terminated)
 * [in]  ssh_user    recorded in each info_json's "rgtfs" object (NULL: root)
 * [out] out         this page's instances, appended (out->n grows); the
 *                   caller frees with rgt_instance_list_free()
 * [out] raw         if not NULL, the raw status of each appended instance,
 *                   malloc'd, parallel to the appended entries (grown with
 *                   out); the caller frees each and the array
 * [out] pg          page_index / max_page / result_total
 * [out] skipped     how many entries of this page were malformed
 * [out] err         the reason on failure; on success a note or ""
 * Returns 0, -EBADMSG (not JSON, truncated, no data/list/max_page, wrong
 * page), -EIO (code != "Success"; the code and msg sanitised into err),
 * -EFBIG, -ENOMEM.
 */
int autodl_parse_page(const char *body, size_t len, const char *ssh_user,
		      long want_page, struct rgt_instance_list *out,
		      char ***raw, struct autodl_page *pg, size_t *skipped,
		      char *err, size_t errlen);

/*
 * Judge the reply to a verb (power_off, release): 0 only for a JSON object
 * with "code": "Success". -EIO for another code (an explicit refusal; the
 * code and msg go to err), -EBADMSG for anything that is not a JSON object
 * with a string "code" (the verb's outcome is then unknown).
 */
/*
 * The root_password of an instance snapshot reply into *out (malloc'd;
 * the caller wipes it); jansson's copy of it is wiped. -ENOENT
 * when it has none. Pure.
 */
int autodl_parse_password(char *body, size_t len, char **out, char *err,
			  size_t errlen);
int autodl_check_reply(const char *body, size_t len, const char *what,
		       char *err, size_t errlen);

#endif
