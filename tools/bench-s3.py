#!/usr/bin/env python3
"""bench-s3.py - cold read of one object through rgtfs (MOUNT/cloud/NAME)
next to `rclone mount` of the same bucket on the same private S3 server
(@20minutes/s3rver on loopback, tests/integration/s3server.py).

    tools/bench-s3.py [SIZE_MIB] [RGTFS_BINARY] [RUNS]

Each run reads the object once, cold: a fresh rgtfs cache (a new mount) and
a fresh rclone mount (no VFS cache), the page cache dropped before each.
Prints one line per run and the medians with their ratio. Needs root (FUSE,
drop_caches), rclone (apt), node and the server (tools/install-s3rver.sh).
Every process and mount it starts is stopped by PID on exit.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from s3server import S3Server  # noqa: E402

BUCKET = "bench"
KEY = "ckpt/model.bin"


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def wait_mounted(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%s)" % (proc.args[0], proc.returncode))
        if os.path.ismount(path):
            return
        time.sleep(0.05)
    raise RuntimeError("%s not mounted within %ss" % (path, timeout))


def unmount(path, proc):
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", path], check=False)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", "-z", path], check=False)


def timed_read(path):
    drop_caches()
    t0 = time.monotonic()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(4 << 20)
            if not b:
                break
            n += len(b)
    return n, time.monotonic() - t0


def rgtfs_run(rgtfs, work, s3, size):
    d = tempfile.mkdtemp(dir=work, prefix="rgtfs.")
    mnt = os.path.join(d, "mnt")
    os.makedirs(mnt)
    conf = os.path.join(d, "rgtfs.ini")
    with open(conf, "w") as f:
        f.write("[cloud:bench]\nendpoint = %s\nregion = us-east-1\nbucket = %s\n"
                % (s3.endpoint, BUCKET))
    env = dict(os.environ, **s3.env(), HOME=d)
    p = subprocess.Popen([rgtfs, "-f", "-o", "config=" + conf, "-o",
                          "cache=" + os.path.join(d, "cache"), mnt], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
    try:
        wait_mounted(mnt, p)
        n, secs = timed_read(os.path.join(mnt, "cloud", "bench", *KEY.split("/")))
    finally:
        unmount(mnt, p)
    assert n == size, (n, size)
    shutil.rmtree(d, ignore_errors=True)
    return secs


def rclone_run(work, s3, size):
    d = tempfile.mkdtemp(dir=work, prefix="rclone.")
    mnt = os.path.join(d, "mnt")
    os.makedirs(mnt)
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(RCLONE_CONFIG_B_TYPE="s3", RCLONE_CONFIG_B_PROVIDER="Other",
               RCLONE_CONFIG_B_ENDPOINT=s3.endpoint, RCLONE_CONFIG_B_REGION="us-east-1",
               RCLONE_CONFIG_B_ACCESS_KEY_ID=s3.access_key,
               RCLONE_CONFIG_B_SECRET_ACCESS_KEY=s3.secret_key,
               RCLONE_CONFIG_B_FORCE_PATH_STYLE="true", HOME=d)
    p = subprocess.Popen(["rclone", "mount", "--read-only", "b:" + BUCKET, mnt],
                         env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "log"), "w"))
    try:
        wait_mounted(mnt, p)
        n, secs = timed_read(os.path.join(mnt, *KEY.split("/")))
    finally:
        unmount(mnt, p)
    assert n == size, (n, size)
    shutil.rmtree(d, ignore_errors=True)
    return secs


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    rgtfs = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "build/rgtfs")
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    size = mib << 20
    work = tempfile.mkdtemp(prefix="rgtfs-bench-s3.")
    s3 = S3Server(os.path.join(work, "s3"), silent=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        s3.start()
        s3.make_bucket(BUCKET)
        src = os.path.join(work, "src.bin")
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        s3.put_file(BUCKET, KEY, src)
        os.unlink(src)
        res = {"rgtfs": [], "rclone": []}
        for i in range(runs):
            for name, fn in (("rgtfs", lambda: rgtfs_run(rgtfs, work, s3, size)),
                             ("rclone", lambda: rclone_run(work, s3, size))):
                secs = fn()
                res[name].append(mib / secs)
                print("run %d  %-7s %7.1f MiB/s  (%.2f s)" % (i + 1, name, mib / secs, secs),
                      flush=True)
        a = statistics.median(res["rgtfs"])
        b = statistics.median(res["rclone"])
        print("median  rgtfs %.1f MiB/s, rclone mount %.1f MiB/s: %.2fx  (%d MiB, %d runs)"
              % (a, b, a / b, mib, runs))
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
