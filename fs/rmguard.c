/*
 * rmguard.c - see rmguard.h.
 */
#include "rmguard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GUARD_SLOTS 256
#define GUARD_KEY 160

struct slot {
	char key[GUARD_KEY];
	pid_t pid;
	uint64_t start;
	uint64_t seq;		/* 0: free */
	long when;		/* monotonic seconds of the last attempt */
};

static long mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

struct rmguard {
	pthread_mutex_t mu;
	struct slot v[GUARD_SLOTS];
	uint64_t seq;
};

int rmguard_new(struct rmguard **out)
{
	struct rmguard *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->mu, NULL);
	*out = g;
	return 0;
}

void rmguard_free(struct rmguard *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->mu);
	free(g);
}

uint64_t rmguard_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the
	 * last ')'; starttime is field 22, the 20th after it. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static bool same(const struct slot *s, const char *key, pid_t pid,
		 uint64_t start)
{
	return s->seq && s->pid == pid && s->start == start &&
	       !strcmp(s->key, key);
}

void rmguard_note(struct rmguard *g, const char *key, pid_t pid)
{
	if (!g || pid < 0 || strlen(key) >= GUARD_KEY)
		return;
	uint64_t start = pid ? rmguard_start_time(pid) : 0;
	pthread_mutex_lock(&g->mu);
	struct slot *victim = &g->v[0];
	for (size_t i = 0; i < GUARD_SLOTS; i++) {
		struct slot *s = &g->v[i];
		if (same(s, key, pid, start)) {
			s->seq = ++g->seq;
			s->when = mono_s();
			pthread_mutex_unlock(&g->mu);
			return;
		}
		if (s->seq < victim->seq)
			victim = s;
	}
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->pid = pid;
	victim->start = start;
	victim->seq = ++g->seq;
	victim->when = mono_s();
	pthread_mutex_unlock(&g->mu);
}

bool rmguard_hit(struct rmguard *g, const char *key, pid_t pid)
{
	if (!g || strlen(key) >= GUARD_KEY)
		return true;
	if (pid < 0)
		return false;
	uint64_t start = pid ? rmguard_start_time(pid) : 0;
	bool hit = false;
	pthread_mutex_lock(&g->mu);
	for (size_t i = 0; i < GUARD_SLOTS && !hit; i++)
		hit = same(&g->v[i], key, pid, start);
	pthread_mutex_unlock(&g->mu);
	return hit;
}

bool rmguard_recent(struct rmguard *g, const char *key, int seconds)
{
	if (!g || strlen(key) >= GUARD_KEY)
		return true;
	long now = mono_s();
	bool hit = false;
	pthread_mutex_lock(&g->mu);
	for (size_t i = 0; i < GUARD_SLOTS && !hit; i++)
		hit = g->v[i].seq && !strcmp(g->v[i].key, key) &&
		      now - g->v[i].when <= seconds;
	pthread_mutex_unlock(&g->mu);
	return hit;
}

bool rmguard_caller_dying(pid_t pid, uint64_t start)
{
	char path[64], buf[4096];
	if (pid <= 0)
		return false;
	if (start && rmguard_start_time(pid) != start)
		return true;	/* gone, or its pid reused */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return start != 0;	/* it was there: it is gone */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* SigPnd (the thread's) and ShdPnd (the process's) pending sets */
	const char *keys[] = { "\nSigPnd:", "\nShdPnd:" };
	for (int k = 0; k < 2; k++) {
		const char *p = strstr(buf, keys[k]);
		if (!p)
			continue;
		unsigned long long mask = strtoull(p + strlen(keys[k]), NULL,
						   16);
		if (mask & (1ull << (9 - 1)))	/* SIGKILL */
			return true;
	}
	return false;
}
