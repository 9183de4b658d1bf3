/* test_config.c - valid and invalid configs, messages with file:line. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static int parse(const char *text, struct rgt_config *cfg, char *err)
{
	return config_parse_string(text, "t.ini", cfg, err, 256);
}

int main(void)
{
	struct rgt_config cfg;
	char err[256];
	uint64_t sz;

	CHECK_ERR(parse("[rgtfs]\nconnect_timeout = 3\nio_timeout = 7\n"
			"[vastai]\napi_url = http://127.0.0.1:9\n"
			"api_key_env = VAST_API_KEY ; comment\n"
			"poll_interval = 2\nssh_key = ~/k\n"
			"[ssh:gpu1]\nhost = 203.0.113.7\nport = 22\n"
			"strict_host_keys = yes\n",
			&cfg, err), 0);
	CHECK(cfg.nsec == 2);
	CHECK(cfg.connect_timeout_ms == 3000 && cfg.io_timeout_ms == 7000);
	const struct rgt_section *v = config_find(&cfg, "vastai", NULL);
	CHECK(v != NULL);
	if (v) {
		CHECK_STR(v->api_url, "http://127.0.0.1:9");
		CHECK_STR(v->api_key_env, "VAST_API_KEY");
		CHECK(v->poll_interval == 2);
		CHECK(v->stale_after == 60);
		CHECK_STR(v->checkpoint_dir, "/workspace/checkpoints");
		CHECK_STR(v->ssh_user, "root");
		CHECK(v->ssh_key && v->ssh_key[0] == '/');
		CHECK(v->line == 4);
	}
	const struct rgt_section *s = config_find(&cfg, "ssh", "gpu1");
	CHECK(s && s->strict_host_keys);
	CHECK(s && config_get(s, "port") && !config_get(s, "nope"));
	config_cleanup(&cfg);

	/* A section with no keys still exists (the key may come from the
	 * vendor CLI's file). */
	CHECK_ERR(parse("[vastai]\n", &cfg, err), 0);
	CHECK(cfg.nsec == 1);
	config_cleanup(&cfg);

	/* A second account of a kind, and every spelling of a root. */
	CHECK_ERR(parse("[vastai]\n[vastai:work]\n"
			"checkpoint_dir = /w//ckpt/\n", &cfg, err), 0);
	CHECK(cfg.nsec == 2);
	s = config_find(&cfg, "vastai", "work");
	CHECK(s && !strcmp(s->checkpoint_dir, "/w/ckpt"));
	config_cleanup(&cfg);
	CHECK_ERR(parse("[ssh]\nhost = h\n", &cfg, err), -EINVAL);
	CHECK(strstr(err, "t.ini:1:") && strstr(err, "needs a name"));
	CHECK_ERR(parse("[vastai]\ncheckpoint_dir = /a/../b\n", &cfg, err),
		  -EINVAL);
	CHECK(strstr(err, "t.ini:2:") && strstr(err, ".."));
	CHECK_ERR(parse("[vastai]\ncheckpoint_dir = //\n", &cfg, err),
		  -EINVAL);
	CHECK(strstr(err, "whole box"));

	/* Each rejection names the line. */
	CHECK_ERR(parse("[vastai]\napi_key = abc\n", &cfg, err), -EINVAL);
	CHECK(strstr(err, "t.ini:2:") && strstr(err, "secrets"));
	CHECK_ERR(parse("[nimbus]\nx = 1\n", &cfg, err), -EINVAL);
	CHECK(strstr(err, "t.ini:1:") && strstr(err, "unknown section"));
	CHECK_ERR(parse("[vastai]\n\npoll_interval = soon\n", &cfg, err),
		  -EINVAL);
	CHECK(strstr(err, "t.ini:3:") && strstr(err, "poll_interval"));
	CHECK_ERR(parse("[vastai]\npoll_interval = 0\n", &cfg, err), -EINVAL);
	CHECK_ERR(parse("[vastai]\nlog_path = train.log\n", &cfg, err),
		  -EINVAL);
	CHECK(strstr(err, "absolute"));
	CHECK_ERR(parse("[vastai]\nx = 1\nx = 2\n", &cfg, err), -EINVAL);
	CHECK(strstr(err, "t.ini:3:") && strstr(err, "duplicate"));
	CHECK_ERR(parse("[vastai]\n[vastai]\n", &cfg, err), -EINVAL);
	CHECK_ERR(parse("x = 1\n", &cfg, err), -EINVAL);
	CHECK_ERR(parse("[ssh:box]\nport = 22\n", &cfg, err), -EINVAL);
	CHECK(strstr(err, "host"));
	CHECK_ERR(parse("[ssh:..]\nhost = h\n", &cfg, err), -EINVAL);
	CHECK_ERR(parse("[rgtfs]\nio_timeout = 0\n", &cfg, err), -EINVAL);
	CHECK_ERR(parse("[rgtfs]\nsessions = 17\n", &cfg, err), -EINVAL);
	CHECK_ERR(parse("[rgtfs]\nsessions = 2\nworkers = 3\nreadahead = 64\n",
			&cfg, err), 0);
	CHECK(cfg.sessions == 2 && cfg.workers == 3 && cfg.readahead == 64);
	config_cleanup(&cfg);
	CHECK_ERR(parse("[rgtfs]\nnope = 1\n", &cfg, err), -EINVAL);
	CHECK_ERR(parse("[vastai]\ntrust_cloud = maybe\n", &cfg, err),
		  -EINVAL);
	CHECK_ERR(parse("[vastai\n", &cfg, err), -EINVAL);

	/* [cloud:NAME] and the keys that name one */
	static const char *const bad_cloud[] = {
		"[cloud:b]\nendpoint = https://s3.example.com\n",	/* bucket */
		"[cloud:b]\nbucket = My_Bucket\n",
		"[cloud:b]\nbucket = ab\n",
		"[cloud:b]\nbucket = ckpt\nendpoint = http://s3.example.com\n",
		"[cloud:b]\nbucket = ckpt\nendpoint = ftp://127.0.0.1\n",
		"[cloud:b]\nbucket = ckpt\nendpoint = https://s3.example.com/x\n",
		"[cloud:b]\nbucket = ckpt\nendpoint = https://k:s@s3.example.com\n",
		"[cloud:b]\nbucket = ckpt\nendpoint = http://127.0.0.1.evil.com\n",
		"[cloud:b]\nbucket = ckpt\nprefix = /abs/{id}/\n",
		"[cloud:b]\nbucket = ckpt\nprefix = a//{id}/\n",
		"[cloud:b]\nbucket = ckpt\nprefix = ../{id}/\n",
		"[cloud:b]\nbucket = ckpt\nprefix = {user}/{id}/\n",
		"[cloud:b]\nbucket = ckpt\naddressing = dns\n",
		"[vastai]\ncloud = nope\n",
		"[vastai]\narchive_to = nope\n",
		"[vastai]\ntrust_cloud = yes\n",
		"[cloud:b]\nbucket = ckpt\nprefix = shared/\n[vastai]\ncloud = b\n",
	};
	for (size_t i = 0; i < sizeof(bad_cloud) / sizeof(bad_cloud[0]); i++) {
		CHECK_ERR(parse(bad_cloud[i], &cfg, err), -EINVAL);
		CHECK(strstr(err, "t.ini:"));
	}
	CHECK_ERR(parse("[cloud:ckpt]\nbucket = my-ckpts\n"
			"endpoint = http://127.0.0.1:9000\nregion = eu-1\n"
			"prefix = {platform}/{id}/\naddressing = path\n"
			"[vastai]\ncloud = ckpt\narchive_to = ckpt\n"
			"trust_cloud = yes\n", &cfg, err), 0);
	CHECK(cfg.sec[1].trust_cloud && !strcmp(cfg.sec[1].cloud, "ckpt"));
	CHECK(config_find(&cfg, "cloud", "ckpt") == &cfg.sec[0]);
	config_cleanup(&cfg);
	CHECK_ERR(parse("[vastai]\ncloud = ckpt\n[cloud:ckpt]\n"
			"bucket = my-ckpts\nendpoint = https://s3.example.com/\n",
			&cfg, err), 0);
	config_cleanup(&cfg);

	/* transport = auto | openssh | libssh2; auto when absent */
	CHECK_ERR(parse("[vastai]\ntransport = openssh\n"
			"[ssh:a]\nhost = h\ntransport = libssh2\n"
			"[ssh:b]\nhost = h\ntransport = auto\n"
			"[ssh:c]\nhost = h\n", &cfg, err), 0);
	s = config_find(&cfg, "vastai", NULL);
	CHECK(s && s->transport == RGT_TRANSPORT_OPENSSH);
	s = config_find(&cfg, "ssh", "a");
	CHECK(s && s->transport == RGT_TRANSPORT_LIBSSH2);
	s = config_find(&cfg, "ssh", "b");
	CHECK(s && s->transport == RGT_TRANSPORT_AUTO);
	s = config_find(&cfg, "ssh", "c");
	CHECK(s && s->transport == RGT_TRANSPORT_AUTO);
	config_cleanup(&cfg);
	/* a bad value names its line and the value */
	CHECK_ERR(parse("[ssh:a]\nhost = h\n\ntransport = putty\n", &cfg,
			err), -EINVAL);
	CHECK(strstr(err, "t.ini:4:") && strstr(err, "transport") &&
	      strstr(err, "'putty'"));
	CHECK_ERR(parse("[ssh:a]\nhost = h\ntransport = OpenSSH\n", &cfg,
			err), -EINVAL);
	CHECK(strstr(err, "t.ini:3:"));
	/* a bucket is not reached over SSH */
	CHECK_ERR(parse("[cloud:b]\nbucket = my-ckpts\ntransport = openssh\n",
			&cfg, err), -EINVAL);
	CHECK(strstr(err, "t.ini:3:") && strstr(err, "transport"));

	CHECK_ERR(config_load("/nonexistent/x.ini", &cfg, err, sizeof(err)),
		  -ENOENT);
	CHECK(strstr(err, "/nonexistent/x.ini"));

	CHECK_ERR(config_parse_size("20G", &sz), 0);
	CHECK(sz == 20ull << 30);
	CHECK_ERR(config_parse_size("512MiB", &sz), 0);
	CHECK(sz == 512ull << 20);
	CHECK_ERR(config_parse_size("1048576", &sz), 0);
	CHECK(sz == 1048576);
	CHECK_ERR(config_parse_size("-1G", &sz), -EINVAL);
	CHECK_ERR(config_parse_size("12X", &sz), -EINVAL);
	CHECK_ERR(config_parse_size("99999999999T", &sz), -EINVAL);
	CHECK_ERR(config_parse_size("", &sz), -EINVAL);

	setenv("HOME", "/home/u", 1);
	char *e = config_expand_home("~/.ssh/id");
	CHECK_STR(e, "/home/u/.ssh/id");
	free(e);
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	e = config_default_cache_dir();
	CHECK_STR(e, "/xdg/rgtfs");
	free(e);
	unsetenv("XDG_CONFIG_HOME");
	e = config_default_path();
	CHECK_STR(e, "/home/u/.config/rgtfs/config.ini");
	free(e);
	return CHECK_DONE();
}
