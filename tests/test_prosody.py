"""A real XMPP server: components on Prosody and a real player over c2s with STARTTLS."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys

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
        procs.start("player", "--role", "client", "--jid", "alice@localhost/pc",
                    "--password-file", str(tmp_path / "password"),
                    "--ca-cert", str(tmp_path / "ca.pem"),
                    "--xmpp", f"tcp:127.0.0.1:{prosody.c2s_port}",
                    "--at", "20102,36.6,20101", "--update-interval", "0.3")

        def met() -> bool:
            return ("alice@localhost/pc sees bob@emu.localhost at (20105.00, 36.60, 20104.00)"
                    in procs.log("player")
                    and "bob@emu.localhost sees alice@localhost at (20102.00, 36.60, 20101.00)"
                    in procs.log("emu"))

        wait_for(met, timeout=45, what="the player and the emulated user to see each other")
        assert "signed in to the XMPP server as alice@localhost/pc" in procs.log("player")
        log = prosody.log()
        assert "Stream encrypted" in log and "Authenticated as alice@localhost" in log
        codes = procs.stop_all()
        assert set(codes.values()) == {-signal.SIGTERM}
        for name in ("gateway", "grid", "emu", "player"):
            assert "Traceback" not in procs.log(name), procs.log(name)
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
