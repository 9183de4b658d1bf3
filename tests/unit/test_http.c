/*
 * test_http.c - the pure part of http.c: HTTP status -> errno, and the
 * argument checks of http_do() that fail before any network I/O. Requests
 * against a live server belong to the integration suite.
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"


static void test_status_to_errno(void)
{
	CHECK(http_status_to_errno(200) == 0);
	CHECK(http_status_to_errno(201) == 0);
	CHECK(http_status_to_errno(204) == 0);
	CHECK(http_status_to_errno(299) == 0);
	CHECK(http_status_to_errno(401) == -EACCES);
	CHECK(http_status_to_errno(403) == -EACCES);
	CHECK(http_status_to_errno(404) == -ENOENT);
	CHECK(http_status_to_errno(429) == -EAGAIN);
	CHECK(http_status_to_errno(503) == -EAGAIN);
	CHECK(http_status_to_errno(408) == -ETIMEDOUT);
	CHECK(http_status_to_errno(504) == -ETIMEDOUT);
	CHECK(http_status_to_errno(500) == -EIO);
	CHECK(http_status_to_errno(502) == -EIO);
	CHECK(http_status_to_errno(400) == -EIO);
	CHECK(http_status_to_errno(301) == -EIO);
	CHECK(http_status_to_errno(100) == -EIO);
	CHECK(http_status_to_errno(0) == -EIO);
	CHECK(http_status_to_errno(-1) == -EIO);
	CHECK(http_status_to_errno(999) == -EIO);
}

/* Refused before any I/O; the query string stays out of the message. */
static void test_bad_url(void)
{
	struct http_req req = {.method = "GET",
			       .url = "ftp://example.com/x?api_key=SEKRIT"};
	struct http_resp resp;
	char err[256];

	CHECK(http_do(&req, &resp, err, sizeof(err)) == -EINVAL);
	CHECK(resp.attempts == 0 && resp.status == 0);
	CHECK(strstr(err, "SEKRIT") == NULL);
	CHECK(strstr(err, "ftp://example.com/x") != NULL);
	http_resp_cleanup(&resp);

	req.url = "file:///etc/passwd";
	CHECK(http_do(&req, &resp, err, sizeof(err)) == -EINVAL);
	http_resp_cleanup(&resp);

	/* A header with a line break is refused before any I/O. */
	const char *hdrs[] = {"Authorization: Bearer k\r\nX-Evil: 1", NULL};
	req.url = "http://127.0.0.1:1/x";
	req.headers = hdrs;
	CHECK(http_do(&req, &resp, err, sizeof(err)) == -EINVAL);
	CHECK(resp.attempts == 0);
	CHECK(strstr(err, "line break") != NULL);
	CHECK(strstr(err, "Bearer") == NULL);
	http_resp_cleanup(&resp);
	req.headers = NULL;

	req.url = NULL;
	CHECK(http_do(&req, &resp, err, sizeof(err)) == -EINVAL);
	http_resp_cleanup(&resp);
	http_resp_cleanup(NULL);
}

/* What a cut stream keeps: everything up to its last complete line. */
static void test_complete_lines(void)
{
	CHECK(http_complete_lines("", 0) == 0);
	CHECK(http_complete_lines("abc", 3) == 0);
	CHECK(http_complete_lines("a\n", 2) == 2);
	CHECK(http_complete_lines("data: x\n\nid: 2\nda", 17) == 15);
	CHECK(http_complete_lines("a\r\nb\r\n", 6) == 6);
	CHECK(http_complete_lines("\n\n", 1) == 1);
}

/* A stream request is refused before any I/O just like any other. */
static void test_stream_bad_url(void)
{
	struct http_req req = {.method = "GET",
			       .url = "ftp://example.com/logs?tail=1",
			       .stream_ms = 2000};
	struct http_resp resp;
	char err[256];

	CHECK(http_do(&req, &resp, err, sizeof(err)) == -EINVAL);
	CHECK(resp.attempts == 0 && resp.status == 0 && resp.body.len == 0);
	CHECK(strstr(err, "tail=") == NULL);
	http_resp_cleanup(&resp);
}

int main(void)
{
	test_status_to_errno();
	test_bad_url();
	test_complete_lines();
	test_stream_bad_url();
	return CHECK_DONE();
}
