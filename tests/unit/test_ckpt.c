/*
 * test_ckpt.c - the checkpoint load checks: every fixture under
 * tests/fixtures/ckpt/ gives its expected verdict, no strict prefix of a
 * good file is OK, hostile sizes (shape products, header lengths) give
 * verdicts instead of overflows, and a failing reader gives CKPT_IO_ERROR.
 *
 * The fixtures come from tests/fixtures/ckpt/make_fixtures.py; every file
 * there must have a row in the table below (a file without one fails the
 * test). They are found from __FILE__ (meson compiles with a path relative
 * to the build root and runs us in build/tests), or from $RGT_FIXTURES.
 */
#include "ckpt.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static const struct {
	const char *path;
	enum ckpt_verdict want;
} fixtures[] = {
	{ "good/model.safetensors", CKPT_OK },
	{ "good/model.pt", CKPT_OK },
	{ "good/pytorch_model.bin", CKPT_OK },
	{ "good/zip64.pt", CKPT_OK },
	{ "good/no_crc32.pt", CKPT_OK },
	{ "good/arrays.npz", CKPT_OK },
	{ "good/compressed.npz", CKPT_OK },
	{ "good/empty.npz", CKPT_OK },
	{ "good/array.npy", CKPT_OK },
	{ "good/scalar_v2.npy", CKPT_OK },
	{ "good/fortran_bool.npy", CKPT_OK },
	{ "good/strings_v3.npy", CKPT_OK },
	{ "good/config.json", CKPT_OK },
	{ "good/trainer_state.json", CKPT_OK },

	{ "bad/truncated.safetensors", CKPT_TRUNCATED },
	{ "bad/header_past_eof.safetensors", CKPT_TRUNCATED },
	{ "bad/huge_header.safetensors", CKPT_TOO_LARGE },
	{ "bad/overlap.safetensors", CKPT_BAD_OFFSETS },
	{ "bad/gap.safetensors", CKPT_BAD_OFFSETS },
	{ "bad/dtype_size.safetensors", CKPT_BAD_OFFSETS },
	{ "bad/unknown_dtype.safetensors", CKPT_BAD_HEADER },
	{ "bad/not_json.safetensors", CKPT_BAD_HEADER },
	{ "bad/trailing.safetensors", CKPT_BAD_OFFSETS },

	{ "bad/bad_crc.pt", CKPT_BAD_CRC },
	{ "bad/one_zero_crc.pt", CKPT_BAD_CRC },
	{ "bad/truncated.pt", CKPT_TRUNCATED },
	{ "bad/cd_past_eof.pt", CKPT_BAD_OFFSETS },
	{ "bad/no_data_pkl.pt", CKPT_BAD_HEADER },
	{ "bad/flat.pt", CKPT_BAD_HEADER },
	{ "bad/no_version.pt", CKPT_BAD_HEADER },
	{ "bad/bzip2.pt", CKPT_BAD_HEADER },
	{ "bad/not_zip.pt", CKPT_BAD_MAGIC },
	{ "bad/legacy.pt", CKPT_UNKNOWN_FORMAT },
	{ "bad/overlap.pt", CKPT_BAD_OFFSETS },
	{ "bad/bad_crc.npz", CKPT_BAD_CRC },
	{ "bad/bad_member.npz", CKPT_TRUNCATED },
	{ "bad/object_member.npz", CKPT_UNKNOWN_FORMAT },
	{ "bad/not_zip.npz", CKPT_BAD_MAGIC },

	{ "bad/bad_magic.npy", CKPT_BAD_MAGIC },
	{ "bad/short_data.npy", CKPT_TRUNCATED },
	{ "bad/long_data.npy", CKPT_BAD_HEADER },
	{ "bad/object.npy", CKPT_UNKNOWN_FORMAT },
	{ "bad/bad_descr.npy", CKPT_BAD_HEADER },
	{ "bad/eval.npy", CKPT_BAD_HEADER },
	{ "bad/not_tuple.npy", CKPT_BAD_HEADER },
	{ "bad/huge_header.npy", CKPT_TOO_LARGE },

	{ "bad/truncated.json", CKPT_TRUNCATED },
	{ "bad/syntax.json", CKPT_BAD_HEADER },
	{ "bad/nan_suffix.json", CKPT_BAD_HEADER },
};

#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static char fixture_dir[4096];

static void find_fixtures(void)
{
	check_fixture_dir(fixture_dir, sizeof(fixture_dir), __FILE__, "ckpt",
			  "good/model.safetensors");
}

/* An in-memory reader; fail_at > 0 makes the fail_at-th read fail. */
struct mem {
	const unsigned char *p;
	size_t len;
	int reads, fail_at;
};

static int mem_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct mem *m = arg;

	if (m->fail_at && ++m->reads >= m->fail_at)
		return -EIO;
	if (off > m->len || len > m->len - off) {
		fprintf(stderr, "read past the reader's size: %zu at %llu\n",
			len, (unsigned long long)off);
		abort();
	}
	memcpy(buf, m->p + off, len);
	return 0;
}

static enum ckpt_verdict verify_mem(const char *name, const void *p,
				    size_t len, int fail_at, char *detail,
				    size_t dlen)
{
	struct mem m = { .p = p, .len = len, .fail_at = fail_at };
	struct ckpt_reader r = { .size = len, .pread = mem_pread, .arg = &m };

	return ckpt_verify(name, &r, detail, dlen);
}

static unsigned char *slurp(const char *rel, size_t *len)
{
	char path[4400];
	unsigned char *b;
	long n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", fixture_dir, rel);
	fp = fopen(path, "rb");
	if (!fp || fseek(fp, 0, SEEK_END) || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET)) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, fp) != (size_t)n) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	fclose(fp);
	*len = (size_t)n;
	return b;
}

static int one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/* Every fixture through a file reader, as rgtfs-verify reads it. */
static void test_fixtures(void)
{
	char path[4400], detail[512];
	struct ckpt_reader r;
	enum ckpt_verdict v;
	size_t i;
	int fd;

	for (i = 0; i < NFIXTURES; i++) {
		snprintf(path, sizeof(path), "%s/%s", fixture_dir,
			 fixtures[i].path);
		fd = open(path, O_RDONLY);
		CHECK(fd >= 0);
		if (fd < 0)
			continue;
		CHECK_ERR(ckpt_reader_fd(&r, &fd), 0);
		v = ckpt_verify(path, &r, detail, sizeof(detail));
		close(fd);
		if (v != fixtures[i].want)
			fprintf(stderr, "%s: got %s (%s), want %s\n",
				fixtures[i].path, ckpt_strerror(v), detail,
				ckpt_strerror(fixtures[i].want));
		CHECK(v == fixtures[i].want);
		CHECK(detail[0] != '\0');
		CHECK(one_line(detail));
	}
}

/* A file added to the fixture dirs without a row in the table fails. */
static void test_fixtures_listed(void)
{
	static const char *const dirs[] = { "good", "bad" };
	char rel[600], path[4400];
	struct dirent *de;
	size_t i, d;
	DIR *dp;

	for (d = 0; d < 2; d++) {
		snprintf(path, sizeof(path), "%s/%s", fixture_dir, dirs[d]);
		dp = opendir(path);
		CHECK(dp != NULL);
		if (!dp)
			continue;
		while ((de = readdir(dp))) {
			int found = 0;

			if (de->d_name[0] == '.')
				continue;
			snprintf(rel, sizeof(rel), "%s/%s", dirs[d],
				 de->d_name);
			for (i = 0; i < NFIXTURES; i++)
				found |= !strcmp(rel, fixtures[i].path);
			if (!found)
				fprintf(stderr, "fixture %s has no expected "
					"verdict\n", rel);
			CHECK(found);
		}
		closedir(dp);
	}
}

/*
 * No strict prefix of a good file loads, so none may be OK; and no single
 * flipped byte may crash a check or break the detail into lines (run under
 * ASan/UBSan in CI). The flips are not required to fail: a flipped zip
 * timestamp still loads.
 */
static void test_prefixes_and_flips(void)
{
	char detail[512];
	size_t i, n, len;
	int bad_prefix, bad_flip;

	for (i = 0; i < NFIXTURES; i++) {
		unsigned char *b;

		if (fixtures[i].want != CKPT_OK)
			continue;
		b = slurp(fixtures[i].path, &len);
		bad_prefix = bad_flip = 0;
		for (n = 0; n < len; n++) {
			enum ckpt_verdict v = verify_mem(fixtures[i].path, b, n,
							 0, detail,
							 sizeof(detail));

			if (v == CKPT_OK || v == CKPT_IO_ERROR) {
				fprintf(stderr, "%s: prefix of %zu bytes: "
					"%s\n", fixtures[i].path, n,
					ckpt_strerror(v));
				bad_prefix++;
			}
		}
		for (n = 0; n < len; n++) {
			enum ckpt_verdict v;

			b[n] ^= 0x5a;
			v = verify_mem(fixtures[i].path, b, len, 0, detail,
				       sizeof(detail));
			b[n] ^= 0x5a;
			if (v == CKPT_IO_ERROR || !one_line(detail))
				bad_flip++;
		}
		CHECK(bad_prefix == 0);
		CHECK(bad_flip == 0);
		free(b);
	}
}

/* A reader that fails gives CKPT_IO_ERROR: at once, or half-way. */
static void test_io_errors(void)
{
	static const char *const files[] = {
		"good/model.safetensors", "good/model.pt", "good/zip64.pt",
		"good/compressed.npz", "good/array.npy", "good/config.json",
	};
	char detail[512];
	size_t i, len;
	int at;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		unsigned char *b = slurp(files[i], &len);
		int reads_ok = 0;

		CHECK_ERR(verify_mem(files[i], b, len, 1, detail,
				     sizeof(detail)), CKPT_IO_ERROR);
		CHECK(strstr(detail, "Input/output error") != NULL);
		/* Fail the 2nd, 3rd, ... read until the check needs fewer
		 * reads than that; every failure must be reported. */
		for (at = 2; at < 64; at++) {
			enum ckpt_verdict v = verify_mem(files[i], b, len, at,
							 detail,
							 sizeof(detail));

			if (v == CKPT_OK) {
				reads_ok = 1;
				break;
			}
			CHECK_ERR(v, CKPT_IO_ERROR);
		}
		CHECK(reads_ok);
		free(b);
	}
}

static enum ckpt_verdict st_header(const char *json, size_t data_len,
				   char *detail, size_t dlen)
{
	static unsigned char buf[4096];
	size_t n = strlen(json);
	uint64_t hl = n;

	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(hl >> (8 * i));
	memcpy(buf + 8, json, n);
	return verify_mem("x.safetensors", buf, 8 + n + data_len, 0, detail,
			  dlen);
}

static void test_safetensors_hostile(void)
{
	unsigned char len8[8];
	char detail[512];

	/* 2^32 x 2^32 elements: the product overflows 64 bits. */
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,"
			    "4294967296],\"data_offsets\":[0,0]}}", 0, detail,
			    sizeof(detail)), CKPT_BAD_HEADER);
	CHECK(strstr(detail, "overflow") != NULL);
	/* 2^62 elements fit, 2^62 x 32 bits do not. */
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"F32\",\"shape\":["
			    "4611686018427387904],\"data_offsets\":[0,0]}}", 0,
			    detail, sizeof(detail)), CKPT_BAD_HEADER);
	CHECK(strstr(detail, "overflow") != NULL);
	/* A zero dimension makes any other dimension harmless. */
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,"
			    "4611686018427387904],\"data_offsets\":[0,0]}}", 0,
			    detail, sizeof(detail)), CKPT_OK);
	/* Offsets past 2^63: jansson refuses them, so a header error. */
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
			    "\"data_offsets\":[18446744073709551615,0]}}", 0,
			    detail, sizeof(detail)), CKPT_BAD_HEADER);
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],"
			    "\"data_offsets\":[0,0]}}", 0, detail,
			    sizeof(detail)), CKPT_BAD_HEADER);
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
			    "\"data_offsets\":[1,0]}}", 0, detail,
			    sizeof(detail)), CKPT_BAD_OFFSETS);
	/* Sub-byte types: 3 x 4 bits is not whole bytes, 4 x 4 is. */
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],"
			    "\"data_offsets\":[0,1]}}", 1, detail,
			    sizeof(detail)), CKPT_BAD_HEADER);
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"F4\",\"shape\":[4],"
			    "\"data_offsets\":[0,2]}}", 2, detail,
			    sizeof(detail)), CKPT_OK);
	/* No tensors and no data; metadata must be strings. */
	CHECK_ERR(st_header("{}", 0, detail, sizeof(detail)), CKPT_OK);
	CHECK_ERR(st_header("{\"__metadata__\":{\"a\":\"b\"}}", 0, detail,
			    sizeof(detail)), CKPT_OK);
	CHECK_ERR(st_header("{\"__metadata__\":{\"a\":1}}", 0, detail,
			    sizeof(detail)), CKPT_BAD_HEADER);
	/* Zero-length tensors may share an offset. */
	CHECK_ERR(st_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
			    "\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"U8\","
			    "\"shape\":[0],\"data_offsets\":[0,0]}}", 0, detail,
			    sizeof(detail)), CKPT_OK);
	/* A duplicate field, which serde refuses. */
	CHECK_ERR(st_header("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"U8\","
			    "\"shape\":[0],\"data_offsets\":[0,0]}}", 0, detail,
			    sizeof(detail)), CKPT_BAD_HEADER);
	/* Leading whitespace: newer loaders want '{' first. */
	CHECK_ERR(st_header(" {}", 0, detail, sizeof(detail)),
		  CKPT_BAD_HEADER);
	/* A tensor name with a newline stays on one line in the detail. */
	CHECK_ERR(st_header("{\"a\\nb\":{\"dtype\":\"U8\",\"shape\":[2],"
			    "\"data_offsets\":[0,1]}}", 1, detail,
			    sizeof(detail)), CKPT_BAD_OFFSETS);
	CHECK(one_line(detail) && strstr(detail, "a\\x0ab") != NULL);

	/* Header lengths: the largest u64, and just over the limit. */
	memset(len8, 0xff, sizeof(len8));
	CHECK_ERR(verify_mem("x.safetensors", len8, 8, 0, detail,
			     sizeof(detail)), CKPT_TOO_LARGE);
	memcpy(len8, "\x01\xe1\xf5\x05\0\0\0\0", 8);	/* 100000001 */
	CHECK_ERR(verify_mem("x.safetensors", len8, 8, 0, detail,
			     sizeof(detail)), CKPT_TOO_LARGE);
	memcpy(len8, "\x00\xe1\xf5\x05\0\0\0\0", 8);	/* 100000000 */
	CHECK_ERR(verify_mem("x.safetensors", len8, 8, 0, detail,
			     sizeof(detail)), CKPT_TRUNCATED);
	CHECK_ERR(verify_mem("x.safetensors", len8, 7, 0, detail,
			     sizeof(detail)), CKPT_TRUNCATED);
}

static enum ckpt_verdict npy_header(const char *hdr, size_t data_len,
				    char *detail, size_t dlen)
{
	static unsigned char buf[4096];
	size_t n = strlen(hdr);

	memset(buf, 0, sizeof(buf));
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (unsigned char)n;
	buf[9] = (unsigned char)(n >> 8);
	memcpy(buf + 10, hdr, n);
	return verify_mem("x.npy", buf, 10 + n + data_len, 0, detail, dlen);
}

static void test_npy_hostile(void)
{
	char d[512];

	CHECK_ERR(npy_header("{'descr': '<f8', 'fortran_order': False, "
			     "'shape': (1099511627776, 1099511627776), }", 0,
			     d, sizeof(d)), CKPT_BAD_HEADER);
	CHECK(strstr(d, "overflow") != NULL);
	CHECK_ERR(npy_header("{'descr': '<f8', 'fortran_order': False, "
			     "'shape': (2305843009213693952,), }", 0, d,
			     sizeof(d)), CKPT_BAD_HEADER);
	CHECK_ERR(npy_header("{'descr': '<f8', 'fortran_order': False, "
			     "'shape': (99999999999999999999,), }", 0, d,
			     sizeof(d)), CKPT_BAD_HEADER);
	CHECK_ERR(npy_header("{'descr': '<f8', 'fortran_order': False, "
			     "'shape': (-1,), }", 0, d, sizeof(d)),
		  CKPT_BAD_HEADER);
	/* Exactly numpy's three keys, each once. */
	CHECK_ERR(npy_header("{'descr': '<u1', 'fortran_order': False, "
			     "'shape': (), 'extra': 1}", 1, d, sizeof(d)),
		  CKPT_BAD_HEADER);
	CHECK_ERR(npy_header("{'descr': '<u1', 'descr': '<u1', "
			     "'fortran_order': False, 'shape': ()}", 1, d,
			     sizeof(d)), CKPT_BAD_HEADER);
	CHECK_ERR(npy_header("{'descr': '<u1', 'shape': ()}", 1, d,
			     sizeof(d)), CKPT_BAD_HEADER);
	/* What numpy writes, in any key order, double quotes, 'L' ints. */
	CHECK_ERR(npy_header("{\"shape\": (2L, 1), \"fortran_order\": True, "
			     "\"descr\": \"<i2\"}\n", 4, d, sizeof(d)),
		  CKPT_OK);
	CHECK_ERR(npy_header("{'descr': '<M8[ns]', 'fortran_order': False, "
			     "'shape': (1,), }", 8, d, sizeof(d)), CKPT_OK);
	CHECK_ERR(npy_header("{'descr': '|V0', 'fortran_order': False, "
			     "'shape': (5,), }", 0, d, sizeof(d)), CKPT_OK);
	/* Structured dtypes are not checked. */
	CHECK_ERR(npy_header("{'descr': [('a', '<f4'), ('b', '<i8')], "
			     "'fortran_order': False, 'shape': (1,), }", 12, d,
			     sizeof(d)), CKPT_UNKNOWN_FORMAT);
	CHECK_ERR(npy_header("{'descr': '<f4', 'fortran_order': 0, "
			     "'shape': (1,), }", 4, d, sizeof(d)),
		  CKPT_BAD_HEADER);
	CHECK_ERR(npy_header("{'descr': '<f4', 'fortran_order': False, "
			     "'shape': (1,), } junk", 4, d, sizeof(d)),
		  CKPT_BAD_HEADER);
	/* A header length past the end of a tiny file. */
	CHECK_ERR(verify_mem("x.npy", "\x93NUMPY\x01\x00\xff\x00{", 11, 0, d,
			     sizeof(d)), CKPT_TRUNCATED);
	CHECK_ERR(verify_mem("x.npy", "\x93NUMPY\x04\x00\x00\x00", 10, 0, d,
			     sizeof(d)), CKPT_BAD_HEADER);
}

static void test_json_and_dispatch(void)
{
	char d[512];

	CHECK_ERR(verify_mem("a.json", "[1, NaN, -Infinity, Infinity]", 29, 0,
			     d, sizeof(d)), CKPT_OK);
	CHECK_ERR(verify_mem("a.json", "[-NaN]", 6, 0, d, sizeof(d)),
		  CKPT_BAD_HEADER);
	CHECK_ERR(verify_mem("a.json", "\"NaN\"", 5, 0, d, sizeof(d)),
		  CKPT_OK);
	CHECK_ERR(verify_mem("a.json", "", 0, 0, d, sizeof(d)),
		  CKPT_TRUNCATED);
	CHECK_ERR(verify_mem("a.json", "{\"a\": \"b", 8, 0, d, sizeof(d)),
		  CKPT_TRUNCATED);
	CHECK_ERR(verify_mem("a.json", "42", 2, 0, d, sizeof(d)), CKPT_OK);
	/* Python's json refuses a BOM; so do we. */
	CHECK_ERR(verify_mem("a.json", "\xef\xbb\xbf{}", 5, 0, d, sizeof(d)),
		  CKPT_BAD_HEADER);

	CHECK_ERR(verify_mem("notes.txt", "x", 1, 0, d, sizeof(d)),
		  CKPT_UNKNOWN_FORMAT);
	CHECK_ERR(verify_mem("weights.bin", "\x01\x02\x03\x04", 4, 0, d,
			     sizeof(d)), CKPT_UNKNOWN_FORMAT);
	CHECK_ERR(verify_mem("weights.bin", "", 0, 0, d, sizeof(d)),
		  CKPT_UNKNOWN_FORMAT);
	CHECK_ERR(verify_mem("model.pt", "", 0, 0, d, sizeof(d)),
		  CKPT_TRUNCATED);
	CHECK_ERR(verify_mem("model.pt", "PK\3", 3, 0, d, sizeof(d)),
		  CKPT_TRUNCATED);
	/* No detail buffer at all. */
	CHECK_ERR(verify_mem("model.pt", "xyzw", 4, 0, NULL, 0),
		  CKPT_BAD_MAGIC);

	CHECK_ERR(ckpt_format_of("run/3/model.SafeTensors"),
		  CKPT_FMT_SAFETENSORS);
	CHECK_ERR(ckpt_format_of("last.ckpt"), CKPT_FMT_TORCH);
	CHECK_ERR(ckpt_format_of("w.pth"), CKPT_FMT_TORCH);
	CHECK_ERR(ckpt_format_of("pytorch_model.bin"), CKPT_FMT_TORCH_BIN);
	CHECK_ERR(ckpt_format_of("x.npz"), CKPT_FMT_NPZ);
	CHECK_ERR(ckpt_format_of("model.safetensors.index.json"),
		  CKPT_FMT_JSON);
	CHECK_ERR(ckpt_format_of("dir.pt/README"), CKPT_FMT_NONE);
	CHECK_ERR(ckpt_format_of("Makefile"), CKPT_FMT_NONE);
	CHECK_ERR(ckpt_format_of("a.tar.gz"), CKPT_FMT_NONE);
	CHECK_ERR(ckpt_format_of(NULL), CKPT_FMT_NONE);
	CHECK_STR(ckpt_format_name(CKPT_FMT_NPY), "npy");
	for (int v = CKPT_OK; v <= CKPT_IO_ERROR; v++)
		for (int w = v + 1; w <= CKPT_IO_ERROR; w++)
			CHECK(strcmp(ckpt_strerror(v), ckpt_strerror(w)));
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/*
 * A one-member zip in memory: @data stored (method 0) or raw-deflated
 * (method 8); @usize_delta is added to the size the directory declares.
 */
static unsigned char *make_zip(const char *name, const unsigned char *data,
			       size_t n, int method, long usize_delta,
			       size_t *outlen)
{
	size_t nl = strlen(name), cmax = n + n / 100 + 1024, clen = n;
	unsigned char *z = malloc(30 + nl + cmax + 46 + nl + 22), *cd;
	unsigned char *d = z + 30 + nl;
	uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
	z_stream zs;

	if (method == 8) {
		memset(&zs, 0, sizeof(zs));
		deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8,
			     Z_DEFAULT_STRATEGY);
		zs.next_in = (unsigned char *)data;
		zs.avail_in = (uInt)n;
		zs.next_out = d;
		zs.avail_out = (uInt)cmax;
		CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
		clen = zs.total_out;
		deflateEnd(&zs);
	} else {
		memcpy(d, data, n);
	}
	memset(z, 0, 30);
	memcpy(z, "PK\3\4", 4);
	put_le(z + 4, 20, 2);
	put_le(z + 8, (uint64_t)method, 2);
	put_le(z + 14, crc, 4);
	put_le(z + 18, clen, 4);
	put_le(z + 22, n, 4);
	put_le(z + 26, nl, 2);
	memcpy(z + 30, name, nl);
	cd = d + clen;
	memset(cd, 0, 46);
	memcpy(cd, "PK\1\2", 4);
	put_le(cd + 6, 20, 2);
	put_le(cd + 10, (uint64_t)method, 2);
	put_le(cd + 16, crc, 4);
	put_le(cd + 20, clen, 4);
	put_le(cd + 24, (uint64_t)((long)n + usize_delta), 4);
	put_le(cd + 28, nl, 2);
	memcpy(cd + 46, name, nl);
	memset(cd + 46 + nl, 0, 22);
	memcpy(cd + 46 + nl, "PK\5\6", 4);
	put_le(cd + 46 + nl + 8, 1, 2);
	put_le(cd + 46 + nl + 10, 1, 2);
	put_le(cd + 46 + nl + 12, 46 + nl, 4);
	put_le(cd + 46 + nl + 16, (uint64_t)(cd - z), 4);
	*outlen = (size_t)(cd - z) + 46 + nl + 22;
	return z;
}

/* Entries bigger than the 1 MiB read chunk and the inflate buffer. */
static void test_big_entries(void)
{
	static const char hdr[] = "{'descr': '<u4', 'fortran_order': False, "
				  "'shape': (786432,), }";
	size_t n = 128 + 786432 * 4, zlen;
	unsigned char *npy = calloc(1, n), *z;
	uint32_t x = 12345;
	char d[512];
	size_t i;

	memcpy(npy, "\x93NUMPY\x01\x00", 8);
	put_le(npy + 8, 118, 2);
	memset(npy + 10, ' ', 118);
	memcpy(npy + 10, hdr, sizeof(hdr) - 1);
	npy[127] = '\n';
	for (i = 128; i < n; i++) {	/* incompressible: xorshift */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		npy[i] = (unsigned char)x;
	}
	CHECK_ERR(verify_mem("a.npy", npy, n, 0, d, sizeof(d)), CKPT_OK);

	z = make_zip("a.npy", npy, n, 0, 0, &zlen);
	CHECK_ERR(verify_mem("x.npz", z, zlen, 0, d, sizeof(d)), CKPT_OK);
	z[30 + 5 + 2000000] ^= 1;
	CHECK_ERR(verify_mem("x.npz", z, zlen, 0, d, sizeof(d)), CKPT_BAD_CRC);
	free(z);

	z = make_zip("a.npy", npy, n, 8, 0, &zlen);
	CHECK(zlen > (1U << 20) + 100);
	CHECK_ERR(verify_mem("x.npz", z, zlen, 0, d, sizeof(d)), CKPT_OK);
	z[zlen / 2] ^= 0x10;
	CHECK(verify_mem("x.npz", z, zlen, 0, d, sizeof(d)) != CKPT_OK);
	free(z);

	/* The directory says fewer bytes than the stream inflates to. */
	z = make_zip("a.npy", npy, n, 8, -1, &zlen);
	CHECK_ERR(verify_mem("x.npz", z, zlen, 0, d, sizeof(d)), CKPT_BAD_CRC);
	CHECK(strstr(d, "past its declared") != NULL);
	free(z);
	/* ... or more: the member's .npy would hold one byte too many. */
	z = make_zip("a.npy", npy, n, 8, 1, &zlen);
	CHECK_ERR(verify_mem("x.npz", z, zlen, 0, d, sizeof(d)), CKPT_BAD_CRC);
	free(z);
	free(npy);
}

int main(void)
{
	find_fixtures();
	test_fixtures();
	test_fixtures_listed();
	test_prefixes_and_flips();
	test_io_errors();
	test_safetensors_hostile();
	test_npy_hostile();
	test_json_and_dispatch();
	test_big_entries();
	return CHECK_DONE();
}
