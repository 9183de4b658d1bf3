/*
 * xfer_s3.c - the S3 transport: a bucket (under a root prefix) as a
 * read-only tree, over http.c, signed by sigv4.c, listings read by s3xml.c.
 *
 * The rest of the program sees struct xfer_ops (xfer.h): 0 or -errno, and
 * the reason in x->err.
 *
 * DESIGN
 *	Names: tree path "/a/b" is key PREFIX + "a/b". A directory is a key
 *	prefix ending in '/': "/" is the root prefix itself; any other
 *	directory exists when some key starts with "dir/". A "directory
 *	marker" object whose key equals the listed prefix ("a/" inside "a/")
 *	is not an entry of its own directory. Files are 0444, directories
 *	0555, and everything is read-only.
 *
 *	stat: HEAD the key (size = Content-Length, mtime = Last-Modified,
 *	etag = ETag). On 404, a ListObjectsV2 with prefix "key/" and
 *	max-keys=1 tells an implicit directory from nothing at all.
 *
 *	readdir: ListObjectsV2 (list-type=2, prefix, delimiter "/",
 *	max-keys=1000, encoding-type=url so that AWS can send keys XML
 *	cannot hold; servers that ignore it send raw keys), following
 *	NextContinuationToken to the end. The
 *	whole listing is collected first and only handed to the callback
 *	once it is complete, so a listing that fails on page 7 delivers
 *	nothing rather than six pages that look like a directory. Bounded:
 *	at most max_pages pages and max_entries entries, an error past
 *	either. Keys that cannot be tree names (s3_key_component_ok()) and
 *	keys outside the listed prefix are skipped and counted; the listing
 *	still succeeds and x->err says how many and why the first one was
 *	refused. A name that is both an object and a prefix ("a" and "a/x")
 *	is shown once, as the object (as stat, which HEADs first, sees it),
 *	and counted as skipped. A directory other than "/" whose listing
 *	holds nothing at all (not even its marker object) is -ENOENT: in S3
 *	that is a directory that does not exist.
 *
 *	pread/preadv: one ranged GET per 64 MiB (READ_MAX; reads are
 *	short only at EOF), whose 206 body curl's callback scatters
 *	straight into the caller's buffers (http.h: into) "Range: bytes=A-B"
 *	(never a suffix range: the
 *	test server answers those wrongly), checked before a byte is handed
 *	out: a 206 must carry Content-Range "bytes A-B'/TOTAL" with our A,
 *	a body of exactly B'-A+1 bytes, and (with @expect) TOTAL equal to
 *	the expected size and the ETag equal to the expected one (If-Match
 *	is sent as well, but the comparison here is what counts: the test
 *	server ignores If-Match). Any mismatch of the version is -ESTALE and
 *	nothing is copied. A one-byte read at offset 0 asks for bytes 0-1,
 *	because that test server answers "bytes=0-0" with the whole object.
 *	A 416 at or past the expected size is EOF.
 *
 *	Connection: one struct http_conn per handle, so a reader's ranged
 *	GETs reuse one keep-alive connection. Every request gets the
 *	connect timeout and io_timeout_ms as its whole budget, retries
 *	included (4 retries, 200 ms growing to 2 s: S3's 503 SlowDown and
 *	other 5xx are retried), and a response size cap.
 *
 *	URLs: path-style endpoint/bucket/key or virtual-hosted
 *	bucket.host/key; a bucket URL never gets a trailing slash before its
 *	query ("/bucket?list-type=2"; the test server fails "/bucket/?").
 *	Path and query are encoded by the same functions that build the
 *	canonical request, so the URL sent is the URL signed.
 *
 *	Errors: 403 -EACCES ("access denied (wrong secret or no permission)"
 *	plus the S3 error Code), 404 -ENOENT, 503 after the retries -EAGAIN,
 *	other 5xx -EIO, transport timeouts -ETIMEDOUT. Reasons name the
 *	bucket and path; never a key, a signature, an Authorization header
 *	or a query string.
 *
 * THREADS
 *	A handle is used by one thread at a time (xfer.h); it owns its curl
 *	handle. readdir callbacks run after the listing is complete and may
 *	call back into the same handle.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include "xfer.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include <openssl/crypto.h>

#include "http.h"
#include "log.h"
#include "s3cred.h"
#include "s3xml.h"
#include "sigv4.h"

/* clang-format off */
#define DEF_CONNECT_MS	10000L
#define DEF_IO_MS	30000L
#define DEF_MAX_PAGES	1000L
#define LIST_BUDGET_MS	120000L	/* one whole listing, all its pages */
#define DEF_MAX_ENTRIES	200000L
#define LIST_BODY_MAX	((size_t)4 << 20)	/* one ListObjectsV2 page */
#define ERR_BODY_MAX	((size_t)64 << 10)	/* an error document */
#define RANGE_SLACK	16		/* bytes=0-1 for a 1-byte read */
#define READ_MAX	((size_t)64 << 20)	/* one ranged GET */
#define RETRIES		4
#define BACKOFF_MS	200L
#define BACKOFF_MAX_MS	2000L
#define URL_MAX		(16 * 1024)
#define UPLOAD_FLOOR_BPS	((size_t)2 << 20)	/* upload budget floor */
#define MPU_PARTS_MAX	10000		/* S3's limit */
/* clang-format on */

struct s3_xfer {
	struct xfer base; /* first: xfer.h casts */
	struct http_conn *conn;
	char *origin;	   /* "http://127.0.0.1:9000" or "https://b.host" */
	char *host;	   /* Host header: "127.0.0.1:9000", "b.host" */
	char *bucket_path; /* "/bucket" (path-style) or "" (virtual) */
	char *bucket;
	char *prefix; /* "" or ends in '/' */
	char *region;
	char *ak, *sk, *tok;
	char *ca_file;
	long connect_ms, io_ms;
	long max_pages, max_entries;
};

static struct s3_xfer *to_x(struct xfer *x)
{
	return (struct s3_xfer *)x;
}

__attribute__((format(printf, 3, 4))) static int fail(struct s3_xfer *x, int rc,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->base.err, sizeof(x->base.err), fmt, ap);
	va_end(ap);
	return rc;
}

static void wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* ------------------------------------------------------------------ */
/* names                                                              */

/*
 * Tree path @path ("/", "/a/b") to the key under the root prefix, into
 * @out. @dir: as a directory prefix (ends in '/', or the root prefix).
 * -ENOENT for a path that could never have been listed.
 */
static int path_to_key(struct s3_xfer *x, const char *path, bool dir,
		       struct buf *out)
{
	const char *rel = path;
	size_t n;
	char why[256];
	int rc;

	while (*rel == '/')
		rel++;
	n = strlen(rel);
	while (n && rel[n - 1] == '/')
		n--;
	if (n && !s3_key_component_ok(rel, n, why, sizeof(why)))
		return fail(x, -ENOENT, "%s: not an object name (%s)",
			    x->bucket, why);
	rc = buf_append(out, x->prefix, strlen(x->prefix));
	if (!rc && n)
		rc = buf_append(out, rel, n);
	if (!rc && dir && n)
		rc = buf_append(out, "/", 1);
	if (!rc && out->len > S3_KEY_MAX)
		rc = -ENAMETOOLONG;
	if (rc)
		return fail(x, rc == -ENOMEM ? rc : -ENAMETOOLONG,
			    "%s: key longer than 1024 bytes", x->bucket);
	return 0;
}

/* ------------------------------------------------------------------ */
/* requests                                                           */

struct s3_call {
	const char *method;
	const char *key; /* NULL: the bucket itself */
	const struct sigv4_kv *query;
	size_t nquery;
	const struct sigv4_kv *extra; /* signed and sent */
	size_t nextra;
	const char *const *want;
	size_t max_body;
	const void *body; /* PUT: signed by its SHA-256 */
	size_t body_len;
	long timeout_ms; /* 0: the handle's io_timeout (uploads: scaled) */
	const struct iovec *into; /* a 206 body goes here (http.h) */
	int into_cnt;
};

/*
 * Sign and send one request. 0 when a response arrived (any status: in
 * resp->status), or -errno for a transport failure (reason in x->err).
 */
static int s3_do(struct s3_xfer *x, const struct s3_call *c,
		 struct http_resp *resp)
{
	struct sigv4_kv sh[SIGV4_MAX_HEADERS];
	const char *hdr[SIGV4_MAX_HEADERS + 8];
	struct buf url, path;
	struct sigv4_creds cr = {x->ak, x->sk, x->tok};
	struct sigv4_out so;
	struct http_req req = {0};
	size_t nh = 0, nhdr = 0;
	char err[256], date_h[64], sha_h[96];
	char *auth_h = NULL, *tok_h = NULL, *host_h = NULL;
	char *extra_h[SIGV4_MAX_HEADERS] = {0};
	int rc;

	memset(resp, 0, sizeof(*resp));
	buf_init(&url, URL_MAX);
	buf_init(&path, URL_MAX);
	memset(&so, 0, sizeof(so));

	rc = buf_append(&path, x->bucket_path, strlen(x->bucket_path));
	if (!rc && c->key) {
		rc = buf_append(&path, "/", 1);
		if (!rc)
			rc = buf_append(&path, c->key, strlen(c->key));
	}
	if (!rc && !path.len)
		rc = buf_append(&path, "/", 1);
	if (rc) {
		rc = fail(x, -ENAMETOOLONG, "%s: request path too long",
			  x->bucket);
		goto out;
	}

	sh[nh++] = (struct sigv4_kv){"Host", x->host};
	for (size_t i = 0; i < c->nextra && nh < SIGV4_MAX_HEADERS; i++)
		sh[nh++] = c->extra[i];
	struct sigv4_req sr = {
	    .method = c->method,
	    .path = path.data,
	    .query = c->query,
	    .nquery = c->nquery,
	    .headers = sh,
	    .nheaders = nh,
	    /* no body: not signed (the bytes come back checked by their
	     * ETag and length); a body: its SHA-256, which S3 verifies */
	    .payload_hash = c->body ? NULL : SIGV4_UNSIGNED_PAYLOAD,
	    .body = c->body,
	    .body_len = c->body_len,
	    .region = x->region,
	    .service = "s3",
	};
	rc = sigv4_sign(&sr, &cr, time(NULL), &so, err, sizeof(err));
	if (rc) {
		rc = fail(x, rc, "%s: cannot sign the request (%s)", x->bucket,
			  err);
		goto out;
	}

	/* The URL: exactly what was signed. */
	rc = buf_append(&url, x->origin, strlen(x->origin));
	if (!rc)
		rc = sigv4_canonical_uri(&url, path.data);
	if (!rc && c->nquery) {
		rc = buf_append(&url, "?", 1);
		if (!rc)
			rc = sigv4_canonical_query(&url, c->query, c->nquery);
	}
	if (rc) {
		rc = fail(x, -ENAMETOOLONG, "%s: URL too long", x->bucket);
		goto out;
	}

	if (asprintf(&host_h, "Host: %s", x->host) < 0)
		host_h = NULL;
	if (asprintf(&auth_h, "Authorization: %s", so.authorization) < 0)
		auth_h = NULL;
	if (x->tok && asprintf(&tok_h, "x-amz-security-token: %s", x->tok) < 0)
		tok_h = NULL;
	if (!host_h || !auth_h || (x->tok && !tok_h)) {
		rc = fail(x, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(date_h, sizeof(date_h), "x-amz-date: %s", so.amz_date);
	snprintf(sha_h, sizeof(sha_h), "x-amz-content-sha256: %s",
		 so.content_sha256);
	hdr[nhdr++] = host_h;
	hdr[nhdr++] = auth_h;
	hdr[nhdr++] = date_h;
	hdr[nhdr++] = sha_h;
	if (tok_h)
		hdr[nhdr++] = tok_h;
	for (size_t i = 0; i < c->nextra && i < SIGV4_MAX_HEADERS; i++) {
		if (asprintf(&extra_h[i], "%s: %s", c->extra[i].name,
			     c->extra[i].value) < 0) {
			extra_h[i] = NULL;
			rc = fail(x, -ENOMEM, "out of memory");
			goto out;
		}
		hdr[nhdr++] = extra_h[i];
	}
	hdr[nhdr] = NULL;

	req.method = c->method;
	req.url = url.data;
	req.headers = hdr;
	/* never carry a signed request (or its session token) elsewhere */
	req.no_redirects = true;
	req.connect_timeout_ms = x->connect_ms;
	req.timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : x->io_ms;
	req.max_body = c->max_body;
	req.max_retries = RETRIES;
	req.backoff_ms = BACKOFF_MS;
	req.backoff_max_ms = BACKOFF_MAX_MS;
	req.want_headers = c->want;
	req.ca_file = x->ca_file;
	req.conn = x->conn;
	req.identity = true;
	req.body = c->body;
	req.body_len = c->body_len;
	req.into = c->into;
	req.into_cnt = c->into_cnt;
	rc = http_do(&req, resp, err, sizeof(err));
	if (rc)
		fail(x, rc, "%s: %s", x->bucket, err);
out:
	wipe_free(auth_h);
	wipe_free(tok_h);
	free(host_h);
	for (size_t i = 0; i < SIGV4_MAX_HEADERS; i++)
		free(extra_h[i]);
	sigv4_out_cleanup(&so);
	buf_cleanup(&url);
	buf_cleanup(&path);
	return rc;
}

/*
 * The one place an S3 answer that is not a success becomes an errno, with
 * the reason: @what is "stat PATH", "list PATH", "read PATH".
 */
static int s3_status_fail(struct s3_xfer *x, const struct http_resp *resp,
			  const char *what)
{
	char code[64], msg[160], rid[80];
	const char *id = http_resp_header(resp, "x-amz-request-id");
	long st = resp->status;
	int rc;

	code[0] = msg[0] = rid[0] = '\0';
	if (resp->body.len)
		s3xml_parse_error(resp->body.data, resp->body.len, code,
				  sizeof(code), msg, sizeof(msg));
	if (id)
		s3_escape(id, strlen(id), rid, sizeof(rid));

	switch (st) {
	case 403:
		if (!strcmp(code, "RequestTimeTooSkewed"))
			return fail(x, -EACCES,
				    "%s in bucket %s: refused: this machine's "
				    "clock is more than 15 minutes off "
				    "(RequestTimeTooSkewed)",
				    what, x->bucket);
		return fail(x, -EACCES,
			    "%s in bucket %s: access denied (wrong secret or "
			    "no permission)%s%s%s%s",
			    what, x->bucket, code[0] ? ": " : "", code,
			    rid[0] ? ", request id " : "", rid);
	case 404:
		if (!strcmp(code, "NoSuchBucket"))
			return fail(x, -ENOENT, "%s: no bucket %s", what,
				    x->bucket);
		return fail(x, -ENOENT, "%s in bucket %s: no such object", what,
			    x->bucket);
	case 503:
		return fail(x, -EAGAIN,
			    "%s in bucket %s: server busy (%s), gave up after "
			    "%d attempts",
			    what, x->bucket, code[0] ? code : "HTTP 503",
			    resp->attempts);
	default:
		rc = http_status_to_errno(st); /* 429 -EAGAIN, 504 -ETIMEDOUT */
		if (!rc || rc == -ENOENT || rc == -EACCES)
			rc = -EIO;
		if (st == 301 || st == 307 ||
		    !strcmp(code, "PermanentRedirect") ||
		    !strcmp(code, "AuthorizationHeaderMalformed"))
			return fail(x, -EIO,
				    "%s in bucket %s: HTTP %ld%s%s (wrong "
				    "region or endpoint?)",
				    what, x->bucket, st, code[0] ? " " : "",
				    code);
		return fail(x, rc, "%s in bucket %s: HTTP %ld%s%s%s%s", what,
			    x->bucket, st, code[0] ? " " : "", code,
			    msg[0] ? ": " : "", msg);
	}
}

/* ------------------------------------------------------------------ */
/* open / close                                                       */

static bool bucket_ok(const char *b, bool vhost)
{
	size_t n = 0;

	for (; b && b[n]; n++) {
		char c = b[n];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.')
			continue;
		/* legacy path-style names may hold these too */
		if (!vhost && ((c >= 'A' && c <= 'Z') || c == '_'))
			continue;
		return false;
	}
	return n >= 1 && n <= 255 && (!vhost || n <= 63);
}

/*
 * Split @ep into scheme and authority; only "http(s)://host[:port]" with an
 * optional trailing '/'. @auth gets malloc'd "host[:port]".
 */
static int parse_endpoint(const char *ep, const char **scheme, char **auth)
{
	const char *h, *e;

	if (!strncasecmp(ep, "https://", 8)) {
		*scheme = "https://";
		h = ep + 8;
	} else if (!strncasecmp(ep, "http://", 7)) {
		*scheme = "http://";
		h = ep + 7;
	} else {
		return -EINVAL;
	}
	e = h + strcspn(h, "/?#@ \t\r\n");
	if (e == h || (*e && strcmp(e, "/")))
		return -EINVAL;
	*auth = strndup(h, e - h);
	return *auth ? 0 : -ENOMEM;
}

static void s3_close(struct xfer *xb);

static int s3_open(const struct xfer_params *p, struct xfer **out, char *err,
		   size_t errlen)
{
	const struct xfer_s3_params *s = p ? p->s3 : NULL;
	const char *scheme;
	char *auth = NULL;
	struct s3_xfer *x;
	size_t pl;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!s || !s->endpoint || !s->bucket || !s->creds ||
	    !s->creds->access_key || !s->creds->secret_key) {
		if (err && errlen)
			snprintf(err, errlen,
				 "s3: endpoint, bucket and credentials are "
				 "required");
		return -EINVAL;
	}
	if (!bucket_ok(s->bucket, s->virtual_hosted)) {
		if (err && errlen)
			snprintf(err, errlen, "s3: bad bucket name");
		return -EINVAL;
	}
	rc = parse_endpoint(s->endpoint, &scheme, &auth);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen,
				 "s3: endpoint must be http(s)://host[:port] "
				 "(no path, user or query)");
		return rc;
	}
	s3xml_init();
	x = calloc(1, sizeof(*x));
	if (!x) {
		free(auth);
		return -ENOMEM;
	}
	x->base.ops = &xfer_s3_ops;
	x->connect_ms =
	    p->connect_timeout_ms > 0 ? p->connect_timeout_ms : DEF_CONNECT_MS;
	x->io_ms = p->io_timeout_ms > 0 ? p->io_timeout_ms : DEF_IO_MS;
	x->max_pages = s->max_pages > 0 ? s->max_pages : DEF_MAX_PAGES;
	x->max_entries = s->max_entries > 0 ? s->max_entries : DEF_MAX_ENTRIES;
	x->bucket = strdup(s->bucket);
	x->region = strdup(s->region && *s->region ? s->region : "us-east-1");
	x->ak = strdup(s->creds->access_key);
	x->sk = strdup(s->creds->secret_key);
	if (s->creds->session_token && *s->creds->session_token)
		x->tok = strdup(s->creds->session_token);
	if (s->ca_file && *s->ca_file)
		x->ca_file = strdup(s->ca_file);
	if (s->virtual_hosted) {
		if (asprintf(&x->host, "%s.%s", s->bucket, auth) < 0)
			x->host = NULL;
		x->bucket_path = strdup("");
	} else {
		x->host = strdup(auth);
		if (asprintf(&x->bucket_path, "/%s", s->bucket) < 0)
			x->bucket_path = NULL;
	}
	if (x->host && asprintf(&x->origin, "%s%s", scheme, x->host) < 0)
		x->origin = NULL;
	{
		const char *pre = s->prefix ? s->prefix : "";

		while (*pre == '/') /* keys never start with '/' */
			pre++;
		pl = strlen(pre);
		x->prefix = malloc(pl + 2);
		if (x->prefix) {
			memcpy(x->prefix, pre, pl);
			if (pl && pre[pl - 1] != '/')
				x->prefix[pl++] = '/';
			x->prefix[pl] = '\0';
		}
	}
	x->conn = http_conn_new();
	free(auth);
	if (!x->bucket || !x->region || !x->ak || !x->sk || !x->host ||
	    !x->bucket_path || !x->origin || !x->prefix || !x->conn ||
	    (s->creds->session_token && *s->creds->session_token && !x->tok) ||
	    (s->ca_file && *s->ca_file && !x->ca_file)) {
		s3_close(&x->base);
		return -ENOMEM;
	}
	if (strlen(x->prefix) > S3_KEY_MAX ||
	    (pl && !s3_key_component_ok(x->prefix, pl - 1, NULL, 0))) {
		if (err && errlen)
			snprintf(err, errlen, "s3: bad prefix");
		s3_close(&x->base);
		return -EINVAL;
	}
	*out = &x->base;
	return 0;
}

static void s3_close(struct xfer *xb)
{
	struct s3_xfer *x = to_x(xb);

	if (!x)
		return;
	http_conn_free(x->conn);
	wipe_free(x->ak);
	wipe_free(x->sk);
	wipe_free(x->tok);
	free(x->origin);
	free(x->host);
	free(x->bucket_path);
	free(x->bucket);
	free(x->prefix);
	free(x->region);
	free(x->ca_file);
	free(x);
}

/* ------------------------------------------------------------------ */
/* listing                                                            */

static const char *const list_want[] = {"x-amz-request-id", NULL};

/* One ListObjectsV2 page of @prefix into @page. */
static int list_page(struct s3_xfer *x, const char *what, const char *prefix,
		     const char *token, const char *max_keys, bool delim,
		     struct s3_list_page *page)
{
	struct sigv4_kv q[6];
	size_t nq = 0;
	struct http_resp resp;
	char why[256];
	int rc;

	/* Keys XML 1.0 cannot carry (control bytes) come percent-encoded;
	 * s3xml decodes them when the page says so. */
	q[nq++] = (struct sigv4_kv){"encoding-type", "url"};
	q[nq++] = (struct sigv4_kv){"list-type", "2"};
	q[nq++] = (struct sigv4_kv){"prefix", prefix};
	q[nq++] = (struct sigv4_kv){"max-keys", max_keys};
	if (delim)
		q[nq++] = (struct sigv4_kv){"delimiter", "/"};
	if (token)
		q[nq++] = (struct sigv4_kv){"continuation-token", token};
	struct s3_call c = {
	    .method = "GET",
	    .query = q,
	    .nquery = nq,
	    .want = list_want,
	    .max_body = LIST_BODY_MAX,
	};
	memset(page, 0, sizeof(*page));
	rc = s3_do(x, &c, &resp);
	if (rc)
		goto out;
	if (resp.status != 200) {
		rc = s3_status_fail(x, &resp, what);
		goto out;
	}
	rc = s3xml_parse_list(resp.body.data, resp.body.len, page, why,
			      sizeof(why));
	if (rc)
		rc = fail(x, rc == -ENOMEM ? rc : -EIO,
			  "%s in bucket %s: bad listing: %s", what, x->bucket,
			  why);
out:
	http_resp_cleanup(&resp);
	return rc;
}

struct dent {
	char *name;
	struct xfer_attr a;
};

struct dlist {
	struct dent *v;
	size_t n, cap;
	long skipped;
	char first[256];
};

static int dlist_add(struct dlist *d, const char *name, size_t len,
		     const struct xfer_attr *a)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct dent *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n].name = strndup(name, len);
	if (!d->v[d->n].name)
		return -ENOMEM;
	d->v[d->n].a = *a;
	d->n++;
	return 0;
}

static void dlist_skip(struct dlist *d, const char *why)
{
	if (!d->skipped++)
		snprintf(d->first, sizeof(d->first), "%s", why);
}

static void dlist_free(struct dlist *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
}

static int dent_cmp(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* equal names: the object first, it is the one kept (stat's HEAD
	 * finds the object too, so the two agree) */
	if (c)
		return c;
	return S_ISDIR(x->a.mode) - S_ISDIR(y->a.mode);
}

/* One name of a listing: @rel (relative to the prefix) checked. */
static int take(struct dlist *d, const char *rel, size_t n,
		const struct xfer_attr *a)
{
	char why[256];

	if (!s3_key_component_ok(rel, n, why, sizeof(why))) {
		dlist_skip(d, why);
		return 0;
	}
	if (memchr(rel, '/', n)) { /* delimiter ignored by the server? */
		char esc[160];

		s3_escape(rel, n, esc, sizeof(esc));
		snprintf(why, sizeof(why),
			 "key \"%s\": holds '/' below a "
			 "delimiter listing",
			 esc);
		dlist_skip(d, why);
		return 0;
	}
	return dlist_add(d, rel, n, a);
}

static int s3_readdir(struct xfer *xb, const char *path, xfer_dirent_fn fn,
		      void *arg)
{
	struct s3_xfer *x = to_x(xb);
	struct buf prefix;
	struct dlist d = {0};
	char *token = NULL, what[300];
	long pages = 0, entries = 0;
	bool seen = false; /* any key at all below the prefix */
	size_t pl;
	int rc;

	x->base.err[0] = '\0';
	snprintf(what, sizeof(what), "list %s", path);
	buf_init(&prefix, S3_KEY_MAX + 2);
	rc = path_to_key(x, path, true, &prefix);
	if (rc)
		goto out;
	pl = prefix.len;
	/* The whole listing, not just each page, is bounded: a lookup or a
	 * teardown waits for it (a slow server must not hold one for
	 * hours, page by page). */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long budget_ms = LIST_BUDGET_MS + 2 * x->io_ms;

	for (;;) {
		struct s3_list_page pg;
		struct timespec tn;

		clock_gettime(CLOCK_MONOTONIC, &tn);
		if ((tn.tv_sec - t0.tv_sec) * 1000L +
			    (tn.tv_nsec - t0.tv_nsec) / 1000000L > budget_ms) {
			rc = fail(x, -ETIMEDOUT,
				  "%s in bucket %s: not listed whole within "
				  "%ld s; refusing a partial listing", what,
				  x->bucket, budget_ms / 1000);
			break;
		}
		if (++pages > x->max_pages) {
			rc = fail(x, -E2BIG,
				  "%s in bucket %s: more than %ld pages; "
				  "refusing a partial listing",
				  what, x->bucket, x->max_pages);
			break;
		}
		rc = list_page(x, what, prefix.data ? prefix.data : "", token,
			       "1000", true, &pg);
		if (rc) {
			s3xml_list_cleanup(&pg);
			break;
		}
		entries += (long)(pg.nobj + pg.nprefix);
		if (entries > x->max_entries) {
			s3xml_list_cleanup(&pg);
			rc = fail(x, -E2BIG,
				  "%s in bucket %s: more than %ld entries; "
				  "refusing a partial listing",
				  what, x->bucket, x->max_entries);
			break;
		}
		for (size_t i = 0; !rc && i < pg.nobj; i++) {
			const struct s3_object *o = &pg.obj[i];
			size_t kl = o->key_len;
			struct xfer_attr a = {0};

			if (kl < pl || memcmp(o->key, prefix.data, pl)) {
				char esc[160], why[256];

				s3_escape(o->key, kl, esc, sizeof(esc));
				snprintf(why, sizeof(why),
					 "key \"%s\": outside the listed "
					 "prefix",
					 esc);
				dlist_skip(&d, why);
				continue;
			}
			seen = true;
			if (kl == pl)
				continue; /* the directory's own marker */
			a.size = o->size;
			a.mtime = o->mtime;
			a.mode = S_IFREG | 0444;
			snprintf(a.etag, sizeof(a.etag), "%s", o->etag);
			rc = take(&d, o->key + pl, kl - pl, &a);
		}
		for (size_t i = 0; !rc && i < pg.nprefix; i++) {
			const char *cp = pg.prefixes[i];
			size_t kl = pg.prefix_len[i];
			struct xfer_attr a = {.mode = S_IFDIR | 0555};

			seen = true;

			if (kl <= pl + 1 || memcmp(cp, prefix.data, pl) ||
			    cp[kl - 1] != '/') {
				char esc[160], why[256];

				s3_escape(cp, kl, esc, sizeof(esc));
				snprintf(why, sizeof(why),
					 "prefix \"%s\": not a directory "
					 "below the listed prefix",
					 esc);
				dlist_skip(&d, why);
				continue;
			}
			rc = take(&d, cp + pl, kl - pl - 1, &a);
		}
		if (rc) {
			s3xml_list_cleanup(&pg);
			rc = fail(x, rc, "%s: out of memory", what);
			break;
		}
		if (!pg.truncated) {
			s3xml_list_cleanup(&pg);
			break;
		}
		if (token && !strcmp(token, pg.next_token)) {
			s3xml_list_cleanup(&pg);
			rc = fail(x, -EIO,
				  "%s in bucket %s: the server repeated its "
				  "continuation token",
				  what, x->bucket);
			break;
		}
		free(token);
		token = pg.next_token;
		pg.next_token = NULL;
		s3xml_list_cleanup(&pg);
	}
	if (rc)
		goto out;
	if (!seen && pl > strlen(x->prefix)) {
		rc = fail(x, -ENOENT, "%s in bucket %s: no such directory",
			  what, x->bucket);
		goto out;
	}

	/* Complete: sort, drop a prefix shadowed by an object. */
	qsort(d.v, d.n, sizeof(*d.v), dent_cmp);
	size_t w = 0;
	for (size_t i = 0; i < d.n; i++) {
		if (w && !strcmp(d.v[w - 1].name, d.v[i].name)) {
			char esc[160], why[256];

			s3_escape(d.v[i].name, strlen(d.v[i].name), esc,
				  sizeof(esc));
			snprintf(why, sizeof(why),
				 "\"%s\" is both an object and a prefix; "
				 "shown as the object",
				 esc);
			dlist_skip(&d, why);
			free(d.v[i].name);
			continue;
		}
		d.v[w++] = d.v[i];
	}
	d.n = w;
	if (d.skipped)
		fail(x, 0, "%s in bucket %s: skipped %ld key%s; first: %s",
		     what, x->bucket, d.skipped, d.skipped == 1 ? "" : "s",
		     d.first);
	for (size_t i = 0; i < d.n && !rc; i++)
		rc = fn(arg, d.v[i].name, &d.v[i].a);
out:
	free(token);
	dlist_free(&d);
	buf_cleanup(&prefix);
	return rc;
}

/* ------------------------------------------------------------------ */
/* stat                                                               */

static const char *const head_want[] = {
    "ETag", "Content-Length", "Last-Modified", "x-amz-request-id", NULL};

static int parse_http_date(const char *s, int64_t *out)
{
	struct tm tm = {0};
	const char *e;
	time_t t;

	if (!s)
		return -EINVAL;
	e = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!e || *e)
		return -EINVAL;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = (int64_t)t;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

static int etag_copy(struct s3_xfer *x, const char *etag, char *out,
		     const char *what)
{
	if (!etag || !*etag) {
		out[0] = '\0';
		return 0;
	}
	if (strlen(etag) >= XFER_ETAG_MAX || strpbrk(etag, "\r\n"))
		return fail(x, -EIO, "%s in bucket %s: ETag too long", what,
			    x->bucket);
	snprintf(out, XFER_ETAG_MAX, "%s", etag);
	return 0;
}

static int s3_stat(struct xfer *xb, const char *path, struct xfer_attr *out)
{
	struct s3_xfer *x = to_x(xb);
	struct buf key;
	struct http_resp resp;
	struct s3_list_page pg;
	char what[300];
	const char *p = path;
	int rc;

	memset(out, 0, sizeof(*out));
	x->base.err[0] = '\0';
	while (*p == '/')
		p++;
	if (!*p) {
		out->mode = S_IFDIR | 0555;
		return 0;
	}
	snprintf(what, sizeof(what), "stat %s", path);
	buf_init(&key, S3_KEY_MAX + 2);
	rc = path_to_key(x, path, false, &key);
	if (rc)
		goto out_key;

	struct s3_call c = {
	    .method = "HEAD",
	    .key = key.data,
	    .want = head_want,
	    .max_body = ERR_BODY_MAX,
	};
	rc = s3_do(x, &c, &resp);
	if (rc)
		goto out_resp;
	if (resp.status == 200) {
		const char *cl = http_resp_header(&resp, "Content-Length");
		const char *lm = http_resp_header(&resp, "Last-Modified");

		if (parse_u64(cl, &out->size) || out->size > INT64_MAX) {
			rc = fail(x, -EIO,
				  "%s in bucket %s: no valid Content-Length",
				  what, x->bucket);
			goto out_resp;
		}
		if (parse_http_date(lm, &out->mtime)) {
			rc = fail(x, -EIO,
				  "%s in bucket %s: no valid Last-Modified",
				  what, x->bucket);
			goto out_resp;
		}
		out->mode = S_IFREG | 0444;
		rc = etag_copy(x, http_resp_header(&resp, "ETag"), out->etag,
			       what);
		goto out_resp;
	}
	if (resp.status != 404) {
		rc = s3_status_fail(x, &resp, what);
		goto out_resp;
	}

	/* No such object: a directory when some key lies below it. */
	rc = buf_append(&key, "/", 1);
	if (rc) {
		rc = fail(x, -ENAMETOOLONG, "%s: key too long", what);
		goto out_resp;
	}
	rc = list_page(x, what, key.data, NULL, "1", false, &pg);
	if (!rc && (pg.nobj || pg.nprefix))
		out->mode = S_IFDIR | 0555;
	else if (!rc)
		rc = fail(x, -ENOENT, "%s in bucket %s: no such object", what,
			  x->bucket);
	s3xml_list_cleanup(&pg);
out_resp:
	http_resp_cleanup(&resp);
out_key:
	buf_cleanup(&key);
	return rc;
}

/* ------------------------------------------------------------------ */
/* pread                                                              */

static const char *const get_want[] = {
    "ETag",	     "Content-Range",	 "Content-Length",
    "Last-Modified", "x-amz-request-id", NULL};

/* "bytes A-B/T" -> a, b, t. */
static int parse_content_range(const char *s, uint64_t *a, uint64_t *b,
			       uint64_t *t)
{
	char sa[24], sb[24], st[24];
	int n = 0;

	if (!s ||
	    sscanf(s, "bytes %23[0-9]-%23[0-9]/%23[0-9]%n", sa, sb, st, &n) !=
		3 ||
	    s[n] || parse_u64(sa, a) || parse_u64(sb, b) || parse_u64(st, t) ||
	    *b < *a || *b >= *t)
		return -EINVAL;
	return 0;
}

/* Copy @n bytes at @src into @iov[0..cnt), in order. */
static void iov_fill(const struct iovec *iov, int cnt, const char *src,
		     size_t n)
{
	for (int i = 0; n && i < cnt; i++) {
		size_t k = n < iov[i].iov_len ? n : iov[i].iov_len;

		memcpy(iov[i].iov_base, src, k);
		src += k;
		n -= k;
	}
}

/*
 * One ranged GET of at most READ_MAX bytes (see DESIGN) into @iov, whose
 * total is @len: a 206 lands in the buffers straight from the socket.
 */
static ssize_t pread_once(struct s3_xfer *x, const char *path,
			  const struct iovec *iov, int iovcnt, size_t len,
			  uint64_t off, const struct xfer_attr *expect)
{
	struct sigv4_kv extra[2];
	size_t nextra = 0, want_len, got;
	uint64_t end, a, b, total;
	struct buf key;
	struct http_resp resp;
	char range[64], what[300];
	const char *etag;
	int64_t mtime = 0;
	bool stale = false;
	ssize_t rc;

	/* EOF of the expected version: no request (s3rver never answers a
	 * ranged GET of an empty object). */
	if (expect && off >= expect->size)
		return 0;
	snprintf(what, sizeof(what), "read %s", path);
	buf_init(&key, S3_KEY_MAX + 2);
	rc = path_to_key(x, path, false, &key);
	if (rc) {
		buf_cleanup(&key);
		return rc;
	}
	/* Never "bytes=0-0": the test server answers it with everything. */
	end = off + len - 1;
	want_len = len;
	if (end == 0)
		end = 1;
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off, end);
	extra[nextra++] = (struct sigv4_kv){"Range", range};
	if (expect && expect->etag[0] && !strpbrk(expect->etag, "\r\n"))
		extra[nextra++] = (struct sigv4_kv){"If-Match", expect->etag};

	struct s3_call c = {
	    .method = "GET",
	    .key = key.data,
	    .extra = extra,
	    .nextra = nextra,
	    .want = get_want,
	    /* room for an error document too (a 416 for a read past EOF) */
	    .max_body = (size_t)(end - off + 1) + RANGE_SLACK < ERR_BODY_MAX
			    ? ERR_BODY_MAX
			    : (size_t)(end - off + 1) + RANGE_SLACK,
	    .into = iov,
	    .into_cnt = iovcnt,
	};
	rc = s3_do(x, &c, &resp);
	if (rc == -EFBIG)
		rc = fail(x, -EIO,
			  "%s in bucket %s: the server sent more "
			  "than the range asked for",
			  what, x->bucket);
	if (rc)
		goto out;

	if (resp.status == 416) {
		/* Nothing at @off: EOF, unless the object shrank under us. */
		rc = 0;
		if (expect && off < expect->size)
			rc = fail(x, -ESTALE,
				  "%s in bucket %s: changed in the bucket "
				  "(now shorter than %" PRIu64 " bytes)",
				  what, x->bucket, expect->size);
		goto out;
	}
	if (resp.status == 412) {
		rc = fail(x, -ESTALE,
			  "%s in bucket %s: changed in the bucket (ETag is "
			  "no longer %s)",
			  what, x->bucket, expect ? expect->etag : "");
		goto out;
	}
	if (resp.status != 206 && resp.status != 200) {
		rc = s3_status_fail(x, &resp, what);
		goto out;
	}
	if (resp.status == 206) {
		if (parse_content_range(
			http_resp_header(&resp, "Content-Range"), &a, &b,
			&total) ||
		    a != off) {
			rc = fail(x, -EIO,
				  "%s in bucket %s: 206 without a "
				  "Content-Range for bytes %" PRIu64 "-",
				  what, x->bucket, off);
			goto out;
		}
	} else {
		/* The whole object (a server that ignored Range). */
		total = resp.body.len;
		a = off;
		b = off < total ? total - 1 : off;
	}
	got = resp.status == 200 && off >= total ? 0 : (size_t)(b + 1 - a);
	if (resp.status == 206 && resp.into_len != got) {
		rc = fail(x, -EIO,
			  "%s in bucket %s: Content-Range says %zu bytes, "
			  "the body has %zu",
			  what, x->bucket, got, resp.into_len);
		goto out;
	}
	etag = http_resp_header(&resp, "ETag");
	/* Without an expected ETag, size and Last-Modified stand for the
	 * version, as over SFTP. */
	if (expect && !expect->etag[0] && expect->mtime &&
	    (parse_http_date(http_resp_header(&resp, "Last-Modified"),
			     &mtime) ||
	     mtime != expect->mtime))
		stale = true;
	if (expect &&
	    (total != expect->size ||
	     (expect->etag[0] && (!etag || strcmp(etag, expect->etag)))))
		stale = true;
	if (stale) {
		char esc[XFER_ETAG_MAX * 4];

		s3_escape(etag ? etag : "", etag ? strlen(etag) : 0, esc,
			  sizeof(esc));
		rc = fail(x, -ESTALE,
			  "%s in bucket %s: changed in the bucket (now %" PRIu64
			  " bytes, ETag %s)",
			  what, x->bucket, total, esc);
		goto out;
	}
	if (got > want_len)
		got = want_len;
	/* 206: already in place; 200: the whole object, in resp.body */
	if (got && resp.status == 200)
		iov_fill(iov, iovcnt, resp.body.data + (size_t)off, got);
	rc = (ssize_t)got;
out:
	http_resp_cleanup(&resp);
	buf_cleanup(&key);
	return rc;
}

static ssize_t s3_preadv(struct xfer *xb, const char *path,
			 const struct iovec *iov, int iovcnt, uint64_t off,
			 const struct xfer_attr *expect)
{
	struct s3_xfer *x = to_x(xb);
	struct iovec win[XFER_IOV_MAX];
	size_t len = 0, done = 0, at = 0;
	int first = 0;

	x->base.err[0] = '\0';
	if (iovcnt < 1 || iovcnt > XFER_IOV_MAX)
		return fail(x, -EINVAL, "read %s: %d buffers", path, iovcnt);
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - len)
			return fail(x, -EINVAL, "read %s: too long", path);
		len += iov[i].iov_len;
	}
	if (off > INT64_MAX || len > INT64_MAX - off)
		return fail(x, -EINVAL, "read %s: offset out of range", path);
	/*
	 * Requests of at most READ_MAX, so a response never needs more
	 * memory than that; short only at EOF. Each request gets the window
	 * of the buffers it covers: [first]+at .. READ_MAX bytes further.
	 */
	while (done < len) {
		size_t n = len - done < READ_MAX ? len - done : READ_MAX;
		size_t need = n;
		int nwin = 0;

		for (int i = first; need && i < iovcnt; i++) {
			size_t skip = i == first ? at : 0;
			size_t k = iov[i].iov_len - skip;

			if (k > need)
				k = need;
			win[nwin++] = (struct iovec){
			    (char *)iov[i].iov_base + skip, k};
			need -= k;
		}
		ssize_t r = pread_once(x, path, win, nwin, n, off + done,
				       expect);

		if (r < 0)
			return r;
		done += (size_t)r;
		if ((size_t)r < n)
			break;
		/* advance [first]+at by n */
		for (size_t adv = n; adv;) {
			size_t k = iov[first].iov_len - at;

			if (adv < k) {
				at += adv;
				break;
			}
			adv -= k;
			first++;
			at = 0;
		}
	}
	return (ssize_t)done;
}

static ssize_t s3_pread(struct xfer *xb, const char *path, void *buf,
			size_t len, uint64_t off,
			const struct xfer_attr *expect)
{
	struct iovec one = {buf, len > SSIZE_MAX ? SSIZE_MAX : len};

	return s3_preadv(xb, path, &one, 1, off, expect);
}

/* ------------------------------------------------------------------ */
/* upload                                                             */

static const char *const put_want[] = {"ETag", "x-amz-request-id", NULL};

/*
 * The whole budget of a request sending @len bytes, retries included: the
 * io_timeout plus the body at a floor rate of UPLOAD_FLOOR_BPS, so a 64 MiB
 * part is not cut off at a 30 s io_timeout on an ordinary uplink.
 */
static long upload_ms(const struct s3_xfer *x, size_t len)
{
	size_t extra = len / UPLOAD_FLOOR_BPS * 1000;

	return extra > (size_t)(LONG_MAX / 2) ? LONG_MAX / 2
					      : x->io_ms + (long)extra;
}

int xfer_s3_put(struct xfer *xb, const char *path, const void *data, size_t len,
		char *etag, size_t etaglen)
{
	struct s3_xfer *x = to_x(xb);
	struct http_resp resp;
	struct buf key;
	char what[300];
	int rc;

	if (etag && etaglen)
		etag[0] = '\0';
	if (!xb || xb->ops != &xfer_s3_ops)
		return -EINVAL;
	x->base.err[0] = '\0';
	snprintf(what, sizeof(what), "put %s", path);
	if (len > XFER_S3_PUT_MAX)
		return fail(x, -EFBIG,
			    "%s in bucket %s: %zu bytes is more than one PUT "
			    "may carry here",
			    what, x->bucket, len);
	buf_init(&key, S3_KEY_MAX + 2);
	rc = path_to_key(x, path, false, &key);
	if (rc) {
		buf_cleanup(&key);
		return rc;
	}
	if (key.len == strlen(x->prefix)) {
		buf_cleanup(&key);
		return fail(x, -EISDIR, "%s: not an object name", what);
	}
	struct s3_call c = {
	    .method = "PUT",
	    .key = key.data,
	    .want = put_want,
	    .max_body = ERR_BODY_MAX,
	    .body = data ? data : "",
	    .body_len = data ? len : 0,
	    .timeout_ms = upload_ms(x, len),
	};
	rc = s3_do(x, &c, &resp);
	if (!rc && resp.status != 200)
		rc = s3_status_fail(x, &resp, what);
	else if (!rc && etag && etaglen)
		snprintf(etag, etaglen, "%s",
			 http_resp_header(&resp, "ETag")
			     ? http_resp_header(&resp, "ETag")
			     : "");
	http_resp_cleanup(&resp);
	buf_cleanup(&key);
	return rc;
}

/* ------------------------------------------------------------------ */
/* HEAD with checksums, multipart upload                              */

static const char *const headx_want[] = {"ETag",
					 "Content-Length",
					 "Last-Modified",
					 "x-amz-checksum-sha256",
					 "x-amz-request-id",
					 NULL};

/* The key of object @path for an upload or a HEAD (never a directory). */
static int object_key(struct s3_xfer *x, const char *path, struct buf *key,
		      const char *what)
{
	int rc;

	buf_init(key, S3_KEY_MAX + 2);
	rc = path_to_key(x, path, false, key);
	if (!rc && key->len == strlen(x->prefix))
		rc = fail(x, -EISDIR, "%s: not an object name", what);
	return rc;
}

int xfer_s3_head(struct xfer *xb, const char *path, struct xfer_attr *out,
		 char *sha256, size_t shalen)
{
	struct s3_xfer *x = to_x(xb);
	struct sigv4_kv extra[] = {{"x-amz-checksum-mode", "ENABLED"}};
	struct http_resp resp;
	struct buf key;
	char what[300];
	const char *v;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sha256 && shalen)
		sha256[0] = '\0';
	if (!xb || xb->ops != &xfer_s3_ops)
		return -EINVAL;
	x->base.err[0] = '\0';
	snprintf(what, sizeof(what), "head %s", path);
	rc = object_key(x, path, &key, what);
	if (rc) {
		buf_cleanup(&key);
		return rc;
	}
	struct s3_call c = {
	    .method = "HEAD",
	    .key = key.data,
	    .extra = extra,
	    .nextra = 1,
	    .want = headx_want,
	    .max_body = ERR_BODY_MAX,
	};
	rc = s3_do(x, &c, &resp);
	if (rc)
		goto out;
	if (resp.status != 200) {
		rc = s3_status_fail(x, &resp, what);
		goto out;
	}
	if (parse_u64(http_resp_header(&resp, "Content-Length"), &out->size) ||
	    out->size > INT64_MAX) {
		rc = fail(x, -EIO, "%s in bucket %s: no valid Content-Length",
			  what, x->bucket);
		goto out;
	}
	if (parse_http_date(http_resp_header(&resp, "Last-Modified"),
			    &out->mtime))
		out->mtime = 0;
	out->mode = S_IFREG | 0444;
	rc = etag_copy(x, http_resp_header(&resp, "ETag"), out->etag, what);
	v = http_resp_header(&resp, "x-amz-checksum-sha256");
	if (!rc && v && sha256 && shalen) {
		if (strlen(v) >= shalen || strpbrk(v, "\r\n"))
			rc = fail(x, -EIO,
				  "%s in bucket %s: checksum header too long",
				  what, x->bucket);
		else
			snprintf(sha256, shalen, "%s", v);
	}
out:
	http_resp_cleanup(&resp);
	buf_cleanup(&key);
	return rc;
}

/*
 * The text of element @tag in @body (first occurrence), strictly: no
 * nested markup, no entity, no control byte; -EPROTO otherwise. S3's
 * upload ids are URL-safe text, so refusing entities loses nothing.
 */
static int xml_text(const struct buf *body, const char *tag, char *out,
		    size_t outlen)
{
	char open_t[64], close_t[64];
	const char *s, *e;
	size_t n;

	if (!body->data || !body->len)
		return -EPROTO;
	snprintf(open_t, sizeof(open_t), "<%s>", tag);
	snprintf(close_t, sizeof(close_t), "</%s>", tag);
	s = memmem(body->data, body->len, open_t, strlen(open_t));
	if (!s)
		return -EPROTO;
	s += strlen(open_t);
	e = memmem(s, body->len - (size_t)(s - body->data), close_t,
		   strlen(close_t));
	if (!e)
		return -EPROTO;
	n = (size_t)(e - s);
	if (!n || n >= outlen)
		return -EPROTO;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f || s[i] == '<' ||
		    s[i] == '&' || s[i] == '>')
			return -EPROTO;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static const char *const mpu_want[] = {"x-amz-request-id", NULL};

int xfer_s3_mpu_begin(struct xfer *xb, const char *path, char *upload_id,
		      size_t idlen)
{
	struct s3_xfer *x = to_x(xb);
	struct sigv4_kv q[] = {{"uploads", ""}};
	struct http_resp resp;
	struct buf key;
	char what[300];
	int rc;

	if (upload_id && idlen)
		upload_id[0] = '\0';
	if (!xb || xb->ops != &xfer_s3_ops || !upload_id || !idlen)
		return -EINVAL;
	x->base.err[0] = '\0';
	snprintf(what, sizeof(what), "start upload of %s", path);
	rc = object_key(x, path, &key, what);
	if (rc) {
		buf_cleanup(&key);
		return rc;
	}
	struct s3_call c = {
	    .method = "POST",
	    .key = key.data,
	    .query = q,
	    .nquery = 1,
	    .want = mpu_want,
	    .max_body = ERR_BODY_MAX,
	};
	rc = s3_do(x, &c, &resp);
	if (!rc && resp.status != 200)
		rc = s3_status_fail(x, &resp, what);
	else if (!rc && xml_text(&resp.body, "UploadId", upload_id, idlen))
		rc = fail(x, -EIO,
			  "%s in bucket %s: no valid UploadId in the "
			  "answer",
			  what, x->bucket);
	http_resp_cleanup(&resp);
	buf_cleanup(&key);
	return rc;
}

int xfer_s3_mpu_part(struct xfer *xb, const char *path, const char *upload_id,
		     unsigned partno, const void *data, size_t len, char *etag,
		     size_t etaglen)
{
	struct s3_xfer *x = to_x(xb);
	struct http_resp resp;
	struct buf key;
	char what[300], pn[16];
	const char *et;
	int rc;

	if (etag && etaglen)
		etag[0] = '\0';
	if (!xb || xb->ops != &xfer_s3_ops || !upload_id || !partno ||
	    partno > MPU_PARTS_MAX)
		return -EINVAL;
	x->base.err[0] = '\0';
	snprintf(what, sizeof(what), "upload part %u of %s", partno, path);
	if (len > XFER_S3_PUT_MAX)
		return fail(x, -EFBIG, "%s in bucket %s: part too large", what,
			    x->bucket);
	rc = object_key(x, path, &key, what);
	if (rc) {
		buf_cleanup(&key);
		return rc;
	}
	snprintf(pn, sizeof(pn), "%u", partno);
	struct sigv4_kv q[] = {{"partNumber", pn}, {"uploadId", upload_id}};
	struct s3_call c = {
	    .method = "PUT",
	    .key = key.data,
	    .query = q,
	    .nquery = 2,
	    .want = put_want,
	    .max_body = ERR_BODY_MAX,
	    .body = data ? data : "",
	    .body_len = data ? len : 0,
	    .timeout_ms = upload_ms(x, len),
	};
	rc = s3_do(x, &c, &resp);
	if (!rc && resp.status != 200)
		rc = s3_status_fail(x, &resp, what);
	et = http_resp_header(&resp, "ETag");
	if (!rc && etag && etaglen)
		rc = etag_copy(x, et, etag, what);
	http_resp_cleanup(&resp);
	buf_cleanup(&key);
	return rc;
}

int xfer_s3_mpu_complete(struct xfer *xb, const char *path,
			 const char *upload_id, const char *const *etags,
			 unsigned nparts)
{
	struct s3_xfer *x = to_x(xb);
	struct http_resp resp;
	struct buf key, body;
	char what[300], pe[64];
	int rc;

	if (!xb || xb->ops != &xfer_s3_ops || !upload_id || !nparts ||
	    nparts > MPU_PARTS_MAX)
		return -EINVAL;
	x->base.err[0] = '\0';
	snprintf(what, sizeof(what), "complete upload of %s", path);
	buf_init(&body, (size_t)nparts * (XFER_ETAG_MAX + 64) + 128);
	rc = buf_appendf(&body, "<CompleteMultipartUpload>");
	for (unsigned i = 0; !rc && i < nparts; i++) {
		if (!etags[i] || !*etags[i] || strpbrk(etags[i], "<>&\r\n")) {
			buf_cleanup(&body);
			return fail(x, -EIO, "%s: part %u has no usable ETag",
				    what, i + 1);
		}
		rc = buf_appendf(&body,
				 "<Part><PartNumber>%u</PartNumber>"
				 "<ETag>%s</ETag></Part>",
				 i + 1, etags[i]);
	}
	if (!rc)
		rc = buf_appendf(&body, "</CompleteMultipartUpload>");
	if (rc) {
		buf_cleanup(&body);
		return fail(x, -ENOMEM, "%s: out of memory", what);
	}
	rc = object_key(x, path, &key, what);
	if (rc) {
		buf_cleanup(&key);
		buf_cleanup(&body);
		return rc;
	}
	struct sigv4_kv q[] = {{"uploadId", upload_id}};
	struct s3_call c = {
	    .method = "POST",
	    .key = key.data,
	    .query = q,
	    .nquery = 1,
	    .want = mpu_want,
	    .max_body = ERR_BODY_MAX,
	    .body = body.data,
	    .body_len = body.len,
	    /* S3 may take minutes to assemble a large object */
	    .timeout_ms = upload_ms(x, (size_t)nparts << 20),
	};
	rc = s3_do(x, &c, &resp);
	/* A 200 may still carry an <Error> (AWS sends it when the assembly
	 * fails after the status went out): only a result counts. */
	if (!rc && resp.status != 200)
		rc = s3_status_fail(x, &resp, what);
	else if (!rc && (!resp.body.data ||
			 !memmem(resp.body.data, resp.body.len,
				 "CompleteMultipartUploadResult", 29) ||
			 memmem(resp.body.data, resp.body.len, "<Error>", 7))) {
		char code[64] = "", msg[160] = "";

		if (resp.body.len)
			s3xml_parse_error(resp.body.data, resp.body.len, code,
					  sizeof(code), msg, sizeof(msg));
		snprintf(pe, sizeof(pe), "%s", code[0] ? code : "no result");
		rc = fail(x, -EIO, "%s in bucket %s: failed (%s)%s%s", what,
			  x->bucket, pe, msg[0] ? ": " : "", msg);
	}
	http_resp_cleanup(&resp);
	buf_cleanup(&key);
	buf_cleanup(&body);
	return rc;
}

int xfer_s3_mpu_abort(struct xfer *xb, const char *path, const char *upload_id)
{
	struct s3_xfer *x = to_x(xb);
	struct http_resp resp;
	struct buf key;
	char what[300];
	int rc;

	if (!xb || xb->ops != &xfer_s3_ops || !upload_id)
		return -EINVAL;
	x->base.err[0] = '\0';
	snprintf(what, sizeof(what), "abort upload of %s", path);
	rc = object_key(x, path, &key, what);
	if (rc) {
		buf_cleanup(&key);
		return rc;
	}
	struct sigv4_kv q[] = {{"uploadId", upload_id}};
	struct s3_call c = {
	    .method = "DELETE",
	    .key = key.data,
	    .query = q,
	    .nquery = 1,
	    .want = mpu_want,
	    .max_body = ERR_BODY_MAX,
	};
	rc = s3_do(x, &c, &resp);
	if (!rc && resp.status != 204 && resp.status != 200 &&
	    resp.status != 404)
		rc = s3_status_fail(x, &resp, what);
	http_resp_cleanup(&resp);
	buf_cleanup(&key);
	return rc;
}

const struct xfer_ops xfer_s3_ops = {
    .name = "s3",
    .open = s3_open,
    .stat = s3_stat,
    .readdir = s3_readdir,
    .pread = s3_pread,
    .preadv = s3_preadv,
    .exec = NULL,
    .close = s3_close,
};
