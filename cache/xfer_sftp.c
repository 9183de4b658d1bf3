/*
 * xfer_sftp.c - the SSH transport: SFTP over libssh2, with an exec-channel
 * fallback for servers that have no SFTP subsystem.
 *
 * This is the only file in rgtfs that includes <libssh2.h>. Everything the
 * rest of the program sees is struct xfer_ops (xfer.h): 0 or -errno, and a
 * reason in x->err.
 *
 * DESIGN
 *	One struct sftp_xfer is one TCP connection, one SSH session and (in
 *	SFTP mode) one SFTP channel. The session is in blocking mode with
 *	libssh2_session_set_timeout(): every libssh2 call returns within
 *	about the timeout (libssh2 measures whole seconds, so up to one
 *	second more). During open() the timeout is whatever is left of
 *	connect_timeout_ms, so connect + handshake + auth share one budget;
 *	afterwards it is io_timeout_ms.
 *
 *	Reads keep one SFTP file handle open (path + the offset the library
 *	will return next). libssh2 keeps up to 4x the caller's buffer in
 *	flight (its read-ahead, which is where the speed comes from), so we
 *	hand the library buffers of a quarter of what is still wanted: its
 *	read-ahead then asks for exactly this call's bytes and not 3 MiB
 *	more that the next call (the fetcher's next block for this session
 *	is as often elsewhere) would throw away. Any other offset seeks. A read that hits EOF keeps the handle
 *	but forces a fresh seek next time (libssh2 otherwise keeps answering
 *	0 on that handle, even after the file grew).
 *
 *	Exec mode: when the server refuses the "sftp" subsystem (no Subsystem
 *	line in sshd_config), stat, readdir and pread run GNU coreutils and
 *	findutils on an exec channel: `stat -c`, `find -printf` with NUL
 *	separators (names may hold newlines) and `dd iflag=skip_bytes,
 *	count_bytes`. Every path goes through xfer_shell_quote(). Their
 *	stdout starts with a marker printed by our own command line, and
 *	anything before it (a noisy .bashrc) is skipped, so binary data can
 *	never be shifted by shell chatter. Errors are read back from stderr
 *	under LC_ALL=C.
 *
 *	Channels are pumped in non-blocking mode (stdout and stderr both
 *	drained as data arrives, io_timeout_ms without progress is a
 *	timeout), because a blocking read on stdout cannot drain stderr and
 *	a chatty command would fill the window and stall. A command run with
 *	a deadline (exec's @deadline_ms, e.g. sha256sum of a 20 GB file) may
 *	instead stay silent: the deadline bounds the whole run, and a dead
 *	connection still shows at once (poll wakes on EOF/RST, libssh2's
 *	next read fails).
 *
 *	Errors: libssh2 codes and SFTP status codes become errno in exactly
 *	one place, sftp_to_errno(). A session-level failure (timeout, socket
 *	error, MAC/protocol error) marks the handle broken and shuts the
 *	socket down, so later calls (and close()) fail fast with -ENOTCONN
 *	instead of each waiting out the timeout again.
 *
 * REJECTED
 *	libssh2_keepalive_config(): in libssh2 1.10 _libssh2_wait_socket()
 *	polls only until the next keepalive is due and then reports
 *	LIBSSH2_ERROR_TIMEOUT, whatever the session timeout, so a command
 *	that is silent for a few seconds would fail at random. In blocking
 *	mode keepalives are only sent inside calls anyway, never while the
 *	session idles. Dead peers are found by the per-call timeout and by
 *	TCP keepalive (SO_KEEPALIVE with short idle/interval) instead.
 *	libssh2_knownhost_readfile(): it stops at the first line it cannot
 *	parse (@cert-authority, sk-* keys, lines over 4 KiB), and with a port
 *	it also matches plain "host" entries, which on shared proxy hosts
 *	(one host name, a box per port) reports a false mismatch. We read the
 *	file line by line and ask for "[host]:port" exactly, like OpenSSH.
 *
 * THREADS
 *	A handle is used by one thread at a time (xfer.h). libssh2_init() runs
 *	once under pthread_once. xfer_known_hosts_check() is reentrant.
 *	readdir callbacks run in the middle of a libssh2 exchange: they must
 *	not call back into the same handle.
 */
#include "xfer.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/evp.h>

#include "log.h"

/* clang-format off */
#define DEF_CONNECT_MS	15000
#define DEF_IO_MS	30000
#define NAME_BYTES	4096		/* readdir name buffer (Linux: 255) */
#define PATH_BYTES	4096		/* longest path we send */
#define IOBUF_BYTES	32768		/* one channel read */
#define ERRTEXT_MAX	2048		/* stderr kept for error messages */
#define MARK_SKIP_MAX	65536		/* noise skipped before MARK */
#define CARRY_BYTES	(NAME_BYTES + 512)	/* one find record */
#define DD_BS		(1024 * 1024)

/* Printed by our exec-mode command lines right before their real output. */
#define MARK		"\036rgtfs\037"
#define MARK_CMD	"printf '\\036rgtfs\\037'; "
/* clang-format on */

struct sftp_xfer {
	struct xfer base; /* first: xfer.h casts */
	LIBSSH2_SESSION *ses;
	LIBSSH2_SFTP *sftp; /* NULL: exec mode */
	int fd;
	bool broken;
	long io_ms;
	char where[320]; /* user@host:port, for messages */

	/* the one open file (SFTP mode) */
	LIBSSH2_SFTP_HANDLE *fh;
	char *fh_path;
	uint64_t fh_off; /* next byte libssh2 will hand out */
	bool fh_eof;	 /* libssh2 saw EOF: seek before reuse */
	struct xfer_attr fh_attr; /* fstat of the handle when it was opened */

	char name[NAME_BYTES];
	char iobuf[IOBUF_BYTES];
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;
static atomic_bool exec_mode_logged;

static void lib_init(void)
{
	lib_rc = libssh2_init(0);
}

/* libssh2_init() is not thread-safe on its first call: run it once. */
static int lib_ready(void)
{
	pthread_once(&lib_once, lib_init);
	return lib_rc ? -EIO : 0;
}

static struct sftp_xfer *to_x(struct xfer *x)
{
	return (struct sftp_xfer *)x;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void break_session(struct sftp_xfer *x)
{
	if (x->broken)
		return;
	x->broken = true;
	/* Every later libssh2 call on this socket now fails at once. */
	if (x->fd >= 0)
		shutdown(x->fd, SHUT_RDWR);
}

/*
 * The one place a libssh2 code, or the SFTP status behind
 * LIBSSH2_ERROR_SFTP_PROTOCOL, becomes an errno. Failures of the session
 * itself mark @x broken.
 */
static int sftp_to_errno(struct sftp_xfer *x, int rc)
{
	unsigned long st;

	switch (rc) {
	case LIBSSH2_ERROR_NONE:
		return 0;
	case LIBSSH2_ERROR_SFTP_PROTOCOL:
		st = x->sftp ? libssh2_sftp_last_error(x->sftp)
			     : LIBSSH2_FX_FAILURE;
		/* clang-format off */
		switch (st) {
		case LIBSSH2_FX_NO_SUCH_FILE:
		case LIBSSH2_FX_NO_SUCH_PATH:		return -ENOENT;
		case LIBSSH2_FX_PERMISSION_DENIED:	return -EACCES;
		case LIBSSH2_FX_WRITE_PROTECT:		return -EROFS;
		case LIBSSH2_FX_NO_MEDIA:		return -ENOMEDIUM;
		case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:	return -ENOSPC;
		case LIBSSH2_FX_QUOTA_EXCEEDED:		return -EDQUOT;
		case LIBSSH2_FX_FILE_ALREADY_EXISTS:	return -EEXIST;
		case LIBSSH2_FX_NOT_A_DIRECTORY:	return -ENOTDIR;
		case LIBSSH2_FX_DIR_NOT_EMPTY:		return -ENOTEMPTY;
		case LIBSSH2_FX_INVALID_FILENAME:	return -EINVAL;
		case LIBSSH2_FX_LINK_LOOP:		return -ELOOP;
		case LIBSSH2_FX_OP_UNSUPPORTED:		return -ENOTSUP;
		case LIBSSH2_FX_INVALID_HANDLE:		return -EBADF;
		case LIBSSH2_FX_LOCK_CONFLICT:		return -EBUSY;
		case LIBSSH2_FX_NO_CONNECTION:
		case LIBSSH2_FX_CONNECTION_LOST:
			break_session(x);
			return -ENOTCONN;
		default:	/* FAILURE, BAD_MESSAGE, ...: nothing better */
			return -EIO;
		}
		/* clang-format on */
	case LIBSSH2_ERROR_ALLOC:
		return -ENOMEM;
	case LIBSSH2_ERROR_EAGAIN:
		return -EAGAIN;
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
	case LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
	case LIBSSH2_ERROR_FILE:
	case LIBSSH2_ERROR_METHOD_NONE:
	case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
	case LIBSSH2_ERROR_HOSTKEY_SIGN:
	case LIBSSH2_ERROR_AGENT_PROTOCOL:
	case LIBSSH2_ERROR_PASSWORD_EXPIRED:
		return -EACCES;
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
	case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
	case LIBSSH2_ERROR_REQUEST_DENIED:
	case LIBSSH2_ERROR_BUFFER_TOO_SMALL:
	case LIBSSH2_ERROR_INVAL:
	case LIBSSH2_ERROR_BAD_USE:
		return -EIO; /* one channel or request; session fine */
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
		break_session(x);
		return -ETIMEDOUT;
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_BANNER_SEND:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_BAD_SOCKET:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
		break_session(x);
		return -ENOTCONN;
	default: /* MAC, crypto, KEX, packet errors: session unusable */
		break_session(x);
		return -EIO;
	}
}

/*
 * Translate @rc and put "<what>: <reason>" into x->err. For SFTP status
 * errors the reason is the errno text; otherwise libssh2's own message,
 * which never holds key material.
 */
static int ssh_fail(struct sftp_xfer *x, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ssh_fail(struct sftp_xfer *x, int rc, const char *fmt, ...)
{
	char what[160];
	char *msg = NULL;
	va_list ap;
	int err;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && x->sftp) {
		unsigned long st = libssh2_sftp_last_error(x->sftp);

		err = sftp_to_errno(x, rc);
		if (err == -EIO)
			snprintf(x->base.err, sizeof(x->base.err),
				 "%s: SFTP status %lu", what, st);
		else
			snprintf(x->base.err, sizeof(x->base.err), "%s: %s",
				 what, strerror(-err));
		return err;
	}
	if (x->ses)
		libssh2_session_last_error(x->ses, &msg, NULL, 0);
	err = sftp_to_errno(x, rc);
	snprintf(x->base.err, sizeof(x->base.err), "%s: %s (libssh2 %d)", what,
		 msg && *msg ? msg : strerror(-err), rc);
	return err;
}

static int fail(struct sftp_xfer *x, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct sftp_xfer *x, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->base.err, sizeof(x->base.err), fmt, ap);
	va_end(ap);
	return err;
}

static int check_usable(struct sftp_xfer *x, const char *path)
{
	if (x->broken)
		return -ENOTCONN; /* x->err keeps the first reason */
	if (path && strlen(path) >= PATH_BYTES)
		return fail(x, -ENAMETOOLONG, "path too long (%zu bytes)",
			    strlen(path));
	return 0;
}

/* ------------------------------------------------------------------ */
/* connect, handshake, authenticate                                   */

static void tune_socket(int fd)
{
	int on = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
#ifdef TCP_KEEPIDLE
	{
		/* notice a dead idle peer in about a minute and a half */
		int idle = 60, intvl = 10, cnt = 3;

		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
			   sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
#endif
}

/* One non-blocking connect to @ai, bounded by @deadline. 0 or -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *fdp)
{
	struct pollfd pfd;
	socklen_t len;
	int fd, rc, soerr;

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	tune_socket(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		goto out_ok;
	if (errno != EINPROGRESS) {
		rc = -errno;
		goto out_close;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	for (;;) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			rc = -ETIMEDOUT;
			goto out_close;
		}
		rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (rc > 0)
			break;
		if (rc < 0 && errno != EINTR) {
			rc = -errno;
			goto out_close;
		}
	}
	len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (soerr) {
		rc = -soerr;
		goto out_close;
	}
out_ok:
	*fdp = fd;
	return 0;
out_close:
	close(fd);
	return rc;
}

static int tcp_connect(struct sftp_xfer *x, const struct xfer_params *p,
		       int64_t deadline)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int rc, gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", p->port);
	gai = getaddrinfo(p->host, port, &hints, &res);
	if (gai) {
		rc = gai == EAI_AGAIN	 ? -EAGAIN
		     : gai == EAI_MEMORY ? -ENOMEM
		     : gai == EAI_SYSTEM ? (errno ? -errno : -EIO)
					 : -EHOSTUNREACH;
		return fail(x, rc, "cannot resolve %s: %s", p->host,
			    gai_strerror(gai));
	}
	rc = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		rc = connect_one(ai, deadline, &x->fd);
		if (!rc || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (rc == -ENETUNREACH)
		rc = -EHOSTUNREACH;
	if (rc)
		return fail(x, rc, "connect to %s port %d: %s", p->host,
			    p->port, strerror(-rc));
	return 0;
}

/* Give the next libssh2 step what is left of the connect budget. */
static int budget(struct sftp_xfer *x, int64_t deadline, const char *step)
{
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return fail(x, -ETIMEDOUT, "%s %s: connect timeout expired",
			    step, x->where);
	libssh2_session_set_timeout(x->ses, (long)left);
	return 0;
}

static const char *hostkey_name(int type)
{
	/* clang-format off */
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_ED25519:	return "ssh-ed25519";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:	return "ecdsa-sha2-nistp256";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:	return "ecdsa-sha2-nistp384";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:	return "ecdsa-sha2-nistp521";
	case LIBSSH2_HOSTKEY_TYPE_RSA:		return "ssh-rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS:		return "ssh-dss";
	default:				return NULL;
	}
	/* clang-format on */
}

static int auth_key(struct sftp_xfer *x, const struct xfer_params *p)
{
	int rc;

	/* NULL public key: libssh2 derives it from the private key. */
	rc = libssh2_userauth_publickey_fromfile_ex(
	    x->ses, p->user, strlen(p->user), NULL, p->key_path, NULL);
	if (rc)
		return ssh_fail(x, rc,
				"publickey authentication failed for %s with "
				"key %s",
				x->where, p->key_path);
	return 0;
}

static int auth_agent(struct sftp_xfer *x, const struct xfer_params *p)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	LIBSSH2_AGENT *agent;
	int tried = 0, rc, last = 0;

	agent = libssh2_agent_init(x->ses);
	if (!agent)
		return fail(x, -ENOMEM, "ssh-agent: out of memory");
	if (libssh2_agent_connect(agent)) {
		rc = fail(x, -EACCES,
			  "no ssh_key configured and no ssh-agent reachable "
			  "(SSH_AUTH_SOCK) for %s",
			  x->where);
		goto out_free;
	}
	if (libssh2_agent_list_identities(agent)) {
		rc = fail(x, -EACCES, "ssh-agent: cannot list identities");
		goto out_disconnect;
	}
	rc = -EACCES;
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		tried++;
		last = libssh2_agent_userauth(agent, p->user, id);
		if (!last) {
			rc = 0;
			break;
		}
		/* a dead session ends the search; a refused key does not */
		if (sftp_to_errno(x, last) != -EACCES || x->broken)
			break;
		prev = id;
	}
	if (rc && last)
		rc = ssh_fail(x, last,
			      "publickey authentication failed for %s with "
			      "%d ssh-agent key(s)",
			      x->where, tried);
	else if (rc)
		rc = fail(x, -EACCES,
			  "publickey authentication failed for %s: ssh-agent "
			  "holds no keys",
			  x->where);
	if (rc == -EIO && !x->broken)
		rc = -EACCES;
out_disconnect:
	libssh2_agent_disconnect(agent);
out_free:
	libssh2_agent_free(agent);
	return rc;
}

/*
 * Password login, after publickey failed with @first (x->base.err). The
 * password goes to libssh2 only; messages never hold it.
 */
static int auth_password(struct sftp_xfer *x, const struct xfer_params *p)
{
	char first[sizeof(x->base.err)];
	int rc;

	snprintf(first, sizeof(first), "%s", x->base.err);
	rc = libssh2_userauth_password_ex(x->ses, p->user, strlen(p->user),
					  p->password, strlen(p->password),
					  NULL);
	if (!rc)
		return 0;
	if (rc == LIBSSH2_ERROR_PASSWORD_EXPIRED)
		return fail(x, -EACCES, "the password of %s has expired "
			    "(after: %.120s)", x->where, first);
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
	    rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED ||
	    rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
		return fail(x, -EACCES, "password authentication failed for "
			    "%s (after: %.120s)", x->where, first);
	return ssh_fail(x, rc, "password authentication on %s", x->where);
}

static int start_sftp(struct sftp_xfer *x)
{
	char *msg = NULL;
	int rc;

	x->sftp = libssh2_sftp_init(x->ses);
	if (x->sftp)
		return 0;
	rc = libssh2_session_last_error(x->ses, &msg, NULL, 0);
	/*
	 * "Unable to request SFTP subsystem": the server said no to the
	 * subsystem but the session is fine; anything else is a real error.
	 */
	if (rc == LIBSSH2_ERROR_TIMEOUT)
		/* libssh2 1.10 waits out a subsystem that exits at once */
		return ssh_fail(x, rc,
				"SFTP start on %s (no answer from the "
				"server's sftp-server: missing binary?)",
				x->where);
	if (rc != LIBSSH2_ERROR_CHANNEL_FAILURE || !msg ||
	    !strstr(msg, "SFTP subsystem"))
		return ssh_fail(x, rc, "SFTP start on %s", x->where);
	if (!atomic_exchange(&exec_mode_logged, true))
		rgt_log(RGT_INFO,
			"%s has no SFTP subsystem; using exec mode (stat, "
			"find, dd over an exec channel)",
			x->where);
	else
		RGT_DEBUG_LOG("%s: no SFTP subsystem, exec mode", x->where);
	return 0;
}

static void sftp_close(struct xfer *xb);

static int sftp_open(const struct xfer_params *p, struct xfer **out, char *err,
		     size_t errlen)
{
	struct sftp_xfer *x;
	long cto =
	    p->connect_timeout_ms > 0 ? p->connect_timeout_ms : DEF_CONNECT_MS;
	int64_t deadline = now_ms() + cto;
	const char *key, *tname;
	size_t klen;
	int ktype, rc;
	bool err_set = false;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!p->host || !*p->host || !p->user || !*p->user || !p->hostkey ||
	    p->port <= 0 || p->port > 65535) {
		if (err && errlen)
			snprintf(err, errlen, "sftp: bad parameters");
		return -EINVAL;
	}
	rc = lib_ready();
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "libssh2_init failed");
		return rc;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->base.ops = &xfer_sftp_ops;
	x->fd = -1;
	x->io_ms = p->io_timeout_ms > 0 ? p->io_timeout_ms : DEF_IO_MS;
	snprintf(x->where, sizeof(x->where), "%s@%s:%d", p->user, p->host,
		 p->port);

	rc = tcp_connect(x, p, deadline);
	if (rc)
		goto out_close;
	x->ses = libssh2_session_init();
	if (!x->ses) {
		rc = fail(x, -ENOMEM, "libssh2_session_init failed");
		goto out_close;
	}
	libssh2_session_set_blocking(x->ses, 1);

	rc = budget(x, deadline, "SSH handshake with");
	if (rc)
		goto out_close;
	rc = libssh2_session_handshake(x->ses, x->fd);
	if (rc) {
		rc = ssh_fail(x, rc, "SSH handshake with %s", x->where);
		goto out_close;
	}

	key = libssh2_session_hostkey(x->ses, &klen, &ktype);
	tname = hostkey_name(ktype);
	if (!key || !tname) {
		rc = fail(x, -EACCES, "%s: unsupported host key type %d",
			  x->where, ktype);
		goto out_close;
	}
	rc = p->hostkey(p->hostkey_arg, tname, (const unsigned char *)key, klen,
			err, errlen);
	if (rc) {
		rc = rc < 0 ? rc : -EACCES;
		if (err && errlen && !err[0])
			snprintf(err, errlen, "%s: host key refused", x->where);
		err_set = true;
		goto out_close;
	}

	rc = budget(x, deadline, "authentication on");
	if (rc)
		goto out_close;
	rc = p->key_path && *p->key_path ? auth_key(x, p) : auth_agent(x, p);
	/* A refused or missing key: the password, if there is one. */
	if (rc == -EACCES && !x->broken && p->password && *p->password &&
	    !(rc = budget(x, deadline, "password authentication on")))
		rc = auth_password(x, p);
	if (rc)
		goto out_close;

	rc = budget(x, deadline, "SFTP start on");
	if (rc)
		goto out_close;
	rc = start_sftp(x);
	if (rc)
		goto out_close;

	libssh2_session_set_timeout(x->ses, x->io_ms);
	x->base.err[0] = '\0';
	*out = &x->base;
	return 0;

out_close:
	if (!err_set && err && errlen)
		snprintf(err, errlen, "%s", x->base.err);
	/* A failed open is never polite: don't wait on the peer to say bye. */
	break_session(x);
	sftp_close(&x->base);
	return rc;
}

/* ------------------------------------------------------------------ */
/* SFTP mode                                                          */

static void attr_from_sftp(const LIBSSH2_SFTP_ATTRIBUTES *a,
			   struct xfer_attr *out)
{
	memset(out, 0, sizeof(*out));
	if (a->flags & LIBSSH2_SFTP_ATTR_SIZE)
		out->size = a->filesize;
	if (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS)
		out->mode = (uint32_t)a->permissions;
	if (a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME)
		out->mtime = (int64_t)a->mtime;
}

static int sftp_stat_path(struct sftp_xfer *x, const char *path,
			  struct xfer_attr *out)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	int rc;

	rc = libssh2_sftp_stat_ex(x->sftp, path, strlen(path),
				  LIBSSH2_SFTP_LSTAT, &a);
	if (rc)
		return ssh_fail(x, rc, "stat %s", path);
	if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
		return fail(x, -EIO, "stat %s: server sent no file mode", path);
	attr_from_sftp(&a, out);
	return 0;
}

/* A name we hand upwards: not empty, not . or .., no '/' or NUL. */
static bool name_ok(const char *name, size_t len)
{
	if (!len || memchr(name, '/', len) || memchr(name, '\0', len))
		return false;
	return !(len == 1 && name[0] == '.') &&
	       !(len == 2 && name[0] == '.' && name[1] == '.');
}

static bool name_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') ||
	       (len == 2 && name[0] == '.' && name[1] == '.');
}

static int sftp_readdir_path(struct sftp_xfer *x, const char *path,
			     xfer_dirent_fn fn, void *arg)
{
	LIBSSH2_SFTP_HANDLE *dh;
	LIBSSH2_SFTP_ATTRIBUTES a;
	struct xfer_attr xa;
	int rc = 0, crc;
	ssize_t n;

	dh = libssh2_sftp_open_ex(x->sftp, path, strlen(path), 0, 0,
				  LIBSSH2_SFTP_OPENDIR);
	if (!dh)
		return ssh_fail(x, libssh2_session_last_errno(x->ses),
				"opendir %s", path);
	for (;;) {
		n = libssh2_sftp_readdir_ex(dh, x->name, sizeof(x->name), NULL,
					    0, &a);
		if (n == 0)
			break;
		if (n == LIBSSH2_ERROR_BUFFER_TOO_SMALL) {
			/* libssh2's entry cursor is lost now: give up */
			rc = fail(x, -EIO,
				  "readdir %s: name longer than %d "
				  "bytes",
				  path, NAME_BYTES - 1);
			break;
		}
		if (n < 0) {
			rc = ssh_fail(x, (int)n, "readdir %s", path);
			break;
		}
		if (name_dot(x->name, n))
			continue;
		if (!name_ok(x->name, n)) {
			rgt_log(RGT_WARN,
				"%s: readdir %s: skipping a name "
				"with '/' or NUL from the server",
				x->where, path);
			continue;
		}
		if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS)) {
			rc = fail(x, -EIO,
				  "readdir %s: server sent no file "
				  "mode",
				  path);
			break;
		}
		attr_from_sftp(&a, &xa);
		rc = fn(arg, x->name, &xa);
		if (rc)
			break;
	}
	crc = libssh2_sftp_close_handle(dh);
	if (crc && !rc)
		rc = ssh_fail(x, crc, "closedir %s", path);
	return rc;
}

static void file_close(struct sftp_xfer *x)
{
	int rc;

	if (x->fh) {
		rc = libssh2_sftp_close_handle(x->fh);
		if (rc && rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
			sftp_to_errno(x, rc); /* marks a dead session */
	}
	x->fh = NULL;
	free(x->fh_path);
	x->fh_path = NULL;
	x->fh_off = 0;
	x->fh_eof = false;
}

static int file_open(struct sftp_xfer *x, const char *path)
{
	x->fh_path = strdup(path);
	if (!x->fh_path)
		return fail(x, -ENOMEM, "out of memory");
	x->fh =
	    libssh2_sftp_open_ex(x->sftp, path, strlen(path), LIBSSH2_FXF_READ,
				 0, LIBSSH2_SFTP_OPENFILE);
	if (!x->fh) {
		int rc = ssh_fail(x, libssh2_session_last_errno(x->ses),
				  "open %s", path);

		file_close(x);
		return rc;
	}
	/* What the handle really has open: a file replaced by rename after
	 * the caller listed it is a different version (see xfer.h). */
	LIBSSH2_SFTP_ATTRIBUTES a;
	int frc = libssh2_sftp_fstat_ex(x->fh, &a, 0);
	if (frc) {
		frc = ssh_fail(x, frc, "fstat %s", path);
		file_close(x);
		return frc;
	}
	attr_from_sftp(&a, &x->fh_attr);
	x->fh_off = 0;
	x->fh_eof = false;
	return 0;
}

static bool same_version(const struct xfer_attr *a,
			 const struct xfer_attr *expect)
{
	return !expect ||
	       (a->size == expect->size && a->mtime == expect->mtime);
}

static ssize_t sftp_pread_path(struct sftp_xfer *x, const char *path, char *buf,
			       size_t len, uint64_t off,
			       const struct xfer_attr *expect)
{
	size_t done = 0;
	int rc;

	if (x->fh && (strcmp(x->fh_path, path) ||
		      !same_version(&x->fh_attr, expect)))
		file_close(x);
	if (x->broken)
		return -ENOTCONN;
	if (!x->fh) {
		rc = file_open(x, path);
		if (rc)
			return rc;
		if (!same_version(&x->fh_attr, expect)) {
			rc = fail(x, -ESTALE,
				  "read %s: changed on the box (now %" PRIu64
				  " bytes, mtime %" PRId64 ")",
				  path, x->fh_attr.size, x->fh_attr.mtime);
			file_close(x);
			return rc;
		}
	}
	if (x->fh_eof || x->fh_off != off) {
		/*
		 * seek64 to where the handle already is does nothing, not
		 * even clear libssh2's EOF flag; stepping off first does.
		 */
		if (x->fh_off == off)
			libssh2_sftp_seek64(x->fh, off + 1);
		libssh2_sftp_seek64(x->fh, off);
		x->fh_off = off;
		x->fh_eof = false;
	}
	while (done < len) {
		size_t want = len - done;
		ssize_t n;

		/* read-ahead (4x the buffer) = what is still owed, also on
		 * a handle that continues: the fetcher does its own read-ahead
		 * by blocks, and the next block of this session is as often
		 * somewhere else, so anything libssh2 asked for past this
		 * call would cross the network to be thrown away (measured:
		 * 200 random 1 MiB reads fetched 788 MiB, now 369) */
		size_t q = (want + 3) / 4;

		want = q < 32768 ? (want < 32768 ? want : 32768) : q;
		n = libssh2_sftp_read(x->fh, buf + done, want);
		if (n < 0) {
			rc = ssh_fail(x, (int)n, "read %s at %" PRIu64, path,
				      off + done);
			file_close(x);
			return rc;
		}
		if (n == 0) {
			x->fh_eof = true;
			break;
		}
		done += n;
		x->fh_off += n;
	}
	return done;
}

/* ------------------------------------------------------------------ */
/* exec channels                                                      */

/* Receives stdout; 0 to go on, <0 an error, >0 stop quietly. */
typedef int (*sink_fn)(void *arg, const char *p, size_t n);

struct run {
	sink_fn sink;
	void *arg;
	bool marked;	/* expect MARK before the real output */
	size_t mpos;	/* bytes of MARK matched so far */
	size_t skipped; /* noise before MARK */
	struct buf err; /* first ERRTEXT_MAX bytes of stderr */
	int status;
	int64_t until;	/* monotonic ms bound on the whole run; 0: none,
			 * only io_ms without output (the idle limit) */
};

static int run_stdout(struct run *r, const char *p, size_t n)
{
	size_t i;

	if (r->marked && r->mpos < sizeof(MARK) - 1) {
		/* MARK's first byte occurs once in it: a plain scan works */
		for (i = 0; i < n && r->mpos < sizeof(MARK) - 1; i++) {
			if (p[i] == MARK[r->mpos])
				r->mpos++;
			else
				r->mpos = p[i] == MARK[0];
		}
		r->skipped += i;
		if (r->mpos < sizeof(MARK) - 1) {
			if (r->skipped > MARK_SKIP_MAX)
				return -EPROTO;
			return 0;
		}
		p += i;
		n -= i;
		if (r->skipped > sizeof(MARK) - 1)
			RGT_DEBUG_LOG("skipped %zu bytes of shell output",
				      r->skipped - (sizeof(MARK) - 1));
	}
	return n ? r->sink(r->arg, p, n) : 0;
}

static void run_stderr(struct run *r, const char *p, size_t n)
{
	size_t room = r->err.max - r->err.len;

	buf_append(&r->err, p, n < room ? n : room);
}

/*
 * Drain stdout and stderr of @ch until both reach EOF. Non-blocking, so
 * neither stream can stall the other. Without r->until, io_ms without
 * progress times out; with it, silence is fine and r->until bounds the
 * whole pump. Either way poll() wakes up on EOF/RST of the socket and the
 * next libssh2 read reports the dead connection at once.
 */
static int chan_pump(struct sftp_xfer *x, LIBSSH2_CHANNEL *ch, struct run *r)
{
	bool bounded = r->until > 0;
	int64_t deadline = bounded ? r->until : now_ms() + x->io_ms;
	bool out_eof = false, err_eof = false;
	int rc = 0;

	libssh2_session_set_blocking(x->ses, 0);
	while (!out_eof || !err_eof) {
		bool progress = false, changed = false;
		ssize_t n;

		if (!out_eof) {
			n = libssh2_channel_read_ex(ch, 0, x->iobuf,
						    sizeof(x->iobuf));
			if (n > 0) {
				progress = true;
				rc = run_stdout(r, x->iobuf, n);
				if (rc)
					break;
			} else if (n == 0) {
				out_eof = changed = true;
			} else if (n != LIBSSH2_ERROR_EAGAIN) {
				rc = ssh_fail(x, (int)n, "read from command");
				break;
			}
		}
		if (!err_eof) {
			n = libssh2_channel_read_ex(ch,
						    SSH_EXTENDED_DATA_STDERR,
						    x->iobuf, sizeof(x->iobuf));
			if (n > 0) {
				progress = true;
				run_stderr(r, x->iobuf, n);
			} else if (n == 0) {
				err_eof = changed = true;
			} else if (n != LIBSSH2_ERROR_EAGAIN) {
				rc = ssh_fail(x, (int)n, "read from command");
				break;
			}
		}
		if (progress) {
			if (!bounded)
				deadline = now_ms() + x->io_ms;
			continue;
		}
		if (out_eof && err_eof)
			break;
		/*
		 * Reading one stream makes libssh2 read every packet the
		 * socket has, for both: stdout data (and the EOF) can sit in
		 * its queue while the socket is quiet. Poll the socket only
		 * when nothing is queued, or a command whose last output
		 * came in one burst would wait out the whole timeout.
		 */
		if (changed || (!out_eof && libssh2_poll_channel_read(ch, 0)) ||
		    (!err_eof && libssh2_poll_channel_read(ch, 1)))
			continue;

		int64_t left = deadline - now_ms();
		int dirs = libssh2_session_block_directions(x->ses);
		struct pollfd pfd = {.fd = x->fd, .events = POLLIN};

		if (left <= 0 && bounded) {
			/* The command still runs on the box: this channel
			 * (and so the session) cannot be reused. */
			break_session(x);
			rc = fail(x, -ETIMEDOUT,
				  "command on %s still running at its deadline",
				  x->where);
			break;
		}
		if (left <= 0) {
			rc = ssh_fail(x, LIBSSH2_ERROR_TIMEOUT,
				      "command output");
			break;
		}
		if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 &&
		    errno != EINTR) {
			rc = fail(x, -errno, "poll: %s", strerror(errno));
			break;
		}
	}
	libssh2_session_set_blocking(x->ses, 1);
	return rc;
}

static int signal_status(const char *name)
{
	static const struct {
		const char *name;
		int sig;
	} tab[] = {
	    {"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT},
	    {"ILL", SIGILL},   {"ABRT", SIGABRT}, {"FPE", SIGFPE},
	    {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE},
	    {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"BUS", SIGBUS},
	    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(name, tab[i].name))
			return 128 + tab[i].sig;
	return 255;
}

/*
 * With a deadline, give the next blocking libssh2 step what is left of it
 * (at most io_ms); without one, nothing changes (io_ms per step).
 */
static int step_budget(struct sftp_xfer *x, const struct run *r,
		       const char *step)
{
	int64_t left;

	if (!r->until)
		return 0;
	left = r->until - now_ms();
	if (left <= 0) {
		break_session(x);
		return fail(x, -ETIMEDOUT, "%s on %s: command deadline expired",
			    step, x->where);
	}
	libssh2_session_set_timeout(x->ses, left < x->io_ms ? (long)left
							    : x->io_ms);
	return 0;
}

/*
 * Run @cmd on a new channel; stdout goes to r->sink, stderr to r->err, the
 * exit status (128 + N for signal N) to r->status. Returns 0, -errno, or
 * the sink's positive stop value.
 */
static int chan_run(struct sftp_xfer *x, const char *cmd, struct run *r)
{
	LIBSSH2_CHANNEL *ch;
	char *sig = NULL;
	size_t siglen = 0;
	int rc;

	r->status = -1;
	rc = step_budget(x, r, "open channel");
	if (rc)
		return rc;
	ch = libssh2_channel_open_session(x->ses);
	if (!ch) {
		rc = ssh_fail(x, libssh2_session_last_errno(x->ses),
			      "open channel on %s", x->where);
		if (r->until)
			libssh2_session_set_timeout(x->ses, x->io_ms);
		return rc;
	}
	rc = step_budget(x, r, "exec");
	if (rc)
		goto out_free;
	rc = libssh2_channel_exec(ch, cmd);
	if (rc) {
		rc = ssh_fail(x, rc, "exec on %s", x->where);
		goto out_free;
	}
	rc = chan_pump(x, ch, r);
	if (rc)
		goto out_free;
	rc = step_budget(x, r, "close channel");
	if (rc)
		goto out_free;
	rc = libssh2_channel_close(ch);
	if (!rc)
		rc = libssh2_channel_wait_closed(ch);
	if (rc) {
		rc = ssh_fail(x, rc, "close channel on %s", x->where);
		goto out_free;
	}
	r->status = libssh2_channel_get_exit_status(ch);
	if (libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL,
					    NULL) == 0 &&
	    sig) {
		r->status = signal_status(sig);
		libssh2_free(x->ses, sig);
	}
out_free:
	/* closes the channel first if still open; fails fast if broken */
	libssh2_channel_free(ch);
	if (r->until)
		libssh2_session_set_timeout(x->ses, x->io_ms);
	return rc;
}

static void run_init(struct run *r, sink_fn sink, void *arg, bool marked)
{
	memset(r, 0, sizeof(*r));
	r->sink = sink;
	r->arg = arg;
	r->marked = marked;
	buf_init(&r->err, ERRTEXT_MAX);
}

/* Map what GNU tools print under LC_ALL=C to an errno. */
static int stderr_to_errno(const char *s)
{
	static const struct {
		const char *text;
		int err;
	} tab[] = {
	    {"No such file or directory", ENOENT},
	    {"Permission denied", EACCES},
	    {"Not a directory", ENOTDIR},
	    {"Is a directory", EISDIR},
	    {"Too many levels of symbolic links", ELOOP},
	    {"File name too long", ENAMETOOLONG},
	    {"Operation not permitted", EPERM},
	    {"Input/output error", EIO},
	};

	for (size_t i = 0; s && i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strstr(s, tab[i].text))
			return -tab[i].err;
	return -EIO;
}

/* A remote tool exited non-zero: errno from its stderr, line into err. */
static int exec_fail(struct sftp_xfer *x, struct run *r, const char *what,
		     const char *path)
{
	const char *text = r->err.data ? r->err.data : "";
	int len = (int)strcspn(text, "\n");

	return fail(x, stderr_to_errno(text), "%s %s: exit %d: %.*s", what,
		    path, r->status, len, text);
}

/* Append @path for a command line: quoted, and never taken as an option. */
static int quote_path(struct buf *b, const char *path)
{
	int rc = 0;

	if (path[0] == '-')
		rc = buf_append(b, "./", 2);
	return rc ? rc : xfer_shell_quote(b, path);
}

static int sink_buf(void *arg, const char *p, size_t n)
{
	return buf_append(arg, p, n);
}

/* Parse one unsigned number in @base ending at @end; false if malformed. */
static bool parse_u64(const char **sp, int base, char end, uint64_t *v)
{
	const char *s = *sp;
	char *e;

	if (!isxdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoull(s, &e, base);
	if (errno || e == s || *e != end)
		return false;
	*sp = e + 1;
	return true;
}

static bool parse_i64(const char **sp, char end, int64_t *v)
{
	const char *s = *sp;
	char *e;

	if (*s != '-' && !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoll(s, &e, 10);
	if (errno || e == s || *e != end)
		return false;
	*sp = e + 1;
	return true;
}

static int exec_stat(struct sftp_xfer *x, const char *path,
		     struct xfer_attr *out)
{
	struct buf cmd, o;
	struct run r;
	uint64_t mode, size;
	int64_t mtime;
	const char *s;
	int rc;

	buf_init(&cmd, PATH_BYTES * 4 + 256);
	buf_init(&o, 256);
	run_init(&r, sink_buf, &o, true);
	rc =
	    buf_appendf(&cmd, "%sLC_ALL=C stat -c '%%f %%s %%Y' -- ", MARK_CMD);
	if (!rc)
		rc = quote_path(&cmd, path);
	if (rc) {
		rc = fail(x, rc, "stat %s: command too long", path);
		goto out_free;
	}
	rc = chan_run(x, cmd.data, &r);
	if (rc) {
		if (rc == -EFBIG || rc == -EPROTO)
			rc = fail(x, -EIO, "stat %s: unexpected output", path);
		goto out_free;
	}
	if (r.status) {
		rc = exec_fail(x, &r, "stat", path);
		goto out_free;
	}
	s = o.data ? o.data : "";
	if (!parse_u64(&s, 16, ' ', &mode) || !parse_u64(&s, 10, ' ', &size) ||
	    !parse_i64(&s, '\n', &mtime) || *s || mode > UINT32_MAX) {
		rc = fail(x, -EIO, "stat %s: cannot parse the output of stat",
			  path);
		goto out_free;
	}
	out->mode = (uint32_t)mode;
	out->size = size;
	out->mtime = mtime;
out_free:
	buf_cleanup(&r.err);
	buf_cleanup(&o);
	buf_cleanup(&cmd);
	return rc;
}

/*
 * find -printf records: "DEPTH TYPE MODE SIZE MTIME\0NAME\0". The first one
 * is the directory itself (depth 0), which tells ENOTDIR apart.
 */
struct find_parse {
	struct sftp_xfer *x;
	const char *path;
	xfer_dirent_fn fn;
	void *arg;
	int cb_rc;
	bool seen_top;
	size_t len;
	char carry[CARRY_BYTES];
};

static uint32_t find_type(char t)
{
	/* clang-format off */
	switch (t) {
	case 'f': return S_IFREG;
	case 'd': return S_IFDIR;
	case 'l': return S_IFLNK;
	case 'b': return S_IFBLK;
	case 'c': return S_IFCHR;
	case 'p': return S_IFIFO;
	case 's': return S_IFSOCK;
	default:  return 0;
	}
	/* clang-format on */
}

static int find_record(struct find_parse *fp, const char *hdr, const char *name,
		       size_t nlen)
{
	struct xfer_attr a;
	uint64_t depth, mode, size;
	int64_t mtime;
	uint32_t type;
	const char *s = hdr;
	char t;

	if (!parse_u64(&s, 10, ' ', &depth) || !*s || s[1] != ' ')
		return -EPROTO;
	t = *s;
	s += 2;
	if (!parse_u64(&s, 8, ' ', &mode) || !parse_u64(&s, 10, ' ', &size))
		return -EPROTO;
	/* %T@ is "seconds.fraction": keep the seconds */
	if (!parse_i64(&s, '.', &mtime) && !parse_i64(&s, '\0', &mtime))
		return -EPROTO;
	type = find_type(t);
	if (!fp->seen_top) {
		if (depth != 0)
			return -EPROTO;
		fp->seen_top = true;
		if (type != S_IFDIR)
			return fail(fp->x, -ENOTDIR, "readdir %s: %s", fp->path,
				    strerror(ENOTDIR));
		return 0;
	}
	if (depth != 1 || mode > 07777)
		return -EPROTO;
	if (!type || !name_ok(name, nlen)) {
		RGT_DEBUG_LOG("%s: readdir %s: skipping entry of type %c",
			      fp->x->where, fp->path, t);
		return 0;
	}
	a.mode = type | (uint32_t)mode;
	a.size = size;
	a.mtime = mtime;
	fp->cb_rc = fp->fn(fp->arg, name, &a);
	return fp->cb_rc ? 1 : 0;
}

static int sink_find(void *arg, const char *p, size_t n)
{
	struct find_parse *fp = arg;

	while (n) {
		size_t take = sizeof(fp->carry) - fp->len;
		size_t pos = 0;

		if (take > n)
			take = n;
		memcpy(fp->carry + fp->len, p, take);
		fp->len += take;
		p += take;
		n -= take;
		for (;;) {
			char *hdr = fp->carry + pos;
			char *z1 = memchr(hdr, '\0', fp->len - pos);
			char *name, *z2;
			int rc;

			if (!z1)
				break;
			name = z1 + 1;
			z2 = memchr(name, '\0', fp->carry + fp->len - name);
			if (!z2)
				break;
			rc = find_record(fp, hdr, name, z2 - name);
			if (rc)
				return rc;
			pos = z2 + 1 - fp->carry;
		}
		if (pos == 0 && fp->len == sizeof(fp->carry))
			return -EPROTO; /* one record larger than any name */
		memmove(fp->carry, fp->carry + pos, fp->len - pos);
		fp->len -= pos;
	}
	return 0;
}

static int exec_readdir(struct sftp_xfer *x, const char *path,
			xfer_dirent_fn fn, void *arg)
{
	struct find_parse *fp;
	struct buf cmd;
	struct run r;
	int rc;

	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return fail(x, -ENOMEM, "out of memory");
	fp->x = x;
	fp->path = path;
	fp->fn = fn;
	fp->arg = arg;
	buf_init(&cmd, PATH_BYTES * 4 + 256);
	run_init(&r, sink_find, fp, true);
	rc = buf_appendf(&cmd, "%sLC_ALL=C find -H ", MARK_CMD);
	if (!rc)
		rc = quote_path(&cmd, path);
	if (!rc)
		rc = buf_appendf(&cmd, " -maxdepth 1 -printf "
				       "'%%d %%y %%m %%s %%T@\\0%%f\\0'");
	if (rc) {
		rc = fail(x, rc, "readdir %s: command too long", path);
		goto out_free;
	}
	rc = chan_run(x, cmd.data, &r);
	if (rc > 0) {
		rc = fp->cb_rc; /* the callback asked to stop */
		goto out_free;
	}
	if (rc == -ENOTDIR)
		goto out_free;
	if (rc == -EPROTO) {
		rc = fail(x, -EIO,
			  "readdir %s: cannot parse the output of "
			  "find",
			  path);
		goto out_free;
	}
	if (rc)
		goto out_free;
	if (r.status) {
		rc = exec_fail(x, &r, "readdir", path);
		goto out_free;
	}
	if (fp->len || !fp->seen_top)
		rc =
		    fail(x, -EIO, "readdir %s: truncated output of find", path);
out_free:
	buf_cleanup(&r.err);
	buf_cleanup(&cmd);
	free(fp);
	return rc;
}

struct mem_sink {
	char *p;
	size_t len, got;
};

static int sink_mem(void *arg, const char *p, size_t n)
{
	struct mem_sink *m = arg;

	if (n > m->len - m->got)
		return -EPROTO;
	memcpy(m->p + m->got, p, n);
	m->got += n;
	return 0;
}

static ssize_t exec_pread(struct sftp_xfer *x, const char *path, char *buf,
			  size_t len, uint64_t off)
{
	struct mem_sink m = {buf, len, 0};
	struct buf cmd;
	struct run r;
	int rc;

	buf_init(&cmd, PATH_BYTES * 4 + 256);
	run_init(&r, sink_mem, &m, true);
	rc = buf_appendf(&cmd, "%sLC_ALL=C dd if=", MARK_CMD);
	if (!rc)
		rc = xfer_shell_quote(&cmd, path);
	if (!rc)
		rc = buf_appendf(&cmd,
				 " iflag=skip_bytes,count_bytes "
				 "skip=%" PRIu64 " count=%zu bs=%d "
				 "status=none",
				 off, len, len < DD_BS ? (int)len : DD_BS);
	if (rc) {
		rc = fail(x, rc, "read %s: command too long", path);
		goto out_free;
	}
	rc = chan_run(x, cmd.data, &r);
	if (rc == -EPROTO)
		rc = fail(x, -EIO, "read %s: dd sent more than asked", path);
	if (rc)
		goto out_free;
	if (r.status)
		rc = exec_fail(x, &r, "read", path);
out_free:
	buf_cleanup(&r.err);
	buf_cleanup(&cmd);
	return rc ? rc : (ssize_t)m.got;
}

/* ------------------------------------------------------------------ */
/* struct xfer_ops                                                    */

static int sftp_stat(struct xfer *xb, const char *path, struct xfer_attr *out)
{
	struct sftp_xfer *x = to_x(xb);
	int rc = check_usable(x, path);

	if (rc)
		return rc;
	return x->sftp ? sftp_stat_path(x, path, out) : exec_stat(x, path, out);
}

static int sftp_readdir(struct xfer *xb, const char *path, xfer_dirent_fn fn,
			void *arg)
{
	struct sftp_xfer *x = to_x(xb);
	int rc = check_usable(x, path);

	if (rc)
		return rc;
	return x->sftp ? sftp_readdir_path(x, path, fn, arg)
		       : exec_readdir(x, path, fn, arg);
}

static ssize_t sftp_pread(struct xfer *xb, const char *path, void *buf,
			  size_t len, uint64_t off,
			  const struct xfer_attr *expect)
{
	struct sftp_xfer *x = to_x(xb);
	int rc = check_usable(x, path);

	if (rc)
		return rc;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (!len)
		return 0;
	if (x->sftp)
		return sftp_pread_path(x, path, buf, len, off, expect);
	if (expect) {
		/* Exec mode has no handle: check the version before each
		 * range. Not atomic with the dd, but a rename between the
		 * two still shows as a size or mtime change at the next
		 * range, and teardown verifies every byte by SHA-256. */
		struct xfer_attr a;
		rc = exec_stat(x, path, &a);
		if (rc)
			return rc;
		if (!same_version(&a, expect))
			return fail(x, -ESTALE, "read %s: changed on the box",
				    path);
	}
	return exec_pread(x, path, buf, len, off);
}

static int sftp_exec(struct xfer *xb, const char *cmd, struct buf *out,
		     int *status, long deadline_ms)
{
	struct sftp_xfer *x = to_x(xb);
	struct run r;
	int rc = check_usable(x, NULL);

	if (rc)
		return rc;
	buf_reset(out);
	run_init(&r, sink_buf, out, false);
	if (deadline_ms > 0)
		r.until = now_ms() + deadline_ms;
	rc = chan_run(x, cmd, &r);
	if (rc == -EFBIG)
		fail(x, rc, "command output larger than %zu bytes", out->max);
	else if (!rc && status)
		*status = r.status;
	buf_cleanup(&r.err);
	return rc;
}

static void sftp_close(struct xfer *xb)
{
	struct sftp_xfer *x = to_x(xb);

	if (!x)
		return;
	if (x->ses) {
		file_close(x);
		if (x->sftp)
			libssh2_sftp_shutdown(x->sftp);
		if (!x->broken)
			libssh2_session_disconnect(x->ses, "rgtfs: bye");
		libssh2_session_free(x->ses);
	}
	if (x->fd >= 0)
		close(x->fd);
	free(x);
}

const struct xfer_ops xfer_sftp_ops = {
    .name = "sftp",
    .open = sftp_open,
    .stat = sftp_stat,
    .readdir = sftp_readdir,
    .pread = sftp_pread,
    .exec = sftp_exec,
    .close = sftp_close,
};

/* ------------------------------------------------------------------ */
/* known_hosts                                                        */

static int knownhost_bits(const char *type)
{
	if (!strcmp(type, "ssh-ed25519"))
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
	if (!strcmp(type, "ecdsa-sha2-nistp256"))
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	if (!strcmp(type, "ecdsa-sha2-nistp384"))
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	if (!strcmp(type, "ecdsa-sha2-nistp521"))
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	if (!strcmp(type, "ssh-rsa"))
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	if (!strcmp(type, "ssh-dss"))
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	return 0;
}

/* "@revoked PATTERNS TYPE BASE64 ...": is it our key (any host)? */
static bool revoked_is(const char *line, const char *b64)
{
	char key[16384];

	if (sscanf(line, "%*s %*s %*s %16383s", key) != 1)
		return false;
	return !strcmp(key, b64);
}

int xfer_known_hosts_check(const char *file, const char *host, int port,
			   const char *type, const unsigned char *key,
			   size_t keylen)
{
	LIBSSH2_SESSION *ses;
	LIBSSH2_KNOWNHOSTS *hosts;
	char name[300], *line = NULL, *b64 = NULL;
	size_t cap = 0;
	ssize_t n;
	int bits, rc, skipped = 0;
	bool revoked = false;
	FILE *f;

	bits = knownhost_bits(type);
	if (!bits || !keylen || keylen > 8192 || !host || !*host)
		return -EINVAL;
	if (port == 22 || port <= 0)
		snprintf(name, sizeof(name), "%s", host);
	else if (snprintf(name, sizeof(name), "[%s]:%d", host, port) >=
		 (int)sizeof(name))
		return -EINVAL;
	rc = lib_ready();
	if (rc)
		return rc;
	f = fopen(file, "re");
	if (!f)
		return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -EIO;
	ses = libssh2_session_init();
	if (!ses) {
		rc = -ENOMEM;
		goto out_fclose;
	}
	hosts = libssh2_knownhost_init(ses);
	b64 = malloc(4 * ((keylen + 2) / 3) + 1);
	if (!hosts || !b64) {
		rc = -ENOMEM;
		goto out_free;
	}
	EVP_EncodeBlock((unsigned char *)b64, key, (int)keylen);

	while ((n = getline(&line, &cap, f)) > 0) {
		char *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#' || *p == '\n' || *p == '\r')
			continue;
		if (*p == '@') {
			/* @cert-authority is for certificates: not ours */
			if (!strncmp(p, "@revoked", 8) &&
			    isspace((unsigned char)p[8]) && revoked_is(p, b64))
				revoked = true;
			continue;
		}
		if (libssh2_knownhost_readline(hosts, p, strlen(p),
					       LIBSSH2_KNOWNHOST_FILE_OPENSSH))
			skipped++;
	}
	if (ferror(f)) {
		rc = -EIO;
		goto out_free;
	}
	if (skipped)
		RGT_DEBUG_LOG("%s: %d line(s) libssh2 cannot parse, ignored",
			      file, skipped);
	if (revoked) {
		rc = -EACCES;
		goto out_free;
	}
	/* port -1: only @name, never the plain host for another port */
	switch (libssh2_knownhost_checkp(
	    hosts, name, -1, (const char *)key, keylen,
	    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | bits,
	    NULL)) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		rc = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		rc = -EACCES;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		rc = -ENOENT;
		break;
	default:
		rc = -EIO;
		break;
	}
out_free:
	free(b64);
	free(line);
	if (hosts)
		libssh2_knownhost_free(hosts);
	libssh2_session_free(ses);
out_fclose:
	fclose(f);
	return rc;
}
