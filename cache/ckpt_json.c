/*
 * ckpt_json.c - load check for .json files (configs, trainer state,
 * tokenizers, safetensors indexes): the text parses.
 *
 * DESIGN
 *	The file is read whole, capped at 256 MiB (CKPT_TOO_LARGE past it),
 *	and parsed with jansson: any JSON value at the top, integers read as
 *	reals (Python's json has no integer limit, jansson's is 64 bits),
 *	escaped NULs allowed, duplicate keys allowed (Python keeps the last).
 *
 *	Python's json.dump writes NaN, Infinity and -Infinity for non-finite
 *	floats (a diverged loss in trainer_state.json), and json.load reads
 *	them back; jansson refuses them. Before parsing, those three tokens
 *	are replaced in place by a zero of the same length where they stand
 *	as a value: outside strings, after '[', ':', ',' or whitespace. Any
 *	other use still fails to parse, so nothing Python refuses gets in.
 *
 *	A parse error at the end of the text is CKPT_TRUNCATED, anywhere
 *	else CKPT_BAD_HEADER, with the byte offset, line and column.
 */
#include "ckpt_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define JSON_FILE_MAX (256ULL << 20)

static int starts(const char *p, const char *end, const char *w)
{
	size_t n = strlen(w);

	return (size_t)(end - p) >= n && !memcmp(p, w, n);
}

/* Turn Python's non-finite float tokens into zeros; see DESIGN. */
static void neuter_nonfinite(char *s, size_t len)
{
	static const char *const toks[] = { "NaN", "Infinity", "-Infinity" };
	char *p = s, *end = s + len, prev = ' ';
	int in_str = 0;
	size_t i, n, neg;

	for (; p < end; prev = *p++) {
		if (in_str) {
			if (*p == '\\' && p + 1 < end)
				prev = *p++;
			else if (*p == '"')
				in_str = 0;
			continue;
		}
		if (*p == '"') {
			in_str = 1;
			continue;
		}
		if (!strchr("[:, \t\r\n", prev) || !prev)
			continue;
		for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
			if (!starts(p, end, toks[i]))
				continue;
			n = strlen(toks[i]);
			/* "NaN" -> "0  ", "-Infinity" -> "-0       " */
			neg = *toks[i] == '-';
			memset(p + neg, ' ', n - neg);
			p[neg] = '0';
			p += n - 1;
			break;
		}
	}
}

static enum ckpt_verdict json_verify(struct ckpt_ctx *c)
{
	uint64_t size = c->r->size;
	enum ckpt_verdict vd;
	json_error_t err;
	json_t *root;
	char *text;

	if (!size)
		return ckpt_fail(c, CKPT_TRUNCATED, "empty file");
	if (size > JSON_FILE_MAX)
		return ckpt_fail(c, CKPT_TOO_LARGE,
				 "%llu bytes, over the %llu-byte limit for "
				 "JSON", (unsigned long long)size,
				 JSON_FILE_MAX);
	text = malloc(size + 1);
	if (!text)
		return ckpt_fail(c, CKPT_IO_ERROR, "no memory for %llu bytes",
				 (unsigned long long)size);
	vd = ckpt_read(c, text, size, 0);
	if (vd)
		goto out_free_text;
	text[size] = '\0';
	neuter_nonfinite(text, size);
	root = json_loadb(text, size,
			  JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL |
				  JSON_ALLOW_NUL, &err);
	if (root) {
		json_decref(root);
		vd = ckpt_ok(c, "%llu bytes of JSON",
			     (unsigned long long)size);
	} else if (json_error_code(&err) == json_error_premature_end_of_input ||
		   (uint64_t)err.position >= size) {
		vd = ckpt_fail(c, CKPT_TRUNCATED,
			       "JSON ends early at byte %llu: %s",
			       (unsigned long long)size, err.text);
	} else {
		vd = ckpt_fail(c, CKPT_BAD_HEADER,
			       "not JSON at byte %llu (line %d, column %d): "
			       "%s", (unsigned long long)err.position,
			       err.line, err.column, err.text);
	}
out_free_text:
	free(text);
	return vd;
}

const struct ckpt_ops ckpt_json_ops = {
	.name = "json",
	.verify = json_verify,
};
