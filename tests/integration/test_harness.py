"""Self-tests of the harness (no rgtfs needed): the boxes, the fake API, the
network helpers and the mount lifecycle (checked on a real FUSE mount made
by sshfs). If one of these fails, the rgtfs tests' verdicts mean nothing."""

import json
import os
import socket
import subprocess
import time

import pytest

import util
from util import run, ok, wait_until, Mount, is_mounted
from fake_vast import make_instance, SECRET_MARK, secret_values
from sshd import SSH_OPTS


def curl(api, path, method="GET", key="<api>", data=None, timeout=10):
    argv = ["curl", "-sS", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}", "-X", method]
    if key is not None:
        argv += ["-H", "Authorization: Bearer " + (api.api_key if key == "<api>" else key)]
    if data is not None:
        argv += ["-d", data]
    r = run(argv + [api.url + path], timeout=timeout + 5)
    body, _, code = r.out.rpartition(b"\n")
    return r.rc, int(code or 0), body


def test_boxes_serve_their_own_workspace(box_factory, user_key, tmp_path):
    a = box_factory(name="a")
    b = box_factory(name="b")
    for bx in (a, b):
        util.write_file(os.path.join(bx.workspace, "who"), bx.name.encode() + b"\n")
    assert a.ssh(user_key, "cat /workspace/who").stdout == b"a\n"
    assert b.ssh(user_key, "cat /workspace/who").stdout == b"b\n"
    # sftp sees the same private tree
    got = tmp_path / "got"
    r = b.sftp_batch(user_key, "get /workspace/checkpoints/run-001/best.pth %s\n" % got)
    assert r.returncode == 0, r.stderr
    assert util.sha256_file(str(got)) == util.sha256_file(b.local("/workspace/checkpoints/run-001/best.pth"))
    # sizes and mtimes as the box has them
    r = a.ssh(user_key, "stat -c '%s %Y' /workspace/checkpoints/run-001/best.pth")
    st = os.stat(a.local("/workspace/checkpoints/run-001/best.pth"))
    assert r.stdout.decode().split() == [str(st.st_size), str(int(st.st_mtime))]
    # the host's own /workspace is untouched by the bind mounts
    assert not os.path.exists("/workspace/who")


def test_box_without_sftp_subsystem(box_factory, user_key):
    b = box_factory(sftp=False)
    r = b.sftp_batch(user_key, "ls /workspace\n")
    assert r.returncode != 0 and "subsystem request failed" in r.stderr
    data = open(b.local("/workspace/checkpoints/run-001/best.pth"), "rb").read()
    r = b.ssh(user_key, "cat /workspace/checkpoints/run-001/best.pth")
    assert r.returncode == 0 and r.stdout == data, "exec channel output is not clean"
    r = b.ssh(user_key, "dd if=/workspace/checkpoints/run-001/best.pth bs=4096 skip=3 count=2 2>/dev/null")
    assert r.stdout == data[3 * 4096:5 * 4096]


def test_box_stop_kill_restart_recreate(box_factory, user_key):
    b = box_factory()
    port = b.port
    fp = b.host_key_fingerprint()
    # a live session dies with the box
    sess = subprocess.Popen(b.ssh_argv(user_key, "sleep 60"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(b.processes()) >= 2, 10, msg="session process exists")
    b.kill()
    assert sess.wait(timeout=10) != 0
    assert b.processes() == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    b.start()
    assert b.port == port and b.ssh(user_key, "true").returncode == 0
    # kill_listener: new logins refused, the running session lives
    sess = subprocess.Popen(b.ssh_argv(user_key, "sleep 2; echo alive"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(b.processes()) >= 2, 10, msg="session process exists")
    b.kill_listener()
    assert b.ssh(user_key, "true").returncode == 255
    assert sess.communicate(timeout=15)[0] == b"alive\n"
    b.stop()
    b.recreate()
    assert b.port == port and b.host_key_fingerprint() != fp
    r = run(["ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1"], timeout=10)
    assert b.host_pubkey().split()[1] in r.text
    b.stop()
    assert b.processes() == []


def test_unauthorized_key_is_refused(box_factory, user_key, other_key):
    b = box_factory(keys=[other_key + ".pub"])
    assert b.ssh(user_key, "true").returncode == 255
    assert b.ssh(other_key, "true").returncode == 0


def test_fake_api_shapes(fake_api):
    fake_api.add(make_instance(31000001, direct_port=40122, proxy_port=40200))
    fake_api.add(make_instance(31000002, direct_port=40130, proxy_port=40201, state="stopped"))
    rc, code, body = curl(fake_api, "/api/v0/instances?owner=me", key=None)
    assert code == 401 and json.loads(body)["success"] is False
    rc, code, body = curl(fake_api, "/api/v0/instances?owner=me", key="wrong")
    assert code == 401
    rc, code, body = curl(fake_api, "/api/v0/instances?owner=me")
    d = json.loads(body)
    assert code == 200 and d["instances_found"] == 2 and len(d["instances"]) == 2
    i = d["instances"][0]
    assert i["ports"]["22/tcp"][0]["HostPort"] == "40122"
    assert i["public_ipaddr"] != i["public_ipaddr"].strip()
    assert i["ssh_port"] == 40200 and isinstance(i["ssh_port"], int)
    assert len(secret_values(i)) == 3 and all(SECRET_MARK in s for s in secret_values(i))
    for k in ("jupyter_token", "onstart", "extra_env", "actual_status", "cur_state",
              "intended_status", "status_msg", "is_bid", "gpu_name", "dph_total"):
        assert k in i
    rc, code, body = curl(fake_api, "/api/v0/instances/31000002/")
    assert json.loads(body)["instances"]["actual_status"] == "stopped"
    rc, code, body = curl(fake_api, "/api/v0/instances/999/")
    assert code == 200 and json.loads(body) == {"instances": None}
    # the query-param key works too, and is masked in the log
    r = ok(["curl", "-sS", fake_api.url + "/api/v0/instances?owner=me&api_key=" + fake_api.api_key])
    assert json.loads(r.out)["instances_found"] == 2
    assert fake_api.log()[-1]["query"]["api_key"] == ["***"]
    assert all(fake_api.api_key not in json.dumps(r) for r in fake_api.log())
    # PUT state
    rc, code, body = curl(fake_api, "/api/v0/instances/31000001/", "PUT", data='{"state":"stopped"}')
    assert json.loads(body)["success"] is True
    assert fake_api.get(31000001)["actual_status"] == "stopped"
    # DELETE: success, lingers as unloaded/exited for `linger` list calls, then gone
    assert fake_api.deletes() == []
    rc, code, body = curl(fake_api, "/api/v0/instances/31000002/", "DELETE", data="{}")
    assert json.loads(body)["success"] is True
    assert len(fake_api.deletes()) == 1
    seen = []
    for _ in range(fake_api.linger + 1):
        d = json.loads(curl(fake_api, "/api/v0/instances?owner=me")[2])
        seen.append([(x["id"], x["cur_state"], x["actual_status"]) for x in d["instances"]
                     if x["id"] == 31000002])
    assert seen[:fake_api.linger] == [[(31000002, "unloaded", "exited")]] * fake_api.linger
    assert seen[-1] == []
    assert json.loads(curl(fake_api, "/api/v0/instances/31000002/")[2]) == {"instances": None}
    assert fake_api.list_calls() >= fake_api.linger + 3


@pytest.mark.parametrize("fault,check", [
    (dict(status=500, times=2), "500,500,200"),
    (dict(status=429), "429,429,429"),
    (dict(status=401), "401,401,401"),
    (dict(mode="truncate"), "badjson"),
    (dict(mode="cut"), "curl18"),
    (dict(mode="html"), "html"),
    (dict(mode="delay", delay=3), "timeout"),
    (dict(mode="hang"), "timeout"),
    (dict(mode="reset"), "curl52"),
    (dict(mode="body", body='{"instances": 7}'), "body"),
], ids=["500x2", "429", "401", "truncate", "cut", "html", "delay", "hang", "reset", "body"])
def test_fake_api_faults(fake_api, fault, check):
    fake_api.add(make_instance(31000001, direct_port=40122, proxy_port=40200))
    # also through the standalone control endpoint, as the demo uses it
    r = ok(["curl", "-sS", "-X", "POST", "-d", json.dumps(fault), fake_api.url + "/_fake/fault"])
    assert json.loads(r.out)["success"]
    if "," in check:
        codes = [curl(fake_api, "/api/v0/instances?owner=me")[1] for _ in range(3)]
        assert codes == [int(c) for c in check.split(",")]
    elif check == "badjson":
        rc, code, body = curl(fake_api, "/api/v0/instances?owner=me")
        assert code == 200
        with pytest.raises(ValueError):
            json.loads(body)
    elif check.startswith("curl"):
        assert curl(fake_api, "/api/v0/instances?owner=me")[0] == int(check[4:])
    elif check == "html":
        r = ok(["curl", "-sS", "-i", "-H", "Authorization: Bearer " + fake_api.api_key,
                fake_api.url + "/api/v0/instances?owner=me"])
        assert b"Content-Type: text/html" in r.out and b"<html>" in r.out
    elif check == "timeout":
        t0 = time.monotonic()
        assert curl(fake_api, "/api/v0/instances?owner=me", timeout=1)[0] == 28
        assert time.monotonic() - t0 < 3
    elif check == "body":
        assert json.loads(curl(fake_api, "/api/v0/instances?owner=me")[2]) == {"instances": 7}
    ok(["curl", "-sS", "-X", "POST", fake_api.url + "/_fake/clear"])
    rc, code, body = curl(fake_api, "/api/v0/instances?owner=me")
    assert code == 200 and json.loads(body)["instances_found"] == 1


def test_fake_api_stop_and_restart(fake_api):
    fake_api.add(make_instance(1, direct_port=2, proxy_port=3))
    assert curl(fake_api, "/api/v0/instances?owner=me")[1] == 200
    fake_api.stop()
    assert curl(fake_api, "/api/v0/instances?owner=me")[0] == 7      # refused
    fake_api.restart()
    assert curl(fake_api, "/api/v0/instances?owner=me")[1] == 200


def test_fake_api_standalone(tmp_path):
    here = os.path.dirname(os.path.abspath(__file__))
    world = tmp_path / "world.json"
    world.write_text(json.dumps({"api_key": "k-standalone", "linger": 1,
                                 "instances": [make_instance(42, direct_port=5, proxy_port=6)]}))
    port = util.free_port()
    p = subprocess.Popen([util.PY, os.path.join(here, "fake_vast.py"), "--port", str(port),
                          "--world", str(world)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = p.stdout.readline().decode()
        assert "listening on http://127.0.0.1:%d" % port in line
        r = ok(["curl", "-sS", "-H", "Authorization: Bearer k-standalone",
                "http://127.0.0.1:%d/api/v0/instances?owner=me" % port])
        assert json.loads(r.out)["instances"][0]["id"] == 42
        ok(["curl", "-sS", "-X", "POST", "http://127.0.0.1:%d/_fake/state/42/stopped" % port])
        r = ok(["curl", "-sS", "-H", "Authorization: Bearer k-standalone",
                "http://127.0.0.1:%d/api/v0/instances/42/" % port])
        assert json.loads(r.out)["instances"]["actual_status"] == "stopped"
    finally:
        p.terminate()
        assert p.wait(timeout=10) == 0


def test_tcp_proxy_and_silent_server(box_factory, user_key):
    b = box_factory()
    px = util.TcpProxy(b.port)
    try:
        r = run(["ssh", "-p", str(px.port), "-i", user_key] + SSH_OPTS
                + ["root@127.0.0.1", "cat /workspace/checkpoints/run-001/best_metrics.json"], 20)
        assert r.rc == 0 and b"val_loss" in r.out and px.connections == 1
        px.blackhole()
        r = run(["ssh", "-p", str(px.port), "-i", user_key] + SSH_OPTS
                + ["-o", "ConnectTimeout=2", "root@127.0.0.1", "true"], 20)
        assert r.rc == 255 and r.elapsed < 10
    finally:
        px.stop()
    s = util.SilentServer()
    try:
        r = run(["ssh", "-p", str(s.port), "-i", user_key] + SSH_OPTS
                + ["-o", "ConnectTimeout=2", "root@127.0.0.1", "true"], 20)
        assert r.rc == 255 and r.elapsed < 10
    finally:
        s.stop()


class SshfsMount(Mount):
    """The Mount lifecycle driven with sshfs instead of rgtfs."""

    def __init__(self, box, key, workdir):
        os.makedirs(workdir, exist_ok=True)
        super().__init__("/usr/bin/sshfs", workdir, dict(os.environ), config=None)
        self.box, self.key = box, key

    def argv(self):
        return ["sshfs", "-f", "-o", "IdentityFile=" + self.key,
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-p", str(self.box.port),
                "root@127.0.0.1:/workspace", self.mnt]


def test_mount_lifecycle_with_sshfs(box_factory, user_key, tmp_path):
    b = box_factory()
    m = SshfsMount(b, user_key, str(tmp_path / "sshfs"))
    try:
        m.start()
        assert is_mounted(m.mnt)
        src = b.local("/workspace/checkpoints")
        assert util.snapshot(m.p("checkpoints")) == util.local_snapshot(src)
        # clean unmount, exit status 0, no process left
        pid = m.pid
        assert m.unmount() == 0
        assert not is_mounted(m.mnt) and not util.pid_alive(pid)
        # remount works on the same mountpoint
        m.start()
        assert util.cat(m.p("train.log")) == open(b.local("/workspace/train.log"), "rb").read()
        # a hung daemon (SIGSTOP) is still cleaned up: lazy unmount, then
        # TERM, then KILL, by PID; the problem is recorded, not hidden
        pid = m.pid
        m.exit_wait = 2
        os.kill(pid, 19)  # SIGSTOP
        run(["stat", m.p("train.log")], timeout=2)     # blocks, then killed
        m.cleanup()
        assert not is_mounted(m.mnt) and not util.pid_alive(pid)
        assert m.problems and m.exit_codes[-1] == "killed"
    finally:
        m.cleanup()
    # a daemon that exits before mounting is reported at once
    bad = SshfsMount(b, user_key, str(tmp_path / "bad"))
    bad.argv = lambda: ["sshfs", "-f", "-o", "no_such_option", "-p", str(b.port),
                        "root@127.0.0.1:/workspace", bad.mnt]
    t0 = time.monotonic()
    with pytest.raises(util.MountError, match="exited with"):
        bad.start(timeout=20)
    assert time.monotonic() - t0 < 10
    assert not is_mounted(bad.mnt) and bad.proc is None


def test_hygiene_checker():
    from conftest import Hygiene
    h = Hygiene(False)
    assert h.check("all fine\nvastai: listed 2 instances\n") == []
    assert len(h.check("==1==ERROR: AddressSanitizer: heap-use-after-free")) == 1
    assert len(h.check("x.c:3:5: runtime error: signed integer overflow")) == 1
    assert len(h.check("Aborted (core dumped)")) == 1
    assert len(h.check("warning: ssh: slow box")) == 1
    assert len(h.check("rgtfs: warn: vastai/1: connect refused")) == 1
    h.allow(r"slow box")
    assert h.check("warning: ssh: slow box") == []
    h2 = Hygiene(True)
    assert h2.check("error: API answered 500") == []
    assert len(h2.check("Segmentation fault")) == 1
