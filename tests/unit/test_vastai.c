/*
 * test_vastai.c - the vast.ai adapter's pure parts (state mapping, reply
 * parsing, secret scrubbing, the log API's reply and result_url rule) and
 * the platform.c helpers, against the canned
 * replies in tests/fixtures/platforms/vastai/. No network: open() is
 * exercised for its validation only, and list()/destroy() are left to the
 * integration tests against a fake API.
 *
 * Fixtures are found from __FILE__ (meson compiles with a path relative to
 * the build root and runs us in build/tests), or from $RGT_FIXTURES.
 */
#define _GNU_SOURCE /* asprintf */
#include "config.h"
#include "platform.h"
#include "vastai.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"


/* A failure after which the rest of a test makes no sense. */
#define REQUIRE(expr)                                                          \
	do {                                                                   \
		if (!(expr)) {                                                 \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",         \
				__FILE__, __LINE__, #expr);                    \
			exit(1);                                               \
		}                                                              \
	} while (0)

static char fixture_dir[4096];

static void find_fixtures(void)
{
	check_fixture_dir(fixture_dir, sizeof(fixture_dir), __FILE__, "",
			  "platforms/vastai/list.json");
}

static char *slurp(const char *name, size_t *len)
{
	char path[4200];
	char *b = NULL;
	size_t n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/platforms/vastai/%s", fixture_dir,
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

static int parse_fixture(const char *name, struct rgt_instance_list *l,
			 char *err, size_t errlen)
{
	size_t len;
	char *b = slurp(name, &len);
	int rc = vastai_parse_instances(b, len, "root", l, err, errlen);

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

static bool one_line_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void test_state_names(void)
{
	CHECK(!strcmp(rgt_state_name(RGT_ST_PROVISIONING), "provisioning"));
	CHECK(!strcmp(rgt_state_name(RGT_ST_RUNNING), "running"));
	CHECK(!strcmp(rgt_state_name(RGT_ST_STOPPED), "stopped"));
	CHECK(!strcmp(rgt_state_name(RGT_ST_PREEMPTED), "preempted"));
	CHECK(!strcmp(rgt_state_name(RGT_ST_OFFLINE), "offline"));
	CHECK(!strcmp(rgt_state_name(RGT_ST_DESTROYING), "destroying"));
	CHECK(!strcmp(rgt_state_name(RGT_ST_GONE), "gone"));
	CHECK(!strcmp(rgt_state_name(RGT_ST_UNKNOWN), "unknown"));
	CHECK(!strcmp(rgt_state_name((enum rgt_state)99), "unknown"));
}

static void test_registry(void)
{
	CHECK(platform_find("vastai") == &vastai_platform_ops);
	CHECK(platform_find("nosuch") == NULL);
	CHECK(platform_find(NULL) == NULL);
	CHECK(!strcmp(vastai_platform_ops.name, "vastai"));
}

static void test_id_valid(void)
{
	char big[RGT_ID_MAX + 1];

	CHECK(platform_id_valid("12345678"));
	CHECK(platform_id_valid("pro-abc_1.2"));
	CHECK(!platform_id_valid(""));
	CHECK(!platform_id_valid(NULL));
	CHECK(!platform_id_valid("."));
	CHECK(!platform_id_valid(".."));
	CHECK(!platform_id_valid(".error"));
	CHECK(!platform_id_valid("-rf"));
	CHECK(!platform_id_valid("a/b"));
	CHECK(!platform_id_valid("a b"));
	CHECK(!platform_id_valid("a\nb"));
	CHECK(!platform_id_valid("\xc3\xa9"));
	memset(big, 'a', RGT_ID_MAX);
	big[RGT_ID_MAX] = '\0';
	CHECK(!platform_id_valid(big));
	big[RGT_ID_MAX - 1] = '\0';
	CHECK(platform_id_valid(big));
}

static enum rgt_state st(const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	enum rgt_state s;

	REQUIRE(j);
	s = vastai_map_state(j);
	json_decref(j);
	return s;
}

static void test_map_state(void)
{
	CHECK(st("{\"actual_status\":null}") == RGT_ST_PROVISIONING);
	CHECK(st("{}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"actual_status\":\"loading\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"actual_status\":\"created\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"actual_status\":\"rebooting\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"actual_status\":\"running\"}") == RGT_ST_RUNNING);
	CHECK(st("{\"actual_status\":\"stopped\","
		 "\"intended_status\":\"stopped\"}") == RGT_ST_STOPPED);
	CHECK(st("{\"actual_status\":\"frozen\"}") == RGT_ST_STOPPED);
	CHECK(st("{\"actual_status\":\"exited\","
		 "\"intended_status\":\"running\"}") == RGT_ST_STOPPED);
	CHECK(st("{\"actual_status\":\"offline\"}") == RGT_ST_OFFLINE);
	CHECK(st("{\"actual_status\":\"unknown\"}") == RGT_ST_UNKNOWN);
	CHECK(st("{\"actual_status\":\"teleporting\"}") == RGT_ST_UNKNOWN);
	CHECK(st("{\"actual_status\":42}") == RGT_ST_UNKNOWN);
	CHECK(st("[]") == RGT_ST_UNKNOWN);
	CHECK(vastai_map_state(NULL) == RGT_ST_UNKNOWN);
	/* Preempted: a bid that should run but does not. */
	CHECK(st("{\"is_bid\":true,\"intended_status\":\"running\","
		 "\"actual_status\":\"stopped\"}") == RGT_ST_PREEMPTED);
	CHECK(st("{\"is_bid\":true,\"intended_status\":\"running\","
		 "\"actual_status\":\"exited\"}") == RGT_ST_PREEMPTED);
	CHECK(st("{\"is_bid\":true,\"intended_status\":\"running\","
		 "\"actual_status\":null}") == RGT_ST_PREEMPTED);
	CHECK(st("{\"is_bid\":true,\"intended_status\":\"running\","
		 "\"actual_status\":\"scheduling\"}") == RGT_ST_PREEMPTED);
	CHECK(st("{\"is_bid\":1,\"intended_status\":\"running\","
		 "\"actual_status\":\"stopped\"}") == RGT_ST_PREEMPTED);
	/* ... but not a bid the user stopped, nor one that runs. */
	CHECK(st("{\"is_bid\":true,\"intended_status\":\"stopped\","
		 "\"actual_status\":\"stopped\"}") == RGT_ST_STOPPED);
	CHECK(st("{\"is_bid\":true,\"intended_status\":\"running\","
		 "\"actual_status\":\"running\"}") == RGT_ST_RUNNING);
	CHECK(st("{\"is_bid\":false,\"intended_status\":\"running\","
		 "\"actual_status\":\"stopped\"}") == RGT_ST_STOPPED);
	/* Released by a DELETE but still listed. */
	CHECK(st("{\"cur_state\":\"unloaded\",\"actual_status\":\"exited\"}") ==
	      RGT_ST_DESTROYING);
	CHECK(st("{\"cur_state\":\"unloaded\",\"actual_status\":\"running\","
		 "\"is_bid\":true,\"intended_status\":\"running\"}") ==
	      RGT_ST_DESTROYING);
}

static void test_list(void)
{
	struct rgt_instance_list l;
	const struct rgt_instance *i;
	char err[512];
	int rc;

	rc = parse_fixture("list.json", &l, err, sizeof(err));
	REQUIRE(rc == 0);
	CHECK(l.n == 11);
	/* The bad id and the non-object entry are skipped and reported. */
	CHECK(strstr(err, "skipped 2 malformed") != NULL);
	CHECK(strstr(err, "12/../x") == NULL);
	/* Sorted by numeric id. */
	CHECK(!strcmp(l.v[0].id, "12345678"));
	CHECK(!strcmp(l.v[1].id, "20000001"));
	for (size_t k = 0; k < l.n; k++) {
		CHECK(platform_id_valid(l.v[k].id));
		CHECK(l.v[k].status_msg && one_line_ok(l.v[k].status_msg));
		CHECK(l.v[k].info_json &&
		      l.v[k].info_json[strlen(l.v[k].info_json) - 1] == '\n');
		CHECK(l.v[k].n_ep >= 0 && l.v[k].n_ep <= 2);
	}

	i = find(&l, "12345678");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_RUNNING);
	CHECK(i->n_ep == 2);
	CHECK(!strcmp(i->ep[0].host, "203.0.113.44")); /* trimmed */
	CHECK(i->ep[0].port == 40122);		       /* from a string */
	CHECK(!strcmp(i->ep[1].host, "ssh5.vast.ai"));
	CHECK(i->ep[1].port == 34567);
	CHECK(!strcmp(i->status_msg,
		      "success, running pytorch/pytorch_2.4.0-"
		      "cuda12.4-cudnn9-runtime/ssh second line after a tab"));
	CHECK(strstr(i->info_json, "\"kind\": \"direct\"") != NULL);
	CHECK(strstr(i->info_json, "\"state\": \"running\"") != NULL);
	CHECK(strstr(i->info_json, "\"platform\": \"vastai\"") != NULL);
	CHECK(strstr(i->info_json, "\"gpu_name\": \"RTX 4090\"") != NULL);
	CHECK(strstr(i->info_json, "\"dph_total\": 0.3866") != NULL);
	CHECK(strstr(i->info_json, "jt-list-") == NULL);
	CHECK(strstr(i->info_json, "onstart") == NULL);
	CHECK(strstr(i->info_json, "WANDB_MODE") == NULL);

	i = find(&l, "20000001"); /* ports null, ssh_port a string */
	REQUIRE(i);
	CHECK(i->state == RGT_ST_PROVISIONING);
	CHECK(i->n_ep == 1);
	CHECK(!strcmp(i->ep[0].host, "ssh2.vast.ai") && i->ep[0].port == 34568);
	CHECK(strstr(i->info_json, "\"kind\": \"proxy\"") != NULL);
	CHECK(strstr(i->info_json, "\"kind\": \"direct\"") == NULL);

	i = find(&l, "20000002"); /* ports {} */
	REQUIRE(i);
	CHECK(i->state == RGT_ST_STOPPED);
	CHECK(i->n_ep == 1 && i->ep[0].port == 34569);
	CHECK(!strcmp(i->status_msg, ""));

	i = find(&l, "20000003"); /* ports a list; exited, not a bid */
	REQUIRE(i);
	CHECK(i->state == RGT_ST_STOPPED);
	CHECK(i->n_ep == 1 && !strcmp(i->ep[0].host, "ssh4.vast.ai"));

	i = find(&l, "20000004");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_PREEMPTED);
	CHECK(i->n_ep == 2 && i->ep[0].port == 40222);

	i = find(&l, "20000005");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_STOPPED); /* frozen */

	i = find(&l, "20000006");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_DESTROYING);
	CHECK(strstr(i->info_json, "\"state\": \"destroying\"") != NULL);

	i = find(&l, "20000007"); /* numeric string id, HostPort int */
	REQUIRE(i);
	CHECK(i->state == RGT_ST_OFFLINE);
	CHECK(i->n_ep == 2);
	CHECK(!strcmp(i->ep[0].host, "2001:db8::7") && i->ep[0].port == 40200);

	i = find(&l, "20000008"); /* HostPort 99999, ssh_port 0 */
	REQUIRE(i);
	CHECK(i->state == RGT_ST_UNKNOWN);
	CHECK(i->n_ep == 0);

	i = find(&l, "20000009"); /* hostile ssh_host, unknown state */
	REQUIRE(i);
	CHECK(i->state == RGT_ST_UNKNOWN);
	CHECK(i->n_ep == 0);

	i = find(&l, "20000010"); /* "22/tcp": [] */
	REQUIRE(i);
	CHECK(i->state == RGT_ST_PROVISIONING);
	CHECK(i->n_ep == 0);
	CHECK(strstr(i->info_json, "\"endpoints\": []") != NULL);

	rgt_instance_list_free(&l);
	CHECK(l.v == NULL && l.n == 0);
	rgt_instance_list_free(&l); /* twice is harmless */
	rgt_instance_list_free(NULL);
}

static void test_show(void)
{
	struct rgt_instance_list l;
	char err[512];

	CHECK(parse_fixture("show.json", &l, err, sizeof(err)) == 0);
	CHECK(err[0] == '\0');
	REQUIRE(l.n == 1);
	CHECK(!strcmp(l.v[0].id, "12345678"));
	CHECK(l.v[0].state == RGT_ST_RUNNING);
	CHECK(l.v[0].n_ep == 2 && l.v[0].ep[0].port == 40122);
	CHECK(strstr(l.v[0].info_json, "jt-show-") == NULL);
	rgt_instance_list_free(&l);

	/* null says nothing about any instance: never "all are gone" */
	CHECK(parse_fixture("show_null.json", &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(l.n == 0 && strstr(err, "null") != NULL);
	rgt_instance_list_free(&l);
}

/* Only a list whose every entry was understood may say who is gone. */
static void test_complete(void)
{
	struct rgt_instance_list l;
	char err[512];
	const char *clean = "{\"instances\":[{\"id\":7}]}";
	const char *empty = "{\"instances\":[]}";
	const char *partial = "{\"instances\":[{\"id\":7},{\"id\":-1}]}";
	const char *junk = "{\"instances\":[{\"id\":-1},\"x\",3]}";

	CHECK(vastai_parse_instances(clean, strlen(clean), NULL, &l, err,
				     sizeof(err)) == 0);
	CHECK(l.n == 1 && l.complete);
	rgt_instance_list_free(&l);
	CHECK(vastai_parse_instances(empty, strlen(empty), NULL, &l, err,
				     sizeof(err)) == 0);
	CHECK(l.n == 0 && l.complete);
	rgt_instance_list_free(&l);
	CHECK(vastai_parse_instances(partial, strlen(partial), NULL, &l, err,
				     sizeof(err)) == 0);
	CHECK(l.n == 1 && !l.complete);
	rgt_instance_list_free(&l);
	CHECK(vastai_parse_instances(junk, strlen(junk), NULL, &l, err,
				     sizeof(err)) == -EBADMSG);
	CHECK(l.n == 0 && strstr(err, "none of the 3") != NULL);
	rgt_instance_list_free(&l);
}

static void test_bad_replies(void)
{
	struct rgt_instance_list l;
	char err[512];

	CHECK(parse_fixture("truncated.json", &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(l.n == 0 && l.v == NULL);
	CHECK(strstr(err, "not valid JSON (truncated?) at line") != NULL);

	CHECK(parse_fixture("not_json.json", &l, err, sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "not JSON (an HTML page?)") != NULL);
	CHECK(strstr(err, "line 1 col 1") != NULL);

	CHECK(parse_fixture("success_false.json", &l, err, sizeof(err)) ==
	      -EIO);
	CHECK(l.n == 0);
	CHECK(strstr(err, "Instance list unavailable: please retry  later") !=
	      NULL);
	CHECK(one_line_ok(err));

	CHECK(parse_fixture("no_instances.json", &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(strstr(err, "no \"instances\"") != NULL);

	CHECK(vastai_parse_instances("", 0, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(strstr(err, "empty") != NULL);
	CHECK(vastai_parse_instances(NULL, 0, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(vastai_parse_instances("[1,2]", 5, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(vastai_parse_instances("{\"instances\": 7}", 16, NULL, &l, err,
				     sizeof(err)) == -EBADMSG);
	CHECK(vastai_parse_instances("{\"instances\": []} trailing", 26, NULL,
				     &l, err, sizeof(err)) == -EBADMSG);
	/* The length is what counts, not a NUL. */
	CHECK(vastai_parse_instances("{\"instances\": []}XXXX", 17, NULL, &l,
				     err, sizeof(err)) == 0);
	CHECK(l.n == 0);
	rgt_instance_list_free(&l);
	CHECK(vastai_parse_instances("{}", VASTAI_MAX_BODY + 1, NULL, &l, err,
				     sizeof(err)) == -EFBIG);
}

static void test_edge_entries(void)
{
	struct rgt_instance_list l;
	char err[512], *j, *p;
	const char *dup = "{\"instances\":[{\"id\":5,\"status_msg\":\"first\"},"
			  "{\"id\":\"5\",\"status_msg\":\"second\"},"
			  "{\"id\":\"005\"},{\"id\":-3},{\"id\":1.5},"
			  "{\"id\":\"\"},{\"id\":\"99999999999999999999\"},"
			  "{\"id\":3}]}";

	CHECK(vastai_parse_instances(dup, strlen(dup), NULL, &l, err,
				     sizeof(err)) == 0);
	REQUIRE(l.n == 2);
	CHECK(!strcmp(l.v[0].id, "3") && !strcmp(l.v[1].id, "5"));
	CHECK(!strcmp(l.v[1].status_msg, "first")); /* first one wins */
	/* "5" and "005" repeat 5; -3, 1.5, "" and 20 digits are bad. */
	CHECK(strstr(err, "skipped 6 malformed") != NULL);
	rgt_instance_list_free(&l);

	/* A long multi-byte status_msg is capped on a character boundary. */
	j = malloc(4096);
	REQUIRE(j);
	p = j + sprintf(j, "{\"instances\":{\"id\":1,\"status_msg\":\"");
	for (int k = 0; k < 400; k++)
		p += sprintf(p, "\xc3\xa9"); /* é, 2 bytes */
	sprintf(p, "\"}}");
	CHECK(vastai_parse_instances(j, strlen(j), NULL, &l, err,
				     sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	CHECK(strlen(l.v[0].status_msg) <= 512);
	CHECK(strlen(l.v[0].status_msg) >= 510);
	CHECK(strlen(l.v[0].status_msg) % 2 == 0);
	rgt_instance_list_free(&l);
	free(j);
}

static void test_secrets(void)
{
	static const char *const values[] = {
	    "SECRET-jupyter-7f3a9c",	 "SECRET-hf-onstart-1b2c",
	    "SECRET-onstart-cmd-55aa",	 "SECRET-wandb-e4d5",
	    "SECRET-registry-pass-77",	 "SECRET-image-arg-0c0c",
	    "SECRET-apikey-hint-3141",	 "SECRET-nested-pass-2718",
	    "SECRET-in-array-1618",	 "SECRET-cred-aws-9999",
	    "SECRET-spoofed-rgtfs-0000", "SECRET",
	};
	struct rgt_instance_list l;
	char err[512];

	CHECK(parse_fixture("secrets.json", &l, err, sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	for (size_t k = 0; k < sizeof(values) / sizeof(values[0]); k++)
		if (strstr(l.v[0].info_json, values[k])) {
			fprintf(stderr, "secret %s leaked into info_json\n",
				values[k]);
			check_failed++;
		}
	/* What is not secret stays. */
	CHECK(strstr(l.v[0].info_json, "\"gpu_name\": \"H100 SXM\"") != NULL);
	CHECK(strstr(l.v[0].info_json, "\"name\": \"pytorch\"") != NULL);
	CHECK(strstr(l.v[0].info_json, "\"platform\": \"vastai\"") != NULL);
	CHECK(strstr(l.v[0].info_json, "\"ssh_user\": \"root\"") != NULL);
	rgt_instance_list_free(&l);
}

/* ---- platform_load_key() and open() ------------------------------------ */

static void sec_init(struct rgt_section *s)
{
	static char kind[] = "vastai";

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->name = kind;
	s->ssh_user = "root";
}

static char *tmpfile_with(const char *content)
{
	char *path = strdup("/tmp/rgt-test-key-XXXXXX");
	int fd;

	REQUIRE(path);
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, content, strlen(content)) ==
		(ssize_t)strlen(content));
	close(fd);
	return path;
}

static void test_load_key(void)
{
	struct rgt_section s;
	char err[512], *k, *f;

	sec_init(&s);
	s.api_key_env = "RGT_TEST_VAST_KEY";
	setenv("RGT_TEST_VAST_KEY", "  k3y-abc123\n", 1);
	k = platform_load_key(&s, NULL, err, sizeof(err));
	CHECK(k && !strcmp(k, "k3y-abc123"));
	free(k);

	setenv("RGT_TEST_VAST_KEY", " \n\t", 1);
	CHECK(platform_load_key(&s, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "RGT_TEST_VAST_KEY is empty") != NULL);

	setenv("RGT_TEST_VAST_KEY", "k3y-abc\r\nX-Injected: 1", 1);
	CHECK(platform_load_key(&s, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "k3y") == NULL && strstr(err, "Injected") == NULL);

	unsetenv("RGT_TEST_VAST_KEY");
	CHECK(platform_load_key(&s, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "not set") != NULL);

	sec_init(&s);
	f = tmpfile_with("\n  filekey-777  \n\n");
	s.api_key_file = f;
	k = platform_load_key(&s, NULL, err, sizeof(err));
	CHECK(k && !strcmp(k, "filekey-777"));
	free(k);
	unlink(f);
	free(f);

	f = tmpfile_with("");
	s.api_key_file = f;
	CHECK(platform_load_key(&s, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "is empty") != NULL);
	unlink(f);
	free(f);

	f = tmpfile_with("secretpart1 secretpart2\n");
	s.api_key_file = f;
	CHECK(platform_load_key(&s, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "secretpart") == NULL);
	unlink(f);
	free(f);

	s.api_key_file = "/nonexistent/rgt/key";
	CHECK(platform_load_key(&s, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/rgt/key") != NULL);

	/* Vendor file, relative to $HOME. */
	sec_init(&s);
	setenv("HOME", "/nonexistent-home", 1);
	CHECK(platform_load_key(&s, "~/.config/vastai/vast_api_key", err,
				sizeof(err)) == NULL);
	CHECK(strstr(err, "no API key") != NULL);
	CHECK(platform_load_key(&s, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no API key") != NULL);
}

static int try_open(const char *url, const char *timeout, char *err,
		    size_t errlen)
{
	static char key[] = "api_timeout";
	struct rgt_kv kv = {key, (char *)timeout, 3};
	struct platform *p = NULL;
	struct rgt_section s;
	int rc;

	sec_init(&s);
	s.api_url = url;
	s.api_key_env = "RGT_TEST_VAST_KEY";
	if (timeout) {
		s.kv = &kv;
		s.nkv = 1;
	}
	rc = vastai_platform_ops.open(&s, &p, err, errlen);
	CHECK(rc == 0 ? p != NULL : p == NULL);
	if (p)
		vastai_platform_ops.close(p);
	vastai_platform_ops.close(NULL);
	return rc;
}

static void test_open(void)
{
	char err[512];

	setenv("RGT_TEST_VAST_KEY", "openkey-4242", 1);
	CHECK(try_open(NULL, NULL, err, sizeof(err)) == 0);
	CHECK(try_open("https://console.vast.ai", NULL, err, sizeof(err)) == 0);
	CHECK(try_open("https://console.vast.ai/", NULL, err, sizeof(err)) ==
	      0);
	CHECK(try_open("HTTPS://console.vast.ai:8443", NULL, err,
		       sizeof(err)) == 0);
	CHECK(try_open("http://127.0.0.1:8080", "0.5", err, sizeof(err)) == 0);
	CHECK(try_open("http://127.3.4.5", NULL, err, sizeof(err)) == 0);
	CHECK(try_open("http://localhost:9/", NULL, err, sizeof(err)) == 0);
	CHECK(try_open("http://[::1]:8080", NULL, err, sizeof(err)) == 0);

	CHECK(try_open("http://console.vast.ai", NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "api_url must be https") != NULL);
	CHECK(try_open("http://10.0.0.1:8080", NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(try_open("http://localhost.evil.com", NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(try_open("https://console.vast.ai/api/v0", NULL, err,
		       sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "scheme, a host and a port only") != NULL);
	CHECK(try_open("https://console.vast.ai?api_key=x", NULL, err,
		       sizeof(err)) == -EINVAL);
	CHECK(try_open("https://u:p@console.vast.ai", NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "u:p") == NULL);
	CHECK(try_open("ftp://console.vast.ai", NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(try_open("https://", NULL, err, sizeof(err)) == -EINVAL);
	CHECK(try_open("https://host:0", NULL, err, sizeof(err)) == -EINVAL);
	CHECK(try_open("https://host:65536", NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(try_open("https://host:80x", NULL, err, sizeof(err)) == -EINVAL);
	CHECK(try_open("https://::1:80", NULL, err, sizeof(err)) == -EINVAL);

	CHECK(try_open(NULL, "0", err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "api_timeout") != NULL);
	CHECK(try_open(NULL, "ten", err, sizeof(err)) == -EINVAL);
	CHECK(try_open(NULL, "601", err, sizeof(err)) == -EINVAL);
	CHECK(try_open(NULL, "20", err, sizeof(err)) == 0);

	unsetenv("RGT_TEST_VAST_KEY");
	CHECK(try_open(NULL, NULL, err, sizeof(err)) == -ENOKEY);
	CHECK(strstr(err, "RGT_TEST_VAST_KEY") != NULL);
	CHECK(strstr(err, "openkey") == NULL);
}

static int parse_page_fixture(const char *name, struct rgt_instance_list *l,
			      char **next, char *err, size_t errlen)
{
	size_t len;
	char *b = slurp(name, &len);
	int rc = vastai_parse_page(b, len, "root", l, next, err, errlen);

	free(b);
	return rc;
}

/* The paged v1 list: the cursor, the last page, and every way a page can
 * fail to say where the list goes on. */
static void test_v1_pages(void)
{
	struct rgt_instance_list l = {0};
	char err[512], *next = NULL;

	CHECK_ERR(parse_page_fixture("v1_page1.json", &l, &next, err,
				     sizeof(err)),
		  0);
	REQUIRE(l.n == 2);
	CHECK(l.complete);
	CHECK_STR(next, "eyJ2YWx1ZXMiOiB7ImlkIjogMTIzNDU2Nzl9fQ");
	CHECK_STR(l.v[0].id, "12345678");
	CHECK(l.v[0].state == RGT_ST_RUNNING);
	CHECK(l.v[0].n_ep == 2 && l.v[0].ep[0].port == 40122);
	CHECK_STR(l.v[0].ep[0].host, "203.0.113.44");
	CHECK(l.v[1].state == RGT_ST_STOPPED && l.v[1].n_ep == 1);
	CHECK(!strstr(l.v[0].info_json, "FAKESECRET"));
	free(next);
	next = NULL;
	rgt_instance_list_free(&l);

	/* the last page: next_token null; a malformed entry is skipped and
	 * the page is not complete */
	CHECK_ERR(parse_page_fixture("v1_last.json", &l, &next, err,
				     sizeof(err)),
		  0);
	CHECK(l.n == 1 && !l.complete && next == NULL);
	CHECK(strstr(err, "skipped 1"));
	CHECK(l.v[0].state == RGT_ST_PROVISIONING);
	rgt_instance_list_free(&l);

	/* no next_token key at all: the last (here empty) page */
	CHECK_ERR(parse_page_fixture("v1_no_token_key.json", &l, &next, err,
				     sizeof(err)),
		  0);
	CHECK(l.n == 0 && l.complete && next == NULL);
	rgt_instance_list_free(&l);

	CHECK_ERR(parse_page_fixture("v1_success_false.json", &l, &next, err,
				     sizeof(err)),
		  -EIO);
	CHECK(strstr(err, "Unknown endpoint"));
	CHECK(l.n == 0 && next == NULL);
	CHECK_ERR(parse_page_fixture("v1_token_number.json", &l, &next, err,
				     sizeof(err)),
		  -EBADMSG);
	CHECK(strstr(err, "next_token"));
	CHECK_ERR(parse_page_fixture("v1_token_space.json", &l, &next, err,
				     sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(parse_page_fixture("v1_object.json", &l, &next, err,
				     sizeof(err)),
		  -EBADMSG);
	CHECK(l.n == 0);
	CHECK_ERR(parse_page_fixture("v1_null.json", &l, &next, err,
				     sizeof(err)),
		  -EBADMSG);
	CHECK(strstr(err, "null"));
	CHECK_ERR(parse_page_fixture("truncated.json", &l, &next, err,
				     sizeof(err)),
		  -EBADMSG);
	CHECK(next == NULL && l.n == 0);
	/* a v0 reply (no success, no cursor) reads as one last page */
	CHECK_ERR(parse_page_fixture("list.json", &l, &next, err, sizeof(err)),
		  0);
	CHECK(l.n == 11 && !l.complete && next == NULL);
	rgt_instance_list_free(&l);
	/* a cursor longer than the cap */
	{
		size_t n = VASTAI_TOKEN_MAX + 64;
		char *b = malloc(n + 64);

		REQUIRE(b);
		strcpy(b, "{\"instances\": [], \"next_token\": \"");
		size_t o = strlen(b);
		memset(b + o, 'a', VASTAI_TOKEN_MAX + 1);
		strcpy(b + o + VASTAI_TOKEN_MAX + 1, "\"}");
		CHECK_ERR(vastai_parse_page(b, strlen(b), "root", &l, &next,
					    err, sizeof(err)),
			  -EBADMSG);
		CHECK(next == NULL);
		free(b);
	}
}

/* result_url: https anywhere, http only to loopback, nothing odd. */
static void test_result_url(void)
{
	char err[512], host[RGT_HOST_MAX];
	char *big;

	CHECK_ERR(vastai_result_url_check(
		      "https://s3.amazonaws.com/vast.ai/instance_logs/"
		      "0123abcd.log?X-Amz-Signature=deadbeef",
		      host, sizeof(host), err, sizeof(err)),
		  0);
	CHECK_STR(host, "s3.amazonaws.com");
	CHECK_ERR(vastai_result_url_check("HTTPS://bucket.s3.example:8443/x",
					  host, sizeof(host), err,
					  sizeof(err)),
		  0);
	CHECK_STR(host, "bucket.s3.example");
	CHECK_ERR(vastai_result_url_check("http://127.0.0.1:8080/_s3/a.log?s=1",
					  host, sizeof(host), err,
					  sizeof(err)),
		  0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_ERR(vastai_result_url_check("http://localhost/a", host,
					  sizeof(host), err, sizeof(err)),
		  0);
	CHECK_ERR(vastai_result_url_check("http://[::1]:9/a", host,
					  sizeof(host), err, sizeof(err)),
		  0);
	CHECK_STR(host, "::1");
	CHECK_ERR(vastai_result_url_check("http://127.9.8.7/a", host,
					  sizeof(host), err, sizeof(err)),
		  0);

	/* plain http elsewhere: refused, and the message names only the host */
	CHECK_ERR(vastai_result_url_check(
		      "http://s3.amazonaws.com/vast.ai/obj.log?X-Amz-Signature="
		      "SIGSIGSIG",
		      host, sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "http://") && strstr(err, "s3.amazonaws.com"));
	CHECK(!strstr(err, "SIGSIGSIG") && !strstr(err, "obj.log"));
	CHECK(host[0] == '\0');
	CHECK_ERR(vastai_result_url_check("http://localhost.evil.com/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("http://10.0.0.1/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("http://[::2]/a", host, sizeof(host),
					  err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("ftp://s3.amazonaws.com/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("file:///etc/passwd", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("/instance_logs/a.log", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("", host, sizeof(host), err,
					  sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check(NULL, host, sizeof(host), err,
					  sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://", host, sizeof(host), err,
					  sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https:///path", host, sizeof(host),
					  err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://u:pw@s3.example/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK(!strstr(err, "pw"));
	CHECK_ERR(vastai_result_url_check("https://s3.example/a b", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://s3.example/a\r\nX: y", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://s3.\xc3\xa9xample/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://s3.example:0/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://s3.example:65536/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://s3.example:/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://s3.example:44x/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://[::1/a", host, sizeof(host),
					  err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://[::1]x/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://[s3.example]/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_result_url_check("https://s3!example/a", host,
					  sizeof(host), err, sizeof(err)),
		  -EINVAL);
	big = malloc(VASTAI_URL_MAX + 64);
	REQUIRE(big);
	strcpy(big, "https://s3.example/");
	memset(big + strlen(big), 'a', VASTAI_URL_MAX);
	big[VASTAI_URL_MAX + 1] = '\0';
	CHECK_ERR(vastai_result_url_check(big, host, sizeof(host), err,
					  sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "longer"));
	free(big);
}

static int log_reply(const char *body, char **url, char *host, char *err,
		     size_t errlen)
{
	return vastai_parse_log_reply(body, body ? strlen(body) : 0, url,
				      host, RGT_HOST_MAX, err, errlen);
}

/* The reply to PUT request_logs/{id}/, as the public API answers it. */
static void test_log_reply(void)
{
	char err[512], host[RGT_HOST_MAX];
	char *url = NULL;

	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": "
			    "\"https://s3.amazonaws.com/vast.ai/instance_logs/"
			    "ab12.log\", \"msg\": \"Logs will be uploaded "
			    "shortly\"}",
			    &url, host, err, sizeof(err)),
		  0);
	CHECK_STR(url, "https://s3.amazonaws.com/vast.ai/instance_logs/"
		       "ab12.log");
	CHECK_STR(host, "s3.amazonaws.com");
	CHECK(err[0] == '\0');
	free(url);
	url = NULL;

	/* success false: the vendor's message, one line */
	CHECK_ERR(log_reply("{\"success\": false, \"error\": \"not_running\", "
			    "\"msg\": \"Instance is not\\nrunning\"}",
			    &url, host, err, sizeof(err)),
		  -EIO);
	CHECK(url == NULL);
	CHECK(strstr(err, "refused the log request") &&
	      strstr(err, "Instance is not"));
	CHECK(!strchr(err, '\n'));
	CHECK_ERR(log_reply("{\"success\": false}", &url, host, err,
			    sizeof(err)),
		  -EIO);
	CHECK(strstr(err, "(no message)"));
	/* success false with a result_url all the same: still refused, and
	 * the message does not carry the URL's signature */
	CHECK_ERR(log_reply("{\"success\": false, \"result_url\": "
			    "\"https://s3.example/x.log?X-Amz-Signature=SIG1234"
			    "\", \"msg\": \"see https://s3.example/x.log?"
			    "X-Amz-Signature=SIG1234\"}",
			    &url, host, err, sizeof(err)),
		  -EIO);
	CHECK(url == NULL && !strstr(err, "SIG1234"));
	/* no success at all, or not a boolean true */
	CHECK_ERR(log_reply("{\"result_url\": \"https://s3.example/x.log\"}",
			    &url, host, err, sizeof(err)),
		  -EBADMSG);
	CHECK(strstr(err, "success"));
	CHECK_ERR(log_reply("{\"success\": \"true\", \"result_url\": "
			    "\"https://s3.example/x.log\"}",
			    &url, host, err, sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(log_reply("{\"success\": 1, \"result_url\": "
			    "\"https://s3.example/x.log\"}",
			    &url, host, err, sizeof(err)),
		  -EBADMSG);
	/* result_url missing, not a string, empty, with a NUL */
	CHECK_ERR(log_reply("{\"success\": true, \"msg\": \"queued\"}", &url,
			    host, err, sizeof(err)),
		  -EBADMSG);
	CHECK(strstr(err, "result_url") && strstr(err, "queued"));
	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": null}", &url,
			    host, err, sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": 42}", &url,
			    host, err, sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": [\"https://"
			    "s3.example/x\"]}",
			    &url, host, err, sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": \"\"}", &url,
			    host, err, sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": "
			    "\"https://s3.example/x\\u0000.log\"}",
			    &url, host, err, sizeof(err)),
		  -EBADMSG);
	/* a result_url the rule refuses: plain http off loopback */
	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": "
			    "\"http://s3.amazonaws.com/x.log?X-Amz-Signature="
			    "SIG9876\"}",
			    &url, host, err, sizeof(err)),
		  -EINVAL);
	CHECK(url == NULL && !strstr(err, "SIG9876") && !strstr(err, "x.log"));
	/* not JSON, not an object, nothing */
	CHECK_ERR(log_reply("<html>502</html>", &url, host, err, sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(log_reply("{\"success\": true, \"result_url\": \"https://s3",
			    &url, host, err, sizeof(err)),
		  -EBADMSG);
	CHECK(!strstr(err, "s3"));
	CHECK_ERR(log_reply("[true]", &url, host, err, sizeof(err)), -EBADMSG);
	CHECK_ERR(log_reply("", &url, host, err, sizeof(err)), -EBADMSG);
	CHECK_ERR(log_reply(NULL, &url, host, err, sizeof(err)), -EBADMSG);
	CHECK(url == NULL);
	CHECK_ERR(vastai_parse_log_reply("{}", VASTAI_MAX_BODY + 1, &url, host,
					 sizeof(host), err, sizeof(err)),
		  -EFBIG);
}

/* The object's bytes as they are, or the newest whole lines that fit. */
static void test_log_text(void)
{
	struct buf b;
	char *big;
	size_t n;

	buf_init(&b, 64);
	CHECK_ERR(vastai_log_text("one\ntwo\n", 8, &b), 0);
	CHECK_STR(b.data, "one\ntwo\n");
	buf_reset(&b);
	/* no final newline: the object ended there, kept whole */
	CHECK_ERR(vastai_log_text("one\ntwo", 7, &b), 0);
	CHECK_STR(b.data, "one\ntwo");
	buf_reset(&b);
	CHECK_ERR(vastai_log_text("", 0, &b), 0);
	CHECK(b.len == 0);
	CHECK_ERR(vastai_log_text(NULL, 5, &b), 0);
	CHECK(b.len == 0);
	buf_cleanup(&b);

	/* more than the room: the newest whole lines */
	buf_init(&b, 10);
	CHECK_ERR(vastai_log_text("aaaa\nbbbb\ncccc\n", 15, &b), 0);
	CHECK_STR(b.data, "bbbb\ncccc\n");
	buf_reset(&b);
	CHECK_ERR(vastai_log_text("aaaa\nbbbbb\ncccc\n", 16, &b), 0);
	CHECK_STR(b.data, "cccc\n");
	buf_reset(&b);
	/* one line longer than the room: nothing, not half a line */
	CHECK_ERR(vastai_log_text("0123456789abcdef\n", 17, &b), 0);
	CHECK(b.len == 0);
	buf_cleanup(&b);
	/* the room is what is left in @out */
	buf_init(&b, 11);
	CHECK(buf_append(&b, "head\n", 5) == 0);
	CHECK_ERR(vastai_log_text("aaaa\nbb\ncc\n", 11, &b), 0);
	CHECK_STR(b.data, "head\nbb\ncc\n");
	buf_cleanup(&b);

	/* and never more than VASTAI_LOG_MAX, whatever the room */
	n = (VASTAI_LOG_MAX / 10 + 10) * 10;
	big = malloc(n);
	REQUIRE(big);
	for (size_t i = 0; i < n; i++)
		big[i] = i % 10 == 9 ? '\n' : 'x';
	buf_init(&b, VASTAI_LOG_BODY_MAX);
	CHECK_ERR(vastai_log_text(big, n, &b), 0);
	CHECK(b.len <= VASTAI_LOG_MAX && b.len > VASTAI_LOG_MAX - 10);
	CHECK(b.len % 10 == 0 && b.data[b.len - 1] == '\n');
	CHECK(!memcmp(b.data, big + n - b.len, b.len));
	buf_cleanup(&b);
	free(big);
}

/* The adapter says it has a log API, and has log(). */
static void test_log_caps(void)
{
	struct platform *p = NULL;
	struct platform_caps c;
	struct rgt_section s;
	char err[256];

	sec_init(&s);
	s.api_key_env = "RGT_TEST_VAST_KEY";
	setenv("RGT_TEST_VAST_KEY", "capskey-4242", 1);
	REQUIRE(vastai_platform_ops.open(&s, &p, err, sizeof(err)) == 0);
	vastai_platform_ops.caps(p, &c);
	CHECK(c.log_api);
	CHECK(c.n_destroy == 1 && c.confirm_by_list);
	CHECK(vastai_platform_ops.log != NULL);
	/* an id that is not a vast.ai id is refused before any request */
	CHECK_ERR(vastai_platform_ops.log(p, "../x", NULL, err, sizeof(err)),
		  -EINVAL);
	CHECK_ERR(vastai_platform_ops.log(p, "abc", NULL, err, sizeof(err)),
		  -EINVAL);
	vastai_platform_ops.close(p);
	unsetenv("RGT_TEST_VAST_KEY");
}

/* The facts of the one instance in @obj, a vast.ai instance object. */
static struct rgt_facts facts_of(const char *obj)
{
	struct rgt_instance_list l;
	struct rgt_facts f;
	char err[512], *b;

	REQUIRE(asprintf(&b, "{\"instances\":%s}", obj) > 0);
	REQUIRE(vastai_parse_instances(b, strlen(b), NULL, &l, err,
				       sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	f = l.v[0].facts;
	rgt_instance_list_free(&l);
	free(b);
	return f;
}

static bool unknown_facts(const struct rgt_facts *f)
{
	return !f->gpu[0] && f->gpu_count == -1 && f->usd_per_hour < 0 &&
	       f->started == 0;
}

/* Valid UTF-8 with no byte below 0x20 and no DEL. */
static bool clean_utf8(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		size_t len = *u < 0x80		 ? 1
			     : (*u & 0xe0) == 0xc0 ? 2
			     : (*u & 0xf0) == 0xe0 ? 3
			     : (*u & 0xf8) == 0xf0 ? 4
						   : 0;

		if (!len || *u < 0x20 || *u == 0x7f)
			return false;
		for (size_t i = 1; i < len; i++)
			if ((u[i] & 0xc0) != 0x80)
				return false;
		u += len;
	}
	return true;
}

/* A literal, every byte of it (NULs included). */
#define SET_GPU(f, lit) rgt_facts_set_gpu((f), (lit), sizeof(lit) - 1)

static void test_facts_gpu_name(void)
{
	struct rgt_facts f;
	char big[300];

	rgt_facts_init(&f);
	CHECK(unknown_facts(&f));

	SET_GPU(&f, "RTX 4090");
	CHECK_STR(f.gpu, "RTX 4090");
	/* control characters become one space; blanks trimmed */
	SET_GPU(&f, " \tRTX\n\x1b[0m  4090\r\n");
	CHECK_STR(f.gpu, "RTX [0m 4090");
	/* C1 (U+0085), the line separator and a bidi override */
	SET_GPU(&f, "A\xc2\x85" "B\xe2\x80\xa8" "C\xe2\x80\xae" "D");
	CHECK_STR(f.gpu, "A B C D");
	/* bytes that are not UTF-8 (a stray continuation, an overlong
	 * '/', a surrogate, a cut sequence) are dropped */
	SET_GPU(&f, "H\x80" "1\xc0\xaf" "0\xed\xa0\x80" "0\xe2\x82");
	CHECK_STR(f.gpu, "H100");
	/* an embedded NUL is a control character, not the end */
	SET_GPU(&f, "A100\0SXM");
	CHECK_STR(f.gpu, "A100 SXM");
	SET_GPU(&f, "\n\t ");
	CHECK_STR(f.gpu, "");
	rgt_facts_set_gpu(&f, NULL, 5);
	CHECK_STR(f.gpu, "");

	/* too long: cut to RGT_GPU_MAX - 1 bytes on a character boundary */
	memset(big, 'x', sizeof(big));
	rgt_facts_set_gpu(&f, big, sizeof(big));
	CHECK(strlen(f.gpu) == RGT_GPU_MAX - 1);
	for (size_t i = 0; i + 2 <= sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);	/* é */
	rgt_facts_set_gpu(&f, big, sizeof(big));
	CHECK(strlen(f.gpu) == RGT_GPU_MAX - 2);	/* 62: 31 whole é */
	CHECK(clean_utf8(f.gpu));
	for (size_t i = 0; i + 4 <= sizeof(big); i += 4)
		memcpy(big + i, "\xf0\x9f\x94\xa5", 4);	/* U+1F525 */
	/* starting in the middle of a character */
	rgt_facts_set_gpu(&f, big + 1, sizeof(big) - 1);
	CHECK(strlen(f.gpu) == 60);
	CHECK(clean_utf8(f.gpu));
}

static void test_facts(void)
{
	struct rgt_instance_list l;
	const struct rgt_instance *i;
	struct rgt_facts f;
	char err[512], obj[512], *j, *p;

	REQUIRE(parse_fixture("list.json", &l, err, sizeof(err)) == 0);
	i = find(&l, "12345678");
	REQUIRE(i);
	CHECK_STR(i->facts.gpu, "RTX 4090");
	CHECK(i->facts.gpu_count == 1);
	CHECK(i->facts.usd_per_hour == 0.3866);
	CHECK(i->facts.started == 1753860000);	/* float epoch, cut */
	/* loading: the name is said, the rest is not */
	i = find(&l, "20000001");
	REQUIRE(i);
	CHECK_STR(i->facts.gpu, "RTX 3090");
	CHECK(i->facts.gpu_count == -1 && i->facts.usd_per_hour < 0 &&
	      i->facts.started == 0);
	/* outbid and stopped: dph_total "0.12" is not what it bills now */
	i = find(&l, "20000004");
	REQUIRE(i);
	CHECK(i->facts.usd_per_hour < 0);
	/* every instance built has its facts initialised */
	i = find(&l, "20000002");
	REQUIRE(i);
	CHECK(unknown_facts(&i->facts));
	rgt_instance_list_free(&l);

	/* the show reply, a single object */
	REQUIRE(parse_fixture("show.json", &l, err, sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	CHECK_STR(l.v[0].facts.gpu, "RTX 4090");
	CHECK(l.v[0].facts.gpu_count == 1);
	CHECK(l.v[0].facts.usd_per_hour == 0.3866);
	CHECK(l.v[0].facts.started == 1753860000);
	rgt_instance_list_free(&l);

	f = facts_of("{\"id\":1}");
	CHECK(unknown_facts(&f));

	/* a price as a string is read strictly, the whole of it */
#define RUN "{\"id\":1,\"actual_status\":\"running\",\"dph_total\":"
	f = facts_of(RUN "\"0.25\"}");
	CHECK(f.usd_per_hour == 0.25);
	f = facts_of(RUN "\"1e-1\"}");
	CHECK(f.usd_per_hour == 0.1);
	f = facts_of(RUN "0}");
	CHECK(f.usd_per_hour == 0);	/* vast.ai said 0 */
	f = facts_of(RUN "2}");
	CHECK(f.usd_per_hour == 2);
	static const char *const bad_rates[] = {
	    "\" 0.25\"", "\"0.25 \"", "\"0.25abc\"", "\"\"", "\"0x1p-2\"",
	    "\"nan\"", "\"inf\"", "\"-0.1\"", "-0.1", "\"1e999\"", "\".\"",
	    "\"$0.25\"", "true", "null", "[0.25]", "{\"usd\":0.25}", "-1e-300",
	};
	for (size_t k = 0; k < sizeof(bad_rates) / sizeof(bad_rates[0]); k++) {
		snprintf(obj, sizeof(obj), RUN "%s}", bad_rates[k]);
		f = facts_of(obj);
		if (f.usd_per_hour >= 0)
			fprintf(stderr, "rate %s read as %g\n", bad_rates[k],
				f.usd_per_hour);
		CHECK(f.usd_per_hour < 0);
	}
	/* frozen keeps billing the GPU; stopped, exited, loading do not */
	f = facts_of("{\"id\":1,\"actual_status\":\"frozen\","
		     "\"dph_total\":0.5}");
	CHECK(f.usd_per_hour == 0.5);
	f = facts_of("{\"id\":1,\"actual_status\":\"exited\","
		     "\"dph_total\":0.5}");
	CHECK(f.usd_per_hour < 0);
	f = facts_of("{\"id\":1,\"dph_total\":0.5}");
	CHECK(f.usd_per_hour < 0);

	/* wrong types and values out of range stay unknown */
	f = facts_of("{\"id\":1,\"gpu_name\":4090,\"num_gpus\":\"2\","
		     "\"start_date\":\"1753860000\"}");
	CHECK(unknown_facts(&f));
	f = facts_of("{\"id\":1,\"gpu_name\":null,\"num_gpus\":2.0,"
		     "\"start_date\":-5}");
	CHECK(unknown_facts(&f));
	f = facts_of("{\"id\":1,\"num_gpus\":-1,\"start_date\":1e300}");
	CHECK(unknown_facts(&f));
	f = facts_of("{\"id\":1,\"num_gpus\":4294967297,"
		     "\"start_date\":0.5}");
	CHECK(unknown_facts(&f));
	f = facts_of("{\"id\":1,\"num_gpus\":0,\"start_date\":1753860000}");
	CHECK(f.gpu_count == 0 && f.started == 1753860000);
	f = facts_of("{\"id\":1,\"gpu_name\":\"\\u0007 \\t\"}");
	CHECK_STR(f.gpu, "");

	/* a hostile name: escapes and a long multi-byte tail */
	j = malloc(4096);
	REQUIRE(j);
	p = j + sprintf(j, "{\"id\":1,\"gpu_name\":\"RTX\\t4090\\n\\u001b");
	for (int k = 0; k < 200; k++)
		p += sprintf(p, "\xe4\xb8\xad");	/* 中, 3 bytes */
	sprintf(p, "\"}");
	f = facts_of(j);
	CHECK(!strncmp(f.gpu, "RTX 4090 \xe4\xb8\xad", 12));
	CHECK(strlen(f.gpu) == 9 + 18 * 3);	/* 63 bytes, whole chars */
	CHECK(clean_utf8(f.gpu));
	free(j);
#undef RUN
}

int main(void)
{
	find_fixtures();
	test_facts_gpu_name();
	test_facts();
	test_state_names();
	test_registry();
	test_id_valid();
	test_map_state();
	test_list();
	test_show();
	test_bad_replies();
	test_complete();
	test_edge_entries();
	test_secrets();
	test_load_key();
	test_open();
	test_v1_pages();
	test_result_url();
	test_log_reply();
	test_log_text();
	test_log_caps();
	return CHECK_DONE();
}
