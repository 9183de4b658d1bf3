/*
 * test_xattr.c - the tree's extended attributes as getxattr(2) and
 * listxattr(2) return them: size queries, ERANGE, ENODATA for names that
 * are not ours or not known, and a list holding only what has a value.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "xattr.h"

int main(void)
{
	struct node_xattrs x = { 0 };
	char b[256];

	/* nothing known: no names, every name ENODATA */
	CHECK_ERR(xattr_list(&x, NULL, 0), 0);
	CHECK_ERR(xattr_value(&x, "user.rgtfs.sha256", b, sizeof(b)),
		  -ENODATA);
	CHECK_ERR(xattr_value(&x, "user.rgtfs.cached", b, sizeof(b)),
		  -ENODATA);
	CHECK_ERR(xattr_value(&x, "user.rgtfs.source", b, sizeof(b)),
		  -ENODATA);

	/* names that are not ours, or nearly ours */
	CHECK(!xattr_is_ours("security.selinux"));
	CHECK(!xattr_is_ours("system.posix_acl_access"));
	CHECK(!xattr_is_ours("user.rgtfs.sha256x"));
	CHECK(!xattr_is_ours("user.rgtfs."));
	CHECK(xattr_is_ours("user.rgtfs.cached"));
	CHECK_ERR(xattr_value(&x, "user.other", b, sizeof(b)), -ENODATA);

	/* cached 0 is a value: known and zero */
	x.has_cached = true;
	x.cached = 0;
	CHECK_ERR(xattr_value(&x, "user.rgtfs.cached", NULL, 0), 1);
	CHECK_ERR(xattr_value(&x, "user.rgtfs.cached", b, sizeof(b)), 1);
	CHECK(b[0] == '0');
	CHECK_ERR(xattr_list(&x, b, sizeof(b)),
		  (long)sizeof("user.rgtfs.cached"));
	CHECK_STR(b, "user.rgtfs.cached");

	/* everything known */
	x.cached = 18446744073709551615ull;
	memset(x.sha256, 'a', 64);
	x.sha256[64] = 0;
	strcpy(x.source, "sftp sftp://127.0.0.1:2222 /workspace/ck/a.pt");
	CHECK_ERR(xattr_value(&x, "user.rgtfs.cached", b, sizeof(b)), 20);
	CHECK(!memcmp(b, "18446744073709551615", 20));
	CHECK_ERR(xattr_value(&x, "user.rgtfs.sha256", NULL, 0), 64);
	/* a buffer one byte short is ERANGE, not a truncated digest */
	CHECK_ERR(xattr_value(&x, "user.rgtfs.sha256", b, 63), -ERANGE);
	CHECK_ERR(xattr_value(&x, "user.rgtfs.sha256", b, 64), 64);
	CHECK(b[0] == 'a' && b[63] == 'a');
	ssize_t n = xattr_value(&x, "user.rgtfs.source", b, sizeof(b));
	CHECK_ERR(n, (long)strlen(x.source));

	size_t want = sizeof("user.rgtfs.sha256") + sizeof("user.rgtfs.cached") +
		      sizeof("user.rgtfs.source");
	CHECK_ERR(xattr_list(&x, NULL, 0), (long)want);
	CHECK_ERR(xattr_list(&x, b, want - 1), -ERANGE);
	memset(b, 'x', sizeof(b));
	CHECK_ERR(xattr_list(&x, b, sizeof(b)), (long)want);
	CHECK_STR(b, "user.rgtfs.sha256");
	CHECK_STR(b + sizeof("user.rgtfs.sha256"), "user.rgtfs.cached");
	CHECK_STR(b + sizeof("user.rgtfs.sha256") + sizeof("user.rgtfs.cached"),
		  "user.rgtfs.source");
	return CHECK_DONE();
}
