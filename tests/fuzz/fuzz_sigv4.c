/*
 * fuzz_sigv4.c - SigV4 canonicalisation and signing (cache/sigv4.c) on
 * hostile request parts: the object key (path), query parameters and
 * header names and values come from listings and users.
 *
 * The input is lines: method, path, region, service, time, then any of
 * "Q name=value" (no '=': a parameter without value), "H name:value",
 * "P payload-hash", "B body", "T session-token".
 *
 * Invariants: signing is a function of the request (the same request
 * twice, and with the query and the (distinct) headers in reverse order,
 * gives the same canonical request, string to sign and signature); an
 * accepted request's signature is 64 lower hex digits, the last line of
 * the string to sign is the SHA-256 of the canonical request, and the
 * secret key appears in nothing (not the reason, the canonical request or
 * the Authorization value); the canonical URI and query hold only
 * unreserved bytes, '%XX' and their separators, and percent-decode back to
 * what was given.
 */
#include <errno.h>
#include <strings.h>

#include "fuzz.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define MAXKV 80

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* upper-case hex only, as the encoder promises */
}

/* Percent-decode @n bytes at @s into @out (malloc'd); @extra is allowed
 * unencoded besides the unreserved bytes. NULL if not well formed. */
static char *decode(const char *s, size_t n, const char *extra, size_t *outn)
{
	char *o = malloc(n + 1);
	size_t k = 0;
	if (!o)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n) {
				free(o);
				return NULL;
			}
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0) {
				free(o);
				return NULL;
			}
			o[k++] = (char)(h << 4 | l);
			i += 2;
		} else if (unreserved(c) || (c && strchr(extra, c))) {
			o[k++] = (char)c;
		} else {
			free(o);
			return NULL;
		}
	}
	o[k] = '\0';
	*outn = k;
	return o;
}

static bool lower_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool same_out(const struct sigv4_out *a, const struct sigv4_out *b)
{
	return !strcmp(a->amz_date, b->amz_date) &&
	       !strcmp(a->content_sha256, b->content_sha256) &&
	       !strcmp(a->signature, b->signature) &&
	       !strcmp(a->authorization, b->authorization) &&
	       a->creq.len == b->creq.len &&
	       (!a->creq.len || !memcmp(a->creq.data, b->creq.data, a->creq.len)) &&
	       a->sts.len == b->sts.len &&
	       (!a->sts.len || !memcmp(a->sts.data, b->sts.data, a->sts.len));
}

static void check_uri(const char *path)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	if (sigv4_canonical_uri(&b, path) == 0) {
		size_t n;
		char *d = decode(b.data, b.len, "/", &n);
		FUZZ_ASSERT(d != NULL);
		FUZZ_ASSERT(d[0] == '/');
		if (path[0] == '/')
			FUZZ_ASSERT(!strcmp(d, path));
		else
			FUZZ_ASSERT(!strcmp(d + 1, path));
		free(d);
	}
	buf_cleanup(&b);

	/* A segment: '/' encoded too; decodes back, byte for byte. */
	buf_init(&b, 1 << 20);
	if (sigv4_uri_encode(&b, path, strlen(path), false) == 0) {
		size_t n;
		char *d = decode(b.data ? b.data : "", b.len, "", &n);
		FUZZ_ASSERT(d != NULL && n == strlen(path) &&
			    !memcmp(d, path, n));
		free(d);
	}
	buf_cleanup(&b);
}

static void check_query(const struct sigv4_kv *q, size_t n)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	if (sigv4_canonical_query(&b, q, n) == 0 && b.len) {
		/* name=value pairs, '&' between, sorted, all decodable */
		size_t parts = 1;
		for (size_t i = 0; i < b.len; i++) {
			unsigned char c = (unsigned char)b.data[i];
			FUZZ_ASSERT(unreserved(c) || c == '%' || c == '=' ||
				    c == '&');
			parts += c == '&';
		}
		FUZZ_ASSERT(parts == n);
		size_t dn;
		char *d = decode(b.data, b.len, "=&", &dn);
		FUZZ_ASSERT(d != NULL);
		free(d);
	}
	buf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	const char *field[5] = { "", "", "", "", "" };
	struct sigv4_kv q[MAXKV], h[MAXKV], rq[MAXKV], rh[MAXKV];
	size_t nq = 0, nh = 0;
	struct sigv4_req req = { 0 };
	struct sigv4_creds c = { "AKIDEXAMPLE", SECRET, NULL };
	int nf = 0;

	char *line = s, *next;
	for (; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (nf < 5) {
			field[nf++] = line;
			continue;
		}
		char *v;
		switch (line[0]) {
		case 'Q':
			if (nq == MAXKV)
				break;
			v = strchr(line + 1, '=');
			if (v)
				*v++ = '\0';
			q[nq].name = line + 1;
			q[nq++].value = v;
			break;
		case 'H':
			if (nh == MAXKV)
				break;
			v = strchr(line + 1, ':');
			if (v)
				*v++ = '\0';
			h[nh].name = line + 1;
			h[nh++].value = v;
			break;
		case 'P':
			req.payload_hash = line + 1;
			break;
		case 'B':
			req.body = line + 1;
			req.body_len = strlen(line + 1);
			break;
		case 'T':
			c.session_token = line + 1;
			break;
		}
	}
	req.method = field[0];
	req.path = field[1];
	req.region = field[2];
	req.service = field[3];
	time_t now = (time_t)strtoll(field[4], NULL, 10);
	/* the years gmtime can format in 4 digits */
	if (now < 0 || now > 253402300799LL)
		now = 1369353600;
	req.query = q;
	req.nquery = nq;
	req.headers = h;
	req.nheaders = nh;

	check_uri(req.path);
	check_query(q, nq);

	struct sigv4_out o1, o2, o3;
	char err[256];
	memset(&o1, 0, sizeof(o1));
	err[0] = '\0';
	int rc = sigv4_sign(&req, &c, now, &o1, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	FUZZ_ASSERT(!strstr(err, SECRET) ||
		    memmem(data, size, SECRET, strlen(SECRET)));
	memset(&o2, 0, sizeof(o2));
	int rc2 = sigv4_sign(&req, &c, now, &o2, err, sizeof(err));
	FUZZ_ASSERT(rc == rc2);
	/* The fuzzer can copy the secret into the request itself. */
	bool secret_in = memmem(data, size, SECRET, strlen(SECRET)) != NULL;
	if (rc == 0) {
		FUZZ_ASSERT(same_out(&o1, &o2));
		FUZZ_ASSERT(lower_hex64(o1.signature));
		FUZZ_ASSERT(strlen(o1.amz_date) == 16);
		FUZZ_ASSERT(!strncmp(o1.authorization,
				     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/",
				     40));
		size_t al = strlen(o1.authorization);
		FUZZ_ASSERT(al > 64 &&
			    !strcmp(o1.authorization + al - 64, o1.signature));
		FUZZ_ASSERT(fuzz_no_ctl(o1.authorization, al));
		FUZZ_ASSERT(secret_in || !strstr(o1.authorization, SECRET));
		FUZZ_ASSERT(secret_in || !memmem(o1.creq.data, o1.creq.len, SECRET,
				    strlen(SECRET)));
		char hex[65];
		sigv4_sha256_hex(o1.creq.data, o1.creq.len, hex);
		FUZZ_ASSERT(o1.sts.len > 64 &&
			    !memcmp(o1.sts.data + o1.sts.len - 64, hex, 64));
		FUZZ_ASSERT(o1.creq.len > strlen(req.method) &&
			    !memcmp(o1.creq.data, req.method,
				    strlen(req.method)) &&
			    o1.creq.data[strlen(req.method)] == '\n');
	}

	/* Order does not matter: the query always, the headers when their
	 * names are distinct (repeated ones are joined in order). */
	bool distinct = true;
	for (size_t i = 0; i < nh && distinct; i++)
		for (size_t j = i + 1; j < nh && distinct; j++)
			if (!strcasecmp(h[i].name, h[j].name))
				distinct = false;
	for (size_t i = 0; i < nq; i++)
		rq[i] = q[nq - 1 - i];
	for (size_t i = 0; i < nh; i++)
		rh[i] = distinct ? h[nh - 1 - i] : h[i];
	req.query = rq;
	req.headers = rh;
	memset(&o3, 0, sizeof(o3));
	int rc3 = sigv4_sign(&req, &c, now, &o3, err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(rc3 == 0);
		FUZZ_ASSERT(same_out(&o1, &o3));
	}
	sigv4_out_cleanup(&o1);
	sigv4_out_cleanup(&o2);
	sigv4_out_cleanup(&o3);
	free(s);
	return 0;
}
