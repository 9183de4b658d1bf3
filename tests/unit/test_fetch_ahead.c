/*
 * test_fetch_ahead.c - read-ahead fires for sequential readers and never
 * for random ones: 1 MiB reads at random offsets fetch exactly the blocks
 * they touch, a sequential reader (also one whose requests arrive a little
 * out of order, as the kernel sends them in parallel) gets blocks ahead.
 * Real LMDB in a temporary directory, a fake transport that counts what it
 * serves, no network.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fetch.h"
#include "remote.h"
#include "store.h"

#define MIB ((uint64_t)1 << 20)
#define FILE_SIZE (256 * MIB)
#define CHUNK (128 * 1024)	/* one FUSE read request */

static atomic_ullong g_bytes;

static unsigned char pattern(uint64_t off)
{
	return (unsigned char)((off * 7 + off / 4099) & 0xff);
}

static int fake_open(const struct xfer_params *p, struct xfer **out,
		     char *err, size_t errlen);

static void fake_close(struct xfer *x)
{
	free(x);
}

static ssize_t fake_pread(struct xfer *x, const char *path, void *buf,
			  size_t len, uint64_t off,
			  const struct xfer_attr *expect)
{
	(void)x, (void)path, (void)expect;
	if (off >= FILE_SIZE)
		return 0;
	if (len > FILE_SIZE - off)
		len = FILE_SIZE - off;
	for (size_t i = 0; i < len; i++)
		((unsigned char *)buf)[i] = pattern(off + i);
	atomic_fetch_add(&g_bytes, len);
	return (ssize_t)len;
}

static const struct xfer_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.pread = fake_pread,
	.close = fake_close,
};

static int fake_open(const struct xfer_params *p, struct xfer **out,
		     char *err, size_t errlen)
{
	unsigned char key[32];
	memset(key, 'k', sizeof(key));
	int rc = p->hostkey(p->hostkey_arg, "ssh-ed25519", key, sizeof(key),
			    err, errlen);
	if (rc)
		return rc;
	struct xfer *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->ops = &fake_ops;
	*out = x;
	return 0;
}

struct got {
	uint64_t off;
	int bad;
};

static int reply_check(void *arg, const struct iovec *iov, int n)
{
	struct got *g = arg;
	uint64_t off = g->off;
	for (int i = 0; i < n; i++) {
		const unsigned char *p = iov[i].iov_base;
		for (size_t k = 0; k < iov[i].iov_len; k += 4093)
			if (p[k] != pattern(off + k))
				g->bad++;
		off += iov[i].iov_len;
	}
	return 0;
}

static int read_at(struct fetcher *f, struct fetch_file *ff,
		   struct fetch_stream *s, uint64_t off, size_t len)
{
	struct got g = { off, 0 };
	int rc = fetch_read(f, ff, s, off, len, reply_check, &g);
	return rc ? rc : (g.bad ? -EILSEQ : 0);
}

int main(void)
{
	char dir[] = "/tmp/rgtfs-test-fetch-ahead-XXXXXX";
	char err[256], sub[80], cmd[128];
	struct remote *r = NULL;
	struct fetcher *f = NULL;
	struct fetch_file ff;
	struct fetch_stream s;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/c", dir);
	struct store *st;
	CHECK_ERR(store_open(sub, 4ull << 30, &st, err, sizeof(err)), 0);
	struct remote_params rp = {
		.platform = "vastai",
		.id = "1",
		.user = "root",
		.connect_timeout_ms = 1000,
		.io_timeout_ms = 5000,
		.max_sessions = 4,
		.store = st,
		.ops = &fake_ops,
	};
	CHECK_ERR(remote_new(&rp, &r), 0);
	struct rgt_endpoint ep = { .port = 22 };
	snprintf(ep.host, sizeof(ep.host), "127.0.0.1");
	remote_set_endpoints(r, &ep, 1);
	struct fetcher_params fp = {
		.store = st,
		.workers = 4,
		.readahead = 16,
		.wait_timeout_ms = 20000,
	};
	CHECK_ERR(fetcher_new(&fp, &f), 0);

	/* Random 1 MiB reads, each as the kernel sends it (8 requests of
	 * 128 KiB on the file's one stream): only the blocks touched. */
	CHECK_ERR(fetch_file_init(&ff, r, "vastai", "1", "/w/rand", FILE_SIZE,
				  1000, NULL),
		  0);
	fetch_stream_init(&s);
	static unsigned char touched[FILE_SIZE / MIB];
	uint64_t asked = 0, nblocks = 0;
	unsigned seed = 7;
	for (int i = 0; i < 50; i++) {
		uint64_t off = (uint64_t)rand_r(&seed) * 4099 %
			       (FILE_SIZE - MIB);
		for (uint64_t o = off; o < off + MIB; o += CHUNK)
			CHECK_ERR(read_at(f, &ff, &s, o, CHUNK), 0);
		asked += MIB;
		for (uint64_t b = off / MIB; b <= (off + MIB - 1) / MIB; b++)
			if (!touched[b]++)
				nblocks++;
	}
	CHECK_ERR(fetch_flush(f), 0);
	/* A read-ahead job already running when flush returned would still
	 * count; there must be none at all. */
	CHECK(atomic_load(&g_bytes) == nblocks * MIB);
	CHECK(atomic_load(&g_bytes) <= 2 * asked);
	fetch_stream_cleanup(&s);
	fetch_file_cleanup(&ff);

	/* A sequential reader: after RA_MIN_RUN, blocks ahead are fetched
	 * before they are asked for. */
	atomic_store(&g_bytes, 0);
	CHECK_ERR(fetch_file_init(&ff, r, "vastai", "1", "/w/seq", FILE_SIZE,
				  1000, NULL),
		  0);
	fetch_stream_init(&s);
	for (uint64_t o = 0; o < 12 * MIB; o += CHUNK)
		CHECK_ERR(read_at(f, &ff, &s, o, CHUNK), 0);
	CHECK_ERR(fetch_flush(f), 0);
	unsigned long long seq = atomic_load(&g_bytes);
	CHECK(seq > 12 * MIB);
	CHECK(seq <= (12 + 16) * MIB);
	fetch_stream_cleanup(&s);
	fetch_file_cleanup(&ff);

	/* The same with each pair of requests swapped (parallel requests
	 * arriving out of order): still one sequential run. */
	atomic_store(&g_bytes, 0);
	CHECK_ERR(fetch_file_init(&ff, r, "vastai", "1", "/w/swap", FILE_SIZE,
				  1000, NULL),
		  0);
	fetch_stream_init(&s);
	for (uint64_t o = 0; o < 12 * MIB; o += 2 * CHUNK) {
		CHECK_ERR(read_at(f, &ff, &s, o + CHUNK, CHUNK), 0);
		CHECK_ERR(read_at(f, &ff, &s, o, CHUNK), 0);
	}
	CHECK_ERR(fetch_flush(f), 0);
	CHECK(atomic_load(&g_bytes) > 12 * MIB);
	fetch_stream_cleanup(&s);
	fetch_file_cleanup(&ff);

	fetcher_free(f);
	remote_free(r);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	return CHECK_DONE();
}
