/*
 * check.h - the unit tests' harness, after LMDB's E(): CHECK(expr) and
 * CHECK_ERR(call, -ENOENT) print file:line and the expression on failure
 * and count it; CHECK_DONE() prints "N passed, N failed" and returns the
 * exit status.
 */
#ifndef RGT_CHECK_H
#define RGT_CHECK_H

#include <stdio.h>
#include <string.h>

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

#endif
