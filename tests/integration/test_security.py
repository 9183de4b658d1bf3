"""The security promises of issue 11 ("Security, each with a test"), checked
from outside the mount. TLS verification has its own file (test_api_tls.py).

Host keys
- A changed host key for a known instance is refused: reads EACCES with the
  reason in .error, and an rmdir attempted then refuses before any destroy
  (test_ssh_failures.py has the read side and the pin across a remount).
- strict_host_keys = yes accepts only keys in ~/.ssh/known_hosts: no file or
  another key there is refused, the box's own key works (both transports).
- The first-use record cannot be raced. The pin is a put-if-absent in one
  LMDB write transaction (cache/remote.c remote_pin_hostkey,
  cache/store.c store_meta_put_new); a check-then-write would let two first
  connects that are offered different keys both "win". The test makes that
  happen: a proxy holds the first connections until several have arrived,
  then sends them alternately to two sshds with different keys (and
  different bytes behind the same names). Then: every read that worked
  returned one box's bytes, the other box never saw a login, and exactly
  one key is recorded. Once inside one mount (threads), once with several
  processes on one store (rgtfs-xfer -P, as two programs on one cache).

Users
- The mount is private by default: another uid cannot even stat it.
- With allow_other another uid reads status, checkpoints and archive/, but
  rmdir of anything (an instance: teardown, an archive: delete, the tree's
  own directories) is refused, the fake API gets no DELETE and the archive
  is still there (test_teardown.py has the instance half).

Secrets (API key, the tokens in instance objects, an S3 secret key, an SSH
password): in no file of the mount, not in the daemon's log at debug level,
not in any file of the cache directory (data.mdb, lock.mdb, the OpenSSH
transport's state dir), not in the environment or argv of any child rgtfs
starts (ssh, ssh-keyscan: logged by wrappers on PATH and by a /proc scan of
the daemon's children), and not in a core dump: gcore of the running daemon
finds the API key in memory (it must be there to be sent), so the daemon
must not be dumpable (prctl PR_SET_DUMPABLE 0) or must have RLIMIT_CORE 0.

Names (test_names.py has the tree side in full): hostile names on the box
are shown by the tree, rostered and refused by the teardown, and archived,
the same way name by name and byte by byte.
"""

import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

import util
from util import (BASE_MTIME, cat, ls, local_snapshot, op_errno, op_errno_as, read_text,
                  run, snapshot, tree_diff, wait_until)
from fake_vast import SECRET_MARK, make_instance, secret_values
from s3server import installed as s3_installed, start_s3
from test_names import HOSTILE, _make_names
from test_teardown import (NOBODY, RMDIR_TIMEOUT, TD_CFG, _archived, archive,
                           assert_nothing_destroyed, assert_still_listed, box_state,
                           deletes_for, regular_files, rmdir, teardown_report, td_world,
                           vastai)

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
DENIED = ("EACCES", "EPERM")


def store_lines(store_tool, cache, *cmd):
    r = run([store_tool, "-c", cache] + list(cmd), timeout=30)
    assert r.rc == 0, r
    return r.text.splitlines()


def logins(box):
    """Logins the box's sshd accepted (its own log)."""
    try:
        with open(box.log, errors="replace") as f:
            return f.read().count("Accepted publickey")
    except OSError:
        return 0


def connections(box):
    try:
        with open(box.log, errors="replace") as f:
            return f.read().count("Connection from ")
    except OSError:
        return 0


def known_hosts_line(box):
    return "[%s]:%d %s\n" % (box.host, box.port, " ".join(box.host_pubkey().split()[:2]))


# ---- a proxy that makes first connects race -------------------------------------

class BarrierProxy:
    """127.0.0.1:port -> backends[0], backends[1], ... in turn, one per
    connection. The first connections are held (no byte moves) until `n`
    have arrived or `hold` seconds passed since the first, then released
    together: their SSH handshakes, host-key checks and first-use records
    run at the same time. `held` is how many were released together."""

    def __init__(self, backends, n, hold):
        self.backends, self.n, self.hold = list(backends), n, hold
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.held = 0
        self.per_backend = [0] * len(self.backends)
        self._next = 0
        self._rnd = random.Random(20250730)
        self._stop = threading.Event()
        self._socks = []
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _forward(self, c, released_together):
        # the held ones strictly in turn; later ones at random (seeded), so
        # that a transport making two connections per session (ssh-keyscan,
        # then ssh) is not always split across the boxes
        if released_together:
            i = self._next % len(self.backends)
            self._next += 1
        else:
            i = self._rnd.randrange(len(self.backends))
        self.per_backend[i] += 1
        try:
            u = socket.create_connection(("127.0.0.1", self.backends[i]), timeout=5)
        except OSError:
            c.close()
            return
        with self._lock:
            self._socks += [c, u]
        threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, a, b):
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([a, b], [], [], 0.1)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def _run(self):
        pending, first = [], None
        released = False
        while not self._stop.is_set():
            r, _, _ = select.select([self.lsock], [], [], 0.02)
            if r:
                try:
                    c, _ = self.lsock.accept()
                except OSError:
                    continue
                if released:
                    self._forward(c, False)
                    continue
                pending.append(c)
                first = first or time.monotonic()
            if not released and pending and (len(pending) >= self.n or
                                             time.monotonic() - first >= self.hold):
                released = True
                self.held = len(pending)
                for c in pending:
                    self._forward(c, True)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        self.lsock.close()
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def barrier():
    made = []

    def make(backends, n, hold):
        p = BarrierProxy(backends, n, hold)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def two_key_boxes(box_factory, nfiles):
    """Boxes A and B: different host keys, the same names, sizes and mtimes
    under checkpoints/, different bytes (each file is its box's letter)."""
    boxes = []
    for tag in (b"A", b"B"):
        b = box_factory(name="key" + tag.decode(), populate=False)
        for i in range(nfiles):
            util.write_file(os.path.join(b.workspace, "checkpoints", "f%d.bin" % i),
                            tag * (4096 + i), BASE_MTIME + i)
        util.write_file(os.path.join(b.workspace, "whoami"), tag, BASE_MTIME)
        util.write_file(os.path.join(b.workspace, "train.log"), b"log " + tag + b"\n",
                        BASE_MTIME)
        boxes.append(b)
    assert boxes[0].host_key_fingerprint() != boxes[1].host_key_fingerprint()
    return boxes


# ---- host keys ------------------------------------------------------------------------

@pytest.mark.faults
def test_changed_host_key_is_refused_and_the_teardown_refuses(world, store_tool):
    w = td_world(world)
    iid = w.ids[0]
    box = w.boxes[0]
    fp1 = box.host_key_fingerprint()
    cached = cat(w.ck(0, "run-001", "best_metrics.json"))          # first use: pinned
    box.recreate()                                                  # same id and port
    assert box.host_key_fingerprint() != fp1
    err = op_errno("read", w.ck(0, "run-001", "best.pth"), timeout=60)
    assert err == "EACCES", err
    why = read_text(w.f(0, ".error"))
    assert re.search(r"host key changed", why, re.I), why
    assert box.host_key_fingerprint() in why, why          # the key it refused
    assert cat(w.ck(0, "run-001", "best_metrics.json")) == cached  # the cache still serves
    before = box_state(w)
    logins_before = logins(box)
    err = rmdir(w)
    rep = teardown_report(w)
    assert err != "OK", "rmdir of a box whose host key changed succeeded:\n%s" % rep
    assert err in ("EACCES", "EPERM", "EHOSTUNREACH", "EIO"), (err, rep)
    assert rep.startswith("refused:") and re.search(r"host key", rep, re.I), rep
    assert_nothing_destroyed(w, before)
    assert str(iid) not in _archived(w)
    assert logins(box) == logins_before, "rgtfs logged in to the box with the new key"
    # the pin is still the first key, and it is the only one
    assert w.mount.unmount() == 0
    pins = [l for l in store_lines(store_tool, w.mount.cache, "hostkeys")
            if l.startswith("vastai/%d\t" % iid)]
    assert len(pins) == 1 and fp1 in pins[0], pins


@pytest.mark.faults
@pytest.mark.parametrize("transport", ["libssh2", "openssh"])
def test_strict_host_keys_accepts_only_known_hosts(world, box_factory, store_tool,
                                                   transport):
    w = world(extra_vastai={"strict_host_keys": "yes", "transport": transport})
    box = w.boxes[0]
    path = w.ck(0, "run-001", "best_metrics.json")
    want = open(w.box_ck(0, "run-001", "best_metrics.json"), "rb").read()
    home = w.mount.env["HOME"]
    kh = os.path.join(home, ".ssh", "known_hosts")
    assert not os.path.exists(kh)

    # no ~/.ssh/known_hosts: refused, and nothing trusted on first use
    assert op_errno("read", path) == "EACCES"
    why = read_text(w.f(0, ".error"))
    assert "known_hosts" in why and box.host_key_fingerprint() in why, why
    assert logins(box) == 0

    # another box's key for this host:port: refused
    other = box_factory(name="other", populate=False, start=False)
    os.makedirs(os.path.dirname(kh), mode=0o700)
    with open(kh, "w") as f:
        f.write("[%s]:%d %s\n" % (box.host, box.port,
                                  " ".join(other.host_pubkey().split()[:2])))
    # a fresh connect judges the new file (a failure is remembered for a
    # connect timeout): read until the box has seen another connection
    conns = connections(box)
    wait_until(lambda: op_errno("read", path) == "EACCES" and connections(box) > conns,
               15, interval=0.3, msg="a new connect was refused")
    assert logins(box) == 0, "strict_host_keys logged in with a key not in known_hosts"

    # the box's own key: works, within a bounded wait
    with open(kh, "a") as f:
        f.write(known_hosts_line(box))
    wait_until(lambda: run(["cat", path], 30).rc == 0, 15, interval=0.3,
               msg="read works once the key is in known_hosts")
    assert cat(path) == want
    assert logins(box) >= 1
    # strict mode trusts known_hosts, it records nothing of its own
    assert w.mount.unmount() == 0
    assert not [l for l in store_lines(store_tool, w.mount.cache, "hostkeys")
                if l.startswith("vastai/%d\t" % w.ids[0])]


@pytest.mark.faults
@pytest.mark.parametrize("transport", ["libssh2", "openssh"])
def test_first_use_pin_race_in_one_mount(box_factory, fake_api, mount_factory, barrier,
                                         store_tool, transport):
    n = 8
    a, b = two_key_boxes(box_factory, n)
    px = barrier([a.port, b.port], n=4, hold=1.5)
    iid = 61000001
    fake_api.add(make_instance(iid, direct_port=px.port, proxy_port=px.port))
    m = mount_factory(fake_api, connect_timeout=5, extra_vastai={"transport": transport},
                      extra_rgtfs={"sessions": 8})
    d = os.path.join(m.mnt, "vastai", str(iid))
    wait_until(lambda: str(iid) in ls(os.path.join(m.mnt, "vastai")), 10, msg="listed")
    # n cold first reads at once, each of another file
    procs = [util.spawn(["cat", os.path.join(d, "checkpoints", "f%d.bin" % i)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    procs.append(util.spawn(["cat", os.path.join(d, "log")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    got = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        got.append((p.returncode, out, err))
    served = {out[:1] for rc, out, _ in got[:n] if rc == 0}
    failed = [err for rc, _, err in got if rc != 0]
    assert len(served) <= 1, "reads served by both boxes: %r" % served
    for e in failed:
        assert re.search(br"Permission denied|Input/output error|timed out", e), failed
    winner_tag = served.pop() if served else None
    for i, (rc, out, _) in enumerate(got[:n]):
        if rc == 0:
            assert out == winner_tag * (4096 + i), i
    # the box that lost never saw a login (libssh2: the key is judged and
    # recorded before authentication; OpenSSH proves the key by logging in)
    if transport == "libssh2":
        assert min(logins(a), logins(b)) == 0, (logins(a), logins(b), px.held)
    assert m.unmount() == 0
    pins = [l for l in store_lines(store_tool, m.cache, "hostkeys")
            if l.startswith("vastai/%d\t" % iid)]
    assert len(pins) <= 1, pins
    if not pins:
        assert winner_tag is None, "served without a key recorded"
    else:
        winner = a if a.host_key_fingerprint() in pins[0] else b
        assert winner.host_key_fingerprint() in pins[0], pins
        assert winner_tag in (None, b"A" if winner is a else b"B"), (winner_tag, pins)
        if transport == "libssh2":
            assert logins(b if winner is a else a) == 0


@pytest.mark.faults
@pytest.mark.parametrize("transport", ["libssh2", "openssh"])
def test_first_use_pin_race_between_processes(box_factory, barrier, rgtfs_bin, user_key,
                                              store_tool, tmp_path, transport):
    """Several programs on one cache (rgtfs-xfer -P: remote.c on a kept
    store) pin the same box at the same moment, offered different keys."""
    xfer = os.path.join(os.path.dirname(rgtfs_bin), "tools", "rgtfs-xfer")
    k = 6
    a, b = two_key_boxes(box_factory, 1)
    px = barrier([a.port, b.port], n=k, hold=4.0)
    store = str(tmp_path / "store")
    os.makedirs(store, mode=0o700)
    # the store exists before the race (as a mounted cache does)
    r = run([xfer, "-T", transport, "-k", user_key, "-u", "root", "-p", "1",
             "-c", "500", "-t", "1000", "-D", "2000", "-P", store, "127.0.0.1",
             "exec", "true"], timeout=30)
    assert os.path.exists(os.path.join(store, "data.mdb")), r
    argv = [xfer, "-T", transport, "-k", user_key, "-u", "root", "-p", str(px.port),
            "-c", "10000", "-t", "5000", "-D", "20000", "-P", store, "127.0.0.1",
            "exec", "cat /workspace/whoami"]
    procs = [util.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(k)]
    got = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    assert px.held >= 2, "the first connects did not overlap (%d)" % px.held
    served = {out for out, _, rc in got if rc == 0}
    assert len(served) <= 1, "processes were served by both boxes: %r" % (got,)
    for out, err, rc in got:
        if rc != 0:          # refused by remote.c's pin, or by ssh's own check
            # (its first line that says something, past the banner of @)
            assert re.search(br"host key changed|IDENTIFICATION HAS CHANGED|"
                             br"Host key verification failed|"
                             br"exec: Permission denied", err), err
            assert not re.search(br"failed: @{20}", err), err
    pins = store_lines(store_tool, store, "hostkeys")
    assert len(pins) <= 1, "more than one key recorded: %r" % pins
    if not pins:
        assert not served, got
        return
    winner = a if a.host_key_fingerprint() in pins[0] else b
    assert winner.host_key_fingerprint() in pins[0], pins
    loser = b if winner is a else a
    assert served <= {b"A" if winner is a else b"B"}, (served, pins)
    if transport == "libssh2":
        # libssh2 checks (and records) the key before it authenticates; one
        # connection per process, so someone won
        assert logins(loser) == 0, "the box whose key lost the race saw a login"
        assert served, got
    # (OpenSSH logs in first and records the key it proved after: the box
    # that lost may see a public-key login, then its session is refused
    # before any read: served above holds only the winner's bytes)


# ---- other users ---------------------------------------------------------------------

@pytest.mark.faults
def test_mount_is_private_by_default(public_dir, world):
    w = world(mnt=os.path.join(public_dir, "mnt"))
    assert os.stat(public_dir).st_mode & 0o005 == 0o005
    for p in (w.mnt, os.path.join(w.mnt, "vastai"), w.idir(0), w.f(0, "status")):
        assert op_errno_as(NOBODY, "stat", p) in DENIED, p
    assert op_errno_as(NOBODY, "read", w.f(0, "status")) in DENIED
    assert op_errno_as(NOBODY, "listdir", w.mnt) in DENIED
    assert op_errno_as(NOBODY, "rmdir", w.idir(0)) in DENIED
    r = run(AS_NOBODY + ["cat", w.ck(0, "run-001", "best_metrics.json")], timeout=30)
    assert r.rc != 0 and not r.out, r
    # the owner is not affected, and nothing was destroyed
    assert w.status() == "running\n"
    assert w.api.deletes() == [] and w.api.mutations() == []


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_allow_other_reads_but_cannot_rmdir_anything(public_dir, world):
    w = td_world(world, n=2, extra_args=["-o", "allow_other"],
                 mnt=os.path.join(public_dir, "mnt"))
    # the owner tears instance 1 down: it becomes an archive
    assert rmdir(w, 1) == "OK", teardown_report(w, 1)
    assert len(w.api.deletes()) == 1
    arch = archive(w, 1)
    wait_until(lambda: str(w.ids[1]) in _archived(w), 10, msg="archived")
    arch_want = regular_files(snapshot(os.path.join(arch, "checkpoints")))
    before = box_state(w, 0)

    # nobody reads: status, a checkpoint, the archive
    r = run(AS_NOBODY + ["cat", w.f(0, "status")], timeout=30)
    assert r.rc == 0 and r.text == "running\n", r
    f = w.ck(0, "run-001", "best.pth")
    r = run(AS_NOBODY + ["cat", f], timeout=60)
    assert r.rc == 0 and r.out == open(w.box_ck(0, "run-001", "best.pth"), "rb").read()
    af = os.path.join(arch, "checkpoints", "run-001", "best_metrics.json")
    r = run(AS_NOBODY + ["cat", af], timeout=30)
    assert r.rc == 0 and r.out == cat(af), r

    # ... and cannot rmdir anything
    targets = [w.idir(0), arch, w.ck(0), w.ck(0, "run-001"), w.ck(0, "empty-dir"),
               os.path.join(arch, "checkpoints"), os.path.join(arch, "checkpoints", "run-001"),
               vastai(w), os.path.join(w.mnt, "archive", "vastai"),
               os.path.join(w.mnt, "archive"), os.path.join(w.mnt, ".rgtfs")]
    for t in targets:
        assert op_errno_as(NOBODY, "rmdir", t, timeout=RMDIR_TIMEOUT) in DENIED, t
    for t in (w.idir(0), arch):
        r = run(["runuser", "-u", "nobody", "--", "rm", "-rf", t], timeout=RMDIR_TIMEOUT)
        assert r.rc != 0, r
        r = run(AS_NOBODY + [util.PY, "-c", "import shutil,sys; shutil.rmtree(sys.argv[1])",
                             t], timeout=RMDIR_TIMEOUT)
        assert r.rc != 0, r

    # nothing destroyed, nothing deleted
    assert len(w.api.deletes()) == 1, w.api.deletes()
    assert [x["method"] for x in w.api.mutations()] == ["DELETE"]
    assert deletes_for(w.api, w.ids[0]) == []
    assert_still_listed(w, 0)
    assert box_state(w, 0) == before
    assert teardown_report(w, 0) in ("",) or teardown_report(w, 0).startswith("refused:")
    assert str(w.ids[1]) in _archived(w)
    assert regular_files(snapshot(os.path.join(arch, "checkpoints"))) == arch_want


# ---- secrets -------------------------------------------------------------------------

WRAPPER = r'''#!/bin/sh
# records what rgtfs gave this child (argv, environment), then runs the real one
cp /proc/$$/cmdline "%(log)s/$$.%(name)s.cmdline" 2>/dev/null
cp /proc/$$/environ "%(log)s/$$.%(name)s.environ" 2>/dev/null
exec %(real)s "$@"
'''


def ppid_of(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            st = f.read()
        return int(st[st.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class ChildScan:
    """Records argv and environment of every process whose parent is @pid,
    polling /proc (this kernel has no /proc/PID/task/TID/children)."""

    def __init__(self, pid):
        self.pid = pid
        self.seen = {}          # pid -> (cmdline, environ)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            for d in os.listdir("/proc"):
                if not d.isdigit() or int(d) in self.seen:
                    continue
                if ppid_of(int(d)) != self.pid:
                    continue
                try:
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        cmd = f.read()
                    with open("/proc/%s/environ" % d, "rb") as f:
                        env = f.read()
                except OSError:
                    continue
                if cmd:
                    self.seen[int(d)] = (cmd, env)
            self._stop.wait(0.01)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=10)


def grep_tree(root, secrets, timeout=120):
    """Files under @root (any byte) that hold one of @secrets; run as a child."""
    pats = []
    for s in secrets:
        pats += ["-e", s]
    r = run(["grep", "-r", "-a", "-l", "-F"] + pats + ["--", root], timeout=timeout)
    assert not r.timed_out, r
    assert r.rc in (0, 1), r
    return r.text.splitlines()


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_no_secret_in_mount_log_cache_or_children(box_factory, fake_api, mount_factory,
                                                  tmp_path):
    token = os.urandom(8).hex()
    pw = "box-pw-" + token
    s3_secret = "s3-secret-" + token
    box = box_factory()
    iid = 62000001
    fake_api.add(make_instance(iid, direct_port=box.port, proxy_port=box.port))
    secrets = [fake_api.api_key, pw, SECRET_MARK] + secret_values(fake_api.get(iid))

    # wrappers for the children the OpenSSH transport starts
    wdir, logd = str(tmp_path / "wrap"), str(tmp_path / "childlog")
    os.makedirs(wdir)
    os.makedirs(logd)
    for name in ("ssh", "ssh-keyscan"):
        p = os.path.join(wdir, name)
        with open(p, "w") as f:
            f.write(WRAPPER % {"log": logd, "name": name, "real": shutil.which(name)})
        os.chmod(p, 0o755)

    s3 = None
    sections = {}
    if s3_installed():
        s3cm = start_s3(tmp_path, access_key="AKIASEC" + token[:8].upper(),
                        secret_key=s3_secret)
        s3 = s3cm.__enter__()
        s3.make_bucket("ckpts")
        s3.put("ckpts", "notes/hello.txt", b"hello bucket\n")
        sections = {"[cloud:ckpt]": {"endpoint": s3.endpoint, "region": "us-east-1",
                                     "bucket": "ckpts", "access_key_env": "SEC_AK",
                                     "secret_key_env": "SEC_SK"}}
        secrets.append(s3_secret)
    try:
        m = mount_factory(fake_api, start=False, extra_args=["-d"],
                          extra_vastai=dict(TD_CFG["extra_vastai"], transport="openssh",
                                            password_env="BOX_PW"),
                          extra_sections=sections)
        m.env.update(BOX_PW=pw, RGTFS_DEBUG="1",
                     PATH=wdir + ":" + m.env.get("PATH", "/usr/bin:/bin"))
        if s3:
            m.env.update(SEC_AK=s3.access_key, SEC_SK=s3_secret)
        m.start()
        scan = ChildScan(m.pid)
        try:
            d = os.path.join(m.mnt, "vastai", str(iid))
            wait_until(lambda: str(iid) in ls(os.path.join(m.mnt, "vastai")), 10,
                       msg="listed")
            # use every part of the tree once
            for f in ("status", "status_msg", "info.json", "ssh", "log", "teardown"):
                cat(os.path.join(d, f))
            for f in ("fleet.tsv", "fleet.json"):
                cat(os.path.join(m.mnt, f))
            ok_ = util.ok(["cp", "-a", os.path.join(d, "checkpoints"),
                           str(tmp_path / "copy")], timeout=120)
            assert ok_.rc == 0
            if s3:
                assert cat(os.path.join(m.mnt, "cloud", "ckpt", "notes", "hello.txt")) \
                    == b"hello bucket\n"
            # the teardown: sha256sum over exec channels (more ssh children)
            assert op_errno("rmdir", d, timeout=RMDIR_TIMEOUT) == "OK", \
                read_text(os.path.join(d, "teardown"))
            wait_until(lambda: str(iid) in ls(os.path.join(m.mnt, "archive", "vastai")),
                       10, msg="archived")
            for sub in ("", ".rgtfs"):
                for n in ls(os.path.join(m.mnt, sub) if sub else m.mnt):
                    p = os.path.join(m.mnt, sub, n)
                    if run(["test", "-f", p], 10).rc == 0:
                        cat(p)
            # 1. any file of the mount, archive/, .rgtfs/, fleet.* included
            found = grep_tree(m.mnt, secrets)
            assert found == [], "secret in files of the mount: %r" % found
        finally:
            scan.stop()
        assert m.unmount() == 0
    finally:
        if s3:
            s3cm.__exit__(None, None, None)

    # 2. the daemon's log, at debug level (-d and RGTFS_DEBUG=1)
    log = m.read_log()
    assert "trusting host key" in log and re.search(r"(?m)debug", log), \
        "the log is not at debug level"
    for s in secrets:
        assert s not in log, "secret %r in the daemon's log" % s[:12]
    # 3. every file in the cache dir (data.mdb, lock.mdb, ssh/ state dir)
    assert os.path.exists(os.path.join(m.cache, "data.mdb"))
    found = grep_tree(m.cache, secrets)
    assert found == [], "secret in cache files: %r" % found
    # 4. argv and environment of every child: wrappers and the /proc scan
    recs = {}
    for n in os.listdir(logd):
        pid, name, kind = n.split(".")
        with open(os.path.join(logd, n), "rb") as f:
            recs.setdefault((pid, name), {})[kind] = f.read()
    names = {name for _, name in recs}
    assert {"ssh", "ssh-keyscan"} <= names, "no ssh children recorded: %r" % names
    blobs = [(k, v.get("cmdline", b"") + b"\0" + v.get("environ", b""))
             for k, v in recs.items()]
    exec_d = {pid: ce for pid, ce in scan.seen.items()
              if ce[0].split(b"\0")[0] != m.binary.encode()}
    # (a child caught between posix_spawn's clone and its exec still shows
    # the daemon's own argv and environment: not a child's)
    blobs += [((pid, cmd.split(b"\0")[0].decode(errors="replace")), cmd + b"\0" + env)
              for pid, (cmd, env) in exec_d.items()]
    assert exec_d, "the /proc scan saw no child of rgtfs: %r" % (
        [c.split(b"\0")[0] for c, _ in scan.seen.values()],)
    for who, blob in blobs:
        for s in secrets:
            assert s.encode() not in blob, "secret %r in argv/env of child %r" % (s[:12], who)
        for var in (b"VAST_API_KEY=", b"BOX_PW=", b"SEC_SK=", b"SEC_AK="):
            assert var not in blob, "%r in the environment of child %r" % (var, who)


def _not_dumpable(pid):
    """Why the kernel would write no core for @pid (RLIMIT_CORE 0, or not
    dumpable: prctl(PR_GET_DUMPABLE) asked through gdb), or None."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size") and line.split()[4] == "0":
                return "RLIMIT_CORE 0"
    r = run(["gdb", "-nx", "-batch", "-p", str(pid), "-ex",
             "print ((int(*)(int,long,long,long,long))prctl)(3,0,0,0,0)"], timeout=60)
    m = re.search(r"^\$1 = (-?\d+)$", r.text, re.M)
    assert m, "gdb could not ask PR_GET_DUMPABLE: %r" % (r,)
    return "not dumpable" if m.group(1) == "0" else None


@pytest.mark.faults
@pytest.mark.deadline(180)
def test_no_secret_in_a_core_dump(world, tmp_path, hygiene):
    """The API key is in the daemon's memory (it must be, to be sent), so a
    crash must not leave a core file with it: the daemon is not dumpable,
    its core limit is 0, and a SIGQUIT (whose default is a core) writes none."""
    hygiene.allow(r".")
    pw = "core-pw-" + os.urandom(8).hex()
    w = world(mount=False, extra_vastai={"password_env": "BOX_PW"})
    w.mount.env["BOX_PW"] = pw
    # the daemon starts with cores allowed (this machine's default may be
    # 0): whatever keeps its core from being written is rgtfs's own doing
    old = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                              resource.RLIM_INFINITY))
    try:
        w.mount.start()
        probe = util.spawn(["sleep", "60"])
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, old)
    wait_until(lambda: str(w.ids[0]) in ls(vastai(w)), 10, msg="listed")
    cat(w.ck(0, "run-001", "best_metrics.json"))
    cat(w.f(0, "info.json"))
    # a sanity check of the probe itself: a plain process is dumpable
    try:
        assert _not_dumpable(probe.pid) is None, "the dumpability probe is broken"
    finally:
        util.stop_child(probe)
    assert _not_dumpable(w.mount.pid), ("the daemon can dump core (dumpable, "
                                        "RLIMIT_CORE not 0)")
    # and a real crash writes none (core_pattern here: "core", in the cwd);
    # gcore is not used: a debugger reads any memory, and an ASan build's
    # shadow would make its core terabytes (sparse) on the disk
    cwd = os.readlink("/proc/%d/cwd" % w.mount.pid)
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    before = set(os.listdir(cwd))
    os.kill(w.mount.pid, signal.SIGQUIT)     # default action: a core (ASan handles SEGV)
    w.mount._wait_exit(30)
    w.mount.exit_codes.append("killed")
    w.mount.proc = None
    run(["fusermount3", "-u", "-z", w.mnt], timeout=10)
    wait_until(lambda: not util.is_mounted(w.mnt), 10, msg="dead mount gone")
    if not pattern.startswith("|") and "/" not in pattern:
        new_files = [f for f in set(os.listdir(cwd)) - before if f.startswith("core")]
        assert not new_files, "a crash of rgtfs wrote %r in %s" % (new_files, cwd)


# ---- names ---------------------------------------------------------------------------

MORE_NAMES = [b" leading space", b"trailing space ", b"-rf", b"$(x)", b"--help",
              b"nul\\0-looking", b"\x1b[2Jescape", b"\xc3\x28 bad utf8 pair"]


def _manifest_names(man):
    out = set()
    for f in man["files"]:
        p = bytes.fromhex(f["path_hex"]) if "path_hex" in f else f["path"].encode()
        out.add(p[len(b"checkpoints/"):] if p.startswith(b"checkpoints/") else p)
    return out


@pytest.mark.faults
@pytest.mark.deadline(240)
def test_hostile_names_same_in_tree_teardown_and_archive(world):
    w = td_world(world, populate=False, mount=False)
    ck = w.box_ck(0)
    root = _make_names(ck)
    # the names of test_names.py, with contents the load checks accept
    for i, n in enumerate(HOSTILE):
        p = os.path.join(os.fsencode(root), n)
        if n.endswith((b".pt", b".pth", b".ckpt")):
            util.torch_like_zip(os.fsdecode(p), 4000, seed=i, mtime=BASE_MTIME + i)
        elif n.endswith(b".json"):
            util.write_file(p, b'{"name": %d}\n' % i, BASE_MTIME + i)
    for i, n in enumerate(MORE_NAMES):
        util.write_file(os.path.join(root, n), util.pattern_bytes(700 + i, 100 + i),
                        BASE_MTIME + 100 + i)
    util.write_file(os.path.join(ck, "train.txt"), b"x\n", BASE_MTIME)
    # a symlink pointing out of the checkpoint dir, under a hostile name
    link = os.path.join(os.fsencode(root), b"out\nlink \xff")
    os.symlink(b"../../../../etc/passwd", link)
    os.utime(ck, (BASE_MTIME, BASE_MTIME))
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in ls(vastai(w)), 10, msg="listed")

    # 1. the tree: every name exactly as on the box; the symlink is not
    # served at all (cache/remote.c: symlinks, sockets, ...: not served)
    tree = snapshot(w.ck(0))
    box = local_snapshot(ck)
    lrel = os.path.join(b"names", b"out\nlink \xff")
    assert stat.S_ISLNK(box[lrel]["mode"])
    assert lrel not in tree
    del box[lrel]
    assert tree_diff(tree, box) == []
    assert all(os.path.join(b"names", n) in tree for n in HOSTILE + MORE_NAMES)
    r = run(["cat", os.path.join(w.ck(0), os.fsdecode(os.path.join(b"names", b"out\nlink \xff")))],
            timeout=30)
    assert b"root:" not in r.out, "the symlink served a file outside the checkpoint dir"

    # 2. the teardown refuses the symlink, naming it the way its tools escape
    before = box_state(w)
    err = rmdir(w)
    rep = teardown_report(w)
    assert err == "EINVAL", (err, rep)
    assert rep.startswith("refused:"), rep
    assert "out\\nlink \\xff" in rep or "out\\x0alink \\xff" in rep, rep
    assert "\x1b" not in rep and "\nlink" not in rep
    assert_nothing_destroyed(w, before)

    # 3. without it: the teardown archives every other name, the same bytes
    os.unlink(link)
    err = rmdir(w)
    assert err == "OK", teardown_report(w)
    a = archive(w)
    arch = snapshot(os.path.join(a, "checkpoints"))
    assert regular_files(arch) == regular_files(box), "\n".join(
        tree_diff(arch, box))
    man = json.loads(cat(os.path.join(a, "PULL_MANIFEST.json")))
    assert _manifest_names(man) == set(regular_files(box)), \
        set(regular_files(box)) ^ _manifest_names(man)
    # every name reads back through the archive by name
    for n in HOSTILE + MORE_NAMES:
        p = os.path.join(os.fsencode(a), b"checkpoints", b"names", n)
        assert cat(os.fsdecode(p)) == open(os.path.join(os.fsencode(root), n), "rb").read(), n
    assert len(deletes_for(w.api, w.ids[0])) == 1
