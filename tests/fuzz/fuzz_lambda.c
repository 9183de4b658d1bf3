/*
 * fuzz_lambda.c - the Lambda Cloud adapter's pure parsers on hostile
 * answers: the instance list, the terminate reply, and the orphan lines
 * of each listed instance.
 *
 * Invariants: an accepted list holds only well-formed instances, none
 * GONE (terminated ones are left out); a terminate reply is accepted only
 * if it names the id asked for (the id is in the input); orphan lines are
 * whole lines with no other control byte.
 */
#include <errno.h>

#include "buf.h"
#include "fuzz_platform.h"
#include "lambda.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lines(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		FUZZ_ASSERT(c == '\n' || (c >= 0x20 && c != 0x7f));
	}
	if (b->len)
		FUZZ_ASSERT(b->data[b->len - 1] == '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct rgt_instance_list l = { 0 };
	char err[256];
	int rc;

	err[0] = '\0';
	rc = lambda_parse_instances(body, size, NULL, &l, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		fuzz_check_list(&l);
		for (size_t i = 0; i < l.n; i++)
			FUZZ_ASSERT(l.v[i].state != RGT_ST_GONE);
	}
	rgt_instance_list_free(&l);

	/* Orphans of every instance object the answer holds. */
	json_t *root = json_loadb(body, size, 0, NULL);
	json_t *arr = json_is_object(root) ? json_object_get(root, "data")
					   : NULL;
	size_t i;
	json_t *inst;
	json_array_foreach(arr, i, inst) {
		struct buf b;
		buf_init(&b, 1 << 16);
		if (lambda_orphan_lines(inst, &b) == 0)
			check_lines(&b);
		buf_cleanup(&b);
	}
	json_decref(root);

	bool refused = false;
	err[0] = '\0';
	rc = lambda_parse_terminate(body, size, "0920582c7ff041399e34823a0be62549",
				    &refused, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0)
		FUZZ_ASSERT(memmem(body, size, "0920582c7ff041399e34823a0be62549",
				   32) != NULL);
	return 0;
}
