"""Lambda and Paperspace side by side in one mount (one config with a [lambda]
and a [paperspace] section, each api_url at its stand-in, one sshd box each).

Checks, through the mount: each platform's directory lists its instance with
the right status, info.json without secrets, an `ssh` line for IP:22 (the
stand-ins give each box its own loopback IP, see fake_rest.py), checkpoints
read from the box; a state change on one platform shows without a remount
and leaves the other alone; Paperspace's list is followed over several pages;
the key goes as Basic (Lambda) and Bearer (Paperspace) and the request logs
keep it masked. Then a verified rmdir teardown of each sends exactly its
DESTROY_CALLS and names, in the teardown report, what still bills (Lambda's
NFS file system; Paperspace's static IP and snapshot), without deleting it.

    /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        tests/integration/test_lambda_paperspace.py --rgtfs build/rgtfs
"""

import json
import os
import random
import re
import stat
import time

import pytest

import conftest
import util
import fake_lambda
import fake_paperspace
from util import Mount, wait_until, op_errno, cat, read_text, BASE_MTIME

SECRET_MARK = "FAKESECRET"
KEY_ENVS = ("VAST_API_KEY", "RUNPOD_API_KEY", "LAMBDA_API_KEY", "PAPERSPACE_API_KEY",
            "AUTODL_TOKEN")


def write_config(path, sections, ssh_key):
    """[rgtfs] plus one section per (kind, api_url, key_env, extra) in sections."""
    lines = ["; written by test_lambda_paperspace.py", "[rgtfs]",
             "connect_timeout = 3", "io_timeout = 5"]
    for kind, url, key_env, extra in sections:
        lines += ["", "[%s]" % kind,
                  "api_url = %s" % url,
                  "api_key_env = %s" % key_env,
                  "api_timeout = 2",
                  "poll_interval = 1",
                  "stale_after = 4",
                  "checkpoint_dir = /workspace/checkpoints",
                  "log_path = /workspace/train.log",
                  # the test boxes let root in only; the platforms' own
                  # logins (ubuntu, paperspace) are the adapters' defaults
                  "ssh_user = root",
                  "ssh_key = %s" % ssh_key]
        lines += ["%s = %s" % kv for kv in extra.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def small_checkpoints(box, seed):
    ck = os.path.join(box.workspace, "checkpoints")
    util.torch_like_zip(os.path.join(ck, "run-a", "model.pt"), 256 * 1024, seed=seed,
                        mtime=BASE_MTIME + 1)
    util.write_file(os.path.join(ck, "run-a", "metrics.json"),
                    json.dumps({"epoch": 3, "seed": seed}).encode() + b"\n", BASE_MTIME + 2)
    util.write_file(os.path.join(ck, "run-b", "optimizer.bin"),
                    util.pattern_bytes(300001, seed), BASE_MTIME + 3)
    util.write_file(os.path.join(box.workspace, "train.log"), b"step 1 loss 2\n",
                    BASE_MTIME + 4)
    return ck


def regular_files(snap):
    return {k: (v["size"], v["mtime"], v.get("sha256")) for k, v in snap.items()
            if stat.S_ISREG(v["mode"])}


def listed(mnt, kind):
    r = util.run(["ls", "-A", "--", os.path.join(mnt, kind)], timeout=30)
    return {n for n in r.text.split() if not n.startswith(".")} if r.rc == 0 else set()


class Side:
    """One platform of the mount: its stand-in, box and instance id."""

    def __init__(self, kind, api, box, iid, mnt):
        self.kind, self.api, self.box, self.iid, self.mnt = kind, api, box, iid, mnt

    def f(self, *parts):
        return os.path.join(self.mnt, self.kind, self.iid, *parts)

    def status(self):
        return read_text(self.f("status"))

    def archive(self, *parts):
        return os.path.join(self.mnt, "archive", self.kind, self.iid, *parts)


@pytest.fixture
def both(box_factory, tmp_path, rgtfs_bin, user_key, hygiene):
    apis, made = [], []

    def make():
        lam = fake_lambda.FakeLambda("lambda-test-key-%016x" % random.getrandbits(64))
        ps = fake_paperspace.FakePaperspace("ps-test-key-%016x" % random.getrandbits(64))
        for a in (lam, ps):
            a.on_fault = hygiene.fault
            a.start()
            apis.append(a)
        lbox = box_factory(populate=False)
        pbox = box_factory(populate=False)
        want = {"lambda": regular_files(util.local_snapshot(small_checkpoints(lbox, 1))),
                "paperspace": regular_files(util.local_snapshot(small_checkpoints(pbox, 2)))}
        lid = fake_lambda.new_ids(1)[0]
        pid, other = fake_paperspace.new_ids(2)
        lam.add(fake_lambda.make_instance(lid, direct_port=lbox.port,
                                          file_system_names=["ckpt-nfs"]))
        ps.add(fake_paperspace.make_instance(pid, direct_port=pbox.port,
                                             publicIpType="static"))
        # a second machine, stopped and with no box: the list needs two pages
        ps.add(fake_paperspace.make_instance(other, state="stopped"))
        ps.page_size = 1
        ps.add_snapshot(pid, "snap" + pid[2:], "nightly-" + pid)
        ps.add_snapshot(other, "snapother1", "not this machine's")
        workdir = str(tmp_path / "mount")
        os.makedirs(workdir, exist_ok=True)
        extra = {"destroy_timeout": 8}
        conf = write_config(os.path.join(workdir, "rgtfs.ini"), [
            ("lambda", lam.url, fake_lambda.API_KEY_ENV, extra),
            ("paperspace", ps.url, fake_paperspace.API_KEY_ENV, extra)], user_key)
        env = conftest._rgtfs_env(workdir, None)
        for k in KEY_ENVS:
            env.pop(k, None)
        env[fake_lambda.API_KEY_ENV] = lam.api_key
        env[fake_paperspace.API_KEY_ENV] = ps.api_key
        m = Mount(rgtfs_bin, workdir, env, conf)
        made.append(m)
        m.start()
        L = Side("lambda", lam, lbox, lid, m.mnt)
        P = Side("paperspace", ps, pbox, pid, m.mnt)
        for s in (L, P):
            wait_until(lambda: s.iid in listed(m.mnt, s.kind), 10,
                       msg="%s instance listed" % s.kind)
        return m, L, P, other, want
    yield make
    util.kill_children()
    problems = []
    for m in made:
        m.cleanup()
    for a in apis:
        a.close()
    for m in made:
        problems += ["%s: %s" % (m.mnt, p) for p in m.problems]
        problems += hygiene.check(m.read_log())
    if problems:
        pytest.fail("mount teardown:\n  " + "\n  ".join(problems), pytrace=False)


def assert_clean_info(side):
    info = cat(side.f("info.json"))
    obj = json.loads(info)
    assert SECRET_MARK.encode() not in info, "a secret in %s info.json" % side.kind
    assert side.api.api_key.encode() not in info
    assert obj["rgtfs"]["platform"] == side.kind
    return obj


@pytest.mark.deadline(240)
def test_lambda_and_paperspace_side_by_side(both):
    m, L, P, other, want = both()

    # ---- tree, status, info.json, ssh, checkpoints ----------------------------
    assert listed(m.mnt, "lambda") == {L.iid}
    assert listed(m.mnt, "paperspace") == {P.iid, other}
    assert L.status() == "running\n" and P.status() == "running\n"
    assert read_text(os.path.join(m.mnt, "paperspace", other, "status")) == "stopped\n"
    li, pi = assert_clean_info(L), assert_clean_info(P)
    assert li["file_system_names"] == ["ckpt-nfs"] and "jupyter_url" not in li
    assert "startupScript" not in pi and pi["publicIpType"] == "static"
    lip, pip = L.api.get(L.iid)["ip"], P.api.get(P.iid)["publicIp"]
    assert lip != pip
    assert read_text(L.f("ssh")) == "ssh -p 22 root@%s\n" % lip
    assert read_text(P.f("ssh")) == "ssh -p 22 root@%s\n" % pip
    assert read_text(os.path.join(m.mnt, "paperspace", other, "ssh")) == ""
    for s in (L, P):
        rel = os.path.join("run-a", "metrics.json")
        assert cat(s.f("checkpoints", rel)) == \
            open(os.path.join(s.box.workspace, "checkpoints", rel), "rb").read()
    assert "active (gpu_1x_a100_sxm4 in us-tx-1)" in read_text(L.f("status_msg"))
    assert read_text(P.f("status_msg")).startswith("ready (A100-80G")

    # ---- auth and the request logs ---------------------------------------------
    lr, pr = L.api.log(), P.api.log()
    assert lr and all(r["authorized"] for r in lr)
    assert all(r["headers"].get("Authorization") == "Basic ***" for r in lr)
    assert pr and all(r["authorized"] for r in pr)
    assert all(r["headers"].get("Authorization") == "Bearer ***" for r in pr)
    # Paperspace: every walk goes to the end (page size 1, two machines)
    assert any(r["query"].get("after") for r in pr if r["kind"] == "list"), pr[-3:]
    assert all(r["query"].get("limit") for r in pr if r["kind"] == "list")
    for a in (L.api, P.api):
        assert a.api_key not in json.dumps(a.log())
        assert a.mutations() == []

    # ---- a state change on one side, seen without remount -------------------------
    assert L.api.set_state(L.iid, "offline") == "offline"
    wait_until(lambda: L.status() == "offline\n", 6, msg="lambda offline")
    assert P.status() == "running\n"
    assert P.api.set_state(P.iid, "stopped") == "stopped"
    wait_until(lambda: P.status() == "stopped\n", 6, msg="paperspace stopped")
    assert L.api.set_state(L.iid, "preempted") == "preempted"
    wait_until(lambda: L.status() == "preempted\n", 6, msg="lambda preempted")
    L.api.set_state(L.iid, "running")
    P.api.set_state(P.iid, "running")
    wait_until(lambda: L.status() == "running\n" and P.status() == "running\n", 6,
               msg="both running again")

    # ---- verified teardown, Lambda first -------------------------------------------
    err = op_errno("rmdir", L.f(), timeout=90)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, util.run(["cat", L.f("teardown")]).text, m.log_tail())
    muts = L.api.mutations()
    assert [(r["method"], r["path"]) for r in muts] == \
        [("POST", "/api/v1/instance-operations/terminate")], muts
    assert json.loads(muts[0]["body"]) == {"instance_ids": [L.iid]}
    assert muts[0]["status"] == 200
    assert L.api.deletes() == muts
    wait_until(lambda: L.iid not in listed(m.mnt, "lambda"), 10, msg="lambda left")
    rep = read_text(L.archive("teardown"))
    assert rep.startswith("done:"), rep
    assert "still billing" in rep and "file system ckpt-nfs" in rep, rep
    assert read_text(L.archive("status")) == "gone\n"
    assert regular_files(util.snapshot(L.archive("checkpoints"))) == want["lambda"]
    # the other platform was not touched
    assert P.api.mutations() == [] and P.status() == "running\n"

    # ---- then Paperspace -----------------------------------------------------------------
    err = op_errno("rmdir", P.f(), timeout=90)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, util.run(["cat", P.f("teardown")]).text, m.log_tail())
    muts = P.api.mutations()
    assert [(r["method"], r["path"]) for r in muts] == [("DELETE", "/v1/machines/" + P.iid)]
    assert all(re.fullmatch(rx.replace("{id}", re.escape(P.iid)), r["path"])
               for (meth, rx), r in zip(fake_paperspace.DESTROY_CALLS, muts))
    assert muts[0]["status"] == 200
    wait_until(lambda: P.iid not in listed(m.mnt, "paperspace"), 10, msg="machine left")
    rep = read_text(P.archive("teardown"))
    assert rep.startswith("done:"), rep
    assert "static IP %s" % pip in rep, rep
    assert "snapshot snap%s (nightly-%s)" % (P.iid[2:], P.iid) in rep, rep
    assert "snapother1" not in rep
    assert regular_files(util.snapshot(P.archive("checkpoints"))) == want["paperspace"]
    # nothing was deleted but the machine, and the other machine is still there
    assert other in listed(m.mnt, "paperspace")
    assert len(P.api.snapshots) == 2
    info = cat(P.archive("info.json")) + cat(L.archive("info.json"))
    assert SECRET_MARK.encode() not in info
    assert L.api.api_key.encode() not in info and P.api.api_key.encode() not in info


# What .error must say for some faults (regex), so an error for the wrong
# reason does not pass: the page that never ends is bounded by pages or time.
WANT_ERROR = {
    ("lambda", "body"): r"global/unknown",
    ("paperspace", "body"): r"Something went wrong",
    ("lambda", 401): r"refused the API key",
    ("paperspace", "endless"): r"did not end within \d+ pages|did not finish within",
    ("lambda", "endless"): r"did not answer within|larger than",
}


@pytest.mark.faults
@pytest.mark.deadline(90)
def test_faults_are_errors_never_gone(both):
    """An error body with HTTP 200, a truncated reply, a Paperspace list that
    never ends and a Lambda list that never ends: .error says so, status stays
    readable, nothing reads gone, nothing is sent."""
    m, L, P, other, want = both()
    cases = [(L, dict(mode="body", status=200, body=json.dumps(fake_lambda.ERROR_200))),
             (P, dict(mode="body", status=200, body=json.dumps(fake_paperspace.ERROR_200))),
             (L, dict(mode="truncate")),
             (P, dict(mode="truncate")),
             (L, dict(status=401)),
             (P, dict(mode="endless")),
             (L, dict(mode="endless"))]
    for side, f in cases:
        errf = os.path.join(m.mnt, side.kind, ".error")

        def err_text():
            r = util.run(["cat", "--", errf], timeout=30)
            return r.text if r.rc == 0 else ""
        t0 = time.monotonic()
        side.api.fail(kind="list", **f)
        wait_until(lambda: side.api.list_calls(since=t0) >= 1 and err_text().strip(), 15,
                   msg="%s %r: .error stays empty" % (side.kind, f))
        text = err_text()
        assert side.api.api_key not in text
        want = WANT_ERROR.get((side.kind, f.get("mode") or f.get("status")))
        assert want is None or re.search(want, text), (side.kind, f, text)
        assert side.iid in listed(m.mnt, side.kind)
        assert side.status().strip() not in ("gone", "destroying", "")
        side.api.clear()
        wait_until(lambda: not err_text().strip(), 15,
                   msg="%s %r: .error not cleared: %r" % (side.kind, f, err_text()))
        assert side.status() == "running\n"
    assert L.api.mutations() == [] and P.api.mutations() == []


@pytest.mark.faults
@pytest.mark.deadline(120)
def test_paperspace_snapshots_unlistable_the_report_still_names_the_ip(both):
    """GET /v1/snapshots failing after the DELETE: the teardown still finishes
    (the machine is gone), and its report names the static IP and says the
    snapshots could not be listed, so nothing that bills goes unmentioned."""
    m, L, P, other, want = both()
    pip = P.api.get(P.iid)["publicIp"]
    P.api.fail(path="/v1/snapshots", status=500)
    err = op_errno("rmdir", P.f(), timeout=90)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, util.run(["cat", P.f("teardown")]).text, m.log_tail())
    assert [(r["method"], r["path"]) for r in P.api.mutations()] == \
        [("DELETE", "/v1/machines/" + P.iid)]
    rep = read_text(P.archive("teardown"))
    assert "static IP %s" % pip in rep, rep
    assert "snapshots of machine %s: could not be listed" % P.iid in rep, rep
    assert P.api.api_key not in rep
