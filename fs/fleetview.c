/*
 * fleetview.c - MOUNT/fleet.tsv, MOUNT/fleet.json and MOUNT/.rgtfs/ (see
 * fleetview.h).
 *
 * DESIGN
 * One row per instance a platform directory shows (gone ones included,
 * with their status), in directory order, then by id as the directory
 * lists them. A row is put together from what the mount already holds:
 * the fleet's state and facts (the last list call), the `teardown` text,
 * and checkpoint sizes from listings the tree made (tree.c, memory or the
 * store) against the blocks the store holds. Nothing here asks a box or a
 * platform, so `watch cat fleet.tsv` costs no API call and no round trip.
 *
 * Rows are built first (collect_rows), then rendered by pure functions,
 * so the formats are unit-tested without a mount.
 *
 * .rgtfs/version names the libraries rgtfs was built against (meson's
 * dependency versions: the only file that may include each library's
 * header is its module's own, and fs/ includes none of them).
 */
#include "fleetview.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "fleet.h"
#include "log.h"
#include "ops.h"
#include "rgt_libversions.h"
#include "rgtfs_build.h"
#include "stats.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *const fleetview_root_names[2] = { "fleet.tsv", "fleet.json" };
const char *const fleetview_rgt_names[3] = { "version", "stats", "log" };

const char fleetview_tsv_header[] =
	"platform\tid\tstatus\tgpu\tgpus\tusd_per_hour\tuptime_s\t"
	"checkpoint_bytes\tcached_bytes\tteardown\n";

/* ---- pure parts ---------------------------------------------------------------- */

int fleetview_tsv_field(struct buf *b, const char *s)
{
	int rc = 0;
	if (!s || !*s)
		return buf_append(b, "-", 1);
	for (const unsigned char *p = (const unsigned char *)s; !rc && *p;
	     p++) {
		switch (*p) {
		case ' ': rc = buf_append(b, "_", 1); break;
		case '\t': rc = buf_append(b, "\\t", 2); break;
		case '\n': rc = buf_append(b, "\\n", 2); break;
		case '\r': rc = buf_append(b, "\\r", 2); break;
		case '\\': rc = buf_append(b, "\\\\", 2); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				rc = buf_appendf(b, "\\x%02x", *p);
			else
				rc = buf_append(b, p, 1);
		}
	}
	return rc;
}

static bool starts_with(const char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);
	return n >= k && !memcmp(s, pre, k);
}

void fleetview_teardown_line(const char *text, char *out, size_t len)
{
	const char *best = NULL;
	size_t best_n = 0;
	if (!len)
		return;
	out[0] = '\0';
	if (!text)
		return;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		bool first = p == text;
		if (first && (starts_with(p, n, "done:") ||
			      starts_with(p, n, "refused:") ||
			      starts_with(p, n, "failed:"))) {
			best = p;
			best_n = n;
			break;	/* the outcome, whatever the log under it */
		}
		if (n) {
			best = p;
			best_n = n;
		}
		p += n + (nl ? 1 : 0);
	}
	if (!best)
		return;
	if (best_n >= len) {
		best_n = len - 1;
		/* never cut a UTF-8 sequence: fleet.json needs valid text */
		while (best_n && ((unsigned char)best[best_n] & 0xc0) == 0x80)
			best_n--;
	}
	memcpy(out, best, best_n);
	out[best_n] = '\0';
	for (size_t i = 0; i < best_n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = ' ';
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int fleetview_id_cmp(const char *a, const char *b)
{
	bool da = all_digits(a), db = all_digits(b);
	if (da != db)
		return da ? -1 : 1;
	if (da) {
		/* by value: leading zeros are rare enough to order by text */
		size_t la = strlen(a), lb = strlen(b);
		if (la != lb)
			return la < lb ? -1 : 1;
	}
	return strcmp(a, b);
}

int fleetview_id_qsort(const void *a, const void *b)
{
	return fleetview_id_cmp(*(const char *const *)a,
				*(const char *const *)b);
}

static bool price_known(double usd)
{
	return usd >= 0 && isfinite(usd);
}

/* A number or "-" (< 0 is unknown). */
static int tsv_int(struct buf *b, int64_t v)
{
	return v < 0 ? buf_append(b, "-", 1) :
		       buf_appendf(b, "%" PRId64, v);
}

int fleetview_render_tsv(const struct fleetview_row *rows, size_t n,
			 struct buf *out)
{
	int rc = buf_append(out, fleetview_tsv_header,
			    sizeof(fleetview_tsv_header) - 1);
	for (size_t i = 0; !rc && i < n; i++) {
		const struct fleetview_row *r = &rows[i];
		rc = fleetview_tsv_field(out, r->platform);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = fleetview_tsv_field(out, r->id);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = fleetview_tsv_field(out, r->status);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = fleetview_tsv_field(out, r->facts.gpu);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = tsv_int(out, r->facts.gpu_count);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc && price_known(r->facts.usd_per_hour))
			rc = buf_appendf(out, "%.10g", r->facts.usd_per_hour);
		else if (!rc)
			rc = buf_append(out, "-", 1);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = tsv_int(out, r->uptime_s);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = tsv_int(out, r->checkpoint_bytes);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = tsv_int(out, r->cached_bytes);
		if (!rc)
			rc = buf_append(out, "\t", 1);
		if (!rc)
			rc = fleetview_tsv_field(out, r->teardown);
		if (!rc)
			rc = buf_append(out, "\n", 1);
	}
	return rc;
}

/* A JSON string, or null for "" (or text that is not UTF-8). */
static json_t *str_or_null(const char *s)
{
	json_t *v = s && *s ? json_string(s) : NULL;
	return v ? v : json_null();
}

static json_t *int_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer((json_int_t)v);
}

int fleetview_render_json(const struct fleetview_row *rows, size_t n,
			  int64_t now, struct buf *out)
{
	json_t *arr = json_array();
	double total = 0;
	int rc = 0;
	for (size_t i = 0; arr && i < n; i++) {
		const struct fleetview_row *r = &rows[i];
		double usd = r->facts.usd_per_hour;
		json_t *o = json_object();
		if (!o || json_array_append_new(arr, o)) {
			rc = -ENOMEM;
			break;
		}
		/* insertion order is the column order (jansson keeps it) */
		json_object_set_new(o, "platform", str_or_null(r->platform));
		json_object_set_new(o, "id", str_or_null(r->id));
		json_object_set_new(o, "status", str_or_null(r->status));
		json_object_set_new(o, "gpu", str_or_null(r->facts.gpu));
		json_object_set_new(o, "gpus", int_or_null(r->facts.gpu_count));
		json_object_set_new(o, "usd_per_hour", price_known(usd) ?
						 json_real(usd) : json_null());
		json_object_set_new(o, "uptime_s", int_or_null(r->uptime_s));
		json_object_set_new(o, "checkpoint_bytes",
				    int_or_null(r->checkpoint_bytes));
		json_object_set_new(o, "cached_bytes",
				    int_or_null(r->cached_bytes));
		json_object_set_new(o, "teardown", str_or_null(r->teardown));
		if (price_known(usd))
			total += usd;
	}
	json_t *doc = arr && !rc ? json_object() : NULL;
	char *s = NULL;
	if (doc) {
		json_object_set_new(doc, "generated_at",
				    json_integer((json_int_t)now));
		json_object_set(doc, "instances", arr);
		json_object_set_new(doc, "usd_per_hour_total", json_real(total));
		s = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	}
	if (!s)
		rc = rc ? rc : -ENOMEM;
	else
		rc = buf_appendf(out, "%s\n", s);
	free(s);
	json_decref(doc);
	json_decref(arr);
	return rc;
}

/* ---- rows from the mount -------------------------------------------------------- */

static int add_row(struct rgt_ctx *c, size_t d, const char *id, time_t now,
		   struct fleetview_row *r)
{
	struct fleet *fl = c->fleet;
	int pi = fleet_instance_section(fl, d, id);
	int st = RGT_ST_UNKNOWN;
	if (pi < 0 || fleet_instance_state(fl, (size_t)pi, id, &st))
		return -ENOENT;	/* gone since the ids were taken */
	memset(r, 0, sizeof(*r));
	r->platform = fleet_dir_name(fl, d);
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->status = rgt_state_name(st);
	rgt_facts_init(&r->facts);
	fleet_instance_facts(fl, (size_t)pi, id, &r->facts);
	/* The facts are the last list's: an instance the platform no longer
	 * lists (or is destroying) bills nothing we know of, and the total
	 * must not keep charging for destroyed boxes. */
	if (st == RGT_ST_GONE || st == RGT_ST_DESTROYING)
		r->facts.usd_per_hour = -1;
	r->uptime_s = -1;
	if (st == RGT_ST_RUNNING && r->facts.started > 0)
		r->uptime_s = now > r->facts.started ? now - r->facts.started :
						       0;
	uint64_t total, cached;
	r->checkpoint_bytes = r->cached_bytes = -1;
	if (!tree_checkpoint_bytes(c, (size_t)pi, id, &total, &cached)) {
		r->checkpoint_bytes = (int64_t)total;
		r->cached_bytes = (int64_t)cached;
	}
	struct buf tb;
	buf_init(&tb, 8u << 20);
	if (!fleet_instance_file(fl, (size_t)pi, id, FF_TEARDOWN, &tb))
		fleetview_teardown_line(tb.data, r->teardown,
					sizeof(r->teardown));
	buf_cleanup(&tb);
	return 0;
}

static int collect_rows(struct rgt_ctx *c, struct fleetview_row **out,
			size_t *nout)
{
	struct fleetview_row *v = NULL;
	size_t n = 0, cap = 0;
	time_t now = time(NULL);
	int rc = 0;
	for (size_t d = 0; !rc && d < fleet_ndirs(c->fleet); d++) {
		char **ids;
		size_t k;
		rc = fleet_instance_ids(c->fleet, d, &ids, &k);
		if (rc)
			break;
		qsort(ids, k, sizeof(*ids), fleetview_id_qsort);
		for (size_t i = 0; !rc && i < k; i++) {
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct fleetview_row *nv =
					realloc(v, nc * sizeof(*nv));
				if (!nv) {
					rc = -ENOMEM;
					break;
				}
				v = nv;
				cap = nc;
			}
			if (!add_row(c, d, ids[i], now, &v[n]))
				n++;
		}
		fleet_ids_free(ids, k);
	}
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = n;
	return 0;
}

static int fleet_render(struct rgt_ctx *c, const struct node *n,
			struct buf *b)
{
	struct fleetview_row *rows;
	size_t k;
	int rc = collect_rows(c, &rows, &k);
	if (rc)
		return rc;
	rc = n->vf == FV_JSON ?
		     fleetview_render_json(rows, k, (int64_t)time(NULL), b) :
		     fleetview_render_tsv(rows, k, b);
	free(rows);
	return rc;
}

/* ---- .rgtfs/ ------------------------------------------------------------------- */

static int version_render(struct buf *b)
{
	return buf_appendf(b, "rgtfs %s\nlibfuse %s\nlibssh2 %s\nlibcurl %s\n"
			   "lmdb %s\n", RGTFS_VERSION, RGT_FUSE_VERSION,
			   RGT_SSH2_VERSION, RGT_CURL_VERSION,
			   RGT_LMDB_VERSION);
}

static int stats_file_render(struct rgt_ctx *c, struct buf *b)
{
	time_t now = time(NULL);
	int rc = buf_appendf(b, "uptime_s %lld\n",
			     (long long)(now > c->mount_time ?
						 now - c->mount_time : 0));
	for (size_t pi = 0; !rc && pi < fleet_nsections(c->fleet); pi++) {
		const struct rgt_section *sec = fleet_section(c->fleet, pi);
		unsigned long calls, fails;
		char label[256];
		fleet_api_counts(c->fleet, pi, &calls, &fails);
		/* [vastai] is "vastai", [vastai:work] "vastai:work" */
		if (strcmp(sec->kind, sec->name))
			snprintf(label, sizeof(label), "%s:%s", sec->kind,
				 sec->name);
		else
			snprintf(label, sizeof(label), "%s", sec->kind);
		/* one key, one field: a section name never has whitespace
		 * (config.c), but this file must hold no surprise */
		for (char *p = label; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				*p = '_';
		rc = buf_appendf(b, "api_calls.%s %lu\napi_failures.%s %lu\n",
				 label, calls, label, fails);
	}
	return rc ? rc : stats_render(b);
}

static int rgt_render(struct rgt_ctx *c, const struct node *n, struct buf *b)
{
	switch (n->vf) {
	case FV_VERSION: return version_render(b);
	case FV_STATS: return stats_file_render(c, b);
	case FV_LOG: return rgt_log_recent(b);
	default: return -ENOENT;
	}
}

/* ---- the kinds ----------------------------------------------------------------- */

static int fleet_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		      double *timeout)
{
	return tree_text_stat(c, n, st, timeout, fleet_render);
}

static int fleet_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		      struct open_out *out)
{
	return tree_text_open(c, n, h, out, fleet_render);
}

const struct kind_ops fleetview_fleet = {
	.stat = fleet_stat, .open = fleet_open,
};

static int dir_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		    double *timeout)
{
	tree_dir_stat(c, n, st);
	return 0;
}

static int dir_resolve(struct rgt_ctx *c, struct node *p, const char *name,
		       struct node *t, char *path, size_t pathlen)
{
	for (size_t i = 0; i < NELEM(fleetview_rgt_names); i++) {
		if (!strcmp(name, fleetview_rgt_names[i])) {
			t->kind = NK_RGTFILE;
			t->vf = (int)i;
			t->pi = -1;
			return 0;
		}
	}
	return -ENOENT;
}

static int dir_fill(struct rgt_ctx *c, struct node *n, struct dirh *d)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < NELEM(fleetview_rgt_names); i++)
		rc = tree_add_child(d, n, fleetview_rgt_names[i], S_IFREG);
	return rc;
}

const struct kind_ops fleetview_dir = {
	.stat = dir_stat, .resolve = dir_resolve, .fill = dir_fill,
};

static int rfile_stat(struct rgt_ctx *c, struct node *n, struct stat *st,
		      double *timeout)
{
	return tree_text_stat(c, n, st, timeout, rgt_render);
}

static int rfile_open(struct rgt_ctx *c, struct node *n, struct fh *h,
		      struct open_out *out)
{
	return tree_text_open(c, n, h, out, rgt_render);
}

const struct kind_ops fleetview_rfile = {
	.stat = rfile_stat, .open = rfile_open,
};
