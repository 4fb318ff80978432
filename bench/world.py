"""In-process world: the load runner's clients, a gateway and a grid process in one process.

N thin emulated users (as bench/e2e.py's flat-out run: update interval 0.05 s, one node per
user, 20 staggered groups) log in over 1 s and walk; every message crosses the real codec
(serialized to a stanza and parsed back) and arrives ``--latency`` seconds later (0.065 by
default, half of e2e's flat-out round trip, so that answers come late and readers are one or
two changes of each neighbour behind, as there; 0: at once, as until session 7), on a
simulated clock ticked every 5 ms. After a 2 s warm-up it measures CPU µs per update spent
in each part (load runner, grid, gateway, codec) and, with --instructions, machine
instructions per update under valgrind (callgrind) — the same code gives the same count, so
a change to the client and grid paths together can be judged on this noisy machine, which
end-to-end CPU time cannot. The codec part parses each stanza with a new parser, so it
overstates what a link's stream costs; the cores' parts are what they cost in a daemon,
without the sockets.

    python bench/world.py [--users 1000] [--seconds 3] [--latency 0.065] [--instructions]
                          [--smoke]

Writes bench/results/world.json.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from jgsl.config import load_config
from jgsl.core.client import ClientSettings
from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.load import LoadCore, LoadSettings, Recorder
from jgsl.tap import CONFIG_DIR
from jgsl.wire.codec import decode, encode, parse

RESULTS = Path(__file__).parent / "results"
TICK = 0.005  # the load runner's tick with --stagger 20
#: One-way delay of every message by default: half the round trip of bench/e2e.py's flat-out
#: run (p50 130-160 ms), so that, as there, answers come after the update interval has
#: passed and readers are one or two changes of each neighbour behind.
LATENCY = 0.065
WARMUP = 2.0


def run(users: int, seconds: float, counted: bool = False,
        latency: float = LATENCY) -> dict[str, object]:
    """Play the world; CPU µs per update by part over the measured window.

    ``counted``: switch valgrind's instruction counting on for the measured window only.
    ``latency``: seconds every message takes to arrive (0: at once)."""
    world = load_config(str(CONFIG_DIR / "jgsl.config.xml"))
    gateway, grid, load = "gateway.localhost", "grid1.localhost", "load.localhost"
    recorder = Recorder()
    cores = {
        gateway: GatewayCore(gateway, world.rules, world.gateway_settings(), start=0.0),
        grid: GridProcessCore(grid, [gateway], world.grid_settings(), start=0.0,
                              maps=world.string_maps()),
        load: LoadCore(load, gateway, LoadSettings(users=users, ramp=1.0, stagger=20,
                                                   radius=max(80, users ** 0.5 * 8)),
                       ClientSettings(update_interval=0.05, request_timeout=10, corners=False,
                                      track_others=False), recorder),
    }
    spent: dict[str, float] = defaultdict(float)

    in_flight: list[tuple[float, int, object]] = []  # (arrival, order, envelope)
    order = itertools.count()

    def deliver(now: float, out: list) -> None:
        queue = list(out)
        while queue:
            sent = queue.pop()
            start = time.process_time()
            envelope = decode(parse(encode(sent.message, sent.recipient, sent.sender)))
            spent["codec"] += time.process_time() - start
            if latency:
                heapq.heappush(in_flight, (now + latency, next(order), envelope))
            else:
                queue += arrive(now, envelope)

    def arrive(now: float, envelope) -> list:
        start = time.process_time()
        domain = envelope.recipient.split("/")[0].rpartition("@")[2]
        out = cores[domain].receive(now, envelope)
        spent[domain] += time.process_time() - start
        return out

    now = 0.0
    for core in cores.values():
        deliver(now, core.connected(now))
    sent_before = 0
    while now < WARMUP + seconds:
        now += TICK
        if sent_before == 0 and now >= WARMUP:
            spent.clear()
            sent_before = recorder.sent
            gc.collect()
            gc.freeze()  # as jgsl.collector does in the daemons
            if counted:
                _callgrind("on")
        while in_flight and in_flight[0][0] <= now:
            deliver(now, arrive(now, heapq.heappop(in_flight)[2]))
        for domain, core in cores.items():
            start = time.process_time()
            out = core.tick(now)
            spent[domain] += time.process_time() - start
            deliver(now, out)
    if counted:
        _callgrind("off")
    updates = recorder.sent - sent_before
    return {"users": users, "seconds": seconds, "latency_s": latency,
            "logins_ok": recorder.logins_ok,
            "updates": updates,
            "reply_bytes_per_update": round(recorder.bytes_in / max(1, recorder.sized_in), 1),
            "cpu_us_per_update": {part: round(spent[key] / max(1, updates) * 1e6, 1)
                                  for part, key in (("load_runner", load), ("grid", grid),
                                                    ("gateway", gateway), ("codec", "codec"))}}


def _callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True,
                   capture_output=True)


def instructions_per_update(users: int, seconds: float, latency: float = LATENCY) -> float:
    """Machine instructions per update over the measured window, counted by valgrind."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--workload", f"{users},{seconds},{latency}"],
        capture_output=True, text=True, check=True)
    counted = int(re.search(r"Collected : (\d+)", result.stderr).group(1))
    updates = json.loads(result.stdout.strip().splitlines()[-1])["updates"]
    return counted / max(1, updates)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured, after warm-up")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions per update under valgrind (300 users, "
                             "1 s measured: about half a minute)")
    parser.add_argument("--latency", type=float, default=LATENCY,
                        help="seconds every message takes to arrive (0: at once, as before "
                             "session 7)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "world.json")
    args = parser.parse_args(argv)
    if args.workload:
        users, seconds, latency = args.workload.split(",")
        print(json.dumps(run(int(users), float(seconds), counted=True, latency=float(latency))))
        return {}
    if args.smoke:
        args.users, args.seconds = 10, 0.2
    result = run(args.users, args.seconds, latency=args.latency)
    if args.instructions:
        users, seconds = (args.users, args.seconds) if args.smoke else (300, 1.0)
        result["instructions_per_update"] = {
            "users": users, "count": round(instructions_per_update(users, seconds, args.latency))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
