/*
 * http.h - the only interface to libcurl (http.c is the only file that calls
 * curl_easy_*).
 *
 * Every request is bounded: connect timeout, total timeout, a cap on the
 * response body (-EFBIG past it), and a capped number of retries with
 * exponential backoff for transport errors, 429 and 5xx (Retry-After is
 * honoured up to the backoff cap). TLS peer and host verification are always
 * on; there is no switch to turn them off.
 *
 * Threads: http_global_init() runs once in main() before any thread starts.
 * After that, http_do() may be called from any thread (each call uses its own
 * easy handle).
 */
#ifndef RGT_HTTP_H
#define RGT_HTTP_H

#include "buf.h"

struct http_req {
	const char *method;		/* "GET", "DELETE", ... */
	const char *url;		/* never logged if it has a query */
	const char *const *headers;	/* NULL-terminated "Name: value" */
	const char *body;		/* NULL: none */
	size_t body_len;
	long connect_timeout_ms;	/* 0: 10000 */
	long timeout_ms;		/* whole transfer; 0: 30000 */
	size_t max_body;		/* 0: 8 MiB */
	int max_retries;		/* retries after the first try; -1: 0 */
	long backoff_ms;		/* first backoff; 0: 250 */
	long backoff_max_ms;		/* cap per wait; 0: 4000 */
	/*
	 * > 0: a stream (Server-Sent Events). Once a 2xx status has arrived,
	 * the request ends successfully after this many ms of the response
	 * body, or as soon as the body reaches max_body; a body cut either
	 * way is truncated after its last complete line ('\n'), one that the
	 * server ended is kept whole. Not 2xx: an ordinary request. The
	 * connect timeout stays, the total budget is raised to at least
	 * stream_ms + the connect timeout, and a stream is never retried
	 * once its 2xx status arrived. 0: an ordinary request.
	 */
	long stream_ms;
};

struct http_resp {
	long status;		/* last HTTP status, 0 if none arrived */
	struct buf body;	/* the last response body */
	int attempts;		/* how many requests were sent */
};

int http_global_init(void);
void http_global_cleanup(void);

/*
 * Perform @req, retrying as described above. Returns 0 when a response with
 * a final status arrived (any status: the caller judges it), or -errno for a
 * transport failure after the last retry (-ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -EFBIG for an oversized body, -EIO otherwise), with a
 * reason in @err (the URL's query string is never included). @resp must be
 * released with http_resp_cleanup() in every case.
 */
int http_do(const struct http_req *req, struct http_resp *resp, char *err,
	    size_t errlen);
void http_resp_cleanup(struct http_resp *resp);

/* Length of @p up to and including its last '\n' (0 if none). Pure. */
size_t http_complete_lines(const char *p, size_t n);

/* 2xx -> 0, 401/403 -> -EACCES, 404 -> -ENOENT, 429/503 -> -EAGAIN,
 * 408/504 -> -ETIMEDOUT, other -> -EIO. */
int http_status_to_errno(long status);

#endif
