/*
 * ops.h - the FUSE low-level operation table and the per-mount context it
 * reaches through fuse_req_userdata(). Only ops.c and main.c include
 * <fuse_lowlevel.h>.
 */
#ifndef RGT_OPS_H
#define RGT_OPS_H

#include <sys/types.h>
#include <time.h>

struct rgt_config;
struct store;
struct fetcher;
struct fleet;
struct nodes;
struct handles;

struct rgt_ctx {
	const struct rgt_config *cfg;
	struct store *store;
	struct fetcher *fetcher;
	struct fleet *fleet;
	struct nodes *nodes;
	struct handles *handles;	/* open files and dirs */
	struct rmguard *guard;		/* rm -r detection (rmguard.h) */
	struct cloud **clouds;		/* [cloud:NAME] sections, in order */
	size_t nclouds;
	uid_t uid;		/* the mounting user */
	gid_t gid;
	time_t mount_time;
};

/* The [cloud:NAME] bucket called @name, or NULL. */
struct cloud *rgt_cloud(const struct rgt_ctx *c, const char *name);

struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops rgt_ops;

#endif
