/*
 * s3cred.c - where a [cloud:NAME] section's keys come from (see s3cred.h).
 *
 * DESIGN
 *	Three sources, tried in a fixed order, each either complete or an
 *	error that names what is missing: a half-configured source never
 *	falls through to the next one silently, because then a typo in a
 *	variable name would quietly pick up someone else's default profile.
 *	The one exception is the default environment pair: both unset is
 *	normal (the shared credentials file is next).
 *
 *	Key files must be private (no group/other bits), as OpenSSH demands of
 *	private keys: a secret readable by other users is already leaked, and
 *	refusing is the only way the user finds out. The AWS shared
 *	credentials file only gets a warning, because the AWS CLI itself
 *	accepts it that way and refusing would break setups that work with
 *	every other tool.
 *
 *	inih reads the shared credentials file through a line reader of ours.
 *	inih's line buffer (INI_MAX_LINE, 200 bytes on Debian) would cut a
 *	session token silently (a cut token signs every request wrong, and
 *	the 403 would not say why), so the reader follows the [section]
 *	headers itself and takes a "name = value" line too long for inih
 *	whole (up to 16 KiB), handing inih an empty line in its place; a
 *	longer line is an error naming the line.
 */
#include "s3cred.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "log.h"

#define KEYFILE_MAX (64 * 1024)

static void wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void s3cred_cleanup(struct s3_creds *c)
{
	if (!c)
		return;
	wipe_free(c->access_key);
	wipe_free(c->secret_key);
	wipe_free(c->session_token);
	c->access_key = c->secret_key = c->session_token = NULL;
	c->source[0] = '\0';
}

static const char *sec_get(const struct rgt_section *sec, const char *key)
{
	const char *v = sec ? config_get(sec, key) : NULL;

	return v && *v ? v : NULL;
}

/* First line of @path, blanks trimmed, into *@out (malloc'd). */
static int read_key_file(const char *path, const char *what, char **out,
			 char *err, size_t errlen)
{
	char buf[KEYFILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0, b, e;
	int fd, rc = 0;

	*out = NULL;
	/* O_NONBLOCK: a FIFO named as a key file must not hang the mount */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
			 "%s %s: group or others may access it (mode %03o); "
			 "chmod 600 it",
			 what, path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -EACCES;
	}
	while (len < sizeof(buf) &&
	       (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (rc) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
		goto out;
	}
	if (len > KEYFILE_MAX) {
		snprintf(err, errlen, "%s %s: larger than 64 KiB", what, path);
		rc = -EFBIG;
		goto out;
	}
	e = 0;
	while (e < len && buf[e] != '\n' && buf[e] != '\r')
		e++;
	b = 0;
	while (b < e && (buf[b] == ' ' || buf[b] == '\t'))
		b++;
	while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
		e--;
	if (e == b) {
		snprintf(err, errlen, "%s %s: the first line is empty", what,
			 path);
		rc = -EINVAL;
		goto out;
	}
	*out = strndup(buf + b, e - b);
	if (!*out)
		rc = -ENOMEM;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int from_files(const struct rgt_section *sec, struct s3_creds *c,
		      char *err, size_t errlen)
{
	const char *ak = sec_get(sec, "access_key_file");
	const char *sk = sec_get(sec, "secret_key_file");
	const char *tk = sec_get(sec, "session_token_file");
	char *akp = NULL, *skp = NULL, *tkp = NULL;
	int rc;

	if (!ak || !sk) {
		snprintf(err, errlen,
			 "%s is set but %s is not (both are needed)",
			 ak ? "access_key_file" : "secret_key_file",
			 ak ? "secret_key_file" : "access_key_file");
		return -EINVAL;
	}
	akp = config_expand_home(ak);
	skp = config_expand_home(sk);
	tkp = tk ? config_expand_home(tk) : NULL;
	if (!akp || !skp || (tk && !tkp)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = read_key_file(akp, "access_key_file", &c->access_key, err, errlen);
	if (!rc)
		rc = read_key_file(skp, "secret_key_file", &c->secret_key, err,
				   errlen);
	if (!rc && tkp)
		rc = read_key_file(tkp, "session_token_file", &c->session_token,
				   err, errlen);
	if (!rc)
		snprintf(c->source, sizeof(c->source), "files (%s, %s)", akp,
			 skp);
out:
	free(akp);
	free(skp);
	free(tkp);
	return rc;
}

/* 1: found; 0: the default pair, both unset (try the next source). */
static int from_env(const struct rgt_section *sec, struct s3_creds *c,
		    char *err, size_t errlen)
{
	const char *akn = sec_get(sec, "access_key_env");
	const char *skn = sec_get(sec, "secret_key_env");
	const char *tkn = sec_get(sec, "session_token_env");
	bool named = akn || skn;
	const char *ak, *sk, *tk;

	if (!akn)
		akn = "AWS_ACCESS_KEY_ID";
	if (!skn)
		skn = "AWS_SECRET_ACCESS_KEY";
	ak = getenv(akn);
	sk = getenv(skn);
	if (ak && !*ak)
		ak = NULL;
	if (sk && !*sk)
		sk = NULL;
	if (!ak && !sk && !named)
		return 0;
	if (!ak || !sk) {
		snprintf(err, errlen,
			 "the environment variable %s is %s (it holds the "
			 "%s key%s)",
			 !ak ? akn : skn, "not set or empty",
			 !ak ? "access" : "secret",
			 sec ? "" : "; set both keys");
		return -ENOENT;
	}
	/* AWS_SESSION_TOKEN belongs to the default pair: a section that
	 * names its own key variables names its token variable too. */
	tk = tkn ? getenv(tkn) : named ? NULL : getenv("AWS_SESSION_TOKEN");
	if (tkn && (!tk || !*tk)) {
		snprintf(err, errlen,
			 "the environment variable %s (session_token_env) is "
			 "not set or empty",
			 tkn);
		return -ENOENT;
	}
	c->access_key = strdup(ak);
	c->secret_key = strdup(sk);
	if (tk && *tk)
		c->session_token = strdup(tk);
	if (!c->access_key || !c->secret_key ||
	    (tk && *tk && !c->session_token))
		return -ENOMEM;
	snprintf(c->source, sizeof(c->source), "environment (%s, %s)", akn,
		 skn);
	return 1;
}

struct prof_ctx {
	const char *profile;
	FILE *f;
	int line;
	int long_line;	 /* first line too long even for us, 0: none */
	bool in_section; /* (reader) inside [profile] right now */
	bool seen_profile;
	char *ak, *sk, *tk;
	bool nomem;
};

/* ~/.aws/config spells profiles "[profile NAME]"; the credentials file
 * spells them "[NAME]". Accept both. */
static bool is_profile(const struct prof_ctx *p, const char *section)
{
	return !strcmp(section, p->profile) ||
	       (!strncmp(section, "profile ", 8) &&
		!strcmp(section + 8, p->profile));
}

static void set_slot(struct prof_ctx *p, const char *name, const char *value)
{
	char **slot = NULL;

	if (!strcmp(name, "aws_access_key_id"))
		slot = &p->ak;
	else if (!strcmp(name, "aws_secret_access_key"))
		slot = &p->sk;
	else if (!strcmp(name, "aws_session_token"))
		slot = &p->tk;
	if (!slot)
		return;
	wipe_free(*slot);
	*slot = strdup(value);
	if (!*slot)
		p->nomem = true;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && strchr(" \t\r\n", e[-1]))
		*--e = '\0';
	return s;
}

/*
 * A "name = value" line longer than inih's buffer (a session token is
 * often 1 KiB or more): read whole here, at most LONG_LINE_MAX bytes, and
 * taken when it belongs to the profile. inih then sees an empty line.
 */
#define LONG_LINE_MAX 16384

static void long_line(struct prof_ctx *p, const char *head, size_t n)
{
	char *line = malloc(LONG_LINE_MAX + 1), *eq;
	size_t len = n;
	int ch;

	if (!line) {
		p->nomem = true;
		return;
	}
	memcpy(line, head, n);
	while ((ch = fgetc(p->f)) != EOF && ch != '\n') {
		if (len < LONG_LINE_MAX)
			line[len] = (char)ch;
		len++;
	}
	if (len > LONG_LINE_MAX || line[0] == '[') {
		if (!p->long_line)
			p->long_line = p->line;
	} else {
		line[len] = '\0';
		eq = strchr(line, '=');
		if (eq && p->in_section) {
			p->seen_profile = true;
			*eq = '\0';
			set_slot(p, trim(line), trim(eq + 1));
		}
	}
	OPENSSL_cleanse(line, len < LONG_LINE_MAX ? len : LONG_LINE_MAX);
	free(line);
}

/* fgets for inih that also follows sections and takes long lines. */
static char *prof_reader(char *str, int num, void *stream)
{
	struct prof_ctx *p = stream;
	char *r = fgets(str, num, p->f);
	size_t n;

	if (!r)
		return NULL;
	p->line++;
	n = strlen(str);
	if (n && str[n - 1] != '\n' && !feof(p->f)) {
		long_line(p, str, n);
		OPENSSL_cleanse(str, n);
		str[0] = '\0';
		return r;
	}
	{
		const char *q = str + strspn(str, " \t");

		if (*q == '[') {
			char sec[256];
			const char *e = strchr(q, ']');
			size_t sl = e ? (size_t)(e - q - 1) : 0;

			if (sl >= sizeof(sec))
				sl = sizeof(sec) - 1;
			memcpy(sec, q + 1, sl);
			sec[sl] = '\0';
			p->in_section = is_profile(p, trim(sec));
		}
	}
	return r;
}

static int prof_handler(void *user, const char *section, const char *name,
			const char *value)
{
	struct prof_ctx *p = user;

	if (!is_profile(p, section))
		return 1;
	p->seen_profile = true;
	set_slot(p, name, value);
	return 1;
}

static int from_profile(const struct rgt_section *sec, struct s3_creds *c,
			char *err, size_t errlen)
{
	const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *profile = sec_get(sec, "profile");
	char *path = NULL;
	struct prof_ctx p = {0};
	struct stat st;
	int rc = 0, irc;

	if (!profile)
		profile = getenv("AWS_PROFILE");
	if (!profile || !*profile)
		profile = "default";
	path = file && *file ? strdup(file)
			     : config_expand_home("~/.aws/credentials");
	if (!path)
		return -ENOMEM;
	p.profile = profile;
	p.f = fopen(path, "re");
	if (!p.f) {
		rc = -errno;
		if (rc == -ENOENT)
			snprintf(err, errlen,
				 "no S3 credentials: set AWS_ACCESS_KEY_ID "
				 "and AWS_SECRET_ACCESS_KEY (or the section's "
				 "access_key_env/secret_key_env or "
				 "access_key_file/secret_key_file), or "
				 "create %s",
				 path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	if (!fstat(fileno(p.f), &st) && (st.st_mode & 077))
		rgt_log(RGT_WARN,
			"%s: group or others may read it (mode %03o); "
			"chmod 600 it",
			path, (unsigned)(st.st_mode & 0777));
	irc = ini_parse_stream(prof_reader, &p, prof_handler, &p);
	if (p.nomem) {
		rc = -ENOMEM;
	} else if (p.long_line) {
		snprintf(err, errlen,
			 "%s:%d: line longer than %d bytes (or a long section "
			 "header)",
			 path, p.long_line, LONG_LINE_MAX);
		rc = -EINVAL;
	} else if (irc) {
		snprintf(err, errlen, "%s:%d: not INI syntax", path,
			 irc > 0 ? irc : 0);
		rc = -EINVAL;
	} else if (!p.seen_profile) {
		snprintf(err, errlen, "%s: no profile [%s]", path, profile);
		rc = -ENOENT;
	} else if (!p.ak || !*p.ak || !p.sk || !*p.sk) {
		snprintf(err, errlen, "%s: profile [%s] has no %s", path,
			 profile,
			 !p.ak || !*p.ak ? "aws_access_key_id"
					 : "aws_secret_access_key");
		rc = -ENOENT;
	} else {
		c->access_key = p.ak;
		c->secret_key = p.sk;
		c->session_token = p.tk && *p.tk ? p.tk : NULL;
		if (!c->session_token)
			wipe_free(p.tk);
		p.ak = p.sk = p.tk = NULL;
		snprintf(c->source, sizeof(c->source), "profile %s in %s",
			 profile, path);
	}
out:
	if (p.f)
		fclose(p.f);
	wipe_free(p.ak);
	wipe_free(p.sk);
	wipe_free(p.tk);
	free(path);
	return rc;
}

int s3cred_load(const struct rgt_section *sec, struct s3_creds *out, char *err,
		size_t errlen)
{
	char why[512];
	int rc;

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	if (sec_get(sec, "access_key_file") || sec_get(sec, "secret_key_file"))
		rc = from_files(sec, out, why, sizeof(why));
	else if ((rc = from_env(sec, out, why, sizeof(why))) == 1)
		rc = 0;
	else if (!rc)
		rc = from_profile(sec, out, why, sizeof(why));
	if (rc) {
		s3cred_cleanup(out);
		if (err && errlen)
			snprintf(err, errlen, "%s%s%s%s", sec ? "[cloud:" : "",
				 sec ? sec->name : "", sec ? "] " : "",
				 why[0] ? why : "out of memory");
	}
	return rc;
}
