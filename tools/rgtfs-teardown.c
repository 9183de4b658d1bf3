/*
 * rgtfs-teardown - end an instance the safe way, and watch it happen.
 *
 *   rgtfs-teardown MOUNT/<platform>/<id>
 *
 * Runs rmdir(2) on the instance directory (the teardown verb) in a thread
 * and meanwhile shows the progress rgtfs writes to its `teardown` file,
 * with a bar during the pull. Prints the final report; when rmdir fails
 * prints the reason and exits 1 (the report's first line says "refused:"
 * when nothing was destroyed, "failed:" when a destroy call was made),
 * 2 on usage errors.
 *
 * The `teardown` file is looked up before the rmdir starts: during the
 * rmdir the kernel holds the instance directory's lock, and a first
 * lookup of a name inside it would wait for the teardown to end.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct job {
	const char *path;
	int err;
	volatile bool done;
};

static void *run_rmdir(void *arg)
{
	struct job *j = arg;
	j->err = rmdir(j->path) ? errno : 0;
	__atomic_store_n(&j->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Read a whole small file into @buf; 0 or -errno. */
static int slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	ssize_t n;
	while (got + 1 < len && (n = read(fd, buf + got, len - got - 1)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return 0;
}

static void show_progress(const char *report, bool tty)
{
	/* The last line is the freshest: "pull: X of Y MiB" gets a bar. */
	size_t n = strlen(report);
	while (n && report[n - 1] == '\n')
		n--;
	const char *last = report + n;
	while (last > report && last[-1] != '\n')
		last--;
	uint64_t x, y;
	if (sscanf(last, "pull: %" SCNu64 " of %" SCNu64 " MiB", &x, &y) == 2 &&
	    y) {
		int w = 40, fill = (int)(x * w / y);
		fprintf(stderr, "%s[%.*s%*s] %3d%%  %" PRIu64 "/%" PRIu64
			" MiB", tty ? "\r" : "", fill,
			"########################################", w - fill,
			"", (int)(x * 100 / y), x, y);
		if (!tty)
			fputc('\n', stderr);
	} else if (n) {
		fprintf(stderr, "%s%-72.*s%s", tty ? "\r" : "",
			(int)(report + n - last), last, tty ? "" : "\n");
	}
}

int main(int argc, char **argv)
{
	char dir[PATH_MAX], tfile[PATH_MAX + 16], arch[PATH_MAX + 32];
	static char report[1 << 20], shown[1 << 20];
	struct stat st;

	if (argc != 2 || !strcmp(argv[1], "-h")) {
		fprintf(stderr, "usage: rgtfs-teardown MOUNT/<platform>/<id>\n"
				"Copies every checkpoint off the instance, "
				"verifies the copy, then destroys it.\n");
		return 2;
	}
	if (!realpath(argv[1], dir) || stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "rgtfs-teardown: %s: not an instance "
			"directory\n", argv[1]);
		return 2;
	}
	snprintf(tfile, sizeof(tfile), "%s/teardown", dir);
	if (stat(tfile, &st)) {
		fprintf(stderr, "rgtfs-teardown: %s has no teardown file: not "
			"an rgtfs instance directory\n", dir);
		return 2;
	}
	/* MOUNT/<platform>/<id> -> MOUNT/archive/<platform>/<id> */
	char *id = strrchr(dir, '/');
	*id = '\0';
	char *plat = strrchr(dir, '/');
	*plat = '\0';
	snprintf(arch, sizeof(arch), "%s/archive/%s/%s/teardown", dir,
		 plat + 1, id + 1);
	*plat = '/';
	*id = '/';

	struct job j = { .path = dir };
	pthread_t t;
	if (pthread_create(&t, NULL, run_rmdir, &j)) {
		perror("rgtfs-teardown");
		return 1;
	}
	bool tty = isatty(STDERR_FILENO);
	while (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE)) {
		struct timespec ts = { 0, 300 * 1000000L };
		nanosleep(&ts, NULL);
		if (!slurp(tfile, report, sizeof(report)) &&
		    strcmp(report, shown)) {
			show_progress(report, tty);
			memcpy(shown, report, sizeof(shown));
		}
	}
	pthread_join(t, NULL);
	if (tty)
		fputc('\n', stderr);
	if (!j.err) {
		if (!slurp(arch, report, sizeof(report)))
			fputs(report, stdout);
		return 0;
	}
	if (!slurp(tfile, report, sizeof(report)))
		fputs(report, stdout);
	char *nl = strchr(report, '\n');
	if (nl)
		*nl = '\0';
	fprintf(stderr, "rgtfs-teardown: %s: %s\n%s\n", argv[1],
		strerror(j.err), report);
	return 1;
}
