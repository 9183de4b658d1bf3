/*
 * archive_push_probe - drive archive_push.c by hand, for
 * tests/integration/test_archive_to.py, on the cache of a STOPPED mount
 * (one LMDB environment per process: never while rgtfs has it open).
 *
 *   archive_push_probe CONFIG CACHE_DIR CLOUD push PLAT ID [PART_BYTES]
 *	push the local archive PLAT/ID (archive_load()) with
 *	archive_push(); PART_BYTES sets the multipart part size (a file
 *	larger than one part goes in parts); ARCHIVE_PUSH_CANCEL_AFTER=N
 *	cancels it (archive_push_cancellable()) after N checks
 *   archive_push_probe CONFIG CACHE_DIR CLOUD list
 *	"PLAT ID" per archive in the bucket (archive_remote_list())
 *   archive_push_probe CONFIG CACHE_DIR CLOUD load PLAT ID
 *	archive_remote_load(): "refused N" then "f SIZE ETAG SRC" per file
 *
 * Credentials as the mount's (the [cloud:NAME] section's, through
 * s3cred). Errors: "error: -N: reason" on stderr, exit 1; usage: exit 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "archive_push.h"
#include "cloud.h"
#include "config.h"
#include "http.h"
#include "store.h"

/* ARCHIVE_PUSH_CANCEL_AFTER=N: cancelled from the N+1st question on. */
static long cancel_after = -1;

static bool cancel_now(void *arg)
{
	(void)arg;
	return cancel_after-- <= 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: archive_push_probe CONFIG CACHE CLOUD "
			"push PLAT ID [PART] | list | load PLAT ID\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct rgt_config cfg = {0};
	struct store *st = NULL;
	struct cloud *cl = NULL;
	char err[1024] = "";
	int rc, ret = 1;

	if (argc < 5)
		return usage();
	const char *cmd = argv[4];
	rc = config_load(argv[1], &cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "error: %d: %s\n", rc, err);
		return 1;
	}
	const struct rgt_section *sec = config_find(&cfg, "cloud", argv[3]);
	if (!sec) {
		fprintf(stderr, "error: no [cloud:%s]\n", argv[3]);
		goto out_cfg;
	}
	rc = store_open(argv[2], 1ull << 40, &st, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "error: %d: %s\n", rc, err);
		goto out_cfg;
	}
	if (http_global_init()) {
		fprintf(stderr, "error: curl\n");
		goto out_store;
	}
	rc = cloud_open(sec, &cfg, st, &cl, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "error: %d: %s\n", rc, err);
		goto out_http;
	}
	if (!strcmp(cmd, "push") && argc >= 7) {
		struct archive *a;
		if (argc >= 8)
			archive_push_part_size = strtoull(argv[7], NULL, 10);
		rc = archive_load(st, argv[5], argv[6], &a);
		if (rc) {
			fprintf(stderr, "error: %d: no local archive\n", rc);
			goto out_cloud;
		}
		const char *ca = getenv("ARCHIVE_PUSH_CANCEL_AFTER");
		cancel_after = ca ? atol(ca) : -1;
		/* as a teardown does: before the destroy call, then once
		 * it finished (the record mounts list) */
		rc = archive_push_cancellable(cl, st, a, ca ? cancel_now : NULL,
					      NULL, err, sizeof(err));
		if (!rc)
			rc = archive_push_final(cl, st, a, err, sizeof(err));
		archive_free(a);
		if (rc) {
			fprintf(stderr, "error: %d: %s\n", rc, err);
			goto out_cloud;
		}
		printf("pushed\n");
	} else if (!strcmp(cmd, "list")) {
		struct archive_ref *v;
		size_t n;
		rc = archive_remote_list(cl, 0, &v, &n, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "error: %d: %s\n", rc, err);
			goto out_cloud;
		}
		for (size_t i = 0; i < n; i++)
			printf("%s %s\n", v[i].platform, v[i].id);
		archive_refs_free(v, n);
	} else if (!strcmp(cmd, "load") && argc >= 7) {
		struct archive *a;
		size_t refused;
		rc = archive_remote_load(cl, st, argv[5], argv[6], 0, &a,
					 &refused, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "error: %d: %s\n", rc, err);
			goto out_cloud;
		}
		printf("refused %zu\n", refused);
		if (refused)
			fprintf(stderr, "note: %s\n", err);
		for (size_t i = 0; i < a->nfiles; i++)
			printf("f %" PRIu64 " %s %s\n", a->files[i].size,
			       a->files[i].etag, a->files[i].src);
		archive_free(a);
	} else {
		ret = usage();
		goto out_cloud;
	}
	ret = 0;
out_cloud:
	cloud_free(cl);
out_http:
	http_global_cleanup();
out_store:
	store_close(st);
out_cfg:
	config_cleanup(&cfg);
	return ret;
}
