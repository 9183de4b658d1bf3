/*
 * rgtfs-xfer - drive one xfer backend (SFTP) by hand: stat, ls, cat, exec.
 * -T openssh|libssh2 picks the SSH transport (default libssh2; with -D also
 * auto, remote.c's choice); -S DIR is the OpenSSH transport's state
 * directory (default: a temporary one; with -D the cache directory, whose
 * ssh/ holds it); -P DIR keeps -D's store (and so the host-key pin) in DIR
 * across runs.
 * `-D MS exec CMD` runs CMD through remote_exec_bounded() instead (the
 * daemon's own session pool, host-key pin in a throw-away store), so the
 * deadline a teardown uses for long silent commands can be tried by hand.
 *
 * A debug and benchmark tool: it links the same core library as rgtfs, so
 * what it measures is what the file system gets. It accepts any host key
 * (printing its SHA-256 fingerprint) unless -K names a known_hosts file.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "log.h"
#include "remote.h"
#include "store.h"
#include "xfer.h"

struct opts {
	const char *known_hosts;
	const char *host;
	int port;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: rgtfs-xfer [-k KEYFILE] [-u USER] [-p PORT] [-b BLOCK] "
		"[-o OFFSET]\n"
		"                  [-l LENGTH] [-c CONNECT_MS] [-t IO_MS] [-K "
		"KNOWN_HOSTS]\n"
		"                  [-D DEADLINE_MS] [-T openssh|libssh2|auto] "
		"[-S STATE_DIR]\n"
		"                  [-P STORE_DIR] [-v]\n"
		"                  HOST CMD PATH\n"
		"\n"
		"  CMD  stat  PATH     lstat of PATH\n"
		"       ls    PATH     list PATH (mode, size, mtime, name; odd "
		"bytes escaped),\n"
		"                      at most LENGTH entries\n"
		"       cat   PATH     write PATH to stdout with sequential "
		"BLOCK-sized reads\n"
		"                      (default 1 MiB), from OFFSET for LENGTH "
		"bytes; speed on\n"
		"                      stderr\n"
		"       exec  CMD      run CMD through the remote shell (with "
		"-D: silent for\n"
		"                      as long as it likes within DEADLINE_MS, "
		"via\n"
		"                      remote_exec_bounded)\n"
		"       preads PATH    for each \"OFFSET LENGTH\" line on "
		"stdin, one pread on\n"
		"                      one session; stdout gets \"N\\n\" and N "
		"bytes, or\n"
		"                      \"E<errno> reason\\n\"; a line \"C\" "
		"closes the session\n"
		"                      (\"closed\\n\"), \"X CMD\" runs CMD "
		"(\"S<status> N\\n\" and N\n"
		"                      bytes of stdout), \"R\" opens a new "
		"session (\"reopened\\n\")\n"
		"       opens N        N sessions opened at once (threads), "
		"each stats / and\n"
		"                      closes\n"
		"\n"
		"  -T   the SSH transport: libssh2 (default) or openssh; with "
		"-D also auto\n"
		"       (remote.c's choice). -S: the OpenSSH transport's state "
		"directory.\n"
		"       -P (with -D): keep the store, so the host-key pin, in "
		"STORE_DIR.\n"
		"\n"
		"Debug tool: without -K it accepts ANY host key and only "
		"prints its SHA-256\n"
		"fingerprint to stderr. Without -k it authenticates with "
		"ssh-agent.\n");
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "SHA256:<base64 without padding>", as ssh-keygen -l prints it. */
static void fingerprint(const unsigned char *key, size_t len, char *out,
			size_t outlen)
{
	unsigned char md[32], b64[64];
	unsigned int mdlen = 0;
	int n;

	EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL);
	n = EVP_EncodeBlock(b64, md, (int)mdlen);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, outlen, "SHA256:%.*s", n, (char *)b64);
}

static int hostkey_cb(void *arg, const char *type, const unsigned char *key,
		      size_t keylen, char *err, size_t errlen)
{
	const struct opts *o = arg;
	char fp[80];
	int rc;

	fingerprint(key, keylen, fp, sizeof(fp));
	if (!o->known_hosts) {
		fprintf(stderr,
			"rgtfs-xfer: host key %s %s (accepted "
			"unchecked)\n",
			type, fp);
		return 0;
	}
	rc = xfer_known_hosts_check(o->known_hosts, o->host, o->port, type, key,
				    keylen);
	fprintf(stderr, "rgtfs-xfer: host key %s %s: %s in %s\n", type, fp,
		rc == 0		? "listed"
		: rc == -ENOENT ? "not listed"
		: rc == -EACCES ? "DIFFERENT KEY listed"
				: strerror(-rc),
		o->known_hosts);
	if (rc) {
		snprintf(err, errlen, "host key %s %s not accepted by %s: %s",
			 type, fp, o->known_hosts,
			 rc == -ENOENT	 ? "host not listed"
			 : rc == -EACCES ? "a different key is listed"
					 : strerror(-rc));
		return -EACCES;
	}
	return 0;
}

static void print_name(const char *s)
{
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '\\')
			fputs("\\\\", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void print_attr(const struct xfer_attr *a)
{
	printf("%07" PRIo32 " %12" PRIu64 " %11" PRId64 " ", a->mode, a->size,
	       a->mtime);
}

struct ls_state {
	unsigned long n;
	uint64_t limit; /* -l: stop after this many entries */
};

static int ls_entry(void *arg, const char *name, const struct xfer_attr *a)
{
	struct ls_state *st = arg;

	if (st->n >= st->limit)
		return 1;
	st->n++;
	print_attr(a);
	print_name(name);
	putchar('\n');
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= w;
	}
	return 0;
}

static int do_cat(struct xfer *x, const char *path, size_t block, uint64_t off,
		  uint64_t length)
{
	uint64_t total = 0;
	double t0 = now_s(), dt;
	char *buf;
	int rc = 0;

	buf = malloc(block);
	if (!buf)
		return -ENOMEM;
	while (total < length) {
		size_t want = length - total < block ? length - total : block;
		ssize_t n = x->ops->pread(x, path, buf, want, off + total, NULL);

		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		rc = write_all(STDOUT_FILENO, buf, n);
		if (rc) {
			fprintf(stderr, "rgtfs-xfer: write: %s\n",
				strerror(-rc));
			rc = 0; /* not a transport error: stop quietly */
			break;
		}
		total += n;
		if ((size_t)n < want)
			break;
	}
	dt = now_s() - t0;
	fprintf(stderr, "rgtfs-xfer: %" PRIu64 " bytes in %.3f s, %.1f MiB/s\n",
		total, dt, dt > 0 ? total / dt / 1048576 : 0.0);
	free(buf);
	return rc;
}

/* Scripted reads on one handle: exercises seeks, EOF and handle reuse. */
static int do_preads(struct xfer **xp, const char *path,
		     const struct xfer_params *p)
{
	char line[4096], *buf = NULL;
	size_t cap = 0;

	while (fgets(line, sizeof(line), stdin)) {
		struct xfer *x = *xp;
		unsigned long long o, l;
		ssize_t n;

		if (!strcmp(line, "C\n") && x) {
			/* the test then looks for leftovers while we live */
			x->ops->close(x);
			*xp = NULL;
			printf("closed\n");
			fflush(stdout);
			continue;
		}
		if (!strcmp(line, "R\n")) {
			/* a new session (the transport's second open) */
			const struct xfer_ops *ops =
			    x ? x->ops : &xfer_sftp_ops;
			char err[512] = "";
			int rc;

			if (x)
				x->ops->close(x);
			*xp = NULL;
			rc = ops->open(p, xp, err, sizeof(err));
			if (rc)
				printf("E%d %s\n", -rc, err);
			else
				printf("reopened\n");
			fflush(stdout);
			continue;
		}
		if (!x)
			continue;
		if (!strncmp(line, "X ", 2)) {
			struct buf out;
			int status = -1, rc;

			line[strcspn(line, "\n")] = '\0';
			buf_init(&out, 1 << 20);
			rc = x->ops->exec(x, line + 2, &out, &status, 0);
			if (rc)
				printf("E%d %s\n", -rc, x->err);
			else
				printf("S%d %zu\n", status, out.len);
			if (!rc)
				fwrite(out.data ? out.data : "", 1, out.len,
				       stdout);
			fflush(stdout);
			buf_cleanup(&out);
			continue;
		}
		if (sscanf(line, "%llu %llu", &o, &l) != 2 || l > (1u << 30))
			continue;
		if (l > cap) {
			char *nb = realloc(buf, l);

			if (!nb)
				break;
			buf = nb;
			cap = l;
		}
		n = x->ops->pread(x, path, buf, l, o, NULL);
		if (n < 0) {
			printf("E%d %s\n", (int)-n, x->err);
		} else {
			printf("%zd\n", n);
			fwrite(buf, 1, n, stdout);
		}
		fflush(stdout);
	}
	free(buf);
	return 0;
}

struct open_job {
	pthread_t t;
	const struct xfer_ops *ops;
	const struct xfer_params *p;
	int rc;
	char err[512];
};

static void *open_one(void *arg)
{
	struct open_job *j = arg;
	struct xfer *x = NULL;
	struct xfer_attr a;

	j->rc = j->ops->open(j->p, &x, j->err, sizeof(j->err));
	if (!j->rc) {
		j->rc = x->ops->stat(x, "/", &a);
		if (j->rc)
			snprintf(j->err, sizeof(j->err), "%s", x->err);
		x->ops->close(x);
	}
	return NULL;
}

/* `opens N`: N sessions opened at once (threads), each stat / and close. */
static int do_opens(const struct xfer_ops *ops, const struct xfer_params *p,
		    const char *count)
{
	struct open_job j[32];
	int n = atoi(count), bad = 0;

	if (n < 1 || n > 32)
		usage();
	for (int i = 0; i < n; i++) {
		j[i].ops = ops;
		j[i].p = p;
		j[i].rc = -EAGAIN;
		j[i].err[0] = '\0';
		if (pthread_create(&j[i].t, NULL, open_one, &j[i]))
			n = i;
	}
	for (int i = 0; i < n; i++) {
		pthread_join(j[i].t, NULL);
		if (j[i].rc) {
			bad++;
			fprintf(stderr, "rgtfs-xfer: open %d: %s: %s\n", i,
				strerror(-j[i].rc), j[i].err);
		}
	}
	printf("%d opened, %d failed\n", n - bad, bad);
	return bad ? 1 : 0;
}

/*
 * exec through struct remote: the path the daemon's teardown takes. The
 * store is a fresh temporary one, so the host key is trusted on first use
 * (printed, like the unchecked default).
 */
static int do_exec_bounded(const struct xfer_params *p, const char *command,
			   long deadline_ms, enum rgt_transport transport,
			   const char *keep)
{
	char dir[] = "/tmp/rgtfs-xfer-XXXXXX", sub[64], err[512], key[256];
	const char *sdir = keep ? keep : sub;
	struct store *st = NULL;
	struct remote *r = NULL;
	struct buf out;
	int status = 0, rc;
	double t0 = now_s();

	if (!keep && !mkdtemp(dir)) {
		perror("rgtfs-xfer: mkdtemp");
		return 1;
	}
	snprintf(sub, sizeof(sub), "%s/store", dir);
	rc = store_open(sdir, 1ull << 26, &st, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rgtfs-xfer: store: %s\n", err);
		goto out_dir;
	}
	struct remote_params rp = {
		.platform = "xfer",
		.id = p->host,
		.user = p->user,
		.key_path = p->key_path,
		.connect_timeout_ms = p->connect_timeout_ms,
		.io_timeout_ms = p->io_timeout_ms,
		.max_sessions = 1,
		.store = st,
		.transport = transport,
		.state_dir = p->state_dir,
	};
	struct rgt_endpoint ep = { .port = p->port };
	snprintf(ep.host, sizeof(ep.host), "%s", p->host);
	rc = remote_new(&rp, &r);
	if (rc)
		goto out_store;
	remote_set_endpoints(r, &ep, 1);
	buf_init(&out, 64u << 20);
	rc = remote_exec_bounded(r, command, &out, &status, deadline_ms);
	if (!remote_pinned_key(r, key, sizeof(key)))
		fprintf(stderr, "rgtfs-xfer: host key %s (accepted unchecked)\n",
			key);
	if (!rc) {
		write_all(STDOUT_FILENO, out.data ? out.data : "", out.len);
		fprintf(stderr, "rgtfs-xfer: exit status %d (after %.2f s)\n",
			status, now_s() - t0);
	} else {
		remote_error(r, err, sizeof(err));
		fprintf(stderr, "rgtfs-xfer: exec: %s (after %.2f s): %s\n",
			strerror(-rc), now_s() - t0, err);
	}
	buf_cleanup(&out);
	remote_free(r);
out_store:
	store_close(st);
	if (keep)
		goto out_kept;
	snprintf(err, sizeof(err), "%s/data.mdb", sub);
	unlink(err);
	snprintf(err, sizeof(err), "%s/lock.mdb", sub);
	unlink(err);
	rmdir(sub);
out_dir:
	rmdir(dir);
out_kept:
	if (rc)
		return 1;
	return status > 255 ? 255 : status;
}

int main(int argc, char **argv)
{
	struct xfer_params p = {
	    .port = 22,
	    .connect_timeout_ms = 10000,
	    .io_timeout_ms = 30000,
	};
	struct opts o = {0};
	struct xfer *x = NULL;
	char err[512] = "";
	size_t block = 1 << 20;
	uint64_t off = 0, length = UINT64_MAX;
	const char *cmd, *path;
	struct passwd *pw;
	int c, rc, status = 0;
	long deadline_ms = 0;
	const struct xfer_ops *ops = &xfer_sftp_ops;
	enum rgt_transport transport = RGT_TRANSPORT_LIBSSH2;
	const char *keep = NULL;

	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt(argc, argv, "k:u:p:b:o:l:c:t:K:D:T:S:P:vh")) != -1) {
		switch (c) {
		case 'k':
			p.key_path = optarg;
			break;
		case 'u':
			p.user = optarg;
			break;
		case 'p':
			p.port = atoi(optarg);
			break;
		case 'b':
			block = strtoull(optarg, NULL, 0);
			break;
		case 'o':
			off = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			length = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			p.connect_timeout_ms = atol(optarg);
			break;
		case 't':
			p.io_timeout_ms = atol(optarg);
			break;
		case 'K':
			o.known_hosts = optarg;
			break;
		case 'D':
			deadline_ms = atol(optarg);
			if (deadline_ms <= 0)
				usage();
			break;
		case 'T':
			if (!strcmp(optarg, "openssh")) {
				ops = &xfer_openssh_ops;
				transport = RGT_TRANSPORT_OPENSSH;
			} else if (!strcmp(optarg, "libssh2")) {
				ops = &xfer_sftp_ops;
				transport = RGT_TRANSPORT_LIBSSH2;
			} else if (!strcmp(optarg, "auto")) {
				ops = NULL; /* -D only */
				transport = RGT_TRANSPORT_AUTO;
			} else {
				usage();
			}
			break;
		case 'P':
			keep = optarg;
			break;
		case 'S':
			p.state_dir = optarg;
			break;
		case 'v':
			rgt_log_set_level(RGT_DEBUG);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 3 || !block || block > (1u << 30))
		usage();
	p.host = argv[optind];
	cmd = argv[optind + 1];
	path = argv[optind + 2];
	if (!p.user) {
		pw = getpwuid(getuid());
		p.user = pw ? pw->pw_name : "root";
	}
	o.host = p.host;
	o.port = p.port;
	p.hostkey = hostkey_cb;
	p.hostkey_arg = &o;
	if (deadline_ms) {
		if (strcmp(cmd, "exec") || o.known_hosts)
			usage();	/* -D is for exec, with TOFU only */
		return do_exec_bounded(&p, path, deadline_ms, transport, keep);
	}

	if (!ops || keep)
		usage(); /* auto and -P are remote.c's: -D only */
	if (!strcmp(cmd, "opens"))
		return do_opens(ops, &p, path);
	double t0 = now_s();
	rc = ops->open(&p, &x, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rgtfs-xfer: open: %s (after %.2f s): %s\n",
			strerror(-rc), now_s() - t0, err);
		return 1;
	}
	if (!strcmp(cmd, "stat")) {
		struct xfer_attr a;

		rc = x->ops->stat(x, path, &a);
		if (!rc) {
			print_attr(&a);
			print_name(path);
			putchar('\n');
		}
	} else if (!strcmp(cmd, "ls")) {
		struct ls_state st = {0, length};

		rc = x->ops->readdir(x, path, ls_entry, &st);
		if (rc >= 0)
			fprintf(stderr, "rgtfs-xfer: %lu entries%s\n", st.n,
				rc ? " (stopped by -l)" : "");
		if (rc > 0)
			rc = 0;
	} else if (!strcmp(cmd, "cat")) {
		rc = do_cat(x, path, block, off, length);
	} else if (!strcmp(cmd, "preads")) {
		rc = do_preads(&x, path, &p);
		if (!x)
			return 0;
	} else if (!strcmp(cmd, "exec")) {
		struct buf out;

		buf_init(&out, 64u << 20);
		rc = x->ops->exec(x, path, &out, &status, 0);
		if (!rc) {
			write_all(STDOUT_FILENO, out.data ? out.data : "",
				  out.len);
			fprintf(stderr, "rgtfs-xfer: exit status %d\n", status);
		}
		buf_cleanup(&out);
	} else {
		x->ops->close(x);
		usage();
	}
	fflush(stdout);
	if (rc)
		fprintf(stderr, "rgtfs-xfer: %s: %s (after %.2f s): %s\n", cmd,
			strerror(-rc), now_s() - t0, x->err);
	x->ops->close(x);
	if (rc)
		return 1;
	return status > 255 ? 255 : status;
}
