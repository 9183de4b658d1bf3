/*
 * fleet.c - platform pollers and the instance model (see fleet.h).
 *
 * DESIGN
 * Each platform has a mutex, its instances (an array that only grows: an
 * instance that leaves is flagged hidden, never freed while mounted, so a
 * struct remote handed to a FUSE thread stays valid), the time of the last
 * successful list call and the reason of the last failure.
 *
 * The poller owns the adapter handle; nobody else calls it. It sleeps on a
 * condition variable so unmount stops it at once. One list call per
 * interval serves every file read in the tree: readers never trigger calls.
 *
 * Records: "inst\0PLAT\0ID" -> JSON {state, status_msg, info, endpoints,
 * seen}. Written only when something but `seen` changed, so an idle mount
 * does not write the disk every poll.
 */
#include "fleet.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive.h"
#include "config.h"
#include "life.h"
#include "log.h"
#include "platform.h"
#include "remote.h"
#include "store.h"

struct finst {
	char id[RGT_ID_MAX];
	enum rgt_state state;
	char *status_msg;
	char *info_json;
	struct rgt_endpoint ep[2];
	int n_ep;
	struct rgt_facts facts;	/* GPU, price, start: MOUNT/fleet.tsv */
	bool listed;		/* in the last successful list */
	bool hidden;		/* not listed and no cached data */
	time_t seen;		/* last time a list contained it */
	struct remote *remote;
	char *teardown;		/* what `teardown` shows */
	bool tearing_down;
	/*
	 * A destroy sequence stopped between verbs (AutoDL: power_off
	 * accepted, release not sent) and every list since has shown the
	 * box not running: only then may a later rmdir go on from the
	 * journal (fleet_seq_watched). Memory only: after a remount, or one
	 * list that failed or showed the box running, the box may have run
	 * and written new checkpoints, and it is verified anew.
	 */
	bool seq_watch;
	/* The login password the platform keeps for it (wanted_password),
	 * fetched by the poller, wiped when freed; retry not before. */
	char *plat_pw;
	time_t pw_retry;
	/* the last platform log read (fleet_log), reused for PLOG_REUSE_MS */
	char *plog;
	size_t plog_len;
	int plog_rc;
	char plog_err[256];
	long plog_ms;		/* CLOCK_MONOTONIC ms when read; 0: never */
};

/*
 * One `cat log` is a lookup, an open and an fstat, each of which wants
 * the log's length; a log API read streams for seconds, so one answer
 * serves them all for this long after it arrived.
 */
#define PLOG_REUSE_MS 2000L

struct fplat {
	struct fleet *fl;
	const struct rgt_section *sec;
	const struct platform_ops *ops;
	struct platform *p;
	pthread_mutex_t mu;
	pthread_mutex_t api_mu;	/* one adapter call at a time */
	pthread_mutex_t log_mu;	/* one log() call at a time (platform.h) */
	struct finst *inst;
	size_t n;
	time_t last_ok;		/* last successful list */
	char error[512];	/* "" while healthy */
	char note[512];		/* last "skipped N entries" note logged */
	unsigned long polls;
	/* Adapter calls that may reach the platform (list, destroy, log,
	 * orphans, password) and how many failed: MOUNT/.rgtfs/stats. */
	atomic_ulong api_calls, api_failures;
	pthread_t thread;
	bool started;
};

struct fleet {
	const struct rgt_config *cfg;
	struct store *st;
	struct fplat *pl;
	size_t npl;
	/* Directories of the tree: one per kind, in config order; several
	 * sections of one kind ([ssh:a], [ssh:b], two RunPod accounts)
	 * share it. */
	const char **dir_kind;
	size_t ndirs;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stop;
};

static size_t inst_key(char *buf, size_t len, const char *plat,
		       const char *id)
{
	int n = snprintf(buf, len, "inst%c%s%c%s", 0, plat, 0, id);
	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

/* ---- records ------------------------------------------------------------- */

static char *record_encode(const struct finst *in, const char *section)
{
	json_t *eps = json_array();
	for (int i = 0; i < in->n_ep; i++)
		json_array_append_new(eps, json_pack("{s:s,s:i,s:s}", "host",
						     in->ep[i].host, "port",
						     in->ep[i].port, "user",
						     in->ep[i].user));
	/* "section": which section of the kind owns it (the key names the
	 * kind only; two accounts of one kind share the key space). */
	json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:I,s:s}", "state",
			      rgt_state_name(in->state), "status_msg",
			      in->status_msg ? in->status_msg : "", "info",
			      in->info_json ? in->info_json : "", "endpoints",
			      eps, "seen", (json_int_t)in->seen, "section",
			      section);
	/* The fleet view of a gone instance keeps what it last knew. */
	json_t *fa = json_pack("{s:s,s:i,s:f,s:I}", "gpu", in->facts.gpu,
			       "gpu_count", in->facts.gpu_count,
			       "usd_per_hour", in->facts.usd_per_hour,
			       "started", (json_int_t)in->facts.started);
	if (o && fa)
		json_object_set_new(o, "facts", fa);
	else
		json_decref(fa);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

static enum rgt_state state_from_name(const char *s)
{
	for (int st = RGT_ST_UNKNOWN; st <= RGT_ST_GONE; st++)
		if (!strcmp(rgt_state_name(st), s))
			return st;
	return RGT_ST_UNKNOWN;
}

static int record_decode(const void *v, size_t len, struct finst *in)
{
	json_error_t je;
	json_t *o = json_loadb(v, len, 0, &je);
	const char *state = "unknown", *msg = "", *info = "";
	json_t *eps = NULL;
	json_int_t seen = 0;

	if (!o || json_unpack(o, "{s?s,s?s,s?s,s?o,s?I}", "state", &state,
			      "status_msg", &msg, "info", &info, "endpoints",
			      &eps, "seen", &seen)) {
		json_decref(o);
		return -EIO;
	}
	in->state = state_from_name(state);
	rgt_facts_init(&in->facts);
	const char *gpu = NULL;
	int gpus = -1;
	double usd = -1;
	json_int_t started = 0;
	if (!json_unpack(json_object_get(o, "facts"), "{s?s,s?i,s?F,s?I}",
			 "gpu", &gpu, "gpu_count", &gpus, "usd_per_hour",
			 &usd, "started", &started)) {
		snprintf(in->facts.gpu, sizeof(in->facts.gpu), "%s",
			 gpu ? gpu : "");
		in->facts.gpu_count = gpus;
		in->facts.usd_per_hour = usd;
		in->facts.started = (int64_t)started;
	}
	in->status_msg = strdup(msg);
	in->info_json = strdup(info);
	in->seen = (time_t)seen;
	size_t i;
	json_t *e;
	in->n_ep = 0;
	json_array_foreach(eps, i, e) {
		const char *h, *u = "";
		int port;
		if (in->n_ep < 2 &&
		    !json_unpack(e, "{s:s,s:i,s?s}", "host", &h, "port", &port,
				 "user", &u) &&
		    strlen(h) < RGT_HOST_MAX && strlen(u) < RGT_USER_MAX) {
			struct rgt_endpoint *ep = &in->ep[in->n_ep++];
			memset(ep, 0, sizeof(*ep));
			snprintf(ep->host, RGT_HOST_MAX, "%s", h);
			ep->port = port;
			snprintf(ep->user, RGT_USER_MAX, "%s", u);
		}
	}
	json_decref(o);
	return 0;
}

static void record_save(struct fplat *pl, const struct finst *in)
{
	char k[256];
	size_t klen = inst_key(k, sizeof(k), pl->sec->kind, in->id);
	char *rec = record_encode(in, pl->sec->name);
	if (!rec || !klen) {
		free(rec);
		return;
	}
	int rc = store_meta_put(pl->fl->st, k, klen, rec, strlen(rec));
	if (rc)
		rgt_log(RGT_WARN, "%s/%s: cannot record instance: %s",
			pl->sec->kind, in->id, strerror(-rc));
	free(rec);
}

/* Does the cache hold anything fetched from this instance? */
static int found_fn(void *arg, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	return 1;
}

static bool has_data(struct fplat *pl, const char *id)
{
	char k[256];
	enum archive_phase ph;
	/* A journal whose destroy call was made is data: hiding its
	 * instance would leave its verified copy pinned but unreachable. */
	if (!archive_get_phase(pl->fl->st, pl->sec->kind, id, &ph) &&
	    ph != ARCH_RECORDED)
		return true;
	int n = snprintf(k, sizeof(k), "dir%c%s%c%s%c", 0, pl->sec->kind, 0,
			 id, 0);
	if (n > 0 && (size_t)n < sizeof(k) &&
	    store_meta_scan(pl->fl->st, k, n, found_fn, NULL) == 1)
		return true;
	n = snprintf(k, sizeof(k), "attr%c%s%c%s%c", 0, pl->sec->kind, 0, id,
		     0);
	return n > 0 && (size_t)n < sizeof(k) &&
	       store_meta_scan(pl->fl->st, k, n, found_fn, NULL) == 1;
}

/* ---- instances (pl->mu held) --------------------------------------------- */

static struct finst *find(struct fplat *pl, const char *id)
{
	for (size_t i = 0; i < pl->n; i++)
		if (!strcmp(pl->inst[i].id, id))
			return &pl->inst[i];
	return NULL;
}

/*
 * Add an instance slot. The array only grows, but its elements move on
 * realloc, so nothing outside pl->mu keeps a struct finst pointer (remotes
 * are separate allocations and do not move).
 */
static struct finst *add(struct fplat *pl, const char *id)
{
	struct finst *ni = realloc(pl->inst, (pl->n + 1) * sizeof(*ni));
	if (!ni)
		return NULL;
	pl->inst = ni;
	struct finst *in = &ni[pl->n++];
	memset(in, 0, sizeof(*in));
	snprintf(in->id, sizeof(in->id), "%s", id);
	rgt_facts_init(&in->facts);
	return in;
}

static bool same_str(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

static bool same_facts(const struct rgt_facts *a, const struct rgt_facts *b)
{
	return !strcmp(a->gpu, b->gpu) && a->gpu_count == b->gpu_count &&
	       a->usd_per_hour == b->usd_per_hour && a->started == b->started;
}

static void apply_list(struct fplat *pl, struct rgt_instance_list *l,
		       time_t now)
{
	for (size_t i = 0; i < pl->n; i++)
		pl->inst[i].listed = false;
	for (size_t k = 0; k < l->n; k++) {
		struct rgt_instance *ri = &l->v[k];
		struct finst *in = find(pl, ri->id);
		if (!in && !(in = add(pl, ri->id)))
			continue;
		bool changed = in->state != ri->state || in->hidden ||
			       !same_str(in->status_msg, ri->status_msg) ||
			       !same_str(in->info_json, ri->info_json) ||
			       in->n_ep != ri->n_ep ||
			       memcmp(in->ep, ri->ep,
				      ri->n_ep * sizeof(ri->ep[0])) ||
			       !same_facts(&in->facts, &ri->facts);
		in->listed = true;
		in->hidden = false;
		in->seen = now;
		in->state = ri->state;
		if (in->seq_watch && ri->state != RGT_ST_STOPPED &&
		    ri->state != RGT_ST_DESTROYING) {
			in->seq_watch = false;
			rgt_log(RGT_INFO, "%s/%s: listed as %s after its "
				"destroy sequence began; a later rmdir "
				"verifies it anew", pl->sec->kind, in->id,
				rgt_state_name(ri->state));
		}
		free(in->status_msg);
		in->status_msg = ri->status_msg;
		ri->status_msg = NULL;
		free(in->info_json);
		in->info_json = ri->info_json;
		ri->info_json = NULL;
		memcpy(in->ep, ri->ep, sizeof(in->ep));
		in->n_ep = ri->n_ep;
		in->facts = ri->facts;
		in->facts.gpu[sizeof(in->facts.gpu) - 1] = '\0';
		if (in->remote)
			remote_set_endpoints(in->remote, in->ep, in->n_ep);
		if (changed)
			record_save(pl, in);
	}
	/*
	 * Absent from the list means gone only when the list is complete:
	 * an entry the adapter could not read may be exactly this instance
	 * (PLATFORMS.md: never map anything but a clear answer to gone).
	 */
	for (size_t i = 0; l->complete && i < pl->n; i++) {
		struct finst *in = &pl->inst[i];
		if (in->listed || in->hidden)
			continue;
		enum archive_phase ph;
		if (!archive_get_phase(pl->fl->st, pl->sec->kind, in->id, &ph) &&
		    ph != ARCH_RECORDED && in->state != RGT_ST_GONE) {
			/* A destroy rgtfs sent (or may have sent) went
			 * through: say so where the user looks. */
			struct buf b;
			buf_init(&b, 4u << 20);
			buf_appendf(&b, "the platform no longer lists the "
				    "instance: the destroy went through; the "
				    "verified copy is kept, and rmdir of this "
				    "directory archives it\n%s",
				    in->teardown ? in->teardown : "");
			char *t = buf_take(&b);
			if (t) {
				free(in->teardown);
				in->teardown = t;
			}
		}
		if (has_data(pl, in->id)) {
			if (in->state != RGT_ST_GONE) {
				in->state = RGT_ST_GONE;
				record_save(pl, in);
			}
		} else {
			char k[256];
			size_t klen = inst_key(k, sizeof(k), pl->sec->kind,
					       in->id);
			in->hidden = true;
			if (klen)
				store_meta_del(pl->fl->st, k, klen);
		}
	}
}

/* Count one adapter call that may have reached the platform; returns @rc. */
static int counted(struct fplat *pl, int rc)
{
	atomic_fetch_add_explicit(&pl->api_calls, 1, memory_order_relaxed);
	if (rc)
		atomic_fetch_add_explicit(&pl->api_failures, 1,
					  memory_order_relaxed);
	return rc;
}

/* ---- poller ---------------------------------------------------------------- */

static bool wait_or_stop(struct fleet *fl, int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&fl->stop_mu);
	while (!fl->stop &&
	       pthread_cond_timedwait(&fl->stop_cv, &fl->stop_mu, &ts) !=
		       ETIMEDOUT)
		;
	bool stop = fl->stop;
	pthread_mutex_unlock(&fl->stop_mu);
	return stop;
}

static int poll_once(struct fplat *pl, const char *id, bool *listed,
		     char *errout, size_t errlen);

static void *poller_main(void *arg)
{
	struct fplat *pl = arg;

	do {
		poll_once(pl, NULL, NULL, NULL, 0);
	} while (!wait_or_stop(pl->fl, pl->sec->poll_interval));
	return NULL;
}

/*
 * One list call, applied. If @id: *listed says whether the answer has it.
 * Returns the adapter's result; its reason goes to .error and to @err.
 */
/*
 * Platforms that keep a login password per instance (AutoDL) when the
 * section gives neither a key nor a password: the poller fetches it, a
 * few instances per poll, so no read ever waits for the API. Asked again
 * when a login with it was refused; a failed fetch waits a minute.
 */
static bool wanted_password(const struct fplat *pl)
{
	return pl->p && pl->ops->password && !pl->sec->ssh_key &&
	       !config_get(pl->sec, "password_env") &&
	       !config_get(pl->sec, "password_file");
}

#define PW_PER_POLL 4
#define PW_RETRY_S 60

static void fetch_passwords(struct fplat *pl, time_t now)
{
	char ids[PW_PER_POLL][RGT_ID_MAX];
	size_t n = 0;
	if (!wanted_password(pl))
		return;
	pthread_mutex_lock(&pl->mu);
	for (size_t i = 0; i < pl->n && n < PW_PER_POLL; i++) {
		struct finst *in = &pl->inst[i];
		bool refused = in->plat_pw && in->remote &&
			       remote_password_refused(in->remote);
		if (in->listed && in->state == RGT_ST_RUNNING &&
		    (!in->plat_pw || refused) && now >= in->pw_retry)
			snprintf(ids[n++], RGT_ID_MAX, "%s", in->id);
	}
	pthread_mutex_unlock(&pl->mu);
	for (size_t k = 0; k < n; k++) {
		char *pw = NULL, err[320] = "";
		pthread_mutex_lock(&pl->api_mu);
		int rc = counted(pl, pl->ops->password(pl->p, ids[k], &pw, err,
						       sizeof(err)));
		pthread_mutex_unlock(&pl->api_mu);
		pthread_mutex_lock(&pl->mu);
		struct finst *in = find(pl, ids[k]);
		if (in && !rc) {
			remote_password_free(in->plat_pw);
			in->plat_pw = pw;
			pw = NULL;
			in->pw_retry = 0;
			if (in->remote)
				remote_set_password(in->remote, in->plat_pw);
		} else if (in) {
			in->pw_retry = now + PW_RETRY_S;
			if (rc != -ENOENT)
				rgt_log(RGT_WARN, "%s/%s: no login password from "
					"the platform: %s", pl->sec->kind, ids[k],
					err[0] ? err : strerror(-rc));
		}
		pthread_mutex_unlock(&pl->mu);
		remote_password_free(pw);
	}
}

static int poll_once(struct fplat *pl, const char *id, bool *listed,
		     char *errout, size_t errlen)
{
	{
		struct rgt_instance_list l = { 0 };
		char err[512] = "";
		pthread_mutex_lock(&pl->api_mu);
		int rc = counted(pl, pl->ops->list(pl->p, &l, err,
						   sizeof(err)));
		pthread_mutex_unlock(&pl->api_mu);
		time_t now = time(NULL);

		if (listed) {
			/* Not in an incomplete list is not "not listed". */
			*listed = rc || !l.complete;
			for (size_t i = 0; !rc && i < l.n; i++)
				if (!strcmp(l.v[i].id, id))
					*listed = true;
		}
		if (errout)
			snprintf(errout, errlen, "%s", err);
		pthread_mutex_lock(&pl->mu);
		pl->polls++;
		if (!rc) {
			/* A good list may carry a note (malformed entries
			 * skipped): log it when it changes, not every poll. */
			if (strcmp(pl->note, err)) {
				if (err[0])
					rgt_log(RGT_WARN, "%s: %s",
						pl->sec->kind, err);
				snprintf(pl->note, sizeof(pl->note), "%s",
					 err);
			}
			apply_list(pl, &l, now);
			pl->last_ok = now;
			if (pl->error[0])
				rgt_log(RGT_INFO, "%s: API answers again",
					pl->sec->kind);
			pl->error[0] = '\0';
		} else {
			/* No answer: the box may have run meanwhile. */
			for (size_t i = 0; i < pl->n; i++)
				pl->inst[i].seq_watch = false;
			if (!err[0])
				snprintf(err, sizeof(err), "%s",
					 strerror(-rc));
			if (strcmp(pl->error, err))
				rgt_log(RGT_WARN, "%s: %s", pl->sec->kind,
					err);
			snprintf(pl->error, sizeof(pl->error), "%s", err);
		}
		pthread_mutex_unlock(&pl->mu);
		rgt_instance_list_free(&l);
		if (!rc && !id)
			fetch_passwords(pl, now);
		return rc;
	}
}

/* ---- setup --------------------------------------------------------------------- */

struct load_ctx {
	struct fplat *pl;
	size_t plen;
};

static int load_fn(void *arg, const void *k, size_t kl, const void *v,
		   size_t vl)
{
	struct load_ctx *c = arg;
	const char *id = (const char *)k + c->plen;
	size_t idlen = kl - c->plen;
	char idbuf[RGT_ID_MAX];

	if (!idlen || idlen >= sizeof(idbuf))
		return 0;
	memcpy(idbuf, id, idlen);
	idbuf[idlen] = '\0';
	if (!platform_id_valid(idbuf))
		return 0;
	/*
	 * Only this section's own instances: with [ssh:a] and [ssh:b], or two
	 * vast.ai accounts, a record loaded into the wrong section would be
	 * "absent from its complete list", shown gone, and archived by an
	 * rmdir without any teardown. A record from before sections were
	 * recorded belongs to the kind's unnamed section, or for ssh hosts
	 * to the section named like the instance.
	 */
	const struct rgt_section *sec = c->pl->sec;
	json_t *o = json_loadb(v, vl, 0, NULL);
	const char *owner = json_string_value(json_object_get(o, "section"));
	bool mine = owner ? !strcmp(owner, sec->name) :
		    !strcmp(sec->kind, "ssh") ? !strcmp(idbuf, sec->name) :
						!strcmp(sec->name, sec->kind);
	json_decref(o);
	if (!mine)
		return 0;
	struct finst *in = add(c->pl, idbuf);
	if (in && record_decode(v, vl, in))
		c->pl->n--;	/* unreadable record: ignore it */
	return 0;
}

int fleet_new(const struct rgt_config *cfg, struct store *st,
	      struct fleet **out, char *err, size_t errlen)
{
	struct fleet *fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	fl->cfg = cfg;
	fl->st = st;
	pthread_mutex_init(&fl->stop_mu, NULL);
	/* A wall-clock jump must not stretch or cut a poll interval. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fl->stop_cv, &ca);
	pthread_condattr_destroy(&ca);
	fl->pl = calloc(cfg->nsec ? cfg->nsec : 1, sizeof(*fl->pl));
	if (!fl->pl) {
		fleet_free(fl);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->nsec; i++) {
		const struct rgt_section *sec = &cfg->sec[i];
		const struct platform_ops *ops = platform_find(sec->kind);
		if (!ops) {
			if (strcmp(sec->kind, "cloud"))
				rgt_log(RGT_WARN,
					"%s:%d: [%s%s%s] is not supported yet; "
					"skipped", cfg->path ? cfg->path : "",
					sec->line, sec->kind,
					strcmp(sec->kind, sec->name) ? ":" : "",
					strcmp(sec->kind, sec->name) ?
						sec->name : "");
			continue;
		}
		struct fplat *pl = &fl->pl[fl->npl];
		pl->fl = fl;
		pl->sec = sec;
		pl->ops = ops;
		pthread_mutex_init(&pl->mu, NULL);
		pthread_mutex_init(&pl->api_mu, NULL);
		pthread_mutex_init(&pl->log_mu, NULL);
		fl->npl++;
		/* A platform that cannot start (no key, bad api_url) still
		 * shows its last known instances, with the reason in .error;
		 * it must not take the other platforms down with it. */
		char oerr[512] = "";
		int rc = ops->open(sec, &pl->p, oerr, sizeof(oerr));
		if (rc) {
			pl->p = NULL;
			snprintf(pl->error, sizeof(pl->error), "%s",
				 oerr[0] ? oerr : strerror(-rc));
			rgt_log(RGT_ERR, "%s", pl->error);
		}
		char k[64];
		int n = snprintf(k, sizeof(k), "inst%c%s%c", 0, sec->kind, 0);
		struct load_ctx lc = { pl, (size_t)n };
		store_meta_scan(st, k, n, load_fn, &lc);
		/* Loaded instances count as last seen at their record time;
		 * `status` turns "unknown" once that is stale_after old. */
		for (size_t k2 = 0; k2 < pl->n; k2++)
			if (pl->inst[k2].seen > pl->last_ok)
				pl->last_ok = pl->inst[k2].seen;
	}
	fl->dir_kind = calloc(fl->npl ? fl->npl : 1, sizeof(*fl->dir_kind));
	if (!fl->dir_kind) {
		fleet_free(fl);
		return -ENOMEM;
	}
	for (size_t i = 0; i < fl->npl; i++) {
		const char *k = fl->pl[i].sec->kind;
		size_t d = 0;
		while (d < fl->ndirs && strcmp(fl->dir_kind[d], k))
			d++;
		if (d == fl->ndirs)
			fl->dir_kind[fl->ndirs++] = k;
	}
	*out = fl;
	return 0;
}

int fleet_start(struct fleet *fl)
{
	for (size_t i = 0; i < fl->npl; i++) {
		if (!fl->pl[i].p)
			continue;	/* could not open: nothing to poll */
		if (pthread_create(&fl->pl[i].thread, NULL, poller_main,
				   &fl->pl[i]))
			return -EAGAIN;
		fl->pl[i].started = true;
	}
	return 0;
}

void fleet_stop(struct fleet *fl)
{
	if (!fl)
		return;
	pthread_mutex_lock(&fl->stop_mu);
	fl->stop = true;
	pthread_cond_broadcast(&fl->stop_cv);
	pthread_mutex_unlock(&fl->stop_mu);
	for (size_t i = 0; i < fl->npl; i++) {
		if (fl->pl[i].started)
			pthread_join(fl->pl[i].thread, NULL);
		fl->pl[i].started = false;
	}
}

void fleet_free(struct fleet *fl)
{
	if (!fl)
		return;
	fleet_stop(fl);
	for (size_t i = 0; i < fl->npl; i++) {
		struct fplat *pl = &fl->pl[i];
		for (size_t k = 0; k < pl->n; k++) {
			free(pl->inst[k].status_msg);
			free(pl->inst[k].info_json);
			free(pl->inst[k].teardown);
			free(pl->inst[k].plog);
			remote_password_free(pl->inst[k].plat_pw);
			remote_free(pl->inst[k].remote);
		}
		free(pl->inst);
		if (pl->p)
			pl->ops->close(pl->p);
		pthread_mutex_destroy(&pl->mu);
		pthread_mutex_destroy(&pl->api_mu);
		pthread_mutex_destroy(&pl->log_mu);
	}
	free(fl->pl);
	free(fl->dir_kind);
	pthread_mutex_destroy(&fl->stop_mu);
	pthread_cond_destroy(&fl->stop_cv);
	free(fl);
}

/* ---- queries -------------------------------------------------------------------- */

size_t fleet_ndirs(struct fleet *fl)
{
	return fl->ndirs;
}

const char *fleet_dir_name(struct fleet *fl, size_t d)
{
	return fl->dir_kind[d];
}

int fleet_dir_index(struct fleet *fl, const char *name)
{
	for (size_t d = 0; d < fl->ndirs; d++)
		if (!strcmp(fl->dir_kind[d], name))
			return (int)d;
	return -1;
}

const char *fleet_platform_name(struct fleet *fl, size_t pi)
{
	return fl->pl[pi].sec->kind;
}

int fleet_instance_section(struct fleet *fl, size_t d, const char *id)
{
	for (size_t i = 0; i < fl->npl; i++)
		if (!strcmp(fl->pl[i].sec->kind, fl->dir_kind[d]) &&
		    fleet_instance_visible(fl, i, id))
			return (int)i;
	return -1;
}

const struct rgt_section *fleet_section(struct fleet *fl, size_t pi)
{
	return fl->pl[pi].sec;
}

unsigned long fleet_polls(struct fleet *fl, size_t pi)
{
	pthread_mutex_lock(&fl->pl[pi].mu);
	unsigned long n = fl->pl[pi].polls;
	pthread_mutex_unlock(&fl->pl[pi].mu);
	return n;
}

size_t fleet_nsections(struct fleet *fl)
{
	return fl->npl;
}

void fleet_api_counts(struct fleet *fl, size_t pi, unsigned long *calls,
		      unsigned long *failures)
{
	*calls = atomic_load_explicit(&fl->pl[pi].api_calls,
				      memory_order_relaxed);
	*failures = atomic_load_explicit(&fl->pl[pi].api_failures,
					 memory_order_relaxed);
}

int fleet_instance_facts(struct fleet *fl, size_t pi, const char *id,
			 struct rgt_facts *out)
{
	struct fplat *pl = &fl->pl[pi];
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in && !in->hidden)
		*out = in->facts;
	pthread_mutex_unlock(&pl->mu);
	return in && !in->hidden ? 0 : -ENOENT;
}

void fleet_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static bool have_id(char **v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], id))
			return true;
	return false;
}

int fleet_instance_ids(struct fleet *fl, size_t d, char ***ids, size_t *n)
{
	char **v = NULL;
	size_t k = 0, cap = 0;
	int rc = 0;
	for (size_t s = 0; !rc && s < fl->npl; s++) {
		struct fplat *pl = &fl->pl[s];
		if (strcmp(pl->sec->kind, fl->dir_kind[d]))
			continue;
		pthread_mutex_lock(&pl->mu);
		for (size_t i = 0; !rc && i < pl->n; i++) {
			if (pl->inst[i].hidden || have_id(v, k, pl->inst[i].id))
				continue;	/* the first section wins */
			if (k == cap) {
				size_t nc = cap ? 2 * cap : 16;
				char **nv = realloc(v, nc * sizeof(*nv));
				if (!nv) {
					rc = -ENOMEM;
					break;
				}
				v = nv;
				cap = nc;
			}
			if (!(v[k] = strdup(pl->inst[i].id)))
				rc = -ENOMEM;
			else
				k++;
		}
		pthread_mutex_unlock(&pl->mu);
	}
	if (rc) {
		fleet_ids_free(v, k);
		return rc;
	}
	*ids = v ? v : calloc(1, sizeof(*v));
	*n = k;
	return *ids ? 0 : -ENOMEM;
}

bool fleet_instance_visible(struct fleet *fl, size_t pi, const char *id)
{
	struct fplat *pl = &fl->pl[pi];
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	bool vis = in && !in->hidden;
	pthread_mutex_unlock(&pl->mu);
	return vis;
}

/* What `status` says now (pl->mu held). */
static enum rgt_state shown_state(struct fplat *pl, const struct finst *in)
{
	if (in->state == RGT_ST_GONE)
		return RGT_ST_GONE;
	if (pl->error[0] || !in->listed) {
		/* No fresh answer about it: last known, for a while. */
		if (time(NULL) - pl->last_ok > pl->sec->stale_after)
			return RGT_ST_UNKNOWN;
	}
	return in->state;
}

int fleet_instance_file(struct fleet *fl, size_t pi, const char *id,
			enum fleet_file which, struct buf *out)
{
	struct fplat *pl = &fl->pl[pi];
	struct remote *r = NULL;
	int rc = 0;

	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (!in || in->hidden) {
		pthread_mutex_unlock(&pl->mu);
		return -ENOENT;
	}
	switch (which) {
	case FF_STATUS:
		rc = buf_appendf(out, "%s\n",
				 rgt_state_name(shown_state(pl, in)));
		break;
	case FF_STATUS_MSG:
		rc = buf_appendf(out, "%s\n",
				 in->status_msg ? in->status_msg : "");
		break;
	case FF_INFO:
		rc = buf_appendf(out, "%s", in->info_json && *in->info_json ?
						    in->info_json :
						    "{}\n");
		break;
	case FF_SSH:
		if (in->n_ep)
			rc = buf_appendf(out, "ssh -p %d %s@%s\n",
					 in->ep[0].port,
					 in->ep[0].user[0] ? in->ep[0].user :
							     pl->sec->ssh_user,
					 in->ep[0].host);
		break;
	case FF_TEARDOWN: {
		enum archive_phase ph;
		unsigned verbs = 0;
		if (in->teardown)
			rc = buf_appendf(out, "%s", in->teardown);
		else if (!archive_get_progress(fl->st, pl->sec->kind, in->id,
					       &ph, &verbs) &&
			 ph == ARCH_DESTROY_ACCEPTED && verbs)
			/* After a remount, in the middle of a sequence. */
			rc = buf_appendf(out, "a destroy sequence stopped "
					 "after %u of its calls; the verified "
					 "copy is kept in the cache. rgtfs has "
					 "not watched the instance since, so it "
					 "is verified anew: start it and rmdir "
					 "again, or finish from the platform's "
					 "console\n", verbs);
		else if (!archive_get_phase(fl->st, pl->sec->kind, in->id,
					    &ph) && ph != ARCH_RECORDED)
			/* After a remount: the journal still says so. */
			rc = buf_appendf(out, "a destroy call was made (%s); "
					 "the verified copy is kept in the "
					 "cache, and rmdir archives it once the "
					 "platform no longer lists the "
					 "instance\n",
					 archive_phase_name(ph));
		break;
	}
	case FF_ERROR:
		r = in->remote;
		break;
	}
	pthread_mutex_unlock(&pl->mu);
	if (r) {
		char e[512];
		remote_error(r, e, sizeof(e));
		if (e[0])
			rc = buf_appendf(out, "%s\n", e);
	}
	return rc;
}

int fleet_platform_error(struct fleet *fl, size_t d, struct buf *out)
{
	int rc = 0, nsec = 0;
	for (size_t s = 0; s < fl->npl; s++)
		nsec += !strcmp(fl->pl[s].sec->kind, fl->dir_kind[d]);
	for (size_t s = 0; !rc && s < fl->npl; s++) {
		struct fplat *pl = &fl->pl[s];
		if (strcmp(pl->sec->kind, fl->dir_kind[d]))
			continue;
		pthread_mutex_lock(&pl->mu);
		/* one section: its reason as is; several: each named */
		if (pl->error[0] && nsec > 1)
			rc = buf_appendf(out, "[%s:%s] %s\n", pl->sec->kind,
					 pl->sec->name, pl->error);
		else if (pl->error[0])
			rc = buf_appendf(out, "%s\n", pl->error);
		pthread_mutex_unlock(&pl->mu);
	}
	return rc;
}

struct remote *fleet_remote(struct fleet *fl, size_t pi, const char *id)
{
	struct fplat *pl = &fl->pl[pi];
	struct remote *r = NULL;

	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in && !in->remote) {
		/* Read once per remote, wiped once it is copied into it. */
		char perr[320];
		char *pw = remote_password_load(pl->sec, perr, sizeof(perr));
		if (!pw && perr[0])
			rgt_log(RGT_WARN, "%s/%s: %s", pl->sec->kind, in->id,
				perr);
		struct remote_params p = {
			.platform = pl->sec->kind,
			.id = in->id,
			.user = pl->sec->ssh_user,
			.key_path = pl->sec->ssh_key,
			.password = pw,
			.strict_host_keys = pl->sec->strict_host_keys,
			.connect_timeout_ms = fl->cfg->connect_timeout_ms,
			.io_timeout_ms = fl->cfg->io_timeout_ms,
			.max_sessions = fl->cfg->sessions,
			.store = fl->st,
			.transport = pl->sec->transport,
			.state_dir = fl->cfg->cache_dir,
		};
		if (!remote_new(&p, &in->remote)) {
			remote_set_endpoints(in->remote, in->ep, in->n_ep);
			if (in->plat_pw)
				remote_set_password(in->remote, in->plat_pw);
		}
		remote_password_free(pw);
	}
	if (in)
		r = in->remote;
	pthread_mutex_unlock(&pl->mu);
	return r;
}

/* ---- teardown support ------------------------------------------------------ */

int fleet_instance_state(struct fleet *fl, size_t pi, const char *id,
			 int *state)
{
	struct fplat *pl = &fl->pl[pi];
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in && !in->hidden)
		*state = shown_state(pl, in);
	pthread_mutex_unlock(&pl->mu);
	return in && !in->hidden ? 0 : -ENOENT;
}

int fleet_caps(struct fleet *fl, size_t pi, struct platform_caps *out)
{
	struct fplat *pl = &fl->pl[pi];
	memset(out, 0, sizeof(*out));
	if (!pl->p)
		return -EIO;	/* no adapter: nothing is known it can do */
	pl->ops->caps(pl->p, out);
	return 0;
}

int fleet_destroy(struct fleet *fl, size_t pi, const char *id, size_t step,
		  bool *maybe_sent, char *err, size_t errlen)
{
	struct fplat *pl = &fl->pl[pi];
	*maybe_sent = false;
	if (!pl->p || !pl->ops->destroy) {
		snprintf(err, errlen, "%s", pl->p ? "no destroy verb" :
						    pl->error);
		return -EIO;
	}
	pthread_mutex_lock(&pl->api_mu);
	int rc = counted(pl, pl->ops->destroy(pl->p, id, step, maybe_sent,
					      err, errlen));
	pthread_mutex_unlock(&pl->api_mu);
	return rc;
}

int fleet_destroy_ready(struct fleet *fl, size_t pi, const char *id,
			size_t step)
{
	struct fplat *pl = &fl->pl[pi];
	if (!pl->p || !pl->ops->destroy_ready)
		return 1;
	pthread_mutex_lock(&pl->api_mu);
	int rc = pl->ops->destroy_ready(pl->p, id, step);
	pthread_mutex_unlock(&pl->api_mu);
	return rc;
}

int fleet_orphans(struct fleet *fl, size_t pi, const char *id, struct buf *out,
		  char *err, size_t errlen)
{
	struct fplat *pl = &fl->pl[pi];
	if (!pl->p || !pl->ops->orphans)
		return 0;
	pthread_mutex_lock(&pl->api_mu);
	int rc = counted(pl, pl->ops->orphans(pl->p, id, out, err, errlen));
	pthread_mutex_unlock(&pl->api_mu);
	return rc;
}

static long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The fresh cached answer for @id into @out/@err: true if there was one. */
static bool plog_cached(struct fplat *pl, const char *id, struct buf *out,
			int *rc, char *err, size_t errlen)
{
	bool hit = false;
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in && in->plog_ms && mono_ms() - in->plog_ms < PLOG_REUSE_MS) {
		*rc = in->plog_rc;
		if (!*rc && in->plog_len)
			*rc = buf_append(out, in->plog, in->plog_len);
		snprintf(err, errlen, "%s", in->plog_err);
		hit = true;
	}
	pthread_mutex_unlock(&pl->mu);
	return hit;
}

int fleet_log(struct fleet *fl, size_t pi, const char *id, struct buf *out,
	      char *err, size_t errlen)
{
	struct fplat *pl = &fl->pl[pi];
	size_t start = out->len;
	int rc;
	if (err && errlen)
		err[0] = '\0';
	if (!pl->p || !pl->ops->log) {
		snprintf(err, errlen, "%s", pl->p ? "no log API" : pl->error);
		return -EIO;
	}
	if (plog_cached(pl, id, out, &rc, err, errlen))
		return rc;
	/* Not api_mu: a streamed log takes seconds, and the poller must not
	 * wait for it (platform.h: log() reads only what open() set). */
	pthread_mutex_lock(&pl->log_mu);
	/* Another reader may have fetched it while we waited. */
	if (plog_cached(pl, id, out, &rc, err, errlen)) {
		pthread_mutex_unlock(&pl->log_mu);
		return rc;
	}
	rc = counted(pl, pl->ops->log(pl->p, id, out, err, errlen));
	pthread_mutex_unlock(&pl->log_mu);
	if (rc)
		out->len = start;	/* a failed read shows nothing of it */
	if (out->data)
		out->data[out->len] = '\0';
	char *copy = NULL;
	size_t n = out->len - start;
	if (!rc && n && !(copy = malloc(n)))
		return rc;	/* not cached; the answer still stands */
	if (copy)
		memcpy(copy, out->data + start, n);
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in) {
		free(in->plog);
		in->plog = copy;
		copy = NULL;
		in->plog_len = n;
		in->plog_rc = rc;
		snprintf(in->plog_err, sizeof(in->plog_err), "%s", err);
		in->plog_ms = mono_ms();
		if (!in->plog_ms)
			in->plog_ms = 1;
	}
	pthread_mutex_unlock(&pl->mu);
	free(copy);
	return rc;
}

void fleet_seq_watch(struct fleet *fl, size_t pi, const char *id, bool on)
{
	struct fplat *pl = &fl->pl[pi];
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in)
		in->seq_watch = on;
	pthread_mutex_unlock(&pl->mu);
}

bool fleet_seq_watched(struct fleet *fl, size_t pi, const char *id)
{
	struct fplat *pl = &fl->pl[pi];
	bool on = false;
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in)
		on = in->seq_watch;
	pthread_mutex_unlock(&pl->mu);
	return on;
}

size_t fleet_log_size(struct fleet *fl, size_t pi, const char *id)
{
	struct fplat *pl = &fl->pl[pi];
	size_t n = 0;
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in && in->plog_ms && !in->plog_rc)
		n = in->plog_len;
	pthread_mutex_unlock(&pl->mu);
	return n;
}

int fleet_poll_now(struct fleet *fl, size_t pi, const char *id, bool *listed,
		   char *err, size_t errlen)
{
	struct fplat *pl = &fl->pl[pi];
	if (!pl->p) {
		snprintf(err, errlen, "%s", pl->error);
		return -EIO;
	}
	return poll_once(pl, id, listed, err, errlen);
}

void fleet_set_teardown(struct fleet *fl, size_t pi, const char *id,
			const char *text)
{
	struct fplat *pl = &fl->pl[pi];
	char *copy = strdup(text);
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in && copy) {
		free(in->teardown);
		in->teardown = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&pl->mu);
	free(copy);
}

int fleet_teardown_begin(struct fleet *fl, size_t pi, const char *id)
{
	struct fplat *pl = &fl->pl[pi];
	int rc = 0;
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (!in || in->hidden)
		rc = -ENOENT;
	else if (in->tearing_down)
		rc = -EBUSY;
	else
		in->tearing_down = true;
	pthread_mutex_unlock(&pl->mu);
	return rc;
}

void fleet_teardown_end(struct fleet *fl, size_t pi, const char *id)
{
	struct fplat *pl = &fl->pl[pi];
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in)
		in->tearing_down = false;
	pthread_mutex_unlock(&pl->mu);
}

int fleet_snapshot(struct fleet *fl, size_t pi, const char *id,
		   char **status_msg, char **info, char **ssh)
{
	struct buf b;
	int rc;
	*status_msg = *info = *ssh = NULL;
	buf_init(&b, 1u << 20);
	rc = fleet_instance_file(fl, pi, id, FF_STATUS_MSG, &b);
	if (!rc)
		*status_msg = buf_take(&b);
	buf_init(&b, 1u << 20);
	if (!rc)
		rc = fleet_instance_file(fl, pi, id, FF_INFO, &b);
	if (!rc)
		*info = buf_take(&b);
	buf_init(&b, 1u << 20);
	if (!rc)
		rc = fleet_instance_file(fl, pi, id, FF_SSH, &b);
	if (!rc)
		*ssh = buf_take(&b);
	buf_cleanup(&b);
	return rc;
}

struct del_ctx {
	char **keys;
	size_t *lens;
	size_t n, cap;
};

static int collect_key(void *arg, const void *k, size_t kl, const void *v,
		       size_t vl)
{
	struct del_ctx *c = arg;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 32;
		char **nk = realloc(c->keys, nc * sizeof(*nk));
		size_t *nl = nk ? realloc(c->lens, nc * sizeof(*nl)) : NULL;
		if (nk)
			c->keys = nk;
		if (!nk || !nl)
			return -ENOMEM;
		c->lens = nl;
		c->cap = nc;
	}
	if (!(c->keys[c->n] = malloc(kl)))
		return -ENOMEM;
	memcpy(c->keys[c->n], k, kl);
	c->lens[c->n++] = kl;
	return 0;
}

/* Delete every meta record "KIND\0PLAT\0ID\0..." of the instance. */
static void drop_records(struct store *st, const char *kind,
			 const char *plat, const char *id, bool exact)
{
	char k[512];
	int n = snprintf(k, sizeof(k), "%s%c%s%c%s%c", kind, 0, plat, 0, id,
			 0);
	if (n < 0 || (size_t)n >= sizeof(k))
		return;
	if (exact) {
		store_meta_del(st, k, n - 1);
		return;
	}
	struct del_ctx c = { 0 };
	store_meta_scan(st, k, n, collect_key, &c);
	for (size_t i = 0; i < c.n; i++) {
		store_meta_del(st, c.keys[i], c.lens[i]);
		free(c.keys[i]);
	}
	free(c.keys);
	free(c.lens);
}

void fleet_forget(struct fleet *fl, size_t pi, const char *id)
{
	struct fplat *pl = &fl->pl[pi];
	pthread_mutex_lock(&pl->mu);
	struct finst *in = find(pl, id);
	if (in)
		in->hidden = true;
	pthread_mutex_unlock(&pl->mu);
	drop_records(fl->st, "inst", pl->sec->kind, id, true);
	archive_delete_pending(fl->st, pl->sec->kind, id);
	drop_records(fl->st, "dir", pl->sec->kind, id, false);
	drop_records(fl->st, "attr", pl->sec->kind, id, false);
}

bool fleet_pinned(void *arg, const char *plat, const char *id)
{
	struct fleet *fl = arg;
	/* MOUNT/cloud/NAME reads: the bucket keeps them, nothing else
	 * depends on them (an instance's copy is owned by the instance). */
	if (!strcmp(plat, "cloud"))
		return false;
	struct life_facts f = { .archived = archive_exists(fl->st, plat, id) };
	enum archive_phase ph = ARCH_RECORDED;
	f.journal = !archive_get_phase(fl->st, plat, id, &ph);
	f.phase = ph;
	/* Every section of the kind: the id may be known to any of them,
	 * and a fact that pins in one pins. */
	for (size_t s = 0; s < fl->npl; s++) {
		struct fplat *pl = &fl->pl[s];
		if (strcmp(pl->sec->kind, plat))
			continue;
		pthread_mutex_lock(&pl->mu);
		struct finst *in = find(pl, id);
		if (in && !in->hidden) {
			f.known = true;
			f.tearing_down |= in->tearing_down;
			f.gone |= in->state == RGT_ST_GONE ||
				  in->state == RGT_ST_DESTROYING;
		}
		pthread_mutex_unlock(&pl->mu);
	}
	return life_pinned(life_of(&f));
}
