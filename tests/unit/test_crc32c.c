/* test_crc32c.c - CRC32C against published vectors; hardware == software. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "crc32c.h"

/* Both paths, and the dispatching one, must give @want. */
static void vector(const void *buf, size_t len, uint32_t want)
{
	CHECK_ERR(crc32c_sw(0, buf, len), want);
	CHECK_ERR(crc32c_hw(0, buf, len), want);
	CHECK_ERR(crc32c(0, buf, len), want);
}

int main(void)
{
	unsigned char b[48];

	/* RFC 3720 (iSCSI) B.4 */
	memset(b, 0, 32);
	vector(b, 32, 0x8A9136AA);
	memset(b, 0xff, 32);
	vector(b, 32, 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	vector(b, 32, 0x46DD794E);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	vector(b, 32, 0x113FDB5C);
	/* the iSCSI SCSI Read (10) command PDU of B.4 */
	static const unsigned char pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
		0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	vector(pdu, sizeof(pdu), 0xD9963A56);
	vector("123456789", 9, 0xE3069283);
	vector("", 0, 0);
	/* chaining */
	CHECK_ERR(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283);

	printf("crc32c: %s path\n", crc32c_hw_available() ? "sse4.2" :
	       "software");

	/* hardware == software: every length 0..4096, every start 0..7 */
	enum { MAX = 4096 };
	unsigned char *r = malloc(MAX + 16);
	srandom((unsigned)time(NULL));
	for (size_t i = 0; i < MAX + 16; i++)
		r[i] = (unsigned char)random();
	int bad = 0;
	for (size_t len = 0; len <= MAX; len++)
		for (size_t at = 0; at < 8; at++) {
			uint32_t s = crc32c_sw(0, r + at, len);
			if (crc32c_hw(0, r + at, len) != s ||
			    crc32c(0, r + at, len) != s)
				bad++;
		}
	CHECK_ERR(bad, 0);
	free(r);

	/* long buffers take the three-stream loop: whole blocks, odd
	 * lengths, unaligned starts, and a chained split */
	size_t big = (1u << 20) + 100;
	r = malloc(big + 8);
	for (size_t i = 0; i < big + 8; i++)
		r[i] = (unsigned char)random();
	static const size_t lens[] = { 24575, 24576, 24577, 49152 + 13,
				       1u << 20, (1u << 20) + 99 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t at = 0; at < 8; at += 3) {
			uint32_t s = crc32c_sw(0, r + at, lens[i]);
			CHECK_ERR(crc32c_hw(0, r + at, lens[i]), s);
			CHECK_ERR(crc32c(crc32c(0, r + at, 7777), r + at + 7777,
					 lens[i] - 7777), s);
		}
	/* one flipped bit anywhere in a block changes the CRC */
	uint32_t s = crc32c(0, r, 1u << 20);
	r[654321] ^= 0x10;
	CHECK(crc32c(0, r, 1u << 20) != s);
	free(r);

	/* cost of one 1 MiB block (informational) */
	r = calloc(1, 1u << 20);
	struct timespec t0, t1;
	uint32_t acc = 0;
	for (int path = 0; path < 2; path++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 64; i++)
			acc ^= path ? crc32c_hw(acc, r, 1u << 20) :
				      crc32c_sw(acc, r, 1u << 20);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double secs = (t1.tv_sec - t0.tv_sec) +
			   (t1.tv_nsec - t0.tv_nsec) / 1e9;
		printf("crc32c %s: %.0f MiB/s\n", path ? "hw" : "sw", 64 / secs);
	}
	free(r);
	return CHECK_DONE();
}
