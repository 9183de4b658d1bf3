/*
 * s3xml.h - what an S3 server answers, read strictly: the ListObjectsV2
 * result page, the error document, and the rule for which object keys may
 * become names in the tree.
 *
 * Every input is hostile. Documents are parsed from memory by libxml2 with
 * no network access and no entity substitution, and any document with a
 * DOCTYPE (an internal or external DTD) is refused before it is parsed: S3
 * never sends one, and refusing it blocks external entities (XXE) and
 * entity expansion bombs outright. A page holds at most S3_LIST_MAX_ENTRIES
 * entries and keys of at most S3_KEY_MAX bytes. A truncated or malformed
 * document is an error with a reason, never a shorter page taken as
 * complete: the required fields (IsTruncated, and NextContinuationToken
 * when it is true) must be there, and a KeyCount must match what the page
 * holds (Contents + CommonPrefixes, or Contents alone as s3rver counts).
 *
 * Pure: no I/O. Reentrant (libxml2's parser is, once initialised:
 * s3xml_init() runs xmlInitParser() once, from any thread, idempotently).
 */
#ifndef RGT_S3XML_H
#define RGT_S3XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S3_KEY_MAX 1024 /* bytes, as S3 itself */
/*
 * Entries (Contents + CommonPrefixes) one page may hold. We ask for
 * max-keys=1000 and AWS never sends more, but s3rver does not count
 * CommonPrefixes against max-keys (a page of 1000 objects can carry more
 * prefixes besides), so the bound leaves room for that and stays a bound.
 */
#define S3_LIST_MAX_ENTRIES 5000
#define S3_ETAG_MAX 80	/* with its quotes and NUL */
#define S3_NAME_MAX 255 /* one tree name (NAME_MAX) */

struct s3_object {
	char *key;	/* full key, as listed (decoded) */
	size_t key_len; /* may hold a NUL when URL-encoded */
	uint64_t size;
	int64_t mtime;		/* LastModified, epoch seconds */
	char etag[S3_ETAG_MAX]; /* as sent, quotes included */
};

struct s3_list_page {
	struct s3_object *obj; /* Contents */
	size_t nobj;
	char **prefixes; /* CommonPrefixes/Prefix (decoded) */
	size_t *prefix_len;
	size_t nprefix;
	bool truncated;	  /* IsTruncated */
	char *next_token; /* NextContinuationToken, or NULL */
	long key_count;	  /* KeyCount, -1 when absent */
	bool url_encoded; /* EncodingType was "url" */
};

void s3xml_init(void);

/*
 * Parse a ListObjectsV2 result (@len bytes at @xml) into @out. When the
 * page says <EncodingType>url</EncodingType> (the request asked for
 * encoding-type=url, which lets S3 send keys XML 1.0 cannot hold), each
 * Key and Prefix is percent-decoded ('+' is a space); a key may then hold
 * any byte, NUL included, so use key_len / prefix_len. Servers that ignore
 * encoding-type send no EncodingType and raw keys. 0, or
 * -EPROTO (not that document, truncated, malformed, a DOCTYPE, a field
 * out of range, inconsistent counts), -E2BIG (more than
 * S3_LIST_MAX_ENTRIES entries, a key longer than S3_KEY_MAX), -ENOMEM;
 * the reason (with bytes from the document escaped) in @err. @out must be
 * released with s3xml_list_cleanup() in every case.
 */
int s3xml_parse_list(const char *xml, size_t len, struct s3_list_page *out,
		     char *err, size_t errlen);
void s3xml_list_cleanup(struct s3_list_page *p);

/*
 * Parse an S3 <Error> document: Code and Message, each escaped to
 * printable ASCII and cut to fit. 0, or -EPROTO when it is not one (then
 * @code and @msg are empty).
 */
int s3xml_parse_error(const char *xml, size_t len, char *code, size_t codelen,
		      char *msg, size_t msglen);

/*
 * May @n bytes of @key (a key relative to the listed prefix, one or more
 * '/'-separated segments) become names in the tree? True only if it is
 * valid UTF-8 (no overlong forms, no surrogates), holds no NUL, control
 * byte or DEL, has no leading '/', no empty segment ("//", a trailing
 * '/'), no "." or ".." segment, and no segment longer than S3_NAME_MAX.
 * Otherwise false, with the reason and the escaped key in @why. Pure.
 */
bool s3_key_component_ok(const char *key, size_t n, char *why, size_t whylen);

/*
 * @n bytes of @s as printable ASCII: other bytes as \xNN, '\\' as "\\\\";
 * cut with "..." to fit @outlen. Never writes a control byte.
 */
void s3_escape(const char *s, size_t n, char *out, size_t outlen);

/* "2009-10-12T17:50:30.000Z" -> epoch seconds; -EINVAL if not that. */
int s3_parse_iso8601(const char *s, int64_t *out);

#endif
