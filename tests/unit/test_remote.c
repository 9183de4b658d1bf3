/*
 * test_remote.c - struct remote against a real LMDB in a temporary
 * directory: the host-key pin under parallel first connects, and the
 * deadline helpers. No network.
 */
#include <errno.h>
#include <pthread.h>
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

	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	return CHECK_DONE();
}
