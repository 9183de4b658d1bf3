/*
 * lambda.h - the Lambda Cloud adapter (platforms/lambda.c) and its pure
 * parts.
 *
 * lambda_platform_ops is the adapter registered in platform.c. The
 * functions below do no I/O: they turn Lambda's JSON into rgtfs value types
 * and are what tests/unit/test_lambda.c exercises with canned replies.
 *
 * Threads: the pure functions are reentrant. A struct platform opened by
 * lambda_platform_ops is used by one thread at a time (platform.h).
 */
#ifndef RGT_LAMBDA_H
#define RGT_LAMBDA_H

#include <jansson.h>
#include <stddef.h>

#include "platform.h"

struct buf;

/* The largest reply accepted, in bytes. */
#define LAMBDA_MAX_BODY ((size_t)8 << 20)

extern const struct platform_ops lambda_platform_ops;

/*
 * Normalized state of one Lambda instance object (PLATFORMS.md section 7).
 * RGT_ST_GONE only for "terminated" (the caller leaves it out of the list);
 * anything unexpected is RGT_ST_UNKNOWN.
 */
enum rgt_state lambda_map_state(json_t *inst);

/*
 * Parse a list reply ({"data": [Instance, ...]}) into @out.
 * [in]  body, len  the reply body (need not be NUL-terminated)
 * [in]  ssh_user   the login of every endpoint (NULL: "ubuntu")
 * [out] out        filled on success (rgt_instance_list_free() it)
 * [out] err        the reason on failure; on success "" or a note about
 *                  entries skipped as malformed (then out->complete is false)
 * Returns 0, -EBADMSG (not JSON, no "data" list, null), -EIO (an
 * {"error": {...}} body, even with HTTP 200), -EFBIG, -ENOMEM.
 */
int lambda_parse_instances(const char *body, size_t len, const char *ssh_user,
			   struct rgt_instance_list *out, char *err,
			   size_t errlen);

/*
 * What keeps billing after @inst is terminated: one line per attached
 * file system (file_system_names), appended to @out. 0, -EFBIG, -ENOMEM.
 */
int lambda_orphan_lines(json_t *inst, struct buf *out);

/*
 * Check a terminate reply for @id: 0 if {"data": {"terminated_instances":
 * [...]}} names it; -EIO for an error body (*refused set), -EBADMSG
 * otherwise.
 */
int lambda_parse_terminate(const char *body, size_t len, const char *id,
			   bool *refused, char *err, size_t errlen);

#endif
