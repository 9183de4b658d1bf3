/*
 * rgtfs-verify - run the checkpoint load checks on local files, the same
 * checks teardown runs on the cache before it lets a box be destroyed.
 *
 *   rgtfs-verify FILE...
 *
 * One line per file:
 *   OK   path
 *   SKIP path: <why>			no check for this format
 *   FAIL path: <verdict>: <detail>
 * Exit 0 if every file is OK or SKIP, 1 if any FAIL, 2 on a usage error or
 * a file that could not be opened or read (then nothing was decided).
 *
 * Paths are printed with control characters escaped, so a name holding a
 * newline still gives one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"

static void print_path(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

/* 0 OK or SKIP, 1 FAIL, 2 could not be checked. */
static int verify_one(const char *path)
{
	struct ckpt_reader r;
	enum ckpt_verdict v;
	char detail[512];
	int fd, rc;

	/* O_NONBLOCK: a FIFO given by mistake must not hang the open. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		goto out_report;
	}
	rc = ckpt_reader_fd(&r, &fd);
	if (rc)
		goto out_close;
	v = ckpt_verify(path, &r, detail, sizeof(detail));
	close(fd);
	if (v == CKPT_OK) {
		printf("OK   ");
		print_path(path);
		putchar('\n');
		return 0;
	}
	if (v == CKPT_UNKNOWN_FORMAT) {
		printf("SKIP ");
		print_path(path);
		printf(": %s\n", detail);
		return 0;
	}
	printf("FAIL ");
	print_path(path);
	printf(": %s: %s\n", ckpt_strerror(v), detail);
	return v == CKPT_IO_ERROR ? 2 : 1;
out_close:
	close(fd);
out_report:
	printf("FAIL ");
	print_path(path);
	printf(": %s: %s\n", ckpt_strerror(CKPT_IO_ERROR),
	       rc == -EINVAL ? "not a regular file" : strerror(-rc));
	return 2;
}

int main(int argc, char **argv)
{
	int i, rc, status = 0;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: rgtfs-verify FILE...\n");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		rc = verify_one(argv[i]);
		if (rc > status)
			status = rc;
	}
	if (fflush(stdout))
		return 2;
	return status;
}
