/*
 * test_xfer_util.c - the pure parts of the transport layer.
 *
 * xfer_shell_quote(): exact output for known inputs, all-or-nothing
 * behaviour at the buffer limit, and a round trip through /bin/sh for
 * hostile names (quotes, newlines, $, `, \, leading dash).
 *
 * xfer_known_hosts_check(): plain, hashed and [host]:port entries, a key
 * listed for another port, lines libssh2 cannot parse, @revoked, missing
 * and unreadable files. Needs no server: files in a mkdtemp() directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "xfer.h"

#include "check.h"


static void check_quote(const char *in, const char *want, int line)
{
	struct buf b;
	int rc;

	buf_init(&b, 1024);
	rc = xfer_shell_quote(&b, in);
	if (rc || !b.data || strcmp(b.data, want)) {
		fprintf(
		    stderr, "%s:%d: quote(\"%s\") = %d \"%s\", want \"%s\"\n",
		    __FILE__, line, in, rc, b.data ? b.data : "(null)", want);
		check_failed++;
	}
	buf_cleanup(&b);
}

/* Run `printf %s QUOTED` through /bin/sh and compare with the original. */
static void check_roundtrip(const char *s, int line)
{
	struct buf cmd, got;
	char tmp[512];
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	buf_init(&cmd, 4096);
	buf_init(&got, 4096);
	if (buf_append(&cmd, "printf %s ", 10) || xfer_shell_quote(&cmd, s) ||
	    pipe(fds)) {
		fprintf(stderr, "%s:%d: setup failed\n", __FILE__, line);
		check_failed++;
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", cmd.data, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], tmp, sizeof(tmp))) > 0)
		buf_append(&got, tmp, n);
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) || got.len != strlen(s) ||
	    (got.len && memcmp(got.data, s, got.len))) {
		fprintf(stderr, "%s:%d: round trip of \"%s\" gave \"%s\"\n",
			__FILE__, line, s, got.data ? got.data : "");
		check_failed++;
	}
out:
	buf_cleanup(&cmd);
	buf_cleanup(&got);
}

/* Three ed25519 public key blobs (base64, as in a .pub file). */
#define KEY_A                                                                  \
	"AAAAC3NzaC1lZDI1NTE5AAAAIFMqobxFOclPUrvcWFHshKddlf7J2Ou84qm1s39SnVlx"
#define KEY_B                                                                  \
	"AAAAC3NzaC1lZDI1NTE5AAAAIB7GlnwbYrMz1QjXHK23A3N6yuTd/kJcgNTb58YkkDxk"
#define KEY_C                                                                  \
	"AAAAC3NzaC1lZDI1NTE5AAAAIDKDd2iw1mHbvPTmnz1eN9YqvmsW4MXxmYdVfiCRlKUc"

struct blob {
	unsigned char b[128];
	size_t len;
};

static struct blob unb64(const char *s)
{
	struct blob k;
	size_t n = strlen(s);
	int len = EVP_DecodeBlock(k.b, (const unsigned char *)s, (int)n);

	/* EVP_DecodeBlock counts padding bytes as data */
	while (n && s[n - 1] == '=') {
		n--;
		len--;
	}
	k.len = len < 0 ? 0 : (size_t)len;
	return k;
}

/* OpenSSH "|1|salt|hmac" form of @name with a fixed salt. */
static void hashed(const char *name, char *out, size_t outlen)
{
	unsigned char salt[20], mac[20];
	unsigned char bs[32], bm[32];
	unsigned int mlen = 0;

	for (int i = 0; i < 20; i++)
		salt[i] = (unsigned char)(i * 7 + 1);
	HMAC(EVP_sha1(), salt, sizeof(salt), (const unsigned char *)name,
	     strlen(name), mac, &mlen);
	EVP_EncodeBlock(bs, salt, sizeof(salt));
	EVP_EncodeBlock(bm, mac, (int)mlen);
	snprintf(out, outlen, "|1|%s|%s", bs, bm);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_known_hosts(void)
{
	char dir[] = "/tmp/rgt-test-kh-XXXXXX";
	char file[64], other[64], hname[128], text[8192];
	struct blob a = unb64(KEY_A), b = unb64(KEY_B), c = unb64(KEY_C);
	const char *ed = "ssh-ed25519";
	char longline[5000];

	CHECK(a.len == 51 && b.len == 51 && c.len == 51);
	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(file, sizeof(file), "%s/known_hosts", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	hashed("[hashed.example]:2022", hname, sizeof(hname));
	memset(longline, 'x', sizeof(longline) - 2);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	snprintf(text, sizeof(text),
		 "# comment\n"
		 "\n"
		 "@cert-authority *.example "
		 "ssh-ed25519 " KEY_C "\n"
		 "garbage that libssh2 cannot parse\n"
		 "%s"
		 "sk.example sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1\n"
		 "[h.example]:2222,alias.example ssh-ed25519 " KEY_A " c\n"
		 "h.example ssh-ed25519 " KEY_B "\n"
		 "%s ssh-ed25519 " KEY_A "\n",
		 longline, hname);
	write_file(file, text);

	CHECK(xfer_known_hosts_check(file, "h.example", 2222, ed, a.b, a.len) ==
	      0);
	CHECK(xfer_known_hosts_check(file, "h.example", 2222, ed, b.b, b.len) ==
	      -EACCES);
	/* port 22 means the plain name */
	CHECK(xfer_known_hosts_check(file, "h.example", 22, ed, b.b, b.len) ==
	      0);
	CHECK(xfer_known_hosts_check(file, "h.example", 22, ed, a.b, a.len) ==
	      -EACCES);
	/* a plain entry says nothing about another port (proxy hosts) */
	CHECK(xfer_known_hosts_check(file, "h.example", 2200, ed, a.b, a.len) ==
	      -ENOENT);
	CHECK(xfer_known_hosts_check(file, "alias.example", 22, ed, a.b,
				     a.len) == 0);
	CHECK(xfer_known_hosts_check(file, "hashed.example", 2022, ed, a.b,
				     a.len) == 0);
	CHECK(xfer_known_hosts_check(file, "hashed.example", 2022, ed, b.b,
				     b.len) == -EACCES);
	CHECK(xfer_known_hosts_check(file, "hashed.example", 22, ed, a.b,
				     a.len) == -ENOENT);
	CHECK(xfer_known_hosts_check(file, "nobody.example", 22, ed, a.b,
				     a.len) == -ENOENT);
	CHECK(xfer_known_hosts_check(file, "h.example", 2222, "ssh-foo", a.b,
				     a.len) == -EINVAL);

	/* a revoked key is refused wherever it appears */
	write_file(other, "[h.example]:2222 ssh-ed25519 " KEY_C "\n"
			  "@revoked * ssh-ed25519 " KEY_C "\n");
	CHECK(xfer_known_hosts_check(other, "h.example", 2222, ed, c.b,
				     c.len) == -EACCES);
	unlink(other);

	CHECK(xfer_known_hosts_check(other, "h.example", 2222, ed, a.b,
				     a.len) == -ENOENT);
	CHECK(xfer_known_hosts_check(dir, "h.example", 2222, ed, a.b, a.len) ==
	      -EIO);
	unlink(file);
	rmdir(dir);
}

int main(void)
{
	static const char *const hostile[] = {
	    "plain",
	    "with space",
	    "it's",
	    "''",
	    "a\nb\n",
	    "$HOME",
	    "`id`",
	    "$(id)",
	    "back\\slash",
	    "-rf",
	    "*",
	    "tab\there",
	    "semi;colon|pipe&amp",
	    "\"dq\"",
	    "'\\''",
	    "\xc3\xa9t\xc3\xa9",
	    "",
	};
	struct buf b;

	check_quote("", "''", __LINE__);
	check_quote("abc", "'abc'", __LINE__);
	check_quote("a'b", "'a'\\''b'", __LINE__);
	check_quote("'", "''\\'''", __LINE__);
	check_quote("a\nb", "'a\nb'", __LINE__);
	check_quote("$x `y` \\z", "'$x `y` \\z'", __LINE__);

	/* appends to what is there */
	buf_init(&b, 64);
	CHECK(buf_append(&b, "cat ", 4) == 0);
	CHECK(xfer_shell_quote(&b, "f") == 0);
	CHECK(b.data && strcmp(b.data, "cat 'f'") == 0);
	buf_cleanup(&b);

	/* exactly at the limit fits; one byte more fails and changes nothing */
	buf_init(&b, 5);
	CHECK(xfer_shell_quote(&b, "abc") == 0);
	CHECK(b.len == 5);
	buf_cleanup(&b);
	buf_init(&b, 8);
	CHECK(buf_append(&b, "x", 1) == 0);
	CHECK(xfer_shell_quote(&b, "a'b") == -EFBIG); /* needs 8 more */
	CHECK(b.len == 1 && strcmp(b.data, "x") == 0);
	buf_cleanup(&b);

	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		check_roundtrip(hostile[i], __LINE__);

	test_known_hosts();

	return CHECK_DONE();
}
