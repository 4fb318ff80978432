"""The twistd plugin: discoverable, options validated, one service tree per role."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from zope.interface.verify import verifyObject

from jgsl import tap
from jgsl.collector import ScheduledCollector
from jgsl.xmpp.link import ComponentService
from jgsl.xmpp.router import RouterService

DATA = Path(__file__).parent / "data"


def test_plugin_is_discovered():
    makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
    assert "jgsl" in makers
    maker = makers["jgsl"]
    assert verifyObject(IServiceMaker, maker)
    assert maker.options is tap.Options


def test_twistd_help_lists_the_roles():
    twistd = Path(sys.executable).with_name("twistd")
    result = subprocess.run([str(twistd), "jgsl", "--help"], capture_output=True, text=True,
                            timeout=60, cwd="/", check=False)
    assert result.returncode == 0, result.stderr
    assert "--role" in result.stdout
    for role in tap.ROLES:
        assert role in result.stdout
    assert "--dump-server-msg" in result.stdout and "--dump-client-msg" in result.stdout


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def test_options_defaults_and_values(monkeypatch):
    monkeypatch.delenv(tap.SECRET_ENV, raising=False)
    options = parse("--role", "grid", "--domain", "example.org", "--update-interval", "0.5")
    assert options["gateway"] == "gateway.example.org"
    assert options["update-interval"] == 0.5
    assert options["secret"] == tap.DEV_SECRET
    assert options["xmpp"] == "tcp:127.0.0.1:5347"


def test_secret_from_environment_or_file(monkeypatch, tmp_path):
    monkeypatch.setenv(tap.SECRET_ENV, "from-env")
    monkeypatch.setenv(tap.TICKET_SECRET_ENV, "tickets-env")
    options = parse("--role", "router")
    assert (options["secret"], options["ticket-secret"]) == ("from-env", b"tickets-env")
    (tmp_path / "s").write_text("from-file\n")
    (tmp_path / "t").write_text("tickets-file\n")
    options = parse("--role", "router", "--secret-file", str(tmp_path / "s"),
                    "--ticket-secret-file", str(tmp_path / "t"))
    assert (options["secret"], options["ticket-secret"]) == ("from-file", b"tickets-file")


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--role must be one of"),
        (["--role", "king"], "--role must be one of"),
        (["--role", "gateway", "--config", "/nonexistent.xml"], "cannot read"),
        (["--role", "emu", "--emu-users", "/nonexistent.xml"], "cannot read"),
        (["--role", "grid", "--update-interval", "-1"], "-1 is not a positive number"),
        (["--role", "grid", "--secret-file", "/nonexistent"], "No such file"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    with pytest.raises(usage.UsageError, match=message):
        parse(*args)


def test_bad_config_file_names_the_problem(tmp_path):
    bad = tmp_path / "jgsl.config.xml"
    bad.write_text('<JGSL><GridServer><GridNodeRules><rule gridsize="big"/>'
                   "</GridNodeRules></GridServer></JGSL>")
    with pytest.raises(usage.UsageError, match=r"jgsl.config.xml:1: rule 1: gridsize='big'"):
        parse("--role", "gateway", "--config", str(bad))


@pytest.mark.parametrize(
    "role, router, components",
    [
        ("router", True, []),
        ("gateway", False, ["gateway.localhost"]),
        ("grid", False, ["grid1.localhost"]),
        ("emu", False, ["emu.localhost"]),
        ("world", True, ["gateway.localhost", "grid1.localhost", "emu.localhost"]),
    ],
)
def test_service_tree_per_role(role, router, components):
    options = parse("--role", role, "--emu-users", str(DATA / "EmuUsersDB.xml"))
    top = tap.makeService(options, reactor=MemoryReactorClock())
    services = list(top)
    assert any(isinstance(s, RouterService) for s in services) == router
    assert [s.jid for s in services if isinstance(s, ComponentService)] == components


def components(top) -> list[ComponentService]:
    return [s for s in top if isinstance(s, ComponentService)]


def test_name_option_renames_the_component():
    options = parse("--role", "grid", "--name", "grid7.localhost")
    top = tap.makeService(options, reactor=MemoryReactorClock())
    (service,) = components(top)
    assert service.jid == "grid7.localhost"
    assert [type(s) for s in top if not isinstance(s, ComponentService)] == [ScheduledCollector]


def test_world_connects_components_to_its_own_router():
    """The world role dials the port its router actually bound (here: 5399); its web
    interface listens on 8080 (the default for the world)."""
    reactor = MemoryReactorClock()
    options = parse("--role", "world", "--listen", "tcp:5399:interface=127.0.0.1")
    top = tap.makeService(options, reactor=reactor)
    top.startService()
    try:
        assert [s[0] for s in reactor.tcpServers] == [5399, 8080]
        assert [c[:2] for c in reactor.tcpClients] == [("127.0.0.1", 5399)] * 3
    finally:
        top.stopService()


def test_role_hook_and_several_gateways():
    options = parse("--role", "gateway", "--role-hook", "tests.hooks:by_name")
    from tests.hooks import by_name

    assert options["role-hook"] is by_name
    (service,) = components(tap.makeService(options, reactor=MemoryReactorClock()))
    assert service.core.settings.role_hook is by_name
    options = parse("--role", "grid", "--gateway", "gw1.example, gw2.example")
    (grid,) = components(tap.makeService(options, reactor=MemoryReactorClock()))
    assert grid.core.gateways == ["gw1.example", "gw2.example"]
    assert options["gateway"] == "gw1.example"


@pytest.mark.parametrize("hook", ["tests.nonexistent:f", "tests.hooks:missing"])
def test_bad_role_hook_is_a_usage_error(hook):
    with pytest.raises(usage.UsageError, match="--role-hook"):
        parse("--role", "gateway", "--role-hook", hook)


def test_xmpp_server_domain_and_secret_from_the_config(tmp_path, monkeypatch):
    monkeypatch.delenv(tap.SECRET_ENV, raising=False)
    (tmp_path / "secret").write_text("from-config-file\n")
    config = tmp_path / "jgsl.config.xml"
    config.write_text(f'<JGSL><XMPP server="tcp:127.0.0.2:5999" domain="game.example" '
                      f'secret_file="{tmp_path / "secret"}"/></JGSL>')
    options = parse("--role", "grid", "--config", str(config))
    assert (options["xmpp"], options["domain"], options["gateway"], options["secret"]) == (
        "tcp:127.0.0.2:5999", "game.example", "gateway.game.example", "from-config-file")
    monkeypatch.setenv(tap.SECRET_ENV, "from-env")  # the environment wins over the config
    assert parse("--role", "grid", "--config", str(config))["secret"] == "from-env"
    options = parse("--role", "grid", "--config", str(config), "--xmpp", "tcp:127.0.0.1:1",
                    "--domain", "d.example")  # and the command line over both
    assert (options["xmpp"], options["domain"]) == ("tcp:127.0.0.1:1", "d.example")
    config.write_text('<JGSL><XMPP secret="inline"/></JGSL>')
    monkeypatch.delenv(tap.SECRET_ENV)
    assert parse("--role", "grid", "--config", str(config))["secret"] == "inline"
    config.write_text('<JGSL><XMPP password="x"/></JGSL>')
    with pytest.raises(usage.UsageError, match="XMPP: unknown attribute"):
        parse("--role", "grid", "--config", str(config))
