/*
 * test_archive_push.c - the pure parts of archive_push.c: the mapping of
 * archived names to S3 keys (one-to-one, safe for the tree, bounded) and
 * the ETags an upload is verified against.
 */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "archive.h"
#include "archive_push.h"
#include "check.h"
#include "s3xml.h"

static int roundtrip(const char *path)
{
	char key[2048], back[2048];
	int rc = archive_key_encode(path, 1024, key, sizeof(key));
	if (rc)
		return rc;
	/* every key is a name the tree (and s3rver's listing) can carry */
	if (!s3_key_component_ok(key, strlen(key), NULL, 0))
		return -100;
	rc = archive_key_decode(key, back, sizeof(back));
	if (rc)
		return rc;
	return strcmp(back, path) ? -101 : 0;
}

static void test_keys(void)
{
	char key[2048], back[2048];

	/* ordinary names stay readable */
	CHECK_ERR(archive_key_encode("run-1/model_00.safetensors", 1024, key,
				     sizeof(key)),
		  0);
	CHECK(!strcmp(key, "run-1/model_00.safetensors"));
	CHECK_ERR(archive_key_encode("a b/c&d'e\"<>", 1024, key, sizeof(key)),
		  0);
	CHECK(!strcmp(key, "a%20b/c%26d%27e%22%3C%3E"));
	CHECK_ERR(archive_key_encode("100%", 1024, key, sizeof(key)), 0);
	CHECK(!strcmp(key, "100%25"));
	/* "." and ".." segments never reach the bucket as such */
	CHECK_ERR(archive_key_encode("./../...", 1024, key, sizeof(key)), 0);
	CHECK(!strcmp(key, "%2E/%2E%2E/..."));

	/* round trips: newlines, invalid UTF-8, control bytes, UTF-8 */
	CHECK_ERR(roundtrip("plain.bin"), 0);
	CHECK_ERR(roundtrip("dir/sub/x.pt"), 0);
	CHECK_ERR(roundtrip("new\nline"), 0);
	CHECK_ERR(roundtrip("bad\xff\xfe utf8/\x01\x7f"), 0);
	CHECK_ERR(roundtrip("caf\xc3\xa9/\xe2\x82\xac"), 0);
	CHECK_ERR(roundtrip(".."), 0);
	CHECK_ERR(roundtrip("a/./b"), 0);
	CHECK_ERR(roundtrip("%%41"), 0);

	/* 255 safe bytes fit; 255 bytes that need escaping do not: hashed */
	char n255[256];
	memset(n255, 'x', 255);
	n255[255] = '\0';
	CHECK_ERR(roundtrip(n255), 0);
	memset(n255, '\n', 255);
	CHECK_ERR(archive_key_encode(n255, 1024, key, sizeof(key)), 0);
	CHECK(strlen(key) == 66 && key[0] == '%' && key[1] == '%');
	CHECK(s3_key_component_ok(key, strlen(key), NULL, 0));
	CHECK_ERR(archive_key_decode(key, back, sizeof(back)), -ENOENT);
	/* deterministic, and distinct for distinct names */
	char key2[2048];
	CHECK_ERR(archive_key_encode(n255, 1024, key2, sizeof(key2)), 0);
	CHECK(!strcmp(key, key2));
	n255[0] = 'y';
	CHECK_ERR(archive_key_encode(n255, 1024, key2, sizeof(key2)), 0);
	CHECK(strcmp(key, key2));
	/* over the budget: hashed; a budget below the hashed form: refused */
	char long80[81];
	memset(long80, 'L', 80);
	long80[40] = '/';
	long80[80] = '\0';
	CHECK_ERR(archive_key_encode(long80, 70, key, sizeof(key)), 0);
	CHECK(strlen(key) == 66 && key[0] == '%');
	CHECK_ERR(archive_key_encode(long80, 80, key, sizeof(key)), 0);
	CHECK(!strcmp(key, long80));
	CHECK_ERR(archive_key_encode(long80, 65, key, sizeof(key)),
		  -ENAMETOOLONG);
	CHECK_ERR(archive_key_encode("", 1024, key, sizeof(key)), -EINVAL);
	/* empty segments cannot be keys: hashed */
	CHECK_ERR(archive_key_encode("a//b", 1024, key, sizeof(key)), 0);
	CHECK(strlen(key) == 66);

	/* only what encode writes decodes: the mapping is one-to-one */
	CHECK_ERR(archive_key_decode("a%2fb", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("a%2Fb", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("a%41", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("a%00b", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("a%4", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("a b", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("..", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("a//b", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("", back, sizeof(back)), -EINVAL);
	CHECK_ERR(archive_key_decode("%2E%2E", back, sizeof(back)), 0);
	CHECK(!strcmp(back, ".."));
	CHECK_ERR(archive_key_decode("abcdef", back, 4), -ENAMETOOLONG);

	/* names: '/' is a byte of the name */
	CHECK_ERR(archive_name_encode("ssh-box.1", key, sizeof(key)), 0);
	CHECK(!strcmp(key, "ssh-box.1"));
	CHECK_ERR(archive_name_encode("a/b", key, sizeof(key)), 0);
	CHECK(!strcmp(key, "a%2Fb"));
	memset(n255, 'x', 255);
	CHECK_ERR(archive_name_encode(n255, key, sizeof(key)), 0);
	memset(n255, ' ', 255);
	CHECK_ERR(archive_name_encode(n255, key, sizeof(key)), -ENAMETOOLONG);

	/* tree paths */
	CHECK_ERR(archive_remote_file("vastai", "123", "run 1/m.pt", key,
				      sizeof(key)),
		  0);
	CHECK(!strcmp(key, "/archive/vastai/123/files/run%201/m.pt"));
	CHECK_ERR(archive_remote_dir("ssh", "box", key, sizeof(key)), 0);
	CHECK(!strcmp(key, "/archive/ssh/box"));
	/* the whole key stays within S3's 1024 bytes */
	char deep[1200];
	for (size_t i = 0; i < sizeof(deep) - 1; i++)
		deep[i] = i % 100 == 99 ? '/' : 'd';
	deep[sizeof(deep) - 1] = '\0';
	CHECK_ERR(archive_remote_file("vastai", "123", deep, key, sizeof(key)),
		  0);
	CHECK(strlen(key) - 1 <= S3_KEY_MAX);
	CHECK(strstr(key, "/files/%%") != NULL);
}

static void md5_of(const void *d, size_t n, unsigned char out[16])
{
	unsigned int ml = 0;
	EVP_Digest(d, n, out, &ml, EVP_md5(), NULL);
}

static void test_etags(void)
{
	unsigned char md[32];
	char e[96];

	md5_of("", 0, md);
	archive_etag_single(md, e, sizeof(e));
	CHECK(!strcmp(e, "\"d41d8cd98f00b204e9800998ecf8427e\""));

	/* two parts "aaaaa" and "bbb": MD5 of the two binary MD5s, "-2"
	 * (computed independently with python's hashlib) */
	md5_of("aaaaa", 5, md);
	md5_of("bbb", 3, md + 16);
	CHECK_ERR(archive_etag_multipart(md, 2, e, sizeof(e)), 0);
	CHECK(!strcmp(e, "\"72d27afac8e2fbd3662861b9d607a02c-2\""));
	/* one part: still the MD5 of the MD5, with "-1" */
	CHECK_ERR(archive_etag_multipart(md, 1, e, sizeof(e)), 0);
	CHECK(strlen(e) == 36 && !strcmp(e + 33, "-1\""));
	CHECK_ERR(archive_etag_multipart(md, 0, e, sizeof(e)), -EINVAL);
	CHECK_ERR(archive_etag_multipart(md, 2, e, 10), -ENAMETOOLONG);

	/* exactly the forms computed, nothing else */
	const char *whole = "\"c2b7443aeba6de69bcba5af76c5bfd5a\"";
	const char *multi = "\"72d27afac8e2fbd3662861b9d607a02c-2\"";
	md5_of("aaaaabbb", 8, md);
	archive_etag_single(md, e, sizeof(e));
	CHECK(!strcmp(e, whole));
	CHECK(archive_etag_ok(whole, whole, multi));
	CHECK(archive_etag_ok(multi, whole, multi));
	CHECK(!archive_etag_ok(multi, whole, NULL));
	CHECK(
	    !archive_etag_ok("c2b7443aeba6de69bcba5af76c5bfd5a", whole, multi));
	CHECK(!archive_etag_ok("\"72d27afac8e2fbd3662861b9d607a02c-3\"", whole,
			       multi));
	CHECK(!archive_etag_ok("\"C2B7443AEBA6DE69BCBA5AF76C5BFD5A\"", whole,
			       multi));
	CHECK(!archive_etag_ok("", whole, multi));
	CHECK(!archive_etag_ok(NULL, whole, multi));
}

/* The record as it travels (RGTFS_ARCHIVE.json) and back. */
static void test_record_json(void)
{
	struct archive_file files[2] = {
	    {.path = (char *)"a/new\nline", .size = 3, .mtime = 7},
	    {.path = (char *)"b\xff.bin", .size = 0, .mtime = 8},
	};
	char *dirs[] = {(char *)"a"};
	memset(files[0].sha256, 'a', 64);
	memset(files[1].sha256, 'b', 64);
	files[0].src = (char *)"/archive/vastai/1/files/a/new%0Aline";
	snprintf(files[0].etag, sizeof(files[0].etag), "\"e1\"");
	struct archive a = {
	    .platform = (char *)"vastai",
	    .id = (char *)"1",
	    .root = (char *)"/workspace/checkpoints",
	    .manifest = (char *)"{}",
	    .files = files,
	    .nfiles = 2,
	    .dirs = dirs,
	    .ndirs = 1,
	    .src_cloud = (char *)"ckpt",
	};
	char *text = archive_record_json(&a);
	struct archive *b = NULL;
	CHECK(text != NULL);
	if (!text)
		return;
	CHECK_ERR(archive_from_json(text, strlen(text), "vastai", "1", &b), 0);
	if (b) {
		CHECK(b->nfiles == 2 && b->ndirs == 1);
		CHECK(!strcmp(b->files[0].path, "a/new\nline"));
		CHECK(!strcmp(b->files[1].path, "b\xff.bin"));
		CHECK(!strcmp(b->files[0].src, files[0].src));
		CHECK(!strcmp(b->files[0].etag, "\"e1\""));
		CHECK(!b->files[1].src);
		CHECK(!strcmp(b->src_cloud, "ckpt"));
		CHECK(!strcmp(b->manifest, "{}"));
		CHECK(!b->src_remote);
		archive_free(b);
	}
	/* a record of another instance, or not a record at all */
	b = NULL;
	CHECK_ERR(archive_from_json(text, strlen(text), "vastai", "2", &b),
		  -EIO);
	CHECK_ERR(archive_from_json(text, strlen(text), "runpod", "1", &b),
		  -EIO);
	CHECK_ERR(archive_from_json("[1]", 3, "vastai", "1", &b), -EIO);
	CHECK_ERR(archive_from_json(text, strlen(text) / 2, "vastai", "1", &b),
		  -EIO);
	CHECK(b == NULL);
	free(text);
}

int main(void)
{
	test_keys();
	test_etags();
	test_record_json();
	return CHECK_DONE();
}
