/*
 * archive_push.c - push a verified archive to a bucket, and read archives
 * back from one (see archive_push.h).
 *
 * DESIGN
 *	The bytes: every archived file is read from the store, block by
 *	block, through archive_file_open() (the one way to an archived
 *	file's bytes), into one buffer of at most a part (64 MiB): a file
 *	of at most one part goes in one PUT, a larger one as a multipart
 *	upload of parts of that size (more when 10000 parts would not
 *	hold it). While the bytes go out, their SHA-256 is computed and
 *	must equal the record's before the object is made visible (the
 *	PUT's own body is signed with its SHA-256, which S3 checks on
 *	arrival; a multipart upload is completed only after the whole
 *	file's digest matched, else aborted).
 *
 *	Read-back: after each object a HEAD (x-amz-checksum-mode: ENABLED)
 *	must give the size and an ETag computed here: the quoted MD5 of
 *	the bytes, or for a multipart upload the MD5 of the part MD5s with
 *	"-N" (AWS) or the plain MD5 of the whole (s3rver). Nothing else is
 *	accepted (an SSE-KMS bucket, whose ETags are not MD5s, is refused:
 *	it cannot be verified this way). When the server keeps a SHA-256
 *	checksum it must be ours too.
 *
 *	The record goes LAST, as RGTFS_ARCHIVE.json, with each file's
 *	object path and verified ETag: an archive without it is an upload
 *	that did not finish and is never listed. Re-pushing over an older
 *	upload overwrites objects before the record: until the new record
 *	lands, the old one names ETags that no longer match, so readers
 *	refuse those files instead of serving other bytes.
 *
 *	Reading: a listing (remote_list(), cached by the cloud's remote)
 *	finds the archives; the record is fetched once per ETag and kept
 *	in the store ("rarc" records), so a remote archive stays listable
 *	and readable from the cache when the bucket is away.
 */
#define _GNU_SOURCE
#include "archive_push.h"
#include "platform.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "archive.h"
#include "buf.h"
#include "cloud.h"
#include "fetch.h"
#include "log.h"
#include "remote.h"
#include "s3xml.h"
#include "store.h"
#include "xfer.h"

#define PART_DEFAULT ((size_t)64 << 20)
#define PARTS_MAX 10000u
#define HASHED_LEN 66 /* "%%" + 64 hex */
#define RECORD_MAX ((size_t)64 << 20)
#define RECORD_NAME "RGTFS_ARCHIVE.json"
/* The record of a push made before the destroy call: the files are all
 * there and verified, but the instance may still live, so no mount lists
 * it; archive_push_final() writes RECORD_NAME once the teardown finished. */
#define PENDING_NAME "RGTFS_PENDING.json"
#define KEY_BUDGET S3_KEY_MAX

size_t archive_push_part_size = PART_DEFAULT;

/* ---- key mapping --------------------------------------------------------- */

static bool keep_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/*
 * Encode segment @s (@n bytes) at @out+*o; false if it would pass @max
 * bytes of output or 255 bytes of segment ('/' in @s is encoded: a byte
 * of a name).
 */
static bool enc_seg(const char *s, size_t n, char *out, size_t *o, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	bool dots =
	    (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
	size_t start = *o;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (keep_byte(c) && !(dots && c == '.')) {
			if (*o + 1 > max)
				return false;
			out[(*o)++] = (char)c;
		} else {
			if (*o + 3 > max)
				return false;
			out[(*o)++] = '%';
			out[(*o)++] = hex[c >> 4];
			out[(*o)++] = hex[c & 15];
		}
		if (*o - start > S3_NAME_MAX)
			return false;
	}
	return true;
}

static void sha256_hex(const void *d, size_t n, char hex[65])
{
	unsigned char md[32];
	unsigned int ml = 0;
	EVP_Digest(d, n, md, &ml, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int archive_key_encode(const char *path, size_t budget, char *out,
		       size_t outlen)
{
	size_t max = budget < outlen - 1 ? budget : outlen - 1;
	size_t o = 0;
	bool ok = *path != '\0';
	if (!outlen)
		return -ENAMETOOLONG;
	if (!*path)
		return -EINVAL;
	for (const char *s = path; ok;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		ok = n && enc_seg(s, n, out, &o, max);
		if (!ok || !e)
			break;
		if (o + 1 > max) {
			ok = false;
			break;
		}
		out[o++] = '/';
		s = e + 1;
	}
	if (ok) {
		out[o] = '\0';
		return 0;
	}
	/* does not fit: the flat hashed name */
	if (max < HASHED_LEN)
		return -ENAMETOOLONG;
	out[0] = out[1] = '%';
	sha256_hex(path, strlen(path), out + 2);
	return 0;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not what we write */
}

int archive_key_decode(const char *key, char *out, size_t outlen)
{
	size_t o = 0, kl = strlen(key);
	if (kl == HASHED_LEN && key[0] == '%' && key[1] == '%')
		return -ENOENT;
	if (!kl)
		return -EINVAL;
	for (size_t i = 0; i < kl; i++) {
		char c = key[i];
		if (c == '%') {
			int h = i + 2 < kl ? unhex(key[i + 1]) : -1;
			int l = h >= 0 ? unhex(key[i + 2]) : -1;
			if (l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			c = (char)(h << 4 | l);
			i += 2;
		} else if (c != '/' && !keep_byte((unsigned char)c)) {
			return -EINVAL;
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	out[o] = '\0';
	/* one-to-one: only what encode would have written */
	size_t rl = 3 * o + HASHED_LEN + 1;
	char *re = malloc(rl);
	if (!re)
		return -ENOMEM;
	int rc = archive_key_encode(out, rl - 1, re, rl);
	if (!rc && strcmp(re, key))
		rc = -EINVAL;
	free(re);
	return rc;
}

int archive_name_encode(const char *name, char *out, size_t outlen)
{
	size_t o = 0, max = outlen ? outlen - 1 : 0;
	if (!*name)
		return -EINVAL;
	if (!enc_seg(name, strlen(name), out, &o, max))
		return -ENAMETOOLONG;
	out[o] = '\0';
	return 0;
}

int archive_remote_dir(const char *plat, const char *id, char *out, size_t len)
{
	char p[S3_NAME_MAX + 1], i[S3_NAME_MAX + 1];
	int rc = archive_name_encode(plat, p, sizeof(p));
	if (!rc)
		rc = archive_name_encode(id, i, sizeof(i));
	if (rc)
		return rc;
	int n = snprintf(out, len, "/archive/%s/%s", p, i);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int archive_remote_file(const char *plat, const char *id, const char *rel,
			char *out, size_t len)
{
	char dir[2 * S3_NAME_MAX + 16];
	int rc = archive_remote_dir(plat, id, dir, sizeof(dir));
	if (rc)
		return rc;
	/* the key is the tree path without its leading '/' */
	size_t used = strlen(dir) - 1 + strlen("/files/");
	if (used >= KEY_BUDGET)
		return -ENAMETOOLONG;
	char *k = malloc(KEY_BUDGET + 1);
	if (!k)
		return -ENOMEM;
	rc = archive_key_encode(rel, KEY_BUDGET - used, k, KEY_BUDGET + 1);
	if (!rc) {
		int n = snprintf(out, len, "%s/files/%s", dir, k);
		rc = n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	free(k);
	return rc;
}

/* ---- ETags ----------------------------------------------------------------
 */

static void hex_of(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void archive_etag_single(const unsigned char md5[16], char *out, size_t len)
{
	char hex[33];
	hex_of(md5, 16, hex);
	snprintf(out, len, "\"%s\"", hex);
}

int archive_etag_multipart(const unsigned char *part_md5s, unsigned nparts,
			   char *out, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	char hex[33];
	if (!nparts)
		return -EINVAL;
	if (!EVP_Digest(part_md5s, (size_t)nparts * 16, md, &ml, EVP_md5(),
			NULL))
		return -ENOMEM;
	hex_of(md, 16, hex);
	int n = snprintf(out, len, "\"%s-%u\"", hex, nparts);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool archive_etag_ok(const char *got, const char *single, const char *multi)
{
	if (!got || !*got)
		return false;
	return (single && !strcmp(got, single)) ||
	       (multi && !strcmp(got, multi));
}

/* base64 of @n bytes (no newlines) */
static void b64_of(const unsigned char *d, size_t n, char *out, size_t len)
{
	unsigned char tmp[64];
	if (len < 4 * ((n + 2) / 3) + 1 || n > 45) {
		if (len)
			out[0] = '\0';
		return;
	}
	int w = EVP_EncodeBlock(tmp, d, (int)n);
	memcpy(out, tmp, (size_t)w);
	out[w] = '\0';
}

/* ---- push -----------------------------------------------------------------
 */

struct push {
	struct cloud *cl;
	struct store *st;
	const struct archive *a;
	struct xfer *x;
	char *buf;
	size_t bufcap;
	char *err;
	size_t errlen;
	size_t skipped; /* objects already there, verified */
	bool (*cancelled)(void *arg);
	void *carg;
};

/* Has the caller given up (an interrupted teardown)? */
static bool cancelled(const struct push *p)
{
	return p->cancelled && p->cancelled(p->carg);
}

__attribute__((format(printf, 3, 4))) static int perr(struct push *p, int rc,
						      const char *fmt, ...)
{
	va_list ap;
	char msg[768];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "archive_to [cloud:%s]: %s",
			 cloud_name(p->cl), msg);
	/* the caller's errno vocabulary: EACCES, ETIMEDOUT, else EIO */
	switch (rc) {
	case -EACCES:
	case -ETIMEDOUT:
	case -ENOMEM:
	case -EINVAL:
	case -EINTR:
		return rc;
	default:
		return -EIO;
	}
}

/* Printable form of an archived name for messages. */
static const char *esc(const char *s, char *out, size_t len)
{
	s3_escape(s, strlen(s), out, len);
	return out;
}

/* Copy [off, off+len) of file @fid (@size bytes) from the store. */
int archive_read_cached(struct store *st, const uint8_t *fid, uint64_t size,
			uint64_t off, size_t len, char *dst, uint64_t *bad_blk)
{
	struct store_rtxn *tx;
	int rc = store_rbegin(st, &tx);
	if (rc)
		return rc;
	uint64_t nb = (size + STORE_BLOCK_SIZE - 1) >> STORE_BLOCK_SHIFT;
	size_t done = 0;
	while (!rc && done < len) {
		uint64_t pos = off + done;
		uint64_t b = pos >> STORE_BLOCK_SHIFT;
		size_t in = (size_t)(pos & (STORE_BLOCK_SIZE - 1));
		size_t want = b + 1 < nb
				  ? STORE_BLOCK_SIZE
				  : (size_t)(size - (b << STORE_BLOCK_SHIFT));
		const void *d;
		size_t l;
		rc = store_block_peek(tx, fid, b, &d, &l);
		if (rc == -EBADMSG && bad_blk)
			*bad_blk = b;
		if (!rc && l != want)
			rc = -EIO;
		if (rc)
			break;
		size_t n = l - in < len - done ? l - in : len - done;
		memcpy(dst + done, (const char *)d + in, n);
		done += n;
	}
	store_rend(tx);
	return rc == -ENOENT ? -EIO : rc;
}

/*
 * archive_read_cached() for the push; its failure as @p's error. A block
 * that fails its checksum is named: the cached copy is damaged, and no
 * byte of the file is sent.
 */
static int read_cached(struct push *p, const char *what, const uint8_t *fid,
		       uint64_t size, uint64_t off, size_t len)
{
	uint64_t bad = 0;
	int rc = archive_read_cached(p->st, fid, size, off, len, p->buf, &bad);
	if (rc == -EBADMSG)
		return perr(p, rc, "%s: cached block %" PRIu64 " fails its "
			    "checksum: the cached copy is damaged; not sent",
			    what, bad);
	if (rc)
		return perr(p, rc, "%s: bytes at %" PRIu64 " are not in the "
			    "cache (%s)", what, off, strerror(-rc));
	return 0;
}

/*
 * HEAD @path and compare with what was sent: @size bytes, an ETag that is
 * @single or @multi, and (when the server keeps one) the SHA-256 checksum
 * @sha_whole / @sha_multi (base64 forms). The ETag seen into @etag_out.
 */
static int verify_object(struct push *p, const char *path, const char *what,
			 uint64_t size, const char *single, const char *multi,
			 const char *sha_whole, const char *sha_multi,
			 char *etag_out)
{
	struct xfer_attr at;
	char cks[128], e1[XFER_ETAG_MAX * 4], e2[XFER_ETAG_MAX * 4];
	int rc = xfer_s3_head(p->x, path, &at, cks, sizeof(cks));
	if (rc)
		return perr(p, rc, "%s: cannot read the upload back (%s)", what,
			    p->x->err);
	if (at.size != size)
		return perr(p, -EIO,
			    "%s: read back %" PRIu64 " bytes, sent %" PRIu64,
			    what, at.size, size);
	if (!archive_etag_ok(at.etag, single, multi))
		return perr(p, -EIO,
			    "%s: the bucket's ETag %s is not the "
			    "one computed here (%s%s%s): not verified",
			    what, esc(at.etag, e1, sizeof(e1)),
			    esc(single, e2, sizeof(e2)), multi ? " or " : "",
			    multi ? multi : "");
	if (cks[0] && strcmp(cks, sha_whole) &&
	    !(sha_multi && !strcmp(cks, sha_multi)))
		return perr(p, -EIO,
			    "%s: the bucket's SHA-256 checksum %s is "
			    "not the one computed here",
			    what, esc(cks, e1, sizeof(e1)));
	snprintf(etag_out, XFER_ETAG_MAX, "%s", at.etag);
	return 0;
}

static void digest_hex_b64(EVP_MD_CTX *md, unsigned char *raw, char *hex,
			   char *b64, size_t b64len)
{
	unsigned int ml = 0;
	EVP_DigestFinal_ex(md, raw, &ml);
	if (hex)
		hex_of(raw, ml, hex);
	if (b64)
		b64_of(raw, ml, b64, b64len);
}

/*
 * Is @path already in the bucket exactly as it would be after the upload
 * (a push run again after a failure)? The same evidence verify_object()
 * asks for after an upload; any doubt (an error, a mismatch) is "no", and
 * the object is sent.
 */
static bool already_there(struct push *p, const char *path, uint64_t size,
			  const char *single, const char *multi,
			  const char *sha_whole, const char *sha_multi,
			  char *etag_out)
{
	struct xfer_attr at;
	char cks[128];
	if (xfer_s3_head(p->x, path, &at, cks, sizeof(cks)) ||
	    at.size != size || !archive_etag_ok(at.etag, single, multi) ||
	    (cks[0] && strcmp(cks, sha_whole) &&
	     !(sha_multi && !strcmp(cks, sha_multi))))
		return false;
	snprintf(etag_out, XFER_ETAG_MAX, "%s", at.etag);
	p->skipped++;
	return true;
}

/* One PUT of @len bytes at @data as @path, verified. */
static int put_small(struct push *p, const char *path, const char *what,
		     const char *data, size_t len, const char *want_sha,
		     char *etag_out)
{
	unsigned char md5[16], sha[32];
	char single[XFER_ETAG_MAX], hex[65], b64[64], sent[XFER_ETAG_MAX];
	unsigned int ml = 0;
	EVP_Digest(data, len, md5, &ml, EVP_md5(), NULL);
	EVP_Digest(data, len, sha, &ml, EVP_sha256(), NULL);
	hex_of(sha, 32, hex);
	b64_of(sha, 32, b64, sizeof(b64));
	if (want_sha && strcmp(hex, want_sha))
		return perr(p, -EIO,
			    "%s: the cached bytes' SHA-256 is %s, "
			    "the record says %s: not sent",
			    what, hex, want_sha);
	archive_etag_single(md5, single, sizeof(single));
	if (already_there(p, path, len, single, NULL, b64, NULL, etag_out))
		return 0;
	int rc = xfer_s3_put(p->x, path, data, len, sent, sizeof(sent));
	if (rc)
		return perr(p, rc, "%s: upload failed (%s)", what, p->x->err);
	if (sent[0] && strcmp(sent, single))
		return perr(p, -EIO,
			    "%s: the server answered the upload with "
			    "ETag %s, not the MD5 of what was sent",
			    what, sent);
	return verify_object(p, path, what, len, single, NULL, b64, NULL,
			     etag_out);
}

static int ensure_buf(struct push *p, size_t n)
{
	if (p->bufcap >= n)
		return 0;
	char *b = realloc(p->buf, n ? n : 1);
	if (!b)
		return -ENOMEM;
	p->buf = b;
	p->bufcap = n;
	return 0;
}

/*
 * Multipart upload of the archived file @f (blocks of @fid), verified.
 * Two passes over the cached bytes: the first computes every digest (the
 * whole file's SHA-256 must be the record's before a byte goes out, and
 * the expected ETags let an object already there be kept), the second
 * sends the parts, each checked against its first-pass MD5.
 */
static int put_multi(struct push *p, const char *path, const char *what,
		     const struct archive_file *f, const uint8_t *fid,
		     size_t part, char *etag_out)
{
	unsigned nparts = (unsigned)((f->size + part - 1) / part);
	unsigned char *md5s = calloc(nparts, 16), *shas = calloc(nparts, 32);
	char **etags = calloc(nparts, sizeof(*etags));
	char upload[XFER_S3_UPLOAD_ID_MAX];
	char single[XFER_ETAG_MAX], multi[XFER_ETAG_MAX], hex[65];
	char b64w[64], b64m[80];
	EVP_MD_CTX *whole = EVP_MD_CTX_new(), *wsha = EVP_MD_CTX_new();
	bool begun = false;
	int rc = md5s && shas && etags && whole && wsha ? 0 : -ENOMEM;
	if (rc) {
		rc = perr(p, rc, "%s: out of memory", what);
		goto out;
	}
	EVP_DigestInit_ex(whole, EVP_md5(), NULL);
	EVP_DigestInit_ex(wsha, EVP_sha256(), NULL);
	for (unsigned i = 0; i < nparts; i++) {
		uint64_t off = (uint64_t)i * part;
		size_t n =
		    f->size - off < part ? (size_t)(f->size - off) : part;
		unsigned int ml = 0;
		if (cancelled(p)) {
			rc = perr(p, -EINTR, "%s: interrupted", what);
			goto out;
		}
		rc = read_cached(p, what, fid, f->size, off, n);
		if (rc)
			goto out;
		EVP_DigestUpdate(whole, p->buf, n);
		EVP_DigestUpdate(wsha, p->buf, n);
		EVP_Digest(p->buf, n, md5s + 16 * (size_t)i, &ml, EVP_md5(),
			   NULL);
		EVP_Digest(p->buf, n, shas + 32 * (size_t)i, &ml, EVP_sha256(),
			   NULL);
	}
	unsigned char wmd5[EVP_MAX_MD_SIZE], wsh[EVP_MAX_MD_SIZE];
	digest_hex_b64(whole, wmd5, NULL, NULL, 0);
	digest_hex_b64(wsha, wsh, hex, b64w, sizeof(b64w));
	/* the record's promise, before anything goes out */
	if (strcmp(hex, f->sha256)) {
		rc = perr(p, -EIO,
			  "%s: the cached bytes' SHA-256 is %s, the "
			  "record says %s: not sent",
			  what, hex, f->sha256);
		goto out;
	}
	archive_etag_single(wmd5, single, sizeof(single));
	rc = archive_etag_multipart(md5s, nparts, multi, sizeof(multi));
	if (rc) {
		rc = perr(p, rc, "%s: cannot compute the ETag", what);
		goto out;
	}
	{
		unsigned char cm[32];
		unsigned int ml = 0;
		EVP_Digest(shas, (size_t)nparts * 32, cm, &ml, EVP_sha256(),
			   NULL);
		b64_of(cm, 32, b64m, sizeof(b64m));
		size_t bl = strlen(b64m);
		snprintf(b64m + bl, sizeof(b64m) - bl, "-%u", nparts);
	}
	if (already_there(p, path, f->size, single, multi, b64w, b64m,
			  etag_out))
		goto out;

	rc = xfer_s3_mpu_begin(p->x, path, upload, sizeof(upload));
	if (rc) {
		rc = perr(p, rc, "%s: cannot start a multipart upload (%s)",
			  what, p->x->err);
		goto out;
	}
	begun = true;
	for (unsigned i = 0; i < nparts; i++) {
		uint64_t off = (uint64_t)i * part;
		size_t n =
		    f->size - off < part ? (size_t)(f->size - off) : part;
		unsigned char md[16];
		char want[XFER_ETAG_MAX], got[XFER_ETAG_MAX];
		unsigned int ml = 0;
		if (cancelled(p)) {
			rc = perr(p, -EINTR, "%s: interrupted", what);
			goto out;
		}
		rc = read_cached(p, what, fid, f->size, off, n);
		if (rc)
			goto out;
		EVP_Digest(p->buf, n, md, &ml, EVP_md5(), NULL);
		if (memcmp(md, md5s + 16 * (size_t)i, 16)) {
			rc = perr(p, -EIO,
				  "%s: part %u changed in the cache "
				  "between two reads",
				  what, i + 1);
			goto out;
		}
		archive_etag_single(md, want, sizeof(want));
		rc = xfer_s3_mpu_part(p->x, path, upload, i + 1, p->buf, n, got,
				      sizeof(got));
		if (rc) {
			rc = perr(p, rc, "%s: part %u of %u failed (%s)", what,
				  i + 1, nparts, p->x->err);
			goto out;
		}
		if (strcmp(got, want)) {
			rc = perr(p, -EIO,
				  "%s: part %u: the server's ETag is "
				  "not the MD5 of what was sent",
				  what, i + 1);
			goto out;
		}
		if (!(etags[i] = strdup(got))) {
			rc = perr(p, -ENOMEM, "%s: out of memory", what);
			goto out;
		}
	}
	rc = xfer_s3_mpu_complete(p->x, path, upload,
				  (const char *const *)etags, nparts);
	if (rc) {
		rc = perr(p, rc, "%s: completing the upload failed (%s)", what,
			  p->x->err);
		goto out;
	}
	begun = false;
	rc = verify_object(p, path, what, f->size, single, multi, b64w, b64m,
			   etag_out);
out:
	if (begun && xfer_s3_mpu_abort(p->x, path, upload))
		rgt_log(RGT_WARN,
			"archive_to [cloud:%s]: %s: could not abort "
			"the unfinished upload (%s); its parts stay in the "
			"bucket until a lifecycle rule removes them",
			cloud_name(p->cl), what, p->x->err);
	for (unsigned i = 0; etags && i < nparts; i++)
		free(etags[i]);
	free(etags);
	free(md5s);
	free(shas);
	EVP_MD_CTX_free(whole);
	EVP_MD_CTX_free(wsha);
	return rc;
}

static size_t part_for(uint64_t size)
{
	size_t part =
	    archive_push_part_size ? archive_push_part_size : PART_DEFAULT;
	/* S3 allows 10000 parts: larger files get larger parts (MiB) */
	if (size / part >= PARTS_MAX) {
		uint64_t need = size / PARTS_MAX + 1;
		need = (need + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
		part = need > XFER_S3_PUT_MAX ? 0 : (size_t)need;
	}
	return part;
}

static int push_file(struct push *p, const struct archive_file *f,
		     char *etag_out)
{
	char path[4096], what[600], e1[400];
	struct fetch_file ff;
	snprintf(what, sizeof(what), "%s", esc(f->path, e1, sizeof(e1)));
	int rc = archive_remote_file(p->a->platform, p->a->id, f->path, path,
				     sizeof(path));
	if (rc)
		return perr(p, rc, "%s: no key for this name (%s)", what,
			    strerror(-rc));
	size_t part = part_for(f->size);
	if (!part)
		return perr(p, -EIO,
			    "%s: %" PRIu64 " bytes is more than a "
			    "multipart upload may carry",
			    what, f->size);
	rc = archive_file_open(p->a, f, &ff);
	if (rc)
		return perr(p, rc, "%s: cannot open the archived copy (%s)",
			    what, strerror(-rc));
	rc = ensure_buf(p, f->size <= part ? (size_t)f->size : part);
	if (rc) {
		rc = perr(p, rc, "%s: out of memory", what);
	} else if (f->size <= part) {
		rc = read_cached(p, what, ff.fid, f->size, 0,
				 (size_t)f->size);
		if (!rc)
			rc = put_small(p, path, what, p->buf, (size_t)f->size,
				       f->sha256, etag_out);
	} else {
		rc = put_multi(p, path, what, f, ff.fid, part, etag_out);
	}
	fetch_file_cleanup(&ff);
	return rc;
}

/* A text of the archive (manifest, record) as object @name. */
static int push_text(struct push *p, const char *name, const char *text,
		     char *etag_out)
{
	char dir[1024], path[1100];
	int rc = archive_remote_dir(p->a->platform, p->a->id, dir, sizeof(dir));
	if (rc)
		return perr(p, rc, "%s/%s: no key for this archive",
			    p->a->platform, p->a->id);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return put_small(p, path, name, text, strlen(text), NULL, etag_out);
}

int archive_push(struct cloud *cl, struct store *st, const struct archive *a,
		 char *err, size_t errlen)
{
	return archive_push_cancellable(cl, st, a, NULL, NULL, err, errlen);
}

static int push_as(struct cloud *cl, struct store *st,
		   const struct archive *a, bool (*is_cancelled)(void *arg),
		   void *arg, const char *record_name, char *err,
		   size_t errlen);

int archive_push_cancellable(struct cloud *cl, struct store *st,
			     const struct archive *a,
			     bool (*is_cancelled)(void *arg), void *arg,
			     char *err, size_t errlen)
{
	return push_as(cl, st, a, is_cancelled, arg, PENDING_NAME, err,
		       errlen);
}

int archive_push_final(struct cloud *cl, struct store *st,
		       const struct archive *a, char *err, size_t errlen)
{
	return push_as(cl, st, a, NULL, NULL, RECORD_NAME, err, errlen);
}

static int push_as(struct cloud *cl, struct store *st,
		   const struct archive *a, bool (*is_cancelled)(void *arg),
		   void *arg, const char *record_name, char *err,
		   size_t errlen)
{
	struct push p = {cl,  st,     a, NULL,	       NULL, 0,
			 err, errlen, 0, is_cancelled, arg};
	struct remote *r = cloud_remote(cl);
	struct archive_file *files = NULL;
	char **srcs = NULL;
	char *json = NULL;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!a || !a->platform || !a->id || !a->root)
		return perr(&p, -EINVAL, "not a complete archive record");
	if (!r) {
		char why[512];
		cloud_error(cl, why, sizeof(why));
		return perr(&p, -EACCES, "%s",
			    why[0] ? why : "no credentials for the bucket");
	}
	rc = remote_acquire(r, &p.x);
	if (rc) {
		char why[512];
		remote_error(r, why, sizeof(why));
		return perr(&p, rc, "cannot reach %s (%s)", cloud_where(cl),
			    why);
	}
	files = calloc(a->nfiles ? a->nfiles : 1, sizeof(*files));
	srcs = calloc(a->nfiles ? a->nfiles : 1, sizeof(*srcs));
	if (!files || !srcs) {
		rc = perr(&p, -ENOMEM, "out of memory");
		goto out;
	}
	rgt_log(RGT_INFO,
		"archive_to [cloud:%s]: pushing %s/%s (%zu files) "
		"to %s",
		cloud_name(cl), a->platform, a->id, a->nfiles, cloud_where(cl));
	for (size_t i = 0; i < a->nfiles && !rc; i++) {
		char path[4096];
		files[i] = a->files[i];
		if (cancelled(&p)) {
			rc = perr(&p, -EINTR, "interrupted");
			break;
		}
		rc = push_file(&p, &a->files[i], files[i].etag);
		if (!rc &&
		    (archive_remote_file(a->platform, a->id, a->files[i].path,
					 path, sizeof(path)) ||
		     !(srcs[i] = strdup(path))))
			rc = perr(&p, -ENOMEM, "out of memory");
		files[i].src = srcs[i];
	}
	char etag[XFER_ETAG_MAX];
	if (!rc && cancelled(&p))
		rc = perr(&p, -EINTR, "interrupted");
	if (!rc && a->manifest)
		rc = push_text(&p, "PULL_MANIFEST.json", a->manifest, etag);
	if (!rc && a->verified)
		rc = push_text(&p, "PULL_VERIFIED.json", a->verified, etag);
	if (!rc) {
		/* The record as it reads from the bucket: every file's object
		 * and verified ETag, the bucket named. */
		struct archive pushed = *a;
		pushed.files = files;
		pushed.src_cloud = (char *)cloud_name(cl);
		pushed.src_remote = NULL;
		json = archive_record_json(&pushed);
		if (json && strlen(json) > RECORD_MAX)
			/* no reader would take it: refuse before any destroy */
			rc = perr(&p, -EFBIG, "the record is %zu MiB, over the "
				  "%zu MiB a reader accepts",
				  strlen(json) >> 20, RECORD_MAX >> 20);
		else
			rc = json ? push_text(&p, record_name, json, etag)
				  : perr(&p, -ENOMEM, "out of memory");
	}
	if (!rc)
		rgt_log(RGT_INFO,
			"archive_to [cloud:%s]: %s/%s pushed and "
			"verified (%zu files; %zu objects were there already)",
			cloud_name(cl), a->platform, a->id, a->nfiles,
			p.skipped);
out:
	remote_release(r, p.x, rc);
	for (size_t i = 0; srcs && i < a->nfiles; i++)
		free(srcs[i]);
	free(srcs);
	free(files);
	free(json);
	free(p.buf);
	return rc;
}

/* ---- reading back ---------------------------------------------------------
 */

void archive_refs_free(struct archive_ref *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].platform);
		free(v[i].id);
	}
	free(v);
}

static int ref_cmp(const void *x, const void *y)
{
	const struct archive_ref *a = x, *b = y;
	int c = strcmp(a->platform, b->platform);
	return c ? c : strcmp(a->id, b->id);
}

/* A decoded single name (platform, id), or NULL. */
static char *name_decode(const char *enc)
{
	char out[S3_NAME_MAX + 1];
	if (archive_key_decode(enc, out, sizeof(out)) || strchr(out, '/') ||
	    !*out)
		return NULL;
	return strdup(out);
}

int archive_remote_list(struct cloud *cl, int max_age, struct archive_ref **out,
			size_t *n, char *err, size_t errlen)
{
	struct remote *r = cloud_remote(cl);
	struct rlisting *top = NULL;
	struct archive_ref *v = NULL;
	size_t nv = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!r) {
		if (err && errlen)
			cloud_error(cl, err, errlen);
		return -EACCES;
	}
	rc = remote_list(r, "/archive", max_age, &top);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		if (err && errlen)
			remote_error(r, err, errlen);
		return rc;
	}
	for (size_t i = 0; !rc && i < top->n; i++) {
		struct rlisting *pl = NULL;
		char path[1100];
		if (!S_ISDIR(top->v[i].attr.mode))
			continue;
		char *plat = name_decode(top->v[i].name);
		if (plat && !platform_id_valid(plat)) {
			/* ".", "..", control bytes: never a name in archive/ */
			free(plat);
			plat = NULL;
		}
		if (!plat)
			continue;
		snprintf(path, sizeof(path), "/archive/%s", top->v[i].name);
		if (remote_list(r, path, max_age, &pl)) {
			free(plat);
			continue; /* vanished meanwhile */
		}
		for (size_t j = 0; !rc && j < pl->n; j++) {
			struct rlisting *il = NULL;
			char ipath[1400];
			if (!S_ISDIR(pl->v[j].attr.mode))
				continue;
			snprintf(ipath, sizeof(ipath), "%s/%s", path,
				 pl->v[j].name);
			if (remote_list(r, ipath, max_age, &il))
				continue;
			const struct rentry *rec =
			    rlisting_find(il, RECORD_NAME);
			bool ok = rec && S_ISREG(rec->attr.mode);
			rlisting_free(il);
			char *id = ok ? name_decode(pl->v[j].name) : NULL;
			if (id && !platform_id_valid(id)) {
				free(id);
				id = NULL;
			}
			if (!id)
				continue;
			if (nv == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct archive_ref *nvv =
				    realloc(v, nc * sizeof(*v));
				if (!nvv) {
					free(id);
					rc = -ENOMEM;
					break;
				}
				v = nvv;
				cap = nc;
			}
			v[nv].platform = strdup(plat);
			v[nv].id = id;
			if (!v[nv].platform) {
				free(id);
				rc = -ENOMEM;
				break;
			}
			nv++;
		}
		rlisting_free(pl);
		free(plat);
	}
	rlisting_free(top);
	if (rc) {
		archive_refs_free(v, nv);
		return rc;
	}
	if (nv)
		qsort(v, nv, sizeof(*v), ref_cmp);
	*out = v;
	*n = nv;
	return 0;
}

static size_t rarc_key(char *k, size_t len, const char *cloud, const char *plat,
		       const char *id)
{
	int n = snprintf(k, len, "rarc%c%s%c%s%c%s", 0, cloud, 0, plat, 0, id);
	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

/*
 * The record's text for the object @path of @attr: from the store when
 * the same version was fetched before, else from the bucket (checked
 * against its ETag, then kept).
 */
static int record_text(struct cloud *cl, struct store *st, const char *plat,
		       const char *id, const char *path,
		       const struct xfer_attr *attr, char **text, size_t *len,
		       char *err, size_t errlen)
{
	char k[1024];
	size_t kl = rarc_key(k, sizeof(k), cloud_name(cl), plat, id);
	size_t el = strlen(attr->etag);
	void *v = NULL;
	size_t vl = 0;
	if (kl && st && !store_meta_get(st, k, kl, &v, &vl)) {
		if (vl > el && !memcmp(v, attr->etag, el) &&
		    ((char *)v)[el] == '\n') {
			*len = vl - el - 1;
			*text = malloc(*len + 1);
			if (!*text) {
				free(v);
				return -ENOMEM;
			}
			memcpy(*text, (char *)v + el + 1, *len);
			(*text)[*len] = '\0';
			free(v);
			return 0;
		}
		free(v);
	}
	if (attr->size > RECORD_MAX) {
		snprintf(err, errlen,
			 "%s: record of %" PRIu64 " bytes is "
			 "larger than %zu",
			 path, attr->size, RECORD_MAX);
		return -EIO;
	}
	char *buf = malloc((size_t)attr->size + el + 2);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, attr->etag, el);
	buf[el] = '\n';
	char *body = buf + el + 1;
	ssize_t got = remote_pread(cloud_remote(cl), path, body,
				   (size_t)attr->size, 0, attr);
	if (got < 0 || (uint64_t)got != attr->size) {
		char why[512] = "";
		remote_error(cloud_remote(cl), why, sizeof(why));
		snprintf(err, errlen, "%s: cannot read the record (%s%s%s)",
			 path, got < 0 ? strerror((int)-got) : "short read",
			 why[0] ? ": " : "", why);
		free(buf);
		return got < 0 ? (int)got : -EIO;
	}
	body[got] = '\0';
	/* uploaded in one PUT by archive_push(): its ETag is its MD5 */
	unsigned char md5[16];
	unsigned int ml = 0;
	char want[XFER_ETAG_MAX];
	EVP_Digest(body, (size_t)got, md5, &ml, EVP_md5(), NULL);
	archive_etag_single(md5, want, sizeof(want));
	if (strcmp(want, attr->etag)) {
		snprintf(err, errlen,
			 "%s: the record's bytes do not match its "
			 "ETag (corrupted in the bucket)",
			 path);
		free(buf);
		return -EIO;
	}
	if (kl && st)
		store_meta_put(st, k, kl, buf, el + 1 + (size_t)got);
	*len = (size_t)got;
	*text = malloc((size_t)got + 1);
	if (*text)
		memcpy(*text, body, (size_t)got + 1);
	free(buf);
	return *text ? 0 : -ENOMEM;
}

/* A name from a bucket's record that may become a path in the tree:
 * relative, no empty, "." or ".." segment, none over 255 bytes. */
static bool rel_safe(const char *p)
{
	if (!p || !*p)
		return false;
	for (const char *s = p;;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (!n || n > S3_NAME_MAX || (n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		if (!e)
			return true;
		s = e + 1;
	}
}

int archive_remote_load(struct cloud *cl, struct store *st, const char *plat,
			const char *id, int max_age, struct archive **out,
			size_t *refused, char *err, size_t errlen)
{
	struct remote *r = cloud_remote(cl);
	struct rlisting *l = NULL, *dl = NULL;
	struct archive *a = NULL;
	char dir[1024], path[1100], *text = NULL, *dlpath = NULL;
	size_t tl = 0, nref = 0;
	int rc;

	*out = NULL;
	if (refused)
		*refused = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!r)
		return -EACCES;
	rc = archive_remote_dir(plat, id, dir, sizeof(dir));
	if (rc)
		return -ENOENT;
	rc = remote_list(r, dir, max_age, &l);
	if (rc)
		return rc;
	const struct rentry *rec = rlisting_find(l, RECORD_NAME);
	if (!rec || !S_ISREG(rec->attr.mode)) {
		rlisting_free(l);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, RECORD_NAME);
	rc = record_text(cl, st, plat, id, path, &rec->attr, &text, &tl, err,
			 errlen);
	rlisting_free(l);
	if (rc)
		return rc;
	rc = archive_from_json(text, tl, plat, id, &a);
	free(text);
	if (rc) {
		snprintf(err, errlen, "%s: not a record of %s/%s", path, plat,
			 id);
		return -EIO;
	}
	/* hostile until checked: every name must stay inside the tree */
	bool safe = true;
	for (size_t i = 0; safe && i < a->nfiles; i++)
		safe = rel_safe(a->files[i].path) &&
		       (!i || strcmp(a->files[i - 1].path, a->files[i].path)) &&
		       !archive_dir_at(a, a->files[i].path);
	for (size_t i = 0; safe && i < a->ndirs; i++)
		safe = rel_safe(a->dirs[i]);
	if (!safe) {
		snprintf(err, errlen,
			 "%s: the record holds a name that "
			 "cannot be a path in the tree",
			 path);
		archive_free(a);
		return -EIO;
	}
	free(a->src_cloud);
	a->src_cloud = strdup(cloud_name(cl));
	a->src_remote = r;
	/* the box's log stayed in the pushing mount's cache */
	free(a->log_path);
	a->log_path = NULL;
	if (!a->src_cloud) {
		archive_free(a);
		return -ENOMEM;
	}
	struct buf notes;
	buf_init(&notes, 64 << 10);
	for (size_t i = 0; i < a->nfiles; i++) {
		struct archive_file *f = &a->files[i];
		char fp[4096], e1[400], why[600] = "";
		free(f->src);
		f->src = NULL;
		if (archive_remote_file(plat, id, f->path, fp, sizeof(fp)) ||
		    !(f->src = strdup(fp))) {
			buf_cleanup(&notes);
			archive_free(a);
			rlisting_free(dl);
			free(dlpath);
			return -ENOMEM;
		}
		/* the listing of the object's directory (one per directory:
		 * files are sorted by path, keys keep their order) */
		char *slash = strrchr(fp, '/');
		*slash = '\0';
		if (!dlpath || strcmp(dlpath, fp)) {
			rlisting_free(dl);
			dl = NULL;
			free(dlpath);
			dlpath = strdup(fp);
			if (remote_list(r, fp, max_age, &dl))
				dl = NULL;
		}
		const struct rentry *e =
		    dl ? rlisting_find(dl, slash + 1) : NULL;
		if (!f->etag[0])
			snprintf(why, sizeof(why), "the record names no ETag");
		else if (!dl)
			snprintf(why, sizeof(why),
				 "its object cannot be listed now");
		else if (!e || !S_ISREG(e->attr.mode))
			snprintf(why, sizeof(why), "its object is missing");
		else if (e->attr.size != f->size)
			snprintf(why, sizeof(why),
				 "its object has %" PRIu64
				 " bytes, the record %" PRIu64,
				 e->attr.size, f->size);
		else if (strcmp(e->attr.etag, f->etag))
			snprintf(why, sizeof(why),
				 "its object's ETag is not "
				 "the verified one (rewritten or corrupted in "
				 "the bucket)");
		if (why[0]) {
			/* Refused: reads ask for the record's version and
			 * the server has another (-ESTALE), so no byte of
			 * it is ever served. */
			if (!f->etag[0])
				snprintf(f->etag, sizeof(f->etag),
					 "\"refused\"");
			if (!nref++ && err && errlen)
				snprintf(err, errlen, "%s/%s: %s: %s", plat, id,
					 esc(f->path, e1, sizeof(e1)), why);
			rgt_log(RGT_WARN,
				"archive %s/%s in [cloud:%s]: %s: %s; "
				"reads of it are refused",
				plat, id, cloud_name(cl),
				esc(f->path, e1, sizeof(e1)), why);
			/* and in the archive's own report (its teardown
			 * file), where a reader of the tree looks */
			if (nref <= 20)
				buf_appendf(&notes, "  %s: %s\n", e1, why);
		}
	}
	if (nref) {
		char *rep = NULL;
		if (asprintf(&rep,
			     "%s%sread from [cloud:%s]: %zu file%s refused "
			     "(reads fail with EIO; no byte of them is "
			     "served):\n%s%s",
			     a->report ? a->report : "",
			     a->report && *a->report ? "\n" : "",
			     cloud_name(cl), nref, nref == 1 ? "" : "s",
			     notes.data ? notes.data : "",
			     nref > 20 ? "...\n" : "") >= 0) {
			free(a->report);
			a->report = rep;
		}
	}
	buf_cleanup(&notes);
	rlisting_free(dl);
	free(dlpath);
	if (refused)
		*refused = nref;
	*out = a;
	return 0;
}
