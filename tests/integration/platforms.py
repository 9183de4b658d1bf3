"""The platforms the contract suite (test_contract.py) drives, and how to
reach each one's stand-in.

Each kind has a module fake_<name>.py with a class Fake<Name> offering the
shared stand-in interface (see fake_runpod.py's and fake_vast.py's docs) and
the module-level make_instance, SECTION, API_KEY_ENV, DESTROY_CALLS, new_ids.
"""

import importlib

PLATFORMS = ["vastai", "runpod"]

_FAKES = {
    "vastai": ("fake_vast", "FakeVast"),
    "runpod": ("fake_runpod", "FakeRunPod"),
}

# What each API sends as an error with HTTP 200 (the public shapes).
ERROR_200 = {
    "vastai": {"success": False, "error": "server_error",
               "msg": "Something went wrong, try again later"},
    "runpod": {"errors": [{"message": "Something went wrong. Please try again later "
                                      "or contact support."}]},
}


def fake_module(kind):
    return importlib.import_module(_FAKES[kind][0])


def fake_class(kind):
    return getattr(fake_module(kind), _FAKES[kind][1])


def make_instance(kind, iid, **kw):
    """The module's make_instance; vast ids are integers in its shape."""
    mod = fake_module(kind)
    return mod.make_instance(int(iid) if kind == "vastai" else iid, **kw)
