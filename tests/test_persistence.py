"""Persistence and graceful shutdown with real processes, a real redis-server and real files."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jgsl.core.effects import AgentRecord
from tests.fakes import signed_in, start_world
from tests.processes import wait_for
from tests.servers import RedisServer

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent
ALPHA = "worlds/MyWorlds/AlphaWorld/"
GRACEFUL = -signal.SIGTERM


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


def users_file(path: Path, count: int, behaviour: str = "stand") -> Path:
    """``count`` users standing (or wandering) inside tile (100, 100), corners included."""
    rows = []
    for i in range(count):
        rows.append(
            f'<user username="u{i}" password="p" worldpath="{ALPHA}" server="1100">'
            f'<playeragent x="{20040 + (i % 10) * 10}" y="36" z="{20040 + (i // 10) * 10}" '
            f'nickname="U{i}" AssetFile="character/v3/dummy/dummy.x" '
            f'behaviour="{behaviour}" radius="5" speed="4"/></user>')
    path.write_text("<EmuDB><EmuUsers>" + "".join(rows) + "</EmuUsers></EmuDB>")
    return path


def test_redis_killed_and_restarted_loses_nothing(tmp_path):
    """Store over Redis (AOF on) killed -9 mid-run and restarted: writes queue (bounded,
    logged), reads fall back, the queue flushes on reconnect, nothing is lost."""
    result = subprocess.run([sys.executable, str(HERE / "redis_outage.py"),
                             str(tmp_path / "redis")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outage ok" in result.stdout


def test_shutdown_under_load_persists_every_agent(procs, redis, tmp_path):
    users = users_file(tmp_path / "users.xml", 60, behaviour="wander")
    start_world(procs, tmp_path, "world", users, "--redis", f"127.0.0.1:{redis.port}")
    wait_for(lambda: signed_in(procs, "world", 60), timeout=60, what="60 users to sign in")
    # Signed in is not yet on the node: wait until each has had an update answered (it sees
    # the others), so the grid holds all 60 when the stop comes.
    wait_for(lambda: all(f"u{i}@emu.localhost sees " in procs.log("world") for i in range(60)),
             timeout=60, what="every user to be on the grid node")
    assert procs.stop("world", timeout=30) == GRACEFUL
    text = procs.log("world")
    assert "Traceback" not in text
    assert re.search(r"closing: SC_Closing sent to \d+ clients, 60 agents saved", text)
    assert "shutdown: every write persisted" in text
    stored = redis.command("--raw", "HGETALL", f"jgsl:agents:{ALPHA}").split("\n")
    records = dict(zip(stored[0::2], stored[1::2], strict=False))
    assert sorted(records) == sorted(f"u{i}@emu.localhost" for i in range(60))
    for i in range(60):
        record = AgentRecord.loads(records[f"u{i}@emu.localhost"])
        home = (20040 + (i % 10) * 10, 20040 + (i // 10) * 10)
        assert abs(record.x - home[0]) <= 5.01 and abs(record.z - home[1]) <= 5.01, record
        assert record.nickname == f"U{i}" and record.asset_file == "character/v3/dummy/dummy.x"

    # Next time, each user is offered its last position back at login.
    start_world(procs, tmp_path, "again", users, "--redis", f"127.0.0.1:{redis.port}")
    wait_for(lambda: signed_in(procs, "again", 60), timeout=60, what="the users to return")
    text = procs.log("again")
    record = AgentRecord.loads(records["u7@emu.localhost"])
    assert (f"u7@emu.localhost restored: gateway.localhost last visit at "
            f"({record.x:.2f}, {record.y:.2f}, {record.z:.2f})") in text
    procs.stop_all_cleanly()


def test_embedded_store_survives_a_world_restart(procs, tmp_path):
    users = users_file(tmp_path / "users.xml", 3, behaviour="wander")
    start_world(procs, tmp_path, "world", users)
    wait_for(lambda: signed_in(procs, "world", 3), what="the users to sign in")
    assert procs.stop("world") == GRACEFUL
    state = json.loads((tmp_path / "jgsl-state" / "world.json").read_text())
    agents = state["hashes"][f"agents:{ALPHA}"]
    assert sorted(agents) == ["u0@emu.localhost", "u1@emu.localhost", "u2@emu.localhost"]
    assert not list((tmp_path / "jgsl-state").glob(".*.tmp"))  # renamed into place

    start_world(procs, tmp_path, "again", users)
    wait_for(lambda: signed_in(procs, "again", 3), what="the users to sign in again")
    text = procs.log("again")
    assert "state restored from jgsl-state/world.json" in text
    for user, value in agents.items():
        r = AgentRecord.loads(value)
        assert f"{user} restored: gateway.localhost last visit at " \
               f"({r.x:.2f}, {r.y:.2f}, {r.z:.2f})" in text
    procs.stop_all_cleanly()


def admin(port: str, name: str, target: str, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jgsl.admin", "shutdown", target, "--xmpp",
                           f"tcp:127.0.0.1:{port}", "--name", name, "--reason", "maintenance"],
                          capture_output=True, text=True, timeout=60, env=env)


def test_admin_message_shuts_down_gracefully(procs, tmp_path):
    users = users_file(tmp_path / "users.xml", 2)
    port = start_world(procs, tmp_path, "world", users, "--admin", "admin.localhost")
    wait_for(lambda: signed_in(procs, "world", 2), what="the users to sign in")
    result = admin(port, "mallory.localhost", "grid1.localhost", procs.env)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: "ADMIN_SHUTDOWN from mallory.localhost refused: the sender is not an admin"
             in procs.log("world"), what="the intruder to be logged")
    assert procs.procs["world"].poll() is None  # still running
    result = admin(port, "admin.localhost", "grid1.localhost", procs.env)
    assert result.returncode == 0, result.stderr
    assert procs.procs["world"].wait(timeout=30) == 0
    text = procs.log("world")
    assert "shutdown requested by admin.localhost: maintenance" in text
    assert "closing: SC_Closing sent to" in text and "2 agents saved" in text
    assert "shutdown: every write persisted" in text and "Traceback" not in text
    procs.procs.pop("world")


def test_second_sigterm_forces_the_stop(procs, tmp_path):
    """Redis is unreachable, so the flush cannot finish; a second SIGTERM stops at once."""
    from jgsl.prosody import free_port

    users = users_file(tmp_path / "users.xml", 2)
    start_world(procs, tmp_path, "world", users, "--redis", f"127.0.0.1:{free_port()}",
                "--shutdown-timeout", "600")
    wait_for(lambda: signed_in(procs, "world", 2), what="the users to sign in")
    world = procs.procs["world"]
    world.send_signal(signal.SIGTERM)
    wait_for(lambda: "closing: SC_Closing sent to" in procs.log("world"),
             what="the graceful stop to begin")
    assert world.poll() is None  # waiting for Redis
    world.send_signal(signal.SIGTERM)
    assert world.wait(timeout=30) == GRACEFUL
    text = procs.log("world")
    assert re.search(r"shutdown forced by a second SIGTERM: [1-9]\d* queued writes were NOT "
                     r"persisted", text), text
    procs.procs.pop("world")
