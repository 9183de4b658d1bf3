/*
 * rgtfs-store - look into an rgtfs cache directory, in the spirit of
 * mdb_stat: what is cached, which host keys are pinned, and remove a pin
 * after a box was re-created with a new key (the one change to the cache a
 * user is expected to make by hand).
 *
 *   rgtfs-store [-c CACHEDIR] stat
 *   rgtfs-store [-c CACHEDIR] instances
 *   rgtfs-store [-c CACHEDIR] hostkeys
 *   rgtfs-store [-c CACHEDIR] forget-hostkey PLATFORM/ID
 *
 * Safe while rgtfs runs: LMDB allows other processes to read and write the
 * same environment.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "store.h"
#include "xfer.h"

/* "kind\0PLAT\0ID" (no terminating NUL in the store) -> "PLAT/ID". */
static void key_name(const void *k, size_t kl, size_t skip, char *out,
		     size_t len)
{
	size_t n = kl > skip ? kl - skip : 0;
	if (n >= len)
		n = len - 1;
	memcpy(out, (const char *)k + skip, n);
	out[n] = '\0';
	char *z = memchr(out, '\0', n);
	if (z)
		*z = '/';
}

static int print_inst(void *arg, const void *k, size_t kl, const void *v,
		      size_t vl)
{
	char name[256];
	key_name(k, kl, 5, name, sizeof(name));
	printf("%s\t%.*s\n", name, (int)vl, (const char *)v);
	return 0;
}

static int print_key(void *arg, const void *k, size_t kl, const void *v,
		     size_t vl)
{
	char name[256];
	key_name(k, kl, 8, name, sizeof(name));
	size_t tl = strnlen(v, vl);
	char fp[128];

	if (tl >= vl)
		return 0;
	xfer_key_fingerprint((const unsigned char *)v + tl + 1, vl - tl - 1,
			     fp, sizeof(fp));
	printf("%s\t%s %s\n", name, (const char *)v, fp);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rgtfs-store [-c CACHEDIR] stat | instances | hostkeys "
		"| forget-hostkey PLATFORM/ID\n");
}

int main(int argc, char **argv)
{
	char *dir = NULL, err[512];
	struct store *st;
	int opt, rc;

	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		switch (opt) {
		case 'c':
			dir = strdup(optarg);
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc) {
		usage();
		return 2;
	}
	if (!dir)
		dir = config_default_cache_dir();
	rc = store_open(dir, 1ull << 40, &st, err, sizeof(err));
	free(dir);
	if (rc) {
		fprintf(stderr, "rgtfs-store: %s\n", err);
		return 1;
	}
	const char *cmd = argv[optind];
	if (!strcmp(cmd, "stat")) {
		struct store_info si;
		rc = store_info(st, &si);
		if (!rc)
			printf("blocks %llu\nrecords %llu\nbytes %llu\n",
			       (unsigned long long)si.blocks,
			       (unsigned long long)si.meta,
			       (unsigned long long)si.used);
	} else if (!strcmp(cmd, "instances")) {
		rc = store_meta_scan(st, "inst", 5, print_inst, NULL);
	} else if (!strcmp(cmd, "hostkeys")) {
		rc = store_meta_scan(st, "hostkey", 8, print_key, NULL);
	} else if (!strcmp(cmd, "forget-hostkey") && optind + 1 < argc) {
		const char *arg = argv[optind + 1];
		const char *slash = strchr(arg, '/');
		char k[512];
		if (!slash || slash == arg || !slash[1]) {
			usage();
			store_close(st);
			return 2;
		}
		int n = snprintf(k, sizeof(k), "hostkey%c%.*s%c%s", 0,
				 (int)(slash - arg), arg, 0, slash + 1);
		rc = store_meta_del(st, k, n);
		if (rc == -ENOENT)
			fprintf(stderr, "rgtfs-store: no host key pinned for "
				"%s\n", arg);
		else if (!rc)
			printf("forgot the host key of %s; the next connect "
			       "pins the key it is offered\n", arg);
	} else {
		usage();
		store_close(st);
		return 2;
	}
	store_close(st);
	if (rc && rc != -ENOENT)
		fprintf(stderr, "rgtfs-store: %s\n", strerror(-rc));
	return rc ? 1 : 0;
}
