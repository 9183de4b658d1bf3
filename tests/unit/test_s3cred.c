/*
 * test_s3cred.c - cache/s3cred.c: the three sources (key files, the
 * environment, the AWS shared credentials file) and their order, profile
 * selection, and the errors for missing pieces, which must name the
 * variable, file or profile and never a value.
 */
#include "s3cred.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static char dir[] = "/tmp/test_s3cred.XXXXXX";

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void clear_env(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("MY_AK");
	unsetenv("MY_SK");
	unsetenv("MY_TK");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

/* Load with the INI @text ("" keys of a [cloud:b] section). */
static int load(const char *keys, struct s3_creds *c, char *err,
		size_t errlen)
{
	struct rgt_config cfg;
	char ini[4096], cerr[256];
	int rc;

	snprintf(ini, sizeof(ini),
		 "[cloud:b]\nendpoint = http://127.0.0.1:1\nregion = "
		 "us-east-1\nbucket = ckpts\n%s",
		 keys);
	rc = config_parse_string(ini, "test.ini", &cfg, cerr, sizeof(cerr));
	if (rc) {
		fprintf(stderr, "config: %s\n", cerr);
		exit(1);
	}
	rc = s3cred_load(config_find(&cfg, "cloud", "b"), c, err, errlen);
	config_cleanup(&cfg);
	return rc;
}

static void no_secret(const char *err)
{
	CHECK(strstr(err, "SECRETVALUE") == NULL);
	CHECK(strstr(err, "AKIDVALUE") == NULL);
	CHECK(strstr(err, "TOKENVALUE") == NULL);
}

static void test_env(void)
{
	struct s3_creds c;
	char err[512];

	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIDVALUE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SECRETVALUE", 1);
	CHECK_ERR(load("", &c, err, sizeof(err)), 0);
	CHECK_STR(c.access_key, "AKIDVALUE");
	CHECK_STR(c.secret_key, "SECRETVALUE");
	CHECK(c.session_token == NULL);
	CHECK(strstr(c.source, "AWS_ACCESS_KEY_ID") != NULL);
	s3cred_cleanup(&c);
	CHECK(c.access_key == NULL && c.secret_key == NULL);

	setenv("AWS_SESSION_TOKEN", "TOKENVALUE", 1);
	CHECK_ERR(load("", &c, err, sizeof(err)), 0);
	CHECK_STR(c.session_token, "TOKENVALUE");
	s3cred_cleanup(&c);

	/* one of the default pair missing: an error naming it */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_ERR(load("", &c, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "AWS_SECRET_ACCESS_KEY") != NULL);
	CHECK(strstr(err, "[cloud:b]") != NULL);
	no_secret(err);
	s3cred_cleanup(&c);

	/* named variables */
	clear_env();
	setenv("MY_AK", "AKIDVALUE", 1);
	setenv("MY_SK", "SECRETVALUE", 1);
	setenv("MY_TK", "TOKENVALUE", 1);
	setenv("AWS_ACCESS_KEY_ID", "other", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "other", 1);
	CHECK_ERR(load("access_key_env = MY_AK\nsecret_key_env = MY_SK\n"
		       "session_token_env = MY_TK\n",
		       &c, err, sizeof(err)),
		  0);
	CHECK_STR(c.access_key, "AKIDVALUE");
	CHECK_STR(c.secret_key, "SECRETVALUE");
	CHECK_STR(c.session_token, "TOKENVALUE");
	CHECK(strstr(c.source, "MY_AK") != NULL);
	s3cred_cleanup(&c);

	/* the default token never joins a pair the section names */
	setenv("AWS_SESSION_TOKEN", "TOKENVALUE", 1);
	CHECK_ERR(load("access_key_env = MY_AK\nsecret_key_env = MY_SK\n", &c,
		       err, sizeof(err)),
		  0);
	CHECK(c.session_token == NULL);
	s3cred_cleanup(&c);
	unsetenv("AWS_SESSION_TOKEN");

	/* named but unset: no fallback to the defaults */
	unsetenv("MY_SK");
	CHECK_ERR(load("access_key_env = MY_AK\nsecret_key_env = MY_SK\n", &c,
		       err, sizeof(err)),
		  -ENOENT);
	CHECK(strstr(err, "MY_SK") != NULL);
	no_secret(err);
	s3cred_cleanup(&c);
	setenv("MY_SK", "", 1);
	CHECK_ERR(load("access_key_env = MY_AK\nsecret_key_env = MY_SK\n", &c,
		       err, sizeof(err)),
		  -ENOENT);
	CHECK(strstr(err, "MY_SK") != NULL);
	s3cred_cleanup(&c);
	setenv("MY_SK", "SECRETVALUE", 1);
	unsetenv("MY_TK");
	CHECK_ERR(load("access_key_env = MY_AK\nsecret_key_env = MY_SK\n"
		       "session_token_env = MY_TK\n",
		       &c, err, sizeof(err)),
		  -ENOENT);
	CHECK(strstr(err, "MY_TK") != NULL);
	s3cred_cleanup(&c);
	clear_env();
}

static void test_files(void)
{
	char keys[1024], err[512];
	struct s3_creds c;

	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "envkey", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	write_file("ak", "  AKIDVALUE \t\nsecond line\n", 0600);
	write_file("sk", "SECRETVALUE", 0400);
	write_file("tk", "TOKENVALUE\r\n", 0600);
	snprintf(keys, sizeof(keys),
		 "access_key_file = %s/ak\nsecret_key_file = %s/sk\n"
		 "session_token_file = %s/tk\n",
		 dir, dir, dir);
	/* files win over the environment */
	CHECK_ERR(load(keys, &c, err, sizeof(err)), 0);
	CHECK_STR(c.access_key, "AKIDVALUE");
	CHECK_STR(c.secret_key, "SECRETVALUE");
	CHECK_STR(c.session_token, "TOKENVALUE");
	CHECK(strstr(c.source, "/ak") != NULL);
	s3cred_cleanup(&c);

	/* readable by others: refused, naming the file */
	write_file("sk", "SECRETVALUE\n", 0644);
	CHECK_ERR(load(keys, &c, err, sizeof(err)), -EACCES);
	CHECK(strstr(err, "/sk") != NULL && strstr(err, "chmod 600"));
	no_secret(err);
	s3cred_cleanup(&c);
	write_file("sk", "SECRETVALUE\n", 0660);
	CHECK_ERR(load(keys, &c, err, sizeof(err)), -EACCES);
	s3cred_cleanup(&c);

	write_file("sk", "\nSECRETVALUE\n", 0600);
	CHECK_ERR(load(keys, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "empty") != NULL);
	no_secret(err);
	s3cred_cleanup(&c);

	snprintf(keys, sizeof(keys),
		 "access_key_file = %s/ak\nsecret_key_file = %s/nope\n", dir,
		 dir);
	CHECK_ERR(load(keys, &c, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/nope") != NULL);
	s3cred_cleanup(&c);

	snprintf(keys, sizeof(keys), "access_key_file = %s/ak\n", dir);
	CHECK_ERR(load(keys, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "secret_key_file") != NULL);
	s3cred_cleanup(&c);

	snprintf(keys, sizeof(keys),
		 "access_key_file = %s\nsecret_key_file = %s/sk\n", dir, dir);
	CHECK_ERR(load(keys, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "regular") != NULL);
	s3cred_cleanup(&c);

	/* a FIFO with no writer: refused at once, not a mount that hangs */
	char fifo[600];
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	snprintf(keys, sizeof(keys),
		 "access_key_file = %s\nsecret_key_file = %s/sk\n", fifo, dir);
	CHECK_ERR(load(keys, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "regular") != NULL);
	s3cred_cleanup(&c);
	unlink(fifo);
	clear_env();
}

static void test_profile(void)
{
	char path[512], err[512], long_tok[400];
	struct s3_creds c;

	clear_env();
	snprintf(path, sizeof(path), "%s/credentials", dir);
	write_file("credentials",
		   "[default]\n"
		   "aws_access_key_id = AKIDDEFAULT\n"
		   "aws_secret_access_key = SECRETDEFAULT\n"
		   "\n"
		   "[work]\n"
		   "aws_access_key_id=AKIDVALUE\n"
		   "aws_secret_access_key=SECRETVALUE\n"
		   "aws_session_token=TOKENVALUE\n"
		   "[profile half]\n"
		   "aws_access_key_id = AKIDVALUE\n",
		   0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);

	CHECK_ERR(load("", &c, err, sizeof(err)), 0);
	CHECK_STR(c.access_key, "AKIDDEFAULT");
	CHECK_STR(c.secret_key, "SECRETDEFAULT");
	CHECK(c.session_token == NULL);
	CHECK(strstr(c.source, "default") != NULL);
	s3cred_cleanup(&c);

	setenv("AWS_PROFILE", "work", 1);
	CHECK_ERR(load("", &c, err, sizeof(err)), 0);
	CHECK_STR(c.access_key, "AKIDVALUE");
	CHECK_STR(c.session_token, "TOKENVALUE");
	s3cred_cleanup(&c);

	/* the section's profile beats AWS_PROFILE */
	CHECK_ERR(load("profile = default\n", &c, err, sizeof(err)), 0);
	CHECK_STR(c.access_key, "AKIDDEFAULT");
	s3cred_cleanup(&c);

	CHECK_ERR(load("profile = half\n", &c, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "aws_secret_access_key") != NULL);
	CHECK(strstr(err, "[half]") != NULL);
	no_secret(err);
	s3cred_cleanup(&c);

	CHECK_ERR(load("profile = nosuch\n", &c, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "nosuch") != NULL && strstr(err, path));
	s3cred_cleanup(&c);

	/* the environment pair wins over the file */
	setenv("AWS_ACCESS_KEY_ID", "envkey", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	CHECK_ERR(load("", &c, err, sizeof(err)), 0);
	CHECK_STR(c.access_key, "envkey");
	s3cred_cleanup(&c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");

	/* a line too long for inih (a session token) is taken whole, in
	 * its own profile only; never cut */
	memset(long_tok, 'T', sizeof(long_tok) - 1);
	long_tok[sizeof(long_tok) - 1] = '\0';
	long_tok[sizeof(long_tok) - 2] = 'E'; /* the end is kept */
	char text[2048];
	snprintf(text, sizeof(text),
		 "[other]\naws_session_token = X%s\n"
		 "[default]\naws_access_key_id = AKIDVALUE\n"
		 "aws_secret_access_key = SECRETVALUE\n"
		 "aws_session_token = %s  \n"
		 "[third]\naws_session_token = Y%s\n",
		 long_tok, long_tok, long_tok);
	write_file("credentials", text, 0600);
	CHECK_ERR(load("", &c, err, sizeof(err)), 0);
	CHECK_STR(c.session_token, long_tok);
	CHECK_STR(c.access_key, "AKIDVALUE");
	s3cred_cleanup(&c);
	CHECK_ERR(load("profile = other\n", &c, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "aws_access_key_id") != NULL);
	CHECK(strstr(err, "TTTT") == NULL);
	s3cred_cleanup(&c);

	/* past 16 KiB: refused, naming the line */
	FILE *f = fopen(path, "w");
	fputs("[default]\naws_access_key_id = AKIDVALUE\n"
	      "aws_secret_access_key = SECRETVALUE\naws_session_token = ",
	      f);
	for (int i = 0; i < 17000; i++)
		fputc('T', f);
	fputs("\n", f);
	fclose(f);
	CHECK_ERR(load("", &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, ":4:") != NULL && strstr(err, "longer than"));
	CHECK(strstr(err, "TTTT") == NULL);
	s3cred_cleanup(&c);

	/* no file at all: the message says what to set */
	snprintf(path, sizeof(path), "%s/none", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	CHECK_ERR(load("", &c, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "AWS_ACCESS_KEY_ID") != NULL);
	CHECK(strstr(err, path) != NULL);
	s3cred_cleanup(&c);

	/* HOME/.aws/credentials when the variable is unset */
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	snprintf(path, sizeof(path), "%s/.aws", dir);
	mkdir(path, 0700);
	write_file(".aws/credentials",
		   "[default]\naws_access_key_id=AKIDHOME\n"
		   "aws_secret_access_key=SECRETHOME\n",
		   0600);
	setenv("HOME", dir, 1);
	CHECK_ERR(load("", &c, err, sizeof(err)), 0);
	CHECK_STR(c.access_key, "AKIDHOME");
	s3cred_cleanup(&c);

	/* no section at all: defaults only */
	CHECK_ERR(s3cred_load(NULL, &c, err, sizeof(err)), 0);
	CHECK_STR(c.secret_key, "SECRETHOME");
	s3cred_cleanup(&c);
	s3cred_cleanup(NULL);
	clear_env();
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_env();
	test_files();
	test_profile();
	int rc = CHECK_DONE();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
