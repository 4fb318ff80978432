"""Real servers for integration tests: installed from Debian if missing, run on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jgsl.prosody import DevProsody, free_port, wait_port
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


class RedisServer:
    """A throw-away redis-server on a free loopback port, in its own directory (or on
    ``host`` under a command prefix ``wrap``, e.g. in another network namespace)."""

    def __init__(self, workdir: Path, appendonly: bool = False, host: str = "127.0.0.1",
                 wrap: tuple[str, ...] = (), password: str | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: (certificate, key) PEM files: then it speaks only TLS on its port."""
        self.binary = ensure_debian_package("redis-server", "redis-server")
        self.cli = ensure_debian_package("redis-cli", "redis-tools")
        self.workdir = workdir
        self.appendonly = appendonly
        self.host, self.wrap, self.password, self.tls = host, wrap, password, tls
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            [*self.wrap, self.binary, "--bind", self.host, *self._ports(), "--save", "",
             "--appendonly", "yes" if self.appendonly else "no",
             # everysec may postpone the AOF write while a background fsync is slow and
             # still answer: a kill -9 then loses acknowledged writes (seen on a busy host).
             "--appendfsync", "always", "--dir", str(self.workdir),
             "--logfile", str(self.workdir / "redis.log"), "--daemonize", "no",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _ports(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        certificate, key = self.tls
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(certificate),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(certificate),
                "--tls-auth-clients", "no"]

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            self.port = free_port()
            self.proc = self._spawn()
            try:
                wait_port(self.port, timeout=10, host=self.host, wrap=self.wrap)
                return self
            except RuntimeError:
                self.stop()
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        """Kill -9: no chance to write anything more (what survives is in the AOF)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Start again on the same port and directory (loading the AOF, if on)."""
        self.proc = self._spawn()
        wait_port(self.port, timeout=10, host=self.host, wrap=self.wrap)

    def command(self, *args: str) -> str:
        result = subprocess.run([*self.wrap, self.cli, "-h", self.host, "-p", str(self.port),
                                 *(["--no-auth-warning", "-a", self.password]
                                   if self.password else []),
                                 *(["--tls", "--cacert", str(self.tls[0])] if self.tls else []),
                                 *args], capture_output=True,
                                text=True, timeout=10, check=True)
        return result.stdout

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None


class ProsodyServer(DevProsody):
    """jgsl-prosody's development server, installed from Debian if missing."""

    def __init__(self, components: dict[str, str], domain: str = "localhost",
                 **options) -> None:
        ensure_debian_package("openssl", "openssl")
        ensure_debian_package("prosody", "prosody")
        super().__init__(components, domain, **options)

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    def kill(self) -> None:
        """kill -9, as a crash would (start() brings it back on the same ports)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
