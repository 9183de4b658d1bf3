"""A randomized teardown soak test (issue 6, "A randomized teardown soak test").

Every case builds a random world on one box (odd names, deep trees, empty
files, hard links, real checkpoint formats, sizes from 0 to a few MiB), a
random configuration (checkpoint_dir spelling, cache_size, readahead,
sessions, ...) and injects at most one fault at a random point of
`rmdir MOUNT/vastai/<id>`. Whatever the rmdir answers, the invariant is then
checked from outside the mount with ordinary file reads and SHA-256:

- If the fake API's log shows a DELETE for the instance, then (after the
  fault is cleared, the platform has dropped the instance, the box's disk is
  gone, and a second rmdir if the instance is still shown, possibly after a
  remount with no network) MOUNT/archive/vastai/<id>/checkpoints/ serves
  every file of the roster taken before the rmdir: same names, sizes and
  SHA-256, and PULL_MANIFEST.json lists every one of them.
- If no DELETE was sent, the box is byte-identical, the instance is still
  listed (by the platform and under MOUNT/vastai/), files read through the
  mount before the teardown read back identical with the box's sshd stopped
  (unbounded cache only), and, once the fault is cleared, a plain rmdir
  succeeds and the DELETE branch above holds for it (a world rgtfs can never
  tear down is a failure too).

    RGTFS_SOAK_SEED=N   the seed (default a fixed one, for CI)
    RGTFS_SOAK_RUNS=K   number of random cases (default 13: each of the 13 fault
                        kinds once, in an order drawn from the seed)

Case ids are SEED-RUN; each case draws everything from Random("SEED-RUN"), so
`RGTFS_SOAK_SEED=N python3 -m pytest tests/integration/test_soak.py -k N-R`
replays one case. A failure prints the seed, the world and the fault.
"""

import hashlib
import json
import os
import random
import re
import select
import signal
import stat
import subprocess
import time

import pytest

import sshd
import util
from util import MIB, BASE_MTIME, run, wait_until

SEED = int(os.environ.get("RGTFS_SOAK_SEED", "20250730"))
RUNS = int(os.environ.get("RGTFS_SOAK_RUNS", "13"))     # 13: every fault once

RMDIR_TIMEOUT = 100
HOT_MS = 5.0                  # cache/fetch.c: a file read this recently is never evicted
KNOWN_EXT = (b".json", b".pt", b".pth", b".ckpt", b".safetensors", b".npy", b".npz")
DEFAULT_LINGER = 2


# ---- the world ----------------------------------------------------------------------

def _odd_names():
    """Generators of one path component (bytes) from a unique counter i."""
    return [
        ("plain", lambda i: b"plain-%d.bin" % i),
        ("space", lambda i: b"with space %d.bin" % i),
        ("quotes", lambda i: b"it's \"quoted\" %d" % i),
        ("subst", lambda i: b"$(id -u)-%d" % i),
        ("backtick", lambda i: b"`id -u`-%d.dat" % i),
        ("newline", lambda i: b"new\nline-%d.bin" % i),
        ("dash", lambda i: b"-rf %d" % i),
        ("dashdash", lambda i: b"--help=%d" % i),
        ("bad-utf8", lambda i: b"\xff\xfe-raw-%d.bin" % i),
        ("latin1", lambda i: b"caf\xe9-%d" % i),
        ("utf8", lambda i: ("模型-%d.bin" % i).encode()),
        ("tab", lambda i: b"tab\there-%d" % i),
        ("glob", lambda i: b"glob*?[a]-%d" % i),
        ("backslash", lambda i: b"back\\slash\\n-%d" % i),
        ("shell", lambda i: b"semi;amp&pipe|gt>%d" % i),
        ("printf", lambda i: b"pct %%s %%n %%%%-%d" % i),
        ("spaces", lambda i: b" lead and trail %d " % i),
        ("hidden", lambda i: b".hidden-%d" % i),
        ("tilde", lambda i: b"~tilde-%d" % i),
        ("long255", lambda i: (b"L%d-" % i).ljust(251, b"x") + b".bin"),
        ("long255-utf8", lambda i: (b"U%d-" % i) + "\u00e9".encode() * ((255 - len(b"U%d-" % i)) // 2)
         + b"z" * ((255 - len(b"U%d-" % i)) % 2)),
        ("cr", lambda i: b"carriage\rreturn-%d" % i),
        ("json-ish", lambda i: b"{\"a\":%d}" % i),
    ]


NAMES = _odd_names()


def _component(rng, i, kinds, allow_long=True, ext=None):
    pool = [(k, g) for k, g in NAMES if k in kinds] or [NAMES[0]]
    while True:
        kind, gen = rng.choice(pool)
        if not allow_long and kind.startswith("long"):
            kind, gen = NAMES[0]
        name = gen(i)
        if ext is not None:
            cut = name[:255 - len(ext)]
            if _utf8(name):
                cut = cut.decode("utf-8", "ignore").encode()
            name = cut + ext
        elif name.lower().endswith(KNOWN_EXT):
            continue
        assert 0 < len(name) <= 255 and b"/" not in name and b"\0" not in name, name
        return kind, name


def _format_bytes(kind, rng, tmpdir):
    """Bytes of a real checkpoint format (the load check must pass)."""
    s = rng.randrange(1 << 30)
    if kind == "pth":
        p = os.path.join(tmpdir, "z%d.pth" % s)
        util.torch_like_zip(p, rng.choice([4096, 65536, 300000, 900000]), seed=s)
    elif kind == "safetensors":
        p = os.path.join(tmpdir, "s%d.safetensors" % s)
        util.safetensors_file(p, rng.choice([16, 4096, 60000]), seed=s)
    elif kind == "json":
        return json.dumps({"epoch": s % 100, "loss": rng.random(),
                           "note": "$(id) `x` \"q\"\n"}).encode() + b"\n"
    elif kind == "npy":
        return util.npy_bytes([rng.uniform(-1, 1) for _ in range(rng.choice([0, 7, 5000]))])
    else:
        raise ValueError(kind)
    with open(p, "rb") as f:
        data = f.read()
    os.unlink(p)
    return data


def _size(rng):
    r = rng.random()
    if r < 0.15:
        return 0
    if r < 0.35:
        return rng.randint(1, 100)
    if r < 0.65:
        return rng.randint(101, 64 * 1024)
    if r < 0.83:
        return rng.randint(64 * 1024, 600 * 1024)
    if r < 0.93:
        return rng.choice([MIB - 1, MIB, MIB + 1, 2 * MIB])
    return rng.randint(MIB + 2, 3 * MIB)


FAULTS = {
    # name: allowed triggers
    "none": ["-"],
    "box_kill": ["start", "pull"],
    "list_500": ["before", "start", "after_delete"],
    "list_garbage": ["before", "start", "after_delete"],
    "list_null": ["before", "start", "after_delete"],
    "list_malformed": ["before", "after_delete"],
    "delete_500": ["before"],
    "delete_no_success": ["before"],
    "delete_hang": ["before"],
    "destroy_unconfirmed": ["before"],
    "file_grows": ["before", "start", "pull"],
    "crash": ["start", "pull", "after_delete"],
    "sigint": ["start", "pull", "after_delete"],
}


def make_plan(seed, run_no, tmpdir):
    """Every random choice of one case, drawn up front (a replayable description)."""
    rng = random.Random("%d-%d" % (seed, run_no))
    plan = {"seed": seed, "run": run_no}
    # configuration
    ck_rel = rng.choice(["checkpoints"] * 5 + ["my ckpts", "out/run 1/ckpt"])
    spelling = rng.choice(["plain", "plain", "trailing/", "trailing//", "double//"])
    conf = {"plain": "/workspace/%s", "trailing/": "/workspace/%s/",
            "trailing//": "/workspace/%s//", "double//": "/workspace//%s"}[spelling] % ck_rel
    plan.update(ck_rel=ck_rel, checkpoint_dir=conf)
    plan["cache_size"] = rng.choice([None, None, None, 4 * MIB])
    plan["rgtfs"] = {k: v for k, v in (("readahead", rng.choice([None, 1, 4, 64])),
                                       ("sessions", rng.choice([None, 1, 2, 8])),
                                       ("workers", rng.choice([None, 1, 4])))
                     if v is not None}
    plan["linger"] = rng.choice([0, 1, DEFAULT_LINGER])
    plan["destroy_timeout"] = rng.choice([5, 6])
    plan["has_log"] = rng.random() < 0.8
    plan["remount_at_end"] = rng.random() < 0.4
    # the names: plain ones and a random handful of odd kinds
    odd = [k for k, _ in NAMES if k != "plain"]
    kinds = set(rng.sample(odd, rng.randint(1, 7))) | {"plain"}
    plan["name_kinds"] = sorted(kinds)
    # the tree: directories, possibly one deep chain
    counter = [0]

    def nxt():
        counter[0] += 1
        return counter[0]
    dirs = [b""]
    for _ in range(rng.randint(0, 6)):
        parent = rng.choice(dirs)
        if parent.count(b"/") >= 9:
            continue
        _, name = _component(rng, nxt(), kinds, allow_long=rng.random() < 0.2)
        dirs.append(os.path.join(parent, name) if parent else name)
    if rng.random() < 0.4:
        d = rng.choice(dirs)
        while (d.count(b"/") + 1 if d else 0) < 10:
            _, name = _component(rng, nxt(), kinds, allow_long=False)
            d = os.path.join(d, name) if d else name
            dirs.append(d)
    files = []
    total = 0
    for _ in range(rng.randint(3, 18)):
        d = rng.choice(dirs)
        fmt = rng.choice([None] * 6 + ["pth", "safetensors", "json", "npy"])
        ext = {"pth": b".pth", "safetensors": b".safetensors", "json": b".json",
               "npy": b".npy", None: None}[fmt]
        kind, name = _component(rng, nxt(), kinds, ext=ext)
        rel = os.path.join(d, name) if d else name
        if fmt:
            data = _format_bytes(fmt, rng, tmpdir)
            desc = fmt
        else:
            size = _size(rng)
            if total + size > 5 * MIB:
                size = rng.randint(0, 4096)
            data = util.pattern_bytes(size, rng.randrange(1 << 30))
            desc = "bytes"
        total += len(data)
        files.append({"rel": rel, "data": data, "kind": kind, "what": desc,
                      "mtime": BASE_MTIME + rng.randint(0, 10 ** 6)})
    if rng.random() < 0.2 and files:
        # an identical copy (same bytes, another name)
        src = rng.choice(files)
        kind, name = _component(rng, nxt(), kinds)
        d = rng.choice(dirs)
        files.append(dict(src, rel=os.path.join(d, name) if d else name, kind=kind,
                          what="copy of %s" % nm(src["rel"], 50)))
        total += len(src["data"])
    links = []
    if rng.random() < 0.35:
        for _ in range(rng.randint(1, 2)):
            src = rng.choice(files)["rel"]
            d = rng.choice(dirs)
            _, name = _component(rng, nxt(), kinds)
            links.append((src, os.path.join(d, name) if d else name))
    empty_dirs = [d for d in dirs if d and rng.random() < 0.3]
    # the fault
    # every fault once in len(FAULTS) consecutive runs, in a seeded order
    order = sorted(FAULTS)
    random.Random(seed).shuffle(order)
    fault = order[run_no % len(order)]
    trigger = rng.choice(FAULTS[fault])
    fp = {}
    if fault.startswith("delete_"):
        fp["apply"] = rng.random() < 0.5       # the platform did destroy, the answer lies
    if fault.startswith("list_"):
        fp["times"] = rng.choice([3, 8, None])
    if fault == "list_garbage":
        fp["mode"] = rng.choice(["truncate", "html", "cut", "reset", "bytes"])
    if fault == "file_grows":
        linked = {s for s, _ in links}
        cands = [f["rel"] for f in files if f["rel"] not in linked
                 and not any(g is not f and g["data"] is f["data"] for g in files)]
        if not cands:
            fault, trigger = "none", "-"
        else:
            fp["target"] = rng.choice(cands)
    if trigger == "pull" and total < 3 * MIB // 2:
        data = util.pattern_bytes(3 * MIB // 2, rng.randrange(1 << 30))
        files.append({"rel": b"filler.bin", "data": data, "kind": "filler",
                      "what": "bytes", "mtime": BASE_MTIME + 5})
        total += len(data)
    plan.update(files=files, links=links, empty_dirs=empty_dirs, total=total,
                fault=fault, trigger=trigger, fault_params=fp,
                throttle=max(384 * 1024, int(total * 0.6)) if trigger == "pull" else None)
    primable = [f["rel"] for f in files if len(f["data"]) <= 256 * 1024]
    plan["primed"] = rng.sample(primable, min(len(primable), rng.randint(0, 3)))
    return plan


def describe(plan):
    lines = ["seed %d run %d (replay: RGTFS_SOAK_SEED=%d RGTFS_SOAK_RUNS=%d ... -k '%d-%d')"
             % (plan["seed"], plan["run"], plan["seed"], max(RUNS, plan["run"] + 1),
                plan["seed"], plan["run"]),
             "config: checkpoint_dir=%r cache_size=%s [rgtfs] %r linger=%d destroy_timeout=%d "
             "log=%s remount_at_end=%s throttle=%s"
             % (plan["checkpoint_dir"], plan["cache_size"], plan["rgtfs"], plan["linger"],
                plan["destroy_timeout"], plan["has_log"], plan["remount_at_end"],
                plan["throttle"]),
             "fault: %s at %s %s" % (plan["fault"], plan["trigger"], {
                 k: nm(v) if isinstance(v, bytes) else v
                 for k, v in plan["fault_params"].items()}),
             "name kinds: %s" % " ".join(plan["name_kinds"]),
             "world: %d files, %d bytes:" % (len(plan["files"]), plan["total"])]
    for f in plan["files"]:
        lines.append("  %s  %d bytes  %s/%s" % (nm(f["rel"], 160), len(f["data"]), f["kind"],
                                                f["what"][:60]))
    for s, d in plan["links"]:
        lines.append("  hard link %s -> %s" % (nm(d), nm(s)))
    for d in plan["empty_dirs"]:
        lines.append("  dir %s" % nm(d, 160))
    if plan["primed"]:
        lines.append("primed reads: %s" % ", ".join(nm(r) for r in plan["primed"]))
    return "\n".join(lines)


def build_tree(ck, plan):
    ckb = os.fsencode(ck)
    os.makedirs(ckb, exist_ok=True)
    for d in plan["empty_dirs"]:
        os.makedirs(os.path.join(ckb, d), exist_ok=True)
    for f in plan["files"]:
        util.write_file(os.path.join(ckb, f["rel"]), f["data"], f["mtime"])
    for src, dst in plan["links"]:
        p = os.path.join(ckb, dst)
        if not os.path.lexists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.link(os.path.join(ckb, src), p)


# ---- reading the mount from outside --------------------------------------------------

# Walk a tree on the mount; per entry its type, size and (regular files) SHA-256
# or the errno of the failed read. Names are hex; never raises on one bad file.
_WALK_CHILD = r'''
import errno, hashlib, json, os, stat, sys
root = os.fsencode(sys.argv[1]); out = {}
def err(e): return errno.errorcode.get(e.errno, str(e.errno))
def walk(d, rel):
    try:
        names = sorted(os.listdir(d))
    except OSError as e:
        out[(rel or b".").hex()] = {"type": "d", "error": "listdir " + err(e)}; return
    for name in names:
        p = os.path.join(d, name); r = os.path.join(rel, name) if rel else name
        try:
            st = os.lstat(p)
        except OSError as e:
            out[r.hex()] = {"type": "?", "error": "lstat " + err(e)}; continue
        if stat.S_ISDIR(st.st_mode):
            out[r.hex()] = {"type": "d"}; walk(p, r)
        elif stat.S_ISREG(st.st_mode):
            e = {"type": "f", "size": st.st_size}
            try:
                h = hashlib.sha256(); n = 0
                with open(p, "rb") as f:
                    for b in iter(lambda: f.read(1 << 20), b""):
                        h.update(b); n += len(b)
                e["sha256"] = h.hexdigest(); e["read"] = n
            except OSError as x:
                e["error"] = "read " + err(x)
            out[r.hex()] = e
        else:
            out[r.hex()] = {"type": "other"}
walk(root, b"")
json.dump(out, sys.stdout)
'''


def walk_mount(root, timeout=120):
    r = run([util.PY, "-c", _WALK_CHILD, root], timeout=timeout)
    if r.rc != 0:
        return None, "walk of %s failed: %r" % (root, r)
    return {bytes.fromhex(k): v for k, v in json.loads(r.out).items()}, None


# rmdir by libc (no EINTR retry), with SIGINT caught: prints errno name,
# seconds, and whether SIGINT arrived.
_RMDIR_CHILD = r'''
import ctypes, errno, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
got = []
signal.signal(signal.SIGINT, lambda *a: got.append(1))
print("READY", flush=True)
t0 = time.monotonic()
rc = libc.rmdir(os.fsencode(sys.argv[1]))
e = ctypes.get_errno()
print("%s %.3f %s" % ("OK" if rc == 0 else errno.errorcode.get(e, str(e)),
                      time.monotonic() - t0, "sigint" if got else "-"), flush=True)
'''


def spawn_rmdir(path):
    p = util.spawn([util.PY, "-c", _RMDIR_CHILD, path], stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    r, _, _ = select.select([p.stdout], [], [], 15)
    assert r and p.stdout.readline() == b"READY\n", "rmdir child did not start"
    return p


def rmdir_result(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        util.stop_child(p)
        return "TIMEOUT"
    if p.returncode != 0 or not out.split():
        return "CHILD-FAILED rc=%s %r" % (p.returncode, err[-300:])
    return out.split()[0].decode()


def deletes_for(api, iid):
    return [r for r in api.deletes()
            if re.fullmatch(r"/api/v0/instances/%d/?" % int(iid), r["path"])]


def effective(rec):
    """Did this DELETE destroy the instance on the (fake) platform?"""
    if rec.get("fault"):
        return rec.get("applied") == 200
    return rec.get("status") == 200


def nm(rel, n=110):
    """A short printable form of a path (bytes) for messages."""
    r = repr(rel)
    return r if len(r) <= n else r[:n // 2 - 2] + " .. " + r[-(n // 2 - 2):]


def fs_name(rel):
    return rel.decode("utf-8", "surrogateescape")


# ---- one case ---------------------------------------------------------------------------

class Case:
    def __init__(self, plan, world, proxies, hygiene, store_tool):
        self.plan = plan
        self.world_f = world
        self.proxies = proxies
        self.hygiene = hygiene
        self.store_tool = store_tool
        self.violations = []
        self.events = []
        self.w = None
        self.px = None
        self.appender = None

    # -- bookkeeping
    def bad(self, msg):
        self.violations.append(msg)

    def ev(self, msg):
        self.events.append("%.1fs %s" % (time.monotonic() - self.t0, msg))

    @property
    def iid(self):
        return self.w.ids[0]

    @property
    def box(self):
        return self.w.boxes[0]

    def vastai(self):
        return os.path.join(self.w.mnt, "vastai")

    def archive_dir(self):
        return os.path.join(self.w.mnt, "archive", "vastai", str(self.iid))

    def listed(self):
        r = run(["ls", "-A", "--", self.vastai()], timeout=30)
        return r.rc == 0 and str(self.iid) in r.text.split()

    def archived(self):
        r = run(["ls", "-A", "--", os.path.join(self.w.mnt, "archive", "vastai")], timeout=30)
        return r.rc == 0 and str(self.iid) in r.text.split()

    def status(self):
        r = run(["cat", "--", self.w.f(0, "status")], timeout=30)
        return r.text.strip() if r.rc == 0 else "(status: rc=%s)" % r.rc

    def teardown_text(self, archived=False):
        p = os.path.join(self.archive_dir(), "teardown") if archived else self.w.f(0, "teardown")
        r = run(["cat", "--", p], timeout=30)
        return r.text if r.rc == 0 else "(no teardown file: %s)" % r.err.decode(errors="replace")

    def roster(self):
        """{rel: (size, sha256)} of the regular files under the box's checkpoint dir."""
        snap = util.local_snapshot(self.ck_local)
        return {k: (v["size"], v["sha256"]) for k, v in snap.items()
                if stat.S_ISREG(v["mode"])}

    # -- setup
    def setup(self):
        p = self.plan
        self.t0 = time.monotonic()
        pressure = p["cache_size"] is not None
        extra_vastai = {"destroy_timeout": p["destroy_timeout"]}
        w = self.world_f(n=2 if pressure else 1, populate=False, mount=False,
                         checkpoint_dir=p["checkpoint_dir"], extra_vastai=extra_vastai,
                         extra_rgtfs=p["rgtfs"])
        self.w = w
        w.api.linger = p["linger"]
        self.ck_local = self.box.local("/workspace/" + p["ck_rel"])
        build_tree(self.ck_local, p)
        if p["has_log"]:
            util.write_file(os.path.join(self.box.workspace, "train.log"),
                            b"".join(b"step %d loss %.3f\n" % (i, 1 / (i + 1)) for i in range(50)),
                            BASE_MTIME)
        if pressure:
            pb = w.boxes[1]
            ck1 = pb.local("/workspace/" + p["ck_rel"])
            self.pressure_files = []
            for i in range(4):
                rel = "pressure-%d.bin" % i
                util.write_big_file(os.path.join(ck1, rel), p["cache_size"] // 2, seed=900 + i,
                                    mtime=BASE_MTIME + i)
                self.pressure_files.append(rel)
            w.mount.extra_args = list(w.mount.extra_args) + ["-o", "cache_size=%d"
                                                             % p["cache_size"]]
        if p["throttle"]:
            self.px = self.proxies(self.box.port, rate=p["throttle"])
            w.api.set_endpoints(self.iid, direct_port=self.px.port, proxy_port=self.px.port)
        w.mount.start()
        wait_until(self.listed, 15, msg="instance listed")
        self.ev("mounted")

    # -- the fault
    def inject(self):
        p, api = self.plan, self.w.api
        f, fp = p["fault"], p["fault_params"]
        if f != "none":
            self.hygiene.fault()
        self.ev("inject %s" % f)
        if f == "box_kill":
            self.box.kill()
        elif f == "list_500":
            api.fail(status=500, method="GET", kind="list", times=fp["times"])
        elif f == "list_garbage":
            mode = fp["mode"]
            if mode == "bytes":
                api.fail(mode="body", body=b"\x00\xff{[\"instances\": [\x01", method="GET",
                         kind="list", times=fp["times"])
            else:
                api.fail(mode=mode, method="GET", kind="list", times=fp["times"])
        elif f == "list_null":
            api.fail(mode="body", body='{"instances": null}', method="GET", kind="list",
                     times=fp["times"])
        elif f == "list_malformed":
            api.fail(mode="body", body='{"instances": [{"bogus": 1}, 17, "x", null]}',
                     method="GET", kind="list", times=fp["times"])
        elif f == "delete_500":
            api.fail(status=500, method="DELETE", apply=fp["apply"])
        elif f == "delete_no_success":
            api.fail(mode="body", body='{"msg": "request received"}', status=200,
                     method="DELETE", apply=fp["apply"])
        elif f == "delete_hang":
            api.fail(mode="hang", method="DELETE", apply=fp["apply"])
        elif f == "destroy_unconfirmed":
            api.linger = 10 ** 6
        elif f == "file_grows":
            self.grow_path = os.path.join(os.fsencode(self.ck_local), fp["target"])
            self.appender = util.start_appender(self.grow_path, interval=0.05, chunk=4096)
        elif f == "crash":
            self.w.mount.crash()
        elif f == "sigint":
            self.sigint_at = time.monotonic()
            os.kill(self.child.pid, signal.SIGINT)
        self.injected_at = time.monotonic()
        if f.startswith("list_") and p["trigger"] == "before":
            # let the poller see it (two list calls after the fault)
            t = time.monotonic()
            wait_until(lambda: api.list_calls(since=t) >= 2, 15, msg="list calls after the fault")

    def teardown_with_fault(self):
        p = self.plan
        trig = p["trigger"]
        self.child = None
        if trig == "before":
            self.inject()
        base = self.px.bytes if self.px else 0
        self.child = spawn_rmdir(self.w.idir(0))
        self.ev("rmdir started")
        landed = True
        if trig == "start":
            self.inject()
        elif trig == "pull":
            want = base + 32 * 1024 + p["total"] // 3
            wait_until(lambda: self.px.bytes >= want or self.child.poll() is not None, 60,
                       interval=0.02, msg="pull under way")
            landed = self.child.poll() is None
            self.inject()
        elif trig == "after_delete":
            wait_until(lambda: deletes_for(self.w.api, self.iid) or self.child.poll() is not None,
                       RMDIR_TIMEOUT, interval=0.02, msg="a DELETE or the end of the rmdir")
            landed = bool(deletes_for(self.w.api, self.iid)) and self.child.poll() is None
            self.inject()
        if not landed:
            self.ev("note: the fault landed after the rmdir had returned")
        self.err1 = rmdir_result(self.child, RMDIR_TIMEOUT)
        self.ev("rmdir -> %s" % self.err1)
        if self.err1 == "TIMEOUT":
            self.bad("rmdir did not return within %d s" % RMDIR_TIMEOUT)
        # clear the fault
        if self.appender is not None:
            util.stop_child(self.appender)
        self.w.api.clear()
        if not self.w.mount.running():
            self.w.mount.start()
            wait_until(lambda: "vastai" in util.ls(self.w.mnt), 15, msg="remounted")
            self.ev("remounted after the crash")
        self.report1 = self.teardown_text() if self.listed() else "(instance not listed)"

    # -- helpers for the checks
    def cat_mount(self, rel):
        path = os.path.join(os.fsencode(self.w.ck(0)), rel)
        r = run(["cat", "--", path], timeout=60)
        return r.out if r.rc == 0 else None, r

    def box_up(self):
        if not self.box.is_running():
            self.box.start()
            self.ev("box restarted")

    def wait_running(self):
        try:
            wait_until(lambda: self.status() == "running", 20, interval=0.2,
                       msg="status running")
            return True
        except util.WaitTimeout:
            return False

    def pressure(self):
        """Read another box's files past cache_size while the copy is pending."""
        if self.plan["cache_size"] is None:
            return
        ck1 = os.path.join(self.w.idir(1), "checkpoints")
        t_ret = time.monotonic()
        for rel in self.pressure_files[:2]:
            util.op_errno("read", os.path.join(ck1, rel))
        # the rest after HOT_MS since the rmdir returned: a file the pull
        # read moments ago is still "hot" and would be kept regardless
        while time.monotonic() < t_ret + HOT_MS + 0.5:
            time.sleep(0.1)
        for rel in self.pressure_files[2:]:
            util.op_errno("read", os.path.join(ck1, rel))
        self.ev("cache pressure: read %d x %d bytes of another box"
                % (len(self.pressure_files), self.plan["cache_size"] // 2))

    # -- the invariant
    def check(self):
        dels = deletes_for(self.w.api, self.iid)
        if dels:
            self.check_after_delete(self.roster0, first=True)
        else:
            self.check_nothing_destroyed()

    def check_nothing_destroyed(self):
        p = self.plan
        api = self.w.api
        self.ev("no DELETE was sent")
        if self.err1 == "OK":
            self.bad("rmdir returned 0 but no DELETE was sent (the instance was archived "
                     "without being destroyed; it would keep billing)")
        inst = api.get(self.iid)
        if inst is None or inst["cur_state"] == "unloaded":
            self.bad("no DELETE, yet the platform lost the instance (%s)"
                     % (inst and inst["cur_state"]))
        # the box is untouched
        if p["fault"] == "file_grows":
            rel = os.path.relpath(self.grow_path, os.fsencode(self.box.workspace))
            now = util.local_snapshot(self.box.workspace)
            before = dict(self.ws_snap0)
            g0 = before.pop(rel)
            g1 = now.pop(rel, None)
            if now != before:
                self.bad("the box's files changed (other than the growing one)")
            with open(self.grow_path, "rb") as f:
                head = f.read(g0["size"])
            if g1 is None or hashlib.sha256(head).hexdigest() != g0["sha256"]:
                self.bad("the growing file's original bytes changed")
        elif util.box_tree_sha(self.box.workspace) != self.box_sha0:
            self.bad("no DELETE, but the box's /workspace is not byte-identical")
        # still listed, under MOUNT/vastai/ and not gone
        try:
            wait_until(lambda: self.listed() and self.status() not in ("gone", "destroying"),
                       15, interval=0.2, msg="instance listed again")
        except util.WaitTimeout:
            self.bad("no DELETE, but the instance is not listed under MOUNT/vastai/ (status %r; "
                     "archived: %s)" % (self.status() if self.listed() else "-", self.archived()))
            return
        if not self.report1.startswith("refused:") and p["fault"] != "crash" \
                and self.err1 != "OK":
            self.bad("refused, but the teardown file does not start with 'refused:': %r"
                     % self.report1[:300])
        # what was read before is still served, with the box's sshd stopped
        if self.primed and p["cache_size"] is None:
            self.box.stop()
            for rel, data in self.primed.items():
                got, r = self.cat_mount(rel)
                if got != data:
                    self.bad("%s read before the teardown no longer reads back with the box "
                             "stopped (%s)" % (nm(rel), "differs" if got is not None else
                                               r.err[-200:].decode(errors="replace")))
        # the fault cleared: a plain rmdir succeeds, and then the copy is served
        self.box_up()
        if not self.wait_running():
            self.bad("the instance does not come back to running (status %r)" % self.status())
            return
        roster = self.roster()
        box_sha = util.box_tree_sha(self.box.workspace)
        err = util.op_errno("rmdir", self.w.idir(0), timeout=RMDIR_TIMEOUT)
        self.ev("recovery rmdir -> %s" % err)
        if not deletes_for(api, self.iid):
            self.bad("with the fault cleared, rmdir -> %s and still no DELETE; teardown:\n%s"
                     % (err, self.indent(self.teardown_text())))
            if util.box_tree_sha(self.box.workspace) != box_sha:
                self.bad("the box changed during the recovery rmdir")
            return
        self.check_after_delete(roster, first=False, err=err)

    def check_after_delete(self, roster, first, err=None):
        p = self.plan
        api = self.w.api
        dels = deletes_for(api, self.iid)
        self.ev("DELETE sent (%d): %s" % (len(dels), [(d["status"], d.get("fault"),
                                                        d.get("applied")) for d in dels]))
        if first and p["fault"] == "sigint" and self.err1 == "EINTR":
            self.bad("rmdir answered EINTR (cancelled) but a DELETE was sent")
        if first and p["fault"] == "sigint" and getattr(self, "sigint_at", None) is not None:
            if dels[0]["t"] > self.sigint_at + 1.0:
                self.bad("Ctrl-C %.1f s before the destroy call did not cancel the teardown"
                         % (dels[0]["t"] - self.sigint_at))
        if first and p["fault"] == "file_grows" and p["trigger"] in ("before", "start") \
                and dels[0]["t"] > self.injected_at:
            self.bad("destroyed while a checkpoint was growing through the whole teardown")
        if first and p["fault"] in ("delete_hang", "delete_no_success") \
                and "nothing was destroyed" in self.report1:
            self.bad("the destroy call's outcome is unknown (%s), yet the report says "
                     "'nothing was destroyed'" % p["fault"])
        eff = [i for i, d in enumerate(dels) if effective(d)]
        if eff and len(dels) > eff[0] + 1:
            self.bad("%d more DELETE(s) after one the platform had acted on"
                     % (len(dels) - eff[0] - 1))
        if self.listed() and not self.archived():
            self.pressure()           # the copy is pending: is it still pinned?
        inst = api.get(self.iid)
        if inst is not None and inst["cur_state"] != "unloaded":
            # the platform did not act on it: the instance lives, a new rmdir finishes it
            self.ev("the platform did not destroy it; rmdir again")
            self.box_up()
            if not self.wait_running():
                self.bad("DELETE had no effect and the instance does not come back to "
                         "running (status %r)" % self.status())
                return
            err = util.op_errno("rmdir", self.w.idir(0), timeout=RMDIR_TIMEOUT)
            self.ev("second rmdir -> %s" % err)
            if err != "OK":
                self.bad("the destroy had failed on the platform; a second rmdir -> %s;"
                         " teardown:\n%s" % (err, self.indent(self.teardown_text())))
                return
        # the instance is (being) destroyed: its disk goes with it
        for b in self.w.boxes[:1]:
            b.kill()
        self.ev("box killed (its disk is gone)")
        if api.lingering.get(self.iid, 0) > 100:
            api.remove(self.iid)                     # the platform catches up at last
        try:
            wait_until(lambda: api.get(self.iid) is None, 15, interval=0.1,
                       msg="the fake drops the instance")
        except util.WaitTimeout:
            api.remove(self.iid)
        try:
            wait_until(lambda: not self.listed() or self.status() == "gone", 15, interval=0.2,
                       msg="instance gone or archived")
        except util.WaitTimeout:
            self.bad("the platform dropped the instance, but it is still shown as %r"
                     % self.status())
        if self.listed():
            err = util.op_errno("rmdir", self.w.idir(0), timeout=RMDIR_TIMEOUT)
            self.ev("rmdir of the gone instance -> %s" % err)
            if err != "OK":
                self.bad("rmdir of the gone instance -> %s; teardown:\n%s"
                         % (err, self.indent(self.teardown_text())))
        if not self.archived():
            self.bad("destroyed, but MOUNT/archive/vastai/%d does not exist" % self.iid)
            return
        self.check_archive(roster, "after the teardown")
        if p["remount_at_end"]:
            self.w.mount.unmount()
            api.stop()
            for b in self.w.boxes:
                b.kill()
            self.w.mount.start()
            wait_until(lambda: "archive" in util.ls(self.w.mnt), 15, msg="remounted")
            self.ev("remounted with no network")
            if not self.archived():
                self.bad("after a remount with no network the archive is not listed")
                return
            self.check_archive(roster, "after a remount with no network")

    def check_archive(self, roster, when):
        a = self.archive_dir()
        got, err = walk_mount(os.path.join(a, "checkpoints"))
        if got is None:
            self.bad("%s: %s" % (when, err))
            return
        files = {k: v for k, v in got.items() if v["type"] == "f"}
        problems = []
        for rel, (size, sha) in sorted(roster.items()):
            g = files.get(rel)
            if g is None:
                problems.append("missing: %s" % nm(rel))
            elif "error" in g:
                problems.append("%s: %s (size %d)" % (nm(rel), g["error"], g["size"]))
            elif (g["size"], g["read"], g["sha256"]) != (size, size, sha):
                problems.append("%s: size %d read %d sha %s.. != box size %d sha %s.."
                                % (nm(rel), g["size"], g["read"], g["sha256"][:12], size,
                                   sha[:12]))
        for rel in sorted(set(files) - set(roster)):
            problems.append("extra: %s" % nm(rel))
        for rel, g in got.items():
            if g["type"] not in ("f", "d") or ("error" in g and g["type"] == "d"):
                problems.append("%s: %r" % (nm(rel), g))
        if problems:
            self.bad("%s: archive/vastai/%d/checkpoints does not serve the roster "
                     "(%d of %d files wrong):\n    %s"
                     % (when, self.iid, len(problems), len(roster), "\n    ".join(problems[:30])))
        # the manifest lists every file
        r = run(["cat", "--", os.path.join(a, "PULL_MANIFEST.json")], timeout=30)
        if r.rc != 0:
            self.bad("%s: PULL_MANIFEST.json unreadable: %r" % (when, r))
            return
        try:
            man = json.loads(r.out)
        except ValueError as e:
            self.bad("%s: PULL_MANIFEST.json is not JSON: %s" % (when, e))
            return
        entries = []
        for f in man.get("files") or []:
            path = f.get("path")
            if isinstance(path, str) and path.startswith("checkpoints/"):
                path = path[len("checkpoints/"):]
            entries.append([path, f.get("bytes"), f.get("sha256"), False])
        missing = []
        for rel, (size, sha) in sorted(roster.items()):
            for e in entries:          # by name (surrogateescape for non-UTF-8 bytes)
                if not e[3] and e[0] == fs_name(rel) and e[1:3] == [size, sha]:
                    e[3] = True
                    break
            else:
                for e in entries:      # a non-UTF-8 name in some escaped spelling
                    if not e[3] and e[1:3] == [size, sha] and not _utf8(rel):
                        e[3] = True
                        break
                else:
                    missing.append(rel)
        if missing:
            self.bad("%s: PULL_MANIFEST.json lacks %d of %d files: %s"
                     % (when, len(missing), len(roster), ", ".join(nm(m) for m in missing[:10])))
        totals = man.get("totals") or {}
        if totals.get("files") != len(roster) or len(entries) != len(roster):
            self.bad("%s: PULL_MANIFEST.json: %d entries, totals.files %r, the box had %d"
                     % (when, len(entries), totals.get("files"), len(roster)))
        if totals.get("bytes") != sum(s for s, _ in roster.values()):
            self.bad("%s: PULL_MANIFEST.json totals.bytes %r != %d"
                     % (when, totals.get("bytes"), sum(s for s, _ in roster.values())))

    @staticmethod
    def indent(text, n=12):
        lines = text.splitlines()
        return "\n".join("      | " + ln for ln in lines[:n]) + (
            "\n      | ..." if len(lines) > n else "")

    # -- the whole case
    def run(self):
        try:
            self.setup()
            self.roster0 = self.roster()
            self.box_sha0 = util.box_tree_sha(self.box.workspace)
            self.ws_snap0 = util.local_snapshot(self.box.workspace)
            self.primed = {}
            for rel in self.plan["primed"]:
                got, r = self.cat_mount(rel)
                want = open(os.path.join(os.fsencode(self.ck_local), rel), "rb").read()
                if got != want:
                    self.bad("before any teardown, %s reads %s through the mount"
                             % (nm(rel), "wrong bytes" if got is not None else
                                "an error: " + r.err[-200:].decode(errors="replace")))
                else:
                    self.primed[rel] = got
            self.teardown_with_fault()
            self.check()
        except Exception as e:          # report with the world, whatever broke
            import traceback
            self.bad("exception: %s\n%s" % (e, traceback.format_exc(limit=6)))
        if self.violations:
            msg = ["soak case failed: %d violation(s)" % len(self.violations)]
            msg += ["  - " + v for v in self.violations]
            msg.append(describe(self.plan))
            msg.append("events:\n  " + "\n  ".join(self.events))
            if self.w is not None:
                msg.append("first rmdir -> %s; its teardown file:\n%s"
                           % (getattr(self, "err1", "?"),
                              self.indent(getattr(self, "report1", ""), 20)))
                msg.append("daemon log tail:\n" + self.indent(self.w.mount.log_tail(25), 25))
            pytest.fail("\n".join(msg), pytrace=False)


def _utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@pytest.mark.deadline(280)
@pytest.mark.parametrize("run_no", range(RUNS), ids=lambda r: "%d-%d" % (SEED, r))
def test_teardown_soak(run_no, world, proxies, hygiene, store_tool, tmp_path):
    plan = make_plan(SEED, run_no, str(tmp_path))
    Case(plan, world, proxies, hygiene, store_tool).run()
