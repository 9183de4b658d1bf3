"""Every platform side by side from one config, in one mount.

One section per kind the contract suite knows (each with its own stand-in
and box), a second vast.ai account ([vastai:work], another stand-in, the
same MOUNT/vastai directory) and a plain [ssh:lab] host. Each directory
shows its instances with the right status and serves the boxes' bytes; a
teardown of the second account's instance sends its DELETE to that account
alone.
"""

import os
import random

import pytest

import conftest
import util
from contract_world import KEY_ENVS
from platforms import PLATFORMS, fake_class, fake_module, make_instance
from util import Mount, cat, ls, read_text, wait_until


def section(kind, name, url, env, key, extra):
    head = "[%s]" % kind if name is None else "[%s:%s]" % (kind, name)
    lines = [head, "api_url = %s" % url, "api_key_env = %s" % env,
             "api_timeout = 2", "poll_interval = 1", "stale_after = 4",
             "checkpoint_dir = /workspace/checkpoints",
             "log_path = /workspace/train.log", "ssh_user = root",
             "ssh_key = %s" % key]
    lines += ["%s = %s" % kv for kv in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def all_world(box_factory, tmp_path, rgtfs_bin, user_key, hygiene):
    fakes, mounts = [], []
    workdir = str(tmp_path / "all")
    os.makedirs(workdir, exist_ok=True)
    env = conftest._rgtfs_env(workdir, None)
    for k in KEY_ENVS:
        env.pop(k, None)
    text = ["[rgtfs]\nconnect_timeout = 3\nio_timeout = 5\n"]
    world = {}
    # every kind, and vast.ai twice (a second account shares the directory)
    for kind, name in [(k, None) for k in PLATFORMS] + [("vastai", "work")]:
        mod = fake_module(kind)
        api = fake_class(kind)("%s-key-%016x" % (kind, random.getrandbits(64)))
        api.on_fault = hygiene.fault
        api.start()
        fakes.append(api)
        box = box_factory()
        iid = mod.new_ids(1)[0]
        api.add(make_instance(kind, iid, direct_port=box.port))
        var = mod.API_KEY_ENV if name is None else mod.API_KEY_ENV + "_WORK"
        env[var] = api.api_key
        text.append(section(kind, name, api.url, var, user_key, dict(mod.SECTION)))
        world[(kind, name)] = (api, box, str(iid))
    lab = box_factory()
    text.append("[ssh:lab]\nhost = 127.0.0.1\nport = %d\nuser = root\nssh_key = %s\n"
                "checkpoint_dir = /workspace/checkpoints\npoll_interval = 1\n"
                % (lab.port, user_key))
    world[("ssh", None)] = (None, lab, "lab")
    conf = os.path.join(workdir, "rgtfs.ini")
    with open(conf, "w") as f:
        f.write("\n".join(text))
    m = Mount(rgtfs_bin, workdir, env, conf)
    mounts.append(m)
    m.start()
    yield m, world
    util.kill_children()
    problems = []
    for mm in mounts:
        mm.cleanup()
        problems += ["%s: %s" % (mm.mnt, p) for p in mm.problems]
        problems += hygiene.check(mm.read_log())
    for api in fakes:
        api.stop()
    if problems:
        pytest.fail("mount teardown:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.mark.deadline(240)
def test_every_platform_side_by_side(all_world):
    m, world = all_world
    kinds = set(PLATFORMS) | {"ssh"}
    wait_until(lambda: kinds | {"archive"} <= ls(m.mnt), 10, msg="every directory")
    rel = os.path.join("run-001", "best_metrics.json")
    for (kind, name), (api, box, iid) in world.items():
        d = os.path.join(m.mnt, kind, iid)
        wait_until(lambda: iid in ls(os.path.join(m.mnt, kind)), 15,
                   msg="%s:%s lists %s" % (kind, name, iid))
        wait_until(lambda: read_text(os.path.join(d, "status")) == "running\n", 15,
                   msg="%s/%s running" % (kind, iid))
        want = open(os.path.join(box.workspace, "checkpoints", rel), "rb").read()
        assert cat(os.path.join(d, "checkpoints", rel)) == want, (kind, name)
    for kind in kinds:
        assert read_text(os.path.join(m.mnt, kind, ".error")) == "", kind
    # both vast.ai accounts in one directory
    vast = ls(os.path.join(m.mnt, "vastai"))
    assert {world[("vastai", None)][2], world[("vastai", "work")][2]} <= vast

    # the second account's instance: its DELETE goes to that account only
    api, box, iid = world[("vastai", "work")]
    err = util.op_errno("rmdir", os.path.join(m.mnt, "vastai", iid), timeout=120)
    assert err == "OK", read_text(os.path.join(m.mnt, "vastai", iid, "teardown"))
    assert len(api.deletes()) == 1
    for (kind, name), (other, _, _) in world.items():
        if other is not None and other is not api:
            assert other.deletes() == [] and other.mutations() == [], (kind, name)
    assert iid in ls(os.path.join(m.mnt, "archive", "vastai"))
    assert cat(os.path.join(m.mnt, "archive", "vastai", iid, "checkpoints", rel)) == \
        open(os.path.join(box.workspace, "checkpoints", rel), "rb").read()
    # the first account's instance is untouched
    first = world[("vastai", None)][2]
    assert read_text(os.path.join(m.mnt, "vastai", first, "status")) == "running\n"


@pytest.mark.deadline(240)
def test_two_accounts_of_one_kind_keep_their_instances_across_a_remount(all_world):
    """Records of [vastai] and [vastai:work] share the kind's key space: after
    a remount each section must load only its own, or the other's instance
    would be absent from its complete list, shown gone, and archived by an
    rmdir without a teardown."""
    m, world = all_world
    rel = os.path.join("run-001", "best_metrics.json")
    (api1, _, first), (api2, box2, second) = world[("vastai", None)], world[("vastai", "work")]
    for iid in (first, second):
        d = os.path.join(m.mnt, "vastai", iid)
        wait_until(lambda: iid in ls(os.path.join(m.mnt, "vastai")), 15,
                   msg="%s listed" % iid)
        wait_until(lambda: read_text(os.path.join(d, "status")) == "running\n", 15,
                   msg="%s running" % iid)
        cat(os.path.join(d, "checkpoints", rel))          # cached data of both
    assert m.unmount() == 0
    m.start()
    n1, n2 = api1.list_calls(), api2.list_calls()
    wait_until(lambda: api1.list_calls() >= n1 + 3 and api2.list_calls() >= n2 + 3, 20,
               msg="three polls of each account")
    for iid in (first, second):
        wait_until(lambda: iid in ls(os.path.join(m.mnt, "vastai")), 15,
                   msg="%s listed after the remount" % iid)
        assert read_text(os.path.join(m.mnt, "vastai", iid, "status")) == "running\n", iid
    err = util.op_errno("rmdir", os.path.join(m.mnt, "vastai", second), timeout=120)
    assert err == "OK", read_text(os.path.join(m.mnt, "vastai", second, "teardown"))
    assert len(api2.deletes()) == 1 and api1.deletes() == []
    rep = read_text(os.path.join(m.mnt, "archive", "vastai", second, "teardown"))
    assert "not verified" not in rep and "destroyed" in rep, rep
