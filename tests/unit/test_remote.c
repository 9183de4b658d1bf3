/*
 * test_remote.c - struct remote against a real LMDB in a temporary
 * directory and a fake transport: the host-key pin under parallel first
 * connects, sessions never closed under the remote's lock (nor by
 * remote_set_endpoints), stale sessions closed when they come back, and
 * the deadline helpers. No network.
 */
#define _GNU_SOURCE	/* pthread_timedjoin_np */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "remote.h"
#include "store.h"

#define THREADS 8
#define ROUNDS 25

struct pin_arg {
	struct remote *r;
	pthread_barrier_t *go;
	int i;
	int same_key;	/* every thread offers key 0 */
	int rc;
};

static void test_key(unsigned char key[32], int i)
{
	memset(key, 'A' + i, 32);
}

static void *pin_thread(void *p)
{
	struct pin_arg *a = p;
	unsigned char key[32];
	char err[512];

	test_key(key, a->same_key ? 0 : a->i);
	pthread_barrier_wait(a->go);
	a->rc = remote_pin_hostkey(a->r, "ssh-ed25519", key, sizeof(key), err,
				   sizeof(err));
	return NULL;
}

static struct remote *new_remote(struct store *st, const char *id)
{
	struct remote_params p = {
		.platform = "vastai",
		.id = id,
		.user = "root",
		.connect_timeout_ms = 1000,
		.io_timeout_ms = 1000,
		.max_sessions = 4,
		.store = st,
	};
	struct remote *r = NULL;
	CHECK_ERR(remote_new(&p, &r), 0);
	return r;
}

/* THREADS first connects at once, each offering its own key. */
static void pin_race(struct store *st, int round, int same_key)
{
	char id[32];
	pthread_t t[THREADS];
	struct pin_arg a[THREADS];
	pthread_barrier_t go;
	int won = 0, refused = 0, winner = -1;

	snprintf(id, sizeof(id), "%s%d", same_key ? "same" : "race", round);
	struct remote *r = new_remote(st, id);
	if (!r)
		return;
	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct pin_arg){ r, &go, i, same_key, 1 };
		pthread_create(&t[i], NULL, pin_thread, &a[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (a[i].rc == 0) {
			won++;
			winner = i;
		} else if (a[i].rc == -EACCES) {
			refused++;
		}
	}
	pthread_barrier_destroy(&go);
	if (same_key) {
		CHECK(won == THREADS);
	} else {
		/* Exactly one key is pinned; every other one is refused. */
		CHECK(won == 1);
		CHECK(refused == THREADS - 1);
		if (won != 1)
			fprintf(stderr, "round %d: %d threads pinned a key\n",
				round, won);
	}
	/* The pin is the winner's, and it sticks. */
	if (winner >= 0) {
		unsigned char key[32], fp_key[32];
		char err[512], want[256], got[256], fp[128];
		test_key(key, same_key ? 0 : winner);
		CHECK_ERR(remote_pin_hostkey(r, "ssh-ed25519", key, 32, err,
					     sizeof(err)),
			  0);
		xfer_key_fingerprint(key, 32, fp, sizeof(fp));
		snprintf(want, sizeof(want), "ssh-ed25519 %s", fp);
		CHECK_ERR(remote_pinned_key(r, got, sizeof(got)), 0);
		CHECK_STR(got, want);
		test_key(fp_key, same_key ? 1 : (winner + 1) % THREADS);
		CHECK_ERR(remote_pin_hostkey(r, "ssh-ed25519", fp_key, 32, err,
					     sizeof(err)),
			  -EACCES);
		CHECK(strstr(err, "host key changed") != NULL);
	}
	remote_free(r);
}

/* ---- a fake transport ------------------------------------------------------ */

struct fake {
	struct xfer base;
	int port;
};

static struct remote *g_r;	/* the remote under test, for close() */
static int g_opens, g_closes, g_closed_locked;
static int g_last_port;
static long g_last_deadline = -1;
static int g_exec_rc;
static pthread_t g_stuck[64];
static int g_nstuck;

static void *probe_lock(void *arg)
{
	char e[64];
	remote_error(arg, e, sizeof(e));	/* takes r->mu */
	return NULL;
}

/* Is the remote's lock free (can another thread take it within 1 s)? */
static int lock_free(struct remote *r)
{
	pthread_t t;
	struct timespec ts;
	if (pthread_create(&t, NULL, probe_lock, r))
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	if (pthread_timedjoin_np(t, NULL, &ts) == 0)
		return 1;
	if (g_nstuck < 64)
		g_stuck[g_nstuck++] = t;	/* joined once the lock is free */
	return 0;
}

static int fake_open(const struct xfer_params *p, struct xfer **out,
		     char *err, size_t errlen);

static void fake_close(struct xfer *x)
{
	/* A real close is network I/O: it must never run under r->mu. */
	if (g_r && !lock_free(g_r))
		g_closed_locked++;
	g_closes++;
	free(x);
}

static int fake_exec(struct xfer *x, const char *cmd, struct buf *out,
		     int *status, long deadline_ms)
{
	g_last_deadline = deadline_ms;
	*status = 0;
	if (g_exec_rc == -ETIMEDOUT && deadline_ms > 0) {
		/* a command still running when its deadline comes */
		struct timespec ts = { deadline_ms / 1000,
				       (deadline_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		snprintf(x->err, sizeof(x->err), "still running");
	}
	if (g_exec_rc)
		return g_exec_rc;
	return buf_append(out, "ok\n", 3);
}

static const struct xfer_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.exec = fake_exec,
	.close = fake_close,
};

static int fake_open(const struct xfer_params *p, struct xfer **out,
		     char *err, size_t errlen)
{
	unsigned char key[32];
	test_key(key, 7);
	int rc = p->hostkey(p->hostkey_arg, "ssh-ed25519", key, sizeof(key),
			    err, errlen);
	if (rc)
		return rc;
	struct fake *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->base.ops = &fake_ops;
	f->port = p->port;
	g_last_port = p->port;
	g_opens++;
	*out = &f->base;
	return 0;
}

static void test_sessions(struct store *st)
{
	struct remote_params p = {
		.platform = "vastai",
		.id = "sessions",
		.user = "root",
		.connect_timeout_ms = 1000,
		.io_timeout_ms = 1000,
		.max_sessions = 4,
		.store = st,
		.ops = &fake_ops,
	};
	struct remote *r = NULL;
	struct rgt_endpoint ep = { .port = 2201 };
	struct xfer *x[3];
	struct buf out;
	int status;

	snprintf(ep.host, sizeof(ep.host), "127.0.0.1");
	CHECK_ERR(remote_new(&p, &r), 0);
	if (!r)
		return;
	g_r = r;
	remote_set_endpoints(r, &ep, 1);
	for (int i = 0; i < 3; i++)
		CHECK_ERR(remote_acquire(r, &x[i]), 0);
	CHECK(g_opens == 3 && g_last_port == 2201);
	remote_release(r, x[0], 0);
	remote_release(r, x[1], 0);	/* two idle, one busy */

	/* The box moved. The poller holds its own lock here: nothing may
	 * be closed (network I/O) inside remote_set_endpoints(). */
	ep.port = 2202;
	remote_set_endpoints(r, &ep, 1);
	CHECK(g_closes == 0);

	/* The busy session comes back: it points at the old port, so it is
	 * closed, and so are the stale idle ones, outside the lock. */
	remote_release(r, x[2], 0);
	CHECK(g_closes == 3);
	CHECK(g_closed_locked == 0);

	/* The next caller connects to the new port. */
	CHECK_ERR(remote_acquire(r, &x[0]), 0);
	CHECK(g_opens == 4 && g_last_port == 2202);
	CHECK(((struct fake *)x[0])->port == 2202);
	CHECK_ERR(remote_acquire(r, &x[1]), 0);

	/* A broken session takes its idle siblings with it: all closed
	 * outside the lock. */
	remote_release(r, x[1], 0);
	remote_release(r, x[0], -ENOTCONN);
	CHECK(g_closes == 5);
	CHECK(g_closed_locked == 0);

	/* remote_exec keeps the idle limit; the bounded one passes what
	 * is left of its deadline to the transport. */
	buf_init(&out, 1024);
	CHECK_ERR(remote_exec(r, "true", &out, &status), 0);
	CHECK(g_last_deadline == 0);
	CHECK_ERR(remote_exec_bounded(r, "true", &out, &status, 5000), 0);
	CHECK(g_last_deadline > 4000 && g_last_deadline <= 5000);
	CHECK(out.len == 3 && !memcmp(out.data, "ok\n", 3));
	CHECK_ERR(remote_exec_bounded(r, "true", &out, &status, 0), -EINVAL);
	CHECK_ERR(remote_exec_bounded(NULL, "true", &out, &status, 100),
		  -EHOSTUNREACH);

	/* A command that overruns its deadline: -ETIMEDOUT, that session
	 * is closed, but the box is not marked dead for the next caller. */
	g_exec_rc = -ETIMEDOUT;
	int opens = g_opens;
	CHECK_ERR(remote_exec_bounded(r, "sleep 100", &out, &status, 300),
		  -ETIMEDOUT);
	g_exec_rc = 0;
	CHECK_ERR(remote_exec_bounded(r, "true", &out, &status, 5000), 0);
	CHECK(g_opens == opens + 1);

	/* The connection died under the command: -EIO, not run again on a
	 * fresh session (a pooled one found dead at once is retried). */
	g_exec_rc = -ENOTCONN;
	opens = g_opens;
	CHECK_ERR(remote_exec_bounded(r, "sha256sum x", &out, &status, 5000),
		  -EIO);
	g_exec_rc = 0;
	CHECK(g_opens <= opens + 1);
	CHECK(g_closed_locked == 0);
	buf_cleanup(&out);

	remote_free(r);
	g_r = NULL;
	for (int i = 0; i < g_nstuck; i++)
		pthread_join(g_stuck[i], NULL);
}

static void test_hash_deadline(void)
{
	/* io_timeout + 60 s + bytes at 25 MB/s, rounded up */
	CHECK_ERR(remote_hash_deadline_ms(0, 20000), 80000);
	CHECK_ERR(remote_hash_deadline_ms(20000000000ull, 20000), 880000);
	CHECK_ERR(remote_hash_deadline_ms(25000000, 0), 61000);
	CHECK_ERR(remote_hash_deadline_ms(1, 0), 60001);
	CHECK_ERR(remote_hash_deadline_ms(25000, 3000), 63001);
	CHECK_ERR(remote_hash_deadline_ms(0, -5), 60000);
	CHECK(remote_hash_deadline_ms(UINT64_MAX, LONG_MAX) == LONG_MAX);
	CHECK(remote_hash_deadline_ms(UINT64_MAX, 0) ==
	      (long)(60000 + UINT64_MAX / 25000 + 1));
	/* more bytes never means less time */
	long prev = 0;
	for (uint64_t b = 0; b < (1ull << 40); b = b * 3 + 12345) {
		long d = remote_hash_deadline_ms(b, 20000);
		CHECK(d >= prev);
		prev = d;
	}
}

int main(void)
{
	char dir[] = "/tmp/rgtfs-test-remote-XXXXXX";
	char err[256], sub[64], cmd[128];
	struct store *st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/c", dir);
	CHECK_ERR(store_open(sub, 1ull << 30, &st, err, sizeof(err)), 0);

	for (int i = 0; i < ROUNDS; i++)
		pin_race(st, i, 0);
	pin_race(st, 0, 1);
	test_sessions(st);
	test_hash_deadline();

	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	return CHECK_DONE();
}
