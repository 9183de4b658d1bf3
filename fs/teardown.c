/*
 * teardown.c - verified teardown (see teardown.h).
 *
 * DESIGN
 * The Iron Law of the seed guide, as code: no destroy until every
 * checkpoint is copied off the box AND verified (roster, sizes, SHA-256
 * computed on the box, a load check), the proof is on disk, and the user
 * asked (rmdir is the asking). Each step below is a function returning 0
 * or -errno with a reason; teardown_decide() alone picks the next step, and
 * it can only pick TD_DESTROY when the facts gathered *in this run* say
 * pulled, verified, recorded and relisted. Every step is idempotent: a
 * run killed at any point leaves an instance that was not destroyed (or,
 * after the destroy call, a manifest on disk) and can simply be run again;
 * cached blocks are reused, so a second pull resumes.
 *
 * Errno per refusal: EHOSTUNREACH (box not running or not reachable),
 * ENOENT (no checkpoint_dir), ENODATA (it is empty), EINVAL (symlinks or
 * special files), ENOTSUP (no SHA-256 tool on the box), ENOSPC (the cache
 * cannot hold it), EIO (a digest or load check failed, or the destroy call
 * failed), EBUSY (the box changed while we worked: a job is still writing),
 * ETIMEDOUT (the platform did not confirm the destroy in time), EINTR
 * (the rmdir was interrupted before the destroy call).
 *
 * The journal. record writes the archive-to-be ("td" record, phase
 * RECORDED: evidence of nothing). Only after the serve check and the
 * re-list passed does it move to DESTROY_REQUESTED, one synced write just
 * before the destroy call, then to ACCEPTED or UNKNOWN by the call's
 * outcome. A refused run drops a RECORDED journal; a journal past RECORDED
 * is kept until the instance is archived, pins its bytes (life.h) and is
 * the only thing a later rmdir of the gone instance trusts as verified.
 *
 * Names in reports and logs go through rpath_escape(): a newline in a
 * file name cannot forge a line of the report.
 *
 * The report is a text kept in the instance's `teardown` file as the run
 * goes, and stored with the archive when it succeeds.
 */
#include "teardown.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "archive_push.h"
#include "buf.h"
#include "ckpt.h"
#include "cloud.h"
#include "config.h"
#include "fetch.h"
#include "fleet.h"
#include "log.h"
#include "manifest.h"
#include "ops.h"
#include "platform.h"
#include "remote.h"
#include "roster.h"
#include "rpath.h"
#include "stats.h"
#include "store.h"

#define OUT_MAX (64u << 20)	/* bound on one remote command's output */
#define SPACE_MARGIN (64ull << 20)

/* ---- the rule ------------------------------------------------------------- */

static enum td_step decide_step(const struct td_facts *f);

enum td_step teardown_decide(const struct td_facts *f)
{
	enum td_step next = decide_step(f);
	/* An interrupt stops everything up to and including the destroy
	 * call; once that call was made, the run finishes. */
	if (f->interrupted && next <= TD_DESTROY)
		return TD_REFUSED;
	return next;
}

static enum td_step decide_step(const struct td_facts *f)
{
	switch (f->step) {
	case TD_ROSTER:
		return f->rc ? TD_REFUSED : TD_PULL;
	case TD_PULL:
		return f->rc || !f->pulled ? TD_REFUSED : TD_VERIFY;
	case TD_VERIFY:
		return f->rc || !f->verified ? TD_REFUSED : TD_RECORD;
	case TD_RECORD:
		return f->rc || !f->recorded ? TD_REFUSED : TD_SERVE;
	case TD_SERVE:
		return f->rc || !f->served ? TD_REFUSED : TD_RELIST;
	case TD_RELIST:
		/* The only way to TD_DESTROY: every proof of this run, not
		 * just the step before. */
		if (f->rc || !(f->pulled && f->verified && f->recorded &&
			       f->served && f->relisted))
			return TD_REFUSED;
		return f->can_destroy ? TD_DESTROY : TD_ARCHIVE;
	case TD_RESUME:
		return f->rc || !f->resumed || !f->can_destroy ? TD_REFUSED :
								 TD_DESTROY;
	case TD_DESTROY:
		/* Belt and braces: the proofs again, not just the order. */
		if (!(f->pulled && f->verified && f->recorded && f->served &&
		      f->relisted) && !f->resumed)
			return TD_REFUSED;
		/* A call that may have acted is not a refusal: the report
		 * must not say nothing was destroyed. */
		if (f->rc)
			return f->maybe_sent ? TD_FAILED : TD_REFUSED;
		return TD_CONFIRM;
	case TD_CONFIRM:
		return f->rc ? TD_FAILED : TD_ARCHIVE;
	case TD_ARCHIVE:
		return f->rc ? TD_FAILED : TD_DONE;
	default:
		return TD_REFUSED;
	}
}

const char *teardown_step_name(enum td_step s)
{
	static const char *const names[] = {
		"roster", "pull", "verify", "record", "serve", "re-list",
		"resume", "destroy",
		"confirm", "archive", "done", "refused", "failed",
	};
	return s <= TD_FAILED ? names[s] : "?";
}

/* ---- one run ------------------------------------------------------------- */

#define ESC_MAX 512	/* an escaped name in a report line */
#define LIST_DEADLINE_MS (120 * 1000L)	/* find over checkpoint_dir */

struct td {
	struct rgt_ctx *c;
	size_t pi;
	const char *plat;
	const char *id;
	const struct rgt_section *sec;
	struct remote *r;
	struct roster roster;
	struct buf log;		/* the report so far */
	char reason[1024];
	char *manifest;
	char *verified;
	bool have_log;
	struct xfer_attr log_attr;
	char *log_text;			/* the platform's log (no log_path) */
	uint64_t files, bytes;
	struct archive *journal;	/* what record wrote, as loaded back */
	enum archive_phase carried;	/* phase of an earlier run's journal */
	unsigned carried_verbs;		/* and its count (archive.h) */
	size_t first_verb;		/* where step_destroy starts */
	size_t verbs_accepted;		/* destroy[0..this) were accepted */
	bool (*cancelled)(void *arg);
	void *cancel_arg;
	struct platform_caps caps;	/* what the platform can do */
	/*
	 * trust_cloud: the box cannot be reached, so the roster, the bytes
	 * and their digests (MD5 ETags) come from the bucket copy under
	 * cloud_root; the report says so plainly.
	 */
	bool via_cloud;
	int down_state;			/* the state that allowed it */
	struct cloud *cl;
	char cloud_root[PATH_MAX];
	/*
	 * The box hashes while the pull runs (box_hash), and the pull hashes
	 * the bytes as they arrive: digests of roster entry i, "" until
	 * pulled whole. The serve check still reads every byte back through
	 * the archive before any destroy.
	 */
	struct box_hash *bh;
	char (*pulled_sha)[65];
	char (*pulled_md5)[33];
};

/*
 * TEST HOOK, for the fault-matrix tests (tests/integration/
 * test_fault_matrix.py); inert unless both variables are set. With
 * RGTFS_TEST_PAUSE_AT=<step> (a teardown_step_name: roster, pull, verify,
 * record, serve, re-list, destroy, confirm) and RGTFS_TEST_PAUSE_FIFO=<a
 * FIFO's path>, a teardown about to run that step opens the FIFO for
 * reading, which blocks until the test opens it for writing, and reads
 * until the test closes it. No FIFO at the path: no pause. It only waits:
 * it sets no fact, skips no step and no check. Read once per process.
 */
static const char *test_pause_at, *test_pause_fifo;
static pthread_once_t test_pause_once = PTHREAD_ONCE_INIT;

static void test_pause_init(void)
{
	test_pause_at = getenv("RGTFS_TEST_PAUSE_AT");
	test_pause_fifo = getenv("RGTFS_TEST_PAUSE_FIFO");
}

static void test_pause_before(enum td_step s)
{
	pthread_once(&test_pause_once, test_pause_init);
	if (!test_pause_at || !test_pause_fifo ||
	    strcmp(test_pause_at, teardown_step_name(s)))
		return;
	int fd = open(test_pause_fifo, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char b[64];
	while (read(fd, b, sizeof(b)) > 0)
		;
	close(fd);
}

static bool is_cancelled(struct td *t)
{
	return t->cancelled && t->cancelled(t->cancel_arg);
}

/* @name as a report shows it (see rpath_escape). */
static const char *esc(const char *name, char buf[ESC_MAX])
{
	return rpath_escape_s(name, buf, ESC_MAX);
}

static long mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

static void publish(struct td *t, const char *extra)
{
	struct buf b;
	buf_init(&b, 4u << 20);
	buf_appendf(&b, "%s%s", t->log.data ? t->log.data : "",
		    extra ? extra : "");
	fleet_set_teardown(t->c->fleet, t->pi, t->id, b.data ? b.data : "");
	buf_cleanup(&b);
}

static void note(struct td *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct td *t, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_appendf(&t->log, "%s\n", line);
	publish(t, NULL);
}

static int refuse(struct td *t, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct td *t, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);
	return rc;
}

static int interrupted(struct td *t)
{
	return refuse(t, -EINTR, "interrupted before the destroy call");
}

/* The box's path of roster entry @rel: the one joiner (rpath.h). */
static char *abs_path(const struct td *t, const char *rel)
{
	return rpath_join_dup(t->sec->checkpoint_dir, rel);
}

/*
 * Where the bytes of roster entry @rel come from, and so their identity
 * (fetch_file_id): the box's file, or with via_cloud the bucket's object.
 * The one function the pull, the verify and the record use; the record
 * then names the same source (archive_file.src), so the archive serves
 * exactly the blocks that were verified.
 */
struct efile {
	struct remote *r;
	const char *plat, *id;
	char *path;		/* malloc'd */
	const char *etag;
};

static int entry_file(const struct td *t, const char *rel, const char *etag,
		      struct efile *ef)
{
	if (t->via_cloud) {
		/* owned by the instance (its pins keep them), keyed by the
		 * object's path and ETag: as checkpoints/ reads its copy */
		*ef = (struct efile){ cloud_remote(t->cl), t->plat, t->id,
				      rpath_join_dup(t->cloud_root, rel),
				      etag };
	} else {
		*ef = (struct efile){ t->r, t->plat, t->id,
				      abs_path(t, rel), NULL };
	}
	return ef->path ? 0 : -ENOMEM;
}

static int remote_err(struct td *t, int rc, const char *what)
{
	char e[512];
	remote_error(t->r, e, sizeof(e));
	return refuse(t, rc == -EACCES ? -EACCES : -EHOSTUNREACH,
		      "%s: the box cannot be reached (%s)", what,
		      e[0] ? e : strerror(-rc));
}

/* Bytes free on the cache's filesystem; UINT64_MAX when it cannot say. */
static uint64_t cache_avail(struct td *t)
{
	struct statvfs sv;
	if (statvfs(t->c->cfg->cache_dir, &sv))
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* List checkpoint_dir on the box into @out; @step names it in a reason. */
static int list_box(struct td *t, struct roster *out, const char *step)
{
	struct buf cmd, res;
	int status = -1, rc;
	char e1[ESC_MAX];

	buf_init(&cmd, 16384);
	buf_init(&res, OUT_MAX);
	rc = roster_list_cmd(&cmd, t->sec->checkpoint_dir);
	if (!rc)
		rc = remote_exec_bounded(t->r, cmd.data, &res, &status,
					 t->c->cfg->io_timeout_ms +
						 LIST_DEADLINE_MS);
	if (rc) {
		rc = rc == -EFBIG ? refuse(t, -EFBIG, "the roster is larger "
					   "than %u MiB", OUT_MAX >> 20) :
				    remote_err(t, rc, step);
	} else if (status != 0) {
		rc = refuse(t, -ENOENT, "checkpoint_dir %s is missing or "
			    "unreadable on the box (find exited %d)",
			    esc(t->sec->checkpoint_dir, e1), status);
	} else {
		char err[256];
		rc = roster_parse(res.data, res.len, out, err, sizeof(err));
		if (rc)
			rc = refuse(t, -EIO, "%s", err);
	}
	buf_cleanup(&cmd);
	buf_cleanup(&res);
	return rc;
}

/*
 * SHA-256 of every file, computed on the box, each with a deadline that
 * fits its size (a 20 GB file hashes for a minute in silence). Runs on its
 * own thread while the pull runs (box_hash below): it writes only the
 * roster entries' sha256 fields and @why, never the report.
 */
static int hash_fail(char *why, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int hash_fail(char *why, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return rc;
}

static int hash_box(struct td *t, const atomic_bool *stop, char *why,
		    size_t whylen)
{
	struct buf cmd, res;
	char e1[ESC_MAX], re[512];
	int rc = 0;
	buf_init(&cmd, 16384);
	buf_init(&res, 4096);
	for (size_t i = 0; !rc && i < t->roster.n; i++) {
		struct roster_entry *e = &t->roster.v[i];
		int status = -1;
		if (e->type != 'f')
			continue;
		if (is_cancelled(t) || atomic_load(stop)) {
			rc = hash_fail(why, whylen, -EINTR, "interrupted "
				       "before the destroy call");
			break;
		}
		long deadline = remote_hash_deadline_ms(
			e->size, t->c->cfg->io_timeout_ms);
		buf_reset(&cmd);
		buf_reset(&res);
		rc = roster_hash_cmd(&cmd, t->sec->checkpoint_dir, e->path);
		if (!rc)
			rc = remote_exec_bounded(t->r, cmd.data, &res, &status,
						 deadline);
		if (rc == -ETIMEDOUT) {
			rc = hash_fail(why, whylen, -ETIMEDOUT, "hashing %s "
				       "(%" PRIu64 " bytes) on the box did not "
				       "finish within %ld s", esc(e->path, e1),
				       e->size, deadline / 1000);
		} else if (rc) {
			re[0] = '\0';
			remote_error(t->r, re, sizeof(re));
			rc = hash_fail(why, whylen,
				       rc == -EACCES ? -EACCES : -EHOSTUNREACH,
				       "hashing: the box cannot be reached "
				       "(%s)", re[0] ? re : strerror(-rc));
		} else if (status == 127) {
			rc = hash_fail(why, whylen, -ENOTSUP, "the box has no "
				       "SHA-256 tool (sha256sum, shasum, "
				       "openssl, python3)");
		} else if (status) {
			rc = hash_fail(why, whylen, -EIO, "hashing %s on the "
				       "box failed (exit %d)", esc(e->path, e1),
				       status);
		} else if (roster_parse_hash(res.data, res.len, e->sha256)) {
			rc = hash_fail(why, whylen, -EIO, "hashing %s: no "
				       "digest in the answer", esc(e->path, e1));
		}
	}
	buf_cleanup(&cmd);
	buf_cleanup(&res);
	return rc;
}

/*
 * hash_box on a thread of its own, started once the roster is known and
 * joined when the pull is done: the box reads and hashes its files while
 * they cross the network, so a teardown takes the longer of the two and
 * not their sum. Nothing reads a digest before the join.
 */
struct box_hash {
	struct td *t;
	pthread_t th;
	atomic_bool stop;	/* the pull failed: no need to go on */
	atomic_bool failed;	/* the hash failed: the pull stops */
	int rc;
	char why[1024];
};

static void *box_hash_main(void *arg)
{
	struct box_hash *h = arg;
	h->rc = hash_box(h->t, &h->stop, h->why, sizeof(h->why));
	if (h->rc)
		atomic_store(&h->failed, true);
	return NULL;
}

/* The box's hash already failed: the pull need not go on (its refusal
 * is the hash's, box_hash_join). */
static bool box_hash_failed(const struct td *t)
{
	return t->bh && atomic_load(&t->bh->failed);
}

/* Start hashing; without a thread, hash here and now. 0 or a refusal. */
static int box_hash_start(struct td *t)
{
	struct box_hash *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->t = t;
	atomic_init(&h->stop, false);
	atomic_init(&h->failed, false);
	/* A hash holds a session for as long as it runs: with one session
	 * it would starve the pull, so then it runs first, alone. */
	if (t->c->cfg->sessions < 2 ||
	    pthread_create(&h->th, NULL, box_hash_main, h)) {
		int rc = hash_box(t, &h->stop, h->why, sizeof(h->why));
		if (rc)
			rc = refuse(t, rc, "%s", h->why);
		else
			note(t, "roster: SHA-256 of every file computed on "
			     "the box");
		free(h);
		return rc;
	}
	t->bh = h;
	return 0;
}

/* Stop and forget a hash still running (the run ends without a pull). */
static void box_hash_abandon(struct td *t)
{
	struct box_hash *h = t->bh;
	if (!h)
		return;
	atomic_store(&h->stop, true);
	pthread_join(h->th, NULL);
	t->bh = NULL;
	free(h);
}

/*
 * Wait for the box's digests: 0 when every file has one, else the
 * thread's refusal. Safe to call when none was started (via_cloud).
 */
static int box_hash_join(struct td *t)
{
	struct box_hash *h = t->bh;
	if (!h)
		return 0;
	pthread_join(h->th, NULL);
	t->bh = NULL;
	int rc = h->rc;
	if (rc)
		rc = refuse(t, rc, "%s", h->why);
	free(h);
	if (!rc)
		note(t, "roster: SHA-256 of every file computed on the box");
	return rc;
}

/* ---- trust_cloud: the bucket copy stands in for a box that is down -------- */

static int cloud_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct roster_entry *)a)->path,
		      ((const struct roster_entry *)b)->path);
}

/* Every object under @dir of the bucket, recursively, into @out (paths
 * relative to cloud_root). Only a fresh answer counts: a listing the
 * remote serves from memory because the bucket did not answer is not a
 * roster. */
static int cloud_walk(struct td *t, const char *dir, const char *rel,
		      struct roster *out, size_t *cap, int depth)
{
	struct rlisting *l;
	char e1[ESC_MAX];
	if (depth > 64)
		return refuse(t, -EINVAL, "the bucket copy nests deeper than "
			      "64 directories");
	int rc = remote_list(cloud_remote(t->cl), dir, 0, &l);
	if (rc == -ENOENT && !depth)
		return refuse(t, -ENOENT, "the bucket has no copy of %s/%s "
			      "under %s", t->plat, t->id,
			      esc(t->cloud_root, e1));
	if (!rc && l->stale) {
		rlisting_free(l);
		rc = -EHOSTUNREACH;
	}
	if (rc) {
		char e[512];
		cloud_error(t->cl, e, sizeof(e));
		return refuse(t, rc == -EACCES ? -EACCES : -EHOSTUNREACH,
			      "the bucket cannot be listed (%s)",
			      e[0] ? e : strerror(-rc));
	}
	if (l->partial) {
		/* keys that are not names were left out: the roster would
		 * not be every object of the copy */
		char e[512];
		cloud_error(t->cl, e, sizeof(e));
		rlisting_free(l);
		return refuse(t, -EINVAL, "the bucket copy holds keys rgtfs "
			      "cannot map to names, so it cannot be copied "
			      "whole (%s)", e[0] ? e : "keys skipped");
	}
	for (size_t i = 0; !rc && i < l->n; i++) {
		const struct rentry *ent = &l->v[i];
		char *sub = rpath_join_dup(dir, ent->name);
		char *r = *rel ? rpath_join_dup(rel, ent->name) :
				 strdup(ent->name);
		if (!sub || !r) {
			free(sub);
			free(r);
			rc = -ENOMEM;
			break;
		}
		if (out->n >= ROSTER_MAX_ENTRIES) {
			free(sub);
			free(r);
			rc = refuse(t, -EFBIG, "the bucket copy holds more than "
				    "%d entries", ROSTER_MAX_ENTRIES);
			break;
		}
		if (out->n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			struct roster_entry *v = realloc(out->v,
							 nc * sizeof(*v));
			if (!v) {
				free(sub);
				free(r);
				rc = -ENOMEM;
				break;
			}
			out->v = v;
			*cap = nc;
		}
		struct roster_entry *e = &out->v[out->n++];
		memset(e, 0, sizeof(*e));
		e->path = r;
		e->type = S_ISDIR(ent->attr.mode) ? 'd' : 'f';
		e->size = ent->attr.size;
		e->mtime = ent->attr.mtime;
		snprintf(e->etag, sizeof(e->etag), "%s", ent->attr.etag);
		if (e->type == 'd')
			rc = cloud_walk(t, sub, r, out, cap, depth + 1);
		free(sub);
	}
	rlisting_free(l);
	return rc;
}

static int list_cloud(struct td *t, struct roster *out)
{
	size_t cap = 0;
	int rc = cloud_walk(t, t->cloud_root, "", out, &cap, 0);
	if (!rc && out->n)
		qsort(out->v, out->n, sizeof(*out->v), cloud_entry_cmp);
	return rc;
}

/*
 * Is the box really down? The platform, asked afresh, still says @want
 * (stopped, offline, preempted), and a fresh connect to the box fails.
 * 0: down; -EBUSY: up or not in that state (with a reason); other -errno:
 * the platform cannot say.
 */
static int box_still_down(struct td *t, int want)
{
	char err[512] = "";
	bool listed = true;
	int st = RGT_ST_UNKNOWN;
	int rc = fleet_poll_now(t->c->fleet, t->pi, t->id, &listed, err,
				sizeof(err));
	if (rc)
		return refuse(t, -EHOSTUNREACH, "the platform cannot confirm "
			      "the instance is still down (%s)",
			      err[0] ? err : strerror(-rc));
	if (!listed || fleet_instance_state(t->c->fleet, t->pi, t->id, &st) ||
	    st != want)
		return refuse(t, -EBUSY, "the instance is no longer %s (now "
			      "%s): its bucket copy is not what it holds",
			      rgt_state_name(want),
			      listed ? rgt_state_name(st) : "not listed");
	if (t->r) {
		if (!remote_probe(t->r)) {
			return refuse(t, -EBUSY, "the platform says %s, but the "
				      "box answers: it is verified itself, not "
				      "its bucket copy; rmdir again",
				      rgt_state_name(want));
		}
	}
	return 0;
}

/*
 * What the box was last seen holding (listings cached while it ran)
 * against the bucket copy: a file the box had that the copy lacks, or has
 * smaller, or older than the box's own mtime, means the sync never caught
 * up, and the box may hold the only copy. Refuses (-EBUSY).
 */
static int seen_on_box(struct td *t, const char *dir, const char *rel,
		       int depth)
{
	char e1[ESC_MAX];
	struct rlisting *l;
	if (!t->r || depth > 64 ||
	    remote_list_cached(t->r, dir, &l))
		return 0;	/* never seen: nothing to compare */
	int rc = 0;
	for (size_t i = 0; !rc && i < l->n; i++) {
		const struct rentry *b = &l->v[i];
		char *sub = rpath_join_dup(dir, b->name);
		char *r = *rel ? rpath_join_dup(rel, b->name) :
				 strdup(b->name);
		if (!sub || !r) {
			rc = -ENOMEM;
		} else if (S_ISDIR(b->attr.mode)) {
			rc = seen_on_box(t, sub, r, depth + 1);
		} else {
			const struct roster_entry *c = NULL;
			for (size_t k = 0; k < t->roster.n && !c; k++)
				if (!strcmp(t->roster.v[k].path, r))
					c = &t->roster.v[k];
			if (!c || c->type != 'f')
				rc = refuse(t, -EBUSY, "the box was seen with %s, "
					    "which its bucket copy lacks: the "
					    "copy is behind the box",
					    esc(r, e1));
			else if (c->size < b->attr.size ||
				 c->mtime < b->attr.mtime)
				rc = refuse(t, -EBUSY, "the box was seen with a "
					    "%s (%" PRIu64 " bytes, mtime %"
					    PRId64 ") that its bucket copy "
					    "does not have (%" PRIu64 " bytes, "
					    "uploaded %" PRId64 ")", esc(r, e1),
					    b->attr.size, b->attr.mtime,
					    c->size, c->mtime);
		}
		free(sub);
		free(r);
	}
	rlisting_free(l);
	return rc;
}

/* The roster of a box that is down, from its bucket copy (trust_cloud). */
static int roster_from_cloud(struct td *t, int st)
{
	char e1[ESC_MAX];
	t->cl = rgt_cloud(t->c, t->sec->cloud);
	if (!t->cl || !cloud_remote(t->cl) ||
	    cloud_instance_path(t->cl, t->sec->kind, t->id, t->cloud_root,
				sizeof(t->cloud_root))) {
		char e[512] = "";
		if (t->cl)
			cloud_error(t->cl, e, sizeof(e));
		return refuse(t, -EHOSTUNREACH, "the instance is %s and its "
			      "bucket [cloud:%s] cannot be used%s%s",
			      rgt_state_name(st), t->sec->cloud,
			      e[0] ? ": " : "", e);
	}
	/* Only a box that is down, by the platform afresh and by a failed
	 * connect, is taken on the strength of its bucket copy. */
	if (st != RGT_ST_STOPPED && st != RGT_ST_OFFLINE &&
	    st != RGT_ST_PREEMPTED)
		return refuse(t, -EHOSTUNREACH, "the instance is %s: it may be "
			      "up, so its bucket copy does not stand in for "
			      "it, and the box cannot be reached",
			      rgt_state_name(st));
	int rc = box_still_down(t, st);
	if (rc)
		return rc;
	t->down_state = st;
	t->via_cloud = true;
	note(t, "roster: the instance is %s and its box does not answer, so "
	     "the box itself cannot be checked; trust_cloud = yes: verifying "
	     "the bucket copy %s under %s instead", rgt_state_name(st),
	     cloud_where(t->cl), esc(t->cloud_root, e1));
	rc = list_cloud(t, &t->roster);
	if (rc)
		return rc;
	if ((rc = seen_on_box(t, t->sec->checkpoint_dir, "", 0)))
		return rc;
	for (size_t i = 0; i < t->roster.n; i++) {
		const struct roster_entry *e = &t->roster.v[i];
		/* single-part objects only: their ETag is their MD5 */
		bool md5 = e->type != 'f' ||
			   (strlen(e->etag) == 34 && e->etag[0] == '"' &&
			    e->etag[33] == '"' &&
			    strspn(e->etag + 1, "0123456789abcdef") == 32);
		if (!md5)
			return refuse(t, -EIO, "%s: its ETag %s is not an MD5 "
				      "(a multipart upload), and the bucket "
				      "gives no SHA-256: it cannot be verified",
				      esc(e->path, e1), e->etag);
	}
	return 0;
}

static int step_roster(struct td *t)
{
	int st = RGT_ST_UNKNOWN;
	char e1[ESC_MAX];
	int rc = fleet_instance_state(t->c->fleet, t->pi, t->id, &st);
	if (rc)
		return refuse(t, -ENOENT, "no such instance");
	if (st != RGT_ST_RUNNING && t->sec->trust_cloud && t->sec->cloud)
		rc = roster_from_cloud(t, st);
	else if (st != RGT_ST_RUNNING)
		return refuse(t, -EHOSTUNREACH,
			      "the instance is %s: its box cannot be reached, "
			      "so nothing can be verified", rgt_state_name(st));
	else
		rc = list_box(t, &t->roster, "roster");
	if (rc)
		return rc;
	struct buf odd;
	buf_init(&odd, 4096);
	for (size_t i = 0; i < t->roster.n; i++) {
		const struct roster_entry *e = &t->roster.v[i];
		if (e->type != 'f' && e->type != 'd')
			buf_appendf(&odd, "%s%s (%s)", odd.len ? ", " : "",
				    esc(e->path, e1),
				    e->type == 'l' ? "symlink" : "special file");
	}
	if (odd.len) {
		rc = refuse(t, -EINVAL, "checkpoint_dir holds what cannot be "
			    "copied and verified: %s", odd.data);
		buf_cleanup(&odd);
		return rc;
	}
	buf_cleanup(&odd);
	roster_totals(&t->roster, &t->files, &t->bytes);
	if (!t->files)
		return refuse(t, -ENODATA, "checkpoint_dir %s holds no files: "
			      "nothing to copy, so nothing proves the box may "
			      "go", esc(t->sec->checkpoint_dir, e1));
	for (size_t i = 0; i < t->roster.n; i++) {
		const char *p = t->roster.v[i].path;
		size_t l = strlen(p);
		if (t->roster.v[i].type == 'f' && l > 4 &&
		    !strcmp(p + l - 4, ".tmp"))
			note(t, "note: %s looks like a partial write (*.tmp); "
			     "it is copied like any file", esc(p, e1));
	}
	note(t, "roster: %" PRIu64 " files, %" PRIu64 " bytes in %s",
	     t->files, t->bytes,
	     esc(t->via_cloud ? t->cloud_root : t->sec->checkpoint_dir, e1));


	if (!t->via_cloud && t->sec->log_path &&
	    !remote_stat(t->r, t->sec->log_path, 0, &t->log_attr) &&
	    S_ISREG(t->log_attr.mode))
		t->have_log = true;

	/* Will it fit? Archived bytes are never evicted. */
	uint64_t avail = cache_avail(t);
	{
		uint64_t need = t->bytes + (t->have_log ? t->log_attr.size : 0);
		if (avail < need + SPACE_MARGIN)
			return refuse(t, -ENOSPC,
				      "the cache needs %" PRIu64 " MiB for this "
				      "instance and its filesystem has %" PRIu64
				      " MiB free",
				      (uint64_t)((need + SPACE_MARGIN) >> 20),
				      avail >> 20);
	}
	t->pulled_sha = calloc(t->roster.n ? t->roster.n : 1,
			       sizeof(*t->pulled_sha));
	t->pulled_md5 = calloc(t->roster.n ? t->roster.n : 1,
			       sizeof(*t->pulled_md5));
	if (!t->pulled_sha || !t->pulled_md5)
		return -ENOMEM;
	/* the box hashes while the pull runs: joined by step_pull */
	return t->via_cloud ? 0 : box_hash_start(t);
}

/*
 * Record the roster as the listings of checkpoint_dir and every directory
 * under it, so that what the pull brings stays listable when the box is
 * gone (the roster came from find, not from an SFTP readdir).
 */
static void remember_listings(struct td *t)
{
	/* dirs: "" (the root) and every 'd' entry */
	for (size_t d = 0; d <= t->roster.n; d++) {
		const char *dir = d == t->roster.n ? "" : t->roster.v[d].path;
		if (d < t->roster.n && t->roster.v[d].type != 'd')
			continue;
		size_t dl = strlen(dir), n = 0;
		struct rentry *v = calloc(t->roster.n ? t->roster.n : 1,
					  sizeof(*v));
		if (!v)
			return;
		for (size_t i = 0; i < t->roster.n; i++) {
			const struct roster_entry *e = &t->roster.v[i];
			const char *rest = e->path;
			if (dl) {
				if (strncmp(rest, dir, dl) || rest[dl] != '/')
					continue;
				rest += dl + 1;
			}
			if (!*rest || strchr(rest, '/') ||
			    (e->type != 'f' && e->type != 'd'))
				continue;
			v[n].name = (char *)rest;
			v[n].attr.size = e->size;
			v[n].attr.mtime = e->mtime;
			v[n].attr.mode = e->type == 'd' ? S_IFDIR | 0755 :
							  S_IFREG | 0644;
			n++;
		}
		char *abs = abs_path(t, dir);
		if (abs)
			remote_remember(t->r, abs, v, n);
		free(abs);
		free(v);
	}
}

/* Reply callback of a pull: the digests of the bytes as they arrive. */
struct pull_digest {
	EVP_MD_CTX *sha, *md5;	/* either may be NULL */
};

static int sink(void *arg, const struct iovec *iov, int n)
{
	struct pull_digest *d = arg;
	for (int i = 0; i < n; i++) {
		if (d->sha)
			EVP_DigestUpdate(d->sha, iov[i].iov_base,
					 iov[i].iov_len);
		if (d->md5)
			EVP_DigestUpdate(d->md5, iov[i].iov_base,
					 iov[i].iov_len);
	}
	return 0;
}

static void digest_hex(EVP_MD_CTX *m, char *hex, unsigned want)
{
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(m, out, &n);
	for (unsigned i = 0; i < want && i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
}

/*
 * Pull @ef through the fetcher, block by block in order. @sha (65) and
 * @md5 (33), when not NULL, get the digests of exactly the bytes the
 * fetcher handed out; left "" unless the whole file was read.
 */
static int pull_one(struct td *t, const struct efile *ef, uint64_t size,
		    int64_t mtime, uint64_t *done, char *sha, char *md5)
{
	struct fetch_file ff;
	struct fetch_stream fs;
	struct pull_digest dg = { sha ? EVP_MD_CTX_new() : NULL,
				  md5 ? EVP_MD_CTX_new() : NULL };
	if (sha)
		sha[0] = '\0';
	if (md5)
		md5[0] = '\0';
	if ((sha && !dg.sha) || (md5 && !dg.md5)) {
		EVP_MD_CTX_free(dg.sha);
		EVP_MD_CTX_free(dg.md5);
		return -ENOMEM;
	}
	if (dg.sha)
		EVP_DigestInit_ex(dg.sha, EVP_sha256(), NULL);
	if (dg.md5)
		EVP_DigestInit_ex(dg.md5, EVP_md5(), NULL);
	int rc = fetch_file_init(&ff, ef->r, ef->plat, ef->id, ef->path, size,
				 mtime, ef->etag);
	if (rc) {
		EVP_MD_CTX_free(dg.sha);
		EVP_MD_CTX_free(dg.md5);
		return rc;
	}
	fetch_stream_init(&fs);
	for (uint64_t off = 0; off < size && !rc; off += STORE_BLOCK_SIZE) {
		if (is_cancelled(t)) {
			rc = -EINTR;
			break;
		}
		if (box_hash_failed(t)) {
			rc = -ECANCELED;
			break;
		}
		rc = fetch_read(t->c->fetcher, &ff, &fs, off, STORE_BLOCK_SIZE,
				sink, &dg);
		*done += size - off < STORE_BLOCK_SIZE ? size - off :
							 STORE_BLOCK_SIZE;
		if (!rc && !((off >> STORE_BLOCK_SHIFT) & 63)) {
			char p[128];
			snprintf(p, sizeof(p), "pull: %" PRIu64 " of %" PRIu64
				 " MiB\n", *done >> 20, t->bytes >> 20);
			publish(t, p);
		}
	}
	fetch_stream_cleanup(&fs);
	fetch_file_cleanup(&ff);
	if (!rc && dg.sha)
		digest_hex(dg.sha, sha, 32);
	if (!rc && dg.md5)
		digest_hex(dg.md5, md5, 16);
	EVP_MD_CTX_free(dg.sha);
	EVP_MD_CTX_free(dg.md5);
	return rc;
}

static int pull_files(struct td *t);

/* The pull, and the box's digests computed meanwhile (box_hash). */
static int step_pull(struct td *t, bool *pulled)
{
	unsigned long errs = fetch_write_errors(t->c->fetcher);
	int rc = pull_files(t);
	if (rc && rc != -ECANCELED) {
		/* refused anyway: the pull's reason stands, not the hash's */
		box_hash_abandon(t);
		return rc;
	}
	rc = box_hash_join(t);		/* -ECANCELED: it failed first */
	if (!rc && fetch_write_errors(t->c->fetcher) != errs)
		/* the digests are of bytes the fetcher held in memory: a
		 * failed commit means the store may not have them */
		rc = refuse(t, -EIO, "writing the cache failed during the "
			    "pull: the copy may be incomplete");
	if (!rc)
		*pulled = true;
	return rc;
}

static int pull_files(struct td *t)
{
	uint64_t done = 0;
	int rc = 0;
	char e1[ESC_MAX];
	if (!t->via_cloud)
		remember_listings(t);
	for (size_t i = 0; !rc && i < t->roster.n; i++) {
		const struct roster_entry *e = &t->roster.v[i];
		struct efile ef;
		if (e->type != 'f')
			continue;
		if (entry_file(t, e->path, e->etag, &ef))
			return -ENOMEM;
		rc = pull_one(t, &ef, e->size, e->mtime, &done,
			      t->pulled_sha[i],
			      t->via_cloud ? t->pulled_md5[i] : NULL);
		free(ef.path);
		if (rc == -ECANCELED)
			return rc;	/* the hash's refusal (step_pull) */
		if (rc == -EINTR)
			rc = interrupted(t);
		else if (rc == -ESTALE)
			rc = refuse(t, -EBUSY, "%s changed on the %s during "
				    "the pull: a job is still writing",
				    esc(e->path, e1),
				    t->via_cloud ? "bucket" : "box");
		else if (rc == -EACCES)
			rc = remote_err(t, rc, "pull");
		else if (rc)
			rc = refuse(t, -EIO, "pull of %s failed: %s",
				    esc(e->path, e1), strerror(-rc));
	}
	if (rc)
		return rc;
	/* The log is evidence, not a checkpoint: best effort. It grows
	 * while training runs, so a changed log is re-read once. */
	bool log_ok = false;
	for (int attempt = 0; t->have_log && attempt < 2; attempt++) {
		uint64_t d = 0;
		struct efile lf = { t->r, t->plat, t->id,
				    (char *)t->sec->log_path, NULL };
		int lrc = pull_one(t, &lf, t->log_attr.size,
				   t->log_attr.mtime, &d, NULL, NULL);
		if (!lrc) {
			log_ok = true;
			break;
		}
		if (lrc == -EINTR)
			return interrupted(t);
		if (lrc != -ESTALE ||
		    remote_stat(t->r, t->sec->log_path, 0, &t->log_attr))
			break;
	}
	if (t->have_log && !log_ok)
		note(t, "note: the log could not be copied whole (it kept "
		     "changing, or the read failed); no log snapshot");
	/* Only a log pulled whole is recorded: a partial one would read EIO
	 * from the archive halfway. */
	t->have_log = log_ok;
	/* No log_path: the platform's own log (RunPod, vast.ai) vanishes
	 * with the instance; keep what its log API says now. Best effort. */
	struct platform_caps lc;
	if (!t->sec->log_path && !fleet_caps(t->c->fleet, t->pi, &lc) &&
	    lc.log_api) {
		struct buf lb;
		char lerr[512] = "";
		buf_init(&lb, 1u << 20);
		int lrc = fleet_log(t->c->fleet, t->pi, t->id, &lb, lerr,
				    sizeof(lerr));
		if (!lrc && lb.data)
			t->log_text = buf_take(&lb);
		else if (!lrc)
			t->log_text = strdup("");
		else
			note(t, "note: no snapshot of the platform's log (%s)",
			     lerr[0] ? lerr : strerror(-lrc));
		buf_cleanup(&lb);
	}
	rc = fetch_flush(t->c->fetcher);
	if (!rc)
		rc = store_sync(t->c->store);
	if (rc)
		return refuse(t, rc == -ENOSPC ? -ENOSPC : -EIO,
			      "writing the cache failed: %s", strerror(-rc));
	note(t, "pull: %" PRIu64 " files, %" PRIu64 " bytes in the cache",
	     t->files, t->bytes);
	return 0;
}

struct store_reader {
	struct store *st;
	uint8_t fid[STORE_FID_LEN];
	uint64_t size;
};

/* ckpt reader over cached blocks: exactly @len bytes or -errno. */
static int store_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct store_reader *sr = arg;
	struct store_rtxn *tx;
	int rc = store_rbegin(sr->st, &tx);
	if (rc)
		return rc;
	while (len && !rc) {
		uint64_t blk = off >> STORE_BLOCK_SHIFT;
		size_t in = (size_t)(off - (blk << STORE_BLOCK_SHIFT));
		const void *d;
		size_t l;
		rc = store_block_peek(tx, sr->fid, blk, &d, &l);
		if (!rc && in >= l)
			rc = -EIO;
		if (rc)
			break;
		size_t n = l - in < len ? l - in : len;
		memcpy(buf, (const char *)d + in, n);
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
	store_rend(tx);
	return rc == -ENOENT ? -EIO : rc;
}

static int cached_digests(struct store *st, const uint8_t *fid,
			  uint64_t size, char hex[65], char md5hex[33]);

/* SHA-256 of a cached file; -EIO if any block is missing or short. */
static int cached_sha256(struct store *st, const uint8_t *fid, uint64_t size,
			 char hex[65])
{
	return cached_digests(st, fid, size, hex, NULL);
}

/* SHA-256 (and, if @md5hex, MD5) of a cached file, in one pass. */
static int cached_digests(struct store *st, const uint8_t *fid,
			  uint64_t size, char hex[65], char md5hex[33])
{
	EVP_MD_CTX *m5 = md5hex ? EVP_MD_CTX_new() : NULL;
	if (md5hex && !m5)
		return -ENOMEM;
	if (m5)
		EVP_DigestInit_ex(m5, EVP_md5(), NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct store_rtxn *tx;
	int rc = md ? store_rbegin(st, &tx) : -ENOMEM;
	if (rc) {
		EVP_MD_CTX_free(md);
		EVP_MD_CTX_free(m5);
		return rc;
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	uint64_t nb = (size + STORE_BLOCK_SIZE - 1) >> STORE_BLOCK_SHIFT;
	for (uint64_t b = 0; b < nb && !rc; b++) {
		const void *d;
		size_t l, want = b + 1 < nb ? STORE_BLOCK_SIZE :
				 (size_t)(size - (b << STORE_BLOCK_SHIFT));
		rc = store_block_peek(tx, fid, b, &d, &l);
		if (!rc && l != want)
			rc = -EIO;
		if (!rc)
			EVP_DigestUpdate(md, d, l);
		if (!rc && m5)
			EVP_DigestUpdate(m5, d, l);
	}
	store_rend(tx);
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(md, out, &n);
	EVP_MD_CTX_free(md);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
	if (m5) {
		EVP_DigestFinal_ex(m5, out, &n);
		EVP_MD_CTX_free(m5);
		for (unsigned i = 0; i < 16; i++)
			snprintf(md5hex + 2 * i, 3, "%02x", out[i]);
	}
	return rc == -ENOENT ? -EIO : rc;
}

static int step_verify(struct td *t, bool *verified)
{
	int checked = 0, skipped = 0;
	char e1[ESC_MAX];
	for (size_t i = 0; i < t->roster.n; i++) {
		struct roster_entry *e = &t->roster.v[i];
		if (e->type != 'f')
			continue;
		if (is_cancelled(t))
			return interrupted(t);
		struct efile ef;
		if (entry_file(t, e->path, e->etag, &ef))
			return -ENOMEM;
		char *p = ef.path;
		struct store_reader sr = { t->c->store, { 0 }, e->size };
		fetch_file_id(sr.fid, ef.plat, ef.id, p, e->size, e->mtime,
			      ef.etag);
		char hex[65];
		int rc = 0;
		/* the digests of the bytes the pull read (pull_one); the
		 * serve check reads them all back from the store later */
		memcpy(hex, t->pulled_sha[i], sizeof(hex));
		if (t->via_cloud) {
			/* No digest from a box: the object's own, its MD5
			 * ETag (single-part: checked at the roster), against
			 * the MD5 of the bytes pulled into the cache. */
			const char *md5 = t->pulled_md5[i];
			free(p);
			if (!hex[0] || !md5[0])
				return refuse(t, -EIO, "%s: the copy is "
					      "incomplete in the cache",
					      esc(e->path, e1));
			if (strlen(e->etag) != 34 ||
			    strncmp(e->etag + 1, md5, 32))
				return refuse(t, -EIO, "%s: MD5 of the copy %s "
					      "differs from the bucket's ETag "
					      "%s", esc(e->path, e1), md5,
					      e->etag);
			memcpy(e->sha256, hex, sizeof(e->sha256));
			goto load_check;
		}
		if (!hex[0])
			rc = -EIO;	/* not pulled whole */
		if (!rc && strcmp(hex, e->sha256)) {
			/*
			 * SFTP v3 knows a file only by size and whole-second
			 * mtime: a file rewritten with both unchanged looks
			 * like the one cached before. The digest from the box
			 * says otherwise, so drop the stale copy and pull
			 * this file once more before judging it.
			 */
			if (t->carried != ARCH_RECORDED) {
				/* An earlier run's destroy call may have acted:
				 * its verified copy may be the only one left,
				 * and it shares this file id. Keep it. */
				free(p);
				return refuse(t, -EBUSY, "%s: the box's copy "
					      "differs from the cached one, and "
					      "an earlier destroy call (%s) may "
					      "still act; the cached copy is "
					      "kept", esc(e->path, e1),
					      archive_phase_name(t->carried));
			}
			note(t, "verify: %s: the cached copy is stale; "
			     "pulling it again", esc(e->path, e1));
			uint64_t d = 0;
			rc = store_blocks_delete(t->c->store, sr.fid);
			if (!rc)
				rc = pull_one(t, &ef, e->size, e->mtime, &d,
					      hex, NULL);
			if (!rc)
				rc = fetch_flush(t->c->fetcher);
		}
		free(p);
		if (rc == -EINTR)
			return interrupted(t);
		if (rc)
			return refuse(t, -EIO, "%s: the copy is incomplete "
				      "in the cache (%s)", esc(e->path, e1),
				      strerror(-rc));
		if (strcmp(hex, e->sha256))
			return refuse(t, -EIO, "%s: SHA-256 of the copy %s "
				      "differs from the box's %s",
				      esc(e->path, e1), hex, e->sha256);
load_check:;
		struct ckpt_reader rd = { e->size, store_pread, &sr };
		char detail[512];
		enum ckpt_verdict v = ckpt_verify(e->path, &rd, detail,
						  sizeof(detail));
		if (v == CKPT_OK) {
			checked++;
		} else if (v == CKPT_UNKNOWN_FORMAT) {
			skipped++;
		} else {
			return refuse(t, -EIO, "%s: load check failed: %s: %s",
				      esc(e->path, e1), ckpt_strerror(v),
				      detail);
		}
	}
	note(t, t->via_cloud ?
		     "verify: every object's MD5 matches its ETag in the "
		     "bucket; load checks passed for %d files (%d of a type "
		     "without a load check)" :
		     "verify: every SHA-256 matches the box; load checks passed "
		     "for %d files (%d of a type without a load check)",
	     checked, skipped);
	*verified = true;
	return 0;
}

static struct archive *build_archive(struct td *t, const char *report,
				     const struct roster *r);

static int step_record(struct td *t, bool *recorded)
{
	char run_id[256];
	snprintf(run_id, sizeof(run_id), "%s-%s", t->plat, t->id);
	time_t now = time(NULL);
	t->manifest = manifest_build(run_id, now, &t->roster);
	if (t->manifest)
		t->verified = manifest_verified(run_id, t->manifest, now,
						t->files, t->bytes);
	if (!t->manifest || !t->verified)
		return refuse(t, -ENOMEM, "cannot build the manifests");
	/*
	 * The journal, in the shape of the archive it will become. A
	 * journal an earlier run left past RECORDED keeps its phase: that
	 * run's destroy call may still act, so this one must not make its
	 * evidence look like "nothing was sent".
	 */
	struct archive *a = build_archive(
		t, "verified copy recorded; the destroy was not confirmed\n",
		&t->roster);
	int rc = a ? 0 : -ENOMEM;
	if (a) {
		a->phase = t->carried;
		rc = archive_save_pending(t->c->store, a);
	}
	archive_free(a);
	if (rc)
		return refuse(t, rc, "cannot record the manifests: %s",
			      strerror(-rc));
	note(t, "record: PULL_MANIFEST.json and PULL_VERIFIED.json written");
	*recorded = true;
	return 0;
}

/*
 * Read archived file @f of @a by the identity that serves it once the box
 * is gone (archive_file_open: the record's root and name, no remote) and
 * compute its SHA-256 from the store.
 */
static int served_sha256(struct td *t, const struct archive *a,
			 const struct archive_file *f, char hex[65])
{
	struct fetch_file ff;
	int rc = archive_file_open(a, f, &ff);
	if (rc)
		return rc;
	/* The record's identity, read from the store alone: a block the
	 * fetcher still holds in memory (a reader of the live box, a walk
	 * prefetch) must not stand in for one that is missing on disk. */
	rc = cached_sha256(t->c->store, ff.fid, f->size, hex);
	/* proven whole: blocks cached before checksums get theirs, so the
	 * archive does not stay without them */
	if (!rc && !strcmp(hex, f->sha256) && store_legacy_blocks(t->c->store)) {
		int n = store_blocks_seal(t->c->store, ff.fid,
					  (f->size + STORE_BLOCK_SIZE - 1) >>
						  STORE_BLOCK_SHIFT);
		if (n > 0)
			rgt_log(RGT_INFO, "%s/%s: %d blocks cached before "
				"checksums now have theirs", t->plat, t->id,
				n);
	}
	fetch_file_cleanup(&ff);
	return rc;
}

static bool cancel_cb(void *arg)
{
	return is_cancelled(arg);
}

/* archive_to = NAME: push the verified record @a; any failure refuses. */
static int push_archive(struct td *t, const struct archive *a)
{
	const char *to = config_get(t->sec, "archive_to");
	if (!to)
		return 0;
	struct cloud *cl = rgt_cloud(t->c, to);
	if (!cl || !cloud_remote(cl)) {
		char e[512] = "";
		if (cl)
			cloud_error(cl, e, sizeof(e));
		return refuse(t, -EHOSTUNREACH, "archive_to = %s cannot be "
			      "used%s%s", to, e[0] ? ": " : "", e);
	}
	char err[512] = "";
	note(t, "archive_to: pushing the verified copy to %s",
	     cloud_where(cl));
	int rc = archive_push_cancellable(cl, t->c->store, a, cancel_cb, t,
					  err, sizeof(err));
	if (rc == -EINTR)
		return interrupted(t);
	if (rc)
		return refuse(t, rc == -EACCES ? -EACCES : -EIO, "%s",
			      err[0] ? err : strerror(-rc));
	note(t, "archive_to: every object is in the bucket and read back "
	     "with its size and checksum");
	return 0;
}

/*
 * After the teardown finished: the team's copy gets its final record, the
 * one mounts list (archive_push_final). The files are in the bucket and
 * verified already; a failure here leaves the local archive whole and is
 * noted, the destroy being done.
 */
static void push_final(struct td *t)
{
	const char *to = config_get(t->sec, "archive_to");
	struct cloud *cl = to ? rgt_cloud(t->c, to) : NULL;
	struct archive *a;
	char err[512] = "";
	if (!to)
		return;
	int rc = !cl ? -ENOENT :
		 archive_load(t->c->store, t->plat, t->id, &a);
	if (!rc) {
		rc = archive_push_final(cl, t->c->store, a, err, sizeof(err));
		archive_free(a);
	}
	if (rc)
		rgt_log(RGT_WARN, "%s/%s: archive_to = %s: the final record "
			"was not pushed (%s); the files are in the bucket, and "
			"the archive is whole in the cache", t->plat, t->id, to,
			err[0] ? err : strerror(-rc));
	else
		note(t, "archive_to: the archive is listed in %s",
		     cloud_where(cl));
}

/*
 * Verify what will be served: load the journal back from the store (the
 * record the archive will be), check that it lists exactly the roster's
 * files and directories, and read every file through the archive's own
 * lookup, comparing its SHA-256 with the box's. What fails here would have
 * been an archive that cannot give the bytes back.
 */
static int step_serve(struct td *t, bool *served)
{
	char e1[ESC_MAX];
	struct archive *a = NULL;
	int rc = archive_load_pending(t->c->store, t->plat, t->id, &a);
	if (rc)
		return refuse(t, -EIO, "the recorded journal cannot be read "
			      "back: %s", strerror(-rc));
	uint64_t dirs = 0;
	for (size_t i = 0; i < t->roster.n; i++)
		dirs += t->roster.v[i].type == 'd';
	if (a->nfiles != t->files || a->ndirs != dirs) {
		rc = refuse(t, -EIO, "the record lists %zu files and %zu "
			    "directories, the box %" PRIu64 " and %" PRIu64,
			    a->nfiles, a->ndirs, t->files, dirs);
		goto out;
	}
	for (size_t i = 0; !rc && i < t->roster.n; i++) {
		const struct roster_entry *e = &t->roster.v[i];
		if (e->type == 'd') {
			if (!archive_dir_at(a, e->path))
				rc = refuse(t, -EIO, "directory %s is missing "
					    "from the record",
					    esc(e->path, e1));
			continue;
		}
		if (is_cancelled(t)) {
			rc = interrupted(t);
			break;
		}
		const struct archive_file *f = archive_file_at(a, e->path);
		char hex[65];
		if (!f || f->size != e->size || f->mtime != e->mtime ||
		    strcmp(f->sha256, e->sha256)) {
			rc = refuse(t, -EIO, "%s: the record does not match "
				    "the roster", esc(e->path, e1));
		} else if ((rc = served_sha256(t, a, f, hex))) {
			/* -EBADMSG: a block's bytes fail their CRC32C; what
			 * would be served is damaged, so no destroy */
			rc = refuse(t, -EIO, "%s: the archive could not serve "
				    "it back (%s)", esc(e->path, e1),
				    rc == -EBADMSG ? "a cached block fails its "
				    "checksum" : strerror(-rc));
		} else if (strcmp(hex, e->sha256)) {
			rc = refuse(t, -EIO, "%s: read back through the "
				    "archive it hashes %s, the box says %s",
				    esc(e->path, e1), hex, e->sha256);
		}
	}
	if (!rc && (t->log_text ? !a->log_text ||
					   strcmp(a->log_text, t->log_text) :
				 a->log_text != NULL))
		rc = refuse(t, -EIO, "the platform log snapshot does not read "
			    "back from the record");
	if (!rc && a->log_path) {
		/* the log has no digest from the box: it must read whole */
		struct fetch_file ff;
		char hex[65];
		rc = archive_log_open(a, &ff);
		if (!rc) {
			rc = cached_sha256(t->c->store, ff.fid, a->log_size,
					   hex);
			fetch_file_cleanup(&ff);
		}
		if (rc)
			rc = refuse(t, -EIO, "the log snapshot could not be "
				    "read back (%s)", strerror(-rc));
	}
out:
	if (!rc)
		note(t, t->via_cloud ?
			     "serve: every file reads back through the archive "
			     "with the SHA-256 of the verified copy" :
			     "serve: every file reads back through the archive "
			     "with the box's SHA-256");
	/* archive_to: the team's copy, exactly the record just read back,
	 * uploaded and read back from the bucket before any destroy call */
	if (!rc && (rc = push_archive(t, a)))
		goto fail;
	if (!rc) {
		*served = true;
		t->journal = a;
		a = NULL;
	}
fail:
	archive_free(a);
	return rc;
}

static int step_relist(struct td *t, bool *relisted)
{
	struct roster now = { 0 };
	/* via the bucket: the box must still be down, right before the
	 * destroy call (it may have been started during a long pull) */
	int rc = t->via_cloud ? box_still_down(t, t->down_state) : 0;
	if (rc)
		return rc;
	rc = t->via_cloud ? list_cloud(t, &now) : list_box(t, &now, "re-list");
	if (rc)
		return rc;
	char err[512];
	rc = roster_compare(&t->roster, &now, err, sizeof(err));
	roster_free(&now);
	if (rc) {
		struct buf shown;
		buf_init(&shown, ESC_MAX);
		rpath_escape(&shown, err);
		rc = refuse(t, -EBUSY, "the %s changed since the roster "
			    "(%s): a job is still writing",
			    t->via_cloud ? "bucket copy" : "box",
			    shown.data ? shown.data : "");
		buf_cleanup(&shown);
		return rc;
	}
	note(t, t->via_cloud ? "re-list: the bucket still lists exactly the "
			      "same objects" :
			      "re-list: the box still lists exactly the same "
			      "files");
	*relisted = true;
	return 0;
}

static int destroy_timeout(const struct rgt_section *sec);

/*
 * Before verb @step of a sequence: poll until the instance shows the state
 * the previous verb leads to (or is no longer listed), bounded.
 */
static int wait_for_state(struct td *t, enum rgt_state want, const char *after,
			  size_t step)
{
	long deadline = mono_s() + destroy_timeout(t->sec);
	char err[512];
	for (;;) {
		bool listed = true;
		int st = RGT_ST_UNKNOWN;
		int rc = fleet_poll_now(t->c->fleet, t->pi, t->id, &listed,
					err, sizeof(err));
		if (!rc && !listed)
			return 1;	/* gone: the rest is not needed */
		/* Nothing more has been sent: Ctrl-C may still stop it. */
		if (is_cancelled(t))
			return interrupted(t);
		if (!rc && !fleet_instance_state(t->c->fleet, t->pi, t->id,
						 &st) &&
		    st == (int)want &&
		    fleet_destroy_ready(t->c->fleet, t->pi, t->id, step) == 1)
			return 0;
		if (mono_s() >= deadline)
			return refuse(t, -ETIMEDOUT, "%s was accepted, but the "
				      "instance was not %s and ready for the "
				      "next verb within %d s; "
				      "the rest of the destroy sequence was not "
				      "sent, and the verified copy is kept; "
				      "rmdir again sends the rest",
				      after, rgt_state_name(want),
				      destroy_timeout(t->sec));
		sleep(1);
	}
}

/*
 * The journal's phase with how far the sequence got. The count is stored
 * only in the middle of a sequence (0 < @k < n_destroy): a finished or
 * one-verb sequence keeps the plain form older builds can read.
 */
static int mark(struct td *t, enum archive_phase ph, size_t k)
{
	unsigned v = k > 0 && k < t->caps.n_destroy ? (unsigned)k : 0;
	return archive_set_progress(t->c->store, t->plat, t->id, ph, v);
}

/*
 * The destroy sequence from verb t->first_verb on (0, or where an earlier
 * run stopped: see step_resume). The journal says how far it got before
 * every call, so that no verb is ever sent twice by two runs: "requested
 * K" just before verb K, "accepted K+1" once the platform took it. Only
 * "accepted K" (verb K never sent) lets a later run go on from K.
 */
static int step_destroy(struct td *t, bool *maybe_sent)
{
	char err[512] = "";
	*maybe_sent = t->first_verb > 0;
	/* The last moment an interrupt can stop it. */
	if (is_cancelled(t))
		return interrupted(t);
	/* The archive record is written after the destroy: a cache disk
	 * filled since the roster would leave a destroyed box with only the
	 * journal (safe, but not what a refusal promises). */
	uint64_t avail = cache_avail(t);
	if (!t->first_verb && avail < SPACE_MARGIN)
		return refuse(t, -ENOSPC, "the cache's filesystem has %" PRIu64
			      " MiB free and the archive record is written "
			      "after the destroy, which needs %llu MiB: "
			      "nothing is destroyed", avail >> 20,
			      SPACE_MARGIN >> 20);
	rgt_log(RGT_INFO, "%s/%s: verified copy complete; destroying",
		t->plat, t->id);
	for (size_t step = t->first_verb; step < t->caps.n_destroy; step++) {
		const struct platform_verb *v = &t->caps.destroy[step];
		int rc;
		/* before every verb: the record it relies on is on disk */
		if (store_sync_failed(t->c->store))
			return refuse(t, -EIO, "a write to the cache failed to "
				      "reach the disk; the verified copy cannot "
				      "be trusted to survive a crash, so nothing "
				      "more is destroyed (remount to clear)");
		if (step) {
			const struct platform_verb *prev = v - 1;
			rc = prev->wait_for == RGT_ST_UNKNOWN ? 0 :
				wait_for_state(t, prev->wait_for, prev->name,
					       step);
			if (rc < 0) {
				*maybe_sent = true;	/* prev was accepted */
				return rc;
			}
			if (rc > 0) {
				note(t, "destroy: the platform no longer lists "
				     "the instance; %s is not needed", v->name);
				return 0;
			}
		}
		/* Evidence first: once this is on disk the copy is pinned
		 * and a later rmdir of the gone instance trusts it,
		 * whatever happens to this process or the call. */
		rc = mark(t, ARCH_DESTROY_REQUESTED, step);
		if (rc) {
			if (step)
				/* not sent: a later run may still send it */
				mark(t, ARCH_DESTROY_ACCEPTED, step);
			return refuse(t, rc, "cannot record the destroy "
				      "request: %s", strerror(-rc));
		}
		bool sent = false;
		rc = fleet_destroy(t->c->fleet, t->pi, t->id, step, &sent,
				   err, sizeof(err));
		if (!rc) {
			mark(t, ARCH_DESTROY_ACCEPTED, step + 1);
			t->verbs_accepted = step + 1;
			/* Between verbs: watched from here on (fleet.h). */
			fleet_seq_watch(t->c->fleet, t->pi, t->id,
					step + 1 < t->caps.n_destroy);
			note(t, "destroy: the platform accepted %s", v->name);
			*maybe_sent = true;
			continue;
		}
		fleet_seq_watch(t->c->fleet, t->pi, t->id, false);
		if (sent) {
			*maybe_sent = true;
			mark(t, ARCH_DESTROY_UNKNOWN, step);
			return refuse(t, rc == -ETIMEDOUT ? -ETIMEDOUT : -EIO,
				      "the outcome of the destroy call (%s) is "
				      "unknown (%s); rgtfs does not retry a "
				      "destroy blindly. The verified copy is "
				      "kept and pinned; once the platform no "
				      "longer lists the instance, rmdir "
				      "archives it; check the platform",
				      v->name, err[0] ? err : strerror(-rc));
		}
		if (step) {
			/* Surely not sent, but an earlier verb was accepted:
			 * the box was acted on, and a later rmdir goes on
			 * from this verb. */
			*maybe_sent = true;
			mark(t, ARCH_DESTROY_ACCEPTED, step);
			fleet_seq_watch(t->c->fleet, t->pi, t->id, true);
			return refuse(t, rc == -ETIMEDOUT ? -ETIMEDOUT : -EIO,
				      "%s was accepted, then %s failed (%s) "
				      "before the platform got it. The "
				      "verified copy is kept and pinned; rmdir "
				      "again sends %s (and only it)",
				      t->caps.destroy[step - 1].name, v->name,
				      err[0] ? err : strerror(-rc), v->name);
		}
		/* Surely not sent: back to what an earlier run left. */
		archive_set_progress(t->c->store, t->plat, t->id, t->carried,
				     t->carried_verbs);
		return refuse(t, -EIO, "the destroy call (%s) failed: %s",
			      v->name, err[0] ? err : strerror(-rc));
	}
	return 0;
}

static int destroy_timeout(const struct rgt_section *sec)
{
	const char *v = config_get(sec, "destroy_timeout");
	int n = v ? atoi(v) : 0;
	return n > 0 ? n : 300;
}

static int step_confirm(struct td *t)
{
	if (!t->caps.confirm_by_list) {
		note(t, "confirm: this platform is not asked again");
		return 0;
	}
	long deadline = mono_s() + destroy_timeout(t->sec);
	char err[512];
	for (;;) {
		bool listed = true;
		int rc = fleet_poll_now(t->c->fleet, t->pi, t->id, &listed,
					err, sizeof(err));
		if (!rc && !listed) {
			note(t, "confirm: the platform no longer lists the "
			     "instance");
			return 0;
		}
		if (mono_s() >= deadline)
			return refuse(t, -ETIMEDOUT, "destroy accepted, but "
				      "the platform still lists the instance "
				      "after %d s; the verified copy is kept "
				      "and pinned, and rmdir archives it once "
				      "the platform no longer lists it",
				      destroy_timeout(t->sec));
		sleep(1);
	}
}

static int add_dirs(struct archive *a, const struct roster *r,
		    const struct td *t)
{
	a->dirs = calloc(r->n ? r->n : 1, sizeof(*a->dirs));
	a->files = calloc(r->n ? r->n : 1, sizeof(*a->files));
	if (!a->dirs || !a->files)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		const struct roster_entry *e = &r->v[i];
		if (e->type == 'd') {
			if (!(a->dirs[a->ndirs] = strdup(e->path)))
				return -ENOMEM;
			a->ndirs++;
		} else if (e->type == 'f') {
			struct archive_file *f = &a->files[a->nfiles];
			if (!(f->path = strdup(e->path)))
				return -ENOMEM;
			f->size = e->size;
			f->mtime = e->mtime;
			memcpy(f->sha256, e->sha256, sizeof(f->sha256));
			a->nfiles++;
			if (t->via_cloud) {
				/* the same source entry_file() pulled */
				struct efile ef;
				if (entry_file(t, e->path, e->etag, &ef))
					return -ENOMEM;
				f->src = ef.path;
				snprintf(f->etag, sizeof(f->etag), "%s",
					 e->etag);
			}
		}
	}
	return 0;
}

/* The archive record of this run (caller frees), or NULL. */
static struct archive *build_archive(struct td *t, const char *report,
				     const struct roster *r)
{
	struct archive *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	int rc = fleet_snapshot(t->c->fleet, t->pi, t->id, &a->status_msg,
				&a->info, &a->ssh);
	a->platform = strdup(t->plat);
	a->id = strdup(t->id);
	a->root = strdup(t->sec->checkpoint_dir);
	a->report = strdup(report);
	a->manifest = t->manifest ? strdup(t->manifest) : NULL;
	a->verified = t->verified ? strdup(t->verified) : NULL;
	if (t->log_text && !(a->log_text = strdup(t->log_text))) {
		archive_free(a);
		return NULL;
	}
	if (t->have_log) {
		a->log_path = strdup(t->sec->log_path);
		a->log_size = t->log_attr.size;
		a->log_mtime = t->log_attr.mtime;
	}
	if (!rc && t->via_cloud &&
	    !(a->src_cloud = strdup(cloud_name(t->cl))))
		rc = -ENOMEM;
	if (!rc)
		rc = add_dirs(a, r, t);
	if (rc || !a->platform || !a->id || !a->root || !a->report) {
		archive_free(a);
		return NULL;
	}
	return a;
}

static int save_archive(struct td *t, const char *report,
			const struct roster *r)
{
	struct archive *a = build_archive(t, report, r);
	int rc = a ? archive_save(t->c->store, a) : -ENOMEM;
	archive_free(a);
	return rc;
}

/*
 * The archive of a verified run: the journal exactly as the serve check
 * read it back (same record, same names, same ids), with the final report.
 */
static int archive_verified(struct td *t, const char *report)
{
	char *r = strdup(report);
	if (!r || !t->journal) {
		free(r);
		return -ENOMEM;
	}
	free(t->journal->report);
	t->journal->report = r;
	return archive_save(t->c->store, t->journal);
}

/* ---- a gone instance: archive what the cache holds ------------------------- */

/* Walk the cached listings below @dir into @r (regular files fully cached
 * only); files not complete are counted in @missing. */
static int walk_cached(struct td *t, const char *dir, const char *rel,
		       struct roster *r, size_t *cap, int *missing, int depth)
{
	struct rlisting *l;
	char e1[ESC_MAX];
	if (depth > 64 || remote_list_cached(t->r, dir, &l))
		return 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < l->n; i++) {
		const struct rentry *e = &l->v[i];
		char sub[8192], subrel[8192];
		int n = *rel ? 0 : snprintf(subrel, sizeof(subrel), "%s",
					    e->name);
		if (rpath_join(sub, sizeof(sub), dir, e->name) ||
		    (*rel && rpath_join(subrel, sizeof(subrel), rel,
					e->name)) ||
		    n < 0 || (size_t)n >= sizeof(subrel)) {
			(*missing)++;
			continue;
		}
		bool is_dir = S_ISDIR(e->attr.mode);
		char hex[65] = "";
		if (!is_dir) {
			uint8_t fid[STORE_FID_LEN];
			fetch_file_id(fid, t->plat, t->id, sub, e->attr.size,
				      e->attr.mtime, NULL);
			int hrc = cached_sha256(t->c->store, fid,
						e->attr.size, hex);
			if (hrc) {
				(*missing)++;
				note(t, "not archived (%s): %s",
				     hrc == -EBADMSG ? "a cached block fails "
				     "its checksum" : "never fully read",
				     esc(subrel, e1));
				continue;
			}
		}
		if (r->n == *cap) {
			size_t nc = *cap ? *cap * 2 : 32;
			struct roster_entry *nv =
				realloc(r->v, nc * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			r->v = nv;
			*cap = nc;
		}
		struct roster_entry *ne = &r->v[r->n];
		memset(ne, 0, sizeof(*ne));
		if (!(ne->path = strdup(subrel)))
			return -ENOMEM;
		ne->type = is_dir ? 'd' : 'f';
		ne->size = e->attr.size;
		ne->mtime = e->attr.mtime;
		memcpy(ne->sha256, hex, sizeof(hex));
		r->n++;
		if (is_dir)
			rc = walk_cached(t, sub, subrel, r, cap, missing,
					 depth + 1);
	}
	rlisting_free(l);
	return rc;
}

/*
 * Every file of journal @a reads back through the archive's own lookup
 * with the digest the box gave: 0, else -ENOENT with the first bad name
 * in the report.
 */
static int journal_reads_back(struct td *t, const struct archive *a)
{
	char e1[ESC_MAX];
	for (size_t i = 0; i < a->nfiles; i++) {
		char hex[65];
		if (is_cancelled(t))
			return interrupted(t);
		if (served_sha256(t, a, &a->files[i], hex) ||
		    strcmp(hex, a->files[i].sha256)) {
			note(t, "%s no longer reads back with its digest",
			     esc(a->files[i].path, e1));
			return -ENOENT;
		}
	}
	return 0;
}

/*
 * An earlier run verified the copy, sent the first verbs of the sequence
 * and stopped before the rest (rgtfs died, the wait for the state timed
 * out, the next call surely failed to reach the platform). Go on from the
 * first verb not sent, once the journal still reads back whole: the box
 * itself can no longer be checked (AutoDL's is powered off), so its
 * verified copy is what this run trusts, exactly as the archive of a
 * gone instance does.
 */
static int step_resume(struct td *t, bool *resumed)
{
	struct archive *a;
	if (archive_load_pending(t->c->store, t->plat, t->id, &a))
		return refuse(t, -EIO, "the journal of the earlier run cannot "
			      "be read back");
	int rc = journal_reads_back(t, a);
	if (rc) {
		archive_free(a);
		if (rc == -EINTR)
			return rc;
		return refuse(t, -EIO, "an earlier run's %s was accepted, but "
			      "its verified copy no longer reads back; "
			      "nothing more is sent", t->caps.destroy[0].name);
	}
	t->files = a->nfiles;
	t->bytes = 0;
	for (size_t i = 0; i < a->nfiles; i++)
		t->bytes += a->files[i].size;
	note(t, "resume: an earlier run verified %" PRIu64 " files and the "
	     "platform accepted %s; the copy still reads back with the "
	     "box's digests; going on with %s",
	     t->files, t->caps.destroy[t->first_verb - 1].name,
	     t->caps.destroy[t->first_verb].name);
	t->journal = a;
	t->verbs_accepted = t->first_verb;
	*resumed = true;
	return 0;
}

/*
 * A journal from a run whose destroy call was made (rgtfs died, or the
 * platform confirmed late): if every file still reads back through the
 * archive with the digest the box gave, archive it as verified. A journal
 * still RECORDED is not evidence (that run was refused or killed before
 * its re-list): -ENOENT, as is a journal the cache no longer matches.
 */
static int archive_from_journal(struct td *t)
{
	struct archive *a;
	if (archive_load_pending(t->c->store, t->plat, t->id, &a))
		return -ENOENT;
	if (a->phase == ARCH_RECORDED) {
		note(t, "a teardown journal exists, but its run never reached "
		     "the destroy call: it proves nothing");
		archive_free(a);
		return -ENOENT;
	}
	int rc = journal_reads_back(t, a);
	if (!rc) {
		note(t, "the copy was verified before the destroy call (SHA-256 "
		     "from the box and load checks); every file still reads "
		     "back with its digest");
		struct buf rep;
		buf_init(&rep, 8u << 20);
		buf_appendf(&rep, "done: %s/%s archived from the verified "
			    "copy of %zu files; rgtfs did not see the destroy "
			    "confirmed\n%s", t->plat, t->id, a->nfiles,
			    t->log.data);
		free(a->report);
		a->report = buf_take(&rep);
		rc = a->report ? archive_save(t->c->store, a) : -ENOMEM;
		if (!rc)
			push_final(t);
		if (!rc)
			fleet_set_teardown(t->c->fleet, t->pi, t->id,
					   a->report);
	} else {
		note(t, "a teardown journal exists, but the cache no longer "
		     "matches it");
	}
	archive_free(a);
	if (!rc)
		fleet_forget(t->c->fleet, t->pi, t->id);
	return rc;
}

static int archive_gone(struct td *t)
{
	struct roster r = { 0 };
	char err[512] = "";
	bool listed = true;
	/*
	 * `gone` came from an earlier list; archiving hides the instance,
	 * so ask once more: an instance that is still billing must not
	 * vanish from the tree on the strength of an old answer.
	 */
	int rc = fleet_poll_now(t->c->fleet, t->pi, t->id, &listed, err,
				sizeof(err));
	if (rc)
		return refuse(t, -EAGAIN, "the platform cannot confirm that "
			      "the instance is gone (%s); try again when it "
			      "answers", err[0] ? err : strerror(-rc));
	if (listed)
		return refuse(t, -EBUSY, "the platform lists the instance "
			      "again: it is not gone");
	rc = archive_from_journal(t);
	if (!rc || rc == -EINTR)
		return rc;
	size_t cap = 0;
	int missing = 0;
	note(t, "the platform no longer lists %s/%s: archiving what the "
	     "cache holds; nothing here can be verified against the box",
	     t->plat, t->id);
	rc = walk_cached(t, t->sec->checkpoint_dir, "", &r, &cap, &missing,
			 0);
	uint64_t files, bytes;
	roster_totals(&r, &files, &bytes);
	if (!rc) {
		note(t, "not verified: %" PRIu64 " files, %" PRIu64 " bytes "
		     "archived with the SHA-256 of the cached copy only "
		     "(no digest from the box)%s", files, bytes,
		     missing ? "; some files were never fully read" : "");
		buf_appendf(&t->log, "done: archived %s/%s from the cache "
			    "(not verified)\n", t->plat, t->id);
		rc = save_archive(t, t->log.data, &r);
	}
	roster_free(&r);
	if (rc)
		return refuse(t, rc, "cannot write the archive: %s",
			      strerror(-rc));
	publish(t, NULL);
	fleet_forget(t->c->fleet, t->pi, t->id);
	return 0;
}

/* ---- the driver ------------------------------------------------------------ */

int teardown_instance(struct rgt_ctx *c, size_t pi, const char *id,
		      bool (*cancelled)(void *arg), void *arg)
{
	struct td t = {
		.c = c,
		.pi = pi,
		.plat = fleet_platform_name(c->fleet, pi),
		.id = id,
		.sec = fleet_section(c->fleet, pi),
		.cancelled = cancelled,
		.cancel_arg = arg,
	};
	struct td_facts f = { .step = TD_ROSTER, .can_destroy = true };
	int rc = fleet_teardown_begin(c->fleet, pi, id);
	if (rc)
		return rc;
	/* From here the instance is pinned; an eviction pass that judged it
	 * before could still be deleting its files: wait it out. */
	fetch_evict_barrier(c->fetcher);
	buf_init(&t.log, 4u << 20);
	t.r = fleet_remote(c->fleet, pi, id);
	rgt_log(RGT_INFO, "%s/%s: teardown requested", t.plat, id);
	stats_add(STATS_TEARDOWNS_STARTED, 1);
	note(&t, "teardown of %s/%s started %ld", t.plat, id,
	     (long)time(NULL));

	int st = RGT_ST_UNKNOWN;
	if (!fleet_instance_state(c->fleet, pi, id, &st) &&
	    st == RGT_ST_GONE) {
		rc = t.r ? archive_gone(&t) : -ENOENT;
		goto out;
	}
	/* What the platform can do decides the path: no destroy verb means
	 * the instance is archived after the re-list and left alone; no
	 * adapter at all means nothing can be decided. */
	if (t.r && fleet_caps(c->fleet, pi, &t.caps)) {
		rc = refuse(&t, -EHOSTUNREACH, "the platform's API is not "
			    "available: %s/.error says why", t.plat);
		f.step = TD_REFUSED;
	}
	f.can_destroy = t.caps.n_destroy > 0;
	/* An earlier run's journal past RECORDED stays what it is, whatever
	 * this run does (see step_record). */
	enum archive_phase ph;
	unsigned verbs;
	if (!archive_get_progress(c->store, t.plat, id, &ph, &verbs)) {
		t.carried = ph;
		t.carried_verbs = verbs;
	}
	/*
	 * A sequence an earlier run began and could not finish (AutoDL:
	 * power_off accepted, release not sent) goes on where it stopped,
	 * from the journal, only while rgtfs has watched the box stay down
	 * ever since. A box running again is verified anew from the first
	 * verb (it may hold checkpoints the journal never saw); a box that
	 * is down but was not watched (a remount, a list that failed) may
	 * have run meanwhile: refused, with what to do.
	 */
	if (f.step != TD_REFUSED && t.r && t.carried == ARCH_DESTROY_ACCEPTED &&
	    verbs > 0 && verbs < t.caps.n_destroy) {
		if (fleet_seq_watched(c->fleet, pi, id)) {
			t.first_verb = verbs;
			f.step = TD_RESUME;
		} else if (st != RGT_ST_RUNNING) {
			rc = refuse(&t, -EHOSTUNREACH, "an earlier run's %s was "
				    "accepted and %s was never sent, but rgtfs "
				    "has not watched the instance since (a "
				    "remount, or a list that failed or showed "
				    "it running): it may have run and written "
				    "checkpoints its verified copy lacks. Start "
				    "it and rmdir again (rgtfs verifies it "
				    "anew), or check it and finish from the "
				    "platform's console", t.caps.destroy[0].name,
				    t.caps.destroy[verbs].name);
			f.step = TD_REFUSED;
		}
	}
	if (!t.r) {
		rc = refuse(&t, -ENOENT, "no such instance");
		f.step = TD_REFUSED;
	} else if (f.step != TD_REFUSED) {
		/* An explicit request deserves a fresh connect, not the
		 * memory of one that failed a moment ago. */
		remote_retry_now(t.r);
	}
	while (f.step != TD_DONE && f.step != TD_REFUSED &&
	       f.step != TD_FAILED) {
		test_pause_before(f.step);
		switch (f.step) {
		case TD_ROSTER: f.rc = step_roster(&t); break;
		case TD_PULL: f.rc = step_pull(&t, &f.pulled); break;
		case TD_VERIFY: f.rc = step_verify(&t, &f.verified); break;
		case TD_RECORD: f.rc = step_record(&t, &f.recorded); break;
		case TD_SERVE: f.rc = step_serve(&t, &f.served); break;
		case TD_RELIST: f.rc = step_relist(&t, &f.relisted); break;
		case TD_RESUME: f.rc = step_resume(&t, &f.resumed); break;
		case TD_DESTROY:
			f.rc = step_destroy(&t, &f.maybe_sent);
			break;
		case TD_CONFIRM: f.rc = step_confirm(&t); break;
		case TD_ARCHIVE: {
			struct buf rep, orph;
			char oerr[256] = "";
			buf_init(&rep, 8u << 20);
			buf_init(&orph, 64u << 10);
			/* What keeps billing is named, never deleted. */
			if (f.can_destroy &&
			    fleet_orphans(c->fleet, pi, id, &orph, oerr,
					  sizeof(oerr)))
				note(&t, "note: could not list what still bills "
				     "(%s)", oerr);
			else if (orph.len)
				note(&t, "still billing after the destroy (not "
				     "deleted by rgtfs):\n%s", orph.data);
			buf_cleanup(&orph);
			if (f.can_destroy) {
				/* name the verbs: a plain host's "destroy" is
				 * the user's own teardown_command */
				stats_add(STATS_TEARDOWNS_DESTROYED, 1);
				struct buf vb;
				buf_init(&vb, 4096);
				for (size_t i = 0; i < t.verbs_accepted; i++)
					buf_appendf(&vb, "%s%s", i ? ", " : "",
						    t.caps.destroy[i].name);
				if (t.verbs_accepted < t.caps.n_destroy)
					buf_appendf(&vb, "; gone before %s",
						    t.caps.destroy[t.verbs_accepted]
							    .name);
				buf_appendf(&rep, "done: %s/%s destroyed (%s) "
					    "after a verified copy of %" PRIu64
					    " files (%" PRIu64 " bytes)%s\n%s",
					    t.plat, id,
					    vb.data ? vb.data : "",
					    t.files, t.bytes,
					    t.via_cloud ?
						    " of its bucket copy: the box "
						    "itself could not be checked" :
						    "",
					    t.log.data);
				buf_cleanup(&vb);
			}
			else
				buf_appendf(&rep, "done: %s/%s archived after "
					    "a verified copy of %" PRIu64
					    " files (%" PRIu64 " bytes); it has "
					    "no destroy verb, so the box was "
					    "left running\n%s", t.plat, id,
					    t.files, t.bytes, t.log.data);
			f.rc = archive_verified(&t, rep.data);
			if (!f.rc)
				push_final(&t);
			if (f.rc)
				refuse(&t, f.rc, "destroyed, but writing the "
				       "archive failed: %s; the journal keeps "
				       "the verified copy", strerror(-f.rc));
			else
				fleet_set_teardown(c->fleet, pi, id, rep.data);
			buf_cleanup(&rep);
			if (!f.rc)
				fleet_forget(c->fleet, pi, id);
			break;
		}
		default: f.rc = -EINVAL; break;
		}
		if (f.rc)
			rc = f.rc;
		/* Interrupts count only until the destroy call was made. */
		f.interrupted = f.step < TD_DESTROY && is_cancelled(&t);
		if (f.interrupted && !f.rc) {
			rc = interrupted(&t);
			f.rc = rc;
		}
		enum td_step next = teardown_decide(&f);
		RGT_DEBUG_LOG("%s/%s: %s -> %s (rc %d)", t.plat, id,
			      teardown_step_name(f.step),
			      teardown_step_name(next), f.rc);
		f.step = next;
		f.rc = 0;
	}
	if (f.step == TD_DONE)
		rc = 0;
	if (f.step == TD_REFUSED && t.carried == ARCH_RECORDED)
		/* Nothing was sent by this run or any before it: the journal
		 * proves nothing and must not be trusted later. */
		archive_delete_pending(c->store, t.plat, id);
out:
	if (rc) {
		struct buf b;
		buf_init(&b, 8u << 20);
		buf_appendf(&b, "%s: %s\n%s",
			    f.step == TD_FAILED ? "failed" : "refused",
			    t.reason[0] ? t.reason : strerror(-rc),
			    f.step == TD_FAILED ?
				    "a destroy call was made; the verified "
				    "copy is kept in the cache\n" :
			    t.carried != ARCH_RECORDED ?
				    "this run sent no destroy call, but an "
				    "earlier one was made and may still act; "
				    "its verified copy is kept in the cache\n" :
				    "nothing was destroyed; cached data is "
				    "kept\n");
		buf_appendf(&b, "%s", t.log.data ? t.log.data : "");
		fleet_set_teardown(c->fleet, pi, id, b.data ? b.data : "");
		buf_cleanup(&b);
		stats_add(f.step == TD_FAILED ? STATS_TEARDOWNS_FAILED :
						STATS_TEARDOWNS_REFUSED, 1);
		rgt_log(RGT_INFO, "%s/%s: teardown %s: %s", t.plat, id,
			f.step == TD_FAILED ? "failed" : "refused",
			t.reason[0] ? t.reason : strerror(-rc));
	} else {
		rgt_log(RGT_INFO, "%s/%s: teardown done", t.plat, id);
	}
	box_hash_abandon(&t);	/* a run that ended before the pull did */
	fleet_teardown_end(c->fleet, pi, id);
	roster_free(&t.roster);
	buf_cleanup(&t.log);
	free(t.pulled_sha);
	free(t.pulled_md5);
	free(t.manifest);
	free(t.verified);
	free(t.log_text);
	archive_free(t.journal);
	return rc;
}
