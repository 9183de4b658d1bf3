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

/* The largest reply vastai accepts (list or show), in bytes. */
#define VASTAI_MAX_BODY ((size_t)16 << 20)

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

#endif
