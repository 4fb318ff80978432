"""Capacity across hosts: the same flat-out load on one host and on five (root only).

The world (XMPP server, gateway, grid processes, and the load runner as the clients) runs
three ways, one after the other, each in network namespaces of its own (tests/hosts.py):

- ``1 host, 1 grid``: every process on one host, talking over its loopback;
- ``1 host, 2 grids``: the same with two grid processes;
- ``5 hosts``: the XMPP server, the gateway, each grid process and the load runner on hosts
  of their own, joined by veth links to a bridge, talking over the hosts' addresses.

Each runs jgsl-load flat out (every user's next update as soon as the last is answered,
within the grid's flood limit; thin clients, one node per user, as bench/e2e.py's limit)
and reads every process's CPU from /proc: updates/s, and CPU µs per update of the router,
the gateway, the grids (each) and the load runner. From the one-host runs the capacity model
of docs/performance.md predicts the five-host rate on this machine's cores (they share the
same two cores here): the prediction and the measurement are printed side by side.

    python bench/hosts.py [--server embedded|prosody] [--users 1000] [--duration 20]
                          [--ramp 10] [--smoke]

Writes bench/results/hosts-<server>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import e2e  # noqa: E402
from e2e import FLAT_OUT, TWISTD, cpu_seconds, stolen_seconds, wait_for  # noqa: E402

from tests.hosts import Hosts, available  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DOMAIN = "jgsl.test"
LAYOUTS = {
    "1 host, 1 grid": {"xmpp": "one", "gateway": "one", "grids": ["one"], "load": "one"},
    "1 host, 2 grids": {"xmpp": "one", "gateway": "one", "grids": ["one", "one"],
                        "load": "one"},
    "5 hosts": {"xmpp": "xmpp", "gateway": "gateway", "grids": ["grid1", "grid2"],
                "load": "users"},
}


class World(e2e.World):
    """One layout's processes, each on its host (bench/e2e.py's world, spread out)."""

    def __init__(self, hosts: Hosts, layout: dict, server: str, workdir: Path) -> None:
        super().__init__(server, workdir, len(layout["grids"]))
        self.hosts, self.layout = hosts, layout

    def address(self, role: str) -> str:
        host = self.layout[role]
        return self.hosts.address[host]

    def _twistd(self, name: str, host: str, *args: str) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed below
        self.procs[name] = subprocess.Popen(
            [*self.hosts.wrap(host), TWISTD, "-n", "--pidfile=", "jgsl", "--domain", DOMAIN,
             *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=self.env)
        log.close()

    def start(self) -> str:
        host, here = self.layout["xmpp"], self.address("xmpp")
        if self.server == "embedded":
            self._twistd("router", host, "--role", "router", "--listen",
                         f"tcp:5347:interface={here}")
            self.server_pid = self.procs["router"].pid
            wait_for(lambda: "listening" in self.log("router").lower(), 30, "the router")
        else:
            from jgsl.prosody import DevProsody

            grids = len(self.layout["grids"])
            names = ("gateway", "load", *(f"grid{i}" for i in range(1, grids + 1)))
            self.prosody = DevProsody({f"{n}.{DOMAIN}": self.env["JGSL_COMPONENT_SECRET"]
                                       for n in names}, DOMAIN, component_port=5347,
                                      interfaces=(here,), wrap=self.hosts.wrap(host))
            self.prosody.start()
            self.server_pid = self.prosody.proc.pid
        xmpp = f"tcp:{here}:5347"
        self._twistd("gateway", self.layout["gateway"], "--role", "gateway", "--xmpp", xmpp)
        for i, grid_host in enumerate(self.layout["grids"], 1):
            self._twistd(f"grid{i}", grid_host, "--role", "grid", "--xmpp", xmpp,
                         "--scripts", "none", "--name", f"grid{i}.{DOMAIN}")
            wait_for(lambda i=i: f"grid process grid{i}.{DOMAIN} registered"
                     in self.log("gateway"), 30, "the grid to register")
        return xmpp

    def pids(self) -> dict[str, int]:
        return {"router": self.server_pid, "gateway": self.procs["gateway"].pid,
                **{name: p.pid for name, p in self.procs.items() if name.startswith("grid")}}


def flat_out(world: World, xmpp: str, users: int, duration: float, ramp: float) -> dict:
    """jgsl-load flat out on the load host; rate and CPU µs per update of every process."""
    out = world.workdir / "load"
    load = subprocess.Popen(
        [*world.hosts.wrap(world.layout["load"]), sys.executable, "-m", "jgsl.load",
         "--xmpp", xmpp, "--domain", DOMAIN, "--users", str(users), "--update-interval",
         str(FLAT_OUT), "--duration", str(duration), "--ramp", str(ramp),
         "--request-timeout", "10", "--radius", str(max(80, users ** 0.5 * 8)),
         "--no-corners", "--thin", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=world.env, cwd=ROOT)
    pids = {**world.pids(), "load": load.pid}
    time.sleep(ramp + 2)  # the ramp and a little settling are not measured
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    stolen, start = stolen_seconds(), time.monotonic()
    time.sleep(duration - 4)  # inside the load runner's measured window
    wall = time.monotonic() - start
    cores = {name: (cpu_seconds(pid) - before[name]) / wall for name, pid in pids.items()}
    stolen = (stolen_seconds() - stolen) / wall
    _, err = load.communicate(timeout=900)
    if load.returncode != 0:
        raise RuntimeError(f"load run failed: {err[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    rate = report["updates_received_per_s"]
    grids = sorted(n for n in cores if n.startswith("grid"))
    per_update = {name: round(cores[name] / rate * 1e6, 1) for name in cores}
    return {"updates_per_s": rate, "rtt_ms": report["rtt_ms"], "timeouts": report["timeouts"],
            "cpu_cores": {n: round(c, 3) for n, c in cores.items()},
            "cpu_us_per_update": per_update,
            "grid_us_per_update": round(sum(cores[g] for g in grids) / rate * 1e6, 1),
            "stolen_cores": round(stolen, 3)}


def predict(costs: dict, grids: int, cores: float) -> dict:
    """The capacity model (docs/performance.md): updates/s a layout can carry, from CPU µs
    per update. Each process is one thread, so it is bounded by one core: the router at
    1e6 / router µs, the grid processes together at grids × 1e6 / grid µs (their work
    spread evenly); and all of them, with the load runner, by the cores they share."""
    router = 1e6 / costs["router"]
    grid = grids * 1e6 / costs["grid"]
    shared = cores * 1e6 / (costs["router"] + costs["gateway"] + costs["grid"]
                            + costs["load"])
    return {"router_bound": round(router), "grid_bound": round(grid),
            "cores_bound": round(shared), "predicted": round(min(router, grid, shared))}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", choices=("embedded", "prosody"), default="embedded")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--ramp", type=float, default=10.0)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    why = available()
    if why:
        p.error(why)
    if args.smoke:
        args.users, args.duration, args.ramp = 20, 6.0, 1.0
    cores = len(os.sched_getaffinity(0))
    results: dict = {"server": args.server, "users": args.users, "cores": cores, "runs": {}}
    for name, layout in LAYOUTS.items():
        names = sorted({layout["xmpp"], layout["gateway"], layout["load"], *layout["grids"]})
        hosts = Hosts(names).build()
        workdir = Path(tempfile.mkdtemp(prefix="jgsl-hosts-"))
        os.chmod(workdir, 0o755)
        world = World(hosts, layout, args.server, workdir)
        try:
            xmpp = world.start()
            run = flat_out(world, xmpp, args.users, args.duration, args.ramp)
        finally:
            world.stop()
            hosts.destroy()
            shutil.rmtree(workdir, ignore_errors=True)
        results["runs"][name] = run
        print(name, json.dumps(run), flush=True)
    runs = results["runs"]
    costs = {}
    for role in ("router", "gateway", "load"):
        costs[role] = runs["1 host, 2 grids"]["cpu_us_per_update"][role]
    costs["grid"] = runs["1 host, 2 grids"]["grid_us_per_update"]
    model = predict(costs, 2, cores)
    measured = runs["5 hosts"]["updates_per_s"]
    results["model"] = {"costs_us_per_update": costs, **model, "measured_5_hosts": measured,
                        "measured_over_predicted": round(measured / model["predicted"], 3)}
    print("model", json.dumps(results["model"]), flush=True)
    out = args.out or RESULTS / f"hosts-{args.server}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
