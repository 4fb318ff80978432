"""Several gateways over a real redis-server: consistent allocation when they race."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import Processes, wait_for
from tests.servers import RedisServer

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_redis_allocation_semantics(redis):
    result = subprocess.run([sys.executable, str(HERE / "redis_semantics.py"), str(redis.port)],
                            capture_output=True, text=True, timeout=60, cwd=HERE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "semantics ok" in result.stdout


def users_xml(names_by_gateway: dict[str, list[str]]) -> str:
    rows = []
    for gateway, names in names_by_gateway.items():
        for i, name in enumerate(names):
            rows.append(
                f'<user username="{name}" password="p" worldpath="worlds/MyWorlds/AlphaWorld/" '
                f'server="{gateway}"><playeragent x="{20010 + 7 * i}" y="36" z="{20020 + 5 * i}" '
                f'AssetFile="character/v3/dummy/dummy.x"/></user>')
    return "<EmuDB><EmuUsers>" + "".join(rows) + "</EmuUsers></EmuDB>"


def test_two_gateway_processes_race_for_the_same_tile(redis, tmp_path):
    env = {**os.environ, "JGSL_COMPONENT_SECRET": secrets.token_hex(8),
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    procs = Processes(tmp_path, env)
    try:
        port_file = tmp_path / "router.port"
        procs.start("router", "--role", "router", "--listen", "tcp:0:interface=127.0.0.1",
                    "--port-file", str(port_file))
        port = wait_for(lambda: port_file.exists() and port_file.read_text().strip())
        xmpp = f"tcp:127.0.0.1:{port}"
        both = "gw1.localhost,gw2.localhost"
        for gw in ("gw1", "gw2"):
            procs.start(gw, "--role", "gateway", "--name", f"{gw}.localhost", "--xmpp", xmpp,
                        "--redis", f"127.0.0.1:{redis.port}",
                        "--config", str(HERE / "data" / "jgsl.config.xml"))
        procs.start("grid", "--role", "grid", "--xmpp", xmpp, "--gateway", both)
        wait_for(lambda: all("grid process grid1.localhost registered" in procs.log(g)
                             for g in ("gw1", "gw2")), what="the grid to register with both")
        users = {"gw1.localhost": ["a1", "a2", "a3"], "gw2.localhost": ["b1", "b2", "b3"]}
        (tmp_path / "users.xml").write_text(users_xml(users))
        procs.start("emu", "--role", "emu", "--xmpp", xmpp, "--gateway", both,
                    "--emu-users", str(tmp_path / "users.xml"), "--update-interval", "0.3",
                    "--request-timeout", "2")
        everyone = [n for names in users.values() for n in names]

        def all_see_all() -> bool:
            text = procs.log("emu")
            return all(f"{a}@emu.localhost sees {b}@emu.localhost" in text
                       for a in everyone for b in everyone if a != b)

        wait_for(all_see_all, timeout=45, what="all six users to see each other")
        # The users stand in tile (100, 100) near its corner, so their corner points also
        # reach the three neighbouring tiles: every tile is spawned exactly once.
        spawned = re.findall(r"grid node \d+ spawned for (\S+)", procs.log("grid"))
        assert "worlds/MyWorlds/AlphaWorld/[100,100]x200" in spawned
        assert len(spawned) == len(set(spawned))
        logs = procs.log("gw1") + procs.log("gw2")
        for tile in spawned:
            # One gateway won the claim and saw the node start; the other adopted it.
            assert logs.count(f"serves {tile} (instance 0)\n") == 1, tile
        assert logs.count("spawned through another gateway") >= 1
        assert "refused" not in logs
        procs.stop_all_cleanly()
    finally:
        procs.kill_all()
