/*
 * fuzz_paperspace.c - the Paperspace adapter's pure parsers on hostile
 * answers: a /machines page (appended to an earlier page), a /snapshots
 * page, a DELETE reply, and the orphan line of each machine.
 *
 * Invariants: a page only ever appends well-formed instances (the earlier
 * page's entries are left as they were); a cursor is terminated within
 * PAPERSPACE_CURSOR_MAX and is there whenever "more" is; snapshot and
 * orphan text is whole lines; a DELETE is accepted only if it names the
 * machine asked for.
 */
#include <errno.h>

#include "buf.h"
#include "fuzz_platform.h"
#include "paperspace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MID "psl4ynqhs"

static void check_lines(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		FUZZ_ASSERT(c == '\n' || (c >= 0x20 && c != 0x7f));
	}
	if (b->len)
		FUZZ_ASSERT(b->data[b->len - 1] == '\n');
}

static const char page1[] =
	"{\"hasMore\":true,\"nextPage\":\"c1\",\"items\":[{\"id\":\"" MID "\","
	"\"name\":\"a\",\"state\":\"ready\",\"publicIp\":\"1.2.3.4\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct rgt_instance_list l = { 0 };
	char err[256], cursor[PAPERSPACE_CURSOR_MAX];
	bool more = false;
	size_t skipped = 0;
	int rc;

	/* A known first page, then the hostile one appended to it. */
	err[0] = '\0';
	rc = paperspace_parse_page(page1, sizeof(page1) - 1, NULL, &l, &more,
				   cursor, &skipped, err, sizeof(err));
	FUZZ_ASSERT(rc == 0);
	size_t before = l.n;
	char first[RGT_ID_MAX];
	memcpy(first, before ? l.v[0].id : "", before ? sizeof(first) : 1);
	err[0] = '\0';
	rc = paperspace_parse_page(body, size, NULL, &l, &more, cursor,
				   &skipped, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	FUZZ_ASSERT(l.n >= before);
	fuzz_check_list(&l);
	if (before)
		FUZZ_ASSERT(!strcmp(first, l.v[0].id));
	if (rc == 0) {
		FUZZ_ASSERT(fuzz_terminated(cursor, sizeof(cursor)));
		if (more)
			FUZZ_ASSERT(cursor[0] != '\0');
	}
	rgt_instance_list_free(&l);

	json_t *root = json_loadb(body, size, 0, NULL);
	json_t *arr = json_is_object(root) ? json_object_get(root, "items")
					   : NULL;
	size_t i;
	json_t *m;
	json_array_foreach(arr, i, m) {
		struct buf b;
		buf_init(&b, 1 << 16);
		if (paperspace_orphan_lines(m, &b) == 0)
			check_lines(&b);
		buf_cleanup(&b);
	}
	json_decref(root);

	struct buf sn;
	buf_init(&sn, 1 << 20);
	more = false;
	err[0] = '\0';
	rc = paperspace_parse_snapshots(body, size, MID, &sn, &more, cursor,
					err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		check_lines(&sn);
		FUZZ_ASSERT(fuzz_terminated(cursor, sizeof(cursor)));
	}
	buf_cleanup(&sn);

	bool refused = false;
	err[0] = '\0';
	rc = paperspace_parse_delete(body, size, MID, &refused, err,
				     sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0)
		FUZZ_ASSERT(memmem(body, size, MID, sizeof(MID) - 1) != NULL);
	return 0;
}
