/*
 * archive_push.h - archives a team shares through a bucket (archive_to).
 *
 * A verified archive is pushed to a [cloud:NAME] bucket under
 *
 *	archive/<P>/<I>/files/<K>		each archived file's bytes
 *	archive/<P>/<I>/PULL_MANIFEST.json	a->manifest (when there is one)
 *	archive/<P>/<I>/PULL_VERIFIED.json	a->verified (when there is one)
 *	archive/<P>/<I>/RGTFS_ARCHIVE.json	the record, uploaded LAST
 *
 * where <P>, <I> are the platform and id and <K> the file's path, each
 * mapped by archive_key_encode() (below). RGTFS_ARCHIVE.json is the record
 * of archive.c (archive_record_json()) with every file's src set to its
 * object's tree path and etag to the ETag verified after the upload, so
 * its presence marks a complete, verified upload: a listing shows only
 * archives that have one, and any mount configured with the bucket reads
 * them lazily through archive_file_open() (blocks keyed by the object's
 * ETag, in the same LMDB cache).
 *
 * Threads: any; each call takes its own session from the cloud's remote
 * (remote_acquire()) for its duration. Bounded: every request has the
 * remote's connect and io timeouts (uploads: plus the body at 2 MB/s) and
 * http.c's capped retries.
 */
#ifndef RGT_ARCHIVE_PUSH_H
#define RGT_ARCHIVE_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct archive;
struct cloud;
struct store;

/* --- key mapping (pure) -------------------------------------------------- */

/*
 * Archived names are any bytes but NUL (invalid UTF-8, newlines, 255-byte
 * names); S3 keys, and names the tree accepts (s3_key_component_ok()),
 * are not. One mapping, used for the upload and for the read:
 *
 *   - each '/'-separated segment keeps [A-Za-z0-9_.-] and writes every
 *     other byte as %XX (upper-case hex); a segment "." or ".." has its
 *     dots written %2E; '/' between segments stays '/';
 *   - when that does not fit (a segment over 255 bytes, the whole over
 *     @budget bytes, an empty segment), the key is instead the one flat
 *     name "%%" + the hex SHA-256 of the path (66 bytes). The record keeps
 *     the true name, so nothing is lost; "%%" never starts an ordinary
 *     encoding, so the two forms cannot collide.
 *
 * archive_key_encode: 0, -ENAMETOOLONG (@budget < 66 or @outlen too
 * small), -EINVAL (empty path). @out is NUL-terminated.
 * archive_key_decode: the inverse; -ENOENT for the hashed form (the name
 * is only in the record), -EINVAL for anything archive_key_encode() could
 * not have written (so the mapping is one-to-one), -ENAMETOOLONG.
 * archive_name_encode: one name (platform, id) with '/' encoded as well;
 * -ENAMETOOLONG past 255 bytes (no hashed form: names are listed back).
 */
int archive_key_encode(const char *path, size_t budget, char *out,
		       size_t outlen);
int archive_key_decode(const char *key, char *out, size_t outlen);
int archive_name_encode(const char *name, char *out, size_t outlen);

/*
 * Tree path (in the cloud remote's tree, "/" = the bucket's root) of the
 * archive @plat/@id: "/archive/<P>/<I>", and of its file @rel:
 * "/archive/<P>/<I>/files/<K>" (the whole key within S3's 1024 bytes).
 */
int archive_remote_dir(const char *plat, const char *id, char *out, size_t len);
int archive_remote_file(const char *plat, const char *id, const char *rel,
			char *out, size_t len);

/* --- ETags (pure) --------------------------------------------------------- */

/*
 * The ETag S3 gives an object uploaded in one PUT: the quoted hex MD5 of
 * its bytes ("\"<32 hex>\""), from the 16-byte digest @md5.
 */
void archive_etag_single(const unsigned char md5[16], char *out, size_t len);
/*
 * The ETag AWS S3 gives a multipart upload: the MD5 of the concatenated
 * binary MD5s of its @nparts parts (@part_md5s: 16 bytes each), in hex,
 * then "-N", quoted: "\"<32 hex>-N\"". -EINVAL for 0 parts, -ENAMETOOLONG.
 */
int archive_etag_multipart(const unsigned char *part_md5s, unsigned nparts,
			   char *out, size_t len);
/*
 * Is @got (an ETag as a server sent it) one of the two forms computed
 * locally: @single (the quoted MD5 of the whole object; s3rver gives that
 * for multipart uploads too) or @multi (archive_etag_multipart(); NULL for
 * an object sent in one PUT)? Exact comparison; nothing else is accepted.
 */
bool archive_etag_ok(const char *got, const char *single, const char *multi);

/*
 * Copy [@off, @off+@len) of cached file @fid (@size bytes) from the store
 * alone into @dst: -EIO if a block is missing or not the length a file of
 * @size has there (the bytes are not all cached, or not these bytes);
 * -EBADMSG if a block fails its checksum (store_block_peek), its number
 * then in *@bad_blk when @bad_blk is not NULL. The push and rgtfs-store's
 * export and verify read archives through it.
 */
int archive_read_cached(struct store *st, const uint8_t *fid, uint64_t size,
			uint64_t off, size_t len, char *dst, uint64_t *bad_blk);

/* Test hook: part size of multipart uploads (default 64 MiB); a file
 * larger than one part is sent in parts. At least 5 MiB on real S3. */
extern size_t archive_push_part_size;

/* --- push ------------------------------------------------------------------
 */

/*
 * Upload the verified archive @a (the record exactly as archive_load()
 * gives it back from @st) to the bucket of @cl, as described at the top:
 * every file's bytes read from the store through archive_file_open() (all
 * of them must be cached), checked against the record's SHA-256 while
 * they are sent (a mismatch refuses: the record's promise would be
 * broken), each file in one PUT up to archive_push_part_size and
 * multipart above it (an upload that fails is aborted); then the two
 * manifests; then, LAST, RGTFS_ARCHIVE.json. Every object is verified by
 * reading it back: a HEAD must give the expected size and the ETag
 * computed locally (archive_etag_ok()), and, when the server returns
 * x-amz-checksum-sha256, the SHA-256 computed locally (whole object, or
 * the checksum of the part checksums "-N").
 *
 * Returns 0 only when every object, the record last, was uploaded and
 * verified. Otherwise (nothing is deleted in the bucket; without its
 * record a partial upload is never listed as an archive):
 *   -EACCES     the bucket refused (credentials, permission, clock);
 *   -ETIMEDOUT  a request ran out of its bounded time;
 *   -EIO        anything else: a server error after the retries, a byte
 *               missing from the cache, a SHA-256 that differs from the
 *               record, a read-back that does not match;
 *   -ENOMEM, -EINVAL (@a is not a complete record),
 *   -EINTR      (archive_push_cancellable() only) the caller cancelled
 * with the reason (naming the file) in @err.
 *
 * Caller contract (the teardown): call it after the archive is recorded
 * and loaded back (archive_save() + archive_load()), before the destroy
 * call; any non-zero return must refuse the teardown (the instance stays
 * running and untouched, rmdir fails with the errno, @err goes to the
 * teardown report). It may be called again (a teardown retried): an
 * object already in the bucket exactly as it would be after its upload
 * (a HEAD gives its size, ETag and checksum as computed here) is kept,
 * everything else is sent and verified again. Long: it reads every byte of
 * the archive and sends what the bucket lacks.
 */
int archive_push(struct cloud *cl, struct store *st, const struct archive *a,
		 char *err, size_t errlen);
/*
 * archive_push() that stops when @is_cancelled(@arg) says so (asked before
 * every object and every part; an interrupted teardown before its destroy
 * call): -EINTR, an unfinished multipart upload aborted, no record sent.
 * @is_cancelled NULL: never.
 */
int archive_push_cancellable(struct cloud *cl, struct store *st,
			     const struct archive *a,
			     bool (*is_cancelled)(void *arg), void *arg,
			     char *err, size_t errlen);
/*
 * archive_push_cancellable() writes its record as RGTFS_PENDING.json,
 * which no mount lists: it runs before the destroy call, and the instance
 * may still live if that call fails. Once the teardown finished, this
 * pushes the final record (the files already there are verified, not sent
 * again) as RGTFS_ARCHIVE.json, which mounts list under archive/.
 */
int archive_push_final(struct cloud *cl, struct store *st,
		       const struct archive *a, char *err, size_t errlen);

/* --- reading archives from a bucket --------------------------------------- */

struct archive_ref {
	char *platform;
	char *id;
};

/*
 * The archives in the bucket of @cl: every archive/<P>/<I>/ holding a
 * RGTFS_ARCHIVE.json (names decoded; undecodable ones are skipped),
 * sorted by platform then id. Listings come through the cloud remote's
 * listing cache (remote_list() with @max_age seconds; the last known
 * listing when the bucket cannot be reached). 0 with *@n = 0 when there
 * is no archive/ at all; -errno with a reason in @err. Free with
 * archive_refs_free().
 */
int archive_remote_list(struct cloud *cl, int max_age, struct archive_ref **out,
			size_t *n, char *err, size_t errlen);
void archive_refs_free(struct archive_ref *v, size_t n);

/*
 * Load the archive @plat/@id from the bucket of @cl: its RGTFS_ARCHIVE.json
 * (its ETag must be the MD5 of its bytes; kept in @st so it stays readable
 * offline), with each file's src set to its object's tree path
 * (archive_remote_file(), never a path read from the bucket), etag to the
 * ETag in the record, src_cloud to cloud_name(@cl) and src_remote to
 * cloud_remote(@cl): archive_file_open() then gives a fetch_file that
 * reads lazily from the bucket into the store. The box's log (log_path)
 * is not pushed and is dropped; log_text is kept.
 *
 * Each file's object is checked against the record (size and ETag, from
 * the listing): an object that is missing or differs is refused for that
 * file (it stays listed, and every read of it fails, -ESTALE from the
 * transport, since its blocks are keyed by the record's ETag and the
 * server's differs), counted in *@refused (may be NULL) with the first
 * reason in @err, and every reason appended to the archive's report (its
 * teardown file in the tree). -ENOENT if there is no such archive; -EIO for a
 * record that is corrupt or not of @plat/@id.
 */
int archive_remote_load(struct cloud *cl, struct store *st, const char *plat,
			const char *id, int max_age, struct archive **out,
			size_t *refused, char *err, size_t errlen);

#endif
