/*
 * restapi.h - pieces shared by the JSON REST adapters (lambda.c,
 * paperspace.c, runpod.c, autodl.c, vastai.c): api_url and api_timeout checks, one-line and masked
 * messages, hostile-JSON helpers (hosts, secret scrubbing, info.json),
 * base64 and percent-encoding.
 *
 * All functions are pure and reentrant: no I/O, no globals.
 * autodl.c and vastai.c keep their own secret-field lists (they name each
 * platform's fields), and vastai.c its own id order (numeric ids by
 * length first).
 */
#ifndef RGT_RESTAPI_H
#define RGT_RESTAPI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

struct rgt_section;

/*
 * Check @url (or @dflt when @url is NULL or "") and reduce it to
 * "scheme://authority" in malloc'd *@origin. Only a scheme, a host and a
 * port are accepted; http:// only for loopback hosts. @kind names the
 * section in messages. 0, -EINVAL or -ENOMEM.
 */
int restapi_origin(const char *kind, const char *url, const char *dflt,
		   char **origin, char *err, size_t errlen);

/*
 * ca_file = PATH: a CA bundle for an API behind a private CA, checked
 * readable now so a typo is a mount-time error. *@out malloc'd, or NULL
 * when the section names none (the system's CAs). It replaces the system
 * bundle for this API's requests only; verification stays on either way.
 */
int restapi_ca_file(const char *kind, const struct rgt_section *sec,
		    char **out, char *err, size_t errlen);

/* api_timeout = SECONDS (0 < s <= 600) into *@ms, else @dflt_ms. */
int restapi_timeout(const char *kind, const struct rgt_section *sec,
		    long dflt_ms, long *ms, char *err, size_t errlen);

/*
 * The login an endpoint of this section wants: the section's explicit
 * ssh_user (or user) when it says one, else @platform_default (the login
 * of the platform's stock images). Borrowed.
 */
const char *restapi_ssh_user(const struct rgt_section *sec,
			     const char *platform_default);

/* @s (length @n) as one line of at most @cap bytes; malloc'd or NULL. */
char *restapi_one_line(const char *s, size_t n, size_t cap);

/* Overwrite every occurrence of @key (4+ bytes) in @s with '*'. */
void restapi_mask_key(char *s, const char *key);

/* A host name or IP literal from @v (trimmed, safe for a command line). */
bool restapi_json_host(json_t *v, char out[RGT_HOST_MAX]);

/* Drop every field of @v (recursively) that can carry a secret. */
void restapi_scrub(json_t *v);

/*
 * info.json for @ri: a scrubbed copy of @inst plus an "rgtfs" object
 * (platform, state, ssh_user, endpoints). malloc'd, ends in "\n"; NULL on
 * ENOMEM.
 */
char *restapi_info_json(json_t *inst, const char *platform,
			const struct rgt_instance *ri);

/* -EBADMSG with a reason saying where @body stopped being JSON. */
int restapi_bad_json(const char *vendor, const char *body, size_t len,
		     const json_error_t *je, char *err, size_t errlen);

/* base64 of @n bytes of @p, malloc'd; NULL on ENOMEM. */
char *restapi_base64(const void *p, size_t n);

/* Percent-encode all but A-Za-z0-9-._~; malloc'd; NULL on ENOMEM. */
char *restapi_urlencode(const char *s);

/* Sort @l by id and drop repeated ids (the first kept). Returns how many
 * were dropped, or -ENOMEM. */
long restapi_sort_unique(struct rgt_instance_list *l);

/*
 * Readers for struct rgt_facts (platform.h). Each gives the field's
 * "unknown" for a missing value, a value of the wrong JSON type or one out
 * of range, and never guesses a unit or a default.
 */

/* f->gpu from a JSON string (rgt_facts_set_gpu); false if not a string
 * or nothing printable is left. */
bool restapi_facts_gpu(struct rgt_facts *f, json_t *v);

/* A JSON integer 0..INT_MAX, else -1. */
int restapi_json_count(json_t *v);

/*
 * A rate: a finite JSON number >= 0, else -1. With @string_ok a JSON
 * string holding only a decimal number (digits, '.', an exponent, a sign;
 * no blanks, hex, inf or nan) is read too, the whole string or nothing.
 */
double restapi_json_rate(json_t *v, bool string_ok);

/* Unix seconds from a JSON number of epoch seconds (the fraction
 * dropped); 0 for anything not in 1 .. year 9999. */
int64_t restapi_json_epoch(json_t *v);

/*
 * Unix seconds from an RFC 3339 JSON string
 * ("2026-11-30T09:14:02Z", "...09:14:02.123+08:00"); 0 for anything else,
 * a time without a zone included (its zone would be a guess).
 */
int64_t restapi_json_rfc3339(json_t *v);

/* Free what one rgt_instance holds and zero it. */
void restapi_instance_cleanup(struct rgt_instance *ri);

#endif
