/*
 * node.c - inode table (see node.h). Pure memory, no I/O.
 *
 * Locking order: the table mutex is a leaf lock; nothing else is taken
 * while holding it.
 */
#include "node.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define NBUCKETS 4096

struct nodes {
	pthread_mutex_t mu;
	struct node *b[NBUCKETS];
};

static void node_destroy(struct node *n)
{
	free(n->name);
	free(n->id);
	free(n->plat);
	free(n->rpath);
	free(n);
}

int nodes_new(struct nodes **out)
{
	struct nodes *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	struct node *root = calloc(1, sizeof(*root));
	if (!root || !(root->name = strdup(""))) {
		free(root);
		free(t);
		return -ENOMEM;
	}
	root->ino = NODE_ROOT_INO;
	root->parent = NODE_ROOT_INO;
	root->kind = NK_ROOT;
	root->pi = -1;
	root->pinned = true;
	t->b[NODE_ROOT_INO % NBUCKETS] = root;
	*out = t;
	return 0;
}

void nodes_free(struct nodes *t)
{
	if (!t)
		return;
	for (int i = 0; i < NBUCKETS; i++) {
		struct node *n = t->b[i];
		while (n) {
			struct node *next = n->hnext;
			node_destroy(n);
			n = next;
		}
	}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

uint64_t node_ino_for(uint64_t parent, const char *name)
{
	/* FNV-1a over the parent number and the name, then a finaliser. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < 8; i++) {
		h ^= (parent >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	/* Keep clear of 0 (invalid) and 1 (root); stay below 2^63 so tools
	 * that keep inode numbers signed are happy. */
	h &= 0x7fffffffffffffffull;
	if (h <= NODE_ROOT_INO)
		h += 2;
	return h;
}

static struct node *find(struct nodes *t, uint64_t ino)
{
	for (struct node *n = t->b[ino % NBUCKETS]; n; n = n->hnext)
		if (n->ino == ino)
			return n;
	return NULL;
}

struct node *node_get(struct nodes *t, uint64_t ino)
{
	pthread_mutex_lock(&t->mu);
	struct node *n = find(t, ino);
	pthread_mutex_unlock(&t->mu);
	return n;
}

struct node *node_child(struct nodes *t, const struct node *parent,
			const char *name, const struct node *tmpl, bool count,
			int *err)
{
	uint64_t ino = node_ino_for(parent->ino, name);

	pthread_mutex_lock(&t->mu);
	struct node *n = find(t, ino);
	if (n) {
		if (n->parent != parent->ino || strcmp(n->name, name)) {
			pthread_mutex_unlock(&t->mu);
			rgt_log(RGT_ERR, "inode number collision on '%s'",
				name);
			*err = -EIO;
			return NULL;
		}
		/* Same path, maybe a new incarnation: refresh what it is. */
		if (tmpl->kind == NK_RFILE || tmpl->kind == NK_RDIR)
			n->attr = tmpl->attr;
		n->kind = tmpl->kind;
		if (count)
			n->nlookup++;
		pthread_mutex_unlock(&t->mu);
		return n;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		goto nomem;
	n->ino = ino;
	n->parent = parent->ino;
	n->kind = tmpl->kind;
	n->pi = tmpl->pi;
	n->vf = tmpl->vf;
	n->cloud = tmpl->cloud;
	n->attr = tmpl->attr;
	n->pinned = tmpl->pinned;
	n->name = strdup(name);
	n->id = tmpl->id ? strdup(tmpl->id) : NULL;
	n->plat = tmpl->plat ? strdup(tmpl->plat) : NULL;
	n->rpath = tmpl->rpath ? strdup(tmpl->rpath) : NULL;
	if (!n->name || (tmpl->id && !n->id) || (tmpl->rpath && !n->rpath) ||
	    (tmpl->plat && !n->plat)) {
		node_destroy(n);
		goto nomem;
	}
	n->nlookup = count ? 1 : 0;
	n->hnext = t->b[ino % NBUCKETS];
	t->b[ino % NBUCKETS] = n;
	pthread_mutex_unlock(&t->mu);
	return n;
nomem:
	pthread_mutex_unlock(&t->mu);
	*err = -ENOMEM;
	return NULL;
}

void node_forget(struct nodes *t, uint64_t ino, uint64_t nl)
{
	pthread_mutex_lock(&t->mu);
	struct node **pp = &t->b[ino % NBUCKETS];
	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->hnext;
	struct node *n = *pp;
	if (!n) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	if (nl > n->nlookup)
		rgt_die("forget of %llu lookups on inode %llu with %llu",
			(unsigned long long)nl, (unsigned long long)ino,
			(unsigned long long)n->nlookup);
	n->nlookup -= nl;
	if (!n->nlookup && !n->pinned) {
		*pp = n->hnext;
		node_destroy(n);
	}
	pthread_mutex_unlock(&t->mu);
}

void node_set_attr(struct nodes *t, struct node *n, const struct xfer_attr *a)
{
	pthread_mutex_lock(&t->mu);
	n->attr = *a;
	pthread_mutex_unlock(&t->mu);
}

struct xfer_attr node_attr(struct nodes *t, struct node *n)
{
	pthread_mutex_lock(&t->mu);
	struct xfer_attr a = n->attr;
	pthread_mutex_unlock(&t->mu);
	return a;
}

bool node_same_identity(struct nodes *t, struct node *n, uint64_t size,
			int64_t mtime, const char *etag)
{
	if (!etag)
		etag = "";
	pthread_mutex_lock(&t->mu);
	bool same = n->have_cached && n->cached_size == size &&
		    n->cached_mtime == mtime && !strcmp(n->cached_etag, etag);
	n->have_cached = true;
	n->cached_size = size;
	n->cached_mtime = mtime;
	snprintf(n->cached_etag, sizeof(n->cached_etag), "%s", etag);
	pthread_mutex_unlock(&t->mu);
	return same;
}
