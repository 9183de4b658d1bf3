/*
 * fetch.c - the block fetcher (see fetch.h).
 *
 * DESIGN
 * A job is one block of one file version, keyed by (fid, blk) in a small
 * hash table. States: QUEUED -> RUNNING -> DONE | FAILED. A DONE job keeps
 * its bytes until the writer thread has committed them to the store and
 * taken the job out of the table; only then do readers go to the store.
 * Because removal happens strictly after the commit, a reader that checks
 * the table first and the store second (in a read transaction begun after
 * that check) can never miss a block that was fetched: it sees either the
 * job or the committed block. Failed jobs leave the table at once, so the
 * next read retries.
 *
 * Two queues feed the workers: demand jobs (a reader is waiting) always go
 * before read-ahead jobs. Read-ahead is scheduled only while the bytes held
 * by jobs stay under max_inflight, which bounds memory however fast the
 * network is compared to the disk.
 *
 * Locking: one mutex (f->mu) guards the table, queues, job states and
 * counters. Nothing blocks on I/O while holding it.
 *
 * Eviction can remove a committed block between pass 1 (it was in the
 * store) and pass 3 (reply from the store) of a read. The read then starts
 * over, bounded (READ_ATTEMPTS, one deadline for all of them): the second
 * pass finds the block missing and fetches it, so a reader never sees
 * that race as an error.
 *
 * Clocks: waits use CLOCK_MONOTONIC (condition variables set up for it);
 * only the access times written to the store for LRU are wall-clock.
 *
 * Copies: a run of blocks fetched with one request (S3) is read straight
 * into the blocks' buffers (remote_preadv), which come from a pool: a
 * fresh 1 MiB malloc is a fresh mapping whose page faults and zeroing
 * cost more than the copy. The writer commits up to WRITE_BATCH blocks per
 * transaction: the commit's fdatasync, not the copy into LMDB, is what a
 * cold read waits for, and a larger batch pays it less often while the
 * workers fill the rest of max_inflight. Measured (1 GiB from S3 on
 * loopback, one run, medians of 4): 24 MiB in flight / 16 per commit 274
 * MiB/s and 45 MiB peak RssAnon; 32 / 16: 283 MiB/s, 55 MiB; 48 / 32: 299
 * MiB/s, 87 MiB. The middle one is the default (RSS under 64 MiB). The
 * bound on memory is max_inflight (every job in the table: fetcher.held)
 * plus the pool's idle buffers (POOL_MAX MiB, kept), blocks a FUSE reply
 * still references, LMDB's dirty copies of one batch (WRITE_BATCH MiB)
 * and curl's receive buffers (512 KiB per S3 connection).
 * store.c says why commits still flush their data (no MDB_NOSYNC).
 *
 * Checksums: every peek checks the block's CRC32C (store.c). A block that
 * fails it is treated as missing: warm_read() leaves it to cold_read(),
 * whose pass 1 fetches it again where the file's remote still has it (the
 * commit replaces block and record; nothing is deleted first, see
 * bad_block). With no remote (an archive, the box gone) nothing else has
 * the bytes: the read fails with EIO and a warning names the block; the
 * bad block is kept, so the evidence stays and nothing that still refers
 * to it changes (the store is the archive). Wrong bytes are never served.
 * Read-ahead (schedule_ahead) only asks whether a block is there; a bad
 * one is repaired when a reader reaches it.
 *
 * Rejected: fetching straight from the FUSE thread (no overlap between
 * requests, no read-ahead) and one writer transaction per block (an fsync
 * per MiB).
 */
#include "fetch.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "evict.h"
#include "log.h"
#include "remote.h"
#include "rpath.h"
#include "stats.h"

#define NBUCKETS 1024
#define WRITE_BATCH 16		/* blocks per commit (see DESIGN) */
/* Buffers kept for reuse: a fresh 1 MiB malloc is a fresh mapping, and
 * faulting in and zeroing its pages cost more than the copy into it. */
#define POOL_MAX 32
#define COALESCE_MAX 8		/* blocks fetched with one request */
#define READ_ATTEMPTS 4		/* reads started over after an eviction */
/* Sequential bytes before read-ahead starts (fetch.h: fetch_stream). */
#define RA_MIN_RUN (4 * (uint64_t)STORE_BLOCK_SIZE)
#define RA_MIN_WINDOW 4
#define READ_PROBLEMS 16	/* read problems kept for .error */		/* blocks: the first window of a run */

enum job_state { J_QUEUED, J_RUNNING, J_DONE, J_FAILED };

struct job {
	uint8_t fid[STORE_FID_LEN];
	uint64_t blk;
	struct remote *remote;
	char *path;
	char *plat;		/* owner, for the eviction record */
	char *id;
	size_t len;		/* expected bytes */
	struct xfer_attr version;	/* size and mtime of the file version */
	enum job_state state;
	int err;
	void *data;
	int refs;
	bool in_table;
	struct job *hnext;
	struct job *qnext;
};

struct jobq {
	struct job *head, *tail;
};

struct fetcher {
	struct fetcher_params p;
	pthread_mutex_t mu;
	/* Held for a whole eviction pass (its pin decisions and deletes);
	 * see fetch_evict_barrier(). */
	pthread_mutex_t evict_mu;
	pthread_cond_t work_cv;		/* workers: a job was queued */
	pthread_cond_t done_cv;		/* readers: a job finished */
	pthread_cond_t write_cv;	/* writer: a block to write */
	pthread_cond_t flushed_cv;	/* flushers: the queue ran dry */
	int writing;			/* batches being committed */
	struct job *table[NBUCKETS];
	struct jobq demand, ahead, writeq;
	bool stop;
	pthread_t *workers;
	int nworkers;
	pthread_t writer;
	bool writer_started;
	struct fetch_stats st;
	/* Recycled block buffers: a fresh 1 MiB malloc is an mmap and 256
	 * page faults; reusing buffers takes that off every block. */
	/* The last open of a few directories being walked (fetch_walk_step):
	 * a hash of the directory's name, the file's index, when. */
	struct { uint64_t dir; size_t index; int64_t at; } walks[8];
	/* Bytes of every job in the table: queued, being fetched, or
	 * fetched and not yet committed. Read-ahead keeps it under
	 * max_inflight; demand reads may pass it (a reader is waiting). */
	uint64_t held;
	void *pool[POOL_MAX];
	int npool;
	unsigned long write_errors;	/* failed commits (ENOSPC...) */
	/* Files with an eviction record, and when they were last read. */
	struct known *known;
	size_t nknown, capknown;
	uint64_t since_pass;		/* bytes written since eviction */
	bool over;			/* the last pass left it over */
	/* The last read problems that no remote could mend (a block
	 * failing its checksum in an archive), for the owner's .error. */
	struct {
		char owner[256];	/* "PLAT\nID" */
		char msg[1280];
	} problems[READ_PROBLEMS];
	unsigned nproblem;		/* next slot */
};

struct known {
	uint8_t fid[STORE_FID_LEN];
	char *plat;
	char *id;
	int64_t atime;		/* last read we know of, wall ms (stored) */
	int64_t recorded;	/* atime the store has, ms; 0: none */
	int64_t hot_at;		/* last read, monotonic ms */
};

void (*fetch_test_between_passes)(struct fetch_file *ff);

/* Wall-clock ms: only for access times kept in the store across runs. */
static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The CLOCK_MONOTONIC time @ms from now, for pthread_cond_timedwait on a
 * condition variable made by cond_init_mono(). */
static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

#define HOT_MS 5000	/* a file read this recently is never evicted */

/* ---- pure parts ----------------------------------------------------------- */

void fetch_file_id(uint8_t fid[STORE_FID_LEN], const char *platform,
		   const char *id, const char *path, uint64_t size,
		   int64_t mtime, const char *etag)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char num[64];
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c)
		rgt_die("out of memory");
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, platform, strlen(platform) + 1);
	EVP_DigestUpdate(c, id, strlen(id) + 1);
	EVP_DigestUpdate(c, path, strlen(path) + 1);
	int n = snprintf(num, sizeof(num), "%llu%c%lld",
			 (unsigned long long)size, 0, (long long)mtime);
	EVP_DigestUpdate(c, num, n + 1);
	if (etag && *etag) {
		EVP_DigestUpdate(c, "etag", 5);
		EVP_DigestUpdate(c, etag, strlen(etag) + 1);
	}
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	memcpy(fid, md, STORE_FID_LEN);
}

int fetch_block_range(uint64_t off, uint64_t len, uint64_t size,
		      uint64_t *first, uint64_t *last)
{
	if (off >= size || len == 0)
		return -ENODATA;
	if (len > size - off)
		len = size - off;
	*first = off >> STORE_BLOCK_SHIFT;
	*last = (off + len - 1) >> STORE_BLOCK_SHIFT;
	return 0;
}

static size_t block_len(uint64_t size, uint64_t blk)
{
	uint64_t start = blk << STORE_BLOCK_SHIFT;
	uint64_t left = size - start;
	return left < STORE_BLOCK_SIZE ? (size_t)left : STORE_BLOCK_SIZE;
}

int fetch_file_init(struct fetch_file *ff, struct remote *r,
		    const char *platform, const char *id, const char *path,
		    uint64_t size, int64_t mtime, const char *etag)
{
	if (etag && strlen(etag) >= sizeof(ff->etag))
		return -EINVAL;
	ff->remote = r;
	ff->path = strdup(path);
	ff->plat = strdup(platform);
	ff->id = strdup(id);
	if (!ff->path || !ff->plat || !ff->id) {
		fetch_file_cleanup(ff);
		return -ENOMEM;
	}
	ff->size = size;
	ff->mtime = mtime;
	snprintf(ff->etag, sizeof(ff->etag), "%s", etag ? etag : "");
	fetch_file_id(ff->fid, platform, id, path, size, mtime, ff->etag);
	return 0;
}

void fetch_file_cleanup(struct fetch_file *ff)
{
	free(ff->path);
	free(ff->plat);
	free(ff->id);
	ff->path = ff->plat = ff->id = NULL;
}

void fetch_stream_init(struct fetch_stream *s)
{
	pthread_mutex_init(&s->mu, NULL);
	s->started = false;
	s->gen = 0;
	s->run_start = 0;
	s->next_off = 0;
	s->ra_upto = 0;
}

void fetch_stream_cleanup(struct fetch_stream *s)
{
	pthread_mutex_destroy(&s->mu);
}

/* ---- table and queues (f->mu held) ------------------------------------------ */

static unsigned bucket(const uint8_t *fid, uint64_t blk)
{
	uint64_t h;
	memcpy(&h, fid, sizeof(h));
	h ^= blk * 0x9E3779B97F4A7C15ull;
	return (unsigned)(h % NBUCKETS);
}

static struct job *table_find(struct fetcher *f, const uint8_t *fid,
			      uint64_t blk)
{
	for (struct job *j = f->table[bucket(fid, blk)]; j; j = j->hnext)
		if (j->blk == blk && !memcmp(j->fid, fid, STORE_FID_LEN))
			return j;
	return NULL;
}

static void table_remove(struct fetcher *f, struct job *j)
{
	if (!j->in_table)
		return;
	struct job **pp = &f->table[bucket(j->fid, j->blk)];
	while (*pp && *pp != j)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = j->hnext;
	j->in_table = false;
	f->held -= j->len;
}

/* Drop @n references; the last one frees the job. */
static void unref_n(struct fetcher *f, struct job *j, int n)
{
	j->refs -= n;
	if (j->refs)
		return;
	if (j->data) {
		f->st.inflight -= j->len;
		if (f->npool < POOL_MAX)
			f->pool[f->npool++] = j->data;
		else
			free(j->data);
	}
	free(j->path);
	free(j->plat);
	free(j->id);
	free(j);
}

static void unref(struct fetcher *f, struct job *j)
{
	unref_n(f, j, 1);
}

static void enqueue(struct jobq *q, struct job *j)
{
	j->qnext = NULL;
	if (q->tail)
		q->tail->qnext = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *dequeue(struct jobq *q)
{
	struct job *j = q->head;
	if (j) {
		q->head = j->qnext;
		if (!q->head)
			q->tail = NULL;
	}
	return j;
}

/* New queued job, in the table, one reference for the queue. */
static struct job *job_new(struct fetcher *f, const struct fetch_file *ff,
			   uint64_t blk, bool demand)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->path = strdup(ff->path);
	j->plat = strdup(ff->plat);
	j->id = strdup(ff->id);
	if (!j->path || !j->plat || !j->id) {
		free(j->path);
		free(j->plat);
		free(j->id);
		free(j);
		return NULL;
	}
	memcpy(j->fid, ff->fid, STORE_FID_LEN);
	j->blk = blk;
	j->remote = ff->remote;
	j->len = block_len(ff->size, blk);
	j->version.size = ff->size;
	j->version.mtime = ff->mtime;
	memcpy(j->version.etag, ff->etag, sizeof(j->version.etag));
	j->state = J_QUEUED;
	j->refs = 2;	/* table + queue */
	j->in_table = true;
	f->held += j->len;
	unsigned b = bucket(j->fid, blk);
	j->hnext = f->table[b];
	f->table[b] = j;
	enqueue(demand ? &f->demand : &f->ahead, j);
	pthread_cond_signal(&f->work_cv);
	return j;
}

/* ---- threads ------------------------------------------------------------------ */

/*
 * Unlink from @q the queued job for block @blk of the same file version as
 * @j (same fid, same remote), if there is one.
 */
static struct job *take_next(struct jobq *q, const struct job *j,
			     uint64_t blk)
{
	struct job *prev = NULL;
	for (struct job *k = q->head; k; prev = k, k = k->qnext) {
		if (k->blk != blk || k->remote != j->remote ||
		    memcmp(k->fid, j->fid, STORE_FID_LEN))
			continue;
		if (prev)
			prev->qnext = k->qnext;
		else
			q->head = k->qnext;
		if (q->tail == k)
			q->tail = prev;
		return k;
	}
	return NULL;
}

/* One job's outcome, under f->mu: @data (owned) on success, or @err. */
static void finish_job(struct fetcher *f, struct job *j, void *data,
		       ssize_t got)
{
	int drop = 1;	/* the queue's */
	if (got < 0) {
		if (data && f->npool < POOL_MAX)
			f->pool[f->npool++] = data;
		else
			free(data);
		j->state = J_FAILED;
		j->err = (int)got;
		table_remove(f, j);
		drop++;		/* and the table's */
	} else {
		j->data = data;
		j->state = J_DONE;
		f->st.inflight += j->len;
		if (f->st.inflight > f->st.inflight_peak)
			f->st.inflight_peak = f->st.inflight;
		f->st.blocks_fetched++;
		f->st.bytes_fetched += j->len;
		stats_fetched(remote_transport(j->remote), j->len);
		j->refs++;	/* the write queue's */
		enqueue(&f->writeq, j);
		pthread_cond_signal(&f->write_cv);
	}
	unref_n(f, j, drop);
}

/* Read @len bytes at @off of @j's file into @buf: exactly, or -errno. */
static ssize_t read_exact(struct job *j, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = remote_pread(j->remote, j->path, (char *)buf + got,
					 len - got, off + got, &j->version);
		if (n < 0)
			return n;
		if (n == 0)
			/* Shorter than its listed size: the file changed
			 * under us; never cache a mix. */
			return -EIO;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* read_exact into @cnt buffers totalling @len (a run of blocks). */
static ssize_t read_exact_v(struct job *j, struct iovec *iov, int cnt,
			    size_t len, uint64_t off)
{
	size_t got = 0;
	int first = 0;
	while (got < len) {
		ssize_t n = remote_preadv(j->remote, j->path, iov + first,
					  cnt - first, off + got, &j->version);
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;	/* shorter than listed: see read_exact */
		got += (size_t)n;
		/* a short read: go on from where it stopped */
		for (size_t adv = (size_t)n; adv && first < cnt;) {
			if (adv < iov[first].iov_len) {
				iov[first].iov_base =
					(char *)iov[first].iov_base + adv;
				iov[first].iov_len -= adv;
				break;
			}
			adv -= iov[first].iov_len;
			first++;
		}
	}
	return (ssize_t)got;
}

/*
 * Workers. Where the transport wants it (remote_request_blocks: S3), a
 * job whose next blocks of the same version are queued too takes them
 * along and fetches the run with one request: an S3 GET costs a round trip
 * and the server's per-request work, which a sequential reader should pay
 * once per run, not once per MiB. SFTP keeps one block per request: its
 * channels are window-bound, and parallel sessions are what scales there.
 */
static void *worker_main(void *arg)
{
	struct fetcher *f = arg;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		struct job *j;
		while (!f->stop && !f->demand.head && !f->ahead.head)
			pthread_cond_wait(&f->work_cv, &f->mu);
		if (f->stop)
			break;
		j = dequeue(&f->demand);
		if (!j)
			j = dequeue(&f->ahead);
		j->state = J_RUNNING;
		struct job *run[COALESCE_MAX];
		int nrun = 1;
		size_t total = j->len;
		run[0] = j;
		int most = remote_request_blocks(j->remote);
		if (most > COALESCE_MAX)
			most = COALESCE_MAX;
		while (nrun < most && run[nrun - 1]->len == STORE_BLOCK_SIZE) {
			uint64_t nb = run[nrun - 1]->blk + 1;
			struct job *k = take_next(&f->demand, j, nb);
			if (!k)
				k = take_next(&f->ahead, j, nb);
			if (!k)
				break;
			k->state = J_RUNNING;
			run[nrun++] = k;
			total += k->len;
		}
		void *data[COALESCE_MAX] = { 0 };
		for (int i = 0; i < nrun; i++)
			data[i] = f->npool ? f->pool[--f->npool] : NULL;
		pthread_mutex_unlock(&f->mu);

		ssize_t got = 0;
		for (int i = 0; i < nrun && !got; i++)
			if (!data[i] && !(data[i] = malloc(STORE_BLOCK_SIZE)))
				got = -ENOMEM;
		uint64_t off = j->blk << STORE_BLOCK_SHIFT;
		if (!got && nrun == 1) {
			got = read_exact(j, data[0], j->len, off);
		} else if (!got) {
			/* one request, straight into the blocks */
			struct iovec iov[COALESCE_MAX];
			for (int i = 0; i < nrun; i++)
				iov[i] = (struct iovec){ data[i], run[i]->len };
			got = read_exact_v(j, iov, nrun, total, off);
		}

		pthread_mutex_lock(&f->mu);
		for (int i = 0; i < nrun; i++)
			finish_job(f, run[i], data[i], got < 0 ? got : 0);
		pthread_cond_broadcast(&f->done_cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* The entry of @fid (f->mu held), or NULL. Linear: one per cached file,
 * looked up once per read and per written batch. */
static struct known *known_find(struct fetcher *f, const uint8_t *fid)
{
	for (size_t i = 0; i < f->nknown; i++)
		if (!memcmp(f->known[i].fid, fid, STORE_FID_LEN))
			return &f->known[i];
	return NULL;
}

static struct known *known_add(struct fetcher *f, const uint8_t *fid,
			       const char *plat, const char *id)
{
	if (f->nknown == f->capknown) {
		size_t nc = f->capknown ? f->capknown * 2 : 64;
		struct known *nv = realloc(f->known, nc * sizeof(*nv));
		if (!nv)
			return NULL;
		f->known = nv;
		f->capknown = nc;
	}
	struct known *k = &f->known[f->nknown];
	memcpy(k->fid, fid, STORE_FID_LEN);
	k->plat = strdup(plat);
	k->id = strdup(id);
	if (!k->plat || !k->id) {
		free(k->plat);
		free(k->id);
		return NULL;
	}
	k->atime = now_ms();
	k->hot_at = mono_ms();
	k->recorded = 0;
	f->nknown++;
	return k;
}

/* A read of @ff: remember when (for LRU), at minute resolution. */
static void note_read(struct fetcher *f, const struct fetch_file *ff)
{
	if (!f->p.cache_size)
		return;
	int64_t now = now_ms(), mono = mono_ms();
	pthread_mutex_lock(&f->mu);
	struct known *k = known_find(f, ff->fid);
	if (!k)
		k = known_add(f, ff->fid, ff->plat, ff->id);
	if (k) {
		k->atime = now;
		k->hot_at = mono;
	}
	pthread_mutex_unlock(&f->mu);
}

/* A pinned owner's file is outside the bound; one being read is kept. */
static enum evict_class keep_file(void *arg, const uint8_t *fid,
				  const char *plat, const char *id)
{
	struct fetcher *f = arg;
	if (f->p.pinned && f->p.pinned(f->p.pinned_arg, plat, id))
		return EVICT_PINNED;
	pthread_mutex_lock(&f->mu);
	struct known *k = known_find(f, fid);
	bool hot = k && mono_ms() - k->hot_at < HOT_MS;
	pthread_mutex_unlock(&f->mu);
	return hot ? EVICT_HOT : EVICT_OK;
}

/*
 * Writer thread, after a commit (f->mu not held): write the eviction
 * records that are new or a minute stale, then evict if enough was added.
 */
static void account(struct fetcher *f, uint64_t written)
{
	struct { uint8_t fid[STORE_FID_LEN]; char *plat, *id; int64_t at; } *todo;
	size_t n = 0;

	pthread_mutex_lock(&f->mu);
	f->since_pass += written;
	todo = calloc(f->nknown ? f->nknown : 1, sizeof(*todo));
	for (size_t i = 0; todo && i < f->nknown; i++) {
		struct known *k = &f->known[i];
		/* at most once a second per file: each record is a commit */
		if (k->recorded && k->atime - k->recorded < 1000)
			continue;
		memcpy(todo[n].fid, k->fid, STORE_FID_LEN);
		todo[n].plat = strdup(k->plat);
		todo[n].id = strdup(k->id);
		todo[n].at = k->atime;
		k->recorded = k->atime;
		n++;
	}
	bool pass = f->over ||
		    f->since_pass >= (f->p.cache_size / 8 < (64u << 20) ?
					      f->p.cache_size / 8 + 1 :
					      (64u << 20));
	if (pass)
		f->since_pass = 0;
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < n; i++) {
		if (todo[i].plat && todo[i].id)
			evict_record(f->p.store, todo[i].fid, todo[i].plat,
				     todo[i].id, todo[i].at);
		free(todo[i].plat);
		free(todo[i].id);
	}
	free(todo);
	if (pass) {
		bool over = false;
		pthread_mutex_lock(&f->evict_mu);
		int64_t rc = evict_pass(f->p.store, f->p.cache_size, keep_file,
					f, &over);
		pthread_mutex_unlock(&f->evict_mu);
		pthread_mutex_lock(&f->mu);
		f->over = over;	/* the writer looks again in a while */
		pthread_mutex_unlock(&f->mu);
		if (rc < 0)
			rgt_log(RGT_WARN, "cache eviction failed: %s",
				strerror((int)-rc));
		if (rc > 0) {
			/* Evicted files lost their records; a file that gets
			 * blocks again must get a record again, or its blocks
			 * could never be evicted. */
			pthread_mutex_lock(&f->mu);
			for (size_t i = 0; i < f->nknown; i++)
				f->known[i].recorded = 0;
			pthread_mutex_unlock(&f->mu);
		}
	}
}

static void *writer_main(void *arg)
{
	struct fetcher *f = arg;
	struct job *batch[WRITE_BATCH];
	struct store_put puts[WRITE_BATCH];

	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (!f->stop && !f->writeq.head) {
			if (!f->over) {
				pthread_cond_wait(&f->write_cv, &f->mu);
				continue;
			}
			/* Over the bound only because files were being read:
			 * look again once they have cooled down. */
			struct timespec ts;
			deadline_in(&ts, 2000);
			if (pthread_cond_timedwait(&f->write_cv, &f->mu, &ts) ==
			    ETIMEDOUT) {
				pthread_mutex_unlock(&f->mu);
				account(f, 0);
				pthread_mutex_lock(&f->mu);
			}
		}
		if (!f->writeq.head)
			break;	/* stopping, and everything is written */
		int n = 0;
		while (n < WRITE_BATCH && f->writeq.head) {
			batch[n] = dequeue(&f->writeq);
			puts[n] = (struct store_put){ batch[n]->fid,
						      batch[n]->blk,
						      batch[n]->data,
						      batch[n]->len };
			n++;
		}
		f->writing++;
		uint64_t written = 0;
		for (int i = 0; f->p.cache_size && i < n; i++) {
			written += batch[i]->len;
			if (!known_find(f, batch[i]->fid))
				known_add(f, batch[i]->fid, batch[i]->plat,
					  batch[i]->id);
		}
		pthread_mutex_unlock(&f->mu);
		int rc = store_blocks_put(f->p.store, puts, n);
		if (!rc && f->p.cache_size)
			account(f, written);
		if (rc)
			rgt_log(RGT_WARN, "cannot write %d blocks to the "
				"cache: %s", n, strerror(-rc));
		pthread_mutex_lock(&f->mu);
		f->writing--;
		if (!rc)
			f->st.blocks_written += n;
		else
			f->write_errors++;
		for (int i = 0; i < n; i++) {
			/* Out of the table only after the commit: see top. */
			int drop = 1;			/* the queue's */
			if (batch[i]->in_table) {
				table_remove(f, batch[i]);
				drop++;			/* the table's */
			}
			unref_n(f, batch[i], drop);
		}
		if (!f->writeq.head && !f->writing)
			pthread_cond_broadcast(&f->flushed_cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int fetcher_new(const struct fetcher_params *p, struct fetcher **out)
{
	struct fetcher *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->p = *p;
	if (f->p.workers <= 0)
		f->p.workers = 8;
	if (!f->p.max_inflight)
		f->p.max_inflight = 32u << 20;
	if (f->p.readahead <= 0)
		f->p.readahead = 16;
	if (f->p.wait_timeout_ms <= 0)
		f->p.wait_timeout_ms = 60000;
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->evict_mu, NULL);
	cond_init_mono(&f->work_cv);
	cond_init_mono(&f->done_cv);
	cond_init_mono(&f->write_cv);
	cond_init_mono(&f->flushed_cv);
	f->workers = calloc(f->p.workers, sizeof(*f->workers));
	if (!f->workers)
		goto fail;
	for (; f->nworkers < f->p.workers; f->nworkers++)
		if (pthread_create(&f->workers[f->nworkers], NULL,
				   worker_main, f))
			goto fail;
	if (pthread_create(&f->writer, NULL, writer_main, f))
		goto fail;
	f->writer_started = true;
	*out = f;
	return 0;
fail:
	fetcher_free(f);
	return -EAGAIN;
}

void fetcher_free(struct fetcher *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_broadcast(&f->work_cv);
	pthread_cond_broadcast(&f->write_cv);
	pthread_mutex_unlock(&f->mu);
	for (int i = 0; i < f->nworkers; i++)
		pthread_join(f->workers[i], NULL);
	if (f->writer_started)
		pthread_join(f->writer, NULL);
	/* Queued jobs nobody ran: drop them. */
	struct job *j;
	while ((j = dequeue(&f->demand)) || (j = dequeue(&f->ahead))) {
		/* No thread is left to hold a reference but the table's and
		 * the queue's: drop both at once. */
		table_remove(f, j);
		unref_n(f, j, 2);
	}
	while (f->npool)
		free(f->pool[--f->npool]);
	for (size_t i = 0; i < f->nknown; i++) {
		free(f->known[i].plat);
		free(f->known[i].id);
	}
	free(f->known);
	free(f->workers);
	pthread_cond_destroy(&f->work_cv);
	pthread_cond_destroy(&f->done_cv);
	pthread_cond_destroy(&f->write_cv);
	pthread_cond_destroy(&f->flushed_cv);
	pthread_mutex_destroy(&f->mu);
	pthread_mutex_destroy(&f->evict_mu);
	free(f);
}

void fetch_evict_barrier(struct fetcher *f)
{
	pthread_mutex_lock(&f->evict_mu);
	pthread_mutex_unlock(&f->evict_mu);
}

int fetch_flush(struct fetcher *f)
{
	struct timespec deadline;
	int rc = 0;

	deadline_in(&deadline, f->p.wait_timeout_ms + 1000);
	pthread_mutex_lock(&f->mu);
	unsigned long errs = f->write_errors;
	while (!rc && (f->writeq.head || f->writing))
		if (pthread_cond_timedwait(&f->flushed_cv, &f->mu,
					   &deadline) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	/* A failed commit since the flush began: the bytes are not kept. */
	if (!rc && f->write_errors != errs)
		rc = -EIO;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int fetch_read_problem(struct fetcher *f, const char *plat, const char *id,
		       char *buf, size_t len)
{
	char owner[256];
	int found = 0;
	snprintf(owner, sizeof(owner), "%s\n%s", plat, id);
	buf[0] = '\0';
	pthread_mutex_lock(&f->mu);
	/* newest first */
	for (unsigned k = 1; k <= READ_PROBLEMS && k <= f->nproblem; k++) {
		unsigned i = (f->nproblem - k) % READ_PROBLEMS;
		if (!strcmp(f->problems[i].owner, owner)) {
			snprintf(buf, len, "%s", f->problems[i].msg);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return found;
}

unsigned long fetch_write_errors(struct fetcher *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned long n = f->write_errors;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fetch_get_stats(struct fetcher *f, struct fetch_stats *out)
{
	pthread_mutex_lock(&f->mu);
	*out = f->st;
	pthread_mutex_unlock(&f->mu);
}

/* ---- reads ----------------------------------------------------------------------- */

/*
 * Block @b of @ff failed its checksum (store_block_peek: -EBADMSG). With a
 * remote: 0, the block is fetched again, and that commit replaces the
 * block and its record; it is never deleted first: the remote may be
 * unreachable (a gone instance keeps its remote), and a mismatch cannot
 * tell bad bytes from a bad record, so the store keeps what it has (and
 * a reader never serves it). Without a remote: -EIO, the read fails.
 * Either way a warning says which block of which file.
 */
static int bad_block(struct fetcher *f, const struct fetch_file *ff,
		     uint64_t b)
{
	char p[1024];
	rpath_escape_s(ff->path, p, sizeof(p));
	if (!ff->remote) {
		rgt_log(RGT_WARN, "%s/%s: cached block %llu of %s fails its "
			"checksum; no remote has it: the read fails (EIO)",
			ff->plat, ff->id, (unsigned long long)b, p);
		pthread_mutex_lock(&f->mu);
		unsigned i = f->nproblem++ % READ_PROBLEMS;
		snprintf(f->problems[i].owner, sizeof(f->problems[i].owner),
			 "%s\n%s", ff->plat, ff->id);
		snprintf(f->problems[i].msg, sizeof(f->problems[i].msg),
			 "read %s: cached block %llu fails its checksum "
			 "(CRC32C) and nothing else has it: reads of it fail "
			 "(EIO)", p, (unsigned long long)b);
		pthread_mutex_unlock(&f->mu);
		return -EIO;
	}
	rgt_log(RGT_WARN, "%s/%s: cached block %llu of %s fails its checksum; "
		"fetching it again", ff->plat, ff->id, (unsigned long long)b,
		p);
	return 0;
}

/*
 * Queue read-ahead for blocks [from, to] not cached or in flight. Returns
 * the first block it did not get to (to + 1 when it went through): it
 * stops where max_inflight is reached, and the next refill starts there.
 */
static uint64_t schedule_ahead(struct fetcher *f, const struct fetch_file *ff,
			       uint64_t from, uint64_t to)
{
	struct store_rtxn *t;
	uint64_t b;
	if (store_rbegin(f->p.store, &t))
		return from;
	for (b = from; b <= to; b++) {
		const void *d;
		size_t l;
		pthread_mutex_lock(&f->mu);
		bool busy = table_find(f, ff->fid, b) != NULL;
		bool full = f->held + STORE_BLOCK_SIZE > f->p.max_inflight;
		pthread_mutex_unlock(&f->mu);
		if (full)
			break;
		if (busy)
			continue;
		/* cached? (nothing is served from here: the reads that
		 * serve it check its pieces) */
		if (!store_block_peek_range(t, ff->fid, b, 0, 0, &d, &l))
			continue;
		pthread_mutex_lock(&f->mu);
		if (!table_find(f, ff->fid, b))
			job_new(f, ff, b, false);
		pthread_mutex_unlock(&f->mu);
	}
	store_rend(t);
	return b;
}

/* FNV-1a of @s: a directory's slot in f->walks. */
static uint64_t walk_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

bool fetch_walk_step(struct fetcher *f, const char *dir, size_t index)
{
	uint64_t h = walk_hash(dir);
	int64_t now = mono_ms();
	bool walking = false;
	pthread_mutex_lock(&f->mu);
	int slot = 0;
	for (int i = 0; i < 8; i++) {
		if (f->walks[i].dir == h) {
			slot = i;
			break;
		}
		if (f->walks[i].at < f->walks[slot].at)
			slot = i;	/* else the least recent one */
	}
	if (f->walks[slot].dir == h && index > f->walks[slot].index &&
	    index <= f->walks[slot].index + 4 &&
	    now - f->walks[slot].at < 10000)
		walking = true;
	f->walks[slot].dir = h;
	f->walks[slot].index = index;
	f->walks[slot].at = now;
	pthread_mutex_unlock(&f->mu);
	return walking;
}

void fetch_prefetch_whole(struct fetcher *f, const struct fetch_file *ff)
{
	if (!ff->size || ff->size > FETCH_WALK_MAX_SIZE)
		return;
	uint64_t last = (ff->size - 1) >> STORE_BLOCK_SHIFT;
	schedule_ahead(f, ff, 0, last);
}

static void readahead(struct fetcher *f, struct fetch_file *ff,
		      struct fetch_stream *s, uint64_t off, size_t len,
		      uint64_t last)
{
	uint64_t nblocks = (ff->size + STORE_BLOCK_SIZE - 1) >>
			   STORE_BLOCK_SHIFT;
	uint64_t from, to;

	pthread_mutex_lock(&s->mu);
	bool seq = s->started && off >= s->run_start &&
		   off <= s->next_off + STORE_BLOCK_SIZE;
	if (!seq) {
		s->started = true;
		s->gen++;
		s->run_start = off;
		s->next_off = off + len;
		s->ra_upto = 0;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (off + len > s->next_off)
		s->next_off = off + len;
	uint64_t run = s->next_off - s->run_start;
	/* A reader that starts at the beginning of the file is copying it
	 * (cp, rsync, cat, a loader): ahead at once. Anywhere else it has
	 * to show a run first. */
	if (run < RA_MIN_RUN && s->run_start != 0) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	/* the window: as many blocks as the run is long (at least
	 * RA_MIN_WINDOW), up to readahead */
	uint64_t window = run >> STORE_BLOCK_SHIFT;
	if (window < RA_MIN_WINDOW)
		window = RA_MIN_WINDOW;
	if (window > (uint64_t)f->p.readahead)
		window = (uint64_t)f->p.readahead;
	from = last + 1 > s->ra_upto ? last + 1 : s->ra_upto;
	to = last + window;
	if (to >= nblocks)
		to = nblocks ? nblocks - 1 : 0;
	/* Refill only when half the window is used, in one go. */
	if (from > to || (s->ra_upto && s->ra_upto > last + window / 2)) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	unsigned gen = s->gen;
	pthread_mutex_unlock(&s->mu);
	uint64_t upto = schedule_ahead(f, ff, from, to);
	/* Only what was queued counts as scheduled: blocks it left for lack
	 * of room are asked again at the next refill, not left as holes.
	 * A run that began meanwhile (another read) keeps its own. */
	pthread_mutex_lock(&s->mu);
	if (s->gen == gen && upto > s->ra_upto)
		s->ra_upto = upto;
	pthread_mutex_unlock(&s->mu);
}

static int warm_read(struct fetcher *f, struct fetch_file *ff, uint64_t off,
		     size_t len, uint64_t first, uint64_t last,
		     fetch_reply_fn reply, void *arg, int *rc_out)
{
	struct iovec iov[8];
	struct store_rtxn *t;
	int n = 0;

	if (last - first + 1 > 8 || store_rbegin(f->p.store, &t))
		return 0;
	for (uint64_t b = first; b <= last; b++) {
		const void *d;
		size_t l;
		uint64_t bstart = b << STORE_BLOCK_SHIFT;
		size_t from = b == first ? (size_t)(off - bstart) : 0;
		size_t to = b == last ? (size_t)(off + len - bstart) :
					block_len(ff->size, b);
		/* the pieces served are checked (a bad one: cold_read) */
		if (store_block_peek_range(t, ff->fid, b, from, to, &d, &l) ||
		    l != block_len(ff->size, b)) {
			store_rend(t);
			return 0;
		}
		iov[n].iov_base = (char *)d + from;
		iov[n].iov_len = to - from;
		n++;
	}
	*rc_out = reply(arg, iov, n);
	store_rend(t);
	pthread_mutex_lock(&f->mu);
	f->st.hits += n;
	stats_add(STATS_CACHE_HITS, (uint64_t)n);
	pthread_mutex_unlock(&f->mu);
	return 1;
}

/*
 * One cold read of blocks [first, last] of @ff, bounded by @deadline. If a
 * block that pass 1 found committed was evicted before pass 3, returns
 * without calling @reply and sets *evicted: the caller starts over.
 */
static int cold_read(struct fetcher *f, struct fetch_file *ff, uint64_t off,
		     size_t len, uint64_t first, uint64_t last,
		     fetch_reply_fn reply, void *arg,
		     const struct timespec *deadline, bool *evicted)
{
	int rc;

	/*
	 * Cold. Pass 1: each block is in flight (take a reference), or
	 * committed (leave it for pass 3), or missing (start a demand job).
	 * The table is checked before the store: see the top of the file.
	 */
	size_t nb = (size_t)(last - first + 1);
	struct job **jobs = calloc(nb, sizeof(*jobs));
	struct iovec *iov = calloc(nb, sizeof(*iov));
	if (!jobs || !iov) {
		free(jobs);
		free(iov);
		return -ENOMEM;
	}
	rc = 0;
	for (size_t i = 0; i < nb && !rc; i++) {
		uint64_t b = first + i;

		pthread_mutex_lock(&f->mu);
		struct job *j = table_find(f, ff->fid, b);
		if (j) {
			j->refs++;
			jobs[i] = j;
		}
		pthread_mutex_unlock(&f->mu);
		if (j)
			continue;
		struct store_rtxn *t;
		const void *d;
		size_t l;
		rc = store_rbegin(f->p.store, &t);
		if (rc)
			break;
		uint64_t bstart = b << STORE_BLOCK_SHIFT;
		size_t from = b == first ? (size_t)(off - bstart) : 0;
		size_t to = b == last ? (size_t)(off + len - bstart) :
					block_len(ff->size, b);
		int prc = store_block_peek_range(t, ff->fid, b, from, to, &d,
						 &l);
		bool cached = !prc && l == block_len(ff->size, b);
		store_rend(t);
		if (cached)
			continue;
		if (prc == -EBADMSG && (rc = bad_block(f, ff, b)))
			break;
		pthread_mutex_lock(&f->mu);
		j = table_find(f, ff->fid, b);
		if (!j)
			j = job_new(f, ff, b, true);
		if (j) {
			j->refs++;
			jobs[i] = j;
		} else {
			rc = -ENOMEM;
		}
		pthread_mutex_unlock(&f->mu);
	}

	/* Pass 2: wait, bounded, for the jobs. */
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < nb && !rc; i++) {
		struct job *j = jobs[i];
		if (!j)
			continue;
		while (!rc && j->state != J_DONE && j->state != J_FAILED) {
			if (pthread_cond_timedwait(&f->done_cv, &f->mu,
						   deadline) == ETIMEDOUT) {
				rc = -ETIMEDOUT;
				rgt_log(RGT_WARN, "read of %s timed out "
					"waiting for block %llu", ff->path,
					(unsigned long long)j->blk);
			}
		}
		if (!rc && j->state == J_FAILED)
			rc = j->err;
	}
	pthread_mutex_unlock(&f->mu);
	if (!rc && fetch_test_between_passes)
		fetch_test_between_passes(ff);

	/*
	 * Pass 3: reply with iovecs straight into the fetched blocks (our
	 * references keep them) and the committed ones (the read
	 * transaction keeps them): no copy on our side.
	 */
	struct store_rtxn *t = NULL;
	if (!rc)
		rc = store_rbegin(f->p.store, &t);
	for (size_t i = 0; i < nb && !rc; i++) {
		uint64_t b = first + i;
		uint64_t bstart = b << STORE_BLOCK_SHIFT;
		size_t from = b == first ? (size_t)(off - bstart) : 0;
		size_t to = b == last ? (size_t)(off + len - bstart) :
					block_len(ff->size, b);
		const void *d;
		size_t l;
		if (jobs[i]) {
			d = jobs[i]->data;
		} else if (store_block_peek_range(t, ff->fid, b, from, to, &d,
						  &l) ||
			   l != block_len(ff->size, b)) {
			*evicted = true;	/* meanwhile: read again */
			break;
		}
		iov[i].iov_base = (char *)d + from;
		iov[i].iov_len = to - from;
	}
	if (!rc && !*evicted)
		rc = reply(arg, iov, (int)nb);
	store_rend(t);
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < nb; i++)
		if (jobs[i])
			unref(f, jobs[i]);
	pthread_mutex_unlock(&f->mu);
	free(jobs);
	free(iov);
	return rc;
}

int fetch_read(struct fetcher *f, struct fetch_file *ff,
	       struct fetch_stream *s, uint64_t off, size_t len,
	       fetch_reply_fn reply, void *arg)
{
	uint64_t first, last;
	struct timespec deadline;
	int rc;

	if (fetch_block_range(off, len, ff->size, &first, &last))
		return reply(arg, NULL, 0);	/* EOF */
	if (len > ff->size - off)
		len = (size_t)(ff->size - off);
	note_read(f, ff);
	if (s)
		readahead(f, ff, s, off, len, last);
	/* One bound for the whole read, however often it starts over. */
	deadline_in(&deadline, f->p.wait_timeout_ms);
	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		bool evicted = false;
		if (warm_read(f, ff, off, len, first, last, reply, arg, &rc))
			return rc;
		rc = cold_read(f, ff, off, len, first, last, reply, arg,
			       &deadline, &evicted);
		if (!evicted)
			return rc;
		RGT_DEBUG_LOG("read of %s at %llu: a block was evicted "
			      "meanwhile, reading again", ff->path,
			      (unsigned long long)off);
	}
	rgt_log(RGT_WARN, "read of %s at %llu: blocks evicted %d times while "
		"being read", ff->path, (unsigned long long)off,
		READ_ATTEMPTS);
	return -EIO;
}
