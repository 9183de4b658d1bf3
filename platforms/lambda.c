/*
 * lambda.c - the Lambda Cloud adapter: /api/v1 REST, HTTP Basic with the
 * key as the user name, instance-operations/terminate to end an instance
 * (PLATFORMS.md section 3).
 *
 * DESIGN
 *
 * - Translation only, no policy: list() turns one GET /api/v1/instances
 *   into rgt_instance values; destroy() sends one
 *   POST /api/v1/instance-operations/terminate {"instance_ids":[id]} and
 *   reports whether Lambda named the instance among terminated_instances.
 * - Every reply is wrapped in "data"; errors are {"error":{"code",
 *   "message"}}, and one may arrive with HTTP 200, so the error object is
 *   looked for before "data". A "data" that is missing, null or not a list
 *   is -EBADMSG, never an empty list (which would make every instance look
 *   gone). One malformed instance is skipped and the list is marked
 *   incomplete; "terminated" instances are understood and left out.
 * - Endpoints: the instance's "ip", port 22, login "ubuntu" (Lambda's
 *   images) unless the section names its own ssh_user. "ip" is absent
 *   while booting: no endpoint then.
 * - Secrets: the key travels only in the Authorization header; http:// is
 *   refused except for loopback. info.json drops jupyter_token, jupyter_url
 *   (it carries the token in its query) and any secret-looking field.
 * - Orphans: NFS file systems survive terminate and keep billing. The
 *   instance is gone by the time they are asked for, so list() remembers
 *   each instance's file_system_names (bounded, MEMO_MAX instances, the
 *   oldest forgotten first) and orphans() reports them. Nothing is deleted.
 * - Lambda has no stop and no log API (caps.log_api false).
 * - destroy() is never retried, not even on a timeout (the terminate call
 *   is known to hang; PLATFORMS.md 3.2): the caller re-reads state.
 *
 * Threads: a struct platform is used by one thread at a time (platform.h).
 */
#define _GNU_SOURCE /* asprintf */
#include "lambda.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "restapi.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KIND "lambda"
#define VENDOR "Lambda"
#define DEFAULT_API_URL "https://cloud.lambdalabs.com"
#define DEFAULT_USER "ubuntu"
#define CONNECT_MS 10000L
#define TIMEOUT_MS 20000L
#define LIST_RETRIES 3
#define BACKOFF_MS 250L
#define BACKOFF_MAX_MS 2000L
#define STATUS_MSG_MAX 512
#define SERVER_MSG_MAX 300
#define MEMO_MAX 1024
#define ORPHANS_MAX ((size_t)16 << 10)

struct memo {
	char id[RGT_ID_MAX];
	char *lines;		/* orphan lines; NULL: none attached */
	unsigned long seen;	/* list generation it was last seen in */
};

struct platform {
	char *ca_file;	/* the section's ca_file, or NULL */
	char *api_url;	/* "https://host[:port]" */
	char *key;	/* for masking echoes in messages */
	char *auth_hdr; /* "Authorization: Basic base64(KEY:)" */
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

enum rgt_state lambda_map_state(json_t *inst)
{
	static const struct {
		const char *raw;
		enum rgt_state st;
	} map[] = {
	    {"booting", RGT_ST_PROVISIONING}, {"active", RGT_ST_RUNNING},
	    {"unhealthy", RGT_ST_OFFLINE},    {"preempted", RGT_ST_PREEMPTED},
	    {"terminating", RGT_ST_DESTROYING}, {"terminated", RGT_ST_GONE},
	};
	const char *s;

	if (!json_is_object(inst))
		return RGT_ST_UNKNOWN;
	s = jstr(json_object_get(inst, "status"));
	if (!s)
		return RGT_ST_UNKNOWN;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(s, map[i].raw))
			return map[i].st;
	return RGT_ST_UNKNOWN;
}

/* "code: message" of an {"error": {...}} body, one line, or NULL. */
static char *error_msg(json_t *root)
{
	json_t *e = json_object_get(root, "error");
	const char *code, *msg;
	char *s = NULL, *o;

	if (json_is_string(e))
		return restapi_one_line(json_string_value(e),
					json_string_length(e), SERVER_MSG_MAX);
	if (!json_is_object(e))
		return NULL;
	code = jstr(json_object_get(e, "code"));
	msg = jstr(json_object_get(e, "message"));
	if (asprintf(&s, "%s%s%s", code ? code : "", code && msg ? ": " : "",
		     msg ? msg : "") < 0)
		return NULL;
	o = restapi_one_line(s, strlen(s), SERVER_MSG_MAX);
	free(s);
	if (o && !o[0]) {
		free(o);
		o = restapi_one_line("(no message)", 12, SERVER_MSG_MAX);
	}
	return o;
}

/* "active (gpu_1x_a100 in us-east-1)": the status and where, one line. */
static char *status_line(json_t *inst)
{
	json_t *t = json_object_get(inst, "instance_type");
	json_t *r = json_object_get(inst, "region");
	const char *st = jstr(json_object_get(inst, "status"));
	const char *tn = json_is_object(t) ? jstr(json_object_get(t, "name"))
					   : NULL;
	const char *rn = json_is_object(r) ? jstr(json_object_get(r, "name"))
					   : NULL;
	char *s = NULL, *o;

	if (asprintf(&s, "%s%s%s%s%s%s", st ? st : "", tn || rn ? " (" : "",
		     tn ? tn : "", tn && rn ? " in " : "", rn ? rn : "",
		     tn || rn ? ")" : "") < 0)
		return NULL;
	o = restapi_one_line(s, strlen(s), STATUS_MSG_MAX);
	free(s);
	return o;
}

/*
 * The GPU count a description starts with, "8x H100 (80 GB SXM5)": 8, and
 * in *@rest where the model begins; -1 when it does not start "<N>x ".
 */
static int description_count(const char *s, const char **rest)
{
	int n = 0;
	size_t i;

	for (i = 0; i < 4 && isdigit((unsigned char)s[i]); i++)
		n = n * 10 + (s[i] - '0');
	if (!i || s[0] == '0' || s[i] != 'x' || s[i + 1] != ' ')
		return -1;
	*rest = s + i + 2;
	return n;
}

/*
 * The fleet view's facts from instance_type. The model: gpu_description,
 * else the description without its "<N>x " (the model is what follows;
 * one without that prefix as it is), else the type's name
 * ("gpu_1x_a100_sxm4", Lambda's own label). The count: specs.gpus, else
 * the description's "<N>x"; the name's "_8x_" is an id, not a
 * statement, and is not read. The rate: price_cents_per_hour
 * / 100, the type's list price, billed once health checks pass and until
 * terminate (PLATFORMS.md 3.2): while active, and while unhealthy (an
 * in-OS shutdown still bills). Booting, preempted or terminating, what it
 * bills is not in the answer, so the rate stays unknown. Lambda gives no
 * start time: started stays unknown.
 */
static void find_facts(json_t *inst, struct rgt_facts *f)
{
	json_t *t = json_object_get(inst, "instance_type");
	const char *st = jstr(json_object_get(inst, "status"));
	const char *desc, *model = NULL;
	json_t *specs;
	int dn = -1;
	double c;

	if (!json_is_object(t))
		return;
	desc = jstr(json_object_get(t, "description"));
	if (desc && (dn = description_count(desc, &model)) < 0)
		model = desc;
	if (!restapi_facts_gpu(f, json_object_get(t, "gpu_description")) &&
	    model)
		rgt_facts_set_gpu(f, model, strlen(model));
	if (!f->gpu[0])
		restapi_facts_gpu(f, json_object_get(t, "name"));
	specs = json_object_get(t, "specs");
	if (json_is_object(specs))
		f->gpu_count =
		    restapi_json_count(json_object_get(specs, "gpus"));
	if (f->gpu_count < 0)
		f->gpu_count = dn;
	if (st && (!strcasecmp(st, "active") || !strcasecmp(st, "unhealthy"))) {
		c = restapi_json_rate(
		    json_object_get(t, "price_cents_per_hour"), false);
		f->usd_per_hour = c < 0 ? -1 : c / 100;
	}
}

/* One instance into @ri: -EINVAL (skip it, reason in @why), -ENOMEM. */
static int parse_one(json_t *inst, const char *ssh_user,
		     struct rgt_instance *ri, char *why, size_t whylen)
{
	const char *id;

	memset(ri, 0, sizeof(*ri));
	rgt_facts_init(&ri->facts);	/* zero would say "0 GPUs, $0/h" */
	if (!json_is_object(inst)) {
		snprintf(why, whylen, "not an object");
		return -EINVAL;
	}
	id = jstr(json_object_get(inst, "id"));
	if (!id || strlen(id) >= RGT_ID_MAX || !platform_id_valid(id)) {
		snprintf(why, whylen, "no valid string \"id\"");
		return -EINVAL;
	}
	snprintf(ri->id, sizeof(ri->id), "%s", id);
	ri->state = lambda_map_state(inst);
	find_facts(inst, &ri->facts);
	if (restapi_json_host(json_object_get(inst, "ip"), ri->ep[0].host)) {
		ri->ep[0].port = 22;
		snprintf(ri->ep[0].user, sizeof(ri->ep[0].user), "%s",
			 ssh_user);
		ri->n_ep = 1;
	}
	ri->status_msg = status_line(inst);
	if (!ri->status_msg)
		goto out_nomem;
	ri->info_json = restapi_info_json(inst, KIND, ri);
	if (!ri->info_json)
		goto out_nomem;
	return 0;
out_nomem:
	restapi_instance_cleanup(ri);
	return -ENOMEM;
}

/* Root object of a reply, or an error with the reason in err. */
static int load_root(const char *body, size_t len, json_t **root, char *err,
		     size_t errlen)
{
	json_error_t je;
	char *m;

	*root = NULL;
	if (len > LAMBDA_MAX_BODY) {
		snprintf(err, errlen, VENDOR ": response larger than %zu bytes",
			 LAMBDA_MAX_BODY);
		return -EFBIG;
	}
	*root = body ? json_loadb(body, len, 0, &je) : NULL;
	if (!*root)
		return restapi_bad_json(VENDOR, body, body ? len : 0, &je, err,
					errlen);
	if (!json_is_object(*root)) {
		snprintf(err, errlen, VENDOR ": response is not a JSON object");
		goto bad;
	}
	if (json_object_get(*root, "error") &&
	    !json_is_null(json_object_get(*root, "error"))) {
		m = error_msg(*root);
		snprintf(err, errlen, VENDOR ": request failed: %s",
			 m ? m : "(no message)");
		free(m);
		json_decref(*root);
		*root = NULL;
		return -EIO;
	}
	return 0;
bad:
	json_decref(*root);
	*root = NULL;
	return -EBADMSG;
}

int lambda_parse_instances(const char *body, size_t len, const char *ssh_user,
			   struct rgt_instance_list *out, char *err,
			   size_t errlen)
{
	char why[96], first[160] = "";
	size_t n, i, skipped = 0;
	json_t *root, *data;
	long dup;
	int rc;

	out->v = NULL;
	out->n = 0;
	out->complete = false;
	if (err && errlen)
		err[0] = '\0';
	if (!ssh_user)
		ssh_user = DEFAULT_USER;
	rc = load_root(body, len, &root, err, errlen);
	if (rc)
		return rc;
	data = json_object_get(root, "data");
	if (!json_is_array(data)) {
		snprintf(err, errlen,
			 VENDOR ": \"data\" is %s, not a list; keeping the "
				"last known instances",
			 !data ? "missing" : json_is_null(data) ? "null"
								: "not a list");
		rc = -EBADMSG;
		goto out_root;
	}
	n = json_array_size(data);
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (!out->v)
		goto out_nomem;
	for (i = 0; i < n; i++) {
		json_t *inst = json_array_get(data, i);

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
		if (out->v[out->n].state == RGT_ST_GONE) {
			/* Understood: Lambda no longer has it. */
			restapi_instance_cleanup(&out->v[out->n]);
			continue;
		}
		out->n++;
	}
	dup = restapi_sort_unique(out);
	if (dup < 0)
		goto out_nomem;
	if (dup && !skipped)
		snprintf(first, sizeof(first), "a repeated id");
	skipped += dup;
	if (skipped && !out->n) {
		snprintf(err, errlen,
			 VENDOR ": none of the %zu instance(s) in the list "
				"could be read; first: %s",
			 n, first);
		rgt_instance_list_free(out);
		rc = -EBADMSG;
		goto out_root;
	}
	if (skipped)
		snprintf(err, errlen,
			 VENDOR ": skipped %zu malformed instance(s); first: %s",
			 skipped, first);
	out->complete = !skipped;
	rc = 0;
	goto out_root;
out_nomem:
	rgt_instance_list_free(out);
	snprintf(err, errlen, VENDOR ": out of memory");
	rc = -ENOMEM;
out_root:
	json_decref(root);
	return rc;
}

int lambda_orphan_lines(json_t *inst, struct buf *out)
{
	json_t *names = json_object_get(inst, "file_system_names");
	json_t *r = json_object_get(inst, "region");
	const char *raw = json_is_object(r) ? jstr(json_object_get(r, "name"))
					    : NULL;
	size_t i;
	json_t *v;
	int rc = 0;

	if (!json_is_array(names))
		return 0;
	/* the answer's text goes into the teardown report: one clean line */
	char *rn = raw ? restapi_one_line(raw, strlen(raw), 64) : NULL;
	if (raw && !rn)
		return -ENOMEM;
	json_array_foreach(names, i, v) {
		char *name;

		if (!json_is_string(v) || !json_string_length(v))
			continue;
		name = restapi_one_line(json_string_value(v),
					json_string_length(v), 128);
		if (!name) {
			rc = -ENOMEM;
			break;
		}
		rc = buf_appendf(out,
				 "file system %s (NFS /lambda/nfs/%s%s%s): "
				 "survives terminate and bills until deleted\n",
				 name, name, rn && *rn ? ", region " : "",
				 rn ? rn : "");
		free(name);
		if (rc)
			break;
	}
	free(rn);
	return rc;
}

int lambda_parse_terminate(const char *body, size_t len, const char *id,
			   bool *refused, char *err, size_t errlen)
{
	json_t *root, *data, *term, *v;
	size_t i;
	int rc;

	*refused = false;
	rc = load_root(body, len, &root, err, errlen);
	if (rc == -EIO)
		*refused = true;
	if (rc)
		return rc;
	data = json_object_get(root, "data");
	term = json_is_object(data)
		   ? json_object_get(data, "terminated_instances")
		   : NULL;
	rc = -EBADMSG;
	json_array_foreach(term, i, v) {
		const char *tid = json_is_object(v)
				      ? jstr(json_object_get(v, "id"))
				      : jstr(v);

		if (tid && !strcmp(tid, id)) {
			rc = 0;
			break;
		}
	}
	if (rc)
		snprintf(err, errlen,
			 VENDOR ": the reply to the terminate of instance %s "
				"does not list it among terminated_instances",
			 id);
	json_decref(root);
	return rc;
}

/* ---- the adapter ------------------------------------------------------- */

static void lambda_close(struct platform *p)
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

static int lambda_open(const struct rgt_section *sec, struct platform **out,
		       char *err, size_t errlen)
{
	struct platform *p;
	char *cred = NULL;
	char *b64 = NULL;
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
	/* Basic auth: the key is the user name, the password is empty. */
	if (asprintf(&cred, "%s:", p->key) < 0) {
		cred = NULL;
		goto out_nomem;
	}
	b64 = restapi_base64(cred, strlen(cred));
	explicit_bzero(cred, strlen(cred));
	free(cred);
	if (!b64 || asprintf(&p->auth_hdr, "Authorization: Basic %s", b64) < 0) {
		p->auth_hdr = NULL;
		if (b64)
			explicit_bzero(b64, strlen(b64));
		free(b64);
		goto out_nomem;
	}
	explicit_bzero(b64, strlen(b64));
	free(b64);
	*out = p;
	return 0;
out_nomem:
	snprintf(err, errlen, KIND ": out of memory");
	rc = -ENOMEM;
out_free:
	lambda_close(p);
	return rc;
}

static int transport_error(struct platform *p, int rc, const char *herr,
			   char *err, size_t errlen)
{
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, VENDOR " did not answer within %gs",
			 p->timeout_ms / 1000.0);
	else if (rc == -EFBIG)
		snprintf(err, errlen, VENDOR ": response larger than %zu bytes",
			 LAMBDA_MAX_BODY);
	else
		snprintf(err, errlen, VENDOR ": %s", herr);
	return rc;
}

/* -errno and a reason for a non-2xx answer. */
static int status_error(struct platform *p, const struct http_resp *resp,
			const char *what, char *err, size_t errlen)
{
	long st = resp->status;
	json_t *root = NULL;
	char *m = NULL;
	int rc;

	if (resp->body.len && resp->body.len <= LAMBDA_MAX_BODY)
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

static struct memo *memo_find(struct platform *p, const char *id)
{
	for (size_t i = 0; i < p->n_memo; i++)
		if (!strcmp(p->memo[i].id, id))
			return &p->memo[i];
	return NULL;
}

/* Remember the orphan lines of every listed instance (see DESIGN). */
static void remember(struct platform *p, const char *body, size_t len)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *data = json_object_get(root, "data");
	size_t i;
	json_t *inst;

	p->gen++;
	json_array_foreach(data, i, inst) {
		const char *id = jstr(json_object_get(inst, "id"));
		struct buf b;
		struct memo *m;

		if (!id || !platform_id_valid(id) || strlen(id) >= RGT_ID_MAX)
			continue;
		buf_init(&b, ORPHANS_MAX);
		/* Past ORPHANS_MAX the lines that fit are kept. */
		if (lambda_orphan_lines(inst, &b) == -ENOMEM) {
			buf_cleanup(&b);
			continue;
		}
		m = memo_find(p, id);
		if (!m && p->n_memo < MEMO_MAX) {
			struct memo *nv = realloc(p->memo, (p->n_memo + 1) *
							       sizeof(*nv));

			if (!nv) {
				buf_cleanup(&b);
				continue;
			}
			p->memo = nv;
			m = &p->memo[p->n_memo++];
			memset(m, 0, sizeof(*m));
		} else if (!m) {
			/* Full: forget the one seen longest ago. */
			m = &p->memo[0];
			for (size_t k = 1; k < p->n_memo; k++)
				if (p->memo[k].seen < m->seen)
					m = &p->memo[k];
			free(m->lines);
			memset(m, 0, sizeof(*m));
		}
		snprintf(m->id, sizeof(m->id), "%s", id);
		free(m->lines);
		m->lines = b.len ? buf_take(&b) : NULL;
		m->seen = p->gen;
		buf_cleanup(&b);
	}
	json_decref(root);
}

static int lambda_list(struct platform *p, struct rgt_instance_list *out,
		       char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "GET",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = LAMBDA_MAX_BODY,
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
	if (asprintf(&url, "%s/api/v1/instances", p->api_url) < 0) {
		snprintf(err, errlen, VENDOR ": out of memory");
		return -ENOMEM;
	}
	req.url = url;
	rc = http_do(&req, &resp, herr, sizeof(herr));
	if (rc) {
		transport_error(p, rc, herr, err, errlen);
		goto out_resp;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = status_error(p, &resp, "the instance list", err, errlen);
		/* The list endpoint missing is a wrong api_url, not "all
		 * gone". */
		if (rc == -ENOENT)
			rc = -EIO;
		goto out_resp;
	}
	rc = lambda_parse_instances(resp.body.data, resp.body.len, p->ssh_user,
				    out, err, errlen);
	restapi_mask_key(err, p->key);
	if (!rc)
		remember(p, resp.body.data, resp.body.len);
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	return rc;
}

static const struct platform_verb lambda_verbs[] = {
    {"terminate", RGT_ST_UNKNOWN},
};

static void lambda_caps(struct platform *p, struct platform_caps *out)
{
	*out = (struct platform_caps){
	    .destroy = lambda_verbs,
	    .n_destroy = 1,
	    .confirm_by_list = true,
	    .log_api = false,
	};
}

static int lambda_destroy(struct platform *p, const char *id, size_t step,
			  bool *maybe_sent, char *err, size_t errlen)
{
	const char *hdrs[] = {p->auth_hdr, "Accept: application/json",
			      "Content-Type: application/json", NULL};
	struct http_req req = {
	    .ca_file = p->ca_file,
	    .method = "POST",
	    .headers = hdrs,
	    .connect_timeout_ms = p->connect_ms,
	    .timeout_ms = p->timeout_ms,
	    .max_body = LAMBDA_MAX_BODY,
	    .max_retries = 0, /* never blind-retry a destroy */
	};
	struct http_resp resp;
	char herr[256];
	char *url = NULL, *body = NULL;
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
		snprintf(err, errlen, VENDOR ": not a Lambda instance id");
		return -EINVAL;
	}
	/* A valid id needs no JSON escaping: [A-Za-z0-9._-] only. */
	if (asprintf(&url, "%s/api/v1/instance-operations/terminate",
		     p->api_url) < 0 ||
	    asprintf(&body, "{\"instance_ids\": [\"%s\"]}", id) < 0) {
		free(url);
		snprintf(err, errlen, VENDOR ": out of memory");
		return -ENOMEM;
	}
	req.url = url;
	req.body = body;
	req.body_len = strlen(body);
	rc = http_do(&req, &resp, herr, sizeof(herr));
	/* Only a request that never reached Lambda surely did nothing. */
	*maybe_sent = !(rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
			rc == -ENETUNREACH);
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen,
			 VENDOR " did not answer the terminate of instance %s "
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
		rc = status_error(p, &resp, "the terminate", err, errlen);
		/* 4xx: refused before acting; 5xx: it may have acted */
		*maybe_sent = resp.status >= 500;
		goto out_resp;
	}
	rc = lambda_parse_terminate(resp.body.data, resp.body.len, id, &refused,
				    err, errlen);
	if (refused)
		*maybe_sent = false; /* an explicit error body */
	restapi_mask_key(err, p->key);
out_resp:
	http_resp_cleanup(&resp);
	free(url);
	free(body);
	return rc;
}

static int lambda_orphans(struct platform *p, const char *id, struct buf *out,
			  char *err, size_t errlen)
{
	struct memo *m = id ? memo_find(p, id) : NULL;

	if (err && errlen)
		err[0] = '\0';
	if (!m) {
		snprintf(err, errlen,
			 VENDOR ": instance %s was not seen by this mount; "
				"its file systems are unknown (check "
				"GET /file-systems)",
			 id ? id : "?");
		return -ENOENT;
	}
	return m->lines ? buf_append(out, m->lines, strlen(m->lines)) : 0;
}

const struct platform_ops lambda_platform_ops = {
    .name = KIND,
    .open = lambda_open,
    .list = lambda_list,
    .caps = lambda_caps,
    .destroy = lambda_destroy,
    .orphans = lambda_orphans,
    .close = lambda_close,
};
