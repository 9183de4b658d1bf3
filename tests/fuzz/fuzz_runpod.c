/*
 * fuzz_runpod.c - the RunPod adapter's pure parsers on hostile answers:
 * the GET /v2/pods list and the Server-Sent Events log body.
 *
 * Invariants: an accepted list holds only well-formed instances, none of
 * them GONE (TERMINATED pods are left out); a refused one is empty. The
 * rendered log is whole lines of text with no control byte but '\n' (each
 * field is escaped, so no event can forge a line), within the buffer's
 * room and RUNPOD_LOG_MAX.
 */
#include <errno.h>

#include "buf.h"
#include "fuzz_platform.h"
#include "runpod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct rgt_instance_list l = { 0 };
	char err[256];
	int rc;

	err[0] = '\0';
	rc = runpod_parse_pods(body, size, "root", &l, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		fuzz_check_list(&l);
		for (size_t i = 0; i < l.n; i++)
			FUZZ_ASSERT(l.v[i].state != RGT_ST_GONE);
	} else {
		fuzz_check_empty(&l);
	}
	rgt_instance_list_free(&l);

	struct buf out;
	size_t room = size * 2 + 64;
	buf_init(&out, room);
	err[0] = '\0';
	rc = runpod_parse_logs(body, size, &out, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(out.len <= room && out.len <= RUNPOD_LOG_MAX);
		for (size_t i = 0; i < out.len; i++) {
			unsigned char c = (unsigned char)out.data[i];
			FUZZ_ASSERT(c == '\n' || (c >= 0x20 && c != 0x7f));
		}
		if (out.len)
			FUZZ_ASSERT(out.data[out.len - 1] == '\n');
	}
	buf_cleanup(&out);
	return 0;
}
