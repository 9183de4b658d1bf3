/*
 * sigv4.h - AWS Signature Version 4 (AWS4-HMAC-SHA256) for S3, written
 * here rather than through CURLOPT_AWS_SIGV4 (which signs the path and the
 * query exactly as given and adds no x-amz-content-sha256).
 *
 * Pure: no I/O, no global state, no clock of its own. The caller passes the
 * time, so the published AWS test vectors can be checked with their fixed
 * dates (tests/unit/test_sigv4.c).
 *
 * S3 rules, which differ from the generic SigV4 description:
 *  - the canonical URI is the path with each segment percent-encoded once
 *    (every byte but A-Za-z0-9-._~; '/' kept between segments), never
 *    twice, and never normalised ("." and ".." segments and "//" are signed
 *    as they are, because they are part of the object key);
 *  - x-amz-content-sha256 is always sent and signed (UNSIGNED-PAYLOAD or
 *    the hex SHA-256 of the body).
 *
 * Secrets: the secret key is only read; derived keys live on the stack and
 * are wiped (OPENSSL_cleanse) before return. Nothing here writes a secret,
 * a signature or a canonical request into @err.
 *
 * Threads: every function is reentrant.
 */
#ifndef RGT_SIGV4_H
#define RGT_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_AUTH_MAX 1024  /* longest Authorization value we build */
#define SIGV4_MAX_HEADERS 32 /* headers a request may sign */

/* A query parameter or a header, both raw (not yet encoded or trimmed). */
struct sigv4_kv {
	const char *name;
	const char *value; /* NULL: "" (a parameter without '=') */
};

struct sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "": none */
};

struct sigv4_req {
	const char *method;	      /* "GET", "HEAD", "PUT", ... */
	const char *path;	      /* raw path: "/", "/bucket/a b/c" */
	const struct sigv4_kv *query; /* raw, any order */
	size_t nquery;
	/*
	 * Headers to sign, any case and order; must include Host. The
	 * signer adds x-amz-date, x-amz-content-sha256 and (with a session
	 * token) x-amz-security-token itself: do not pass them.
	 */
	const struct sigv4_kv *headers;
	size_t nheaders;
	/*
	 * Payload: payload_hash if set (SIGV4_UNSIGNED_PAYLOAD or 64 lower
	 * hex digits), else the SHA-256 of body/body_len (none: of "").
	 */
	const char *payload_hash;
	const void *body;
	size_t body_len;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
	/*
	 * Do not add x-amz-content-sha256. Only for the generic
	 * aws-sig-v4-test-suite, whose requests do not carry it; S3 refuses
	 * a request without it.
	 */
	bool no_content_sha256;
};

struct sigv4_out {
	char amz_date[17];	 /* "20130524T000000Z": x-amz-date */
	char content_sha256[65]; /* x-amz-content-sha256 value */
	char signature[65];
	char authorization[SIGV4_AUTH_MAX]; /* Authorization value */
	/* The intermediate texts, for tests and debugging (never logged:
	 * the canonical request can hold the session token). Freed (and
	 * wiped) by sigv4_out_cleanup(). */
	struct buf creq;
	struct buf sts;
};

/*
 * Percent-encode @n bytes of @s onto @out: every byte but A-Za-z0-9-._~
 * becomes %XX (upper-case hex); '/' is kept when @keep_slash. 0, or
 * -EFBIG past the buffer's cap / -ENOMEM.
 */
int sigv4_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash);

/* S3 canonical URI of the raw @path ("" -> "/"), onto @out. */
int sigv4_canonical_uri(struct buf *out, const char *path);

/*
 * Canonical query string of @n raw parameters onto @out: names and values
 * encoded (including '/', '+', '='), sorted by encoded name, then value.
 * -E2BIG for more than SIGV4_MAX_HEADERS * 2 parameters.
 */
int sigv4_canonical_query(struct buf *out, const struct sigv4_kv *q, size_t n);

/*
 * The signing key: HMAC chain "AWS4"+secret -> @date8 ("20130524") ->
 * @region -> @service -> "aws4_request", into @key (32 bytes).
 */
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
		      const char *service, unsigned char key[32]);

/*
 * Sign @req with @c at time @now (seconds since the epoch, UTC): fills
 * @out (amz_date, content_sha256, signature, authorization, creq, sts).
 * The caller sends Authorization, x-amz-date, x-amz-content-sha256 (unless
 * no_content_sha256) and x-amz-security-token (with a token) with exactly
 * the values given, and the path and query encoded as signed (use
 * sigv4_canonical_uri() and sigv4_canonical_query() to build the URL).
 *
 * Returns 0, or -EINVAL (missing method/path/host/region/service/keys, a
 * header name that is not a token, a header value with a line break),
 * -E2BIG (too many headers, Authorization too long), -EFBIG / -ENOMEM;
 * the reason in @err never holds a key. @out must be cleaned up with
 * sigv4_out_cleanup() in every case.
 */
int sigv4_sign(const struct sigv4_req *req, const struct sigv4_creds *c,
	       time_t now, struct sigv4_out *out, char *err, size_t errlen);
void sigv4_out_cleanup(struct sigv4_out *out);

/* Lower-case hex SHA-256 of @n bytes at @p into @hex (65 bytes). */
void sigv4_sha256_hex(const void *p, size_t n, char hex[65]);

#endif
