"""The verified teardown: `rmdir MOUNT/vastai/<id>` (SPEC "Teardown", "The cache").

rmdir blocks while rgtfs rosters the box's checkpoint_dir (remote SHA-256),
pulls every byte into the cache, verifies it (digest + load checks), records
PULL_MANIFEST.json / PULL_VERIFIED.json, re-lists, sends exactly one DELETE,
waits until the platform stops listing the instance and moves it to
MOUNT/archive/vastai/<id>/. Any failure before the DELETE refuses: rmdir
fails with a fitting errno, no DELETE is sent, the instance is still listed,
its box is byte-identical, cached data is kept, and the instance's `teardown`
file starts with "refused:" and says why.

"Nothing destroyed" is checked the same way in every refusal test
(assert_nothing_destroyed): no DELETE (nor any other mutating call) in the fake
API's request log, the instance still in the fake's world and not
unloaded/destroying, still listed under MOUNT/vastai/, and a digest of every
byte, name, size and mtime of the box's /workspace equal to the one taken
before the rmdir.
"""

import hashlib
import json
import os
import re
import stat
from datetime import datetime

import pytest

import util
from util import (ok, run, cat, read_text, wait_until, op_errno, ls, box_tree_sha,
                  local_snapshot, snapshot, tree_diff, MIB, BASE_MTIME)
from fake_vast import SECRET_MARK, make_instance
from sshd import SSH_OPTS

DESTROY_TIMEOUT = 8
TD_CFG = dict(extra_vastai={"destroy_timeout": DESTROY_TIMEOUT})
RMDIR_TIMEOUT = 120          # an rmdir of a few MiB; bounded, never a hang
UNREACHABLE = {"EHOSTUNREACH", "EIO", "ETIMEDOUT", "EAGAIN"}
ARCHIVE_FILES = {"status", "status_msg", "info.json", "ssh", "log", "teardown",
                 "PULL_MANIFEST.json", "PULL_VERIFIED.json", "checkpoints"}
NOBODY = (65534, 65534)


# ---- helpers ------------------------------------------------------------------------

def td_world(world, **kw):
    cfg = dict(TD_CFG)
    cfg.update(kw)
    return world(**cfg)


def vastai(w):
    return os.path.join(w.mnt, "vastai")


def archive(w, i=0):
    return os.path.join(w.mnt, "archive", "vastai", str(w.ids[i]))


def deletes_for(api, iid):
    return [r for r in api.deletes()
            if re.fullmatch(r"/api/v0/instances/%d/?" % int(iid), r["path"])]


def teardown_report(w, i=0):
    return read_text(w.f(i, "teardown"))


def rmdir(w, i=0, timeout=RMDIR_TIMEOUT):
    return op_errno("rmdir", w.idir(i), timeout=timeout)


def box_state(w, i=0):
    return box_tree_sha(w.boxes[i].workspace)


def assert_still_listed(w, i=0):
    iid = w.ids[i]
    inst = w.api.get(iid)
    assert inst is not None, "the fake API no longer has instance %d" % iid
    assert inst["cur_state"] != "unloaded", "instance %d is being destroyed" % iid
    assert str(iid) in ls(vastai(w)), "instance %d no longer under MOUNT/vastai" % iid
    assert w.status(i) not in ("gone\n", "destroying\n"), w.status(i)


def assert_nothing_destroyed(w, before_box, i=0):
    """No DELETE nor other mutating call, instance listed, box byte-identical."""
    assert w.api.deletes() == [], "rgtfs sent a DELETE: %r" % w.api.deletes()
    assert w.api.mutations() == [], "rgtfs sent a mutating call: %r" % w.api.mutations()
    assert_still_listed(w, i)
    if before_box is not None:
        assert box_state(w, i) == before_box, "the box's files changed"


def assert_refused(w, err, allowed, before_box, i=0, words=()):
    """The whole refusal contract for instance i."""
    rep = teardown_report(w, i)
    assert err in allowed, "rmdir -> %s, want one of %s; teardown:\n%s" % (
        err, sorted(allowed), rep)
    first = rep.splitlines()[0] if rep else ""
    assert first.startswith("refused:"), "teardown report:\n%r" % rep
    for word in words:
        assert word.lower() in rep.lower(), "%r not in teardown report:\n%s" % (word, rep)
    assert not os.path.basename(w.idir(i)) in _archived(w), "refused but archived"
    assert_nothing_destroyed(w, before_box, i)
    return rep


def _archived(w):
    d = os.path.join(w.mnt, "archive", "vastai")
    r = run(["ls", "-A", "--", d], timeout=30)
    return set(r.text.splitlines()) if r.rc == 0 else set()


def regular_files(snap):
    """{rel: (size, mtime, sha256)} of the regular files of a snapshot."""
    return {k: (v["size"], v["mtime"], v.get("sha256")) for k, v in snap.items()
            if stat.S_ISREG(v["mode"])}


def iso_utc(s):
    assert isinstance(s, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", s), s
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def build_checkpoints(workspace, seed=0):
    """A box /workspace with checkpoints in subdirectories of every known
    format, plus train.log. Whole-second mtimes. Returns the checkpoint dir."""
    ck = os.path.join(workspace, "checkpoints")
    t = BASE_MTIME + seed * 1000
    util.torch_like_zip(os.path.join(ck, "run-a", "model.pt"), 2 * MIB, seed=seed + 1,
                        mtime=t + 1)
    util.safetensors_file(os.path.join(ck, "run-a", "model.safetensors"), 131072,
                          seed=seed + 2, mtime=t + 2)
    util.write_file(os.path.join(ck, "run-a", "metrics.json"),
                    json.dumps({"epoch": 3, "val_loss": 0.25}).encode() + b"\n", t + 3)
    util.write_file(os.path.join(ck, "run-b", "deep", "weights.npy"),
                    util.npy_bytes([i / 7.0 for i in range(5000)]), t + 4)
    util.write_file(os.path.join(ck, "run-b", "optimizer.bin"),
                    util.pattern_bytes(700001, seed + 5), t + 5)
    util.write_file(os.path.join(ck, "blob.bin"), util.pattern_bytes(123457, seed + 6), t + 6)
    log = "".join("step %d loss %.4f\n" % (i, 1.0 / (i + 1)) for i in range(300))
    util.write_file(os.path.join(workspace, "train.log"), log.encode(), t + 7)
    return ck


def torch_world(world, **kw):
    """A world whose box holds build_checkpoints() (nothing else)."""
    w = td_world(world, populate=False, mount=False, **kw)
    build_checkpoints(w.boxes[0].workspace)
    start(w)
    return w


def start(w):
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in ls(vastai(w)), 10, msg="instance listed")
    return w


def proxied_world(world, proxies, rate, size, **kw):
    """One box reached only through a throttled proxy (rate bytes/s), holding
    a `size`-byte checkpoint big/model.bin besides small files."""
    w = td_world(world, populate=False, mount=False, **kw)
    box = w.boxes[0]
    build_checkpoints(box.workspace)
    sha = util.write_big_file(w.box_ck(0, "big", "model.bin"), size, seed=21,
                              mtime=BASE_MTIME + 99)
    px = proxies(box.port, rate=rate)
    w.api.set_endpoints(w.ids[0], direct_port=px.port, proxy_port=px.port)
    start(w)
    ls(w.ck(0))
    assert px.bytes > 0, "rgtfs does not reach the box through the proxy"
    return w, px, sha


def wait_pull(px, n, p, timeout):
    """Wait until n bytes went through the proxy while the rmdir child p runs."""
    wait_until(lambda: px.bytes >= n or p.poll() is not None, timeout, interval=0.02,
               msg="pull under way (%d of %d bytes through the proxy)" % (px.bytes, n))
    if p.poll() is not None:
        err, _ = util.op_result(p, 5)
        pytest.fail("rmdir returned %s before the pull got to %d bytes (%d moved)"
                    % (err, n, px.bytes))


# ---- harness self-checks (no teardown engine needed) ---------------------------------

def test_harness_delete_only_fault(fake_api, user_key):
    """A fault scoped to DELETE leaves list calls alone, and a status fault never
    destroys; a hang never destroys either."""
    fake_api.add(make_instance(31000009, direct_port=40122, proxy_port=40200))
    fake_api.fail(status=500, method="DELETE")

    def call(method, path, timeout=5):
        return run(["curl", "-sS", "-m", str(timeout), "-o", "/dev/null", "-w", "%{http_code}",
                    "-X", method, "-H", "Authorization: Bearer " + fake_api.api_key,
                    fake_api.url + path], timeout=timeout + 5)
    assert call("GET", "/api/v0/instances?owner=me").text == "200"
    assert call("DELETE", "/api/v0/instances/31000009/").text == "500"
    assert call("GET", "/api/v0/instances?owner=me").text == "200"
    assert fake_api.get(31000009)["cur_state"] == "running"
    fake_api.fail(mode="hang", method="DELETE")
    r = call("DELETE", "/api/v0/instances/31000009/", timeout=1)
    assert r.rc == 28                       # curl: timed out
    assert call("GET", "/api/v0/instances?owner=me").text == "200"
    fake_api.clear()
    assert fake_api.get(31000009)["cur_state"] == "running"
    assert len(deletes_for(fake_api, 31000009)) == 2


def test_harness_tmpfs_throttle_appender(tmpfs_factory, tmp_path, box_factory, user_key,
                                         proxies):
    d = tmpfs_factory("4m")
    st = os.statvfs(d)
    assert st.f_blocks * st.f_frsize <= 4 * MIB
    r = run(["dd", "if=/dev/zero", "of=" + os.path.join(d, "x"), "bs=1M", "count=8"], timeout=20)
    assert r.rc != 0 and b"No space left" in r.err
    # a background writer grows a file
    p = str(tmp_path / "grow.bin")
    util.write_file(p, b"x" * 100)
    a = util.start_appender(p)
    wait_until(lambda: os.path.getsize(p) > 100 + 3 * 4096, 5, msg="file grows")
    util.stop_child(a)
    n = os.path.getsize(p)
    assert a.poll() is not None and os.path.getsize(p) == n
    # the throttled proxy carries ssh at about its rate
    b = box_factory(populate=False)
    util.write_big_file(os.path.join(b.workspace, "big"), 4 * MIB)
    px = proxies(b.port, rate=2 * MIB)
    argv = ["ssh", "-p", str(px.port), "-i", user_key] + SSH_OPTS + [
        "root@127.0.0.1", "cat /workspace/big"]
    r = run(argv, timeout=30)
    assert r.rc == 0 and len(r.out) == 4 * MIB
    assert r.elapsed > 1.5, "4 MiB at 2 MiB/s took %.1fs" % r.elapsed


def test_harness_nonowner_and_allow_other(public_dir, world):
    """Another uid reaches an allow_other mount (so its refusal is rgtfs's or the
    kernel's permission check on the mount, not a closed parent directory)."""
    w = td_world(world, extra_args=["-o", "allow_other"], mnt=os.path.join(public_dir, "mnt"))
    r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "ls", w.idir(0)], timeout=30)
    assert r.rc == 0 and "status" in r.text.split(), r
    r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "cat", w.f(0, "status")], timeout=30)
    assert r.rc == 0 and r.text == "running\n", r


# ---- success --------------------------------------------------------------------------

@pytest.mark.deadline(240)
def test_teardown_success_archives_verified_copy_and_destroys_once(world):
    w = torch_world(world)
    iid = w.ids[0]
    box = w.boxes[0]
    box_ck = w.box_ck(0)
    want = regular_files(local_snapshot(box_ck))
    assert len(want) == 6
    box_log = open(os.path.join(box.workspace, "train.log"), "rb").read()

    err = rmdir(w)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text, w.mount.log_tail())

    # exactly one DELETE for this id, and no stop/PUT ever
    assert len(deletes_for(w.api, iid)) == 1, w.api.deletes()
    assert [r["method"] for r in w.api.mutations()] == ["DELETE"]
    assert w.api.get(iid) is None, "the fake still lists the instance"
    # gone from vastai/, present in archive/
    wait_until(lambda: str(iid) not in ls(vastai(w)), 5, msg="instance left MOUNT/vastai")
    a = archive(w)
    names = ls(a)
    assert ARCHIVE_FILES <= names, "archive lacks %s" % (ARCHIVE_FILES - names)
    assert read_text(os.path.join(a, "status")) == "gone\n"
    rep = read_text(os.path.join(a, "teardown"))
    assert "destroyed" in rep and "verified" in rep, rep
    assert not rep.startswith("refused:"), rep
    # checkpoints: every regular file, same relative path, size, mtime, bytes
    got = regular_files(snapshot(os.path.join(a, "checkpoints")))
    assert got == want, "\n".join(tree_diff(
        {k: {"mode": stat.S_IFREG, "size": v[0], "mtime": v[1], "sha256": v[2]}
         for k, v in got.items()},
        {k: {"mode": stat.S_IFREG, "size": v[0], "mtime": v[1], "sha256": v[2]}
         for k, v in want.items()}))
    assert cat(os.path.join(a, "log")) == box_log
    info = cat(os.path.join(a, "info.json"))
    json.loads(info)
    assert SECRET_MARK.encode() not in info and w.api.api_key.encode() not in info
    # the manifest: what the box's own sha256 says, for every file
    man_bytes = cat(os.path.join(a, "PULL_MANIFEST.json"))
    man = json.loads(man_bytes)
    assert man["schema"] == "remote-gpu-trainer/PULL/v1"
    assert isinstance(man["run_id"], str) and man["run_id"]
    iso_utc(man["created_at_utc"])
    assert isinstance(man["top_level_dirs"], list)
    assert all(isinstance(d, str) for d in man["top_level_dirs"])
    mfiles = {}
    for f in man["files"]:
        assert re.fullmatch(r"[0-9a-f]{64}", f["sha256"]), f
        rel = f["path"]
        rel = rel[len("checkpoints/"):] if rel.startswith("checkpoints/") else rel
        assert not rel.startswith("/") and ".." not in rel.split("/"), f
        mfiles[rel.encode()] = (f["bytes"], f["sha256"])
    box_sums = {}
    r = ok("cd %s && find . -type f -print0 | xargs -0 sha256sum" % box_ck)
    for line in r.text.splitlines():
        h, p = line.split(None, 1)
        box_sums[p[2:].encode()] = h
    for rel, (size, _, sha) in want.items():
        assert rel in mfiles, "manifest lacks %r (has %r)" % (rel, sorted(mfiles))
        assert mfiles[rel] == (size, box_sums[rel]), rel
    assert man["totals"]["files"] == len(man["files"])
    assert man["totals"]["bytes"] == sum(f["bytes"] for f in man["files"])
    assert {p.split(b"/")[0].decode() for p in want if b"/" in p} <= set(man["top_level_dirs"]) \
        or set(man["top_level_dirs"]) <= {"checkpoints"}, man["top_level_dirs"]
    ver = json.loads(cat(os.path.join(a, "PULL_VERIFIED.json")))
    assert ver["schema"] == "remote-gpu-trainer/PULL-VERIFIED/v1"
    assert ver["run_id"] == man["run_id"]
    assert ver["manifest_sha256"] == hashlib.sha256(man_bytes).hexdigest()
    iso_utc(ver["verified_at_utc"])
    assert ver["files"] == man["totals"]["files"] and ver["bytes"] == man["totals"]["bytes"]

    # the archive survives a remount with no network at all
    before = snapshot(a)
    assert w.mount.unmount() == 0
    box.stop()
    w.api.stop()
    w.mount.start()
    wait_until(lambda: str(iid) in _archived(w), 10, msg="archive listed after remount")
    after = snapshot(a)
    assert {k: (v["size"], v.get("sha256")) for k, v in after.items()} == \
        {k: (v["size"], v.get("sha256")) for k, v in before.items()}
    assert regular_files(snapshot(os.path.join(a, "checkpoints"))) == want
    assert read_text(os.path.join(a, "status")) == "gone\n"


@pytest.mark.deadline(240)
def test_rmdir_of_an_archive_deletes_it(world):
    w = torch_world(world)
    iid = w.ids[0]
    assert rmdir(w) == "OK", teardown_report(w)
    wait_until(lambda: str(iid) in _archived(w), 5, msg="archived")
    assert op_errno("rmdir", archive(w)) == "OK"
    wait_until(lambda: str(iid) not in _archived(w), 5, msg="archive removed")
    assert op_errno("stat", archive(w)) == "ENOENT"
    assert len(deletes_for(w.api, iid)) == 1
    assert w.mount.unmount() == 0
    w.mount.start()
    wait_until(lambda: ls(w.mnt) >= {"vastai", "archive"}, 10, msg="remounted")
    assert str(iid) not in _archived(w)
    assert str(iid) not in ls(vastai(w))
    assert op_errno("stat", archive(w)) == "ENOENT"


@pytest.mark.faults
@pytest.mark.deadline(180)
def test_gone_instance_is_archived_without_delete(world):
    w = td_world(world)
    iid = w.ids[0]
    read = [("run-001", "best.pth"), ("run-001", "model.safetensors"),
            ("run-001", "best_metrics.json")]
    snapshot(w.ck(0), hashing=False)                 # the listing is known
    data = {rel: cat(w.ck(0, *rel)) for rel in read}
    w.api.remove(iid)
    wait_until(lambda: w.status() == "gone\n", 10, interval=0.2, msg="status gone")
    w.boxes[0].stop()
    err = rmdir(w)
    assert err == "OK", "rmdir of a gone instance -> %s; teardown:\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text)
    assert w.api.deletes() == [] and w.api.mutations() == []
    wait_until(lambda: str(iid) not in ls(vastai(w)), 5, msg="left MOUNT/vastai")
    a = archive(w)
    assert str(iid) in _archived(w)
    for rel, b in data.items():
        assert cat(os.path.join(a, "checkpoints", *rel)) == b, rel
    rep = read_text(os.path.join(a, "teardown"))
    assert "not verified" in rep, rep
    assert read_text(os.path.join(a, "status")) == "gone\n"


# ---- refusals before the destroy -------------------------------------------------------

@pytest.mark.faults
@pytest.mark.parametrize("how", ["sshd_stopped", "status_stopped"])
def test_unreachable_or_stopped_box_refuses(world, how):
    w = td_world(world)
    cached = cat(w.ck(0, "run-001", "best.pth"))
    if how == "sshd_stopped":
        w.boxes[0].stop()
    else:
        # the platform says stopped; the box's sshd is left up on purpose:
        # the status alone refuses (ambiguity noted in the report)
        w.api.set_state(w.ids[0], "stopped")
        wait_until(lambda: w.status() == "stopped\n", 10, interval=0.2, msg="status stopped")
    before = box_state(w)
    err = rmdir(w)
    assert_refused(w, err, UNREACHABLE, before)
    # cached data kept (read with the box still down in the sshd_stopped case)
    assert cat(w.ck(0, "run-001", "best.pth")) == cached


@pytest.mark.faults
def test_crc_error_in_pt_entry_refuses_with_eio(world):
    w = td_world(world, mount=False)
    p = w.box_ck(0, "run-001", "corrupt.pt")
    util.torch_like_zip(p, 512 * 1024, seed=77, mtime=BASE_MTIME + 5)
    util.flip_byte_in_zip_entry(p, "archive/data/1")
    start(w)
    before = box_state(w)
    want = local_snapshot(w.box_ck(0))
    err = rmdir(w)
    assert_refused(w, err, {"EIO"}, before, words=("corrupt.pt", "CRC"))
    # the pulled bytes were kept: every file reads back with the box gone
    w.boxes[0].kill()
    got = snapshot(w.ck(0))
    assert regular_files(got) == regular_files(want)


@pytest.mark.faults
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_special_file_in_checkpoint_dir_refuses_with_einval(world, kind):
    w = td_world(world, mount=False)
    name = "latest.pth" if kind == "symlink" else "progress.fifo"
    p = w.box_ck(0, "run-001", name)
    if kind == "symlink":
        os.symlink("best.pth", p)
    else:
        os.mkfifo(p)
    start(w)
    before = box_state(w)
    err = rmdir(w)
    assert_refused(w, err, {"EINVAL"}, before, words=(name,))


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_file_still_growing_refuses_with_ebusy(world):
    w = td_world(world, mount=False)
    grow = w.box_ck(0, "run-001", "growing.pt")
    util.write_big_file(grow, 64 * MIB, seed=31)
    start(w)
    a = util.start_appender(grow, interval=0.05)
    try:
        rel = os.path.relpath(grow, w.boxes[0].workspace).encode()
        snap0 = local_snapshot(w.boxes[0].workspace)
        err = rmdir(w, timeout=180)
    finally:
        util.stop_child(a)
    rep = teardown_report(w)
    assert err == "EBUSY", "rmdir -> %s; teardown:\n%s" % (err, rep)
    assert rep.startswith("refused:"), rep
    assert "chang" in rep.lower() and "growing.pt" in rep, rep
    assert w.api.deletes() == [] and w.api.mutations() == []
    assert_still_listed(w)
    # every other file on the box is untouched; the growing one only grew
    snap1 = local_snapshot(w.boxes[0].workspace)
    g0, g1 = snap0.pop(rel), snap1.pop(rel)
    assert snap1 == snap0
    assert g1["size"] >= g0["size"]


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_sshd_killed_mid_pull_refuses_then_resumes(world, proxies):
    size = 64 * MIB
    # a small read-ahead window: what is lost with the connection stays small,
    # so the share of the first pull that must be reused is clear
    w, px, sha = proxied_world(world, proxies, rate=16 * MIB, size=size,
                               extra_rgtfs={"readahead": 4})
    iid = w.ids[0]
    before = box_state(w)
    # While rmdir runs the kernel holds the instance directory's lock, so only
    # a name already in the dentry cache is found at once: look `teardown` up
    # first (it is empty before any teardown).
    assert teardown_report(w) == ""
    base = px.bytes
    p = util.spawn_op("rmdir", w.idir(0))
    wait_pull(px, base + 24 * MIB, p, 60)
    r = run(["cat", w.f(0, "teardown")], timeout=5)
    assert r.rc == 0, "teardown not readable during the teardown: %r" % (r,)
    rep = r.text
    assert rep.strip() and not rep.startswith("refused:"), "no progress shown: %r" % rep
    assert p.poll() is None, "rmdir already returned"
    moved = px.bytes - base
    w.boxes[0].kill()                       # sshd and every session, mid-pull
    err, secs = util.op_result(p, 90)
    assert_refused(w, err, {"EIO", "EHOSTUNREACH"}, None)
    # box back, same files: rmdir again resumes and succeeds
    w.boxes[0].start()
    assert box_state(w) == before
    assert_nothing_destroyed(w, before)
    # once rgtfs reaches the box again: a line the job logs after the restart
    # shows in `log` (only the box has it)
    with open(os.path.join(w.boxes[0].workspace, "train.log"), "ab") as f:
        f.write(b"box back\n")
    wait_until(lambda: run(["cat", w.f(0, "log")], timeout=30).out.endswith(b"box back\n"),
               30, interval=0.5, msg="rgtfs reads the log from the restarted box")
    base2 = px.bytes
    err = rmdir(w, timeout=180)
    assert err == "OK", "second rmdir -> %s; teardown:\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text)
    second = px.bytes - base2
    total = sum(v[0] for v in regular_files(local_snapshot(w.box_ck(0))).values())
    assert second < total - 8 * MIB, (
        "the second pull moved %d bytes of %d in all; the first had moved %d before the "
        "kill: cached blocks were not reused" % (second, total, moved))
    assert len(deletes_for(w.api, iid)) == 1
    a = archive(w)
    wait_until(lambda: str(iid) in _archived(w), 5, msg="archived")
    assert util.sha256sum(os.path.join(a, "checkpoints", "big", "model.bin")) == sha


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_kill_9_mid_teardown_sends_no_delete_and_rmdir_works_after(world, proxies,
                                                                   store_tool):
    size = 64 * MIB
    w, px, sha = proxied_world(world, proxies, rate=16 * MIB, size=size)
    iid = w.ids[0]
    before = box_state(w)
    base = px.bytes
    p = util.spawn_op("rmdir", w.idir(0))
    wait_pull(px, base + 24 * MIB, p, 60)
    w.mount.crash()
    err, _ = util.op_result(p, 30)
    assert err != "OK", err
    assert w.api.deletes() == [] and w.api.mutations() == []
    assert w.api.get(iid) is not None and w.api.get(iid)["cur_state"] != "unloaded"
    assert box_state(w) == before
    r = run([store_tool, "-c", w.mount.cache, "stat"], timeout=30)
    assert r.rc == 0, "the cache does not open after kill -9: %r" % (r,)
    w.mount.start()
    wait_until(lambda: str(iid) in ls(vastai(w)), 10, msg="listed after restart")
    assert_nothing_destroyed(w, before)
    err = rmdir(w, timeout=180)
    assert err == "OK", "rmdir after restart -> %s; teardown:\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text)
    assert len(deletes_for(w.api, iid)) == 1
    wait_until(lambda: str(iid) in _archived(w), 5, msg="archived")
    assert util.sha256sum(os.path.join(archive(w), "checkpoints", "big", "model.bin")) == sha


@pytest.mark.faults
@pytest.mark.deadline(200)
def test_cache_too_small_refuses_with_enospc(tmpfs_factory, world):
    cache = tmpfs_factory("24m", name="smallcache")
    w = td_world(world, populate=False, mount=False, cache=cache)
    util.write_big_file(w.box_ck(0, "run-001", "huge.bin"), 48 * MIB, seed=41,
                        mtime=BASE_MTIME + 1)
    util.write_file(os.path.join(w.boxes[0].workspace, "train.log"), b"step 1\n", BASE_MTIME)
    start(w)
    before = box_state(w)
    err = rmdir(w, timeout=180)
    assert_refused(w, err, {"ENOSPC"}, before)
    # the mount still works
    assert w.status() == "running\n"


@pytest.mark.faults
def test_rm_rf_of_an_instance_refuses_and_destroys_nothing(world):
    w = td_world(world)
    before = box_state(w)
    r = run(["rm", "-rf", w.idir(0)], timeout=120)
    assert r.rc != 0, "rm -rf of an instance directory succeeded"
    assert_nothing_destroyed(w, before)
    # GNU rm does not even ask for a directory whose entries it could not
    # remove; if it did, the refusal says why
    rep = teardown_report(w)
    assert rep == "" or (rep.startswith("refused:") and "rm -r" in rep), rep
    # rm's own rmdir was refused; a deliberate rmdir from another process,
    # however soon after, is the request it looks like (rmguard.h)
    err = rmdir(w)
    assert err == "OK", teardown_report(w)
    assert len(w.api.deletes()) == 1


@pytest.mark.faults
def test_rmdir_by_a_non_owner_refuses(public_dir, world):
    w = td_world(world, extra_args=["-o", "allow_other"], mnt=os.path.join(public_dir, "mnt"))
    before = box_state(w)
    r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "ls", w.idir(0)], timeout=30)
    assert r.rc == 0, "nobody cannot reach the instance dir: %r" % (r,)
    err = util.op_errno_as(NOBODY, "rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    assert err in ("EACCES", "EPERM"), err
    r = run(["runuser", "-u", "nobody", "--", "rmdir", w.idir(0)], timeout=RMDIR_TIMEOUT)
    assert r.rc != 0, r
    assert_nothing_destroyed(w, before)
    rep = teardown_report(w)
    assert rep == "" or rep.startswith("refused:"), rep


# ---- the destroy itself fails ----------------------------------------------------------

@pytest.mark.faults
@pytest.mark.deadline(240)
def test_delete_answering_500_fails_and_instance_lives(world):
    w = torch_world(world)
    iid = w.ids[0]
    before = box_state(w)
    w.api.fail(status=500, method="DELETE")
    err = rmdir(w)
    rep = teardown_report(w)
    assert err == "EIO", "rmdir -> %s; teardown:\n%s" % (err, rep)
    assert re.search(r"(?i)destroy", rep) and re.search(r"(?i)fail", rep), rep
    dels = deletes_for(w.api, iid)
    assert len(dels) >= 1 and all(d["status"] == 500 for d in dels), dels
    assert all(r["method"] == "DELETE" for r in w.api.mutations())
    assert_still_listed(w)
    assert box_state(w) == before
    # the platform works again: rmdir succeeds
    w.api.clear()
    n = len(dels)
    err = rmdir(w)
    assert err == "OK", "retry -> %s; teardown:\n%s" % (err, run(["cat", w.f(0, "teardown")]).text)
    assert len(deletes_for(w.api, iid)) == n + 1
    wait_until(lambda: str(iid) in _archived(w), 5, msg="archived")


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_delete_timing_out_fails_and_instance_lives(world):
    w = torch_world(world)           # api_timeout = 2
    iid = w.ids[0]
    before = box_state(w)
    w.api.fail(mode="hang", method="DELETE")
    try:
        err, secs = util.op_timed("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    finally:
        w.api.clear()
    rep = teardown_report(w)
    assert err in ("ETIMEDOUT", "EIO"), "rmdir -> %s; teardown:\n%s" % (err, rep)
    assert secs < 90, "rmdir took %.0fs" % secs
    assert re.search(r"(?i)destroy", rep), rep
    assert len(deletes_for(w.api, iid)) >= 1
    assert all(r["method"] == "DELETE" for r in w.api.mutations())
    assert_still_listed(w)            # the hang never reached the fake's destroy
    assert box_state(w) == before


@pytest.mark.deadline(240)
def test_a_file_rewritten_with_the_same_size_and_mtime_is_pulled_again(world):
    """SFTP v3 knows a file only by size and whole-second mtime. A checkpoint
    read (and cached) earlier, then rewritten with other bytes of the same
    size and the same mtime, must not be archived from the stale cache: the
    digest from the box exposes it and the teardown pulls it again."""
    w = torch_world(world)
    box_ck = w.box_ck(0)
    rel = os.path.join("run-b", "optimizer.bin")
    path = os.path.join(box_ck, rel)
    st = os.stat(path)
    mnt_file = os.path.join(w.ck(0), rel)
    old = util.sha256sum(mnt_file)                  # now in the cache
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF                     # other bytes, same size...
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # ...same mtime
    new = hashlib.sha256(bytes(data)).hexdigest()
    assert new != old
    err = rmdir(w)
    assert err == "OK", "rmdir -> %s; teardown:\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text)
    a = archive(w)
    assert util.sha256sum(os.path.join(a, "checkpoints", rel)) == new
    assert "stale" in read_text(os.path.join(a, "teardown"))


@pytest.mark.deadline(240)
def test_destroy_confirmed_late_still_archives_as_verified(world):
    """The platform accepts the DELETE but keeps listing the instance past
    destroy_timeout: rmdir fails (the destroy was not confirmed) without a
    second DELETE. When the platform finally drops it, the instance is gone,
    and rmdir archives it from the journal written before the destroy call:
    as verified, byte-identical, with the manifests, and no new DELETE."""
    w = torch_world(world)
    iid = w.ids[0]
    want = regular_files(local_snapshot(w.box_ck(0)))
    w.api.linger = 10 ** 6               # listed as "destroying" for ever
    err = rmdir(w)
    assert err in ("ETIMEDOUT", "EIO"), err
    rep = read_text(w.f(0, "teardown"))
    assert "still lists" in rep, rep
    assert len(deletes_for(w.api, iid)) == 1
    w.api.remove(iid)                    # the platform catches up
    wait_until(lambda: read_text(w.f(0, "status")) == "gone\n", 15,
               msg="instance shows gone")
    w.boxes[0].kill()                    # its disk is gone with it
    err = rmdir(w)
    assert err == "OK", run(["cat", w.f(0, "teardown")]).text
    assert len(deletes_for(w.api, iid)) == 1, "a second DELETE was sent"
    a = archive(w)
    got = regular_files(snapshot(os.path.join(a, "checkpoints")))
    assert got == want
    report = read_text(os.path.join(a, "teardown"))
    assert "verified" in report and "not verified" not in report, report
    assert os.path.exists(os.path.join(a, "PULL_MANIFEST.json"))
