/* test_handle.c - ids, references, and stale ids after release. */
#include <stdlib.h>

#include "check.h"
#include "handle.h"

static int freed;

struct obj {
	struct hobj h;
	int v;
};

static void obj_free(struct hobj *o)
{
	freed++;
	free(o);
}

static struct obj *mk(int v)
{
	struct obj *o = calloc(1, sizeof(*o));
	o->h.free = obj_free;
	o->v = v;
	return o;
}

int main(void)
{
	struct handles *t;
	uint64_t a, b, c;

	CHECK_ERR(handles_new(&t), 0);
	CHECK_ERR(handle_add(t, &mk(1)->h, &a), 0);
	CHECK_ERR(handle_add(t, &mk(2)->h, &b), 0);
	CHECK(a != b && a != 0 && b != 0);
	struct obj *o = (struct obj *)handle_get(t, a);
	CHECK(o && o->v == 1);
	/* Release while a request still uses it: freed by the last put. */
	handle_remove(t, a);
	CHECK(freed == 0);
	CHECK(handle_get(t, a) == NULL);
	CHECK(o->v == 1);
	handle_put(t, &o->h);
	CHECK(freed == 1);
	/* The slot is reused with a new generation: the old id stays dead. */
	CHECK_ERR(handle_add(t, &mk(3)->h, &c), 0);
	CHECK(c != a && (uint32_t)c == (uint32_t)a);
	CHECK(handle_get(t, a) == NULL);
	o = (struct obj *)handle_get(t, c);
	CHECK(o && o->v == 3);
	handle_put(t, &o->h);
	handle_remove(t, c);
	handle_remove(t, c);	/* twice: harmless */
	CHECK(freed == 2);
	/* Ids never seen, and zero, find nothing. */
	CHECK(handle_get(t, 0) == NULL);
	CHECK(handle_get(t, 12345) == NULL);
	CHECK(handle_get(t, (1ull << 40) | 2) == NULL);
	/* Many handles grow the table. */
	uint64_t ids[500];
	for (int i = 0; i < 500; i++)
		CHECK_ERR(handle_add(t, &mk(i)->h, &ids[i]), 0);
	o = (struct obj *)handle_get(t, ids[499]);
	CHECK(o && o->v == 499);
	handle_put(t, &o->h);
	handles_free(t);	/* frees what is left: b and the 500 */
	CHECK(freed == 503);
	return CHECK_DONE();
}
