/*
 * s3probe - drive xfer_s3_ops by hand, for the python tests
 * (tests/integration/test_s3_transport.py) against a real S3 server.
 *
 *   s3probe ENDPOINT REGION BUCKET PREFIX CMD ARGS...
 *
 *   stat PATH              "dir" or "file SIZE MTIME ETAG" on stdout
 *   ls PATH                one line per entry: "d|f SIZE MTIME ETAG NAME"
 *                          (NAME escaped); the transport's note about
 *                          skipped keys on stderr as "note: ..."
 *   cat PATH OFF LEN       LEN bytes from OFF to stdout, in 1 MiB preads
 *                          on one handle (one kept connection)
 *   statread PATH OFF LEN  stat PATH and print it as stat does, then wait
 *                          for a line on stdin, then read as cat does with
 *                          the stat result as the expected version
 *   catv PATH OFF SIZES    one preadv at OFF into buffers of the
 *                          comma-separated SIZES (bytes each), what it
 *                          read to stdout
 *   put PATH               store stdin (at most 64 MiB) as PATH with
 *                          xfer_s3_put(); the new ETag on stdout
 *
 * Credentials come from the environment through s3cred (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or a shared credentials file).
 * S3PROBE_VHOST=1 addresses the bucket virtual-hosted style;
 * S3PROBE_MAX_PAGES / S3PROBE_MAX_ENTRIES set the listing bounds,
 * S3PROBE_IO_MS the per-request budget, S3PROBE_CA_FILE an extra CA.
 *
 * Errors: "error: ENAME (-N): reason" on stderr, exit 1; usage: exit 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "http.h"
#include "s3cred.h"
#include "s3xml.h"
#include "xfer.h"

#define CHUNK (1024 * 1024)

static const char *ename(int e)
{
	switch (-e) {
	case ENOENT:
		return "ENOENT";
	case EACCES:
		return "EACCES";
	case ESTALE:
		return "ESTALE";
	case EIO:
		return "EIO";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EAGAIN:
		return "EAGAIN";
	case E2BIG:
		return "E2BIG";
	case EINVAL:
		return "EINVAL";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case ENAMETOOLONG:
		return "ENAMETOOLONG";
	case EISDIR:
		return "EISDIR";
	case EFBIG:
		return "EFBIG";
	case ENOMEM:
		return "ENOMEM";
	default:
		return "E?";
	}
}

static int die(int rc, const char *why)
{
	fprintf(stderr, "error: %s (%d): %s\n", ename(rc), rc, why);
	return 1;
}

static void print_attr(const struct xfer_attr *a)
{
	if (S_ISDIR(a->mode))
		printf("dir\n");
	else
		printf("file %" PRIu64 " %" PRId64 " %s\n", a->size, a->mtime,
		       a->etag[0] ? a->etag : "-");
	fflush(stdout);
}

static int print_dent(void *arg, const char *name, const struct xfer_attr *a)
{
	char esc[1024];

	s3_escape(name, strlen(name), esc, sizeof(esc));
	printf("%c %" PRIu64 " %" PRId64 " %s %s\n",
	       S_ISDIR(a->mode) ? 'd' : 'f', a->size, a->mtime,
	       a->etag[0] ? a->etag : "-", esc);
	return 0;
}

static int cat(struct xfer *x, const char *path, uint64_t off, uint64_t len,
	       const struct xfer_attr *expect)
{
	char *buf = malloc(CHUNK);

	if (!buf)
		return die(-ENOMEM, "out of memory");
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		ssize_t got = x->ops->pread(x, path, buf, n, off, expect);

		if (got < 0) {
			free(buf);
			return die((int)got, x->err);
		}
		if (!got)
			break;
		fwrite(buf, 1, (size_t)got, stdout);
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	free(buf);
	fflush(stdout);
	return 0;
}

static int catv(struct xfer *x, const char *path, uint64_t off,
		const char *sizes)
{
	struct iovec iov[XFER_IOV_MAX];
	int n = 0, ret = 0;
	const char *p = sizes;

	while (*p) {
		if (n == XFER_IOV_MAX)
			return die(-E2BIG, "more than XFER_IOV_MAX sizes");
		char *end;
		unsigned long long v = strtoull(p, &end, 10);

		if (end == p || v > ((uint64_t)256 << 20))
			return die(-EINVAL, "bad SIZES");
		iov[n].iov_len = (size_t)v;
		iov[n].iov_base = malloc(v ? v : 1);
		if (!iov[n++].iov_base)
			return die(-ENOMEM, "out of memory");
		p = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return die(-EINVAL, "bad SIZES");
	}
	ssize_t got = x->ops->preadv(x, path, iov, n, off, NULL);
	if (got < 0)
		ret = die((int)got, x->err);
	for (int i = 0; i < n; i++) {
		size_t k = got > 0 ? ((size_t)got < iov[i].iov_len
					      ? (size_t)got
					      : iov[i].iov_len)
				   : 0;
		fwrite(iov[i].iov_base, 1, k, stdout);
		if (got > 0)
			got -= (ssize_t)k;
		free(iov[i].iov_base);
	}
	fflush(stdout);
	return ret;
}

static long env_long(const char *name)
{
	const char *v = getenv(name);

	return v ? strtol(v, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
	struct s3_creds cr;
	struct xfer_s3_params sp = {0};
	struct xfer_params xp = {0};
	struct xfer_attr a;
	struct xfer *x = NULL;
	char err[512];
	const char *cmd;
	int rc, ret = 0;

	if (argc < 7) {
		fprintf(stderr,
			"usage: s3probe ENDPOINT REGION BUCKET PREFIX "
			"stat|ls|put PATH | cat|statread PATH OFF LEN\n");
		return 2;
	}
	cmd = argv[5];
	if ((!strcmp(cmd, "cat") || !strcmp(cmd, "statread") ||
	     !strcmp(cmd, "catv")) &&
	    argc < 9) {
		fprintf(stderr, "s3probe: %s needs PATH OFF %s\n", cmd,
			strcmp(cmd, "catv") ? "LEN" : "SIZES");
		return 2;
	}
	if (http_global_init())
		return 1;
	rc = s3cred_load(NULL, &cr, err, sizeof(err));
	if (rc) {
		ret = die(rc, err);
		goto out_http;
	}
	sp.endpoint = argv[1];
	sp.region = argv[2];
	sp.bucket = argv[3];
	sp.prefix = argv[4];
	sp.creds = &cr;
	sp.virtual_hosted = env_long("S3PROBE_VHOST") == 1;
	sp.ca_file = getenv("S3PROBE_CA_FILE");
	sp.max_pages = env_long("S3PROBE_MAX_PAGES");
	sp.max_entries = env_long("S3PROBE_MAX_ENTRIES");
	xp.s3 = &sp;
	xp.connect_timeout_ms = 5000;
	xp.io_timeout_ms =
	    env_long("S3PROBE_IO_MS") > 0 ? env_long("S3PROBE_IO_MS") : 20000;
	rc = xfer_s3_ops.open(&xp, &x, err, sizeof(err));
	s3cred_cleanup(&cr); /* the handle keeps its own copy */
	if (rc) {
		ret = die(rc, err);
		goto out_http;
	}

	if (!strcmp(cmd, "stat")) {
		rc = x->ops->stat(x, argv[6], &a);
		if (rc)
			ret = die(rc, x->err);
		else
			print_attr(&a);
	} else if (!strcmp(cmd, "ls")) {
		rc = x->ops->readdir(x, argv[6], print_dent, NULL);
		if (rc)
			ret = die(rc, x->err);
		else if (x->err[0])
			fprintf(stderr, "note: %s\n", x->err);
	} else if (!strcmp(cmd, "cat")) {
		ret = cat(x, argv[6], strtoull(argv[7], NULL, 10),
			  strtoull(argv[8], NULL, 10), NULL);
	} else if (!strcmp(cmd, "catv")) {
		ret = catv(x, argv[6], strtoull(argv[7], NULL, 10), argv[8]);
	} else if (!strcmp(cmd, "statread")) {
		char line[64];

		rc = x->ops->stat(x, argv[6], &a);
		if (rc) {
			ret = die(rc, x->err);
		} else {
			print_attr(&a);
			if (!fgets(line, sizeof(line), stdin))
				line[0] = '\0';
			ret = cat(x, argv[6], strtoull(argv[7], NULL, 10),
				  strtoull(argv[8], NULL, 10), &a);
		}
	} else if (!strcmp(cmd, "put")) {
		struct buf in;
		char chunk[65536], etag[XFER_ETAG_MAX];
		size_t n;

		buf_init(&in, (size_t)64 << 20);
		while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0 &&
		       !(rc = buf_append(&in, chunk, n)))
			;
		if (rc)
			ret = die(rc, "stdin larger than 64 MiB");
		else if ((rc = xfer_s3_put(x, argv[6], in.data, in.len, etag,
					   sizeof(etag))))
			ret = die(rc, x->err);
		else
			printf("%s\n", etag);
		buf_cleanup(&in);
	} else {
		fprintf(stderr, "s3probe: unknown command %s\n", cmd);
		ret = 2;
	}
	x->ops->close(x);
out_http:
	http_global_cleanup();
	return ret;
}
