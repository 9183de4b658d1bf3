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

/* 2xx -> 0, 401/403 -> -EACCES, 404 -> -ENOENT, 429/503 -> -EAGAIN,
 * 408/504 -> -ETIMEDOUT, other -> -EIO. */
int http_status_to_errno(long status);

#endif
