/*
 * test_s3xml.c - cache/s3xml.c: ListObjectsV2 pages shaped like the AWS
 * API Reference examples (ListObjectsV2, "Sample Response", "Listing keys
 * using the max-keys, prefix, and start-after parameters", "Using the
 * continuation-token"), and everything hostile: a document cut at every
 * byte offset (it must fail, or parse as the whole thing: never a shorter
 * page taken as complete), DOCTYPE and entity bombs, external entities,
 * too many entries, long keys, inconsistent counts; the error document;
 * and the key rule for tree names.
 */
#include "s3xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"

/* After the AWS docs' ListObjectsV2 sample response. */
static const char page1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
    "  <Name>bucket</Name>\n"
    "  <Prefix/>\n"
    "  <KeyCount>205</KeyCount>\n"
    "  <MaxKeys>1000</MaxKeys>\n"
    "  <IsTruncated>false</IsTruncated>\n"
    "  <Contents>\n"
    "    <Key>my-image.jpg</Key>\n"
    "    <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
    "    <ETag>\"fba9dede5f27731c9771645a39863328\"</ETag>\n"
    "    <Size>434234</Size>\n"
    "    <StorageClass>STANDARD</StorageClass>\n"
    "  </Contents>\n"
    "</ListBucketResult>\n";

/* Prefix + delimiter, a truncated page with a continuation token. */
static const char page2[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>quotes</Name><Prefix>E/</Prefix><KeyCount>4</KeyCount>"
    "<MaxKeys>4</MaxKeys><Delimiter>/</Delimiter>"
    "<IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    "</NextContinuationToken>"
    "<Contents><Key>E/</Key><LastModified>2024-01-02T03:04:05Z"
    "</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;"
    "</ETag><Size>0</Size></Contents>"
    "<Contents><Key>E/Elephant &amp; castle.txt</Key><LastModified>"
    "2024-01-02T03:04:06.123Z</LastModified><ETag>\"abc-2\"</ETag>"
    "<Size>18446744073709551</Size></Contents>"
    "<CommonPrefixes><Prefix>E/ckpt/</Prefix></CommonPrefixes>"
    "<CommonPrefixes><Prefix>E/\xc3\xa9t\xc3\xa9/</Prefix></CommonPrefixes>"
    "</ListBucketResult>";

static void test_good_pages(void)
{
	struct s3_list_page p;
	char err[256];

	CHECK_ERR(s3xml_parse_list(page1, strlen(page1), &p, err, sizeof(err)),
		  -EPROTO); /* KeyCount 205 but one entry */
	CHECK(strstr(err, "KeyCount") != NULL);
	s3xml_list_cleanup(&p);

	char *fixed = strdup(page1);
	memcpy(strstr(fixed, "205"), "001", 3);
	CHECK_ERR(s3xml_parse_list(fixed, strlen(fixed), &p, err, sizeof(err)),
		  0);
	CHECK(p.nobj == 1 && p.nprefix == 0 && !p.truncated);
	CHECK(p.key_count == 1 && p.next_token == NULL);
	CHECK_STR(p.obj[0].key, "my-image.jpg");
	CHECK(p.obj[0].size == 434234);
	CHECK(p.obj[0].mtime == 1255369830);
	CHECK_STR(p.obj[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
	s3xml_list_cleanup(&p);
	free(fixed);

	CHECK_ERR(s3xml_parse_list(page2, strlen(page2), &p, err, sizeof(err)),
		  0);
	CHECK(p.nobj == 2 && p.nprefix == 2 && p.truncated);
	CHECK_STR(p.next_token,
		  "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	CHECK_STR(p.obj[0].key, "E/");
	CHECK_STR(p.obj[0].etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
	CHECK(p.obj[0].mtime == 1704164645);
	CHECK_STR(p.obj[1].key, "E/Elephant & castle.txt");
	CHECK(p.obj[1].size == 18446744073709551ULL);
	CHECK(p.obj[1].mtime == 1704164646);
	CHECK_STR(p.prefixes[0], "E/ckpt/");
	CHECK_STR(p.prefixes[1], "E/\xc3\xa9t\xc3\xa9/");
	s3xml_list_cleanup(&p);

	/* KeyCount may count the Contents alone (s3rver), nothing else */
	char *alt = strdup(page2);
	memcpy(strstr(alt, "<KeyCount>4"), "<KeyCount>2", 11);
	CHECK_ERR(s3xml_parse_list(alt, strlen(alt), &p, err, sizeof(err)), 0);
	s3xml_list_cleanup(&p);
	memcpy(strstr(alt, "<KeyCount>2"), "<KeyCount>3", 11);
	CHECK_ERR(s3xml_parse_list(alt, strlen(alt), &p, err, sizeof(err)),
		  -EPROTO);
	s3xml_list_cleanup(&p);
	free(alt);
}

/*
 * Cut @doc at every offset: each prefix must fail, unless it is the whole
 * document up to trailing blanks, which must parse to exactly @nobj
 * entries.
 */
static void truncate_everywhere(const char *doc, size_t nobj, size_t npre)
{
	size_t len = strlen(doc), whole = len;
	int bad = 0, partial = 0;
	struct s3_list_page p;
	char err[256];

	while (whole && (doc[whole - 1] == '\n' || doc[whole - 1] == ' '))
		whole--;
	for (size_t n = 0; n <= len; n++) {
		/* a private copy of exactly n bytes, so ASan sees overreads */
		char *cut = malloc(n ? n : 1);
		int rc;

		memcpy(cut, doc, n);
		rc = s3xml_parse_list(cut, n, &p, err, sizeof(err));
		if (n < whole && rc == 0)
			bad++;
		if (n >= whole && (rc || p.nobj != nobj || p.nprefix != npre))
			partial++;
		if (rc && !err[0])
			bad++;
		s3xml_list_cleanup(&p);
		free(cut);
	}
	CHECK(bad == 0);
	CHECK(partial == 0);
}

static void test_truncation(void)
{
	char *fixed = strdup(page1);

	memcpy(strstr(fixed, "205"), "001", 3);
	truncate_everywhere(fixed, 1, 0);
	truncate_everywhere(page2, 2, 2);
	free(fixed);

	/* The same page without its KeyCount, whose only guard against a
	 * cut is well-formedness and IsTruncated. */
	const char *nocount =
	    "<ListBucketResult><IsTruncated>false</IsTruncated>"
	    "<Contents><Key>a</Key><Size>1</Size><LastModified>"
	    "2024-01-02T03:04:05Z</LastModified></Contents>"
	    "<Contents><Key>b</Key><Size>2</Size><LastModified>"
	    "2024-01-02T03:04:05Z</LastModified></Contents>"
	    "</ListBucketResult>";
	truncate_everywhere(nocount, 2, 0);
}

static void expect_refused(const char *doc, int want, const char *why)
{
	struct s3_list_page p;
	char err[256];

	CHECK_ERR(s3xml_parse_list(doc, strlen(doc), &p, err, sizeof(err)),
		  want);
	if (why && !strstr(err, why)) {
		check_failed++;
		fprintf(stderr, "err \"%s\" lacks \"%s\"\n", err, why);
	}
	CHECK(want == 0 || (p.nobj == 0 && p.nprefix == 0 && !p.obj));
	s3xml_list_cleanup(&p);
}

static void test_hostile(void)
{
	expect_refused("<?xml version=\"1.0\"?>\n"
		       "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		       "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;\">"
		       "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
		       "<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Key>&lol3;</Key><Size>1</Size>"
		       "<LastModified>2024-01-02T03:04:05Z</LastModified>"
		       "</Contents></ListBucketResult>",
		       -EPROTO, "DOCTYPE");
	expect_refused("<?xml version=\"1.0\"?>\n"
		       "<!DOCTYPE r [<!ENTITY xxe SYSTEM "
		       "\"file:///etc/passwd\">]>"
		       "<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Key>&xxe;</Key></Contents>"
		       "</ListBucketResult>",
		       -EPROTO, "DOCTYPE");
	/* An undeclared entity is not well-formed without a DTD. */
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Key>&xxe;</Key><Size>1</Size>"
		       "<LastModified>2024-01-02T03:04:05Z</LastModified>"
		       "</Contents></ListBucketResult>",
		       -EPROTO, "malformed");
	/* libxml2's own message quotes the document: its bytes are escaped
	 * too (found by tests/fuzz/fuzz_s3xml; the input is
	 * tests/fixtures/fuzz/s3xml/xmlns_raw_bytes.xml). */
	{
		static const char raw[] =
			"<ListBucketResult xmlns=\"http://s3.amazonaws.com/d"
			"\x91\x9b/\"><IsTruncated>false</IsTruncated>"
			"</ListBucketResult>";
		struct s3_list_page p;
		char err[256];

		CHECK_ERR(s3xml_parse_list(raw, strlen(raw), &p, err,
					   sizeof(err)),
			  -EPROTO);
		CHECK(strstr(err, "malformed") && strstr(err, "\\x91\\x9b"));
		for (const char *q = err; *q; q++)
			CHECK(*q >= 0x20 && *q <= 0x7e);
		s3xml_list_cleanup(&p);
	}
	expect_refused("<Other><IsTruncated>false</IsTruncated></Other>",
		       -EPROTO, "not a ListBucketResult");
	expect_refused("<ListBucketResult></ListBucketResult>", -EPROTO,
		       "IsTruncated");
	expect_refused("<ListBucketResult><IsTruncated>true</IsTruncated>"
		       "</ListBucketResult>",
		       -EPROTO, "NextContinuationToken");
	expect_refused("<ListBucketResult><IsTruncated>maybe</IsTruncated>"
		       "</ListBucketResult>",
		       -EPROTO, "IsTruncated");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<IsTruncated>false</IsTruncated></ListBucketResult>",
		       -EPROTO, "twice");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Key>a</Key><Size>-1</Size><LastModified>"
		       "2024-01-02T03:04:05Z</LastModified></Contents>"
		       "</ListBucketResult>",
		       -EPROTO, "Size");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Key>a</Key><Size>99999999999999999999"
		       "</Size><LastModified>2024-01-02T03:04:05Z"
		       "</LastModified></Contents></ListBucketResult>",
		       -EPROTO, "Size");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Key>a</Key><Size>1</Size><LastModified>"
		       "yesterday</LastModified></Contents>"
		       "</ListBucketResult>",
		       -EPROTO, "LastModified");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Size>1</Size><LastModified>"
		       "2024-01-02T03:04:05Z</LastModified></Contents>"
		       "</ListBucketResult>",
		       -EPROTO, "without Key");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<Contents><Key><b>x</b></Key><Size>1</Size>"
		       "<LastModified>2024-01-02T03:04:05Z</LastModified>"
		       "</Contents></ListBucketResult>",
		       -EPROTO, NULL);
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<CommonPrefixes></CommonPrefixes></ListBucketResult>",
		       -EPROTO, "without Prefix");
	expect_refused("", -EPROTO, "empty");
	expect_refused("not xml at all", -EPROTO, "malformed");
	/* Control bytes from the document are escaped in the reason. */
	expect_refused("<ListBucketResult><IsTruncated>f\x1b[31m"
		       "</IsTruncated></ListBucketResult>",
		       -EPROTO, NULL);

	/* Too many entries, too long a key. */
	struct buf b;
	struct s3_list_page p;
	char err[256];

	buf_init(&b, 4 << 20);
	buf_appendf(&b, "<ListBucketResult><IsTruncated>false</IsTruncated>");
	for (int i = 0; i < S3_LIST_MAX_ENTRIES; i++)
		buf_appendf(&b, "<Contents><Key>k%d</Key><Size>%d</Size>"
				"<LastModified>2024-01-02T03:04:05Z"
				"</LastModified></Contents>",
			    i, i);
	size_t at = b.len;
	buf_appendf(&b, "</ListBucketResult>");
	CHECK_ERR(s3xml_parse_list(b.data, b.len, &p, err, sizeof(err)), 0);
	CHECK(p.nobj == S3_LIST_MAX_ENTRIES);
	CHECK(p.obj[S3_LIST_MAX_ENTRIES - 1].size == S3_LIST_MAX_ENTRIES - 1);
	s3xml_list_cleanup(&p);
	b.len = at;
	buf_appendf(&b, "<CommonPrefixes><Prefix>x/</Prefix></CommonPrefixes>"
			"</ListBucketResult>");
	CHECK_ERR(s3xml_parse_list(b.data, b.len, &p, err, sizeof(err)),
		  -E2BIG);
	CHECK(strstr(err, "5000 entries") != NULL);
	s3xml_list_cleanup(&p);

	buf_reset(&b);
	buf_appendf(&b, "<ListBucketResult><IsTruncated>false</IsTruncated>"
			"<Contents><Key>");
	for (int i = 0; i < S3_KEY_MAX; i++)
		buf_append(&b, "k", 1);
	at = b.len;
	buf_appendf(&b, "</Key><Size>1</Size><LastModified>"
			"2024-01-02T03:04:05Z</LastModified></Contents>"
			"</ListBucketResult>");
	CHECK_ERR(s3xml_parse_list(b.data, b.len, &p, err, sizeof(err)), 0);
	s3xml_list_cleanup(&p);
	b.len = at;
	buf_appendf(&b, "k</Key><Size>1</Size><LastModified>"
			"2024-01-02T03:04:05Z</LastModified></Contents>"
			"</ListBucketResult>");
	CHECK_ERR(s3xml_parse_list(b.data, b.len, &p, err, sizeof(err)),
		  -E2BIG);
	CHECK(strstr(err, "1024") != NULL);
	s3xml_list_cleanup(&p);
	buf_cleanup(&b);
}

/* encoding-type=url: keys decoded only when the page says so. */
static void test_url_encoding(void)
{
	static const char enc[] =
	    "<ListBucketResult><Name>b</Name><Prefix>d%2F</Prefix>"
	    "<KeyCount>4</KeyCount><IsTruncated>false</IsTruncated>"
	    "<Contents><Key>d/a%2Bb+c%25</Key><Size>1</Size><LastModified>"
	    "2024-01-02T03:04:05Z</LastModified></Contents>"
	    "<Contents><Key>d/%00x%0A</Key><Size>2</Size><LastModified>"
	    "2024-01-02T03:04:05Z</LastModified></Contents>"
	    "<Contents><Key>d/%C3%A9</Key><Size>3</Size><LastModified>"
	    "2024-01-02T03:04:05Z</LastModified></Contents>"
	    "<CommonPrefixes><Prefix>d/sub+dir%2F/</Prefix></CommonPrefixes>"
	    "<EncodingType>url</EncodingType></ListBucketResult>";
	struct s3_list_page p;
	char err[256], *bad;

	CHECK_ERR(s3xml_parse_list(enc, strlen(enc), &p, err, sizeof(err)), 0);
	CHECK(p.url_encoded && p.nobj == 3 && p.nprefix == 1);
	CHECK_STR(p.obj[0].key, "d/a+b c%");
	CHECK(p.obj[0].key_len == 8);
	CHECK(p.obj[1].key_len == 5 && !memcmp(p.obj[1].key, "d/\0x\n", 5));
	CHECK_STR(p.obj[2].key, "d/\xc3\xa9");
	CHECK_STR(p.prefixes[0], "d/sub dir//");
	CHECK(p.prefix_len[0] == 11);
	s3xml_list_cleanup(&p);

	/* without EncodingType the same bytes are the keys */
	bad = strdup(enc);
	memcpy(strstr(bad, "<EncodingType>url"), "<EncodingTyp2>url", 17);
	memcpy(strstr(bad, "</EncodingType>"), "</EncodingTyp2>", 15);
	CHECK_ERR(s3xml_parse_list(bad, strlen(bad), &p, err, sizeof(err)), 0);
	CHECK(!p.url_encoded);
	CHECK_STR(p.obj[0].key, "d/a%2Bb+c%25");
	s3xml_list_cleanup(&p);
	free(bad);

	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<EncodingType>url</EncodingType><Contents><Key>a%zz"
		       "</Key><Size>1</Size><LastModified>2024-01-02T03:04:05Z"
		       "</LastModified></Contents></ListBucketResult>",
		       -EPROTO, "escape");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<EncodingType>url</EncodingType><Contents><Key>a%4"
		       "</Key><Size>1</Size><LastModified>2024-01-02T03:04:05Z"
		       "</LastModified></Contents></ListBucketResult>",
		       -EPROTO, "escape");
	expect_refused("<ListBucketResult><IsTruncated>false</IsTruncated>"
		       "<EncodingType>base64</EncodingType>"
		       "</ListBucketResult>",
		       -EPROTO, "EncodingType");
}

static void test_error_doc(void)
{
	static const char doc[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<Error><Code>SignatureDoesNotMatch</Code><Message>The request "
	    "signature we calculated does not match the signature you "
	    "provided.\n\t</Message><StringToSign>AWS4-HMAC-SHA256"
	    "</StringToSign><RequestId>4442587FB7D0A2F9</RequestId></Error>";
	char code[64], msg[256];

	CHECK_ERR(s3xml_parse_error(doc, strlen(doc), code, sizeof(code), msg,
				    sizeof(msg)),
		  0);
	CHECK_STR(code, "SignatureDoesNotMatch");
	CHECK(strncmp(msg, "The request signature we calculated", 35) == 0);
	CHECK(strstr(msg, "\\x0a\\x09") != NULL);
	CHECK(strchr(msg, '\n') == NULL);
	CHECK_ERR(s3xml_parse_error("<Nope/>", 7, code, sizeof(code), msg,
				    sizeof(msg)),
		  -EPROTO);
	CHECK_STR(code, "");
	CHECK_ERR(s3xml_parse_error("", 0, code, sizeof(code), msg,
				    sizeof(msg)),
		  -EPROTO);
	/* cut to fit */
	CHECK_ERR(s3xml_parse_error(doc, strlen(doc), code, 10, msg, 12), 0);
	CHECK_STR(code, "Signat...");
	/* a raw control byte is not XML 1.0: refused, not passed on */
	CHECK_ERR(s3xml_parse_error("<Error><Code>A\x07</Code></Error>", 30,
				    code, sizeof(code), msg, sizeof(msg)),
		  -EPROTO);
	CHECK(strlen(msg) < 12);
}

static void key_ok(const char *k, bool want, const char *why_part)
{
	char why[256];
	bool got = s3_key_component_ok(k, strlen(k), why, sizeof(why));

	CHECK(got == want);
	if (got != want)
		fprintf(stderr, "  key \"%s\": %s\n", k, why);
	if (!want && why_part && !strstr(why, why_part)) {
		check_failed++;
		fprintf(stderr, "  \"%s\" lacks \"%s\"\n", why, why_part);
	}
	for (const char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
			check_failed++;
			fprintf(stderr, "  raw byte in reason \"%s\"\n", why);
			break;
		}
}

static void test_keys(void)
{
	char big[300];

	key_ok("model.safetensors", true, NULL);
	key_ok("a/b/c.pt", true, NULL);
	key_ok("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true, NULL);
	key_ok("...", true, NULL);
	key_ok(".hidden", true, NULL);
	key_ok("..x", true, NULL);
	key_ok("a b", true, NULL);
	key_ok("", false, "empty");
	key_ok("/abs", false, "leading");
	key_ok("a//b", false, "empty segment");
	key_ok("a/", false, "empty segment");
	key_ok(".", false, "'..'");
	key_ok("..", false, "'..'");
	key_ok("a/../b", false, "'..'");
	key_ok("a/./b", false, "'..'");
	key_ok("x/..", false, "'..'");
	key_ok("new\nline", false, "newline");
	key_ok("tab\there", false, "control");
	key_ok("del\x7f", false, "control");
	key_ok("esc\x1b[2J", false, "control");
	key_ok("\xff\xfe", false, "UTF-8");
	key_ok("\xc0\xaf", false, "UTF-8");		/* overlong '/' */
	key_ok("\xe0\x80\xaf", false, "UTF-8");		/* overlong */
	key_ok("\xed\xa0\x80", false, "UTF-8");		/* surrogate */
	key_ok("\xf4\x90\x80\x80", false, "UTF-8");	/* > U+10FFFF */
	key_ok("trunc\xe2\x82", false, "UTF-8");
	key_ok("back\\slash", true, NULL);
	memset(big, 'a', 256);
	big[256] = '\0';
	key_ok(big, false, "255");
	big[255] = '\0';
	key_ok(big, true, NULL);

	/* NUL inside the length */
	char why[256];
	CHECK(!s3_key_component_ok("a\0b", 3, why, sizeof(why)));
	CHECK(strstr(why, "NUL") != NULL && strstr(why, "a\\x00b") != NULL);
	/* the reason escapes the key */
	CHECK(!s3_key_component_ok("a\nb", 3, why, sizeof(why)));
	CHECK(strstr(why, "a\\x0ab") != NULL);
}

static void test_misc(void)
{
	int64_t t;
	char out[16];

	CHECK_ERR(s3_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
	CHECK(t == 0);
	CHECK_ERR(s3_parse_iso8601("2013-05-24T00:00:00.000Z", &t), 0);
	CHECK(t == 1369353600);
	CHECK_ERR(s3_parse_iso8601("2013-05-24T00:00:00", &t), -EINVAL);
	CHECK_ERR(s3_parse_iso8601("2013-05-24T00:00:00.Z", &t), -EINVAL);
	CHECK_ERR(s3_parse_iso8601("2013-13-24T00:00:00Z", &t), -EINVAL);
	CHECK_ERR(s3_parse_iso8601("2013-05-24 00:00:00Z", &t), -EINVAL);
	CHECK_ERR(s3_parse_iso8601("", &t), -EINVAL);
	s3_escape("abc\x01", 4, out, sizeof(out));
	CHECK_STR(out, "abc\\x01");
	s3_escape("0123456789abcdefghij", 20, out, sizeof(out));
	CHECK_STR(out, "0123456789ab...");
	CHECK(strlen(out) < sizeof(out));
}

int main(void)
{
	s3xml_init();
	test_good_pages();
	test_truncation();
	test_hostile();
	test_url_encoding();
	test_error_doc();
	test_keys();
	test_misc();
	return CHECK_DONE();
}
