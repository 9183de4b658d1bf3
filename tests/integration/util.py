"""Helpers for the rgtfs integration tests (and tools/rgtfs-demo).

Rules these helpers keep:
- Every wait is a bounded poll (wait_until), never a bare sleep used to
  synchronise.
- The test process itself never touches the FUSE mount: a hung daemon would
  hang pytest in an unkillable way. Every access to the mount goes through a
  child process with a timeout (cat, ls, stat, cp, a small python child).
  Mount state is read from /proc/self/mounts, not with stat().
- Processes are started and stopped by PID.
"""

import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time
import zipfile

PY = "/usr/bin/python3"
FUSERMOUNT = "fusermount3"
MIB = 1 << 20


class WaitTimeout(AssertionError):
    pass


def wait_until(pred, timeout, interval=0.05, msg=None):
    """Poll pred() until it returns a truthy value (returned) or timeout passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout("%s: not true within %.1fs (last value %r)"
                              % (msg or getattr(pred, "__name__", "condition"), timeout, last))
        time.sleep(interval)


# ---- child processes -------------------------------------------------------

class Result:
    def __init__(self, argv, rc, out, err, elapsed, timed_out=False):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed, self.timed_out = elapsed, timed_out

    @property
    def text(self):
        return self.out.decode(errors="replace")

    def __repr__(self):
        return ("<Result rc=%s %.2fs%s argv=%r out=%r err=%r>"
                % (self.rc, self.elapsed, " TIMEOUT" if self.timed_out else "",
                   self.argv, self.out[:200], self.err[:300]))


def run(argv, timeout=60, input=None, cwd=None, env=None):
    """Run argv (list, or a string for bash -c); never raises on failure or timeout."""
    if isinstance(argv, str):
        argv = ["bash", "-c", argv]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
        return Result(argv, p.returncode, out, err, time.monotonic() - t0)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out, err = b"", b"(child did not die after SIGKILL)"
        return Result(argv, None, out, err, time.monotonic() - t0, timed_out=True)
    except BaseException:
        # the test's deadline (SIGALRM) or ^C: take the child down with us
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)
        raise


_CHILDREN = []


def spawn(argv, **kw):
    """Popen a long-lived helper child (own session), registered so that
    kill_children() can end it by PID before the mounts are torn down."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    _CHILDREN.append(p)
    return p


def kill_children():
    while _CHILDREN:
        p = _CHILDREN.pop()
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                f.close()


def ok(argv, timeout=60, **kw):
    """run() and assert exit 0; returns the Result."""
    r = run(argv, timeout=timeout, **kw)
    assert r.rc == 0, "command failed: %r" % (r,)
    return r


def cat(path, timeout=30):
    """Bytes of path read by cat(1); asserts success."""
    return ok(["cat", "--", path], timeout=timeout).out


def read_text(path, timeout=30):
    return cat(path, timeout).decode()


# A python child that performs one system call and prints the errno name (or
# OK). Used for the exact errno of calls on the mount.
_OP_CHILD = r'''
import errno, os, sys, time
op, args = sys.argv[1], sys.argv[2:]
a = args
t0 = time.monotonic()
try:
    if op == "open_w":      os.close(os.open(a[0], os.O_WRONLY))
    elif op == "open_rw":   os.close(os.open(a[0], os.O_RDWR))
    elif op == "open_append": os.close(os.open(a[0], os.O_WRONLY | os.O_APPEND))
    elif op == "open_trunc": os.close(os.open(a[0], os.O_WRONLY | os.O_TRUNC))
    elif op == "create":    os.close(os.open(a[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    elif op == "mkdir":     os.mkdir(a[0])
    elif op == "rmdir":     os.rmdir(a[0])
    elif op == "unlink":    os.unlink(a[0])
    elif op == "rename":    os.rename(a[0], a[1])
    elif op == "symlink":   os.symlink(a[0], a[1])
    elif op == "link":      os.link(a[0], a[1])
    elif op == "chmod":     os.chmod(a[0], 0o777)
    elif op == "chown":     os.chown(a[0], 1, 1)
    elif op == "truncate":  os.truncate(a[0], 0)
    elif op == "utime":     os.utime(a[0], (1000000000, 1000000000))
    elif op == "mkfifo":    os.mkfifo(a[0])
    elif op == "setxattr":  os.setxattr(a[0], "user.rgtfs", b"x")
    elif op == "read":
        fd = os.open(a[0], os.O_RDONLY); n = 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b: break
            n += len(b)
        os.close(fd)
    elif op == "listdir":   os.listdir(a[0])
    elif op == "stat":      os.stat(a[0])
    else: raise SystemExit("unknown op " + op)
    print("OK %.3f" % (time.monotonic() - t0))
except OSError as e:
    print("%s %.3f" % (errno.errorcode.get(e.errno, str(e.errno)), time.monotonic() - t0))
'''


def op_errno(op, *args, timeout=60):
    """Run one syscall on the mount in a child; 'OK' or the errno name ('EROFS')."""
    r = run([PY, "-c", _OP_CHILD, op] + list(args), timeout=timeout)
    if r.timed_out:
        return "TIMEOUT"
    assert r.rc == 0, "op child failed: %r" % (r,)
    return r.text.split()[0]


def op_timed(op, *args, timeout=60):
    """Like op_errno, returns (errno name, seconds in the syscall)."""
    r = run([PY, "-c", _OP_CHILD, op] + list(args), timeout=timeout)
    if r.timed_out:
        return "TIMEOUT", r.elapsed
    assert r.rc == 0, "op child failed: %r" % (r,)
    name, secs = r.text.split()
    return name, float(secs)


# A python child that walks a tree and reports, for every entry, its type,
# size, integer mtime and (for regular files) SHA-256. Names are hex so any
# byte (newline, invalid UTF-8) survives.
_SNAP_CHILD = r'''
import hashlib, json, os, stat, sys
root = os.fsencode(sys.argv[1]); hashing = sys.argv[2] == "1"
out = {}
def walk(d, rel):
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name); r = os.path.join(rel, name) if rel else name
        st = os.lstat(p)
        e = {"mode": stat.S_IFMT(st.st_mode), "size": st.st_size, "mtime": int(st.st_mtime)}
        if stat.S_ISREG(st.st_mode) and hashing:
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            e["sha256"] = h.hexdigest()
        out[r.hex()] = e
        if stat.S_ISDIR(st.st_mode):
            walk(p, r)
walk(root, b"")
json.dump(out, sys.stdout)
'''


def snapshot(root, hashing=True, timeout=120):
    """{relpath bytes: {mode,size,mtime[,sha256]}} for a tree (via a child process)."""
    r = run([PY, "-c", _SNAP_CHILD, root, "1" if hashing else "0"], timeout=timeout)
    assert r.rc == 0, "snapshot of %s failed: %r" % (root, r)
    return {bytes.fromhex(k): v for k, v in json.loads(r.out).items()}


def local_snapshot(root, hashing=True):
    """snapshot() of a local (non-FUSE) tree, in-process."""
    import stat as st_
    out = {}
    rootb = os.fsencode(root)
    for d, dirs, files in os.walk(rootb):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            rel = os.path.relpath(p, rootb)
            st = os.lstat(p)
            e = {"mode": st_.S_IFMT(st.st_mode), "size": st.st_size, "mtime": int(st.st_mtime)}
            if st_.S_ISREG(st.st_mode) and hashing:
                e["sha256"] = sha256_file(p)
            out[rel] = e
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MIB), b""):
            h.update(b)
    return h.hexdigest()


def sha256sum(path, timeout=120):
    """SHA-256 by sha256sum(1) (for files on the mount)."""
    r = ok(["sha256sum", "--", path], timeout=timeout)
    return r.out.split()[0].decode().lstrip("\\")


# ---- mounts -----------------------------------------------------------------

def _unescape_mount_field(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mounts():
    """[(source, mountpoint, fstype)] from /proc/self/mounts."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append((_unescape_mount_field(parts[0]),
                            _unescape_mount_field(parts[1]), parts[2]))
    return out


def is_mounted(path, fstype_prefix="fuse"):
    path = os.path.abspath(path)
    return any(mp == path and fs.startswith(fstype_prefix) for _, mp, fs in mounts())


def fuse_mounts_under(prefix):
    prefix = os.path.abspath(prefix)
    return [mp for _, mp, fs in mounts()
            if fs.startswith("fuse") and (mp == prefix or mp.startswith(prefix + "/"))]


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


def write_config(path, *, api_url, ssh_key, connect_timeout=3, io_timeout=5,
                 api_timeout=2, poll_interval=1, stale_after=4,
                 checkpoint_dir="/workspace/checkpoints", log_path="/workspace/train.log",
                 ssh_user="root", api_key_env="VAST_API_KEY", extra_rgtfs=None,
                 extra_vastai=None, kind="vastai", section=None, extra_sections=None):
    lines = ["; written by the rgtfs integration tests",
             "[rgtfs]",
             "connect_timeout = %s" % connect_timeout,
             "io_timeout = %s" % io_timeout]
    for k, v in (extra_rgtfs or {}).items():
        lines.append("%s = %s" % (k, v))
    lines += ["",
              "[%s]" % kind,
              "api_url = %s" % api_url,
              "api_key_env = %s" % api_key_env,
              "api_timeout = %s" % api_timeout,
              "poll_interval = %s" % poll_interval,
              "stale_after = %s" % stale_after,
              "checkpoint_dir = %s" % checkpoint_dir,
              "log_path = %s" % log_path,
              "ssh_user = %s" % ssh_user,
              "ssh_key = %s" % ssh_key]
    if log_path is None:          # no log_path: the platform's log API, if any
        lines.remove("log_path = None")
    for k, v in list((extra_vastai or {}).items()) + list((section or {}).items()):
        lines.append("%s = %s" % (k, v))
    # more sections: {"[cloud:ckpt]": {"bucket": "x", ...}, ...}
    for head, kv in (extra_sections or {}).items():
        lines += ["", head] + ["%s = %s" % (k, v) for k, v in kv.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class MountError(Exception):
    pass


class Mount:
    """One `rgtfs -f` process and its mountpoint, cache, config and log.

    start() waits (bounded) for the mount to appear in /proc/self/mounts and
    fails early when the process exits. unmount() is the clean path
    (fusermount3 -u, exit status recorded). cleanup() always succeeds in
    getting rid of the mount and the process: fusermount3 -u -z, then
    SIGTERM, then SIGKILL, by PID.
    """

    def __init__(self, binary, workdir, env, config, mnt=None, cache=None,
                 extra_args=()):
        self.binary = binary
        self.workdir = workdir
        self.mnt = mnt or os.path.join(workdir, "mnt")
        self.cache = cache or os.path.join(workdir, "cache")
        self.config = config
        self.env = env
        self.log = os.path.join(workdir, "rgtfs.log")
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0
        self.exit_codes = []          # one per finished run: int, or "killed"
        self.problems = []            # lifecycle problems found (reported at teardown)
        self.exit_wait = 15.0         # seconds a daemon gets to exit after unmount
        os.makedirs(self.mnt, exist_ok=True)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        return [self.binary, "-f", "-o", "config=" + self.config,
                "-o", "cache=" + self.cache] + self.extra_args + [self.mnt]

    def start(self, timeout=20.0):
        if self.running():
            raise MountError("already running (pid %d)" % self.pid)
        self.starts += 1
        with open(self.log, "ab") as logf:
            logf.write(b"\n=== test harness: start %d: %s ===\n"
                       % (self.starts, " ".join(self.argv()).encode()))
            logf.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not is_mounted(self.mnt):
            rc = self.proc.poll()
            if rc is not None:
                self.exit_codes.append(rc)
                self.proc = None
                raise MountError("rgtfs exited with %s before mounting:\n%s"
                                 % (rc, self.log_tail()))
            if time.monotonic() > deadline:
                self.cleanup()
                raise MountError("rgtfs did not mount %s within %.0fs:\n%s"
                                 % (self.mnt, timeout, self.log_tail()))
            time.sleep(0.02)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def mounted(self):
        return is_mounted(self.mnt)

    def _wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def unmount(self, timeout=20.0, check=True):
        """Clean unmount: fusermount3 -u (retried while busy); returns the exit code."""
        if self.proc is None:
            return None
        deadline = time.monotonic() + timeout
        while is_mounted(self.mnt):
            r = run([FUSERMOUNT, "-u", self.mnt], timeout=10)
            if r.rc == 0 or not is_mounted(self.mnt):
                break
            if time.monotonic() > deadline:
                self.problems.append("fusermount3 -u kept failing: %r" % (r,))
                run([FUSERMOUNT, "-u", "-z", self.mnt], timeout=10)
                break
            time.sleep(0.1)
        rc = self._wait_exit(max(1.0, deadline - time.monotonic()))
        if rc is None:
            self.problems.append("rgtfs (pid %d) did not exit within %.0fs of unmount"
                                 % (self.pid, timeout))
            self._terminate()
            rc = "killed"
        self.exit_codes.append(rc)
        self.proc = None
        if check:
            assert rc == 0, "rgtfs exited with %s after a clean unmount:\n%s" % (
                rc, self.log_tail())
        return rc

    def crash(self):
        """kill -9 the daemon (a crash), then clear the dead mount."""
        if self.proc is None:
            return
        os.kill(self.proc.pid, signal.SIGKILL)
        self._wait_exit(10)
        self.exit_codes.append("killed")
        self.proc = None
        run([FUSERMOUNT, "-u", "-z", self.mnt], timeout=10)
        wait_until(lambda: not is_mounted(self.mnt), 10, msg="dead mount gone")

    def _terminate(self):
        for sig, t in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            if self._wait_exit(t) is not None:
                return

    def cleanup(self):
        """Always leaves no mount and no process; records problems, never raises."""
        if self.proc is not None:
            if is_mounted(self.mnt):
                run([FUSERMOUNT, "-u", "-z", self.mnt], timeout=10)
            rc = self._wait_exit(self.exit_wait)
            if rc is None:
                self.problems.append("rgtfs (pid %d) did not exit within %.0fs of "
                                     "fusermount3 -u -z; terminated"
                                     % (self.proc.pid, self.exit_wait))
                self._terminate()
                rc = "killed"
            elif rc != 0:
                self.problems.append("rgtfs exited with status %s after unmount" % rc)
            self.exit_codes.append(rc)
            self.proc = None
        if is_mounted(self.mnt):
            run([FUSERMOUNT, "-u", "-z", self.mnt], timeout=10)

    def read_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.read_log().splitlines()[-n:])

    # ---- paths -----------------------------------------------------------
    def p(self, *parts):
        return os.path.join(self.mnt, *[str(x) for x in parts])


# ---- network helpers ----------------------------------------------------------

def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def dead_port(host="127.0.0.1"):
    """A port with nothing listening (connections are refused)."""
    return free_port(host)


class TcpProxy:
    """A user-space TCP forwarder 127.0.0.1:port -> target, for 'proxy'
    endpoints and network faults: blackhole() stops moving bytes while
    keeping every socket open (a silent network), close_all() resets."""

    CHUNK = 65536

    def _throttle(self, n):
        """Called before forwarding n bytes; subclasses slow it down."""

    def __init__(self, target_port, target_host="127.0.0.1", port=0):
        self.target = (target_host, target_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.connections = 0
        self.bytes = 0
        self._blackhole = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks = set()
        self._threads = []
        t = threading.Thread(target=self._accept, name="tcpproxy", daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.lsock], [], [], 0.1)
            if not r:
                continue
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
                self._socks.add(c)
            if self._blackhole.is_set():
                continue          # hold it open, say nothing
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            with self._lock:
                self._socks.add(u)
            t = threading.Thread(target=self._pump, args=(c, u), daemon=True)
            t.start()

    def _pump(self, a, b):
        socks = [a, b]
        try:
            while not self._stop.is_set():
                if self._blackhole.is_set():
                    time.sleep(0.05)
                    continue
                r, _, _ = select.select(socks, [], [], 0.1)
                for s in r:
                    data = s.recv(self.CHUNK)
                    if not data:
                        return
                    self._throttle(len(data))
                    (b if s is a else a).sendall(data)
                    with self._lock:
                        self.bytes += len(data)
        except OSError:
            pass
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass

    def blackhole(self, on=True):
        if on:
            self._blackhole.set()
        else:
            self._blackhole.clear()

    def close_all(self):
        with self._lock:
            socks = list(self._socks)
            self._socks.clear()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.close_all()


class SilentServer:
    """Accepts TCP connections and never sends a byte (a wedged sshd)."""

    def __init__(self):
        self.proxy = TcpProxy(target_port=1)
        self.proxy.blackhole(True)
        self.port = self.proxy.port

    def stop(self):
        self.proxy.stop()


# ---- files on the boxes ----------------------------------------------------------

def pattern_bytes(size, seed):
    """Deterministic pseudo-random bytes (seeded), for small and medium files."""
    return random.Random(seed).randbytes(size)


def write_file(path, data, mtime=None):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def write_big_file(path, size, seed=7, mtime=None):
    """A large file written in 1 MiB tagged blocks (fast); returns its sha256."""
    rnd = random.Random(seed)
    base = bytearray(rnd.randbytes(MIB))
    h = hashlib.sha256()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        off = 0
        while off < size:
            base[0:16] = struct.pack("<QQ", off, seed)
            chunk = bytes(base[: min(MIB, size - off)])
            f.write(chunk)
            h.update(chunk)
            off += len(chunk)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return h.hexdigest()


BASE_MTIME = 1753860000


def torch_like_zip(path, nbytes, seed=1, mtime=None):
    """A zip laid out like torch.save's format (archive/data.pkl, data/N, version)."""
    rnd = random.Random(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Fixed entry timestamps: the same seed gives the same bytes, as a
    # checkpoint rewritten with the same size and mtime would need to be
    # for a cache keyed by (size, mtime) to be right about it.
    def entry(name):
        return zipfile.ZipInfo(name, date_time=(2025, 7, 30, 0, 0, 0))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(entry("archive/data.pkl"), b"\x80\x02}q\x00(X\x10\x00\x00\x00model_state_dictq\x01}q\x02u.")
        z.writestr(entry("archive/byteorder"), b"little")
        per = max(1, nbytes // 4)
        for i in range(4):
            z.writestr(entry("archive/data/%d" % i), rnd.randbytes(per))
        z.writestr(entry("archive/version"), b"3\n")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def safetensors_file(path, n_floats=65536, seed=2, mtime=None):
    """A .safetensors with a valid header (u64 LE length, JSON, data)."""
    rnd = random.Random(seed)
    a = n_floats // 2
    b = n_floats - a
    header = {
        "__metadata__": {"format": "pt"},
        "layer.weight": {"dtype": "F32", "shape": [a], "data_offsets": [0, 4 * a]},
        "layer.bias": {"dtype": "F32", "shape": [b], "data_offsets": [4 * a, 4 * (a + b)]},
    }
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    data = struct.pack("<%df" % n_floats, *(rnd.uniform(-1, 1) for _ in range(n_floats)))
    write_file(path, struct.pack("<Q", len(hj)) + hj + data, mtime)
    return path


def make_sample_workspace(workspace, seed=0, big=False):
    """Fill a box's /workspace: checkpoints/ with a torch-like zip, a
    safetensors, JSON metrics, a nested step dir, and train.log. All mtimes are
    whole seconds (SFTP v3 carries seconds). Returns the checkpoint dir."""
    ck = os.path.join(workspace, "checkpoints")
    run_dir = os.path.join(ck, "run-001")
    t = BASE_MTIME + seed * 1000
    torch_like_zip(os.path.join(run_dir, "best.pth"), 3 * MIB, seed=seed + 1, mtime=t + 10)
    safetensors_file(os.path.join(run_dir, "model.safetensors"), 262144, seed=seed + 2,
                     mtime=t + 20)
    write_file(os.path.join(run_dir, "best_metrics.json"),
               json.dumps({"epoch": 12, "val_loss": 0.1234, "seed": seed}).encode() + b"\n",
               t + 30)
    for step in (1000, 2000):
        d = os.path.join(ck, "run-001", "step-%05d" % step)
        write_file(os.path.join(d, "optimizer.bin"), pattern_bytes(300000 + step, seed + step),
                   t + step)
        write_file(os.path.join(d, "small.txt"), b"step %d seed %d\n" % (step, seed), t + step + 1)
        os.utime(d, (t + step + 2, t + step + 2))
    write_file(os.path.join(ck, "empty.bin"), b"", t + 40)
    os.makedirs(os.path.join(ck, "empty-dir"), exist_ok=True)
    os.utime(os.path.join(ck, "empty-dir"), (t + 41, t + 41))
    os.utime(run_dir, (t + 50, t + 50))
    os.utime(ck, (t + 60, t + 60))
    log = "".join("step %d loss %.4f seed %d\n" % (i, 2.0 / (i + 1), seed) for i in range(200))
    write_file(os.path.join(workspace, "train.log"), log.encode(), t + 70)
    return ck


def box_tree_sha(workspace):
    """A digest of every byte, name, size and mtime under a box's /workspace."""
    snap = local_snapshot(workspace)
    return hashlib.sha256(json.dumps(sorted((k.hex(), sorted(v.items())) for k, v in snap.items()))
                          .encode()).hexdigest()


def tree_diff(got, want, dir_sizes=False):
    """Readable differences between two snapshots ([] when equal). Directory
    sizes are ignored unless asked for (they are filesystem-specific)."""
    import stat as st_
    out = []
    for k in sorted(set(got) | set(want)):
        g, w = got.get(k), want.get(k)
        name = k.decode(errors="backslashreplace")
        if g is None:
            out.append("missing on mount: %r" % name)
            continue
        if w is None:
            out.append("extra on mount: %r" % name)
            continue
        g, w = dict(g), dict(w)
        if not dir_sizes and st_.S_ISDIR(w["mode"]):
            g.pop("size", None)
            w.pop("size", None)
        if g != w:
            out.append("%r: mount %r != box %r" % (name, g, w))
    return out


def ls(path, timeout=30):
    """Names in a directory as listed by ls -A (one per line; names must not hold newlines)."""
    return set(ok(["ls", "-A", "--", path], timeout=timeout).text.splitlines())


def listdir_raw(path, timeout=30):
    """Exact entry names (bytes) of a directory, via a child process."""
    r = ok([PY, "-c", "import os,sys; print(' '.join(n.hex() for n in os.listdir(os.fsencode(sys.argv[1]))))",
            path], timeout=timeout)
    return {bytes.fromhex(h) for h in r.text.split()}


# ---- teardown helpers (test_teardown.py) -------------------------------------------

class ThrottledProxy(TcpProxy):
    """A TcpProxy that moves at most `rate` bytes per second in total (both
    directions, every connection), so a pull of a big file takes long enough
    for a test to act in the middle of it. proxy.bytes counts what moved."""

    CHUNK = 32 * 1024

    def __init__(self, target_port, rate, **kw):
        self.rate = float(rate)
        self._tb_lock = threading.Lock()
        self._tb_next = 0.0
        super().__init__(target_port, **kw)

    def _throttle(self, n):
        with self._tb_lock:
            now = time.monotonic()
            start = max(now, self._tb_next)
            self._tb_next = start + n / self.rate
        if start > now:
            time.sleep(start - now)


# A child that appends CHUNK random bytes to a file every INTERVAL seconds
# until killed (a training job still writing its checkpoint).
_APPEND_CHILD = r'''
import os, sys, time
path, interval, chunk = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
print("STARTED", flush=True)
while True:
    with open(path, "ab") as f:
        f.write(os.urandom(chunk))
    time.sleep(interval)
'''


def start_appender(path, interval=0.05, chunk=4096):
    """Spawn a background writer appending to path (registered for kill_children);
    returns once it has started appending."""
    p = spawn([PY, "-c", _APPEND_CHILD, path, str(interval), str(chunk)],
              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    r, _, _ = select.select([p.stdout], [], [], 10)
    assert r and p.stdout.readline() == b"STARTED\n", "appender did not start"
    return p


def stop_child(p, timeout=10):
    """SIGKILL one spawned child (and its process group) by PID and reap it."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def spawn_op(op, *args, user=None):
    """Start the one-syscall child of op_errno() in the background (e.g. an
    rmdir that blocks for the whole teardown); read it with op_result().
    user=(uid, gid) runs it as that user through setpriv."""
    argv = [PY, "-c", _OP_CHILD, op] + list(args)
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user[0], "--regid=%d" % user[1],
                "--clear-groups"] + argv
    return spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)


def op_result(p, timeout):
    """(errno name or 'OK' or 'TIMEOUT', seconds) of a spawn_op() child."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "TIMEOUT", float(timeout)
    assert p.returncode == 0, "op child failed: rc=%s err=%r" % (p.returncode, err[-300:])
    name, secs = out.decode().split()
    return name, float(secs)


def op_errno_as(user, op, *args, timeout=60):
    """op_errno() run as another user: user=(uid, gid), through setpriv."""
    p = spawn_op(op, *args, user=user)
    name, _ = op_result(p, timeout)
    if name == "TIMEOUT":
        stop_child(p)
    return name


def flip_in_cache(cache, mark):
    """Flip one bit of every copy of bytes @mark in CACHE/data.mdb (rgtfs
    unmounted: a bit gone bad on disk); how many copies there were."""
    p = os.path.join(cache, "data.mdb")
    with open(p, "r+b") as f:
        data = f.read()
        hits = [m.start() for m in re.finditer(re.escape(mark), data)]
        for at in hits:
            f.seek(at + 3)
            f.write(bytes([data[at + 3] ^ 0x01]))
        f.flush()
        os.fsync(f.fileno())
    return len(hits)


def mount_tmpfs(path, size):
    """Mount a tmpfs of `size` (e.g. '24m') on path (created 0700)."""
    os.makedirs(path, exist_ok=True)
    ok(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path], timeout=20)
    assert is_mounted(path, "tmpfs"), "tmpfs not mounted on %s" % path
    return path


def umount_tmpfs(path):
    """Unmount a tmpfs from mount_tmpfs (lazily if it is busy). Never raises."""
    for _ in range(3):
        if not is_mounted(path, "tmpfs"):
            return True
        r = run(["umount", path], timeout=20)
        if r.rc != 0:
            time.sleep(0.2)
    if is_mounted(path, "tmpfs"):
        run(["umount", "-l", path], timeout=20)
    return not is_mounted(path, "tmpfs")


def npy_bytes(values, dtype="<f4"):
    """A .npy file (format 1.0) of a 1-D float32 array, built by hand."""
    n = len(values)
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (dtype, n)
    total = 10 + len(header) + 1
    header += " " * ((64 - total % 64) % 64) + "\n"
    hb = header.encode("latin1")
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hb)) + hb
            + struct.pack("<%df" % n, *values))


def flip_byte_in_zip_entry(path, entry):
    """Flip one byte in the middle of a stored zip entry's data (its CRC-32 then
    fails); keeps the file's mtime. Returns the offset flipped."""
    st = os.stat(path)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry)
    assert info.compress_type == zipfile.ZIP_STORED and info.compress_size > 2
    with open(path, "r+b") as f:
        f.seek(info.header_offset)
        hdr = f.read(30)
        assert hdr[:4] == b"PK\x03\x04"
        nlen, xlen = struct.unpack("<HH", hdr[26:30])
        off = info.header_offset + 30 + nlen + xlen + info.compress_size // 2
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return off
