/*
 * fuzz_config.c - the INI config (util/config.c) from memory and from a
 * file, on hostile text.
 *
 * Invariants: a config taken has only known section kinds, each section
 * findable by kind and name, a section name that can be a directory (not
 * empty, no '/', not "." or ".."), a checkpoint_dir that is absolute,
 * already normalised and not "/", and tunables within their documented
 * ranges; a config refused says "NAME:" first. Reading the same text from
 * a file (a memfd, no path on disk) gives the same answer as from memory.
 * config_parse_size() agrees with plain decimal numbers.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "rpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char mempath[64];

static bool known_kind(const char *k)
{
	static const char *const kinds[] = { "vastai", "runpod", "lambda",
					     "paperspace", "autodl", "ssh",
					     "cloud" };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(k, kinds[i]))
			return true;
	return false;
}

static void check_cfg(const struct rgt_config *cfg)
{
	FUZZ_ASSERT(cfg->sessions >= 1 && cfg->sessions <= 16);
	FUZZ_ASSERT(cfg->workers >= 1 && cfg->workers <= 64);
	for (size_t i = 0; i < cfg->nsec; i++) {
		const struct rgt_section *s = &cfg->sec[i];
		FUZZ_ASSERT(s->kind && s->name && known_kind(s->kind));
		FUZZ_ASSERT(s->name[0] && !strchr(s->name, '/') &&
			    strcmp(s->name, ".") && strcmp(s->name, ".."));
		FUZZ_ASSERT(config_find(cfg, s->kind, s->name) == s);
		FUZZ_ASSERT(s->poll_interval >= 1 &&
			    s->poll_interval <= 86400);
		FUZZ_ASSERT(s->stale_after >= 0 &&
			    s->stale_after <= 7 * 86400);
		if (s->checkpoint_dir) {
			char *d = strdup(s->checkpoint_dir);
			FUZZ_ASSERT(d && rpath_normalize(d) == 0);
			FUZZ_ASSERT(!strcmp(d, s->checkpoint_dir));
			FUZZ_ASSERT(strcmp(d, "/"));
			free(d);
		}
		for (size_t k = 0; k < s->nkv; k++)
			FUZZ_ASSERT(s->kv[k].key && s->kv[k].val &&
				    config_get(s, s->kv[k].key));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	struct rgt_config cfg;
	char err[512];
	int rc;

	if (memfd < 0) {
		memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
		FUZZ_ASSERT(memfd >= 0);
		snprintf(mempath, sizeof(mempath), "/proc/self/fd/%d", memfd);
	}

	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	rc = config_parse_string(text, mempath, &cfg, err, sizeof(err));
	FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)));
	size_t nsec = 0;
	if (rc == 0) {
		check_cfg(&cfg);
		nsec = cfg.nsec;
		config_cleanup(&cfg);
	} else {
		FUZZ_ASSERT(rc == -EINVAL || rc == -ENOMEM);
		FUZZ_ASSERT(!strncmp(err, mempath, strlen(mempath)) &&
			    err[strlen(mempath)] == ':');
	}

	/* The same text from a file, when it holds no NUL (the string
	 * reader stops there, a file does not). */
	if (strlen(text) == size) {
		struct rgt_config fc;
		char ferr[512];
		FUZZ_ASSERT(ftruncate(memfd, 0) == 0);
		FUZZ_ASSERT(pwrite(memfd, data, size, 0) == (ssize_t)size);
		memset(&fc, 0, sizeof(fc));
		ferr[0] = '\0';
		int frc = config_load(mempath, &fc, ferr, sizeof(ferr));
		FUZZ_ASSERT(frc == rc);
		if (frc == 0) {
			FUZZ_ASSERT(fc.nsec == nsec);
			check_cfg(&fc);
			config_cleanup(&fc);
		} else {
			FUZZ_ASSERT(!strcmp(err, ferr));
		}
	}

	/* Sizes: a plain number is itself. */
	uint64_t v;
	char *line = strndup(text, strcspn(text, "\n"));
	FUZZ_ASSERT(line);
	if (config_parse_size(line, &v) == 0) {
		size_t n = strlen(line);
		bool digits = n > 0 && n < 20;
		for (size_t i = 0; i < n && digits; i++)
			digits = line[i] >= '0' && line[i] <= '9';
		if (digits)
			FUZZ_ASSERT(v == strtoull(line, NULL, 10));
	}
	free(line);
	free(text);
	return 0;
}
