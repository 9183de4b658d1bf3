/*
 * paperspace.c - the Paperspace Core machines adapter: /v1 REST, Bearer
 * key, DELETE /machines/{id} to end a machine (PLATFORMS.md section 4).
 *
 * DESIGN
 *
 * - Translation only, no policy: list() follows GET /v1/machines page by
 *   page ({"hasMore", "items", "nextPage"}; the cursor goes back as
 *   ?after=) until hasMore is false, and destroy() sends one DELETE.
 * - Paging is bounded three ways: PAPERSPACE_MAX_PAGES pages, one time
 *   budget (api_timeout) for the whole walk, and a cursor that repeats is
 *   an error. A page that never ends is an error, never a hang and never
 *   a partial list passed off as complete: if any page fails, the list
 *   fails (the fleet then shows the last known states, then `unknown`).
 * - The shapes differ by call (PLATFORMS.md 8.11): the list is "items"
 *   with a cursor, a get is the bare machine, an action wraps it in
 *   "data". Errors may come with HTTP 200 ({"error": ...} or
 *   {"message": ...} without "items"): that is -EIO, never an empty list.
 * - States per PLATFORMS.md section 7. A machine still listed with
 *   dtDeleted set is shown as destroying: listed is never gone, and the
 *   teardown waits until the list drops it (confirm_by_list).
 * - Endpoint: publicIp, port 22, login "paperspace" (ML-in-a-Box) unless
 *   the section names its own ssh_user. No public IP: no endpoint.
 * - Orphans: stopping or deleting a machine leaves a static IP and its
 *   snapshots billing (PLATFORMS.md 4.3). list() remembers each machine's
 *   static IP (bounded, MEMO_MAX machines); orphans() reports it and lists
 *   GET /v1/snapshots (paged, bounded) for the machine's snapshots. It
 *   deletes nothing. If the snapshots cannot be listed, that is said in a
 *   line of its own next to the static IP, rather than failing and losing
 *   the IP from the teardown report.
 * - destroy() is never retried, not even on a timeout.
 *
 * Threads: a struct platform is used by one thread at a time (platform.h).
 */
#define _GNU_SOURCE /* asprintf */
#include "paperspace.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "restapi.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define KIND "paperspace"
#define VENDOR "Paperspace"
#define DEFAULT_API_URL "https://api.paperspace.com"
#define DEFAULT_USER "paperspace"
#define CONNECT_MS 10000L
#define TIMEOUT_MS 20000L
#define PAGE_RETRIES 2
#define BACKOFF_MS 250L
#define BACKOFF_MAX_MS 2000L
#define STATUS_MSG_MAX 512
#define SERVER_MSG_MAX 300
#define MEMO_MAX 1024
#define ORPHANS_MAX ((size_t)16 << 10)

struct memo {
	char id[RGT_ID_MAX];
	char *lines;
	unsigned long seen;
};

struct platform {
	char *ca_file;	/* the section's ca_file, or NULL */
	char *api_url;
	char *key;
	char *auth_hdr; /* "Authorization: Bearer KEY" */
	char *ssh_user;
	long connect_ms;
	long timeout_ms;
	struct memo *memo;
	size_t n_memo;
	unsigned long gen;
};

/* ---- pure parts ----------------------------------------------------------- */

static const char *jstr(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

enum rgt_state paperspace_map_state(json_t *m)
{
	static const struct {
		const char *raw;
		enum rgt_state st;
	} map[] = {
	    {"provisioning", RGT_ST_PROVISIONING},
	    {"starting", RGT_ST_PROVISIONING},
	    {"restarting", RGT_ST_PROVISIONING},
	    {"upgrading", RGT_ST_PROVISIONING},
	    {"serviceready", RGT_ST_RUNNING},
	    {"ready", RGT_ST_RUNNING},
	    {"stopping", RGT_ST_STOPPED},
	    {"off", RGT_ST_STOPPED},
	};
	json_t *del;
	const char *s;

	if (!json_is_object(m))
		return RGT_ST_UNKNOWN;
	del = json_object_get(m, "dtDeleted");
	if (del && !json_is_null(del) &&
	    !(json_is_string(del) && !json_string_length(del)))
		return RGT_ST_DESTROYING;
	s = jstr(json_object_get(m, "state"));
	if (!s)
		return RGT_ST_UNKNOWN;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(s, map[i].raw))
			return map[i].st;
	return RGT_ST_UNKNOWN;
}

/* The text of an error body ({"error": ...} or {"message": ...}), one line,
 * or NULL when @root does not look like one. */
static char *error_msg(json_t *root)
{
	json_t *e = json_object_get(root, "error");
	json_t *m = json_object_get(root, "message");
	const char *s = NULL;

	if (json_is_object(e)) {
		m = json_object_get(e, "message");
		if (!json_is_string(m))
			m = json_object_get(e, "details");
		s = jstr(m);
		if (!s)
			s = jstr(json_object_get(e, "code"));
	} else if (json_is_string(e)) {
		s = json_string_value(e);
	} else if (json_is_true(e) || json_is_string(m)) {
		s = jstr(m);
	}
	if (!s && !(e && !json_is_null(e)))
		return NULL;
	if (!s || !s[0])
		s = "(no message)";
	return restapi_one_line(s, strlen(s), SERVER_MSG_MAX);
}

/* Root object of a reply; -EIO for an error body. */
static int load_root(const char *body, size_t len, const char *want,
		     json_t **root, char *err, size_t errlen)
{
	json_error_t je;
	char *m;

	*root = NULL;
	if (len > PAPERSPACE_MAX_BODY) {
		snprintf(err, errlen, VENDOR ": response larger than %zu bytes",
			 PAPERSPACE_MAX_BODY);
		return -EFBIG;
	}
	*root = body ? json_loadb(body, len, 0, &je) : NULL;
	if (!*root)
		return restapi_bad_json(VENDOR, body, body ? len : 0, &je, err,
					errlen);
	if (!json_is_object(*root)) {
		snprintf(err, errlen, VENDOR ": response is not a JSON object");
		json_decref(*root);
		*root = NULL;
		return -EBADMSG;
	}
	if (!json_object_get(*root, want) && (m = error_msg(*root))) {
		snprintf(err, errlen, VENDOR ": request failed: %s", m);
		free(m);
		json_decref(*root);
		*root = NULL;
		return -EIO;
	}
	return 0;
}

/* hasMore / nextPage of a page into @more / @cursor. */
static int page_cursor(json_t *root, bool *more,
		       char cursor[PAPERSPACE_CURSOR_MAX], char *err,
		       size_t errlen)
{
	json_t *hm = json_object_get(root, "hasMore");
	const char *c = jstr(json_object_get(root, "nextPage"));

	cursor[0] = '\0';
	*more = json_is_true(hm);
	/* Missing counts as an error, not as "no more": a list that stops
	 * early must never look complete (the rest would show gone). */
	if (!json_is_boolean(hm)) {
		snprintf(err, errlen, VENDOR ": \"hasMore\" is %s",
			 hm ? "not a boolean" : "missing");
		return -EBADMSG;
	}
	if (!*more)
		return 0;
	if (!c || !c[0] || strlen(c) >= PAPERSPACE_CURSOR_MAX) {
		snprintf(err, errlen,
			 VENDOR ": a page says hasMore but has no usable "
				"\"nextPage\" cursor");
		return -EBADMSG;
	}
	for (const char *q = c; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f) {
			snprintf(err, errlen,
				 VENDOR ": the \"nextPage\" cursor has "
					"control characters");
			return -EBADMSG;
		}
	snprintf(cursor, PAPERSPACE_CURSOR_MAX, "%s", c);
	return 0;
}

static char *status_line(json_t *m)
{
	const char *st = jstr(json_object_get(m, "state"));
	const char *mt = jstr(json_object_get(m, "machineType"));
	const char *rg = jstr(json_object_get(m, "region"));
	json_t *del = json_object_get(m, "dtDeleted");
	char *s = NULL, *o;

	if (asprintf(&s, "%s%s%s%s%s%s%s", st ? st : "",
		     mt || rg ? " (" : "", mt ? mt : "", mt && rg ? " in " : "",
		     rg ? rg : "", mt || rg ? ")" : "",
		     json_is_string(del) && json_string_length(del)
			 ? "; deleted"
			 : "") < 0)
		return NULL;
	o = restapi_one_line(s, strlen(s), STATUS_MSG_MAX);
	free(s);
	return o;
}

/*
 * Model and count from accelerators [{name, count, memory}]: the count is
 * their sum, the model their name when they all share one. An empty list
 * says the machine has none (0, model unknown: a CPU machine has no GPU
 * to name); an entry without a string name or an integer count makes
 * both unknown, since the sum would then be a guess.
 */
static void accel_facts(json_t *acc, struct rgt_facts *f)
{
	const char *name = NULL;
	bool same = true;
	int sum = 0;

	for (size_t i = 0; i < json_array_size(acc); i++) {
		json_t *a = json_array_get(acc, i);
		const char *nm = NULL;
		int c = -1;

		if (json_is_object(a)) {
			nm = jstr(json_object_get(a, "name"));
			c = restapi_json_count(json_object_get(a, "count"));
		}
		if (!nm || c < 0 || c > INT_MAX - sum)
			return;
		if (name && strcmp(name, nm))
			same = false;
		if (!name)
			name = nm;
		sum += c;
	}
	f->gpu_count = sum;
	if (name && same)
		rgt_facts_set_gpu(f, name, strlen(name));
}

/*
 * The fleet view's facts. GPU model and count from accelerators; without
 * that list, the model is machineType ("A100-80G", Paperspace's name for
 * what is rented) and the count unknown. The rate: usageRate only where
 * it is a number (the API names a rate plan there, "A100-80G Hourly",
 * which is not a price), and only while the machine runs (stop ends the
 * compute charge; what storage and an IP bill then is not in the answer).
 * started stays unknown: dtCreated is the creation, and a Machine has no
 * field saying when it last started.
 */
static void find_facts(json_t *m, enum rgt_state st, struct rgt_facts *f)
{
	json_t *acc = json_object_get(m, "accelerators");

	if (json_is_array(acc))
		accel_facts(acc, f);
	else
		restapi_facts_gpu(f, json_object_get(m, "machineType"));
	if (st == RGT_ST_RUNNING)
		f->usd_per_hour =
		    restapi_json_rate(json_object_get(m, "usageRate"), false);
}

static int parse_one(json_t *m, const char *ssh_user, struct rgt_instance *ri,
		     char *why, size_t whylen)
{
	const char *id;

	memset(ri, 0, sizeof(*ri));
	rgt_facts_init(&ri->facts);	/* zero would say "0 GPUs, $0/h" */
	if (!json_is_object(m)) {
		snprintf(why, whylen, "not an object");
		return -EINVAL;
	}
	id = jstr(json_object_get(m, "id"));
	if (!id || strlen(id) >= RGT_ID_MAX || !platform_id_valid(id)) {
		snprintf(why, whylen, "no valid string \"id\"");
		return -EINVAL;
	}
	snprintf(ri->id, sizeof(ri->id), "%s", id);
	ri->state = paperspace_map_state(m);
	find_facts(m, ri->state, &ri->facts);
	if (restapi_json_host(json_object_get(m, "publicIp"), ri->ep[0].host)) {
		ri->ep[0].port = 22;
		snprintf(ri->ep[0].user, sizeof(ri->ep[0].user), "%s",
			 ssh_user);
		ri->n_ep = 1;
	}
	ri->status_msg = status_line(m);
	if (!ri->status_msg)
		goto out_nomem;
	ri->info_json = restapi_info_json(m, KIND, ri);
	if (!ri->info_json)
		goto out_nomem;
	return 0;
out_nomem:
	restapi_instance_cleanup(ri);
	return -ENOMEM;
}

int paperspace_parse_page(const char *body, size_t len, const char *ssh_user,
			  struct rgt_instance_list *out, bool *more,
			  char cursor[PAPERSPACE_CURSOR_MAX], size_t *skipped,
			  char *err, size_t errlen)
{
	struct rgt_instance *nv;
	json_t *root, *items;
	char why[96];
	size_t n, i;
	int rc;

	*more = false;
	cursor[0] = '\0';
	if (err && errlen && !*skipped)
		err[0] = '\0';
	if (!ssh_user)
		ssh_user = DEFAULT_USER;
	rc = load_root(body, len, "items", &root, err, errlen);
	if (rc)
		return rc;
	items = json_object_get(root, "items");
	if (!json_is_array(items)) {
		snprintf(err, errlen,
			 VENDOR ": \"items\" is %s, not a list; keeping the "
				"last known machines",
			 !items ? "missing" : json_is_null(items) ? "null"
								  : "not a list");
		rc = -EBADMSG;
		goto out_root;
	}
	rc = page_cursor(root, more, cursor, err, errlen);
	if (rc)
		goto out_root;
	n = json_array_size(items);
	nv = realloc(out->v, (out->n + n + 1) * sizeof(*nv));
	if (!nv)
		goto out_nomem;
	out->v = nv;
	for (i = 0; i < n; i++) {
		rc = parse_one(json_array_get(items, i), ssh_user,
			       &out->v[out->n], why, sizeof(why));
		if (rc == -ENOMEM)
			goto out_nomem;
		if (rc) {
			if (!(*skipped)++)
				snprintf(err, errlen,
					 VENDOR ": skipped a malformed "
						"machine: entry %zu: %s",
					 i, why);
			continue;
		}
		out->n++;
	}
	rc = 0;
	goto out_root;
out_nomem:
	snprintf(err, errlen, VENDOR ": out of memory");
	rc = -ENOMEM;
out_root:
	json_decref(root);
	return rc;
}

int paperspace_orphan_lines(json_t *m, struct buf *out)
{
	const char *type = jstr(json_object_get(m, "publicIpType"));
	char ip[RGT_HOST_MAX];

	if (!type || strcasecmp(type, "static") ||
	    !restapi_json_host(json_object_get(m, "publicIp"), ip))
		return 0;
	return buf_appendf(out,
			   "static IP %s: stays claimed after the machine is "
			   "deleted and bills until released "
			   "(DELETE /public-ips/%s)\n",
			   ip, ip);
}

int paperspace_parse_snapshots(const char *body, size_t len, const char *id,
			       struct buf *out, bool *more,
			       char cursor[PAPERSPACE_CURSOR_MAX], char *err,
			       size_t errlen)
{
	json_t *root, *items, *s;
	size_t i;
	int rc;

	*more = false;
	cursor[0] = '\0';
	rc = load_root(body, len, "items", &root, err, errlen);
	if (rc)
		return rc;
	items = json_object_get(root, "items");
	if (!json_is_array(items)) {
		snprintf(err, errlen, VENDOR ": the snapshot list has no "
					     "\"items\" list");
		rc = -EBADMSG;
		goto out_root;
	}
	rc = page_cursor(root, more, cursor, err, errlen);
	if (rc)
		goto out_root;
	json_array_foreach(items, i, s) {
		const char *sid = jstr(json_object_get(s, "id"));
		const char *mid = jstr(json_object_get(s, "machineId"));
		const char *name = jstr(json_object_get(s, "name"));
		char *n1 = NULL, *n2 = NULL;

		if (!sid || !mid || strcmp(mid, id))
			continue;
		n1 = restapi_one_line(sid, strlen(sid), 128);
		n2 = name ? restapi_one_line(name, strlen(name), 128) : NULL;
		rc = n1 ? buf_appendf(out,
				      "snapshot %s%s%s%s: bills until deleted "
				      "(DELETE /snapshots/%s)\n",
				      n1, n2 ? " (" : "", n2 ? n2 : "",
				      n2 ? ")" : "", n1)
			: -ENOMEM;
		free(n1);
		free(n2);
		if (rc)
			goto out_root;
	}
out_root:
	json_decref(root);
	return rc;
}

int paperspace_parse_delete(const char *body, size_t len, const char *id,
			    bool *refused, char *err, size_t errlen)
{
	json_t *root, *data;
	const char *mid;
	int rc;

	*refused = false;
	rc = load_root(body, len, "data", &root, err, errlen);
	if (rc == -EIO)
		*refused = true;
	if (rc)
		return rc;
	data = json_object_get(root, "data");
	mid = json_is_object(data) ? jstr(json_object_get(data, "id")) : NULL;
	rc = mid && !strcmp(mid, id) ? 0 : -EBADMSG;
	if (rc)
		snprintf(err, errlen,
			 VENDOR ": the reply to the DELETE of machine %s does "
				"not name it under \"data\"",
			 id);
	json_decref(root);
	return rc;
}

/* ---- the adapter ------------------------------------------------------- */

static void paperspace_close(struct platform *p)
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
	for (size_t i = 0; i < p->n_memo; i++)
		free(p->memo[i].lines);
	free(p->memo);
	free(p->api_url);
	free(p->ca_file);
	free(p->ssh_user);
	free(p);
}

static int paperspace_open(const struct rgt_section *sec,
			   struct platform **out, char *err, size_t errlen)
{
	struct platform *p;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out_nomem;
	rc = restapi_origin(KIND, sec->api_url, DEFAULT_API_URL, &p->api_url,
			    err, errlen);
	if (rc)
		goto out_free;
	rc = restapi_timeout(KIND, sec, TIMEOUT_MS, &p->timeout_ms, err,
			     errlen);
	if (rc)
		goto out_free;
	rc = restapi_ca_file(KIND, sec, &p->ca_file, err, errlen);
	if (rc)
		goto out_free;
	p->connect_ms = p->timeout_ms < CONNECT_MS ? p->timeout_ms : CONNECT_MS;
	p->ssh_user = strdup(restapi_ssh_user(sec, DEFAULT_USER));
	if (!p->ssh_user)
		goto out_nomem;
	if (strlen(p->ssh_user) >= RGT_USER_MAX) {
		snprintf(err, errlen, KIND ": ssh_user is too long");
		rc = -EINVAL;
		goto out_free;
	}
	p->key = platform_load_key(sec, NULL, err, errlen);
	if (!p->key) {
		rc = -ENOKEY;
		goto out_free;
	}
	if (asprintf(&p->auth_hdr, "Authorization: Bearer %s", p->key) < 0) {
		p->auth_hdr = NULL;
		goto out_nomem;
	}
	*out = p;
	return 0;
out_nomem:
	snprintf(err, errlen, KIND ": out of memory");
	rc = -ENOMEM;
out_free:
	paperspace_close(p);
	return rc;
}

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int transport_error(struct platform *p, int rc, const char *herr,
			   char *err, size_t errlen)
{
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, VENDOR " did not answer within %gs",
			 p->timeout_ms / 1000.0);
	else if (rc == -EFBIG)
		snprintf(err, errlen, VENDOR ": response larger than %zu bytes",
			 PAPERSPACE_MAX_BODY);
	else
		snprintf(err, errlen, VENDOR ": %s", herr);
	return rc;
}

static int status_error(struct platform *p, const struct http_resp *resp,
			const char *what, char *err, size_t errlen)
{
	long st = resp->status;
	json_t *root = NULL;
	char *m = NULL;
	int rc;

	if (resp->body.len && resp->body.len <= PAPERSPACE_MAX_BODY)
		root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (json_is_object(root))
		m = error_msg(root);
	if (st == 401 || st == 403) {
		snprintf(err, errlen, VENDOR " refused the API key (HTTP %ld)",
			 st);
		rc = -EACCES;
	} else if (st == 429) {
		snprintf(err, errlen, VENDOR " is rate-limiting %s (HTTP 429)",
			 what);
		rc = -EAGAIN;
	} else {
		snprintf(err, errlen, VENDOR " answered HTTP %ld to %s%s%s", st,
			 what, m ? ": " : "", m ? m : "");
		rc = st == 404 ? -ENOENT : -EIO;
	}
	restapi_mask_key(err, p->key);
	free(m);
	json_decref(root);
	return rc;
}

/*
 * GET @path (with "?limit=N[&after=CURSOR]" added) within the time left
 * until @deadline; the body in @resp on 0. A non-2xx is an error.
 */
static int get_page(struct platform *p, const char *path, const char *cursor,
		    long deadline, struct http_resp *resp, const char *what,
		    char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "GET",
	    .headers = hdrs,
	    .max_body = PAPERSPACE_MAX_BODY,
	    .max_retries = PAGE_RETRIES,
	    .backoff_ms = BACKOFF_MS,
	    .backoff_max_ms = BACKOFF_MAX_MS,
	};
	long left = deadline - mono_ms();
	char herr[256];
	char *url = NULL, *enc = NULL;
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (left <= 0) {
		snprintf(err, errlen,
			 VENDOR ": %s did not finish within %gs (every page "
				"must arrive in one api_timeout)",
			 what, p->timeout_ms / 1000.0);
		return -ETIMEDOUT;
	}
	req.timeout_ms = left;
	req.connect_timeout_ms = left < p->connect_ms ? left : p->connect_ms;
	if (cursor && cursor[0]) {
		enc = restapi_urlencode(cursor);
		if (!enc)
			goto out_nomem;
	}
	if (asprintf(&url, "%s%s?limit=%d%s%s", p->api_url, path,
		     PAPERSPACE_PAGE_LIMIT, enc ? "&after=" : "",
		     enc ? enc : "") < 0) {
		url = NULL;
		goto out_nomem;
	}
	req.url = url;
	rc = http_do(&req, resp, herr, sizeof(herr));
	if (rc) {
		transport_error(p, rc, herr, err, errlen);
	} else if (resp->status < 200 || resp->status > 299) {
		rc = status_error(p, resp, what, err, errlen);
		if (rc == -ENOENT)
			rc = -EIO; /* the list endpoint itself missing */
	}
	free(url);
	free(enc);
	return rc;
out_nomem:
	free(enc);
	snprintf(err, errlen, VENDOR ": out of memory");
	return -ENOMEM;
}

static struct memo *memo_find(struct platform *p, const char *id)
{
	for (size_t i = 0; i < p->n_memo; i++)
		if (!strcmp(p->memo[i].id, id))
			return &p->memo[i];
	return NULL;
}

static void remember(struct platform *p, const char *body, size_t len)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *items = json_object_get(root, "items");
	size_t i;
	json_t *m;

	json_array_foreach(items, i, m) {
		const char *id = jstr(json_object_get(m, "id"));
		struct memo *e;
		struct buf b;

		if (!id || !platform_id_valid(id) || strlen(id) >= RGT_ID_MAX)
			continue;
		buf_init(&b, ORPHANS_MAX);
		if (paperspace_orphan_lines(m, &b) == -ENOMEM) {
			buf_cleanup(&b);
			continue;
		}
		e = memo_find(p, id);
		if (!e && p->n_memo < MEMO_MAX) {
			struct memo *nv = realloc(p->memo, (p->n_memo + 1) *
							       sizeof(*nv));

			if (!nv) {
				buf_cleanup(&b);
				continue;
			}
			p->memo = nv;
			e = &p->memo[p->n_memo++];
			memset(e, 0, sizeof(*e));
		} else if (!e) {
			e = &p->memo[0];
			for (size_t k = 1; k < p->n_memo; k++)
				if (p->memo[k].seen < e->seen)
					e = &p->memo[k];
			free(e->lines);
			memset(e, 0, sizeof(*e));
		}
		snprintf(e->id, sizeof(e->id), "%s", id);
		free(e->lines);
		e->lines = b.len ? buf_take(&b) : NULL;
		e->seen = p->gen;
		buf_cleanup(&b);
	}
	json_decref(root);
}

static int paperspace_list(struct platform *p, struct rgt_instance_list *out,
			   char *err, size_t errlen)
{
	char cursor[PAPERSPACE_CURSOR_MAX] = "", prev[PAPERSPACE_CURSOR_MAX];
	long deadline = mono_ms() + p->timeout_ms;
	struct http_resp resp;
	size_t skipped = 0, pages;
	bool more = true;
	long dup;
	int rc = 0;

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	p->gen++;
	for (pages = 0; more; pages++) {
		if (pages == PAPERSPACE_MAX_PAGES) {
			snprintf(err, errlen,
				 VENDOR ": the machine list did not end within "
					"%d pages; keeping the last known "
					"machines",
				 PAPERSPACE_MAX_PAGES);
			rc = -EBADMSG;
			goto out_fail;
		}
		snprintf(prev, sizeof(prev), "%s", cursor);
		rc = get_page(p, "/v1/machines", cursor, deadline, &resp,
			      "the machine list", err, errlen);
		if (!rc)
			rc = paperspace_parse_page(resp.body.data,
						   resp.body.len, p->ssh_user,
						   out, &more, cursor,
						   &skipped, err, errlen);
		if (!rc)
			remember(p, resp.body.data, resp.body.len);
		http_resp_cleanup(&resp);
		if (rc)
			goto out_fail;
		if (more && !strcmp(cursor, prev)) {
			snprintf(err, errlen,
				 VENDOR ": the machine list repeats its page "
					"cursor; keeping the last known "
					"machines");
			rc = -EBADMSG;
			goto out_fail;
		}
	}
	dup = restapi_sort_unique(out);
	if (dup < 0) {
		snprintf(err, errlen, VENDOR ": out of memory");
		rc = -ENOMEM;
		goto out_fail;
	}
	if (dup && !skipped)
		snprintf(err, errlen, VENDOR ": a machine id repeats");
	skipped += dup;
	if (skipped && !out->n) {
		snprintf(err, errlen,
			 VENDOR ": none of the listed machines could be read");
		rc = -EBADMSG;
		goto out_fail;
	}
	out->complete = !skipped;
	restapi_mask_key(err, p->key);
	return 0;
out_fail:
	restapi_mask_key(err, p->key);
	rgt_instance_list_free(out);
	out->complete = false;
	return rc;
}

static const struct platform_verb paperspace_verbs[] = {
    {"DELETE /machines/{id}", RGT_ST_UNKNOWN},
};

static void paperspace_caps(struct platform *p, struct platform_caps *out)
{
	*out = (struct platform_caps){
	    .destroy = paperspace_verbs,
	    .n_destroy = 1,
	    .confirm_by_list = true,
	    .log_api = false,
	};
}

static int paperspace_destroy(struct platform *p, const char *id, size_t step,
			      bool *maybe_sent, char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "DELETE",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = PAPERSPACE_MAX_BODY,
	    .max_retries = 0, /* never blind-retry a destroy */
	};
	struct http_resp resp;
	char herr[256];
	char *url;
	bool refused;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	*maybe_sent = false;
	if (step != 0) {
		snprintf(err, errlen, VENDOR ": no destroy step %zu", step);
		return -EINVAL;
	}
	if (!id || !platform_id_valid(id)) {
		snprintf(err, errlen, VENDOR ": not a Paperspace machine id");
		return -EINVAL;
	}
	if (asprintf(&url, "%s/v1/machines/%s", p->api_url, id) < 0) {
		snprintf(err, errlen, VENDOR ": out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	*maybe_sent = !(rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
			rc == -ENETUNREACH);
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen,
			 VENDOR " did not answer the DELETE of machine %s "
				"within %gs; its state is unknown until the "
				"next list",
			 id, p->timeout_ms / 1000.0);
		goto out_resp;
	}
	if (rc) {
		transport_error(p, rc, herr, err, errlen);
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the DELETE", err, errlen);
		*maybe_sent = resp.status >= 500;
		goto out_resp;
	}
	rc = paperspace_parse_delete(resp.body.data, resp.body.len, id,
				     &refused, err, errlen);
	if (refused)
		*maybe_sent = false;
	restapi_mask_key(err, p->key);
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

static int paperspace_orphans(struct platform *p, const char *id,
			      struct buf *out, char *err, size_t errlen)
{
	char cursor[PAPERSPACE_CURSOR_MAX] = "", prev[PAPERSPACE_CURSOR_MAX];
	long deadline = mono_ms() + p->timeout_ms;
	struct memo *m;
	struct http_resp resp;
	bool more = true;
	size_t pages;
	char e[256] = "";
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!id || !platform_id_valid(id)) {
		snprintf(err, errlen, VENDOR ": not a Paperspace machine id");
		return -EINVAL;
	}
	m = memo_find(p, id);
	if (m && m->lines && (rc = buf_append(out, m->lines, strlen(m->lines))))
		return rc;
	/* Every snapshot of the account, filtered by machineId here: a
	 * server-side filter parameter is not documented. */
	for (pages = 0; more; pages++) {
		if (pages == PAPERSPACE_MAX_PAGES) {
			snprintf(e, sizeof(e),
				 VENDOR ": the snapshot list did not end "
					"within %d pages",
				 PAPERSPACE_MAX_PAGES);
			rc = -EBADMSG;
			break;
		}
		snprintf(prev, sizeof(prev), "%s", cursor);
		rc = get_page(p, "/v1/snapshots", cursor, deadline, &resp,
			      "the snapshot list", e, sizeof(e));
		if (!rc)
			rc = paperspace_parse_snapshots(resp.body.data,
							resp.body.len, id, out,
							&more, cursor, e,
							sizeof(e));
		http_resp_cleanup(&resp);
		if (!rc && more && !strcmp(cursor, prev)) {
			snprintf(e, sizeof(e),
				 VENDOR ": the snapshot list repeats its page "
					"cursor");
			rc = -EBADMSG;
		}
		if (rc)
			break;
	}
	if (!rc)
		return 0;
	/*
	 * The static IP (above) is known all the same: say both in the
	 * report rather than fail and lose it. The line says what to check.
	 */
	restapi_mask_key(e, p->key);
	return buf_appendf(out,
			   "snapshots of machine %s: could not be listed (%s); "
			   "check GET /snapshots, they bill until deleted\n",
			   id, e);
}

const struct platform_ops paperspace_platform_ops = {
    .name = KIND,
    .open = paperspace_open,
    .list = paperspace_list,
    .caps = paperspace_caps,
    .destroy = paperspace_destroy,
    .orphans = paperspace_orphans,
    .close = paperspace_close,
};
