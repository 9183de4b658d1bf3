"""tools/rgtfs-top without a mount: a temp dir with a fixture fleet.json
stands in for MOUNTPOINT (the shape fs/ publishes as MOUNT/fleet.json).

Checks the -1 output (plain when piped), every --sort, the $/h sum with
unknown prices counted, human sizes, colour only on a terminal, and the
clear failures: a missing, invalid or hanging fleet.json.
"""

import json
import os
import pty
import select
import subprocess
import time

import pytest

import util
from conftest import new_ids
from fake_vast import make_instance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOP = os.path.join(REPO, "tools", "rgtfs-top")

FLEET = {
    "generated_at": 1764680000,
    "instances": [
        {"platform": "vastai", "id": "10", "status": "running", "gpu": "RTX 4090",
         "gpus": 1, "usd_per_hour": 0.3866, "uptime_s": 11000,
         "checkpoint_bytes": 3 * 1024 ** 3, "cached_bytes": 100, "teardown": None},
        {"platform": "vastai", "id": "9", "status": "destroying", "gpu": "H100",
         "gpus": 8, "usd_per_hour": 20.5, "uptime_s": 90000,
         "checkpoint_bytes": 1536, "cached_bytes": 1536, "teardown": None},
        {"platform": "runpod", "id": "abc", "status": "stopped", "gpu": "A100",
         "gpus": 2, "usd_per_hour": 0.38, "uptime_s": 500,
         "checkpoint_bytes": None, "cached_bytes": None, "teardown": None},
        {"platform": "ssh", "id": "box\nevil", "status": "gone", "gpu": None, "gpus": None,
         "usd_per_hour": None, "uptime_s": None, "checkpoint_bytes": 5,
         "cached_bytes": 5, "teardown": "destroyed after a verified copy"},
    ],
    "usd_per_hour_total": 21.2666,
}


def mountpoint(tmp_path, doc=FLEET, raw=None):
    d = tmp_path / "mnt"
    d.mkdir(exist_ok=True)
    (d / "fleet.json").write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return str(d)


def top(*args, timeout=30, env=None):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    return subprocess.run([TOP] + list(args), capture_output=True, timeout=timeout,
                          env=e, stdin=subprocess.DEVNULL)


def rows_of(out):
    """(platform, id) of each table row, in order."""
    lines = out.decode().splitlines()
    assert lines[0].split()[:3] == ["PLATFORM", "ID", "STATUS"], lines
    body = lines[1:lines.index("")]
    return [tuple(ln.split()[:2]) for ln in body]


def test_executable_python3_stdlib_script():
    assert os.access(TOP, os.X_OK)
    with open(TOP) as f:
        assert f.readline().rstrip("\n") == "#!/usr/bin/python3"


def test_once_prints_plain_table_sorted_by_platform_then_id(tmp_path):
    r = top("-1", mountpoint(tmp_path))
    assert r.returncode == 0, r
    assert b"\033" not in r.stdout, "colour while piped"
    assert rows_of(r.stdout) == [("runpod", "abc"), ("ssh", "box\\x0aevil"),
                                 ("vastai", "9"), ("vastai", "10")]
    text = r.stdout.decode()
    # 4 rows, 3 priced, unknown excluded: 0.3866 + 20.5 + 0.38
    assert "4 instances, 3 priced: $21.27/h" in text, text
    assert "3.0G" in text and "1.5K" in text and "100B" in text, text
    assert "8x H100" in text and "3h03m" in text and "1d01h" in text, text
    assert "destroyed after a verified copy" in text


@pytest.mark.parametrize("by,want", [
    ("cost", [("vastai", "9"), ("vastai", "10"), ("runpod", "abc"), ("ssh", "box\\x0aevil")]),
    ("uptime", [("vastai", "9"), ("vastai", "10"), ("runpod", "abc"), ("ssh", "box\\x0aevil")]),
    ("status", [("vastai", "9"), ("ssh", "box\\x0aevil"), ("vastai", "10"), ("runpod", "abc")]),
    ("gpu", [("runpod", "abc"), ("vastai", "9"), ("vastai", "10"), ("ssh", "box\\x0aevil")]),
    ("platform", [("runpod", "abc"), ("ssh", "box\\x0aevil"), ("vastai", "9"),
                  ("vastai", "10")]),
])
def test_sort(tmp_path, by, want):
    r = top("-1", "--sort", by, mountpoint(tmp_path))
    assert r.returncode == 0, r
    assert rows_of(r.stdout) == want


def test_sum_counts_only_listed_priced_rows(tmp_path):
    doc = {"generated_at": 1, "instances": [
        {"platform": "vastai", "id": "1", "status": "running", "usd_per_hour": 0.25},
        {"platform": "lambda", "id": "2", "status": "running", "usd_per_hour": None},
        {"platform": "lambda", "id": "3", "status": "unknown", "usd_per_hour": "n/a"},
    ]}
    r = top("-1", mountpoint(tmp_path, doc))
    assert r.returncode == 0, r
    assert "3 instances, 1 priced: $0.25/h" in r.stdout.decode()
    r = top("-1", mountpoint(tmp_path, {"instances": []}))
    assert r.returncode == 0 and "0 instances, 0 priced: $0.00/h" in r.stdout.decode(), r


def test_missing_or_invalid_fleet_json_is_a_clear_error(tmp_path):
    r = top("-1", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and b"fleet.json" in r.stderr and not r.stdout, r
    for raw, word in ((b"{not json", b"not valid JSON"), (b'{"x": 1}', b"instances"),
                      (b"\xff\xfe", b"not valid JSON")):
        r = top("-1", mountpoint(tmp_path, raw=raw))
        assert r.returncode == 1 and word in r.stderr, (raw, r)
        assert b"Traceback" not in r.stderr


def test_a_hanging_read_gives_up_in_bounded_time(tmp_path):
    d = tmp_path / "hung"
    d.mkdir()
    os.mkfifo(d / "fleet.json")         # no writer: open() blocks forever
    t0 = time.monotonic()
    r = top("-1", "--read-timeout", "1", str(d), timeout=20)
    assert r.returncode == 1 and b"no answer within" in r.stderr, r
    assert time.monotonic() - t0 < 10


@pytest.mark.faults
@pytest.mark.deadline(200)
def test_a_read_stuck_in_a_hung_mount_does_not_hold_the_exit(fake_api, box_factory,
                                                             mount_factory):
    """A FIFO's open() dies with SIGKILL; a FUSE request the daemon has
    taken does not (the reader sits in D state until the mount answers).
    Such a request: the lookup of a fleet.json on a real rgtfs mount whose
    box went silent (a blackholed proxy; io_timeout far away). rgtfs-top
    must still exit 1 within --read-timeout + 5 s, and leave no pipe of its
    caller open."""
    b = box_factory()
    hung = os.path.join(b.workspace, "checkpoints", "hung")
    os.makedirs(hung)
    util.write_big_file(os.path.join(hung, "fleet.json"), 32 * util.MIB, seed=9,
                        mtime=util.BASE_MTIME)
    px = util.TcpProxy(b.port)
    try:
        iid = new_ids(1)[0]
        fake_api.add(make_instance(iid, direct_port=px.port, proxy_port=util.dead_port()))
        m = mount_factory(fake_api, io_timeout=60)
        vdir = os.path.join(m.mnt, "vastai")
        util.wait_until(lambda: str(iid) in util.ok(["ls", vdir], 30).text.split(), 15,
                        msg="instance listed")
        d = os.path.join(vdir, str(iid), "checkpoints", "hung")
        # "hung" is known, its own listing is not: the reader's open()
        # becomes a LOOKUP the daemon takes and cannot answer (a page-cache
        # read would wait killably; a request in the daemon's hands does not)
        assert "hung" in util.ok(["ls", os.path.dirname(d)], 60).text.split()
        px.blackhole()
        t0 = time.monotonic()
        p = subprocess.Popen([TOP, "-1", "--read-timeout", "2", d], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=2 + 5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.communicate(timeout=70)
            pytest.fail("rgtfs-top (or a child holding its pipes) still there %.0f s "
                        "after a 2 s read timeout" % (time.monotonic() - t0))
        assert p.returncode == 1 and b"no answer within" in err, (p.returncode, out, err)
        assert time.monotonic() - t0 < 2 + 5
    finally:
        px.blackhole(False)
        px.stop()


def test_usage_errors():
    assert top().returncode == 2
    assert top("-1", "--sort", "price", "/tmp").returncode == 2
    assert top("-n", "0", "/tmp").returncode == 2


def run_on_tty(args, env, timeout=10):
    """Run rgtfs-top with stdout on a pseudo-terminal; all it wrote."""
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env)
    p = subprocess.Popen([TOP] + args, stdout=slave, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=e)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            rd, _, _ = select.select([master], [], [], 0.2)
            if rd:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(5)
        os.close(master)
    return p.returncode, out


def test_colour_and_clear_only_on_a_terminal(tmp_path):
    mnt = mountpoint(tmp_path)
    rc, out = run_on_tty(["-1", mnt], {"TERM": "xterm"})
    assert rc == 0, out
    assert b"\033[H\033[2J" in out
    assert b"\033[32mrunning" in out and b"\033[31mdestroying" in out
    assert b"\033[33mstopped" in out and b"\033[2mgone" in out
    for env in ({"TERM": "dumb"}, {"TERM": "xterm", "NO_COLOR": "1"}):
        rc, out = run_on_tty(["-1", mnt], env)
        assert rc == 0 and b"\033" not in out, (env, out)


def test_refreshes_every_n_seconds(tmp_path):
    mnt = mountpoint(tmp_path)
    p = subprocess.Popen([TOP, "-n", "0.2", mnt], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
    finally:
        p.kill()
        out, _ = p.communicate(timeout=5)
    assert out.count(b"PLATFORM") >= 3, out
