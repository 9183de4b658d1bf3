/*
 * fuzz_sftp_wire.c - the SFTP v3 packet codec (cache/sftp_wire.c) on a
 * hostile server's byte stream: the input is cut into packets with
 * sftp_frame() and every packet is read as each reply type in turn.
 *
 * Invariants: a framed packet's declared length (4 + length) is at most
 * the bytes given and at most the limit, and at least type + nothing
 * more; a packet split by sftp_msg_parse() has its body inside it; every
 * pointer and length a parser hands out (handle, data, status text, names,
 * extension pairs) lies inside the packet; a handle is 1..SFTP_HANDLE_MAX
 * bytes; a NAME cursor yields exactly the count it announced. A request
 * the builders write from the input frames and splits back to its own
 * type, id and string.
 */
#include <errno.h>

#include "fuzz.h"
#include "sftp_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXPKT (256 * 1024)

static const unsigned char *lo, *hi;

static void inside(const void *p, size_t n)
{
	const unsigned char *q = p;
	if (!n)
		return;
	FUZZ_ASSERT(q >= lo && q <= hi && n <= (size_t)(hi - q));
}

static void reply(const unsigned char *pkt, size_t n)
{
	struct sftp_msg m;
	lo = pkt;
	hi = pkt + n;
	if (sftp_msg_parse(pkt, n, &m) != 0)
		return;
	inside(m.body, m.len);

	uint32_t ver, code, count;
	struct sftp_cur c;
	const char *s;
	const unsigned char *d;
	size_t sl, dl;
	if (sftp_parse_version(&m, &ver, &c) == 0) {
		int rc, k = 0;
		while ((rc = sftp_ext_next(&c, &s, &sl, &d, &dl)) == 1) {
			inside(s, sl);
			inside(d, dl);
			FUZZ_ASSERT(++k <= (int)n);
		}
		FUZZ_ASSERT(rc == 0 || rc == -EPROTO);
	}
	if (sftp_parse_status(&m, &code, &s, &sl) == 0)
		inside(s, sl);
	if (sftp_parse_handle(&m, &d, &dl) == 0) {
		FUZZ_ASSERT(dl >= 1 && dl <= SFTP_HANDLE_MAX);
		inside(d, dl);
	}
	if (sftp_parse_data(&m, &d, &dl) == 0)
		inside(d, dl);
	struct sftp_attrs a;
	if (sftp_parse_attrs(&m, &a) == 0)
		FUZZ_ASSERT(!(a.flags & ~(SSH_FILEXFER_ATTR_SIZE |
					  SSH_FILEXFER_ATTR_UIDGID |
					  SSH_FILEXFER_ATTR_PERMISSIONS |
					  SSH_FILEXFER_ATTR_ACMODTIME |
					  SSH_FILEXFER_ATTR_EXTENDED)));
	if (sftp_parse_name(&m, &count, &c) == 0) {
		/* every entry needs at least 4+4+4 bytes */
		FUZZ_ASSERT((uint64_t)count * 12 <= m.len);
		uint32_t got = 0;
		int rc;
		while ((rc = sftp_name_next(&c, &s, &sl, &a)) == 1) {
			inside(s, sl);
			got++;
			FUZZ_ASSERT(got <= count);
		}
		FUZZ_ASSERT(rc == 0 ? got == count : rc == -EPROTO);
	}
	struct sftp_limits l;
	(void)sftp_parse_limits(&m, &l);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void requests(const uint8_t *data, size_t size)
{
	if (size < 4)
		return;
	uint32_t id = be32(data);
	const char *path = (const char *)data + 4;
	size_t pl = size - 4;
	struct buf b;
	buf_init(&b, 1 << 20);
	int rc = sftp_put_open(&b, id, path, pl, SSH_FXF_READ);
	if (rc == 0) {
		ssize_t fr = sftp_frame(b.data, b.len, 1 << 20);
		FUZZ_ASSERT(fr > 0 && (size_t)fr == b.len);
		struct sftp_msg m;
		FUZZ_ASSERT(sftp_msg_parse(b.data, b.len, &m) == 0);
		FUZZ_ASSERT(m.type == SSH_FXP_OPEN && m.id == id);
		FUZZ_ASSERT(m.len >= 4 + pl && be32(m.body) == pl &&
			    !memcmp(m.body + 4, path, pl));
	} else {
		FUZZ_ASSERT(b.len == 0 && pl > SFTP_STR_MAX);
	}
	buf_reset(&b);
	rc = sftp_put_read(&b, id, path, pl > SFTP_HANDLE_MAX ? 1 : pl,
			   (uint64_t)id << 20, id);
	if (rc == 0) {
		FUZZ_ASSERT(sftp_frame(b.data, b.len, 1 << 20) ==
			    (ssize_t)b.len);
		struct sftp_msg m;
		FUZZ_ASSERT(sftp_msg_parse(b.data, b.len, &m) == 0);
		FUZZ_ASSERT(m.type == SSH_FXP_READ && m.id == id);
	}
	buf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy of each packet: a read past it is an ASan report. */
	size_t off = 0;
	while (off < size) {
		ssize_t fr = sftp_frame(data + off, size - off, MAXPKT);
		if (fr <= 0) {
			FUZZ_ASSERT(fr == 0 || fr == -EPROTO);
			break;
		}
		FUZZ_ASSERT((size_t)fr <= size - off && fr <= MAXPKT + 4);
		FUZZ_ASSERT(fr >= 5);
		FUZZ_ASSERT((size_t)fr == 4 + (size_t)be32(data + off));
		unsigned char *pkt = malloc(fr);
		if (!pkt)
			abort();
		memcpy(pkt, data + off, fr);
		reply(pkt, fr);
		free(pkt);
		off += fr;
	}
	requests(data, size);
	return 0;
}
