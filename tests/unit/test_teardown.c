/*
 * test_teardown.c - the teardown rule: from every step and every outcome,
 * the next step; above all, that no path reaches TD_DESTROY without the
 * four proofs gathered in the same run.
 */
#include <errno.h>

#include "check.h"
#include "teardown.h"

static enum td_step next(enum td_step s, int rc, bool p, bool v, bool r,
			 bool l, bool can)
{
	struct td_facts f = { s, rc, p, v, r, l, can };
	return teardown_decide(&f);
}

int main(void)
{
	/* The happy path, in order. */
	CHECK(next(TD_ROSTER, 0, 0, 0, 0, 0, 1) == TD_PULL);
	CHECK(next(TD_PULL, 0, 1, 0, 0, 0, 1) == TD_VERIFY);
	CHECK(next(TD_VERIFY, 0, 1, 1, 0, 0, 1) == TD_RECORD);
	CHECK(next(TD_RECORD, 0, 1, 1, 1, 0, 1) == TD_RELIST);
	CHECK(next(TD_RELIST, 0, 1, 1, 1, 1, 1) == TD_DESTROY);
	CHECK(next(TD_DESTROY, 0, 1, 1, 1, 1, 1) == TD_CONFIRM);
	CHECK(next(TD_CONFIRM, 0, 1, 1, 1, 1, 1) == TD_ARCHIVE);
	CHECK(next(TD_ARCHIVE, 0, 1, 1, 1, 1, 1) == TD_DONE);
	/* No destroy verb (plain ssh hosts): archive after the re-list. */
	CHECK(next(TD_RELIST, 0, 1, 1, 1, 1, 0) == TD_ARCHIVE);

	/* Any failure before the destroy is a refusal. */
	enum td_step before[] = { TD_ROSTER, TD_PULL, TD_VERIFY, TD_RECORD,
				  TD_RELIST, TD_DESTROY };
	int errs[] = { -EIO, -EBUSY, -ENOSPC, -EHOSTUNREACH, -ETIMEDOUT };
	for (unsigned i = 0; i < sizeof(before) / sizeof(before[0]); i++)
		for (unsigned k = 0; k < sizeof(errs) / sizeof(errs[0]); k++)
			CHECK(next(before[i], errs[k], 1, 1, 1, 1, 1) ==
			      TD_REFUSED);
	/* A step that "succeeded" without its proof is a refusal too. */
	CHECK(next(TD_PULL, 0, 0, 0, 0, 0, 1) == TD_REFUSED);
	CHECK(next(TD_VERIFY, 0, 1, 0, 0, 0, 1) == TD_REFUSED);
	CHECK(next(TD_RECORD, 0, 1, 1, 0, 0, 1) == TD_REFUSED);
	CHECK(next(TD_RELIST, 0, 1, 1, 1, 0, 1) == TD_REFUSED);

	/* Exhaustive: TD_DESTROY is reachable only from TD_RELIST with all
	 * four proofs, and nothing follows a destroy without them. */
	for (int s = TD_ROSTER; s <= TD_FAILED; s++)
		for (int bits = 0; bits < 64; bits++) {
			bool p = bits & 1, v = bits & 2, r = bits & 4,
			     l = bits & 8, can = bits & 16;
			int rc = bits & 32 ? -EIO : 0;
			enum td_step n = next(s, rc, p, v, r, l, can);
			if (n == TD_DESTROY)
				CHECK(s == TD_RELIST && !rc && p && v && r &&
				      l && can);
			if (s == TD_DESTROY && !(p && v && r && l))
				CHECK(n == TD_REFUSED);
		}

	/* After the destroy call, failures are failures, not refusals:
	 * the report must not claim nothing changed. */
	CHECK(next(TD_CONFIRM, -ETIMEDOUT, 1, 1, 1, 1, 1) == TD_FAILED);
	CHECK(next(TD_ARCHIVE, -EIO, 1, 1, 1, 1, 1) == TD_FAILED);
	/* Terminal and unknown steps never go anywhere but a refusal. */
	CHECK(next(TD_DONE, 0, 1, 1, 1, 1, 1) == TD_REFUSED);
	CHECK(next((enum td_step)99, 0, 1, 1, 1, 1, 1) == TD_REFUSED);
	CHECK_STR(teardown_step_name(TD_RELIST), "re-list");
	return CHECK_DONE();
}
