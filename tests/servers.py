"""Real servers for integration tests: installed from Debian if missing, run on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import terminate


def ensure_debian_package(command: str, package: str) -> str:
    """The path of ``command``, installing ``package`` with apt-get first if we are root."""
    path = shutil.which(command) or (f"/usr/bin/{command}" if os.path.exists(
        f"/usr/bin/{command}") else None)
    if path:
        return path
    if os.geteuid() != 0:
        pytest.fail(f"{command} is missing: apt-get install {package} (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                   check=True, env=env)
    return shutil.which(command) or f"/usr/bin/{command}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


class RedisServer:
    """A throw-away redis-server on a free loopback port, in its own directory."""

    def __init__(self, workdir: Path) -> None:
        self.binary = ensure_debian_package("redis-server", "redis-server")
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                 "--appendonly", "no", "--dir", str(self.workdir),
                 "--logfile", str(self.workdir / "redis.log"), "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(self.port, timeout=10)
                return self
            except AssertionError:
                self.stop()
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None


PROSODY_CONFIG = """\
-- Written by the JGSL tests: loopback only, temporary directory.
local base = "{base}"
pidfile = base .. "/prosody.pid"
data_path = base .. "/data"
log = {{ info = base .. "/prosody.log"; error = base .. "/prosody.err" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ }}
component_ports = {{ {component} }}
component_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
modules_enabled = {{ "disco"; "roster"; "saslauth"; "tls"; "ping"; "posix" }}
modules_disabled = {{ "s2s" }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
certificates = base .. "/certs"
VirtualHost "{domain}"
    ssl = {{ certificate = base .. "/certs/{domain}.crt"; key = base .. "/certs/{domain}.key" }}
{components}
"""


class ProsodyServer:
    """Prosody from Debian, in a temporary directory, on free loopback ports.

    Run as the ``prosody`` user when we are root (the directory is handed to it); the
    certificate is self-signed for the domain, and ``cert_pem`` is what clients trust.
    """

    def __init__(self, components: dict[str, str], domain: str = "localhost") -> None:
        self.binary = ensure_debian_package("prosody", "prosody")
        self.ctl = shutil.which("prosodyctl") or "/usr/bin/prosodyctl"
        self.components = components
        self.domain = domain
        self.workdir = Path(tempfile.mkdtemp(prefix="jgsl-prosody-"))
        self.config = self.workdir / "prosody.cfg.lua"
        self.c2s_port = self.component_port = 0
        self.proc: subprocess.Popen | None = None
        root = os.geteuid() == 0
        self._user = {"user": "prosody", "group": "prosody", "extra_groups": []} if root else {}

    @property
    def cert_pem(self) -> bytes:
        return (self.workdir / "certs" / f"{self.domain}.crt").read_bytes()

    def start(self) -> ProsodyServer:
        (self.workdir / "data").mkdir()
        certs = self.workdir / "certs"
        certs.mkdir()
        names = ",".join(f"DNS:{n}" for n in [self.domain, *self.components])
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={self.domain}", "-addext", f"subjectAltName={names}",
             "-keyout", str(certs / f"{self.domain}.key"),
             "-out", str(certs / f"{self.domain}.crt")],
            check=True, capture_output=True)
        self.c2s_port, self.component_port = free_port(), free_port()
        components = "\n".join(f'Component "{jid}"\n    component_secret = "{secret}"'
                               for jid, secret in self.components.items())
        self.config.write_text(PROSODY_CONFIG.format(
            base=self.workdir, c2s=self.c2s_port, component=self.component_port,
            domain=self.domain, components=components))
        os.chmod(self.workdir, 0o755)
        if self._user:
            subprocess.run(["chown", "-R", "prosody:prosody", str(self.workdir)], check=True)
        self.proc = subprocess.Popen([self.binary, "-F", "--config", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=self.workdir, **self._user)
        wait_port(self.c2s_port)
        wait_port(self.component_port)
        return self

    def register(self, user: str, password: str) -> None:
        subprocess.run([self.ctl, "--config", str(self.config), "register", user, self.domain,
                        password], check=True, capture_output=True, cwd=self.workdir,
                       **self._user)

    def log(self) -> str:
        path = self.workdir / "prosody.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)
