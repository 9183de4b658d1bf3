"""rgtfs-store ls / export / verify on archives made by a real teardown.

An archive is made the one way users make it (rmdir of the instance over a
real mount: roster, pull, verify, DELETE to the fake vast.ai API); the tool
then runs on the cache directory like a user would, with the mount gone or
still there (LMDB lets both processes in).

export must leave a directory that remote-gpu-trainer's verify_local.py
accepts. The seed guide (/work/shared/seed/) lists scripts/verify_local.py
in its file table, but the diff it carries stops after two other files: the
script's text is not in it. get_verify_local() extracts it at test time when
a seed that carries it is present (the "+" lines of its hunk), and otherwise
uses local_verify_stand_in(): the checks PLATFORMS.md 0.2 documents for it
(exact roster, ignoring *.tmp, the manifest and the marker; size; SHA-256;
an empty input refused), which is what a plain directory must pass. No copy
of the seed script is kept in the repository.
"""

import glob
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

import util
from util import MIB, BASE_MTIME, run, wait_until

SEED_DIRS = ["/work/shared/seed"]
MARK = b"rgtfs-store-corruption-mark-7f3a91c2"       # unique in the whole cache


# ---- verify_local.py ------------------------------------------------------------

def get_verify_local(dest_dir):
    """Extract scripts/verify_local.py from a seed diff into dest_dir; the
    script's path, or None when no seed carries its text."""
    for d in SEED_DIRS:
        for seed in sorted(glob.glob(os.path.join(d, "*.txt"))):
            with open(seed, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
            # a hunk that is the script: a "+#!" python line right after
            # an "@@ -0,0 +1,145 @@" header, its lines starting with "+"
            for i, line in enumerate(lines):
                if not re.match(r"@@ -0,0 \+1,145 @@", line) or i + 2 >= len(lines):
                    continue
                body = []
                for ln in lines[i + 1:]:
                    if ln.startswith("@@"):
                        break
                    if re.fullmatch(r"\d+", ln):
                        continue            # the viewer's line numbers
                    if ln.startswith("+"):
                        body.append(ln[1:].lstrip(" ") if ln.startswith("+ ") else ln[1:])
                if body and body[0].startswith("#!") and "python" in body[0] \
                        and any("PULL_MANIFEST" in b for b in body):
                    p = os.path.join(dest_dir, "verify_local.py")
                    with open(p, "w") as f:
                        f.write("\n".join(body) + "\n")
                    return p
    return None


STAND_IN = r'''
import hashlib, json, os, sys
root = sys.argv[1]
man = json.load(open(os.path.join(root, "PULL_MANIFEST.json")))
assert man["schema"] == "remote-gpu-trainer/PULL/v1", man["schema"]
assert isinstance(man["run_id"], str) and man["run_id"]
files = man["files"]
if not files:
    print("FAIL: empty manifest"); sys.exit(1)
want = {f["path"]: f for f in files}
have = set()
for d, dirs, names in os.walk(root):
    for n in names:
        rel = os.path.relpath(os.path.join(d, n), root)
        if rel in ("PULL_MANIFEST.json", "PULL_VERIFIED.json") or rel.endswith(".tmp"):
            continue
        have.add(rel)
bad = 0
for rel in sorted(have - set(want)):
    print("FAIL %s: unexpected local file" % rel); bad = 1
for rel in sorted(want):
    f, p = want[rel], os.path.join(root, rel)
    if rel not in have:
        print("FAIL %s: missing" % rel); bad = 1; continue
    if os.path.getsize(p) != f["bytes"]:
        print("FAIL %s: size" % rel); bad = 1; continue
    h = hashlib.sha256(open(p, "rb").read()).hexdigest()
    if h != f["sha256"]:
        print("FAIL %s: sha256" % rel); bad = 1; continue
    print("OK %s" % rel)
t = man["totals"]
if t["files"] != len(files) or t["bytes"] != sum(f["bytes"] for f in files):
    print("FAIL: totals"); bad = 1
sys.exit(bad)
'''


def local_verify_stand_in(dest_dir):
    p = os.path.join(dest_dir, "verify_local_stand_in.py")
    with open(p, "w") as f:
        f.write(STAND_IN)
    return p


def run_verify_local(tmp_path, exported):
    script = get_verify_local(str(tmp_path)) or local_verify_stand_in(str(tmp_path))
    return run([sys.executable, script, exported], timeout=120)


# ---- the world ------------------------------------------------------------------

def archived_world(world, tmp_path):
    """One box with a few checkpoints (one carrying MARK), read once through
    the mount (so the instance has cached files), then torn down."""
    w = world(populate=False, mount=False, extra_vastai={"destroy_timeout": 8})
    files = {}
    files["e0.bin"] = util.write_big_file(w.box_ck(0, "e0.bin"), 3 * MIB, seed=71,
                                          mtime=BASE_MTIME)
    os.makedirs(w.box_ck(0, "run1"), exist_ok=True)
    marked = bytearray(os.urandom(MIB + 4321))
    marked[MIB + 100:MIB + 100 + len(MARK)] = MARK       # inside the second block
    with open(w.box_ck(0, "run1", "step 10.bin"), "wb") as f:
        f.write(marked)
    os.utime(w.box_ck(0, "run1", "step 10.bin"), (BASE_MTIME + 1, BASE_MTIME + 1))
    files["run1/step 10.bin"] = hashlib.sha256(marked).hexdigest()
    meta = json.dumps({"step": 10, "loss": 0.25}).encode()
    with open(w.box_ck(0, "run1", "metrics.json"), "wb") as f:
        f.write(meta)
    files["run1/metrics.json"] = hashlib.sha256(meta).hexdigest()
    w.mount.extra_args = list(w.mount.extra_args) + ["-o", "cache_size=%d" % (512 * MIB)]
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in os.listdir(os.path.join(w.mnt, "vastai")), 10,
               msg="instance listed")
    return w, files


def tear_down(w):
    err = util.op_errno("rmdir", w.idir(0), timeout=120)
    assert err == "OK", "rmdir -> %s\n%s" % (err, run(["cat", w.f(0, "teardown")]).text)
    a = os.path.join(w.mnt, "archive", "vastai", str(w.ids[0]))
    wait_until(lambda: run(["ls", a], timeout=30).rc == 0, 10, msg="archived")


def store(tool, cache, *args, timeout=120):
    return run([tool, "-c", cache] + list(args), timeout=timeout)


def ls_rows(tool, cache):
    r = store(tool, cache, "ls")
    assert r.rc == 0, r
    lines = r.text.splitlines()
    assert lines[0].split("\t") == ["NAME", "KIND", "FILES", "BYTES", "CACHED",
                                    "EVICTION", "STATE"], lines[0]
    rows = [ln.split("\t") for ln in lines[1:]]
    assert all(len(x) == 7 for x in rows), lines
    return {(x[0], x[1]): x for x in rows}


# ---- tests ----------------------------------------------------------------------

@pytest.mark.deadline(240)
def test_ls_export_and_verify_of_a_torn_down_archive(world, tmp_path, store_tool):
    w, files = archived_world(world, tmp_path)
    cache = w.mount.cache
    name = "vastai/%d" % w.ids[0]
    # a read through the mount: the live instance has cached, evictable files
    assert util.sha256sum(w.ck(0, "e0.bin")) == files["e0.bin"]
    rows = wait_until(lambda: (lambda r: r if (name, "instance") in r and
                               r[(name, "instance")][2] != "0" else None)(
        ls_rows(store_tool, cache)), 20, msg="instance row with cached files")
    inst = rows[(name, "instance")]
    assert inst[3] == "-" and int(inst[4]) == 3 * MIB, inst
    assert inst[5] == "evictable" and inst[6] == "listed", inst

    tear_down(w)
    total = sum(os.path.getsize(w.box_ck(0, p)) for p in files)
    rows = ls_rows(store_tool, cache)
    arch = rows[(name, "archive")]
    assert arch[2:] == ["3", str(total), str(total), "pinned", "archived"], arch
    # `column -t` lines it up
    r = run("%s -c %s ls | column -t -s $'\\t'" % (store_tool, cache), timeout=30)
    assert r.rc == 0 and "archive" in r.text, r

    # verify: every file OK, exit 0 (one archive, and all archives)
    for args in (["verify", name], ["verify"]):
        r = store(store_tool, cache, *args)
        assert r.rc == 0, r
        got = sorted(r.text.splitlines())
        assert got == sorted("OK      %s/%s" % (name, p) for p in files), got

    # export into a new DIR, then the seed's check of a pulled directory
    out = str(tmp_path / "exported")
    r = store(store_tool, cache, "export", name, out)
    assert r.rc == 0, r
    for p, sha in files.items():
        with open(os.path.join(out, p), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sha, p
    assert os.stat(os.path.join(out, "e0.bin")).st_mtime == BASE_MTIME
    with open(os.path.join(out, "PULL_MANIFEST.json"), "rb") as f:
        assert f.read() == util.cat(os.path.join(w.mnt, "archive", "vastai",
                                                 str(w.ids[0]), "PULL_MANIFEST.json"))
    vr = run_verify_local(tmp_path, out)
    assert vr.rc == 0, vr
    for p in files:
        assert re.search(r"^OK\b.*%s" % re.escape(p), vr.text, re.M), (p, vr.text)

    # an existing empty DIR is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert store(store_tool, cache, "export", name, str(empty)).rc == 0
    # a non-empty DIR is refused, and nothing in it is touched
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "e0.bin").write_bytes(b"mine")
    r = store(store_tool, cache, "export", name, str(busy))
    assert r.rc == 1 and b"not empty" in r.err, r
    assert os.listdir(busy) == ["e0.bin"] and (busy / "e0.bin").read_bytes() == b"mine"
    # an unknown PLATFORM/ID
    for bad in ("vastai/1", "nosuch/%d" % w.ids[0]):
        r = store(store_tool, cache, "export", bad, str(tmp_path / "x"))
        assert r.rc == 1 and b"no such archive" in r.err, r
        assert not os.path.exists(tmp_path / "x")
        assert store(store_tool, cache, "verify", bad).rc == 1
    # usage errors
    assert store(store_tool, cache, "export", "vastai", str(tmp_path / "y")).rc == 2
    assert store(store_tool, cache, "verify", "a/b", "c").rc == 2


def flip_marked_byte(cache):
    """Flip one byte of MARK in data.mdb (rgtfs unmounted); how many copies."""
    return util.flip_in_cache(cache, MARK)


@pytest.mark.deadline(240)
def test_a_corrupted_block_fails_verify_and_export(world, tmp_path, store_tool):
    w, files = archived_world(world, tmp_path)
    cache = w.mount.cache
    name = "vastai/%d" % w.ids[0]
    tear_down(w)
    assert w.mount.unmount() == 0
    assert flip_marked_byte(cache) >= 1, "the marked block is not in data.mdb"

    r = store(store_tool, cache, "verify", name)
    assert r.rc == 1, r
    lines = r.text.splitlines()
    bad = [ln for ln in lines if not ln.startswith("OK ")]
    assert len(bad) == 1 and bad[0].startswith("FAIL    %s/run1/step 10.bin: " % name), lines
    assert "sha256" in bad[0], bad
    assert sum(ln.startswith("OK ") for ln in lines) == 2, lines
    assert store(store_tool, cache, "verify").rc == 1

    out = tmp_path / "exported"
    r = store(store_tool, cache, "export", name, str(out))
    assert r.rc == 1, r
    assert b"run1/step 10.bin" in r.err and b"export stopped" in r.err, r
    # the bad file is not left behind, and the manifest is not written
    assert not (out / "run1" / "step 10.bin").exists()
    assert not (out / "PULL_MANIFEST.json").exists()


def test_no_cache_at_the_path_is_an_error_and_creates_nothing(tmp_path, store_tool):
    """-c naming no cache (a typo, a disk not mounted): exit 1 for every
    command, and no directory, data.mdb or lock file is made there."""
    for cmd in (["stat"], ["ls"], ["verify"], ["instances"]):
        nodir = tmp_path / "nocache"
        r = store(store_tool, str(nodir), *cmd)
        assert r.rc == 1, (cmd, r)
        assert b"no cache at %s" % str(nodir).encode() in r.err, (cmd, r)
        assert not nodir.exists(), "%s made %s" % (cmd, nodir)
    # an existing directory that is not a cache: left as it was (mode too)
    plain = tmp_path / "plain"
    plain.mkdir(mode=0o755)
    os.chmod(plain, 0o755)
    r = store(store_tool, str(plain), "verify")
    assert r.rc == 1 and b"no cache at" in r.err, r
    assert os.listdir(plain) == [] and (os.stat(plain).st_mode & 0o777) == 0o755
    # the default place (XDG_CACHE_HOME/rgtfs) when there is no -c
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    r = run([store_tool, "verify"], env=env, timeout=30)
    assert r.rc == 1 and b"no cache at" in r.err, r
    assert not (tmp_path / "xdg").exists()


def test_verify_of_a_cache_with_no_archives_fails(fake_api, mount_factory, store_tool):
    """`rgtfs-store verify && rm -r my-other-copy` must not pass on no
    evidence: a real cache holding no archive at all is exit 1."""
    m = mount_factory(fake_api)
    assert m.unmount() == 0
    assert os.path.exists(os.path.join(m.cache, "data.mdb"))
    r = store(store_tool, m.cache, "verify")
    assert r.rc == 1, r
    assert b"no archives in the cache at %s" % m.cache.encode() in r.err, r
    assert r.text == "", r
    # the cache itself is fine: stat works on it
    assert store(store_tool, m.cache, "stat").rc == 0


def drop_first_manifest_entry(cache):
    """Edit data.mdb (rgtfs unmounted) so that the archive's stored
    PULL_MANIFEST.json no longer lists its first file, the record keeping
    its length: the first entry's '}' and the next entry's '{' become
    blanks (jansson keeps the last of duplicate keys, so the two entries
    merge into the second), and the totals lose that file. The path of
    the file dropped."""
    p = os.path.join(cache, "data.mdb")
    with open(p, "r+b") as f:
        data = bytearray(f.read())
        dropped = set()
        # the manifest is a JSON string inside the record: quotes escaped
        for m in re.finditer(rb'\\"files\\": \[', bytes(data)):
            o = data.index(b"{", m.end())
            c = data.index(b"}", o)
            n = data.index(b"{", c)
            assert re.fullmatch(rb"(\\n| |,)*", bytes(data[c + 1:n])), data[c:n]
            entry = bytes(data[o:c])
            path = re.search(rb'\\"path\\": \\"([^\\]*)\\"', entry).group(1).decode()
            size = int(re.search(rb'\\"bytes\\": (\d+)', entry).group(1))
            data[c] = data[n] = ord(" ")
            t = re.compile(rb'\\"totals\\": \{\\n *\\"files\\": (\d+),\\n *\\"bytes\\": (\d+)')
            tm = t.search(bytes(data), n)
            for g, new in ((1, int(tm.group(1)) - 1), (2, int(tm.group(2)) - size)):
                old = tm.group(g)
                s = str(new).encode()
                assert len(s) <= len(old)
                data[tm.start(g):tm.end(g)] = b" " * (len(old) - len(s)) + s
            dropped.add(path)
        f.seek(0)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    assert len(dropped) == 1, dropped
    return dropped.pop()


@pytest.mark.deadline(240)
def test_export_refuses_an_archive_file_the_manifest_does_not_list(world, tmp_path,
                                                                   store_tool):
    """Both ways, as verify checks, before a byte is written: a file the
    archive holds but its manifest does not list would be left out of DIR,
    which would then pass as the whole run."""
    w, files = archived_world(world, tmp_path)
    cache = w.mount.cache
    name = "vastai/%d" % w.ids[0]
    tear_down(w)
    assert w.mount.unmount() == 0
    gone = drop_first_manifest_entry(cache)
    assert gone in files, gone

    r = store(store_tool, cache, "verify", name)
    assert r.rc == 1 and ("FAIL    %s/%s: in the archive, not in the manifest"
                          % (name, gone)) in r.text, r
    out = tmp_path / "exported"
    r = store(store_tool, cache, "export", name, str(out))
    assert r.rc == 1, r
    assert ("%s: in the archive, not in the manifest" % gone).encode() in r.err, r
    assert not out.exists(), "export made DIR: %s" % os.listdir(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert store(store_tool, cache, "export", name, str(empty)).rc == 1
    assert os.listdir(empty) == []


def straced(tool, cache, *args, inject=None):
    """rgtfs-store under strace: (Result, syscall lines)."""
    log = os.path.join(cache, "..", "strace-%d.txt" % os.getpid())
    argv = ["strace", "-qq", "-o", log, "-e", "trace=openat,open,utimensat,fsync,close"]
    if inject:
        argv += ["-e", "inject=" + inject]
    # LeakSanitizer cannot run under ptrace (CI's ASan build): leaks are
    # checked by every other run of the tool
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    r = run(argv + [tool, "-c", cache] + list(args), timeout=120, env=env)
    with open(log) as f:
        lines = f.read().splitlines()
    os.unlink(log)
    return r, lines


@pytest.mark.deadline(240)
def test_export_durability(world, tmp_path, store_tool):
    """Each file's mtime is set before its fsync (so it is as durable as the
    bytes); a DIR given as "out/" has its parent fsynced, not itself; and
    every fsync's failure is exit 1."""
    if not os.path.exists("/usr/bin/strace"):
        pytest.skip("no strace")
    w, files = archived_world(world, tmp_path)
    cache = w.mount.cache
    name = "vastai/%d" % w.ids[0]
    tear_down(w)
    assert w.mount.unmount() == 0

    out = str(tmp_path / "out") + "/"
    r, lines = straced(store_tool, cache, "export", name, out)
    assert r.rc == 0, r
    assert os.stat(os.path.join(out, "e0.bin")).st_mtime == BASE_MTIME
    opened = []                  # [path, flags, [syscalls on its fd]] per open
    by_fd = {}
    for ln in lines:
        m = re.match(r'openat\((?:AT_FDCWD|\d+), "([^"]*)", ([A-Z_|]+)[^=]*= (\d+)$', ln)
        if m:
            rec = [m.group(1), m.group(2), []]
            opened.append(rec)
            by_fd[int(m.group(3))] = rec
            continue
        m = re.match(r"(utimensat|fsync|close)\((\d+)", ln)
        if m and int(m.group(2)) in by_fd:
            by_fd[int(m.group(2))][2].append(m.group(1))
            if m.group(1) == "close":
                del by_fd[int(m.group(2))]
    exported = [o for o in opened if "O_EXCL" in o[1] and o[0] != "PULL_MANIFEST.json"]
    assert sorted(os.path.basename(o[0]) for o in exported) == sorted(
        os.path.basename(p) for p in files), opened
    for path, _, calls in exported:
        assert "utimensat" in calls and "fsync" in calls, (path, calls)
        assert calls.index("utimensat") < calls.index("fsync"), \
            "%s: mtime set after the fsync: %s" % (path, calls)
    parents = [o for o in opened if o[0] == str(tmp_path) and "O_DIRECTORY" in o[1]]
    assert parents and "fsync" in parents[-1][2], \
        "the parent of %s was not fsynced:\n%s" % (out, "\n".join(lines))

    # every fsync counts: fail each one in turn (the last is DIR's parent)
    n = sum(1 for ln in lines if ln.startswith("fsync("))
    assert n >= len(files) + 2, lines
    for k in range(1, n + 1):
        d = str(tmp_path / ("fail%d" % k))
        r, _ = straced(store_tool, cache, "export", name, d,
                       inject="fsync:error=EIO:when=%d" % k)
        assert r.rc == 1, ("fsync #%d of %d failed and export said OK" % (k, n), r)
        assert b"Input/output error" in r.err, (k, r)
