"""Real processes, real XMPP over TCP: router, gateway, grid and emu as separate twistd runs."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.processes import Processes, wait_for

pytestmark = pytest.mark.integration
DATA = Path(__file__).parent / "data"

USERS = """<EmuDB><EmuUsers>
  <user username="alice" password="a" worldpath="worlds/MyWorlds/AlphaWorld/" server="1100">
    <playeragent x="20091" y="36.717" z="20086" AssetFile="character/v4/Can/can01/can01.x"/>
  </user>
  <user username="bob" password="b" worldpath="worlds/MyWorlds/AlphaWorld/" server="1100">
    <playeragent x="20096" y="36.717" z="20090" AssetFile="character/v4/Can/can03/can03.x"/>
  </user>
</EmuUsers></EmuDB>
"""
ALICE_SEES_BOB = "alice@emu.localhost sees bob@emu.localhost at (20096.00, 36.72, 20090.00)"
BOB_SEES_ALICE = "bob@emu.localhost sees alice@emu.localhost at (20091.00, 36.72, 20086.00)"


def router_port(procs: Processes, port_file: Path) -> int:
    return int(wait_for(lambda: port_file.exists() and port_file.read_text().strip(),
                        what="the router's port file"))


#: twistd re-raises the signal that stopped it, after a clean shutdown.
GRACEFUL = -signal.SIGTERM


def clean(text: str) -> bool:
    return ("Traceback" not in text and "Unhandled Error" not in text
            and "Server Shut Down." in text)


def test_separate_processes_exchange_positions(procs, tmp_path):
    users = tmp_path / "users.xml"
    users.write_text(USERS)
    port_file = tmp_path / "router.port"
    procs.start("router", "--role", "router", "--listen", "tcp:0:interface=127.0.0.1",
                "--port-file", str(port_file))
    xmpp = f"tcp:127.0.0.1:{router_port(procs, port_file)}"
    procs.start("gateway", "--role", "gateway", "--xmpp", xmpp,
                "--config", str(DATA / "jgsl.config.xml"))
    procs.start("grid", "--role", "grid", "--xmpp", xmpp)
    procs.start("emu", "--role", "emu", "--xmpp", xmpp, "--emu-users", str(users),
                "--update-interval", "0.3", "--request-timeout", "1.5", "--dump-client-msg")

    wait_for(lambda: ALICE_SEES_BOB in procs.log("emu") and BOB_SEES_ALICE in procs.log("emu"),
             what="both emulated users to see each other")
    assert "grid process grid1.localhost registered" in procs.log("gateway")
    assert "grid node 1 spawned for worlds/MyWorlds/AlphaWorld/[100,100]x200" in procs.log("grid")

    # The router goes away and comes back on the same port: the components reconnect with
    # backoff and the users' updates flow again.
    port = xmpp.rsplit(":", 1)[1]
    mark = len(procs.log("emu"))
    assert procs.stop("router") == GRACEFUL
    wait_for(lambda: "component link lost" in procs.log("emu")[mark:], what="link loss")
    procs.start("router2", "--role", "router", "--listen", f"tcp:{port}:interface=127.0.0.1")

    def updates_flow_again() -> bool:
        after = procs.log("emu")[mark:]
        return ("component emu.localhost is connected" in after
                and after.count("recv grid1.localhost SC_NormalUpdate") >= 4)

    wait_for(updates_flow_again, timeout=40, what="updates after the router restart")

    codes = procs.stop_all()
    assert codes == dict.fromkeys(("gateway", "grid", "emu", "router2"), GRACEFUL)
    for name in ("router", "router2", "gateway", "grid", "emu"):
        assert clean(procs.log(name)), procs.log(name)


def test_world_demo_with_message_dumps(procs, tmp_path):
    """``--role world`` runs everything in one process and dumps decoded server messages."""
    port_file = tmp_path / "router.port"
    procs.start("world", "--role", "world", "--listen", "tcp:0:interface=127.0.0.1",
                "--port-file", str(port_file), "--update-interval", "0.3", "--dump-server-msg",
                "--seed", "7")

    def walked() -> bool:
        text = procs.log("world")
        return ("alice@emu.localhost sees bob@emu.localhost" in text
                and "bob@emu.localhost sees alice@emu.localhost" in text
                and "recv alice@emu.localhost CS_NormalUpdate {" in text
                and "send alice@emu.localhost SC_NormalUpdate {" in text)

    wait_for(walked, what="the demo users to log in and exchange updates")
    text = procs.log("world")
    assert "dropped" not in text
    assert procs.stop("world") == GRACEFUL
    assert clean(procs.log("world"))
