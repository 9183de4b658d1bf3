/*
 * runpod.c - the RunPod adapter: REST v2, Bearer key, DELETE to terminate a
 * pod (PLATFORMS.md section 2).
 *
 * DESIGN
 *
 * - Translation only, no policy: list() turns one GET /v2/pods into
 *   rgt_instance values, destroy() sends one DELETE /v2/pods/{id} and
 *   reports what RunPod said. REST v1 retired on 2026-11-15 and GraphQL
 *   answers errors with HTTP 200, so v2 is the only surface used.
 * - The list is one call. The v2 spec documents no page parameters for
 *   GET /v2/pods ("returns all pods"); a reply that carries a cursor we do
 *   not understand is still parsed as the whole answer. The body is capped
 *   (RUNPOD_MAX_BODY) and the call bounded by api_timeout, so a reply that
 *   never ends is an error, never a hang.
 * - The JSON is hostile until proven otherwise: every field is type-checked
 *   where it is read, one malformed pod is skipped and counted (the list is
 *   then not complete, so no pod is called gone from it), and a reply
 *   without a "pods" list, "pods": null, an RFC 9457 problem body or a
 *   GraphQL-style "errors" array is an error, never an empty list.
 * - States (PLATFORMS.md 7): PROVISIONING/STARTING provisioning, RUNNING
 *   running, ERROR offline, EXITED stopped, or preempted for an
 *   interruptible pod: rgtfs never stops a pod, so an interruptible pod
 *   that exited was not stopped by us. TERMINATED pods are left out of
 *   the list (destroyed).
 * - SSH: only ssh.direct (public IP and the port mapped to 22) can carry
 *   SFTP. When only ssh.proxy exists the proxy is given as the only
 *   endpoint with its own login (<podId>-<hex>) so that the `ssh` file
 *   works for a shell, status_msg says why files cannot be read, and the
 *   transport fails on it with a clear error.
 * - Secrets: the key travels only in the Authorization header; http:// is
 *   refused for non-loopback hosts; info_json drops env, args, docker
 *   arguments and any key that looks like a token or credential,
 *   recursively; server text in err has the key masked.
 * - destroy() is never retried, not even on a timeout (PLATFORMS.md 8.7).
 *   The v2 DELETE answers 204 while the pod may still be listed; the
 *   caller confirms by listing.
 *
 * - The generic pieces (api_url and api_timeout checks, one-line messages,
 *   key masking, hosts, the shared scrub rules, sorting) are restapi.c's;
 *   what is here is RunPod's shapes and names.
 *
 * Threads: a struct platform is used by one thread at a time (platform.h);
 * runpod_map_state() and runpod_parse_pods() are pure and reentrant.
 *
 * - log() is GET /v2/pods/{id}/logs?tail=1000, Server-Sent Events: the
 *   stream never ends by itself, so it is read for RUNPOD_LOG_STREAM_MS
 *   (http.h's stream mode: what arrived, cut after its last complete
 *   line) and rendered "TS SOURCE LINE" per event, every field escaped.
 *   Resuming with Last-Event-ID is not used: each read is a fresh tail.
 *
 * Rejected: POST /v2/pods/{id}/action {"action":"terminate"} (same effect,
 * one more body shape to get wrong); the stop action (it keeps billing the
 * volume at twice the rate and is never a teardown).
 */
#define _GNU_SOURCE /* asprintf, strcasestr */
#include "runpod.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "restapi.h"
#include "rpath.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_API_URL "https://api.runpod.io"
#define CONNECT_MS 10000L
#define TIMEOUT_MS 20000L
#define LIST_RETRIES 3
#define BACKOFF_MS 250L
#define BACKOFF_MAX_MS 2000L
#define STATUS_MSG_MAX 512
#define SERVER_MSG_MAX 300

struct platform {
	char *ca_file;	/* the section's ca_file, or NULL */
	char *api_url;	/* "https://host[:port]", no trailing slash */
	char *key;	/* for masking echoes in messages */
	char *auth_hdr; /* "Authorization: Bearer KEY" */
	char *ssh_user;
	long connect_ms;
	long timeout_ms;
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

static char *jline(json_t *v)
{
	return json_is_string(v) && json_string_length(v)
		   ? restapi_one_line(json_string_value(v),
				      json_string_length(v), SERVER_MSG_MAX)
		   : NULL;
}

/*
 * The human-readable text of an error body, one line, or NULL: RFC 9457
 * (detail, title), {"errors":[{"message"}]}, {"error"}, {"message"}.
 */
static char *server_msg(json_t *root)
{
	static const char *const keys[] = {"detail", "title", "error",
					   "message", "msg"};
	json_t *errs = json_object_get(root, "errors");
	char *m;

	if (!json_is_object(root))
		return NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((m = jline(json_object_get(root, keys[i]))))
			return m;
	if (json_is_array(errs)) {
		json_t *e = json_array_get(errs, 0);

		if ((m = jline(e)))
			return m;
		if (json_is_object(e) &&
		    ((m = jline(json_object_get(e, "message"))) ||
		     (m = jline(json_object_get(e, "detail")))))
			return m;
	}
	return NULL;
}

enum rgt_state runpod_map_state(json_t *pod)
{
	const char *st;

	if (!json_is_object(pod))
		return RGT_ST_UNKNOWN;
	st = jstr(json_object_get(pod, "status"));
	if (streq(st, "PROVISIONING") || streq(st, "STARTING"))
		return RGT_ST_PROVISIONING;
	if (streq(st, "RUNNING"))
		return RGT_ST_RUNNING;
	if (streq(st, "EXITED"))
		/* rgtfs never stops a pod: an interruptible pod that exited
		 * was stopped by the platform, not by us. */
		return json_is_true(json_object_get(pod, "interruptible"))
			   ? RGT_ST_PREEMPTED
			   : RGT_ST_STOPPED;
	if (streq(st, "ERROR"))
		return RGT_ST_OFFLINE;
	if (streq(st, "TERMINATED"))
		return RGT_ST_GONE;
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

		if (!n || n > 5 || strspn(s, "0123456789") != n)
			return 0;
		p = strtoll(s, NULL, 10);
	}
	return p >= 1 && p <= 65535 ? (int)p : 0;
}

/* A login name: [A-Za-z0-9._-], no leading '-', shorter than RGT_USER_MAX. */
static bool json_user(json_t *v, char out[RGT_USER_MAX])
{
	const char *s = jstr(v);
	size_t n = s ? json_string_length(v) : 0;

	if (!n || n >= RGT_USER_MAX || s[0] == '-' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-") != n)
		return false;
	memcpy(out, s, n + 1);
	return true;
}

static bool ssh_ep(json_t *o, struct rgt_endpoint *ep, bool want_user)
{
	memset(ep, 0, sizeof(*ep));
	if (!json_is_object(o) ||
	    !restapi_json_host(json_object_get(o, "host"), ep->host) ||
	    !(ep->port = json_port(json_object_get(o, "port"))))
		return false;
	if (want_user && !json_user(json_object_get(o, "username"), ep->user))
		return false;
	return true;
}

/*
 * ep[0] = ssh.direct if there is one (the login is the section's); else
 * ssh.proxy with its own <podId>-<hex> login, which has no SFTP. Returns
 * "direct", "proxy" or NULL.
 */
static const char *find_endpoint(json_t *pod, struct rgt_instance *ri)
{
	json_t *ssh = json_object_get(pod, "ssh");

	ri->n_ep = 0;
	if (!json_is_object(ssh))
		return NULL;
	if (ssh_ep(json_object_get(ssh, "direct"), &ri->ep[0], false)) {
		ri->n_ep = 1;
		return "direct";
	}
	if (ssh_ep(json_object_get(ssh, "proxy"), &ri->ep[0], true)) {
		ri->n_ep = 1;
		return "proxy";
	}
	memset(&ri->ep[0], 0, sizeof(ri->ep[0]));
	return NULL;
}

static bool secret_field(const char *k)
{
	static const char *const exact[] = {
	    "env", "args", "dockerArgs", "dockerStartCmd", "dockerEntrypoint",
	    "containerRegistryAuthId", "command",
	};
	static const char *const part[] = {
	    "token",   "secret", "passw",      "passphrase",
	    "api_key", "apikey", "access_key", "accesskey", "credential",
	    "privatekey", "private_key", "auth", "cookie", "login",
	};

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcasecmp(k, exact[i]))
			return true;
	for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++)
		if (strcasestr(k, part[i]))
			return true;
	return false;
}

/* RunPod's own secret-bearing names; restapi_scrub() adds the shared rules. */
static void runpod_scrub(json_t *v)
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
				runpod_scrub(x);
			it = next;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			runpod_scrub(json_array_get(v, i));
	}
}

static char *make_info_json(json_t *pod, const struct rgt_instance *ri,
			    const char *kind, const char *ssh_user)
{
	json_t *copy, *meta, *eps;
	char *s = NULL, *t;
	size_t n;

	copy = json_deep_copy(pod);
	if (!copy)
		return NULL;
	runpod_scrub(copy);
	restapi_scrub(copy);
	eps = json_array();
	meta = json_pack("{s:s, s:s, s:s, s:o}", "platform", "runpod", "state",
			 rgt_state_name(ri->state), "ssh_user", ssh_user,
			 "endpoints", eps);
	if (!meta)
		goto out_copy;
	if (ri->n_ep &&
	    json_array_append_new(
		eps, json_pack("{s:s, s:s, s:i, s:s}", "kind", kind, "host",
			       ri->ep[0].host, "port", ri->ep[0].port, "user",
			       ri->ep[0].user[0] ? ri->ep[0].user : ssh_user))) {
		json_decref(meta);
		goto out_copy;
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

/* "RUNNING", plus why files cannot be read when there is no direct SSH. */
static char *make_status_msg(json_t *pod, enum rgt_state st, const char *kind)
{
	const char *raw = jstr(json_object_get(pod, "status"));
	char *s, *o;
	int n;

	if (st == RGT_ST_RUNNING && kind && !strcmp(kind, "proxy"))
		n = asprintf(&s, "%s; no direct SSH (22/tcp not exposed on a "
				 "public IP): the proxy ssh.runpod.io has "
				 "no SFTP, files cannot be read",
			     raw);
	else if (st == RGT_ST_RUNNING && !kind)
		n = asprintf(&s, "%s; no SSH endpoint yet", raw);
	else if (st == RGT_ST_PREEMPTED)
		n = asprintf(&s, "%s (interruptible pod stopped by RunPod)",
			     raw);
	else
		n = asprintf(&s, "%s", raw ? raw : "");
	if (n < 0)
		return NULL;
	o = restapi_one_line(s, (size_t)n, STATUS_MSG_MAX);
	free(s);
	return o;
}

/*
 * The fleet view's facts from the v2 pod: gpu.displayName when the pod
 * carries one, else gpu.id (v2 names a GPU type by its model, "NVIDIA
 * GeForce RTX 4090"); gpu.count; cost, which RunPod gives as what the
 * pod bills now (0.0 once EXITED, so 0 here is RunPod's word, not a
 * default); startedAt, RFC 3339. A CPU pod has no "gpu" object: GPU and
 * count stay unknown. The v1 and GraphQL names (costPerHr,
 * machine.gpuDisplayName) are not read: this adapter speaks v2 only.
 */
static void find_facts(json_t *pod, struct rgt_facts *f)
{
	json_t *gpu = json_object_get(pod, "gpu");

	if (json_is_object(gpu)) {
		if (!restapi_facts_gpu(f, json_object_get(gpu, "displayName")))
			restapi_facts_gpu(f, json_object_get(gpu, "id"));
		f->gpu_count =
		    restapi_json_count(json_object_get(gpu, "count"));
	}
	f->usd_per_hour =
	    restapi_json_rate(json_object_get(pod, "cost"), false);
	f->started = restapi_json_rfc3339(json_object_get(pod, "startedAt"));
}

/*
 * One pod object into @ri. 1: a TERMINATED pod (leave it out); -EINVAL
 * with a reason in @why for a malformed entry; -ENOMEM fatal.
 */
static int parse_one(json_t *pod, const char *ssh_user,
		     struct rgt_instance *ri, char *why, size_t whylen)
{
	const char *id, *kind;
	json_t *jid;

	memset(ri, 0, sizeof(*ri));
	rgt_facts_init(&ri->facts);	/* zero would say "0 GPUs, $0/h" */
	if (!json_is_object(pod)) {
		snprintf(why, whylen, "not an object");
		return -EINVAL;
	}
	jid = json_object_get(pod, "id");
	id = jstr(jid);
	if (!id || json_string_length(jid) >= RGT_ID_MAX ||
	    strlen(id) != json_string_length(jid) || !platform_id_valid(id)) {
		snprintf(why, whylen, "no valid string \"id\"");
		return -EINVAL;
	}
	if (!json_is_string(json_object_get(pod, "status"))) {
		snprintf(why, whylen, "pod %s has no string \"status\"", id);
		return -EINVAL;
	}
	snprintf(ri->id, sizeof(ri->id), "%s", id);
	ri->state = runpod_map_state(pod);
	if (ri->state == RGT_ST_GONE)
		return 1;
	find_facts(pod, &ri->facts);
	kind = find_endpoint(pod, ri);
	ri->status_msg = make_status_msg(pod, ri->state, kind);
	if (!ri->status_msg)
		goto out_nomem;
	ri->info_json = make_info_json(pod, ri, kind, ssh_user);
	if (!ri->info_json)
		goto out_nomem;
	return 0;
out_nomem:
	restapi_instance_cleanup(ri);
	return -ENOMEM;
}

int runpod_parse_pods(const char *body, size_t len, const char *ssh_user,
		      struct rgt_instance_list *out, char *err, size_t errlen)
{
	char why[96], first[160] = "";
	size_t n, i, skipped = 0, gone = 0;
	json_t *root, *pods;
	json_error_t je;
	long dup;
	int rc;

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	if (!ssh_user)
		ssh_user = "root";
	if (len > RUNPOD_MAX_BODY) {
		snprintf(err, errlen, "runpod: response larger than %zu bytes",
			 RUNPOD_MAX_BODY);
		return -EFBIG;
	}
	root = body ? json_loadb(body, len, 0, &je) : NULL;
	if (!root)
		return restapi_bad_json("runpod", body ? body : "",
				       body ? len : 0, &je, err, errlen);
	if (json_is_array(root)) {
		snprintf(err, errlen,
			 "runpod: the list is a bare array (the retired REST "
			 "v1 shape), not {\"pods\": [...]}; is api_url right?");
		rc = -EBADMSG;
		goto out_root;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "runpod: response is not a JSON object");
		rc = -EBADMSG;
		goto out_root;
	}
	pods = json_object_get(root, "pods");
	if (!pods && (json_object_get(root, "errors") ||
		      json_object_get(root, "title") ||
		      json_object_get(root, "detail") ||
		      json_object_get(root, "error"))) {
		char *m = server_msg(root);

		snprintf(err, errlen, "runpod: request failed: %s",
			 m ? m : "(no message)");
		free(m);
		rc = -EIO;
		goto out_root;
	}
	if (!pods) {
		snprintf(err, errlen, "runpod: response has no \"pods\" key");
		rc = -EBADMSG;
		goto out_root;
	}
	if (!json_is_array(pods)) {
		snprintf(err, errlen,
			 "runpod: \"pods\" is %s, not a list; keeping the last "
			 "known pods",
			 json_is_null(pods) ? "null" : "not a list");
		rc = -EBADMSG;
		goto out_root;
	}
	n = json_array_size(pods);
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (!out->v)
		goto out_nomem;
	for (i = 0; i < n; i++) {
		rc = parse_one(json_array_get(pods, i), ssh_user,
			       &out->v[out->n], why, sizeof(why));
		if (rc == -ENOMEM)
			goto out_nomem;
		if (rc == 1) {
			gone++;
			continue;
		}
		if (rc) {
			if (!skipped++)
				snprintf(first, sizeof(first), "entry %zu: %s",
					 i, why);
			continue;
		}
		out->n++;
	}
	dup = restapi_sort_unique(out);
	if (dup < 0)
		goto out_nomem;
	if (dup && !skipped)
		snprintf(first, sizeof(first), "a repeated id");
	skipped += (size_t)dup;
	if (skipped && !out->n && !gone) {
		snprintf(err, errlen,
			 "runpod: none of the %zu pod(s) in the list could be "
			 "read; first: %s",
			 n, first);
		rgt_instance_list_free(out);
		rc = -EBADMSG;
		goto out_root;
	}
	if (skipped)
		snprintf(err, errlen,
			 "runpod: skipped %zu malformed pod(s); first: %s",
			 skipped, first);
	out->complete = !skipped;
	rc = 0;
	goto out_root;
out_nomem:
	rgt_instance_list_free(out);
	snprintf(err, errlen, "runpod: out of memory");
	rc = -ENOMEM;
out_root:
	json_decref(root);
	return rc;
}

/* ---- the log stream ---------------------------------------------------- */

#define LOG_TAIL 1000
/* Input cap: RUNPOD_LOG_MAX of output and the SSE framing around it. */
#define LOG_MAX_BODY ((size_t)4 << 20)

/* A JSON string or number as text into @tmp; NULL for anything else. */
static const char *jtext(json_t *v, char *tmp, size_t tmplen)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(tmp, tmplen, "%lld", (long long)json_integer_value(v));
		return tmp;
	}
	if (json_is_real(v)) {
		snprintf(tmp, tmplen, "%.3f", json_real_value(v));
		return tmp;
	}
	return NULL;
}

/* One event's data: 1 rendered, 0 not an event we understand, -ENOMEM. */
static int log_event(const char *data, size_t len, struct buf *b)
{
	char t1[40], t2[40];
	const char *ts, *src, *line;
	json_t *o = json_loadb(data, len, 0, NULL);
	int rc = 0;

	if (!json_is_object(o))
		goto out;
	line = jstr(json_object_get(o, "line"));
	if (!line)
		goto out;
	ts = jtext(json_object_get(o, "ts"), t1, sizeof(t1));
	src = jtext(json_object_get(o, "source"), t2, sizeof(t2));
	if (rpath_escape(b, ts && *ts ? ts : "-") ||
	    buf_append(b, " ", 1) ||
	    rpath_escape(b, src && *src ? src : "-") ||
	    buf_append(b, " ", 1) || rpath_escape(b, line) ||
	    buf_append(b, "\n", 1)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = 1;
out:
	json_decref(o);
	return rc;
}

int runpod_parse_logs(const char *body, size_t len, struct buf *out,
		      char *err, size_t errlen)
{
	size_t room = out->max > out->len ? out->max - out->len : 0;
	size_t good = 0, bad = 0, stray = 0, keep;
	const char *p = body ? body : "", *end = p + (body ? len : 0);
	struct buf text, data;
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	if (room > RUNPOD_LOG_MAX)
		room = RUNPOD_LOG_MAX;
	/* Escaping at most quadruples a byte (\xNN). */
	buf_init(&text, len * 4 + 64);
	buf_init(&data, len + 1);
	for (;;) {
		const char *nl = memchr(p, '\n', end - p);
		const char *le = nl ? nl : end;
		size_t n;

		if (le > p && le[-1] == '\r')
			le--;
		n = le - p;
		if (n == 0) {
			/* a blank line (or the end) dispatches the event */
			if (data.len) {
				int r = log_event(data.data, data.len, &text);

				if (r < 0) {
					rc = -ENOMEM;
					goto out;
				}
				r ? good++ : bad++;
				buf_reset(&data);
			}
			if (!nl)
				break;
		} else if (p[0] == ':') {
			/* a comment (keep-alive) */
		} else if (n >= 5 && !memcmp(p, "data:", 5)) {
			const char *v = p + 5;

			if (v < le && *v == ' ')
				v++;
			if ((data.len && buf_append(&data, "\n", 1)) ||
			    buf_append(&data, v, le - v)) {
				rc = -ENOMEM;
				goto out;
			}
		} else if ((n >= 3 && !memcmp(p, "id:", 3)) ||
			   (n == 2 && !memcmp(p, "id", 2)) ||
			   (n >= 6 && !memcmp(p, "event:", 6)) ||
			   (n >= 6 && !memcmp(p, "retry:", 6))) {
			/* known fields we do not need */
		} else {
			stray++;
		}
		if (!nl) {
			p = end;
			continue; /* dispatch what is pending, then stop */
		}
		p = nl + 1;
	}
	if (!good && (bad || stray)) {
		snprintf(err, errlen,
			 "runpod: the log is not an event stream of "
			 "{\"ts\",\"source\",\"line\"} (%zu unreadable event(s), "
			 "%zu stray line(s))",
			 bad, stray);
		rc = -EBADMSG;
		goto out;
	}
	/* The newest whole lines that fit. */
	keep = 0;
	if (text.len > room) {
		keep = text.len - room;
		while (keep < text.len && text.data[keep - 1] != '\n')
			keep++;
	}
	if (text.len > keep && buf_append(out, text.data + keep,
					  text.len - keep)) {
		rc = -ENOMEM;
		goto out;
	}
out:
	buf_cleanup(&text);
	buf_cleanup(&data);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "runpod: out of memory");
	return rc;
}

/* ---- the adapter ------------------------------------------------------- */

static void runpod_close(struct platform *p)
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

static int runpod_open(const struct rgt_section *sec, struct platform **out,
		       char *err, size_t errlen)
{
	struct platform *p;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "runpod: out of memory");
		return -ENOMEM;
	}
	rc = restapi_origin("runpod", sec->api_url, DEFAULT_API_URL,
			    &p->api_url, err, errlen);
	if (rc)
		goto out_free;
	rc = restapi_timeout("runpod", sec, TIMEOUT_MS, &p->timeout_ms, err,
			     errlen);
	if (rc)
		goto out_free;
	rc = restapi_ca_file("runpod", sec, &p->ca_file, err, errlen);
	if (rc)
		goto out_free;
	p->connect_ms = p->timeout_ms < CONNECT_MS ? p->timeout_ms : CONNECT_MS;
	p->ssh_user = strdup(restapi_ssh_user(sec, "root"));
	if (!p->ssh_user) {
		rc = -ENOMEM;
		snprintf(err, errlen, "runpod: out of memory");
		goto out_free;
	}
	/* runpodctl keeps its key inside a TOML file, not as a bare key. */
	p->key = platform_load_key(sec, NULL, err, errlen);
	if (!p->key) {
		rc = -ENOKEY;
		goto out_free;
	}
	if (asprintf(&p->auth_hdr, "Authorization: Bearer %s", p->key) < 0) {
		p->auth_hdr = NULL;
		rc = -ENOMEM;
		snprintf(err, errlen, "runpod: out of memory");
		goto out_free;
	}
	*out = p;
	return 0;
out_free:
	runpod_close(p);
	return rc;
}

static int transport_error(struct platform *p, int rc, const char *herr,
			   const char *what, char *err, size_t errlen)
{
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "runpod did not answer %s within %gs",
			 what, p->timeout_ms / 1000.0);
	else if (rc == -EFBIG)
		snprintf(err, errlen,
			 "runpod: the answer to %s is larger than %zu bytes",
			 what, RUNPOD_MAX_BODY);
	else
		snprintf(err, errlen, "runpod: %s", herr);
	return rc;
}

static int status_error(struct platform *p, const struct http_resp *resp,
			const char *what, char *err, size_t errlen)
{
	long st = resp->status;
	json_t *root = NULL;
	char *m = NULL;

	if (st == 401 || st == 403) {
		snprintf(err, errlen, "runpod refused the API key (HTTP %ld)",
			 st);
		return -EACCES;
	}
	if (st == 429) {
		snprintf(err, errlen, "runpod is rate-limiting %s (HTTP 429, %d "
				      "attempt(s))",
			 what, resp->attempts);
		return -EAGAIN;
	}
	if (st >= 500 && st <= 599) {
		snprintf(err, errlen, "runpod answered HTTP %ld to %s", st,
			 what);
		return -EIO;
	}
	if (resp->body.len)
		root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	m = server_msg(root);
	snprintf(err, errlen, "runpod answered HTTP %ld to %s%s%s", st, what,
		 m ? ": " : "", m ? m : "");
	restapi_mask_key(err, p->key);
	free(m);
	json_decref(root);
	return st == 404 ? -ENOENT : -EIO;
}

static int runpod_list(struct platform *p, struct rgt_instance_list *out,
		       char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "GET",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = RUNPOD_MAX_BODY,
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
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	if (asprintf(&url, "%s/v2/pods", p->api_url) < 0) {
		snprintf(err, errlen, "runpod: out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	if (rc) {
		transport_error(p, rc, herr, "the pod list", err, errlen);
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the pod list", err, errlen);
		/* The list endpoint missing is a wrong api_url, not "gone". */
		if (rc == -ENOENT)
			rc = -EIO;
		goto out_resp;
	}
	rc = runpod_parse_pods(resp.body.data, resp.body.len, p->ssh_user, out,
			       err, errlen);
	restapi_mask_key(err, p->key);
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

static const struct platform_verb runpod_verbs[] = {
    {"terminate", RGT_ST_UNKNOWN},
};

static void runpod_caps(struct platform *p, struct platform_caps *out)
{
	(void)p;
	*out = (struct platform_caps){
	    .destroy = runpod_verbs,
	    .n_destroy = 1,
	    .confirm_by_list = true,
	    .log_api = true,
	};
}

static int runpod_log(struct platform *p, const char *id, struct buf *out,
		      char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: text/event-stream",
			      NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "GET",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = LOG_MAX_BODY,
	    .max_retries = 1,
	    .backoff_ms = BACKOFF_MS,
	    .backoff_max_ms = BACKOFF_MAX_MS,
	    .stream_ms = RUNPOD_LOG_STREAM_MS,
	};
	struct http_resp resp;
	char herr[256];
	char *url;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!id || !platform_id_valid(id)) {
		snprintf(err, errlen, "runpod: not a pod id");
		return -EINVAL;
	}
	if (asprintf(&url, "%s/v2/pods/%s/logs?tail=%d", p->api_url, id,
		     LOG_TAIL) < 0) {
		snprintf(err, errlen, "runpod: out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	if (rc) {
		transport_error(p, rc, herr, "the log", err, errlen);
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the log", err, errlen);
		goto out_resp;
	}
	rc = runpod_parse_logs(resp.body.data, resp.body.len, out, err,
			       errlen);
	restapi_mask_key(err, p->key);
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

static int runpod_destroy(struct platform *p, const char *id, size_t step,
			  bool *maybe_sent, char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "DELETE",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = RUNPOD_MAX_BODY,
	    .max_retries = 0, /* never blind-retry a destroy */
	};
	struct http_resp resp;
	char herr[256];
	char *url;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	*maybe_sent = false;
	if (step != 0) {
		snprintf(err, errlen, "runpod: no destroy step %zu", step);
		return -EINVAL;
	}
	if (!id || !platform_id_valid(id)) {
		snprintf(err, errlen, "runpod: not a pod id");
		return -EINVAL;
	}
	if (asprintf(&url, "%s/v2/pods/%s", p->api_url, id) < 0) {
		snprintf(err, errlen, "runpod: out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	/* Only a request that never reached RunPod surely did nothing. */
	*maybe_sent = !(rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
			rc == -ENETUNREACH);
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen,
			 "runpod did not answer the terminate of pod %s within "
			 "%gs; its state is unknown until the next list",
			 id, p->timeout_ms / 1000.0);
		goto out_resp;
	}
	if (rc) {
		transport_error(p, rc, herr, "the terminate", err, errlen);
		goto out_resp;
	}
	if (resp.status == 204) {
		rc = 0;
		goto out_resp;
	}
	if (resp.status == 404) {
		snprintf(err, errlen, "runpod has no pod %s (HTTP 404)", id);
		*maybe_sent = false;
		rc = -ENOENT;
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the terminate", err, errlen);
		/* 4xx (409: not allowed now): refused before acting. */
		*maybe_sent = resp.status >= 500;
		goto out_resp;
	}
	snprintf(err, errlen,
		 "runpod: the terminate of pod %s answered HTTP %ld, not the "
		 "documented 204; its state is unknown until the next list",
		 id, resp.status);
	rc = -EBADMSG;
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

const struct platform_ops runpod_platform_ops = {
    .name = "runpod",
    .open = runpod_open,
    .list = runpod_list,
    .caps = runpod_caps,
    .destroy = runpod_destroy,
    .log = runpod_log,
    .close = runpod_close,
};
