/*
 * autodl.c - the AutoDL adapter: the Pro developer API ("容器实例 Pro",
 * instance uuids "pro-..."), the raw developer token in the Authorization
 * header, power_off then release to end an instance (PLATFORMS.md 5).
 *
 * DESIGN
 *
 * - Translation only, no policy: list() pages through
 *   POST /api/v1/dev/instance/pro/list and turns the items into rgt_instance
 *   values; destroy() sends one verb of the sequence and reports what AutoDL
 *   said. When to destroy is decided in fs/teardown.c, which waits for the
 *   state each verb leads to before it sends the next.
 * - Success is HTTP 2xx *and* "code": "Success" (PLATFORMS.md 5.1). A 200
 *   with any other code is an error, for the list and for every verb.
 * - Paging is followed to the end (page_index 1..max_page), with a hard
 *   bound (AUTODL_MAX_PAGES) and one time budget for the whole list: a
 *   cursor that never ends is an error, never a hang. A page that answers
 *   for another page_index than asked is refused (a server ignoring the
 *   paging would repeat page 1). The list is `complete` only if every page
 *   parsed with nothing skipped, no id repeated and the count matches the
 *   reply's result_total.
 * - The endpoint comes from the list item itself (proxy_host + ssh_port,
 *   else the host and port of ssh_command), user root: one list call serves
 *   every instance, as SPEC.md asks; the per-instance snapshot call is not
 *   used. AutoDL ports change on re-create, so this is re-read every poll.
 * - Destroy is two verbs, each sent once and never retried here:
 *   power_off (the teardown then waits for `stopped`), then release. Release
 *   deletes / and /root/autodl-tmp, and AutoDL may refuse or misbehave on a
 *   box that is still shutting down, so this adapter checks it itself as
 *   well: release is sent only once a list has shown the instance as
 *   "shutdown" (not "shutting_down"), and says so through destroy_ready so
 *   the teardown polls for it without holding this adapter; asked to
 *   release a box not yet shown "shutdown", it refuses and sends nothing.
 *   Which verbs were accepted is the teardown journal's to remember
 *   (durably, across restarts: fs/teardown.c), not this adapter's.
 * - Secrets: the token travels only in the Authorization header. http:// is
 *   refused except for loopback (the tests). info_json drops root_password,
 *   jupyter_token and every field whose name looks like a secret,
 *   recursively; any server text copied into err has the token masked.
 *
 * Threads: a struct platform is used by one thread at a time (platform.h).
 *
 * Rejected: the status endpoint per instance (one call per instance per
 * poll; the list carries the status) and power_on (rgtfs never starts
 * boxes).
 */
#define _GNU_SOURCE /* asprintf, strcasestr */
#include "autodl.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "restapi.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_API_URL "https://api.autodl.com"
#define CONNECT_MS 10000L
#define TIMEOUT_MS 20000L
#define LIST_RETRIES 2
#define BACKOFF_MS 250L
#define BACKOFF_MAX_MS 2000L
#define STATUS_MSG_MAX 512
#define SERVER_MSG_MAX 300

/* What the last list said about one instance. */
struct seen {
	char id[RGT_ID_MAX];
	char raw[32];		/* the raw status, "" if none */
};

struct platform {
	char *ca_file;	/* the section's ca_file, or NULL */
	char *api_url;	/* "https://host[:port]", no trailing slash */
	char *key;	/* for masking echoes in messages */
	char *auth_hdr; /* "Authorization: TOKEN" (no Bearer) */
	char *ssh_user;
	long connect_ms;
	long timeout_ms;
	struct seen *seen;	/* from the last good list */
	size_t nseen;
};

/* ---- pure helpers ------------------------------------------------------ */

static const char *jstr(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool streq(const char *a, const char *b)
{
	return a && !strcasecmp(a, b);
}

/* "CODE: msg" of an AutoDL reply object, one line, or NULL. */
static char *server_msg(json_t *root)
{
	const char *code = jstr(json_object_get(root, "code"));
	const char *msg = jstr(json_object_get(root, "msg"));
	char *c, *m, *o = NULL;

	if (!msg)
		msg = jstr(json_object_get(root, "message"));
	c = restapi_one_line(code ? code : "(no code)",
			     code ? strlen(code) : 9, 64);
	m = restapi_one_line(msg ? msg : "", msg ? strlen(msg) : 0,
			     SERVER_MSG_MAX);
	if (c && m && asprintf(&o, "%s%s%s", c, m[0] ? ": " : "", m) < 0)
		o = NULL;
	free(c);
	free(m);
	return o;
}

enum rgt_state autodl_map_state(const char *s)
{
	if (!s)
		return RGT_ST_UNKNOWN;
	if (streq(s, "creating") || streq(s, "starting") ||
	    streq(s, "booting") || streq(s, "power_on") ||
	    streq(s, "powering_on"))
		return RGT_ST_PROVISIONING;
	if (streq(s, "running"))
		return RGT_ST_RUNNING;
	if (streq(s, "shutting_down") || streq(s, "shutdown"))
		return RGT_ST_STOPPED;
	if (streq(s, "releasing") || streq(s, "released"))
		return RGT_ST_DESTROYING;
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

		while (n && isspace((unsigned char)*s)) {
			s++;
			n--;
		}
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (!n || n > 5 || strspn(s, "0123456789") < n)
			return 0;
		p = strtoll(s, NULL, 10);
	}
	return p >= 1 && p <= 65535 ? (int)p : 0;
}

/* A host name or IP literal of @n bytes at @s (trimmed), no leading '-'
 * (it ends up in a paste-able ssh command line). */
static bool good_host(const char *s, size_t n, char out[RGT_HOST_MAX])
{
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
 * "ssh -p 12345 root@connect.westb.seetacloud.com" into @ep. Only this
 * shape is accepted (options other than -p refuse), because anything else
 * is a guess.
 */
static bool parse_ssh_command(const char *cmd, struct rgt_endpoint *ep)
{
	char buf[512], *tok[8], *save = NULL, *at;
	int nt = 0, port = 22;
	char *target = NULL;

	if (!cmd || strlen(cmd) >= sizeof(buf))
		return false;
	strcpy(buf, cmd);
	for (char *t = strtok_r(buf, " \t", &save); t && nt < 8;
	     t = strtok_r(NULL, " \t", &save))
		tok[nt++] = t;
	if (nt < 2 || strcmp(tok[0], "ssh"))
		return false;
	for (int i = 1; i < nt; i++) {
		if (!strcmp(tok[i], "-p") && i + 1 < nt) {
			json_t *j = json_string(tok[++i]);

			port = json_port(j);
			json_decref(j);
			if (!port)
				return false;
		} else if (tok[i][0] == '-' || target) {
			return false;
		} else {
			target = tok[i];
		}
	}
	if (!target)
		return false;
	at = strchr(target, '@');
	if (at) {
		size_t ul = at - target;

		if (!ul || ul >= RGT_USER_MAX ||
		    strspn(target, "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") <
			ul)
			return false;
		memcpy(ep->user, target, ul);
		ep->user[ul] = '\0';
		target = at + 1;
	}
	if (!good_host(target, strlen(target), ep->host))
		return false;
	ep->port = port;
	return true;
}

/* The SSH endpoint of a list item: proxy_host + ssh_port, else
 * ssh_command. User root unless ssh_command names another. */
static void find_endpoint(json_t *item, struct rgt_instance *ri)
{
	struct rgt_endpoint *ep = &ri->ep[0];
	json_t *h = json_object_get(item, "proxy_host");
	int port = json_port(json_object_get(item, "ssh_port"));

	ri->n_ep = 0;
	memset(ep, 0, sizeof(*ep));
	if (json_is_string(h) && port &&
	    good_host(json_string_value(h), json_string_length(h),
		      ep->host)) {
		ep->port = port;
		snprintf(ep->user, sizeof(ep->user), "root");
		ri->n_ep = 1;
		return;
	}
	memset(ep, 0, sizeof(*ep));
	if (parse_ssh_command(jstr(json_object_get(item, "ssh_command")),
			      ep)) {
		if (!ep->user[0])
			snprintf(ep->user, sizeof(ep->user), "root");
		ri->n_ep = 1;
		return;
	}
	memset(ep, 0, sizeof(*ep));
}

static bool secret_field(const char *k)
{
	static const char *const exact[] = {
	    "start_command", "env", "envs", "command_args",
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

static char *make_info_json(json_t *item, const struct rgt_instance *ri,
			    const char *ssh_user)
{
	json_t *copy, *meta, *eps;
	char *s = NULL, *t;
	size_t n;

	copy = json_deep_copy(item);
	if (!copy)
		return NULL;
	scrub(copy);
	eps = json_array();
	meta = json_pack("{s:s, s:s, s:s, s:o}", "platform", "autodl", "state",
			 rgt_state_name(ri->state), "ssh_user", ssh_user,
			 "endpoints", eps);
	if (!meta)
		goto out_copy;
	for (int i = 0; i < ri->n_ep; i++) {
		if (json_array_append_new(
			eps, json_pack("{s:s, s:s, s:i, s:s}", "kind", "direct",
				       "host", ri->ep[i].host, "port",
				       ri->ep[i].port, "user",
				       ri->ep[i].user))) {
			json_decref(meta);
			goto out_copy;
		}
	}
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

/*
 * The fleet view's facts from a pro/list item: req_gpu_amount and
 * started_at (RFC 3339 with its +08:00; one without a zone stays unknown,
 * the zone would be a guess). The model stays unknown: the item names the
 * GPU only by gpu_spec_uuid ("v-48g"), a spec id and not a model. The
 * rate too: payg_price is in CNY, in a unit the API does not document
 * ("payg_price": 2580), and no exchange rate is ours to pick.
 */
static void find_facts(json_t *item, struct rgt_facts *f)
{
	f->gpu_count =
	    restapi_json_count(json_object_get(item, "req_gpu_amount"));
	f->started = restapi_json_rfc3339(json_object_get(item, "started_at"));
}

/* One list item into @ri; -EINVAL (skip it, reason in @why) or -ENOMEM. */
static int parse_one(json_t *item, const char *ssh_user,
		     struct rgt_instance *ri, char *why, size_t whylen)
{
	json_t *st, *m;
	const char *raw, *msg;

	memset(ri, 0, sizeof(*ri));
	rgt_facts_init(&ri->facts);	/* zero would say "0 GPUs, $0/h" */
	if (!json_is_object(item)) {
		snprintf(why, whylen, "not an object");
		return -EINVAL;
	}
	raw = jstr(json_object_get(item, "uuid"));
	if (!raw || !platform_id_valid(raw)) {
		snprintf(why, whylen, "no usable \"uuid\"");
		return -EINVAL;
	}
	snprintf(ri->id, sizeof(ri->id), "%s", raw);
	st = json_object_get(item, "status");
	if (st && !json_is_string(st) && !json_is_null(st)) {
		snprintf(why, whylen, "\"status\" is not a string");
		return -EINVAL;
	}
	ri->state = autodl_map_state(jstr(st));
	find_facts(item, &ri->facts);
	m = json_object_get(item, "status_msg");
	msg = jstr(m) ? jstr(m) : jstr(st);
	ri->status_msg = restapi_one_line(msg ? msg : "",
					  msg ? strlen(msg) : 0, STATUS_MSG_MAX);
	if (!ri->status_msg)
		goto out_nomem;
	find_endpoint(item, ri);
	ri->info_json = make_info_json(item, ri, ssh_user);
	if (!ri->info_json)
		goto out_nomem;
	return 0;
out_nomem:
	restapi_instance_cleanup(ri);
	return -ENOMEM;
}

/* A non-negative JSON integer (or integral real) into @out. */
static bool json_count(json_t *v, long *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= 1000000000) {
		*out = (long)json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 &&
	    json_real_value(v) <= 1e9 &&
	    json_real_value(v) == floor(json_real_value(v))) {
		*out = (long)json_real_value(v);
		return true;
	}
	return false;
}

/* Parse a reply's envelope: a JSON object with "code": "Success". */
static int envelope(const char *body, size_t len, const char *what,
		    json_t **rootp, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	const char *code;

	*rootp = NULL;
	if (len > AUTODL_MAX_BODY) {
		snprintf(err, errlen, "AutoDL: response larger than %zu bytes",
			 AUTODL_MAX_BODY);
		return -EFBIG;
	}
	root = body ? json_loadb(body, len, 0, &je) : NULL;
	if (!root)
		return restapi_bad_json("AutoDL", body ? body : "",
					body ? len : 0, &je, err, errlen);
	if (!json_is_object(root)) {
		snprintf(err, errlen, "AutoDL: the reply to %s is not a JSON "
			 "object", what);
		json_decref(root);
		return -EBADMSG;
	}
	code = jstr(json_object_get(root, "code"));
	if (!code) {
		snprintf(err, errlen, "AutoDL: the reply to %s has no "
			 "\"code\"", what);
		json_decref(root);
		return -EBADMSG;
	}
	if (strcmp(code, "Success")) {
		char *m = server_msg(root);

		snprintf(err, errlen, "AutoDL refused %s: %s", what,
			 m ? m : code);
		free(m);
		json_decref(root);
		return -EIO;
	}
	*rootp = root;
	return 0;
}

int autodl_check_reply(const char *body, size_t len, const char *what,
		       char *err, size_t errlen)
{
	json_t *root;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	rc = envelope(body, len, what, &root, err, errlen);
	json_decref(root);
	return rc;
}

int autodl_parse_page(const char *body, size_t len, const char *ssh_user,
		      long want_page, struct rgt_instance_list *out,
		      char ***raw, struct autodl_page *pg, size_t *skipped,
		      char *err, size_t errlen)
{
	char why[96], first[160] = "";
	json_t *root, *data, *list;
	size_t n, i, base = out->n, bad = 0;
	struct rgt_instance *v;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	*skipped = 0;
	if (!ssh_user)
		ssh_user = "root";
	rc = envelope(body, len, "the instance list", &root, err, errlen);
	if (rc)
		return rc;
	data = json_object_get(root, "data");
	list = json_object_get(data, "list");
	if (!json_is_object(data) || !json_is_array(list)) {
		snprintf(err, errlen,
			 "AutoDL: the instance list reply has no data.list "
			 "array; keeping the last known instances");
		rc = -EBADMSG;
		goto out_root;
	}
	pg->page_index = want_page;
	if (json_object_get(data, "page_index") &&
	    (!json_count(json_object_get(data, "page_index"),
			 &pg->page_index) ||
	     pg->page_index != want_page)) {
		snprintf(err, errlen,
			 "AutoDL: asked for page %ld of the instance list, "
			 "the reply is for another page",
			 want_page);
		rc = -EBADMSG;
		goto out_root;
	}
	if (!json_count(json_object_get(data, "max_page"), &pg->max_page)) {
		snprintf(err, errlen,
			 "AutoDL: the instance list reply has no max_page, so "
			 "it cannot be told complete");
		rc = -EBADMSG;
		goto out_root;
	}
	if (!json_count(json_object_get(data, "result_total"),
			&pg->result_total))
		pg->result_total = -1;
	n = json_array_size(list);
	v = realloc(out->v, (base + n + 1) * sizeof(*v));
	if (!v)
		goto out_nomem;
	out->v = v;
	if (raw) {
		char **r = realloc(*raw, (base + n + 1) * sizeof(*r));

		if (!r)
			goto out_nomem;
		*raw = r;
	}
	for (i = 0; i < n; i++) {
		json_t *item = json_array_get(list, i);

		rc = parse_one(item, ssh_user, &out->v[out->n], why,
			       sizeof(why));
		if (rc == -ENOMEM)
			goto out_nomem;
		if (rc) {
			if (!bad++)
				snprintf(first, sizeof(first), "entry %zu: %s",
					 i, why);
			continue;
		}
		if (raw) {
			const char *s =
			    jstr(json_object_get(item, "status"));

			(*raw)[out->n] = strdup(s ? s : "");
			if (!(*raw)[out->n]) {
				restapi_instance_cleanup(&out->v[out->n]);
				goto out_nomem;
			}
		}
		out->n++;
	}
	*skipped = bad;
	if (n && out->n == base) {
		snprintf(err, errlen,
			 "AutoDL: none of the %zu instance(s) on page %ld "
			 "could be read; first: %s",
			 n, want_page, first);
		rc = -EBADMSG;
		goto out_root;
	}
	if (bad)
		snprintf(err, errlen,
			 "AutoDL: skipped %zu malformed instance(s) on page "
			 "%ld; first: %s",
			 bad, want_page, first);
	rc = 0;
	goto out_root;
out_nomem:
	snprintf(err, errlen, "AutoDL: out of memory");
	rc = -ENOMEM;
out_root:
	json_decref(root);
	return rc;
}

static void seen_free(struct platform *p)
{
	free(p->seen);
	p->seen = NULL;
	p->nseen = 0;
}

static void autodl_close(struct platform *p)
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
	seen_free(p);
	free(p->api_url);
	free(p->ca_file);
	free(p->ssh_user);
	free(p);
}

static int autodl_open(const struct rgt_section *sec, struct platform **out,
		       char *err, size_t errlen)
{
	struct platform *p;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "autodl: out of memory");
		return -ENOMEM;
	}
	rc = restapi_origin("autodl", sec->api_url, DEFAULT_API_URL,
			    &p->api_url, err, errlen);
	if (rc)
		goto out_free;
	rc = restapi_timeout("autodl", sec, TIMEOUT_MS, &p->timeout_ms, err,
			     errlen);
	if (rc)
		goto out_free;
	rc = restapi_ca_file("autodl", sec, &p->ca_file, err, errlen);
	if (rc)
		goto out_free;
	p->connect_ms = p->timeout_ms < CONNECT_MS ? p->timeout_ms : CONNECT_MS;
	p->ssh_user =
	    strdup(sec->ssh_user && sec->ssh_user[0] ? sec->ssh_user : "root");
	if (!p->ssh_user) {
		rc = -ENOMEM;
		snprintf(err, errlen, "autodl: out of memory");
		goto out_free;
	}
	p->key = platform_load_key(sec, NULL, err, errlen);
	if (!p->key) {
		rc = -ENOKEY;
		goto out_free;
	}
	/* The developer token as is: AutoDL takes no "Bearer". */
	if (asprintf(&p->auth_hdr, "Authorization: %s", p->key) < 0) {
		p->auth_hdr = NULL;
		rc = -ENOMEM;
		snprintf(err, errlen, "autodl: out of memory");
		goto out_free;
	}
	*out = p;
	return 0;
out_free:
	autodl_close(p);
	return rc;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int transport_error(struct platform *p, int rc, const char *herr,
			   long budget_ms, char *err, size_t errlen)
{
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "AutoDL did not answer within %gs",
			 budget_ms / 1000.0);
	else if (rc == -EFBIG)
		snprintf(err, errlen, "AutoDL: response larger than %zu bytes",
			 AUTODL_MAX_BODY);
	else
		snprintf(err, errlen, "AutoDL: %s", herr);
	restapi_mask_key(err, p->key);
	return rc;
}

static int status_error(struct platform *p, const struct http_resp *resp,
			const char *what, char *err, size_t errlen)
{
	long st = resp->status;
	json_t *root = NULL;
	char *m = NULL;

	if (st == 401 || st == 403) {
		snprintf(err, errlen,
			 "AutoDL refused the developer token (HTTP %ld)", st);
		return -EACCES;
	}
	if (st == 429) {
		snprintf(err, errlen, "AutoDL is rate-limiting %s (HTTP 429)",
			 what);
		return -EAGAIN;
	}
	if (resp->body.len)
		root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (json_is_object(root))
		m = server_msg(root);
	snprintf(err, errlen, "AutoDL answered HTTP %ld to %s%s%s", st, what,
		 m ? ": " : "", m ? m : "");
	restapi_mask_key(err, p->key);
	free(m);
	json_decref(root);
	return -EIO;
}

/*
 * @method @path (a query carries only the uuid, never a secret) with @body
 * (NULL: none); 0 with the response, or -errno with a reason.
 */
static int request(struct platform *p, const char *method, const char *path,
		   const char *body, long timeout_ms, int retries,
		   struct http_resp *resp, char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json",
			      body ? "Content-Type: application/json" : NULL,
			      NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = method,
	    .headers = hdrs,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .connect_timeout_ms =
		p->connect_ms < timeout_ms ? p->connect_ms : timeout_ms,
	    .timeout_ms = timeout_ms,
	    .max_body = AUTODL_MAX_BODY,
	    .max_retries = retries,
	    .backoff_ms = BACKOFF_MS,
	    .backoff_max_ms = BACKOFF_MAX_MS,
	};
	char herr[256], *url;
	int rc;

	if (asprintf(&url, "%s%s", p->api_url, path) < 0) {
		memset(resp, 0, sizeof(*resp));
		snprintf(err, errlen, "AutoDL: out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, resp, herr, sizeof(herr));
	free(url);
	if (rc)
		return transport_error(p, rc, herr, timeout_ms, err, errlen);
	return 0;
}

static int post(struct platform *p, const char *path, const char *body,
		long timeout_ms, int retries, struct http_resp *resp,
		char *err, size_t errlen)
{
	return request(p, "POST", path, body, timeout_ms, retries, resp, err,
		       errlen);
}

static int get(struct platform *p, const char *path_query,
	       struct http_resp *resp, char *err, size_t errlen)
{
	return request(p, "GET", path_query, NULL, p->timeout_ms,
		       LIST_RETRIES, resp, err, errlen);
}

int autodl_parse_password(char *body, size_t len, char **out, char *err,
			  size_t errlen)
{
	json_t *root, *pw;
	const char *v;
	int rc;

	*out = NULL;
	rc = envelope(body, len, "the instance snapshot", &root, err, errlen);
	if (rc)
		return rc;
	pw = json_object_get(json_object_get(root, "data"), "root_password");
	v = jstr(pw);
	if (!v || !*v) {
		snprintf(err, errlen, "AutoDL: the snapshot has no "
			 "root_password");
		rc = -ENOENT;
	} else if (strlen(v) != json_string_length(pw) || strlen(v) > 1024 ||
		   strpbrk(v, "\r\n")) {
		snprintf(err, errlen, "AutoDL: the snapshot's root_password "
			 "is not usable");
		rc = -EBADMSG;
	} else if (!(*out = strdup(v))) {
		rc = -ENOMEM;
	}
	/* jansson's copy: wiped in place before it is freed */
	if (v)
		explicit_bzero((char *)v, strlen(v));
	json_decref(root);
	return rc;
}

/*
 * The instance snapshot's root_password, for logins (platform.h). One GET
 * per call; the caller (remote.c) asks once per instance and wipes it.
 */
static int autodl_password(struct platform *p, const char *id, char **out,
			   char *err, size_t errlen)
{
	struct http_resp resp;
	char path[160];
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!id || !platform_id_valid(id)) {
		snprintf(err, errlen, "AutoDL: not an instance uuid");
		return -EINVAL;
	}
	snprintf(path, sizeof(path),
		 "/api/v1/dev/instance/pro/snapshot?instance_uuid=%s", id);
	rc = get(p, path, &resp, err, errlen);
	if (!rc && (resp.status < 200 || resp.status > 299))
		rc = status_error(p, &resp, "the instance snapshot", err,
				  errlen);
	else if (!rc)
		rc = autodl_parse_password(resp.body.data, resp.body.len, out,
					   err, errlen);
	restapi_mask_key(err, p->key);
	if (resp.body.data)
		explicit_bzero(resp.body.data, resp.body.len);
	http_resp_cleanup(&resp);
	return rc;
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rgt_instance *)a)->id,
		      ((const struct rgt_instance *)b)->id);
}

/*
 * Every page of the list into @out, and the raw statuses into p->seen.
 * Bounded by AUTODL_MAX_PAGES and one budget of 3 x api_timeout.
 */
static int autodl_list(struct platform *p, struct rgt_instance_list *out,
		       char *err, size_t errlen)
{
	long deadline = now_ms() + 3 * p->timeout_ms;
	struct autodl_page pg = {0};
	char note[300] = "", body[96];
	char **raw = NULL;
	size_t skipped_all = 0, dup = 0;
	bool shifted = false;
	long total = -1;
	int rc = 0;

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	for (long page = 1;; page++) {
		struct http_resp resp;
		size_t skipped = 0;
		long left = deadline - now_ms();

		if (page > AUTODL_MAX_PAGES) {
			snprintf(err, errlen,
				 "AutoDL: the instance list did not end "
				 "within %d pages; keeping the last known "
				 "instances",
				 AUTODL_MAX_PAGES);
			rc = -EBADMSG;
			goto out_fail;
		}
		if (left <= 0) {
			snprintf(err, errlen,
				 "AutoDL: the instance list did not finish "
				 "within %gs (%ld pages read)",
				 3 * p->timeout_ms / 1000.0, page - 1);
			rc = -ETIMEDOUT;
			goto out_fail;
		}
		snprintf(body, sizeof(body),
			 "{\"page_index\":%ld,\"page_size\":%d}", page,
			 AUTODL_PAGE_SIZE);
		rc = post(p, "/api/v1/dev/instance/pro/list", body,
			  left < p->timeout_ms ? left : p->timeout_ms,
			  LIST_RETRIES, &resp, err, errlen);
		if (!rc && (resp.status < 200 || resp.status > 299))
			rc = status_error(p, &resp, "the instance list", err,
					  errlen);
		if (!rc)
			rc = autodl_parse_page(resp.body.data, resp.body.len,
					       p->ssh_user, page, out, &raw,
					       &pg, &skipped, err, errlen);
		http_resp_cleanup(&resp);
		restapi_mask_key(err, p->key);
		if (rc)
			goto out_fail;
		if (skipped && !note[0])
			snprintf(note, sizeof(note), "%s", err);
		skipped_all += skipped;
		/* A total that changes between pages: the list shifted
		 * under the paging and an entry may have slid past. */
		if (page == 1)
			total = pg.result_total;
		else if (pg.result_total != total)
			shifted = true;
		if (page >= pg.max_page)
			break;
	}
	/* Sort by id; a repeated id (the list shifted under the paging)
	 * keeps its first entry and makes the list incomplete. */
	if (out->n > 1) {
		struct { struct rgt_instance ri; char *raw; } *t;
		size_t i, k = 0;

		t = malloc(out->n * sizeof(*t));
		if (!t) {
			snprintf(err, errlen, "AutoDL: out of memory");
			rc = -ENOMEM;
			goto out_fail;
		}
		for (i = 0; i < out->n; i++) {
			t[i].ri = out->v[i];
			t[i].raw = raw[i];
		}
		/* ri is the first member: id_cmp works on the pair. */
		qsort(t, out->n, sizeof(*t), id_cmp);
		for (i = 0; i < out->n; i++) {
			if (k && !strcmp(out->v[k - 1].id, t[i].ri.id)) {
				restapi_instance_cleanup(&t[i].ri);
				free(t[i].raw);
				dup++;
				continue;
			}
			out->v[k] = t[i].ri;
			raw[k] = t[i].raw;
			k++;
		}
		free(t);
		out->n = k;
	}
	seen_free(p);
	p->seen = calloc(out->n ? out->n : 1, sizeof(*p->seen));
	if (p->seen) {
		p->nseen = out->n;
		for (size_t i = 0; i < out->n; i++) {
			snprintf(p->seen[i].id, sizeof(p->seen[i].id), "%s",
				 out->v[i].id);
			snprintf(p->seen[i].raw, sizeof(p->seen[i].raw), "%s",
				 raw[i]);
		}
	}
	for (size_t i = 0; i < out->n; i++)
		free(raw[i]);
	free(raw);
	out->complete = !skipped_all && !dup && !shifted &&
			(total < 0 || (size_t)total == out->n);
	if (note[0])
		snprintf(err, errlen, "%s", note);
	else if (dup)
		snprintf(err, errlen, "AutoDL: the instance list repeated %zu "
			 "id(s) across pages", dup);
	else if (shifted)
		snprintf(err, errlen, "AutoDL: the instance list changed while "
			 "it was paged; it is not taken as complete this time");
	else if (!out->complete)
		snprintf(err, errlen,
			 "AutoDL: the instance list says %ld instance(s), its "
			 "pages held %zu",
			 total, out->n);
	return 0;
out_fail:
	for (size_t i = 0; raw && i < out->n; i++)
		free(raw[i]);
	free(raw);
	rgt_instance_list_free(out);
	out->complete = false;
	return rc;
}

static const struct platform_verb autodl_verbs[] = {
    {"power_off", RGT_ST_STOPPED},
    {"release", RGT_ST_UNKNOWN},
};

static void autodl_caps(struct platform *p, struct platform_caps *out)
{
	(void)p;
	*out = (struct platform_caps){
	    .destroy = autodl_verbs,
	    .n_destroy = 2,
	    .confirm_by_list = true,
	};
}

/* The raw status the last list showed for @id: NULL when not listed. */
static const char *seen_raw(struct platform *p, const char *id)
{
	for (size_t i = 0; i < p->nseen; i++)
		if (!strcmp(p->seen[i].id, id))
			return p->seen[i].raw;
	return NULL;
}

/* Release only once the last list showed "shutdown" (platform.h). */
static int autodl_destroy_ready(struct platform *p, const char *id,
				size_t step)
{
	const char *raw = seen_raw(p, id);
	return step != 1 || (raw && !strcmp(raw, "shutdown"));
}

static int autodl_destroy(struct platform *p, const char *id, size_t step,
			  bool *maybe_sent, char *err, size_t errlen)
{
	const char *verb;
	struct http_resp resp;
	char body[160];
	char path[64];
	int rc;

	if (err && errlen)
		err[0] = '\0';
	*maybe_sent = false;
	if (!id || !platform_id_valid(id)) {
		snprintf(err, errlen, "AutoDL: not an instance uuid");
		return -EINVAL;
	}
	if (step >= 2) {
		snprintf(err, errlen, "AutoDL: no destroy step %zu", step);
		return -EINVAL;
	}
	verb = autodl_verbs[step].name;
	if (step == 1) {
		/* Release deletes the disks: never before a list showed
		 * the box "shutdown" (the teardown polls until it does). */
		if (!autodl_destroy_ready(p, id, step)) {
			const char *raw = seen_raw(p, id);
			snprintf(err, errlen,
				 "AutoDL: release of %s not sent: the last "
				 "list showed it %s, not \"shutdown\"", id,
				 raw ? raw : "not listed");
			return -EAGAIN;
		}
	}
	snprintf(path, sizeof(path), "/api/v1/dev/instance/pro/%s", verb);
	snprintf(body, sizeof(body), "{\"instance_uuid\":\"%s\"}", id);
	rc = post(p, path, body, p->timeout_ms, 0 /* never blind-retry */,
		  &resp, err, errlen);
	if (rc) {
		/* Only a request that never reached AutoDL surely did
		 * nothing. */
		*maybe_sent = !(rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
				rc == -ENETUNREACH || rc == -ENOMEM);
		if (rc == -ETIMEDOUT)
			snprintf(err, errlen,
				 "AutoDL did not answer %s of %s within %gs; "
				 "its state is unknown until the next list",
				 verb, id, p->timeout_ms / 1000.0);
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		char what[64];

		snprintf(what, sizeof(what), "%s", verb);
		rc = status_error(p, &resp, what, err, errlen);
		/* 4xx: refused before acting; 5xx: it may have acted */
		*maybe_sent = resp.status >= 500;
		goto out_resp;
	}
	rc = autodl_check_reply(resp.body.data, resp.body.len, verb, err,
				errlen);
	restapi_mask_key(err, p->key);
	if (rc == -EIO) {
		/* HTTP 2xx with another code: an explicit refusal. */
		*maybe_sent = false;
	} else if (rc) {
		/* 2xx that does not say: it may have acted. */
		*maybe_sent = true;
	}
out_resp:
	http_resp_cleanup(&resp);
	return rc;
}

const struct platform_ops autodl_platform_ops = {
    .name = "autodl",
    .open = autodl_open,
    .list = autodl_list,
    .caps = autodl_caps,
    .destroy = autodl_destroy,
    .destroy_ready = autodl_destroy_ready,
    .password = autodl_password,
    .close = autodl_close,
};
