/*
 * remote.c - one instance's remote side (see remote.h).
 *
 * DESIGN
 * Sessions. Up to max_sessions transport sessions per instance, kept in an
 * idle stack. A session is owned by exactly one thread between acquire and
 * release (libssh2's rule: one thread per session). A session whose last
 * call failed at the session level is closed on release, never reused.
 * Endpoint changes bump a generation; sessions of an older generation
 * (idle ones, and busy ones when they come back) are closed, so a
 * re-created box is reached at its new port without a remount.
 *
 * Closing a session is network I/O (SFTP shutdown, SSH disconnect) and can
 * wait on a silent peer, so it never happens under r->mu, nor in
 * remote_set_endpoints(), which the poller calls under its own lock: the
 * sessions to close are taken out of the pool under r->mu and closed after
 * it is dropped ("buried"), and stale idle sessions are swept by the next
 * acquire or release.
 *
 * Clocks. Every wait and every "failed N seconds ago" uses CLOCK_MONOTONIC:
 * a wall-clock jump neither stretches nor cuts them. Only rlisting.fetched
 * (shown to users) is wall-clock time.
 *
 * Fail fast. When every endpoint failed, the error is remembered for
 * RETRY_AFTER seconds and returned at once to the next caller, so a dead
 * box costs one connect timeout, not one per file.
 *
 * Host keys. Trust on first use, pinned per (platform, instance id) in the
 * store, never per host:port (ports are reused by other boxes). A different
 * key later is refused with -EACCES until the user removes the pin. The
 * first pin is a put-if-absent in one LMDB write transaction, so parallel
 * first connects (threads, or two processes on one cache) pin one key and
 * refuse the others.
 *
 * Passwords. For boxes that take nothing else (SPEC password_env /
 * password_file): read once when the remote is made, copied here, wiped
 * when it is freed, handed to the transport only as a borrowed pointer and
 * tried only after the key or agent was refused or missing. No message
 * ever holds one.
 *
 * Transports. SSH goes through xfer_openssh_ops or xfer_sftp_ops
 * (remote_params.transport); in auto mode OpenSSH first, libssh2 for the
 * rest of the same connect budget if OpenSSH failed for any reason but a
 * verdict (-EACCES), and libssh2 from then on if that is what worked where
 * OpenSSH cannot (-ENOTSUP, -ENOENT, -EINVAL: no ssh, too old, no SFTP). The
 * transport in use is logged once (INFO) whenever it changes. Both
 * transports keep the same host-key pin (hostkey_check()).
 *
 * Listings. A directory listing is fetched whole (names with attributes in
 * one SFTP readdir pass), kept in memory for max_age seconds and written to
 * the store when it changes, so the tree still lists after the box is gone.
 */
#include "remote.h"
#include "rpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "store.h"

#define RETRY_AFTER 2		/* seconds a failed connect is remembered */
#define MAX_SESSIONS 16
/*
 * remote_hash_deadline_ms(): the slowest hashing we wait for. 25 MB/s is a
 * floor well below what a GPU box's disk and one sha256sum core do (500+
 * MB/s measured), low enough for a cold network volume; the 60 s cover the
 * exec channel, the shell's start-up and page-cache misses.
 */
#define HASH_FLOOR_BYTES_PER_S 25000000ull	/* 25 MB/s */
#define HASH_SLACK_MS 60000L
#define MAX_LISTING 200000	/* entries per directory */
#define MEM_LISTINGS 64

struct memdir {
	char *path;
	struct rlisting *l;	/* one reference held here */
	int is_attr;		/* attr record of one file (l->n == 1) */
};

struct remote {
	struct remote_params p;	/* strings owned */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rgt_endpoint ep[2];
	int n_ep;
	unsigned gen;		/* bumped when endpoints change */
	struct {
		struct xfer *x;
		unsigned gen;
	} idle[MAX_SESSIONS], busy[MAX_SESSIONS];
	int n_idle;
	int n_busy;		/* handed out by acquire, with their gen */
	int n_open;		/* idle + in use + connecting */
	int64_t fail_at;	/* last failed connect, monotonic ms; 0: none */
	int fail_rc;
	char err[512];
	struct memdir mem[MEM_LISTINGS];
	unsigned mem_next;
	/* The platform's password (remote_set_password); pw_mu. */
	pthread_mutex_t pw_mu;
	char *plat_pw;
	bool plat_pw_refused;
	/* Transports (no lock: atomics). */
	char *ssh_dir;				/* <state_dir>/ssh or NULL */
	_Atomic(const struct xfer_ops *) used_ops; /* last that connected */
	atomic_bool auto_libssh2;		/* auto: OpenSSH failed here */
};

struct rlisting_int {
	struct rlisting l;
	int refs;
	pthread_mutex_t mu;
	int64_t mono;		/* when fetched, monotonic ms (freshness) */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long remote_hash_deadline_ms(uint64_t bytes, long io_timeout_ms)
{
	uint64_t per_ms = HASH_FLOOR_BYTES_PER_S / 1000;
	uint64_t work = bytes / per_ms + (bytes % per_ms ? 1 : 0);
	uint64_t base = (uint64_t)(io_timeout_ms > 0 ? io_timeout_ms : 0) +
			HASH_SLACK_MS;
	if (base > LONG_MAX || work > (uint64_t)LONG_MAX - base)
		return LONG_MAX;
	return (long)(base + work);
}

/* ---- host keys ----------------------------------------------------------- */

static size_t key_of(char *buf, size_t len, const char *kind,
		     const struct remote *r, const char *path)
{
	int n = snprintf(buf, len, "%s%c%s%c%s", kind, 0, r->p.platform, 0,
			 r->p.id);
	if (path && n >= 0 && (size_t)n + 1 < len)
		n += 1 + snprintf(buf + n + 1, len - n - 1, "%s", path);
	return n < 0 ? 0 : ((size_t)n >= len ? len - 1 : (size_t)n);
}

struct hk_ctx {
	struct remote *r;
	const struct rgt_endpoint *ep;
};

static int remote_peek_hostkey(struct remote *r, const char *type,
			       const unsigned char *key, size_t keylen,
			       char *err, size_t errlen);
static int hostkey_check_mode(void *arg, const char *type,
			      const unsigned char *key, size_t keylen,
			      char *err, size_t errlen, bool record);
static int hostkey_judge(void *arg, const char *type,
			     const unsigned char *key, size_t keylen,
			     char *err, size_t errlen);

static int hostkey_check(void *arg, const char *type, const unsigned char *key,
			 size_t keylen, char *err, size_t errlen)
{
	return hostkey_check_mode(arg, type, key, keylen, err, errlen, true);
}

/* xfer_params.hostkey_peek: hostkey_check that never writes a pin. */
static int hostkey_peek(void *arg, const char *type, const unsigned char *key,
			size_t keylen, char *err, size_t errlen)
{
	return hostkey_check_mode(arg, type, key, keylen, err, errlen, false);
}

static int hostkey_check_mode(void *arg, const char *type,
			      const unsigned char *key, size_t keylen,
			      char *err, size_t errlen, bool record)
{
	struct hk_ctx *c = arg;
	if (!record && !c->r->p.strict_host_keys)
		return remote_peek_hostkey(c->r, type, key, keylen, err,
					   errlen);
	return hostkey_judge(arg, type, key, keylen, err, errlen);
}

static int hostkey_judge(void *arg, const char *type, const unsigned char *key,
			 size_t keylen, char *err, size_t errlen)
{
	struct hk_ctx *c = arg;
	struct remote *r = c->r;
	char fp[128];
	int rc;

	if (r->p.strict_host_keys) {
		char *kh = config_expand_home("~/.ssh/known_hosts");
		rc = kh ? xfer_known_hosts_check(kh, c->ep->host, c->ep->port,
						 type, key, keylen) :
			  -ENOMEM;
		free(kh);
		if (rc) {
			xfer_key_fingerprint(key, keylen, fp, sizeof(fp));
			snprintf(err, errlen,
				 "host key %s %s of %s:%d is not in "
				 "~/.ssh/known_hosts (strict_host_keys = yes)",
				 type, fp, c->ep->host, c->ep->port);
			return -EACCES;
		}
		return 0;
	}
	return remote_pin_hostkey(r, type, key, keylen, err, errlen);
}

int remote_pin_hostkey(struct remote *r, const char *type,
		       const unsigned char *key, size_t keylen, char *err,
		       size_t errlen)
{
	char k[512], fp[128];
	size_t klen = key_of(k, sizeof(k), "hostkey", r, NULL);
	void *pin = NULL;
	size_t pinlen = 0;
	int rc;

	xfer_key_fingerprint(key, keylen, fp, sizeof(fp));
	/* Pin record: type NUL raw key. */
	size_t tlen = strlen(type);
	rc = store_meta_get(r->p.store, k, klen, &pin, &pinlen);
	if (rc == -ENOENT) {
		/*
		 * First use. The check above and this write are not one step:
		 * parallel first connects (or another process on the same
		 * cache) can get here at once, each with the key it was
		 * offered. Only a put-if-absent in one write transaction
		 * decides: the first key wins, and every other connect
		 * compares against it below (a different key is refused).
		 */
		char *rec = malloc(tlen + 1 + keylen);
		if (!rec)
			return -ENOMEM;
		memcpy(rec, type, tlen + 1);
		memcpy(rec + tlen + 1, key, keylen);
		rc = store_meta_put_new(r->p.store, k, klen, rec,
					tlen + 1 + keylen, &pin, &pinlen);
		free(rec);
		if (!rc) {
			rgt_log(RGT_INFO,
				"%s/%s: trusting host key %s %s on first use",
				r->p.platform, r->p.id, type, fp);
			return 0;
		}
		if (rc != -EEXIST) {
			snprintf(err, errlen, "cannot record host key: %s",
				 strerror(-rc));
			return rc;
		}
		rc = 0;	/* pinned meanwhile: @pin holds it, compare */
	}
	if (rc) {
		snprintf(err, errlen, "cannot read host key pin: %s",
			 strerror(-rc));
		return rc;
	}
	int same = pinlen == tlen + 1 + keylen && !memcmp(pin, type, tlen + 1) &&
		   !memcmp((char *)pin + tlen + 1, key, keylen);
	if (!same) {
		char pfp[128] = "?";
		size_t pt = strnlen(pin, pinlen);
		if (pt < pinlen)
			xfer_key_fingerprint((unsigned char *)pin + pt + 1,
				    pinlen - pt - 1, pfp, sizeof(pfp));
		snprintf(err, errlen,
			 "host key changed for %s/%s: pinned %.*s %s, offered "
			 "%s %s; refusing (if the box was re-created, remove "
			 "the pin: rgtfs-store forget-hostkey %s/%s)",
			 r->p.platform, r->p.id, (int)pt, (char *)pin, pfp,
			 type, fp, r->p.platform, r->p.id);
		free(pin);
		return -EACCES;
	}
	free(pin);
	return 0;
}

/*
 * remote_pin_hostkey without the first-use write: 0 when no key is pinned
 * yet or this one is, -EACCES (reason in @err) when another one is.
 */
static int remote_peek_hostkey(struct remote *r, const char *type,
			       const unsigned char *key, size_t keylen,
			       char *err, size_t errlen)
{
	char k[512], fp[128];
	size_t klen = key_of(k, sizeof(k), "hostkey", r, NULL);
	void *pin = NULL;
	size_t pinlen = 0, tlen = strlen(type);
	int rc = store_meta_get(r->p.store, k, klen, &pin, &pinlen);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		snprintf(err, errlen, "cannot read host key pin: %s",
			 strerror(-rc));
		return rc;
	}
	int same = pinlen == tlen + 1 + keylen && !memcmp(pin, type, tlen + 1) &&
		   !memcmp((char *)pin + tlen + 1, key, keylen);
	free(pin);
	if (same)
		return 0;
	xfer_key_fingerprint(key, keylen, fp, sizeof(fp));
	snprintf(err, errlen,
		 "host key changed for %s/%s: offered %s %s, another one is "
		 "pinned; refusing (if the box was re-created, remove the "
		 "pin: rgtfs-store forget-hostkey %s/%s)",
		 r->p.platform, r->p.id, type, fp, r->p.platform, r->p.id);
	return -EACCES;
}

int remote_pinned_key(struct remote *r, char *buf, size_t len)
{
	char k[512], fp[128];
	size_t klen = key_of(k, sizeof(k), "hostkey", r, NULL);
	void *pin;
	size_t pinlen;
	int rc = store_meta_get(r->p.store, k, klen, &pin, &pinlen);
	if (rc)
		return rc;
	size_t pt = strnlen(pin, pinlen);
	if (pt >= pinlen) {
		free(pin);
		return -EIO;
	}
	xfer_key_fingerprint((unsigned char *)pin + pt + 1, pinlen - pt - 1, fp,
		    sizeof(fp));
	snprintf(buf, len, "%s %s", (char *)pin, fp);
	free(pin);
	return 0;
}

/* ---- sessions -------------------------------------------------------------- */

int remote_new(const struct remote_params *p, struct remote **out)
{
	struct remote *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->p = *p;
	r->p.platform = strdup(p->platform);
	r->p.id = strdup(p->id);
	r->p.user = strdup(p->user ? p->user : "root");
	r->p.key_path = p->key_path ? strdup(p->key_path) : NULL;
	r->p.password = p->password ? strdup(p->password) : NULL;
	r->p.state_dir = NULL;	/* only its ssh/ subdirectory is kept */
	if (p->state_dir) {
		size_t n = strlen(p->state_dir) + sizeof("/ssh");
		r->ssh_dir = malloc(n);
		if (r->ssh_dir)
			snprintf(r->ssh_dir, n, "%s/ssh", p->state_dir);
	}
	atomic_init(&r->used_ops, NULL);
	atomic_init(&r->auto_libssh2, false);
	if (r->p.max_sessions < 1)
		r->p.max_sessions = 1;
	if (r->p.max_sessions > MAX_SESSIONS)
		r->p.max_sessions = MAX_SESSIONS;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->pw_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!r->p.platform || !r->p.id || !r->p.user ||
	    (p->key_path && !r->p.key_path) ||
	    (p->password && !r->p.password) || (p->state_dir && !r->ssh_dir)) {
		remote_free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void remote_free(struct remote *r)
{
	if (!r)
		return;
	/* No lock is held here, and no session is in use any more. */
	for (int i = 0; i < r->n_idle; i++)
		r->idle[i].x->ops->close(r->idle[i].x);
	for (int i = 0; i < MEM_LISTINGS; i++) {
		free(r->mem[i].path);
		rlisting_free(r->mem[i].l);
	}
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->pw_mu);
	pthread_cond_destroy(&r->cv);
	remote_password_free(r->plat_pw);
	free((char *)r->p.platform);
	free((char *)r->p.id);
	free((char *)r->p.user);
	free((char *)r->p.key_path);
	remote_password_free((char *)r->p.password);
	free(r->ssh_dir);
	free(r);
}

/* ---- passwords --------------------------------------------------------- */

#define PASSWORD_FILE_MAX 4096

void remote_password_free(char *pw)
{
	if (!pw)
		return;
	explicit_bzero(pw, strlen(pw));
	free(pw);
}

/* Read a password file (checked as designed in remote.h) into a copy. */
static char *password_from_file(const char *sec, const char *path,
				char *err, size_t errlen)
{
	char *exp = config_expand_home(path);
	char buf[PASSWORD_FILE_MAX + 1];
	char *pw = NULL;
	struct stat st;
	size_t n = 0;
	int fd;

	if (!exp) {
		snprintf(err, errlen, "%s: cannot expand password_file %s",
			 sec, path);
		return NULL;
	}
	/* O_NONBLOCK: a FIFO must not block the open (callers hold the
	 * fleet's lock); it is refused as not regular just below. */
	fd = open(exp, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot read password_file %s: %s",
			 sec, exp, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: password_file %s is not a regular "
			 "file", sec, exp);
		goto out_close;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "%s: password_file %s can be read by "
			 "other users (mode %03o); chmod 600 it", sec, exp,
			 (unsigned)(st.st_mode & 0777));
		goto out_close;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: password_file %s belongs to another "
			 "user", sec, exp);
		goto out_close;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot read password_file "
				 "%s: %s", sec, exp, strerror(errno));
			goto out_wipe;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == sizeof(buf) - 1) {
			snprintf(err, errlen, "%s: password_file %s is larger "
				 "than %d bytes", sec, exp, PASSWORD_FILE_MAX);
			goto out_wipe;
		}
	}
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	if (!n || memchr(buf, '\0', n)) {
		snprintf(err, errlen, "%s: password_file %s is %s", sec, exp,
			 n ? "not text (holds a NUL byte)" : "empty");
		goto out_wipe;
	}
	pw = strndup(buf, n);
	if (!pw)
		snprintf(err, errlen, "%s: out of memory", sec);
out_wipe:
	explicit_bzero(buf, sizeof(buf));
out_close:
	close(fd);
out:
	free(exp);
	return pw;
}

char *remote_password_load(const struct rgt_section *sec, char *err,
			   size_t errlen)
{
	const char *env = config_get(sec, "password_env");
	const char *file = config_get(sec, "password_file");
	char name[160];
	char *pw;

	if (err && errlen)
		err[0] = '\0';
	snprintf(name, sizeof(name), "[%s%s%s]", sec->kind,
		 sec->name && strcmp(sec->name, sec->kind) ? ":" : "",
		 sec->name && strcmp(sec->name, sec->kind) ? sec->name : "");
	if (env && file) {
		snprintf(err, errlen, "%s: set password_env or password_file, "
			 "not both", name);
		return NULL;
	}
	if (file)
		return password_from_file(name, file, err, errlen);
	if (!env)
		return NULL;
	const char *v = getenv(env);
	if (!v || !*v) {
		snprintf(err, errlen, "%s: password_env = %s, but %s is %s",
			 name, env, env, v ? "empty" : "not set");
		return NULL;
	}
	pw = strdup(v);
	if (!pw)
		snprintf(err, errlen, "%s: out of memory", name);
	return pw;
}

/* Sessions taken out of the pool under r->mu, closed once it is dropped. */
struct graveyard {
	struct xfer *v[MAX_SESSIONS + 1];
	int n;
};

static void bury(struct graveyard *g, struct xfer *x)
{
	if (g->n < (int)(sizeof(g->v) / sizeof(g->v[0])))
		g->v[g->n++] = x;
	else
		x->ops->close(x);	/* cannot happen: n_open bounds it */
}

/* Close what was buried; called with no lock held. */
static void close_buried(struct graveyard *g)
{
	for (int i = 0; i < g->n; i++)
		g->v[i]->ops->close(g->v[i]);
	g->n = 0;
}

/* Take idle sessions of an older generation out of the pool (r->mu held). */
static void sweep_stale(struct remote *r, struct graveyard *g)
{
	int k = 0;
	for (int i = 0; i < r->n_idle; i++) {
		if (r->idle[i].gen == r->gen) {
			r->idle[k++] = r->idle[i];
		} else {
			bury(g, r->idle[i].x);
			r->n_open--;
		}
	}
	r->n_idle = k;
}

/* Take every idle session out of the pool (r->mu held). */
static void sweep_all(struct remote *r, struct graveyard *g)
{
	for (int i = 0; i < r->n_idle; i++) {
		bury(g, r->idle[i].x);
		r->n_open--;
	}
	r->n_idle = 0;
}

static void busy_add(struct remote *r, struct xfer *x, unsigned gen)
{
	if (r->n_busy < MAX_SESSIONS) {
		r->busy[r->n_busy].x = x;
		r->busy[r->n_busy].gen = gen;
		r->n_busy++;
	}
}

/* The generation @x was connected in; the current one if unknown. */
static unsigned busy_take(struct remote *r, struct xfer *x)
{
	for (int i = 0; i < r->n_busy; i++) {
		if (r->busy[i].x == x) {
			unsigned gen = r->busy[i].gen;
			r->busy[i] = r->busy[--r->n_busy];
			return gen;
		}
	}
	return r->gen;
}

/*
 * No network I/O and nothing that can block here: the fleet calls this
 * under its own lock. Idle sessions to the old address are only marked
 * stale (the generation moves on); the next acquire or release closes
 * them outside every lock.
 */
void remote_set_endpoints(struct remote *r, const struct rgt_endpoint *ep,
			  int n)
{
	pthread_mutex_lock(&r->mu);
	if (n > 2)
		n = 2;
	int changed = n != r->n_ep;
	for (int i = 0; !changed && i < n; i++)
		changed = strcmp(ep[i].host, r->ep[i].host) ||
			  ep[i].port != r->ep[i].port;
	if (changed) {
		memcpy(r->ep, ep, n * sizeof(*ep));
		r->n_ep = n;
		r->gen++;
		r->fail_at = 0;	/* new address: try at once */
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
}

void remote_retry_now(struct remote *r)
{
	pthread_mutex_lock(&r->mu);
	r->fail_at = 0;
	pthread_mutex_unlock(&r->mu);
}

int remote_endpoint(struct remote *r, struct rgt_endpoint *ep)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&r->mu);
	if (r->n_ep) {
		*ep = r->ep[0];
		rc = 0;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void remote_error(struct remote *r, char *buf, size_t len)
{
	/* The text may quote remote names (paths, a command's stderr): it is
	 * shown escaped, so a name cannot forge a line of .error or of a
	 * teardown report. */
	char raw[sizeof(r->err)];
	pthread_mutex_lock(&r->mu);
	snprintf(raw, sizeof(raw), "%s", r->err);
	pthread_mutex_unlock(&r->mu);
	rpath_escape_s(raw, buf, len);
}

/* Try every endpoint in order, each bounded by @cto_ms; without the lock. */
/* The password for this connect: the section's, else the platform's
 * (remote_set_password). NULL: none. Free with remote_password_free. */
static char *connect_password(struct remote *r, bool *platform)
{
	*platform = false;
	if (r->p.password)
		return strdup(r->p.password);
	char *pw = NULL;
	pthread_mutex_lock(&r->pw_mu);
	if (r->plat_pw) {
		pw = strdup(r->plat_pw);
		*platform = pw != NULL;
	}
	pthread_mutex_unlock(&r->pw_mu);
	return pw;
}

int remote_set_password(struct remote *r, const char *pw)
{
	char *copy = pw ? strdup(pw) : NULL;
	if (pw && !copy)
		return -ENOMEM;
	pthread_mutex_lock(&r->pw_mu);
	remote_password_free(r->plat_pw);
	r->plat_pw = copy;
	r->plat_pw_refused = false;
	pthread_mutex_unlock(&r->pw_mu);
	/* a connect refused for want of it may try again at once */
	if (copy)
		remote_retry_now(r);
	return 0;
}

int remote_request_blocks(const struct remote *r)
{
	return r && r->p.s3 ? 8 : 1;
}

bool remote_password_refused(struct remote *r)
{
	pthread_mutex_lock(&r->pw_mu);
	bool v = r->plat_pw_refused;
	pthread_mutex_unlock(&r->pw_mu);
	return v;
}

/*
 * <state_dir>/ssh for the OpenSSH transport: made 0700 if missing, used only
 * if it is a directory of ours that nobody else can enter (else NULL: the
 * transport makes a temporary one per session).
 */
static const char *ssh_state_dir(struct remote *r)
{
	struct stat st;

	if (!r->ssh_dir)
		return NULL;
	if (mkdir(r->ssh_dir, 0700) && errno != EEXIST)
		return NULL;
	if (lstat(r->ssh_dir, &st) || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077))
		return NULL;
	return r->ssh_dir;
}

/* Note which transport connected; say so when it changes. */
static void note_transport(struct remote *r, const struct xfer_ops *ops,
			   const char *why)
{
	if (atomic_exchange(&r->used_ops, ops) == ops)
		return;
	if (why && *why)
		rgt_log(RGT_INFO, "%s/%s: SSH transport %s (OpenSSH failed: "
			"%.200s)", r->p.platform, r->p.id,
			ops == &xfer_sftp_ops ? "libssh2" : ops->name, why);
	else
		rgt_log(RGT_INFO, "%s/%s: SSH transport %s", r->p.platform,
			r->p.id, ops == &xfer_sftp_ops ? "libssh2" : ops->name);
}

const char *remote_transport(struct remote *r)
{
	const struct xfer_ops *ops = atomic_load(&r->used_ops);

	return ops ? ops->name : NULL;
}

/*
 * Open one SSH endpoint with the configured transport (see remote.h);
 * @xp->connect_timeout_ms is the whole budget, shared by a fallback.
 */
static int open_ssh(struct remote *r, struct xfer_params *xp,
		    struct xfer **out, char *e, size_t elen)
{
	const struct xfer_ops *ops = r->p.ops;
	enum rgt_transport t = r->p.transport;
	int64_t start = mono_ms();
	long cto = xp->connect_timeout_ms;
	int rc;

	if (ops) {
		rc = ops->open(xp, out, e, elen);
		if (!rc)
			note_transport(r, ops, NULL);
		return rc;
	}
	if (t == RGT_TRANSPORT_AUTO &&
	    (xp->password || atomic_load(&r->auto_libssh2)))
		t = RGT_TRANSPORT_LIBSSH2;
	if (t == RGT_TRANSPORT_LIBSSH2) {
		rc = xfer_sftp_ops.open(xp, out, e, elen);
		if (!rc)
			note_transport(r, &xfer_sftp_ops, NULL);
		return rc;
	}
	/* OpenSSH has no password login: key (or agent) only */
	const char *pw = xp->password;
	xp->password = NULL;
	xp->state_dir = ssh_state_dir(r);
	rc = xfer_openssh_ops.open(xp, out, e, elen);
	xp->password = pw;
	if (!rc) {
		note_transport(r, &xfer_openssh_ops, NULL);
		return 0;
	}
	long left = cto - (long)(mono_ms() - start);
	int orc = rc;
	if (t != RGT_TRANSPORT_AUTO || rc == -EACCES || left <= 0)
		return rc;
	char why[384];
	snprintf(why, sizeof(why), "%s", e);
	RGT_DEBUG_LOG("%s/%s: OpenSSH: %s; trying libssh2", r->p.platform,
		      r->p.id, why);
	xp->connect_timeout_ms = left;
	e[0] = '\0';
	rc = xfer_sftp_ops.open(xp, out, e, elen);
	xp->connect_timeout_ms = cto;
	if (!rc) {
		/* What will not change by itself (no ssh, an ssh too old for
		 * our options, a box without SFTP): libssh2 from now on. A
		 * failure of the moment (a dropped login) stays one connect. */
		if (orc == -ENOTSUP || orc == -ENOENT || orc == -EINVAL)
			atomic_store(&r->auto_libssh2, true);
		note_transport(r, &xfer_sftp_ops, why);
	}
	return rc;
}

static int connect_any(struct remote *r, const struct rgt_endpoint *ep,
		       int n_ep, struct xfer **out, char *err, size_t errlen,
		       long cto_ms)
{
	const struct xfer_ops *ops = r->p.ops ? r->p.ops : &xfer_sftp_ops;
	int rc = -EHOSTUNREACH;

	if (r->p.s3) {
		struct xfer_params xp = {
			.connect_timeout_ms = cto_ms,
			.io_timeout_ms = r->p.io_timeout_ms,
			.s3 = r->p.s3,
		};
		char e[384] = "";
		rc = ops->open(&xp, out, e, sizeof(e));
		if (rc)
			snprintf(err, errlen, "%s", e);
		else
			note_transport(r, ops, NULL);
		return rc;
	}
	snprintf(err, errlen, "%s/%s: no SSH endpoint known", r->p.platform,
		 r->p.id);
	bool plat = false;
	char *pw = n_ep ? connect_password(r, &plat) : NULL;
	for (int i = 0; i < n_ep; i++) {
		/* The proxy can be the same address as the direct one. */
		if (i && !strcmp(ep[i].host, ep[0].host) &&
		    ep[i].port == ep[0].port)
			continue;
		struct hk_ctx hk = { r, &ep[i] };
		struct xfer_params xp = {
			.host = ep[i].host,
			.port = ep[i].port,
			.user = ep[i].user[0] ? ep[i].user : r->p.user,
			.key_path = r->p.key_path,
			.password = pw,
			.connect_timeout_ms = cto_ms,
			.io_timeout_ms = r->p.io_timeout_ms,
			.hostkey = hostkey_check,
			.hostkey_arg = &hk,
			.hostkey_peek = hostkey_peek,
		};
		char e[384];
		e[0] = '\0';
		rc = open_ssh(r, &xp, out, e, sizeof(e));
		if (!rc)
			break;
		snprintf(err, errlen, "%.200s:%d (%s): %s", ep[i].host, ep[i].port,
			 i == 0 ? "direct" : "proxy", e);
		/* A refused host key is a verdict on the box, not the path. */
		if (rc == -EACCES)
			break;
	}
	if (rc == -EACCES && plat) {
		pthread_mutex_lock(&r->pw_mu);
		r->plat_pw_refused = true;
		pthread_mutex_unlock(&r->pw_mu);
	}
	remote_password_free(pw);
	return rc;
}

int remote_probe(struct remote *r)
{
	struct rgt_endpoint ep[2];
	pthread_mutex_lock(&r->mu);
	int n_ep = r->n_ep;
	memcpy(ep, r->ep, sizeof(ep));
	pthread_mutex_unlock(&r->mu);
	char err[400];
	struct xfer *x = NULL;
	int rc = connect_any(r, ep, n_ep, &x, err, sizeof(err),
			     r->p.connect_timeout_ms);
	if (!rc)
		x->ops->close(x);
	return rc;
}

/* How long a failure is remembered (ms): RETRY_AFTER, or one connect
 * timeout if longer, so that a dead path costs one timeout, not one per
 * request. */
static int64_t retry_after_ms(const struct remote *r)
{
	int64_t t = r->p.connect_timeout_ms;
	return t > RETRY_AFTER * 1000 ? t : RETRY_AFTER * 1000;
}

static void abs_monotonic(struct timespec *ts, int64_t at_ms)
{
	ts->tv_sec = at_ms / 1000;
	ts->tv_nsec = (at_ms % 1000) * 1000000L;
}

/*
 * remote_acquire() with an optional bound @until (monotonic ms, 0: none)
 * on the wait for a free session and on the connect. *reused says whether
 * the session came from the pool (it may have died while idle).
 */
static int acquire_until(struct remote *r, struct xfer **out, int64_t until,
			 bool *reused)
{
	struct graveyard g = { .n = 0 };
	int64_t wait_until = mono_ms() + r->p.connect_timeout_ms * 2 +
			     r->p.io_timeout_ms * 2 + 1000;
	struct timespec deadline;
	int rc;

	if (until && until < wait_until)
		wait_until = until;
	abs_monotonic(&deadline, wait_until);
	*reused = false;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		sweep_stale(r, &g);
		if (r->n_idle) {
			r->n_idle--;
			*out = r->idle[r->n_idle].x;
			busy_add(r, *out, r->idle[r->n_idle].gen);
			*reused = true;
			pthread_mutex_unlock(&r->mu);
			close_buried(&g);
			return 0;
		}
		if (r->fail_at && mono_ms() - r->fail_at < retry_after_ms(r)) {
			rc = r->fail_rc;
			pthread_mutex_unlock(&r->mu);
			close_buried(&g);
			return rc;
		}
		if (r->n_open < r->p.max_sessions)
			break;
		if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&r->mu);
			close_buried(&g);
			return -ETIMEDOUT;
		}
	}
	r->n_open++;
	struct rgt_endpoint ep[2];
	int n_ep = r->n_ep;
	unsigned gen = r->gen;
	memcpy(ep, r->ep, sizeof(ep));
	pthread_mutex_unlock(&r->mu);
	close_buried(&g);

	char err[400];
	struct xfer *x = NULL;
	long cto = r->p.connect_timeout_ms;
	if (until && until - mono_ms() < cto)
		cto = (long)(until - mono_ms());
	if (cto <= 0) {
		rc = -ETIMEDOUT;
		snprintf(err, sizeof(err), "%s/%s: no time left to connect",
			 r->p.platform, r->p.id);
	} else {
		rc = connect_any(r, ep, n_ep, &x, err, sizeof(err), cto);
	}

	pthread_mutex_lock(&r->mu);
	if (rc) {
		r->n_open--;
		if (gen == r->gen && cto == r->p.connect_timeout_ms) {
			/* only a full connect attempt is a verdict */
			int64_t now = mono_ms();
			r->fail_at = now ? now : 1;
			r->fail_rc = rc;
		}
		if (strcmp(r->err, err))
			rgt_log(RGT_WARN, "%s/%s: %s", r->p.platform, r->p.id,
				err);
		snprintf(r->err, sizeof(r->err), "%s", err);
	} else {
		r->fail_at = 0;
		r->err[0] = '\0';
		busy_add(r, x, gen);
		*out = x;
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int remote_acquire(struct remote *r, struct xfer **out)
{
	bool reused;
	return acquire_until(r, out, 0, &reused);
}

static int session_broken(int rc)
{
	return rc == -ENOTCONN || rc == -ETIMEDOUT || rc == -EIO ||
	       rc == -ECONNRESET || rc == -EPIPE;
}

/*
 * Give @x back. @own_fault: the session is broken for a reason of its own
 * (a command overran its deadline), not a verdict on the box: close only
 * it, and do not fail the next callers fast.
 */
static void release(struct remote *r, struct xfer *x, int rc, bool own_fault)
{
	struct graveyard g = { .n = 0 };

	pthread_mutex_lock(&r->mu);
	unsigned gen = busy_take(r, x);
	/* A bucket says what is wrong per request (403, throttling, a bad
	 * listing, keys skipped from one that succeeded), not at connect:
	 * keep the last reason until a request succeeds cleanly. A missing
	 * key is an answer, not a problem. */
	if (r->p.s3 && rc != -ENOENT && x->err[0])
		snprintf(r->err, sizeof(r->err), "%s", x->err);
	else if (r->p.s3 && !rc)
		r->err[0] = '\0';
	if (rc == -ETIMEDOUT && !r->fail_at && !own_fault) {
		/* The box stopped answering mid-operation: every session to
		 * it is stuck the same way. Fail the next callers at once
		 * instead of letting each wait out its own timeout. */
		int64_t now = mono_ms();
		r->fail_at = now ? now : 1;
		r->fail_rc = -ETIMEDOUT;
		snprintf(r->err, sizeof(r->err), "%s", x->err);
	}
	if (session_broken(rc)) {
		/* A dead session usually means the box's sshd restarted or
		 * the path broke: its idle siblings are dead too. Close them
		 * all so the next caller connects afresh instead of finding
		 * out one session at a time. */
		bury(&g, x);
		r->n_open--;
		if (!own_fault)
			sweep_all(r, &g);
	} else if (gen != r->gen || r->n_idle >= MAX_SESSIONS) {
		/* connected to an address the box no longer has */
		bury(&g, x);
		r->n_open--;
	} else {
		r->idle[r->n_idle].x = x;
		r->idle[r->n_idle].gen = gen;
		r->n_idle++;
	}
	sweep_stale(r, &g);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	close_buried(&g);
}

void remote_release(struct remote *r, struct xfer *x, int rc)
{
	release(r, x, rc, false);
}

/* ---- listings ---------------------------------------------------------------- */

static struct rlisting *listing_new(void)
{
	struct rlisting_int *li = calloc(1, sizeof(*li));
	if (!li)
		return NULL;
	li->refs = 1;
	pthread_mutex_init(&li->mu, NULL);
	return &li->l;
}

static struct rlisting *listing_ref(struct rlisting *l)
{
	struct rlisting_int *li = (struct rlisting_int *)l;
	pthread_mutex_lock(&li->mu);
	li->refs++;
	pthread_mutex_unlock(&li->mu);
	return l;
}

void rlisting_free(struct rlisting *l)
{
	if (!l)
		return;
	struct rlisting_int *li = (struct rlisting_int *)l;
	pthread_mutex_lock(&li->mu);
	int left = --li->refs;
	pthread_mutex_unlock(&li->mu);
	if (left)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	pthread_mutex_destroy(&li->mu);
	free(li);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct rentry *)a)->name,
		      ((const struct rentry *)b)->name);
}

const struct rentry *rlisting_find(const struct rlisting *l,
				   const char *name)
{
	struct rentry key = { .name = (char *)name };
	if (!l->n)
		return NULL;	/* l->v may be NULL: bsearch wants a base */
	return bsearch(&key, l->v, l->n, sizeof(*l->v), cmp_entry);
}

struct collect {
	struct rlisting *l;
	size_t cap;
};

static int collect_fn(void *arg, const char *name,
		      const struct xfer_attr *a)
{
	struct collect *c = arg;
	if (!S_ISREG(a->mode) && !S_ISDIR(a->mode))
		return 0;	/* symlinks, sockets, ...: not served */
	if (c->l->n >= MAX_LISTING)
		return -EFBIG;
	if (c->l->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 32;
		struct rentry *nv = realloc(c->l->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->l->v = nv;
		c->cap = nc;
	}
	char *n = strdup(name);
	if (!n)
		return -ENOMEM;
	c->l->v[c->l->n].name = n;
	c->l->v[c->l->n].attr = *a;
	c->l->n++;
	return 0;
}

/* Serialised: u32 n, then per entry u16 len, name, u64 size, i64 mtime,
 * u32 mode; all little-endian host order (the cache is not portable). */
/*
 * Stored form: u32 count, then per entry u16 name length, name, u64 size,
 * i64 mtime, u32 mode. A count with LISTING_ETAGS set (S3 listings) adds
 * u8 etag length and the etag after each entry; listings stored before
 * etags existed read as before.
 */
#define LISTING_ETAGS 0x80000000u

static int listing_encode(const struct rlisting *l, struct buf *b)
{
	bool etags = false;
	for (size_t i = 0; i < l->n && !etags; i++)
		etags = l->v[i].attr.etag[0] != '\0';
	uint32_t n = (uint32_t)l->n | (etags ? LISTING_ETAGS : 0);
	int rc = buf_append(b, &n, sizeof(n));
	for (size_t i = 0; !rc && i < l->n; i++) {
		uint16_t len = (uint16_t)strlen(l->v[i].name);
		rc = buf_append(b, &len, sizeof(len));
		if (!rc)
			rc = buf_append(b, l->v[i].name, len);
		if (!rc)
			rc = buf_append(b, &l->v[i].attr.size, 8);
		if (!rc)
			rc = buf_append(b, &l->v[i].attr.mtime, 8);
		if (!rc)
			rc = buf_append(b, &l->v[i].attr.mode, 4);
		if (!rc && etags) {
			uint8_t el = (uint8_t)strnlen(l->v[i].attr.etag,
						      XFER_ETAG_MAX - 1);
			rc = buf_append(b, &el, 1);
			if (!rc)
				rc = buf_append(b, l->v[i].attr.etag, el);
		}
	}
	return rc;
}

static int listing_decode(const unsigned char *p, size_t len,
			  struct rlisting **out)
{
	uint32_t n;
	size_t off = sizeof(n);
	if (len < off)
		return -EIO;
	memcpy(&n, p, sizeof(n));
	bool etags = n & LISTING_ETAGS;
	n &= ~LISTING_ETAGS;
	if (n > MAX_LISTING)
		return -EIO;
	struct rlisting *l = listing_new();
	if (!l)
		return -ENOMEM;
	l->v = calloc(n ? n : 1, sizeof(*l->v));
	if (!l->v) {
		rlisting_free(l);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint16_t nl;
		if (len - off < 2)
			goto bad;
		memcpy(&nl, p + off, 2);
		off += 2;
		if (len - off < (size_t)nl + 20)
			goto bad;
		l->v[i].name = strndup((const char *)p + off, nl);
		if (!l->v[i].name)
			goto bad;
		l->n++;
		off += nl;
		memcpy(&l->v[i].attr.size, p + off, 8);
		memcpy(&l->v[i].attr.mtime, p + off + 8, 8);
		memcpy(&l->v[i].attr.mode, p + off + 16, 4);
		off += 20;
		if (etags) {
			uint8_t el;
			if (len - off < 1)
				goto bad;
			el = p[off++];
			if (el >= XFER_ETAG_MAX || len - off < el)
				goto bad;
			memcpy(l->v[i].attr.etag, p + off, el);
			l->v[i].attr.etag[el] = '\0';
			off += el;
		}
	}
	*out = l;
	return 0;
bad:
	rlisting_free(l);
	return -EIO;
}

static int listing_same(const struct rlisting *a, const struct rlisting *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) ||
		    a->v[i].attr.size != b->v[i].attr.size ||
		    a->v[i].attr.mtime != b->v[i].attr.mtime ||
		    a->v[i].attr.mode != b->v[i].attr.mode ||
		    strcmp(a->v[i].attr.etag, b->v[i].attr.etag))
			return 0;
	return 1;
}

/* Memory cache slot for (@path, @is_attr), or -1. Caller holds r->mu. */
static int mem_find(struct remote *r, const char *path, int is_attr)
{
	for (int i = 0; i < MEM_LISTINGS; i++)
		if (r->mem[i].path && r->mem[i].is_attr == is_attr &&
		    !strcmp(r->mem[i].path, path))
			return i;
	return -1;
}

/* Install @l for @path (takes a new reference); persist if it changed. */
static void remember(struct remote *r, const char *path, int is_attr,
		     struct rlisting *l)
{
	struct rlisting *old = NULL;
	int persist = 1;

	pthread_mutex_lock(&r->mu);
	int i = mem_find(r, path, is_attr);
	if (i < 0) {
		i = r->mem_next++ % MEM_LISTINGS;
		free(r->mem[i].path);
		rlisting_free(r->mem[i].l);
		r->mem[i].path = strdup(path);
		r->mem[i].l = NULL;
		r->mem[i].is_attr = is_attr;
	} else {
		old = r->mem[i].l;
		persist = !old || !listing_same(old, l);
	}
	if (!r->mem[i].path) {
		pthread_mutex_unlock(&r->mu);
		return;
	}
	r->mem[i].l = listing_ref(l);
	pthread_mutex_unlock(&r->mu);
	rlisting_free(old);

	if (!persist)
		return;
	char k[4608];
	size_t klen = key_of(k, sizeof(k), is_attr ? "attr" : "dir", r, path);
	struct buf b;
	buf_init(&b, 64u << 20);
	if (!listing_encode(l, &b)) {
		int rc = store_meta_put(r->p.store, k, klen, b.data, b.len);
		if (rc)
			rgt_log(RGT_WARN, "%s/%s: cannot cache listing: %s",
				r->p.platform, r->p.id, strerror(-rc));
	}
	buf_cleanup(&b);
}

/* Last known listing: memory, then store. */
static int recall(struct remote *r, const char *path, int is_attr,
		  struct rlisting **out)
{
	pthread_mutex_lock(&r->mu);
	int i = mem_find(r, path, is_attr);
	if (i >= 0 && r->mem[i].l) {
		*out = listing_ref(r->mem[i].l);
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	pthread_mutex_unlock(&r->mu);

	char k[4608];
	size_t klen = key_of(k, sizeof(k), is_attr ? "attr" : "dir", r, path);
	void *v;
	size_t vlen;
	int rc = store_meta_get(r->p.store, k, klen, &v, &vlen);
	if (rc)
		return rc;
	rc = listing_decode(v, vlen, out);
	free(v);
	return rc;
}

/* Fresh-enough copy from memory, or NULL. */
static struct rlisting *fresh(struct remote *r, const char *path, int is_attr,
			      int max_age)
{
	struct rlisting *l = NULL;
	pthread_mutex_lock(&r->mu);
	int i = mem_find(r, path, is_attr);
	if (i >= 0 && r->mem[i].l && !r->mem[i].l->stale &&
	    mono_ms() - ((struct rlisting_int *)r->mem[i].l)->mono <=
		    (int64_t)max_age * 1000)
		l = listing_ref(r->mem[i].l);
	pthread_mutex_unlock(&r->mu);
	return l;
}

/*
 * Run @op on a session; if a reused session turns out dead (the box
 * restarted), retry once on a new one.
 */
typedef int (*session_op)(struct xfer *x, void *arg);

static int with_session(struct remote *r, session_op op, void *arg)
{
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct xfer *x;
		rc = remote_acquire(r, &x);
		if (rc)
			return rc;
		rc = op(x, arg);
		if (rc && session_broken(rc)) {
			pthread_mutex_lock(&r->mu);
			snprintf(r->err, sizeof(r->err), "%s", x->err);
			pthread_mutex_unlock(&r->mu);
		}
		remote_release(r, x, rc);
		if (!session_broken(rc))
			return rc;
	}
	return rc;
}

struct list_arg {
	const char *path;
	struct rlisting *l;
	struct collect c;
};

static int list_op(struct xfer *x, void *arg)
{
	struct list_arg *a = arg;
	for (size_t i = 0; i < a->l->n; i++)
		free(a->l->v[i].name);
	a->l->n = 0;
	x->err[0] = '\0';
	int rc = x->ops->readdir(x, a->path, collect_fn, &a->c);
	/* xfer_s3 leaves a reason in err when it skipped keys */
	if (!rc && x->ops == &xfer_s3_ops && x->err[0])
		a->l->partial = true;
	return rc;
}

static int stat_op(struct xfer *x, void *arg)
{
	struct list_arg *a = arg;
	struct xfer_attr at;
	int rc = x->ops->stat(x, a->path, &at);
	if (rc)
		return rc;
	return collect_fn(&a->c, "", &at);
}

static int fetch_listing(struct remote *r, const char *path, int is_attr,
			 int max_age, struct rlisting **out)
{
	struct rlisting *l = fresh(r, path, is_attr, max_age);
	if (l) {
		*out = l;
		return 0;
	}
	l = listing_new();
	if (!l)
		return -ENOMEM;
	struct list_arg a = { .path = path, .l = l, .c = { .l = l } };
	int rc = with_session(r, is_attr ? stat_op : list_op, &a);
	if (!rc) {
		if (l->n)
			qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
		l->fetched = time(NULL);
		((struct rlisting_int *)l)->mono = mono_ms();
		remember(r, path, is_attr, l);
		*out = l;
		return 0;
	}
	rlisting_free(l);
	if (rc == -ENOENT || rc == -ENOTDIR || rc == -EFBIG)
		return rc;
	/* The box could not answer: serve the last known, marked stale. */
	struct rlisting *old;
	if (!recall(r, path, is_attr, &old)) {
		if (!old->stale) {
			/* listings are shared; mark a private copy stale */
			struct rlisting *cp = listing_new();
			if (!cp) {
				rlisting_free(old);
				return -ENOMEM;
			}
			cp->v = calloc(old->n ? old->n : 1, sizeof(*cp->v));
			for (size_t i = 0; cp->v && i < old->n; i++) {
				cp->v[i].name = strdup(old->v[i].name);
				cp->v[i].attr = old->v[i].attr;
				if (cp->v[i].name)
					cp->n++;
			}
			cp->fetched = old->fetched;
			cp->stale = true;
			rlisting_free(old);
			old = cp;
		}
		*out = old;
		return 0;
	}
	return rc;
}

int remote_remember(struct remote *r, const char *path,
		    const struct rentry *v, size_t n)
{
	struct rlisting *l = listing_new();
	if (!l)
		return -ENOMEM;
	l->v = calloc(n ? n : 1, sizeof(*l->v));
	for (size_t i = 0; l->v && i < n; i++) {
		if (!(l->v[i].name = strdup(v[i].name)))
			break;
		l->v[i].attr = v[i].attr;
		l->n++;
	}
	if (!l->v || l->n != n) {
		rlisting_free(l);
		return -ENOMEM;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
	l->fetched = time(NULL);
	((struct rlisting_int *)l)->mono = mono_ms();
	remember(r, path, 0, l);
	rlisting_free(l);
	return 0;
}

int remote_list_cached(struct remote *r, const char *path,
		       struct rlisting **out)
{
	return recall(r, path, 0, out);
}

int remote_list(struct remote *r, const char *path, int max_age,
		struct rlisting **out)
{
	return fetch_listing(r, path, 0, max_age, out);
}

int remote_stat(struct remote *r, const char *path, int max_age,
		struct xfer_attr *out)
{
	struct rlisting *l;
	int rc = fetch_listing(r, path, 1, max_age, &l);
	if (rc)
		return rc;
	if (l->n != 1) {
		rlisting_free(l);
		return -EIO;
	}
	*out = l->v[0].attr;
	rlisting_free(l);
	return 0;
}

struct preadv_arg {
	const char *path;
	const struct iovec *iov;
	int iovcnt;
	uint64_t off;
	const struct xfer_attr *expect;
	ssize_t got;
};

static int preadv_op(struct xfer *x, void *arg)
{
	struct preadv_arg *a = arg;
	ssize_t n = 0;

	if (x->ops->preadv) {
		n = x->ops->preadv(x, a->path, a->iov, a->iovcnt, a->off,
				   a->expect);
	} else {
		for (int i = 0; i < a->iovcnt; i++) {
			ssize_t k = x->ops->pread(x, a->path, a->iov[i].iov_base,
						  a->iov[i].iov_len,
						  a->off + (uint64_t)n,
						  a->expect);
			if (k < 0)
				return (int)k;
			n += k;
			if ((size_t)k < a->iov[i].iov_len)
				break;
		}
	}
	if (n < 0)
		return (int)n;
	a->got = n;
	return 0;
}

ssize_t remote_preadv(struct remote *r, const char *path,
		      const struct iovec *iov, int iovcnt, uint64_t off,
		      const struct xfer_attr *expect)
{
	struct preadv_arg a = { path, iov, iovcnt, off, expect, 0 };
	if (!r)
		return -EHOSTUNREACH;
	if (iovcnt < 1 || iovcnt > XFER_IOV_MAX)
		return -EINVAL;
	int rc = with_session(r, preadv_op, &a);
	return rc ? rc : a.got;
}

/* One buffer: the same path as a vector, so both are one code. */
ssize_t remote_pread(struct remote *r, const char *path, void *buf,
		     size_t len, uint64_t off, const struct xfer_attr *expect)
{
	struct iovec iov = { buf, len };
	return remote_preadv(r, path, &iov, 1, off, expect);
}

struct exec_arg {
	const char *cmd;
	struct buf *out;
	int *status;
};

static int exec_op(struct xfer *x, void *arg)
{
	struct exec_arg *a = arg;
	if (!x->ops->exec)
		return -ENOTSUP;
	buf_reset(a->out);
	return x->ops->exec(x, a->cmd, a->out, a->status, 0);
}

int remote_exec(struct remote *r, const char *cmd, struct buf *out,
		int *status)
{
	struct exec_arg a = { cmd, out, status };
	if (!r)
		return -EHOSTUNREACH;
	return with_session(r, exec_op, &a);
}

int remote_exec_bounded(struct remote *r, const char *cmd, struct buf *out,
			int *status, long deadline_ms)
{
	if (!r)
		return -EHOSTUNREACH;
	if (deadline_ms <= 0)
		return -EINVAL;
	int64_t until = mono_ms() + deadline_ms;
	int rc = -ETIMEDOUT;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct xfer *x;
		bool reused;
		rc = acquire_until(r, &x, until, &reused);
		if (rc)
			break;
		int64_t start = mono_ms();
		if (!x->ops->exec || until - start <= 0) {
			rc = x->ops->exec ? -ETIMEDOUT : -ENOTSUP;
			release(r, x, 0, false);
			break;
		}
		buf_reset(out);
		rc = x->ops->exec(x, cmd, out, status, (long)(until - start));
		/* The whole deadline went by: the command was still running
		 * (or the box froze); that says nothing about the siblings. */
		bool overran = rc == -ETIMEDOUT && mono_ms() >= until;
		if (rc && session_broken(rc)) {
			pthread_mutex_lock(&r->mu);
			snprintf(r->err, sizeof(r->err), "%s", x->err);
			pthread_mutex_unlock(&r->mu);
		}
		release(r, x, rc, overran);
		if (!session_broken(rc))
			return rc;
		/*
		 * Run it once more only on a pooled session found dead at
		 * once (the box's sshd restarted while it idled); a session
		 * that died mid-command is reported, not run again.
		 */
		if (!reused || overran ||
		    mono_ms() - start >= r->p.io_timeout_ms)
			break;
	}
	/* A connection that died under the command: one code for it. */
	if (rc == -ENOTCONN || rc == -ECONNRESET || rc == -EPIPE)
		rc = -EIO;
	return rc;
}
