/*
 * manifest.h - PULL_MANIFEST.json and PULL_VERIFIED.json in the schemas of
 * remote-gpu-trainer (PLATFORMS.md 0.2), so the evidence rgtfs keeps is
 * the same evidence the seed's scripts produce and check. Pure.
 */
#ifndef RGT_MANIFEST_H
#define RGT_MANIFEST_H

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

#endif
