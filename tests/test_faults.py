"""Failures seen in seconds, with the shipped defaults: 300 users at 1 Hz on a router (or
Prosody), a gateway and two grid processes, all separate processes; a grid process killed,
a grid process stopped, and the router (or Prosody) killed and restarted. Every user must be
updating again within 10 s (the longest time any user went without an answered update).

Each test runs about a minute: they are marked ``faults`` (and ``integration``); ``./dev
test`` runs them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time

import pytest

from jgsl.prosody import free_port, wait_port
from tests.processes import Processes, wait_for
from tests.servers import ProsodyServer

pytestmark = [pytest.mark.integration, pytest.mark.faults]

USERS = 300
#: Seconds of steady traffic before the fault, and in all (the fault's cost must show
#: within what is left).
BEFORE, STEADY = 6.0, 30.0
#: Four tiles meet at (20200, 20200): four nodes, spread over the two grid processes.
CENTRE, RADIUS = "20200,20200", "80"
GOAL = 10.0


class World:
    """Gateway, grid1, grid2 and the load runner on one XMPP server's component port."""

    def __init__(self, procs: Processes, tmp_path, port: int) -> None:
        self.procs, self.tmp_path, self.port = procs, tmp_path, port
        self.xmpp = f"tcp:127.0.0.1:{port}"
        self.load: subprocess.Popen | None = None

    def start(self) -> None:
        self.procs.start("gateway", "--role", "gateway", "--xmpp", self.xmpp,
                         "--dump-server-msg")
        for grid in ("grid1", "grid2"):
            self.procs.start(grid, "--role", "grid", "--xmpp", self.xmpp, "--name",
                             f"{grid}.localhost")
        for grid in ("grid1", "grid2"):
            wait_for(lambda g=grid: f"grid process {g}.localhost registered"
                     in self.procs.log("gateway"), what=f"{grid} to register")
        log = open(self.tmp_path / "load.log", "wb")  # noqa: SIM115 - closed below
        # The shipped client defaults (twistd jgsl --role client/emu): 20 s at most.
        self.load = subprocess.Popen(
            [sys.executable, "-m", "jgsl.load", "--xmpp", self.xmpp, "--users", str(USERS),
             "--update-interval", "1", "--request-timeout", "20", "--ramp", "5",
             "--duration", str(STEADY), "--center", CENTRE, "--radius", RADIUS,
             "--no-corners", "--out", str(self.tmp_path / "report")],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp_path, env=self.procs.env)
        log.close()
        wait_for(lambda: "steady:" in self.load_log(), timeout=60,
                 what="every user to log in")
        assert f"steady: {USERS} of {USERS} users" in self.load_log(), self.load_log()
        serving = self.serving()
        assert {grid for _, grid in serving} == {"grid1.localhost", "grid2.localhost"}, serving
        time.sleep(BEFORE)  # steady traffic before the fault (the scenario, not a wait)

    def load_log(self) -> str:
        return (self.tmp_path / "load.log").read_text(errors="replace")

    def serving(self) -> list[tuple[str, str]]:
        """(node id, grid process) of every node the gateway announced."""
        return re.findall(r"grid node (\d+) on (grid\d\.localhost) serves",
                          self.procs.log("gateway"))

    def report(self) -> dict:
        assert self.load.wait(timeout=STEADY + 60) == 0, self.load_log()
        return json.loads((self.tmp_path / "report" / "report.json").read_text())

    def stop(self) -> None:
        if self.load is not None and self.load.poll() is None:
            self.load.kill()
            self.load.wait()


def recovered(report: dict) -> None:
    gaps = report["longest_gap_s"]
    assert gaps["max"] <= GOAL and gaps["users_over_10s"] == 0, gaps
    assert report["logins_ok"] == USERS and report["logins_refused"] == 0, report


@pytest.fixture
def env():
    return {**os.environ, "JGSL_COMPONENT_SECRET": secrets.token_hex(8),
            "JGSL_TICKET_SECRET": secrets.token_hex(16)}


@pytest.fixture
def router_world(tmp_path, env):
    procs = Processes(tmp_path, env)
    port = free_port()
    procs.start("router", "--role", "router", "--listen", f"tcp:{port}:interface=127.0.0.1")
    wait_port(port)
    world = World(procs, tmp_path, port)
    yield world
    world.stop()
    procs.kill_all()


@pytest.fixture
def prosody_world(tmp_path, env):
    names = ("gateway", "grid1", "grid2", "load")
    prosody = ProsodyServer({f"{n}.localhost": env["JGSL_COMPONENT_SECRET"] for n in names})
    prosody.start()
    procs = Processes(tmp_path, env)
    world = World(procs, tmp_path, prosody.component_port)
    world.prosody = prosody
    yield world
    world.stop()
    procs.kill_all()
    prosody.stop()


def kill_grid(world: World) -> None:
    world.start()
    proc = world.procs.procs.pop("grid1")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    report = world.report()
    recovered(report)
    assert "grid process grid1.localhost is dead" in world.procs.log("gateway")


def stop_grid(world: World) -> None:
    world.start()
    assert world.procs.stop("grid1") == -signal.SIGTERM  # gracefully
    report = world.report()
    recovered(report)
    log = world.procs.log("gateway")
    closing = log.index("recv grid1.localhost GRID_CLOSING")
    assert 'gjid: "grid1.localhost"' not in log[closing:]  # no login handed to it after
    assert "refused: full" not in log


def restart_server(world: World, kill, restart) -> None:
    world.start()
    kill()
    restart()
    report = world.report()
    recovered(report)


def test_a_killed_grid_process_costs_its_users_under_10_s(router_world):
    kill_grid(router_world)


def test_a_stopped_grid_process_hands_its_users_over_at_once(router_world):
    stop_grid(router_world)


def test_a_killed_and_restarted_router_costs_under_10_s(router_world):
    world = router_world

    def kill() -> None:
        proc = world.procs.procs.pop("router")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart() -> None:
        world.procs.start("router", "--role", "router", "--listen",
                          f"tcp:{world.port}:interface=127.0.0.1")

    restart_server(world, kill, restart)


def test_a_killed_grid_process_on_prosody_costs_under_10_s(prosody_world):
    kill_grid(prosody_world)


def test_a_stopped_grid_process_on_prosody_hands_its_users_over_at_once(prosody_world):
    stop_grid(prosody_world)


def test_a_killed_and_restarted_prosody_costs_under_10_s(prosody_world):
    prosody = prosody_world.prosody
    restart_server(prosody_world, prosody.kill, prosody.start)
