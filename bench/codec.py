"""Codec benchmark: bytes per agent in SC_NormalUpdate, and encode/decode cost.

Compares the protobuf payload with the original JGSL text stream (reference §6:
``opcode:value`` pairs joined by commas, agents keyed by name), for moving agents
(position + facing) and for a full join snapshot.

    python bench/codec.py [--agents 500] [--rounds 2000] [--smoke]

Writes bench/results/codec.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

from jgsl.core.fields import encode_facing, encode_position
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import decode, encode

RESULTS = Path(__file__).parent / "results"


def original_stream(x: float, y: float | None, z: float, facing: float, asset: str | None) -> str:
    """The 2009 agent stream (JGSL_agent.lua GenerateUpdateStream)."""
    items = [f"3:{x:.2f}"]
    if y is not None:
        items.append(f"4:{y:.2f}")
    items.append(f"5:{z:.2f}")
    items.append(f"6:{math.floor((facing + math.pi) / math.tau * 255):x}")
    if asset is not None:
        items.append(f"2:{asset}")
    return ",".join(items)


def original_message(agents: dict[str, str], st: int) -> str:
    """An NPL table literal as the original sent it in the stanza body."""
    body = ",".join(f'["{name}"]="{stream}"' for name, stream in agents.items())
    return f'{{type=8,sk="20090501T120000.123456-7",st={st},ct=12,agents={{{body}}},}}'


def build(n: int, full: bool, rng: random.Random) -> tuple[pb.NormalUpdateReply, str]:
    reply = pb.NormalUpdateReply(sk="0" * 32, id=1, st=1234, ct=12)
    original: dict[str, str] = {}
    for i in range(n):
        x, y, z = rng.uniform(0, 200), 36.72, rng.uniform(0, 200)
        facing = rng.uniform(-math.pi, math.pi)
        state = pb.AgentState(rx=encode_position(x), rz=encode_position(z),
                              facing=encode_facing(facing))
        asset = None
        if full:
            state.y = encode_position(y)
            asset = state.asset_file = "character/v4/Can/can01/can01.x"
        name = f"__guest{i}"
        reply.agents.add(name=name, state=state)
        original[name] = original_stream(x, y if full else None, z, facing, asset)
    return reply, original_message(original, 1234)


def measure(n: int, rounds: int) -> dict[str, object]:
    rng = random.Random(1)
    moving, moving_orig = build(n, False, rng)
    snapshot, snapshot_orig = build(n, True, rng)
    empty = len(pb.NormalUpdateReply(sk="0" * 32, id=1, st=1234, ct=12).SerializeToString())
    per_agent = (len(moving.SerializeToString()) - empty) / n
    orig_per_agent = (len(moving_orig.encode()) - len(original_message({}, 1234))) / n
    stanza = encode(moving, "alice@emu.localhost", "grid1.localhost")
    start = time.perf_counter()
    for _ in range(rounds):
        decode(encode(moving, "alice@emu.localhost", "grid1.localhost"))
    elapsed = time.perf_counter() - start
    return {
        "agents": n,
        "moving_payload_bytes_per_agent": round(per_agent, 2),
        "moving_original_bytes_per_agent": round(orig_per_agent, 2),
        "moving_ratio_original_over_protobuf": round(orig_per_agent / per_agent, 2),
        "snapshot_payload_bytes": len(snapshot.SerializeToString()),
        "snapshot_original_bytes": len(snapshot_orig.encode()),
        "moving_stanza_bytes": len(stanza.toXml().encode()),
        "encode_decode_us_per_message": round(elapsed / rounds * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--out", type=Path, default=RESULTS / "codec.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.agents, args.rounds = 5, 5
    result = measure(args.agents, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:40s} {value}")
    return result


if __name__ == "__main__":
    main()
