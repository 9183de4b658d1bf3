/*
 * manifest.c - the pull manifests (see manifest.h), built with jansson.
 */
#include "manifest.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void iso_utc(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) :
		      NULL;
	json_decref(o);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *r = realloc(s, n + 2);
	if (!r) {
		free(s);
		return NULL;
	}
	r[n] = '\n';
	r[n + 1] = '\0';
	return r;
}

char *manifest_build(const char *run_id, time_t created,
		     const struct roster *r)
{
	char when[32];
	json_t *files = json_array(), *tops = json_array();
	uint64_t nfiles = 0, nbytes = 0;

	iso_utc(created, when);
	for (size_t i = 0; i < r->n; i++) {
		const struct roster_entry *e = &r->v[i];
		if (e->type == 'd' && !strchr(e->path, '/'))
			json_array_append_new(tops, json_string(e->path));
		if (e->type != 'f')
			continue;
		if (strlen(e->sha256) != 64) {
			json_decref(files);
			json_decref(tops);
			return NULL;
		}
		json_array_append_new(files,
				      json_pack("{s:s,s:I,s:s}", "path",
						e->path, "bytes",
						(json_int_t)e->size, "sha256",
						e->sha256));
		nfiles++;
		nbytes += e->size;
	}
	json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:{s:I,s:I}}", "schema",
			      MANIFEST_SCHEMA, "run_id", run_id,
			      "created_at_utc", when, "top_level_dirs", tops,
			      "files", files, "totals", "files",
			      (json_int_t)nfiles, "bytes",
			      (json_int_t)nbytes);
	return dump(o);
}

void manifest_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (unsigned i = 0; i < n && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
}

char *manifest_verified(const char *run_id, const char *manifest,
			time_t verified, uint64_t files, uint64_t bytes)
{
	char when[32], hex[65];
	iso_utc(verified, when);
	manifest_sha256_hex(manifest, strlen(manifest), hex);
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "schema",
			      VERIFIED_SCHEMA, "run_id", run_id,
			      "manifest_sha256", hex, "verified_at_utc", when,
			      "files", (json_int_t)files, "bytes",
			      (json_int_t)bytes);
	return dump(o);
}
