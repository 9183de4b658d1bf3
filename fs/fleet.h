/*
 * fleet.h - what the tree knows about instances: one poller thread per
 * configured platform calls its adapter's list() once per poll_interval and
 * keeps the answer (and the last failure's reason) for the FUSE threads.
 *
 * Every instance ever listed is recorded in the store, so after a remount
 * with no network the platform directory still shows the last known
 * instances. Status rules (SPEC.md): a listed instance shows its state; when
 * the API fails, the last state stays for stale_after seconds after the last
 * good answer and then reads "unknown"; an instance a successful list no
 * longer contains shows "gone" while the cache holds data of it, and is
 * dropped otherwise.
 *
 * Threads: all functions may be called from any thread. struct remote
 * pointers handed out stay valid until fleet_free().
 */
#ifndef RGT_FLEET_H
#define RGT_FLEET_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct rgt_config;
struct rgt_section;
struct store;
struct remote;
struct fleet;

int fleet_new(const struct rgt_config *cfg, struct store *st,
	      struct fleet **out, char *err, size_t errlen);
/* Start the poller threads (after any fork). */
int fleet_start(struct fleet *fl);
/* Stop the pollers (idempotent); queries still work afterwards. */
void fleet_stop(struct fleet *fl);
/* Stop pollers, free instances and their remotes. */
void fleet_free(struct fleet *fl);

/*
 * Two indexes: a *section* @pi (one configured account or host, with its
 * poller and adapter) and a *directory* @d (MOUNT/<kind>/, shared by every
 * section of that kind). Instances belong to sections.
 */
size_t fleet_ndirs(struct fleet *fl);
const char *fleet_dir_name(struct fleet *fl, size_t d);
int fleet_dir_index(struct fleet *fl, const char *name);
/* The section of directory @d that shows instance @id, or -1. */
int fleet_instance_section(struct fleet *fl, size_t d, const char *id);
/* The kind (directory name) of section @pi: "vastai", "ssh"... */
const char *fleet_platform_name(struct fleet *fl, size_t pi);
const struct rgt_section *fleet_section(struct fleet *fl, size_t pi);

/* Visible instance ids of directory @d; free with fleet_ids_free(). */
int fleet_instance_ids(struct fleet *fl, size_t d, char ***ids, size_t *n);
void fleet_ids_free(char **ids, size_t n);
bool fleet_instance_visible(struct fleet *fl, size_t pi, const char *id);

enum fleet_file {
	FF_STATUS,
	FF_STATUS_MSG,
	FF_INFO,
	FF_SSH,
	FF_TEARDOWN,
	FF_ERROR,
};

/* Current content of an instance's virtual file. -ENOENT: no instance. */
int fleet_instance_file(struct fleet *fl, size_t pi, const char *id,
			enum fleet_file which, struct buf *out);
/* MOUNT/<kind>/.error: empty, or each section's last failure + "\n". */
int fleet_platform_error(struct fleet *fl, size_t d, struct buf *out);
/* The instance's remote (created on first use); NULL if no instance. */
struct remote *fleet_remote(struct fleet *fl, size_t pi, const char *id);

/* ---- for teardown (calls to the adapter are serialised with the poller) */

/* The state `status` shows now. -ENOENT: no such instance. */
int fleet_instance_state(struct fleet *fl, size_t pi, const char *id,
			 int *state);
/* What section @pi's platform can do; -EIO (all zero) if no adapter. */
struct platform_caps;
int fleet_caps(struct fleet *fl, size_t pi, struct platform_caps *out);
/* Verb @step of the platform's destroy sequence for @id (platform_ops). */
int fleet_destroy(struct fleet *fl, size_t pi, const char *id, size_t step,
		  bool *maybe_sent, char *err, size_t errlen);
/* After a destroy: what still bills (platform_ops.orphans), appended. */
/*
 * A destroy sequence stopped between verbs: watch the instance from now
 * (@on) or stop. Watched means every list since has answered and shown it
 * not running, so its earlier verified copy still stands (teardown.c).
 */
void fleet_seq_watch(struct fleet *fl, size_t pi, const char *id, bool on);
bool fleet_seq_watched(struct fleet *fl, size_t pi, const char *id);
/* platform_ops.destroy_ready, or 1 where the adapter has none. */
int fleet_destroy_ready(struct fleet *fl, size_t pi, const char *id,
			size_t step);
int fleet_orphans(struct fleet *fl, size_t pi, const char *id, struct buf *out,
		  char *err, size_t errlen);
/*
 * The instance's log from the platform's log API (platform_ops.log, under
 * the adapter lock, so it waits for a list call under way), appended to
 * @out. One answer (or failure) is reused for about two seconds, so the
 * lookup, open and fstat of one `cat` cost one API read. -EIO with the
 * reason in @err when the section has no adapter or no log API.
 */
int fleet_log(struct fleet *fl, size_t pi, const char *id, struct buf *out,
	      char *err, size_t errlen);
/* The length of the last log fleet_log() read for @id, without asking the
 * platform (0 if none yet): what `stat log` shows. */
size_t fleet_log_size(struct fleet *fl, size_t pi, const char *id);
/*
 * One list call now (applied as a poll). *listed is false only when the
 * call succeeded with a complete list that lacks @id.
 */
int fleet_poll_now(struct fleet *fl, size_t pi, const char *id, bool *listed,
		   char *err, size_t errlen);
/* What `teardown` shows (copied). */
void fleet_set_teardown(struct fleet *fl, size_t pi, const char *id,
			const char *text);
/* Mark a teardown running; -EBUSY if one already is. */
int fleet_teardown_begin(struct fleet *fl, size_t pi, const char *id);
void fleet_teardown_end(struct fleet *fl, size_t pi, const char *id);
/* Copies of status_msg, info.json and ssh for the archive (malloc'd). */
int fleet_snapshot(struct fleet *fl, size_t pi, const char *id,
		   char **status_msg, char **info, char **ssh);
/* The instance was archived: hide it and drop its records. */
void fleet_forget(struct fleet *fl, size_t pi, const char *id);

/*
 * Eviction's pin rule: the instance's lifecycle (life_of) from the fleet
 * and the store, judged by life_pinned(). @arg is the fleet.
 */
bool fleet_pinned(void *arg, const char *plat, const char *id);

/* Number of list calls made so far (tests and tools). */
unsigned long fleet_polls(struct fleet *fl, size_t pi);

/* ---- for the fleet view (MOUNT/fleet.tsv, .rgtfs/stats) */

/* Number of sections @pi may index (configured platform and ssh ones). */
size_t fleet_nsections(struct fleet *fl);
/*
 * Adapter calls of section @pi that may reach its platform (list, destroy,
 * log, orphans, password; an ssh section's list is its probe) and how many
 * of them failed, since the mount. One list may be several HTTP requests
 * (pages, retries inside the adapter).
 */
void fleet_api_counts(struct fleet *fl, size_t pi, unsigned long *calls,
		      unsigned long *failures);
/* What the last list said of @id's GPU, price and start (platform.h:
 * struct rgt_facts, unknown fields as there). -ENOENT: no instance. */
struct rgt_facts;
int fleet_instance_facts(struct fleet *fl, size_t pi, const char *id,
			 struct rgt_facts *out);

#endif
