/*
 * store.h - the LMDB cache: every fetched byte, directory listings, instance
 * records and host-key pins, in one environment under the cache directory.
 *
 * Module rules (from lmdb.h, restated because they bind every caller):
 * - One struct store per process, opened in main() before threads start.
 * - Read transactions are short and per request (MDB_NOTLS: any thread may
 *   end one it began, but never use one from two threads at once). Pointers
 *   returned by store_block_peek() are valid only until store_rend().
 * - Writes are serialised by LMDB itself; the fetcher batches block writes
 *   in its writer thread so FUSE threads never wait for a commit.
 * - A crash or kill -9 at any moment leaves the environment consistent
 *   (LMDB's copy-on-write B+tree; each put is one committed transaction).
 *
 * Errors: 0 or -errno; MDB codes are translated in store.c only
 * (MDB_NOTFOUND -> -ENOENT, MDB_MAP_FULL -> -ENOSPC).
 */
#ifndef RGT_STORE_H
#define RGT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_BLOCK_SHIFT 20
#define STORE_BLOCK_SIZE (1u << STORE_BLOCK_SHIFT)	/* 1 MiB */
#define STORE_FID_LEN 16

struct store;
struct store_rtxn;

/*
 * Open (creating) the environment in @dir (made 0700; files 0600).
 * @mapsize is the address space reserved for the map (sparse on disk).
 */
int store_open(const char *dir, uint64_t mapsize, struct store **out,
	       char *err, size_t errlen);
void store_close(struct store *st);

int store_rbegin(struct store *st, struct store_rtxn **out);
void store_rend(struct store_rtxn *t);

/*
 * Block @blk of file @fid: *data points into the map, valid until
 * store_rend(t). -ENOENT if not cached. -EBADMSG if its bytes fail their
 * CRC32C (store.c, DESIGN): *data is then not set, and the block must be
 * treated as lost (fetched again, or the read fails), never served. A
 * block cached before checksums existed has no record and is returned
 * unchecked (counted in store_legacy_blocks()).
 */
int store_block_peek(struct store_rtxn *t, const uint8_t *fid, uint64_t blk,
		     const void **data, size_t *len);

/*
 * The same, checking only the STORE_CRC_PIECE pieces that bytes [@from,
 * @to) of the block touch (@to past the end: to the end): what a read of
 * that range serves is checked, at the cost of hashing about that much.
 * @from == @to checks nothing (is it cached?). Only [@from, @to) of
 * *data may be used as checked bytes.
 */
#define STORE_CRC_PIECE (128u << 10)
int store_block_peek_range(struct store_rtxn *t, const uint8_t *fid,
			   uint64_t blk, size_t from, size_t to,
			   const void **data, size_t *len);

/* Blocks store_block_peek() returned without a checksum record. */
uint64_t store_legacy_blocks(struct store *st);

struct store_put {
	const uint8_t *fid;
	uint64_t blk;
	const void *data;
	size_t len;
};

/* Write @n blocks in one transaction (all or none). */
int store_blocks_put(struct store *st, const struct store_put *v, size_t n);

/* Bytes of file @fid that are cached (sizes from the keys' records). */
int store_blocks_bytes(struct store *st, const uint8_t *fid,
		       uint64_t *bytes);

/* Delete every cached block of file @fid and their checksums (one
 * transaction). */
int store_blocks_delete(struct store *st, const uint8_t *fid);

/*
 * Give blocks 0..@nblocks-1 of @fid that have no checksum record (cached
 * by an rgtfs from before checksums) one, computed from their bytes now.
 * Only for bytes just proven whole by a digest from elsewhere (the
 * teardown's serve check against the box's SHA-256): an archive, the only
 * copy, must not stay unprotected. No write at all when every block has
 * its record. The number sealed, or -errno.
 */
int store_blocks_seal(struct store *st, const uint8_t *fid,
		      uint64_t nblocks);
/* Tests only: drop the checksum record of one block, so that it looks
 * like a block an rgtfs from before checksums wrote. */
int store_test_drop_crc(struct store *st, const uint8_t *fid, uint64_t blk);

/* Small records (listings, instance snapshots, pins): key -> value. */
int store_meta_put(struct store *st, const void *key, size_t klen,
		   const void *val, size_t vlen);
/*
 * Put-if-absent, in ONE write transaction (so two threads or processes
 * can never both "win"): 0 if @val was stored; -EEXIST if @key already had
 * a value, which is then copied into *old (malloc'd, NUL-terminated, not
 * counted in *oldlen) when @old is not NULL. Nothing is overwritten.
 */
int store_meta_put_new(struct store *st, const void *key, size_t klen,
		       const void *val, size_t vlen, void **old,
		       size_t *oldlen);
/* *val is malloc'd (NUL-terminated for convenience; not counted). */
int store_meta_get(struct store *st, const void *key, size_t klen,
		   void **val, size_t *vlen);
int store_meta_del(struct store *st, const void *key, size_t klen);
/*
 * Call @fn for every meta record whose key starts with @prefix, in key
 * order, inside one read transaction (don't write from @fn). Stops when
 * @fn returns non-zero and returns that value.
 */
int store_meta_scan(struct store *st, const void *prefix, size_t plen,
		    int (*fn)(void *arg, const void *key, size_t klen,
			      const void *val, size_t vlen),
		    void *arg);

/* Force everything committed so far to disk. */
int store_sync(struct store *st);
/*
 * A sync (store_sync, or the one every meta commit makes) failed since the
 * store was opened. Then nothing can be trusted to be on disk: a teardown
 * refuses its destroy call.
 */
bool store_sync_failed(struct store *st);

struct store_info {
	uint64_t blocks;	/* cached blocks */
	uint64_t meta;		/* meta records */
	uint64_t used;		/* bytes of the map in use */
};
int store_info(struct store *st, struct store_info *out);

/* Bytes used by the map file (for statfs and tools). */
uint64_t store_used_bytes(struct store *st);

#endif
