/*
 * fuzz_rpath.c - remote names and paths: normalising (util/rpath.c), the
 * one joiner, the one escaper, the byte-exact hex form, and the mapping of
 * a remote path or name onto archive object keys (cache/archive_push.c).
 *
 * The input is two names split at its first NUL (the second may be empty).
 *
 * Invariants:
 *  - rpath_normalize() agrees with a reference written here: absolute,
 *    no empty or "." component, ".." refused; its output normalises to
 *    itself; joining a relative name gives exactly dir "/" rel;
 *  - rpath_escape() is one line with no control byte, valid UTF-8, and two
 *    different names never escape to the same text; rpath_escape_s() is
 *    terminated and clean too;
 *  - rpath_utf8_valid() agrees with the reference UTF-8 check in fuzz.h;
 *  - hex round-trips;
 *  - a mapped name (archive_name_encode) never holds '/' nor is "." or
 *    "..", and a mapped key (archive_key_encode) has no empty, "." or ".."
 *    segment, fits its budget, and decodes back to the path (unless it is
 *    the hashed form, which says -ENOENT).
 */
#include <ctype.h>
#include <errno.h>

#include "archive_push.h"
#include "buf.h"
#include "fuzz.h"
#include "rpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference normaliser: NULL for "not absolute" or a ".." component. */
static char *ref_normalize(const char *p)
{
	if (p[0] != '/')
		return NULL;
	size_t n = strlen(p);
	char *o = malloc(n + 2);
	size_t k = 0;
	if (!o)
		abort();
	for (size_t i = 0; i < n;) {
		while (i < n && p[i] == '/')
			i++;
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		size_t sl = j - i;
		if (sl == 2 && p[i] == '.' && p[i + 1] == '.') {
			free(o);
			return NULL;
		}
		if (sl && !(sl == 1 && p[i] == '.')) {
			o[k++] = '/';
			memcpy(o + k, p + i, sl);
			k += sl;
		}
		i = j;
	}
	if (!k)
		o[k++] = '/';
	o[k] = '\0';
	return o;
}

static void check_segments(const char *k, size_t n)
{
	size_t i = 0;
	while (i <= n) {
		const char *e = memchr(k + i, '/', n - i);
		size_t sl = (e ? (size_t)(e - k) : n) - i;
		FUZZ_ASSERT(sl > 0 && sl <= 255);
		FUZZ_ASSERT(!(sl == 1 && k[i] == '.'));
		FUZZ_ASSERT(!(sl == 2 && k[i] == '.' && k[i + 1] == '.'));
		i += sl + 1;
	}
}

static char *escaped(const char *name)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	FUZZ_ASSERT(rpath_escape(&b, name) == 0);
	FUZZ_ASSERT(fuzz_no_ctl(b.data ? b.data : "", b.len));
	FUZZ_ASSERT(fuzz_utf8(b.data ? b.data : "", b.len));
	char *s = b.data ? buf_take(&b) : strdup("");
	buf_cleanup(&b);
	FUZZ_ASSERT(s);
	return s;
}

static void one(const char *name)
{
	/* normalise, against the reference */
	char *n = strdup(name), *ref = ref_normalize(name);
	FUZZ_ASSERT(n);
	int rc = rpath_normalize(n);
	if (ref) {
		FUZZ_ASSERT(rc == 0 && !strcmp(n, ref));
		char *again = strdup(n);
		FUZZ_ASSERT(again && rpath_normalize(again) == 0 &&
			    !strcmp(again, n));
		free(again);
	} else {
		FUZZ_ASSERT(rc == -EINVAL);
	}
	free(ref);
	free(n);

	/* join under a root */
	char out[8192];
	if (name[0] != '/') {
		rc = rpath_join(out, sizeof(out), "/w/c", name);
		size_t want = 4 + (name[0] ? 1 + strlen(name) : 0);
		if (want < sizeof(out)) {
			FUZZ_ASSERT(rc == 0);
			FUZZ_ASSERT(!strncmp(out, "/w/c", 4));
			FUZZ_ASSERT(name[0] ? out[4] == '/' &&
						      !strcmp(out + 5, name)
					    : out[4] == '\0');
		} else {
			FUZZ_ASSERT(rc == -ENAMETOOLONG);
		}
		char *d = rpath_join_dup("/", name);
		FUZZ_ASSERT(d && d[0] == '/' && !strcmp(d + 1, name));
		free(d);
	} else {
		FUZZ_ASSERT(rpath_join(out, sizeof(out), "/w", name) ==
			    -EINVAL);
	}

	/* UTF-8, against the reference */
	FUZZ_ASSERT(rpath_utf8_valid(name) == fuzz_utf8(name, strlen(name)));

	/* escape in a fixed buffer */
	char small[40];
	const char *e = rpath_escape_s(name, small, sizeof(small));
	FUZZ_ASSERT(e && fuzz_terminated(e, sizeof(small)));
	FUZZ_ASSERT(fuzz_no_ctl(e, strlen(e)));

	/* hex both ways */
	char *hex = rpath_hex_encode(name);
	FUZZ_ASSERT(hex && strlen(hex) == 2 * strlen(name));
	char *back = rpath_hex_decode(hex);
	FUZZ_ASSERT(back && !strcmp(back, name));
	free(back);
	free(hex);
	back = rpath_hex_decode(name);
	if (back) {
		FUZZ_ASSERT(2 * strlen(back) == strlen(name));
		hex = rpath_hex_encode(back);
		FUZZ_ASSERT(hex);
		for (size_t i = 0; hex[i]; i++)
			FUZZ_ASSERT(hex[i] == tolower((unsigned char)name[i]));
		free(hex);
		free(back);
	}

	/* the archive's mapping of a name and of a path */
	char nm[256];
	if (archive_name_encode(name, nm, sizeof(nm)) == 0) {
		FUZZ_ASSERT(nm[0] && !strchr(nm, '/'));
		FUZZ_ASSERT(strcmp(nm, ".") && strcmp(nm, ".."));
		FUZZ_ASSERT(fuzz_printable_ascii(nm, strlen(nm)));
	}
	char key[1100], dec[1100];
	rc = archive_key_encode(name, 1024, key, sizeof(key));
	if (rc == 0) {
		size_t kl = strlen(key);
		FUZZ_ASSERT(kl <= 1024);
		FUZZ_ASSERT(fuzz_printable_ascii(key, kl));
		check_segments(key, kl);
		int drc = archive_key_decode(key, dec, sizeof(dec));
		if (drc == 0)
			FUZZ_ASSERT(!strcmp(dec, name));
		else
			FUZZ_ASSERT(drc == -ENOENT && key[0] == '%' &&
				    key[1] == '%');
	} else {
		FUZZ_ASSERT(rc == -EINVAL && !name[0]);
	}
	/* a key decoded was one encode writes: it maps back to itself. Only
	 * for keys S3 can hold (S3_KEY_MAX, 1024 bytes, which the listing
	 * enforces): a longer one decodes, but encode, whose budget is what
	 * is left of those 1024 bytes, writes the hashed form for it. */
	if (strlen(name) <= 1024 &&
	    archive_key_decode(name, dec, sizeof(dec)) == 0) {
		FUZZ_ASSERT(archive_key_encode(dec, 1024, key,
					       sizeof(key)) == 0);
		FUZZ_ASSERT(!strcmp(key, name));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a = fuzz_strndup(data, size);
	size_t al = strlen(a);
	char *b = al < size ? fuzz_strndup(data + al + 1, size - al - 1)
			    : strdup("");
	FUZZ_ASSERT(b);

	one(a);
	one(b);
	char *ea = escaped(a), *eb = escaped(b);
	if (strcmp(a, b))
		FUZZ_ASSERT(strcmp(ea, eb) != 0);
	else
		FUZZ_ASSERT(!strcmp(ea, eb));
	free(ea);
	free(eb);
	free(a);
	free(b);
	return 0;
}
