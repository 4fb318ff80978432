"""Lua game logic: the time to reload 100 region scripts, and the cost of OnTick per node.

Reload: a grid process (GridProcessCore, in-process, no store) with --scripts nodes, each on
its own tile of AlphaWorld and running its own VM of the demo (lua/regions/AlphaWorld.lua,
which requires lib/patrol). Every repetition edits lib/patrol.lua, so every script is stale,
and times ``reload`` (new VMs built beside the old, state handed over by OnReload, swapped
in, all or none) — with garbage collected before, and the collection that frees the old VMs
timed apart. Also timed: a reload with nothing changed (the stale check alone) and a
reload refused because the common module no longer compiles.

Tick: one node running the demo with 0, 10 and 50 client agents standing within 60 units of
the guard (some within its greeting radius); CPU µs per tick of the node's script, that is
RegionLogic.tick (resume due coroutines, OnTick, apply its commands: the NPC move) and of
the bare OnTick call (Script.call, commands discarded). Baseline: an empty OnTick.

    python bench/lua.py [--scripts 100] [--ticks 2000] [--repeat 5] [--smoke]

Writes bench/results/lua.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from jgsl.core.fields import encode_position
from jgsl.core.gridprocess import GridProcessCore
from jgsl.lua.regions import ScriptLibrary
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope

RESULTS = Path(__file__).parent / "results"
LUA = Path(__file__).parents[1] / "lua"
WORLD = "worlds/MyWorlds/AlphaWorld/"
GRID, GATEWAY = "grid1.localhost", "gateway.localhost"
TILE = 200.0
EMPTY = "function OnTick(now) end\n"


def lua_copy(root: Path, alpha: str | None = None) -> ScriptLibrary:
    """A copy of lua/ under ``root`` (with regions/AlphaWorld.lua replaced by ``alpha``)."""
    shutil.copytree(LUA, root)
    if alpha is not None:
        (root / "regions" / "AlphaWorld.lua").write_text(alpha)
    return ScriptLibrary(root)


def grid_with_nodes(library: ScriptLibrary, tiles: list[tuple[int, int]]) -> GridProcessCore:
    """A grid process whose gateway asked for one node on each tile; each runs its script."""
    core = GridProcessCore(GRID, [GATEWAY], scripts=library)
    for request, (gx, gy) in enumerate(tiles, 1):
        core.receive(0.0, Envelope(GATEWAY, GRID, pb.SpawnNode(
            request=request, worldpath=WORLD, gx=gx, gy=gy, gsize=TILE, role="guest",
            max_users=500)))
    assert len(core.logic) == len(tiles) and all(
        logic.script is not None for logic in core.logic.values()), "a script did not load"
    return core


def timed(fn) -> tuple[float, float, object]:
    """(wall ms, CPU ms, result) of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3, result


def bench_reload(workdir: Path, count: int, repeat: int) -> dict[str, object]:
    library = lua_copy(workdir / "reload")
    tiles = [(100 + i % 10, 100 + i // 10) for i in range(count)]
    core = grid_with_nodes(library, tiles)
    patrol = library.root / "lib" / "patrol.lua"
    original = patrol.read_text()
    now = float(repeat + 1)  # the nodes' clock: reloads do not tick, so it may stand still
    walls, cpus, collects = [], [], []
    for version in range(repeat):
        patrol.write_text(original + f"-- edit {version}\n")  # every node's script is stale
        gc.collect()
        wall, cpu, (errors, reloaded, _) = timed(lambda: core.reload(now))
        assert not errors and reloaded == count, (errors, reloaded)
        walls.append(wall)
        cpus.append(cpu)
        # The old VMs are in reference cycles: the cyclic collector frees them, some time.
        collects.append(timed(gc.collect)[0])
    unchanged, _, (errors, reloaded, _) = timed(lambda: core.reload(now))
    assert not errors and reloaded == 0, (errors, reloaded)
    patrol.write_text(original + "local broken = = 1\n")
    refused, _, (errors, reloaded, _) = timed(lambda: core.reload(now))
    assert len(errors) == count and reloaded == 0, (errors, reloaded)
    return {"scripts": count, "repeat": repeat,
            "reload_ms_best": round(min(walls), 1),
            "reload_ms_median": round(statistics.median(walls), 1),
            "reload_cpu_ms_median": round(statistics.median(cpus), 1),
            "ms_per_script_median": round(statistics.median(walls) / count, 2),
            "free_old_vms_ms_median": round(statistics.median(collects), 1),
            "unchanged_ms": round(unchanged, 1),
            "refused_ms": round(refused, 1),
            "goal_ms": 100}


def add_agents(core: GridProcessCore, count: int, seed: int = 1) -> None:
    """``count`` standing clients within 60 units of the guard's patrol centre."""
    node = core.nodes[1]
    ox, oz = node.region.origin
    rng = random.Random(seed)
    for i in range(count):
        x, z = 95 + rng.uniform(-60, 60), 95 + rng.uniform(-60, 60)
        data = pb.AgentState(rx=encode_position(x), rz=encode_position(z),
                             y=encode_position(36.6), facing=rng.randrange(256),
                             asset_file="character/v3/dummy/dummy.x", nickname=f"U{i}")
        node.normal_update(0.0, f"u{i}@emu.localhost", pb.NormalUpdate(
            sk=node.key, id=node.id, ct=1, agent=pb.AgentData(data=data)))
    assert node.active_agents == count
    core.tick(0.0)  # OnAgentEnter for each; not measured


def bench_tick(workdir: Path, name: str, alpha: str | None, agents: int,
               ticks: int, repeat: int) -> dict[str, object]:
    library = lua_copy(workdir / f"tick-{name}-{agents}", alpha)
    core = grid_with_nodes(library, [(100, 100)])
    add_agents(core, agents)
    logic = core.logic[1]
    script = logic.script
    now = [0.0]

    def node_ticks() -> None:
        for _ in range(ticks):
            now[0] += 0.1
            logic.tick(now[0])
            logic.effects.clear()  # key writes (greeting counts) would go to the store

    def bare_calls() -> None:
        for _ in range(ticks):
            now[0] += 0.1
            script.call(now[0], "OnTick", now[0])
            script.commands.clear()

    node_ticks()  # warm up: everybody in range is greeted (once per 120 s) here
    tick_cpu = min(timed(node_ticks)[1] for _ in range(repeat))
    call_cpu = min(timed(bare_calls)[1] for _ in range(repeat))
    assert script.errors == 0, f"{name}: OnTick failed"
    return {"script": name, "agents": agents, "ticks": ticks,
            "cpu_us_per_tick": round(tick_cpu / ticks * 1e3, 1),
            "cpu_us_per_ontick_call": round(call_cpu / ticks * 1e3, 1)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripts", type=int, default=100, help="nodes (VMs) to reload")
    parser.add_argument("--agents", default="0,10,50")
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--out", type=Path, default=RESULTS / "lua.json")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.agents.split(",")]
    if args.smoke:
        args.scripts, sizes, args.ticks, args.repeat = 3, [0, 2], 5, 1
    with tempfile.TemporaryDirectory(prefix="jgsl-bench-lua-") as tmp:
        workdir = Path(tmp)
        reload = bench_reload(workdir, args.scripts, args.repeat)
        ticks = [bench_tick(workdir, "empty", EMPTY, 0, args.ticks, args.repeat)]
        ticks += [bench_tick(workdir, "AlphaWorld", None, n, args.ticks, args.repeat)
                  for n in sizes]
    result = {"reload": reload, "tick": ticks}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"reload of {reload['scripts']} stale scripts: {reload['reload_ms_median']} ms "
          f"median, {reload['reload_ms_best']} ms best (goal < {reload['goal_ms']} ms); "
          f"freeing the old VMs {reload['free_old_vms_ms_median']} ms; nothing changed "
          f"{reload['unchanged_ms']} ms; refused {reload['refused_ms']} ms")
    for t in ticks:
        print(f"{t['script']:10s} {t['agents']:3d} agents: {t['cpu_us_per_tick']:8.1f} µs CPU "
              f"per node tick, {t['cpu_us_per_ontick_call']:8.1f} µs per OnTick call")
    return result


if __name__ == "__main__":
    main()
