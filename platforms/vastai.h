/*
 * vastai.h - the vast.ai adapter (platforms/vastai.c) and its pure parts.
 *
 * vastai_platform_ops is the adapter registered in platform.c. The two
 * functions below do no I/O: they turn vast.ai JSON into rgtfs value types
 * and are what the unit tests exercise with canned replies.
 *
 * Threads: the pure functions are reentrant. A struct platform opened by
 * vastai_platform_ops is used by one thread at a time (platform.h).
 */
#ifndef RGT_VASTAI_H
#define RGT_VASTAI_H

#include <jansson.h>
#include <stddef.h>

#include "platform.h"

/* The largest reply vastai accepts (list page, list or show), in bytes. */
#define VASTAI_MAX_BODY ((size_t)16 << 20)
/* The longest v1 page cursor (next_token) followed, in bytes. */
#define VASTAI_TOKEN_MAX 4096
/* Instances asked for per v1 page (the API allows 1..25). */
#define VASTAI_PAGE_LIMIT 25
/* v1 pages followed in one list at most: more is an error, not a hang. */
#define VASTAI_MAX_PAGES 400

extern const struct platform_ops vastai_platform_ops;

/*
 * Normalized state of one vast.ai instance object (PLATFORMS.md section 7).
 * [in] inst  an instance object (borrowed; anything else gives UNKNOWN).
 * Never returns RGT_ST_GONE: an instance that is listed is not gone.
 */
enum rgt_state vastai_map_state(json_t *inst);

/*
 * Parse a list reply ({"instances": [...]}) or a show reply
 * ({"instances": {...}} or {"instances": null}) into @out.
 * [in]  body, len  the reply body (need not be NUL-terminated)
 * [in]  ssh_user   recorded in each info_json's "rgtfs" object (NULL: root)
 * [out] out        filled on success (rgt_instance_list_free() it); left
 *                  empty on failure
 * [out] err        on failure the reason; on success "" or a note about
 *                  entries that were skipped as malformed (the rest of the
 *                  list is still returned)
 * Returns 0, -EBADMSG (not JSON, truncated, not an object, no "instances"),
 * -EIO ({"success": false, "msg": ...}; msg sanitised into err), -EFBIG
 * (longer than VASTAI_MAX_BODY), -ENOMEM.
 */
int vastai_parse_instances(const char *body, size_t len, const char *ssh_user,
			   struct rgt_instance_list *out, char *err,
			   size_t errlen);

/*
 * Parse one page of the paged v1 list, GET /api/v1/instances/:
 * {"success", "instances_found", "total_instances", "label_counts",
 *  "next_token", "instances": [...]} ([3p] shapes, PLATFORMS.md 1.2).
 * [out] out         this page's instances (rgt_instance_list_free() it);
 *                   out->complete says whether every entry was understood
 * [out] next_token  the cursor for the next page, malloc'd, or NULL when
 *                   this is the last page (next_token null, "" or absent)
 * Returns as vastai_parse_instances(), plus -EBADMSG for a single object
 * under "instances" or a next_token that is not a string of printable
 * ASCII of at most VASTAI_TOKEN_MAX bytes, and -EIO for
 * {"success": false} (the caller may fall back to v0).
 */
int vastai_parse_page(const char *body, size_t len, const char *ssh_user,
		      struct rgt_instance_list *out, char **next_token,
		      char *err, size_t errlen);

#endif
