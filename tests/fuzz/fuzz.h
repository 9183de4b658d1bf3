/*
 * fuzz.h - what every libFuzzer target in tests/fuzz shares: an assertion
 * that survives NDEBUG and names the broken invariant, and checks of the
 * shapes the parsers promise (one line, no control bytes, UTF-8, a
 * directory name).
 *
 * A target only checking "no crash" finds half of what it could: each one
 * asserts what its header promises about accepted input, so a parser that
 * takes a hostile answer and hands out a name with a '/' in it fails here
 * as loudly as one that reads past the end.
 */
#ifndef RGT_FUZZ_H
#define RGT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Abort (libFuzzer then saves the input) when @cond does not hold. */
#define FUZZ_ASSERT(cond)                                                   \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",     \
				__FILE__, __LINE__, #cond);                  \
			abort();                                            \
		}                                                           \
	} while (0)

/* A NUL-terminated copy of @n bytes of @p (the parsers' "string" inputs). */
static inline char *fuzz_strndup(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Is @s NUL-terminated within @cap bytes? */
static inline bool fuzz_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* No byte below 0x20 and no DEL in @n bytes of @s: one line, no escapes. */
static inline bool fuzz_no_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* Printable ASCII only (what the escapers of untrusted bytes emit). */
static inline bool fuzz_printable_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

/*
 * A reference UTF-8 check written apart from the code under test (RFC 3629
 * table 4): no overlong forms, no surrogates, nothing past U+10FFFF.
 */
static inline bool fuzz_utf8(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned char lo = 0x80, hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			if (c == 0xe0)
				lo = 0xa0;
			if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (i + k >= n)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t j = 2; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

/* A directory name as platform.h promises rgt_instance.id. */
static inline bool fuzz_dir_name(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == 0 || n == cap)
		return false;
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* A reason line for a caller's err buffer: terminated, one line with no
 * control byte (what .error shows; a vendor's text must not forge lines). */
static inline void fuzz_check_err(const char *err, size_t cap)
{
	FUZZ_ASSERT(fuzz_terminated(err, cap));
	FUZZ_ASSERT(fuzz_no_ctl(err, strlen(err)));
}

#endif
