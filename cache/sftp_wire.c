/*
 * sftp_wire.c - SFTP v3 packets (see sftp_wire.h). Pure code: the unit test
 * (tests/unit/test_sftp_wire.c) feeds it truncated and hostile packets.
 *
 * DESIGN
 *	Every read goes through one cursor (struct sftp_cur) whose getters
 *	check the bytes left before they touch a byte, so no parser below
 *	does pointer arithmetic of its own. A count that promises more
 *	entries than the packet can hold (each NAME entry is at least 12
 *	bytes, each extension pair at least 8) is refused before the first
 *	entry is read: a server cannot make a loop run 2^32 times over a
 *	small packet.
 *
 *	Builders write the length prefix last: the packet is appended with a
 *	placeholder and patched, and any failure truncates the buffer back
 *	to where it was, so a half-built request can never be sent.
 */
#include "sftp_wire.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ---- building ------------------------------------------------------------ */

struct pkt {
	struct buf *b;
	size_t start;
	int rc;
};

static void put(struct pkt *k, const void *p, size_t n)
{
	if (!k->rc)
		k->rc = buf_append(k->b, p, n);
}

static void put_u8(struct pkt *k, uint8_t v)
{
	put(k, &v, 1);
}

static void put_u32(struct pkt *k, uint32_t v)
{
	unsigned char be[4] = {v >> 24, v >> 16, v >> 8, v};

	put(k, be, 4);
}

static void put_u64(struct pkt *k, uint64_t v)
{
	put_u32(k, (uint32_t)(v >> 32));
	put_u32(k, (uint32_t)v);
}

static void put_str(struct pkt *k, const void *p, size_t n)
{
	if (!k->rc && n > SFTP_STR_MAX)
		k->rc = -EINVAL;
	put_u32(k, (uint32_t)n);
	put(k, p, n);
}

static void begin(struct pkt *k, struct buf *b, uint8_t type)
{
	k->b = b;
	k->start = b->len;
	k->rc = 0;
	put_u32(k, 0); /* length, patched by end() */
	put_u8(k, type);
}

static int end(struct pkt *k)
{
	if (k->rc) {
		/* all or nothing: drop what this packet appended */
		if (k->b->len > k->start) {
			k->b->len = k->start;
			k->b->data[k->b->len] = '\0';
		}
		return k->rc;
	}
	uint32_t n = (uint32_t)(k->b->len - k->start - 4);
	unsigned char *p = (unsigned char *)k->b->data + k->start;

	p[0] = n >> 24;
	p[1] = n >> 16;
	p[2] = n >> 8;
	p[3] = n;
	return 0;
}

int sftp_put_init(struct buf *b, uint32_t version)
{
	struct pkt k;

	begin(&k, b, SSH_FXP_INIT);
	put_u32(&k, version);
	return end(&k);
}

int sftp_put_open(struct buf *b, uint32_t id, const char *path, size_t len,
		  uint32_t pflags)
{
	struct pkt k;

	begin(&k, b, SSH_FXP_OPEN);
	put_u32(&k, id);
	put_str(&k, path, len);
	put_u32(&k, pflags);
	put_u32(&k, 0); /* attrs: no flags, no fields */
	return end(&k);
}

static int put_handle_req(struct buf *b, uint8_t type, uint32_t id,
			  const void *h, size_t hlen)
{
	struct pkt k;

	begin(&k, b, type);
	put_u32(&k, id);
	put_str(&k, h, hlen);
	return end(&k);
}

static int put_path_req(struct buf *b, uint8_t type, uint32_t id,
			const char *path, size_t len)
{
	return put_handle_req(b, type, id, path, len);
}

int sftp_put_close(struct buf *b, uint32_t id, const void *h, size_t hlen)
{
	return put_handle_req(b, SSH_FXP_CLOSE, id, h, hlen);
}

int sftp_put_read(struct buf *b, uint32_t id, const void *h, size_t hlen,
		  uint64_t off, uint32_t len)
{
	struct pkt k;

	begin(&k, b, SSH_FXP_READ);
	put_u32(&k, id);
	put_str(&k, h, hlen);
	put_u64(&k, off);
	put_u32(&k, len);
	return end(&k);
}

int sftp_put_lstat(struct buf *b, uint32_t id, const char *path, size_t len)
{
	return put_path_req(b, SSH_FXP_LSTAT, id, path, len);
}

int sftp_put_fstat(struct buf *b, uint32_t id, const void *h, size_t hlen)
{
	return put_handle_req(b, SSH_FXP_FSTAT, id, h, hlen);
}

int sftp_put_opendir(struct buf *b, uint32_t id, const char *path, size_t len)
{
	return put_path_req(b, SSH_FXP_OPENDIR, id, path, len);
}

int sftp_put_readdir(struct buf *b, uint32_t id, const void *h, size_t hlen)
{
	return put_handle_req(b, SSH_FXP_READDIR, id, h, hlen);
}

int sftp_put_extended(struct buf *b, uint32_t id, const char *name,
		      const void *data, size_t dlen)
{
	struct pkt k;

	begin(&k, b, SSH_FXP_EXTENDED);
	put_u32(&k, id);
	put_str(&k, name, strlen(name));
	if (dlen)
		put(&k, data, dlen);
	return end(&k);
}

/* ---- parsing ------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int get_u32(struct sftp_cur *c, uint32_t *v)
{
	if (c->left < 4)
		return -EPROTO;
	*v = be32(c->p);
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int get_u64(struct sftp_cur *c, uint64_t *v)
{
	uint32_t hi, lo;

	if (c->left < 8)
		return -EPROTO;
	get_u32(c, &hi);
	get_u32(c, &lo);
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int get_str(struct sftp_cur *c, const unsigned char **p, size_t *n)
{
	uint32_t len;

	if (get_u32(c, &len))
		return -EPROTO;
	if (len > c->left)
		return -EPROTO; /* a length past the end of the packet */
	*p = c->p;
	*n = len;
	c->p += len;
	c->left -= len;
	return 0;
}

static void cur_init(struct sftp_cur *c, const struct sftp_msg *m)
{
	c->p = m->body;
	c->left = m->len;
	c->count = 0;
}

ssize_t sftp_frame(const void *p, size_t n, size_t max)
{
	uint32_t len;

	if (n < 4)
		return 0;
	len = be32(p);
	if (len == 0 || len > max)
		return -EPROTO;
	if (n - 4 < len)
		return 0;
	return (ssize_t)len + 4;
}

int sftp_msg_parse(const void *pkt, size_t n, struct sftp_msg *m)
{
	struct sftp_cur c = {pkt, n, 0};
	uint32_t len;

	if (get_u32(&c, &len) || len != c.left || c.left < 1)
		return -EPROTO;
	m->type = *c.p;
	c.p++;
	c.left--;
	/* every packet we accept has an id (VERSION: the version) */
	if (get_u32(&c, &m->id))
		return -EPROTO;
	m->body = c.p;
	m->len = c.left;
	return 0;
}

static int want(const struct sftp_msg *m, uint8_t type)
{
	return m->type == type ? 0 : -EPROTO;
}

int sftp_parse_version(const struct sftp_msg *m, uint32_t *version,
		       struct sftp_cur *ext)
{
	if (want(m, SSH_FXP_VERSION))
		return -EPROTO;
	*version = m->id;
	cur_init(ext, m);
	return 0;
}

int sftp_ext_next(struct sftp_cur *c, const char **name, size_t *nlen,
		  const unsigned char **data, size_t *dlen)
{
	const unsigned char *np;

	if (!c->left)
		return 0;
	if (get_str(c, &np, nlen) || get_str(c, data, dlen))
		return -EPROTO;
	*name = (const char *)np;
	return 1;
}

int sftp_parse_status(const struct sftp_msg *m, uint32_t *code,
		      const char **text, size_t *tlen)
{
	struct sftp_cur c;
	const unsigned char *t = (const unsigned char *)"", *lang;
	size_t n = 0, ln;

	if (want(m, SSH_FXP_STATUS))
		return -EPROTO;
	cur_init(&c, m);
	if (get_u32(&c, code))
		return -EPROTO;
	/* v3 servers send message and language; very old ones neither */
	if (c.left && get_str(&c, &t, &n))
		return -EPROTO;
	if (c.left && get_str(&c, &lang, &ln))
		return -EPROTO;
	if (c.left)
		return -EPROTO;
	*text = (const char *)t;
	*tlen = n;
	return 0;
}

int sftp_parse_handle(const struct sftp_msg *m, const unsigned char **h,
		      size_t *hlen)
{
	struct sftp_cur c;

	if (want(m, SSH_FXP_HANDLE))
		return -EPROTO;
	cur_init(&c, m);
	if (get_str(&c, h, hlen) || c.left || !*hlen ||
	    *hlen > SFTP_HANDLE_MAX)
		return -EPROTO;
	return 0;
}

int sftp_parse_data(const struct sftp_msg *m, const unsigned char **d,
		    size_t *dlen)
{
	struct sftp_cur c;

	if (want(m, SSH_FXP_DATA))
		return -EPROTO;
	cur_init(&c, m);
	if (get_str(&c, d, dlen) || c.left)
		return -EPROTO;
	return 0;
}

int sftp_attrs_read(struct sftp_cur *c, struct sftp_attrs *a)
{
	const uint32_t known = SSH_FILEXFER_ATTR_SIZE |
			       SSH_FILEXFER_ATTR_UIDGID |
			       SSH_FILEXFER_ATTR_PERMISSIONS |
			       SSH_FILEXFER_ATTR_ACMODTIME |
			       SSH_FILEXFER_ATTR_EXTENDED;
	uint32_t n;

	memset(a, 0, sizeof(*a));
	if (get_u32(c, &a->flags))
		return -EPROTO;
	/* a flag v3 does not define has a field we cannot skip */
	if (a->flags & ~known)
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_SIZE) && get_u64(c, &a->size))
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_UIDGID) &&
	    (get_u32(c, &a->uid) || get_u32(c, &a->gid)))
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) &&
	    get_u32(c, &a->perm))
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_ACMODTIME) &&
	    (get_u32(c, &a->atime) || get_u32(c, &a->mtime)))
		return -EPROTO;
	if (!(a->flags & SSH_FILEXFER_ATTR_EXTENDED))
		return 0;
	if (get_u32(c, &n) || n > c->left / 8)
		return -EPROTO; /* each pair is two strings, 8+ bytes */
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *p;
		size_t l;

		if (get_str(c, &p, &l) || get_str(c, &p, &l))
			return -EPROTO;
	}
	a->n_ext = n;
	return 0;
}

int sftp_parse_attrs(const struct sftp_msg *m, struct sftp_attrs *a)
{
	struct sftp_cur c;

	if (want(m, SSH_FXP_ATTRS))
		return -EPROTO;
	cur_init(&c, m);
	if (sftp_attrs_read(&c, a) || c.left)
		return -EPROTO;
	return 0;
}

int sftp_parse_name(const struct sftp_msg *m, uint32_t *count,
		    struct sftp_cur *c)
{
	if (want(m, SSH_FXP_NAME))
		return -EPROTO;
	cur_init(c, m);
	if (get_u32(c, count))
		return -EPROTO;
	/* name, longname, attr flags: 12 bytes at least per entry */
	if (*count > c->left / 12)
		return -EPROTO;
	c->count = *count;
	return 0;
}

int sftp_name_next(struct sftp_cur *c, const char **name, size_t *nlen,
		   struct sftp_attrs *a)
{
	const unsigned char *np, *lp;
	size_t ll;

	if (!c->count)
		return c->left ? -EPROTO : 0;
	if (get_str(c, &np, nlen) || get_str(c, &lp, &ll) ||
	    sftp_attrs_read(c, a))
		return -EPROTO;
	c->count--;
	*name = (const char *)np;
	return 1;
}

int sftp_parse_limits(const struct sftp_msg *m, struct sftp_limits *l)
{
	struct sftp_cur c;

	if (want(m, SSH_FXP_EXTENDED_REPLY))
		return -EPROTO;
	cur_init(&c, m);
	if (get_u64(&c, &l->max_packet) || get_u64(&c, &l->max_read) ||
	    get_u64(&c, &l->max_write) || get_u64(&c, &l->max_handles) ||
	    c.left)
		return -EPROTO;
	return 0;
}
