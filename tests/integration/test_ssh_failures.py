"""Boxes that cannot be reached, die mid-read, go silent, change host key,
refuse our key, move ports, or have no SFTP subsystem. Reads of uncached data
fail with a clear errno within connect_timeout + io_timeout + slack (never a
hang), the reason is in the instance's .error, the mount stays up, cached
data stays readable, and reads work again when the box does."""

import hashlib
import os
import re
import select
import subprocess

import pytest

import util
from util import ok, run, cat, read_text, wait_until, snapshot, local_snapshot, tree_diff, ls, MIB
from fake_vast import make_instance

pytestmark = pytest.mark.faults

EIO_BOUND = 15.0        # connect_timeout 3 + io_timeout 5 + slack (the contract's bound)
STATUS_WAIT = 6.0

# A reader that reads FIRST bytes, reports, waits for a line on stdin, then
# reads on until EOF or an error, and reports errno, total bytes and time.
READER = r'''
import errno, hashlib, os, sys, time
path, first = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
got = bytearray()
while len(got) < first:
    b = os.read(fd, min(1 << 20, first - len(got)))
    if not b:
        break
    got += b
print("READY %d %s" % (len(got), hashlib.sha256(got).hexdigest()), flush=True)
sys.stdin.readline()
t0 = time.monotonic(); n = len(got); err = "EOF"
try:
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        n += len(b)
except OSError as e:
    err = errno.errorcode.get(e.errno, str(e.errno))
print("%s %d %.3f" % (err, n, time.monotonic() - t0), flush=True)
'''


def _readline(proc, timeout):
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    assert r, "reader said nothing within %.0fs" % timeout
    return proc.stdout.readline().decode()


def _start_reader(path, first):
    return util.spawn([util.PY, "-c", READER, path, str(first)], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _finish_reader(proc, timeout=60):
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        return _readline(proc, timeout).split()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _world_unreachable(fake_api, box_factory, mount_factory, direct, proxy, **cfg):
    """Instance 0 on a healthy box; instance 1 whose endpoints are given."""
    good = box_factory(name="good")
    ids = [51000001, 51000002]
    fake_api.add(make_instance(ids[0], direct_port=good.port, proxy_port=good.port))
    fake_api.add(make_instance(ids[1], direct_port=direct, proxy_port=proxy))
    m = mount_factory(fake_api, **cfg)
    vast = os.path.join(m.mnt, "vastai")
    wait_until(lambda: {str(i) for i in ids} <= ls(vast), STATUS_WAIT)
    return m, good, [os.path.join(vast, str(i)) for i in ids]


def _assert_bounded_failure(path, op="read", want=("EIO",)):
    err, secs = util.op_timed(op, path, timeout=60)
    assert err in want and secs < EIO_BOUND, "%s %s -> %s after %.1fs" % (op, path, err, secs)
    return err


def test_nothing_listening(fake_api, box_factory, mount_factory):
    m, good, (dgood, dbad) = _world_unreachable(fake_api, box_factory, mount_factory,
                                                util.dead_port(), util.dead_port())
    ck = os.path.join(dbad, "checkpoints")
    _assert_bounded_failure(ck, "listdir")
    _assert_bounded_failure(os.path.join(ck, "run-001", "best.pth"), "read")
    err = read_text(os.path.join(dbad, ".error"))
    assert err and re.search(r"refused|unreachable|connect", err, re.I), err
    # the mount and the healthy instance are fine
    assert read_text(os.path.join(dgood, "status")) == "running\n"
    assert tree_diff(snapshot(os.path.join(dgood, "checkpoints")),
                     local_snapshot(os.path.join(good.workspace, "checkpoints"))) == []
    assert read_text(os.path.join(dbad, "status")) == "running\n"   # the API says so


def test_silent_endpoints(fake_api, box_factory, mount_factory):
    """A port that accepts and never speaks SSH: bounded by connect_timeout."""
    s1, s2 = util.SilentServer(), util.SilentServer()
    try:
        m, good, (dgood, dbad) = _world_unreachable(fake_api, box_factory, mount_factory,
                                                    s1.port, s2.port)
        _assert_bounded_failure(os.path.join(dbad, "checkpoints", "run-001", "best.pth"))
        assert read_text(os.path.join(dbad, ".error")) != ""
        assert read_text(os.path.join(dgood, "status")) == "running\n"
    finally:
        s1.stop()
        s2.stop()


@pytest.mark.slow
@pytest.mark.deadline(300)
def test_sshd_killed_mid_read(world):
    w = world()
    size = 160 * MIB
    sha = util.write_big_file(w.box_ck(0, "big", "model.pt"), size, seed=3, mtime=util.BASE_MTIME)
    path = w.ck(0, "big", "model.pt")
    first = 8 * MIB
    reader = _start_reader(path, first)
    ready = _readline(reader, 120).split()
    assert ready[0] == "READY" and int(ready[1]) == first, ready
    with open(w.box_ck(0, "big", "model.pt"), "rb") as f:
        prefix = f.read(first)
    assert ready[2] == hashlib.sha256(prefix).hexdigest()
    w.boxes[0].kill()
    res = _finish_reader(reader)
    err, total, secs = res[0], int(res[1]), float(res[2])
    assert err == "EIO", "read after the box died: %r" % (res,)
    assert secs < EIO_BOUND, "EIO took %.1fs" % secs
    assert total < size
    # the mount is up, and what was read is still there
    assert w.status() == "running\n"
    r = ok("head -c %d %s | sha256sum" % (first, path), timeout=60)
    assert r.text.split()[0] == ready[2]
    assert read_text(w.f(0, ".error")) != ""
    # the box comes back: the whole file reads correctly
    w.boxes[0].start()
    wait_until(lambda: run(["cat", w.ck(0, "run-001", "best_metrics.json")], 30).rc == 0, 20,
               msg="reads work again")
    # that file may come from the cache; the big one needs the box, and a
    # read inside the remote's retry backoff after the failed connects
    # fails fast (by design): poll, bounded, until it reads whole
    r = wait_until(lambda: (lambda x: x.rc == 0 and x)(
        run(["sha256sum", "--", path], timeout=240)), 60, interval=0.5,
        msg="the whole file reads again")
    assert r.text.split()[0] == sha
    wait_until(lambda: read_text(w.f(0, ".error")) == "", STATUS_WAIT, msg=".error cleared")


@pytest.mark.deadline(200)
def test_network_goes_silent_mid_read(fake_api, box_factory, mount_factory):
    """Packets stop flowing (no RST, no FIN): io_timeout bounds the read."""
    b = box_factory()
    size = 64 * MIB
    util.write_big_file(os.path.join(b.workspace, "checkpoints", "big.bin"), size, seed=4,
                        mtime=util.BASE_MTIME)
    px = util.TcpProxy(b.port)
    try:
        fake_api.add(make_instance(52000001, direct_port=px.port, proxy_port=util.dead_port()))
        m = mount_factory(fake_api)
        d = os.path.join(m.mnt, "vastai", "52000001")
        wait_until(lambda: os.path.basename(d) in ls(os.path.join(m.mnt, "vastai")), STATUS_WAIT)
        reader = _start_reader(os.path.join(d, "checkpoints", "big.bin"), 4 * MIB)
        assert _readline(reader, 120).startswith("READY")
        px.blackhole()
        res = _finish_reader(reader)
        assert res[0] == "EIO" and float(res[2]) < EIO_BOUND, res
        assert int(res[1]) < size
        assert read_text(os.path.join(d, "status")) == "running\n"
        assert read_text(os.path.join(d, ".error")) != ""
        px.blackhole(False)
    finally:
        px.stop()


def test_box_down_then_back(world):
    w = world()
    cached = cat(w.ck(0, "run-001", "best_metrics.json"))
    w.boxes[0].kill()
    _assert_bounded_failure(w.ck(0, "run-001", "best.pth"))
    assert cat(w.ck(0, "run-001", "best_metrics.json")) == cached
    assert str(w.ids[0]) in ls(os.path.join(w.mnt, "vastai"))
    w.boxes[0].start()
    wait_until(lambda: run(["cat", w.ck(0, "run-001", "best.pth")], 30).rc == 0, 20,
               msg="reads work again after the box restarted")
    assert cat(w.ck(0, "run-001", "best.pth")) == open(w.box_ck(0, "run-001", "best.pth"), "rb").read()


def test_host_key_changed(world):
    w = world()
    cached = cat(w.ck(0, "run-001", "best_metrics.json"))    # first use: key pinned
    w.boxes[0].recreate()                                     # same id, same port, new key
    _assert_bounded_failure(w.ck(0, "run-001", "best.pth"), want=("EACCES",))
    err = read_text(w.f(0, ".error"))
    assert re.search(r"host key", err, re.I), err
    assert cat(w.ck(0, "run-001", "best_metrics.json")) == cached
    assert w.status() == "running\n"
    # still refused on the next try: no silent re-pinning
    _assert_bounded_failure(w.ck(0, "run-001", "model.safetensors"), want=("EACCES",))


def test_host_key_pin_survives_remount(world):
    w = world()
    cat(w.ck(0, "run-001", "best_metrics.json"))
    assert w.mount.unmount() == 0
    w.boxes[0].recreate()
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in ls(os.path.join(w.mnt, "vastai")), STATUS_WAIT)
    _assert_bounded_failure(w.ck(0, "run-001", "best.pth"), want=("EACCES",))
    assert re.search(r"host key", read_text(w.f(0, ".error")), re.I)


def test_our_key_is_refused(fake_api, box_factory, mount_factory, other_key):
    b = box_factory(keys=[other_key + ".pub"])
    fake_api.add(make_instance(53000001, direct_port=b.port, proxy_port=b.port))
    m = mount_factory(fake_api)
    d = os.path.join(m.mnt, "vastai", "53000001")
    wait_until(lambda: "53000001" in ls(os.path.join(m.mnt, "vastai")), STATUS_WAIT)
    _assert_bounded_failure(os.path.join(d, "checkpoints", "run-001", "best.pth"),
                            want=("EACCES", "EPERM", "EIO"))
    err = read_text(os.path.join(d, ".error"))
    assert re.search(r"auth|denied|publickey|refused", err, re.I), err


def test_direct_dead_proxy_works(fake_api, box_factory, mount_factory):
    b = box_factory()
    px = util.TcpProxy(b.port)
    try:
        fake_api.add(make_instance(54000001, direct_port=util.dead_port(), proxy_port=px.port))
        m = mount_factory(fake_api)
        d = os.path.join(m.mnt, "vastai", "54000001")
        wait_until(lambda: "54000001" in ls(os.path.join(m.mnt, "vastai")), STATUS_WAIT)
        assert tree_diff(snapshot(os.path.join(d, "checkpoints")),
                         local_snapshot(os.path.join(b.workspace, "checkpoints"))) == []
        assert px.connections >= 1
        assert cat(os.path.join(d, "log")) == open(os.path.join(b.workspace, "train.log"), "rb").read()
    finally:
        px.stop()


def test_no_sftp_subsystem_exec_fallback(world):
    w = world(sftp=False)
    assert tree_diff(snapshot(w.ck(0)), local_snapshot(w.box_ck(0))) == []
    assert cat(w.f(0, "log")) == open(os.path.join(w.boxes[0].workspace, "train.log"), "rb").read()
    ok(["rsync", "-a", w.ck(0) + "/", os.path.join(w.mount.workdir, "copy") + "/"], timeout=120)
    assert tree_diff(local_snapshot(os.path.join(w.mount.workdir, "copy")),
                     local_snapshot(w.box_ck(0))) == []


def test_box_moves_to_a_new_port(world):
    """Re-created boxes get new ports; rgtfs takes endpoints from every poll."""
    w = world()
    cat(w.ck(0, "run-001", "best_metrics.json"))
    new_port = util.free_port()
    w.boxes[0].restart(port=new_port)
    w.api.set_endpoints(w.ids[0], direct_port=new_port, proxy_port=new_port)
    wait_until(lambda: read_text(w.f(0, "ssh")) == "ssh -p %d root@127.0.0.1\n" % new_port,
               STATUS_WAIT, msg="ssh file shows the new port")
    wait_until(lambda: run(["cat", w.ck(0, "run-001", "best.pth")], 30).rc == 0, 20,
               msg="reads work on the new port")
    assert cat(w.ck(0, "run-001", "best.pth")) == open(w.box_ck(0, "run-001", "best.pth"), "rb").read()
