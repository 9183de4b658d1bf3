/*
 * rpath.h - remote paths and names, computed in one place.
 *
 * A file's cache identity is built from its absolute path on the box
 * (fetch_file_id), so every piece of code that turns (checkpoint root,
 * relative path) into that absolute path must build byte-for-byte the same
 * string: the tree, the fetcher, the teardown's roster, pull and verify, the
 * archive and its deletion. They all call rpath_join(); nothing else joins
 * remote paths. Roots are normalised once (rpath_normalize) when the config
 * is read, so "/workspace/checkpoints/", "/workspace//checkpoints" and
 * "/workspace/checkpoints" are one directory with one set of file ids.
 *
 * Names are bytes: a remote name need not be UTF-8. rpath_escape() is the
 * one way a name is shown to a person (reports, logs), so a newline or an
 * escape sequence in a name can never forge a line; rpath_hex_*() carry the
 * exact bytes through JSON, which only holds UTF-8.
 *
 * Pure; unit-tested (tests/unit/test_rpath.c).
 */
#ifndef RGT_RPATH_H
#define RGT_RPATH_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/*
 * Normalise an absolute remote path in place: collapse repeated slashes,
 * drop "." components and any trailing slash ("/" stays "/"). -EINVAL if
 * it is not absolute or has a ".." component (rgtfs never climbs).
 */
int rpath_normalize(char *path);

/*
 * @dir "/" @rel into @out. @dir is a normalised absolute path; @rel is
 * relative ("" means @dir itself), with no leading slash. -ENAMETOOLONG if
 * it does not fit, -EINVAL if @rel is absolute.
 */
int rpath_join(char *out, size_t len, const char *dir, const char *rel);

/* Same, malloc'd; NULL on error. */
char *rpath_join_dup(const char *dir, const char *rel);

/* Is @s (NUL-terminated) valid UTF-8 (what a JSON string can hold)? */
bool rpath_utf8_valid(const char *s);

/*
 * Append @name to @b as a person should see it: printable UTF-8 as is;
 * backslash as "\\"; control characters as \n, \t, \r or \xNN; bytes that
 * are not UTF-8 as \xNN. The result is one line that cannot be mistaken
 * for another name.
 */
int rpath_escape(struct buf *b, const char *name);

/* The escaped form in a fixed buffer (truncated with "..."), for logs. */
const char *rpath_escape_s(const char *name, char *out, size_t len);

/* Lower-case hex of the bytes of @s (malloc'd) and back (-EINVAL). */
char *rpath_hex_encode(const char *s);
char *rpath_hex_decode(const char *hex);

#endif
