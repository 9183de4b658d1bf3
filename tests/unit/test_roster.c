/* test_roster.c - roster parsing, hashes, comparison, manifests (pure). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "check.h"
#include "manifest.h"
#include "roster.h"

#define OUT(s) s, sizeof(s) - 1

int main(void)
{
	struct roster r = { 0 }, r2 = { 0 };
	char err[256], hex[65];
	struct buf b;

	/* Chatter before the mark is skipped; names may hold '\n' and ' '. */
	static const char out[] =
		"Welcome to the box!\n" ROSTER_MARK "\0"
		"d 4096 1700000000.5 run1\0"
		"f 10 1700000001.25 run1/best.pth\0"
		"f 3 1700000002 run1/a b\nc\0"
		"l 7 1700000003.0 latest\0";
	CHECK_ERR(roster_parse(OUT(out), &r, err, sizeof(err)), 0);
	CHECK(r.n == 4);
	/* sorted by path */
	CHECK_STR(r.v[0].path, "latest");
	CHECK(r.v[0].type == 'l');
	CHECK_STR(r.v[1].path, "run1");
	CHECK_STR(r.v[2].path, "run1/a b\nc");
	CHECK(r.v[2].size == 3 && r.v[2].mtime == 1700000002);
	CHECK_STR(r.v[3].path, "run1/best.pth");
	CHECK(r.v[3].mtime == 1700000001);
	uint64_t nf, nb;
	roster_totals(&r, &nf, &nb);
	CHECK(nf == 2 && nb == 13);

	/* Same listing again compares equal; a grown file does not. */
	CHECK_ERR(roster_parse(OUT(out), &r2, err, sizeof(err)), 0);
	CHECK_ERR(roster_compare(&r, &r2, err, sizeof(err)), 0);
	r2.v[3].size = 11;
	CHECK_ERR(roster_compare(&r, &r2, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "run1/best.pth") && strstr(err, "changed"));
	roster_free(&r2);
	static const char fewer[] = ROSTER_MARK "\0"
				    "f 10 1700000001 run1/best.pth\0";
	CHECK_ERR(roster_parse(OUT(fewer), &r2, err, sizeof(err)), 0);
	CHECK_ERR(roster_compare(&r, &r2, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "disappeared"));
	CHECK_ERR(roster_compare(&r2, &r, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "appeared"));
	roster_free(&r2);

	/* Hostile or broken output is refused, never half-taken. */
	static const char esc[] = ROSTER_MARK "\0f 1 1 ../etc/passwd\0";
	CHECK_ERR(roster_parse(OUT(esc), &r2, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "escapes"));
	static const char esc2[] = ROSTER_MARK "\0f 1 1 a/../../x\0";
	CHECK_ERR(roster_parse(OUT(esc2), &r2, err, sizeof(err)), -EBADMSG);
	static const char abs[] = ROSTER_MARK "\0f 1 1 /etc/passwd\0";
	CHECK_ERR(roster_parse(OUT(abs), &r2, err, sizeof(err)), -EBADMSG);
	static const char trunc[] = ROSTER_MARK "\0f 1 1 a\0f 2 2 b";
	CHECK_ERR(roster_parse(OUT(trunc), &r2, err, sizeof(err)), -EBADMSG);
	static const char nosize[] = ROSTER_MARK "\0f x 1 a\0";
	CHECK_ERR(roster_parse(OUT(nosize), &r2, err, sizeof(err)), -EBADMSG);
	/* The reason names the entry that was wrong, not entry 0. */
	static const char second[] = ROSTER_MARK "\0f 1 1 a\0f 2 2 ../b\0";
	CHECK_ERR(roster_parse(OUT(second), &r2, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "in entry 1") != NULL);
	CHECK(r2.n == 0 && r2.v == NULL);
	static const char nomark[] = "f 1 1 a\0";
	CHECK_ERR(roster_parse(OUT(nomark), &r2, err, sizeof(err)), -EBADMSG);
	static const char empty[] = ROSTER_MARK "\0";
	CHECK_ERR(roster_parse(OUT(empty), &r2, err, sizeof(err)), 0);
	CHECK(r2.n == 0);
	roster_free(&r2);

	/* Hash output of each tool. */
	static const char h1[] = "motd\n" ROSTER_MARK "\0"
		"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855  -\n";
	CHECK_ERR(roster_parse_hash(OUT(h1), hex), 0);
	CHECK_STR(hex,
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	static const char h2[] = ROSTER_MARK "\0"
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 *stdin\n";
	CHECK_ERR(roster_parse_hash(OUT(h2), hex), 0);
	static const char h3[] = ROSTER_MARK "\0" "abc\n";
	CHECK_ERR(roster_parse_hash(OUT(h3), hex), -EBADMSG);
	static const char h4[] = ROSTER_MARK "\0"
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85500\n";
	CHECK_ERR(roster_parse_hash(OUT(h4), hex), -EBADMSG);

	/* Commands quote every path. */
	buf_init(&b, 8192);
	CHECK_ERR(roster_hash_cmd(&b, "/w/ck'pt", "a b;rm -rf /"), 0);
	CHECK(strstr(b.data, "'/w/ck'\\''pt'/'a b;rm -rf /'") != NULL);
	buf_reset(&b);
	CHECK_ERR(roster_list_cmd(&b, "/w/$(x)"), 0);
	CHECK(strstr(b.data, "'/w/$(x)'") != NULL);
	buf_cleanup(&b);

	/* Manifests: every regular file with its digest; the verified
	 * record carries the manifest's own SHA-256. */
	CHECK(manifest_build("vastai-1", 0, &r) == NULL);  /* unhashed */
	for (size_t i = 0; i < r.n; i++)
		snprintf(r.v[i].sha256, sizeof(r.v[i].sha256), "%064d", 0);
	char *m = manifest_build("vastai-1", 1700000000, &r);
	CHECK(m != NULL);
	json_error_t je;
	json_t *o = m ? json_loads(m, 0, &je) : NULL;
	CHECK(o != NULL);
	CHECK_STR(json_string_value(json_object_get(o, "schema")),
		  MANIFEST_SCHEMA);
	CHECK_STR(json_string_value(json_object_get(o, "created_at_utc")),
		  "2023-11-14T22:13:20Z");
	CHECK(json_array_size(json_object_get(o, "files")) == 2);
	CHECK(json_integer_value(json_object_get(
		      json_object_get(o, "totals"), "bytes")) == 13);
	CHECK_STR(json_string_value(json_array_get(
			  json_object_get(o, "top_level_dirs"), 0)),
		  "run1");
	json_decref(o);
	char *v = manifest_verified("vastai-1", m, 1700000000, 2, 13);
	o = v ? json_loads(v, 0, &je) : NULL;
	manifest_sha256_hex(m, strlen(m), hex);
	CHECK(o && !strcmp(json_string_value(json_object_get(
				   o, "manifest_sha256")),
			   hex));
	CHECK_STR(json_string_value(json_object_get(o, "schema")),
		  VERIFIED_SCHEMA);
	json_decref(o);
	free(m);
	free(v);
	roster_free(&r);
	return CHECK_DONE();
}
