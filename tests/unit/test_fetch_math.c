/* test_fetch_math.c - block ranges and file identities (pure). */
#include <errno.h>

#include "check.h"
#include "fetch.h"

int main(void)
{
	uint64_t f, l;
	const uint64_t B = STORE_BLOCK_SIZE;

	CHECK_ERR(fetch_block_range(0, 1, 1, &f, &l), 0);
	CHECK(f == 0 && l == 0);
	CHECK_ERR(fetch_block_range(0, B, 10 * B, &f, &l), 0);
	CHECK(f == 0 && l == 0);
	CHECK_ERR(fetch_block_range(0, B + 1, 10 * B, &f, &l), 0);
	CHECK(f == 0 && l == 1);
	CHECK_ERR(fetch_block_range(B - 1, 2, 10 * B, &f, &l), 0);
	CHECK(f == 0 && l == 1);
	CHECK_ERR(fetch_block_range(B, B, 10 * B, &f, &l), 0);
	CHECK(f == 1 && l == 1);
	/* Clamped to the end of the file. */
	CHECK_ERR(fetch_block_range(9 * B + 5, 100 * B, 9 * B + 10, &f, &l),
		  0);
	CHECK(f == 9 && l == 9);
	/* At or past EOF, and empty reads. */
	CHECK_ERR(fetch_block_range(10, 1, 10, &f, &l), -ENODATA);
	CHECK_ERR(fetch_block_range(0, 0, 10, &f, &l), -ENODATA);
	CHECK_ERR(fetch_block_range(0, 1, 0, &f, &l), -ENODATA);
	/* Files past 4 GiB and near the top of the range. */
	CHECK_ERR(fetch_block_range(5ull << 30, B, 6ull << 30, &f, &l), 0);
	CHECK(f == 5 * 1024 && l == 5 * 1024);
	CHECK_ERR(fetch_block_range(UINT64_MAX - 10, 100, UINT64_MAX, &f, &l),
		  0);
	CHECK(l == (UINT64_MAX - 1) >> STORE_BLOCK_SHIFT);

	/* Identity: any change of path, size or mtime is a new file. */
	uint8_t a[STORE_FID_LEN], b[STORE_FID_LEN];
	fetch_file_id(a, "vastai", "1", "/w/c.pt", 100, 5, NULL);
	fetch_file_id(b, "vastai", "1", "/w/c.pt", 100, 5, NULL);
	CHECK(!memcmp(a, b, sizeof(a)));
	fetch_file_id(b, "vastai", "1", "/w/c.pt", 101, 5, NULL);
	CHECK(memcmp(a, b, sizeof(a)));
	fetch_file_id(b, "vastai", "1", "/w/c.pt", 100, 6, NULL);
	CHECK(memcmp(a, b, sizeof(a)));
	fetch_file_id(b, "vastai", "2", "/w/c.pt", 100, 5, NULL);
	CHECK(memcmp(a, b, sizeof(a)));
	/* Field boundaries matter: ("ab","c") is not ("a","bc"). */
	fetch_file_id(a, "vastai", "ab", "c", 1, 1, NULL);
	fetch_file_id(b, "vastai", "a", "bc", 1, 1, NULL);
	CHECK(memcmp(a, b, sizeof(a)));
	/* An ETag (S3) is part of the identity; none is the old key. */
	fetch_file_id(a, "cloud", "b", "/k", 1, 1, NULL);
	fetch_file_id(b, "cloud", "b", "/k", 1, 1, "");
	CHECK(!memcmp(a, b, sizeof(a)));
	fetch_file_id(b, "cloud", "b", "/k", 1, 1, "\"e1\"");
	CHECK(memcmp(a, b, sizeof(a)));
	fetch_file_id(a, "cloud", "b", "/k", 1, 1, "\"e2\"");
	CHECK(memcmp(a, b, sizeof(a)));
	/* and a known value, so the key never changes by accident (cached
	 * data of every user depends on it) */
	fetch_file_id(a, "vastai", "1", "/w/c.pt", 100, 5, NULL);
	char hex[2 * STORE_FID_LEN + 1];
	for (int i = 0; i < STORE_FID_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", a[i]);
	/* sha256("vastai\0" "1\0" "/w/c.pt\0" "100\0" "5\0"), first 16 */
	CHECK_STR(hex, "c0c4f822eccdb1ca5e7cdd5ec6b0b30e");
	return CHECK_DONE();
}
