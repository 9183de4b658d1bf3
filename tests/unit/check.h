/*
 * check.h - the unit tests' harness, after LMDB's E(): CHECK(expr) and
 * CHECK_ERR(call, -ENOENT) print file:line and the expression on failure
 * and count it; CHECK_DONE() prints "N passed, N failed" and returns the
 * exit status.
 */
#ifndef RGT_CHECK_H
#define RGT_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_passed, check_failed;

#define CHECK(expr)                                                            \
	do {                                                                   \
		if (expr) {                                                    \
			check_passed++;                                        \
		} else {                                                       \
			check_failed++;                                        \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #expr);                              \
		}                                                              \
	} while (0)

#define CHECK_ERR(call, want)                                                  \
	do {                                                                   \
		long got_ = (long)(call);                                      \
		if (got_ == (long)(want)) {                                    \
			check_passed++;                                        \
		} else {                                                       \
			check_failed++;                                        \
			fprintf(stderr, "%s:%d: %s = %ld, want %ld\n",         \
				__FILE__, __LINE__, #call, got_,               \
				(long)(want));                                 \
		}                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		if (g_ && w_ && !strcmp(g_, w_)) {                             \
			check_passed++;                                        \
		} else {                                                       \
			check_failed++;                                        \
			fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n",   \
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)",  \
				w_ ? w_ : "(null)");                           \
		}                                                              \
	} while (0)

#define CHECK_DONE()                                                           \
	(printf("%d passed, %d failed\n", check_passed, check_failed),        \
	 check_failed ? 1 : 0)

/*
 * The fixtures directory tests/fixtures/@sub into @out: $RGT_FIXTURES/@sub
 * if set, else next to @file (the test's __FILE__, ".../unit/test_x.c"),
 * as given (absolute, or relative to the cwd) or relative to the cwd's
 * parent (meson: the build root, while tests run in build/tests). @probe,
 * a file inside it, must be readable. Exits when nothing is found.
 */
static inline void check_fixture_dir(char *out, size_t len, const char *file,
				     const char *sub, const char *probe)
{
	const char *env = getenv("RGT_FIXTURES");
	const char *unit = NULL, *p = file;
	char path[8192];

	if (env) {
		snprintf(out, len, "%s%s%s", env, *sub ? "/" : "", sub);
		return;
	}
	while ((p = strstr(p, "unit/test_"))) {
		unit = p;
		p++;
	}
	for (int up = 0; unit && up < 2; up++) {
		snprintf(out, len, "%s%.*sfixtures%s%s",
			 up && file[0] != '/' ? "../" : "",
			 (int)(unit - file), file, *sub ? "/" : "", sub);
		snprintf(path, sizeof(path), "%s/%s", out, probe);
		if (!access(path, R_OK))
			return;
	}
	fprintf(stderr, "cannot find the fixtures near %s; set RGT_FIXTURES\n",
		file);
	exit(1);
}

#endif
