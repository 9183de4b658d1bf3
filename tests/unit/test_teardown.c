/*
 * test_teardown.c - the teardown rule: from every step and every outcome,
 * the next step; above all, that no path reaches TD_DESTROY without the
 * five proofs gathered in the same run, and that an interrupt stops
 * everything before the destroy call and nothing after it.
 */
#include <errno.h>

#include <string.h>

#include "archive.h"
#include "check.h"
#include "teardown.h"

enum { P = 1, V = 2, R = 4, S = 8, L = 16, CAN = 32, SENT = 64, INTR = 128,
       RES = 256 };
#define ALL (P | V | R | S | L | CAN)

static enum td_step next(enum td_step s, int rc, int bits)
{
	struct td_facts f = {
		.step = s, .rc = rc,
		.pulled = bits & P, .verified = bits & V,
		.recorded = bits & R, .served = bits & S,
		.relisted = bits & L, .can_destroy = bits & CAN,
		.maybe_sent = bits & SENT, .interrupted = bits & INTR,
		.resumed = bits & RES,
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

	/* Resuming a sequence an earlier run began: only with the journal
	 * read back in this run, only where there is a destroy verb. */
	CHECK(next(TD_RESUME, 0, RES | CAN) == TD_DESTROY);
	CHECK(next(TD_RESUME, 0, CAN) == TD_REFUSED);
	CHECK(next(TD_RESUME, 0, RES) == TD_REFUSED);
	CHECK(next(TD_RESUME, -EIO, RES | CAN) == TD_REFUSED);
	CHECK(next(TD_RESUME, 0, RES | CAN | INTR) == TD_REFUSED);
	CHECK(next(TD_DESTROY, 0, RES | CAN) == TD_CONFIRM);
	CHECK(next(TD_DESTROY, -EIO, RES | CAN | SENT) == TD_FAILED);

	/* Exhaustive: TD_DESTROY is reachable only from TD_RELIST with all
	 * five proofs or from TD_RESUME with the journal read back, and
	 * nothing follows a destroy without one of them. */
	for (int s = TD_ROSTER; s <= TD_FAILED; s++)
		for (int bits = 0; bits < 1024; bits++) {
			int rc = bits & 512 ? -EIO : 0;
			int b = bits & 511;
			enum td_step n = next(s, rc, b);
			if (n == TD_DESTROY)
				CHECK(!rc && !(b & INTR) && (b & CAN) &&
				      ((s == TD_RELIST && (b & ALL) == ALL) ||
				       (s == TD_RESUME && (b & RES))));
			if (s == TD_DESTROY && (b & (ALL & ~CAN)) !=
						       (ALL & ~CAN) &&
			    !(b & RES))
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
	CHECK_STR(teardown_step_name(TD_RESUME), "resume");
	CHECK_STR(teardown_step_name(TD_DESTROY), "destroy");
	CHECK_STR(teardown_step_name(TD_FAILED), "failed");

	/* The journal's phase record: "NAME" or "NAME VERBS"; anything
	 * else is RECORDED, evidence of nothing. */
	static const struct {
		const char *s;
		int rc;
		enum archive_phase ph;
		unsigned verbs;
	} ph[] = {
		{ "recorded", 0, ARCH_RECORDED, 0 },
		{ "destroy_requested", 0, ARCH_DESTROY_REQUESTED, 0 },
		{ "destroy_requested 1", 0, ARCH_DESTROY_REQUESTED, 1 },
		{ "destroy_accepted", 0, ARCH_DESTROY_ACCEPTED, 0 },
		{ "destroy_accepted 1", 0, ARCH_DESTROY_ACCEPTED, 1 },
		{ "destroy_accepted 12", 0, ARCH_DESTROY_ACCEPTED, 12 },
		{ "destroy_unknown 1", 0, ARCH_DESTROY_UNKNOWN, 1 },
		{ "destroy_accepted ", -EINVAL, ARCH_RECORDED, 0 },
		{ "destroy_accepted x", -EINVAL, ARCH_RECORDED, 0 },
		{ "destroy_accepted 1234", -EINVAL, ARCH_RECORDED, 0 },
		{ "destroy_accepte 1", -EINVAL, ARCH_RECORDED, 0 },
		{ "destroy_acceptedx", -EINVAL, ARCH_RECORDED, 0 },
		{ "", -EINVAL, ARCH_RECORDED, 0 },
	};
	for (unsigned i = 0; i < sizeof(ph) / sizeof(ph[0]); i++) {
		enum archive_phase p = ARCH_DESTROY_UNKNOWN;
		unsigned v = 99;
		int rc = archive_phase_parse(ph[i].s, strlen(ph[i].s), &p, &v);
		CHECK(rc == ph[i].rc);
		CHECK(p == ph[i].ph);
		CHECK(v == ph[i].verbs);
	}
	return CHECK_DONE();
}
