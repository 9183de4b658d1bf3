/*
 * fuzz_vastai.c - the vast.ai adapter's pure parsers on hostile answers:
 * the v0 list/show reply, a v1 page (and its cursor), the log API's reply
 * and its result_url check, and the log text cut.
 *
 * Invariants: every accepted list holds only well-formed instances
 * (fuzz_platform.h); a refused one is empty; a next_token is printable
 * ASCII of at most VASTAI_TOKEN_MAX bytes; an accepted result_url is
 * http(s) with a host; the log text is the body or a suffix of it that
 * starts after a '\n', never longer than VASTAI_LOG_MAX.
 */
#include <errno.h>
#include <strings.h>

#include "buf.h"
#include "fuzz_platform.h"
#include "vastai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct rgt_instance_list l = { 0 };
	char err[256];
	int rc;

	err[0] = '\0';
	rc = vastai_parse_instances(body, size, "root", &l, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0)
		fuzz_check_list(&l);
	else
		fuzz_check_empty(&l);
	rgt_instance_list_free(&l);

	char *tok = NULL;
	memset(&l, 0, sizeof(l));
	rc = vastai_parse_page(body, size, NULL, &l, &tok, err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		fuzz_check_list(&l);
		if (tok) {
			size_t n = strlen(tok);
			FUZZ_ASSERT(n > 0 && n <= VASTAI_TOKEN_MAX);
			FUZZ_ASSERT(fuzz_printable_ascii(tok, n));
		}
	} else {
		fuzz_check_empty(&l);
		FUZZ_ASSERT(tok == NULL);
	}
	free(tok);
	rgt_instance_list_free(&l);

	char host[256], *url = NULL;
	rc = vastai_parse_log_reply(body, size, &url, host, sizeof(host), err,
				    sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(url != NULL);
		FUZZ_ASSERT(!strncasecmp(url, "https://", 8) ||
			    !strncasecmp(url, "http://", 7));
		FUZZ_ASSERT(fuzz_terminated(host, sizeof(host)) && host[0]);
		FUZZ_ASSERT(strstr(url, host) != NULL);
	}
	free(url);

	/* The check on its own, with the input as the URL. */
	char *s = fuzz_strndup(data, size);
	rc = vastai_result_url_check(s, host, sizeof(host), err, sizeof(err));
	fuzz_check_err(err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(strlen(s) <= VASTAI_URL_MAX);
		FUZZ_ASSERT(fuzz_printable_ascii(s, strlen(s)));
		FUZZ_ASSERT(!strncasecmp(s, "https://", 8) ||
			    !strncasecmp(s, "http://", 7));
		FUZZ_ASSERT(host[0] && strstr(s, host));
		FUZZ_ASSERT(!strchr(host, '@') && !strchr(host, '/'));
	} else {
		FUZZ_ASSERT(rc == -EINVAL);
	}
	free(s);

	/* The log cut, into a buffer with little room left. */
	struct buf out;
	size_t room = size / 2 + 1;
	buf_init(&out, room);
	rc = vastai_log_text(body, size, &out);
	if (rc == 0) {
		FUZZ_ASSERT(out.len <= room && out.len <= VASTAI_LOG_MAX);
		FUZZ_ASSERT(out.len <= size);
		if (out.len)
			FUZZ_ASSERT(!memcmp(out.data, body + size - out.len,
					    out.len));
		if (out.len && out.len < size)
			FUZZ_ASSERT(body[size - out.len - 1] == '\n');
	}
	buf_cleanup(&out);
	return 0;
}
