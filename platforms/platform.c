/*
 * platform.c - the registry of platform adapters and the helpers they share
 * (see platform.h).
 *
 * DESIGN
 *
 * - The registry is a static array of ops tables, searched by section kind.
 *   Adding a platform is one line here plus its file in meson.build.
 * - API keys are loaded here, once per adapter open, so every adapter finds
 *   its key the same way: api_key_env, else api_key_file, else the vendor
 *   CLI's own key file. A key is a single token of printable ASCII; anything
 *   else (an empty file, a key with a space or a newline in the middle) is
 *   refused, because it would either fail obscurely at the API or, worse,
 *   split an HTTP header. Messages name the variable or the file, never the
 *   key, and scratch copies of the key are wiped before they are freed.
 * - Instance ids become directory names, so platform_id_valid() is strict:
 *   [A-Za-z0-9._-], at most RGT_ID_MAX-1 bytes, and no leading '.' (that
 *   would hide the directory and could collide with MOUNT/<platform>/.error)
 *   or '-' (it would read as an option to the shell tools users point at
 *   the tree).
 * - A GPU name for the fleet view is sanitised here, once for every
 *   adapter: it lands in one tab-separated line, so nothing that breaks
 *   or reorders a line survives, and it is cut on a character boundary
 *   because a split UTF-8 sequence would make the whole line unreadable.
 */
#include "platform.h"
#include "autodl.h"
#include "config.h"
#include "lambda.h"
#include "log.h"
#include "paperspace.h"
#include "runpod.h"
#include "ssh.h"
#include "vastai.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A key file larger than this is not a key file. */
#define KEY_FILE_MAX 4096

static const struct platform_ops *const platforms[] = {
    &vastai_platform_ops,
    &lambda_platform_ops,
    &paperspace_platform_ops,
    &autodl_platform_ops,
    &ssh_platform_ops,
    &runpod_platform_ops,
};

const char *rgt_state_name(enum rgt_state st)
{
	static const char *const names[] = {
	    [RGT_ST_UNKNOWN] = "unknown",
	    [RGT_ST_PROVISIONING] = "provisioning",
	    [RGT_ST_RUNNING] = "running",
	    [RGT_ST_STOPPED] = "stopped",
	    [RGT_ST_PREEMPTED] = "preempted",
	    [RGT_ST_OFFLINE] = "offline",
	    [RGT_ST_DESTROYING] = "destroying",
	    [RGT_ST_GONE] = "gone",
	};

	if ((unsigned int)st >= sizeof(names) / sizeof(names[0]) || !names[st])
		return "unknown";
	return names[st];
}

void rgt_facts_init(struct rgt_facts *f)
{
	f->gpu[0] = 0;
	f->gpu_count = -1;
	f->usd_per_hour = -1;
	f->started = 0;
}

/*
 * The length of the well-formed UTF-8 character at @s (@n bytes left),
 * its code point in *@cp; 0 for a byte that starts none (a stray
 * continuation, an overlong form, a surrogate, past U+10FFFF, cut short).
 */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * Characters that would break or disguise a line of fleet.tsv: C0 (tab
 * and newline included), DEL, C1, the Unicode line and paragraph
 * separators, and the marks that reorder text on a terminal.
 */
static bool breaks_line(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 ||
	       c == 0x2029 || c == 0x200e || c == 0x200f ||
	       (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

void rgt_facts_set_gpu(struct rgt_facts *f, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

	while (s && i < n) {
		uint32_t c;
		size_t len = utf8_char(u + i, n - i, &c);

		if (!len) {
			i++;
			continue;
		}
		if (breaks_line(c) || c == ' ') {
			/* one space between words, none in front */
			if (o && f->gpu[o - 1] != ' ' && o < RGT_GPU_MAX - 1)
				f->gpu[o++] = ' ';
		} else {
			if (o + len > RGT_GPU_MAX - 1)
				break;
			memcpy(f->gpu + o, u + i, len);
			o += len;
		}
		i += len;
	}
	while (o && f->gpu[o - 1] == ' ')
		o--;
	f->gpu[o] = '\0';
}

void rgt_instance_list_free(struct rgt_instance_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].status_msg);
		free(l->v[i].info_json);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const struct platform_ops *platform_find(const char *kind)
{
	if (!kind)
		return NULL;
	for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++)
		if (!strcmp(platforms[i]->name, kind))
			return platforms[i];
	return NULL;
}

bool platform_id_valid(const char *id)
{
	size_t n;

	if (!id || !id[0] || id[0] == '.' || id[0] == '-')
		return false;
	for (n = 0; id[n]; n++) {
		char c = id[n];

		if (n >= RGT_ID_MAX - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

static void wipe_free(char *p, size_t n)
{
	if (!p)
		return;
	explicit_bzero(p, n);
	free(p);
}

/*
 * Trim @s (length @n) in place and check that what is left is one token of
 * printable ASCII. Returns the new length, or -1 if empty, -2 if it holds
 * a space, control or non-ASCII byte.
 */
static long key_trim(char *s, size_t n)
{
	size_t a = 0, b = n;

	while (a < b && (s[a] == ' ' || (s[a] >= '\t' && s[a] <= '\r')))
		a++;
	while (b > a &&
	       (s[b - 1] == ' ' || (s[b - 1] >= '\t' && s[b - 1] <= '\r')))
		b--;
	if (a == b)
		return -1;
	for (size_t i = a; i < b; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return -2;
	memmove(s, s + a, b - a);
	s[b - a] = '\0';
	return (long)(b - a);
}

/*
 * Read the whole of @path (at most KEY_FILE_MAX bytes) into a malloc'd,
 * NUL-terminated buffer of KEY_FILE_MAX + 1 bytes. -errno on failure.
 */
static int read_key_file(const char *path, char **out, size_t *outlen)
{
	struct stat st;
	char *b = NULL;
	size_t n = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out_close;
	}
	if (st.st_size > KEY_FILE_MAX) {
		rc = -EFBIG;
		goto out_close;
	}
	if (st.st_mode & 077)
		rgt_log(RGT_WARN,
			"key file %s is readable by other users "
			"(chmod 600 it)",
			path);
	b = malloc(KEY_FILE_MAX + 1);
	if (!b) {
		rc = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t r = read(fd, b + n, KEY_FILE_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out_free;
		}
		if (r == 0)
			break;
		n += r;
		if (n > KEY_FILE_MAX) {
			rc = -EFBIG;
			goto out_free;
		}
	}
	b[n] = '\0';
	*out = b;
	*outlen = n;
	close(fd);
	return 0;
out_free:
	wipe_free(b, KEY_FILE_MAX + 1);
out_close:
	close(fd);
	return rc;
}

static char *key_from_file(const char *secname, const char *path, bool vendor,
			   char *err, size_t errlen)
{
	char *exp = config_expand_home(path);
	char *b = NULL;
	size_t n = 0;
	long kl;
	int rc;

	if (!exp) {
		snprintf(err, errlen,
			 "%s: cannot expand key file path %s "
			 "(is $HOME set?)",
			 secname, path);
		return NULL;
	}
	rc = read_key_file(exp, &b, &n);
	if (rc == -ENOENT && vendor) {
		snprintf(err, errlen,
			 "%s: no API key: set api_key_env or "
			 "api_key_file, or create %s",
			 secname, path);
		goto out_exp;
	}
	if (rc == -EFBIG) {
		snprintf(err, errlen,
			 "%s: key file %s is larger than %d "
			 "bytes: not a key file",
			 secname, exp, KEY_FILE_MAX);
		goto out_exp;
	}
	if (rc == -EINVAL) {
		snprintf(err, errlen, "%s: key file %s is not a regular file",
			 secname, exp);
		goto out_exp;
	}
	if (rc) {
		snprintf(err, errlen, "%s: cannot read key file %s: %s",
			 secname, exp, strerror(-rc));
		goto out_exp;
	}
	kl = key_trim(b, n);
	if (kl == -1) {
		snprintf(err, errlen, "%s: key file %s is empty", secname, exp);
		goto out_key;
	}
	if (kl == -2) {
		snprintf(err, errlen,
			 "%s: key file %s holds more than one "
			 "token or unexpected characters",
			 secname, exp);
		goto out_key;
	}
	free(exp);
	return b; /* KEY_FILE_MAX + 1 bytes; the caller frees the key */
out_key:
	wipe_free(b, KEY_FILE_MAX + 1);
out_exp:
	free(exp);
	return NULL;
}

static char *key_from_env(const char *secname, const char *var, char *err,
			  size_t errlen)
{
	const char *v = getenv(var);
	char *k;
	size_t n;
	long kl;

	if (!v) {
		snprintf(err, errlen,
			 "%s: api_key_env = %s, but %s is not "
			 "set",
			 secname, var, var);
		return NULL;
	}
	n = strlen(v);
	k = strdup(v);
	if (!k) {
		snprintf(err, errlen, "%s: out of memory", secname);
		return NULL;
	}
	kl = key_trim(k, n);
	if (kl < 0) {
		snprintf(err, errlen,
			 kl == -1 ? "%s: environment variable %s "
				    "is empty"
				  : "%s: environment variable %s holds more "
				    "than one token or unexpected characters",
			 secname, var);
		wipe_free(k, n + 1);
		return NULL;
	}
	return k;
}

char *platform_load_key(const struct rgt_section *sec, const char *vendor_file,
			char *err, size_t errlen)
{
	const char *secname = sec->name	  ? sec->name
			      : sec->kind ? sec->kind
					  : "platform";

	if (err && errlen)
		err[0] = '\0';
	if (sec->api_key_env && sec->api_key_env[0])
		return key_from_env(secname, sec->api_key_env, err, errlen);
	if (sec->api_key_file && sec->api_key_file[0])
		return key_from_file(secname, sec->api_key_file, false, err,
				     errlen);
	if (vendor_file)
		return key_from_file(secname, vendor_file, true, err, errlen);
	snprintf(err, errlen,
		 "%s: no API key: set api_key_env or "
		 "api_key_file",
		 secname);
	return NULL;
}
