/*
 * vastai.c - the vast.ai adapter: the paged v1 list (v0 as the fallback),
 * Bearer key, DELETE to end an instance (PLATFORMS.md section 1).
 *
 * DESIGN
 *
 * - Translation only, no policy: list() turns the instance list into
 *   rgt_instance values, destroy() sends one DELETE /api/v0/instances/{id}/
 *   and reports what vast.ai said. When to destroy, and what a state means
 *   for the data, is decided above.
 * - The list is GET /api/v1/instances/ (limit 25, ordered by id, the cursor
 *   sent back as after_token, the vendor SDK's names; the shapes are [3p]
 *   in PLATFORMS.md 1.2, so every page is read defensively). Every page is
 *   followed, under VASTAI_MAX_PAGES and one budget of three api_timeouts;
 *   a cursor that never ends or comes back is an error, never a hang. The
 *   list is `complete` only if every page parsed with nothing skipped and
 *   no id repeated. When v1 declines (HTTP 404, or {"success": false}), the
 *   classic GET /api/v0/instances?owner=me answers instead, and v1 is asked
 *   again after V1_RETRY_MS (at once if v0 fails too).
 * - The JSON is hostile until proven otherwise. The reply is capped
 *   (VASTAI_MAX_BODY) before it is parsed; every field is type-checked where
 *   it is read; the shape traps of PLATFORMS.md 8.11 are accepted (a single
 *   object or null under the plural "instances" key of a show reply, HostPort
 *   as a string or a number, public_ipaddr with whitespace around it, "ports"
 *   as null, {}, a list or missing). One malformed instance is skipped and
 *   counted, not allowed to blank the whole platform; a reply that is not
 *   JSON or has no "instances" is -EBADMSG, never an empty list, because
 *   an empty list would make every instance look gone.
 * - Secrets: the key travels only in the Authorization header, never in a
 *   URL (the vendor CLI's ?api_key= is deliberately not copied). http:// is
 *   refused for anything but loopback hosts, where the tests run. info_json
 *   drops every field that can carry a secret (jupyter_token, onstart,
 *   extra_env, image_login, container args, and any key whose name looks like
 *   a token, password or credential), recursively. Any text vast.ai sends
 *   back that ends up in err has the key masked, in case a server echoes it.
 * - destroy() is never retried by this adapter, not even on a timeout: the
 *   DELETE may have been carried out, and the rule (PLATFORMS.md 8.7) is to
 *   re-read state before trying again. vast.ai's DELETE is also eventually
 *   consistent; the caller polls list() afterwards.
 * - list() retries transport errors, 429 and 5xx inside one time budget
 *   (api_timeout, default 20 s) so a poll never overruns by much.
 *
 * - log() is vast.ai's log API (PLATFORMS.md 1.2, 8.10), asynchronous:
 *   PUT /api/v0/instances/request_logs/{id}/ {"tail":"1000"} answers
 *   {"success", "result_url", "msg"} (success must be true), and the log
 *   is then a plain object at result_url (S3) that appears after a moment.
 *   The PUT only asks for a fresh upload, so it gets the list's bounded
 *   retry. result_url is checked on its own (it is another host than
 *   api_url, under the same rule: https://, http:// only to loopback) and
 *   polled with a short growing wait (404/403 mean "not there yet") for at
 *   most VASTAI_LOG_WAIT_MS. It is a presigned third-party URL: it gets no
 *   Authorization header and no key, and no message quotes it (its path
 *   names the object, its query is a signature), only its host. At most
 *   VASTAI_LOG_BODY_MAX is read (more is -EFBIG) and the newest whole
 *   lines of up to VASTAI_LOG_MAX given as they are (raw container output:
 *   unlike RunPod's JSON events it has no structure a line could forge).
 *   The body is read whole, not streamed, so a slow object is an error,
 *   never its oldest part shown as the log. One log() takes at most
 *   api_timeout + VASTAI_LOG_WAIT_MS. It runs beside list() and destroy()
 *   (platform.h), so it reads only what open() set and changes nothing.
 *
 * Threads: list() and destroy() of a struct platform run one at a time
 * (platform.h); log() may run beside them and only reads *p;
 * vastai_map_state(), vastai_parse_instances() and the vastai_*log* and
 * vastai_result_url_check() helpers are pure and reentrant.
 *
 * Rejected: v0 only. One project reports v0 answering {"success": false}
 * now (PLATFORMS.md 1.2) and the vendor SDK lists through v1 alone.
 * Guessing the log's URL as the old CLI did (md5(api_key + id)): the reply
 * names it, and the guess is a digest of the key.
 */
#define _GNU_SOURCE /* asprintf, strcasestr */
#include "vastai.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "restapi.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_API_URL "https://console.vast.ai"
#define VENDOR_KEY_FILE "~/.config/vastai/vast_api_key"
#define CONNECT_MS 10000L
#define TIMEOUT_MS 20000L
#define LIST_RETRIES 3
#define BACKOFF_MS 250L
#define BACKOFF_MAX_MS 2000L
#define STATUS_MSG_MAX 512
#define SERVER_MSG_MAX 300
/* The log object's poll: first wait, and the cap of each later wait. */
#define LOG_POLL_FIRST_MS 250L
#define LOG_POLL_MAX_MS 1000L
/* After v1 declined, list with v0 for this long before asking v1 again. */
#define V1_RETRY_MS (10L * 60 * 1000)

struct platform {
	char *ca_file;	/* the section's ca_file, or NULL */
	char *api_url;	/* "https://host[:port]", no trailing slash */
	char *key;	/* for masking echoes in messages */
	char *auth_hdr; /* "Authorization: Bearer KEY" */
	char *ssh_user;
	long connect_ms;
	long timeout_ms;
	long v0_until_ms;	/* monotonic: list with v0 until then */
};

/* ---- pure helpers ------------------------------------------------------ */

/* String value of @v, or NULL for anything that is not a string. */
static const char *jstr(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool streq(const char *a, const char *b)
{
	return a && !strcasecmp(a, b);
}

/* The human-readable text of a vast.ai error object, one line, or NULL. */
static char *server_msg(json_t *root)
{
	static const char *const keys[] = {"msg", "error", "detail"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *m = json_object_get(root, keys[i]);

		if (json_is_string(m) && json_string_length(m))
			return restapi_one_line(json_string_value(m),
					json_string_length(m), SERVER_MSG_MAX);
	}
	return NULL;
}

static bool is_bid(json_t *inst)
{
	json_t *b = json_object_get(inst, "is_bid");

	return json_is_true(b) || (json_is_integer(b) && json_integer_value(b));
}

enum rgt_state vastai_map_state(json_t *inst)
{
	json_t *ja;
	const char *actual, *intended, *cur;

	if (!json_is_object(inst))
		return RGT_ST_UNKNOWN;
	ja = json_object_get(inst, "actual_status");
	if (ja && !json_is_null(ja) && !json_is_string(ja))
		return RGT_ST_UNKNOWN;
	actual = jstr(ja);
	if (actual && !actual[0])
		actual = NULL;
	intended = jstr(json_object_get(inst, "intended_status"));
	cur = jstr(json_object_get(inst, "cur_state"));

	/* Released by a DELETE but still listed. */
	if (streq(cur, "unloaded") || streq(actual, "destroyed"))
		return RGT_ST_DESTROYING;
	/*
	 * An outbid interruptible instance keeps intended_status=running
	 * while the box is paused (PLATFORMS.md 1.6). A brand-new bid that
	 * has not started yet looks the same (actual null) for a moment;
	 * calling that preempted is the lesser error, since missing a real
	 * preemption hides a box that bills disk and may never resume.
	 */
	if (is_bid(inst) && streq(intended, "running") &&
	    (!actual || streq(actual, "stopped") || streq(actual, "exited") ||
	     streq(actual, "scheduling")))
		return RGT_ST_PREEMPTED;
	if (!actual || streq(actual, "loading") || streq(actual, "created") ||
	    streq(actual, "rebooting") || streq(actual, "scheduling"))
		return RGT_ST_PROVISIONING;
	if (streq(actual, "running"))
		return RGT_ST_RUNNING;
	if (streq(actual, "stopped") || streq(actual, "frozen") ||
	    streq(actual, "exited"))
		return RGT_ST_STOPPED;
	if (streq(actual, "offline"))
		return RGT_ST_OFFLINE;
	return RGT_ST_UNKNOWN;
}

/* 1..65535 from a JSON integer or a decimal string; 0 otherwise. */
static int json_port(json_t *v)
{
	long long p = -1;

	if (json_is_integer(v)) {
		p = json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		char *end;

		while (n && isspace((unsigned char)*s)) {
			s++;
			n--;
		}
		if (!n || n > 5 || !isdigit((unsigned char)*s))
			return 0;
		p = strtoll(s, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (*end)
			return 0;
	}
	return p >= 1 && p <= 65535 ? (int)p : 0;
}

/*
 * A host name or address from @v, whitespace trimmed, into @out. Only
 * characters of names and IP literals are accepted, and no leading '-',
 * because the host ends up in a paste-able ssh command line.
 */
static bool json_host(json_t *v, char out[RGT_HOST_MAX])
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
 * ep[0] direct (public_ipaddr + the host port mapped to 22/tcp), then the
 * proxy (ssh_host:ssh_port); either may be missing. Returns whether the
 * direct endpoint was found.
 */
static bool find_endpoints(json_t *inst, struct rgt_instance *ri)
{
	json_t *ports = json_object_get(inst, "ports");
	json_t *p22 =
	    json_is_object(ports) ? json_object_get(ports, "22/tcp") : NULL;
	json_t *first = json_is_array(p22) ? json_array_get(p22, 0) : NULL;
	bool direct = false;
	struct rgt_endpoint *ep;

	ri->n_ep = 0;
	ep = &ri->ep[0];
	if (json_is_object(first) &&
	    json_host(json_object_get(inst, "public_ipaddr"), ep->host) &&
	    (ep->port = json_port(json_object_get(first, "HostPort")))) {
		ri->n_ep++;
		direct = true;
	}
	ep = &ri->ep[ri->n_ep];
	if (json_host(json_object_get(inst, "ssh_host"), ep->host) &&
	    (ep->port = json_port(json_object_get(inst, "ssh_port"))))
		ri->n_ep++;
	return direct;
}

/*
 * Field names whose values can carry secrets. Matched case-insensitively:
 * the exact names in the first list, any name containing one of the second.
 */
static bool secret_field(const char *k)
{
	static const char *const exact[] = {
	    "onstart",	  "onstart_cmd", "extra_env", "env",
	    "image_args", "args",	 "args_str",
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

/* Drop secret fields from @v and everything below it. */
static void scrub(json_t *v)
{
	if (json_is_object(v)) {
		void *it = json_object_iter(v);

		while (it) {
			const char *k = json_object_iter_key(it);
			json_t *x = json_object_iter_value(it);
			void *next = json_object_iter_next(v, it);

			if (secret_field(k))
				json_object_del(v, k);
			else
				scrub(x);
			it = next;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			scrub(json_array_get(v, i));
	}
}

static char *make_info_json(json_t *inst, const struct rgt_instance *ri,
			    bool has_direct, const char *ssh_user)
{
	json_t *copy, *meta, *eps;
	char *s = NULL, *t;
	size_t n;

	copy = json_deep_copy(inst);
	if (!copy)
		return NULL;
	scrub(copy);
	eps = json_array();
	meta = json_pack("{s:s, s:s, s:s, s:o}", "platform", "vastai", "state",
			 rgt_state_name(ri->state), "ssh_user", ssh_user,
			 "endpoints", eps);
	if (!meta)
		goto out_copy;
	for (int i = 0; i < ri->n_ep; i++) {
		const char *kind = i == 0 && has_direct ? "direct" : "proxy";

		if (json_array_append_new(
			eps, json_pack("{s:s, s:s, s:i}", "kind", kind, "host",
				       ri->ep[i].host, "port", ri->ep[i].port)))
			goto out_meta;
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
	goto out_copy;
out_meta:
	json_decref(meta);
out_copy:
	json_decref(copy);
	return s;
}

/* A vast.ai id (a positive integer, as a JSON integer or decimal string)
 * in canonical decimal form. */
static bool json_id(json_t *v, char out[RGT_ID_MAX])
{
	unsigned long long id;

	if (json_is_integer(v)) {
		if (json_integer_value(v) <= 0)
			return false;
		id = (unsigned long long)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);

		if (!n || n > 19 || strspn(s, "0123456789") != n)
			return false;
		id = strtoull(s, NULL, 10);
		if (!id)
			return false;
	} else {
		return false;
	}
	snprintf(out, RGT_ID_MAX, "%llu", id);
	return platform_id_valid(out);
}

/*
 * The fleet view's facts: gpu_name, num_gpus, dph_total (a number, or a
 * decimal string as some answers carry it), start_date (epoch float).
 * dph_total is the contract's rate and is listed in every state, but a
 * box bills it only while it holds its GPU: running, or frozen (paused
 * with the GPU still billed, PLATFORMS.md 1.3). Stopped, exited, loading
 * or outbid, what it bills per hour (disk only, or nothing yet) is not in
 * the answer, so the rate stays unknown there rather than overstated.
 */
static void find_facts(json_t *inst, struct rgt_facts *f)
{
	const char *actual = jstr(json_object_get(inst, "actual_status"));

	restapi_facts_gpu(f, json_object_get(inst, "gpu_name"));
	f->gpu_count = restapi_json_count(json_object_get(inst, "num_gpus"));
	if (streq(actual, "running") || streq(actual, "frozen"))
		f->usd_per_hour = restapi_json_rate(
		    json_object_get(inst, "dph_total"), true);
	f->started = restapi_json_epoch(json_object_get(inst, "start_date"));
}

/*
 * One instance object into @ri. -EINVAL with a reason in @why for a
 * malformed entry (skip it), -ENOMEM otherwise fatal.
 */
static int parse_one(json_t *inst, const char *ssh_user,
		     struct rgt_instance *ri, char *why, size_t whylen)
{
	json_t *m;
	bool direct;

	memset(ri, 0, sizeof(*ri));
	rgt_facts_init(&ri->facts);	/* zero would say "0 GPUs, $0/h" */
	if (!json_is_object(inst)) {
		snprintf(why, whylen, "not an object");
		return -EINVAL;
	}
	if (!json_id(json_object_get(inst, "id"), ri->id)) {
		snprintf(why, whylen, "no positive integer \"id\"");
		return -EINVAL;
	}
	ri->state = vastai_map_state(inst);
	find_facts(inst, &ri->facts);
	m = json_object_get(inst, "status_msg");
	ri->status_msg = json_is_string(m)
			     ? restapi_one_line(json_string_value(m),
					json_string_length(m), STATUS_MSG_MAX)
			     : restapi_one_line("", 0, 0);
	if (!ri->status_msg)
		goto out_nomem;
	direct = find_endpoints(inst, ri);
	ri->info_json = make_info_json(inst, ri, direct, ssh_user);
	if (!ri->info_json)
		goto out_nomem;
	return 0;
out_nomem:
	restapi_instance_cleanup(ri);
	return -ENOMEM;
}

struct order {
	struct rgt_instance *ri;
	size_t pos; /* position in the reply: the first of equals wins */
};

/* Numeric order of canonical decimal ids, then reply order. */
static int order_cmp(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	size_t lx = strlen(x->ri->id), ly = strlen(y->ri->id);
	int c;

	if (lx != ly)
		return lx < ly ? -1 : 1;
	c = strcmp(x->ri->id, y->ri->id);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Sort @l by id and drop repeated ids (each id is one directory). Returns
 * how many were dropped, or -ENOMEM.
 */
static long sort_unique(struct rgt_instance_list *l)
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

/*
 * The instances of a parsed reply @root (borrowed) into @out; @list_only
 * refuses a single object under "instances" (a v1 page is always a list).
 * Same contract as vastai_parse_instances().
 */
static int parse_root(json_t *root, const char *ssh_user, bool list_only,
		      struct rgt_instance_list *out, char *err, size_t errlen)
{
	char why[96], first[160] = "";
	size_t n, i, skipped = 0;
	json_t *insts;
	long dup;
	int rc;

	if (!json_is_object(root)) {
		snprintf(err, errlen, "vast.ai: response is not a JSON object");
		rc = -EBADMSG;
		goto out_root;
	}
	if (json_is_false(json_object_get(root, "success"))) {
		char *m = server_msg(root);

		snprintf(err, errlen, "vast.ai: request failed: %s",
			 m ? m : "(no message)");
		free(m);
		rc = -EIO;
		goto out_root;
	}
	insts = json_object_get(root, "instances");
	if (!insts) {
		snprintf(err, errlen,
			 "vast.ai: response has no \"instances\" "
			 "key");
		rc = -EBADMSG;
		goto out_root;
	}
	if (json_is_null(insts)) {
		/* The show endpoint answers null for a destroyed instance; a
		 * list answering null has said nothing about any instance. */
		snprintf(err, errlen,
			 "vast.ai: the instance list is null (not a list); "
			 "keeping the last known instances");
		rc = -EBADMSG;
		goto out_root;
	} else if (json_is_object(insts) && !list_only) {
		n = 1;
	} else if (json_is_array(insts)) {
		n = json_array_size(insts);
	} else {
		snprintf(err, errlen,
			 "vast.ai: \"instances\" is neither a "
			 "list, an object nor null");
		rc = -EBADMSG;
		goto out_root;
	}
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (!out->v) {
		rc = -ENOMEM;
		goto out_nomem;
	}
	for (i = 0; i < n; i++) {
		json_t *inst =
		    json_is_array(insts) ? json_array_get(insts, i) : insts;

		rc = parse_one(inst, ssh_user, &out->v[out->n], why,
			       sizeof(why));
		if (rc == -ENOMEM)
			goto out_nomem;
		if (rc) {
			if (!skipped++)
				snprintf(first, sizeof(first), "entry %zu: %s",
					 i, why);
			continue;
		}
		out->n++;
	}
	dup = sort_unique(out);
	if (dup < 0) {
		rc = -ENOMEM;
		goto out_nomem;
	}
	if (dup && !skipped)
		snprintf(first, sizeof(first), "a repeated id");
	skipped += dup;
	if (n && !out->n) {
		/* Nothing understood: that is not "no instances". */
		snprintf(err, errlen,
			 "vast.ai: none of the %zu instance(s) in the list "
			 "could be read; first: %s",
			 n, first);
		rgt_instance_list_free(out);
		rc = -EBADMSG;
		goto out_root;
	}
	if (skipped)
		snprintf(err, errlen,
			 "vast.ai: skipped %zu malformed "
			 "instance(s); first: %s",
			 skipped, first);
	out->complete = !skipped;
	rc = 0;
	goto out_root;
out_nomem:
	rgt_instance_list_free(out);
	snprintf(err, errlen, "vast.ai: out of memory");
out_root:
	return rc;
}

/* The JSON of @body, or NULL with -errno in *rc and a reason in err. */
static json_t *load_reply(const char *body, size_t len, int *rc, char *err,
			  size_t errlen)
{
	json_error_t je;
	json_t *root;

	if (len > VASTAI_MAX_BODY) {
		snprintf(err, errlen,
			 "vast.ai: response larger than %zu "
			 "bytes",
			 VASTAI_MAX_BODY);
		*rc = -EFBIG;
		return NULL;
	}
	root = body ? json_loadb(body, len, 0, &je) : NULL;
	if (!root)
		*rc = restapi_bad_json("vast.ai", body ? body : "",
				       body ? len : 0, &je, err, errlen);
	return root;
}

int vastai_parse_instances(const char *body, size_t len, const char *ssh_user,
			   struct rgt_instance_list *out, char *err,
			   size_t errlen)
{
	json_t *root;
	int rc = 0;

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	root = load_reply(body, len, &rc, err, errlen);
	if (!root)
		return rc;
	rc = parse_root(root, ssh_user ? ssh_user : "root", false, out, err,
			errlen);
	json_decref(root);
	return rc;
}

int vastai_parse_page(const char *body, size_t len, const char *ssh_user,
		      struct rgt_instance_list *out, char **next_token,
		      char *err, size_t errlen)
{
	json_t *root, *nt;
	const char *t;
	size_t tl;
	int rc = 0;

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	*next_token = NULL;
	if (err && errlen)
		err[0] = '\0';
	root = load_reply(body, len, &rc, err, errlen);
	if (!root)
		return rc;
	/* The cursor first: a page whose cursor cannot be followed says
	 * nothing about whether the list is complete. */
	nt = json_is_object(root) ? json_object_get(root, "next_token") : NULL;
	if (nt && !json_is_null(nt) && !json_is_string(nt)) {
		snprintf(err, errlen,
			 "vast.ai: the page's \"next_token\" is neither a "
			 "string nor null");
		rc = -EBADMSG;
		goto out_root;
	}
	t = json_is_string(nt) ? json_string_value(nt) : "";
	tl = json_is_string(nt) ? json_string_length(nt) : 0;
	if (tl > VASTAI_TOKEN_MAX || strlen(t) != tl) {
		snprintf(err, errlen,
			 "vast.ai: the page's \"next_token\" is longer than "
			 "%d bytes or holds a NUL",
			 VASTAI_TOKEN_MAX);
		rc = -EBADMSG;
		goto out_root;
	}
	for (size_t i = 0; i < tl; i++) {
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f) {
			snprintf(err, errlen,
				 "vast.ai: the page's \"next_token\" holds "
				 "a space, a control or a non-ASCII byte");
			rc = -EBADMSG;
			goto out_root;
		}
	}
	rc = parse_root(root, ssh_user ? ssh_user : "root", true, out, err,
			errlen);
	if (!rc && tl) {
		*next_token = strdup(t);
		if (!*next_token) {
			rgt_instance_list_free(out);
			snprintf(err, errlen, "vast.ai: out of memory");
			rc = -ENOMEM;
		}
	}
out_root:
	json_decref(root);
	return rc;
}

/* ---- the log API's pure parts ------------------------------------------ */

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

int vastai_result_url_check(const char *url, char *host, size_t hostlen,
			    char *err, size_t errlen)
{
	const char *auth, *end, *hs, *he, *port = NULL;
	size_t n, sl, hl;
	bool plain;
	char h[RGT_HOST_MAX];

	if (host && hostlen)
		host[0] = '\0';
	n = url ? strlen(url) : 0;
	if (!n) {
		snprintf(err, errlen, "vast.ai: the log's result_url is empty");
		return -EINVAL;
	}
	if (n > VASTAI_URL_MAX) {
		snprintf(err, errlen,
			 "vast.ai: the log's result_url is longer than %d "
			 "bytes",
			 VASTAI_URL_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f) {
			snprintf(err, errlen,
				 "vast.ai: the log's result_url holds a space, "
				 "a control or a non-ASCII byte");
			return -EINVAL;
		}
	}
	if (!strncasecmp(url, "https://", 8)) {
		plain = false;
		sl = 8;
	} else if (!strncasecmp(url, "http://", 7)) {
		plain = true;
		sl = 7;
	} else {
		snprintf(err, errlen,
			 "vast.ai: the log's result_url is not an https:// "
			 "URL");
		return -EINVAL;
	}
	auth = url + sl;
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', end - auth)) {
		snprintf(err, errlen,
			 "vast.ai: the log's result_url carries a "
			 "user:password@; not followed");
		return -EINVAL;
	}
	if (*auth == '[') {
		hs = auth + 1;
		he = memchr(hs, ']', end - hs);
		if (!he) {
			snprintf(err, errlen,
				 "vast.ai: the log's result_url has an "
				 "unclosed [IPv6] host");
			return -EINVAL;
		}
		if (he + 1 < end) {
			if (he[1] != ':')
				goto bad_host;
			port = he + 2;
		}
	} else {
		hs = auth;
		he = memchr(hs, ':', end - hs);
		if (he)
			port = he + 1;
		else
			he = end;
	}
	hl = he - hs;
	if (!hl || hl >= sizeof(h))
		goto bad_host;
	memcpy(h, hs, hl);
	h[hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)h[i]) && !strchr(".-_:", h[i]))
			goto bad_host;
	if (*auth == '[' ? !strchr(h, ':') : strchr(h, ':') != NULL)
		goto bad_host;
	if (port) {
		size_t pl = end - port;
		long v;

		if (!pl || pl > 5 || strspn(port, "0123456789") < pl)
			goto bad_port;
		v = strtol(port, NULL, 10);
		if (v < 1 || v > 65535)
			goto bad_port;
	}
	if (plain && !loopback_host(h)) {
		snprintf(err, errlen,
			 "vast.ai: the log's result_url is plain http:// to "
			 "%s; only https:// is followed (http:// only to "
			 "loopback)",
			 h);
		return -EINVAL;
	}
	if (host && hostlen)
		snprintf(host, hostlen, "%s", h);
	return 0;
bad_host:
	snprintf(err, errlen,
		 "vast.ai: the log's result_url has no valid host");
	return -EINVAL;
bad_port:
	snprintf(err, errlen, "vast.ai: the log's result_url has a bad port");
	return -EINVAL;
}

int vastai_parse_log_reply(const char *body, size_t len, char **result_url,
			   char *host, size_t hostlen, char *err, size_t errlen)
{
	json_t *root, *u;
	const char *q = NULL;
	int rc = 0;

	*result_url = NULL;
	if (host && hostlen)
		host[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	root = load_reply(body, len, &rc, err, errlen);
	if (!root)
		return rc;
	if (!json_is_object(root)) {
		snprintf(err, errlen,
			 "vast.ai: the reply to the log request is not a JSON "
			 "object");
		rc = -EBADMSG;
		goto out;
	}
	u = json_object_get(root, "result_url");
	if (json_is_string(u))
		q = strchr(json_string_value(u), '?');
	if (!json_is_true(json_object_get(root, "success"))) {
		char *m = server_msg(root);
		bool no = json_is_false(json_object_get(root, "success"));

		if (no)
			snprintf(err, errlen,
				 "vast.ai refused the log request: %s",
				 m ? m : "(no message)");
		else
			snprintf(err, errlen,
				 "vast.ai: the reply to the log request does "
				 "not say \"success\": true%s%s",
				 m ? ": " : "", m ? m : "");
		free(m);
		rc = no ? -EIO : -EBADMSG;
		goto out;
	}
	if (!json_is_string(u) || !json_string_length(u) ||
	    strlen(json_string_value(u)) != json_string_length(u)) {
		char *m = server_msg(root);

		snprintf(err, errlen,
			 "vast.ai: the reply to the log request has no "
			 "string \"result_url\"%s%s",
			 m ? ": " : "", m ? m : "");
		free(m);
		rc = -EBADMSG;
		goto out;
	}
	rc = vastai_result_url_check(json_string_value(u), host, hostlen, err,
				     errlen);
	if (rc)
		goto out;
	*result_url = strdup(json_string_value(u));
	if (!*result_url) {
		snprintf(err, errlen, "vast.ai: out of memory");
		rc = -ENOMEM;
	}
out:
	/* A message that quotes the URL must not carry its signature. */
	if (q && strlen(q) > 4)
		restapi_mask_key(err, q + 1);
	json_decref(root);
	return rc;
}

int vastai_log_text(const char *body, size_t len, struct buf *out)
{
	size_t room = out->max > out->len ? out->max - out->len : 0;
	size_t keep = 0;

	if (!body)
		len = 0;
	if (room > VASTAI_LOG_MAX)
		room = VASTAI_LOG_MAX;
	if (len > room) {
		keep = len - room;
		while (keep < len && body[keep - 1] != '\n')
			keep++;
	}
	if (len > keep && buf_append(out, body + keep, len - keep))
		return -ENOMEM;
	return 0;
}

/* ---- the adapter ------------------------------------------------------- */

static void vastai_close(struct platform *p)
{
	if (!p)
		return;
	if (p->key) {
		explicit_bzero(p->key, strlen(p->key));
		free(p->key);
	}
	if (p->auth_hdr) {
		explicit_bzero(p->auth_hdr, strlen(p->auth_hdr));
		free(p->auth_hdr);
	}
	free(p->api_url);
	free(p->ca_file);
	free(p->ssh_user);
	free(p);
}

static int vastai_open(const struct rgt_section *sec, struct platform **out,
		       char *err, size_t errlen)
{
	struct platform *p;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "vastai: out of memory");
		return -ENOMEM;
	}
	rc = restapi_origin("vastai", sec->api_url, DEFAULT_API_URL,
			    &p->api_url, err, errlen);
	if (rc)
		goto out_free;
	rc = restapi_timeout("vastai", sec, TIMEOUT_MS, &p->timeout_ms, err,
			     errlen);
	if (rc)
		goto out_free;
	rc = restapi_ca_file("vastai", sec, &p->ca_file, err, errlen);
	if (rc)
		goto out_free;
	p->connect_ms = p->timeout_ms < CONNECT_MS ? p->timeout_ms : CONNECT_MS;
	p->ssh_user =
	    strdup(sec->ssh_user && sec->ssh_user[0] ? sec->ssh_user : "root");
	if (!p->ssh_user) {
		rc = -ENOMEM;
		snprintf(err, errlen, "vastai: out of memory");
		goto out_free;
	}
	p->key = platform_load_key(sec, VENDOR_KEY_FILE, err, errlen);
	if (!p->key) {
		rc = -ENOKEY;
		goto out_free;
	}
	if (asprintf(&p->auth_hdr, "Authorization: Bearer %s", p->key) < 0) {
		p->auth_hdr = NULL;
		rc = -ENOMEM;
		snprintf(err, errlen, "vastai: out of memory");
		goto out_free;
	}
	*out = p;
	return 0;
out_free:
	vastai_close(p);
	return rc;
}

/* Reason for a failed http_do(); keeps its errno. */
static int transport_error(struct platform *p, int rc, const char *herr,
			   char *err, size_t errlen)
{
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "vast.ai did not answer within %gs",
			 p->timeout_ms / 1000.0);
	else if (rc == -EFBIG)
		snprintf(err, errlen, "vast.ai: response larger than %zu bytes",
			 VASTAI_MAX_BODY);
	else
		snprintf(err, errlen, "vast.ai: %s", herr);
	return rc;
}

/* -errno and a reason for a non-2xx answer. */
static int status_error(struct platform *p, const struct http_resp *resp,
			const char *what, char *err, size_t errlen)
{
	long st = resp->status;
	json_t *root = NULL;
	char *m = NULL;

	if (st == 401 || st == 403) {
		snprintf(err, errlen, "vast.ai refused the API key (HTTP %ld)",
			 st);
		return -EACCES;
	}
	if (st == 429) {
		if (resp->attempts > 1)
			snprintf(err, errlen,
				 "vast.ai is rate-limiting %s "
				 "(HTTP 429, %d attempts)",
				 what, resp->attempts);
		else
			snprintf(err, errlen,
				 "vast.ai is rate-limiting %s "
				 "(HTTP 429)",
				 what);
		return -EAGAIN;
	}
	if (st >= 500 && st <= 599) {
		snprintf(err, errlen, "vast.ai answered HTTP %ld to %s", st,
			 what);
		return -EIO;
	}
	if (resp->body.len)
		root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (json_is_object(root))
		m = server_msg(root);
	snprintf(err, errlen, "vast.ai answered HTTP %ld to %s%s%s", st, what,
		 m ? ": " : "", m ? m : "");
	restapi_mask_key(err, p->key);
	free(m);
	json_decref(root);
	return st == 404 ? -ENOENT : -EIO;
}

/* The classic one-shot list, GET /api/v0/instances?owner=me. */
static int list_v0(struct platform *p, struct rgt_instance_list *out,
		   char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "GET",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = VASTAI_MAX_BODY,
	    .max_retries = LIST_RETRIES,
	    .backoff_ms = BACKOFF_MS,
	    .backoff_max_ms = BACKOFF_MAX_MS,
	};
	struct http_resp resp;
	char herr[256];
	char *url;
	int rc;

	out->v = NULL;
	out->n = 0;
	if (err && errlen)
		err[0] = '\0';
	if (asprintf(&url, "%s/api/v0/instances?owner=me", p->api_url) < 0) {
		snprintf(err, errlen, "vast.ai: out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	if (rc) {
		transport_error(p, rc, herr, err, errlen);
		goto out_resp;
	}
	if (resp.status == 404) {
		/* The list endpoint itself missing: a wrong api_url, not an
		 * empty account, and certainly not "everything is gone". */
		status_error(p, &resp, "the instance list", err, errlen);
		rc = -EIO;
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the instance list", err, errlen);
		goto out_resp;
	}
	rc = vastai_parse_instances(resp.body.data, resp.body.len, p->ssh_user,
				    out, err, errlen);
	/* rc 0 with a note in err: some entries were skipped; the caller
	 * decides whether to say so. */
	restapi_mask_key(err, p->key);
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* @s percent-encoded for a query value (all but A-Za-z0-9-._~). */
static char *query_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *o = malloc(3 * n + 1), *q = o;

	if (!o)
		return NULL;
	for (; *s; s++) {
		unsigned char c = *s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			*q++ = (char)c;
		} else {
			*q++ = '%';
			*q++ = hex[c >> 4];
			*q++ = hex[c & 15];
		}
	}
	*q = '\0';
	return o;
}

/* Append @add's entries to @all (moved; @add left empty). */
static int list_append(struct rgt_instance_list *all,
		       struct rgt_instance_list *add)
{
	struct rgt_instance *v;

	if (!add->n)
		return 0;
	v = realloc(all->v, (all->n + add->n) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v + all->n, add->v, add->n * sizeof(*v));
	all->v = v;
	all->n += add->n;
	free(add->v);
	add->v = NULL;
	add->n = 0;
	return 0;
}

/*
 * The v1 answer says "this endpoint is not for you": HTTP 404, or
 * {"success": false} with a 2xx or a 4xx other than 401/403/429. Only then
 * is v0 tried instead; an auth error, a 429 or a 5xx is the same for both.
 */
static bool v1_declined(const struct http_resp *resp)
{
	long st = resp->status;
	json_t *root;
	bool no;

	if (st == 404)
		return true;
	if (st == 401 || st == 403 || st == 429 || st >= 500 || st < 200)
		return false;
	root = resp->body.len
		   ? json_loadb(resp->body.data, resp->body.len, 0, NULL)
		   : NULL;
	no = json_is_object(root) &&
	     json_is_false(json_object_get(root, "success"));
	json_decref(root);
	return no;
}

/*
 * The paged list, GET /api/v1/instances/?limit=25&after_token=..., every
 * page followed, bounded by VASTAI_MAX_PAGES and one budget of three
 * api_timeouts. *declined is set when the first page says v1 is not
 * available (see v1_declined); nothing is listed then.
 */
static int list_v1(struct platform *p, struct rgt_instance_list *out,
		   bool *declined, char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "GET",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .max_body = VASTAI_MAX_BODY,
	    .max_retries = LIST_RETRIES,
	    .backoff_ms = BACKOFF_MS,
	    .backoff_max_ms = BACKOFF_MAX_MS,
	};
	long deadline = mono_ms() + 3 * p->timeout_ms;
	char **seen = NULL, *token = NULL;	/* token: seen[nseen - 1] */
	bool complete = true;
	size_t pages = 0, nseen = 0;
	char note[256] = "";	/* the first page's note about skipped entries */
	long dup;
	int rc = 0;

	*declined = false;
	for (;;) {
		struct rgt_instance_list page = {0};
		struct http_resp resp;
		char herr[256], *next = NULL, *url = NULL, *enc = NULL;
		long left = deadline - mono_ms();

		if (pages >= VASTAI_MAX_PAGES) {
			snprintf(err, errlen,
				 "vast.ai: the v1 instance list did not end "
				 "within %d pages; keeping the last known "
				 "instances",
				 VASTAI_MAX_PAGES);
			rc = -EBADMSG;
			break;
		}
		if (left <= 0) {
			snprintf(err, errlen,
				 "vast.ai: the v1 instance list did not finish "
				 "within %gs (%zu pages read)",
				 3 * p->timeout_ms / 1000.0, pages);
			rc = -ETIMEDOUT;
			break;
		}
		if (token && !(enc = query_escape(token))) {
			rc = -ENOMEM;
			snprintf(err, errlen, "vast.ai: out of memory");
			break;
		}
		/* owner=me as v0 has it; order by id so the cursor walks a
		 * stable order, as the vendor SDK asks. */
		if (asprintf(&url,
			     "%s/api/v1/instances/?owner=me&limit=%d&order_by="
			     "%%5B%%7B%%22col%%22%%3A%%22id%%22%%2C%%22dir%%22"
			     "%%3A%%22asc%%22%%7D%%5D%s%s",
			     p->api_url, VASTAI_PAGE_LIMIT,
			     enc ? "&after_token=" : "", enc ? enc : "") < 0) {
			url = NULL;
			free(enc);
			rc = -ENOMEM;
			snprintf(err, errlen, "vast.ai: out of memory");
			break;
		}
		free(enc);
		req.url = url;
		req.timeout_ms = left < p->timeout_ms ? left : p->timeout_ms;
		rc = http_do(&req, &resp, herr, sizeof(herr));
		free(url);
		if (rc) {
			transport_error(p, rc, herr, err, errlen);
		} else if (!pages && v1_declined(&resp)) {
			*declined = true;
			status_error(p, &resp, "the v1 instance list", err,
				     errlen);
			rc = -ENOENT;
		} else if (resp.status < 200 || resp.status > 299) {
			rc = status_error(p, &resp, "the v1 instance list",
					  err, errlen);
			if (rc == -ENOENT)
				rc = -EIO;
		} else {
			rc = vastai_parse_page(resp.body.data, resp.body.len,
					       p->ssh_user, &page, &next, err,
					       errlen);
			restapi_mask_key(err, p->key);
		}
		http_resp_cleanup(&resp);
		if (rc)
			break;
		pages++;
		if (err[0] && !note[0])
			snprintf(note, sizeof(note), "%s", err);
		complete = complete && page.complete;
		size_t got = page.n;
		rc = list_append(out, &page);
		rgt_instance_list_free(&page);
		if (rc) {
			free(next);
			snprintf(err, errlen, "vast.ai: out of memory");
			break;
		}
		/* A full page without a cursor: more may follow that we were
		 * not told how to ask for; nobody after it may be "gone". */
		if (!next && got >= VASTAI_PAGE_LIMIT)
			complete = false;
		if (!next)
			break;
		/* A cursor seen before would go round for ever. */
		for (size_t i = 0; i < nseen; i++) {
			if (!strcmp(seen[i], next)) {
				snprintf(err, errlen,
					 "vast.ai: the v1 instance list's "
					 "cursor came back to an earlier page");
				rc = -EBADMSG;
				break;
			}
		}
		if (rc) {
			free(next);
			break;
		}
		{
			char **s2 = realloc(seen, (nseen + 1) * sizeof(*s2));

			if (!s2) {
				free(next);
				rc = -ENOMEM;
				snprintf(err, errlen, "vast.ai: out of memory");
				break;
			}
			seen = s2;
			seen[nseen++] = next;
			token = next;
		}
	}
	for (size_t i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	if (!rc) {
		dup = sort_unique(out);
		if (dup < 0) {
			rc = -ENOMEM;
			snprintf(err, errlen, "vast.ai: out of memory");
		} else {
			if (note[0])
				snprintf(err, errlen, "%s", note);
			else if (dup)
				snprintf(err, errlen,
					 "vast.ai: the v1 pages repeated %ld "
					 "id(s)",
					 dup);
			else
				err[0] = '\0';
			out->complete = complete && !dup;
		}
	}
	if (rc) {
		rgt_instance_list_free(out);
		out->complete = false;
	}
	return rc;
}

static int vastai_list(struct platform *p, struct rgt_instance_list *out,
		       char *err, size_t errlen)
{
	bool declined = false;
	int rc;

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	if (mono_ms() >= p->v0_until_ms) {
		rc = list_v1(p, out, &declined, err, errlen);
		if (!declined)
			return rc;
		rgt_log(RGT_INFO, "vastai: %s; using the v0 list", err);
		/* Ask v1 again in a while, not on every poll. */
		p->v0_until_ms = mono_ms() + V1_RETRY_MS;
		if (err && errlen)
			err[0] = '\0';
	}
	rc = list_v0(p, out, err, errlen);
	if (rc)
		p->v0_until_ms = 0;	/* v0 failing: try v1 next time */
	return rc;
}

static const struct platform_verb vastai_verbs[] = {
    {"DELETE", RGT_ST_UNKNOWN},
};

static void vastai_caps(struct platform *p, struct platform_caps *out)
{
	(void)p;
	*out = (struct platform_caps){
	    .destroy = vastai_verbs,
	    .n_destroy = 1,
	    .confirm_by_list = true,
	    .log_api = true,
	};
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * GET the log object at @url (host @host, for messages) into @out: no
 * Authorization header and no key (a presigned third-party URL), polled
 * until it exists or VASTAI_LOG_WAIT_MS have passed. 404 and 403 (S3's
 * answers for an object not there yet), 429, 5xx and transport errors are
 * "ask again"; any other answer ends the poll. Messages name the host only:
 * the path names the object and the query is a signature.
 */
static int fetch_log_object(struct platform *p, const char *url,
			    const char *host, struct buf *out, char *err,
			    size_t errlen)
{
	long start = mono_ms(), deadline = start + VASTAI_LOG_WAIT_MS;
	long wait = LOG_POLL_FIRST_MS;
	char last[96] = "no answer";
	int tries = 0;

	for (;;) {
		long left = deadline - mono_ms();
		struct http_req req = {
		    .method = "GET",
		    .url = url,
		    .headers = NULL,	/* never the vast.ai key */
		    .connect_timeout_ms =
			left < p->connect_ms ? left : p->connect_ms,
		    .timeout_ms = left,
		    .max_body = VASTAI_LOG_BODY_MAX,
		    .max_retries = 0,	/* the poll is the retry */
		};
		struct http_resp resp;
		char herr[256];
		int rc;

		if (left <= 0)
			break;
		rc = http_do(&req, &resp, herr, sizeof(herr));
		tries++;
		if (rc == -EFBIG) {
			http_resp_cleanup(&resp);
			snprintf(err, errlen,
				 "vast.ai: the log object at %s is larger "
				 "than %zu bytes",
				 host, VASTAI_LOG_BODY_MAX);
			return -EFBIG;
		}
		if (rc == -ENOMEM || rc == -EINVAL) {
			http_resp_cleanup(&resp);
			snprintf(err, errlen,
				 "vast.ai: the log object at %s could not be "
				 "asked for: %s",
				 host, strerror(-rc));
			return rc;
		}
		if (!rc && resp.status >= 200 && resp.status <= 299) {
			rc = vastai_log_text(resp.body.data, resp.body.len,
					     out);
			http_resp_cleanup(&resp);
			if (rc)
				snprintf(err, errlen, "vast.ai: out of memory");
			return rc;
		}
		if (!rc && resp.status != 404 && resp.status != 403 &&
		    resp.status != 429 && resp.status < 500) {
			snprintf(err, errlen,
				 "vast.ai: the log object at %s answered HTTP "
				 "%ld",
				 host, resp.status);
			http_resp_cleanup(&resp);
			return -EIO;
		}
		if (rc) {
			/* herr is "GET <scheme://host/path>: why": the path
			 * names the object, so only the why is kept (the URL
			 * holds no space, so the first ": " ends it). */
			const char *why = strstr(herr, ": ");

			snprintf(last, sizeof(last), "%s",
				 why && why[2] ? why + 2 : strerror(-rc));
		} else
			snprintf(last, sizeof(last), "HTTP %ld", resp.status);
		http_resp_cleanup(&resp);
		left = deadline - mono_ms();
		if (left <= 0)
			break;
		sleep_ms(wait < left ? wait : left);
		wait = wait * 3 / 2;
		if (wait > LOG_POLL_MAX_MS)
			wait = LOG_POLL_MAX_MS;
	}
	snprintf(err, errlen,
		 "vast.ai: the log was not ready at %s within %gs (%d "
		 "tr%s, last: %s)",
		 host, VASTAI_LOG_WAIT_MS / 1000.0, tries,
		 tries == 1 ? "y" : "ies", last);
	return -EIO;
}

/*
 * The instance's log: PUT request_logs/{id}/ (idempotent: it asks for a
 * fresh upload, so the ordinary bounded retry applies), then the object
 * at result_url (fetch_log_object).
 */
static int vastai_log(struct platform *p, const char *id, struct buf *out,
		      char *err, size_t errlen)
{
	static const char body[] = "{\"tail\":\"" VASTAI_LOG_TAIL "\"}";
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json",
			      "Content-Type: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "PUT",
	    .headers = hdrs,
	    .body = body,
	    .body_len = sizeof(body) - 1,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = VASTAI_MAX_BODY,
	    .max_retries = LIST_RETRIES,
	    .backoff_ms = BACKOFF_MS,
	    .backoff_max_ms = BACKOFF_MAX_MS,
	};
	char herr[256], host[RGT_HOST_MAX];
	struct http_resp resp;
	char *url, *result = NULL;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!id || !platform_id_valid(id) ||
	    strspn(id, "0123456789") != strlen(id)) {
		snprintf(err, errlen, "vast.ai: not a vast.ai instance id");
		return -EINVAL;
	}
	if (asprintf(&url, "%s/api/v0/instances/request_logs/%s/", p->api_url,
		     id) < 0) {
		snprintf(err, errlen, "vast.ai: out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen,
			 "vast.ai did not answer the log request within %gs",
			 p->timeout_ms / 1000.0);
		goto out_resp;
	}
	if (rc) {
		transport_error(p, rc, herr, err, errlen);
		goto out_resp;
	}
	if (resp.status == 401 || resp.status == 403) {
		/* 403 is also "not your instance": say what vast.ai said */
		json_t *root =
		    resp.body.len
			? json_loadb(resp.body.data, resp.body.len, 0, NULL)
			: NULL;
		char *m = json_is_object(root) ? server_msg(root) : NULL;

		snprintf(err, errlen,
			 "vast.ai refused the log request (HTTP %ld)%s%s",
			 resp.status, m ? ": " : "", m ? m : "");
		restapi_mask_key(err, p->key);
		free(m);
		json_decref(root);
		rc = -EACCES;
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the log request", err, errlen);
		goto out_resp;
	}
	rc = vastai_parse_log_reply(resp.body.data, resp.body.len, &result,
				    host, sizeof(host), err, errlen);
	restapi_mask_key(err, p->key);
	if (rc)
		goto out_resp;
	http_resp_cleanup(&resp);
	free(url);
	rc = fetch_log_object(p, result, host, out, err, errlen);
	restapi_mask_key(err, p->key);
	explicit_bzero(result, strlen(result));
	free(result);
	return rc;
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

static int vastai_destroy(struct platform *p, const char *id, size_t step,
			  bool *maybe_sent, char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json",
			      "Content-Type: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "DELETE",
	    .headers = hdrs,
	    .body = "{}",
	    .body_len = 2,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = VASTAI_MAX_BODY,
	    .max_retries = 0, /* never blind-retry a destroy */
	};
	struct http_resp resp;
	json_t *root = NULL;
	char herr[256];
	char *url, *m;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	*maybe_sent = false;
	if (step != 0) {
		snprintf(err, errlen, "vast.ai: no destroy step %zu", step);
		return -EINVAL;
	}
	if (!id || !platform_id_valid(id) ||
	    strspn(id, "0123456789") != strlen(id)) {
		snprintf(err, errlen, "vast.ai: not a vast.ai instance id");
		return -EINVAL;
	}
	if (asprintf(&url, "%s/api/v0/instances/%s/", p->api_url, id) < 0) {
		snprintf(err, errlen, "vast.ai: out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	/* Only a request that never reached vast.ai surely did nothing. */
	*maybe_sent = !(rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
			rc == -ENETUNREACH);
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen,
			 "vast.ai did not answer the destroy of "
			 "instance %s within %gs; its state is unknown until "
			 "the next list",
			 id, p->timeout_ms / 1000.0);
		goto out_resp;
	}
	if (rc) {
		transport_error(p, rc, herr, err, errlen);
		goto out_resp;
	}
	if (resp.status == 404) {
		snprintf(err, errlen, "vast.ai has no instance %s (HTTP 404)",
			 id);
		rc = -ENOENT;
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the destroy", err, errlen);
		/* 4xx: refused before acting; 5xx: it may have acted */
		*maybe_sent = resp.status >= 500;
		goto out_resp;
	}
	root = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len,
			  0, NULL);
	if (json_is_object(root) &&
	    json_is_true(json_object_get(root, "success"))) {
		rc = 0;
		goto out_root;
	}
	if (json_is_object(root) &&
	    json_is_false(json_object_get(root, "success"))) {
		*maybe_sent = false;	/* an explicit refusal */
		m = server_msg(root);
		snprintf(err, errlen,
			 "vast.ai refused to destroy instance "
			 "%s: %s",
			 id, m ? m : "(no message)");
		free(m);
		restapi_mask_key(err, p->key);
		rc = -EIO;
		goto out_root;
	}
	snprintf(err, errlen,
		 "vast.ai: the reply to the destroy of instance "
		 "%s (HTTP %ld) does not say \"success\": true",
		 id, resp.status);
	rc = -EBADMSG;
out_root:
	json_decref(root);
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

const struct platform_ops vastai_platform_ops = {
    .name = "vastai",
    .open = vastai_open,
    .list = vastai_list,
    .caps = vastai_caps,
    .destroy = vastai_destroy,
    .log = vastai_log,
    .close = vastai_close,
};
