"""The OpenSSH transport (cache/xfer_openssh.c) against a real private sshd.

Driven through tools/rgtfs-xfer: `-T openssh` opens xfer_openssh_ops
directly (stat, ls, cat, preads with its C and X lines), `-T ... -D MS -P
STORE exec` goes through remote.c (the host-key pin in a store kept across
runs, the transport choice, the auto fallback). Every process started here
is ended by PID; every wait is a bounded poll.
"""

import hashlib
import os
import select
import signal
import stat
import subprocess
import time

import pytest

from util import run, wait_until

pytestmark = pytest.mark.faults

IO_MS = 3000
ETIMEDOUT, ENOTCONN = 110, 107


@pytest.fixture
def xfer_bin(rgtfs_bin):
    p = os.path.join(os.path.dirname(rgtfs_bin), "tools", "rgtfs-xfer")
    if not os.access(p, os.X_OK):
        pytest.fail("rgtfs-xfer not found at %s (build the tools)" % p, pytrace=False)
    return p


def argv(xfer_bin, box, key, *cmd, transport="openssh", io_ms=IO_MS, state=None,
         extra=()):
    a = [xfer_bin, "-T", transport, "-k", key, "-u", "root", "-p", str(box.port),
         "-c", "8000", "-t", str(io_ms)]
    if state:
        a += ["-S", state]
    return a + list(extra) + [box.host] + list(cmd)


def unescape(name):
    """Undo rgtfs-xfer's print_name()."""
    out, i = bytearray(), 0
    b = name.encode()
    while i < len(b):
        if b[i:i + 2] == b"\\\\":
            out += b"\\"
            i += 2
        elif b[i:i + 2] == b"\\n":
            out += b"\n"
            i += 2
        elif b[i:i + 2] == b"\\x":
            out.append(int(b[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(b[i])
            i += 1
    return out.decode()


def parse_ls(text):
    """{name: (mode, size, mtime)} from `rgtfs-xfer ls` output."""
    got = {}
    for line in text.splitlines():
        mode, size, mtime, name = line.split(None, 3)
        got[unescape(name)] = (int(mode, 8), int(size), int(mtime))
    return got


def children(pid):
    """PIDs whose parent is @pid (zombies included), from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def proc_exists(pid):
    """True while /proc has the PID at all (a zombie counts)."""
    return os.path.exists("/proc/%d" % pid)


class Session:
    """`rgtfs-xfer preads PATH`: one transport session fed line by line."""

    def __init__(self, a):
        self.p = subprocess.Popen(a, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.buf = b""

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no answer from rgtfs-xfer in time; stderr: %r"
                                 % self.stderr_now())
        r, _, _ = select.select([self.p.stdout], [], [], left)
        if r:
            chunk = os.read(self.p.stdout.fileno(), 1 << 20)
            if not chunk:
                raise AssertionError("rgtfs-xfer ended: %r" % self.stderr_now())
            self.buf += chunk

    def line(self, timeout=30):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            self._fill(deadline)
        l, _, self.buf = self.buf.partition(b"\n")
        return l.decode()

    def bytes(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def send(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def read(self, off, length, timeout=30):
        """One pread: bytes, or the errno (int) with the reason."""
        self.send("%d %d\n" % (off, length))
        l = self.line(timeout)
        if l.startswith("E"):
            return int(l[1:].split()[0]), l
        return self.bytes(int(l), timeout), None

    def finish(self, timeout=20):
        """End the session (EOF on stdin) and return all of stderr."""
        self.p.stdin.close()
        self.p.wait(timeout=timeout)
        return self.p.stderr.read().decode(errors="replace")

    def stderr_now(self):
        if self.p.poll() is None:
            return "(running)"
        return self.p.stderr.read()

    def end(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait(timeout=10)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if not f.closed:
                f.close()


@pytest.fixture
def session_factory():
    made = []

    def make(a):
        s = Session(a)
        made.append(s)
        return s
    yield make
    for s in made:
        s.end()


def ssh_children(pid):
    out = []
    for c in children(pid):
        try:
            with open("/proc/%d/comm" % c) as f:
                if f.read().strip() == "ssh":
                    out.append(c)
        except OSError:
            pass
    return out


def fill_box(box):
    d = box.local("/workspace/d")
    os.makedirs(os.path.join(d, "sub"), exist_ok=True)
    for name in ("plain", "with space", "new\nline", "tab\there", "-dash"):
        with open(os.path.join(d, name), "wb") as f:
            f.write(name.encode() * 3)
    os.symlink("plain", os.path.join(d, "link"))
    big = os.urandom(64 << 20)
    with open(os.path.join(d, "big.bin"), "wb") as f:
        f.write(big)
    return d, big


# ---- bytes and names -----------------------------------------------------------

@pytest.mark.slow
def test_listing_and_bytes_match(box_factory, user_key, xfer_bin):
    box = box_factory(populate=False)
    d, big = fill_box(box)
    want = {}
    for name in os.listdir(d):
        st = os.lstat(os.path.join(d, name))
        want[name] = (st.st_mode, st.st_size, int(st.st_mtime))

    r = run(argv(xfer_bin, box, user_key, "ls", "/workspace/d"), timeout=60)
    assert r.rc == 0, r
    got = parse_ls(r.text)
    assert got == want
    assert stat.S_ISLNK(got["link"][0]) and stat.S_ISDIR(got["sub"][0])
    # the same listing as the libssh2 transport gives
    r2 = run(argv(xfer_bin, box, user_key, "ls", "/workspace/d", transport="libssh2"),
             timeout=60)
    assert r2.rc == 0 and parse_ls(r2.text) == got, r2

    r = run(argv(xfer_bin, box, user_key, "stat", "/workspace/d/link"), timeout=60)
    assert r.rc == 0 and r.text.startswith("0120777 "), r
    r = run(argv(xfer_bin, box, user_key, "stat", "/workspace/d/nope"), timeout=60)
    assert r.rc == 1 and b"No such file" in r.err, r

    # the whole 64 MiB file, sequential 1 MiB reads (read-ahead engaged)
    r = run(argv(xfer_bin, box, user_key, "cat", "/workspace/d/big.bin"), timeout=120)
    assert r.rc == 0, r.err
    assert hashlib.sha256(r.out).hexdigest() == hashlib.sha256(big).hexdigest()
    # odd block size and start: every chunk boundary lands mid-request
    r = run(argv(xfer_bin, box, user_key, "cat", "/workspace/d/big.bin",
                 extra=["-b", "300001", "-o", "12345", "-l", str(9 << 20)]), timeout=120)
    assert r.rc == 0 and r.out == big[12345:12345 + (9 << 20)], r.err
    # a name with a newline, read through the transport
    r = run(argv(xfer_bin, box, user_key, "cat", "/workspace/d/new\nline"), timeout=60)
    assert r.rc == 0 and r.out == b"new\nline" * 3, r


def test_seeks_eof_and_reuse(box_factory, user_key, xfer_bin, session_factory):
    box = box_factory(populate=False)
    data = os.urandom(5 << 20)
    with open(box.local("/workspace/f"), "wb") as f:
        f.write(data)
    s = session_factory(argv(xfer_bin, box, user_key, "preads", "/workspace/f"))
    size = len(data)
    for off, n in [(0, 10), (10, 1 << 20), (10 + (1 << 20), 3 << 20),  # sequential
                   (4096, 100), (size - 5, 100), (size + 10, 10),    # seek, EOF
                   (size - (2 << 20), 2 << 20), (123, 777)]:
        got, err = s.read(off, n)
        assert err is None, err
        assert got == data[off:off + n], (off, n, len(got))
    # the file grows: the same handle reads the new bytes (EOF is not sticky)
    with open(box.local("/workspace/f"), "ab") as f:
        f.write(b"tail")
    got, err = s.read(size, 100)
    assert err is None and got == b"tail", (got, err)


# ---- host keys -------------------------------------------------------------------

def test_changed_host_key_is_refused_and_pin_kept(box_factory, user_key, xfer_bin,
                                                  tmp_path):
    box = box_factory(populate=False)
    store = str(tmp_path / "store")
    fp1 = box.host_key_fingerprint()

    def exec_via_remote(transport, *extra):
        return run(argv(xfer_bin, box, user_key, "exec", "echo one",
                        transport=transport,
                        extra=["-D", "20000", "-P", store] + list(extra)), timeout=60)

    r = exec_via_remote("openssh")
    assert r.rc == 0 and r.out == b"one\n", r
    assert fp1.encode() in r.err, r           # pinned on first use

    box.recreate()
    fp2 = box.host_key_fingerprint()
    assert fp2 != fp1
    for transport in ("openssh", "libssh2", "auto"):
        r = exec_via_remote(transport, "-v")
        assert r.rc == 1, (transport, r)
        assert b"Permission denied" in r.err, (transport, r)
        assert b"host key changed" in r.err, (transport, r)
        # the pin is still the first key
        assert b"(accepted unchecked)" in r.err and fp1.encode() in r.err, r
        # a verdict is never retried over the other transport
        assert b"trying libssh2" not in r.err, (transport, r)


def test_known_hosts_file_lives_with_the_session(box_factory, user_key, xfer_bin,
                                                 tmp_path, session_factory):
    box = box_factory(populate=False)
    with open(box.local("/workspace/f"), "wb") as f:
        f.write(b"x" * 1000)
    state = str(tmp_path / "state")
    os.makedirs(state, mode=0o700)
    # a file of a process that is gone, and one of a live process (ours)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = os.path.join(state, "kh-%d-AbCdEf" % dead.pid)
    live = os.path.join(state, "kh-%d-GhIjKl" % os.getpid())
    for p in (stale, live):
        open(p, "w").close()

    s = session_factory(argv(xfer_bin, box, user_key, "preads", "/workspace/f",
                             state=state))
    got, err = s.read(0, 10)
    assert err is None and got == b"x" * 10
    mine = [n for n in os.listdir(state) if n.startswith("kh-%d-" % s.p.pid)]
    assert len(mine) == 1, os.listdir(state)
    kh = os.path.join(state, mine[0])
    assert stat.S_IMODE(os.stat(kh).st_mode) == 0o600
    with open(kh) as f:
        lines = f.read().splitlines()
    # exactly the box's key, nothing else
    assert len(lines) == 1 and lines[0].split()[1:] == box.host_pubkey().split()[:2]
    assert not os.path.exists(stale), "known_hosts file of a dead process kept"
    assert os.path.exists(live), "known_hosts file of a live process removed"

    s.send("C\n")
    assert s.line() == "closed"
    assert not os.path.exists(kh), "known_hosts file left after close"


def test_second_session_reuses_the_checked_key(box_factory, user_key, xfer_bin,
                                               session_factory, tmp_path):
    """A process's second session to a box skips ssh-keyscan; a box that
    changed its key meanwhile is scanned again and judged by the policy."""
    box = box_factory(populate=False)
    with open(box.local("/workspace/f"), "wb") as f:
        f.write(b"z" * 100)
    # policy "accept anything" (no -K): the new key is taken after a rescan
    s = session_factory(argv(xfer_bin, box, user_key, "preads", "/workspace/f",
                             extra=["-v"]))
    assert s.read(0, 5) == (b"zzzzz", None)
    s.send("R\n")
    assert s.line() == "reopened"
    assert s.read(0, 5) == (b"zzzzz", None)
    box.recreate()
    s.send("R\n")
    assert s.line() == "reopened"
    assert s.read(0, 5) == (b"zzzzz", None)
    err = s.finish()
    assert err.count("ssh-keyscan -t") == 2, err     # first open, new key
    assert err.count("host key changed since the last session") == 1, err

    # policy "known_hosts": after the box changed its key it is refused
    box.recreate()
    kh = str(tmp_path / "known_hosts")
    with open(kh, "w") as f:
        f.write("[%s]:%d %s\n" % (box.host, box.port,
                                   " ".join(box.host_pubkey().split()[:2])))
    s = session_factory(argv(xfer_bin, box, user_key, "preads", "/workspace/f",
                             extra=["-K", kh]))
    assert s.read(0, 5) == (b"zzzzz", None)
    s.send("R\n")
    assert s.line() == "reopened"
    box.recreate()
    s.send("R\n")
    l = s.line()
    assert l.startswith("E13 ") and "a different key is listed" in l, l


def box_log_counts(box):
    """(logins, connections of ours that did not log in) in the box's log."""
    log = open(box.log, errors="replace").read()
    conns = log.count("Connection from ")
    logins = log.count("Accepted publickey")
    banners = log.count("kex_exchange_identification")   # Box.start()'s probe
    return logins, conns - logins - banners


def test_sessions_opened_together_share_one_scan(box_factory, user_key, xfer_bin):
    box = box_factory(populate=False)
    r = run(argv(xfer_bin, box, user_key, "opens", "6"), timeout=60)
    assert r.rc == 0 and r.out == b"6 opened, 0 failed\n", r
    # ssh-keyscan's two connections (ecdsa, ed25519) are the only ones
    # that did not log in: the other five sessions waited for its key
    assert box_log_counts(box) == (6, 2)


# ---- failures are bounded ----------------------------------------------------------

def test_frozen_sshd_times_out_within_io_timeout(box_factory, user_key, xfer_bin,
                                                 session_factory):
    box = box_factory(populate=False)
    with open(box.local("/workspace/f"), "wb") as f:
        f.write(os.urandom(8 << 20))
    s = session_factory(argv(xfer_bin, box, user_key, "preads", "/workspace/f"))
    got, err = s.read(0, 4096)
    assert err is None and len(got) == 4096
    stopped = []
    try:
        for pid in box.processes():
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        t0 = time.monotonic()
        got, err = s.read(1 << 20, 4 << 20, timeout=30)
        took = time.monotonic() - t0
        assert got == ETIMEDOUT, (got, err)
        assert IO_MS / 1000 - 0.3 <= took < IO_MS / 1000 + 2.0, took
        # the handle is broken now: the next call fails at once
        t0 = time.monotonic()
        got, err = s.read(0, 10)
        assert got == ENOTCONN and time.monotonic() - t0 < 1.0, (got, err)
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def test_killed_sshd_is_an_error_not_a_hang(box_factory, user_key, xfer_bin,
                                            session_factory):
    box = box_factory(populate=False)
    with open(box.local("/workspace/f"), "wb") as f:
        f.write(os.urandom(1 << 20))
    s = session_factory(argv(xfer_bin, box, user_key, "preads", "/workspace/f",
                             io_ms=20000))
    got, err = s.read(0, 4096)
    assert err is None
    (ssh,) = ssh_children(s.p.pid)
    box.kill()
    t0 = time.monotonic()
    got, err = s.read(4096, 4096, timeout=30)
    took = time.monotonic() - t0
    assert got == ENOTCONN, (got, err)
    assert took < 3.0, took
    # the dead ssh is reaped when the handle closes, while the tool lives on
    s.send("C\n")
    assert s.line() == "closed"
    assert not proc_exists(ssh), "ssh child %d left behind (zombie?)" % ssh


def test_connect_to_nothing_is_refused_at_once(box_factory, user_key, xfer_bin):
    box = box_factory(populate=False, start=False)
    r = run(argv(xfer_bin, box, user_key, "stat", "/workspace"), timeout=30)
    assert r.rc == 1 and b"Connection refused" in r.err, r
    assert r.elapsed < 5, r


# ---- exec and process hygiene ---------------------------------------------------------

def test_exec_status_and_no_child_left(box_factory, user_key, xfer_bin, session_factory):
    box = box_factory(populate=False)
    with open(box.local("/workspace/f"), "wb") as f:
        f.write(b"y" * 100)
    r = run(argv(xfer_bin, box, user_key, "exec", "echo out; echo err >&2; exit 7"),
            timeout=60)
    assert r.rc == 7 and r.out == b"out\n", r
    r = run(argv(xfer_bin, box, user_key, "exec", "printf 'a\\0b'"), timeout=60)
    assert r.rc == 0 and r.out == b"a\0b", r

    s = session_factory(argv(xfer_bin, box, user_key, "preads", "/workspace/f"))
    got, err = s.read(0, 10)
    assert err is None
    (ssh,) = ssh_children(s.p.pid)
    s.send("X echo hi; exit 3\n")
    assert s.line() == "S3 3" and s.bytes(3) == b"hi\n"
    # the command's ssh is reaped: only the SFTP one is a child
    assert children(s.p.pid) == [ssh], children(s.p.pid)
    # silence past the io timeout is a timeout (deadline_ms = 0)
    t0 = time.monotonic()
    s.send("X sleep 10\n")
    l = s.line(timeout=30)
    assert l.startswith("E%d " % ETIMEDOUT), l
    assert time.monotonic() - t0 < IO_MS / 1000 + 3, l
    assert children(s.p.pid) == [ssh], children(s.p.pid)
    # close: the ssh child is gone (reaped, not a zombie), no descriptor
    # but stdio is left open
    s.send("C\n")
    assert s.line() == "closed"
    assert children(s.p.pid) == []
    assert not proc_exists(ssh)
    fds = sorted(int(f) for f in os.listdir("/proc/%d/fd" % s.p.pid))
    assert fds == [0, 1, 2], [os.readlink("/proc/%d/fd/%d" % (s.p.pid, f)) for f in fds]


def test_exec_deadline_through_remote(box_factory, user_key, xfer_bin):
    box = box_factory(populate=False)
    cmd = "sleep 5; echo ok"
    # io timeout 2 s: the silent command fails without a deadline ...
    r = run(argv(xfer_bin, box, user_key, "exec", cmd, io_ms=2000), timeout=30)
    assert r.rc == 1 and b"timed out" in r.err, r
    # ... and succeeds under one, which still bounds a command that overruns
    r = run(argv(xfer_bin, box, user_key, "exec", cmd, io_ms=2000,
                 extra=["-D", "15000"]), timeout=40)
    assert r.rc == 0 and r.out == b"ok\n", r
    assert r.elapsed >= 5.0, r
    r = run(argv(xfer_bin, box, user_key, "exec", "sleep 30; echo late", io_ms=2000,
                 extra=["-D", "3000"]), timeout=40)
    assert r.rc == 1 and b"late" not in r.out and b"timed out" in r.err, r
    assert r.elapsed < 3.0 + 2.0, r


def test_killed_sshd_under_exec_is_noticed_at_once(box_factory, user_key, xfer_bin):
    box = box_factory(populate=False)
    p = subprocess.Popen(argv(xfer_bin, box, user_key, "exec", "sleep 40; echo late",
                              extra=["-D", "60000"]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        def sleeping():
            for pid in box.processes():
                try:
                    with open("/proc/%d/comm" % pid) as f:
                        if f.read().strip() == "sleep":
                            return True
                except OSError:
                    pass
            return False
        wait_until(sleeping, 15, msg="command started")
        t0 = time.monotonic()
        box.kill()
        out, err = p.communicate(timeout=30)
        took = time.monotonic() - t0
        assert p.returncode == 1 and b"late" not in out, (out, err)
        assert b"Input/output error" in err, err
        assert took < 3.0, (took, err)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


# ---- transport choice -----------------------------------------------------------------

def test_auto_falls_back_to_libssh2_without_sftp(box_factory, user_key, xfer_bin):
    box = box_factory(populate=False, sftp=False)
    # OpenSSH alone cannot: the box has no SFTP subsystem
    r = run(argv(xfer_bin, box, user_key, "stat", "/workspace"), timeout=30)
    assert r.rc == 1 and b"not supported" in r.err, r
    # auto: OpenSSH fails, libssh2 (exec mode) serves, and says so once
    r = run(argv(xfer_bin, box, user_key, "exec", "echo via-fallback",
                 transport="auto", extra=["-D", "20000"]), timeout=60)
    assert r.rc == 0 and r.out == b"via-fallback\n", r
    assert r.err.count(b"SSH transport libssh2 (OpenSSH failed") == 1, r


def test_auto_uses_openssh_when_it_works(box_factory, user_key, xfer_bin):
    box = box_factory(populate=False)
    r = run(argv(xfer_bin, box, user_key, "exec", "echo ok", transport="auto",
                 extra=["-D", "20000"]), timeout=60)
    assert r.rc == 0 and r.out == b"ok\n", r
    assert b"SSH transport openssh" in r.err, r


def test_pin_is_shared_by_both_transports(box_factory, user_key, xfer_bin, tmp_path):
    """A box with ECDSA and ed25519 keys: whichever transport pins first,
    the other one accepts the box afterwards (the same key is pinned)."""
    box = box_factory(populate=False, start=False)
    ecdsa = os.path.join(box.dir, "ssh_host_ecdsa_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsa],
                   check=True, stdin=subprocess.DEVNULL)
    box.extra_config.append("HostKey %s" % ecdsa)
    box.write_config()
    box.start()
    ecdsa_fp = run(["ssh-keygen", "-l", "-f", ecdsa + ".pub"]).text.split()[1]
    for n, order in enumerate([("libssh2", "openssh"), ("openssh", "libssh2")]):
        store = str(tmp_path / ("store%d" % n))
        for transport in order:
            r = run(argv(xfer_bin, box, user_key, "exec", "echo ok",
                         transport=transport, extra=["-D", "20000", "-P", store]),
                    timeout=60)
            assert r.rc == 0 and r.out == b"ok\n", (order, transport, r)
            assert ("ecdsa-sha2-nistp256 " + ecdsa_fp).encode() in r.err, r


# ---- through the mount ------------------------------------------------------------------

def test_mount_reads_over_openssh_with_one_scan(world, tmp_path):
    """transport = openssh on a platform section: the daemon's sessions all
    run ssh, share one ssh-keyscan, and keep their key files in the cache."""
    w = world(n=1, populate=True, extra_vastai={"transport": "openssh"})
    box = w.boxes[0]
    data = os.urandom(24 << 20)
    with open(w.box_ck(0, "big.bin"), "wb") as f:
        f.write(data)
    # several readers at once: several sessions open together
    procs = [subprocess.Popen(["sha256sum", w.ck(0, "big.bin")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
             for _ in range(4)]
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert out.split()[0].decode() == hashlib.sha256(data).hexdigest()
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
    logins, unauthenticated = box_log_counts(box)
    assert logins >= 2
    # one ssh-keyscan (two connections) for every session of the box
    assert unauthenticated == 2, (logins, unauthenticated)
    ssh_dir = os.path.join(w.mount.cache, "ssh")
    assert stat.S_IMODE(os.stat(ssh_dir).st_mode) == 0o700
    assert any(n.startswith("kh-%d-" % w.mount.pid) for n in os.listdir(ssh_dir))
    assert "SSH transport openssh" in open(w.mount.log, errors="replace").read()


def test_a_scanned_key_is_pinned_only_once_the_box_proves_it(box_factory, user_key,
                                                            xfer_bin, tmp_path):
    """ssh-keyscan never checks the server's signature: a key it reports
    (here a lying keyscan, as a man in the middle of that one connection
    could make it) must not become the pin. The session fails, nothing is
    pinned, and the next connect pins the box's real key."""
    box = box_factory(populate=False)
    store = str(tmp_path / "store")
    fake = tmp_path / "fakebin"
    fake.mkdir()
    bogus = tmp_path / "bogus"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(bogus)],
                   check=True, stdin=subprocess.DEVNULL)
    pub = open(str(bogus) + ".pub").read().split()
    (fake / "ssh-keyscan").write_text(
        "#!/bin/sh\necho '[127.0.0.1]:%d %s %s'\n" % (box.port, pub[0], pub[1]))
    (fake / "ssh-keyscan").chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ.get("PATH", "/usr/bin:/bin")))
    r = run(argv(xfer_bin, box, user_key, "exec", "echo one", transport="openssh",
                 extra=["-D", "20000", "-P", store]), timeout=60, env=env)
    assert r.rc != 0, r
    bogus_fp = run(["ssh-keygen", "-l", "-f", str(bogus) + ".pub"]).text.split()[1]
    assert ("trusting host key ssh-ed25519 %s" % bogus_fp).encode() not in r.err, r
    # the real key is pinned by the next connect, over either transport
    r = run(argv(xfer_bin, box, user_key, "exec", "echo one", transport="libssh2",
                 extra=["-D", "20000", "-P", store]), timeout=60)
    assert r.rc == 0 and r.out == b"one\n", r
    assert box.host_key_fingerprint().encode() in r.err, r
