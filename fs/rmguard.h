/*
 * rmguard.h - tell `rm -r` from a deliberate rmdir, by process.
 *
 * rm -r, find -delete and shutil.rmtree empty a directory before they
 * remove it; rmdir(1) never does. So a process that tried to unlink or
 * rmdir anything inside an instance (or an archive) and then asks to rmdir
 * the instance itself is a recursive delete at work, not a request to
 * destroy a box, and is refused. A deliberate rmdir from another process
 * is not, however soon after. Processes are told apart by pid and start
 * time (/proc/PID/stat), so a reused pid is a new process.
 *
 * Threads: any. Memory: a fixed table; the oldest entry makes room.
 */
#ifndef RGT_RMGUARD_H
#define RGT_RMGUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct rmguard;

int rmguard_new(struct rmguard **out);
void rmguard_free(struct rmguard *g);
/* Process @pid tried to delete something inside @key ("vastai/123"). */
void rmguard_note(struct rmguard *g, const char *key, pid_t pid);
/*
 * Did process @pid (the same process, not a reuse of its pid) do so?
 * Fails closed: a key too long for the table always hits. A caller FUSE
 * cannot name (pid 0: another pid namespace) is one process for this.
 */
bool rmguard_hit(struct rmguard *g, const char *key, pid_t pid);
/* Did any process try to delete inside @key in the last @seconds? */
bool rmguard_recent(struct rmguard *g, const char *key, int seconds);

/*
 * Is process @pid being killed (a fatal signal pending: SIGKILL, or a
 * SIGINT/SIGTERM it does not catch, which the kernel turns into one) or
 * gone? A caller stuck in a FUSE request cannot die until we reply, so
 * this sees Ctrl-C even when the kernel's INTERRUPT does not reach us.
 */
bool rmguard_caller_dying(pid_t pid, uint64_t start);

/* Start time of @pid in clock ticks since boot; 0 if unknown. */
uint64_t rmguard_start_time(pid_t pid);

#endif
