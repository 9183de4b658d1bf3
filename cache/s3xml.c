/*
 * s3xml.c - strict readers for S3's XML answers, and the key rule (see
 * s3xml.h).
 *
 * DESIGN
 *	A page is parsed into a libxml2 tree in one call (bodies are capped
 *	by the caller, at most a few MiB), then walked once. The parser
 *	runs with XML_PARSE_NONET and without XML_PARSE_NOENT, XML_PARSE_
 *	DTDLOAD, XML_PARSE_RECOVER or XML_PARSE_HUGE: no network, no entity
 *	substitution, no DTD loading, no "recover what you can" (a document
 *	cut anywhere fails to parse instead of becoming a shorter list), and
 *	libxml2's default limits on depth and text size. Before the parser
 *	sees a byte, a document holding "<!DOCTYPE" or "<!ENTITY" is refused;
 *	after it, a document that still has a DTD node is refused too, as a
 *	second lock on the same door.
 *
 *	What makes a page complete: a well-formed document whose root is
 *	ListBucketResult, with exactly one IsTruncated ("true"/"false"), a
 *	NextContinuationToken when it says true, and, when KeyCount is
 *	present, KeyCount equal to the Contents plus CommonPrefixes it
 *	holds (AWS) or to its Contents alone (s3rver 4 counts only those).
 *	Every Contents has a non-empty Key, a decimal Size and an ISO 8601
 *	LastModified; anything else is an error naming the entry.
 *
 * REJECTED
 *	A SAX or xmlReader stream: less code to get wrong with a bounded
 *	tree, and the body is already in memory and capped.
 *	Fixing up odd keys (stripping "..", collapsing "//"): a key that
 *	cannot be a tree name is skipped and reported, never renamed, so two
 *	keys can never map onto one name.
 */
#define _GNU_SOURCE /* memmem */
#include "s3xml.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define TOKEN_MAX 4096 /* NextContinuationToken */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init_once(void)
{
	xmlInitParser();
}

void s3xml_init(void)
{
	pthread_once(&xml_once, xml_init_once);
}

void s3_escape(const char *s, size_t n, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!outlen)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1
			      : c == '\\'			   ? 2
								   : 4;

		if (o + need + 4 > outlen) { /* room for "..." and NUL */
			if (o + 4 <= outlen) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else if (need == 2) {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

int s3_parse_iso8601(const char *s, int64_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, n = 0;
	const char *p;
	time_t t;

	if (!s ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
		   &n) != 6 ||
	    n != 19)
		return -EINVAL;
	p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") && strcmp(p, "+00:00"))
		return -EINVAL;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = (int64_t)t;
	return 0;
}

/* Length of the UTF-8 sequence at @p (at most @n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned int cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool key_bad(const char *key, size_t n, char *why, size_t whylen,
		    const char *reason)
{
	char esc[160];

	if (why && whylen) {
		s3_escape(key, n, esc, sizeof(esc));
		snprintf(why, whylen, "key \"%s\": %s", esc, reason);
	}
	return false;
}

bool s3_key_component_ok(const char *key, size_t n, char *why, size_t whylen)
{
	const unsigned char *p = (const unsigned char *)key;
	size_t seg = 0; /* start of the current segment */

	if (why && whylen)
		why[0] = '\0';
	if (!n)
		return key_bad(key, n, why, whylen, "empty name");
	if (n > S3_KEY_MAX)
		return key_bad(key, n, why, whylen, "longer than 1024 bytes");
	if (p[0] == '/')
		return key_bad(key, n, why, whylen, "leading '/'");
	for (size_t i = 0; i <= n; i++) {
		if (i == n || p[i] == '/') {
			size_t len = i - seg;

			if (!len)
				return key_bad(key, n, why, whylen,
					       "empty segment ('//' or a "
					       "trailing '/')");
			if (len > S3_NAME_MAX)
				return key_bad(key, n, why, whylen,
					       "a segment longer than 255 "
					       "bytes");
			if ((len == 1 && p[seg] == '.') ||
			    (len == 2 && p[seg] == '.' && p[seg + 1] == '.'))
				return key_bad(key, n, why, whylen,
					       "a '.' or '..' segment");
			seg = i + 1;
			continue;
		}
		if (p[i] < 0x20 || p[i] == 0x7f)
			return key_bad(key, n, why, whylen,
				       p[i] == '\n' ? "holds a newline"
				       : p[i]	    ? "holds a control byte"
						    : "holds a NUL byte");
		if (p[i] >= 0x80) {
			size_t l = utf8_len(p + i, n - i);

			if (!l)
				return key_bad(key, n, why, whylen,
					       "not valid UTF-8");
			i += l - 1;
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* documents                                                          */

static int perr(char *err, size_t errlen, int rc, const char *fmt,
		const char *a)
{
	if (err && errlen) {
		char esc[200];

		s3_escape(a, strlen(a), esc, sizeof(esc));
		snprintf(err, errlen, fmt, esc);
	}
	return rc;
}

static bool has_dtd_bytes(const char *xml, size_t len)
{
	return memmem(xml, len, "<!DOCTYPE", 9) ||
	       memmem(xml, len, "<!ENTITY", 8);
}

/*
 * Parse @len bytes strictly; NULL with the reason in @err on any error.
 * The caller frees with xmlFreeDoc().
 */
static xmlDocPtr parse(const char *xml, size_t len, char *err, size_t errlen)
{
	xmlParserCtxtPtr ctx;
	xmlDocPtr doc;

	s3xml_init();
	if (!xml || !len) {
		perr(err, errlen, 0, "empty document%s", "");
		return NULL;
	}
	if (len > INT_MAX) {
		perr(err, errlen, 0, "document too large%s", "");
		return NULL;
	}
	if (has_dtd_bytes(xml, len)) {
		perr(err, errlen, 0,
		     "document has a DOCTYPE or ENTITY declaration (refused)%s",
		     "");
		return NULL;
	}
	ctx = xmlNewParserCtxt();
	if (!ctx) {
		perr(err, errlen, 0, "out of memory%s", "");
		return NULL;
	}
	doc = xmlCtxtReadMemory(ctx, xml, (int)len, "s3.xml", NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR |
				    XML_PARSE_NOWARNING);
	if (!doc || !ctx->wellFormed) {
		const xmlError *e = xmlCtxtGetLastError(ctx);
		const char *m = e && e->message ? e->message : "not well-formed";
		char msg[160];

		/* libxml2 quotes the document's bytes (a namespace URI, a
		 * tag) as they are: escape them like every other reason. */
		s3_escape(m, strcspn(m, "\n"), msg, sizeof(msg));
		if (err && errlen)
			snprintf(err, errlen, "malformed XML (line %d: %s)",
				 e ? e->line : 0, msg);
		if (doc)
			xmlFreeDoc(doc);
		xmlFreeParserCtxt(ctx);
		return NULL;
	}
	xmlFreeParserCtxt(ctx);
	if (doc->intSubset || doc->extSubset) {
		perr(err, errlen, 0, "document has a DTD (refused)%s", "");
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static bool is(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       !strcmp((const char *)n->name, name);
}

/*
 * The text of element @n, only if it has no element children and is at
 * most @max bytes; NULL otherwise (and on out of memory). xmlFree().
 */
static char *text_of(xmlNodePtr n, size_t max, int *rc)
{
	xmlChar *s;

	for (xmlNodePtr c = n->children; c; c = c->next)
		if (c->type != XML_TEXT_NODE &&
		    c->type != XML_CDATA_SECTION_NODE) {
			*rc = -EPROTO;
			return NULL;
		}
	s = xmlNodeGetContent(n);
	if (!s) {
		s = xmlStrdup((const xmlChar *)"");
		if (!s) {
			*rc = -ENOMEM;
			return NULL;
		}
	}
	if (strlen((const char *)s) > max) {
		xmlFree(s);
		*rc = -E2BIG;
		return NULL;
	}
	*rc = 0;
	return (char *)s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

/*
 * @t percent-decoded ("+" is a space) into a malloc'd copy and its length;
 * -EPROTO on a bad escape.
 */
static int url_decode(const char *t, char **out, size_t *outlen)
{
	size_t n = strlen(t), o = 0;
	char *r = malloc(n + 1);

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (t[i] == '+') {
			r[o++] = ' ';
			continue;
		}
		if (t[i] != '%') {
			r[o++] = t[i];
			continue;
		}
		if (n - i < 3) {
			free(r);
			return -EPROTO;
		}
		hi = hexval(t[i + 1]);
		lo = hi < 0 ? -1 : hexval(t[i + 2]);
		if (lo < 0) {
			free(r);
			return -EPROTO;
		}
		r[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	r[o] = '\0';
	*out = r;
	*outlen = o;
	return 0;
}

/* A Key or Prefix value, decoded when the page is URL-encoded. */
static int key_value(const char *t, bool enc, char **out, size_t *len)
{
	if (enc)
		return url_decode(t, out, len);
	*out = strdup(t);
	*len = strlen(t);
	return *out ? 0 : -ENOMEM;
}

static int parse_contents(xmlNodePtr n, struct s3_object *o, bool enc,
			  char *err, size_t errlen)
{
	bool have_size = false, have_mtime = false;
	int rc = 0;

	for (xmlNodePtr c = n->children; c && !rc; c = c->next) {
		char *t;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (!is(c, "Key") && !is(c, "Size") && !is(c, "LastModified") &&
		    !is(c, "ETag"))
			continue;
		/* URL-encoded keys may be three times as long */
		t = text_of(c, is(c, "Key") ? S3_KEY_MAX * 3 : 128, &rc);
		if (!t) {
			if (rc == -E2BIG && is(c, "Key"))
				return perr(err, errlen, -E2BIG,
					    "a key is longer than 1024 "
					    "bytes%s",
					    "");
			return perr(err, errlen, rc == -ENOMEM ? rc : -EPROTO,
				    "Contents/%s: too long or not text",
				    (const char *)c->name);
		}
		if (is(c, "Key")) {
			if (o->key)
				rc = perr(err, errlen, -EPROTO,
					  "Contents with two Keys%s", "");
			else if (!*t)
				rc = perr(err, errlen, -EPROTO,
					  "Contents with an empty Key%s", "");
			else if ((rc = key_value(t, enc, &o->key, &o->key_len)))
				rc = rc == -ENOMEM
					 ? rc
					 : perr(err, errlen, -EPROTO,
						"a bad %%-escape in Key \"%s\"",
						t);
			else if (o->key_len > S3_KEY_MAX)
				rc = perr(err, errlen, -E2BIG,
					  "a key is longer than 1024 bytes%s",
					  "");
			else if (!o->key_len)
				rc = perr(err, errlen, -EPROTO,
					  "Contents with an empty Key%s", "");
		} else if (is(c, "Size")) {
			if (have_size || parse_u64(t, &o->size) ||
			    o->size > INT64_MAX)
				rc = perr(err, errlen, -EPROTO,
					  "Contents: bad Size \"%s\"", t);
			have_size = true;
		} else if (is(c, "LastModified")) {
			if (have_mtime || s3_parse_iso8601(t, &o->mtime))
				rc = perr(err, errlen, -EPROTO,
					  "Contents: bad LastModified \"%s\"",
					  t);
			have_mtime = true;
		} else {
			if (strlen(t) >= S3_ETAG_MAX || o->etag[0])
				rc = perr(err, errlen, -EPROTO,
					  "Contents: bad ETag \"%s\"", t);
			else
				snprintf(o->etag, sizeof(o->etag), "%s", t);
		}
		xmlFree(t);
	}
	if (rc)
		return rc;
	if (!o->key || !have_size || !have_mtime)
		return perr(err, errlen, -EPROTO, "Contents without %s",
			    !o->key	 ? "Key"
			    : !have_size ? "Size"
					 : "LastModified");
	return 0;
}

static int parse_prefix(xmlNodePtr n, bool enc, char **out, size_t *len,
			char *err, size_t errlen)
{
	int rc = 0;

	for (xmlNodePtr c = n->children; c; c = c->next) {
		char *t;

		if (!is(c, "Prefix"))
			continue;
		if (*out)
			return perr(err, errlen, -EPROTO,
				    "CommonPrefixes with two Prefixes%s", "");
		t = text_of(c, S3_KEY_MAX * 3, &rc);
		if (!t)
			return perr(err, errlen, rc,
				    "CommonPrefixes/Prefix: too long or not "
				    "text%s",
				    "");
		if (!*t) {
			xmlFree(t);
			return perr(err, errlen, -EPROTO,
				    "an empty CommonPrefixes/Prefix%s", "");
		}
		rc = key_value(t, enc, out, len);
		if (rc == -EPROTO)
			perr(err, errlen, rc,
			     "a bad %%-escape in CommonPrefixes/Prefix \"%s\"",
			     t);
		xmlFree(t);
		if (rc)
			return rc;
		if (*len > S3_KEY_MAX)
			return perr(err, errlen, -E2BIG,
				    "a prefix is longer than 1024 bytes%s", "");
		if (!*len)
			return perr(err, errlen, -EPROTO,
				    "an empty CommonPrefixes/Prefix%s", "");
	}
	if (!*out)
		return perr(err, errlen, -EPROTO,
			    "CommonPrefixes without Prefix%s", "");
	return 0;
}

/* One singleton field's text; a second occurrence is an error. */
static int single(xmlNodePtr c, bool *seen, size_t max, char **out, char *err,
		  size_t errlen)
{
	int rc;

	if (*seen)
		return perr(err, errlen, -EPROTO, "%s appears twice",
			    (const char *)c->name);
	*seen = true;
	*out = text_of(c, max, &rc);
	if (!*out)
		return perr(err, errlen, rc == -ENOMEM ? rc : -EPROTO,
			    "%s: too long or not text", (const char *)c->name);
	return 0;
}

int s3xml_parse_list(const char *xml, size_t len, struct s3_list_page *out,
		     char *err, size_t errlen)
{
	bool seen_trunc = false, seen_token = false, seen_count = false;
	size_t nobj = 0, npre = 0;
	xmlDocPtr doc;
	xmlNodePtr root;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->key_count = -1;
	if (err && errlen)
		err[0] = '\0';
	doc = parse(xml, len, err, errlen);
	if (!doc)
		return -EPROTO;
	root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "ListBucketResult")) {
		rc = perr(err, errlen, -EPROTO,
			  "not a ListBucketResult (root element \"%s\")",
			  root ? (const char *)root->name : "");
		goto out;
	}
	/* A first pass: EncodingType may come after the keys it applies to,
	 * and the entries are counted (and bounded) before any is copied. */
	for (xmlNodePtr c = root->children; c && !rc; c = c->next) {
		char *t;

		if (is(c, "Contents"))
			nobj++;
		else if (is(c, "CommonPrefixes"))
			npre++;
		if (nobj + npre > S3_LIST_MAX_ENTRIES) {
			char n[32];

			snprintf(n, sizeof(n), "%d", S3_LIST_MAX_ENTRIES);
			rc = perr(err, errlen, -E2BIG,
				  "more than %s entries in one page", n);
			break;
		}
		if (!is(c, "EncodingType"))
			continue;
		if (out->url_encoded) {
			rc = perr(err, errlen, -EPROTO,
				  "EncodingType appears twice%s", "");
			break;
		}
		t = text_of(c, 16, &rc);
		if (!t || strcmp(t, "url"))
			rc = perr(err, errlen, -EPROTO,
				  "EncodingType is not \"url\"%s", "");
		else
			out->url_encoded = true;
		if (t)
			xmlFree(t);
	}
	if (rc)
		goto out;
	out->obj = calloc(nobj ? nobj : 1, sizeof(*out->obj));
	out->prefixes = calloc(npre ? npre : 1, sizeof(*out->prefixes));
	out->prefix_len = calloc(npre ? npre : 1, sizeof(*out->prefix_len));
	if (!out->obj || !out->prefixes || !out->prefix_len) {
		rc = -ENOMEM;
		goto out;
	}
	for (xmlNodePtr c = root->children; c && !rc; c = c->next) {
		char *t = NULL;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, "Contents") || is(c, "CommonPrefixes")) {
			if (is(c, "Contents")) {
				rc = parse_contents(c, &out->obj[out->nobj++],
						    out->url_encoded, err,
						    errlen);
			} else {
				size_t i = out->nprefix++;

				rc = parse_prefix(
				    c, out->url_encoded, &out->prefixes[i],
				    &out->prefix_len[i], err, errlen);
			}
		} else if (is(c, "IsTruncated")) {
			rc = single(c, &seen_trunc, 8, &t, err, errlen);
			if (!rc && !strcmp(t, "true"))
				out->truncated = true;
			else if (!rc && strcmp(t, "false"))
				rc = perr(err, errlen, -EPROTO,
					  "IsTruncated is \"%s\"", t);
		} else if (is(c, "NextContinuationToken")) {
			rc = single(c, &seen_token, TOKEN_MAX, &t, err, errlen);
			if (!rc && !(out->next_token = strdup(t)))
				rc = -ENOMEM;
		} else if (is(c, "KeyCount")) {
			uint64_t v;

			rc = single(c, &seen_count, 20, &t, err, errlen);
			if (!rc && (parse_u64(t, &v) || v > LONG_MAX))
				rc = perr(err, errlen, -EPROTO,
					  "KeyCount is \"%s\"", t);
			else if (!rc)
				out->key_count = (long)v;
		}
		if (t)
			xmlFree(t);
	}
	if (rc)
		goto out;
	if (!seen_trunc) {
		rc = perr(err, errlen, -EPROTO,
			  "no IsTruncated: cannot tell whether the listing "
			  "is complete%s",
			  "");
	} else if (out->truncated && (!out->next_token || !*out->next_token)) {
		rc = perr(err, errlen, -EPROTO,
			  "IsTruncated without a NextContinuationToken%s", "");
	} else if (out->key_count >= 0 &&
		   (size_t)out->key_count != out->nobj + out->nprefix &&
		   (size_t)out->key_count != out->nobj) {
		char n[64];

		snprintf(n, sizeof(n), "%ld, the page holds %zu",
			 out->key_count, out->nobj + out->nprefix);
		rc = perr(err, errlen, -EPROTO, "KeyCount is %s", n);
	}
out:
	xmlFreeDoc(doc);
	if (rc) /* nothing of a refused page is handed out */
		s3xml_list_cleanup(out);
	return rc;
}

void s3xml_list_cleanup(struct s3_list_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->obj && i < p->nobj; i++)
		free(p->obj[i].key);
	for (size_t i = 0; p->prefixes && i < p->nprefix; i++)
		free(p->prefixes[i]);
	free(p->obj);
	free(p->prefixes);
	free(p->prefix_len);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
	p->key_count = -1;
}

int s3xml_parse_error(const char *xml, size_t len, char *code, size_t codelen,
		      char *msg, size_t msglen)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	int rc;

	if (code && codelen)
		code[0] = '\0';
	if (msg && msglen)
		msg[0] = '\0';
	doc = parse(xml, len, NULL, 0);
	if (!doc)
		return -EPROTO;
	root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "Error")) {
		xmlFreeDoc(doc);
		return -EPROTO;
	}
	for (xmlNodePtr c = root->children; c; c = c->next) {
		char *t;

		if (!is(c, "Code") && !is(c, "Message"))
			continue;
		t = text_of(c, 4096, &rc);
		if (!t)
			continue;
		if (is(c, "Code") && code)
			s3_escape(t, strlen(t), code, codelen);
		else if (is(c, "Message") && msg)
			s3_escape(t, strlen(t), msg, msglen);
		xmlFree(t);
	}
	xmlFreeDoc(doc);
	return 0;
}
