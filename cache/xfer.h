/*
 * xfer.h - the transport interface: how bytes and names come from a remote
 * place. One backend per file (xfer_sftp.c, xfer_s3.c); the block
 * fetcher and the teardown engine only see struct xfer_ops.
 *
 * Threads: a struct xfer (one SSH session, one S3 connection) is used by one
 * thread at a time; the caller serialises. Backends keep their own library
 * handles private.
 *
 * Bounds: every call returns within the timeouts given at open (connect and
 * per-operation); a dead peer gives -ETIMEDOUT/-EIO/-ENOTCONN, never a hang.
 * After -ENOTCONN, -ETIMEDOUT or -EIO on the session level the handle is
 * broken: the caller closes it and opens a new one.
 *
 * Errors: 0 or -errno; the latest human-readable reason is in x->err.
 */
#ifndef RGT_XFER_H
#define RGT_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"

#define XFER_ETAG_MAX 80
/* Most buffers one preadv call takes. */
#define XFER_IOV_MAX 64

struct xfer_attr {
	uint64_t size;
	int64_t mtime;		/* seconds since the epoch */
	uint32_t mode;		/* S_IFMT bits + permissions, as lstat */
	/*
	 * S3: the object's ETag exactly as the server sent it (quotes
	 * included), so blocks can be keyed by it; "" for directories and
	 * for SFTP. In pread's @expect a non-empty etag is compared with
	 * the response's, and a different one is -ESTALE.
	 */
	char etag[XFER_ETAG_MAX];
};

/*
 * Host key policy callback: called once per connect, after the key exchange
 * and before authentication. @type is "ssh-ed25519", "ecdsa-sha2-nistp256",
 * ...; @key/@keylen the raw public key blob. Return 0 to accept, or -EACCES
 * (write the reason into @err) to refuse; the connect then fails with -EACCES.
 */
typedef int (*xfer_hostkey_fn)(void *arg, const char *type,
			       const unsigned char *key, size_t keylen,
			       char *err, size_t errlen);

struct s3_creds;

/*
 * An S3-compatible bucket (xfer_s3_ops): the objects under @prefix become a
 * read-only tree. Everything is borrowed for the duration of open() only
 * (the handle keeps its own copies, and wipes the secrets when closed).
 */
struct xfer_s3_params {
	/* "https://s3.us-east-1.amazonaws.com", "http://127.0.0.1:9000":
	 * scheme, host and port only (no path, no userinfo, no query). */
	const char *endpoint;
	const char *region;		/* signing region, "us-east-1" */
	const char *bucket;
	const char *prefix;		/* root inside the bucket; "" or NULL:
					 * the whole bucket ("a/b" = "a/b/") */
	/* false: path-style endpoint/bucket/key; true: virtual-hosted
	 * bucket.host/key (AWS's default, needs DNS for the bucket). */
	bool virtual_hosted;
	const struct s3_creds *creds;	/* s3cred.h */
	const char *ca_file;		/* extra CA bundle, or NULL */
	/* Listing bounds (0: defaults 1000 pages, 200000 entries): a
	 * directory larger than that is an error, never a partial list. */
	long max_pages;
	long max_entries;
};

struct xfer_params {
	const char *host;
	int port;
	const char *user;
	const char *key_path;		/* private key; NULL: ssh-agent */
	/*
	 * Login password, or NULL: tried only after the key (or the agent)
	 * was refused or is missing, for boxes that take nothing else.
	 * Borrowed: the caller owns and wipes it; never logged.
	 */
	const char *password;
	long connect_timeout_ms;	/* TCP connect + handshake + auth */
	long io_timeout_ms;		/* any single operation */
	xfer_hostkey_fn hostkey;	/* required for SSH backends */
	void *hostkey_arg;
	/*
	 * Optional, same arguments: would the policy accept this key? It
	 * records nothing (no trust-on-first-use pin is written). A backend
	 * that learns a key before the server has proved it holds it (the
	 * OpenSSH transport's ssh-keyscan) asks this first, and calls
	 * @hostkey, which may record, only once the handshake verified the
	 * server's signature with that key. NULL: @hostkey for both.
	 */
	xfer_hostkey_fn hostkey_peek;
	/* Required for xfer_s3_ops (host, user, key, hostkey unused);
	 * NULL for SSH. */
	const struct xfer_s3_params *s3;
	/*
	 * xfer_openssh_ops: a private directory (0700, ours) for the
	 * one-key known_hosts files of its sessions; NULL (or a path with
	 * characters OpenSSH would expand or split): a mkdtemp'd one under
	 * /tmp per session. Unused by the other backends.
	 */
	const char *state_dir;
};

/* Base of every backend's handle; backends embed it as their first member. */
struct xfer {
	const struct xfer_ops *ops;
	char err[256];
};

/* One directory entry; name is any bytes but '/' and NUL (can hold '\n'). */
typedef int (*xfer_dirent_fn)(void *arg, const char *name,
			      const struct xfer_attr *attr);

struct xfer_ops {
	const char *name;
	int (*open)(const struct xfer_params *p, struct xfer **out, char *err,
		    size_t errlen);
	/* lstat semantics: a symlink is reported as a symlink. */
	int (*stat)(struct xfer *x, const char *path, struct xfer_attr *out);
	/* Calls @fn for every entry but "." and ".."; stops if @fn returns
	 * non-zero and returns that value. */
	int (*readdir)(struct xfer *x, const char *path, xfer_dirent_fn fn,
		       void *arg);
	/*
	 * Read up to @len bytes at @off of the regular file @path. Returns the
	 * number of bytes read (short only at EOF), or -errno. Sequential calls
	 * on the same path reuse one open handle and the library's read-ahead.
	 *
	 * @expect (may be NULL) is the version the caller wants: if the file
	 * behind the handle (checked by fstat when it is opened, and a handle
	 * opened for another version is reopened) has another size or mtime,
	 * the call fails with -ESTALE and reads nothing, so bytes of two
	 * versions are never handed out under one identity.
	 *
	 * On any error the contents of @buf are undefined (a backend may
	 * have written part of a response there before it failed a check):
	 * the caller must not use them.
	 */
	ssize_t (*pread)(struct xfer *x, const char *path, void *buf,
			 size_t len, uint64_t off,
			 const struct xfer_attr *expect);
	/*
	 * pread into @iovcnt (1..XFER_IOV_MAX) buffers filled in order: one
	 * request for a run of cache blocks, straight into the blocks. Same
	 * results as pread of their total length (and the same rule: after
	 * an error the buffers hold nothing usable). NULL: the backend has
	 * none and callers use pread per buffer.
	 */
	ssize_t (*preadv)(struct xfer *x, const char *path,
			  const struct iovec *iov, int iovcnt, uint64_t off,
			  const struct xfer_attr *expect);
	/*
	 * Run @cmd through the remote shell; stdout into @out (bounded by its
	 * max: -EFBIG past it), exit status into @status. NULL for backends
	 * without a shell (S3).
	 *
	 * @deadline_ms <= 0: the command may run as long as it keeps
	 * producing output; io_timeout without any output is -ETIMEDOUT.
	 * @deadline_ms > 0: the command may be silent for as long as it
	 * likes, but the whole call (channel open to exit status) is bounded
	 * by @deadline_ms of the monotonic clock (-ETIMEDOUT, and the
	 * session is broken). Either way a connection that dies (EOF, RST)
	 * is noticed as soon as the socket reports it (-ENOTCONN/-EIO).
	 */
	int (*exec)(struct xfer *x, const char *cmd, struct buf *out,
		    int *status, long deadline_ms);
	void (*close)(struct xfer *x);
};

extern const struct xfer_ops xfer_sftp_ops;
/*
 * SSH through the user's own OpenSSH client (xfer_openssh.c): `ssh -s HOST
 * sftp` as a child process speaking SFTP v3 over its stdin/stdout, many
 * READs in flight; exec runs a second ssh. Same host-key contract as
 * xfer_sftp_ops: ssh-keyscan fetches the box's keys, @hostkey decides,
 * and ssh may then only connect to the accepted key (a one-key
 * known_hosts file in @state_dir, StrictHostKeyChecking=yes). A later
 * session of the same process to the same host and port skips the scan:
 * ssh logs in with the key accepted before and @hostkey is asked once
 * ssh has verified it (after the login, before any file is touched); a
 * changed key is scanned again and judged as on first contact. Honours
 * ~/.ssh/config for what it does not set itself. No password logins
 * (-ENOTSUP when @password is set) and no exec-mode fallback for boxes
 * without an SFTP subsystem (-ENOTSUP): use xfer_sftp_ops for those.
 * -ENOENT when ssh or ssh-keyscan is not in PATH.
 */
extern const struct xfer_ops xfer_openssh_ops;
/*
 * S3 over http.c (xfer_s3.c): stat = HEAD (a missing key that is a
 * prefix of others is a directory), readdir = ListObjectsV2 with
 * delimiter '/', pread = ranged GET checked against @expect's size and
 * ETag; exec is NULL. Read-only: files 0444, directories 0555.
 */
extern const struct xfer_ops xfer_s3_ops;

/* Largest body xfer_s3_put() sends in one PUT (from memory). */
#define XFER_S3_PUT_MAX ((size_t)256 << 20)

/*
 * S3 only, outside xfer_ops (the tree is read-only): store @len bytes at
 * @data as the object at tree path @path of the handle @x (opened with
 * xfer_s3_ops), signed with the body's SHA-256, which S3 checks. Retried
 * like every request (the body is sent again). The new ETag into @etag
 * (may be NULL). 0, or -errno with the reason in x->err (-EFBIG past
 * XFER_S3_PUT_MAX, -EINVAL for another backend's handle).
 */
int xfer_s3_put(struct xfer *x, const char *path, const void *data,
		size_t len, char *etag, size_t etaglen);

/*
 * S3 only: HEAD of object @path with "x-amz-checksum-mode: ENABLED", so a
 * server that keeps a SHA-256 checksum of the object returns it: its
 * base64 text (as sent: "<b64>" or, for a multipart object's checksum of
 * checksums, "<b64>-N") into @sha256 (may be NULL; "" when the server sent
 * none). Size, mtime and ETag into @out. 0 or -errno (-ENOENT: no such
 * object), reason in x->err.
 */
int xfer_s3_head(struct xfer *x, const char *path, struct xfer_attr *out,
		 char *sha256, size_t shalen);

/* Longest upload id accepted from a server (with its NUL). */
#define XFER_S3_UPLOAD_ID_MAX 1024

/*
 * S3 only: a multipart upload of object @path (CreateMultipartUpload,
 * UploadPart, CompleteMultipartUpload, AbortMultipartUpload). Parts are
 * numbered from 1, at most 10000, each at most XFER_S3_PUT_MAX bytes sent
 * from memory and signed with its SHA-256; every part but the last must be
 * at least 5 MiB (S3's rule, not checked here). Each request is retried
 * like every request (http.c: bounded), with a budget that grows with its
 * body. The caller aborts an upload it does not complete: an unfinished
 * upload keeps its parts (and their cost) in the bucket.
 *
 * begin: the server's upload id into @upload_id (XFER_S3_UPLOAD_ID_MAX).
 * part: the part's ETag as sent (quoted MD5 of the part) into @etag.
 * complete: @etags[i] is part i+1's ETag; a 200 that carries an <Error>
 *   (S3 may fail the assembly after sending the status) is -EIO.
 * abort: 0 also when the upload is already gone (404).
 * 0 or -errno with the reason in x->err.
 */
int xfer_s3_mpu_begin(struct xfer *x, const char *path, char *upload_id,
		      size_t idlen);
int xfer_s3_mpu_part(struct xfer *x, const char *path, const char *upload_id,
		     unsigned partno, const void *data, size_t len, char *etag,
		     size_t etaglen);
int xfer_s3_mpu_complete(struct xfer *x, const char *path,
			 const char *upload_id, const char *const *etags,
			 unsigned nparts);
int xfer_s3_mpu_abort(struct xfer *x, const char *path,
		      const char *upload_id);

/*
 * Check @host:@port and the key against an OpenSSH known_hosts @file
 * (plain and hashed entries, [host]:port form for ports other than 22).
 * 0: listed with this key; -ENOENT: host not listed (or no file);
 * -EACCES: listed with a different key; other -errno on a broken file.
 */
int xfer_known_hosts_check(const char *file, const char *host, int port,
			   const char *type, const unsigned char *key,
			   size_t keylen);

/* OpenSSH's fingerprint of a public key blob: "SHA256:<base64, no =>". */
void xfer_key_fingerprint(const unsigned char *key, size_t len, char *out,
			  size_t outlen);

/* Quote @s for a POSIX shell ('...' with embedded quotes escaped). */
int xfer_shell_quote(struct buf *out, const char *s);

#endif
