/*
 * cloud.c - a [cloud:NAME] bucket as a remote (see cloud.h).
 *
 * Addressing: an explicit `addressing = path|virtual` wins; otherwise AWS's
 * own endpoint (none given) is virtual-hosted and any other endpoint is
 * path-style, which every S3-compatible server speaks (rclone's default
 * for non-AWS providers too).
 */
#define _GNU_SOURCE /* asprintf */
#include "cloud.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "remote.h"
#include "rpath.h"
#include "s3cred.h"
#include "xfer.h"

#define DEFAULT_PREFIX "{platform}/{id}/"

struct cloud {
	const struct rgt_section *sec;
	struct s3_creds creds;
	bool have_creds;
	char *endpoint;
	struct xfer_s3_params s3;
	struct remote *remote;
	char where[512];
	pthread_mutex_t mu;
	char err[512];		/* mu */
};

static bool seg_ok(const char *s, size_t n)
{
	return n && !(n == 1 && s[0] == '.') &&
	       !(n == 2 && s[0] == '.' && s[1] == '.');
}

int cloud_prefix_path(const char *tmpl, const char *platform, const char *id,
		      char *out, size_t len)
{
	size_t o = 0;
	if (!tmpl)
		tmpl = DEFAULT_PREFIX;
	if (len < 2)
		return -ENAMETOOLONG;
	out[o++] = '/';
	for (const char *p = tmpl; *p;) {
		const char *v;
		size_t vl;
		if (!strncmp(p, "{platform}", 10) || !strncmp(p, "{id}", 4)) {
			v = p[1] == 'p' ? platform : id;
			p += p[1] == 'p' ? 10 : 4;
			vl = strlen(v);
			/* a value fills one segment, never adds a level */
			if (!vl || memchr(v, '/', vl))
				return -EINVAL;
		} else {
			v = p++;
			vl = 1;
		}
		if (o + vl >= len)
			return -ENAMETOOLONG;
		memcpy(out + o, v, vl);
		o += vl;
	}
	while (o > 1 && out[o - 1] == '/')
		o--;
	out[o] = '\0';
	/* every segment non-empty, no "." or ".." */
	for (const char *s = out + 1; o > 1 && *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (!seg_ok(s, n))
			return -EINVAL;
		s += n + (e ? 1 : 0);
		if (e && !*s)
			return -EINVAL;
	}
	return 0;
}

int cloud_map_path(const char *prefix_path, const char *checkpoint_dir,
		   const char *box_path, char *out, size_t len)
{
	size_t cl = strlen(checkpoint_dir);
	const char *rel;
	if (!strcmp(checkpoint_dir, "/"))
		rel = box_path + 1;
	else if (!strncmp(box_path, checkpoint_dir, cl) &&
		 (box_path[cl] == '\0' || box_path[cl] == '/'))
		rel = box_path + cl + (box_path[cl] == '/');
	else
		return -EINVAL;
	if (!*rel) {
		int n = snprintf(out, len, "%s", prefix_path);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	return rpath_join(out, len, prefix_path, rel);
}

int cloud_instance_path(const struct cloud *c, const char *platform,
			const char *id, char *out, size_t len)
{
	return cloud_prefix_path(config_get(c->sec, "prefix"), platform, id,
				 out, len);
}

const char *cloud_name(const struct cloud *c)
{
	return c->sec->name;
}

const struct rgt_section *cloud_section(const struct cloud *c)
{
	return c->sec;
}

struct remote *cloud_remote(struct cloud *c)
{
	return c->remote;
}

const char *cloud_where(const struct cloud *c)
{
	return c->where;
}

void cloud_error(struct cloud *c, char *buf, size_t len)
{
	char rerr[512] = "";
	if (c->remote)
		remote_error(c->remote, rerr, sizeof(rerr));
	pthread_mutex_lock(&c->mu);
	snprintf(buf, len, "%s", c->err[0] ? c->err : rerr);
	pthread_mutex_unlock(&c->mu);
}

int cloud_open(const struct rgt_section *sec, const struct rgt_config *cfg,
	       struct store *st, struct cloud **out, char *err, size_t errlen)
{
	struct cloud *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->sec = sec;
	const char *region = config_get(sec, "region");
	if (!region)
		region = "us-east-1";
	const char *ep = config_get(sec, "endpoint");
	const char *addr = config_get(sec, "addressing");
	bool virt = addr ? !strcmp(addr, "virtual") : !ep;
	if (ep) {
		c->endpoint = strdup(ep);
		size_t n = c->endpoint ? strlen(c->endpoint) : 0;
		if (n && c->endpoint[n - 1] == '/')
			c->endpoint[n - 1] = '\0';
	} else if (asprintf(&c->endpoint, "https://s3.%s.amazonaws.com",
			    region) < 0) {
		c->endpoint = NULL;
	}
	if (!c->endpoint) {
		cloud_free(c);
		return -ENOMEM;
	}
	snprintf(c->where, sizeof(c->where), "s3://%s (%s)",
		 config_get(sec, "bucket"), c->endpoint);

	char cerr[512] = "";
	int rc = s3cred_load(sec, &c->creds, cerr, sizeof(cerr));
	if (rc) {
		/* The mount still comes up; reads say why they fail. */
		snprintf(c->err, sizeof(c->err), "%s", cerr);
		rgt_log(RGT_WARN, "%s", c->err);
		*out = c;
		return 0;
	}
	c->have_creds = true;
	c->s3 = (struct xfer_s3_params){
		.endpoint = c->endpoint,
		.region = region,
		.bucket = config_get(sec, "bucket"),
		.prefix = "",
		.virtual_hosted = virt,
		.creds = &c->creds,
		.ca_file = config_get(sec, "ca_file"),
	};
	struct remote_params p = {
		.platform = "cloud",
		.id = sec->name,
		.connect_timeout_ms = cfg->connect_timeout_ms,
		.io_timeout_ms = cfg->io_timeout_ms,
		.max_sessions = cfg->sessions,
		.store = st,
		.ops = &xfer_s3_ops,
		.s3 = &c->s3,
	};
	rc = remote_new(&p, &c->remote);
	if (rc) {
		snprintf(err, errlen, "[cloud:%s]: %s", sec->name,
			 strerror(-rc));
		cloud_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cloud_free(struct cloud *c)
{
	if (!c)
		return;
	remote_free(c->remote);
	s3cred_cleanup(&c->creds);
	free(c->endpoint);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
