"""jgsl-admin against real processes: status, users, query, dump, kick, drain (issue 22)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fakes import signed_in
from tests.processes import Processes, wait_for
from tests.test_multiprocess import router_port
from tests.test_persistence import users_file

ADMIN = "admin.localhost"


def admin(procs: Processes, xmpp: str, *args: str, name: str = ADMIN,
          timeout: str = "10") -> subprocess.CompletedProcess:
    command, rest = args[0], args[1:]
    return subprocess.run([sys.executable, "-m", "jgsl.admin", command, *rest, "--xmpp", xmpp,
                           "--name", name, "--timeout", timeout],
                          capture_output=True, text=True, timeout=90, env=procs.env)


def test_an_operator_sees_and_steers_a_running_world(procs: Processes, tmp_path):
    users = users_file(tmp_path / "users.xml", 4, behaviour="wander")
    port_file = tmp_path / "router.port"
    procs.start("router", "--role", "router", "--listen", "tcp:0:interface=127.0.0.1",
                "--port-file", str(port_file))
    xmpp = f"tcp:127.0.0.1:{router_port(procs, port_file)}"
    procs.start("gateway", "--role", "gateway", "--xmpp", xmpp, "--admin", ADMIN)
    procs.start("grid1", "--role", "grid", "--xmpp", xmpp, "--admin", ADMIN, "--scripts",
                "none", "--name", "grid1.localhost")
    wait_for(lambda: "grid1.localhost registered" in procs.log("gateway"), what="grid1")
    procs.start("emu", "--role", "emu", "--xmpp", xmpp, "--emu-users", str(users),
                "--update-interval", "0.5", "--request-timeout", "3", "--admin", ADMIN)
    wait_for(lambda: signed_in(procs, "emu", 4), what="4 users in")

    # status: the gateway's view, for people and as JSON
    result = admin(procs, xmpp, "status")
    assert result.returncode == 0, result.stderr
    assert "grid grid1.localhost: live" in result.stdout
    assert "AlphaWorld 100,100 on grid1.localhost: ready" in result.stdout
    (answer,) = json.loads(admin(procs, xmpp, "status", "--json").stdout)
    assert answer["ok"] and [g["jid"] for g in answer["data"]["grids"]] == ["grid1.localhost"]
    (home,) = [n for n in answer["data"]["nodes"] if (n["gx"], n["gy"]) == (100, 100)]
    assert home["users"] == 4  # (neighbour nodes the users watch across borders may exist)

    # users: every agent on every node
    result = admin(procs, xmpp, "users")
    assert result.returncode == 0, result.stderr
    assert all(f"u{i}@emu.localhost" in result.stdout for i in range(4))

    # query: CS_QUERY through the gateway (agents as the grid's last heartbeat counted them)
    wait_for(lambda: "AlphaWorld/ 100,100, 4 agent(s)" in admin(procs, xmpp, "query").stdout,
             what="the query to count 4 agents on their node")

    # dump: on for one user and one type, readable agent tables; then off
    result = admin(procs, xmpp, "dump", "on", "grid1.localhost", "--user", "u1@emu.localhost",
                   "--type", "SC_NormalUpdate")
    assert result.returncode == 0 and "message dump on" in result.stdout, result.stderr
    wait_for(lambda: "grid1.localhost: send u1@emu.localhost SC_NormalUpdate" in procs.log("grid1"),
             what="dump lines for u1")
    lines = [line for line in procs.log("grid1").splitlines() if "jgsl.dump" in line]
    assert lines and all("u1@emu.localhost" in line and "SC_NormalUpdate" in line
                         for line in lines)
    assert any("agents: slot" in line for line in lines)
    assert admin(procs, xmpp, "dump", "off", "grid1.localhost").returncode == 0
    dumped = procs.log("grid1").count("jgsl.dump")  # (no more after "off": checked at the end)

    # kick: the user is sent off with the reason, and comes back (emulated users do)
    result = admin(procs, xmpp, "kick", "u2@emu.localhost", "be nice")
    assert result.returncode == 0, result.stderr
    assert "u2@emu.localhost kicked" in result.stdout
    wait_for(lambda: "an admin kicked u2@emu.localhost from node 1: be nice"
             in procs.log("grid1"), what="the kick logged")
    result = admin(procs, xmpp, "kick", "nobody@emu.localhost")
    assert result.returncode == 1 and "is on none of its nodes" in result.stdout

    # drain: a second grid process takes the region; the users move there
    procs.start("grid2", "--role", "grid", "--xmpp", xmpp, "--admin", ADMIN, "--scripts",
                "none", "--name", "grid2.localhost")
    wait_for(lambda: "grid2.localhost registered" in procs.log("gateway"), what="grid2")
    result = admin(procs, xmpp, "drain", "grid1.localhost")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grid1.localhost: drained, " in result.stdout

    def on_grid2():
        data = json.loads(admin(procs, xmpp, "status", "--json").stdout)[0]["data"]
        nodes = data["nodes"]
        home = [n for n in nodes if (n["gx"], n["gy"]) == (100, 100)]
        return nodes and all(n["grid"] == "grid2.localhost" for n in nodes) \
            and home and home[0]["users"] == 4

    wait_for(on_grid2, timeout=30, what="every user served by grid2")
    status = admin(procs, xmpp, "status").stdout
    assert "grid grid1.localhost: live, draining" in status
    assert admin(procs, xmpp, "undrain", "grid1.localhost").returncode == 0
    assert "draining" not in admin(procs, xmpp, "status").stdout

    # someone who is not an admin gets no answer, and is logged
    result = admin(procs, xmpp, "status", name="mallory.localhost", timeout="2")
    assert result.returncode == 1 and "no reply within 2 s" in result.stderr
    wait_for(lambda: "ADMIN_COMMAND from mallory.localhost refused" in procs.log("gateway"),
             what="the intruder logged")
    assert procs.log("grid1").count("jgsl.dump") == dumped
    procs.stop_all_cleanly()
