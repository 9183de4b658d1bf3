/*
 * ckpt_zip.c - load checks for zip-based checkpoints: torch.save files
 * (.pt .pth .ckpt, and .bin when it is a zip) and numpy's .npz.
 *
 * DESIGN
 *	A zip is read from its end: the End Of Central Directory record
 *	(EOCD) is searched for in the last 64 KiB + 22 bytes (a comment is
 *	at most 65535 bytes), a ZIP64 locator right before it leads to the
 *	ZIP64 EOCD record (torch writes zip64 for archives past 4 GiB; numpy
 *	gives every member zip64 extra fields). Then, in four passes:
 *
 *	1. The central directory (capped at 64 MiB; a torch file with 100k
 *	   tensors needs about 10 MiB) is read whole and walked with every
 *	   length checked; its entries must fill it exactly, and it must end
 *	   exactly where the (ZIP64) EOCD record starts. Python's zipfile
 *	   would take a gap there for a prefix and misread every offset.
 *	2. Structure: torch reads the archive name from the first entry's
 *	   name (up to its first '/') and needs <archive>/data.pkl and a
 *	   <archive>/.data/version or <archive>/version record
 *	   (caffe2/serialize/inline_container.cc); checked before any data
 *	   is read, so a wrong file fails fast.
 *	3. Every entry's local header: signature, the same name as in the
 *	   directory, and its data ends before the central directory. Sorted
 *	   by offset, no entry's data runs into the next entry's header (two
 *	   directory entries sharing bytes is how zip bombs and "zip
 *	   confusion" files are made; no writer does it).
 *	4. Every entry's data, in file order, streamed through 1 MiB
 *	   buffers: CRC-32 of the stored bytes, or of zlib's raw inflate
 *	   output for deflate, never more output than the declared size. The
 *	   CRC is compared with the central directory's (local headers may
 *	   defer it to a data descriptor). For .npz, each member named *.npy
 *	   must also pass the .npy check on its first bytes; for torch, the
 *	   version record must hold a positive number.
 *
 *	Only stored (method 0, what torch.save writes) and deflate (8, what
 *	np.savez_compressed writes) are accepted; encrypted or patched
 *	entries and multi-disk archives are CKPT_BAD_HEADER.
 *
 *	torch.load itself checks no CRC, and PyTorch 2.6+ can save without
 *	them (all zero); such an archive is OK with its data unchecked, see
 *	crcs_absent(). The pull's SHA-256 still covers its bytes.
 *
 *	Sizes and CRCs come from the central directory, as Python's zipfile
 *	and miniz (torch) take them; the local header contributes only the
 *	name and the lengths that place the data.
 *
 *	Rejected: mmap of the file (the bytes may be in the cache, not in a
 *	file) and reading an entry whole (torch entries are gigabytes).
 */
#include "ckpt_int.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define EOCD_LEN 22
#define EOCD_TAIL_MAX (65535 + EOCD_LEN)
#define Z64_LOC_LEN 20
#define Z64_EOCD_LEN 56
#define CDH_LEN 46
#define LFH_LEN 30
#define ZIP_CD_MAX (64ULL << 20)
#define ZIP_CHUNK (1U << 20)
#define ZIP_OUT (256U << 10)
#define TORCH_VERSION_HEAD 32

/* flags: encrypted, strong encryption, patched data, encrypted directory */
#define ZIP_FLAGS_REFUSED (0x0001 | 0x0020 | 0x0040 | 0x2000)

enum zip_kind { ZIP_TORCH, ZIP_NPZ };

enum zent_role { ROLE_DATA, ROLE_NPY, ROLE_VERSION };

struct zent {
	const unsigned char *name;	/* in the central directory buffer */
	uint16_t nlen;
	uint16_t method;
	uint32_t crc;
	uint64_t csize, usize, lofs;
	uint64_t data_ofs;		/* from the local header (pass 3) */
	enum zent_role role;
};

struct zip {
	struct ckpt_ctx *c;
	enum zip_kind kind;
	uint64_t eocd, cd_ofs, cd_size, cd_end, count;
	unsigned char *cd;
	struct zent *ents;
	unsigned char *buf;		/* ZIP_CHUNK */
	unsigned char *out;		/* ZIP_OUT */
	unsigned char *head;		/* CKPT_NPY_HEAD_MAX */
	uint64_t total;			/* uncompressed bytes of all entries */
	int no_crc;			/* torch, written without CRC-32s */
	enum ckpt_verdict unknown;	/* an .npz member we could not check */
};

struct sink {
	uLong crc;
	uint64_t total;
	unsigned char *head;
	size_t head_cap, head_len;
};

static void sink_put(struct sink *s, const unsigned char *p, size_t n)
{
	size_t h;

	s->crc = crc32(s->crc, p, (uInt)n);
	s->total += n;
	if (s->head_len < s->head_cap) {
		h = s->head_cap - s->head_len < n ? s->head_cap - s->head_len
						  : n;
		memcpy(s->head + s->head_len, p, h);
		s->head_len += h;
	}
}

static void qname(char *q, const struct zent *e)
{
	ckpt_quote(q, CKPT_QUOTE_LEN, (const char *)e->name, e->nlen);
}

static enum ckpt_verdict find_eocd(struct zip *z, unsigned char *rec)
{
	struct ckpt_ctx *c = z->c;
	uint64_t size = c->r->size;
	size_t tail = size < EOCD_TAIL_MAX ? (size_t)size : EOCD_TAIL_MAX;
	enum ckpt_verdict vd;
	size_t i;

	if (size < EOCD_LEN)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "%llu bytes, too short for a zip end record",
				 (unsigned long long)size);
	vd = ckpt_read(c, z->buf, tail, size - tail);
	if (vd)
		return vd;
	/*
	 * The last signature, as Python's zipfile (rfind) and miniz take it;
	 * a record cut off there fails in zipfile. A comment cut short does
	 * not matter to either.
	 */
	for (i = tail - 3; i-- > 0;) {
		if (memcmp(z->buf + i, "PK\5\6", 4))
			continue;
		if (i + EOCD_LEN > tail)
			return ckpt_fail(c, CKPT_TRUNCATED,
					 "zip end record at offset %llu is cut "
					 "off by the end of the file",
					 (unsigned long long)(size - tail + i));
		z->eocd = size - tail + i;
		memcpy(rec, z->buf + i, EOCD_LEN);
		return CKPT_OK;
	}
	return ckpt_fail(c, CKPT_TRUNCATED,
			 "no zip end of central directory record in the last "
			 "%zu bytes", tail);
}

/* Read the EOCD and, if there is one, the ZIP64 EOCD; check placement. */
static enum ckpt_verdict read_end(struct zip *z)
{
	struct ckpt_ctx *c = z->c;
	unsigned char e[EOCD_LEN] = { 0 }, loc[Z64_LOC_LEN] = { 0 };
	unsigned char r64[Z64_EOCD_LEN] = { 0 };
	uint64_t disk, cd_disk, n_disk, z64;
	enum ckpt_verdict vd;

	vd = find_eocd(z, e);
	if (vd)
		return vd;
	disk = ckpt_le16(e + 4);
	cd_disk = ckpt_le16(e + 6);
	n_disk = ckpt_le16(e + 8);
	z->count = ckpt_le16(e + 10);
	z->cd_size = ckpt_le32(e + 12);
	z->cd_ofs = ckpt_le32(e + 16);
	z->cd_end = z->eocd;
	if (z->eocd >= Z64_LOC_LEN) {
		vd = ckpt_read(c, loc, Z64_LOC_LEN, z->eocd - Z64_LOC_LEN);
		if (vd)
			return vd;
	}
	if (z->eocd >= Z64_LOC_LEN && !memcmp(loc, "PK\6\7", 4)) {
		z64 = ckpt_le64(loc + 8);
		if (ckpt_le32(loc + 4) || ckpt_le32(loc + 16) > 1)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "multi-disk zip64 archive");
		/* Python's zipfile expects the record right before the
		 * locator, miniz where the locator points: both must hold. */
		if (z->eocd - Z64_LOC_LEN < Z64_EOCD_LEN ||
		    z64 != z->eocd - Z64_LOC_LEN - Z64_EOCD_LEN)
			return ckpt_fail(c, CKPT_BAD_OFFSETS,
					 "zip64 locator at offset %llu points "
					 "to %llu, not to the record before it",
					 (unsigned long long)(z->eocd -
							      Z64_LOC_LEN),
					 (unsigned long long)z64);
		vd = ckpt_read(c, r64, Z64_EOCD_LEN, z64);
		if (vd)
			return vd;
		if (memcmp(r64, "PK\6\6", 4) ||
		    ckpt_le64(r64 + 4) != Z64_EOCD_LEN - 12)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "no valid zip64 end record at offset "
					 "%llu", (unsigned long long)z64);
		disk = ckpt_le32(r64 + 16);
		cd_disk = ckpt_le32(r64 + 20);
		n_disk = ckpt_le64(r64 + 24);
		z->count = ckpt_le64(r64 + 32);
		z->cd_size = ckpt_le64(r64 + 40);
		z->cd_ofs = ckpt_le64(r64 + 48);
		z->cd_end = z64;
	}
	if (disk || cd_disk || n_disk != z->count)
		return ckpt_fail(c, CKPT_BAD_HEADER, "multi-disk zip archive");
	if (z->cd_ofs > c->r->size)
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "central directory offset %llu is past the "
				 "end of the file (%llu bytes)",
				 (unsigned long long)z->cd_ofs,
				 (unsigned long long)c->r->size);
	if (z->cd_ofs > z->cd_end || z->cd_size > z->cd_end - z->cd_ofs)
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "central directory (%llu bytes at offset "
				 "%llu) runs into the end record at %llu",
				 (unsigned long long)z->cd_size,
				 (unsigned long long)z->cd_ofs,
				 (unsigned long long)z->cd_end);
	if (z->cd_ofs + z->cd_size != z->cd_end)
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "%llu unexplained bytes between the central "
				 "directory (ends at %llu) and the end record "
				 "at %llu",
				 (unsigned long long)(z->cd_end - z->cd_ofs -
						      z->cd_size),
				 (unsigned long long)(z->cd_ofs + z->cd_size),
				 (unsigned long long)z->cd_end);
	if (z->cd_size > ZIP_CD_MAX)
		return ckpt_fail(c, CKPT_TOO_LARGE,
				 "central directory of %llu bytes, over the "
				 "%llu-byte limit",
				 (unsigned long long)z->cd_size, ZIP_CD_MAX);
	if (z->count > z->cd_size / CDH_LEN)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "%llu entries cannot fit in a central "
				 "directory of %llu bytes",
				 (unsigned long long)z->count,
				 (unsigned long long)z->cd_size);
	return CKPT_OK;
}

/*
 * Take the values the fixed header marks as 0xFFFFFFFF (or 0xFFFF for the
 * disk) from the zip64 extra field, in the order the format fixes: size,
 * compressed size, local header offset, disk. -1 if the extra field is
 * malformed or lacks one of them.
 */
static int zip64_extra(const unsigned char *x, size_t xlen, struct zent *e,
		       uint32_t *disk)
{
	int want_u = e->usize == 0xffffffff, want_c = e->csize == 0xffffffff;
	int want_o = e->lofs == 0xffffffff, want_d = *disk == 0xffff;
	int found = 0;

	while (xlen >= 4) {
		uint16_t id = ckpt_le16(x), sz = ckpt_le16(x + 2);
		const unsigned char *d = x + 4;
		size_t need;

		if (sz > xlen - 4)
			return -1;
		if (id == 0x0001 && !found) {
			found = 1;
			need = 8 * (want_u + want_c + want_o) + 4 * want_d;
			if (sz < need)
				return -1;
			if (want_u) {
				e->usize = ckpt_le64(d);
				d += 8;
			}
			if (want_c) {
				e->csize = ckpt_le64(d);
				d += 8;
			}
			if (want_o) {
				e->lofs = ckpt_le64(d);
				d += 8;
			}
			if (want_d)
				*disk = ckpt_le32(d);
		}
		x += 4 + sz;
		xlen -= 4 + (size_t)sz;
	}
	if (!found && (want_u || want_c || want_o || want_d))
		return -1;
	return 0;
}

/* Pass 1: the central directory. */
static enum ckpt_verdict read_cd(struct zip *z)
{
	struct ckpt_ctx *c = z->c;
	char q[CKPT_QUOTE_LEN];
	enum ckpt_verdict vd;
	uint64_t i;
	size_t p = 0;

	z->cd = malloc(z->cd_size ? z->cd_size : 1);
	z->ents = calloc(z->count ? z->count : 1, sizeof(*z->ents));
	if (!z->cd || !z->ents)
		return ckpt_fail(c, CKPT_IO_ERROR,
				 "no memory for a central directory of %llu "
				 "bytes", (unsigned long long)z->cd_size);
	vd = ckpt_read(c, z->cd, z->cd_size, z->cd_ofs);
	if (vd)
		return vd;
	for (i = 0; i < z->count; i++) {
		const unsigned char *h = z->cd + p;
		struct zent *e = &z->ents[i];
		size_t xlen, klen;
		uint16_t flags;
		uint32_t disk;

		if (z->cd_size - p < CDH_LEN || memcmp(h, "PK\1\2", 4))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry #%llu: no central directory "
					 "header at offset %llu",
					 (unsigned long long)i,
					 (unsigned long long)(z->cd_ofs + p));
		flags = ckpt_le16(h + 8);
		e->method = ckpt_le16(h + 10);
		e->crc = ckpt_le32(h + 16);
		e->csize = ckpt_le32(h + 20);
		e->usize = ckpt_le32(h + 24);
		e->nlen = ckpt_le16(h + 28);
		xlen = ckpt_le16(h + 30);
		klen = ckpt_le16(h + 32);
		disk = ckpt_le16(h + 34);
		e->lofs = ckpt_le32(h + 42);
		if (z->cd_size - p - CDH_LEN < e->nlen + xlen + klen)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry #%llu at offset %llu runs past "
					 "the central directory",
					 (unsigned long long)i,
					 (unsigned long long)(z->cd_ofs + p));
		e->name = h + CDH_LEN;
		qname(q, e);
		if (memchr(e->name, '\0', e->nlen))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry #%llu: name '%s' holds a NUL",
					 (unsigned long long)i, q);
		if (zip64_extra(h + CDH_LEN + e->nlen, xlen, e, &disk))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry '%s': malformed extra field or "
					 "missing zip64 sizes", q);
		p += CDH_LEN + e->nlen + xlen + klen;
		if (disk)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry '%s' is on disk %u of a "
					 "multi-disk archive", q, disk);
		if (flags & ZIP_FLAGS_REFUSED)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry '%s' is encrypted or patched "
					 "(flags 0x%04x)", q, flags);
		if (e->method != 0 && e->method != 8)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry '%s': compression method %u, "
					 "only stored (0) and deflate (8) load",
					 q, e->method);
		if (e->method == 0 && e->csize != e->usize)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "stored entry '%s' has %llu bytes "
					 "compressed, %llu uncompressed", q,
					 (unsigned long long)e->csize,
					 (unsigned long long)e->usize);
		if (e->usize && !e->csize)
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry '%s': %llu bytes from no "
					 "compressed data", q,
					 (unsigned long long)e->usize);
		if (e->lofs >= z->cd_ofs || z->cd_ofs - e->lofs < LFH_LEN)
			return ckpt_fail(c, CKPT_BAD_OFFSETS,
					 "entry '%s': local header offset "
					 "%llu is not before the central "
					 "directory at %llu", q,
					 (unsigned long long)e->lofs,
					 (unsigned long long)z->cd_ofs);
	}
	if (p != z->cd_size)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "central directory has %llu bytes after its "
				 "%llu entries",
				 (unsigned long long)(z->cd_size - p),
				 (unsigned long long)z->count);
	return CKPT_OK;
}

static struct zent *find_entry(struct zip *z, const unsigned char *pfx,
			       size_t plen, const char *name)
{
	size_t n = strlen(name);
	uint64_t i;

	for (i = 0; i < z->count; i++) {
		struct zent *e = &z->ents[i];

		if (e->nlen == plen + n && !memcmp(e->name, pfx, plen) &&
		    !memcmp(e->name + plen, name, n))
			return e;
	}
	return NULL;
}

/*
 * torch.save with torch.serialization.config.save.compute_crc32 = False
 * (PyTorch 2.6+) writes a CRC of 0 for every entry, and torch.load never
 * checks CRCs (miniz is built with MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS),
 * so such a file loads. When every non-empty entry of a torch archive has
 * CRC 0, the CRCs were not written: the data is streamed but not compared,
 * and the OK says so. A zero among real CRCs is still a mismatch, and an
 * .npz is always checked (Python's zipfile compares CRCs on read).
 */
static int crcs_absent(const struct zip *z)
{
	int nonempty = 0;
	uint64_t i;

	if (z->kind != ZIP_TORCH)
		return 0;
	for (i = 0; i < z->count; i++) {
		if (!z->ents[i].usize)
			continue;
		if (z->ents[i].crc)
			return 0;
		nonempty = 1;
	}
	return nonempty;
}

/* Pass 2: what torch.load and np.load need besides sound zip data. */
static enum ckpt_verdict check_structure(struct zip *z)
{
	struct ckpt_ctx *c = z->c;
	char q[CKPT_QUOTE_LEN];
	const unsigned char *slash;
	struct zent *v;
	size_t plen;
	uint64_t i;

	if (z->kind == ZIP_NPZ) {
		for (i = 0; i < z->count; i++) {
			struct zent *e = &z->ents[i];

			if (e->nlen >= 4 &&
			    !memcmp(e->name + e->nlen - 4, ".npy", 4))
				e->role = ROLE_NPY;
		}
		return CKPT_OK;
	}
	if (!z->count)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "not a torch archive: no entries");
	slash = memchr(z->ents[0].name, '/', z->ents[0].nlen);
	if (!slash) {
		qname(q, &z->ents[0]);
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "not a torch archive: first entry '%s' is not "
				 "in a subdirectory", q);
	}
	plen = (size_t)(slash - z->ents[0].name) + 1;
	ckpt_quote(q, sizeof(q), (const char *)z->ents[0].name, plen);
	if (!find_entry(z, z->ents[0].name, plen, "data.pkl"))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "not a torch archive: no data.pkl (looked "
				 "for '%sdata.pkl')", q);
	v = find_entry(z, z->ents[0].name, plen, ".data/version");
	if (!v)
		v = find_entry(z, z->ents[0].name, plen, "version");
	if (!v)
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "not a torch archive: no '%sversion' record",
				 q);
	v->role = ROLE_VERSION;
	return CKPT_OK;
}

/* Pass 3: local headers, and no two entries sharing bytes. */
static int zent_cmp(const void *a, const void *b)
{
	const struct zent *x = a, *y = b;

	if (x->lofs != y->lofs)
		return x->lofs < y->lofs ? -1 : 1;
	return 0;
}

static enum ckpt_verdict check_local(struct zip *z)
{
	struct ckpt_ctx *c = z->c;
	char q[CKPT_QUOTE_LEN], q2[CKPT_QUOTE_LEN];
	unsigned char h[LFH_LEN];
	enum ckpt_verdict vd;
	uint64_t i;

	for (i = 0; i < z->count; i++) {
		struct zent *e = &z->ents[i];
		uint16_t lnlen, lxlen;

		qname(q, e);
		vd = ckpt_read(c, h, LFH_LEN, e->lofs);
		if (vd)
			return vd;
		if (memcmp(h, "PK\3\4", 4))
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry '%s': no local header at "
					 "offset %llu", q,
					 (unsigned long long)e->lofs);
		lnlen = ckpt_le16(h + 26);
		lxlen = ckpt_le16(h + 28);
		e->data_ofs = e->lofs + LFH_LEN + lnlen + lxlen;
		if (e->data_ofs > z->cd_ofs ||
		    e->csize > z->cd_ofs - e->data_ofs)
			return ckpt_fail(c, CKPT_BAD_OFFSETS,
					 "entry '%s': data (%llu bytes at "
					 "offset %llu) runs into the central "
					 "directory at %llu", q,
					 (unsigned long long)e->csize,
					 (unsigned long long)e->data_ofs,
					 (unsigned long long)z->cd_ofs);
		if (lnlen == e->nlen) {
			vd = ckpt_read(c, z->buf, lnlen, e->lofs + LFH_LEN);
			if (vd)
				return vd;
		}
		if (lnlen != e->nlen || memcmp(z->buf, e->name, lnlen)) {
			ckpt_quote(q2, sizeof(q2), (const char *)z->buf,
				   lnlen == e->nlen ? lnlen : 0);
			return ckpt_fail(c, CKPT_BAD_HEADER,
					 "entry '%s': the local header at "
					 "offset %llu names it '%s'%s", q,
					 (unsigned long long)e->lofs, q2,
					 lnlen == e->nlen ? "" :
					 " (another length)");
		}
	}
	qsort(z->ents, z->count, sizeof(*z->ents), zent_cmp);
	for (i = 0; i + 1 < z->count; i++) {
		struct zent *a = &z->ents[i], *b = &z->ents[i + 1];

		if (a->data_ofs + a->csize <= b->lofs)
			continue;
		qname(q, a);
		qname(q2, b);
		return ckpt_fail(c, CKPT_BAD_OFFSETS,
				 "entries '%s' (offset %llu, data ends at "
				 "%llu) and '%s' (offset %llu) overlap", q,
				 (unsigned long long)a->lofs,
				 (unsigned long long)(a->data_ofs + a->csize),
				 q2, (unsigned long long)b->lofs);
	}
	return CKPT_OK;
}

static enum ckpt_verdict stream_stored(struct zip *z, struct zent *e,
				       struct sink *s)
{
	uint64_t left = e->csize, off = e->data_ofs;
	enum ckpt_verdict vd;

	while (left) {
		size_t n = left < ZIP_CHUNK ? (size_t)left : ZIP_CHUNK;

		vd = ckpt_read(z->c, z->buf, n, off);
		if (vd)
			return vd;
		sink_put(s, z->buf, n);
		off += n;
		left -= n;
	}
	return CKPT_OK;
}

static enum ckpt_verdict stream_deflate(struct zip *z, struct zent *e,
					struct sink *s)
{
	struct ckpt_ctx *c = z->c;
	uint64_t left = e->csize, off = e->data_ofs;
	enum ckpt_verdict vd = CKPT_OK;
	char q[CKPT_QUOTE_LEN];
	z_stream zs;
	int zrc;

	qname(q, e);
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
		return ckpt_fail(c, CKPT_IO_ERROR, "inflateInit2 failed");
	for (;;) {
		size_t got;

		if (!zs.avail_in && left) {
			size_t n = left < ZIP_CHUNK ? (size_t)left : ZIP_CHUNK;

			vd = ckpt_read(c, z->buf, n, off);
			if (vd)
				goto out_inflate_end;
			zs.next_in = z->buf;
			zs.avail_in = (uInt)n;
			off += n;
			left -= n;
		}
		zs.next_out = z->out;
		zs.avail_out = ZIP_OUT;
		zrc = inflate(&zs, Z_NO_FLUSH);
		got = ZIP_OUT - zs.avail_out;
		if (got > e->usize - s->total) {
			vd = ckpt_fail(c, CKPT_BAD_CRC,
				       "entry '%s': inflates past its "
				       "declared %llu bytes", q,
				       (unsigned long long)e->usize);
			goto out_inflate_end;
		}
		sink_put(s, z->out, got);
		if (zrc == Z_STREAM_END)
			break;
		if (zrc == Z_MEM_ERROR) {
			vd = ckpt_fail(c, CKPT_IO_ERROR,
				       "entry '%s': inflate: out of memory", q);
			goto out_inflate_end;
		}
		if (zrc == Z_BUF_ERROR && !zs.avail_in && !left) {
			vd = ckpt_fail(c, CKPT_BAD_CRC,
				       "entry '%s': deflate data ends before "
				       "its stream does (%llu bytes at "
				       "offset %llu)", q,
				       (unsigned long long)e->csize,
				       (unsigned long long)e->data_ofs);
			goto out_inflate_end;
		}
		if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
			vd = ckpt_fail(c, CKPT_BAD_CRC,
				       "entry '%s': corrupt deflate data "
				       "near offset %llu: %s", q,
				       (unsigned long long)(off - zs.avail_in),
				       zs.msg ? zs.msg : "inflate error");
			goto out_inflate_end;
		}
	}
	if (zs.avail_in || left)
		vd = ckpt_fail(c, CKPT_BAD_CRC,
			       "entry '%s': %llu bytes after the end of its "
			       "deflate stream", q,
			       (unsigned long long)(zs.avail_in + left));
out_inflate_end:
	inflateEnd(&zs);
	return vd;
}

/* A torch version record: what caffe2::stoull reads, and >= 1. */
static int version_ok(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i = 0, d;

	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n'))
		i++;
	for (d = i; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(p[i] - '0'), &v))
			return 0;
	return i > d && v >= 1;
}

/* Pass 4: every entry's bytes. */
static enum ckpt_verdict check_entry(struct zip *z, struct zent *e)
{
	struct ckpt_ctx *c = z->c;
	struct sink s = { .crc = crc32(0, NULL, 0), .head = z->head };
	char q[CKPT_QUOTE_LEN], sub[256];
	struct ckpt_ctx mc = *c;
	enum ckpt_verdict vd;

	if (e->role == ROLE_NPY)
		s.head_cap = CKPT_NPY_HEAD_MAX;
	else if (e->role == ROLE_VERSION)
		s.head_cap = TORCH_VERSION_HEAD;
	vd = e->method ? stream_deflate(z, e, &s) : stream_stored(z, e, &s);
	if (vd)
		return vd;
	qname(q, e);
	if (s.total != e->usize)
		return ckpt_fail(c, CKPT_BAD_CRC,
				 "entry '%s': inflates to %llu bytes, the "
				 "directory says %llu", q,
				 (unsigned long long)s.total,
				 (unsigned long long)e->usize);
	if (s.crc != e->crc && !z->no_crc)
		return ckpt_fail(c, CKPT_BAD_CRC,
				 "entry '%s': CRC-32 of its data (%llu bytes "
				 "at offset %llu) is %08lx, the directory "
				 "says %08lx", q,
				 (unsigned long long)e->csize,
				 (unsigned long long)e->data_ofs,
				 (unsigned long)s.crc, (unsigned long)e->crc);
	z->total += e->usize;
	if (e->role == ROLE_VERSION && !version_ok(s.head, s.head_len))
		return ckpt_fail(c, CKPT_BAD_HEADER,
				 "torch version record '%s' does not hold a "
				 "positive number", q);
	if (e->role != ROLE_NPY)
		return CKPT_OK;
	mc.detail = sub;
	mc.detail_len = sizeof(sub);
	vd = ckpt_npy_check(&mc, s.head, s.head_len, e->usize);
	if (vd == CKPT_OK)
		return CKPT_OK;
	if (vd == CKPT_UNKNOWN_FORMAT) {
		/* Not a failure, but the archive is not OK either; a later
		 * failure still wins. */
		if (!z->unknown)
			ckpt_fail(c, vd, "member '%s': %s", q, sub);
		z->unknown = vd;
		return CKPT_OK;
	}
	return ckpt_fail(c, vd, "member '%s': %s", q, sub);
}

static enum ckpt_verdict zip_check(struct ckpt_ctx *c, enum zip_kind kind)
{
	struct zip z = { .c = c, .kind = kind };
	enum ckpt_verdict vd;
	uint64_t i;

	z.buf = malloc(ZIP_CHUNK);
	z.out = malloc(ZIP_OUT);
	z.head = malloc(CKPT_NPY_HEAD_MAX);
	if (!z.buf || !z.out || !z.head) {
		vd = ckpt_fail(c, CKPT_IO_ERROR, "no memory for zip buffers");
		goto out_free;
	}
	vd = read_end(&z);
	if (!vd)
		vd = read_cd(&z);
	if (!vd) {
		z.no_crc = crcs_absent(&z);
		vd = check_structure(&z);
	}
	if (!vd)
		vd = check_local(&z);
	for (i = 0; !vd && i < z.count; i++)
		vd = check_entry(&z, &z.ents[i]);
	if (!vd && z.unknown)
		vd = z.unknown;	/* its detail is already written */
	else if (!vd)
		vd = ckpt_ok(c, "%llu entries, %llu bytes uncompressed%s",
			     (unsigned long long)z.count,
			     (unsigned long long)z.total,
			     z.no_crc ? "; saved without CRC-32s "
					"(compute_crc32=False), data not "
					"checked" : "");
out_free:
	free(z.ents);
	free(z.cd);
	free(z.head);
	free(z.out);
	free(z.buf);
	return vd;
}

static enum ckpt_verdict torch_verify(struct ckpt_ctx *c)
{
	uint64_t size = c->r->size;
	unsigned char m[4] = { 0 };
	size_t n = size < 4 ? (size_t)size : 4;
	enum ckpt_verdict vd;

	if (!size)
		return ckpt_fail(c, c->fmt == CKPT_FMT_TORCH_BIN ?
				 CKPT_UNKNOWN_FORMAT : CKPT_TRUNCATED,
				 "empty file");
	vd = ckpt_read(c, m, n, 0);
	if (vd)
		return vd;
	/* torch.load's own test: a zip starts with a local header. */
	if (n == 4 && !memcmp(m, "PK\3\4", 4))
		return zip_check(c, ZIP_TORCH);
	if (m[0] == 0x80)
		return ckpt_fail(c, CKPT_UNKNOWN_FORMAT,
				 "legacy torch pickle (protocol %u): no load "
				 "check without executing", m[1]);
	if (c->fmt == CKPT_FMT_TORCH_BIN)
		return ckpt_fail(c, CKPT_UNKNOWN_FORMAT,
				 "a .bin that is not a torch zip: no check");
	if (n < 4 && !memcmp(m, "PK\3\4", n))
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "%zu bytes of a zip local header", n);
	return ckpt_fail(c, CKPT_BAD_MAGIC,
			 "starts with %02x %02x %02x %02x: neither a zip "
			 "(torch.save) nor a pickle", m[0], m[1], m[2], m[3]);
}

static enum ckpt_verdict npz_verify(struct ckpt_ctx *c)
{
	uint64_t size = c->r->size;
	unsigned char m[6] = { 0 };
	size_t n = size < 6 ? (size_t)size : 6;
	enum ckpt_verdict vd;

	vd = ckpt_read(c, m, n, 0);
	if (vd)
		return vd;
	/* np.load goes by magic: an .npz may hold a single .npy. */
	if (n == 6 && !memcmp(m, "\x93NUMPY", 6) && c->fmt == CKPT_FMT_NPZ)
		return ckpt_npy_ops.verify(c);
	if (n >= 4 && (!memcmp(m, "PK\3\4", 4) || !memcmp(m, "PK\5\6", 4)))
		return zip_check(c, ZIP_NPZ);
	if (n < 4)
		return ckpt_fail(c, CKPT_TRUNCATED,
				 "%zu bytes, too short for a zip", n);
	return ckpt_fail(c, CKPT_BAD_MAGIC,
			 "starts with %02x %02x %02x %02x, not a zip", m[0],
			 m[1], m[2], m[3]);
}

const struct ckpt_ops ckpt_zip_torch_ops = {
	.name = "torch",
	.verify = torch_verify,
};

const struct ckpt_ops ckpt_zip_npz_ops = {
	.name = "npz",
	.verify = npz_verify,
};
