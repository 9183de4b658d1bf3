/*
 * test_fleetview.c - the pure parts of MOUNT/fleet.tsv and fleet.json
 * (fs/fleetview.c): field escaping (no tab, newline or whitespace ever
 * inside a field), the teardown line, id order, and both renderings of
 * the same rows with unknowns as "-" and null.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "fleetview.h"

static const char *field(const char *s)
{
	static struct buf b;
	buf_cleanup(&b);
	buf_init(&b, 4096);
	return fleetview_tsv_field(&b, s) ? "ERR" : b.data;
}

static const char *td(const char *text)
{
	static char out[512];
	fleetview_teardown_line(text, out, sizeof(out));
	return out;
}

static void test_field(void)
{
	CHECK_STR(field(NULL), "-");
	CHECK_STR(field(""), "-");
	CHECK_STR(field("RTX 4090"), "RTX_4090");
	CHECK_STR(field("a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
	CHECK_STR(field("bell\a del\x7f"), "bell\\x07_del\\x7f");
	CHECK_STR(field("H100 80GB \xc3\xa9"), "H100_80GB_\xc3\xa9");
	/* nothing a whitespace splitter would cut */
	const char *f = field(" \t\n\v\f\r x ");
	CHECK(!strpbrk(f, " \t\n\v\f\r"));
}

static void test_teardown_line(void)
{
	CHECK_STR(td(NULL), "");
	CHECK_STR(td(""), "");
	CHECK_STR(td("\n\n"), "");
	CHECK_STR(td("refused: the box is unreachable\nnothing was destroyed\n"
		     "teardown of vastai/1 started 5\n"),
		  "refused: the box is unreachable");
	CHECK_STR(td("done: vastai/1 destroyed (DELETE)\nroster: 3 files\n"),
		  "done: vastai/1 destroyed (DELETE)");
	CHECK_STR(td("failed: confirm timed out\n"), "failed: confirm timed out");
	/* under way: the latest step */
	CHECK_STR(td("teardown of vastai/1 started 5\nroster: 3 files\n\n"),
		  "roster: 3 files");
	CHECK_STR(td("one line, no newline"), "one line, no newline");
	CHECK_STR(td("tab\there\n"), "tab here");
	/* bounded, and never cut inside a UTF-8 sequence */
	char long_text[2000];
	memset(long_text, 'a', sizeof(long_text));
	memcpy(long_text + 510, "\xc3\xa9", 2);
	long_text[sizeof(long_text) - 1] = '\0';
	const char *l = td(long_text);
	CHECK(strlen(l) == 510);	/* 511 would split the é */
	char small[4];
	fleetview_teardown_line("done: x", small, sizeof(small));
	CHECK_STR(small, "don");
}

static void test_ids(void)
{
	const char *v[] = { "b", "100", "9", "a", "10", "lab" };
	qsort(v, 6, sizeof(v[0]), fleetview_id_qsort);
	CHECK_STR(v[0], "9");
	CHECK_STR(v[1], "10");
	CHECK_STR(v[2], "100");
	CHECK_STR(v[3], "a");
	CHECK_STR(v[4], "b");
	CHECK_STR(v[5], "lab");
}

static void test_render(void)
{
	struct fleetview_row rows[2];
	memset(rows, 0, sizeof(rows));
	rows[0].platform = "vastai";
	snprintf(rows[0].id, sizeof(rows[0].id), "%s", "1234");
	rows[0].status = "running";
	rgt_facts_init(&rows[0].facts);
	snprintf(rows[0].facts.gpu, sizeof(rows[0].facts.gpu), "RTX 4090");
	rows[0].facts.gpu_count = 2;
	rows[0].facts.usd_per_hour = 0.3866;
	rows[0].facts.started = 1000;
	rows[0].uptime_s = 60;
	rows[0].checkpoint_bytes = 5000;
	rows[0].cached_bytes = 1000;
	rows[1].platform = "ssh";
	snprintf(rows[1].id, sizeof(rows[1].id), "%s", "lab");
	rows[1].status = "gone";
	rgt_facts_init(&rows[1].facts);
	rows[1].uptime_s = rows[1].checkpoint_bytes = rows[1].cached_bytes = -1;
	snprintf(rows[1].teardown, sizeof(rows[1].teardown),
		 "refused: no\ttab");

	struct buf b;
	buf_init(&b, 1u << 16);
	CHECK_ERR(fleetview_render_tsv(rows, 2, &b), 0);
	CHECK_STR(b.data,
		  "platform\tid\tstatus\tgpu\tgpus\tusd_per_hour\tuptime_s\t"
		  "checkpoint_bytes\tcached_bytes\tteardown\n"
		  "vastai\t1234\trunning\tRTX_4090\t2\t0.3866\t60\t5000\t1000\t-\n"
		  "ssh\tlab\tgone\t-\t-\t-\t-\t-\t-\trefused:_no\\ttab\n");
	buf_reset(&b);
	CHECK_ERR(fleetview_render_tsv(rows, 0, &b), 0);
	CHECK_STR(b.data, fleetview_tsv_header);

	buf_reset(&b);
	CHECK_ERR(fleetview_render_json(rows, 2, 1700000000, &b), 0);
	json_error_t je;
	json_t *doc = json_loads(b.data, 0, &je);
	CHECK(doc != NULL);
	CHECK(json_integer_value(json_object_get(doc, "generated_at")) ==
	      1700000000);
	CHECK(fabs(json_number_value(json_object_get(doc,
						     "usd_per_hour_total")) -
		   0.3866) < 1e-9);
	json_t *in = json_object_get(doc, "instances");
	CHECK(json_array_size(in) == 2);
	json_t *a = json_array_get(in, 0), *z = json_array_get(in, 1);
	CHECK_STR(json_string_value(json_object_get(a, "gpu")), "RTX 4090");
	CHECK(json_integer_value(json_object_get(a, "gpus")) == 2);
	CHECK(json_integer_value(json_object_get(a, "uptime_s")) == 60);
	CHECK(json_integer_value(json_object_get(a, "cached_bytes")) == 1000);
	CHECK(json_is_null(json_object_get(a, "teardown")));
	CHECK_STR(json_string_value(json_object_get(z, "status")), "gone");
	CHECK(json_is_null(json_object_get(z, "gpu")));
	CHECK(json_is_null(json_object_get(z, "gpus")));
	CHECK(json_is_null(json_object_get(z, "usd_per_hour")));
	CHECK(json_is_null(json_object_get(z, "uptime_s")));
	CHECK(json_is_null(json_object_get(z, "checkpoint_bytes")));
	CHECK_STR(json_string_value(json_object_get(z, "teardown")),
		  "refused: no\ttab");
	/* the columns, in order */
	const char *want[] = { "platform", "id", "status", "gpu", "gpus",
			       "usd_per_hour", "uptime_s", "checkpoint_bytes",
			       "cached_bytes", "teardown" };
	size_t k = 0;
	const char *key;
	json_t *val;
	json_object_foreach(a, key, val) {
		CHECK(k < 10 && !strcmp(key, want[k]));
		k++;
	}
	CHECK(k == 10);
	json_decref(doc);

	/* an unknown price is not $0, and not in the total */
	rows[0].facts.usd_per_hour = -1;
	buf_reset(&b);
	CHECK_ERR(fleetview_render_json(rows, 2, 1, &b), 0);
	doc = json_loads(b.data, 0, &je);
	CHECK(doc && json_number_value(json_object_get(
			     doc, "usd_per_hour_total")) == 0);
	CHECK(doc && json_is_null(json_object_get(
			     json_array_get(json_object_get(doc, "instances"),
					    0),
			     "usd_per_hour")));
	json_decref(doc);
	buf_cleanup(&b);
}

int main(void)
{
	test_field();
	test_teardown_line();
	test_ids();
	test_render();
	field(NULL);
	return CHECK_DONE();
}
