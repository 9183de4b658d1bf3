/*
 * http.c - the only file that calls curl_easy_* (see http.h).
 *
 * One call of http_do() is one logical request: a fresh easy handle per
 * attempt, so nothing (cookies, connections, auth state) leaks between
 * calls or threads. The response body goes into a struct buf whose cap is
 * the caller's max_body; the write callback aborts the transfer the moment
 * the cap is passed, and CURLOPT_MAXFILESIZE refuses an announced
 * Content-Length past it before a byte is read.
 *
 * DESIGN
 *
 * - Bounded in time as a whole. timeout_ms is the budget of the entire call,
 *   retries and backoff waits included: every attempt gets only what is left
 *   of it, and a wait that would not leave room for another attempt ends the
 *   retry loop. A caller (the platform poller) therefore knows the worst case
 *   of one http_do() without multiplying by max_retries.
 * - Retries: transport failures that may be transient (timeout, refused or
 *   reset connection, empty reply, resolver failure), HTTP 429 and HTTP 5xx.
 *   Never for TLS verification failures, bad URLs, oversized bodies or
 *   4xx other than 429: those do not get better by asking again. The wait
 *   starts at backoff_ms and grows by a jittered factor of 1.5 to 2 per
 *   retry (jitter keeps many pollers from retrying in lockstep), capped at
 *   backoff_max_ms; a Retry-After header (seconds or a date, as curl parses
 *   it) lengthens the wait, still up to the cap. Whether a request may be
 *   retried at all is the caller's decision: max_retries = 0 for anything
 *   that must not be sent twice blindly (a destroy).
 * - TLS: CURLOPT_SSL_VERIFYPEER = 1 and CURLOPT_SSL_VERIFYHOST = 2 are set
 *   explicitly on every handle, and nothing in this file can clear them.
 * - Protocols: http and https only. Redirects are followed (at most 3,
 *   because some APIs redirect to a trailing-slash form) but only to https,
 *   or to http/https when the request itself was plain http (loopback tests);
 *   curl does not forward a custom Authorization header to another host.
 * - Secrets: the URL's query string and userinfo never reach err or the log
 *   (vendor clients put API keys there). Headers are never logged.
 * - Signals: CURLOPT_NOSIGNAL = 1, as required for a threaded program; name
 *   resolution timeouts then depend on curl's threaded resolver.
 *
 * Threads: curl_global_init() runs in http_global_init(), called once from
 * main() before any thread starts. After that http_do() is reentrant: it
 * touches no shared state.
 *
 * - Streams (req->stream_ms > 0, for Server-Sent Events): the same handle
 *   and options, driven through a private multi handle so that the end of
 *   the stream is timed exactly (curl_easy_perform only wakes about once a
 *   second while a stream is idle). The stream's clock starts when a 2xx
 *   status arrives; at stream_ms, at max_body, or at the attempt's own
 *   deadline after that, the transfer is ended by us and counts as a
 *   complete response holding the complete lines received. No
 *   CURLOPT_MAXFILESIZE then (a stream is cut, not refused). A stream that
 *   has begun is never retried: what it delivered is the answer.
 *
 * - Kept connections (req->conn, opt-in): the caller's struct http_conn
 *   holds one easy handle that is curl_easy_reset() before every attempt,
 *   which clears every option (headers, method, body, callbacks) but keeps
 *   the live connection, the TLS session and the DNS cache. An S3 reader
 *   issuing one 1 MiB ranged GET after another then pays the TCP and TLS
 *   handshakes once. The handle belongs to one thread at a time (the
 *   transport that owns it is used by one thread at a time, xfer.h).
 * - Response headers (req->want_headers, opt-in): read after the transfer
 *   with curl_easy_header() for the last request only (a redirect's or a
 *   100 Continue's headers are not the answer), copied into the response,
 *   each cut at HTTP_HDR_VALUE_MAX.
 * - Extra CA (req->ca_file): CURLOPT_CAINFO names the caller's bundle; the
 *   system CA directory (CURLOPT_CAPATH, curl's build default) still
 *   applies, so the file adds trust and verification stays on.
 * - PUT bodies are sent as an upload (CURLOPT_UPLOAD from memory, with a
 *   seek callback so curl can rewind on a retried or redirected attempt),
 *   so no form Content-Type is added to a signed request.
 *
 * Rejected: a shared connection cache (CURLSH) across calls. One list call
 * per poll interval does not need it, and it would add locking and a place
 * where state from one request survives into the next. The opt-in
 * http_conn gives keep-alive to the one caller that needs it without any
 * sharing between threads.
 */
#include "http.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEF_CONNECT_MS 10000L
#define DEF_TIMEOUT_MS 30000L
#define DEF_MAX_BODY ((size_t)8 << 20)
#define DEF_BACKOFF_MS 250L
#define DEF_BACKOFF_MAX 4000L
#define MAX_REDIRS 3L
/* Do not start an attempt with less than this left of the budget. */
#define MIN_ATTEMPT_MS 100L

struct http_conn {
	CURL *h;
};

struct http_conn *http_conn_new(void)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->h = curl_easy_init();
	if (!c->h) {
		free(c);
		return NULL;
	}
	return c;
}

void http_conn_free(struct http_conn *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->h);
	free(c);
}

int http_global_init(void)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc != CURLE_OK) {
		rgt_log(RGT_ERR, "curl_global_init: %s",
			curl_easy_strerror(rc));
		return -EIO;
	}
	return 0;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

void http_resp_cleanup(struct http_resp *resp)
{
	if (!resp)
		return;
	buf_cleanup(&resp->body);
	resp->status = 0;
	resp->attempts = 0;
	resp->into_len = 0;
	for (int i = 0; i < HTTP_WANT_MAX; i++) {
		free(resp->hdr[i]);
		resp->hdr[i] = NULL;
	}
	resp->want = NULL;
}

const char *http_resp_header(const struct http_resp *resp, const char *name)
{
	if (!resp || !resp->want || !name)
		return NULL;
	for (int i = 0; i < HTTP_WANT_MAX && resp->want[i]; i++)
		if (!strcasecmp(resp->want[i], name))
			return resp->hdr[i];
	return NULL;
}

/*
 * Drop what an earlier attempt left, then (@ok: a response arrived) copy
 * the final response's wanted headers out of @h into @resp.
 */
static void capture_headers(CURL *h, struct http_resp *resp, bool ok)
{
	for (int i = 0; i < HTTP_WANT_MAX; i++) {
		free(resp->hdr[i]);
		resp->hdr[i] = NULL;
	}
	for (int i = 0; ok && resp->want && i < HTTP_WANT_MAX &&
			resp->want[i]; i++) {
		struct curl_header *ch = NULL;
		const char *v, *e;
		size_t n;

		if (curl_easy_header(h, resp->want[i], 0, CURLH_HEADER, -1,
				     &ch) != CURLHE_OK || !ch || !ch->value)
			continue;
		v = ch->value;
		while (*v == ' ' || *v == '\t')
			v++;
		e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		n = e - v;
		if (n >= HTTP_HDR_VALUE_MAX)
			n = HTTP_HDR_VALUE_MAX - 1;
		resp->hdr[i] = strndup(v, n);
	}
}

/* A PUT body sent from memory (CURLOPT_UPLOAD). */
struct upload {
	const char *p;
	size_t len, off;
};

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct upload *u = userdata;
	size_t n = size * nmemb;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(ptr, u->p + u->off, n);
	u->off += n;
	return n;
}

static int seek_cb(void *userdata, curl_off_t offset, int origin)
{
	struct upload *u = userdata;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > u->len)
		return CURL_SEEKFUNC_CANTSEEK;
	u->off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

int http_status_to_errno(long status)
{
	if (status >= 200 && status <= 299)
		return 0;
	switch (status) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 429:
	case 503:
		return -EAGAIN;
	case 408:
	case 504:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/*
 * The one translator from curl's codes to errno. @os_errno is
 * CURLINFO_OS_ERRNO, which tells a refused connection from an unreachable
 * host; @body_rc is what the write callback saw from buf_append().
 */
static int curl_to_errno(CURLcode rc, long os_errno, int body_rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
			return -EHOSTUNREACH;
		if (os_errno == ETIMEDOUT)
			return -ETIMEDOUT;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	case CURLE_WRITE_ERROR:
		return body_rc ? body_rc : -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* Transport failures worth another attempt. */
static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * "scheme://host[:port]/path" of @url: no userinfo, no query, no fragment.
 * This is the only form of a URL that may appear in a message.
 */
static void url_for_log(const char *url, char *out, size_t outlen)
{
	const char *p = url ? url : "";
	const char *auth = strstr(p, "://");
	size_t n = 0;

	if (!outlen)
		return;
	if (auth) {
		const char *host = auth + 3;
		const char *end = host + strcspn(host, "/?#");
		const char *at = memchr(host, '@', end - host);
		size_t sl = host - p;

		if (sl >= outlen)
			sl = outlen - 1;
		memcpy(out, p, sl);
		n = sl;
		p = at ? at + 1 : host;
	}
	while (*p && *p != '?' && *p != '#' && n + 1 < outlen)
		out[n++] = *p++;
	out[n] = '\0';
}

/* curl's own message, cut at anything that could start a query string. */
static void curl_reason(CURLcode rc, const char *errbuf, char *out,
			size_t outlen)
{
	const char *src = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	size_t n = strcspn(src, "?\r\n");

	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, src, n);
	out[n] = '\0';
}

struct sink {
	struct buf *body;
	int rc; /* first buf_append failure, 0 if none */
	bool stream; /* keep what fits under the cap, then note it */
	bool full;   /* (stream) the cap was reached */
	/* (into) a 206 body goes here; decided at its first bytes */
	CURL *h;
	const struct iovec *into;
	int into_cnt;
	int direct;	/* -1 undecided, 0 no, 1 into the buffers */
	int at_iov;	/* the buffer being filled, and how far */
	size_t at_off;
	size_t *into_len;
};

/* Scatter @n bytes of a 206 body into the caller's buffers (see into). */
static void sink_direct(struct sink *s, const char *p, size_t n)
{
	*s->into_len += n;
	while (n && s->at_iov < s->into_cnt) {
		const struct iovec *v = &s->into[s->at_iov];
		size_t room = v->iov_len - s->at_off;
		size_t k = n < room ? n : room;

		memcpy((char *)v->iov_base + s->at_off, p, k);
		p += k;
		n -= k;
		s->at_off += k;
		if (s->at_off == v->iov_len) {
			s->at_iov++;
			s->at_off = 0;
		}
	}
	/* the rest is dropped: more than asked for (bytes=0-1 for one) */
}

size_t http_complete_lines(const char *p, size_t n)
{
	while (n && p[n - 1] != '\n')
		n--;
	return n;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	int rc;

	if (s->direct < 0) {
		long status = 0;

		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		s->direct = status == 206;
	}
	if (s->direct) {
		sink_direct(s, ptr, n);
		return n;
	}
	if (s->stream) {
		size_t room = s->body->max - s->body->len;

		if (s->full)
			return n; /* dropped: the stream ends at the cap */
		if (n > room) {
			s->full = true;
			rc = buf_append(s->body, ptr, room);
		} else {
			rc = buf_append(s->body, ptr, n);
		}
		if (rc) {
			s->rc = rc;
			return 0;
		}
		return n;
	}
	rc = buf_append(s->body, ptr, n);

	if (rc) {
		s->rc = rc;
		return 0; /* != n: curl aborts with CURLE_WRITE_ERROR */
	}
	return n;
}

/* Jittered growth factor in [1.5, 2.0], per-call state: no shared RNG. */
static long next_backoff(long cur, long cap, unsigned int *seed)
{
	long grown = cur + cur / 2 + (long)(rand_r(seed) % (cur / 2 + 1));

	return grown > cap ? cap : grown;
}

struct attempt {
	CURLcode rc;
	long status;
	long os_errno;
	long retry_after_s; /* -1: none */
	int body_rc;
	bool began;	/* (stream) a 2xx status arrived */
	bool cut;	/* (stream) ended by us: time, cap or deadline */
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * Drive @h as a stream (see DESIGN): returns the transfer's result, with
 * at->began and at->cut set. @timeout_ms is the attempt's budget.
 */
static CURLcode perform_stream(CURL *h, struct sink *sink, long stream_ms,
			       long timeout_ms, struct attempt *at)
{
	long t0 = now_ms(), began_at = 0;
	CURLcode rc = CURLE_OK;
	CURLM *m = curl_multi_init();
	int running = 1;

	if (!m)
		return CURLE_OUT_OF_MEMORY;
	if (curl_multi_add_handle(m, h) != CURLM_OK) {
		curl_multi_cleanup(m);
		return CURLE_OUT_OF_MEMORY;
	}
	for (;;) {
		long st = 0, now, wait;

		if (curl_multi_perform(m, &running) != CURLM_OK) {
			rc = CURLE_RECV_ERROR;
			break;
		}
		if (!running) {
			CURLMsg *msg;
			int q;

			while ((msg = curl_multi_info_read(m, &q)))
				if (msg->msg == CURLMSG_DONE)
					rc = msg->data.result;
			break;
		}
		now = now_ms();
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
		if (!at->began && st >= 200 && st <= 299) {
			at->began = true;
			began_at = now;
		}
		if (at->began && (sink->full || now - began_at >= stream_ms ||
				  now - t0 >= timeout_ms)) {
			at->cut = true;
			break;
		}
		if (!at->began && sink->full) {
			rc = CURLE_FILESIZE_EXCEEDED;
			break;
		}
		if (now - t0 >= timeout_ms) {
			rc = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		wait = at->began ? began_at + stream_ms - now : 100;
		if (wait > t0 + timeout_ms - now)
			wait = t0 + timeout_ms - now;
		if (wait > 100)
			wait = 100;
		if (wait < 1)
			wait = 1;
		curl_multi_poll(m, NULL, 0, (int)wait, NULL);
	}
	curl_multi_remove_handle(m, h);
	curl_multi_cleanup(m);
	return rc;
}

/*
 * One request on a fresh handle. Fills @at; returns -ENOMEM only when the
 * handle or the header list cannot be built.
 */
static int attempt_once(const struct http_req *req, struct curl_slist *hdrs,
			bool plain_http, long connect_ms, long timeout_ms,
			size_t max_body, struct http_resp *resp,
			struct attempt *at)
{
	struct buf *body = &resp->body;
	struct sink sink = {body, 0, req->stream_ms > 0, false, NULL,
			    req->into, req->into_cnt, req->into ? -1 : 0,
			    0, 0, &resp->into_len};
	const char *method = req->method ? req->method : "GET";
	struct upload up = {req->body, req->body ? req->body_len : 0, 0};
	curl_off_t ra = -1;
	CURL *h;

	memset(at, 0, sizeof(*at));
	at->retry_after_s = -1;
	buf_reset(body);
	resp->into_len = 0;

	if (req->conn) {
		/* Every option back to its default; the connection stays. */
		h = req->conn->h;
		curl_easy_reset(h);
	} else {
		h = curl_easy_init();
	}
	if (!h)
		return -ENOMEM;
	sink.h = h;

	curl_easy_setopt(h, CURLOPT_URL, req->url);
	/* Large bodies into the caller's buffers: fewer, larger reads. */
	if (req->into)
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, at->errbuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
			 plain_http ? "http,https" : "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION,
			 req->no_redirects ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRS);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	/* A HEAD has no body: its Content-Length is the object's size. */
	if (!sink.stream && strcmp(method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
				 (curl_off_t)max_body);
	if (req->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	if (req->identity)
		curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	else
		curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rgtfs");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	if (hdrs)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	if (!strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(method, "PUT") && req->body) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, &up);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, &up);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)up.len);
	} else {
		/* POSTFIELDS makes curl send the body; CUSTOMREQUEST sets the
		 * verb, also after a redirect. */
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->body ? req->body_len : 0));
		curl_easy_setopt(h, CURLOPT_POSTFIELDS,
				 req->body ? req->body : "");
	}

	if (sink.stream) {
		/* curl's own timer is a backstop: perform_stream() ends the
		 * attempt at timeout_ms itself. */
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms + 1000);
		at->rc = perform_stream(h, &sink, req->stream_ms, timeout_ms,
					at);
		/* A stream that began and then broke off delivered what it
		 * delivered: its complete lines are the answer. */
		if (at->began && (at->rc == CURLE_PARTIAL_FILE ||
				  at->rc == CURLE_RECV_ERROR ||
				  at->rc == CURLE_OPERATION_TIMEDOUT)) {
			at->rc = CURLE_OK;
			at->cut = true;
		}
		if (at->rc == CURLE_OK && at->cut)
			body->len = http_complete_lines(body->data, body->len);
		if (body->data)
			body->data[body->len] = '\0';
	} else {
		at->rc = curl_easy_perform(h);
	}
	at->body_rc = sink.rc;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &at->status);
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &at->os_errno);
	if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra > 0)
		at->retry_after_s = ra > 86400 ? 86400 : (long)ra;
	if (resp->want)
		capture_headers(h, resp, at->rc == CURLE_OK);
	if (req->conn) {
		/* Nothing of ours (headers, error buffer, callback data on
		 * this stack) may stay referenced by the kept handle. */
		curl_easy_reset(h);
	} else {
		curl_easy_cleanup(h);
	}
	return 0;
}

int http_do(const struct http_req *req, struct http_resp *resp, char *err,
	    size_t errlen)
{
	long connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms
						      : DEF_CONNECT_MS;
	long budget_ms = req->timeout_ms > 0 ? req->timeout_ms : DEF_TIMEOUT_MS;
	size_t max_body = req->max_body ? req->max_body : DEF_MAX_BODY;
	int max_retries = req->max_retries > 0 ? req->max_retries : 0;
	long backoff = req->backoff_ms > 0 ? req->backoff_ms : DEF_BACKOFF_MS;
	long backoff_max =
	    req->backoff_max_ms > 0 ? req->backoff_max_ms : DEF_BACKOFF_MAX;
	const char *method = req->method ? req->method : "GET";
	struct curl_slist *hdrs = NULL;
	char where[512], why[CURL_ERROR_SIZE];
	unsigned int seed;
	struct attempt at;
	bool plain_http;
	long start, deadline;
	int rc;

	resp->status = 0;
	resp->attempts = 0;
	resp->want = req->want_headers;
	memset(resp->hdr, 0, sizeof(resp->hdr));
	buf_init(&resp->body, max_body);
	if (err && errlen)
		err[0] = '\0';
	url_for_log(req->url, where, sizeof(where));

	if (!req->url || (strncasecmp(req->url, "http://", 7) != 0 &&
			  strncasecmp(req->url, "https://", 8) != 0)) {
		snprintf(err, errlen, "%s %s: not an http(s) URL", method,
			 where);
		return -EINVAL;
	}
	plain_http = strncasecmp(req->url, "http://", 7) == 0;
	if (backoff_max < backoff)
		backoff_max = backoff;
	if (req->stream_ms > 0 && budget_ms < req->stream_ms + connect_ms)
		budget_ms = req->stream_ms + connect_ms;

	for (const char *const *hp = req->headers; hp && *hp; hp++) {
		struct curl_slist *n;

		/* A CR or LF would let a value start a header of its own. */
		if (strpbrk(*hp, "\r\n")) {
			snprintf(err, errlen,
				 "%s %s: a request header holds "
				 "a line break",
				 method, where);
			rc = -EINVAL;
			goto out_hdrs;
		}
		n = curl_slist_append(hdrs, *hp);
		if (!n)
			goto out_nomem;
		hdrs = n;
	}
	/* No "Expect: 100-continue" round trip for small JSON bodies. */
	if (req->body) {
		struct curl_slist *n = curl_slist_append(hdrs, "Expect:");

		if (!n)
			goto out_nomem;
		hdrs = n;
	}

	start = now_ms();
	deadline = start + budget_ms;
	seed = (unsigned int)start ^ (unsigned int)(uintptr_t)resp;

	for (;;) {
		long left = deadline - now_ms();
		long wait;
		bool again;

		if (left < MIN_ATTEMPT_MS)
			left = MIN_ATTEMPT_MS;
		rc = attempt_once(req, hdrs, plain_http,
				  connect_ms < left ? connect_ms : left, left,
				  max_body, resp, &at);
		if (rc)
			goto out_nomem;
		resp->attempts++;
		resp->status = at.rc == CURLE_OK ? at.status : 0;

		if (at.rc == CURLE_OK)
			again = status_retryable(at.status);
		else
			again = curl_retryable(at.rc);
		if (at.began)
			again = false; /* a stream is never retried mid-body */
		if (!again || resp->attempts > max_retries)
			break;

		wait = backoff;
		if (at.retry_after_s > 0 && at.retry_after_s * 1000 > wait)
			wait = at.retry_after_s * 1000;
		if (wait > backoff_max)
			wait = backoff_max;
		if (now_ms() + wait + MIN_ATTEMPT_MS > deadline)
			break; /* no room for another attempt */
		RGT_DEBUG_LOG("%s %s: attempt %d got %s%ld, retrying in %ld ms",
			      method, where, resp->attempts,
			      at.rc == CURLE_OK ? "HTTP " : "curl error ",
			      at.rc == CURLE_OK ? at.status : (long)at.rc,
			      wait);
		sleep_ms(wait);
		backoff = next_backoff(backoff, backoff_max, &seed);
	}

	if (at.rc == CURLE_OK) {
		rc = 0;
		goto out_hdrs;
	}
	rc = curl_to_errno(at.rc, at.os_errno, at.body_rc);
	if (rc == -EFBIG) {
		snprintf(err, errlen,
			 "%s %s: response body larger than %zu bytes", method,
			 where, max_body);
	} else if (rc == -ETIMEDOUT) {
		snprintf(err, errlen, "%s %s: no answer within %ld ms", method,
			 where, budget_ms);
	} else {
		curl_reason(at.rc, at.errbuf, why, sizeof(why));
		snprintf(err, errlen, "%s %s: %s", method, where, why);
	}
	/* A partial body from a failed transfer is not a response. */
	buf_reset(&resp->body);
	resp->status = 0;
	goto out_hdrs;
out_nomem:
	snprintf(err, errlen, "%s %s: out of memory", method, where);
	rc = -ENOMEM;
out_hdrs:
	curl_slist_free_all(hdrs);
	return rc;
}
