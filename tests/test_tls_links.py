"""Component links inside TLS: to Prosody's direct-TLS component port and to the embedded
router listening with TLS; a certificate that does not verify keeps the link down."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jgsl.prosody import make_certificate
from tests.processes import Processes, wait_for
from tests.servers import ProsodyServer

pytestmark = pytest.mark.integration


def trust(directory: Path, certificate: Path) -> str:
    """A trust-roots directory for Twisted's tls: endpoint, holding one certificate."""
    directory.mkdir()
    shutil.copy(certificate, directory / "ca.pem")
    return str(directory)


def registered(procs: Processes, grid: str = "grid1.localhost") -> bool:
    return f"grid process {grid} registered" in procs.log("gateway")


def test_grid_over_tls_to_prosody_and_a_wrong_certificate_is_refused(procs, tmp_path):
    names = ("gateway", "grid1", "grid2")
    prosody = ProsodyServer({f"{n}.localhost": procs.env["JGSL_COMPONENT_SECRET"]
                             for n in names}, tls_port=0)
    try:
        prosody.start()
        good = trust(tmp_path / "ca", prosody.cert_path)
        other = make_certificate(tmp_path / "other", "localhost", [])
        bad = trust(tmp_path / "bad", other)
        procs.start("gateway", "--role", "gateway", "--xmpp",
                    f"tcp:127.0.0.1:{prosody.component_port}")
        procs.start("grid1", "--role", "grid", "--scripts", "none", "--xmpp",
                    f"tls:localhost:{prosody.tls_port}:trustRoots={good}")
        procs.start("grid2", "--role", "grid", "--scripts", "none", "--name",
                    "grid2.localhost", "--xmpp",
                    f"tls:localhost:{prosody.tls_port}:trustRoots={bad}")
        wait_for(lambda: registered(procs), what="grid1 to register over TLS")
        wait_for(lambda: "certificate verify failed" in procs.log("grid2"),
                 what="grid2 to say why its link fails")
        assert not registered(procs, "grid2.localhost")
        # It never got as far as the handshake: the secret was not sent.
        assert "grid1.localhost:component" in prosody.log()
        assert "grid2.localhost:component" not in prosody.log()
        procs.stop_all_cleanly()
    finally:
        prosody.stop()


def test_components_over_tls_to_the_embedded_router(procs, tmp_path):
    certificate = make_certificate(tmp_path / "certs", "localhost", ["gateway.localhost"])
    key = certificate.with_suffix(".key")
    port_file = tmp_path / "router.port"
    procs.start("router", "--role", "router", "--port-file", str(port_file), "--listen",
                f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}")
    port = wait_for(lambda: port_file.exists() and port_file.read_text().strip())
    roots = trust(tmp_path / "ca", certificate)
    xmpp = f"tls:localhost:{port}:trustRoots={roots}"
    procs.start("gateway", "--role", "gateway", "--xmpp", xmpp)
    procs.start("grid", "--role", "grid", "--scripts", "none", "--xmpp", xmpp)
    wait_for(lambda: registered(procs), what="the grid to register over TLS")
    # A plain-text component on the TLS port gets nowhere.
    procs.start("emu", "--role", "emu", "--xmpp", f"tcp:127.0.0.1:{port}")
    wait_for(lambda: "cannot connect to the XMPP server" in procs.log("emu"),
             what="the plain link to fail, with a line saying so")
    assert "component emu.localhost is connected" not in procs.log("emu")
    procs.stop_all_cleanly()


def test_redis_over_tls_with_a_password(procs, tmp_path):
    """Gateway and grid keep their state in a Redis that speaks only TLS and wants a
    password (--redis-ca-cert, $JGSL_REDIS_PASSWORD): allocation records and, at the stop,
    the users' agents are there; a grid trusting another certificate reaches nothing."""
    from tests.servers import RedisServer

    certificate = make_certificate(tmp_path / "certs", "127.0.0.1", [])
    redis = RedisServer(tmp_path / "redis", password="s3cret",
                        tls=(certificate, certificate.with_suffix(".key"))).start()
    other = make_certificate(tmp_path / "other", "127.0.0.1", [])
    try:
        procs.env["JGSL_REDIS_PASSWORD"] = "s3cret"
        port_file = tmp_path / "router.port"
        procs.start("router", "--role", "router", "--listen", "tcp:0:interface=127.0.0.1",
                    "--port-file", str(port_file))
        port = wait_for(lambda: port_file.exists() and port_file.read_text().strip())
        xmpp = f"tcp:127.0.0.1:{port}"
        store = ["--redis", f"127.0.0.1:{redis.port}", "--redis-ca-cert", str(certificate)]
        procs.start("gateway", "--role", "gateway", "--xmpp", xmpp, *store)
        procs.start("grid", "--role", "grid", "--scripts", "none", "--xmpp", xmpp, *store)
        procs.start("grid2", "--role", "grid", "--scripts", "none", "--xmpp", xmpp,
                    "--name", "grid2.localhost", "--state-file", str(tmp_path / "g2.json"),
                    "--redis", f"127.0.0.1:{redis.port}", "--redis-ca-cert", str(other))
        wait_for(lambda: registered(procs), what="the grid to register")
        procs.start("emu", "--role", "emu", "--xmpp", xmpp, "--update-interval", "0.3")
        wait_for(lambda: " sees " in procs.log("emu"), timeout=45, what="users to meet")
        assert "jgsl:alloc:node:" in redis.command("KEYS", "jgsl:alloc:*")
        wait_for(lambda: "certificate verify failed" in procs.log("grid2"),
                 what="the grid with the wrong CA to say why")
        procs.stop_all_cleanly()
        agents = redis.command("HKEYS", "jgsl:agents:worlds/MyWorlds/AlphaWorld/").split()
        assert len(agents) >= 2 and all(a.endswith("@emu.localhost") for a in agents)
    finally:
        procs.kill_all()
        redis.stop()
