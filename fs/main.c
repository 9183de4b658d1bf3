/*
 * main.c - process lifecycle only: options and config, mount, daemonize,
 * then the store, fetcher and pollers (threads and LMDB must start after
 * fork), the FUSE loop, and the reverse unwind. No filesystem logic.
 *
 * fuse_daemonize() chdirs to "/" and points stderr at /dev/null (unless
 * -f): every path the user gave relative to the cwd is made absolute
 * before it, and from then on messages go to syslog.
 */
#include <fuse_lowlevel.h>

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloud.h"
#include "config.h"
#include "fetch.h"
#include "fleet.h"
#include "handle.h"
#include "http.h"
#include "log.h"
#include "node.h"
#include "ops.h"
#include "rgtfs_build.h"
#include "store.h"

struct rgt_opts {
	char *nonopt[3];	/* [SOURCE] MOUNTPOINT, as mount.fuse3 passes */
	int nnonopt;
	char *config;
	char *cache;
	char *cache_size;
	int show_help;
	int show_version;
};

#define OPT(t, p) { t, offsetof(struct rgt_opts, p), 1 }
static const struct fuse_opt rgt_opt_spec[] = {
	OPT("config=%s", config),
	OPT("cache=%s", cache),
	OPT("cache_size=%s", cache_size),
	OPT("-h", show_help),
	OPT("--help", show_help),
	OPT("-V", show_version),
	OPT("--version", show_version),
	/*
	 * fstab options that mean nothing to a FUSE mount and that libfuse
	 * would refuse ("unknown option"). mount(8) and mount.fuse3 strip
	 * most of them, but not the atime family, which mount passes on
	 * (everything under the mount is read-only, so no atime changes);
	 * an fstab line copied to the command line or a unit works too.
	 * "x-*" is dropped in opt_proc (a template cannot match a prefix).
	 */
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("comment=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("relatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("norelatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("strictatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nostrictatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("lazytime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nolazytime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("diratime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nodiratime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

/*
 * mount(8) and fstab run "rgtfs SOURCE MOUNTPOINT -o ..." through
 * mount.fuse3; by hand it is "rgtfs MOUNTPOINT". Collect the positional
 * arguments and give libfuse only the last one.
 */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct rgt_opts *o = data;

	if (key == FUSE_OPT_KEY_OPT && !strncmp(arg, "x-", 2))
		return 0;	/* x-systemd.*, x-gvfs-*: for other programs */
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (o->nnonopt >= 2) {
		fprintf(stderr, "rgtfs: unexpected argument '%s'\n", arg);
		return -1;
	}
	o->nonopt[o->nnonopt] = strdup(arg);
	if (!o->nonopt[o->nnonopt])
		return -1;
	o->nnonopt++;
	return 0;
}

static void usage(const char *prog)
{
	printf("usage: %s [FUSE options] [-o rgtfs options] MOUNTPOINT\n\n"
	       "rgtfs options:\n"
	       "    -o config=FILE       INI configuration (default "
	       "$XDG_CONFIG_HOME/rgtfs/config.ini)\n"
	       "    -o cache=DIR         cache directory (default "
	       "$XDG_CACHE_HOME/rgtfs), created 0700\n"
	       "    -o cache_size=SIZE   bound on evictable cache data, "
	       "e.g. 20G\n\n",
	       prog);
}

/*
 * @path made absolute against the current directory (malloc'd; NULL on
 * ENOMEM or if the cwd is gone). Not realpath(): the cache directory may
 * not exist yet, and a symlink the user named stays a symlink.
 */
static char *absolute(const char *path)
{
	if (!path || path[0] == '/')
		return path ? strdup(path) : NULL;
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	size_t n = strlen(cwd) + 1 + strlen(path) + 1;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s%s", cwd,
			 cwd[strlen(cwd) - 1] == '/' ? "" : "/",
			 strcmp(path, ".") ? path : "");
	free(cwd);
	return out;
}

/* Replace *@p (malloc'd) by its absolute form; -ENOMEM. */
static int make_absolute(char **p)
{
	if (!*p || (*p)[0] == '/')
		return 0;
	char *a = absolute(*p);
	if (!a)
		return -ENOMEM;
	free(*p);
	*p = a;
	return 0;
}

/*
 * Paths in the config that are read after fuse_daemonize() (the key file
 * at each connect, the API key file when the pollers start): relative
 * ones are relative to where rgtfs was started.
 */
static int config_paths_absolute(struct rgt_config *cfg)
{
	for (size_t i = 0; i < cfg->nsec; i++) {
		struct rgt_section *s = &cfg->sec[i];
		if (make_absolute(&s->ssh_key))
			return -ENOMEM;
		for (size_t k = 0; k < s->nkv; k++) {
			struct rgt_kv *kv = &s->kv[k];
			static const char *const files[] = {
				"api_key_file", "ca_file", "password_file",
				"access_key_file", "secret_key_file",
				"session_token_file",
			};
			bool file = false;
			for (size_t f = 0; f < sizeof(files) / sizeof(*files);
			     f++)
				file |= !strcmp(kv->key, files[f]);
			if (!file || !kv->val[0])
				continue;
			bool alias = kv->val == s->api_key_file;
			if (make_absolute(&kv->val))
				return -ENOMEM;
			if (alias)
				s->api_key_file = kv->val;
		}
	}
	return 0;
}

/* Address space reserved for the cache map: sparse, not disk. */
static uint64_t map_size(uint64_t cache_size)
{
	uint64_t floor = 1ull << 40;	/* 1 TiB */
	if (cache_size && cache_size * 2 > floor)
		return cache_size * 2;
	return floor;
}

/* mkdir -p of @dir's parents, each new one 0700 (the XDG base directory
 * rule, for a first start without ~/.cache). */
static void make_parents(const char *dir)
{
	char p[4096];
	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return;
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		if (mkdir(p, 0700) && errno != EEXIST)
			return;
		*s = '/';
	}
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct rgt_opts opts = { 0 };
	struct fuse_cmdline_opts cmd = { 0 };
	struct rgt_config cfg = { 0 };
	struct rgt_ctx ctx = { 0 };
	struct fuse_session *se = NULL;
	char err[1024];
	int ret = 1, rc;

	/*
	 * Memory budget (64 MiB of anonymous memory on a cold 1 GiB copy):
	 * glibc raises its mmap threshold after the first 1 MiB block is
	 * freed, and from then on every thread's arena keeps freed blocks
	 * (LMDB's dirty overflow pages, fetch buffers): measured here 37-62
	 * MiB depending on scheduling. A fixed threshold sends large buffers
	 * back to the kernel when freed; the fetcher pools the hot ones.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_ARENA_MAX, 4);
	/* API keys and passwords live in this memory: no core file of it
	 * (as ssh-agent); children get the flag back at exec. */
	prctl(PR_SET_DUMPABLE, 0);
	/* and none by a core handler that ignores the flag
	 * (fs.suid_dumpable = 2) */
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });

	if (fuse_opt_parse(&args, &opts, rgt_opt_spec, opt_proc))
		goto out_args;
	if (opts.nnonopt &&
	    fuse_opt_add_arg(&args, opts.nonopt[opts.nnonopt - 1]))
		goto out_args;
	if (opts.show_version) {
		printf("rgtfs %s\nFUSE library %s\n", RGTFS_VERSION,
		       fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &cmd)) {
		ret = 1;
		goto out_args;
	}
	if (opts.show_help || !cmd.mountpoint) {
		usage(argv[0]);
		if (opts.show_help)
			fuse_lowlevel_help();
		ret = opts.show_help ? 0 : 1;
		goto out_cmd;
	}
	if (cmd.debug || getenv("RGTFS_DEBUG"))
		rgt_log_set_level(RGT_DEBUG);

	/* Made absolute now: fuse_daemonize() will chdir to "/". */
	char *cfg_path = opts.config ? absolute(opts.config) :
				       config_default_path();
	if (!cfg_path) {
		fprintf(stderr, "rgtfs: config: %s\n", strerror(errno));
		goto out_cmd;
	}
	rc = config_load(cfg_path, &cfg, err, sizeof(err));
	free(cfg_path);
	if (rc) {
		fprintf(stderr, "rgtfs: %s\n", err);
		goto out_cmd;
	}
	cfg.cache_dir = opts.cache ? absolute(opts.cache) :
				     config_default_cache_dir();
	/* Only the default place may be made: a missing parent of an
	 * explicit cache= is a disk that is not mounted, and a cache made
	 * under its mount point would hold the only copy of an archive
	 * where the disk later hides it. */
	if (!opts.cache && cfg.cache_dir)
		make_parents(cfg.cache_dir);
	if (!cfg.cache_dir || make_absolute(&cfg.cache_dir) ||
	    config_paths_absolute(&cfg)) {
		fprintf(stderr, "rgtfs: cannot resolve relative paths: %s\n",
			strerror(errno ? errno : ENOMEM));
		goto out_cfg;
	}
	if (opts.cache_size &&
	    config_parse_size(opts.cache_size, &cfg.cache_size)) {
		fprintf(stderr, "rgtfs: cache_size: cannot parse '%s' "
			"(want e.g. 20G, 512M)\n", opts.cache_size);
		goto out_cfg;
	}

	/* Everything under the mount is read-only; permissions are the
	 * kernel's to check, against the modes we report. */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	fuse_opt_add_arg(&args, "-ofsname=rgtfs");
	fuse_opt_add_arg(&args, "-osubtype=rgtfs");

	ctx.cfg = &cfg;
	ctx.uid = getuid();
	ctx.gid = getgid();
	ctx.mount_time = time(NULL);
	se = fuse_session_new(&args, &rgt_ops, sizeof(rgt_ops), &ctx);
	if (!se)
		goto out_cfg;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, cmd.mountpoint))
		goto out_signals;
	if (fuse_daemonize(cmd.foreground))
		goto out_unmount;
	/* stderr is /dev/null now unless -f: log where a daemon logs. */
	if (!cmd.foreground)
		rgt_log_to_syslog();

	/* After the fork: LMDB environments and threads do not survive it. */
	rc = store_open(cfg.cache_dir, map_size(cfg.cache_size), &ctx.store,
			err, sizeof(err));
	if (rc) {
		rgt_log(RGT_ERR, "%s", err);
		goto out_unmount;
	}
	if (http_global_init()) {
		rgt_log(RGT_ERR, "cannot initialise libcurl");
		goto out_store;
	}
	if (nodes_new(&ctx.nodes))
		goto out_http;
	if (handles_new(&ctx.handles))
		goto out_nodes;
	for (size_t i = 0; i < cfg.nsec; i++)
		ctx.nclouds += !strcmp(cfg.sec[i].kind, "cloud");
	if (ctx.nclouds &&
	    !(ctx.clouds = calloc(ctx.nclouds, sizeof(*ctx.clouds))))
		goto out_handles;
	for (size_t i = 0, k = 0; i < cfg.nsec; i++) {
		if (strcmp(cfg.sec[i].kind, "cloud"))
			continue;
		rc = cloud_open(&cfg.sec[i], &cfg, ctx.store, &ctx.clouds[k++],
				err, sizeof(err));
		if (rc) {
			rgt_log(RGT_ERR, "%s", err);
			goto out_clouds;
		}
	}
	rc = fleet_new(&cfg, ctx.store, &ctx.fleet, err, sizeof(err));
	if (rc) {
		rgt_log(RGT_ERR, "%s", err);
		goto out_clouds;
	}
	struct fetcher_params fp = {
		.store = ctx.store,
		.workers = cfg.workers,
		.max_inflight = 32u << 20,
		.readahead = cfg.readahead,
		/* A read waits for at most two connects on both endpoints and
		 * a few I/O timeouts, never forever. */
		.wait_timeout_ms = 4L * cfg.connect_timeout_ms +
				   4L * cfg.io_timeout_ms,
		.cache_size = cfg.cache_size,
		.pinned = fleet_pinned,
		.pinned_arg = ctx.fleet,
	};
	if (fetcher_new(&fp, &ctx.fetcher))
		goto out_fleet;
	if (fleet_start(ctx.fleet))
		goto out_fetcher;

	if (cmd.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_fetcher;
		fuse_loop_cfg_set_clone_fd(lc, cmd.clone_fd);
		/* libfuse leaves unset values at UINT_MAX. */
		if (cmd.max_idle_threads <= 1000)
			fuse_loop_cfg_set_idle_threads(lc,
						       cmd.max_idle_threads);
		/* libfuse leaves max_threads at UINT_MAX when unset; its
		 * default of 10 is too few: reads of a dead box each hold a
		 * thread for up to the timeouts, and `cat status` must not
		 * queue behind them. */
		fuse_loop_cfg_set_max_threads(lc, cmd.max_threads &&
							  cmd.max_threads <= 1000 ?
						  cmd.max_threads :
						  64);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/* libfuse's loop returns the signal that ended it. A stop by
	 * SIGTERM, SIGINT or SIGHUP (systemd, kill, ^C) is a clean stop:
	 * the unwind below flushes and unmounts as after fusermount3 -u. */
	ret = (ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP) ?
	      0 : 1;

out_fetcher:
	/* The pollers stop first (fleet_free), but the fetcher's writer
	 * calls into the fleet for pins: stop the fetcher before freeing
	 * the fleet. */
	fleet_stop(ctx.fleet);
	fetcher_free(ctx.fetcher);
out_fleet:
	fleet_free(ctx.fleet);
out_clouds:
	for (size_t i = 0; i < ctx.nclouds; i++)
		cloud_free(ctx.clouds[i]);
	free(ctx.clouds);
out_handles:
	handles_free(ctx.handles);
out_nodes:
	nodes_free(ctx.nodes);
out_http:
	http_global_cleanup();
out_store:
	store_close(ctx.store);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_cfg:
	config_cleanup(&cfg);
out_cmd:
	free(cmd.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	free(opts.config);
	free(opts.cache);
	free(opts.cache_size);
	for (int i = 0; i < opts.nnonopt; i++)
		free(opts.nonopt[i]);
	return ret;
}
