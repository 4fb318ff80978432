"""A real XMPP server: components on Prosody and a real player over c2s with STARTTLS."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import Processes, wait_for
from tests.servers import ProsodyServer

pytestmark = pytest.mark.integration

USERS = """<EmuDB><EmuUsers>
  <user username="bob" password="b" worldpath="worlds/MyWorlds/AlphaWorld/" server="1100">
    <playeragent x="20105" y="36.6" z="20104" AssetFile="character/v3/dummy/dummy.x"/>
    <autoreply>hello from bob</autoreply>
  </user>
</EmuUsers></EmuDB>
"""


def start_player(procs: Processes, prosody: ProsodyServer, tmp_path, at: str) -> None:
    """alice over c2s with STARTTLS, trusting the server's self-signed certificate."""
    procs.start("player", "--role", "client", "--jid", "alice@localhost/pc",
                "--password-file", str(tmp_path / "password"),
                "--ca-cert", str(tmp_path / "ca.pem"),
                "--xmpp", f"tcp:127.0.0.1:{prosody.c2s_port}",
                "--at", at, "--update-interval", "0.3")


def start_world(procs: Processes, prosody: ProsodyServer) -> str:
    """Gateway and grid processes as components on Prosody; the component endpoint."""
    components = f"tcp:127.0.0.1:{prosody.component_port}"
    procs.start("gateway", "--role", "gateway", "--xmpp", components)
    procs.start("grid", "--role", "grid", "--xmpp", components)
    return components


@pytest.fixture
def prosody():
    secret = secrets.token_hex(8)
    server = ProsodyServer({f"{name}.localhost": secret for name in ("gateway", "grid1", "emu")})
    server.secret = secret
    server.start()
    yield server
    server.stop()


def test_player_over_c2s_with_starttls_meets_emulated_users(prosody, tmp_path):
    prosody.register("alice", "alice-pw")
    (tmp_path / "password").write_text("alice-pw\n")
    (tmp_path / "ca.pem").write_bytes(prosody.cert_pem)
    (tmp_path / "users.xml").write_text(USERS)
    env = {**os.environ, "JGSL_COMPONENT_SECRET": prosody.secret,
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    procs = Processes(tmp_path, env)
    try:
        components = start_world(procs, prosody)
        procs.start("emu", "--role", "emu", "--xmpp", components, "--emu-users",
                    str(tmp_path / "users.xml"), "--update-interval", "0.3")
        start_player(procs, prosody, tmp_path, "20102,36.6,20101")

        def met() -> bool:
            return ("alice@localhost/pc sees bob@emu.localhost at (20105.00, 36.60, 20104.00)"
                    in procs.log("player")
                    and "bob@emu.localhost sees alice@localhost at (20102.00, 36.60, 20101.00)"
                    in procs.log("emu"))

        wait_for(met, timeout=45, what="the player and the emulated user to see each other")
        assert "signed in to the XMPP server as alice@localhost/pc" in procs.log("player")
        log = prosody.log()
        assert "Stream encrypted" in log and "Authenticated as alice@localhost" in log
        procs.stop_all_cleanly()
    finally:
        procs.kill_all()


def test_wrong_password_is_reported_and_nothing_crashes(prosody, tmp_path):
    prosody.register("carol", "right")
    (tmp_path / "password").write_text("wrong\n")
    (tmp_path / "ca.pem").write_bytes(prosody.cert_pem)
    procs = Processes(tmp_path, dict(os.environ))
    try:
        procs.start("player", "--role", "client", "--jid", "carol@localhost/pc",
                    "--password-file", str(tmp_path / "password"),
                    "--ca-cert", str(tmp_path / "ca.pem"),
                    "--xmpp", f"tcp:127.0.0.1:{prosody.c2s_port}")
        wait_for(lambda: "XMPP sign-in failed" in procs.log("player"), timeout=30,
                 what="the authentication failure to be logged")
        assert procs.stop("player") == -signal.SIGTERM
        assert "Traceback" not in procs.log("player")
    finally:
        procs.kill_all()


def test_load_runner_against_prosody(tmp_path):
    secret = secrets.token_hex(8)
    prosody = ProsodyServer({f"{n}.localhost": secret for n in ("gateway", "grid1", "load")})
    prosody.start()
    env = {**os.environ, "JGSL_COMPONENT_SECRET": secret,
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    procs = Processes(tmp_path, env)
    try:
        components = start_world(procs, prosody)
        wait_for(lambda: "grid process grid1.localhost registered" in procs.log("gateway"))
        result = subprocess.run(
            [sys.executable, "-m", "jgsl.load", "--xmpp", components, "--users", "10",
             "--duration", "3", "--ramp", "1", "--update-interval", "0.5",
             "--out", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        assert report["logins_ok"] == 10 and report["embedded"] is False
        assert report["updates_received"] > 10 and report["rtt_ms"]["p99"] is not None
        assert procs.stop_all() == {"gateway": -signal.SIGTERM, "grid": -signal.SIGTERM}
    finally:
        procs.kill_all()
        prosody.stop()


TWO_TILES = """<EmuDB><EmuUsers>
  <user username="west" password="w" worldpath="worlds/MyWorlds/AlphaWorld/" server="1100">
    <playeragent x="20185" y="36.6" z="20100" AssetFile="character/v3/dummy/dummy.x"
                 behaviour="wander" radius="6" speed="3"/>
  </user>
  <user username="east" password="e" worldpath="worlds/MyWorlds/AlphaWorld/" server="1100">
    <playeragent x="20215" y="36.6" z="20100" AssetFile="character/v3/dummy/dummy.x"
                 behaviour="wander" radius="6" speed="3"/>
  </user>
</EmuUsers></EmuDB>
"""


def test_world_on_prosody_with_two_grid_processes_and_a_player(tmp_path):
    """Gateway, two grids and emulated users as components, one real player over c2s."""
    secret = secrets.token_hex(8)
    prosody = ProsodyServer({f"{n}.localhost": secret
                             for n in ("gateway", "grid1", "grid2", "emu")}).start()
    prosody.register("alice", "alice-pw")
    (tmp_path / "password").write_text("alice-pw\n")
    (tmp_path / "ca.pem").write_bytes(prosody.cert_pem)
    (tmp_path / "users.xml").write_text(TWO_TILES)
    env = {**os.environ, "JGSL_COMPONENT_SECRET": secret,
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    procs = Processes(tmp_path, env)
    components = f"tcp:127.0.0.1:{prosody.component_port}"
    try:
        procs.start("gateway", "--role", "gateway", "--xmpp", components)
        for grid in ("grid1", "grid2"):
            procs.start(grid, "--role", "grid", "--name", f"{grid}.localhost",
                        "--xmpp", components)
        wait_for(lambda: procs.log("gateway").count("registered") == 2,
                 what="both grid processes to register")
        procs.start("emu", "--role", "emu", "--xmpp", components, "--emu-users",
                    str(tmp_path / "users.xml"), "--update-interval", "0.3", "--seed", "5")
        start_player(procs, prosody, tmp_path, "20200,36.6,20100")

        def everybody_met() -> bool:
            player, emu = procs.log("player"), procs.log("emu")
            return all(f"alice@localhost/pc sees {u}@emu.localhost move to" in player
                       and f"{u}@emu.localhost sees alice@localhost at" in emu
                       for u in ("west", "east"))

        wait_for(everybody_met, timeout=60,
                 what="the player to see both bots move, and the bots to see the player")
        # The two tiles went to different grid processes (least loaded first).
        assert "spawned for worlds/MyWorlds/AlphaWorld/" in procs.log("grid1")
        assert "spawned for worlds/MyWorlds/AlphaWorld/" in procs.log("grid2")
        assert "Stream encrypted" in prosody.log()
        procs.stop_all_cleanly()
    finally:
        procs.kill_all()
        prosody.stop()


def test_jgsl_prosody_command_starts_and_stops(tmp_path):
    """`jgsl-prosody` renders the template, creates players, and stops on SIGTERM."""
    from tests.servers import ensure_debian_package, free_port

    ensure_debian_package("prosody", "prosody")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="jgsl-cmd-"))
    base.chmod(0o755)  # the prosody user must reach the directory
    workdir = base / "prosody"
    c2s, component = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jgsl.prosody", "--dir", str(workdir), "--c2s-port", str(c2s),
         "--component-port", str(component), "--players", "bob:bob-pw,carol:c-pw"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "JGSL_COMPONENT_SECRET": "s3"})
    try:
        line = proc.stdout.readline()
        assert f"c2s on 127.0.0.1:{c2s}" in line and "Ctrl-C stops it" in line
        config = (workdir / "prosody.cfg.lua").read_text()
        for jid in ("gateway", "grid1", "grid2", "emu", "load"):
            assert f'Component "{jid}.localhost"' in config
        assert 'component_secret = "s3"' in config and 'rate = "256kb/s"' in config
        assert (workdir / "component.secret").read_text().strip() == "s3"
        # the garbage collector setting Prosody is fastest with (docs/performance.md) is
        # in the config and was accepted: Prosody says so only when it refuses one
        assert 'gc = { mode = "generational" }' in config
        assert "GC configuration" not in (workdir / "prosody.log").read_text()
        accounts = list((workdir / "data" / "localhost" / "accounts").glob("*.dat"))
        assert sorted(a.stem for a in accounts) == ["bob", "carol"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True).returncode == 1
    shutil.rmtree(workdir.parent, ignore_errors=True)


def test_jgsl_prosody_refuses_an_unreachable_directory(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root hands the directory to the prosody user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    result = subprocess.run([sys.executable, "-m", "jgsl.prosody", "--dir",
                             str(private / "p")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "not searchable by the prosody user" in result.stderr


VICTIM = """<EmuDB><EmuUsers>
  <user username="victim" password="v" worldpath="worlds/MyWorlds/AlphaWorld/" server="1100">
    <playeragent x="20105" y="36.6" z="20104" AssetFile="character/v3/dummy/dummy.x"/>
  </user>
</EmuUsers></EmuDB>
"""


def test_a_players_account_cannot_become_a_grid_process(prosody, tmp_path):
    """Found in the wild: a c2s account sent GRID_HELLO, was registered as a grid process
    and was then handed other players' logins. Now it is refused and logged; the victim's
    login goes to the real grid."""
    prosody.register("mallory", "mallory-pw")
    (tmp_path / "ca.pem").write_bytes(prosody.cert_pem)
    (tmp_path / "users.xml").write_text(VICTIM)
    env = {**os.environ, "JGSL_COMPONENT_SECRET": prosody.secret,
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    procs = Processes(tmp_path, env)
    try:
        components = start_world(procs, prosody)
        wait_for(lambda: "grid process grid1.localhost registered" in procs.log("gateway"),
                 what="the real grid to register")
        result = subprocess.run([sys.executable, str(Path(__file__).parent / "hijack.py"),
                                 str(prosody.c2s_port), str(tmp_path / "ca.pem")],
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0 and "hijack sent" in result.stdout, result.stderr
        wait_for(lambda: "GRID_HELLO from mallory@localhost refused: not sealed"
                 in procs.log("gateway"), what="the unsealed hello to be refused")
        gateway = procs.log("gateway")
        assert "GRID_HELLO from mallory@localhost refused: bad seal" in gateway
        assert "GRID_NODE_READY from mallory@localhost refused: not sealed" in gateway
        assert "grid process mallory@localhost registered" not in gateway
        procs.start("emu", "--role", "emu", "--xmpp", components, "--emu-users",
                    str(tmp_path / "users.xml"), "--update-interval", "0.3")
        wait_for(lambda: "victim@emu.localhost signed-in: grid1.localhost grid node"
                 in procs.log("emu"), timeout=45, what="the victim to sign in on grid1")
        assert "mallory" not in procs.log("emu") and "mallory" not in procs.log("grid")
        procs.stop_all_cleanly()
    finally:
        procs.kill_all()
