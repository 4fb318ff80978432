"""Lua game logic in a running world: the demo guard, hot reload by SIGUSR1 and ADMIN_RELOAD.

Each test runs ``twistd jgsl --role world`` (router, gateway, grid and emulated users in one
process, real XMPP over loopback TCP) on its own copy of lua/ (``--scripts``), with two
emulated users standing at the centre of the guard's patrol square, so it greets them.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jgsl.tap import LUA_DIR
from tests.fakes import ALPHA, signed_in, start_world
from tests.processes import Processes, wait_for

pytestmark = pytest.mark.integration
GUARD = "guard.1@grid1.localhost"
#: The guard patrols a 24 x 24 square centred on the tile origin + 95 (tile 100,100 of 200
#: starts at 20000); from the centre it is within its greeting radius (15) most of the time.
USERS = {"u0": (20095, 20095), "u1": (20096, 20094)}
ADMIN = "admin.localhost"


@pytest.fixture
def scripts(tmp_path) -> Path:
    """This test's own copy of lua/, edited freely."""
    return Path(shutil.copytree(LUA_DIR, tmp_path / "game"))


def users_near_guard(path: Path) -> Path:
    rows = "".join(
        f'<user username="{name}" password="p" worldpath="{ALPHA}" server="1100">'
        f'<playeragent x="{x}" y="36.6" z="{z}" nickname="{name.upper()}" '
        f'AssetFile="character/v3/dummy/dummy.x" behaviour="stand"/></user>'
        for name, (x, z) in USERS.items())
    path.write_text(f"<EmuDB><EmuUsers>{rows}</EmuUsers></EmuDB>")
    return path


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur exactly once, so a changed demo fails loudly)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    path.write_text(text.replace(old, new))


def world(procs: Processes, tmp_path: Path, scripts: Path, *args: str) -> str:
    """Start the world on ``scripts``; wait for both users to be in. The router's port."""
    port = start_world(procs, tmp_path, "world", users_near_guard(tmp_path / "users.xml"),
                       "--scripts", str(scripts), *args)
    wait_for(lambda: signed_in(procs, "world", len(USERS)), timeout=60,
             what="the users to sign in")
    return port


def greetings(procs: Processes, text: str, since: int = 0) -> dict[str, int]:
    """How many messages containing ``text`` each user got from the guard after ``since``."""
    log = procs.log("world")[since:]
    return {name: log.count(f"{name}@emu.localhost message: {GUARD} {text}")
            for name in USERS}


def wait_greeted(procs: Processes, text: str, since: int = 0, times: int = 1) -> None:
    wait_for(lambda: min(greetings(procs, text, since).values()) >= times, timeout=60,
             what=f"every user to get {text!r} from the guard")


def no_session_lost(text: str) -> None:
    """Every user signed in once and stayed in: nobody left, timed out or was closed."""
    assert text.count(" signed-in: ") == len(USERS), text
    for lost in (" signed-out: ", " user-leave: ", " connection-timeout: ", " closed: ",
                 "timed out on node"):
        assert lost not in text, lost


def stop_cleanly(procs: Processes) -> None:
    assert procs.procs["world"].poll() is None, "the world process died"
    text = procs.log("world")
    procs.stop_all_cleanly()  # exit by SIGTERM after a graceful stop, no Traceback
    assert "Server Shut Down." in procs.log("world"), text[-3000:]


def test_guard_is_seen_and_greets(procs, tmp_path, scripts):
    world(procs, tmp_path, scripts)
    wait_for(lambda: all(f"{name}@emu.localhost sees {GUARD} at (" in procs.log("world")
                         for name in USERS), what="every user to see the guard")
    wait_greeted(procs, "Welcome to AlphaWorld, ")
    text = procs.log("world")
    assert "grid node 1 runs script regions.AlphaWorld" in text
    for name in USERS:
        assert f"{name}@emu.localhost message: {GUARD} Welcome to AlphaWorld, " \
               f"{name.upper()}!" in text
    stop_cleanly(procs)


def test_sigusr1_reload_takes_effect_and_keeps_every_agent(procs, tmp_path, scripts):
    world(procs, tmp_path, scripts, "--dump-server-msg")
    wait_greeted(procs, "Welcome to AlphaWorld, ")

    # A good change: new greeting text, and the new version greets everybody again.
    alpha = scripts / "regions" / "AlphaWorld.lua"
    edit(alpha, '"Welcome to AlphaWorld, "', '"Hello again, "')
    edit(alpha, "  state = old or state\n", "  state = old or state\n  state.greeted = {}\n")
    mark = len(procs.log("world"))
    procs.procs["world"].send_signal(signal.SIGUSR1)
    wait_for(lambda: "scripts reloaded: 1 changed" in procs.log("world")[mark:],
             what="the reload")
    wait_greeted(procs, "Hello again, ", since=mark)

    text = procs.log("world")
    after = text[mark:]
    assert "grid node 1: script regions.AlphaWorld reloaded" in after
    # The old state was handed over: the greetings counted before the reload survive.
    handed = re.search(r"guard script reloaded; (\d+) greetings so far", after)
    assert handed and int(handed.group(1)) >= len(USERS), after
    # No agent dropped: the same users keep updating the same node (the grid keeps
    # answering their updates), and the guard is the same agent (seen once, never left).
    wait_for(lambda: all(procs.log("world")[mark:].count(
        f"send {name}@emu.localhost SC_NormalUpdate") >= 4 for name in USERS),
        what="the users to keep updating after the reload")
    text = procs.log("world")
    no_session_lost(text)
    for name in USERS:
        assert text.count(f"{name}@emu.localhost sees {GUARD} at (") == 1
    assert "Welcome to AlphaWorld" not in text[text.index("scripts reloaded: 1 changed"):]
    stop_cleanly(procs)


def test_reload_with_a_syntax_error_is_refused_and_the_old_script_runs_on(procs, tmp_path,
                                                                          scripts):
    alpha = scripts / "regions" / "AlphaWorld.lua"
    # Greet again every 2 s, so the old version is seen to keep working after the refusal.
    edit(alpha, "local GREET_AGAIN = 120 ", "local GREET_AGAIN = 2 ")
    world(procs, tmp_path, scripts)
    wait_greeted(procs, "Welcome to AlphaWorld, ")

    lines = alpha.read_text().splitlines(keepends=True)
    broken = next(i for i, line in enumerate(lines) if line.startswith("local Y = "))
    lines[broken] = "local Y = = 36.6\n"
    lines = [line.replace("Welcome to AlphaWorld, ", "Broken, ") for line in lines]
    alpha.write_text("".join(lines))
    mark = len(procs.log("world"))
    procs.procs["world"].send_signal(signal.SIGUSR1)
    wait_for(lambda: "reload refused" in procs.log("world")[mark:], what="the refusal")
    after = procs.log("world")[mark:]
    assert re.search(rf"reload refused, the old scripts keep running: regions\.AlphaWorld "
                     rf"\(node 1\): game/regions/AlphaWorld\.lua:{broken + 1}: ", after), after
    assert "scripts reloaded: 1 changed" not in after

    # The old VM runs on: the users are greeted again, with the old text.
    mark = len(procs.log("world"))
    wait_greeted(procs, "Welcome to AlphaWorld, ", since=mark)
    text = procs.log("world")
    assert "Broken, " not in text
    no_session_lost(text)
    stop_cleanly(procs)


def jgsl_admin(procs: Processes, port: str, name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jgsl.admin", "reload", *args, "--xmpp",
                           f"tcp:127.0.0.1:{port}", "--name", name],
                          capture_output=True, text=True, timeout=60, env=procs.env)


def test_admin_reload_is_answered_and_refused_to_non_admins(procs, tmp_path, scripts):
    port = world(procs, tmp_path, scripts, "--admin", ADMIN)
    wait_greeted(procs, "Welcome to AlphaWorld, ")
    alpha = scripts / "regions" / "AlphaWorld.lua"
    edit(alpha, "  state = old or state\n", "  state = old or state\n  state.greeted = {}\n")
    edit(alpha, '"Welcome to AlphaWorld, "', '"Reloaded by the admin, "')

    # Not an admin: dropped with a log line, no reply (the tool names the silent target).
    result = jgsl_admin(procs, port, "mallory.localhost", "grid1.localhost", "--timeout", "3")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no reply within 3 s from grid1.localhost" in result.stderr
    wait_for(lambda: "ADMIN_RELOAD from mallory.localhost refused: the sender is not an admin"
             in procs.log("world"), what="the intruder to be logged")
    assert "scripts reloaded" not in procs.log("world")

    # The admin: every target answers; the grid reloaded one script, the gateway none.
    mark = len(procs.log("world"))
    result = jgsl_admin(procs, port, ADMIN, "grid1.localhost", "gateway.localhost")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grid1.localhost: ok, 1 script(s) reloaded" in result.stdout
    assert "gateway.localhost: ok, 0 script(s) reloaded" in result.stdout
    assert f"script reload requested by {ADMIN}" in procs.log("world")[mark:]
    wait_greeted(procs, "Reloaded by the admin, ", since=mark)

    # A reload that fails is answered ok=False with the error, and exit code 1.
    edit(alpha, "function OnTick(now)", "function OnTick(now")
    result = jgsl_admin(procs, port, ADMIN, "grid1.localhost")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "grid1.localhost: reload refused, the old scripts keep running" in result.stdout
    assert "game/regions/AlphaWorld.lua:" in result.stdout
    no_session_lost(procs.log("world"))
    stop_cleanly(procs)
