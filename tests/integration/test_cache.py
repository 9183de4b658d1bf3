"""The LMDB cache: re-reads need no network, and what was read survives an
unmount, a crash (kill -9), a dead box and a failing API."""

import os
import stat
import time

import pytest

import util
from util import ok, cat, wait_until, snapshot, local_snapshot, tree_diff, ls, MIB

EIO_BOUND = 15.0        # connect_timeout 3 + io_timeout 5 + slack
STATUS_WAIT = 6.0

READ_FILES = [("run-001", "best.pth"), ("run-001", "model.safetensors"),
              ("run-001", "best_metrics.json"), ("run-001", "step-01000", "optimizer.bin"),
              ("empty.bin",)]
UNREAD = ("run-001", "step-02000", "optimizer.bin")


def _read_some(w):
    """Read READ_FILES and list the whole tree (no hashing); returns (listing, bytes)."""
    listing = snapshot(w.ck(0), hashing=False)
    data = {rel: cat(w.ck(0, *rel)) for rel in READ_FILES}
    for rel, b in data.items():
        assert b == open(w.box_ck(0, *rel), "rb").read(), rel
    return listing, data


def test_rereads_need_no_network(world):
    w = world()
    first = snapshot(w.ck(0))                      # reads every byte
    assert tree_diff(first, local_snapshot(w.box_ck(0))) == []
    w.boxes[0].kill()                              # no sshd, no sessions
    t0 = time.monotonic()
    again = snapshot(w.ck(0))
    assert tree_diff(again, first) == []
    assert time.monotonic() - t0 < 10, "cached re-read took %.1fs" % (time.monotonic() - t0)
    r = ok(["ls", "-lR", w.ck(0)])
    assert "best.pth" in r.text
    r = ok(["cp", "-a", w.ck(0), os.path.join(w.mount.workdir, "copy")], timeout=60)
    assert tree_diff(local_snapshot(os.path.join(w.mount.workdir, "copy")),
                     local_snapshot(w.box_ck(0))) == []


@pytest.mark.faults
def test_remount_with_dead_box_and_failing_api(world):
    w = world(stale_after=4)
    iid = str(w.ids[0])
    listing, data = _read_some(w)
    assert w.mount.unmount() == 0
    w.boxes[0].kill()
    w.api.fail(status=500)
    w.mount.start()
    # the instance is still listed, from the cache
    wait_until(lambda: iid in ls(os.path.join(w.mnt, "vastai")), 5, msg="listed from cache")
    wait_until(lambda: "500" in w.vast_error(), STATUS_WAIT, msg=".error shows the 500")
    # the listing and the bytes read before are identical
    assert tree_diff(snapshot(w.ck(0), hashing=False), listing) == []
    for rel, b in data.items():
        assert cat(w.ck(0, *rel)) == b, rel
    # a file never read: a clear EIO in bounded time (not ENOENT, not a hang)
    err, secs = util.op_timed("read", w.ck(0, *UNREAD), timeout=60)
    assert err == "EIO" and secs < EIO_BOUND, (err, secs)
    # status: last known, then unknown, never gone
    seen = set()
    wait_until(lambda: seen.add(w.status()) or "unknown\n" in seen, 4 + STATUS_WAIT + 2,
               msg="status unknown after stale_after")
    assert seen <= {"running\n", "unknown\n"}, seen
    assert w.api.deletes() == []


@pytest.mark.faults
def test_cache_survives_kill_9(world):
    w = world()
    listing, data = _read_some(w)
    w.mount.crash()                      # kill -9 at a random moment
    w.boxes[0].kill()
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in ls(os.path.join(w.mnt, "vastai")), 5)
    assert tree_diff(snapshot(w.ck(0), hashing=False), listing) == []
    for rel, b in data.items():
        assert cat(w.ck(0, *rel)) == b, rel


def test_cache_directory_is_private(world):
    w = world()
    cat(w.ck(0, "run-001", "best.pth"))
    st = os.stat(w.mount.cache)
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    mdb = [f for _, _, fs in os.walk(w.mount.cache) for f in fs if f.endswith(".mdb")]
    assert mdb, "no LMDB files under the cache dir"
    bad = []
    for dirpath, dirs, files in os.walk(w.mount.cache):
        for d in dirs:
            m = stat.S_IMODE(os.stat(os.path.join(dirpath, d)).st_mode)
            if m & 0o077:
                bad.append("dir %s %o" % (d, m))
        for f in files:
            m = stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode)
            if m & 0o077:
                bad.append("file %s %o" % (f, m))
    assert bad == []


def test_parallel_readers_get_the_same_bytes(world):
    w = world(populate=True)
    box = w.boxes[0]
    shas = {}
    for i in range(6):
        p = os.path.join(box.workspace, "checkpoints", "par", "shard-%d.bin" % i)
        util.write_file(p, util.pattern_bytes(4 * MIB + 1000 * i, 100 + i), util.BASE_MTIME)
        shas["shard-%d.bin" % i] = util.sha256_file(p)
    big = os.path.join(box.workspace, "checkpoints", "par", "shared.bin")
    shas["shared.bin"] = util.write_big_file(big, 24 * MIB, seed=5, mtime=util.BASE_MTIME)
    d = w.ck(0, "par")
    r = ok("cd %s && (ls shard-*.bin | xargs -P6 -n1 sha256sum; "
           "for i in 1 2 3 4; do sha256sum shared.bin & done; wait)" % d, timeout=120)
    got = [l.split() for l in r.text.splitlines()]
    assert len(got) == 10
    for sha, name in got:
        assert sha == shas[name], name


def test_a_file_changed_on_the_box_never_mixes_old_and_new(world):
    """Blocks are keyed by (path, size, mtime): after the box rewrites a file,
    every read gives the old bytes or the new bytes, never a mix, and the new
    ones show up (SPEC: reading checkpoints)."""
    w = world()
    p = w.box_ck(0, "run-001", "latest.pth")
    old = util.pattern_bytes(3 * MIB, 1)
    util.write_file(p, old, util.BASE_MTIME)
    assert cat(w.ck(0, "run-001", "latest.pth")) == old
    new = util.pattern_bytes(3 * MIB, 2)        # same size, new bytes, new mtime
    util.write_file(p + ".tmp", new, util.BASE_MTIME + 3600)
    os.rename(p + ".tmp", p)
    seen = []

    def fresh():
        b = cat(w.ck(0, "run-001", "latest.pth"))
        seen.append(b == old and "old" or b == new and "new" or "MIXED")
        return seen[-1] != "old"
    wait_until(fresh, 30, interval=0.5, msg="new content visible")
    assert "MIXED" not in seen, seen
    # attributes may be cached by the kernel for a moment, not for long
    want = [str(len(new)), str(util.BASE_MTIME + 3600)]
    wait_until(lambda: ok(["stat", "-c", "%s %Y", w.ck(0, "run-001", "latest.pth")]).text.split()
               == want, STATUS_WAIT, msg="stat shows the new size and mtime")
    assert cat(w.ck(0, "run-001", "latest.pth")) == new


@pytest.mark.slow
@pytest.mark.deadline(400)
def test_big_file_copy_and_cached_recopy(world, tmp_path):
    w = world()
    size = 160 * MIB
    sha = util.write_big_file(w.box_ck(0, "big", "model-final.pt"), size, seed=11,
                              mtime=util.BASE_MTIME + 5)
    dst = tmp_path / "big1.pt"
    t0 = time.monotonic()
    ok(["cp", "-a", w.ck(0, "big", "model-final.pt"), str(dst)], timeout=300)
    cold = time.monotonic() - t0
    assert util.sha256_file(str(dst)) == sha
    assert int(os.stat(dst).st_mtime) == util.BASE_MTIME + 5
    os.unlink(dst)
    w.boxes[0].kill()
    t0 = time.monotonic()
    ok(["cp", w.ck(0, "big", "model-final.pt"), str(dst)], timeout=300)
    warm = time.monotonic() - t0
    assert util.sha256_file(str(dst)) == sha
    print("160 MiB: cold %.1fs (%.0f MiB/s), from cache %.1fs (%.0f MiB/s)"
          % (cold, 160 / cold, warm, 160 / warm))


class _LatencyProxy(util.TcpProxy):
    """Every forwarded chunk waits `delay` seconds: a request/response
    exchange costs about two delays, as over a long link."""

    def __init__(self, target_port, delay):
        self.delay = delay
        super().__init__(target_port)

    def _throttle(self, n):
        time.sleep(self.delay)


def test_a_directory_walk_fetches_the_next_small_files_in_parallel(world):
    # 120 small files read one after another (as rsync and cp -r do),
    # through ~20 ms per exchange: one at a time that is 3 exchanges per
    # file (open, fstat, read), over 7 s; queued ahead it is a fraction.
    w = world(populate=False, mount=False)
    d = w.box_ck(0, "small")
    os.makedirs(d)
    want = {}
    for i in range(120):
        b = os.urandom(8192 + i)
        name = "f%03d.bin" % i
        with open(os.path.join(d, name), "wb") as f:
            f.write(b)
        want[name] = b
    px = _LatencyProxy(w.boxes[0].port, 0.01)
    try:
        w.api.set_endpoints(w.ids[0], direct_port=px.port, proxy_port=px.port)
        w.mount.start()
        wait_until(lambda: str(w.ids[0]) in ls(os.path.join(w.mnt, "vastai")), 10,
                   msg="instance listed")
        names = sorted(ls(w.ck(0, "small")))
        assert names == sorted(want)
        t0 = time.monotonic()
        got = {n: cat(w.ck(0, "small", n)) for n in names}
        took = time.monotonic() - t0
        assert got == want
        assert took < 4, "120 small files took %.1f s: nothing was fetched ahead" % took
        # a lone read does not start a walk: only the file asked for
        before = px.bytes
        cat(w.ck(0, "small", "f000.bin"))          # cached: no traffic
        assert px.bytes == before
    finally:
        px.stop()
