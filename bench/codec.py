"""Bytes on the wire: what a grid node actually sends, against the original text stream.

Builds a grid node with N agents (positions like the original EmuUsers generator: random
within a radius of a point), lets a viewer join (the join snapshot), then moves every agent
a walking step (position + facing) and measures the next reply. The original JGSL format
(reference §6: ``opcode:value`` pairs joined by commas, agents keyed by name, in an NPL table
literal) is built for the same states as the baseline.

    python bench/codec.py [--agents 500] [--rounds 200] [--smoke]

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
from jgsl.core.node import GridNode, GridSettings
from jgsl.core.region import Region
from jgsl.core.stringmaps import ANIMS
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import decode, encode, parse

RESULTS = Path(__file__).parent / "results"
ASSET = "character/v4/Can/can01/can01.x"
ASSETS = ("character/v4/Can/can03/can03.x", ASSET)
REGION = Region("worlds/MyWorlds/AlphaWorld/", 100, 100, 200.0)


def original_stream(state: dict[str, float], full: bool) -> str:
    """The 2009 agent stream (JGSL_agent.lua GenerateUpdateStream)."""
    items = [f"3:{state['rx']:.2f}"]
    if full:
        items.append(f"4:{state['y']:.2f}")
    items.append(f"5:{state['rz']:.2f}")
    items.append(f"6:{math.floor((state['facing'] + math.pi) / math.tau * 255):x}")
    if full:
        items.append(f"2:{ASSET}")
    return ",".join(items)


def original_message(agents: dict[str, str]) -> str:
    body = ",".join(f'["{name}"]="{stream}"' for name, stream in agents.items())
    return f'{{type=8,sk="20090501T120000.123456-7",st=1234,ct=12,agents={{{body}}},}}'


def agent_state(state: dict[str, float], full: bool) -> pb.AgentState:
    msg = pb.AgentState(rx=encode_position(state["rx"]), rz=encode_position(state["rz"]),
                        facing=encode_facing(state["facing"]))
    if full:
        msg.y, msg.asset_file = encode_position(state["y"]), ASSET
    return msg


def send(node: GridNode, now: float, jid: str, state: pb.AgentState) -> None:
    node.normal_update(now, jid, pb.NormalUpdate(sk=node.key, id=1, ct=1,
                                                 agent=pb.AgentData(data=state)))


def payload_bytes(node: GridNode, viewer: str, st: int, now: float) -> tuple[int, int, int]:
    """(bytes, replies, final st) until the node has nothing more for the viewer."""
    total = replies = 0
    while True:
        reply = node.normal_update(now, viewer, pb.NormalUpdate(sk=node.key, id=1, st=st, ct=1))
        total, replies, st = total + reply.ByteSize(), replies + 1, reply.st
        if not reply.more:
            return total, replies, st


def measure(n: int, rounds: int, seed: int = 1) -> dict[str, object]:
    rng = random.Random(seed)
    node = GridNode(1, "k" * 32, REGION, "guest", 1000, GridSettings(refresh={}))
    states = {}
    for i in range(n):
        angle, r = rng.uniform(0, math.tau), 40 * math.sqrt(rng.random())
        states[f"__guest{i}@emu.localhost"] = {
            "rx": 100 + r * math.cos(angle), "rz": 100 + r * math.sin(angle),
            "y": 36.6 + rng.uniform(-0.1, 0.1), "facing": rng.uniform(-math.pi, math.pi)}
    for jid, state in states.items():
        send(node, 0, jid, agent_state(state, True))
    viewer = "viewer@emu.localhost"
    join, join_replies, st = payload_bytes(node, viewer, 0, 1)
    empty, _, st = payload_bytes(node, viewer, st, 1)  # nothing changed: the bare reply
    # Everybody walks a step (3 s at 1.5 units/s) and turns a little.
    for jid, state in states.items():
        heading = rng.uniform(0, math.tau)
        state["rx"] += 4.5 * math.cos(heading)
        state["rz"] += 4.5 * math.sin(heading)
        state["facing"] = math.remainder(state["facing"] + rng.uniform(-0.5, 0.5), math.tau)
        send(node, 2, jid, agent_state(state, False))
    moved_total, _, st = payload_bytes(node, viewer, st, 2)
    # Everybody changes appearance: another asset (not in the 2009 map) and an animation.
    for i, jid in enumerate(states):
        send(node, 3, jid, pb.AgentState(asset_file=ASSETS[i % 2], anim=ANIMS[7]))
    changed_total, _, st = payload_bytes(node, viewer, st, 3)
    orig_look = sum(len(f'["{jid.split("@")[0]}"]="2:{ASSETS[i % 2]},8:8",'.encode())
                    for i, jid in enumerate(states))
    names = {jid.split("@")[0]: s for jid, s in states.items()}
    orig_move = len(original_message({k: original_stream(s, False) for k, s in names.items()})
                    .encode()) - len(original_message({}).encode())
    orig_join = len(original_message({k: original_stream(s, True) for k, s in names.items()})
                    .encode())
    reply = node.normal_update(3, viewer, pb.NormalUpdate(sk=node.key, id=1, st=0, ct=1))
    start = time.perf_counter()
    for _ in range(rounds):
        decode(parse(encode(reply, viewer, "grid1.localhost")))  # to text and back
    codec_us = (time.perf_counter() - start) / rounds * 1e6
    per_agent = (moved_total - empty) / n
    return {
        "agents": n,
        "moving_bytes_per_agent": round(per_agent, 2),
        "moving_original_bytes_per_agent": round(orig_move / n, 2),
        "moving_ratio_original_over_ours": round(orig_move / n / per_agent, 2),
        "appearance_bytes_per_agent": round((changed_total - empty) / n, 2),
        "appearance_original_bytes_per_agent": round(orig_look / n, 2),
        "join_snapshot_bytes": join,
        "join_snapshot_replies": join_replies,
        "join_original_bytes": orig_join,
        "empty_reply_bytes": empty,
        "snapshot_encode_decode_us": round(codec_us, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--out", type=Path, default=RESULTS / "codec.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.agents, args.rounds = 5, 2
    result = measure(args.agents, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:36s} {value}")
    return result


if __name__ == "__main__":
    main()
