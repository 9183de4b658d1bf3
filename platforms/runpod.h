/*
 * runpod.h - the RunPod adapter (platforms/runpod.c) and its pure parts.
 *
 * runpod_platform_ops is the adapter registered in platform.c. The two
 * functions below do no I/O: they turn RunPod REST v2 JSON into rgtfs value
 * types and are what the unit tests exercise with canned replies.
 *
 * Threads: the pure functions are reentrant. A struct platform opened by
 * runpod_platform_ops is used by one thread at a time (platform.h).
 */
#ifndef RGT_RUNPOD_H
#define RGT_RUNPOD_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "platform.h"

/* The largest reply the adapter accepts, in bytes. */
#define RUNPOD_MAX_BODY ((size_t)16 << 20)

extern const struct platform_ops runpod_platform_ops;

/*
 * Normalized state of one v2 pod object (PLATFORMS.md section 7).
 * [in] pod  a pod object (borrowed; anything else gives UNKNOWN).
 * TERMINATED gives RGT_ST_GONE (the parser then leaves the pod out).
 */
enum rgt_state runpod_map_state(json_t *pod);

/*
 * Parse a GET /v2/pods reply ({"pods": [...]}) into @out.
 * [in]  body, len  the reply body (need not be NUL-terminated)
 * [in]  ssh_user   recorded in each info_json's "rgtfs" object (NULL: root)
 * [out] out        filled on success (rgt_instance_list_free() it); left
 *                  empty on failure. TERMINATED pods are not listed.
 * [out] err        on failure the reason; on success "" or a note about
 *                  entries skipped as malformed (out->complete is false)
 * Returns 0, -EBADMSG (not JSON, truncated, no "pods" list, "pods": null,
 * a bare array), -EIO (an RFC 9457 problem or {"errors": [...]} body, its
 * message sanitised into err), -EFBIG, -ENOMEM.
 */
int runpod_parse_pods(const char *body, size_t len, const char *ssh_user,
		      struct rgt_instance_list *out, char *err, size_t errlen);

/* The largest rendered log log() gives, and how long it listens. */
#define RUNPOD_LOG_MAX ((size_t)1 << 20)
#define RUNPOD_LOG_STREAM_MS 2000L

/*
 * Render a GET /v2/pods/{id}/logs Server-Sent Events body as text: one
 * "TS SOURCE LINE\n" per event whose data is {"ts","source","line"}, each
 * field escaped (rpath_escape) so that no event can forge a line. Comments,
 * id:, event:, retry: and blank lines are skipped; CRLF is accepted; an
 * event still open at the end of @body is taken (the stream was cut).
 * At most min(RUNPOD_LOG_MAX, room left in @out) bytes are appended: the
 * newest whole lines that fit.
 * Returns 0; -EBADMSG when the body is not an event stream or no event in
 * it could be read (reason in err); -ENOMEM.
 */
int runpod_parse_logs(const char *body, size_t len, struct buf *out,
		      char *err, size_t errlen);

#endif
