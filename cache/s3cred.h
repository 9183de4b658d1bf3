/*
 * s3cred.h - the key pair (and optional session token) for a [cloud:NAME]
 * section, found the way the AWS tools find it.
 *
 * In this order, the first that applies wins:
 *
 *  1. Files: access_key_file and secret_key_file (both, or it is an error),
 *     optional session_token_file. The first line of each, blanks trimmed.
 *     A file that group or others may read (or write) is refused, like
 *     OpenSSH refuses a private key: chmod 600 it. Not a regular file, empty,
 *     or over 64 KiB: refused.
 *  2. Environment: the variables named by access_key_env and secret_key_env
 *     (defaults AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the token from
 *     session_token_env (optional; AWS_SESSION_TOKEN goes with the default
 *     pair only, never with variables the section names). When the
 *     section names the variables itself, they must be set; with the
 *     defaults, both unset means "go on to 3", one of them unset is an
 *     error naming it.
 *  3. The AWS shared credentials file, $AWS_SHARED_CREDENTIALS_FILE or
 *     ~/.aws/credentials, profile from the section's `profile` key, else
 *     $AWS_PROFILE, else "default": aws_access_key_id,
 *     aws_secret_access_key, aws_session_token. Parsed with inih. Its mode
 *     is only warned about (the AWS CLI's own file, which the CLI does not
 *     check either). Lines longer than inih's buffer (INI_MAX_LINE, 200 on
 *     Debian; session tokens are longer) are read whole by s3cred itself,
 *     up to 16 KiB; a longer line is an error, never cut.
 *
 * Secrets: the values live only in the malloc'd strings of struct
 * s3_creds and are wiped with OPENSSL_cleanse() by s3cred_cleanup(). No
 * error message and no log line holds a value: messages name the variable,
 * the file, the profile.
 *
 * Threads: s3cred_load() reads the environment (getenv) and the
 * filesystem; call it while setting up, before threads change the
 * environment.
 */
#ifndef RGT_S3CRED_H
#define RGT_S3CRED_H

#include <stddef.h>

struct rgt_section;

struct s3_creds {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL: none */
	/* Where they came from, for messages: "environment
	 * (AWS_ACCESS_KEY_ID)", "files (PATH, PATH)", "profile P in FILE". */
	char source[512];
};

/*
 * Find the credentials for @sec (a [cloud:NAME] section; NULL: no section,
 * defaults only). 0, or -ENOENT (nothing found, or a named variable/file
 * missing), -EACCES (a key file others can read), -EINVAL (empty values,
 * an unterminated profile, too long a line), -ENOMEM; the reason in @err.
 * @out is to be released with s3cred_cleanup() in every case.
 */
int s3cred_load(const struct rgt_section *sec, struct s3_creds *out, char *err,
		size_t errlen);
void s3cred_cleanup(struct s3_creds *c);

#endif
