/*
 * fuzz_platform.h - the promises of platform.h about a parsed instance
 * list, checked after every accepted answer of every adapter: an id is a
 * directory name ([A-Za-z0-9._-]+, not "." or ".."), status_msg is one
 * line with no control byte, info_json is JSON, endpoints have a host and
 * a port in 1..65535, facts are in range and the GPU name is clean UTF-8.
 */
#ifndef RGT_FUZZ_PLATFORM_H
#define RGT_FUZZ_PLATFORM_H

#include <jansson.h>

#include "fuzz.h"
#include "platform.h"

static inline void fuzz_check_instance(const struct rgt_instance *in)
{
	FUZZ_ASSERT(fuzz_dir_name(in->id, sizeof(in->id)));
	FUZZ_ASSERT(in->state >= RGT_ST_UNKNOWN && in->state <= RGT_ST_GONE);
	if (in->status_msg) {
		FUZZ_ASSERT(fuzz_no_ctl(in->status_msg,
					strlen(in->status_msg)));
		FUZZ_ASSERT(fuzz_utf8(in->status_msg, strlen(in->status_msg)));
	}
	if (in->info_json) {
		json_error_t je;
		json_t *j = json_loads(in->info_json, 0, &je);
		FUZZ_ASSERT(j != NULL);
		json_decref(j);
	}
	FUZZ_ASSERT(in->n_ep >= 0 && in->n_ep <= 2);
	for (int i = 0; i < in->n_ep; i++) {
		const struct rgt_endpoint *ep = &in->ep[i];
		FUZZ_ASSERT(fuzz_terminated(ep->host, sizeof(ep->host)));
		FUZZ_ASSERT(ep->host[0] != '\0');
		FUZZ_ASSERT(fuzz_no_ctl(ep->host, strlen(ep->host)));
		FUZZ_ASSERT(!strchr(ep->host, ' '));
		FUZZ_ASSERT(ep->port >= 1 && ep->port <= 65535);
		FUZZ_ASSERT(fuzz_terminated(ep->user, sizeof(ep->user)));
		FUZZ_ASSERT(fuzz_no_ctl(ep->user, strlen(ep->user)));
	}
	const struct rgt_facts *f = &in->facts;
	FUZZ_ASSERT(fuzz_terminated(f->gpu, sizeof(f->gpu)));
	FUZZ_ASSERT(fuzz_no_ctl(f->gpu, strlen(f->gpu)));
	FUZZ_ASSERT(fuzz_utf8(f->gpu, strlen(f->gpu)));
	FUZZ_ASSERT(f->gpu_count >= -1);
	FUZZ_ASSERT(f->usd_per_hour == f->usd_per_hour); /* not NaN */
	FUZZ_ASSERT(f->started >= 0);
}

static inline void fuzz_check_list(const struct rgt_instance_list *l)
{
	FUZZ_ASSERT(l->n == 0 || l->v != NULL);
	for (size_t i = 0; i < l->n; i++)
		fuzz_check_instance(&l->v[i]);
}

/* A list left "empty on failure", as every parser promises. */
static inline void fuzz_check_empty(const struct rgt_instance_list *l)
{
	FUZZ_ASSERT(l->n == 0);
}

#endif
