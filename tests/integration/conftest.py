"""pytest fixtures for the rgtfs integration suite.

    /usr/bin/python3 -m pytest -v tests/integration --rgtfs build/rgtfs

Each test gets its own directory, its own sshd boxes on free ports, its own
fake vast.ai API on a free port, and its own rgtfs mount and cache. Every
process and mount is cleaned up by PID when the test ends, pass or fail.

Stderr hygiene: when a test's mounts are torn down, the daemon's output is
scanned. Sanitizer banners, "Segmentation" and "abort" always fail the test.
Lines with "error", "warning" or "fatal" fail it only when the test injected
no faults (a box stopped or killed, an API fault, the mark `faults`), unless
the test registered the line with hygiene.allow(regex).

The suite is skipped when the machine cannot mount (not root, no /dev/fuse,
no fusermount3, no /usr/sbin/sshd); with CI=true those conditions fail instead,
so CI never passes by skipping everything.
"""

import os
import random
import re
import shutil
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fake_vast import FakeVast, make_instance  # noqa: E402
from sshd import Box, gen_keypair, SSHD  # noqa: E402
import util  # noqa: E402
from util import Mount, write_config, make_sample_workspace, wait_until  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TIMEOUT = 150      # seconds per test call (SIGALRM), see mark `deadline`

FATAL_RE = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|"
                      r"runtime error:|Segmentation|(?i:abort)")
NOISE_RE = re.compile(r"(?i)\b(error|warn|warning|fatal)\b")


# ---- options, skipping, per-test deadline ---------------------------------------

def pytest_addoption(parser):
    parser.addoption("--rgtfs", default="build/rgtfs",
                     help="path of the rgtfs binary to test (default build/rgtfs)")


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: the test injects faults (relaxes the "
                            "error/warning stderr check)")
    config.addinivalue_line("markers", "deadline(seconds): per-test time limit "
                            "(default %d)" % DEFAULT_TIMEOUT)
    config.addinivalue_line("markers", "slow: moves 100+ MiB")


def cannot_mount_reasons():
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not root")
    if not os.path.exists("/dev/fuse"):
        reasons.append("no /dev/fuse")
    if not shutil.which("fusermount3"):
        reasons.append("no fusermount3")
    if not os.access(SSHD, os.X_OK):
        reasons.append("no %s" % SSHD)
    if not shutil.which("unshare"):
        reasons.append("no unshare")
    return reasons


def _in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    reasons = cannot_mount_reasons()
    if reasons and not _in_ci():
        skip = pytest.mark.skip(reason="cannot mount here: " + ", ".join(reasons))
        for item in items:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _machine_can_mount():
    reasons = cannot_mount_reasons()
    if reasons:
        pytest.fail("CI=true but this machine cannot mount: " + ", ".join(reasons))


class TestDeadline(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    m = item.get_closest_marker("deadline")
    secs = int(m.args[0]) if m else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TestDeadline("test exceeded its %d s deadline" % secs)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(secs)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- basic fixtures -------------------------------------------------------------

@pytest.fixture(scope="session")
def rgtfs_bin(request):
    p = request.config.getoption("--rgtfs")
    cands = [p] if os.path.isabs(p) else [os.path.abspath(p), os.path.join(REPO, p)]
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.fail("rgtfs binary not found or not executable: %s (build it, or pass --rgtfs)"
                % " or ".join(cands), pytrace=False)


@pytest.fixture(scope="session")
def user_key(tmp_path_factory):
    """The ed25519 key every box authorizes and rgtfs uses (ssh_key)."""
    d = tmp_path_factory.mktemp("keys")
    return gen_keypair(str(d / "id_ed25519"), comment="rgtfs-test-user")


@pytest.fixture(scope="session")
def other_key(tmp_path_factory):
    """A second key that no box authorizes unless asked to."""
    d = tmp_path_factory.mktemp("otherkeys")
    return gen_keypair(str(d / "id_ed25519"), comment="rgtfs-test-stranger")


class Hygiene:
    """What a test expects in the daemon's output."""

    def __init__(self, marked_faults):
        self.faults_injected = marked_faults
        self.allowed = []

    def fault(self, *_):
        self.faults_injected = True

    def allow(self, regex):
        self.allowed.append(re.compile(regex))

    def check(self, text):
        """Problems found in daemon output text (list of strings)."""
        probs = []
        for line in text.splitlines():
            if line.startswith("=== test harness"):
                continue
            if FATAL_RE.search(line):
                probs.append("fatal line in daemon output: " + line)
            elif (not self.faults_injected and NOISE_RE.search(line)
                  and not any(a.search(line) for a in self.allowed)):
                probs.append("unexpected error/warning in daemon output (test injected "
                             "no faults; register it with hygiene.allow): " + line)
        return probs


@pytest.fixture
def hygiene(request):
    return Hygiene(request.node.get_closest_marker("faults") is not None)


class TestBox(Box):
    """A Box that tells the hygiene checker when the test breaks it."""
    hygiene = None

    def _fault(self):
        if self.hygiene:
            self.hygiene.fault()

    def stop(self, *a, **kw):
        self._fault()
        return super().stop(*a, **kw)

    def kill(self, *a, **kw):
        self._fault()
        return super().kill(*a, **kw)

    def kill_listener(self, *a, **kw):
        self._fault()
        return super().kill_listener(*a, **kw)

    def recreate(self, *a, **kw):
        self._fault()
        return super().recreate(*a, **kw)


@pytest.fixture
def box_factory(tmp_path, user_key, hygiene):
    """make(name=None, sftp=True, populate=True, keys=None, start=True, port=None) -> Box"""
    boxes = []

    def make(name=None, sftp=True, populate=True, keys=None, start=True, port=None):
        name = name or "box%d" % len(boxes)
        b = TestBox(str(tmp_path / "boxes" / name), keys or [user_key + ".pub"],
                    port=port, sftp=sftp, name=name)
        b.hygiene = hygiene
        boxes.append(b)
        if populate:
            make_sample_workspace(b.workspace, seed=len(boxes))
        if start:
            b.start()
        return b
    yield make
    for b in boxes:
        b.hygiene = None
        Box.kill(b)


def _api_key():
    return "vast-test-key-%016x" % random.getrandbits(64)


@pytest.fixture
def fake_api(hygiene):
    api = FakeVast(_api_key())
    api.on_fault = hygiene.fault
    api.start()
    yield api
    api.stop()


def _rgtfs_env(workdir, api_key):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "VAST_API_KEY")}
    home = os.path.join(workdir, "home")
    os.makedirs(home, exist_ok=True)
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"), LC_ALL="C.UTF-8")
    if api_key is not None:
        env["VAST_API_KEY"] = api_key
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=0")
    return env


@pytest.fixture
def mount_factory(tmp_path, rgtfs_bin, user_key, hygiene):
    """make(api, api_key=<api's>, start=True, **config) -> Mount (started).

    Config keys are those of util.write_config (connect_timeout, io_timeout,
    api_timeout, poll_interval, stale_after, ...). extra_args are more
    command-line arguments (e.g. ["-o", "allow_other"]); mnt a mountpoint
    other than WORKDIR/mnt."""
    made = []

    def make(api, api_key="<api>", start=True, ssh_key=None, cache=None, extra_args=(),
             mnt=None, **cfg):
        workdir = str(tmp_path / ("mount%d" % len(made)))
        os.makedirs(workdir, exist_ok=True)
        conf = write_config(os.path.join(workdir, "rgtfs.ini"), api_url=api.url,
                            ssh_key=ssh_key or user_key, **cfg)
        key = api.api_key if api_key == "<api>" else api_key
        m = Mount(rgtfs_bin, workdir, _rgtfs_env(workdir, key), conf, cache=cache,
                  mnt=mnt, extra_args=extra_args)
        made.append(m)
        if start:
            m.start()
        return m
    yield make
    util.kill_children()          # helpers still holding files on the mount
    problems = []
    for m in made:
        m.cleanup()
    for m in made:
        problems += ["%s: %s" % (m.mnt, p) for p in m.problems]
        problems += hygiene.check(m.read_log())
    if problems:
        pytest.fail("mount teardown:\n  " + "\n  ".join(problems), pytrace=False)


# ---- the usual world: N boxes, one fake API listing them, one mount ----------------------

class World:
    def __init__(self, api, boxes, ids, mount, key):
        self.api, self.boxes, self.ids, self.mount, self.key = api, boxes, ids, mount, key

    @property
    def mnt(self):
        return self.mount.mnt

    def idir(self, i=0):
        return os.path.join(self.mount.mnt, "vastai", str(self.ids[i]))

    def f(self, i, *parts):
        """Path of a file under instance i's directory on the mount."""
        return os.path.join(self.idir(i), *parts)

    def ck(self, i=0, *parts):
        return os.path.join(self.idir(i), "checkpoints", *parts)

    def box_ck(self, i=0, *parts):
        return os.path.join(self.boxes[i].workspace, "checkpoints", *parts)

    def status(self, i=0):
        return util.read_text(self.f(i, "status"))

    def vast_error(self):
        return util.read_text(os.path.join(self.mount.mnt, "vastai", ".error"))


def new_ids(n):
    base = random.randint(10_000_000, 89_999_999)
    return [base + 7 * i for i in range(n)]


@pytest.fixture
def world(box_factory, fake_api, mount_factory, user_key):
    """make(n=1, sftp=True, populate=True, mount=True, **config) -> World.

    Each box i is listed as instance ids[i] with direct = proxy = its port."""
    def make(n=1, sftp=True, populate=True, mount=True, **cfg):
        boxes = [box_factory(sftp=sftp, populate=populate) for _ in range(n)]
        ids = new_ids(n)
        for b, iid in zip(boxes, ids):
            fake_api.add(make_instance(iid, direct_port=b.port, proxy_port=b.port))
        m = mount_factory(fake_api, start=mount, **cfg)
        w = World(fake_api, boxes, ids, m, user_key)
        if mount:
            for iid in ids:
                wait_until(lambda: os.path.basename(w.idir(ids.index(iid))) in
                           util.ok(["ls", "-A", os.path.join(m.mnt, "vastai")], 30).text.split(),
                           10, msg="instance %d listed" % iid)
        return w
    return make


# ---- teardown suite helpers --------------------------------------------------------

@pytest.fixture
def tmpfs_factory(tmp_path):
    """make(size='24m', name='tmpfs') -> path of a fresh tmpfs (mode 0700).
    Unmounted (lazily if busy) when the test ends; request this fixture before
    world/mount_factory so it is torn down after the mounts that use it."""
    made = []

    def make(size="24m", name=None):
        path = str(tmp_path / (name or "tmpfs%d" % len(made)))
        made.append(path)
        return util.mount_tmpfs(path, size)
    yield make
    left = [p for p in made if not util.umount_tmpfs(p)]
    if left:
        pytest.fail("tmpfs still mounted: %s" % left, pytrace=False)


@pytest.fixture
def public_dir():
    """A directory under /tmp that every user can traverse (0755), for a
    mountpoint another uid must reach (pytest's tmp_path is 0700). Request it
    before world/mount_factory; it is removed after the mounts are gone."""
    import tempfile
    d = tempfile.mkdtemp(prefix="rgtfs-pub-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    for mp in util.fuse_mounts_under(d):
        util.run([util.FUSERMOUNT, "-u", "-z", mp], timeout=10)
    if not util.fuse_mounts_under(d):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def store_tool(rgtfs_bin):
    """Path of rgtfs-store next to the rgtfs binary under test (BUILD/tools/)."""
    p = os.path.join(os.path.dirname(rgtfs_bin), "tools", "rgtfs-store")
    if not os.access(p, os.X_OK):
        pytest.fail("rgtfs-store not found at %s (build the tools)" % p, pytrace=False)
    return p


@pytest.fixture
def proxies():
    """make(target_port, rate=None) -> util.TcpProxy / util.ThrottledProxy,
    stopped when the test ends."""
    made = []

    def make(target_port, rate=None):
        p = util.ThrottledProxy(target_port, rate) if rate else util.TcpProxy(target_port)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()
