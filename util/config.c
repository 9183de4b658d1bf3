/*
 * config.c - INI file (inih) -> struct rgt_config.
 *
 * DESIGN
 * inih calls us once per key; we append to the current section's key list
 * and, at the end, fill the parsed common fields and validate them. Every
 * message names FILE:LINE so a user can find the bad line. The result is
 * immutable after config_load() returns; threads only read it.
 *
 * Secrets never live in the INI: api_key_env / api_key_file name where the
 * key is. A key literally called "api_key" is rejected with a message that
 * says so, rather than silently ignored.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpath.h"

static const char *const platform_kinds[] = {
	"vastai", "runpod", "lambda", "paperspace", "autodl", NULL,
};

struct parse_ctx {
	struct rgt_config *cfg;
	const char *name;
	char *err;
	size_t errlen;
	int failed;
	struct rgt_section *cur;	/* NULL inside [rgtfs] or before any */
	int in_rgtfs;
	int line;		/* line the reader handed out last */
	FILE *file;		/* source: a file ... */
	const char *text;	/* ... or a string */
};

static int fail(struct parse_ctx *c, int line, const char *fmt, const char *a)
{
	if (!c->failed) {
		int n = snprintf(c->err, c->errlen, "%s:%d: ", c->name, line);
		if (n > 0 && (size_t)n < c->errlen)
			snprintf(c->err + n, c->errlen - n, fmt, a);
	}
	c->failed = 1;
	return 0;	/* stop inih */
}

static int is_platform_kind(const char *k)
{
	for (int i = 0; platform_kinds[i]; i++)
		if (!strcmp(platform_kinds[i], k))
			return 1;
	return 0;
}

static struct rgt_section *add_section(struct parse_ctx *c, const char *hdr,
				       int line)
{
	const char *colon = strchr(hdr, ':');
	char *kind = colon ? strndup(hdr, colon - hdr) : strdup(hdr);
	const char *name = colon ? colon + 1 : hdr;

	if (!kind)
		return NULL;
	/* [vastai], [vastai:work] (a second account), [ssh:NAME] and
	 * [cloud:NAME]; sections of one kind share one directory. */
	bool named = !strcmp(kind, "ssh") || !strcmp(kind, "cloud");
	if (!named && !is_platform_kind(kind)) {
		free(kind);
		fail(c, line, "unknown section [%s]", hdr);
		return NULL;
	}
	if (named && !colon) {
		free(kind);
		fail(c, line, "[%s] needs a name: [KIND:NAME]", hdr);
		return NULL;
	}
	if (!*name || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, "..")) {
		free(kind);
		fail(c, line, "bad section name [%s]", hdr);
		return NULL;
	}
	for (size_t i = 0; i < c->cfg->nsec; i++) {
		if (!strcmp(c->cfg->sec[i].kind, kind) &&
		    !strcmp(c->cfg->sec[i].name, name)) {
			free(kind);
			fail(c, line, "duplicate section [%s]", hdr);
			return NULL;
		}
	}
	struct rgt_section *ns = realloc(c->cfg->sec,
					 (c->cfg->nsec + 1) * sizeof(*ns));
	if (!ns) {
		free(kind);
		return NULL;
	}
	c->cfg->sec = ns;
	struct rgt_section *s = &ns[c->cfg->nsec++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->name = strdup(name);
	s->line = line;
	return s;
}

static int parse_seconds(const char *v, int min, int max, int *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		return -EINVAL;
	*out = (int)n;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcmp(v, "1") || !strcasecmp(v, "on"))
		*out = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		 !strcmp(v, "0") || !strcasecmp(v, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int on_section(struct parse_ctx *c, const char *section, int line)
{
	c->cur = NULL;
	c->in_rgtfs = !strcmp(section, "rgtfs");
	if (c->in_rgtfs)
		return 1;
	if (!add_section(c, section, line)) {
		if (!c->failed)
			fail(c, line, "out of memory%s", "");
		return 0;
	}
	c->cur = &c->cfg->sec[c->cfg->nsec - 1];
	return 1;
}

static int on_key(void *user, const char *section, const char *key,
		  const char *value)
{
	struct parse_ctx *c = user;
	int line = c->line;

	if (c->failed)
		return 0;
	if (!c->in_rgtfs && !c->cur)
		return fail(c, line, "key '%s' outside any section", key);
	if (c->in_rgtfs) {
		int v;
		if (!strcmp(key, "connect_timeout")) {
			if (parse_seconds(value, 1, 600, &v))
				return fail(c, line,
					    "connect_timeout: want 1..600 "
					    "seconds, got '%s'", value);
			c->cfg->connect_timeout_ms = v * 1000;
		} else if (!strcmp(key, "io_timeout")) {
			if (parse_seconds(value, 1, 600, &v))
				return fail(c, line,
					    "io_timeout: want 1..600 seconds, "
					    "got '%s'", value);
			c->cfg->io_timeout_ms = v * 1000;
		} else if (!strcmp(key, "sessions")) {
			if (parse_seconds(value, 1, 16, &v))
				return fail(c, line, "sessions: want 1..16, "
					    "got '%s'", value);
			c->cfg->sessions = v;
		} else if (!strcmp(key, "workers")) {
			if (parse_seconds(value, 1, 64, &v))
				return fail(c, line, "workers: want 1..64, "
					    "got '%s'", value);
			c->cfg->workers = v;
		} else if (!strcmp(key, "readahead")) {
			if (parse_seconds(value, 1, 256, &v))
				return fail(c, line, "readahead: want 1..256 "
					    "MiB, got '%s'", value);
			c->cfg->readahead = v;
		} else {
			return fail(c, line, "unknown key '%s' in [rgtfs]",
				    key);
		}
		return 1;
	}
	struct rgt_section *s = c->cur;
	if (!strcmp(key, "api_key") || !strcmp(key, "secret_key") ||
	    !strcmp(key, "access_key") || !strcmp(key, "password"))
		return fail(c, line,
			    "'%s': secrets are not read from the config; "
			    "use *_env or *_file", key);
	for (size_t i = 0; i < s->nkv; i++)
		if (!strcmp(s->kv[i].key, key))
			return fail(c, line, "duplicate key '%s'", key);
	struct rgt_kv *nkv = realloc(s->kv, (s->nkv + 1) * sizeof(*nkv));
	if (!nkv)
		return fail(c, line, "out of memory%s", "");
	s->kv = nkv;
	nkv[s->nkv].key = strdup(key);
	nkv[s->nkv].val = strdup(value);
	nkv[s->nkv].line = line;
	if (!nkv[s->nkv].key || !nkv[s->nkv].val)
		return fail(c, line, "out of memory%s", "");
	s->nkv++;
	return 1;
}

/*
 * Line reader for ini_parse_stream(). Debian's libinih is built without
 * line numbers and without a callback for empty sections, so the reader
 * counts lines and registers [section] headers itself, before inih sees
 * the keys under them.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	char *r;

	if (c->file) {
		r = fgets(str, num, c->file);
	} else {
		const char *p = c->text;
		if (!*p)
			return NULL;
		int i = 0;
		while (i < num - 1 && p[i] && p[i] != '\n')
			i++;
		if (i < num - 1 && p[i] == '\n')
			i++;
		memcpy(str, p, i);
		str[i] = '\0';
		c->text = p + i;
		r = str;
	}
	if (!r)
		return NULL;
	c->line++;
	const char *q = str;
	while (*q == ' ' || *q == '\t')
		q++;
	if (*q == '[' && !c->failed) {
		const char *e = strchr(q, ']');
		if (!e) {
			fail(c, c->line, "unterminated section header%s", "");
		} else {
			char name[256];
			size_t n = e - q - 1;
			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, q + 1, n);
			name[n] = '\0';
			on_section(c, name, c->line);
		}
	}
	return r;
}

const char *config_get(const struct rgt_section *sec, const char *key)
{
	for (size_t i = 0; i < sec->nkv; i++)
		if (!strcmp(sec->kv[i].key, key))
			return sec->kv[i].val;
	return NULL;
}

static int key_line(const struct rgt_section *sec, const char *key)
{
	for (size_t i = 0; i < sec->nkv; i++)
		if (!strcmp(sec->kv[i].key, key))
			return sec->kv[i].line;
	return sec->line;
}

const struct rgt_section *config_find(const struct rgt_config *cfg,
				      const char *kind, const char *name)
{
	for (size_t i = 0; i < cfg->nsec; i++)
		if (!strcmp(cfg->sec[i].kind, kind) &&
		    (!name || !strcmp(cfg->sec[i].name, name)))
			return &cfg->sec[i];
	return NULL;
}

char *config_expand_home(const char *path)
{
	if (path[0] == '~' && path[1] == '/') {
		const char *home = getenv("HOME");
		if (!home || !*home)
			home = "/";
		size_t n = strlen(home) + strlen(path);
		char *r = malloc(n);
		if (r)
			snprintf(r, n, "%s%s", home, path + 1);
		return r;
	}
	return strdup(path);
}

/*
 * A [cloud:NAME] section: bucket required; endpoint an http(s) URL with no
 * path, query or credentials (http only for loopback: TLS always on
 * elsewhere); prefix a relative key prefix whose only placeholders are
 * {platform} and {id}; addressing path or virtual.
 */
/* transport = auto | openssh | libssh2, on sections reached over SSH. */
static int check_transport(struct parse_ctx *c, struct rgt_section *s,
			   const char *v)
{
	if (!strcmp(s->kind, "cloud")) {
		fail(c, key_line(s, "transport"), "transport applies to SSH "
		     "sections, not to a bucket ([cloud:%s])", s->name);
		return -EINVAL;
	}
	if (!strcmp(v, "auto"))
		s->transport = RGT_TRANSPORT_AUTO;
	else if (!strcmp(v, "openssh"))
		s->transport = RGT_TRANSPORT_OPENSSH;
	else if (!strcmp(v, "libssh2"))
		s->transport = RGT_TRANSPORT_LIBSSH2;
	else {
		fail(c, key_line(s, "transport"), "transport: want auto, "
		     "openssh or libssh2, got '%s'", v);
		return -EINVAL;
	}
	return 0;
}

static int check_cloud(struct parse_ctx *c, struct rgt_section *s)
{
	const char *b = config_get(s, "bucket");
	if (!b || !*b) {
		fail(c, s->line, "[cloud:%s] needs bucket =", s->name);
		return -EINVAL;
	}
	size_t bl = strlen(b);
	bool bok = bl >= 3 && bl <= 63;
	for (size_t i = 0; bok && i < bl; i++)
		bok = (b[i] >= 'a' && b[i] <= 'z') ||
		      (b[i] >= '0' && b[i] <= '9') || b[i] == '-' ||
		      b[i] == '.';
	if (!bok) {
		fail(c, key_line(s, "bucket"), "bucket: want 3..63 of a-z 0-9 "
		     ". -, got '%s'", b);
		return -EINVAL;
	}
	const char *e = config_get(s, "endpoint");
	if (e) {
		bool https = !strncmp(e, "https://", 8);
		bool http = !strncmp(e, "http://", 7);
		const char *h = e + (https ? 8 : http ? 7 : 0);
		size_t hl = strcspn(h, "/?#");
		bool loop = http && (!strncmp(h, "127.0.0.1", 9) ||
				     !strncmp(h, "localhost", 9) ||
				     !strncmp(h, "[::1]", 5)) &&
			    (h[h[0] == '[' ? 5 : 9] == ':' ||
			     h[h[0] == '[' ? 5 : 9] == '\0' ||
			     h[h[0] == '[' ? 5 : 9] == '/');
		if ((!https && !loop) || !hl || memchr(h, '@', hl) ||
		    (h[hl] && strcmp(h + hl, "/"))) {
			fail(c, key_line(s, "endpoint"), "endpoint: want "
			     "https://HOST[:PORT] (http:// only on loopback), "
			     "no path, got '%s'", e);
			return -EINVAL;
		}
	}
	const char *p = config_get(s, "prefix");
	if (p) {
		bool ok = *p != '/' && !strstr(p, "//") && !strstr(p, "..") &&
			  !strpbrk(p, "\n\r\t\\");
		for (const char *q = strchr(p, '{'); ok && q;
		     q = strchr(q + 1, '{'))
			ok = !strncmp(q, "{platform}", 10) ||
			     !strncmp(q, "{id}", 4);
		if (!ok) {
			fail(c, key_line(s, "prefix"), "prefix: want a key "
			     "prefix like {platform}/{id}/ (no leading '/', "
			     "'//' or '..'; placeholders {platform} {id}), "
			     "got '%s'", p);
			return -EINVAL;
		}
	}
	const char *a = config_get(s, "addressing");
	if (a && strcmp(a, "path") && strcmp(a, "virtual")) {
		fail(c, key_line(s, "addressing"), "addressing: want path or "
		     "virtual, got '%s'", a);
		return -EINVAL;
	}
	return 0;
}

/* Fill the parsed fields of each section; the first problem wins. */
static int finish(struct parse_ctx *c)
{
	for (size_t i = 0; i < c->cfg->nsec; i++) {
		struct rgt_section *s = &c->cfg->sec[i];
		const char *v;

		s->api_url = config_get(s, "api_url");
		s->api_key_env = config_get(s, "api_key_env");
		s->api_key_file = config_get(s, "api_key_file");
		v = config_get(s, "checkpoint_dir");
		if (!v && strcmp(s->kind, "cloud"))
			v = "/workspace/checkpoints";
		if (v && !(s->checkpoint_dir = strdup(v)))
			return -ENOMEM;
		if ((v = config_get(s, "log_path")) &&
		    !(s->log_path = strdup(v)))
			return -ENOMEM;
		s->ssh_user = config_get(s, "ssh_user");
		if (!s->ssh_user)
			s->ssh_user = config_get(s, "user");
		if (!s->ssh_user)
			s->ssh_user = "root";
		s->cloud = config_get(s, "cloud");
		if ((v = config_get(s, "ssh_key"))) {
			s->ssh_key = config_expand_home(v);
			if (!s->ssh_key)
				return -ENOMEM;
		}
		s->poll_interval = 15;
		if ((v = config_get(s, "poll_interval")) &&
		    parse_seconds(v, 1, 86400, &s->poll_interval)) {
			fail(c, key_line(s, "poll_interval"),
			     "poll_interval: want 1..86400 seconds, got '%s'",
			     v);
			return -EINVAL;
		}
		s->stale_after = 60;
		if ((v = config_get(s, "stale_after")) &&
		    parse_seconds(v, 0, 7 * 86400, &s->stale_after)) {
			fail(c, key_line(s, "stale_after"),
			     "stale_after: want 0..604800 seconds, got '%s'",
			     v);
			return -EINVAL;
		}
		if ((v = config_get(s, "strict_host_keys")) &&
		    parse_bool(v, &s->strict_host_keys)) {
			fail(c, key_line(s, "strict_host_keys"),
			     "strict_host_keys: want yes or no, got '%s'", v);
			return -EINVAL;
		}
		if ((v = config_get(s, "transport")) &&
		    check_transport(c, s, v))
			return -EINVAL;
		if ((v = config_get(s, "trust_cloud")) &&
		    parse_bool(v, &s->trust_cloud)) {
			fail(c, key_line(s, "trust_cloud"),
			     "trust_cloud: want yes or no, got '%s'", v);
			return -EINVAL;
		}
		if (s->checkpoint_dir && rpath_normalize(s->checkpoint_dir)) {
			fail(c, key_line(s, "checkpoint_dir"),
			     "checkpoint_dir must be an absolute path without "
			     "'..', got '%s'", config_get(s, "checkpoint_dir"));
			return -EINVAL;
		}
		if (s->checkpoint_dir && !strcmp(s->checkpoint_dir, "/")) {
			fail(c, key_line(s, "checkpoint_dir"),
			     "checkpoint_dir = %s would copy the whole box; "
			     "name the checkpoint directory",
			     config_get(s, "checkpoint_dir"));
			return -EINVAL;
		}
		if (s->log_path && (rpath_normalize(s->log_path) ||
				    !strcmp(s->log_path, "/"))) {
			fail(c, key_line(s, "log_path"),
			     "log_path must be an absolute file path without "
			     "'..', got '%s'", config_get(s, "log_path"));
			return -EINVAL;
		}
		if (!strcmp(s->kind, "ssh") && !config_get(s, "host")) {
			fail(c, s->line, "[ssh:%s] needs host =", s->name);
			return -EINVAL;
		}
		if (!strcmp(s->kind, "cloud") && check_cloud(c, s))
			return -EINVAL;
	}
	/* Names of buckets, once every section is known. */
	for (size_t i = 0; i < c->cfg->nsec; i++) {
		struct rgt_section *s = &c->cfg->sec[i];
		static const char *const refs[] = { "cloud", "archive_to" };
		if (!strcmp(s->kind, "cloud"))
			continue;
		for (size_t k = 0; k < 2; k++) {
			const char *v = config_get(s, refs[k]);
			if (v && !config_find(c->cfg, "cloud", v)) {
				char m[400];
				snprintf(m, sizeof(m), "%s = %.150s, but there "
					 "is no [cloud:%.150s] section",
					 refs[k], v, v);
				fail(c, key_line(s, refs[k]), "%s", m);
				return -EINVAL;
			}
		}
		const struct rgt_section *cs =
			s->cloud ? config_find(c->cfg, "cloud", s->cloud) : NULL;
		const char *pre = cs ? config_get(cs, "prefix") : NULL;
		if (pre && !strstr(pre, "{id}")) {
			/* one copy for every instance: a teardown of one
			 * would verify (and an archive delete drop) another's */
			fail(c, key_line(cs, "prefix"), "prefix must contain "
			     "{id} when a section syncs to it (cloud = %s)",
			     s->cloud);
			return -EINVAL;
		}
		if (s->trust_cloud && !s->cloud) {
			fail(c, key_line(s, "trust_cloud"),
			     "trust_cloud = yes needs cloud = NAME in the "
			     "same section%s", "");
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_common(struct parse_ctx *c, int rc)
{
	if (rc > 0 && !c->failed)
		fail(c, rc, "syntax error%s", "");
	if (rc < 0 && !c->failed) {
		snprintf(c->err, c->errlen, "%s: cannot read: %s", c->name,
			 strerror(errno ? errno : ENOENT));
		return -ENOENT;
	}
	if (c->failed)
		return -EINVAL;
	return finish(c) ? -EINVAL : 0;
}

static void defaults(struct rgt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->connect_timeout_ms = 10000;
	cfg->io_timeout_ms = 20000;
	/* Tuned for rented boxes tens of ms away (100 ms RTT: 22 -> 41 MiB/s
	 * against 4/8/16); on loopback, where the client is CPU-bound, they
	 * change little. 8 sessions stay under sshd's MaxStartups of 10. */
	cfg->sessions = 8;
	cfg->workers = 12;
	cfg->readahead = 32;
}

int config_parse_string(const char *text, const char *name,
			struct rgt_config *out, char *err, size_t errlen)
{
	struct parse_ctx c = { .cfg = out, .name = name, .err = err,
			       .errlen = errlen };
	defaults(out);
	c.text = text;
	int rc = parse_common(&c, ini_parse_stream(reader, &c, on_key, &c));
	if (rc)
		config_cleanup(out);
	return rc;
}

int config_load(const char *path, struct rgt_config *out, char *err,
		size_t errlen)
{
	struct parse_ctx c = { .cfg = out, .name = path, .err = err,
			       .errlen = errlen };
	defaults(out);
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot read: %s", path,
			 strerror(e));
		return -e;
	}
	c.file = f;
	int rc = parse_common(&c, ini_parse_stream(reader, &c, on_key, &c));
	fclose(f);
	if (!rc && !(out->path = strdup(path)))
		rc = -ENOMEM;
	if (rc)
		config_cleanup(out);
	return rc;
}

void config_cleanup(struct rgt_config *cfg)
{
	for (size_t i = 0; i < cfg->nsec; i++) {
		struct rgt_section *s = &cfg->sec[i];
		for (size_t k = 0; k < s->nkv; k++) {
			free(s->kv[k].key);
			free(s->kv[k].val);
		}
		free(s->kv);
		free(s->kind);
		free(s->name);
		free(s->ssh_key);
		free(s->checkpoint_dir);
		free(s->log_path);
	}
	free(cfg->sec);
	free(cfg->path);
	free(cfg->cache_dir);
	memset(cfg, 0, sizeof(*cfg));
}

int config_parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	if (shift && n > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)n << shift;
	return 0;
}

static char *xdg_path(const char *env, const char *fallback,
		      const char *leaf)
{
	const char *base = getenv(env);
	char tmp[PATH_MAX];
	if (base && base[0] == '/') {
		snprintf(tmp, sizeof(tmp), "%s/rgtfs%s", base, leaf);
	} else {
		const char *home = getenv("HOME");
		snprintf(tmp, sizeof(tmp), "%s/%s/rgtfs%s",
			 home && *home ? home : "/", fallback, leaf);
	}
	return strdup(tmp);
}

char *config_default_path(void)
{
	return xdg_path("XDG_CONFIG_HOME", ".config", "/config.ini");
}

char *config_default_cache_dir(void)
{
	return xdg_path("XDG_CACHE_HOME", ".cache", "");
}
