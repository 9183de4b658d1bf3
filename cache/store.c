/*
 * store.c - the only file that includes <lmdb.h>.
 *
 * DESIGN
 * Key schema (all in one environment, three named databases):
 *
 *   blocks  fid[16] | blk (u64 big-endian)  ->  block bytes (<= 1 MiB)
 *           fid = first 16 bytes of SHA-256(platform NUL id NUL path NUL
 *           size NUL mtime) (see fetch.c), so a file that changes remotely
 *           gets a new identity and old and new bytes never mix. Big-endian
 *           block numbers keep a file's blocks adjacent and in order.
 *   bcrc    fid[16] | blk (same key as blocks)  ->  CRC32C (Castagnoli,
 *           crc32c.h) of each STORE_CRC_PIECE (128 KiB) of the block's
 *           bytes, in order, 4 bytes little-endian each
 *   meta    "<kind>\0<fields...>"  ->  small records:
 *           dir\0PLAT\0ID\0PATH    remote directory listing
 *           attr\0PLAT\0ID\0PATH   remote attributes of a single file
 *           inst\0PLAT\0ID         last known instance (JSON)
 *           hostkey\0PLAT\0ID      pinned SSH host key (TOFU)
 *
 * The environment is opened with MDB_NOTLS (FUSE requests hop threads) and
 * MDB_NOMETASYNC: a commit flushes its data pages (fdatasync) and writes
 * its meta page without flushing it; the next commit's flush (same file)
 * or an explicit sync makes it durable. LMDB keeps its integrity that way
 * (a meta page on disk always has its data on disk; pages are reused only
 * two transactions later), and a system crash can at most undo the last
 * commit. Block commits take that: a lost batch of cached blocks is
 * fetched again, and the fetcher batches many blocks per commit. Every
 * meta commit (listings, host keys, the teardown journal, archive
 * records: facts a later irreversible step relies on) is synced before
 * it returns (commit_durable), which flushes every earlier commit too:
 * the teardown's record step therefore makes the pulled blocks durable
 * before any destroy. Rejected: MDB_NOSYNC (faster, but a system crash
 * can corrupt the whole environment, archives included) and
 * MDB_WRITEMAP (a full disk is a SIGBUS instead of ENOSPC).
 *
 * Block checksums. The cache can be the only copy of a checkpoint (an
 * archive after a teardown), and LMDB checks its own pages' structure,
 * not the bytes of values: a flipped bit on disk, a torn write the disk
 * acknowledged, or a stray write into data.mdb would be served as the
 * checkpoint. So every block carries a CRC32C, in its own database
 * rather than in front of the bytes: the blocks' values stay exactly the
 * bytes, so caches and archives written before checksums existed stay
 * readable without a migration, and a reader still gets a pointer
 * straight into the map (zero copy). The record is written in the same
 * transaction as its block (store_blocks_put) and deleted in the same
 * transaction as it (store_blocks_delete), so a
 * committed block and its record never disagree, a crash included.
 *
 * store_block_peek_range() computes the CRCs of the pieces a read
 * touches over the mapped bytes in place (no copy; the pointer stays
 * valid until store_rend(), since the read transaction's snapshot keeps
 * the pages) and compares them with the record read in the same
 * transaction. A mismatch, or a record of the wrong length, is -EBADMSG
 * and the bytes are not handed out: the caller fetches the block again
 * where a remote still has it, or fails the read (fetch.c), and a
 * teardown's serve check, which peeks whole blocks, refuses (teardown.c).
 *
 * Why pieces: the kernel asks FUSE for 128 KiB at a time; with one CRC
 * per 1 MiB block, each request would hash the whole block, a sequential
 * warm read every byte eight times (measured: warm re-reads about a third
 * slower). With a CRC per 128 KiB piece each request hashes about what it
 * returns, and every byte served is checked on every read. A record of
 * one CRC for a longer block (the first checksummed format, never
 * released) is checked whole.
 */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"

#define LEGACY_SEEN 64	/* files whose legacy blocks were logged */
struct store {
	MDB_env *env;
	MDB_dbi blocks;
	MDB_dbi bcrc;		/* CRC32C of each block (see DESIGN) */
	MDB_dbi meta;
	atomic_uint_fast64_t legacy;	/* blocks read without a record */
	/* The last files a legacy block was logged for (a ring), so each
	 * is logged once, not once per read. */
	pthread_mutex_t legacy_mu;
	uint8_t legacy_seen[LEGACY_SEEN][STORE_FID_LEN];
	unsigned legacy_next, legacy_n;
	/* A flush failed once: on Linux a later fsync may then report
	 * success for pages that never reached the disk (the error is
	 * consumed), so nothing after it counts as durable. */
	atomic_bool sync_failed;
};

struct store_rtxn {
	struct store *st;
	MDB_txn *txn;
};

static int mdb_to_errno(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:	return 0;
	case MDB_NOTFOUND:	return -ENOENT;
	case MDB_MAP_FULL:	return -ENOSPC;
	case MDB_READERS_FULL:	return -EAGAIN;
	case MDB_TXN_FULL:	return -ENOSPC;
	default:		return rc > 0 ? -rc : -EIO;
	}
}

int store_open(const char *dir, uint64_t mapsize, struct store **out,
	       char *err, size_t errlen)
{
	struct store *st;
	MDB_txn *txn = NULL;
	int rc;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = errno;
		snprintf(err, errlen, "cannot create cache dir %s: %s", dir,
			 strerror(rc));
		return -rc;
	}
	chmod(dir, 0700);
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->legacy_mu, NULL);
	rc = mdb_env_create(&st->env);
	if (rc)
		goto out_free;
	mdb_env_set_maxdbs(st->env, 4);
	mdb_env_set_maxreaders(st->env, 256);
	rc = mdb_env_set_mapsize(st->env, mapsize);
	if (rc)
		goto out_env_close;
	rc = mdb_env_open(st->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	if (rc)
		goto out_env_close;
	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		goto out_env_close;
	rc = mdb_dbi_open(txn, "blocks", MDB_CREATE, &st->blocks);
	if (!rc)
		rc = mdb_dbi_open(txn, "bcrc", MDB_CREATE, &st->bcrc);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta);
	if (rc) {
		mdb_txn_abort(txn);
		goto out_env_close;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto out_env_close;
	/* A reader slot left by a killed process would pin old pages. */
	int dead = 0;
	mdb_reader_check(st->env, &dead);
	*out = st;
	return 0;

out_env_close:
	snprintf(err, errlen, "cannot open cache %s: %s", dir,
		 mdb_strerror(rc));
	mdb_env_close(st->env);
out_free:
	pthread_mutex_destroy(&st->legacy_mu);
	free(st);
	return mdb_to_errno(rc);
}

void store_close(struct store *st)
{
	if (!st)
		return;
	mdb_env_sync(st->env, 1);
	mdb_env_close(st->env);
	pthread_mutex_destroy(&st->legacy_mu);
	free(st);
}

int store_rbegin(struct store *st, struct store_rtxn **out)
{
	struct store_rtxn *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->st = st;
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &t->txn);
	if (rc) {
		free(t);
		return mdb_to_errno(rc);
	}
	*out = t;
	return 0;
}

void store_rend(struct store_rtxn *t)
{
	if (!t)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

static void block_key(uint8_t k[STORE_FID_LEN + 8], const uint8_t *fid,
		      uint64_t blk)
{
	memcpy(k, fid, STORE_FID_LEN);
	for (int i = 0; i < 8; i++)
		k[STORE_FID_LEN + i] = (uint8_t)(blk >> (56 - 8 * i));
}

static void crc_le(uint8_t out[4], uint32_t c)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(c >> (8 * i));
}

/* A block without a checksum record: count it, log its file once. */
static void legacy_block(struct store *st, const uint8_t *fid, uint64_t blk)
{
	atomic_fetch_add(&st->legacy, 1);
	pthread_mutex_lock(&st->legacy_mu);
	for (unsigned i = 0; i < st->legacy_n; i++)
		if (!memcmp(st->legacy_seen[i], fid, STORE_FID_LEN)) {
			pthread_mutex_unlock(&st->legacy_mu);
			return;
		}
	memcpy(st->legacy_seen[st->legacy_next], fid, STORE_FID_LEN);
	st->legacy_next = (st->legacy_next + 1) % LEGACY_SEEN;
	if (st->legacy_n < LEGACY_SEEN)
		st->legacy_n++;
	pthread_mutex_unlock(&st->legacy_mu);
	RGT_DEBUG_LOG("store: file %02x%02x%02x%02x...: block %llu has no "
		      "checksum (cached by an older rgtfs); served unchecked",
		      fid[0], fid[1], fid[2], fid[3], (unsigned long long)blk);
}

/* Pieces of a block of @len bytes (at least one, for an empty block). */
static size_t crc_pieces(size_t len)
{
	return len ? (len + STORE_CRC_PIECE - 1) / STORE_CRC_PIECE : 1;
}

/* The record for @data into @out (crc_pieces(len) * 4 bytes). */
static void crc_record(uint8_t *out, const void *data, size_t len)
{
	size_t n = crc_pieces(len);
	for (size_t i = 0; i < n; i++) {
		size_t at = i * STORE_CRC_PIECE;
		size_t pl = len - at < STORE_CRC_PIECE ? len - at :
							 STORE_CRC_PIECE;
		crc_le(out + 4 * i, crc32c(0, (const char *)data + at, pl));
	}
}

/* Do bytes [from, to) of @val match record @cv? */
static bool crc_ok(const MDB_val *val, const MDB_val *cv, size_t from,
		   size_t to)
{
	size_t len = val->mv_size, n = crc_pieces(len);
	uint8_t c[4];
	if (cv->mv_size == 4 && n > 1) {
		/* one CRC of the whole block */
		crc_le(c, crc32c(0, val->mv_data, len));
		return !memcmp(cv->mv_data, c, 4);
	}
	if (cv->mv_size != 4 * n)
		return false;
	if (to > len)
		to = len;
	if (from >= to && len)
		return true;	/* nothing asked */
	size_t first = from / STORE_CRC_PIECE;
	size_t last = len ? (to - 1) / STORE_CRC_PIECE : 0;
	for (size_t i = first; i <= last; i++) {
		size_t at = i * STORE_CRC_PIECE;
		size_t pl = len - at < STORE_CRC_PIECE ? len - at :
							 STORE_CRC_PIECE;
		crc_le(c, crc32c(0, (const char *)val->mv_data + at, pl));
		if (memcmp((const uint8_t *)cv->mv_data + 4 * i, c, 4))
			return false;
	}
	return true;
}

int store_block_peek_range(struct store_rtxn *t, const uint8_t *fid,
			   uint64_t blk, size_t from, size_t to,
			   const void **data, size_t *len)
{
	uint8_t k[STORE_FID_LEN + 8];
	MDB_val key = { sizeof(k), k }, val, cv;

	block_key(k, fid, blk);
	int rc = mdb_get(t->txn, t->st->blocks, &key, &val);
	if (rc)
		return mdb_to_errno(rc);
	rc = mdb_get(t->txn, t->st->bcrc, &key, &cv);
	if (rc == MDB_NOTFOUND)
		legacy_block(t->st, fid, blk);
	else if (rc)
		return mdb_to_errno(rc);
	else if (!crc_ok(&val, &cv, from, to))
		return -EBADMSG;
	*data = val.mv_data;
	*len = val.mv_size;
	return 0;
}

int store_block_peek(struct store_rtxn *t, const uint8_t *fid, uint64_t blk,
		     const void **data, size_t *len)
{
	return store_block_peek_range(t, fid, blk, 0, SIZE_MAX, data, len);
}

uint64_t store_legacy_blocks(struct store *st)
{
	return atomic_load(&st->legacy);
}

int store_blocks_put(struct store *st, const struct store_put *v, size_t n)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint8_t k[STORE_FID_LEN + 8];
		uint8_t c[4 * (STORE_BLOCK_SIZE / STORE_CRC_PIECE)];
		MDB_val key = { sizeof(k), k };
		MDB_val val = { v[i].len, (void *)v[i].data };
		MDB_val cv = { 4 * crc_pieces(v[i].len), c };
		if (v[i].len > STORE_BLOCK_SIZE) {
			rc = EINVAL;
			goto out_abort;
		}
		block_key(k, v[i].fid, v[i].blk);
		crc_record(c, v[i].data, v[i].len);
		rc = mdb_put(txn, st->blocks, &key, &val, 0);
		if (!rc)
			rc = mdb_put(txn, st->bcrc, &key, &cv, 0);
		if (rc)
			goto out_abort;
	}
	rc = mdb_txn_commit(txn);	/* frees txn on success and failure */
	goto out;
out_abort:
	mdb_txn_abort(txn);
out:
	return mdb_to_errno(rc);
}

/* Commit @txn and flush it to disk before returning (see DESIGN). */
static int commit_durable(struct store *st, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);	/* frees txn either way */
	/* A commit refused (a full disk: nothing written) is an error for
	 * the caller; a flush that failed taints everything after it. */
	if (!rc && (rc = mdb_env_sync(st->env, 1)))
		atomic_store(&st->sync_failed, true);
	return rc;
}

bool store_sync_failed(struct store *st)
{
	return atomic_load(&st->sync_failed);
}

int store_meta_put(struct store *st, const void *k, size_t klen,
		   const void *v, size_t vlen)
{
	MDB_txn *txn;
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		goto out;
	rc = mdb_put(txn, st->meta, &key, &val, 0);
	if (rc)
		goto out_abort;
	rc = commit_durable(st, txn);
	goto out;
out_abort:
	mdb_txn_abort(txn);
out:
	return mdb_to_errno(rc);
}

int store_meta_put_new(struct store *st, const void *k, size_t klen,
		       const void *v, size_t vlen, void **old, size_t *oldlen)
{
	MDB_txn *txn;
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		return mdb_to_errno(rc);
	rc = mdb_put(txn, st->meta, &key, &val, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		/* val now points at the value already there (in the map,
		 * valid until the transaction ends): copy it out. */
		int err = -EEXIST;
		if (old) {
			char *copy = malloc(val.mv_size + 1);
			if (copy) {
				memcpy(copy, val.mv_data, val.mv_size);
				copy[val.mv_size] = '\0';
				*old = copy;
				if (oldlen)
					*oldlen = val.mv_size;
			} else {
				err = -ENOMEM;
			}
		}
		mdb_txn_abort(txn);
		return err;
	}
	if (rc) {
		mdb_txn_abort(txn);
		return mdb_to_errno(rc);
	}
	return mdb_to_errno(commit_durable(st, txn));
}

int store_meta_get(struct store *st, const void *k, size_t klen, void **v,
		   size_t *vlen)
{
	MDB_txn *txn;
	MDB_val key = { klen, (void *)k }, val;
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc);
	rc = mdb_get(txn, st->meta, &key, &val);
	if (!rc) {
		char *copy = malloc(val.mv_size + 1);
		if (!copy) {
			mdb_txn_abort(txn);
			return -ENOMEM;
		}
		memcpy(copy, val.mv_data, val.mv_size);
		copy[val.mv_size] = '\0';
		*v = copy;
		*vlen = val.mv_size;
	}
	mdb_txn_abort(txn);
	return mdb_to_errno(rc);
}

int store_meta_del(struct store *st, const void *k, size_t klen)
{
	MDB_txn *txn;
	MDB_val key = { klen, (void *)k };
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		goto out;
	rc = mdb_del(txn, st->meta, &key, NULL);
	if (rc)
		goto out_abort;
	rc = commit_durable(st, txn);
	goto out;
out_abort:
	mdb_txn_abort(txn);
out:
	return mdb_to_errno(rc);
}

int store_meta_scan(struct store *st, const void *prefix, size_t plen,
		    int (*fn)(void *arg, const void *key, size_t klen,
			      const void *val, size_t vlen),
		    void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val key = { plen, (void *)prefix }, val;
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc);
	rc = mdb_cursor_open(txn, st->meta, &cur);
	if (rc)
		goto out_abort;
	int ret = 0;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (!rc && key.mv_size >= plen &&
	       !memcmp(key.mv_data, prefix, plen)) {
		ret = fn(arg, key.mv_data, key.mv_size, val.mv_data,
			 val.mv_size);
		if (ret)
			break;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : mdb_to_errno(rc);
out_abort:
	mdb_txn_abort(txn);
	return mdb_to_errno(rc);
}

int store_sync(struct store *st)
{
	int rc = mdb_env_sync(st->env, 1);
	if (rc)
		atomic_store(&st->sync_failed, true);
	return mdb_to_errno(rc);
}

uint64_t store_used_bytes(struct store *st)
{
	MDB_envinfo info;
	MDB_stat stat;
	if (mdb_env_info(st->env, &info) || mdb_env_stat(st->env, &stat))
		return 0;
	return (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
}

int store_info(struct store *st, struct store_info *out)
{
	MDB_txn *txn;
	MDB_stat bs, ms;
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc);
	rc = mdb_stat(txn, st->blocks, &bs);
	if (!rc)
		rc = mdb_stat(txn, st->meta, &ms);
	mdb_txn_abort(txn);
	if (rc)
		return mdb_to_errno(rc);
	out->blocks = bs.ms_entries;
	out->meta = ms.ms_entries;
	out->used = store_used_bytes(st);
	return 0;
}

/* Delete every record of file @fid from @dbi (blocks or bcrc) in @txn. */
static int delete_file_keys(MDB_txn *txn, MDB_dbi dbi, const uint8_t *fid)
{
	MDB_cursor *cur;
	uint8_t k[STORE_FID_LEN + 8];
	MDB_val key, val;

	block_key(k, fid, 0);
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return rc;
	/* Seek to the file's first remaining key each time: simple, and
	 * no reliance on where a cursor stands after a delete. */
	for (;;) {
		key.mv_size = sizeof(k);
		key.mv_data = k;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		if (rc || key.mv_size != sizeof(k) ||
		    memcmp(key.mv_data, fid, STORE_FID_LEN))
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_blocks_delete(struct store *st, const uint8_t *fid)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		goto out;
	/* the blocks and their checksums together (see DESIGN); records
	 * an older rgtfs left without their blocks go too */
	rc = delete_file_keys(txn, st->blocks, fid);
	if (!rc)
		rc = delete_file_keys(txn, st->bcrc, fid);
	if (rc)
		goto out_abort;
	rc = mdb_txn_commit(txn);
	goto out;
out_abort:
	mdb_txn_abort(txn);
out:
	return mdb_to_errno(rc);
}

int store_blocks_seal(struct store *st, const uint8_t *fid, uint64_t nblocks)
{
	MDB_txn *txn;
	MDB_val key, val, cv;
	uint8_t k[STORE_FID_LEN + 8];
	uint64_t missing = 0;
	int rc;

	/* a read first: the common case (all sealed) writes nothing */
	rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc);
	for (uint64_t b = 0; b < nblocks && !rc; b++) {
		key = (MDB_val){ sizeof(k), k };
		block_key(k, fid, b);
		rc = mdb_get(txn, st->blocks, &key, &val);
		if (!rc) {
			rc = mdb_get(txn, st->bcrc, &key, &cv);
			if (rc == MDB_NOTFOUND) {
				missing++;
				rc = 0;
			}
		} else if (rc == MDB_NOTFOUND) {
			rc = 0;
		}
	}
	mdb_txn_abort(txn);
	if (rc || !missing)
		return mdb_to_errno(rc);

	int sealed = 0;
	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		return mdb_to_errno(rc);
	for (uint64_t b = 0; b < nblocks && !rc; b++) {
		uint8_t c[4 * (STORE_BLOCK_SIZE / STORE_CRC_PIECE)];
		key = (MDB_val){ sizeof(k), k };
		block_key(k, fid, b);
		rc = mdb_get(txn, st->blocks, &key, &val);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			continue;
		}
		if (!rc && val.mv_size > STORE_BLOCK_SIZE)
			rc = EINVAL;
		if (rc)
			break;
		rc = mdb_get(txn, st->bcrc, &key, &cv);
		if (rc != MDB_NOTFOUND)
			continue;	/* sealed (or an error: loop ends) */
		/* @val stays valid until this txn's next write: the record
		 * is computed before it */
		crc_record(c, val.mv_data, val.mv_size);
		cv = (MDB_val){ 4 * crc_pieces(val.mv_size), c };
		rc = mdb_put(txn, st->bcrc, &key, &cv, 0);
		sealed += !rc;
	}
	if (rc) {
		mdb_txn_abort(txn);
		return mdb_to_errno(rc);
	}
	rc = mdb_txn_commit(txn);
	return rc ? mdb_to_errno(rc) : sealed;
}

int store_test_drop_crc(struct store *st, const uint8_t *fid, uint64_t blk)
{
	MDB_txn *txn;
	uint8_t k[STORE_FID_LEN + 8];
	MDB_val key = { sizeof(k), k };

	block_key(k, fid, blk);
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		return mdb_to_errno(rc);
	rc = mdb_del(txn, st->bcrc, &key, NULL);
	if (rc) {
		mdb_txn_abort(txn);
		return mdb_to_errno(rc);
	}
	return mdb_to_errno(mdb_txn_commit(txn));
}

int store_blocks_bytes(struct store *st, const uint8_t *fid, uint64_t *bytes)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	uint8_t k[STORE_FID_LEN + 8];
	MDB_val key = { sizeof(k), k }, val;

	*bytes = 0;
	block_key(k, fid, 0);
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc);
	rc = mdb_cursor_open(txn, st->blocks, &cur);
	if (!rc) {
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		while (!rc && key.mv_size == sizeof(k) &&
		       !memcmp(key.mv_data, fid, STORE_FID_LEN)) {
			*bytes += val.mv_size;
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : mdb_to_errno(rc);
}
