/*
 * test_rpath.c - remote paths and names: one joiner, one normaliser, one
 * escaper, one byte-exact encoding. The archive's bytes are keyed by the
 * joined path, so every spelling of a root must join to the same string.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "rpath.h"

static const char *norm(const char *in, char *buf, size_t len)
{
	snprintf(buf, len, "%s", in);
	return rpath_normalize(buf) ? "ERR" : buf;
}

static const char *shown(const char *name)
{
	static char out[256];
	return rpath_escape_s(name, out, sizeof(out));
}

int main(void)
{
	char b[256];
	CHECK_STR(norm("/workspace/checkpoints/", b, sizeof(b)),
		  "/workspace/checkpoints");
	CHECK_STR(norm("/workspace//checkpoints///", b, sizeof(b)),
		  "/workspace/checkpoints");
	CHECK_STR(norm("//workspace/./checkpoints/.", b, sizeof(b)),
		  "/workspace/checkpoints");
	CHECK_STR(norm("/", b, sizeof(b)), "/");
	CHECK_STR(norm("///", b, sizeof(b)), "/");
	CHECK_STR(norm("/a/../b", b, sizeof(b)), "ERR");
	CHECK_STR(norm("relative", b, sizeof(b)), "ERR");
	CHECK_STR(norm("/a/..b/c.", b, sizeof(b)), "/a/..b/c.");

	/* Every spelling of a root joins to one path. */
	const char *roots[] = { "/w/c", "/w/c/", "/w//c", "//w/./c//" };
	for (unsigned i = 0; i < 4; i++) {
		char root[64], out[128];
		snprintf(root, sizeof(root), "%s", roots[i]);
		CHECK(rpath_normalize(root) == 0);
		CHECK(rpath_join(out, sizeof(out), root, "run/best.pt") == 0);
		CHECK_STR(out, "/w/c/run/best.pt");
	}
	CHECK(rpath_join(b, sizeof(b), "/", "x") == 0);
	CHECK_STR(b, "/x");
	CHECK(rpath_join(b, sizeof(b), "/w", "") == 0);
	CHECK_STR(b, "/w");
	CHECK_ERR(rpath_join(b, sizeof(b), "/w", "/x"), -EINVAL);
	CHECK_ERR(rpath_join(b, 6, "/w", "long"), -ENAMETOOLONG);
	char *d = rpath_join_dup("/w/c", "a b\n$(x)");
	CHECK(d && !strcmp(d, "/w/c/a b\n$(x)"));
	free(d);

	/* UTF-8: what JSON strings can hold. */
	CHECK(rpath_utf8_valid("plain.pt"));
	CHECK(rpath_utf8_valid("caf\xc3\xa9 \xe6\x97\xa5.pt"));
	CHECK(rpath_utf8_valid("tab\there"));
	CHECK(!rpath_utf8_valid("bad\xff.pt"));
	CHECK(!rpath_utf8_valid("\xc0\xaf"));		/* overlong */
	CHECK(!rpath_utf8_valid("\xed\xa0\x80"));	/* surrogate */
	CHECK(!rpath_utf8_valid("\xf4\x90\x80\x80"));	/* > U+10FFFF */
	CHECK(!rpath_utf8_valid("cut\xe6\x97"));

	/* Escaping: one line, unambiguous. */
	CHECK_STR(shown("best.pt"), "best.pt");
	CHECK_STR(shown("a\nrefused: forged"), "a\\nrefused: forged");
	CHECK_STR(shown("back\\slash"), "back\\\\slash");
	CHECK_STR(shown("bad\xff"), "bad\\xff");
	CHECK_STR(shown("\x1b[31mred"), "\\x1b[31mred");
	CHECK_STR(shown("c1\xc2\x9b"), "c1\\xc2\\x9b");
	CHECK_STR(shown("caf\xc3\xa9"), "caf\xc3\xa9");
	char tiny[12];
	CHECK_STR(rpath_escape_s("0123456789abcdef", tiny, sizeof(tiny)),
		  "01234567...");

	/* Hex: the exact bytes, both ways. */
	char *h = rpath_hex_encode("a\xff\n");
	CHECK(h && !strcmp(h, "61ff0a"));
	char *back = h ? rpath_hex_decode(h) : NULL;
	CHECK(back && !strcmp(back, "a\xff\n"));
	free(h);
	free(back);
	CHECK(rpath_hex_decode("6") == NULL);
	CHECK(rpath_hex_decode("zz") == NULL);
	CHECK(rpath_hex_decode("6100") == NULL);	/* no NUL inside */
	return CHECK_DONE();
}
