/*
 * test_rmguard.c - rm -r told from rmdir by process: the process that
 * tried to delete inside is refused, another is not; a reused pid is a new
 * process; long keys and unnamed callers fail closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "rmguard.h"

#define REQUIRE(expr)                                                          \
	do {                                                                   \
		if (!(expr)) {                                                 \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",         \
				__FILE__, __LINE__, #expr);                    \
			exit(1);                                               \
		}                                                              \
	} while (0)

int main(void)
{
	struct rmguard *g;
	REQUIRE(rmguard_new(&g) == 0);
	pid_t me = getpid();

	CHECK(!rmguard_hit(g, "vastai/1", me));
	CHECK(!rmguard_recent(g, "vastai/1", 60));
	rmguard_note(g, "vastai/1", me);
	CHECK(rmguard_hit(g, "vastai/1", me));
	CHECK(rmguard_recent(g, "vastai/1", 60));
	CHECK(!rmguard_hit(g, "vastai/2", me));
	CHECK(!rmguard_hit(g, "vastai/10", me));	/* no prefix match */

	/* another process (a child) is not the one that tried */
	pid_t c = fork();
	REQUIRE(c >= 0);
	if (!c)
		_exit(rmguard_hit(g, "vastai/1", getpid()) ? 1 : 0);
	int st = 0;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* a dead process's pid, whatever reuses it, has another start time */
	CHECK(rmguard_start_time(me) != 0);
	CHECK(rmguard_start_time(c) == 0);

	/* a caller that is alive is not dying; one that is gone is */
	CHECK(!rmguard_caller_dying(me, rmguard_start_time(me)));
	CHECK(!rmguard_caller_dying(me, 0));
	CHECK(rmguard_caller_dying(c, 12345));
	CHECK(!rmguard_caller_dying(0, 0));

	/* pid 0 (a caller FUSE cannot name) is one process: fail closed */
	rmguard_note(g, "archive/vastai/3", 0);
	CHECK(rmguard_hit(g, "archive/vastai/3", 0));
	CHECK(!rmguard_hit(g, "archive/vastai/3", me));
	CHECK(rmguard_recent(g, "archive/vastai/3", 60));

	/* a key too long for the table always hits */
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(rmguard_hit(g, big, me));
	CHECK(rmguard_recent(g, big, 60));

	/* the table is bounded: old entries make room, new ones are kept */
	char k[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "vastai/%d", 1000 + i);
		rmguard_note(g, k, me);
	}
	CHECK(rmguard_hit(g, "vastai/1999", me));
	rmguard_free(g);
	return CHECK_DONE();
}
