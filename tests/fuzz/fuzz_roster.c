/*
 * fuzz_roster.c - the roster text a box sends back (cache/roster.c): GNU
 * find's "%y %s %T@ %P\0" records after the mark, and a hash tool's line.
 *
 * Invariants: a roster taken is sorted by path, at most ROSTER_MAX_ENTRIES
 * long, and no path in it can leave checkpoint_dir (not empty, no leading
 * '/', no ".." component); it compares equal to itself; the totals count
 * only regular files; a roster refused is empty with a reason. A hash
 * taken is 64 lower-case hex digits.
 */
#include <errno.h>

#include "fuzz.h"
#include "roster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *p)
{
	size_t n = strlen(p);
	FUZZ_ASSERT(n > 0 && p[0] != '/');
	size_t i = 0;
	while (i <= n) {
		const char *e = strchr(p + i, '/');
		size_t sl = (e ? (size_t)(e - p) : n) - i;
		FUZZ_ASSERT(!(sl == 2 && p[i] == '.' && p[i + 1] == '.'));
		i += sl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *out = (const char *)data;
	struct roster r = { 0 };
	char err[256];
	int rc;

	err[0] = '\0';
	rc = roster_parse(out, size, &r, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(r.n <= ROSTER_MAX_ENTRIES);
		uint64_t files = 0, bytes = 0, nf, nb;
		for (size_t i = 0; i < r.n; i++) {
			check_path(r.v[i].path);
			if (i)
				FUZZ_ASSERT(strcmp(r.v[i - 1].path,
						   r.v[i].path) <= 0);
			if (r.v[i].type == 'f') {
				files++;
				bytes += r.v[i].size;
			}
		}
		roster_totals(&r, &nf, &nb);
		FUZZ_ASSERT(nf == files && nb == bytes);
		FUZZ_ASSERT(roster_compare(&r, &r, err, sizeof(err)) == 0);
	} else {
		FUZZ_ASSERT(rc == -EBADMSG || rc == -ENOMEM);
		FUZZ_ASSERT(r.n == 0 && r.v == NULL && err[0]);
	}
	roster_free(&r);

	char hex[65];
	if (roster_parse_hash(out, size, hex) == 0) {
		FUZZ_ASSERT(strlen(hex) == 64);
		for (int i = 0; i < 64; i++)
			FUZZ_ASSERT((hex[i] >= '0' && hex[i] <= '9') ||
				    (hex[i] >= 'a' && hex[i] <= 'f'));
	}
	return 0;
}
