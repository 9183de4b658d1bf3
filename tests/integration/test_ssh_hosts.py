"""Plain SSH hosts: [ssh:NAME] sections as instances under MOUNT/ssh/ (SPEC
"Configuration", PLATFORMS.md section 6).

Each host is a private sshd box. Its state comes from a bounded banner probe:
running while sshd answers, offline (never gone: the host is configured) when
it does not. rmdir is the verified teardown; a host without teardown_command
is archived and left running, one with it runs the command locally, exactly
once, after the verified copy, and the report shows its exit status and
output. The command's environment carries no secret of rgtfs's own.
"""

import json
import os
import secrets
import socket
import subprocess
import time

import pytest

import util
from util import ok, run, read_text, wait_until, op_errno, ls, box_tree_sha

RMDIR_TIMEOUT = 120
PW_USER = "rgtfs-pw-test"


# ---- config and mount ---------------------------------------------------------

def write_ssh_config(path, hosts, connect_timeout=3, io_timeout=5):
    """hosts: [(name, {key: value})] -> an INI with one [ssh:NAME] each."""
    lines = ["; written by test_ssh_hosts.py", "[rgtfs]",
             "connect_timeout = %s" % connect_timeout,
             "io_timeout = %s" % io_timeout]
    for name, kv in hosts:
        lines += ["", "[ssh:%s]" % name]
        lines += ["%s = %s" % (k, v) for k, v in kv.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def host_keys(box, key, **extra):
    kv = {"host": "127.0.0.1", "port": box.port, "user": "root",
          "checkpoint_dir": "/workspace/checkpoints",
          "log_path": "/workspace/train.log", "poll_interval": 1,
          "stale_after": 4, "probe_timeout": 2}
    if key:
        kv["ssh_key"] = key
    kv.update(extra)
    return kv


def rgtfs_env(workdir, extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "VAST_API_KEY")}
    home = os.path.join(workdir, "home")
    os.makedirs(home, exist_ok=True)
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"), LC_ALL="C.UTF-8")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=0")
    env.update(extra or {})
    return env


@pytest.fixture
def ssh_mount(tmp_path, rgtfs_bin, hygiene):
    """make(hosts, env=None) -> util.Mount (started) over [ssh:NAME] sections."""
    made = []

    def make(hosts, env=None):
        workdir = str(tmp_path / ("mount%d" % len(made)))
        os.makedirs(workdir, exist_ok=True)
        conf = write_ssh_config(os.path.join(workdir, "rgtfs.ini"), hosts)
        m = util.Mount(rgtfs_bin, workdir, rgtfs_env(workdir, env), conf)
        made.append(m)
        m.start()
        return m
    yield make
    util.kill_children()
    problems = []
    for m in made:
        m.cleanup()
    for m in made:
        problems += ["%s: %s" % (m.mnt, p) for p in m.problems]
        problems += hygiene.check(m.read_log())
    if problems:
        pytest.fail("mount teardown:\n  " + "\n  ".join(problems), pytrace=False)


def status(m, name):
    return read_text(m.p("ssh", name, "status")).strip()


def wait_status(m, name, want, timeout=10):
    seen = []

    def pred():
        r = run(["cat", "--", m.p("ssh", name, "status")], timeout=30)
        s = r.text.strip() if r.rc == 0 else "(missing)"
        seen.append(s)
        return s == want
    wait_until(pred, timeout, interval=0.1, msg="ssh/%s status %s" % (name, want))
    return seen


def banner_ok(box):
    try:
        with socket.create_connection(("127.0.0.1", box.port), timeout=2) as s:
            s.settimeout(3)
            return s.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def archived(m):
    r = run(["ls", "-A", "--", m.p("archive", "ssh")], timeout=30)
    return set(r.text.splitlines()) if r.rc == 0 else set()


def two_hosts(box_factory, ssh_mount, user_key, alpha=None, beta=None, env=None):
    a, b = box_factory(name="alpha"), box_factory(name="beta")
    m = ssh_mount([("alpha", host_keys(a, user_key, **(alpha or {}))),
                   ("beta", host_keys(b, user_key, **(beta or {})))], env=env)
    wait_until(lambda: {"alpha", "beta"} <= ls(m.p("ssh")), 10, msg="both listed")
    wait_status(m, "alpha", "running")
    wait_status(m, "beta", "running")
    return a, b, m


# ---- listing and probing ------------------------------------------------------------

def test_two_hosts_listed_running_and_readable(box_factory, ssh_mount, user_key):
    a, b, m = two_hosts(box_factory, ssh_mount, user_key)
    assert ls(m.mnt) >= {"ssh"}
    assert ls(m.p("ssh")) - {".error"} == {"alpha", "beta"}
    for name, box in (("alpha", a), ("beta", b)):
        info = json.loads(read_text(m.p("ssh", name, "info.json")))
        assert info["host"] == "127.0.0.1" and info["port"] == box.port
        assert info["user"] == "root" and info["teardown_command"] is False
        assert info["probe"]["result"] == "banner"
        assert info["probe"]["banner"].startswith("SSH-2.0-")
        assert read_text(m.p("ssh", name, "status_msg")).startswith("SSH-2.0-")
        assert read_text(m.p("ssh", name, "ssh")) == "ssh -p %d root@127.0.0.1\n" % box.port
        # the bytes come from this host's own box
        rel = ("checkpoints", "run-001", "best_metrics.json")
        with open(os.path.join(box.workspace, *rel), "rb") as f:
            assert util.cat(m.p("ssh", name, *rel)) == f.read()
    assert util.cat(m.p("ssh", "alpha", "log")) != util.cat(m.p("ssh", "beta", "log"))


@pytest.mark.faults
def test_killed_host_goes_offline_never_gone(box_factory, ssh_mount, user_key):
    a, b, m = two_hosts(box_factory, ssh_mount, user_key)
    b.kill()
    t0 = time.monotonic()
    seen = wait_status(m, "beta", "offline", timeout=8)
    assert time.monotonic() - t0 < 8
    assert not {"gone", "unknown", "(missing)"} & set(seen), seen
    info = json.loads(read_text(m.p("ssh", "beta", "info.json")))
    assert info["probe"]["result"] in ("refused", "closed", "reset"), info
    assert "refused" in read_text(m.p("ssh", "beta", "status_msg")).lower()
    # well past stale_after: still offline, still listed, never gone
    for _ in range(12):
        assert status(m, "beta") == "offline"
        assert "beta" in ls(m.p("ssh"))
        time.sleep(0.5)
    assert status(m, "alpha") == "running"
    assert read_text(m.p("ssh", ".error")) == ""
    b.start()
    wait_status(m, "beta", "running")


@pytest.mark.faults
def test_silent_port_is_offline_within_the_probe_bound(tmp_path, ssh_mount, user_key):
    silent = util.SilentServer()
    try:
        class Fake:
            port = silent.port
        m = ssh_mount([("quiet", host_keys(Fake, user_key, probe_timeout=1))])
        wait_until(lambda: "quiet" in ls(m.p("ssh")), 10, msg="listed")
        wait_status(m, "quiet", "offline", timeout=8)
        info = json.loads(read_text(m.p("ssh", "quiet", "info.json")))
        assert info["probe"]["result"] == "timeout", info
    finally:
        silent.stop()


class _Garbage:
    """A TCP server that answers every connection with bytes that are not
    an SSH banner (a web server or a wrong port), then closes it."""

    def __init__(self, payload):
        import threading
        self.payload = payload
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.sendall(self.payload)
            except OSError:
                pass
            c.close()

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)
        self.sock.close()


@pytest.mark.faults
def test_not_ssh_is_offline_and_a_bad_name_is_named(ssh_mount, user_key):
    web = _Garbage(b"x" * 300)
    try:
        m = ssh_mount([("-bad", host_keys(web, user_key)),
                       ("web", host_keys(web, user_key))])
        wait_until(lambda: "web" in ls(m.p("ssh")), 10, msg="listed")
        wait_status(m, "web", "offline")
        info = json.loads(read_text(m.p("ssh", "web", "info.json")))
        assert info["probe"]["result"] == "garbage", info
        # the section whose name cannot be a directory: named in .error
        err = read_text(m.p("ssh", ".error"))
        assert "ssh:-bad" in err and "name" in err, err
        assert "-bad" not in ls(m.p("ssh"))
    finally:
        web.stop()


# ---- teardown -------------------------------------------------------------------------

def test_rmdir_without_command_archives_and_leaves_box_running(box_factory, ssh_mount,
                                                               user_key):
    a, b, m = two_hosts(box_factory, ssh_mount, user_key)
    before = box_tree_sha(a.workspace)
    assert op_errno("rmdir", m.p("ssh", "alpha"), timeout=RMDIR_TIMEOUT) == "OK"
    assert "alpha" in archived(m)
    arch = m.p("archive", "ssh", "alpha")
    assert {"PULL_MANIFEST.json", "PULL_VERIFIED.json", "checkpoints"} <= ls(arch)
    rep = read_text(os.path.join(arch, "teardown"))
    assert "teardown_command" not in rep
    # the box is left alone: sshd answers, files untouched
    assert banner_ok(a)
    assert a.is_running()
    assert box_tree_sha(a.workspace) == before
    # the archive reads back byte for byte
    rel = ("run-001", "best_metrics.json")
    with open(os.path.join(a.workspace, "checkpoints", *rel), "rb") as f:
        assert util.cat(os.path.join(arch, "checkpoints", *rel)) == f.read()
    assert status(m, "beta") == "running"


@pytest.fixture
def short_dir():
    """A short private directory: the INI reader takes lines of at most 200
    bytes, and pytest's tmp_path alone is half of that."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="rgt-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_rmdir_with_command_runs_it_once_after_the_verified_copy(tmp_path, short_dir,
                                                               box_factory, ssh_mount,
                                                               user_key):
    marker = os.path.join(short_dir, "marker")
    envdump = os.path.join(short_dir, "env")
    secret = "s3cr3t-%s" % secrets.token_hex(8)
    pw = "pw-%s" % secrets.token_hex(8)
    pwfile = str(tmp_path / "pw")
    with open(pwfile, "w") as f:
        f.write(pw + "\n")
    os.chmod(pwfile, 0o600)
    cmd = ("echo ran >> %s && env > %s && echo \"bye $RGTFS_INSTANCE $RGTFS_HOST\""
           % (marker, envdump))
    a, b, m = two_hosts(box_factory, ssh_mount, user_key,
                        alpha={"teardown_command": cmd, "password_env": "BOX_PW"},
                        beta={"password_file": pwfile},
                        env={"VAST_API_KEY": secret, "BOX_PW": pw,
                             "RUNPOD_API_KEY": secret})
    info = json.loads(read_text(m.p("ssh", "alpha", "info.json")))
    assert info["teardown_command"] is True
    assert cmd not in read_text(m.p("ssh", "alpha", "info.json"))
    before = box_tree_sha(a.workspace)
    assert not os.path.exists(marker)
    assert op_errno("rmdir", m.p("ssh", "alpha"), timeout=RMDIR_TIMEOUT) == "OK"
    with open(marker) as f:
        assert f.read() == "ran\n", "the command ran more (or less) than once"
    assert "alpha" in archived(m)
    rep = read_text(m.p("archive", "ssh", "alpha", "teardown"))
    assert "exited 0" in rep and "bye alpha 127.0.0.1" in rep, rep
    # after the verified copy: its notes come before the command's
    lines = rep.splitlines()
    at = {step: next(i for i, l in enumerate(lines) if l.startswith(step + ":"))
          for step in ("verify", "record", "re-list", "destroy")}
    assert at["verify"] < at["record"] < at["re-list"] < at["destroy"], rep
    assert "teardown_command exited 0" in lines[at["destroy"]], rep
    # no secret in the command's environment
    with open(envdump) as f:
        env = f.read()
    assert secret not in env and pw not in env
    assert "VAST_API_KEY" not in env and "BOX_PW" not in env
    assert "RGTFS_INSTANCE=alpha\n" in env and "RGTFS_HOST=127.0.0.1\n" in env
    # nor anywhere rgtfs writes
    for root in (m.cache,):
        r = run(["grep", "-rlF", "-e", secret, "-e", pw, root], timeout=30)
        assert r.rc == 1, "secret found in %s" % r.text
    assert pw not in m.read_log() and secret not in m.read_log()
    assert box_tree_sha(a.workspace) == before
    assert status(m, "beta") == "running"
    with open(marker) as f:
        assert f.read() == "ran\n"


@pytest.mark.faults
def test_failing_command_is_reported(short_dir, box_factory, ssh_mount, user_key, hygiene):
    hygiene.allow(r"teardown_command failed")
    marker = os.path.join(short_dir, "marker")
    cmd = "echo tried >> %s && echo provider says no >&2 && exit 7" % marker
    a, b, m = two_hosts(box_factory, ssh_mount, user_key, alpha={"teardown_command": cmd})
    before = box_tree_sha(a.workspace)
    err = op_errno("rmdir", m.p("ssh", "alpha"), timeout=RMDIR_TIMEOUT)
    assert err in ("EIO", "ETIMEDOUT"), err
    rep = read_text(m.p("ssh", "alpha", "teardown"))
    assert rep.startswith("failed:"), rep
    assert "exited 7" in rep and "provider says no" in rep, rep
    assert "verified copy is kept" in rep
    with open(marker) as f:
        assert f.read() == "tried\n"
    assert "alpha" not in archived(m)
    assert "alpha" in ls(m.p("ssh"))
    assert status(m, "alpha") == "running"
    assert box_tree_sha(a.workspace) == before


# ---- password logins --------------------------------------------------------------------

def _user_exists(name):
    return run(["getent", "passwd", name], timeout=10).rc == 0


@pytest.fixture
def pw_user():
    """A throwaway login (no home, nologin shell, random password) for one test,
    removed afterwards. Existing users' entries are never touched."""
    if os.geteuid() != 0:
        pytest.skip("creating a throwaway user needs root")
    for tool in ("useradd", "chpasswd", "userdel"):
        if run(["which", tool], timeout=10).rc != 0:
            pytest.skip("no %s: cannot create a throwaway user safely" % tool)
    if _user_exists(PW_USER):
        pytest.skip("user %s already exists; not touching it" % PW_USER)
    nologin = "/usr/sbin/nologin"
    if not os.access(nologin, os.X_OK):
        pytest.skip("no %s: a throwaway password user must not get a shell" % nologin)
    pw = secrets.token_urlsafe(24)
    ok(["useradd", "-M", "-d", "/nonexistent", "-s", nologin, PW_USER], timeout=30)
    try:
        ok(["chpasswd"], input=("%s:%s\n" % (PW_USER, pw)).encode(), timeout=30)
        yield PW_USER, pw
    finally:
        # its sshd sessions may take a moment to end
        for _ in range(50):
            if run(["userdel", PW_USER], timeout=30).rc == 0:
                break
            time.sleep(0.2)
        else:
            run(["userdel", "-f", PW_USER], timeout=30)
        assert not _user_exists(PW_USER)


def test_password_login_reads_checkpoints(pw_user, tmp_path, box_factory, ssh_mount,
                                          other_key):
    user, pw = pw_user
    box = box_factory(name="pwbox", start=False)
    # sshd takes the first value of a keyword and Box writes "no" first; a
    # Match block at the end overrides it for this one user
    box.extra_config = ["AllowUsers %s" % user, "Match User %s" % user,
                        "    PasswordAuthentication yes"]
    box.write_config()
    box.start()
    pwfile = str(tmp_path / "pw")
    with open(pwfile, "w") as f:
        f.write(pw + "\n")
    os.chmod(pwfile, 0o600)
    # one host with a key the box refuses (falls back to the password), one
    # with no key and no agent, the password from the environment
    m = ssh_mount([("keyfirst", host_keys(box, other_key, user=user,
                                          password_file=pwfile)),
                   ("pwonly", host_keys(box, None, user=user, password_env="PW_VAR"))],
                  env={"PW_VAR": pw})
    wait_until(lambda: {"keyfirst", "pwonly"} <= ls(m.p("ssh")), 10, msg="listed")
    rel = ("checkpoints", "run-001", "best_metrics.json")
    with open(os.path.join(box.workspace, *rel), "rb") as f:
        want = f.read()
    for name in ("keyfirst", "pwonly"):
        wait_status(m, name, "running")
        assert util.cat(m.p("ssh", name, *rel)) == want
    assert pw not in m.read_log()
    r = run(["grep", "-rlF", "-e", pw, m.cache], timeout=30)
    assert r.rc == 1, "password found in the cache: %s" % r.text


@pytest.mark.faults
def test_loose_password_file_is_refused(tmp_path, box_factory, ssh_mount, user_key,
                                        hygiene):
    hygiene.allow(r"password_file")
    box = box_factory(name="loose")
    pwfile = str(tmp_path / "pw")
    with open(pwfile, "w") as f:
        f.write("not-a-real-password\n")
    os.chmod(pwfile, 0o644)
    m = ssh_mount([("loose", host_keys(box, user_key, password_file=pwfile))])
    wait_status(m, "loose", "running")
    # the key still works; the loose file is named in the log, its text never
    assert util.cat(m.p("ssh", "loose", "checkpoints", "run-001", "best_metrics.json"))
    log = m.read_log()
    assert "not-a-real-password" not in log
    assert "password_file" in log and pwfile in log
