"""AutoDL Pro through rgtfs, against fake_autodl.py (PLATFORMS.md 5 and 7).

An [autodl] section mounts MOUNT/autodl/<uuid>/ for every Pro instance the
paged list returns; statuses follow the section 7 mapping; the raw developer
token goes in Authorization (no "Bearer"); a 200 answer whose code is not
"Success" is an error, never an empty list; a list that never ends is an
error, not a hang. rmdir sends power_off, waits for the box to be listed as
shut down, then release: exactly those two, in that order, and no release
when power_off was refused.
"""

import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

import util
from util import Mount, cat, ls, op_errno, read_text, run, wait_until
from test_ssh_hosts import pw_user  # noqa: F401 (a fixture)
from fake_autodl import (API_KEY_ENV, SECRET_MARK, FakeAutodl, make_instance, new_ids,
                         secret_values)

DESTROY_TIMEOUT = 15
RMDIR_TIMEOUT = 120
WAIT = 10


def write_autodl_config(path, *, api_url, ssh_key, poll_interval=1, stale_after=4,
                        api_timeout=2, destroy_timeout=DESTROY_TIMEOUT, ssh_user=None):
    lines = ["; written by test_autodl.py",
             "[rgtfs]", "connect_timeout = 3", "io_timeout = 5", "",
             "[autodl]",
             "api_url = %s" % api_url,
             "api_key_env = %s" % API_KEY_ENV,
             "api_timeout = %s" % api_timeout,
             "poll_interval = %s" % poll_interval,
             "stale_after = %s" % stale_after,
             "checkpoint_dir = /workspace/checkpoints",
             "log_path = /workspace/train.log",
             "destroy_timeout = %s" % destroy_timeout]
    if ssh_key:
        lines.append("ssh_key = %s" % ssh_key)
    if ssh_user:
        lines.append("ssh_user = %s" % ssh_user)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class World:
    def __init__(self, api, boxes, ids, mount):
        self.api, self.boxes, self.ids, self.mount = api, boxes, ids, mount

    @property
    def mnt(self):
        return self.mount.mnt

    def dir(self):
        return os.path.join(self.mnt, "autodl")

    def idir(self, i=0):
        return os.path.join(self.dir(), self.ids[i])

    def f(self, i, *parts):
        return os.path.join(self.idir(i), *parts)

    def status(self, i=0):
        return read_text(self.f(i, "status"))

    def error(self):
        return read_text(os.path.join(self.dir(), ".error"))


@pytest.fixture
def autodl(tmp_path, box_factory, rgtfs_bin, user_key, hygiene):
    """make(n=1, extra=()) -> World: n boxes listed as running Pro instances,
    plus `extra` instances (make_instance kwargs) with no box."""
    made = []
    api = FakeAutodl("autodl-dev-token-%016x" % random.getrandbits(64))
    api.on_fault = hygiene.fault
    api.start()

    def make(n=1, extra=(), mount=True, wait_ids=None, **cfg):
        boxes = [box_factory() for _ in range(n)]
        ids = new_ids(n)
        for b, iid in zip(boxes, ids):
            api.add(make_instance(iid, direct_port=b.port))
        for e in extra:
            api.add(make_instance(**e))
        workdir = str(tmp_path / ("autodl%d" % len(made)))
        os.makedirs(workdir, exist_ok=True)
        home = os.path.join(workdir, "home")
        os.makedirs(home, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID", API_KEY_ENV)}
        env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"), LC_ALL="C.UTF-8")
        env[API_KEY_ENV] = api.api_key
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=0")
        cfg.setdefault("ssh_key", user_key)
        conf = write_autodl_config(os.path.join(workdir, "rgtfs.ini"), api_url=api.url,
                                   **cfg)
        m = Mount(rgtfs_bin, workdir, env, conf)
        made.append(m)
        w = World(api, boxes, ids, m)
        if mount:
            m.start()
            for iid in ids + list(wait_ids or ()):
                wait_until(lambda: iid in ls(w.dir()), WAIT, msg="%s listed" % iid)
        return w
    yield make
    util.kill_children()
    problems = []
    for m in made:
        m.cleanup()
    for m in made:
        problems += ["%s: %s" % (m.mnt, p) for p in m.problems]
        problems += hygiene.check(m.read_log())
    api.stop()
    if problems:
        pytest.fail("mount teardown:\n  " + "\n  ".join(problems), pytrace=False)


def test_mount_maps_states_endpoint_and_scrubs_secrets(autodl):
    extra = [dict(iid=i, state=s)
             for k, (i, s) in enumerate(zip(new_ids(4), ["creating", "shutting_down",
                                                           "shutdown", "releasing"]))]
    w = autodl(extra=extra)
    want = {w.ids[0]: "running", extra[0]["iid"]: "provisioning",
            extra[1]["iid"]: "stopped", extra[2]["iid"]: "stopped",
            extra[3]["iid"]: "destroying"}
    wait_until(lambda: set(want) <= ls(w.dir()), WAIT, msg="every instance listed")
    for iid, word in want.items():
        assert read_text(os.path.join(w.dir(), iid, "status")) == word + "\n", iid
    assert read_text(w.f(0, "ssh")) == "ssh -p %d root@127.0.0.1\n" % w.boxes[0].port
    # the box itself reads through the mount
    src = os.path.join(w.boxes[0].workspace, "checkpoints", "run-001", "best_metrics.json")
    assert cat(w.f(0, "checkpoints", "run-001", "best_metrics.json")) == open(src, "rb").read()
    # secrets: nowhere in the tree or the log; the token raw, never "Bearer"
    secrets = [SECRET_MARK, w.api.api_key]
    for iid in want:
        secrets += secret_values(w.api.get(iid))
    info = cat(w.f(0, "info.json"))
    assert json.loads(info)["gpu_spec_uuid"] == "v-48g"
    for data in (info, cat(w.f(0, "status_msg")), cat(os.path.join(w.dir(), ".error")),
                 w.mount.read_log().encode()):
        for s in secrets:
            assert s.encode() not in data, s[:20]
    reqs = w.api.log()
    assert reqs and all(r["authorized"] for r in reqs)
    assert all(r["headers"].get("Authorization") == "***" for r in reqs)
    lists = w.api.calls(kind="list")
    assert lists and all(r["method"] == "POST" for r in lists)
    assert all(json.loads(r["body"])["page_size"] >= 1 for r in lists)
    assert w.api.deletes() == [] and w.api.mutations() == []


def test_every_page_is_followed(autodl, hygiene):
    # removing an instance while a list is being paged is seen as a shift
    hygiene.allow(r"instance list (says|changed)")
    ids = new_ids(120)
    w = autodl(extra=[dict(iid=i, state="running") for i in ids])
    wait_until(lambda: set(ids) <= ls(w.dir()), WAIT, msg="all 121 instances listed")
    t = time.monotonic()
    wait_until(lambda: w.api.list_calls(since=t) >= 2, WAIT, msg="two more polls")
    pages = [r.get("page") for r in w.api.calls(kind="list", since=t)]
    assert set(pages) == {1, 2, 3}, pages
    # an instance released elsewhere disappears: the list is complete
    w.api.remove(ids[-1])
    wait_until(lambda: ids[-1] not in ls(w.dir()), WAIT, msg="removed instance gone")


@pytest.mark.faults
def test_endless_list_is_an_error_not_a_hang(autodl):
    w = autodl()
    w.api.fail(mode="endless", kind="list")
    err = wait_until(lambda: w.error(), 20, msg=".error for an endless list")
    assert re.search(r"did not end|did not finish", err), err
    assert w.ids[0] in ls(w.dir())
    assert w.status() in ("running\n", "unknown\n")
    w.api.clear()
    wait_until(lambda: w.error() == "", 20, msg=".error clears")
    assert w.status() == "running\n"


@pytest.mark.faults
@pytest.mark.parametrize("fault,word", [
    (dict(mode="code", code="AuthorizeFailed"), "AuthorizeFailed"),
    (dict(mode="body", body='{"code":"Success","data":null}'), "data.list"),
    (dict(mode="truncate"), "JSON"),
    (dict(status=500), "500"),
])
def test_bad_list_keeps_instances(autodl, fault, word):
    w = autodl()
    w.api.fail(kind="list", **fault)
    err = wait_until(lambda: w.error(), 20, msg=".error filled")
    assert word in err, err
    assert w.api.api_key not in err
    n = w.api.list_calls()
    wait_until(lambda: w.api.list_calls() >= n + 2, 20, msg="two more polls")
    assert w.ids[0] in ls(w.dir())
    assert w.status() in ("running\n", "unknown\n"), w.status()
    w.api.clear()
    wait_until(lambda: w.error() == "" and w.status() == "running\n", 20, msg="recovered")


def _archived(w):
    r = run(["ls", "-A", "--", os.path.join(w.mnt, "archive", "autodl")], timeout=30)
    return set(r.text.splitlines()) if r.rc == 0 else set()


@pytest.mark.deadline(240)
def test_teardown_powers_off_then_releases(autodl):
    w = autodl()
    iid = w.ids[0]
    err = op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text, w.mount.log_tail())
    seq = w.api.deletes()
    assert [(r["path"].rsplit("/", 1)[-1], r["instance"]) for r in seq] == \
        [("power_off", iid), ("release", iid)], seq
    assert all(r["status"] == 200 for r in seq), seq
    # release only after a list had shown the box "shutdown"
    off_t, rel_t = seq[0]["t"], seq[1]["t"]
    shown = [r for r in w.api.calls(kind="list")
             if off_t < r["t"] < rel_t and r.get("served", {}).get(iid) == "shutdown"]
    assert shown, "release sent before any list showed %s shut down" % iid
    assert w.api.mutations() == seq
    wait_until(lambda: iid not in ls(w.dir()), WAIT, msg="left MOUNT/autodl")
    wait_until(lambda: iid in _archived(w), WAIT, msg="archived")
    a = os.path.join(w.mnt, "archive", "autodl", iid)
    assert read_text(os.path.join(a, "status")) == "gone\n"
    assert {"PULL_MANIFEST.json", "PULL_VERIFIED.json", "checkpoints"} <= ls(a)
    rep = read_text(os.path.join(a, "teardown"))
    assert "power_off" in rep and "release" in rep, rep
    assert w.api.get(iid) is None


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_power_off_refused_with_http_200_sends_no_release(autodl):
    w = autodl()
    iid = w.ids[0]
    w.api.fail(mode="code", code="InstanceStatusNotAllowed", kind="power_off")
    err = op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    assert err != "OK", err
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("refused:"), rep
    assert "InstanceStatusNotAllowed" in rep or "power_off" in rep, rep
    seq = w.api.deletes()
    assert [r["kind"] for r in seq] == ["power_off"], seq
    assert w.api.calls(kind="release") == []
    assert w.api.get(iid)["status"] == "running"
    assert iid in ls(w.dir()) and iid not in _archived(w)
    w.api.clear()
    assert w.status() == "running\n"


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_power_off_without_an_answer_is_never_retried_nor_followed(autodl):
    """power_off reaches AutoDL (it acts) but the answer never comes: the
    outcome is unknown, so nothing is sent again and release is never sent,
    even once the box shows shutdown."""
    w = autodl()
    iid = w.ids[0]
    w.api.fail(mode="hang", kind="power_off", apply=True)
    err = op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    assert err != "OK", err
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith(("refused:", "failed:")) and "unknown" in rep, rep
    w.api.clear()
    wait_until(lambda: w.api.get(iid)["status"] == "shutdown", WAIT, msg="box shut down")
    time.sleep(2)
    assert [r["kind"] for r in w.api.deletes()] == ["power_off"], w.api.deletes()
    assert iid not in _archived(w)


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_release_refused_keeps_the_copy_and_sends_nothing_more(autodl):
    w = autodl()
    iid = w.ids[0]
    w.api.fail(mode="code", code="InstanceStatusNotAllowed", kind="release")
    err = op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    assert err != "OK", err
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("failed:"), rep
    assert "power_off was accepted" in rep and "InstanceStatusNotAllowed" in rep, rep
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "release"]
    assert w.api.get(iid)["status"] == "shutdown"
    assert iid in ls(w.dir())


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_release_refused_then_rmdir_again_sends_release_only(autodl):
    """power_off accepted, release refused: the box is off and cannot be
    checked again, so a later rmdir goes on from the verified journal and
    sends release, and only release (power_off is never sent twice)."""
    w = autodl()
    iid = w.ids[0]
    want = snapshot_ckpt(w)
    w.api.fail(mode="code", code="InstanceStatusNotAllowed", kind="release", times=1)
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    assert read_text(w.f(0, "teardown")).startswith("failed:")
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "release"]
    assert w.api.get(iid)["status"] == "shutdown"
    # The box is powered off: nothing on it answers any more.
    w.boxes[0].stop()
    w.api.clear()
    err = op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text, w.mount.log_tail())
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "release", "release"], \
        w.api.deletes()
    wait_until(lambda: iid in _archived(w), WAIT, msg="archived")
    a = os.path.join(w.mnt, "archive", "autodl", iid)
    rep = read_text(os.path.join(a, "teardown"))
    assert "resume" in rep and "release" in rep, rep
    assert _digests(util.snapshot(os.path.join(a, "checkpoints"))) == want


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_rgtfs_killed_between_power_off_and_release_sends_nothing_blind(autodl):
    """The box takes longer to shut down than destroy_timeout, and rgtfs is
    then killed. After the remount nobody watched the box: it may have run
    and written checkpoints the journal lacks, so rmdir of the shut-down box
    sends nothing and says what to do. Started again, it is verified anew
    and torn down whole, its new file included."""
    w = autodl(destroy_timeout=4)
    iid = w.ids[0]
    w.api.off_lag = 10 ** 9
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("failed:") and "rmdir again" in rep, rep
    assert [r["kind"] for r in w.api.deletes()] == ["power_off"]
    w.mount.crash()
    w.api.set_state(iid, "shutdown")
    w.boxes[0].stop()
    w.mount.start()
    wait_until(lambda: iid in ls(w.dir()), WAIT, msg="listed again")
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("refused:") and "not watched" in rep, rep
    assert [r["kind"] for r in w.api.deletes()] == ["power_off"], w.api.deletes()
    # the user starts it again; it trains on
    w.boxes[0].start()
    util.write_file(os.path.join(w.boxes[0].workspace, "checkpoints", "after.bin"),
                    b"written after the power_off\n")
    w.api.set_state(iid, "running")
    w.api.off_lag = 2
    wait_until(lambda: w.status() == "running\n", WAIT, msg="running again")
    want = snapshot_ckpt(w)
    assert any(k.endswith(b"after.bin") for k in want)
    err = op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, run(["cat", w.f(0, "teardown")]).text, w.mount.log_tail())
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "power_off", "release"]
    wait_until(lambda: iid in _archived(w), WAIT, msg="archived")
    a = os.path.join(w.mnt, "archive", "autodl", iid)
    assert _digests(util.snapshot(os.path.join(a, "checkpoints"))) == want


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_box_that_ran_again_is_never_released_on_its_old_copy(autodl):
    """power_off accepted, release refused; then the box runs again, writes
    a new checkpoint and shuts down. The old verified copy lacks that file:
    rmdir must not resume (no release), and refuses until it can verify the
    box anew."""
    w = autodl()
    iid = w.ids[0]
    w.api.fail(mode="code", code="InstanceStatusNotAllowed", kind="release", times=1)
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "release"]
    w.api.clear()
    w.api.set_state(iid, "running")
    util.write_file(os.path.join(w.boxes[0].workspace, "checkpoints", "epoch-99.bin"),
                    b"new training\n")
    wait_until(lambda: w.status() == "running\n", WAIT, msg="seen running")
    w.api.set_state(iid, "shutdown")
    wait_until(lambda: w.status() == "stopped\n", WAIT, msg="seen shut down")
    w.boxes[0].stop()
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("refused:"), rep
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "release"], w.api.deletes()
    assert w.api.get(iid)["status"] == "shutdown"
    assert iid in ls(w.dir()) and iid not in _archived(w)


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_ctrl_c_while_waiting_to_release_sends_nothing(autodl):
    """A resumed run waits for the box to show shutdown before release: an
    interrupt then stops it, and release is not sent."""
    w = autodl(destroy_timeout=60)
    iid = w.ids[0]
    w.api.fail(mode="code", code="InstanceStatusNotAllowed", kind="release", times=1)
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    w.api.clear()
    # still down, but not yet "shutdown": the resumed run has to wait
    w.api.update(iid, status="shutting_down")
    w.api.off_lag = 10 ** 9
    t0 = time.monotonic()
    p = util.spawn(["rmdir", "--", w.idir(0)], stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # the wait polls the list once a second
    wait_until(lambda: len(w.api.calls(kind="list", since=t0)) >= 3 or p.poll() is not None,
               30, msg="the resumed run is waiting")
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=20)
    finally:
        util.stop_child(p)
    assert p.returncode != 0
    w.api.set_state(iid, "shutdown")
    time.sleep(2)      # a release sent late would show in the log by now
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "release"], w.api.deletes()
    assert iid in ls(w.dir()) and iid not in _archived(w)


@pytest.mark.faults
@pytest.mark.deadline(300)
def test_unknown_release_is_never_resumed(autodl):
    """release reached AutoDL but its answer never came: a later rmdir
    sends nothing, however the box shows itself."""
    w = autodl()
    iid = w.ids[0]
    w.api.fail(mode="hang", kind="release", times=1)
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    assert "unknown" in read_text(w.f(0, "teardown"))
    w.api.clear()
    w.boxes[0].stop()
    assert op_errno("rmdir", w.idir(0), timeout=RMDIR_TIMEOUT) != "OK"
    assert [r["kind"] for r in w.api.deletes()] == ["power_off", "release"], w.api.deletes()
    assert iid in ls(w.dir()) and iid not in _archived(w)


def snapshot_ckpt(w, i=0):
    """What the box's checkpoint_dir holds, read through the mount."""
    s = _digests(util.snapshot(w.f(i, "checkpoints")))
    assert any(v[1] for v in s.values()), "no checkpoint files on the test box"
    return s


def _digests(snap):
    return {k: (v.get("size"), v.get("sha256")) for k, v in snap.items()}


def test_box_that_takes_only_its_root_password(autodl, pw_user, box_factory):
    """An AutoDL Pro box whose sshd takes only passwords: rgtfs logs in with
    the snapshot's root_password (no key, no agent, no password in the INI),
    and that password is in no file of the mount, no log line and the cache."""
    user, pw = pw_user
    box = box_factory(name="autodl-pw", start=False)
    box.extra_config = ["AllowUsers %s" % user, "Match User %s" % user,
                        "    PasswordAuthentication yes"]
    box.write_config()
    box.start()
    iid = new_ids(1)[0]
    w = autodl(n=0, extra=[{"iid": iid, "direct_port": box.port}], mount=False,
               ssh_key=None)
    # the login AutoDL names (root there) is the throwaway user here, so
    # the endpoint comes from ssh_command
    w.api.update(iid, root_password=pw, proxy_host=None,
                 ssh_command="ssh -p %d %s@127.0.0.1" % (box.port, user))
    w.mount.start()
    wait_until(lambda: iid in ls(w.dir()), WAIT, msg="listed")
    rel = ("checkpoints", "run-001", "best_metrics.json")
    with open(os.path.join(box.workspace, *rel), "rb") as f:
        want = f.read()
    d = os.path.join(w.dir(), iid)
    # the poller fetches the password; the first read may come first
    wait_until(lambda: run(["cat", os.path.join(d, *rel)]).out == want, WAIT,
               msg="read with the instance's password")
    snaps = [r for r in w.api.calls(method="GET") if "snapshot" in r["path"]]
    assert snaps, "the password did not come from the snapshot call"
    assert pw not in w.mount.read_log()
    for root in (w.mnt, w.mount.cache):
        r = run(["grep", "-rlF", "--exclude-dir=checkpoints", "-e", pw, root], timeout=60)
        assert r.rc == 1, "password found under %s: %s" % (root, r.text)
