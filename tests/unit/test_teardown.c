/*
 * test_teardown.c - the teardown rule: from every step and every outcome,
 * the next step; above all, that no path reaches TD_DESTROY without the
 * five proofs gathered in the same run, and that an interrupt stops
 * everything before the destroy call and nothing after it.
 */
#include <errno.h>

#include "check.h"
#include "teardown.h"

enum { P = 1, V = 2, R = 4, S = 8, L = 16, CAN = 32, SENT = 64, INTR = 128 };
#define ALL (P | V | R | S | L | CAN)

static enum td_step next(enum td_step s, int rc, int bits)
{
	struct td_facts f = {
		.step = s, .rc = rc,
		.pulled = bits & P, .verified = bits & V,
		.recorded = bits & R, .served = bits & S,
		.relisted = bits & L, .can_destroy = bits & CAN,
		.maybe_sent = bits & SENT, .interrupted = bits & INTR,
	};
	return teardown_decide(&f);
}

int main(void)
{
	/* The happy path, in order. */
	CHECK(next(TD_ROSTER, 0, CAN) == TD_PULL);
	CHECK(next(TD_PULL, 0, P | CAN) == TD_VERIFY);
	CHECK(next(TD_VERIFY, 0, P | V | CAN) == TD_RECORD);
	CHECK(next(TD_RECORD, 0, P | V | R | CAN) == TD_SERVE);
	CHECK(next(TD_SERVE, 0, P | V | R | S | CAN) == TD_RELIST);
	CHECK(next(TD_RELIST, 0, ALL) == TD_DESTROY);
	CHECK(next(TD_DESTROY, 0, ALL) == TD_CONFIRM);
	CHECK(next(TD_CONFIRM, 0, ALL) == TD_ARCHIVE);
	CHECK(next(TD_ARCHIVE, 0, ALL) == TD_DONE);
	/* No destroy verb (plain ssh hosts): archive after the re-list. */
	CHECK(next(TD_RELIST, 0, ALL & ~CAN) == TD_ARCHIVE);

	/* Any failure before the destroy call is a refusal. */
	enum td_step before[] = { TD_ROSTER, TD_PULL, TD_VERIFY, TD_RECORD,
				  TD_SERVE, TD_RELIST, TD_DESTROY };
	int errs[] = { -EIO, -EBUSY, -ENOSPC, -EHOSTUNREACH, -ETIMEDOUT,
		       -EINTR };
	for (unsigned i = 0; i < sizeof(before) / sizeof(before[0]); i++)
		for (unsigned k = 0; k < sizeof(errs) / sizeof(errs[0]); k++)
			CHECK(next(before[i], errs[k], ALL) == TD_REFUSED);
	/* A step that "succeeded" without its proof is a refusal too. */
	CHECK(next(TD_PULL, 0, CAN) == TD_REFUSED);
	CHECK(next(TD_VERIFY, 0, P | CAN) == TD_REFUSED);
	CHECK(next(TD_RECORD, 0, P | V | CAN) == TD_REFUSED);
	CHECK(next(TD_SERVE, 0, P | V | R | CAN) == TD_REFUSED);
	CHECK(next(TD_RELIST, 0, P | V | R | S | CAN) == TD_REFUSED);

	/* A destroy call that may have acted is a failure, never a refusal
	 * ("nothing was destroyed" would be a lie). */
	CHECK(next(TD_DESTROY, -ETIMEDOUT, ALL | SENT) == TD_FAILED);
	CHECK(next(TD_DESTROY, -EIO, ALL | SENT) == TD_FAILED);
	CHECK(next(TD_DESTROY, -EIO, ALL) == TD_REFUSED);

	/* Interrupts: before the destroy call, every step ends in a
	 * refusal; after it, the run goes on. */
	for (int s = TD_ROSTER; s < TD_DESTROY; s++)
		CHECK(next(s, 0, ALL | INTR) == TD_REFUSED);
	CHECK(next(TD_DESTROY, 0, ALL | INTR) == TD_CONFIRM);
	CHECK(next(TD_CONFIRM, 0, ALL | INTR) == TD_ARCHIVE);
	CHECK(next(TD_ARCHIVE, 0, ALL | INTR) == TD_DONE);

	/* Exhaustive: TD_DESTROY is reachable only from TD_RELIST with all
	 * five proofs, and nothing follows a destroy without them. */
	for (int s = TD_ROSTER; s <= TD_FAILED; s++)
		for (int bits = 0; bits < 512; bits++) {
			int rc = bits & 256 ? -EIO : 0;
			int b = bits & 255;
			enum td_step n = next(s, rc, b);
			if (n == TD_DESTROY)
				CHECK(s == TD_RELIST && !rc &&
				      (b & ALL) == ALL && !(b & INTR));
			if (s == TD_DESTROY && (b & (ALL & ~CAN)) !=
						       (ALL & ~CAN))
				CHECK(n == TD_REFUSED);
			if (s < TD_DESTROY && n == TD_FAILED)
				CHECK(0);
		}

	/* After the destroy call, failures are failures, not refusals:
	 * the report must not claim nothing changed. */
	CHECK(next(TD_CONFIRM, -ETIMEDOUT, ALL) == TD_FAILED);
	CHECK(next(TD_ARCHIVE, -EIO, ALL) == TD_FAILED);
	/* Terminal and unknown steps never go anywhere but a refusal. */
	CHECK(next(TD_DONE, 0, ALL) == TD_REFUSED);
	CHECK(next((enum td_step)99, 0, ALL) == TD_REFUSED);
	CHECK_STR(teardown_step_name(TD_RELIST), "re-list");
	CHECK_STR(teardown_step_name(TD_SERVE), "serve");
	return CHECK_DONE();
}
