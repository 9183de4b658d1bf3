/* test_node.c - inode numbers, lookup counts, forget. */
#include <errno.h>

#include "check.h"
#include "node.h"

int main(void)
{
	struct nodes *t;
	int err = 0;

	CHECK_ERR(nodes_new(&t), 0);
	struct node *root = node_get(t, NODE_ROOT_INO);
	CHECK(root && root->kind == NK_ROOT);

	uint64_t i1 = node_ino_for(1, "vastai");
	CHECK(i1 == node_ino_for(1, "vastai"));
	CHECK(i1 != node_ino_for(1, "vastaj"));
	CHECK(i1 != node_ino_for(2, "vastai"));
	CHECK(i1 > 1 && i1 < (1ull << 63));

	struct node tmpl = { .kind = NK_PLATFORM, .pi = 0 };
	struct node *p = node_child(t, root, "vastai", &tmpl, true, &err);
	CHECK(p && p->ino == i1 && p->nlookup == 1);
	CHECK(node_child(t, root, "vastai", &tmpl, true, &err) == p);
	CHECK(p->nlookup == 2);
	CHECK(node_get(t, i1) == p);

	struct node ft = { .kind = NK_RFILE, .pi = 0, .id = (char *)"7",
			   .rpath = (char *)"/w/ckpt/a\nb",
			   .attr = { .size = 10, .mtime = 5,
				     .mode = 0100644 } };
	struct node *f = node_child(t, p, "a\nb", &ft, true, &err);
	CHECK(f && f->attr.size == 10);
	CHECK_STR(f->rpath, "/w/ckpt/a\nb");
	/* A later lookup brings fresh attributes. */
	ft.attr.size = 20;
	CHECK(node_child(t, p, "a\nb", &ft, true, &err) == f);
	CHECK(node_attr(t, f).size == 20);

	CHECK(!node_same_identity(t, f, 20, 5, NULL));
	CHECK(node_same_identity(t, f, 20, 5, NULL));
	CHECK(node_same_identity(t, f, 20, 5, ""));
	CHECK(!node_same_identity(t, f, 21, 5, NULL));
	/* an S3 object rewritten within the second, same size */
	CHECK(!node_same_identity(t, f, 21, 5, "\"e1\""));
	CHECK(node_same_identity(t, f, 21, 5, "\"e1\""));
	CHECK(!node_same_identity(t, f, 21, 5, "\"e2\""));

	uint64_t fino = f->ino;
	node_forget(t, fino, 1);
	CHECK(node_get(t, fino) != NULL);
	node_forget(t, fino, 1);
	CHECK(node_get(t, fino) == NULL);
	/* The root is pinned. */
	node_forget(t, NODE_ROOT_INO, 0);
	CHECK(node_get(t, NODE_ROOT_INO) != NULL);
	nodes_free(t);
	return CHECK_DONE();
}
