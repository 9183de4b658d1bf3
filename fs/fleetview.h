/*
 * fleetview.h - the root-level views of the whole mount: MOUNT/fleet.tsv,
 * MOUNT/fleet.json (one row per instance of every section) and
 * MOUNT/.rgtfs/ (version, stats, log). Internal to fs/: tree.c lists and
 * resolves these names, fleetview.c renders them.
 *
 * Every file is rendered from the current state at each open (and at each
 * stat, for an honest size) and served with direct_io, like `status`, so a
 * shell loop sees every poll. Rendering makes no network call: sizes come
 * from listings the tree already made (tree_checkpoint_bytes).
 *
 * The row rendering is pure (rows in, text out) and unit-tested
 * (tests/unit/test_fleetview.c).
 */
#ifndef RGT_FLEETVIEW_H
#define RGT_FLEETVIEW_H

#include <stdint.h>

#include "buf.h"
#include "platform.h"
#include "tree.h"

/* enum node_kind NK_FLEET's vf */
enum fleetview_file { FV_TSV, FV_JSON };
/* NK_RGTFILE's vf: MOUNT/.rgtfs/<name> */
enum fleetview_rgt { FV_VERSION, FV_STATS, FV_LOG };

/* Names in MOUNT/ and MOUNT/.rgtfs/, in listing order. */
extern const char *const fleetview_root_names[2];	/* fleet.tsv, .json */
extern const char *const fleetview_rgt_names[3];
#define FLEETVIEW_DIR ".rgtfs"

/* The kinds: fleet.tsv/json, the .rgtfs directory, its files. */
extern const struct kind_ops fleetview_fleet, fleetview_dir, fleetview_rfile;

/* One instance as the fleet files show it. Unknowns: "" and < 0. */
struct fleetview_row {
	const char *platform;		/* directory name */
	char id[RGT_ID_MAX];
	const char *status;		/* what `status` shows */
	struct rgt_facts facts;
	int64_t uptime_s;		/* < 0: not running, or start unknown */
	int64_t checkpoint_bytes;	/* < 0: nothing listed yet */
	int64_t cached_bytes;
	char teardown[512];		/* fleetview_teardown_line(); "" none */
};

/* The TSV header line, with its newline. */
extern const char fleetview_tsv_header[];

/*
 * Append @s as one TSV field: "-" when NULL or empty; otherwise with no
 * whitespace or control character left inside, so both cut -f and
 * whitespace splitters (column -t, awk) see one field: a space becomes
 * '_' (as vast.ai's own CLI shows GPU names), tab, newline, CR and
 * backslash become \t \n \r \\, any other control byte \xHH. fleet.json
 * has the exact text. 0 or buf_append's error.
 */
int fleetview_tsv_field(struct buf *b, const char *s);

/*
 * The line of a `teardown` text the fleet view shows, into @out (""
 * when @text has none): its first line when that is the outcome
 * ("done:", "refused:", "failed:"), else its last non-empty line (the
 * step under way). Control bytes become spaces.
 */
void fleetview_teardown_line(const char *text, char *out, size_t len);

/* Instance ids in listing order: all-digit ids by value, then the rest
 * byte-wise. For qsort of char * use fleetview_id_qsort. */
int fleetview_id_cmp(const char *a, const char *b);
int fleetview_id_qsort(const void *a, const void *b);

/* The rows as fleet.tsv / fleet.json (@now: generated_at). Pure. */
int fleetview_render_tsv(const struct fleetview_row *rows, size_t n,
			 struct buf *out);
int fleetview_render_json(const struct fleetview_row *rows, size_t n,
			  int64_t now, struct buf *out);

#endif
