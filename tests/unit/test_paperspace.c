/*
 * test_paperspace.c - the Paperspace adapter's pure parts (state mapping,
 * page parsing and cursors, secret scrubbing, orphan lines, snapshot and
 * DELETE replies) against tests/fixtures/platforms/paperspace/, plus
 * open()'s validation. No network.
 */
#include "buf.h"
#include "config.h"
#include "paperspace.h"
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

	snprintf(path, sizeof(path), "%s/platforms/paperspace/%s", fixture_dir,
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

static int page(const char *name, struct rgt_instance_list *l, bool *more,
		char *cursor, size_t *skipped, char *err, size_t errlen)
{
	size_t len;
	char *b = slurp(name, &len);
	int rc = paperspace_parse_page(b, len, NULL, l, more, cursor, skipped,
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

static enum rgt_state st(const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	enum rgt_state s;

	REQUIRE(j);
	s = paperspace_map_state(j);
	json_decref(j);
	return s;
}

static void test_map_state(void)
{
	CHECK(st("{\"state\":\"provisioning\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"state\":\"starting\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"state\":\"restarting\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"state\":\"upgrading\"}") == RGT_ST_PROVISIONING);
	CHECK(st("{\"state\":\"serviceready\"}") == RGT_ST_RUNNING);
	CHECK(st("{\"state\":\"ready\"}") == RGT_ST_RUNNING);
	CHECK(st("{\"state\":\"stopping\"}") == RGT_ST_STOPPED);
	CHECK(st("{\"state\":\"off\"}") == RGT_ST_STOPPED);
	CHECK(st("{\"state\":\"ready\",\"dtDeleted\":null}") == RGT_ST_RUNNING);
	CHECK(st("{\"state\":\"ready\",\"dtDeleted\":\"\"}") == RGT_ST_RUNNING);
	CHECK(st("{\"state\":\"off\",\"dtDeleted\":\"2026-12-01T00:00:00Z\"}") ==
	      RGT_ST_DESTROYING);
	CHECK(st("{\"state\":\"teleporting\"}") == RGT_ST_UNKNOWN);
	CHECK(st("{\"state\":1}") == RGT_ST_UNKNOWN);
	CHECK(st("{}") == RGT_ST_UNKNOWN);
	CHECK(paperspace_map_state(NULL) == RGT_ST_UNKNOWN);
}

static void test_pages(void)
{
	char cursor[PAPERSPACE_CURSOR_MAX], err[512];
	struct rgt_instance_list l = {0};
	const struct rgt_instance *i;
	size_t skipped = 0;
	bool more;
	long dup;

	REQUIRE(page("page1.json", &l, &more, cursor, &skipped, err,
		     sizeof(err)) == 0);
	CHECK(more);
	CHECK_STR(cursor, "eyJpZCI6InBzMmFiY2RlZiJ9+/=");
	CHECK(l.n == 3 && skipped == 0 && err[0] == '\0');
	REQUIRE(page("page2.json", &l, &more, cursor, &skipped, err,
		     sizeof(err)) == 0);
	CHECK(!more && cursor[0] == '\0');
	/* "-rf", no id, and 7 are malformed */
	CHECK(skipped == 3);
	CHECK(strstr(err, "skipped a malformed machine") != NULL);
	dup = restapi_sort_unique(&l);
	CHECK(dup == 1); /* psz4x1bqe on both pages: the first wins */
	CHECK(l.n == 10);

	i = find(&l, "psz4x1bqe");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_RUNNING);
	REQUIRE(i->n_ep == 1);
	CHECK_STR(i->ep[0].host, "203.0.113.10");
	CHECK(i->ep[0].port == 22);
	CHECK_STR(i->ep[0].user, "paperspace");
	CHECK_STR(i->status_msg, "ready (A100-80G in East Coast (NY2))");
	CHECK(strstr(i->info_json, "\"platform\": \"paperspace\"") != NULL);
	CHECK(strstr(i->info_json, "\"autoShutdownTimeout\": 8") != NULL);

	i = find(&l, "psbooting1");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_PROVISIONING && i->n_ep == 0);
	i = find(&l, "psserviceready");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_RUNNING && i->n_ep == 1);
	i = find(&l, "psoff01");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_STOPPED);
	i = find(&l, "psstopping");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_STOPPED);
	i = find(&l, "psdeleted");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_DESTROYING);
	CHECK(strstr(i->status_msg, "deleted") != NULL);
	i = find(&l, "psweird");
	REQUIRE(i);
	CHECK(i->state == RGT_ST_UNKNOWN && i->n_ep == 0);
	CHECK(find(&l, "-rf") == NULL);
	rgt_instance_list_free(&l);
}

static void test_bad_pages(void)
{
	const char *hm_str = "{\"items\":[],\"hasMore\":\"yes\"}";
	const char *nl_cur = "{\"items\":[],\"hasMore\":true,"
			     "\"nextPage\":\"a\\nb\"}";
	char cursor[PAPERSPACE_CURSOR_MAX], err[512];
	struct rgt_instance_list l = {0};
	size_t skipped = 0;
	bool more;

	CHECK(page("empty.json", &l, &more, cursor, &skipped, err,
		   sizeof(err)) == 0);
	CHECK(l.n == 0 && !more);
	CHECK(page("null.json", &l, &more, cursor, &skipped, err,
		   sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "null") != NULL);
	CHECK(page("more_no_cursor.json", &l, &more, cursor, &skipped, err,
		   sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "nextPage") != NULL);
	CHECK(page("error_200.json", &l, &more, cursor, &skipped, err,
		   sizeof(err)) == -EIO);
	CHECK(strstr(err, "Invalid API token") != NULL);
	CHECK(page("message_200.json", &l, &more, cursor, &skipped, err,
		   sizeof(err)) == -EIO);
	CHECK(strstr(err, "Internal server error") != NULL);
	CHECK(page("truncated.json", &l, &more, cursor, &skipped, err,
		   sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "truncated?") != NULL);
	/* The bare object a GET answers is not a page. */
	CHECK(page("get.json", &l, &more, cursor, &skipped, err,
		   sizeof(err)) == -EBADMSG);
	CHECK(paperspace_parse_page(hm_str, strlen(hm_str), NULL, &l, &more,
				    cursor, &skipped, err,
				    sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "hasMore") != NULL);
	CHECK(paperspace_parse_page(nl_cur, strlen(nl_cur), NULL, &l, &more,
				    cursor, &skipped, err,
				    sizeof(err)) == -EBADMSG);
	CHECK(strstr(err, "control") != NULL);
	CHECK(paperspace_parse_page("{}", PAPERSPACE_MAX_BODY + 1, NULL, &l,
				    &more, cursor, &skipped, err,
				    sizeof(err)) == -EFBIG);
	CHECK(l.n == 0);
	rgt_instance_list_free(&l);
}

static void test_secrets(void)
{
	static const char *const values[] = {
	    "SECRET-startup-77aa",	"SECRET-script-id-88bb",
	    "SECRET-userdata-99cc",	"SECRET-api-token-1234",
	    "SECRET-in-array-1618",	"SECRET-nested-pass-2718",
	    "SECRET",
	};
	char cursor[PAPERSPACE_CURSOR_MAX], err[512];
	struct rgt_instance_list l = {0};
	size_t skipped = 0;
	bool more;

	REQUIRE(page("secrets.json", &l, &more, cursor, &skipped, err,
		     sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	for (size_t k = 0; k < sizeof(values) / sizeof(values[0]); k++)
		if (strstr(l.v[0].info_json, values[k])) {
			fprintf(stderr, "secret %s leaked into info_json\n",
				values[k]);
			check_failed++;
		}
	CHECK(strstr(l.v[0].info_json, "\"ok\": \"visible\"") != NULL);
	CHECK(strstr(l.v[0].info_json, "A6000") != NULL);
	rgt_instance_list_free(&l);
}

static void test_orphans(void)
{
	char cursor[PAPERSPACE_CURSOR_MAX], err[512];
	struct buf out;
	size_t len;
	bool more;
	char *b = slurp("page1.json", &len);
	json_t *root = json_loadb(b, len, 0, NULL);
	json_t *items = json_object_get(root, "items");

	REQUIRE(root);
	buf_init(&out, 1 << 16);
	CHECK(paperspace_orphan_lines(json_array_get(items, 0), &out) == 0);
	CHECK(out.data && strstr(out.data, "static IP 203.0.113.10") != NULL);
	buf_reset(&out);
	/* dynamic or no IP: nothing keeps billing for it */
	CHECK(paperspace_orphan_lines(json_array_get(items, 1), &out) == 0);
	CHECK(paperspace_orphan_lines(json_array_get(items, 2), &out) == 0);
	CHECK(out.len == 0);
	json_decref(root);
	free(b);

	b = slurp("snapshots.json", &len);
	CHECK(paperspace_parse_snapshots(b, len, "psz4x1bqe", &out, &more,
					 cursor, err, sizeof(err)) == 0);
	CHECK(!more);
	CHECK(out.data && strstr(out.data, "snapshot snap1abc (nightly-1)") !=
			      NULL);
	CHECK(out.data && strstr(out.data, "snapshot snap3ghi:") != NULL);
	CHECK(out.data && strstr(out.data, "snapshot snap4 (line break)") !=
			      NULL);
	CHECK(out.data && strstr(out.data, "snap2def") == NULL);
	free(b);
	buf_cleanup(&out);
}

static void test_delete(void)
{
	char err[512];
	bool refused;
	size_t len;
	char *b = slurp("delete.json", &len);

	CHECK(paperspace_parse_delete(b, len, "psz4x1bqe", &refused, err,
				      sizeof(err)) == 0);
	CHECK(paperspace_parse_delete(b, len, "psother", &refused, err,
				      sizeof(err)) == -EBADMSG);
	CHECK(!refused);
	free(b);
	b = slurp("get.json", &len); /* bare, not under "data" */
	CHECK(paperspace_parse_delete(b, len, "psz4x1bqe", &refused, err,
				      sizeof(err)) == -EBADMSG);
	free(b);
	b = slurp("error_200.json", &len);
	CHECK(paperspace_parse_delete(b, len, "psz4x1bqe", &refused, err,
				      sizeof(err)) == -EIO);
	CHECK(refused);
	free(b);
}

static int try_open(const char *url, char *err, size_t errlen)
{
	static char kind[] = "paperspace";
	struct platform *p = NULL;
	struct rgt_section s;
	int rc;

	memset(&s, 0, sizeof(s));
	s.kind = s.name = kind;
	s.ssh_user = "root";
	s.api_url = url;
	s.api_key_env = "RGT_TEST_PS_KEY";
	rc = paperspace_platform_ops.open(&s, &p, err, errlen);
	CHECK(rc == 0 ? p != NULL : p == NULL);
	if (p) {
		struct platform_caps c;

		paperspace_platform_ops.caps(p, &c);
		CHECK(c.n_destroy == 1 && c.confirm_by_list && !c.log_api);
		CHECK_STR(c.destroy[0].name, "DELETE /machines/{id}");
		paperspace_platform_ops.close(p);
	}
	return rc;
}

static void test_open(void)
{
	char err[512];

	CHECK(platform_find("paperspace") == &paperspace_platform_ops);
	setenv("RGT_TEST_PS_KEY", "ps-secret-key-777", 1);
	CHECK(try_open(NULL, err, sizeof(err)) == 0);
	CHECK(try_open("http://127.0.0.1:8", err, sizeof(err)) == 0);
	CHECK(try_open("http://api.paperspace.com", err, sizeof(err)) ==
	      -EINVAL);
	CHECK(try_open("https://api.paperspace.com/v1", err, sizeof(err)) ==
	      -EINVAL);
	unsetenv("RGT_TEST_PS_KEY");
	CHECK(try_open(NULL, err, sizeof(err)) == -ENOKEY);
	CHECK(strstr(err, "ps-secret") == NULL);
}

/* The facts of the one machine @fields describes (after its id). */
static struct rgt_facts ps_facts(const char *fields)
{
	char cursor[PAPERSPACE_CURSOR_MAX], err[512], b[2048];
	struct rgt_instance_list l = {0};
	struct rgt_facts f;
	size_t skipped = 0;
	bool more;

	snprintf(b, sizeof(b),
		 "{\"hasMore\":false,\"items\":[{\"id\":\"ps1\"%s%s}]}",
		 fields[0] ? "," : "", fields);
	REQUIRE(paperspace_parse_page(b, strlen(b), NULL, &l, &more, cursor,
				      &skipped, err, sizeof(err)) == 0);
	REQUIRE(l.n == 1);
	f = l.v[0].facts;
	rgt_instance_list_free(&l);
	return f;
}

static void test_facts(void)
{
	char cursor[PAPERSPACE_CURSOR_MAX], err[512];
	struct rgt_instance_list l = {0};
	const struct rgt_instance *i;
	struct rgt_facts f;
	size_t skipped = 0;
	bool more;

	REQUIRE(page("page1.json", &l, &more, cursor, &skipped, err,
		     sizeof(err)) == 0);
	i = find(&l, "psz4x1bqe");
	REQUIRE(i);
	CHECK_STR(i->facts.gpu, "A100-80G");
	CHECK(i->facts.gpu_count == 1);
	/* usageRate "A100-80G Hourly" names a plan, not a price */
	CHECK(i->facts.usd_per_hour < 0);
	CHECK(i->facts.started == 0);	/* dtCreated is not a start */
	/* no accelerators: machineType names it, the count is unknown */
	i = find(&l, "psbooting1");
	REQUIRE(i);
	CHECK_STR(i->facts.gpu, "P4000");
	CHECK(i->facts.gpu_count == -1 && i->facts.usd_per_hour < 0);
	i = find(&l, "psserviceready");
	REQUIRE(i);
	CHECK(!i->facts.gpu[0] && i->facts.gpu_count == -1 &&
	      i->facts.usd_per_hour < 0 && i->facts.started == 0);
	rgt_instance_list_free(&l);

	/* a numeric usageRate while running is the rate; off, unknown */
	f = ps_facts("\"state\":\"ready\",\"usageRate\":3.09,"
		     "\"accelerators\":[{\"name\":\"A100-80G\",\"count\":8}]");
	CHECK(f.usd_per_hour == 3.09 && f.gpu_count == 8);
	f = ps_facts("\"state\":\"off\",\"usageRate\":3.09");
	CHECK(f.usd_per_hour < 0);
	f = ps_facts("\"state\":\"ready\",\"usageRate\":-3.09");
	CHECK(f.usd_per_hour < 0);
	f = ps_facts("\"state\":\"ready\",\"usageRate\":\"3.09\"");
	CHECK(f.usd_per_hour < 0);
	/* an empty list says no GPU: 0, and no model to name */
	f = ps_facts("\"machineType\":\"C5\",\"accelerators\":[]");
	CHECK(f.gpu_count == 0 && !f.gpu[0]);
	/* several: summed; one model only when they all share it */
	f = ps_facts("\"accelerators\":[{\"name\":\"A4000\",\"count\":1},"
		     "{\"name\":\"A4000\",\"count\":2}]");
	CHECK(f.gpu_count == 3);
	CHECK_STR(f.gpu, "A4000");
	f = ps_facts("\"accelerators\":[{\"name\":\"A4000\",\"count\":1},"
		     "{\"name\":\"A5000\",\"count\":1}]");
	CHECK(f.gpu_count == 2 && !f.gpu[0]);
	/* one bad entry makes the sum a guess: unknown */
	f = ps_facts("\"machineType\":\"A4000\",\"accelerators\":"
		     "[{\"name\":\"A4000\",\"count\":1},{\"name\":\"A4000\","
		     "\"count\":\"1\"}]");
	CHECK(f.gpu_count == -1 && !f.gpu[0]);
	f = ps_facts("\"accelerators\":[{\"count\":1}]");
	CHECK(f.gpu_count == -1 && !f.gpu[0]);
	f = ps_facts("\"accelerators\":[{\"name\":\"A4000\",\"count\":"
		     "2147483647},{\"name\":\"A4000\",\"count\":1}]");
	CHECK(f.gpu_count == -1);
	f = ps_facts("\"accelerators\":{\"name\":\"A4000\"},"
		     "\"machineType\":7");
	CHECK(f.gpu_count == -1 && !f.gpu[0]);
	/* a long machine type is cut to fit */
	f = ps_facts("\"machineType\":\"A100-80Gx8-with-a-machine-type-name-"
		     "that-is-much-longer-than-the-fleet-view-field\"");
	CHECK(strlen(f.gpu) == RGT_GPU_MAX - 1);
}

int main(void)
{
	check_fixture_dir(fixture_dir, sizeof(fixture_dir), __FILE__, "",
			  "platforms/paperspace/page1.json");
	test_map_state();
	test_pages();
	test_bad_pages();
	test_secrets();
	test_orphans();
	test_delete();
	test_open();
	test_facts();
	return CHECK_DONE();
}
