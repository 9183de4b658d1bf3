/*
 * test_manifest.c - manifest_parse(), the reader rgtfs-store export and
 * verify trust: export writes DIR/path for each listed path, so a path
 * that is absolute, climbs out with "..", or spells one file two ways
 * ("a//b", "./a", "a/") must be refused, and an ordinary one (spaces,
 * a newline, bytes that are not UTF-8) must still be accepted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "manifest.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* manifest_parse() of a one-file manifest whose entry is @entry_fields
 * (the JSON members before "bytes"); the parsed path in @path. */
static int parse_one(const char *entry_fields, char *path, size_t plen)
{
	char text[4096], err[256];
	struct manifest_file *v = NULL;
	size_t n = 0;
	snprintf(text, sizeof(text),
		 "{\"schema\": \"" MANIFEST_SCHEMA "\", \"run_id\": \"r\", "
		 "\"files\": [{%s, \"bytes\": 3, \"sha256\": \"" SHA "\"}], "
		 "\"totals\": {\"files\": 1, \"bytes\": 3}}", entry_fields);
	int rc = manifest_parse(text, strlen(text), &v, &n, err, sizeof(err));
	if (!rc && path)
		snprintf(path, plen, "%s", n == 1 ? v[0].path : "?");
	if (rc)
		CHECK(err[0] != '\0');
	manifest_files_free(v, n);
	return rc;
}

static int parse_path(const char *json_path)
{
	char f[1024];
	snprintf(f, sizeof(f), "\"path\": \"%s\"", json_path);
	return parse_one(f, NULL, 0);
}

int main(void)
{
	char got[256];

	/* names under the root, spelt the one way */
	CHECK_ERR(parse_path("e0.bin"), 0);
	CHECK_ERR(parse_path("run1/step 10.bin"), 0);
	CHECK_ERR(parse_path("a/b/c/d.pt"), 0);
	CHECK_ERR(parse_path("..hidden"), 0);		/* not ".." */
	CHECK_ERR(parse_path("a/...b"), 0);
	CHECK_ERR(parse_path(".x/y"), 0);
	CHECK_ERR(parse_path("line\\nbreak"), 0);	/* control bytes kept */
	CHECK_ERR(parse_one("\"path\": \"x\\nz\"", got, sizeof(got)), 0);
	CHECK_STR(got, "x\nz");

	/* refused: empty, absolute, dot components, empty components */
	CHECK_ERR(parse_path(""), -EIO);
	CHECK_ERR(parse_path("/etc/passwd"), -EIO);
	CHECK_ERR(parse_path("/"), -EIO);
	CHECK_ERR(parse_path(".."), -EIO);
	CHECK_ERR(parse_path("../x"), -EIO);
	CHECK_ERR(parse_path("a/../../x"), -EIO);
	CHECK_ERR(parse_path("a/.."), -EIO);
	CHECK_ERR(parse_path("."), -EIO);
	CHECK_ERR(parse_path("./a"), -EIO);
	CHECK_ERR(parse_path("a/./b"), -EIO);
	CHECK_ERR(parse_path("a/."), -EIO);
	CHECK_ERR(parse_path("a//b"), -EIO);
	CHECK_ERR(parse_path("a/"), -EIO);
	CHECK_ERR(parse_path("a/b/"), -EIO);
	/* a NUL never gets through: jansson refuses \u0000 */
	CHECK_ERR(parse_path("a\\u0000b"), -EIO);

	/* path_hex holds the exact bytes; they are what is checked */
	CHECK_ERR(parse_one("\"path\": \"w\\\\xffx\", \"path_hex\": \"77ff78\"",
			    got, sizeof(got)), 0);
	CHECK_STR(got, "w\xffx");
	CHECK_ERR(parse_one("\"path\": \"ok\", \"path_hex\": \"2e2e2f78\"", NULL,
			    0), -EIO);			/* "../x" */
	CHECK_ERR(parse_one("\"path\": \"ok\", \"path_hex\": \"2f6574632f78\"",
			    NULL, 0), -EIO);		/* "/etc/x" */
	CHECK_ERR(parse_one("\"path\": \"ok\", \"path_hex\": \"612f2f62\"", NULL,
			    0), -EIO);			/* "a//b" */
	CHECK_ERR(parse_one("\"path\": \"ok\", \"path_hex\": \"610062\"", NULL,
			    0), -EIO);			/* a NUL byte */

	/* a good list next to a bad entry: the whole manifest is refused */
	{
		const char *t =
			"{\"schema\": \"" MANIFEST_SCHEMA "\", \"files\": ["
			"{\"path\": \"a\", \"bytes\": 1, \"sha256\": \"" SHA
			"\"}, {\"path\": \"../b\", \"bytes\": 1, \"sha256\": \""
			SHA "\"}], \"totals\": {\"files\": 2, \"bytes\": 2}}";
		struct manifest_file *v = NULL;
		size_t n = 0;
		char err[256];
		CHECK_ERR(manifest_parse(t, strlen(t), &v, &n, err,
					 sizeof(err)), -EIO);
		CHECK(strstr(err, "files[1]") != NULL);
	}
	return CHECK_DONE();
}
