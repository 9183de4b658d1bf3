/*
 * life.h - an instance's lifecycle as the cache sees it, and the one pin
 * rule over it.
 *
 * Cached bytes may be evicted only while they are a copy of a box that is
 * still there. Everything else is, or may be, the only copy: a teardown in
 * progress, a destroy that was asked for (whatever the platform said back),
 * a destroy whose outcome is unknown, an instance the platform no longer
 * lists or is destroying, an archive, and anything rgtfs cannot classify.
 * life_of() derives the state from the facts; life_pinned() is the rule.
 * Both are pure and unit-tested for every state (tests/unit/test_life.c);
 * eviction asks nothing else.
 */
#ifndef RGT_LIFE_H
#define RGT_LIFE_H

#include <stdbool.h>

enum inst_life {
	LIFE_LISTED,		/* listed by the platform, nothing under way */
	LIFE_TEARING_DOWN,	/* an rmdir is running */
	LIFE_DESTROY_REQUESTED,	/* the journal says the destroy was sent */
	LIFE_DESTROY_UNKNOWN,	/* sent, outcome unknown (timeout, odd reply) */
	LIFE_GONE,		/* not listed any more, or being destroyed */
	LIFE_ARCHIVED,		/* under archive/ */
	LIFE_UNKNOWN,		/* rgtfs cannot tell (not in the fleet) */
};

struct life_facts {
	bool known;		/* the fleet has the instance */
	bool archived;		/* an archive record exists */
	bool tearing_down;
	bool journal;		/* a teardown journal exists */
	int phase;		/* its enum archive_phase */
	bool gone;		/* state gone or destroying */
};

enum inst_life life_of(const struct life_facts *f);
bool life_pinned(enum inst_life l);
const char *life_name(enum inst_life l);

#endif
