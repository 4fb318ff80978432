"""Grid node in-process: CS_NormalUpdate handled per second and CPU µs per update.

N agents spread over one 200 x 200 tile walk about; each round every agent sends one
CS_NormalUpdate (a small move, echoing the st of its previous reply) and gets its reply.
Run for several N, with the interest radius on and off, in one process so ratios compare.
Each configuration handles the same number of updates (--updates) and is repeated
(--repeat); the best repetition counts, as the machine is shared and noisy.

    python bench/grid.py [--agents 50,200,500] [--updates 10000] [--repeat 3] [--smoke]
                         [--instructions [--rounds 4]]

--instructions also counts machine instructions per update under valgrind (callgrind), for
each size with the radius: slow (about a minute per size), but deterministic, which CPU time
on this shared machine is not; use it to judge a change to the hot path.

Writes bench/results/grid.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from jgsl.core.node import GridNode, GridSettings
from jgsl.core.region import Region
from jgsl.wire import jgsl_pb2 as pb

RESULTS = Path(__file__).parent / "results"
REGION = Region("worlds/MyWorlds/AlphaWorld/", 100, 100, 200.0)


def best(n: int, rounds: int, radius: float | None, repeat: int,
         creations: int = 0) -> dict[str, float]:
    runs = [run(n, rounds, radius, creations=creations) for _ in range(repeat)]
    return min(runs, key=lambda r: r["cpu_us_per_update"])


def run(n: int, rounds: int, radius: float | None, seed: int = 1,
        creations: int = 0) -> dict[str, float]:
    one_round = walkers(n, radius, seed, creations)
    start_cpu, start = time.process_time(), time.perf_counter()
    sent = 0
    for r in range(rounds):
        sent += one_round(2.0 + r)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
    updates = n * rounds
    return {"agents": n, "radius": radius, "updates": updates,
            "updates_per_s": round(updates / wall),
            "cpu_us_per_update": round(cpu / updates * 1e6, 1),
            "reply_bytes_per_update": round(sent / updates, 1)}


def walkers(n: int, radius: float | None, seed: int = 1, creations: int = 0):
    """A node with ``n`` walking agents, all joined; returns the function playing one round
    (every agent sends an update and gets its reply) and answering the reply bytes.

    With ``creations``, the node's creation log holds that many objects that every client
    has already read: each reply still has to find that nothing is new in it."""
    rng = random.Random(seed)
    node = GridNode(1, "k" * 32, REGION, "guest", 1000, GridSettings(sense_radius=radius))
    jids = [f"__guest{i}@emu.localhost" for i in range(n)]
    pos = {j: [rng.uniform(0, 20000), rng.uniform(0, 20000)] for j in jids}
    st = dict.fromkeys(jids, 0)
    ct = dict.fromkeys(jids, 1)

    def one_round(now: float) -> int:
        sent = 0
        for jid in jids:
            p = pos[jid]
            heading = rng.uniform(0, math.tau)
            p[0] = min(19999, max(0, p[0] + 300 * math.cos(heading)))
            p[1] = min(19999, max(0, p[1] + 300 * math.sin(heading)))
            data = pb.AgentState(rx=int(p[0]), rz=int(p[1]), facing=rng.randrange(256))
            if ct[jid] == 1:
                data.y, data.asset_file = 3672, "character/v4/Can/can01/can01.x"
            ct[jid] += 1
            msg = pb.NormalUpdate(sk=node.key, id=1, st=st[jid], ct=ct[jid],
                                  agent=pb.AgentData(data=data))
            reply = node.normal_update(now, jid, msg)
            st[jid] = reply.st
            sent += reply.ByteSize()
        return sent

    one_round(0.0)  # everybody joins: not measured
    one_round(1.0)
    if creations:
        node.creations.restore([(seq, pb.WorldEdit(kind="BOX", author="builder@localhost"))
                                for seq in range(1, creations + 1)])
        for agent in node.agents.values():
            for ack in agent.records.values():
                ack.creations = creations  # as if every client had read them all
    return one_round


def instructions_per_update(n: int, radius: float | None, rounds: int,
                            creations: int = 0) -> float:
    """Machine instructions per handled update, counted by valgrind (callgrind): unlike CPU
    time on a shared machine, the same code gives the same count, so small changes show.
    Two runs, ``rounds`` rounds and none, cancel what set-up and the counting cost."""
    counts = []
    for played in (0, rounds):
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null",
             sys.executable, __file__, "--workload", f"{n},{radius or 0},{played},{creations}"],
            capture_output=True, text=True, check=True)
        counts.append(int(re.search(r"Collected : (\d+)", result.stderr).group(1)))
    return (counts[1] - counts[0]) / (n * rounds)


def workload(spec: str) -> None:
    """Under valgrind: set up, then count only the rounds played."""
    n, radius, rounds, creations = spec.split(",")
    one_round = walkers(int(n), float(radius) or None, creations=int(creations))
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    for r in range(int(rounds)):
        one_round(2.0 + r)
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="50,200,500")
    parser.add_argument("--updates", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--radius", type=float, default=30.0)
    parser.add_argument("--creations", type=int, default=0,
                        help="objects in the node's creation log, already read by everyone")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions per update with valgrind (with the "
                             "radius; slow, but the same code gives the same count)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds counted by valgrind")
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "grid.json")
    args = parser.parse_args(argv)
    if args.workload:
        workload(args.workload)
        return {}
    sizes = [int(n) for n in args.agents.split(",")]
    if args.smoke:
        sizes, args.updates, args.repeat, args.rounds = [5, 10], 10, 1, 1
    runs = [best(n, max(1, args.updates // n), radius, args.repeat, args.creations)
            for radius in (args.radius, None) for n in sizes]
    by = {(r["radius"], r["agents"]): r["cpu_us_per_update"] for r in runs}
    result = {
        "creations": args.creations,
        "runs": runs,
        "cpu_ratio_largest_over_smallest_with_radius":
            round(by[(args.radius, sizes[-1])] / by[(args.radius, sizes[0])], 2),
        "cpu_ratio_largest_over_smallest_without_radius":
            round(by[(None, sizes[-1])] / by[(None, sizes[0])], 2),
    }
    if args.instructions:
        result["instructions_per_update_with_radius"] = {
            n: round(instructions_per_update(n, args.radius, args.rounds, args.creations))
            for n in sizes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for r in runs:
        print(f"agents {r['agents']:4d} radius {str(r['radius']):5s} "
              f"{r['updates_per_s']:7d} updates/s {r['cpu_us_per_update']:8.1f} µs CPU/update "
              f"{r['reply_bytes_per_update']:8.1f} B/reply")
    print("ratio with radius:", result["cpu_ratio_largest_over_smallest_with_radius"],
          " without:", result["cpu_ratio_largest_over_smallest_without_radius"])
    for n, count in result.get("instructions_per_update_with_radius", {}).items():
        print(f"agents {n:4d} radius {args.radius}: {count:,} instructions/update (valgrind)")
    return result


if __name__ == "__main__":
    main()
