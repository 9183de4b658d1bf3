/*
 * restapi.c - helpers shared by the JSON REST adapters (see restapi.h).
 *
 * DESIGN
 *
 * - Everything here treats its input as hostile: hosts are checked
 *   character by character because they end up in a paste-able ssh command
 *   line, messages are cut to one line on a UTF-8 boundary, and secret
 *   fields are dropped by name (and string values that look like a URL
 *   carrying a token are dropped too, since Lambda's jupyter_url does).
 * - These are the same rules vastai.c applies; the code was lifted from
 *   there so that every adapter scrubs and checks the same way.
 * - The fleet view's facts are read here for the same reason: one rule
 *   for every platform that a value of the wrong type, a negative or
 *   non-finite rate, or a time without a zone is "unknown", never 0.
 */
#define _GNU_SOURCE /* asprintf, strcasestr */
#include "restapi.h"
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int restapi_ca_file(const char *kind, const struct rgt_section *sec,
		    char **out, char *err, size_t errlen)
{
	const char *v = config_get(sec, "ca_file");

	*out = NULL;
	if (!v || !*v)
		return 0;
	if (access(v, R_OK)) {
		int e = errno;
		snprintf(err, errlen, "%s: ca_file %s: %s", kind, v,
			 strerror(e));
		return -EINVAL;
	}
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

int restapi_timeout(const char *kind, const struct rgt_section *sec,
		    long dflt_ms, long *ms, char *err, size_t errlen)
{
	const char *v = config_get(sec, "api_timeout");
	char *end;
	double s;

	*ms = dflt_ms;
	if (!v)
		return 0;
	errno = 0;
	s = strtod(v, &end);
	while (end != v && isspace((unsigned char)*end))
		end++;
	if (end == v || *end || errno || !isfinite(s) || s <= 0 || s > 600) {
		snprintf(err, errlen,
			 "%s: api_timeout must be a number of seconds between "
			 "0 and 600",
			 kind);
		return -EINVAL;
	}
	*ms = (long)(s * 1000 + 0.5);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

const char *restapi_ssh_user(const struct rgt_section *sec,
			     const char *platform_default)
{
	const char *u = config_get(sec, "ssh_user");

	if (!u || !u[0])
		u = config_get(sec, "user");
	return u && u[0] ? u : platform_default;
}

static bool loopback_host(const char *h)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!strcasecmp(h, "localhost"))
		return true;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

int restapi_origin(const char *kind, const char *url, const char *dflt,
		   char **origin, char *err, size_t errlen)
{
	char host[RGT_HOST_MAX];
	const char *auth, *end, *hs, *he, *port = NULL;
	bool plain;
	size_t sl;

	*origin = NULL;
	if (!url || !url[0])
		url = dflt;
	if (!strncasecmp(url, "https://", 8)) {
		plain = false;
		sl = 5;
	} else if (!strncasecmp(url, "http://", 7)) {
		plain = true;
		sl = 4;
	} else {
		snprintf(err, errlen, "%s: api_url must start with https://",
			 kind);
		return -EINVAL;
	}
	auth = url + sl + 3;
	end = auth + strcspn(auth, "/?#");
	if (*end == '?' || *end == '#' || (*end == '/' && end[1])) {
		snprintf(err, errlen,
			 "%s: api_url takes a scheme, a host and a port only "
			 "(rgtfs adds the API's path itself)",
			 kind);
		return -EINVAL;
	}
	for (const char *c = auth; c < end; c++) {
		if (*c == '@') {
			snprintf(err, errlen,
				 "%s: api_url must not contain user:password@",
				 kind);
			return -EINVAL;
		}
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
			snprintf(err, errlen,
				 "%s: api_url has a space or an unexpected "
				 "character in its host",
				 kind);
			return -EINVAL;
		}
	}
	if (*auth == '[') {
		hs = auth + 1;
		he = memchr(hs, ']', end - hs);
		if (he && he + 1 < end) {
			if (he[1] != ':')
				he = NULL;
			else
				port = he + 2;
		}
	} else {
		hs = auth;
		he = memchr(hs, ':', end - hs);
		if (he)
			port = he + 1;
		else
			he = end;
		if (port && memchr(port, ':', end - port))
			he = NULL; /* an IPv6 literal needs [] */
	}
	if (!he || he == hs || (size_t)(he - hs) >= sizeof(host)) {
		snprintf(err, errlen, "%s: api_url has no valid host", kind);
		return -EINVAL;
	}
	memcpy(host, hs, he - hs);
	host[he - hs] = '\0';
	if (port) {
		size_t pl = end - port;
		long pv = pl && pl <= 5 && strspn(port, "0123456789") >= pl
			      ? strtol(port, NULL, 10)
			      : 0;

		if (pv < 1 || pv > 65535) {
			snprintf(err, errlen, "%s: api_url has an invalid port",
				 kind);
			return -EINVAL;
		}
	}
	if (plain && !loopback_host(host)) {
		snprintf(err, errlen,
			 "%s: api_url must be https (http would send the API "
			 "key in clear text; it is allowed only for loopback "
			 "hosts)",
			 kind);
		return -EINVAL;
	}
	if (asprintf(origin, "%s://%.*s", plain ? "http" : "https",
		     (int)(end - auth), auth) < 0) {
		*origin = NULL;
		snprintf(err, errlen, "%s: out of memory", kind);
		return -ENOMEM;
	}
	return 0;
}

char *restapi_one_line(const char *s, size_t n, size_t cap)
{
	size_t a = 0, b, i;
	char *o;

	if (!s)
		n = 0;
	while (a < n && ((unsigned char)s[a] <= 0x20 || s[a] == 0x7f))
		a++;
	b = n;
	while (b > a && ((unsigned char)s[b - 1] <= 0x20 || s[b - 1] == 0x7f))
		b--;
	if (b - a > cap) {
		b = a + cap;
		while (b > a && ((unsigned char)s[b] & 0xc0) == 0x80)
			b--;
	}
	o = malloc(b - a + 1);
	if (!o)
		return NULL;
	for (i = 0; i < b - a; i++) {
		unsigned char c = s[a + i];

		o[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	o[i] = '\0';
	return o;
}

void restapi_mask_key(char *s, const char *key)
{
	size_t kl = key ? strlen(key) : 0;
	char *p;

	if (!s || kl < 4)
		return;
	while ((p = strstr(s, key)))
		memset(p, '*', kl);
}

bool restapi_json_host(json_t *v, char out[RGT_HOST_MAX])
{
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (!n || n >= RGT_HOST_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-_:", s[i]))
			return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/*
 * Field names whose values can carry secrets. Matched case-insensitively:
 * the exact names in the first list, any name containing one of the second.
 */
static bool secret_field(const char *k)
{
	static const char *const exact[] = {
	    "onstart",	  "onstart_cmd", "extra_env", "env",	 "image_args",
	    "args",	  "args_str",	 "jupyter_url", "startupScript",
	    "userData",	  "user_data",	 "scriptId",
	};
	static const char *const part[] = {
	    "token",   "secret", "passw",      "passphrase",
	    "api_key", "apikey", "access_key", "credential",
	    "private", "auth",	 "cookie",     "login",
	};

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcasecmp(k, exact[i]))
			return true;
	for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++)
		if (strcasestr(k, part[i]))
			return true;
	return false;
}

/* A string value that carries a credential in a query: "...?token=..." */
static bool secret_value(json_t *v)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	return s && (strcasestr(s, "token=") || strcasestr(s, "key=") ||
		     strcasestr(s, "password=") || strcasestr(s, "secret="));
}

void restapi_scrub(json_t *v)
{
	if (json_is_object(v)) {
		void *it = json_object_iter(v);

		while (it) {
			const char *k = json_object_iter_key(it);
			json_t *x = json_object_iter_value(it);
			void *next = json_object_iter_next(v, it);

			if (secret_field(k) || secret_value(x))
				json_object_del(v, k);
			else
				restapi_scrub(x);
			it = next;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v);) {
			json_t *x = json_array_get(v, i);

			if (secret_value(x)) {
				json_array_remove(v, i);
				continue;
			}
			restapi_scrub(x);
			i++;
		}
	}
}

char *restapi_info_json(json_t *inst, const char *platform,
			const struct rgt_instance *ri)
{
	json_t *copy, *meta, *eps;
	char *s = NULL, *t;
	size_t n;

	copy = json_deep_copy(inst);
	if (!copy)
		return NULL;
	restapi_scrub(copy);
	eps = json_array();
	meta = json_pack("{s:s, s:s, s:s, s:o}", "platform", platform, "state",
			 rgt_state_name(ri->state), "ssh_user",
			 ri->n_ep ? ri->ep[0].user : "", "endpoints", eps);
	if (!meta)
		goto out_copy;
	for (int i = 0; i < ri->n_ep; i++)
		if (json_array_append_new(
			eps, json_pack("{s:s, s:s, s:i, s:s}", "kind", "direct",
				       "host", ri->ep[i].host, "port",
				       ri->ep[i].port, "user", ri->ep[i].user))) {
			json_decref(meta);
			goto out_copy;
		}
	/* Replaces any "rgtfs" key the platform sent; releases meta. */
	if (json_object_set_new(copy, "rgtfs", meta))
		goto out_copy;
	s = json_dumps(copy, JSON_INDENT(2) | JSON_SORT_KEYS |
				 JSON_REAL_PRECISION(15));
	if (!s)
		goto out_copy;
	n = strlen(s);
	t = realloc(s, n + 2);
	if (!t) {
		free(s);
		s = NULL;
		goto out_copy;
	}
	s = t;
	s[n] = '\n';
	s[n + 1] = '\0';
out_copy:
	json_decref(copy);
	return s;
}

int restapi_bad_json(const char *vendor, const char *body, size_t len,
		     const json_error_t *je, char *err, size_t errlen)
{
	size_t i = 0;

	while (body && i < len && isspace((unsigned char)body[i]))
		i++;
	if (!body || i == len)
		snprintf(err, errlen, "%s: empty response", vendor);
	else if (body[i] == '<')
		snprintf(err, errlen,
			 "%s: response is not JSON (an HTML page?) at line %d "
			 "col %d",
			 vendor, je->line, je->column);
	else if ((size_t)je->position >= len)
		snprintf(err, errlen,
			 "%s: response is not valid JSON (truncated?) at line "
			 "%d col %d",
			 vendor, je->line, je->column);
	else
		snprintf(err, errlen,
			 "%s: response is not valid JSON at line %d col %d",
			 vendor, je->line, je->column);
	return -EBADMSG;
}

char *restapi_base64(const void *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
	size_t i;

	if (!o)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = s[i] << 16 | s[i + 1] << 8 | s[i + 2];

		*q++ = tab[v >> 18];
		*q++ = tab[(v >> 12) & 63];
		*q++ = tab[(v >> 6) & 63];
		*q++ = tab[v & 63];
	}
	if (i < n) {
		unsigned v = s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0);

		*q++ = tab[v >> 18];
		*q++ = tab[(v >> 12) & 63];
		*q++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*q++ = '=';
	}
	*q = '\0';
	return o;
}

char *restapi_urlencode(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(3 * n + 1), *q = o;

	if (!o)
		return NULL;
	for (; *s; s++) {
		unsigned char c = *s;

		if (isalnum(c) || strchr("-._~", c)) {
			*q++ = (char)c;
		} else {
			snprintf(q, 4, "%%%02X", c);
			q += 3;
		}
	}
	*q = '\0';
	return o;
}

/* ---- facts for the fleet view ---------------------------------------- */

bool restapi_facts_gpu(struct rgt_facts *f, json_t *v)
{
	if (!json_is_string(v))
		return false;
	rgt_facts_set_gpu(f, json_string_value(v), json_string_length(v));
	return f->gpu[0] != '\0';
}

int restapi_json_count(json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > INT_MAX)
		return -1;
	return (int)json_integer_value(v);
}

/*
 * A decimal number filling all of @s (@n bytes), else -1. strtod alone
 * would also take leading blanks, "inf", "nan" and hex floats, so the
 * characters are checked first.
 */
static double decimal_string(const char *s, size_t n)
{
	bool digit = false;
	char *end;
	double d;

	if (!n || strlen(s) != n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (isdigit((unsigned char)s[i]))
			digit = true;
		else if (!strchr(".eE+-", s[i]))
			return -1;
	}
	if (!digit)
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (errno || end != s + n)
		return -1;
	return d;
}

double restapi_json_rate(json_t *v, bool string_ok)
{
	double d;

	if (json_is_integer(v) || json_is_real(v))
		d = json_number_value(v);
	else if (string_ok && json_is_string(v))
		d = decimal_string(json_string_value(v), json_string_length(v));
	else
		return -1;
	if (!isfinite(d) || d < 0)
		return -1;
	return d == 0 ? 0.0 : d;	/* never "-0" */
}

/* 9999-12-31T23:59:59Z: past it a time is not a date a platform meant. */
#define EPOCH_MAX 253402300799LL

int64_t restapi_json_epoch(json_t *v)
{
	double d;

	if (!json_is_integer(v) && !json_is_real(v))
		return 0;
	d = json_number_value(v);
	/* checked before the cast: a double past int64 is undefined */
	if (!isfinite(d) || d < 1 || d > (double)EPOCH_MAX)
		return 0;
	return (int64_t)d;
}

/* @n decimal digits at @s into *@out. */
static bool fixed_digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (y >= 1). */
static int64_t days_from_civil(int y, int m, int d)
{
	int era, yoe, doy, doe;

	y -= m <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t)era * 146097 + doe - 719468;
}

static int month_days(int y, int m)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : mdays[m - 1];
}

int64_t restapi_json_rfc3339(json_t *v)
{
	const char *s;
	size_t n, i;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t t;

	if (!json_is_string(v))
		return 0;
	s = json_string_value(v);
	n = json_string_length(v);
	/* YYYY-MM-DDTHH:MM:SS is 19 bytes; the zone comes after. */
	if (n < 20 || strlen(s) != n)
		return 0;
	if (!fixed_digits(s, 4, &y) || s[4] != '-' ||
	    !fixed_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !fixed_digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !fixed_digits(s + 11, 2, &h) || s[13] != ':' ||
	    !fixed_digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !fixed_digits(s + 17, 2, &sec))
		return 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > month_days(y, mo) || h > 23 || mi > 59 || sec > 60)
		return 0;
	i = 19;
	if (s[i] == '.') {
		size_t f = ++i;

		while (i < n && isdigit((unsigned char)s[i]))
			i++;
		if (i == f)
			return 0;
	}
	if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-') &&
		   fixed_digits(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
		   fixed_digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59) {
		sign = s[i] == '+' ? 1 : -1;
		i += 6;
	}
	if (i != n)
		return 0;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	return t >= 1 && t <= EPOCH_MAX ? t : 0;
}

void restapi_instance_cleanup(struct rgt_instance *ri)
{
	free(ri->status_msg);
	free(ri->info_json);
	memset(ri, 0, sizeof(*ri));
}

struct order {
	struct rgt_instance *ri;
	size_t pos; /* position in the reply: the first of equals wins */
};

static int order_cmp(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	int c = strcmp(x->ri->id, y->ri->id);

	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

long restapi_sort_unique(struct rgt_instance_list *l)
{
	struct order *o;
	struct rgt_instance *v;
	size_t i, n = 0;

	if (l->n < 2)
		return 0;
	o = malloc(l->n * sizeof(*o));
	v = malloc(l->n * sizeof(*v));
	if (!o || !v) {
		free(o);
		free(v);
		return -ENOMEM;
	}
	for (i = 0; i < l->n; i++)
		o[i] = (struct order){&l->v[i], i};
	qsort(o, l->n, sizeof(*o), order_cmp);
	for (i = 0; i < l->n; i++) {
		if (n && !strcmp(v[n - 1].id, o[i].ri->id))
			restapi_instance_cleanup(o[i].ri);
		else
			v[n++] = *o[i].ri;
	}
	free(o);
	free(l->v);
	l->v = v;
	i = l->n - n;
	l->n = n;
	return (long)i;
}
