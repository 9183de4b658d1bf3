/*
 * test_fetch_retry.c - a block evicted while a read waits for its other
 * blocks is fetched again, not reported (it used to be -EAGAIN, which the
 * FUSE layer turned into EIO). Real LMDB in a temporary directory, a fake
 * transport behind a real struct remote, no network.
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

#define FILE_SIZE (2u * STORE_BLOCK_SIZE + 1000)

static struct store *g_st;
static atomic_int g_preads, g_hook_calls;
static int g_evictions;		/* how many hook calls evict */

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
	atomic_fetch_add(&g_preads, 1);
	if (off >= FILE_SIZE)
		return 0;
	if (len > FILE_SIZE - off)
		len = FILE_SIZE - off;
	for (size_t i = 0; i < len; i++)
		((unsigned char *)buf)[i] = pattern(off + i);
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

/* Between pass 1 (block found committed) and pass 3 (reply from it). */
static void evict_now(struct fetch_file *ff)
{
	if (atomic_fetch_add(&g_hook_calls, 1) < g_evictions)
		store_blocks_delete(g_st, ff->fid);
}

struct got {
	uint64_t off;
	size_t len;
	int calls;
	int bad;
};

static int reply_check(void *arg, const struct iovec *iov, int n)
{
	struct got *g = arg;
	uint64_t off = g->off;
	g->calls++;
	for (int i = 0; i < n; i++) {
		const unsigned char *p = iov[i].iov_base;
		for (size_t k = 0; k < iov[i].iov_len; k++)
			if (p[k] != pattern(off + k))
				g->bad++;
		off += iov[i].iov_len;
	}
	g->len = off - g->off;
	return 0;
}

/* Block 0 committed, blocks 1-2 not: a read of all three finds block 0 in
 * the store in pass 1 and waits for the others in pass 2. */
static void commit_block0(struct fetch_file *ff)
{
	static unsigned char b0[STORE_BLOCK_SIZE];
	for (size_t i = 0; i < sizeof(b0); i++)
		b0[i] = pattern(i);
	struct store_put p = { ff->fid, 0, b0, sizeof(b0) };
	CHECK_ERR(store_blocks_put(g_st, &p, 1), 0);
}

int main(void)
{
	char dir[] = "/tmp/rgtfs-test-fetch-retry-XXXXXX";
	char err[256], sub[80], cmd[128];
	struct remote *r = NULL;
	struct fetcher *f = NULL;
	struct fetch_file ff;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/c", dir);
	CHECK_ERR(store_open(sub, 1ull << 30, &g_st, err, sizeof(err)), 0);
	struct remote_params rp = {
		.platform = "vastai",
		.id = "1",
		.user = "root",
		.connect_timeout_ms = 1000,
		.io_timeout_ms = 1000,
		.max_sessions = 2,
		.store = g_st,
		.ops = &fake_ops,
	};
	CHECK_ERR(remote_new(&rp, &r), 0);
	struct rgt_endpoint ep = { .port = 22 };
	snprintf(ep.host, sizeof(ep.host), "127.0.0.1");
	remote_set_endpoints(r, &ep, 1);
	struct fetcher_params fp = {
		.store = g_st,
		.workers = 2,
		.wait_timeout_ms = 10000,
	};
	CHECK_ERR(fetcher_new(&fp, &f), 0);

	/* Evicted once: the read starts over and fetches block 0 again. */
	CHECK_ERR(fetch_file_init(&ff, r, "vastai", "1", "/w/a", FILE_SIZE,
				  1000, NULL),
		  0);
	commit_block0(&ff);
	fetch_test_between_passes = evict_now;
	g_evictions = 1;
	struct got g = { .off = 0 };
	CHECK_ERR(fetch_read(f, &ff, NULL, 0, FILE_SIZE, reply_check, &g), 0);
	CHECK(g.calls == 1 && g.len == FILE_SIZE && g.bad == 0);
	CHECK(atomic_load(&g_hook_calls) == 2);	/* two passes */
	CHECK(atomic_load(&g_preads) >= 3);	/* block 0 fetched too */
	fetch_file_cleanup(&ff);

	/* Evicted on every pass: bounded, an error, never a second reply. */
	CHECK_ERR(fetch_file_init(&ff, r, "vastai", "1", "/w/b", FILE_SIZE,
				  1000, NULL),
		  0);
	commit_block0(&ff);
	atomic_store(&g_hook_calls, 0);
	g_evictions = 1000;
	/* Block 0 is committed again each time by the writer, so each pass
	 * finds it in the store and loses it to the hook. */
	struct got g2 = { .off = 0 };
	int rc = fetch_read(f, &ff, NULL, 0, FILE_SIZE, reply_check, &g2);
	CHECK(rc == 0 || rc == -EIO);
	CHECK(g2.calls <= 1);
	CHECK(rc != -EAGAIN);
	CHECK(atomic_load(&g_hook_calls) <= 4);
	fetch_test_between_passes = NULL;
	fetch_file_cleanup(&ff);

	fetcher_free(f);
	remote_free(r);
	store_close(g_st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	return CHECK_DONE();
}
