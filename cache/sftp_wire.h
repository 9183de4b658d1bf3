/*
 * sftp_wire.h - the SFTP version 3 packet codec (draft-ietf-secsh-filexfer-02,
 * the version OpenSSH speaks), for xfer_openssh.c. Pure: no I/O, no
 * allocation but the caller's struct buf, no errno beyond its return value.
 *
 * A packet on the wire is uint32 length, byte type, then the body; every
 * request and every reply but VERSION carries a uint32 request id right
 * after the type. Integers are big-endian; a "string" is uint32 length and
 * that many bytes (not NUL-terminated, may hold any byte, NUL included).
 *
 * Building: sftp_put_*() append one whole request (length prefix included)
 * to a struct buf. All or nothing: on failure (-EFBIG past the buffer's
 * limit, -ENOMEM, -EINVAL for a string longer than SFTP_STR_MAX) the buffer
 * holds what it held before.
 *
 * Parsing: the server is hostile. sftp_frame() says whether a whole packet
 * is in a byte range and refuses a length of 0 or past @max before anything
 * is read; sftp_msg_parse() splits a packet into type, id and body; the
 * sftp_parse_*() functions read one reply type each and check every length
 * against the bytes that are really there. Anything malformed is -EPROTO:
 * truncated fields, strings past the end, trailing bytes after a reply that
 * has a fixed shape, a count of names or extension pairs that cannot fit in
 * the packet, attribute flags v3 does not define. Pointers handed out point
 * into the packet and are valid as long as it is.
 */
#ifndef RGT_SFTP_WIRE_H
#define RGT_SFTP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define SFTP_PROTO_VERSION 3
/* Longest string (path, handle, extension name) a builder sends. */
#define SFTP_STR_MAX 65536
/* Longest handle a server may give (the draft: 256 bytes). */
#define SFTP_HANDLE_MAX 256

/* clang-format off */
enum sftp_type {
	SSH_FXP_INIT		= 1,
	SSH_FXP_VERSION		= 2,
	SSH_FXP_OPEN		= 3,
	SSH_FXP_CLOSE		= 4,
	SSH_FXP_READ		= 5,
	SSH_FXP_LSTAT		= 7,
	SSH_FXP_FSTAT		= 8,
	SSH_FXP_OPENDIR		= 11,
	SSH_FXP_READDIR		= 12,
	SSH_FXP_STAT		= 17,
	SSH_FXP_STATUS		= 101,
	SSH_FXP_HANDLE		= 102,
	SSH_FXP_DATA		= 103,
	SSH_FXP_NAME		= 104,
	SSH_FXP_ATTRS		= 105,
	SSH_FXP_EXTENDED	= 200,
	SSH_FXP_EXTENDED_REPLY	= 201,
};

enum sftp_status {
	SSH_FX_OK			= 0,
	SSH_FX_EOF			= 1,
	SSH_FX_NO_SUCH_FILE		= 2,
	SSH_FX_PERMISSION_DENIED	= 3,
	SSH_FX_FAILURE			= 4,
	SSH_FX_BAD_MESSAGE		= 5,
	SSH_FX_NO_CONNECTION		= 6,
	SSH_FX_CONNECTION_LOST		= 7,
	SSH_FX_OP_UNSUPPORTED		= 8,
};

#define SSH_FXF_READ		0x00000001u

#define SSH_FILEXFER_ATTR_SIZE		0x00000001u
#define SSH_FILEXFER_ATTR_UIDGID	0x00000002u
#define SSH_FILEXFER_ATTR_PERMISSIONS	0x00000004u
#define SSH_FILEXFER_ATTR_ACMODTIME	0x00000008u
#define SSH_FILEXFER_ATTR_EXTENDED	0x80000000u
/* clang-format on */

/* ATTRS as v3 defines them; a field is meaningful only if its flag is set.
 * Extended pairs are checked for bounds and skipped (counted in n_ext). */
struct sftp_attrs {
	uint32_t flags;
	uint64_t size;
	uint32_t uid, gid;
	uint32_t perm;		/* st_mode: type bits and permissions */
	uint32_t atime, mtime;	/* seconds, unsigned 32-bit in v3 */
	uint32_t n_ext;
};

/* One packet split up: body is what follows the type and the id. */
struct sftp_msg {
	uint8_t type;
	uint32_t id;		/* VERSION: the server's version */
	const unsigned char *body;
	size_t len;
};

/* A read position inside a packet (NAME entries, VERSION extensions). */
struct sftp_cur {
	const unsigned char *p;
	size_t left;
	uint32_t count;		/* entries still to come (NAME) */
};

/* limits@openssh.com reply: 0 means "no limit stated". */
struct sftp_limits {
	uint64_t max_packet;
	uint64_t max_read;
	uint64_t max_write;
	uint64_t max_handles;
};

/* ---- requests ---------------------------------------------------------- */

int sftp_put_init(struct buf *b, uint32_t version);
int sftp_put_open(struct buf *b, uint32_t id, const char *path, size_t len,
		  uint32_t pflags);
int sftp_put_close(struct buf *b, uint32_t id, const void *h, size_t hlen);
int sftp_put_read(struct buf *b, uint32_t id, const void *h, size_t hlen,
		  uint64_t off, uint32_t len);
int sftp_put_lstat(struct buf *b, uint32_t id, const char *path, size_t len);
int sftp_put_fstat(struct buf *b, uint32_t id, const void *h, size_t hlen);
int sftp_put_opendir(struct buf *b, uint32_t id, const char *path,
		     size_t len);
int sftp_put_readdir(struct buf *b, uint32_t id, const void *h, size_t hlen);
/* SSH_FXP_EXTENDED @name with @dlen bytes of request-specific data. */
int sftp_put_extended(struct buf *b, uint32_t id, const char *name,
		      const void *data, size_t dlen);

/* ---- replies ----------------------------------------------------------- */

/*
 * The first packet in @p[0..@n): its whole size (4 + length) if all of it
 * is there, 0 if more bytes are needed, -EPROTO if its length is 0 or
 * larger than @max (checked as soon as the 4 length bytes are in).
 */
ssize_t sftp_frame(const void *p, size_t n, size_t max);
/* Split the whole packet @pkt (@n bytes as sftp_frame() counted them). */
int sftp_msg_parse(const void *pkt, size_t n, struct sftp_msg *m);

/* VERSION: the version, and a cursor over its extension pairs. */
int sftp_parse_version(const struct sftp_msg *m, uint32_t *version,
		       struct sftp_cur *ext);
/* Next extension pair: 1 (name/data set), 0 at the end, -EPROTO. */
int sftp_ext_next(struct sftp_cur *c, const char **name, size_t *nlen,
		  const unsigned char **data, size_t *dlen);

/* STATUS: the code and the server's message (may be absent: ""/0). The
 * language tag, if any, is skipped. */
int sftp_parse_status(const struct sftp_msg *m, uint32_t *code,
		      const char **text, size_t *tlen);
/* HANDLE: 1..SFTP_HANDLE_MAX bytes. */
int sftp_parse_handle(const struct sftp_msg *m, const unsigned char **h,
		      size_t *hlen);
/* DATA: the payload. */
int sftp_parse_data(const struct sftp_msg *m, const unsigned char **d,
		    size_t *dlen);
/* ATTRS. */
int sftp_parse_attrs(const struct sftp_msg *m, struct sftp_attrs *a);
/* NAME: the count (checked against the bytes there) and a cursor. */
int sftp_parse_name(const struct sftp_msg *m, uint32_t *count,
		    struct sftp_cur *c);
/* Next NAME entry (the longname is skipped): 1, 0 at the end, -EPROTO
 * (also when the packet has bytes left after the last entry). */
int sftp_name_next(struct sftp_cur *c, const char **name, size_t *nlen,
		   struct sftp_attrs *a);
/* EXTENDED_REPLY to limits@openssh.com: four uint64. */
int sftp_parse_limits(const struct sftp_msg *m, struct sftp_limits *l);

/* Read one ATTRS structure at the cursor (exposed for the unit tests). */
int sftp_attrs_read(struct sftp_cur *c, struct sftp_attrs *a);

#endif
