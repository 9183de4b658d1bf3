/*
 * handle.h - open file and directory handles as numbers, not pointers.
 *
 * The kernel may send RELEASE for a file while a READ of it is still being
 * answered on another thread (a read interrupted by a signal returns to
 * the caller at once; its request does not). So fi->fh holds an id into
 * this table, a request takes a reference for as long as it uses the
 * object, and release only drops the table's reference: the object is
 * freed by whoever lets go last, and an id that was released finds nothing.
 *
 * Threads: all functions may be called from any thread.
 */
#ifndef RGT_HANDLE_H
#define RGT_HANDLE_H

#include <stdint.h>

/* Embed as the first member of every handle object. */
struct hobj {
	int refs;
	void (*free)(struct hobj *o);
};

struct handles;

int handles_new(struct handles **out);
/* Frees every object still in the table. */
void handles_free(struct handles *t);

/* Put @o (refs set to 1: the table's) in the table. 0 or -ENOMEM. */
int handle_add(struct handles *t, struct hobj *o, uint64_t *id);
/* The object of @id with one more reference, or NULL if released. */
struct hobj *handle_get(struct handles *t, uint64_t id);
/* Drop a reference taken by handle_get(). */
void handle_put(struct handles *t, struct hobj *o);
/* Release @id: drop the table's reference. */
void handle_remove(struct handles *t, uint64_t id);

#endif
