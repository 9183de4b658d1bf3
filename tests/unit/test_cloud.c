/*
 * test_cloud.c - where an instance's checkpoints live in its bucket: the
 * prefix template filled in, and box paths mapped under it. One function
 * each, so the tree, the teardown and the archive cannot disagree.
 */
#include <errno.h>

#include "check.h"
#include "cloud.h"

static void prefix(const char *tmpl, const char *plat, const char *id,
		   int want_rc, const char *want)
{
	char out[256] = "";
	int rc = cloud_prefix_path(tmpl, plat, id, out, sizeof(out));
	CHECK_ERR(rc, want_rc);
	if (!want_rc && want && strcmp(out, want)) {
		fprintf(stderr, "prefix(%s) = '%s', want '%s'\n",
			tmpl ? tmpl : "NULL", out, want);
		check_failed++;
	}
}

static void map(const char *pre, const char *root, const char *box,
		int want_rc, const char *want)
{
	char out[256] = "";
	int rc = cloud_map_path(pre, root, box, out, sizeof(out));
	CHECK_ERR(rc, want_rc);
	if (!want_rc && strcmp(out, want)) {
		fprintf(stderr, "map(%s) = '%s', want '%s'\n", box, out, want);
		check_failed++;
	}
}

int main(void)
{
	prefix(NULL, "vastai", "123", 0, "/vastai/123");
	prefix("{platform}/{id}/", "vastai", "123", 0, "/vastai/123");
	prefix("team/{platform}-{id}", "runpod", "ab12", 0,
	       "/team/runpod-ab12");
	prefix("ckpt/{id}/", "ssh", "lab", 0, "/ckpt/lab");
	prefix("", "vastai", "1", 0, "/");
	prefix("fixed/", "vastai", "1", 0, "/fixed");
	/* a value never adds or removes a level */
	prefix("{platform}/{id}/", "vastai", "a/b", -EINVAL, NULL);
	prefix("{platform}/{id}/", "vastai", "", -EINVAL, NULL);
	prefix("{platform}/{id}/", "vastai", "..", -EINVAL, NULL);
	prefix("{platform}/{id}/", "vastai", ".", -EINVAL, NULL);
	prefix("a//{id}/", "vastai", "1", -EINVAL, NULL);
	prefix("{id}/../x", "vastai", "1", -EINVAL, NULL);
	/* too long for the buffer */
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	prefix(big, "vastai", "1", -ENAMETOOLONG, NULL);

	map("/vastai/123", "/workspace/checkpoints", "/workspace/checkpoints",
	    0, "/vastai/123");
	map("/vastai/123", "/workspace/checkpoints",
	    "/workspace/checkpoints/run-1/model.pt", 0,
	    "/vastai/123/run-1/model.pt");
	map("/", "/workspace/checkpoints", "/workspace/checkpoints/a", 0,
	    "/a");
	map("/p", "/data", "/data/x\ny", 0, "/p/x\ny");
	/* not under checkpoint_dir: no mapping at all */
	map("/p", "/workspace/checkpoints", "/workspace/checkpoints2/a",
	    -EINVAL, "");
	map("/p", "/workspace/checkpoints", "/workspace", -EINVAL, "");
	map("/p", "/workspace/checkpoints", "/etc/passwd", -EINVAL, "");
	return CHECK_DONE();
}
