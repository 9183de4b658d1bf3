/*
 * platform.h - one interface in front of every GPU cloud's control plane.
 *
 * An adapter translates between the platform's HTTP/JSON API and these value
 * types; it holds no policy (what to do about a state is decided in the fs
 * and teardown layers). Each adapter is one file, platforms/<name>.c,
 * exporting one `const struct platform_ops <name>_platform_ops`, registered
 * in platform.c.
 *
 * Threads: a struct platform is used by one thread at a time (its poller);
 * teardown takes the poller's lock before calling destroy.
 *
 * Errors: functions return 0 or -errno (see http_to_errno) and put one line
 * of human-readable reason (never a secret) in the caller's err buffer; that
 * line is what MOUNT/<platform>/.error shows.
 */
#ifndef RGT_PLATFORM_H
#define RGT_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rgt_section;

enum rgt_state {
	RGT_ST_UNKNOWN = 0,
	RGT_ST_PROVISIONING,
	RGT_ST_RUNNING,
	RGT_ST_STOPPED,
	RGT_ST_PREEMPTED,
	RGT_ST_OFFLINE,
	RGT_ST_DESTROYING,
	RGT_ST_GONE,
};

/* "running", ... as SPEC.md writes them to `status`. */
const char *rgt_state_name(enum rgt_state st);

#define RGT_ID_MAX 64
#define RGT_HOST_MAX 256
#define RGT_USER_MAX 96

struct rgt_endpoint {
	char host[RGT_HOST_MAX];	/* trimmed; IPv4/IPv6 literal or name */
	int port;			/* 1..65535 */
	/* The login this endpoint wants, when the platform says (RunPod's
	 * proxy: "<podId>-<hex>", Lambda "ubuntu"); "": the section's. */
	char user[RGT_USER_MAX];
};

/*
 * What a renter wants at a glance (MOUNT/fleet.tsv), as the platform's
 * list answer says it. Every field has an "unknown" value, and an adapter
 * leaves a field unknown rather than guess: a missing price is not $0.
 */
#define RGT_GPU_MAX 64
struct rgt_facts {
	char gpu[RGT_GPU_MAX];	/* model as the platform names it; "": unknown */
	int gpu_count;		/* -1: unknown */
	double usd_per_hour;	/* what it bills now; < 0: unknown */
	int64_t started;	/* unix seconds it started running; 0: unknown */
};

/* All fields unknown. */
void rgt_facts_init(struct rgt_facts *f);

/*
 * f->gpu from @n bytes of @s as a platform sent them: bytes that are not
 * well-formed UTF-8 dropped, control and line-breaking or reordering
 * characters turned into one space, blanks at either end trimmed, cut on
 * a character boundary to RGT_GPU_MAX - 1 bytes. Nothing left: "".
 */
void rgt_facts_set_gpu(struct rgt_facts *f, const char *s, size_t n);

struct rgt_instance {
	char id[RGT_ID_MAX];	/* directory name: [A-Za-z0-9._-]+, not . or .. */
	enum rgt_state state;
	char *status_msg;	/* one line, no control characters; malloc'd */
	char *info_json;	/* platform object minus secrets, pretty; malloc'd */
	struct rgt_endpoint ep[2];	/* ep[0] direct, then proxy */
	int n_ep;
	struct rgt_facts facts;		/* what the fleet view shows */
};

struct rgt_instance_list {
	struct rgt_instance *v;
	size_t n;
	/*
	 * Every entry of the answer was understood. Only a complete list
	 * may say an instance is gone: an entry skipped as malformed could
	 * be any instance, and "absent" must never be guessed.
	 */
	bool complete;
};

void rgt_instance_list_free(struct rgt_instance_list *l);

struct platform;
struct buf;

/*
 * One call of a platform's meter-stopping sequence. Each is sent once,
 * never retried blindly; before the next one the teardown polls the list
 * until the instance shows @wait_for (or is gone), bounded by
 * destroy_timeout. AutoDL: power_off (wait for stopped), then release.
 */
struct platform_verb {
	const char *name;		/* as reports show it: "DELETE" */
	enum rgt_state wait_for;	/* RGT_ST_UNKNOWN: do not wait */
};

/* What a platform can do, so that fs/ asks instead of assuming. */
struct platform_caps {
	const struct platform_verb *destroy;	/* the sequence, in order */
	size_t n_destroy;		/* 0: no destroy verb (archived after
					 * the re-list, the box left alone) */
	bool confirm_by_list;		/* after it, wait until not listed */
	bool log_api;			/* log() reads the platform's log */
};

struct platform_ops {
	const char *name;	/* section kind and directory name: "vastai" */
	/*
	 * Read the section (api_url, key from env/file), no network.
	 * -EINVAL / -ENOKEY with a reason in err.
	 */
	int (*open)(const struct rgt_section *sec, struct platform **out,
		    char *err, size_t errlen);
	/* One list call for all instances. Bounded in time and size. */
	int (*list)(struct platform *p, struct rgt_instance_list *out,
		    char *err, size_t errlen);
	/* What this opened platform can do (may depend on its section). */
	void (*caps)(struct platform *p, struct platform_caps *out);
	/*
	 * Verb @step of caps.destroy for @id, sent once, never retried.
	 * 0: the platform accepted it. On an error *maybe_sent says whether
	 * the platform may have acted on it all the same (a timeout, a 5xx,
	 * a 2xx that does not say success): false only when it surely did
	 * not (no connection, an explicit refusal). NULL when n_destroy is 0.
	 */
	int (*destroy)(struct platform *p, const char *id, size_t step,
		       bool *maybe_sent, char *err, size_t errlen);
	/*
	 * Before verb @step (> 0) of caps.destroy: is the instance ready
	 * for it, by the last list (AutoDL: release only once the list
	 * says "shutdown", not just "shutting_down")? 1 yes, 0 not yet.
	 * No network: the teardown polls the list and asks again, so
	 * nothing waits while holding the adapter. NULL: the verb's
	 * wait_for state is enough.
	 */
	int (*destroy_ready)(struct platform *p, const char *id, size_t step);
	/*
	 * The instance's log from the platform into @out (caps.log_api).
	 * Unlike the other calls it runs without the poller's lock, at the
	 * same time as list or destroy (one log call per platform at a
	 * time): it may read only what open() set, and change nothing.
	 */
	int (*log)(struct platform *p, const char *id, struct buf *out,
		   char *err, size_t errlen);
	/*
	 * After a destroy: what still bills (Lambda filesystems, Paperspace
	 * static IPs and snapshots), one line each, into @out; never deleted.
	 * May be NULL.
	 */
	int (*orphans)(struct platform *p, const char *id, struct buf *out,
		       char *err, size_t errlen);
	/*
	 * The login password the platform keeps for @id (AutoDL's snapshot
	 * root_password), for boxes that take nothing else: malloc'd into
	 * *out; the caller wipes (explicit_bzero) and frees it. Never put
	 * into info_json, a message or a log line. -ENOENT: it has none.
	 * May be NULL.
	 */
	int (*password)(struct platform *p, const char *id, char **out,
			char *err, size_t errlen);
	void (*close)(struct platform *p);
};

/* Adapter by section kind, or NULL. */
const struct platform_ops *platform_find(const char *kind);

/*
 * The API key for @sec: api_key_env, else api_key_file, else @vendor_file
 * (the vendor CLI's own key file, "~/" expanded; may be NULL). Whitespace
 * trimmed. Returns malloc'd key or NULL with a reason in err (never the key).
 */
char *platform_load_key(const struct rgt_section *sec, const char *vendor_file,
			char *err, size_t errlen);

/* true if @id is safe as a directory name (see rgt_instance.id). */
bool platform_id_valid(const char *id);

#endif
