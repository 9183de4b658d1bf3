/*
 * test_life.c - the lifecycle and the one pin rule: every state, and the
 * facts that lead to each. Only a listed instance with nothing under way
 * may lose cached bytes to eviction.
 */
#include "archive.h"
#include "check.h"
#include "life.h"

static enum inst_life of(bool known, bool archived, bool td, bool journal,
			 int phase, bool gone)
{
	struct life_facts f = { .known = known, .archived = archived,
				.tearing_down = td, .journal = journal,
				.phase = phase, .gone = gone };
	return life_of(&f);
}

int main(void)
{
	CHECK(of(1, 0, 0, 0, 0, 0) == LIFE_LISTED);
	CHECK(of(1, 0, 1, 0, 0, 0) == LIFE_TEARING_DOWN);
	CHECK(of(1, 0, 0, 1, ARCH_DESTROY_REQUESTED, 0) ==
	      LIFE_DESTROY_REQUESTED);
	CHECK(of(1, 0, 0, 1, ARCH_DESTROY_ACCEPTED, 0) ==
	      LIFE_DESTROY_REQUESTED);
	CHECK(of(1, 0, 0, 1, ARCH_DESTROY_UNKNOWN, 0) ==
	      LIFE_DESTROY_UNKNOWN);
	CHECK(of(1, 0, 0, 0, 0, 1) == LIFE_GONE);
	CHECK(of(1, 1, 0, 0, 0, 0) == LIFE_ARCHIVED);
	CHECK(of(0, 1, 0, 0, 0, 0) == LIFE_ARCHIVED);
	CHECK(of(0, 0, 0, 0, 0, 0) == LIFE_UNKNOWN);
	/* A RECORDED journal (a refused or killed run) proves nothing and
	 * pins nothing: the box was never asked to go. */
	CHECK(of(1, 0, 0, 1, ARCH_RECORDED, 0) == LIFE_LISTED);
	/* A destroy that may have been sent outranks a later listing. */
	CHECK(of(1, 0, 0, 1, ARCH_DESTROY_UNKNOWN, 1) ==
	      LIFE_DESTROY_UNKNOWN);

	/* The rule, for every state. */
	for (int l = LIFE_LISTED; l <= LIFE_UNKNOWN; l++)
		CHECK(life_pinned(l) == (l != LIFE_LISTED));
	/* Exhaustive over the facts: unpinned only when listed, known,
	 * not archived, not tearing down, not gone, no journal past
	 * RECORDED. */
	for (int bits = 0; bits < 64; bits++)
		for (int ph = ARCH_RECORDED; ph <= ARCH_DESTROY_UNKNOWN; ph++) {
			bool known = bits & 1, arch = bits & 2, td = bits & 4,
			     j = bits & 8, gone = bits & 16;
			bool pin = life_pinned(of(known, arch, td, j, ph, gone));
			bool want = !known || arch || td || gone ||
				    (j && ph != ARCH_RECORDED);
			CHECK(pin == want);
		}
	CHECK_STR(life_name(LIFE_DESTROY_UNKNOWN), "destroy outcome unknown");
	return CHECK_DONE();
}
