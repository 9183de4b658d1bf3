/*
 * test_ssh_probe.c - the `ssh` kind's pure parts (the SSH banner parser, the
 * output tail) and its section checks and teardown_command runner, which
 * need no network: the command runs locally through /bin/sh. Also the
 * password loading those hosts use (password_env / password_file).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "config.h"
#include "platform.h"
#include "remote.h"
#include "ssh.h"

static enum ssh_banner parse(const char *s, char *ident, size_t n)
{
	char why[160];
	return ssh_banner_parse(s, strlen(s), ident, n, why, sizeof(why));
}

static void test_banner(void)
{
	char id[64];

	CHECK_ERR(parse("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", id, sizeof(id)),
		  SSH_BANNER_OK);
	CHECK_STR(id, "SSH-2.0-OpenSSH_9.2p1 Debian-2");
	CHECK_ERR(parse("SSH-2.0-dropbear\n", id, sizeof(id)), SSH_BANNER_OK);
	CHECK_STR(id, "SSH-2.0-dropbear");
	CHECK_ERR(parse("SSH-1.99-Old\r\n", id, sizeof(id)), SSH_BANNER_OK);
	/* lines before the identification are allowed (RFC 4253 4.2) */
	CHECK_ERR(parse("hello there\r\nwelcome\nSSH-2.0-X\r\n", id,
			sizeof(id)), SSH_BANNER_OK);
	CHECK_STR(id, "SSH-2.0-X");
	/* a prefix wants more bytes */
	CHECK_ERR(parse("", id, sizeof(id)), SSH_BANNER_MORE);
	CHECK_ERR(parse("SS", id, sizeof(id)), SSH_BANNER_MORE);
	CHECK_ERR(parse("SSH-2.0-Open", id, sizeof(id)), SSH_BANNER_MORE);
	CHECK_ERR(parse("motd\r\n", id, sizeof(id)), SSH_BANNER_MORE);
	/* not SSH-2 */
	CHECK_ERR(parse("SSH-1.5-Ancient\r\n", id, sizeof(id)), SSH_BANNER_BAD);
	CHECK_ERR(parse("SSH-3.0-Future\r\n", id, sizeof(id)), SSH_BANNER_BAD);
	CHECK_ERR(parse("SSH-\r\n", id, sizeof(id)), SSH_BANNER_BAD);
	/* an HTTP server on the port: lines, never a banner, then too long */
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_ERR(parse(big, id, sizeof(id)), SSH_BANNER_BAD);
	/* a NUL in a line is garbage */
	const char nul[] = "ab\0cd\r\nSSH-2.0-X\r\n";
	char why[160];
	CHECK_ERR(ssh_banner_parse(nul, sizeof(nul) - 1, id, sizeof(id), why,
				   sizeof(why)), SSH_BANNER_BAD);
	CHECK(why[0] != '\0');
	/* control bytes in the software version never reach a report */
	CHECK_ERR(parse("SSH-2.0-a\033[2Jb\x01\r\n", id, sizeof(id)),
		  SSH_BANNER_OK);
	CHECK_STR(id, "SSH-2.0-a?[2Jb?");
	/* truncated to the caller's buffer */
	CHECK_ERR(parse("SSH-2.0-abcdefgh\r\n", id, 9), SSH_BANNER_OK);
	CHECK_STR(id, "SSH-2.0-");
}

static void test_tail(void)
{
	char t[8];
	size_t n = 0;

	ssh_tail_append(t, &n, sizeof(t), "abc", 3);
	CHECK(n == 3 && !memcmp(t, "abc", 3));
	ssh_tail_append(t, &n, sizeof(t), "defgh", 5);
	CHECK(n == 8 && !memcmp(t, "abcdefgh", 8));
	ssh_tail_append(t, &n, sizeof(t), "ij", 2);
	CHECK(n == 8 && !memcmp(t, "cdefghij", 8));
	ssh_tail_append(t, &n, sizeof(t), "0123456789", 10);
	CHECK(n == 8 && !memcmp(t, "23456789", 8));
}

struct opened {
	struct rgt_config cfg;
	struct platform *p;
	char err[512];
	int rc;
};

static void open_ini(struct opened *o, const char *ini)
{
	char cerr[256];
	memset(o, 0, sizeof(*o));
	o->rc = config_parse_string(ini, "test.ini", &o->cfg, cerr,
				    sizeof(cerr));
	if (o->rc) {
		snprintf(o->err, sizeof(o->err), "config: %s", cerr);
		return;
	}
	o->rc = ssh_platform_ops.open(&o->cfg.sec[0], &o->p, o->err,
				      sizeof(o->err));
}

static void close_ini(struct opened *o)
{
	if (o->p)
		ssh_platform_ops.close(o->p);
	config_cleanup(&o->cfg);
}

static void test_open(void)
{
	struct opened o;
	struct platform_caps caps;

	open_ini(&o, "[ssh:alpha]\nhost = 127.0.0.1\n");
	CHECK_ERR(o.rc, 0);
	ssh_platform_ops.caps(o.p, &caps);
	CHECK(caps.n_destroy == 0 && !caps.confirm_by_list);
	close_ini(&o);

	open_ini(&o, "[ssh:beta]\nhost = 127.0.0.1\nport = 2222\n"
		     "teardown_command = true\n");
	CHECK_ERR(o.rc, 0);
	ssh_platform_ops.caps(o.p, &caps);
	CHECK(caps.n_destroy == 1 && !caps.confirm_by_list);
	CHECK_STR(caps.destroy[0].name, "teardown_command");
	close_ini(&o);

	/* names that cannot be directories */
	open_ini(&o, "[ssh:-rf]\nhost = 127.0.0.1\n");
	CHECK_ERR(o.rc, -EINVAL);
	CHECK(strstr(o.err, "ssh:-rf") != NULL);
	close_ini(&o);
	open_ini(&o, "[ssh:a b]\nhost = 127.0.0.1\n");
	CHECK_ERR(o.rc, -EINVAL);
	close_ini(&o);
	open_ini(&o, "[ssh:.hidden]\nhost = 127.0.0.1\n");
	CHECK_ERR(o.rc, -EINVAL);
	close_ini(&o);
	/* bad keys */
	open_ini(&o, "[ssh:a]\nhost = 127.0.0.1\nport = 0\n");
	CHECK_ERR(o.rc, -EINVAL);
	CHECK(strstr(o.err, "port") != NULL);
	close_ini(&o);
	open_ini(&o, "[ssh:a]\nhost = 127.0.0.1\nport = 70000\n");
	CHECK_ERR(o.rc, -EINVAL);
	close_ini(&o);
	open_ini(&o, "[ssh:a]\nhost = 127.0.0.1\nteardown_timeout = x\n");
	CHECK_ERR(o.rc, -EINVAL);
	close_ini(&o);
	open_ini(&o, "[ssh:a]\nhost = 127.0.0.1\nteardown_command =\n");
	CHECK_ERR(o.rc, -EINVAL);
	CHECK(strstr(o.err, "empty") != NULL);
	close_ini(&o);
}

static int destroy(struct opened *o, bool *sent)
{
	return ssh_platform_ops.destroy(o->p, o->cfg.sec[0].name, 0, sent,
					o->err, sizeof(o->err));
}

static void test_destroy(void)
{
	struct opened o;
	struct platform_caps caps;
	bool sent;
	char ini[1024];

	/* accepted: the summary travels in the verb's name */
	open_ini(&o, "[ssh:alpha]\nhost = 127.0.0.1\n"
		     "teardown_command = echo \"gone $RGTFS_INSTANCE "
		     "$RGTFS_HOST\"; echo oops >&2\n");
	CHECK_ERR(o.rc, 0);
	CHECK_ERR(destroy(&o, &sent), 0);
	CHECK(sent);
	ssh_platform_ops.caps(o.p, &caps);
	CHECK(strstr(caps.destroy[0].name, "exited 0") != NULL);
	CHECK(strstr(caps.destroy[0].name, "gone alpha 127.0.0.1") != NULL);
	CHECK(strstr(caps.destroy[0].name, "oops") != NULL);
	/* one line, escaped */
	CHECK(strchr(caps.destroy[0].name, '\n') == NULL);
	CHECK(strstr(caps.destroy[0].name, "\\n") != NULL);
	/* a wrong id or step is refused, surely not sent */
	CHECK_ERR(ssh_platform_ops.destroy(o.p, "beta", 0, &sent, o.err,
					   sizeof(o.err)), -EINVAL);
	CHECK(!sent);
	CHECK_ERR(ssh_platform_ops.destroy(o.p, "alpha", 1, &sent, o.err,
					   sizeof(o.err)), -EINVAL);
	CHECK(!sent);
	close_ini(&o);

	/* refused: exit status and output in err; it may have acted */
	open_ini(&o, "[ssh:alpha]\nhost = 127.0.0.1\n"
		     "teardown_command = echo no such box; exit 3\n");
	CHECK_ERR(destroy(&o, &sent), -EIO);
	CHECK(sent);
	CHECK(strstr(o.err, "exited 3") != NULL);
	CHECK(strstr(o.err, "no such box") != NULL);
	ssh_platform_ops.caps(o.p, &caps);
	CHECK_STR(caps.destroy[0].name, "teardown_command");
	close_ini(&o);

	/* the environment is built, not inherited */
	setenv("RGTFS_TEST_SECRET", "hunter2-very-secret", 1);
	open_ini(&o, "[ssh:alpha]\nhost = 127.0.0.1\n"
		     "teardown_command = env | grep -c hunter2; "
		     "test -n \"$PATH\" && test -z \"$RGTFS_TEST_SECRET\"\n");
	CHECK_ERR(destroy(&o, &sent), 0);
	if (o.err[0])
		fprintf(stderr, "env test: %s\n", o.err);
	ssh_platform_ops.caps(o.p, &caps);
	CHECK(strstr(caps.destroy[0].name, "output: 0") != NULL);
	close_ini(&o);
	unsetenv("RGTFS_TEST_SECRET");

	/* stdin is /dev/null: a command that reads it does not hang */
	open_ini(&o, "[ssh:alpha]\nhost = 127.0.0.1\n"
		     "teardown_command = cat; echo read-done\n");
	CHECK_ERR(destroy(&o, &sent), 0);
	close_ini(&o);

	/* a wall-clock bound kills the whole process group */
	snprintf(ini, sizeof(ini),
		 "[ssh:alpha]\nhost = 127.0.0.1\nteardown_timeout = 1\n"
		 "teardown_command = echo started; sleep 30 & sleep 30\n");
	open_ini(&o, ini);
	time_t t0 = time(NULL);
	CHECK_ERR(destroy(&o, &sent), -ETIMEDOUT);
	CHECK(time(NULL) - t0 < 10);
	CHECK(sent);
	CHECK(strstr(o.err, "killed") != NULL);
	CHECK(strstr(o.err, "started") != NULL);
	close_ini(&o);

	/* a flood of output is read, only its end kept */
	open_ini(&o, "[ssh:alpha]\nhost = 127.0.0.1\n"
		     "teardown_command = head -c 3000000 /dev/zero | tr '\\\\0' "
		     "x; echo; echo LAST-LINE\n");
	CHECK_ERR(destroy(&o, &sent), 0);
	ssh_platform_ops.caps(o.p, &caps);
	CHECK(strstr(caps.destroy[0].name, "LAST-LINE") != NULL);
	CHECK(strstr(caps.destroy[0].name, "(the end)") != NULL);
	close_ini(&o);

	/* killed by a signal */
	open_ini(&o, "[ssh:alpha]\nhost = 127.0.0.1\n"
		     "teardown_command = kill -9 $$\n");
	CHECK_ERR(destroy(&o, &sent), -EIO);
	CHECK(sent);
	CHECK(strstr(o.err, "signal 9") != NULL);
	close_ini(&o);
}

static char *load(const char *ini, char *err, size_t errlen)
{
	struct rgt_config cfg;
	char cerr[256];
	char *pw;

	if (config_parse_string(ini, "pw.ini", &cfg, cerr, sizeof(cerr))) {
		snprintf(err, errlen, "config: %s", cerr);
		return NULL;
	}
	pw = remote_password_load(&cfg.sec[0], err, errlen);
	config_cleanup(&cfg);
	return pw;
}

static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, data, strlen(data)) < 0)
			perror("write");
		fchmod(fd, mode);
		close(fd);
	}
}

static void test_password(void)
{
	char err[512], ini[1024], dir[] = "/tmp/rgt-pw-XXXXXX", path[512];
	char *pw;

	/* none configured: NULL and no complaint */
	pw = load("[ssh:a]\nhost = h\n", err, sizeof(err));
	CHECK(!pw && !err[0]);

	setenv("RGT_TEST_PW", "correct horse ", 1);
	pw = load("[ssh:a]\nhost = h\npassword_env = RGT_TEST_PW\n", err,
		  sizeof(err));
	CHECK_STR(pw, "correct horse ");	/* taken as it is */
	remote_password_free(pw);
	unsetenv("RGT_TEST_PW");
	pw = load("[ssh:a]\nhost = h\npassword_env = RGT_TEST_PW\n", err,
		  sizeof(err));
	CHECK(!pw && strstr(err, "RGT_TEST_PW") && strstr(err, "not set"));
	setenv("RGT_TEST_PW", "", 1);
	pw = load("[ssh:a]\nhost = h\npassword_env = RGT_TEST_PW\n", err,
		  sizeof(err));
	CHECK(!pw && strstr(err, "empty"));
	unsetenv("RGT_TEST_PW");

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/pw", dir);
	snprintf(ini, sizeof(ini), "[ssh:a]\nhost = h\npassword_file = %s\n",
		 path);
	write_file(path, "s3cret pass\n", 0600);
	pw = load(ini, err, sizeof(err));
	CHECK_STR(pw, "s3cret pass");
	remote_password_free(pw);
	write_file(path, "s3cret\r\n", 0400);
	pw = load(ini, err, sizeof(err));
	CHECK_STR(pw, "s3cret");
	remote_password_free(pw);
	/* readable by others: refused, and the message never holds it */
	write_file(path, "s3cret\n", 0644);
	pw = load(ini, err, sizeof(err));
	CHECK(!pw && strstr(err, "chmod 600") && !strstr(err, "s3cret"));
	write_file(path, "\n", 0600);
	pw = load(ini, err, sizeof(err));
	CHECK(!pw && strstr(err, "empty"));
	unlink(path);
	pw = load(ini, err, sizeof(err));
	CHECK(!pw && strstr(err, "cannot read"));
	/* a directory is not a password file */
	snprintf(ini, sizeof(ini), "[ssh:a]\nhost = h\npassword_file = %s\n",
		 dir);
	pw = load(ini, err, sizeof(err));
	CHECK(!pw && strstr(err, "not a regular file"));
	/* both: say so rather than guess */
	snprintf(ini, sizeof(ini), "[ssh:a]\nhost = h\npassword_file = %s\n"
		 "password_env = X\n", path);
	pw = load(ini, err, sizeof(err));
	CHECK(!pw && strstr(err, "not both"));
	/* never from the INI itself */
	pw = load("[ssh:a]\nhost = h\npassword = hunter2\n", err,
		  sizeof(err));
	CHECK(!pw && strstr(err, "config:"));
	rmdir(dir);
}

/*
 * A plain host's one instance: no control plane says its GPU or price, so
 * every fact is unknown (not calloc's "0 GPUs, $0/h"). Port 1 on loopback
 * refuses at once: no network, and the list answers all the same.
 */
static void test_facts(void)
{
	struct rgt_instance_list l;
	struct opened o;

	open_ini(&o, "[ssh:delta]\nhost = 127.0.0.1\nport = 1\n"
		     "probe_timeout = 2\n");
	CHECK_ERR(o.rc, 0);
	if (o.rc)
		return;
	CHECK_ERR(ssh_platform_ops.list(o.p, &l, o.err, sizeof(o.err)), 0);
	CHECK(l.n == 1);
	if (l.n == 1) {
		CHECK_STR(l.v[0].facts.gpu, "");
		CHECK(l.v[0].facts.gpu_count == -1);
		CHECK(l.v[0].facts.usd_per_hour < 0);
		CHECK(l.v[0].facts.started == 0);
	}
	rgt_instance_list_free(&l);
	close_ini(&o);
}

int main(void)
{
	test_password();
	test_banner();
	test_tail();
	test_open();
	test_destroy();
	test_facts();
	return CHECK_DONE();
}
