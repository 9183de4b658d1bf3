/*
 * cloud.h - a [cloud:NAME] section: an S3-compatible bucket as a remote.
 *
 * One struct cloud per section, made once at mount time: its credentials
 * (s3cred.h), its S3 parameters and one struct remote on xfer_s3_ops whose
 * tree is the whole bucket ("/" is the bucket's root, "/a/b" the key "a/b"
 * or the prefix "a/b/"). The remote keeps a pool of connections and the
 * listings (in memory and in the store, under "cloud"/NAME), exactly as an
 * instance's SSH remote does, so everything above the transport is shared.
 *
 * Where an instance's checkpoints live in the bucket is computed here and
 * nowhere else: cloud_instance_path() maps a path under the box's
 * checkpoint_dir to its place under the section's prefix.
 *
 * Threads: after cloud_open(), every function may be called from any thread.
 */
#ifndef RGT_CLOUD_H
#define RGT_CLOUD_H

#include <stddef.h>

struct cloud;
struct remote;
struct rgt_config;
struct rgt_section;
struct store;

/*
 * Open the section @sec (kind "cloud"). No network. Missing credentials
 * are not an error here: the cloud opens, every read fails with -EACCES
 * and cloud_error() says why (the mount must come up all the same).
 */
int cloud_open(const struct rgt_section *sec, const struct rgt_config *cfg,
	       struct store *st, struct cloud **out, char *err, size_t errlen);
void cloud_free(struct cloud *c);

const char *cloud_name(const struct cloud *c);
const struct rgt_section *cloud_section(const struct cloud *c);
/* The bucket's remote, or NULL when the credentials could not be loaded. */
struct remote *cloud_remote(struct cloud *c);
/* The last problem (credentials, a failed request), "" if none. */
void cloud_error(struct cloud *c, char *buf, size_t len);
/* "s3://bucket (endpoint)" for messages and xattrs; never a secret. */
const char *cloud_where(const struct cloud *c);

/*
 * Pure: the key prefix of an instance, the template @tmpl (default
 * "{platform}/{id}/") with {platform} and {id} filled in, as a tree path
 * ("/vastai/123"; "/" for an empty prefix). -EINVAL for a template or a
 * value that would make an empty segment, "." or ".." (config.c refuses
 * such templates; ids are checked by platform_id_valid()).
 */
int cloud_prefix_path(const char *tmpl, const char *platform, const char *id,
		      char *out, size_t len);

/*
 * Pure: @box_path (at or under @checkpoint_dir, both normalised) mapped to
 * the bucket under @prefix_path. -EINVAL if it is not under it.
 */
int cloud_map_path(const char *prefix_path, const char *checkpoint_dir,
		   const char *box_path, char *out, size_t len);

/* cloud_prefix_path() of @c's template for an instance. */
int cloud_instance_path(const struct cloud *c, const char *platform,
			const char *id, char *out, size_t len);

#endif
