"""The platforms the contract suite (test_contract.py) drives, and how to
reach each one's stand-in.

Each kind has a module fake_<name>.py with a class Fake<Name> offering the
shared stand-in interface (see fake_runpod.py's and fake_vast.py's docs) and
the module-level make_instance, SECTION, API_KEY_ENV, DESTROY_CALLS, new_ids.
"""

import importlib

PLATFORMS = ["vastai", "runpod", "lambda", "paperspace", "autodl"]
# lambda and paperspace are registered below but not listed yet: their APIs
# carry no port (IP:22) and cannot show every state, so test_contract.py's
# ssh-line and state-set checks must first use the modules' ssh_target()
# and SHOWABLE; with those two checks kind-aware the whole suite passes
# for both.

_FAKES = {
    "lambda": ("fake_lambda", "FakeLambda"),
    "paperspace": ("fake_paperspace", "FakePaperspace"),
    "vastai": ("fake_vast", "FakeVast"),
    "runpod": ("fake_runpod", "FakeRunPod"),
    "autodl": ("fake_autodl", "FakeAutodl"),
}

# What each API sends as an error with HTTP 200 (the public shapes).
ERROR_200 = {
    "lambda": {"error": {"code": "global/unknown",
                         "message": "An unknown error occurred. Please try again."}},
    "paperspace": {"message": "Something went wrong, please try again later", "status": 500},
    "vastai": {"success": False, "error": "server_error",
               "msg": "Something went wrong, try again later"},
    "runpod": {"errors": [{"message": "Something went wrong. Please try again later "
                                      "or contact support."}]},
    "autodl": {"code": "InternalError", "msg": "服务器内部错误，请稍后重试",
               "request_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "data": None},
}


def fake_module(kind):
    return importlib.import_module(_FAKES[kind][0])


def fake_class(kind):
    return getattr(fake_module(kind), _FAKES[kind][1])


def make_instance(kind, iid, **kw):
    """The module's make_instance; vast ids are integers in its shape."""
    mod = fake_module(kind)
    return mod.make_instance(int(iid) if kind == "vastai" else iid, **kw)
