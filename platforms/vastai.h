/*
 * vastai.h - the vast.ai adapter (platforms/vastai.c) and its pure parts.
 *
 * vastai_platform_ops is the adapter registered in platform.c. The
 * functions below do no I/O: they turn vast.ai JSON (and the log API's
 * replies) into rgtfs value types and are what the unit tests exercise
 * with canned replies.
 *
 * Threads: the pure functions are reentrant. A struct platform opened by
 * vastai_platform_ops is used by one thread at a time (platform.h).
 */
#ifndef RGT_VASTAI_H
#define RGT_VASTAI_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
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

/*
 * The log API (PLATFORMS.md 1.2, 8.10): PUT request_logs/{id}/ with
 * {"tail": VASTAI_LOG_TAIL} answers {"success", "result_url", "msg"}; the
 * log is then a plain object at result_url (S3, a different host), which
 * appears after a moment. log() polls it for at most VASTAI_LOG_WAIT_MS,
 * reads at most VASTAI_LOG_BODY_MAX of it and gives at most VASTAI_LOG_MAX
 * (the newest whole lines).
 */
#define VASTAI_LOG_TAIL "1000"
#define VASTAI_LOG_WAIT_MS 8000L
#define VASTAI_LOG_BODY_MAX ((size_t)16 << 20)
#define VASTAI_LOG_MAX ((size_t)8 << 20)
/* The longest result_url accepted (presigned URLs run to a few KB). */
#define VASTAI_URL_MAX 8192

/*
 * Check a result_url before anything is sent to it: an absolute http(s) URL
 * of printable ASCII, at most VASTAI_URL_MAX bytes, no user:password@, a
 * host and an optional port 1..65535; https:// unless the host is loopback
 * (127.0.0.0/8, ::1, localhost), the rule api_url follows. Its host goes
 * into @host (for messages: a URL's path and query never appear in one).
 * Returns 0 or -EINVAL with a reason in err that does not quote the URL.
 */
int vastai_result_url_check(const char *url, char *host, size_t hostlen,
			    char *err, size_t errlen);

/*
 * Parse the reply to PUT request_logs/{id}/. It must be a JSON object with
 * "success": true and a string "result_url" that passes
 * vastai_result_url_check(); the URL goes to *result_url (malloc'd) and its
 * host to @host. Returns 0; -EIO for "success": false (the vendor's msg,
 * one line, in err); -EBADMSG for anything else (not JSON, no "success":
 * true, result_url missing, not a string, empty or holding a NUL); -EINVAL
 * for a result_url the check refuses; -EFBIG past VASTAI_MAX_BODY; -ENOMEM.
 * err never holds the URL's path or query. The caller masks the key.
 */
int vastai_parse_log_reply(const char *body, size_t len, char **result_url,
			   char *host, size_t hostlen, char *err,
			   size_t errlen);

/*
 * Append the log object's bytes to @out as they are, or, when they do not
 * fit in min(VASTAI_LOG_MAX, room left in @out), the newest whole lines
 * that do (cut after a '\n'). Returns 0 or -ENOMEM.
 */
int vastai_log_text(const char *body, size_t len, struct buf *out);

#endif
