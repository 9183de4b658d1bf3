"""MOUNT/fleet.tsv, MOUNT/fleet.json and MOUNT/.rgtfs/: the whole fleet at a
glance, and what the daemon itself is doing.

One mount shows two vast.ai instances (fixtures with gpu_name, num_gpus,
dph_total, start_date) and a plain [ssh:lab] host (nothing known of its GPU
or price). The fleet files list one row per instance, follow the polls,
agree with each other, and show unknowns as "-" / null; .rgtfs/stats counts
what reading a checkpoint costs, cold and warm; .rgtfs/log holds the lines
the daemon wrote. No file of the mount ever holds the API key.

Every access to the mount is a child process (cat, ls, column, grep, a
small python child), as util.py requires.
"""

import json
import os
import time

import pytest

import util
from util import PY, cat, ls, ok, read_text, run, wait_until
from test_all_platforms import all_world  # noqa: F401  (fixture)

COLUMNS = ["platform", "id", "status", "gpu", "gpus", "usd_per_hour", "uptime_s",
           "checkpoint_bytes", "cached_bytes", "teardown"]
STATUS_WAIT = 8.0       # poll_interval (1 s) + one API round trip + slack
MIB = 1 << 20

# Reads a file through a fresh page cache: the kernel may keep pages of an
# unchanged file across opens, and a warm re-read must reach rgtfs to count.
_REREAD_CHILD = r'''
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
n = 0
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    n += len(b)
os.close(fd)
print(n)
'''


def rmtree(path):
    """shutil.rmtree in a child: deletes inside, then asks for the directory,
    which rgtfs refuses (rm -r is not a teardown request)."""
    r = run([PY, "-c", "import shutil,sys; shutil.rmtree(sys.argv[1], ignore_errors=True)",
             path], timeout=60)
    assert r.rc == 0, r


def tsv_rows(mnt):
    """(header, [row dict]) of MOUNT/fleet.tsv, read by cat."""
    text = read_text(os.path.join(mnt, "fleet.tsv"))
    assert text.endswith("\n"), text
    lines = text.split("\n")[:-1]
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        f = line.split("\t")
        assert len(f) == len(COLUMNS), line
        rows.append(dict(zip(COLUMNS, f)))
    return header, rows


def fleet_json(mnt):
    return json.loads(cat(os.path.join(mnt, "fleet.json")))


def stats(mnt):
    out = {}
    for line in read_text(os.path.join(mnt, ".rgtfs", "stats")).splitlines():
        k, v = line.split(" ")
        out[k] = int(v)
    return out


def row_of(rows, platform, iid):
    got = [r for r in rows if r["platform"] == platform and r["id"] == str(iid)]
    assert len(got) == 1, (platform, iid, rows)
    return got[0]


def tsv_form(v):
    """How fleet.tsv shows a fleet.json value (fleetview.h)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.10g" % v
    s = str(v)
    return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r").replace(" ", "_"))


def assert_json_matches_tsv(mnt):
    """fleet.json and fleet.tsv, read back to back, say the same (uptime may
    tick between the two reads)."""
    for _ in range(20):
        _, rows = tsv_rows(mnt)
        doc = fleet_json(mnt)
        insts = doc["instances"]
        if len(insts) != len(rows):
            continue
        same = True
        for r, o in zip(rows, insts):
            assert list(o.keys()) == COLUMNS, o
            for c in COLUMNS:
                want = tsv_form(o[c])
                if c == "uptime_s" and o[c] is not None and r[c] != "-":
                    if abs(int(r[c]) - o[c]) > 2:
                        same = False
                elif r[c] != want:
                    same = False
        if same:
            return doc, rows
        time.sleep(0.2)
    pytest.fail("fleet.json and fleet.tsv disagree:\n%r\n%r" % (rows, insts))


@pytest.fixture
def fleet_world(world, box_factory, user_key):
    """Two vast.ai instances and [ssh:lab], one mount."""
    lab = box_factory(name="lab")
    w = world(n=2, extra_sections={"[ssh:lab]": {
        "host": "127.0.0.1", "port": lab.port, "user": "root", "ssh_key": user_key,
        "checkpoint_dir": "/workspace/checkpoints", "poll_interval": 1}})
    wait_until(lambda: "lab" in ls(os.path.join(w.mnt, "ssh")), 15, msg="ssh/lab listed")
    w.lab = lab
    return w


def test_fleet_tsv_lists_every_instance_with_what_is_known(fleet_world):
    w = fleet_world
    mnt = w.mnt
    top = ls(mnt)
    assert {"fleet.tsv", "fleet.json", ".rgtfs"} <= top, top
    r = ok(["stat", "-c", "%F %a", os.path.join(mnt, "fleet.tsv"),
            os.path.join(mnt, "fleet.json"), os.path.join(mnt, ".rgtfs")])
    kinds = r.text.splitlines()
    assert kinds[0].startswith("regular") and kinds[0].endswith(" 444"), kinds
    assert kinds[1].startswith("regular") and kinds[1].endswith(" 444"), kinds
    assert kinds[2].startswith("directory"), kinds

    def all_running():
        _, rows = tsv_rows(mnt)
        return len(rows) == 3 and all(x["status"] == "running" for x in rows) and rows
    rows = wait_until(all_running, STATUS_WAIT, msg="three rows, all running")
    header, _ = tsv_rows(mnt)
    assert header == COLUMNS

    # directory order (config order: vastai, then ssh), then id
    ids = sorted(w.ids)
    assert [(x["platform"], x["id"]) for x in rows] == \
        [("vastai", str(ids[0])), ("vastai", str(ids[1])), ("ssh", "lab")]

    # what vast.ai lists (fixture: gpu_name RTX 4090, num_gpus 1, dph_total
    # 0.3866, start_date 1753860000.12)
    now = time.time()
    for iid in w.ids:
        v = row_of(rows, "vastai", iid)
        assert v["gpu"] == "RTX_4090", v
        assert v["gpus"] == "1", v
        assert v["usd_per_hour"] == "0.3866", v
        assert abs(int(v["uptime_s"]) - (now - 1753860000)) < 30, v
        assert v["teardown"] == "-", v
        # checkpoints/ not opened yet: nothing known of its size
        assert v["checkpoint_bytes"] == "-" and v["cached_bytes"] == "-", v
    # a plain host: nothing known but its status
    lab = row_of(rows, "ssh", "lab")
    assert [lab[c] for c in COLUMNS[3:]] == ["-"] * 7, lab

    # column -t lines it up: a header and one line per instance, ten fields
    col = ok(["column", "-t", os.path.join(mnt, "fleet.tsv")])
    lines = col.text.splitlines()
    assert len(lines) == 4, col.text
    assert lines[0].split() == COLUMNS, lines[0]
    for line in lines[1:]:
        assert len(line.split()) == len(COLUMNS), line
    # cut -f sees the same columns
    cut = ok(["cut", "-f", "1,2,3", os.path.join(mnt, "fleet.tsv")]).text.splitlines()
    assert cut[1:] == ["%s\t%s\t%s" % (x["platform"], x["id"], x["status"]) for x in rows]

    # fleet.json: the same rows, exact values, unknowns as null
    doc, rows = assert_json_matches_tsv(mnt)
    assert abs(doc["generated_at"] - time.time()) < 30
    insts = {(o["platform"], o["id"]): o for o in doc["instances"]}
    v = insts[("vastai", str(ids[0]))]
    assert v["gpu"] == "RTX 4090" and v["gpus"] == 1 and v["usd_per_hour"] == 0.3866
    assert isinstance(v["uptime_s"], int) and v["uptime_s"] > 0
    lab = insts[("ssh", "lab")]
    assert [lab[c] for c in COLUMNS[3:]] == [None] * 7, lab
    assert abs(doc["usd_per_hour_total"] - 2 * 0.3866) < 1e-9, doc

    # the size the kernel sees is what a read returns
    size = int(ok(["stat", "-c", "%s", os.path.join(mnt, "fleet.tsv")]).text)
    assert abs(size - len(cat(os.path.join(mnt, "fleet.tsv")))) <= 8


def test_fleet_follows_the_polls_and_the_tree(fleet_world):
    w = fleet_world
    mnt = w.mnt
    iid = w.ids[1]
    wait_until(lambda: row_of(tsv_rows(mnt)[1], "vastai", iid)["status"] == "running",
               STATUS_WAIT, msg="running first")

    # a status change in the API shows after a poll, without reopening anything
    want = w.api.set_state(iid, "stopped")
    assert want == "stopped"
    wait_until(lambda: row_of(tsv_rows(mnt)[1], "vastai", iid)["status"] == "stopped",
               STATUS_WAIT, msg="fleet.tsv shows stopped")
    r = row_of(tsv_rows(mnt)[1], "vastai", iid)
    assert r["uptime_s"] == "-", r          # not running: no uptime
    o = [x for x in fleet_json(mnt)["instances"] if x["id"] == str(iid)][0]
    assert o["status"] == "stopped" and o["uptime_s"] is None, o
    assert read_text(w.f(1, "status")) == "stopped\n"

    # once checkpoints/ was listed, its size is known; the cached bytes
    # follow the reads
    i0 = w.ids[0]
    ok(["ls", "-lR", w.ck(0)])
    box_total = sum(os.path.getsize(os.path.join(d, f))
                    for d, _, fs in os.walk(w.box_ck(0)) for f in fs)
    r = wait_until(lambda: (lambda x: x["checkpoint_bytes"] != "-" and x)(
        row_of(tsv_rows(mnt)[1], "vastai", i0)), 5, msg="checkpoint size known")
    assert int(r["checkpoint_bytes"]) == box_total, (r, box_total)
    before = int(r["cached_bytes"])
    assert 0 <= before < box_total
    rel = os.path.join("run-001", "best.pth")
    size = os.path.getsize(w.box_ck(0, rel))
    assert cat(w.ck(0, rel)) == open(w.box_ck(0, rel), "rb").read()
    wait_until(lambda: int(row_of(tsv_rows(mnt)[1], "vastai", i0)["cached_bytes"])
               >= before + size, 10, msg="cached bytes grow by the file read")
    doc, _ = assert_json_matches_tsv(mnt)
    o = [x for x in doc["instances"] if x["id"] == str(i0)][0]
    assert o["checkpoint_bytes"] == box_total and o["cached_bytes"] >= size

    # a refused teardown's outcome is the teardown column
    rmtree(w.idir(0))
    wait_until(lambda: row_of(tsv_rows(mnt)[1], "vastai", i0)["teardown"].startswith(
        "refused:"), 10, msg="teardown column shows the refusal")
    o = [x for x in fleet_json(mnt)["instances"] if x["id"] == str(i0)][0]
    assert o["teardown"].startswith("refused: ") and "\n" not in o["teardown"], o
    assert read_text(w.f(0, "status")) == "running\n"     # nothing was destroyed

    # an instance the platform no longer lists (its bytes cached: shown as
    # gone) bills nothing rgtfs knows of: no price, and out of the total
    before = fleet_json(mnt)["usd_per_hour_total"]
    w.api.remove(i0)
    wait_until(lambda: row_of(tsv_rows(mnt)[1], "vastai", i0)["status"] == "gone",
               STATUS_WAIT, msg="fleet.tsv shows gone")
    r = row_of(tsv_rows(mnt)[1], "vastai", i0)
    assert r["usd_per_hour"] == "-" and r["gpu"] == "RTX_4090", r
    doc = fleet_json(mnt)
    o = [x for x in doc["instances"] if x["id"] == str(i0)][0]
    assert o["status"] == "gone" and o["usd_per_hour"] is None, o
    assert abs(doc["usd_per_hour_total"] - (before - 0.3866)) < 1e-9, (before, doc)


def test_rgtfs_dir_version_stats_log(fleet_world):
    w = fleet_world
    mnt = w.mnt
    d = os.path.join(mnt, ".rgtfs")
    assert ls(d) == {"version", "stats", "log"}

    ver = read_text(os.path.join(d, "version")).splitlines()
    names = [line.split(" ")[0] for line in ver]
    assert names == ["rgtfs", "libfuse", "libssh2", "libcurl", "lmdb"], ver
    for line in ver:
        assert len(line.split(" ")) == 2 and line.split(" ")[1][0].isdigit(), line

    s0 = stats(mnt)
    for k in ["uptime_s", "api_calls.vastai", "api_failures.vastai", "api_calls.ssh:lab",
              "api_failures.ssh:lab", "fetched_bytes.sftp_libssh2",
              "fetched_bytes.sftp_openssh", "fetched_bytes.s3", "cache_hits",
              "cache_misses", "evicted_blocks", "evicted_bytes", "teardowns_started",
              "teardowns_destroyed", "teardowns_refused", "teardowns_failed"]:
        assert k in s0, (k, s0)
    assert s0["api_calls.vastai"] >= 1 and s0["api_failures.vastai"] == 0, s0
    assert s0["api_calls.ssh:lab"] >= 1, s0
    wait_until(lambda: stats(mnt)["api_calls.vastai"] > s0["api_calls.vastai"],
               STATUS_WAIT, msg="API calls counted as the polls go on")

    def fetched(s):
        return sum(v for k, v in s.items() if k.startswith("fetched_bytes."))

    # a cold read: blocks fetched (misses) and their bytes, by transport
    rel = os.path.join("run-001", "best.pth")
    size = os.path.getsize(w.box_ck(0, rel))
    assert size >= 3 * MIB
    s1 = stats(mnt)
    assert cat(w.ck(0, rel)) == open(w.box_ck(0, rel), "rb").read()
    s2 = stats(mnt)
    assert s2["cache_misses"] >= s1["cache_misses"] + size // MIB, (s1, s2)
    assert fetched(s2) >= fetched(s1) + size, (s1, s2)

    # a warm re-read: served from the store (hits), nothing fetched for it
    r = ok([PY, "-c", _REREAD_CHILD, w.ck(0, rel)])
    assert int(r.text) == size
    s3 = stats(mnt)
    assert s3["cache_hits"] >= s2["cache_hits"] + size // MIB, (s2, s3)
    assert s3["uptime_s"] >= s0["uptime_s"]

    # the log: the lines the daemon wrote, with their time, one per line
    log = read_text(os.path.join(d, "log"))
    lines = log.splitlines()
    assert lines and len(lines) <= 300, log
    daemon = w.mount.read_log()
    for line in lines:
        stamp, msg = line.split(" ", 1)
        assert len(stamp) == 20 and stamp.endswith("Z") and stamp[10] == "T", line
        assert msg.split(":")[0] in ("error", "warn", "info", "debug"), line
        assert "rgtfs: " + msg in daemon, (line, daemon[-2000:])


def test_no_file_of_the_views_holds_the_api_key(fleet_world):
    w = fleet_world
    mnt = w.mnt
    cat(w.ck(0, "run-001", "best_metrics.json"))       # some log lines, some stats
    rmtree(w.idir(1))                                  # a refusal: log + teardown
    files = [os.path.join(mnt, ".rgtfs"), os.path.join(mnt, "fleet.tsv"),
             os.path.join(mnt, "fleet.json")]
    assert w.api.api_key and len(w.api.api_key) > 8
    r = run(["grep", "-r", "-F", "-l", "--", w.api.api_key] + files, timeout=30)
    assert r.rc == 1, r             # searched everything, found nothing
    # grep does read these files: the same search finds what is there
    r = run(["grep", "-r", "-F", "-l", "--", "rgtfs"] + files, timeout=30)
    assert r.rc == 0 and ".rgtfs/version" in r.text, r


@pytest.mark.deadline(240)
def test_fleet_across_every_platform(all_world):  # noqa: F811
    m, world = all_world
    want = sorted(((k, iid) for (k, _), (_, _, iid) in world.items()))

    def every_row_running():
        _, rows = tsv_rows(m.mnt)
        got = sorted((x["platform"], x["id"]) for x in rows)
        return got == want and all(x["status"] == "running" for x in rows) and rows
    rows = wait_until(every_row_running, 20, msg="one running row per instance")
    # platform directories in the root's order, ids in order inside each
    dirs = [x["platform"] for x in rows]
    assert dirs == sorted(dirs, key=dirs.index)
    assert len(set(dirs)) >= 2
    assert_json_matches_tsv(m.mnt)
    col = ok(["column", "-t", os.path.join(m.mnt, "fleet.tsv")]).text.splitlines()
    assert len(col) == len(want) + 1
    assert all(len(line.split()) == len(COLUMNS) for line in col), col
