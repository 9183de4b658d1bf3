"""Fixtures for the contract suite: one world per platform kind.

    cworld(n=1, populate=True, mount=True, **config) -> CWorld

gives n sshd boxes (conftest.box_factory), the kind's stand-in listing box i
as instance ids[i] (direct endpoint = its port), and an rgtfs mount whose
config has one section [<kind>] pointing at the stand-in, with the key in the
module's API_KEY_ENV. Config keys are util.write_config's; `section` adds
keys to the platform section (on top of the module's SECTION).
"""

import os
import random

import pytest

import conftest
import util
from platforms import PLATFORMS, fake_class, fake_module, make_instance
from util import Mount, write_config, wait_until

KEY_ENVS = ("VAST_API_KEY", "RUNPOD_API_KEY", "LAMBDA_API_KEY", "PAPERSPACE_API_KEY",
            "AUTODL_TOKEN")


class CWorld:
    def __init__(self, kind, api, boxes, ids, mount):
        self.kind, self.api, self.boxes, self.ids, self.mount = kind, api, boxes, ids, mount
        self.mod = fake_module(kind)

    @property
    def mnt(self):
        return self.mount.mnt

    def kdir(self):
        return os.path.join(self.mount.mnt, self.kind)

    def idir(self, i=0):
        return os.path.join(self.kdir(), str(self.ids[i]))

    def f(self, i, *parts):
        return os.path.join(self.idir(i), *parts)

    def box_ck(self, i=0, *parts):
        return os.path.join(self.boxes[i].workspace, "checkpoints", *parts)

    def archive(self, i=0):
        return os.path.join(self.mount.mnt, "archive", self.kind, str(self.ids[i]))

    def status(self, i=0):
        return util.read_text(self.f(i, "status"))

    def error(self):
        return util.read_text(os.path.join(self.kdir(), ".error"))

    def listed(self):
        r = util.run(["ls", "-A", "--", self.kdir()], timeout=30)
        return set(r.text.split()) if r.rc == 0 else set()

    def start(self):
        self.mount.start()
        for iid in self.ids:
            wait_until(lambda: str(iid) in self.listed(), 10,
                       msg="%s instance %s listed" % (self.kind, iid))
        return self


@pytest.fixture(params=PLATFORMS)
def kind(request):
    return request.param


@pytest.fixture
def cfake(kind, hygiene):
    api = fake_class(kind)("%s-test-key-%016x" % (kind, random.getrandbits(64)))
    api.on_fault = hygiene.fault
    api.start()
    yield api
    api.stop()


@pytest.fixture
def cworld(kind, cfake, box_factory, tmp_path, rgtfs_bin, user_key, hygiene):
    mod = fake_module(kind)
    made = []

    def make(n=1, populate=True, mount=True, section=None, **cfg):
        boxes = [box_factory(populate=populate) for _ in range(n)]
        ids = mod.new_ids(n)
        for b, iid in zip(boxes, ids):
            cfake.add(make_instance(kind, iid, direct_port=b.port))
        workdir = str(tmp_path / ("cmount%d" % len(made)))
        os.makedirs(workdir, exist_ok=True)
        sec = dict(mod.SECTION)
        sec.update(section or {})
        conf = write_config(os.path.join(workdir, "rgtfs.ini"), api_url=cfake.url,
                            ssh_key=user_key, kind=kind, api_key_env=mod.API_KEY_ENV,
                            section=sec, **cfg)
        env = conftest._rgtfs_env(workdir, None)
        for k in KEY_ENVS:
            env.pop(k, None)
        env[mod.API_KEY_ENV] = cfake.api_key
        m = Mount(rgtfs_bin, workdir, env, conf)
        made.append(m)
        w = CWorld(kind, cfake, boxes, ids, m)
        if mount:
            w.start()
        return w
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
