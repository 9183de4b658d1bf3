"""Teardown safety (issue: the Iron Law for real checkpoints).

Each test is one way a teardown could destroy a box whose copy rgtfs then
cannot serve, or lose the only copy after the destroy, driven from outside
the mount with the programs users use. The invariant every test checks in
its own terms: if a destroy was sent, archive/ serves every file of the
box byte-identical; if not, the box is untouched and nothing cached is lost.
"""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time

import pytest

import util
from util import (MIB, BASE_MTIME, cat, ls, local_snapshot, op_errno, read_text, run,
                  snapshot, wait_until)
from test_teardown import (RMDIR_TIMEOUT, _archived, archive, assert_nothing_destroyed,
                           assert_refused, box_state, deletes_for, proxied_world,
                           regular_files, rmdir, start, td_world, teardown_report, vastai,
                           wait_pull)


def archive_files(w, i=0):
    """{rel bytes: (size, sha256)} of the archive's checkpoints, read through the mount."""
    snap = snapshot(os.path.join(archive(w, i), "checkpoints"))
    return {k: (v["size"], v.get("sha256")) for k, v in snap.items()
            if stat.S_ISREG(v["mode"])}


def box_files(w, i=0):
    return {k: (v["size"], v.get("sha256")) for k, v in local_snapshot(w.box_ck(i)).items()
            if stat.S_ISREG(v["mode"])}


def remount_offline(w):
    """Unmount, take the box and the API away, mount again: only the cache is left."""
    assert w.mount.unmount() == 0
    for b in w.boxes:
        b.kill()
    w.api.stop()
    w.mount.start()


# ---- 1. the file id is computed one way: any spelling of checkpoint_dir ----------------

@pytest.mark.deadline(240)
@pytest.mark.parametrize("ckdir", ["/workspace/checkpoints/", "/workspace//checkpoints//",
                                   "/workspace/./checkpoints"])
def test_odd_checkpoint_dir_spelling_archive_serves_every_byte(world, ckdir):
    w = td_world(world, checkpoint_dir=ckdir)
    want = box_files(w)
    assert rmdir(w) == "OK", teardown_report(w)
    assert len(deletes_for(w.api, w.ids[0])) == 1
    assert archive_files(w) == want
    remount_offline(w)
    wait_until(lambda: str(w.ids[0]) in _archived(w), 10, msg="archive listed")
    assert archive_files(w) == want


# ---- 2. names that are not UTF-8 ---------------------------------------------------------

@pytest.mark.deadline(240)
def test_name_not_utf8_is_in_manifest_and_archive(world):
    w = td_world(world, mount=False)
    odd = os.path.join(os.fsencode(w.box_ck(0, "run-001")), b"w\xff\xfeights.bin")
    util.write_file(odd, util.pattern_bytes(200000, 5), BASE_MTIME + 3)
    start(w)
    want = box_files(w)
    assert any(b"\xff" in k for k in want)
    err = rmdir(w)
    assert err == "OK", teardown_report(w)
    man = json.loads(cat(os.path.join(archive(w), "PULL_MANIFEST.json")))
    assert man["totals"]["files"] == len(man["files"]) == len(want)
    names = set()
    for f in man["files"]:
        if "path_hex" in f:
            names.add(bytes.fromhex(f["path_hex"]))
            assert "\\xff\\xfe" in f["path"], f
        else:
            names.add(f["path"].encode())
    assert names == set(want), (names, set(want))
    assert archive_files(w) == want
    remount_offline(w)
    wait_until(lambda: str(w.ids[0]) in _archived(w), 10, msg="archive listed")
    assert archive_files(w) == want


# ---- 3, 7. a destroy accepted but not confirmed, or with an unknown outcome -------------

def two_box_world(world, files=3):
    """Box 0 (to tear down) and box 1 (other data), cache_size below either."""
    w = td_world(world, n=2, populate=False, mount=False)
    shas = {}
    for i in range(files):
        shas[i] = util.write_big_file(w.box_ck(0, "p%d.bin" % i), 6 * MIB, seed=60 + i,
                                      mtime=BASE_MTIME + i)
        util.write_big_file(w.box_ck(1, "o%d.bin" % i), 6 * MIB, seed=70 + i,
                            mtime=BASE_MTIME + i)
    w.mount.extra_args = list(w.mount.extra_args) + ["-o", "cache_size=%d" % (8 * MIB)]
    w.mount.start()
    for iid in w.ids:
        wait_until(lambda: str(iid) in ls(vastai(w)), 10, msg="listed")
    return w, shas


def read_other_box(w):
    """18 MiB of box 1 through an 8 MiB cache_size: eviction must run."""
    for i in range(3):
        util.sha256sum(w.ck(1, "o%d.bin" % i))


def archive_after_gone(w, shas, want_verified=True):
    iid = w.ids[0]
    w.api.remove(iid)
    wait_until(lambda: w.status(0) == "gone\n", 15, msg="gone")
    w.boxes[0].kill()
    err = rmdir(w)
    assert err == "OK", teardown_report(w)
    a = archive(w)
    for i, sha in shas.items():
        assert util.sha256sum(os.path.join(a, "checkpoints", "p%d.bin" % i)) == sha
    rep = read_text(os.path.join(a, "teardown"))
    if want_verified:
        assert "verified" in rep and "not verified" not in rep, rep


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_unconfirmed_destroy_keeps_the_copy_pinned_under_cache_pressure(world):
    w, shas = two_box_world(world)
    w.api.linger = 10 ** 6                      # accepted, listed as destroying for ever
    err = rmdir(w)
    assert err in ("ETIMEDOUT", "EIO"), err
    assert teardown_report(w).startswith("failed:")
    assert len(deletes_for(w.api, w.ids[0])) == 1
    read_other_box(w)
    archive_after_gone(w, shas)
    assert len(deletes_for(w.api, w.ids[0])) == 1


@pytest.mark.faults
@pytest.mark.deadline(300)
@pytest.mark.parametrize("fault", ["500", "200-no-success", "hang"])
def test_destroy_with_unknown_outcome_says_so_and_keeps_the_copy(world, fault):
    w, shas = two_box_world(world)
    iid = w.ids[0]
    if fault == "500":
        w.api.fail(status=500, method="DELETE")
    elif fault == "hang":
        w.api.fail(mode="hang", method="DELETE")
    else:
        w.api.fail(mode="body", status=200, body=b"{}", method="DELETE")
    try:
        err = rmdir(w)
    finally:
        w.api.clear()
    rep = teardown_report(w)
    assert err in ("EIO", "ETIMEDOUT"), (err, rep)
    first = rep.splitlines()[0]
    assert first.startswith("failed:") and "unknown" in first, rep
    assert "nothing was destroyed" not in rep, rep
    assert len(deletes_for(w.api, iid)) == 1, "a destroy was retried blindly"
    # the platform did destroy it after all; the copy survived the pressure
    read_other_box(w)
    archive_after_gone(w, shas)
    assert len(deletes_for(w.api, iid)) == 1


# ---- 4. a list that says nothing is not "everything is gone" -----------------------------

@pytest.mark.faults
@pytest.mark.deadline(120)
@pytest.mark.parametrize("body,word", [
    (b'{"instances": null}', "null"),
    (b'{"instances": [{"id": -1}, "x", 3]}', "none of the"),
])
def test_null_or_unreadable_list_keeps_instances(world, body, word):
    w = td_world(world)
    snapshot(w.ck(0), hashing=False)         # cached data: it could show `gone`
    w.api.fail(mode="body", status=200, body=body, method="GET", path="/api/v0/instances")
    try:
        wait_until(lambda: word in read_text(os.path.join(vastai(w), ".error")), 10,
                   msg=".error names the bad list")
        n = w.api.list_calls()
        wait_until(lambda: w.api.list_calls() >= n + 3, 15, msg="three more polls")
        assert w.status() in ("running\n", "unknown\n"), w.status()
        assert str(w.ids[0]) in ls(vastai(w))
    finally:
        w.api.clear()
    wait_until(lambda: read_text(os.path.join(vastai(w), ".error")) == "", 10,
               msg=".error clears")
    assert w.status() == "running\n"


@pytest.mark.faults
@pytest.mark.deadline(120)
def test_partly_unreadable_list_never_marks_the_missing_gone(world):
    w = td_world(world)
    snapshot(w.ck(0), hashing=False)
    other = {"id": 424242, "actual_status": "running", "intended_status": "running",
             "cur_state": "running"}
    body = json.dumps({"instances": [other, {"id": "not an id!"}]}).encode()
    w.api.fail(mode="body", status=200, body=body, method="GET", path="/api/v0/instances")
    try:
        n = w.api.list_calls()
        wait_until(lambda: w.api.list_calls() >= n + 3, 15, msg="three polls")
        assert w.status() != "gone\n"
        assert str(w.ids[0]) in ls(vastai(w))
    finally:
        w.api.clear()
    wait_until(lambda: w.status() == "running\n", 10, msg="running again")
    assert w.api.deletes() == []


@pytest.mark.faults
@pytest.mark.deadline(120)
def test_gone_instance_is_archived_only_when_the_platform_confirms(world):
    w = td_world(world)
    iid = w.ids[0]
    want = {k: v for k, v in box_files(w).items()}
    snapshot(w.ck(0), hashing=True)          # everything cached
    w.api.remove(iid)
    wait_until(lambda: w.status() == "gone\n", 10, msg="gone")
    w.api.fail(status=500, method="GET")     # the API cannot be asked now
    try:
        err = rmdir(w)
        rep = teardown_report(w)
        assert err == "EAGAIN", (err, rep)
        assert rep.startswith("refused:") and "cannot confirm" in rep, rep
        assert str(iid) not in _archived(w)
        assert w.status() == "gone\n"
    finally:
        w.api.clear()
    assert rmdir(w) == "OK", teardown_report(w)
    assert archive_files(w) == want
    assert w.api.deletes() == []


# ---- 5, 10. recursive deletes, told apart from rmdir by process --------------------------

@pytest.mark.faults
@pytest.mark.deadline(240)
def test_recursive_delete_of_archive_keeps_every_archive(world):
    w = td_world(world)
    want = box_files(w)
    assert rmdir(w) == "OK", teardown_report(w)
    top = os.path.join(w.mnt, "archive")
    r = run(["find", top, "-delete"], timeout=60)
    assert r.rc != 0
    r = run([util.PY, "-c", "import shutil,sys; shutil.rmtree(sys.argv[1], "
             "ignore_errors=True)", top], timeout=60)
    assert r.rc == 0, r
    r = run(["rm", "-rf", os.path.join(top, "vastai")], timeout=60)
    assert r.rc != 0
    assert str(w.ids[0]) in _archived(w)
    assert archive_files(w) == want
    # an archive may be the only copy: right after delete attempts inside
    # it, even another process's rmdir is refused (find -exec rmdir runs
    # one process per directory)
    # (find's status does not reflect -exec's; the archive's presence does)
    run(["find", top, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"], timeout=60)
    assert op_errno("rmdir", archive(w)) == "ENOTEMPTY"
    assert str(w.ids[0]) in _archived(w)
    assert archive_files(w) == want


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_rmtree_refused_but_a_deliberate_rmdir_right_after_works(world):
    w = td_world(world)
    before = box_state(w)
    r = run([util.PY, "-c", "import shutil,sys; shutil.rmtree(sys.argv[1], "
             "ignore_errors=True)", w.idir(0)], timeout=120)
    assert r.rc == 0, r
    r = run(["find", w.idir(0), "-delete"], timeout=120)
    assert r.rc != 0
    assert_nothing_destroyed(w, before)
    rep = teardown_report(w)
    assert rep.startswith("refused:") and "rm -r" in rep, rep
    # at once, from another process: the teardown runs
    want = box_files(w)
    err = rmdir(w)
    assert err == "OK", teardown_report(w)
    assert archive_files(w) == want


# ---- 6. a hash that takes longer than io_timeout -----------------------------------------

@pytest.mark.deadline(240)
def test_slow_remote_hash_is_waited_for(world, tmp_path):
    slow = tmp_path / "slowbin"
    slow.mkdir()
    script = slow / "sha256sum"
    # 8 s of silence per file, io_timeout is 3 s
    script.write_text("#!/bin/sh\nsleep 8\nexec /usr/bin/sha256sum \"$@\"\n")
    script.chmod(0o755)
    w = td_world(world, populate=False, mount=False, io_timeout=3)
    util.write_big_file(w.box_ck(0, "big.bin"), 4 * MIB, seed=9, mtime=BASE_MTIME)
    box = w.boxes[0]
    box.setenv["PATH"] = "%s:/usr/bin:/bin" % slow
    box.write_config()
    box.stop()
    box.start()
    start(w)
    want = box_files(w)
    t0 = time.monotonic()
    err = rmdir(w, timeout=120)
    assert err == "OK", teardown_report(w)
    assert time.monotonic() - t0 >= 8, "the slow sha256sum was not used"
    assert archive_files(w) == want


def _box_with_fake_hash(world, tmp_path, script, size=24 * MIB, **kw):
    """A box holding one big file whose sha256sum is `script` (sh)."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "sha256sum").write_text("#!/bin/sh\n" + script)
    (fake / "sha256sum").chmod(0o755)
    w = td_world(world, populate=False, mount=False, **kw)
    sha = util.write_big_file(w.box_ck(0, "big.bin"), size, seed=9, mtime=BASE_MTIME)
    box = w.boxes[0]
    box.setenv["PATH"] = "%s:/usr/bin:/bin" % fake
    box.write_config()
    box.stop()
    box.start()
    return w, sha


@pytest.mark.deadline(180)
def test_box_hashes_while_the_pull_runs(world, proxies, tmp_path):
    # 6 s of hashing on the box and about 6 s of pull through a throttled
    # proxy: one after the other would take 12 s or more.
    w, sha = _box_with_fake_hash(world, tmp_path,
                                 "sleep 6\nexec /usr/bin/sha256sum \"$@\"\n")
    px = proxies(w.boxes[0].port, rate=4 * MIB)
    w.api.set_endpoints(w.ids[0], direct_port=px.port, proxy_port=px.port)
    start(w)
    want = box_files(w)
    t0 = time.monotonic()
    err = rmdir(w, timeout=120)
    took = time.monotonic() - t0
    assert err == "OK", teardown_report(w)
    assert took >= 6, "the slow sha256sum was not used (%.1f s)" % took
    assert px.bytes >= 24 * MIB, "the pull did not go through the proxy"
    assert took < 11, "hash and pull ran one after the other (%.1f s)" % took
    assert archive_files(w) == want
    assert len(deletes_for(w.api, w.ids[0])) == 1


@pytest.mark.faults
@pytest.mark.parametrize("how,sessions", [("lies", 8), ("fails", 8), ("lies", 1),
                                          ("fails", 1)])
def test_box_hash_that_lies_or_fails_during_the_pull_refuses(world, tmp_path, how,
                                                             sessions):
    # The digest comes from the box while the pull runs (with one session:
    # before it); a wrong one, or a hash that fails, refuses with its own
    # reason.
    script = {"lies": "echo %s  \"$1\"\n" % ("0" * 64),
              "fails": "echo 'sha256sum: read error' >&2\nexit 1\n"}[how]
    w, sha = _box_with_fake_hash(world, tmp_path, script, size=8 * MIB,
                                 extra_rgtfs={"sessions": sessions})
    start(w)
    before = box_state(w)
    err = rmdir(w)
    words = ("big.bin", "differs") if how == "lies" else ("big.bin", "exit 1")
    assert_refused(w, err, {"EIO"}, before, words=words)
    assert w.api.deletes() == []


@pytest.mark.faults
@pytest.mark.deadline(180)
def test_a_failed_box_hash_stops_the_pull(world, proxies, tmp_path):
    # 64 MiB through 4 MiB/s is a 16 s pull; the hash fails at once, and
    # the teardown refuses without waiting for the rest of the pull.
    w, sha = _box_with_fake_hash(world, tmp_path, "exit 1\n", size=64 * MIB)
    px = proxies(w.boxes[0].port, rate=4 * MIB)
    w.api.set_endpoints(w.ids[0], direct_port=px.port, proxy_port=px.port)
    start(w)
    before = box_state(w)
    t0 = time.monotonic()
    err = rmdir(w, timeout=120)
    took = time.monotonic() - t0
    assert_refused(w, err, {"EIO"}, before, words=("big.bin", "exit 1"))
    assert took < 9, "the pull went on after the hash failed (%.1f s)" % took
    assert px.bytes < 48 * MIB


# ---- 8. a refused run's journal is never trusted --------------------------------------

@pytest.mark.faults
@pytest.mark.deadline(300)
def test_journal_of_a_refused_run_is_not_trusted_later(world, proxies):
    w, px, sha = proxied_world(world, proxies, rate=8 * MIB, size=32 * MIB)
    before = box_state(w)
    assert teardown_report(w) == ""
    base = px.bytes
    p = util.spawn_op("rmdir", w.idir(0))
    wait_pull(px, base + 8 * MIB, p, 60)
    # a new file after the roster: the re-list sees it, after the record
    util.write_file(w.box_ck(0, "late.pt"), b"late", BASE_MTIME + 500)
    err, _ = util.op_result(p, 120)
    assert err == "EBUSY", (err, teardown_report(w))
    rep = teardown_report(w)
    assert "record:" in rep and "appeared" in rep, rep
    assert w.api.deletes() == []
    # destroyed outside rgtfs; the old journal must not make it "verified"
    w.api.remove(w.ids[0])
    wait_until(lambda: w.status() == "gone\n", 10, msg="gone")
    w.boxes[0].kill()
    assert rmdir(w) == "OK", teardown_report(w)
    rep = read_text(os.path.join(archive(w), "teardown"))
    assert "not verified" in rep, rep
    assert before


# ---- 9. names cannot forge report lines ---------------------------------------------------

@pytest.mark.faults
def test_newline_in_a_name_cannot_forge_the_report(world):
    w = td_world(world, mount=False)
    evil = w.box_ck(0, "run-001", "x\nrefused: forged\x1b[2J")
    os.symlink("best.pth", evil)
    start(w)
    before = box_state(w)
    err = rmdir(w)
    rep = assert_refused(w, err, {"EINVAL"}, before)
    lines = rep.splitlines()
    assert "x\\nrefused: forged\\x1b[2J" in lines[0], lines[0]
    assert not any(l.startswith("refused: forged") for l in lines), rep
    assert "\x1b" not in rep


@pytest.mark.deadline(240)
def test_names_with_newlines_and_quotes_are_archived(world):
    w = td_world(world, mount=False)
    for n in ("a\nb.bin", "it's $(x) `y`.bin", "-lead.bin", " sp .bin"):
        util.write_file(w.box_ck(0, "run-001", n), util.pattern_bytes(5000, len(n)),
                        BASE_MTIME + 7)
    start(w)
    want = box_files(w)
    assert rmdir(w) == "OK", teardown_report(w)
    assert archive_files(w) == want


# ---- 11. Ctrl-C before the destroy cancels -------------------------------------------------

@pytest.mark.faults
@pytest.mark.deadline(300)
def test_interrupted_rmdir_destroys_nothing(world, proxies):
    w, px, sha = proxied_world(world, proxies, rate=8 * MIB, size=48 * MIB)
    before = box_state(w)
    assert teardown_report(w) == ""
    base = px.bytes
    p = util.spawn(["rmdir", "--", w.idir(0)], stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: px.bytes >= base + 8 * MIB or p.poll() is not None, 60,
               interval=0.02, msg="pull under way")
    assert p.poll() is None, p.communicate()
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=20)
    finally:
        util.stop_child(p)
    assert time.monotonic() - t0 < 15, "Ctrl-C took %.1fs" % (time.monotonic() - t0)
    wait_until(lambda: teardown_report(w).startswith("refused:"), 10, msg="report")
    rep = teardown_report(w)
    assert "interrupted" in rep, rep
    assert_nothing_destroyed(w, before)
    # later, a deliberate rmdir still works and resumes the pull
    err = rmdir(w, timeout=180)
    assert err == "OK", teardown_report(w)
    assert util.sha256sum(os.path.join(archive(w), "checkpoints", "big", "model.bin")) == sha
