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
 * easy handle, unless the request names a struct http_conn: that one is
 * used by one thread at a time, the caller serialises).
 *
 * Optional, all off when the fields are zero (existing callers are
 * unchanged): capture of named response headers (want_headers), one
 * reusable keep-alive connection per caller (conn), an extra CA file
 * (ca_file), and a PUT body sent as an upload from memory.
 */
#ifndef RGT_HTTP_H
#define RGT_HTTP_H

#include <stdbool.h>
#include <sys/uio.h>

#include "buf.h"

/* Most response headers a request may ask for, and the longest value kept
 * (longer values are cut to this many bytes minus one). */
#define HTTP_WANT_MAX 12
#define HTTP_HDR_VALUE_MAX 1024

/*
 * A reusable connection: one curl easy handle whose live connection (and
 * TLS session) successive requests reuse, so a stream of ranged GETs to one
 * host pays one TCP/TLS handshake, not one per request. Options are reset
 * before every request, so nothing of one request's settings (headers,
 * method, body) survives into the next; only the connection does.
 * Used by one thread at a time.
 */
struct http_conn;

/* NULL on out of memory. */
struct http_conn *http_conn_new(void);
/* Close the connection and free it; NULL is a no-op. */
void http_conn_free(struct http_conn *c);

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
	/*
	 * A redirect is an answer, not followed: signed requests (S3) name
	 * their host in the signature, and a 301 there means the wrong
	 * region or endpoint, which the caller should say.
	 */
	bool no_redirects;
	/*
	 * NULL-terminated names of response headers to keep (at most
	 * HTTP_WANT_MAX, compared case-insensitively), read back with
	 * http_resp_header(). Only the final response's headers are kept
	 * (not those of a redirect or a 100 Continue). NULL: none.
	 */
	const char *const *want_headers;
	/*
	 * An extra CA bundle (PEM) trusted besides the system's CA
	 * directory, for endpoints behind a private CA. Verification stays
	 * on either way. NULL: the system's CAs only.
	 */
	const char *ca_file;
	/* Reuse this connection (see struct http_conn). NULL: a fresh
	 * handle per attempt, as before. */
	struct http_conn *conn;
	/*
	 * The body exactly as sent: no Accept-Encoding offered and no
	 * Content-Encoding decoded. For byte ranges of stored objects (an
	 * S3 object uploaded with Content-Encoding: gzip must come back as
	 * its stored bytes, or ranges and lengths stop adding up).
	 */
	bool identity;
	/*
	 * A 206 (Partial Content) body goes straight into these buffers, in
	 * order, instead of into resp->body: a byte range lands in the
	 * caller's memory with no copy between. Bytes past their total are
	 * counted in resp->into_len but dropped. Any other status's body
	 * goes to resp->body as usual. A retry writes them again from the
	 * start. The buffers may hold part of a body that the caller then
	 * rejects (wrong Content-Range, a failed attempt): only a response
	 * the caller accepted makes them meaningful. NULL: none.
	 */
	const struct iovec *into;
	int into_cnt;
};

struct http_resp {
	long status;		/* last HTTP status, 0 if none arrived */
	struct buf body;	/* the last response body */
	int attempts;		/* how many requests were sent */
	size_t into_len;	/* (into) bytes of the last 206 body */
	/* (want_headers) the values, by index into want_headers; NULL:
	 * absent. Owned; freed by http_resp_cleanup(). */
	const char *const *want;
	char *hdr[HTTP_WANT_MAX];
};

int http_global_init(void);
void http_global_cleanup(void);

/*
 * Perform @req, retrying as described above. A "PUT" with a body sends it
 * as an upload (Content-Length, no form encoding, no Expect: 100-continue),
 * rewound for every retry. Returns 0 when a response with
 * a final status arrived (any status: the caller judges it), or -errno for a
 * transport failure after the last retry (-ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -EFBIG for an oversized body, -EIO otherwise), with a
 * reason in @err (the URL's query string is never included). @resp must be
 * released with http_resp_cleanup() in every case.
 */
int http_do(const struct http_req *req, struct http_resp *resp, char *err,
	    size_t errlen);
void http_resp_cleanup(struct http_resp *resp);

/*
 * Value of response header @name (one of the request's want_headers,
 * case-insensitive), trimmed; NULL when the response had none or @name was
 * not asked for. Borrowed from @resp until http_resp_cleanup().
 */
const char *http_resp_header(const struct http_resp *resp, const char *name);

/* Length of @p up to and including its last '\n' (0 if none). Pure. */
size_t http_complete_lines(const char *p, size_t n);

/* 2xx -> 0, 401/403 -> -EACCES, 404 -> -ENOENT, 429/503 -> -EAGAIN,
 * 408/504 -> -ETIMEDOUT, other -> -EIO. */
int http_status_to_errno(long status);

#endif
