/*
 * archive.h - what rgtfs keeps of an instance after its teardown: the
 * verified file list, the manifests, the report and the snapshots of
 * info.json and the log. One record per instance in the store,
 * "arch\0PLAT\0ID" -> JSON; the bytes themselves are the ordinary cached
 * blocks of each file, keyed by the file's identity on the box (root/path,
 * size, mtime), so MOUNT/archive serves them with no network at all.
 *
 * Threads: any; records are read and written in their own transactions.
 */
#ifndef RGT_ARCHIVE_H
#define RGT_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xfer.h"

struct store;
struct fetch_file;

/*
 * Where a teardown journal ("td" record) stands. Only a journal whose
 * re-list passed and whose destroy call was (about to be) made is evidence
 * that the box may be gone: RECORDED is not (item: a refused run's journal
 * must never be taken for a verified copy later).
 */
enum archive_phase {
	ARCH_RECORDED = 0,		/* verified and recorded; nothing sent */
	ARCH_DESTROY_REQUESTED,		/* written just before the destroy call */
	ARCH_DESTROY_ACCEPTED,		/* the platform accepted it */
	ARCH_DESTROY_UNKNOWN,		/* the call's outcome is unknown */
};

const char *archive_phase_name(enum archive_phase ph);

struct archive_file {
	char *path;		/* relative to root */
	uint64_t size;
	int64_t mtime;
	char sha256[65];
	/* Bytes that came from a bucket (archive.src_cloud): the object's
	 * path in that bucket's tree and its ETag, which key its blocks.
	 * NULL/"": they came from the box (root + path). */
	char *src;
	char etag[XFER_ETAG_MAX];
};

struct archive {
	char *platform;
	char *id;
	char *root;		/* the box's checkpoint_dir */
	char *status_msg;
	char *info;		/* info.json snapshot */
	char *ssh;
	char *report;		/* the teardown report */
	char *manifest;		/* PULL_MANIFEST.json, or NULL */
	char *verified;		/* PULL_VERIFIED.json, or NULL */
	char *log_path;		/* NULL: no log kept */
	/* The platform's own log (its log API: RunPod, vast.ai) as read just
	 * before the destroy, when there is no log_path; NULL: none. */
	char *log_text;
	uint64_t log_size;
	int64_t log_mtime;
	struct archive_file *files;	/* sorted by path */
	size_t nfiles;
	char **dirs;			/* sorted */
	size_t ndirs;
	enum archive_phase phase;	/* journals only */
	/* The [cloud:NAME] the files with a src came from; NULL: none. */
	char *src_cloud;
	/* Not stored: where missing blocks of those files may be fetched
	 * (that bucket's remote), or NULL: the store alone. */
	struct remote *src_remote;
};

void archive_free(struct archive *a);
/* Write @a durably (record committed and synced). */
int archive_save(struct store *st, const struct archive *a);
/*
 * The teardown journal: the same record under "td\0PLAT\0ID", written once
 * the copy is verified and before the destroy call, so that whatever
 * happens after that call (a crash, a platform slow to confirm) the
 * evidence survives and a later rmdir can still archive it as verified.
 */
int archive_save_pending(struct store *st, const struct archive *a);
int archive_load_pending(struct store *st, const char *plat, const char *id,
			 struct archive **out);
/* Move the journal to @ph (one small synced write; see archive.c). */
int archive_set_phase(struct store *st, const char *plat, const char *id,
		      enum archive_phase ph);
/* The journal's phase; -ENOENT if there is no journal. Cheap. */
int archive_get_phase(struct store *st, const char *plat, const char *id,
		      enum archive_phase *ph);
/*
 * Phase plus how far a destroy sequence got (AutoDL: power_off, then
 * release): @verbs is the number of verbs the platform accepted
 * (DESTROY_ACCEPTED), or the index of the verb about to be sent
 * (DESTROY_REQUESTED) or of the one whose outcome is unknown
 * (DESTROY_UNKNOWN). 0 with a phase past RECORDED: the first verb, or a
 * record written before the count existed (then nothing is resumed).
 */
int archive_set_progress(struct store *st, const char *plat, const char *id,
			 enum archive_phase ph, unsigned verbs);
int archive_get_progress(struct store *st, const char *plat, const char *id,
			 enum archive_phase *ph, unsigned *verbs);
/* Pure: the stored form of a phase record; -EINVAL (and RECORDED) when
 * it is not one. */
int archive_phase_parse(const char *s, size_t len, enum archive_phase *ph,
			unsigned *verbs);
/* Drop the journal of @plat/@id (synced). */
int archive_delete_pending(struct store *st, const char *plat,
			   const char *id);
/*
 * The record as archive_save() stores it (compact JSON, malloc'd), or NULL
 * when out of memory; and its inverse, for a record that travelled (the
 * RGTFS_ARCHIVE.json of a pushed archive): -EIO if @len bytes at @text are
 * not a record of @plat/@id (the record names itself; a record of another
 * instance is refused), -ENOMEM. The decoded record has no src_remote.
 */
char *archive_record_json(const struct archive *a);
int archive_from_json(const char *text, size_t len, const char *plat,
		      const char *id, struct archive **out);
/* -ENOENT if there is none. */
int archive_load(struct store *st, const char *plat, const char *id,
		 struct archive **out);
/* Is there an archive of @plat/@id? (cheap: no parse) */
bool archive_exists(struct store *st, const char *plat, const char *id);
/* Remove the record and every cached block of its files and log. */
int archive_delete(struct store *st, const char *plat, const char *id);
/* Names with at least one archive / ids archived for @plat. */
int archive_platforms(struct store *st, char ***out, size_t *n);
int archive_ids(struct store *st, const char *plat, char ***out, size_t *n);
void archive_names_free(char **v, size_t n);

/*
 * The one way to the bytes of an archived file: its absolute path on the
 * box (rpath_join of root and path) and a fetch_file with no remote, so
 * the bytes come from the store alone. The tree, the teardown's serve
 * check and archive_delete() all go through these.
 */
int archive_file_path(const struct archive *a, const struct archive_file *f,
		      char *out, size_t len);
int archive_file_open(const struct archive *a, const struct archive_file *f,
		      struct fetch_file *ff);
/* The log snapshot; -ENOENT if none was kept. */
int archive_log_open(const struct archive *a, struct fetch_file *ff);

/* Lookups inside one archive ("" is the checkpoints root). */
const struct archive_file *archive_file_at(const struct archive *a,
					   const char *rel);
bool archive_dir_at(const struct archive *a, const char *rel);
/* Direct children of dir @rel: calls @fn(name, is_dir, file or NULL). */
int archive_children(const struct archive *a, const char *rel,
		     int (*fn)(void *arg, const char *name, bool is_dir,
			       const struct archive_file *f),
		     void *arg);

#endif
