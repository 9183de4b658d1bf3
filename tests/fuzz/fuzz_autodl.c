/*
 * fuzz_autodl.c - the AutoDL adapter's pure parsers on hostile answers:
 * a list page, a verb reply, and the snapshot's root password.
 *
 * Invariants: an accepted page is for the page asked for and appends only
 * well-formed instances, with one raw status per appended entry; a verb
 * reply is accepted only if it says "Success"; a password taken is a
 * string the body held.
 */
#include <errno.h>

#include "fuzz_platform.h"
#include "autodl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct rgt_instance_list l = { 0 };
	struct autodl_page pg = { 0 };
	char err[256], **raw = NULL;
	size_t skipped = 0;
	int rc;

	err[0] = '\0';
	rc = autodl_parse_page(body, size, "root", 1, &l, &raw, &pg, &skipped,
			       err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	fuzz_check_list(&l);
	if (rc == 0) {
		FUZZ_ASSERT(pg.page_index == 1);
		FUZZ_ASSERT(l.n == 0 || raw != NULL);
	}
	for (size_t i = 0; raw && i < l.n; i++)
		free(raw[i]);
	free(raw);
	rgt_instance_list_free(&l);

	err[0] = '\0';
	rc = autodl_check_reply(body, size, "release", err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0)
		FUZZ_ASSERT(memmem(body, size, "Success", 7) != NULL);
	else
		FUZZ_ASSERT(rc == -EIO || rc == -EBADMSG || rc == -EFBIG ||
			    rc == -ENOMEM);

	/* It takes a writable body (jansson's copy is wiped in place). */
	char *copy = fuzz_strndup(data, size), *pw = NULL;
	err[0] = '\0';
	rc = autodl_parse_password(copy, size, &pw, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0)
		FUZZ_ASSERT(pw != NULL);
	free(pw);
	free(copy);
	return 0;
}
