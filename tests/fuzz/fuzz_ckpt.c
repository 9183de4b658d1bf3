/*
 * fuzz_ckpt.c - every checkpoint format checker (cache/ckpt*.c) on the
 * same hostile bytes: the input is checked as .safetensors, .pt (torch
 * zip), .bin, .npy, .npz and .json, through an in-memory reader.
 *
 * Invariants: the checkers never ask the reader for a byte past its size
 * (ckpt.h: "the checks never ask for bytes past @size") and never fail a
 * read of an in-memory file (so never CKPT_IO_ERROR); the verdict is one
 * of the enum; the detail is one terminated line with no control byte;
 * the same bytes get the same verdict and detail twice. For the formats
 * whose header fixes the file's size (safetensors, .npy), a file that
 * passes fails once its last byte is cut off (a .npy that is really a
 * zip is checked as .npz, as np.load does, so it is left out).
 */
#include "ckpt.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *p;
	size_t n;
};

static int mem_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	const struct mem *m = arg;
	FUZZ_ASSERT(off <= m->n && len <= m->n - off);
	if (len)
		memcpy(buf, m->p + off, len);
	return 0;
}

static const char *const names[] = {
	"model.safetensors", "model.pt", "pytorch_model.bin",
	"array.npy",	     "arrays.npz", "config.json",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so a read past the end is an ASan report too. */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	struct mem m = { copy, size };
	struct ckpt_reader r = { .size = size, .pread = mem_pread, .arg = &m };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char d1[256], d2[256];
		enum ckpt_verdict v1 = ckpt_verify(names[i], &r, d1, sizeof(d1));
		FUZZ_ASSERT(v1 >= CKPT_OK && v1 <= CKPT_IO_ERROR);
		FUZZ_ASSERT(v1 != CKPT_IO_ERROR);
		FUZZ_ASSERT(fuzz_terminated(d1, sizeof(d1)));
		FUZZ_ASSERT(fuzz_no_ctl(d1, strlen(d1)));
		FUZZ_ASSERT(ckpt_strerror(v1) != NULL);
		enum ckpt_verdict v2 = ckpt_verify(names[i], &r, d2, sizeof(d2));
		FUZZ_ASSERT(v1 == v2 && !strcmp(d1, d2));
		/* A detail buffer of one byte, and none at all. */
		char d0[1];
		FUZZ_ASSERT(ckpt_verify(names[i], &r, d0, sizeof(d0)) == v1);
		FUZZ_ASSERT(d0[0] == '\0');
		FUZZ_ASSERT(ckpt_verify(names[i], &r, NULL, 0) == v1);
		if (v1 == CKPT_OK && size && (i == 0 || i == 3) &&
		    !(size >= 2 && copy[0] == 'P' && copy[1] == 'K')) {
			struct mem mc = { copy, size - 1 };
			struct ckpt_reader rc = { .size = size - 1,
						  .pread = mem_pread,
						  .arg = &mc };
			FUZZ_ASSERT(ckpt_verify(names[i], &rc, d2,
						sizeof(d2)) != CKPT_OK);
		}
	}
	free(copy);
	return 0;
}
