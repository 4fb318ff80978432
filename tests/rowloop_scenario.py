"""A busy grid node driven by a seeded random script, for comparing the compiled reply loop
with the same source run as plain Python (tests/test_rowloop.py).

``python -m tests.rowloop_scenario --pure SEED...`` imports jgsl.core.reply.rowloop from its .py
source even where the compiled module sits beside it, and prints the replies.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import random
import sys
from pathlib import Path

SPOTS = [(x, z) for x in (500, 4000, 9000, 15000) for z in (800, 7000, 16000)]
ASSETS = ["character/v3/dummy/dummy.x", "character/v4/Can/can01/can01.x", "model/tree.x",
          "character/v3/Human/Male/HumanMale.x"]


def replies(seed: int) -> list[str]:
    """Every reply of one scripted run, serialized, in hex."""
    from jgsl.core.node import GridNode, GridSettings
    from jgsl.core.region import Region
    from jgsl.wire import jgsl_pb2 as pb

    rng = random.Random(seed)
    settings = GridSettings(sense_radius=rng.choice([None, 25.0, 60.0]),
                            max_reply_bytes=rng.choice([1024, 2048, 16 * 1024]),
                            refresh={"rx": 3, "facing": 4, "asset_file": 5, "nickname": 7},
                            records=rng.choice([2, 16]))
    node = GridNode(1, "k", Region("w/", 100, 100, 200.0), "guest", 1000, settings)
    jids = [f"u{i}@emu.localhost" for i in range(40)]
    pos = {j: list(rng.choice(SPOTS)) for j in jids}
    st: dict[str, int] = {}
    out = []
    for step in range(600):
        jid = rng.choice(jids)
        if rng.random() < 0.03:
            node.logout(jid)
            st.pop(jid, None)
            continue
        p = pos[jid]
        p[0] = min(19999, max(0, p[0] + rng.randint(-400, 400)))
        p[1] = min(19999, max(0, p[1] + rng.randint(-400, 400)))
        data = pb.AgentState(rx=p[0], rz=p[1], facing=rng.randrange(256))
        if jid not in st or rng.random() < 0.05:
            data.y, data.asset_file = 3672, rng.choice(ASSETS)
        if rng.random() < 0.03:
            data.nickname = f"n{rng.randrange(5)}"
        if rng.random() < 0.1:
            msg = pb.ObserverUpdate(sk="k", id=1, st=st.get(jid, 0), x=p[0] / 100 + 100,
                                    z=p[1] / 100 + 100)
            reply = node.observer_update(float(step), jid, msg)
        else:
            msg = pb.NormalUpdate(sk="k", id=1, st=st.get(jid, 0), ct=step + 1,
                                  agent=pb.AgentData(data=data),
                                  recover=rng.sample(range(45), rng.choice([0, 0, 0, 2])))
            reply = node.normal_update(float(step), jid, msg)
        if rng.random() < 0.85:  # else the reply is lost: the next update echoes an older st
            st[jid] = reply.st
        out.append(reply.SerializeToString().hex())
    return out


def _import_pure_rowloop() -> None:
    """Make ``import jgsl.core.reply.rowloop`` load the .py source, not the compiled module."""
    path = Path(__file__).resolve().parent.parent / "jgsl" / "core" / "reply" / "rowloop.py"
    loader = importlib.machinery.SourceFileLoader("jgsl.core.reply.rowloop", str(path))
    spec = importlib.util.spec_from_file_location("jgsl.core.reply.rowloop", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["jgsl.core.reply.rowloop"] = module
    loader.exec_module(module)
    assert not module.COMPILED


if __name__ == "__main__":
    if sys.argv[1] == "--pure":
        _import_pure_rowloop()
    print(json.dumps({seed: replies(int(seed)) for seed in sys.argv[2:]}))
