"""A 20 GiB checkpoint through the verified teardown (opt-in: RGTFS_LARGE=1).

    RGTFS_LARGE=1 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
        tests/integration/test_large.py --rgtfs build/rgtfs

The box's checkpoint_dir holds a 20 GiB sparse file (no disk on the box
side) besides the small files of every format that test_teardown.py uses.
The cache really holds the 20 GiB, so the test skips unless the cache's
filesystem has 25 GiB free, and it removes the cache when it ends, pass or
fail (pytest keeps old tmp dirs, so it is not left to pytest).

io_timeout stays at the suite's 5 s on purpose: the box's sha256sum of
20 GiB is silent for far longer than that, and must still succeed because the
remote hash has a deadline that scales with the file's size.

Run with -s to see the timings: the box's sha256sum alone, the rmdir wall
time, each teardown step as seen by polling the instance's `teardown` file,
and the cache's disk use before and after the cleanup.
"""

import os
import shutil
import time

import pytest

import util
from util import run, wait_until, ls, MIB, BASE_MTIME
from sshd import SSH_OPTS
from test_teardown import (td_world, start, vastai, archive, deletes_for, _archived,
                           build_checkpoints, teardown_report)

GIB = 1 << 30
BIG = 20 * GIB
NEED_FREE = 25 * GIB
RMDIR_TIMEOUT = 3000          # seconds; the whole teardown of 20 GiB
HASH_TIMEOUT = 1800           # seconds; one sha256sum of 20 GiB

pytestmark = pytest.mark.skipif(
    os.environ.get("RGTFS_LARGE") != "1",
    reason="moves 20 GiB through the cache (~20 GiB of disk, minutes): "
           "opt in with RGTFS_LARGE=1")


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def du_bytes(path):
    r = run(["du", "-sb", "--", path], timeout=120)
    return int(r.text.split()[0]) if r.rc == 0 and r.text.split() else -1


def fmt_rate(nbytes, secs):
    return "%.0f MiB/s" % (nbytes / MIB / secs) if secs > 0 else "-"


@pytest.fixture
def big_space(tmp_path):
    """The cache directory for the big teardown, and the big box file; both
    removed when the test ends. Requested before `world`, so this runs its
    cleanup after the mounts and boxes are gone."""
    free = free_bytes(str(tmp_path))
    if free < NEED_FREE:
        pytest.skip("the cache's filesystem (%s) has %.1f GiB free; the 20 GiB "
                    "teardown needs %d GiB" % (tmp_path, free / GIB, NEED_FREE // GIB))
    cache = str(tmp_path / "bigcache")
    made = {"cache": cache, "remove": [cache]}
    yield made
    for p in made["remove"]:
        if os.path.isdir(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.lexists(p):
            os.unlink(p)
    left = [p for p in made["remove"] if os.path.lexists(p)]
    assert not left, "could not remove %s" % left


class Progress:
    """Polls the instance's `teardown` file while an rmdir child runs and
    remembers when each line first showed up (seconds after the rmdir)."""

    def __init__(self, path, t0):
        self.path, self.t0 = path, t0
        self.first = {}               # line -> seconds
        self.last_text = ""

    def poll(self):
        r = run(["cat", "--", self.path], timeout=10)
        if r.rc != 0:
            return
        now = time.monotonic() - self.t0
        self.last_text = r.text
        for line in r.text.splitlines():
            self.first.setdefault(line, now)

    def steps(self, final_report, end):
        """[(seconds, index, line)] for the lines of the final report, by time; a
        line the polls never saw is dated `end` (it came in the last second)."""
        lines = final_report.splitlines()
        return sorted(((self.first.get(line, end), i, line) for i, line in enumerate(lines)))


@pytest.mark.slow
@pytest.mark.deadline(2 * RMDIR_TIMEOUT)
def test_teardown_of_a_20_gib_sparse_checkpoint(big_space, world):
    w = td_world(world, populate=False, mount=False, cache=big_space["cache"])
    box = w.boxes[0]
    build_checkpoints(box.workspace)
    big = w.box_ck(0, "big", "model.bin")
    os.makedirs(os.path.dirname(big), exist_ok=True)
    with open(big, "wb") as f:
        os.truncate(f.fileno(), BIG)       # sparse: no disk on the box side
    os.utime(big, (BASE_MTIME + 99, BASE_MTIME + 99))
    big_space["remove"].append(big)
    assert os.stat(big).st_blocks * 512 < 16 * MIB, "the box file is not sparse"
    start(w)
    iid = w.ids[0]
    cache_fs = os.path.dirname(big_space["cache"])

    # The box's own sha256sum of the big file, over an exec channel as
    # rgtfs runs it: the expected digest and the "remote hash alone" time.
    t = time.monotonic()
    r = run(["ssh", "-p", str(box.port), "-i", w.key] + SSH_OPTS +
            ["root@127.0.0.1", "sha256sum /workspace/checkpoints/big/model.bin"],
            timeout=HASH_TIMEOUT)
    remote_hash_s = time.monotonic() - t
    assert r.rc == 0, r
    want = r.text.split()[0]
    print("\n[large] box sha256sum of 20 GiB: %.1f s (%s), digest %s"
          % (remote_hash_s, fmt_rate(BIG, remote_hash_s), want))

    free0 = free_bytes(cache_fs)
    assert teardown_report(w) == ""     # looked up: readable during the rmdir
    t0 = time.monotonic()
    p = util.spawn_op("rmdir", w.idir(0))
    prog = Progress(w.f(0, "teardown"), t0)
    while p.poll() is None:
        if time.monotonic() - t0 > RMDIR_TIMEOUT:
            break
        prog.poll()
        time.sleep(1.0)
    err, secs = util.op_result(p, 30)
    total_s = time.monotonic() - t0
    print("[large] rmdir -> %s after %.1f s (syscall %.1f s)" % (err, total_s, secs))
    if err != "OK":
        rep = run(["cat", w.f(0, "teardown")], timeout=30).text or prog.last_text
        pytest.fail("rmdir of the 20 GiB instance -> %s after %.0f s; teardown:\n%s\n"
                    "daemon log tail:\n%s" % (err, total_s, rep, w.mount.log_tail(60)))

    assert len(deletes_for(w.api, iid)) == 1, w.api.deletes()
    assert [m["method"] for m in w.api.mutations()] == ["DELETE"], w.api.mutations()
    wait_until(lambda: str(iid) in _archived(w), 10, msg="archived")
    assert str(iid) not in ls(vastai(w))
    a = archive(w)
    final = util.read_text(os.path.join(a, "teardown"))
    assert "verified" in final and "destroyed" in final, final
    print("[large] teardown steps (first seen, seconds after the rmdir; +/- 1 s):")
    prev = 0.0
    for at, _, line in prog.steps(final, total_s):
        rate = ("  [%s]" % fmt_rate(BIG, at - prev)
                if line.startswith(("roster: SHA-256", "pull:", "verify:", "serve:")) else "")
        print("[large]   %7.1f s (+%6.1f)  %s%s" % (at, at - prev, line, rate))
        prev = at
    print("[large] teardown total %.1f s: %s of checkpoint bytes end to end"
          % (total_s, fmt_rate(BIG, total_s)))
    cache_used = du_bytes(big_space["cache"])
    free1 = free_bytes(cache_fs)
    print("[large] cache: %.2f GiB on disk (du); filesystem free %.1f -> %.1f GiB"
          % (cache_used / GIB, free0 / GIB, free1 / GIB))

    # The archive serves the big file with the box's digest.
    st = os.stat(os.path.join(a, "checkpoints", "big", "model.bin"))
    assert st.st_size == BIG
    t = time.monotonic()
    got = util.sha256sum(os.path.join(a, "checkpoints", "big", "model.bin"),
                         timeout=HASH_TIMEOUT)
    read_s = time.monotonic() - t
    print("[large] sha256sum of the archived copy through the mount: %.1f s (%s)"
          % (read_s, fmt_rate(BIG, read_s)))
    assert got == want

    # The disk comes back: unmount, remove the cache, measure.
    assert w.mount.unmount() == 0
    shutil.rmtree(big_space["cache"])
    os.sync()
    free2 = wait_until(lambda: (lambda f: f if f - free1 >= cache_used - GIB else None)(
        free_bytes(cache_fs)), 60, interval=1,
        msg="the cache's %.1f GiB returned to the filesystem" % (cache_used / GIB))
    print("[large] cache removed: filesystem free %.1f GiB (%.1f GiB back)"
          % (free2 / GIB, (free2 - free1) / GIB))
