/*
 * manifest.c - the pull manifests (see manifest.h), built with jansson.
 */
#include "manifest.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rpath.h"

static void iso_utc(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A directory name for top_level_dirs: as a string, escaped if need be. */
static json_t *name_entry(const char *name)
{
	if (rpath_utf8_valid(name))
		return json_string(name);
	struct buf shown;
	buf_init(&shown, 64u << 10);
	json_t *v = rpath_escape(&shown, name) ? NULL : json_string(shown.data);
	buf_cleanup(&shown);
	return v;
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

/*
 * One file's entry. A name that is not UTF-8 cannot be a JSON string: its
 * entry carries the exact bytes as "path_hex" and, as "path", the escaped
 * form a person reads (rpath_escape: \xNN for each such byte). NULL only
 * when out of memory.
 */
static json_t *file_entry(const struct roster_entry *e)
{
	if (rpath_utf8_valid(e->path))
		return json_pack("{s:s,s:I,s:s}", "path", e->path, "bytes",
				 (json_int_t)e->size, "sha256", e->sha256);
	struct buf shown;
	buf_init(&shown, 64u << 10);
	char *hex = rpath_hex_encode(e->path);
	json_t *o = NULL;
	if (hex && !rpath_escape(&shown, e->path))
		o = json_pack("{s:s,s:s,s:I,s:s}", "path", shown.data,
			      "path_hex", hex, "bytes", (json_int_t)e->size,
			      "sha256", e->sha256);
	free(hex);
	buf_cleanup(&shown);
	return o;
}

char *manifest_build(const char *run_id, time_t created,
		     const struct roster *r)
{
	char when[32];
	json_t *files = json_array(), *tops = json_array();
	uint64_t nfiles = 0, nbytes = 0;
	bool ok = files && tops;

	iso_utc(created, when);
	for (size_t i = 0; ok && i < r->n; i++) {
		const struct roster_entry *e = &r->v[i];
		if (e->type == 'd' && !strchr(e->path, '/'))
			ok = !json_array_append_new(tops, name_entry(e->path));
		if (!ok || e->type != 'f')
			continue;
		if (strlen(e->sha256) != 64) {
			ok = false;
			break;
		}
		/* Every file is in the list, or there is no manifest: the
		 * totals below must count exactly what is listed. */
		ok = !json_array_append_new(files, file_entry(e));
		nfiles++;
		nbytes += e->size;
	}
	if (!ok || json_array_size(files) != nfiles) {
		json_decref(files);
		json_decref(tops);
		return NULL;
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

void manifest_files_free(struct manifest_file *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].path);
	free(v);
}

static bool hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* A manifest is a file's evidence: it is read as hostile (STYLE 11). */
#define MANIFEST_MAX (256u << 20)

/*
 * Is @p a name under the checkpoint root, spelt one way only: not empty,
 * not absolute, no empty component ("a//b", a trailing '/') and no "." or
 * "..". The tools write DIR/path and look files up by it: anything else
 * could leave DIR or name one file twice. Control bytes are allowed (a
 * name on the box may hold a newline; the tools escape it when printing);
 * a NUL cannot occur (jansson refuses \u0000, rpath_hex_decode 00).
 */
static bool rel_path_ok(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (;;) {
		const char *end = strchr(p, '/');
		if (!end)
			end = p + strlen(p);
		size_t l = (size_t)(end - p);
		if (!l || (l == 1 && p[0] == '.') ||
		    (l == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!*end)
			return true;
		p = end + 1;
	}
}

int manifest_parse(const char *text, size_t len, struct manifest_file **out,
		   size_t *nout, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = len <= MANIFEST_MAX ? json_loadb(text, len, 0, &je) : NULL;
	struct manifest_file *v = NULL;
	size_t n = 0, i;
	uint64_t bytes = 0;
	int rc = -EIO;

	if (!o) {
		snprintf(err, errlen, "not JSON%s", len > MANIFEST_MAX ?
			 " (too large)" : "");
		return -EIO;
	}
	const char *schema = json_string_value(json_object_get(o, "schema"));
	json_t *files = json_object_get(o, "files");
	json_t *totals = json_object_get(o, "totals");
	if (!schema || strcmp(schema, MANIFEST_SCHEMA)) {
		snprintf(err, errlen, "schema is not %s", MANIFEST_SCHEMA);
		goto out;
	}
	if (!json_is_array(files) || !json_is_object(totals)) {
		snprintf(err, errlen, "no \"files\" list or no \"totals\"");
		goto out;
	}
	v = calloc(json_array_size(files) + 1, sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	json_t *e;
	json_array_foreach(files, i, e) {
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *hex =
			json_string_value(json_object_get(e, "path_hex"));
		const char *sha =
			json_string_value(json_object_get(e, "sha256"));
		json_t *b = json_object_get(e, "bytes");
		if (!path || !*path || !json_is_integer(b) ||
		    json_integer_value(b) < 0 || !hex64(sha)) {
			snprintf(err, errlen, "files[%zu]: no path, bytes or "
				 "sha256", i);
			goto out;
		}
		/* path_hex holds the exact bytes of a name that is not
		 * UTF-8; "path" is then only its escaped, readable form. */
		v[n].path = hex ? rpath_hex_decode(hex) : strdup(path);
		if (!v[n].path) {
			if (hex)
				snprintf(err, errlen, "files[%zu]: bad path_hex",
					 i);
			else
				rc = -ENOMEM;
			goto out;
		}
		/* the exact bytes are what the tools use, so they are what
		 * is checked */
		if (!rel_path_ok(v[n].path)) {
			snprintf(err, errlen, "files[%zu]: path is not a plain "
				 "relative name (empty, absolute, or an empty, "
				 "\".\" or \"..\" component)", i);
			n++;		/* freed with the others */
			goto out;
		}
		v[n].bytes = (uint64_t)json_integer_value(b);
		memcpy(v[n].sha256, sha, 65);
		bytes += v[n].bytes;
		n++;
	}
	json_t *tf = json_object_get(totals, "files");
	json_t *tb = json_object_get(totals, "bytes");
	if (!json_is_integer(tf) || !json_is_integer(tb) ||
	    (uint64_t)json_integer_value(tf) != n ||
	    (uint64_t)json_integer_value(tb) != bytes) {
		snprintf(err, errlen, "totals do not match the %zu files "
			 "listed", n);
		goto out;
	}
	*out = v;
	*nout = n;
	v = NULL;
	rc = 0;
out:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	manifest_files_free(v, n);
	json_decref(o);
	return rc;
}
