/*
 * life.c - the lifecycle and the pin rule (see life.h).
 */
#include "life.h"

#include "archive.h"

enum inst_life life_of(const struct life_facts *f)
{
	if (f->archived)
		return LIFE_ARCHIVED;
	if (!f->known)
		return LIFE_UNKNOWN;
	if (f->tearing_down)
		return LIFE_TEARING_DOWN;
	if (f->journal && f->phase == ARCH_DESTROY_UNKNOWN)
		return LIFE_DESTROY_UNKNOWN;
	if (f->journal && f->phase != ARCH_RECORDED)
		return LIFE_DESTROY_REQUESTED;
	if (f->gone)
		return LIFE_GONE;
	/* A RECORDED journal left by a refused or killed run: the box was
	 * never asked to go, so the cache is still only a copy. */
	return LIFE_LISTED;
}

bool life_pinned(enum inst_life l)
{
	return l != LIFE_LISTED;
}

const char *life_name(enum inst_life l)
{
	static const char *const names[] = {
		"listed", "tearing down", "destroy requested",
		"destroy outcome unknown", "gone", "archived", "unknown",
	};
	return (unsigned)l <= LIFE_UNKNOWN ? names[l] : "unknown";
}
