/*
 * test_autodl.c - the AutoDL Pro adapter's pure parts (state mapping, list
 * page parsing, verb replies, secret scrubbing) and its open() validation,
 * against the canned replies in tests/fixtures/platforms/autodl/. No
 * network: list() and destroy() are left to tests/integration/test_autodl.py
 * against fake_autodl.py.
 */
#include "autodl.h"
#include "config.h"
#include "platform.h"

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

	snprintf(path, sizeof(path), "%s/platforms/autodl/%s", fixture_dir,
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

static char **raws;

static void free_raws(size_t n)
{
	for (size_t i = 0; raws && i < n; i++)
		free(raws[i]);
	free(raws);
	raws = NULL;
}

static int page(const char *name, long want, struct rgt_instance_list *l,
		struct autodl_page *pg, size_t *skipped, char *err,
		size_t errlen)
{
	size_t len;
	char *b = slurp(name, &len);
	int rc = autodl_parse_page(b, len, "root", want, l, &raws, pg, skipped,
				   err, errlen);

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

static void test_map_state(void)
{
	CHECK(autodl_map_state("creating") == RGT_ST_PROVISIONING);
	CHECK(autodl_map_state("starting") == RGT_ST_PROVISIONING);
	CHECK(autodl_map_state("running") == RGT_ST_RUNNING);
	CHECK(autodl_map_state("shutting_down") == RGT_ST_STOPPED);
	CHECK(autodl_map_state("shutdown") == RGT_ST_STOPPED);
	CHECK(autodl_map_state("releasing") == RGT_ST_DESTROYING);
	CHECK(autodl_map_state("") == RGT_ST_UNKNOWN);
	CHECK(autodl_map_state("exploded") == RGT_ST_UNKNOWN);
	CHECK(autodl_map_state(NULL) == RGT_ST_UNKNOWN);
}

static void test_two_pages(void)
{
	struct rgt_instance_list l = {0};
	struct autodl_page pg;
	const struct rgt_instance *ri;
	size_t skipped;
	char err[512];

	CHECK_ERR(page("list_p1.json", 1, &l, &pg, &skipped, err, sizeof(err)),
		  0);
	CHECK(l.n == 2 && skipped == 0 && err[0] == '\0');
	CHECK(pg.page_index == 1 && pg.max_page == 2 && pg.result_total == 4);
	CHECK_ERR(page("list_p2.json", 2, &l, &pg, &skipped, err, sizeof(err)),
		  0);
	REQUIRE(l.n == 4);
	CHECK(pg.page_index == 2 && pg.max_page == 2);
	CHECK_STR(raws[0], "running");
	CHECK_STR(raws[1], "shutdown");
	CHECK_STR(raws[2], "creating");
	CHECK_STR(raws[3], "releasing");

	ri = find(&l, "pro-7c9f1b2a3d4e");
	REQUIRE(ri);
	CHECK(ri->state == RGT_ST_RUNNING);
	CHECK_STR(ri->status_msg, "running");
	CHECK(ri->n_ep == 1);
	CHECK_STR(ri->ep[0].host, "connect.westb.seetacloud.com");
	CHECK(ri->ep[0].port == 40122);
	CHECK_STR(ri->ep[0].user, "root");
	/* secrets never reach info.json; the rest does */
	CHECK(!strstr(ri->info_json, "FAKESECRET"));
	CHECK(!strstr(ri->info_json, "root_password"));
	CHECK(strstr(ri->info_json, "\"gpu_spec_uuid\": \"v-48g\""));
	CHECK(strstr(ri->info_json, "\"platform\": \"autodl\""));

	/* only ssh_command: host and port from it */
	ri = find(&l, "pro-0a1b2c3d4e5f");
	REQUIRE(ri);
	CHECK(ri->state == RGT_ST_STOPPED);
	CHECK(ri->n_ep == 1 && ri->ep[0].port == 20731);
	CHECK_STR(ri->ep[0].host, "connect.westb.seetacloud.com");
	CHECK(!strstr(ri->info_json, "FAKESECRET"));

	ri = find(&l, "pro-5e6f7a8b9c0d");
	REQUIRE(ri);
	CHECK(ri->state == RGT_ST_PROVISIONING && ri->n_ep == 0);

	/* ssh_port as a string */
	ri = find(&l, "pro-ffeeddccbbaa");
	REQUIRE(ri);
	CHECK(ri->state == RGT_ST_DESTROYING);
	CHECK(ri->n_ep == 1 && ri->ep[0].port == 20999);
	free_raws(l.n);
	rgt_instance_list_free(&l);
}

static void test_wrong_page_refused(void)
{
	struct rgt_instance_list l = {0};
	struct autodl_page pg;
	size_t skipped;
	char err[512];

	/* A server that ignores page_index answers page 1 again. */
	CHECK_ERR(page("list_p1.json", 2, &l, &pg, &skipped, err, sizeof(err)),
		  -EBADMSG);
	CHECK(strstr(err, "another page"));
	CHECK(l.n == 0);
	free_raws(l.n);
	rgt_instance_list_free(&l);
}

static void test_errors(void)
{
	static const struct {
		const char *file;
		int rc;
		const char *word;
	} cases[] = {
	    {"not_success.json", -EIO, "AuthorizeFailed"},
	    {"no_list.json", -EBADMSG, "data.list"},
	    {"no_max_page.json", -EBADMSG, "max_page"},
	    {"truncated.json", -EBADMSG, "truncated"},
	    {"all_malformed.json", -EBADMSG, "none of the 4"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rgt_instance_list l = {0};
		struct autodl_page pg;
		size_t skipped;
		char err[512];
		int rc = page(cases[i].file, 1, &l, &pg, &skipped, err,
			      sizeof(err));

		CHECK_ERR(rc, cases[i].rc);
		if (!strstr(err, cases[i].word))
			fprintf(stderr, "%s: err %s\n", cases[i].file, err);
		CHECK(strstr(err, cases[i].word));
		CHECK(l.n == 0);
		free_raws(l.n);
		rgt_instance_list_free(&l);
	}
}

static void test_empty_and_malformed(void)
{
	struct rgt_instance_list l = {0};
	struct autodl_page pg;
	size_t skipped;
	char err[512];

	CHECK_ERR(page("empty.json", 1, &l, &pg, &skipped, err, sizeof(err)),
		  0);
	CHECK(l.n == 0 && pg.max_page == 0 && pg.result_total == 0);
	free_raws(l.n);
	rgt_instance_list_free(&l);

	CHECK_ERR(page("malformed.json", 1, &l, &pg, &skipped, err,
		       sizeof(err)),
		  0);
	REQUIRE(l.n == 1);
	CHECK(skipped == 6);
	CHECK(strstr(err, "skipped 6"));
	CHECK_STR(l.v[0].id, "pro-111111111111");
	CHECK(l.v[0].state == RGT_ST_STOPPED);
	/* a host that would read as an ssh option is no endpoint */
	CHECK(l.v[0].n_ep == 0);
	free_raws(l.n);
	rgt_instance_list_free(&l);
}

static void test_verb_replies(void)
{
	char err[512], *b;
	size_t len;

	b = slurp("verb_success.json", &len);
	CHECK_ERR(autodl_check_reply(b, len, "power_off", err, sizeof(err)), 0);
	free(b);
	b = slurp("verb_refused.json", &len);
	CHECK_ERR(autodl_check_reply(b, len, "release", err, sizeof(err)),
		  -EIO);
	CHECK(strstr(err, "InstanceStatusNotAllowed"));
	CHECK(strstr(err, "release"));
	free(b);
	CHECK_ERR(autodl_check_reply("{\"msg\":\"ok\"}", 12, "power_off", err,
				     sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(autodl_check_reply("<html>", 6, "power_off", err,
				     sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(autodl_check_reply("", 0, "power_off", err, sizeof(err)),
		  -EBADMSG);
	CHECK_ERR(autodl_check_reply("[\"Success\"]", 11, "power_off", err,
				     sizeof(err)),
		  -EBADMSG);
	/* "success" in another case is not "Success" */
	CHECK_ERR(autodl_check_reply("{\"code\":\"success\"}", 18, "release",
				     err, sizeof(err)),
		  -EIO);
}

static void test_open(void)
{
	static const struct {
		const char *ini;
		int rc;
	} cases[] = {
	    {"[autodl]\napi_key_env = RGT_TEST_AUTODL_TOKEN\n", 0},
	    {"[autodl]\napi_key_env = RGT_TEST_AUTODL_TOKEN\n"
	     "api_url = http://127.0.0.1:9\n",
	     0},
	    {"[autodl]\napi_key_env = RGT_TEST_AUTODL_TOKEN\n"
	     "api_url = http://api.autodl.com\n",
	     -EINVAL},
	    {"[autodl]\napi_key_env = RGT_TEST_AUTODL_TOKEN\n"
	     "api_url = https://api.autodl.com/api/v1/dev\n",
	     -EINVAL},
	    {"[autodl]\napi_key_env = RGT_TEST_AUTODL_UNSET\n", -ENOKEY},
	};
	const struct platform_ops *ops = platform_find("autodl");
	struct platform_caps caps;

	REQUIRE(ops);
	setenv("RGT_TEST_AUTODL_TOKEN", "  tok-0123456789abcdef \n", 1);
	unsetenv("RGT_TEST_AUTODL_UNSET");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rgt_config cfg;
		struct platform *p = NULL;
		char err[512];

		REQUIRE(!config_parse_string(cases[i].ini, "test.ini", &cfg,
					     err, sizeof(err)));
		CHECK_ERR(ops->open(config_find(&cfg, "autodl", NULL), &p, err,
				    sizeof(err)),
			  cases[i].rc);
		CHECK(!strstr(err, "tok-0123456789abcdef"));
		if (p) {
			ops->caps(p, &caps);
			CHECK(caps.n_destroy == 2 && caps.confirm_by_list);
			CHECK_STR(caps.destroy[0].name, "power_off");
			CHECK(caps.destroy[0].wait_for == RGT_ST_STOPPED);
			CHECK_STR(caps.destroy[1].name, "release");
			CHECK(!caps.log_api);
		}
		ops->close(p);
		config_cleanup(&cfg);
	}
}

/* ssh_command is read only in its plain shape; anything else is no
 * endpoint rather than a guess. */
static void test_ssh_command_shapes(void)
{
	static const char body[] =
	    "{\"code\":\"Success\",\"data\":{\"page_index\":1,\"max_page\":1,"
	    "\"list\":["
	    "{\"uuid\":\"pro-a\",\"status\":\"running\",\"ssh_command\":"
	    "\"ssh -p 2222 alice@h.example\"},"
	    "{\"uuid\":\"pro-b\",\"status\":\"running\",\"ssh_command\":"
	    "\"ssh root@h.example\"},"
	    "{\"uuid\":\"pro-c\",\"status\":\"running\",\"ssh_command\":"
	    "\"ssh -p 22 -o ProxyCommand=x root@h\"},"
	    "{\"uuid\":\"pro-d\",\"status\":\"running\",\"ssh_command\":"
	    "\"ssh -p 70000 root@h\"},"
	    "{\"uuid\":\"pro-e\",\"status\":\"running\",\"ssh_command\":"
	    "\"scp -P 22 root@h\"},"
	    "{\"uuid\":\"pro-f\",\"status\":\"running\",\"ssh_command\":"
	    "\"ssh -p 22 root@h; rm -rf /\"},"
	    "{\"uuid\":\"pro-g\",\"status\":\"running\",\"proxy_host\":"
	    "\"10.0.0.1\",\"ssh_port\":0,\"ssh_command\":\"ssh -p 31 root@g\"}"
	    "]}}";
	struct rgt_instance_list l = {0};
	struct autodl_page pg;
	const struct rgt_instance *ri;
	size_t skipped;
	char err[512];

	CHECK_ERR(autodl_parse_page(body, sizeof(body) - 1, "root", 1, &l,
				    &raws, &pg, &skipped, err, sizeof(err)),
		  0);
	REQUIRE(l.n == 7 && skipped == 0);
	ri = find(&l, "pro-a");
	CHECK(ri && ri->n_ep == 1 && ri->ep[0].port == 2222);
	CHECK(ri && !strcmp(ri->ep[0].user, "alice"));
	ri = find(&l, "pro-b");
	CHECK(ri && ri->n_ep == 1 && ri->ep[0].port == 22);
	CHECK(ri && !strcmp(ri->ep[0].user, "root"));
	CHECK(find(&l, "pro-c")->n_ep == 0);
	CHECK(find(&l, "pro-d")->n_ep == 0);
	CHECK(find(&l, "pro-e")->n_ep == 0);
	CHECK(find(&l, "pro-f")->n_ep == 0);
	/* a port of 0 is no port: ssh_command takes over */
	ri = find(&l, "pro-g");
	CHECK(ri && ri->n_ep == 1 && ri->ep[0].port == 31);
	CHECK(ri && !strcmp(ri->ep[0].host, "g"));
	free_raws(l.n);
	rgt_instance_list_free(&l);
}

static void test_password(void)
{
	char err[256], *pw;
	char ok[] = "{\"code\":\"Success\",\"data\":{\"ssh_command\":"
		    "\"ssh -p 1 root@h\",\"root_password\":\"s3cr3t-Pw\"},"
		    "\"msg\":\"\"}";
	CHECK(autodl_parse_password(ok, strlen(ok), &pw, err, sizeof(err)) == 0);
	CHECK_STR(pw, "s3cr3t-Pw");
	free(pw);
	char none[] = "{\"code\":\"Success\",\"data\":{\"root_password\":\"\"}}";
	CHECK(autodl_parse_password(none, strlen(none), &pw, err, sizeof(err)) ==
	      -ENOENT);
	CHECK(pw == NULL);
	char refused[] = "{\"code\":\"RecordNotFoundError\",\"data\":null,"
			 "\"msg\":\"record not found\"}";
	CHECK(autodl_parse_password(refused, strlen(refused), &pw, err,
				    sizeof(err)) == -EIO);
	CHECK(pw == NULL && strstr(err, "record not found"));
	char nul[] = "{\"code\":\"Success\",\"data\":{\"root_password\":"
		     "\"ab\\u0000cd\"}}";
	CHECK(autodl_parse_password(nul, strlen(nul), &pw, err, sizeof(err)) ==
	      -EBADMSG);
	CHECK(pw == NULL && !strstr(err, "ab"));
	char nl[] = "{\"code\":\"Success\",\"data\":{\"root_password\":"
		    "\"ab\\ncd\"}}";
	CHECK(autodl_parse_password(nl, strlen(nl), &pw, err, sizeof(err)) ==
	      -EBADMSG);
	char num[] = "{\"code\":\"Success\",\"data\":{\"root_password\":7}}";
	CHECK(autodl_parse_password(num, strlen(num), &pw, err, sizeof(err)) ==
	      -ENOENT);
}

static void test_facts(void)
{
	static const char body[] =
	    "{\"code\":\"Success\",\"data\":{\"page_index\":1,\"max_page\":1,"
	    "\"list\":["
	    "{\"uuid\":\"pro-a\",\"status\":\"running\","
	    "\"req_gpu_amount\":\"2\",\"started_at\":\"2026-11-30 09:13:20\"},"
	    "{\"uuid\":\"pro-b\",\"status\":\"running\","
	    "\"req_gpu_amount\":-1,\"started_at\":1796001200},"
	    "{\"uuid\":\"pro-c\",\"status\":\"running\","
	    "\"req_gpu_amount\":8,\"started_at\":\"2026-11-30T01:13:20Z\","
	    "\"payg_price\":2580,\"gpu_spec_uuid\":\"v-48g\"}"
	    "]}}";
	struct rgt_instance_list l = {0};
	struct autodl_page pg;
	const struct rgt_instance *ri;
	size_t skipped;
	char err[512];

	CHECK_ERR(page("list_p1.json", 1, &l, &pg, &skipped, err, sizeof(err)),
		  0);
	ri = find(&l, "pro-7c9f1b2a3d4e");
	REQUIRE(ri);
	CHECK(ri->facts.gpu_count == 1);
	CHECK(ri->facts.started == 1796001200);	/* 09:13:20+08:00 */
	/* gpu_spec_uuid is a spec id, payg_price CNY: both unknown */
	CHECK(!ri->facts.gpu[0]);
	CHECK(ri->facts.usd_per_hour < 0);
	/* shut down, no amount and no start said */
	ri = find(&l, "pro-0a1b2c3d4e5f");
	REQUIRE(ri);
	CHECK(!ri->facts.gpu[0] && ri->facts.gpu_count == -1 &&
	      ri->facts.usd_per_hour < 0 && ri->facts.started == 0);
	free_raws(l.n);
	rgt_instance_list_free(&l);

	CHECK_ERR(autodl_parse_page(body, sizeof(body) - 1, "root", 1, &l,
				    &raws, &pg, &skipped, err, sizeof(err)),
		  0);
	REQUIRE(l.n == 3 && skipped == 0);
	/* a count as a string and a time without its zone: unknown */
	ri = find(&l, "pro-a");
	REQUIRE(ri);
	CHECK(ri->facts.gpu_count == -1 && ri->facts.started == 0);
	ri = find(&l, "pro-b");
	REQUIRE(ri);
	CHECK(ri->facts.gpu_count == -1 && ri->facts.started == 0);
	ri = find(&l, "pro-c");
	REQUIRE(ri);
	CHECK(ri->facts.gpu_count == 8 && ri->facts.started == 1796001200);
	CHECK(!ri->facts.gpu[0] && ri->facts.usd_per_hour < 0);
	free_raws(l.n);
	rgt_instance_list_free(&l);
}

int main(void)
{
	check_fixture_dir(fixture_dir, sizeof(fixture_dir), __FILE__, "",
			  "platforms/autodl/list_p1.json");
	test_map_state();
	test_two_pages();
	test_wrong_page_refused();
	test_errors();
	test_empty_and_malformed();
	test_verb_replies();
	test_ssh_command_shapes();
	test_open();
	test_password();
	test_facts();
	return CHECK_DONE();
}
