"""The teardown fault matrix (issue 11, README "Fault matrix").

One cell per (fault, step): the fault is injected right before the step runs
and lasts until the test clears it. Steps: roster, pull, verify, record,
re-list, destroy, confirm (teardown.c's own names; `serve`, the read-back
through the archive, runs between record and re-list and is covered by the
record cells: a fault there lasts through it). Faults: sshd killed, sshd
frozen (SIGSTOP: a silent peer), API 500, API timeout (the fake never
answers), API answering success but not destroying, a byte flipped on the box
(bit rot: same size, same mtime), cache disk full (the cache on a small
tmpfs, filled up), kill -9 of rgtfs.

The moment: the test hook RGTFS_TEST_PAUSE_AT / RGTFS_TEST_PAUSE_FIFO
(fs/teardown.c, inert unless set) makes the teardown wait on a FIFO before
the named step; the test sees that it waits (a non-blocking open for writing
succeeds once the teardown holds the FIFO open), injects the fault, and lets
it go on. Only `destroy-call` needs no hook: the fake API hangs on the DELETE
after acting on it, and rgtfs is killed while it waits for the answer.

Each cell asserts the three invariants:
- nothing destroyed that should not be: before the destroy call, a refusal
  (rmdir fails, the report says "refused:" or, when a persistent API fault
  reaches the destroy call, "failed:" with the DELETE answered by the fault
  and never acted on), the instance still running in the fake API, no DELETE
  acted on, the box byte-identical, and the data cached and readable through
  the mount with the box's sshd gone;
- nothing lost: after the destroy call, the teardown either finishes, or on
  a remount the journal is still there and a later rmdir finishes confirm and
  archive as verified; the archive serves every byte, SHA-256 equal to the
  box's;
- no hang: every syscall on the mount runs in a child with a timeout, and
  rmdir returns within a bound that fits the work (BOUND below).

Cells covered elsewhere are not repeated here; the README table names them.
"""

import errno
import json
import os
import signal
import stat

import pytest

import util
from util import MIB, BASE_MTIME, cat, ls, local_snapshot, read_text, run, snapshot, wait_until
from test_teardown import _archived, archive, deletes_for, vastai

pytestmark = pytest.mark.faults

DESTROY_TIMEOUT = 5
IO_TIMEOUT = 3
CONNECT_TIMEOUT = 2
API_TIMEOUT = 2
PRE_READ = ("run-a", "metrics.json")     # cached before the teardown starts
FLIP = ("run-b", "optimizer.bin")        # the file whose byte flips on the box

# rmdir's bound, seconds, by fault: the work (a few hundred KiB) takes well
# under a second; a dead box costs connect_timeout/io_timeout; a silent one
# holds an exec channel until its deadline (cache/remote.c: the roster's find
# io_timeout + 120 s; a hash io_timeout + 60 s); an API fault costs
# api_timeout per call and destroy_timeout at most for the confirm.
BOUND = {
    "sshd_killed": 30, "sshd_frozen": 30, "api_500": 30, "api_timeout": 40,
    "api_lie": 30, "byte_flipped": 30, "disk_full": 30, "kill9": 30,
}
FROZEN_BOUND = {"roster": IO_TIMEOUT + 120 + 15, "pull": IO_TIMEOUT + 60 + 15,
                "re-list": IO_TIMEOUT + 120 + 15}

PRE = ["roster", "pull", "verify", "record", "re-list"]


# ---- the world -------------------------------------------------------------------

def small_checkpoints(ck):
    """Every known format, a nested directory, about 1.3 MiB in all."""
    t = BASE_MTIME
    util.torch_like_zip(os.path.join(ck, "run-a", "model.pt"), 512 * 1024, seed=3,
                        mtime=t + 1)
    util.safetensors_file(os.path.join(ck, "run-a", "model.safetensors"), 32768, seed=4,
                          mtime=t + 2)
    util.write_file(os.path.join(ck, *PRE_READ),
                    json.dumps({"epoch": 3, "val_loss": 0.25}).encode() + b"\n", t + 3)
    util.write_file(os.path.join(ck, "run-b", "deep", "weights.npy"),
                    util.npy_bytes([i / 7.0 for i in range(3000)]), t + 4)
    util.write_file(os.path.join(ck, *FLIP), util.pattern_bytes(600001, 5), t + 5)
    util.write_file(os.path.join(os.path.dirname(ck), "train.log"), b"step 1 loss 1.0\n",
                    t + 6)


class Pause:
    """The teardown waits on a FIFO before `step` (fs/teardown.c test hook)."""

    def __init__(self, mount, step, d):
        self.fifo = os.path.join(d, "pause.fifo")
        os.mkfifo(self.fifo, 0o600)
        self.fd = None
        mount.env = dict(mount.env, RGTFS_TEST_PAUSE_AT=step,
                         RGTFS_TEST_PAUSE_FIFO=self.fifo)

    def _opened(self):
        try:
            self.fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            return True
        except OSError as e:
            if e.errno == errno.ENXIO:       # no reader yet
                return False
            raise

    def wait(self, child, timeout=60):
        wait_until(lambda: self._opened() or child.poll() is not None, timeout,
                   interval=0.02, msg="teardown waiting at the pause")
        if self.fd is None:
            err, _ = util.op_result(child, 5)
            pytest.fail("rmdir returned %s before the pause" % err)
        os.unlink(self.fifo)                 # later teardowns do not pause

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Cell:
    def __init__(self, w, tmp, cache_tmpfs=None):
        self.w, self.tmp, self.tmpfs = w, tmp, cache_tmpfs
        self.iid = w.ids[0]
        self.box = w.boxes[0]
        self.stopped = []
        self.filler = None

    # -- the box as the test sees it (from its own disk, not through sshd)
    def box_files(self):
        return {k: (v["size"], v.get("sha256"))
                for k, v in local_snapshot(self.w.box_ck(0)).items()
                if stat.S_ISREG(v["mode"])}

    def archive_files(self):
        snap = snapshot(os.path.join(archive(self.w), "checkpoints"))
        return {k: (v["size"], v.get("sha256")) for k, v in snap.items()
                if stat.S_ISREG(v["mode"])}

    def report(self):
        return read_text(self.w.f(0, "teardown"))

    # -- faults
    def freeze(self):
        for pid in self.box.processes():
            try:
                os.kill(pid, signal.SIGSTOP)
                self.stopped.append(pid)
            except ProcessLookupError:
                pass
        assert self.stopped, "no box process to freeze"

    def thaw(self):
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped = []

    def flip(self):
        p = self.w.box_ck(0, *FLIP)
        st = os.stat(p)
        with open(p, "r+b") as f:
            f.seek(st.st_size // 2)
            b = f.read(1)
            f.seek(st.st_size // 2)
            f.write(bytes([b[0] ^ 0x01]))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))   # bit rot: same mtime

    def fill(self):
        self.filler = os.path.join(self.tmpfs, "filler")
        with open(self.filler, "wb") as f:
            chunk = b"\0" * MIB
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        # whatever fits in the last pages too
        with open(self.filler + ".tail", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        st = os.statvfs(self.tmpfs)
        assert st.f_bavail * st.f_frsize < 64 * 1024, "the cache disk is not full"

    def unfill(self):
        for p in (self.filler, (self.filler or "") + ".tail"):
            if p and os.path.exists(p):
                os.unlink(p)

    def inject(self, fault):
        if fault == "sshd_killed":
            self.box.kill()
        elif fault == "sshd_frozen":
            self.freeze()
        elif fault == "api_500":
            self.w.api.fail(status=500)
        elif fault == "api_timeout":
            self.w.api.fail(mode="hang")
        elif fault == "api_lie":
            self.w.api.fail(mode="body", status=200, method="DELETE",
                            body='{"success": true, "msg": "destroying instance"}')
        elif fault == "byte_flipped":
            self.flip()
        elif fault == "disk_full":
            self.fill()
        elif fault == "kill9":
            self.w.mount.crash()
        else:
            raise AssertionError(fault)

    def clear(self):
        """Undo every fault (the flipped byte stays: it is the box's data now)."""
        self.thaw()
        self.w.api.clear()
        if not self.box.is_running():
            self.box.start()
        if self.filler:
            self.unfill()
            # a failed write is sticky until a remount (teardown.c, step_destroy)
            self.remount()
        if not self.w.mount.running():
            self.start_mount()

    def start_mount(self):
        self.w.mount.start()
        wait_until(lambda: str(self.iid) in ls(vastai(self.w)) or
                   str(self.iid) in _archived(self.w), 15, msg="instance listed")

    def remount(self):
        if self.w.mount.running():
            assert self.w.mount.unmount() == 0
        self.start_mount()

    # -- the invariants
    def assert_not_destroyed(self, deletes_ok=False):
        inst = self.w.api.get(self.iid)
        assert inst is not None and inst["cur_state"] == "running", \
            "the instance was destroyed: %r" % (inst,)
        dels = deletes_for(self.w.api, self.iid)
        if deletes_ok:
            # a persistent API fault reached the destroy call: each DELETE was
            # answered by the fault, none acted on (the instance runs)
            assert all(d.get("fault") for d in dels), dels
        else:
            assert dels == [], "a DELETE before the destroy call: %r" % dels
        assert [r for r in self.w.api.mutations() if r["method"] != "DELETE"] == []

    def assert_cached(self, rels):
        """The bytes the teardown pulled are in the cache: read back through
        the mount with the box's sshd gone."""
        self.thaw()
        self.box.kill()
        want = self.box_files()
        for rel in rels:
            got = util.sha256sum(self.w.ck(0, *rel.decode().split("/")))
            assert got == want[rel][1], "%r reads %s from the cache, the box has %s" % (
                rel, got, want[rel][1])
        self.box.start()

    def assert_archived(self, want, verified=True):
        wait_until(lambda: str(self.iid) in _archived(self.w), 10, msg="archived")
        got = self.archive_files()
        assert got == want, "the archive differs from the box:\n%r\n%r" % (got, want)
        rep = read_text(os.path.join(archive(self.w), "teardown"))
        if verified:
            assert "verified" in rep and "not verified" not in rep, rep
        man = json.loads(cat(os.path.join(archive(self.w), "PULL_MANIFEST.json")))
        digests = {f["path"].split("checkpoints/", 1)[-1].encode(): f["sha256"]
                   for f in man["files"]}
        assert digests == {k: v[1] for k, v in want.items()}, digests


@pytest.fixture
def cell(world, tmp_path, tmpfs_factory):
    def make(step, disk=False, sessions=None, pause=True):
        cache = tmpfs_factory("96m", name="cache") if disk else None
        rg = {"sessions": sessions} if sessions else {}
        w = world(populate=False, mount=False, cache=cache, connect_timeout=CONNECT_TIMEOUT,
                  io_timeout=IO_TIMEOUT, api_timeout=API_TIMEOUT, extra_rgtfs=rg,
                  extra_vastai={"destroy_timeout": DESTROY_TIMEOUT})
        w.api.linger = 1
        small_checkpoints(w.box_ck(0))
        c = Cell(w, str(tmp_path), cache)
        c.pause = Pause(w.mount, step, str(tmp_path)) if pause else None
        c.start_mount()
        cat(w.ck(0, *PRE_READ))              # cached before the teardown
        assert c.report() == ""              # `teardown` looked up before rmdir locks it
        c.want = c.box_files()
        c.before = util.box_tree_sha(c.box.workspace)
        return c
    made = []

    def tracked(*a, **kw):
        c = make(*a, **kw)
        made.append(c)
        return c
    yield tracked
    for c in made:
        c.thaw()
        if c.pause:
            c.pause.release()


def run_cell(c, fault, step, bound):
    """rmdir with `fault` injected before `step`: (errno name, seconds)."""
    child = util.spawn_op("rmdir", c.w.idir(0))
    try:
        c.pause.wait(child)
        c.inject(fault)
        c.pause.release()
        err, secs = util.op_result(child, bound + 30)
    finally:
        util.stop_child(child)
    assert err != "TIMEOUT", "rmdir did not return within %d s" % (bound + 30)
    assert secs <= bound, "rmdir took %.1f s (bound %d s) -> %s" % (secs, bound, err)
    return err


def retry_ok(c, want):
    """Faults cleared: a deliberate rmdir finishes, the archive is the box's."""
    c.clear()
    # after an API fault the status reads `unknown` until the next list
    # answers, and an unknown instance refuses (its box cannot be judged)
    wait_until(lambda: c.w.status() == "running\n", 15, interval=0.2,
               msg="status running again")
    err = util.op_errno("rmdir", c.w.idir(0), timeout=90)
    assert err == "OK", "rmdir after the fault cleared -> %s; teardown:\n%s\n%s" % (
        err, c.report(), c.w.mount.log_tail())
    c.assert_archived(want)


def resume_after_remount(c, want):
    """After the destroy call: remount, the platform drops the instance, the
    box's disk is gone with it; rmdir archives from the journal, verified."""
    c.thaw()
    c.w.api.clear()
    if c.filler:
        c.unfill()
    c.box.kill()
    c.remount()
    wait_until(lambda: c.w.api.get(c.iid) is None, 20, interval=0.2,
               msg="the platform drops the destroyed instance")
    if str(c.iid) in _archived(c.w):
        pytest.fail("archived without an rmdir after the remount")
    wait_until(lambda: read_text(c.w.f(0, "status")) == "gone\n", 15, interval=0.2,
               msg="status gone")
    n = len(deletes_for(c.w.api, c.iid))
    err = util.op_errno("rmdir", c.w.idir(0), timeout=60)
    assert err == "OK", "rmdir of the gone instance -> %s; teardown:\n%s" % (err, c.report())
    assert len(deletes_for(c.w.api, c.iid)) == n, "a DELETE after the remount"
    c.assert_archived(want)


def all_files(c):
    return sorted(c.want)


def pre_read(c):
    return [os.path.join(*PRE_READ).encode()]


# ---- box faults: sshd killed, sshd frozen ------------------------------------------

# pull for sshd_killed: test_teardown.py (see the README table)
BOX_CELLS = [("sshd_killed", s) for s in ("roster", "verify", "record", "re-list", "destroy",
                                          "confirm")] \
    + [("sshd_frozen", s) for s in PRE + ["destroy", "confirm"]]


@pytest.mark.deadline(240)
@pytest.mark.parametrize("fault,step", BOX_CELLS, ids=["%s-%s" % fs for fs in BOX_CELLS])
def test_box_fault(cell, fault, step):
    # one session: the box hashes inside the roster step, not during the pull
    # (with more, the pull cell would also be the roster's hash, bounded by
    # its own deadline)
    c = cell(step, sessions=1 if step == "pull" else None)
    bound = FROZEN_BOUND.get(step, BOUND[fault]) if fault == "sshd_frozen" else BOUND[fault]
    err = run_cell(c, fault, step, bound)
    if step in ("destroy", "confirm"):
        # n/a: these steps do not use the box; the teardown finishes without it
        assert err == "OK", "rmdir -> %s; teardown:\n%s" % (err, c.report())
        assert len(deletes_for(c.w.api, c.iid)) == 1
        c.assert_archived(c.want)
        return
    rep = c.report()
    assert err in ("EHOSTUNREACH", "EIO", "ETIMEDOUT"), (err, rep)
    assert rep.startswith("refused:"), rep
    c.assert_not_destroyed()
    assert util.box_tree_sha(c.box.workspace) == c.before
    c.assert_cached(pre_read(c) if step in ("roster", "pull") else all_files(c))
    retry_ok(c, c.want)


# ---- API faults: 500, timeout, success but not destroying -------------------------

# destroy for api_500/api_timeout and confirm for api_lie: test_teardown.py and
# test_teardown_safety.py; api_lie before the destroy call: n/a (README)
API_CELLS = [(f, s) for f in ("api_500", "api_timeout") for s in PRE + ["confirm"]] \
    + [("api_lie", "destroy")]


@pytest.mark.deadline(240)
@pytest.mark.parametrize("fault,step", API_CELLS, ids=["%s-%s" % fs for fs in API_CELLS])
def test_api_fault(cell, fault, step):
    c = cell(step)
    bound = BOUND[fault] + (DESTROY_TIMEOUT if step in ("destroy", "confirm") else 0)
    err = run_cell(c, fault, step, bound)
    rep = c.report()
    assert err != "OK", rep
    if step in PRE:
        # The steps before the destroy call make no API call: they all run
        # with the API down, and the persistent fault then answers the DELETE,
        # which it never acts on. Or the state check sees the stale status.
        assert rep.startswith("failed:") or rep.startswith("refused:"), rep
        if rep.startswith("failed:"):
            assert "re-list: the box still lists" in rep, rep
        c.assert_not_destroyed(deletes_ok=True)
        assert util.box_tree_sha(c.box.workspace) == c.before
        c.assert_cached(all_files(c) if rep.startswith("failed:") else pre_read(c))
        retry_ok(c, c.want)
    elif step == "confirm":
        # accepted, then the platform cannot be asked: not confirmed, the
        # journal keeps the verified copy; on remount rmdir finishes it
        assert rep.startswith("failed:"), rep
        assert len(deletes_for(c.w.api, c.iid)) == 1
        resume_after_remount(c, c.want)
    else:
        # api_lie at the destroy call: "success", and the instance runs on;
        # the confirm does not see it go; nothing was destroyed, the journal
        # says a destroy call was made; after a remount a deliberate rmdir
        # verifies the box anew and destroys it for real
        assert rep.startswith("failed:") and "still lists" in rep, rep
        inst = c.w.api.get(c.iid)
        assert inst is not None and inst["cur_state"] == "running", inst
        assert len(deletes_for(c.w.api, c.iid)) == 1
        c.w.api.clear()
        c.remount()
        rep2 = c.report()
        assert "a destroy call was made" in rep2, rep2
        c.assert_cached(all_files(c))
        retry_ok(c, c.want)
        assert len(deletes_for(c.w.api, c.iid)) == 2


# ---- a byte flipped on the box (bit rot: same size, same mtime) --------------------

FLIP_CELLS = ["pull", "verify", "record", "re-list", "destroy", "confirm"]


@pytest.mark.deadline(240)
@pytest.mark.parametrize("step", FLIP_CELLS)
def test_byte_flipped_on_the_box(cell, step):
    # one session: the roster's hash is done before the pull starts, so the
    # flip lands after the box hashed the file and before its bytes move
    c = cell(step, sessions=1)
    err = run_cell(c, "byte_flipped", step, BOUND["byte_flipped"])
    if step == "pull":
        rep = c.report()
        # the copy hashes otherwise than the box said: refused
        assert err == "EIO", (err, rep)
        assert rep.startswith("refused:") and "optimizer.bin" in rep and "differs" in rep, rep
        c.assert_not_destroyed()
        # a later rmdir rosters the flipped file anew: the box's bytes now
        retry_ok(c, c.box_files())
        return
    # After the pull the box's bytes are not read again, and a flip that
    # keeps size and mtime is invisible to the re-list (names, sizes,
    # mtimes): the verified copy is the bytes the box hashed, and that is
    # what the archive serves.
    assert err == "OK", (err, run(["cat", c.w.f(0, "teardown")], timeout=10).text)
    assert c.box_files() != c.want
    c.assert_archived(c.want)


# ---- the cache disk fills up --------------------------------------------------------

# roster: test_teardown.py::test_cache_too_small_refuses_with_enospc
DISK_CELLS = ["pull", "verify", "record", "re-list", "destroy", "confirm"]


# A disk full before the destroy call refuses: the pull's new blocks fail,
# and a disk filled later is caught by the free-space check just before the
# destroy (the archive record is written after it). Filled after the call
# (confirm), the archive write fails ("failed:") and the journal finishes it
# on a remount.
@pytest.mark.deadline(240)
@pytest.mark.parametrize("step", DISK_CELLS)
def test_cache_disk_full(cell, step):
    c = cell(step, disk=True)
    err = run_cell(c, "disk_full", step, BOUND["disk_full"])
    rep = c.report()
    inst = c.w.api.get(c.iid)
    destroyed = inst is None or inst["cur_state"] != "running"
    if step != "confirm":
        assert not destroyed, (step, err, rep)
    if not destroyed:
        assert err != "OK" and rep.startswith("refused:"), (err, rep)
        c.assert_not_destroyed()
        assert util.box_tree_sha(c.box.workspace) == c.before
        c.assert_cached(pre_read(c) if step in ("pull",) else all_files(c))
        retry_ok(c, c.want)
    elif err == "OK":
        c.unfill()
        c.assert_archived(c.want)
    else:
        assert rep.startswith("failed:"), rep
        resume_after_remount(c, c.want)


# ---- kill -9 of rgtfs ------------------------------------------------------------

# pull: test_teardown.py::test_kill_9_mid_teardown_sends_no_delete_and_rmdir_works_after
KILL_CELLS = ["roster", "verify", "record", "re-list", "destroy", "destroy-call", "confirm"]


@pytest.mark.deadline(240)
@pytest.mark.parametrize("step", KILL_CELLS)
def test_kill_9(cell, step):
    if step == "destroy-call":
        c = cell("destroy", pause=False)
        # the DELETE acts, then the answer never comes; rgtfs dies waiting
        c.w.api.fail(mode="hang", method="DELETE", apply=True)
        child = util.spawn_op("rmdir", c.w.idir(0))
        try:
            wait_until(lambda: deletes_for(c.w.api, c.iid) or child.poll() is not None, 60,
                       interval=0.02, msg="the DELETE arrives")
            assert child.poll() is None, util.op_result(child, 5)
            c.w.mount.crash()
            err, _ = util.op_result(child, 30)
        finally:
            util.stop_child(child)
    else:
        c = cell(step)
        err = run_cell(c, "kill9", step, BOUND["kill9"])
    assert err != "OK", err
    if step in PRE + ["destroy"]:
        # before the destroy call: nothing sent; after a remount the pulled
        # bytes are in the cache and a deliberate rmdir finishes
        c.assert_not_destroyed()
        assert util.box_tree_sha(c.box.workspace) == c.before
        c.start_mount()
        c.assert_cached(pre_read(c) if step == "roster" else all_files(c))
        retry_ok(c, c.want)
        assert len(deletes_for(c.w.api, c.iid)) == 1
    else:
        assert len(deletes_for(c.w.api, c.iid)) == 1
        resume_after_remount(c, c.want)
