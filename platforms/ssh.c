/*
 * ssh.c - the `ssh` kind: a host from an [ssh:NAME] section is one instance
 * NAME under MOUNT/ssh/ (PLATFORMS.md section 6).
 *
 * DESIGN
 *
 * - No control plane. There is no API to ask, so list() asks the host
 *   itself, as cheaply as possible: one TCP connect and the server's SSH
 *   identification line ("SSH-2.0-..."), no key exchange and no
 *   authentication, the whole probe bounded by probe_timeout. A banner is
 *   `running`; a refused or silent port, or a server that answers
 *   something else, is `offline`. Either way list() succeeds with exactly
 *   that one instance and a complete list: the host is configured, so it is
 *   never gone, and an unreachable box is a fact about the box, not an API
 *   error (.error stays for problems with the section itself).
 * - info.json says what was configured and what the probe saw, never the
 *   teardown command's text (it may carry a token) nor a password. It holds
 *   nothing that changes on every poll (no timings), so an idle mount does
 *   not rewrite its record each interval.
 * - Destroy. A host has no destroy verb of its own; without
 *   teardown_command the caps say so (n_destroy 0) and the teardown
 *   archives the verified copy after the re-list and leaves the box alone.
 *   With one, the one verb runs it *locally*, once, after the verified
 *   copy: /bin/sh -c CMD through posix_spawn (fork+exec that is safe in a
 *   threaded process), in its own process group, stdin /dev/null, stdout
 *   and stderr into one pipe of which only the last OUT_TAIL bytes are
 *   kept (the rest is read and dropped, so a chatty command never blocks
 *   and never grows memory), every other descriptor closed, and a
 *   wall-clock bound (teardown_timeout, default 600 s) after which the
 *   whole process group is killed. Its environment is built, not
 *   inherited: a short allow-list (PATH, HOME, USER, locale, ...) plus
 *   RGTFS_INSTANCE, RGTFS_HOST, RGTFS_PORT, RGTFS_USER, so API keys and
 *   passwords in rgtfs's own environment never reach it. Exit 0 is
 *   "accepted"; anything else is refused, with *maybe_sent true, because a
 *   command that ran may have acted before it failed.
 * - The teardown engine notes a verb's name when it is accepted and the
 *   err text only when it is not, so the accepted run's summary (exit
 *   status and the tail of its output, one escaped line) is carried in the
 *   verb's name; a refused run's is in err.
 *
 * Bounds: the probe by probe_timeout (a host name is resolved by the
 * libc's resolver, which its own timeout and attempts bound); the command
 * by teardown_timeout plus the time a SIGKILL takes.
 *
 * REJECTED
 * - Probing with a full SSH login: it would need the key on every poll,
 *   open a session per interval on a box that may be training, and on
 *   OpenSSH 9.8+ count against PerSourcePenalties for the same source the
 *   data sessions come from. A banner is what "the SSH server is up" means.
 *
 * Threads: a struct platform is used by one thread at a time (platform.h).
 * ssh_banner_parse() and ssh_tail_append() are pure and reentrant.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "ssh.h"
#include "config.h"
#include "log.h"
#include "rpath.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE_DEFAULT_S 5
#define TEARDOWN_DEFAULT_S 600
#define OUT_TAIL 4096		/* bytes of the command's output kept */
#define OUT_SHOWN 160		/* of which the report shows the last */
#define DRAIN_GRACE_MS 1000	/* output read after the command exits */
#define IDENT_MAX 256
#define VERB "teardown_command"

struct platform {
	char *name;
	char host[RGT_HOST_MAX];
	int port;
	char user[RGT_USER_MAX];
	char *cmd;		/* NULL: no teardown_command */
	long probe_ms;
	long teardown_ms;
	char label[512];	/* the verb's name as reports show it */
	struct platform_verb verbs[1];
};

/* ---- pure helpers ------------------------------------------------------- */

enum ssh_banner ssh_banner_parse(const char *buf, size_t len, char *ident,
				 size_t identlen, char *why, size_t whylen)
{
	size_t a = 0;

	if (ident && identlen)
		ident[0] = '\0';
	if (why && whylen)
		why[0] = '\0';
	while (a < len) {
		const char *nl = memchr(buf + a, '\n', len - a);
		size_t end = nl ? (size_t)(nl - buf) : len;	/* LF or end */
		size_t n = end - a;

		/* RFC 4253 4.2: at most 255 bytes with the CR LF. */
		if (n > 255) {
			snprintf(why, whylen, "a line of more than 255 bytes "
				 "before any SSH identification");
			return SSH_BANNER_BAD;
		}
		if (!nl)
			return SSH_BANNER_MORE;	/* a valid prefix so far */
		if (n && buf[end - 1] == '\r')
			n--;
		if (n >= 4 && !memcmp(buf + a, "SSH-", 4)) {
			if (!(n >= 8 && !memcmp(buf + a, "SSH-2.0-", 8)) &&
			    !(n >= 9 && !memcmp(buf + a, "SSH-1.99-", 9))) {
				snprintf(why, whylen, "%s",
					 n >= 6 && !memcmp(buf + a, "SSH-1.", 6) ?
						 "the server speaks SSH-1 only" :
						 "an unknown SSH protocol "
						 "version");
				return SSH_BANNER_BAD;
			}
			if (ident && identlen) {
				size_t o = 0;
				for (size_t i = 0; i < n && o + 1 < identlen;
				     i++) {
					unsigned char c = buf[a + i];
					ident[o++] = c >= 0x20 && c < 0x7f ?
							     (char)c : '?';
				}
				ident[o] = '\0';
			}
			return SSH_BANNER_OK;
		}
		if (memchr(buf + a, '\0', n)) {
			snprintf(why, whylen, "NUL byte before any SSH "
				 "identification");
			return SSH_BANNER_BAD;
		}
		a = end + 1;	/* a pre-banner line: skip it */
	}
	return SSH_BANNER_MORE;
}

void ssh_tail_append(char *tail, size_t *tlen, size_t cap, const char *p,
		     size_t n)
{
	if (!cap)
		return;
	if (n >= cap) {
		memcpy(tail, p + n - cap, cap);
		*tlen = cap;
		return;
	}
	if (*tlen + n > cap) {
		size_t drop = *tlen + n - cap;
		memmove(tail, tail + drop, *tlen - drop);
		*tlen -= drop;
	}
	memcpy(tail + *tlen, p, n);
	*tlen += n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_left(int64_t deadline)
{
	int64_t left = deadline - mono_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- open / close ----------------------------------------------------- */

static int int_key(const struct rgt_section *sec, const char *key, long dflt,
		   long min, long max, long *out, char *err, size_t errlen)
{
	const char *v = config_get(sec, key);
	char *end;
	long n;

	*out = dflt;
	if (!v)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		snprintf(err, errlen, "[ssh:%s] %s: want %ld..%ld, got '%s'",
			 sec->name, key, min, max, v);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

static bool printable_token(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static void ssh_close(struct platform *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->cmd);
	free(p);
}

static int ssh_open(const struct rgt_section *sec, struct platform **out,
		    char *err, size_t errlen)
{
	const char *name = sec->name ? sec->name : "";
	const char *host = config_get(sec, "host");
	const char *user = sec->ssh_user ? sec->ssh_user : "root";
	const char *cmd = config_get(sec, "teardown_command");
	struct platform *p;
	long port, probe_s, td_s;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!platform_id_valid(name)) {
		char esc[96];
		snprintf(err, errlen,
			 "[ssh:%s]: the name is the directory under ssh/ and "
			 "must be 1-%d of [A-Za-z0-9._-], not starting with "
			 "'.' or '-'",
			 rpath_escape_s(name, esc, sizeof(esc)),
			 RGT_ID_MAX - 1);
		return -EINVAL;
	}
	if (!host || !*host || strlen(host) >= RGT_HOST_MAX ||
	    !printable_token(host)) {
		snprintf(err, errlen, "[ssh:%s] host: want a host name or "
			 "address", name);
		return -EINVAL;
	}
	if (!*user || strlen(user) >= RGT_USER_MAX || !printable_token(user)) {
		snprintf(err, errlen, "[ssh:%s] user: want a login name", name);
		return -EINVAL;
	}
	if ((rc = int_key(sec, "port", 22, 1, 65535, &port, err, errlen)) ||
	    (rc = int_key(sec, "probe_timeout", PROBE_DEFAULT_S, 1, 120,
			  &probe_s, err, errlen)) ||
	    (rc = int_key(sec, "teardown_timeout", TEARDOWN_DEFAULT_S, 1,
			  86400, &td_s, err, errlen)))
		return rc;
	if (cmd && !cmd[strspn(cmd, " \t")]) {
		snprintf(err, errlen, "[ssh:%s] teardown_command is empty; "
			 "remove the key for a host that is left alone after "
			 "its teardown", name);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->name = strdup(name);
	p->cmd = cmd ? strdup(cmd) : NULL;
	if (!p->name || (cmd && !p->cmd)) {
		ssh_close(p);
		return -ENOMEM;
	}
	snprintf(p->host, sizeof(p->host), "%s", host);
	snprintf(p->user, sizeof(p->user), "%s", user);
	p->port = (int)port;
	p->probe_ms = probe_s * 1000;
	p->teardown_ms = td_s * 1000;
	snprintf(p->label, sizeof(p->label), "%s", VERB);
	p->verbs[0] = (struct platform_verb){p->label, RGT_ST_UNKNOWN};
	*out = p;
	return 0;
}

/* ---- the probe ------------------------------------------------------------ */

struct probe {
	enum rgt_state state;
	const char *result;	/* "banner", "refused", "timeout", ... */
	char ident[IDENT_MAX];	/* on "banner" */
	char msg[320];		/* otherwise: why */
};

/* Connect to @ai by @deadline. The socket, or -errno. */
static int probe_connect(const struct addrinfo *ai, int64_t deadline)
{
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, soerr = 0, rc;

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	for (;;) {
		int t = wait_left(deadline);
		if (!t) {
			close(fd);
			return -ETIMEDOUT;
		}
		rc = poll(&pfd, 1, t);
		if (rc > 0)
			break;
		if (rc < 0 && errno != EINTR) {
			rc = -errno;
			close(fd);
			return rc;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr) {
		close(fd);
		return -soerr;
	}
	return fd;
}

/* Read until a verdict on the banner, EOF, or @deadline. */
static void probe_read(int fd, int64_t deadline, long probe_ms,
		       struct probe *pr)
{
	char buf[SSH_BANNER_MAX];
	size_t len = 0;
	char why[160];

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int t = wait_left(deadline), rc;
		ssize_t r;

		if (!t) {
			pr->result = "timeout";
			snprintf(pr->msg, sizeof(pr->msg),
				 "no SSH banner within %ld s", probe_ms / 1000);
			return;
		}
		rc = poll(&pfd, 1, t);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			pr->result = "error";
			snprintf(pr->msg, sizeof(pr->msg), "poll: %s",
				 strerror(errno));
			return;
		}
		if (!rc)
			continue;	/* the deadline check says so */
		r = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			pr->result = "reset";
			snprintf(pr->msg, sizeof(pr->msg),
				 "connection lost before the SSH banner: %s",
				 strerror(errno));
			return;
		}
		if (r == 0) {
			pr->result = "closed";
			snprintf(pr->msg, sizeof(pr->msg),
				 "the server closed the connection before "
				 "sending an SSH banner");
			return;
		}
		len += (size_t)r;
		switch (ssh_banner_parse(buf, len, pr->ident,
					 sizeof(pr->ident), why,
					 sizeof(why))) {
		case SSH_BANNER_OK:
			pr->state = RGT_ST_RUNNING;
			pr->result = "banner";
			return;
		case SSH_BANNER_BAD:
			pr->result = "garbage";
			snprintf(pr->msg, sizeof(pr->msg),
				 "not an SSH server: %s", why);
			return;
		case SSH_BANNER_MORE:
			break;
		}
		if (len == sizeof(buf)) {
			pr->result = "garbage";
			snprintf(pr->msg, sizeof(pr->msg),
				 "no SSH banner in the first %d bytes",
				 SSH_BANNER_MAX);
			return;
		}
	}
}

static void probe(const struct platform *p, struct probe *pr)
{
	struct addrinfo hints, *res = NULL, *ai;
	int64_t deadline = mono_ms() + p->probe_ms;
	char port[16];
	int gai, fd = -ECONNREFUSED;

	memset(pr, 0, sizeof(*pr));
	pr->state = RGT_ST_OFFLINE;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", p->port);
	gai = getaddrinfo(p->host, port, &hints, &res);
	if (gai) {
		pr->result = "unresolved";
		snprintf(pr->msg, sizeof(pr->msg), "cannot resolve %s: %s",
			 p->host, gai_strerror(gai));
		return;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = probe_connect(ai, deadline);
		if (fd >= 0 || fd == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		pr->result = fd == -ECONNREFUSED ? "refused" :
			     fd == -ETIMEDOUT	 ? "timeout" :
						   "unreachable";
		snprintf(pr->msg, sizeof(pr->msg), "connect to %s port %d: %s",
			 p->host, p->port,
			 fd == -ETIMEDOUT ? "no answer within the probe "
					    "timeout" :
					    strerror(-fd));
		return;
	}
	probe_read(fd, deadline, p->probe_ms, pr);
	close(fd);
}

static char *info_json(const struct platform *p, const struct probe *pr)
{
	json_t *o = json_pack("{s:s,s:i,s:s,s:b,s:{s:s,s:s}}", "host", p->host,
			      "port", p->port, "user", p->user,
			      "teardown_command", p->cmd != NULL, "probe",
			      "result", pr->result,
			      pr->state == RGT_ST_RUNNING ? "banner" : "error",
			      pr->state == RGT_ST_RUNNING ? pr->ident :
							    pr->msg);
	char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	char *r = NULL;

	json_decref(o);
	if (s && asprintf(&r, "%s\n", s) < 0)
		r = NULL;
	free(s);
	return r;
}

static int ssh_list(struct platform *p, struct rgt_instance_list *out,
		    char *err, size_t errlen)
{
	struct rgt_instance *in;
	struct probe pr;
	char esc[sizeof(pr.msg) + 64];

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	probe(p, &pr);
	in = calloc(1, sizeof(*in));
	if (!in) {
		snprintf(err, errlen, "ssh/%s: out of memory", p->name);
		return -ENOMEM;
	}
	snprintf(in->id, sizeof(in->id), "%s", p->name);
	/* A plain host has no control plane to say its GPU or price: all
	 * unknown, which calloc's zeros would not be ("0 GPUs, $0/h"). */
	rgt_facts_init(&in->facts);
	in->state = pr.state;
	/* a name or an error text may hold anything: one escaped line */
	in->status_msg = strdup(rpath_escape_s(pr.state == RGT_ST_RUNNING ?
						       pr.ident : pr.msg,
					       esc, sizeof(esc)));
	in->info_json = info_json(p, &pr);
	in->ep[0] = (struct rgt_endpoint){.port = p->port};
	snprintf(in->ep[0].host, sizeof(in->ep[0].host), "%s", p->host);
	snprintf(in->ep[0].user, sizeof(in->ep[0].user), "%s", p->user);
	in->n_ep = 1;
	if (!in->status_msg || !in->info_json) {
		free(in->status_msg);
		free(in->info_json);
		free(in);
		snprintf(err, errlen, "ssh/%s: out of memory", p->name);
		return -ENOMEM;
	}
	out->v = in;
	out->n = 1;
	out->complete = true;	/* a configured host is never gone */
	return 0;
}

/* ---- caps and the teardown command ---------------------------------------- */

static void ssh_caps(struct platform *p, struct platform_caps *out)
{
	*out = (struct platform_caps){
	    .destroy = p->cmd ? p->verbs : NULL,
	    .n_destroy = p->cmd ? 1 : 0,
	    .confirm_by_list = false,	/* the host stays configured */
	};
}

/* What the command may see of rgtfs's environment: nothing secret. */
static const char *const env_allow[] = {
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL",
	"LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR", "SSH_AUTH_SOCK", NULL,
};

#define ENV_MAX 20

static void env_free(char **envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		free(envp[i]);
}

static int env_add(char **envp, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int env_add(char **envp, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (*n + 1 >= ENV_MAX)
		return -E2BIG;
	va_start(ap, fmt);
	rc = vasprintf(&envp[*n], fmt, ap);
	va_end(ap);
	if (rc < 0) {
		envp[*n] = NULL;
		return -ENOMEM;
	}
	envp[++*n] = NULL;
	return 0;
}

static int env_build(const struct platform *p, char **envp)
{
	size_t n = 0;
	int rc = 0;

	envp[0] = NULL;
	for (size_t i = 0; !rc && env_allow[i]; i++) {
		const char *v = getenv(env_allow[i]);
		if (v)
			rc = env_add(envp, &n, "%s=%s", env_allow[i], v);
	}
	if (!rc && !getenv("PATH"))
		rc = env_add(envp, &n, "PATH=/usr/local/bin:/usr/bin:/bin");
	if (!rc)
		rc = env_add(envp, &n, "RGTFS_INSTANCE=%s", p->name);
	if (!rc)
		rc = env_add(envp, &n, "RGTFS_HOST=%s", p->host);
	if (!rc)
		rc = env_add(envp, &n, "RGTFS_PORT=%d", p->port);
	if (!rc)
		rc = env_add(envp, &n, "RGTFS_USER=%s", p->user);
	if (!rc)
		rc = env_add(envp, &n, "RGTFS_PLATFORM=ssh");
	if (rc)
		env_free(envp);
	return rc;
}

struct cmd_result {
	int status;		/* waitpid status */
	bool timed_out;
	bool lost;		/* reaped by someone else: status unknown */
	char tail[OUT_TAIL];
	size_t tlen;
	unsigned long long total;	/* output bytes seen */
};

/*
 * Run p->cmd as designed above. 0 once it ran (its outcome in @res), or
 * -errno if it could not be started (then it surely did nothing).
 */
static int run_command(const struct platform *p, struct cmd_result *res,
		       char *err, size_t errlen)
{
	char *envp[ENV_MAX] = {NULL};
	char a0[] = "sh", a1[] = "-c";
	char *argv[] = {a0, a1, p->cmd, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int pfd[2], rc;
	pid_t pid;
	int64_t deadline, exited_at = 0;
	bool reaped = false;

	memset(res, 0, sizeof(*res));
	if (env_build(p, envp)) {
		snprintf(err, errlen, "%s: out of memory", VERB);
		return -ENOMEM;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		rc = -errno;
		env_free(envp);
		snprintf(err, errlen, "%s: pipe: %s", VERB, strerror(-rc));
		return rc;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
					      POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	env_free(envp);
	close(pfd[1]);
	if (rc) {
		close(pfd[0]);
		snprintf(err, errlen, "%s could not be started: %s", VERB,
			 strerror(rc));
		return -rc;
	}
	deadline = mono_ms() + p->teardown_ms;
	for (;;) {
		struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
		int t = wait_left(deadline);
		char buf[4096];

		if (!reaped) {
			pid_t w = waitpid(pid, &res->status, WNOHANG);
			if (w == pid || (w < 0 && errno == ECHILD)) {
				res->lost = w < 0;
				reaped = true;
				exited_at = mono_ms();
			}
		}
		if (reaped && mono_ms() - exited_at > DRAIN_GRACE_MS)
			break;	/* something it left behind holds the pipe */
		if (!t) {
			res->timed_out = !reaped;
			break;
		}
		/* wake often enough to notice the exit */
		rc = poll(&pf, 1, t < 100 ? t : 100);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc <= 0)
			continue;
		ssize_t r = read(pfd[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;	/* EOF: it closed its output */
		res->total += (unsigned long long)r;
		ssh_tail_append(res->tail, &res->tlen, sizeof(res->tail), buf,
				(size_t)r);
	}
	close(pfd[0]);
	/* Output closed (or unreadable): wait for the exit, bounded. */
	while (!reaped && !res->timed_out) {
		pid_t w = waitpid(pid, &res->status, WNOHANG);
		if (w == pid || (w < 0 && errno == ECHILD)) {
			res->lost = w < 0;
			reaped = true;
		} else if (!wait_left(deadline)) {
			res->timed_out = true;
		} else {
			usleep(20000);
		}
	}
	if (res->timed_out) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &res->status, 0) < 0 && errno == EINTR)
			;
	}
	return 0;
}

/* "exited 3; output: ...", one escaped line, into @out. */
static void describe(const struct platform *p, const struct cmd_result *res,
		     char *out, size_t outlen)
{
	char raw[OUT_SHOWN + 1], esc[384], how[64];
	size_t n = res->tlen, a;

	while (n && (res->tail[n - 1] == '\n' || res->tail[n - 1] == '\r' ||
		     res->tail[n - 1] == ' ' || res->tail[n - 1] == '\t'))
		n--;
	a = n > OUT_SHOWN ? n - OUT_SHOWN : 0;
	for (size_t i = a; i < n; i++)
		raw[i - a] = res->tail[i] ? res->tail[i] : ' ';
	raw[n - a] = '\0';
	rpath_escape_s(raw, esc, sizeof(esc));
	if (res->lost)
		snprintf(how, sizeof(how), "ended with an unknown exit status");
	else if (res->timed_out)
		snprintf(how, sizeof(how), "did not finish within %ld s and was "
			 "killed", p->teardown_ms / 1000);
	else if (WIFEXITED(res->status))
		snprintf(how, sizeof(how), "exited %d",
			 WEXITSTATUS(res->status));
	else if (WIFSIGNALED(res->status))
		snprintf(how, sizeof(how), "was killed by signal %d",
			 WTERMSIG(res->status));
	else
		snprintf(how, sizeof(how), "ended with status 0x%x",
			 res->status);
	if (!n)
		snprintf(out, outlen, "%s %s; no output", VERB, how);
	else
		snprintf(out, outlen, "%s %s; output%s: %s", VERB, how,
			 a || res->total > res->tlen ? " (the end)" : "", esc);
}

static int ssh_destroy(struct platform *p, const char *id, size_t step,
		       bool *maybe_sent, char *err, size_t errlen)
{
	struct cmd_result *res;
	char line[512];
	int rc;

	*maybe_sent = false;
	if (err && errlen)
		err[0] = '\0';
	snprintf(p->label, sizeof(p->label), "%s", VERB);
	if (!p->cmd || step != 0 || !id || strcmp(id, p->name)) {
		snprintf(err, errlen, "ssh/%s: no such destroy step", p->name);
		return -EINVAL;
	}
	res = malloc(sizeof(*res));
	if (!res) {
		snprintf(err, errlen, "%s: out of memory", VERB);
		return -ENOMEM;
	}
	rgt_log(RGT_INFO, "ssh/%s: running %s", p->name, VERB);
	rc = run_command(p, res, err, errlen);
	if (rc) {
		free(res);
		return rc;	/* never started: surely did nothing */
	}
	*maybe_sent = true;
	describe(p, res, line, sizeof(line));
	bool ok = !res->timed_out && !res->lost && WIFEXITED(res->status) &&
		  WEXITSTATUS(res->status) == 0;
	rgt_log(ok ? RGT_INFO : RGT_WARN, "ssh/%s: %s %s", p->name, VERB,
		res->timed_out ? "timed out" : ok ? "succeeded" : "failed");
	if (ok) {
		/* accepted: the engine notes the verb's name (see DESIGN) */
		snprintf(p->label, sizeof(p->label), "%s", line);
		rc = 0;
	} else {
		snprintf(err, errlen, "%s", line);
		rc = res->timed_out ? -ETIMEDOUT : -EIO;
	}
	free(res);
	return rc;
}

const struct platform_ops ssh_platform_ops = {
    .name = "ssh",
    .open = ssh_open,
    .list = ssh_list,
    .caps = ssh_caps,
    .destroy = ssh_destroy,
    .close = ssh_close,
};
