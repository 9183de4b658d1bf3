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

struct store;

struct archive_file {
	char *path;		/* relative to root */
	uint64_t size;
	int64_t mtime;
	char sha256[65];
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
	uint64_t log_size;
	int64_t log_mtime;
	struct archive_file *files;	/* sorted by path */
	size_t nfiles;
	char **dirs;			/* sorted */
	size_t ndirs;
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
