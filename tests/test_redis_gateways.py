"""Several gateways over a real redis-server: consistent allocation when they race."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import zlib
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


def start_router(procs: Processes, tmp_path) -> str:
    """The embedded router on a free port: the endpoint components connect to."""
    port_file = tmp_path / "router.port"
    procs.start("router", "--role", "router", "--listen", "tcp:0:interface=127.0.0.1",
                "--port-file", str(port_file))
    port = wait_for(lambda: port_file.exists() and port_file.read_text().strip())
    return f"tcp:127.0.0.1:{port}"


def test_two_gateway_processes_race_for_the_same_tile(redis, tmp_path):
    env = {**os.environ, "JGSL_COMPONENT_SECRET": secrets.token_hex(8),
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    procs = Processes(tmp_path, env)
    try:
        xmpp = start_router(procs, tmp_path)
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


def test_a_redis_that_restarts_empty_is_warned_of_and_refilled(tmp_path):
    """AOF off and no snapshots: at start the processes say a restart would lose
    everything; after a kill -9 and restart, gateway and grid notice the loss and write the
    allocation records, live agents and script keys back."""
    redis = RedisServer(tmp_path / "redis", appendonly=False).start()
    env = {**os.environ, "JGSL_COMPONENT_SECRET": secrets.token_hex(8),
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    procs = Processes(tmp_path, env)
    try:
        xmpp, store = start_router(procs, tmp_path), f"127.0.0.1:{redis.port}"
        procs.start("gateway", "--role", "gateway", "--xmpp", xmpp, "--redis", store)
        procs.start("grid", "--role", "grid", "--xmpp", xmpp, "--redis", store)
        (tmp_path / "users.xml").write_text(users_xml({"1100": ["a1", "a2"]}))
        procs.start("emu", "--role", "emu", "--xmpp", xmpp, "--emu-users",
                    str(tmp_path / "users.xml"), "--update-interval", "0.3")
        for name in ("gateway", "grid"):
            wait_for(lambda n=name: "a restart of Redis loses everything" in procs.log(n),
                     what=f"the {name}'s durability warning")
        wait_for(lambda: "a2@emu.localhost sees a1@emu.localhost" in procs.log("emu"),
                 timeout=45, what="the users to meet")
        wait_for(lambda: "alloc:node:" in redis.command("KEYS", "jgsl:*"),
                 what="the allocation record")
        before = set(redis.command("KEYS", "jgsl:alloc:node:*").splitlines())
        assert before
        redis.kill()
        redis.restart()
        assert redis.command("KEYS", "jgsl:alloc:*").strip() == ""  # it forgot everything
        for name in ("gateway", "grid"):
            wait_for(lambda n=name: "came back without writes it had acknowledged"
                     in procs.log(n), what=f"the {name} to notice")
        wait_for(lambda: before <= set(redis.command("KEYS", "jgsl:alloc:node:*").splitlines()),
                 what="the allocation records to be written back")
        agents = "jgsl:agents:worlds/MyWorlds/AlphaWorld/"
        wait_for(lambda: {"a1@emu.localhost", "a2@emu.localhost"}
                 <= set(redis.command("HKEYS", agents).splitlines()), what="the live agents")
        published = re.search(r"re-publishing (\d+) node records", procs.log("gateway"))
        assert int(published.group(1)) >= len(before)
        assert "re-publishing 2 live agents" in procs.log("grid")
        procs.stop_all_cleanly()
    finally:
        procs.kill_all()
        redis.stop()


def test_users_spread_over_two_gateways_and_fail_over_when_one_dies(redis, tmp_path):
    """Twenty users spread over two gateways (by a hash of their JID). One gateway is
    killed (-9) and then their grid process stops, so every user must log in again: the
    ones whose gateway died go to the other at once (the router bounces the dead one), all
    are back within 10 s, and no region is spawned twice."""
    env = {**os.environ, "JGSL_COMPONENT_SECRET": secrets.token_hex(8),
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    names = [f"u{i:02d}" for i in range(20)]
    on_gw1 = [n for n in names if zlib.crc32(f"{n}@emu.localhost".encode()) % 2 == 0]
    assert 0 < len(on_gw1) < len(names)  # (the hash spreads these users over both)
    procs = Processes(tmp_path, env)
    try:
        xmpp, store = start_router(procs, tmp_path), f"127.0.0.1:{redis.port}"
        both = "gw1.localhost,gw2.localhost"
        for gw in ("gw1", "gw2"):
            procs.start(gw, "--role", "gateway", "--name", f"{gw}.localhost", "--xmpp", xmpp,
                        "--redis", store, "--config", str(HERE / "data" / "jgsl.config.xml"))
        for grid in ("grid1", "grid2"):
            procs.start(grid, "--role", "grid", "--xmpp", xmpp, "--gateway", both,
                        "--name", f"{grid}.localhost", "--scripts", "none")
        wait_for(lambda: all(f"grid process {g}.localhost registered" in procs.log(gw)
                             for g in ("grid1", "grid2") for gw in ("gw1", "gw2")),
                 what="both grids registered with both gateways")
        (tmp_path / "users.xml").write_text(users_xml({"1100": names}))
        procs.start("emu", "--role", "emu", "--xmpp", xmpp, "--gateway", both,
                    "--emu-users", str(tmp_path / "users.xml"), "--update-interval", "0.5")
        wait_for(lambda: procs.log("emu").count(" signed-in: ") >= 20, timeout=45,
                 what="every user signed in")
        home = re.search(r" signed-in: (grid\d)\.localhost", procs.log("emu")).group(1)
        procs.procs["gw1"].kill()  # kill -9: no goodbye
        procs.procs["gw1"].wait()
        del procs.procs["gw1"]
        mark = len(procs.log("emu"))
        started = time.monotonic()
        procs.stop(home)  # graceful: SC_Closing to its users, who must log in again

        def signed_in_again() -> int:
            return procs.log("emu")[mark:].count(" signed-in: ")

        wait_for(lambda: signed_in_again() >= 20, timeout=10,
                 what="every user signed in again within 10 s")
        assert time.monotonic() - started <= 10.0
        after = procs.log("emu")[mark:]
        for name in on_gw1:  # these had to leave the dead gateway
            assert f"{name}@emu.localhost: gateway gw1.localhost" in after, name
        other = "grid2" if home == "grid1" else "grid1"
        spawned = re.findall(r"grid node \d+ spawned for (\S+)", procs.log(other))
        assert spawned and len(spawned) == len(set(spawned))  # no region twice
    finally:
        procs.kill_all()
