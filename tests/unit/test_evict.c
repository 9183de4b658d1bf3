/* test_evict.c - LRU choice (pure) and a pass over a real LMDB. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "evict.h"
#include "store.h"

static enum evict_class pin_b(void *arg, const uint8_t *fid,
			      const char *plat, const char *id)
{
	/* instance b is archived */
	return !strcmp(id, "b") ? EVICT_PINNED : EVICT_OK;
}

int main(void)
{
	struct evict_file v[4] = {
		{ .bytes = 10, .atime = 300 },
		{ .bytes = 10, .atime = 100, .pinned = true },
		{ .bytes = 10, .atime = 200 },
		{ .bytes = 10, .atime = 400 },
	};
	v[0].fid[0] = 0; v[1].fid[0] = 1; v[2].fid[0] = 2; v[3].fid[0] = 3;
	/* 30 unpinned bytes, limit 15: drop the two oldest unpinned. */
	size_t k = evict_choose(v, 4, 15);
	CHECK(k == 2);
	CHECK(v[0].fid[0] == 2 && v[1].fid[0] == 0);
	CHECK(v[3].pinned);	/* pinned sorts last, never chosen */
	/* Under the limit: nothing. Limit 0: every unpinned one. */
	CHECK(evict_choose(v, 4, 30) == 0);
	k = evict_choose(v, 4, 0);
	CHECK(k == 3);
	for (size_t i = 0; i < k; i++)
		CHECK(!v[i].pinned);
	/* All pinned: nothing, whatever the limit. */
	struct evict_file p[2] = { { .bytes = 50, .pinned = true },
				   { .bytes = 50, .pinned = true } };
	CHECK(evict_choose(p, 2, 0) == 0);
	CHECK(evict_choose(NULL, 0, 0) == 0);
	/* A hot file counts but is not chosen: 30 bytes, limit 15, the
	 * oldest is hot -> the next oldest goes, and that is not enough. */
	struct evict_file h[3] = { { .bytes = 10, .atime = 1, .hot = true },
				   { .bytes = 10, .atime = 2 },
				   { .bytes = 10, .atime = 3 } };
	k = evict_choose(h, 3, 15);
	CHECK(k == 2 && !h[0].hot && !h[1].hot && h[2].hot);

	/* A pass on a real store: a (old), b (older, archived), c (new). */
	char dir[] = "/tmp/rgtfs-test-evict-XXXXXX", err[256];
	struct store *st;
	CHECK(mkdtemp(dir) != NULL);
	CHECK_ERR(store_open(dir, 1ull << 30, &st, err, sizeof(err)), 0);
	static char blk[STORE_BLOCK_SIZE];
	uint8_t fa[STORE_FID_LEN] = { 'a' }, fb[STORE_FID_LEN] = { 'b' },
		fc[STORE_FID_LEN] = { 'c' };
	for (uint64_t i = 0; i < 2; i++) {
		struct store_put pu[3] = { { fa, i, blk, sizeof(blk) },
					   { fb, i, blk, sizeof(blk) },
					   { fc, i, blk, sizeof(blk) } };
		CHECK_ERR(store_blocks_put(st, pu, 3), 0);
	}
	CHECK_ERR(evict_record(st, fa, "vastai", "a", 200), 0);
	CHECK_ERR(evict_record(st, fb, "vastai", "b", 100), 0);
	CHECK_ERR(evict_record(st, fc, "vastai", "c", 300), 0);
	uint64_t bytes;
	bool over;
	CHECK_ERR(store_blocks_bytes(st, fa, &bytes), 0);
	CHECK(bytes == 2 * sizeof(blk));
	/* Limit 3 MiB: a+c = 4 MiB evictable -> a (the older) goes; b is
	 * older still but pinned. */
	CHECK(evict_pass(st, 3u << 20, pin_b, NULL, &over) == 2 * (int64_t)sizeof(blk));
	CHECK_ERR(store_blocks_bytes(st, fa, &bytes), 0);
	CHECK(bytes == 0);
	CHECK_ERR(store_blocks_bytes(st, fb, &bytes), 0);
	CHECK(bytes == 2 * sizeof(blk));
	CHECK_ERR(store_blocks_bytes(st, fc, &bytes), 0);
	CHECK(bytes == 2 * sizeof(blk));
	/* Limit 0: c goes too, b stays: pinned data is never evicted. */
	CHECK(evict_pass(st, 0, pin_b, NULL, &over) == 2 * (int64_t)sizeof(blk));
	CHECK_ERR(store_blocks_bytes(st, fb, &bytes), 0);
	CHECK(bytes == 2 * sizeof(blk));
	CHECK(evict_pass(st, 0, pin_b, NULL, &over) == 0);
	store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return CHECK_DONE();
}
