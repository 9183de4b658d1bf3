/*
 * test_runpod.c - the RunPod adapter's pure parts (state mapping, v2 reply
 * parsing, endpoints, secret scrubbing) and its open() validation, against
 * the canned replies in tests/fixtures/platforms/runpod/. No network:
 * list()/destroy() are left to the integration tests (fake_runpod.py).
 */
#include "config.h"
#include "platform.h"
#include "runpod.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

	snprintf(path, sizeof(path), "%s/platforms/runpod/%s", fixture_dir,
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

static int parse(const char *name, struct rgt_instance_list *l, char *err,
		 size_t errlen)
{
	size_t len;
	char *b = slurp(name, &len);
	int rc = runpod_parse_pods(b, len, "root", l, err, errlen);

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

static void test_registry(void)
{
	struct platform_caps c;

	CHECK(platform_find("runpod") == &runpod_platform_ops);
	CHECK(platform_find("vastai") != NULL);
	runpod_platform_ops.caps(NULL, &c);
	CHECK(c.n_destroy == 1);
	CHECK_STR(c.destroy[0].name, "terminate");
	CHECK(c.confirm_by_list);
	CHECK(c.log_api);
	CHECK(runpod_platform_ops.log != NULL);
}

static void test_map_state(void)
{
	static const struct {
		const char *json;
		enum rgt_state want;
	} t[] = {
	    {"{\"status\":\"PROVISIONING\"}", RGT_ST_PROVISIONING},
	    {"{\"status\":\"STARTING\"}", RGT_ST_PROVISIONING},
	    {"{\"status\":\"RUNNING\"}", RGT_ST_RUNNING},
	    {"{\"status\":\"EXITED\"}", RGT_ST_STOPPED},
	    {"{\"status\":\"EXITED\",\"interruptible\":false}", RGT_ST_STOPPED},
	    {"{\"status\":\"EXITED\",\"interruptible\":true}",
	     RGT_ST_PREEMPTED},
	    {"{\"status\":\"ERROR\"}", RGT_ST_OFFLINE},
	    {"{\"status\":\"TERMINATED\"}", RGT_ST_GONE},
	    {"{\"status\":\"MIGRATING\"}", RGT_ST_UNKNOWN},
	    {"{\"status\":null}", RGT_ST_UNKNOWN},
	    {"{\"status\":3}", RGT_ST_UNKNOWN},
	    {"{}", RGT_ST_UNKNOWN},
	    {"[]", RGT_ST_UNKNOWN},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		json_t *j = json_loads(t[i].json, 0, NULL);

		REQUIRE(j);
		if (runpod_map_state(j) != t[i].want) {
			fprintf(stderr, "map_state(%s) = %d, want %d\n",
				t[i].json, runpod_map_state(j), t[i].want);
			check_failed++;
		} else {
			check_passed++;
		}
		json_decref(j);
	}
	CHECK(runpod_map_state(NULL) == RGT_ST_UNKNOWN);
}

static void test_list(void)
{
	struct rgt_instance_list l;
	const struct rgt_instance *r;
	char err[512];

	CHECK(parse("list.json", &l, err, sizeof(err)) == 0);
	CHECK_STR(err, "");
	CHECK(l.complete);
	CHECK(l.n == 7); /* TERMINATED left out */
	CHECK(find(&l, "f6g7h8i9j0k1l2") == NULL);
	for (size_t i = 1; i < l.n; i++)
		CHECK(strcmp(l.v[i - 1].id, l.v[i].id) < 0);

	r = find(&l, "x7k2m9p4q1abcd");
	REQUIRE(r);
	CHECK(r->state == RGT_ST_RUNNING);
	CHECK(r->n_ep == 1); /* the direct one only: the proxy has no SFTP */
	CHECK_STR(r->ep[0].host, "203.0.113.17");
	CHECK(r->ep[0].port == 10341);
	CHECK_STR(r->ep[0].user, ""); /* the section's login */
	CHECK_STR(r->status_msg, "RUNNING");
	CHECK(strstr(r->info_json, "\"platform\": \"runpod\"") != NULL);
	CHECK(strstr(r->info_json, "\"kind\": \"direct\"") != NULL);

	r = find(&l, "g7h8i9j0k1l2m3"); /* running, proxy only */
	REQUIRE(r);
	CHECK(r->state == RGT_ST_RUNNING);
	CHECK(r->n_ep == 1);
	CHECK_STR(r->ep[0].host, "ssh.runpod.io");
	CHECK(r->ep[0].port == 22);
	CHECK_STR(r->ep[0].user, "g7h8i9j0k1l2m3-64410f7a");
	CHECK(strstr(r->status_msg, "no SFTP") != NULL);
	CHECK(strstr(r->info_json, "\"kind\": \"proxy\"") != NULL);

	r = find(&l, "a1b2c3d4e5f6g7");
	REQUIRE(r);
	CHECK(r->state == RGT_ST_PROVISIONING);
	CHECK(r->n_ep == 0);
	r = find(&l, "b2c3d4e5f6g7h8");
	CHECK(r && r->state == RGT_ST_PROVISIONING);
	r = find(&l, "c3d4e5f6g7h8i9");
	CHECK(r && r->state == RGT_ST_STOPPED);
	r = find(&l, "d4e5f6g7h8i9j0");
	CHECK(r && r->state == RGT_ST_PREEMPTED);
	CHECK(r && strstr(r->status_msg, "interruptible") != NULL);
	r = find(&l, "e5f6g7h8i9j0k1");
	CHECK(r && r->state == RGT_ST_OFFLINE);
	rgt_instance_list_free(&l);
}

static void test_paginated(void)
{
	struct rgt_instance_list l;
	char err[512];

	/* v2 documents no paging: an unknown cursor does not make the one
	 * answer partial, and no second request is implied. */
	CHECK(parse("paginated.json", &l, err, sizeof(err)) == 0);
	CHECK(l.complete);
	CHECK(l.n == 2);
	CHECK(find(&l, "p1aaaaaaaaaaaa") && find(&l, "p2bbbbbbbbbbbb"));
	rgt_instance_list_free(&l);

	CHECK(parse("empty.json", &l, err, sizeof(err)) == 0);
	CHECK(l.complete && l.n == 0);
	rgt_instance_list_free(&l);
	CHECK(parse("all_terminated.json", &l, err, sizeof(err)) == 0);
	CHECK(l.complete && l.n == 0);
	rgt_instance_list_free(&l);
}

static void test_errors(void)
{
	struct rgt_instance_list l;
	char err[512];

	CHECK(parse("problem.json", &l, err, sizeof(err)) == -EIO);
	CHECK(strstr(err, "API key is invalid or expired") != NULL);
	CHECK(l.n == 0 && !l.complete);
	CHECK(parse("errors.json", &l, err, sizeof(err)) == -EIO);
	CHECK(strstr(err, "Something went wrong") != NULL);
	CHECK(parse("null.json", &l, err, sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "null") != NULL);
	CHECK(l.n == 0 && !l.complete);
	CHECK(parse("no_pods.json", &l, err, sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "no \"pods\"") != NULL);
	CHECK(parse("v1_array.json", &l, err, sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "v1") != NULL);
	CHECK(parse("truncated.json", &l, err, sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "truncated") != NULL);
	CHECK(parse("html.json", &l, err, sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "HTML") != NULL);
	CHECK(runpod_parse_pods("", 0, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(strstr(err, "empty") != NULL);
	CHECK(runpod_parse_pods(NULL, 0, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(runpod_parse_pods("{\"pods\":[]}", RUNPOD_MAX_BODY + 1, NULL, &l,
				err, sizeof(err)) == -EFBIG);
	CHECK(runpod_parse_pods("{\"pods\":{}}", 11, NULL, &l, err,
				sizeof(err)) == -EBADMSG);
	CHECK(runpod_parse_pods("\"x\"", 3, NULL, &l, err, sizeof(err)) ==
	      -EBADMSG);
}

static void test_malformed(void)
{
	struct rgt_instance_list l;
	char err[512];

	CHECK(parse("malformed.json", &l, err, sizeof(err)) == 0);
	CHECK(!l.complete); /* nothing may be called gone from this */
	CHECK(l.n == 1);
	CHECK(l.n && !strcmp(l.v[0].id, "x7k2m9p4q1abcd") &&
	      l.v[0].state == RGT_ST_RUNNING); /* the first of a repeat */
	CHECK(strstr(err, "skipped 5 malformed") != NULL);
	rgt_instance_list_free(&l);

	CHECK(parse("all_malformed.json", &l, err, sizeof(err)) == -EBADMSG);
	CHECK(l.n == 0 && !l.complete);
	CHECK(strstr(err, "none of the 2") != NULL);
}

static void test_secrets(void)
{
	struct rgt_instance_list l;
	char err[512];

	CHECK(parse("secrets.json", &l, err, sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	CHECK(strstr(l.v[0].info_json, "FAKESECRET") == NULL);
	CHECK(strstr(l.v[0].info_json, "\"env\"") == NULL);
	CHECK(strstr(l.v[0].info_json, "\"args\"") == NULL);
	CHECK(strstr(l.v[0].info_json, "\"readme\": \"ok\"") != NULL);
	CHECK(strstr(l.v[0].info_json, "\"dataCenterId\": \"EU-RO-1\"") !=
	      NULL);
	CHECK(strstr(l.v[0].status_msg, "FAKESECRET") == NULL);
	rgt_instance_list_free(&l);

	CHECK(parse("list.json", &l, err, sizeof(err)) == 0);
	for (size_t i = 0; i < l.n; i++)
		CHECK(strstr(l.v[i].info_json, "FAKESECRET") == NULL);
	rgt_instance_list_free(&l);
}

static int try_open(const char *url, char *err, size_t errlen)
{
	static char kind[] = "runpod";
	struct platform *p = NULL;
	struct rgt_section s;
	int rc;

	memset(&s, 0, sizeof(s));
	s.kind = s.name = kind;
	s.ssh_user = "root";
	s.api_url = url;
	s.api_key_env = "RGT_TEST_RUNPOD_KEY";
	rc = runpod_platform_ops.open(&s, &p, err, errlen);
	CHECK(rc == 0 ? p != NULL : p == NULL);
	if (p)
		runpod_platform_ops.close(p);
	return rc;
}

static void test_open(void)
{
	char err[512];

	setenv("RGT_TEST_RUNPOD_KEY", "rpa_openkey4242", 1);
	CHECK(try_open(NULL, err, sizeof(err)) == 0);
	CHECK(try_open("https://api.runpod.io", err, sizeof(err)) == 0);
	CHECK(try_open("http://127.0.0.1:8080", err, sizeof(err)) == 0);
	CHECK(try_open("http://api.runpod.io", err, sizeof(err)) == -EINVAL);
	CHECK(try_open("https://api.runpod.io/v2", err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "path itself") != NULL);
	CHECK(try_open("https://u:p@api.runpod.io", err, sizeof(err)) ==
	      -EINVAL);
	unsetenv("RGT_TEST_RUNPOD_KEY");
	CHECK(try_open(NULL, err, sizeof(err)) == -ENOKEY);
	CHECK(strstr(err, "RGT_TEST_RUNPOD_KEY") != NULL);
	CHECK(strstr(err, "openkey") == NULL);
}

static void test_parse_logs(void)
{
	static const char sse[] =
	    ": keep-alive\r\n"
	    "id: 1\r\n"
	    "event: log\r\n"
	    "data: {\"ts\":\"2026-12-01T10:00:00Z\",\"source\":\"container\","
	    "\"line\":\"step 1 loss 2.5\"}\r\n"
	    "\r\n"
	    "id: 2\n"
	    "data: {\"ts\":\"2026-12-01T10:00:01Z\",\"source\":\"system\","
	    "\"line\":\"forged\\n2026 container root\\u001b[2J\"}\n"
	    "\n"
	    "id: 3\n"
	    "data: {\"ts\":\"t3\",\"source\":\"container\",\"line\":\"last\"}\n";
	struct buf out;
	char err[256];

	buf_init(&out, 1 << 20);
	CHECK(runpod_parse_logs(sse, sizeof(sse) - 1, &out, err,
				sizeof(err)) == 0);
	CHECK_STR(out.data,
		  "2026-12-01T10:00:00Z container step 1 loss 2.5\n"
		  "2026-12-01T10:00:01Z system forged\\n2026 container "
		  "root\\x1b[2J\n"
		  "t3 container last\n");
	buf_cleanup(&out);

	/* nothing yet: an empty log */
	buf_init(&out, 1 << 20);
	CHECK(runpod_parse_logs(": ping\n\n", 8, &out, err, sizeof(err)) == 0);
	CHECK(out.len == 0);
	CHECK(runpod_parse_logs("", 0, &out, err, sizeof(err)) == 0);
	CHECK(out.len == 0);

	/* not an event stream */
	CHECK(runpod_parse_logs("{\"pods\": []}", 12, &out, err,
				sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "not an event stream") != NULL);
	CHECK(runpod_parse_logs("data: not json\n\n", 16, &out, err,
				sizeof(err)) == -EBADMSG);
	CHECK(out.len == 0);

	/* the newest whole lines that fit */
	buf_cleanup(&out);
	buf_init(&out, 30);
	{
		const char two[] =
		    "data: {\"ts\":\"1\",\"source\":\"c\",\"line\":\"aaaaaaaaaaaaaaaaaaaaaaaaa\"}\n\n"
		    "data: {\"ts\":\"2\",\"source\":\"c\",\"line\":\"bbbb\"}\n\n";
		CHECK(runpod_parse_logs(two, sizeof(two) - 1, &out, err,
					sizeof(err)) == 0);
		CHECK_STR(out.data, "2 c bbbb\n");
	}
	buf_cleanup(&out);
}

/* The facts of the one pod @fields describes (after its id and status). */
static struct rgt_facts pod_facts(const char *status, const char *fields)
{
	struct rgt_instance_list l;
	struct rgt_facts f;
	char err[512], b[2048];

	snprintf(b, sizeof(b),
		 "{\"pods\":[{\"id\":\"p1\",\"status\":\"%s\"%s%s}]}",
		 status, fields[0] ? "," : "", fields);
	REQUIRE(runpod_parse_pods(b, strlen(b), NULL, &l, err, sizeof(err)) ==
		0);
	REQUIRE(l.n == 1);
	f = l.v[0].facts;
	rgt_instance_list_free(&l);
	return f;
}

static int64_t started(const char *t)
{
	char fields[256];

	snprintf(fields, sizeof(fields), "\"startedAt\":%s", t);
	return pod_facts("RUNNING", fields).started;
}

static void test_facts(void)
{
	struct rgt_instance_list l;
	const struct rgt_instance *i;
	struct rgt_facts f;
	char err[512];

	REQUIRE(parse("list.json", &l, err, sizeof(err)) == 0);
	i = find(&l, "x7k2m9p4q1abcd");
	REQUIRE(i);
	CHECK_STR(i->facts.gpu, "NVIDIA GeForce RTX 4090");
	CHECK(i->facts.gpu_count == 1);
	CHECK(i->facts.usd_per_hour == 0.69);
	CHECK(i->facts.started == 1796030042);	/* 2026-11-30T09:14:02Z */
	/* EXITED: RunPod itself says cost 0.0 */
	i = find(&l, "c3d4e5f6g7h8i9");
	REQUIRE(i);
	CHECK(i->facts.usd_per_hour == 0);
	CHECK(i->facts.gpu_count == 1);
	rgt_instance_list_free(&l);

	/* nothing said: nothing known, not "0 GPUs at $0/h" */
	f = pod_facts("RUNNING", "");
	CHECK(!f.gpu[0] && f.gpu_count == -1 && f.usd_per_hour < 0 &&
	      f.started == 0);
	/* a display name wins over the type id */
	f = pod_facts("RUNNING", "\"gpu\":{\"id\":\"NVIDIA A100 80GB PCIe\","
			      "\"displayName\":\"A100 PCIe\",\"count\":2}");
	CHECK_STR(f.gpu, "A100 PCIe");
	CHECK(f.gpu_count == 2);
	/* wrong types stay unknown; RunPod's cost is never a string */
	f = pod_facts("RUNNING", "\"gpu\":{\"id\":7,\"count\":\"1\"},"
			      "\"cost\":\"0.69\",\"startedAt\":1796030042");
	CHECK(!f.gpu[0] && f.gpu_count == -1 && f.usd_per_hour < 0 &&
	      f.started == 0);
	f = pod_facts("RUNNING", "\"gpu\":\"RTX 4090\",\"cost\":-0.69");
	CHECK(!f.gpu[0] && f.gpu_count == -1 && f.usd_per_hour < 0);
	f = pod_facts("RUNNING", "\"gpu\":{\"count\":1.5},\"cost\":null");
	CHECK(f.gpu_count == -1 && f.usd_per_hour < 0);
	f = pod_facts("EXITED", "\"gpu\":{\"count\":0},\"cost\":0");
	CHECK(f.gpu_count == 0 && f.usd_per_hour == 0);
	/* a name longer than the field is cut, safely */
	f = pod_facts("RUNNING",
		      "\"gpu\":{\"id\":\"NVIDIA GeForce RTX 4090 with a name "
		      "that goes on and on far past sixty-three bytes\"}");
	CHECK(strlen(f.gpu) == RGT_GPU_MAX - 1);
	CHECK(!strncmp(f.gpu, "NVIDIA GeForce RTX 4090 with", 28));

	/* startedAt: RFC 3339, with its zone, or unknown */
	CHECK(started("\"2026-11-30T09:14:02Z\"") == 1796030042);
	CHECK(started("\"2026-11-30t09:14:02z\"") == 1796030042);
	CHECK(started("\"2026-11-30T09:14:02.123456Z\"") == 1796030042);
	CHECK(started("\"2026-11-30T17:14:02+08:00\"") == 1796030042);
	CHECK(started("\"2026-11-30T04:44:02-04:30\"") == 1796030042);
	CHECK(started("\"2026-11-30 09:14:02Z\"") == 1796030042);
	CHECK(started("\"2024-02-29T23:59:59Z\"") == 1709251199);
	CHECK(started("\"1970-01-01T00:00:01Z\"") == 1);
	static const char *const bad[] = {
	    "\"2026-11-30T09:14:02\"",	/* no zone: a guess */
	    "\"2026-11-30T09:14:02+0800\"", "\"2026-11-30T09:14:02.Z\"",
	    "\"2026-11-30T09:14:02Z \"",	 "\" 2026-11-30T09:14:02Z\"",
	    "\"2026-02-29T00:00:00Z\"",	/* not a leap year */
	    "\"2026-13-01T00:00:00Z\"",	 "\"2026-11-31T00:00:00Z\"",
	    "\"2026-11-30T24:00:00Z\"",	 "\"2026-11-30T09:60:00Z\"",
	    "\"2026-11-30T09:14:02+24:00\"", "\"1969-12-31T23:59:59Z\"",
	    "\"2026-11-30\"",		 "\"\"",
	    "\"2026-11-3xT09:14:02Z\"",	 "\"+2026-11-30T09:14:02Z\"",
	    "null",			 "1796030042",
	    "\"1970-01-01T00:00:00Z\"",	/* 0 is "unknown" itself */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		if (started(bad[k]))
			fprintf(stderr, "startedAt %s was read\n", bad[k]);
		CHECK(started(bad[k]) == 0);
	}
}

int main(void)
{
	check_fixture_dir(fixture_dir, sizeof(fixture_dir), __FILE__, "",
			  "platforms/runpod/list.json");
	test_registry();
	test_parse_logs();
	test_map_state();
	test_list();
	test_paginated();
	test_errors();
	test_malformed();
	test_secrets();
	test_open();
	test_facts();
	return CHECK_DONE();
}
