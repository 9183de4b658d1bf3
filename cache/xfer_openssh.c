/*
 * xfer_openssh.c - the SSH transport through the user's own OpenSSH client:
 * `ssh -s HOST sftp` as a child process, and SFTP v3 spoken over its stdin
 * and stdout (packets: sftp_wire.c), with many reads in flight.
 *
 * DESIGN
 *	One struct ossh_xfer is one ssh child process (one SSH connection,
 *	one SFTP channel). Its stdin and stdout are one end of an AF_UNIX
 *	socketpair; we keep the other end, non-blocking, and write with
 *	send(MSG_NOSIGNAL), so a dead ssh is an EPIPE and never a SIGPIPE
 *	(whatever the process does with that signal). Its stderr is a pipe
 *	drained on every wait, so ssh can never block on it, and the first
 *	ERRTEXT_MAX bytes explain a failure. Every wait is a poll() with a
 *	deadline on CLOCK_MONOTONIC: io_timeout_ms without a byte from the
 *	server is -ETIMEDOUT (a frozen sshd), EOF or EPIPE on the socket is
 *	-ENOTCONN (ssh exited: sshd killed, connection reset); either marks
 *	the handle broken and every later call fails at once.
 *
 *	Host keys. The pin lives in the cache (xp->hostkey, remote.c), as
 *	for libssh2, and ssh must not connect to anything else. ssh-keyscan
 *	first fetches the server's keys without trusting them (a bounded
 *	child); they are offered to the callback in the order ECDSA,
 *	ed25519, RSA (libssh2's: key_pref[]) until one is accepted, so the
 *	first offered is pinned on first use and a box pinned by either
 *	transport is recognised by the other. That one key is written to
 *	a private known_hosts file (mkstemp, 0600, in xp->state_dir or a
 *	mkdtemp'd directory) under a fixed HostKeyAlias, and ssh runs with
 *	StrictHostKeyChecking=yes, that file only, HostKeyAlgorithms of
 *	that key's type and no KnownHostsCommand or connection sharing:
 *	the session that carries the data can only be to the key that was
 *	checked, and a box that changed its key between the scan and the
 *	login fails the login.
 *	The file lives as long as the handle (exec uses it too, and an old
 *	ssh may re-read it on rekey) and is unlinked at close; files left
 *	by a process that died are swept at the next open.
 *
 *	Command line. Our -o options come before ~/.ssh/config is read and
 *	OpenSSH keeps the first value it sees, so the user's config still
 *	supplies what we do not set (ProxyJump, IdentityAgent, ...) but
 *	cannot loosen the host-key rules, fork ssh away, run another command
 *	or open forwardings. Some of those options need OpenSSH 8.7; an
 *	older ssh refuses them ("Bad configuration option": -ENOTSUP, and
 *	auto mode uses libssh2). Fast ciphers first (AES-GCM,
 *	chacha20-poly1305) with the CTR ones kept for older servers. The
 *	child runs in a new session (no terminal: BatchMode, no prompts),
 *	with every other descriptor closed and an environment of named
 *	variables only (HOME, PATH, SSH_AUTH_SOCK, ...), so API keys and
 *	password variables of the daemon never reach it; no secret is ever
 *	in its argv. Passwords are not supported here (-ENOTSUP: remote.c
 *	then uses libssh2).
 *
 *	Reads. One SFTP file handle is kept open per handle (like
 *	xfer_sftp.c), checked with FSTAT when opened (@expect). A pread is
 *	cut into READ requests of the server's max-read-length
 *	(limits@openssh.com; 255 KiB for OpenSSH 9.2, 32 KiB without the
 *	extension), all sent at once (up to QMAX in flight); a reader that
 *	continues where it stopped gets RA_CHUNKS requests of read-ahead
 *	(none: see there). Requests form a queue contiguous in file offset; replies
 *	land straight in the caller's buffer when the request lies inside
 *	the call, else in the request's own buffer. While reads are queued
 *	the socket is read up to the next 13-byte DATA header only, and the
 *	payload is then received straight into that memory (data_direct,
 *	rx_direct): no byte of file data is copied through the receive
 *	buffer. A short DATA asks again for the rest, EOF ends the read,
 *	any other offset throws the queue away (replies still in flight are
 *	then read and dropped by id, as are the replies to CLOSE, which is
 *	never waited for; a payload half received is read to its end and
 *	dropped).
 *
 *	A second session to a box skips ssh-keyscan (kc_get(): the key this
 *	process saw the box prove before; see there why that is safe).
 *
 *	exec runs a second ssh (`ssh ... -- HOST CMD`, stdin /dev/null) with
 *	the same known_hosts file; exit status 255 with one of ssh's own
 *	messages on stderr is a transport failure, anything else the
 *	command's status (a command killed by a signal shows as 255: the
 *	OpenSSH client does not pass exit-signal on).
 *
 *	Errors: SFTP status codes, ssh's messages and hang-ups become errno
 *	in exactly one place, to_errno().
 *
 * THREADS
 *	A handle is used by one thread at a time (xfer.h). posix_spawn is
 *	thread-safe and closes every inherited descriptor above 2 in the
 *	child; every descriptor made here is O_CLOEXEC as well. Children are
 *	always reaped: after EOF, or SIGTERM then SIGKILL, each bounded.
 */
#define _GNU_SOURCE
#include "xfer.h"
#include "sftp_wire.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"

extern char **environ;

/* clang-format off */
#define DEF_CONNECT_MS	15000
#define DEF_IO_MS	30000
#define PATH_BYTES	4096		/* longest path we send */
#define NAME_BYTES	4096		/* longest name we hand upwards */
#define FRAME_MAX	(256 * 1024 + 1024)	/* largest reply accepted */
#define INBUF_BYTES	(1024 * 1024)
#define OUTBUF_MAX	(256 * 1024)	/* requests not yet written */
#define CHUNK_MAX	(256 * 1024)	/* bytes per READ, at most */
#define CHUNK_V3	32768		/* without limits@openssh.com */
#define QMAX		16		/* READs in flight */
/*
 * Read-ahead of a reader that continues where it stopped, in READs. 0:
 * the block fetcher reads ahead by blocks over all sessions, and the next
 * block of one session is as often elsewhere, so READs past the call
 * would be sent by the box and thrown away (200 random 1 MiB reads moved
 * 620 MiB with 8 here, as libssh2's own read-ahead did: xfer_sftp.c).
 */
#define RA_CHUNKS	0
#define IGN_MAX		(2 * QMAX + 8)	/* replies to drop */
#define ERRTEXT_MAX	2048		/* stderr kept for messages */
#define SCAN_MAX	65536		/* ssh-keyscan output */
#define KEYS_MAX	4
#define KEY_B64_MAX	8192
#define REAP_TERM_MS	1000		/* SIGTERM to SIGKILL */
#define REAP_KILL_MS	3000		/* SIGKILL to giving up */
#define CLOSE_GRACE_MS	50		/* EOF to SIGTERM at close */
#define ARGV_MAX	80
#define HK_ALIAS	"rgtfs-checked-host-key"
#define CIPHERS		"aes128-gcm@openssh.com,chacha20-poly1305@openssh.com," \
			"aes128-ctr,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr"
/* clang-format on */

enum cstate { C_SENT, C_DATA, C_EOF, C_ERR };

/* One READ request of the queue (see DESIGN). */
struct chunk {
	uint64_t off;	/* file offset of its first byte */
	uint32_t len;	/* bytes asked for */
	uint32_t id;
	uint32_t got;	/* bytes that arrived (<= len) */
	uint32_t used;	/* of those, handed to callers */
	enum cstate state;
	uint32_t status; /* C_ERR: the SFTP status (0: a local error) */
	int lerr;	 /* C_ERR with status 0: -errno */
	char *dst;	 /* the caller's memory for it, or NULL: own buffer */
};

struct hkey {
	char type[32];
	char *b64;
	unsigned char *blob;
	size_t len;
};

struct ossh_xfer {
	struct xfer base; /* first: xfer.h casts */
	pid_t pid;	  /* ssh -s sftp; 0 once reaped */
	int pidfd;
	int fd;	 /* our end of its stdin/stdout */
	int efd; /* its stderr */
	bool broken;
	bool opening; /* in open(): a hang-up is explained by stderr */
	long io_ms;
	char where[320]; /* user@host:port, for messages */

	/* what exec needs to start another ssh to the same checked key */
	char *host, *user, *key_path;
	int port;
	long cto_ms;
	char *dir;	/* directory of khfile */
	bool own_dir;	/* mkdtemp'd here: removed at close */
	char *khfile;	/* the one-key known_hosts file */
	char hkalg[64]; /* HostKeyAlgorithms for its type */
	struct hkey key; /* the key in it */

	struct buf etext; /* first bytes of ssh's stderr */

	/* SFTP */
	uint32_t next_id;
	uint32_t chunk;
	struct buf out;	 /* requests not yet written */
	size_t out_off;	 /* of which written already */
	unsigned char *in;
	size_t in_len, in_off;
	/* a DATA payload read straight into its chunk's memory (see pump) */
	struct chunk *rx; /* NULL: none */
	char *rx_p;
	size_t rx_left;	  /* with rx NULL: bytes to read and drop */
	bool want_version;
	uint32_t sync_id;
	bool sync_waiting, sync_done;
	struct buf sync; /* copy of the reply to sync_id */
	uint32_t ign[IGN_MAX];
	int n_ign;

	/* the open file */
	unsigned char fh[SFTP_HANDLE_MAX];
	size_t fhlen;
	char *fh_path; /* NULL: no file open */
	struct xfer_attr fh_attr;
	uint64_t next_off; /* where the last pread stopped */
	struct chunk q[QMAX];
	char *qbuf[QMAX]; /* own buffers, x->chunk bytes, made on use */
	int q_head, q_n;

	char name[NAME_BYTES];
};

static atomic_bool swept;

static struct ossh_xfer *to_x(struct xfer *x)
{
	return (struct ossh_xfer *)x;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int poll_ms(int64_t until)
{
	int64_t left = until - now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static int fail(struct ossh_xfer *x, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ossh_xfer *x, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->base.err, sizeof(x->base.err), fmt, ap);
	va_end(ap);
	return err;
}

/* Does line @s (@n bytes) hold a word? ssh's host-key warning opens with
 * a line of '@'. */
static bool says_something(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (isalpha((unsigned char)s[i]))
			return true;
	return false;
}

/* The first line of @b that says something, for a message. */
static void first_line(const struct buf *b, char *out, size_t outlen)
{
	const char *s = b->data ? b->data : "";
	size_t n;

	const char *any = NULL;	/* the first non-empty line */
	for (;;) {
		while (*s == '\n' || *s == '\r')
			s++;
		n = strcspn(s, "\r\n");
		if (n && !any)
			any = s;
		if (!n || says_something(s, n))
			break;
		s += n;
	}
	if (!n && any) {
		s = any;
		n = strcspn(s, "\r\n");
	}
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20)
			out[i] = ' ';
	if (!n)
		snprintf(out, outlen, "no message from ssh");
}

/* ------------------------------------------------------------------ */
/* errors                                                             */

enum fault {
	F_STATUS,  /* @code: an SFTP status the server answered */
	F_GONE,	   /* the ssh process hung up (EOF, EPIPE, it exited) */
	F_TIMEOUT, /* no answer within the io timeout or a deadline */
	F_PROTO,   /* the server broke the protocol */
	F_SYS,	   /* @code: errno of a local call */
	F_EXITED,  /* an ssh run failed: its stderr @text says why */
};

/*
 * ssh's own messages (LogLevel INFO), from connect to hang-up. A command
 * can print these too, but it also chooses its own exit status, so it
 * cannot fool anyone but itself.
 */
static const struct {
	const char *text;
	int err;
} ssh_says[] = {
    {"Host key verification failed", EACCES},
    {"Permission denied", EACCES},
    {"Too many authentication failures", EACCES},
    {"Connection refused", ECONNREFUSED},
    {"Connection timed out", ETIMEDOUT},
    {"Operation timed out", ETIMEDOUT},
    {"Timeout, server", ETIMEDOUT},
    {"No route to host", EHOSTUNREACH},
    {"Network is unreachable", EHOSTUNREACH},
    {"Could not resolve hostname", EHOSTUNREACH},
    {"Name or service not known", EHOSTUNREACH},
    {"subsystem request failed", ENOTSUP},
    {"Bad configuration option", ENOTSUP},
    {"Unsupported option", ENOTSUP},
    {"Unknown cipher", ENOTSUP},
    {"closed by remote host", EIO},
    {"Connection closed by", EIO},
    {"Connection reset", EIO},
    {"Broken pipe", EIO},
    {"client_loop:", EIO},
    {"Read from remote host", EIO},
    {"packet_write_wait", EIO},
    {"kex_exchange_identification", EIO},
    {"ssh_dispatch_run_fatal", EIO},
    {"Unable to negotiate", EIO},
};

/* Is @text one of ssh's own messages (0: no), and which errno. */
static int ssh_message(const char *text)
{
	for (size_t i = 0; text && i < sizeof(ssh_says) / sizeof(ssh_says[0]);
	     i++)
		if (strstr(text, ssh_says[i].text))
			return -ssh_says[i].err;
	return 0;
}

static void break_session(struct ossh_xfer *x)
{
	if (x->broken)
		return;
	x->broken = true;
	/* ssh reads EOF and exits; close() reaps it */
	if (x->fd >= 0)
		shutdown(x->fd, SHUT_RDWR);
}

/*
 * The one place anything becomes an errno: SFTP status codes, hang-ups,
 * timeouts, protocol violations, system errors and ssh's messages.
 * Failures of the session itself mark @x broken.
 */
static int to_errno(struct ossh_xfer *x, enum fault f, long code,
		    const char *text)
{
	int err;

	switch (f) {
	case F_STATUS:
		/* clang-format off */
		switch (code) {
		case SSH_FX_OK:			return 0;
		case SSH_FX_NO_SUCH_FILE:	return -ENOENT;
		case SSH_FX_PERMISSION_DENIED:	return -EACCES;
		case SSH_FX_OP_UNSUPPORTED:	return -ENOTSUP;
		case SSH_FX_NO_CONNECTION:
		case SSH_FX_CONNECTION_LOST:
			break_session(x);
			return -ENOTCONN;
		default: /* EOF where none belongs, FAILURE, BAD_MESSAGE */
			return -EIO;
		}
		/* clang-format on */
	case F_GONE:
		break_session(x);
		if (x->opening && (err = ssh_message(text)) && err != -EIO)
			return err;
		return -ENOTCONN;
	case F_TIMEOUT:
		break_session(x);
		return -ETIMEDOUT;
	case F_PROTO:
		break_session(x);
		return -EIO;
	case F_SYS:
		if (code == EPIPE || code == ECONNRESET || code == ENOTCONN) {
			break_session(x);
			return -ENOTCONN;
		}
		return code > 0 ? -(int)code : -EIO;
	case F_EXITED:
		err = ssh_message(text);
		return err ? err : -EIO;
	}
	return -EIO;
}

/* ------------------------------------------------------------------ */
/* child processes                                                    */

static pthread_once_t prog_once = PTHREAD_ONCE_INIT;
static char *ssh_prog, *keyscan_prog;

static char *find_prog(const char *name)
{
	const char *path = getenv("PATH");
	char *dirs, *save = NULL, *d, full[PATH_MAX];

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	dirs = strdup(path);
	if (!dirs)
		return NULL;
	for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (*d != '/')
			continue; /* a relative PATH entry: never */
		if (snprintf(full, sizeof(full), "%s/%s", d, name) >=
		    (int)sizeof(full))
			continue;
		if (!access(full, X_OK)) {
			free(dirs);
			return strdup(full);
		}
	}
	free(dirs);
	snprintf(full, sizeof(full), "/usr/bin/%s", name);
	return access(full, X_OK) ? NULL : strdup(full);
}

static void find_progs(void)
{
	ssh_prog = find_prog("ssh");
	keyscan_prog = find_prog("ssh-keyscan");
}

/* The child's environment: these names only (no API keys, no passwords). */
static int child_env(char **envp, size_t max)
{
	static const char *const keep[] = {
	    "HOME",	  "USER",	 "LOGNAME", "PATH",
	    "SHELL",	  "LANG",	 "LC_ALL",  "LC_CTYPE",
	    "TZ",	  "TMPDIR",	 "SSH_AUTH_SOCK",
	    "XDG_RUNTIME_DIR",
	};
	size_t n = 0;

	for (char **e = environ; e && *e && n + 1 < max; e++)
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
			size_t l = strlen(keep[i]);

			if (!strncmp(*e, keep[i], l) && (*e)[l] == '=') {
				envp[n++] = *e;
				break;
			}
		}
	envp[n] = NULL;
	return 0;
}

/*
 * Start @prog with @argv; @in, @out, @err become its 0, 1, 2 (-1: /dev/null
 * for stdin). Everything else is closed in the child, which runs in a new
 * session with default signal handling. 0 or -errno.
 */
static int spawn(const char *prog, char *const argv[], int in, int out,
		 int err, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	char *envp[32];
	int rc;

	child_env(envp, sizeof(envp) / sizeof(envp[0]));
	sigemptyset(&none);
	sigemptyset(&dfl);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaddset(&dfl, s);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	if (in >= 0)
		rc = posix_spawn_file_actions_adddup2(&fa, in, 0);
	else
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
						      O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, out, 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, err, 2);
#ifdef HAVE_ADDCLOSEFROM
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	if (!rc)
		rc = posix_spawnattr_setsigmask(&at, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&at, &dfl);
	if (!rc)
		rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
						       POSIX_SPAWN_SETSIGDEF |
						       POSIX_SPAWN_SETSID);
	if (!rc)
		rc = posix_spawn(pid, prog, &fa, &at, argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return fd;
	}
#endif
	return -1;
}

/* Reap @pid if it exits within @ms: 1 (status in *st), 0 still running. */
static int wait_exit(pid_t pid, int pidfd, long ms, int *st)
{
	int64_t until = now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);

		if (r == pid)
			return 1;
		if (r < 0 && errno == ECHILD) {
			/* reaped elsewhere (SIG_IGN): its status is lost, so
			 * it counts as ssh's own failure (255), never as a
			 * command that succeeded */
			*st = 255 << 8;
			return 1;
		}
		if (now_ms() >= until)
			return 0;
		if (pidfd >= 0) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};

			poll(&p, 1, poll_ms(until));
		} else {
			struct timespec ts = {0, 10 * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
}

/* End @pid for good: SIGTERM, then SIGKILL, each bounded; always reaped
 * unless the kernel cannot kill it at all. */
static void reap(pid_t pid, int pidfd, long grace_ms, int *st)
{
	int dummy;

	if (!st)
		st = &dummy;
	if (pid <= 0)
		return;
	if (grace_ms > 0 && wait_exit(pid, pidfd, grace_ms, st))
		return;
	kill(pid, SIGTERM);
	if (wait_exit(pid, pidfd, REAP_TERM_MS, st))
		return;
	kill(pid, SIGKILL);
	if (!wait_exit(pid, pidfd, REAP_KILL_MS, st))
		rgt_log(RGT_WARN, "ssh process %d does not exit after SIGKILL",
			(int)pid);
}

/* Append what fits of @n bytes to @b (stderr: the rest is dropped). */
static void keep_text(struct buf *b, const char *p, size_t n)
{
	size_t room = b->max - b->len;

	buf_append(b, p, n < room ? n : room);
}

/*
 * Drain @ofd into @out (may be NULL: dropped) and @efd into @etext until
 * both are at EOF. @until (monotonic ms, 0: none) bounds the whole run;
 * @idle_ms (0: none) bounds the silence between bytes. 0, -ETIMEDOUT,
 * -EFBIG (@out full), or -errno of a read.
 */
static int drain(int ofd, int efd, struct buf *out, struct buf *etext,
		 int64_t until, long idle_ms)
{
	char tmp[32768];
	int64_t idle_until = idle_ms ? now_ms() + idle_ms : 0;

	while (ofd >= 0 || efd >= 0) {
		struct pollfd p[2];
		int np = 0, oi = -1, ei = -1;
		int64_t t = until;

		if (idle_until && (!t || idle_until < t))
			t = idle_until;
		if (ofd >= 0) {
			oi = np;
			p[np++] = (struct pollfd){.fd = ofd, .events = POLLIN};
		}
		if (efd >= 0) {
			ei = np;
			p[np++] = (struct pollfd){.fd = efd, .events = POLLIN};
		}
		if (t && now_ms() >= t)
			return -ETIMEDOUT;
		int rc = poll(p, np, t ? poll_ms(t) : -1);

		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc <= 0)
			continue;
		for (int i = 0; i < np; i++) {
			ssize_t n;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(p[i].fd, tmp, sizeof(tmp));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0)
				return -errno;
			if (idle_ms && n > 0)
				idle_until = now_ms() + idle_ms;
			if (i == oi) {
				if (n == 0) {
					ofd = -1;
				} else if (out) {
					int arc = buf_append(out, tmp, n);

					if (arc)
						return arc;
				}
			} else if (i == ei) {
				if (n == 0)
					efd = -1;
				else
					keep_text(etext, tmp, n);
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* host keys                                                          */

/*
 * The order of first use is libssh2 1.10's own (xfer_sftp.c negotiates its
 * first supported type: ECDSA, then ed25519, then RSA), so that both
 * transports pin the same key of a box that has several, and either can
 * later serve a box the other pinned. Scanned in two rounds, the second
 * only when the first found nothing the policy accepts.
 */
static const char *const key_pref[] = {
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "ssh-ed25519",	   "ssh-rsa",
};
static const char *const scan_rounds[] = {"ecdsa,ed25519", "rsa"};

static int key_rank(const char *type)
{
	for (size_t i = 0; i < sizeof(key_pref) / sizeof(key_pref[0]); i++)
		if (!strcmp(type, key_pref[i]))
			return (int)i;
	return -1;
}

static void hkeys_free(struct hkey *k, int n)
{
	for (int i = 0; i < n; i++) {
		free(k[i].b64);
		free(k[i].blob);
	}
}

/* Strict base64 of a key blob whose own type string must be @type. */
static int key_decode(const char *type, const char *b64, size_t n,
		      struct hkey *k)
{
	size_t pad = 0, tl = strlen(type);
	unsigned char *blob;
	int len;

	if (!n || n % 4 || n > KEY_B64_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = b64[i];

		if (c == '=') {
			if (i < n - 2)
				return -EINVAL;
			pad++;
		} else if (pad || !(isalnum(c) || c == '+' || c == '/')) {
			return -EINVAL;
		}
	}
	blob = malloc(n / 4 * 3 + 1);
	if (!blob)
		return -ENOMEM;
	len = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)n);
	if (len < 0 || (size_t)len < pad) {
		free(blob);
		return -EINVAL;
	}
	len -= (int)pad;
	/* the blob names its type first: string type */
	if (len < 4 + (int)tl || blob[0] || blob[1] || blob[2] != 0 ||
	    blob[3] != tl || memcmp(blob + 4, type, tl)) {
		free(blob);
		return -EINVAL;
	}
	k->b64 = strndup(b64, n);
	if (!k->b64) {
		free(blob);
		return -ENOMEM;
	}
	snprintf(k->type, sizeof(k->type), "%s", type);
	k->blob = blob;
	k->len = (size_t)len;
	return 0;
}

/*
 * ssh-keyscan's stdout: "NAME TYPE BASE64" lines ('#' lines are comments).
 * Keeps one key per known type, sorted by preference. Returns the count;
 * lines it cannot use are skipped.
 */
static int keys_parse(const char *text, struct hkey *keys)
{
	int n = 0;

	while (text && *text) {
		const char *eol = strchr(text, '\n');
		size_t ll = eol ? (size_t)(eol - text) : strlen(text);
		char line[KEY_B64_MAX + 256], *f[3], *save = NULL;
		int nf = 0, rank;
		struct hkey k;

		if (ll < sizeof(line) && *text != '#') {
			memcpy(line, text, ll);
			line[ll] = '\0';
			for (char *t = strtok_r(line, " \t\r", &save);
			     t && nf < 3; t = strtok_r(NULL, " \t\r", &save))
				f[nf++] = t;
			if (nf == 3 && (rank = key_rank(f[1])) >= 0 &&
			    n < KEYS_MAX) {
				bool dup = false;

				for (int i = 0; i < n; i++)
					dup |= !strcmp(keys[i].type, f[1]);
				if (!dup &&
				    !key_decode(f[1], f[2], strlen(f[2]), &k))
					keys[n++] = k;
			}
		}
		text = eol ? eol + 1 : text + ll;
	}
	/* insertion sort by preference */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && key_rank(keys[j].type) <
					     key_rank(keys[j - 1].type);
		     j--) {
			struct hkey t = keys[j];

			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	return n;
}

/* Why a box gave ssh-keyscan no key: one bounded TCP connect. */
static int tcp_probe(const char *host, int port, int64_t until)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	char ps[16];
	int rc = -EHOSTUNREACH;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host, ps, &hints, &res))
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
				ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		socklen_t sl = sizeof(int);
		int soerr = 0;

		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			rc = 0;
		} else if (errno != EINPROGRESS) {
			rc = -errno;
		} else if (poll(&p, 1, poll_ms(until)) <= 0) {
			rc = -ETIMEDOUT;
		} else {
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
			rc = -soerr;
		}
		close(fd);
		if (!rc || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return rc == -ENETUNREACH ? -EHOSTUNREACH : rc;
}

/* Run ssh-keyscan for @types (a -t list) against the box, bounded by
 * @until; no key at all is *nkeys 0, not an error. */
static int keyscan(struct ossh_xfer *x, int64_t until, const char *types_in,
		   struct hkey *keys, int *nkeys)
{
	char secs[24], port[16], opt_t[] = "-T", opt_p[] = "-p",
					 opt_types[] = "-t", types[32],
					 dashes[] = "--";
	char *argv[] = {keyscan_prog, opt_t,  secs,   opt_p, port,
			opt_types,    types, dashes, x->host, NULL};
	struct buf out, etext;
	int op[2] = {-1, -1}, ep[2] = {-1, -1}, st = 0, rc;
	pid_t pid = 0;
	int pidfd = -1;
	long left = (long)(until - now_ms());

	*nkeys = 0;
	if (left <= 0)
		return fail(x, -ETIMEDOUT, "%s: connect timeout expired",
			    x->where);
	snprintf(secs, sizeof(secs), "%ld", (left + 999) / 1000);
	snprintf(port, sizeof(port), "%d", x->port);
	snprintf(types, sizeof(types), "%s", types_in);
	buf_init(&out, SCAN_MAX);
	buf_init(&etext, ERRTEXT_MAX);
	if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
		rc = fail(x, to_errno(x, F_SYS, errno, NULL), "pipe: %s",
			  strerror(errno));
		goto out;
	}
	rc = spawn(keyscan_prog, argv, -1, op[1], ep[1], &pid);
	close(op[1]);
	close(ep[1]);
	op[1] = ep[1] = -1;
	if (rc) {
		rc = fail(x, to_errno(x, F_SYS, -rc, NULL), "cannot run %s: %s",
			  keyscan_prog, strerror(-rc));
		pid = 0;
		goto out;
	}
	RGT_DEBUG_LOG("%s: ssh-keyscan -t %s (pid %d)", x->where, types,
		      (int)pid);
	pidfd = open_pidfd(pid);
	rc = drain(op[0], ep[0], &out, &etext, until, 0);
	reap(pid, pidfd, rc ? 0 : poll_ms(until) + 100, &st);
	if (rc == -ETIMEDOUT) {
		rc = fail(x, to_errno(x, F_TIMEOUT, 0, NULL),
			  "%s: no host key within the connect timeout",
			  x->where);
		goto out;
	}
	if (rc) {
		rc = fail(x, rc == -EFBIG ? -EIO : rc,
			  "%s: ssh-keyscan: %s", x->where, strerror(-rc));
		goto out;
	}
	*nkeys = keys_parse(out.data, keys);
out:
	if (op[0] >= 0)
		close(op[0]);
	if (ep[0] >= 0)
		close(ep[0]);
	if (pidfd >= 0)
		close(pidfd);
	buf_cleanup(&out);
	buf_cleanup(&etext);
	return rc;
}

/* A path OpenSSH takes verbatim in -o (no quoting, %, ~, $ or spaces). */
static bool plain_path(const char *p)
{
	if (!p || *p != '/')
		return false;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/._+,=@-_", *p))
			return false;
	return true;
}

/* Is @pid a process that is gone (never our own)? */
static bool pid_gone(int pid)
{
	return pid > 0 && pid != getpid() && kill(pid, 0) && errno == ESRCH;
}

/* Unlink the known_hosts files "kh-PID-*" of gone processes in @dir
 * (@all: every file, @dir itself is going). */
static void sweep_files(const char *dir, bool all)
{
	struct dirent *e;
	char path[PATH_MAX];
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		int pid;
		char rest[64];

		if (sscanf(e->d_name, "kh-%d-%63s", &pid, rest) != 2 ||
		    (!all && !pid_gone(pid)))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) <
		    (int)sizeof(path))
			unlink(path);
	}
	closedir(d);
}

/*
 * What a process killed before it closed its sessions left: known_hosts
 * files in @state_dir and "/tmp/rgtfs-ssh-PID-*" directories. Once per
 * process (PIDs that are gone stay gone).
 */
static void sweep_stale(const char *state_dir)
{
	struct dirent *e;
	char path[PATH_MAX];
	DIR *d;

	if (atomic_exchange(&swept, true))
		return;
	if (state_dir)
		sweep_files(state_dir, false);
	d = opendir("/tmp");
	if (!d)
		return;
	while ((e = readdir(d))) {
		int pid;
		char rest[64];

		if (sscanf(e->d_name, "rgtfs-ssh-%d-%63s", &pid, rest) != 2 ||
		    !pid_gone(pid))
			continue;
		if (snprintf(path, sizeof(path), "/tmp/%s", e->d_name) >=
		    (int)sizeof(path))
			continue;
		/* only a real directory of ours: another user's symlink here
		 * must not aim the sweep at live files */
		struct stat st;
		if (lstat(path, &st) || !S_ISDIR(st.st_mode) ||
		    st.st_uid != geteuid())
			continue;
		sweep_files(path, true);
		rmdir(path);
	}
	closedir(d);
}

/* The one-key known_hosts file for @k. */
static int write_known_hosts(struct ossh_xfer *x, const char *state_dir,
			     const struct hkey *k)
{
	char path[PATH_MAX];
	int fd, rc = 0;
	FILE *f;

	bool usable = plain_path(state_dir) &&
		      strlen(state_dir) < sizeof(path) - 64;

	sweep_stale(usable ? state_dir : NULL);
	if (x->dir) {
		/* a second try of this open: the same directory */
	} else if (usable) {
		x->dir = strdup(state_dir);
		if (!x->dir)
			return fail(x, -ENOMEM, "out of memory");
	} else {
		char tmpl[64];

		snprintf(tmpl, sizeof(tmpl), "/tmp/rgtfs-ssh-%d-XXXXXX",
			 (int)getpid());

		if (!mkdtemp(tmpl))
			return fail(x, to_errno(x, F_SYS, errno, NULL),
				    "mkdtemp: %s", strerror(errno));
		x->dir = strdup(tmpl);
		if (!x->dir) {
			rmdir(tmpl);
			return fail(x, -ENOMEM, "out of memory");
		}
		x->own_dir = true;
	}
	snprintf(path, sizeof(path), "%s/kh-%d-XXXXXX", x->dir, (int)getpid());
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return fail(x, to_errno(x, F_SYS, errno, NULL),
			    "cannot create a known_hosts file in %s: %s",
			    x->dir, strerror(errno));
	x->khfile = strdup(path);
	f = fdopen(fd, "w");
	if (!f || !x->khfile) {
		if (f)
			fclose(f);
		else
			close(fd);
		unlink(path);
		free(x->khfile);
		x->khfile = NULL;
		return fail(x, -ENOMEM, "out of memory");
	}
	fchmod(fd, 0600);
	if (fprintf(f, "%s %s %s\n", HK_ALIAS, k->type, k->b64) < 0)
		rc = -EIO;
	if (fclose(f) && !rc)
		rc = -errno;
	if (rc)
		return fail(x, rc, "cannot write %s: %s", x->khfile,
			    strerror(-rc));
	if (!strcmp(k->type, "ssh-rsa"))
		snprintf(x->hkalg, sizeof(x->hkalg),
			 "rsa-sha2-512,rsa-sha2-256");
	else
		snprintf(x->hkalg, sizeof(x->hkalg), "%s", k->type);
	return 0;
}

/*
 * Fetch the box's keys and let the caller's policy pick one: in order of
 * preference, the first it accepts. -EACCES (the policy's reason in @err)
 * if it accepts none.
 */
static int choose_key(struct ossh_xfer *x, const struct xfer_params *p,
		      int64_t until, char *err, size_t errlen, bool *err_set)
{
	struct hkey keys[KEYS_MAX];
	char first[sizeof(x->base.err)] = "";
	int n = 0, seen = 0, rc = 0, chosen = -1;

	for (size_t r = 0; r < sizeof(scan_rounds) / sizeof(scan_rounds[0]);
	     r++) {
		rc = keyscan(x, until, scan_rounds[r], keys, &n);
		if (rc)
			return rc;
		seen += n;
		for (int i = 0; i < n && chosen < 0; i++) {
			char why[384] = "";

			/* a scanned key is unproven: ask, record nothing
			 * (the pin is written after the handshake) */
			xfer_hostkey_fn ask = p->hostkey_peek ? p->hostkey_peek
							      : p->hostkey;
			rc = ask(p->hostkey_arg, keys[i].type, keys[i].blob,
				 keys[i].len, why, sizeof(why));
			if (!rc) {
				chosen = i;
			} else if (rc < 0 && rc != -EACCES) {
				/* the policy could not decide (store error) */
				if (err && errlen && why[0]) {
					snprintf(err, errlen, "%s", why);
					*err_set = true;
				}
				hkeys_free(keys, n);
				return fail(x, rc, "%s",
					    why[0] ? why : strerror(-rc));
			} else if (!first[0]) {
				snprintf(first, sizeof(first), "%s",
					 why[0] ? why : "host key refused");
			}
		}
		if (chosen >= 0)
			break;
		hkeys_free(keys, n);
		n = 0;
	}
	if (chosen >= 0) {
		rc = write_known_hosts(x, p->state_dir, &keys[chosen]);
		if (!rc) {
			x->key = keys[chosen]; /* moved: kept for the cache */
			keys[chosen] = (struct hkey){{0}, NULL, NULL, 0};
		}
		hkeys_free(keys, n);
		return rc;
	}
	if (seen) {
		if (err && errlen) {
			snprintf(err, errlen, "%s", first);
			*err_set = true;
		}
		return fail(x, -EACCES, "%s", first);
	}
	/* ssh-keyscan says nothing about why: ask the network */
	rc = tcp_probe(x->host, x->port, until);
	if (rc)
		return fail(x, rc, "connect to %s port %d: %s", x->host,
			    x->port, strerror(-rc));
	return fail(x, -EIO,
		    "%s: ssh-keyscan got no ecdsa, ed25519 or rsa host key",
		    x->where);
}

/*
 * Keys that a box proved it holds, per host and port (process-wide), so a
 * second session to it skips ssh-keyscan (two key exchanges). Only a hint:
 * ssh is run against the cached key, the caller's policy is asked about
 * it once ssh has verified the box holds it (and before any file is
 * read), and a box whose key changed fails that login, which drops the
 * entry and falls back to the full scan, so the policy always judges a
 * key the box presented during this very open().
 */
#define KC_MAX 64

static pthread_mutex_t kc_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char host[256];
	int port;
	struct hkey key;
	uint64_t used;
} kc[KC_MAX];
static uint64_t kc_clock;

static int key_copy(const struct hkey *k, struct hkey *out)
{
	*out = *k;
	out->b64 = strdup(k->b64);
	out->blob = malloc(k->len ? k->len : 1);
	if (!out->b64 || !out->blob) {
		free(out->b64);
		free(out->blob);
		out->b64 = NULL;
		out->blob = NULL;
		return -ENOMEM;
	}
	memcpy(out->blob, k->blob, k->len);
	return 0;
}

static int kc_find(const char *host, int port)
{
	for (int i = 0; i < KC_MAX; i++)
		if (kc[i].key.b64 && kc[i].port == port &&
		    !strcmp(kc[i].host, host))
			return i;
	return -1;
}

static bool kc_get(const char *host, int port, struct hkey *out)
{
	int i, rc = -ENOENT;

	pthread_mutex_lock(&kc_mu);
	i = kc_find(host, port);
	if (i >= 0) {
		kc[i].used = ++kc_clock;
		rc = key_copy(&kc[i].key, out);
	}
	pthread_mutex_unlock(&kc_mu);
	return rc == 0;
}

static void kc_put(const char *host, int port, const struct hkey *k)
{
	int i, old = 0;

	if (strlen(host) >= sizeof(kc[0].host))
		return;
	pthread_mutex_lock(&kc_mu);
	i = kc_find(host, port);
	if (i < 0) {
		for (i = 0; i < KC_MAX; i++) {
			if (!kc[i].key.b64)
				break;
			if (kc[i].used < kc[old].used)
				old = i;
		}
		if (i == KC_MAX)
			i = old;
	}
	hkeys_free(&kc[i].key, 1);
	kc[i].key = (struct hkey){{0}, NULL, NULL, 0};
	if (!key_copy(k, &kc[i].key)) {
		snprintf(kc[i].host, sizeof(kc[i].host), "%s", host);
		kc[i].port = port;
		kc[i].used = ++kc_clock;
	}
	pthread_mutex_unlock(&kc_mu);
}

/*
 * One ssh-keyscan per box at a time: the sessions a fetch opens together
 * would otherwise each scan (two unauthenticated connections apiece) and
 * run into sshd's MaxStartups. The first claims the box; the others wait
 * (bounded by their own connect deadline) and then find its key cached.
 */
static pthread_once_t kc_once = PTHREAD_ONCE_INIT;
static pthread_cond_t kc_cv;
static struct {
	char host[256];
	int port;
} scanning[KC_MAX];

static void kc_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&kc_cv, &ca);
	pthread_condattr_destroy(&ca);
}

static int scan_find(const char *host, int port)
{
	for (int i = 0; i < KC_MAX; i++)
		if (scanning[i].host[0] && scanning[i].port == port &&
		    !strcmp(scanning[i].host, host))
			return i;
	return -1;
}

/*
 * Claim the scan of @host:@port: 1 (scan it, then scan_done()), 0 if
 * another session scanned it meanwhile (try the cache), -1 if the wait
 * ran out or no slot is free (scan without a claim).
 */
static int scan_claim(const char *host, int port, int64_t until)
{
	struct timespec ts = {until / 1000, (until % 1000) * 1000000L};
	bool waited = false;
	int rc = -1;

	if (strlen(host) >= sizeof(scanning[0].host))
		return -1;
	pthread_once(&kc_once, kc_init);
	pthread_mutex_lock(&kc_mu);
	while (scan_find(host, port) >= 0) {
		waited = true;
		if (pthread_cond_timedwait(&kc_cv, &kc_mu, &ts) == ETIMEDOUT)
			goto out;
	}
	if (waited && kc_find(host, port) >= 0) {
		rc = 0;
		goto out;
	}
	for (int i = 0; i < KC_MAX; i++)
		if (!scanning[i].host[0]) {
			snprintf(scanning[i].host, sizeof(scanning[i].host),
				 "%s", host);
			scanning[i].port = port;
			rc = 1;
			break;
		}
out:
	pthread_mutex_unlock(&kc_mu);
	return rc;
}

static void scan_done(const char *host, int port)
{
	int i;

	pthread_mutex_lock(&kc_mu);
	i = scan_find(host, port);
	if (i >= 0)
		scanning[i].host[0] = '\0';
	pthread_cond_broadcast(&kc_cv);
	pthread_mutex_unlock(&kc_mu);
}

static void kc_forget(const char *host, int port)
{
	int i;

	pthread_mutex_lock(&kc_mu);
	i = kc_find(host, port);
	if (i >= 0) {
		hkeys_free(&kc[i].key, 1);
		kc[i].key = (struct hkey){{0}, NULL, NULL, 0};
	}
	pthread_mutex_unlock(&kc_mu);
}

/* ------------------------------------------------------------------ */
/* the ssh command line                                               */

struct argv {
	char *v[ARGV_MAX];
	char *own[ARGV_MAX];
	int n, nown;
	bool oom;
};

static void arg(struct argv *a, const char *s)
{
	if (a->n < ARGV_MAX - 1)
		a->v[a->n++] = (char *)s;
	else
		a->oom = true;
	a->v[a->n] = NULL;
}

static void argf(struct argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void argf(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s || a->nown >= ARGV_MAX) {
		free(s);
		a->oom = true;
		return;
	}
	a->own[a->nown++] = s;
	arg(a, s);
}

static void argv_free(struct argv *a)
{
	for (int i = 0; i < a->nown; i++)
		free(a->own[i]);
}

/* OpenSSH expands % in -i: double it. */
static char *escape_pct(const char *s)
{
	size_t n = 0;
	char *o, *q;

	for (const char *p = s; *p; p++)
		n += *p == '%' ? 2 : 1;
	o = q = malloc(n + 1);
	if (!o)
		return NULL;
	for (const char *p = s; *p; p++) {
		*q++ = *p;
		if (*p == '%')
			*q++ = '%';
	}
	*q = '\0';
	return o;
}

/* ssh for the SFTP subsystem (@cmd NULL) or for one command. */
static int ssh_argv(struct ossh_xfer *x, struct argv *a, long cto_ms,
		    const char *cmd)
{
	long alive = (x->io_ms + 999) / 1000;

	if (alive < 5)
		alive = 5;
	memset(a, 0, sizeof(*a));
	arg(a, ssh_prog);
	arg(a, "-x");
	arg(a, "-a");
	arg(a, "-T");
	arg(a, "-e");
	arg(a, "none");
	arg(a, "-o");
	arg(a, "BatchMode=yes");
	/* rented boxes get no Kerberos ticket and no host-based login */
	arg(a, "-o");
	arg(a, "GSSAPIAuthentication=no");
	arg(a, "-o");
	arg(a, "GSSAPIDelegateCredentials=no");
	arg(a, "-o");
	arg(a, "HostbasedAuthentication=no");
	arg(a, "-o");
	arg(a, "NoHostAuthenticationForLocalhost=no");
	arg(a, "-o");
	argf(a, "ConnectTimeout=%ld", cto_ms > 0 ? (cto_ms + 999) / 1000 : 1);
	arg(a, "-o");
	argf(a, "ServerAliveInterval=%ld", alive);
	arg(a, "-o");
	arg(a, "ServerAliveCountMax=3");
	arg(a, "-o");
	arg(a, "StrictHostKeyChecking=yes");
	arg(a, "-o");
	argf(a, "UserKnownHostsFile=%s", x->khfile);
	arg(a, "-o");
	arg(a, "GlobalKnownHostsFile=/dev/null");
	arg(a, "-o");
	arg(a, "HostKeyAlias=" HK_ALIAS);
	arg(a, "-o");
	argf(a, "HostKeyAlgorithms=%s", x->hkalg);
	arg(a, "-o");
	arg(a, "KnownHostsCommand=none");
	arg(a, "-o");
	arg(a, "UpdateHostKeys=no");
	arg(a, "-o");
	arg(a, "CheckHostIP=no");
	arg(a, "-o");
	arg(a, "VerifyHostKeyDNS=no");
	arg(a, "-o");
	arg(a, "ControlMaster=no");
	arg(a, "-o");
	arg(a, "ControlPath=none");
	arg(a, "-o");
	arg(a, "ClearAllForwardings=yes");
	arg(a, "-o");
	arg(a, "Tunnel=no");
	arg(a, "-o");
	arg(a, "RemoteCommand=none");
	arg(a, "-o");
	arg(a, "ForkAfterAuthentication=no");
	arg(a, "-o");
	arg(a, "StdinNull=no");
	if (cmd) {
		arg(a, "-o");
		arg(a, "SessionType=default");
	}
	arg(a, "-o");
	arg(a, "PermitLocalCommand=no");
	arg(a, "-o");
	arg(a, "Compression=no");
	arg(a, "-o");
	arg(a, "PasswordAuthentication=no");
	arg(a, "-o");
	arg(a, "KbdInteractiveAuthentication=no");
	arg(a, "-o");
	arg(a, "LogLevel=INFO");
	arg(a, "-c");
	arg(a, CIPHERS);
	arg(a, "-p");
	argf(a, "%d", x->port);
	arg(a, "-l");
	arg(a, x->user);
	if (x->key_path) {
		char *k = escape_pct(x->key_path);

		if (!k) {
			a->oom = true;
		} else if (a->nown < ARGV_MAX) {
			a->own[a->nown++] = k;
			arg(a, "-i");
			arg(a, k);
		} else {
			free(k);
			a->oom = true;
		}
		arg(a, "-o");
		arg(a, "IdentitiesOnly=yes");
	}
	if (!cmd)
		arg(a, "-s");
	arg(a, "--");
	arg(a, x->host);
	arg(a, cmd ? cmd : "sftp");
	return a->oom ? -ENOMEM : 0;
}

/* ------------------------------------------------------------------ */
/* the SFTP session                                                   */

static uint32_t new_id(struct ossh_xfer *x)
{
	return ++x->next_id;
}

static void ign_add(struct ossh_xfer *x, uint32_t id)
{
	x->ign[x->n_ign++] = id;
}

static bool ign_take(struct ossh_xfer *x, uint32_t id)
{
	for (int i = 0; i < x->n_ign; i++)
		if (x->ign[i] == id) {
			x->ign[i] = x->ign[--x->n_ign];
			return true;
		}
	return false;
}

static struct chunk *qat(struct ossh_xfer *x, int i)
{
	return &x->q[(x->q_head + i) % QMAX];
}

/* A READ reply for chunk @c (slot @slot). 0 or a fault. */
static int chunk_reply(struct ossh_xfer *x, struct chunk *c, int slot,
		       const struct sftp_msg *m)
{
	const unsigned char *d;
	const char *t;
	size_t n, tl;
	uint32_t code;

	if (m->type == SSH_FXP_DATA) {
		if (sftp_parse_data(m, &d, &n) || n == 0 || n > c->len)
			return fail(x, to_errno(x, F_PROTO, 0, NULL),
				    "%s: malformed DATA reply (%zu bytes for "
				    "%" PRIu32 ")",
				    x->where, n, c->len);
		if (c->dst) {
			memcpy(c->dst, d, n);
		} else {
			if (!x->qbuf[slot])
				x->qbuf[slot] = malloc(x->chunk);
			if (!x->qbuf[slot]) {
				c->state = C_ERR;
				c->status = 0;
				c->lerr = -ENOMEM;
				return 0;
			}
			memcpy(x->qbuf[slot], d, n);
		}
		c->got = (uint32_t)n;
		c->state = C_DATA;
		return 0;
	}
	if (sftp_parse_status(m, &code, &t, &tl) || code == SSH_FX_OK)
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "%s: unexpected reply type %u to READ", x->where,
			    m->type);
	c->state = code == SSH_FX_EOF ? C_EOF : C_ERR;
	c->status = code;
	return 0;
}

/* One whole packet from the server. 0 or -errno (the session is broken). */
static int dispatch(struct ossh_xfer *x, const unsigned char *pkt, size_t n)
{
	struct sftp_msg m;

	if (sftp_msg_parse(pkt, n, &m))
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "%s: malformed packet", x->where);
	if (x->want_version) {
		if (m.type != SSH_FXP_VERSION)
			return fail(x, to_errno(x, F_PROTO, 0, NULL),
				    "%s: the server did not start with "
				    "VERSION (type %u)",
				    x->where, m.type);
		x->want_version = false;
		goto sync;
	}
	if (m.type == SSH_FXP_VERSION)
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "%s: a second VERSION", x->where);
	if (ign_take(x, m.id))
		return 0;
	if (x->sync_waiting && m.id == x->sync_id)
		goto sync;
	for (int i = 0; i < x->q_n; i++) {
		struct chunk *c = qat(x, i);

		if (c->state == C_SENT && c->id == m.id)
			return chunk_reply(x, c, (x->q_head + i) % QMAX, &m);
	}
	return fail(x, to_errno(x, F_PROTO, 0, NULL),
		    "%s: reply to no request (id %" PRIu32 ")", x->where,
		    m.id);
sync:
	buf_reset(&x->sync);
	if (buf_append(&x->sync, pkt, n))
		return fail(x, -ENOMEM, "out of memory");
	x->sync_waiting = false;
	x->sync_done = true;
	return 0;
}

static int hung_up(struct ossh_xfer *x, int sys);

/* Where chunk @c's payload goes: the caller's memory or its own buffer. */
static char *chunk_mem(struct ossh_xfer *x, struct chunk *c)
{
	int slot = (int)(c - x->q);

	if (c->dst)
		return c->dst;
	if (!x->qbuf[slot])
		x->qbuf[slot] = malloc(x->chunk);
	return x->qbuf[slot];
}

/*
 * The unparsed bytes start with the header of a DATA reply to a queued
 * READ: take its payload out of the buffer and arrange for the rest to be
 * received straight into the chunk's memory. 1 if it did, 0 if this is
 * not such a packet (the caller frames it), -errno.
 */
static int data_direct(struct ossh_xfer *x)
{
	const unsigned char *h = x->in + x->in_off;
	size_t avail = x->in_len - x->in_off, have;
	uint32_t len, id, dlen;
	struct chunk *c = NULL;
	char *mem;

	if (avail < 13 || h[4] != SSH_FXP_DATA)
		return 0;
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	      (uint32_t)h[2] << 8 | h[3];
	id = (uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 |
	     (uint32_t)h[7] << 8 | h[8];
	dlen = (uint32_t)h[9] << 24 | (uint32_t)h[10] << 16 |
	       (uint32_t)h[11] << 8 | h[12];
	for (int i = 0; i < x->q_n && !c; i++)
		if (qat(x, i)->state == C_SENT && qat(x, i)->id == id)
			c = qat(x, i);
	if (!c)
		return 0; /* dropped, or junk: dispatch() says which */
	if (len > FRAME_MAX || len != 9 + (uint64_t)dlen || dlen == 0 ||
	    dlen > c->len)
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "%s: malformed DATA reply (%" PRIu32
			    " bytes for %" PRIu32 ")",
			    x->where, dlen, c->len);
	mem = chunk_mem(x, c);
	have = avail - 13 < dlen ? avail - 13 : dlen;
	if (mem)
		memcpy(mem, h + 13, have);
	c->got = dlen;
	if (!mem) {
		c->state = C_ERR;
		c->status = 0;
		c->lerr = -ENOMEM;
	}
	if (have == dlen) {
		if (mem)
			c->state = C_DATA;
		x->in_off += 13 + dlen;
		return 1;
	}
	/* the rest of the payload is all the socket holds for now */
	x->rx = mem ? c : NULL;
	x->rx_p = mem ? mem + have : NULL;
	x->rx_left = dlen - have;
	x->in_off = x->in_len = 0;
	return 1;
}

/* Receive into the payload under way (or drop it). 1, 0 (nothing), -errno. */
static int rx_direct(struct ossh_xfer *x)
{
	char *to = x->rx ? x->rx_p : (char *)x->in;
	size_t want = x->rx_left;
	ssize_t r;

	if (!x->rx && want > INBUF_BYTES)
		want = INBUF_BYTES;
	r = recv(x->fd, to, want, MSG_DONTWAIT);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r < 0)
		return hung_up(x, errno);
	if (r == 0)
		return hung_up(x, 0);
	x->rx_left -= (size_t)r;
	if (x->rx)
		x->rx_p += r;
	if (!x->rx_left) {
		if (x->rx)
			x->rx->state = C_DATA;
		x->rx = NULL;
	}
	return 1;
}

/* Read what ssh said on stderr so far (never blocks). */
static void drain_stderr(struct ossh_xfer *x)
{
	char tmp[4096];

	while (x->efd >= 0) {
		ssize_t n = read(x->efd, tmp, sizeof(tmp));

		if (n > 0) {
			keep_text(&x->etext, tmp, n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			close(x->efd);
			x->efd = -1;
		}
		break;
	}
}

/* ssh hung up: collect its last words (bounded) and say so. */
static int hung_up(struct ossh_xfer *x, int sys)
{
	char line[200];
	int rc;

	if (x->efd >= 0)
		drain(-1, x->efd, NULL, &x->etext, now_ms() + 1000, 0);
	if (x->efd >= 0) {
		close(x->efd);
		x->efd = -1;
	}
	first_line(&x->etext, line, sizeof(line));
	rc = to_errno(x, F_GONE, sys, x->etext.data);
	return fail(x, rc, "ssh to %s %s: %s", x->where,
		    x->opening ? "failed" : "ended", line);
}

/*
 * One round of I/O: write what is queued, wait (at most until @until) for
 * the socket or stderr, read and dispatch whole packets. 1 if bytes came
 * from the server, 0 if none did, -errno on a broken session.
 */
static int pump(struct ossh_xfer *x, int64_t until)
{
	struct pollfd p[2];
	int np = 1, rc, progress = 0;

	if (x->broken)
		return -ENOTCONN;
	while (x->out_off < x->out.len) {
		ssize_t w = send(x->fd, x->out.data + x->out_off,
				 x->out.len - x->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			x->out_off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return hung_up(x, errno);
	}
	if (x->out_off == x->out.len) {
		buf_reset(&x->out);
		x->out_off = 0;
	}
	p[0] = (struct pollfd){.fd = x->fd, .events = POLLIN};
	if (x->out_off < x->out.len)
		p[0].events |= POLLOUT;
	if (x->efd >= 0)
		p[np++] = (struct pollfd){.fd = x->efd, .events = POLLIN};
	rc = poll(p, np, poll_ms(until));
	if (rc < 0 && errno != EINTR)
		return fail(x, to_errno(x, F_SYS, errno, NULL), "poll: %s",
			    strerror(errno));
	if (rc <= 0)
		return 0;
	if (np > 1 && p[1].revents)
		drain_stderr(x);
	if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	if (x->rx_left)
		return rx_direct(x);
	/* keep room for the largest packet behind the unparsed bytes */
	if (INBUF_BYTES - x->in_len < FRAME_MAX + 4 && x->in_off) {
		memmove(x->in, x->in + x->in_off, x->in_len - x->in_off);
		x->in_len -= x->in_off;
		x->in_off = 0;
	}
	/*
	 * Short of a DATA header (13 bytes), read no further than its end
	 * while READs are queued: a payload then goes straight from the
	 * socket to where it belongs (data_direct), never via this buffer.
	 */
	size_t want = INBUF_BYTES - x->in_len;
	if (x->q_n && x->in_len - x->in_off < 13)
		want = 13 - (x->in_len - x->in_off);
	ssize_t r = recv(x->fd, x->in + x->in_len, want, MSG_DONTWAIT);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r < 0)
		return hung_up(x, errno);
	if (r == 0)
		return hung_up(x, 0);
	x->in_len += (size_t)r;
	progress = 1;
	for (;;) {
		ssize_t fl;

		rc = data_direct(x);
		if (rc < 0)
			return rc;
		if (x->rx_left)
			break;
		if (rc)
			continue;
		fl = sftp_frame(x->in + x->in_off, x->in_len - x->in_off,
				FRAME_MAX);
		if (fl < 0)
			return fail(x, to_errno(x, F_PROTO, 0, NULL),
				    "%s: packet longer than %d bytes",
				    x->where, FRAME_MAX);
		if (fl == 0)
			break;
		rc = dispatch(x, x->in + x->in_off, (size_t)fl);
		if (rc)
			return rc;
		x->in_off += (size_t)fl;
	}
	if (x->in_off == x->in_len)
		x->in_off = x->in_len = 0;
	return progress;
}

typedef bool (*cond_fn)(struct ossh_xfer *x, const void *arg);

/*
 * Pump until @done. Bounded by @until (monotonic ms) when non-zero, else
 * by io_ms without a byte from the server.
 */
static int wait_for(struct ossh_xfer *x, cond_fn done, const void *arg,
		    int64_t until)
{
	int64_t idle = now_ms() + x->io_ms;

	while (!done(x, arg)) {
		int64_t t = until ? until : idle;
		int rc;

		if (now_ms() >= t)
			return fail(x, to_errno(x, F_TIMEOUT, 0, NULL),
				    "%s: no answer from the server within %ld "
				    "ms",
				    x->where,
				    until ? x->cto_ms : x->io_ms);
		rc = pump(x, t);
		if (rc < 0)
			return rc;
		if (rc > 0)
			idle = now_ms() + x->io_ms;
	}
	return 0;
}

static bool sync_arrived(struct ossh_xfer *x, const void *arg)
{
	return x->sync_done;
}

static bool ign_room(struct ossh_xfer *x, const void *arg)
{
	return x->n_ign < IGN_MAX - 1;
}

/* Make room to drop one more reply. */
static int ign_reserve(struct ossh_xfer *x)
{
	return ign_room(x, NULL) ? 0 : wait_for(x, ign_room, NULL, 0);
}

/* A request was appended to x->out: check the builder's result. */
static int queued(struct ossh_xfer *x, int rc, const char *what)
{
	if (rc == -EINVAL)
		return fail(x, -ENAMETOOLONG, "%s: request too long", what);
	if (rc == -EFBIG) /* ssh takes no more: the pumps would have */
		return fail(x, -ENOBUFS, "%s: %zu bytes of requests unsent",
			    what, x->out.len - x->out_off);
	if (rc)
		return fail(x, rc, "%s: %s", what, strerror(-rc));
	return 0;
}

/*
 * Wait for the reply to request @id (already queued) and split it into
 * @m (valid until the next call). @until as wait_for().
 */
static int sync_call(struct ossh_xfer *x, uint32_t id, struct sftp_msg *m,
		     int64_t until)
{
	int rc;

	x->sync_id = id;
	x->sync_waiting = true;
	x->sync_done = false;
	rc = wait_for(x, sync_arrived, NULL, until);
	x->sync_waiting = false;
	if (rc)
		return rc;
	if (sftp_msg_parse(x->sync.data, x->sync.len, m))
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "%s: malformed packet", x->where);
	return 0;
}

/* A reply that should have been @want but is a STATUS (or junk). */
static int status_fail(struct ossh_xfer *x, const struct sftp_msg *m,
		       const char *what, const char *path)
{
	uint32_t code;
	const char *t;
	size_t tl;
	int err;

	if (m->type != SSH_FXP_STATUS || sftp_parse_status(m, &code, &t, &tl) ||
	    code == SSH_FX_OK)
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "%s %s: unexpected reply type %u", what, path,
			    m->type);
	err = to_errno(x, F_STATUS, code, NULL);
	if (err == -EIO)
		return fail(x, err, "%s %s: SFTP status %" PRIu32 " (%.*s)",
			    what, path, code, (int)(tl > 120 ? 120 : tl), t);
	return fail(x, err, "%s %s: %s", what, path, strerror(-err));
}

static void attr_from(const struct sftp_attrs *a, struct xfer_attr *out)
{
	memset(out, 0, sizeof(*out));
	if (a->flags & SSH_FILEXFER_ATTR_SIZE)
		out->size = a->size;
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		out->mode = a->perm;
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME)
		out->mtime = (int64_t)a->mtime;
}

/* INIT/VERSION, then limits@openssh.com if offered: sets x->chunk. */
static int handshake(struct ossh_xfer *x, int64_t until)
{
	struct sftp_msg m;
	struct sftp_cur ext;
	struct sftp_limits lim;
	uint32_t version, id;
	bool limits = false;
	int rc;

	x->want_version = true;
	rc = queued(x, sftp_put_init(&x->out, SFTP_PROTO_VERSION), "init");
	if (!rc)
		rc = sync_call(x, 0, &m, until);
	if (rc)
		return rc;
	if (sftp_parse_version(&m, &version, &ext) || version < 3)
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "%s: SFTP version %" PRIu32 " (want 3)", x->where,
			    version);
	for (;;) {
		const char *name;
		const unsigned char *data;
		size_t nl, dl;
		int e = sftp_ext_next(&ext, &name, &nl, &data, &dl);

		if (e < 0)
			return fail(x, to_errno(x, F_PROTO, 0, NULL),
				    "%s: malformed VERSION", x->where);
		if (!e)
			break;
		if (nl == 18 && !memcmp(name, "limits@openssh.com", 18))
			limits = true;
	}
	x->chunk = CHUNK_V3;
	if (!limits)
		return 0;
	id = new_id(x);
	rc = queued(x,
		    sftp_put_extended(&x->out, id, "limits@openssh.com", NULL,
				      0),
		    "limits");
	if (!rc)
		rc = sync_call(x, id, &m, until);
	if (rc)
		return rc;
	if (sftp_parse_limits(&m, &lim)) {
		RGT_DEBUG_LOG("%s: limits@openssh.com not understood",
			      x->where);
		return 0;
	}
	if (!lim.max_read || lim.max_read > CHUNK_MAX)
		lim.max_read = CHUNK_MAX;
	if (lim.max_read >= 1024)
		x->chunk = (uint32_t)lim.max_read;
	RGT_DEBUG_LOG("%s: SFTP reads of %" PRIu32 " bytes", x->where,
		      x->chunk);
	return 0;
}

/* ------------------------------------------------------------------ */
/* open                                                               */

static void ossh_close(struct xfer *xb);

static bool plain_word(const char *s, size_t max)
{
	if (!s || !*s || *s == '-' || strlen(s) >= max)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '@' ||
		    *s == '\'' || *s == '"' || *s == '\\')
			return false;
	return true;
}

static int start_sftp(struct ossh_xfer *x, int64_t until)
{
	struct argv a;
	int sv[2] = {-1, -1}, ep[2] = {-1, -1}, rc;
	int big = 1 << 20;

	rc = ssh_argv(x, &a, (long)(until - now_ms()), NULL);
	if (rc) {
		argv_free(&a);
		return fail(x, rc, "out of memory");
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    pipe2(ep, O_CLOEXEC)) {
		rc = fail(x, to_errno(x, F_SYS, errno, NULL),
			  "socketpair: %s", strerror(errno));
		goto out;
	}
	/* fewer, larger writes from ssh into our end */
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	rc = spawn(ssh_prog, a.v, sv[1], sv[1], ep[1], &x->pid);
	if (rc) {
		x->pid = 0;
		rc = fail(x, to_errno(x, F_SYS, -rc, NULL), "cannot run %s: %s",
			  ssh_prog, strerror(-rc));
		goto out;
	}
	if (rgt_log_get_level() >= RGT_DEBUG) {
		struct buf line;

		buf_init(&line, 4096);
		for (int i = 0; a.v[i]; i++)
			buf_appendf(&line, "%s%s", i ? " " : "", a.v[i]);
		rgt_log(RGT_DEBUG, "%s: pid %d: %s", x->where, (int)x->pid,
			line.data ? line.data : "");
		buf_cleanup(&line);
	}
	x->pidfd = open_pidfd(x->pid);
	x->fd = sv[0];
	x->efd = ep[0];
	sv[0] = ep[0] = -1;
	fcntl(x->efd, F_SETFL, O_NONBLOCK);
out:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	argv_free(&a);
	return rc;
}

/* Undo start_sftp() and the key file, for a second try of open(). */
static void session_reset(struct ossh_xfer *x)
{
	if (x->fd >= 0)
		close(x->fd);
	if (x->efd >= 0)
		close(x->efd);
	x->fd = x->efd = -1;
	if (x->pid > 0)
		reap(x->pid, x->pidfd, 0, NULL);
	if (x->pidfd >= 0)
		close(x->pidfd);
	x->pid = 0;
	x->pidfd = -1;
	if (x->khfile)
		unlink(x->khfile);
	free(x->khfile);
	x->khfile = NULL;
	hkeys_free(&x->key, 1);
	x->key = (struct hkey){{0}, NULL, NULL, 0};
	buf_reset(&x->etext);
	buf_reset(&x->out);
	x->out_off = x->in_len = x->in_off = x->rx_left = 0;
	x->rx = NULL;
	x->want_version = x->sync_waiting = x->sync_done = false;
	x->n_ign = 0;
	x->broken = false;
	x->base.err[0] = '\0';
}

/*
 * Open with the key this process saw on the box before (kc_get): 1 if it
 * worked, 0 if there was none, or the key must be scanned again (x is
 * reset), else -errno.
 */
static int open_cached(struct ossh_xfer *x, const struct xfer_params *p,
		       int64_t until, char *err, size_t errlen, bool *err_set)
{
	struct hkey k;
	char why[384] = "";
	int rc;

	if (!kc_get(x->host, x->port, &k))
		return 0;
	rc = write_known_hosts(x, p->state_dir, &k);
	if (!rc) {
		x->key = k;
		k = (struct hkey){{0}, NULL, NULL, 0};
		rc = start_sftp(x, until);
	}
	hkeys_free(&k, 1);
	if (!rc)
		rc = handshake(x, until);
	if (rc == -EACCES && strstr(x->etext.data ? x->etext.data : "",
				    "Host key verification failed")) {
		/* the box has another key now: let the policy see it */
		RGT_DEBUG_LOG("%s: host key changed since the last session; "
			      "scanning again",
			      x->where);
		kc_forget(x->host, x->port);
		session_reset(x);
		return 0;
	}
	if (rc && rc != -EACCES) {
		/* Any other failure may be a box that no longer offers this
		 * key's type ("no matching host key type"): never keep a key
		 * that did not work; an unreachable box is an answer, any
		 * other failure is scanned again. */
		kc_forget(x->host, x->port);
		if (rc == -ETIMEDOUT || rc == -ECONNREFUSED ||
		    rc == -EHOSTUNREACH)
			return rc;
		session_reset(x);
		return 0;
	}
	if (rc)
		return rc;
	/* ssh verified the box holds the key; no file was touched yet */
	rc = p->hostkey(p->hostkey_arg, x->key.type, x->key.blob, x->key.len,
			why, sizeof(why));
	if (rc) {
		kc_forget(x->host, x->port);
		session_reset(x);
		if (rc < 0 && rc != -EACCES) {
			if (err && errlen && why[0]) {
				snprintf(err, errlen, "%s", why);
				*err_set = true;
			}
			return fail(x, rc, "%s", why[0] ? why : strerror(-rc));
		}
		return 0; /* refused: the full scan gives the verdict */
	}
	return 1;
}

/* The chosen key, proven by the handshake, to the recording policy. */
static int confirm_key(struct ossh_xfer *x, const struct xfer_params *p,
		       char *err, size_t errlen, bool *err_set)
{
	char why[384] = "";
	int rc = p->hostkey(p->hostkey_arg, x->key.type, x->key.blob,
			    x->key.len, why, sizeof(why));
	if (!rc)
		return 0;
	if (rc > 0)
		rc = -EACCES;
	if (err && errlen && why[0]) {
		snprintf(err, errlen, "%s", why);
		*err_set = true;
	}
	return fail(x, rc, "%s", why[0] ? why : "host key refused");
}

static int ossh_open(const struct xfer_params *p, struct xfer **out,
		     char *err, size_t errlen)
{
	struct ossh_xfer *x;
	long cto =
	    p->connect_timeout_ms > 0 ? p->connect_timeout_ms : DEF_CONNECT_MS;
	int64_t until = now_ms() + cto;
	bool err_set = false;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!plain_word(p->host, 256) || !plain_word(p->user, 256) ||
	    !p->hostkey || p->port <= 0 || p->port > 65535 ||
	    (p->key_path && (!*p->key_path || strstr(p->key_path, "${")))) {
		if (err && errlen)
			snprintf(err, errlen, "openssh: bad parameters");
		return -EINVAL;
	}
	if (p->password) {
		if (err && errlen)
			snprintf(err, errlen,
				 "the OpenSSH transport does not log in with "
				 "passwords");
		return -ENOTSUP;
	}
	pthread_once(&prog_once, find_progs);
	if (!ssh_prog || !keyscan_prog) {
		if (err && errlen)
			snprintf(err, errlen, "%s not found in PATH",
				 ssh_prog ? "ssh-keyscan" : "ssh");
		return -ENOENT;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->base.ops = &xfer_openssh_ops;
	x->fd = x->efd = x->pidfd = -1;
	x->opening = true;
	x->io_ms = p->io_timeout_ms > 0 ? p->io_timeout_ms : DEF_IO_MS;
	x->cto_ms = cto;
	x->port = p->port;
	buf_init(&x->etext, ERRTEXT_MAX);
	buf_init(&x->out, OUTBUF_MAX);
	buf_init(&x->sync, FRAME_MAX + 4);
	snprintf(x->where, sizeof(x->where), "%s@%s:%d", p->user, p->host,
		 p->port);
	x->host = strdup(p->host);
	x->user = strdup(p->user);
	x->key_path = p->key_path ? strdup(p->key_path) : NULL;
	x->in = malloc(INBUF_BYTES);
	if (!x->host || !x->user || (p->key_path && !x->key_path) || !x->in) {
		rc = fail(x, -ENOMEM, "out of memory");
		goto out_close;
	}

	rc = open_cached(x, p, until, err, errlen, &err_set);
	if (!rc) {
		int claim = scan_claim(x->host, x->port, until);

		if (!claim)
			rc = open_cached(x, p, until, err, errlen, &err_set);
		if (!rc) {
			rc = choose_key(x, p, until, err, errlen, &err_set);
			if (!rc)
				rc = start_sftp(x, until);
			if (!rc)
				rc = handshake(x, until);
			if (!rc && p->hostkey_peek)
				/* ssh has verified the box's signature with
				 * this key: now the policy may record it */
				rc = confirm_key(x, p, err, errlen, &err_set);
			if (!rc) /* before scan_done(): the waiters look */
				kc_put(x->host, x->port, &x->key);
		}
		if (claim > 0)
			scan_done(x->host, x->port);
	}
	if (rc < 0)
		goto out_close;
	x->opening = false;
	x->base.err[0] = '\0';
	*out = &x->base;
	return 0;

out_close:
	if (!err_set && err && errlen)
		snprintf(err, errlen, "%s", x->base.err);
	break_session(x);
	ossh_close(&x->base);
	return rc;
}

/* ------------------------------------------------------------------ */
/* stat, readdir                                                      */

static int check_usable(struct ossh_xfer *x, const char *path)
{
	if (x->broken)
		return -ENOTCONN; /* x->err keeps the first reason */
	if (path && strlen(path) >= PATH_BYTES)
		return fail(x, -ENAMETOOLONG, "path too long (%zu bytes)",
			    strlen(path));
	return 0;
}

static int ossh_stat(struct xfer *xb, const char *path, struct xfer_attr *out)
{
	struct ossh_xfer *x = to_x(xb);
	struct sftp_attrs a;
	struct sftp_msg m;
	uint32_t id;
	int rc = check_usable(x, path);

	if (rc)
		return rc;
	id = new_id(x);
	rc = queued(x, sftp_put_lstat(&x->out, id, path, strlen(path)), path);
	if (!rc)
		rc = sync_call(x, id, &m, 0);
	if (rc)
		return rc;
	if (m.type != SSH_FXP_ATTRS)
		return status_fail(x, &m, "stat", path);
	if (sftp_parse_attrs(&m, &a))
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "stat %s: malformed ATTRS", path);
	if (!(a.flags & SSH_FILEXFER_ATTR_PERMISSIONS))
		return fail(x, -EIO, "stat %s: server sent no file mode", path);
	attr_from(&a, out);
	return 0;
}

/* CLOSE @h without waiting: the reply is dropped when it comes. */
static int close_handle(struct ossh_xfer *x, const unsigned char *h,
			size_t hlen)
{
	uint32_t id;
	int rc;

	if (x->broken)
		return -ENOTCONN;
	rc = ign_reserve(x);
	if (rc)
		return rc;
	id = new_id(x);
	rc = queued(x, sftp_put_close(&x->out, id, h, hlen), "close");
	if (!rc)
		ign_add(x, id);
	return rc;
}

static bool name_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') ||
	       (len == 2 && name[0] == '.' && name[1] == '.');
}

static int ossh_readdir(struct xfer *xb, const char *path, xfer_dirent_fn fn,
			void *arg)
{
	struct ossh_xfer *x = to_x(xb);
	unsigned char h[SFTP_HANDLE_MAX];
	const unsigned char *hp;
	struct sftp_msg m;
	size_t hlen;
	uint32_t id;
	int rc = check_usable(x, path);

	if (rc)
		return rc;
	id = new_id(x);
	rc = queued(x, sftp_put_opendir(&x->out, id, path, strlen(path)),
		    path);
	if (!rc)
		rc = sync_call(x, id, &m, 0);
	if (rc)
		return rc;
	if (m.type != SSH_FXP_HANDLE)
		return status_fail(x, &m, "opendir", path);
	if (sftp_parse_handle(&m, &hp, &hlen))
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "opendir %s: malformed HANDLE", path);
	memcpy(h, hp, hlen);

	for (;;) {
		struct sftp_cur c;
		uint32_t count, code;
		const char *t;
		size_t tl;

		id = new_id(x);
		rc = queued(x, sftp_put_readdir(&x->out, id, h, hlen), path);
		if (!rc)
			rc = sync_call(x, id, &m, 0);
		if (rc)
			break;
		if (m.type == SSH_FXP_STATUS &&
		    !sftp_parse_status(&m, &code, &t, &tl) &&
		    code == SSH_FX_EOF)
			break;
		if (m.type != SSH_FXP_NAME) {
			rc = status_fail(x, &m, "readdir", path);
			break;
		}
		if (sftp_parse_name(&m, &count, &c)) {
			rc = fail(x, to_errno(x, F_PROTO, 0, NULL),
				  "readdir %s: malformed NAME", path);
			break;
		}
		for (;;) {
			struct sftp_attrs a;
			struct xfer_attr xa;
			const char *name;
			size_t nl;
			int e = sftp_name_next(&c, &name, &nl, &a);

			if (e < 0) {
				rc = fail(x, to_errno(x, F_PROTO, 0, NULL),
					  "readdir %s: malformed NAME", path);
				break;
			}
			if (!e)
				break;
			if (name_dot(name, nl))
				continue;
			if (!nl || nl >= sizeof(x->name) ||
			    memchr(name, '/', nl) || memchr(name, '\0', nl)) {
				rgt_log(RGT_WARN,
					"%s: readdir %s: skipping a name with "
					"'/' or NUL (or of %zu bytes) from the "
					"server",
					x->where, path, nl);
				continue;
			}
			if (!(a.flags & SSH_FILEXFER_ATTR_PERMISSIONS)) {
				rc = fail(x, -EIO,
					  "readdir %s: server sent no file "
					  "mode",
					  path);
				break;
			}
			memcpy(x->name, name, nl);
			x->name[nl] = '\0';
			attr_from(&a, &xa);
			rc = fn(arg, x->name, &xa);
			if (rc)
				break;
		}
		if (rc)
			break;
	}
	if (!x->broken) {
		int crc = close_handle(x, h, hlen);

		if (crc && !rc)
			rc = crc;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* reads                                                              */

/* Forget every queued READ; those still in flight are dropped on arrival. */
static int q_drop(struct ossh_xfer *x)
{
	int rc = 0;

	/* A payload under way may be aimed at a caller's buffer that is
	 * about to be returned: from here on it is read and dropped. */
	struct chunk *rx = x->rx;

	x->rx = NULL;
	while (x->q_n) {
		struct chunk *c = qat(x, 0);

		if (c == rx) {
			/* its payload is arriving: the rest is read and
			 * dropped (x->rx is NULL) */
		} else if (c->state == C_SENT) {
			rc = ign_reserve(x);
			if (rc)
				break;
			ign_add(x, c->id);
		}
		x->q_head = (x->q_head + 1) % QMAX;
		x->q_n--;
	}
	x->q_head = 0;
	x->q_n = 0;
	/* replies left unaccounted for could be taken for later ones */
	if (rc)
		break_session(x);
	return rc;
}

static void file_close(struct ossh_xfer *x)
{
	if (!x->fh_path)
		return;
	if (!q_drop(x))
		close_handle(x, x->fh, x->fhlen);
	free(x->fh_path);
	x->fh_path = NULL;
	x->fhlen = 0;
	x->next_off = 0;
}

static int file_open(struct ossh_xfer *x, const char *path)
{
	const unsigned char *hp;
	struct sftp_attrs a;
	struct sftp_msg m;
	size_t hlen;
	uint32_t id;
	int rc;

	id = new_id(x);
	rc = queued(x,
		    sftp_put_open(&x->out, id, path, strlen(path),
				  SSH_FXF_READ),
		    path);
	if (!rc)
		rc = sync_call(x, id, &m, 0);
	if (rc)
		return rc;
	if (m.type != SSH_FXP_HANDLE)
		return status_fail(x, &m, "open", path);
	if (sftp_parse_handle(&m, &hp, &hlen))
		return fail(x, to_errno(x, F_PROTO, 0, NULL),
			    "open %s: malformed HANDLE", path);
	memcpy(x->fh, hp, hlen);
	x->fhlen = hlen;
	x->fh_path = strdup(path);
	if (!x->fh_path) {
		close_handle(x, x->fh, x->fhlen);
		return fail(x, -ENOMEM, "out of memory");
	}
	x->next_off = 0;
	/* What the handle really has open: a file replaced by rename after
	 * the caller listed it is a different version (see xfer.h). */
	id = new_id(x);
	rc = queued(x, sftp_put_fstat(&x->out, id, x->fh, x->fhlen), path);
	if (!rc)
		rc = sync_call(x, id, &m, 0);
	if (!rc && m.type != SSH_FXP_ATTRS)
		rc = status_fail(x, &m, "fstat", path);
	else if (!rc && sftp_parse_attrs(&m, &a))
		rc = fail(x, to_errno(x, F_PROTO, 0, NULL),
			  "fstat %s: malformed ATTRS", path);
	if (rc) {
		file_close(x);
		return rc;
	}
	attr_from(&a, &x->fh_attr);
	return 0;
}

static bool same_version(const struct xfer_attr *a,
			 const struct xfer_attr *expect)
{
	return !expect ||
	       (a->size == expect->size && a->mtime == expect->mtime);
}

/* Queue READs from the end of the queue up to @end (bytes of the call up
 * to @call_end land at @buf + (offset - @call_off)). */
static int q_fill(struct ossh_xfer *x, uint64_t end, char *buf,
		  uint64_t call_off, uint64_t call_end)
{
	while (x->q_n < QMAX) {
		uint64_t qend;
		struct chunk *c;
		uint32_t len;
		int rc;

		if (x->q_n) {
			struct chunk *l = qat(x, x->q_n - 1);

			qend = l->off + l->len;
		} else {
			qend = x->next_off;
		}
		if (qend >= end)
			break;
		len = end - qend < x->chunk ? (uint32_t)(end - qend) : x->chunk;
		/* a request inside the call ends with it: straight in */
		if (qend < call_end && qend + len > call_end)
			len = (uint32_t)(call_end - qend);
		c = qat(x, x->q_n);
		memset(c, 0, sizeof(*c));
		c->off = qend;
		c->len = len;
		c->id = new_id(x);
		c->state = C_SENT;
		if (qend >= call_off && qend + len <= call_end)
			c->dst = buf + (qend - call_off);
		rc = queued(x,
			    sftp_put_read(&x->out, c->id, x->fh, x->fhlen, qend,
					  len),
			    x->fh_path);
		if (rc)
			return rc;
		x->q_n++;
	}
	return 0;
}

static bool head_arrived(struct ossh_xfer *x, const void *arg)
{
	return !x->q_n || qat(x, 0)->state != C_SENT;
}

/*
 * The READ engine (see DESIGN): @len bytes at @off into @buf; @ahead more
 * bytes will certainly be asked for next (preadv), @seq says the reader
 * continues where it stopped. Returns bytes read (short only at EOF).
 */
static ssize_t q_read(struct ossh_xfer *x, char *buf, size_t len, uint64_t off,
		      uint64_t ahead, bool seq)
{
	uint64_t call_end = off + len, end;
	size_t done = 0;
	int rc = 0;

	/* anything but the continuation of the queue starts it anew */
	if (x->q_n && qat(x, 0)->off + qat(x, 0)->used != off)
		rc = q_drop(x);
	if (rc)
		return rc;
	if (!x->q_n)
		x->next_off = off;
	/* requests already in flight that lie inside this call: straight in */
	for (int i = 0; i < x->q_n; i++) {
		struct chunk *c = qat(x, i);

		if (c->state == C_SENT && c != x->rx && c->off >= off &&
		    c->off + c->len <= call_end)
			c->dst = buf + (c->off - off);
	}
	end = call_end + ahead;
	if (seq) {
		uint64_t ra = (uint64_t)RA_CHUNKS * x->chunk;
		uint64_t cap = x->fh_attr.size > end ? x->fh_attr.size : end;

		end = end + ra < cap ? end + ra : cap;
	}
	while (done < len) {
		struct chunk *c;
		size_t take;

		rc = q_fill(x, end, buf, off, call_end);
		if (!rc)
			rc = wait_for(x, head_arrived, NULL, 0);
		if (rc)
			break;
		c = qat(x, 0);
		if (c->state == C_EOF)
			break;
		if (c->state == C_ERR) {
			rc = c->status ? to_errno(x, F_STATUS, c->status, NULL)
				       : c->lerr;
			rc = fail(x, rc, "read %s at %" PRIu64 ": %s",
				  x->fh_path, c->off, strerror(-rc));
			break;
		}
		take = c->got - c->used;
		if (take > len - done)
			take = len - done;
		if (!c->dst)
			memcpy(buf + done,
			       x->qbuf[(x->q_head) % QMAX] + c->used, take);
		c->used += (uint32_t)take;
		done += take;
		if (c->used < c->got)
			continue; /* the rest stays for the next call */
		if (c->got < c->len) {
			/* short DATA: ask again for the rest, same place */
			c->off += c->got;
			c->len -= c->got;
			if (c->dst)
				c->dst += c->got;
			c->got = c->used = 0;
			c->id = new_id(x);
			c->state = C_SENT;
			rc = queued(x,
				    sftp_put_read(&x->out, c->id, x->fh,
						  x->fhlen, c->off, c->len),
				    x->fh_path);
			if (rc)
				break;
			continue;
		}
		x->q_head = (x->q_head + 1) % QMAX;
		x->q_n--;
	}
	/* nothing may point into the caller's buffer after we return */
	bool stale = false;

	for (int i = 0; i < x->q_n; i++) {
		struct chunk *c = qat(x, i);

		if (c->dst && (c->state != C_SENT || c == x->rx))
			stale = true;
		c->dst = NULL;
	}
	if (rc || stale || (x->q_n && qat(x, 0)->state == C_EOF)) {
		int drc = q_drop(x);

		if (!rc && drc)
			rc = drc;
	}
	x->next_off = off + done;
	return rc ? rc : (ssize_t)done;
}

/* Have @path open for @expect; -ESTALE if the box has another version. */
static int file_ready(struct ossh_xfer *x, const char *path,
		      const struct xfer_attr *expect, bool *fresh)
{
	int rc;

	*fresh = false;
	if (x->fh_path &&
	    (strcmp(x->fh_path, path) || !same_version(&x->fh_attr, expect)))
		file_close(x);
	if (x->broken)
		return -ENOTCONN;
	if (x->fh_path)
		return 0;
	rc = file_open(x, path);
	if (rc)
		return rc;
	*fresh = true;
	if (!same_version(&x->fh_attr, expect)) {
		rc = fail(x, -ESTALE,
			  "read %s: changed on the box (now %" PRIu64
			  " bytes, mtime %" PRId64 ")",
			  path, x->fh_attr.size, x->fh_attr.mtime);
		file_close(x);
		return rc;
	}
	return 0;
}

static ssize_t ossh_pread(struct xfer *xb, const char *path, void *buf,
			  size_t len, uint64_t off,
			  const struct xfer_attr *expect)
{
	struct ossh_xfer *x = to_x(xb);
	bool fresh, seq;
	int rc = check_usable(x, path);

	if (rc)
		return rc;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (!len)
		return 0;
	seq = x->fh_path && !strcmp(x->fh_path, path) && off == x->next_off;
	rc = file_ready(x, path, expect, &fresh);
	if (rc)
		return rc;
	return q_read(x, buf, len, off, 0, seq && !fresh);
}

static ssize_t ossh_preadv(struct xfer *xb, const char *path,
			   const struct iovec *iov, int iovcnt, uint64_t off,
			   const struct xfer_attr *expect)
{
	struct ossh_xfer *x = to_x(xb);
	uint64_t total = 0, done = 0;
	bool fresh, seq;
	int rc = check_usable(x, path);

	if (rc)
		return rc;
	if (iovcnt < 1 || iovcnt > XFER_IOV_MAX)
		return fail(x, -EINVAL, "preadv: %d buffers", iovcnt);
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > SSIZE_MAX)
		return fail(x, -EINVAL, "preadv: too many bytes");
	seq = x->fh_path && !strcmp(x->fh_path, path) && off == x->next_off;
	rc = file_ready(x, path, expect, &fresh);
	if (rc)
		return rc;
	for (int i = 0; i < iovcnt; i++) {
		size_t want = iov[i].iov_len;
		ssize_t n;

		if (!want)
			continue;
		n = q_read(x, iov[i].iov_base, want, off + done,
			   total - done - want, (seq && !fresh) || i > 0);
		if (n < 0)
			return n;
		done += (uint64_t)n;
		if ((size_t)n < want)
			break;
	}
	return (ssize_t)done;
}

/* ------------------------------------------------------------------ */
/* exec                                                               */

static int ossh_exec(struct xfer *xb, const char *cmd, struct buf *out,
		     int *status, long deadline_ms)
{
	struct ossh_xfer *x = to_x(xb);
	int64_t start = now_ms();
	int64_t until = deadline_ms > 0 ? start + deadline_ms : 0;
	int op[2] = {-1, -1}, ep[2] = {-1, -1}, st = 0, pidfd = -1, rc;
	struct buf etext;
	struct argv a;
	pid_t pid = 0;
	char line[200];

	rc = check_usable(x, NULL);
	if (rc)
		return rc;
	buf_reset(out);
	buf_init(&etext, ERRTEXT_MAX);
	rc = ssh_argv(x, &a, until && until - start < x->cto_ms
				 ? (long)(until - start)
				 : x->cto_ms,
		      cmd);
	if (rc) {
		rc = fail(x, rc, "out of memory");
		goto out;
	}
	if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
		rc = fail(x, to_errno(x, F_SYS, errno, NULL), "pipe: %s",
			  strerror(errno));
		goto out;
	}
	rc = spawn(ssh_prog, a.v, -1, op[1], ep[1], &pid);
	close(op[1]);
	close(ep[1]);
	op[1] = ep[1] = -1;
	if (rc) {
		pid = 0;
		rc = fail(x, to_errno(x, F_SYS, -rc, NULL), "cannot run %s: %s",
			  ssh_prog, strerror(-rc));
		goto out;
	}
	pidfd = open_pidfd(pid);
	/* the connect counts as output time: io_ms is well above it */
	rc = drain(op[0], ep[0], out, &etext, until, until ? 0 : x->io_ms);
	if (rc == -ETIMEDOUT) {
		reap(pid, pidfd, 0, NULL);
		pid = 0;
		/* a frozen box: the SFTP session is as stuck (xfer.h) */
		rc = fail(x, to_errno(x, F_TIMEOUT, 0, NULL),
			  until ? "command on %s still running at its deadline"
				: "command on %s: no output within the io "
				  "timeout",
			  x->where);
		goto out;
	}
	if (rc == -EFBIG) {
		reap(pid, pidfd, 0, NULL);
		pid = 0;
		rc = fail(x, -EFBIG, "command output larger than %zu bytes",
			  out->max);
		goto out;
	}
	if (rc) {
		reap(pid, pidfd, 0, NULL);
		pid = 0;
		rc = fail(x, to_errno(x, F_SYS, -rc, NULL), "exec: %s",
			  strerror(-rc));
		goto out;
	}
	/* both streams closed: ssh is exiting */
	reap(pid, pidfd, until ? poll_ms(until) + 1 : x->io_ms, &st);
	pid = 0;
	first_line(&etext, line, sizeof(line));
	if (!WIFEXITED(st)) {
		rc = fail(x, -EIO, "ssh for a command on %s died (%s)",
			  x->where, line);
		goto out;
	}
	if (WEXITSTATUS(st) == 255 && ssh_message(etext.data)) {
		rc = fail(x, to_errno(x, F_EXITED, 0, etext.data),
			  "command on %s: %s", x->where, line);
		goto out;
	}
	if (status)
		*status = WEXITSTATUS(st);
	rc = 0;
out:
	if (pid)
		reap(pid, pidfd, 0, NULL);
	for (int i = 0; i < 2; i++) {
		if (op[i] >= 0)
			close(op[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (pidfd >= 0)
		close(pidfd);
	argv_free(&a);
	buf_cleanup(&etext);
	return rc;
}

/* ------------------------------------------------------------------ */
/* close                                                              */

static void ossh_close(struct xfer *xb)
{
	struct ossh_xfer *x = to_x(xb);

	if (!x)
		return;
	if (x->fh_path && !x->broken) {
		file_close(x);
		/* hand the CLOSE to ssh if it takes it at once */
		pump(x, now_ms());
	}
	free(x->fh_path);
	if (x->fd >= 0)
		close(x->fd); /* EOF on its stdin: ssh ends the session */
	if (x->efd >= 0)
		close(x->efd);
	if (x->pid > 0)
		reap(x->pid, x->pidfd, x->broken ? 0 : CLOSE_GRACE_MS, NULL);
	if (x->pidfd >= 0)
		close(x->pidfd);
	if (x->khfile)
		unlink(x->khfile);
	if (x->own_dir && x->dir)
		rmdir(x->dir);
	for (int i = 0; i < QMAX; i++)
		free(x->qbuf[i]);
	free(x->khfile);
	hkeys_free(&x->key, 1);
	free(x->dir);
	free(x->host);
	free(x->user);
	free(x->key_path);
	free(x->in);
	buf_cleanup(&x->out);
	buf_cleanup(&x->sync);
	buf_cleanup(&x->etext);
	free(x);
}

const struct xfer_ops xfer_openssh_ops = {
    .name = "openssh",
    .open = ossh_open,
    .stat = ossh_stat,
    .readdir = ossh_readdir,
    .pread = ossh_pread,
    .preadv = ossh_preadv,
    .exec = ossh_exec,
    .close = ossh_close,
};
