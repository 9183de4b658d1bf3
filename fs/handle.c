/*
 * handle.c - id -> object table with reference counts (see handle.h).
 *
 * An id is (generation << 32) | (slot + 1): a slot reused after a release
 * gets a new generation, so a stale id never finds the new object.
 */
#include "handle.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct slot {
	struct hobj *o;
	uint32_t gen;
	uint32_t next_free;	/* slot + 1, 0 = end */
};

struct handles {
	pthread_mutex_t mu;
	struct slot *v;
	uint32_t n, cap;
	uint32_t free_head;	/* slot + 1, 0 = none */
};

int handles_new(struct handles **out)
{
	struct handles *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return 0;
}

void handles_free(struct handles *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->v[i].o)
			t->v[i].o->free(t->v[i].o);
	free(t->v);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

int handle_add(struct handles *t, struct hobj *o, uint64_t *id)
{
	uint32_t i;

	o->refs = 1;
	pthread_mutex_lock(&t->mu);
	if (t->free_head) {
		i = t->free_head - 1;
		t->free_head = t->v[i].next_free;
	} else {
		if (t->n == t->cap) {
			uint32_t nc = t->cap ? t->cap * 2 : 64;
			struct slot *nv = NULL;
			if (nc > t->cap)	/* no wrap-around */
				nv = realloc(t->v, nc * sizeof(*nv));
			if (!nv) {
				pthread_mutex_unlock(&t->mu);
				return -ENOMEM;
			}
			t->v = nv;
			t->cap = nc;
		}
		i = t->n++;
		t->v[i].gen = 0;
	}
	t->v[i].o = o;
	t->v[i].gen++;
	t->v[i].next_free = 0;
	*id = ((uint64_t)t->v[i].gen << 32) | (i + 1);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

/* Slot of @id if it is live (t->mu held), else NULL. */
static struct slot *lookup(struct handles *t, uint64_t id)
{
	uint32_t i = (uint32_t)id;
	if (!i || i > t->n)
		return NULL;
	struct slot *s = &t->v[i - 1];
	if (!s->o || s->gen != (uint32_t)(id >> 32))
		return NULL;
	return s;
}

struct hobj *handle_get(struct handles *t, uint64_t id)
{
	struct hobj *o = NULL;
	pthread_mutex_lock(&t->mu);
	struct slot *s = lookup(t, id);
	if (s) {
		o = s->o;
		o->refs++;
	}
	pthread_mutex_unlock(&t->mu);
	return o;
}

void handle_put(struct handles *t, struct hobj *o)
{
	pthread_mutex_lock(&t->mu);
	int left = --o->refs;
	pthread_mutex_unlock(&t->mu);
	if (!left)
		o->free(o);
}

void handle_remove(struct handles *t, uint64_t id)
{
	struct hobj *o = NULL;
	pthread_mutex_lock(&t->mu);
	struct slot *s = lookup(t, id);
	if (s) {
		o = s->o;
		s->o = NULL;
		s->next_free = t->free_head;
		t->free_head = (uint32_t)(s - t->v) + 1;
	}
	pthread_mutex_unlock(&t->mu);
	if (o)
		handle_put(t, o);
}
