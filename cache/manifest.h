/*
 * manifest.h - PULL_MANIFEST.json and PULL_VERIFIED.json in the schemas of
 * remote-gpu-trainer (PLATFORMS.md 0.2), so the evidence rgtfs keeps is
 * the same evidence the seed's scripts produce and check. Pure.
 */
#ifndef RGT_MANIFEST_H
#define RGT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "roster.h"

#define MANIFEST_SCHEMA "remote-gpu-trainer/PULL/v1"
#define VERIFIED_SCHEMA "remote-gpu-trainer/PULL-VERIFIED/v1"

/*
 * The manifest of the regular files of @r (every one must be hashed),
 * pretty JSON ending in a newline; malloc'd, NULL on error.
 */
char *manifest_build(const char *run_id, time_t created,
		     const struct roster *r);
/* PULL_VERIFIED.json for @manifest (its SHA-256 is recorded). */
char *manifest_verified(const char *run_id, const char *manifest,
			time_t verified, uint64_t files, uint64_t bytes);
/* Lower-case hex SHA-256 of @len bytes. */
void manifest_sha256_hex(const void *data, size_t len, char hex[65]);

/* One entry of a parsed manifest's "files". */
struct manifest_file {
	char *path;		/* the exact name bytes (path_hex when given) */
	uint64_t bytes;
	char sha256[65];
};

/*
 * The inverse of manifest_build(), for the tools that check an archive
 * against its manifest: the "files" of the @len bytes at @text, in order.
 * -EIO (and a reason in @err) if it is not a PULL/v1 manifest, an entry
 * lacks a path, a size or a 64-digit lower-case sha256, a path (its exact
 * bytes: path_hex when given) is not a plain relative name (empty,
 * absolute, a trailing '/', an empty, "." or ".." component), or the
 * totals disagree with the list; -ENOMEM. Control bytes in a name are
 * kept (a NUL cannot occur).
 * *out is malloc'd: free with manifest_files_free().
 */
int manifest_parse(const char *text, size_t len, struct manifest_file **out,
		   size_t *n, char *err, size_t errlen);
void manifest_files_free(struct manifest_file *v, size_t n);

#endif
