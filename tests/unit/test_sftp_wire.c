/*
 * test_sftp_wire.c - the SFTP v3 codec: requests byte for byte, replies
 * round-tripped, and hostile replies (truncated packets, lengths past the
 * end, huge counts, names with NUL and newline, attribute flags with
 * extended pairs, flags v3 does not define) refused with -EPROTO.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "sftp_wire.h"

/* A reply under construction: type, id, body; the length goes first. */
struct pk {
	unsigned char b[4096];
	size_t n;
};

static void pk_u8(struct pk *p, uint8_t v)
{
	p->b[p->n++] = v;
}

static void pk_u32(struct pk *p, uint32_t v)
{
	pk_u8(p, v >> 24);
	pk_u8(p, v >> 16);
	pk_u8(p, v >> 8);
	pk_u8(p, v);
}

static void pk_u64(struct pk *p, uint64_t v)
{
	pk_u32(p, (uint32_t)(v >> 32));
	pk_u32(p, (uint32_t)v);
}

static void pk_str(struct pk *p, const void *s, size_t n)
{
	pk_u32(p, (uint32_t)n);
	memcpy(p->b + p->n, s, n);
	p->n += n;
}

static void pk_begin(struct pk *p, uint8_t type, uint32_t id)
{
	p->n = 0;
	pk_u32(p, 0);
	pk_u8(p, type);
	pk_u32(p, id);
}

/* Patch the length; returns the packet size. */
static size_t pk_end(struct pk *p)
{
	uint32_t n = (uint32_t)(p->n - 4);

	p->b[0] = n >> 24;
	p->b[1] = n >> 16;
	p->b[2] = n >> 8;
	p->b[3] = n;
	return p->n;
}

static int msg(struct pk *p, struct sftp_msg *m)
{
	size_t n = pk_end(p);

	if (sftp_frame(p->b, n, 1 << 20) != (ssize_t)n)
		return -1;
	return sftp_msg_parse(p->b, n, m);
}

static void test_requests(void)
{
	struct buf b;
	static const unsigned char init[] = {0, 0, 0, 5, 1, 0, 0, 0, 3};
	static const unsigned char rd[] = {
	    0, 0, 0, 25, 5, 0, 0, 0, 7,	     /* len, READ, id 7 */
	    0, 0, 0, 4,	 'h', 'a', 'n', 'd', /* handle */
	    0, 0, 0, 1,	 0, 0, 0, 2,	     /* offset 2^32 + 2 */
	    0, 4, 0, 0,			     /* 256 KiB */
	};
	static const unsigned char op[] = {
	    0, 0, 0, 22, 3, 0, 0, 0, 9, 0, 0, 0, 5, '/', 'a', ' ', '\n', 'b',
	    0, 0, 0, 1,	 0, 0, 0, 0,
	};

	buf_init(&b, 1 << 16);
	CHECK_ERR(sftp_put_init(&b, 3), 0);
	CHECK(b.len == sizeof(init) && !memcmp(b.data, init, sizeof(init)));
	buf_reset(&b);
	CHECK_ERR(sftp_put_read(&b, 7, "hand", 4, (1ull << 32) + 2, 262144),
		  0);
	CHECK(b.len == sizeof(rd) && !memcmp(b.data, rd, sizeof(rd)));
	buf_reset(&b);
	CHECK_ERR(sftp_put_open(&b, 9, "/a \nb", 5, SSH_FXF_READ), 0);
	CHECK(b.len == sizeof(op) && !memcmp(b.data, op, sizeof(op)));

	/* each request type has its type byte and a whole length */
	buf_reset(&b);
	CHECK_ERR(sftp_put_lstat(&b, 1, "/x", 2), 0);
	CHECK_ERR(sftp_put_fstat(&b, 2, "h", 1), 0);
	CHECK_ERR(sftp_put_opendir(&b, 3, "/d", 2), 0);
	CHECK_ERR(sftp_put_readdir(&b, 4, "h", 1), 0);
	CHECK_ERR(sftp_put_close(&b, 5, "h", 1), 0);
	CHECK_ERR(sftp_put_extended(&b, 6, "limits@openssh.com", NULL, 0), 0);
	static const uint8_t types[] = {SSH_FXP_LSTAT,	 SSH_FXP_FSTAT,
					SSH_FXP_OPENDIR, SSH_FXP_READDIR,
					SSH_FXP_CLOSE,	 SSH_FXP_EXTENDED};
	size_t off = 0;
	for (size_t i = 0; i < sizeof(types); i++) {
		ssize_t fl = sftp_frame(b.data + off, b.len - off, 1 << 16);
		struct sftp_msg m;

		CHECK(fl > 0);
		if (fl <= 0)
			break;
		CHECK_ERR(sftp_msg_parse(b.data + off, (size_t)fl, &m), 0);
		CHECK(m.type == types[i] && m.id == i + 1);
		off += (size_t)fl;
	}
	CHECK(off == b.len);
	buf_cleanup(&b);

	/* all or nothing: a request that does not fit leaves the buffer */
	buf_init(&b, 20);
	CHECK_ERR(sftp_put_init(&b, 3), 0);
	CHECK_ERR(sftp_put_lstat(&b, 1, "/a/long/path", 12), -EFBIG);
	CHECK(b.len == sizeof(init) && !memcmp(b.data, init, sizeof(init)));
	buf_cleanup(&b);
	buf_init(&b, 1 << 20);
	static char huge[SFTP_STR_MAX + 1];
	CHECK_ERR(sftp_put_lstat(&b, 1, huge, sizeof(huge)), -EINVAL);
	CHECK(b.len == 0);
	buf_cleanup(&b);
}

static void test_frame(void)
{
	unsigned char p[8] = {0, 0, 0, 4, 101, 0, 0, 0};

	CHECK_ERR(sftp_frame(p, 0, 100), 0);
	CHECK_ERR(sftp_frame(p, 3, 100), 0);
	CHECK_ERR(sftp_frame(p, 7, 100), 0); /* one byte missing */
	CHECK_ERR(sftp_frame(p, 8, 100), 8);
	CHECK_ERR(sftp_frame(p, 8, 3), -EPROTO); /* longer than max */
	memset(p, 0, 4);
	CHECK_ERR(sftp_frame(p, 8, 100), -EPROTO); /* length 0 */
	/* a huge length is refused as soon as its 4 bytes are in */
	memset(p, 0xff, 4);
	CHECK_ERR(sftp_frame(p, 4, 1 << 20), -EPROTO);

	/* a packet of type only, no id */
	unsigned char t[5] = {0, 0, 0, 1, 102};
	struct sftp_msg m;
	CHECK_ERR(sftp_msg_parse(t, 5, &m), -EPROTO);
	/* the length must match what is given */
	unsigned char u[9] = {0, 0, 0, 6, 102, 0, 0, 0, 1};
	CHECK_ERR(sftp_msg_parse(u, 9, &m), -EPROTO);
}

static void test_version(void)
{
	struct pk p;
	struct sftp_msg m;
	struct sftp_cur c;
	const char *name;
	const unsigned char *data;
	size_t nl, dl;
	uint32_t v;

	pk_begin(&p, SSH_FXP_VERSION, 3);
	pk_str(&p, "limits@openssh.com", 18);
	pk_str(&p, "1", 1);
	pk_str(&p, "x", 1);
	pk_str(&p, "", 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_version(&m, &v, &c), 0);
	CHECK(v == 3);
	CHECK_ERR(sftp_ext_next(&c, &name, &nl, &data, &dl), 1);
	CHECK(nl == 18 && !memcmp(name, "limits@openssh.com", 18) &&
	      dl == 1 && data[0] == '1');
	CHECK_ERR(sftp_ext_next(&c, &name, &nl, &data, &dl), 1);
	CHECK(nl == 1 && dl == 0);
	CHECK_ERR(sftp_ext_next(&c, &name, &nl, &data, &dl), 0);

	/* an extension whose data length runs past the packet */
	pk_begin(&p, SSH_FXP_VERSION, 3);
	pk_str(&p, "a", 1);
	pk_u32(&p, 1000);
	pk_u8(&p, 'z');
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_version(&m, &v, &c), 0);
	CHECK_ERR(sftp_ext_next(&c, &name, &nl, &data, &dl), -EPROTO);

	/* a name without its data */
	pk_begin(&p, SSH_FXP_VERSION, 3);
	pk_str(&p, "a", 1);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_version(&m, &v, &c), 0);
	CHECK_ERR(sftp_ext_next(&c, &name, &nl, &data, &dl), -EPROTO);

	/* not a VERSION at all */
	pk_begin(&p, SSH_FXP_STATUS, 3);
	pk_u32(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_version(&m, &v, &c), -EPROTO);
}

static void test_status_handle_data(void)
{
	struct pk p;
	struct sftp_msg m;
	const char *t;
	const unsigned char *h, *d;
	size_t tl, hl, dl;
	uint32_t code;

	pk_begin(&p, SSH_FXP_STATUS, 11);
	pk_u32(&p, SSH_FX_NO_SUCH_FILE);
	pk_str(&p, "No such file", 12);
	pk_str(&p, "", 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK(m.id == 11);
	CHECK_ERR(sftp_parse_status(&m, &code, &t, &tl), 0);
	CHECK(code == SSH_FX_NO_SUCH_FILE && tl == 12 &&
	      !memcmp(t, "No such file", 12));
	/* very old servers send the code only */
	pk_begin(&p, SSH_FXP_STATUS, 11);
	pk_u32(&p, SSH_FX_EOF);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_status(&m, &code, &t, &tl), 0);
	CHECK(code == SSH_FX_EOF && tl == 0);
	/* a message length past the end; then trailing junk */
	pk_begin(&p, SSH_FXP_STATUS, 11);
	pk_u32(&p, 4);
	pk_u32(&p, 0x7fffffff);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_status(&m, &code, &t, &tl), -EPROTO);
	pk_begin(&p, SSH_FXP_STATUS, 11);
	pk_u32(&p, 4);
	pk_str(&p, "m", 1);
	pk_str(&p, "en", 2);
	pk_u8(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_status(&m, &code, &t, &tl), -EPROTO);
	/* a code cut short */
	pk_begin(&p, SSH_FXP_STATUS, 11);
	pk_u8(&p, 0);
	pk_u8(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_status(&m, &code, &t, &tl), -EPROTO);

	pk_begin(&p, SSH_FXP_HANDLE, 12);
	pk_str(&p, "\0\0\0\1", 4);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_handle(&m, &h, &hl), 0);
	CHECK(hl == 4 && h[3] == 1);
	/* empty, too long, past the end */
	pk_begin(&p, SSH_FXP_HANDLE, 12);
	pk_str(&p, "", 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_handle(&m, &h, &hl), -EPROTO);
	static const char longh[SFTP_HANDLE_MAX + 1];
	pk_begin(&p, SSH_FXP_HANDLE, 12);
	pk_str(&p, longh, sizeof(longh));
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_handle(&m, &h, &hl), -EPROTO);
	pk_begin(&p, SSH_FXP_HANDLE, 12);
	pk_u32(&p, 8);
	pk_u32(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_handle(&m, &h, &hl), -EPROTO);

	pk_begin(&p, SSH_FXP_DATA, 13);
	pk_str(&p, "abc\0def", 7);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_data(&m, &d, &dl), 0);
	CHECK(dl == 7 && !memcmp(d, "abc\0def", 7));
	/* a DATA length one past what is there */
	pk_begin(&p, SSH_FXP_DATA, 13);
	pk_u32(&p, 8);
	memcpy(p.b + p.n, "abc\0def", 7);
	p.n += 7;
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_data(&m, &d, &dl), -EPROTO);
	/* a DATA that is a HANDLE */
	pk_begin(&p, SSH_FXP_HANDLE, 13);
	pk_str(&p, "h", 1);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_data(&m, &d, &dl), -EPROTO);
}

static void put_attrs(struct pk *p, uint32_t flags, uint32_t n_ext)
{
	pk_u32(p, flags);
	if (flags & SSH_FILEXFER_ATTR_SIZE)
		pk_u64(p, 5000000000ull);
	if (flags & SSH_FILEXFER_ATTR_UIDGID) {
		pk_u32(p, 1000);
		pk_u32(p, 1001);
	}
	if (flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		pk_u32(p, 0120777); /* a symlink */
	if (flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		pk_u32(p, 1700000000);
		pk_u32(p, 0xfffffff0u); /* past 2038: v3 times are unsigned */
	}
	if (flags & SSH_FILEXFER_ATTR_EXTENDED) {
		pk_u32(p, n_ext);
		for (uint32_t i = 0; i < n_ext; i++) {
			pk_str(p, "k@x", 3);
			pk_str(p, "v\0v", 3);
		}
	}
}

static void test_attrs(void)
{
	const uint32_t all = SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_UIDGID |
			     SSH_FILEXFER_ATTR_PERMISSIONS |
			     SSH_FILEXFER_ATTR_ACMODTIME |
			     SSH_FILEXFER_ATTR_EXTENDED;
	struct sftp_attrs a;
	struct sftp_msg m;
	struct pk p;

	pk_begin(&p, SSH_FXP_ATTRS, 21);
	put_attrs(&p, all, 2);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_attrs(&m, &a), 0);
	CHECK(a.flags == all && a.size == 5000000000ull && a.uid == 1000 &&
	      a.gid == 1001 && a.perm == 0120777 && a.atime == 1700000000 &&
	      a.mtime == 0xfffffff0u && a.n_ext == 2);

	/* only what the flags say is there */
	pk_begin(&p, SSH_FXP_ATTRS, 21);
	put_attrs(&p, SSH_FILEXFER_ATTR_PERMISSIONS, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_attrs(&m, &a), 0);
	CHECK(a.perm == 0120777 && a.size == 0 && a.mtime == 0);

	/* a flag v3 does not define: its field cannot be skipped */
	pk_begin(&p, SSH_FXP_ATTRS, 21);
	put_attrs(&p, SSH_FILEXFER_ATTR_SIZE | 0x10, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_attrs(&m, &a), -EPROTO);

	/* flags promise a size that is not there */
	pk_begin(&p, SSH_FXP_ATTRS, 21);
	pk_u32(&p, SSH_FILEXFER_ATTR_SIZE);
	pk_u32(&p, 1);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_attrs(&m, &a), -EPROTO);

	/* 2^32-1 extended pairs in a small packet: refused up front */
	pk_begin(&p, SSH_FXP_ATTRS, 21);
	pk_u32(&p, SSH_FILEXFER_ATTR_EXTENDED);
	pk_u32(&p, 0xffffffffu);
	pk_str(&p, "k", 1);
	pk_str(&p, "v", 1);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_attrs(&m, &a), -EPROTO);

	/* an extended value running past the end */
	pk_begin(&p, SSH_FXP_ATTRS, 21);
	pk_u32(&p, SSH_FILEXFER_ATTR_EXTENDED);
	pk_u32(&p, 1);
	pk_str(&p, "k", 1);
	pk_u32(&p, 50);
	pk_u32(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_attrs(&m, &a), -EPROTO);

	/* trailing bytes after the attributes */
	pk_begin(&p, SSH_FXP_ATTRS, 21);
	put_attrs(&p, SSH_FILEXFER_ATTR_PERMISSIONS, 0);
	pk_u8(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_attrs(&m, &a), -EPROTO);
}

static void test_name(void)
{
	const uint32_t fl = SSH_FILEXFER_ATTR_SIZE |
			    SSH_FILEXFER_ATTR_PERMISSIONS |
			    SSH_FILEXFER_ATTR_ACMODTIME |
			    SSH_FILEXFER_ATTR_EXTENDED;
	struct sftp_attrs a;
	struct sftp_msg m;
	struct sftp_cur c;
	const char *name;
	size_t nl;
	uint32_t count;
	struct pk p;

	/* names hand over every byte: newline, space, even NUL */
	pk_begin(&p, SSH_FXP_NAME, 31);
	pk_u32(&p, 3);
	pk_str(&p, "a\nb", 3);
	pk_str(&p, "-rw-r--r-- 1 a\nb", 16);
	put_attrs(&p, fl, 1);
	pk_str(&p, "with space", 10);
	pk_str(&p, "", 0);
	put_attrs(&p, SSH_FILEXFER_ATTR_PERMISSIONS, 0);
	pk_str(&p, "nul\0x", 5);
	pk_str(&p, "", 0);
	put_attrs(&p, 0, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_name(&m, &count, &c), 0);
	CHECK(count == 3);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), 1);
	CHECK(nl == 3 && !memcmp(name, "a\nb", 3) && a.n_ext == 1 &&
	      a.perm == 0120777);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), 1);
	CHECK(nl == 10 && !memcmp(name, "with space", 10));
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), 1);
	CHECK(nl == 5 && memchr(name, '\0', nl) && a.flags == 0);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), 0);

	/* a count of 2^32-1 entries over one entry's bytes */
	pk_begin(&p, SSH_FXP_NAME, 31);
	pk_u32(&p, 0xffffffffu);
	pk_str(&p, "a", 1);
	pk_str(&p, "", 0);
	put_attrs(&p, 0, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_name(&m, &count, &c), -EPROTO);

	/* a count that fits the minimum size but the entries are short */
	pk_begin(&p, SSH_FXP_NAME, 31);
	pk_u32(&p, 2);
	pk_str(&p, "abcdefghijkl", 12);
	pk_str(&p, "", 0);
	put_attrs(&p, 0, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_name(&m, &count, &c), 0);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), 1);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), -EPROTO);

	/* a name length past the end */
	pk_begin(&p, SSH_FXP_NAME, 31);
	pk_u32(&p, 1);
	pk_u32(&p, 4000);
	pk_u32(&p, 0);
	pk_u32(&p, 0);
	pk_u32(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_name(&m, &count, &c), 0);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), -EPROTO);

	/* bytes left after the last entry */
	pk_begin(&p, SSH_FXP_NAME, 31);
	pk_u32(&p, 1);
	pk_str(&p, "a", 1);
	pk_str(&p, "", 0);
	put_attrs(&p, 0, 0);
	pk_u32(&p, 0);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_name(&m, &count, &c), 0);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), 1);
	CHECK_ERR(sftp_name_next(&c, &name, &nl, &a), -EPROTO);

	/* every truncation of a good NAME packet is refused somewhere */
	pk_begin(&p, SSH_FXP_NAME, 31);
	pk_u32(&p, 1);
	pk_str(&p, "abc", 3);
	pk_str(&p, "long", 4);
	put_attrs(&p, fl, 1);
	size_t full = pk_end(&p);
	int refused = 0;
	for (size_t cut = 9; cut < full; cut++) {
		unsigned char q[4096];
		uint32_t n = (uint32_t)(cut - 4);
		int bad = 0, e;

		memcpy(q, p.b, cut);
		q[0] = n >> 24;
		q[1] = n >> 16;
		q[2] = n >> 8;
		q[3] = n;
		if (sftp_msg_parse(q, cut, &m)) {
			refused++;
			continue;
		}
		if (sftp_parse_name(&m, &count, &c)) {
			refused++;
			continue;
		}
		while ((e = sftp_name_next(&c, &name, &nl, &a)) > 0)
			;
		bad = e < 0;
		refused += bad;
	}
	CHECK(refused == (int)(full - 9));
}

static void test_limits(void)
{
	struct sftp_limits l;
	struct sftp_msg m;
	struct pk p;

	pk_begin(&p, SSH_FXP_EXTENDED_REPLY, 7);
	pk_u64(&p, 262144);
	pk_u64(&p, 261120);
	pk_u64(&p, 261120);
	pk_u64(&p, 19995);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_limits(&m, &l), 0);
	CHECK(l.max_packet == 262144 && l.max_read == 261120 &&
	      l.max_handles == 19995);
	pk_begin(&p, SSH_FXP_EXTENDED_REPLY, 7);
	pk_u64(&p, 262144);
	pk_u64(&p, 261120);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_limits(&m, &l), -EPROTO);
	pk_begin(&p, SSH_FXP_STATUS, 7);
	pk_u32(&p, SSH_FX_OP_UNSUPPORTED);
	CHECK_ERR(msg(&p, &m), 0);
	CHECK_ERR(sftp_parse_limits(&m, &l), -EPROTO);
}

int main(void)
{
	test_requests();
	test_frame();
	test_version();
	test_status_handle_data();
	test_attrs();
	test_name();
	test_limits();
	return CHECK_DONE();
}
