/*
 * remote.h - one instance's remote side: its SSH endpoints, a small pool of
 * transport sessions, the host-key pin, and remote names and attributes
 * (listings) remembered in the store so they outlive the box.
 *
 * Threads: every function may be called from any thread. A session taken
 * with remote_acquire() belongs to the caller until remote_release().
 *
 * Locks: no function does network I/O (connect, close) while holding the
 * remote's lock, and remote_set_endpoints() does none at all, so callers
 * may hold their own locks around it.
 *
 * Bounds: remote_acquire() returns within (endpoints x connect timeout); a
 * connect that failed less than RETRY_AFTER seconds ago fails at once with
 * the same error, so a `cp -r` over a dead box does not wait per file.
 */
#ifndef RGT_REMOTE_H
#define RGT_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "platform.h"
#include "xfer.h"

struct store;
struct remote;

struct remote_params {
	const char *platform;		/* "vastai" */
	const char *id;			/* instance id */
	const char *user;
	const char *key_path;		/* NULL: ssh-agent */
	/* Login password after a refused or missing key (NULL: none).
	 * Copied; the copy is wiped when the remote is freed. */
	const char *password;
	bool strict_host_keys;		/* only ~/.ssh/known_hosts */
	long connect_timeout_ms;
	long io_timeout_ms;
	int max_sessions;
	struct store *store;
	/* transport; NULL: chosen by @transport. Set (S3, tests), it wins. */
	const struct xfer_ops *ops;
	/*
	 * SPEC transport =: OPENSSH is xfer_openssh_ops (without any
	 * password: it has none), LIBSSH2 xfer_sftp_ops. AUTO (the default,
	 * 0) takes OpenSSH when no password is involved and falls back to
	 * libssh2 within the same connect budget when it fails with anything
	 * but -EACCES (a refused host key or login is a verdict, not retried);
	 * once libssh2 worked where OpenSSH cannot (-ENOTSUP, -ENOENT,
	 * -EINVAL: no ssh, too old, no SFTP subsystem), the remote stays
	 * with libssh2.
	 */
	enum rgt_transport transport;
	/*
	 * The cache directory (NULL: none): the OpenSSH transport keeps its
	 * one-key known_hosts files in <state_dir>/ssh, made 0700 here.
	 * Copied.
	 */
	const char *state_dir;
	/* A bucket (ops = &xfer_s3_ops): borrowed, must outlive the remote;
	 * no endpoints, host keys or passwords are used. NULL for SSH. */
	const struct xfer_s3_params *s3;
};

int remote_new(const struct remote_params *p, struct remote **out);

/*
 * The password the platform keeps for this instance (AutoDL's
 * root_password), handed in by the poller, which fetches it (no API call
 * ever happens on a read's path); used when the remote has no @password.
 * Copied; the old copy is wiped. NULL forgets it.
 */
int remote_set_password(struct remote *r, const char *pw);
/* How many consecutive blocks one read request should carry: 8 for a
 * bucket (one GET per run of a sequential reader), 1 for SSH boxes. */
int remote_request_blocks(const struct remote *r);
/* A connect was refused with the platform's password (it may have
 * changed): the poller fetches it again. */
bool remote_password_refused(struct remote *r);

struct rgt_section;
/*
 * The login password of @sec (SPEC: password_env names an environment
 * variable, password_file a file of mode 0600 or stricter owned by us,
 * one trailing newline dropped; never the INI itself). NULL with "" in
 * @err when the section names none; NULL with a reason in @err (never the
 * password) when it names one that cannot be used. Free with
 * remote_password_free(), which wipes it.
 */
char *remote_password_load(const struct rgt_section *sec, char *err,
			   size_t errlen);
void remote_password_free(char *pw);
void remote_free(struct remote *r);

/* Replace the endpoints (direct first). Called by the poller. */
void remote_set_endpoints(struct remote *r, const struct rgt_endpoint *ep,
			  int n);
/* Forget a recent connect failure: the next acquire tries at once. */
void remote_retry_now(struct remote *r);
/* Copy the endpoint a shell user should use into @ep; -ENOENT if none. */
int remote_endpoint(struct remote *r, struct rgt_endpoint *ep);

/*
 * Take a connected session (connecting if needed). -EHOSTUNREACH (no
 * endpoint), -EACCES (host key or auth refused), -ETIMEDOUT, -ECONNREFUSED,
 * -EIO; the reason is readable with remote_error().
 */
int remote_acquire(struct remote *r, struct xfer **out);
/*
 * Does the box answer now? A new connection (never one from the pool: a
 * session opened before the box stopped can outlive its sshd), closed at
 * once, bounded by the connect timeout. 0 if it answered, else -errno.
 */
int remote_probe(struct remote *r);
/* Give a session back; @rc is the result of the last call made on it. */
void remote_release(struct remote *r, struct xfer *x, int rc);

/*
 * Read @len bytes at @off of remote file @path on any session (a reused
 * session found dead is replaced once). Returns bytes read or -errno.
 */
ssize_t remote_pread(struct remote *r, const char *path, void *buf,
		     size_t len, uint64_t off, const struct xfer_attr *expect);
/* remote_pread into @iovcnt (1..XFER_IOV_MAX) buffers, in order. */
ssize_t remote_preadv(struct remote *r, const char *path,
		      const struct iovec *iov, int iovcnt, uint64_t off,
		      const struct xfer_attr *expect);

/*
 * Run @cmd on the box (exec channel); stdout into @out. The command must
 * keep producing output: io_timeout without any is -ETIMEDOUT.
 */
int remote_exec(struct remote *r, const char *cmd, struct buf *out,
		int *status);

/*
 * Run @cmd on the box with a deadline that scales with its work, for long
 * silent steps (sha256sum of a large checkpoint): the command may print
 * nothing for as long as it likes, and the whole call (waiting for a
 * session, connecting, running, the exit status) is bounded by
 * @deadline_ms of the monotonic clock. Returns 0 with the exit status in
 * *@status and stdout in @out, or:
 *   -ETIMEDOUT  the deadline passed (the box froze, or the work is slower
 *               than planned); the session is closed
 *   -EIO        the connection died under the command (sshd killed, RST,
 *               EOF): noticed as soon as the socket reports it
 *   -EINVAL     @deadline_ms <= 0
 *   or an error of remote_acquire() (-EHOSTUNREACH, -EACCES, ...).
 * Like remote_exec(), a pooled session found dead at once is replaced and
 * the command sent once more; a command that died midway is not re-run.
 */
int remote_exec_bounded(struct remote *r, const char *cmd, struct buf *out,
			int *status, long deadline_ms);

/*
 * Deadline for hashing @bytes on the box (pure): @io_timeout_ms + 60 s +
 * the bytes at a floor rate of 25 MB/s (HASH_FLOOR_BYTES_PER_S in
 * remote.c), rounded up; LONG_MAX if it would overflow. 20 GB with a
 * 20 s io_timeout: 20 + 60 + 800 s = 880000 ms.
 */
long remote_hash_deadline_ms(uint64_t bytes, long io_timeout_ms);

/* Name of the transport the last successful connect used ("openssh",
 * "sftp" for libssh2, "s3"), or NULL before any. */
const char *remote_transport(struct remote *r);

/* Last connection-level problem ("" when the last connect worked). */
void remote_error(struct remote *r, char *buf, size_t len);

/* --- names and attributes ------------------------------------------------ */

struct rentry {
	char *name;
	struct xfer_attr attr;
};

struct rlisting {
	struct rentry *v;	/* sorted by name */
	size_t n;
	time_t fetched;		/* when it came from the box */
	bool stale;		/* served from memory/store, box unreachable */
	/* A bucket's listing that left out keys it could not map to names
	 * (remote_error() says which): not a complete roster. Memory only. */
	bool partial;
};

/*
 * The listing of remote directory @path: fresh (at most @max_age seconds
 * old) from the box when it can be reached, else the last one known (in
 * memory or in the store) with ->stale set. Only regular files and
 * directories are listed. -ENOENT if the box says there is no such dir;
 * a connection error if nothing is known. Free with rlisting_free().
 */
int remote_list(struct remote *r, const char *path, int max_age,
		struct rlisting **out);
void rlisting_free(struct rlisting *l);
/*
 * Record @v (@n entries, any order) as the listing of @path, as if it had
 * just been listed: the teardown's roster covers every directory, and
 * what it pulled must stay listable after the box is gone.
 */
int remote_remember(struct remote *r, const char *path,
		    const struct rentry *v, size_t n);
/* The last listing of @path known in memory or the store; no network. */
int remote_list_cached(struct remote *r, const char *path,
		       struct rlisting **out);
/* Entry @name of @l, or NULL. */
const struct rentry *rlisting_find(const struct rlisting *l,
				   const char *name);

/*
 * Attributes of one remote file (the log): fresh when reachable, else the
 * last known; same errors as remote_list().
 */
int remote_stat(struct remote *r, const char *path, int max_age,
		struct xfer_attr *out);

/*
 * Trust on first use, the decision the connect path makes for every new
 * session (strict_host_keys = no): pin @type/@key for this instance if no
 * key is pinned yet, else compare. 0: accept; -EACCES: a different key is
 * pinned (reason in @err); other -errno if the store fails. Atomic: of
 * any number of parallel first connects offering different keys, exactly
 * one key is pinned and every other is refused.
 */
int remote_pin_hostkey(struct remote *r, const char *type,
		       const unsigned char *key, size_t keylen, char *err,
		       size_t errlen);

/* Read the pinned host key description ("ssh-ed25519 SHA256:...") */
int remote_pinned_key(struct remote *r, char *buf, size_t len);

#endif
