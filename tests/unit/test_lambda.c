/*
 * test_lambda.c - the Lambda adapter's pure parts (state mapping, list and
 * terminate parsing, secret scrubbing, orphan lines) against the canned
 * replies in tests/fixtures/platforms/lambda/, plus open()'s validation and
 * the restapi.c helpers it uses. No network.
 */
#include "buf.h"
#include "config.h"
#include "lambda.h"
#include "platform.h"
#include "restapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define REQUIRE(expr)                                                          \
	do {                                                                   \
		if (!(expr)) {                                                 \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",         \
				__FILE__, __LINE__, #expr);                    \
			exit(1);                                               \
		}                                                              \
	} while (0)

static char fixture_dir[4096];

static char *slurp(const char *name, size_t *len)
{
	char path[4200];
	char *b = NULL;
	size_t n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/platforms/lambda/%s", fixture_dir,
		 name);
	fp = fopen(path, "rb");
	if (!fp) {
		fprintf(stderr, "%s: cannot open\n", path);
		exit(1);
	}
	for (;;) {
		b = realloc(b, n + 4096 + 1);
		REQUIRE(b);
		size_t r = fread(b + n, 1, 4096, fp);
		n += r;
		if (r < 4096)
			break;
	}
	fclose(fp);
	b[n] = '\0';
	*len = n;
	return b;
}

static int parse_fixture(const char *name, const char *user,
			 struct rgt_instance_list *l, char *err, size_t errlen)
{
	size_t len;
	char *b = slurp(name, &len);
	int rc = lambda_parse_instances(b, len, user, l, err, errlen);

	free(b);
	return rc;
}

static const struct rgt_instance *find(const struct rgt_instance_list *l,
				       const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].id, id))
			return &l->v[i];
	return NULL;
}

static enum rgt_state st(const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	enum rgt_state s;

	REQUIRE(j);
	s = lambda_map_state(j);
	json_decref(j);
	return s;
}

static void test_map_state(void)
{
	CHECK(st("{\"status\":\"booting\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"status\":\"active\"}") == RGT_ST_RUNNING);
	CHECK(st("{\"status\":\"ACTIVE\"}") == RGT_ST_RUNNING);
	CHECK(st("{\"status\":\"unhealthy\"}") == RGT_ST_OFFLINE);
	CHECK(st("{\"status\":\"preempted\"}") == RGT_ST_PREEMPTED);
	CHECK(st("{\"status\":\"terminating\"}") == RGT_ST_DESTROYING);
	CHECK(st("{\"status\":\"terminated\"}") == RGT_ST_GONE);
	CHECK(st("{\"status\":\"rebuilding\"}") == RGT_ST_UNKNOWN);
	CHECK(st("{\"status\":null}") == RGT_ST_UNKNOWN);
	CHECK(st("{\"status\":3}") == RGT_ST_UNKNOWN);
	CHECK(st("{}") == RGT_ST_UNKNOWN);
	CHECK(st("[]") == RGT_ST_UNKNOWN);
	CHECK(lambda_map_state(NULL) == RGT_ST_UNKNOWN);
}

static void test_list(void)
{
	struct rgt_instance_list l;
	const struct rgt_instance *i;
	char err[512];

	REQUIRE(parse_fixture("list.json", NULL, &l, err, sizeof(err)) == 0);
	/* terminated is understood and left out; 3 entries are malformed */
	CHECK(l.n == 6);
	CHECK(!l.complete);
	CHECK(strstr(err, "skipped 3 malformed") != NULL);
	CHECK(strstr(err, "passwd") == NULL);
	for (size_t k = 1; k < l.n; k++)
		CHECK(strcmp(l.v[k - 1].id, l.v[k].id) < 0);

	i = find(&l, "0920582c7ff041399e34823a0be62549");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_RUNNING);
	REQUIRE(i->n_ep == 1);
	CHECK_STR(i->ep[0].host, "198.51.100.2");
	CHECK(i->ep[0].port == 22);
	CHECK_STR(i->ep[0].user, "ubuntu");
	CHECK_STR(i->status_msg, "active (gpu_1x_a100_sxm4 in us-tx-1)");
	CHECK(strstr(i->info_json, "\"platform\": \"lambda\"") != NULL);
	CHECK(strstr(i->info_json, "\"ssh_user\": \"ubuntu\"") != NULL);
	CHECK(strstr(i->info_json, "\"price_cents_per_hour\": 129") != NULL);
	CHECK(strstr(i->info_json, "ckpt-nfs") != NULL);
	CHECK(strstr(i->info_json, "53968f128c4a4489b688c2c0a181d083") ==
	      NULL);
	CHECK(strstr(i->info_json, "jupyter") == NULL);
	CHECK(i->info_json[strlen(i->info_json) - 1] == '\n');

	i = find(&l, "1b2c3d4e5f60718293a4b5c6d7e8f901");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_PROVISIONING);
	CHECK(i->n_ep == 0); /* no ip while booting */
	CHECK(strstr(i->info_json, "\"endpoints\": []") != NULL);

	i = find(&l, "2b2c3d4e5f60718293a4b5c6d7e8f902");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_OFFLINE);
	CHECK_STR(i->status_msg, "unhealthy (us-east-1)");

	i = find(&l, "3b2c3d4e5f60718293a4b5c6d7e8f903");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_PREEMPTED);
	CHECK_STR(i->status_msg, "preempted");

	i = find(&l, "4b2c3d4e5f60718293a4b5c6d7e8f904");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_DESTROYING);

	CHECK(find(&l, "5b2c3d4e5f60718293a4b5c6d7e8f905") == NULL);

	i = find(&l, "6b2c3d4e5f60718293a4b5c6d7e8f906");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_UNKNOWN);
	CHECK(i->n_ep == 0); /* a hostile ip is no endpoint */
	rgt_instance_list_free(&l);

	/* The section's own login wins. */
	REQUIRE(parse_fixture("list.json", "root", &l, err, sizeof(err)) == 0);
	i = find(&l, "0920582c7ff041399e34823a0be62549");
	REQUIRE(i && i->n_ep == 1);
	CHECK_STR(i->ep[0].user, "root");
	rgt_instance_list_free(&l);
}

static void test_complete(void)
{
	struct rgt_instance_list l;
	char err[512];
	const char *one = "{\"data\":[{\"id\":\"abc\",\"status\":\"active\"}]}";
	const char *gone =
	    "{\"data\":[{\"id\":\"abc\",\"status\":\"terminated\"}]}";
	const char *dup = "{\"data\":[{\"id\":\"abc\",\"status\":\"active\"},"
			  "{\"id\":\"abc\",\"status\":\"booting\"}]}";
	const char *junk = "{\"data\":[1,2,{\"id\":\"\"}]}";

	CHECK(parse_fixture("empty.json", NULL, &l, err, sizeof(err)) == 0);
	CHECK(l.n == 0 && l.complete);
	rgt_instance_list_free(&l);
	CHECK(lambda_parse_instances(one, strlen(one), NULL, &l, err,
				     sizeof(err)) == 0);
	CHECK(l.n == 1 && l.complete && err[0] == '\0');
	rgt_instance_list_free(&l);
	/* Terminated only: understood, so a complete empty list. */
	CHECK(lambda_parse_instances(gone, strlen(gone), NULL, &l, err,
				     sizeof(err)) == 0);
	CHECK(l.n == 0 && l.complete);
	rgt_instance_list_free(&l);
	CHECK(lambda_parse_instances(dup, strlen(dup), NULL, &l, err,
				     sizeof(err)) == 0);
	CHECK(l.n == 1 && !l.complete);
	CHECK(l.n == 1 && l.v[0].state == RGT_ST_RUNNING); /* first wins */
	rgt_instance_list_free(&l);
	CHECK(lambda_parse_instances(junk, strlen(junk), NULL, &l, err,
				     sizeof(err)) == -EBADMSG);
	CHECK(l.n == 0 && strstr(err, "none of the 3") != NULL);
	rgt_instance_list_free(&l);
}

static void test_bad_replies(void)
{
	struct rgt_instance_list l;
	char err[512];

	CHECK(parse_fixture("null.json", NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(l.n == 0 && strstr(err, "null") != NULL);
	CHECK(parse_fixture("no_data.json", NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(strstr(err, "missing") != NULL);
	CHECK(parse_fixture("truncated.json", NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(strstr(err, "truncated?") != NULL);
	CHECK(parse_fixture("html.json", NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(strstr(err, "HTML") != NULL);
	/* An error body with HTTP 200 is an error, not an empty list. */
	CHECK(parse_fixture("error_200.json", NULL, &l, err, sizeof(err)) ==
	      -EIO);
	CHECK(l.n == 0);
	CHECK(strstr(err, "global/invalid-api-key: API key was invalid") !=
	      NULL);
	CHECK(parse_fixture("error_404.json", NULL, &l, err, sizeof(err)) ==
	      -EIO);
	CHECK(lambda_parse_instances("", 0, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(lambda_parse_instances(NULL, 0, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(lambda_parse_instances("[]", 2, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(lambda_parse_instances("{\"data\":{}}", 11, NULL, &l, err,
				     sizeof(err)) == -EBADMSG);
	CHECK(lambda_parse_instances("{\"data\":[]}", LAMBDA_MAX_BODY + 1,
				     NULL, &l, err, sizeof(err)) == -EFBIG);
}

static void test_secrets(void)
{
	static const char *const values[] = {
	    "SECRET-jupyter-token-7f3a", "SECRET-jupyter-url-1b2c",
	    "SECRET-apikey-3141",	 "SECRET-in-array-1618",
	    "SECRET-nested-pass-2718",	 "SECRET-spoofed-rgtfs-0000",
	    "SECRET",
	};
	struct rgt_instance_list l;
	char err[512];

	REQUIRE(parse_fixture("secrets.json", NULL, &l, err, sizeof(err)) ==
		0);
	REQUIRE(l.n == 1);
	for (size_t k = 0; k < sizeof(values) / sizeof(values[0]); k++)
		if (strstr(l.v[0].info_json, values[k])) {
			fprintf(stderr, "secret %s leaked into info_json\n",
				values[k]);
			check_failed++;
		}
	CHECK(strstr(l.v[0].info_json, "\"ok\": \"visible\"") != NULL);
	CHECK(strstr(l.v[0].info_json, "\"plain\"") != NULL);
	CHECK(strstr(l.v[0].info_json, "gpu_1x_h100_pcie") != NULL);
	rgt_instance_list_free(&l);
}

static void test_orphans(void)
{
	size_t len;
	char *b = slurp("list.json", &len);
	json_t *root = json_loadb(b, len, 0, NULL);
	struct buf out;

	REQUIRE(root);
	buf_init(&out, 1 << 16);
	CHECK(lambda_orphan_lines(
		  json_array_get(json_object_get(root, "data"), 0), &out) == 0);
	CHECK(out.data && strstr(out.data, "file system shared-fs (NFS "
					   "/lambda/nfs/shared-fs, region "
					   "us-tx-1)") != NULL);
	CHECK(out.data && strstr(out.data, "file system ckpt-nfs") != NULL);
	CHECK(out.data && strstr(out.data, "bills until deleted\n") != NULL);
	buf_reset(&out);
	CHECK(lambda_orphan_lines(
		  json_array_get(json_object_get(root, "data"), 1), &out) == 0);
	CHECK(out.len == 0); /* [] */
	CHECK(lambda_orphan_lines(NULL, &out) == 0 && out.len == 0);
	/* the region's name goes into the teardown report: control bytes
	 * (a DEL here, found by fuzz_lambda) never reach it */
	json_t *odd = json_pack("{s:[s], s:{s:s}}", "file_system_names", "fs1",
				"region", "name", "us-tx\x7f" "1\n\x1b[2J");
	REQUIRE(odd);
	buf_reset(&out);
	CHECK(lambda_orphan_lines(odd, &out) == 0);
	bool clean = out.len > 0 && out.data[out.len - 1] == '\n';
	for (size_t i = 0; i + 1 < out.len; i++)
		clean = clean && (unsigned char)out.data[i] >= 0x20 &&
			out.data[i] != 0x7f;
	CHECK(clean);
	CHECK(out.data && strstr(out.data, "region us-tx 1") != NULL);
	json_decref(odd);
	buf_cleanup(&out);
	json_decref(root);
	free(b);
}

static void test_terminate(void)
{
	const char *id = "0920582c7ff041399e34823a0be62549";
	char err[512];
	bool refused;
	size_t len;
	char *b;

	b = slurp("terminate.json", &len);
	CHECK(lambda_parse_terminate(b, len, id, &refused, err, sizeof(err)) ==
	      0);
	CHECK(!refused);
	CHECK(lambda_parse_terminate(b, len, "someoneelse", &refused, err,
				     sizeof(err)) == -EBADMSG);
	free(b);
	b = slurp("terminate_other.json", &len);
	CHECK(lambda_parse_terminate(b, len, id, &refused, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(!refused);
	free(b);
	b = slurp("error_404.json", &len);
	CHECK(lambda_parse_terminate(b, len, id, &refused, err, sizeof(err)) ==
	      -EIO);
	CHECK(refused);
	CHECK(strstr(err, "object-does-not-exist") != NULL);
	free(b);
	CHECK(lambda_parse_terminate("{", 1, id, &refused, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(!refused);
}

static void test_helpers(void)
{
	char *s;

	s = restapi_base64("k3y:", 4);
	CHECK_STR(s, "azN5Og==");
	free(s);
	s = restapi_base64("ab", 2);
	CHECK_STR(s, "YWI=");
	free(s);
	s = restapi_base64("abc", 3);
	CHECK_STR(s, "YWJj");
	free(s);
	s = restapi_base64("", 0);
	CHECK_STR(s, "");
	free(s);
	s = restapi_urlencode("a+b/c=d e~_.-");
	CHECK_STR(s, "a%2Bb%2Fc%3Dd%20e~_.-");
	free(s);
}

static void sec_init(struct rgt_section *s, struct rgt_kv *kv, size_t nkv)
{
	static char kind[] = "lambda";

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->name = kind;
	s->ssh_user = "root"; /* config.c's default, not said by the user */
	s->kv = kv;
	s->nkv = nkv;
}

static int try_open(const char *url, struct rgt_kv *kv, size_t nkv, char *err,
		    size_t errlen)
{
	struct platform *p = NULL;
	struct rgt_section s;
	int rc;

	sec_init(&s, kv, nkv);
	s.api_url = url;
	s.api_key_env = "RGT_TEST_LAMBDA_KEY";
	rc = lambda_platform_ops.open(&s, &p, err, errlen);
	CHECK(rc == 0 ? p != NULL : p == NULL);
	if (p) {
		struct platform_caps c;

		lambda_platform_ops.caps(p, &c);
		CHECK(c.n_destroy == 1 && c.confirm_by_list && !c.log_api);
		CHECK_STR(c.destroy[0].name, "terminate");
		lambda_platform_ops.close(p);
	}
	lambda_platform_ops.close(NULL);
	return rc;
}

static void test_open(void)
{
	static char k_to[] = "api_timeout", k_user[] = "ssh_user";
	static char v_bad[] = "0", v_ok[] = "2", v_user[] = "root";
	struct rgt_kv bad = {k_to, v_bad, 3}, good = {k_to, v_ok, 3};
	struct rgt_kv user = {k_user, v_user, 4};
	char err[512];

	CHECK(platform_find("lambda") == &lambda_platform_ops);
	setenv("RGT_TEST_LAMBDA_KEY", "secret_lambda-key-4242", 1);
	CHECK(try_open(NULL, NULL, 0, err, sizeof(err)) == 0);
	CHECK(try_open("https://cloud.lambda.ai", NULL, 0, err, sizeof(err)) ==
	      0);
	CHECK(try_open("http://127.0.0.1:9", &good, 1, err, sizeof(err)) == 0);
	CHECK(try_open("http://cloud.lambdalabs.com", NULL, 0, err,
		       sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "lambda: api_url must be https") != NULL);
	CHECK(try_open("https://cloud.lambdalabs.com/api/v1", NULL, 0, err,
		       sizeof(err)) == -EINVAL);
	CHECK(try_open(NULL, &bad, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "api_timeout") != NULL);
	CHECK(try_open(NULL, &user, 1, err, sizeof(err)) == 0);
	unsetenv("RGT_TEST_LAMBDA_KEY");
	CHECK(try_open(NULL, NULL, 0, err, sizeof(err)) == -ENOKEY);
	CHECK(strstr(err, "secret_lambda") == NULL);
}

static void test_ssh_user(void)
{
	static char k_user[] = "ssh_user", k_user2[] = "user";
	static char v_user[] = "me";
	struct rgt_kv kv = {k_user, v_user, 4}, kv2 = {k_user2, v_user, 4};
	struct rgt_section s;

	sec_init(&s, NULL, 0);
	CHECK_STR(restapi_ssh_user(&s, "ubuntu"), "ubuntu");
	sec_init(&s, &kv, 1);
	CHECK_STR(restapi_ssh_user(&s, "ubuntu"), "me");
	sec_init(&s, &kv2, 1);
	CHECK_STR(restapi_ssh_user(&s, "ubuntu"), "me");
}

/* The facts of one instance: its status and instance_type (JSON). */
static struct rgt_facts lambda_facts(const char *status, const char *type)
{
	struct rgt_instance_list l;
	struct rgt_facts f;
	char err[512], b[2048];

	snprintf(b, sizeof(b),
		 "{\"data\":[{\"id\":\"0920582c7ff041399e34823a0be62549\","
		 "\"status\":\"%s\"%s%s}]}",
		 status, type ? ",\"instance_type\":" : "", type ? type : "");
	REQUIRE(lambda_parse_instances(b, strlen(b), NULL, &l, err,
				       sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	f = l.v[0].facts;
	rgt_instance_list_free(&l);
	return f;
}

static void test_facts(void)
{
	struct rgt_instance_list l;
	const struct rgt_instance *i;
	struct rgt_facts f;
	char err[512], long_type[512], *p;

	REQUIRE(parse_fixture("list.json", NULL, &l, err, sizeof(err)) == 0);
	i = find(&l, "0920582c7ff041399e34823a0be62549");
	REQUIRE(i);
	CHECK_STR(i->facts.gpu, "A100 (40 GB SXM4)");
	CHECK(i->facts.gpu_count == 1);
	CHECK(i->facts.usd_per_hour == 1.29);
	CHECK(i->facts.started == 0);	/* Lambda gives no start time */
	/* booting: not billed yet, and the answer does not say 0 */
	i = find(&l, "1b2c3d4e5f60718293a4b5c6d7e8f901");
	REQUIRE(i);
	CHECK_STR(i->facts.gpu, "gpu_8x_h100_sxm5");
	CHECK(i->facts.gpu_count == -1);	/* the name's 8x is not read */
	CHECK(i->facts.usd_per_hour < 0);
	/* no instance_type at all */
	i = find(&l, "2b2c3d4e5f60718293a4b5c6d7e8f902");
	REQUIRE(i);
	CHECK(!i->facts.gpu[0] && i->facts.gpu_count == -1 &&
	      i->facts.usd_per_hour < 0 && i->facts.started == 0);
	rgt_instance_list_free(&l);

	/* the description's "<N>x" and model when nothing else says them */
	f = lambda_facts("active", "{\"name\":\"gpu_8x_h100_sxm5\","
				   "\"description\":\"8x H100 (80 GB SXM5)\","
				   "\"price_cents_per_hour\":2392}");
	CHECK_STR(f.gpu, "H100 (80 GB SXM5)");
	CHECK(f.gpu_count == 8);
	CHECK(f.usd_per_hour == 23.92);
	/* specs.gpus wins over the description */
	f = lambda_facts("unhealthy", "{\"description\":\"8x H100\","
				      "\"specs\":{\"gpus\":4},"
				      "\"price_cents_per_hour\":0}");
	CHECK(f.gpu_count == 4);
	CHECK(f.usd_per_hour == 0);	/* unhealthy bills; Lambda said 0 */
	/* a description without "<N>x " is the model as it is */
	f = lambda_facts("active", "{\"description\":\"RTX 6000 Ada\"}");
	CHECK_STR(f.gpu, "RTX 6000 Ada");
	CHECK(f.gpu_count == -1 && f.usd_per_hour < 0);
	static const char *const no_count[] = {
	    "0x A100", "x A100", "12345x A100",
	    "8xA100",  "8 x A100", "-8x A100",
	};
	for (size_t k = 0; k < sizeof(no_count) / sizeof(no_count[0]); k++) {
		char t[128];

		snprintf(t, sizeof(t), "{\"description\":\"%s\"}", no_count[k]);
		f = lambda_facts("active", t);
		CHECK(f.gpu_count == -1);
		CHECK_STR(f.gpu, no_count[k]);
	}
	/* wrong types, negative prices: unknown */
	f = lambda_facts("active", "{\"gpu_description\":5,"
				   "\"description\":null,\"name\":[],"
				   "\"specs\":{\"gpus\":\"1\"},"
				   "\"price_cents_per_hour\":\"129\"}");
	CHECK(!f.gpu[0] && f.gpu_count == -1 && f.usd_per_hour < 0);
	f = lambda_facts("active", "{\"price_cents_per_hour\":-129}");
	CHECK(f.usd_per_hour < 0);
	f = lambda_facts("active", "{\"specs\":[1],"
				   "\"price_cents_per_hour\":true}");
	CHECK(f.gpu_count == -1 && f.usd_per_hour < 0);
	f = lambda_facts("active", "\"gpu_1x_a100\"");
	CHECK(!f.gpu[0] && f.usd_per_hour < 0);
	f = lambda_facts("terminating", "{\"price_cents_per_hour\":129}");
	CHECK(f.usd_per_hour < 0);
	/* a long model is cut on a character boundary */
	p = long_type + sprintf(long_type, "{\"gpu_description\":\"A100 ");
	for (int k = 0; k < 40; k++)
		p += sprintf(p, "\\u00e9");	/* é, 2 bytes in UTF-8 */
	sprintf(p, "\"}");
	f = lambda_facts("active", long_type);
	CHECK(strlen(f.gpu) == 63);	/* "A100 " and 29 whole é */
	CHECK((unsigned char)f.gpu[62] == 0xa9);
}

int main(void)
{
	check_fixture_dir(fixture_dir, sizeof(fixture_dir), __FILE__, "",
			  "platforms/lambda/list.json");
	test_map_state();
	test_list();
	test_complete();
	test_bad_replies();
	test_secrets();
	test_orphans();
	test_terminate();
	test_helpers();
	test_open();
	test_ssh_user();
	test_facts();
	return CHECK_DONE();
}
