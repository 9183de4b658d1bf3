/*
 * xfer.c - transport helpers shared by every backend, free of any library.
 *
 * DESIGN
 *	Only pure code lives here, so the unit tests can link it without a
 *	server. The backends themselves are in xfer_<name>.c.
 *
 *	xfer_shell_quote() is how the SSH backend builds remote commands from
 *	names that come from users and remote listings: the whole string goes
 *	between single quotes, and each embedded single quote becomes '\''.
 *	Inside '...' a POSIX shell gives no byte a special meaning (newlines,
 *	$, `, \, * included), so this is the one quoting that needs no table
 *	of dangerous characters. Rejected: backslash-escaping each special
 *	character (easy to get wrong for newlines and multibyte text) and
 *	double quotes ($ and ` still expand).
 */
#include "xfer.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/*
 * Append the quoted form of @s to @out. All or nothing: on failure (-EFBIG
 * past the buffer's limit, -ENOMEM) @out holds what it held before.
 */
int xfer_shell_quote(struct buf *out, const char *s)
{
	size_t old = out->len;
	size_t need = 2;
	const char *p;
	int rc = 0;

	for (p = s; *p; p++)
		need += *p == '\'' ? 4 : 1;
	if (need > out->max || out->len > out->max - need)
		return -EFBIG;

	rc = buf_append(out, "'", 1);
	for (p = s; !rc && *p;) {
		size_t n = strcspn(p, "'");

		rc = buf_append(out, p, n);
		p += n;
		if (!rc && *p == '\'') {
			/* close the quote, an escaped quote, reopen */
			rc = buf_append(out, "'\\''", 4);
			p++;
		}
	}
	if (!rc)
		rc = buf_append(out, "'", 1);
	if (rc) {
		out->len = old;
		if (out->data)
			out->data[old] = '\0';
	}
	return rc;
}

void xfer_key_fingerprint(const unsigned char *key, size_t len, char *out,
			  size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char b64[64];

	EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL);
	int n = EVP_EncodeBlock(b64, md, (int)mdlen);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	b64[n] = '\0';
	snprintf(out, outlen, "SHA256:%s", b64);
}
