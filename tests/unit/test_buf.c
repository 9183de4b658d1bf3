/* test_buf.c - the bounded buffer: the cap holds, failures change nothing. */
#include <errno.h>
#include <stdlib.h>

#include "buf.h"
#include "check.h"

int main(void)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK_ERR(buf_append(&b, "hello", 5), 0);
	CHECK_ERR(buf_append(&b, "world", 5), 0);
	CHECK_STR(b.data, "helloworld");
	CHECK_ERR(buf_append(&b, "!", 1), -EFBIG);
	CHECK(b.len == 10);
	CHECK_STR(b.data, "helloworld");
	buf_reset(&b);
	CHECK(b.len == 0);
	CHECK_STR(b.data, "");
	CHECK_ERR(buf_appendf(&b, "%d-%s", 42, "x"), 0);
	CHECK_STR(b.data, "42-x");
	CHECK_ERR(buf_appendf(&b, "%s", "0123456789"), -EFBIG);
	CHECK_STR(b.data, "42-x");
	char *t = buf_take(&b);
	CHECK_STR(t, "42-x");
	CHECK(b.data == NULL && b.len == 0);
	free(t);
	/* A huge n never overflows the length check. */
	CHECK_ERR(buf_append(&b, "", (size_t)-1), -EFBIG);
	/* Taking an empty buffer gives an empty string, not NULL. */
	t = buf_take(&b);
	CHECK_STR(t, "");
	free(t);
	buf_cleanup(&b);
	return CHECK_DONE();
}
