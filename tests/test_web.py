"""The web interface of real processes: /metrics, /healthz, and JSON logs (issue 22)."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from jgsl.emudb import load_users
from jgsl.tap import CONFIG_DIR, WORLD_WEB, Options
from tests.processes import Processes, wait_for

LOCAL = "tcp:0:interface=127.0.0.1"


def web_url(procs: Processes, name: str) -> str:
    """The URL process ``name`` logged for its web interface."""
    def found():
        for line in procs.log(name).splitlines():
            if "web interface at http://" in line:
                return line.split("web interface at ", 1)[1].split(" ", 1)[0]
        return None

    return wait_for(found, what=f"{name}'s web interface")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def samples(url: str) -> dict[str, list]:
    """/metrics parsed with prometheus_client's own parser: name -> samples."""
    status, body = get(url + "metrics")
    assert status == 200
    families = text_string_to_metric_families(body.decode())
    return {family.name: family.samples for family in families}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_of_a_running_world_count_its_emulated_users(procs: Processes):
    users = len(load_users(CONFIG_DIR / "EmuUsersDB.xml")[0])
    procs.start("world", "--role", "world", "--listen", LOCAL, "--web", LOCAL,
                "--update-interval", "0.5")
    url = web_url(procs, "world")

    def all_in():
        metrics = samples(url)
        agents = sum(s.value for s in metrics["jgsl_node_agents"] if s.labels["kind"] == "user")
        return metrics if agents == users else None

    metrics = wait_for(all_in, what=f"{users} users on the nodes")
    logins = {s.labels["result"]: s.value for s in metrics["jgsl_logins"]
              if s.name == "jgsl_logins_total"}
    assert logins["ok"] >= users
    signed_in = {s.labels["state"]: s.value for s in metrics["jgsl_emulated_users"]}
    assert signed_in == {"signed_in": users, "not_signed_in": 0}
    updates = [s for s in metrics["jgsl_messages_received"]
               if s.labels == {"component": "grid1.localhost", "type": "CS_NormalUpdate"}]
    assert updates and updates[0].value > 0
    handled = [s for s in metrics["jgsl_message_handling_seconds"]
               if s.name.endswith("_count") and s.labels["type"] == "CS_NormalUpdate"]
    assert handled and handled[0].value > 0
    assert {s.labels["component"]: s.value for s in metrics["jgsl_component_connected"]} == {
        "gateway.localhost": 1, "grid1.localhost": 1, "emu.localhost": 1}
    assert metrics["jgsl_uptime_seconds"][0].value > 0
    assert "process_cpu_seconds" in metrics  # prometheus_client's process collector
    ours = {name for name in metrics if name.startswith("jgsl_")}
    assert ours == documented_metrics()  # (a world has no router stores or Lua errors...)
    status, body = get(url + "healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    procs.stop_all_cleanly()


def test_healthz_is_503_until_the_gateway_reaches_its_server_and_a_grid(procs: Processes):
    port = free_port()
    xmpp = f"tcp:127.0.0.1:{port}"
    procs.start("gateway", "--role", "gateway", "--xmpp", xmpp, "--web", LOCAL)
    url = web_url(procs, "gateway")
    status, body = get(url + "healthz")
    assert status == 503
    health = json.loads(body)
    assert health["status"] == "unavailable"
    assert "gateway.localhost is not connected" in health["reason"]
    procs.start("router", "--role", "router", "--listen",
                f"tcp:{port}:interface=127.0.0.1")
    wait_for(lambda: "knows no live grid process" in json.loads(get(url + "healthz")[1])
             .get("reason", ""), what="the gateway connected, with no grid yet")
    procs.start("grid1", "--role", "grid", "--xmpp", xmpp, "--scripts", "none")
    wait_for(lambda: get(url + "healthz")[0] == 200, what="healthy")
    health = json.loads(get(url + "healthz")[1])
    assert health["checks"]["gateway.localhost"] == {"connected": True,
                                                     "live_grid_processes": 1}
    procs.stop_all_cleanly()


def test_json_logs_are_one_event_per_line_with_their_fields(procs: Processes, tmp_path):
    port_file = tmp_path / "router.port"
    procs.start("router", "--role", "router", "--listen", LOCAL, "--port-file",
                str(port_file), "--log-format", "json")
    wait_for(lambda: "router listening" in procs.log("router"), what="its first line")
    procs.stop_all_cleanly()
    events = [json.loads(line) for line in procs.log("router").splitlines() if line.strip()]
    listening = [e for e in events if e.get("log_format", "").startswith("router listening")]
    assert listening and isinstance(listening[0]["port"], int) and listening[0]["port"] > 0
    assert listening[0]["log_namespace"] == "jgsl.router"
    assert all("log_time" in e for e in events)


def test_the_world_serves_its_web_interface_by_default_and_none_turns_it_off():
    options = Options()
    options.parseOptions(["--role", "world", "--scripts", "none"])
    assert options["web"] == WORLD_WEB == "tcp:8080:interface=127.0.0.1"
    options = Options()
    options.parseOptions(["--role", "world", "--scripts", "none", "--web", "none"])
    assert options["web"] is None
    options = Options()
    options.parseOptions(["--role", "grid", "--scripts", "none"])
    assert options["web"] is None  # off by default for the separate roles


DOCS = Path(__file__).parents[1] / "docs" / "operations.md"
CONFIG = Path(__file__).parents[1] / "config"


def documented_metrics() -> set[str]:
    """The metric names docs/operations.md lists in its table."""
    return set(re.findall(r"^\| `(jgsl_[a-z_]+)` \|", DOCS.read_text(), re.M))


def test_the_grafana_dashboard_asks_only_for_documented_metrics():
    dashboard = json.loads((CONFIG / "monitoring" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {re.sub(r"_(total|bucket|count|sum)$", "", name)
            for expr in exprs for name in re.findall(r"\b(jgsl_[a-z_]+)", expr)}
    assert used and used <= documented_metrics()


def test_the_systemd_units_run_options_the_daemon_accepts(tmp_path):
    secrets_dir = tmp_path / "etc"
    secrets_dir.mkdir()
    for name in ("component-secret", "ticket-secret", "admin-secret"):
        (secrets_dir / name).write_text("s3cret\n")
    users = CONFIG / "EmuUsersDB.xml"
    units = sorted((CONFIG / "systemd").glob("jgsl-*.service"))
    assert [u.name for u in units] == ["jgsl-emu.service", "jgsl-gateway.service",
                                       "jgsl-grid@.service", "jgsl-router.service"]
    for unit in units:
        text = unit.read_text().replace("\\\n", " ")
        command = re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()
        assert command[:4] == ["/opt/jgsl/.venv/bin/twistd", "--nodaemon", "--pidfile=",
                               "jgsl"], unit.name
        args = [a.replace("/etc/jgsl/EmuUsersDB.xml", str(users))
                .replace("/etc/jgsl/", f"{secrets_dir}/")
                .replace("%i", "grid1").replace("${JGSL_WEB}", "tcp:9111")
                for a in command[4:]]
        options = Options()
        options.parseOptions([*args, "--scripts", "none"])
        assert options["log-format"] == "json", unit.name
