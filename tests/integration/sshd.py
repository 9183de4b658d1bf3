"""A private OpenSSH sshd that plays one rented GPU box.

Each Box has its own directory with an sshd_config, a generated ed25519 host
key, an authorized_keys file, a pid file and a log, and its own /workspace:
sshd runs in a private mount namespace in which BOXDIR/workspace is
bind-mounted on /workspace, so two boxes on one machine serve different
/workspace trees under the same remote path, as two rented boxes would.

    unshare -m --propagation private sh -c \
        'mount --bind BOXDIR/workspace /workspace && exec /usr/sbin/sshd -D -e -f CONF'

unshare and sh both exec, so the Popen pid is sshd's own (the listener).
sshd forks one child per connection and the child calls setsid(), so the
connection processes are not in the listener's process group; they are found
by their mount namespace instead, which is private to this box. Every kill is
by PID, and a namespace is never used for killing when it equals our own.

Needs root (unshare -m, mount --bind) and /usr/sbin/sshd.
Usable from tests and from tools/rgtfs-demo (state kept in BOXDIR/box.json so
another process can stop a box it did not start).
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import time

import util

SSHD = "/usr/sbin/sshd"
SSH_OPTS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=5",
    "-o", "LogLevel=ERROR",
]


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def gen_keypair(path, comment="rgtfs-test"):
    """Generate an ed25519 key pair at path / path.pub (replacing any)."""
    for p in (path, path + ".pub"):
        if os.path.exists(p):
            os.unlink(p)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", path], check=True, stdin=subprocess.DEVNULL)
    os.chmod(path, 0o600)
    return path


def fuse_mountpoints():
    """Mountpoints of every FUSE filesystem in our mount namespace."""
    return [mp for _, mp, fstype in util.mounts()
            if fstype.startswith("fuse") and fstype != "fusectl"]


def _mntns(pid):
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    # state is the field after the parenthesised comm
    return st[st.rindex(")") + 2] not in "ZX"


def pids_in_mntns(ns):
    """PIDs whose mount namespace is ns (never when ns is our own)."""
    if not ns or ns == _mntns(os.getpid()):
        return []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            pid = int(d)
            if pid != os.getpid() and _mntns(pid) == ns:
                out.append(pid)
    return out


class BoxError(Exception):
    pass


class Box:
    """One private sshd on 127.0.0.1:port serving BOXDIR/workspace as /workspace."""

    def __init__(self, boxdir, authorized_keys, port=None, sftp=True,
                 name="box", host="127.0.0.1", max_startups="100:30:200"):
        self.dir = os.path.abspath(boxdir)
        self.name = name
        self.host = host
        self.port = port or free_port(host)
        self.sftp = sftp
        self.max_startups = max_startups
        self.extra_config = []        # more sshd_config lines (write_config)
        # Environment of every session (one SetEnv line: sshd takes only the
        # first). A HOME of its own keeps sessions from sourcing this
        # machine's /root/.bashrc, whose `pyenv rehash` leaves a lock behind
        # when a box is killed mid-command; every later command on every box
        # then waits 60 s for it.
        self.setenv = {"HOME": os.path.join(self.dir, "home")}
        self.workspace = os.path.join(self.dir, "workspace")
        self.conf = os.path.join(self.dir, "sshd_config")
        self.host_key = os.path.join(self.dir, "ssh_host_ed25519_key")
        self.auth_keys = os.path.join(self.dir, "authorized_keys")
        self.pidfile = os.path.join(self.dir, "sshd.pid")
        self.log = os.path.join(self.dir, "sshd.log")
        self.state = os.path.join(self.dir, "box.json")
        self.proc = None
        self.pid = None
        self.ns = None
        os.makedirs(self.workspace, exist_ok=True)
        if isinstance(authorized_keys, str):
            authorized_keys = [authorized_keys]
        self.set_authorized_keys(authorized_keys)
        if not os.path.exists(self.host_key):
            self.regenerate_host_key()
        self.write_config()

    # ---- configuration -------------------------------------------------

    def set_authorized_keys(self, pubkey_paths):
        lines = []
        for p in pubkey_paths:
            with open(p) as f:
                lines.append(f.read().strip())
        with open(self.auth_keys, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.auth_keys, 0o600)

    def regenerate_host_key(self):
        gen_keypair(self.host_key, comment="hostkey-" + self.name)

    def host_key_fingerprint(self):
        r = subprocess.run(["ssh-keygen", "-l", "-f", self.host_key + ".pub"],
                           capture_output=True, text=True, check=True)
        return r.stdout.split()[1]

    def host_pubkey(self):
        with open(self.host_key + ".pub") as f:
            return f.read().strip()

    def write_config(self):
        lines = [
            "Port %d" % self.port,
            "ListenAddress %s" % self.host,
            "HostKey %s" % self.host_key,
            "PidFile %s" % self.pidfile,
            "AuthorizedKeysFile %s" % self.auth_keys,
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "MaxStartups %s" % self.max_startups,
            "MaxSessions 64",
            "LogLevel VERBOSE",
        ]
        if self.sftp:
            lines.append("Subsystem sftp internal-sftp")
        env = getattr(self, "setenv", {})
        if env:
            if "HOME" in env:
                os.makedirs(env["HOME"], exist_ok=True)
            lines.append("SetEnv " + " ".join("%s=%s" % kv for kv in sorted(env.items())))
        lines += getattr(self, "extra_config", [])
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def set_sftp(self, on):
        """Turn the sftp Subsystem on/off (takes effect at the next start)."""
        self.sftp = on
        self.write_config()

    # ---- lifecycle -------------------------------------------------------

    def _save_state(self):
        with open(self.state, "w") as f:
            json.dump({"name": self.name, "port": self.port, "pid": self.pid,
                       "ns": self.ns, "host": self.host}, f)

    def start(self, timeout=10.0, detach=False):
        """Start sshd and wait (bounded) until it answers with an SSH banner."""
        if self.is_running():
            raise BoxError("box %s already running (pid %d)" % (self.name, self.pid))
        os.makedirs("/workspace", exist_ok=True)
        os.makedirs("/run/sshd", exist_ok=True)
        os.chmod("/run/sshd", 0o755)
        # The new namespace starts as a copy of ours, FUSE mounts included.
        # A copy keeps a FUSE filesystem alive after it is unmounted here
        # (its daemon would never see DESTROY and never exit), so the box
        # detaches every FUSE mount in its own namespace first.
        inner = ('for m in "$@"; do umount -l "$m" 2>/dev/null; done; '
                 "mount --bind %s /workspace && exec %s -D -e -f %s" % (
                     shlex.quote(self.workspace), SSHD, shlex.quote(self.conf)))
        logf = open(self.log, "ab")
        logf.write(b"=== start %s port %d ===\n" % (self.name.encode(), self.port))
        logf.flush()
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "sh"]
            + fuse_mountpoints(),
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            start_new_session=detach, close_fds=True)
        logf.close()
        self.pid = self.proc.pid
        self.ns = None
        own = _mntns(os.getpid())
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BoxError("sshd for %s exited with %s:\n%s" % (
                    self.name, self.proc.returncode, self.log_tail()))
            ns = _mntns(self.pid)
            if ns and ns != own and self._banner_ok():
                self.ns = ns
                break
            if time.monotonic() > deadline:
                self.kill()
                raise BoxError("sshd for %s did not answer on port %d within %.0fs:\n%s"
                               % (self.name, self.port, timeout, self.log_tail()))
            time.sleep(0.02)
        self._save_state()
        return self

    def _banner_ok(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                s.settimeout(1.0)
                return s.recv(64).startswith(b"SSH-2.0")
        except OSError:
            return False

    def is_running(self):
        return self.pid is not None and _pid_alive(self.pid)

    def processes(self):
        """PIDs of the listener and every connection process of this box."""
        return pids_in_mntns(self.ns)

    def _signal_all(self, sig, listener_only=False):
        pids = []
        if self.pid and _pid_alive(self.pid):
            pids.append(self.pid)
        if not listener_only:
            # snapshot the session processes before the listener dies
            pids += [p for p in self.processes() if p != self.pid]
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        return pids

    def _wait_gone(self, pids, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                self.proc.poll()
            if not any(_pid_alive(p) for p in pids):
                return True
            time.sleep(0.02)
        return False

    def _forget_ns(self, gone):
        # Linux reuses a dead namespace's id: once every process of this box
        # is gone, its id may soon name another box's namespace, and a later
        # kill() of this box would signal that one. Forget it.
        if gone:
            self.ns = None

    def stop(self, timeout=5.0):
        """Take the box off the network: SIGTERM listener + sessions, then SIGKILL."""
        pids = self._signal_all(signal.SIGTERM)
        gone = self._wait_gone(pids, timeout)
        if not gone:
            pids = self._signal_all(signal.SIGKILL)
            gone = self._wait_gone(pids, timeout)
        self._reap()
        self._forget_ns(gone)

    def kill(self, timeout=5.0):
        """SIGKILL sshd and every session at once (a box that vanished)."""
        pids = self._signal_all(signal.SIGKILL)
        gone = self._wait_gone(pids, timeout)
        self._reap()
        self._forget_ns(gone)

    def kill_listener(self):
        """Kill only the listener: new connections are refused, old ones live."""
        pids = self._signal_all(signal.SIGKILL, listener_only=True)
        self._wait_gone(pids, 5.0)
        self._reap()

    def _reap(self):
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass

    def restart(self, port=None, timeout=10.0):
        """Stop and start again, on the same port unless one is given."""
        self.stop()
        if port is not None and port != self.port:
            self.port = port
            self.write_config()
        return self.start(timeout=timeout)

    def recreate(self, port=None):
        """The same instance id re-created: new host key, same (or given) port."""
        self.stop()
        self.regenerate_host_key()
        if port is not None:
            self.port = port
        self.write_config()
        return self.start()

    def log_tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    # ---- talking to it as a user would ------------------------------------

    def ssh_argv(self, key, *cmd):
        return (["ssh", "-p", str(self.port), "-i", key] + SSH_OPTS
                + ["root@" + self.host, "--"] + list(cmd))

    def ssh(self, key, cmd, timeout=20, input=None):
        """Run a shell command on the box with real ssh; CompletedProcess (bytes)."""
        return subprocess.run(self.ssh_argv(key, cmd), input=input,
                              capture_output=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def sftp_batch(self, key, batch, timeout=20):
        """Run an sftp batch (string) with real sftp; CompletedProcess (text)."""
        return subprocess.run(
            ["sftp", "-P", str(self.port), "-i", key] + SSH_OPTS
            + ["-b", "-", "root@" + self.host],
            input=batch, capture_output=True, text=True, timeout=timeout)

    # ---- local view of the box's files ----------------------------------

    def local(self, remote_path):
        """The local path of a remote /workspace path (what sshd serves)."""
        if not remote_path.startswith("/workspace"):
            raise ValueError("only /workspace is private to a box: %r" % remote_path)
        rel = remote_path[len("/workspace"):].lstrip("/")
        return os.path.join(self.workspace, rel) if rel else self.workspace

    def __repr__(self):
        return "<Box %s 127.0.0.1:%d pid=%s>" % (self.name, self.port, self.pid)


def stop_saved_box(boxdir, timeout=5.0):
    """Stop a box started by another process, from BOXDIR/box.json (demo down)."""
    try:
        with open(os.path.join(boxdir, "box.json")) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return False
    pids = []
    pid, ns = st.get("pid"), st.get("ns")
    if pid and _pid_alive(pid) and _mntns(pid) == ns:
        pids.append(pid)
    pids += [p for p in pids_in_mntns(ns) if p not in pids]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.05)
        if not any(_pid_alive(p) for p in pids):
            break
    return True
