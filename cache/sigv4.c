/*
 * sigv4.c - AWS Signature Version 4 for S3 (see sigv4.h).
 *
 * DESIGN
 *	The four published steps, each a function over plain inputs:
 *
 *	1. canonical request = METHOD \n URI \n QUERY \n HEADERS \n
 *	   SIGNED-HEADERS \n PAYLOAD-HASH, where HEADERS is one
 *	   "name:value\n" per distinct lower-cased name, sorted, values
 *	   trimmed with inner runs of blanks collapsed to one space, and the
 *	   values of a repeated name joined by ',' in the order given;
 *	2. string to sign = "AWS4-HMAC-SHA256" \n DATE-TIME \n SCOPE \n
 *	   hex(SHA-256(canonical request)), SCOPE = date/region/service/
 *	   aws4_request;
 *	3. signing key = HMAC chain over "AWS4"+secret, date, region, service,
 *	   "aws4_request";
 *	4. signature = hex(HMAC(signing key, string to sign)).
 *
 *	Sorting is by bytes of the encoded (query) or lower-cased (headers)
 *	names, as AWS specifies; the header sort is stable so repeated
 *	headers keep their order. Everything is built in struct bufs with
 *	caps, so a hostile key cannot make the signer allocate without
 *	bound.
 *
 * REJECTED
 *	CURLOPT_AWS_SIGV4: it signs the URL as given (the caller must
 *	encode and sort anyway), adds no x-amz-content-sha256, and cannot be
 *	tested against the vectors without a server.
 *	Path normalisation (RFC 3986 remove_dot_segments) as the generic
 *	SigV4 does: S3 keys may hold "//" or "." segments and S3 signs them
 *	as sent. rgtfs refuses such keys before it builds a request anyway
 *	(s3xml.h, s3_key_component_ok()).
 */
#include "sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* clang-format off */
#define CREQ_MAX	(256 * 1024)	/* canonical request */
#define PART_MAX	(64 * 1024)	/* one encoded name or value */
#define NAME_MAX_LEN	128		/* header name */
#define MAX_QUERY	(SIGV4_MAX_HEADERS * 2)
#define ALGO		"AWS4-HMAC-SHA256"
/* clang-format on */

static const char hexd[] = "0123456789abcdef";
static const char hexu[] = "0123456789ABCDEF";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexd[p[i] >> 4];
		out[2 * i + 1] = hexd[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *p, size_t n, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(p ? p : "", n, md, &mdlen, EVP_sha256(), NULL);
	to_hex(md, 32, hex);
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

int sigv4_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[3];

		if (unreserved(c) || (keep_slash && c == '/')) {
			rc = buf_append(out, &s[i], 1);
			continue;
		}
		e[0] = '%';
		e[1] = hexu[c >> 4];
		e[2] = hexu[c & 15];
		rc = buf_append(out, e, 3);
	}
	return rc;
}

int sigv4_canonical_uri(struct buf *out, const char *path)
{
	if (!path || !*path)
		return buf_append(out, "/", 1);
	if (path[0] != '/') {
		int rc = buf_append(out, "/", 1);

		if (rc)
			return rc;
	}
	return sigv4_uri_encode(out, path, strlen(path), true);
}

struct qpart {
	struct buf name, value;
};

static int qcmp(const struct qpart *a, const struct qpart *b)
{
	int c = strcmp(a->name.data ? a->name.data : "",
		       b->name.data ? b->name.data : "");

	if (c)
		return c;
	return strcmp(a->value.data ? a->value.data : "",
		      b->value.data ? b->value.data : "");
}

int sigv4_canonical_query(struct buf *out, const struct sigv4_kv *q, size_t n)
{
	struct qpart *p;
	int rc = 0;

	if (!n)
		return 0;
	if (n > MAX_QUERY)
		return -E2BIG;
	p = calloc(n, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *v = q[i].value ? q[i].value : "";

		buf_init(&p[i].name, PART_MAX);
		buf_init(&p[i].value, PART_MAX);
		if (!q[i].name) {
			rc = -EINVAL;
			continue;
		}
		if (!rc)
			rc = sigv4_uri_encode(&p[i].name, q[i].name,
					      strlen(q[i].name), false);
		if (!rc)
			rc = sigv4_uri_encode(&p[i].value, v, strlen(v), false);
	}
	/* Insertion sort: at most MAX_QUERY entries. */
	for (size_t i = 1; !rc && i < n; i++) {
		struct qpart t = p[i];
		size_t j = i;

		while (j > 0 && qcmp(&p[j - 1], &t) > 0) {
			p[j] = p[j - 1];
			j--;
		}
		p[j] = t;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		if (i)
			rc = buf_append(out, "&", 1);
		if (!rc && p[i].name.len)
			rc = buf_append(out, p[i].name.data, p[i].name.len);
		if (!rc)
			rc = buf_append(out, "=", 1);
		if (!rc && p[i].value.len)
			rc = buf_append(out, p[i].value.data, p[i].value.len);
	}
	for (size_t i = 0; i < n; i++) {
		buf_cleanup(&p[i].name);
		buf_cleanup(&p[i].value);
	}
	free(p);
	return rc;
}

static int hmac(const void *key, size_t klen, const void *msg, size_t n,
		unsigned char out[32])
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, msg, n, out, &len) || len != 32)
		return -EIO;
	return 0;
}

int sigv4_signing_key(const char *secret, const char *date8, const char *region,
		      const char *service, unsigned char key[32])
{
	char k0[4 + 256 + 1];
	unsigned char a[32], b[32];
	size_t sl = strlen(secret);
	int rc;

	if (sl > 256)
		return -EINVAL;
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, sl);
	rc = hmac(k0, 4 + sl, date8, strlen(date8), a);
	if (!rc)
		rc = hmac(a, 32, region, strlen(region), b);
	if (!rc)
		rc = hmac(b, 32, service, strlen(service), a);
	if (!rc)
		rc = hmac(a, 32, "aws4_request", 12, key);
	OPENSSL_cleanse(k0, sizeof(k0));
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return rc;
}

/* RFC 7230 token characters: what a header name may hold. */
static bool token_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c))
			return false;
	}
	return n > 0 && n <= NAME_MAX_LEN;
}

/* Append @v trimmed, inner runs of blanks collapsed to one space. */
static int append_trimmed(struct buf *out, const char *v)
{
	bool blank = false, any = false;
	int rc = 0;

	for (; !rc && *v; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = any;
			continue;
		}
		if (blank)
			rc = buf_append(out, " ", 1);
		blank = false;
		any = true;
		if (!rc)
			rc = buf_append(out, v, 1);
	}
	return rc;
}

static bool simple_word(const char *s, size_t max)
{
	size_t n = 0;

	for (; s && s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && s[n] != '-' && s[n] != '_')
			return false;
	return n > 0 && n <= max;
}

/* Access keys are printable and hold nothing that ends the Credential. */
static bool access_key_ok(const char *s)
{
	size_t n = 0;

	for (; s && s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (c <= ' ' || c >= 0x7f || c == ',' || c == '/' || c == '=')
			return false;
	}
	return n > 0 && n <= 128;
}

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "sigv4: %s", msg);
	return rc;
}

int sigv4_sign(const struct sigv4_req *req, const struct sigv4_creds *c,
	       time_t now, struct sigv4_out *out, char *err, size_t errlen)
{
	struct sigv4_kv hv[SIGV4_MAX_HEADERS + 3];
	size_t nh = 0;
	struct buf sh;
	char scope[256], hash[65];
	unsigned char key[32], sig[32];
	bool host = false, token;
	struct tm tm;
	int rc, n;

	memset(out, 0, sizeof(*out));
	buf_init(&out->creq, CREQ_MAX);
	buf_init(&out->sts, 1024);
	buf_init(&sh, 8192);
	if (err && errlen)
		err[0] = '\0';

	if (!req->method || !simple_word(req->method, 16) || !req->path)
		return fail(err, errlen, -EINVAL, "no method or path");
	if (!simple_word(req->region, 64) || !simple_word(req->service, 64))
		return fail(err, errlen, -EINVAL, "bad region or service");
	if (!c || !access_key_ok(c->access_key) || !c->secret_key ||
	    !*c->secret_key || strlen(c->secret_key) > 256)
		return fail(err, errlen, -EINVAL,
			    "access key or secret key missing or malformed");
	if (req->nheaders > SIGV4_MAX_HEADERS)
		return fail(err, errlen, -E2BIG, "too many headers");
	token = c->session_token && *c->session_token;
	if (token && strpbrk(c->session_token, "\r\n"))
		return fail(err, errlen, -EINVAL,
			    "session token holds a line break");

	if (!gmtime_r(&now, &tm) ||
	    !strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ",
		      &tm))
		return fail(err, errlen, -EINVAL, "time out of range");

	if (req->payload_hash) {
		size_t pl = strlen(req->payload_hash);

		if (strcmp(req->payload_hash, SIGV4_UNSIGNED_PAYLOAD) &&
		    (pl != 64 || strspn(req->payload_hash, hexd) != 64))
			return fail(err, errlen, -EINVAL, "bad payload hash");
		snprintf(out->content_sha256, sizeof(out->content_sha256), "%s",
			 req->payload_hash);
	} else {
		sigv4_sha256_hex(req->body, req->body ? req->body_len : 0,
				 out->content_sha256);
	}

	for (size_t i = 0; i < req->nheaders; i++) {
		const struct sigv4_kv *h = &req->headers[i];

		if (!h->name || !token_ok(h->name))
			return fail(err, errlen, -EINVAL,
				    "header name is not a token");
		if (h->value && strpbrk(h->value, "\r\n"))
			return fail(err, errlen, -EINVAL,
				    "header value holds a line break");
		if (!strcasecmp(h->name, "x-amz-date") ||
		    !strcasecmp(h->name, "x-amz-content-sha256") ||
		    !strcasecmp(h->name, "x-amz-security-token") ||
		    !strcasecmp(h->name, "authorization"))
			return fail(err, errlen, -EINVAL,
				    "a header the signer sets was passed in");
		if (!strcasecmp(h->name, "host"))
			host = true;
		hv[nh++] = *h;
	}
	if (!host)
		return fail(err, errlen, -EINVAL, "no Host header");
	hv[nh++] = (struct sigv4_kv){"x-amz-date", out->amz_date};
	if (!req->no_content_sha256)
		hv[nh++] = (struct sigv4_kv){"x-amz-content-sha256",
					     out->content_sha256};
	if (token)
		hv[nh++] =
		    (struct sigv4_kv){"x-amz-security-token", c->session_token};
	/* Stable insertion sort by lower-cased name. */
	for (size_t i = 1; i < nh; i++) {
		struct sigv4_kv t = hv[i];
		size_t j = i;

		while (j > 0 && strcasecmp(hv[j - 1].name, t.name) > 0) {
			hv[j] = hv[j - 1];
			j--;
		}
		hv[j] = t;
	}

	/* 1. canonical request */
	rc = buf_appendf(&out->creq, "%s\n", req->method);
	if (!rc)
		rc = sigv4_canonical_uri(&out->creq, req->path);
	if (!rc)
		rc = buf_append(&out->creq, "\n", 1);
	if (!rc)
		rc = sigv4_canonical_query(&out->creq, req->query, req->nquery);
	if (!rc)
		rc = buf_append(&out->creq, "\n", 1);
	for (size_t i = 0; !rc && i < nh; i++) {
		bool first = !i || strcasecmp(hv[i - 1].name, hv[i].name);
		bool last =
		    i + 1 == nh || strcasecmp(hv[i + 1].name, hv[i].name);

		if (first) {
			struct buf *bs[2] = {&out->creq, &sh};

			if (i)
				rc = buf_append(&sh, ";", 1);
			for (int k = 0; !rc && k < 2; k++)
				for (const char *p = hv[i].name; !rc && *p;
				     p++) {
					char l =
					    (char)tolower((unsigned char)*p);

					rc = buf_append(bs[k], &l, 1);
				}
			if (!rc)
				rc = buf_append(&out->creq, ":", 1);
		} else {
			rc = buf_append(&out->creq, ",", 1);
		}
		if (!rc)
			rc = append_trimmed(&out->creq,
					    hv[i].value ? hv[i].value : "");
		if (!rc && last)
			rc = buf_append(&out->creq, "\n", 1);
	}
	if (!rc)
		rc = buf_appendf(&out->creq, "\n%s\n%s", sh.data,
				 out->content_sha256);
	if (rc) {
		buf_cleanup(&sh);
		return fail(err, errlen, rc, "request too large to sign");
	}

	/* 2. string to sign */
	n = snprintf(scope, sizeof(scope), "%.8s/%s/%s/aws4_request",
		     out->amz_date, req->region, req->service);
	if (n < 0 || (size_t)n >= sizeof(scope)) {
		buf_cleanup(&sh);
		return fail(err, errlen, -E2BIG, "scope too long");
	}
	sigv4_sha256_hex(out->creq.data, out->creq.len, hash);
	rc = buf_appendf(&out->sts, ALGO "\n%s\n%s\n%s", out->amz_date, scope,
			 hash);
	if (rc) {
		buf_cleanup(&sh);
		return fail(err, errlen, rc, "string to sign too long");
	}

	/* 3., 4. */
	char date8[9];

	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';
	rc = sigv4_signing_key(c->secret_key, date8, req->region, req->service,
			       key);
	if (!rc)
		rc = hmac(key, sizeof(key), out->sts.data, out->sts.len, sig);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc) {
		buf_cleanup(&sh);
		return fail(err, errlen, rc, "HMAC failed");
	}
	to_hex(sig, 32, out->signature);
	OPENSSL_cleanse(sig, sizeof(sig));

	n = snprintf(out->authorization, sizeof(out->authorization),
		     ALGO " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		     c->access_key, scope, sh.data, out->signature);
	buf_cleanup(&sh);
	if (n < 0 || (size_t)n >= sizeof(out->authorization)) {
		out->authorization[0] = '\0';
		return fail(err, errlen, -E2BIG, "Authorization too long");
	}
	return 0;
}

void sigv4_out_cleanup(struct sigv4_out *out)
{
	if (!out)
		return;
	if (out->creq.data)
		OPENSSL_cleanse(out->creq.data, out->creq.len);
	buf_cleanup(&out->creq);
	buf_cleanup(&out->sts);
	OPENSSL_cleanse(out->authorization, sizeof(out->authorization));
}
