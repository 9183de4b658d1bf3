/*
 * teardown.h - verified teardown: `rmdir MOUNT/<platform>/<id>`.
 *
 * roster -> pull -> verify -> record -> serve -> re-list -> destroy ->
 * confirm -> archive. Nothing is destroyed unless, in this very run, every
 * file of the roster was pulled, matched its SHA-256 from the box and
 * passed its load check, the manifests were committed to disk, every file
 * read back through the archive's own lookup (the path that serves it once
 * the box is gone) with the box's digest, and the box still listed exactly
 * the same files afterwards. teardown_decide() is the pure rule that says
 * so; teardown_instance() is the one place with effects.
 */
#ifndef RGT_TEARDOWN_H
#define RGT_TEARDOWN_H

#include <stdbool.h>
#include <stddef.h>

struct rgt_ctx;

enum td_step {
	TD_ROSTER,
	TD_PULL,
	TD_VERIFY,
	TD_RECORD,
	TD_SERVE,
	TD_RELIST,
	TD_RESUME,	/* an earlier run's sequence stopped between verbs */
	TD_DESTROY,
	TD_CONFIRM,
	TD_ARCHIVE,
	TD_DONE,
	TD_REFUSED,	/* stopped before destroy: nothing was changed */
	TD_FAILED,	/* destroy was (maybe) sent but not confirmed */
};

struct td_facts {
	enum td_step step;	/* the step just run */
	int rc;			/* its result */
	bool pulled;		/* every roster file is in the cache */
	bool verified;		/* every digest and load check passed */
	bool recorded;		/* manifests committed durably */
	bool served;		/* the record reads back with the box's digests */
	bool relisted;		/* the box lists the same files as before */
	bool can_destroy;	/* the platform has a destroy verb */
	bool maybe_sent;	/* a failed destroy call may have acted */
	bool interrupted;	/* the rmdir was interrupted (Ctrl-C) */
	/*
	 * TD_RESUME: an earlier run, verified like this one must be, had
	 * its first verbs accepted (AutoDL's power_off) and stopped before
	 * the rest; its journal read back whole with its digests in this
	 * run. Only this or the proofs above lead to TD_DESTROY.
	 */
	bool resumed;
};

/* Pure: the next step after @f->step. */
enum td_step teardown_decide(const struct td_facts *f);
const char *teardown_step_name(enum td_step s);

/*
 * Run the teardown of instance @id of platform @pi, or archive it from the
 * cache when it is gone. Blocks until done. 0 or -errno (EHOSTUNREACH,
 * EIO, EBUSY, EINVAL, ENOSPC, ENODATA, ETIMEDOUT, EINTR...); the report is
 * in the instance's `teardown` file, its first line "refused: ..." when
 * nothing was sent, "failed: ..." when a destroy was (or may have been).
 * @cancelled (may be NULL) is asked between steps and during long ones:
 * true before the destroy call stops the run (EINTR, nothing destroyed);
 * after it, the run finishes.
 */
int teardown_instance(struct rgt_ctx *c, size_t pi, const char *id,
		      bool (*cancelled)(void *arg), void *arg);

#endif
