/* test_store.c - a real LMDB in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

/*
 * Flip one bit of every copy of @pat in @dir/data.mdb (freed pages may
 * hold old ones): a bit gone bad on disk. LMDB's API cannot write into
 * the map, so plain file I/O. Returns how many copies were found.
 */
static int flip_in_file(const char *dir, const char *pat)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	struct stat sb;
	fstat(fd, &sb);
	char *m = malloc(sb.st_size);
	size_t pl = strlen(pat);
	int hits = 0;
	if (m && pread(fd, m, sb.st_size, 0) == sb.st_size)
		for (off_t i = 0; hits >= 0 && i + (off_t)pl <= sb.st_size;
		     i++) {
			if (memcmp(m + i, pat, pl))
				continue;
			char c = m[i + 5] ^ 0x20;
			hits = pwrite(fd, &c, 1, i + 5) == 1 ? hits + 1 : -1;
		}
	free(m);
	close(fd);
	return hits;
}

/* Block checksums: put then peek, a flipped bit, a legacy block, delete. */
static void test_checksums(const char *dir)
{
	char sub[64], err[256];
	struct store *st;
	struct store_rtxn *t;
	uint8_t fid[STORE_FID_LEN] = { 7, 7, 7 };
	static char blk[STORE_BLOCK_SIZE];
	const void *d = NULL;
	size_t l = 0;
	static const char mark[] = "rgtfs-crc-unit-mark-5b1e0c";

	snprintf(sub, sizeof(sub), "%s/crc", dir);
	CHECK_ERR(store_open(sub, 1ull << 30, &st, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(blk); i++)
		blk[i] = (char)(i * 131 + (i >> 11));
	memcpy(blk + 700000, mark, sizeof(mark) - 1);
	struct store_put p[3] = { { fid, 0, blk, sizeof(blk) },
				  { fid, 1, "legacy-block-bytes", 18 },
				  { fid, 2, "short tail", 10 } };
	CHECK_ERR(store_blocks_put(st, p, 3), 0);
	/* a block an older rgtfs wrote: no checksum record */
	CHECK_ERR(store_test_drop_crc(st, fid, 1), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 0, &d, &l), 0);
	CHECK(l == sizeof(blk) && !memcmp(d, blk, sizeof(blk)));
	uint64_t legacy = store_legacy_blocks(st);
	CHECK_ERR(store_block_peek(t, fid, 1, &d, &l), 0);	/* accepted */
	CHECK(l == 18 && !memcmp(d, "legacy-block-bytes", 18));
	CHECK(store_legacy_blocks(st) == legacy + 1);
	CHECK_ERR(store_block_peek(t, fid, 2, &d, &l), 0);
	CHECK(l == 10);
	store_rend(t);
	store_close(st);

	/* one bit flipped in data.mdb: -EBADMSG, and no pointer out */
	CHECK_ERR(flip_in_file(sub, mark), 1);
	CHECK_ERR(store_open(sub, 1ull << 30, &st, err, sizeof(err)), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	d = NULL;
	l = 0;
	CHECK_ERR(store_block_peek(t, fid, 0, &d, &l), -EBADMSG);
	CHECK(d == NULL && l == 0);
	CHECK_ERR(store_block_peek(t, fid, 2, &d, &l), 0);	/* the others */
	CHECK_ERR(store_block_peek(t, fid, 1, &d, &l), 0);
	store_rend(t);

	/* a new copy replaces the bad one and its record */
	CHECK_ERR(store_blocks_put(st, p, 1), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 0, &d, &l), 0);
	CHECK(l == sizeof(blk) && !memcmp(d, blk, sizeof(blk)));
	store_rend(t);

	/* sealing: the legacy block 1 gets its record (and only it), a
	 * second seal writes nothing; a later bad byte in it is caught */
	CHECK_ERR(store_blocks_seal(st, fid, 3), 1);
	CHECK_ERR(store_blocks_seal(st, fid, 3), 0);
	legacy = store_legacy_blocks(st);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 1, &d, &l), 0);
	CHECK(l == 18 && !memcmp(d, "legacy-block-bytes", 18));
	store_rend(t);
	CHECK(store_legacy_blocks(st) == legacy);	/* checked now */
	store_close(st);
	CHECK(flip_in_file(sub, "legacy-block-bytes") >= 1);
	CHECK_ERR(store_open(sub, 1ull << 30, &st, err, sizeof(err)), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 1, &d, &l), -EBADMSG);
	store_rend(t);

	/* deleting the file takes every block and every record */
	CHECK_ERR(store_blocks_delete(st, fid), 0);
	CHECK_ERR(store_test_drop_crc(st, fid, 0), -ENOENT);
	CHECK_ERR(store_rbegin(st, &t), 0);
	for (uint64_t b = 0; b < 3; b++)
		CHECK_ERR(store_block_peek(t, fid, b, &d, &l), -ENOENT);
	store_rend(t);

	/* Each 128 KiB piece has its CRC (store.c, DESIGN): a read of the
	 * pieces a flip is not in still serves, one that touches it is
	 * refused, and so is a whole peek (the serve check's). A block
	 * rewritten through LMDB is checked against its new record. */
	static const char mark2[] = "rgtfs-crc-unit-piece-8d2f47";
	static char blk2[STORE_BLOCK_SIZE];
	const size_t at = 3 * STORE_CRC_PIECE + 4096;	/* in piece 3 */
	memset(blk2, 'm', sizeof(blk2));
	memcpy(blk2 + at, mark2, sizeof(mark2) - 1);
	struct store_put p3 = { fid, 3, blk2, sizeof(blk2) };
	CHECK_ERR(store_blocks_put(st, &p3, 1), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 3, &d, &l), 0);
	store_rend(t);
	blk2[9] = 'x';		/* another version of it, through LMDB */
	CHECK_ERR(store_blocks_put(st, &p3, 1), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 3, &d, &l), 0);
	CHECK(l == sizeof(blk2) && ((const char *)d)[9] == 'x');
	store_rend(t);
	CHECK(flip_in_file(sub, mark2) >= 1);	/* behind LMDB's back */
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 3, &d, &l), -EBADMSG);
	CHECK_ERR(store_block_peek_range(t, fid, 3, 0, 3 * STORE_CRC_PIECE,
					 &d, &l), 0);
	CHECK_ERR(store_block_peek_range(t, fid, 3, 4 * STORE_CRC_PIECE,
					 sizeof(blk2), &d, &l), 0);
	CHECK_ERR(store_block_peek_range(t, fid, 3, at + 5, at + 6, &d, &l),
		  -EBADMSG);
	CHECK_ERR(store_block_peek_range(t, fid, 3, 3 * STORE_CRC_PIECE - 1,
					 3 * STORE_CRC_PIECE + 1, &d, &l),
		  -EBADMSG);
	/* nothing asked: only whether it is there */
	CHECK_ERR(store_block_peek_range(t, fid, 3, 7, 7, &d, &l), 0);
	store_rend(t);

	CHECK_ERR(store_blocks_delete(st, fid), 0);
	struct store_info si;
	CHECK_ERR(store_info(st, &si), 0);
	CHECK(si.blocks == 0);
	store_close(st);
}

static int count_fn(void *arg, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	(*(int *)arg)++;
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/rgtfs-test-store-XXXXXX";
	char err[256], sub[64];
	struct store *st;
	struct store_rtxn *t;
	uint8_t fid[STORE_FID_LEN] = { 1, 2, 3 };
	static char block[STORE_BLOCK_SIZE];
	const void *d;
	size_t l;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/c", dir);
	CHECK_ERR(store_open(sub, 1ull << 30, &st, err, sizeof(err)), 0);
	struct stat sb;
	CHECK(stat(sub, &sb) == 0 && (sb.st_mode & 0777) == 0700);

	memset(block, 'x', sizeof(block));
	struct store_put p[2] = { { fid, 0, block, sizeof(block) },
				  { fid, 1, "tail", 4 } };
	CHECK_ERR(store_blocks_put(st, p, 2), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 0, &d, &l), 0);
	CHECK(l == sizeof(block) && ((const char *)d)[12345] == 'x');
	CHECK_ERR(store_block_peek(t, fid, 1, &d, &l), 0);
	CHECK(l == 4 && !memcmp(d, "tail", 4));
	CHECK_ERR(store_block_peek(t, fid, 2, &d, &l), -ENOENT);
	fid[0] = 9;
	CHECK_ERR(store_block_peek(t, fid, 0, &d, &l), -ENOENT);
	fid[0] = 1;
	store_rend(t);

	/* Deleting a file's blocks leaves other files alone. */
	uint8_t other[STORE_FID_LEN] = { 1, 2, 4 };
	struct store_put po = { other, 0, "keep", 4 };
	CHECK_ERR(store_blocks_put(st, &po, 1), 0);
	CHECK_ERR(store_blocks_delete(st, fid), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 0, &d, &l), -ENOENT);
	CHECK_ERR(store_block_peek(t, fid, 1, &d, &l), -ENOENT);
	CHECK_ERR(store_block_peek(t, other, 0, &d, &l), 0);
	store_rend(t);
	CHECK_ERR(store_blocks_delete(st, fid), 0);	/* nothing left: fine */
	CHECK_ERR(store_blocks_put(st, p, 2), 0);	/* put them back */

	CHECK_ERR(store_meta_put(st, "dir\0a\0b", 7, "v1", 2), 0);
	CHECK_ERR(store_meta_put(st, "dir\0a\0c", 7, "v2", 2), 0);
	CHECK_ERR(store_meta_put(st, "dis", 3, "v3", 2), 0);
	void *v;
	size_t vl;
	CHECK_ERR(store_meta_get(st, "dir\0a\0c", 7, &v, &vl), 0);
	CHECK(vl == 2 && !memcmp(v, "v2", 2));
	free(v);
	int n = 0;
	CHECK_ERR(store_meta_scan(st, "dir\0a\0", 6, count_fn, &n), 0);
	CHECK(n == 2);
	CHECK_ERR(store_meta_del(st, "dir\0a\0b", 7), 0);
	CHECK_ERR(store_meta_get(st, "dir\0a\0b", 7, &v, &vl), -ENOENT);
	CHECK_ERR(store_meta_del(st, "nope", 4), -ENOENT);
	store_close(st);

	/* Everything committed survives a reopen. */
	CHECK_ERR(store_open(sub, 1ull << 30, &st, err, sizeof(err)), 0);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 1, &d, &l), 0);
	CHECK(l == 4);
	store_rend(t);
	n = 0;
	CHECK_ERR(store_meta_scan(st, "dir", 3, count_fn, &n), 0);
	CHECK(n == 1);
	store_close(st);

	/* A full map is -ENOSPC, and what was there stays readable. */
	snprintf(sub, sizeof(sub), "%s/small", dir);
	CHECK_ERR(store_open(sub, 4u << 20, &st, err, sizeof(err)), 0);
	int rc = 0;
	uint64_t b;
	for (b = 0; b < 16 && !rc; b++) {
		struct store_put q = { fid, b, block, sizeof(block) };
		rc = store_blocks_put(st, &q, 1);
	}
	CHECK_ERR(rc, -ENOSPC);
	CHECK_ERR(store_rbegin(st, &t), 0);
	CHECK_ERR(store_block_peek(t, fid, 0, &d, &l), 0);
	store_rend(t);
	store_close(st);

	test_checksums(dir);

	/* An unwritable place is a clear error, not a crash. */
	CHECK(store_open("/proc/rgtfs-nope", 1u << 20, &st, err,
			 sizeof(err)) < 0);
	CHECK(strstr(err, "/proc/rgtfs-nope") != NULL);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return CHECK_DONE();
}
