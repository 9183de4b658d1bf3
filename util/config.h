/*
 * config.h - the INI configuration (SPEC.md "Configuration") as an immutable
 * struct rgt_config, built once in main() before any thread starts and only
 * read afterwards (no locking needed).
 *
 * Sections:  [vastai] [runpod] [lambda] [paperspace] [autodl]  platforms
 *            [ssh:NAME]                                         plain hosts
 *            [cloud:NAME]                                       buckets
 * Unknown keys are kept (config_get() finds them) so adapters can add keys
 * without touching this file; unknown section kinds are an error with
 * file:line. Secrets are never read from the INI itself: the INI names an
 * environment variable or a file.
 */
#ifndef RGT_CONFIG_H
#define RGT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rgt_kv {
	char *key;
	char *val;
	int line;
};

/* How an SSH section's boxes are reached (SPEC: transport =). */
enum rgt_transport {
	RGT_TRANSPORT_AUTO = 0,	/* OpenSSH if usable, else libssh2 */
	RGT_TRANSPORT_OPENSSH,	/* the user's ssh client (xfer_openssh.c) */
	RGT_TRANSPORT_LIBSSH2,	/* in-process (xfer_sftp.c) */
};

struct rgt_section {
	char *kind;		/* "vastai", "ssh", "cloud", ... */
	char *name;		/* "vastai" for platforms, NAME for ssh:/cloud: */
	int line;		/* where the [header] is */
	struct rgt_kv *kv;
	size_t nkv;

	/* Parsed common keys (NULL / defaults when absent). */
	const char *api_url;		/* origin only; adapters append paths */
	const char *api_key_env;
	const char *api_key_file;
	/* Normalised once here (rpath_normalize): no trailing or doubled
	 * slash, so every file id built from them agrees. malloc'd. */
	char *checkpoint_dir;		/* default /workspace/checkpoints */
	char *log_path;
	const char *ssh_user;		/* default root */
	char *ssh_key;			/* ~ expanded; NULL: ssh-agent */
	const char *cloud;
	int poll_interval;		/* seconds, default 15 */
	int stale_after;		/* seconds, default 60 */
	bool strict_host_keys;
	bool trust_cloud;
	enum rgt_transport transport;	/* default auto */
};

struct rgt_config {
	char *path;		/* the INI file */
	char *cache_dir;	/* -o cache= or the XDG default */
	uint64_t cache_size;	/* -o cache_size=, 0 = unbounded */
	struct rgt_section *sec;
	size_t nsec;
	/* tunables (INI [rgtfs] section or defaults) */
	int connect_timeout_ms;	/* TCP+SSH handshake bound, default 10000 */
	int io_timeout_ms;	/* one SFTP/HTTP round trip, default 20000 */
	int sessions;		/* SSH sessions per instance, default 8 */
	int workers;		/* block fetch threads, default 12 */
	int readahead;		/* MiB ahead of a sequential reader, 32 */
};

/*
 * Parse INI file @path into @out. On failure returns -errno and writes
 * "FILE:LINE: reason" into @err.
 */
int config_load(const char *path, struct rgt_config *out, char *err,
		size_t errlen);
/* Parse an INI held in memory (unit tests); @name is used in messages. */
int config_parse_string(const char *text, const char *name,
			struct rgt_config *out, char *err, size_t errlen);
void config_cleanup(struct rgt_config *cfg);

/* Value of @key in @sec, or NULL. Borrowed from @sec. */
const char *config_get(const struct rgt_section *sec, const char *key);
/* Section by kind and name (name NULL: first of that kind), or NULL. */
const struct rgt_section *config_find(const struct rgt_config *cfg,
				      const char *kind, const char *name);

/* "20G", "512M", "1048576" -> bytes. -EINVAL on garbage or overflow. */
int config_parse_size(const char *s, uint64_t *out);
/* Expand a leading "~/" with $HOME. Returns malloc'd string or NULL. */
char *config_expand_home(const char *path);
/* Default paths per SPEC.md (malloc'd). */
char *config_default_path(void);
char *config_default_cache_dir(void);

#endif
