/*
 * fuzz_s3xml.c - what an S3 server answers, read strictly (cache/s3xml.c):
 * a ListObjectsV2 page, an <Error> document, the key rule, the escaper and
 * the LastModified parser.
 *
 * Invariants: an accepted page holds at most S3_LIST_MAX_ENTRIES entries,
 * keys of at most S3_KEY_MAX bytes, a token whenever it is truncated, a
 * KeyCount that matches what it holds, terminated ETags; an <Error>'s code
 * and message and every reason are printable ASCII; a key the tree accepts
 * is UTF-8 with no control byte, no leading '/', no empty, "." or ".."
 * segment and none over S3_NAME_MAX; s3_escape() never writes a control
 * byte and always terminates.
 */
#include <errno.h>

#include "fuzz.h"
#include "s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	s3xml_init();
	return 0;
}

/* The rule of s3_key_component_ok(), restated segment by segment. */
static void check_key_ok(const char *k, size_t n)
{
	FUZZ_ASSERT(n > 0 && k[0] != '/' && k[n - 1] != '/');
	FUZZ_ASSERT(fuzz_no_ctl(k, n) && fuzz_utf8(k, n));
	size_t i = 0;
	while (i <= n) {
		const char *e = memchr(k + i, '/', n - i);
		size_t sl = (e ? (size_t)(e - k) : n) - i;
		FUZZ_ASSERT(sl > 0 && sl <= S3_NAME_MAX);
		FUZZ_ASSERT(!(sl == 1 && k[i] == '.'));
		FUZZ_ASSERT(!(sl == 2 && k[i] == '.' && k[i + 1] == '.'));
		i += sl + 1;
	}
}

static void key_rule(const char *k, size_t n)
{
	char why[300];
	why[0] = '\0';
	if (s3_key_component_ok(k, n, why, sizeof(why)))
		check_key_ok(k, n);
	else
		FUZZ_ASSERT(fuzz_terminated(why, sizeof(why)) &&
			    fuzz_no_ctl(why, strlen(why)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data;
	struct s3_list_page pg;
	char err[512];
	int rc;

	memset(&pg, 0, sizeof(pg));
	err[0] = '\0';
	rc = s3xml_parse_list(xml, size, &pg, err, sizeof(err));
	FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)));
	FUZZ_ASSERT(fuzz_printable_ascii(err, strlen(err)));
	if (rc == 0) {
		FUZZ_ASSERT(pg.nobj + pg.nprefix <= S3_LIST_MAX_ENTRIES);
		FUZZ_ASSERT(!pg.truncated || pg.next_token != NULL);
		FUZZ_ASSERT(pg.key_count == -1 ||
			    (size_t)pg.key_count == pg.nobj + pg.nprefix ||
			    (size_t)pg.key_count == pg.nobj);
		for (size_t i = 0; i < pg.nobj; i++) {
			const struct s3_object *o = &pg.obj[i];
			FUZZ_ASSERT(o->key && o->key_len <= S3_KEY_MAX);
			FUZZ_ASSERT(o->key[o->key_len] == '\0');
			FUZZ_ASSERT(pg.url_encoded ||
				    strlen(o->key) == o->key_len);
			FUZZ_ASSERT(fuzz_terminated(o->etag, sizeof(o->etag)));
			key_rule(o->key, o->key_len);
		}
		for (size_t i = 0; i < pg.nprefix; i++) {
			FUZZ_ASSERT(pg.prefixes[i] &&
				    pg.prefix_len[i] <= S3_KEY_MAX);
			key_rule(pg.prefixes[i], pg.prefix_len[i]);
		}
	} else {
		FUZZ_ASSERT(rc == -EPROTO || rc == -E2BIG || rc == -ENOMEM);
		FUZZ_ASSERT(err[0] != '\0');
	}
	s3xml_list_cleanup(&pg);

	char code[64], msg[256];
	rc = s3xml_parse_error(xml, size, code, sizeof(code), msg,
			       sizeof(msg));
	FUZZ_ASSERT(fuzz_terminated(code, sizeof(code)) &&
		    fuzz_terminated(msg, sizeof(msg)));
	FUZZ_ASSERT(fuzz_printable_ascii(code, strlen(code)));
	FUZZ_ASSERT(fuzz_printable_ascii(msg, strlen(msg)));
	if (rc != 0)
		FUZZ_ASSERT(rc == -EPROTO && !code[0] && !msg[0]);

	/* The raw bytes as a key, escaped, and as a date. */
	key_rule(xml, size);
	char esc[128];
	s3_escape(xml, size, esc, sizeof(esc));
	FUZZ_ASSERT(fuzz_terminated(esc, sizeof(esc)));
	FUZZ_ASSERT(fuzz_printable_ascii(esc, strlen(esc)));
	char *s = fuzz_strndup(data, size < 64 ? size : 64);
	int64_t t;
	rc = s3_parse_iso8601(s, &t);
	FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
	free(s);
	return 0;
}
